"""Hamming embedding: signatures, pairing by them, and records and trees that carry them."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from test_local_channel import SMALL, another_view, save, scene

from lookalike import Collection, LocalChannelConfig
from lookalike.collection.local_records import pack, unpack
from lookalike.errors import ValidationError
from lookalike.local.features import LocalFeatures
from lookalike.local.hamming import (
    BITS,
    MAX_DISTANCE,
    HammingEmbedding,
    hamming_matches,
    hamming_matches_many,
)
from lookalike.local.inverted import InvertedIndex, ScoringConfig
from lookalike.local.ranges import concatenated_ranges
from lookalike.local.tree import VocabularyTree

cv2 = pytest.importorskip("cv2")


def descriptors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(rng.standard_normal((n, 128))).astype(np.float32)


def popcount(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b, strict=True)])


def test_signatures_are_close_for_the_same_point_and_far_for_others() -> None:
    points = descriptors(4000)
    nodes = np.arange(4000) % 10
    embedding = HammingEmbedding.train(points, nodes, level=1)
    base = embedding.signatures(points[:500], nodes[:500])
    noisy = points[:500] + 0.05 * np.random.default_rng(1).standard_normal((500, 128))
    near = popcount(base, embedding.signatures(noisy.astype(np.float32), nodes[:500]))
    far = popcount(base, embedding.signatures(points[500:1000], nodes[:500]))
    assert near.mean() < 8 and 26 < far.mean() < 38
    # Each bit splits its node's training points in half (the median).
    bits = np.unpackbits(embedding.signatures(points, nodes).view(np.uint8).reshape(-1, 8),
                         axis=1, bitorder="little")
    assert bits.shape[1] == BITS and np.allclose(bits[nodes == 3].mean(axis=0), 0.5, atol=0.02)


def test_hamming_matches_equal_a_brute_force_search() -> None:
    rng = np.random.default_rng(2)
    query_nodes, match_nodes = rng.integers(0, 5, 60), rng.integers(0, 5, 80)
    query_signatures = rng.integers(0, 2**63, 60, dtype=np.uint64)
    match_signatures = query_signatures[rng.integers(0, 60, 80)] ^ np.uint64(0b1011)
    match_signatures[::2] = rng.integers(0, 2**63, 40, dtype=np.uint64)
    found = {tuple(pair) for pair in hamming_matches(query_nodes, query_signatures,
                                                      match_nodes, match_signatures, 20)}
    expected = {(i, j) for i in range(60) for j in range(80)
                if query_nodes[i] == match_nodes[j]
                and bin(int(query_signatures[i] ^ match_signatures[j])).count("1") <= 20}
    assert found == expected and found


def test_records_keep_signatures_and_old_records_read_back() -> None:
    features = LocalFeatures(np.zeros((3, 128), np.float32),
                             np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], np.float32),
                             4000, 300, 1.0)
    words = np.array([7, 8, 9])
    signatures = np.array([1, 2**63 + 5, 42], dtype=np.uint64)
    signed = unpack(pack(features, words, signatures).tobytes())
    assert (signed.width, signed.height) == (4000, 300)
    assert signed.signatures is not None and signed.signatures.tolist() == signatures.tolist()
    assert signed.words.tolist() == [7, 8, 9] and signed.geometry[2, 0] == 9
    plain = unpack(pack(features, words).tobytes())  # as every record stored before
    assert plain.signatures is None and plain.width == 4000 and plain.words.tolist() == [7, 8, 9]


def test_a_trained_tree_carries_its_embedding_and_an_older_file_reads_without(
        tmp_path: Path) -> None:
    points = descriptors(3000)
    tree, _ = VocabularyTree.train(points, features="rootsift", branching=4, depth=4)
    assert tree.hamming is not None and tree.hamming.level == 1
    tree.save(tmp_path / "t.npz")
    again = VocabularyTree.load(tmp_path / "t.npz")
    assert again.id == tree.id and again.hamming is not None
    leaves = tree.quantize(points[:50])
    assert np.array_equal(again.signatures(points[:50], leaves),
                          tree.signatures(points[:50], leaves))
    older = VocabularyTree(tree.centres, tree.children, features="rootsift", branching=4, depth=4)
    older.save(tmp_path / "old.npz")
    loaded = VocabularyTree.load(tmp_path / "old.npz")
    assert loaded.hamming is None and loaded.signatures(points[:5], leaves[:5]) is None
    assert loaded.id != tree.id  # the embedding is part of what a tree is


def test_a_collection_with_an_older_tree_still_verifies(tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    for seed in range(6):
        save(folder, f"scene{seed}.png", scene(seed))
    with Collection(tmp_path / "signed", channels=["local"],
                    configs={"local": SMALL}).open() as collection:
        collection.index([folder])
        tree_file = tmp_path / "signed" / "local" / "vocabulary.npz"
        signed = collection.search(another_view(scene(4)), k=1, channel="local")[0]
    tree = VocabularyTree.load(tree_file)
    VocabularyTree(tree.centres, tree.children, features=tree.features,
                   branching=tree.branching, depth=tree.depth).save(tmp_path / "old.npz")
    older = LocalChannelConfig(max_features=400, branching=6, depth=4,
                               vocabulary=str(tmp_path / "old.npz"))
    with Collection(tmp_path / "plain", channels=["local"],
                    configs={"local": older}).open() as collection:
        collection.index([folder])
        plain = collection.search(another_view(scene(4)), k=1, channel="local")[0]
    for result in (signed, plain):
        local = result.evidence.as_dict()["local"]
        assert Path(result.path).name == "scene4.png" and local["verified"], local


def test_a_collection_recorded_before_pairing_changed_searches_with_today_s() -> None:
    from lookalike.collection.registry import config_from_manifest

    recorded = {**asdict(LocalChannelConfig()), "match_up": 2}
    recorded.pop("match_retry")
    recorded.pop("hamming")
    old = config_from_manifest("local", recorded)
    assert old.pairing_levels() == [1, 2] and old.hamming
    # A manifest written now keeps what it says.
    assert config_from_manifest("local", {**recorded, "match_up": 2,
                                          "match_retry": 0}).pairing_levels() == [2]
    # Evaluation caches made before signatures existed are not reused for a trained tree.
    assert LocalChannelConfig().cache_identity()["signatures"] == 1
    assert "signatures" not in LocalChannelConfig(vocabulary="t.npz").cache_identity()


def _brute_force_votes(index: InvertedIndex, stored: dict[int, tuple[np.ndarray, np.ndarray]],
                       words: np.ndarray, signatures: np.ndarray, bits: int) -> dict[int, float]:
    """Every pair of keypoints compared, one at a time: the reference the postings must match."""
    images = len(stored)
    holding = {int(w): sum(int(w) in set(ws.tolist()) for ws, _ in stored.values())
               for ws, _ in stored.values() for w in ws}
    idf = {w: np.log((images + 1) / count) for w, count in holding.items()}  # smoothed

    def norm(ws: np.ndarray) -> float:
        unique, counts = np.unique(ws, return_counts=True)
        return float(np.sqrt(sum((c * idf.get(int(w), 0.0)) ** 2
                                 for w, c in zip(unique, counts, strict=True))))

    found = {}
    for image, (ws, ss) in stored.items():
        total = 0.0
        for w, s in zip(words, signatures, strict=True):
            for w2, s2 in zip(ws, ss, strict=True):
                distance = bin(int(s) ^ int(s2)).count("1")
                if w == w2 and distance <= bits:
                    total += idf[int(w)] ** 2 * np.exp(-(distance / 16) ** 2)
        found[image] = total / max(norm(ws) * norm(words), 1e-12)
    return found


def test_hamming_votes_equal_a_brute_force_count_and_alike_signatures_the_cosine() -> None:
    rng = np.random.default_rng(3)
    stored = {image: (rng.integers(0, 30, 40), rng.integers(0, 2**63, 40, dtype=np.uint64)
                      >> rng.integers(0, 8, 40).astype(np.uint64))
              for image in range(1, 9)}
    index = InvertedIndex(30, ScoringConfig(vote_bits=24))
    for image, (words, signatures) in stored.items():
        index.add(image, words, signatures)
    assert index.votes
    words = stored[4][0][:25]
    signatures = stored[4][1][:25] ^ np.uint64(0b1011)  # three bits off each
    query = index.query_votes(words, signatures)
    assert query is not None
    images, similarity = index.scores_of_votes(query)
    expected = _brute_force_votes(index, stored, words, signatures, 24)
    assert np.allclose(similarity, [expected[int(image)] for image in images], atol=1e-6)
    assert int(images[np.argmax(similarity)]) == 4
    # Every signature alike: each shared word votes tf_q * tf_d * idf², the tf-idf cosine.
    alike = InvertedIndex(30, ScoringConfig(vote_bits=24, norm="l2"))
    for image, (words_of, _) in stored.items():
        alike.add(image, words_of, np.zeros(len(words_of), np.uint64))
    voted = alike.scores_of_votes(alike.query_votes(words, np.zeros(25, np.uint64)))[1]
    assert np.allclose(voted, alike.scores(words)[1], atol=1e-6)
    # One image without signatures: histograms for all, as before the embedding.
    index.add(9, rng.integers(0, 30, 40))
    unsigned = index.query_votes(words, signatures)
    assert not index.votes and unsigned is not None
    assert np.allclose(index.scores_of_votes(unsigned)[1], index.scores(words)[1])


def test_signatures_are_kept_once_and_an_index_changed_after_a_search_votes_afresh() -> None:
    rng = np.random.default_rng(5)
    stored = {image: (rng.integers(0, 30, 40), rng.integers(0, 2**63, 40, dtype=np.uint64))
              for image in range(1, 10)}
    words, signatures = stored[3][0][:25], stored[3][1][:25] ^ np.uint64(0b101)

    def index_of(images: list[int]) -> InvertedIndex:
        index = InvertedIndex(30, ScoringConfig(vote_bits=24))
        for image in images:
            index.add(image, *stored[image])
        return index

    changed = index_of(list(range(1, 8)))
    histograms = InvertedIndex(30, ScoringConfig(vote_bits=0))
    for image in range(1, 8):
        histograms.add(image, *stored[image])
    for index in (changed, histograms):
        index.build()
    # Built, only the postings hold the keypoints' words (as rows) and signatures: 12 bytes
    # a keypoint, and an image's norm and the word offsets, over what histograms take.
    extra = 12 * 7 * 40 + 8 * 7 + 8 * (30 + 1) - 8
    assert changed.memory_bytes() - histograms.memory_bytes() == extra
    assert changed.votes
    changed.add(8, *stored[8])
    changed.add(9, *stored[9])
    changed.remove(2)
    changed.build()
    changed.remove(42)  # not there: nothing changes
    changed.add(5, *stored[9])  # an image indexed again, its keypoints changed
    changed.add(5, *stored[5])
    with pytest.raises(ValidationError, match="a signature per word"):
        changed.add(6, stored[6][0], stored[6][1][:3])
    fresh = index_of([1, 3, 4, 5, 6, 7, 8, 9])
    for index in (changed, fresh):
        index.build()
    got = changed.scores_of_votes(changed.query_votes(words, signatures))
    expected = fresh.scores_of_votes(fresh.query_votes(words, signatures))
    assert np.array_equal(got[0], expected[0]) and np.allclose(got[1], expected[1], atol=1e-7)
    expected_votes = _brute_force_votes(fresh, {i: stored[i] for i in fresh._terms},
                                        words, signatures, 24)
    assert np.allclose(got[1], [expected_votes[int(image)] for image in got[0]], atol=1e-6)
    # Weighed again (a split collection's statistics) without a change: the same postings.
    changed.use_corpus(changed.document_frequency())
    again = changed.scores_of_votes(changed.query_votes(words, signatures))
    assert np.allclose(again[1], got[1], atol=1e-7)


def test_a_collection_votes_with_signatures_and_finds_another_view(tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    for seed in range(8):
        save(folder, f"scene{seed}.png", scene(seed))
    root = tmp_path / "c"
    with Collection(root, channels=["local"], configs={"local": SMALL}) as collection:
        collection.index([folder])
    voting = LocalChannelConfig(**{**asdict(SMALL), "vote_bits": 24})
    with Collection(root, configs={"local": voting}).open() as collection:
        found = collection.search(another_view(scene(6)), k=3, channel="local")
        assert Path(found[0].path).name == "scene6.png"
        local = collection.channels["local"]
        assert local.inverted.index.votes  # type: ignore[attr-defined]


def brute_force_pairs(query_nodes: np.ndarray, query_signatures: np.ndarray,
                      nodes: np.ndarray, signatures: np.ndarray) -> list[tuple[int, int]]:
    """The exact reference: every (query, match) pair in one node within MAX_DISTANCE bits,
    in query order, then match order."""
    return [(q, m) for q in range(len(query_nodes)) for m in range(len(nodes))
            if query_nodes[q] == nodes[m]
            and bin(int(query_signatures[q]) ^ int(signatures[m])).count("1") <= MAX_DISTANCE]


# Node ids that fit 16 bits, that cross 2**16, and that do not fit.
@pytest.mark.parametrize("offset", [0, 2**16 - 6, 70_000])
def test_pairing_many_images_at_once_gives_each_image_s_pairs_in_order(offset: int) -> None:
    rng = np.random.default_rng(7)
    query_nodes = rng.integers(0, 12, 200) + offset
    query_signatures = rng.integers(0, 2**63, 200, dtype=np.uint64)
    # Half of each image's signatures are a query signature with a few low bits changed.
    stored = [(rng.integers(0, 12, size) + offset,
               np.where(rng.random(size) < 0.5,
                        query_signatures[rng.integers(0, 200, size)]
                        ^ rng.integers(0, 2**12, size, dtype=np.uint64),
                        rng.integers(0, 2**63, size, dtype=np.uint64)))
              for size in (150, 0, 1, 300)]
    together = hamming_matches_many(query_nodes, query_signatures, stored)
    assert len(together) == 4 and len(together[0]) > 0
    for pairs, (nodes, signatures) in zip(together, stored, strict=True):
        expected = brute_force_pairs(query_nodes, query_signatures, nodes, signatures)
        assert [tuple(pair) for pair in pairs.reshape(-1, 2).tolist()] == expected
        assert np.array_equal(pairs.reshape(-1, 2),
                              hamming_matches(query_nodes, query_signatures, nodes, signatures))
    assert hamming_matches_many(query_nodes, query_signatures, []) == []


def test_a_word_s_pairing_node_is_its_ancestor_at_the_hamming_level() -> None:
    tree, _ = VocabularyTree.train(descriptors(3000), features="rootsift", branching=4, depth=4)
    leaves = tree.quantize(descriptors(500, seed=3))
    assert tree.hamming is not None
    expected = tree.coarser(leaves, tree.depth, tree.hamming.level)
    assert np.array_equal(tree.hamming_nodes(leaves), expected)
    assert np.array_equal(tree.hamming_nodes(leaves[::-1]), expected[::-1])  # from the cache


def test_concatenated_ranges_are_the_runs_one_after_another() -> None:
    found = concatenated_ranges(np.array([5, 0, 9, 2]), np.array([3, 0, 1, 2]))
    assert found.tolist() == [5, 6, 7, 9, 2, 3]
    assert concatenated_ranges(np.array([4]), np.array([0])).size == 0
