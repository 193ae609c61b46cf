"""``lookalike info``, ``remove`` and ``include``: what a collection holds; taking images out
and letting them back in."""

from __future__ import annotations

import argparse
import os
import sys

from lookalike.cli.common import (
    Commands,
    collection_option,
    counted,
    print_json,
    printable,
    waiting,
)
from lookalike.collection import Collection
from lookalike.errors import ValidationError


def add_parser(commands: Commands) -> None:
    info = commands.add_parser("info", help="what a collection holds")
    collection_option(info)
    info.add_argument("--failures", action="store_true", help="list the files that failed")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=run_info)

    remove = commands.add_parser("remove", help="remove images or folders from a collection "
                                                "and keep them out of later index runs")
    remove.add_argument("paths", nargs="+", metavar="PATH")
    collection_option(remove)
    remove.add_argument("--json", action="store_true")
    remove.set_defaults(handler=run_remove)

    include = commands.add_parser("include", help="let removed paths or --exclude patterns "
                                                  "back in (the next index adds them)")
    include.add_argument("patterns", nargs="+", metavar="PATH_OR_PATTERN")
    collection_option(include)
    include.add_argument("--json", action="store_true")
    include.set_defaults(handler=run_include)


def run_info(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        info = collection.info()
        failures = collection.failures() if args.failures else []
    info["failures"] = [{"path": record.path, "reason": record.error} for record in failures]
    if args.json:
        print_json(info)
        return 0
    print(f"collection  {info['root']}  (created {info['created_at']} by {info['created_by']})")
    print(f"images      {info['images']} indexed, {info['failed']} failed")
    print(f"disk        {info['disk_bytes'] / 1e6:.1f} MB")
    for folder in info["folders"]:
        print(f"indexed     {printable(folder)}")
    for pattern in info["excluded"]:
        print(f"excluded    {printable(pattern)}")
    for name, channel in info["channels"].items():
        stored = channel["stored_bytes_per_image"]
        print(f"channel     {name}: {channel['summary']}"
              + (f"; {stored:,} bytes per image" if stored else ""))
    for failure in info["failures"]:
        print(f"  failed: {printable(failure['path'])}: {printable(failure['reason'])}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        removed = collection.remove(args.paths)
    if not removed and not any(os.path.exists(path) for path in args.paths):
        raise ValidationError(f"expected an indexed image or folder, got {args.paths}: none is "
                              "indexed or exists (nothing removed, nothing kept out)")
    if args.json:
        print_json({"removed": removed})
    else:
        print(f"removed {counted(removed, 'image')}; later index runs leave them out "
              "(lookalike include lets them back in)")
    return 0


def run_include(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        dropped = collection.include(args.patterns)
    unknown = [pattern for pattern in args.patterns if pattern not in dropped]
    if args.json:
        print_json({"included": dropped, "not_excluded": unknown})
    else:
        for pattern in dropped:
            print(f"included {printable(pattern)}: the next index of its folder adds it")
    if unknown:
        print("error: not excluded: " + ", ".join(printable(p) for p in unknown),
              file=sys.stderr)
        return 1
    return 0
