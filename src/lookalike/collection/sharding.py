"""A collection split into shards: each one an ordinary collection holding the images whose
path hashes to it, all of them under one folder named by ``shards.json``.

Splitting copies rows; nothing is extracted again. Every shard keeps the ids its images,
vectors and people had, and what the collection learned from all its images (the
vocabulary tree, the regions projection, the learned ranker, a learned global whitening)
is the same file in every shard, so a shard's words and vectors mean what they meant in
the whole collection. A collection split before its regions projection (or whitening) was
learned keeps its regions whole (its vectors raw) in every shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from lookalike.collection.collection import Collection
from lookalike.collection.global_channel import GlobalChannel
from lookalike.collection.manifest import Manifest
from lookalike.collection.regions_projection import PROJECTION_KEY
from lookalike.errors import CollectionError, expect
from lookalike.paths import atomic_write_bytes
from lookalike.storage.copying import copy_catalog_part, highest_id

SHARDS_FILE = "shards.json"
#: The global whitening the collection had learned, shared by every shard (in the split's
#: folder).
WHITENING_FILE = "global-whitening.npz"
FORMAT = "lookalike-shards"
#: Ids each shard may give after the split before it meets the next shard's.
ID_STRIDE = 2**40
MAX_SHARDS = 4096
#: What a shard shares with the collection it came from, besides its catalog rows.
_SHARED = ("manifest.json", "ranker.json", "local", "regions")


def shard_of(path: str, shards: int) -> int:
    """The shard of an image: a stable hash of its path (the same on every machine and
    every run, unlike Python's ``hash``)."""
    return int(hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:16], 16) % shards


@dataclass(frozen=True)
class ShardSet:
    """The shards of a split collection: their folders, in shard order."""

    root: Path
    names: tuple[str, ...]

    @property
    def roots(self) -> list[Path]:
        return [self.root / name for name in self.names]

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> ShardSet:
        path = Path(root) / SHARDS_FILE
        try:
            data = json.loads(path.read_text())
            names = tuple(str(name) for name in data["shards"])
            if data.get("format") != FORMAT or not names:
                raise ValueError("no shards named")
        except FileNotFoundError as error:
            raise CollectionError(f"{root}: not a sharded collection (no {SHARDS_FILE})") \
                from error
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CollectionError(f"{path}: expected a '{FORMAT}' file, got one that is not "
                                  f"({error})") from error
        # Absolute: a Ray actor opens its shard from another working folder.
        return cls(Path(root).resolve(), names)

    def save(self) -> None:
        atomic_write_bytes(self.root / SHARDS_FILE, json.dumps(
            {"format": FORMAT, "shards": list(self.names), "key": "sha1(path) mod shards"},
            indent=2).encode())


def split_collection(source: str | os.PathLike[str], out: str | os.PathLike[str],
                     shards: int) -> dict[str, int]:
    """Split the collection at ``source`` into ``shards`` collections under ``out`` (a
    new folder); the source is left as it is. Returns the images of each shard. The shards
    are made in a folder beside ``out`` and renamed to it at the end, so a split that
    fails or is killed leaves no half-made ``out``."""
    expect(isinstance(shards, int) and not isinstance(shards, bool)
           and 1 <= shards <= MAX_SHARDS,
           f"expected between 1 and {MAX_SHARDS} shards, got {shards!r}")
    target = Path(out).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CollectionError(f"{target}: expected a new or empty folder for the shards")
    staging = target.with_name(f".{target.name}.splitting-{os.getpid()}")
    try:
        counts = _split_into(Path(source), staging, shards, target)
        if target.exists():
            target.rmdir()  # empty, as checked
        os.replace(staging, target)
    except OSError as error:
        raise CollectionError(f"{target}: cannot write the shards ({error})") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


def _split_into(source: Path, staging: Path, shards: int, target: Path) -> dict[str, int]:
    with Collection(source).open(create=False) as collection:
        catalog_path = collection.catalog.path
        with collection.catalog.writing("splitting"):  # nobody writes while it is copied
            base = highest_id(collection.catalog.db)
            projected = collection.catalog.meta(PROJECTION_KEY) is not None
            whitening = _shared_whitening(collection, staging, target)
            names = tuple(f"shard-{index:03d}" for index in range(shards))
            counts = {name: _copy_shard(source, staging / name, catalog_path, index, shards,
                                        base + index * ID_STRIDE, projected, whitening)
                      for index, name in enumerate(names)}
    ShardSet(staging, names).save()
    return counts


def _shared_whitening(collection: Collection, staging: Path, target: Path
                      ) -> tuple[str | None] | None:
    """For a global channel that learns its whitening on the collection: the whitening it
    learned, written once for every shard (each learning its own would put their scores
    in different spaces). Returns the ``whiten_from`` the shards read (None while the
    collection has too few images to have learned one: then the shards search the raw
    vectors, as it does); None when there is nothing to share."""
    channel = collection.channels.get("global")
    if not isinstance(channel, GlobalChannel) or channel.config.whiten is None:
        return None
    whitening = channel.vectors.whitening()
    if whitening is None:
        return (None,)
    staging.mkdir(parents=True, exist_ok=True)
    whitening.save(staging / WHITENING_FILE)
    return (str(target / WHITENING_FILE),)


def _copy_shard(source: Path, root: Path, catalog: Path, index: int, shards: int,
                id_floor: int, projected: bool, whitening: tuple[str | None] | None) -> int:
    root.mkdir(parents=True)
    for name in _SHARED:
        found = source / name
        if found.is_dir():
            shutil.copytree(found, root / name)
        elif found.is_file():
            shutil.copy2(found, root / name)
    if not projected:
        _keep_regions_whole(root)
    if whitening is not None:
        _whiten_from(root, whitening[0])
    # People with no face any more (a name kept on purpose) go with the first shard.
    return copy_catalog_part(catalog, root / "catalog.sqlite",
                             lambda path: shard_of(path, shards) == index, id_floor,
                             faceless_people=index == 0)


def _whiten_from(root: Path, path: str | None) -> None:
    """The shard's global channel reads the whitening the collection learned (or none)."""
    manifest = Manifest.load(root)
    manifest.channels["global"].update(whiten=None, whiten_from=path)
    manifest.save(root)


def _keep_regions_whole(root: Path) -> None:
    """Regions not projected yet stay whole in every shard: each shard learning its own
    projection later would put their scores in different spaces."""
    manifest = Manifest.load(root)
    regions = manifest.channels.get("regions")
    if regions is not None and regions.get("pca") is not None:
        regions["pca"] = None
        manifest.save(root)
