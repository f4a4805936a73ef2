"""Integer kernels: bit-exact with TFLite Micro's reference kernels (``tflite_double`` / ``single``)
and with ONNX's reference (``onnx_rint``), reading every parameter through `nnopt.dialects.qparams`.

16-bit activations follow TFLM's int16x8 kernels as measured against the
`tflite_micro` wheel: CONV_2D accumulates in int32 (its bias is 32-bit here),
DEPTHWISE_CONV_2D, FULLY_CONNECTED and BATCH_MATMUL in int64 with the reduced
16-bit multiplier. (TFLM's int16 DEPTHWISE_CONV_2D reads its bias as int64, so
it cannot run a 32-bit bias at all; nnopt adds the bias exactly.)

Dot products of 8-bit operands are computed exactly in float32/float64 BLAS when a
bound on every partial sum (from the operands' actual magnitudes and the
reduction length) stays below 2^24 / 2^53, else in int64. 8-bit kernels then
wrap accumulators to int32 like TFLM's C code; 16-bit kernels keep 64-bit
accumulators (TFLM's int16 path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.ir import Operation

from nnopt.backends.numpy.geometry import window_of
from nnopt.backends.numpy.kernels_float import FLOAT_KERNELS
from nnopt.backends.numpy.windows import im2col, pad_hw, tap_slice, valid_counts, window_view
from nnopt.dialects import nn
from nnopt.dialects import qmath as qm
from nnopt.dialects.qparams import Params, qtype
from nnopt.dialects.quant import UniformQuantizedType

IntKernel = Callable[[Operation, Sequence[np.ndarray], Params, str], np.ndarray]


# --------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------


def exact_matmul(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """Exact integer ``a @ b`` (int64 result); `bound` caps the magnitude of every partial sum."""
    if bound < (1 << 24):
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.int64)
    if bound < (1 << 53):
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def _v(p: Params, key: str) -> np.ndarray:
    """A parameter array; one-element arrays become scalars (0-d) so they broadcast over any shape."""
    a = np.asarray(p[key])
    return a.reshape(()) if a.size == 1 else a


def _max_abs(a: np.ndarray) -> int:
    return int(np.abs(a).max()) if a.size else 0


def _store(y: np.ndarray, clamp: np.ndarray | int, q: UniformQuantizedType) -> np.ndarray:
    bounds = np.asarray(clamp).reshape(-1)
    lo = max(int(bounds[0]), q.qmin)
    hi = min(int(bounds[1]), q.qmax)
    return np.clip(y, lo, hi).astype(q.numpy_dtype)


def _saturate(y: np.ndarray, q: UniformQuantizedType) -> np.ndarray:
    return np.clip(y, q.qmin, q.qmax).astype(q.numpy_dtype)


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


def _requant_acc(acc: np.ndarray, p: Params, mode: str, wide: bool) -> np.ndarray:
    """Requantize conv/FC/matmul accumulators and add the output zero point."""
    if mode == "onnx_rint":
        return qm.requantize_rint(acc, _v(p, "multiplier")) + int(p["output_zp"])
    if wide:  # int64 accumulators (TFLM's 16-bit DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL)
        return qm.multiply_by_quantized_multiplier_int64(acc, _v(p, "multiplier"), _v(p, "shift"))
    return qm.multiply_by_quantized_multiplier(
        qm.wrap_int32(acc), _v(p, "multiplier"), _v(p, "shift"), mode
    ) + int(p["output_zp"])


def _float_sim(op: Operation, args: Sequence[np.ndarray], p: Params, prefixes: Sequence[str]) -> np.ndarray:
    """ONNX semantics of a non-matmul op: dequantize, run the float kernel, quantize with rint."""
    floats = [
        dequantize(a, p[f"{pre}_scale"], p[f"{pre}_zp"]) for a, pre in zip(args, prefixes, strict=False)
    ]
    y = FLOAT_KERNELS[type(op)](op, floats)
    out = quantize_rint(y, p["output_scale"], p["output_zp"])
    return _store(out, p["clamp"], qtype(op.results[0]))


# --------------------------------------------------------------------------
# Weighted ops
# --------------------------------------------------------------------------


def _bias(args: Sequence[np.ndarray]) -> np.ndarray | None:
    return args[2].astype(np.int64) if len(args) > 2 else None


def conv2d(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """Integer convolution (TFLM ``ConvPerChannel``; padded cells contribute nothing)."""
    assert isinstance(op, nn.Conv2DOp)
    x, w = args[0], args[1]
    yq = qtype(op.output)
    # TFLM's 16-bit CONV_2D with a 32-bit bias accumulates in int32 (64-bit only with an int64 bias).
    wide = False
    win = window_of(op)
    n, c = x.shape[0], x.shape[3]
    cout, kh, kw, cin_g = w.shape
    groups = c // cin_g
    xs = x.astype(np.int32) - np.int32(p["input_zp"])
    ws = w.astype(np.int32) - np.asarray(p["weight_zp"], dtype=np.int32).reshape(-1, 1, 1, 1)
    xp = pad_hw(xs, win.pads, 0)
    oh, ow = win.out_hw
    m = n * oh * ow
    x_max = _max_abs(xs)
    if groups == 1:
        wmat = ws.reshape(cout, -1)
        bound = x_max * int(np.abs(wmat).sum(axis=1).max(initial=0))
        acc = exact_matmul(im2col(xp, win.kernel, win.strides, win.dilations, win.out_hw), wmat.T, bound)
    else:
        view = window_view(xp, win.kernel, win.strides, win.dilations, win.out_hw)
        cols = view.reshape(m, kh, kw, groups, cin_g).transpose(3, 0, 1, 2, 4).reshape(groups, m, -1)
        wg = ws.reshape(groups, cout // groups, -1)
        bound = x_max * int(np.abs(wg).sum(axis=2).max(initial=0))
        acc = exact_matmul(cols, wg.transpose(0, 2, 1), bound).transpose(1, 0, 2).reshape(m, cout)
    b = _bias(args)
    if b is not None:
        acc = acc + b
    y = _requant_acc(acc, p, mode, wide)
    return _store(y, p["clamp"], yq).reshape(n, oh, ow, cout)


def depthwise_conv2d(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """Integer depthwise convolution (TFLM ``DepthwiseConvPerChannel``), one pass per kernel tap."""
    assert isinstance(op, nn.DepthwiseConv2DOp)
    x, w = args[0], args[1]
    yq = qtype(op.output)
    wide = qtype(op.input).width == 16 and mode != "onnx_rint"
    acc_dtype = np.int64 if wide else np.int32
    win = window_of(op)
    mult = w.shape[3] // x.shape[3]
    xs = x.astype(acc_dtype) - np.asarray(p["input_zp"], dtype=acc_dtype)
    ws = w.astype(acc_dtype) - np.asarray(p["weight_zp"], dtype=acc_dtype)
    xp = pad_hw(xs, win.pads, 0)
    if mult > 1:
        xp = np.repeat(xp, mult, axis=3)
    oh, ow = win.out_hw
    acc = np.zeros((x.shape[0], oh, ow, w.shape[3]), dtype=acc_dtype)
    with np.errstate(over="ignore"):
        for i in range(win.kernel[0]):
            for j in range(win.kernel[1]):
                acc += tap_slice(xp, i, j, win.strides, win.dilations, win.out_hw) * ws[0, i, j]
    acc64 = acc.astype(np.int64)
    b = _bias(args)
    if b is not None:
        acc64 = acc64 + b
    return _store(_requant_acc(acc64, p, mode, wide), p["clamp"], yq)


def fully_connected(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """Integer fully connected layer (TFLM ``FullyConnected`` / ``FullyConnectedPerChannel``)."""
    assert isinstance(op, nn.FullyConnectedOp)
    x, w = args[0], args[1]
    yq = qtype(op.output)
    wide = qtype(op.input).width == 16 and mode != "onnx_rint"
    xs = x.reshape(-1, w.shape[1]).astype(np.int32) - np.int32(p["input_zp"])
    ws = w.astype(np.int32) - np.asarray(p["weight_zp"], dtype=np.int32).reshape(-1, 1)
    bound = _max_abs(xs) * int(np.abs(ws).sum(axis=1).max(initial=0))
    acc = exact_matmul(xs, ws.T, bound)
    b = _bias(args)
    if b is not None:
        acc = acc + b
    y = _requant_acc(acc, p, mode, wide)
    return _store(y, p["clamp"], yq).reshape(nn.shape_of(op.output))


def matmul(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """Integer batched matmul (TFLM ``BatchMatMul``): ``(a - za) @ (b - zb)``, requantized."""
    assert isinstance(op, nn.MatMulOp)
    yq = qtype(op.output)
    wide = qtype(op.lhs).width == 16 and mode != "onnx_rint"
    a = args[0].astype(np.int32) - np.int32(p["lhs_zp"])
    b = args[1].astype(np.int32) - np.int32(p["rhs_zp"])
    if op.adj_x is not None:
        a = np.swapaxes(a, -1, -2)
    if op.adj_y is not None:
        b = np.swapaxes(b, -1, -2)
    bound = _max_abs(a) * _max_abs(b) * a.shape[-1]
    acc = exact_matmul(a, b, bound)
    return _store(_requant_acc(acc, p, mode, wide), p["clamp"], yq)


# --------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------


def add_sub(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """TFLM integer ADD/SUB: both inputs rescaled to a common 2^-left_shift grid, then requantized."""
    assert isinstance(op, nn.AddOp | nn.SubOp)
    if mode == "onnx_rint":
        return _float_sim(op, args, p, ("input1", "input2"))
    ls = int(p["left_shift"])
    scaled = []
    for k, arg in enumerate(args[:2], start=1):
        shifted = qm.wrap_int32((arg.astype(np.int64) - int(p[f"input{k}_zp"])) << ls)
        scaled.append(
            qm.multiply_by_quantized_multiplier_smaller_than_one_exp(
                shifted, _v(p, f"input{k}_multiplier"), _v(p, f"input{k}_shift"), mode
            )
        )
    raw = scaled[0] + scaled[1] if isinstance(op, nn.AddOp) else scaled[0] - scaled[1]
    out = qm.multiply_by_quantized_multiplier_smaller_than_one_exp(
        qm.wrap_int32(raw), _v(p, "output_multiplier"), _v(p, "output_shift"), mode
    ) + int(p["output_zp"])
    return _store(out, p["clamp"], qtype(op.output))


def mul(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """TFLM integer MUL: ``(a - za) * (b - zb)`` requantized."""
    assert isinstance(op, nn.MulOp)
    if mode == "onnx_rint":
        return _float_sim(op, args, p, ("input1", "input2"))
    a = args[0].astype(np.int64) - int(p["input1_zp"])
    b = args[1].astype(np.int64) - int(p["input2_zp"])
    prod = qm.wrap_int32(a * b)
    out = qm.multiply_by_quantized_multiplier(prod, _v(p, "multiplier"), _v(p, "shift"), mode) + int(
        p["output_zp"]
    )
    return _store(out, p["clamp"], qtype(op.output))


def relu_like(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """TFLM ``ReluQuantized``: rescale to the output quantization, then clamp (relu, relu6, clamp)."""
    if mode == "onnx_rint":
        return _float_sim(op, args, p, ("input",))
    x = args[0].astype(np.int64) - int(p["input_zp"])
    out = qm.multiply_by_quantized_multiplier(x, _v(p, "multiplier"), _v(p, "shift"), mode) + int(
        p["output_zp"]
    )
    return _store(out, p["clamp"], qtype(op.results[0]))


def _lut_like(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str, tanh: bool) -> np.ndarray:
    if mode == "onnx_rint":
        return _float_sim(op, args, p, ("input",))
    x = args[0].astype(np.int64) - int(p["input_zp"])
    radius = int(p["input_range_radius"])
    in_q4 = qm.multiply_by_quantized_multiplier(
        x, _v(p, "input_multiplier"), int(p["input_left_shift"]), mode
    )
    if tanh:
        out = qm.rounding_divide_by_pot(qm.tanh(in_q4, 4), 31 - 7)
    else:
        out = qm.rounding_divide_by_pot(qm.logistic(in_q4, 4), 31 - 8) - 128
    out = np.clip(out, -128, 127)
    out = np.where(x <= -radius, -128, np.where(x >= radius, 127, out))
    return out.astype(np.int8)


def logistic(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """TFLM int8 LOGISTIC (gemmlowp fixed-point ``logistic`` on a Q4.27 input)."""
    return _lut_like(op, args, p, mode, tanh=False)


def tanh(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """TFLM int8 TANH (gemmlowp fixed-point ``tanh`` on a Q4.27 input)."""
    return _lut_like(op, args, p, mode, tanh=True)


def softmax(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """TFLM int8 SOFTMAX: fixed-point exp of scaled differences, reciprocal of their Q12 sum."""
    assert isinstance(op, nn.SoftmaxOp)
    if mode == "onnx_rint":
        return _float_sim(op, args, p, ("input",))
    yq = qtype(op.output)
    x = args[0].astype(np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= int(p["diff_min"])
    rescaled = qm.multiply_by_quantized_multiplier_greater_than_one(
        diff, _v(p, "input_multiplier"), int(p["input_left_shift"]), mode
    )
    exp = qm.exp_on_negative_values(rescaled, 5)
    exp = np.where(valid, exp, 0)
    sum_of_exps = qm.wrap_int32(qm.rounding_divide_by_pot(exp, 12).sum(axis=-1, keepdims=True))
    shifted_scale, num_bits_over_unit = qm.get_reciprocal(sum_of_exps, 12)
    exponent = num_bits_over_unit + 31 - yq.width
    unsat = qm.rounding_divide_by_pot(qm.saturating_rounding_doubling_high_mul(shifted_scale, exp), exponent)
    out = np.clip(unsat + yq.qmin, yq.qmin, yq.qmax)
    return np.where(valid, out, yq.qmin).astype(yq.numpy_dtype)


# --------------------------------------------------------------------------
# Pools and reductions
# --------------------------------------------------------------------------


def max_pool2d(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """Integer max pooling (exact in every mode): window max, then the activation clamp."""
    assert isinstance(op, nn.MaxPool2DOp)
    win = window_of(op)
    xp = pad_hw(args[0].astype(np.int32), win.pads, qm.INT32_MIN)
    y = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).max(axis=(3, 4))
    return _store(y, p["clamp"], qtype(op.output))


def avg_pool2d(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """TFLM integer AVERAGE_POOL: sum of valid cells, divided rounding half away from zero."""
    assert isinstance(op, nn.AvgPool2DOp)
    if mode == "onnx_rint":
        return _float_sim(op, args, p, ("input",))
    x = args[0]
    win = window_of(op)
    xp = pad_hw(x.astype(np.int64), win.pads, 0)
    total = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).sum(axis=(3, 4))
    counts = valid_counts(x.shape[1:3], win.kernel, win.strides, win.pads, win.out_hw)[None, :, :, None]
    half = counts // 2
    avg = np.where(total > 0, qm.trunc_div(total + half, counts), qm.trunc_div(total - half, counts))
    return _store(avg, p["clamp"], qtype(op.output))


def mean(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """TFLM integer MEAN (``QuantizedMeanOrSum``): ``(sum - zp*count)`` times a multiplier holding 1/count."""
    assert isinstance(op, nn.MeanOp)
    yq = qtype(op.output)
    if mode == "onnx_rint":
        return _float_sim(op, args, p, ("input",))
    axes = op.axis_values()
    keep = op.keep_dims is not None
    total = args[0].astype(np.int64).sum(axis=axes, keepdims=keep)
    shifted = qm.wrap_int32(total - int(p["input_zp"]) * int(p["count"]))
    out = qm.multiply_by_quantized_multiplier(shifted, _v(p, "multiplier"), _v(p, "shift"), mode) + int(
        p["output_zp"]
    )
    return _saturate(out, yq)


# --------------------------------------------------------------------------
# Quantize
# --------------------------------------------------------------------------


def quantize(op: Operation, args: Sequence[np.ndarray], p: Params, mode: str) -> np.ndarray:
    """Float -> integer (TFLM ``AffineQuantize`` / ONNX ``QuantizeLinear``) or integer requantization."""
    assert isinstance(op, nn.QuantizeOp)
    yq = qtype(op.output)
    x = args[0]
    if nn.is_float(op.input):
        scale = np.asarray(p["scale"], dtype=np.float32)
        zp = np.asarray(p["zero_point"], dtype=np.int64)
        axis = int(p["axis"])
        if axis >= 0:
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        else:
            scale, zp = scale.reshape(()), zp.reshape(())
        q = quantize_rint(x, scale, zp) if mode == "onnx_rint" else quantize_away(x, scale, zp)
        return _saturate(q, yq)
    if mode == "onnx_rint":
        return _float_sim_quantize(x, p, yq)
    xs = x.astype(np.int64) - int(p["input_zp"])
    out = qm.multiply_by_quantized_multiplier(xs, _v(p, "multiplier"), _v(p, "shift"), mode) + int(
        p["output_zp"]
    )
    return _saturate(out, yq)


def _float_sim_quantize(x: np.ndarray, p: Params, yq: UniformQuantizedType) -> np.ndarray:
    y = dequantize(x, p["input_scale"], p["input_zp"])
    return _store(quantize_rint(y, p["output_scale"], p["output_zp"]), p["clamp"], yq)


INT_KERNELS: dict[type[Operation], IntKernel] = {
    nn.Conv2DOp: conv2d,
    nn.DepthwiseConv2DOp: depthwise_conv2d,
    nn.FullyConnectedOp: fully_connected,
    nn.MatMulOp: matmul,
    nn.AddOp: add_sub,
    nn.SubOp: add_sub,
    nn.MulOp: mul,
    nn.ReluOp: relu_like,
    nn.Relu6Op: relu_like,
    nn.ClampOp: relu_like,
    nn.LogisticOp: logistic,
    nn.TanhOp: tanh,
    nn.SoftmaxOp: softmax,
    nn.MaxPool2DOp: max_pool2d,
    nn.AvgPool2DOp: avg_pool2d,
    nn.MeanOp: mean,
    nn.QuantizeOp: quantize,
}
"""Integer kernels of the quantizable ops, called with the op's `qparams.get` and rounding mode."""
