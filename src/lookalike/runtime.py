"""How many cores one call may use: a process-wide choice, like ``torch.set_num_threads``.

Indexing runs one batch at a time, so each model call should use every core (the
libraries' default). A server runs many small requests at once: there one thread per call
lets concurrent requests fill the cores instead of fighting over them. The choice covers
ONNX Runtime sessions created after it, and the BLAS and OpenMP pools of NumPy and FAISS,
whose idle threads otherwise spin between two small calls (measured on 2 cores, 32
clients searching the global channel: 12.6 ms of server CPU a request with one thread,
about twice that with the default pools). A server makes the choice before it loads its
models, and applies it again once they are loaded (:func:`apply_thread_limits`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lookalike.errors import ValidationError

_inference_threads: int | None = None
_native_limits: Any = None  # threadpoolctl's handle, to restore the libraries' defaults
_opencv_before: int | None = None  # OpenCV's thread count before a choice changed it


def set_inference_threads(threads: int | None) -> None:
    """Use ``threads`` threads for each model call from now on; None restores the
    libraries' defaults (one thread per core)."""
    global _inference_threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValidationError(f"expected a positive number of threads or None, got {threads!r}")
    _inference_threads = threads
    apply_thread_limits()


def inference_threads() -> int | None:
    """The choice made by :func:`set_inference_threads`; None for the libraries' defaults."""
    return _inference_threads


@contextmanager
def threads_shared_by(workers: int, cores: int) -> Iterator[None]:
    """While ``workers`` threads call models side by side, give each call its share of the
    ``cores`` (models loaded meanwhile keep it), unless a choice was made already: two
    workers each running a session with a thread per core would fight over the cores."""
    if workers <= 1 or _inference_threads is not None:
        yield
        return
    set_inference_threads(max(1, cores // workers))
    try:
        yield
    finally:
        set_inference_threads(None)


def apply_thread_limits() -> None:
    """Apply the choice to the BLAS and OpenMP libraries and to OpenCV's pool, as far as
    they are loaded by now (a library loaded later, with the model that needs it, keeps its
    default until this is called again)."""
    global _native_limits
    from threadpoolctl import threadpool_limits

    if _native_limits is not None:
        _native_limits.restore_original_limits()
        _native_limits = None
    if _inference_threads is not None:
        _native_limits = threadpool_limits(limits=_inference_threads)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:  # SIFT and the image warps run on OpenCV's own pool
        _limit_opencv(cv2)


def _limit_opencv(cv2: Any) -> None:
    """OpenCV's pool follows the choice; with none, it gets back the count it had before a
    choice changed it (a count set by the user stays theirs)."""
    global _opencv_before
    if _inference_threads is not None:
        if _opencv_before is None:
            _opencv_before = cv2.getNumThreads()
        cv2.setNumThreads(_inference_threads)
    elif _opencv_before is not None:
        cv2.setNumThreads(_opencv_before)
        _opencv_before = None


def session_options(threads: int | None = None) -> Any:
    """ONNX Runtime session options with ``threads`` intra-op threads (default: the
    process-wide choice), one inter-op thread and only errors logged."""
    import onnxruntime as ort  # a core dependency, imported when a model loads

    options = ort.SessionOptions()
    chosen = threads or _inference_threads
    if chosen:
        options.intra_op_num_threads = chosen
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options
