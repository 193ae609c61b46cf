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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.collection.annotations import Annotations
from lookalike.collection.catalog import Catalog, ImageRecord
from lookalike.collection.channels import (
    Channel,
    GlobalChannel,
    GlobalChannelConfig,
    Hit,
    VectorChannel,
)
from lookalike.collection.faces_channel import FacesChannelConfig, check_faces_channel
from lookalike.collection.filters import SearchFilter
from lookalike.collection.learning import Feedback, judged_from_truth
from lookalike.collection.local_channel import LocalChannelConfig
from lookalike.collection.manifest import Manifest, check_channel
from lookalike.collection.media import Media
from lookalike.collection.people import ImageFace, People
from lookalike.collection.regions_channel import RegionsChannelConfig
from lookalike.collection.registry import (
    ChannelConfig,
    check_channel_names,
    config_from_manifest,
    make_channel,
)
from lookalike.collection.text_channel import TextChannel, TextChannelConfig
from lookalike.errors import (
    CollectionError,
    ImageError,
    ManifestMismatchError,
    NotFoundError,
    ValidationError,
    expect,
)
from lookalike.extractors.onnx import OnnxExtractor
from lookalike.faces.model import NoFaceError
from lookalike.fusion import (
    DEFAULT_FUSION,
    FUSIONS,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)
from lookalike.images import (
    DEFAULT_MAX_PIXELS,
    NOT_FOUND,
    Box,
    ImageInput,
    crop,
    discover_images,
    load_image,
)
from lookalike.paths import catalog_key
from lookalike.pipeline import Job, ProgressCallback, decode_min_side, run_local

if TYPE_CHECKING:
    from lookalike.ranking import Judged, LearnedRanker

RANKER_FILE = "ranker.json"
MAX_ID = 2**63 - 1  # SQLite's largest integer
OPTIONAL_CHANNELS = ("local", "faces", "regions", "text")


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
        self, root: str | os.PathLike[str], *, channels: Sequence[str] | None = None,
        global_config: GlobalChannelConfig | None = None,
        local_config: LocalChannelConfig | None = None,
        faces_config: FacesChannelConfig | None = None,
        regions_config: RegionsChannelConfig | None = None,
        text_config: TextChannelConfig | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS, batch_size: int = 32,
    ) -> None:
        """``channels`` are the kinds of search a new collection supports (default
        ``["global"]``, plus each of ``"local"``, ``"faces"``, ``"regions"`` and ``"text"``
        whose config is given); the configs override settings of an existing one where
        that is allowed."""
        self.root = Path(root)
        self.asked_channels = None if channels is None else check_channel_names(list(channels))
        self.configs: dict[str, ChannelConfig] = {
            name: config for name, config in (("global", global_config), ("local", local_config),
                                              ("faces", faces_config),
                                              ("regions", regions_config),
                                              ("text", text_config))
            if config is not None}
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self._catalog: Catalog | None = None
        self._ranker: LearnedRanker | None = None
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
        _share_the_classifier_pass(self.channels)
        catalog = Catalog(self.root / "catalog.sqlite").open()
        try:
            for channel in self.channels.values():
                channel.load(catalog, self.root)
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
        names = self.asked_channels or ["global", *(name for name in OPTIONAL_CHANNELS
                                                   if name in self.configs)]
        channels = [make_channel(name, self.configs.get(name)) for name in names]
        for channel in channels:
            if isinstance(channel, VectorChannel):
                channel.check_settings()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            Manifest(channels={channel.name: channel.manifest() for channel in channels}).save(
                self.root)
        except OSError as error:
            raise CollectionError(f"{self.root}: cannot create the collection ({error})") from error

    @staticmethod
    def read_configs(root: str | os.PathLike[str]) -> dict[str, ChannelConfig]:
        """Each channel's settings as the collection was created; empty if there is none."""
        if not (Path(root) / "manifest.json").exists():
            return {}
        return {name: config_from_manifest(name, recorded)
                for name, recorded in Manifest.load(Path(root)).channels.items()}

    @staticmethod
    def read_config(root: str | os.PathLike[str]) -> GlobalChannelConfig | None:
        """The global-channel settings a collection was created with; None if there is none."""
        config = Collection.read_configs(root).get("global")
        return config if isinstance(config, GlobalChannelConfig) else None

    def _channels_from(self, manifest: Manifest) -> dict[str, Channel]:
        asked = set(self.asked_channels or []) | set(self.configs)
        if ((self.asked_channels is not None and set(self.asked_channels) != set(manifest.channels))
                or not asked <= set(manifest.channels)):
            raise ManifestMismatchError(
                f"{self.root}: the collection has channels {sorted(manifest.channels)}, asked for "
                f"{sorted(asked)}; open it without choosing channels, or index into a new "
                "collection")
        channels: dict[str, Channel] = {}
        for name, recorded in manifest.channels.items():
            config = config_from_manifest(name, recorded)
            wanted = self.configs.get(name)
            if wanted is not None:
                check_channel(self.root, name, recorded, wanted.stored_settings())
                # Search-time settings (index type, scoring, verification) may differ per open.
                config = wanted
            channel = make_channel(name, config)
            if channel.model_info():
                check_channel(self.root, name, recorded, channel.model_info())
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
        report.prepare_seconds = self._prepare_channels(jobs) if jobs else 0.0
        self._run(jobs, report, progress)
        # One-off model loading and training are not indexing work; leave them out of
        # images/s and report them apart.
        report.seconds = time.perf_counter() - started - report.prepare_seconds
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
        report.prepare_seconds = self._prepare_channels(jobs) if jobs else 0.0
        self._run(jobs, report, progress)
        report.seconds = time.perf_counter() - started - report.prepare_seconds
        return report

    def _prepare_channels(self, jobs: Sequence[Job]) -> float:
        """Load the models and train what needs training on a sample of ``jobs``.

        Only called when there is work; returns the seconds it took, which are
        start-up cost, not indexing speed.
        """
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
        self, query: ImageInput | None = None, *, text: str | None = None, k: int = 10,
        channel: str = "global", box: Box | None = None, name: str | None = None,
        filters: SearchFilter | None = None, fusion: str = DEFAULT_FUSION,
    ) -> list[SearchResult]:
        """The ``k`` images most like ``query`` (a path, bytes, array or PIL image), or
        matching ``text``, or both ("like this image, and red dress").

        ``box`` = (x0, y0, x1, y1) in the query's pixels searches with that crop only.
        ``channel="auto"`` searches every image channel the collection has; text is
        searched by the text channel. Several rankings are fused by ``fusion``: ``auto``
        (the measured best: the learned ranker when one was trained, else ``rrf`` of the
        image channels), ``rrf`` (reciprocal rank, every channel), ``weighted`` (calibrated
        scores) or ``learned`` (the ranker saved by :meth:`save_ranker`). ``filters`` keep
        only some categories, a folder or a date range. ``name`` labels the query in errors
        (an upload's file name).
        """
        return self.search_with_rankings(query, text=text, k=k, channel=channel, box=box,
                                         name=name, filters=filters, fusion=fusion)[0]

    def search_with_rankings(
        self, query: ImageInput | None = None, *, text: str | None = None, k: int = 10,
        channel: str = "global", box: Box | None = None, name: str | None = None,
        filters: SearchFilter | None = None, fusion: str = DEFAULT_FUSION,
    ) -> tuple[list[SearchResult], dict[str, list[Hit]]]:
        """Like :meth:`search`, with each channel's own ranking before fusion (what a
        learned ranker's features are made of, logged with clicks)."""
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        expect(fusion in FUSIONS, f"expected a fusion among {list(FUSIONS)}, got {fusion!r}")
        image = None if query is None else self.decode_query(query, channel=channel, box=box,
                                                              name=name)
        chosen = self._resolved(fusion)
        # Measured: the text channel's ranking by an image's own labels only lowers RRF,
        # so the untrained default leaves it out (a given text always counts).
        labels = not (fusion == "auto" and chosen == "rrf")
        depth = k
        total = self.catalog.count("indexed")
        wanted = k
        if filters is not None and filters.active:
            # Never look for more than the filter lets through (and nothing when it is none).
            wanted = min(k, filters.count(self.catalog))
            if wanted == 0:
                return [], {}
        while True:
            rankings = self.rankings(image, text=text, k=depth, channel=channel, box=box,
                                     image_labels=labels)
            fused = self.fuse(rankings, chosen)
            if filters is not None and filters.active:
                allowed = filters.allowed(self.catalog, [hit.image_id for hit in fused])
                fused = [hit for hit in fused if hit.image_id in allowed]
            longest = max((len(hits) for hits in rankings.values()), default=0)
            # A filter can leave fewer than k: look deeper while the channels have more.
            if len(fused) >= wanted or longest < depth or depth >= total:
                return self.results(fused[:k]), rankings
            depth = min(depth * 4, total)

    def rankings(
        self, image: np.ndarray | None, *, text: str | None = None, k: int = 10,
        channel: str = "global", box: Box | None = None, image_labels: bool = True,
    ) -> dict[str, list[Hit]]:
        """Each channel's own ranking for a decoded query image and/or a text, before
        fusion; a query without a face skips the faces channel under ``auto``, and
        ``image_labels=False`` skips the text channel's search by the image's own labels
        under ``auto``."""
        expect(image is not None or (isinstance(text, str) and bool(text.strip())),
               f"expected a query image, a text or both, got neither (text={text!r})")
        rankings: dict[str, list[Hit]] = {}
        if image is not None:
            for searcher in self._searchers(channel):
                if channel == "auto" and searcher.name == "text" and (
                        not image_labels or text is not None):
                    continue  # a given text replaces the image's own labels
                try:
                    rankings[searcher.name] = searcher.search(image, k, box=box)
                except NoFaceError:
                    if channel != "auto":
                        raise
                    # A query without a face still searches by everything else.
        if text is not None:
            rankings["text"] = self.text_channel.search_text(text, k)
        return rankings

    def fuse(self, rankings: Mapping[str, Sequence[Hit]], fusion: str = "rrf") -> list[Hit]:
        """One ranking from the channels' rankings, by the named fusion. Under ``rrf`` one
        ranking alone is passed through as it is: its own scores and flat evidence."""
        fusion = self._resolved(fusion)
        if fusion == "learned":
            return self.ranker().rank(rankings)
        if fusion == "weighted":
            ranker = self.ranker() if self.has_ranker() else None
            return weighted_score_fusion(rankings,
                                         calibrations=ranker.calibrations if ranker else None)
        return reciprocal_rank_fusion(rankings)

    def _resolved(self, fusion: str) -> str:
        """The fusion ``auto`` stands for here: the learned ranker once one is trained."""
        if fusion != "auto":
            return fusion
        return "learned" if self.has_ranker() else "rrf"

    def has_ranker(self) -> bool:
        """Whether a learned ranker was trained and saved for this collection."""
        return (self.root / RANKER_FILE).exists()

    @property
    def text_channel(self) -> TextChannel:
        channel = self.channels.get("text")
        if not isinstance(channel, TextChannel):
            raise ValidationError("expected a collection with a 'text' channel for text search, "
                                  "got none; create it with channels including 'text'")
        return channel

    # -- learned ranking --------------------------------------------------------------------

    def ranker(self) -> LearnedRanker:
        """The learned ranker saved with this collection (see :meth:`save_ranker` and
        :func:`lookalike.ranking.train_ranker`)."""
        from lookalike.ranking import LearnedRanker

        if self._ranker is None:
            path = self.root / RANKER_FILE
            if not self.has_ranker():
                raise CollectionError("this collection has no learned ranker; train one first "
                                      "(lookalike ranker train, or POST clicks and train "
                                      "with --clicks)")
            self._ranker = LearnedRanker.load(path)
        return self._ranker

    def save_ranker(self, ranker: LearnedRanker) -> None:
        ranker.save(self.root / RANKER_FILE)
        self._ranker = ranker

    def decode_query(
        self, query: ImageInput, *, channel: str = "global", box: Box | None = None,
        name: str | None = None,
    ) -> np.ndarray:
        """``query`` decoded as :meth:`search` needs it; a server decodes uploads with this
        in parallel, then searches with the array. Checks the box against the image."""
        searchers = self._searchers(channel)
        # Decode as indexing did, so a stored image finds itself with the same vector;
        # a box is in full-size pixels, and some channels give evidence in the query's
        # own pixels: then decode at full size.
        full_size = box is not None or decode_min_side(searchers, query=True) is None
        min_side = None if full_size else decode_min_side(list(self.channels.values()))
        image = load_image(query, max_pixels=self.max_pixels, min_side=min_side, name=name)
        if box is not None:
            crop(image, box)  # checks the box against the image before any channel runs
        return image

    def _searchers(self, channel: str) -> list[Channel]:
        return list(self.channels.values()) if channel == "auto" else [self.channel(channel)]

    @property
    def annotations(self) -> Annotations:
        """Captions, tags, categories and labels of the images: read, edit, import."""
        return Annotations(self.catalog, on_change=self._text_changed)

    def _text_changed(self) -> None:
        text = self.channels.get("text")
        if text is not None:
            text.mark_stale()

    def results(self, hits: Sequence[Hit]) -> list[SearchResult]:
        """Attach paths to channel hits, keeping the best hit per image."""
        best: dict[int, Hit] = {}
        for hit in hits:
            if hit.image_id not in best or hit.score > best[hit.image_id].score:
                best[hit.image_id] = hit
        records = self.catalog.images_by_id(best)
        # A file that failed on re-indexing keeps the user's text, but is not a result.
        ranked = sorted((hit for hit in best.values() if hit.image_id in records
                         and records[hit.image_id].status == "indexed"),
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
        recorded = self.channel(channel).manifest()
        if "extractor_info" not in recorded:
            raise ValidationError(f"expected a channel that stores vectors ('global'), got "
                                  f"'{channel}'")
        by_image = self.catalog.vectors_of_images(channel, [records[p].id for p in paths])
        dim = recorded["extractor_info"]["dim"]
        rows = []
        for path in paths:
            blobs = by_image.get(records[path].id, [])
            if len(blobs) != 1:
                raise CollectionError(f"{path}: expected one '{channel}' vector, got {len(blobs)}")
            rows.append(np.frombuffer(blobs[0], dtype=np.float32, count=dim))
        return np.stack(rows) if rows else np.empty((0, dim), dtype=np.float32)

    # -- single images, faces and the collection's own files (what adapters show) -----------

    def image(self, image_id: int) -> ImageRecord:
        """An indexed image by id; a :class:`NotFoundError` for any other id."""
        expect(isinstance(image_id, int) and not isinstance(image_id, bool),
               f"expected an image id as an integer, got {image_id!r}")
        record = self.catalog.images_by_id([image_id]).get(image_id) if (
            0 < image_id <= MAX_ID) else None
        if record is None or record.status != "indexed":
            raise NotFoundError(f"expected the id of an indexed image, got {image_id}")
        return record

    def image_by_path(self, path: str | os.PathLike[str]) -> ImageRecord:
        """An indexed image by its path (as given to :meth:`index`, or an in-memory name)."""
        records = self.catalog.images_by_path([str(path), catalog_key(str(path))])
        record = records.get(str(path)) or records.get(catalog_key(str(path)))
        if record is None or record.status != "indexed":
            raise NotFoundError(f"{path}: expected an indexed image, got one not in {self.root}")
        return record

    def image_file(self, image_id: int) -> Path:
        """The file of an indexed image; a :class:`NotFoundError` when it is gone."""
        record = self.image(image_id)
        if not Path(record.path).is_file():
            raise NotFoundError(f"image {image_id}: its file is gone ({record.path})")
        return Path(record.path)

    def thumbnail(self, image_id: int, size: int = 256) -> bytes:
        """A JPEG thumbnail of an indexed image (cached in the collection)."""
        record = self.image(image_id)
        return self.media.thumbnail(record.id, record.path, record.sha256, size)

    def faces_of(self, image_id: int) -> list[ImageFace]:
        """The faces found in an indexed image, with their people (none without a faces
        channel)."""
        self.image(image_id)
        return self.people.faces_of_image(image_id) if "faces" in self.channels else []

    def face(self, face_id: int) -> ImageFace:
        """One face by id."""
        return self.people.face(face_id)

    def face_thumbnail(self, face_id: int, size: int = 160) -> bytes:
        """A JPEG of a face with a margin around it (cached in the collection)."""
        face = self.face(face_id)
        record = self.image(face.image_id)
        box = (face.box[0], face.box[1], face.box[2], face.box[3])
        return self.media.face_crop(face_id, record.path, box, size)

    def add_upload(self, data: bytes, name: str = "upload") -> tuple[ImageRecord, IndexReport]:
        """Keep uploaded image bytes in the collection (``uploads/``, by content hash) and
        index them. A bad image is refused before anything is written."""
        path = self.media.store_upload(data, name)
        report = self.index([path])
        record = self.catalog.images_by_path([str(path)]).get(str(path))
        if record is None or record.status != "indexed":
            reason = report.failures[0][1] if report.failures else "unknown reason"
            raise ImageError(name, f"could not be indexed ({reason})")
        return record, report

    def delete_image(self, image_id: int) -> int:
        """Remove an indexed image; the collection's own copy of an upload goes with it (a
        user's photo is never deleted), and so do its thumbnails."""
        record = self.image(image_id)
        removed = self.remove([record.path])
        self.media.forget(image_id, record.path)
        return removed

    @property
    def media(self) -> Media:
        """The collection's uploads and thumbnail cache."""
        return Media(self.root, self.max_pixels)

    @property
    def feedback(self) -> Feedback:
        """The search and click log, which trains the learned ranker."""
        return Feedback(self.catalog)

    def judged(self, queries: Sequence[Any], *, channel: str = "auto",
               depth: int = 100) -> list[Judged]:
        """Judged queries for the learned ranker from ground truth (``path``, ``relevant``,
        ``junk``, ``box``, as :class:`lookalike.eval.datasets.RetrievalQuery` has them)."""
        return judged_from_truth(self, queries, channel=channel, depth=depth)

    @property
    def channel_names(self) -> list[str]:
        """The collection's channels, in the order they were created."""
        return list(self.channels)

    def count(self) -> int:
        """How many images are indexed."""
        return self.catalog.count("indexed")

    def prepare(self) -> None:
        """Load every channel's models now (a server does it before its first request)."""
        for channel in self.channels.values():
            channel.prepare()

    @property
    def people(self) -> People:
        """Faces grouped into people; needs a 'faces' channel."""
        return People(self.catalog, check_faces_channel(self.channels.get("faces")))

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


def _share_the_classifier_pass(channels: Mapping[str, Channel]) -> None:
    """Let the text channel label images from the global channel's pass of the same model.

    The pipeline hands every channel the same batch; with one extractor between them, the
    global channel's embed keeps the class probabilities and the text channel's classify
    takes them, instead of running the network again (see OnnxExtractor.keep_labels).
    """
    whole, text = channels.get("global"), channels.get("text")
    if not (isinstance(whole, GlobalChannel) and isinstance(text, TextChannel)
            and text.config.labels):
        return
    extractor = whole.extractor
    if isinstance(extractor, OnnxExtractor) and extractor.info == text.extractor.info:
        extractor.keep_labels = True
        text.extractor = extractor


def _encodable(text: str) -> bool:
    # os.walk gives undecodable bytes as lone surrogates, which SQLite cannot store.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
