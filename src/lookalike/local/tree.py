"""The vocabulary tree of Nistér & Stewénius (CVPR 2006): hierarchical k-means.

The root's descriptors are split into ``branching`` clusters by k-means, each
cluster again, down to ``depth`` levels, so up to branching**depth leaves (10^6
by default). A node with fewer than ``min_split`` training descriptors is not
split further: sparse regions of descriptor space get shallow branches instead
of leaves with a single training point. A descriptor is quantised by descending
from the root, at each level to the nearest of the current node's children; the
leaf it reaches is its visual word, and the nodes on the way are its path.

Nodes are numbered breadth first, the root is 0. The file format is an .npz of
the arrays plus the settings; a tree's id is a hash of its content, so that a
collection can check it is searched with the tree its words came from. A tree trained
since issue 18 also holds a Hamming embedding (:mod:`lookalike.local.hamming`) learned on
the same sample; an older one reads back without it.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import ManifestMismatchError, ValidationError, expect
from lookalike.local.features import FEATURE_KINDS
from lookalike.local.hamming import BITS, HammingEmbedding, hamming_level
from lookalike.local.kmeans import kmeans
from lookalike.paths import atomic_write_bytes

FORMAT = "lookalike-vocabulary-tree"
VERSION = 1
_CHUNK = 256  # descriptors per step of the descent: the gathered centres stay in cache


@dataclass(frozen=True)
class TrainingStats:
    descriptors: int
    nodes: int
    leaves: int
    seconds: float


class VocabularyTree:
    """``centres[i]`` is node i's centre, ``children[i]`` its children (-1: none)."""

    def __init__(self, centres: np.ndarray, children: np.ndarray, *, features: str,
                 branching: int, depth: int, hamming: HammingEmbedding | None = None) -> None:
        expect(features in FEATURE_KINDS,
               f"expected a feature kind among {FEATURE_KINDS}, got {features!r}")
        expect(centres.ndim == 2 and children.shape == (len(centres), branching),
               f"expected children of shape ({len(centres)}, {branching}), got {children.shape}")
        self.centres = np.ascontiguousarray(centres, dtype=np.float32)
        self.children = np.ascontiguousarray(children, dtype=np.int32)
        self.features = features
        self.branching = branching
        self.depth = depth
        self.parent = np.full(len(centres), -1, dtype=np.int32)
        has = self.children >= 0
        self.parent[self.children[has]] = np.repeat(np.arange(len(centres), dtype=np.int32),
                                                    has.sum(axis=1))
        self.is_leaf = ~has.any(axis=1)
        self.level = np.zeros(len(centres), dtype=np.int8)
        current = np.array([0])
        for depth in range(1, self.depth + 1):
            current = self.children[current].ravel()
            current = current[current >= 0]
            self.level[current] = depth
        self._norms = (self.centres * self.centres).sum(axis=1)
        self.hamming = hamming
        self._codes: tuple[np.ndarray, np.float32] | None = None  # set by compacted()
        self._id: str | None = None
        # (level, every node's ancestor there): pairing looks up 100 candidates' keypoints
        # a query, which walking up the tree each time made 5% of a query's time.
        self._ancestors: tuple[int, np.ndarray] | None = None

    # -- training ---------------------------------------------------------------------------

    @classmethod
    def train(
        cls, descriptors: np.ndarray, *, features: str, branching: int = 10, depth: int = 6,
        min_split: int | None = None, iterations: int = 20, seed: int = 0, compact: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[VocabularyTree, TrainingStats]:
        """Hierarchical k-means, level by level. ``progress(done, total)`` as the nodes of
        each level are split, in hundredths of a level (``total`` is ``100 * depth``).
        ``compact``: centres on a grid of 256 steps (:meth:`compacted`), before the Hamming
        embedding learns on the nodes they give."""
        expect(isinstance(branching, int) and branching >= 2,
               f"expected a branching factor >= 2, got {branching!r}")
        expect(isinstance(depth, int) and 1 <= depth <= 12, f"expected depth 1..12, got {depth!r}")
        points = np.ascontiguousarray(descriptors, dtype=np.float32)
        expect(points.ndim == 2 and len(points) > 0,
               f"expected a non-empty (n, d) descriptor matrix, got shape {points.shape}")
        min_split = 4 * branching if min_split is None else min_split
        expect(min_split >= branching, f"expected min_split >= {branching}, got {min_split}")
        expect(len(points) >= min_split,
               f"expected at least {min_split} descriptors to train a tree, got {len(points)}")
        started = time.perf_counter()
        centres = [points.mean(axis=0)]
        children: list[list[int]] = [[]]
        frontier = [(0, np.arange(len(points)))]
        for level in range(depth):
            next_frontier = []
            for position, (node, members) in enumerate(frontier):
                if progress is not None:
                    progress(100 * level + 100 * position // len(frontier), 100 * depth)
                if len(members) < min_split:
                    continue
                found, labels = kmeans(points[members], branching, iterations=iterations,
                                       seed=seed + node)
                if len(found) < 2:
                    continue  # all descriptors alike: nothing to split
                for cluster, centre in enumerate(found):
                    child = len(centres)
                    centres.append(centre)
                    children.append([])
                    children[node].append(child)
                    next_frontier.append((child, members[labels == cluster]))
            frontier = next_frontier
            if progress is not None:
                progress(100 * (level + 1), 100 * depth)
        table = np.full((len(centres), branching), -1, dtype=np.int32)
        for node, kids in enumerate(children):
            table[node, : len(kids)] = kids
        tree = cls(np.stack(centres), table, features=features, branching=branching, depth=depth)
        if compact:
            tree = tree.compacted()
        tree.hamming = tree.train_hamming(points)
        stats = TrainingStats(descriptors=len(points), nodes=len(centres),
                              leaves=int(tree.is_leaf.sum()),
                              seconds=time.perf_counter() - started)
        return tree, stats

    def compacted(self) -> VocabularyTree:
        """This tree with its centres rounded to 256 levels, stored as bytes: a file a
        quarter the size, for trees that ship. The rounding moves a centre by at most
        half a step (1/510 of the largest coordinate), far less than the distance between
        sibling centres; the compacted tree is a tree of its own, with its own id."""
        largest = float(self.centres.max()) if self.centres.size else 0.0
        expect(float(self.centres.min(initial=0.0)) >= 0.0 and largest > 0.0,
               "expected non-negative centres (SIFT and RootSIFT descriptors) to compact")
        scale = np.float32(largest / 255.0)
        codes = np.rint(self.centres / scale).clip(0, 255).astype(np.uint8)
        tree = VocabularyTree(codes.astype(np.float32) * scale, self.children,
                              features=self.features, branching=self.branching,
                              depth=self.depth, hamming=self.hamming)
        tree._codes = (codes, scale)
        return tree

    def train_hamming(self, descriptors: np.ndarray) -> HammingEmbedding | None:
        """The Hamming embedding of this tree's nodes, learned on ``descriptors``; None for
        descriptors of fewer dimensions than signature bits (toy trees)."""
        if descriptors.shape[1] < BITS:
            return None
        level = hamming_level(self.depth)
        return HammingEmbedding.train(descriptors, self.coarser(self.quantize(descriptors),
                                                                self.depth, level), level)

    def signatures(self, descriptors: np.ndarray, leaves: np.ndarray) -> np.ndarray | None:
        """Each descriptor's 64-bit signature (``leaves``: its words); None for a tree
        without a Hamming embedding."""
        if self.hamming is None:
            return None
        return self.hamming.signatures(descriptors, self.hamming_nodes(leaves))

    def hamming_nodes(self, leaves: np.ndarray) -> np.ndarray:
        """Each word's node at the Hamming embedding's level (where keypoints are paired)."""
        if self.hamming is None:
            raise ValidationError("expected a tree with a Hamming embedding, got one without "
                                  "(pair its keypoints by shared nodes instead)")
        level = self.hamming.level
        found = self._ancestors
        if found is None or found[0] != level:
            nodes = np.arange(self.n_nodes, dtype=np.int64)
            found = self._ancestors = (level, self.coarser(nodes, self.depth, level)
                                       .astype(np.int32))
        return found[1][np.asarray(leaves, dtype=np.int64)].astype(np.int64)

    # -- quantisation -----------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        return len(self.centres)

    def quantize(self, descriptors: np.ndarray) -> np.ndarray:
        """The leaf (visual word) of each descriptor: (n,) int32 node ids."""
        points = np.ascontiguousarray(descriptors, dtype=np.float32)
        expect(points.ndim == 2 and points.shape[1] == self.centres.shape[1],
               f"expected (n, {self.centres.shape[1]}) descriptors, got shape {points.shape}")
        leaves = np.empty(len(points), dtype=np.int32)
        for start in range(0, len(points), _CHUNK):
            leaves[start : start + _CHUNK] = self._descend(points[start : start + _CHUNK])
        return leaves

    def _descend(self, points: np.ndarray) -> np.ndarray:
        node = np.zeros(len(points), dtype=np.int32)
        for _ in range(self.depth):
            kids = self.children[node]  # (n, branching), -1 where a node has fewer children
            active = kids[:, 0] >= 0
            if not active.any():
                break
            kids, pts = kids[active], points[active]
            safe = np.maximum(kids, 0)
            # ||c||² - 2 c·x ranks the children like the squared distance does.
            cross = np.einsum("nkd,nd->nk", self.centres[safe], pts)
            cost = np.where(kids >= 0, self._norms[safe] - 2.0 * cross, np.inf)
            node[active] = kids[np.arange(len(kids)), cost.argmin(axis=1)]
        return node

    def coarser(self, nodes: np.ndarray, up: int, floor: int) -> np.ndarray:
        """Each node's ancestor ``up`` levels higher, but no higher than level ``floor``
        (1: the root's children); nodes at or above ``floor`` stay."""
        current = np.asarray(nodes, dtype=np.int64)
        target = np.maximum(self.level[current].astype(np.int64) - up, floor)
        for _ in range(up):
            deeper = self.level[current] > target
            current = np.where(deeper, self.parent[current], current)
        return current

    def paths(self, leaves: np.ndarray) -> np.ndarray:
        """(n, depth + 1) node ids from each leaf up to the root, -1 past the root."""
        out = np.full((len(leaves), self.depth + 1), -1, dtype=np.int32)
        current = np.asarray(leaves, dtype=np.int32)
        for level in range(self.depth + 1):
            out[:, level] = current
            current = np.where(current >= 0, self.parent[np.maximum(current, 0)], -1)
        return out

    # -- identity and files -----------------------------------------------------------------

    @property
    def id(self) -> str:
        """A content hash: two trees with the same id quantise identically."""
        if self._id is None:
            digest = hashlib.sha256()
            digest.update(f"{self.features}:{self.branching}:{self.depth}".encode())
            digest.update(self.centres.tobytes())
            digest.update(self.children.tobytes())
            for array in self._hamming_arrays().values():
                digest.update(array.tobytes())
            self._id = digest.hexdigest()[:16]
        return self._id

    def memory_bytes(self) -> int:
        return int(self.centres.nbytes + self.children.nbytes + self.parent.nbytes
                   + sum(array.nbytes for array in self._hamming_arrays().values()))

    def _hamming_arrays(self) -> dict[str, np.ndarray]:
        found = self.hamming
        if found is None:
            return {}
        return {"hamming_projection": found.projection, "hamming_nodes": found.nodes,
                "hamming_medians": found.medians, "hamming_fallback": found.fallback,
                "hamming_level": np.array([found.level], dtype=np.int32)}

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        centres: dict[str, np.ndarray] = {"centres": self.centres}
        if self._codes is not None:
            codes, scale = self._codes
            centres = {"centre_codes": codes, "centre_scale": np.array([scale])}
        arrays: dict[str, Any] = {
            **centres, "children": self.children,
            "settings": np.array([FORMAT, str(VERSION), self.features, str(self.branching),
                                  str(self.depth), self.id]), **self._hamming_arrays()}
        if self._codes is not None:
            np.savez_compressed(buffer, **arrays)
        else:
            np.savez(buffer, **arrays)
        return buffer.getvalue()

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: Path, *, features: str | None = None) -> VocabularyTree:
        """Read a tree; with ``features``, refuse one trained on another feature kind."""
        try:
            with np.load(path, allow_pickle=False) as data:
                settings = [str(value) for value in data["settings"]]
                centres, codes = _centres_from(data)
                children = data["children"]
                hamming = _hamming_from(data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValidationError(f"{path}: not a readable vocabulary tree ({error})") from error
        if len(settings) != 6 or settings[0] != FORMAT or settings[1] != str(VERSION):
            raise ValidationError(
                f"{path}: expected a '{FORMAT}' v{VERSION} file, got {settings!r}")
        _, _, kind, branching, depth, recorded_id = settings
        try:
            tree = cls(centres, children, features=kind, branching=int(branching),
                       depth=int(depth), hamming=hamming)
        except (ValueError, TypeError, IndexError) as error:
            raise ValidationError(f"{path}: damaged vocabulary tree ({error})") from error
        tree._codes = codes
        if tree.id != recorded_id:
            raise ValidationError(f"{path}: damaged vocabulary tree (content hash {tree.id} does "
                                  f"not match the recorded {recorded_id})")
        if features is not None and kind != features:
            raise ManifestMismatchError(
                f"{path}: the tree was trained on '{kind}' descriptors, expected '{features}'")
        return tree


def _centres_from(data: Any) -> tuple[np.ndarray, tuple[np.ndarray, np.float32] | None]:
    """The node centres of a tree file, and their byte codes where the tree is compacted."""
    if "centre_codes" not in data.files:
        return data["centres"], None
    codes = np.asarray(data["centre_codes"])
    expect(codes.dtype == np.uint8, f"expected byte centre codes, got {codes.dtype}")
    scale = np.float32(data["centre_scale"][0])
    return codes.astype(np.float32) * scale, (codes, scale)


def _hamming_from(data: Any) -> HammingEmbedding | None:
    """The Hamming embedding stored in a tree file, None in one saved before it existed."""
    if "hamming_projection" not in data.files:
        return None
    return HammingEmbedding(data["hamming_projection"], int(data["hamming_level"][0]),
                            data["hamming_nodes"], data["hamming_medians"],
                            data["hamming_fallback"])
