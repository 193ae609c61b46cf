"""Labelled images to train on: a folder per class, or a TSV of (path, label) lines."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from lookalike.collection import Collection
from lookalike.discovery import image_extensions
from lookalike.errors import ValidationError


@dataclass(frozen=True)
class LabelledImages:
    """Image files and the class of each."""

    paths: tuple[Path, ...]
    labels: tuple[str, ...]

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def fingerprint(self) -> str:
        """What the data is, for the model card and the feature cache: every file's path,
        size and modification time, and its label."""
        digest = hashlib.sha256()
        for path, label in zip(self.paths, self.labels, strict=True):
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{label}\n".encode())
        return digest.hexdigest()[:16]


def labelled_images(source: str | Path) -> LabelledImages:
    """A folder with one sub-folder of images per class, a TSV file of ``path<TAB>label``
    lines (relative paths are relative to the TSV's folder), or a collection whose images
    have categories (an image of exactly one category is labelled with it, case folded;
    the others are left out)."""
    root = Path(source)
    if Collection.exists(root):
        found = _from_collection(root)
    elif root.is_dir():
        found = _from_folders(root)
    elif root.is_file():
        found = _from_tsv(root)
    else:
        raise ValidationError(f"{root}: expected a folder of class folders or a TSV of "
                              "path and label, found nothing there")
    counts = {label: found.labels.count(label) for label in set(found.labels)}
    if len(counts) < 2 or sum(count > 1 for count in counts.values()) < 2:
        raise ValidationError(f"{root}: expected at least two classes of two images or more "
                              f"to train on, got {len(found.paths)} images in {len(counts)} "
                              "classes")
    return found


def _from_collection(root: Path) -> LabelledImages:
    paths: list[Path] = []
    labels: list[str] = []
    with Collection(root).open(create=False) as collection:
        records = {record.id: record for record in collection.images()}
        notes = collection.annotations.of_images(records)
        for image_id, record in sorted(records.items()):
            categories = {note.text.casefold() for note in notes.get(image_id, [])
                          if note.kind == "category"}
            if len(categories) == 1 and Path(record.path).is_file():
                paths.append(Path(record.path))
                labels.append(categories.pop())
    return LabelledImages(tuple(paths), tuple(labels))


def _from_folders(root: Path) -> LabelledImages:
    paths: list[Path] = []
    labels: list[str] = []
    extensions = image_extensions()
    for folder in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        images = sorted(p for p in folder.rglob("*") if p.is_file()
                        and p.suffix.lower() in extensions and not p.name.startswith("."))
        paths.extend(images)
        labels.extend([folder.name] * len(images))
    return LabelledImages(tuple(paths), tuple(labels))


def _from_tsv(path: Path) -> LabelledImages:
    paths: list[Path] = []
    labels: list[str] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 2 or not row[1].strip():
                raise ValidationError(f"{path}:{number}: expected 'path<TAB>label', got {row}")
            image = Path(row[0]) if Path(row[0]).is_absolute() else path.parent / row[0]
            if not image.is_file():
                raise ValidationError(f"{path}:{number}: {image}: no such image file")
            paths.append(image)
            labels.append(row[1].strip())
    return LabelledImages(tuple(paths), tuple(labels))
