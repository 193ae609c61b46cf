"""Index arithmetic that the inverted files, the pairing and the verification share."""

from __future__ import annotations

import numpy as np


def concatenated_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``arange(start, start + length)`` for each pair, concatenated, without a Python loop:
    the positions of every run that a sorted array's searchsorted bounds delimit."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(np.asarray(starts, dtype=np.int64) - (np.cumsum(lengths) - lengths),
                        lengths)
    return np.asarray(np.arange(total, dtype=np.int64) + offsets, dtype=np.int64)
