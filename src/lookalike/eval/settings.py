"""How a benchmark builds and searches its collection, and the figures every report shares.

The database of a data set is indexed into a collection that is cached between runs
(keyed by the data set's files and the settings that shape what is stored), or into one
the caller gives, so repeated evaluations only pay for the queries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lookalike.collection import CHANNELS, Collection, GlobalChannelConfig
from lookalike.errors import LookalikeError, ValidationError
from lookalike.eval import metrics
from lookalike.fusion import FUSIONS
from lookalike.paths import atomic_write_bytes, cache_dir, catalog_key

Progress = Callable[[int, int], None]
_INDEX_STATS = "eval_index_stats.json"


@dataclass(frozen=True)
class EvalSettings:
    """How to build and search the collection under evaluation.

    The collection gets only the channels the evaluation searches: ``channel``, or for
    ``auto`` those in ``auto_channels`` (global, local, regions and text by default), whose
    rankings are reported alone and fused every way side by side; ``fusion`` is the one
    reported as the headline figures. ``configs`` gives channels their settings; a channel
    left out gets its defaults, and the regions and text channels embed and label with the
    global channel's model (``ChannelSpec.follows_global``).
    """

    channel: str = "global"
    configs: Mapping[str, Any] = field(default_factory=dict)
    collection: Path | None = None
    fusion: str = "auto"
    auto_channels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        known = CHANNELS.names()
        if self.channel != "auto" and self.channel not in known:
            raise ValidationError(f"expected a channel among {[*known, 'auto']}, got "
                                  f"'{self.channel}'")
        if self.fusion not in FUSIONS:
            raise ValidationError(f"expected a fusion among {list(FUSIONS)}, got "
                                  f"'{self.fusion}'")
        if not self.auto_channels:
            object.__setattr__(self, "auto_channels", default_auto_channels())
        unknown = [name for name in self.auto_channels if name not in known]
        if unknown or not self.auto_channels:
            raise ValidationError(f"expected auto channels among {known}, got "
                                  f"{list(self.auto_channels)}")
        object.__setattr__(self, "configs", dict(self.configs))

    @property
    def channels(self) -> list[str]:
        return list(self.auto_channels) if self.channel == "auto" else [self.channel]

    def config(self, name: str) -> Any:
        """The settings of channel ``name`` in this evaluation."""
        if name in self.configs:
            return self.configs[name]
        return CHANNELS.get(name).default_config(self.configs.get("global")
                                                 or GlobalChannelConfig())

    def stored_settings(self) -> dict[str, Any]:
        """What shapes the stored data, hence the cache folder."""
        stored = {}
        for name in self.channels:
            config = self.config(name)
            identity = getattr(config, "cache_identity", config.stored_settings)
            stored[name] = identity()
        return stored


def default_auto_channels() -> tuple[str, ...]:
    """What ``auto`` measures unless told: every channel that searches any picture (all
    registered ones but the faces channel, which face benchmarks measure)."""
    return tuple(name for name, spec in CHANNELS.items() if spec.in_eval_auto)


def default_collection_dir(dataset_name: str, files: tuple[Path, ...],
                           settings: EvalSettings) -> Path:
    """A cache folder keyed by the dataset's files and the stored-data settings."""
    digest = hashlib.sha1()
    for path in sorted(files):
        digest.update(catalog_key(path).encode())
    stored = settings.stored_settings()
    # Global-only keys stay as they were, so existing caches remain valid.
    key = stored["global"] if list(stored) == ["global"] else stored
    digest.update(json.dumps(key, sort_keys=True).encode())
    return cache_dir() / "eval" / f"{dataset_name}-{digest.hexdigest()[:12]}"


def build_collection(name: str, files: tuple[Path, ...], settings: EvalSettings,
                     progress: Progress | None = None) -> tuple[Collection, float]:
    """Open (and if needed fill) the evaluation collection; returns it and images/s."""
    root = settings.collection or default_collection_dir(name, files, settings)
    collection = Collection(root, channels=settings.channels,
                            configs={name: settings.config(name)
                                     for name in settings.channels}).open()
    report = collection.index(list(files), progress=progress)
    stats_path = root / _INDEX_STATS
    if report.processed:
        stats = {"index_images_per_s": report.images_per_s, "stage_seconds": report.stage_seconds,
                 "prepare_seconds": report.prepare_seconds, "images": report.processed}
        atomic_write_bytes(stats_path, json.dumps(stats).encode())
    if report.failures:
        collection.close()
        first = "; ".join(f"{path}: {reason}" for path, reason in report.failures[:3])
        raise LookalikeError(f"{len(report.failures)} database images failed to index ({first})")
    collection.save()
    throughput = 0.0
    if stats_path.exists():
        throughput = float(json.loads(stats_path.read_text())["index_images_per_s"])
    return collection, throughput


def common_report(n_queries: int, throughput: float, latencies: list[float],
                  settings: EvalSettings) -> dict[str, Any]:
    """The figures and settings every report carries: counts, speed, and per channel its
    settings (the global channel's model, whitening and index at the top level)."""
    percentiles = metrics.latency_percentiles(latencies)
    common: dict[str, Any] = {
        "n_queries": n_queries,
        "index_images_per_s": round(throughput, 2),
        "query_ms_p50": percentiles["p50_ms"],
        "query_ms_p99": percentiles["p99_ms"],
        "channel": settings.channel,
    }
    for name in settings.channels:
        config = settings.config(name)
        if isinstance(config, GlobalChannelConfig):
            common.update(extractor=config.extractor, whitening=config.whitening_key,
                          index=config.index)
        else:
            common[name] = asdict(config)
    return common
