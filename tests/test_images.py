"""load_image: formats, modes, EXIF orientation, array input, limits and malformed input."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from facetrust.errors import ImageTooLargeError, InvalidImageError, InvalidInputError, InvalidParameterError
from facetrust.images import load_image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def gradient(height: int = 24, width: int = 32) -> np.ndarray:
    """An RGB image whose channels vary along different axes, so rotations are visible."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 255 // (width - 1), ys * 255 // (height - 1), np.full_like(xs, 90)], axis=2).astype(np.uint8)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width``×``height`` RGB pixels but holds almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose start-of-frame header is rewritten to declare ``width``×``height``."""
    data = bytearray(encode(Image.new("RGB", (8, 8), (10, 20, 30)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(rgb), "JPEG", exif=exif.tobytes(), quality=95)


# -- formats and sources ------------------------------------------------------------------


def test_load_image_decodes_png_bytes_exactly() -> None:
    rgb = gradient()
    out = load_image(encode(Image.fromarray(rgb), "PNG"))
    assert out.dtype == np.uint8
    assert out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, rgb)


def test_load_image_decodes_jpeg_bytes_close_to_the_original() -> None:
    rgb = gradient()
    out = load_image(encode(Image.fromarray(rgb), "JPEG", quality=95))
    assert out.dtype == np.uint8
    assert out.shape == (24, 32, 3)
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 4


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_load_image_reads_a_path_and_a_str_path_like_the_bytes(tmp_path: Path, fmt: str) -> None:
    data = encode(Image.fromarray(gradient()), fmt)
    path = tmp_path / f"face.{fmt.lower()}"
    path.write_bytes(data)
    from_bytes = load_image(data)
    np.testing.assert_array_equal(load_image(path), from_bytes)
    np.testing.assert_array_equal(load_image(str(path)), from_bytes)


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_load_image_accepts_bytearray_and_memoryview(wrap: type) -> None:
    data = encode(Image.fromarray(gradient()), "PNG")
    np.testing.assert_array_equal(load_image(wrap(data)), gradient())


def test_load_image_refuses_an_unsupported_source_type_as_a_parameter_error() -> None:
    with pytest.raises(InvalidParameterError, match="Unsupported image source of type int") as info:
        load_image(42)  # type: ignore[arg-type]
    assert info.value.parameter == "image"


# -- EXIF orientation ---------------------------------------------------------------------


def marked_image() -> np.ndarray:
    """20 rows × 40 columns, black, with a white 4×4 marker in the top-left corner."""
    rgb = np.zeros((20, 40, 3), dtype=np.uint8)
    rgb[0:4, 0:4] = 255
    return rgb


def marker_corner(out: np.ndarray) -> tuple[str, str]:
    ys, xs = np.nonzero(out[:, :, 0] > 128)
    height, width = out.shape[:2]
    vertical = "top" if ys.mean() < height / 2 else "bottom"
    horizontal = "left" if xs.mean() < width / 2 else "right"
    return vertical, horizontal


def test_load_image_applies_exif_orientation_6_by_rotating_clockwise() -> None:
    out = load_image(with_orientation(marked_image(), 6))
    assert out.shape == (40, 20, 3)
    assert marker_corner(out) == ("top", "right")


def test_load_image_applies_exif_orientation_8_by_rotating_counterclockwise() -> None:
    out = load_image(with_orientation(marked_image(), 8))
    assert out.shape == (40, 20, 3)
    assert marker_corner(out) == ("bottom", "left")


def test_load_image_leaves_orientation_1_unrotated() -> None:
    out = load_image(with_orientation(marked_image(), 1))
    assert out.shape == (20, 40, 3)
    assert marker_corner(out) == ("top", "left")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_load_image_orients_like_pillow_exif_transpose(orientation: int) -> None:
    data = with_orientation(gradient(), orientation)
    with Image.open(io.BytesIO(data)) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(load_image(data), expected)


# -- colour modes ---------------------------------------------------------------------------


def test_load_image_replicates_grayscale_into_three_equal_channels() -> None:
    gray = gradient()[:, :, 0]
    out = load_image(encode(Image.fromarray(gray, "L"), "PNG"))
    assert out.shape == (24, 32, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], gray)


def test_load_image_composites_la_alpha_on_white() -> None:
    pixels = np.array([[[0, 0], [0, 255], [100, 128]]], dtype=np.uint8)
    out = load_image(encode(Image.fromarray(pixels, "LA"), "PNG"))
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])  # transparent → white
    np.testing.assert_array_equal(out[0, 1], [0, 0, 0])  # opaque black stays black
    assert np.all(np.abs(out[0, 2].astype(int) - 177) <= 1)  # half-transparent grey 100 over white


def test_load_image_composites_rgba_alpha_on_white() -> None:
    pixels = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 128]]], dtype=np.uint8)
    out = load_image(encode(Image.fromarray(pixels, "RGBA"), "PNG"))
    assert out.shape == (1, 3, 3)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], [255, 0, 0])
    assert np.all(np.abs(out[0, 2].astype(int) - [127, 127, 255]) <= 1)


def palette_image() -> Image.Image:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    return image


def test_load_image_expands_a_palette_image_to_rgb() -> None:
    out = load_image(encode(palette_image(), "PNG"))
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [0, 0, 255]])


def test_load_image_composites_a_transparent_palette_entry_on_white() -> None:
    out = load_image(encode(palette_image(), "PNG", transparency=0))
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [0, 0, 255]])


@pytest.mark.parametrize(
    ("mode", "clear", "kept"),
    [("RGB", (0, 0, 0), (200, 10, 10)), ("L", 0, 200), ("I;16", 0, 51400)],
)
def test_load_image_composites_a_trns_transparent_value_on_white(mode: str, clear: object, kept: object) -> None:
    """A PNG tRNS chunk makes one grey or RGB value transparent, as an alpha channel would."""
    image = Image.new(mode, (2, 1))
    image.putpixel((0, 0), clear)  # type: ignore[arg-type]
    image.putpixel((1, 0), kept)  # type: ignore[arg-type]
    with Image.open(io.BytesIO(encode(image, "PNG", transparency=clear))) as check:
        assert "transparency" in check.info  # the file holds a tRNS chunk
    out = load_image(encode(image, "PNG", transparency=clear))
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])  # transparent → white
    assert out[0, 1].tolist() != [255, 255, 255]  # the rest as it is


def low_depth_grey_png(depth: int, pixels: list[int], clear: int) -> bytes:
    """A one-row grey PNG of ``depth`` bits a pixel (1, 2 or 4), with a tRNS chunk making ``clear``
    transparent: written by hand, since Pillow does not write these depths with tRNS."""
    import struct
    import zlib

    bits = "".join(format(p, f"0{depth}b") for p in pixels)
    bits += "0" * (-len(bits) % 8)
    row = b"\x00" + bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", len(pixels), 1, depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tRNS", struct.pack(">H", clear))
        + chunk(b"IDAT", zlib.compress(row))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("depth", "pixels", "clear", "expected"),
    [(1, [0, 1], 0, [255, 255]), (2, [1, 2], 1, [255, 170]), (4, [1, 2], 1, [255, 34])],
)
def test_a_low_depth_grey_pngs_transparent_value_is_composited_on_white(
    depth: int, pixels: list[int], clear: int, expected: list[int]
) -> None:
    """Pillow scales such a PNG's pixels to 0–255 but not its tRNS value: none matched it."""
    out = load_image(low_depth_grey_png(depth, pixels, clear))
    assert out[0, :, 0].tolist() == expected


def test_load_image_scales_16_bit_grayscale_to_8_bits() -> None:
    pixels = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    image = Image.fromarray(pixels)
    assert image.mode == "I;16"
    out = load_image(encode(image, "PNG"))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])


def test_load_image_maps_1_bit_images_to_black_and_white() -> None:
    image = Image.new("1", (4, 2), 0)
    image.putpixel((1, 0), 1)
    out = load_image(encode(image, "PNG"))
    expected = np.zeros((2, 4), dtype=np.uint8)
    expected[0, 1] = 255
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], expected)


def test_load_image_converts_cmyk_jpeg_to_rgb() -> None:
    out = load_image(encode(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG"))
    assert out.shape == (8, 8, 3)
    assert out.min() > 240  # no ink is white


# -- array input ----------------------------------------------------------------------------


def test_load_image_repeats_a_2d_array_into_rgb() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = load_image(gray)
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[:, :, 1], gray)


def test_load_image_repeats_a_single_channel_array_into_rgb() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    out = load_image(gray)
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[:, :, 2], gray[:, :, 0])


def test_load_image_returns_an_rgb_array_unchanged_and_contiguous() -> None:
    rgb = gradient()[:, ::-1]  # a non-contiguous view
    out = load_image(rgb)
    assert out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int64])
def test_load_image_refuses_an_array_that_is_not_uint8(dtype: type) -> None:
    with pytest.raises(InvalidImageError, match="dtype"):
        load_image(np.zeros((4, 4, 3), dtype=dtype))


@pytest.mark.parametrize("shape", [(4,), (4, 4, 4), (4, 4, 2), (2, 4, 4, 3)])
def test_load_image_refuses_an_array_of_the_wrong_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidImageError, match=r"shape"):
        load_image(np.zeros(shape, dtype=np.uint8))


def test_load_image_refuses_an_empty_array() -> None:
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(np.zeros((0, 5, 3), dtype=np.uint8))


def test_load_image_refuses_an_array_over_the_pixel_limit() -> None:
    with pytest.raises(ImageTooLargeError) as info:
        load_image(np.zeros((10, 11), dtype=np.uint8), max_pixels=100)
    assert (info.value.limit, info.value.actual) == (100, 110)


# -- limits ---------------------------------------------------------------------------------


def test_load_image_refuses_bytes_over_the_byte_limit() -> None:
    data = encode(Image.fromarray(gradient()), "PNG")
    with pytest.raises(ImageTooLargeError, match="bytes") as info:
        load_image(data, max_bytes=len(data) - 1)
    assert (info.value.limit, info.value.actual) == (len(data) - 1, len(data))
    assert load_image(data, max_bytes=len(data)).shape == (24, 32, 3)


def test_load_image_refuses_a_file_over_the_byte_limit_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(encode(Image.fromarray(gradient()), "PNG"))
    with pytest.raises(ImageTooLargeError, match="bytes") as info:
        load_image(path, max_bytes=10)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("declare", "side"), [(png_declaring, 100_000), (jpeg_declaring, 65_000)], ids=["png", "jpeg"])
def test_load_image_refuses_a_huge_declared_size_from_the_header(declare: object, side: int) -> None:
    data = declare(side, side)  # type: ignore[operator]
    assert len(data) < 1000  # nothing to decode: refusing it must not need the pixels
    with pytest.raises(ImageTooLargeError, match="pixels") as info:
        load_image(data)
    assert info.value.actual == side * side
    assert info.value.limit == 40_000_000
    assert "40000000" in str(info.value)


@pytest.mark.parametrize("declare", [png_declaring, jpeg_declaring], ids=["png", "jpeg"])
def test_load_image_refuses_a_size_pillow_only_warns_about_with_our_error(declare: object) -> None:
    # 100 M pixels: above Pillow's warning level (89 M), below its own error level (179 M).
    with pytest.raises(ImageTooLargeError) as info:
        load_image(declare(10_000, 10_000))  # type: ignore[operator]
    assert info.value.actual == 100_000_000


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_load_image_applies_the_pixel_limit_without_decoding_pixels(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(Image.fromarray(gradient()), fmt)

    def no_decoding(self: object) -> None:
        raise AssertionError("pixels were decoded")

    with monkeypatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", no_decoding)
        with pytest.raises(ImageTooLargeError, match="32x24 = 768 pixels; the limit is 767"):
            load_image(data, max_pixels=767)
    assert load_image(data, max_pixels=768).shape == (24, 32, 3)


# -- malformed input ------------------------------------------------------------------------


def test_load_image_refuses_empty_bytes() -> None:
    with pytest.raises(InvalidImageError, match="empty"):
        load_image(b"")


def test_load_image_refuses_random_bytes_naming_the_expected_formats() -> None:
    data = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(InvalidImageError, match="JPEG or PNG"):
        load_image(data)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP", "TIFF"])
def test_load_image_refuses_other_formats_naming_the_supported_ones(fmt: str) -> None:
    data = encode(Image.new("RGB", (8, 8), (200, 10, 10)), fmt)
    with pytest.raises(InvalidImageError, match="expected JPEG or PNG") as info:
        load_image(data)
    assert info.value.code == "InvalidImageFormat"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_load_image_refuses_a_truncated_file_as_invalid(fmt: str, keep: float) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(InvalidImageError, match=f"cannot decode {fmt}"):
        load_image(data[: int(len(data) * keep)])


@pytest.mark.parametrize("head", [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"], ids=["jpeg", "png"])
def test_load_image_refuses_a_bare_signature(head: bytes) -> None:
    with pytest.raises(InvalidImageError):
        load_image(head)


def test_load_image_refuses_a_missing_file_and_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nobody.jpg"
    with pytest.raises(InvalidImageError, match="no such file") as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert info.value.source == str(path)


def test_load_image_refuses_a_directory_and_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="directory") as info:
        load_image(tmp_path)
    assert str(tmp_path) in str(info.value)


def _loop(tmp_path: Path) -> Path:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "photo.jpg").write_bytes(b"x")
    return tmp_path / "photo.jpg" / "inside.jpg"


@pytest.mark.parametrize(
    "path",
    [lambda t: t / "a\x00b.jpg", lambda t: t / ("x" * 5000), _under_a_file, _loop],
    ids=["nul", "too-long", "under-a-file", "link-loop"],
)
def test_load_image_refuses_a_path_that_cannot_be_read_as_an_image_error(tmp_path: Path, path: Any) -> None:
    with pytest.raises(InvalidImageError) as info:
        load_image(path(tmp_path))
    assert info.value.source is not None


def test_load_image_refuses_a_fifo_instead_of_waiting_on_it(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)
    with pytest.raises(InvalidImageError, match="is not a regular file"):
        load_image(fifo)


@pytest.mark.parametrize("limit", [None, float("nan"), 0, True, 1.5])
def test_load_image_refuses_a_limit_that_is_not_a_positive_whole_number(limit: object) -> None:
    data = encode(Image.fromarray(gradient()), "PNG")
    for name in ("max_pixels", "max_bytes"):
        with pytest.raises(InvalidParameterError) as info:
            load_image(data, **{name: limit})  # type: ignore[arg-type]
        assert info.value.parameter == name


def test_a_jpeg_with_corrupt_exif_decodes_and_where_warnings_are_errors_is_an_image_error() -> None:
    import warnings

    broken = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x09\x00\x00"
    data = encode(Image.fromarray(gradient()), "JPEG", exif=broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow reads past the damage, with a warning
        assert load_image(data).shape == (24, 32, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning raised: never a raw UserWarning from load_image
        with pytest.raises(InvalidImageError, match="Corrupt EXIF data"):
            load_image(data)


def test_load_image_names_the_file_when_its_content_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not an image")
    with pytest.raises(InvalidImageError, match="JPEG or PNG") as info:
        load_image(path)
    assert str(path) in str(info.value)


# -- fuzzing --------------------------------------------------------------------------------


def _seeds() -> list[bytes]:
    rgb = gradient(12, 16)
    exif = Image.Exif()
    exif[0x0112] = 6
    return [
        encode(Image.fromarray(rgb), "JPEG"),
        encode(Image.fromarray(rgb), "JPEG", progressive=True),
        encode(Image.fromarray(rgb), "JPEG", exif=exif.tobytes()),
        encode(Image.fromarray(rgb), "PNG"),
        encode(Image.fromarray(rgb).convert("P"), "PNG"),
        encode(Image.fromarray(rgb).convert("LA"), "PNG"),
        encode(Image.fromarray(rgb).convert("I;16"), "PNG"),
    ]


SEEDS = _seeds()
EDITS = st.lists(
    st.tuples(st.sampled_from(["set", "delete", "insert"]), st.integers(0, 10_000), st.integers(0, 255)),
    min_size=1,
    max_size=8,
)


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, where, value in edits:
        at = where % (len(out) + 1)
        if op == "insert" or not out:
            out.insert(at, value)
        elif op == "set":
            out[at % len(out)] = value
        else:
            del out[at : at + 1 + value % 32]
    return bytes(out)


def assert_decodes_or_refuses(data: bytes) -> None:
    try:
        out = load_image(data, max_pixels=4_000_000)
    except InvalidInputError:
        return
    assert out.dtype == np.uint8
    assert out.ndim == 3
    assert out.shape[2] == 3
    assert out.shape[0] > 0
    assert out.shape[1] > 0


# Pillow warns about corrupt EXIF blocks (and then decodes the pixels anyway); that warning
# is Pillow's, not ours, so it is not what these tests look for.
IGNORE_PILLOW_EXIF_WARNINGS = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")


@IGNORE_PILLOW_EXIF_WARNINGS
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_load_image_turns_arbitrary_bytes_into_an_image_or_an_input_error(data: bytes) -> None:
    assert_decodes_or_refuses(data)


@IGNORE_PILLOW_EXIF_WARNINGS
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64), st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"]))
def test_load_image_turns_a_valid_signature_with_junk_into_an_image_or_an_input_error(
    junk: bytes, signature: bytes
) -> None:
    assert_decodes_or_refuses(signature + junk)


@IGNORE_PILLOW_EXIF_WARNINGS
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), EDITS)
def test_load_image_turns_mutated_jpeg_and_png_into_an_image_or_an_input_error(
    seed: bytes, edits: list[tuple[str, int, int]]
) -> None:
    assert_decodes_or_refuses(mutate(seed, edits))
