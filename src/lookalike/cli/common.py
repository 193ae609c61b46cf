"""What several commands share: options, the settings they ask for, argument parsers, output.

The config builders only read what the command line gave; anything left unsaid comes from
the collection's own manifest (or the library's defaults), so that a search-time option
never silently resets a setting fixed when the collection was created.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from lookalike.collection import (
    CHANNELS,
    DEFAULT_WAIT,
    ChannelConfig,
    Collection,
    FacesChannelConfig,
    GlobalChannelConfig,
    LocalChannelConfig,
)
from lookalike.extractors import available_extractors
from lookalike.faces import DETECTORS, EMBEDDERS
from lookalike.images import DEFAULT_MAX_PIXELS
from lookalike.local import FEATURE_KINDS

# What ``add_subparsers`` returns; each command module adds its parsers to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# -- argument parsers -------------------------------------------------------------------------

def parse_list(text: str) -> list[str]:
    """A comma-separated list (channels, CORS origins), blanks dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_box(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (float(part) for part in parts)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1, got '{text}'") from error
    if not all(math.isfinite(value) for value in (x0, y0, x1, y1)):
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 of finite numbers, got '{text}'")
    return x0, y0, x1, y1


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got '{text}'") from error


# -- shared options ---------------------------------------------------------------------------

COLLECTION_VARIABLE = "LOOKALIKE_COLLECTION"


def collection_option(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get(COLLECTION_VARIABLE) or None
    parser.add_argument("--collection", "-c", required=default is None, type=Path,
                        default=None if default is None else Path(default), metavar="DIR",
                        help="the collection directory (default: $LOOKALIKE_COLLECTION"
                             + (f", now {default})" if default else ", unset)"))
    parser.add_argument("--wait", action="store_true",
                        help="when another process is writing to the collection, wait for it "
                             f"(default: give up after {DEFAULT_WAIT:g} s)")


def waiting(args: argparse.Namespace) -> float | None:
    """How long a write waits for another process's: ``--wait`` means as long as it takes."""
    return None if getattr(args, "wait", False) else DEFAULT_WAIT


def model_options(parser: argparse.ArgumentParser, *, default_extractor: str | None) -> None:
    parser.add_argument("--extractor", type=extractor_name, default=default_extractor,
                        metavar="MODEL",
                        help=f"global embedding model: {', '.join(available_extractors())}, or "
                             "a MODEL.onnx made by lookalike train (default: the collection's "
                             "own, or efficientnet-lite0 for a new one)")
    parser.add_argument("--index", default=None, metavar="SPEC",
                        help="vector index: auto (default), flat, hnsw[:M=32,ef_search=64], "
                             "ivfpq[:nlist=1024,m=64]")
    parser.add_argument("--whiten", type=int, default=None, metavar="DIM",
                        help="PCA-whiten embeddings to DIM dimensions, learned on the collection")
    parser.add_argument("--whiten-from", default=None, metavar="NPZ",
                        help="apply a PCA-whitening learned on another collection")


def extractor_name(text: str) -> str:
    """A registered model's name, or a trained model's file (kept absolute, so that the
    collection's manifest names it wherever the command runs from)."""
    if text.lower().endswith(".onnx"):
        return str(Path(text).resolve())
    if text not in available_extractors():
        raise argparse.ArgumentTypeError(
            f"expected a model among {', '.join(available_extractors())} or a .onnx file made "
            f"by lookalike train, got {text!r}")
    return text


def local_options(parser: argparse.ArgumentParser, *, stored: bool,
                  channels: bool = False) -> None:
    """Options of the local channel; ``stored`` adds the ones fixed at creation."""
    if channels:
        parser.add_argument("--channels", type=parse_list, default=None, metavar="LIST",
                            help="channels of a new collection, or to add to an existing "
                                 "one, comma-separated among "
                                 f"{', '.join(CHANNELS.names())} (default global), e.g. "
                                 "global,regions,text")
    if stored:
        parser.add_argument("--features", choices=FEATURE_KINDS, default=None,
                            help="local features (default rootsift)")
        parser.add_argument("--max-features", type=int, default=None, metavar="N",
                            help="keypoints kept per image, strongest first (default 1500)")
        parser.add_argument("--max-side", type=int, default=None, metavar="PX",
                            help="local channel: longer side SIFT sees (default 1024; 400 with "
                                 "--max-features 700 is 2.5x faster on 640-px photos, "
                                 "BENCHMARKS.md)")
        parser.add_argument("--vocabulary", type=Path, default=None, metavar="NPZ",
                            help="local channel: a vocabulary tree trained elsewhere (lookalike "
                                 "vocabulary), 'generic' (the tree shipped with Lookalike) or "
                                 "'own' (train one on the first images); default: generic for "
                                 "a first run under 600 images, own above")
    parser.add_argument("--verify", type=int, default=None, metavar="R",
                        help="local channel: re-rank the top R by RANSAC (default 100, 0: off)")


def faces_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=None,
                        help="faces channel: face detector (default centerface)")
    parser.add_argument("--min-face", type=int, default=None, metavar="PX",
                        help="faces channel: ignore faces smaller than this (default 20)")
    parser.add_argument("--min-face-score", type=float, default=None, metavar="P",
                        dest="min_score",
                        help="faces channel: ignore detections scored below this (default 0.5)")
    parser.add_argument("--face-embedder", default=None, dest="embedder", metavar="NAME",
                        help="faces channel: face embedder of a new collection, one of "
                             f"{', '.join(sorted(EMBEDDERS))} or a face model file made by "
                             "lookalike train --faces (default sface)")


def max_pixels_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse images with more pixels, against decompression bombs "
                             f"(default {DEFAULT_MAX_PIXELS:,})")


# -- the settings the options ask for ---------------------------------------------------------

def config(args: argparse.Namespace, root: Path | None = None) -> GlobalChannelConfig | None:
    """The settings asked for on the command line, on top of the collection's own."""
    given = {key: getattr(args, key) for key in ("extractor", "index", "whiten", "whiten_from")
             if getattr(args, key) is not None}
    if not given:
        return None
    recorded = Collection.read_configs(root).get("global") if root is not None else None
    base = recorded if isinstance(recorded, GlobalChannelConfig) else GlobalChannelConfig()
    if "whiten" in given or "whiten_from" in given:
        base = dataclasses.replace(base, whiten=None, whiten_from=None)
    return dataclasses.replace(base, **given)


def local_config(args: argparse.Namespace, root: Path | None = None) -> LocalChannelConfig | None:
    """The local-channel settings asked for on the command line, on top of the collection's."""
    given = {name: getattr(args, name) for name in ("features", "max_features", "max_side",
                                                    "vocabulary", "verify")
             if getattr(args, name, None) is not None}
    if "vocabulary" in given:
        given["vocabulary"] = str(given["vocabulary"])
    if not given:
        return None
    recorded = Collection.read_configs(root).get("local") if root is not None else None
    base = recorded if isinstance(recorded, LocalChannelConfig) else LocalChannelConfig()
    return dataclasses.replace(base, **given)


def faces_config(args: argparse.Namespace, root: Path | None = None) -> FacesChannelConfig | None:
    """The faces-channel settings asked for on the command line, on top of the collection's."""
    given = {name: getattr(args, name) for name in ("detector", "min_face", "min_score",
                                                    "embedder")
             if getattr(args, name, None) is not None}
    if not given:
        return None
    recorded = Collection.read_configs(root).get("faces") if root is not None else None
    base = recorded if isinstance(recorded, FacesChannelConfig) else FacesChannelConfig()
    return dataclasses.replace(base, **given)


def channel_configs(args: argparse.Namespace, root: Path | None = None
                    ) -> dict[str, ChannelConfig]:
    """Every channel's settings the options ask for, by channel name (none when the
    options leave a channel as it is)."""
    found = {"global": config(args, root), "local": local_config(args, root),
             "faces": faces_config(args, root)}
    return {name: settings for name, settings in found.items() if settings is not None}


# -- output -----------------------------------------------------------------------------------

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNPRINTABLE = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_UNPRINTABLE.update({ord(mark): f"\\u{ord(mark):04x}" for mark in _BIDI})


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` with its noun in the right number: "1 face", "2 faces", "1 person"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def printable(text: object) -> str:
    """``text`` safe for a terminal: a file name may hold escape sequences that would
    rewrite the screen, newlines that forge report lines, or bidi marks that reverse
    them; each is shown as its escape instead."""
    return str(text).translate(_UNPRINTABLE)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def show(args: argparse.Namespace, data: Any, text: str) -> None:
    """``data`` as JSON with ``--json``, else ``text``."""
    if args.json:
        print_json(data)
    else:
        print(text)


@contextmanager
def progress_bar(description: str, quiet: bool, *, close_when_done: bool = False
                 ) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr driven by the library's (done, total) callback; with
    ``close_when_done``, closed as soon as done reaches total (more work follows that
    prints its own lines)."""
    from tqdm import tqdm

    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description, unit="img", file=sys.stderr,
                       disable=quiet, dynamic_ncols=True)
        if total and bar.total != total:  # the job found more to do (a second pass)
            bar.total = total
            bar.refresh()
        if close_when_done and total and bar.n >= total:
            return  # done and closed
        bar.update(done - bar.n)
        if close_when_done and done >= total:
            bar.close()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


@contextmanager
def stage_bars(quiet: bool) -> Iterator[None]:
    """A bar on stderr for each long library step (:mod:`lookalike.progress`) while the
    command runs; each closes when its stage is done."""
    from tqdm import tqdm

    from lookalike.progress import listening

    bars: dict[str, Any] = {}
    lock = threading.Lock()  # steps may come from several threads

    def show(stage: str, done: int, total: int) -> None:
        with lock:
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr,
                                         disable=quiet, dynamic_ncols=True, leave=True)
            bar.update(done - bar.n)
            if done >= total:
                bars.pop(stage, None)
                bar.close()

    try:
        with listening(show):
            yield
    finally:
        for bar in bars.values():
            bar.close()


def sidecar_status(sidecar: Path, annotated: int) -> int:
    """The exit status of a sidecar import: 1, said on stderr, when it annotated nothing."""
    if annotated:
        return 0
    print(f"error: {printable(sidecar)} annotated no image: none of its paths is in the "
          "collection (paths are matched as indexed, or relative to the sidecar's folder)",
          file=sys.stderr)
    return 1
