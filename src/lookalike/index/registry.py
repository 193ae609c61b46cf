"""Index backends by name, and the spec strings that build them.

A spec is a backend name, optionally followed by ``:`` and comma-separated
``key=value`` parameters: ``"flat"``, ``"hnsw:M=16,ef_search=128"``,
``"ivfpq:nlist=256,m=32"``.
"""

from __future__ import annotations

import os
import re
from typing import TypeVar

from lookalike.errors import ValidationError, expect
from lookalike.index.base import ParamValue, VectorIndex
from lookalike.registry import Registry

INDEXES: Registry[type[VectorIndex]] = Registry("index backend", group="lookalike.indexes")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_INT = re.compile(r"^[+-]?\d+$")

IndexT = TypeVar("IndexT", bound=type[VectorIndex])


def register_index(cls: IndexT) -> IndexT:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not (isinstance(name, str) and _NAME.match(name)):
        raise ValidationError(f"register_index: expected a lowercase identifier as "
                              f"{cls.__name__}.name, got {name!r}")
    INDEXES.add(name, cls)
    return cls


def registered_indexes() -> list[str]:
    """Names of every registered backend, sorted, whether or not its dependencies are installed."""
    return INDEXES.names()


def available_indexes() -> list[str]:
    """Names of the registered backends whose dependencies are installed, sorted."""
    return [name for name in INDEXES.names() if INDEXES[name].is_available()]


def get_index_class(name: str) -> type[VectorIndex]:
    """The backend class registered under ``name``."""
    return INDEXES.get(name)


def parse_index_spec(spec: str) -> tuple[str, dict[str, ParamValue]]:
    """Split ``"name:key=value,..."`` into the backend name and its parameters.

    Values are parsed as ints when they look like ints, else floats. Checks the
    backend and parameter names against the registry.
    """
    expect(isinstance(spec, str), f"index spec: expected a string, got {spec!r}")
    name, _sep, rest = spec.partition(":")
    name = name.strip().lower()
    cls = get_index_class(name)
    valid = ", ".join(cls.default_params) or "(none)"
    params: dict[str, ParamValue] = {}
    if rest.strip():
        for item in rest.split(","):
            key, sep, text = (part.strip() for part in item.partition("="))
            expect(
                bool(sep) and bool(key) and bool(text),
                f"index spec {spec!r}: expected key=value, got {item.strip()!r}",
            )
            expect(
                key in cls.default_params,
                f"index spec {spec!r}: unknown parameter {key!r} for the {name} index; "
                f"expected one of: {valid}",
            )
            expect(key not in params, f"index spec {spec!r}: parameter {key!r} given twice")
            value: ParamValue
            if _INT.match(text):
                value = int(text)
            else:
                try:
                    value = float(text)
                except ValueError:
                    raise ValidationError(
                        f"index spec {spec!r}: parameter {key!r}: expected a number, got {text!r}"
                    ) from None
            default = cls.default_params[key]
            if isinstance(default, int):
                expect(
                    isinstance(value, int),
                    f"index spec {spec!r}: parameter {key!r}: expected an integer, got {text!r}",
                )
            else:
                value = float(value)
            params[key] = value
    return name, params


def make_index(spec: str, dim: int) -> VectorIndex:
    """Build an empty index from a spec string such as ``"hnsw:M=16,ef_search=128"``.

    Raises :class:`~lookalike.errors.ValidationError` for an unknown backend or
    parameter (listing the valid ones) or a bad value, and
    :class:`~lookalike.errors.MissingDependencyError` when the backend's optional
    dependency is not installed.
    """
    name, params = parse_index_spec(spec)
    cls = INDEXES.get(name)
    cls.require_dependencies()
    return cls(dim, **params)


def choose_index_spec(n_vectors: int, *, exact_below: int = 50_000) -> str:
    """``"flat"`` (exact) for fewer than ``exact_below`` vectors, else ``"hnsw"``."""
    for label, value in (("n_vectors", n_vectors), ("exact_below", exact_below)):
        expect(
            isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"choose_index_spec: {label}: expected a non-negative integer, got {value!r}",
        )
    return "flat" if n_vectors < exact_below else "hnsw"


def load_index(path: str | os.PathLike[str]) -> VectorIndex:
    """Load an index saved by :meth:`VectorIndex.save`, whichever backend it holds."""
    return VectorIndex.load(path)


__all__ = [
    "INDEXES",
    "available_indexes",
    "choose_index_spec",
    "get_index_class",
    "load_index",
    "make_index",
    "parse_index_spec",
    "register_index",
    "registered_indexes",
]
