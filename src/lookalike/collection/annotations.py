"""Reading and editing what is written about each image.

People's text (captions, tags, categories, keywords, descriptions) and the models' labels
(ImageNet classes, detected objects) are rows of the catalog's ``annotations`` table, each
with its source. Edits here are transactions on the catalog; the text channel's indexes
follow the catalog's annotation log, so an edit is searchable at the next search.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lookalike.annotations import load_sidecar
from lookalike.errors import NotFoundError, ValidationError, expect
from lookalike.storage import AnnotationRecord, Catalog

USER_KINDS = ("caption", "tag", "category", "keyword", "description")
_MAX_TEXT = 10_000


@dataclass
class ImportReport:
    """What a sidecar import did: images annotated, and sidecar paths not in the collection."""

    annotated: int = 0
    unknown: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"annotated": self.annotated, "unknown": len(self.unknown),
                "unknown_examples": self.unknown[:5]}


class Annotations:
    """The annotations of a collection's images."""

    def __init__(self, catalog: Catalog, on_change: Callable[[], None] | None = None) -> None:
        self.catalog = catalog
        self.on_change = on_change

    def of(self, image_id: int) -> list[AnnotationRecord]:
        self._check_image(image_id)
        return self.catalog.annotations.of_images([image_id]).get(image_id, [])

    def of_images(self, image_ids: Iterable[int]) -> dict[int, list[AnnotationRecord]]:
        return self.catalog.annotations.of_images(image_ids)

    def set(self, image_id: int, *, captions: Sequence[str] | None = None,
            tags: Sequence[str] | None = None,
            categories: Sequence[str] | None = None) -> list[AnnotationRecord]:
        """Replace the user's captions, tags or categories of an image (those given)."""
        self._check_image(image_id)
        given = {"caption": captions, "tag": tags, "category": categories}
        with self.catalog.transaction() as conn:
            for kind, texts in given.items():
                if texts is None:
                    continue
                rows = [(kind, _clean(text, kind), None) for text in _list(texts, kind)]
                self.catalog.annotations.replace(conn, image_id, "user", rows, kinds=[kind])
        self._changed()
        return self.of(image_id)

    def add(self, image_id: int, kind: str, text: str) -> AnnotationRecord:
        """Add one of the user's texts to an image; the same text again is not repeated."""
        expect(kind in USER_KINDS, f"expected a kind among {list(USER_KINDS)}, got {kind!r}")
        self._check_image(image_id)
        cleaned = _clean(text, kind)
        for existing in self.of(image_id):
            if (existing.source, existing.kind, existing.text) == ("user", kind, cleaned):
                return existing
        with self.catalog.transaction() as conn:
            new_id = self.catalog.annotations.add(conn, image_id, kind, cleaned, None, "user")
        self._changed()
        record = self.catalog.annotations.get(new_id)
        if record is None:  # pragma: no cover - written in the transaction above
            raise NotFoundError(f"expected annotation {new_id} to exist, got none")
        return record

    def remove(self, annotation_id: int) -> AnnotationRecord:
        """Delete one annotation, a person's or a model's (a wrong label)."""
        expect(isinstance(annotation_id, int) and not isinstance(annotation_id, bool),
               f"expected an annotation id, got {annotation_id!r}")
        record = self.catalog.annotations.get(annotation_id)
        if record is None:
            raise NotFoundError(f"expected an existing annotation id, got {annotation_id}")
        with self.catalog.transaction() as conn:
            self.catalog.annotations.delete(conn, annotation_id)
        self._changed()
        return record

    def import_sidecar(self, path: str | os.PathLike[str]) -> ImportReport:
        """Captions, tags and categories from a CSV/TSV/JSON sidecar (see
        :func:`lookalike.annotations.load_sidecar`); each listed image's earlier sidecar
        text is replaced, in one transaction."""
        found = load_sidecar(os.fspath(path))
        records = self.catalog.images.by_path(found)
        report = ImportReport(unknown=sorted(set(found) - set(records)))
        with self.catalog.transaction() as conn:
            for image_path, record in records.items():
                note = found[image_path]
                rows: list[tuple[str, str, float | None]] = [
                    ("tag", tag, None) for tag in note.tags]
                rows += [("category", category, None) for category in note.categories]
                if note.caption:
                    rows.append(("caption", note.caption, None))
                self.catalog.annotations.replace(conn, record.id, "sidecar", rows)
                report.annotated += 1
        self._changed()
        return report

    def categories(self) -> list[tuple[str, int]]:
        """Every category in use and how many images have it, most used first. Categories
        that differ only in case are one (filters ignore case too)."""
        return self.catalog.annotations.categories()

    def _check_image(self, image_id: int) -> None:
        expect(isinstance(image_id, int) and not isinstance(image_id, bool),
               f"expected an image id, got {image_id!r}")
        if not self.catalog.images.by_id([image_id]):
            raise NotFoundError(f"expected an indexed image id, got {image_id}")

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _list(texts: Sequence[str], kind: str) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
        raise ValidationError(f"expected a list of texts for '{kind}', got "
                              f"{type(texts).__name__}")
    return list(dict.fromkeys(texts))


def _clean(text: str, kind: str) -> str:
    if not isinstance(text, str):
        raise ValidationError(f"expected text for '{kind}', got {type(text).__name__}")
    cleaned = " ".join(text.replace("\0", " ").split())
    expect(bool(cleaned), f"expected a non-empty '{kind}', got {text!r}")
    expect(len(cleaned) <= _MAX_TEXT,
           f"expected a '{kind}' of at most {_MAX_TEXT} characters, got {len(cleaned)}")
    return cleaned
