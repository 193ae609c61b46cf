"""People that need little cleanup: LFW identities among photos of buildings.

    python benchmarks/bench_people.py [--data ../shared/data] [--people 30] [--per-person 5]
                                      [--distractors 200]

The photos: ``--per-person`` images of each of the first ``--people`` LFW identities (in
name order) with that many, and the first ``--distractors`` photos of the Oxford 1k subset
(buildings, with people in the street). One faces collection (the defaults: CenterFace and
SFace) indexes them once; then people are grouped from scratch under each grouping setting
(``group_min_face``, ``group_min_score``; 0 and 0 group every face, as before issue 19). A
face is its identity's when it is the central face of an LFW photo (LFW's convention); every
other face (the buildings' passers-by, LFW's background faces) belongs to nobody.

Reported per setting: people in all, people per true identity (how many people an
identity's faces went to: 1 is perfect), identities split, identity faces left ungrouped,
junk people (no identity face at all), people of one face, people that mix identities.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, markdown_table, save

from lookalike import Collection, FacesChannelConfig
from lookalike.faces import central_face
from lookalike.faces.detect import Face

SETTINGS = ((0, 0.0), (32, 0.5), (48, 0.5), (48, 0.8), (64, 0.8))


def photos(data: Path, people: int, per_person: int, distractors: int
           ) -> tuple[list[Path], dict[str, str]]:
    """The files, and each LFW file's identity."""
    identities: dict[str, str] = {}
    for folder in sorted((data / "lfw" / "lfw").iterdir()):
        files = sorted(folder.glob("*.jpg"))
        if len(files) >= per_person:
            identities.update({str(path): folder.name for path in files[:per_person]})
        if len(set(identities.values())) == people:
            break
    buildings = sorted((data / "oxford5k_subset" / "jpg").glob("*.jpg"))[:distractors]
    return [Path(path) for path in identities] + buildings, identities


def truth_of_faces(collection: Collection, identities: dict[str, str]) -> dict[int, str | None]:
    """face id -> the identity it shows, or None."""
    truth: dict[int, str | None] = {}
    for record in collection.images():
        faces = collection.faces_of(record.id)
        central = None
        if record.path in identities and faces and record.width and record.height:
            boxes = [Face(box=(face.box[0], face.box[1], face.box[2], face.box[3]),
                          landmarks=np.zeros((5, 2)), score=face.score, scheme="centerface5")
                     for face in faces]
            central = faces[central_face(boxes, record.width, record.height)].face_id
        for face in faces:
            truth[face.face_id] = identities[record.path] if face.face_id == central else None
    return truth


def measured(collection: Collection, truth: dict[int, str | None]) -> dict[str, Any]:
    people = collection.people
    assigned = people.person_of(list(truth))
    members: dict[int, list[str | None]] = {}
    for face_id, (person, _) in assigned.items():
        members.setdefault(person, []).append(truth[face_id])
    identities = {identity for identity in truth.values() if identity is not None}
    spread = {identity: {person for face_id, (person, _) in assigned.items()
                         if truth[face_id] == identity} for identity in identities}
    waiting = sum(1 for face_id, identity in truth.items()
                  if identity is not None and face_id not in assigned)
    return {
        "faces": len(truth), "people": len(members),
        "people_per_identity": round(float(np.mean([len(p) for p in spread.values()])), 3),
        "identities_split": sum(len(p) > 1 for p in spread.values()),
        "identity_faces_ungrouped": waiting,
        "junk_people": sum(all(m is None for m in found) for found in members.values()),
        "one_face_people": sum(len(found) == 1 for found in members.values()),
        "mixed_people": sum(len({m for m in found if m is not None}) > 1
                            for found in members.values()),
        "largest_junk": max((len(found) for found in members.values()
                             if all(m is None for m in found)), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--per-person", type=int, default=5)
    parser.add_argument("--distractors", type=int, default=200)
    args = parser.parse_args()
    files, identities = photos(args.data, args.people, args.per_person, args.distractors)
    scratch = Path(tempfile.mkdtemp(prefix="lookalike-people-"))
    rows = []
    try:
        started = time.perf_counter()
        with Collection(scratch / "c", channels=["faces"]) as collection:
            collection.index(files)
            truth = truth_of_faces(collection, identities)
        print(f"indexed {len(files)} photos, {len(truth)} faces, in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        for min_face, min_score in SETTINGS:
            config = FacesChannelConfig(group_min_face=min_face, group_min_score=min_score)
            with Collection(scratch / "c", configs={"faces": config}) as collection:
                collection.people.update(reset=True)
                rows.append({"group_min_face": min_face, "group_min_score": min_score,
                             **measured(collection, truth)})
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(markdown_table(rows, list(rows[0])))
    save("people", {"lfw_identities": args.people, "per_identity": args.per_person,
                    "distractors": f"first {args.distractors} Oxford 1k photos",
                    "identity_faces": sum(1 for v in Counter(identities.values()).values()
                                          for _ in range(v))}, rows)


if __name__ == "__main__":
    main()
