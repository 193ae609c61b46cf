"""Bringing a collection in step with files: what to index, what to skip, what to remove.

Indexing is incremental: a file whose size and modification time are unchanged is skipped
without being read; a file whose content hash is unchanged is not re-embedded; a changed
file is re-embedded; a file gone from an indexed folder is removed. The work itself runs
through the pipeline's stages (:mod:`lookalike.collection.pipeline`), one transaction per
batch, so a crash loses at most the batch in flight and the next run resumes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection.channels import Channel
from lookalike.collection.engines import Engine, LocalEngine
from lookalike.collection.exclusions import (
    Exclusions,
    linked_twice,
    read_exclusions,
    read_roots,
    record_roots,
    write_exclusions,
)
from lookalike.collection.pipeline import (
    CatalogSink,
    Job,
    Sink,
    WriteCounts,
    default_workers,
    resolve_workers,
)
from lookalike.discovery import discover_images
from lookalike.errors import ImageError, ValidationError, expect
from lookalike.images import NOT_FOUND, ImageInput, load_image
from lookalike.paths import catalog_key
from lookalike.progress import counted
from lookalike.runtime import apply_thread_limits, threads_shared_by
from lookalike.storage import Catalog, ImageRecord

Progress = Callable[[int, int], None]


@dataclass
class IndexReport:
    """What one indexing run did. ``failures`` holds (path, reason) for every file that failed;
    ``completed`` counts images indexed before that went through a channel they lacked (a
    run killed while a vocabulary tree trained)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    processed: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    prepare_seconds: float = 0.0  # loading models and training a vocabulary, once
    completed: int = 0
    #: (named path, the exclusion that keeps it out): nothing under it was indexed.
    kept_out: list[tuple[str, str]] = field(default_factory=list)
    #: (named path, the path it is indexed under): a link to what the collection holds
    #: already, not indexed a second time.
    same_as: list[tuple[str, str]] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "completed": self.completed, "removed": self.removed,
            "failed": len(self.failures),
            "failures": [{"path": path, "reason": reason} for path, reason in self.failures],
            "seconds": round(self.seconds, 3), "images_per_s": round(self.images_per_s, 2),
            "stage_seconds": {key: round(value, 3) for key, value in self.stage_seconds.items()},
            "prepare_seconds": round(self.prepare_seconds, 3),
            "wall_seconds": round(self.seconds + self.prepare_seconds, 3),
            "kept_out": [{"path": path, "excluded_by": pattern}
                         for path, pattern in self.kept_out],
            "same_as": [{"path": path, "indexed_as": other} for path, other in self.same_as],
        }


class Indexer:
    """Indexes files and in-memory images into a catalog through its channels.

    A run holds the collection's write lock from planning to the last batch. A channel that
    must learn first (the local channel's vocabulary tree) does not hold the others up: the
    other channels index and commit every batch, then the tree trains, then a second pass
    gives that channel the images; a kill while the tree trains loses no committed image,
    and the next run finishes what is missing (the catalog marks which channels each image
    went through).
    """

    def __init__(self, catalog: Catalog, channels: Mapping[str, Channel], *, max_pixels: int,
                 batch_size: int, workers: int | None = None, sink: Sink | None = None,
                 engine: Engine | None = None) -> None:
        self.catalog = catalog
        self.engine = engine or LocalEngine()
        self.channels = channels
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self.workers = workers
        self.sink = sink or CatalogSink(catalog, list(channels.values()))

    def index(self, paths: Iterable[str | os.PathLike[str]], *, recursive: bool = True,
              progress: Progress | None = None,
              keep: Callable[[str], bool] | None = None,
              exclude: Iterable[str] = ()) -> IndexReport:
        """See :meth:`lookalike.Collection.index`."""
        started = time.perf_counter()
        roots = [Path(catalog_key(p)) for p in paths]
        same_as = self._linked(roots)
        linked = {path for path, _ in same_as}
        roots = [root for root in roots if str(root) not in linked]
        found = discover_images(roots, recursive=recursive)
        with self.catalog.writing("indexing"):
            kept_out, swept = self._exclusions(roots, list(exclude))
            given = [str(root) for root in roots]
            present = [path for path in found.files if not kept_out.excludes(str(path), given)]
            report = IndexReport(failures=[
                (error.source, error.reason) for error in found.failures
                if (keep is None or keep(error.source))
                and not kept_out.excludes(error.source, given)],
                kept_out=kept_out.covering(given), same_as=same_as)
            files = self._named([path for path in present if keep is None or keep(str(path))],
                                report)
            counts = WriteCounts()
            jobs = self._plan(files, counts)
            # What ``keep`` refused is there all the same: never removed for it. What an
            # exclusion covers goes.
            report.removed = swept + self._remove_missing(
                roots, {str(f) for f in present}, found.failures, recursive)
            self._run(jobs, lambda: self._plan(files, WriteCounts()), counts, report, progress)
        # One-off model loading and training are not indexing work; leave them out of
        # images/s and report them apart.
        report.seconds = time.perf_counter() - started - report.prepare_seconds
        return report

    def _linked(self, roots: Sequence[Path]) -> list[tuple[str, str]]:
        """The roots that are links to what is indexed under another path (see
        :func:`linked_twice`), but for one whose own path holds images already (indexed
        so before): those stay in step as they were."""
        return [(root, other) for root, other
                in linked_twice([str(root) for root in roots], read_roots(self.catalog))
                if not self.catalog.images.by_path([root])
                and not self.catalog.images.paths_under(root.rstrip(os.sep))]

    def _exclusions(self, roots: Sequence[Path], exclude: list[str]) -> tuple[Exclusions, int]:
        """The exclusions in force for this run (a root named again is wanted back; new
        patterns join), the roots recorded, and how many images new patterns took out."""
        known = read_exclusions(self.catalog)
        wanted_back = [str(root) for root in roots if str(root) in known.patterns]
        updated = known.without(wanted_back).adding(exclude)
        all_roots = list(dict.fromkeys([*read_roots(self.catalog), *map(str, roots)]))
        with self.catalog.transaction() as conn:
            if updated != known:
                write_exclusions(conn, updated)
            record_roots(conn, all_roots)
        if not exclude:
            return updated, 0
        return updated, self.delete([record.id for record in self.catalog.images.all()
                                     if updated.excludes(record.path, all_roots)])

    def add(self, items: Mapping[str, ImageInput], progress: Progress | None = None
            ) -> IndexReport:
        """See :meth:`lookalike.Collection.add`."""
        started = time.perf_counter()
        report = IndexReport()
        with self.catalog.writing("indexing"):
            self._run(self._in_memory(items), lambda: self._in_memory(items), WriteCounts(),
                      report, progress)
        report.seconds = time.perf_counter() - started - report.prepare_seconds
        return report

    def delete(self, image_ids: Sequence[int]) -> int:
        if image_ids:
            with self.catalog.transaction() as conn:
                self.catalog.images.delete(conn, image_ids)
        return len(image_ids)

    # -- planning ---------------------------------------------------------------------------

    @staticmethod
    def _named(paths: Sequence[Path], report: IndexReport) -> list[Path]:
        """The paths SQLite can store; the others are reported."""
        files = []
        for path in paths:
            if _encodable(str(path)):
                files.append(path)
            else:
                report.failures.append((str(path).encode("utf-8", "replace").decode(),
                                        "file name is not valid UTF-8; rename the file"))
        return files

    def _plan(self, files: Sequence[Path], counts: WriteCounts) -> list[Job]:
        """A job per file that is new, changed, or not through every channel yet; the
        others are unchanged (skipped without being read)."""
        known = self.catalog.images.by_path([str(path) for path in files])
        done = self.catalog.images.channels_of(record.id for record in known.values())
        jobs = []
        for path in files:
            key = str(path)
            try:
                stat = path.stat()
            except OSError as error:
                counts.failures.append((key, f"cannot stat file ({error.strerror})"))
                continue
            record = known.get(key)
            missing = self._missing(record, done)
            if (record is not None and record.status == "indexed" and not missing
                    and (record.size, record.mtime_ns) == (stat.st_size, stat.st_mtime_ns)):
                counts.record(key, "unchanged")
                continue
            jobs.append(Job(key=key, path=path, mtime_ns=stat.st_mtime_ns, known=record,
                            missing=missing))
        return jobs

    def _in_memory(self, items: Mapping[str, ImageInput]) -> list[Job]:
        known = self.catalog.images.by_path(items.keys())
        done = self.catalog.images.channels_of(record.id for record in known.values())
        return [Job(key=name, source=source, known=known.get(name),
                    missing=self._missing(known.get(name), done))
                for name, source in items.items()]

    def _missing(self, record: ImageRecord | None, done: Mapping[int, set[str]]
                 ) -> frozenset[str]:
        if record is None:
            return frozenset(self.channels)
        return frozenset(self.channels) - done.get(record.id, set())

    def _remove_missing(self, roots: Sequence[Path], seen: set[str],
                        failures: Sequence[ImageError], recursive: bool) -> int:
        """Drop catalogued images that are gone from an indexed folder, or a named missing file.

        Only what was looked at and found missing goes: without ``recursive`` only a
        folder's direct children, and nothing under a folder that could not be listed.
        A missing named path removes that one entry, never a subtree, so an unmounted
        drive does not empty the collection.
        """
        unlisted = {path for error in failures if error.reason != NOT_FOUND
                    for path in self.catalog.images.paths_under(error.source)}
        gone: list[str] = []
        for root in roots:
            if not root.is_dir():
                continue
            gone += [path for path in self.catalog.images.paths_under(str(root))
                     if path not in seen and path not in unlisted
                     and (recursive or os.path.dirname(path) == str(root))]
        gone += [error.source for error in failures if error.reason == NOT_FOUND]
        records = self.catalog.images.by_path(gone)
        return self.delete([record.id for record in records.values()])

    # -- running ----------------------------------------------------------------------------

    def _run(self, jobs: list[Job], replan: Callable[[], list[Job]], counts: WriteCounts,
             report: IndexReport, progress: Progress | None) -> None:
        """Pass one: every channel that is ready. Then train the channels that must learn
        first, and give them the images in a second pass (``replan`` finds what is left)."""
        expect(isinstance(self.batch_size, int) and self.batch_size >= 1,
               f"expected a batch size of at least 1, got {self.batch_size!r}")
        workers = resolve_workers(self.workers)  # before any model loads
        with threads_shared_by(workers, default_workers()):
            try:
                self._passes(jobs, replan, counts, report, progress)
            finally:
                self.engine.close()

    def _passes(self, jobs: list[Job], replan: Callable[[], list[Job]], counts: WriteCounts,
                report: IndexReport, progress: Progress | None) -> None:
        report.prepare_seconds = self._load_models() if jobs else 0.0
        apply_thread_limits()  # again: the models just loaded their libraries (OpenCV)
        learners = [c for c in self.channels.values() if c.needs_training]
        adopting = [c for c in learners if not c.trains_on_images(len(jobs))]
        if adopting and jobs:  # ready at once (a given tree): one pass reads every image once
            report.prepare_seconds += self._train(adopting, jobs)
            learners = [c for c in learners if c not in adopting]
        ready = [c for c in self.channels.values() if c not in learners]
        if learners and jobs and not ready:  # nothing to index meanwhile: learn first
            report.prepare_seconds += self._train(learners, jobs)
            learners, ready = [], list(self.channels.values())
        step = _Progress(progress, len(jobs))
        times = self._pass(jobs, ready, counts, step)
        if learners and jobs:
            report.prepare_seconds += self._train(learners, jobs)
            # What pass one indexed, and what earlier runs left without these channels;
            # not the files that failed (retried on the next run, not twice in this one).
            second = [job for job in replan() if job.known is not None
                      and job.known.status == "indexed" and job.missing]
            step.grow(len(second))
            times = _added(times, self._pass(second, list(self.channels.values()), counts, step))
        report.added, report.updated = counts.count("added"), counts.count("updated")
        report.unchanged, report.completed = counts.count("unchanged"), counts.count("completed")
        report.failures.extend(counts.failures)
        report.processed = len(jobs)
        report.stage_seconds = times

    def _pass(self, jobs: list[Job], channels: list[Channel], counts: WriteCounts,
              step: _Progress) -> dict[str, float]:
        if not jobs:
            return {}
        found, times = self.engine.run(jobs, sink=self.sink, channels=channels,
                                       batch_size=self.batch_size, workers=self.workers,
                                       max_pixels=self.max_pixels, progress=step.advance)
        for key, outcome in found.outcomes.items():
            counts.record(key, outcome)
        counts.failures.extend(found.failures)
        return times.as_dict()

    def _load_models(self) -> float:
        """Load every channel's models; the seconds it took (start-up, not indexing)."""
        started = time.perf_counter()
        for channel in self.channels.values():
            channel.prepare()
        return time.perf_counter() - started

    def _train(self, learners: Sequence[Channel], jobs: Sequence[Job]) -> float:
        """Train what needs training on a sample of ``jobs``; the seconds it took."""
        started = time.perf_counter()
        for channel in learners:
            if channel.needs_training:  # another process may have trained it meanwhile
                count = min(channel.training_images, len(jobs))
                sample = self._sample_images(jobs, count, channel.min_image_side)
                channel.train(counted(f"reading images to train the {channel.name} channel",
                                      sample, count), count, run=len(jobs))
        return time.perf_counter() - started

    def _sample_images(self, jobs: Sequence[Job], count: int,
                       min_side: int | None) -> Iterator[np.ndarray]:
        """Up to ``count`` decoded images from a random sample of ``jobs``; bad files are
        skipped here and reported by the indexing run itself."""
        rng = np.random.default_rng(0)
        chosen = sorted(rng.choice(len(jobs), count, replace=False).tolist())
        for position in chosen:
            job = jobs[position]
            source = job.path if job.path is not None else job.source
            try:
                yield load_image(source, max_pixels=self.max_pixels, min_side=min_side)
            except (ImageError, ValidationError):
                continue


class _Progress:
    """``progress(done, total)`` over both passes of a run."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.advance(0)

    def grow(self, more: int) -> None:
        self.total += more
        self.advance(0)

    def advance(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)


def _added(first: dict[str, float], second: dict[str, float]) -> dict[str, float]:
    return {key: first.get(key, 0.0) + second.get(key, 0.0) for key in {*first, *second}}


def _encodable(text: str) -> bool:
    # os.walk gives undecodable bytes as lone surrogates, which SQLite cannot store.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
