"""The regions channel: objects and windows inside each image, searchable on their own.

Each image is stored as several regions:

* the objects a COCO detector finds (box, label, score), grown to squares;
* class-agnostic R-MAC windows at a few scales (:mod:`lookalike.regions.grid`), so that
  things the detector has no name for still have a region;
* the whole image, so a query matches whole images *and* regions in one search.

By default every region's vector is pooled from one pass of the global extractor's network
over the whole image (:mod:`lookalike.extractors.feature_map`: GeM pooling of the cells of
its last convolutional map under the region, as R-MAC does); a query (an image or a user's
crop) is one pass too, pooled whole, so query and regions share one space. ``pooling="crop"``
instead crops each region and embeds the crop with the extractor, one pass per region: the
way collections made before pooling were filled, kept for them.

A catalog row is the unit vector followed by the region's box (as fractions of the image's
width and height, so it holds at any decode size), its COCO label id (-1 for a window, -2 for
the whole image) and the detector's score. A query (an image or a user's crop) is embedded
once and matched against every region; each image scores by its best region, which is
returned as evidence. The detector's labels are also stored as the image's ``object``
annotations, for text search.

Once the collection holds ``pca_after`` images, its regions are stored in ``pca``
dimensions, projected on the principal components of its own regions
(:mod:`lookalike.collection.regions_projection`); queries are projected the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from lookalike.collection.channels import FloatRows, VectorChannel, check_storage
from lookalike.collection.regions_projection import (
    PROJECTION_KEY,
    LearnedOn,
    ProjectedRows,
    learn_and_rewrite,
    load_projection,
)
from lookalike.collection.vector_index import Layout
from lookalike.errors import CollectionError, ManifestMismatchError, expect
from lookalike.extractors import Extractor, make_extractor
from lookalike.extractors.feature_map import POOLINGS, FeatureMapModel
from lookalike.extractors.onnx import MODEL_SPECS
from lookalike.images import Box, crop
from lookalike.index import parse_index_spec
from lookalike.regions import (
    COCO_LABELS,
    DETECTORS,
    ObjectDetector,
    ObjectDetectorConfig,
    Region,
)
from lookalike.regions import make_detector as make_object_detector
from lookalike.regions.grid import MIN_SIDE, grid_regions, square_box
from lookalike.results import Hit, RegionEvidence
from lookalike.storage import Catalog, Transaction
from lookalike.whitening import PCAWhitening

_EXTRA = 4 + 1 + 1  # box, label id, score after the vector
WINDOW, WHOLE = -1, -2
CROP = "crop"


@dataclass(frozen=True)
class RegionsChannelConfig:
    """Settings of the regions channel: the embedder, the detector and its thresholds
    (``min_score``, at most ``max_objects`` per image), the R-MAC scales of the
    class-agnostic windows (``grid_levels``; empty for none), and how a region becomes a
    vector: ``pooling`` "gem" or "max" over the feature map of one pass whose shorter side
    is ``map_side`` pixels, or "crop", one pass of the extractor per cropped region. The
    default, "auto", is "gem" for the built-in networks and "crop" for an extractor that
    has no feature map to pool (a plug-in, the test thumbnail). ``storage`` is how the
    catalog keeps each vector (``int8``, the default, or ``float32``). ``pca`` is how many
    dimensions the vectors keep once the collection holds ``pca_after`` images, projected
    on the principal components of its own regions (None, or a dimension no smaller than
    the extractor's, keeps them whole)."""

    extractor: str = "efficientnet-lite0"
    detector: str = "nanodet"
    min_score: float = 0.4
    max_objects: int = 10
    grid_levels: tuple[int, ...] = (2, 3)
    index: str = "auto"
    exact_below: int = 50_000
    pooling: str = "auto"
    map_side: int = 256
    storage: str = "int8"
    pca: int | None = 256
    pca_after: int = 1000

    def __post_init__(self) -> None:
        # A manifest gives the scales back as a JSON list.
        object.__setattr__(self, "grid_levels", tuple(self.grid_levels))
        expect(self.detector in DETECTORS,
               f"expected an object detector among {sorted(DETECTORS)}, got {self.detector!r}")
        expect(isinstance(self.max_objects, int) and self.max_objects >= 0,
               f"expected max_objects >= 0, got {self.max_objects!r}")
        expect(all(isinstance(level, int) and 1 <= level <= 6 for level in self.grid_levels),
               f"expected R-MAC scales between 1 and 6, got {list(self.grid_levels)}")
        expect(isinstance(self.exact_below, int) and self.exact_below >= 1,
               f"expected exact_below >= 1, got {self.exact_below!r}")
        if self.pooling == "auto":
            object.__setattr__(self, "pooling", "gem" if self.extractor in MODEL_SPECS else CROP)
        check_storage(self.storage)
        expect(self.pca is None or (isinstance(self.pca, int) and self.pca >= 1),
               f"expected pca to be a positive number of dimensions or None, got {self.pca!r}")
        expect(isinstance(self.pca_after, int) and self.pca_after >= 1,
               f"expected pca_after >= 1 images, got {self.pca_after!r}")
        expect(self.pooling in (*POOLINGS, CROP),
               f"expected a pooling among {[*POOLINGS, CROP]}, got {self.pooling!r}")
        self.detector_config()  # checks the score
        if self.pooling != CROP:
            self.feature_map()  # checks the side
        if self.index != "auto":
            parse_index_spec(self.index)

    def detector_config(self) -> ObjectDetectorConfig:
        return ObjectDetectorConfig(min_score=self.min_score,
                                    max_regions=max(self.max_objects, 1))

    def feature_map(self) -> FeatureMapModel:
        return FeatureMapModel(self.extractor, side=self.map_side, pooling=self.pooling)

    def stored_settings(self) -> dict[str, Any]:
        return {"extractor": self.extractor, "detector": self.detector,
                "min_score": self.min_score, "max_objects": self.max_objects,
                "grid_levels": list(self.grid_levels), "pooling": self.pooling,
                "map_side": self.map_side, "storage": self.storage, "pca": self.pca,
                "pca_after": self.pca_after}


def fractions_of(box: Box, width: int, height: int) -> Box:
    """``box`` in pixels as fractions of the image's width and height, as rows store it and
    the feature map pools it."""
    return (box[0] / width, box[1] / height, box[2] / width, box[3] / height)


def from_manifest(settings: dict[str, Any]) -> dict[str, Any]:
    """A collection made before pooling embedded every cropped region in float32 rows, and
    one made before projections keeps its whole vectors: each goes on so."""
    return {"pooling": CROP, "storage": "float32", "pca": None, **settings}


@dataclass(frozen=True)
class StoredRegion:
    """A region as the catalog holds it: box as fractions of the image's size."""

    box: tuple[float, float, float, float]
    label_id: int
    score: float

    @property
    def kind(self) -> str:
        return {WINDOW: "window", WHOLE: "image"}.get(self.label_id, "object")

    def evidence(self, width: int | None, height: int | None,
                 similarity: float) -> RegionEvidence:
        scale = (width or 1, height or 1, width or 1, height or 1)
        labelled = self.label_id >= 0
        return RegionEvidence(
            region=self.kind, region_box=[round(value * size, 1) for value, size
                                          in zip(self.box, scale, strict=True)],
            label=COCO_LABELS[self.label_id] if labelled else None,
            label_score=round(self.score, 4) if labelled else None,
            similarity=round(similarity, 6))


class RegionsChannel(VectorChannel):
    """Detected objects, R-MAC windows and the whole image, embedded by the global extractor."""

    name = "regions"
    record_extra = _EXTRA

    def __init__(self, config: RegionsChannelConfig, *, extractor: Extractor | None = None,
                 detector: ObjectDetector | None = None) -> None:
        self.config = config
        self.extractor = extractor or make_extractor(config.extractor)
        self.detector = detector or make_object_detector(config.detector,
                                                         config.detector_config())
        self.feature_map = None if config.pooling == CROP else config.feature_map()
        self._learned: LearnedOn | None = None
        self._loaded: dict[str, PCAWhitening] = {}
        self._folder: Path | None = None
        self._state_lock = threading.Lock()
        super().__init__(index=config.index, exact_below=config.exact_below,
                         storage=config.storage)
        self._whole_rows = FloatRows(self.embed_dim, self.record_extra, config.storage)
        self.codec: ProjectedRows = ProjectedRows(self._whole_rows)
        self.vectors.follow = self._layout

    def manifest(self) -> dict[str, Any]:
        return {**asdict(self.config), "grid_levels": list(self.config.grid_levels),
                **self.model_info()}

    def model_info(self) -> dict[str, Any]:
        found = {"extractor_info": self.extractor.info.as_dict()}
        if self.feature_map is not None:
            found["feature_map_info"] = self.feature_map.info.as_dict()
        return found

    @property
    def dim(self) -> int:
        """The length of the stored vectors: the extractor's, or the projection's."""
        codec = getattr(self, "codec", None)
        return codec.dim if isinstance(codec, ProjectedRows) else self.embed_dim

    @property
    def embed_dim(self) -> int:
        """The length of the vectors the extractor makes, before any projection."""
        return self.extractor.info.dim

    # -- the projection ---------------------------------------------------------------------
    # What searching uses (``codec``, the index's layout) follows the catalog's committed
    # projection, read again before every sync of the index; what a write uses is read in
    # the write's own transaction each time, so a search in another thread can never make
    # a batch store rows of the wrong width.

    def attach(self, catalog: Catalog, root: Path) -> Self:
        self._folder = root / self.name
        super().attach(catalog, root)
        self._follow(catalog)
        return self

    @property
    def _projects(self) -> bool:
        return self.config.pca is not None and self.config.pca < self.embed_dim

    def _projection_for(self, catalog: Catalog) -> tuple[LearnedOn | None,
                                                          PCAWhitening | None]:
        """The projection ``catalog`` names, as this thread's connection sees it."""
        learned = LearnedOn.from_json(catalog.meta(PROJECTION_KEY))
        if learned is None or self._folder is None:
            return None, None
        with self._state_lock:
            if learned.id not in self._loaded:
                projection = load_projection(self._folder, learned)
                if projection.input_dim != self.embed_dim:
                    raise ManifestMismatchError(
                        f"expected a regions projection of {self.embed_dim}-d vectors, got "
                        f"one of {projection.input_dim}-d")
                self._loaded[learned.id] = projection
            return learned, self._loaded[learned.id]

    def _follow(self, catalog: Catalog) -> bool:
        """Search with the projection the catalog names; True when it changed."""
        learned, projection = self._projection_for(catalog)
        with self._state_lock:
            if learned == self._learned:
                return False
            self.codec = ProjectedRows(self._whole_rows, projection)
            self._learned = learned
            return True

    def _layout(self) -> Layout:
        """The layout of the rows now (the index reads it before each sync)."""
        self._follow(self.catalog)
        codec = self.codec
        return Layout(self.name, codec.dim, codec.width, codec.decode_many)

    def after_write(self, catalog: Catalog, conn: Transaction) -> None:
        """Learn the projection once enough images have regions (see the module's doc).
        Searching takes it up once the transaction has committed."""
        if (not self._projects or self._folder is None
                or self._projection_for(catalog)[0] is not None
                or catalog.vectors.count_images(self.name) < self.config.pca_after
                or catalog.vectors.count(self.name) <= 2 * (self.config.pca or 0)):
            return
        projection, _ = learn_and_rewrite(catalog, conn, self.name, self._whole_rows,
                                          self.config.pca or 0, self._folder)
        with self._state_lock:
            self._loaded[projection.id] = projection

    def prepare(self) -> None:
        if self.feature_map is not None:
            self.feature_map.load()
        else:
            self.extractor.load()
        if self.config.max_objects:
            self.detector.load()

    # -- indexing -----------------------------------------------------------------------------

    def objects(self, image: np.ndarray) -> list[Region]:
        """The objects the channel's detector finds in ``image`` (none when it is off), its
        boxes in the image's pixels as detected (indexing grows them to squares and drops
        the smallest): what a user may search by."""
        return self.detector.detect(image)[:self.config.max_objects] if (
            self.config.max_objects) else []

    def regions_of(self, image: np.ndarray) -> list[tuple[Box, int, float]]:
        """(box in pixels, label id, score) of every region of ``image``, whole image first."""
        height, width = image.shape[:2]
        regions: list[tuple[Box, int, float]] = [((0.0, 0.0, float(width), float(height)),
                                                  WHOLE, 1.0)]
        if self.config.max_objects:
            found = self.detector.detect(image)[:self.config.max_objects]
            squares = [(square_box(item.box, width, height), item.label_id, item.score)
                       for item in found]
            regions += [region for region in squares if region[0][2] - region[0][0] >= MIN_SIDE]
        regions += [(box, WINDOW, 0.0)
                    for box in grid_regions(width, height, self.config.grid_levels)]
        return regions

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        per_image = [self.regions_of(image) for image in images]
        vectors = (self._cropped_vectors(images, per_image) if self.feature_map is None
                   else self._pooled_vectors(self.feature_map, images, per_image))
        records, start = [], 0
        for image, regions in zip(images, per_image, strict=True):
            height, width = image.shape[:2]
            d = self.embed_dim
            rows = np.empty((len(regions), d + _EXTRA), dtype=np.float32)
            rows[:, :d] = vectors[start:start + len(regions)]
            for row, (box, label_id, score) in zip(rows, regions, strict=True):
                row[d:d + 4] = fractions_of(box, width, height)
                row[d + 4] = label_id
                row[d + 5] = score
            records.append(rows)
            start += len(regions)
        return records

    def _cropped_vectors(self, images: list[np.ndarray],
                         per_image: list[list[tuple[Box, int, float]]]) -> np.ndarray:
        crops = [crop(image, box) for image, regions in zip(images, per_image, strict=True)
                 for box, _, _ in regions]
        return (self.extractor.embed(crops) if crops
                else np.empty((0, self.embed_dim), np.float32))

    @staticmethod
    def _pooled_vectors(model: FeatureMapModel, images: list[np.ndarray],
                        per_image: list[list[tuple[Box, int, float]]]) -> np.ndarray:
        pooled = []
        for image, regions in zip(images, per_image, strict=True):
            height, width = image.shape[:2]
            fractions = [fractions_of(box, width, height) for box, _, _ in regions]
            pooled.append(model.pool(model.feature_map(image), fractions))
        return np.concatenate(pooled) if pooled else np.empty((0, model.dim), np.float32)

    def store(self, catalog: Catalog, conn: Transaction, image_id: int,
              extracted: np.ndarray) -> None:
        """The image's regions (projected once the collection has a projection, as this
        transaction sees it), and its detected labels as ``object`` annotations."""
        codec = ProjectedRows(self._whole_rows, self._projection_for(catalog)[1])
        catalog.vectors.replace(conn, self.name, image_id, codec.encode(extracted))
        best: dict[int, float] = {}
        d = self.embed_dim
        for row in extracted:
            label_id, score = int(row[d + 4]), float(row[d + 5])
            if label_id >= 0:
                best[label_id] = max(best.get(label_id, 0.0), score)
        catalog.annotations.replace(conn, image_id, "detector", [
            ("object", COCO_LABELS[label_id], score) for label_id, score in
            sorted(best.items(), key=lambda item: -item[1])])

    def unpack(self, blob: bytes, codec: FloatRows | None = None) -> StoredRegion:
        codec = codec or self.codec
        row, d = codec.decode(blob), codec.dim
        return StoredRegion(box=(float(row[d]), float(row[d + 1]), float(row[d + 2]),
                                 float(row[d + 3])),
                            label_id=int(row[d + 4]), score=float(row[d + 5]))

    # -- searching ------------------------------------------------------------------------------

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        """The whole query image's vector, in the stored space."""
        return self.codec.project(self._whole_query(image, None))

    def query_vector(self, image: np.ndarray, box: Box | None) -> np.ndarray:
        """The query's vector, in the stored space (see :meth:`_whole_query`)."""
        return self.codec.project(self._whole_query(image, box))

    def _whole_query(self, image: np.ndarray, box: Box | None) -> np.ndarray:
        """The whole image's vector, or the box's, grown to a square as stored objects are,
        before any projection. Pooled from the query image's own map, a box is seen at the
        scale a region of a stored image is."""
        if box is None:
            if self.feature_map is not None:
                return self.feature_map.embed_whole(image)
            return self.extractor.embed([image])
        height, width = image.shape[:2]
        square = square_box(box, width, height)
        if self.feature_map is not None:
            return self.feature_map.pool(self.feature_map.feature_map(image),
                                         [fractions_of(square, width, height)])
        return self._whole_query(crop(image, square), None)

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        return self.search_encoded(self.encode_query(image, box), k)

    def encode_query(self, image: np.ndarray, box: Box | None = None) -> np.ndarray:
        """The query's vector before any projection (a search projects it as it finds the
        stored rows)."""
        return self._whole_query(image, box)

    def search_encoded(self, query: np.ndarray, k: int) -> list[Hit]:
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        whole = query
        for _ in range(3):
            if self._follow(self.catalog):  # a projection learned since the last search
                self.vectors.mark_stale()
            self.vectors.sync()
            codec = self.codec
            chosen = self.vectors.best_per_image(codec.project(whole), k, depth=8 * k + 32)
            blobs = {vid: blob for vid, _, blob in self.catalog.vectors.blobs(
                [rid for _, _, rid in chosen], channel=self.name)}
            if self.codec is codec and all(rid in blobs for _, _, rid in chosen):
                return self._hits(chosen, blobs, codec)
            self.vectors.mark_stale()  # the rows were rewritten meanwhile: look again
        raise CollectionError(f"{self.catalog.path}: the regions kept changing layout during "
                              "the search; search again")

    def _hits(self, chosen: list[tuple[int, float, int]], blobs: Mapping[int, bytes],
              codec: FloatRows) -> list[Hit]:
        records = self.catalog.images.by_id([image_id for image_id, _, _ in chosen])
        hits = []
        for image_id, score, region_id in chosen:
            record = records.get(image_id)
            evidence = self.unpack(blobs[region_id], codec).evidence(
                record.width if record else None, record.height if record else None, score)
            hits.append(Hit(image_id=image_id, score=score, evidence=evidence))
        return hits

    def stats(self) -> dict[str, Any]:
        if self._follow(self.catalog):
            self.vectors.mark_stale()
        images = self.catalog.vectors.count_images(self.name)
        learned = self._learned
        return {**super().stats(), "regions_per_image": round(
            self.catalog.vectors.count(self.name) / images, 2) if images else 0.0,
            "stored_dim": self.dim,
            "projection_learned_on_images": learned.images if learned else None,
            **self.model_info()}


def describe(stats: Mapping[str, Any]) -> str:
    """One line about a regions channel, from its manifest entry and :meth:`stats`."""
    pooling = stats.get("pooling", CROP)
    how = (f"each crop embedded by {stats['extractor']}" if pooling == CROP else
           f"{pooling.upper()}-pooled from one {stats['extractor']} pass at "
           f"{stats['map_side']} px")
    return (f"{stats['detector']} objects + R-MAC windows at scales {stats['grid_levels']}, "
            f"{how}, {_dimensions(stats)}: {stats['vectors']} regions "
            f"({stats['regions_per_image']} per image), index {stats['index']}")


def _dimensions(stats: Mapping[str, Any]) -> str:
    stored, learned = stats.get("stored_dim"), stats.get("projection_learned_on_images")
    if learned:
        return f"stored in {stored} dims (PCA learned on {learned} images)"
    if stats.get("pca") and stored and stats["pca"] < stored:
        return (f"stored in {stored} dims until {stats['pca_after']} images teach a "
                f"{stats['pca']}-d PCA")
    return f"stored in {stored} dims"
