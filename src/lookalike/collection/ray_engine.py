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
import socket
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from lookalike.errors import LookalikeError, MissingDependencyError
from lookalike.images import NOT_FOUND
from lookalike.runtime import apply_thread_limits, set_inference_threads

#: What a worker found out about a job, sent back to the job kept in this process.
RESULT_FIELDS = ("size", "sha256", "width", "height", "error", "vectors", "embedded")


#: Whether this process started the Ray it is connected to (so :func:`release` stops it).
_started_here = False

#: How often Ray runs a batch again after the worker running it died, before the run stops
#: (a file that kills its worker each time must not make the run go round for ever).
RETRIES = 3


@dataclass(frozen=True)
class ChannelRecipe:
    """How a worker rebuilds a channel for extraction: its registry name, its settings,
    what it learned from the collection, and its manifest to check the result against."""

    name: str
    config: Any
    state: Any
    manifest: dict[str, Any]

    @classmethod
    def of(cls, channel: Channel) -> ChannelRecipe:
        if not hasattr(channel, "config"):
            raise LookalikeError(
                f"the '{channel.name}' channel has no config: the ray engine rebuilds each "
                "channel on its workers from its registry entry and config; index with the "
                "local engine")
        return cls(channel.name, channel.config, channel.extraction_state(), channel.manifest())

    def build(self) -> Channel:
        channel = make_channel(self.name, self.config)
        channel.adopt_extraction_state(self.state)
        if channel.manifest() != self.manifest:
            raise LookalikeError(
                f"the '{self.name}' channel a Ray worker built differs from this process's "
                f"(expected {self.manifest}, got {channel.manifest()}); install the same "
                "Lookalike and models on every node")
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
        self.node = socket.gethostname()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        times = StageTimes()
        jobs: list[Job] = [pickle.loads(blob) for blob in batch["job"]]
        # A file this node cannot see is a setup error (no shared file system), not a bad
        # file: this process reports it instead of recording it as failed.
        unseen = [job.path is not None and not job.path.exists() for job in jobs]
        ready = [job for job, missing in zip(jobs, unseen, strict=True) if not missing]
        for job in ready:
            decode_stage(read_stage(job, times), times, self.max_pixels, self.min_side)
        extract_stage(ready, self.channels, times)
        found = [pickle.dumps({name: getattr(job, name) for name in RESULT_FIELDS})
                 for job in jobs]
        seconds = [json.dumps(times.as_dict())] + [""] * (len(jobs) - 1)
        return {"position": batch["position"], "found": np.array(found, dtype=object),
                "seconds": np.array(seconds, dtype=object),
                "unseen": np.array([self.node if missing else "" for missing in unseen],
                                   dtype=object)}


def run_ray(jobs: Sequence[Job], *, sink: Sink, channels: Sequence[Channel], batch_size: int,
            workers: int | None, max_pixels: int, progress: ProgressCallback | None,
            address: str | None) -> tuple[WriteCounts, StageTimes]:
    """The pass over ``jobs`` on the Ray cluster at ``address`` (see ``RayEngine``)."""
    times, counts = StageTimes(), WriteCounts()
    if not jobs:
        return counts, times
    ray = connect(address)
    recipes = [ChannelRecipe.of(channel) for channel in channels]
    actors = resolve_workers(workers) if workers is not None else cluster_cpus(ray)
    # A short run split evenly, so that no actor idles while another does it all.
    batch_size = max(1, min(batch_size, -(-len(jobs) // actors)))
    blocks = -(-len(jobs) // batch_size)
    with ray_data_settings(ray):
        dataset = ray.data.from_items(
            [{"position": position, "job": pickle.dumps(job)}
             for position, job in enumerate(jobs)], override_num_blocks=blocks)
        with warnings.catch_warnings():
            # Ray 2.60 warns that ray_remote_args_fn goes in 2.64; lookalike[ray] pins 2.60,
            # and the notice means nothing to someone indexing photos.
            warnings.filterwarnings("ignore", message=".*ray_remote_args_fn.*")
            extracted = dataset.map_batches(
                ExtractWorker, batch_size=batch_size, num_cpus=1, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=min(actors, blocks)),
                ray_remote_args_fn=retry_limits,
                fn_constructor_kwargs={"recipes": recipes, "max_pixels": max_pixels,
                                       "min_side": decode_min_side(channels), "threads": 1})
        batches = iter(extracted.iter_batches(batch_size=batch_size, batch_format="numpy"))
        try:
            while (batch := _next_batch(batches, counts)) is not None:
                done = _finished(jobs, batch, times)
                write_stage(sink, done, times, counts)
                if progress is not None:
                    progress(len(done))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:  # stops the pipeline now, not when it is collected
                close()
    return counts, times


def retry_limits() -> dict[str, Any]:
    """The workers' actor options: Ray Data's default retries a dead worker's batch for ever."""
    return {"max_restarts": RETRIES, "max_task_retries": RETRIES}


def _next_batch(batches: Iterator[dict[str, np.ndarray]], counts: WriteCounts
                ) -> dict[str, np.ndarray] | None:
    """The next batch from the cluster; a failure of the cluster (a worker that died on
    every retry, a node lost) as a LookalikeError that says what was kept."""
    try:
        return next(batches)
    except StopIteration:
        return None
    except LookalikeError:
        raise
    except Exception as error:  # whatever Ray raises for a failed task or a lost node
        written = sum(1 for outcome in counts.outcomes.values() if outcome != "failed")
        raise LookalikeError(
            f"the Ray cluster failed during indexing ({summary_of(error)}); "
            f"a batch failed {RETRIES + 1} times or a node was lost. The {written} images "
            "written so far are kept: index again to go on, or index with --engine local "
            "to find a file that breaks a worker") from error


def _finished(jobs: Sequence[Job], batch: dict[str, np.ndarray], times: StageTimes
              ) -> list[Job]:
    """This process's jobs of ``batch``, with what the workers found."""
    done = []
    for position, found, seconds, unseen in zip(batch["position"], batch["found"],
                                                batch["seconds"], batch["unseen"], strict=True):
        job = jobs[int(position)]
        if unseen:
            if job.path is not None and job.path.exists():
                raise LookalikeError(
                    f"{job.key}: the Ray worker on {unseen} cannot see this file; with "
                    "--engine ray, every node must see the files at the same paths (a shared "
                    "file system)")
            job.error = NOT_FOUND  # gone since it was listed, as the local engine says
            done.append(job)
            continue
        for name, value in pickle.loads(found).items():
            setattr(job, name, value)
        done.append(job)
        _add_seconds(times, seconds)
    return done


def connect(address: str | None) -> Any:
    """The ``ray`` module, connected to the cluster at ``address``: the one this process
    already joined (which must be that one), or a new connection; None joins the cluster
    that ``RAY_ADDRESS`` or ``ray start`` names, or starts a local one."""
    try:
        import ray
    except ImportError as error:
        raise MissingDependencyError("ray", "the ray engine", "ray") from error
    if ray.is_initialized():
        current = ray.get_runtime_context().gcs_address
        if address not in (None, "auto") and not str(address).startswith("ray://") \
                and address != current:
            raise LookalikeError(f"expected the Ray cluster at {address}, but this process "
                                 f"already joined the one at {current}")
        return ray
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise LookalikeError(f"cannot join the Ray cluster at {address or 'a new local one'}"
                             f" ({error})") from error
    global _started_here
    _started_here = True
    return ray


def release() -> None:
    """Leave the Ray that :func:`connect` joined or started for a run: a local one it
    started stops with it; one the caller had joined before stays."""
    global _started_here
    if _started_here:
        import ray

        ray.shutdown()
        _started_here = False


@contextmanager
def ray_data_settings(ray: Any) -> Iterator[None]:
    """Ray Data set, for one run, to keep the jobs' order and to leave progress to
    Lookalike; the settings before are given back after."""
    context = ray.data.DataContext.get_current()  # imports Ray Data, which sets its logging
    kept = (context.execution_options.preserve_order, context.enable_progress_bars,
            context.print_on_execution_start)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Its notices ("execution finished", "progress bars disabled") would mix with the run's
    # progress; its real warnings and errors still show.
    loggers = [logging.getLogger("ray.data"), logging.getLogger("ray.data._internal.progress")]
    levels = [logger.level for logger in loggers]
    loggers[0].setLevel(logging.WARNING)
    loggers[1].setLevel(logging.ERROR)
    try:
        yield
    finally:
        (context.execution_options.preserve_order, context.enable_progress_bars,
         context.print_on_execution_start) = kept
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def summary_of(error: BaseException) -> str:
    """``Type: first line of the message``: what a Ray error says, without its remote
    traceback."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def cluster_cpus(ray: Any) -> int:
    """One actor per CPU of the cluster."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _add_seconds(times: StageTimes, seconds: str) -> None:
    if not seconds:
        return
    for stage, value in json.loads(seconds).items():
        times.add(stage, float(value))
