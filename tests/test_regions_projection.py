"""The regions channel's projection: learned on the collection's own regions once it holds
enough images, every stored row rewritten in one transaction, queries projected alike.

The cheap thumbnail embedder (192-d) and no detector keep it fast; the projection keeps 8
dimensions once 3 images have regions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import pattern

from lookalike import Collection
from lookalike.collection import RegionsChannelConfig, regions_channel
from lookalike.collection.channels import FloatRows
from lookalike.collection.regions_channel import RegionsChannel, from_manifest
from lookalike.collection.regions_projection import PROJECTION_KEY, ProjectedRows
from lookalike.errors import CollectionError, ValidationError
from lookalike.storage import Catalog
from lookalike.whitening import PCAWhitening

PROJECTED = RegionsChannelConfig(extractor="thumbnail", max_objects=0, grid_levels=(2,),
                                 pca=8, pca_after=3)
WHOLE = RegionsChannelConfig(extractor="thumbnail", max_objects=0, grid_levels=(2,), pca=None)


def images(count: int, start: int = 0) -> dict[str, np.ndarray]:
    return {f"p{seed}": pattern(seed, (96, 72)) for seed in range(start, start + count)}


def regions_of(collection: Collection) -> RegionsChannel:
    channel = collection.channels["regions"]
    assert isinstance(channel, RegionsChannel)
    return channel


def brute_force(channel: RegionsChannel, query: np.ndarray, k: int) -> list[int]:
    """Image ids by their best stored row's cosine with the channel's query vector."""
    vector_ids, matrix = channel.vectors.matrix()
    _, image_ids = channel.catalog.vectors.ids("regions")
    by_id = dict(zip(vector_ids.tolist(), image_ids.tolist(), strict=True))
    scores = matrix @ channel.query_vector(query, None)[0]
    best: dict[int, float] = {}
    for position in np.argsort(-scores, kind="stable"):
        best.setdefault(by_id[int(vector_ids[position])], float(scores[position]))
    return list(best)[:k]


def test_projected_rows_store_the_projection_and_judge_blankness_whole() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    projection = PCAWhitening(4, whiten=False).fit(vectors)
    codec = ProjectedRows(FloatRows(16, 2, "float32"), projection)
    extracted = np.hstack([vectors[:3], np.full((3, 2), 7.0, np.float32)])
    rows = codec.decode_many(codec.encode(extracted))
    assert rows.shape == (3, 6) and codec.width == 6
    np.testing.assert_allclose(rows[:, :4], projection.transform(vectors[:3]), atol=1e-6)
    np.testing.assert_allclose(rows[:, 4:], 7.0)
    np.testing.assert_allclose(np.linalg.norm(rows[:, :4], axis=1), 1.0, atol=1e-5)
    blank = np.zeros((1, 18), np.float32)
    blank[0, 16] = 1.0  # a box is not a vector: judged on the 16 whole dimensions
    assert codec.is_blank(blank) and not codec.is_blank(extracted)


def test_whole_rows_until_enough_images_then_every_row_projected(tmp_path: Path) -> None:
    root = tmp_path / "c"
    with Collection(root, channels=["regions"], configs={"regions": PROJECTED},
                    batch_size=2, workers=1) as collection:
        collection.add(images(2))
        stats = collection.info()["channels"]["regions"]
        assert stats["stored_dim"] == 192 and stats["projection_learned_on_images"] is None
        per_image = stats["regions_per_image"]
        whole_bytes = collection.info()["channels"]["regions"]["stored_bytes_per_image"]
        collection.add(images(4, start=2))  # learned at the batch that makes 4 images
        stats = collection.info()["channels"]["regions"]
        assert stats["stored_dim"] == 8 and stats["projection_learned_on_images"] == 4
        assert stats["stored_bytes_per_image"] < whole_bytes / 4
        assert "stored in 8 dims (PCA learned on 4 images)" in stats["summary"]
        channel = regions_of(collection)
        assert len(channel.catalog.vectors.ids("regions")[0]) == 6 * per_image  # none lost
        query = pattern(3, (96, 72))
        found = [result.image_id for result in collection.search(query, k=4, channel="regions")]
        assert found == brute_force(channel, query, 4)
        assert collection.search(query, k=1, channel="regions")[0].path == "p3"
    with Collection(root).open() as reopened:
        assert regions_of(reopened).dim == 8
        assert reopened.search(pattern(5, (96, 72)), k=1, channel="regions")[0].path == "p5"


def test_stored_rows_are_the_projection_of_the_whole_rows(tmp_path: Path) -> None:
    with Collection(tmp_path / "whole", channels=["regions"], configs={"regions": WHOLE},
                    workers=1) as whole, \
         Collection(tmp_path / "projected", channels=["regions"],
                    configs={"regions": PROJECTED}, workers=1) as projected:
        whole.add(images(5))
        projected.add(images(5))
        whole_rows = regions_of(whole).vectors.matrix()[1]
        projected_rows = regions_of(projected).vectors.matrix()[1]
        projection = regions_of(projected).codec.projection
        assert projection is not None and projected_rows.shape == (len(whole_rows), 8)
        expected = projection.transform(whole_rows)
        cosines = np.sum(expected * projected_rows, axis=1) / np.linalg.norm(projected_rows,
                                                                            axis=1)
        assert cosines.min() > 0.99  # int8 once whole, once projected


def test_a_run_killed_while_learning_keeps_the_whole_rows(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    root = tmp_path / "c"

    def killed(conn: object, key: str, value: str) -> None:
        raise KeyboardInterrupt

    with Collection(root, channels=["regions"], configs={"regions": PROJECTED},
                    workers=1) as collection:
        collection.add(images(2))
        with monkeypatch.context() as patched:
            patched.setattr(Catalog, "put_meta", staticmethod(killed))
            with pytest.raises(KeyboardInterrupt):
                collection.add(images(2, start=2))
    with Collection(root).open() as reopened:
        assert reopened.catalog.meta(PROJECTION_KEY) is None
        assert regions_of(reopened).dim == 192
        assert reopened.search(pattern(1, (96, 72)), k=1, channel="regions")[0].path == "p1"
    with Collection(root).open() as again:
        again.add(images(2, start=2))
        assert again.info()["channels"]["regions"]["stored_dim"] == 8
        assert again.info()["images"] == 4
        assert again.search(pattern(3, (96, 72)), k=1, channel="regions")[0].path == "p3"


def two_images_whole(root: Path) -> None:
    with Collection(root, channels=["regions"], configs={"regions": PROJECTED},
                    workers=1) as writer:
        writer.add(images(2))


def projected_by_another_writer(root: Path) -> None:
    with Collection(root).open() as writer:
        writer.add(images(3, start=2))


def test_a_reader_follows_a_projection_learned_by_another_writer(tmp_path: Path) -> None:
    root = tmp_path / "c"
    two_images_whole(root)
    with Collection(root).open() as reader:
        assert reader.search(pattern(0, (96, 72)), k=1, channel="regions")[0].path == "p0"
        projected_by_another_writer(root)
        assert reader.search(pattern(4, (96, 72)), k=1, channel="regions")[0].path == "p4"
        assert regions_of(reader).dim == 8


def test_a_commit_that_fails_after_learning_leaves_this_process_searching(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "c"
    learn = regions_channel.learn_and_rewrite

    def disk_full(*args: object, **kwargs: object) -> object:
        learn(*args, **kwargs)  # type: ignore[arg-type]
        raise sqlite3.OperationalError("database or disk is full")

    with Collection(root, channels=["regions"], configs={"regions": PROJECTED},
                    workers=1) as collection:
        collection.add(images(2))
        with monkeypatch.context() as patched:
            patched.setattr(regions_channel, "learn_and_rewrite", disk_full)
            with pytest.raises(CollectionError, match="rolled back"):
                collection.add(images(2, start=2))
        assert collection.info()["channels"]["regions"]["stored_dim"] == 192
        assert collection.search(pattern(1, (96, 72)), k=1, channel="regions")[0].path == "p1"
    with Collection(root).open() as again:
        assert again.search(pattern(0, (96, 72)), k=1, channel="regions")[0].path == "p0"


def test_a_reader_that_only_removes_follows_the_new_rows(tmp_path: Path) -> None:
    root = tmp_path / "c"
    two_images_whole(root)
    with Collection(root).open() as reader:
        projected_by_another_writer(root)
        assert reader.remove(["p0"]) == 1  # syncs the index on close, in the new width
    with Collection(root).open() as again:
        assert again.info()["images"] == 4
        assert again.search(pattern(3, (96, 72)), k=1, channel="regions")[0].path == "p3"


def test_projection_settings_are_checked_and_old_collections_stay_whole() -> None:
    with pytest.raises(ValidationError, match="pca to be a positive"):
        RegionsChannelConfig(pca=0)
    with pytest.raises(ValidationError, match="pca_after"):
        RegionsChannelConfig(pca_after=0)
    assert from_manifest({"pooling": "gem", "storage": "int8"})["pca"] is None
    assert RegionsChannelConfig().pca == 256


def test_a_plain_projection_keeps_variances_and_round_trips(tmp_path: Path) -> None:
    data = np.random.default_rng(1).normal(size=(200, 12)).astype(np.float32) * np.arange(1, 13)
    projection = PCAWhitening(3, whiten=False).fit(data)
    # Orthonormal columns: a rotation onto the top components, no per-component scaling.
    np.testing.assert_allclose(projection.projection_.T @ projection.projection_, np.eye(3),
                               atol=1e-5)
    projection.save(tmp_path / "p.npz")
    again = PCAWhitening.load(tmp_path / "p.npz")
    assert not again.whiten and again.id == projection.id
    np.testing.assert_allclose(again.transform(data[:4]), projection.transform(data[:4]),
                               atol=1e-6)
