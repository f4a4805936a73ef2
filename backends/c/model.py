"""What the C generator needs from a planned `nn.graph`: where every tensor lives, op by op.

`read_graph` checks that the graph is planned (every activation has a
``#nn.place`` in a buffer with a space and an offset) and turns it into
`Layer`s whose operands are `Access`es: a base (an arena of one memory space
at a byte offset, or a constant array), a C element type, a shape and element
strides. Offsets come from the plan only; nothing is recomputed here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import Float32Type, IntegerType, StringAttr
from xdsl.ir import Attribute, BlockArgument, Operation, OpResult, SSAValue

from nnopt.compiler.diagnostics import UserError, op_error, op_location
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType


def ctype_of(elem: Attribute) -> tuple[str, int]:
    """C element type and byte size of a tensor element type (None when C cannot hold it)."""
    if isinstance(elem, UniformQuantizedType):
        if elem.width not in (8, 16, 32):
            raise ValueError(f"{elem.width}-bit storage")
        return f"{'' if elem.signed else 'u'}int{elem.width}_t", elem.width // 8
    if isinstance(elem, Float32Type):
        return "float", 4
    if isinstance(elem, IntegerType) and elem.width.data in (8, 16, 32, 64):
        unsigned = elem.signedness.data.name == "UNSIGNED"
        return f"{'u' if unsigned else ''}int{elem.width.data}_t", elem.width.data // 8
    raise ValueError(f"element type {elem}")


def row_major(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a contiguous row-major tensor."""
    strides: list[int] = []
    step = 1
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


@dataclass(frozen=True)
class Access:
    """How generated code reaches one tensor value.

    Arena values have a `space` and a byte `offset` in that space's arena;
    constants have a `const` array name. `strides` are in elements.
    """

    ctype: str
    elem_bytes: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    space: str | None = None
    offset: int = 0
    const: str | None = None
    elem: Attribute | None = field(default=None, compare=False)

    @property
    def is_const(self) -> bool:
        """True for a constant (weights) array."""
        return self.const is not None

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def contiguous(self) -> bool:
        """True when the elements are row-major without gaps."""
        return all(
            s == r for s, r, d in zip(self.strides, row_major(self.shape), self.shape, strict=True) if d > 1
        )

    def byte_range(self) -> tuple[int, int]:
        """``[first, end)`` bytes of the arena the value covers (its hull)."""
        if self.size == 0:
            return self.offset, self.offset
        last = sum((d - 1) * s for d, s in zip(self.shape, self.strides, strict=True))
        return self.offset, self.offset + (last + 1) * self.elem_bytes

    def overlaps(self, other: Access) -> bool:
        """True when both live in the same arena and their byte hulls intersect."""
        if self.space is None or other.space is None or self.space != other.space:
            return False
        a0, a1 = self.byte_range()
        b0, b1 = other.byte_range()
        return a0 < b1 and b0 < a1

    def same_place(self, other: Access) -> bool:
        """Same arena, byte offset and layout (an in-place update of the same elements)."""
        return (
            self.space is not None
            and self.space == other.space
            and self.offset == other.offset
            and self.elem_bytes == other.elem_bytes
            and self.shape == other.shape
            and all(a == b for a, b, d in zip(self.strides, other.strides, self.shape, strict=True) if d > 1)
        )

    def with_view(self, shape: Sequence[int], strides: Sequence[int], extra_offset: int = 0) -> Access:
        """The same storage seen with another shape/strides, `extra_offset` bytes further."""
        return Access(
            self.ctype,
            self.elem_bytes,
            tuple(shape),
            tuple(strides),
            self.space,
            self.offset + extra_offset,
            self.const,
            self.elem,
        )


@dataclass
class Layer:
    """One executed op with the accesses of its operands, its result and its scratch."""

    index: int
    op: Operation
    name: str
    inputs: list[Access]
    output: Access
    scratch: Access | None

    @property
    def location(self) -> str | None:
        """The op's ``file:line:col``, if known."""
        return op_location(self.op)


@dataclass
class Port:
    """A graph input or output: its model name, element type and where it lives."""

    name: str
    elem: Attribute
    access: Access


DEFAULT_CONST_SPACE = "flash"
"""The memory space of constants that no pass placed (``nn.space`` absent)."""


@dataclass
class Constant:
    """A constant tensor of the graph (weights) as a numpy array in its C element type."""

    name: str
    value: np.ndarray
    ctype: str
    origin: str
    space: str = DEFAULT_CONST_SPACE


@dataclass
class GraphModel:
    """A planned graph read for C generation."""

    graph: nn.GraphOp
    spaces: dict[str, int]
    alignments: dict[str, int]
    buffers: dict[str, nn.BufferAttr]
    layers: list[Layer]
    inputs: list[Port]
    outputs: list[Port]
    constants: dict[str, Constant]
    sections: dict[str, str] = field(default_factory=dict)
    """Memory space -> linker section of the graph's target (``nn.target``), when it has one."""
    volatile: dict[str, bool] = field(default_factory=dict)
    """Memory space -> True when it loses its contents without power (RAM), per the target."""
    target: str | None = None


def _const_array(op: nn.ConstOp) -> np.ndarray:
    from nnopt.backends.numpy.arrays import const_value

    return np.ascontiguousarray(const_value(op))


def is_planned(graph: nn.GraphOp) -> bool:
    """True when every buffer of the graph has a space and an offset and the graph has arenas."""
    buffers = nn.graph_buffers(graph)
    return bool(buffers) and bool(nn.graph_arenas(graph)) and all(b.planned for b in buffers.values())


def value_label(value: SSAValue, fallback: str) -> str:
    """A readable model name of a value (its NameLoc, SSA name or `fallback`)."""
    from nnopt.passes.analysis.lifetimes import value_name

    return value_name(value, fallback)


def read_graph(graph: nn.GraphOp) -> GraphModel:
    """Read a planned graph; every problem a user can cause is a `UserError`."""
    if not is_planned(graph):
        raise UserError(
            f"graph @{graph.sym_name.data} is not memory-planned; run the planning pipeline first "
            "(e.g. nnopt-opt -p nn-bufferize,nn-plan-arena) or use `nnopt compile`",
            op_location(graph),
        )
    buffers = nn.graph_buffers(graph)
    spaces = dict(sorted(nn.graph_arenas(graph).items()))
    alignments: dict[str, int] = dict.fromkeys(spaces, 16)
    for buf in buffers.values():
        alignments[buf.space.data] = max(alignments.get(buf.space.data, 16), buf.align.data)

    constants: dict[str, Constant] = {}
    const_names: dict[SSAValue, str] = {}

    def access(value: SSAValue, user: Operation) -> Access:
        elem = nn.elem_of(value)
        try:
            ctype, nbytes = ctype_of(elem)
        except ValueError as exc:
            raise op_error(user, f"has a tensor of {exc}, which the C backend does not support") from None
        shape = tuple(nn.shape_of(value))
        if isinstance(value, OpResult) and isinstance(value.op, nn.ConstOp):
            name = const_names.get(value)
            if name is None:
                name = f"c{len(constants)}"
                const_names[value] = name
                space_attr = value.op.attributes.get(nn.SPACE_KEY)
                constants[name] = Constant(
                    name,
                    _const_array(value.op),
                    ctype,
                    value_label(value, f"constant {len(constants)}"),
                    space_attr.data if isinstance(space_attr, StringAttr) else DEFAULT_CONST_SPACE,
                )
            return Access(ctype, nbytes, shape, row_major(shape), const=name, elem=elem)
        place = nn.value_place(value)
        if place is None:
            what = "a graph input" if isinstance(value, BlockArgument) else "a value"
            if isinstance(value, OpResult):
                what = f"the result of {value.op.name}"
            raise op_error(user, f"reads {what} that has no #nn.place; the IR is not bufferized")
        buf = buffers.get(place.buffer.data)
        if buf is None or not buf.planned:
            raise op_error(user, f"reads buffer '{place.buffer.data}', which is not planned")
        strides = place.stride_values or row_major(shape)
        return Access(
            ctype,
            nbytes,
            shape,
            tuple(strides),
            buf.space.data,
            buf.offset.data + place.offset.data,
            elem=elem,
        )

    layers: list[Layer] = []
    for op in graph.block.ops:
        if isinstance(op, nn.ConstOp | nn.OutputOp):
            continue
        if len(op.results) != 1:
            raise op_error(op, "has no single result; the C backend cannot run it")
        inputs = [access(v, op) for v in op.operands]
        output = access(op.results[0], op)
        scratch_attr = op.attributes.get(nn.SCRATCH_KEY)
        scratch: Access | None = None
        if isinstance(scratch_attr, nn.PlaceAttr):
            sbuf = buffers[scratch_attr.buffer.data]
            size = sbuf.size.data - scratch_attr.offset.data
            scratch = Access(
                "uint8_t", 1, (size,), (1,), sbuf.space.data, sbuf.offset.data + scratch_attr.offset.data
            )
        layers.append(
            Layer(len(layers), op, value_label(op.results[0], f"%{len(layers)}"), inputs, output, scratch)
        )

    ports_in = [
        Port(name, nn.elem_of(arg), access(arg, graph))
        for name, arg in zip(graph.input_names(), graph.block.args, strict=True)
    ]
    outputs = [
        Port(name, nn.elem_of(v), access(v, graph.output))
        for name, v in zip(graph.output_names(), graph.output.values, strict=True)
    ]
    model = GraphModel(graph, spaces, alignments, buffers, layers, ports_in, outputs, constants)
    target_attr = graph.attributes.get("nn.target")
    if isinstance(target_attr, StringAttr):
        from nnopt.compiler.targets import load_target

        target = load_target(target_attr.data)
        model.target = target.name
        for memory in target.memories:
            model.sections[memory.name] = memory.section
            model.volatile[memory.name] = memory.volatile
    return model
