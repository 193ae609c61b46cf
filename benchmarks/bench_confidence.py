"""Calibrated confidence: how sure is a result, on one 0-1 scale for every channel?

    python benchmarks/bench_confidence.py [--data ../shared/data] [--fmnist DIR]
                                          [--rankings FILE]

Every query's channel rankings are computed once (and kept in ``--rankings``) on seven
benchmarks: UKBench56, the Oxford 1k subset (official crop queries, Revisited medium and
hard), Fashion-MNIST (1,000 images, 10 queries per class), and two face albums (60 LFW
people x 4 photos among 300 strangers; ORL's 40 people x 10 photos). A channel's first
``DEPTH`` hits of every query, the query image itself left out, give (evidence, relevant)
pairs; junk images give none.

* **Leave one benchmark out**: each channel's logistic calibration
  (:mod:`lookalike.confidence`) is fitted on the other benchmarks and scored on the held-out
  one, by the expected calibration error (ECE, 10 bins) and the Brier score of the results
  a user sees: the first 10 of the default fusion.
* **The shipped calibration** (:data:`lookalike.confidence.CALIBRATIONS`), fitted on all
  seven with every benchmark weighted equally, printed for pasting, and scored the same way.
* **Ranking by confidence** against the default fusion's order, by each benchmark's
  headline metric: could the confidence itself order the results?

``--embedder NAME`` instead indexes the two face albums with another face embedder
(``w600k-mbf``, or a model file made by ``lookalike train``) and scores the shipped
calibration on them, fitted on none of their faces: does a face's margin over its own
embedder's threshold read alike whatever the embedder?
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_face_fusion import make_album, make_orl_album
from bench_fusion_weights import Bench, gathered, load, retrieval
from bench_multiclue import fmnist_collection, fmnist_folder
from common import DEFAULT_DATA, markdown_table, save
from fashion_mnist import CLASSES

from lookalike.collection import Collection, FacesChannelConfig
from lookalike.confidence import CALIBRATIONS, Logistic, confidence, evidence_confidence
from lookalike.eval.datasets import load_dataset
from lookalike.eval.settings import EvalSettings
from lookalike.fusion import nested, trusted_fusion
from lookalike.paths import catalog_key
from lookalike.results import Evidence, FusedEvidence, Hit

DEPTH = 50  # hits per channel and query that make calibration pairs
SHOWN = 10  # results of the default fusion whose confidence is scored
FACE_CHANNELS = ("global", "faces", "regions")
# The judgements fitted on: a true match is the same object, place or person (instance
# level), one benchmark per kind; Oxford's official crop queries and Revisited hard share
# Revisited medium's queries, and Fashion-MNIST's image queries judge by category, a looser
# sense of "match" that the confidence does not claim (both measured, not fitted on). Text
# is calibrated on Fashion-MNIST's class-name queries, its only judged text queries.
FITTED = ("ukbench56", "roxford-medium", "lfw-album", "orl-album", "fashion-mnist-text")


def load_all(args: argparse.Namespace) -> list[Bench]:
    """The seven benchmarks' rankings, computed once and kept in ``args.rankings``."""
    if args.rankings.exists():
        with args.rankings.open("rb") as kept:
            loaded: list[Bench] = pickle.load(kept)
            return loaded
    benches = load(args) + face_albums(args)
    with args.rankings.open("wb") as kept:
        pickle.dump(benches, kept)
    return benches


def face_albums(args: argparse.Namespace, configs: Mapping[str, Any] | None = None
                ) -> list[Bench]:
    """The LFW and ORL albums' rankings, with the faces channel's ``configs``."""
    work = Path("/tmp/lookalike-face-fusion")
    lfw = next(path for path in (args.data / "lfw" / "lfw", args.data / "lfw")
               if path.is_dir() and any(child.is_dir() for child in path.iterdir()))
    benches = []
    for name, (album, truth) in (("lfw-album", make_album(lfw, work, 60, 300)),
                                 ("orl-album", make_orl_album(args.data / "orl_faces"
                                                              / "orl_faces", work))):
        dataset = retrieval(load_dataset("custom", root=album, truth=truth))
        settings = EvalSettings(channel="auto", auto_channels=FACE_CHANNELS,
                                configs=dict(configs or {}))
        benches.append(Bench(name, dataset, *gathered(dataset, settings)))
    return benches


def transfer(args: argparse.Namespace) -> None:
    """The shipped calibration on the face albums indexed with ``args.embedder``."""
    benches = face_albums(args, {"faces": FacesChannelConfig(embedder=args.embedder)})
    rows = [{"benchmark": bench.name, "embedder": args.embedder,
             **calibration_scores(shown(bench), CALIBRATIONS),
             "faces_alone": bench.score([found.get("faces", []) for found in bench.rankings]),
             "default_fusion": bench.score([trusted_fusion(found)
                                            for found in bench.rankings])}
            for bench in benches]
    print(markdown_table(rows, list(rows[0])))
    save(f"confidence_{Path(args.embedder).stem}", {"shown": SHOWN, "embedder": args.embedder,
                                                    "calibration": "shipped"}, rows)


def labelled(bench: Bench, query_index: int, hits: Sequence[Hit]) -> list[tuple[Hit, bool]]:
    """Hits with whether each is relevant; the query image itself and junk are left out."""
    query = bench.dataset.queries[query_index]
    relevant = {catalog_key(path) for path in query.relevant}
    skipped = {catalog_key(path) for path in query.junk} | {catalog_key(query.path)}
    found = []
    for hit in hits:
        path = bench.paths.get(hit.image_id)
        if path is not None and path not in skipped:
            found.append((hit, path in relevant))
    return found


def pairs(bench: Bench) -> dict[str, tuple[list[Evidence], list[bool]]]:
    """Per evidence kind: every channel's first ``DEPTH`` labelled hits of every query."""
    found: dict[str, tuple[list[Evidence], list[bool]]] = {}
    for index, rankings in enumerate(bench.rankings):
        for hits in rankings.values():
            for hit, relevant in labelled(bench, index, hits)[:DEPTH]:
                if not hit.evidence.calibration_features():
                    continue
                kind = type(hit.evidence).__name__
                evidence, labels = found.setdefault(kind, ([], []))
                evidence.append(hit.evidence)
                labels.append(relevant)
    return found


def text_queries(folder: Path) -> tuple[list[dict[str, tuple[list[Evidence], list[bool]]]],
                                        list[tuple[Hit, bool]]]:
    """Fashion-MNIST's text queries (each class name, over the automatic labels): the text
    channel's labelled first ``DEPTH`` hits, and its first ``SHOWN`` as results."""
    labels = dict(line.split("\t") for line in (folder / "labels.tsv").read_text()
                  .strip().splitlines()[1:])
    evidence: list[Evidence] = []
    truth: list[bool] = []
    results: list[tuple[Hit, bool]] = []
    with Collection(fmnist_collection(folder)).open() as collection:
        classes = {record.id: labels[str(Path(record.path).relative_to(folder))]
                   for record in collection.images()}
        for name in CLASSES:
            hits = collection.rankings(None, text=name.replace("/", " ").lower(), k=DEPTH,
                                       channel="text")["text"]
            found = [(hit, classes.get(hit.image_id) == name) for hit in hits]
            evidence += [hit.evidence for hit, _ in found]
            truth += [relevant for _, relevant in found]
            results += [(fused, relevant) for fused, (_, relevant)
                        in zip(nested("text", hits), found, strict=True)][:SHOWN]
    return [{"TextEvidence": (evidence, truth)}], results


def fit(pair_sets: Sequence[Mapping[str, tuple[list[Evidence], list[bool]]]]
        ) -> dict[str, Logistic]:
    """Each evidence kind's logistic calibration on ``pair_sets`` (one per benchmark), each
    benchmark weighted equally (one with more queries does not count more)."""
    from sklearn.linear_model import LogisticRegression

    rows: dict[str, tuple[list[list[float]], list[bool], list[float]]] = {}
    for found in pair_sets:
        for kind, (evidence, labels) in found.items():
            features, targets, weights = rows.setdefault(kind, ([], [], []))
            features += [list(item.calibration_features()) for item in evidence]
            targets += labels
            weights += [1.0 / len(labels)] * len(labels)
    fitted = {}
    for kind, (features, targets, weights) in rows.items():
        if len(set(targets)) < 2:
            continue
        model = LogisticRegression(C=10.0).fit(np.array(features), np.array(targets),
                                              sample_weight=np.array(weights) * len(weights))
        fitted[kind] = Logistic(tuple(float(w) for w in model.coef_[0]),
                                   float(model.intercept_[0]))
    return fitted


def shown(bench: Bench) -> list[tuple[Hit, bool]]:
    """The first ``SHOWN`` results of the default fusion of every query, labelled."""
    return [pair for index, rankings in enumerate(bench.rankings)
            for pair in labelled(bench, index, trusted_fusion(rankings))[:SHOWN]]


def calibration_scores(results: Sequence[tuple[Hit, bool]], calibrations: Mapping[str, Logistic],
                       *, noisy_or: bool = False) -> dict[str, float]:
    """ECE (10 equal-width bins) and Brier score of the results' confidence; with
    ``noisy_or``, of the channels' probabilities combined as if independent instead."""
    predicted = np.array([(_noisy_or if noisy_or else confidence)(_fused(hit), calibrations)
                          or 0.0 for hit, _ in results])
    truth = np.array([relevant for _, relevant in results], dtype=float)
    bins = np.minimum((predicted * 10).astype(int), 9)
    ece = sum(abs(predicted[bins == b].mean() - truth[bins == b].mean()) * (bins == b).sum()
              for b in range(10) if (bins == b).any()) / len(results)
    return {"ece": float(ece), "brier": float(np.mean((predicted - truth) ** 2)),
            "mean_confidence": float(predicted.mean()), "precision": float(truth.mean())}


def _noisy_or(evidence: FusedEvidence, calibrations: Mapping[str, Logistic]) -> float:
    found = [evidence_confidence(item, calibrations) for item in evidence.channels.values()]
    return 1.0 - float(np.prod([1.0 - value for value in found if value is not None]))


def _fused(hit: Hit) -> FusedEvidence:
    if not isinstance(hit.evidence, FusedEvidence):
        raise TypeError(f"expected fused evidence, got {type(hit.evidence).__name__}")
    return hit.evidence


def by_confidence(rankings: Mapping[str, Sequence[Hit]],
                  calibrations: Mapping[str, Logistic]) -> list[Hit]:
    """The default fusion's candidates ordered by confidence instead (stable on ties)."""
    fused = trusted_fusion(rankings)
    return sorted(fused, key=lambda hit: -(confidence(_fused(hit), calibrations) or 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fmnist", type=Path, default=None)
    parser.add_argument("--rankings", type=Path, default=Path("/tmp/confidence_rankings.pkl"))
    parser.add_argument("--embedder", default=None,
                        help="score the shipped calibration on the face albums indexed with "
                             "this face embedder instead")
    args = parser.parse_args()
    if args.embedder:
        transfer(args)
        return
    benches = load_all(args)
    text_pairs, text_shown = text_queries(fmnist_folder(args.fmnist))
    names = [bench.name for bench in benches] + ["fashion-mnist-text"]
    pair_sets = dict(zip(names, [pairs(bench) for bench in benches] + text_pairs, strict=True))
    results = dict(zip(names, [shown(bench) for bench in benches] + [text_shown], strict=True))
    rows: list[dict[str, Any]] = []
    for held in FITTED:
        fitted = fit([pair_sets[name] for name in FITTED if name != held])
        if any(confidence(_fused(hit), fitted) is None for hit, _ in results[held]):
            continue  # its kind of evidence is calibrated on this benchmark alone
        rows.append({"table": "held_out", "benchmark": held,
                     **calibration_scores(results[held], fitted)})
    fitted = fit([pair_sets[name] for name in FITTED])
    print("CALIBRATIONS = {")
    for kind, calibration in sorted(fitted.items()):
        print(f"    {kind!r}: Logistic({tuple(round(w, 4) for w in calibration.weights)}, "
              f"{calibration.bias:.4f}),")
    print("}")
    for name in names:
        rows.append({"table": "shipped", "benchmark": name, "fitted_on_it": name in FITTED,
                     **calibration_scores(results[name], CALIBRATIONS),
                     "ece_noisy_or": calibration_scores(results[name], CALIBRATIONS,
                                                        noisy_or=True)["ece"]})
    for bench in benches:
        rows.append({"table": "order", "benchmark": bench.name,
                     "default_fusion": bench.score([trusted_fusion(found)
                                                    for found in bench.rankings]),
                     "by_confidence": bench.score([by_confidence(found, CALIBRATIONS)
                                                   for found in bench.rankings])})
    for table in ("held_out", "shipped", "order"):
        chosen = [row for row in rows if row["table"] == table]
        print(f"\n{table}\n" + markdown_table(chosen, [key for key in chosen[0]
                                                       if key != "table"]))
    save("confidence", {"depth": DEPTH, "shown": SHOWN, "fitted_on": list(FITTED),
                        "benchmarks": names,
                        "fitted": {kind: [*cal.weights, cal.bias]
                                   for kind, cal in fitted.items()}}, rows)


if __name__ == "__main__":
    main()
