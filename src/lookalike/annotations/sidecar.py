"""User-supplied annotations from a sidecar file: CSV or JSON, one record per image.

CSV: a header with ``path`` and any of ``caption``, ``tags`` and ``category`` (or
``categories``); tags and categories are separated by ``;`` or ``|``. JSON: a list of such
objects, or an object mapping each path to one (``tags`` may then be a list). Paths are
taken relative to the sidecar's folder. Every problem is an error that names the file and
the line or entry.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike.errors import LookalikeError
from lookalike.paths import catalog_key

_MAX_FIELD = 10_000


class SidecarError(LookalikeError):
    """A sidecar file is missing, malformed, or has a bad entry."""


@dataclass(frozen=True)
class Annotation:
    caption: str | None = None
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def category(self) -> str | None:
        """The first category, for sidecars that give one per image."""
        return self.categories[0] if self.categories else None

    def as_dict(self) -> dict[str, Any]:
        return {"caption": self.caption, "tags": list(self.tags),
                "categories": list(self.categories),
                **({"extra": self.extra} if self.extra else {})}


def load_sidecar(path: str | Path) -> dict[str, Annotation]:
    """Annotations by catalogued path (absolute, as the collection keys images)."""
    sidecar = Path(path)
    if not sidecar.is_file():
        raise SidecarError(f"{sidecar}: expected a CSV or JSON sidecar file, but it "
                           f"{'is not a file' if sidecar.exists() else 'does not exist'}")
    try:
        text = sidecar.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise SidecarError(f"{sidecar}: cannot read it as UTF-8 text ({error})") from error
    if sidecar.suffix.lower() == ".json":
        entries = _json_entries(sidecar, text)
    elif sidecar.suffix.lower() in (".csv", ".tsv"):
        entries = _csv_entries(sidecar, text)
    else:
        raise SidecarError(f"{sidecar}: expected a .csv, .tsv or .json file, got "
                           f"'{sidecar.suffix}'")
    found: dict[str, Annotation] = {}
    for where, record in entries:
        image, annotation = _annotation(sidecar, where, record)
        if image in found:
            raise SidecarError(f"{sidecar}:{where}: '{image}' is annotated twice")
        found[image] = annotation
    return found


def _csv_entries(sidecar: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    dialect = "excel-tab" if sidecar.suffix.lower() == ".tsv" else "excel"
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    if not reader.fieldnames or "path" not in reader.fieldnames:
        raise SidecarError(f"{sidecar}:1: expected a header with a 'path' column, got "
                           f"{reader.fieldnames}")
    return [(str(line), row) for line, row in enumerate(reader, start=2)]


def _json_entries(sidecar: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SidecarError(f"{sidecar}:{error.lineno}: not valid JSON ({error.msg})") from error
    if isinstance(data, dict):
        return [(f"'{key}'", {"path": key, **value}) if isinstance(value, dict)
                else (f"'{key}'", {"path": key, "_bad": value}) for key, value in data.items()]
    if isinstance(data, list):
        return [(f"entry {i}", item if isinstance(item, dict) else {"_bad": item})
                for i, item in enumerate(data, start=1)]
    raise SidecarError(f"{sidecar}: expected a list of objects or an object of paths, got "
                       f"{type(data).__name__}")


def _annotation(sidecar: Path, where: str, record: dict[str, Any]) -> tuple[str, Annotation]:
    if "_bad" in record:
        raise SidecarError(f"{sidecar}:{where}: expected an object, got "
                           f"{type(record['_bad']).__name__}")
    image = record.get("path")
    if not isinstance(image, str) or not image.strip():
        raise SidecarError(f"{sidecar}:{where}: expected a non-empty 'path', got {image!r}")
    tags = _text_list(sidecar, where, record, "tags")
    categories = (_text_list(sidecar, where, record, "category")
                  + _text_list(sidecar, where, record, "categories"))
    known = {"path", "caption", "tags", "category", "categories"}
    extra = {key: str(value)[:_MAX_FIELD] for key, value in record.items()
             if key not in known and value not in (None, "")}
    return catalog_key(sidecar.parent / image.strip()), Annotation(
        caption=_text(record.get("caption")), categories=tuple(dict.fromkeys(categories)),
        tags=tuple(dict.fromkeys(tags)), extra=extra)


def _text_list(sidecar: Path, where: str, record: dict[str, Any], key: str) -> list[str]:
    """A field that holds several texts: a list, or one text split at ';' or '|'."""
    value = record.get(key) or []
    if isinstance(value, str):
        value = re.split(r"[;|]", value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SidecarError(f"{sidecar}:{where}: expected '{key}' as text or a list of text, "
                           f"got {type(value).__name__}")
    return [text for text in (_text(v) for v in value) if text]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())[:_MAX_FIELD]
    return text or None
