"""Images in: bytes | path | ndarray → RGB uint8, EXIF orientation applied, limits enforced."""

from __future__ import annotations

import io
import logging
import re
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from facetrust.errors import ImageTooLargeError, InvalidImageError, InvalidParameterError, ServiceBusyError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from PIL import Image

    from facetrust.budget import DecodeBudget

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_FORMATS",
    "ImageSource",
    "load_image",
    "read_image_file",
]

log = logging.getLogger(__name__)

ImageSource = Union[bytes, bytearray, memoryview, str, "PathLike[str]", "np.ndarray"]

DEFAULT_MAX_BYTES = 15 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
SUPPORTED_FORMATS = ("JPEG", "PNG")
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


def load_image(
    source: ImageSource,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    budget: DecodeBudget | None = None,
) -> np.ndarray:
    """Decode ``source`` into an RGB ``uint8`` array of shape (height, width, 3).

    ``source`` is encoded JPEG/PNG bytes, a path to such a file, or an already decoded
    array (H×W grayscale or H×W×3 RGB, uint8). EXIF orientation is applied; grayscale,
    palette, alpha (composited on white) and 16-bit images are converted.

    Raises:
        InvalidImageError: not a JPEG or PNG, truncated, or corrupt.
        ImageTooLargeError: more than ``max_bytes`` bytes, or more than ``max_pixels`` pixels
            (checked from the header, before the pixels are decoded).
        ServiceBusyError: with a ``budget``, when its pixels stay in use by other decoded
            images for too long. The image's pixels are reserved from the header on, and
            stay reserved until the returned array is freed.
    """
    import numpy as np

    for name, limit in (("max_bytes", max_bytes), ("max_pixels", max_pixels)):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidParameterError(f"{name} must be a whole number of at least 1; got {limit!r}", parameter=name)
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    label: str | None = None
    if isinstance(source, (str, PathLike)):
        label = str(source)
        data = read_image_file(Path(source), max_bytes)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        raise InvalidParameterError(
            f"Unsupported image source of type {type(source).__name__}; pass bytes, a path or a numpy array",
            parameter="image",
        )
    return _decode(data, max_bytes=max_bytes, max_pixels=max_pixels, label=label, budget=budget)


@contextmanager
def named_image(name: str) -> Iterator[None]:
    """Image errors raised in the block name ``name`` (say "SourceImage") when they name no file
    (bytes and arrays have no name of their own); an unsupported source names it as the parameter."""
    try:
        yield
    except InvalidImageError as exc:
        if exc.source is not None:
            raise
        raise InvalidImageError(exc.message, source=name) from None
    except ImageTooLargeError as exc:
        if exc.source is not None:
            raise
        raise ImageTooLargeError(exc.message, limit=exc.limit, actual=exc.actual, source=name) from None
    except InvalidParameterError as exc:
        if exc.parameter != "image":
            raise
        raise InvalidParameterError(f"{name}: {exc.message}", parameter=name) from None


def read_image_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of an image file, undecoded; ``ImageTooLargeError`` past ``max_bytes``,
    ``InvalidImageError`` when it cannot be read."""
    try:
        found = path.stat()
        if stat.S_ISDIR(found.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(found.st_mode):  # a FIFO or a device would block, or never end
            raise InvalidImageError("is not a regular file", source=str(path))
        size = found.st_size
        if size > max_bytes:
            raise ImageTooLargeError(
                f"image is {size} bytes; the limit is {max_bytes}", limit=max_bytes, actual=size, source=str(path)
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidImageError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise InvalidImageError("is a directory, not an image file", source=str(path)) from None
    except PermissionError:
        raise InvalidImageError("permission denied", source=str(path)) from None
    except NotADirectoryError:
        raise InvalidImageError("a part of the path is a file, not a folder", source=str(path)) from None
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long, a loop of links, an I/O error
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidImageError(f"cannot be read: {reason}", source=str(path)[:300]) from None


def _sniff(data: bytes) -> str | None:
    for magic, fmt in _SIGNATURES.items():
        if data.startswith(magic):
            return fmt
    return None


def _reason(exc: BaseException) -> str:
    """Pillow's message without the repr of our in-memory file (``<_io.BytesIO object at 0x…>``)."""
    return re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc)) or type(exc).__name__


def _decode(
    data: bytes, *, max_bytes: int, max_pixels: int, label: str | None, budget: DecodeBudget | None
) -> np.ndarray:
    from PIL import Image

    if len(data) == 0:
        raise InvalidImageError("image is empty (0 bytes)", source=label)
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"image is {len(data)} bytes; the limit is {max_bytes}", limit=max_bytes, actual=len(data), source=label
        )
    fmt = _sniff(data)
    if fmt is None:
        raise InvalidImageError(
            f"not a supported image format (expected {' or '.join(SUPPORTED_FORMATS)}; first bytes {data[:8].hex()})",
            source=label,
        )
    declared = _header_size(data, fmt)
    if declared is not None:
        _check_pixels(*declared, max_pixels=max_pixels, label=label)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            _scale_grey_transparency(im, data)
            width, height = im.size
            if width <= 0 or height <= 0:
                raise InvalidImageError(f"{fmt} header declares an empty image ({width}x{height})", source=label)
            _check_pixels(width, height, max_pixels=max_pixels, label=label)
            if budget is None:
                return _pixels(im)
            kept = width * height  # what the RGB array costs while it lives, in budget units (3 bytes)
            # while it decodes, its copies too: at most the whole budget (such an image decodes alone)
            decoding = max(kept, min(budget.pixels, -(-kept * _decode_bytes(im) // 3)))
            budget.reserve(decoding, source=label)
            try:
                rgb = _pixels(im)
            except BaseException:
                budget.release(decoding)
                raise
            budget.release(decoding - kept)  # the decode's own copies are gone: the array's pixels stay
            budget.release_when_freed(rgb, kept)
            return rgb
    except (InvalidImageError, ImageTooLargeError, ServiceBusyError):
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, in case ours is looser
        raise ImageTooLargeError(str(exc), limit=max_pixels, actual=0, source=label) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise InvalidImageError(f"cannot decode {fmt} image: {_reason(exc)}", source=label) from None
    except UserWarning as exc:  # Pillow's warning of damage it reads past (corrupt EXIF), where warnings are errors
        raise InvalidImageError(f"cannot decode {fmt} image: {_reason(exc)}", source=label) from None
    except MemoryError:
        raise ImageTooLargeError(
            "image needs too much memory to decode", limit=max_pixels, actual=0, source=label
        ) from None


def _scale_grey_transparency(im: Image.Image, data: bytes) -> None:
    """A 1-, 2- or 4-bit grey PNG's tRNS value on the 0–255 scale its pixels are loaded on (Pillow
    scales the pixels, not the value, so no pixel matched it)."""
    clear = im.info.get("transparency")
    if im.format != "PNG" or not isinstance(clear, int) or isinstance(clear, bool) or len(data) < 26:
        return
    depth, colour = data[24], data[25]  # IHDR: bit depth, colour type (0: grey)
    if colour == 0 and depth in (1, 2, 4):
        im.info["transparency"] = clear * 255 // ((1 << depth) - 1)


def _pixels(im: Image.Image) -> np.ndarray:
    from PIL import ImageOps

    im.load()
    try:
        orientation = im.getexif().get(_ORIENTATION, 1)
    except UserWarning:  # Pillow's "Corrupt EXIF data", raised where warnings are errors: read it as upright
        orientation = 1
    if orientation in (2, 3, 4, 5, 6, 7, 8):  # exif_transpose copies even when upright
        im = ImageOps.exif_transpose(im)
    return _to_rgb(im)


_ORIENTATION = 0x0112  # the EXIF tag


def _decode_bytes(im: Image.Image) -> int:
    """Bytes a pixel at the peak of decoding ``im``: Pillow's own copy (1 byte a pixel for 1-bit,
    grey and palette images, 2 for 16-bit grey, 4 for the rest: Pillow keeps RGB as 4 bytes), a
    second one when EXIF says to turn it, and the 3-byte RGB array."""
    from PIL import Image

    mode = im.mode
    source = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    turned = False
    raw = im.info.get("exif")  # read from the header; Image.getexif() would decode a PNG's pixels first
    if isinstance(raw, (bytes, bytearray)):
        try:
            exif = Image.Exif()
            exif.load(bytes(raw))
            turned = exif.get(_ORIENTATION, 1) in (2, 3, 4, 5, 6, 7, 8)
        except Exception:  # damaged EXIF: read as upright, as the pixels are
            turned = False
    return source * (2 if turned else 1) + 3


def _check_pixels(width: int, height: int, *, max_pixels: int, label: str | None) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            limit=max_pixels,
            actual=width * height,
            source=label,
        )


# JPEG start-of-frame markers (they carry the image size); C4, C8 and CC are other segments.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) as the PNG IHDR or JPEG SOF header declares it; None when not found.

    Read here, before Pillow opens the image, so that our pixel limit applies first: Pillow's
    own decompression-bomb guard warns (an exception under ``-W error``) from 89 M pixels and
    reports its limit, not ours.
    """
    try:
        if fmt == "PNG":
            if data[12:16] != b"IHDR":
                return None
            width, height = struct.unpack_from(">II", data, 16)
            return int(width), int(height)
        i = 2
        while i + 4 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
            elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
                i += 2
            elif marker in _JPEG_SOF:
                height, width = struct.unpack_from(">HH", data, i + 5)
                return int(width), int(height)
            elif marker == 0xDA:  # start of scan: no frame header before it
                return None
            else:
                i += 2 + struct.unpack_from(">H", data, i + 2)[0]
    except struct.error:
        return None
    return None


_STRIPE_PIXELS = 1 << 20  # pixels converted at a time


def _to_rgb(im: Image.Image) -> np.ndarray:
    import numpy as np
    from PIL import Image

    mode = im.mode
    width, height = im.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, _STRIPE_PIXELS // width)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # one channel of 16/32 bits: scaled to 8
        if mode == "F":
            scale, offset = 1.0, 0.0
        else:
            extrema: Any = im.getextrema()  # one band: (lowest, highest)
            top_value = 65535.0 if mode.startswith("I;16") or float(extrema[1] or 0) > 255 else 255.0
            scale, offset = 255.0 / top_value, 0.5
        clear = im.info.get("transparency")  # a PNG tRNS grey value: those pixels are transparent
        for top in range(0, height, rows):  # a stripe at a time, as below: no full-size temporaries
            stripe = np.asarray(im.crop((0, top, width, min(height, top + rows))), dtype=np.float32)
            grey = np.clip(stripe * scale + offset, 0, 255).astype(np.uint8)
            if isinstance(clear, int) and not isinstance(clear, bool):
                grey[stripe == clear] = 255  # composited onto white, as an alpha channel is
            out[top : top + grey.shape[0]] = grey[:, :, None]
        return out
    # an alpha channel, or a PNG tRNS chunk (a palette's, or one grey or RGB value made transparent)
    alpha = mode in ("RGBA", "LA", "PA") or (mode in ("P", "L", "RGB", "1") and "transparency" in im.info)
    for top in range(0, height, rows):  # a stripe at a time: no full-size copy in another mode
        part = im.crop((0, top, width, min(height, top + rows)))
        if alpha:
            rgba = part.convert("RGBA")
            part = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        if part.mode != "RGB":
            part = part.convert("RGB")
        out[top : top + part.height] = np.asarray(part, dtype=np.uint8)
    return out


def _from_array(arr: np.ndarray, max_pixels: int) -> np.ndarray:
    import numpy as np

    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise InvalidImageError(
            f"array of shape {arr.shape} is not an image; expected (H, W) grayscale or (H, W, 3) RGB"
        )
    if arr.dtype != np.uint8:
        raise InvalidImageError(f"array dtype is {arr.dtype}; expected uint8")
    height, width = arr.shape[:2]
    if height == 0 or width == 0:
        raise InvalidImageError(f"array of shape {arr.shape} is empty")
    if height * width > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            limit=max_pixels,
            actual=width * height,
        )
    if arr.ndim == 2 or arr.shape[2] == 1:
        arr = np.repeat(arr.reshape(height, width, 1), 3, axis=2)
    return np.ascontiguousarray(arr)
