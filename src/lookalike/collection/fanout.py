"""One step of a sharded search: the same method called on some shards at once.

The shards are :class:`~lookalike.collection.shard_searcher.ShardSearcher` objects in
this process (called from a thread pool) or Ray actors. A query has one deadline for all
its steps. A shard that fails, or does not answer in time, is left out of this step and of
every later one, with its reason: the results say so (``partial``), never silently short.
An error in the query itself is the same in every shard, so it is raised.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from lookalike.collection.ray_engine import summary_of
from lookalike.errors import ImageError, NotFoundError, NothingToSearchError, ValidationError

#: Errors that come from the request, the same in every shard (or an image that is not
#: there): raised, not a shard down.
QUERY_ERRORS = (ValidationError, NothingToSearchError, ImageError, NotFoundError)


class FanOut:
    """Calls on the shards for one query (see the module's doc)."""

    def __init__(self, names: Sequence[str], *, timeout_s: float,
                 searchers: Sequence[Any] = (), pool: ThreadPoolExecutor | None = None,
                 actors: Sequence[Any] = ()) -> None:
        self.names = list(names)
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.searchers = list(searchers)
        self.pool = pool
        self.actors = list(actors)
        self.missing: dict[str, str] = {}

    def alive(self) -> list[int]:
        """The shards that have answered every step so far."""
        return [i for i, name in enumerate(self.names) if name not in self.missing]

    def all(self, method: str, *args: Any) -> dict[int, Any]:
        """``method(*args)`` on every shard still alive."""
        return self.call(method, {shard: args for shard in self.alive()})

    def call(self, method: str, calls: Mapping[int, tuple[Any, ...]]) -> dict[int, Any]:
        """``method(*calls[shard])`` on each shard named; the answers of those that
        answered in time, by shard."""
        calls = {shard: args for shard, args in calls.items()
                 if self.names[shard] not in self.missing}
        if not calls:
            return {}
        if self.actors:
            return self._on_actors(method, calls)
        return self._in_threads(method, calls)

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def _late(self, shard: int) -> None:
        self.missing[self.names[shard]] = f"no answer within {self.timeout_s:g} s"

    def _in_threads(self, method: str, calls: Mapping[int, tuple[Any, ...]]) -> dict[int, Any]:
        if self.pool is None:
            raise RuntimeError("a fan-out in this process needs its thread pool")
        futures = {shard: self.pool.submit(getattr(self.searchers[shard], method), *args)
                   for shard, args in calls.items()}
        wait(futures.values(), timeout=self._left())
        answers: dict[int, Any] = {}
        for shard, future in futures.items():
            if not future.done():
                future.cancel()
                self._late(shard)
            else:
                self._collect(shard, future, answers)
        return answers

    def _collect(self, shard: int, future: Future[Any], answers: dict[int, Any]) -> None:
        try:
            answers[shard] = future.result()
        except QUERY_ERRORS:
            raise  # the query itself is wrong: every shard would say so
        except Exception as error:  # a shard down or broken: reported, not hidden
            self.missing[self.names[shard]] = summary_of(error)

    def _on_actors(self, method: str, calls: Mapping[int, tuple[Any, ...]]) -> dict[int, Any]:
        import ray

        refs = {shard: getattr(self.actors[shard], method).remote(*args)
                for shard, args in calls.items()}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=self._left())
        done = set(ready)
        answers: dict[int, Any] = {}
        for shard, ref in refs.items():
            if ref not in done:
                ray.cancel(ref)
                self._late(shard)
                continue
            try:
                answers[shard] = ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                cause = error.cause if isinstance(error.cause, BaseException) else error
                if isinstance(cause, QUERY_ERRORS):
                    raise cause from error
                self.missing[self.names[shard]] = summary_of(cause)
            except ray.exceptions.RayError as error:  # the actor or its node is gone
                self.missing[self.names[shard]] = summary_of(error)
        return answers
