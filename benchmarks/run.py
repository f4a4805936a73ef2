"""Command line of the harness: choose sections, run them, rewrite BENCHMARKS.md (and optional JSON)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import ROOT, Context, SectionResult, machine_info, now
from benchmarks.report import compose
from benchmarks.sections import all_sections


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in all_sections()]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure nnopt and its peers side by side and rewrite BENCHMARKS.md.",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SECTION[,SECTION]",
        help=f"run only these sections ({', '.join(names)}); repeatable",
    )
    parser.add_argument("--repeat", type=int, default=None, metavar="N", help="repetitions for every section")
    parser.add_argument(
        "--models",
        action="append",
        default=[],
        metavar="TEXT",
        help="only models / instances whose file name contains TEXT (repeatable)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=60.0, metavar="S", help="planner limit on MiniMalloc instances"
    )
    parser.add_argument(
        "--models-dir", type=Path, default=None, metavar="DIR", help="real models (default: ../shared/models)"
    )
    parser.add_argument(
        "--minimalloc-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="packing instances (default: ../shared/benchmarks/minimalloc)",
    )
    parser.add_argument("--quick", action="store_true", help="small workloads, for smoke tests")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "BENCHMARKS.md",
        help="Markdown file to update (default: BENCHMARKS.md)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the raw results")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    chosen = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}; sections: {', '.join(names)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.sections = chosen or names
    return args


def command_line(argv: Sequence[str]) -> str:
    """The command as a user would type it."""
    return " ".join(["python -m benchmarks", *(shlex.quote(a) for a in argv)])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections; 1 when one of them failed (its block then says why)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    sections = all_sections()
    if args.list:
        for s in sections:
            print(f"{s.name:15} {s.title}")
        return 0
    ctx = Context(repeat=args.repeat, models=args.models, time_limit=args.time_limit, quick=args.quick)
    if args.models_dir is not None:
        ctx.models_dir = args.models_dir
    if args.minimalloc_dir is not None:
        ctx.minimalloc_dir = args.minimalloc_dir
    command = command_line(argv)
    results: dict[str, SectionResult] = {}
    failed = False
    output: Path = args.output
    for section in sections:
        if section.name not in args.sections:
            continue
        ctx.log(f"== {section.title} ==")
        started = now()
        machine = machine_info()
        start = time.perf_counter()
        try:
            result: SectionResult = section.module.run(ctx)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            result = SectionResult(section.name, section.title, "", "")
            result.commentary = [f"The section failed: {type(exc).__name__}: {exc}"]
        result.name, result.title = section.name, section.title
        result.command, result.started, result.machine = command, started, machine
        result.seconds = time.perf_counter() - start
        results[section.name] = result
        # Write after every section, so a long run keeps what it measured so far.
        previous = output.read_text(encoding="utf-8") if output.exists() else ""
        output.write_text(compose([(s.name, s.title) for s in sections], {section.name: result}, previous))
        ctx.log(f"   {section.name}: {result.seconds:.0f} s, written to {output}")
    if args.json is not None:
        args.json.write_text(json.dumps({n: r.to_json() for n, r in results.items()}, indent=1) + "\n")
    return 1 if failed else 0
