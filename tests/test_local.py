"""The vocabulary tree, its scoring and spatial verification, each against a plain reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import ManifestMismatchError, ValidationError
from lookalike.local.features import SiftExtractor, root_sift
from lookalike.local.inverted import CorpusStatistics, InvertedIndex, ScoringConfig
from lookalike.local.kmeans import kmeans
from lookalike.local.tree import VocabularyTree
from lookalike.local.verify import VerifyConfig, estimate, tentative_matches

cv2 = pytest.importorskip("cv2")


def clustered(n: int, dim: int = 16, centres: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = rng.normal(size=(centres, dim)).astype(np.float32) * 4
    return (middle[rng.integers(0, centres, n)]
            + rng.normal(size=(n, dim)).astype(np.float32) * 0.3)


@pytest.fixture(scope="module")
def tree() -> VocabularyTree:
    trained, stats = VocabularyTree.train(clustered(3000), features="rootsift", branching=4,
                                          depth=4, min_split=8)
    assert stats.nodes == trained.n_nodes and stats.leaves == int(trained.is_leaf.sum())
    return trained


# -- k-means and the tree ---------------------------------------------------------------------

def test_kmeans_finds_well_separated_clusters() -> None:
    rng = np.random.default_rng(1)
    truth = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)
    labels_true = rng.integers(0, 3, 600)
    points = truth[labels_true] + rng.normal(size=(600, 2)).astype(np.float32) * 0.5
    centres, labels = kmeans(points, 3, seed=0)
    assert len(centres) == 3
    # Every true cluster maps to exactly one found cluster.
    for cluster in range(3):
        assert len(np.unique(labels[labels_true == cluster])) == 1
    assert len(np.unique(labels)) == 3


def test_kmeans_on_identical_points_returns_one_centre() -> None:
    centres, labels = kmeans(np.ones((50, 4), dtype=np.float32), 10)
    assert len(centres) == 1 and set(labels.tolist()) == {0}


def brute_force_descent(tree: VocabularyTree, point: np.ndarray) -> list[int]:
    """The reference: at every level, the nearest child of the current node by a plain loop."""
    path, node = [0], 0
    while True:
        kids = [int(child) for child in tree.children[node] if child >= 0]
        if not kids:
            return path
        distances = [float(np.sum((tree.centres[child] - point) ** 2)) for child in kids]
        node = kids[int(np.argmin(distances))]
        path.append(node)


def test_descent_equals_brute_force_nearest_centre_at_each_level(tree: VocabularyTree) -> None:
    points = clustered(400, seed=7)
    leaves = tree.quantize(points)
    paths = tree.paths(leaves)
    for point, leaf, path in zip(points, leaves, paths, strict=True):
        expected = brute_force_descent(tree, point)
        assert leaf == expected[-1]
        assert [int(node) for node in path[path >= 0]][::-1] == expected


def test_tree_has_the_asked_shape(tree: VocabularyTree) -> None:
    assert tree.depth == 4 and tree.branching == 4
    assert tree.children.shape == (tree.n_nodes, 4)
    assert (tree.paths(np.flatnonzero(tree.is_leaf))[:, 0] >= 0).all()
    assert tree.n_nodes > 4 ** 2  # it went deeper than two levels


def test_tree_round_trips_and_checks_its_content(tree: VocabularyTree, tmp_path: Path) -> None:
    path = tmp_path / "tree.npz"
    tree.save(path)
    loaded = VocabularyTree.load(path, features="rootsift")
    assert loaded.id == tree.id
    points = clustered(100, seed=3)
    assert np.array_equal(loaded.quantize(points), tree.quantize(points))
    with pytest.raises(ManifestMismatchError, match="rootsift"):
        VocabularyTree.load(path, features="sift")
    path.write_bytes(b"not a tree")
    with pytest.raises(ValidationError, match="not a readable vocabulary tree"):
        VocabularyTree.load(path)


def test_tree_refuses_too_few_descriptors_and_damaged_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 40 descriptors"):
        VocabularyTree.train(clustered(39), features="sift")
    path = tmp_path / "t.npz"
    np.savez(path, centres=np.zeros((3, 4)), children=np.zeros((2, 10)),
             settings=np.array(["lookalike-vocabulary-tree", "1", "sift", "10", "6", "x"]))
    with pytest.raises(ValidationError, match=f"{path}: damaged"):
        VocabularyTree.load(path)


def test_tree_refuses_bad_settings() -> None:
    with pytest.raises(ValidationError, match="branching"):
        VocabularyTree.train(clustered(100), features="sift", branching=1)
    with pytest.raises(ValidationError, match="non-empty"):
        VocabularyTree.train(np.empty((0, 16), np.float32), features="sift")
    with pytest.raises(ValidationError, match="feature kind"):
        VocabularyTree.train(clustered(100), features="orb")


# -- scoring ----------------------------------------------------------------------------------

def random_database(tree: VocabularyTree, images: int = 30,
                    seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    leaves = np.flatnonzero(tree.is_leaf)
    return {image: rng.choice(leaves, size=int(rng.integers(5, 60)))
            for image in range(100, 100 + images)}


@pytest.mark.parametrize("config", [
    ScoringConfig(),
    ScoringConfig(levels="all"),
    ScoringConfig(norm="l2"),
    ScoringConfig(burstiness="sqrt", stop_words=0.1),
    ScoringConfig(weighting="none", levels="all", norm="l2"),
    ScoringConfig(levels="all", min_level=3),
], ids=["paper-leaves", "paper-all-levels", "l2", "burst-stop", "unweighted-l2", "from-level-3"])
def test_inverted_file_scores_equal_dense_distances(tree: VocabularyTree,
                                                    config: ScoringConfig) -> None:
    database = random_database(tree)
    index = InvertedIndex(tree.n_nodes, config, tree=tree)
    for image, words in database.items():
        index.add(image, words)
    query_words = np.concatenate([database[105][:20], random_database(tree, 1, seed=9)[100]])
    images, similarity = index.scores(query_words)
    nodes, values = index.query_vector(query_words)
    query = np.zeros(tree.n_nodes, dtype=np.float64)
    query[nodes] = values
    for image, score in zip(images, similarity, strict=True):
        stored = index.dense_vector(int(image)).astype(np.float64)
        if config.norm == "l1":
            expected = 1.0 - 0.5 * np.abs(query - stored).sum()
        else:
            expected = float(query @ stored)
        assert score == pytest.approx(expected, abs=1e-5)


def test_entropy_weights_follow_the_paper(tree: VocabularyTree) -> None:
    index = InvertedIndex(tree.n_nodes)
    leaves = np.flatnonzero(tree.is_leaf)
    common, rare, rarer = leaves[0], leaves[1], leaves[2]
    for image in range(10):
        words = [common] + ([rare] if image < 4 else []) + ([rarer] if image == 0 else [])
        index.add(image, np.array(words))
    vector = index.dense_vector(0)
    # w = ln((N + 1) / N_i): a word in every image weighs only ln 1.1, one in 4 of 10
    # ln 2.75, one in 1 of 10 ln 11; the vector is then L1-normalised.
    assert vector[common] / vector[rarer] == pytest.approx(np.log(1.1) / np.log(11), rel=1e-5)
    assert vector[rarer] / vector[rare] == pytest.approx(np.log(11) / np.log(2.75), rel=1e-5)
    assert vector[common] + vector[rare] + vector[rarer] == pytest.approx(1.0, abs=1e-6)
    assert index.search(np.array([rarer]), 5)[0][0] == 0


def test_identical_image_scores_one_and_removal_forgets_it(tree: VocabularyTree) -> None:
    database = random_database(tree)
    index = InvertedIndex(tree.n_nodes)
    for image, words in database.items():
        index.add(image, words)
    best, score = index.search(database[110], 3)[0]
    assert best == 110 and score == pytest.approx(1.0, abs=1e-5)
    index.remove(110)
    assert 110 not in [image for image, _ in index.search(database[110], 30)]


def test_scoring_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="norm"):
        ScoringConfig(norm="l3")
    with pytest.raises(ValidationError, match="stop_words"):
        ScoringConfig(stop_words=1.5)
    with pytest.raises(ValidationError, match="vocabulary tree"):
        InvertedIndex(10, ScoringConfig(levels="all"))


# -- verification -----------------------------------------------------------------------------

def test_tentative_matches_pair_shared_words_only() -> None:
    pairs = tentative_matches(np.array([5, 7, 9, 9]), np.array([9, 1, 5, 5, 3]), max_per_word=4)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 2), (0, 3), (2, 0), (3, 0)]
    assert tentative_matches(np.array([5]), np.array([5, 5, 5]), max_per_word=2).size == 0


@pytest.mark.parametrize("model", ["affine", "homography"])
def test_ransac_recovers_a_synthetic_homography(model: str) -> None:
    rng = np.random.default_rng(0)
    truth = np.array([[0.9, 0.15, 30.0], [-0.1, 1.05, -12.0], [0.0, 0.0, 1.0]])
    if model == "homography":
        truth[2, :2] = (2e-4, -1e-4)
    query = rng.uniform(0, 500, size=(120, 2))
    mapped = np.c_[query, np.ones(len(query))] @ truth.T
    match = mapped[:, :2] / mapped[:, 2:]
    # 40% of the correspondences are wrong, as with visual words.
    wrong = rng.choice(len(match), 48, replace=False)
    match[wrong] = rng.uniform(0, 500, size=(48, 2))
    pairs = np.stack([np.arange(120), np.arange(120)], axis=1)
    result = estimate(query, match, pairs, VerifyConfig(model=model, threshold=2.0))
    assert result.verified(8) and result.transform is not None
    assert 70 <= result.inliers <= 72 + 3  # the 72 true ones, maybe a few lucky outliers
    expected = truth / truth[2, 2] if model == "homography" else truth[:2]
    found = result.transform / (result.transform[2, 2] if model == "homography" else 1.0)
    assert np.allclose(found, expected, atol=0.02 if model == "affine" else 1e-3)
    assert len(set(wrong.tolist()) & set(result.pairs[:, 0].tolist())) <= 3


def test_random_points_are_not_verified() -> None:
    rng = np.random.default_rng(2)
    query, match = rng.uniform(0, 500, (60, 2)), rng.uniform(0, 500, (60, 2))
    pairs = np.stack([np.arange(60), np.arange(60)], axis=1)
    assert not estimate(query, match, pairs, VerifyConfig(threshold=2.0)).verified(8)


# -- features ---------------------------------------------------------------------------------

def textured(size: tuple[int, int] = (240, 320), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((*size, 3), np.uint8)
    for _ in range(60):
        x, y = int(rng.integers(0, size[1])), int(rng.integers(0, size[0]))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(image, (x, y), int(rng.integers(3, 20)), colour, -1)
    return image


def test_sift_caps_keypoints_and_gives_root_sift() -> None:
    image = textured()
    features = SiftExtractor("rootsift", max_features=50).extract(image)
    assert len(features) == 50 and features.descriptors.shape == (50, 128)
    assert np.allclose(np.linalg.norm(features.descriptors, axis=1), 1.0, atol=1e-3)
    every = SiftExtractor("sift", max_features=100_000).extract(image)
    assert len(every) > 50
    assert np.allclose(root_sift(every.descriptors[:5]), np.sqrt(
        every.descriptors[:5] / every.descriptors[:5].sum(axis=1, keepdims=True)), atol=1e-6)


def test_sift_on_a_blank_image_finds_nothing() -> None:
    features = SiftExtractor().extract(np.full((64, 64, 3), 128, np.uint8))
    assert len(features) == 0 and features.geometry.shape == (0, 4)


def test_sift_geometry_is_in_extraction_pixels_with_the_scale_back() -> None:
    image = textured((480, 640))
    small = SiftExtractor(max_side=320).extract(image)
    assert small.scale == pytest.approx(2.0)
    assert small.geometry[:, 0].max() < 320 and small.geometry[:, 1].max() < 240


def test_levels_and_coarser_nodes_follow_the_tree(tree: VocabularyTree) -> None:
    assert tree.level[0] == 0
    has = tree.children >= 0
    parents = np.repeat(np.arange(tree.n_nodes), has.sum(axis=1))
    assert np.array_equal(tree.level[tree.children[has]], tree.level[parents] + 1)
    leaves = np.flatnonzero(tree.is_leaf & (tree.level == 4))
    up_two = tree.coarser(leaves, 2, floor=1)
    assert np.array_equal(up_two, tree.parent[tree.parent[leaves]])
    assert (tree.level[tree.coarser(leaves, 3, floor=2)] == 2).all()
    shallow = np.flatnonzero(tree.level == 1)
    assert np.array_equal(tree.coarser(shallow, 2, floor=1), shallow)


def test_query_expansion_averages_normalised_vectors(tree: VocabularyTree) -> None:
    database = random_database(tree)
    index = InvertedIndex(tree.n_nodes)
    for image, words in database.items():
        index.add(image, words)
    query = database[101][:10]
    nodes, values = index.expanded_vector(query, [102, 103])
    assert values.sum() == pytest.approx(1.0, abs=1e-5)
    expected = np.zeros(tree.n_nodes)
    for part in (index.query_vector(query), index.stored_vector(102), index.stored_vector(103)):
        expected[part[0]] += part[1]
    expected /= expected.sum()
    assert np.allclose(expected[nodes], values, atol=1e-6)
    assert np.count_nonzero(expected) == len(nodes)


def test_min_level_leaves_the_nodes_near_the_root_out(tree: VocabularyTree) -> None:
    words = random_database(tree, 1)[100]
    index = InvertedIndex(tree.n_nodes, ScoringConfig(levels="all", min_level=3), tree=tree)
    index.add(1, words)
    index.add(2, words[:5])
    nodes, _ = index.query_vector(words)
    inner = nodes[~tree.is_leaf[nodes]]
    assert len(inner) and (tree.level[inner] >= 3).all()
    # A leaf above min_level still counts (a shallow branch of the tree); its ancestors do not.
    shallow = np.flatnonzero(tree.is_leaf & (tree.level == 3))
    assert len(shallow)
    deep = InvertedIndex(tree.n_nodes, ScoringConfig(levels="all", min_level=4), tree=tree)
    deep.add(1, shallow)
    deep.add(2, words[~np.isin(words, shallow)])  # so that every shallow leaf has weight
    assert sorted(deep.query_vector(shallow)[0].tolist()) == sorted(shallow.tolist())
    every = InvertedIndex(tree.n_nodes, ScoringConfig(levels="all"), tree=tree)
    every.add(1, words)
    every.add(2, words[:5])
    assert (tree.level[every.query_vector(words)[0]] < 3).any()


def test_training_sample_is_uniform_over_all_descriptors() -> None:
    from lookalike.local.features import LocalFeatures
    from lookalike.local.training import sample_descriptors

    def image(first: int, n: int) -> LocalFeatures:
        descriptors = np.zeros((n, 128), np.float32)
        descriptors[:, 0] = np.arange(first, first + n)  # each descriptor names itself
        return LocalFeatures(descriptors, np.zeros((n, 4), np.float32), 10, 10)

    images = [image(0, 5), image(5, 40), image(45, 5)]
    everything = sample_descriptors(images, 100)
    assert sorted(everything[:, 0].tolist()) == list(range(50))
    picked = np.zeros(50)
    for seed in range(2000):
        sample = sample_descriptors(images, 10, seed=seed)
        assert len(sample) == 10 and len(np.unique(sample[:, 0])) == 10
        picked[sample[:, 0].astype(int)] += 1
    # Each descriptor is kept with probability 10/50, whichever image it came from.
    assert np.allclose(picked / 2000, 0.2, atol=0.05)


def test_the_cut_keeps_the_lowest_ids_among_ties() -> None:
    # Exact duplicates score alike: whichever of them the k-th place keeps must not depend
    # on the order of the index (a shard keeps what the whole collection keeps).
    images = np.array([9, 4, 7, 1, 8], dtype=np.int64)
    similarity = np.array([0.5, 0.9, 0.5, 0.5, 0.2], dtype=np.float32)
    assert InvertedIndex.top(images, similarity, 3) == [(4, pytest.approx(0.9)),
                                                        (1, 0.5), (7, 0.5)]


def test_corpus_statistics_add_up_and_may_be_empty() -> None:
    nothing = CorpusStatistics.total([])
    assert nothing.images == 0 and len(nothing.nodes) == 0
    parts = [CorpusStatistics(np.array([1, 3]), np.array([2, 1]), 3),
             CorpusStatistics(np.array([3, 5]), np.array([4, 1]), 5)]
    total = CorpusStatistics.total(parts)
    assert total.nodes.tolist() == [1, 3, 5] and total.counts.tolist() == [2, 5, 1]
    assert total.images == 8 and total.dense(6).tolist() == [0, 2, 0, 5, 0, 1]
