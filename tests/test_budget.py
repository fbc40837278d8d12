"""DecodeBudget: decoded pixels in flight are bounded across threads, and given back when freed."""

from __future__ import annotations

import gc
import io
import threading
import time

import numpy as np
import pytest

from facetrust.budget import DecodeBudget
from facetrust.config import Settings
from facetrust.errors import ConfigurationError, ImageTooLargeError, InvalidImageError, ServiceBusyError
from facetrust.images import load_image


def _png(width: int, height: int, mode: str = "L") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, (width, height), 0).save(out, "PNG")
    return out.getvalue()


def test_a_decoded_image_holds_its_pixels_until_the_array_is_freed() -> None:
    budget = DecodeBudget(100_000)
    rgb = load_image(_png(200, 100), budget=budget)
    view = rgb[10:20]
    assert budget.in_flight == 20_000

    del rgb
    assert budget.in_flight == 20_000  # a view keeps the array, and so the reservation
    del view
    assert budget.in_flight == 0


def test_a_decode_that_finds_no_room_in_time_is_refused_as_busy() -> None:
    budget = DecodeBudget(30_000, wait=0.05)
    held = load_image(_png(200, 100), budget=budget)

    # while it decodes, a grey image holds Pillow's byte a pixel and the 3-byte RGB array: 4/3 of its pixels
    with pytest.raises(ServiceBusyError, match=r"20,000 of 30,000 pixels in flight; this one needs 26,667"):
        load_image(_png(100, 200), budget=budget)
    assert budget.in_flight == 20_000  # the refused one reserved nothing
    del held


def test_a_waiting_decode_runs_as_soon_as_room_is_freed() -> None:
    budget = DecodeBudget(30_000, wait=10.0)
    held = [load_image(_png(200, 100), budget=budget)]
    done: list[np.ndarray] = []
    waiter = threading.Thread(target=lambda: done.append(load_image(_png(100, 200), budget=budget)))
    waiter.start()
    time.sleep(0.2)
    assert not done and waiter.is_alive()

    held.clear()
    waiter.join(5)
    assert len(done) == 1 and done[0].shape == (200, 100, 3)
    assert budget.in_flight == 20_000


def test_an_image_larger_than_the_whole_budget_is_too_large() -> None:
    with pytest.raises(ImageTooLargeError, match="the decode budget is 10000"):
        load_image(_png(200, 100), budget=DecodeBudget(10_000))


def test_a_decode_that_fails_gives_its_pixels_back() -> None:
    budget = DecodeBudget(100_000)
    broken = _png(200, 100)[:-30]  # header intact, data cut short
    with pytest.raises(InvalidImageError):
        load_image(broken, budget=budget)
    gc.collect()
    assert budget.in_flight == 0


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA"])
def test_striped_conversion_equals_converting_the_whole_image(mode: str) -> None:
    from PIL import Image

    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (2100, 700, 4), dtype=np.uint8)  # taller than one stripe
    source = Image.fromarray(pixels, "RGBA").convert(mode)
    out = io.BytesIO()
    source.save(out, "PNG")
    whole = Image.open(io.BytesIO(out.getvalue()))  # the whole image converted at once, as before
    if whole.mode in ("RGBA", "LA") or "transparency" in whole.info:
        whole = Image.alpha_composite(Image.new("RGBA", whole.size, (255, 255, 255, 255)), whole.convert("RGBA"))

    assert np.array_equal(load_image(out.getvalue()), np.asarray(whole.convert("RGB")))


def test_the_budget_setting_must_hold_one_image_of_the_largest_size() -> None:
    with pytest.raises(
        ConfigurationError, match="decode_budget_pixels=1000 is invalid: must be at least max_image_pixels"
    ):
        Settings(decode_budget_pixels=1000)
    assert Settings(max_image_pixels=1000, decode_budget_pixels=1000).decode_budget_pixels == 1000


@pytest.mark.parametrize(
    ("mode", "turned", "decoding"),
    [("L", False, 26_667), ("RGB", False, 46_667), ("RGB", True, 73_334), ("I;16", True, 46_667)],
)
def test_a_decode_reserves_its_own_copies_and_keeps_only_the_arrays_pixels(
    mode: str, turned: bool, decoding: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    image = Image.new(mode, (200, 100))
    exif = Image.Exif()
    if turned:
        exif[0x0112] = 6  # turned a quarter: Pillow makes a second copy to turn it
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif)
    budget = DecodeBudget(1_000_000)
    reserved: list[int] = []
    real = budget.reserve
    monkeypatch.setattr(budget, "reserve", lambda pixels, **kw: reserved.append(pixels) or real(pixels, **kw))
    rgb = load_image(out.getvalue(), budget=budget)
    assert reserved == [decoding]
    assert budget.in_flight == 20_000 and rgb.shape[:2] == ((200, 100) if turned else (100, 200))


def test_sixteen_bit_grey_converts_stripe_by_stripe_to_the_same_pixels_as_at_once() -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    values = rng.integers(0, 65536, (2100, 700), dtype=np.uint16)  # taller than one stripe
    out = io.BytesIO()
    Image.fromarray(values).save(out, "PNG")
    expected = np.clip(values.astype(np.float32) * (255.0 / 65535.0) + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(load_image(out.getvalue())[:, :, 1], expected)


@pytest.mark.parametrize("turned", [False, True])
def test_no_pixel_is_decoded_before_the_reservation(turned: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image, ImageFile

    exif = Image.Exif()
    if turned:
        exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("1", (200, 100)).save(out, "PNG", exif=exif)
    loads: list[int] = []
    real = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(1) or real(self))
    full = DecodeBudget(30_000, wait=0.05)
    held = load_image(_png(200, 100), budget=full)  # 20,000 of 30,000 kept: no room for this one's 26,667
    loads.clear()
    with pytest.raises(ServiceBusyError):
        load_image(out.getvalue(), budget=full)
    assert loads == []  # refused before Pillow decoded a pixel (a PNG's getexif() decodes it all)
    del held
