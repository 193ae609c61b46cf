"""Collections: the on-disk catalog, channels and the public :class:`Collection`."""

from lookalike.collection.channels import Channel, GlobalChannel, GlobalChannelConfig, Hit
from lookalike.collection.collection import Collection, IndexReport, SearchResult

__all__ = [
    "Channel",
    "Collection",
    "GlobalChannel",
    "GlobalChannelConfig",
    "Hit",
    "IndexReport",
    "SearchResult",
]
