"""Training your own embedding: unseen classes, the base network against each loss.

    python benchmarks/bench_train.py --dataset orl|fashion [--data ../shared/data] [--seeds 3]

The classes are split in two: the head trains on one half (a share of it held out to pick
the epoch), and every figure is measured on the other half, which it never saw: the
zero-shot protocol of CUB-200 and Cars196. Each image queries all the others of the unseen
half (``lookalike eval classes``): Recall@1 and MAP@R, for the base network
(efficientnet-lite0, as shipped) and for a head trained with each loss over several seeds
(mean and standard deviation), with the training time and the largest ONNX-vs-torch
difference.

- ``orl``: ORL faces (``../shared/data``), people 1-20 to train, 21-40 unseen.
- ``fashion``: Fashion-MNIST (Debian's ``dataset-fashion-mnist``), tops, trousers,
  pullovers, dresses and coats to train (300 each, from its train split); sandals, shirts,
  sneakers, bags and ankle boots unseen (200 each, from its test split); 112 px.
- ``fashion-seen``: the shop's case, not zero-shot: all ten classes train (300 each), and
  other photos of them (100 each, from the test split) are measured.
- ``orl-faces``: a face model (``--faces``, over SFace) trained on all 40 ORL people
  (8 held out to pick the epoch and calibrate the threshold), measured on LFW View 1
  test (``pairsDevTest.txt``, 10 folds; LFW is never trained on) against SFace itself.
- ``omniglot``: handwritten characters (github.com/brendenlake/omniglot, MIT): the 136
  characters of five alphabets train, the 156 of five other alphabets are unseen.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, markdown_table, save

from lookalike import FacesChannelConfig, GlobalChannelConfig
from lookalike.eval import evaluate
from lookalike.training import LOSSES, TrainConfig, train_embedding, train_face_embedding

DATASETS = {
    "orl": "ORL faces: train on s1-s20, measure on s21-s40 (unseen)",
    "fashion": "Fashion-MNIST at 112 px: train on classes 0-4 (300 each, train split), "
               "measure on classes 5-9 (200 each, test split; unseen)",
    "fashion-seen": "Fashion-MNIST at 112 px: train on all 10 classes (300 each, train "
                    "split), measure on other images of them (100 each, test split)",
    "omniglot": "Omniglot (Lake et al. 2015): train on images_background_small1 (5 "
                "alphabets, 136 characters x 20 drawings), measure on "
                "images_background_small2 (5 other alphabets, 156 characters; unseen)",
    "orl-faces": "face model over SFace trained on ORL (40 people, 8 held out), measured "
                 "on LFW View 1 test (pairsDevTest.txt, 10 folds)"}


def lfw_measured(data: Path, embedder: str) -> dict[str, float]:
    report = evaluate("lfw", data=data / "lfw", pairs=Path("pairsDevTest.txt"),
                      channel="faces", configs={"faces": FacesChannelConfig(embedder=embedder)})
    return {"accuracy": report["accuracy"], "accuracy_std": report["accuracy_std"]}


def face_rows(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    """The ``orl-faces`` run: SFace, then a head per loss and seed, on LFW View 1 test."""
    base = lfw_measured(args.data, "sface")
    rows: list[dict[str, Any]] = [{"model": "sface (base)", "seeds": 1,
                                   "lfw_accuracy": f"{base['accuracy']:.4f}",
                                   "train_s": "", "epochs": "", "threshold": "",
                                   "onnx_max_abs_diff": ""}]
    print(rows[-1], flush=True)
    # ORL is easy for SFace (held-out Recall@1 1.0 from the start), so early stopping keeps
    # the starting rotation; the second setting trains every epoch, with nothing held out,
    # to show what training on ORL does to LFW.
    for loss, validation in ((loss, v) for v in (0.2, 0.0) for loss in LOSSES):
        found, seconds, epochs, thresholds, differences = [], [], [], [], []
        for seed in range(args.seeds):
            started = time.perf_counter()
            model = scratch / f"face-{loss}-{validation}-{seed}.onnx"
            report = train_face_embedding(args.data / "orl_faces" / "orl_faces", model,
                                          TrainConfig(base="sface", loss=loss, seed=seed,
                                                      epochs=args.epochs,
                                                      validation=validation))
            seconds.append(time.perf_counter() - started)
            epochs.append(report.card["best_epoch"])
            thresholds.append(report.card["thresholds"]["verify"])
            differences.append(report.card["onnx_max_abs_difference"])
            found.append(lfw_measured(args.data, str(model))["accuracy"])
        accuracy = np.array(found)
        how = "8 people held out" if validation else f"all {args.epochs} epochs"
        rows.append({"model": f"face head, {loss}, {how}", "seeds": args.seeds,
                     "lfw_accuracy": f"{accuracy.mean():.4f} ± {accuracy.std():.4f}",
                     "train_s": f"{np.mean(seconds):.1f}",
                     "epochs": "/".join(str(e) for e in epochs),
                     "threshold": "/".join(f"{t:.3f}" for t in thresholds),
                     "onnx_max_abs_diff": f"{max(differences):.1e}"})
        print(rows[-1], flush=True)
    return rows


def split_orl(faces: Path, scratch: Path) -> tuple[Path, Path]:
    """Links to people 1-20 (training) and 21-40 (unseen), a folder per person."""
    train, unseen = scratch / "train", scratch / "unseen"
    for person in faces.iterdir():
        match = re.fullmatch(r"s(\d+)", person.name)
        if match is None:
            continue
        target = (train if int(match.group(1)) <= 20 else unseen) / person.name
        target.mkdir(parents=True)
        for image in person.glob("*.pgm"):
            (target / image.name).symlink_to(image.resolve())
    return train, unseen


def split_fashion(scratch: Path, seen: bool) -> tuple[Path, Path]:
    from fashion_mnist import CLASSES, class_slug, export_fashion_mnist

    train, unseen = scratch / "fashion-train", scratch / "fashion-unseen"
    export_fashion_mnist(train, 300, split="train")
    export_fashion_mnist(unseen, 100 if seen else 200, split="test")
    if not seen:  # the first five classes train, the last five are unseen
        for index, name in enumerate(CLASSES):
            shutil.rmtree((unseen if index < 5 else train) / class_slug(name))
    return train, unseen


def split_omniglot(source: Path, scratch: Path) -> tuple[Path, Path]:
    """The two small background sets of brendenlake/omniglot (``python/*.zip``), a folder
    per character (alphabet and character in its name)."""
    import zipfile

    found = []
    for part, name in (("train", "images_background_small1"),
                       ("unseen", "images_background_small2")):
        with zipfile.ZipFile(source / f"{name}.zip") as archive:
            archive.extractall(scratch / "zips")
        for character in sorted((scratch / "zips" / name).glob("*/*")):
            target = scratch / f"omniglot-{part}" / f"{character.parent.name}-{character.name}"
            target.mkdir(parents=True)
            for image in character.glob("*.png"):
                (target / image.name).symlink_to(image.resolve())
        found.append(scratch / f"omniglot-{part}")
    return found[0], found[1]


def measured(unseen: Path, extractor: str, scratch: Path) -> dict[str, float]:
    report = evaluate("classes", data=unseen, collection=scratch / f"eval-{time.time_ns()}",
                      configs={"global": GlobalChannelConfig(extractor=extractor)})
    return {"recall_at_1": report["recall_at_1"], "map_at_r": report["map_at_r"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=tuple(DATASETS), default="orl")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--omniglot", type=Path, default=Path("omniglot"),
                        help="omniglot: the folder of images_background_small{1,2}.zip "
                             "(brendenlake/omniglot's python/)")
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--tune-blocks", default="0",
                        help="comma-separated: the base network's last blocks fine-tuned with "
                             "the head (0: the head alone)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lookalike-train-"))
    try:
        if args.dataset == "orl-faces":
            rows = face_rows(args, scratch)
        else:
            rows = image_rows(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(markdown_table(rows, list(rows[0])))
    base = "sface" if args.dataset == "orl-faces" else "efficientnet-lite0"
    # A fine-tuning run is saved apart, so that the heads-only table's file stays whole.
    suffix = "_tune" if args.tune_blocks != "0" else ""
    save(f"train_{args.dataset}{suffix}", {"data": DATASETS[args.dataset], "base": base,
                                   "seeds": args.seeds, "settings": TrainConfig(
                                       base=base, epochs=args.epochs).as_dict(),
                                   "tune_blocks": args.tune_blocks}, rows)


def image_rows(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    """The image runs: the base network, then a head per loss and seed, on unseen classes."""
    rows: list[dict[str, Any]] = []
    if args.dataset == "orl":
        train, unseen = split_orl(args.data / "orl_faces" / "orl_faces", scratch)
    elif args.dataset == "omniglot":
        train, unseen = split_omniglot(args.omniglot, scratch)
    else:
        train, unseen = split_fashion(scratch, seen=args.dataset == "fashion-seen")
    base = measured(unseen, "efficientnet-lite0", scratch)
    rows.append({"model": "efficientnet-lite0 (base)", "seeds": 1,
                 "recall_at_1": f"{base['recall_at_1']:.4f}",
                 "map_at_r": f"{base['map_at_r']:.4f}", "train_s": "",
                 "epochs": "", "onnx_max_abs_diff": ""})
    print(rows[-1], flush=True)
    for loss, blocks in ((loss, int(b)) for loss in args.losses.split(",")
                         for b in args.tune_blocks.split(",")):
        found, seconds, epochs, differences = [], [], [], []
        for seed in range(args.seeds):
            started = time.perf_counter()
            model = scratch / f"{loss}-{blocks}-{seed}.onnx"
            report = train_embedding(train, model, TrainConfig(
                loss=loss, seed=seed, epochs=args.epochs, tune_blocks=blocks))
            seconds.append(time.perf_counter() - started)
            epochs.append(report.card["best_epoch"])
            differences.append(report.card["onnx_max_abs_difference"])
            found.append(measured(unseen, str(model), scratch))
        r1 = np.array([row["recall_at_1"] for row in found])
        mapr = np.array([row["map_at_r"] for row in found])
        tuned = f" + last {blocks} block{'s' if blocks > 1 else ''}" if blocks else ""
        rows.append({"model": f"head{tuned}, {loss}", "seeds": args.seeds,
                     "recall_at_1": f"{r1.mean():.4f} ± {r1.std():.4f}",
                     "map_at_r": f"{mapr.mean():.4f} ± {mapr.std():.4f}",
                     "train_s": f"{np.mean(seconds):.1f}",
                     "epochs": "/".join(str(e) for e in epochs),
                     "onnx_max_abs_diff": f"{max(differences):.1e}"})
        print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    main()
