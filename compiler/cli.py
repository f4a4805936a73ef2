"""The ``nnopt`` command: one subcommand per job (run, import, plan, compile, ...)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nnopt.compiler.commands import COMMANDS
from nnopt.compiler.diagnostics import run_cli


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="nnopt", description="Fit neural networks onto memory-starved edge devices."
    )
    parser.add_argument("--version", action="version", version="nnopt 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f"nnopt.compiler.commands.{module}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nnopt``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"nnopt.compiler.commands.{COMMANDS[args.command]}")
    return run_cli(lambda: module.run(args))


if __name__ == "__main__":
    sys.exit(main())
