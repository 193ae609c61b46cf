"""Splitting a collection into shards: each shard an ordinary collection, together exactly
the collection's images with the same ids, rows, annotations and learned files."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import THUMBNAIL, pattern, write_images
from PIL import Image

from lookalike import Collection, GlobalChannelConfig
from lookalike.cli import main
from lookalike.collection import (
    RegionsChannelConfig,
    ShardedCollection,
    ShardSet,
    shard_of,
    sharding,
    split_collection,
)
from lookalike.collection.manifest import Manifest
from lookalike.errors import CollectionError, ImageError, ValidationError

cv2 = pytest.importorskip("cv2")
from test_local_channel import SMALL, another_view, scene  # noqa: E402  (needs OpenCV)

CONFIGS: dict[str, Any] = {
    "global": THUMBNAIL, "local": SMALL,
    "regions": RegionsChannelConfig(extractor="thumbnail", max_objects=0, grid_levels=(2,),
                                    pca=8, pca_after=4)}


def everything(root: Path) -> dict[str, Any]:
    """Images (id, path, hash), rows by (channel, id), annotations and meta of a catalog."""
    with Collection(root).open() as collection:
        records = {record.id: (record.path, record.sha256) for record in collection.images()}
        rows = {(name, image_id): blobs for name in collection.channels
                for image_id, blobs in collection.catalog.vectors.of_images(
                    name, list(records)).items()}
        notes = {image_id: sorted((a.kind, a.text, a.source) for a in
                                  collection.annotations.of(image_id)) for image_id in records}
        meta = {key: collection.catalog.meta(key) for key in
                ("local.vocabulary_id", "regions.projection")}
    return {"records": records, "rows": rows, "notes": notes, "meta": meta}


def scene_folder(folder: Path, count: int) -> Path:
    """A new folder of ``count`` scenes, scene0.png onwards."""
    folder.mkdir()
    for seed in range(count):
        Image.fromarray(scene(seed)).save(folder / f"scene{seed}.png")
    return folder


@pytest.fixture
def source(tmp_path: Path) -> Path:
    photos = scene_folder(tmp_path / "photos", 9)
    root = tmp_path / "c"
    with Collection(root, channels=list(CONFIGS), configs=CONFIGS) as collection:
        collection.index([photos])
        collection.annotations.set(collection.images()[0].id, captions=["the first one"])
    return root


def test_the_shards_together_are_the_collection(source: Path, tmp_path: Path) -> None:
    counts = split_collection(source, tmp_path / "s", 3)
    shards = ShardSet.load(tmp_path / "s")
    assert list(counts) == list(shards.names) == ["shard-000", "shard-001", "shard-002"]
    whole = everything(source)
    parts = [everything(root) for root in shards.roots]
    assert sum(counts.values()) == len(whole["records"]) == 9
    assert all(whole["meta"].values())  # a tree and a projection were learned
    merged: dict[str, dict[Any, Any]] = {"records": {}, "rows": {}, "notes": {}}
    for index, part in enumerate(parts):
        assert all(shard_of(path, 3) == index for path, _ in part["records"].values())
        assert part["meta"] == whole["meta"]  # the same tree and projection everywhere
        for key in merged:
            merged[key].update(part[key])
    assert merged == {key: whole[key] for key in merged}  # same ids, rows, annotations
    largest = max(range(3), key=lambda index: len(parts[index]["records"]))
    with Collection(shards.roots[largest]).open() as shard:
        path = next(iter(parts[largest]["records"].values()))[0]
        found = shard.search(Path(path), k=1, channel="local")
        assert found[0].path == path
        assert shard.search(Path(path), k=1, channel="regions")[0].path == path
        assert shard.info()["channels"]["regions"]["stored_dim"] == 8


def test_ids_stay_unique_as_shards_grow(source: Path, tmp_path: Path) -> None:
    split_collection(source, tmp_path / "s", 2)
    shards = ShardSet.load(tmp_path / "s")
    added = []
    for root in shards.roots:
        with Collection(root).open() as shard:
            shard.add({f"new-{root.name}": pattern(7, (320, 240))})
            added.append(shard.image_by_path(f"new-{root.name}").id)
    assert len(set(added)) == 2 and min(added) > max(everything(source)["records"])


def test_bad_splits_are_refused(source: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="between 1 and 4096 shards"):
        split_collection(source, tmp_path / "s", 0)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    with pytest.raises(CollectionError, match="new or empty folder"):
        split_collection(source, tmp_path / "taken", 2)
    with pytest.raises(CollectionError, match="not a sharded collection"):
        ShardSet.load(source)


def test_the_cli_splits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_images(tmp_path / "photos", range(6))
    col = str(tmp_path / "c")
    assert main(["index", str(tmp_path / "photos"), "-c", col, "--extractor", "thumbnail",
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["shard", col, "--shards", "2", "--out", str(tmp_path / "s"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(report["images"].values()) == 6
    vectors = []
    for root in ShardSet.load(tmp_path / "s").roots:
        with Collection(root).open() as shard:
            vectors.append(shard.vectors([r.path for r in shard.images()]))
    assert np.concatenate(vectors).shape == (6, 192)
    query = str(tmp_path / "photos" / "img003.png")
    assert main(["search", query, "-c", str(tmp_path / "s"), "-k", "2", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["partial"] is False and found["results"][0]["path"] == query
    write_images(tmp_path / "photos", range(6, 9))
    assert main(["index", str(tmp_path / "photos"), "-c", str(tmp_path / "s"), "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert sorted(reports) == ["shard-000", "shard-001"]
    assert sum(report["added"] for report in reports.values()) == 3


def same_results(found: list[Any], expected: list[Any]) -> None:
    assert [(r.rank, r.image_id, r.path) for r in found] == [
        (r.rank, r.image_id, r.path) for r in expected]
    # The same dot products, summed in another order by BLAS at another size.
    np.testing.assert_allclose([r.fused_score for r in found],
                               [r.fused_score for r in expected], atol=1e-5)
    for got, wanted in zip(found, expected, strict=True):
        local = (got.evidence.as_dict().get("local"), wanted.evidence.as_dict().get("local"))
        assert local[0] == local[1]  # the same inliers, verified or not, tree scores


@pytest.fixture
def views(tmp_path: Path) -> Path:
    """Scenes, and other views of some of them: verification and query expansion have
    several matches to find, in different shards."""
    photos = tmp_path / "views"
    photos.mkdir()
    for seed in range(10):
        Image.fromarray(scene(seed)).save(photos / f"scene{seed}.png")
    for seed in (2, 5):
        # Named so that, split in 3, the view lies in another shard than its scene.
        name = next(f"scene{seed}-view{i}.png" for i in range(100)
                    if shard_of(str(photos / f"scene{seed}-view{i}.png"), 3)
                    != shard_of(str(photos / f"scene{seed}.png"), 3))
        Image.fromarray(another_view(scene(seed))).save(photos / name)
        Image.fromarray(another_view(another_view(scene(seed)))).save(
            photos / f"scene{seed}-again.png")
    root = tmp_path / "v"
    with Collection(root, channels=list(CONFIGS), configs=CONFIGS) as collection:
        collection.index([photos])
    return root


def test_every_channel_and_auto_rank_as_the_whole_collection(views: Path,
                                                             tmp_path: Path) -> None:
    split_collection(views, tmp_path / "s", 3)
    photos = sorted((tmp_path / "views").glob("*.png"))
    queries: list[Any] = [*photos, another_view(scene(5)), another_view(scene(7))]
    with Collection(views).open() as whole, ShardedCollection(tmp_path / "s") as sharded:
        for channel in ("global", "regions", "local", "auto"):
            for query in queries:
                expected = whole.search(query, k=6, channel=channel, fusion="rrf")
                found = sharded.search(query, k=6, channel=channel, fusion="rrf")
                assert not found.partial
                same_results(found.results, expected)
        box = (40, 30, 300, 260)
        same_results(sharded.search(photos[4], k=5, channel="local", box=box).results,
                     whole.search(photos[4], k=5, channel="local", box=box))
        verified = [r for r in sharded.search(queries[-2], k=6, channel="local").results
                    if r.evidence.as_dict()["local"]["verified"]]
        assert {Path(r.path).stem.split("-")[0] for r in verified} == {"scene5"}
        assert len(verified) == 3
        assert len({shard_of(r.path, 3) for r in verified}) > 1  # found in several shards
        # A shard weighing by its own images scores them otherwise: the test can fail. Every
        # shard is asked, since which images a shard holds depends on the temporary folder
        # (one shard may hold none, or one image only).
        every = {r.image_id: r.fused_score for r in sharded.search(queries[-2], k=20,
                                                             channel="local").results}
        differences = []
        for root in ShardSet.load(tmp_path / "s").roots:
            with Collection(root).open() as alone:
                own = alone.search(queries[-2], k=6, channel="local")
                assert {r.image_id for r in own} <= set(every)
                differences += [abs((r.fused_score or 0) - (every[r.image_id] or 0))
                                for r in own]
        assert differences and max(differences) > 1e-6
        with pytest.raises(ValidationError, match="lookalike channels add text"):
            sharded.search(queries[0], channel="text")  # this collection has none
        with pytest.raises(ValidationError, match="the kinds of channel are"):
            sharded.search(queries[0], channel="colour")  # no collection has one


def test_a_learned_ranker_fuses_the_shards_as_the_whole(views: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from lookalike.ranking import train_ranker

    photos = sorted((tmp_path / "views").glob("*.png"))
    family = {path: [str(other) for other in photos
                     if other.stem.split("-")[0] == path.stem.split("-")[0]]
              for path in photos}
    truth = [SimpleNamespace(path=str(path), relevant=family[path], junk=[], box=None)
             for path in photos]
    with Collection(views).open() as whole:
        whole.save_ranker(train_ranker(whole.judged(truth, depth=8)))
    split_collection(views, tmp_path / "s", 3)
    with Collection(views).open() as whole, ShardedCollection(tmp_path / "s") as sharded:
        for query in [*photos[:6], another_view(scene(2))]:
            for fusion in ("auto", "weighted"):  # the learned ranker, its calibrations
                expected = whole.search(query, k=6, channel="auto", fusion=fusion)
                same_results(sharded.search(query, k=6, channel="auto", fusion=fusion).results,
                             expected)


def test_the_local_statistics_follow_a_shard_that_changes(views: Path, tmp_path: Path) -> None:
    split_collection(views, tmp_path / "s", 2)
    more = {f"more{seed}": scene(seed, (300, 400)) for seed in range(20, 24)}
    query = another_view(scene(21, (300, 400)))
    with ShardedCollection(tmp_path / "s") as sharded:
        before = sharded.search(query, k=4, channel="local").results
        sharded._local[1].collection.add(more)  # a writer the shard's searcher sees
        after = sharded.search(query, k=4, channel="local").results
    with Collection(views).open() as whole:
        whole.add(more)
        expected = whole.search(query, k=4, channel="local")
    assert "more21" not in [r.path for r in before]
    assert [(r.path, r.fused_score) for r in after] == [(r.path, r.fused_score)
                                                         for r in expected]


def test_a_shard_that_fails_makes_a_partial_result(source: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    split_collection(source, tmp_path / "s", 3)
    query = sorted((tmp_path / "photos").glob("*.png"))[0]
    with ShardedCollection(tmp_path / "s") as sharded:
        down = sharded._local[1]

        def broken(*args: object) -> None:
            raise OSError("disk gone")

        monkeypatch.setattr(down, "search_encoded", broken)
        found = sharded.search(query, k=9, channel="global")
    assert found.partial and list(found.missing) == ["shard-001"]
    assert "disk gone" in found.missing["shard-001"]
    assert len(found.results) == 9 - len(everything(tmp_path / "s" / "shard-001")["records"])
    assert found.as_dict()["partial"] is True


def test_the_query_is_embedded_once_and_by_another_shard_when_one_is_down(
        source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split_collection(source, tmp_path / "s", 3)
    query = sorted((tmp_path / "photos").glob("*.png"))[2]
    with Collection(source).open() as whole, ShardedCollection(tmp_path / "s") as sharded:
        calls: list[int] = []
        for number, searcher in enumerate(sharded._local):
            def counted(*args: Any, encode: Any = searcher.encode, number: int = number) -> Any:
                calls.append(number)
                return encode(*args)
            monkeypatch.setattr(searcher, "encode", counted)
        for channel in ("global", "local", "auto"):
            calls.clear()
            found = sharded.search(query, k=4, channel=channel)
            assert calls == [0]
            same_results(found.results, whole.search(query, k=4, channel=channel))

        def down(*args: object) -> None:
            raise OSError("node lost")

        monkeypatch.setattr(sharded._local[0], "encode", down)
        calls.clear()
        found = sharded.search(query, k=9, channel="global")
        assert calls == [1] and list(found.missing) == ["shard-000"]
        assert found.results and all(shard_of(r.path, 3) != 0 for r in found.results)


def test_a_shard_down_at_the_first_local_search_makes_it_partial(
        views: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split_collection(views, tmp_path / "s", 3)
    query = another_view(scene(5))
    with ShardedCollection(tmp_path / "s") as sharded:
        def down(*args: object) -> None:
            raise OSError("node lost")

        monkeypatch.setattr(sharded._local[2], "local_statistics", down)
        found = sharded.search(query, k=5, channel="local")
        assert list(found.missing) == ["shard-002"]
        assert found.results and all(shard_of(r.path, 3) != 2 for r in found.results)
        monkeypatch.undo()  # back up: the next search weighs by every shard again
        again = sharded.search(query, k=5, channel="local")
    with Collection(views).open() as whole:
        same_results(again.results, whole.search(query, k=5, channel="local"))


def test_a_learned_whitening_is_shared_by_the_shards(tmp_path: Path) -> None:
    write_images(tmp_path / "photos", range(12))
    whitened = {"global": GlobalChannelConfig(extractor="thumbnail", whiten=8)}
    with Collection(tmp_path / "c", configs=whitened) as collection:
        collection.index([tmp_path / "photos"])
    split_collection(tmp_path / "c", tmp_path / "s", 3)
    shared = tmp_path / "s" / sharding.WHITENING_FILE
    for root in ShardSet.load(tmp_path / "s").roots:
        config = Collection.read_configs(root)["global"]
        assert (config.whiten, config.whiten_from) == (None, str(shared))
    queries = sorted((tmp_path / "photos").glob("*.png"))[:4]
    with Collection(tmp_path / "c").open() as whole, \
            ShardedCollection(tmp_path / "s") as sharded:
        learned = whole.channel("global").vectors.whitening()  # type: ignore[attr-defined]
        assert learned is not None and shared.is_file()
        for query in queries:
            same_results(sharded.search(query, k=5).results, whole.search(query, k=5))
    # Too few images to have learned one: the shards search raw vectors, as the whole does.
    write_images(tmp_path / "few", range(5))
    with Collection(tmp_path / "f", configs=whitened) as collection:
        collection.index([tmp_path / "few"])
    split_collection(tmp_path / "f", tmp_path / "fs", 2)
    assert Collection.read_configs(tmp_path / "fs" / "shard-000")["global"].whiten is None
    with Collection(tmp_path / "f").open() as whole, \
            ShardedCollection(tmp_path / "fs") as sharded:
        query = sorted((tmp_path / "few").glob("*.png"))[0]
        same_results(sharded.search(query, k=5).results, whole.search(query, k=5))
    for root in ShardSet.load(tmp_path / "fs").roots:  # shards that would each learn one
        manifest = Manifest.load(root)
        manifest.channels["global"]["whiten"] = 4
        manifest.save(root)
    with pytest.raises(ValidationError, match="each learn one"):
        ShardedCollection(tmp_path / "fs").open()


def test_regions_not_projected_yet_stay_whole_in_every_shard(tmp_path: Path) -> None:
    write_images(tmp_path / "photos", range(5))
    regions = RegionsChannelConfig(extractor="thumbnail", max_objects=0, grid_levels=(2,),
                                   pca=8, pca_after=50)
    with Collection(tmp_path / "c", channels=["regions"],
                    configs={"regions": regions}) as collection:
        collection.index([tmp_path / "photos"])
    split_collection(tmp_path / "c", tmp_path / "s", 2)
    for root in ShardSet.load(tmp_path / "s").roots:
        assert Collection.read_configs(root)["regions"].pca is None
        with Collection(root).open() as shard:  # opens with the manifest as rewritten
            shard.add({f"more-{i}": pattern(40 + i, (96, 72)) for i in range(60)})
            assert shard.info()["channels"]["regions"]["stored_dim"] == 192


def test_a_file_query_is_decoded_by_each_shard_as_by_the_collection(tmp_path: Path) -> None:
    # Large JPEGs decode at a reduced scale for the default network: the shards must see
    # the pixels the one collection sees.
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(12):
        Image.fromarray(pattern(seed, (1600, 1200))).save(photos / f"{seed:02d}.jpg",
                                                          quality=90)
    with Collection(tmp_path / "c") as collection:
        collection.index([photos])
    split_collection(tmp_path / "c", tmp_path / "s", 2)
    with Collection(tmp_path / "c").open() as whole, \
            ShardedCollection(tmp_path / "s") as sharded:
        for query in sorted(photos.glob("*.jpg"))[:4]:
            expected = whole.search(query, k=5)
            found = sharded.search(query, k=5).results
            assert [r.image_id for r in found] == [r.image_id for r in expected]
            np.testing.assert_allclose([r.fused_score for r in found],
                                       [r.fused_score for r in expected], atol=1e-5)


def test_one_deadline_no_leaked_connections_and_query_errors_raised(
        source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split_collection(source, tmp_path / "s", 2)
    query = sorted((tmp_path / "photos").glob("*.png"))[0]
    with ShardedCollection(tmp_path / "s", timeout_s=0.5) as sharded:
        for _ in range(20):
            sharded.search(query, k=3, channel="global")
        for searcher in sharded._local:  # one pool for the collection's life
            assert len(searcher.collection.catalog.db._opened) <= 3
        with pytest.raises(ImageError):  # the query's fault, not a shard's: raised
            sharded.search(b"not an image", k=3, channel="global")
        slow = sharded._local[0]
        monkeypatch.setattr(slow, "search_encoded", lambda *args: time.sleep(3) or [])
        started = time.perf_counter()
        found = sharded.search(query, k=3, channel="global")
        assert time.perf_counter() - started < 2.0
        assert list(found.missing) == ["shard-000"] and "no answer" in found.missing["shard-000"]


def test_a_split_folder_is_no_collection_and_a_failed_split_leaves_nothing(
        source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split_collection(source, tmp_path / "s", 2)
    with pytest.raises(CollectionError, match="a split collection"):
        Collection(tmp_path / "s").open()

    def broken(*args: object, **kwargs: object) -> int:
        raise OSError("no space left on device")

    monkeypatch.setattr(sharding, "copy_catalog_part", broken)
    with pytest.raises(CollectionError, match="cannot write the shards"):
        split_collection(source, tmp_path / "t", 2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c", "photos", "s"]


def test_a_split_collection_keeps_up_with_its_folders(source: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    split_collection(source, tmp_path / "s", 3)
    for seed in (20, 21, 22, 23):
        Image.fromarray(scene(seed)).save(photos / f"new{seed}.png")
    (photos / "scene0.png").unlink()
    with ShardedCollection(tmp_path / "s") as sharded:
        reports = sharded.index([photos])
        assert sum(r.added for r in reports.values()) == 4
        assert sum(r.removed for r in reports.values()) == 1
        assert sum(r.unchanged for r in reports.values()) == 8
        found = sharded.search(photos / "new22.png", k=1, channel="global").results
        assert found[0].path == str(photos / "new22.png")
    for index, root in enumerate(ShardSet.load(tmp_path / "s").roots):
        with Collection(root).open() as shard:
            assert all(shard_of(record.path, 3) == index for record in shard.images())
            assert str(photos / "scene0.png") not in {r.path for r in shard.images()}


def test_the_cli_creates_a_split_collection(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_images(tmp_path / "photos", range(8))
    col = tmp_path / "split"
    assert main(["index", str(tmp_path / "photos"), "-c", str(col), "--extractor",
                 "thumbnail", "--shards", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 8 and sum(report["shards"].values()) == 8
    assert sorted(path.name for path in tmp_path.iterdir()) == ["photos", "split"]
    assert len(ShardSet.load(col).roots) == 3
    assert main(["index", str(tmp_path / "photos"), "-c", str(tmp_path / "photos"),
                 "--shards", "2"]) == 1
    assert "new collection only" in capsys.readouterr().err


def test_the_server_searches_and_shows_a_split_collection_read_only(
        views: Path, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lookalike.server import create_app

    split_collection(views, tmp_path / "s", 2)
    photos = sorted((tmp_path / "views").glob("*.png"))
    query = photos[5].read_bytes()
    auth = {"Authorization": "Bearer a-long-secret"}
    with Collection(views).open() as whole, TestClient(create_app(
            tmp_path / "s", token="a-long-secret", allowed_hosts=["testserver"])) as client:
        health = client.get("/health").json()
        assert health["images"] == whole.count() and set(health["channels"]) == set(CONFIGS)
        for channel in ("local", "auto"):
            answer = client.post("/search", files={"image": ("q.png", query, "image/png")},
                                 data={"channel": channel, "k": "5", "log": "true"}).json()
            expected = whole.search(photos[5], k=5, channel=channel)
            assert [r["image_id"] for r in answer["results"]] == [r.image_id for r in expected]
            assert answer["partial"] is False and answer["query_id"] is None
        first = answer["results"][0]["image_id"]
        by_id = client.post("/search", data={"image_id": str(first), "k": "3"}).json()
        assert by_id["results"][0]["image_id"] == first
        assert client.get(f"/images/{first}").content == Path(whole.image(first).path).read_bytes()
        assert client.get(f"/images/{first}/thumbnail").headers["content-type"] == "image/jpeg"
        assert client.get(f"/images/{first}/info").json()["id"] == first
        assert len(client.get("/images").json()["images"]) == whole.count()
        assert client.get("/categories").json() == []
        assert client.get("/images/999999/info").status_code == 404
        refused = client.post("/search", data={"text": "a cat"})
        assert refused.status_code == 422 and "'text' channel" in refused.json()["detail"]
        filtered = client.post("/search", files={"image": ("q.png", query, "image/png")},
                               data={"category": "cats"})
        assert filtered.status_code == 422 and "filter" in filtered.json()["detail"]
        assert client.get("/people").status_code == 501
        upload = client.post("/images", files={"image": ("q.png", query, "image/png")},
                             headers=auth)
        assert upload.status_code == 501 and "split collection" in upload.json()["detail"]
        bad = client.post("/search", files={"image": ("q.png", b"nope", "image/png")})
        assert bad.status_code == 422 and "q.png" in bad.json()["detail"]


def test_serve_takes_an_address_only_for_a_split_collection(views: Path) -> None:
    pytest.importorskip("fastapi")
    from lookalike.server import create_app

    with pytest.raises(ValidationError, match="expected a split collection"):
        create_app(views, address="auto")


def test_local_votes_reach_every_shard_also_an_empty_one(tmp_path: Path) -> None:
    photos = scene_folder(tmp_path / "few", 3)
    root = tmp_path / "c"
    with Collection(root, channels=["local"], configs={"local": CONFIGS["local"]}) as whole:
        whole.index([photos])
    split_collection(root, tmp_path / "s", 6)  # 3 images in 6 shards: some hold none
    with Collection(root).open() as whole, ShardedCollection(tmp_path / "s") as sharded:
        assert whole.channels["local"].config.vote_bits > 0
        for seed in range(3):
            found = sharded.search(another_view(scene(seed)), k=3, channel="local")
            assert not found.partial and not found.missing
            same_results(found.results, whole.search(another_view(scene(seed)), k=3,
                                                     channel="local"))
