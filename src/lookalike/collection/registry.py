"""Channels by name: the one place a channel is declared.

A :class:`ChannelSpec` says everything the rest of Lookalike needs to know about a
channel: its class and config class, the type of its evidence (whose features a learned
ranker may use), how to describe it in one line (``lookalike info``), and how it takes part
in the default fusion. Collections, the indexing pipeline, fusion, evaluation, the CLI and
the HTTP API all derive their lists of channels from :data:`CHANNELS`; adding a channel is
one :func:`register_channel` call (see docs/architecture.md, "How to add a channel").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from lookalike.collection import (
    faces_channel,
    global_channel,
    local_channel,
    regions_channel,
    text_channel,
)
from lookalike.collection.channels import Channel
from lookalike.errors import CollectionError, LookalikeError, ValidationError
from lookalike.extractors import MODEL_SPECS
from lookalike.fusion import AutoFusion
from lookalike.registry import Registry
from lookalike.results import (
    Evidence,
    FaceEvidence,
    GlobalEvidence,
    LocalEvidence,
    RegionEvidence,
    ScoreEvidence,
    TextEvidence,
    check_channel_name,
)


class ChannelConfig(Protocol):
    """A channel's settings: a frozen dataclass whose stored settings (what shapes the rows
    it writes) are recorded when a collection is created and checked on every open."""

    def stored_settings(self) -> dict[str, Any]: ...


def describe_vectors(stats: Mapping[str, Any]) -> str:
    """The default one-line description: how many rows, in which index."""
    return f"{stats.get('vectors', 0)} vectors, index {stats.get('index', 'none')}"


@dataclass(frozen=True)
class ChannelSpec:
    """One channel, declared once.

    ``make`` builds the channel from its config (its class, usually); ``config`` is the
    config class, built with no arguments for the defaults; ``evidence`` is the type of
    its hits' evidence; ``describe`` turns its manifest entry and stats into one line;
    ``default`` puts it in new collections when no channels are named; ``image_labels``
    marks a channel whose ranking for an image query only repeats the image's own labels
    (left out of the untrained default fusion, see :class:`lookalike.fusion.AutoFusion`);
    ``from_manifest`` adjusts recorded settings before the config is rebuilt from them;
    ``follows_global`` makes the channel's default config for a new collection from the
    global channel's (regions and text use the same image model); ``in_eval_auto`` puts it
    among the channels ``lookalike eval --channel auto`` measures by default.
    """

    name: str
    make: Callable[[Any], Channel]
    config: type[Any]
    evidence: type[Evidence] = ScoreEvidence
    describe: Callable[[Mapping[str, Any]], str] = describe_vectors
    default: bool = False
    image_labels: bool = False
    from_manifest: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    follows_global: Callable[[Any], Any] | None = None
    in_eval_auto: bool = True

    def __post_init__(self) -> None:
        check_channel_name(self.name)

    def default_config(self, whole: Any = None) -> Any:
        """The default settings; ``whole``, the global channel's, when they follow it."""
        if whole is not None and self.follows_global is not None:
            return self.follows_global(whole)
        return self.config()


def _check_spec(name: str, spec: ChannelSpec) -> None:
    """A channel is stored under its class's ``name``: the spec must say the same."""
    if not isinstance(spec, ChannelSpec):
        raise ValidationError(f"expected a ChannelSpec for the channel {name!r}, got "
                              f"{type(spec).__name__}")
    declared = getattr(spec.make, "name", spec.name)
    if spec.name != name or declared != name:
        raise ValidationError(f"expected the channel {name!r} to be named so by its spec and "
                              f"its class, got {spec.name!r} and {declared!r}")


CHANNELS: Registry[ChannelSpec] = Registry("channel", group="lookalike.channels",
                                           check=_check_spec)


def register_channel(spec: ChannelSpec) -> ChannelSpec:
    """Make a channel available to every collection by its name."""
    return CHANNELS.add(spec.name, spec)


def check_channel_names(names: list[str]) -> list[str]:
    unknown = [name for name in names if name not in CHANNELS]
    if unknown or not names:
        raise ValidationError(f"expected channels among {CHANNELS.names()}, got {names!r}")
    return list(dict.fromkeys(names))


def make_channel(name: str, config: ChannelConfig | None = None) -> Channel:
    spec = CHANNELS.get(name)
    if config is not None and not isinstance(config, spec.config):
        raise ValidationError(f"expected a {spec.config.__name__} for the '{name}' channel, "
                              f"got {type(config).__name__}")
    channel = spec.make(config if config is not None else spec.default_config())
    if channel.name != name:
        raise ValidationError(f"expected the '{name}' channel's factory to make a channel "
                              f"named '{name}', got '{channel.name}'")
    return channel


def config_from_manifest(name: str, recorded: dict[str, Any]) -> Any:
    """The settings a channel was recorded with; a damaged entry is a CollectionError."""
    if name not in CHANNELS:
        raise CollectionError(f"manifest: expected a known channel {CHANNELS.names()}, "
                              f"got '{name}'")
    spec = CHANNELS.get(name)
    settings = {item.name: recorded[item.name] for item in fields(spec.config)
                if item.name in recorded}
    if spec.from_manifest is not None:
        settings = spec.from_manifest(settings)
    try:
        return spec.config(**settings)
    except (TypeError, ValueError, LookalikeError) as error:
        raise CollectionError(f"manifest: the '{name}' channel's settings are damaged "
                              f"({error})") from error


def auto_fusion() -> AutoFusion:
    """The default fusion's policy, over the channels registered now."""
    return AutoFusion(label_channels=frozenset(
        name for name, spec in CHANNELS.items() if spec.image_labels))


def _local_from_manifest(settings: dict[str, Any]) -> dict[str, Any]:
    # The collection keeps its own copy of the tree; the file it came from may be gone.
    found = {**settings, "vocabulary": None}
    if "match_retry" not in found:
        # Recorded before issue 18, when every collection paired 2 levels up: pairing is a
        # search setting, so an older collection searches with today's (finer, then coarser).
        found.pop("match_up", None)
    return found


def _regions_like(whole: global_channel.GlobalChannelConfig) -> Any:
    return regions_channel.RegionsChannelConfig(extractor=whole.extractor)


def _text_like(whole: global_channel.GlobalChannelConfig) -> Any:
    # Labels need an ImageNet classifier head; the thumbnail baseline has none.
    if whole.extractor in MODEL_SPECS:
        return text_channel.TextChannelConfig(extractor=whole.extractor)
    return text_channel.TextChannelConfig()


for _spec in (
    ChannelSpec("global", global_channel.GlobalChannel, global_channel.GlobalChannelConfig,
                GlobalEvidence, global_channel.describe, default=True,
                from_manifest=global_channel.from_manifest),
    ChannelSpec("local", local_channel.LocalChannel, local_channel.LocalChannelConfig,
                LocalEvidence, local_channel.describe, from_manifest=_local_from_manifest),
    ChannelSpec("faces", faces_channel.FacesChannel, faces_channel.FacesChannelConfig,
                FaceEvidence, faces_channel.describe, in_eval_auto=False),
    ChannelSpec("regions", regions_channel.RegionsChannel, regions_channel.RegionsChannelConfig,
                RegionEvidence, regions_channel.describe, follows_global=_regions_like,
                from_manifest=regions_channel.from_manifest),
    ChannelSpec("text", text_channel.TextChannel, text_channel.TextChannelConfig,
                TextEvidence, text_channel.describe, image_labels=True,
                follows_global=_text_like),
):
    register_channel(_spec)
