"""``lookalike duplicates``: byte-identical copies and near-duplicates, as groups."""

from __future__ import annotations

import argparse
import sys

from lookalike.cli.common import Commands, collection_option, print_json, printable, waiting
from lookalike.collection import NEAR_THRESHOLD, Collection, find_duplicates


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("duplicates", help="find copies: byte-identical files, and "
                                                    "near-duplicates (resized, recompressed, "
                                                    "cropped, retouched)")
    collection_option(parser)
    parser.add_argument("--threshold", type=float, default=NEAR_THRESHOLD, metavar="COSINE",
                        help="global-vector similarity from which two images are near "
                             f"duplicates (default {NEAR_THRESHOLD}, measured in BENCHMARKS.md)")
    parser.add_argument("--exact", action="store_true",
                        help="byte-identical files only (no global channel needed)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.set_defaults(handler=run_duplicates)


def run_duplicates(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        groups = find_duplicates(collection, threshold=args.threshold, near=not args.exact)
    if args.json:
        print_json({"threshold": None if args.exact else args.threshold,
                    "groups": [group.as_dict() for group in groups]})
        return 0
    if not groups:
        print("no duplicates found", file=sys.stderr)
    for number, group in enumerate(groups, start=1):
        kind = ("exact copies" if group.exact
                else f"near duplicates, similarity >= {group.weakest:.3f}")
        print(f"group {number}: {len(group.image_ids)} images, {kind}")
        for image_id, path, first in zip(group.image_ids, group.paths, group.same_bytes_as,
                                         strict=True):
            copy = f"  (same bytes as {first})" if first is not None and not group.exact else ""
            print(f"  {image_id:>6}  {printable(path)}{copy}")
    return 0
