"""Integer kernels: bit-exact with TFLite Micro's reference kernels (``tflite_double`` / ``single``)
and with ONNX's reference (``onnx_rint``), reading every parameter through `nnopt.dialects.qparams`.

Each entry of `INT_MAKERS` prepares one op once (weights with zero points
removed, window geometry, lookup tables) and returns its `Kernel`.

* Dot products of 8-bit operands run exactly in float32/float64 BLAS when a
  static bound on every partial sum (operand ranges times the weights' absolute
  row sums) stays below 2^24 / 2^53, else in int64. 8-bit kernels wrap their
  accumulators to int32 like TFLM's C code whenever the bound allows overflow.
* Elementwise ops on 8-bit inputs (activations, requantize, add/sub/mul,
  dequantize) are evaluated once on every possible input and then run as table
  lookups: the tables hold the kernel's exact results.
* 16-bit activations follow TFLM's int16x8 kernels as measured against the
  `tflite_micro` wheel: CONV_2D accumulates in int32 (its bias is 32-bit here);
  DEPTHWISE_CONV_2D, FULLY_CONNECTED and BATCH_MATMUL in int64 with the reduced
  16-bit multiplier. (TFLM's int16 DEPTHWISE_CONV_2D reads its bias as int64,
  so it cannot run a 32-bit bias at all; nnopt adds the bias exactly.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.ir import Operation

from nnopt.backends.numpy.arrays import (
    Kernel,
    all_values,
    dequantize,
    lut_index,
    quantize_away,
    quantize_rint,
    static_value,
)
from nnopt.backends.numpy.geometry import window_of
from nnopt.backends.numpy.kernels_float import FLOAT_MAKERS
from nnopt.backends.numpy.windows import im2col, pad_hw, tap_slice, valid_counts, window_view
from nnopt.dialects import nn
from nnopt.dialects import qmath as qm
from nnopt.dialects.qparams import Params, qtype
from nnopt.dialects.quant import UniformQuantizedType

IntMaker = Callable[[Operation, Params, str], Kernel]
Elementwise = Callable[..., np.ndarray]


# --------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------


def _v(p: Params, key: str) -> np.ndarray:
    """A parameter as int64/float array; one-element arrays become 0-d so they broadcast anywhere."""
    a = np.asarray(p[key])
    a = a.astype(np.int64) if a.dtype.kind in "iu" else a
    return a.reshape(()) if a.size == 1 else a


def _bounds(p: Params, key: str, q: UniformQuantizedType) -> tuple[int, int]:
    if key not in p:
        return q.qmin, q.qmax
    b = np.asarray(p[key]).reshape(-1)
    return max(int(b[0]), q.qmin), min(int(b[1]), q.qmax)


def _range_abs(q: UniformQuantizedType, zero_point: int) -> int:
    """Largest ``|q - zp|`` over the type's storage range."""
    return max(abs(q.qmin - zero_point), abs(q.qmax - zero_point))


def _mm_dtype(bound: int) -> type[np.generic]:
    """The matmul dtype that computes integer dot products exactly when partial sums stay within `bound`."""
    if bound < (1 << 24):
        return np.float32
    if bound < (1 << 53):
        return np.float64
    return np.int64


def make_requant(
    p: Params, mode: str, out_q: UniformQuantizedType, *, wide: bool = False, acc_bound: int | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """Requantization of conv/FC/matmul accumulators (int64, channels last) to the stored output."""
    lo, hi = _bounds(p, "clamp", out_q)
    dtype = out_q.numpy_dtype
    zp = int(p["output_zp"])
    if mode == "onnx_rint":
        mf = np.asarray(p["multiplier"], dtype=np.float32).astype(np.float64)
        mf = mf.reshape(()) if mf.size == 1 else mf
        return lambda acc: np.clip(np.rint(acc * mf) + zp, lo, hi).astype(dtype)
    m, s = _v(p, "multiplier"), _v(p, "shift")
    if wide:  # int64 accumulators (TFLM's 16-bit DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL)
        return lambda acc: np.clip(qm.multiply_by_quantized_multiplier_int64(acc, m, s), lo, hi).astype(dtype)
    may_overflow = acc_bound is None or acc_bound > qm.INT32_MAX
    if mode == "tflite_double" and np.all(s <= 0) and np.all(m >= 0):
        right = -s

        def double(acc: np.ndarray) -> np.ndarray:
            a = qm.wrap_int32(acc) if may_overflow else acc
            high = (a * m + (1 << 30)) >> 31  # SaturatingRoundingDoublingHighMul (no saturation: m >= 0)
            return np.clip(qm.rounding_divide_by_pot(high, right) + zp, lo, hi).astype(dtype)

        return double

    def general(acc: np.ndarray) -> np.ndarray:
        a = qm.wrap_int32(acc) if may_overflow else acc
        return np.clip(qm.multiply_by_quantized_multiplier(a, m, s, mode) + zp, lo, hi).astype(dtype)

    return general


def _lut1(fn: Elementwise, in_q: UniformQuantizedType) -> Kernel | None:
    """A table-lookup kernel for an elementwise function of one 8-bit input."""
    if in_q.width != 8:
        return None
    table = fn(all_values(in_q))
    return lambda args: table[lut_index(args[0])]


def _lut2(fn: Elementwise, q1: UniformQuantizedType, q2: UniformQuantizedType) -> Kernel | None:
    """A table-lookup kernel for an elementwise function of two 8-bit inputs (with broadcasting)."""
    if q1.width != 8 or q2.width != 8:
        return None
    a, b = all_values(q1), all_values(q2)
    table = fn(a[:, None], b[None, :])
    return lambda args: table[lut_index(args[0]), lut_index(args[1])]


def _elementwise(fn: Elementwise, in_types: Sequence[UniformQuantizedType]) -> Kernel:
    """Table lookups for 8-bit inputs, else `fn` evaluated directly."""
    kernel = _lut1(fn, in_types[0]) if len(in_types) == 1 else _lut2(fn, in_types[0], in_types[1])
    if kernel is not None:
        return kernel
    return lambda args: fn(*args)


def _float_sim(op: Operation, p: Params, prefixes: Sequence[str]) -> Callable[..., np.ndarray]:
    """ONNX semantics of a non-matmul op: dequantize, run the float kernel, quantize with rint."""
    float_kernel = FLOAT_MAKERS[type(op)](op)
    yq = qtype(op.results[0])
    lo, hi = _bounds(p, "clamp", yq)

    def fn(*args: np.ndarray) -> np.ndarray:
        floats = [
            dequantize(a, p[f"{pre}_scale"], p[f"{pre}_zp"]) for a, pre in zip(args, prefixes, strict=False)
        ]
        y = float_kernel(floats)
        return np.clip(quantize_rint(y, p["output_scale"], p["output_zp"]), lo, hi).astype(yq.numpy_dtype)

    return fn


def _in_types(op: Operation, count: int) -> list[UniformQuantizedType]:
    return [qtype(v) for v in op.operands[:count]]


# --------------------------------------------------------------------------
# Weighted ops
# --------------------------------------------------------------------------


def _bias(op: nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.FullyConnectedOp) -> tuple[np.ndarray | None, int]:
    """The static bias (int64) and a bound on its magnitude (a dynamic bias is bounded by int32)."""
    if op.bias is None:
        return None, 0
    b = static_value(op.bias)
    if b is None:
        return None, 1 << 31
    b64 = b.astype(np.int64)
    return b64, int(np.abs(b64).max(initial=0))


def conv2d(op: Operation, p: Params, mode: str) -> Kernel:
    """Integer convolution (TFLM ``ConvPerChannel``; padded cells contribute nothing)."""
    assert isinstance(op, nn.Conv2DOp)
    xq, yq = qtype(op.input), qtype(op.output)
    win = window_of(op)
    n, _, _, c = nn.shape_of(op.input)
    cout, kh, kw, cin_g = nn.shape_of(op.weight)
    groups = c // cin_g
    oh, ow = win.out_hw
    m = n * oh * ow
    zp_in = int(p["input_zp"])
    x_max = _range_abs(xq, zp_in)
    wzp = np.asarray(p["weight_zp"], dtype=np.int64).reshape(-1, 1, 1, 1)

    def prepare_weights(w: np.ndarray) -> tuple[np.ndarray, int]:
        ws = w.astype(np.int64) - wzp
        mats = ws.reshape(groups, cout // groups, -1)
        bound = x_max * int(np.abs(mats).sum(axis=2).max(initial=0))
        return np.ascontiguousarray(mats.transpose(0, 2, 1), dtype=_mm_dtype(bound)), bound

    w_static = static_value(op.weight)
    prepared = prepare_weights(w_static) if w_static is not None else None
    bias, bias_bound = _bias(op)
    # TFLM's 16-bit CONV_2D with a 32-bit bias accumulates in int32 (64-bit only with an int64 bias).
    requant = make_requant(p, mode, yq, acc_bound=None if prepared is None else prepared[1] + bias_bound)

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        wmats, _ = prepared if prepared is not None else prepare_weights(args[1])
        dt = wmats.dtype
        xp = pad_hw(args[0].astype(dt) - dt.type(zp_in), win.pads, 0)
        if groups == 1:
            acc = im2col(xp, win.kernel, win.strides, win.dilations, win.out_hw) @ wmats[0]
        else:
            view = window_view(xp, win.kernel, win.strides, win.dilations, win.out_hw)
            cols = view.reshape(m, kh, kw, groups, cin_g).transpose(3, 0, 1, 2, 4).reshape(groups, m, -1)
            acc = np.matmul(cols, wmats).transpose(1, 0, 2).reshape(m, cout)
        acc = acc.astype(np.int64)
        b = bias if bias is not None else (args[2].astype(np.int64) if len(args) > 2 else None)
        if b is not None:
            acc += b
        return requant(acc).reshape(n, oh, ow, cout)

    return kernel


def depthwise_conv2d(op: Operation, p: Params, mode: str) -> Kernel:
    """Integer depthwise convolution (TFLM ``DepthwiseConvPerChannel``), one pass per kernel tap."""
    assert isinstance(op, nn.DepthwiseConv2DOp)
    xq, yq = qtype(op.input), qtype(op.output)
    wide = xq.width == 16 and mode != "onnx_rint"
    win = window_of(op)
    n, _, _, c = nn.shape_of(op.input)
    _, kh, kw, cm = nn.shape_of(op.weight)
    mult = cm // c
    oh, ow = win.out_hw
    zp_in = int(p["input_zp"])
    x_max = _range_abs(xq, zp_in)
    wzp = np.asarray(p["weight_zp"], dtype=np.int64)

    def prepare_weights(w: np.ndarray) -> tuple[np.ndarray, int]:
        ws = (w.astype(np.int64) - wzp).reshape(kh, kw, c, mult)
        bound = x_max * int(np.abs(ws).sum(axis=(0, 1)).max(initial=0))
        return ws.astype(_mm_dtype(bound)), bound

    w_static = static_value(op.weight)
    prepared = prepare_weights(w_static) if w_static is not None else None
    bias, bias_bound = _bias(op)
    acc_bound = None if prepared is None else prepared[1] + bias_bound
    requant = make_requant(p, mode, yq, wide=wide, acc_bound=acc_bound)

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        ws, _ = prepared if prepared is not None else prepare_weights(args[1])
        dt = ws.dtype
        xp = pad_hw(args[0].astype(dt) - dt.type(zp_in), win.pads, 0)[..., None]
        acc = np.zeros((n, oh, ow, c, mult), dtype=dt)
        for i in range(kh):
            for j in range(kw):
                acc += tap_slice(xp, i, j, win.strides, win.dilations, win.out_hw) * ws[i, j]
        acc64 = acc.reshape(n, oh, ow, cm).astype(np.int64)
        b = bias if bias is not None else (args[2].astype(np.int64) if len(args) > 2 else None)
        if b is not None:
            acc64 += b
        return requant(acc64)

    return kernel


def fully_connected(op: Operation, p: Params, mode: str) -> Kernel:
    """Integer fully connected layer (TFLM ``FullyConnected`` / ``FullyConnectedPerChannel``)."""
    assert isinstance(op, nn.FullyConnectedOp)
    xq, yq = qtype(op.input), qtype(op.output)
    wide = xq.width == 16 and mode != "onnx_rint"
    k = nn.shape_of(op.weight)[1]
    out_shape = nn.shape_of(op.output)
    zp_in = int(p["input_zp"])
    x_max = _range_abs(xq, zp_in)
    wzp = np.asarray(p["weight_zp"], dtype=np.int64).reshape(-1, 1)

    def prepare_weights(w: np.ndarray) -> tuple[np.ndarray, int]:
        ws = w.astype(np.int64) - wzp
        bound = x_max * int(np.abs(ws).sum(axis=1).max(initial=0))
        return np.ascontiguousarray(ws.T, dtype=_mm_dtype(bound)), bound

    w_static = static_value(op.weight)
    prepared = prepare_weights(w_static) if w_static is not None else None
    bias, bias_bound = _bias(op)
    acc_bound = None if prepared is None else prepared[1] + bias_bound
    requant = make_requant(p, mode, yq, wide=wide, acc_bound=acc_bound)

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        wt, _ = prepared if prepared is not None else prepare_weights(args[1])
        dt = wt.dtype
        acc = (args[0].reshape(-1, k).astype(dt) - dt.type(zp_in)) @ wt
        acc = acc.astype(np.int64)
        b = bias if bias is not None else (args[2].astype(np.int64) if len(args) > 2 else None)
        if b is not None:
            acc += b
        return requant(acc).reshape(out_shape)

    return kernel


def matmul(op: Operation, p: Params, mode: str) -> Kernel:
    """Integer batched matmul (TFLM ``BatchMatMul``): ``(a - za) @ (b - zb)``, requantized."""
    assert isinstance(op, nn.MatMulOp)
    aq, bq, yq = qtype(op.lhs), qtype(op.rhs), qtype(op.output)
    wide = aq.width == 16 and mode != "onnx_rint"
    za, zb = int(p["lhs_zp"]), int(p["rhs_zp"])
    a_shape = nn.shape_of(op.lhs)
    k = a_shape[-2] if op.adj_x is not None else a_shape[-1]
    bound = _range_abs(aq, za) * _range_abs(bq, zb) * k
    dt = _mm_dtype(bound)
    adj_x, adj_y = op.adj_x is not None, op.adj_y is not None
    requant = make_requant(p, mode, yq, wide=wide, acc_bound=bound)

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        a = args[0].astype(dt) - dt(za)
        b = args[1].astype(dt) - dt(zb)
        if adj_x:
            a = np.swapaxes(a, -1, -2)
        if adj_y:
            b = np.swapaxes(b, -1, -2)
        return requant(np.matmul(a, b).astype(np.int64))

    return kernel


# --------------------------------------------------------------------------
# Elementwise (table lookups for 8-bit inputs)
# --------------------------------------------------------------------------


def add_sub(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM integer ADD/SUB: both inputs rescaled to a common 2^-left_shift grid, then requantized."""
    assert isinstance(op, nn.AddOp | nn.SubOp)
    if mode == "onnx_rint":
        return _elementwise(_float_sim(op, p, ("input1", "input2")), _in_types(op, 2))
    yq = qtype(op.output)
    lo, hi = _bounds(p, "clamp", yq)
    ls = int(p["left_shift"])
    is_add = isinstance(op, nn.AddOp)
    consts = [
        (int(p[f"input{k}_zp"]), _v(p, f"input{k}_multiplier"), _v(p, f"input{k}_shift")) for k in (1, 2)
    ]
    mo, so, zo = _v(p, "output_multiplier"), _v(p, "output_shift"), int(p["output_zp"])

    def fn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        scaled = [
            qm.multiply_by_quantized_multiplier_smaller_than_one_exp(
                qm.wrap_int32((x.astype(np.int64) - zp) << ls), mk, sk, mode
            )
            for x, (zp, mk, sk) in zip((a, b), consts, strict=True)
        ]
        raw = scaled[0] + scaled[1] if is_add else scaled[0] - scaled[1]
        out = qm.multiply_by_quantized_multiplier_smaller_than_one_exp(qm.wrap_int32(raw), mo, so, mode) + zo
        return np.clip(out, lo, hi).astype(yq.numpy_dtype)

    return _elementwise(fn, _in_types(op, 2))


def mul(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM integer MUL: ``(a - za) * (b - zb)`` requantized."""
    assert isinstance(op, nn.MulOp)
    if mode == "onnx_rint":
        return _elementwise(_float_sim(op, p, ("input1", "input2")), _in_types(op, 2))
    yq = qtype(op.output)
    lo, hi = _bounds(p, "clamp", yq)
    z1, z2, zo = int(p["input1_zp"]), int(p["input2_zp"]), int(p["output_zp"])
    m, s = _v(p, "multiplier"), _v(p, "shift")

    def fn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        prod = qm.wrap_int32((a.astype(np.int64) - z1) * (b.astype(np.int64) - z2))
        out = qm.multiply_by_quantized_multiplier(prod, m, s, mode) + zo
        return np.clip(out, lo, hi).astype(yq.numpy_dtype)

    return _elementwise(fn, _in_types(op, 2))


def relu_like(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM ``ReluQuantized``: rescale to the output quantization, then clamp (relu, relu6, clamp)."""
    if mode == "onnx_rint":
        return _elementwise(_float_sim(op, p, ("input",)), _in_types(op, 1))
    yq = qtype(op.results[0])
    lo, hi = _bounds(p, "clamp", yq)
    zi, zo = int(p["input_zp"]), int(p["output_zp"])
    m, s = _v(p, "multiplier"), _v(p, "shift")

    def fn(x: np.ndarray) -> np.ndarray:
        out = qm.multiply_by_quantized_multiplier(x.astype(np.int64) - zi, m, s, mode) + zo
        return np.clip(out, lo, hi).astype(yq.numpy_dtype)

    return _elementwise(fn, _in_types(op, 1))


def _logistic_tanh(op: Operation, p: Params, mode: str, tanh: bool) -> Kernel:
    if mode == "onnx_rint":
        return _elementwise(_float_sim(op, p, ("input",)), _in_types(op, 1))
    zi = int(p["input_zp"])
    radius = int(p["input_range_radius"])
    m, ls = _v(p, "input_multiplier"), int(p["input_left_shift"])

    def fn(x: np.ndarray) -> np.ndarray:
        xs = x.astype(np.int64) - zi
        in_q4 = qm.multiply_by_quantized_multiplier(xs, m, ls, mode)
        if tanh:
            out = qm.rounding_divide_by_pot(qm.tanh(in_q4, 4), 31 - 7)
        else:
            out = qm.rounding_divide_by_pot(qm.logistic(in_q4, 4), 31 - 8) - 128
        out = np.clip(out, -128, 127)
        return np.where(xs <= -radius, -128, np.where(xs >= radius, 127, out)).astype(np.int8)

    return _elementwise(fn, _in_types(op, 1))


def logistic(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM int8 LOGISTIC (gemmlowp fixed-point ``logistic`` on a Q4.27 input)."""
    return _logistic_tanh(op, p, mode, tanh=False)


def tanh(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM int8 TANH (gemmlowp fixed-point ``tanh`` on a Q4.27 input)."""
    return _logistic_tanh(op, p, mode, tanh=True)


def softmax(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM int8 SOFTMAX: fixed-point exp of scaled differences, reciprocal of their Q12 sum.

    The exponentials depend only on ``x - max(row)`` (256 values): they are tabled.
    """
    assert isinstance(op, nn.SoftmaxOp)
    if mode == "onnx_rint":
        fn = _float_sim(op, p, ("input",))
        return lambda args: fn(args[0])
    xq, yq = qtype(op.input), qtype(op.output)
    span = xq.qmax - xq.qmin
    diffs = np.arange(-span, 1, dtype=np.int64)
    rescaled = qm.multiply_by_quantized_multiplier_greater_than_one(
        diffs, _v(p, "input_multiplier"), int(p["input_left_shift"]), mode
    )
    exp_table = np.where(diffs >= int(p["diff_min"]), qm.exp_on_negative_values(rescaled, 5), 0)
    q12_table = qm.rounding_divide_by_pot(exp_table, 12)
    out_bits = yq.width

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        x = args[0].astype(np.int64)
        idx = x - x.max(axis=-1, keepdims=True) + span
        exp = exp_table[idx]
        sum_of_exps = qm.wrap_int32(q12_table[idx].sum(axis=-1, keepdims=True))
        shifted_scale, num_bits_over_unit = qm.get_reciprocal(sum_of_exps, 12)
        exponent = num_bits_over_unit + 31 - out_bits
        unsat = qm.rounding_divide_by_pot(
            qm.saturating_rounding_doubling_high_mul(shifted_scale, exp), exponent
        )
        out = np.clip(unsat + yq.qmin, yq.qmin, yq.qmax)
        return np.where(exp != 0, out, yq.qmin).astype(yq.numpy_dtype)

    return kernel


# --------------------------------------------------------------------------
# Pools and reductions
# --------------------------------------------------------------------------


def max_pool2d(op: Operation, p: Params, mode: str) -> Kernel:
    """Integer max pooling (exact in every mode): window max, then the activation clamp."""
    assert isinstance(op, nn.MaxPool2DOp)
    win = window_of(op)
    yq = qtype(op.output)
    lo, hi = _bounds(p, "clamp", yq)
    fill = np.iinfo(yq.numpy_dtype).min

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        xp = pad_hw(args[0], win.pads, fill)
        y = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).max(axis=(3, 4))
        return np.clip(y, lo, hi).astype(yq.numpy_dtype)

    return kernel


def avg_pool2d(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM integer AVERAGE_POOL: sum of valid cells, divided rounding half away from zero."""
    assert isinstance(op, nn.AvgPool2DOp)
    if mode == "onnx_rint":
        fn = _float_sim(op, p, ("input",))
        return lambda args: fn(args[0])
    win = window_of(op)
    yq = qtype(op.output)
    lo, hi = _bounds(p, "clamp", yq)
    in_hw = nn.shape_of(op.input)[1:3]
    counts = valid_counts(in_hw, win.kernel, win.strides, win.pads, win.out_hw)[None, :, :, None]
    half = counts // 2

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        xp = pad_hw(args[0].astype(np.int64), win.pads, 0)
        total = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).sum(axis=(3, 4))
        avg = np.where(total > 0, qm.trunc_div(total + half, counts), qm.trunc_div(total - half, counts))
        return np.clip(avg, lo, hi).astype(yq.numpy_dtype)

    return kernel


def mean(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM integer MEAN (``QuantizedMeanOrSum``): ``(sum - zp*count)`` times a multiplier holding 1/count."""
    assert isinstance(op, nn.MeanOp)
    if mode == "onnx_rint":
        fn = _float_sim(op, p, ("input",))
        return lambda args: fn(args[0])
    yq = qtype(op.output)
    axes = op.axis_values()
    keep = op.keep_dims is not None
    offset = int(p["input_zp"]) * int(p["count"])
    m, s, zo = _v(p, "multiplier"), _v(p, "shift"), int(p["output_zp"])

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        total = args[0].astype(np.int64).sum(axis=axes, keepdims=keep)
        out = qm.multiply_by_quantized_multiplier(qm.wrap_int32(total - offset), m, s, mode) + zo
        return np.clip(out, yq.qmin, yq.qmax).astype(yq.numpy_dtype)

    return kernel


# --------------------------------------------------------------------------
# Quantize
# --------------------------------------------------------------------------


def quantize(op: Operation, p: Params, mode: str) -> Kernel:
    """Float -> integer (TFLM ``AffineQuantize`` / ONNX ``QuantizeLinear``) or integer requantization."""
    assert isinstance(op, nn.QuantizeOp)
    yq = qtype(op.output)
    if nn.is_float(op.input):
        rank = len(nn.shape_of(op.input))
        scale = np.asarray(p["scale"], dtype=np.float32)
        zp = np.asarray(p["zero_point"], dtype=np.int64)
        axis = int(p["axis"])
        if axis >= 0:
            shape = [1] * rank
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        else:
            scale, zp = scale.reshape(()), zp.reshape(())
        rounding = quantize_rint if mode == "onnx_rint" else quantize_away
        return lambda args: np.clip(rounding(args[0], scale, zp), yq.qmin, yq.qmax).astype(yq.numpy_dtype)
    if mode == "onnx_rint":
        return _elementwise(_float_sim_requantize(p, yq), _in_types(op, 1))
    zi, zo = int(p["input_zp"]), int(p["output_zp"])
    m, s = _v(p, "multiplier"), _v(p, "shift")

    def fn(x: np.ndarray) -> np.ndarray:
        out = qm.multiply_by_quantized_multiplier(x.astype(np.int64) - zi, m, s, mode) + zo
        return np.clip(out, yq.qmin, yq.qmax).astype(yq.numpy_dtype)

    return _elementwise(fn, _in_types(op, 1))


def _float_sim_requantize(p: Params, yq: UniformQuantizedType) -> Elementwise:
    lo, hi = _bounds(p, "clamp", yq)

    def fn(x: np.ndarray) -> np.ndarray:
        y = dequantize(x, p["input_scale"], p["input_zp"])
        return np.clip(quantize_rint(y, p["output_scale"], p["output_zp"]), lo, hi).astype(yq.numpy_dtype)

    return fn


INT_MAKERS: dict[type[Operation], IntMaker] = {
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
"""Integer kernel makers of the quantizable ops, given the op's `qparams.get` and rounding mode."""
