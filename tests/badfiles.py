"""A corpus of bad, odd and hostile image inputs, and what indexing must make of each.

Each *kind* is what an unlucky or hostile user's folder can hold: an empty file, a JPEG cut
in half, a PNG that claims to be 60000x60000, a FIFO named ``x.png``, a name that is not
UTF-8, a photo lying on its side in EXIF... A kind writes its file(s) into a sub-folder of
its own, named after it, and says what must happen to each: ``indexed`` (with the upright
size where it matters), ``failed`` with words its reason must contain, or ``skipped``
(neither indexed nor reported: hidden files, other extensions, a second path to one file).

    corpus = write_corpus(folder)                    # tests/test_bad_inputs.py, benchmarks
    report = collection.index([folder], progress=lambda done, total: corpus.change_files())
    verdicts, strays = judge(corpus, report.failures, indexed_sizes, max_pixels=cap)

Some kinds change their file between the listing and the reading of a run (it vanishes, is
emptied, becomes a FIFO): :meth:`Corpus.change_files` makes the change, and a run that
calls it from its first progress callback sees exactly that race, deterministically. A run
that lists the folder afterwards sees the changed files as they are (``settled=True``).

Everything is made from seeded generators, so the corpus is byte-for-byte the same on every
run; its 190-odd kinds take about 3 MB of disk (a 64 MB sparse file takes none) and are
written in under half a second. Kinds the machine cannot make (no FIFOs or symbolic links, a
file system that refuses a name) are left out of the corpus it returns, and the permission
kinds expect what the process running them gets: root reads anything.

A kind with a ``defect`` is a known bug outside the image reader and folder discovery; it is
kept out of the shared corpus (it could stop or hang a whole run) and run on its own.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import struct
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

Status = Literal["indexed", "failed", "skipped"]


@dataclass(frozen=True)
class Expect:
    """What must happen to one file. ``words`` (failed only) must all be in the reason,
    compared case-insensitively; ``{max_pixels}`` in a word stands for the run's cap.
    ``otherwise`` lists other outcomes that are as right (see :func:`either`)."""

    status: Status
    words: tuple[str, ...] = ()
    size: tuple[int, int] | None = None  # indexed: the (width, height) catalogued, upright
    otherwise: tuple[Expect, ...] = ()


INDEXED = Expect("indexed")
SKIPPED = Expect("skipped")


def indexed(width: int, height: int) -> Expect:
    return Expect("indexed", size=(width, height))


def failed(*words: str) -> Expect:
    return Expect("failed", words=words)


def either(first: Expect, *others: Expect) -> Expect:
    """``first``, or any of ``others``: outcomes that depend on the channel settings (a flat
    image has an empty embedding under the thumbnail extractor, not under a CNN), or on
    which of two right reasons a layer gives."""
    return Expect(first.status, first.words, first.size, otherwise=others)


BLANK = failed("blank image")
"""A channel found nothing in the picture (a flat colour under the thumbnail extractor)."""


Files = dict[str, Expect]
"""File names, relative to the kind's folder, and what must happen to each."""


@dataclass(frozen=True)
class Kind:
    name: str
    group: str
    make: Callable[[Path], Files]
    change: Callable[[Path], Files] | None = None  # returns what a later listing must see
    defect: str | None = None  # a known bug outside images.py and discovery.py


KINDS: list[Kind] = []


def kind(group: str, *, name: str | None = None, change: Callable[[Path], Files] | None = None,
         defect: str | None = None) -> Callable[[Callable[[Path], Files]],
                                                Callable[[Path], Files]]:
    """Register the decorated function as a kind (named after it, less ``make_``)."""

    def register(make: Callable[[Path], Files]) -> Callable[[Path], Files]:
        label = name or make.__name__.removeprefix("make_")
        if any(known.name == label for known in KINDS):
            raise ValueError(f"two kinds named {label!r}")
        KINDS.append(Kind(label, group, make, change, defect))
        return make

    return register


class Unsupported(Exception):
    """The machine cannot make this kind (no FIFOs, no symbolic links, a refused name)."""


# -- pixels and encoders ----------------------------------------------------------------------

def photo(seed: int, width: int = 96, height: int = 72) -> np.ndarray:
    """A smooth random colour picture, different for every seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))


def encoded(image: Image.Image | np.ndarray, fmt: str, **options: object) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    out = io.BytesIO()
    picture.save(out, format=fmt, **options)
    return out.getvalue()


def jpeg(seed: int = 1, width: int = 96, height: int = 72, **options: object) -> bytes:
    return encoded(photo(seed, width, height), "JPEG", quality=90, **options)


def png(seed: int = 1, width: int = 96, height: int = 72) -> bytes:
    return encoded(photo(seed, width, height), "PNG")


def chunk(kind_: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    """A PNG chunk with its length and CRC (a wrong ``crc`` if given)."""
    good = zlib.crc32(kind_ + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind_ + data + struct.pack(">I", good if crc is None
                                                                      else crc)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def raw_png(width: int, height: int, rows: bytes, *, colour: int = 2, depth: int = 8,
            interlace: int = 0, before_idat: Sequence[bytes] = (), after_iend: bytes = b"",
            idat_split: int | None = None) -> bytes:
    """A PNG assembled chunk by chunk from already filtered scanline bytes."""
    compressed = zlib.compress(rows, 9)
    parts = [compressed] if idat_split is None else [
        compressed[i:i + idat_split] for i in range(0, len(compressed), idat_split)]
    return (PNG_SIGNATURE
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0,
                                         interlace))
            + b"".join(before_idat)
            + b"".join(chunk(b"IDAT", part) for part in parts)
            + chunk(b"IEND", b"") + after_iend)


def scanlines(pixels: np.ndarray) -> bytes:
    """Rows of ``pixels`` (HxWxC uint8, or uint16 big-endian) each behind filter type 0."""
    rows = pixels.reshape(pixels.shape[0], -1)
    raw = rows.astype(">u2").tobytes() if pixels.dtype == np.uint16 else rows.tobytes()
    stride = len(raw) // pixels.shape[0]
    return b"".join(b"\x00" + raw[y * stride:(y + 1) * stride] for y in range(pixels.shape[0]))


def adam7(pixels: np.ndarray) -> bytes:
    """The scanlines of an Adam7-interlaced PNG (seven passes, each filtered with type 0)."""
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2)]
    out = b""
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.shape[0] and sub.shape[1]:
            out += scanlines(sub)
    return out


def with_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """A JPEG with one more marker segment right after its SOI."""
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("a JPEG segment holds at most 65533 bytes")
    return data[:2] + struct.pack(">HH", marker, len(payload) + 2) + payload + data[2:]


def exif_payload(entries: Sequence[tuple[int, int, int, bytes]], *, tail: bytes = b"") -> bytes:
    """A little-endian EXIF block with one IFD of (tag, type, count, 4-byte value) entries."""
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind_, count) + value.ljust(4, b"\0")
        for tag, kind_, count, value in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + tail


def exif_orientation(value: int) -> bytes:
    return exif_payload([(0x0112, 3, 1, struct.pack("<H", value))])


def photoshop_iptc(iptc: bytes) -> bytes:
    """An APP13 'Photoshop 3.0' payload holding ``iptc`` as its IPTC-NAA (0x0404) resource."""
    block = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc))
    block += iptc + (b"\x00" if len(iptc) % 2 else b"")
    return b"Photoshop 3.0\x00" + block


def iptc_field(record: int, dataset: int, value: bytes) -> bytes:
    return bytes([0x1C, record, dataset]) + struct.pack(">H", len(value)) + value


def xmp_packet(body: str) -> bytes:
    return b"http://ns.adobe.com/xap/1.0/\x00" + body.encode()


def tiff_header(width: int, height: int, *, data: bytes = b"\x00" * 16) -> bytes:
    """A minimal little-endian greyscale TIFF whose header claims ``width`` x ``height``."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height),
               (279, 4, 1, len(data))]
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_size
    ifd = struct.pack("<H", len(entries))
    for tag, kind_, count, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack("<H", value) + b"\0\0" if kind_ == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind_, count) + packed
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data


def bmp_file(width: int, height: int, bits: int, pixels: bytes, *, palette: bytes = b"",
             compression: int = 0, colours: int = 0) -> bytes:
    """A Windows BMP (BITMAPINFOHEADER) around already laid out ``pixels``."""
    offset = 14 + 40 + len(palette)
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, compression, len(pixels),
                         2835, 2835, colours, 0)
    return (b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header
            + palette + pixels)


def gif(width: int, height: int, *, frames: int = 1, screen: tuple[int, int] | None = None,
        version: bytes = b"GIF89a") -> bytes:
    """A GIF of ``frames`` frames alternating two colours; ``screen`` overrides the logical
    screen size its header claims, and ``version`` its signature."""
    colours = [Image.new("P", (width, height), i % 2) for i in range(max(frames, 1))]
    for image in colours:
        image.putpalette([200, 40, 40, 40, 40, 200])
    data = bytearray(encoded(colours[0], "GIF", save_all=frames > 1, append_images=colours[1:],
                             duration=20, loop=0))
    data[:6] = version
    if screen is not None:
        data[6:10] = struct.pack("<HH", *screen)
    return bytes(data)


def gif_without_frames(width: int, height: int) -> bytes:
    """A GIF with a header, a colour table and a trailer, and no frame at all."""
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
            + b"\x00\x00\x00\xff\xff\xff" + b"\x3b")


# -- writing helpers ---------------------------------------------------------------------------

def put(folder: Path, name: str | bytes, data: bytes) -> str:
    """Write ``data`` as ``folder/name`` (a bytes name may be any bytes) and return the name
    as :func:`os.listdir` gives it back (undecodable bytes as surrogates)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = os.path.join(os.fsencode(folder), name if isinstance(name, bytes)
                          else os.fsencode(name))
    try:
        with open(target, "wb") as out:
            out.write(data)
    except OSError as error:
        raise Unsupported(f"cannot create {name!r}: {error.strerror}") from error
    return os.fsdecode(name)


def one(folder: Path, name: str, data: bytes, expect: Expect = INDEXED) -> Files:
    return {put(folder, name, data): expect}


def link(folder: Path, name: str, target: str | Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / name).symlink_to(target)
    except (OSError, NotImplementedError) as error:
        raise Unsupported(f"no symbolic links here: {error}") from error
    return name


def fifo(path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        raise Unsupported("no FIFOs here")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkfifo(path)
    except OSError as error:
        raise Unsupported(f"cannot make a FIFO: {error.strerror}") from error


def reads_anything() -> bool:
    """Whether this process reads files whose mode forbids it (root, or CAP_DAC_OVERRIDE):
    found by trying, since a root without that capability is refused like anyone."""
    handle, probe = tempfile.mkstemp(prefix="badfiles-probe-")
    os.close(handle)
    try:
        os.chmod(probe, 0)
        with open(probe, "rb"):
            return True
    except PermissionError:
        return False
    finally:
        os.unlink(probe)


def can_decode(fmt: str) -> bool:
    """Whether this machine's Pillow reads ``fmt``: a small picture survives a round trip,
    or, for a format it cannot write (HEIF), a reader is registered."""
    Image.init()
    if fmt not in Image.SAVE:
        return fmt in Image.OPEN
    try:
        data = encoded(photo(0, 8, 8), fmt)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:  # no codec compiled in: any of Pillow's errors
        return False
    return True


# Reasons, as words the failure must contain.
NOT_AN_IMAGE = ("not an image",)
CORRUPT = ("truncated or corrupt",)
BOMB = ("pixels", "above the limit of {max_pixels}")


# -- empty, garbage and files that are not images -------------------------------------------------

@kind("garbage")
def make_empty_jpg(folder: Path) -> Files:
    return one(folder, "empty.jpg", b"", failed("empty"))


@kind("garbage")
def make_empty_png(folder: Path) -> Files:
    return one(folder, "empty.png", b"", failed("empty"))


@kind("garbage")
def make_one_byte(folder: Path) -> Files:
    return one(folder, "one.jpg", b"\xff", failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_nul_bytes(folder: Path) -> Files:
    return one(folder, "zeros.png", b"\0" * 4096, failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_random_bytes(folder: Path) -> Files:
    noise = np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    return one(folder, "noise.jpg", b"\x00" + noise, failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_text_as_jpg(folder: Path) -> Files:
    return one(folder, "notes.jpg", b"shopping list: milk, eggs\n", failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_html_as_png(folder: Path) -> Files:
    page = b"<!DOCTYPE html><html><body><img src='cat.png'></body></html>\n"
    return one(folder, "saved-page.png", page, failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_svg_as_png(folder: Path) -> Files:
    svg = b"<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'><rect/></svg>"
    return one(folder, "vector.png", svg, failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_zip_as_jpg(folder: Path) -> Files:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("photo.jpg", (2020, 1, 1, 0, 0, 0)), jpeg())
    return one(folder, "archive.jpg", out.getvalue(), failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_pdf_as_jpg(folder: Path) -> Files:
    return one(folder, "scan.jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
               failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_postscript_as_jpg(folder: Path) -> Files:
    # Pillow hands EPS to Ghostscript, an interpreter: never for a file from a photo folder.
    eps = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"
           b"newpath 0 0 moveto 8 8 lineto stroke showpage\n%%EOF\n")
    return one(folder, "drawing.jpg", eps, failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_utf16_text_as_png(folder: Path) -> Files:
    return one(folder, "readme.png", "not a picture\n".encode("utf-16"), failed(*NOT_AN_IMAGE))


@kind("garbage")
def make_jpeg_soi_only(folder: Path) -> Files:
    return one(folder, "soi.jpg", b"\xff\xd8\xff", failed(*CORRUPT))


@kind("garbage")
def make_png_signature_only(folder: Path) -> Files:
    return one(folder, "signature.png", PNG_SIGNATURE, failed(*CORRUPT))


@kind("garbage")
def make_heic_here(folder: Path) -> Files:
    # Not a real HEIC (nothing here encodes one): a brand box and no picture. Without a HEIF
    # decoder it must be named as unsupported, not vanish; with one, it is a broken file.
    data = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic" + b"\0" * 32
    expect = failed() if can_decode("HEIF") else failed("HEIF", "cannot be decoded here")
    return one(folder, "IMG_0001.heic", data, expect)


# -- truncated -------------------------------------------------------------------------------------

def _cut(name: str, data: bytes, keep: float | int, expect: Expect | None = None
         ) -> Callable[[Path], Files]:
    def make(folder: Path) -> Files:
        end = keep if isinstance(keep, int) else int(len(data) * keep)
        return one(folder, name, data[:end], expect or failed(*CORRUPT))
    return make


_JPEG = jpeg(2, 160, 120)
_PNG = png(2, 160, 120)
_CUTS: list[tuple[str, str, bytes, float | int, Expect | None]] = [
    ("jpeg_cut_in_header", "cut.jpg", _JPEG, 40, None),
    ("jpeg_cut_at_10pct", "cut.jpg", _JPEG, 0.1, None),
    ("jpeg_cut_at_half", "cut.jpg", _JPEG, 0.5, None),
    ("jpeg_cut_at_90pct", "cut.jpg", _JPEG, 0.9, None),
    # Only the end-of-image marker is missing: every pixel is there, but a decoder cannot
    # tell this from a cut in the last scan, so it counts as truncated.
    ("jpeg_without_eoi", "no-eoi.jpg", _JPEG, len(_JPEG) - 2, None),
    ("png_cut_in_ihdr", "cut.png", _PNG, 20, None),
    ("png_cut_at_half", "cut.png", _PNG, 0.5, None),
    ("png_without_iend", "no-iend.png", _PNG, len(_PNG) - 12, indexed(160, 120)),
    ("gif_cut_at_half", "cut.gif", encoded(photo(3, 64, 48), "GIF"), 0.5, None),
    ("webp_cut_at_half", "cut.webp", encoded(photo(3, 64, 48), "WEBP", quality=80), 0.5, None),
    ("tiff_cut_at_half", "cut.tiff", encoded(photo(3, 64, 48), "TIFF"), 0.5, None),
    ("tiff_cut_in_ifd", "cut.tif", encoded(photo(3, 64, 48), "TIFF"), 12, None),
    ("bmp_cut_at_half", "cut.bmp", encoded(photo(3, 64, 48), "BMP"), 0.5, None),
    ("ppm_cut_at_half", "cut.ppm", encoded(photo(3, 64, 48), "PPM"), 0.5, None),
]
for _name, _file, _data, _keep, _expect in _CUTS:
    kind("truncated", name=_name)(_cut(_file, _data, _keep, _expect))


# -- decompression bombs: huge sizes claimed in tiny files -------------------------------------

def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(jpeg(4, 16, 16))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _webp_claiming(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    payload = b"\x2f" + struct.pack("<I", bits) + b"\0" * 16
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


_BOMBS: list[tuple[str, str, bytes]] = [
    ("png_bomb_60000", "bomb.png",
     raw_png(60_000, 60_000, b"\0" * 64)),
    ("png_bomb_10000", "bomb.png",  # above the default cap, below Pillow's own
     raw_png(10_000, 10_000, b"\0" * 64)),
    ("png_bomb_1x200m", "strip-bomb.png", raw_png(1, 200_000_000, b"\0" * 64)),
    ("gif_bomb", "bomb.gif", gif(1, 1, screen=(65_535, 65_535))),
    ("bmp_bomb", "bomb.bmp", bmp_file(60_000, 60_000, 24, b"\0" * 64)),
    ("tiff_bomb", "bomb.tiff", tiff_header(60_000, 60_000)),
    ("jpeg_bomb", "bomb.jpg", _jpeg_claiming(65_000, 65_000)),
    ("webp_bomb", "bomb.webp", _webp_claiming(16_384, 16_384)),
    ("ppm_bomb", "bomb.ppm", b"P6\n60000 60000\n255\n" + b"\0" * 64),
]
for _name, _file, _data in _BOMBS:
    kind("bomb", name=_name)(
        lambda folder, file=_file, data=_data: one(folder, file, data, failed(*BOMB)))


@kind("bomb")
def make_png_text_bomb(folder: Path) -> Files:
    # A zTXt chunk that inflates to 4 MB: Pillow refuses text over 1 MB.
    text = b"Comment\0\0" + zlib.compress(b"a" * 4_000_000, 9)
    data = raw_png(8, 8, scanlines(photo(5, 8, 8)), before_idat=[chunk(b"zTXt", text)])
    return one(folder, "text-bomb.png", data, failed("too large"))


@kind("bomb")
def make_png_iccp_bomb(folder: Path) -> Files:
    # An ICC profile chunk that inflates to 4 MB; the profile is never needed.
    profile = b"icc\0\0" + zlib.compress(b"\0" * 4_000_000, 9)
    data = raw_png(8, 8, scanlines(photo(6, 8, 8)), before_idat=[chunk(b"iCCP", profile)])
    return one(folder, "icc-bomb.png", data, failed("too large"))


@kind("bomb")
def make_gif_many_frames(folder: Path) -> Files:
    return one(folder, "frames.gif", gif(4, 4, frames=1000), indexed(4, 4))


@kind("bomb")
def make_png_many_text_chunks(folder: Path) -> Files:
    chunks = [chunk(b"tEXt", b"k%d\0" % i + b"v" * 40) for i in range(2000)]
    return one(folder, "chatty.png", raw_png(8, 8, scanlines(photo(7, 8, 8)),
                                             before_idat=chunks), indexed(8, 8))


@kind("bomb")
def make_xmp_entity_bomb(folder: Path) -> Files:
    # The billion laughs in an XMP packet: the parser must refuse it, the photo still counts.
    doctype = "<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'>" + "".join(
        f"<!ENTITY {chr(98 + i)} '{('&' + chr(97 + i) + ';') * 10}'>" for i in range(8)) + "]>"
    body = doctype + "<x:xmpmeta xmlns:x='adobe:ns:meta/'>&i;</x:xmpmeta>"
    return one(folder, "laughs.jpg", with_segment(jpeg(8), 0xFFE1, xmp_packet(body)),
               indexed(96, 72))


# -- sizes -----------------------------------------------------------------------------------------

def _sized(width: int, height: int, fmt: str = "PNG", ext: str = "png"
           ) -> Callable[[Path], Files]:
    def make(folder: Path) -> Files:
        return one(folder, f"{width}x{height}.{ext}", encoded(photo(9, width, height), fmt),
                   indexed(width, height))
    return make


for _w, _h in [(1, 1), (1, 2), (2, 1), (2, 3), (1, 50), (50, 1), (1, 10_000), (10_000, 1),
               (3, 3)]:
    kind("size", name=f"size_{_w}x{_h}")(_sized(_w, _h))
kind("size", name="size_1x1_jpeg")(_sized(1, 1, "JPEG", "jpg"))
kind("size", name="size_2x2_webp")(_sized(2, 2, "WEBP", "webp"))
kind("size", name="size_4000x3000_jpeg")(_sized(4000, 3000, "JPEG", "jpg"))


@kind("size")
def make_spacer_gif(folder: Path) -> Files:
    # The 1x1 transparent spacer of every scraped web page.
    spacer = Image.new("P", (1, 1), 0)
    spacer.putpalette([0, 0, 0, 255, 255, 255])
    return one(folder, "spacer.gif", encoded(spacer, "GIF", transparency=0),
               either(indexed(1, 1), BLANK))


# -- flat and extreme content ----------------------------------------------------------------------

def _flat(colour: tuple[int, int, int], name: str) -> Callable[[Path], Files]:
    def make(folder: Path) -> Files:
        return one(folder, name, encoded(Image.new("RGB", (64, 48), colour), "PNG"),
                   either(indexed(64, 48), BLANK))
    return make


kind("content", name="all_black")(_flat((0, 0, 0), "black.png"))
kind("content", name="all_white")(_flat((255, 255, 255), "white.png"))
kind("content", name="all_one_colour")(_flat((200, 30, 90), "magenta.png"))


@kind("content")
def make_random_pixels(folder: Path) -> Files:
    noise = np.random.default_rng(11).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return one(folder, "noise.png", encoded(noise, "PNG"), indexed(64, 64))


@kind("content")
def make_fully_transparent(folder: Path) -> Files:
    clear = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    return one(folder, "clear.png", encoded(clear, "PNG"), either(indexed(32, 32), BLANK))


@kind("content")
def make_checkerboard_1bit(folder: Path) -> Files:
    board = (np.indices((64, 64)).sum(axis=0) // 8 % 2 * 255).astype(np.uint8)
    return one(folder, "board.png", encoded(Image.fromarray(board).convert("1"), "PNG"),
               indexed(64, 64))


# -- pixel modes and bit depths --------------------------------------------------------------------

def _mode(name: str, make_image: Callable[[], Image.Image], fmt: str, **options: object
          ) -> Callable[[Path], Files]:
    def make(folder: Path) -> Files:
        image = make_image()
        return one(folder, name, encoded(image, fmt, **options), indexed(*image.size))
    return make


def _grey() -> Image.Image:
    return Image.fromarray(photo(12, 48, 32)[:, :, 0])


def _palette(transparent: bool) -> Callable[[], Image.Image]:
    def make() -> Image.Image:
        image = Image.fromarray(photo(13, 48, 32)).convert("P", palette=Image.Palette.ADAPTIVE,
                                                          colors=16)
        if transparent:
            image.info["transparency"] = 0
        return image
    return make


def _wide(mode: str) -> Callable[[], Image.Image]:
    def make() -> Image.Image:
        values = (photo(14, 48, 32)[:, :, 0].astype(np.uint32) * 257)
        if mode == "F":
            return Image.fromarray((values / 65535.0).astype(np.float32), mode="F")
        return Image.fromarray(values.astype(np.uint16 if mode == "I;16" else np.int32))
    return make


def _alpha(mode: str) -> Callable[[], Image.Image]:
    def make() -> Image.Image:
        base = Image.fromarray(photo(15, 48, 32)).convert(mode[:-1] or "L")
        alpha = Image.fromarray(np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (32, 1)))
        base.putalpha(alpha)
        return base
    return make


_MODES: list[tuple[str, str, Callable[[], Image.Image], str, dict[str, object]]] = [
    ("grey_png", "grey.png", _grey, "PNG", {}),
    ("grey_jpeg", "grey.jpg", _grey, "JPEG", {}),
    ("palette_png", "palette.png", _palette(False), "PNG", {}),
    ("palette_transparent_png", "palette-alpha.png", _palette(True), "PNG", {}),
    ("palette_bits_4_png", "palette4.png", _palette(False), "PNG", {"bits": 4}),
    ("rgba_png", "rgba.png", _alpha("RGBA"), "PNG", {}),
    ("la_png", "la.png", _alpha("LA"), "PNG", {}),
    ("rgba_webp", "rgba.webp", _alpha("RGBA"), "WEBP", {"lossless": True}),
    ("grey_16bit_png", "deep.png", _wide("I;16"), "PNG", {}),
    ("int32_tiff", "int32.tiff", _wide("I"), "TIFF", {}),
    ("float_tiff", "float.tiff", _wide("F"), "TIFF", {}),
    ("cmyk_jpeg", "cmyk.jpg", lambda: Image.fromarray(photo(16, 48, 32)).convert("CMYK"),
     "JPEG", {}),
    ("cmyk_tiff", "cmyk.tiff", lambda: Image.fromarray(photo(16, 48, 32)).convert("CMYK"),
     "TIFF", {}),
    ("ycbcr_jpeg_444", "444.jpg", lambda: Image.fromarray(photo(17)), "JPEG",
     {"subsampling": 0}),
    # Made from bytes: Pillow's own RGB to LAB conversion leaves some bytes unset here.
    ("lab_tiff", "lab.tiff", lambda: Image.frombytes("LAB", (48, 32), photo(18, 48, 32).tobytes()),
     "TIFF", {}),
    ("bilevel_png", "bilevel.png", lambda: _grey().convert("1"), "PNG", {}),
    ("bilevel_tiff_g4", "fax.tiff", lambda: _grey().convert("1"), "TIFF",
     {"compression": "group4"}),
    ("jpeg_quality_1", "mush.jpg", lambda: Image.fromarray(photo(19)), "JPEG", {"quality": 1}),
    ("progressive_jpeg", "progressive.jpg", lambda: Image.fromarray(photo(20)), "JPEG",
     {"progressive": True}),
    ("tiff_lzw", "lzw.tiff", lambda: Image.fromarray(photo(21)), "TIFF",
     {"compression": "tiff_lzw"}),
    ("tiff_jpeg_compressed", "jpeg-in.tiff", lambda: Image.fromarray(photo(22)), "TIFF",
     {"compression": "jpeg"}),
    ("tiff_tiled", "tiled.tiff", lambda: Image.fromarray(photo(23)), "TIFF", {"tile": (16, 16)}),
    ("bigtiff", "big.tiff", lambda: Image.fromarray(photo(24)), "TIFF", {"big_tiff": True}),
    ("bmp_1bit", "mono.bmp", lambda: _grey().convert("1"), "BMP", {}),
    ("bmp_8bit_palette", "palette.bmp", _palette(False), "BMP", {}),
    ("bmp_32bit_rgba", "rgba.bmp", _alpha("RGBA"), "BMP", {}),
    ("pgm", "grey.pgm", _grey, "PPM", {}),
    ("ppm", "colour.ppm", lambda: Image.fromarray(photo(25)), "PPM", {}),
    ("pbm", "mono.pbm", lambda: _grey().convert("1"), "PPM", {}),
    ("webp_lossy", "photo.webp", lambda: Image.fromarray(photo(26)), "WEBP", {"quality": 70}),
]
for _name, _file, _make_image, _fmt, _options in _MODES:
    kind("mode", name=_name)(_mode(_file, _make_image, _fmt, **_options))


@kind("mode")
def make_rgb_48bit_png(folder: Path) -> Files:
    deep = (photo(27, 24, 16).astype(np.uint16) * 257)
    return one(folder, "rgb48.png", raw_png(24, 16, scanlines(deep), depth=16), indexed(24, 16))


@kind("mode")
def make_interlaced_png(folder: Path) -> Files:
    pixels = photo(28, 37, 29)  # sizes that leave some Adam7 passes short
    return one(folder, "adam7.png", raw_png(37, 29, adam7(pixels), interlace=1), indexed(37, 29))


@kind("mode")
def make_rgb_colour_key_png(folder: Path) -> Files:
    pixels = photo(29, 24, 16)
    key = chunk(b"tRNS", struct.pack(">HHH", *(int(v) for v in pixels[0, 0])))
    return one(folder, "keyed.png", raw_png(24, 16, scanlines(pixels), before_idat=[key]),
               indexed(24, 16))


@kind("mode")
def make_bmp_top_down(folder: Path) -> Files:
    rows = photo(30, 8, 4)[:, :, ::-1].tobytes()  # BGR, 8*3 = 24 bytes a row: no padding
    return one(folder, "top-down.bmp", bmp_file(8, -4, 24, rows), indexed(8, 4))


@kind("mode")
def make_bmp_rle8(folder: Path) -> Files:
    palette = b"".join(bytes([v, v, v, 0]) for v in range(256))
    rows = b"".join(bytes([8, 40 + 20 * y, 0, 0]) for y in range(4)) + b"\x00\x01"
    return one(folder, "rle.bmp", bmp_file(8, 4, 8, rows, palette=palette, compression=1,
                                           colours=256), indexed(8, 4))


@kind("mode")
def make_bmp_os2(folder: Path) -> Files:
    rows = photo(31, 4, 2)[:, :, ::-1].tobytes()
    header = struct.pack("<IHHHH", 12, 4, 2, 1, 24)
    return one(folder, "os2.bmp", b"BM" + struct.pack("<IHHI", 26 + len(rows), 0, 0, 26)
               + header + rows, indexed(4, 2))


@kind("mode")
def make_pnm_ascii(folder: Path) -> Files:
    files = {put(folder, "p1.pbm", b"P1\n# a comment\n4 2\n0 1 0 1\n1 0 1 0\n"): indexed(4, 2),
             put(folder, "p2.pgm", b"P2\n3 2\n255\n0 128 255\n255 128 0\n"): indexed(3, 2),
             put(folder, "p3.ppm", b"P3\n2 1\n255\n255 0 0  0 0 255\n"): indexed(2, 1)}
    return files


@kind("mode")
def make_pgm_16bit(folder: Path) -> Files:
    values = (photo(32, 8, 4)[:, :, 0].astype(">u2") * 257).tobytes()
    return one(folder, "deep.pgm", b"P5\n8 4\n65535\n" + values, indexed(8, 4))


@kind("mode")
def make_avif(folder: Path) -> Files:
    if not can_decode("AVIF"):
        raise Unsupported("no AVIF codec in this Pillow")
    return one(folder, "photo.avif", encoded(photo(33), "AVIF", quality=60), indexed(96, 72))


@kind("mode")
def make_jpeg2000(folder: Path) -> Files:
    if not can_decode("JPEG2000"):
        raise Unsupported("no JPEG 2000 codec in this Pillow")
    return one(folder, "photo.jp2", encoded(photo(34), "JPEG2000"), indexed(96, 72))


# -- animations and pages ----------------------------------------------------------------------

def _frames(count: int, size: tuple[int, int] = (48, 32)) -> list[Image.Image]:
    return [Image.fromarray(photo(40 + i, *size)) for i in range(count)]


@kind("frames")
def make_animated_gif(folder: Path) -> Files:
    first, *rest = _frames(3)
    return one(folder, "anim.gif", encoded(first, "GIF", save_all=True, append_images=rest,
                                           duration=80, loop=0), indexed(48, 32))


@kind("frames")
def make_animated_webp(folder: Path) -> Files:
    first, *rest = _frames(3)
    return one(folder, "anim.webp", encoded(first, "WEBP", save_all=True, append_images=rest,
                                            duration=80, loop=0), indexed(48, 32))


@kind("frames")
def make_animated_png(folder: Path) -> Files:
    first, *rest = _frames(3)
    return one(folder, "anim.png", encoded(first, "PNG", save_all=True, append_images=rest,
                                           duration=80), indexed(48, 32))


@kind("frames")
def make_multipage_tiff(folder: Path) -> Files:
    first, *rest = _frames(3)
    return one(folder, "pages.tiff", encoded(first, "TIFF", save_all=True, append_images=rest),
               indexed(48, 32))


@kind("frames")
def make_gif_zero_frames(folder: Path) -> Files:
    return one(folder, "no-frames.gif", gif_without_frames(4, 4), failed(*CORRUPT))


@kind("frames")
def make_gif87a(folder: Path) -> Files:
    return one(folder, "old.gif", gif(6, 6, version=b"GIF87a"), indexed(6, 6))


@kind("frames")
def make_gif_frame_outside_screen(folder: Path) -> Files:
    return one(folder, "outside.gif", gif(16, 16, screen=(4, 4)), INDEXED)


# -- EXIF, ICC, XMP, IPTC ----------------------------------------------------------------------

def _oriented(value: int) -> Callable[[Path], Files]:
    def make(folder: Path) -> Files:
        data = with_segment(jpeg(50, 64, 32), 0xFFE1, b"Exif\0\0" + exif_orientation(value))
        turned = value in (5, 6, 7, 8)
        return one(folder, f"orientation-{value}.jpg", data,
                   indexed(32, 64) if turned else indexed(64, 32))
    return make


for _value in range(1, 9):
    kind("metadata", name=f"exif_orientation_{_value}")(_oriented(_value))
for _value in (0, 9, 65535):
    kind("metadata", name=f"exif_orientation_invalid_{_value}")(_oriented(_value))


def _exif_jpeg(name: str, payload: bytes, expect: Expect | None = None
               ) -> Callable[[Path], Files]:
    def make(folder: Path) -> Files:
        return one(folder, name, with_segment(jpeg(51), 0xFFE1, payload),
                   expect or indexed(96, 72))
    return make


_EXIFS: list[tuple[str, str, bytes]] = [
    ("exif_garbage", "garbage-exif.jpg", b"Exif\0\0" + b"\x13\x37" * 40),
    ("exif_ifd_past_end", "far-ifd.jpg", b"Exif\0\0II*\x00" + struct.pack("<I", 0x7FFFFFF0)),
    ("exif_value_past_end", "far-value.jpg", b"Exif\0\0" + exif_payload(
        [(0x010E, 2, 5000, struct.pack("<I", 0x10000))])),
    ("exif_ifd_loop", "loop-ifd.jpg", b"Exif\0\0" + exif_payload(
        [(0x8769, 4, 1, struct.pack("<I", 8))])),
    ("exif_huge", "huge-exif.jpg", b"Exif\0\0" + exif_payload(
        [(0x9286, 7, 60_000, struct.pack("<I", 26))], tail=b"A" * 60_000)),
    ("exif_bad_date", "bad-date.jpg", b"Exif\0\0" + exif_payload(
        [(0x0132, 2, 20, struct.pack("<I", 26))], tail=b"2024:13:45 99:99:99\0")),
    ("exif_description_binary", "binary-text.jpg", b"Exif\0\0" + exif_payload(
        [(0x010E, 2, 12, struct.pack("<I", 26))], tail=b"\xff\xfe\x00\x01bad\x00\x80\x81\x82\0")),
]
for _name, _file, _payload in _EXIFS:
    kind("metadata", name=_name)(_exif_jpeg(_file, _payload))


@kind("metadata")
def make_exif_in_png(folder: Path) -> Files:
    data = raw_png(24, 12, scanlines(photo(52, 24, 12)),
                   before_idat=[chunk(b"eXIf", exif_orientation(6))])
    return one(folder, "exif-6.png", data, indexed(12, 24))


@kind("metadata")
def make_exif_in_tiff(folder: Path) -> Files:
    exif = Image.Exif()
    exif[0x0112] = 8
    return one(folder, "turned.tiff", encoded(photo(53, 24, 12), "TIFF", exif=exif),
               indexed(12, 24))


@kind("metadata")
def make_icc_garbage(folder: Path) -> Files:
    return one(folder, "icc.jpg", jpeg(54, icc_profile=b"not a profile" * 10), indexed(96, 72))


@kind("metadata")
def make_icc_multi_segment(folder: Path) -> Files:
    profile = np.random.default_rng(55).integers(0, 256, 150_000, dtype=np.uint8).tobytes()
    return one(folder, "big-icc.jpg", jpeg(55, icc_profile=profile), indexed(96, 72))


@kind("metadata")
def make_xmp_keywords(folder: Path) -> Files:
    body = ("<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf="
            "'http://www.w3.org/1999/02/22-rdf-syntax-ns#' xmlns:dc="
            "'http://purl.org/dc/elements/1.1/'><rdf:Description><dc:subject><rdf:Bag>"
            "<rdf:li>beach</rdf:li><rdf:li>\u00e9t\u00e9</rdf:li></rdf:Bag></dc:subject>"
            "</rdf:Description></rdf:RDF></x:xmpmeta>")
    return one(folder, "tagged.jpg", with_segment(jpeg(56), 0xFFE1, xmp_packet(body)),
               indexed(96, 72))


@kind("metadata")
def make_xmp_malformed(folder: Path) -> Files:
    return one(folder, "bad-xmp.jpg", with_segment(jpeg(57), 0xFFE1,
                                                   xmp_packet("<x:xmpmeta><rdf:RDF><oops")),
               indexed(96, 72))


@kind("metadata")
def make_iptc_keywords(folder: Path) -> Files:
    iptc = iptc_field(2, 25, b"harbour") + iptc_field(2, 120, b"boats at dusk")
    return one(folder, "iptc.jpg", with_segment(jpeg(58), 0xFFED, photoshop_iptc(iptc)),
               indexed(96, 72))


@kind("metadata")
def make_iptc_garbage(folder: Path) -> Files:
    return one(folder, "bad-iptc.jpg",
               with_segment(jpeg(59), 0xFFED, photoshop_iptc(b"\x1c\x09\xff" + b"\xee" * 30)),
               indexed(96, 72))


@kind("metadata")
def make_iptc_cut_field(folder: Path) -> Files:
    # An IPTC field header cut after four bytes: Pillow's parser raises struct.error.
    iptc = iptc_field(2, 25, b"ok") + b"\x1c\x02\x19\x00"
    return one(folder, "cut-iptc.jpg", with_segment(jpeg(60), 0xFFED, photoshop_iptc(iptc)),
               indexed(96, 72))


@kind("metadata")
def make_exif_xpkeywords_shorts(folder: Path) -> Files:
    payload = b"Exif\0\0" + exif_payload([(0x9C9E, 3, 2, struct.pack("<HH", 1000, 2000))])
    return one(folder, "xp-shorts.jpg", with_segment(jpeg(61), 0xFFE1, payload),
               indexed(96, 72))


@kind("metadata")
def make_jpeg_comment_huge(folder: Path) -> Files:
    return one(folder, "comment.jpg", with_segment(jpeg(62), 0xFFFE, b"#" * 65_000),
               indexed(96, 72))


# -- structure: odd but legal, or damaged in a way that keeps the pixels ---------------------------

@kind("structure")
def make_jpeg_restart_markers(folder: Path) -> Files:
    # Pillow's encoder writes DRI and RSTn markers when asked for a restart interval.
    return one(folder, "restart.jpg", jpeg(63, 160, 120, restart_marker_blocks=1),
               indexed(160, 120))


@kind("structure")
def make_jpeg_trailing_garbage(folder: Path) -> Files:
    return one(folder, "trailing.jpg", jpeg(64) + b"\0garbage after the end" * 50,
               indexed(96, 72))


@kind("structure")
def make_two_jpegs_concatenated(folder: Path) -> Files:
    return one(folder, "twice.jpg", jpeg(65) + jpeg(66, 32, 32), indexed(96, 72))


@kind("structure")
def make_jpeg_damaged_scan(folder: Path) -> Files:
    data = bytearray(jpeg(67, 160, 120))
    start = data.index(b"\xff\xda") + 20
    for offset in range(start, len(data) - 40, 97):
        data[offset] = 0x00 if data[offset] == 0xFF else data[offset] ^ 0x5A
    return one(folder, "bit-rot.jpg", bytes(data), INDEXED)


@kind("structure")
def make_png_bad_crc_ihdr(folder: Path) -> Files:
    data = bytearray(png(68))
    data[29:33] = b"\0\0\0\0"  # the IHDR CRC
    return one(folder, "bad-crc.png", bytes(data), failed(*CORRUPT))


@kind("structure")
def make_png_bad_crc_ancillary(folder: Path) -> Files:
    text = chunk(b"tEXt", b"Title\0harbour", crc=0)
    data = raw_png(8, 8, scanlines(photo(69, 8, 8)), before_idat=[text])
    return one(folder, "bad-text-crc.png", data, failed(*CORRUPT))


@kind("structure")
def make_png_after_iend(folder: Path) -> Files:
    data = raw_png(8, 8, scanlines(photo(70, 8, 8)),
                   after_iend=chunk(b"tEXt", b"k\0v") + b"garbage" * 20)
    return one(folder, "after-iend.png", data, indexed(8, 8))


@kind("structure")
def make_png_unknown_ancillary_chunk(folder: Path) -> Files:
    data = raw_png(8, 8, scanlines(photo(71, 8, 8)), before_idat=[chunk(b"quIK", b"x" * 99)])
    return one(folder, "private-chunk.png", data, indexed(8, 8))


@kind("structure")
def make_png_tiny_idat_chunks(folder: Path) -> Files:
    data = raw_png(16, 16, scanlines(photo(72, 16, 16)), idat_split=1)
    return one(folder, "crumbs.png", data, indexed(16, 16))


@kind("structure")
def make_png_palette_index_out_of_range(folder: Path) -> Files:
    palette = chunk(b"PLTE", bytes([0, 0, 0, 255, 255, 255]))
    rows = b"".join(b"\x00" + bytes([0, 1, 200, 255]) for _ in range(4))
    data = raw_png(4, 4, rows, colour=3, before_idat=[palette])
    return one(folder, "bad-index.png", data, indexed(4, 4))


@kind("structure")
def make_png_bad_filter_type(folder: Path) -> Files:
    rows = b"".join(b"\x07" + photo(73, 8, 8)[y].tobytes() for y in range(8))
    return one(folder, "bad-filter.png", raw_png(8, 8, rows), failed(*CORRUPT))


@kind("structure")
def make_png_zero_width(folder: Path) -> Files:
    return one(folder, "zero.png", raw_png(0, 8, b""), failed())


@kind("structure")
def make_bmp_zero_height(folder: Path) -> Files:
    return one(folder, "flat.bmp", bmp_file(8, 0, 24, b""), failed())


@kind("structure")
def make_ico_as_png(folder: Path) -> Files:
    return one(folder, "favicon.png", encoded(photo(74, 32, 32), "ICO", sizes=[(32, 32)]),
               indexed(32, 32))


# -- extensions ------------------------------------------------------------------------------------

@kind("extension")
def make_png_named_jpg(folder: Path) -> Files:
    return one(folder, "really-a-png.jpg", png(75), indexed(96, 72))


@kind("extension")
def make_jpeg_named_gif(folder: Path) -> Files:
    return one(folder, "really-a-jpeg.gif", jpeg(76), indexed(96, 72))


@kind("extension")
def make_upper_and_mixed_case(folder: Path) -> Files:
    return {put(folder, "UPPER.JPG", jpeg(77)): indexed(96, 72),
            put(folder, "Mixed.JpEg", jpeg(78)): indexed(96, 72),
            put(folder, "shout.PNG", png(79)): indexed(96, 72)}


@kind("extension")
def make_double_extension(folder: Path) -> Files:
    return one(folder, "holiday.jpg.png", png(80), indexed(96, 72))


@kind("extension")
def make_other_extensions(folder: Path) -> Files:
    # Images under names that are not image names are not picked up from a folder.
    return {put(folder, "photo", jpeg(81)): SKIPPED,
            put(folder, "photo.txt", jpeg(81)): SKIPPED,
            put(folder, "photo.jpg.bak", jpeg(81)): SKIPPED,
            put(folder, "photo.jpg~", jpeg(81)): SKIPPED}


@kind("extension")
def make_jpeg_alias_extensions(folder: Path) -> Files:
    return {put(folder, "scan.jfif", jpeg(82)): indexed(96, 72),
            put(folder, "scan.jpe", jpeg(83)): indexed(96, 72)}


# -- names -----------------------------------------------------------------------------------------

def _named(*names: str | bytes) -> Callable[[Path], Files]:
    def make(folder: Path) -> Files:
        return {put(folder, name, jpeg(90 + i)): indexed(96, 72) for i, name in enumerate(names)}
    return make


kind("name", name="name_spaces")(_named("my holiday photo.jpg", " leading.jpg", "trailing .jpg"))
kind("name", name="name_unicode")(_named(
    "caf\u00e9.jpg", "\u5199\u771f.jpg", "\U0001f600.jpg",
    "\u0627\u0644\u0635\u0648\u0631\u0629.jpg"))
kind("name", name="name_nfd")(_named("cafe\u0301.jpg"))
kind("name", name="name_newline_tab")(_named("two\nlines.jpg", "tab\there.jpg"))
kind("name", name="name_shell_and_url_chars")(_named(
    "$(rm -rf ~);.jpg", "a'b\"c`d.jpg", "100% #1 ?.jpg", "[x]*{y}.jpg", "back\\slash.jpg",
    "a&b=c.jpg", "<script>.jpg"))
kind("name", name="name_leading_dash")(_named("-rf.jpg", "--help.jpg"))
kind("name", name="name_long_255_bytes")(_named("x" * 251 + ".jpg"))
kind("name", name="name_long_multibyte")(_named("\u00e9" * 125 + ".jpg"))
kind("name", name="name_control_chars")(_named("bell\x07esc\x1b.jpg", "del\x7f.jpg"))


@kind("name")
def make_name_escape_sequences_broken(folder: Path) -> Files:
    # A broken file, so its name is printed in the report: terminal escapes retitle the
    # window and clear the screen if a report prints them raw.
    return one(folder, "\x1b]0;owned\x07\x1b[2J\x1b[31mred.jpg", b"junk",
               failed(*NOT_AN_IMAGE))


@kind("name")
def make_name_invalid_utf8(folder: Path) -> Files:
    return one(folder, b"latin1-caf\xe9.jpg", jpeg(99), failed("not valid UTF-8"))


@kind("name")
def make_hidden(folder: Path) -> Files:
    (folder / ".thumbnails").mkdir(parents=True)
    put(folder / ".thumbnails", "thumb.jpg", jpeg(102))
    return {put(folder, ".hidden.jpg", jpeg(100)): SKIPPED,
            put(folder, ".jpg", jpeg(101)): SKIPPED,
            ".thumbnails/thumb.jpg": SKIPPED,
            put(folder, "visible.jpg", jpeg(103)): indexed(96, 72)}


@kind("name")
def make_deeply_nested(folder: Path) -> Files:
    deep = Path(*[f"d{i}" for i in range(60)])
    put(folder / deep, "deep.jpg", jpeg(104))
    return {str(deep / "deep.jpg"): indexed(96, 72)}


# -- the file system -----------------------------------------------------------------------------

@kind("filesystem")
def make_directory_named_jpg(folder: Path) -> Files:
    put(folder / "album.jpg", "inside.jpg", jpeg(105))
    return {"album.jpg/inside.jpg": indexed(96, 72)}


@kind("filesystem")
def make_empty_directory_named_png(folder: Path) -> Files:
    (folder / "empty.png").mkdir(parents=True)
    return {}


@kind("filesystem")
def make_broken_symlink(folder: Path) -> Files:
    return {link(folder, "gone.jpg", folder / "never-there.jpg"):
            failed("broken symbolic link")}


@kind("filesystem")
def make_symlink_loop(folder: Path) -> Files:
    return {link(folder, "ping.jpg", folder / "pong.jpg"): failed("symbolic link", "loop"),
            link(folder, "pong.jpg", folder / "ping.jpg"): failed("symbolic link", "loop")}


@kind("filesystem")
def make_symlink_to_itself(folder: Path) -> Files:
    return {link(folder, "self.jpg", folder / "self.jpg"): failed("symbolic link", "loop")}


@kind("filesystem")
def make_fifo(folder: Path) -> Files:
    fifo(folder / "pipe.png")
    return {"pipe.png": failed("not a regular file", "FIFO")}


@kind("filesystem")
def make_socket(folder: Path) -> Files:
    if not hasattr(socket, "AF_UNIX"):
        raise Unsupported("no Unix sockets here")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sock.jpg"
    if len(os.fsencode(path)) > 100:
        raise Unsupported("the folder's path is too long for a Unix socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
    return {"sock.jpg": failed("not a regular file", "socket")}


@kind("filesystem")
def make_link_to_dev_zero(folder: Path) -> Files:
    if not os.path.exists("/dev/zero"):
        raise Unsupported("no /dev/zero")
    return {link(folder, "zero.jpg", "/dev/zero"): failed("not a regular file", "device")}


@kind("filesystem")
def make_link_to_dev_null(folder: Path) -> Files:
    if not os.path.exists("/dev/null"):
        raise Unsupported("no /dev/null")
    return {link(folder, "null.png", "/dev/null"): failed("not a regular file", "device")}


@kind("filesystem")
def make_link_to_fifo(folder: Path) -> Files:
    fifo(folder / ".pipe")
    return {link(folder, "pipe-link.jpg", folder / ".pipe"): failed("not a regular file", "FIFO")}


@kind("filesystem")
def make_same_file_through_link(folder: Path) -> Files:
    name = put(folder, "a-original.jpg", jpeg(106))
    return {name: indexed(96, 72), link(folder, "b-alias.jpg", folder / name): SKIPPED}


@kind("filesystem")
def make_hard_link(folder: Path) -> Files:
    name = put(folder, "first.jpg", jpeg(107))
    try:
        os.link(folder / name, folder / "second.jpg")
    except OSError as error:
        raise Unsupported(f"no hard links here: {error.strerror}") from error
    return {name: indexed(96, 72), "second.jpg": indexed(96, 72)}


@kind("filesystem")
def make_link_to_folder(folder: Path) -> Files:
    put(folder / "real", "inside.jpg", jpeg(108))
    link(folder, "alias", folder / "real")
    return {"real/inside.jpg": indexed(96, 72)}  # a linked folder is not walked twice


@kind("filesystem")
def make_link_to_parent(folder: Path) -> Files:
    link(folder, "up", folder)
    return {put(folder, "here.jpg", jpeg(109)): indexed(96, 72)}


@kind("filesystem")
def make_relative_link_outside(folder: Path) -> Files:
    put(folder.parent / ".outside", "elsewhere.jpg", jpeg(110))
    return {link(folder, "from-elsewhere.jpg", Path("..") / ".outside" / "elsewhere.jpg"):
            indexed(96, 72)}


@kind("filesystem")
def make_unreadable_file(folder: Path) -> Files:
    name = put(folder, "locked.jpg", jpeg(111))
    (folder / name).chmod(0)
    return {name: indexed(96, 72) if reads_anything() else failed("permission denied")}


@kind("filesystem")
def make_unreadable_folder(folder: Path) -> Files:
    put(folder / "locked", "inside.jpg", jpeg(112))
    (folder / "locked").chmod(0)
    return {"locked/inside.jpg": indexed(96, 72) if reads_anything() else SKIPPED,
            **({} if reads_anything() else {"locked": failed("cannot list folder",
                                                             "permission denied")})}


@kind("filesystem")
def make_write_only_file(folder: Path) -> Files:
    name = put(folder, "write-only.png", png(113))
    (folder / name).chmod(stat.S_IWUSR)
    return {name: indexed(96, 72) if reads_anything() else failed("permission denied")}


@kind("filesystem")
def make_odd_mtime(folder: Path) -> Files:
    past = put(folder, "epoch.jpg", jpeg(114))
    os.utime(folder / past, (0, 0))
    future = put(folder, "future.jpg", jpeg(115))
    os.utime(folder / future, (4_102_444_800, 4_102_444_800))  # 2100
    return {past: indexed(96, 72), future: indexed(96, 72)}


@kind("filesystem")
def make_sparse_tail(folder: Path) -> Files:
    # A JPEG followed by 64 MB of hole: big to read, nothing on disk.
    name = put(folder, "sparse.jpg", jpeg(116))
    with open(folder / name, "r+b") as out:
        out.truncate(64 * 2**20)
    return {name: indexed(96, 72)}


# -- files that change between the listing and the reading -----------------------------------------

def _changing(name: str, data: bytes, raced: Expect) -> Callable[[Path], Files]:
    def make(folder: Path) -> Files:
        return one(folder, name, data, raced)
    return make


def _vanish(folder: Path) -> Files:
    (folder / "going.jpg").unlink()
    return {}


def _empty(folder: Path) -> Files:
    (folder / "emptied.jpg").write_bytes(b"")
    return {"emptied.jpg": failed("empty")}


def _scribble(folder: Path) -> Files:
    (folder / "scribbled.png").write_bytes(b"overwritten by a text editor\n")
    return {"scribbled.png": failed(*NOT_AN_IMAGE)}


def _to_directory(folder: Path) -> Files:
    (folder / "now-a-folder.jpg").unlink()
    (folder / "now-a-folder.jpg").mkdir()
    return {}


def _shrink(folder: Path) -> Files:
    (folder / "cut-short.jpg").write_bytes(jpeg(117, 160, 120)[:300])
    return {"cut-short.jpg": failed(*CORRUPT)}


def _swap(folder: Path) -> Files:
    (folder / "swapped.jpg").write_bytes(jpeg(118, 40, 60))
    return {"swapped.jpg": indexed(40, 60)}


def _to_fifo(folder: Path) -> Files:
    (folder / "now-a-pipe.jpg").unlink()
    fifo(folder / "now-a-pipe.jpg")
    return {"now-a-pipe.jpg": failed("not a regular file", "FIFO")}



_CHANGES: list[tuple[str, str, bytes, Expect, Callable[[Path], Files], str | None]] = [
    ("changed_vanished", "going.jpg", jpeg(119),
     either(failed("file not found"), failed("no such file")), _vanish, None),
    ("changed_emptied", "emptied.jpg", jpeg(120), failed("empty"), _empty, None),
    ("changed_to_text", "scribbled.png", png(121), failed(*NOT_AN_IMAGE), _scribble, None),
    ("changed_to_directory", "now-a-folder.jpg", jpeg(122), failed("is a directory"),
     _to_directory, None),
    ("changed_truncated", "cut-short.jpg", jpeg(123), failed(*CORRUPT), _shrink, None),
    ("changed_to_other_photo", "swapped.jpg", jpeg(124), indexed(40, 60), _swap, None),
    ("changed_to_fifo", "now-a-pipe.jpg", jpeg(125), failed("not a regular file", "FIFO"),
     _to_fifo, None),
]
for _name, _file, _data, _raced, _change, _defect in _CHANGES:
    kind("changed", name=_name, change=_change, defect=_defect)(
        _changing(_file, _data, _raced))


# -- the corpus ------------------------------------------------------------------------------------

@dataclass
class Entry:
    kind: Kind
    expect: Expect


@dataclass
class Corpus:
    """The kinds written under ``root``, and what must happen to each of their files."""

    root: Path
    kinds: list[Kind]
    expected: dict[str, Entry]  # by catalog key, for a run that races the changes
    settled: dict[str, Entry] = field(default_factory=dict)  # for a run that lists after them
    left_out: dict[str, str] = field(default_factory=dict)  # kind -> why the machine can't
    changed: bool = False

    def change_files(self) -> None:
        """Make every kind's change, once (later calls do nothing)."""
        if self.changed:
            return
        self.changed = True
        for item in self.kinds:
            if item.change is None:
                continue
            folder = self.root / item.name
            self.settled = {key: entry for key, entry in self.settled.items()
                            if entry.kind is not item}
            for rel, expect in item.change(folder).items():
                self.settled[report_key(folder / rel)] = Entry(item, expect)

    def expectations(self, *, settled: bool) -> dict[str, Entry]:
        return self.settled if settled else self.expected


def report_key(path: Path) -> str:
    """How indexing names ``path`` in its report and catalog: absolute, links unresolved,
    undecodable bytes as '?' (it cannot store them)."""
    return os.path.abspath(path).encode("utf-8", "replace").decode("utf-8")


def selected(names: Iterable[str] | None = None, *, defects: bool = False) -> list[Kind]:
    """The kinds named (all by default), without the known defects unless asked."""
    wanted = None if names is None else set(names)
    chosen = [item for item in KINDS if (wanted is None or item.name in wanted)
              and (defects or item.defect is None or wanted is not None)]
    if wanted is not None and (missing := wanted - {item.name for item in chosen}):
        raise ValueError(f"no such kinds: {sorted(missing)}")
    return chosen


def write_corpus(root: Path, kinds: Sequence[Kind] | None = None) -> Corpus:
    """Write ``kinds`` (every kind without a known defect by default) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(root=root, kinds=[], expected={})
    for item in selected() if kinds is None else kinds:
        folder = root / item.name
        try:
            files = item.make(folder)
        except Unsupported as why:
            corpus.left_out[item.name] = str(why)
            continue
        corpus.kinds.append(item)
        for rel, expect in files.items():
            corpus.expected[report_key(folder / rel)] = Entry(item, expect)
    corpus.settled = dict(corpus.expected)
    return corpus


def restore_permissions(root: Path) -> None:
    """Make every file and folder under ``root`` readable again, for clean-up and copying."""
    os.chmod(root, os.lstat(root).st_mode | stat.S_IRWXU)
    for folder, dirs, names in os.walk(root):  # top-down: a folder opens before the walk enters
        for name in dirs + names:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(path, mode | stat.S_IRWXU)
            elif stat.S_ISREG(mode):
                os.chmod(path, mode | stat.S_IRUSR | stat.S_IWUSR)


def fifos_under(root: Path) -> list[Path]:
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            try:
                if stat.S_ISFIFO(os.lstat(path).st_mode):
                    found.append(path)
            except OSError:
                continue
    return found


class FifoWatch:
    """Unblocks any reader stuck on a FIFO of the corpus, and remembers which ones it freed.

    A run that opens a FIFO for reading waits until a writer comes, forever in a folder
    nobody writes to. From ``after_s`` seconds on, this opens the write end of each FIFO
    under ``root`` every 0.1 s (an open that succeeds means a reader is waiting), then
    closes it, so the reader sees an empty file and the run ends instead of hanging.
    """

    def __init__(self, root: Path, after_s: float = 5.0) -> None:
        self.root = root
        self.after_s = after_s
        self.freed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="fifo-watch")

    def __enter__(self) -> FifoWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._stop.wait(self.after_s):
            return
        while not self._stop.wait(0.1):
            for path in fifos_under(self.root):
                try:
                    descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:
                    continue  # no reader (ENXIO) or gone: nothing to free
                os.close(descriptor)
                self.freed.append(str(path))


# -- judging a run ---------------------------------------------------------------------------------

@dataclass
class Verdict:
    """Whether one kind came out as expected, and if not, how it did not."""

    kind: str
    group: str
    ok: bool
    problems: list[str]

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "group": self.group, "ok": self.ok, "problems": self.problems}


def judge(corpus: Corpus, failures: Sequence[tuple[str, str]],
          indexed_sizes: Mapping[str, tuple[int | None, int | None]], *, max_pixels: int,
          settled: bool = False) -> tuple[list[Verdict], list[str]]:
    """Compare a run's report and catalog with the corpus.

    ``failures`` are the report's (path, reason); ``indexed_sizes`` the catalog's indexed
    images by path, with their (width, height). Returns a verdict per kind, and the
    paths under ``root`` that the run indexed or failed though no kind expected it.
    """
    expected = corpus.expectations(settled=settled)
    reasons: dict[str, list[str]] = {}
    for path, reason in failures:
        reasons.setdefault(path, []).append(reason)
    problems: dict[str, list[str]] = {item.name: [] for item in corpus.kinds}
    for key, entry in expected.items():
        found = _outcome(key, reasons.get(key), indexed_sizes.get(key))
        wanted = entry.expect
        note = _mismatch(wanted, found, max_pixels)
        if note:
            problems[entry.kind.name].append(f"{_short(corpus, key)}: {note}")
    root = report_key(corpus.root)
    strays = sorted(path for path in {*reasons, *indexed_sizes}
                    if (path == root or path.startswith(root + os.sep)) and path not in expected)
    for path in strays:
        rel = _short(corpus, path)
        owner = rel.split(os.sep, 1)[0]
        what = (f"failed: {'; '.join(reasons[path])}" if path in reasons else "indexed")
        note = f"{rel}: not expected to be seen at all, but {what}"
        problems.setdefault(owner, []).append(note)
    groups = {item.name: item.group for item in corpus.kinds}
    verdicts = [Verdict(item.name, item.group, not problems[item.name], problems[item.name])
                for item in corpus.kinds]
    verdicts += [Verdict(name, "?", False, notes) for name, notes in problems.items()
                 if name not in groups]
    return verdicts, strays


Found = tuple[str, list[str], tuple[int | None, int | None] | None]


def _outcome(key: str, reasons: list[str] | None,
             size: tuple[int | None, int | None] | None) -> Found:
    if reasons and size is not None:
        return "both", reasons, size
    if reasons:
        return "failed", reasons, None
    if size is not None:
        return "indexed", [], size
    return "skipped", [], None


def _mismatch(wanted: Expect, found: Found, max_pixels: int) -> str | None:
    """None when ``found`` is ``wanted`` or one of its alternatives; else what differs."""
    first = _differs(wanted, found, max_pixels)
    if first is None or any(_differs(other, found, max_pixels) is None
                            for other in wanted.otherwise):
        return None
    return first


def _differs(wanted: Expect, found: Found, max_pixels: int) -> str | None:
    status, reasons, size = found
    if status == "both":
        return f"both indexed and failed ({'; '.join(reasons)})"
    if status != wanted.status:
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        return f"expected {wanted.status}, got {status}{detail}"
    if status == "failed":
        if len(reasons) > 1:
            return f"reported {len(reasons)} times: {'; '.join(reasons)}"
        words = [word.format(max_pixels=max_pixels) for word in wanted.words]
        missing = [word for word in words if word.lower() not in reasons[0].lower()]
        if missing:
            return f"expected a reason with {missing}, got {reasons[0]!r}"
    if status == "indexed" and wanted.size is not None and size != wanted.size:
        return f"expected size {wanted.size[0]}x{wanted.size[1]}, got {size}"
    return None


def _short(corpus: Corpus, key: str) -> str:
    root = report_key(corpus.root)
    return key[len(root) + 1:] if key.startswith(root + os.sep) else key

