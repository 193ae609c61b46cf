"""Collections: the on-disk catalog, channels and the public :class:`Collection`."""

from lookalike.collection.annotations import Annotations, ImportReport
from lookalike.collection.catalog import AnnotationRecord, ImageRecord
from lookalike.collection.channels import Channel, GlobalChannel, GlobalChannelConfig, Hit
from lookalike.collection.collection import Collection, IndexReport, SearchResult
from lookalike.collection.faces_channel import FacesChannel, FacesChannelConfig, StoredFace
from lookalike.collection.filters import SearchFilter
from lookalike.collection.learning import Feedback
from lookalike.collection.local_channel import LocalChannel, LocalChannelConfig
from lookalike.collection.media import THUMBNAIL_SIZES, Media
from lookalike.collection.people import FaceRef, ImageFace, People, Person, UpdateReport
from lookalike.collection.regions_channel import RegionsChannel, RegionsChannelConfig
from lookalike.collection.text_channel import TextChannel, TextChannelConfig

__all__ = [
    "THUMBNAIL_SIZES",
    "AnnotationRecord",
    "Annotations",
    "Channel",
    "Collection",
    "FaceRef",
    "FacesChannel",
    "FacesChannelConfig",
    "Feedback",
    "GlobalChannel",
    "GlobalChannelConfig",
    "Hit",
    "ImageFace",
    "ImageRecord",
    "ImportReport",
    "IndexReport",
    "LocalChannel",
    "LocalChannelConfig",
    "Media",
    "People",
    "Person",
    "RegionsChannel",
    "RegionsChannelConfig",
    "SearchFilter",
    "SearchResult",
    "StoredFace",
    "TextChannel",
    "TextChannelConfig",
    "UpdateReport",
]
