"""The generic registry: one shape, one kind of error, and plug-ins by entry point."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest

from lookalike.errors import ValidationError
from lookalike.registry import Registry


def test_entries_by_name_with_uniform_errors() -> None:
    shapes: Registry[int] = Registry("shape")
    shapes.add("square", 4)

    @shapes.register("triangle")
    def _triangle() -> int:
        return 3

    assert shapes.names() == ["square", "triangle"]
    assert shapes["square"] == 4 and shapes.get("triangle")() == 3
    assert "square" in shapes and "circle" not in shapes and len(shapes) == 2
    with pytest.raises(ValidationError,
                       match=r"expected a shape among \['square', 'triangle'\], got 'circle'"):
        shapes.get("circle")
    with pytest.raises(ValidationError, match="expected an index backend among"):
        Registry[int]("index backend").get("annoy")
    with pytest.raises(ValidationError, match="already registered"):
        shapes.add("square", 5)
    shapes.add("square", 4)  # the same entry again is harmless
    assert shapes.remove("square") == 4 and shapes.names() == ["triangle"]
    with pytest.raises(ValidationError, match="got 'square'"):
        shapes.remove("square")
    with pytest.raises(ValidationError, match="non-empty name"):
        shapes.add("", 1)


class _Point:
    def __init__(self, name: str, value: Any, error: Exception | None = None) -> None:
        self.name, self.value, self._value, self._error = name, f"plugin:{name}", value, error

    def load(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


def test_plugins_come_from_entry_points_and_a_broken_one_is_skipped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def entry_points(*, group: str) -> list[_Point]:
        asked.append(group)
        return [_Point("hexagon", 6), _Point("broken", None, ImportError("no module 'x'")),
                _Point("square", 40)]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    shapes: Registry[int] = Registry("shape", group="lookalike.shapes")
    shapes.add("square", 4)
    assert shapes.get("square") == 4  # a built-in name needs no discovery
    assert asked == []
    with pytest.warns(RuntimeWarning, match="shape plug-in 'broken'.*no module 'x'"):
        assert shapes.get("hexagon") == 6
    assert asked == ["lookalike.shapes"]
    assert shapes.names() == ["hexagon", "square"]  # a plug-in never takes a built-in's name
    assert shapes["square"] == 4
    assert asked == ["lookalike.shapes"]  # discovered once


# -- every entry of every registry keeps its contract (built, never loaded: no model runs) --

def test_every_extractor_is_built_with_its_info() -> None:
    from lookalike.extractors import EXTRACTORS, Extractor, make_extractor

    for name in EXTRACTORS:
        extractor = make_extractor(name)
        assert isinstance(extractor, Extractor) and extractor.info.name == name
        assert extractor.info.dim > 0 and extractor.info.metric == "cosine"


def test_every_index_backend_states_its_parameters() -> None:
    from lookalike.index import INDEXES, VectorIndex

    for name, backend in INDEXES.items():
        assert issubclass(backend, VectorIndex) and backend.name == name
        assert isinstance(backend.is_available(), bool)
        assert all(isinstance(value, int | float) for value in backend.default_params.values())


def test_every_face_detector_has_an_alignment_template() -> None:
    from lookalike.faces import DETECTORS, TEMPLATES, FaceDetector

    for name, detector in DETECTORS.items():
        built = detector(None)
        assert isinstance(built, FaceDetector) and built.name == name
        assert built.scheme in TEMPLATES


def test_every_face_embedder_says_how_it_was_trained() -> None:
    from lookalike.faces import EMBEDDERS, FaceEmbedder

    for name, factory in EMBEDDERS.items():
        embedder = factory()
        assert isinstance(embedder, FaceEmbedder) and embedder.info.name == name
        assert embedder.info.dim > 0 and embedder.info.chip > 0 and embedder.info.padding >= 0


def test_every_object_detector_is_built() -> None:
    from lookalike.regions import DETECTORS, ObjectDetector

    for name, detector in DETECTORS.items():
        built = detector(None)
        assert isinstance(built, ObjectDetector) and built.name == name and built.labels


def test_every_clusterer_separates_two_tight_groups() -> None:
    import numpy as np

    from lookalike.faces import CLUSTERERS

    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:2]
    vectors = np.concatenate([centre + 0.01 * rng.normal(size=(5, 8)) for centre in centres])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for name, clusterer in CLUSTERERS.items():
        labels = clusterer(vectors.astype(np.float32), 0.9)
        assert len(set(labels[:5].tolist())) == 1 and len(set(labels[5:].tolist())) == 1, name
        assert labels[0] != labels[5], name


def test_every_channel_spec_builds_its_channel_and_evidence() -> None:
    import json

    from lookalike.collection import CHANNELS, Channel
    from lookalike.results import Evidence

    for name, spec in CHANNELS.items():
        config = spec.default_config()
        json.dumps(config.stored_settings())
        channel = spec.make(config)
        assert isinstance(channel, Channel) and channel.name == name
        json.dumps(channel.manifest())
        evidence = spec.evidence()
        assert issubclass(spec.evidence, Evidence) and isinstance(evidence.reason(), str)
        assert spec.evidence.from_dict(evidence.as_dict()) == evidence
        assert set(evidence.features()) == set(spec.evidence.FEATURES)


def test_every_exporter_builds_a_model_that_an_onnx_extractor_uses() -> None:
    pytest.importorskip("torch")
    from lookalike.extractors import MODEL_SPECS
    from lookalike.extractors.export import BUILDERS

    # Every network is exportable, and every model is made from one (an int8 model from
    # its float32 network).
    assert set(BUILDERS) == {spec.network for spec in MODEL_SPECS.values()}
    assert set(BUILDERS) <= set(MODEL_SPECS)


def test_a_channel_is_named_alike_by_its_spec_and_its_class() -> None:
    from lookalike.collection import CHANNELS, ChannelSpec, GlobalChannel, GlobalChannelConfig

    with pytest.raises(ValidationError, match="named so by its spec and its class"):
        CHANNELS.add("photo", ChannelSpec("photo", GlobalChannel, GlobalChannelConfig))
    assert "photo" not in CHANNELS


def test_a_check_refuses_bad_entries_and_bad_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    def positive(name: str, sides: int) -> None:
        if sides < 3:
            raise ValidationError(f"expected a shape with 3 sides or more, got {sides}")

    monkeypatch.setattr(metadata, "entry_points",
                        lambda *, group: [_Point("line", 2), _Point("square", 4)])
    shapes: Registry[int] = Registry("shape", group="lookalike.shapes", check=positive)
    with pytest.raises(ValidationError, match="3 sides or more, got 1"):
        shapes.add("dot", 1)
    with pytest.warns(RuntimeWarning, match="shape plug-in 'line'.*got 2"):
        assert shapes.names() == ["square"]
