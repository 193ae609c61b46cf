"""Hamming embedding (Jégou, Douze & Schmid, ECCV 2008): a 64-bit signature per keypoint.

Keypoints that share a coarse tree node are only candidates for the same physical point;
most such pairs are wrong, and when they outnumber the right ones ~30 to 1, RANSAC finds
no transform. Each descriptor is projected on 64 fixed random orthogonal directions, and
each bit says whether the projection is above that direction's median among the training
descriptors of the same node. Two descriptors of the same point agree on most bits, two
unrelated ones on about half, so pairs within a few bits of each other are kept and the
rest dropped, which is what matching the descriptors themselves would do, at 8 bytes a
keypoint instead of 128.

The medians are learned per node at :func:`hamming_level` (1,000 nodes for the default
tree), from the sample the tree is trained on, and travel inside the tree file.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lookalike.errors import expect
from lookalike.local.ranges import concatenated_ranges

BITS = 64
#: Pairs whose signatures differ in more bits are not the same point. On phone photos of
#: covers, 20 kept 12-19 true pairs of references that the unfiltered pairs missed, while
#: two random signatures come this close about once in 500 (BENCHMARKS.md, "Exact objects").
MAX_DISTANCE = 20
_MIN_NODE_SAMPLE = 8  # fewer training descriptors than this: the node uses the global medians
_SEED = 20080520  # the projection is part of the tree file; the seed only makes it reproducible


def hamming_level(depth: int) -> int:
    """The tree level whose nodes own the medians and pair keypoints: three levels above
    the leaves (level 3 of the default depth-6 tree)."""
    return max(1, depth - 3)


@dataclass(frozen=True)
class HammingEmbedding:
    """The projection (64, dim), and the medians (len(nodes), 64) of each node of ``nodes``
    (sorted ids at ``level``); ``fallback`` serves nodes with too few training points."""

    projection: np.ndarray
    level: int
    nodes: np.ndarray
    medians: np.ndarray
    fallback: np.ndarray

    def __post_init__(self) -> None:
        expect(self.projection.shape[0] == BITS and self.medians.shape == (len(self.nodes), BITS)
               and self.fallback.shape == (BITS,),
               f"expected a ({BITS}, d) projection and ({len(self.nodes)}, {BITS}) medians, got "
               f"{self.projection.shape} and {self.medians.shape}")

    @classmethod
    def train(cls, descriptors: np.ndarray, nodes: np.ndarray, level: int) -> HammingEmbedding:
        """Medians of the projected ``descriptors`` per node (``nodes``: each descriptor's
        node at ``level``)."""
        points = np.asarray(descriptors, dtype=np.float32)
        rng = np.random.default_rng(_SEED)
        basis, _ = np.linalg.qr(rng.standard_normal((points.shape[1], points.shape[1])))
        projection = np.ascontiguousarray(basis[:BITS], dtype=np.float32)
        projected = points @ projection.T
        order = np.argsort(nodes, kind="stable")
        ids, starts, counts = np.unique(np.asarray(nodes)[order], return_index=True,
                                        return_counts=True)
        kept = counts >= _MIN_NODE_SAMPLE
        medians = np.stack([np.median(projected[order[start:start + count]], axis=0)
                            for start, count in zip(starts[kept], counts[kept], strict=True)]
                           ) if kept.any() else np.empty((0, BITS), np.float32)
        return cls(projection, level, ids[kept].astype(np.int32),
                   medians.astype(np.float32), np.median(projected, axis=0).astype(np.float32))

    def signatures(self, descriptors: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """(n,) uint64: bit b set where the projection on direction b is above the median
        of the descriptor's node (``nodes``: at :attr:`level`)."""
        projected = np.asarray(descriptors, dtype=np.float32) @ self.projection.T
        medians = np.tile(self.fallback, (len(projected), 1))
        if len(self.nodes):
            position = np.minimum(np.searchsorted(self.nodes, nodes), len(self.nodes) - 1)
            known = self.nodes[position] == nodes
            medians[known] = self.medians[position[known]]
        bits = (projected > medians).astype(np.uint8)
        return np.packbits(bits, axis=1, bitorder="little").view("<u8").ravel()


def hamming_matches(query_nodes: np.ndarray, query_signatures: np.ndarray,
                    match_nodes: np.ndarray, match_signatures: np.ndarray,
                    max_distance: int = MAX_DISTANCE) -> np.ndarray:
    """(m, 2) index pairs of keypoints in the same node whose signatures differ in at most
    ``max_distance`` bits, in query order (within one query keypoint, in match order)."""
    return hamming_matches_many(query_nodes, query_signatures,
                                [(match_nodes, match_signatures)], max_distance)[0]


def hamming_matches_many(query_nodes: np.ndarray, query_signatures: np.ndarray,
                         matches: Sequence[tuple[np.ndarray, np.ndarray]],
                         max_distance: int = MAX_DISTANCE) -> list[np.ndarray]:
    """:func:`hamming_matches` against each of ``matches`` ((nodes, signatures) of stored
    images), in one vectorised pass: each image's pairs as pairing it alone gives them,
    without a Python step per image (verifying 100 candidates paired them 8x faster when
    measured than one image at a time)."""
    if not matches:
        return []
    sizes = np.array([len(nodes) for nodes, _ in matches], dtype=np.int64)
    owner = np.repeat(np.arange(len(matches)), sizes)
    local = concatenated_ranges(np.zeros_like(sizes), sizes)
    nodes = np.concatenate([np.asarray(found, dtype=np.int64) for found, _ in matches])
    signatures = np.concatenate([np.asarray(found, dtype=np.uint64) for _, found in matches])
    # By node, then by image, then by position in the image (the order they were joined
    # in, which a stable sort keeps): each image's keypoints of one node come in the order
    # hamming_matches meets them.
    order = np.argsort(_narrow(nodes), kind="stable")
    sorted_nodes = nodes[order]
    low = np.searchsorted(sorted_nodes, query_nodes, side="left")
    lengths = np.searchsorted(sorted_nodes, query_nodes, side="right") - low
    query_index = np.repeat(np.arange(len(query_nodes)), lengths)
    position = order[concatenated_ranges(low, lengths)]
    close = np.bitwise_count(np.asarray(query_signatures)[query_index]
                             ^ signatures[position]) <= max_distance
    query_index, position = query_index[close], position[close]
    by_image = np.argsort(owner[position], kind="stable")  # keeps query order within each
    pairs = np.stack([query_index[by_image], local[position[by_image]]], axis=1)
    bounds = np.searchsorted(owner[position[by_image]], np.arange(len(matches) + 1))
    return [pairs[start:end].astype(np.int64) for start, end in itertools.pairwise(bounds)]


def _narrow(nodes: np.ndarray) -> np.ndarray:
    """The node ids as 16-bit integers where they fit (those of the default tree's pairing
    level do): numpy sorts those stably by radix, 9x faster than 64-bit ones."""
    if len(nodes) and nodes.min() >= 0 and nodes.max() < 2**16:
        return nodes.astype(np.uint16)
    return nodes
