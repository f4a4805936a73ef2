"""Section 3: the MiniMalloc "challenging" packing instances (../shared/benchmarks/minimalloc).

Each CSV is planned by nnopt's default allocator (the portfolio: greedy
heuristics, local search, anytime exact search) with a time limit, and by two
greedy baselines: TFLite Micro's planner (``tflm``) and size-ordered best fit
(``greedy-size``). The decision "does it fit the capacity?" is also asked of
the exact search directly, which is what MiniMalloc's own solver answers in
1-10 s per instance.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from benchmarks.common import Column, Context, SectionResult, Table, median, timed

NAME = "minimalloc"
TITLE = "MiniMalloc instances"
DEFAULT_REPEAT = 3

CAPACITY = 1_048_576
"""Capacity of every instance."""
TARGETS = {"challenging_C": 1_039_360}
"""Instances with a smaller known packing (MiniMalloc's minimise-capacity mode)."""


def instances(ctx: Context) -> list[Path]:
    """The CSV files (filtered by ``--models``; one in quick mode)."""
    if not ctx.minimalloc_dir.is_dir():
        return []
    found = [p for p in sorted(ctx.minimalloc_dir.glob("*.csv")) if ctx.wants(p.name)]
    return found[:1] if ctx.quick else found


def run(ctx: Context) -> SectionResult:
    """Plan every instance."""
    from nnopt.passes.planning.allocators import Options, plan_buffers, solve_capacity
    from nnopt.passes.planning.problem import read_csv, verify_plan

    reps = ctx.reps(DEFAULT_REPEAT)
    limit = min(ctx.time_limit, 5.0) if ctx.quick else ctx.time_limit
    result = SectionResult(NAME, TITLE, "", "")
    result.setup = [
        f"`plan_buffers(problem, 'portfolio', Options(time_limit={limit:g}))` on each CSV (alignment 1, "
        f"half-open lifetimes as in the files), median wall time of {reps} runs in one process (the planner is "
        "single-threaded: one core). Plans are deterministic for a seed; every plan passes `verify_plan`.",
        f'"fit s" is the exact search asked the decision question directly (`solve_capacity` at the target, '
        f"{limit:g} s limit), median of {reps}: the number comparable to MiniMalloc's 1-10 s per instance on this "
        "kind of machine.",
        "`tflm` is TFLite Micro's greedy (size-descending first fit, later buffer first on ties) and "
        "`greedy-size` size-descending best fit, both re-implemented in nnopt.",
    ]
    table = Table(
        f"Arena bytes per instance (capacity {CAPACITY:,})",
        [
            Column("instance", "instance"),
            Column("buffers", "buffers", "int"),
            Column("lb", "LB", "bytes"),
            Column("target", "target", "bytes"),
            Column("arena", "nnopt", "bytes"),
            Column("optimal", "proven optimal"),
            Column("fits", "within target"),
            Column("seconds", "nnopt s", "s"),
            Column("fit_seconds", "fit s", "s"),
            Column("tflm", "tflm greedy", "bytes"),
            Column("tflm_over", "tflm/LB", "ratio"),
            Column("greedy_size", "greedy-size", "bytes"),
            Column("greedy_over", "greedy-size/LB", "ratio"),
        ],
    )
    result.tables = [table]
    for path in instances(ctx):
        name = path.stem
        ctx.log(f"[minimalloc] {name}")
        problem = read_csv(path.read_text(), path.name)
        lb = problem.lower_bound()
        target = TARGETS.get(name, CAPACITY)
        times, plan = [], None
        for _ in range(reps):
            seconds, plan = timed(partial(plan_buffers, problem, "portfolio", Options(time_limit=limit)))
            times.append(seconds)
        assert plan is not None
        verify_plan(problem, plan.offsets)
        fit_times, statuses = [], []
        for _ in range(reps):
            seconds, answer = timed(partial(solve_capacity, problem, target, limit))
            fit_times.append(seconds)
            statuses.append(answer[0])
        tflm = plan_buffers(problem, "tflm").arena_bytes
        greedy = plan_buffers(problem, "greedy-size").arena_bytes
        table.add(
            instance=name,
            buffers=len(problem),
            lb=lb,
            target=target,
            arena=plan.arena_bytes,
            optimal=plan.proven_optimal,
            fits=plan.arena_bytes <= target,
            seconds=median(times),
            fit_seconds=median(fit_times)
            if all(s == "ok" for s in statuses)
            else f"{statuses[0]} ({limit:g} s)",
            tflm=tflm,
            tflm_over=tflm / lb,
            greedy_size=greedy,
            greedy_over=greedy / lb,
            algorithm=plan.algorithm,
            times=times,
            fit_times=fit_times,
            fit_status=statuses,
            proven_lower_bound=plan.stats.get("proven_lower_bound"),
        )
        ctx.log(
            f"  LB {lb:,} nnopt {plan.arena_bytes:,} in {median(times):.2f} s (fit {median(fit_times):.2f} s)"
        )
    result.commentary = _commentary(table, limit)
    return result


def _commentary(table: Table, limit: float) -> list[str]:
    rows = table.rows
    if not rows:
        return ["The instances are not available (../shared/benchmarks/minimalloc is absent)."]
    fits = [r for r in rows if r["fits"]]
    fast = [r for r in rows if r["seconds"] < 60]
    fit_fast = [r for r in rows if isinstance(r["fit_seconds"], float) and r["fit_seconds"] < 60]
    optimal = [r for r in rows if r["optimal"]]
    lines = [
        f'Target "all within 1,048,576 (C within 1,039,360)": {len(fits)} of {len(rows)} instances '
        + (
            "**met**."
            if len(fits) == len(rows)
            else "— **not met** on " + ", ".join(r["instance"] for r in rows if not r["fits"]) + "."
        ),
        f'Target "each under 60 s on one core": the full portfolio finishes in under 60 s on {len(fast)} of '
        f"{len(rows)}; the fit decision on {len(fit_fast)} of {len(rows)}.",
        f"Proven optimal: {len(optimal)} of {len(rows)} (arena = lower bound, or the exact search proved that no "
        "smaller arena exists).",
    ]
    open_rows = [r for r in rows if not r["optimal"]]
    for r in open_rows:
        fit_text = "it fits the 1 MiB capacity" if r["fits"] else "it does **not** fit the 1 MiB capacity"
        lines.append(
            f"{r['instance']}: the lower bound {r['lb']:,} is not reached: nnopt's best is {r['arena']:,} "
            f"({r['arena'] / r['lb'] - 1:+.1%} over it; proven bound {r.get('proven_lower_bound') or r['lb']:,}), "
            f"and the portfolio spends its {limit:g} s limit trying to close the gap; {fit_text}."
        )
    worst = max(r["tflm_over"] for r in rows)
    best = min(r["tflm_over"] for r in rows)
    lines.append(
        f"The greedy baselines end {best - 1:.0%}-{worst - 1:.0%} (tflm) above the lower bound, as measured in "
        "the planning notes (29-41 %)."
    )
    return lines
