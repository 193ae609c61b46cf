"""``lookalike faces``: verify two faces, and list, name, merge, split and reject the people
of a collection."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lookalike.cli.common import (
    Commands,
    collection_option,
    counted,
    max_pixels_option,
    print_json,
    printable,
    waiting,
)
from lookalike.collection import Collection, Person
from lookalike.faces import CLUSTERERS, DETECTORS, EMBEDDERS


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("faces", help="verify faces, and list, name, merge and split "
                                               "the people of a collection")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_verify(actions)
    _add_list(actions)
    _add_people(actions)
    _add_edits(actions)


def _add_verify(actions: Commands) -> None:
    verify = actions.add_parser("verify", help="are the largest faces of two images the same "
                                               "person?")
    verify.add_argument("first", type=Path, metavar="IMAGE_A")
    verify.add_argument("second", type=Path, metavar="IMAGE_B")
    verify.add_argument("--detector", choices=sorted(DETECTORS), default="centerface")
    verify.add_argument("--embedder", default="sface", metavar="NAME",
                        help=f"face embedder: one of {', '.join(sorted(EMBEDDERS))} or a face "
                             "model file made by lookalike train --faces (default: sface)")
    verify.add_argument("--threshold", type=float, default=None, metavar="COSINE",
                        help="same-person similarity (default: calibrated on LFW View 1 train)")
    max_pixels_option(verify)
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=run_faces_verify)


def _add_list(actions: Commands) -> None:
    found = actions.add_parser("list", help="the faces of an indexed image: their ids, boxes "
                                            "and people")
    found.add_argument("image", type=Path, metavar="IMAGE")
    collection_option(found)
    found.add_argument("--json", action="store_true")
    found.set_defaults(handler=run_faces_list)


def run_faces_list(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        record = collection.image_by_path(args.image)
        faces = collection.faces_of(record.id)
    if args.json:
        print_json({"image": record.path, "image_id": record.id,
                    "faces": [face.as_dict() for face in faces]})
        return 0
    if not faces:
        print(f"no faces found in {printable(record.path)}", file=sys.stderr)
    for face in faces:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        person = ("no person yet" if face.person is None else
                  f"person {face.person[0]}" + (f" ({printable(face.person[1])})"
                                                if face.person[1] else ""))
        print(f"face {face.face_id}  box {x0},{y0},{x1},{y1}  score {face.score:.2f}  {person}")
    return 0


def _add_people(actions: Commands) -> None:
    people = actions.add_parser("people", help="group new faces into people, then list people")
    collection_option(people)
    people.add_argument("--min-faces", type=int, default=1, metavar="N",
                        help="list people with at least N faces (default 1)")
    people.add_argument("--person", type=int, default=None, metavar="ID",
                        help="list this person's faces instead")
    people.add_argument("--reset", action="store_true",
                        help="re-cluster every unnamed person's faces that you did not place")
    people.add_argument("--algorithm", choices=sorted(CLUSTERERS), default="chinese-whispers")
    people.add_argument("--threshold", type=float, default=None, metavar="COSINE",
                        help="same-person similarity for clustering (default: chosen on LFW)")
    people.add_argument("--json", action="store_true")
    people.set_defaults(handler=run_faces_people)


def _add_edits(actions: Commands) -> None:
    """The user's corrections of the clustering: name, merge, split, reject."""
    name = actions.add_parser("name", help="name a person (an empty name clears it)")
    collection_option(name)
    name.add_argument("person", type=int, metavar="PERSON")
    name.add_argument("name", metavar="NAME")
    name.add_argument("--json", action="store_true")
    name.set_defaults(handler=run_faces_name)

    merge = actions.add_parser("merge", help="merge people into the first one")
    collection_option(merge)
    merge.add_argument("people", type=int, nargs="+", metavar="PERSON")
    merge.add_argument("--json", action="store_true")
    merge.set_defaults(handler=run_faces_merge)

    split = actions.add_parser("split", help="move some faces of a person into a new person")
    collection_option(split)
    split.add_argument("person", type=int, metavar="PERSON")
    split.add_argument("faces", type=int, nargs="+", metavar="FACE")
    split.add_argument("--json", action="store_true")
    split.set_defaults(handler=run_faces_split)

    reject = actions.add_parser("reject", help="\"not this person\": take a face out of its "
                                               "person for good")
    collection_option(reject)
    reject.add_argument("faces", type=int, nargs="+", metavar="FACE")
    reject.add_argument("--json", action="store_true")
    reject.set_defaults(handler=run_faces_reject)

    assign = actions.add_parser("assign", help="put a face into a person (yours to decide: "
                                               "clustering never moves it)")
    collection_option(assign)
    assign.add_argument("face", type=int, metavar="FACE")
    assign.add_argument("person", type=int, metavar="PERSON")
    assign.add_argument("--json", action="store_true")
    assign.set_defaults(handler=run_faces_assign)

    hide = actions.add_parser("hide", help="not a face: out of people and face search for "
                                           "good")
    collection_option(hide)
    hide.add_argument("faces", type=int, nargs="+", metavar="FACE")
    hide.add_argument("--json", action="store_true")
    hide.set_defaults(handler=run_faces_hide)


def run_faces_verify(args: argparse.Namespace) -> int:
    from lookalike.faces import FaceAnalyzer
    from lookalike.images import load_image

    analyzer = FaceAnalyzer(args.detector, args.embedder)
    images = [load_image(path, max_pixels=args.max_pixels) for path in (args.first, args.second)]
    result = analyzer.verify(images[0], images[1], threshold=args.threshold)
    if args.json:
        print_json({"first": str(args.first), "second": str(args.second), **result.as_dict()})
    else:
        verdict = "same person" if result.same else "different people"
        print(f"{verdict}: similarity {result.similarity:.4f} (threshold {result.threshold:.4f}),"
              f" distance {result.distance:.4f}")
    return 0


def run_faces_people(args: argparse.Namespace) -> int:
    if args.person is not None:
        return _list_faces(args)
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        people = collection.people
        report = people.update(reset=args.reset, algorithm=args.algorithm,
                               threshold=args.threshold)
        listed = people.all(min_faces=args.min_faces)
        unassigned = people.unassigned()
    if args.json:
        print_json({"update": report.as_dict(), "unassigned_faces": unassigned,
                    "people": [person.as_dict() for person in listed]})
        return 0
    print(f"{counted(report.joined, 'face')} joined known people, {report.clustered} "
          f"clustered into {counted(report.new_people, 'new person', 'new people')}; "
          f"{counted(report.people, 'person', 'people')} in all; "
          f"{counted(unassigned, 'face')} not grouped (small, unclear, rejected or new: place "
          "them with faces assign, or hide with faces hide)")
    for person in listed:
        _print_person(person)
    return 0


def _list_faces(args: argparse.Namespace) -> int:
    """``faces people --person ID``: one person's faces, ``*`` marking those the user placed."""
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        people = collection.people
        faces = people.faces(args.person)
        if args.json:
            print_json({"person": people.get(args.person).as_dict(),
                        "faces": [face.as_dict() for face in faces]})
        else:
            _print_person(people.get(args.person))
            for face in faces:
                mark = "*" if face.confirmed else " "
                print(f"  face {face.face_id:>7}{mark} {printable(face.path)} {face.box}")
    return 0


def _print_person(person: Person) -> None:
    cover = f"  e.g. {person.cover.path} {person.cover.box}" if person.cover else ""
    faces = counted(person.faces, "face")
    print(f"{person.id:>6}  {person.name or '(unnamed)':<24} {faces:>11}{cover}")


def _print_one(args: argparse.Namespace, person: Person, what: str) -> int:
    if args.json:
        print_json(person.as_dict())
    else:
        print(what)
        _print_person(person)
    return 0


def run_faces_name(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        person = collection.people.name(args.person, args.name.strip() or None)
    return _print_one(args, person, "named:")


def run_faces_merge(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        person = collection.people.merge(args.people)
    return _print_one(args, person, "merged into:")


def run_faces_split(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        person = collection.people.split(args.person, args.faces)
    return _print_one(args, person, "new person:")


def run_faces_assign(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        person = collection.people.assign(args.face, args.person)
    if args.json:
        print_json(person.as_dict())
    else:
        print(f"face {args.face} is in person {person.id}"
              + (f" ({printable(person.name)})" if person.name else ""))
    return 0


def run_faces_hide(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        hidden = collection.people.hide(args.faces)
    if args.json:
        print_json({"hidden": args.faces})
    else:
        print(f"hid {hidden} face{'s' if hidden != 1 else ''}: not in people or face search "
              "any more")
    return 0


def run_faces_reject(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        left = collection.people.reject(args.faces)
    if args.json:
        print_json({"rejected": [{"face_id": f, "person_id": p} for f, p in left.items()]})
    else:
        for face, person in left.items():
            print(f"face {face} is no longer in person {person}, and will not be put back")
    return 0
