"""``lookalike ranker``: train the learned ranker from ground truth or from the web page's
logged clicks, and show what it learned."""

from __future__ import annotations

import argparse
from pathlib import Path

from lookalike.cli.common import Commands, collection_option, show, waiting
from lookalike.collection import Collection
from lookalike.errors import ValidationError
from lookalike.ranking import LearnedRanker


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("ranker", help="train the learned ranker from judgements or "
                                                "from the page's logged clicks")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = actions.add_parser("train", help="fit the ranker and save it with the collection")
    collection_option(train)
    train.add_argument("--truth", type=Path, default=None, metavar="TSV",
                       help="ground truth: 'query_path<TAB>relevant_path' lines (as eval "
                            "custom reads them; relative paths are taken from --root)")
    train.add_argument("--root", type=Path, default=None, metavar="DIR",
                       help="with --truth: the folder the collection's images are under")
    train.add_argument("--clicks", action="store_true",
                       help="judgements from the clicks the web page logged")
    train.add_argument("--channel", default="auto",
                       help="channels whose rankings make the features (default auto)")
    train.add_argument("--depth", type=int, default=100, metavar="N",
                       help="candidates per channel and query (default 100)")
    train.add_argument("--json", action="store_true")
    train.set_defaults(handler=run_ranker_train)
    show_parser = actions.add_parser("show", help="the saved ranker's weights and the click log")
    collection_option(show_parser)
    show_parser.add_argument("--json", action="store_true")
    show_parser.set_defaults(handler=run_ranker_show)


def run_ranker_train(args: argparse.Namespace) -> int:
    if (args.truth is None) == (not args.clicks):
        raise ValidationError("expected either --truth TSV or --clicks")
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        ranker = _train(args, collection)
        collection.save_ranker(ranker)
    summary = ranker.as_dict()
    show(args, summary, f"trained on {ranker.trained_on['queries']} queries "
                        f"({ranker.trained_on['candidates']} candidates, "
                        f"{ranker.trained_on['relevant']} relevant), channels "
                        f"{', '.join(ranker.channels)}; saved with the collection. Search "
                        "with --fusion learned.")
    return 0


def _train(args: argparse.Namespace, collection: Collection) -> LearnedRanker:
    """Fit a ranker on the judgements ``--clicks`` or ``--truth`` asks for."""
    from lookalike.eval import load_custom
    from lookalike.ranking import train_ranker

    if args.clicks:
        samples, source = collection.feedback.judged(), "clicks"
        if not samples:
            raise ValidationError("expected logged searches with clicks, got none; use "
                                  "the web page, or train from --truth")
    else:
        if args.root is None:
            raise ValidationError("expected --root DIR with --truth")
        queries = load_custom(args.root, args.truth).queries
        samples = collection.judged(queries, channel=args.channel, depth=args.depth)
        source = f"truth:{args.truth}"
    return train_ranker(samples, source=source)


def run_ranker_show(args: argparse.Namespace) -> int:
    with Collection(args.collection, wait=waiting(args)).open(create=False) as collection:
        clicks = collection.feedback.counts()
        ranker = collection.ranker().as_dict() if collection.has_ranker() else None
    data = {"ranker": ranker, "clicks": clicks}
    lines = [f"logged searches {clicks['searches']}, clicks {clicks['clicks']} on "
             f"{clicks['clicked_searches']} searches"]
    if ranker is None:
        lines.append("no ranker trained yet")
    else:
        lines += [f"{name:<26} {weight:+.3f}" for name, weight in
                  zip(ranker["features"], ranker["coef"], strict=True)]
    show(args, data, "\n".join(lines))
    return 0
