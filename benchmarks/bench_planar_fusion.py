"""The default fusion on the planar set: is ``auto`` ever below its best channel?

    python benchmarks/bench_planar_fusion.py --smvs DIR [--data ../shared/data] [--work DIR]

The set and the database are :mod:`bench_planar`'s (an SMVS category's phone photos
against its references and 1,008 Oxford distractors). The local collection that
``bench_planar.py`` indexed is copied and grown by the global and regions channels, then
every photo is searched once with ``auto``, keeping each channel's own ranking. Each
channel alone, and the shipped fusion (:func:`lookalike.fusion.trusted_fusion`) of every
set of two or three of them, is scored by top-1 and recall@10, with the failures per camera,
beside the rule before it in the same run: only spatially verified matches settled first,
in their fused order (stop 28). The three-channel fusion is also checked against what
:meth:`Collection.search` returned.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench_fusion_weights import verified_first
from bench_planar import CAMERAS, built, planar_options, prepare
from bench_planar import scored as paths_scored
from common import markdown_table, save

from lookalike import Collection, LocalChannelConfig
from lookalike.collection import auto_fusion
from lookalike.fusion import trusted_fusion
from lookalike.results import Hit

CHANNELS = ("global", "local", "regions")
Rankings = dict[str, list[Hit]]


def grown(work: Path, database: Path) -> Path:
    """``bench_planar``'s local collection, copied once and grown by global and regions."""
    root = work / "collection-fusion"
    if not (root / "manifest.json").exists():
        local, _ = built(work, database, {})
        shutil.copytree(local, root)
        with Collection(root).open(create=False) as collection:
            collection.add_channels(["global", "regions"])
            collection.index([database])
    return root


def gathered(root: Path, truth: Mapping[Path, Path]
             ) -> tuple[list[Rankings], list[list[int]], dict[int, Path]]:
    """Every query's channel rankings (as ``auto`` gathers them), the ids ``search``
    returned, and the image paths by id."""
    policy = auto_fusion()
    found, searched = [], []
    # Today's search settings, not the ones recorded when bench_planar indexed the copy.
    with Collection(root, configs={"local": LocalChannelConfig()}).open(
            create=False) as collection:
        paths = {record.id: Path(record.path).resolve() for record in collection.images()}
        for query in truth:
            results, rankings = collection.search_with_rankings(query, k=10, channel="auto")
            searched.append([result.image_id for result in results])
            found.append({name: list(hits) for name, hits in
                          policy.rankings(rankings, has_ranker=False).items()})
    return found, searched, paths


def scored(ranked: Sequence[Sequence[int]], truth: Mapping[Path, Path],
           paths: Mapping[int, Path]) -> dict[str, Any]:
    """:func:`bench_planar.scored` of one ranking of image ids per query."""
    return paths_scored([[paths[image_id] for image_id in ids[:10]] for ids in ranked], truth)


def rows_for(found: list[Rankings], truth: Mapping[Path, Path],
             paths: Mapping[int, Path]) -> list[dict[str, Any]]:
    """Each channel alone, then the shipped fusion of each set of two or three."""
    def ids(rank: Callable[[Rankings], Sequence[Hit]]) -> list[list[int]]:
        return [[hit.image_id for hit in rank(rankings)] for rankings in found]

    def alone(name: str) -> Callable[[Rankings], Sequence[Hit]]:
        return lambda rankings: rankings.get(name, [])

    rows = [{"ranking": f"{name} alone", **scored(ids(alone(name)), truth, paths)}
            for name in CHANNELS]
    for size in (3, 2):
        for channels in itertools.combinations(CHANNELS, size):
            for rule, fusion in (("before: verified first", verified_first),
                                 ("auto", trusted_fusion)):
                def fused(rankings: Rankings, keep: tuple[str, ...] = channels,
                          fusion: Callable[[Rankings], list[Hit]] = fusion) -> list[Hit]:
                    return fusion({n: h for n, h in rankings.items() if n in keep})
                rows.append({"ranking": f"{rule}: {'+'.join(channels)}",
                             **scored(ids(fused), truth, paths)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    planar_options(parser)
    parser.add_argument("--name", default="planar_fusion", help="results/<name>.json")
    args = parser.parse_args()
    database, truth = prepare(args.smvs, args.data / "oxford5k_subset" / "jpg", args.work)
    found, searched, paths = gathered(grown(args.work, database), truth)
    rows = rows_for(found, truth, paths)
    rows.append({"ranking": "Collection.search (auto, three channels)",
                 **scored(searched, truth, paths)})
    columns = ["ranking", "top1", "recall_at_10", *(f"fail_{c}" for c in CAMERAS)]
    print(markdown_table(rows, columns))
    save(args.name, {"set": str(args.smvs), "queries": len(truth),
                     "database": "100 references + 1,008 Oxford distractors",
                     "channels": list(CHANNELS), "fusion": "shipped (trusted_fusion)"}, rows)


if __name__ == "__main__":
    main()
