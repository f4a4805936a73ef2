"""Kernels of the ops without quantization parameters: constants, data movement, dequantize."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type, Float64Type, IntegerType
from xdsl.ir import Operation

from nnopt.backends.numpy.kernels_float import activate
from nnopt.backends.numpy.kernels_int import dequantize, quantize_away
from nnopt.dialects import nn
from nnopt.dialects.qparams import QuantParamError, activation_range
from nnopt.dialects.quant import UniformQuantizedType

CommonKernel = Callable[[Operation, Sequence[np.ndarray]], np.ndarray]


def element_dtype(elem: object) -> np.dtype[np.generic]:
    """The numpy dtype the interpreter uses for a tensor element type."""
    if isinstance(elem, UniformQuantizedType):
        return elem.numpy_dtype
    if isinstance(elem, Float16Type | Float32Type | Float64Type | BFloat16Type):
        return np.dtype(np.float32)
    if isinstance(elem, IntegerType):
        width = elem.width.data
        if width == 1:
            return np.dtype(np.bool_)
        if width in (8, 16, 32, 64):
            unsigned = elem.signedness.data.name == "UNSIGNED"
            return np.dtype(f"{'uint' if unsigned else 'int'}{width}")
    raise QuantParamError(f"element type {elem} is not supported by the numpy interpreter")


def const(op: Operation) -> np.ndarray:
    """The value of `nn.const`, read without copying from the attribute's bytes when possible."""
    assert isinstance(op, nn.ConstOp)
    attr = op.value
    vt = attr.type
    shape = tuple(vt.get_shape())
    value_elem = vt.get_element_type()
    result_elem = nn.elem_of(op.result)
    raw = attr.data.data
    if isinstance(result_elem, UniformQuantizedType):
        arr = np.frombuffer(raw, dtype=result_elem.numpy_dtype)
    elif isinstance(value_elem, Float32Type):
        arr = np.frombuffer(raw, dtype=np.float32)
    elif isinstance(value_elem, Float64Type):
        arr = np.frombuffer(raw, dtype=np.float64).astype(np.float32)
    elif isinstance(value_elem, Float16Type):
        arr = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
    elif isinstance(value_elem, BFloat16Type):
        arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    elif isinstance(value_elem, IntegerType) and value_elem.width.data == 1:
        arr = np.frombuffer(raw, dtype=np.uint8) != 0
    else:
        arr = np.frombuffer(raw, dtype=element_dtype(value_elem))
    count = math.prod(shape)
    if arr.size == 1 and count != 1:
        return np.broadcast_to(arr.reshape(()), shape)
    return arr.reshape(shape)


def reshape(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Reshape (a view when possible)."""
    return args[0].reshape(nn.shape_of(op.results[0]))


def transpose(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Permute dimensions."""
    assert isinstance(op, nn.TransposeOp)
    return np.transpose(args[0], nn.ints(op.perm))


def pad(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Constant padding; quantized tensors pad with the quantized value (the zero point for 0.0)."""
    assert isinstance(op, nn.PadOp)
    x = args[0]
    elem = nn.elem_of(op.output)
    fill: float | int
    if isinstance(elem, UniformQuantizedType):
        if elem.is_per_axis:
            raise QuantParamError("padding a per-axis quantized tensor is not supported")
        q = quantize_away(np.asarray([op.pad_value()], dtype=np.float32), elem.scale, elem.zero_point)
        fill = int(np.clip(q[0], elem.qmin, elem.qmax))
    else:
        fill = op.pad_value()
    return np.pad(x, op.pad_pairs(), mode="constant", constant_values=np.asarray(fill, dtype=x.dtype))


def concat(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenation along the op's axis, with an optional fused activation."""
    assert isinstance(op, nn.ConcatOp)
    y = np.concatenate(list(args), axis=op.axis_value())
    activation = op.activation()
    if activation == "none":
        return y
    elem = nn.elem_of(op.output)
    if isinstance(elem, UniformQuantizedType):
        lo, hi = activation_range(activation, elem)
        return np.clip(y, lo, hi).astype(y.dtype)
    return activate(y, activation)


def dequantize_op(op: Operation, args: Sequence[np.ndarray]) -> np.ndarray:
    """Quantized -> float32: ``scale * (q - zp)`` (per tensor or per axis)."""
    assert isinstance(op, nn.DequantizeOp)
    x = args[0]
    q = nn.elem_of(op.input)
    assert isinstance(q, UniformQuantizedType)
    scales = np.asarray(q.scale_values, dtype=np.float32)
    zps = np.asarray(q.zero_point_values, dtype=np.int64)
    if q.axis is not None:
        shape = [1] * x.ndim
        shape[q.axis] = -1
        return dequantize(x, scales.reshape(shape), zps.reshape(shape))
    return dequantize(x, scales[0], zps[0])


COMMON_KERNELS: dict[type[Operation], CommonKernel] = {
    nn.ReshapeOp: reshape,
    nn.TransposeOp: transpose,
    nn.PadOp: pad,
    nn.ConcatOp: concat,
    nn.DequantizeOp: dequantize_op,
}
"""Kernels that work the same on float and quantized tensors."""
