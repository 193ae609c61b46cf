"""Data sets by name: one :class:`DatasetSpec` per loader, saying which inputs it needs.

The spec is what lets :func:`load_dataset` (and so ``lookalike eval``) check the inputs and
call any loader, a plug-in's included, without a branch per data set. Plug-ins declare a
:class:`DatasetSpec` as an entry point in the group ``lookalike.datasets``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lookalike.errors import ValidationError, expect
from lookalike.eval.datasets._types import DATASET_TYPES, Dataset, PathLike
from lookalike.registry import Registry

#: Named inputs a loader may require, passed positionally in the order the spec lists them.
INPUTS: tuple[str, ...] = ("data", "root", "truth", "pairs")
#: Named inputs a loader may accept as keywords, with a default when not given.
OPTIONS: tuple[str, ...] = ("crop", "max_people")

# How a missing input is asked for: the eval command's flags, so the error says what to type.
_FLAGS = {
    "data": "--data DIR",
    "root": "--root DIR",
    "truth": "--truth TSV",
    "pairs": "--pairs FILE (e.g. pairsDevTest.txt)",
}

DatasetLoader = Callable[..., Dataset]
L = TypeVar("L", bound=DatasetLoader)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set: its loader and the named inputs it takes.

    ``inputs`` are required and go to the loader positionally, in this order;
    ``options`` are optional and go to it as keywords of the same name.
    """

    name: str
    loader: DatasetLoader
    inputs: tuple[str, ...] = ("data",)
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        expect(all(i in INPUTS for i in self.inputs),
               f"expected the inputs of data set {self.name!r} among {list(INPUTS)}, "
               f"got {list(self.inputs)}")
        expect(all(o in OPTIONS for o in self.options),
               f"expected the options of data set {self.name!r} among {list(OPTIONS)}, "
               f"got {list(self.options)}")


#: Registered data sets by name.
DATASETS: Registry[DatasetSpec] = Registry("data set", group="lookalike.datasets")


def register_dataset(
    name: str, *, inputs: Sequence[str] = ("data",), options: Sequence[str] = ()
) -> Callable[[L], L]:
    """Decorator registering a loader under ``name`` in :data:`DATASETS`."""

    def decorate(loader: L) -> L:
        spec = DatasetSpec(name=name, loader=loader, inputs=tuple(inputs),
                           options=tuple(options))
        try:
            DATASETS.add(name, spec)
        except ValidationError:
            # The same declaration twice (a module imported again) is harmless; only a
            # different loader or different inputs under a taken name are an error.
            if not (isinstance(name, str) and name and DATASETS.get(name) == spec):
                raise
        return loader

    return decorate


def available_datasets() -> list[str]:
    """Names of the registered data set loaders, sorted."""
    return DATASETS.names()


def load_dataset(
    name: str, *, data: PathLike | None = None, root: PathLike | None = None,
    truth: PathLike | None = None, pairs: PathLike | None = None, crop: bool = True,
    max_people: int | None = None,
) -> Dataset:
    """Load data set ``name`` from the inputs its spec requires.

    Inputs the spec does not name are ignored (``crop`` means nothing to UKBench), so
    one call serves every data set; a required input left out is a
    :class:`~lookalike.errors.ValidationError` naming the flag that gives it.
    """
    spec = _spec(name)
    given: dict[str, PathLike | None] = {"data": data, "root": root, "truth": truth,
                                         "pairs": pairs}
    missing = [_FLAGS[i] for i in spec.inputs if given[i] is None]
    if missing:
        raise ValidationError(f"expected {' and '.join(missing)} for the {name} dataset, "
                              "got none")
    chosen: dict[str, object] = {"crop": crop, "max_people": max_people}
    dataset = spec.loader(*(given[i] for i in spec.inputs), **{o: chosen[o] for o in spec.options})
    if not isinstance(dataset, DATASET_TYPES):
        raise ValidationError(f"expected the {name} loader to return a RetrievalDataset, "
                              f"VerificationDataset or ClusteringDataset, got "
                              f"{type(dataset).__name__}")
    return dataset


def _spec(name: str) -> DatasetSpec:
    """The spec of ``name``; a plug-in's entry point is checked to be one."""
    spec = DATASETS.get(name)
    if not isinstance(spec, DatasetSpec):
        raise ValidationError(f"expected the data set {name!r} to be registered as a "
                              f"DatasetSpec, got {type(spec).__name__}")
    return spec
