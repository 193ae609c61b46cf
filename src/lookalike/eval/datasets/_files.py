"""Checks and listings shared by the loaders; each failure is a :class:`DatasetError` that
names the folder or file and says what was expected there."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from lookalike.eval.datasets._types import DatasetError

#: File name endings (compared lower-case) that :func:`load_custom` treats as images.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}
)

SHOW = 5  # how many missing files an error message lists


def require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DatasetError(f"{path}: expected {what}, but it {state}")


def require_file(path: Path, what: str) -> None:
    if not path.is_file():
        state = "is not a file" if path.exists() else "does not exist"
        raise DatasetError(f"{path}: expected {what}, but it {state}")


def check_present(paths: Iterable[Path], what: str, where: Path) -> None:
    """Fail once for every missing file, listing the first few, rather than at the first."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:SHOW])
        more = f" and {len(missing) - SHOW} more" if len(missing) > SHOW else ""
        raise DatasetError(
            f"{where}: expected every {what} to exist, but {len(missing)} are missing: "
            f"{shown}{more}"
        )


def read_lines(path: Path, what: str) -> list[str]:
    """The lines of a text file; ``utf-8-sig`` because spreadsheets save TSVs with a BOM."""
    require_file(path, what)
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(
            f"{path}: expected {what} in UTF-8 text, could not read it: {error}"
        ) from error


def is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(root: Path) -> list[Path]:
    """Every image file under ``root``, recursively, skipping hidden files and folders."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(folder)
        found.extend(base / f for f in files if not f.startswith(".") and is_image(f))
    return sorted(found)


def natural_key(path: Path) -> tuple[int, int, str]:
    """Sort key putting ``2.pgm`` before ``10.pgm``; names without digits go last."""
    digits = re.search(r"\d+", path.stem)
    return (0, int(digits.group()), path.name) if digits else (1, 0, path.name)
