"""Array helpers shared by the kernels: constants, element dtypes, (de)quantization, float clamps."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type, Float64Type, IntegerType
from xdsl.ir import Attribute, Operation, SSAValue

from nnopt.dialects import nn
from nnopt.dialects import qmath as qm
from nnopt.dialects.qparams import QuantParamError
from nnopt.dialects.quant import UniformQuantizedType

Kernel = Callable[[Sequence[np.ndarray]], np.ndarray]
"""A prepared op: operand arrays in, result array out."""

_BOUNDS: dict[str, tuple[float, float]] = {
    "none": (-np.inf, np.inf),
    "relu": (0.0, np.inf),
    "relu6": (0.0, 6.0),
    "relu_n1_to_1": (-1.0, 1.0),
}


def element_dtype(elem: Attribute) -> np.dtype[np.generic]:
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


def const_value(op: nn.ConstOp) -> np.ndarray:
    """The value of `nn.const`, viewing the attribute's bytes without a copy when possible."""
    attr = op.value
    vt = attr.type
    shape = tuple(vt.get_shape())
    value_elem = vt.get_element_type()
    result_elem = nn.elem_of(op.result)
    raw = attr.data.data
    arr: np.ndarray
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
    if arr.size == 1 and math.prod(shape) != 1:
        return np.broadcast_to(arr.reshape(()), shape)
    return arr.reshape(shape)


def static_value(value: SSAValue | None) -> np.ndarray | None:
    """The data of a value defined by `nn.const` (weights, biases), else None."""
    if value is None:
        return None
    owner: Operation | object = value.owner
    return const_value(owner) if isinstance(owner, nn.ConstOp) else None


def activate(y: np.ndarray, activation: str) -> np.ndarray:
    """Apply a fused activation (a clamp) to a float tensor."""
    if activation == "none":
        return y
    lo, hi = _BOUNDS[activation]
    return np.clip(y, np.float32(lo), np.float32(hi))


def activate_in_place(y: np.ndarray, activation: str) -> np.ndarray:
    """`activate` on a fresh float32 array, clamped in place (no np.clip wrapper, no copy)."""
    if activation == "none":
        return y
    lo, hi = _BOUNDS[activation]
    if lo != -np.inf:
        np.maximum(y, np.float32(lo), out=y)
    if hi != np.inf:
        np.minimum(y, np.float32(hi), out=y)
    return y


def dequantize(q: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int) -> np.ndarray:
    """``float32(scale) * float32(q - zp)`` (TFLM's and ONNX's DequantizeLinear agree)."""
    diff = (q.astype(np.int64) - np.asarray(zero_point, dtype=np.int64)).astype(np.float32)
    return diff * np.asarray(scale, dtype=np.float32)


def quantize_rint(x: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int) -> np.ndarray:
    """ONNX ``QuantizeLinear`` before saturation: ``rint(x / scale) + zp`` (float32 division)."""
    ratio = x.astype(np.float32) / np.asarray(scale, dtype=np.float32)
    return np.rint(ratio).astype(np.int64) + np.asarray(zero_point, dtype=np.int64)


def quantize_away(x: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int) -> np.ndarray:
    """TFLM ``AffineQuantize`` before saturation: ``roundf(x / scale) + zp`` (float32, ties away from 0)."""
    ratio = (x.astype(np.float32) / np.asarray(scale, dtype=np.float32)).astype(np.float32)
    return qm.round_half_away_array(ratio).astype(np.int64) + np.asarray(zero_point, dtype=np.int64)


def all_values(q: UniformQuantizedType) -> np.ndarray:
    """Every storable value of an 8-bit type, in the order of its bytes read as uint8 (a LUT index)."""
    return np.arange(256, dtype=np.uint8).view(q.numpy_dtype)


def lut_index(x: np.ndarray) -> np.ndarray:
    """The uint8 view of 8-bit data, indexing a table built over `all_values`."""
    return x.view(np.uint8)


def operand_shapes(op: Operation) -> list[tuple[int, ...]]:
    """Static shapes of the op's operands."""
    return [tuple(nn.shape_of(v)) for v in op.operands]


__all__ = [
    "Kernel",
    "activate",
    "activate_in_place",
    "all_values",
    "const_value",
    "dequantize",
    "element_dtype",
    "lut_index",
    "operand_shapes",
    "quantize_away",
    "quantize_rint",
    "static_value",
]
