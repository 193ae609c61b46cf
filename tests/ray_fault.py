"""A channel that kills the Ray worker it runs in, once: for the test of a worker lost in
the middle of an indexing run.

Its first extraction anywhere creates ``marker`` and ends its process at once, as a crash
or ``kill -9`` would; every later one (the batch again, on the restarted actor) extracts the
mean colour of each image. With ``always``, every extraction ends its process. A Ray worker
imports this module when it unpickles the config, which registers the channel there too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lookalike.collection import CHANNELS, ChannelSpec, VectorChannel, register_channel
from lookalike.images import Box
from lookalike.results import Evidence, Hit

NAME = "crash_once"


@dataclass(frozen=True)
class MeanColourEvidence(Evidence):
    FEATURES: ClassVar[tuple[str, ...]] = ("similarity",)
    LOGGED: ClassVar[tuple[str, ...]] = ("similarity",)

    similarity: float | None = None

    def reason(self) -> str:
        return "similar mean colour"

    def features(self) -> dict[str, float]:
        return {"similarity": float(self.similarity or 0.0)}


@dataclass(frozen=True)
class CrashOnceConfig:
    marker: str = ""
    always: bool = False  # a file that kills every worker that reads it

    def stored_settings(self) -> dict[str, Any]:
        return {"marker": self.marker, "always": self.always}


class CrashOnceChannel(VectorChannel):
    name = NAME

    def __init__(self, config: CrashOnceConfig) -> None:
        self.config = config
        super().__init__()

    @property
    def dim(self) -> int:
        return 3

    def manifest(self) -> dict[str, Any]:
        return asdict(self.config)

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        marker = Path(self.config.marker)
        if self.config.always or not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return [self.embed_query(image) for image in images]

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        vector = image.reshape(-1, 3).mean(axis=0).astype(np.float32) + 1.0
        return (vector / np.linalg.norm(vector))[None, :]

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        scores, _, image_ids = self.vectors.nearest(self.embed_query(image), k)
        return [Hit(int(i), float(s), MeanColourEvidence(float(s)))
                for i, s in zip(image_ids, scores, strict=True)]


def describe(stats: Mapping[str, Any]) -> str:
    return f"mean colours, {stats['vectors']} images"


def register() -> None:
    if NAME not in CHANNELS:
        register_channel(ChannelSpec(NAME, CrashOnceChannel, CrashOnceConfig,
                                     MeanColourEvidence, describe))


register()
