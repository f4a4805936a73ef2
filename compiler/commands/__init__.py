"""Subcommands of ``nnopt``; each module defines ``add_parser(subparsers)`` and ``run(args)``."""

from __future__ import annotations

COMMANDS: dict[str, str] = {}
"""Subcommand name -> module under `nnopt.compiler.commands` (imported only when used)."""

COMMANDS["import"] = "import_"

COMMANDS["run"] = "run"

COMMANDS["plan"] = "plan"

COMMANDS["targets"] = "targets"

COMMANDS["compile"] = "compile"

COMMANDS["quantize"] = "quantize"

COMMANDS["cost"] = "cost"

COMMANDS["explore"] = "explore"

COMMANDS["analog"] = "analog"
