"""The integers each quantized `nn` op needs, derived once from its types.

`compute(op)` follows the ``Prepare()`` code of the TFLite Micro kernel that
implements the op (``tensorflow/lite/micro/kernels/*_common.cc``) for the op's
`rounding_mode()`:

* ``tflite_double`` and ``single``: the multipliers and shifts of
  ``QuantizeMultiplier`` (``single`` saturates shifts above 30 as
  ``TFLITE_SINGLE_ROUNDING`` does), the activation clamp of
  ``CalculateActivationRangeQuantized``, zero points.
* ``onnx_rint``: the float32 multipliers ONNX's reference ``QLinearConv`` /
  ``QLinearMatMul`` use; every other op is specified as ``DequantizeLinear`` ->
  float op -> ``QuantizeLinear``, so it gets its float32 scales.

`attach(op)` stores the result as the op's ``qparams`` dictionary
(``array<i32: ...>``, ``array<f32: ...>`` and ``i32`` integer entries) and
`get(op)` reads it back (stored parameters are authoritative; missing ones are
computed). The numpy interpreter and the C backend read parameters only
through `get`, so they cannot disagree.

Keys by op (TFLite modes):

=====================  ==================================================================
conv2d, depthwise, FC  multiplier, shift (per output channel), clamp, input_zp,
                       weight_zp (per output channel), output_zp
matmul                 multiplier, shift (1 element), clamp, lhs_zp, rhs_zp, output_zp
add, sub               left_shift, input1_multiplier, input1_shift, input2_multiplier,
                       input2_shift, output_multiplier, output_shift, input1_zp,
                       input2_zp, output_zp, clamp
mul                    multiplier, shift, input1_zp, input2_zp, output_zp, clamp
relu, relu6, clamp     multiplier, shift, input_zp, output_zp, clamp
max/avg pool           clamp
mean                   multiplier, shift (with 1/count folded in), input_zp, output_zp, count
softmax                input_multiplier, input_left_shift, diff_min
logistic, tanh         input_zp, input_range_radius, input_multiplier, input_left_shift
quantize (float->int)  scale (f32, per channel for per-axis results), zero_point, axis
quantize (int->int)    multiplier, shift, input_zp, output_zp
=====================  ==================================================================

In ``onnx_rint`` mode conv/FC/matmul carry ``multiplier`` as f32 (no shift);
the other ops carry ``input_scale``/``input_zp`` (``input1_``/``input2_`` for
binary ops) and ``output_scale``/``output_zp`` (scales as f32), plus ``clamp``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from xdsl.dialects.builtin import (
    DenseArrayBase,
    DictionaryAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    f32,
    i32,
)
from xdsl.ir import Attribute, Operation, SSAValue

from nnopt.dialects import nn
from nnopt.dialects import qmath as qm
from nnopt.dialects.quant import UniformQuantizedType

Params = dict[str, np.ndarray | int]
"""Parameter name -> int, int32 array or float32 array."""

_ACTIVATION_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "none": (None, None),
    "relu": (0.0, None),
    "relu6": (0.0, 6.0),
    "relu_n1_to_1": (-1.0, 1.0),
}


class QuantParamError(ValueError):
    """The op's quantization cannot be implemented by the kernel of its rounding mode."""


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def is_quantized_op(op: Operation) -> bool:
    """True when `op` is a quantizable `nn` op working on quantized tensors."""
    if not isinstance(op, nn.QuantizableOp):
        return False
    return any(nn.is_quantized(v) for v in (*op.operands, *op.results))


def qtype(value: SSAValue) -> UniformQuantizedType:
    """The quantized element type of a tensor value."""
    q = nn.elem_of(value)
    if not isinstance(q, UniformQuantizedType):
        raise QuantParamError(f"expected a quantized tensor, got {value.type}")
    return q


def _s32(scale: float) -> float:
    """A scale as TFLite holds it: a float32."""
    return qm.f32(scale)


def _i32(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).astype(np.int32)


def _f32(values: object) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=np.float32))


def _quantize_value(real: float, q: UniformQuantizedType, mode: str) -> int:
    """Quantize one real bound as TFLite's ``Quantize`` helper (float32 division, roundf)."""
    ratio = np.float32(real) / np.float32(q.scale)
    rounded = float(np.rint(ratio)) if mode == "onnx_rint" else qm.round_half_away(float(ratio))
    return q.zero_point + int(rounded)


def activation_range(
    activation: str, q: UniformQuantizedType, mode: str = "tflite_double"
) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized``: the output clamp of a fused activation."""
    if activation not in _ACTIVATION_BOUNDS:
        raise QuantParamError(f"unknown fused activation '{activation}'")
    lo_real, hi_real = _ACTIVATION_BOUNDS[activation]
    lo, hi = q.qmin, q.qmax
    if lo_real is not None:
        lo = max(lo, _quantize_value(lo_real, q, mode))
    if hi_real is not None:
        hi = min(hi, _quantize_value(hi_real, q, mode))
    return lo, hi


def relu_range(q: UniformQuantizedType, lo_real: float, hi_real: float | None, mode: str) -> tuple[int, int]:
    """``CalculateReluOpData``'s clamp: ``zp + roundf(bound / scale)`` within the storage range."""
    lo = max(q.qmin, _quantize_value(lo_real, q, mode))
    hi = q.qmax if hi_real is None else min(q.qmax, _quantize_value(hi_real, q, mode))
    return lo, hi


def _multiplier(real: float, mode: str) -> tuple[int, int]:
    return qm.quantize_multiplier(real, single_rounding=mode == "single")


def _check_mode(op: Operation, mode: str) -> None:
    if mode not in nn.ROUNDING_MODES:
        raise QuantParamError(f"unknown rounding mode '{mode}' (use one of {', '.join(nn.ROUNDING_MODES)})")


def _require_zero_zp(op: Operation, values: Mapping[str, UniformQuantizedType]) -> None:
    for role, q in values.items():
        if q.width == 16 and q.zero_point != 0:
            raise QuantParamError(f"16-bit {role} must have zero point 0 (TFLite's int16 kernels), got {q}")


def _float_sim(
    op: Operation, inputs: Mapping[str, SSAValue], output: SSAValue, clamp: tuple[int, int]
) -> Params:
    """Parameters of an op that ONNX specifies as dequantize -> float op -> quantize."""
    params: Params = {}
    for prefix, value in inputs.items():
        q = qtype(value)
        params[f"{prefix}_scale"] = _f32(q.scale)
        params[f"{prefix}_zp"] = q.zero_point
    yq = qtype(output)
    params["output_scale"] = _f32(yq.scale)
    params["output_zp"] = yq.zero_point
    params["clamp"] = _i32(clamp)
    return params


# --------------------------------------------------------------------------
# Per-op derivations
# --------------------------------------------------------------------------


def _weighted(op: nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.FullyConnectedOp, mode: str) -> Params:
    xq, wq, yq = qtype(op.input), qtype(op.weight), qtype(op.output)
    wshape = nn.shape_of(op.weight)
    cout = wshape[3] if isinstance(op, nn.DepthwiseConv2DOp) else wshape[0]
    w_scales = list(wq.scale_values) if wq.is_per_axis else [wq.scale] * cout
    w_zps = list(wq.zero_point_values) if wq.is_per_axis else [wq.zero_point] * cout
    clamp = activation_range(op.activation(), yq, mode)
    params: Params = {}
    if mode == "onnx_rint":
        params["multiplier"] = _f32([qm.onnx_multiplier(xq.scale, s, yq.scale) for s in w_scales])
    else:
        if xq.width == 16:
            _require_zero_zp(op, {"input": xq, "output": yq})
        fc_per_tensor = isinstance(op, nn.FullyConnectedOp) and not wq.is_per_axis
        mults, shifts = [], []
        for s in w_scales:
            if fc_per_tensor:
                real = qm.conv_multiplier_f32(xq.scale, s, yq.scale)
            else:
                real = qm.per_channel_multiplier(xq.scale, s, yq.scale)
            m, sh = _multiplier(real, mode)
            mults.append(m)
            shifts.append(sh)
        params["multiplier"] = _i32(mults)
        params["shift"] = _i32(shifts)
    params["clamp"] = _i32(clamp)
    params["input_zp"] = xq.zero_point
    params["weight_zp"] = _i32(w_zps)
    params["output_zp"] = yq.zero_point
    return params


def _matmul(op: nn.MatMulOp, mode: str) -> Params:
    aq, bq, yq = qtype(op.lhs), qtype(op.rhs), qtype(op.output)
    params: Params = {}
    if mode == "onnx_rint":
        params["multiplier"] = _f32(qm.onnx_multiplier(aq.scale, bq.scale, yq.scale))
    else:
        if aq.width == 16:
            _require_zero_zp(op, {"lhs": aq, "rhs": bq, "output": yq})
        m, sh = _multiplier(qm.conv_multiplier_f32(aq.scale, bq.scale, yq.scale), mode)
        params["multiplier"] = _i32([m])
        params["shift"] = _i32([sh])
    params["clamp"] = _i32([yq.qmin, yq.qmax])
    params["lhs_zp"] = aq.zero_point
    params["rhs_zp"] = bq.zero_point
    params["output_zp"] = yq.zero_point
    return params


def _add_sub(op: nn.AddOp | nn.SubOp, mode: str) -> Params:
    aq, bq, yq = qtype(op.lhs), qtype(op.rhs), qtype(op.output)
    clamp = activation_range(op.activation(), yq, mode)
    if mode == "onnx_rint":
        return _float_sim(op, {"input1": op.lhs, "input2": op.rhs}, op.output, clamp)
    if yq.width == 16:
        _require_zero_zp(op, {"lhs": aq, "rhs": bq, "output": yq})
    left_shift = 15 if yq.width == 16 else 20
    if isinstance(op, nn.AddOp):
        # add_common.cc: doubles throughout.
        twice_max = 2.0 * max(_s32(aq.scale), _s32(bq.scale))
        real1 = _s32(aq.scale) / twice_max
        real2 = _s32(bq.scale) / twice_max
        real_out = twice_max / ((1 << left_shift) * _s32(yq.scale))
    else:
        # sub_common.cc: the same ratios evaluated in float32.
        twice_max32 = np.float32(2) * np.float32(max(_s32(aq.scale), _s32(bq.scale)))
        real1 = float(np.float32(aq.scale) / twice_max32)
        real2 = float(np.float32(bq.scale) / twice_max32)
        real_out = float(twice_max32 / (np.float32(1 << left_shift) * np.float32(yq.scale)))
    single = mode == "single"
    m1, s1 = qm.quantize_multiplier_smaller_than_one_exp(real1, single_rounding=single)
    m2, s2 = qm.quantize_multiplier_smaller_than_one_exp(real2, single_rounding=single)
    mo, so = qm.quantize_multiplier_smaller_than_one_exp(real_out, single_rounding=single)
    return {
        "left_shift": left_shift,
        "input1_multiplier": _i32([m1]),
        "input1_shift": _i32([s1]),
        "input2_multiplier": _i32([m2]),
        "input2_shift": _i32([s2]),
        "output_multiplier": _i32([mo]),
        "output_shift": _i32([so]),
        "input1_zp": aq.zero_point,
        "input2_zp": bq.zero_point,
        "output_zp": yq.zero_point,
        "clamp": _i32(clamp),
    }


def _mul(op: nn.MulOp, mode: str) -> Params:
    aq, bq, yq = qtype(op.lhs), qtype(op.rhs), qtype(op.output)
    clamp = activation_range(op.activation(), yq, mode)
    if mode == "onnx_rint":
        return _float_sim(op, {"input1": op.lhs, "input2": op.rhs}, op.output, clamp)
    if yq.width == 16:
        _require_zero_zp(op, {"lhs": aq, "rhs": bq, "output": yq})
    real = _s32(aq.scale) * _s32(bq.scale) / _s32(yq.scale)
    m, sh = _multiplier(real, mode)
    return {
        "multiplier": _i32([m]),
        "shift": _i32([sh]),
        "input1_zp": aq.zero_point,
        "input2_zp": bq.zero_point,
        "output_zp": yq.zero_point,
        "clamp": _i32(clamp),
    }


def _relu_like(op: nn.ReluOp | nn.Relu6Op | nn.ClampOp, mode: str) -> Params:
    xq, yq = qtype(op.input), qtype(op.output)
    if isinstance(op, nn.ReluOp):
        lo_real, hi_real = 0.0, None
    elif isinstance(op, nn.Relu6Op):
        lo_real, hi_real = 0.0, 6.0
    else:
        lo_real, hi_real = op.min.value.data, op.max.value.data
    clamp = relu_range(yq, lo_real, hi_real, mode)
    if mode == "onnx_rint":
        return _float_sim(op, {"input": op.input}, op.output, clamp)
    m, sh = _multiplier(_s32(xq.scale) / _s32(yq.scale), mode)
    return {
        "multiplier": _i32([m]),
        "shift": _i32([sh]),
        "input_zp": xq.zero_point,
        "output_zp": yq.zero_point,
        "clamp": _i32(clamp),
    }


def _pool(op: nn.MaxPool2DOp | nn.AvgPool2DOp, mode: str) -> Params:
    yq = qtype(op.output)
    clamp = activation_range(op.activation(), yq, mode)
    if mode == "onnx_rint" and isinstance(op, nn.AvgPool2DOp):
        return _float_sim(op, {"input": op.input}, op.output, clamp)
    return {"clamp": _i32(clamp)}


def _mean(op: nn.MeanOp, mode: str) -> Params:
    xq, yq = qtype(op.input), qtype(op.output)
    if mode == "onnx_rint":
        return _float_sim(op, {"input": op.input}, op.output, (yq.qmin, yq.qmax))
    # reduce_common.cc: multiplier of s_in / s_out; QuantizedMeanOrSum then folds 1/count into it.
    multiplier, shift = _multiplier(_s32(xq.scale) / _s32(yq.scale), mode)
    x_shape = nn.shape_of(op.input)
    count = 1
    for a in op.axis_values():
        count *= x_shape[a]
    if count > 0:
        extra = min(count.bit_length() - 1, 32, 31 + shift)
        multiplier = (multiplier << extra) // count
        shift -= extra
    return {
        "multiplier": _i32([multiplier]),
        "shift": _i32([shift]),
        "input_zp": xq.zero_point,
        "output_zp": yq.zero_point,
        "count": count,
    }


def _softmax(op: nn.SoftmaxOp, mode: str) -> Params:
    xq, yq = qtype(op.input), qtype(op.output)
    if mode == "onnx_rint":
        return _float_sim(op, {"input": op.input}, op.output, (yq.qmin, yq.qmax))
    if xq.width != 8 or not xq.signed:
        raise QuantParamError(f"integer softmax needs an int8 input, got {xq}")
    expected = {(8, True): (-128, 1.0 / 256), (16, True): (-32768, 1.0 / 65536)}.get((yq.width, yq.signed))
    if expected is None or yq.zero_point != expected[0] or _s32(yq.scale) != _s32(expected[1]):
        raise QuantParamError(
            f"integer softmax writes probabilities as i8 with scale 1/256 and zero point -128 "
            f"(or i16 with scale 1/65536 and zero point -32768); got {yq}"
        )
    single = mode == "single"
    # PreprocessSoftmaxScaling with kScaledDiffIntegerBits = 5.
    beta = float(np.float32(op.beta_value()))
    max_real = float((1 << 30) - 1) if single else float((1 << 31) - 1)
    real = min(beta * _s32(xq.scale) * float(1 << (31 - 5)), max_real)
    m, left_shift = qm.quantize_multiplier_greater_than_one(real, single_rounding=single)
    diff_min = -qm.calculate_input_radius(5, left_shift)
    return {"input_multiplier": _i32([m]), "input_left_shift": left_shift, "diff_min": diff_min}


def _logistic_tanh(op: nn.LogisticOp | nn.TanhOp, mode: str) -> Params:
    xq, yq = qtype(op.input), qtype(op.output)
    if mode == "onnx_rint":
        return _float_sim(op, {"input": op.input}, op.output, (yq.qmin, yq.qmax))
    if xq.width != 8 or not xq.signed or yq.width != 8 or not yq.signed:
        raise QuantParamError(f"integer {op.name[3:]} supports int8 tensors only, got {xq} -> {yq}")
    if isinstance(op, nn.LogisticOp):
        expected_zp, expected_scale = -128, 1.0 / 256
    else:
        expected_zp, expected_scale = 0, 1.0 / 128
    if yq.zero_point != expected_zp or _s32(yq.scale) != _s32(expected_scale):
        raise QuantParamError(
            f"integer {op.name[3:]} writes int8 with scale {expected_scale} and zero point "
            f"{expected_zp}; got {yq}"
        )
    # logistic_common.cc / tanh.cc: kInputIntegerBits = 4, frexp without the 2^31 fix-up.
    real = _s32(xq.scale) * float(1 << (31 - 4))
    q, left_shift = np.frexp(real)
    mult = int(qm.round_half_away(float(q) * float(1 << 31)))
    mult = int(qm.wrap_int32(mult))
    radius = qm.calculate_input_radius(4, int(left_shift), 31)
    return {
        "input_zp": xq.zero_point,
        "input_range_radius": radius,
        "input_multiplier": _i32([mult]),
        "input_left_shift": int(left_shift),
    }


def _quantize(op: nn.QuantizeOp, mode: str) -> Params:
    yq = qtype(op.output)
    if nn.is_float(op.input):
        return {
            "scale": _f32(yq.scale_values),
            "zero_point": _i32(yq.zero_point_values),
            "axis": -1 if yq.axis is None else yq.axis,
        }
    xq = qtype(op.input)
    if xq.is_per_axis or yq.is_per_axis:
        raise QuantParamError("requantization between per-axis types is not supported")
    if mode == "onnx_rint":
        return _float_sim(op, {"input": op.input}, op.output, (yq.qmin, yq.qmax))
    m, sh = _multiplier(_s32(xq.scale) / _s32(yq.scale), mode)
    return {
        "multiplier": _i32([m]),
        "shift": _i32([sh]),
        "input_zp": xq.zero_point,
        "output_zp": yq.zero_point,
    }


def compute(op: Operation) -> Params:
    """The parameters of a quantized op for its rounding mode (empty for float or param-free ops)."""
    if not is_quantized_op(op):
        return {}
    assert isinstance(op, nn.QuantizableOp)
    mode = op.rounding_mode()
    _check_mode(op, mode)
    try:
        return _compute(op, mode)
    except QuantParamError:
        raise
    except ValueError as exc:  # a multiplier outside what the kernel's fixed-point formula allows
        raise QuantParamError(str(exc)) from None


def _compute(op: nn.QuantizableOp, mode: str) -> Params:
    if isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.FullyConnectedOp):
        return _weighted(op, mode)
    if isinstance(op, nn.MatMulOp):
        return _matmul(op, mode)
    if isinstance(op, nn.AddOp | nn.SubOp):
        return _add_sub(op, mode)
    if isinstance(op, nn.MulOp):
        return _mul(op, mode)
    if isinstance(op, nn.ReluOp | nn.Relu6Op | nn.ClampOp):
        return _relu_like(op, mode)
    if isinstance(op, nn.MaxPool2DOp | nn.AvgPool2DOp):
        return _pool(op, mode)
    if isinstance(op, nn.MeanOp):
        return _mean(op, mode)
    if isinstance(op, nn.SoftmaxOp):
        return _softmax(op, mode)
    if isinstance(op, nn.LogisticOp | nn.TanhOp):
        return _logistic_tanh(op, mode)
    if isinstance(op, nn.QuantizeOp):
        return _quantize(op, mode)
    raise QuantParamError(f"no quantization parameters are defined for '{op.name}'")


# --------------------------------------------------------------------------
# Storage as a DictionaryAttr
# --------------------------------------------------------------------------


def to_attr(params: Mapping[str, np.ndarray | int]) -> DictionaryAttr:
    """Encode parameters: ints as ``i32`` integers, arrays as ``array<i32>`` / ``array<f32>``."""
    entries: dict[str, Attribute] = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            if value.dtype.kind == "f":
                entries[key] = DenseArrayBase.from_list(f32, [float(v) for v in value.astype(np.float32)])
            else:
                entries[key] = DenseArrayBase.from_list(i32, [int(v) for v in value])
        else:
            entries[key] = IntegerAttr(int(value), i32)
    return DictionaryAttr(entries)


def from_attr(attr: DictionaryAttr) -> Params:
    """Decode a ``qparams`` dictionary written by `to_attr` (or by hand)."""
    params: Params = {}
    for key, value in attr.data.items():
        if isinstance(value, IntegerAttr):
            params[key] = int(value.value.data)
        elif isinstance(value, DenseArrayBase):
            if isinstance(value.elt_type, IntegerType):
                params[key] = np.array(value.get_values(), dtype=np.int64).astype(np.int32)
            else:
                params[key] = np.array(value.get_values(), dtype=np.float32)
        else:
            raise QuantParamError(f"qparams entry '{key}' must be an integer or a dense array, got {value}")
    return params


def attach(op: Operation, rounding: str | None = None) -> None:
    """Store `compute(op)` as ``op.qparams``; set ``op.rounding`` (to `rounding` or the default) if unset."""
    if not is_quantized_op(op):
        return
    assert isinstance(op, nn.QuantizableOp)
    if op.rounding is None:
        mode = rounding if rounding is not None else op.rounding_mode()
        _check_mode(op, mode)
        op.rounding = StringAttr(mode)
    op.qparams = to_attr(compute(op))


def get(op: Operation) -> Params:
    """The op's parameters: the stored ``qparams`` when present (authoritative), else `compute(op)`."""
    if isinstance(op, nn.QuantizableOp) and op.qparams is not None:
        return from_attr(op.qparams)
    return compute(op)
