"""`nn-propagate-transposes`: move `nn.transpose` ops out of the way so that they cancel.

Importing an NCHW model (ONNX) wraps every layout-sensitive op in a pair of
transposes. This pass sinks transposes towards the graph outputs through ops
that do not care about layout, where they meet the next op's inverse
transpose and cancel (`transpose∘transpose` folds here too, as in
`canonicalize`), and folds them into constants:

* unary elementwise ops (`relu`, `relu6`, `clamp`, `logistic`, `tanh`,
  per-tensor `quantize`/`dequantize`): ``u(T(x)) -> T(u(x))``;
* binary elementwise ops whose other operand is a transpose with the same
  permutation or a constant (the constant is permuted instead);
* `pad` (the pads are permuted), `concat` of equally transposed inputs (the
  axis is permuted), `mean` (the axes are permuted);
* ``T(const)`` becomes a permuted constant;
* ``reshape(T(x))`` is ``reshape(x)`` when `T` only moves size-1 dimensions;
* ``fully_connected(reshape(T(x)), W)`` with a constant `W` permutes the
  columns of `W` instead (the NCHW flatten before a classifier).

Every rewrite preserves results exactly: it only moves data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    LocationAttr,
    ModuleOp,
    TensorType,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.transforms.dead_code_elimination import region_dce

from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType
from nnopt.passes.canonicalization.nn import FoldTransposeChain


def _inverse(perm: Sequence[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _transpose_of(value: SSAValue) -> nn.TransposeOp | None:
    owner = value.owner
    return owner if isinstance(owner, nn.TransposeOp) else None


def _per_axis(value: SSAValue | Attribute) -> bool:
    elem = nn.elem_of(value)
    return isinstance(elem, UniformQuantizedType) and elem.is_per_axis


def _with_shape(value: SSAValue, shape: Sequence[int]) -> TensorType[Attribute]:
    return TensorType(nn.elem_of(value), list(shape))


def _new_transpose(
    x: SSAValue, perm: Sequence[int], result_type: Attribute, loc: LocationAttr
) -> nn.TransposeOp:
    op = nn.TransposeOp(operands=[x], result_types=[result_type], properties={"perm": nn.int_array(perm)})
    op.location = loc
    return op


def _clone_with(
    op: Operation, operands: Sequence[SSAValue], result_type: Attribute, **props: Attribute
) -> Operation:
    """`op` rebuilt on new operands and result type (same properties unless overridden)."""
    new = type(op).create(
        operands=list(operands),
        result_types=[result_type],
        properties={**op.properties, **props},
        attributes=dict(op.attributes),
    )
    new.location = op.location
    return new


def _sink(
    rewriter: PatternRewriter,
    op: Operation,
    new: Operation,
    perm: Sequence[int],
    moved: nn.TransposeOp,
    before: Sequence[Operation] = (),
) -> None:
    """Replace `op` by ``transpose(new, perm)`` (after the ops `before`); the new transpose is named like `moved`."""
    t = _new_transpose(new.results[0], perm, op.results[0].type, moved.location)
    new.results[0].name_hint = op.results[0].name_hint
    t.output.name_hint = moved.output.name_hint
    rewriter.replace(op, [*before, new, t], [t.output])


# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------


def const_array(op: nn.ConstOp) -> np.ndarray:
    """The stored values of a constant as an array of same-sized raw integers (for moving data only)."""
    value_type = op.value.type
    elem = value_type.get_element_type()
    width = elem.width.data if isinstance(elem, IntegerType) else int(getattr(elem, "bitwidth", 32))
    itemsize = max(width // 8, 1)
    data = np.frombuffer(op.value.data.data, dtype=np.dtype(f"<u{itemsize}"))
    shape = value_type.get_shape()
    return data.reshape(shape) if data.size == int(np.prod(shape)) else np.broadcast_to(data, shape)


def make_const(like: nn.ConstOp, data: np.ndarray, result_elem: Attribute) -> nn.ConstOp:
    """A constant shaped like `data`, with `like`'s storage type and `result_elem` as element type."""
    value_elem = like.value.type.get_element_type()
    attr = DenseIntOrFPElementsAttr(
        TensorType(value_elem, list(data.shape)), BytesAttr(np.ascontiguousarray(data).tobytes())
    )
    new = nn.ConstOp(attr, TensorType(result_elem, list(data.shape)))
    new.location = like.location
    new.result.name_hint = like.result.name_hint
    return new


class FoldTransposeOfConstant(RewritePattern):
    """``transpose(const)`` is a constant with permuted data (when the const has no other use)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.TransposeOp, rewriter: PatternRewriter) -> None:
        const = op.input.owner
        if not isinstance(const, nn.ConstOp) or not const.result.has_one_use():
            return
        perm = nn.ints(op.perm)
        data = const_array(const).transpose(perm)
        new = make_const(const, data, nn.elem_of(op.output))
        new.location = op.location
        new.result.name_hint = op.output.name_hint
        rewriter.replace(op, new)


# --------------------------------------------------------------------------
# Sinking through layout-agnostic ops
# --------------------------------------------------------------------------


class SinkTransposeThroughUnary(RewritePattern):
    """``u(transpose(x)) -> transpose(u(x))`` for elementwise unary ops on per-tensor types."""

    @op_type_rewrite_pattern
    def match_and_rewrite(
        self,
        op: nn.ReluOp | nn.Relu6Op | nn.ClampOp | nn.LogisticOp | nn.TanhOp | nn.QuantizeOp | nn.DequantizeOp,
        rewriter: PatternRewriter,
    ) -> None:
        t = _transpose_of(op.input)
        if t is None or _per_axis(op.input) or _per_axis(op.output):
            return
        perm = nn.ints(t.perm)
        inner = _with_shape(op.output, nn.shape_of(t.input))
        _sink(rewriter, op, _clone_with(op, [t.input], inner), perm, t)


class SinkTransposeThroughBinary(RewritePattern):
    """``b(T(x), T(y)) -> T(b(x, y))`` and ``b(T(x), c) -> T(b(x, c'))`` with a permuted constant `c'`."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.AddOp | nn.SubOp | nn.MulOp, rewriter: PatternRewriter) -> None:
        if any(_per_axis(v) for v in (op.lhs, op.rhs, op.output)):
            return
        tl, tr = _transpose_of(op.lhs), _transpose_of(op.rhs)
        rank = len(nn.shape_of(op.output))
        lead = tl or tr
        if lead is None or len(nn.shape_of(lead.output)) != rank:
            return
        perm = nn.ints(lead.perm)
        inv = _inverse(perm)
        new_ops: list[Operation] = []
        operands: list[SSAValue] = []
        for value, t in ((op.lhs, tl), (op.rhs, tr)):
            if t is not None and nn.ints(t.perm) == perm and len(nn.shape_of(t.input)) == rank:
                operands.append(t.input)
                continue
            const = value.owner
            if not isinstance(const, nn.ConstOp):
                return
            data = const_array(const)
            data = data.reshape((1,) * (rank - data.ndim) + data.shape).transpose(inv)
            new_const = make_const(const, data, nn.elem_of(const.result))
            new_ops.append(new_const)
            operands.append(new_const.result)
        out_shape = [nn.shape_of(op.output)[p] for p in inv]
        new = _clone_with(op, operands, _with_shape(op.output, out_shape))
        _sink(rewriter, op, new, perm, lead, new_ops)


class SinkTransposeThroughPad(RewritePattern):
    """``pad(T(x)) -> T(pad'(x))`` with the pads permuted."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.PadOp, rewriter: PatternRewriter) -> None:
        t = _transpose_of(op.input)
        if t is None:
            return
        perm = nn.ints(t.perm)
        pairs = op.pad_pairs()
        new_pairs = [(0, 0)] * len(pairs)
        for i, p in enumerate(perm):
            new_pairs[p] = pairs[i]
        inv = _inverse(perm)
        out_shape = [nn.shape_of(op.output)[p] for p in inv]
        pads = nn.int_array([v for pair in new_pairs for v in pair])
        new = _clone_with(op, [t.input], _with_shape(op.output, out_shape), pads=pads)
        _sink(rewriter, op, new, perm, t)


class SinkTransposeThroughConcat(RewritePattern):
    """``concat(T(x1), T(x2), axis=a) -> T(concat(x1, x2, axis=perm[a]))``."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ConcatOp, rewriter: PatternRewriter) -> None:
        ts = [_transpose_of(v) for v in op.inputs]
        first = ts[0]
        if first is None:
            return
        perm = nn.ints(first.perm)
        if any(t is None or nn.ints(t.perm) != perm for t in ts):
            return
        inv = _inverse(perm)
        out_shape = [nn.shape_of(op.output)[p] for p in inv]
        axis = IntegerAttr(perm[op.axis_value()], i64)
        new = _clone_with(
            op, [t.input for t in ts if t is not None], _with_shape(op.output, out_shape), axis=axis
        )
        _sink(rewriter, op, new, perm, first)


class SinkTransposeThroughMean(RewritePattern):
    """``mean(T(x), axes) -> T'(mean(x, perm[axes]))``."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.MeanOp, rewriter: PatternRewriter) -> None:
        t = _transpose_of(op.input)
        if t is None or _per_axis(op.input):
            return
        perm = nn.ints(t.perm)
        axes = op.axis_values()
        new_axes = sorted(perm[a] for a in axes)
        x_shape = nn.shape_of(t.input)
        keep = op.keep_dims is not None
        if keep:
            out_shape = [1 if d in new_axes else s for d, s in enumerate(x_shape)]
            out_perm = list(perm)
        else:
            out_shape = [s for d, s in enumerate(x_shape) if d not in new_axes]
            remaining_x = [d for d in range(len(x_shape)) if d not in new_axes]
            out_perm = [remaining_x.index(perm[i]) for i in range(len(perm)) if i not in axes]
        new = _clone_with(op, [t.input], _with_shape(op.output, out_shape), axes=nn.int_array(new_axes))
        if out_perm == sorted(out_perm):
            new.results[0].name_hint = op.output.name_hint
            rewriter.replace(op, new)
            return
        _sink(rewriter, op, new, out_perm, t)


# --------------------------------------------------------------------------
# Reshapes and fully connected layers
# --------------------------------------------------------------------------


def _moves_only_unit_dims(shape: Sequence[int], perm: Sequence[int]) -> bool:
    order = [p for p in perm if shape[p] != 1]
    return order == sorted(order)


class FoldTransposeIntoReshape(RewritePattern):
    """``reshape(T(x)) -> reshape(x)`` when `T` keeps the order of the non-unit dimensions."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ReshapeOp, rewriter: PatternRewriter) -> None:
        t = _transpose_of(op.input)
        if t is None or not _moves_only_unit_dims(nn.shape_of(t.input), nn.ints(t.perm)):
            return
        new = nn.ReshapeOp(t.input, op.output.type)
        new.location = op.location
        rewriter.replace(op, new)


class FoldTransposeIntoFullyConnected(RewritePattern):
    """``fc(reshape(T(x)), W) -> fc(reshape(x), W')``: the flatten order moves into W's columns."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.FullyConnectedOp, rewriter: PatternRewriter) -> None:
        reshape = op.input.owner
        if not isinstance(reshape, nn.ReshapeOp) or op.keep_num_dims is not None:
            return
        t = _transpose_of(reshape.input)
        const = op.weight.owner
        if t is None or not isinstance(const, nn.ConstOp) or not const.result.has_one_use():
            return
        perm = nn.ints(t.perm)
        x_shape = nn.shape_of(t.input)
        flat = nn.shape_of(reshape.output)
        if perm[0] != 0 or len(flat) != 2 or flat[0] != x_shape[0]:
            return
        inner = [p - 1 for p in perm[1:]]
        k = flat[1]
        index = np.arange(k).reshape(x_shape[1:]).transpose(inner).reshape(-1)
        w = const_array(const)
        new_w = np.empty_like(w)
        new_w[:, index] = w
        new_const = make_const(const, new_w, nn.elem_of(const.result))
        new_reshape = nn.ReshapeOp(t.input, reshape.output.type)
        new_reshape.location = reshape.location
        new_reshape.output.name_hint = reshape.output.name_hint
        operands = [new_reshape.output, new_const.result, *([op.bias] if op.bias is not None else [])]
        new = type(op).create(
            operands=operands,
            result_types=[op.output.type],
            properties=dict(op.properties),
            attributes=dict(op.attributes),
        )
        new.location = op.location
        rewriter.replace(op, [new_const, new_reshape, new])


PATTERNS: tuple[RewritePattern, ...] = (
    FoldTransposeChain(),
    FoldTransposeOfConstant(),
    SinkTransposeThroughUnary(),
    SinkTransposeThroughBinary(),
    SinkTransposeThroughPad(),
    SinkTransposeThroughConcat(),
    SinkTransposeThroughMean(),
    FoldTransposeIntoReshape(),
    FoldTransposeIntoFullyConnected(),
)


@dataclass(frozen=True)
class PropagateTransposesPass(ModulePass):
    """Sink `nn.transpose` ops through layout-agnostic ops, cancel pairs and fold them into constants."""

    name = "nn-propagate-transposes"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier(list(PATTERNS)), post_walk_func=region_dce
        ).rewrite_module(op)
