"""One writer at a time; a kill while the vocabulary tree trains keeps what was indexed;
a catalog of the previous schema is upgraded in place."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import THUMBNAIL, pattern, write_images
from PIL import Image

from lookalike import Collection, LocalChannelConfig
from lookalike.errors import CollectionBusyError, CollectionError

SMALL = LocalChannelConfig(max_features=400, branching=6, depth=4)

# Holds the collection's write lock (as an indexing run does) until killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from lookalike import Collection, GlobalChannelConfig
    collection = Collection(sys.argv[1], configs={"global": GlobalChannelConfig(
        extractor="thumbnail")}).open()
    with collection.catalog.writing("indexing"):
        print("held", flush=True)
        time.sleep(60)
    """
)

# Indexes a folder into a global + local collection, waiting for the lock as long as it takes.
INDEXER = textwrap.dedent(
    """
    import sys
    from lookalike import Collection, GlobalChannelConfig, LocalChannelConfig
    configs = {"global": GlobalChannelConfig(extractor="thumbnail"),
               "local": LocalChannelConfig(max_features=400, branching=6, depth=4)}
    collection = Collection(sys.argv[1], configs=configs, batch_size=4, wait=None).open()
    report = collection.index([sys.argv[2]])
    collection.close()
    print(report.added, len(report.failures), flush=True)
    """
)

# Indexes with global + local, and stops dead (as kill -9 would) once the tree trains.
KILLED_WHILE_TRAINING = textwrap.dedent(
    """
    import os, signal, sys
    from lookalike import Collection, GlobalChannelConfig, LocalChannelConfig
    from lookalike.collection import LocalChannel

    def train(self, images, count, run=None):
        os.kill(os.getpid(), signal.SIGKILL)

    LocalChannel.train = train
    configs = {"global": GlobalChannelConfig(extractor="thumbnail"),
               "local": LocalChannelConfig(max_features=400, branching=6, depth=4)}
    Collection(sys.argv[1], configs=configs, batch_size=4).open().index([sys.argv[2]])
    """
)


def textured(seed: int) -> np.ndarray:
    """A scene with enough corners for SIFT: random rectangles on noise."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (240, 320, 3), dtype=np.uint8)
    for _ in range(40):
        x, y = rng.integers(0, 280), rng.integers(0, 200)
        w, h = rng.integers(10, 40), rng.integers(10, 40)
        image[y:y + h, x:x + w] = rng.integers(80, 255, 3)
    return image


def scenes(folder: Path, seeds: range) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        Image.fromarray(textured(seed)).save(folder / f"scene{seed:02d}.png")
    return folder


def child(script: str, *args: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})


def test_a_second_writer_is_told_who_is_busy_and_readers_never_wait(tmp_path: Path) -> None:
    root = tmp_path / "c"
    folder = tmp_path / "photos"
    write_images(folder, range(6))
    with Collection(root, configs={"global": THUMBNAIL}) as collection:
        collection.index([folder])
    holder = child(HOLDER, root)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with Collection(root, wait=0.3).open() as collection:
            started = time.perf_counter()
            assert len(collection.search(pattern(2), k=3)) == 3  # a reader never waits
            assert time.perf_counter() - started < 0.3
            with pytest.raises(CollectionBusyError, match=rf"indexing this collection "
                                                          rf"\(pid {holder.pid}\)"):
                collection.index([folder])
            with pytest.raises(CollectionBusyError, match="--wait"):
                collection.annotations.add(collection.images()[0].id, "tag", "held")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with Collection(root, wait=0.3).open() as collection:  # the kernel let go with the pid
        collection.annotations.add(collection.images()[0].id, "tag", "free")


def test_two_indexers_of_one_new_collection_take_turns(tmp_path: Path) -> None:
    """The issue's case: two runs of different folders into one new global + local
    collection used to train two trees, and one folder's words lost theirs."""
    root = tmp_path / "c"
    first, second = scenes(tmp_path / "a", range(0, 12)), scenes(tmp_path / "b", range(12, 24))
    runs = [child(INDEXER, root, first), child(INDEXER, root, second)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        assert out.split() == ["12", "0"]
    with Collection(root).open() as collection:
        local = collection.info()["channels"]["local"]
        assert local["vectors"] == 24 and local["vocabulary"] is not None
        for seed in (3, 17):  # one image of each folder finds itself by its words
            found = collection.search(textured(seed), k=1, channel="local")
            assert found[0].path.endswith(f"scene{seed:02d}.png")
            assert found[0].evidence.as_dict()["local"]["verified"]


def test_a_kill_while_the_tree_trains_keeps_what_was_indexed(tmp_path: Path) -> None:
    root, folder = tmp_path / "c", scenes(tmp_path / "scenes", range(16))
    killed = child(KILLED_WHILE_TRAINING, root, folder)
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    configs = {"global": THUMBNAIL, "local": SMALL}
    with Collection(root, configs=configs).open() as collection:
        info = collection.info()
        assert info["images"] == 16 and info["channels"]["global"]["vectors"] == 16
        assert info["channels"]["local"]["vocabulary"] is None  # the tree never got saved
        assert len(collection.search(textured(5), k=3)) == 3  # searchable meanwhile
        report = collection.index([folder])  # trains, then finishes what is missing
        assert (report.added, report.completed, report.unchanged) == (0, 16, 0)
        assert collection.info()["channels"]["local"]["vectors"] == 16
        assert collection.search(textured(5), k=1, channel="local")[0].path.endswith(
            "scene05.png")
        again = collection.index([folder])
        assert (again.completed, again.unchanged) == (0, 16)


def test_a_catalog_of_schema_1_is_upgraded_in_place(tmp_path: Path) -> None:
    root, folder = tmp_path / "c", scenes(tmp_path / "scenes", range(10))
    configs = {"global": THUMBNAIL, "local": SMALL}
    with Collection(root, configs=configs) as collection:
        collection.index([folder])
    with sqlite3.connect(root / "catalog.sqlite") as conn:  # as the previous version left it
        conn.execute("DROP TABLE image_channels")
        conn.execute("PRAGMA user_version=1")
    with Collection(root, configs=configs) as collection:
        report = collection.index([folder])  # every image counts as through every channel
        assert (report.unchanged, report.completed, report.added) == (10, 0, 0)
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert conn.execute("SELECT COUNT(*) FROM image_channels").fetchone()[0] == 20
        conn.execute("PRAGMA user_version=4")
    with pytest.raises(CollectionError, match="newer Lookalike"):
        Collection(root).open()


def test_words_of_another_tree_are_never_stored(tmp_path: Path) -> None:
    root, folder = tmp_path / "c", scenes(tmp_path / "scenes", range(10))
    with Collection(root, configs={"global": THUMBNAIL, "local": SMALL}) as collection:
        collection.index([folder])
        local = collection.channel("local")
        words = local.extract([textured(3)])[0]
        collection.catalog.set_meta("local.vocabulary_id", "another-tree")
        with pytest.raises(CollectionError, match="tree changed under this run"), \
                collection.catalog.transaction() as conn:
            local.store(collection.catalog, conn, collection.images()[0].id, words)
