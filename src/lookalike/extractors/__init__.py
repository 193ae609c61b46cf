"""Global image extractors: the contract, the registry and the built-in models."""

from lookalike.extractors import onnx, thumbnail
from lookalike.extractors.base import (
    EXTRACTORS,
    Extractor,
    ExtractorInfo,
    available_extractors,
    l2_normalise,
    make_extractor,
    register_extractor,
)
from lookalike.extractors.onnx import MODEL_SPECS, OnnxExtractor
from lookalike.extractors.preprocessing import Preprocessing

__all__ = [
    "EXTRACTORS",
    "MODEL_SPECS",
    "Extractor",
    "ExtractorInfo",
    "OnnxExtractor",
    "Preprocessing",
    "available_extractors",
    "l2_normalise",
    "make_extractor",
    "onnx",
    "register_extractor",
    "thumbnail",
]
