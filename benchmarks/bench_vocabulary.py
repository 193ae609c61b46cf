"""The generic vocabulary against a tree of the collection's own, and where one overtakes.

    python benchmarks/bench_vocabulary.py [--data ../shared/data] [--samples 100,300,1008]

Per tree, the local channel alone with its default search settings, side by side:
- Oxford 1k subset mAP (10 official queries with boxes) and Revisited Oxford medium and
  hard mAP (Radenović et al. 2018, restricted to the subset), the database indexed with
  the tree;
- UKBench56 N-S score (4 = every image finds its 4 views first).
The trees: the generic one that ships with Lookalike (``vocabulary="generic"``), and one
trained on a random sample of N of the database's own images (``vocabulary="own"``,
``train_images=N``), as a first indexing run of N images trains it. Where the own tree
overtakes the generic one is the size from which a collection trains its own
(``LocalChannelConfig.own_tree_images``). The planar set is measured by
``bench_planar.py --variants "default: Hamming embedding;generic vocabulary"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA, markdown_table, save

from lookalike import LocalChannelConfig
from lookalike.eval import evaluate
from lookalike.eval.datasets import load_oxford
from lookalike.eval.settings import EvalSettings, default_collection_dir
from lookalike.local.vocabularies import generic_info


def oxford_row(data: Path, config: LocalChannelConfig) -> dict[str, Any]:
    folder = data / "oxford5k_subset"
    oxford = evaluate("oxford", data=folder, channel="local", configs={"local": config})
    dataset = load_oxford(folder)
    root = default_collection_dir(dataset.name, dataset.database,
                                  EvalSettings(channel="local", configs={"local": config}))
    row = {"oxford_map": oxford["map"], "oxford_query_ms": oxford["query_ms_p50"],
           "index_img_per_s": oxford.get("index_images_per_s")}
    for protocol in ("medium", "hard"):
        revisited = evaluate(f"roxford-{protocol}", data=folder, channel="local",
                             configs={"local": config}, collection=root)
        row[f"roxford_{protocol}_map"] = revisited["map"]
    return row


def ukbench_ns(data: Path, config: LocalChannelConfig) -> float:
    report = evaluate("ukbench", data=data / "ukbench56", channel="local",
                      configs={"local": config})
    return float(report["ns_score"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--samples", default="100,300,1008",
                        help="images the own trees are trained on")
    args = parser.parse_args()
    info = generic_info("rootsift")
    if info is None:
        raise SystemExit("no generic tree ships in this checkout")
    trees: list[tuple[str, dict[str, Any]]] = [("generic", {"vocabulary": "generic"})]
    trees += [(f"own, {n} images", {"vocabulary": "own", "train_images": n})
              for n in map(int, args.samples.split(","))]
    rows = []
    for name, settings in trees:
        config = LocalChannelConfig(**settings)
        row = {"tree": name, **oxford_row(args.data, config)}
        # UKBench's own tree is trained on its 56 images, whatever N says.
        own = {"vocabulary": "own"} if settings["vocabulary"] == "own" else settings
        if name == "generic" or name == trees[1][0]:
            row["ukbench_ns"] = ukbench_ns(args.data, LocalChannelConfig(**own))
        print(row, flush=True)
        rows.append(row)
    columns = ["tree", "oxford_map", "roxford_medium_map", "roxford_hard_map", "ukbench_ns",
               "oxford_query_ms", "index_img_per_s"]
    print(markdown_table(rows, columns))
    save("vocabulary", {"generic": info, "search": "LocalChannelConfig defaults",
                        "oxford": "1,008-image subset, 10 official queries with boxes; "
                                  "Revisited medium/hard on the same collection",
                        "ukbench": "56 images; 'own' is trained on those 56"}, rows)


if __name__ == "__main__":
    main()
