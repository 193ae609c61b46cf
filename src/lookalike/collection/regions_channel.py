"""The regions channel: objects and windows inside each image, searchable on their own.

Each image is stored as several regions, each embedded with the global extractor:

* the objects a COCO detector finds (box, label, score), grown to squares;
* class-agnostic R-MAC windows at a few scales (:mod:`lookalike.regions.grid`), so that
  things the detector has no name for still have a region;
* the whole image, so a query matches whole images *and* regions in one search.

A catalog row is the unit vector followed by the region's box (as fractions of the image's
width and height, so it holds at any decode size), its COCO label id (-1 for a window, -2 for
the whole image) and the detector's score. A query (an image or a user's crop) is embedded
once and matched against every region; each image scores by its best region, which is
returned as evidence. The detector's labels are also stored as the image's ``object``
annotations, for text search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lookalike.collection.channels import VectorChannel
from lookalike.errors import expect
from lookalike.extractors import Extractor, make_extractor
from lookalike.images import Box, crop
from lookalike.index import parse_index_spec
from lookalike.regions import COCO_LABELS, DETECTORS, ObjectDetector, ObjectDetectorConfig
from lookalike.regions import make_detector as make_object_detector
from lookalike.regions.grid import MIN_SIDE, grid_regions, square_box
from lookalike.results import Hit, RegionEvidence
from lookalike.storage import Catalog, Transaction

_EXTRA = 4 + 1 + 1  # box, label id, score after the vector
WINDOW, WHOLE = -1, -2


@dataclass(frozen=True)
class RegionsChannelConfig:
    """Settings of the regions channel: the embedder, the detector and its thresholds
    (``min_score``, at most ``max_objects`` per image), and the R-MAC scales of the
    class-agnostic windows (``grid_levels``; empty for none)."""

    extractor: str = "efficientnet-lite0"
    detector: str = "nanodet"
    min_score: float = 0.4
    max_objects: int = 10
    grid_levels: tuple[int, ...] = (2, 3)
    index: str = "auto"
    exact_below: int = 50_000

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
        self.detector_config()  # checks the score
        if self.index != "auto":
            parse_index_spec(self.index)

    def detector_config(self) -> ObjectDetectorConfig:
        return ObjectDetectorConfig(min_score=self.min_score,
                                    max_regions=max(self.max_objects, 1))

    def stored_settings(self) -> dict[str, Any]:
        return {"extractor": self.extractor, "detector": self.detector,
                "min_score": self.min_score, "max_objects": self.max_objects,
                "grid_levels": list(self.grid_levels)}


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
        super().__init__(index=config.index, exact_below=config.exact_below)

    def manifest(self) -> dict[str, Any]:
        return {**asdict(self.config), "grid_levels": list(self.config.grid_levels),
                **self.model_info()}

    def model_info(self) -> dict[str, Any]:
        return {"extractor_info": self.extractor.info.as_dict()}

    @property
    def dim(self) -> int:
        return self.extractor.info.dim

    @property
    def min_image_side(self) -> int | None:
        # Windows at scale 3 are half the shorter side: 480 px leaves them 240 px, more
        # than the embedder's 224 px input.
        return 480

    def prepare(self) -> None:
        self.extractor.load()
        if self.config.max_objects:
            self.detector.load()

    # -- indexing -----------------------------------------------------------------------------

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
        crops = [crop(image, box) for image, regions in zip(images, per_image, strict=True)
                 for box, _, _ in regions]
        vectors = self.extractor.embed(crops) if crops else np.empty((0, self.dim), np.float32)
        records, start = [], 0
        for image, regions in zip(images, per_image, strict=True):
            height, width = image.shape[:2]
            rows = np.empty((len(regions), self.codec.width), dtype=np.float32)
            rows[:, :self.dim] = vectors[start:start + len(regions)]
            for row, (box, label_id, score) in zip(rows, regions, strict=True):
                row[self.dim:self.dim + 4] = (box[0] / width, box[1] / height, box[2] / width,
                                              box[3] / height)
                row[self.dim + 4] = label_id
                row[self.dim + 5] = score
            records.append(rows)
            start += len(regions)
        return records

    def store(self, catalog: Catalog, conn: Transaction, image_id: int,
              extracted: np.ndarray) -> None:
        """The image's regions, and its detected labels as ``object`` annotations."""
        super().store(catalog, conn, image_id, extracted)
        best: dict[int, float] = {}
        for row in extracted:
            label_id, score = int(row[self.dim + 4]), float(row[self.dim + 5])
            if label_id >= 0:
                best[label_id] = max(best.get(label_id, 0.0), score)
        catalog.annotations.replace(conn, image_id, "detector", [
            ("object", COCO_LABELS[label_id], score) for label_id, score in
            sorted(best.items(), key=lambda item: -item[1])])

    def unpack(self, blob: bytes) -> StoredRegion:
        row = self.codec.decode(blob)
        d = self.dim
        return StoredRegion(box=(float(row[d]), float(row[d + 1]), float(row[d + 2]),
                                 float(row[d + 3])),
                            label_id=int(row[d + 4]), score=float(row[d + 5]))

    # -- searching ------------------------------------------------------------------------------

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        return self.extractor.embed([image])

    def query_vector(self, image: np.ndarray, box: Box | None) -> np.ndarray:
        """The query's vector: the whole image, or the crop grown to a square as stored
        objects are."""
        if box is None:
            return self.embed_query(image)
        height, width = image.shape[:2]
        return self.embed_query(crop(image, square_box(box, width, height)))

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        chosen = self.vectors.best_per_image(self.query_vector(image, box), k,
                                             depth=8 * k + 32)
        blobs = {vid: blob for vid, _, blob in
                 self.catalog.vectors.blobs([rid for _, _, rid in chosen], channel=self.name)}
        records = self.catalog.images.by_id([image_id for image_id, _, _ in chosen])
        hits = []
        for image_id, score, region_id in chosen:
            record = records.get(image_id)
            evidence = self.unpack(blobs[region_id]).evidence(
                record.width if record else None, record.height if record else None, score)
            hits.append(Hit(image_id=image_id, score=score, evidence=evidence))
        return hits

    def stats(self) -> dict[str, Any]:
        images = self.catalog.vectors.count_images(self.name)
        return {**super().stats(), "regions_per_image": round(
            self.catalog.vectors.count(self.name) / images, 2) if images else 0.0,
            "extractor_info": self.extractor.info.as_dict()}


def describe(stats: Mapping[str, Any]) -> str:
    """One line about a regions channel, from its manifest entry and :meth:`stats`."""
    return (f"{stats['detector']} objects + R-MAC windows at scales {stats['grid_levels']}, "
            f"embedded by {stats['extractor']}: {stats['vectors']} regions "
            f"({stats['regions_per_image']} per image), index {stats['index']}")
