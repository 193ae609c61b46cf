"""Small collections of one object: does the local channel find its photos?

    python benchmarks/bench_small_collections.py [--data ../shared/data] [--smvs DIR]
                                                 [--before REV] [--work DIR]

A user's album often holds a few photos of one thing: one painting, the covers of one
product. Each group of photos of one object is split: its first n photos (n = 1, 2, 3) are
a collection of their own, with the local channel's defaults (the shipped generic tree, as
for every collection this small); each of the group's other photos searches it. Reported per
n: the share of the collection's photos found (in the results at all, and verified by
RANSAC) and the queries that found nothing.

The groups: UKBench56's 14 objects (4 photos each, ``--data``) and, with ``--smvs``, an
SMVS category's 100 objects (the clean reference first, then the Canon, Droid, E63 and Palm
phone photos, shrunk to 640 px as in ``bench_planar.py``).

``--before REV`` measures the code of another commit on the same collections in the same
run (the stored data is the same; only how it is searched may differ).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_profile import worktree
from common import DEFAULT_DATA, ROOT, json_in_process, markdown_table, save
from PIL import Image

from lookalike import Collection

SIZES = (1, 2, 3)
CAMERAS = ("Canon", "Droid", "E63", "Palm")
QUERY_SIDE = 640


def ukbench_groups(data: Path) -> list[list[Path]]:
    """UKBench56's objects, each its 4 photos in file order."""
    folder = data / "ukbench56" / "full"
    groups: dict[str, list[Path]] = {}
    lines = (data / "ukbench56" / "groups.tsv").read_text().splitlines()[1:]
    for name, object_id in (line.split("\t") for line in lines):
        groups.setdefault(object_id, []).append(folder / name)
    return [sorted(photos) for photos in groups.values()]


def smvs_groups(smvs: Path, work: Path) -> list[list[Path]]:
    """An SMVS category's objects: the reference, then each camera's photo at 640 px."""
    shrunk = work / "smvs-640"
    groups = []
    for reference in sorted((smvs / "Reference").glob("*.jpg")):
        group = [reference]
        for camera in CAMERAS:
            photo = smvs / camera / reference.name
            target = shrunk / camera / reference.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                with Image.open(photo) as image:
                    image.thumbnail((QUERY_SIDE, QUERY_SIDE))
                    image.convert("RGB").save(target, quality=92)
            group.append(target)
        groups.append(group)
    return groups


def stored_name(photo: Path) -> str:
    """A photo's name in its collection: SMVS names an object's photos alike in every
    camera's folder."""
    return f"{photo.parent.name}-{photo.name}"


def collection_of(work: Path, name: str, photos: Sequence[Path]) -> Path:
    """A local-channel collection of ``photos`` (made once, reused by the other code)."""
    root = work / "collections" / name
    if not (root / "done").exists():
        folder = work / "photos" / name
        folder.mkdir(parents=True, exist_ok=True)
        for photo in photos:
            link = folder / stored_name(photo)
            if not link.exists():
                link.symlink_to(photo.resolve())
        with Collection(root, channels=["local"]) as collection:
            collection.index([folder])
        (root / "done").touch()
    return root


def measure(work: Path, groups: dict[str, list[list[Path]]]) -> dict[str, Any]:
    """Per set and n: the share found and verified, and the queries that found nothing."""
    rows = {}
    for set_name, set_groups in groups.items():
        for size in SIZES:
            found = verified = empty = queries = 0
            for number, group in enumerate(set_groups):
                kept, asking = group[:size], group[size:]
                root = collection_of(work, f"{set_name}-{number:03d}-{size}", kept)
                wanted = {stored_name(photo) for photo in kept}
                with Collection(root).open() as collection:
                    for query in asking:
                        results = collection.search(query, k=size, channel="local")
                        names = {Path(r.path).name: r for r in results}
                        hits = [names[name] for name in wanted if name in names]
                        found += len(hits)
                        verified += sum(bool(r.evidence.as_dict()["local"].get("verified"))
                                        for r in hits)
                        empty += not results
                        queries += 1
            rows[f"{set_name}/{size}"] = {
                "queries": queries, "found": round(found / (queries * size), 4),
                "verified": round(verified / (queries * size), 4), "nothing_found": empty}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--smvs", type=Path, help="an SMVS category folder")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lookalike-small"))
    parser.add_argument("--before", help="a commit whose code is measured beside this one")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    groups = {"ukbench": ukbench_groups(args.data)}
    if args.smvs:
        groups["smvs"] = smvs_groups(args.smvs, args.work)
    if args.measure:
        print(json.dumps(measure(args.work, groups)))
        return
    arguments = [__file__, "--data", str(args.data), "--work", str(args.work), "--measure",
                 *(["--smvs", str(args.smvs)] if args.smvs else [])]
    now = json_in_process(ROOT, arguments, "this code")
    before = worktree(args.before) if args.before else None
    try:
        then = json_in_process(before, arguments, args.before) if before else {}
    finally:
        if before is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT,
                           check=False, capture_output=True)
    rows = []
    for key, figures in now.items():
        set_name, size = key.split("/")
        row = {"set": set_name, "photos_per_collection": int(size), **figures}
        if key in then:
            row.update({f"before_{name}": value for name, value in then[key].items()
                        if name != "queries"})
        rows.append(row)
    columns = ["set", "photos_per_collection", "queries", "found", "verified", "nothing_found"]
    if then:
        columns += ["before_found", "before_verified", "before_nothing_found"]
    print(markdown_table(rows, columns))
    save("small_collections", {"sizes": SIZES, "before": args.before,
                               "channel": "local, defaults (the shipped generic tree)",
                               "smvs": str(args.smvs) if args.smvs else None}, rows)


if __name__ == "__main__":
    main()
