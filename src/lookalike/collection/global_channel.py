"""The ``global`` channel: one whole-image embedding per image, searched by cosine
similarity ("similar images"), optionally PCA-whitened (Jégou & Chum, ECCV 2012)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection.channels import VectorChannel, check_storage
from lookalike.errors import ValidationError
from lookalike.extractors import Extractor, make_extractor
from lookalike.images import Box, crop
from lookalike.index import parse_index_spec
from lookalike.results import GlobalEvidence, Hit
from lookalike.whitening import PCAWhitening


@dataclass(frozen=True)
class GlobalChannelConfig:
    """Settings of the global channel. ``index='auto'`` picks exact search below
    ``exact_below`` vectors and HNSW above; ``whiten`` is a PCA-whitening target
    dimension learned on the collection (None keeps the raw embedding);
    ``whiten_from`` instead loads a whitening learned elsewhere (an .npz written by
    :meth:`GlobalChannel.save_whitening`), as papers do for small collections.
    ``storage`` is how the catalog keeps each vector: ``int8`` (a quarter of the bytes, the
    default) or ``float32``; search runs on float32 either way."""

    extractor: str = "efficientnet-lite0"
    index: str = "auto"
    whiten: int | None = None
    whiten_from: str | None = None
    exact_below: int = 50_000
    storage: str = "int8"

    def __post_init__(self) -> None:
        # Checked here, when a collection is created, so a bad setting is never recorded.
        if self.whiten is not None and self.whiten_from is not None:
            raise ValidationError("expected either whiten or whiten_from, got both")
        if self.whiten is not None and (not isinstance(self.whiten, int) or self.whiten < 1):
            raise ValidationError(f"expected a positive whitening dimension, got {self.whiten!r}")
        if not isinstance(self.exact_below, int) or self.exact_below < 1:
            raise ValidationError(f"expected exact_below >= 1, got {self.exact_below!r}")
        check_storage(self.storage)
        if self.index != "auto":
            parse_index_spec(self.index)  # names and types; values are tried at creation
        if self.whiten_from is not None:
            # Recorded absolute, so a later open from another folder finds the same file.
            object.__setattr__(self, "whiten_from", os.path.abspath(self.whiten_from))
        if isinstance(self.extractor, str) and self.extractor.lower().endswith(".onnx"):
            # A trained model's file: recorded absolute too.
            object.__setattr__(self, "extractor", os.path.abspath(self.extractor))

    @property
    def whitening_key(self) -> str | None:
        """What identifies the whitening in use, for cache validity."""
        if self.whiten_from is not None:
            return f"file:{Path(self.whiten_from).resolve()}"
        return None if self.whiten is None else f"learned:{self.whiten}"

    def stored_settings(self) -> dict[str, Any]:
        """The settings that change what is stored, as opposed to how it is searched."""
        return {"extractor": self.extractor, "storage": self.storage}


def from_manifest(settings: dict[str, Any]) -> dict[str, Any]:
    """A collection made before int8 storage keeps float32 vectors."""
    return {"storage": "float32", **settings}


class ConfiguredWhitening:
    """The global channel's whitening: learned on the collection once it has more vectors
    than the target dimension, and again each time it doubles; or read from a file."""

    def __init__(self, config: GlobalChannelConfig, dim: int) -> None:
        self.config = config
        self.dim = dim

    @property
    def key(self) -> str | None:
        return self.config.whitening_key

    @property
    def output_dim(self) -> int | None:
        return self.config.whiten

    def relearn(self, whitened_on: int, n_vectors: int) -> bool:
        learn = self.config.whiten
        return learn is not None and ((whitened_on == 0 and n_vectors > learn)
                                      or n_vectors >= 2 * max(whitened_on, 1))

    def learn(self, matrix: np.ndarray) -> tuple[PCAWhitening | None, int]:
        if self.config.whiten_from is not None:
            whitening = PCAWhitening.load(Path(self.config.whiten_from))
            if whitening.input_dim != self.dim:
                raise ValidationError(
                    f"{self.config.whiten_from}: expected a whitening for {self.dim}-d vectors, "
                    f"got one for {whitening.input_dim}-d")
            return whitening, -1
        if self.config.whiten is not None and len(matrix) > self.config.whiten:
            return PCAWhitening(self.config.whiten).fit(matrix), len(matrix)
        # Too few vectors to learn it yet: search unwhitened until there are enough.
        return None, 0


class GlobalChannel(VectorChannel):
    """One whole-image embedding per image, searched by cosine similarity."""

    name = "global"

    def __init__(self, config: GlobalChannelConfig, *, extractor: Extractor | None = None) -> None:
        self.config = config
        self.extractor = extractor or make_extractor(config.extractor)
        super().__init__(index=config.index, exact_below=config.exact_below,
                         whitening=ConfiguredWhitening(config, self.dim), storage=config.storage)

    def manifest(self) -> dict[str, Any]:
        return {**asdict(self.config), **self.model_info()}

    def model_info(self) -> dict[str, Any]:
        return {"extractor_info": self.extractor.info.as_dict()}

    @property
    def dim(self) -> int:
        return self.extractor.info.dim

    @property
    def min_image_side(self) -> int | None:
        preprocessing = getattr(self.extractor, "preprocessing", None)
        return None if preprocessing is None else int(preprocessing.resize_shorter)

    def prepare(self) -> None:
        self.extractor.load()

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        vectors = self.extractor.embed(images)
        return [row[None, :] for row in vectors]

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        """The query's vector in the space the index holds (whitened when configured)."""
        whitening = self.vectors.whitening()
        vector = self.extractor.embed([image])
        return whitening.transform(vector) if whitening else vector

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        return self.search_encoded(self.encode_query(image, box), k)

    def encode_query(self, image: np.ndarray, box: Box | None = None) -> np.ndarray:
        return self.embed_query(crop(image, box))

    def search_encoded(self, query: np.ndarray, k: int) -> list[Hit]:
        scores, _, image_ids = self.vectors.nearest(query, k)
        return [Hit(int(image_id), float(score), GlobalEvidence(round(float(score), 6)))
                for image_id, score in zip(image_ids, scores, strict=True)]

    def save_whitening(self, path: Path) -> None:
        """Write the whitening in use, to reuse it on another collection (``whiten_from``)."""
        whitening = self.vectors.whitening()
        if whitening is None:
            raise ValidationError("expected a collection opened with a learned whitening, got none")
        whitening.save(path)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "whitening": self.config.whitening_key,
                "extractor_info": self.extractor.info.as_dict()}


def describe(stats: Mapping[str, Any]) -> str:
    """One line about a global channel, from its manifest entry and :meth:`stats`."""
    extractor = stats["extractor_info"]
    return (f"{extractor['name']} v{extractor['version']} ({extractor['dim']}-d, "
            f"{extractor['metric']}), {stats['vectors']} vectors, index {stats['index']}, "
            f"whitening {stats['whitening'] or 'none'}")
