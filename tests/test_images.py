"""Tests for lookalike.images: every format, mode and failure a photo collection throws at us.

All images are made here, in tmp_path, with Pillow and numpy.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike.discovery
from lookalike.discovery import IMAGE_EXTENSIONS, DiscoveryResult, discover_images
from lookalike.errors import ImageError, ValidationError
from lookalike.images import (
    DEFAULT_MAX_PIXELS,
    MAX_SIDE,
    decode_image,
    load_image,
    read_image_bytes,
)

# --------------------------------------------------------------------------- helpers


def gradient_rgb(height: int = 24, width: int = 32) -> np.ndarray:
    """A smooth RGB image: survives lossy codecs with small per-pixel error."""
    ys, xs = np.mgrid[0:height, 0:width]
    red = xs * 255 // (width - 1)
    green = ys * 255 // (height - 1)
    blue = np.full_like(xs, 90)
    return np.stack([red, green, blue], axis=2).astype(np.uint8)


def save(img: Image.Image, path: Path, **kwargs: object) -> Path:
    img.save(path, **kwargs)
    return path


def png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def crafted_png(width: int, height: int) -> bytes:
    """A valid-looking RGB PNG whose IHDR claims width x height, with correct CRCs."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00"))
        + chunk(b"IEND", b"")
    )


def assert_rgb(array: np.ndarray, height: int, width: int) -> None:
    assert array.shape == (height, width, 3)
    assert array.dtype == np.uint8
    assert array.flags.c_contiguous


# ------------------------------------------------------------------------- constants


def test_constants() -> None:
    assert DEFAULT_MAX_PIXELS == 89_478_485
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"} <= IMAGE_EXTENSIONS
    assert {".pgm", ".ppm", ".pbm", ".pnm"} <= IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)


# ------------------------------------------------------------------- format round trips

LOSSLESS = [("png", {}), ("bmp", {}), ("tiff", {}), ("tif", {}), ("ppm", {}),
            ("webp", {"lossless": True})]


@pytest.mark.parametrize(("ext", "options"), LOSSLESS)
def test_lossless_formats_round_trip_exactly(tmp_path: Path, ext: str, options: dict) -> None:
    pixels = gradient_rgb()
    path = save(Image.fromarray(pixels), tmp_path / f"img.{ext}", **options)
    out = load_image(path)
    assert_rgb(out, 24, 32)
    np.testing.assert_array_equal(out, pixels)


@pytest.mark.parametrize(("ext", "options"), [("jpg", {"quality": 95}), ("webp", {"quality": 95})])
def test_lossy_formats_round_trip_closely(tmp_path: Path, ext: str, options: dict) -> None:
    pixels = gradient_rgb()
    path = save(Image.fromarray(pixels), tmp_path / f"img.{ext}", **options)
    out = load_image(path)
    assert_rgb(out, 24, 32)
    assert np.abs(out.astype(int) - pixels.astype(int)).mean() < 4


def test_pgm_grey_round_trip(tmp_path: Path) -> None:
    grey = gradient_rgb()[:, :, 0]
    out = load_image(save(Image.fromarray(grey), tmp_path / "g.pgm"))
    assert_rgb(out, 24, 32)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)


def test_gif_takes_first_frame_of_animation(tmp_path: Path) -> None:
    red = Image.new("RGB", (8, 6), (255, 0, 0))
    blue = Image.new("RGB", (8, 6), (0, 0, 255))
    path = tmp_path / "anim.gif"
    red.save(path, save_all=True, append_images=[blue], duration=100, loop=0)
    with Image.open(path) as check:  # the fixture really has two different frames
        assert check.n_frames == 2
    out = load_image(path)
    assert_rgb(out, 6, 8)
    assert tuple(out[3, 4]) == (255, 0, 0)


def test_exif_orientation_6_rotates(tmp_path: Path) -> None:
    # 40 wide, 20 tall; left half red, right half blue. Orientation 6 means the
    # camera was turned: the image must be rotated 90 degrees clockwise to view.
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.fromarray(pixels), tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_image(path)
    assert_rgb(out, 40, 20)
    # Rotating clockwise puts the former left (red) half at the top.
    top, bottom = out[5, 10].astype(int), out[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


# ------------------------------------------------------------------------ pixel modes


def test_mode_l(tmp_path: Path) -> None:
    out = load_image(save(Image.new("L", (5, 4), 77), tmp_path / "l.png"))
    assert_rgb(out, 4, 5)
    assert (out == 77).all()


def test_mode_p_palette(tmp_path: Path) -> None:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 10, 200, 30])
    out = load_image(save(img, tmp_path / "p.png"))
    assert tuple(out[0, 0]) == (10, 200, 30)


def test_mode_p_with_transparency_composites_over_white(tmp_path: Path) -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 10, 200, 30])
    img.putpixel((1, 1), 1)
    path = save(img, tmp_path / "pt.png", transparency=0)
    out = load_image(path)
    assert tuple(out[0, 0]) == (255, 255, 255)  # transparent black shows as white
    assert tuple(out[1, 1]) == (10, 200, 30)


def test_mode_cmyk(tmp_path: Path) -> None:
    img = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(save(img, tmp_path / "c.tiff"))
    assert tuple(out[0, 0]) == (255, 0, 0)


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 65535, 257 * 100]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    with Image.open(path) as check:
        assert check.mode == "I;16"
    out = load_image(path)
    assert_rgb(out, 1, 4)
    assert list(out[0, :, 0]) == [0, 128, 255, 100]
    assert (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize("mode", ["I;16B", "I", "F"])
def test_wide_pil_modes_are_scaled(mode: str) -> None:
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    if mode == "I;16B":
        img = Image.frombytes(mode, (3, 1), values.astype(">u2").tobytes())
    else:
        img = Image.fromarray(values).convert(mode)
    assert img.mode == mode
    assert list(load_image(img)[0, :, 0]) == [0, 128, 255]


def test_float_mode_in_unit_range_is_scaled_by_255() -> None:
    img = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    assert list(load_image(img)[0, :, 1]) == [0, 128, 255]


def test_rgba_composites_over_white(tmp_path: Path) -> None:
    pixels = np.zeros((2, 3, 4), np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # opaque red
    pixels[0, 1] = (0, 0, 0, 0)  # fully transparent
    pixels[0, 2] = (0, 0, 0, 128)  # half-transparent black
    out = load_image(save(Image.fromarray(pixels, "RGBA"), tmp_path / "a.png"))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert tuple(out[0, 2]) == (127, 127, 127)


def test_mode_la(tmp_path: Path) -> None:
    img = Image.new("LA", (2, 2), (0, 0))
    img.putpixel((1, 1), (50, 255))
    out = load_image(save(img, tmp_path / "la.png"))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[1, 1]) == (50, 50, 50)


def test_mode_1bit(tmp_path: Path) -> None:
    img = Image.new("1", (4, 4), 0)
    img.putpixel((2, 2), 1)
    for path in (save(img, tmp_path / "b.png"), save(img, tmp_path / "b.pbm")):
        out = load_image(path)
        assert_rgb(out, 4, 4)
        assert tuple(out[0, 0]) == (0, 0, 0)
        assert tuple(out[2, 2]) == (255, 255, 255)


# ----------------------------------------------------------------- non-path inputs


def test_bytes_input_and_decode_image(tmp_path: Path) -> None:
    pixels = gradient_rgb()
    data = png_bytes(Image.fromarray(pixels))
    np.testing.assert_array_equal(load_image(data), pixels)
    np.testing.assert_array_equal(decode_image(data, source="x.png"), pixels)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert read_image_bytes(path) == data


def test_pil_image_input_returns_copy() -> None:
    img = Image.fromarray(gradient_rgb())
    out = load_image(img)
    np.testing.assert_array_equal(out, gradient_rgb())
    out[0, 0] = 0
    assert img.getpixel((0, 0)) != (0, 0, 0)  # the caller's image is untouched


def test_path_given_as_str(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (3, 2), (1, 2, 3)), tmp_path / "s.png")
    assert tuple(load_image(str(path))[1, 2]) == (1, 2, 3)


def test_array_grey_and_single_channel() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for array in (grey, grey[:, :, None]):
        out = load_image(array)
        assert_rgb(out, 3, 4)
        np.testing.assert_array_equal(out[:, :, 1], grey)


def test_array_rgb_is_copied() -> None:
    pixels = gradient_rgb()
    out = load_image(pixels)
    np.testing.assert_array_equal(out, pixels)
    assert not np.shares_memory(out, pixels)


def test_array_non_contiguous_becomes_contiguous() -> None:
    pixels = np.asfortranarray(gradient_rgb())[:, ::2]
    out = load_image(pixels)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, pixels)


def test_array_float_and_uint16() -> None:
    floats = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    assert list(load_image(floats)[0, :, 0]) == [0, 128, 255]
    wide = np.array([[0, 32768, 65535]], dtype=np.uint16)
    assert list(load_image(wide)[0, :, 0]) == [0, 128, 255]


def test_array_rgba_and_grey_alpha_over_white() -> None:
    rgba = np.array([[[255, 0, 0, 255], [0, 0, 0, 0]]], dtype=np.uint8)
    out = load_image(rgba)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    grey_alpha = np.array([[[40, 255], [40, 0]]], dtype=np.uint8)
    out = load_image(grey_alpha)
    assert tuple(out[0, 0]) == (40, 40, 40)
    assert tuple(out[0, 1]) == (255, 255, 255)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros(5, np.uint8),  # 1-D
        np.zeros((2, 2, 3, 1), np.uint8),  # 4-D
        np.zeros((2, 2, 5), np.uint8),  # 5 channels
    ],
)
def test_array_wrong_shape(array: np.ndarray) -> None:
    with pytest.raises(ValidationError, match="shape"):
        load_image(array)


@pytest.mark.parametrize("dtype", [np.int64, np.complex64, np.bool_, object])
def test_array_wrong_dtype(dtype: type) -> None:
    with pytest.raises(ValidationError, match="dtype"):
        load_image(np.zeros((2, 2, 3), dtype=dtype))


@pytest.mark.parametrize("bad", [np.array([[1.5]]), np.array([[-0.1]]), np.array([[np.nan]])])
def test_array_float_out_of_range(bad: np.ndarray) -> None:
    with pytest.raises(ValidationError):
        load_image(bad)


def test_array_empty() -> None:
    with pytest.raises(ImageError, match="no pixels"):
        load_image(np.zeros((0, 4, 3), np.uint8))


@pytest.mark.parametrize("value", [42, 3.5, None, ["a.png"]])
def test_wrong_python_type(value: object) -> None:
    with pytest.raises(ValidationError, match=f"got {type(value).__name__}"):
        load_image(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -5, True, 2.0])
def test_bad_max_pixels(value: object) -> None:
    with pytest.raises(ValidationError, match="max_pixels"):
        load_image(np.zeros((2, 2), np.uint8), max_pixels=value)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- failures


def expect_image_error(source: object, fragment: str, **kwargs: object) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(source, **kwargs)  # type: ignore[arg-type]
    assert fragment in info.value.reason, info.value.reason
    return info.value


def test_corrupt_file_with_jpg_extension(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    error = expect_image_error(path, "not an image (unrecognised format)")
    assert "noise.jpg" in str(error) and error.source == str(path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = io.BytesIO()
    Image.fromarray(gradient_rgb(64, 64)).save(data, "JPEG")
    path = tmp_path / "half.jpg"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    error = expect_image_error(path, "truncated or corrupt image: ")
    assert "half.jpg" in str(error)


def test_truncated_png_bytes_named() -> None:
    data = png_bytes(Image.fromarray(gradient_rgb(64, 64)))
    error = expect_image_error(data[: len(data) // 2], "truncated or corrupt", name="cut.png")
    assert str(error).startswith("cut.png: ")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "empty.png" in str(expect_image_error(path, "empty file (0 bytes)"))
    with pytest.raises(ImageError, match="empty"):
        read_image_bytes(path)


def test_empty_bytes() -> None:
    error = expect_image_error(b"", "empty")
    assert error.source == "<bytes>"


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a picture\n")
    assert "notes.txt" in str(expect_image_error(path, "not an image"))


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    assert "folder.jpg" in str(expect_image_error(folder, "is a directory"))
    with pytest.raises(ImageError, match="is a directory"):
        read_image_bytes(folder)


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(Image.new("RGB", (8, 8)), tmp_path / "huge.png")
    monkeypatch.setattr(lookalike.discovery, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ImageError, match=r"huge.png: file too large .* the limit is"):
        read_image_bytes(path)


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "ghost.png"
    assert "ghost.png" in str(expect_image_error(path, "file not found"))
    with pytest.raises(ImageError, match="file not found"):
        read_image_bytes(path)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads anything")
def test_permission_denied(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (2, 2)), tmp_path / "locked.png")
    path.chmod(0)
    try:
        assert "locked.png" in str(expect_image_error(path, "permission denied"))
    finally:
        path.chmod(0o644)


def test_permission_denied_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Works as root too: simulate the OS refusing to open the file (images.py opens it
    # with os.open, non-blocking, after checking that it is a regular file).
    path = save(Image.new("RGB", (2, 2)), tmp_path / "locked.png")
    real_open = os.open

    def refuse(where: object, *args: object, **kwargs: object) -> int:
        if os.fspath(where) == str(path):  # type: ignore[call-overload]
            raise PermissionError(13, "Permission denied")
        return real_open(where, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    assert "locked.png" in str(expect_image_error(path, "permission denied"))
    with pytest.raises(ImageError, match="permission denied"):
        read_image_bytes(path)


def test_name_labels_errors(tmp_path: Path) -> None:
    error = expect_image_error(tmp_path / "nope.png", "file not found", name="photo 7")
    assert error.source == "photo 7"


# ---------------------------------------------------------------- decompression bombs


def test_max_pixels_refuses_real_image() -> None:
    img = Image.new("RGB", (20, 20))
    error = expect_image_error(png_bytes(img), "20x20 = 400 pixels", max_pixels=100)
    assert "above the limit of 100" in error.reason
    assert load_image(png_bytes(img), max_pixels=400).shape == (20, 20, 3)
    expect_image_error(np.zeros((20, 20), np.uint8), "above the limit", max_pixels=100)
    expect_image_error(img, "above the limit", max_pixels=100)


def test_a_side_too_long_is_refused_whatever_the_pixel_count() -> None:
    # A few kB, under any pixel cap, and yet seconds of work to search.
    thin = Image.new("L", (MAX_SIDE + 1, 1))
    expect_image_error(png_bytes(thin), f"a side above the limit of {MAX_SIDE}")
    expect_image_error(png_bytes(thin.transpose(Image.Transpose.TRANSPOSE)), "a side above")
    assert load_image(png_bytes(Image.new("L", (MAX_SIDE, 1)))).shape == (1, MAX_SIDE, 3)


def test_tiny_real_png_passes() -> None:
    assert load_image(png_bytes(Image.new("RGB", (1, 1), (9, 8, 7))), max_pixels=1)[0, 0, 2] == 7


def test_header_checked_before_decoding(tmp_path: Path) -> None:
    # 10000x10000 is above our default limit but below Pillow's hard one, so it is
    # our own header check (not Pillow's) that must refuse it.
    path = tmp_path / "big.png"
    path.write_bytes(crafted_png(10_000, 10_000))
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            error = expect_image_error(path, "image is 10000x10000 = 100000000 pixels")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "above the limit of 89478485" in error.reason
    assert "big.png" in str(error)
    assert peak < 5_000_000


def test_crafted_huge_png_header(tmp_path: Path) -> None:
    data = crafted_png(60_000, 60_000)
    assert len(data) < 100
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    # Far above Pillow's hard limit, Pillow refuses it while parsing the header;
    # that must still come out as an ImageError naming the file and the size.
    error = expect_image_error(path, "decompression bomb")
    assert "3600000000 pixels" in error.reason
    assert "bomb.png" in str(error)
    # Even a caller who raises max_pixels past Pillow's hard limit is protected.
    expect_image_error(data, "decompression bomb", max_pixels=10**10)
    # Below Pillow's hard limit, our own header check names the dimensions.
    expect_image_error(crafted_png(5_000, 4_000), "5000x4000 = 20000000 pixels", max_pixels=10**7)
    with pytest.raises(ImageError):
        decode_image(data, source="bomb.png")


# ------------------------------------------------------------------------- discovery


def make_tree(root: Path) -> None:
    png = png_bytes(Image.new("RGB", (2, 2)))
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden_dir").mkdir()
    for rel in ["b.png", "a.JPG", "sub/c.Webp", "sub/deeper/d.tiff", ".hidden.png",
                ".hidden_dir/e.png", "sub/readme.txt", "sub/noext"]:
        (root / rel).write_bytes(png)


def test_discover_recursive(tmp_path: Path) -> None:
    make_tree(tmp_path)
    result = discover_images([tmp_path])
    assert isinstance(result, DiscoveryResult)
    assert result.failures == []
    rel = [p.relative_to(tmp_path).as_posix() for p in result.files]
    assert rel == ["a.JPG", "b.png", "sub/c.Webp", "sub/deeper/d.tiff"]
    assert all(p.is_absolute() for p in result.files)


def test_discover_not_recursive(tmp_path: Path) -> None:
    make_tree(tmp_path)
    result = discover_images([str(tmp_path)], recursive=False)
    assert [p.name for p in result.files] == ["a.JPG", "b.png"]


def test_discover_explicit_files_missing_and_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = discover_images(
        ["sub/readme.txt", tmp_path / "sub", "missing.png", "sub/../b.png", tmp_path / "b.png",
         ".hidden.png"]
    )
    names = [p.relative_to(tmp_path).as_posix() for p in result.files]
    # Explicit files are kept whatever their extension; folder contents follow.
    assert names == ["sub/readme.txt", "sub/c.Webp", "sub/deeper/d.tiff", "b.png", ".hidden.png"]
    assert all(p.is_absolute() for p in result.files)
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert failure.reason == "file not found"
    assert failure.source == str(tmp_path / "missing.png")


def test_discover_deduplicates_symlinks(tmp_path: Path) -> None:
    make_tree(tmp_path)
    link = tmp_path / "link.png"
    try:
        link.symlink_to(tmp_path / "b.png")
    except OSError:
        pytest.skip("symlinks not available")
    result = discover_images([tmp_path / "b.png", link])
    assert result.files == [tmp_path / "b.png"]


def test_discover_rejects_single_string() -> None:
    with pytest.raises(ValidationError):
        discover_images("photos")  # type: ignore[arg-type]


# --------------------------------------------------------------- reduced-scale decoding


def _big_jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def test_min_side_decodes_large_jpegs_at_reduced_scale_and_reports_full_size() -> None:
    from lookalike.images import decode_image_and_size

    data = _big_jpeg(2048, 1536)
    image, size = decode_image_and_size(data, source="big.jpg", min_side=256)
    assert size == (2048, 1536)
    assert 256 <= image.shape[0] < 1536 and image.shape[0] * 4 == image.shape[1] * 3
    full = decode_image(data, source="big.jpg")
    assert full.shape == (1536, 2048, 3)
    # The reduced decode is the same picture: compare with a shrunken full decode.
    shrunk = np.asarray(Image.fromarray(full).resize(image.shape[1::-1], Image.Resampling.BOX))
    assert np.abs(shrunk.astype(int) - image.astype(int)).mean() < 4


def test_min_side_respects_exif_rotation_and_small_images() -> None:
    from lookalike.images import decode_image_and_size

    image, size = decode_image_and_size(_big_jpeg(2048, 1536, orientation=6), source="r.jpg",
                                        min_side=256)
    assert size == (1536, 2048) and image.shape[0] > image.shape[1] >= 256
    small = _big_jpeg(400, 300)
    image, size = decode_image_and_size(small, source="s.jpg", min_side=256)
    assert size == (400, 300) and image.shape == (300, 400, 3)


def test_errors_cross_processes_whole() -> None:
    # A Ray shard's error comes back pickled: it must keep its type and its parts.
    import pickle

    from lookalike.errors import MissingDependencyError

    error = pickle.loads(pickle.dumps(ImageError("/photos/a.jpg", "truncated")))
    assert isinstance(error, ImageError) and error.source == "/photos/a.jpg"
    assert str(error) == "/photos/a.jpg: truncated"
    missing = pickle.loads(pickle.dumps(MissingDependencyError("ray", "the ray engine", "ray")))
    assert "pip install 'lookalike[ray]'" in str(missing) and missing.package == "ray"
