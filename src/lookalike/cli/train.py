"""``lookalike train``: teach the engine what "same" means for your classes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lookalike.cli.common import Commands, print_json, progress_bar
from lookalike.training import LOSSES, TrainConfig, train_embedding, train_face_embedding


def add_parser(commands: Commands) -> None:
    defaults = TrainConfig()
    parser = commands.add_parser(
        "train", help="train an embedding on labelled images (a folder per class, a TSV "
                      "of path and label, or a collection's categories) and save it as an "
                      "ONNX model")
    parser.add_argument("data", type=Path, help="a folder with a sub-folder of images per "
                                                "class, a TSV file of path<TAB>label, or a "
                                                "collection (its images' categories)")
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL.onnx",
                        help="the model file to write (its card goes beside it, .json)")
    parser.add_argument("--loss", choices=LOSSES, default=defaults.loss,
                        help=f"triplet (semi-hard mining, P x K batches), normsoftmax or "
                             f"arcface (default {defaults.loss})")
    parser.add_argument("--faces", action="store_true",
                        help="train a face model for the faces channel: DATA is a folder per "
                             "person, a TSV of path<TAB>name, or a collection's named people; "
                             "each image's largest face is used")
    parser.add_argument("--base", default=None,
                        help=f"the pretrained network under the head (default {defaults.base}; "
                             "sface with --faces)")
    parser.add_argument("--dim", type=int, default=defaults.dim,
                        help=f"embedding dimension (default {defaults.dim})")
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"at most this many epochs (default {defaults.epochs})")
    parser.add_argument("--patience", type=int, default=defaults.patience,
                        help="stop after this many epochs without a better held-out "
                             f"Recall@1 (default {defaults.patience})")
    parser.add_argument("--validation", type=float, default=defaults.validation,
                        help="share of the classes held out to pick the epoch kept "
                             f"(default {defaults.validation})")
    parser.add_argument("--tune-blocks", type=int, default=defaults.tune_blocks, metavar="N",
                        help="also fine-tune the base network's last N blocks (efficientnet-"
                             "lite bases; slower: see BENCHMARKS.md); default 0, the head "
                             "alone")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    base = args.base or ("sface" if args.faces else TrainConfig().base)
    config = TrainConfig(base=base, loss=args.loss, dim=args.dim, epochs=args.epochs,
                         patience=args.patience, validation=args.validation, seed=args.seed,
                         tune_blocks=args.tune_blocks)

    bars: list[Any] = []  # the epochs' bar, made at the first epoch (after the features')

    def epoch_done(row: dict[str, Any]) -> None:
        # The bar shows the last epoch's loss and held-out figures; early stopping ends it
        # before its total.
        if not bars:
            bars.append(tqdm(total=config.epochs, desc="training", unit="epoch",
                             file=sys.stderr, disable=args.quiet, dynamic_ncols=True))
        shown: dict[str, str] = {"loss": f"{row['loss']:.4f}"}
        shown.update({name: f"{row[name]:.3f}" for name in ("recall_at_1", "map_at_r")
                      if name in row})
        bars[0].set_postfix(shown)
        bars[0].update(1)

    try:
        train = train_face_embedding if args.faces else train_embedding
        with progress_bar(f"{'faces' if args.faces else 'features'} of {args.data.name}",
                          args.quiet, close_when_done=True) as update:
            report = train(args.data, args.out, config, progress=update, on_epoch=epoch_done)
    finally:
        for bar in bars:
            bar.close()
    for path, reason in report.failures:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    card = report.card
    if args.json:
        print_json(report.as_dict())
    else:
        print(f"wrote {report.model} ({card['dim']}-d, {card['loss']}, best epoch "
              f"{card['best_epoch']} of {card['epochs_run']}, ONNX vs torch max difference "
              f"{card['onnx_max_abs_difference']:.2e})")
        if card["validation"]:
            print(f"held-out classes: recall@1 {card['validation']['recall_at_1']:.4f} "
                  f"(base network {card['base_validation']['recall_at_1']:.4f}), MAP@R "
                  f"{card['validation']['map_at_r']:.4f} "
                  f"(base {card['base_validation']['map_at_r']:.4f})")
    if "thresholds" in card and not args.json:
        print(f"same person at similarity >= {card['thresholds']['verify']:.4f} "
              f"(calibrated on {card['thresholds']['calibrated_on']}); use it with "
              f"lookalike index --channels faces --face-embedder {report.model}")
    if card["beats_base"] is False:
        print(f"warning: on the held-out classes the base network ({card['base']['name']}) "
              "does at least as well as this model; more classes to train on usually help",
              file=sys.stderr)
    elif card["beats_base"] is None:
        print("warning: too few images to hold some out, so nothing measured this model "
              "against the base network; check it with lookalike eval classes",
              file=sys.stderr)
    return 0
