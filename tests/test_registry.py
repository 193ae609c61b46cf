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
