"""A readers-writer lock: many searches at once, an update alone; and work split in two.

A derived index (vectors, inverted files, the full-text index) is searched by many threads
and brought up to date by one: searches share it, an update waits for them to finish and
holds it alone. Writers go first once one is waiting, so a stream of searches cannot keep
an update out forever.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class ReadWriteLock:
    """``with lock.reading():`` for the many, ``with lock.writing():`` for the one."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None  # the thread that holds it alone
        self._depth = 0  # how many times that thread has taken it (re-entrant)
        self._waiting_writers = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._condition:
            if self._writer == me:  # a writer may read what it holds
                self._depth += 1
            else:
                while self._writer is not None or self._waiting_writers:
                    self._condition.wait()
                self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                if self._writer == me:
                    self._depth -= 1
                else:
                    self._readers -= 1
                    if self._readers == 0:
                        self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._condition:
            if self._writer != me:
                self._waiting_writers += 1
                while self._writer is not None or self._readers:
                    self._condition.wait()
                self._waiting_writers -= 1
                self._writer = me
            self._depth += 1
        try:
            yield
        finally:
            with self._condition:
                self._depth -= 1
                if self._depth == 0:
                    self._writer = None
                    self._condition.notify_all()


def on_two_threads(function: Callable[[T], R], items: Sequence[T], *,
                   name: str = "lookalike-worker") -> list[R]:
    """``[function(item) for item in items]``, every other item on a second thread: for
    work that releases the GIL (OpenCV's RANSAC), two at once. One task a thread rather
    than one an item: a query's 100 submits to a pool cost about 4 ms."""
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        odd = pool.submit(lambda: [function(item) for item in items[1::2]])
        even = [function(item) for item in items[0::2]]
        found = odd.result()
    merged = [*even, *found]  # then put back in the items' order
    merged[0::2], merged[1::2] = even, found
    return merged
