"""The channels a collection can have, by name, and how to rebuild one from its manifest."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from lookalike.collection.channels import Channel, GlobalChannel, GlobalChannelConfig
from lookalike.collection.faces_channel import FacesChannel, FacesChannelConfig
from lookalike.collection.local_channel import LocalChannel, LocalChannelConfig
from lookalike.collection.regions_channel import RegionsChannel, RegionsChannelConfig
from lookalike.collection.text_channel import TextChannel, TextChannelConfig
from lookalike.errors import CollectionError, LookalikeError, ValidationError

ChannelConfig = (GlobalChannelConfig | LocalChannelConfig | FacesChannelConfig
                 | RegionsChannelConfig | TextChannelConfig)
CHANNELS: dict[str, tuple[type[Channel], type[Any]]] = {
    GlobalChannel.name: (GlobalChannel, GlobalChannelConfig),
    LocalChannel.name: (LocalChannel, LocalChannelConfig),
    FacesChannel.name: (FacesChannel, FacesChannelConfig),
    RegionsChannel.name: (RegionsChannel, RegionsChannelConfig),
    TextChannel.name: (TextChannel, TextChannelConfig),
}


def check_channel_names(names: list[str]) -> list[str]:
    unknown = [name for name in names if name not in CHANNELS]
    if unknown or not names:
        raise ValidationError(f"expected channels among {sorted(CHANNELS)}, got {names!r}")
    return list(dict.fromkeys(names))


def make_channel(name: str, config: ChannelConfig | None = None) -> Channel:
    channel_class, config_class = CHANNELS[name]
    if config is not None and not isinstance(config, config_class):
        raise ValidationError(f"expected a {config_class.__name__} for the '{name}' channel, "
                              f"got {type(config).__name__}")
    factory: Any = channel_class  # each channel class takes its own config type
    channel: Channel = factory(config or config_class())
    return channel


def config_from_manifest(name: str, recorded: dict[str, Any]) -> ChannelConfig:
    """The settings a channel was recorded with; a damaged entry is a CollectionError."""
    if name not in CHANNELS:
        raise CollectionError(f"manifest: expected a known channel {sorted(CHANNELS)}, "
                              f"got '{name}'")
    config_class = CHANNELS[name][1]
    settings = {field.name: recorded[field.name] for field in fields(config_class)
                if field.name in recorded}
    if name == LocalChannel.name:
        # The collection keeps its own copy of the tree; the file it came from may be gone.
        settings["vocabulary"] = None
    try:
        config: ChannelConfig = config_class(**settings)
    except (TypeError, ValueError, LookalikeError) as error:
        raise CollectionError(f"manifest: the '{name}' channel's settings are damaged "
                              f"({error})") from error
    return config
