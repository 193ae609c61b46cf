"""The indexing stages: one image's trouble in any channel never stops a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import THUMBNAIL, pattern
from PIL import Image

from lookalike import Collection
from lookalike.collection import FloatRows, RegionsChannelConfig, VectorChannel
from lookalike.collection.pipeline import Job, StageTimes, extract_stage
from lookalike.images import Box
from lookalike.results import Hit


class Picky(VectorChannel):
    """Embeds an image as its mean colour, and breaks on square images, as a model might."""

    name = "picky"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    @property
    def dim(self) -> int:
        return 3

    def manifest(self) -> dict[str, Any]:
        return {}

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        if any(image.shape[0] == image.shape[1] for image in images):
            raise RuntimeError("expected a landscape image, got a square one")
        return [image.reshape(-1, 3).mean(axis=0, dtype=np.float32)[None, :] + 1
                for image in images]

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        return self.extract([image])[0]

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        return []


def test_one_image_that_breaks_a_channel_fails_alone() -> None:
    jobs = [Job(key=f"img{i}", image=pattern(i, (64, 64) if i == 2 else (96, 72)))
            for i in range(4)]
    channel = Picky()
    assert isinstance(channel.codec, FloatRows)
    extract_stage(jobs, [channel], StageTimes())
    assert [job.error for job in jobs] == [
        None, None, "the 'picky' channel failed on it (expected a landscape image, got a "
                    "square one)", None]
    assert all("picky" in job.vectors for job in jobs if not job.error)
    assert all(job.image is None for job in jobs)  # memory stays flat


def test_tiny_images_do_not_stop_a_run_with_regions(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    sizes = [(1, 1), (1, 2), (2, 1), (1, 50), (50, 1), (1, 10000), (10000, 1), (2, 3)]
    for width, height in sizes:
        noise = np.random.default_rng(width * height).integers(0, 255, (height, width, 3))
        Image.fromarray(noise.astype(np.uint8)).save(folder / f"t{width}x{height}.png")
    Image.fromarray(pattern(1)).save(folder / "photo.png")
    with Collection(tmp_path / "c", channels=["global", "regions"],
                    configs={"global": THUMBNAIL,
                             "regions": RegionsChannelConfig(extractor="thumbnail",
                                                             max_objects=0)}) as collection:
        report = collection.index([folder])
    assert report.added == len(sizes) + 1 and report.failures == []


@pytest.mark.parametrize("batch", [1, 32])
def test_a_channel_failure_is_reported_with_the_file_and_the_rest_is_indexed(
        tmp_path: Path, batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from lookalike.collection import GlobalChannel

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(pattern(i, (64, 64) if i == 3 else (96, 72))).save(folder / f"{i}.png")
    original = GlobalChannel.extract

    def picky(self: GlobalChannel, images: list[np.ndarray]) -> list[np.ndarray]:
        if any(image.shape[0] == image.shape[1] for image in images):
            raise ValueError("square")
        return original(self, images)

    monkeypatch.setattr(GlobalChannel, "extract", picky)
    with Collection(tmp_path / "c", configs={"global": THUMBNAIL}, batch_size=batch) as c:
        report = c.index([folder])
        assert report.added == 4
        assert report.failures == [(str(folder / "3.png"),
                                    "the 'global' channel failed on it (square)")]
        assert [Path(r.path).name for r in c.failures()] == ["3.png"]


class Recording:
    """A sink that keeps what each batch held, in the order the batches came."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, bytes]]] = []

    def write(self, jobs: Any, counts: Any) -> None:
        self.batches.append([(job.key, job.vectors["picky"].tobytes()) for job in jobs])


def test_workers_extract_side_by_side_and_write_in_order() -> None:
    """Two workers give the same rows as one, in the same order, each image once, and the
    extract stage is timed per channel; a worker count below one is refused."""
    from lookalike.collection.pipeline import run_local

    def jobs() -> list[Job]:
        return [Job(key=f"img{i:02d}", source=pattern(i, (96, 72))) for i in range(23)]

    written = {}
    for workers in (1, 2):
        sink = Recording()
        counts, times = run_local(jobs(), sink=sink, channels=[Picky()], batch_size=32,
                                  workers=workers)
        written[workers] = [row for batch in sink.batches for row in batch]
        assert not counts.failures
        assert set(times.as_dict()) >= {"extract", "extract.picky"}
        # A short run is split evenly, so one worker does not wait on the other's full batch.
        assert [len(batch) for batch in sink.batches] == ([23] if workers == 1 else [12, 11])
    assert [key for key, _ in written[1]] == [f"img{i:02d}" for i in range(23)]
    assert written[2] == written[1]
    with pytest.raises(ValueError, match="expected workers >= 1, got 0"):
        run_local(jobs(), sink=Recording(), channels=[Picky()], workers=0)
