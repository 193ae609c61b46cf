"""``lookalike info`` and ``lookalike remove``: what a collection holds; taking images out."""

from __future__ import annotations

import argparse

from lookalike.cli.common import Commands, collection_option, print_json, printable, waiting
from lookalike.collection import Collection


def add_parser(commands: Commands) -> None:
    info = commands.add_parser("info", help="what a collection holds")
    collection_option(info)
    info.add_argument("--failures", action="store_true", help="list the files that failed")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=run_info)

    remove = commands.add_parser("remove", help="remove images or folders from a collection")
    remove.add_argument("paths", nargs="+", metavar="PATH")
    collection_option(remove)
    remove.add_argument("--json", action="store_true")
    remove.set_defaults(handler=run_remove)


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
    if args.json:
        print_json({"removed": removed})
    else:
        print(f"removed {removed} images")
    return 0
