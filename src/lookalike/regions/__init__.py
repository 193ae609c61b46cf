"""Object regions: find the objects in an image (box, COCO label, score) so that each can be
embedded and searched on its own, and a crop of a photo can match an object inside another.

This package holds the detectors (:mod:`lookalike.regions.detect`) and the COCO label names
(:mod:`lookalike.regions.coco`); the region channel that embeds and indexes the regions comes
later.
"""

from __future__ import annotations

from lookalike.regions.coco import COCO_LABELS
from lookalike.regions.detect import (
    DETECTORS,
    NanoDetDetector,
    ObjectDetector,
    ObjectDetectorConfig,
    Region,
    make_detector,
)

__all__ = [
    "COCO_LABELS",
    "DETECTORS",
    "NanoDetDetector",
    "ObjectDetector",
    "ObjectDetectorConfig",
    "Region",
    "make_detector",
]
