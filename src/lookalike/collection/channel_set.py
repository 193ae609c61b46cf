"""Growing and shrinking a collection's set of channels.

Adding a channel writes it into the manifest; the images already indexed then lack its
mark, so the next ``index`` computes that channel alone for them (the others' rows are
kept, the files are read once more). Removing one deletes its rows, marks and learned
state (meta keys ``<channel>.*``) in one transaction, then its manifest entry, then its
files: a kill before the manifest is written leaves a channel with nothing indexed, which
the next ``index`` fills again; after it, only unused files.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from lookalike.collection.channels import VectorChannel
from lookalike.collection.manifest import Manifest
from lookalike.collection.registry import (
    CHANNELS,
    ChannelConfig,
    check_channel_names,
    config_from_manifest,
    make_channel,
)
from lookalike.collection.searching import RANKER_FILE
from lookalike.collection.text_index import TEXT_REVISION_KEY
from lookalike.errors import ValidationError
from lookalike.storage import Catalog


def add_channels(root: Path, catalog: Catalog, names: Sequence[str],
                 configs: Mapping[str, ChannelConfig]) -> list[str]:
    """Write the channels among ``names`` that ``root`` lacks into its manifest; returns
    them. A channel that follows the global model (regions, text) takes the collection's."""
    manifest = Manifest.load(root)
    new = [name for name in check_channel_names(list(names)) if name not in manifest.channels]
    if not new:
        return []
    whole = (config_from_manifest("global", manifest.channels["global"])
             if "global" in manifest.channels else None)
    made = []
    for name in new:
        config = configs.get(name) or CHANNELS.get(name).default_config(whole)
        channel = make_channel(name, config)
        if isinstance(channel, VectorChannel):
            channel.check_settings()
        made.append(channel)
    with catalog.writing("adding channels"):
        dataclasses.replace(manifest, channels={
            **manifest.channels, **{channel.name: channel.manifest() for channel in made}}
        ).save(root)
    return new


def remove_channel(root: Path, catalog: Catalog, name: str) -> bool:
    """Delete the channel ``name`` and all it stored; returns whether the learned ranker,
    which used it, went too."""
    manifest = Manifest.load(root)
    if name not in manifest.channels:
        raise ValidationError(f"expected a channel of this collection "
                              f"{sorted(manifest.channels)}, got '{name}'")
    if len(manifest.channels) == 1:
        raise ValidationError(f"expected a channel to remain, got a request to remove the "
                              f"only one ('{name}'); delete the collection's folder instead")
    with catalog.writing("removing a channel"):
        with catalog.transaction() as conn:
            catalog.vectors.delete_channel(conn, name)
            catalog.images.unmark_channel(conn, name)
            catalog.people.drop_empty(conn)
            # What the channel learned (its tree's id, its projection) goes with it, so
            # the channel added again later learns afresh.
            catalog.drop_meta(conn, f"{name}.",
                              [TEXT_REVISION_KEY] if name == "text" else [])
        remaining = {key: value for key, value in manifest.channels.items() if key != name}
        dataclasses.replace(manifest, channels=remaining).save(root)
        ranker_gone = _drop_ranker_using(root, name)
        for folder in (root / "cache" / name, root / name):  # derived files last
            shutil.rmtree(folder, ignore_errors=True)
    return ranker_gone


def _drop_ranker_using(root: Path, name: str) -> bool:
    """The learned ranker weighs each channel it was trained with: one trained with this
    channel no longer fits the collection."""
    from lookalike.ranking import LearnedRanker

    path = root / RANKER_FILE
    if not path.exists():
        return False
    try:
        uses = name in LearnedRanker.load(path).channels
    except (OSError, ValueError, ValidationError):
        uses = True  # a ranker that does not read is no use either
    if uses:
        path.unlink(missing_ok=True)
    return uses
