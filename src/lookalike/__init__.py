"""Lookalike: a visual search engine for image collections, fast on a plain CPU.

The library is the product; the ``lookalike`` command, and later the HTTP API
and the web page, are thin adapters over it::

    from lookalike import Collection

    with Collection("photos.lookalike").open() as collection:
        collection.index(["~/Pictures"])
        results = collection.search("query.jpg", k=10)
"""

__version__ = "0.1.0"

from lookalike.collection import (
    Collection,
    FacesChannelConfig,
    GlobalChannelConfig,
    IndexReport,
    LocalChannelConfig,
    SearchResult,
)
from lookalike.errors import (
    CollectionError,
    ImageError,
    LookalikeError,
    ManifestMismatchError,
    MissingDependencyError,
    NotFoundError,
    ValidationError,
)
from lookalike.images import load_image

__all__ = [
    "Collection",
    "CollectionError",
    "FacesChannelConfig",
    "GlobalChannelConfig",
    "ImageError",
    "IndexReport",
    "LocalChannelConfig",
    "LookalikeError",
    "ManifestMismatchError",
    "MissingDependencyError",
    "NotFoundError",
    "SearchResult",
    "ValidationError",
    "__version__",
    "load_image",
]
