"""Vector index backends behind one contract, :class:`VectorIndex`.

``make_index("hnsw:M=16", dim)`` builds one from a spec string, ``load_index(path)``
reads back whichever backend a file holds, and :class:`FlatIndex` is the exact
reference the approximate backends are measured against.
"""

from lookalike.index.base import VectorIndex
from lookalike.index.faiss_backends import HNSWIndex, IVFPQIndex  # registers "hnsw", "ivfpq"
from lookalike.index.flat import FlatIndex  # registers "flat"
from lookalike.index.registry import (
    INDEXES,
    available_indexes,
    choose_index_spec,
    get_index_class,
    load_index,
    make_index,
    parse_index_spec,
    register_index,
    registered_indexes,
)

__all__ = [
    "INDEXES",
    "FlatIndex",
    "HNSWIndex",
    "IVFPQIndex",
    "VectorIndex",
    "available_indexes",
    "choose_index_spec",
    "get_index_class",
    "load_index",
    "make_index",
    "parse_index_spec",
    "register_index",
    "registered_indexes",
]
