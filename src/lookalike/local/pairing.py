"""Tentative correspondences for spatial verification: which keypoints of a query and of a
stored image may be the same physical point.

Through close Hamming signatures in the same coarse node, when the tree has an embedding
and the stored record carries signatures (:mod:`lookalike.local.hamming`); else through
shared tree nodes, one level above the leaves first and coarser for a candidate that fails
(``levels``), never above level ``floor``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lookalike.local.hamming import hamming_matches, hamming_matches_many
from lookalike.local.tree import VocabularyTree
from lookalike.local.verify import tentative_matches


@dataclass(frozen=True)
class Pairing:
    """One query's side of the pairing, computed once for all its candidates."""

    tree: VocabularyTree
    nodes: np.ndarray | None  # at the Hamming level, with signatures
    signatures: np.ndarray | None
    coarse: dict[int, np.ndarray]  # levels above the leaves -> the query's nodes there
    floor: int
    max_per_word: int

    @classmethod
    def of(cls, tree: VocabularyTree, descriptors: np.ndarray, words: np.ndarray, *,
           hamming: bool, levels: Sequence[int], floor: int, max_per_word: int,
           signatures: np.ndarray | None = None) -> Pairing:
        """``signatures``: the query's, when already made (for the tree's votes)."""
        if hamming and signatures is None:
            signatures = tree.signatures(descriptors, words)
        elif not hamming:
            signatures = None
        nodes = None if signatures is None else tree.hamming_nodes(words)
        coarse = {up: tree.coarser(words, up, floor) for up in levels}
        return cls(tree, nodes, signatures, coarse, floor, max_per_word)

    def signed_pairs(self, stored: Sequence[tuple[np.ndarray, np.ndarray | None]]
                     ) -> list[np.ndarray | None]:
        """The signature pairs with each of ``stored`` ((words, signatures) of an image) at
        once, None for those paired otherwise (:meth:`tentative` pairs them)."""
        if self.nodes is None or self.signatures is None:
            return [None] * len(stored)
        signed = [(position, words, signatures)
                  for position, (words, signatures) in enumerate(stored)
                  if signatures is not None]
        found = hamming_matches_many(self.nodes, self.signatures, [
            (self.tree.hamming_nodes(words), signatures) for _, words, signatures in signed])
        pairs: list[np.ndarray | None] = [None] * len(stored)
        for (position, _, _), matched in zip(signed, found, strict=True):
            pairs[position] = matched
        return pairs

    def tentative(self, words: np.ndarray, signatures: np.ndarray | None,
                  signed: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """(query index, match index) pairs with a stored image of ``words`` (and
        ``signatures``, None for a record without them), in the order to try them until
        one set verifies; ``signed``: its signature pairs, already made by
        :meth:`signed_pairs`."""
        if signed is not None:
            yield signed
            return
        if self.nodes is not None and self.signatures is not None and signatures is not None:
            yield hamming_matches(self.nodes, self.signatures, self.tree.hamming_nodes(words),
                                  signatures)
            return
        for up, query_nodes in self.coarse.items():
            yield tentative_matches(query_nodes, self.tree.coarser(words, up, self.floor),
                                    self.max_per_word)
