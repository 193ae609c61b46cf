"""``lookalike search``: the images most like a query image, or matching a text, or both."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lookalike.cli.common import (
    Commands,
    collection_option,
    local_config,
    local_options,
    max_pixels_option,
    parse_box,
    parse_date,
    print_json,
    printable,
)
from lookalike.collection import (
    CHANNELS,
    Collection,
    SearchFilter,
    SearchResult,
    ShardedCollection,
    is_sharded,
)
from lookalike.errors import CollectionError, ValidationError
from lookalike.fusion import FUSIONS


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("search", help="find the images most like a query image, "
                                                "or matching a text, or both")
    parser.add_argument("image", type=Path, metavar="IMAGE", nargs="?", default=None)
    parser.add_argument("--image-id", type=int, default=None, metavar="N",
                        help="more like this: search with the indexed image N (the page and "
                             "--json results give ids) instead of an IMAGE file")
    collection_option(parser)
    parser.add_argument("--text", "-t", default=None, metavar="TEXT",
                        help="search annotations by text (BM25 and meaning); with an IMAGE, "
                             "'like this image, and TEXT'")
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    parser.add_argument("--channel", default="auto",
                        help="auto (default, as on the page: every channel the collection "
                             f"has, fused), or one of {', '.join(CHANNELS.names())}")
    parser.add_argument("--fusion", choices=FUSIONS, default="auto",
                        help="how several rankings become one: auto (default, the measured "
                             "best: the learned ranker if trained, else rrf of the image "
                             "channels), rrf, weighted, learned ('lookalike ranker train')")
    parser.add_argument("--box", type=parse_box, default=None, metavar="X0,Y0,X1,Y1",
                        help="search with this region of the query only, in its pixels")
    _filter_options(parser)
    local_options(parser, stored=False)
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="a split collection (lookalike shard): search its shards as "
                             "actors of this Ray cluster (auto, host:6379; default: in this "
                             "process)")
    parser.add_argument("--json", action="store_true")
    max_pixels_option(parser)
    parser.set_defaults(handler=run_search)


def _filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--category", action="append", default=[], metavar="NAME",
                        help="keep images of this category (repeat for several)")
    parser.add_argument("--folder", default=None, metavar="DIR",
                        help="keep images under this folder")
    parser.add_argument("--since", type=parse_date, default=None, metavar="YYYY-MM-DD",
                        help="keep images taken (or modified) on or after this day")
    parser.add_argument("--until", type=parse_date, default=None, metavar="YYYY-MM-DD",
                        help="keep images taken (or modified) on or before this day")


def run_search(args: argparse.Namespace) -> int:
    if args.image is not None and args.image_id is not None:
        raise ValidationError("expected a query IMAGE or --image-id, got both")
    if args.image is None and args.image_id is None and args.text is None:
        raise ValidationError("expected a query IMAGE, --image-id, --text or both, got neither")
    if is_sharded(args.collection):
        if args.image_id is not None:
            raise ValidationError("expected a query IMAGE for a split collection: its image "
                                  "ids are each shard's own")
        return _search_shards(args)
    if args.address is not None:
        raise ValidationError(f"expected a split collection (lookalike shard) with --address, "
                              f"got {args.collection}, which is not one")
    local = local_config(args, args.collection)
    collection = Collection(args.collection, configs={"local": local} if local else None,
                            max_pixels=args.max_pixels)
    filters = SearchFilter(categories=tuple(args.category), folder=args.folder,
                           date_from=args.since, date_to=args.until)
    with collection.open(create=False):
        query = (args.image if args.image_id is None
                 else collection.image_file(args.image_id))
        results = collection.search(query, text=args.text, k=args.k, channel=args.channel,
                                    box=args.box, filters=filters, fusion=args.fusion)
    if args.json:
        print_json({**_asked(args), "filters": filters.as_dict(),
                    "results": [result.as_dict() for result in results]})
    else:
        _print_results(results)
    if not results:
        print("no results: the collection holds no image that this channel "
              + ("and these filters keep" if filters.active else "finds"), file=sys.stderr)
    return 0


def _asked(args: argparse.Namespace) -> dict[str, Any]:
    """What was searched for, as the JSON answer repeats it."""
    query = (args.image if getattr(args, "image_id", None) is None
             else f"image {args.image_id}")
    return {"query": None if query is None else str(query), "text": args.text,
            "channel": args.channel, "fusion": args.fusion}


def _print_results(results: list[SearchResult]) -> None:
    for result in results:
        reason = f"  ({result.reason})" if result.reason else ""
        print(f"{result.rank:>3}  {result.score_text:>4}  {printable(result.path)}{reason}")


def _search_shards(args: argparse.Namespace) -> int:
    """A collection split by ``lookalike shard``: every shard searched, ranked as the whole."""
    unsupported = [option for option, given in (
        ("--category", args.category), ("--folder", args.folder), ("--since", args.since),
        ("--until", args.until), ("--verify", getattr(args, "verify", None) is not None))
        if given]
    if unsupported:
        raise ValidationError(f"expected no {', '.join(unsupported)} for a split collection: "
                              "a sharded search does not take them yet")
    with ShardedCollection(args.collection, address=args.address,
                           max_pixels=args.max_pixels) as sharded:
        found = sharded.search(args.image, text=args.text, k=args.k, channel=args.channel,
                               box=args.box, fusion=args.fusion)
    if found.missing and not found.results:
        raise CollectionError(f"{args.collection}: no shard answered: " + "; ".join(
            f"{name}: {reason}" for name, reason in found.missing.items()))
    if args.json:
        print_json({**_asked(args), **found.as_dict()})
    else:
        _print_results(found.results)
    for name, reason in found.missing.items():
        print(f"partial: {name} did not answer ({reason})", file=sys.stderr)
    return 0
