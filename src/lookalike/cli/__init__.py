"""The ``lookalike`` command: a thin adapter over the library API.

Every sub-command parses its arguments, calls :class:`lookalike.Collection` or
the evaluation runner, and prints the result as text or, with ``--json``, as
one JSON document on stdout. Progress bars go to stderr. Errors print one line
and exit with status 1; files that fail during indexing are listed, and do not
stop the run.

Each command group lives in its own module with one ``add_parser(commands)``;
the options, settings and output they share are in :mod:`lookalike.cli.common`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from PIL import Image

from lookalike import __version__
from lookalike.cli.annotate import add_parser as add_annotate
from lookalike.cli.channels import add_parser as add_channels
from lookalike.cli.common import printable, stage_bars
from lookalike.cli.completion import add_parser as add_completion
from lookalike.cli.completion import complete
from lookalike.cli.demo import add_parser as add_demo
from lookalike.cli.duplicates import add_parser as add_duplicates
from lookalike.cli.evaluate import add_parser as add_eval
from lookalike.cli.faces import add_parser as add_faces
from lookalike.cli.index import add_parser as add_index
from lookalike.cli.info import add_parser as add_info
from lookalike.cli.ranker import add_parser as add_ranker
from lookalike.cli.search import add_parser as add_search
from lookalike.cli.serve import add_parser as add_serve
from lookalike.cli.shard import add_parser as add_shard
from lookalike.cli.train import add_parser as add_train
from lookalike.cli.vocabulary import add_parser as add_vocabulary
from lookalike.errors import LookalikeError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    complete(parser)
    args = parser.parse_args(_joined_values(sys.argv[1:] if argv is None else list(argv)))
    # Lookalike applies its own pixel cap (--max-pixels) with a clear per-file error;
    # Pillow's warning about the same images would only add noise to the output.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        with stage_bars(quiet=getattr(args, "quiet", False)):
            result: int = args.handler(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at exit
        return result
    except LookalikeError as error:
        print(f"error: {printable(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything committed so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``lookalike search ... | head``): not an error of ours.
        # Python would still fail flushing stdout at exit, so point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _joined_values(argv: list[str]) -> list[str]:
    """``--box -5,0,100,100`` as ``--box=-5,0,100,100``: argparse takes a value that starts
    with a minus sign for an option."""
    joined: list[str] = []
    pending = False
    for word in argv:
        if pending:
            joined[-1] = f"{joined[-1]}={word}"
            pending = False
        else:
            joined.append(word)
            pending = word in _VALUES_WITH_MINUS
    return joined


_VALUES_WITH_MINUS = {"--box"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookalike", description="Index a folder of images and search it by example."
    )
    parser.add_argument("--version", action="version", version=f"lookalike {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order ``lookalike --help`` lists them.
    add_index(commands)
    add_search(commands)
    add_info(commands)  # info, remove and include
    add_channels(commands)
    add_duplicates(commands)
    add_eval(commands)
    add_demo(commands)  # demo and models
    add_vocabulary(commands)
    add_shard(commands)
    add_train(commands)
    add_faces(commands)
    add_serve(commands)
    add_annotate(commands)
    add_ranker(commands)
    add_completion(commands)
    return parser


__all__ = ["build_parser", "main"]
