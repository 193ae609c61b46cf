"""Global image extractors: the contract, the registry and the built-in models."""

from lookalike.extractors import onnx, thumbnail
from lookalike.extractors.base import (
    Extractor,
    ExtractorInfo,
    available_extractors,
    l2_normalise,
    make_extractor,
    register_extractor,
)
from lookalike.extractors.preprocessing import Preprocessing

__all__ = [
    "Extractor",
    "ExtractorInfo",
    "Preprocessing",
    "available_extractors",
    "l2_normalise",
    "make_extractor",
    "onnx",
    "register_extractor",
    "thumbnail",
]
