"""`nn-schedule`: reorder each graph's ops into a topological order that needs less memory.

Ops are pure, so only data dependences constrain the order. The pass

1. searches orders of least liveness peak (`nnopt.passes.analysis.schedule_dp`:
   exact dynamic programming over the sets of executed ops, segment by segment
   between the points every order passes through, bounded by the peak of a
   beam search and by `max-states` states per segment; beyond, the beam
   search of width `beam` improved by exact re-ordering of sliding windows),
   with two tie-breaks: least live-bytes area, closest to the original order;
2. keeps the `candidates` best distinct orders whose peak is not above the
   original's, and, with ``evaluate=true``, ranks them together with the
   original order by the arena they achieve: each order is applied to a clone
   that is bufferized, merged in place (`nn-merge-buffers`, when
   installed) and planned with a fast deterministic allocator setting
   (the greedy portfolio alone: no local or exact search). An order wins on the
   smallest (arena, lower bound); it is eligible only when its lower bound is
   not above the original's; ties keep the original order. Without
   evaluation, the order of least peak wins (ties keep the original);
3. rewrites the block only when the winner differs from the original order:
   constants then move to just before their first reader (constants no op
   reads go first), and the terminator stays last.

Linear chains have one topological order and are never touched; the pass is
deterministic. It runs on tensor-level graphs: a bufferized graph is an error,
because in-place merges depend on the order. ``report=true`` prints the peak
and arena of the original and the chosen order to stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, OpResult
from xdsl.passes import ModulePass

from nnopt.compiler.diagnostics import UserError, op_location
from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import executed_ops
from nnopt.passes.analysis.schedule_dp import TIES, DepGraph, best_orders, dep_graph
from nnopt.passes.bufferize import bufferize_graph
from nnopt.passes.planning.allocators import Options

EVAL_OPTIONS = Options(time_limit=0.2, exact=False, local_search=False)
"""Allocator setting used to rank candidate orders: the greedy portfolio alone (fast, deterministic)."""


@dataclass
class Candidate:
    """One order considered for a graph."""

    label: str
    order: tuple[int, ...]
    peak: int
    bound: int | None = None
    arena: int | None = None


@dataclass
class ScheduleReport:
    """What `schedule_graph` found and chose."""

    graph: str
    ops: int
    segments: int
    exact: bool
    states: int
    seconds: float
    candidates: list[Candidate] = field(default_factory=list)
    chosen: int = 0
    """Index into `candidates` (0 is the original order)."""

    @property
    def original(self) -> Candidate:
        """The original order."""
        return self.candidates[0]

    @property
    def best(self) -> Candidate:
        """The chosen order."""
        return self.candidates[self.chosen]

    @property
    def changed(self) -> bool:
        """True when the chosen order differs from the original."""
        return self.chosen != 0

    def lines(self) -> list[str]:
        """A readable summary."""
        how = "exact" if self.exact else "beam search"
        out = [
            f"nn-schedule @{self.graph}: {self.ops} ops, {self.segments} segments, {how} "
            f"({self.states:,} states, {self.seconds:.3f} s)"
        ]
        for i, c in enumerate(self.candidates):
            arena = "" if c.arena is None else f", lower bound {c.bound:,} B, arena {c.arena:,} B"
            mark = "  <- chosen" if i == self.chosen else ""
            out.append(f"  {c.label:<18} peak {c.peak:,} B{arena}{mark}")
        return out


def reorder_graph(graph: nn.GraphOp, ops: Sequence[Operation], order: Sequence[int]) -> bool:
    """Put the executed `ops` of `graph` in `order` (indices into `ops`); False when nothing moves.

    Constants go just before their first reader; constants no op reads go
    first; the terminator stays last.
    """
    if list(order) == list(range(len(ops))):
        return False
    block = graph.block
    term = graph.output
    consts = [op for op in block.ops if isinstance(op, nn.ConstOp)]
    executed = set(ops)
    sequence: list[Operation] = [
        c for c in consts if not any(use.operation in executed for use in c.results[0].uses)
    ]
    placed: set[Operation] = set(sequence)
    for v in order:
        op = ops[v]
        for operand in op.operands:
            const = operand.op if isinstance(operand, OpResult) else None
            if isinstance(const, nn.ConstOp) and const not in placed:
                placed.add(const)
                sequence.append(const)
        sequence.append(op)
    for op in sequence:
        block.detach_op(op)
    for op in sequence:
        block.insert_op_before(op, term)
    return True


def merge_in_place(graph: nn.GraphOp, alignment: int) -> None:
    """Run nn-merge-buffers' merging on a bufferized graph (when that pass is installed)."""
    try:
        from nnopt.passes.merge_buffers import merge_graph  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # pragma: no cover - nn-merge-buffers is part of nnopt
        return
    merge_graph(graph, alignment=alignment)


def evaluate_order(
    graph: nn.GraphOp, order: Sequence[int], *, alignment: int = 16, options: Options = EVAL_OPTIONS
) -> tuple[int, int]:
    """(lower bound, planned arena) of `graph` run in `order`, planned on a clone (summed over spaces)."""
    from nnopt.passes.plan_arena import plan_graph

    clone = graph.clone()
    reorder_graph(clone, executed_ops(clone), order)
    bufferize_graph(clone, alignment)
    merge_in_place(clone, alignment)
    plans = plan_graph(clone, alignment=alignment, options=options)
    return sum(p.lower_bound for p in plans.values()), sum(p.arena_bytes for p in plans.values())


def candidate_orders(
    dg: DepGraph, *, max_states: int, beam: int, candidates: int
) -> tuple[list[Candidate], bool, int]:
    """Distinct orders from the searches, best peak first, none above the original's peak.

    Returns the candidates (the original order excluded), whether the search
    was exact, and the number of states it used.
    """
    original = tuple(range(dg.n))
    original_peak = dg.peak(original)
    labels = {"area": "least area", "original": "nearest original"}
    schedules = best_orders(dg, max_states=max_states, beam=beam, ties=TIES)
    runs = [(labels[tie], s) for tie, s in zip(TIES, schedules, strict=True)]
    seen = {original}
    found: list[tuple[int, int, Candidate]] = []
    for i, (label, s) in enumerate(runs):
        if s.order in seen or s.peak > original_peak:
            continue
        seen.add(s.order)
        found.append((s.peak, i, Candidate(label, s.order, s.peak)))
    found.sort(key=lambda t: (t[0], t[1]))
    return [c for _, _, c in found[: max(candidates, 0)]], schedules[0].exact, schedules[0].states


def schedule_graph(
    graph: nn.GraphOp,
    *,
    max_states: int = 100_000,
    beam: int = 128,
    candidates: int = 3,
    evaluate: bool = True,
    alignment: int = 16,
    options: Options = EVAL_OPTIONS,
    measure_original: bool = False,
) -> ScheduleReport:
    """Choose an order for one graph and apply it; returns what was considered.

    With `evaluate`, the original order is planned too when there are other
    candidates, or always with `measure_original` (for reports).
    """
    if nn.BUFFERS_KEY in graph.attributes:
        raise UserError(
            f"nn-schedule: @{graph.sym_name.data} is already bufferized; run nn-schedule before nn-bufferize",
            op_location(graph),
        )
    start = time.perf_counter()
    dg, ops = dep_graph(graph, alignment)
    original = Candidate("original", tuple(range(dg.n)), dg.peak(range(dg.n)))
    found, exact, states = candidate_orders(dg, max_states=max_states, beam=beam, candidates=candidates)
    report = ScheduleReport(
        graph.sym_name.data, dg.n, len(dg.segments()), exact, states, 0.0, [original, *found]
    )
    if evaluate and (found or measure_original):
        for c in report.candidates:
            c.bound, c.arena = evaluate_order(graph, c.order, alignment=alignment, options=options)
        assert original.bound is not None and original.arena is not None
        best = 0
        for i, c in enumerate(report.candidates):
            assert c.bound is not None and c.arena is not None
            b = report.candidates[best]
            assert b.bound is not None and b.arena is not None
            if c.bound <= original.bound and (c.arena, c.bound) < (b.arena, b.bound):
                best = i
        report.chosen = best
    else:
        best = 0
        for i, c in enumerate(report.candidates):
            if c.peak < report.candidates[best].peak:
                best = i
        report.chosen = best
    reorder_graph(graph, ops, report.best.order)
    report.seconds = time.perf_counter() - start
    return report


@dataclass(frozen=True)
class SchedulePass(ModulePass):
    """Reorder each graph's ops into a topological order that lowers the memory it needs."""

    name = "nn-schedule"

    max_states: int = 100_000
    """DP states one segment may use before it is searched by beam search instead of exactly."""
    beam: int = 128
    """States kept per step by the beam search."""
    candidates: int = 3
    """Orders (besides the original) compared by their planned arena."""
    evaluate: bool = True
    """Rank candidates by bufferizing and planning them (else by their liveness peak only)."""
    report: bool = False
    """Print peak and arena before and after to stderr."""
    alignment: int = 16
    """Buffer alignment used for sizes (a power of two), as in nn-bufferize."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise UserError(f"nn-schedule: alignment must be a power of two, got {self.alignment}")
        if self.max_states < 1:
            raise UserError(f"nn-schedule: max-states must be >= 1, got {self.max_states}")
        if self.beam < 1:
            raise UserError(f"nn-schedule: beam must be >= 1, got {self.beam}")
        if self.candidates < 0:
            raise UserError(f"nn-schedule: candidates must be >= 0, got {self.candidates}")
        for graph in list(op.walk()):
            if isinstance(graph, nn.GraphOp):
                result = schedule_graph(
                    graph,
                    max_states=self.max_states,
                    beam=self.beam,
                    candidates=self.candidates,
                    evaluate=self.evaluate,
                    alignment=self.alignment,
                    measure_original=self.report,
                )
                if self.report:
                    for line in result.lines():
                        print(f"// {line}", file=sys.stderr)
