"""Live intervals of tensors and buffers in the current op order (the `nn-lifetimes` analysis).

Steps number the executed ops of a graph (constants and the terminator are
not steps). A value defined at step ``i`` and last read at step ``j`` is live
on ``[i, j]`` (inclusive). Graph inputs are live from step 0, graph outputs to
the last step, state tensors (graph arguments marked ``nn.variable``) for the
whole graph, and an op's scratch memory during its own step only. An op's
inputs and outputs are therefore always live together: sharing memory between
them is decided by nn-merge-buffers, not by the lifetimes.

After nn-bufferize each *buffer* is live on the hull of the intervals of the
values placed in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.ir import BlockArgument, Operation, OpResult, SSAValue

from nnopt.dialects import nn
from nnopt.passes.analysis.overlap import overlap_pair_in
from nnopt.passes.analysis.places import Loc, byte_span
from nnopt.passes.planning.problem import Buffer, Problem

DEFAULT_SPACE = "sram"
"""The memory space of buffers that have none (single-memory planning)."""


@dataclass(frozen=True)
class Interval:
    """One tensor or buffer: `size` bytes needed from step `first` to step `last` (inclusive)."""

    name: str
    size: int
    first: int
    last: int
    kind: str = "activation"
    buffer: str | None = None
    values: tuple[str, ...] = ()
    parts: tuple[tuple[int, int, int, int], ...] = ()
    """A shaped buffer's values as ``(first, last, start byte, end byte)``: each reserved only while live."""

    @property
    def length(self) -> int:
        """Number of steps the interval covers."""
        return self.last - self.first + 1


@dataclass
class Lifetimes:
    """Per-step op names, per-value intervals and (once bufferized) per-buffer intervals."""

    graph: str
    steps: list[str]
    values: list[Interval]
    buffers: list[Interval] = field(default_factory=list)
    spaces: dict[str, str] = field(default_factory=dict)
    alignments: dict[str, int] = field(default_factory=dict)

    def intervals(self) -> list[Interval]:
        """Buffers when the graph is bufferized, else values."""
        return self.buffers if self.buffers else self.values

    def problem(self, alignment: int = 16, space: str | None = None) -> Problem:
        """The packing problem of the buffers (or values), optionally of one memory space."""
        items = [
            Buffer(
                iv.name,
                iv.size,
                iv.first,
                iv.last + 1,
                max(alignment, self.alignments.get(iv.name, 1)),
                kind=iv.kind,
                values=iv.values,
                parts=tuple((f, last + 1, lo, hi) for f, last, lo, hi in iv.parts),
            )
            for iv in self.intervals()
            if space is None or self.spaces.get(iv.name, DEFAULT_SPACE) == space
        ]
        return Problem(items, name=self.graph)

    def lower_bound(self, alignment: int = 16) -> int:
        """Most (aligned) bytes live at one step."""
        return self.problem(alignment).lower_bound()

    def table(self) -> str:
        """A readable report: one line per interval, then the peak."""
        items = sorted(self.intervals(), key=lambda iv: (iv.first, -iv.size, iv.name))
        width = max((len(iv.name) for iv in items), default=4)
        lines = [f"{'name':<{width}}  {'bytes':>10}  {'first':>5}  {'last':>5}  kind"]
        for iv in items:
            extra = f"  [{', '.join(iv.values)}]" if iv.values and list(iv.values) != [iv.name] else ""
            lines.append(f"{iv.name:<{width}}  {iv.size:>10,}  {iv.first:>5}  {iv.last:>5}  {iv.kind}{extra}")
        problem = self.problem()
        lines.append(
            f"{len(self.steps)} steps; liveness lower bound {problem.lower_bound():,} bytes at step {problem.peak_step()}"
        )
        return "\n".join(lines)


def executed_ops(graph: nn.GraphOp) -> list[Operation]:
    """The ops that are steps, in block order (not constants, not the terminator)."""
    return [op for op in graph.block.ops if not isinstance(op, nn.ConstOp | nn.OutputOp)]


def value_name(value: SSAValue, fallback: str) -> str:
    """A readable name for a value: its model name, its SSA name, or `fallback`."""
    if isinstance(value, BlockArgument):
        graph = value.block.parent_op()
        if isinstance(graph, nn.GraphOp):
            return graph.input_names()[value.index]
    if isinstance(value, OpResult):
        loc = value.op.location
        desc = getattr(loc, "desc", None)
        if desc is not None and getattr(desc, "data", None):
            return str(desc.data)
    return value.name_hint or fallback


def _is_constant(value: SSAValue) -> bool:
    return isinstance(value, OpResult) and isinstance(value.op, nn.ConstOp)


def compute_lifetimes(graph: nn.GraphOp) -> Lifetimes:
    """Intervals of every activation value (and buffer, once bufferized) of `graph`."""
    ops = executed_ops(graph)
    step = {op: i for i, op in enumerate(ops)}
    last_step = max(len(ops) - 1, 0)
    outputs = set(graph.output.values)
    variables = set()
    if graph.arg_attrs is not None:
        for i, attrs in enumerate(graph.arg_attrs.data):
            if nn.VARIABLE_KEY in attrs.data:
                variables.add(graph.block.args[i])

    def last_use(value: SSAValue, default: int) -> int:
        if value in outputs or value in variables:
            return last_step
        last = default
        for use in value.uses:
            user = graph.block.find_ancestor_op_in_block(use.operation)
            if user is not None and user in step:
                last = max(last, step[user])
        return last

    values: list[Interval] = []
    placed: list[tuple[Interval, nn.PlaceAttr, SSAValue]] = []
    names: set[str] = set()
    output_names = dict(zip(graph.output.values, graph.output_names(), strict=True))

    def unique(name: str) -> str:
        base, k = name, 1
        while name in names:
            name = f"{base}#{k}"
            k += 1
        names.add(name)
        return name

    def add(value: SSAValue, first: int, fallback: str) -> None:
        kind = (
            "variable"
            if value in variables
            else "input"
            if isinstance(value, BlockArgument)
            else "activation"
        )
        if value in outputs:
            kind = "output"
        place = nn.value_place(value)
        iv = Interval(
            unique(output_names.get(value) or value_name(value, fallback)),
            nn.tensor_bytes(value),
            first,
            last_use(value, first),
            kind,
            place.buffer.data if place is not None else None,
        )
        values.append(iv)
        if place is not None:
            placed.append((iv, place, value))

    for i, arg in enumerate(graph.block.args):
        add(arg, 0, f"input{i}")
    for op in ops:
        for k, result in enumerate(op.results):
            if not _is_constant(result):
                add(result, step[op], f"%{step[op]}" + (f".{k}" if k else ""))

    lifetimes = Lifetimes(
        graph.sym_name.data,
        [
            f"{op.name} {value_name(op.results[0], f'%{step[op]}') if op.results else ''}".strip()
            for op in ops
        ],
        values,
    )
    buffers = nn.graph_buffers(graph)
    if not buffers:
        return lifetimes

    hull: dict[str, list[int]] = {}
    members: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    by_buffer: dict[str, list[tuple[Interval, nn.PlaceAttr, SSAValue]]] = {}
    for iv, place, value in placed:
        by_buffer.setdefault(place.buffer.data, []).append((iv, place, value))
    for iv, place, _ in placed:
        name = place.buffer.data
        lo_hi = hull.setdefault(name, [iv.first, iv.last])
        lo_hi[0] = min(lo_hi[0], iv.first)
        lo_hi[1] = max(lo_hi[1], iv.last)
        members.setdefault(name, []).append(iv.name)
        rank = ("activation", "input", "output", "variable")
        if rank.index(iv.kind) > rank.index(kinds.get(name, "activation")):
            kinds[name] = iv.kind
    for op in ops:
        scratch = op.attributes.get(nn.SCRATCH_KEY)
        if isinstance(scratch, nn.PlaceAttr):
            name = scratch.buffer.data
            lo_hi = hull.setdefault(name, [step[op], step[op]])
            lo_hi[0] = min(lo_hi[0], step[op])
            lo_hi[1] = max(lo_hi[1], step[op])
            kinds.setdefault(name, "scratch")
    for name, buf in buffers.items():
        if name not in hull:
            continue  # a buffer nothing lives in takes no memory
        lo, hi = hull[name]
        kind = buf.kind.data if buf.kind.data in ("scratch", "overlay") else kinds.get(name, buf.kind.data)
        group = by_buffer.get(name, [])
        offsets = {value: place.offset.data for _, place, value in group}
        parts: tuple[tuple[int, int, int, int], ...] = ()
        if overlap_pair_in(offsets, offsets.__getitem__):
            parts = tuple(
                (
                    iv.first,
                    iv.last,
                    *byte_span(nn.shape_of(value), nn.element_bytes(nn.elem_of(value)), Loc.of(place)),
                )
                for iv, place, value in group
            )
        lifetimes.buffers.append(
            Interval(name, buf.size.data, lo, hi, kind, name, tuple(members.get(name, ())), parts)
        )
        lifetimes.alignments[name] = buf.align.data
        if buf.space.data:
            lifetimes.spaces[name] = buf.space.data
    return lifetimes
