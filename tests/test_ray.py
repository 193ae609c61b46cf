"""Indexing on a real Ray cluster: a head and two worker nodes started here, on loopback.

The collection indexed with ``engine="ray"`` must be the one the local engine makes: the
same images under the same ids, the same failures, the same rows byte for byte in every
channel (the local channel's words come from a tree trained here and shipped to the
workers). A worker that dies in the middle of a batch costs nothing: Ray restarts it and
runs the batch again, and nothing is lost or written twice.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import THUMBNAIL, write_images
from PIL import Image
from test_local_channel import SMALL, another_view, scene

from lookalike import Collection
from lookalike.cli import main
from lookalike.collection import (
    CHANNELS,
    RayEngine,
    RegionsChannelConfig,
    ShardedCollection,
    make_engine,
    shard_of,
    split_collection,
)
from lookalike.collection.ray_engine import ChannelRecipe
from lookalike.collection.registry import make_channel
from lookalike.errors import CollectionError, LookalikeError, ValidationError

ray = pytest.importorskip("ray")
pytest.importorskip("cv2")
cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = pytest.mark.slow

CONFIGS: dict[str, Any] = {
    "global": THUMBNAIL, "local": SMALL,
    "regions": RegionsChannelConfig(extractor="thumbnail", max_objects=0, grid_levels=(2,))}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head (no CPU: it schedules) and two worker nodes of one CPU each; workers import
    this folder's modules (the test channel in ``ray_fault``)."""
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    tests = str(Path(__file__).parent)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([tests, *sys.path])}})
    try:
        yield str(cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for seed in range(10):
        Image.fromarray(scene(seed)).save(folder / f"scene{seed:02d}.png")
    write_images(folder / "plain", range(4))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return folder


def rows(root: Path) -> dict[tuple[str, str], list[bytes]]:
    """Every channel's catalog rows, by (channel, path), in order."""
    with Collection(root).open() as collection:
        paths = {record.id: record.path for record in collection.images()}
        found: dict[tuple[str, str], list[bytes]] = {}
        for name in collection.channels:
            by_image = collection.catalog.vectors.of_images(name, list(paths))
            for image_id, blobs in by_image.items():
                found[(name, paths[image_id])] = blobs
        return found


def index(root: Path, photos: Path, engine: str, **kwargs: Any) -> dict[str, Any]:
    with Collection(root, channels=list(CONFIGS), configs=CONFIGS, batch_size=3,
                    engine=engine, **kwargs) as collection:
        report = collection.index([photos])
        records = [(record.id, record.path) for record in collection.images()]
    return {"added": report.added, "failures": sorted(report.failures), "records": records}


def test_a_ray_index_is_the_local_index(cluster: str, photos: Path, tmp_path: Path) -> None:
    local = index(tmp_path / "local", photos, "local")
    distributed = index(tmp_path / "ray", photos, "ray")
    assert local["added"] == distributed["added"] == 14
    assert [path for path, _ in distributed["failures"]] == [str(photos / "broken.jpg")]
    assert distributed == local  # same ids, same failures with the same reasons
    local_rows, ray_rows = rows(tmp_path / "local"), rows(tmp_path / "ray")
    assert {channel for channel, _ in ray_rows} == set(CONFIGS)
    assert ray_rows == local_rows  # every row of every channel, byte for byte
    # Indexing again on the cluster finds nothing new to do.
    again = index(tmp_path / "ray", photos, "ray")
    assert again["added"] == 0 and rows(tmp_path / "ray") == ray_rows


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
        cluster: str, photos: Path, tmp_path: Path) -> None:
    import ray_fault  # registers the channel here; the workers import it from its config

    ray_fault.register()
    marker = tmp_path / "killed"
    configs = {"global": THUMBNAIL,
               ray_fault.NAME: ray_fault.CrashOnceConfig(marker=str(marker))}
    try:
        with Collection(tmp_path / "ray", channels=list(configs), configs=configs,
                        batch_size=2, engine=RayEngine(cluster)
                        ) as collection:
            report = collection.index([photos])
            paths = [record.path for record in collection.images()]
            counts = {name: collection.catalog.vectors.count(name) for name in configs}
            killed_pid = int(marker.read_text())
        assert killed_pid not in (os.getpid(), 0)  # a worker died, not this process
        assert report.added == 14 and len(paths) == len(set(paths)) == 14
        assert counts == {"global": 14, ray_fault.NAME: 14}
        with Collection(tmp_path / "local", channels=list(configs), configs=configs,
                        engine="local") as reference:
            reference.index([photos])
        ours, theirs = rows(tmp_path / "ray"), rows(tmp_path / "local")
        assert ours == theirs
    finally:
        CHANNELS.remove(ray_fault.NAME)


def test_a_file_that_kills_every_worker_stops_the_run_and_keeps_the_rest(
        cluster: str, photos: Path, tmp_path: Path) -> None:
    import ray_fault

    ray_fault.register()
    configs = {"global": THUMBNAIL, ray_fault.NAME: ray_fault.CrashOnceConfig(
        marker=str(tmp_path / "killed"), always=True)}
    try:
        with Collection(tmp_path / "c", channels=list(configs), configs=configs,
                        engine="ray") as collection:
            with pytest.raises(LookalikeError, match="failed 4 times or a node was lost"):
                collection.index([photos / "plain"])
            assert collection.count() == 0  # nothing half-written
    finally:
        CHANNELS.remove(ray_fault.NAME)


def test_another_cluster_than_the_one_joined_is_refused(cluster: str, photos: Path,
                                                        tmp_path: Path) -> None:
    with (Collection(tmp_path / "c", configs={"global": THUMBNAIL},
                     engine=RayEngine("10.255.255.1:6379")) as collection,
          pytest.raises(LookalikeError, match="already joined the one at")):
        collection.index([photos / "plain"])


def test_the_cli_indexes_on_the_cluster(cluster: str, photos: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    col = str(tmp_path / "c")
    assert main(["index", str(photos / "plain"), "-c", col, "--extractor", "thumbnail",
                 "--engine", "ray", "--address", cluster, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 4 and report["failures"] == []
    with Collection(col).open() as collection:
        vectors = collection.vectors([record.path for record in collection.images()])
        assert vectors.shape == (4, 192) and np.all(np.isfinite(vectors))


def test_shards_as_ray_actors_rank_as_one_collection_and_say_when_one_is_down(
        cluster: str, photos: Path, tmp_path: Path) -> None:
    index(tmp_path / "whole", photos, "local")
    split_collection(tmp_path / "whole", tmp_path / "shards", 3)
    queries: list[Any] = [*sorted(photos.glob("scene*.png"))[:4], another_view(scene(3))]
    with Collection(tmp_path / "whole").open() as whole, \
            ShardedCollection(tmp_path / "shards", address=cluster, timeout_s=20) as sharded:
        for channel in ("global", "regions", "local", "auto"):
            for query in queries:
                expected = whole.search(query, k=5, channel=channel)
                found = sharded.search(query, k=5, channel=channel)
                assert not found.partial
                assert [(r.image_id, r.path, r.evidence.as_dict().get("local"))
                        for r in found.results] == [
                    (r.image_id, r.path, r.evidence.as_dict().get("local")) for r in expected]
        ray.kill(sharded._actors[2])
        for channel in ("global", "local"):
            found = sharded.search(queries[0], k=5, channel=channel)
            assert found.partial and list(found.missing) == ["shard-002"]
            assert found.results and all(shard_of(r.path, 3) != 2 for r in found.results)


def test_a_channel_without_settings_is_refused_before_anything_runs() -> None:
    channel = make_channel("global", THUMBNAIL)
    del channel.config  # type: ignore[attr-defined]
    with pytest.raises(LookalikeError, match="has no config"):
        ChannelRecipe.of(channel)


def test_engine_choices_are_checked() -> None:
    with pytest.raises(ValidationError, match="engine among"):
        make_engine("spark")
    with pytest.raises(ValidationError, match="no address for the local engine"):
        make_engine("local", "127.0.0.1:6379")
    assert make_engine("ray", "auto") == RayEngine("auto")


def test_shards_named_by_a_relative_path_open_on_the_cluster_or_say_why_not(
        cluster: str, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The actors run in another working folder: the shards must be found all the same.
    index(tmp_path / "whole", photos, "local")
    split_collection(tmp_path / "whole", tmp_path / "shards", 2)
    monkeypatch.chdir(tmp_path)
    query = sorted(photos.glob("scene*.png"))[0]
    with ShardedCollection("shards", address=cluster, timeout_s=20) as sharded:
        assert sharded.search(query, k=1).results[0].path == str(query)
    (tmp_path / "shards" / "shard-001" / "manifest.json").unlink()
    with pytest.raises(CollectionError, match=r"did not open on the Ray cluster: .*shard-001"):
        ShardedCollection("shards", address=cluster, timeout_s=20).open()
