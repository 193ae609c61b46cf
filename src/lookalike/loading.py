"""Explicit, idempotent, thread-safe model loading, shared by every model wrapper.

Construction only stores parameters; :meth:`LoadOnce.load` does the expensive work
once, however many threads ask at the same time.
"""

from __future__ import annotations

import threading
from typing import Self


class LoadOnce:
    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._loaded = False

    def load(self) -> Self:
        """Load the model once; safe to call from several threads."""
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True
        return self

    def _load(self) -> None:
        """Override to load weights or sessions. The default has nothing to load."""
