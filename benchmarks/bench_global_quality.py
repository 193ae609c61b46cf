"""Global-channel search quality: UKBench56 N-S and Oxford 1k-subset mAP.

Compares, in one run, EfficientNet-Lite0 against MobileNetV2, each with and
without PCA-whitening. Whitening for Oxford is learned on the Oxford subset
itself (the collection); UKBench's 56 images are too few to learn a whitening
of useful size, so for UKBench it is learned on Oxford, as papers do when they
learn on a separate set.

    python benchmarks/bench_global_quality.py [--data ../shared/data] [--whiten 64,128,256,512]

Only the Oxford subset's 10 queries give mAP here, so differences of a few points
are within noise; read the whitening sweep as a trend, not a ranking.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA, markdown_table, save

from lookalike import GlobalChannelConfig
from lookalike.eval import evaluate

MODELS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "mobilenetv2")


def learn_oxford_whitening(data: Path, model: str, dim: int, scratch: Path) -> Path:
    """Fit the whitening on the Oxford subset's collection and write it to an .npz."""
    from lookalike.eval.datasets import load_oxford
    from lookalike.eval.settings import EvalSettings, build_collection

    config = GlobalChannelConfig(extractor=model, whiten=dim)
    dataset = load_oxford(data / "oxford5k_subset")
    collection, _ = build_collection(dataset.name, dataset.database,
                                     EvalSettings(configs={"global": config}))
    path = scratch / f"oxford-{model}-{dim}.npz"
    with collection:
        collection.channels["global"].save_whitening(path)  # type: ignore[attr-defined]
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--whiten", default="64,128,256,512",
                        help="comma-separated PCA-whitening dimensions to compare")
    args = parser.parse_args()
    dims = [int(value) for value in args.whiten.split(",") if value]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for model in MODELS:
            variants = {"none": (GlobalChannelConfig(extractor=model),) * 2}
            for dim in dims:
                learned = learn_oxford_whitening(args.data, model, dim, Path(scratch))
                variants[f"PCA-w {dim}"] = (
                    GlobalChannelConfig(extractor=model, whiten_from=str(learned)),
                    GlobalChannelConfig(extractor=model, whiten=dim),
                )
            for label, (ukbench_config, oxford_config) in variants.items():
                ukbench = evaluate("ukbench", data=args.data / "ukbench56",
                    configs={"global": ukbench_config})
                oxford_data = args.data / "oxford5k_subset"
                oxford = evaluate("oxford", data=oxford_data, configs={"global": oxford_config})
                oxford_full = evaluate("oxford", crop=False,
                                       data=oxford_data, configs={"global": oxford_config})
                rows.append({
                    "model": model, "whitening": label,
                    "ukbench_ns": ukbench["ns_score"], "ukbench_map": ukbench["map"],
                    "oxford_map_crop": oxford["map"], "oxford_map_full": oxford_full["map"],
                    "oxford_top1_crop": oxford["top1"],
                    "query_ms_p50": oxford["query_ms_p50"],
                })
                print(rows[-1], flush=True)
    columns = ["model", "whitening", "ukbench_ns", "ukbench_map", "oxford_map_crop",
               "oxford_map_full", "oxford_top1_crop", "query_ms_p50"]
    table = markdown_table(rows, columns)
    print(table)
    path = save("global_quality", {"whiten": dims, "data": str(args.data),
                                   "ukbench_whitening": "learned on the Oxford subset",
                                   "oxford_whitening": "learned on the Oxford subset itself"}, rows)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
