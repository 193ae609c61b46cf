"""Collections: the on-disk catalog, channels and the public :class:`Collection`."""

from lookalike.collection.channels import Channel, GlobalChannel, GlobalChannelConfig, Hit
from lookalike.collection.collection import Collection, IndexReport, SearchResult
from lookalike.collection.faces_channel import FacesChannel, FacesChannelConfig, StoredFace
from lookalike.collection.local_channel import LocalChannel, LocalChannelConfig
from lookalike.collection.people import FaceRef, People, Person, UpdateReport

__all__ = [
    "Channel",
    "Collection",
    "FaceRef",
    "FacesChannel",
    "FacesChannelConfig",
    "GlobalChannel",
    "GlobalChannelConfig",
    "Hit",
    "IndexReport",
    "LocalChannel",
    "LocalChannelConfig",
    "People",
    "Person",
    "SearchResult",
    "StoredFace",
    "UpdateReport",
]
