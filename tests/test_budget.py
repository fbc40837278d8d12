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

    with pytest.raises(ServiceBusyError, match=r"20,000 of 30,000 pixels in flight; this one needs 20,000"):
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
