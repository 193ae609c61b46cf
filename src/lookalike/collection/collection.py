"""A collection: a folder that holds a catalog, derived caches and a manifest.

Layout of a collection directory::

    manifest.json   what each channel stores and with which model (checked on open)
    catalog.sqlite  images, their rows per channel, annotations, people, the search log
    cache/          derived search structures and thumbnails, rebuilt when in doubt
    local/          the vocabulary tree the local channel's words come from
    uploads/        images uploaded through the HTTP API, by content hash
    ranker.json     the learned ranker, once trained

:class:`Collection` is the public face of the engine, and the only one the CLI and the
HTTP API use: it indexes (:mod:`lookalike.collection.indexing`), searches
(:mod:`lookalike.collection.searching`), and hands out single images, faces, thumbnails,
people, annotations and the click log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from lookalike.collection.annotations import Annotations
from lookalike.collection.channel_set import add_channels, remove_channel
from lookalike.collection.channels import Channel, VectorChannel
from lookalike.collection.engines import Engine, make_engine
from lookalike.collection.exclusions import keep_out, let_in
from lookalike.collection.faces_channel import check_faces_channel
from lookalike.collection.filters import SearchFilter
from lookalike.collection.indexing import Indexer, IndexReport
from lookalike.collection.learning import Feedback, judged_from_truth
from lookalike.collection.manifest import Manifest, check_channel, refuse_split
from lookalike.collection.media import Media
from lookalike.collection.people import ImageFace, People
from lookalike.collection.pipeline import resolve_workers
from lookalike.collection.registry import (
    CHANNELS,
    ChannelConfig,
    auto_fusion,
    check_channel_names,
    config_from_manifest,
    make_channel,
)
from lookalike.collection.searching import RankerFile, Searcher
from lookalike.collection.summary import collection_info
from lookalike.errors import (
    CollectionError,
    ImageError,
    ManifestMismatchError,
    NotFoundError,
    ValidationError,
    expect,
)
from lookalike.fusion import DEFAULT_FUSION
from lookalike.images import DEFAULT_MAX_PIXELS, Box, ImageInput
from lookalike.paths import catalog_key
from lookalike.ranking import Judged, LearnedRanker
from lookalike.results import Hit, SearchResult
from lookalike.storage import DEFAULT_WAIT, Catalog, ImageRecord

MAX_ID = 2**63 - 1  # SQLite's largest integer
T = TypeVar("T")
Progress = Callable[[int, int], None]


class Collection:
    """The public face of the engine: index images, search them, remove them.

    ``Collection(root, ...)`` only stores its arguments; :meth:`open` reads or
    creates the directory. Use it as a context manager to save the search cache
    and close the catalog on exit::

        with Collection("photos.lookalike").open() as collection:
            collection.index(["~/Pictures"])
            for result in collection.search("query.jpg", k=5):
                print(result.rank, result.score, result.path, result.reason)
    """

    def __init__(
        self, root: str | os.PathLike[str], *, channels: Sequence[str] | None = None,
        configs: Mapping[str, ChannelConfig] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS, batch_size: int = 32,
        wait: float | None = DEFAULT_WAIT, workers: int | None = None,
        engine: str | Engine = "local",
    ) -> None:
        """``channels``: a new collection's kinds of search (default ``["global"]`` plus each
        one ``configs`` sets); ``configs``: settings by channel, overriding an existing
        collection's search settings. A write waits ``wait`` s at most (None: no limit) for
        another process's, then raises :class:`CollectionBusyError`. Indexing runs
        ``workers`` threads (default one per core) or on Ray (``engine="ray"``)."""
        self.root = Path(root)
        self.asked_channels = None if channels is None else check_channel_names(list(channels))
        self.configs: dict[str, ChannelConfig] = dict(configs or {})
        check_channel_names(list(self.configs) or ["global"])
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self.workers = None if workers is None else resolve_workers(workers)
        self.engine = make_engine(engine)
        self.wait = wait
        self.channels: dict[str, Channel] = {}
        self._catalog: Catalog | None = None
        self._ranker = RankerFile(self.root)

    # -- opening ----------------------------------------------------------------------------

    def open(self, *, create: bool = True) -> Collection:
        """Open the collection, creating it if asked. Checks the manifest against the config."""
        if self._catalog is not None:
            return self
        if not (self.root / "manifest.json").exists():
            if not create:
                raise CollectionError(f"{self.root}: no collection here (no manifest.json)")
            self._create()
        self.channels = self._channels_from(Manifest.load(self.root))
        for channel in self.channels.values():
            channel.share_models(self.channels)
        catalog = Catalog(self.root / "catalog.sqlite", wait=self.wait).open()
        try:
            catalog.fill_marks(list(self.channels))
            for channel in self.channels.values():
                channel.attach(catalog, self.root)
        except BaseException:
            catalog.close()
            raise
        self._catalog = catalog
        return self

    def _create(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise CollectionError(f"{self.root}: expected a directory, got a file")
        refuse_split(self.root)
        if (self.root / "catalog.sqlite").exists():
            # Writing a fresh manifest over old vectors would let another model search them.
            raise CollectionError(
                f"{self.root}: the catalog is there but manifest.json is missing; restore the "
                "manifest, or index into a new collection")
        names = self.asked_channels or [name for name, spec in CHANNELS.items()
                                        if spec.default or name in self.configs]
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
    def read_configs(root: str | os.PathLike[str]) -> dict[str, Any]:
        """Each channel's settings as the collection was created; empty if there is none."""
        if not (Path(root) / "manifest.json").exists():
            return {}
        return {name: config_from_manifest(name, recorded)
                for name, recorded in Manifest.load(Path(root)).channels.items()}

    @staticmethod
    def exists(root: str | os.PathLike[str]) -> bool:
        """Whether ``root`` holds a collection."""
        return (Path(root) / "manifest.json").is_file()

    def _channels_from(self, manifest: Manifest) -> dict[str, Channel]:
        asked = set(self.asked_channels or []) | set(self.configs)
        if ((self.asked_channels is not None
             and set(self.asked_channels) != set(manifest.channels))
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
                # As read: an older manifest's missing setting is what it was made with.
                check_channel(self.root, name, {**recorded, **config.stored_settings()},
                              wanted.stored_settings())
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
            self.save()
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
        """The catalog (the library's own business: adapters use the methods below)."""
        if self._catalog is None:
            raise CollectionError(f"{self.root}: collection is not open; call open() first")
        return self._catalog

    def channel(self, name: str) -> Channel:
        return self.searcher().channel(name)

    @property
    def channel_names(self) -> list[str]:
        """The collection's channels, in the order they were created."""
        return list(self.channels)

    def prepare(self) -> None:
        """Load every channel's models now (a server does it before its first request)."""
        for channel in self.channels.values():
            channel.prepare()

    def index(self, paths: Iterable[str | os.PathLike[str]], *, recursive: bool = True,
              progress: Progress | None = None, keep: Callable[[str], bool] | None = None,
              exclude: Iterable[str] = ()) -> IndexReport:
        """Bring the collection in step with files and folders (those whose path ``keep``
        accepts: a shard's), skipping what its exclusions and the new ``exclude`` patterns
        cover (:mod:`lookalike.collection.exclusions`). ``progress(done, total)`` is called
        as batches finish. Files that fail are listed in the report with their reason; the
        rest of the run goes on."""
        try:
            return self._indexer().index(paths, recursive=recursive, progress=progress,
                                         keep=keep, exclude=exclude)
        finally:
            self._changed()

    def add(self, items: Mapping[str, ImageInput],
            progress: Progress | None = None) -> IndexReport:
        """Index in-memory images (arrays, bytes or PIL images) under the given names."""
        try:
            return self._indexer().add(items, progress)
        finally:
            self._changed()

    def remove(self, paths: Iterable[str | os.PathLike[str]]) -> int:
        """Remove images by path, folder or in-memory name, and keep them out of later
        indexing runs (until named to ``index`` again); returns how many went."""
        given = [(str(p), catalog_key(str(p))) for p in paths]
        under = {absolute: {name, absolute, *self.catalog.images.paths_under(absolute)}
                 for name, absolute in given}
        records = self.catalog.images.by_path(set().union(*under.values()))
        # Files and folders that exist or were indexed; a typo or an in-memory name does not.
        keep_out(self.catalog, [absolute for name, absolute in given if os.path.exists(name)
                                or not (under[absolute] - {name} | {absolute}).isdisjoint(
                                    records)])
        removed = self._indexer().delete([record.id for record in records.values()])
        if removed:
            self._changed()
        return removed

    def add_channels(self, names: Sequence[str],
                     configs: Mapping[str, ChannelConfig] | None = None) -> list[str]:
        """Add kinds of search (those not there yet, returned); the next :meth:`index`
        computes only what they need (:mod:`lookalike.collection.channel_set`)."""
        return self._reopened(add_channels(self.root, self.catalog, names, configs or {}))

    def remove_channel(self, name: str) -> bool:
        """Drop a channel and all it stored; True when the learned ranker went with it."""
        self.configs.pop(name, None)
        return self._reopened(remove_channel(self.root, self.catalog, name))

    def _reopened(self, result: T) -> T:
        self.close()
        self.asked_channels = None  # the manifest's channels, as they are now
        self.open(create=False)
        return result

    def include(self, patterns: Iterable[str]) -> list[str]:
        """Let removed paths or excluded patterns back in; returns those that were out."""
        return let_in(self.catalog, patterns)

    def save(self) -> None:
        """Persist the derived search caches now (``close`` also does this)."""
        for channel in self.channels.values():
            channel.save_cache()

    def _indexer(self) -> Indexer:
        return Indexer(self.catalog, self.channels, max_pixels=self.max_pixels,
                       batch_size=self.batch_size, workers=self.workers, engine=self.engine)

    def _changed(self) -> None:
        for channel in self.channels.values():
            channel.mark_stale()

    def _annotations_changed(self) -> None:
        for channel in self.channels.values():
            if channel.reads_annotations:
                channel.mark_stale()

    # -- searching --------------------------------------------------------------------------

    def search(
        self, query: ImageInput | None = None, *, text: str | None = None, k: int = 10,
        channel: str = "auto", box: Box | None = None, name: str | None = None,
        filters: SearchFilter | None = None, fusion: str = DEFAULT_FUSION,
    ) -> list[SearchResult]:
        """The ``k`` images most like ``query`` (a path, bytes, array or PIL image), or
        matching ``text``, or both ("like this image, and red dress"). ``box`` = (x0, y0,
        x1, y1) searches with that crop of the query; ``channel="auto"`` every channel, the
        rankings fused by ``fusion`` (:mod:`lookalike.fusion`: ``auto``, ``rrf``,
        ``weighted``, ``learned``); ``filters`` keep categories, a folder or dates; ``name``
        labels the query in errors. Each result's evidence is nested by channel."""
        return self.search_with_rankings(query, text=text, k=k, channel=channel, box=box,
                                         name=name, filters=filters, fusion=fusion)[0]

    def search_with_rankings(
        self, query: ImageInput | np.ndarray | None = None, *, text: str | None = None,
        k: int = 10, channel: str = "auto", box: Box | None = None, name: str | None = None,
        filters: SearchFilter | None = None, fusion: str = DEFAULT_FUSION,
    ) -> tuple[list[SearchResult], dict[str, list[Hit]]]:
        """:meth:`search`, and each channel's own ranking before fusion (a learned ranker's
        features, logged with clicks); a decoded query is searched as it is."""
        searcher = self.searcher()
        image = None if query is None else searcher.decode_query(query, channel=channel,
                                                                 box=box, name=name)
        return searcher.search(image, text=text, k=k, channel=channel, box=box,
                               filters=filters, fusion=fusion)

    def rankings(self, image: np.ndarray | None, *, text: str | None = None, k: int = 10,
                 channel: str = "auto", box: Box | None = None) -> dict[str, list[Hit]]:
        """Each channel's own ranking for a decoded query image and/or a text, before
        fusion; under ``auto`` a query without a face skips the faces channel."""
        return self.searcher().rankings(image, text=text, k=k, channel=channel, box=box)

    def fuse(self, rankings: Mapping[str, Sequence[Hit]], fusion: str = "rrf") -> list[Hit]:
        """One ranking from the channels' rankings, by the named fusion."""
        return self.searcher().fuse(rankings, fusion)

    def decode_query(self, query: ImageInput, *, channel: str = "auto",
                     box: Box | None = None, name: str | None = None) -> np.ndarray:
        """``query`` decoded as :meth:`search` needs it (a server's uploads); checks the box."""
        return self.searcher().decode_query(query, channel=channel, box=box, name=name)

    def searcher(self) -> Searcher:
        """What searches this collection's channels (with its learned ranker)."""
        return Searcher(self.catalog, self.channels, max_pixels=self.max_pixels,
                        ranker=self._ranker, policy=auto_fusion())

    def has_ranker(self) -> bool:
        """Whether a learned ranker was trained and saved for this collection."""
        return self._ranker.exists()

    def ranker(self) -> LearnedRanker:
        """The learned ranker saved with this collection (see :meth:`save_ranker` and
        :func:`lookalike.ranking.train_ranker`)."""
        return self._ranker.get()

    def save_ranker(self, ranker: LearnedRanker) -> None:
        self._ranker.save(ranker)

    def judged(self, queries: Sequence[Any], *, channel: str = "auto",
               depth: int = 100) -> list[Judged]:
        """Judged queries for the learned ranker from ground truth (``path``, ``relevant``,
        ``junk``, ``box``, as :class:`lookalike.eval.datasets.RetrievalQuery` has them)."""
        return judged_from_truth(self, queries, channel=channel, depth=depth)

    @property
    def feedback(self) -> Feedback:
        """The search and click log, which trains the learned ranker."""
        return Feedback(self.catalog)

    def images(self) -> list[ImageRecord]:
        return self.catalog.images.all(status="indexed")

    def failures(self) -> list[ImageRecord]:
        return self.catalog.images.all(status="failed")

    def count(self) -> int:  # indexed images
        return self.catalog.images.count("indexed")

    def info(self) -> dict[str, Any]:
        """Images, disk use, folders and exclusions, and per channel: settings, stats,
        summary, bytes per image."""
        return collection_info(self.root, self.catalog, self.channels)

    def vectors(self, paths: Sequence[str], *, channel: str = "global") -> np.ndarray:
        """The stored vectors of images given by path, one row each, in the order given;
        raises if an image is not indexed or has no single vector in that channel."""
        records = self.catalog.images.by_path(paths)
        missing = [path for path in paths if path not in records]
        if missing:
            raise CollectionError(f"{len(missing)} images are not indexed, e.g. {missing[0]}")
        found = self.channel(channel)
        if not isinstance(found, VectorChannel):
            raise ValidationError(f"expected a channel that stores vectors, got '{channel}'")
        return found.one_vector_each({path: records[path].id for path in paths})

    @property
    def annotations(self) -> Annotations:
        """Captions, tags, categories and labels of the images: read, edit, import."""
        return Annotations(self.catalog, on_change=self._annotations_changed)

    @property
    def people(self) -> People:
        """Faces grouped into people; needs a 'faces' channel."""
        return People(self.catalog, check_faces_channel(self.channels.get("faces")))

    # -- single images, faces and the collection's own files (what adapters show) -----------

    def image(self, image_id: int) -> ImageRecord:
        """An indexed image by id; a :class:`NotFoundError` for any other id."""
        expect(isinstance(image_id, int) and not isinstance(image_id, bool),
               f"expected an image id as an integer, got {image_id!r}")
        record = self.catalog.images.by_id([image_id]).get(image_id) if (
            0 < image_id <= MAX_ID) else None
        if record is None or record.status != "indexed":
            raise NotFoundError(f"expected the id of an indexed image, got {image_id}")
        return record

    def image_by_path(self, path: str | os.PathLike[str], *,
                      failed: bool = False) -> ImageRecord:
        """An indexed image by its path (as given to :meth:`index`, or an in-memory name);
        with ``failed``, also one that failed to index (its annotations are still the
        user's to edit)."""
        records = self.catalog.images.by_path([str(path), catalog_key(str(path))])
        record = records.get(str(path)) or records.get(catalog_key(str(path)))
        if record is None or not (record.status == "indexed" or failed):
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
        return self.index_upload(self.store_upload(data, name), name)

    def store_upload(self, data: bytes, name: str = "upload") -> Path:
        """The first half of :meth:`add_upload`: decode the bytes (an :class:`ImageError`
        naming ``name`` if they are not a sound image) and keep them in ``uploads/``. It
        touches no catalog, so a server runs it for several uploads at once."""
        return self.media.store_upload(data, name)

    def index_upload(self, path: Path, name: str = "upload") -> tuple[ImageRecord, IndexReport]:
        """The second half of :meth:`add_upload`: index a file :meth:`store_upload` kept."""
        report = self.index([path])
        record = self.catalog.images.by_path([str(path)]).get(str(path))
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

