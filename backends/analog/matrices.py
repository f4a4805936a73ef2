"""The weight matrix of a matrix op, and how its input vectors are gathered (im2col) and its outputs laid out.

A mapped op computes ``Y = P @ W (+ bias)`` where each row of ``P`` is one input
vector (a row of a fully connected layer's input, or one im2col patch of a
convolution) and ``W`` is the op's *logical* weight matrix, rows = inputs of
one output, cols = outputs:

==================  =====================================  ======================================
op                  rows                                   cols
==================  =====================================  ======================================
fully_connected     K (weights ``[Cout, K]`` transposed)   Cout
matmul (const rhs)  K                                      N
conv2d              groups x KH*KW*Cin/groups              Cout (group g: its Cout/groups)
depthwise_conv2d    C x KH*KW (channel-major)              C*M (block diagonal, one block per channel)
==================  =====================================  ======================================

A grouped matrix (``groups`` > 1) is block diagonal: group g holds rows
``[g*r, (g+1)*r)`` and columns ``[g*c, (g+1)*c)``. Values are real (quantized
weights and inputs are dequantized): the analog array computes on real
quantities, and the digital periphery quantizes results back when the op's
output type is quantized.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.ir import Operation, SSAValue

from nnopt.backends.numpy.arrays import const_value
from nnopt.backends.numpy.geometry import window_of
from nnopt.backends.numpy.windows import pad_hw, window_view
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

MATRIX_OPS = (nn.FullyConnectedOp, nn.Conv2DOp, nn.DepthwiseConv2DOp, nn.MatMulOp)
"""Ops whose products can run on analog tiles."""


def dequantize_array(q: np.ndarray, elem: UniformQuantizedType) -> np.ndarray:
    """Real values (float64) of stored integers, per tensor or per axis."""
    if elem.axis is None:
        return (q.astype(np.float64) - elem.zero_point) * elem.scale
    shape = [1] * q.ndim
    shape[elem.axis] = -1
    scale = np.asarray(elem.scale_values, dtype=np.float64).reshape(shape)
    zp = np.asarray(elem.zero_point_values, dtype=np.float64).reshape(shape)
    return (q.astype(np.float64) - zp) * scale


def real_constant(value: SSAValue | None) -> np.ndarray | None:
    """The real value of a constant operand (``nn.const``, or ``nn.dequantize`` of one), else None."""
    if value is None:
        return None
    owner = value.owner
    if isinstance(owner, nn.DequantizeOp):
        inner = owner.input.owner
        if not isinstance(inner, nn.ConstOp):
            return None
        elem = nn.elem_of(owner.input)
        assert isinstance(elem, UniformQuantizedType)
        return dequantize_array(const_value(inner), elem)
    if not isinstance(owner, nn.ConstOp):
        return None
    data = const_value(owner)
    elem = nn.elem_of(owner.result)
    if isinstance(elem, UniformQuantizedType):
        return dequantize_array(data, elem)
    if data.dtype.kind not in "fiu":
        return None
    return data.astype(np.float64)


def to_real(array: np.ndarray, value: SSAValue) -> np.ndarray:
    """An operand's runtime array as real values (float64)."""
    elem = nn.elem_of(value)
    if isinstance(elem, UniformQuantizedType):
        return dequantize_array(array, elem)
    return array.astype(np.float64, copy=False)


@dataclass
class MatrixOp:
    """The logical weight matrix of one op and its input/output geometry."""

    op: Operation
    kind: str
    """``fully_connected``, ``matmul``, ``conv2d`` or ``depthwise_conv2d``."""
    groups: int
    group_rows: int
    group_cols: int
    vectors: int
    """Input vectors per inference (rows of ``P``)."""
    weights: np.ndarray = field(repr=False)
    """``[groups, group_rows, group_cols]`` real weights."""
    bias: np.ndarray | None = field(repr=False, default=None)

    @property
    def rows(self) -> int:
        """Rows of the logical matrix."""
        return self.groups * self.group_rows

    @property
    def cols(self) -> int:
        """Columns of the logical matrix."""
        return self.groups * self.group_cols

    @property
    def weight_count(self) -> int:
        """Weights of the op (the non-structural-zero cells)."""
        return self.groups * self.group_rows * self.group_cols

    def block(self, row: int, col: int, rows: int, cols: int) -> np.ndarray:
        """The ``[rows, cols]`` rectangle of the logical matrix at (row, col) (zeros off the diagonal blocks)."""
        if self.groups == 1:
            return np.array(self.weights[0, row : row + rows, col : col + cols], dtype=np.float64)
        out = np.zeros((rows, cols), dtype=np.float64)
        r, c = self.group_rows, self.group_cols
        first = max(row // r, col // c)
        last = min((row + rows - 1) // r, (col + cols - 1) // c)
        for g in range(first, last + 1):
            r0, r1 = max(row, g * r), min(row + rows, (g + 1) * r)
            c0, c1 = max(col, g * c), min(col + cols, (g + 1) * c)
            if r0 < r1 and c0 < c1:
                out[r0 - row : r1 - row, c0 - col : c1 - col] = self.weights[
                    g, r0 - g * r : r1 - g * r, c0 - g * c : c1 - g * c
                ]
        return out

    def dense(self) -> np.ndarray:
        """The whole logical matrix (block diagonal when grouped)."""
        return self.block(0, 0, self.rows, self.cols)

    # -- execution --------------------------------------------------------
    def patches(self, x: np.ndarray) -> np.ndarray:
        """Input vectors ``P [vectors, rows]`` (float64) from the op's real-valued input."""
        op = self.op
        if isinstance(op, nn.FullyConnectedOp):
            return x.reshape(-1, self.rows)
        if isinstance(op, nn.MatMulOp):
            a = np.swapaxes(x, -1, -2) if op.adj_x is not None else x
            return a.reshape(-1, self.rows)
        assert isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp)
        win = window_of(op)
        xp = pad_hw(x, win.pads, 0.0)
        view = window_view(xp, win.kernel, win.strides, win.dilations, win.out_hw)
        n, oh, ow, kh, kw, c = view.shape
        m = n * oh * ow
        if isinstance(op, nn.DepthwiseConv2DOp):
            return np.ascontiguousarray(view.reshape(m, kh, kw, c).transpose(0, 3, 1, 2)).reshape(
                m, c * kh * kw
            )
        if self.groups == 1:
            return view.reshape(m, kh * kw * c)
        cin_g = c // self.groups
        cols = view.reshape(m, kh, kw, self.groups, cin_g).transpose(0, 3, 1, 2, 4)
        return np.ascontiguousarray(cols).reshape(m, self.rows)

    def output_shape(self) -> tuple[int, ...]:
        """The op's result shape."""
        return tuple(nn.shape_of(self.op.results[0]))


def _conv_groups(w: np.ndarray, groups: int) -> np.ndarray:
    cout = w.shape[0]
    per = cout // groups
    return np.ascontiguousarray(w.reshape(groups, per, -1).transpose(0, 2, 1))


def matrix_of(op: Operation) -> MatrixOp | str:
    """The op's logical matrix, or the reason it cannot run on tiles."""
    if isinstance(op, nn.FullyConnectedOp):
        w = real_constant(op.weight)
        if w is None:
            return "weights are not constant"
        bias = real_constant(op.bias) if op.bias is not None else None
        if op.bias is not None and bias is None:
            return "bias is not constant"
        k = w.shape[1]
        vectors = nn.num_elements(nn.shape_of(op.input)) // k
        return MatrixOp(op, "fully_connected", 1, k, w.shape[0], vectors, w.T[None].copy(), bias)
    if isinstance(op, nn.MatMulOp):
        b = real_constant(op.rhs)
        if b is None:
            return "right-hand side is not constant"
        if op.adj_y is not None:
            b = np.swapaxes(b, -1, -2)
        if b.ndim > 2 and int(np.prod(b.shape[:-2])) != 1:
            return "constant right-hand side has batch dimensions"
        b = b.reshape(b.shape[-2], b.shape[-1])
        a = nn.shape_of(op.lhs)
        vectors = nn.num_elements(a) // b.shape[0]
        return MatrixOp(op, "matmul", 1, b.shape[0], b.shape[1], vectors, b[None].copy(), None)
    if isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp):
        w = real_constant(op.weight)
        if w is None:
            return "weights are not constant"
        bias = real_constant(op.bias) if op.bias is not None else None
        if op.bias is not None and bias is None:
            return "bias is not constant"
        n, oh, ow, _ = nn.shape_of(op.output)
        vectors = n * oh * ow
        x = nn.shape_of(op.input)
        if isinstance(op, nn.DepthwiseConv2DOp):
            _, kh, kw, cm = w.shape
            c = x[3]
            mult = cm // c
            groups_w = w.reshape(kh, kw, c, mult).transpose(2, 0, 1, 3).reshape(c, kh * kw, mult)
            return MatrixOp(op, "depthwise_conv2d", c, kh * kw, mult, vectors, groups_w.copy(), bias)
        cout, kh, kw, cin_g = w.shape
        groups = x[3] // cin_g
        return MatrixOp(
            op, "conv2d", groups, kh * kw * cin_g, cout // groups, vectors, _conv_groups(w, groups), bias
        )
    return "not a matrix op"


def matrix_ops(ops: Sequence[Operation]) -> list[Operation]:
    """The matrix ops among `ops`, in order."""
    return [op for op in ops if isinstance(op, MATRIX_OPS)]
