"""User-supplied annotations from a sidecar file: CSV or JSON, one record per image.

CSV: a header with ``path`` and any of ``caption``, ``tags`` and ``category``; tags are
separated by ``;`` or ``|``. JSON: a list of such objects, or an object mapping each path
to one (``tags`` may then be a list). Paths are taken relative to the sidecar's folder.
Every problem is an error that names the file and the line or entry.
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
    category: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"caption": self.caption, "tags": list(self.tags), "category": self.category,
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
    tags = record.get("tags") or []
    if isinstance(tags, str):
        tags = re.split(r"[;|]", tags)
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SidecarError(f"{sidecar}:{where}: expected 'tags' as text or a list of text")
    known = {"path", "caption", "tags", "category"}
    extra = {key: str(value)[:_MAX_FIELD] for key, value in record.items()
             if key not in known and value not in (None, "")}
    return catalog_key(sidecar.parent / image.strip()), Annotation(
        caption=_text(record.get("caption")), category=_text(record.get("category")),
        tags=tuple(dict.fromkeys(t for t in (_text(tag) for tag in tags) if t)), extra=extra)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())[:_MAX_FIELD]
    return text or None
