"""``lookalike completion SHELL``: tab completion of commands and options, by argcomplete."""

from __future__ import annotations

import argparse

from lookalike.cli.common import Commands
from lookalike.errors import MissingDependencyError

SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")


def add_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "completion", help="print the shell code for tab completion: add "
                           "'eval \"$(lookalike completion bash)\"' to ~/.bashrc")
    parser.add_argument("shell", choices=SHELLS)
    parser.set_defaults(handler=run_completion)


def run_completion(args: argparse.Namespace) -> int:
    try:
        import argcomplete.shell_integration
    except ImportError as error:
        raise MissingDependencyError("argcomplete", "shell completion", "",
                                     command="pip install argcomplete") from error
    print(argcomplete.shell_integration.shellcode(["lookalike"], shell=args.shell), end="")
    return 0


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request, when this run is one (argcomplete exits)."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)
