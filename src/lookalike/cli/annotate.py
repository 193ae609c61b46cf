"""``lookalike annotate``: show or edit an image's captions, tags and categories, or import
a sidecar of them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lookalike.cli.common import (
    Commands,
    collection_option,
    counted,
    show,
    sidecar_status,
    waiting,
)
from lookalike.collection import Collection
from lookalike.errors import ValidationError


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("annotate", help="show or edit captions, tags and categories")
    parser.add_argument("image", nargs="?", default=None, metavar="IMAGE",
                        help="an indexed image's path (omit with --import)")
    collection_option(parser)
    parser.add_argument("--caption", action="append", default=None, metavar="TEXT",
                        help="replace the image's captions (repeat for several)")
    parser.add_argument("--tag", action="append", default=None, metavar="TEXT",
                        help="replace the image's tags (repeat for several)")
    parser.add_argument("--category", action="append", default=None, metavar="TEXT",
                        help="replace the image's categories (repeat for several)")
    parser.add_argument("--remove", type=int, action="append", default=[], metavar="ID",
                        help="delete one annotation by id (a wrong label, too)")
    parser.add_argument("--import", dest="sidecar", type=Path, default=None, metavar="FILE",
                        help="import a CSV/TSV/JSON sidecar of captions, tags and categories")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run_annotate)


def run_annotate(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        notes = collection.annotations
        if args.sidecar is not None:
            report = notes.import_sidecar(args.sidecar)
            show(args, report.as_dict(), f"annotated {counted(report.annotated, 'image')}; "
                                         f"{counted(len(report.unknown), 'path')} not in the "
                                         "collection")
            return sidecar_status(args.sidecar, report.annotated)
        for annotation_id in args.remove:
            notes.remove(annotation_id)
        if args.image is None:
            if args.remove:
                return 0
            raise ValidationError("expected an IMAGE path or --import FILE, got neither")
        record = collection.image_by_path(args.image, failed=True)
        if any(given is not None for given in (args.caption, args.tag, args.category)):
            notes.set(record.id, captions=args.caption, tags=args.tag,
                      categories=args.category)
        found = [note.as_dict() for note in notes.of(record.id)]
    show(args, {"image_id": record.id, "path": record.path, "annotations": found},
         _format_notes(found))
    return 0


def _format_notes(found: list[dict[str, Any]]) -> str:
    return "\n".join(f"{n['id']:>6}  {n['kind']:<11} {n['source']:<9} "
                     f"{'' if n['score'] is None else format(n['score'], '.3f'):>6}  {n['text']}"
                     for n in found) or "no annotations"
