"""Duplicates and near-duplicates of a collection, as groups.

Exact duplicates share their file's SHA-256. Near-duplicates (the same photo resized,
recompressed, lightly cropped or retouched) are pairs whose global vectors have a cosine
similarity of at least ``threshold``; pairs are joined into groups (connected components),
so each group also says its weakest link. The default threshold was measured on edited
copies of UKBench photos against the other photos of the same objects
(``benchmarks/bench_duplicates.py``, BENCHMARKS.md). Comparing every pair costs n^2 / 2
dot products, done in blocks: about a minute at 50,000 images on 2 cores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.collection.channels import VectorChannel
from lookalike.errors import ValidationError, expect
from lookalike.progress import step

if TYPE_CHECKING:
    from lookalike.collection.collection import Collection

NEAR_THRESHOLD = 0.93
_BLOCK = 1024


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are copies of one another: ``exact`` when every file is byte-identical,
    else near, with the weakest similarity that joins the group."""

    exact: bool
    image_ids: tuple[int, ...]
    paths: tuple[str, ...]
    weakest: float

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "exact" if self.exact else "near", "weakest": round(self.weakest, 4),
                "images": [{"id": image_id, "path": path}
                           for image_id, path in zip(self.image_ids, self.paths, strict=True)]}


@dataclass
class _Groups:
    """Union-find over image ids, remembering each group's weakest joining similarity."""

    parent: dict[int, int] = field(default_factory=dict)
    weakest: dict[int, float] = field(default_factory=dict)

    def find(self, item: int) -> int:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        self.parent[item] = root
        return root

    def join(self, first: int, second: int, similarity: float) -> None:
        a, b = self.find(first), self.find(second)
        low = min(similarity, self.weakest.get(a, 1.0), self.weakest.get(b, 1.0))
        if a != b:
            self.parent[b] = a
        self.weakest[a] = low

    def members(self) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for item in list(self.parent):
            found.setdefault(self.find(item), []).append(item)
        return {root: sorted(items) for root, items in found.items() if len(items) > 1}


def find_duplicates(collection: Collection, *, threshold: float = NEAR_THRESHOLD,
                    near: bool = True) -> list[DuplicateGroup]:
    """The groups of exact and (with ``near``) near duplicates, largest first."""
    expect(isinstance(threshold, float | int) and 0 < threshold <= 1,
           f"expected a similarity threshold in (0, 1], got {threshold!r}")
    records = {record.id: record for record in collection.images()}
    groups = _Groups()
    for ids in _same_bytes(records).values():
        for other in ids[1:]:
            groups.join(ids[0], other, 1.0)
    if near:
        if "global" not in collection.channels:
            raise ValidationError("expected a collection with a 'global' channel to find near "
                                  "duplicates, got none; add it (lookalike channels add "
                                  "global), or ask for exact duplicates only")
        ids = sorted(records)
        channel = collection.channels["global"]
        if not isinstance(channel, VectorChannel):
            raise ValidationError("expected the global channel to store vectors")
        vectors = channel.one_vector_each({str(image_id): image_id for image_id in ids})
        for first, second, similarity in similar_pairs(vectors, threshold):
            groups.join(ids[first], ids[second], similarity)
    return _as_groups(groups, records)


def _same_bytes(records: Mapping[int, Any]) -> dict[str, list[int]]:
    by_hash: dict[str, list[int]] = {}
    for image_id, record in sorted(records.items()):
        if record.sha256:
            by_hash.setdefault(record.sha256, []).append(image_id)
    return {digest: ids for digest, ids in by_hash.items() if len(ids) > 1}


def similar_pairs(vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Every pair (i < j) of rows whose cosine similarity is at least ``threshold``."""
    rows = np.asarray(vectors, dtype=np.float32)
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    pairs: list[tuple[int, int, float]] = []
    blocks = range(0, len(rows), _BLOCK)
    for done, start in enumerate(blocks, start=1):
        for other in range(start, len(rows), 8 * _BLOCK):  # a block of the rows not before
            similarity = rows[start:start + _BLOCK] @ rows[other:other + 8 * _BLOCK].T
            found_rows, found_cols = np.nonzero(similarity >= threshold)
            for row, col in zip(found_rows.tolist(), found_cols.tolist(), strict=True):
                if start + row < other + col:  # each pair once, no image with itself
                    pairs.append((start + row, other + col, float(similarity[row, col])))
        step("comparing images", done, len(blocks))
    return pairs


def _as_groups(groups: _Groups, records: Mapping[int, Any]) -> list[DuplicateGroup]:
    found = []
    for root, ids in groups.members().items():
        digests = {records[image_id].sha256 for image_id in ids}
        found.append(DuplicateGroup(
            exact=len(digests) == 1 and None not in digests, image_ids=tuple(ids),
            paths=tuple(records[image_id].path for image_id in ids),
            weakest=groups.weakest.get(root, 1.0)))
    return sorted(found, key=lambda group: (-len(group.image_ids), group.image_ids))


def group_sizes(groups: Sequence[DuplicateGroup]) -> dict[str, int]:
    """How many groups and images of each kind, for a summary."""
    return {"exact_groups": sum(g.exact for g in groups),
            "near_groups": sum(not g.exact for g in groups),
            "images": sum(len(g.image_ids) for g in groups)}
