"""How the untrained default fusion's channel weights were chosen, and what they give.

    python benchmarks/bench_fusion_weights.py [--data ../shared/data] [--fmnist DIR]
                                              [--rankings FILE]

Every query's channel rankings (global, local, regions; the text channel's ranking by the
query's own labels is left out, as ``auto`` does) are computed once, on UKBench56, the
Oxford 1k subset (official, Revisited medium and hard) and Fashion-MNIST (1,000 images, 10
queries per class), with the evaluation's cached collections. Then, on a grid of weighted
reciprocal rank fusions (the RRF constant k, global's and regions' weights, the vote of a
local candidate that RANSAC did not confirm):

* **leave one benchmark out**: the grid point with the best worst margin over the best
  single channel on the other benchmarks, scored on the held-out one;
* **the shipped point** (:data:`lookalike.fusion.TRUST`) against the equal-vote RRF used
  before, on every benchmark and on every pair of channels (a collection without one of
  the three), each against the best single channel of the same channels.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench_multiclue import FMNIST_CHANNELS, fmnist_collection, fmnist_folder, fmnist_truth
from common import DEFAULT_DATA, markdown_table, save

from lookalike.collection import auto_fusion
from lookalike.eval.datasets import RetrievalDataset, load_dataset
from lookalike.eval.retrieval import _mean_scores, _query_scores
from lookalike.eval.settings import EvalSettings, build_collection
from lookalike.fusion import (
    TRUST,
    Trust,
    rank_fusion,
    reciprocal_rank_fusion,
    sure_first,
    trusted_fusion,
)
from lookalike.fusion import fused_hits as fused_by_score
from lookalike.results import UNCONFIRMED_VOTE, Hit, LocalEvidence

IMAGE_CHANNELS = ("global", "local", "regions")
GRID = {"k": (5, 20, 60), "global": (0.25, 0.5, 1.0), "regions": (1.0, 2.0, 3.0),
        "unconfirmed": (0.0, 0.25, 0.5, 1.0)}
Rankings = dict[str, list[Hit]]


def gathered(dataset: RetrievalDataset, settings: EvalSettings) -> tuple[list[Rankings],
                                                                           dict[int, str]]:
    """Every query's rankings over the whole database, and the image paths by id."""
    collection, _ = build_collection(dataset.name, dataset.database, settings)
    policy = auto_fusion()
    try:
        paths = {record.id: record.path for record in collection.images()}
        found = []
        for query in dataset.queries:
            image = collection.decode_query(query.path, channel="auto", box=query.box)
            rankings = collection.rankings(image, k=len(dataset.database), channel="auto",
                                           box=query.box)
            found.append({name: list(hits) for name, hits in
                          policy.rankings(rankings, has_ranker=False).items()})
    finally:
        collection.close()
    return found, paths


def weighted(rankings: Mapping[str, Sequence[Hit]], k: int, weights: Mapping[str, float],
             unconfirmed: float) -> list[Hit]:
    """A grid point: weighted RRF where an unconfirmed local candidate votes ``unconfirmed``."""
    fused: dict[int, float] = {}
    for channel, hits in rankings.items():
        for rank, hit in enumerate(hits, start=1):
            vote = (unconfirmed if isinstance(hit.evidence, LocalEvidence)
                    and not hit.evidence.verified else 1.0)
            fused[hit.image_id] = (fused.get(hit.image_id, 0.0)
                                   + weights.get(channel, 1.0) * vote / (k + rank))
    return sure_first(fused_by_score(fused, rankings), rankings)


def verified_first(rankings: Mapping[str, Sequence[Hit]], trust: Trust = TRUST) -> list[Hit]:
    """The shipped votes with stop 28's rule for what comes first: only the matches that a
    check settled (RANSAC, the same person), in their fused order; since stop 29 a
    calibrated confidence of at least one half settles too, surest first."""
    if len(rankings) < 2:
        return trusted_fusion(rankings, trust)
    fused = reciprocal_rank_fusion(rankings, k=trust.k, weights=trust.weights_for(rankings),
                                   votes=True)
    return sorted(fused, key=lambda hit: not hit.evidence.sure)


class Bench:
    """One benchmark's rankings, scored by its headline metric."""

    def __init__(self, name: str, dataset: RetrievalDataset, rankings: list[Rankings],
                 paths: dict[int, str]) -> None:
        self.name, self.dataset, self.rankings, self.paths = name, dataset, rankings, paths
        self.metric = "ns_score" if name == "ukbench56" else "map"

    def score(self, ranked: Sequence[Sequence[Hit]]) -> float:
        return _mean_scores([_query_scores(query, hits, self.paths) for query, hits
                             in zip(self.dataset.queries, ranked, strict=True)])[self.metric]

    def of(self, channels: Sequence[str]) -> list[Rankings]:
        return [{name: hits for name, hits in found.items() if name in channels}
                for found in self.rankings]

    def best_single(self, channels: Sequence[str]) -> float:
        return max(self.score([found.get(name, []) for found in self.rankings])
                   for name in channels if any(name in found for found in self.rankings))


def retrieval(dataset: object) -> RetrievalDataset:
    if not isinstance(dataset, RetrievalDataset):
        raise TypeError(f"expected a retrieval dataset, got {type(dataset).__name__}")
    return dataset


def load(args: argparse.Namespace) -> list[Bench]:
    benches = []
    for name, dataset_name, subfolder in (("ukbench56", "ukbench", "ukbench56"),
                                       ("oxford1k-crop", "oxford", "oxford5k_subset"),
                                       ("roxford-medium", "roxford-medium", "oxford5k_subset"),
                                       ("roxford-hard", "roxford-hard", "oxford5k_subset")):
        dataset = retrieval(load_dataset(dataset_name, data=args.data / subfolder))
        benches.append(Bench(name, dataset, *gathered(dataset, EvalSettings(channel="auto"))))
    folder = fmnist_folder(args.fmnist)
    dataset = retrieval(load_dataset("custom", root=folder, truth=fmnist_truth(folder)))
    settings = EvalSettings(channel="auto", collection=fmnist_collection(folder),
                            auto_channels=FMNIST_CHANNELS)
    benches.append(Bench("fashion-mnist", dataset, *gathered(dataset, settings)))
    return benches


def kept(path: Path) -> list[Bench]:
    """The five image benchmarks among the rankings that bench_confidence.py kept."""
    with path.open("rb") as file:
        benches: list[Bench] = pickle.load(file)
    return [bench for bench in benches if not bench.name.endswith("-album")]


def grid_rows(benches: list[Bench]) -> tuple[list[dict[str, Any]], dict[tuple[float, ...],
                                                                          list[float]]]:
    """Leave-one-benchmark-out choices; and every grid point's margins over the best single
    channel, per benchmark."""
    best = [bench.best_single(IMAGE_CHANNELS) for bench in benches]
    margins = {}
    for point in itertools.product(*GRID.values()):
        k, global_weight, regions_weight, unconfirmed = point
        weights = {"global": global_weight, "regions": regions_weight}
        margins[point] = [bench.score([weighted(found, int(k), weights, unconfirmed)
                                       for found in bench.rankings]) - top
                          for bench, top in zip(benches, best, strict=True)]
    rows = []
    for held, bench in enumerate(benches):
        others = [i for i in range(len(benches)) if i != held]
        chosen = max(margins, key=lambda point: (round(min(margins[point][i] for i in others), 4),
                                                 sum(margins[point][i] for i in others)))
        rows.append({"held_out": bench.name, "chosen (k, global, regions, unconfirmed)":
                     str(chosen), "held_out_margin": margins[chosen][held]})
    return rows, margins


def shipped_rows(benches: list[Bench], trust: Trust) -> list[dict[str, Any]]:
    """The shipped fusion and the equal-vote RRF, against the best single channel, on
    every benchmark and every subset of two or three image channels."""
    rows = []
    for size in (3, 2):
        for channels in itertools.combinations(IMAGE_CHANNELS, size):
            for bench in benches:
                if not all(any(name in found for found in bench.rankings) for name in channels):
                    continue
                subset = bench.of(channels)
                rows.append({
                    "channels": "+".join(channels), "benchmark": bench.name,
                    "best_single": bench.best_single(channels),
                    "equal_votes": bench.score([rank_fusion(found) for found in subset]),
                    "verified_first": bench.score([verified_first(found, trust)
                                                   for found in subset]),
                    "shipped": bench.score([trusted_fusion(found, trust) for found in subset])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fmnist", type=Path, default=None)
    parser.add_argument("--rankings", type=Path, default=None,
                        help="the rankings kept by bench_confidence.py --rankings, instead "
                             "of computing them again")
    args = parser.parse_args()
    benches = kept(args.rankings) if args.rankings else load(args)
    chosen, margins = grid_rows(benches)
    print(markdown_table(chosen, list(chosen[0])))
    shipped = shipped_rows(benches, TRUST)
    for row in shipped:
        row["shipped_vs_best"] = row["shipped"] - row["best_single"]
        row["equal_votes_vs_best"] = row["equal_votes"] - row["best_single"]
    print(markdown_table(shipped, list(shipped[0])))
    save("fusion_weights", {"grid": GRID, "shipped": {"k": TRUST.k, **TRUST.weights,
                                                      "unconfirmed": UNCONFIRMED_VOTE},
                            "benchmarks": [bench.name for bench in benches]},
         [{"table": "leave_one_out", **row} for row in chosen]
         + [{"table": "shipped", **row} for row in shipped]
         + [{"table": "grid", "point": str(point), **dict(zip(
             [bench.name for bench in benches], values, strict=True))}
            for point, values in margins.items()])


if __name__ == "__main__":
    main()
