"""The indexing pipeline: read → decode → extract → write.

Each stage is a plain function over one job or one batch of jobs, with no
hidden state, so the same stages run here in one process (threads overlap file
reading and decoding with inference) or, unchanged, as the map steps of a
distributed engine such as Ray Data. The write stage hands each batch to a
:class:`Sink`; :class:`CatalogSink` commits it to the collection's catalog, and
another runner may bring its own. A job that fails at any stage carries its
error to the write stage, which records it; the rest of the batch goes on.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from lookalike.annotations.embedded import EmbeddedText, read_embedded_text
from lookalike.collection.channels import Channel
from lookalike.errors import ImageError, ValidationError, expect
from lookalike.images import (
    DEFAULT_MAX_PIXELS,
    ImageInput,
    decode_image_and_size,
    load_image,
    read_image_bytes,
)
from lookalike.storage import FILE_SOURCES, Catalog, ImageRecord, Transaction

ProgressCallback = Callable[[int], None]
T = TypeVar("T")
U = TypeVar("U")


@dataclass
class Job:
    """One image on its way through the stages."""

    key: str
    path: Path | None = None
    source: ImageInput | None = None  # for in-memory inputs
    size: int | None = None
    mtime_ns: int | None = None
    data: bytes | None = None
    sha256: str | None = None
    image: np.ndarray | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None
    known: ImageRecord | None = None  # the catalog's record of this key, if any
    missing: frozenset[str] = frozenset()  # channels the known image has not been through
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    embedded: EmbeddedText | None = None  # keywords, description and date in the file

    @property
    def unchanged_content(self) -> bool:
        # Only an image indexed fine before can be skipped; a failed one is always retried.
        return (self.sha256 is not None and self.known is not None
                and self.known.status == "indexed" and self.sha256 == self.known.sha256)

    def wants(self, channel: str) -> bool:
        """Whether ``channel`` must extract this image: every channel for new or changed
        content, only the missing ones for bytes indexed before (a channel added later, or
        one a killed run did not reach)."""
        return not self.unchanged_content or channel in self.missing

    @property
    def needs_pixels(self) -> bool:
        return not self.unchanged_content or bool(self.missing)


class StageTimes:
    """Seconds spent in each stage, summed over the worker threads; ``extract.<channel>``
    splits the extract stage by channel."""

    STAGES = ("read", "decode", "extract", "write")

    def __init__(self) -> None:
        self._seconds = dict.fromkeys(self.STAGES, 0.0)
        self._lock = threading.Lock()

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - started)

    def add(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` measured elsewhere (another process's worker)."""
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)


def read_stage(job: Job, times: StageTimes) -> Job:
    """Read the file's bytes and hash them; in-memory sources are hashed as given."""
    with times.timing("read"):
        _read(job)
    return job


def _read(job: Job) -> None:
    try:
        if job.path is not None:
            # Not Path.read_bytes: a file swapped for a FIFO since the listing would block it
            job.data = read_image_bytes(job.path, name=job.key)
            job.size = len(job.data)
        elif isinstance(job.source, bytes):
            job.data = job.source
            job.size = len(job.data)
        if job.data is not None:
            job.sha256 = hashlib.sha256(job.data).hexdigest()
    except ImageError as error:
        job.error = error.reason
    except OSError as error:
        job.error = f"cannot read file ({error.strerror or error})"


def decode_stage(
    job: Job, times: StageTimes, max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> Job:
    """Decode to RGB uint8. Skipped when the content hash shows nothing changed.

    ``min_side`` lets JPEGs decode at a reduced scale (see :func:`load_image`).
    """
    if job.error or not job.needs_pixels:
        return job
    with times.timing("decode"):
        _decode(job, max_pixels, min_side)
    return job


def _decode(job: Job, max_pixels: int, min_side: int | None) -> None:
    try:
        if job.data is not None:
            job.image, (job.width, job.height) = decode_image_and_size(
                job.data, source=job.key, max_pixels=max_pixels, min_side=min_side)
            job.embedded = _embedded_text(job.data, job.key)
        else:
            job.image = load_image(job.source, max_pixels=max_pixels, name=job.key)  # type: ignore[arg-type]
            job.sha256 = hashlib.sha256(job.image.tobytes()).hexdigest()
            job.size = job.image.nbytes
            job.height, job.width = job.image.shape[:2]
    except ImageError as error:
        job.error = error.reason
    except ValidationError as error:  # an in-memory array of the wrong shape or type
        job.error = str(error)
    job.data = None  # the bytes are no longer needed; keep memory flat


def _embedded_text(data: bytes, key: str) -> EmbeddedText:
    """The file's keywords and description; metadata damaged in a way nobody foresaw costs
    the text, never the pixels that decoded."""
    try:
        return read_embedded_text(data, name=key)
    except Exception:
        return EmbeddedText()


def extract_stage(jobs: Sequence[Job], channels: Sequence[Channel], times: StageTimes) -> None:
    """Run every channel's extractor on the decoded images of a batch.

    Whatever one image does to a channel (an exception from a model or from a degenerate
    size, a blank embedding), only that image fails, named with the channel and the
    reason; the rest of the batch goes on. A file one channel cannot use is not indexed
    in the others either: it is reported and retried on the next run, like an unreadable
    file, instead of being half searchable.
    """
    ready = [job for job in jobs if job.image is not None and not job.error]
    # One list object for every channel: a channel may reuse what another computed for
    # this very batch (the text channel takes the global channel's class probabilities).
    images = [job.image for job in ready if job.image is not None]
    with times.timing("extract"):
        for channel in channels:
            wanted = [job for job in ready if job.wants(channel.name)]
            pixels = images if len(wanted) == len(ready) else [
                job.image for job in wanted if job.image is not None]
            if not wanted:
                continue
            with times.timing(f"extract.{channel.name}"):
                passed = _extract_batch(channel, wanted, pixels)
            if not passed:
                ready = [job for job in ready if not job.error]
                images = [job.image for job in ready if job.image is not None]
    for job in jobs:
        job.image = None


def _extract_batch(channel: Channel, jobs: Sequence[Job], images: list[np.ndarray]) -> bool:
    """One channel over a batch; on a failure, each image alone, to find the ones at fault.
    True when every image passed."""
    try:
        found = channel.extract(images)
    except Exception as error:  # a model's failure on one image, whatever it raises
        if len(jobs) > 1:
            for job, image in zip(jobs, images, strict=True):
                _extract_batch(channel, [job], [image])
        else:
            jobs[0].error = f"the '{channel.name}' channel failed on it ({_described(error)})"
        return False
    for job, extracted in zip(jobs, found, strict=True):
        if channel.codec.is_blank(extracted):
            job.error = f"blank image: its '{channel.name}' embedding is empty"
        else:
            job.vectors[channel.name] = extracted
    return not any(job.error for job in jobs)


def _described(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


OUTCOMES = ("added", "updated", "completed", "unchanged", "failed")


@dataclass
class WriteCounts:
    """What became of each image (``outcomes``: key -> one of :data:`OUTCOMES`), and why
    each failure failed. A later pass over the same key overrides an earlier one's outcome
    (an image added and then completed is added)."""

    outcomes: dict[str, str] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def record(self, key: str, outcome: str) -> None:
        earlier = self.outcomes.get(key)
        if outcome == "completed" and earlier in ("added", "updated"):
            return  # finished in the same run: still what it was
        self.outcomes[key] = outcome

    def count(self, outcome: str) -> int:
        return sum(1 for found in self.outcomes.values() if found == outcome)


class Sink(Protocol):
    """Where the write stage puts a batch: all of it is recorded, or none of it."""

    def write(self, jobs: Sequence[Job], counts: WriteCounts) -> None: ...


class CatalogSink:
    """Commits each batch to a collection's catalog in one transaction, through every
    channel's :meth:`~lookalike.collection.channels.Channel.store`."""

    def __init__(self, catalog: Catalog, channels: Sequence[Channel]) -> None:
        self.catalog = catalog
        self.channels = channels

    def write(self, jobs: Sequence[Job], counts: WriteCounts) -> None:
        with self.catalog.transaction() as conn:
            for job in jobs:
                if job.error:
                    self._failed(conn, job)
                    counts.failures.append((job.key, job.error))
                    counts.record(job.key, "failed")
                elif job.unchanged_content and job.known is not None:
                    self.catalog.images.touch(conn, job.known.id, job.size or 0,
                                              job.mtime_ns or 0)
                    self._store(conn, job.known.id, job)
                    counts.record(job.key, "completed" if job.vectors else "unchanged")
                else:
                    self._indexed(conn, job)
                    counts.record(job.key, "updated" if job.known is not None else "added")
            for channel in self.channels:
                channel.after_write(self.catalog, conn)

    def _failed(self, conn: Transaction, job: Job) -> None:
        image_id = self.catalog.images.upsert(
            conn, path=job.key, sha256=job.sha256, size=job.size, mtime_ns=job.mtime_ns,
            width=None, height=None, status="failed", error=job.error)
        # A file that was fine before and is broken now must not be found by its old
        # content any more, nor by what the models or the file said about it (the user's
        # own text stays: it is about the photo, not the bytes).
        self.catalog.vectors.delete_of_image(conn, image_id)
        self.catalog.images.unmark(conn, image_id)
        self.catalog.annotations.delete_sources(conn, image_id, FILE_SOURCES)

    def _indexed(self, conn: Transaction, job: Job) -> None:
        image_id = self.catalog.images.upsert(
            conn, path=job.key, sha256=job.sha256, size=job.size, mtime_ns=job.mtime_ns,
            width=job.width, height=job.height, status="indexed", error=None)
        self.catalog.images.unmark(conn, image_id)
        for channel in self.channels:
            if channel.name not in job.vectors:
                # Not reached by this pass (a tree still training): the old content's rows
                # must not stand for the new content meanwhile.
                self.catalog.vectors.replace(conn, channel.name, image_id, [])
        self._store(conn, image_id, job)
        self.catalog.annotations.replace(conn, image_id, "embedded",
                                         embedded_annotations(job.embedded))

    def _store(self, conn: Transaction, image_id: int, job: Job) -> None:
        """The rows of every channel that extracted this image, each marked done."""
        done = [channel for channel in self.channels if channel.name in job.vectors]
        for channel in done:
            channel.store(self.catalog, conn, image_id, job.vectors[channel.name])
        self.catalog.images.mark(conn, image_id, [channel.name for channel in done])


def write_stage(sink: Sink, jobs: Sequence[Job], times: StageTimes, counts: WriteCounts) -> None:
    """Record a batch through ``sink``: every job in it is recorded, or none is."""
    with times.timing("write"):
        sink.write(jobs, counts)


def embedded_annotations(found: EmbeddedText | None) -> list[tuple[str, str, float | None]]:
    """The catalog's (kind, text, score) rows for the text found inside an image file."""
    if found is None:
        return []
    rows: list[tuple[str, str, float | None]] = [("keyword", word, None)
                                                  for word in found.keywords]
    if found.description:
        rows.append(("description", found.description, None))
    if found.taken:
        rows.append(("taken", found.taken, None))
    return rows


def run_local(
    jobs: Iterable[Job], *, sink: Sink, channels: Sequence[Channel],
    batch_size: int = 32, workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: ProgressCallback | None = None,
) -> tuple[WriteCounts, StageTimes]:
    """Run the four stages in this process.

    ``workers`` threads (default: one per core) read and decode ahead, and as many extract
    whole batches side by side: the models, SIFT and the image operations release the GIL,
    so each thread keeps a core busy. Batches are written in order, by this thread, while
    the next ones extract. At most ``workers`` batches extract and two batches' worth of
    decoded images wait at any time, so memory stays flat however long the run.
    """
    workers = resolve_workers(workers)
    if isinstance(jobs, Sized) and workers > 1:
        # A short run split evenly, so no worker idles while another finishes a full batch.
        batch_size = max(1, min(batch_size, -(-len(jobs) // workers)))
    times, counts = StageTimes(), WriteCounts()
    min_side = decode_min_side(channels)

    def prepare(job: Job) -> Job:
        return decode_stage(read_stage(job, times), times, max_pixels, min_side)

    def extract(batch: list[Job]) -> list[Job]:
        extract_stage(batch, channels, times)
        return batch

    with (ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookalike-decode")
          as readers,
          ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookalike-extract")
          as extractors):
        decoded = _prefetch(readers, prepare, jobs, depth=batch_size * 2)
        for batch in _prefetch(extractors, extract, _batched(decoded, batch_size), depth=workers):
            write_stage(sink, batch, times, counts)
            if progress is not None:
                progress(len(batch))
    return counts, times


def resolve_workers(workers: int | None) -> int:
    """``workers`` checked, or one per core for None."""
    if workers is None:
        return default_workers()
    expect(isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1,
           f"expected workers >= 1, got {workers!r}")
    return workers


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def decode_min_side(channels: Sequence[Channel], *, query: bool = False) -> int | None:
    """The smallest decode that serves every channel; None (full size) if any needs it."""
    sides = [channel.query_min_side if query else channel.min_image_side for channel in channels]
    if not sides or any(side is None for side in sides):
        return None
    return max(side for side in sides if side is not None)


def _prefetch(
    pool: ThreadPoolExecutor, work: Callable[[T], U], items: Iterable[T], depth: int
) -> Iterator[U]:
    """Like pool.map, but only ``depth`` items ahead, so memory stays bounded."""
    pending = iter(items)
    window = [pool.submit(work, item) for item in islice(pending, depth)]
    while window:
        done = window.pop(0).result()
        for item in islice(pending, 1):
            window.append(pool.submit(work, item))
        yield done


def _batched(items: Iterable[Job], size: int) -> Iterator[list[Job]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
