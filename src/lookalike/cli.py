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
import datetime as dt
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
    FacesChannelConfig,
    GlobalChannelConfig,
    IndexReport,
    LocalChannelConfig,
    RegionsChannelConfig,
    SearchFilter,
)
from lookalike.errors import LookalikeError, ValidationError
from lookalike.eval import DATASET_NAMES
from lookalike.extractors import available_extractors
from lookalike.faces import DETECTORS
from lookalike.faces.cluster import CLUSTERERS
from lookalike.fusion import FUSIONS
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
    _add_faces(commands)
    _add_serve(commands)
    from lookalike import cli_clues

    cli_clues.add_commands(commands, sys.modules[__name__])
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
                            help="channels of a new collection, comma-separated among global "
                                 "(default), local, faces, regions and text, e.g. "
                                 "global,regions,text")
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


def _faces_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=None,
                        help="faces channel: face detector (default centerface)")
    parser.add_argument("--min-face", type=int, default=None, metavar="PX",
                        help="faces channel: ignore faces smaller than this (default 20)")
    parser.add_argument("--min-face-score", type=float, default=None, metavar="P",
                        dest="min_score",
                        help="faces channel: ignore detections scored below this (default 0.5)")


def _faces_config(args: argparse.Namespace, root: Path | None = None) -> FacesChannelConfig | None:
    """The faces-channel settings asked for on the command line, on top of the collection's."""
    given = {name: getattr(args, name) for name in ("detector", "min_face", "min_score")
             if getattr(args, name, None) is not None}
    if not given:
        return None
    recorded = Collection.read_configs(root).get("faces") if root is not None else None
    base = recorded if isinstance(recorded, FacesChannelConfig) else FacesChannelConfig()
    return dataclasses.replace(base, **given)


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
    _faces_options(parser)
    parser.add_argument("--no-recursive", action="store_true",
                        help="do not descend into sub-folders")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--annotations", type=Path, default=None, metavar="FILE",
                        help="captions, tags and categories from a CSV/TSV/JSON sidecar, "
                             "imported after indexing (paths relative to the file)")
    _max_pixels_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_index)


def run_index(args: argparse.Namespace) -> int:
    local = _local_config(args, args.collection)
    faces = _faces_config(args, args.collection)
    # Options of a channel on a new collection ask for that channel (Collection does the same).
    regions = None
    if (args.extractor and "regions" in (args.channels or [])
            and not (args.collection / "manifest.json").exists()):
        # A new collection embeds its regions with the model it embeds whole images with.
        regions = RegionsChannelConfig(extractor=args.extractor)
    collection = Collection(args.collection, channels=args.channels,
                            global_config=_config(args, args.collection), local_config=local,
                            faces_config=faces, regions_config=regions,
                            batch_size=args.batch_size, max_pixels=args.max_pixels)
    imported = None
    with collection.open(), progress_bar("indexing", args.quiet or args.json) as update:
        report = collection.index(args.paths, recursive=not args.no_recursive, progress=update)
        if args.annotations is not None:
            imported = collection.annotations.import_sidecar(args.annotations)
    if args.json:
        _print_json({**report.as_dict(),
                     **({"annotations": imported.as_dict()} if imported else {})})
    else:
        print(format_report(report))
        if imported is not None:
            print(f"annotated {imported.annotated} images from {args.annotations}"
                  + (f"; {len(imported.unknown)} paths not in the collection, e.g. "
                     f"{imported.unknown[0]}" if imported.unknown else ""))
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
    parser = commands.add_parser("search", help="find the images most like a query image, "
                                                "or matching a text, or both")
    parser.add_argument("image", type=Path, metavar="IMAGE", nargs="?", default=None)
    _collection_option(parser)
    parser.add_argument("--text", "-t", default=None, metavar="TEXT",
                        help="search annotations by text (BM25 and meaning); with an IMAGE, "
                             "'like this image, and TEXT'")
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    parser.add_argument("--channel", default="global",
                        help="global (default), local, faces, regions, text, or auto (every "
                             "channel the collection has, fused)")
    parser.add_argument("--fusion", choices=FUSIONS, default="auto",
                        help="how several rankings become one: auto (default, the measured "
                             "best: the learned ranker if trained, else rrf of the image "
                             "channels), rrf, weighted, learned ('lookalike ranker train')")
    parser.add_argument("--box", type=_parse_box, default=None, metavar="X0,Y0,X1,Y1",
                        help="search with this region of the query only, in its pixels")
    parser.add_argument("--category", action="append", default=[], metavar="NAME",
                        help="keep images of this category (repeat for several)")
    parser.add_argument("--folder", default=None, metavar="DIR",
                        help="keep images under this folder")
    parser.add_argument("--since", type=_parse_date, default=None, metavar="YYYY-MM-DD",
                        help="keep images taken (or modified) on or after this day")
    parser.add_argument("--until", type=_parse_date, default=None, metavar="YYYY-MM-DD",
                        help="keep images taken (or modified) on or before this day")
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


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got '{text}'") from error


def run_search(args: argparse.Namespace) -> int:
    if args.image is None and args.text is None:
        raise ValidationError("expected a query IMAGE, --text or both, got neither")
    collection = Collection(args.collection, local_config=_local_config(args, args.collection),
                            max_pixels=args.max_pixels)
    filters = SearchFilter(categories=tuple(args.category), folder=args.folder,
                           date_from=args.since, date_to=args.until)
    with collection.open(create=False):
        results = collection.search(args.image, text=args.text, k=args.k, channel=args.channel,
                                    box=args.box, filters=filters, fusion=args.fusion)
    if args.json:
        _print_json({"query": None if args.image is None else str(args.image),
                     "text": args.text, "channel": args.channel, "fusion": args.fusion,
                     "filters": filters.as_dict(),
                     "results": [result.as_dict() for result in results]})
    else:
        for result in results:
            print(f"{result.rank:>3}  {result.score:.4f}  {result.path}{_why(result.evidence)}")
    return 0


def _why(evidence: dict[str, Any]) -> str:
    """A short reason for a result, from its channel's evidence."""
    local = evidence.get("local", evidence)
    if local.get("verified"):
        return f"  ({local['inliers']} inliers)"
    region = evidence.get("regions", evidence)
    if region.get("region") in ("object", "window"):
        what = region.get("label") or "window"
        return f"  ({what} at {region['region_box']})"
    text = evidence.get("text", evidence)
    if "matched" in text or "bm25" in text:
        return f"  (text: {text.get('matched') or 'words'})"
    face = evidence.get("faces", evidence)
    if "face_box" in face:
        person = face.get("person") or {}
        who = person.get("name") or (f"person {person['id']}" if person else "face")
        verdict = "same person" if face["same_person"] else "different person"
        return f"  ({who} at {face['face_box']}, distance {face['distance']:.3f}: {verdict})"
    return ""


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
    if "regions_per_image" in channel:
        return (f"{channel['detector']} objects + R-MAC windows at scales "
                f"{channel['grid_levels']}, embedded by {channel['extractor']}: "
                f"{channel['vectors']} regions ({channel['regions_per_image']} per image), "
                f"index {channel['index']}")
    if "annotations" in channel:
        return (f"{channel['annotations']} annotations on {channel['annotated_images']} "
                f"images (top {channel['labels']} ImageNet labels of {channel['extractor']}), "
                f"BM25 (tantivy)" + (" + all-MiniLM-L6-v2" if channel["semantic"] else ""))
    if "extractor_info" in channel:
        extractor = channel["extractor_info"]
        return (f"{extractor['name']} v{extractor['version']} ({extractor['dim']}-d, "
                f"{extractor['metric']}), {channel['vectors']} vectors, index {channel['index']}, "
                f"whitening {channel['whitening'] or 'none'}")
    if "embedder_info" in channel:
        return (f"{channel['detector']} detector + {channel['embedder_info']['name']} "
                f"({channel['embedder_info']['dim']}-d), {channel['faces']} faces in "
                f"{channel['images_with_faces']} images, index {channel['index']}")
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
    parser.add_argument("dataset", choices=DATASET_NAMES)
    parser.add_argument("--data", type=Path,
                        help="the dataset folder (ukbench, oxford, lfw, lfw-people, orl)")
    parser.add_argument("--root", type=Path, help="custom: folder of database images")
    parser.add_argument("--truth", type=Path, help="custom: TSV of (query, relevant) path pairs")
    parser.add_argument("--pairs", type=Path, help="lfw: pairs file in the official format")
    parser.add_argument("--channel", default="global",
                        help="global (default), local, faces, regions, text, or auto (each of "
                             "--auto-channels alone and every fusion, side by side)")
    parser.add_argument("--auto-channels", type=_parse_channels, default=None, metavar="LIST",
                        help="channels searched by auto (default global,local,regions,text)")
    parser.add_argument("--fusion", choices=FUSIONS, default="auto",
                        help="auto: the fusion reported as the headline figures (default "
                             "auto, untrained: rrf of the image channels; weighted and learned "
                             "are trained and tested on disjoint halves of the queries)")
    parser.add_argument("--max-people", type=int, default=None, metavar="N",
                        help="lfw-people: cluster only the first N identities")
    parser.add_argument("--full-query", action="store_true",
                        help="oxford: query with the whole image instead of the official box crop")
    parser.add_argument("--collection", type=Path, default=None, metavar="DIR",
                        help="index into (or reuse) this collection instead of the cache")
    _model_options(parser, default_extractor="efficientnet-lite0")
    _local_options(parser, stored=True)
    _faces_options(parser)
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
            faces_config=_faces_config(args), max_people=args.max_people,
            fusion=args.fusion,
            auto_channels=tuple(args.auto_channels) if args.auto_channels else None,
        )
    if args.json:
        _print_json(report)
    else:
        for key, value in report.items():
            if isinstance(value, dict):
                for name, row in value.items():
                    print(f"{key}.{name:<15} {row}")
                continue
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


# -- serve ------------------------------------------------------------------------------------

def _add_serve(commands: Any) -> None:
    parser = commands.add_parser("serve", help="serve the HTTP API and the web page")
    _collection_option(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token", default=None,
                        help="token for the write endpoints (default: $LOOKALIKE_TOKEN; "
                             "without one, writes are refused)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, metavar="N",
                        help="refuse uploads and images with more pixels (default 40,000,000)")
    parser.add_argument("--cors", default=None, metavar="ORIGINS",
                        help="comma-separated origins allowed to call the API (default: none)")
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import os

    try:
        import uvicorn

        from lookalike.server import create_app
    except ImportError as error:
        from lookalike.errors import MissingDependencyError

        raise MissingDependencyError("fastapi and uvicorn", "lookalike serve", "server") \
            from error
    if not (args.collection / "manifest.json").exists():
        raise ValidationError(f"expected a collection at {args.collection}, found none; "
                              "create one with lookalike index")
    token = args.token or os.environ.get("LOOKALIKE_TOKEN") or None
    # Host names the server answers to: this machine's, and the address it binds to; bound
    # to every interface, any name (then a token guards the writes, nothing the reads).
    local = ["localhost", "127.0.0.1", "[::1]"]
    hosts = ["*"] if args.host in ("0.0.0.0", "::") else [*local, args.host]
    app = create_app(args.collection, token=token,
                     max_upload_bytes=int(args.max_upload_mb * 2**20),
                     max_pixels=args.max_pixels,
                     cors_origins=_parse_channels(args.cors) if args.cors else None,
                     allowed_hosts=hosts)
    writes = "on (token set)" if token else "off (no --token or LOOKALIKE_TOKEN)"
    print(f"serving {args.collection} at http://{args.host}:{args.port}/ ; writes {writes}",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


# -- faces ------------------------------------------------------------------------------------

def _add_faces(commands: Any) -> None:
    parser = commands.add_parser("faces", help="verify faces, and list, name, merge and split "
                                               "the people of a collection")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    verify = actions.add_parser("verify", help="are the largest faces of two images the same "
                                               "person?")
    verify.add_argument("first", type=Path, metavar="IMAGE_A")
    verify.add_argument("second", type=Path, metavar="IMAGE_B")
    verify.add_argument("--detector", choices=sorted(DETECTORS), default="centerface")
    verify.add_argument("--threshold", type=float, default=None, metavar="COSINE",
                        help="same-person similarity (default: calibrated on LFW View 1 train)")
    _max_pixels_option(verify)
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=run_faces_verify)

    people = actions.add_parser("people", help="group new faces into people, then list people")
    _collection_option(people)
    people.add_argument("--min-faces", type=int, default=1, metavar="N",
                        help="list people with at least N faces (default 1)")
    people.add_argument("--person", type=int, default=None, metavar="ID",
                        help="list this person's faces instead")
    people.add_argument("--reset", action="store_true",
                        help="re-cluster every unnamed person's faces that you did not place")
    people.add_argument("--algorithm", choices=sorted(CLUSTERERS), default="chinese-whispers")
    people.add_argument("--threshold", type=float, default=None, metavar="COSINE",
                        help="same-person similarity for clustering (default: chosen on LFW)")
    people.add_argument("--json", action="store_true")
    people.set_defaults(handler=run_faces_people)

    name = actions.add_parser("name", help="name a person (an empty name clears it)")
    _collection_option(name)
    name.add_argument("person", type=int, metavar="PERSON")
    name.add_argument("name", metavar="NAME")
    name.add_argument("--json", action="store_true")
    name.set_defaults(handler=run_faces_name)

    merge = actions.add_parser("merge", help="merge people into the first one")
    _collection_option(merge)
    merge.add_argument("people", type=int, nargs="+", metavar="PERSON")
    merge.add_argument("--json", action="store_true")
    merge.set_defaults(handler=run_faces_merge)

    split = actions.add_parser("split", help="move some faces of a person into a new person")
    _collection_option(split)
    split.add_argument("person", type=int, metavar="PERSON")
    split.add_argument("faces", type=int, nargs="+", metavar="FACE")
    split.add_argument("--json", action="store_true")
    split.set_defaults(handler=run_faces_split)

    reject = actions.add_parser("reject", help="\"not this person\": take a face out of its "
                                               "person for good")
    _collection_option(reject)
    reject.add_argument("faces", type=int, nargs="+", metavar="FACE")
    reject.add_argument("--json", action="store_true")
    reject.set_defaults(handler=run_faces_reject)


def run_faces_verify(args: argparse.Namespace) -> int:
    from lookalike.faces import FaceAnalyzer
    from lookalike.images import load_image

    analyzer = FaceAnalyzer(args.detector)
    images = [load_image(path, max_pixels=args.max_pixels) for path in (args.first, args.second)]
    result = analyzer.verify(images[0], images[1], threshold=args.threshold)
    if args.json:
        _print_json({"first": str(args.first), "second": str(args.second), **result.as_dict()})
    else:
        verdict = "same person" if result.same else "different people"
        print(f"{verdict}: similarity {result.similarity:.4f} (threshold {result.threshold:.4f}),"
              f" distance {result.distance:.4f}")
    return 0


def _print_person(person: Any) -> None:
    cover = f"  e.g. {person.cover.path} {person.cover.box}" if person.cover else ""
    print(f"{person.id:>6}  {person.name or '(unnamed)':<24} {person.faces:>5} faces{cover}")


def run_faces_people(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        people = collection.people
        if args.person is not None:
            faces = people.faces(args.person)
            if args.json:
                _print_json({"person": people.get(args.person).as_dict(),
                             "faces": [face.as_dict() for face in faces]})
            else:
                _print_person(people.get(args.person))
                for face in faces:
                    mark = "*" if face.confirmed else " "
                    print(f"  face {face.face_id:>7}{mark} {face.path} {face.box}")
            return 0
        report = people.update(reset=args.reset, algorithm=args.algorithm,
                               threshold=args.threshold)
        listed = people.all(min_faces=args.min_faces)
        unassigned = people.unassigned()
    if args.json:
        _print_json({"update": report.as_dict(), "unassigned_faces": unassigned,
                     "people": [person.as_dict() for person in listed]})
        return 0
    print(f"{report.joined} faces joined known people, {report.clustered} were clustered into "
          f"{report.new_people} new people; {report.people} people in all")
    for person in listed:
        _print_person(person)
    return 0


def _print_one(args: argparse.Namespace, person: Any, what: str) -> int:
    if args.json:
        _print_json(person.as_dict())
    else:
        print(what)
        _print_person(person)
    return 0


def run_faces_name(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        person = collection.people.name(args.person, args.name.strip() or None)
    return _print_one(args, person, "named:")


def run_faces_merge(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        person = collection.people.merge(args.people)
    return _print_one(args, person, "merged into:")


def run_faces_split(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        person = collection.people.split(args.person, args.faces)
    return _print_one(args, person, "new person:")


def run_faces_reject(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        left = collection.people.reject(args.faces)
    if args.json:
        _print_json({"rejected": [{"face_id": f, "person_id": p} for f, p in left.items()]})
    else:
        for face, person in left.items():
            print(f"face {face} is no longer in person {person}, and will not be put back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
