"""Finding images: the folders and files a user names, expanded into image files.

:func:`discover_images` returns a sorted, de-duplicated list of image files and reports
missing paths, unlistable folders and image names that are no files to read (a FIFO, a
socket, a device, a broken or looping symbolic link) as failures instead of raising, so
one typo does not abort indexing a whole collection, and nothing is skipped silently.
Nothing is opened here: a FIFO or a device is told apart from a file by its type alone,
with the reasons :mod:`lookalike.images` also gives when it is handed such a path.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, features

from lookalike.errors import ImageError, expect

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".png",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".gif",
        ".pgm",
        ".ppm",
        ".pbm",
        ".pnm",
    }
)
"""File name extensions (lowercase, with the dot) that folder discovery always picks up."""

OPTIONAL_EXTENSIONS: dict[str, str] = {
    ".jfif": "JPEG", ".jpe": "JPEG", ".apng": "PNG", ".avif": "AVIF", ".heic": "HEIF",
    ".heif": "HEIF", ".jp2": "JPEG2000", ".j2k": "JPEG2000", ".jxl": "JXL", ".qoi": "QOI",
}
"""More image extensions, by the Pillow format that reads them: folder discovery picks
them up where this Pillow can decode the format (AVIF and JPEG 2000 need their codec
compiled in, HEIF and JPEG XL a plugin), and reports them as undecodable elsewhere."""

_CODECS = {"AVIF": "avif", "JPEG2000": "jpg_2000"}  # formats whose codec is optional
_FORMAT_NAMES = {"JPEG2000": "JPEG 2000", "JXL": "JPEG XL"}


def image_extensions() -> frozenset[str]:
    """The extensions folder discovery picks up here: :data:`IMAGE_EXTENSIONS` and the
    :data:`OPTIONAL_EXTENSIONS` whose format this Pillow decodes now."""
    return IMAGE_EXTENSIONS | {ext for ext, fmt in OPTIONAL_EXTENSIONS.items() if _decodable(fmt)}


def _decodable(fmt: str) -> bool:
    Image.init()
    if fmt not in Image.OPEN:
        return False
    codec = _CODECS.get(fmt)
    if codec is None:
        return True
    if codec in features.modules:
        return bool(features.check_module(codec))
    return codec in features.codecs and bool(features.check_codec(codec))


@dataclass(frozen=True)
class DiscoveryResult:
    """The image files found by :func:`discover_images`, and the paths that failed."""

    files: list[Path]
    failures: list[ImageError]


def discover_images(
    paths: Iterable[str | os.PathLike[str]], *, recursive: bool = True
) -> DiscoveryResult:
    """Expand files and folders into a de-duplicated list of absolute image paths.

    Folders are walked (recursively unless ``recursive`` is false) and contribute
    every non-hidden file whose extension, in any case, is one of
    :func:`image_extensions`, sorted by path; hidden files and folders (name
    starting with '.') are skipped. A file named explicitly is always included,
    whatever its extension, so that a wrong file gets a clear decode error later
    rather than vanishing silently. Files keep the order of the arguments; a file
    reached twice (also through a symbolic link) is kept once. A path that does
    not exist, a folder that cannot be listed, an image name that is no regular
    file (a FIFO, a socket, a device, a broken or looping link) and an image in a
    format this Pillow cannot decode (``.heic`` without a HEIF plugin) become
    entries in ``failures`` instead of raising.
    """
    expect(
        not isinstance(paths, str | bytes | os.PathLike),
        "expected an iterable of paths, got a single path; wrap it in a list",
    )
    files: list[Path] = []
    failures: list[ImageError] = []
    seen: set[Path] = set()
    extensions = image_extensions()
    for raw in paths:
        expect(
            isinstance(raw, str | os.PathLike),
            f"expected a path, got {type(raw).__name__}",
        )
        path = Path(os.path.abspath(fspath(raw)))
        for found in _expand_path(path, recursive, extensions, failures):
            key = _dedup_key(found)
            if key not in seen:
                seen.add(key)
                files.append(found)
    return DiscoveryResult(files=files, failures=failures)


def _expand_path(path: Path, recursive: bool, extensions: frozenset[str],
                 failures: list[ImageError]) -> list[Path]:
    """The files ``path`` stands for; failures are appended to ``failures``."""
    if path.is_dir():
        return _walk_folder(path, recursive, extensions, failures)
    if path.is_file():
        return [path]
    failures.append(_not_a_file(path))
    return []


def _walk_folder(folder: Path, recursive: bool, extensions: frozenset[str],
                 failures: list[ImageError]) -> list[Path]:
    """Sorted image files under ``folder``, skipping hidden entries.

    Symbolic links to folders are not followed, which rules out cycles; links
    to files are kept like files.
    """

    def on_error(exc: OSError) -> None:
        where = exc.filename if exc.filename is not None else folder
        failures.append(ImageError(str(where), f"cannot list folder: {os_error_reason(exc)}"))

    found: list[Path] = []
    for root, dirs, names in os.walk(folder, onerror=on_error):
        # Pruning in place stops os.walk from descending into hidden folders.
        dirs[:] = [] if not recursive else sorted(d for d in dirs if not d.startswith("."))
        for entry in sorted(names):
            if entry.startswith("."):
                continue
            candidate = Path(root, entry)
            extension = os.path.splitext(entry)[1].lower()
            if extension in extensions and candidate.is_file():
                found.append(candidate)
            elif extension in extensions:
                failures.append(_not_a_file(candidate))
            elif extension in OPTIONAL_EXTENSIONS:
                fmt = OPTIONAL_EXTENSIONS[extension]
                failures.append(ImageError(str(candidate), (
                    f"{_FORMAT_NAMES.get(fmt, fmt)} images cannot be decoded here: this "
                    "Pillow has no reader for them")))
    return sorted(found)


# -- what a path is, told from the file system alone (lookalike.images uses these too)

def fspath(path: str | os.PathLike[str]) -> str:
    """``os.fspath`` that also tolerates a bytes path, for labels and ``open``."""
    value = os.fspath(path)
    return os.fsdecode(value) if isinstance(value, bytes) else value


#: The reason of an ImageError for a path that does not exist; indexing relies on it to
#: tell "gone" (remove it) from "unreadable" (keep it).
NOT_FOUND = "file not found"


def os_error_reason(exc: OSError) -> str:
    """A short human reason for an ``OSError`` met while reading a file."""
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return NOT_FOUND
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    return f"cannot read file: {exc.strerror or exc}"


def not_regular_reason(mode: int) -> str:
    """Why a file of ``mode`` (from ``stat``) is not read as an image: what it is instead."""
    if stat.S_ISDIR(mode):
        return "is a directory"
    kinds = [(stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    what = next((name for test, name in kinds if test(mode)), "of an unknown type")
    return f"not a regular file: {what}"


def open_regular_file(path: str, label: str) -> BinaryIO:
    """Open ``path`` for reading, raising :class:`ImageError` unless it is a non-empty file.

    The type is checked from ``stat`` *before* opening (opening a FIFO waits for a writer,
    opening a device can act on it), then again with ``fstat`` on the non-blocking open in
    case another file was swapped in between. Directories fail differently per OS, and an
    empty file would reach Pillow as a vague 'cannot identify': both are named here.
    """
    try:
        _check_regular(os.stat(path).st_mode, label)
        descriptor = os.open(path, os.O_RDONLY | _O_NONBLOCK | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise ImageError(label, os_error_reason(exc)) from exc
    try:
        info = os.fstat(descriptor)
        _check_regular(info.st_mode, label)
        if info.st_size == 0:
            raise ImageError(label, "empty file (0 bytes)")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageError(label, f"file too large ({info.st_size / 2**20:,.0f} MiB; "
                                    f"the limit is {MAX_FILE_BYTES // 2**20:,} MiB)")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
# Files are read whole into memory; no real photo, even an uncompressed TIFF at the pixel
# cap, comes near this, and a bigger file would take the memory of every reader thread.
MAX_FILE_BYTES = 2**30


def _check_regular(mode: int, label: str) -> None:
    if not stat.S_ISREG(mode):
        raise ImageError(label, not_regular_reason(mode))


def _not_a_file(path: Path) -> ImageError:
    """Why ``path``, which is neither a folder nor a regular file, is not read.

    Told from ``stat`` alone: opening a FIFO would wait for a writer, forever.
    """
    label = str(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return ImageError(label, "symbolic link loop")
        if isinstance(exc, FileNotFoundError) and os.path.islink(path):
            return ImageError(label, f"broken symbolic link (to {_link_target(path)})")
        return ImageError(label, os_error_reason(exc))
    reason = not_regular_reason(mode)
    if os.path.islink(path):
        reason += f", through a symbolic link to {_link_target(path)}"
    return ImageError(label, reason)


def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _dedup_key(path: Path) -> Path:
    """The canonical path used to spot one file reached twice."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # symlink loop: fall back to the lexical path
        return path
