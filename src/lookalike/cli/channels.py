"""``lookalike channels``: list a collection's kinds of search, add one, remove one."""

from __future__ import annotations

import argparse

from lookalike.cli.common import (
    Commands,
    collection_option,
    parse_list,
    print_json,
    waiting,
)
from lookalike.collection import CHANNELS, Collection


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("channels", help="list, add or remove a collection's "
                                                  "channels (kinds of search)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listed = actions.add_parser("list", help="the collection's channels")
    collection_option(listed)
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(handler=run_list)
    add = actions.add_parser("add", help="add channels; the next lookalike index computes "
                                         "only what they need")
    add.add_argument("names", type=parse_list, metavar="LIST",
                     help=f"comma-separated, among {', '.join(CHANNELS.names())}")
    collection_option(add)
    add.add_argument("--json", action="store_true")
    add.set_defaults(handler=run_add)
    remove = actions.add_parser("remove", help="remove a channel and everything it stored")
    remove.add_argument("name", choices=CHANNELS.names())
    collection_option(remove)
    remove.add_argument("--json", action="store_true")
    remove.set_defaults(handler=run_remove)


def run_list(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        described = {name: channel["summary"]
                     for name, channel in collection.info()["channels"].items()}
    if args.json:
        print_json(described)
    else:
        for name, summary in described.items():
            print(f"{name}: {summary}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        added = collection.add_channels(args.names)
    if args.json:
        print_json({"added": added})
    elif added:
        print(f"added {', '.join(added)}; fill {'them' if len(added) > 1 else 'it'} with "
              f"lookalike index FOLDER -c {args.collection}")
    else:
        print("nothing to add: the collection has these channels")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        ranker_gone = collection.remove_channel(args.name)
    if args.json:
        print_json({"removed": args.name, "ranker_removed": ranker_gone})
    else:
        print(f"removed the {args.name} channel and what it stored"
              + ("; the learned ranker used it and was removed too" if ranker_gone else ""))
    return 0
