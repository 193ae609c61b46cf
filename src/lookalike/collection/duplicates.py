"""Duplicates and near-duplicates of a collection, as groups.

Exact duplicates share their file's SHA-256. Near-duplicates (the same photo resized,
recompressed, lightly cropped or retouched) take two kinds of evidence: their global
vectors are close (cosine similarity at least ``threshold``: the candidates), and their
64-bit perceptual hashes (pHash: the signs of the lowest 8 x 8 frequencies of a 32 x 32
grey thumbnail's DCT, as imagehash computes it) differ in at most ``max_bits`` bits. The
global vectors alone confuse photos of the same building or object taken moments apart
with copies; the hash alone misses crops. Pairs are joined into groups (connected
components), each with its weakest link. The defaults were measured on edited copies among
photos of the same buildings and objects (``benchmarks/bench_duplicates.py``,
BENCHMARKS.md). Comparing every pair of vectors costs n^2 / 2 dot products, in blocks;
only the candidates' files are read for their hashes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from lookalike.collection.channels import VectorChannel
from lookalike.errors import ImageError, ValidationError, expect
from lookalike.images import load_image
from lookalike.progress import step

if TYPE_CHECKING:
    from lookalike.collection.collection import Collection

NEAR_THRESHOLD = 0.85
MAX_HASH_BITS = 6
_BLOCK = 1024


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are copies of one another: ``exact`` when every file is byte-identical,
    else near, with the weakest similarity that joins the group."""

    exact: bool
    image_ids: tuple[int, ...]
    paths: tuple[str, ...]
    weakest: float
    #: For each image, the first image before it in the group with the same bytes (None:
    #: the first of its bytes): in a near group, the byte-identical copies among the others.
    same_bytes_as: tuple[int | None, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "exact" if self.exact else "near", "weakest": round(self.weakest, 4),
                "images": [{"id": image_id, "path": path, "same_bytes_as": first}
                           for image_id, path, first in zip(self.image_ids, self.paths,
                                                            self.same_bytes_as, strict=True)]}


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
                    max_bits: int | None = MAX_HASH_BITS,
                    near: bool = True) -> list[DuplicateGroup]:
    """The groups of exact and (with ``near``) near duplicates, largest first; with
    ``max_bits`` None, the global vectors alone decide."""
    expect(isinstance(threshold, float | int) and 0 < threshold <= 1,
           f"expected a similarity threshold in (0, 1], got {threshold!r}")
    expect(max_bits is None or (isinstance(max_bits, int) and 0 <= max_bits <= 64),
           f"expected at most 0 to 64 differing hash bits, got {max_bits!r}")
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
        # An image the global channel has not seen yet (a channel added since) waits for
        # the next index.
        done = collection.catalog.images.channels_of(records)
        ids = sorted(image_id for image_id in records if "global" in done.get(image_id, ()))
        channel = collection.channels["global"]
        if not isinstance(channel, VectorChannel):
            raise ValidationError("expected the global channel to store vectors")
        vectors = channel.one_vector_each({str(image_id): image_id for image_id in ids})
        pairs = [(ids[a], ids[b], similarity)
                 for a, b, similarity in similar_pairs(vectors, threshold)]
        if max_bits is not None:
            pairs = _hashes_agree(pairs, records, max_bits, collection.max_pixels)
        for first, second, similarity in pairs:
            groups.join(first, second, similarity)
    return _as_groups(groups, records)


def _hashes_agree(pairs: list[tuple[int, int, float]], records: Mapping[int, Any],
                  max_bits: int, max_pixels: int) -> list[tuple[int, int, float]]:
    """The pairs whose images' perceptual hashes differ in at most ``max_bits`` bits; an
    image whose file cannot be read now keeps none of its pairs."""
    wanted = sorted({image_id for pair in pairs for image_id in pair[:2]})
    hashes: dict[int, np.ndarray] = {}
    for done, image_id in enumerate(wanted, start=1):
        with contextlib.suppress(ImageError):
            hashes[image_id] = perceptual_hash(load_image(records[image_id].path,
                                                          max_pixels=max_pixels))
        step("hashing the candidates", done, len(wanted))
    return [(a, b, similarity) for a, b, similarity in pairs if a in hashes and b in hashes
            and int(np.count_nonzero(hashes[a] != hashes[b])) <= max_bits]


def perceptual_hash(image: np.ndarray) -> np.ndarray:
    """pHash: 64 bits, whether each of the 8 x 8 lowest DCT-II frequencies of the 32 x 32
    grey thumbnail (Lanczos) exceeds their median (the bits imagehash.phash gives)."""
    grey = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("L")
    pixels = np.asarray(grey.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    n = np.arange(32)
    basis = np.cos(np.pi * n[:, None] * (2 * n[None, :] + 1) / 64)  # DCT-II, unscaled
    low = (basis @ pixels @ basis.T)[:8, :8]
    bits: np.ndarray = (low > np.median(low)).reshape(-1)
    return bits


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
            weakest=groups.weakest.get(root, 1.0),
            same_bytes_as=_same_bytes_as(ids, records)))
    return sorted(found, key=lambda group: (-len(group.image_ids), group.image_ids))


def _same_bytes_as(ids: list[int], records: Mapping[int, Any]) -> tuple[int | None, ...]:
    """For each of ``ids``, the first one before it with the same bytes, else None (also
    for a file whose hash is unknown)."""
    first: dict[str, int] = {}
    found: list[int | None] = []
    for image_id in ids:
        digest = records[image_id].sha256
        earlier = first.setdefault(digest, image_id) if digest else image_id
        found.append(None if earlier == image_id else earlier)
    return tuple(found)

