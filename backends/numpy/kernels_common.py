"""Kernels of the ops without quantization parameters: data movement and dequantize."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.ir import Operation

from nnopt.backends.numpy.arrays import Kernel, activate, all_values, dequantize, lut_index, quantize_away
from nnopt.dialects import nn
from nnopt.dialects.qparams import QuantParamError, activation_range
from nnopt.dialects.quant import UniformQuantizedType

CommonMaker = Callable[[Operation], Kernel]


def reshape(op: Operation) -> Kernel:
    """Reshape (a view when possible)."""
    shape = nn.shape_of(op.results[0])
    return lambda args: args[0].reshape(shape)


def transpose(op: Operation) -> Kernel:
    """Permute dimensions."""
    assert isinstance(op, nn.TransposeOp)
    perm = nn.ints(op.perm)
    # A materialised (contiguous) result, as a backend stores it: consumers then see the
    # same memory order whether they read it here or from an arena (float sums depend on it).
    return lambda args: np.ascontiguousarray(np.transpose(args[0], perm))


def pad(op: Operation) -> Kernel:
    """Constant padding; quantized tensors pad with the quantized value (the zero point for 0.0)."""
    assert isinstance(op, nn.PadOp)
    elem = nn.elem_of(op.output)
    fill: float | int
    if isinstance(elem, UniformQuantizedType):
        if elem.is_per_axis:
            raise QuantParamError("padding a per-axis quantized tensor is not supported")
        q = quantize_away(np.asarray([op.pad_value()], dtype=np.float32), elem.scale, elem.zero_point)
        fill = int(np.clip(q[0], elem.qmin, elem.qmax))
    else:
        fill = op.pad_value()
    pairs = op.pad_pairs()

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        x = args[0]
        return np.pad(x, pairs, mode="constant", constant_values=np.asarray(fill, dtype=x.dtype))

    return kernel


def concat(op: Operation) -> Kernel:
    """Concatenation along the op's axis, with an optional fused activation."""
    assert isinstance(op, nn.ConcatOp)
    axis = op.axis_value()
    activation = op.activation()
    elem = nn.elem_of(op.output)
    if activation == "none":
        return lambda args: np.concatenate(list(args), axis=axis)
    if isinstance(elem, UniformQuantizedType):
        lo, hi = activation_range(activation, elem)
        return lambda args: np.clip(np.concatenate(list(args), axis=axis), lo, hi)
    return lambda args: activate(np.concatenate(list(args), axis=axis), activation)


def dequantize_op(op: Operation) -> Kernel:
    """Quantized -> float32: ``scale * (q - zp)`` (per tensor or per axis; a table for 8-bit tensors)."""
    assert isinstance(op, nn.DequantizeOp)
    q = nn.elem_of(op.input)
    assert isinstance(q, UniformQuantizedType)
    scales = np.asarray(q.scale_values, dtype=np.float32)
    zps = np.asarray(q.zero_point_values, dtype=np.int64)
    if q.axis is not None:
        shape = [1] * len(nn.shape_of(op.input))
        shape[q.axis] = -1
        s, z = scales.reshape(shape), zps.reshape(shape)
        return lambda args: dequantize(args[0], s, z)
    if q.width == 8:
        table = dequantize(all_values(q), scales[0], zps[0])
        return lambda args: table[lut_index(args[0])]
    return lambda args: dequantize(args[0], scales[0], zps[0])


def copy(op: Operation) -> Kernel:
    """``nn.copy``: the same value in a new buffer."""
    return lambda args: args[0].copy()


COMMON_MAKERS: dict[type[Operation], CommonMaker] = {
    nn.CopyOp: copy,
    nn.ReshapeOp: reshape,
    nn.TransposeOp: transpose,
    nn.PadOp: pad,
    nn.ConcatOp: concat,
    nn.DequantizeOp: dequantize_op,
}
"""Kernel makers of ops that work the same on float and quantized tensors."""
