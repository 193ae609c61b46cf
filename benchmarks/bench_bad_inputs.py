"""Bad-input kinds handled as expected, with all five channels on at their default settings.

Writes the bad-input corpus of ``tests/badfiles.py`` (about 190 kinds of bad, odd and
hostile files: empty, truncated, decompression bombs, 1x1 spacers, every pixel mode, EXIF
orientations, FIFOs, devices, symbolic link loops, names that are not UTF-8, files that
change during the run...) next to the demo's sample photos from scikit-image (the local
channel trains its tree on them), and indexes it all in one run of a new collection with
the global, local, faces, regions and text channels at their defaults (efficientnet-lite0,
RootSIFT with a 10x6 tree, CenterFace and dlib, ...). A kind is handled when each of its
files is indexed (at its upright size) or failed (with a reason holding the expected words)
as it says.

The kinds with a known defect elsewhere (tests/badfiles.py marks them) can stop or hang a
whole run, so each is indexed afterwards on its own into the same collection, and counts
as not handled unless it came out as expected.

    python benchmarks/bench_bad_inputs.py [--max-pixels N]

Prints the figures and the kinds not handled, and saves ``results/bad_inputs.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from common import ROOT, save
from PIL import Image

sys.path.insert(0, str(ROOT / "tests"))
import badfiles  # tests/badfiles.py, the corpus the test suite runs

from lookalike import Collection
from lookalike.images import DEFAULT_MAX_PIXELS
from lookalike.samples import DATABASE_SAMPLES, write_sample_images

CHANNELS = ["global", "local", "faces", "regions", "text"]


def indexed_sizes(collection: Collection) -> dict[str, tuple[int | None, int | None]]:
    return {record.path: (record.width, record.height) for record in collection.images()}


def run_defect(collection: Collection, kind: Any, scratch: Path, max_pixels: int
               ) -> dict[str, Any]:
    """One kind with a known defect, alone, into the collection the corpus went into."""
    corpus = badfiles.write_corpus(scratch / f"defect-{kind.name}", [kind])
    try:
        with badfiles.FifoWatch(corpus.root, after_s=5.0) as watch:
            report = collection.index([corpus.root],
                                      progress=lambda done, total: corpus.change_files())
    except Exception as error:  # the defect may stop the whole run
        return {"kind": kind.name, "group": kind.group, "ok": False, "defect": kind.defect,
                "problems": [f"the run stopped: {type(error).__name__}: {error}"],
                "traceback": traceback.format_exc().splitlines()}
    verdicts, _ = badfiles.judge(corpus, report.failures, indexed_sizes(collection),
                                 max_pixels=max_pixels)
    problems = [note for verdict in verdicts for note in verdict.problems]
    problems += [f"a reader blocked on the FIFO {path} until it was freed" for path in watch.freed]
    return {"kind": kind.name, "group": kind.group, "ok": not problems, "defect": kind.defect,
            "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        photos, _ = write_sample_images(scratch / "samples")
        started = time.perf_counter()
        corpus = badfiles.write_corpus(scratch / "corpus")
        write_s = time.perf_counter() - started
        collection = Collection(scratch / "c", channels=CHANNELS, max_pixels=args.max_pixels)
        with collection.open(), badfiles.FifoWatch(corpus.root) as watch:
            started = time.perf_counter()
            report = collection.index([photos, corpus.root],
                                      progress=lambda done, total: corpus.change_files())
            run_s = time.perf_counter() - started
            sizes = indexed_sizes(collection)
            verdicts, strays = badfiles.judge(corpus, report.failures, sizes,
                                              max_pixels=args.max_pixels)
            photos_ok = all(str(path) in sizes for path in photos.iterdir())
            defects = [run_defect(collection, kind, scratch, args.max_pixels)
                       for kind in badfiles.KINDS if kind.defect]
        badfiles.restore_permissions(corpus.root)
    rows: list[dict[str, Any]] = [verdict.as_dict() for verdict in verdicts] + defects
    handled = sum(bool(row["ok"]) for row in rows)
    files = len(corpus.expected) + sum(1 for kind in badfiles.KINDS if kind.defect)
    summary = {
        "kinds": len(rows), "handled": handled, "files": files,
        "not_handled": [row["kind"] for row in rows if not row["ok"]],
        "left_out_here": corpus.left_out, "strays": strays,
        "fifo_readers_freed": watch.freed, "photos_indexed": photos_ok,
        "indexed": report.added, "failed": len(report.failures),
        "corpus_write_s": round(write_s, 3), "run_s": round(run_s, 1),
        "prepare_s": round(report.prepare_seconds, 1),
        "stage_s": {key: round(value, 2) for key, value in report.stage_seconds.items()},
    }
    settings = {"channels": CHANNELS, "configs": "defaults", "max_pixels": args.max_pixels,
                "photos": f"the demo's scikit-image samples ({len(DATABASE_SAMPLES)})",
                "batch_size": collection.batch_size}
    print(f"bad-input kinds handled as expected, all five channels on at their defaults: "
          f"{handled} / {len(rows)} ({files} files; the corpus written in {write_s:.2f} s, "
          f"indexed in {run_s:.1f} s of which {report.prepare_seconds:.1f} s loading models "
          f"and training)")
    print(f"indexed {report.added}, failed {len(report.failures)}; photos all indexed: "
          f"{photos_ok}; FIFO readers freed: {len(watch.freed)}; strays: {len(strays)}")
    for row in rows:
        if not row["ok"]:
            print(f"  not handled: {row['kind']} ({row['group']})"
                  + (f" [known defect: {row['defect']}]" if row.get("defect") else ""))
            for problem in row["problems"]:
                print(f"      {problem}")
    print(f"saved {save('bad_inputs', settings, [{'summary': summary}, *rows])}")


if __name__ == "__main__":
    main()
