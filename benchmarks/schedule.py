"""Section: nn-schedule, what a memory-aware op order buys, and what it costs.

For every example model, every model of ../shared/models nnopt reads, and a
set of synthetic branching graphs (`benchmarks.schedule_graphs`):

* the liveness peak the schedule search minimises (before merging), in the
  file's order and in nn-schedule's;
* the lower bound and the arena after nn-bufferize + nn-merge-buffers +
  nn-plan-arena (portfolio, 2 s), in both orders;
* how the search went (segments, exact or heuristic, DP states) and the
  median wall time of nn-schedule (default options).

A second table measures the heuristic alone on the graphs too wide for the
default state budget: beam search only, beam search + exact windows, and the
exact optimum with a large budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from xdsl.dialects.builtin import ModuleOp

from benchmarks.common import Column, Context, SectionResult, Table, median, short_error
from benchmarks.models import example_models, load, only_graph, shared_models
from benchmarks.schedule_graphs import randwire, reversed_branching, towers

NAME = "schedule"
TITLE = "Scheduling: memory-aware op order (nn-schedule)"
DEFAULT_REPEAT = 3
PLAN_SECONDS = 2.0

SYNTHETIC: tuple[tuple[str, Callable[[], str]], ...] = (
    ("branching_inception, wide path first", reversed_branching),
    ("towers 4x6", lambda: towers(4, 6)),
    ("towers 6x5", lambda: towers(6, 5)),
    ("towers 8x4, widest first", lambda: towers(8, 4, reverse=True)),
    ("towers 10x4", lambda: towers(10, 4)),
    ("randwire 16", lambda: randwire(16)),
    ("randwire 32", lambda: randwire(32)),
    ("randwire 32 (seed 1)", lambda: randwire(32, seed=1)),
    ("randwire 64", lambda: randwire(64)),
)


def _parse(text: str, name: str) -> ModuleOp:
    from nnopt.compiler.frontend.lower import parse_nn
    from nnopt.compiler.registry import make_context

    return parse_nn(text.encode(), f"{name}.nn", make_context())


def _planned(module: ModuleOp) -> tuple[int, int]:
    """(lower bound, arena) after bufferize + merge + plan-arena on a clone."""
    from nnopt.passes.bufferize import bufferize_graph
    from nnopt.passes.plan_arena import plan_graph
    from nnopt.passes.planning.allocators import Options
    from nnopt.passes.schedule import merge_in_place

    graph = only_graph(module.clone())
    bufferize_graph(graph, 16)
    merge_in_place(graph, 16)
    plans = plan_graph(graph, options=Options(time_limit=PLAN_SECONDS))
    return sum(p.lower_bound for p in plans.values()), sum(p.arena_bytes for p in plans.values())


def _measure(table: Table, label: str, module: ModuleOp, reps: int) -> None:
    from nnopt.passes.analysis.schedule_dp import dep_graph
    from nnopt.passes.schedule import schedule_graph

    graph = only_graph(module)
    dg, _ = dep_graph(graph)
    peak0 = dg.peak(range(dg.n))
    lb0, arena0 = _planned(module)
    times: list[float] = []
    scheduled = module
    report = None
    for _ in range(reps):
        clone = module.clone()
        start = time.perf_counter()
        report = schedule_graph(only_graph(clone))
        times.append(time.perf_counter() - start)
        scheduled = clone
    assert report is not None
    dg1, _ = dep_graph(only_graph(scheduled))
    lb1, arena1 = _planned(scheduled)
    table.add(
        model=label,
        ops=dg.n,
        segments=report.segments,
        exact=report.exact,
        states=report.states,
        peak0=peak0,
        peak1=dg1.peak(range(dg1.n)),
        lb0=lb0,
        lb1=lb1,
        arena0=arena0,
        arena1=arena1,
        gain=(arena0 - arena1) / arena0 if arena0 else None,
        changed=report.changed,
        seconds=median(times),
    )


EXACT_STATES = 3_000_000
EXACT_MAX_OPS = 80


def _heuristic_rows(ctx: Context, table: Table, graphs: list[tuple[str, ModuleOp]]) -> None:
    from nnopt.passes.analysis.schedule_dp import best_orders, dep_graph

    for label, module in graphs:
        dg, _ = dep_graph(only_graph(module))
        if best_orders(dg)[0].exact:
            continue
        ctx.log(f"[schedule] heuristic quality: {label}")
        row = table.add(model=label, ops=dg.n)
        settings = (("beam", 1), ("windows", 100_000), ("exact", EXACT_STATES))
        for key, max_states in settings:
            if key == "exact" and dg.n > EXACT_MAX_OPS:
                table.unavailable(row, key, f"not tried: more than {EXACT_MAX_OPS} ops", "not tried")
                continue
            start = time.perf_counter()
            found = best_orders(dg, max_states=max_states)
            row[f"{key}_s"] = time.perf_counter() - start
            peak = min(s.peak for s in found)
            row[key] = peak if key != "exact" or found[0].exact else f"> budget ({peak:,})"
        exact = row.get("exact")
        if isinstance(exact, int):
            row["gap"] = (row["windows"] - exact) / exact


def run(ctx: Context) -> SectionResult:
    """Measure nn-schedule on the example, shared and synthetic models."""
    from benchmarks.common import now

    reps = ctx.reps(DEFAULT_REPEAT)
    result = SectionResult(NAME, TITLE, "python -m benchmarks --only schedule", now())
    result.setup = [
        f"nn-schedule with its default options (exact DP within 100,000 states per segment, beam 128, "
        f"3 candidates ranked by arena); median of {reps} runs.",
        f"Lower bound and arena: nn-bufferize + nn-merge-buffers + nn-plan-arena (portfolio, {PLAN_SECONDS:g} s) "
        "on the original order and on nn-schedule's.",
        "Peak: the liveness peak nn-schedule minimises (aligned sizes and scratch, before merging).",
    ]
    columns = [
        Column("model", "model"),
        Column("ops", "ops", "int"),
        Column("segments", "segments", "int"),
        Column("exact", "exact", "bool"),
        Column("states", "DP states", "int"),
        Column("peak0", "peak, file order", "bytes"),
        Column("peak1", "peak, scheduled", "bytes"),
        Column("lb0", "LB, file order", "bytes"),
        Column("lb1", "LB, scheduled", "bytes"),
        Column("arena0", "arena, file order", "bytes"),
        Column("arena1", "arena, scheduled", "bytes"),
        Column("gain", "arena saved", "pct"),
        Column("seconds", "nn-schedule", "s"),
    ]
    models = Table("Models (example .nn, ../shared/models)", list(columns))
    synthetic = Table("Synthetic branching graphs", list(columns))
    for model in [*example_models(ctx), *shared_models(ctx)]:
        ctx.log(f"[schedule] {model.label}")
        try:
            module = load(model)
            only_graph(module)
        except Exception as exc:
            row = models.add(model=model.label)
            models.unavailable(row, "ops", short_error(exc))
            continue
        _measure(models, model.label, module, reps)
    built: list[tuple[str, ModuleOp]] = []
    for label, make in SYNTHETIC:
        if ctx.quick and len(built) >= 2:
            break
        ctx.log(f"[schedule] {label}")
        module = _parse(make(), label.split(",")[0].replace(" ", "_"))
        built.append((label, module))
        _measure(synthetic, label, module, reps)
    heuristic = Table(
        "The heuristic on graphs beyond the default state budget "
        "(least peak of both tie-breaks, bytes; search seconds)",
        [
            Column("model", "model"),
            Column("ops", "ops", "int"),
            Column("beam", "beam only", "bytes"),
            Column("beam_s", "s", "s"),
            Column("windows", "beam + windows (nn-schedule)", "bytes"),
            Column("windows_s", "s", "s"),
            Column("exact", f"exact ({EXACT_STATES // 1_000_000}M states)", "bytes"),
            Column("exact_s", "s", "s"),
            Column("gap", "default over exact", "pct"),
        ],
    )
    if not ctx.quick:
        _heuristic_rows(ctx, heuristic, built)
    result.tables = [models, synthetic, heuristic]
    result.commentary = _commentary(models, synthetic)
    return result


def _commentary(models: Table, synthetic: Table) -> list[str]:
    lines = []
    measured = [r for r in models.rows if isinstance(r.get("arena0"), int)]
    changed = [r["model"] for r in measured if r.get("changed")]
    lines.append(
        f"{len(measured)} models measured; nn-schedule changed the order of {len(changed)}"
        + (f" ({', '.join(changed)})." if changed else ": their file order is already optimal for the peak.")
    )
    worse = [r["model"] for r in [*measured, *synthetic.rows] if r.get("arena1", 0) > r.get("arena0", 0)]
    lines.append(
        "No arena grew."
        if not worse
        else f"**Arena grew** on {', '.join(worse)} (ranking planner vs final planner)."
    )
    gains = [r["gain"] for r in synthetic.rows if isinstance(r.get("gain"), float)]
    if gains:
        lines.append(f"Synthetic branching graphs: arena saved {min(gains):.1%} to {max(gains):.1%}.")
    slow = max((r["seconds"] for r in [*measured, *synthetic.rows] if "seconds" in r), default=0.0)
    lines.append(f"Slowest nn-schedule run: {slow:.3f} s.")
    return lines
