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
            print(f"{result.rank:>3}  {result.score_text:>4}  "
                  f"{printable(Path(result.path).name)}")
    print(f"\ntry it yourself: lookalike search IMAGE --collection {args.collection}")
    return 0


def run_models(args: argparse.Namespace) -> int:
    from lookalike.extractors import OnnxExtractor, make_extractor

    names = available_extractors()
    if args.export is not None:
        _export(args.export or names, names)
        return 0
    print("image models (global and regions channels; --extractor NAME or a trained .onnx):")
    for name in names:
        extractor = make_extractor(name)
        info = extractor.info
        exported = ""
        if isinstance(extractor, OnnxExtractor):
            exported = ("  exported" if extractor.model_path().is_file()
                        else "  not exported yet (lookalike models --export)")
        print(f"  {name:<24} {info.dim:>5}-d  {info.metric}  v{info.version}{exported}")
    _print_other_models()
    return 0


def _print_other_models() -> None:
    """The faces, regions and text channels' models, with a licence narrower than the
    package's where a model has one."""
    from lookalike import LocalChannelConfig
    from lookalike.faces import DETECTORS, EMBEDDERS, make_embedder
    from lookalike.local import generic_info
    from lookalike.regions import DETECTORS as OBJECT_DETECTORS

    print(f"face detectors (--detector): {', '.join(DETECTORS)}")
    print("face embedders (--face-embedder NAME or a face model trained with --faces):")
    for name in EMBEDDERS:
        embedder = make_embedder(name)
        licence = f"  licence: {embedder.licence}" if embedder.licence else ""
        default = "  (default)" if name == "sface" else ""
        print(f"  {name:<24} {embedder.info.dim:>5}-d  cosine{default}{licence}")
    print(f"object detector (regions channel): {', '.join(OBJECT_DETECTORS)} (COCO-80)")
    print("text (text channel): all-MiniLM-L6-v2 (384-d) and BM25")
    generic = generic_info("rootsift")
    if generic is not None:
        under = LocalChannelConfig().own_tree_images
        print(f"vocabulary tree (local channel, collections under {under:,} images): "
              f"generic {generic['id']}, {generic['leaves']:,} words from "
              f"{generic['images']:,} photos")


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
