"""The ``local`` channel: exact-object search with a vocabulary tree and spatial verification.

Each image is stored as one packed record in the catalog: the size SIFT saw,
then per keypoint its visual word and geometry (12 bytes a keypoint). The
inverted files are derived from those records when the collection opens and
follow the catalog's changes; the tree lives in ``<collection>/local/``, and the
catalog records its id, so words are never read with another tree.

The tree is the generic one that ships with Lookalike for a small first run, else one
trained on a sample of the first images indexed, or one trained elsewhere
(``vocabulary=``; :mod:`lookalike.collection.local_vocabulary`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection.channels import Channel
from lookalike.collection.local_ranking import (
    LocalQuery,
    OneCorpus,
    RankingSettings,
    rank,
)
from lookalike.collection.local_records import (
    RECORD,
    SIGNED_RECORD,
    InvertedFiles,
    KeypointRecords,
    PackedFeatures,
    pack,
    unpack,
)
from lookalike.collection.local_vocabulary import (
    KEYWORDS,
    OWN,
    given_tree,
    keeps_copy,
    recorded_tree,
    trains_on_images,
    trains_own,
)
from lookalike.concurrency import on_two_threads
from lookalike.errors import (
    CollectionError,
    LookalikeError,
    ValidationError,
    expect,
)
from lookalike.images import Box, clip_box
from lookalike.local.features import LocalFeatures, SiftExtractor
from lookalike.local.inverted import InvertedIndex, ScoringConfig
from lookalike.local.pairing import Pairing
from lookalike.local.training import extract_all, sample_descriptors, tree_progress
from lookalike.local.tree import VocabularyTree
from lookalike.local.verify import (
    NOT_VERIFIED,
    Verification,
    VerifyConfig,
    estimate,
)
from lookalike.results import Hit, LocalEvidence
from lookalike.storage import Catalog, Transaction

_VOCABULARY_KEY = "local.vocabulary_id"
_EVIDENCE_MATCHES = 200  # inlier lines kept per result, enough to draw
# Fewer descriptors than this make a tree of a few words that would serve the collection
# badly for good; better to say so and let the user index more, or bring a tree.
MIN_TRAINING_DESCRIPTORS = 1000
# A first run of fewer images quantises with the generic tree: below this, a tree of the
# collection's own searched worse than the generic one (BENCHMARKS.md, "A generic vocabulary").
OWN_TREE_IMAGES = 600


@dataclass(frozen=True)
class LocalChannelConfig:
    """Settings of the local channel.

    Stored settings (fixed at creation): the feature kind, the keypoint cap,
    the image size SIFT sees, the tree's shape and which tree: ``vocabulary`` is a tree
    file trained elsewhere, ``"generic"`` (the tree shipped with Lookalike), ``"own"``
    (trained on the first run's images), or None: generic for a first run of fewer than
    ``own_tree_images`` images, own above.
    Search settings (free at every open): the scoring strategy and verification.
    Scoring is the paper's L1 with entropy weights, over the leaves by default:
    with verification and query expansion on top, leaves scored best on Oxford for
    each of three tree seeds, and 50k images search 4x faster than with the
    inner nodes from level 4 (``levels="all"``, ``min_level``; the paper scores
    every node, ``min_level=1``, 22x slower at 50k).
    ``verify`` is how many of the tree's top candidates RANSAC re-ranks; 0 turns
    spatial verification off. Tentative correspondences pair keypoints that share
    the tree node ``match_up`` levels above their leaves, but not above level
    ``match_floor``: the finest words are too sparse to pair enough keypoints, and
    the coarsest too common to pair the right ones. A candidate that fails is paired
    again ``match_retry`` levels up (0: never): one level up keeps RANSAC's
    inlier ratio high enough for a planar cover photographed at an angle, which two
    levels up drowned in false pairs, while buildings sometimes need the coarser
    pairing (BENCHMARKS.md, "Exact objects photographed by phones"). A tree with a Hamming
    embedding pairs through close signatures instead (:mod:`lookalike.local.hamming`;
    ``hamming=False`` pairs by shared nodes all the same; the records keep their
    signatures, which only the tree decides).
    ``expand`` > 0 re-queries with the mean of the query and its best ``expand`` verified
    matches (average query expansion). SIFT sees a query so that what is searched (the
    box, else the whole photo) is at most ``query_side`` long (and the image at most
    ``max_side``): OpenCV doubles it first, and a phone photo's finest keypoints are mostly
    noise and clutter (BENCHMARKS.md, "Query size").
    """

    features: str = "rootsift"
    max_features: int = 1500
    max_side: int = 1024
    branching: int = 10
    depth: int = 6
    vocabulary: str | None = None
    own_tree_images: int = OWN_TREE_IMAGES
    train_images: int = 2000
    train_descriptors: int = 1_000_000
    seed: int = 0  # of the training sample and k-means: another seed, another tree
    levels: str = "leaves"
    norm: str = "l1"
    weighting: str = "entropy"
    burstiness: str = "none"
    stop_words: float = 0.0
    min_level: int = 4
    vote_bits: int = 24
    verify: int = 100
    verify_model: str = "affine"
    ransac_threshold: float = 8.0
    min_inliers: int = 8
    hamming: bool = True
    match_up: int = 1
    match_retry: int = 2
    match_floor: int = 3
    expand: int = 5
    query_side: int = 480

    def __post_init__(self) -> None:
        SiftExtractor(self.features, self.max_features, self.max_side)  # checks those three
        expect(isinstance(self.branching, int) and self.branching >= 2,
               f"expected branching >= 2, got {self.branching!r}")
        expect(isinstance(self.depth, int) and 1 <= self.depth <= 12,
               f"expected depth in 1..12, got {self.depth!r}")
        expect(isinstance(self.seed, int) and self.seed >= 0,
               f"expected a seed >= 0, got {self.seed!r}")
        for name in ("train_images", "train_descriptors"):
            value = getattr(self, name)
            expect(isinstance(value, int) and value >= 1, f"expected {name} >= 1, got {value!r}")
        expect(isinstance(self.query_side, int) and 32 <= self.query_side <= 4096,
               f"expected query_side in 32..4096, got {self.query_side!r}")
        for name in ("verify", "match_up", "match_retry", "match_floor", "expand"):
            value = getattr(self, name)
            expect(isinstance(value, int) and value >= 0, f"expected {name} >= 0, got {value!r}")
        self.scoring()
        self.verification()
        expect(isinstance(self.own_tree_images, int) and self.own_tree_images >= 0,
               f"expected own_tree_images >= 0, got {self.own_tree_images!r}")
        if self.vocabulary is not None and self.vocabulary not in KEYWORDS:
            object.__setattr__(self, "vocabulary", os.path.abspath(self.vocabulary))

    def scoring(self) -> ScoringConfig:
        return ScoringConfig(levels=self.levels, norm=self.norm, weighting=self.weighting,
                             burstiness=self.burstiness, stop_words=self.stop_words,
                             min_level=self.min_level, vote_bits=self.vote_bits)

    def pairing_levels(self) -> list[int]:
        """How many levels above the leaves keypoints are paired, in the order tried."""
        return [self.match_up] + ([self.match_retry] if self.match_retry > self.match_up
                                  else [])

    def verification(self) -> VerifyConfig:
        return VerifyConfig(model=self.verify_model, threshold=self.ransac_threshold,
                            min_inliers=self.min_inliers)

    def stored_settings(self) -> dict[str, Any]:
        return {key: getattr(self, key)
                for key in ("features", "max_features", "max_side", "branching", "depth")}

    def cache_identity(self) -> dict[str, Any]:
        """What makes the stored words differ besides :meth:`stored_settings`: the tree file,
        or the sample a tree is trained on (an evaluation caches its collection by it)."""
        # "own" keeps the key that None had when it always meant a tree of its own.
        found = {**self.stored_settings(),
                 "vocabulary": None if self.vocabulary == OWN else self.vocabulary,
                 "train_descriptors": self.train_descriptors}
        if trains_own(self):
            found["signatures"] = 1  # a tree trained here now has a Hamming embedding
        if self.vocabulary is None:  # the first run's size chooses between generic and own
            found["own_tree_images"] = self.own_tree_images
        if self.seed:  # seed 0 and 2,000 images keep the key they had before they were free
            found["seed"] = self.seed
        if self.train_images != 2000:
            found["train_images"] = self.train_images
        return found


class LocalChannel(Channel):
    """SIFT/RootSIFT words in a vocabulary tree, re-ranked by RANSAC."""

    name = "local"

    def __init__(self, config: LocalChannelConfig | None = None) -> None:
        self.config = config or LocalChannelConfig()
        self.sift = SiftExtractor(self.config.features, self.config.max_features,
                                  self.config.max_side)
        self.codec = KeypointRecords()
        self.inverted = InvertedFiles(self.name, self.config.scoring())
        self.tree: VocabularyTree | None = None
        self._catalog: Catalog | None = None
        self._folder: Path | None = None

    def manifest(self) -> dict[str, Any]:
        # No record size here: whether a keypoint carries a signature is up to the tree,
        # trained after this is written (``info`` gives the bytes per image).
        return asdict(self.config)

    # -- lifecycle ------------------------------------------------------------------------

    def attach(self, catalog: Catalog, root: Path) -> LocalChannel:
        self._catalog = catalog
        self._folder = root / self.name
        self.prepare()
        return self

    def prepare(self) -> None:
        """Load the tree the catalog names, also one another process trained since this one
        opened the collection (an indexing run calls this once it holds the write lock)."""
        self.sift.load()
        if self._catalog is None:
            return  # built to extract elsewhere (a Ray worker): the tree came with it
        recorded = self.catalog.meta(_VOCABULARY_KEY)
        if recorded is not None and (self.tree is None or self.tree.id != recorded):
            self.tree = self._load_tree(recorded)
            self.inverted = InvertedFiles(self.name, self.config.scoring())

    def store(self, catalog: Catalog, conn: Transaction, image_id: int,
              extracted: np.ndarray) -> None:
        """The image's words, checked inside the batch's transaction against the tree the
        catalog names: words of another tree must never be stored."""
        if extracted.size and (self.tree is None
                               or catalog.meta(_VOCABULARY_KEY) != self.tree.id):
            raise CollectionError(
                f"{catalog.path}: the vocabulary tree changed under this run (another process "
                "trained one); nothing of this batch was written; index again")
        super().store(catalog, conn, image_id, extracted)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise LookalikeError("the local channel is not loaded; open its collection first")
        return self._catalog

    @property
    def tree_path(self) -> Path:
        if self._folder is None:
            raise LookalikeError("the local channel is not loaded; open its collection first")
        return self._folder / "vocabulary.npz"

    def _load_tree(self, recorded: str) -> VocabularyTree:
        return recorded_tree(self.tree_path, recorded, self.config)

    @property
    def min_image_side(self) -> int | None:
        return self.config.max_side  # SIFT shrinks the longer side to max_side anyway

    @property
    def query_min_side(self) -> int | None:
        return None  # match coordinates are given in the query's own pixels

    def mark_stale(self) -> None:
        self.inverted.mark_stale()

    # -- training -------------------------------------------------------------------------

    @property
    def needs_training(self) -> bool:
        return self.tree is None

    @property
    def training_images(self) -> int:
        return self.config.train_images if trains_own(self.config) else 0

    def trains_on_images(self, run: int) -> bool:
        return trains_on_images(self.config, run)

    def train(self, images: Iterable[np.ndarray], count: int, run: int | None = None) -> None:
        """Adopt the configured or the generic tree (by the first run's size, ``run``), or
        train one on the descriptors of ``images`` (``count`` of them: the run's sample)."""
        tree = given_tree(self.config, count if run is None else run)
        if tree is None:
            descriptors = sample_descriptors(extract_all(self.sift, images),
                                             self.config.train_descriptors,
                                             seed=self.config.seed)
            if len(descriptors) == 0:
                return  # no keypoints anywhere yet: nothing needs a tree
            if len(descriptors) < MIN_TRAINING_DESCRIPTORS:
                raise ValidationError(
                    f"expected at least {MIN_TRAINING_DESCRIPTORS} local descriptors to train "
                    f"the vocabulary tree, got {len(descriptors)} from {count} images; "
                    "index more images in the first run, or give a tree trained elsewhere "
                    "(lookalike vocabulary), or with the default branching and depth, "
                    "vocabulary='generic'")
            tree, _ = VocabularyTree.train(descriptors, features=self.config.features,
                                           branching=self.config.branching,
                                           depth=self.config.depth, seed=self.config.seed,
                                           progress=tree_progress)
        # The tree is on disk before the catalog names it, so a named tree always exists.
        if keeps_copy(tree):
            tree.save(self.tree_path)
        self.catalog.set_meta(_VOCABULARY_KEY, tree.id)
        self.tree = tree

    def extraction_state(self) -> object:
        return self.tree

    def adopt_extraction_state(self, state: object) -> None:
        if state is not None and not isinstance(state, VocabularyTree):
            raise LookalikeError(f"expected a vocabulary tree, got {type(state).__name__}")
        self.tree = state

    # -- indexing -------------------------------------------------------------------------

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        found = list(extract_all(self.sift, images))
        tree = self.tree
        if tree is None:
            if any(len(features) for features in found):
                raise LookalikeError("the local channel has no vocabulary tree yet; index a "
                                     "folder (it trains one) or give vocabulary=")
            return [np.empty(0, np.uint8) for _ in found]
        counts = [len(features) for features in found]
        words = np.split(tree.quantize(np.concatenate(
            [features.descriptors for features in found])), np.cumsum(counts)[:-1])
        return [pack(features, image_words, tree.signatures(features.descriptors, image_words))
                if len(features) else np.empty(0, np.uint8)
                for features, image_words in zip(found, words, strict=True)]

    # -- searching ------------------------------------------------------------------------

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        found = self._keypoints(image, box)
        if found is None:
            return []  # no tree yet: nothing indexed had keypoints
        features, words, index = found
        with self.inverted.lock.reading():
            query = self._query(features, words, index, corpus=None)
            return rank(OneCorpus(self, index), query, k, self.ranking_settings())

    def query(self, image: np.ndarray, box: Box | None = None) -> LocalQuery | None:
        """The query as searched here: keypoints, words and the vector weighted with the
        collection's weights (and which, for a shard of a split collection); None while
        there is no tree."""
        found = self._keypoints(image, box)
        if found is None:
            return None
        features, words, index = found
        with self.inverted.lock.reading():
            return self._query(features, words, index, corpus=self.inverted.corpus_token)

    def _query(self, features: LocalFeatures, words: np.ndarray, index: InvertedIndex,
               corpus: int | None) -> LocalQuery:
        signatures = (self.tree.signatures(features.descriptors, words)
                      if self.config.vote_bits and self.tree is not None else None)
        return LocalQuery(features, words, index.query_vector(words), corpus=corpus,
                          votes=index.query_votes(words, signatures))

    def _keypoints(self, image: np.ndarray, box: Box | None
                   ) -> tuple[LocalFeatures, np.ndarray, InvertedIndex] | None:
        self.prepare()  # a tree another process trained since this one opened
        index = self.inverted.synced(self.catalog, self.tree)
        if index is None:
            return None
        features = self.sift.extract(image, max_side=self._query_side(image, box))
        if box is not None:
            features = features.inside(box)
        return features, self._words(features), index

    def ranking_settings(self) -> RankingSettings:
        return RankingSettings.of(asdict(self.config))

    def _query_side(self, image: np.ndarray, box: Box | None) -> int:
        """The longer side SIFT sees of a query image: such that what is searched (the box,
        else the whole image) is at most ``query_side`` long."""
        longer = max(image.shape[:2])
        x0, y0, x1, y1 = (0, 0, longer, longer) if box is None else clip_box(
            box, image.shape[1], image.shape[0])  # a box past the edge: only what is inside
        region = max(x1 - x0, y1 - y0)
        return max(32, round(int(longer) * min(1.0, self.config.query_side / max(region, 1.0))))

    def _words(self, features: LocalFeatures) -> np.ndarray:
        if self.tree is None or not len(features):
            return np.empty(0, dtype=np.int64)
        return self.tree.quantize(features.descriptors).astype(np.int64)

    def verify(self, query: LocalQuery, candidates: Sequence[tuple[int, float]]) -> list[Hit]:
        """RANSAC on each candidate stored here: one hit per candidate, in their order, each
        scoring its inliers plus the tree's score (below 1): a verified one, with at least
        ``min_inliers``, ranks above all that are not."""
        config = self.config.verification()
        stored = self._stored(image_id for image_id, _ in candidates)
        records = self.catalog.images.by_id(stored)
        pairing = self._pairing(query)
        signed = dict(zip(stored, pairing.signed_pairs(
            [(match.words, match.signatures) for match in stored.values()]), strict=True))

        def check(image_id: int) -> Verification:
            match = stored.get(image_id)
            if match is None:
                return NOT_VERIFIED
            best = NOT_VERIFIED
            for pairs in pairing.tentative(match.words, match.signatures, signed[image_id]):
                found = estimate(query.features.geometry, match.geometry, pairs, config)
                if found.verified(config.min_inliers):
                    return found
                best = found if found.inliers > best.inliers else best
            return best

        results = on_two_threads(check, [image_id for image_id, _ in candidates],
                                 name="lookalike-ransac")
        hits: list[Hit] = []
        for (image_id, tree_score), result in zip(candidates, results, strict=True):
            match = stored.get(image_id)
            passed = result.verified(config.min_inliers)
            record = records.get(image_id)
            evidence = LocalEvidence(tree_score=round(tree_score, 6), inliers=result.inliers,
                                     verified=passed)
            if passed and match is not None and record is not None:
                evidence = replace(evidence, **_drawable(result, query.features, match,
                                                         record.width))
            hits.append(Hit(image_id, result.inliers + tree_score, evidence))
        return hits

    def _record_size(self) -> int:
        """Bytes a keypoint takes (new records carry a signature when the tree can make one)."""
        signed = self.tree is not None and self.tree.hamming is not None
        return SIGNED_RECORD.itemsize if signed else RECORD.itemsize

    def _pairing(self, query: LocalQuery) -> Pairing:
        if self.tree is None:
            raise LookalikeError("the local channel has no vocabulary tree yet")
        return Pairing.of(self.tree, query.features.descriptors, query.words,
                          hamming=self.config.hamming,
                          levels=self.config.pairing_levels(), floor=self.config.match_floor,
                          max_per_word=self.config.verification().max_per_word,
                          signatures=None if query.votes is None else query.votes.signatures)

    def _stored(self, image_ids: Iterable[int]) -> dict[int, PackedFeatures]:
        blobs = self.catalog.vectors.of_images(self.name, list(image_ids))
        return {image_id: unpack(rows[0]) for image_id, rows in blobs.items() if rows}

    def stats(self) -> dict[str, Any]:
        images = self.catalog.vectors.count(self.name)
        stored = self.catalog.vectors.total_bytes(self.name)
        tree = self.tree
        return {
            "vectors": images,
            "index": "vocabulary-tree",
            "features_stored": (stored - 4 * images) // self._record_size() if images else 0,
            "bytes_per_image": round(stored / images, 1) if images else 0,
            # Only known once a search has built the inverted files; info must not pay for it.
            "index_memory_bytes": (self.inverted.index.memory_bytes() if self.inverted.index
                                   else None),
            "vocabulary": None if tree is None else {
                "id": tree.id, "nodes": tree.n_nodes, "leaves": int(tree.is_leaf.sum()),
                "memory_bytes": tree.memory_bytes(), "shipped": not keeps_copy(tree)},
        }


def _drawable(result: Verification, query: LocalFeatures, match: PackedFeatures,
              width: int | None) -> dict[str, Any]:
    """Inlier lines and the transform in the pixels of the query and of the stored image."""
    match_scale = (width / match.width) if width and match.width else 1.0
    query_points = query.geometry[result.pairs[:, 0], :2] * query.scale
    match_points = match.geometry[result.pairs[:, 1], :2] * match_scale
    lines = np.concatenate([query_points, match_points], axis=1)[:_EVIDENCE_MATCHES]
    transform = np.eye(3)
    if result.transform is not None:
        transform[: result.transform.shape[0]] = result.transform
    # In SIFT's pixels the transform maps query to match; rescale both ends.
    transform = np.diag([match_scale, match_scale, 1.0]) @ transform @ np.diag(
        [1 / query.scale, 1 / query.scale, 1.0])
    return {"transform": np.round(transform, 6).tolist(),
            "matches": np.round(lines, 1).tolist()}


def describe(stats: Mapping[str, Any]) -> str:
    """One line about a local channel, from its manifest entry and :meth:`stats`."""
    tree = stats.get("vocabulary")
    vocabulary = (f"{'generic ' if tree.get('shipped') else ''}tree {tree['id']} "
                  f"({tree['leaves']:,} words)" if tree else "no vocabulary tree yet")
    # The bytes per image are shown for every channel alike (``stored_bytes_per_image``).
    return f"{stats['features']} x {stats['max_features']}, {vocabulary}, {stats['vectors']} images"
