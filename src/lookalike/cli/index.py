"""``lookalike index``: add or update images and folders, and import their annotations."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from lookalike.cli.common import (
    Commands,
    channel_configs,
    collection_option,
    counted,
    faces_options,
    local_options,
    max_pixels_option,
    model_options,
    print_json,
    printable,
    progress_bar,
    sidecar_status,
    waiting,
)
from lookalike.collection import (
    CHANNELS,
    ENGINES,
    Collection,
    GlobalChannelConfig,
    ImportReport,
    IndexReport,
    ShardedCollection,
    is_sharded,
    make_engine,
    split_collection,
)
from lookalike.errors import ValidationError


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser("index", help="add or update images and folders")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    collection_option(parser)
    model_options(parser, default_extractor=None)
    local_options(parser, stored=True, channels=True)
    faces_options(parser)
    parser.add_argument("--no-recursive", action="store_true",
                        help="do not descend into sub-folders")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="images extracted side by side, each on its own core "
                             "(default: every core; with --engine ray, every CPU of the "
                             "cluster)")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="where the models run: this process (local, default) or a Ray "
                             "cluster (ray); the collection is written here either way")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="with --engine ray: the cluster to join (auto, host:6379, "
                             "ray://host:10001; default: start a local Ray)")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="keep out files whose name or a folder name matches (*.tmp, "
                             "@eaDir), or whose path does (a pattern with /); remembered, and "
                             "images already indexed that match are removed")
    parser.add_argument("--annotations", type=Path, default=None, metavar="FILE",
                        help="captions, tags and categories from a CSV/TSV/JSON sidecar, "
                             "imported after indexing (paths relative to the file)")
    parser.add_argument("--shards", type=int, default=None, metavar="N",
                        help="a new collection split into N shards: indexed whole (so the "
                             "vocabulary tree and the projection learn from every image), "
                             "then split as 'lookalike shard' does")
    max_pixels_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_index)


def run_index(args: argparse.Namespace) -> int:
    missing = [path for path in args.paths if not Path(path).exists()]
    if missing:  # before anything is created: a mistyped folder leaves nothing behind
        raise ValidationError("expected folders or images to index, found nothing at "
                              + ", ".join(printable(path) for path in missing))
    if is_sharded(args.collection):
        return _index_shards(args)
    if args.shards is not None:
        return _index_and_split(args)
    report, imported = _index_one(args)
    _print_report(args, report, imported)
    if not (report.added or report.updated or report.unchanged or report.completed
            or report.removed or report.failures or report.kept_out or report.same_as):
        print("no images found in " + ", ".join(printable(path) for path in args.paths)
              + " (hidden files and folders are skipped)", file=sys.stderr)
    return 0 if imported is None else sidecar_status(args.annotations, imported.annotated)


def _print_report(args: argparse.Namespace, report: IndexReport,
                  imported: ImportReport | None, **extra: Any) -> None:
    """The run's report (and ``extra`` entries in its JSON), as ``--json`` asks."""
    if args.json:
        print_json({**report.as_dict(), **extra,
                    **({"annotations": imported.as_dict()} if imported else {})})
    else:
        print(format_report(report))
        if imported is not None:
            print(_format_import(imported, args.annotations))


def _index_one(args: argparse.Namespace) -> tuple[IndexReport, ImportReport | None]:
    recorded = Collection.read_configs(args.collection)
    new = [name for name in args.channels or [] if name not in recorded] if recorded else []
    collection = _collection(args, recorded)
    imported = None
    with collection.open():
        if new:
            configs = channel_configs(args, None)
            collection.add_channels(new, {name: configs[name] for name in new if name in configs})
            print(f"adding channel{'s' if len(new) > 1 else ''} {', '.join(new)}: the images "
                  "already indexed get only what "
                  f"{'they need' if len(new) > 1 else 'it needs'}", file=sys.stderr)
        with progress_bar("indexing", args.quiet) as update:
            report = collection.index(args.paths, recursive=not args.no_recursive,
                                      progress=update, exclude=args.exclude)
        if "faces" in collection.channels and (report.added or report.updated
                                               or report.completed):
            grouped = collection.people.update()  # people right away, not after faces people
            print(f"faces: {counted(grouped.joined, 'face')} joined known people, "
                  f"{grouped.clustered} grouped into "
                  f"{counted(grouped.new_people, 'new person', 'new people')} "
                  "(lookalike faces people lists them)", file=sys.stderr)
        if args.annotations is not None:
            imported = collection.annotations.import_sidecar(args.annotations)
    return report, imported


def _collection(args: argparse.Namespace, recorded: dict[str, Any] | None = None
                ) -> Collection:
    """The collection to index into. An existing one (its ``recorded`` channel settings)
    keeps its channels, and ``--channels`` names only the ones to add."""
    configs = channel_configs(args, args.collection)
    if args.extractor and not Collection.exists(args.collection):
        # A new collection's regions and text use the model it embeds whole images with.
        whole = configs.get("global") or GlobalChannelConfig(extractor=args.extractor)
        for name in args.channels or []:
            if name not in configs and CHANNELS.get(name).follows_global is not None:
                configs[name] = CHANNELS.get(name).default_config(whole)
    if recorded:
        configs = {name: config for name, config in configs.items() if name in recorded}
    return Collection(args.collection, channels=None if recorded else args.channels,
                      configs=configs, wait=waiting(args),
                      batch_size=args.batch_size, max_pixels=args.max_pixels,
                      workers=args.workers, engine=make_engine(args.engine, args.address))


def format_report(report: IndexReport) -> str:
    lines = [
        f"indexed {report.added} new, {report.updated} changed, {report.unchanged} unchanged, "
        + (f"{report.completed} completed, " if report.completed else "")
        + f"{report.removed} removed, {len(report.failures)} failed "
        f"in {report.seconds + report.prepare_seconds:.1f} s"
        + (f" ({report.prepare_seconds:.1f} s loading models and training, "
           f"{report.seconds:.1f} s indexing at {report.images_per_s:.1f} images/s)"
           if report.prepare_seconds >= 0.1 else f" ({report.images_per_s:.1f} images/s)")
    ]
    lines += [f"  failed: {printable(path)}: {printable(reason)}"
              for path, reason in report.failures]
    lines += [f"  not indexed again: {printable(path)} is {printable(other)} (through a "
              "link), indexed under that path" for path, other in report.same_as]
    lines += [f"  kept out: {printable(path)} lies in the excluded {printable(pattern)}; "
              f"'lookalike include {printable(pattern)}' takes it back"
              for path, pattern in report.kept_out]
    return "\n".join(lines)


def _format_import(imported: ImportReport, sidecar: Path) -> str:
    return (f"annotated {counted(imported.annotated, 'image')} from {sidecar}"
            + (f"; {counted(len(imported.unknown), 'path')} not in the collection, e.g. "
               f"{imported.unknown[0]}" if imported.unknown else ""))


def _index_shards(args: argparse.Namespace) -> int:
    """A collection split by ``lookalike shard``: each shard indexes the files that hash to
    it, with the settings it was split with."""
    if (args.annotations is not None or channel_configs(args, None) or args.channels
            or args.exclude):
        raise ValidationError("expected no --annotations, --exclude, --channels or model "
                              "options for a split collection: its shards keep the settings "
                              "they have")
    sharded = ShardedCollection(args.collection, max_pixels=args.max_pixels)
    reports = sharded.index(args.paths, recursive=not args.no_recursive,
                            engine=make_engine(args.engine, args.address))
    if args.json:
        print_json({name: report.as_dict() for name, report in reports.items()})
    else:
        for name, report in reports.items():
            print(f"{name}: {format_report(report)}")
    return 0


def _index_and_split(args: argparse.Namespace) -> int:
    """``--shards N`` for a new collection: index it whole beside the target, split it into
    the target, and remove the whole one."""
    target = args.collection
    if target.exists() and any(target.iterdir()):
        raise ValidationError(f"{target}: expected --shards for a new collection only; "
                              "split an existing one with 'lookalike shard'")
    whole = target.with_name(f".{target.name}.whole-{os.getpid()}")
    try:
        report, imported = _index_one(argparse.Namespace(**{**vars(args),
                                                            "collection": whole}))
        counts = split_collection(whole, target, args.shards)
    finally:
        shutil.rmtree(whole, ignore_errors=True)
    _print_report(args, report, imported, shards=counts)
    if not args.json:
        print(f"split into {len(counts)} shards under {printable(target)}: "
              + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return 0
