"""Collections: the on-disk catalog, channels and the public :class:`Collection`."""

from lookalike.collection.channels import Channel, GlobalChannel, GlobalChannelConfig, Hit
from lookalike.collection.collection import Collection, IndexReport, SearchResult
from lookalike.collection.local_channel import LocalChannel, LocalChannelConfig

__all__ = [
    "Channel",
    "Collection",
    "GlobalChannel",
    "GlobalChannelConfig",
    "Hit",
    "IndexReport",
    "LocalChannel",
    "LocalChannelConfig",
    "SearchResult",
]
