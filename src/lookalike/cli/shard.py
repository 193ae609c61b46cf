"""``lookalike shard``: split a collection into shards, each an ordinary collection."""

from __future__ import annotations

import argparse
from pathlib import Path

from lookalike.cli.common import Commands, print_json, printable
from lookalike.collection import split_collection


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "shard", help="split a collection into shards by a hash of each image's path")
    parser.add_argument("source", type=Path, metavar="COL", help="the collection to split")
    parser.add_argument("--shards", type=int, required=True, metavar="N")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="a new folder for the shards (default: COL.shards)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run_shard)


def run_shard(args: argparse.Namespace) -> int:
    source = args.source
    source = source.resolve()
    out = args.out or source.with_name(source.name + ".shards")
    counts = split_collection(source, out, args.shards)
    if args.json:
        print_json({"source": str(source), "out": str(out), "images": counts})
    else:
        print(f"split {printable(source)} into {len(counts)} shards under {printable(out)}: "
              + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return 0
