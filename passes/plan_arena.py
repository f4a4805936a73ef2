"""`nn-plan-arena`: offsets of every buffer inside one arena per memory space.

Runs an allocator (default: the portfolio of greedy heuristics, local search
and anytime exact search, see `nnopt.passes.planning.allocators`) on the
buffers of each memory space, checks the plan with the independent verifier,
and records the result in the IR: each `#nn.buffer` gets its space and
offset, the graph gets ``nn.arenas = {space = bytes}`` and ``nn.plan`` with
the lower bound, the allocator and whether the plan is proven optimal.
Unbufferized graphs are bufferized first (one buffer per value).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import BoolAttr, DictionaryAttr, IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.ir import Attribute
from xdsl.passes import ModulePass

from nnopt.compiler.diagnostics import UserError, op_location
from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import DEFAULT_SPACE, Lifetimes, compute_lifetimes
from nnopt.passes.bufferize import bufferize_graph
from nnopt.passes.planning.allocators import Options, plan_buffers
from nnopt.passes.planning.problem import Plan, Problem

PLAN_KEY = "nn.plan"
"""Graph attribute: per space, the lower bound, arena, allocator and optimality of the plan."""


def capacity_error(
    graph: nn.GraphOp, lifetimes: Lifetimes, problem: Problem, space: str, capacity: int, arena: int
) -> UserError:
    """The one message for a model that does not fit: peak step, what is live there, shortfall."""
    step = problem.peak_step()
    live = sorted(problem.live_at(step), key=lambda b: -b.padded_size)
    listing = ", ".join(f"{b.name} ({b.padded_size:,} B)" for b in live[:8])
    more = f" and {len(live) - 8} more" if len(live) > 8 else ""
    op_name = lifetimes.steps[step] if step < len(lifetimes.steps) else "the graph inputs"
    need = max(arena, problem.lower_bound())
    return UserError(
        f"'{space}' needs {need:,} bytes but has {capacity:,} (short by {need - capacity:,}); "
        f"the peak is at step {step} ({op_name}) where {listing}{more} are live",
        op_location(graph),
    )


def plan_graph(
    graph: nn.GraphOp,
    *,
    alignment: int = 16,
    allocator: str = "portfolio",
    options: Options | None = None,
    capacities: dict[str, int] | None = None,
) -> dict[str, Plan]:
    """Plan every memory space of a graph and write the result into the IR."""
    bufferize_graph(graph, alignment)
    lifetimes = compute_lifetimes(graph)
    buffers = nn.graph_buffers(graph)
    spaces = sorted({b.space.data or DEFAULT_SPACE for b in buffers.values()})
    plans: dict[str, Plan] = {}
    planned: set[str] = set()
    new_buffers: dict[str, Attribute] = dict(buffers)
    arenas: dict[str, Attribute] = {}
    info: dict[str, Attribute] = {}
    for space in spaces:
        problem = lifetimes.problem(alignment, space)
        capacity = (capacities or {}).get(space)
        problem.capacity = capacity
        plan = plan_buffers(problem, allocator, options)
        if capacity is not None and plan.arena_bytes > capacity:
            raise capacity_error(graph, lifetimes, problem, space, capacity, plan.arena_bytes)
        plans[space] = plan
        for buf, offset in zip(problem.buffers, plan.offsets, strict=True):
            new_buffers[buf.name] = buffers[buf.name].with_plan(space, offset)
            planned.add(buf.name)
        arenas[space] = IntegerAttr(plan.arena_bytes, i64)
        info[space] = DictionaryAttr(
            {
                "arena": IntegerAttr(plan.arena_bytes, i64),
                "lower_bound": IntegerAttr(plan.lower_bound, i64),
                "allocator": StringAttr(plan.algorithm),
                "optimal": BoolAttr.from_bool(plan.proven_optimal),
            }
        )
    # Buffers nothing lives in take no memory: place them at 0 in their space.
    for name, attr in buffers.items():
        if name not in planned:
            space = attr.space.data or DEFAULT_SPACE
            new_buffers[name] = attr.with_plan(space, 0)
            arenas.setdefault(space, IntegerAttr(0, i64))
    graph.attributes[nn.BUFFERS_KEY] = DictionaryAttr(new_buffers)
    graph.attributes[nn.ARENAS_KEY] = DictionaryAttr(arenas)
    graph.attributes[PLAN_KEY] = DictionaryAttr(info)
    return plans


@dataclass(frozen=True)
class PlanArenaPass(ModulePass):
    """Place every buffer at an offset in one arena per memory space (verified, anytime-optimal)."""

    name = "nn-plan-arena"

    alignment: int = 16
    """Buffer alignment in bytes (a power of two)."""
    allocator: str = "portfolio"
    """portfolio | tflm | greedy-size | linear | exact | an `nnopt.allocators` entry point | FILE.py:FUNC."""
    time_limit: float = 10.0
    """Seconds the exact search may use per memory space."""
    seed: int = 0
    """Seed of the local search (plans are deterministic for a seed)."""
    capacity: int = 0
    """Fail unless everything fits this many bytes (0: no limit)."""
    node_limit: int = 0
    """Bound each exact-search decision by nodes instead of time, for plans identical on every machine."""
    target: str = ""
    """Plan within a target's memories (preset or FILE.toml; default: the graph's nn.target, if any)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from nnopt.compiler.targets import load_target
        from nnopt.passes.assign_memspace import arena_capacities, graph_target

        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise UserError(f"nn-plan-arena: alignment must be a power of two, got {self.alignment}")
        if self.time_limit < 0:
            raise UserError(f"nn-plan-arena: time-limit must be >= 0, got {self.time_limit}")
        options = Options(time_limit=self.time_limit, seed=self.seed, node_limit=self.node_limit)
        for graph in op.walk():
            if isinstance(graph, nn.GraphOp):
                capacities = {DEFAULT_SPACE: self.capacity} if self.capacity > 0 else None
                target = self.target or graph_target(graph)
                if target:
                    capacities = arena_capacities(graph, load_target(target))
                plan_graph(
                    graph,
                    alignment=self.alignment,
                    allocator=self.allocator,
                    options=options,
                    capacities=capacities,
                )
