"""``lookalike eval``: search quality on a benchmark, as the papers measure it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lookalike.cli.common import (
    Commands,
    channel_configs,
    faces_options,
    local_options,
    model_options,
    parse_list,
    print_json,
    progress_bar,
)
from lookalike.collection import CHANNELS
from lookalike.eval import DATASET_NAMES, default_auto_channels
from lookalike.fusion import FUSIONS


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("eval", help="measure search quality on a benchmark")
    parser.add_argument("dataset", choices=DATASET_NAMES)
    parser.add_argument("--data", type=Path,
                        help="the dataset folder (ukbench, oxford and roxford-*, lfw, "
                             "lfw-people, orl; classes: a sub-folder of images per class)")
    parser.add_argument("--root", type=Path, help="custom: folder of database images")
    parser.add_argument("--truth", type=Path, help="custom: TSV of (query, relevant) path pairs")
    parser.add_argument("--pairs", type=Path, help="lfw: pairs file in the official format")
    parser.add_argument("--channel", default="global",
                        help=f"{', '.join(CHANNELS.names())} (default global), or auto (each "
                             "of --auto-channels alone and every fusion, side by side)")
    parser.add_argument("--auto-channels", type=parse_list, default=None, metavar="LIST",
                        help="channels searched by auto (default "
                             f"{','.join(default_auto_channels())})")
    parser.add_argument("--fusion", choices=FUSIONS, default="auto",
                        help="auto: the fusion reported as the headline figures (default "
                             "auto, untrained: rrf of the image channels; weighted and learned "
                             "are trained and tested on disjoint halves of the queries)")
    parser.add_argument("--max-people", type=int, default=None, metavar="N",
                        help="lfw-people: cluster only the first N identities")
    parser.add_argument("--full-query", action="store_true",
                        help="oxford, roxford-*: query with the whole image instead of the "
                             "official box crop")
    parser.add_argument("--collection", type=Path, default=None, metavar="DIR",
                        help="index into (or reuse) this collection instead of the cache")
    model_options(parser, default_extractor="efficientnet-lite0")
    local_options(parser, stored=True)
    faces_options(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from lookalike.eval import evaluate

    with progress_bar(f"indexing {args.dataset}", args.quiet) as update:
        report = evaluate(
            args.dataset, configs=channel_configs(args), channel=args.channel,
            collection=args.collection, data=args.data, root=args.root, truth=args.truth,
            pairs=args.pairs, crop=not args.full_query, progress=update,
            max_people=args.max_people, fusion=args.fusion,
            auto_channels=tuple(args.auto_channels) if args.auto_channels else None,
        )
    if args.json:
        print_json(report)
    else:
        _print_report(report)
    return 0


def _print_report(report: dict[str, Any]) -> None:
    """One line per metric, and one per entry of a nested table (such as ``by_method``)."""
    for key, value in report.items():
        if isinstance(value, dict):
            for name, row in value.items():
                print(f"{key}.{name:<15} {row}")
            continue
        print(f"{key:<20} {value:.4f}" if isinstance(value, float) else f"{key:<20} {value}")
