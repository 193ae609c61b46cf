"""The house rules that keep the code easy to read, checked on every run.

Functions stay under 60 lines and modules under 500, the page's scripts included
(docs/architecture.md lists the exceptions, and why; there are none today). The import
layering is checked by ``lint-imports`` (contracts in pyproject.toml), which .ci/run runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "src" / "lookalike"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500
# path (relative to src/lookalike) -> why it may be longer; keep docs/architecture.md in step.
EXCEPTIONS: dict[str, str] = {}


def test_functions_and_modules_stay_small() -> None:
    long = []
    for path in sorted(SOURCE.rglob("*.py")):
        name = str(path.relative_to(SOURCE))
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES and name not in EXCEPTIONS:
            long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and f"{name}:{node.name}" not in EXCEPTIONS:
                    long.append(f"{name}:{node.lineno} {node.name}(): {lines} lines")
    assert long == []


def test_the_pages_scripts_stay_small_too() -> None:
    long = [f"{path.name}: {path.read_text().count(chr(10))} lines"
            for path in sorted((SOURCE / "server" / "static").glob("*.js"))
            if path.read_text().count("\n") > MAX_MODULE_LINES]
    assert long == []
