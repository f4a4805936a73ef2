"""Layer kinds of the `.nn` format: their arguments, shape inference and `nn` ops.

Each kind is a `Kind` in `KINDS`: the keyword arguments it accepts, how many
inputs it takes, and a builder that checks the shapes (every mistake is a
located `UserError`) and emits the ops through a `LayerContext`. Users never
write output shapes: they are inferred with the helpers of `nnopt.dialects.nn`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import FloatAttr, IntegerAttr, StringAttr, TensorType, UnitAttr, f32, i64
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import IRDLOperation

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontend.syntax import Arg, Ident, Layer, ListValue, Number, Pos, Source, Value
from nnopt.dialects import nn

FUSED_ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")
"""Activations folded into the op's `fused_activation` property."""

SEPARATE_ACTIVATIONS = ("tanh", "logistic", "sigmoid")
"""Activations that become their own op after the layer."""

Shape = tuple[int, ...]


def _dims(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _hw(pair: Sequence[int]) -> str:
    return f"{pair[0]}x{pair[1]}"


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------


class Args:
    """Typed access to a layer's keyword arguments, with located errors."""

    def __init__(self, source: Source, layer: Layer, accepted: Sequence[str]) -> None:
        self.source = source
        self.layer = layer
        self.keywords: dict[str, Arg] = {}
        self.positional: list[Arg] = []
        for arg in layer.args:
            if arg.key is None:
                if self.keywords:
                    raise source.error(arg.pos, "positional argument after keyword arguments")
                self.positional.append(arg)
                continue
            if arg.key in self.keywords:
                first = self.keywords[arg.key].pos
                raise source.error(arg.pos, f"argument '{arg.key}' given twice (first at line {first.line})")
            if arg.key not in accepted:
                hint = difflib.get_close_matches(arg.key, accepted, n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                listing = ", ".join(accepted) if accepted else "none"
                raise source.error(
                    arg.pos,
                    f"unknown argument '{arg.key}' for {layer.kind}{suggestion} (accepted: {listing})",
                )
            self.keywords[arg.key] = arg

    def error(self, arg: Arg, message: str) -> UserError:
        """An error about argument `arg`, at its value."""
        return self.source.error(arg.value.pos, message)

    def _expect(self, arg: Arg, what: str) -> UserError:
        return self.error(
            arg, f"argument '{arg.key}' of {self.layer.kind} must be {what}, got {arg.value.describe()}"
        )

    def has(self, key: str) -> bool:
        """True when `key` was given."""
        return key in self.keywords

    def require(self, key: str) -> Arg:
        """The argument `key`; a located error when it is missing."""
        arg = self.keywords.get(key)
        if arg is None:
            raise self.source.error(self.layer.kind_pos, f"{self.layer.kind} needs argument '{key}'")
        return arg

    # -- scalars ---------------------------------------------------------
    def _int_value(self, arg: Arg, value: Value, minimum: int | None, what: str) -> int:
        if not isinstance(value, Number) or not isinstance(value.value, int):
            raise self._expect(arg, what)
        if minimum is not None and value.value < minimum:
            raise self._expect(arg, what)
        return value.value

    def integer(self, key: str, default: int | None = None, minimum: int | None = 1) -> int:
        """An integer argument (at least `minimum`); required when `default` is None."""
        if default is not None and key not in self.keywords:
            return default
        arg = self.require(key)
        what = "a positive integer" if minimum == 1 else "an integer"
        return self._int_value(arg, arg.value, minimum, what)

    def real(self, key: str, default: float | None = None) -> float:
        """A real-number argument; required when `default` is None."""
        if default is not None and key not in self.keywords:
            return default
        arg = self.require(key)
        if not isinstance(arg.value, Number):
            raise self._expect(arg, "a number")
        value = float(arg.value.value)
        if not math.isfinite(value):
            raise self._expect(arg, "a finite number")
        return value

    def flag(self, key: str, default: bool) -> bool:
        """A ``true``/``false`` argument."""
        arg = self.keywords.get(key)
        if arg is None:
            return default
        if isinstance(arg.value, Ident) and arg.value.name.lower() in ("true", "false"):
            return arg.value.name.lower() == "true"
        raise self._expect(arg, "true or false")

    def word(self, key: str, choices: Sequence[str], default: str) -> str:
        """One of a fixed set of words (``padding=same``)."""
        arg = self.keywords.get(key)
        if arg is None:
            return default
        if isinstance(arg.value, Ident) and arg.value.name in choices:
            return arg.value.name
        raise self._expect(arg, "one of " + ", ".join(choices))

    # -- sequences -------------------------------------------------------
    def pair(self, key: str, default: tuple[int, int] | None = None) -> tuple[int, int]:
        """A positive integer or a pair of them (``kernel=3``, ``kernel=(10, 4)``)."""
        if default is not None and key not in self.keywords:
            return default
        arg = self.require(key)
        what = "a positive integer or a pair (h, w) of them"
        value = arg.value
        if isinstance(value, Number):
            v = self._int_value(arg, value, 1, what)
            return (v, v)
        if isinstance(value, ListValue) and len(value.items) == 2:
            a, b = (self._int_value(arg, item, 1, what) for item in value.items)
            return (a, b)
        raise self._expect(arg, what)

    def ints(self, key: str, default: Shape | None = None, minimum: int | None = None) -> Shape:
        """A list of integers (a single integer counts as a list of one)."""
        if default is not None and key not in self.keywords:
            return default
        arg = self.require(key)
        what = "a list of integers" if minimum is None else f"a list of integers >= {minimum}"
        value = arg.value
        items = value.items if isinstance(value, ListValue) else (value,)
        return tuple(self._int_value(arg, item, minimum, what) for item in items)

    def padding(self, key: str = "padding") -> str | tuple[int, int, int, int]:
        """``same``, ``valid`` or explicit ``(top, bottom, left, right)``."""
        arg = self.keywords.get(key)
        if arg is None:
            return "valid"
        what = "same, valid or (top, bottom, left, right)"
        value = arg.value
        if isinstance(value, Ident) and value.name in nn.PADDING_MODES:
            return value.name
        if isinstance(value, ListValue) and len(value.items) == 4:
            t, b, left, r = (self._int_value(arg, item, 0, what) for item in value.items)
            return (t, b, left, r)
        raise self._expect(arg, what)

    def pads(self, key: str, rank: int) -> list[tuple[int, int]]:
        """``(before, after)`` per dimension: a list of pairs or a flat list of 2*rank integers."""
        arg = self.require(key)
        what = f"{rank} (before, after) pairs of non-negative integers"
        value = arg.value
        if not isinstance(value, ListValue):
            raise self._expect(arg, what)
        if all(isinstance(item, ListValue) for item in value.items):
            pairs: list[tuple[int, int]] = []
            for item in value.items:
                assert isinstance(item, ListValue)
                if len(item.items) != 2:
                    raise self._expect(arg, what)
                a, b = (self._int_value(arg, x, 0, what) for x in item.items)
                pairs.append((a, b))
        else:
            flat = [self._int_value(arg, x, 0, what) for x in value.items]
            if len(flat) % 2:
                raise self._expect(arg, what)
            pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        if len(pairs) != rank:
            raise self.error(
                arg,
                f"argument '{key}' of {self.layer.kind} needs {rank} (before, after) pairs, got {len(pairs)}",
            )
        return pairs


# --------------------------------------------------------------------------
# Building a layer
# --------------------------------------------------------------------------


@dataclass
class Operand:
    """A positional input of a layer: a value (from a reference or a number literal)."""

    value: SSAValue
    arg: Arg

    @property
    def shape(self) -> Shape:
        """The static shape of the value."""
        return nn.shape_of(self.value)

    @property
    def label(self) -> str:
        """``'name' [d0, d1]`` for messages."""
        return f"'{self.arg.value.describe()}' {_dims(self.shape)}"


ParamFactory = Callable[[str, Shape, int], SSAValue]
"""``(role, shape, fan_in) -> value`` of a weight or bias constant (role: weight, bias)."""


@dataclass
class LayerContext:
    """What a builder sees: the layer, its arguments and inputs, and ways to emit IR."""

    source: Source
    layer: Layer
    args: Args
    inputs: list[Operand]
    emit: Callable[[Operation], Operation]
    param: ParamFactory

    @property
    def kind(self) -> str:
        """The layer kind as written."""
        return self.layer.kind

    def error(self, message: str, pos: Pos | None = None) -> UserError:
        """An error about this layer (at its name unless `pos` is given)."""
        return self.source.error(pos or self.layer.pos, message)

    def rank4(self, operand: Operand) -> Shape:
        """The NHWC shape of an input that must have rank 4."""
        if len(operand.shape) != 4:
            raise self.error(f"{self.kind} needs a rank-4 NHWC input, got {operand.label}", operand.arg.pos)
        return operand.shape

    def activation(self, default: str = "none") -> str:
        """The `activation` argument."""
        return self.args.word("activation", (*FUSED_ACTIVATIONS, *SEPARATE_ACTIVATIONS), default)

    def finish(self, op: Operation, activation: str = "none") -> SSAValue:
        """Emit `op` (with its fused activation, or followed by a separate activation op)."""
        if activation in FUSED_ACTIVATIONS[1:]:
            op.properties["fused_activation"] = StringAttr(activation)
        self.emit(op)
        result = op.results[0]
        if activation in SEPARATE_ACTIVATIONS:
            result.name_hint = f"{self.layer.name}_pre"
            act = nn.TanhOp(result) if activation == "tanh" else nn.LogisticOp(result)
            self.emit(act)
            result = act.output
        result.name_hint = self.layer.name
        return result


def _f32(shape: Sequence[int]) -> TensorType[Attribute]:
    return TensorType(f32, list(shape))


def _window(
    ctx: LayerContext,
    x: Shape,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int],
    padding: str | tuple[int, int, int, int],
) -> tuple[int, int]:
    """Output (H, W) of a window op, with a located error when the window does not fit."""
    pads = nn.resolve_padding(nn.padding_attr(padding), x[1:3], kernel, strides, dilations)
    oh, ow = nn.window_output_hw(x[1:3], kernel, strides, dilations, pads)
    if oh < 1 or ow < 1:
        eff = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True))
        dilated = f" (dilated to {_hw(eff)})" if eff != kernel else ""
        pad_text = f" padded by {list(pads)}" if any(pads) else ""
        raise ctx.error(
            f"{ctx.kind} kernel {_hw(kernel)}{dilated} is larger than the input {_hw(x[1:3])}{pad_text}",
            ctx.args.keywords["kernel"].pos if "kernel" in ctx.args.keywords else None,
        )
    return oh, ow


def _window_props(strides: tuple[int, int], padding: str | tuple[int, int, int, int]) -> dict[str, Attribute]:
    return {"strides": nn.int_array(strides), "padding": nn.padding_attr(padding)}


def build_conv2d(ctx: LayerContext) -> SSAValue:
    """``conv2d(x, filters, kernel, stride=1, padding=valid, dilation=1, groups=1, bias=true, activation=none)``."""
    (inp,) = ctx.inputs
    x = ctx.rank4(inp)
    a = ctx.args
    filters = a.integer("filters")
    kernel = a.pair("kernel")
    strides = a.pair("stride", (1, 1))
    dilations = a.pair("dilation", (1, 1))
    padding = a.padding()
    groups = a.integer("groups", 1)
    bias = a.flag("bias", True)
    activation = ctx.activation()
    cin = x[3]
    if cin % groups or filters % groups:
        raise ctx.error(
            f"groups={groups} must divide both the input channels ({cin}) and filters ({filters})",
            a.keywords["groups"].value.pos,
        )
    oh, ow = _window(ctx, x, kernel, strides, dilations, padding)
    w_shape = (filters, kernel[0], kernel[1], cin // groups)
    w = ctx.param("weight", w_shape, kernel[0] * kernel[1] * (cin // groups))
    b = [ctx.param("bias", (filters,), 0)] if bias else []
    props = _window_props(strides, padding)
    if dilations != (1, 1):
        props["dilations"] = nn.int_array(dilations)
    op = nn.Conv2DOp(
        operands=[inp.value, w, b], result_types=[_f32((x[0], oh, ow, filters))], properties=props
    )
    return ctx.finish(op, activation)


def build_depthwise_conv2d(ctx: LayerContext) -> SSAValue:
    """``depthwise_conv2d(x, kernel, multiplier=1, stride=1, padding=valid, dilation=1, bias=true, activation=none)``."""
    (inp,) = ctx.inputs
    x = ctx.rank4(inp)
    a = ctx.args
    kernel = a.pair("kernel")
    multiplier = a.integer("multiplier", 1)
    strides = a.pair("stride", (1, 1))
    dilations = a.pair("dilation", (1, 1))
    padding = a.padding()
    bias = a.flag("bias", True)
    activation = ctx.activation()
    oh, ow = _window(ctx, x, kernel, strides, dilations, padding)
    cout = x[3] * multiplier
    w = ctx.param("weight", (1, kernel[0], kernel[1], cout), kernel[0] * kernel[1])
    b = [ctx.param("bias", (cout,), 0)] if bias else []
    props = _window_props(strides, padding)
    if dilations != (1, 1):
        props["dilations"] = nn.int_array(dilations)
    op = nn.DepthwiseConv2DOp(
        operands=[inp.value, w, b], result_types=[_f32((x[0], oh, ow, cout))], properties=props
    )
    return ctx.finish(op, activation)


def build_fully_connected(ctx: LayerContext) -> SSAValue:
    """``fully_connected(x, units, bias=true, keep_dims=false, activation=none)``: weights ``[units, K]``
    with K the input's last dimension."""
    (inp,) = ctx.inputs
    a = ctx.args
    units = a.integer("units")
    bias = a.flag("bias", True)
    keep = a.flag("keep_dims", False)
    activation = ctx.activation()
    x = inp.shape
    k = x[-1]
    out = nn.FullyConnectedOp.result_shape(x, (units, k), keep)
    assert out is not None  # K is the last dimension, so the input always flattens to rows of K
    w = ctx.param("weight", (units, k), k)
    b = [ctx.param("bias", (units,), 0)] if bias else []
    props: dict[str, Attribute] = {"keep_num_dims": UnitAttr()} if keep else {}
    op = nn.FullyConnectedOp(operands=[inp.value, w, b], result_types=[_f32(out)], properties=props)
    return ctx.finish(op, activation)


def build_matmul(ctx: LayerContext) -> SSAValue:
    """``matmul(a, b, transpose_a=false, transpose_b=false)``: batched, batch dimensions broadcast."""
    lhs, rhs = ctx.inputs
    adj_x = ctx.args.flag("transpose_a", False)
    adj_y = ctx.args.flag("transpose_b", False)
    out = nn.MatMulOp.result_shape(lhs.shape, rhs.shape, adj_x, adj_y)
    if out is None:
        raise ctx.error(f"matmul cannot multiply {lhs.label} by {rhs.label}")
    props: dict[str, Attribute] = {}
    if adj_x:
        props["adj_x"] = UnitAttr()
    if adj_y:
        props["adj_y"] = UnitAttr()
    op = nn.MatMulOp(operands=[lhs.value, rhs.value], result_types=[_f32(out)], properties=props)
    return ctx.finish(op)


_BinaryBuilder = Callable[[SSAValue, SSAValue, Attribute], IRDLOperation]


def _binary(name: str, cls: _BinaryBuilder) -> Callable[[LayerContext], SSAValue]:
    def build(ctx: LayerContext) -> SSAValue:
        lhs, rhs = ctx.inputs
        activation = ctx.activation()
        out = nn.broadcast_shapes(lhs.shape, rhs.shape)
        if out is None:
            raise ctx.error(f"{ctx.kind}: {lhs.label} and {rhs.label} do not broadcast")
        return ctx.finish(cls(lhs.value, rhs.value, _f32(out)), activation)

    build.__doc__ = f"``{name}(a, b, activation=none)`` with numpy broadcasting."
    return build


def _unary(name: str, cls: Callable[[SSAValue], IRDLOperation]) -> Callable[[LayerContext], SSAValue]:
    def build(ctx: LayerContext) -> SSAValue:
        (inp,) = ctx.inputs
        return ctx.finish(cls(inp.value))

    build.__doc__ = f"``{name}(x)``, elementwise."
    return build


def build_clamp(ctx: LayerContext) -> SSAValue:
    """``clamp(x, min, max)``."""
    (inp,) = ctx.inputs
    lo, hi = ctx.args.real("min"), ctx.args.real("max")
    if not lo <= hi:
        raise ctx.error(
            f"clamp needs min <= max, got min={lo:g} and max={hi:g}", ctx.args.keywords["min"].pos
        )
    op = nn.ClampOp(inp.value, min=FloatAttr(lo, f32), max=FloatAttr(hi, f32))
    return ctx.finish(op)


def build_softmax(ctx: LayerContext) -> SSAValue:
    """``softmax(x, beta=1.0)`` over the last dimension."""
    (inp,) = ctx.inputs
    beta = ctx.args.real("beta", 1.0)
    if beta <= 0:
        raise ctx.error(f"softmax needs beta > 0, got {beta:g}", ctx.args.keywords["beta"].value.pos)
    props: dict[str, Attribute] = {} if beta == 1.0 else {"beta": FloatAttr(beta, f32)}
    return ctx.finish(nn.SoftmaxOp(inp.value, **props))


def _pool(name: str, cls: type[IRDLOperation]) -> Callable[[LayerContext], SSAValue]:
    def build(ctx: LayerContext) -> SSAValue:
        (inp,) = ctx.inputs
        x = ctx.rank4(inp)
        a = ctx.args
        kernel = a.pair("kernel")
        strides = a.pair("stride", kernel)
        padding = a.padding()
        activation = ctx.activation()
        oh, ow = _window(ctx, x, kernel, strides, (1, 1), padding)
        props = _window_props(strides, padding)
        props["kernel"] = nn.int_array(kernel)
        op = cls(operands=[inp.value], result_types=[_f32((x[0], oh, ow, x[3]))], properties=props)
        return ctx.finish(op, activation)

    build.__doc__ = f"``{name}(x, kernel, stride=kernel, padding=valid, activation=none)``."
    return build


def build_mean(ctx: LayerContext) -> SSAValue:
    """``mean(x, axes, keep_dims=false)``."""
    (inp,) = ctx.inputs
    x = inp.shape
    axes = ctx.args.ints("axes")
    keep = ctx.args.flag("keep_dims", False)
    arg = ctx.args.keywords["axes"]
    if any(not -len(x) <= ax < len(x) for ax in axes):
        raise ctx.args.error(arg, f"axes {list(axes)} out of range for {inp.label} (rank {len(x)})")
    norm = [ax % len(x) for ax in axes]
    if len(set(norm)) != len(norm):
        raise ctx.args.error(arg, f"axes {list(axes)} name a dimension twice")
    if keep:
        out = tuple(1 if i in norm else d for i, d in enumerate(x))
    else:
        out = tuple(d for i, d in enumerate(x) if i not in norm)
    props: dict[str, Attribute] = {"axes": nn.int_array(axes)}
    if keep:
        props["keep_dims"] = UnitAttr()
    return ctx.finish(nn.MeanOp(operands=[inp.value], result_types=[_f32(out)], properties=props))


def build_reshape(ctx: LayerContext) -> SSAValue:
    """``reshape(x, shape)``; one dimension may be -1 (inferred)."""
    (inp,) = ctx.inputs
    arg = ctx.args.require("shape")
    dims = ctx.args.ints("shape", minimum=-1)
    count = nn.num_elements(inp.shape)
    if not dims or any(d == 0 for d in dims):
        raise ctx.args.error(
            arg, f"reshape needs a shape of positive sizes (and at most one -1), got {list(dims)}"
        )
    unknown = [i for i, d in enumerate(dims) if d == -1]
    if len(unknown) > 1:
        raise ctx.args.error(arg, f"reshape shape {list(dims)} has more than one -1")
    known = nn.num_elements([d for d in dims if d != -1])
    if unknown:
        if count % known:
            raise ctx.args.error(
                arg,
                f"reshape of {inp.label} ({count} elements) to {list(dims)}: {count} is not a multiple of {known}",
            )
        dims = tuple(count // known if d == -1 else d for d in dims)
    elif known != count:
        raise ctx.args.error(
            arg, f"reshape of {inp.label} ({count} elements) to {list(dims)} ({known} elements)"
        )
    return ctx.finish(nn.ReshapeOp(inp.value, _f32(dims)))


def build_flatten(ctx: LayerContext) -> SSAValue:
    """``flatten(x)``: reshape to ``[x0, x1*x2*...]``."""
    (inp,) = ctx.inputs
    x = inp.shape
    out = (x[0], nn.num_elements(x[1:])) if len(x) > 1 else (x[0], 1)
    return ctx.finish(nn.ReshapeOp(inp.value, _f32(out)))


def build_transpose(ctx: LayerContext) -> SSAValue:
    """``transpose(x, perm)``: result dimension i is input dimension perm[i]."""
    (inp,) = ctx.inputs
    perm = ctx.args.ints("perm", minimum=0)
    x = inp.shape
    if sorted(perm) != list(range(len(x))):
        raise ctx.args.error(
            ctx.args.keywords["perm"],
            f"perm {list(perm)} is not a permutation of the {len(x)} dimensions of {inp.label}",
        )
    props = {"perm": nn.int_array(perm)}
    out = tuple(x[p] for p in perm)
    return ctx.finish(nn.TransposeOp(operands=[inp.value], result_types=[_f32(out)], properties=props))


def build_pad(ctx: LayerContext) -> SSAValue:
    """``pad(x, pads=[(before, after), ...], value=0.0)``."""
    (inp,) = ctx.inputs
    x = inp.shape
    pairs = ctx.args.pads("pads", len(x))
    value = ctx.args.real("value", 0.0)
    out = tuple(d + b + e for d, (b, e) in zip(x, pairs, strict=True))
    props: dict[str, Attribute] = {"pads": nn.int_array([v for pair in pairs for v in pair])}
    if value != 0.0:
        props["value"] = FloatAttr(value, f32)
    return ctx.finish(nn.PadOp(operands=[inp.value], result_types=[_f32(out)], properties=props))


def build_concat(ctx: LayerContext) -> SSAValue:
    """``concat(a, b, ..., axis=-1, activation=none)``."""
    first = ctx.inputs[0]
    rank = len(first.shape)
    axis = ctx.args.integer("axis", -1, minimum=None)
    activation = ctx.activation()
    if not -rank <= axis < rank:
        raise ctx.args.error(ctx.args.keywords["axis"], f"axis {axis} out of range for rank {rank}")
    ax = axis % rank
    for other in ctx.inputs[1:]:
        s = other.shape
        if len(s) != rank or any(s[i] != first.shape[i] for i in range(rank) if i != ax):
            raise ctx.error(
                f"concat inputs must match off axis {ax}: {first.label} vs {other.label}", other.arg.pos
            )
    out = list(first.shape)
    out[ax] = sum(o.shape[ax] for o in ctx.inputs)
    op = nn.ConcatOp(
        operands=[[o.value for o in ctx.inputs]],
        result_types=[_f32(out)],
        properties={"axis": IntegerAttr(axis, i64)},
    )
    return ctx.finish(op, activation)


# --------------------------------------------------------------------------
# The table of kinds
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A layer kind: accepted keyword arguments, input count and builder."""

    keys: tuple[str, ...]
    min_inputs: int
    max_inputs: int | None
    build: Callable[[LayerContext], SSAValue]
    numbers_ok: bool = False
    """Whether a positional input may be a number literal (a broadcast constant)."""


_WINDOW_KEYS = ("kernel", "stride", "padding", "dilation", "bias", "activation")
_POOL_KEYS = ("kernel", "stride", "padding", "activation")

KINDS: dict[str, Kind] = {
    "conv2d": Kind(("filters", *_WINDOW_KEYS, "groups"), 1, 1, build_conv2d),
    "depthwise_conv2d": Kind((*_WINDOW_KEYS, "multiplier"), 1, 1, build_depthwise_conv2d),
    "fully_connected": Kind(("units", "bias", "keep_dims", "activation"), 1, 1, build_fully_connected),
    "matmul": Kind(("transpose_a", "transpose_b"), 2, 2, build_matmul),
    "add": Kind(("activation",), 2, 2, _binary("add", nn.AddOp), numbers_ok=True),
    "sub": Kind(("activation",), 2, 2, _binary("sub", nn.SubOp), numbers_ok=True),
    "mul": Kind(("activation",), 2, 2, _binary("mul", nn.MulOp), numbers_ok=True),
    "relu": Kind((), 1, 1, _unary("relu", nn.ReluOp)),
    "relu6": Kind((), 1, 1, _unary("relu6", nn.Relu6Op)),
    "logistic": Kind((), 1, 1, _unary("logistic", nn.LogisticOp)),
    "sigmoid": Kind((), 1, 1, _unary("sigmoid", nn.LogisticOp)),
    "tanh": Kind((), 1, 1, _unary("tanh", nn.TanhOp)),
    "clamp": Kind(("min", "max"), 1, 1, build_clamp),
    "softmax": Kind(("beta",), 1, 1, build_softmax),
    "max_pool2d": Kind(_POOL_KEYS, 1, 1, _pool("max_pool2d", nn.MaxPool2DOp)),
    "avg_pool2d": Kind(_POOL_KEYS, 1, 1, _pool("avg_pool2d", nn.AvgPool2DOp)),
    "mean": Kind(("axes", "keep_dims"), 1, 1, build_mean),
    "reshape": Kind(("shape",), 1, 1, build_reshape),
    "flatten": Kind((), 1, 1, build_flatten),
    "transpose": Kind(("perm",), 1, 1, build_transpose),
    "pad": Kind(("pads", "value"), 1, 1, build_pad),
    "concat": Kind(("axis", "activation"), 1, None, build_concat),
}
"""Every layer kind of the `.nn` format, by the name used in model files."""
