"""Small edits to ONNX files as they ship, made once when a model loads.

Files exported by older converters fix sizes that the network does not need fixed (a
batch of 1, CenterFace's 32x32 image) and list their weights among the graph's inputs.
ONNX Runtime enforces the first, and for the second it may not fold the weights into
constants (it warns once per weight); both are fixed here, in memory.
"""

from __future__ import annotations

from lookalike.errors import MissingDependencyError


def loosened_model(path: str, free_axes: dict[int, str], feature: str) -> bytes:
    """The ONNX model at ``path`` with the ``free_axes`` (axis -> name) of every graph input
    and output left free, and its weights no longer listed as inputs; ``feature`` names
    the model in the error when the ``onnx`` package is missing."""
    try:
        import onnx
    except ImportError as error:
        raise MissingDependencyError("onnx", feature, "faces") from error
    model = onnx.load(path)
    weights = {initializer.name for initializer in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis, name in free_axes.items():
            if axis < len(dims):  # a tensor of lower rank has fewer axes to free
                dims[axis].dim_param = name
    return bytes(model.SerializeToString())
