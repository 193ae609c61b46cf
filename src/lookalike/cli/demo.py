"""``lookalike demo`` and ``lookalike models``: a first search on sample photos, and the
embedding models (listed, or exported to ONNX ahead of time)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lookalike.cli.common import Commands, printable, progress_bar
from lookalike.cli.index import format_report
from lookalike.collection import Collection, GlobalChannelConfig
from lookalike.errors import ValidationError
from lookalike.extractors import available_extractors


def add_parser(commands: Commands) -> None:
    demo = commands.add_parser("demo", help="index sample photos and search them")
    demo.add_argument("--collection", type=Path, default=Path("demo.lookalike"), metavar="DIR")
    demo.add_argument("--extractor", choices=available_extractors(), default="efficientnet-lite0")
    demo.set_defaults(handler=run_demo)

    models = commands.add_parser("models", help="list the embedding models, or export them now")
    models.add_argument("--export", nargs="*", metavar="NAME",
                        help="export these models to ONNX now (default: all)")
    models.set_defaults(handler=run_models)


def run_demo(args: argparse.Namespace) -> int:
    from lookalike.samples import write_sample_images

    database, query = write_sample_images(args.collection / "samples")
    configs = {"global": GlobalChannelConfig(extractor=args.extractor)}
    with Collection(args.collection, configs=configs).open() as collection:
        with progress_bar("indexing samples", False) as update:
            report = collection.index([database], progress=update)
        print(format_report(report))
        print(f"\nquery: {query} (not in the collection); the 5 most similar images:")
        for result in collection.search(query, k=5):
            print(f"{result.rank:>3}  {result.score:.4f}  {printable(Path(result.path).name)}")
    print(f"\ntry it yourself: lookalike search IMAGE --collection {args.collection}")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from lookalike.extractors import make_extractor

    names = available_extractors()
    if args.export is not None:
        _export(args.export or names, names)
        return 0
    for name in names:
        info = make_extractor(name).info
        print(f"{name:<20} {info.dim:>5}-d  {info.metric}  v{info.version}")
    return 0


def _export(asked: list[str], names: list[str]) -> None:
    """Export the asked models to ONNX now, so that no first search waits for it; models
    that run without an ONNX file are skipped."""
    from lookalike.extractors import OnnxExtractor, make_extractor

    for name in asked:
        if name not in names:
            raise ValidationError(f"expected a model among {names}, got '{name}'")
        extractor = make_extractor(name)
        if isinstance(extractor, OnnxExtractor):
            extractor.load()
            print(f"{name}: {extractor.model_path()}")
