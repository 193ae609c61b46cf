"""How many cores one model call may use: a process-wide choice, like ``torch.set_num_threads``.

Indexing runs one batch at a time, so each ONNX Runtime session should use every core
(ONNX Runtime's default). A server runs many small requests at once: there one thread per
call lets concurrent requests fill the cores instead of fighting over them (measured on 2
cores: 363 images/s with two one-thread calls at a time, 251 with one two-thread call).
The choice applies to sessions created after it is made, so a server makes it before it
loads its models.
"""

from __future__ import annotations

from typing import Any

from lookalike.errors import ValidationError

_inference_threads: int | None = None


def set_inference_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op threads in every ONNX Runtime session created from now on;
    None restores ONNX Runtime's default (one per core)."""
    global _inference_threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValidationError(f"expected a positive number of threads or None, got {threads!r}")
    _inference_threads = threads


def inference_threads() -> int | None:
    """The choice made by :func:`set_inference_threads`; None for ONNX Runtime's default."""
    return _inference_threads


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
