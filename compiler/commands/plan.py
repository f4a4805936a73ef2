"""``nnopt plan``: plan the activation memory of a model (or a bare buffer set) and explain the plan.

::

    nnopt plan MODEL [--json FILE] [--svg FILE] [--time-limit S] [--allocator NAME] [--seed N]
                     [--no-merge] [--no-schedule] [--capacity [SPACE=]N] [--output FILE.csv]
    nnopt plan --buffers FILE.csv [--alignment N] [--capacity N] [--output FILE.csv] ...
    nnopt plan MODEL.tflite --tflm [--write-tflite OUT.tflite] ...

A model goes through the planning pipeline (nn-schedule, nn-bufferize,
nn-merge-buffers, nn-plan-arena; each when available and not switched off).
A ``--buffers`` file in MiniMalloc's CSV format (``id,lower,upper,size``,
half-open lifetimes, an optional ``offset`` column pins buffers) is planned
as it is. With ``--tflm`` (implied by ``--write-tflite``) a ``.tflite`` file
is planned the way TFLite Micro sees it (its op order, its lifetimes, no
in-place sharing), and ``--write-tflite`` stores the plan as the
``OfflineMemoryAllocation`` metadata stock TFLite Micro reads.

The report gives, per memory space: the liveness lower bound, the arena,
the overhead, whether the plan is proven optimal (or the best proven bound),
the allocator that won and the planning time; then one line per buffer and
an ASCII timeline of the arena. ``--json`` and ``--svg`` write the same plan
for machines and as a picture. ``--capacity`` makes it a fit-or-fail
question: exit 1 with one message (proven infeasible, or not found within the
time limit) when the buffers do not fit. Nothing is written unless planning
succeeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Any

from nnopt.compiler.diagnostics import UserError, atomic_output
from nnopt.compiler.report.plan_svg import render_svg
from nnopt.compiler.report.plan_text import SpaceReport, render_text, report_json
from nnopt.passes.planning.allocators import Options, get_allocator, plan_buffers, solve_capacity
from nnopt.passes.planning.problem import Buffer, Plan, PlanError, Problem, read_csv, verify_plan, write_csv

DEFAULT_TIME_LIMIT = 10.0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``nnopt plan``."""
    parser = subparsers.add_parser(
        "plan",
        help="plan a model's activation memory and print the plan",
        description="Plan the activation memory of a model (or of a bare buffer set in MiniMalloc's CSV "
        "format) and print a report: lower bound, arena, overhead, optimality, per-buffer table, timeline.",
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", help="model file (.nn, .mlir, .tflite, .onnx)")
    parser.add_argument(
        "--buffers",
        metavar="FILE.csv",
        default=None,
        help="plan a bare buffer set instead: CSV id,lower,upper,size[,offset] with half-open lifetimes",
    )
    parser.add_argument("--json", metavar="FILE", default=None, help="write the plan as JSON")
    parser.add_argument("--svg", metavar="FILE", default=None, help="write a picture of the arena over time")
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE.csv",
        default=None,
        help="write the planned buffers as CSV with an offset column (MiniMalloc's format)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        metavar="S",
        help=f"seconds the exact search may use per memory space, and again for a --capacity "
        f"decision (default {DEFAULT_TIME_LIMIT:g})",
    )
    parser.add_argument(
        "--allocator",
        default="portfolio",
        metavar="NAME",
        help="portfolio (default) | tflm | greedy-size | linear | exact | an nnopt.allocators entry "
        "point | FILE.py:FUNCTION",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the local search (default 0)"
    )
    parser.add_argument(
        "--node-limit",
        type=int,
        default=0,
        metavar="N",
        help="bound each exact-search decision by N nodes instead of time (same plan on every machine)",
    )
    parser.add_argument(
        "--alignment",
        type=int,
        default=None,
        metavar="N",
        help="buffer alignment in bytes, a power of two (default 16 for models, 1 for --buffers)",
    )
    parser.add_argument(
        "--capacity",
        action="append",
        default=[],
        metavar="[SPACE=]N",
        help="fail unless the buffers fit N bytes (every space, or the named one; repeatable)",
    )
    parser.add_argument(
        "--target",
        default=None,
        metavar="NAME|FILE.toml",
        help="place the buffers in a target's memories (nn-assign-memspace) and plan one arena per memory "
        "within its capacities (see nnopt targets)",
    )
    parser.add_argument(
        "--no-schedule", action="store_true", help="keep the model's op order (skip nn-schedule)"
    )
    parser.add_argument(
        "--no-merge", action="store_true", help="no in-place buffer sharing (skip nn-merge-buffers)"
    )
    parser.add_argument(
        "--graph", default=None, metavar="NAME", help="the nn.graph to plan (when there are several)"
    )
    parser.add_argument(
        "--tflm",
        action="store_true",
        help="plan a .tflite file as TFLite Micro runs it (file op order, TFLM lifetimes, no in-place)",
    )
    parser.add_argument(
        "--write-tflite",
        metavar="OUT.tflite",
        default=None,
        help="write the model with the plan as TFLite Micro's OfflineMemoryAllocation metadata (implies --tflm)",
    )
    parser.add_argument(
        "--width", type=int, default=80, metavar="N", help="columns of the ASCII timeline (default 80)"
    )
    parser.add_argument(
        "--timeline-rows",
        type=int,
        default=100,
        metavar="N",
        help="at most N timeline rows, evenly spaced, peak included (0: all; default 100)",
    )


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """Checked command-line options."""

    alignment: int
    options: Options
    capacities: dict[str | None, int]
    """Space name (None: every space) -> capacity in bytes."""

    def capacity(self, space: str) -> int | None:
        """The capacity that applies to `space`."""
        return self.capacities.get(space, self.capacities.get(None))


def _parse_capacities(items: list[str]) -> dict[str | None, int]:
    capacities: dict[str | None, int] = {}
    for item in items:
        space, sep, value = item.rpartition("=")
        key = space.strip() if sep else None
        if sep and not key:
            raise UserError(f"--capacity '{item}': missing memory space name before '='")
        try:
            number = int(value.replace("_", "").replace(",", ""), 0)
        except ValueError:
            raise UserError(
                f"--capacity '{item}': expected a number of bytes, like 65536 or sram=65536"
            ) from None
        if number < 0:
            raise UserError(f"--capacity must be a non-negative number of bytes, got {number}")
        if key in capacities:
            raise UserError(f"--capacity given twice for {'every space' if key is None else repr(key)}")
        capacities[key] = number
    return capacities


def _check_output_path(option: str, path: str | None) -> None:
    if path is None:
        return
    if os.path.isdir(path):
        raise UserError(f"{option} '{path}' is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"{option} '{path}': folder '{parent}' does not exist")


def settings(args: argparse.Namespace) -> Settings:
    """Validate the options (before any work is done)."""
    if args.buffers is None and args.model is None:
        raise UserError("give a MODEL to plan, or a buffer set with --buffers FILE.csv")
    if args.buffers is not None and args.model is not None:
        raise UserError("give either a MODEL or --buffers FILE.csv, not both")
    if args.time_limit < 0 or args.time_limit != args.time_limit:
        raise UserError(f"--time-limit must be a non-negative number of seconds, got {args.time_limit}")
    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.node_limit < 0:
        raise UserError(f"--node-limit must be a non-negative integer, got {args.node_limit}")
    if args.width < 10:
        raise UserError(f"--width must be at least 10 columns, got {args.width}")
    if args.timeline_rows < 0:
        raise UserError(f"--timeline-rows must be >= 0, got {args.timeline_rows}")
    alignment = args.alignment if args.alignment is not None else (1 if args.buffers is not None else 16)
    if alignment <= 0 or alignment & (alignment - 1):
        raise UserError(f"--alignment must be a power of two, got {alignment}")
    tflm = args.tflm or args.write_tflite is not None
    if tflm:
        if args.buffers is not None or not str(args.model).lower().endswith(".tflite"):
            raise UserError("--tflm and --write-tflite need a .tflite MODEL")
        if args.alignment is not None and args.alignment != 16:
            raise UserError("TFLite Micro aligns every buffer to 16 bytes; --alignment cannot change that")
    if args.buffers is not None and (args.no_merge or args.no_schedule or args.graph or args.target):
        raise UserError("--no-merge, --no-schedule, --graph and --target apply to models, not to --buffers")
    if tflm and args.target:
        raise UserError("--target does not apply to --tflm plans (TFLite Micro has one arena)")
    if args.target:
        from nnopt.compiler.targets import load_target

        load_target(args.target)  # an unknown or invalid target fails here, before any work
    for option, path in (
        ("--json", args.json),
        ("--svg", args.svg),
        ("--output", args.output),
        ("--write-tflite", args.write_tflite),
    ):
        _check_output_path(option, path)
    if args.write_tflite is not None and os.path.abspath(args.write_tflite) == os.path.abspath(args.model):
        raise UserError("--write-tflite must name a new file, not the input model")
    get_allocator(args.allocator)  # an unknown allocator fails here, before any work
    options = Options(time_limit=args.time_limit, seed=args.seed, node_limit=args.node_limit)
    return Settings(alignment, options, _parse_capacities(args.capacity))


# --------------------------------------------------------------------------
# Fit or fail
# --------------------------------------------------------------------------


def fit_capacity(problem: Problem, plan: Plan, capacity: int, options: Options) -> tuple[Plan | None, str]:
    """A plan within `capacity`, or None and why not (proven infeasible / not found in time).

    The best plan is kept when it fits. Otherwise the lower bounds decide when
    they can (the liveness bound, or a bound the exact search proved); else an
    exact decision search at the capacity itself runs for the time limit.
    """
    if plan.arena_bytes <= capacity:
        return plan, ""
    lower = problem.lower_bound()
    if lower > capacity:
        return None, f"proven infeasible: the liveness lower bound is {lower:,} bytes"
    proven = plan.stats.get("proven_lower_bound")
    if isinstance(proven, int) and proven > capacity:
        return None, f"proven infeasible by exhaustive search: no plan below {proven:,} bytes exists"
    if any(b.offset is not None for b in problem.buffers):
        return None, (
            f"no plan found: the best has {plan.arena_bytes:,} bytes, and the exact search does not "
            "handle pinned offsets"
        )
    start = time.perf_counter()
    status, offsets, _ = solve_capacity(problem, capacity, options.time_limit, options.node_limit)
    seconds = time.perf_counter() - start
    if status == "ok" and offsets is not None:
        try:
            verify_plan(problem, offsets, capacity)
        except PlanError as exc:  # pragma: no cover - the exact search is verified elsewhere
            raise UserError(f"the exact search produced an invalid plan: {exc}") from None
        fitted = Plan(
            problem,
            list(offsets),
            "exact search at the capacity",
            lower,
            proven_optimal=max(o + b.padded_size for o, b in zip(offsets, problem.buffers, strict=True))
            <= lower,
            seconds=plan.seconds + seconds,
            stats={**plan.stats, "capacity_search": {"status": status, "seconds": round(seconds, 3)}},
        )
        return fitted, ""
    if status == "infeasible":
        return None, "proven infeasible by exhaustive search"
    limit = (
        f"{options.node_limit:,}-node limit" if options.node_limit else f"{options.time_limit:g} s time limit"
    )
    raise_ = "--node-limit" if options.node_limit else "--time-limit"
    return None, f"no plan found within the {limit}; one may exist: raise {raise_}"


def _describe(b: Buffer) -> str:
    held = [v for v in b.values if v != b.name]
    return f"{b.name}{' [' + ', '.join(held[:3]) + (', ...' if len(held) > 3 else '') + ']' if held else ''} ({b.padded_size:,} B)"


def _peak_text(problem: Problem, labels: list[str] | None) -> str:
    step = problem.peak_step()
    live = sorted(problem.live_at(step), key=lambda b: (-b.padded_size, b.name))
    listing = ", ".join(_describe(b) for b in live[:8])
    more = f" and {len(live) - 8} more" if len(live) > 8 else ""
    what = f" ({labels[step]})" if labels is not None and 0 <= step < len(labels) else ""
    return f"the peak is at step {step}{what} where {listing}{more} are live"


def _no_fit(
    space: str | None, problem: Problem, plan: Plan, capacity: int, reason: str, labels: list[str] | None
) -> UserError:
    where = f"'{space}' " if space else ""
    need = max(plan.arena_bytes, problem.lower_bound())
    return UserError(
        f"the buffers do not fit {where}capacity {capacity:,} bytes ({reason}); best plan {need:,} bytes, "
        f"short by {need - capacity:,}; {_peak_text(problem, labels)}"
    )


def _report(
    space: str,
    problem: Problem,
    plan: Plan,
    settings_: Settings,
    labels: list[str] | None,
    capacity: int | None,
) -> SpaceReport:
    if capacity is not None:
        fitted, reason = fit_capacity(problem, plan, capacity, settings_.options)
        if fitted is None:
            raise _no_fit(space, problem, plan, capacity, reason, labels)
        plan = fitted
    return SpaceReport(space, plan, labels, capacity)


# --------------------------------------------------------------------------
# The three kinds of input
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """What a run produced: reports, a title, JSON meta fields, and files to write."""

    title: str
    reports: list[SpaceReport]
    meta: dict[str, Any]
    tflite: bytes | None = None


def plan_csv(args: argparse.Namespace, s: Settings) -> Result:
    """Plan a bare buffer set."""
    path = args.buffers
    if os.path.isdir(path):
        raise UserError(f"cannot read '{path}': it is a directory")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise UserError(f"cannot read '{path}': no such file") from None
    except UnicodeDecodeError:
        raise UserError("not a text (CSV) file", path) from None
    except OSError as exc:
        raise UserError(f"cannot read '{path}': {exc.strerror or exc}") from None
    problem = read_csv(text, path, s.alignment)
    unknown = set(s.capacities) - {None}
    if unknown:
        raise UserError(
            f"--capacity names space(s) {', '.join(sorted(map(str, unknown)))}; a buffer file has one space"
        )
    plan = plan_buffers(problem, args.allocator, s.options)
    rep = _report("buffers", problem, plan, s, None, s.capacities.get(None))
    meta = {"input": path, "kind": "buffers", "alignment": s.alignment}
    return Result(f"plan of {len(problem)} buffers from {path} (alignment {s.alignment})", [rep], meta)


def _available_passes() -> dict[str, Any]:
    from nnopt.passes import get_all_passes

    return get_all_passes()


def _make_pass(factory: Any, alignment: int) -> Any:
    cls = factory()
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    return cls(alignment=alignment) if "alignment" in names else cls()


def plan_model(args: argparse.Namespace, s: Settings) -> Result:
    """Load a model, run the planning pipeline, plan every memory space of the graph."""
    from nnopt.compiler.commands.run import select_graph
    from nnopt.compiler.frontends import load_model
    from nnopt.compiler.registry import make_context
    from nnopt.passes.analysis.lifetimes import DEFAULT_SPACE, compute_lifetimes
    from nnopt.passes.plan_arena import plan_graph

    module = load_model(args.model)
    graph = select_graph(module, args.graph)
    available = _available_passes()
    ctx = make_context()
    pipeline: list[str] = []
    skipped: list[str] = []
    for name, off in (
        ("nn-schedule", args.no_schedule),
        ("nn-bufferize", False),
        ("nn-merge-buffers", args.no_merge),
    ):
        if off:
            skipped.append(f"{name} (switched off)")
        elif name not in available:
            skipped.append(f"{name} (not available)")
        else:
            _make_pass(available[name], s.alignment).apply(ctx, module)
            pipeline.append(name)
    target_caps: dict[str, int] = {}
    if args.target:
        from nnopt.compiler.targets import load_target
        from nnopt.passes.assign_memspace import arena_capacities, assign_graph

        target = load_target(args.target)
        assign_graph(graph, target, target_spec=args.target)
        pipeline.append(f"nn-assign-memspace{{target={args.target}}}")
        target_caps = arena_capacities(graph, target)
    plans = plan_graph(graph, alignment=s.alignment, allocator=args.allocator, options=s.options)
    pipeline.append("nn-plan-arena")
    unknown = {k for k in s.capacities if k is not None} - set(plans)
    if unknown:
        raise UserError(
            f"--capacity names unknown memory space(s) {', '.join(sorted(map(str, unknown)))} "
            f"(spaces: {', '.join(sorted(plans)) or 'none'})"
        )
    lifetimes = compute_lifetimes(graph)
    labels = list(lifetimes.steps)
    reports = []
    for space in sorted(plans, key=lambda sp: (sp != DEFAULT_SPACE, sp)):
        plan = plans[space]
        limits = [c for c in (s.capacity(space), target_caps.get(space)) if c is not None]
        reports.append(_report(space, plan.problem, plan, s, labels, min(limits) if limits else None))
    name = graph.sym_name.data
    for rep in reports:
        rep.facts.append(("pipeline", ", ".join(pipeline)))
        if skipped:
            rep.facts.append(("skipped", ", ".join(skipped)))
    meta = {
        "input": args.model,
        "kind": "model",
        "graph": name,
        "target": args.target,
        "alignment": s.alignment,
        "pipeline": pipeline,
        "skipped": skipped,
    }
    return Result(f"memory plan of @{name} ({args.model})", reports, meta)


def plan_tflm_model(args: argparse.Namespace, s: Settings) -> Result:
    """Plan a .tflite file as TFLite Micro plans it; optionally build the file with the plan in it."""
    from nnopt.compiler.tflm_plan import plan_tflm, read_tflm_graph, tflm_plan_from, write_offline_plan

    path = args.model
    if os.path.isdir(path):
        raise UserError(f"cannot read '{path}': it is a directory")
    if not os.path.exists(path):
        raise UserError(f"cannot read '{path}': no such file")
    with open(path, "rb") as handle:
        data = handle.read()
    graph = read_tflm_graph(data, path)
    unknown = {k for k in s.capacities if k is not None} - {"arena"}
    if unknown:
        raise UserError(
            f"--capacity names space(s) {', '.join(sorted(map(str, unknown)))}; TFLM has one: 'arena'"
        )
    tp = plan_tflm(graph, args.allocator, s.options)
    capacity = s.capacity("arena")
    if capacity is not None:
        fitted, reason = fit_capacity(tp.plan.problem, tp.plan, capacity, s.options)
        if fitted is None:
            raise _no_fit("arena", tp.plan.problem, tp.plan, capacity, reason, graph.scopes)
        if fitted is not tp.plan:
            tp = tflm_plan_from(graph, fitted)
        if tp.predicted_head > capacity:
            raise UserError(
                f"the tensors fit capacity {capacity:,} bytes, but TFLite Micro's own placement of the "
                f"scratch buffers around them would make the head {tp.predicted_head:,} bytes"
            )
    rep = SpaceReport("arena", tp.plan, graph.scopes, capacity)
    n_planned = sum(t.planned for t in graph.tensors)
    roles = [t.role for t in graph.tensors]
    rep.facts.append(
        (
            "tensors",
            f"{graph.tensor_count} in the file: {n_planned} planned by nnopt, {roles.count('constant')} "
            f"constant, {roles.count('variable')} variable (TFLM keeps them), {len(graph.scratch)} scratch "
            "request(s) (placed online by TFLM)",
        )
    )
    rep.facts.append(("TFLM's own head", f"{tp.tflm_head:,} B (its greedy planner, replayed)"))
    rep.facts.append(
        ("head with this plan", f"{tp.predicted_head:,} B (what TFLM's print_allocations reports)")
    )
    rep.facts.append(
        (
            "saving",
            f"{tp.tflm_head - tp.predicted_head:,} B ({100 * (1 - tp.predicted_head / tp.tflm_head) if tp.tflm_head else 0:.1f} %)",
        )
    )
    rep.extra["tflm"] = {
        "tensor_count": graph.tensor_count,
        "offsets": tp.offsets,
        "tflm_head": tp.tflm_head,
        "predicted_head": tp.predicted_head,
        "scratch": [
            {"op": r.op, "bytes": r.bytes, "reason": r.reason, "offset": off}
            for r, off in zip(graph.scratch, tp.scratch_offsets, strict=False)
        ],
        "written": args.write_tflite,
    }
    out = write_offline_plan(data, tp.words(), path) if args.write_tflite is not None else None
    meta = {"input": path, "kind": "tflm", "alignment": 16, "pipeline": ["tflm"]}
    title = (
        f"TFLite Micro memory plan of {path} ({len(graph.ops)} ops, the file's order, no in-place sharing)"
    )
    return Result(title, [rep], meta, out)


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int | None:
    """Run ``nnopt plan``."""
    s = settings(args)
    if args.buffers is not None:
        result = plan_csv(args, s)
    elif args.tflm or args.write_tflite is not None:
        result = plan_tflm_model(args, s)
    else:
        result = plan_model(args, s)

    # Render everything before writing anything.
    text = render_text(result.reports, result.title, args.width, args.timeline_rows)
    outputs: list[tuple[str, str, str | bytes]] = []
    if args.json is not None:
        doc = report_json(result.reports, result.meta)
        outputs.append((args.json, "w", json.dumps(doc, indent=1) + "\n"))
    if args.svg is not None:
        outputs.append((args.svg, "w", render_svg(result.reports, result.title)))
    if args.output is not None:
        if len(result.reports) != 1:
            raise UserError(
                f"--output writes one buffer set, but the plan has {len(result.reports)} memory spaces"
            )
        rep = result.reports[0]
        outputs.append((args.output, "w", write_csv(rep.plan.problem, rep.plan.offsets)))
    if result.tflite is not None and args.write_tflite is not None:
        outputs.append((args.write_tflite, "wb", result.tflite))
    for path, mode, content in outputs:
        with atomic_output(path, mode) as handle:
            handle.write(content)  # type: ignore[attr-defined]
    print(text)
    for path, _, _ in outputs:
        print(f"wrote {path}")
    return 0
