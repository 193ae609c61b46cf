"""``lookalike info`` and ``lookalike remove``: what a collection holds; taking images out."""

from __future__ import annotations

import argparse
from typing import Any

from lookalike.cli.common import Commands, collection_option, print_json
from lookalike.collection import Collection


def add_parser(commands: Commands) -> None:
    info = commands.add_parser("info", help="what a collection holds")
    collection_option(info)
    info.add_argument("--failures", action="store_true", help="list the files that failed")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=run_info)

    remove = commands.add_parser("remove", help="remove images or folders from a collection")
    remove.add_argument("paths", nargs="+", metavar="PATH")
    collection_option(remove)
    remove.add_argument("--json", action="store_true")
    remove.set_defaults(handler=run_remove)


def run_info(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        info = collection.info()
        failures = collection.failures() if args.failures else []
    info["failures"] = [{"path": record.path, "reason": record.error} for record in failures]
    if args.json:
        print_json(info)
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


def run_remove(args: argparse.Namespace) -> int:
    with Collection(args.collection).open(create=False) as collection:
        removed = collection.remove(args.paths)
    if args.json:
        print_json({"removed": removed})
    else:
        print(f"removed {removed} images")
    return 0
