"""Shared helpers for benchmark scripts: machine facts, commit, saving results.

Benchmarks are not tests: they measure, print a table and save JSON under
``benchmarks/results/``. The tables in BENCHMARKS.md are pasted from that output.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def machine() -> dict[str, Any]:
    """What ran the benchmark: CPU model, cores, memory, library versions."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for module in ("numpy", "onnxruntime", "faiss", "PIL"):
        try:
            versions[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            versions[module] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory_gib, 1),
            "python": platform.python_version(), **versions}


def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                               text=True, capture_output=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save(name: str, settings: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """Write ``results/<name>.json`` with the machine, commit, settings and rows."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "commit": commit(), "machine": machine(), "settings": settings, "rows": rows}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def json_in_process(code: Path, arguments: list[str], what: str) -> dict[str, Any]:
    """Run ``python arguments...`` in a fresh interpreter that imports Lookalike from
    ``code`` (a checkout: another commit's worktree, or this one) and return the JSON object
    on its last line of output; ``what`` names the run in an error."""
    env = {**os.environ, "PYTHONPATH": f"{code / 'src'}{os.pathsep}{ROOT / 'benchmarks'}"}
    done = subprocess.run([sys.executable, *arguments], env=env, text=True,
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{code}: {what} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
