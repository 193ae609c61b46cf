"""Where indexing runs: in this process (``local``), or on a Ray cluster (``ray``).

An engine runs the read, decode and extract stages of :mod:`lookalike.collection.pipeline`
over the planned jobs and hands every finished batch to the sink, in this process: the
catalog has one writer wherever the models run, so a collection indexed on a cluster is the
same collection, with the same vectors, as one indexed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from lookalike.collection.channels import Channel
from lookalike.collection.pipeline import (
    Job,
    ProgressCallback,
    Sink,
    StageTimes,
    WriteCounts,
    run_local,
)
from lookalike.errors import ValidationError


class Engine(Protocol):
    """Runs an indexing pass: every job read, decoded and extracted by ``channels``, each
    batch written through ``sink`` in this process, ``progress(n)`` after each."""

    name: ClassVar[str]

    def run(self, jobs: Sequence[Job], *, sink: Sink, channels: Sequence[Channel],
            batch_size: int, workers: int | None, max_pixels: int,
            progress: ProgressCallback | None) -> tuple[WriteCounts, StageTimes]: ...

    def close(self) -> None:
        """The indexing run is over (after all its passes): let go of what it held."""


@dataclass(frozen=True)
class LocalEngine:
    """Threads in this process (:func:`~lookalike.collection.pipeline.run_local`)."""

    name: ClassVar[str] = "local"

    def run(self, jobs: Sequence[Job], *, sink: Sink, channels: Sequence[Channel],
            batch_size: int, workers: int | None, max_pixels: int,
            progress: ProgressCallback | None) -> tuple[WriteCounts, StageTimes]:
        return run_local(jobs, sink=sink, channels=channels, batch_size=batch_size,
                         workers=workers, max_pixels=max_pixels, progress=progress)

    def close(self) -> None:
        """Nothing held between runs."""


@dataclass(frozen=True)
class RayEngine:
    """Ray Data over a pool of actors, each loading the channels' models once.

    ``address`` is the cluster's (``auto``, ``ray://host:10001``, ``host:6379``); None
    joins the Ray this process already joined, or the cluster ``RAY_ADDRESS`` or
    ``ray start`` names, or starts a local one for the run (stopped by :meth:`close`).
    ``workers`` actors (default: one per CPU of the cluster) each run one batch at a time
    on one core. The files are read where the actors run, so on several machines their
    paths must be visible to every node (a shared or network file system); a node that
    cannot see one stops the run with a message that names it."""

    name: ClassVar[str] = "ray"
    address: str | None = None

    def run(self, jobs: Sequence[Job], *, sink: Sink, channels: Sequence[Channel],
            batch_size: int, workers: int | None, max_pixels: int,
            progress: ProgressCallback | None) -> tuple[WriteCounts, StageTimes]:
        from lookalike.collection.ray_engine import run_ray  # ray is an optional extra

        return run_ray(jobs, sink=sink, channels=channels, batch_size=batch_size,
                       workers=workers, max_pixels=max_pixels, progress=progress,
                       address=self.address)

    def close(self) -> None:
        """Stop the local Ray the run started; a cluster joined before stays."""
        from lookalike.collection.ray_engine import release

        release()


ENGINES = ("local", "ray")


def make_engine(engine: str | Engine, address: str | None = None) -> Engine:
    """``local``, ``ray`` (at ``address``), or an engine object as it is."""
    if not isinstance(engine, str):
        return engine
    if engine == "local":
        if address is not None:
            raise ValidationError(f"expected no address for the local engine, got {address!r}; "
                                  "use engine='ray' to index on a cluster")
        return LocalEngine()
    if engine == "ray":
        return RayEngine(address)
    raise ValidationError(f"expected an engine among {list(ENGINES)}, got {engine!r}")
