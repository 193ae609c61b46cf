"""kill -9 in the middle of indexing leaves a usable collection, and the next run resumes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import THUMBNAIL, pattern, write_images

from lookalike import Collection

# The child indexes with a deliberately slow extractor so that the kill lands mid-run.
CHILD = textwrap.dedent(
    """
    import sys, time
    from lookalike import Collection, GlobalChannelConfig
    from lookalike.extractors.thumbnail import ThumbnailExtractor

    class Slow(ThumbnailExtractor):
        def _embed(self, images):
            time.sleep(0.05)
            return super()._embed(images)

    config = GlobalChannelConfig(extractor="thumbnail")
    collection = Collection(sys.argv[1], batch_size=4, configs={"global": config}).open()
    collection.channels["global"].extractor = Slow()
    collection.index([sys.argv[2]])
    """
)


def committed_images(catalog: Path) -> int:
    try:
        with sqlite3.connect(catalog, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def kill_when_committed(script: str, root: Path, folder: Path, count: int,
                        timeout: float = 120) -> None:
    """Run ``script`` (root, folder) in a child and kill -9 it once ``count`` images are in."""
    child = subprocess.Popen([sys.executable, "-c", script, str(root), str(folder)],
                             env={**os.environ}, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while committed_images(root / "catalog.sqlite") < count and time.monotonic() < deadline:
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL


def test_kill_during_indexing_then_resume(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_images(folder, range(200))
    root = tmp_path / "c"
    kill_when_committed(CHILD, root, folder, 20, timeout=60)

    with Collection(root, configs={"global": THUMBNAIL}).open() as collection:
        survived = collection.info()["images"]
        assert 20 <= survived < 200
        # Every image that survived has its vector: batches are all-or-nothing.
        assert collection.info()["channels"]["global"]["vectors"] == survived
        assert len(collection.search(pattern(0), k=5)) == 5
        report = collection.index([folder])
        assert report.added == 200 - survived and report.unchanged == survived
        assert collection.info()["images"] == 200
        assert Path(collection.search(pattern(150), k=1)[0].path).name == "img150.png"


def test_damaged_index_cache_is_rebuilt_from_the_catalog(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_images(folder, range(10))
    root = tmp_path / "c"
    with Collection(root, configs={"global": THUMBNAIL}).open() as collection:
        collection.index([folder])
    cache = root / "cache" / "global"
    current = cache / (cache / "CURRENT").read_text()
    (current / "index.bin").write_bytes(b"garbage")
    with Collection(root, configs={"global": THUMBNAIL}).open() as collection:
        assert Path(collection.search(pattern(4), k=1)[0].path).name == "img004.png"
