"""The ``annotate`` and ``ranker`` commands: text about images, and the learned ranker.

Kept apart from :mod:`lookalike.cli` to keep both short; the same thin-adapter rules hold.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lookalike.collection import Collection
from lookalike.errors import NotFoundError, ValidationError
from lookalike.paths import catalog_key


def add_commands(commands: Any, common: Any) -> None:
    """Register the commands; ``common`` is the :mod:`lookalike.cli` module (shared options)."""
    _add_annotate(commands, common)
    _add_ranker(commands, common)


# -- annotate ---------------------------------------------------------------------------------

def _add_annotate(commands: Any, common: Any) -> None:
    parser = commands.add_parser("annotate", help="show or edit captions, tags and categories")
    parser.add_argument("image", nargs="?", default=None, metavar="IMAGE",
                        help="an indexed image's path (omit with --import)")
    common._collection_option(parser)
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
    parser.set_defaults(handler=run_annotate, common=common)


def run_annotate(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        notes = collection.annotations
        if args.sidecar is not None:
            report = notes.import_sidecar(args.sidecar)
            _show(args, report.as_dict(), f"annotated {report.annotated} images; "
                                          f"{len(report.unknown)} paths not in the collection")
            return 0
        for annotation_id in args.remove:
            notes.remove(annotation_id)
        if args.image is None:
            if args.remove:
                return 0
            raise ValidationError("expected an IMAGE path or --import FILE, got neither")
        key = catalog_key(args.image)
        record = collection.catalog.images_by_path([key]).get(key)
        if record is None:
            raise NotFoundError(f"{args.image}: expected an indexed image, got one not in "
                                f"{args.collection}")
        if any(given is not None for given in (args.caption, args.tag, args.category)):
            notes.set(record.id, captions=args.caption, tags=args.tag,
                      categories=args.category)
        found = [note.as_dict() for note in notes.of(record.id)]
    _show(args, {"image_id": record.id, "path": record.path, "annotations": found},
          "\n".join(f"{n['id']:>6}  {n['kind']:<11} {n['source']:<9} "
                    f"{'' if n['score'] is None else format(n['score'], '.3f'):>6}  {n['text']}"
                    for n in found) or "no annotations")
    return 0


# -- ranker -----------------------------------------------------------------------------------

def _add_ranker(commands: Any, common: Any) -> None:
    parser = commands.add_parser("ranker", help="train the learned ranker from judgements or "
                                                "from the page's logged clicks")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = actions.add_parser("train", help="fit the ranker and save it with the collection")
    common._collection_option(train)
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
    train.set_defaults(handler=run_ranker_train, common=common)
    show = actions.add_parser("show", help="the saved ranker's weights and the click log")
    common._collection_option(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=run_ranker_show, common=common)


def run_ranker_train(args: argparse.Namespace) -> int:
    from lookalike.collection.learning import judged_from_clicks, judged_from_truth
    from lookalike.eval.datasets import load_custom
    from lookalike.ranking import train_ranker

    if (args.truth is None) == (not args.clicks):
        raise ValidationError("expected either --truth TSV or --clicks")
    with Collection(args.collection).open(create=False) as collection:
        if args.clicks:
            samples, source = judged_from_clicks(collection.catalog), "clicks"
            if not samples:
                raise ValidationError("expected logged searches with clicks, got none; use "
                                      "the web page, or train from --truth")
        else:
            if args.root is None:
                raise ValidationError("expected --root DIR with --truth")
            queries = load_custom(args.root, args.truth).queries
            samples = judged_from_truth(collection, queries, channel=args.channel,
                                        depth=args.depth)
            source = f"truth:{args.truth}"
        ranker = train_ranker(samples, source=source)
        collection.save_ranker(ranker)
    summary = ranker.as_dict()
    _show(args, summary, f"trained on {ranker.trained_on['queries']} queries "
                         f"({ranker.trained_on['candidates']} candidates, "
                         f"{ranker.trained_on['relevant']} relevant), channels "
                         f"{', '.join(ranker.channels)}; saved with the collection. Search "
                         "with --fusion learned.")
    return 0


def run_ranker_show(args: argparse.Namespace) -> int:
    from lookalike.collection.learning import click_counts

    with Collection(args.collection).open(create=False) as collection:
        clicks = click_counts(collection.catalog)
        ranker = collection.ranker().as_dict() if collection.has_ranker() else None
    data = {"ranker": ranker, "clicks": clicks}
    lines = [f"logged searches {clicks['searches']}, clicks {clicks['clicks']} on "
             f"{clicks['clicked_searches']} searches"]
    if ranker is None:
        lines.append("no ranker trained yet")
    else:
        lines += [f"{name:<26} {weight:+.3f}" for name, weight in
                  zip(ranker["features"], ranker["coef"], strict=True)]
    _show(args, data, "\n".join(lines))
    return 0


def _show(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        args.common._print_json(data)
    else:
        print(text)
