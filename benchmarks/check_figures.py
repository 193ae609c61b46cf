"""Do the quality figures recorded in BENCHMARKS.md still reproduce?

    python benchmarks/check_figures.py [--data ../shared/data] [--only NAME] [--scratch DIR]

A quick check to run after a restructuring that should not change quality: each check
runs ``lookalike.eval.evaluate`` exactly as the benchmark that recorded the figure did
(same data set, channel, settings and protocol) and compares the result with the figure
in BENCHMARKS.md, at the rounding BENCHMARKS.md uses (3 decimals for mAP, N-S and
accuracy, 1 or 2 for top-1). The recorded figures are in :data:`FIGURES`, each with the
section it comes from.

Checks (``--only`` runs one; the whole run takes 20-40 minutes on 2 cores, most of it
indexing the regions channel in ``oxford-auto`` and the faces in ``faces``):

* ``ukbench-global``: UKBench56, global channel, EfficientNet-Lite0, no whitening.
* ``oxford-global``: Oxford 1k subset, global channel, box queries and whole-image queries.
* ``oxford-local``: Oxford, local channel with its defaults (its tree trained on the subset).
* ``oxford-auto``: Oxford, ``channel="auto"`` (global, local, regions, text): every channel
  and fusion from the same per-query rankings (``bench_multiclue.py crop|fusion``).
* ``ukbench-auto``: UKBench56, ``channel="auto"`` with no settings, as
  ``bench_multiclue.py fusion`` ran it: the local channel's tree is then trained on the 56
  UKBench images themselves (not the Oxford tree of the local quality table).
* ``faces``: LFW View 1 test pairs (10 folds) and ORL leave-one-out, faces channel,
  CenterFace + SFace (``bench_faces.py quality``).

Collections are built in a scratch folder (``--scratch DIR`` keeps them there for a quick
rerun; by default a temporary folder, removed at the end), never in the eval cache, so a
collection indexed by older code cannot stand in for the code under test. The table is
printed and saved to ``results/figures_check.json``; with ``--only``, the rows of the other
checks are kept from the previous file (each row says when and at which commit it was
measured). The exit status is 1 when a figure differs.

Every figure that depends on the local channel's Oxford tree (the local mAP and the
Oxford fusions that include it) is known to differ between machines even with the same
code: the tree trained on the subset's 1M descriptors changes with the BLAS kernel and
thread count (see :data:`OXFORD_TREE`). When one of those differs, run this check on the
commit before the change, on the same machine: the same figures there mean no change.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, RESULTS, ROOT, commit, markdown_table, save

from lookalike import FacesChannelConfig, GlobalChannelConfig
from lookalike.eval import evaluate

GLOBAL = "Global channel: search quality"
LOCAL = "Local channel: exact-object search quality"
CROP = "Search by crop"
FUSION = "Fusion"
FACES = "Faces channel"
PROJECTION = "Regions in fewer dimensions"
INT8 = "int8: the global model and the stored vectors"  # int8 rows: 0.361, not 0.362
RECHECKED = "Figures check, stop 29"  # figures that stops 26-29 changed, measured again


@dataclass(frozen=True)
class Figure:
    """One recorded figure: the check that measures it, where it is in the report
    (``by_method/auto/map`` is ``report["by_method"]["auto"]["map"]``), its value as
    BENCHMARKS.md prints it, the number of decimals printed there, the section of
    BENCHMARKS.md it comes from, and what is known to make it differ between machines."""

    check: str
    name: str
    key: str
    recorded: float
    decimals: int
    section: str
    note: str = ""


#: Why a figure may differ on another machine with unchanged code (printed when it does).
OXFORD_TREE = ("the local channel's Oxford vocabulary tree is not bit-reproducible across "
               "machines: its k-means over 1M descriptors runs on BLAS, and another OpenBLAS "
               "kernel or thread count trains another tree (stop 25's local channel: mAP 0.500 "
               "to 0.516 on one machine across OpenBLAS kernels and thread counts, 0.587 "
               "recorded; the three seeds in BENCHMARKS.md gave 0.509 to 0.587). Same code, "
               "another random tree: compare with a run of the previous commit on the same "
               "machine")

FIGURES: tuple[Figure, ...] = (
    Figure("ukbench-global", "UKBench56 N-S, global", "ns_score", 4.000, 3, GLOBAL),
    Figure("ukbench-global", "UKBench56 mAP, global", "map", 1.000, 3, GLOBAL),
    Figure("oxford-global", "Oxford mAP, global, box query", "box/map", 0.361, 3, RECHECKED),
    Figure("oxford-global", "Oxford top-1, global, box query", "box/top1", 0.6, 1, GLOBAL),
    Figure("oxford-global", "Oxford mAP, global, whole image", "whole/map", 0.639, 3, GLOBAL),
    Figure("oxford-local", "Oxford mAP, local (default)", "map", 0.493, 3, RECHECKED,
           OXFORD_TREE),
    Figure("oxford-auto", "Oxford mAP, auto run: global", "by_method/global/map", 0.361, 3,
           INT8),
    Figure("oxford-auto", "Oxford mAP, auto run: local", "by_method/local/map", 0.493, 3,
           RECHECKED, OXFORD_TREE),
    Figure("oxford-auto", "Oxford mAP, auto run: regions", "by_method/regions/map", 0.763, 3,
           PROJECTION),
    Figure("oxford-auto", "Oxford mAP, auto run: text", "by_method/text/map", 0.043, 3, CROP),
    Figure("oxford-auto", "Oxford mAP, auto run: auto", "by_method/auto/map", 0.758, 3,
           RECHECKED, OXFORD_TREE),
    Figure("oxford-auto", "Oxford mAP, auto run: rrf", "by_method/rrf/map", 0.640, 3, RECHECKED,
           OXFORD_TREE),
    Figure("oxford-auto", "Oxford mAP, auto run: weighted-platt-cv",
           "by_method/weighted-platt-cv/map", 0.750, 3, RECHECKED, OXFORD_TREE),
    Figure("oxford-auto", "Oxford mAP, auto run: learned-cv", "by_method/learned-cv/map",
           0.718, 3, RECHECKED, OXFORD_TREE),
    Figure("ukbench-auto", "UKBench56 N-S, auto run: auto", "by_method/auto/ns_score", 4.000,
           3, RECHECKED),
    Figure("ukbench-auto", "UKBench56 N-S, auto run: rrf", "by_method/rrf/ns_score", 3.821, 3,
           FUSION),
    Figure("ukbench-auto", "UKBench56 N-S, auto run: learned-cv",
           "by_method/learned-cv/ns_score", 4.000, 3, FUSION),
    Figure("ukbench-auto", "UKBench56 N-S, auto run: weighted-platt-cv",
           "by_method/weighted-platt-cv/ns_score", 4.000, 3, FUSION),
    Figure("ukbench-auto", "UKBench56 N-S, auto run: local", "by_method/local/ns_score", 3.804,
           3, RECHECKED),
    Figure("faces", "LFW View 1 test accuracy, faces", "lfw/accuracy", 0.990, 3, FACES),
    Figure("faces", "LFW View 1 test accuracy std, faces", "lfw/accuracy_std", 0.014, 3, FACES),
    Figure("faces", "LFW pairs with a failure, faces", "lfw/pairs_with_failure", 0, 0, FACES),
    Figure("faces", "ORL rank-1, faces", "orl/top1", 1.000, 3, FACES),
    Figure("faces", "ORL mAP, faces", "orl/map", 1.000, 3, FACES),
)

LITE0 = GlobalChannelConfig(extractor="efficientnet-lite0")  # no whitening, the default


# -- the checks: each returns its evaluate() reports by name ----------------------------------

def check_ukbench_global(data: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    return {"": evaluate("ukbench", data=data / "ukbench56", configs={"global": LITE0},
                         collection=scratch / "ukbench-global", progress=progress("ukbench"))}


def check_oxford_global(data: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    folder, collection = data / "oxford5k_subset", scratch / "oxford-global"
    return {"box": evaluate("oxford", data=folder, configs={"global": LITE0},
                            collection=collection, progress=progress("oxford global")),
            "whole": evaluate("oxford", data=folder, configs={"global": LITE0}, crop=False,
                              collection=collection)}


def check_oxford_local(data: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    # Default LocalChannelConfig: RootSIFT, verification, expansion, leaves only; no tree
    # file, so the tree is trained on the Oxford subset itself, as bench_local.py did.
    return {"": evaluate("oxford", data=data / "oxford5k_subset", channel="local",
                         collection=scratch / "oxford-local", progress=progress("oxford local"))}


def check_oxford_auto(data: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    # As bench_multiclue.py crop/fusion: no settings, default auto channels.
    return {"": evaluate("oxford", data=data / "oxford5k_subset", channel="auto",
                         collection=scratch / "oxford-auto", progress=progress("oxford auto"))}


def check_ukbench_auto(data: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    # As bench_multiclue.py fusion: no settings, so the local tree is trained on UKBench56.
    return {"": evaluate("ukbench", data=data / "ukbench56", channel="auto",
                         collection=scratch / "ukbench-auto", progress=progress("ukbench auto"))}


def check_faces(data: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    # As bench_faces.py quality, for the default detector and embedder, named so that the
    # check stays on the figures' models when a default changes.
    faces = {"faces": FacesChannelConfig(detector="centerface", embedder="sface")}
    return {"lfw": evaluate("lfw", data=data / "lfw", pairs=Path("pairsDevTest.txt"),
                            channel="faces", configs=faces, collection=scratch / "lfw-faces",
                            progress=progress("lfw")),
            "orl": evaluate("orl", data=data / "orl_faces", channel="faces", configs=faces,
                            collection=scratch / "orl-faces", progress=progress("orl"))}


CHECKS: dict[str, Callable[[Path, Path], dict[str, dict[str, Any]]]] = {
    "ukbench-global": check_ukbench_global,
    "oxford-global": check_oxford_global,
    "oxford-local": check_oxford_local,
    "oxford-auto": check_oxford_auto,
    "ukbench-auto": check_ukbench_auto,
    "faces": check_faces,
}


def progress(label: str) -> Callable[[int, int], None]:
    """Indexing progress on stderr every tenth of the way (long runs show they are alive)."""
    shown = [-1]

    def report(done: int, total: int) -> None:
        step = 10 * done // max(total, 1)
        if step != shown[0]:
            shown[0] = step
            print(f"  {label}: indexed {done}/{total}", file=sys.stderr, flush=True)

    return report


# -- comparing --------------------------------------------------------------------------------

def lookup(reports: dict[str, dict[str, Any]], key: str) -> float | None:
    """``key`` is ``[report/]field[/field...]``; the unnamed report is ``""``."""
    parts = key.split("/")
    if len(parts) > 1 and parts[0] in reports:
        value: Any = reports[parts.pop(0)]
    else:
        value = reports[""]
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value)


def compare(figure: Figure, measured: float | None) -> dict[str, Any]:
    printed = None if measured is None else f"{measured:.{figure.decimals}f}"
    same = printed == f"{figure.recorded:.{figure.decimals}f}"
    return {"check": figure.check, "figure": figure.name, "section": figure.section,
            "recorded": figure.recorded, "measured": measured,
            "measured_rounded": printed,
            "difference": None if measured is None else measured - figure.recorded,
            "status": "same" if same else "DIFFERS", "note": figure.note}


def plain(value: Any) -> Any:
    """A report as JSON can hold it (configs may carry paths or tuples)."""
    return json.loads(json.dumps(value, default=str))


def src_changes() -> str:
    """Uncommitted changes under src/ (what a '-dirty' commit means)."""
    try:
        return subprocess.run(["git", "diff", "--stat", "HEAD", "--", "src"], cwd=ROOT,
                              text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def previous(keep: set[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows and runs of the checks in ``keep`` from the last saved file."""
    path = RESULTS / "figures_check.json"
    if not path.exists():
        return [], {}
    document = json.loads(path.read_text())
    return ([row for row in document["rows"] if row["check"] in keep],
            {name: run for name, run in document["settings"].get("runs", {}).items()
             if name in keep})


def run(names: list[str], data: Path, scratch: Path) -> tuple[list[dict[str, Any]],
                                                              dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    runs: dict[str, Any] = {}
    for name in names:
        print(f"\n== {name}", flush=True)
        started = time.perf_counter()
        reports = CHECKS[name](data, scratch)
        seconds = time.perf_counter() - started
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        runs[name] = {"seconds": round(seconds, 1), "measured_at": when,
                      "reports": plain(reports)}
        for figure in (f for f in FIGURES if f.check == name):
            rows.append({**compare(figure, lookup(reports, figure.key)),
                         "measured_at": when, "commit": commit()})
            row = rows[-1]
            print(f"  {row['figure']:<44} recorded {figure.recorded:.{figure.decimals}f}  "
                  f"measured {row['measured_rounded']}  {row['status']}", flush=True)
        print(f"  {name}: {seconds:.0f} s", flush=True)
    return rows, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", choices=list(CHECKS), help="run this check only")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="keep the collections here and reuse them on the next run "
                             "(default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    names = [args.only] if args.only else list(CHECKS)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="lookalike-figures-"))
    scratch.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    try:
        rows, runs = run(names, args.data, scratch)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    total = time.perf_counter() - started
    kept_rows, kept_runs = previous(set(CHECKS) - set(names))
    rows = sorted(kept_rows + rows, key=lambda row: list(CHECKS).index(row["check"]))
    merged = {**kept_runs, **runs}
    runs = {name: merged[name] for name in CHECKS if name in merged}
    shown = [{**row, "difference": None if row["difference"] is None
              else round(row["difference"], 4)} for row in rows]
    print()
    print(markdown_table(shown,
                         ["check", "figure", "recorded", "measured_rounded", "difference",
                          "status", "section"]))
    differing = [row for row in rows if row["status"] != "same"]
    for note in dict.fromkeys(row["note"] for row in differing if row.get("note")):
        affected = [row["figure"] for row in differing if row.get("note") == note]
        print(f"\nknown to differ between machines ({len(affected)} of the above): {note}")
    print(f"\n{len(rows) - len(differing)} of {len(rows)} figures as recorded; "
          f"{total / 60:.1f} min for {', '.join(names)}")
    path = save("figures_check", {
        "data": str(args.data), "checks_run": names, "seconds": round(total, 1),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "src_changes_uncommitted": src_changes(),
        "collections": "fresh, in a scratch folder" if args.scratch is None
                       else f"kept in {args.scratch}",
        "comparison": "measured rounded to the decimals BENCHMARKS.md prints",
        "runs": runs}, rows)
    print(f"saved {path}")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
