"""Collections: the public :class:`Collection`, its channels and what it hands out.

To add a channel, subclass :class:`Channel` (or :class:`VectorChannel`) and declare it
once with :func:`register_channel` (docs/architecture.md, "How to add a channel").
"""

from lookalike.collection.annotations import Annotations, ImportReport
from lookalike.collection.channels import (
    Channel,
    FloatRows,
    NoRows,
    RecordCodec,
    TextSearching,
    VectorChannel,
)
from lookalike.collection.collection import MAX_ID, Collection
from lookalike.collection.duplicates import NEAR_THRESHOLD, DuplicateGroup, find_duplicates
from lookalike.collection.engines import ENGINES, Engine, LocalEngine, RayEngine, make_engine
from lookalike.collection.exclusions import Exclusions, let_in
from lookalike.collection.faces_channel import FacesChannel, FacesChannelConfig, StoredFace
from lookalike.collection.filters import SearchFilter
from lookalike.collection.global_channel import GlobalChannel, GlobalChannelConfig
from lookalike.collection.indexing import IndexReport
from lookalike.collection.learning import Feedback
from lookalike.collection.local_channel import LocalChannel, LocalChannelConfig
from lookalike.collection.media import THUMBNAIL_SIZES, Media
from lookalike.collection.people import FaceRef, ImageFace, People, Person, UpdateReport
from lookalike.collection.regions_channel import RegionsChannel, RegionsChannelConfig
from lookalike.collection.registry import (
    CHANNELS,
    ChannelConfig,
    ChannelSpec,
    auto_fusion,
    register_channel,
)
from lookalike.collection.sharded import (
    MERGEABLE,
    ShardedCollection,
    ShardedResults,
    is_sharded,
)
from lookalike.collection.sharding import ShardSet, shard_of, split_collection
from lookalike.collection.text_channel import TextChannel, TextChannelConfig
from lookalike.results import Hit, SearchResult
from lookalike.storage import DEFAULT_WAIT, AnnotationRecord, ImageRecord

__all__ = [
    "CHANNELS",
    "DEFAULT_WAIT",
    "ENGINES",
    "MAX_ID",
    "MERGEABLE",
    "NEAR_THRESHOLD",
    "THUMBNAIL_SIZES",
    "AnnotationRecord",
    "Annotations",
    "Channel",
    "ChannelConfig",
    "ChannelSpec",
    "Collection",
    "DuplicateGroup",
    "Engine",
    "Exclusions",
    "FaceRef",
    "FacesChannel",
    "FacesChannelConfig",
    "Feedback",
    "FloatRows",
    "GlobalChannel",
    "GlobalChannelConfig",
    "Hit",
    "ImageFace",
    "ImageRecord",
    "ImportReport",
    "IndexReport",
    "LocalChannel",
    "LocalChannelConfig",
    "LocalEngine",
    "Media",
    "NoRows",
    "People",
    "Person",
    "RayEngine",
    "RecordCodec",
    "RegionsChannel",
    "RegionsChannelConfig",
    "SearchFilter",
    "SearchResult",
    "ShardSet",
    "ShardedCollection",
    "ShardedResults",
    "StoredFace",
    "TextChannel",
    "TextChannelConfig",
    "TextSearching",
    "UpdateReport",
    "VectorChannel",
    "auto_fusion",
    "find_duplicates",
    "is_sharded",
    "let_in",
    "make_engine",
    "register_channel",
    "shard_of",
    "split_collection",
]
