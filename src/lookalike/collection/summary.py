"""What ``Collection.info`` reports: images, disk use, folders, exclusions and channels."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lookalike.collection.channels import Channel
from lookalike.collection.exclusions import read_exclusions, read_roots
from lookalike.collection.manifest import Manifest
from lookalike.collection.media import folder_bytes
from lookalike.collection.registry import CHANNELS
from lookalike.storage import Catalog


def collection_info(root: Path, catalog: Catalog, channels: Mapping[str, Channel]
                    ) -> dict[str, Any]:
    """Images, disk use, the folders indexed and what is kept out, and per channel:
    settings, stats, summary, bytes per image."""
    manifest = Manifest.load(root)
    images = catalog.images.count("indexed")
    described = {}
    for name, channel in channels.items():
        found = {**manifest.channels.get(name, {}), **channel.stats()}
        stored = catalog.vectors.total_bytes(name)
        described[name] = {**found, "summary": CHANNELS.get(name).describe(found),
                           "stored_bytes_per_image": round(stored / images) if images else 0}
    return {
        "root": str(root), "created_at": manifest.created_at,
        "created_by": manifest.created_by, "images": images,
        "failed": catalog.images.count("failed"), "disk_bytes": folder_bytes(root),
        "folders": read_roots(catalog), "excluded": list(read_exclusions(catalog).patterns),
        "channels": described,
    }
