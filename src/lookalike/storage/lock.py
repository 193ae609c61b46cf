"""One writer at a time: an inter-process lock on a collection's writes.

SQLite already makes each transaction atomic, but a collection's writes are larger than
one transaction: an indexing run trains a vocabulary tree and then commits words that only
mean something with that tree, batch after batch. Two processes doing that at once would
each train a tree and leave one folder's words without theirs. So every logical write takes
this lock (``flock`` on ``write.lock`` beside the catalog): indexing for its whole run,
an edit (annotations, people) for its transaction. It is re-entrant within a process, and
threads of one process take turns. Readers never take it: searching never waits.

The lock file holds the holder's pid and what it is doing, so a refused writer can say
who is busy. A lock held by a process that died is released by the kernel with its file
descriptor: nothing stale is left behind.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lookalike.errors import CollectionBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; one process is assumed
    fcntl = None  # type: ignore[assignment]

#: How long a writer waits by default for another process's write to finish: long enough
#: for another process's edit, short enough that a run that cannot start says so.
DEFAULT_WAIT = 10.0
_POLL = 0.05


class WriteLock:
    """The write lock of the collection whose catalog is beside ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def held(self, doing: str = "writing", *, wait: float | None = DEFAULT_WAIT
             ) -> Iterator[None]:
        """Hold the lock inside the block; ``wait`` seconds at most for another process
        (None: as long as it takes), then a :class:`CollectionBusyError` naming it."""
        with self._threads:
            if self._depth == 0:
                self._acquire(doing, wait)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def holder(self) -> dict[str, object] | None:
        """Who holds (or last held) the lock, as written in the file; None if unknown."""
        try:
            found = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def _acquire(self, doing: str, wait: float | None) -> None:
        if fcntl is None:  # pragma: no cover
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    raise CollectionBusyError(self._busy_message(wait)) from None
                time.sleep(_POLL)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "doing": doing,
                                 "since": round(time.time(), 3)}).encode())
        self._fd = fd

    def _release(self) -> None:
        if self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def _busy_message(self, waited: float | None) -> str:
        holder = self.holder() or {}
        who = f"pid {holder['pid']}" if "pid" in holder else "another process"
        doing = holder.get("doing", "writing to")
        return (f"{self.path.parent}: busy: another process is {doing} this collection "
                f"({who}); waited {waited:g} s. Wait for it to finish, or pass --wait to "
                "queue behind it")
