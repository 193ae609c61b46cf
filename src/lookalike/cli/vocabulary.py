"""``lookalike vocabulary``: train a vocabulary tree on folders of images, for --vocabulary."""

from __future__ import annotations

import argparse
from pathlib import Path

from lookalike.cli.common import Commands, max_pixels_option, print_json, printable, progress_bar
from lookalike.local import FEATURE_KINDS


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "vocabulary", help="train a vocabulary tree on folders of images, for --vocabulary")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument("--out", "-o", required=True, type=Path, metavar="NPZ")
    parser.add_argument("--features", choices=FEATURE_KINDS, default="rootsift")
    parser.add_argument("--max-features", type=int, default=1500, metavar="N")
    parser.add_argument("--branching", type=int, default=10, help="k, children per node")
    parser.add_argument("--depth", type=int, default=6, help="L, levels below the root")
    parser.add_argument("--max-images", type=int, default=2000, metavar="N")
    parser.add_argument("--max-descriptors", type=int, default=1_000_000, metavar="N")
    parser.add_argument("--compact", action="store_true",
                        help="store the centres as bytes: a file a quarter the size")
    max_pixels_option(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.set_defaults(handler=run_vocabulary)


def run_vocabulary(args: argparse.Namespace) -> int:
    from lookalike.local import train_vocabulary

    with progress_bar("extracting features", args.quiet) as update:
        report = train_vocabulary(
            args.paths, args.out, features=args.features, max_features=args.max_features,
            branching=args.branching, depth=args.depth, max_images=args.max_images,
            max_descriptors=args.max_descriptors, max_pixels=args.max_pixels,
            compact=args.compact, progress=update)
    if args.json:
        print_json(report)
    else:
        print(f"vocabulary tree {report['id']}: {report['leaves']:,} words from "
              f"{report['descriptors']:,} descriptors of {report['images']} images in "
              f"{report['train_seconds']:.1f} s -> {args.out}")
        for failure in report["failures"]:
            print(f"  failed: {printable(failure['path'])}: "
                  f"{printable(failure['reason'])}")
    return 0
