"""Finding images: the folders and files a user names, expanded into image files.

:func:`discover_images` returns a sorted, de-duplicated list of image files and reports
missing paths and unlistable folders as failures instead of raising, so one typo does
not abort indexing a whole collection.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import ImageError, expect
from lookalike.images import NOT_FOUND, fspath, os_error_reason

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
"""File name extensions (lowercase, with the dot) that folder discovery picks up."""


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
    every non-hidden file whose extension, in any case, is in
    :data:`IMAGE_EXTENSIONS`, sorted by path; hidden files and folders (name
    starting with '.') are skipped. A file named explicitly is always included,
    whatever its extension, so that a wrong file gets a clear decode error later
    rather than vanishing silently. Files keep the order of the arguments; a file
    reached twice (also through a symbolic link) is kept once. A path that does
    not exist, or a folder that cannot be listed, becomes an entry in
    ``failures`` instead of raising.
    """
    expect(
        not isinstance(paths, str | bytes | os.PathLike),
        "expected an iterable of paths, got a single path; wrap it in a list",
    )
    files: list[Path] = []
    failures: list[ImageError] = []
    seen: set[Path] = set()
    for raw in paths:
        expect(
            isinstance(raw, str | os.PathLike),
            f"expected a path, got {type(raw).__name__}",
        )
        path = Path(os.path.abspath(fspath(raw)))
        for found in _expand_path(path, recursive, failures):
            key = _dedup_key(found)
            if key not in seen:
                seen.add(key)
                files.append(found)
    return DiscoveryResult(files=files, failures=failures)


def _expand_path(path: Path, recursive: bool, failures: list[ImageError]) -> list[Path]:
    """The files ``path`` stands for; failures are appended to ``failures``."""
    label = str(path)
    if path.is_dir():
        return _walk_folder(path, recursive, failures)
    if path.is_file():
        return [path]
    if os.path.lexists(path):
        reason = "broken symbolic link" if path.is_symlink() else "not a regular file"
        failures.append(ImageError(label, reason))
    else:
        failures.append(ImageError(label, NOT_FOUND))
    return []


def _walk_folder(folder: Path, recursive: bool, failures: list[ImageError]) -> list[Path]:
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
        for entry in names:
            if entry.startswith(".") or not _has_image_extension(entry):
                continue
            candidate = Path(root, entry)
            if candidate.is_file():
                found.append(candidate)
            else:
                failures.append(ImageError(str(candidate), "broken symbolic link"))
    return sorted(found)


def _has_image_extension(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _dedup_key(path: Path) -> Path:
    """The canonical path used to spot one file reached twice."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # symlink loop: fall back to the lexical path
        return path
