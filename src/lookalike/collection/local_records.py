"""The local channel's catalog rows and the inverted files derived from them.

Each image is one packed record: the size SIFT saw, then per keypoint its visual word and
geometry, 12 bytes a keypoint, and with a tree that has a Hamming embedding the keypoint's
64-bit signature too (20 bytes; the header's flag says which). Descriptors are not kept:
verification pairs keypoints through shared tree nodes, and their signatures. The inverted
files (Nistér & Stewénius, CVPR 2006) are built from these records when the collection
opens and follow the catalog by vector-id diffs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.concurrency import ReadWriteLock
from lookalike.local.features import LocalFeatures
from lookalike.local.inverted import CorpusStatistics, InvertedIndex, ScoringConfig
from lookalike.local.tree import VocabularyTree
from lookalike.storage import Catalog

# Per keypoint: visual word, x, y (pixels SIFT saw), size and angle (degrees).
RECORD = np.dtype([("word", "<u4"), ("x", "<f2"), ("y", "<f2"), ("size", "<f2"),
                   ("angle", "<f2")])
SIGNED_RECORD = np.dtype([*RECORD.descr, ("signature", "<u8")])
_HEADER = np.dtype("<u2")  # width, height of the image SIFT saw
_SIGNED = 0x8000  # set in the stored width when the keypoints carry signatures (width <= 4096)


@dataclass(frozen=True)
class PackedFeatures:
    """One image's stored record, unpacked."""

    width: int
    height: int
    records: np.ndarray  # RECORD

    @property
    def words(self) -> np.ndarray:
        return self.records["word"].astype(np.int64)

    @property
    def signatures(self) -> np.ndarray | None:
        """Each keypoint's Hamming signature; None in a record stored without them."""
        names = self.records.dtype.names or ()
        return self.records["signature"] if "signature" in names else None

    @property
    def geometry(self) -> np.ndarray:
        """(n, 4) float32 rows of x, y, size, angle."""
        return np.stack([self.records[name] for name in ("x", "y", "size", "angle")],
                        axis=1).astype(np.float32)


def pack(features: LocalFeatures, words: np.ndarray,
         signatures: np.ndarray | None = None) -> np.ndarray:
    """The record of one image as a uint8 array (what the catalog stores)."""
    records = np.empty(len(words), dtype=RECORD if signatures is None else SIGNED_RECORD)
    records["word"] = words
    for column, name in enumerate(("x", "y", "size", "angle")):
        records[name] = features.geometry[:, column]
    if signatures is not None:
        records["signature"] = signatures
    flag = 0 if signatures is None else _SIGNED
    header = np.array([features.width | flag, features.height], dtype=_HEADER)
    return np.frombuffer(header.tobytes() + records.tobytes(), dtype=np.uint8)


def unpack(blob: bytes) -> PackedFeatures:
    width, height = (int(value) for value in np.frombuffer(blob, dtype=_HEADER, count=2))
    layout = SIGNED_RECORD if width & _SIGNED else RECORD
    return PackedFeatures(width & ~_SIGNED, height,
                          np.frombuffer(blob, dtype=layout, offset=2 * _HEADER.itemsize))


class KeypointRecords:
    """The local channel's record codec: one packed blob per image with keypoints."""

    def encode(self, extracted: np.ndarray) -> list[bytes]:
        return [extracted.tobytes()] if extracted.size else []

    def is_blank(self, extracted: np.ndarray) -> bool:
        return False  # an image without keypoints is still fine for the other channels


class InvertedFiles:
    """The inverted files of one collection's stored words, in step with its catalog."""

    def __init__(self, channel: str, scoring: ScoringConfig) -> None:
        self.channel = channel
        self.scoring = scoring
        self.index: InvertedIndex | None = None
        self._held: dict[int, int] = {}  # vector id -> image id, as in the inverted files
        self._stale = True
        self._corpus: CorpusStatistics | None = None
        self.corpus_token: int | None = None
        #: Moves on every change of the images held, so that whoever gave the statistics of
        #: a whole split collection (:meth:`use_corpus`) sees that they are out of date.
        self.revision = 0
        # Searches share the inverted files; bringing them up to date holds them alone.
        self.lock = ReadWriteLock()

    def mark_stale(self) -> None:
        with self.lock.writing():
            self._stale = True

    def use_corpus(self, corpus: CorpusStatistics | None, token: int | None = None) -> None:
        """Weigh by the statistics of a whole split collection of which these files hold
        one shard (None: by their own); ``token`` names them, so that a query weighed by
        other statistics is noticed (:attr:`corpus_token`)."""
        with self.lock.writing():
            self._corpus = corpus
            self.corpus_token = token
            if self.index is not None:
                self.index.use_corpus(corpus)
                self.index.build()

    def synced(self, catalog: Catalog, tree: VocabularyTree | None) -> InvertedIndex | None:
        """The inverted files, brought up to the catalog (and built, so that searching
        only reads them); None before there is a tree. Search within :attr:`lock`'s
        ``reading()``."""
        if self._stale:
            with self.lock.writing():
                if self._stale:
                    self._bring_up_to_date(catalog, tree)
        return self.index

    def _bring_up_to_date(self, catalog: Catalog, tree: VocabularyTree | None) -> None:
        if tree is None:
            self._stale = False
            return
        if self.index is None:
            self.index = InvertedIndex(tree.n_nodes, self.scoring, tree=tree)
            self.index.use_corpus(self._corpus)
        vector_ids, image_ids = catalog.vectors.ids(self.channel)
        current = dict(zip(vector_ids.tolist(), image_ids.tolist(), strict=True))
        removed = set(self._held) - set(current)
        for vector_id in removed:
            self.index.remove(self._held.pop(vector_id))
        added = sorted(set(current) - set(self._held))
        if removed or added:
            self.revision += 1
        for vector_id, image_id, blob in catalog.vectors.blobs(added):
            packed = unpack(blob)
            self.index.add(image_id, packed.words, packed.signatures)
            self._held[vector_id] = image_id
        self.index.build()
        self._stale = False

