"""Shipped vocabulary trees: compact files, lookup by id, and the generic tree chosen for
small collections (a toy tree stands in for the shipped one, except where named)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import THUMBNAIL
from test_local_channel import another_view, local_collection, scene, scenes  # noqa: F401

from lookalike import Collection, LocalChannelConfig
from lookalike.collection.local_vocabulary import given_tree
from lookalike.errors import CollectionError, ManifestMismatchError
from lookalike.local import SiftExtractor, vocabularies
from lookalike.local.tree import VocabularyTree

TOY = {"max_features": 400, "branching": 6, "depth": 4}


def toy_descriptors() -> np.ndarray:
    """RootSIFT descriptors of scenes other than those the tests index."""
    sift = SiftExtractor("rootsift", 400, 1024)
    sift.load()
    return np.concatenate([sift.extract(scene(100 + seed)).descriptors for seed in range(8)])


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VocabularyTree]:
    """A folder of shipped trees holding a compact toy generic tree (branching 6, depth 4)."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    tree, _ = VocabularyTree.train(toy_descriptors(), features="rootsift", branching=6,
                                   depth=4, compact=True)
    tree.save(folder / f"{tree.id}.npz")
    (folder / vocabularies.GENERIC_INDEX).write_text(json.dumps(
        {"rootsift": {"id": tree.id, "branching": 6, "depth": 4}}))
    monkeypatch.setattr(vocabularies, "SHIPPED_FOLDER", folder)
    vocabularies._generic_index.cache_clear()
    vocabularies.load_shipped.cache_clear()
    yield tree
    vocabularies._generic_index.cache_clear()
    vocabularies.load_shipped.cache_clear()


def test_a_compacted_tree_is_smaller_and_reads_back_as_itself(tmp_path: Path) -> None:
    descriptors = toy_descriptors()
    full, _ = VocabularyTree.train(descriptors, features="rootsift", branching=6, depth=4)
    compact = full.compacted()
    assert compact.id != full.id  # rounded centres: another tree, named as such
    full.save(tmp_path / "full.npz")
    compact.save(tmp_path / "compact.npz")
    assert (tmp_path / "compact.npz").stat().st_size < (tmp_path / "full.npz").stat().st_size / 3
    loaded = VocabularyTree.load(tmp_path / "compact.npz")
    assert loaded.id == compact.id
    assert np.array_equal(loaded.quantize(descriptors), compact.quantize(descriptors))
    # Rounding moves the centres by less than they are apart: nearly every word stays.
    assert (compact.quantize(descriptors) == full.quantize(descriptors)).mean() > 0.95
    loaded.save(tmp_path / "again.npz")  # a compacted tree stays compact when saved again
    assert (tmp_path / "again.npz").stat().st_size == (tmp_path / "compact.npz").stat().st_size


def test_shipped_trees_are_found_by_id_only(shipped: VocabularyTree) -> None:
    assert vocabularies.shipped_path(shipped.id) is not None
    assert vocabularies.shipped_path("../" + shipped.id) is None
    assert vocabularies.shipped_path("0" * 16) is None
    assert vocabularies.generic_tree("rootsift").id == shipped.id  # type: ignore[union-attr]
    assert vocabularies.generic_tree("sift") is None


def test_a_small_first_run_uses_the_generic_tree_without_a_copy(
        shipped: VocabularyTree, scenes: Path, tmp_path: Path) -> None:  # noqa: F811
    root = tmp_path / "c"
    with local_collection(root, LocalChannelConfig(**TOY, own_tree_images=100)) as collection:
        collection.index([scenes])
        assert collection.info()["channels"]["local"]["vocabulary"]["id"] == shipped.id
    assert not (root / "local" / "vocabulary.npz").exists()
    with Collection(root).open() as collection:  # read back from the shipped file, by id
        found = collection.search(another_view(scene(3)), k=1, channel="local")
        assert Path(found[0].path).name == "scene3.png"


def test_a_large_first_run_and_own_train_a_tree_of_their_own(
        shipped: VocabularyTree, scenes: Path, tmp_path: Path) -> None:  # noqa: F811
    for name, settings in (("large", {"own_tree_images": 8}), ("own", {"vocabulary": "own"})):
        root = tmp_path / name
        with local_collection(root, LocalChannelConfig(**TOY, **settings)) as collection:
            collection.index([scenes])
            tree_id = collection.info()["channels"]["local"]["vocabulary"]["id"]
        assert tree_id != shipped.id
        assert VocabularyTree.load(root / "local" / "vocabulary.npz").id == tree_id


def test_a_first_run_that_adopts_a_tree_reads_each_image_once(
        shipped: VocabularyTree, scenes: Path, tmp_path: Path) -> None:  # noqa: F811
    # Progress counts images read for extraction: one pass of 8, or a second pass of the same
    # 8 for the channel that learned its tree from the first (16 in all).
    for name, settings, reads in (("adopts", {"own_tree_images": 100}, 8),
                                  ("trains", {"vocabulary": "own"}, 16)):
        totals: list[int] = []
        configs = {"global": THUMBNAIL, "local": LocalChannelConfig(**TOY, **settings)}
        with Collection(tmp_path / name, channels=["global", "local"],
                        configs=configs) as collection:
            report = collection.index([scenes], progress=lambda _, total, seen=totals:
                                      seen.append(total))
            assert report.added == 8 and collection.info()["channels"]["local"]["vectors"] == 8
        assert max(totals) == reads, name


def test_generic_on_request_checks_the_shape_and_a_missing_tree_says_so(
        shipped: VocabularyTree, scenes: Path, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    wrong_shape = LocalChannelConfig(max_features=400, branching=5, depth=4, vocabulary="generic")
    with local_collection(tmp_path / "shape", wrong_shape) as collection, \
            pytest.raises(ManifestMismatchError, match="branching 5 and depth 4, got 6 and 4"):
        collection.index([scenes])
    # A shape the generic tree does not have, by default: the collection trains its own.
    with local_collection(tmp_path / "own", LocalChannelConfig(
            max_features=400, branching=5, depth=4)) as collection:
        collection.index([scenes])
        assert collection.info()["channels"]["local"]["vocabulary"]["id"] != shipped.id
    root = tmp_path / "generic"
    with local_collection(root, LocalChannelConfig(**TOY, vocabulary="generic")) as collection:
        collection.index([scenes])
    monkeypatch.setattr(vocabularies, "SHIPPED_FOLDER", tmp_path / "elsewhere")
    vocabularies.load_shipped.cache_clear()
    with pytest.raises(CollectionError, match=f"{shipped.id}.*no tree shipped"):
        Collection(root).open()


def test_the_shipped_generic_tree_reads_and_finds_another_view(
        scenes: Path, tmp_path: Path) -> None:  # noqa: F811
    info = vocabularies.generic_info("rootsift")
    if info is None:
        pytest.skip("no generic tree ships in this checkout")
    tree = vocabularies.generic_tree("rootsift")
    assert tree is not None and tree.id == info["id"] and tree.hamming is not None
    assert (tree.branching, tree.depth) == (10, 6) and info["images"] >= 1000
    root = tmp_path / "default"
    with local_collection(root, LocalChannelConfig(max_features=400)) as collection:
        collection.index([scenes])
        assert collection.info()["channels"]["local"]["vocabulary"] == {
            "id": tree.id, "nodes": tree.n_nodes, "leaves": int(tree.is_leaf.sum()),
            "memory_bytes": tree.memory_bytes(), "shipped": True}
        for seed in (2, 5):
            found = collection.search(another_view(scene(seed)), k=1, channel="local")
            assert Path(found[0].path).name == f"scene{seed}.png"
            assert found[0].evidence.as_dict()["local"]["verified"]


def test_the_first_run_s_size_chooses_the_tree_not_its_sample(
        shipped: VocabularyTree, scenes: Path, tmp_path: Path) -> None:  # noqa: F811
    # A sample of 4 of a run of 8 images: the run is large enough for a tree of its own.
    config = LocalChannelConfig(**TOY, own_tree_images=6, train_images=4)
    small = given_tree(config, 4)
    assert given_tree(config, 8) is None and small is not None and small.id == shipped.id
    with local_collection(tmp_path / "c", config) as collection:
        collection.index([scenes])
        assert collection.info()["channels"]["local"]["vocabulary"]["id"] != shipped.id
