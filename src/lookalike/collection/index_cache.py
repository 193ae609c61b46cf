"""The on-disk cache of a channel's vector index, derived from the catalog.

Layout: ``<cache>/<channel>/CURRENT`` names a folder holding ``index.bin``,
``whitening.npz`` and ``info.json``. A new folder is written in full before
``CURRENT`` is switched to it by an atomic rename, so a crash leaves either the
old cache or the new one. Reading never raises: any doubt (a missing, damaged or
foreign file) returns None and the caller rebuilds from the catalog.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import LookalikeError
from lookalike.index import VectorIndex, load_index
from lookalike.paths import atomic_write_bytes
from lookalike.whitening import PCAWhitening


@dataclass
class IndexState:
    """A vector index with what it was built from, to tell whether it is still valid."""

    index: VectorIndex
    spec: str
    whitening: PCAWhitening | None
    whitening_key: str | None
    whitened_on: int  # how many vectors the whitening was learned on (0: none yet)
    catalog_id: str  # the catalog this index was built from
    max_vector_id: int  # the highest vector id it has seen

    def info(self) -> dict[str, object]:
        return {"spec": self.spec, "whitening": self.whitening_key,
                "whitened_on": self.whitened_on, "catalog_id": self.catalog_id,
                "max_vector_id": self.max_vector_id, "n": len(self.index)}


class IndexCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self) -> IndexState | None:
        try:
            token = (self.folder / "CURRENT").read_text(encoding="ascii").strip()
            current = self.folder / token
            info = json.loads((current / "info.json").read_text())
            whitening = None
            if info["whitening"] is not None and info["whitened_on"]:
                whitening = PCAWhitening.load(current / "whitening.npz")
            return IndexState(
                index=load_index(current / "index.bin"), spec=str(info["spec"]),
                whitening=whitening, whitening_key=info["whitening"],
                whitened_on=int(info["whitened_on"]), catalog_id=str(info["catalog_id"]),
                max_vector_id=int(info["max_vector_id"]),
            )
        except (OSError, ValueError, KeyError, TypeError, LookalikeError):
            return None

    def write(self, state: IndexState) -> None:
        token = uuid.uuid4().hex[:12]
        current = self.folder / token
        current.mkdir(parents=True, exist_ok=True)
        state.index.save(current / "index.bin")
        if state.whitening is not None:
            state.whitening.save(current / "whitening.npz")
        atomic_write_bytes(current / "info.json", json.dumps(state.info()).encode())
        atomic_write_bytes(self.folder / "CURRENT", token.encode())
        for old in self.folder.iterdir():
            if old.is_dir() and old.name != token:
                shutil.rmtree(old, ignore_errors=True)
