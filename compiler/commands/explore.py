"""``nnopt explore``: which memory should hold the weights and the activations? Sweep and compare.

::

    nnopt explore MODEL --target NAME|FILE.toml [--baseline CONFIG] [--jobs N] [--svg FILE] [--json FILE]
                  [--objective latency|energy] [--pin NAME:MEMORY ...] [--weights LIST] [--activations LIST]
                  [--overlays on|off|both] [--schedule given|memory|both] [--time-limit S] [--graph NAME]

Runs the placement pipeline (nn-schedule when asked, nn-bufferize,
nn-merge-buffers, nn-assign-memspace, nn-plan-arena) for every configuration:
weights in each memory (or chosen by nn-assign-memspace: ``auto``),
activations in each volatile memory (or ``auto``), overlays on and off, the
model's op order and nn-schedule's. Configurations that do not fit are listed
with the reason. The table gives, per configuration, the bytes used in each
memory (arena plus constants), the estimated latency and energy, and both
relative to a baseline: by default everything in the fastest memory, where
that fits (the first memory, fastest first, that holds everything). Worker
processes (``--jobs``) share the sweep; a progress bar shows on a terminal.
"""

from __future__ import annotations

import argparse
import sys

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.explore import (
    DEFAULT_TIME_LIMIT,
    Outcome,
    configurations,
    default_jobs,
    explore,
    pick_baseline,
    progress_bar,
)
from nnopt.compiler.report.explore_svg import Bar, render
from nnopt.compiler.report.table import joules, seconds, shorten, size, table, write_json, write_text
from nnopt.compiler.targets import Target, load_target
from nnopt.passes.analysis.cost import OBJECTIVES
from nnopt.passes.assign_memspace import parse_pins


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nnopt explore``."""
    parser = subparsers.add_parser(
        "explore",
        help="sweep memory placements of a model on a target and compare latency and energy",
        description="Sweep where the weights and activations of a model live on a target (and overlays, "
        "schedules), skip what does not fit, and compare estimated latency and energy to a baseline.",
    )
    parser.add_argument("model", metavar="MODEL", help="model file (.nn, .mlir, .tflite, .onnx)")
    parser.add_argument(
        "--target", required=True, metavar="NAME|FILE.toml", help="target preset or description"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="CONFIG",
        help="the configuration the others are compared to, by its name as printed "
        "(default: everything in the fastest memory where that fits)",
    )
    parser.add_argument(
        "--jobs", "-j", type=int, default=1, metavar="N", help="worker processes (0: one per CPU)"
    )
    parser.add_argument("--svg", metavar="FILE", default=None, help="write a bar chart of latency and energy")
    parser.add_argument(
        "--json", metavar="FILE", default=None, help="write every configuration's results as JSON"
    )
    parser.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="latency",
        help="what auto placements minimise (default latency)",
    )
    parser.add_argument(
        "--pin", action="append", default=[], metavar="NAME:MEMORY", help="pin a value or buffer (repeatable)"
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="LIST",
        help="comma-separated memories (or auto) to try for the weights",
    )
    parser.add_argument(
        "--activations",
        default=None,
        metavar="LIST",
        help="comma-separated memories (or auto) for the activations",
    )
    parser.add_argument("--overlays", choices=("on", "off", "both"), default="both", help="overlay variants")
    parser.add_argument(
        "--schedule",
        choices=("given", "memory", "both"),
        default="both",
        help="op order: the model's, nn-schedule's, or both (default both)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        metavar="S",
        help=f"exact-search seconds per memory space when planning (default {DEFAULT_TIME_LIMIT:g})",
    )
    parser.add_argument("--graph", default=None, metavar="NAME", help="the nn.graph to explore")
    parser.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a terminal"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="list every configuration (by default a row identical to an earlier one with the same weights "
        "and activations, e.g. a schedule that kept the order, is folded into it)",
    )


def _memories(target: Target, text: str | None, what: str, allowed: set[str]) -> list[str] | None:
    if text is None:
        return None
    out: list[str] = []
    for item in (t.strip() for t in text.split(",")):
        if item == "auto":
            out.append("")
        elif item in allowed:
            out.append(item)
        else:
            raise UserError(f"--{what}: '{item}' is not one of {', '.join(['auto', *sorted(allowed)])}")
    return out


def _result_key(o: Outcome) -> tuple[object, ...]:
    return (
        o.config.weights,
        o.config.activations,
        o.fits,
        o.error,
        tuple(sorted(o.arenas.items())),
        tuple(sorted(o.constants.items())),
        o.overlays,
        f"{o.latency_s:.9g}",
        f"{o.energy_j:.9g}",
    )


def fold(outcomes: list[Outcome], keep: Outcome | None) -> list[Outcome]:
    """The rows to show: a row with the same weights, activations and results as an earlier one is
    folded into it (overlays that inserted nothing, a schedule that kept the order)."""
    seen: set[tuple[object, ...]] = set()
    shown = []
    for o in outcomes:
        key = _result_key(o)
        if key in seen and o is not keep:
            continue
        seen.add(key)
        shown.append(o)
    return shown


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 else "-"


def render_table(target: Target, outcomes: list[Outcome], baseline: Outcome | None) -> str:
    """The placement table (Ambiq-style): one row per configuration."""
    names = [m.name for m in target.by_speed()]
    headers = ["config", "fits", *names, "overlays", "latency", "vs base", "energy", "vs base", "note"]
    rows = []
    for o in outcomes:
        c = o.config
        mark = " *" if o is baseline else ""
        if o.fits and baseline is not None:
            rel_l, rel_e = _ratio(o.latency_s, baseline.latency_s), _ratio(o.energy_j, baseline.energy_j)
        else:
            rel_l = rel_e = "-"
        rows.append(
            [
                c.name + mark,
                "yes" if o.fits else "no",
                *[(size(o.used(n)) if o.used(n) else "-") if o.fits else "" for n in names],
                (str(o.overlays) if c.overlays else "off") if o.fits else ("" if c.overlays else "off"),
                seconds(o.latency_s) if o.fits else "",
                rel_l,
                joules(o.energy_j) if o.fits else "",
                rel_e,
                "" if o.fits else shorten(o.error, 70),
            ]
        )
    right = {2 + i for i in range(len(names))} | {2 + len(names) + k for k in range(5)}
    return table(headers, rows, right=sorted(right))


def run(args: argparse.Namespace) -> int:
    """Sweep the configurations and print the table."""
    target = load_target(args.target)
    pins = parse_pins(args.pin)
    if args.time_limit < 0:
        raise UserError(f"--time-limit must be >= 0, got {args.time_limit}")
    if args.jobs < 0:
        raise UserError(f"--jobs must be >= 0, got {args.jobs}")
    jobs = default_jobs() if args.jobs == 0 else args.jobs
    everything = {m.name for m in target.memories}
    volatile = {m.name for m in target.volatile_memories}
    configs = configurations(
        target,
        schedules={"given": [False], "memory": [True], "both": [False, True]}[args.schedule],
        overlays={"on": [True], "off": [False], "both": [True, False]}[args.overlays],
        weights=_memories(target, args.weights, "weights", everything),
        activations=_memories(target, args.activations, "activations", volatile),
    )
    if args.baseline is not None and args.baseline not in {c.name for c in configs}:
        known = "; ".join(c.name for c in configs[:6])
        raise UserError(f"--baseline '{args.baseline}' is not one of the configurations (e.g. {known}, ...)")
    show = args.progress or sys.stderr.isatty()
    outcomes = explore(
        args.model,
        args.target,
        configs,
        jobs=jobs,
        progress=progress_bar() if show else None,
        graph_name=args.graph,
        pins=pins,
        objective=args.objective,
        time_limit=args.time_limit,
    )
    baseline = pick_baseline(target, outcomes, args.baseline)
    fits = sum(o.fits for o in outcomes)
    shown = outcomes if args.all else fold(outcomes, baseline)
    print(f"placements of {args.model} on {target.name} ({target.description})")
    print(render_table(target, shown, baseline))
    folded = (
        f" ({len(outcomes) - len(shown)} identical rows folded; --all lists them)"
        if len(shown) < len(outcomes)
        else ""
    )
    print(
        f"{fits} of {len(outcomes)} configurations fit{folded}; memory columns: bytes used (arena + constants); "
        f"* baseline: {baseline.config.name if baseline else 'none fits'}"
    )
    failed = [o for o in shown if not o.fits]
    if failed:
        print("does not fit:")
        for o in failed:
            print(f"  {o.config.name}: {o.error}")
    fitting = [o for o in outcomes if o.fits]
    if fitting:
        best_l = min(fitting, key=lambda o: (o.latency_s, o.energy_j))
        best_e = min(fitting, key=lambda o: (o.energy_j, o.latency_s))
        print(
            f"fastest: {best_l.config.name} ({seconds(best_l.latency_s)}); "
            f"least energy: {best_e.config.name} ({joules(best_e.energy_j)})"
        )
    if args.svg:
        bars = [
            Bar(
                o.config.name,
                o.fits,
                o.latency_s / baseline.latency_s if o.fits and baseline and baseline.latency_s else 0.0,
                o.energy_j / baseline.energy_j if o.fits and baseline and baseline.energy_j else 0.0,
                o.error,
                o is baseline,
            )
            for o in shown
        ]
        write_text(
            args.svg,
            render(bars, f"{args.model} on {target.name}", baseline.config.name if baseline else "-"),
        )
        print(f"wrote {args.svg}")
    if args.json:
        write_json(
            args.json,
            {
                "model": args.model,
                "target": target.name,
                "objective": args.objective,
                "baseline": baseline.config.name if baseline else None,
                "memories": [m.name for m in target.by_speed()],
                "configurations": [o.as_dict() for o in outcomes],
            },
        )
        print(f"wrote {args.json}")
    return 0
