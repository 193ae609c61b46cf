"""Explicit, idempotent, thread-safe model loading, shared by every model wrapper.

Construction only stores parameters; :meth:`LoadOnce.load` does the expensive work
once, however many threads ask at the same time. Optional libraries the models run on
are imported here too, when first needed (:func:`import_cv2`).
"""

from __future__ import annotations

import threading
from typing import Any, Self

from lookalike.errors import MissingDependencyError


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


def import_cv2(feature: str, extra: str) -> Any:
    """OpenCV, imported on first use; without it, an error that names the ``feature`` that
    needs it and the pip ``extra`` that installs it."""
    try:
        import cv2
    except ImportError as error:
        raise MissingDependencyError("opencv-python-headless", feature, extra) from error
    return cv2
