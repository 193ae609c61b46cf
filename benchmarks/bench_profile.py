"""Where the time of one image goes when every clue is on, before and after a change.

Makes a folder of 640-pixel photos (Oxford buildings, and one in four an LFW portrait so
that the faces channel has work), then indexes it into fresh collections with several
channel sets, each in its own Python process, and reports images/s end to end with the
seconds each channel spent extracting (the pipeline's own per-channel clock, where the
code has one). ``--before REV`` runs the same measurement on the code of another commit
(checked out into a temporary worktree, imported ahead of this checkout) in the same run,
so the two columns share the machine's state.

    python benchmarks/bench_profile.py [--data ../shared/data] [--images 160]
    python benchmarks/bench_profile.py --before 9792564 --images 160

The local channel gets a vocabulary tree trained once on the same photos (10 x 4 levels),
so no run spends its time training; model loading is excluded (``prepare_seconds``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA, ROOT, json_in_process, markdown_table, save

SETUPS: dict[str, list[str]] = {
    "global": ["global"],
    "global+text": ["global", "text"],
    "global+regions": ["global", "regions"],
    "local": ["local"],
    "global+local": ["global", "local"],
    "faces": ["faces"],
    "all clues": ["global", "local", "faces", "regions", "text"],
}


def make_photos(data: Path, folder: Path, count: int, side: int) -> list[Path]:
    """``count`` JPEGs whose longer side is ``side``: Oxford photos, one in four a face."""
    from PIL import Image

    buildings = sorted((data / "oxford5k_subset" / "jpg").glob("*.jpg"))
    faces = sorted((data / "lfw").rglob("*.jpg"))[::97]
    if not buildings or not faces:
        raise SystemExit(f"expected oxford5k_subset/jpg and lfw under {data}")
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        source = faces[i // 4 % len(faces)] if i % 4 == 3 else buildings[i % len(buildings)]
        with Image.open(source) as image:
            rgb = image.convert("RGB")
            scale = side / max(rgb.size)
            rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)),
                             Image.Resampling.LANCZOS)
            target = folder / f"{i:05d}.jpg"
            rgb.save(target, quality=90)
        made.append(target)
    return made


def train_tree(photos: Path, out: Path) -> None:
    from lookalike.local.training import train_vocabulary

    train_vocabulary([photos], out, branching=10, depth=4)


def measure(photos: Path, channels: list[str], tree: Path, workers: int | None) -> dict[str, Any]:
    """Index ``photos`` into a fresh collection in this process; what the report says."""
    from lookalike import Collection
    from lookalike.collection import LocalChannelConfig

    folder = Path(tempfile.mkdtemp(prefix="lookalike-profile-"))
    configs: dict[str, Any] = {"local": LocalChannelConfig(vocabulary=str(tree), depth=4)}
    options: dict[str, Any] = {} if workers is None else {"workers": workers}
    try:
        with Collection(folder / "c", channels=channels,
                        configs={name: configs[name] for name in channels if name in configs},
                        **options) as collection:
            started = time.perf_counter()
            report = collection.index([photos])
            wall = time.perf_counter() - started
            info = collection.info()
        bytes_per_image = {name: stats.get("stored_bytes_per_image")
                           for name, stats in info.get("channels", {}).items()}
        return {"images": report.processed, "failed": len(report.failures),
                "images_per_s": round(report.processed / (wall - report.prepare_seconds), 2),
                "prepare_s": round(report.prepare_seconds, 2),
                "stage_s": {key: round(value, 2) for key, value in report.stage_seconds.items()},
                "bytes_per_image": bytes_per_image,
                "load_average": round(os.getloadavg()[0], 2)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_in_process(code: Path, photos: Path, channels: list[str], tree: Path,
                   workers: int | None) -> dict[str, Any]:
    """:func:`measure` in a fresh interpreter that imports Lookalike from ``code``."""
    command = [__file__, "--measure", ",".join(channels), "--photos", str(photos),
               "--tree", str(tree)]
    if workers is not None:
        command += ["--workers", str(workers)]
    return json_in_process(code, command, str(channels))


def worktree(revision: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="lookalike-before-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), revision], cwd=ROOT,
                   check=True, capture_output=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--side", type=int, default=640)
    parser.add_argument("--before", help="a commit to measure in the same run, as the reference")
    parser.add_argument("--setups", default=",".join(SETUPS), help="comma-separated names")
    parser.add_argument("--workers", type=int, help="the workers of the code under test")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--photos", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.photos, args.measure.split(","), args.tree, args.workers)))
        return
    scratch = Path(tempfile.mkdtemp(prefix="lookalike-profile-data-"))
    before = worktree(args.before) if args.before else None
    try:
        photos = scratch / "photos"
        make_photos(args.data, photos, args.images, args.side)
        tree = scratch / "tree.npz"
        train_tree(photos, tree)
        rows = []
        for name in args.setups.split(","):
            row: dict[str, Any] = {"channels": name}
            if before is not None:
                row["before"] = run_in_process(before, photos, SETUPS[name], tree, None)
            row["after"] = run_in_process(ROOT, photos, SETUPS[name], tree, args.workers)
            if before is not None:
                row["speedup"] = round(row["after"]["images_per_s"]
                                       / row["before"]["images_per_s"], 2)
            print(json.dumps(row))
            rows.append(row)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if before is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT,
                           check=False, capture_output=True)
    flat = [{"channels": row["channels"],
             "before img/s": row.get("before", {}).get("images_per_s"),
             "after img/s": row["after"]["images_per_s"], "speedup": row.get("speedup"),
             "after extract s by channel": ", ".join(
                 f"{key.split('.', 1)[1]} {value}" for key, value
                 in row["after"]["stage_s"].items() if key.startswith("extract."))}
            for row in rows]
    print(markdown_table(flat, list(flat[0])))
    save("profile", {"images": args.images, "side": args.side, "before": args.before,
                     "workers": args.workers,
                     "photos": "oxford5k_subset, every 4th an LFW portrait, resized to side"},
         rows)


if __name__ == "__main__":
    main()
