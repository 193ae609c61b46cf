"""Face search through the default fusion: is ``auto`` at least the faces channel alone?

    python benchmarks/bench_face_fusion.py [--data ../shared/data] [--people 60]
                                           [--distractors 300] [--work DIR]

Two albums. LFW:
The set, made from LFW (aligned, 250x250): the first ``--people`` people (by name) with at
least 4 photos, 4 photos each, plus ``--distractors`` photos of people with a single
photo, as a photo album holds faces of a few known people and of many strangers. Every
photo of a known person queries the album; its relevant images are that person's other 3
photos (the query itself is junk: it neither helps nor hurts). The collection has the
global, faces and regions channels; each channel alone and each fusion are scored on the
same rankings (``lookalike eval custom --channel auto``), for the three channels and for
global+faces, the collection a user gets with ``--channels global,faces``. ORL: its 400
photos of 40 people (92x112, grey), each querying the person's other 9.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA, markdown_table, save
from PIL import Image

from lookalike.eval import evaluate

CHANNEL_SETS = (("global", "faces", "regions"), ("global", "faces"))


def make_album(lfw: Path, work: Path, people: int, distractors: int) -> tuple[Path, Path]:
    """The album folder (links into LFW) and its truth TSV, made once under ``work``."""
    album, truth = work / "album", work / "truth.tsv"
    if truth.exists():
        return album, truth
    folders = sorted(path for path in lfw.iterdir() if path.is_dir())
    known = [folder for folder in folders if len(list(folder.glob("*.jpg"))) >= 4][:people]
    strangers = [folder for folder in folders if len(list(folder.glob("*.jpg"))) == 1]
    lines = []
    for folder in known:
        photos = sorted(folder.glob("*.jpg"))[:4]
        for photo in photos:
            _link(photo, album / "known" / photo.name)
        lines += [f"known/{query.name}\tknown/{other.name}"
                  for query in photos for other in photos if other != query]
    for folder in strangers[:distractors]:
        photo = next(folder.glob("*.jpg"))
        _link(photo, album / "strangers" / photo.name)
    truth.write_text("\n".join(lines) + "\n")
    return album, truth


def make_orl_album(orl: Path, work: Path) -> tuple[Path, Path]:
    """ORL's photos as PNG (its PGM files are not in the formats indexed) and the truth."""
    album, truth = work / "orl", work / "orl_truth.tsv"
    if truth.exists():
        return album, truth
    lines = []
    for person in sorted(path for path in orl.iterdir() if path.is_dir()):
        names = []
        for photo in sorted(person.glob("*.pgm")):
            target = album / person.name / f"{photo.stem}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(photo) as opened:
                opened.convert("RGB").save(target)
            names.append(f"{person.name}/{target.name}")
        lines += [f"{query}\t{other}" for query in names for other in names if other != query]
    truth.write_text("\n".join(lines) + "\n")
    return album, truth


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(source.resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lookalike-face-fusion"))
    args = parser.parse_args()
    lfw = next(path for path in (args.data / "lfw" / "lfw", args.data / "lfw")
               if path.is_dir() and any(child.is_dir() for child in path.iterdir()))
    albums = {"lfw": make_album(lfw, args.work, args.people, args.distractors),
              "orl": make_orl_album(args.data / "orl_faces" / "orl_faces", args.work)}
    rows: list[dict[str, Any]] = []
    for name, (album, truth) in albums.items():
        for channels in CHANNEL_SETS:  # a collection each, as a user would index it
            report = evaluate("custom", root=album, truth=truth, channel="auto",
                              auto_channels=channels)
            by_method = report["by_method"]
            best = max(channels, key=lambda channel: by_method[channel]["map"])
            for method in (*channels, "rrf", "auto"):
                if method in by_method:
                    rows.append({"album": name, "channels": "+".join(channels),
                                 "ranking": method, "map": by_method[method]["map"],
                                 "recall_at_1": by_method[method]["recall_at_1"],
                                 "vs_best_single": (by_method[method]["map"]
                                                    - by_method[best]["map"])})
            print(rows[-1], flush=True)
    print(markdown_table(rows, ["album", "channels", "ranking", "map", "recall_at_1",
                                "vs_best_single"]))
    save("face_fusion", {"lfw": f"{args.people} LFW people x 4 photos + {args.distractors} "
                                "strangers (1 photo each)", "orl": "40 people x 10 photos",
                         "queries": "every known person's photo; relevant: their other 3"}, rows)


if __name__ == "__main__":
    main()
