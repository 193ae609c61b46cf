"""A collection: a folder that holds a catalog, vectors and a manifest.

Layout of a collection directory::

    manifest.json   what each channel stores and with which model (checked on open)
    catalog.sqlite  images and vectors, the source of truth (SQLite, WAL mode)
    cache/          derived search structures, rebuilt from the catalog when in doubt

Indexing is incremental: a file whose size and modification time are unchanged
is skipped without being read; a file whose content hash is unchanged is not
re-embedded; a changed file is re-embedded; a file gone from an indexed folder
is removed. Each batch is one transaction, so a crash loses at most the batch in
flight and the next run resumes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection.catalog import Catalog, ImageRecord
from lookalike.collection.channels import (
    Channel,
    GlobalChannel,
    GlobalChannelConfig,
    Hit,
    channel_from_manifest,
)
from lookalike.collection.manifest import Manifest, check_channel
from lookalike.errors import CollectionError, ImageError, ValidationError, expect
from lookalike.fusion import reciprocal_rank_fusion
from lookalike.images import (
    DEFAULT_MAX_PIXELS,
    NOT_FOUND,
    ImageInput,
    discover_images,
    load_image,
)
from lookalike.paths import catalog_key
from lookalike.pipeline import Job, ProgressCallback, decode_min_side, run_local

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class SearchResult:
    rank: int
    path: str
    score: float
    image_id: int
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "path": self.path, "score": round(self.score, 6),
                "image_id": self.image_id, **({"evidence": self.evidence} if self.evidence else {})}


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
        }


class Collection:
    """The public face of the engine: index images, search them, remove them.

    ``Collection(root, ...)`` only stores its arguments; :meth:`open` reads or
    creates the directory. Use it as a context manager to save the search cache
    and close the catalog on exit::

        with Collection("photos.lookalike").open() as collection:
            collection.index(["~/Pictures"])
            for result in collection.search("query.jpg", k=5):
                print(result.rank, result.score, result.path)
    """

    def __init__(
        self, root: str | os.PathLike[str], *, global_config: GlobalChannelConfig | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS, batch_size: int = 32,
    ) -> None:
        self.root = Path(root)
        self.global_config = global_config
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self._catalog: Catalog | None = None
        self.channels: dict[str, Channel] = {}

    # -- opening ----------------------------------------------------------------------------

    def open(self, *, create: bool = True) -> Collection:
        """Open the collection, creating it if asked. Checks the manifest against the config."""
        if self._catalog is not None:
            return self
        manifest_path = self.root / "manifest.json"
        if not manifest_path.exists():
            if not create:
                raise CollectionError(f"{self.root}: no collection here (no manifest.json)")
            self._create()
        manifest = Manifest.load(self.root)
        self.channels = self._channels_from(manifest)
        catalog = Catalog(self.root / "catalog.sqlite").open()
        try:
            for channel in self.channels.values():
                channel.load(catalog, self.root / "cache")
        except BaseException:
            catalog.close()
            raise
        self._catalog = catalog
        return self

    def _create(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise CollectionError(f"{self.root}: expected a directory, got a file")
        if (self.root / "catalog.sqlite").exists():
            # Writing a fresh manifest over old vectors would let another model search them.
            raise CollectionError(
                f"{self.root}: the catalog is there but manifest.json is missing; restore the "
                "manifest, or index into a new collection")
        channel = GlobalChannel(self.global_config or GlobalChannelConfig())
        channel.check_settings()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            Manifest(channels={channel.name: channel.manifest()}).save(self.root)
        except OSError as error:
            raise CollectionError(f"{self.root}: cannot create the collection ({error})") from error

    @staticmethod
    def read_config(root: str | os.PathLike[str]) -> GlobalChannelConfig | None:
        """The global-channel settings a collection was created with; None if there is none."""
        if not (Path(root) / "manifest.json").exists():
            return None
        channel = channel_from_manifest("global", Manifest.load(Path(root)).channels["global"])
        return channel.config if isinstance(channel, GlobalChannel) else None

    def _channels_from(self, manifest: Manifest) -> dict[str, Channel]:
        channels: dict[str, Channel] = {}
        for name, recorded in manifest.channels.items():
            channel: Channel = channel_from_manifest(name, recorded)
            if isinstance(channel, GlobalChannel):
                if self.global_config is not None:
                    wanted = self.global_config
                    check_channel(self.root, name, recorded, wanted.stored_settings())
                    # Search-time settings (index type, whitening) may differ per open.
                    channel = GlobalChannel(wanted)
                check_channel(self.root, name, recorded,
                              {"extractor_info": channel.extractor.info.as_dict()})
            channels[name] = channel
        return channels

    def close(self) -> None:
        if self._catalog is None:
            return
        try:
            for channel in self.channels.values():
                channel.save_cache()
        except OSError as error:
            raise CollectionError(f"{self.root}: cannot write the index cache ({error}); the "
                                  "catalog is intact and the cache will be rebuilt") from error
        finally:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> Collection:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise CollectionError(f"{self.root}: collection is not open; call open() first")
        return self._catalog

    def channel(self, name: str) -> Channel:
        if name not in self.channels:
            raise ValidationError(
                f"expected a channel among {[*sorted(self.channels), 'auto']}, got '{name}'"
            )
        return self.channels[name]

    # -- indexing ---------------------------------------------------------------------------

    def index(
        self, paths: Iterable[str | os.PathLike[str]], *, recursive: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> IndexReport:
        """Bring the collection in step with files and folders.

        ``progress(done, total)`` is called as batches finish. Files that fail are
        listed in the report with their reason; the rest of the run goes on.
        """
        started = time.perf_counter()
        roots = [Path(catalog_key(p)) for p in paths]
        found = discover_images(roots, recursive=recursive)
        report = IndexReport(failures=[(error.source, error.reason) for error in found.failures])
        files = []
        for path in found.files:
            if _encodable(str(path)):
                files.append(path)
            else:
                report.failures.append((str(path).encode("utf-8", "replace").decode(),
                                        "file name is not valid UTF-8; rename the file"))
        keys = [str(path) for path in files]
        known = self.catalog.images_by_path(keys)
        jobs = self._plan(files, known, report)
        report.removed = self._remove_missing(roots, set(keys), found.failures, recursive)
        loading = self._prepare_channels() if jobs else 0.0
        self._run(jobs, report, progress)
        # One-off model loading is not indexing work; leave it out of images/s.
        report.seconds = time.perf_counter() - started - loading
        return report

    def add(
        self, items: Mapping[str, ImageInput],
        progress: Callable[[int, int], None] | None = None,
    ) -> IndexReport:
        """Index in-memory images (arrays, bytes or PIL images) under the given names."""
        started = time.perf_counter()
        report = IndexReport()
        known = self.catalog.images_by_path(items.keys())
        jobs = [Job(key=name, source=source, known=known.get(name))
                for name, source in items.items()]
        loading = self._prepare_channels() if jobs else 0.0
        self._run(jobs, report, progress)
        report.seconds = time.perf_counter() - started - loading
        return report

    def _prepare_channels(self) -> float:
        """Load the models (only when there is work); returns the seconds it took."""
        started = time.perf_counter()
        for channel in self.channels.values():
            channel.prepare()
        return time.perf_counter() - started

    def _plan(
        self, files: Sequence[Path], known: Mapping[str, ImageRecord], report: IndexReport
    ) -> list[Job]:
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

    def _run(
        self, jobs: list[Job], report: IndexReport,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        expect(isinstance(self.batch_size, int) and self.batch_size >= 1,
               f"expected a batch size of at least 1, got {self.batch_size!r}")
        total, done = len(jobs), 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done, total)

        step: ProgressCallback = advance
        step(0)
        counts, times = run_local(
            jobs, catalog=self.catalog, channels=list(self.channels.values()),
            batch_size=self.batch_size, max_pixels=self.max_pixels, progress=step,
        )
        report.added += counts.added
        report.updated += counts.updated
        report.unchanged += counts.unchanged
        report.failures.extend(counts.failures)
        report.processed = total
        report.stage_seconds = times.as_dict()
        self._changed()

    def _remove_missing(
        self, roots: Sequence[Path], seen: set[str], failures: Sequence[ImageError],
        recursive: bool,
    ) -> int:
        """Drop catalogued images that are gone from an indexed folder, or a named missing file.

        Only what was looked at and found missing goes: without ``recursive`` only a
        folder's direct children, and nothing under a folder that could not be listed.
        A missing named path removes that one entry, never a subtree, so an unmounted
        drive does not empty the collection.
        """
        unlisted = {path for error in failures if error.reason != NOT_FOUND
                    for path in self.catalog.paths_under(error.source)}
        gone: list[str] = []
        for root in roots:
            if not root.is_dir():
                continue
            for path in self.catalog.paths_under(str(root)):
                if path in seen or path in unlisted:
                    continue
                if recursive or os.path.dirname(path) == str(root):
                    gone.append(path)
        gone += [error.source for error in failures if error.reason == NOT_FOUND]
        records = self.catalog.images_by_path(gone)
        return self._delete([record.id for record in records.values()])

    def remove(self, paths: Iterable[str | os.PathLike[str]]) -> int:
        """Remove images by path, by folder (everything under it) or by in-memory name.

        Returns how many images were removed.
        """
        keys: set[str] = set()
        for given in map(str, paths):
            absolute = catalog_key(given)
            keys |= {given, absolute, *self.catalog.paths_under(absolute)}
        records = self.catalog.images_by_path(keys)
        return self._delete([record.id for record in records.values()])

    def _delete(self, image_ids: Sequence[int]) -> int:
        if image_ids:
            with self.catalog.transaction() as conn:
                self.catalog.delete_images(conn, image_ids)
            self._changed()
        return len(image_ids)

    def _changed(self) -> None:
        for channel in self.channels.values():
            channel.mark_stale()

    def save(self) -> None:
        """Persist the derived search caches now (``close`` also does this)."""
        for channel in self.channels.values():
            channel.save_cache()

    # -- searching --------------------------------------------------------------------------

    def search(
        self, query: ImageInput, *, k: int = 10, channel: str = "global", box: Box | None = None,
    ) -> list[SearchResult]:
        """The ``k`` images most like ``query`` (a path, bytes, array or PIL image).

        ``box`` = (x0, y0, x1, y1) in the query's pixels searches with that crop only.
        ``channel="auto"`` searches every channel the collection has and fuses them.
        """
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        searchers = list(self.channels.values()) if channel == "auto" else [self.channel(channel)]
        # Decode as indexing did, so a stored image finds itself with the same vector;
        # a box is in full-size pixels, so then decode at full size.
        min_side = None if box is not None else decode_min_side(searchers)
        image = crop(load_image(query, max_pixels=self.max_pixels, min_side=min_side), box)
        rankings = {searcher.name: searcher.search(image, k) for searcher in searchers}
        return self.results(reciprocal_rank_fusion(rankings)[:k])

    def results(self, hits: Sequence[Hit]) -> list[SearchResult]:
        """Attach paths to channel hits, keeping the best hit per image."""
        best: dict[int, Hit] = {}
        for hit in hits:
            if hit.image_id not in best or hit.score > best[hit.image_id].score:
                best[hit.image_id] = hit
        records = self.catalog.images_by_id(best)
        ranked = sorted((hit for hit in best.values() if hit.image_id in records),
                        key=lambda hit: -hit.score)
        return [
            SearchResult(rank=rank, path=records[hit.image_id].path, score=hit.score,
                         image_id=hit.image_id, evidence=hit.evidence)
            for rank, hit in enumerate(ranked, start=1)
        ]

    def vectors(self, paths: Sequence[str], *, channel: str = "global") -> np.ndarray:
        """The stored vectors of images given by path, one row each, in the order given.

        Raises if an image is not indexed or has no single vector in that channel.
        """
        records = self.catalog.images_by_path(paths)
        missing = [path for path in paths if path not in records]
        if missing:
            raise CollectionError(f"{len(missing)} images are not indexed, e.g. {missing[0]}")
        by_image = self.catalog.vectors_of_images(channel, [records[p].id for p in paths])
        dim = self.channel(channel).manifest()["extractor_info"]["dim"]
        rows = []
        for path in paths:
            blobs = by_image.get(records[path].id, [])
            if len(blobs) != 1:
                raise CollectionError(f"{path}: expected one '{channel}' vector, got {len(blobs)}")
            rows.append(np.frombuffer(blobs[0], dtype=np.float32, count=dim))
        return np.stack(rows) if rows else np.empty((0, dim), dtype=np.float32)

    # -- information ------------------------------------------------------------------------

    def images(self) -> list[ImageRecord]:
        return self.catalog.all_images(status="indexed")

    def failures(self) -> list[ImageRecord]:
        return self.catalog.all_images(status="failed")

    def info(self) -> dict[str, Any]:
        manifest = Manifest.load(self.root)
        return {
            "root": str(self.root),
            "created_at": manifest.created_at,
            "created_by": manifest.created_by,
            "images": self.catalog.count("indexed"),
            "failed": self.catalog.count("failed"),
            "disk_bytes": _folder_bytes(self.root),
            "channels": {name: {**manifest.channels.get(name, {}), **channel.stats()}
                         for name, channel in self.channels.items()},
        }


def crop(image: np.ndarray, box: Box | None) -> np.ndarray:
    """The part of ``image`` inside ``box`` = (x0, y0, x1, y1), clipped to the image."""
    if box is None:
        return image
    expect(len(box) == 4, f"expected a box (x0, y0, x1, y1), got {box!r}")
    height, width = image.shape[:2]
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1, y1 = min(width, round(box[2])), min(height, round(box[3]))
    expect(x1 > x0 and y1 > y0,
           f"expected a box with positive area inside the {width}x{height} image, got {box!r}")
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def _encodable(text: str) -> bool:
    # os.walk gives undecodable bytes as lone surrogates, which SQLite cannot store.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
