"""The ``lookalike`` command: a thin adapter over the library API.

Every sub-command parses its arguments, calls :class:`lookalike.Collection` or
the evaluation runner, and prints the result as text or, with ``--json``, as
one JSON document on stdout. Progress bars go to stderr. Errors print one line
and exit with status 1; files that fail during indexing are listed, and do not
stop the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from lookalike import __version__
from lookalike.collection import Collection, GlobalChannelConfig, IndexReport
from lookalike.errors import LookalikeError, ValidationError
from lookalike.extractors import available_extractors
from lookalike.images import DEFAULT_MAX_PIXELS


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Lookalike applies its own pixel cap (--max-pixels) with a clear per-file error;
    # Pillow's warning about the same images would only add noise to the output.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        result: int = args.handler(args)
        return result
    except LookalikeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything committed so far is kept", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookalike", description="Index a folder of images and search it by example."
    )
    parser.add_argument("--version", action="version", version=f"lookalike {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_index(commands)
    _add_search(commands)
    _add_info(commands)
    _add_remove(commands)
    _add_eval(commands)
    _add_demo(commands)
    _add_models(commands)
    return parser


# -- shared options ---------------------------------------------------------------------------

def _collection_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection", "-c", required=True, type=Path, metavar="DIR",
                        help="the collection directory")


def _model_options(parser: argparse.ArgumentParser, *, default_extractor: str | None) -> None:
    parser.add_argument("--extractor", choices=available_extractors(), default=default_extractor,
                        help="global embedding model (default: the collection's own, "
                             "or efficientnet-lite0 for a new one)")
    parser.add_argument("--index", default=None, metavar="SPEC",
                        help="vector index: auto (default), flat, hnsw[:M=32,ef_search=64], "
                             "ivfpq[:nlist=1024,m=64]")
    parser.add_argument("--whiten", type=int, default=None, metavar="DIM",
                        help="PCA-whiten embeddings to DIM dimensions, learned on the collection")
    parser.add_argument("--whiten-from", default=None, metavar="NPZ",
                        help="apply a PCA-whitening learned on another collection")


def _max_pixels_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse images with more pixels, against decompression bombs "
                             f"(default {DEFAULT_MAX_PIXELS:,})")


def _config(args: argparse.Namespace, root: Path | None = None) -> GlobalChannelConfig | None:
    """The settings asked for on the command line, on top of the collection's own."""
    given = {key: getattr(args, key) for key in ("extractor", "index", "whiten", "whiten_from")
             if getattr(args, key) is not None}
    if not given:
        return None
    base = (Collection.read_config(root) if root is not None else None) or GlobalChannelConfig()
    if "whiten" in given or "whiten_from" in given:
        base = dataclasses.replace(base, whiten=None, whiten_from=None)
    return dataclasses.replace(base, **given)


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


@contextmanager
def progress_bar(description: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr driven by the library's (done, total) callback."""
    from tqdm import tqdm

    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description, unit="img", file=sys.stderr,
                       disable=quiet, dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


# -- index ------------------------------------------------------------------------------------

def _add_index(commands: Any) -> None:
    parser = commands.add_parser("index", help="add or update images and folders")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _collection_option(parser)
    _model_options(parser, default_extractor=None)
    parser.add_argument("--no-recursive", action="store_true",
                        help="do not descend into sub-folders")
    parser.add_argument("--batch-size", type=int, default=32)
    _max_pixels_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_index)


def run_index(args: argparse.Namespace) -> int:
    collection = Collection(args.collection, global_config=_config(args, args.collection),
                            batch_size=args.batch_size, max_pixels=args.max_pixels)
    with collection.open(), progress_bar("indexing", args.quiet or args.json) as update:
        report = collection.index(args.paths, recursive=not args.no_recursive, progress=update)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(format_report(report))
    return 0


def format_report(report: IndexReport) -> str:
    lines = [
        f"indexed {report.added} new, {report.updated} changed, {report.unchanged} unchanged, "
        f"{report.removed} removed, {len(report.failures)} failed "
        f"in {report.seconds:.1f} s ({report.images_per_s:.1f} images/s)"
    ]
    lines += [f"  failed: {path}: {reason}" for path, reason in report.failures]
    return "\n".join(lines)


# -- search -----------------------------------------------------------------------------------

def _add_search(commands: Any) -> None:
    parser = commands.add_parser("search", help="find the images most like a query image")
    parser.add_argument("image", type=Path, metavar="IMAGE")
    _collection_option(parser)
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    parser.add_argument("--channel", default="global",
                        help="global (default) or auto (every channel the collection has)")
    parser.add_argument("--box", type=_parse_box, default=None, metavar="X0,Y0,X1,Y1",
                        help="search with this crop of the query, in its pixels")
    parser.add_argument("--json", action="store_true")
    _max_pixels_option(parser)
    parser.set_defaults(handler=run_search)


def _parse_box(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (float(part) for part in parts)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1, got '{text}'") from error
    return x0, y0, x1, y1


def run_search(args: argparse.Namespace) -> int:
    with Collection(args.collection, max_pixels=args.max_pixels).open(create=False) as collection:
        results = collection.search(args.image, k=args.k, channel=args.channel, box=args.box)
    if args.json:
        _print_json({"query": str(args.image), "channel": args.channel,
                     "results": [result.as_dict() for result in results]})
    else:
        for result in results:
            print(f"{result.rank:>3}  {result.score:.4f}  {result.path}")
    return 0


# -- info and remove --------------------------------------------------------------------------

def _add_info(commands: Any) -> None:
    parser = commands.add_parser("info", help="what a collection holds")
    _collection_option(parser)
    parser.add_argument("--failures", action="store_true", help="list the files that failed")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        info = collection.info()
        failures = collection.failures() if args.failures else []
    info["failures"] = [{"path": record.path, "reason": record.error} for record in failures]
    if args.json:
        _print_json(info)
        return 0
    print(f"collection  {info['root']}  (created {info['created_at']} by {info['created_by']})")
    print(f"images      {info['images']} indexed, {info['failed']} failed")
    print(f"disk        {info['disk_bytes'] / 1e6:.1f} MB")
    for name, channel in info["channels"].items():
        extractor = channel["extractor_info"]
        print(f"channel     {name}: {extractor['name']} v{extractor['version']} "
              f"({extractor['dim']}-d, {extractor['metric']}), {channel['vectors']} vectors, "
              f"index {channel['index']}, whitening {channel['whitening'] or 'none'}")
    for failure in info["failures"]:
        print(f"  failed: {failure['path']}: {failure['reason']}")
    return 0


def _add_remove(commands: Any) -> None:
    parser = commands.add_parser("remove", help="remove images or folders from a collection")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    _collection_option(parser)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run_remove)


def run_remove(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        removed = collection.remove(args.paths)
    if args.json:
        _print_json({"removed": removed})
    else:
        print(f"removed {removed} images")
    return 0


# -- eval -------------------------------------------------------------------------------------

def _add_eval(commands: Any) -> None:
    parser = commands.add_parser("eval", help="measure search quality on a benchmark")
    parser.add_argument("dataset", choices=["ukbench", "oxford", "lfw", "orl", "custom"])
    parser.add_argument("--data", type=Path, help="the dataset folder (ukbench, oxford, lfw, orl)")
    parser.add_argument("--root", type=Path, help="custom: folder of database images")
    parser.add_argument("--truth", type=Path, help="custom: TSV of (query, relevant) path pairs")
    parser.add_argument("--pairs", type=Path, help="lfw: pairs file in the official format")
    parser.add_argument("--channel", default="global")
    parser.add_argument("--full-query", action="store_true",
                        help="oxford: query with the whole image instead of the official box crop")
    parser.add_argument("--collection", type=Path, default=None, metavar="DIR",
                        help="index into (or reuse) this collection instead of the cache")
    _model_options(parser, default_extractor="efficientnet-lite0")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from lookalike.eval import evaluate

    config = _config(args) or GlobalChannelConfig()
    with progress_bar(f"indexing {args.dataset}", args.quiet or args.json) as update:
        report = evaluate(
            args.dataset, config=config, channel=args.channel, collection=args.collection,
            data=args.data, root=args.root, truth=args.truth, pairs=args.pairs,
            crop=not args.full_query, progress=update,
        )
    if args.json:
        _print_json(report)
    else:
        for key, value in report.items():
            print(f"{key:<20} {value:.4f}" if isinstance(value, float) else f"{key:<20} {value}")
    return 0


# -- demo and models --------------------------------------------------------------------------

def _add_demo(commands: Any) -> None:
    parser = commands.add_parser("demo", help="index sample photos and search them")
    parser.add_argument("--collection", type=Path, default=Path("demo.lookalike"), metavar="DIR")
    parser.add_argument("--extractor", choices=available_extractors(), default="efficientnet-lite0")
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from lookalike.samples import write_sample_images

    database, query = write_sample_images(args.collection / "samples")
    config = GlobalChannelConfig(extractor=args.extractor)
    with Collection(args.collection, global_config=config).open() as collection:
        with progress_bar("indexing samples", False) as update:
            report = collection.index([database], progress=update)
        print(format_report(report))
        print(f"\nquery: {query} (not in the collection); the 5 most similar images:")
        for result in collection.search(query, k=5):
            print(f"{result.rank:>3}  {result.score:.4f}  {Path(result.path).name}")
    print(f"\ntry it yourself: lookalike search IMAGE --collection {args.collection}")
    return 0


def _add_models(commands: Any) -> None:
    parser = commands.add_parser("models", help="list the embedding models, or export them now")
    parser.add_argument("--export", nargs="*", metavar="NAME",
                        help="export these models to ONNX now (default: all)")
    parser.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace) -> int:
    from lookalike.extractors import make_extractor
    from lookalike.extractors.onnx import OnnxExtractor

    names = available_extractors()
    if args.export is not None:
        for name in args.export or names:
            if name not in names:
                raise ValidationError(f"expected a model among {names}, got '{name}'")
            extractor = make_extractor(name)
            if isinstance(extractor, OnnxExtractor):
                extractor.load()
                print(f"{name}: {extractor.model_path()}")
        return 0
    for name in names:
        info = make_extractor(name).info
        print(f"{name:<20} {info.dim:>5}-d  {info.metric}  v{info.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
