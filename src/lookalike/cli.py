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
from lookalike.collection import (
    Collection,
    GlobalChannelConfig,
    IndexReport,
    LocalChannelConfig,
)
from lookalike.errors import LookalikeError, ValidationError
from lookalike.extractors import available_extractors
from lookalike.images import DEFAULT_MAX_PIXELS
from lookalike.local.features import FEATURE_KINDS


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
    _add_vocabulary(commands)
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


def _local_options(parser: argparse.ArgumentParser, *, stored: bool,
                   channels: bool = False) -> None:
    """Options of the local channel; ``stored`` adds the ones fixed at creation."""
    if channels:
        parser.add_argument("--channels", type=_parse_channels, default=None, metavar="LIST",
                            help="channels of a new collection: global (default), local, or "
                                 "global,local")
    if stored:
        parser.add_argument("--features", choices=FEATURE_KINDS, default=None,
                            help="local features (default rootsift)")
        parser.add_argument("--max-features", type=int, default=None, metavar="N",
                            help="keypoints kept per image, strongest first (default 1500)")
        parser.add_argument("--vocabulary", type=Path, default=None, metavar="NPZ",
                            help="a vocabulary tree trained elsewhere (lookalike vocabulary); "
                                 "default: train one on the collection")
    parser.add_argument("--verify", type=int, default=None, metavar="R",
                        help="local channel: re-rank the top R by RANSAC (default 100, 0: off)")


def _parse_channels(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _local_config(args: argparse.Namespace, root: Path | None = None) -> LocalChannelConfig | None:
    """The local-channel settings asked for on the command line, on top of the collection's."""
    given = {name: getattr(args, name) for name in ("features", "max_features", "vocabulary",
                                                    "verify")
             if getattr(args, name, None) is not None}
    if "vocabulary" in given:
        given["vocabulary"] = str(given["vocabulary"])
    if not given:
        return None
    recorded = Collection.read_configs(root).get("local") if root is not None else None
    base = recorded if isinstance(recorded, LocalChannelConfig) else LocalChannelConfig()
    return dataclasses.replace(base, **given)


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
    _local_options(parser, stored=True, channels=True)
    parser.add_argument("--no-recursive", action="store_true",
                        help="do not descend into sub-folders")
    parser.add_argument("--batch-size", type=int, default=32)
    _max_pixels_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_index)


def run_index(args: argparse.Namespace) -> int:
    local = _local_config(args, args.collection)
    channels = args.channels
    if channels is None and local is not None and not (args.collection / "manifest.json").exists():
        channels = ["global", "local"]  # local options on a new collection ask for the channel
    collection = Collection(args.collection, channels=channels,
                            global_config=_config(args, args.collection), local_config=local,
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
                        help="global (default), local, or auto (every channel the collection "
                             "has, fused)")
    parser.add_argument("--box", type=_parse_box, default=None, metavar="X0,Y0,X1,Y1",
                        help="search with this region of the query only, in its pixels")
    _local_options(parser, stored=False)
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
    collection = Collection(args.collection, local_config=_local_config(args, args.collection),
                            max_pixels=args.max_pixels)
    with collection.open(create=False):
        results = collection.search(args.image, k=args.k, channel=args.channel, box=args.box)
    if args.json:
        _print_json({"query": str(args.image), "channel": args.channel,
                     "results": [result.as_dict() for result in results]})
    else:
        for result in results:
            inliers = result.evidence.get("inliers")
            why = f"  ({inliers} inliers)" if result.evidence.get("verified") else ""
            print(f"{result.rank:>3}  {result.score:.4f}  {result.path}{why}")
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
        print(f"channel     {name}: {_describe_channel(channel)}")
    for failure in info["failures"]:
        print(f"  failed: {failure['path']}: {failure['reason']}")
    return 0


def _describe_channel(channel: dict[str, Any]) -> str:
    if "extractor_info" in channel:
        extractor = channel["extractor_info"]
        return (f"{extractor['name']} v{extractor['version']} ({extractor['dim']}-d, "
                f"{extractor['metric']}), {channel['vectors']} vectors, index {channel['index']}, "
                f"whitening {channel['whitening'] or 'none'}")
    tree = channel.get("vocabulary")
    vocabulary = (f"tree {tree['id']} ({tree['leaves']:,} words)" if tree
                  else "no vocabulary tree yet")
    return (f"{channel['features']} x {channel['max_features']}, {vocabulary}, "
            f"{channel['vectors']} images, {channel['bytes_per_image']:.0f} bytes per image")


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
    parser.add_argument("--channel", default="global",
                        help="global (default), local, or auto (both, fused)")
    parser.add_argument("--full-query", action="store_true",
                        help="oxford: query with the whole image instead of the official box crop")
    parser.add_argument("--collection", type=Path, default=None, metavar="DIR",
                        help="index into (or reuse) this collection instead of the cache")
    _model_options(parser, default_extractor="efficientnet-lite0")
    _local_options(parser, stored=True)
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
            crop=not args.full_query, progress=update, local_config=_local_config(args),
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


# -- vocabulary -------------------------------------------------------------------------------

def _add_vocabulary(commands: Any) -> None:
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
    _max_pixels_option(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.set_defaults(handler=run_vocabulary)


def run_vocabulary(args: argparse.Namespace) -> int:
    from lookalike.local.training import train_vocabulary

    with progress_bar("extracting features", args.quiet or args.json) as update:
        report = train_vocabulary(
            args.paths, args.out, features=args.features, max_features=args.max_features,
            branching=args.branching, depth=args.depth, max_images=args.max_images,
            max_descriptors=args.max_descriptors, max_pixels=args.max_pixels, progress=update)
    if args.json:
        _print_json(report)
    else:
        print(f"vocabulary tree {report['id']}: {report['leaves']:,} words from "
              f"{report['descriptors']:,} descriptors of {report['images']} images in "
              f"{report['train_seconds']:.1f} s -> {args.out}")
        for failure in report["failures"]:
            print(f"  failed: {failure['path']}: {failure['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
