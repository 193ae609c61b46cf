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
from lookalike.collection.pipeline import CatalogSink, Job, Sink, run_local
from lookalike.discovery import discover_images
from lookalike.errors import ImageError, ValidationError, expect
from lookalike.images import NOT_FOUND, ImageInput, load_image
from lookalike.paths import catalog_key
from lookalike.storage import Catalog, ImageRecord

Progress = Callable[[int, int], None]


@dataclass
class IndexReport:
    """What one indexing run did. ``failures`` holds (path, reason) for every file that failed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    processed: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    prepare_seconds: float = 0.0  # loading models and training a vocabulary, once

    @property
    def images_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "removed": self.removed, "failed": len(self.failures),
            "failures": [{"path": path, "reason": reason} for path, reason in self.failures],
            "seconds": round(self.seconds, 3), "images_per_s": round(self.images_per_s, 2),
            "stage_seconds": {key: round(value, 3) for key, value in self.stage_seconds.items()},
            "prepare_seconds": round(self.prepare_seconds, 3),
        }


class Indexer:
    """Indexes files and in-memory images into a catalog through its channels."""

    def __init__(self, catalog: Catalog, channels: Mapping[str, Channel], *, max_pixels: int,
                 batch_size: int, sink: Sink | None = None) -> None:
        self.catalog = catalog
        self.channels = channels
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self.sink = sink or CatalogSink(catalog, list(channels.values()))

    def index(self, paths: Iterable[str | os.PathLike[str]], *, recursive: bool = True,
              progress: Progress | None = None) -> IndexReport:
        """See :meth:`lookalike.Collection.index`."""
        started = time.perf_counter()
        roots = [Path(catalog_key(p)) for p in paths]
        found = discover_images(roots, recursive=recursive)
        report = IndexReport(failures=[(error.source, error.reason) for error in found.failures])
        files = self._named(found.files, report)
        keys = [str(path) for path in files]
        jobs = self._plan(files, self.catalog.images.by_path(keys), report)
        report.removed = self._remove_missing(roots, set(keys), found.failures, recursive)
        self._run(jobs, report, progress)
        # One-off model loading and training are not indexing work; leave them out of
        # images/s and report them apart.
        report.seconds = time.perf_counter() - started - report.prepare_seconds
        return report

    def add(self, items: Mapping[str, ImageInput], progress: Progress | None = None
            ) -> IndexReport:
        """See :meth:`lookalike.Collection.add`."""
        started = time.perf_counter()
        report = IndexReport()
        known = self.catalog.images.by_path(items.keys())
        jobs = [Job(key=name, source=source, known=known.get(name))
                for name, source in items.items()]
        self._run(jobs, report, progress)
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

    @staticmethod
    def _plan(files: Sequence[Path], known: Mapping[str, ImageRecord],
              report: IndexReport) -> list[Job]:
        jobs = []
        for path in files:
            key = str(path)
            try:
                stat = path.stat()
            except OSError as error:
                report.failures.append((key, f"cannot stat file ({error.strerror})"))
                continue
            record = known.get(key)
            if (record is not None and record.status == "indexed" and record.size == stat.st_size
                    and record.mtime_ns == stat.st_mtime_ns):
                report.unchanged += 1
                continue
            jobs.append(Job(key=key, path=path, mtime_ns=stat.st_mtime_ns, known=record))
        return jobs

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

    def _run(self, jobs: list[Job], report: IndexReport, progress: Progress | None) -> None:
        expect(isinstance(self.batch_size, int) and self.batch_size >= 1,
               f"expected a batch size of at least 1, got {self.batch_size!r}")
        report.prepare_seconds = self._prepare_channels(jobs) if jobs else 0.0
        total, done = len(jobs), 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done, total)

        advance(0)
        counts, times = run_local(jobs, sink=self.sink, channels=list(self.channels.values()),
                                  batch_size=self.batch_size, max_pixels=self.max_pixels,
                                  progress=advance)
        report.added += counts.added
        report.updated += counts.updated
        report.unchanged += counts.unchanged
        report.failures.extend(counts.failures)
        report.processed = total
        report.stage_seconds = times.as_dict()

    def _prepare_channels(self, jobs: Sequence[Job]) -> float:
        """Load the models and train what needs training on a sample of ``jobs``; returns
        the seconds it took, which are start-up cost, not indexing speed."""
        started = time.perf_counter()
        for channel in self.channels.values():
            channel.prepare()
            if channel.needs_training:
                count = min(channel.training_images, len(jobs))
                channel.train(self._sample_images(jobs, count, channel.min_image_side), count)
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


def _encodable(text: str) -> bool:
    # os.walk gives undecodable bytes as lone surrogates, which SQLite cannot store.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
