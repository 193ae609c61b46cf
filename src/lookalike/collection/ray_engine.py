"""Indexing on Ray: the pipeline's read, decode and extract stages as a Ray Data
``map_batches`` over a pool of actors, each building the channels and loading their models
once; the batches come back to this process, which writes them through the same sink as
the local engine.

Ray does the scheduling, the transfers and the retries: an actor that dies is restarted
and its batch run again, and since this process writes each image by its path (an upsert,
the content hash beside it), a batch done twice is written once. Order is preserved, so
image ids are those the local engine gives. What a channel needs to extract besides its
settings (the local channel's vocabulary tree) travels with it
(:meth:`~lookalike.collection.channels.Channel.extraction_state`).
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.collection.channels import Channel
from lookalike.collection.pipeline import (
    Job,
    ProgressCallback,
    Sink,
    StageTimes,
    WriteCounts,
    decode_min_side,
    decode_stage,
    extract_stage,
    read_stage,
    resolve_workers,
    write_stage,
)
from lookalike.collection.registry import make_channel
from lookalike.errors import LookalikeError
from lookalike.runtime import apply_thread_limits, set_inference_threads

#: What a worker found out about a job, sent back to the job kept in this process.
RESULT_FIELDS = ("size", "sha256", "width", "height", "error", "vectors", "embedded")


@dataclass(frozen=True)
class ChannelRecipe:
    """How a worker rebuilds a channel for extraction: its registry name, its settings and
    what it learned from the collection."""

    name: str
    config: Any
    state: Any

    @classmethod
    def of(cls, channel: Channel) -> ChannelRecipe:
        return cls(channel.name, getattr(channel, "config", None), channel.extraction_state())

    def build(self) -> Channel:
        channel = make_channel(self.name, self.config)
        channel.adopt_extraction_state(self.state)
        return channel


class ExtractWorker:
    """A Ray Data actor: builds the channels once, then reads, decodes and extracts one
    batch of pickled jobs at a time, on ``threads`` cores."""

    def __init__(self, recipes: Sequence[ChannelRecipe], max_pixels: int,
                 min_side: int | None, threads: int) -> None:
        set_inference_threads(threads)
        self.channels = [recipe.build() for recipe in recipes]
        by_name = {channel.name: channel for channel in self.channels}
        for channel in self.channels:
            channel.share_models(by_name)
            channel.prepare()
        apply_thread_limits()  # again: the models just loaded their libraries
        self.max_pixels = max_pixels
        self.min_side = min_side

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        times = StageTimes()
        jobs: list[Job] = [pickle.loads(blob) for blob in batch["job"]]
        for job in jobs:
            decode_stage(read_stage(job, times), times, self.max_pixels, self.min_side)
        extract_stage(jobs, self.channels, times)
        found = [pickle.dumps({name: getattr(job, name) for name in RESULT_FIELDS})
                 for job in jobs]
        seconds = [json.dumps(times.as_dict())] + [""] * (len(jobs) - 1)
        return {"position": batch["position"], "found": np.array(found, dtype=object),
                "seconds": np.array(seconds, dtype=object)}


def run_ray(jobs: Sequence[Job], *, sink: Sink, channels: Sequence[Channel], batch_size: int,
            workers: int | None, max_pixels: int, progress: ProgressCallback | None,
            address: str | None) -> tuple[WriteCounts, StageTimes]:
    """The pass over ``jobs`` on the Ray cluster at ``address`` (see ``RayEngine``)."""
    times, counts = StageTimes(), WriteCounts()
    if not jobs:
        return counts, times
    ray = connect(address)
    actors = resolve_workers(workers) if workers is not None else cluster_cpus(ray)
    # A short run split evenly, so that no actor idles while another does it all.
    batch_size = max(1, min(batch_size, -(-len(jobs) // actors)))
    blocks = -(-len(jobs) // batch_size)
    actors = min(actors, blocks)
    dataset = ray.data.from_items(
        [{"position": position, "job": pickle.dumps(job)} for position, job in enumerate(jobs)],
        override_num_blocks=blocks)
    extracted = dataset.map_batches(
        ExtractWorker, batch_size=batch_size, num_cpus=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        fn_constructor_kwargs={"recipes": [ChannelRecipe.of(c) for c in channels],
                               "max_pixels": max_pixels,
                               "min_side": decode_min_side(channels), "threads": 1})
    for batch in extracted.iter_batches(batch_size=batch_size, batch_format="numpy"):
        done = []
        for position, found, seconds in zip(batch["position"], batch["found"],
                                            batch["seconds"], strict=True):
            job = jobs[int(position)]
            for name, value in pickle.loads(found).items():
                setattr(job, name, value)
            done.append(job)
            _add_seconds(times, seconds)
        write_stage(sink, done, times, counts)
        if progress is not None:
            progress(len(done))
    return counts, times


def connect(address: str | None) -> Any:
    """The ``ray`` module, connected to the cluster at ``address`` (or the one this process
    already joined, or a new local one), with Ray Data set to keep the jobs' order and to
    leave progress to Lookalike."""
    try:
        import ray
    except ImportError as error:
        raise LookalikeError("the ray engine needs Ray: pip install 'lookalike[ray]'") from error
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise LookalikeError(f"cannot join the Ray cluster at {address or 'a new local one'}"
                                 f" ({error})") from error
    context = ray.data.DataContext.get_current()  # imports Ray Data, which sets its logging
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Ray Data's notices ("execution finished", "progress bars disabled": Lookalike shows
    # its own) would mix with the run's progress; its real warnings and errors still show.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    return ray


def cluster_cpus(ray: Any) -> int:
    """One actor per CPU of the cluster."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _add_seconds(times: StageTimes, seconds: str) -> None:
    if not seconds:
        return
    for stage, value in json.loads(seconds).items():
        times.add(stage, float(value))
