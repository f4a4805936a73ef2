"""Execute a planned graph inside real arenas: one numpy byte array per memory space.

A planned graph (``nn.arenas`` and planned ``#nn.buffer``s, see nn-plan-arena)
says where every activation lives. `run_planned` allocates each arena, fills
it with a canary byte, copies the graph inputs into their places, and runs
the ops in order: each op reads its operands from ndarray *views* of the
arena at ``buffer.offset + place.offset`` with the place's strides, computes
with the interpreter's kernels, and writes its result into its own view.
Outputs are copied out at the end. A planning or merging bug therefore
corrupts results, exactly as it would on the device.

Two checks make such bugs loud instead of merely wrong (``check=True``):

* every value is compared, byte for byte, with what its producer wrote each
  time it is read (and at the end, for outputs): a value overwritten while
  still live raises `ArenaError` naming the value, the op that read it and the
  buffer;
* an op whose result overlaps one of its operands must be able to run in
  place the way a C kernel would: each access is given a time (an
  elementwise op reads element ``i`` then writes element ``i``; softmax works
  row by row; a depthwise convolution with multiplier 1 channel by channel
  through its scratch; a concat copies input ``k`` into slice ``k``; a
  convolution or pool without scratch pixel by pixel, forwards or backwards,
  see `nnopt.passes.analysis.overlap`; every other op reads everything while
  it writes), and a byte written before its last read is an in-place hazard
  (`ArenaError`). Scratch memory is filled with a
  second pattern before each op that has one, as a kernel would use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import BlockArgument, Operation, SSAValue

from nnopt.backends.numpy.arrays import const_value, element_dtype
from nnopt.backends.numpy.interpreter import DumpHook, _bind_inputs, make_kernel, select_graph, value_names
from nnopt.compiler.diagnostics import UserError, op_location
from nnopt.dialects import nn
from nnopt.passes.analysis.overlap import WINDOW_OPS
from nnopt.passes.analysis.overlap import access_times as window_access_times
from nnopt.passes.analysis.places import Loc, byte_addresses, byte_span

CANARY = 0xA5
"""Byte every arena holds before the run (unwritten memory shows up as this pattern)."""
SCRATCH_FILL = 0x5A
"""Byte written over an op's scratch memory before it runs."""

_ROWWISE = (nn.SoftmaxOp,)
_ELEMENTWISE = (
    nn.ReluOp,
    nn.Relu6Op,
    nn.ClampOp,
    nn.LogisticOp,
    nn.TanhOp,
    nn.QuantizeOp,
    nn.DequantizeOp,
    nn.ReshapeOp,
)
_BINARY = (nn.AddOp, nn.SubOp, nn.MulOp)


class ArenaError(UserError):
    """A planned graph that cannot run as planned: a live value overwritten, or an in-place hazard."""


class _Arenas:
    """The arenas of one run and the places of the graph's values in them."""

    def __init__(self, graph: nn.GraphOp, canary: int) -> None:
        self.graph = graph
        self.buffers = nn.graph_buffers(graph)
        sizes = nn.graph_arenas(graph)
        if not sizes or not self.buffers:
            raise UserError(
                f"graph @{graph.sym_name.data} is not planned (no {nn.ARENAS_KEY}): run nn-plan-arena"
            )
        for name, buf in self.buffers.items():
            if not buf.planned:
                raise UserError(f"buffer '{name}' of @{graph.sym_name.data} has no offset: run nn-plan-arena")
            space = buf.space.data
            if space not in sizes or buf.offset.data + buf.size.data > sizes[space]:
                raise UserError(f"buffer '{name}' does not fit the '{space}' arena of @{graph.sym_name.data}")
        self.memory = {space: np.full(size, canary, dtype=np.uint8) for space, size in sizes.items()}

    def place(self, value: SSAValue) -> tuple[str, Loc]:
        """(space, place with the offset from the arena start) of an activation value."""
        place = nn.value_place(value)
        if place is None:
            where = "input" if isinstance(value, BlockArgument) else f"result of {value.owner.name}"  # type: ignore[union-attr]
            raise UserError(f"{where} in @{self.graph.sym_name.data} has no {nn.PLACE_KEY}: run nn-bufferize")
        buf = self.buffers.get(place.buffer.data)
        if buf is None:
            raise UserError(f"a value is placed in unknown buffer '{place.buffer.data}'")
        loc = Loc(place.buffer.data, buf.offset.data + place.offset.data, place.stride_values)
        return buf.space.data, loc

    def view(self, value: SSAValue) -> np.ndarray:
        """The ndarray view of a value in its arena (reads and writes go to the arena)."""
        space, loc = self.place(value)
        shape = nn.shape_of(value)
        dtype = element_dtype(nn.elem_of(value))
        itemsize = dtype.itemsize
        strides = tuple(s * itemsize for s in loc.strides) if loc.strides else None
        lo, hi = byte_span(shape, itemsize, loc)
        memory = self.memory[space]
        if hi > memory.size:
            raise ArenaError(
                f"a value placed at bytes {lo}..{hi} runs past the {memory.size}-byte '{space}' arena"
            )
        return np.ndarray(shape, dtype=dtype, buffer=memory, offset=loc.offset, strides=strides)

    def scratch_view(self, op: Operation) -> tuple[str, int, int] | None:
        """(space, first byte, end byte) of an op's scratch memory, if it has one."""
        place = op.attributes.get(nn.SCRATCH_KEY)
        if not isinstance(place, nn.PlaceAttr):
            return None
        buf = self.buffers[place.buffer.data]
        start = buf.offset.data + place.offset.data
        return buf.space.data, start, buf.offset.data + buf.size.data


# --------------------------------------------------------------------------
# In-place hazards
# --------------------------------------------------------------------------


def _reduce_to(times: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Latest time per element of a broadcast operand of `shape`."""
    lead = times.ndim - len(shape)
    if lead:
        times = times.max(axis=tuple(range(lead)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and times.shape[i] != 1)
    if axes:
        times = times.max(axis=axes, keepdims=True)
    return np.broadcast_to(times, tuple(shape))


def access_times(op: Operation) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """When an op writes each result element and reads each operand element (None: any time).

    Reads of a step happen at even times ``2t``, writes at ``2t + 1``: within one
    step everything is read before anything is written.
    """
    out_shape = nn.shape_of(op.results[0])
    n = int(np.prod(out_shape, dtype=np.int64))
    if isinstance(op, _ELEMENTWISE + _BINARY):
        t = np.arange(n, dtype=np.int64).reshape(out_shape)
        if isinstance(op, nn.ReshapeOp):
            return t * 2 + 1, [t.reshape(nn.shape_of(op.operands[0])) * 2]
        return t * 2 + 1, [_reduce_to(t, nn.shape_of(o)) * 2 for o in op.operands]
    if isinstance(op, _ROWWISE):
        row = out_shape[-1] if out_shape else 1
        t = (np.arange(n, dtype=np.int64) // max(row, 1)).reshape(out_shape)
        return t * 2 + 1, [t * 2]
    if isinstance(op, nn.DepthwiseConv2DOp) and op.depth_multiplier() == 1:
        c = out_shape[3]
        t_out = np.broadcast_to(np.arange(c, dtype=np.int64), out_shape)
        t_in = np.broadcast_to(np.arange(c, dtype=np.int64), nn.shape_of(op.input))
        reads = [t_in * 2] + [np.zeros(nn.shape_of(o), dtype=np.int64) for o in op.operands[1:]]
        return t_out * 2 + 1, reads
    if isinstance(op, nn.ConcatOp):
        axis = op.axis_value()
        parts = [np.full(nn.shape_of(x), k, dtype=np.int64) for k, x in enumerate(op.inputs)]
        return np.concatenate(parts, axis=axis) * 2 + 1, [p * 2 for p in parts]
    return None


def check_in_place(op: Operation, arenas: _Arenas, names: dict[SSAValue, str]) -> None:
    """Raise `ArenaError` when `op` would clobber an operand byte before reading it."""
    result = op.results[0]
    space, out = arenas.place(result)
    out_shape = nn.shape_of(result)
    out_eb = element_dtype(nn.elem_of(result)).itemsize
    lo, hi = byte_span(out_shape, out_eb, out)
    overlapping: list[int] = []
    for k, o in enumerate(op.operands):
        if nn.value_place(o) is None:
            continue
        o_space, loc = arenas.place(o)
        o_lo, o_hi = byte_span(nn.shape_of(o), element_dtype(nn.elem_of(o)).itemsize, loc)
        if o_space == space and max(lo, o_lo) < min(hi, o_hi):
            overlapping.append(k)
    scratch = arenas.scratch_view(op)
    if scratch is not None and scratch[0] == space and max(lo, scratch[1]) < min(hi, scratch[2]):
        raise ArenaError(f"{op.name} writes {names[result]} over its own scratch memory", op_location(op))
    if not overlapping:
        return
    times = access_times(op)
    windowed = isinstance(op, WINDOW_OPS) and scratch is None
    for k in overlapping:
        o = op.operands[k]
        _, loc = arenas.place(o)
        eb = element_dtype(nn.elem_of(o)).itemsize
        write_bytes = byte_addresses(out_shape, out_eb, out)
        read_bytes = byte_addresses(nn.shape_of(o), eb, loc)
        base = min(int(write_bytes.min()), int(read_bytes.min()))
        span = max(int(write_bytes.max()), int(read_bytes.max())) - base + 1
        orders: list[tuple[np.ndarray, np.ndarray]] = []
        if windowed and k == 0:
            # A sliding-window kernel walks its pixels forwards or backwards: either must be clean.
            orders = [window_access_times(op, reverse) for reverse in (False, True)]
        elif times is not None:
            orders = [(times[0], times[1][k])]
        if not orders:
            clash = np.zeros(span, dtype=bool)
            clash[write_bytes - base] = True
            hazard = bool(clash[read_bytes - base].any())
        else:
            hazard = True
            for write_t, read_t in orders:
                written = np.full(span, np.iinfo(np.int64).max, dtype=np.int64)
                written[write_bytes - base] = np.repeat(np.ascontiguousarray(write_t).reshape(-1), out_eb)
                read = np.repeat(np.ascontiguousarray(read_t).reshape(-1), eb)
                hazard = hazard and bool(np.any(written[read_bytes - base] < read))
        if hazard:
            raise ArenaError(
                f"{op.name} writes {names[result]} over {names[o]} before it has read it "
                "(an in-place hazard: the plan is wrong)",
                op_location(op),
            )


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


def is_planned(graph: nn.GraphOp) -> bool:
    """True when the graph has arenas and every buffer has an offset."""
    buffers = nn.graph_buffers(graph)
    return bool(nn.graph_arenas(graph)) and bool(buffers) and all(b.planned for b in buffers.values())


def run_planned(
    module_or_graph: ModuleOp | nn.GraphOp,
    inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray] | np.ndarray,
    *,
    graph: str | None = None,
    dump: DumpHook | None = None,
    check: bool = True,
    canary: int = CANARY,
) -> dict[str, np.ndarray]:
    """Run a planned graph inside real arenas; outputs keyed by `GraphOp.output_names()`.

    Same contract as `nnopt.backends.numpy.run`. With `check` (the default) a
    value overwritten while live or an in-place hazard raises `ArenaError`;
    without it the run goes on with whatever the arena holds, as a device would.
    """
    g = select_graph(module_or_graph, graph)
    bound = _bind_inputs(g, inputs)
    arenas = _Arenas(g, canary)
    names = value_names(g)
    ops = [op for op in g.block.ops if not isinstance(op, nn.OutputOp)]
    last_read: dict[SSAValue, int] = {}
    for i, op in enumerate(ops):
        for v in op.operands:
            last_read[v] = i
    outputs = set(g.output.values)
    written: dict[SSAValue, np.ndarray] = {}
    constants: dict[SSAValue, np.ndarray] = {}

    def read(v: SSAValue, reader: str, op: Operation | None) -> np.ndarray:
        if v in constants:
            return constants[v]
        value = np.array(arenas.view(v), copy=True, order="C")
        if check and v in written and not np.array_equal(value.view(np.uint8), written[v].view(np.uint8)):
            buffer = arenas.place(v)[1].buffer
            raise ArenaError(
                f"{names[v]} was overwritten while still live (read by {reader}, buffer '{buffer}'): "
                "the plan is wrong",
                op_location(op) if op is not None else None,
            )
        return value

    for arg, value in zip(g.block.args, bound, strict=True):
        assert value is not None
        np.copyto(arenas.view(arg), value)
        if check:
            written[arg] = np.ascontiguousarray(value)
    del bound
    for i, op in enumerate(ops):
        if isinstance(op, nn.ConstOp):
            constants[op.result] = const_value(op)
            continue
        if len(op.results) != 1:
            raise UserError(f"{op.name} is not supported by the numpy interpreter")
        args = [read(v, f"{op.name} (step {i})", op) for v in op.operands]
        if check:
            check_in_place(op, arenas, names)
        scratch = arenas.scratch_view(op)
        if scratch is not None:
            arenas.memory[scratch[0]][scratch[1] : scratch[2]] = SCRATCH_FILL
        result = make_kernel(op)(args)
        del args
        y = op.results[0]
        shape, dtype = nn.shape_of(y), element_dtype(nn.elem_of(y))
        if result.shape != shape or result.dtype != dtype:
            raise AssertionError(
                f"numpy kernel of '{op.name}' returned {result.dtype}{list(result.shape)}, "
                f"expected {dtype}{list(shape)}"
            )
        np.copyto(arenas.view(y), result)
        if check:
            written[y] = np.ascontiguousarray(result)
        if dump is not None:
            dump(names[y], op, result)
        del result
        if check:
            for v in op.operands:
                if last_read.get(v) == i and v not in outputs:
                    written.pop(v, None)
    results: dict[str, np.ndarray] = {}
    for name, v in zip(g.output_names(), g.output.values, strict=True):
        results[name] = read(v, "the graph outputs", None)
    return results
