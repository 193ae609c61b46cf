"""Static int8 quantisation of an exported network with ONNX Runtime, once, on first use.

The float32 graph is quantised per channel (weights int8, activations uint8, QDQ format)
with activation ranges calibrated on the sample photos that ship with scikit-image, the
demo's photos: a fixed, public set, so every machine derives the same model. On 2 cores the
int8 network runs about twice as fast; its quality against float32 is measured in
BENCHMARKS.md (``bench_indexing.py int8``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.errors import MissingDependencyError
from lookalike.extractors.preprocessing import Preprocessing

#: What calibrates the activation ranges, recorded in the model's manifest.
CALIBRATION = "scikit-image sample photos (lookalike.samples), MinMax, per-channel QDQ"


def calibration_images() -> list[np.ndarray]:
    """The demo's seventeen sample photos as RGB uint8 arrays."""
    from lookalike.samples import DATABASE_SAMPLES, QUERY_SAMPLE, load_sample

    return [load_sample(name) for name in (*DATABASE_SAMPLES, QUERY_SAMPLE)]


def quantize_model(source: Path, target: Path, preprocessing: Preprocessing) -> None:
    """Write the int8 version of the float32 graph ``source`` to ``target``."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quant_pre_process,
            quantize_static,
        )
    except ImportError as error:  # the quantiser needs the onnx package
        raise MissingDependencyError(error.name or "onnx", "int8 quantisation",
                                     "export") from error
    batches = iter([{"input": preprocessing([image])} for image in calibration_images()])

    class Batches(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(batches, None)

    prepared = target.with_name(target.name + ".pre.onnx")
    try:
        # Shape inference and graph clean-up first, as ONNX Runtime recommends.
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(target), Batches(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)
