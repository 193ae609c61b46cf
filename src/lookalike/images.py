"""Robust image input: turn whatever a user hands us into an HxWx3 uint8 RGB array.

Everything the engine reads goes through :func:`load_image` (or
:func:`read_image_bytes` followed by :func:`decode_image`, for the indexing
pipeline, which hashes the bytes before decoding them). These functions accept
paths, encoded bytes, numpy arrays and PIL images, and normalise every odd corner
of real photo collections the same way:

* EXIF orientation is applied, so a portrait photo taken sideways stands upright;
* only the first frame of an animated image (GIF, WebP, multi-page TIFF) is used;
* grey, palette, CMYK, 1-bit and high-bit-depth images become 8-bit RGB, and
  16-bit images are scaled by their bit depth rather than clipped;
* transparency is composited over white, the way most viewers show it;
* the pixel count is checked from the header *before* the pixels are decoded, so
  a tiny file that claims to be 60000x60000 cannot exhaust memory;
* only regular files are opened: a FIFO, a socket or a device is refused from its
  file type, never read (reading a FIFO waits forever for a writer); PostScript is
  never decoded (Pillow would hand it to Ghostscript, an interpreter).

Every failure raises :class:`~lookalike.errors.ImageError` naming the file and a
short reason, or :class:`~lookalike.errors.ValidationError` when the caller
passed something that is not an image at all. No process-global Pillow setting
(``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``) is changed.

Finding the image files inside folders is :mod:`lookalike.discovery`'s job.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
from typing import Any, BinaryIO, TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.discovery import NOT_FOUND, fspath, open_regular_file, os_error_reason
from lookalike.errors import ImageError, ValidationError, expect

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_SIDE",
    "NOT_FOUND",
    "ImageInput",
    "decode_image",
    "fspath",
    "load_image",
    "read_image_bytes",
]

DEFAULT_MAX_PIXELS = 89_478_485
"""Largest width*height accepted by default; Pillow's own decompression-bomb limit."""

MAX_SIDE = 131_072
"""Longest side accepted, whatever the pixel count (2**17): a panorama of 131,072 x 680 is
under the default pixel cap, and a thin image beyond it is not a photo (a 39,000,000 x 1
PNG of 38 kB took seconds to search)."""

ImageInput: TypeAlias = str | os.PathLike[str] | bytes | npt.NDArray[Any] | Image.Image
"""Anything :func:`load_image` accepts."""

RGBArray: TypeAlias = npt.NDArray[np.uint8]

# Pillow modes whose samples are wider than 8 bits; converting them with
# Image.convert("RGB") clips at 255 instead of scaling, so they are handled in numpy.
_WIDE_INT16_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})

# Exceptions Pillow's decoders raise on malformed input besides OSError. Decoders
# are written against well-formed files, so a corrupt one can surface almost any
# of these; they all mean "this file is damaged".
_DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
)


# --------------------------------------------------------------------------- public API


def load_image(
    source: ImageInput,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
    min_side: int | None = None,
) -> RGBArray:
    """Load ``source`` as a new HxWx3 C-contiguous uint8 RGB array.

    ``source`` may be a path (read from disk), encoded bytes (decoded in memory),
    a numpy array (HxW, HxWx1, HxWx2, HxWx3 or HxWx4; uint8, uint16 or float in
    [0, 1]) or a PIL image (its current frame is used). ``name`` replaces the
    label errors use for the source ('<bytes>', '<array>', '<PIL image>' or the
    path). Images with more than ``max_pixels`` pixels are refused, and the error
    quotes ``max_pixels``; note that Pillow itself refuses anything above twice its
    own limit whatever ``max_pixels`` says. ``min_side`` lets a JPEG decode at a
    reduced scale (1/2, 1/4 or 1/8, chosen by the decoder) as long as its shorter
    side stays at least ``min_side``: several times faster for large photos that a
    model will shrink anyway.

    Raises:
        ImageError: the image is missing, unreadable, corrupt, truncated or too large.
        ValidationError: ``source`` is of an unsupported type, or an array has the
            wrong shape, dtype or value range.
    """
    _check_max_pixels(max_pixels)
    if isinstance(source, str | os.PathLike):
        path = fspath(source)
        return _load_path(path, name if name is not None else path, max_pixels, min_side)[0]
    if isinstance(source, bytes | bytearray | memoryview):
        return decode_image(bytes(source), source=name or "<bytes>", max_pixels=max_pixels,
                            min_side=min_side)
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name or "<array>", max_pixels)
    if isinstance(source, Image.Image):
        label = name or getattr(source, "filename", "") or "<PIL image>"
        return _decode_pil(source, str(label), max_pixels, owned=False)[0]
    raise ValidationError(
        f"expected a path, bytes, numpy array or PIL image, got {type(source).__name__}"
    )


def read_image_bytes(path: str | os.PathLike[str], *, name: str | None = None) -> bytes:
    """Read the raw bytes of the image file at ``path``.

    Raises :class:`ImageError` (labelled ``name`` or the path) when the file is
    missing, a directory, a FIFO, socket or device, empty or unreadable; the bytes
    are not decoded here.
    """
    where = fspath(path)
    label = name if name is not None else where
    with open_regular_file(where, label) as fh:
        try:
            data = fh.read()
        except OSError as exc:
            raise ImageError(label, os_error_reason(exc)) from exc
    # The file may have been emptied between the stat and the read.
    if not data:
        raise ImageError(label, "empty file (0 bytes)")
    return data


def decode_image(
    data: bytes, *, source: str, max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> RGBArray:
    """Decode encoded image ``data`` into a new HxWx3 uint8 RGB array.

    ``source`` is the label errors name (usually the path the bytes came from);
    ``min_side`` is as in :func:`load_image`. Raises :class:`ImageError` for
    empty, unrecognised, corrupt, truncated or oversized data.
    """
    return decode_image_and_size(data, source=source, max_pixels=max_pixels,
                                 min_side=min_side)[0]


def decode_image_and_size(
    data: bytes, *, source: str, max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> tuple[RGBArray, tuple[int, int]]:
    """Like :func:`decode_image`, and also the image's full (width, height), upright.

    The size is that of the stored image even when ``min_side`` let the decoder
    work at a reduced scale.
    """
    _check_max_pixels(max_pixels)
    expect(
        isinstance(data, bytes | bytearray | memoryview),
        f"expected image data as bytes, got {type(data).__name__}",
    )
    if len(data) == 0:
        raise ImageError(source, "empty data (0 bytes)")
    return _decode_stream(io.BytesIO(data), source, max_pixels, min_side)


# ------------------------------------------------------------------ reading from disk


def _load_path(
    path: str, label: str, max_pixels: int, min_side: int | None = None
) -> tuple[RGBArray, tuple[int, int]]:
    """Decode the file at ``path`` straight from disk (no full read into memory first)."""
    with open_regular_file(path, label) as fh:
        return _decode_stream(fh, label, max_pixels, min_side)


# ------------------------------------------------------------------------- decoding


def _decode_stream(
    fp: BinaryIO, source: str, max_pixels: int, min_side: int | None = None
) -> tuple[RGBArray, tuple[int, int]]:
    """Open, size-check, fully decode and convert the encoded image in ``fp``."""
    # Pillow warns above its own limit (DecompressionBombWarning) before we can apply
    # max_pixels. Silencing it here with catch_warnings would not be thread-safe (the
    # pipeline decodes in threads), so the CLI filters it once for its own process.
    try:
        img = Image.open(fp, formats=_readable_formats())
    except UnidentifiedImageError:
        raise ImageError(source, _unidentified_reason(fp)) from None
    except Image.DecompressionBombError as exc:
        raise ImageError(source, _bomb_reason(exc, max_pixels)) from None
    except _DECODE_ERRORS as exc:
        raise ImageError(source, _corrupt_reason(exc)) from exc
    with img:
        # A freshly opened file shows its first frame, which is the one we want.
        return _decode_pil(img, source, max_pixels, owned=True, min_side=min_side)


def _decode_pil(
    img: Image.Image, source: str, max_pixels: int, *, owned: bool, min_side: int | None = None
) -> tuple[RGBArray, tuple[int, int]]:
    """Check size, force decoding, orient and convert ``img``; also return its full size.

    ``owned`` says the image was opened here, so it may be rotated in place
    instead of copied (and decoded at a reduced scale when ``min_side`` allows).
    """
    _check_pixel_count(img.width, img.height, source, max_pixels)
    full_size = img.size
    if owned and min_side:
        _reduce_while_decoding(img, min_side)
    try:
        # Image.open only read the header; decoding everything now makes a
        # truncated file fail here, with its name, rather than later.
        img.load()
        turned = _orientation_swaps_axes(img)
        oriented = _apply_exif_orientation(img, owned=owned)
        upright = (full_size[1], full_size[0]) if turned else full_size
        return _pil_to_rgb(oriented), upright
    except Image.DecompressionBombError as exc:
        raise ImageError(source, _bomb_reason(exc, max_pixels)) from None
    except MemoryError:
        raise ImageError(source, "not enough memory to decode the image") from None
    except _DECODE_ERRORS as exc:
        raise ImageError(source, _corrupt_reason(exc)) from exc


def _orientation_swaps_axes(img: Image.Image) -> bool:
    """True when the EXIF orientation is a quarter turn (tags 5 to 8), swapping width and height."""
    try:
        return img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
    except Exception:  # damaged EXIF is ignored, as exif_transpose does
        return False


_EXIF_ORIENTATION = 0x0112


def _reduce_while_decoding(img: Image.Image, min_side: int) -> None:
    """Ask a JPEG decoder for the smallest DCT scale that keeps the shorter side >= min_side."""
    width, height = img.size
    shorter = min(width, height)
    if img.format != "JPEG" or shorter < 2 * min_side:
        return
    scale = min_side / shorter
    img.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))


def _check_pixel_count(width: int, height: int, source: str, max_pixels: int) -> None:
    """Refuse empty images, ones above ``max_pixels`` and ones with a side longer than
    :data:`MAX_SIDE`, before any pixel is decoded."""
    pixels = width * height
    if pixels == 0:
        raise ImageError(source, f"image has no pixels ({width}x{height})")
    if max(width, height) > MAX_SIDE:
        # A 39,000,000 x 1 PNG of 38 kB is under any pixel cap, yet took seconds to search.
        raise ImageError(source, f"image is {width}x{height} pixels, a side above the limit "
                                 f"of {MAX_SIDE} pixels")
    if pixels > max_pixels:
        raise ImageError(
            source,
            f"image is {width}x{height} = {pixels} pixels, above the limit of {max_pixels}",
        )


def _check_max_pixels(max_pixels: int) -> None:
    expect(
        isinstance(max_pixels, int) and not isinstance(max_pixels, bool) and max_pixels > 0,
        f"max_pixels must be a positive integer, got {max_pixels!r}",
    )


def _bomb_reason(exc: Exception, max_pixels: int) -> str:
    """Pillow's refusal of a huge image (above twice its ``MAX_IMAGE_PIXELS``, while it reads
    the header), told with the cap in force: ``max_pixels``, or Pillow's where that is lower."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    if found is None:  # a message of another shape: keep Pillow's words
        return f"refused as a possible decompression bomb: {exc}"
    pixels, pillows = int(found.group(1)), 2 * (Image.MAX_IMAGE_PIXELS or 0)
    cap = (f"the limit of {max_pixels}" if pixels > max_pixels or not pillows else
           f"the limit of {pillows} that Pillow enforces whatever max_pixels ({max_pixels}) is")
    return f"image has {pixels} pixels, above {cap}; refused as a possible decompression bomb"


def _corrupt_reason(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    if message.startswith("Decompressed data too large"):  # a PNG text or ICC chunk
        return f"refused as a possible decompression bomb: {message}"
    return f"truncated or corrupt image: {message}"


# Pillow decodes PostScript by running Ghostscript, an interpreter with a history of
# exploits, on whatever the file holds: never for a file from a photo folder.
_REFUSED_FORMATS = frozenset({"EPS"})

# How the formats of a photo folder start, to tell a damaged image that Pillow's parser
# gave up on from a file that is not an image at all.
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF87a": "GIF",
               b"GIF89a": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"II+\x00": "TIFF",
               b"MM\x00+": "TIFF", b"RIFF": "WebP", b"BM": "BMP"}


def _readable_formats() -> list[str]:
    Image.init()  # cheap once done; plugins registered later (HEIF) are in OPEN too
    return [fmt for fmt in Image.OPEN if fmt not in _REFUSED_FORMATS]


def _unidentified_reason(fp: BinaryIO) -> str:
    """'not an image', unless the file starts like an image format Pillow then gave up on."""
    try:
        fp.seek(0)
        head = fp.read(16)
    except (OSError, ValueError):
        head = b""
    fmt = next((name for magic, name in _SIGNATURES.items() if head.startswith(magic)), None)
    # RIFF also holds WAV and AVI; a BMP's reserved words are zero, a text's are not.
    if (fmt == "WebP" and head[8:12] != b"WEBP") or (fmt == "BMP" and any(head[6:10])):
        fmt = None
    if fmt is None:
        return "not an image (unrecognised format)"
    return f"truncated or corrupt image: it starts like a {fmt} file, but its header is damaged"


def _apply_exif_orientation(img: Image.Image, *, owned: bool) -> Image.Image:
    """Rotate/flip ``img`` as its EXIF orientation tag says.

    A damaged EXIF block is ignored rather than fatal: the pixels are fine and
    an unrotated image is far more useful than an error.
    """
    try:
        if owned:
            ImageOps.exif_transpose(img, in_place=True)
            return img
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        return img


def _pil_to_rgb(img: Image.Image) -> RGBArray:
    """Convert a decoded image of any Pillow mode to a new HxWx3 uint8 array."""
    if img.mode in _WIDE_INT16_MODES or img.mode in ("I", "F"):
        grey = _wide_to_uint8(img)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        # P and L images may carry transparency in info; converting to RGBA applies it.
        rgba = np.asarray(img.convert("RGBA"))
        return _composite_over_white(rgba[:, :, :3], rgba[:, :, 3])
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return np.array(rgb, dtype=np.uint8, order="C")


def _wide_to_uint8(img: Image.Image) -> RGBArray:
    """Scale a single-channel 16-bit, 32-bit integer or float image to 0..255.

    16-bit modes are divided by 257 (65535 -> 255). Mode 'I' is what older
    Pillows and some TIFFs give for 16-bit data, so values within 0..65535 are
    scaled the same way. Float images in [0, 1] are scaled by 255 and in 0..255
    are kept. Anything else has no known range and is stretched min..max.
    """
    values = np.asarray(img)
    if img.mode in _WIDE_INT16_MODES:
        return _uint16_to_uint8(values.astype(np.uint16))
    data = values.astype(np.float64)
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(data.min()), float(data.max())
    if img.mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = data * 255.0
    elif img.mode == "F" and low >= 0.0 and high <= 255.0:
        scaled = data
    elif low >= 0.0 and high <= 65535.0:
        scaled = data / 257.0
    elif high > low:
        scaled = (data - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(data)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _uint16_to_uint8(values: npt.NDArray[np.uint16]) -> RGBArray:
    """Round 16-bit samples to 8 bits: 0 -> 0, 32768 -> 128, 65535 -> 255."""
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _composite_over_white(rgb: RGBArray, alpha: RGBArray) -> RGBArray:
    """Blend uint8 ``rgb`` (HxWx3) over a white background using uint8 ``alpha`` (HxW).

    White, not black, because that is how browsers and viewers show transparent
    images, and it is what a user compares search results against.
    """
    colour = rgb.astype(np.uint32)
    a = alpha.astype(np.uint32)[:, :, None]
    blended = (colour * a + 255 * (255 - a) + 127) // 255
    return np.ascontiguousarray(blended.astype(np.uint8))


# ---------------------------------------------------------------------- numpy input


def _array_to_rgb(array: npt.NDArray[Any], source: str, max_pixels: int) -> RGBArray:
    """Validate an in-memory image array and convert it to a new HxWx3 uint8 array."""
    shape = array.shape
    valid_shape = array.ndim == 2 or (array.ndim == 3 and shape[2] in (1, 2, 3, 4))
    if not valid_shape:
        raise ValidationError(
            f"expected an image array of shape HxW or HxWxC with C in 1..4, got shape {shape}"
        )
    _check_pixel_count(shape[1], shape[0], source, max_pixels)
    samples = _array_to_uint8(array)
    channels = samples[:, :, None] if samples.ndim == 2 else samples
    count = channels.shape[2]
    if count in (1, 2):
        grey = np.repeat(channels[:, :, :1], 3, axis=2)
        if count == 1:
            return np.ascontiguousarray(grey)
        return _composite_over_white(grey, channels[:, :, 1])
    if count == 4:
        return _composite_over_white(channels[:, :, :3], channels[:, :, 3])
    return np.array(channels, dtype=np.uint8, order="C")  # always a copy: no aliasing


def _array_to_uint8(array: npt.NDArray[Any]) -> RGBArray:
    """Convert uint8, uint16 or [0, 1] float samples to uint8, rejecting anything else."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return _uint16_to_uint8(array)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValidationError("float image array contains NaN or infinity")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValidationError(
                f"float image values must lie in [0, 1], found {low:g}..{high:g}"
            )
        return np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)
    raise ValidationError(
        f"expected an image array of dtype uint8, uint16 or float in [0, 1], got {array.dtype}"
    )


Box = tuple[float, float, float, float]


def crop(image: np.ndarray, box: Box | None) -> np.ndarray:
    """The part of ``image`` inside ``box`` = (x0, y0, x1, y1), clipped to the image."""
    if box is None:
        return image
    x0, y0, x1, y1 = clip_box(box, image.shape[1], image.shape[0])
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def clip_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` = (x0, y0, x1, y1) in whole pixels, clipped to a ``width`` x ``height`` image;
    refused unless it is four finite numbers with some area inside the image."""
    expect(len(box) == 4, f"expected a box (x0, y0, x1, y1), got {box!r}")
    try:
        finite = all(math.isfinite(float(value)) for value in box)
    except (TypeError, ValueError):
        finite = False
    expect(finite, f"expected a box of four finite numbers, got {box!r}")
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1, y1 = min(width, round(box[2])), min(height, round(box[3]))
    expect(x1 > x0 and y1 > y0,
           f"expected a box with positive area inside the {width}x{height} image, got {box!r}")
    return x0, y0, x1, y1
