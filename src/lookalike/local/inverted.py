"""Inverted files and the scoring of Nistér & Stewénius.

Every image is a vector over the tree's nodes: ``d_i = tf_i · w_i``, where tf_i
counts the image's descriptors whose path passes through node i and
``w_i = ln((N + 1) / N_i)`` is the entropy (idf) weight, N images in the database and
N_i of them with node i (the paper's ln(N / N_i), smoothed so that a word in every image
is not weighed 0: see :meth:`InvertedIndex._node_weights`). Vectors are normalised (L1 by
default) and compared by the L1 distance, which for normalised vectors needs only the nodes
that both the query and an image have (the paper's section 4.2):

    ||q - d||_1 = 2 + Σ_{i : q_i ≠ 0, d_i ≠ 0} (|q_i - d_i| - q_i - d_i)

so the inverted file of each query node is read once and the rest of the
database is never touched. We report ``1 - ||q - d||_1 / 2`` in [0, 1] (1: the
same word histogram). With L2, the score is the cosine q·d.

Switchable strategies, each measured in BENCHMARKS.md:

- ``levels``: "leaves" (the visual words only) or "all" (every node on the path,
  as in the paper); ``min_level`` > 1 leaves out the inner nodes nearest the root,
  whose inverted files hold nearly every image and so cost the most time for the
  least information (a leaf always counts, however shallow);
- ``weighting``: "entropy" or "none";
- ``burstiness``: "sqrt" takes the square root of term counts, against repeated
  structures (windows, text) that flood a few words (Jégou et al., CVPR 2009);
- ``stop_words``: drop this fraction of the most frequent words (Sivic &
  Zisserman 2003);
- ``vote_bits``: Hamming embedding voting (Jégou et al., ECCV 2008 and IJCV 2010) instead
  of histograms: a stored keypoint counts for a query keypoint only when both share a
  word and their 64-bit signatures differ in at most ``vote_bits`` bits, weighted by
  ``idf² · exp(-(bits / 16)²)``; an image's votes are divided by its and the query's
  tf-idf L2 norms, so that with every signature alike it is the tf-idf cosine. Needs every
  indexed image's signatures (:mod:`lookalike.local.hamming`); without them the index
  scores histograms.

The weights are the database's, so a shard of a split collection scores as the whole only
with the whole's statistics: :meth:`InvertedIndex.document_frequency` gives a shard's,
their sum (:meth:`CorpusStatistics.total`) goes to every shard's :meth:`InvertedIndex.use_corpus`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.errors import expect
from lookalike.local.ranges import concatenated_ranges
from lookalike.local.tree import VocabularyTree

LEVELS = ("leaves", "all")
NORMS = ("l1", "l2")
WEIGHTINGS = ("entropy", "none")
BURSTINESS = ("none", "sqrt")


@dataclass(frozen=True)
class CorpusStatistics:
    """What the weights are made of: how many images hold each node (sparse: ``nodes`` and
    their ``counts``), and how many images there are."""

    nodes: np.ndarray
    counts: np.ndarray
    images: int

    @staticmethod
    def total(parts: list[CorpusStatistics]) -> CorpusStatistics:
        """The statistics of the union of disjoint image sets."""
        empty = np.empty(0, dtype=np.int64)
        nodes = np.concatenate([empty, *(part.nodes for part in parts)]).astype(np.int64)
        counts = np.concatenate([empty, *(part.counts for part in parts)]).astype(np.int64)
        unique, inverse = np.unique(nodes, return_inverse=True)
        summed = np.bincount(inverse, weights=counts, minlength=len(unique))
        return CorpusStatistics(unique, summed.astype(np.int64),
                                sum(part.images for part in parts))

    def dense(self, n_nodes: int) -> np.ndarray:
        frequency = np.zeros(n_nodes, dtype=np.int64)
        frequency[self.nodes] = self.counts
        return frequency


@dataclass(frozen=True)
class ScoringConfig:
    levels: str = "leaves"
    norm: str = "l1"
    weighting: str = "entropy"
    burstiness: str = "none"
    stop_words: float = 0.0
    min_level: int = 1
    vote_bits: int = 0

    def __post_init__(self) -> None:
        for name, allowed in (("levels", LEVELS), ("norm", NORMS), ("weighting", WEIGHTINGS),
                              ("burstiness", BURSTINESS)):
            value = getattr(self, name)
            expect(value in allowed, f"expected {name} among {allowed}, got {value!r}")
        expect(isinstance(self.stop_words, int | float) and 0.0 <= self.stop_words < 1.0,
               f"expected stop_words as a fraction in [0, 1), got {self.stop_words!r}")
        expect(isinstance(self.min_level, int) and self.min_level >= 1,
               f"expected min_level >= 1, got {self.min_level!r}")
        expect(isinstance(self.vote_bits, int) and 0 <= self.vote_bits <= 64,
               f"expected vote_bits in 0..64, got {self.vote_bits!r}")


@dataclass(frozen=True)
class Votes:
    """A query as Hamming embedding voting asks it: each keypoint's word and signature, and
    the query's tf-idf L2 norm (weighed like the database)."""

    words: np.ndarray
    signatures: np.ndarray
    norm: float


class InvertedIndex:
    """Images as sparse node histograms; postings grouped by node for scoring.

    Add and remove images at will: the weights depend on the whole database, so
    the postings are rebuilt (in one vectorised pass) on the next search after
    a change. Memory is proportional to the number of (image, node) pairs.
    """

    def __init__(self, n_nodes: int, config: ScoringConfig | None = None,
                 tree: VocabularyTree | None = None) -> None:
        self.n_nodes = n_nodes
        self.config = config or ScoringConfig()
        # Needed for levels="all": the nodes on each word's path to the root count too.
        self.tree = tree
        expect(self.config.levels == "leaves" or tree is not None,
               "expected the vocabulary tree for levels='all', got none")
        self._terms: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # image -> (nodes, counts)
        # image -> (words, signatures); None while the voting postings hold every image's,
        # so that a keypoint's signature is kept once (12 bytes a keypoint less).
        self._signed: dict[int, tuple[np.ndarray, np.ndarray]] | None = {}
        self._voting = _Postings.empty()
        self._corpus: CorpusStatistics | None = None  # weights from elsewhere (use_corpus)
        self._built = False
        self._weights = np.zeros(n_nodes, dtype=np.float32)
        self._images = np.empty(0, dtype=np.int64)
        self._offsets = np.zeros(n_nodes + 1, dtype=np.int64)
        self._post_rows = np.empty(0, dtype=np.int32)
        self._post_values = np.empty(0, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._terms)

    # -- content ----------------------------------------------------------------------------

    def add(self, image_id: int, words: np.ndarray,
            signatures: np.ndarray | None = None) -> None:
        """Index an image by the visual words (leaf ids) of its descriptors, and their
        signatures where the tree gives them (for ``vote_bits``)."""
        given = None if signatures is None else len(signatures)
        expect(given is None or given == len(words),
               f"expected a signature per word, got {given} for {len(words)}")
        nodes, counts = np.unique(self._expand(words), return_counts=True)
        self._terms[int(image_id)] = (nodes.astype(np.int32), counts.astype(np.int32))
        signed = self._signatures()
        signed.pop(int(image_id), None)
        if self.config.vote_bits and signatures is not None:
            signed[int(image_id)] = (np.asarray(words, dtype=np.int32),
                                     np.asarray(signatures, dtype=np.uint64))
        self._built = False

    def remove(self, image_id: int) -> None:
        if int(image_id) in self._terms:
            self._signatures().pop(int(image_id), None)
            del self._terms[int(image_id)]
            self._built = False

    def _signatures(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Every signed image's (words, signatures), taken back from the voting postings
        where those hold them (to change them, or to build the postings again)."""
        if self._signed is None:
            self._signed = self._voting.per_image(self._images)
        return self._signed

    @property
    def votes(self) -> bool:
        """Whether queries are scored by Hamming embedding votes: asked for, and every
        indexed image has its signatures."""
        if not self.config.vote_bits:
            return False
        return self._signed is None or len(self._signed) == len(self._terms) > 0

    def document_frequency(self) -> CorpusStatistics:
        """This index's own statistics: per node, how many of its images hold it."""
        if not self._terms:
            empty = np.empty(0, dtype=np.int64)
            return CorpusStatistics(empty, empty, 0)
        nodes, counts = np.unique(np.concatenate([nodes for nodes, _ in self._terms.values()]),
                                  return_counts=True)
        return CorpusStatistics(nodes.astype(np.int64), counts.astype(np.int64), len(self))

    def use_corpus(self, corpus: CorpusStatistics | None) -> None:
        """Weigh by ``corpus`` (a whole collection's statistics, of which this index holds a
        part) instead of this index's own; None goes back to its own."""
        self._corpus = corpus
        self._built = False

    def _expand(self, words: np.ndarray) -> np.ndarray:
        words = np.asarray(words, dtype=np.int64)
        expect(words.ndim == 1 and (len(words) == 0 or (words.min() >= 0
                                                        and words.max() < self.n_nodes)),
               f"expected word ids in [0, {self.n_nodes}), got some outside it")
        if self.config.levels == "leaves" or self.tree is None:
            return words
        # The words themselves always count, however shallow their leaf; their ancestors
        # count from min_level down.
        nodes = [words]
        current = words
        while len(current):
            current = self.tree.parent[current].astype(np.int64)
            current = current[(current >= 0)]
            current = current[self.tree.level[current] >= self.config.min_level]
            nodes.append(current)
        return np.concatenate(nodes)

    # -- weights and postings ---------------------------------------------------------------

    def _term_frequency(self, counts: np.ndarray) -> np.ndarray:
        tf = counts.astype(np.float32)
        return np.sqrt(tf) if self.config.burstiness == "sqrt" else tf

    def build(self) -> None:
        """Compute the weights and postings now (searches would otherwise do it on the next
        query); afterwards searching only reads, so threads may search at once."""
        if not self._built:
            self._build()

    def _build(self) -> None:
        images = np.fromiter(self._terms, dtype=np.int64, count=len(self._terms))
        sizes = np.fromiter((len(nodes) for nodes, _ in self._terms.values()), dtype=np.int64,
                            count=len(images))
        if len(images):
            nodes = np.concatenate([nodes for nodes, _ in self._terms.values()])
            counts = np.concatenate([counts for _, counts in self._terms.values()])
        else:
            nodes = np.empty(0, dtype=np.int32)
            counts = np.empty(0, dtype=np.int32)
        rows = np.repeat(np.arange(len(images), dtype=np.int32), sizes)
        if self._corpus is None:
            self._weights = self._node_weights(np.bincount(nodes, minlength=self.n_nodes),
                                               len(images))
        else:
            self._weights = self._node_weights(self._corpus.dense(self.n_nodes),
                                               self._corpus.images)
        values = self._term_frequency(counts) * self._weights[nodes]
        values = self._normalise_rows(values, rows, len(images))
        keep = values > 0
        nodes, rows, values = nodes[keep], rows[keep], values[keep]
        order = np.argsort(nodes, kind="stable")
        self._post_rows, self._post_values = rows[order], values[order]
        self._offsets = np.concatenate(([0], np.cumsum(np.bincount(nodes,
                                                                   minlength=self.n_nodes))))
        voting = self.votes
        signed = self._signatures()
        self._images = images
        self._voting = (_Postings.of(images, signed, self._weights, self.n_nodes)
                        if voting else _Postings.empty())
        if voting:
            self._signed = None  # the postings hold them now
        self._built = True

    def _node_weights(self, document_frequency: np.ndarray, n_images: int) -> np.ndarray:
        present = document_frequency > 0
        if self.config.weighting == "entropy":
            weights = np.zeros(self.n_nodes, dtype=np.float32)
            # As if one more image had none of the words: a word in every image still counts
            # a little (ln(1 + 1/N)), where ln(N / N_i) would make a collection of one
            # image, or of photos all of one object, find nothing at all.
            weights[present] = np.log((n_images + 1) / document_frequency[present])
        else:
            weights = present.astype(np.float32)
        if self.config.stop_words > 0 and present.any():
            # The most frequent words say least; drop a fraction of them outright.
            n_stop = int(self.config.stop_words * int(present.sum()))
            if n_stop:
                weights[np.argsort(-document_frequency, kind="stable")[:n_stop]] = 0.0
        return weights

    def _normalise_rows(self, values: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
        return normalise_rows(values, rows, n_rows, self.config.norm)

    def query_vector(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The query's sparse (nodes, values), weighted and normalised like the database."""
        return self._vector(*np.unique(self._expand(words), return_counts=True))

    def stored_vector(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """An indexed image's sparse (nodes, values), weighted and normalised."""
        return self._vector(*self._terms[int(image_id)])

    def _vector(self, nodes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One histogram, weighted with the database's weights and normalised."""
        if not self._built:
            self._build()
        values = self._term_frequency(counts) * self._weights[nodes]
        keep = values > 0
        nodes, values = nodes[keep].astype(np.int64), values[keep]
        return nodes, self._normalise_rows(values, np.zeros(len(values), dtype=np.int64), 1)

    def dense_vector(self, image_id: int) -> np.ndarray:
        """An image's full (n_nodes,) vector: the reference the inverted files must agree with."""
        nodes, values = self.stored_vector(image_id)
        vector = np.zeros(self.n_nodes, dtype=np.float32)
        vector[nodes] = values
        return vector

    # -- scoring ----------------------------------------------------------------------------

    def scores(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(image ids, similarity) of every indexed image, through the inverted files only."""
        return self.scores_of_vector(*self.query_vector(words))

    def expanded_vector(self, words: np.ndarray,
                        images: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Average query expansion (Chum et al., ICCV 2007): the mean of the query's
        normalised vector and those of ``images`` (verified matches), normalised again."""
        return average([self.query_vector(words), *(self.stored_vector(i) for i in images)],
                       self.config.norm)

    def scores_of_vector(self, nodes: np.ndarray,
                         query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`scores`, for a query vector already weighted and normalised."""
        if not self._built:
            self._build()
        starts, ends = self._offsets[nodes], self._offsets[nodes + 1]
        lengths = ends - starts
        positions = concatenated_ranges(starts, lengths)
        rows = self._post_rows[positions]
        stored = self._post_values[positions]
        asked = np.repeat(query, lengths)
        if self.config.norm == "l1":
            # Only the shared nodes change the distance from 2 (see the module docstring).
            weights = 0.5 * (asked + stored - np.abs(asked - stored))
        else:
            weights = asked * stored
        similarity = np.bincount(rows, weights=weights, minlength=len(self._images))
        return self._images, np.asarray(similarity, dtype=np.float32)

    def query_votes(self, words: np.ndarray, signatures: np.ndarray | None) -> Votes | None:
        """The query as voting asks it, None when voting is off or the query has no
        signatures. Made also by an index that cannot vote itself (a shard of a split
        collection may hold no images): the shards that can, vote."""
        if not self._built:
            self._build()
        if not self.config.vote_bits or signatures is None:
            return None
        leaves, counts = np.unique(np.asarray(words, dtype=np.int64), return_counts=True)
        norm = float(np.sqrt(np.sum((counts * self._weights[leaves]) ** 2)))
        return Votes(np.asarray(words, dtype=np.int64), np.asarray(signatures, np.uint64), norm)

    def scores_of_votes(self, query: Votes) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`scores`, by Hamming embedding votes (``vote_bits``). An index that
        cannot vote (a shard of a split collection that holds no images, or images without
        signatures, while another shard made the query) scores the query's histogram."""
        if not self._built:
            self._build()
        if not self.votes:
            return self.scores(query.words)
        postings = self._voting
        starts = postings.offsets[query.words]
        lengths = postings.offsets[query.words + 1] - starts
        positions = concatenated_ranges(starts, lengths)
        bits = np.bitwise_count(postings.signatures[positions]
                                ^ np.repeat(query.signatures, lengths))
        close = bits <= self.config.vote_bits
        weights = (np.repeat(self._weights[query.words] ** 2, lengths)[close]
                   * np.exp(-(bits[close] / _VOTE_SIGMA) ** 2))
        votes = np.bincount(postings.rows[positions][close], weights=weights,
                            minlength=len(self._images))
        similarity = votes / np.maximum(postings.norms * query.norm, 1e-12)
        return self._images, np.asarray(similarity, dtype=np.float32)

    def search(self, words: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (image id, similarity), best first; images sharing nothing left out."""
        return self.top(*self.scores(words), k)

    @staticmethod
    def top(images: np.ndarray, similarity: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best of ``scores``' output, best first; zero similarity left out."""
        if not len(images):
            return []
        k = min(k, len(images))
        kth = np.partition(-similarity, k - 1)[k - 1]
        # Every image tied with the k-th, so that the cut keeps the lowest ids among them
        # (a shard of a split collection must keep what the whole would).
        top = np.flatnonzero(-similarity <= kth)
        top = top[np.lexsort((images[top], -similarity[top]))][:k]
        return [(int(images[i]), float(similarity[i])) for i in top if similarity[i] > 0]

    def memory_bytes(self) -> int:
        terms = sum(nodes.nbytes + counts.nbytes for nodes, counts in self._terms.values())
        signed = sum(words.nbytes + signatures.nbytes
                     for words, signatures in (self._signed or {}).values())
        return int(terms + signed + self._voting.nbytes() + self._post_rows.nbytes
                   + self._post_values.nbytes + self._offsets.nbytes + self._weights.nbytes
                   + self._images.nbytes)


_VOTE_SIGMA = 16.0  # bits: Jégou et al.'s weighting of a vote by its Hamming distance


@dataclass(frozen=True)
class _Postings:
    """Every stored keypoint grouped by word: ``rows[offsets[w]:offsets[w + 1]]`` are the
    rows (positions in the index's image order) of word w's keypoints, ``signatures`` theirs;
    ``norms[row]`` is that image's tf-idf L2 norm."""

    offsets: np.ndarray
    rows: np.ndarray
    signatures: np.ndarray
    norms: np.ndarray

    @staticmethod
    def empty() -> _Postings:
        return _Postings(np.zeros(1, np.int64), np.empty(0, np.int32), np.empty(0, np.uint64),
                         np.empty(0, np.float64))

    @staticmethod
    def of(images: np.ndarray, signed: dict[int, tuple[np.ndarray, np.ndarray]],
           weights: np.ndarray, n_nodes: int) -> _Postings:
        words = np.concatenate([signed[int(image)][0] for image in images]).astype(np.int64)
        signatures = np.concatenate([signed[int(image)][1] for image in images])
        rows = np.repeat(np.arange(len(images), dtype=np.int32),
                         [len(signed[int(image)][0]) for image in images])
        pairs, counts = np.unique(rows.astype(np.int64) * n_nodes + words, return_counts=True)
        squares = (counts * weights[pairs % n_nodes]) ** 2
        norms = np.sqrt(np.bincount(pairs // n_nodes, weights=squares, minlength=len(images)))
        order = np.argsort(words, kind="stable")
        offsets = np.concatenate(([0], np.cumsum(np.bincount(words, minlength=n_nodes))))
        return _Postings(offsets, rows[order], signatures[order], norms)

    def per_image(self, images: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """What :meth:`of` was given, each image's (words, signatures), its keypoints now in
        word order: the postings that these build again are the same."""
        words = np.repeat(np.arange(len(self.offsets) - 1, dtype=np.int32),
                          np.diff(self.offsets))
        order = np.argsort(self.rows, kind="stable")
        bounds = np.searchsorted(self.rows[order], np.arange(len(images) + 1))
        return {int(image): (words[order[start:end]], self.signatures[order[start:end]])
                for image, start, end in zip(images, bounds[:-1], bounds[1:], strict=True)}

    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.rows.nbytes + self.signatures.nbytes
                   + self.norms.nbytes)


def normalise_rows(values: np.ndarray, rows: np.ndarray, n_rows: int, norm: str) -> np.ndarray:
    """``values`` divided by the norm of their row."""
    if norm == "l1":
        norms = np.bincount(rows, weights=np.abs(values), minlength=n_rows)
    else:
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_rows))
    return np.asarray(values / np.maximum(norms[rows], 1e-12), dtype=np.float32)


def average(vectors: list[tuple[np.ndarray, np.ndarray]], norm: str
            ) -> tuple[np.ndarray, np.ndarray]:
    """The mean of sparse (nodes, values) vectors, normalised again (query expansion)."""
    nodes = np.concatenate([vector[0] for vector in vectors])
    values = np.concatenate([vector[1] for vector in vectors]).astype(np.float64)
    unique, inverse = np.unique(nodes, return_inverse=True)
    summed = np.bincount(inverse, weights=values, minlength=len(unique)).astype(np.float32)
    return unique, normalise_rows(summed, np.zeros(len(summed), dtype=np.int64), 1, norm)
