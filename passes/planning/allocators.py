"""Allocators: greedy portfolio, local search, anytime exact search, and the plugin registry.

Every allocator maps a `Problem` to offsets; `plan_buffers` runs one, checks
the result with the independent verifier and wraps it in a `Plan`.

The default, ``portfolio``, is what `nn-plan-arena` uses:

1. greedy placement in seven orders (size, area, lifetime, conflicts, start,
   urgency, TFLite Micro's tie rule) times first fit / best fit, gaps below the
   first block included; keep the lowest;
2. a seeded local search that swaps buffers around the one reaching the top
   (Vela's bottleneck-directed hill climb), stopping at the lower bound;
3. an exact branch-and-bound over canonical placements (MiniMalloc's ideas,
   in C) that first tries the lower bound and then bisects the capacity,
   always keeping the best plan found, within the time limit.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from nnopt.compiler.diagnostics import UserError
from nnopt.passes.planning import _dsa
from nnopt.passes.planning.problem import Plan, PlanError, Problem, align_up, verify_plan

EXACT_MAX_BUFFERS = 4000
"""Above this many buffers the exact search is skipped (its search stack grows with n^2)."""

EXACT_HEURISTICS = ("WAT", "TAW", "TWA")
"""Static preorders the exact search round-robins over (W: lifetime, A: area, T: section total)."""


@dataclass(frozen=True)
class Options:
    """Knobs shared by the allocators."""

    time_limit: float = 10.0
    seed: int = 0
    exact: bool = True
    local_search: bool = True
    node_limit: int = 0
    """Bound each exact decision by search nodes instead of time (0: time only); nodes make runs reproducible."""


Allocator = Callable[[Problem, Options], list[int]]
"""An allocator returns one offset per buffer (it may also return a `Plan`)."""


def _arrays(problem: Problem) -> tuple[list[int], list[int], list[int], list[int]]:
    bs = problem.buffers
    return (
        [b.lower for b in bs],
        [b.upper for b in bs],
        [b.padded_size for b in bs],
        [b.alignment for b in bs],
    )


def _fixed(problem: Problem) -> list[int]:
    return [-1 if b.offset is None else b.offset for b in problem.buffers]


def place_in_order(problem: Problem, order: Sequence[int], best_fit: bool = False) -> tuple[list[int], int]:
    """Greedy placement of buffers in `order` (pinned ones first); returns offsets and arena bytes."""
    lo, hi, size, align = _arrays(problem)
    offsets, height = _dsa.greedy(lo, hi, size, align, list(order), _fixed(problem), best_fit)
    return offsets, height


def place_shaped(problem: Problem, order: Sequence[int]) -> tuple[list[int], int]:
    """First-fit placement of (possibly shaped) buffers in `order`, rectangle by rectangle.

    A buffer goes to the lowest aligned offset where none of its live parts
    meets a part of an already placed buffer that is live at the same time.
    Pinned buffers are placed first. Pure Python: used when a problem has
    shaped buffers, which the C allocators only see as whole rectangles.
    """
    bs = problem.buffers
    rects = [b.rects() for b in bs]
    placed: list[tuple[int, int, int, int]] = []  # absolute (lower, upper, start, end)
    offsets = [0] * len(bs)
    height = 0
    pinned = [i for i in range(len(bs)) if bs[i].offset is not None]
    for i in pinned + [i for i in order if bs[i].offset is None]:
        b = bs[i]
        if b.offset is not None:
            base = b.offset
        else:
            forbidden: list[tuple[int, int]] = []
            for lo, hi, s, e in rects[i]:
                for plo, phi, ps, pe in placed:
                    if plo < hi and lo < phi:
                        forbidden.append((ps - e, pe - s))  # base strictly between is a clash
            forbidden.sort()
            base = 0
            for lo_b, hi_b in forbidden:  # sorted by start, so one sweep finds the lowest free base
                if lo_b < base < hi_b:
                    base = align_up(hi_b, b.alignment)
        offsets[i] = base
        placed.extend((lo, hi, base + s, base + e) for lo, hi, s, e in rects[i])
        height = max(height, base + b.padded_size)
    return offsets, height


# --------------------------------------------------------------------------
# Greedy orders
# --------------------------------------------------------------------------


def _conflict_weight(problem: Problem) -> list[int]:
    """Sum of the sizes of the buffers each buffer conflicts with (sweep, O(n log n + k))."""
    bs = problem.buffers
    order = sorted(range(len(bs)), key=lambda i: bs[i].lower)
    weight = [0] * len(bs)
    live: list[int] = []
    for i in order:
        live = [j for j in live if bs[j].upper > bs[i].lower]
        for j in live:
            weight[i] += bs[j].padded_size
            weight[j] += bs[i].padded_size
        live.append(i)
    return weight


def _urgency(problem: Problem) -> list[int]:
    """Most bytes live at any step of each buffer's lifetime (Vela's urgency)."""
    profile = problem.live_profile()
    steps = [s for s, _ in profile]
    values = [v for _, v in profile]
    out = []
    for b in problem.buffers:
        i = max(0, bisect_right(steps, b.lower) - 1)
        best = 0
        while i < len(steps) and steps[i] < b.upper:
            best = max(best, values[i])
            i += 1
        out.append(best)
    return out


def bisect_right(seq: Sequence[int], x: int) -> int:
    """Index after the last element <= x (sorted `seq`)."""
    lo, hi = 0, len(seq)
    while lo < hi:
        mid = (lo + hi) // 2
        if seq[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def greedy_orders(problem: Problem) -> dict[str, list[int]]:
    """The orders of the greedy portfolio, by name."""
    bs = problem.buffers
    n = len(bs)
    idx = range(n)
    width = [b.upper - b.lower for b in bs]
    size = [b.padded_size for b in bs]
    conflict = _conflict_weight(problem)
    urgency = _urgency(problem)
    return {
        "size": sorted(idx, key=lambda i: (-size[i], -width[i], bs[i].lower, i)),
        "tflm": sorted(idx, key=lambda i: (-size[i], -i)),
        "area": sorted(idx, key=lambda i: (-size[i] * width[i], -size[i], i)),
        "lifetime": sorted(idx, key=lambda i: (-width[i], -size[i], i)),
        "conflicts": sorted(idx, key=lambda i: (-conflict[i], -size[i], i)),
        "start": sorted(idx, key=lambda i: (bs[i].lower, -size[i], i)),
        "urgency": sorted(idx, key=lambda i: (-urgency[i], -width[i], bs[i].lower, -size[i], i)),
    }


def greedy_portfolio(problem: Problem) -> tuple[list[int], int, str, list[int], dict[str, int]]:
    """Run every order with both placements; returns (offsets, arena, name, order, all results)."""
    results: dict[str, int] = {}
    best: tuple[list[int], int, str, list[int]] | None = None
    shaped = any(b.shaped for b in problem.buffers)
    for name, order in greedy_orders(problem).items():
        for best_fit in (False, True):
            offsets, height = place_in_order(problem, order, best_fit)
            label = f"{name}-{'bf' if best_fit else 'ff'}"
            results[label] = height
            if best is None or height < best[1]:
                best = (offsets, height, label, order)
        if shaped:
            offsets, height = place_shaped(problem, order)
            label = f"{name}-shaped"
            results[label] = height
            if best is None or height < best[1]:
                best = (offsets, height, label, order)
    assert best is not None
    return (*best, results)


# --------------------------------------------------------------------------
# Local search
# --------------------------------------------------------------------------


def local_search(
    problem: Problem,
    order: list[int],
    target: int,
    *,
    seed: int = 0,
    iterations: int = 3000,
    deadline: float | None = None,
) -> tuple[list[int], int, list[int], int]:
    """Bottleneck-directed swaps on a first-fit order (Vela-style hill climb).

    Repeatedly finds the buffer reaching the top, swaps it (or one of the
    buffers it conflicts with) with another conflicting buffer earlier in the
    order, and keeps the new order when the arena does not grow. Stops at
    `target`, after `iterations`, or at `deadline`. Deterministic for a seed.
    Returns (offsets, arena, order, iterations used).
    """
    rng = random.Random(seed)
    bs = problem.buffers
    neighbours: list[list[int]] = [[] for _ in bs]
    by_start = sorted(range(len(bs)), key=lambda i: bs[i].lower)
    live: list[int] = []
    for i in by_start:
        live = [j for j in live if bs[j].upper > bs[i].lower]
        for j in live:
            neighbours[i].append(j)
            neighbours[j].append(i)
        live.append(i)
    order = list(order)
    offsets, height = place_in_order(problem, order)
    pos = {b: k for k, b in enumerate(order)}
    used = 0
    stale = 0
    for used in range(1, iterations + 1):
        if height <= target or (deadline is not None and used % 16 == 0 and time.perf_counter() > deadline):
            break
        top = max(range(len(bs)), key=lambda i: (offsets[i] + bs[i].padded_size, -pos[i]))
        pool = [top, *neighbours[top]]
        if stale > 50 and len(pool) > 2:
            second = rng.choice(neighbours[rng.choice(pool)] or pool)
            pool.append(second)
        a = rng.choice(pool)
        b = rng.choice(pool)
        if a == b:
            b = rng.randrange(len(bs))
        if a == b:
            continue
        pa, pb = pos[a], pos[b]
        order[pa], order[pb] = b, a
        new_offsets, new_height = place_in_order(problem, order)
        if new_height <= height:
            stale = 0 if new_height < height else stale + 1
            offsets, height = new_offsets, new_height
            pos[a], pos[b] = pb, pa
        else:
            order[pa], order[pb] = a, b
            stale += 1
    return offsets, height, order, used


# --------------------------------------------------------------------------
# Exact search
# --------------------------------------------------------------------------


@dataclass
class ExactResult:
    """What the anytime exact search achieved."""

    offsets: list[int] | None
    arena: int
    proven_lower: int
    nodes: int
    calls: list[tuple[int, str, float]]


def solve_capacity(
    problem: Problem, capacity: int, time_limit: float, max_nodes: int = 0
) -> tuple[str, list[int] | None, int]:
    """Decide whether the problem fits `capacity` exactly: ('ok', offsets) / 'infeasible' / 'timeout'."""
    lo, hi, size, align = _arrays(problem)
    status, offsets, nodes = _dsa.solve(
        lo, hi, size, align, capacity, max(time_limit, 0.0), max_nodes, list(EXACT_HEURISTICS)
    )
    return status, offsets, nodes


def exact_search(
    problem: Problem,
    lower: int,
    upper: int,
    deadline: float,
    node_limit: int = 0,
    *,
    soft: int | None = None,
) -> ExactResult:
    """Anytime search between a proven lower bound and a known feasible arena.

    Targets bisect the interval between the smallest arena not yet shown
    feasible (`soft`, by default the lower bound itself, which is usually
    tight and so tried first) and the best arena. Each decision call gets half
    of the remaining time. Success lowers the best arena; a proof of
    infeasibility raises the proven bound; a timeout only moves the search
    target up. With `node_limit` each decision stops after that many nodes
    instead, so the result is the same on every machine.
    """
    best: list[int] | None = None
    calls: list[tuple[int, str, float]] = []
    nodes = 0
    align = max((b.alignment for b in problem.buffers), default=1)
    proven, hi = lower, upper  # no arena below `proven` exists; `hi` is feasible
    soft = lower if soft is None else soft
    while soft < hi:
        remaining = deadline - time.perf_counter()
        if remaining <= 0.02:
            break
        target = soft if not calls and soft == lower else max(soft, align_up((soft + hi) // 2, align))
        if target >= hi:
            target = hi - align if hi - align >= soft else soft
        budget = remaining * 0.5 if remaining > 1.0 else remaining
        t0 = time.perf_counter()
        status, offsets, used = solve_capacity(problem, target, budget, node_limit)
        calls.append((target, status, round(time.perf_counter() - t0, 3)))
        nodes += used
        if status == "ok":
            assert offsets is not None
            best = offsets
            hi = max(o + b.padded_size for o, b in zip(offsets, problem.buffers, strict=True))
        elif status == "infeasible":
            if soft == proven:
                proven = target + 1
            soft = target + 1
        else:
            soft = target + 1
    return ExactResult(best, hi, proven, nodes, calls)


# --------------------------------------------------------------------------
# Built-in allocators
# --------------------------------------------------------------------------


def portfolio(problem: Problem, options: Options) -> Plan:
    """Greedy portfolio; then the lower bound tried exactly; then local search and anytime exact search.

    The lower bound gets the first 40 % of the time budget because it is
    usually feasible, and then proves the plan optimal at once.
    """
    start = time.perf_counter()
    deadline = start + options.time_limit
    lower = problem.lower_bound()
    offsets, arena, label, order, results = greedy_portfolio(problem)
    stats: dict[str, object] = {"greedy": results, "best_greedy": label, "greedy_arena": arena}
    algorithm = f"greedy {label}"
    pinned = any(b.offset is not None for b in problem.buffers)
    shaped = any(b.shaped for b in problem.buffers)
    exact = options.exact and not pinned and not shaped and len(problem) <= EXACT_MAX_BUFFERS
    if pinned:
        stats["exact"] = "skipped: pinned buffers"
    elif shaped:
        # The C searches see shaped buffers as whole rectangles: their proofs would not hold.
        stats["exact"] = "skipped: shaped buffers"
    elif len(problem) > EXACT_MAX_BUFFERS:
        stats["exact"] = f"skipped: more than {EXACT_MAX_BUFFERS} buffers"
    proven_lower, soft = lower, lower
    calls: list[tuple[int, str, float]] = []
    nodes = 0
    if arena > lower and exact:
        t0 = time.perf_counter()
        status, found, nodes = solve_capacity(problem, lower, options.time_limit * 0.4, options.node_limit)
        calls.append((lower, status, round(time.perf_counter() - t0, 3)))
        if status == "ok" and found is not None:
            offsets, arena, algorithm = found, lower, "exact search"
        elif status == "infeasible":
            proven_lower = soft = lower + 1
        else:
            soft = lower + 1
    if arena > proven_lower and options.local_search and not shaped:
        # A fixed iteration budget keeps plans identical for a seed; the deadline only
        # cuts it short when the time limit is too small for it.
        iterations = min(3000, max(100, 400_000 // len(problem)))
        ls_deadline = time.perf_counter() + max(0.0, deadline - time.perf_counter()) * 0.5
        ls_off, ls_arena, _, used = local_search(
            problem, order, proven_lower, seed=options.seed, iterations=iterations, deadline=ls_deadline
        )
        stats["local_search"] = {"arena": ls_arena, "iterations": used}
        if ls_arena < arena:
            offsets, arena, algorithm = ls_off, ls_arena, "local search"
    if arena > proven_lower and exact:
        result = exact_search(problem, proven_lower, arena, deadline, options.node_limit, soft=soft)
        calls += result.calls
        nodes += result.nodes
        proven_lower = result.proven_lower
        if result.offsets is not None and result.arena < arena:
            offsets, arena, algorithm = result.offsets, result.arena, "exact search"
    if calls:
        stats["exact"] = {"calls": calls, "nodes": nodes, "proven_lower_bound": proven_lower}
    plan = Plan(problem, offsets, algorithm, lower, proven_optimal=arena <= proven_lower, stats=stats)
    plan.stats["proven_lower_bound"] = proven_lower
    return plan


def tflm_greedy(problem: Problem, options: Options) -> list[int]:
    """TFLite Micro's GreedyMemoryPlanner: size-descending (ties: later buffer first), first fit."""
    order = sorted(range(len(problem)), key=lambda i: (-problem.buffers[i].padded_size, -i))
    return place_in_order(problem, order)[0]


def greedy_size(problem: Problem, options: Options) -> list[int]:
    """Size-descending best fit (TFLite GPU's GREEDY_BY_SIZE)."""
    return place_in_order(problem, greedy_orders(problem)["size"], best_fit=True)[0]


def linear(problem: Problem, options: Options) -> list[int]:
    """No reuse: every buffer gets its own bytes (one buffer per tensor)."""
    offsets: list[int] = []
    top = max((b.offset + b.padded_size for b in problem.buffers if b.offset is not None), default=0)
    for b in problem.buffers:
        if b.offset is not None:
            offsets.append(b.offset)
            continue
        top = align_up(top, b.alignment)
        offsets.append(top)
        top += b.padded_size
    return offsets


def exact_only(problem: Problem, options: Options) -> Plan:
    """Exact search from the size-ordered first-fit plan (no portfolio, no local search)."""
    return portfolio(problem, Options(options.time_limit, options.seed, exact=True, local_search=False))


BUILTIN: dict[str, Allocator | Callable[[Problem, Options], Plan]] = {
    "portfolio": portfolio,
    "tflm": tflm_greedy,
    "greedy-size": greedy_size,
    "linear": linear,
    "exact": exact_only,
}

ENTRY_POINT_GROUP = "nnopt.allocators"


def get_allocator(name: str) -> Callable[[Problem, Options], list[int] | Plan]:
    """A built-in allocator, one published under ``nnopt.allocators``, or ``path/to/file.py:function``."""
    if name in BUILTIN:
        return BUILTIN[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                found: Callable[[Problem, Options], list[int] | Plan] = ep.load()
            except Exception as exc:
                raise UserError(f"cannot load allocator '{name}' ({ep.value}): {exc}") from None
            return found
    if ":" in name and name.split(":", 1)[0].endswith(".py"):
        path, func = name.rsplit(":", 1)
        if not Path(path).is_file():
            raise UserError(f"allocator file not found: {path}")
        spec = importlib.util.spec_from_file_location(f"nnopt_allocator_{abs(hash(path))}", path)
        if spec is None or spec.loader is None:
            raise UserError(f"cannot load allocator file {path}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise UserError(f"cannot load allocator file {path}: {type(exc).__name__}: {exc}") from None
        if not callable(getattr(module, func, None)):
            raise UserError(f"{path} has no function '{func}'")
        loaded: Callable[[Problem, Options], list[int] | Plan] = getattr(module, func)
        return loaded
    known = ", ".join([*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))])
    raise UserError(f"unknown allocator '{name}'; available: {known} (or FILE.py:FUNCTION)")


def plan_buffers(problem: Problem, allocator: str = "portfolio", options: Options | None = None) -> Plan:
    """Run an allocator, verify its result independently, and return the plan."""
    options = options or Options()
    start = time.perf_counter()
    lower = problem.lower_bound()
    if not problem.buffers:
        return Plan(problem, [], allocator, 0, proven_optimal=True)
    result = get_allocator(allocator)(problem, options)
    plan = result if isinstance(result, Plan) else Plan(problem, list(result), allocator, lower)
    plan.seconds = time.perf_counter() - start
    if plan.algorithm != allocator and allocator != "portfolio":
        plan.algorithm = f"{allocator}: {plan.algorithm}"
    if plan.arena_bytes <= lower:
        plan.proven_optimal = True
    try:
        verify_plan(problem, plan.offsets, capacity=None)
    except PlanError as exc:
        raise UserError(f"allocator '{allocator}' produced an invalid plan: {exc}") from None
    return plan
