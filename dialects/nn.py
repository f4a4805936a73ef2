"""The `nn` dialect: neural-network graphs on tensors, with value semantics.

Conventions shared by every op:

* Data layout is **NHWC** for convolutions and pools: inputs ``[N, H, W, C]``.
  Convolution weights are ``[Cout, KH, KW, Cin/groups]`` (OHWI, as TFLite);
  depthwise weights are ``[1, KH, KW, Cin * multiplier]``; fully connected
  weights are ``[Cout, K]``.
* Element types are floats (``f32``), or ``!quant.uniform`` types. An op is
  *quantized* when its activations carry quantized types; it then computes in
  integers. Its `rounding` property names the requantization mode
  (``tflite_double``, ``single`` or ``onnx_rint``) and its optional `qparams`
  dictionary holds the integers derived once from the types (multipliers,
  shifts, clamps); see `nnopt.dialects.qparams`.
* ``padding`` is ``"same"``, ``"valid"`` (TFLite's rules) or an explicit
  ``array<i64: top, bottom, left, right>``.
* ``fused_activation`` is one of ``none``, ``relu``, ``relu6``,
  ``relu_n1_to_1``; on quantized ops it folds into the output clamp.

Every verifier names the offending values in its message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FloatAttr,
    FunctionType,
    IntAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    SymbolNameConstraint,
    TensorType,
    UnitAttr,
    i64,
)
from xdsl.dialects.utils import parse_func_op_like, print_func_op_like
from xdsl.ir import Attribute, Block, Dialect, Operation, ParametrizedAttribute, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser, Parser
from xdsl.pattern_rewriter import RewritePattern
from xdsl.printer import Printer
from xdsl.traits import (
    CallableOpInterface,
    HasCanonicalizationPatternsTrait,
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    Pure,
    SymbolOpInterface,
)
from xdsl.utils.exceptions import VerifyException

from nnopt.dialects.quant import UniformQuantizedType

ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")
"""Values of the `fused_activation` property."""

ROUNDING_MODES = ("tflite_double", "single", "onnx_rint")
"""Requantization modes: TFLite Micro's double rounding (gemmlowp), single
rounding ``(x*M0 + 2^(t-1)) >> t``, and ONNX's float multiply with round half to even."""

PADDING_MODES = ("same", "valid")

AnyTensor = base(TensorType)


# --------------------------------------------------------------------------
# Helpers on types
# --------------------------------------------------------------------------


def tensor_type(value: SSAValue | Attribute) -> TensorType[Attribute]:
    """The tensor type of a value (or the type itself)."""
    t = value.type if isinstance(value, SSAValue) else value
    if not isinstance(t, TensorType):
        raise VerifyException(f"expected a tensor type, got {t}")
    return t


def shape_of(value: SSAValue | Attribute) -> tuple[int, ...]:
    """The static shape of a tensor value or type."""
    return tensor_type(value).get_shape()


def elem_of(value: SSAValue | Attribute) -> Attribute:
    """The element type of a tensor value or type."""
    return tensor_type(value).get_element_type()


def is_quantized(t: Attribute | SSAValue) -> bool:
    """True when a tensor (or element) type is `!quant.uniform`."""
    if isinstance(t, SSAValue | TensorType):
        t = elem_of(t)
    return isinstance(t, UniformQuantizedType)


def is_float(t: Attribute | SSAValue) -> bool:
    """True when a tensor (or element) type is a float type."""
    from xdsl.dialects.builtin import AnyFloat

    if isinstance(t, SSAValue | TensorType):
        t = elem_of(t)
    return isinstance(t, AnyFloat)


def num_elements(shape: Sequence[int]) -> int:
    """Number of elements of a static shape."""
    return math.prod(shape)


def _types(types: Iterable[Attribute]) -> str:
    return "[" + ", ".join(str(t) for t in types) + "]"


def _fmt(v: SSAValue) -> str:
    name = f"%{v.name_hint}" if v.name_hint else "operand"
    return f"{name}: {v.type}"


def broadcast_shapes(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...] | None:
    """Numpy broadcasting of two shapes, or None when they do not broadcast."""
    out: list[int] = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            return None
        out.append(max(da, db))
    return tuple(reversed(out))


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite's SAME padding along one axis: (before, after)."""
    eff = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: Attribute,
    in_hw: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int] = (1, 1),
) -> tuple[int, int, int, int]:
    """Explicit (top, bottom, left, right) padding for a `padding` property."""
    if isinstance(padding, StringAttr):
        if padding.data == "valid":
            return (0, 0, 0, 0)
        top, bottom = same_padding(in_hw[0], kernel_hw[0], strides[0], dilations[0])
        left, right = same_padding(in_hw[1], kernel_hw[1], strides[1], dilations[1])
        return (top, bottom, left, right)
    assert isinstance(padding, DenseArrayBase)
    t, b, left, r = ints(padding)
    return (t, b, left, r)


def window_output_hw(
    in_hw: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
) -> tuple[int, int]:
    """Output height and width of a convolution or pooling window."""
    out: list[int] = []
    for i in range(2):
        eff = (kernel_hw[i] - 1) * dilations[i] + 1
        padded = in_hw[i] + pads[2 * i] + pads[2 * i + 1]
        out.append((padded - eff) // strides[i] + 1 if padded >= eff else 0)
    return out[0], out[1]


def empty_window(
    in_hw: Sequence[int], kernel_hw: Sequence[int], strides: Sequence[int], pads: Sequence[int]
) -> tuple[int, int] | None:
    """An output position (row, col) whose window covers only padding, or None."""
    empty: list[int | None] = []
    for axis in range(2):
        out = window_output_hw(in_hw, kernel_hw, strides, (1, 1), pads)[axis]
        found = None
        for o in range(out):
            start = o * strides[axis] - pads[2 * axis]
            if min(start + kernel_hw[axis], in_hw[axis]) - max(start, 0) <= 0:
                found = o
                break
        empty.append(found)
    if empty[0] is None and empty[1] is None:
        return None
    return (empty[0] or 0, empty[1] or 0)


def padding_attr(padding: str | Sequence[int]) -> Attribute:
    """Build a `padding` property from "same"/"valid" or four integers."""
    if isinstance(padding, str):
        return StringAttr(padding)
    return DenseArrayBase.from_list(i64, list(padding))


def int_array(values: Iterable[int]) -> DenseArrayBase:
    """An ``array<i64: ...>`` property."""
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def ints(attr: DenseArrayBase | None, default: Sequence[int] = ()) -> tuple[int, ...]:
    """The integers of an optional ``array<i64>`` property."""
    if attr is None:
        return tuple(default)
    return tuple(int(v) for v in attr.get_values())  # type: ignore[misc]


# --------------------------------------------------------------------------
# Shared verification pieces
# --------------------------------------------------------------------------


def _check_rank(op: str, v: SSAValue, rank: int, role: str) -> tuple[int, ...]:
    shape = shape_of(v)
    if len(shape) != rank:
        raise VerifyException(f"{role} must have rank {rank}, got {_fmt(v)}")
    return shape


def _check_positive(name: str, values: Sequence[int], count: int) -> None:
    if len(values) != count:
        raise VerifyException(f"{name} must have {count} elements, got {list(values)}")
    if any(v < 1 for v in values):
        raise VerifyException(f"{name} must be positive, got {list(values)}")


def _check_enum(name: str, attr: StringAttr | None, allowed: Sequence[str]) -> None:
    if attr is not None and attr.data not in allowed:
        raise VerifyException(f"{name} must be one of {', '.join(allowed)}; got '{attr.data}'")


def _check_padding(padding: Attribute) -> None:
    if isinstance(padding, StringAttr):
        _check_enum("padding", padding, PADDING_MODES)
    else:
        assert isinstance(padding, DenseArrayBase)
        vals = ints(padding)
        if len(vals) != 4 or any(v < 0 for v in vals):
            raise VerifyException(
                f"explicit padding must be 4 non-negative integers [top, bottom, left, right], got {list(vals)}"
            )


def _check_same_family(values: Sequence[SSAValue], results: Sequence[SSAValue]) -> bool:
    """All activations float or all quantized (same storage); returns True when quantized."""
    all_vals = [*values, *results]
    quant = [is_quantized(v) for v in all_vals]
    if any(quant) and not all(quant):
        listing = ", ".join(_fmt(v) for v in all_vals)
        raise VerifyException(
            f"mixes float and quantized tensors ({listing}); insert nn.quantize/nn.dequantize"
        )
    if not any(quant):
        for v in all_vals:
            if not is_float(v):
                raise VerifyException(f"expected float or quantized element type, got {_fmt(v)}")
        e0 = elem_of(all_vals[0])
        for v in all_vals[1:]:
            if elem_of(v) != e0:
                raise VerifyException(f"element types differ: {_fmt(all_vals[0])} vs {_fmt(v)}")
        return False
    for v in all_vals:
        q = elem_of(v)
        assert isinstance(q, UniformQuantizedType)
        if q.is_per_axis:
            raise VerifyException(f"activations must be quantized per tensor, got {_fmt(v)}")
    return True


def _check_same_quant(a: SSAValue, b: SSAValue, what: str) -> None:
    if elem_of(a) != elem_of(b):
        raise VerifyException(f"{what}: element types must match, got {_fmt(a)} and {_fmt(b)}")


def _check_quant_props(op: QuantizableOp, quantized: bool) -> None:
    _check_enum("rounding", op.rounding, ROUNDING_MODES)
    if not quantized and op.qparams is not None:
        raise VerifyException("qparams given on a float op")


class _Canonicalization(HasCanonicalizationPatternsTrait):
    @classmethod
    def get_canonicalization_patterns(cls) -> tuple[RewritePattern, ...]:
        from nnopt.passes.canonicalization import nn as patterns

        return (
            patterns.FoldIdentityReshape(),
            patterns.FoldReshapeChain(),
            patterns.FoldTransposeChain(),
            patterns.FoldIdempotentActivation(),
            patterns.FoldIdentityQuantize(),
        )


class QuantizableOp(IRDLOperation):
    """Base of ops that can compute in integers (they carry `rounding` and `qparams`)."""

    rounding = opt_prop_def(StringAttr)
    qparams = opt_prop_def(DictionaryAttr)

    traits = traits_def(Pure(), _Canonicalization())

    def rounding_mode(self) -> str:
        """The requantization mode, `tflite_double` when unset."""
        return self.rounding.data if self.rounding is not None else "tflite_double"


class _FusedActivationMixin(IRDLOperation):
    fused_activation = opt_prop_def(StringAttr)

    def activation(self) -> str:
        """The fused activation (`none` when unset)."""
        return self.fused_activation.data if self.fused_activation is not None else "none"


_STD_FORMAT = "operands attr-dict `:` functional-type(operands, results)"


# --------------------------------------------------------------------------
# Buffer level: buffers, places of values in buffers, arenas
# --------------------------------------------------------------------------

BUFFERS_KEY = "nn.buffers"
"""Graph attribute: dictionary of buffer name -> `#nn.buffer<...>` (added by nn-bufferize)."""
PLACE_KEY = "nn.place"
"""Op attribute (its result) or graph argument attribute: the value's `#nn.place<...>`."""
SCRATCH_KEY = "nn.scratch"
"""Op attribute: the `#nn.place<...>` of the op's scratch memory."""
ARENAS_KEY = "nn.arenas"
"""Graph attribute: dictionary of memory space -> arena size in bytes (added by nn-plan-arena)."""
SPACE_KEY = "nn.space"
"""`nn.const` attribute: the memory space (section) holding the constant (weights in flash, MRAM, ...)."""
VARIABLE_KEY = "nn.variable"
"""Graph argument attribute: a state tensor, live for the whole graph and kept between runs."""

BUFFER_KINDS = ("activation", "input", "output", "scratch", "variable", "overlay")


def element_bytes(elem: Attribute) -> int:
    """Bytes of one element of a tensor element type."""
    if isinstance(elem, UniformQuantizedType):
        return elem.width // 8
    width = getattr(elem, "bitwidth", None)
    if isinstance(width, int):
        return max(1, width // 8)
    int_width = getattr(elem, "width", None)
    if isinstance(int_width, IntAttr):
        return max(1, int_width.data // 8)
    raise VerifyException(f"element type {elem} has no byte size")


def tensor_bytes(t: Attribute | SSAValue) -> int:
    """Bytes of a tensor stored contiguously."""
    tt = tensor_type(t)
    return num_elements(tt.get_shape()) * element_bytes(tt.get_element_type())


@irdl_attr_definition
class BufferAttr(ParametrizedAttribute):
    """A buffer: ``#nn.buffer<size = 4608, align = 16, kind = activation>``.

    After memory planning it also names its memory space and byte offset in
    that space's arena: ``#nn.buffer<size = 4608, align = 16, kind = activation,
    space = sram, offset = 1024>``.
    """

    name = "nn.buffer"

    size: IntAttr
    align: IntAttr
    kind: StringAttr
    space: StringAttr
    offset: IntAttr

    def __init__(
        self, size: int, align: int = 16, kind: str = "activation", space: str = "", offset: int = -1
    ) -> None:
        super().__init__(IntAttr(size), IntAttr(align), StringAttr(kind), StringAttr(space), IntAttr(offset))

    @property
    def planned(self) -> bool:
        """True once the buffer has a space and an offset."""
        return self.offset.data >= 0

    def with_plan(self, space: str, offset: int) -> BufferAttr:
        """The same buffer placed at `offset` in `space`."""
        return BufferAttr(self.size.data, self.align.data, self.kind.data, space, offset)

    def verify(self) -> None:
        if self.size.data <= 0:
            raise VerifyException(f"nn.buffer: size must be positive, got {self.size.data}")
        a = self.align.data
        if a <= 0 or a & (a - 1):
            raise VerifyException(f"nn.buffer: alignment must be a power of two, got {a}")
        if self.kind.data not in BUFFER_KINDS:
            raise VerifyException(
                f"nn.buffer: kind must be one of {', '.join(BUFFER_KINDS)}, got '{self.kind.data}'"
            )
        if self.offset.data >= 0 and (not self.space.data or self.offset.data % a):
            raise VerifyException(
                f"nn.buffer: a planned buffer needs a space and an offset aligned to {a}, got "
                f"space '{self.space.data}' offset {self.offset.data}"
            )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        fields: dict[str, int | str] = {"align": 16, "kind": "activation", "space": "", "offset": -1}
        with parser.in_angle_brackets():
            while True:
                key = parser.parse_identifier("(size, align, kind, space or offset)")
                parser.parse_punctuation("=")
                if key in ("size", "align", "offset"):
                    fields[key] = parser.parse_integer(allow_boolean=False)
                elif key in ("kind", "space"):
                    text = parser.parse_optional_str_literal()
                    fields[key] = text if text is not None else parser.parse_identifier()
                else:
                    parser.raise_error(f"unknown nn.buffer field '{key}' (size, align, kind, space, offset)")
                if parser.parse_optional_punctuation(",") is None:
                    break
        if "size" not in fields:
            parser.raise_error("nn.buffer needs a size")
        return (
            IntAttr(int(fields["size"])),
            IntAttr(int(fields["align"])),
            StringAttr(str(fields["kind"])),
            StringAttr(str(fields["space"])),
            IntAttr(int(fields["offset"])),
        )

    def print_parameters(self, printer: Printer) -> None:
        text = f"<size = {self.size.data}, align = {self.align.data}, kind = {self.kind.data}"
        if self.space.data:
            text += f", space = {self.space.data}"
        if self.offset.data >= 0:
            text += f", offset = {self.offset.data}"
        printer.print_string(text + ">")


@irdl_attr_definition
class PlaceAttr(ParametrizedAttribute):
    """Where a value lives: ``#nn.place<"b3">``, ``#nn.place<"b3" + 64>`` (byte offset in the
    buffer) or ``#nn.place<"b3" + 64, strides = [2304, 144, 48, 1]>`` (element strides, e.g. a
    slice of a concatenation written in place). Without strides the value is row-major contiguous.
    """

    name = "nn.place"

    buffer: StringAttr
    offset: IntAttr
    strides: ArrayAttr[IntAttr]

    def __init__(self, buffer: str, offset: int = 0, strides: Sequence[int] = ()) -> None:
        super().__init__(StringAttr(buffer), IntAttr(offset), ArrayAttr([IntAttr(s) for s in strides]))

    @property
    def stride_values(self) -> tuple[int, ...]:
        """Element strides (empty when contiguous)."""
        return tuple(s.data for s in self.strides.data)

    def extent(self, t: Attribute | SSAValue) -> int:
        """Bytes from the buffer start to one past the last byte of a value of type `t`."""
        tt = tensor_type(t)
        shape = tt.get_shape()
        eb = element_bytes(tt.get_element_type())
        if not self.strides.data:
            return self.offset.data + num_elements(shape) * eb
        if num_elements(shape) == 0:
            return self.offset.data
        last = sum((d - 1) * s for d, s in zip(shape, self.stride_values, strict=True))
        return self.offset.data + (last + 1) * eb

    def verify(self) -> None:
        if self.offset.data < 0:
            raise VerifyException(f"nn.place: offset must be non-negative, got {self.offset.data}")
        if any(s.data < 0 for s in self.strides.data):
            raise VerifyException("nn.place: strides must be non-negative")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        strides: list[int] = []
        offset = 0
        with parser.in_angle_brackets():
            buffer = parser.parse_str_literal("(buffer name)")
            if parser.parse_optional_punctuation("+") is not None:
                offset = parser.parse_integer(allow_boolean=False, allow_negative=False)
            if parser.parse_optional_punctuation(",") is not None:
                parser.parse_keyword("strides")
                parser.parse_punctuation("=")
                strides = parser.parse_comma_separated_list(
                    parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)
                )
        return (StringAttr(buffer), IntAttr(offset), ArrayAttr([IntAttr(v) for v in strides]))

    def print_parameters(self, printer: Printer) -> None:
        text = f'<"{self.buffer.data}"'
        if self.offset.data:
            text += f" + {self.offset.data}"
        if self.strides.data:
            text += f", strides = [{', '.join(str(v) for v in self.stride_values)}]"
        printer.print_string(text + ">")


def value_place(value: SSAValue) -> PlaceAttr | None:
    """The `#nn.place` of an activation value (op result or graph input), if bufferized."""
    from xdsl.ir import BlockArgument, OpResult

    if isinstance(value, OpResult):
        place = value.op.attributes.get(PLACE_KEY)
        return place if isinstance(place, PlaceAttr) else None
    if isinstance(value, BlockArgument):
        graph = value.block.parent_op()
        if (
            isinstance(graph, GraphOp)
            and graph.arg_attrs is not None
            and value.index < len(graph.arg_attrs.data)
        ):
            place = graph.arg_attrs.data[value.index].data.get(PLACE_KEY)
            return place if isinstance(place, PlaceAttr) else None
    return None


def graph_buffers(graph: GraphOp) -> dict[str, BufferAttr]:
    """The buffers of a bufferized graph, by name (empty before nn-bufferize)."""
    attr = graph.attributes.get(BUFFERS_KEY)
    if not isinstance(attr, DictionaryAttr):
        return {}
    return {k: v for k, v in attr.data.items() if isinstance(v, BufferAttr)}


def graph_arenas(graph: GraphOp) -> dict[str, int]:
    """Arena size per memory space of a planned graph (empty before nn-plan-arena)."""
    attr = graph.attributes.get(ARENAS_KEY)
    if not isinstance(attr, DictionaryAttr):
        return {}
    return {k: v.value.data for k, v in attr.data.items() if isinstance(v, IntegerAttr)}


def _verify_buffer_level(graph: GraphOp) -> None:
    buffers = graph_buffers(graph)
    if BUFFERS_KEY in graph.attributes and not isinstance(graph.attributes[BUFFERS_KEY], DictionaryAttr):
        raise VerifyException(f"{BUFFERS_KEY} must be a dictionary of #nn.buffer")
    arenas = graph_arenas(graph)
    values: list[tuple[SSAValue, str]] = [(a, f"input {i}") for i, a in enumerate(graph.block.args)]
    for op in graph.block.ops:
        if PLACE_KEY in op.attributes and len(op.results) == 1:
            values.append((op.results[0], f"result of {op.name}"))
        scratch = op.attributes.get(SCRATCH_KEY)
        if scratch is not None and (not isinstance(scratch, PlaceAttr) or scratch.buffer.data not in buffers):
            raise VerifyException(f"{op.name}: {SCRATCH_KEY} names no buffer of the graph")
    for value, what in values:
        place = value_place(value)
        if place is None:
            continue
        if not buffers:
            raise VerifyException(f"{what} has a place but the graph has no {BUFFERS_KEY}")
        buf = buffers.get(place.buffer.data)
        if buf is None:
            raise VerifyException(f"{what} is placed in unknown buffer '{place.buffer.data}'")
        if place.strides.data and len(place.strides.data) != len(shape_of(value)):
            raise VerifyException(
                f"{what}: {len(place.strides.data)} strides for rank {len(shape_of(value))}"
            )
        if place.extent(value) > buf.size.data:
            raise VerifyException(
                f"{what} ({value.type}) at {place} needs {place.extent(value)} bytes of buffer "
                f"'{place.buffer.data}', which has {buf.size.data}"
            )
    for name, buf in buffers.items():
        if buf.planned:
            size = arenas.get(buf.space.data)
            if size is None:
                raise VerifyException(
                    f"buffer '{name}' is planned in space '{buf.space.data}', which has no arena"
                )
            if buf.offset.data + buf.size.data > size:
                raise VerifyException(
                    f"buffer '{name}' ends at byte {buf.offset.data + buf.size.data}, beyond the "
                    f"{size}-byte '{buf.space.data}' arena"
                )


# --------------------------------------------------------------------------
# Graph structure
# --------------------------------------------------------------------------


class GraphCallable(CallableOpInterface):
    """Lets xDSL's interpreter call an `nn.graph`."""

    @classmethod
    def get_callable_region(cls, op: Operation) -> Region:
        assert isinstance(op, GraphOp)
        return op.body

    @classmethod
    def get_argument_types(cls, op: Operation) -> tuple[Attribute, ...]:
        assert isinstance(op, GraphOp)
        return op.function_type.inputs.data

    @classmethod
    def get_result_types(cls, op: Operation) -> tuple[Attribute, ...]:
        assert isinstance(op, GraphOp)
        return op.function_type.outputs.data


NAME_KEY = "nn.name"
"""Argument/result attribute holding the model's name for a graph input or output."""


@irdl_op_definition
class GraphOp(IRDLOperation):
    """A neural network: one block whose arguments are the graph inputs.

    ``nn.graph @name(%x: tensor<...> {nn.name = "input"}) -> (tensor<...>) { ... nn.output ... }``
    A module may hold several graphs.
    """

    name = "nn.graph"

    body = region_def("single_block")
    sym_name = prop_def(SymbolNameConstraint())
    function_type = prop_def(FunctionType)
    arg_attrs = opt_prop_def(ArrayAttr[DictionaryAttr])
    res_attrs = opt_prop_def(ArrayAttr[DictionaryAttr])

    traits = traits_def(IsolatedFromAbove(), SymbolOpInterface(), GraphCallable())

    def __init__(
        self,
        name: str,
        input_types: Sequence[Attribute],
        output_types: Sequence[Attribute],
        region: Region | None = None,
        *,
        arg_attrs: ArrayAttr[DictionaryAttr] | None = None,
        res_attrs: ArrayAttr[DictionaryAttr] | None = None,
    ) -> None:
        if region is None:
            region = Region(Block(arg_types=input_types))
        super().__init__(
            properties={
                "sym_name": StringAttr(name),
                "function_type": FunctionType.from_lists(input_types, output_types),
                "arg_attrs": arg_attrs,
                "res_attrs": res_attrs,
            },
            regions=[region],
        )

    @property
    def block(self) -> Block:
        """The graph's single block."""
        block = self.body.blocks.first
        assert block is not None
        return block

    @property
    def output(self) -> OutputOp:
        """The terminator."""
        term = self.block.last_op
        assert isinstance(term, OutputOp)
        return term

    def _names(
        self, attrs: ArrayAttr[DictionaryAttr] | None, values: Sequence[SSAValue], prefix: str
    ) -> list[str]:
        names: list[str] = []
        for i, v in enumerate(values):
            name: str | None = None
            if attrs is not None and i < len(attrs.data):
                entry = attrs.data[i].data.get(NAME_KEY)
                if isinstance(entry, StringAttr):
                    name = entry.data
            name = name or v.name_hint or f"{prefix}{i}"
            unique, k = name, 1
            while unique in names:  # the same value output twice, or clashing names
                unique = f"{name}_{k}"
                k += 1
            names.append(unique)
        return names

    def input_names(self) -> list[str]:
        """Names of the graph inputs (`nn.name`, else the SSA name, else `input<i>`)."""
        return self._names(self.arg_attrs, self.block.args, "input")

    def output_names(self) -> list[str]:
        """Names of the graph outputs (`nn.name`, else the SSA name, else `output<i>`)."""
        return self._names(self.res_attrs, self.output.values, "output")

    def verify_(self) -> None:
        block = self.block
        if tuple(block.arg_types) != self.function_type.inputs.data:
            raise VerifyException(
                "graph inputs do not match the block arguments: "
                f"{_types(self.function_type.inputs.data)} vs {_types(block.arg_types)}"
            )
        term = block.last_op
        if not isinstance(term, OutputOp):
            raise VerifyException("graph must end with nn.output")
        if tuple(v.type for v in term.values) != self.function_type.outputs.data:
            raise VerifyException(
                "nn.output types do not match the graph results: "
                f"{_types(v.type for v in term.values)} vs {_types(self.function_type.outputs.data)}"
            )
        for attrs, n, what in (
            (self.arg_attrs, len(block.args), "arg_attrs"),
            (self.res_attrs, len(term.values), "res_attrs"),
        ):
            if attrs is not None and len(attrs.data) != n:
                raise VerifyException(f"{what} has {len(attrs.data)} entries for {n} values")
        _verify_buffer_level(self)

    @classmethod
    def parse(cls, parser: Parser) -> GraphOp:
        name, inputs, outputs, region, extra, arg_attrs, res_attrs = parse_func_op_like(
            parser, reserved_attr_names=("sym_name", "function_type")
        )
        op = GraphOp(name, inputs, outputs, region, arg_attrs=arg_attrs, res_attrs=res_attrs)
        if extra is not None:
            op.attributes |= extra.data
        return op

    def print(self, printer: Printer) -> None:
        print_func_op_like(
            printer,
            self.sym_name,
            self.function_type,
            self.body,
            self.attributes,
            arg_attrs=self.arg_attrs,
            res_attrs=self.res_attrs,
            reserved_attr_names=("sym_name", "function_type", "arg_attrs", "res_attrs"),
        )


@irdl_op_definition
class OutputOp(IRDLOperation):
    """Terminator of `nn.graph`: the graph outputs."""

    name = "nn.output"

    values = var_operand_def()

    traits = traits_def(IsTerminator(), HasParent(GraphOp))

    assembly_format = "($values^ `:` type($values))? attr-dict"

    def __init__(self, values: Sequence[SSAValue]) -> None:
        super().__init__(operands=[values])


@irdl_op_definition
class ConstOp(IRDLOperation):
    """A constant tensor (weights, biases, ...).

    ``%w = nn.const dense<"0x..."> : tensor<8x3xi8> -> tensor<8x3x!quant.uniform<i8:f32:0, {...}>>``:
    for a quantized result the value holds the stored integers; ``-> type`` is
    printed only when the result type differs from the value's type.
    """

    name = "nn.const"

    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(AnyTensor)

    traits = traits_def(Pure())

    def __init__(self, value: DenseIntOrFPElementsAttr, result_type: Attribute | None = None) -> None:
        super().__init__(
            properties={"value": value},
            result_types=[value.type if result_type is None else result_type],
        )

    def verify_(self) -> None:
        vt = self.value.type
        rt = tensor_type(self.result)
        if tuple(vt.get_shape()) != rt.get_shape():
            raise VerifyException(f"value shape {list(vt.get_shape())} does not match result type {rt}")
        ve, re_ = vt.get_element_type(), rt.get_element_type()
        if isinstance(re_, UniformQuantizedType):
            if not isinstance(ve, IntegerType) or ve.width.data != re_.width:
                raise VerifyException(
                    f"a quantized constant of type {rt} must hold {re_.width}-bit integers, got {ve}"
                )
            _verify_axis(re_, rt.get_shape(), "result")
        elif ve != re_:
            raise VerifyException(f"value type {vt} does not match result type {rt}")

    @classmethod
    def parse(cls, parser: Parser) -> ConstOp:
        value = parser.parse_attribute()
        if not isinstance(value, DenseIntOrFPElementsAttr):
            parser.raise_error(f"nn.const expects a dense elements attribute, got {value}")
        result_type: Attribute = value.type
        if parser.parse_optional_punctuation("->") is not None:
            result_type = parser.parse_type()
        attrs = parser.parse_optional_attr_dict()
        op = ConstOp(value, result_type)
        op.attributes |= attrs
        return op

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.value)
        if self.result.type != self.value.type:
            printer.print_string(" -> ")
            printer.print_attribute(self.result.type)
        printer.print_op_attributes(self.attributes)


def _verify_axis(q: UniformQuantizedType, shape: Sequence[int], role: str) -> None:
    if q.axis is None:
        return
    if q.axis >= len(shape):
        raise VerifyException(f"{role}: quantized dimension {q.axis} out of range for rank {len(shape)}")
    if len(q.scale_values) != shape[q.axis]:
        raise VerifyException(
            f"{role}: {len(q.scale_values)} per-axis scales for dimension {q.axis} of size {shape[q.axis]}"
        )


# --------------------------------------------------------------------------
# Weighted ops: conv2d, depthwise_conv2d, fully_connected
# --------------------------------------------------------------------------


def _verify_weights(
    x: SSAValue,
    w: SSAValue,
    b: SSAValue | None,
    y: SSAValue,
    out_channels: int,
    weight_axis: int,
) -> bool:
    """Element-type rules of weighted ops; returns True when quantized."""
    quantized = _check_same_family([x], [y])
    bias_shape = None if b is None else shape_of(b)
    if bias_shape is not None and bias_shape != (out_channels,):
        raise VerifyException(f"bias must have shape [{out_channels}], got {_fmt(b)}")  # type: ignore[arg-type]
    if not quantized:
        if elem_of(w) != elem_of(x):
            hint = " (hybrid model: dequantize the weights first)" if is_quantized(w) else ""
            raise VerifyException(f"weight element type must match the input: {_fmt(w)} vs {_fmt(x)}{hint}")
        if b is not None and elem_of(b) != elem_of(x):
            raise VerifyException(f"bias element type must match the input: {_fmt(b)}")
        return False
    wq = elem_of(w)
    if not isinstance(wq, UniformQuantizedType):
        raise VerifyException(f"a quantized op needs quantized weights, got {_fmt(w)}")
    _verify_axis(wq, shape_of(w), "weight")
    if wq.axis is not None and wq.axis != weight_axis:
        raise VerifyException(
            f"weights must be quantized per tensor or along dimension {weight_axis}, got {_fmt(w)}"
        )
    if b is not None:
        bq = elem_of(b)
        if not isinstance(bq, UniformQuantizedType) or bq.width != 32:
            raise VerifyException(f"a quantized op needs a 32-bit quantized bias, got {_fmt(b)}")
        if any(z != 0 for z in bq.zero_point_values):
            raise VerifyException(f"bias zero points must be 0, got {_fmt(b)}")
        xq = elem_of(x)
        assert isinstance(xq, UniformQuantizedType)
        w_scales = wq.scale_values if wq.is_per_axis else wq.scale_values * out_channels
        b_scales = bq.scale_values if bq.is_per_axis else bq.scale_values * out_channels
        for c, (sb, sw) in enumerate(zip(b_scales, w_scales, strict=True)):
            expected = xq.scale * sw
            if abs(sb - expected) > 1e-4 * expected:
                raise VerifyException(
                    f"bias scale {sb} of channel {c} must equal input scale * weight scale = {expected}"
                )
    return True


class _WindowOp(QuantizableOp, _FusedActivationMixin):
    strides = prop_def(DenseArrayBase.constr(i64))
    padding = prop_def(base(StringAttr) | DenseArrayBase.constr(i64))

    def explicit_padding(self, in_hw: Sequence[int], kernel_hw: Sequence[int]) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) for an input of spatial size `in_hw`."""
        return resolve_padding(self.padding, in_hw, kernel_hw, ints(self.strides), self.dilation_values())

    def dilation_values(self) -> tuple[int, int]:
        """Dilations (1, 1 for pools)."""
        return (1, 1)

    def _verify_window(
        self, x_shape: Sequence[int], kernel_hw: Sequence[int], out_shape: Sequence[int], out_c: int
    ) -> None:
        _check_positive("strides", ints(self.strides), 2)
        _check_positive("dilations", self.dilation_values(), 2)
        _check_padding(self.padding)
        _check_enum("fused_activation", self.fused_activation, ACTIVATIONS)
        pads = self.explicit_padding(x_shape[1:3], kernel_hw)
        oh, ow = window_output_hw(x_shape[1:3], kernel_hw, ints(self.strides), self.dilation_values(), pads)
        if oh < 1 or ow < 1:
            raise VerifyException(
                f"window {list(kernel_hw)} does not fit input {list(x_shape)} with padding {list(pads)}"
            )
        expected = (x_shape[0], oh, ow, out_c)
        if tuple(out_shape) != expected:
            raise VerifyException(f"result shape {list(out_shape)} != expected {list(expected)}")


class _ConvOp(_WindowOp):
    """Operands, dilations and syntax shared by the convolutions."""

    input = operand_def(AnyTensor)
    weight = operand_def(AnyTensor)
    bias = opt_operand_def(AnyTensor)
    output = result_def(AnyTensor)
    dilations = opt_prop_def(DenseArrayBase.constr(i64))

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"

    def dilation_values(self) -> tuple[int, int]:
        d = ints(self.dilations, (1, 1))
        return (d[0], d[1]) if len(d) == 2 else (0, 0)


@irdl_op_definition
class Conv2DOp(_ConvOp):
    """2-D convolution, NHWC input, OHWI weights, optional bias ``[Cout]``.

    Grouped when ``Cin`` is a multiple of the weight's in-channels.
    """

    name = "nn.conv2d"

    def verify_(self) -> None:
        x = _check_rank(self.name, self.input, 4, "input")
        w = _check_rank(self.name, self.weight, 4, "weight")
        y = _check_rank(self.name, self.output, 4, "result")
        cout, kh, kw, wcin = w
        if wcin < 1 or x[3] % wcin != 0:
            raise VerifyException(
                f"input channels {x[3]} are not a multiple of weight in-channels {wcin} "
                f"({_fmt(self.input)}, {_fmt(self.weight)})"
            )
        groups = x[3] // wcin
        if cout % groups != 0:
            raise VerifyException(f"output channels {cout} not divisible by {groups} groups")
        self._verify_window(x, (kh, kw), y, cout)
        quantized = _verify_weights(self.input, self.weight, self.bias, self.output, cout, 0)
        _check_quant_props(self, quantized)


@irdl_op_definition
class DepthwiseConv2DOp(_ConvOp):
    """Depthwise 2-D convolution, NHWC input, weights ``[1, KH, KW, Cin*multiplier]``."""

    name = "nn.depthwise_conv2d"

    def depth_multiplier(self) -> int:
        """Output channels per input channel."""
        return shape_of(self.weight)[3] // shape_of(self.input)[3]

    def verify_(self) -> None:
        x = _check_rank(self.name, self.input, 4, "input")
        w = _check_rank(self.name, self.weight, 4, "weight")
        y = _check_rank(self.name, self.output, 4, "result")
        one, kh, kw, cout = w
        if one != 1:
            raise VerifyException(f"depthwise weight must be [1, KH, KW, C], got {_fmt(self.weight)}")
        if cout % x[3] != 0:
            raise VerifyException(
                f"weight channels {cout} are not a multiple of input channels {x[3]} "
                f"({_fmt(self.input)}, {_fmt(self.weight)})"
            )
        self._verify_window(x, (kh, kw), y, cout)
        quantized = _verify_weights(self.input, self.weight, self.bias, self.output, cout, 3)
        _check_quant_props(self, quantized)


@irdl_op_definition
class FullyConnectedOp(QuantizableOp, _FusedActivationMixin):
    """Fully connected layer: ``y = x @ W^T + b`` with weights ``[Cout, K]``.

    The input is flattened to ``[numel/K, K]``; with `keep_num_dims` the result
    keeps the input's leading dimensions.
    """

    name = "nn.fully_connected"

    input = operand_def(AnyTensor)
    weight = operand_def(AnyTensor)
    bias = opt_operand_def(AnyTensor)
    output = result_def(AnyTensor)
    keep_num_dims = opt_prop_def(UnitAttr)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"

    @staticmethod
    def result_shape(x: Sequence[int], w: Sequence[int], keep_num_dims: bool) -> tuple[int, ...] | None:
        """Result shape, or None when the input does not flatten to K columns."""
        k = w[1]
        n = num_elements(x)
        if k < 1 or n % k != 0:
            return None
        if keep_num_dims:
            return (*x[:-1], w[0]) if x and x[-1] == k else None
        return (n // k, w[0])

    def verify_(self) -> None:
        x = shape_of(self.input)
        w = _check_rank(self.name, self.weight, 2, "weight")
        y = shape_of(self.output)
        expected = self.result_shape(x, w, self.keep_num_dims is not None)
        if expected is None:
            raise VerifyException(
                f"input {_fmt(self.input)} does not flatten to rows of {w[1]} (weight {_fmt(self.weight)})"
            )
        if tuple(y) != expected:
            raise VerifyException(f"result shape {list(y)} != expected {list(expected)}")
        _check_enum("fused_activation", self.fused_activation, ACTIVATIONS)
        quantized = _verify_weights(self.input, self.weight, self.bias, self.output, w[0], 0)
        _check_quant_props(self, quantized)


@irdl_op_definition
class MatMulOp(QuantizableOp):
    """Batched matrix product ``[..., M, K] x [..., K, N] -> [..., M, N]``, batch dims broadcast.

    `adj_x` / `adj_y` transpose the last two dimensions of an operand first.
    Both operands are activations (quantized per tensor when quantized).
    """

    name = "nn.matmul"

    lhs = operand_def(AnyTensor)
    rhs = operand_def(AnyTensor)
    output = result_def(AnyTensor)
    adj_x = opt_prop_def(UnitAttr)
    adj_y = opt_prop_def(UnitAttr)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    @staticmethod
    def result_shape(a: Sequence[int], b: Sequence[int], adj_x: bool, adj_y: bool) -> tuple[int, ...] | None:
        """Result shape, or None on a mismatch."""
        if len(a) < 2 or len(b) < 2:
            return None
        m, k = (a[-1], a[-2]) if adj_x else (a[-2], a[-1])
        k2, n = (b[-1], b[-2]) if adj_y else (b[-2], b[-1])
        if k != k2:
            return None
        batch = broadcast_shapes(a[:-2], b[:-2])
        return None if batch is None else (*batch, m, n)

    def verify_(self) -> None:
        a, b, y = shape_of(self.lhs), shape_of(self.rhs), shape_of(self.output)
        expected = self.result_shape(a, b, self.adj_x is not None, self.adj_y is not None)
        if expected is None:
            raise VerifyException(f"incompatible operands {_fmt(self.lhs)} and {_fmt(self.rhs)}")
        if tuple(y) != expected:
            raise VerifyException(f"result shape {list(y)} != expected {list(expected)}")
        quantized = _check_same_family([self.lhs, self.rhs], [self.output])
        _check_quant_props(self, quantized)


# --------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------


class _BinaryOp(QuantizableOp, _FusedActivationMixin):
    lhs = operand_def(AnyTensor)
    rhs = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute, **props: Attribute) -> None:
        super().__init__(operands=[lhs, rhs], result_types=[result_type], properties=props)

    def verify_(self) -> None:
        a, b, y = shape_of(self.lhs), shape_of(self.rhs), shape_of(self.output)
        expected = broadcast_shapes(a, b)
        if expected is None:
            raise VerifyException(f"operands do not broadcast: {_fmt(self.lhs)}, {_fmt(self.rhs)}")
        if tuple(y) != expected:
            raise VerifyException(f"result shape {list(y)} != broadcast shape {list(expected)}")
        _check_enum("fused_activation", self.fused_activation, ACTIVATIONS)
        quantized = _check_same_family([self.lhs, self.rhs], [self.output])
        _check_quant_props(self, quantized)


@irdl_op_definition
class AddOp(_BinaryOp):
    """Elementwise sum with numpy broadcasting."""

    name = "nn.add"


@irdl_op_definition
class SubOp(_BinaryOp):
    """Elementwise difference with numpy broadcasting."""

    name = "nn.sub"


@irdl_op_definition
class MulOp(_BinaryOp):
    """Elementwise product with numpy broadcasting."""

    name = "nn.mul"


class _UnaryOp(QuantizableOp):
    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    def __init__(self, x: SSAValue, result_type: Attribute | None = None, **props: Attribute) -> None:
        super().__init__(
            operands=[x], result_types=[x.type if result_type is None else result_type], properties=props
        )

    def verify_(self) -> None:
        if shape_of(self.input) != shape_of(self.output):
            raise VerifyException(
                f"result shape must equal input shape: {_fmt(self.input)} -> {self.output.type}"
            )
        quantized = _check_same_family([self.input], [self.output])
        _check_quant_props(self, quantized)
        self._verify_extra(quantized)

    def _verify_extra(self, quantized: bool) -> None:
        pass


@irdl_op_definition
class ReluOp(_UnaryOp):
    """``max(x, 0)``."""

    name = "nn.relu"


@irdl_op_definition
class Relu6Op(_UnaryOp):
    """``min(max(x, 0), 6)``."""

    name = "nn.relu6"


@irdl_op_definition
class ClampOp(_UnaryOp):
    """``min(max(x, min), max)`` with bounds given as real values."""

    name = "nn.clamp"

    min = prop_def(FloatAttr)
    max = prop_def(FloatAttr)

    def _verify_extra(self, quantized: bool) -> None:
        lo, hi = self.min.value.data, self.max.value.data
        if not lo <= hi:
            raise VerifyException(f"clamp bounds must satisfy min <= max, got [{lo}, {hi}]")


@irdl_op_definition
class LogisticOp(_UnaryOp):
    """Sigmoid ``1 / (1 + exp(-x))``."""

    name = "nn.logistic"


@irdl_op_definition
class TanhOp(_UnaryOp):
    """Hyperbolic tangent."""

    name = "nn.tanh"


@irdl_op_definition
class SoftmaxOp(_UnaryOp):
    """Softmax over the last dimension, ``exp(beta*x) / sum(exp(beta*x))``."""

    name = "nn.softmax"

    beta = opt_prop_def(FloatAttr)

    def beta_value(self) -> float:
        """The beta property (1.0 when unset)."""
        return 1.0 if self.beta is None else self.beta.value.data

    def _verify_extra(self, quantized: bool) -> None:
        if not self.beta_value() > 0:
            raise VerifyException(f"beta must be positive, got {self.beta_value()}")
        if len(shape_of(self.input)) < 1:
            raise VerifyException("softmax needs rank >= 1")


# --------------------------------------------------------------------------
# Pools and reductions
# --------------------------------------------------------------------------


class _PoolOp(_WindowOp):
    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)
    kernel = prop_def(DenseArrayBase.constr(i64))

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    def verify_(self) -> None:
        x = _check_rank(self.name, self.input, 4, "input")
        y = _check_rank(self.name, self.output, 4, "result")
        k = ints(self.kernel)
        _check_positive("kernel", k, 2)
        self._verify_window(x, k, y, x[3])
        quantized = _check_same_family([self.input], [self.output])
        if quantized:
            _check_same_quant(self.input, self.output, "pooling keeps the quantization")
        _check_quant_props(self, quantized)


@irdl_op_definition
class MaxPool2DOp(_PoolOp):
    """Max pooling over ``kernel`` windows of an NHWC tensor (padding never wins)."""

    name = "nn.max_pool2d"


@irdl_op_definition
class AvgPool2DOp(_PoolOp):
    """Average pooling over ``kernel`` windows of an NHWC tensor; padded cells are not counted,
    so every window must cover at least one input cell (TFLite refuses an empty window too)."""

    name = "nn.avg_pool2d"

    def verify_(self) -> None:
        super().verify_()
        x = shape_of(self.input)
        k = ints(self.kernel)
        pads = self.explicit_padding(x[1:3], k)
        where = empty_window(x[1:3], k, ints(self.strides), pads)
        if where is not None:
            raise VerifyException(
                f"the window of output position {list(where)} covers only padding "
                f"(kernel {list(k)}, padding {list(pads)}): its average is undefined"
            )


@irdl_op_definition
class MeanOp(QuantizableOp):
    """Mean over `axes`; `keep_dims` keeps them as size 1."""

    name = "nn.mean"

    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)
    axes = prop_def(DenseArrayBase.constr(i64))
    keep_dims = opt_prop_def(UnitAttr)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    def axis_values(self) -> tuple[int, ...]:
        """Normalised (non-negative, sorted, unique) axes."""
        rank = len(shape_of(self.input))
        return tuple(sorted({a % rank if rank else a for a in ints(self.axes)}))

    def verify_(self) -> None:
        x, y = shape_of(self.input), shape_of(self.output)
        raw = ints(self.axes)
        if any(not -len(x) <= a < len(x) for a in raw):
            raise VerifyException(f"axes {list(raw)} out of range for {_fmt(self.input)}")
        axes = self.axis_values()
        if self.keep_dims is not None:
            expected = tuple(1 if i in axes else d for i, d in enumerate(x))
        else:
            expected = tuple(d for i, d in enumerate(x) if i not in axes)
        if tuple(y) != expected:
            raise VerifyException(f"result shape {list(y)} != expected {list(expected)}")
        quantized = _check_same_family([self.input], [self.output])
        _check_quant_props(self, quantized)


# --------------------------------------------------------------------------
# Data movement
# --------------------------------------------------------------------------


@irdl_op_definition
class ReshapeOp(IRDLOperation):
    """Reshape to the result type's shape (same number of elements, same element type)."""

    name = "nn.reshape"

    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    traits = traits_def(Pure(), _Canonicalization())
    assembly_format = _STD_FORMAT

    def __init__(self, x: SSAValue, result_type: Attribute) -> None:
        super().__init__(operands=[x], result_types=[result_type])

    def verify_(self) -> None:
        if num_elements(shape_of(self.input)) != num_elements(shape_of(self.output)):
            raise VerifyException(f"element count changes: {_fmt(self.input)} -> {self.output.type}")
        _check_same_quant(self.input, self.output, "reshape keeps the element type")
        if is_quantized(self.input) and elem_of(self.input).is_per_axis:  # type: ignore[attr-defined]
            raise VerifyException("reshape of a per-axis quantized tensor is not supported")


@irdl_op_definition
class TransposeOp(IRDLOperation):
    """Permute dimensions: result dim ``i`` is input dim ``perm[i]``."""

    name = "nn.transpose"

    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)
    perm = prop_def(DenseArrayBase.constr(i64))

    traits = traits_def(Pure(), _Canonicalization())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    def verify_(self) -> None:
        x, y, perm = shape_of(self.input), shape_of(self.output), ints(self.perm)
        if sorted(perm) != list(range(len(x))):
            raise VerifyException(f"perm {list(perm)} is not a permutation of {len(x)} dimensions")
        expected = tuple(x[p] for p in perm)
        if tuple(y) != expected:
            raise VerifyException(f"result shape {list(y)} != expected {list(expected)}")
        xq, yq = elem_of(self.input), elem_of(self.output)
        if isinstance(xq, UniformQuantizedType) and xq.axis is not None:
            # A per-axis quantized dimension moves with the permutation.
            moved = UniformQuantizedType(
                width=xq.width,
                signed=xq.signed,
                scales=xq.scale_values,
                zero_points=xq.zero_point_values,
                axis=list(perm).index(xq.axis),
                storage_min=xq.qmin,
                storage_max=xq.qmax,
                expressed_type=xq.expressed_type,
            )
            if yq != moved:
                raise VerifyException(f"transposing {_fmt(self.input)} gives element type {moved}, not {yq}")
            return
        _check_same_quant(self.input, self.output, "transpose keeps the element type")


@irdl_op_definition
class PadOp(IRDLOperation):
    """Constant padding; `pads` holds (before, after) per dimension; `value` is a real number.

    Quantized tensors are padded with the quantized `value` (the zero point for 0.0).
    """

    name = "nn.pad"

    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)
    pads = prop_def(DenseArrayBase.constr(i64))
    value = opt_prop_def(FloatAttr)

    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    def pad_pairs(self) -> list[tuple[int, int]]:
        """(before, after) per dimension."""
        p = ints(self.pads)
        return [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]

    def pad_value(self) -> float:
        """The real padding value (0.0 when unset)."""
        return 0.0 if self.value is None else self.value.value.data

    def verify_(self) -> None:
        x, y, p = shape_of(self.input), shape_of(self.output), ints(self.pads)
        if len(p) != 2 * len(x) or any(v < 0 for v in p):
            raise VerifyException(
                f"pads must hold {2 * len(x)} non-negative integers (before, after per dimension), got {list(p)}"
            )
        expected = tuple(d + b + a for d, (b, a) in zip(x, self.pad_pairs(), strict=True))
        if tuple(y) != expected:
            raise VerifyException(f"result shape {list(y)} != expected {list(expected)}")
        _check_same_quant(self.input, self.output, "pad keeps the element type")


@irdl_op_definition
class ConcatOp(_FusedActivationMixin):
    """Concatenation along `axis` (all inputs share the element type of the result)."""

    name = "nn.concat"

    inputs = var_operand_def(AnyTensor)
    output = result_def(AnyTensor)
    axis = prop_def(IntegerAttr[I64])

    traits = traits_def(Pure())

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    def axis_value(self) -> int:
        """The normalised concatenation axis."""
        return self.axis.value.data % len(shape_of(self.output))

    def verify_(self) -> None:
        if not self.inputs:
            raise VerifyException("concat needs at least one input")
        y = shape_of(self.output)
        raw = self.axis.value.data
        if not -len(y) <= raw < len(y):
            raise VerifyException(f"axis {raw} out of range for rank {len(y)}")
        axis = self.axis_value()
        total = 0
        for v in self.inputs:
            s = shape_of(v)
            if len(s) != len(y) or any(s[i] != y[i] for i in range(len(y)) if i != axis):
                raise VerifyException(
                    f"input {_fmt(v)} does not match result {self.output.type} off axis {axis}"
                )
            total += s[axis]
            _check_same_quant(v, self.output, "concat inputs and result")
        if total != y[axis]:
            raise VerifyException(f"inputs sum to {total} along axis {axis}, result has {y[axis]}")
        _check_enum("fused_activation", self.fused_activation, ACTIVATIONS)


@irdl_op_definition
class CopyOp(IRDLOperation):
    """Copy a tensor into another buffer, e.g. an overlay: weights moved from slow memory into free
    space of a fast arena ahead of their use. The value is unchanged; its ``nn.place`` says where the
    copy lives. Backends implement it as ``memcpy`` (or a DMA hook)."""

    name = "nn.copy"

    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    assembly_format = _STD_FORMAT

    def __init__(self, x: SSAValue) -> None:
        super().__init__(operands=[x], result_types=[x.type])

    def verify_(self) -> None:
        if self.input.type != self.output.type:
            raise VerifyException(f"a copy keeps its type: {_fmt(self.input)} -> {self.output.type}")


@irdl_op_definition
class QuantizeOp(QuantizableOp):
    """Float to quantized (``round(x/scale) + zp``, saturated), or requantize between quantized types."""

    name = "nn.quantize"

    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = _STD_FORMAT

    def verify_(self) -> None:
        if shape_of(self.input) != shape_of(self.output):
            raise VerifyException(
                f"result shape must equal input shape: {_fmt(self.input)} -> {self.output.type}"
            )
        if not is_quantized(self.output):
            raise VerifyException(f"result must be quantized, got {self.output.type}")
        if not (is_float(self.input) or is_quantized(self.input)):
            raise VerifyException(f"input must be float or quantized, got {_fmt(self.input)}")
        _verify_axis(elem_of(self.output), shape_of(self.output), "result")  # type: ignore[arg-type]
        _check_enum("rounding", self.rounding, ROUNDING_MODES)


@irdl_op_definition
class DequantizeOp(IRDLOperation):
    """Quantized to float: ``scale * (q - zp)``."""

    name = "nn.dequantize"

    input = operand_def(AnyTensor)
    output = result_def(AnyTensor)

    traits = traits_def(Pure())
    assembly_format = _STD_FORMAT

    def __init__(self, x: SSAValue, result_type: Attribute) -> None:
        super().__init__(operands=[x], result_types=[result_type])

    def verify_(self) -> None:
        if shape_of(self.input) != shape_of(self.output):
            raise VerifyException(
                f"result shape must equal input shape: {_fmt(self.input)} -> {self.output.type}"
            )
        if not is_quantized(self.input):
            raise VerifyException(f"input must be quantized, got {_fmt(self.input)}")
        if not is_float(self.output):
            raise VerifyException(f"result must be float, got {self.output.type}")
        _verify_axis(elem_of(self.input), shape_of(self.input), "input")  # type: ignore[arg-type]


NN = Dialect(
    "nn",
    [
        GraphOp,
        OutputOp,
        ConstOp,
        Conv2DOp,
        DepthwiseConv2DOp,
        FullyConnectedOp,
        MatMulOp,
        AddOp,
        SubOp,
        MulOp,
        ReluOp,
        Relu6Op,
        ClampOp,
        LogisticOp,
        TanhOp,
        SoftmaxOp,
        MaxPool2DOp,
        AvgPool2DOp,
        MeanOp,
        ReshapeOp,
        TransposeOp,
        PadOp,
        ConcatOp,
        QuantizeOp,
        DequantizeOp,
        CopyOp,
    ],
    [BufferAttr, PlaceAttr],
)
