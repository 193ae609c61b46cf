"""The collection manifest: which channels it has and how each one was built.

It is written once, atomically, when a collection is created, and checked every
time the collection is opened, so that vectors made by one extractor are never
searched with another.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike import __version__
from lookalike.errors import CollectionError, ManifestMismatchError
from lookalike.paths import atomic_write_bytes

FORMAT = "lookalike-collection"
SCHEMA = 1
FILENAME = "manifest.json"


@dataclass
class Manifest:
    channels: dict[str, dict[str, Any]]
    schema: int = SCHEMA
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                    time.gmtime()))
    created_by: str = f"lookalike {__version__}"

    def to_json(self) -> str:
        return json.dumps(
            {"format": FORMAT, "schema": self.schema, "created_at": self.created_at,
             "created_by": self.created_by, "channels": self.channels},
            indent=2, sort_keys=True,
        )

    def save(self, root: Path) -> None:
        atomic_write_bytes(root / FILENAME, self.to_json().encode())

    @classmethod
    def load(cls, root: Path) -> Manifest:
        path = root / FILENAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise CollectionError(f"{root}: not a Lookalike collection (no {FILENAME})") from error
        except (OSError, ValueError) as error:
            raise CollectionError(f"{path}: unreadable manifest ({error})") from error
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CollectionError(f"{path}: expected a '{FORMAT}' manifest, got something else")
        channels = data.get("channels")
        if not (isinstance(channels, dict) and channels
                and all(isinstance(value, dict) for value in channels.values())):
            raise CollectionError(f"{path}: expected a 'channels' object, got {channels!r}")
        if data.get("schema") != SCHEMA:
            raise ManifestMismatchError(
                f"{path}: expected collection schema {SCHEMA}, got {data.get('schema')}; "
                "re-index into a new collection"
            )
        return cls(channels=data["channels"], schema=data["schema"],
                   created_at=data.get("created_at", ""), created_by=data.get("created_by", ""))


def check_channel(root: Path, name: str, recorded: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Raise unless every setting that shapes the stored vectors is the same."""
    differences = [
        f"{key}: collection has {recorded.get(key)!r}, asked for {value!r}"
        for key, value in wanted.items()
        if recorded.get(key) != value
    ]
    if differences:
        raise ManifestMismatchError(
            f"{root}: channel '{name}' was built with other settings ({'; '.join(differences)}). "
            "Open it without those options to use its own, or index into a new collection."
        )


def refuse_split(root: Path) -> None:
    """A folder that holds a split collection's shards is no collection to create."""
    if (root / "shards.json").exists():
        raise CollectionError(f"{root}: a split collection (lookalike shard); index or open one "
                              "of its shards, or search them all (ShardedCollection)")
