"""Progress of long library steps, for whoever listens.

A step that can take more than a few seconds without an image-by-image callback
(training a vocabulary tree, sampling images to train on, answering an evaluation's
queries, grouping faces) reports ``step(stage, done, total)``. Nothing listens by default,
so the library stays silent; the command line listens and draws one bar per stage on
stderr (:func:`listening`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

Listener = Callable[[str, int, int], None]
T = TypeVar("T")

_listeners: list[Listener] = []
_lock = threading.Lock()


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener(stage, done, total)`` for every step reported meanwhile."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def step(stage: str, done: int, total: int) -> None:
    """Report that ``done`` of ``total`` units of ``stage`` are done."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(stage, done, total)


def counted(stage: str, items: Iterable[T], total: int) -> Iterator[T]:
    """``items``, reporting each one as a step of ``stage`` (0 of ``total`` first)."""
    step(stage, 0, total)
    for done, item in enumerate(items, start=1):
        yield item
        step(stage, done, total)
