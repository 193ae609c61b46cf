"""Regions stored in fewer dimensions: a PCA learned on the collection's own regions.

About 22 regions an image at 1,280 dimensions take 26 kB even as int8; projected on the
top 256 principal components of the collection's own regions (centred, not whitened, then
L2-normalised) they take about 6 kB, and search as well or better, since PCA drops the
directions that every region shares (BENCHMARKS.md, "Regions in fewer dimensions").

The projection is learned once, when the collection first holds ``pca_after`` images
with regions (on all of them, so on as many as the batch that crosses the threshold brings:
the batch size and the workers move the sample by a batch): until then rows are stored
whole; at that batch, inside its transaction,
every stored row is projected and rewritten, and the catalog names the projection (its
file is written first, so a named projection always exists). A run killed before the
commit leaves the whole rows and the next run learns again. Once projected, a row keeps
no more than its 256 dimensions, so the projection is never relearned: a collection that
outgrows what it was learned on is re-indexed into a new one (the cost of a projection
learned on other photos than those searched is measured in BENCHMARKS.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.collection.channels import FloatRows
from lookalike.errors import CollectionError
from lookalike.storage import Catalog, Transaction
from lookalike.whitening import PCAWhitening

PROJECTION_KEY = "regions.projection"
#: Rows the PCA is learned on at most: a 1280 x 1280 covariance needs no more to settle.
SAMPLE_ROWS = 20_000


@dataclass(frozen=True)
class LearnedOn:
    """What the catalog records of the projection in use."""

    id: str
    rows: int
    images: int

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "rows": self.rows, "images": self.images})

    @classmethod
    def from_json(cls, text: str | None) -> LearnedOn | None:
        if text is None:
            return None
        try:
            found = json.loads(text)
            return cls(id=str(found["id"]), rows=int(found["rows"]), images=int(found["images"]))
        except (ValueError, KeyError, TypeError) as error:
            raise CollectionError(f"catalog: damaged '{PROJECTION_KEY}' entry {text!r} "
                                  f"({error})") from error


class ProjectedRows(FloatRows):
    """The regions channel's codec: rows are extracted whole (``full``: the extractor's
    vector, then the region's values) and stored projected once a projection is learned;
    they decode as stored."""

    def __init__(self, full: FloatRows, projection: PCAWhitening | None = None) -> None:
        super().__init__(full.dim if projection is None else projection.dim, full.extra,
                         full.storage)
        self.full = full
        self.projection = projection

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """(n, full dim) unit vectors in the stored space."""
        return vectors if self.projection is None else self.projection.transform(vectors)

    def encode(self, extracted: np.ndarray) -> list[bytes]:
        if self.projection is None or not extracted.size:
            return super().encode(extracted)
        rows = np.atleast_2d(np.asarray(extracted, dtype=np.float32))
        return super().encode(np.hstack([self.project(rows[:, :self.full.dim]),
                                         rows[:, self.full.dim:]]))

    def is_blank(self, extracted: np.ndarray) -> bool:
        return self.full.is_blank(extracted)


def projection_path(folder: Path, projection_id: str) -> Path:
    return folder / f"projection-{projection_id}.npz"


def load_projection(folder: Path, learned: LearnedOn) -> PCAWhitening:
    path = projection_path(folder, learned.id)
    if not path.exists():
        raise CollectionError(f"{path}: the projection of the stored regions is missing; "
                              "restore it, or index into a new collection")
    projection = PCAWhitening.load(path)
    if projection.id != learned.id:
        raise CollectionError(f"{path}: expected projection {learned.id}, got {projection.id}; "
                              "restore the collection's own file")
    return projection


def learn_and_rewrite(catalog: Catalog, conn: Transaction, channel: str, full: FloatRows,
                      dims: int, folder: Path) -> tuple[PCAWhitening, LearnedOn]:
    """Learn a ``dims``-d projection on the channel's whole rows (as ``conn`` sees them),
    save it under ``folder``, rewrite every row projected and name it in the catalog, all
    inside ``conn``'s transaction."""
    stored = catalog.vectors.rows_of_channel(conn, channel)
    rows = full.decode_many([blob for _, blob in stored])
    sample = rows
    if len(rows) > SAMPLE_ROWS:
        chosen = np.random.default_rng(0).choice(len(rows), SAMPLE_ROWS, replace=False)
        sample = rows[np.sort(chosen)]
    projection = PCAWhitening(dims, whiten=False).fit(sample[:, :full.dim])
    codec = ProjectedRows(full, projection)
    projection.save(projection_path(folder, projection.id))
    by_image: dict[int, list[int]] = {}
    for position, (image_id, _) in enumerate(stored):
        by_image.setdefault(image_id, []).append(position)
    for image_id, positions in by_image.items():
        catalog.vectors.replace(conn, channel, image_id, codec.encode(rows[positions]))
    learned = LearnedOn(id=projection.id, rows=len(sample), images=len(by_image))
    catalog.put_meta(conn, PROJECTION_KEY, learned.to_json())
    return projection, learned
