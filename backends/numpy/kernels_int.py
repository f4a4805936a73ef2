"""Integer kernels: bit-exact with TFLite Micro's reference kernels (``tflite_double`` / ``single``)
and with ONNX's reference (``onnx_rint``), reading every parameter through `nnopt.dialects.qparams`.

Each entry of `INT_MAKERS` prepares one op once (weights with zero points
removed, window geometry, lookup tables) and returns its `Kernel`.

* Dot products of 8-bit operands run exactly in float32/float64 BLAS when a
  static bound on every partial sum (operand ranges times the weights' absolute
  row sums) stays below 2^24 / 2^53, else in int64 (`_dot_plan`). Inputs enter
  raw when that bound allows, the zero point folded into a per-channel offset
  with the bias (``sum((x - zp) w) = sum(x w) - zp sum(w)``; padding holds the
  zero point). 8-bit kernels wrap their accumulators to int32 like TFLM's C code
  whenever the bound allows overflow.
* Requantization (`make_requant`) of accumulators that cannot wrap takes an
  exact fast form: threshold lookup for small 8-bit outputs
  (`qmath.StepRequant`: one ``searchsorted``), else one affine int64 step
  (`qmath.AffineRequant`). Chains of 8-bit FULLY_CONNECTED layers pass float32
  activations from one lookup to the next BLAS product (`FcStage`, fused by the
  interpreter).
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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
from nnopt.backends.numpy.windows import (
    depthwise_as_matmul,
    depthwise_matrices,
    depthwise_rows,
    depthwise_sum,
    im2col,
    pad_hw,
    pad_hw_as,
    valid_counts,
    window_view,
)
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


def _dot_plan(
    xq: UniformQuantizedType, zero_point: int, row_abs_sum: int
) -> tuple[type[np.generic], bool, int]:
    """How to form exact dot products of stored inputs with weight rows of ``sum |w| <= row_abs_sum``.

    Returns the matmul dtype, whether the inputs enter raw (``x``, the zero point
    then folds into the per-channel offset ``-zp * sum(w)``) rather than centred
    (``x - zp``), and the bound on ``|dot|`` and on every partial sum. Raw inputs
    save a subtraction and, for int8 with zero point -128, halve the bound.
    """
    raw_bound = max(-xq.qmin, xq.qmax) * row_abs_sum
    centred_bound = _range_abs(xq, zero_point) * row_abs_sum
    if raw_bound < (1 << 24):
        return np.float32, True, raw_bound
    if centred_bound < (1 << 24):
        return np.float32, False, centred_bound
    if raw_bound < (1 << 53):
        return np.float64, True, raw_bound
    return np.int64, False, centred_bound


STEP_LOOKUP_MAX = (1024, 256)
"""Outputs of at most this many elements are requantized by threshold lookup (`qm.StepRequant`):
with one multiplier for all channels, and with per-channel multipliers.

A lookup is three numpy calls whatever the parameters, but ``searchsorted``
costs about 7 ns per element in 256 thresholds, and 15-100 ns in the
per-channel arrays; larger outputs use `qm.AffineRequant` (about ten int64
passes of a few ns per element)."""


def _clamp_cast(v: np.ndarray, lo: int, hi: int, dtype: np.dtype[np.generic]) -> np.ndarray:
    """``clip(v, lo, hi).astype(dtype)`` for a fresh array `v` (clamped in place, no np.clip wrapper)."""
    np.maximum(v, lo, out=v)
    np.minimum(v, hi, out=v)
    return v.astype(dtype)


def make_requant(
    p: Params,
    mode: str,
    out_q: UniformQuantizedType,
    *,
    wide: bool = False,
    acc_bound: int | None = None,
    offset: np.ndarray | None = None,
    dot_bound: int | None = None,
    size: int | None = None,
    dot_dtype: type[np.generic] = np.float64,
) -> Callable[[np.ndarray], np.ndarray]:
    """Requantization of accumulators ``dot + offset`` (channels last) to the stored output.

    `dot` holds exact integers (int64, or float32/float64 from an exact BLAS
    product) and may be overwritten; `offset` (int64, per output channel or one
    value) is added exactly. `acc_bound` bounds ``|dot + offset|``, TFLM's int32
    accumulator (None: unknown, wrapped to int32 like TFLM's C code);
    `dot_bound` bounds ``|dot|`` (default: `acc_bound`); `size` is the number of
    outputs and `dot_dtype` the type of `dot`. Known bounds allow the exact fast
    forms: threshold lookup for small 8-bit outputs (`qm.StepRequant`), else one
    affine int64 step (`qm.AffineRequant`); otherwise the formulas of `qmath`
    run as written.
    """
    lo, hi = _bounds(p, "clamp", out_q)
    dtype = out_q.numpy_dtype
    zp = int(p["output_zp"])
    off = np.zeros((), dtype=np.int64) if offset is None else np.asarray(offset, dtype=np.int64).reshape(-1)
    has_offset = bool(np.any(off != 0))
    if dot_bound is None:
        dot_bound = acc_bound
    multiplier: np.ndarray
    shift: np.ndarray | None
    if mode == "onnx_rint":
        multiplier = np.asarray(p["multiplier"], dtype=np.float32).reshape(-1)
        shift = None
    else:
        multiplier, shift = _v(p, "multiplier"), _v(p, "shift")
    known = acc_bound is not None and dot_bound is not None and not wide
    if known and acc_bound is not None and dot_bound is not None:
        channels = max(np.size(multiplier), np.size(off), 1 if shift is None else np.size(shift))
        m_all = multiplier.reshape(-1)
        s_all = np.zeros(1, dtype=np.int64) if shift is None else shift.reshape(-1)
        uniform = bool(np.all(m_all == m_all[0]) and np.all(s_all == s_all[0]))
        if (
            out_q.width == 8
            and size is not None
            and size <= STEP_LOOKUP_MAX[0 if uniform else 1]
            and qm.requantize_is_monotone(mode, multiplier, shift, acc_bound)
        ):
            reference = qm.requantize_reference(
                mode,
                m_all[0] if uniform else multiplier,
                None if shift is None else (s_all[0] if uniform else shift),
                zp,
                lo,
                hi,
            )
            step = qm.StepRequant.build(
                reference,
                lo,
                hi,
                off,
                channels,
                acc_bound,
                dot_bound,
                dtype,
                uniform=uniform,
                dot_dtype=dot_dtype,
            )
            if step is not None:
                return step
        if shift is not None:
            affine = qm.AffineRequant.build(mode, multiplier, shift, off, zp, lo, hi, acc_bound, dot_bound)
            if affine is not None:
                return lambda dot: affine(dot).astype(dtype)

    def accumulators(dot: np.ndarray) -> qm.IntArray:
        acc: qm.IntArray = dot.astype(np.int64)
        if has_offset:
            acc += off
        return acc

    if mode == "onnx_rint":
        mf = multiplier.astype(np.float64)
        mf = mf.reshape(()) if mf.size == 1 else mf
        return lambda dot: _clamp_cast(np.rint(accumulators(dot) * mf) + zp, lo, hi, dtype)
    m: qm.IntArray = np.asarray(multiplier, dtype=np.int64)
    s = shift
    assert s is not None
    if wide:  # int64 accumulators (TFLM's 16-bit DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL)
        return lambda dot: _clamp_cast(
            qm.multiply_by_quantized_multiplier_int64(accumulators(dot), m, s), lo, hi, dtype
        )
    may_overflow = acc_bound is None or acc_bound > qm.INT32_MAX
    if mode == "tflite_double" and np.all(s <= 0) and np.all(m >= 0):
        right = -s

        def double(dot: np.ndarray) -> np.ndarray:
            a = accumulators(dot)
            a = qm.wrap_int32(a) if may_overflow else a
            high = (a * m + (1 << 30)) >> 31  # SaturatingRoundingDoublingHighMul (no saturation: m >= 0)
            return _clamp_cast(qm.rounding_divide_by_pot(high, right) + zp, lo, hi, dtype)

        return double

    def general(dot: np.ndarray) -> np.ndarray:
        a = accumulators(dot)
        a = qm.wrap_int32(a) if may_overflow else a
        return _clamp_cast(qm.multiply_by_quantized_multiplier(a, m, s, mode) + zp, lo, hi, dtype)

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


def _dynamic_bias(op: nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.FullyConnectedOp) -> bool:
    return op.bias is not None and static_value(op.bias) is None


def _offset(bias: np.ndarray | None, raw: bool, zero_point: int, weight_sums: np.ndarray) -> np.ndarray:
    """Per output channel: the static bias, minus ``zp * sum(w)`` when the inputs enter raw."""
    off = np.zeros(weight_sums.shape, dtype=np.int64) if bias is None else bias.astype(np.int64).copy()
    if raw:
        off -= zero_point * weight_sums
    return off


def _with_dynamic_bias(dot: np.ndarray, args: Sequence[np.ndarray]) -> np.ndarray:
    """``dot + bias`` in int64 for a bias that is an operand (its bound is int32's)."""
    acc = dot.astype(np.int64)
    acc += args[2].astype(np.int64)
    return acc


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

    def columns(xp: np.ndarray) -> np.ndarray:
        """``[G, M, KH*KW*Cin_g]`` patches (G = 1: a view when the kernel is 1x1)."""
        if groups == 1:
            return im2col(xp, win.kernel, win.strides, win.dilations, win.out_hw)[None]
        view = window_view(xp, win.kernel, win.strides, win.dilations, win.out_hw)
        return view.reshape(m, kh, kw, groups, cin_g).transpose(3, 0, 1, 2, 4).reshape(groups, m, -1)

    def product(cols: np.ndarray, wmats: np.ndarray) -> np.ndarray:
        if groups == 1:
            return np.matmul(cols[0], wmats[0])
        return np.matmul(cols, wmats).transpose(1, 0, 2).reshape(m, cout)

    w_static = static_value(op.weight)
    bias, bias_bound = _bias(op)
    if w_static is None:  # weights computed at run time: centred inputs, wrapped accumulators
        requant = make_requant(p, mode, yq)

        def dynamic_kernel(args: Sequence[np.ndarray]) -> np.ndarray:
            ws = args[1].astype(np.int64) - wzp
            mats = ws.reshape(groups, cout // groups, -1)
            dt = _mm_dtype(x_max * int(np.abs(mats).sum(axis=2).max(initial=0)))
            wmats = np.ascontiguousarray(mats.transpose(0, 2, 1), dtype=dt)
            xp = pad_hw(np.subtract(args[0], zp_in, dtype=dt), win.pads, 0)
            acc = product(columns(xp), wmats).astype(np.int64)
            if bias is not None:
                acc += bias
            elif len(args) > 2:
                acc += args[2].astype(np.int64)
            return requant(acc).reshape(n, oh, ow, cout)

        return dynamic_kernel

    ws = w_static.astype(np.int64) - wzp
    mats = ws.reshape(groups, cout // groups, -1)
    row_abs = int(np.abs(mats).sum(axis=2).max(initial=0))
    dt, raw, dot_bound = _dot_plan(xq, zp_in, row_abs)
    wmats = np.ascontiguousarray(mats.transpose(0, 2, 1), dtype=dt)
    offset = _offset(bias, raw, zp_in, ws.reshape(cout, -1).sum(axis=1))
    dynamic_bias = _dynamic_bias(op)
    # TFLM's 16-bit CONV_2D with a 32-bit bias accumulates in int32 (64-bit only with an int64 bias).
    requant = make_requant(
        p,
        mode,
        yq,
        acc_bound=None if dynamic_bias else x_max * row_abs + bias_bound,
        offset=offset,
        dot_bound=dot_bound,
        size=m * cout,
        dot_dtype=dt,
    )
    fill = zp_in if raw else 0

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        x = args[0]
        if raw:
            xp = pad_hw(x, win.pads, fill)  # stored integers; the matmul converts them
        else:
            xp = pad_hw(np.subtract(x, zp_in, dtype=dt), win.pads, 0)
        dot = product(columns(xp), wmats)
        if dynamic_bias:
            dot = _with_dynamic_bias(dot, args)
        return requant(dot).reshape(n, oh, ow, cout)

    return kernel


def depthwise_conv2d(op: Operation, p: Params, mode: str) -> Kernel:
    """Integer depthwise convolution (TFLM ``DepthwiseConvPerChannel``).

    Multiplier 1: all kernel taps in one ``einsum`` over a strided view
    (`depthwise_sum`); larger multipliers: one batched product per input channel.
    """
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
    geometry = (win.kernel, win.strides, win.dilations, win.out_hw)

    def dot_of(xp: np.ndarray, ws: np.ndarray) -> np.ndarray:
        if mult == 1:
            return depthwise_sum(xp, ws, *geometry).reshape(n, oh, ow, cm)
        return depthwise_as_matmul(xp, ws, *geometry)

    def weights(ws: np.ndarray, dt: type[np.generic]) -> np.ndarray:
        if mult == 1:
            return depthwise_rows(ws, win.kernel, ow, dt)
        return depthwise_matrices(ws, win.kernel, c, dt)

    w_static = static_value(op.weight)
    bias, bias_bound = _bias(op)
    if w_static is None:  # weights computed at run time: centred inputs, wrapped accumulators
        requant = make_requant(p, mode, yq, wide=wide)

        def dynamic_kernel(args: Sequence[np.ndarray]) -> np.ndarray:
            ws = (args[1].astype(np.int64) - wzp).reshape(kh, kw, cm)
            dt = _mm_dtype(x_max * int(np.abs(ws).sum(axis=(0, 1)).max(initial=0)))
            xp = pad_hw(np.subtract(args[0], zp_in, dtype=dt), win.pads, 0)
            acc = dot_of(xp, weights(ws, dt)).astype(np.int64)
            if bias is not None:
                acc += bias
            elif len(args) > 2:
                acc += args[2].astype(np.int64)
            return requant(acc)

        return dynamic_kernel

    ws = (w_static.astype(np.int64) - wzp).reshape(kh, kw, cm)
    row_abs = int(np.abs(ws).sum(axis=(0, 1)).max(initial=0))
    dt, raw, dot_bound = _dot_plan(xq, zp_in, row_abs)
    if dt is np.int64:  # never for 8- and 16-bit inputs and real kernel sizes; exact in int64 anyway
        dt, raw, dot_bound = np.int64, False, x_max * row_abs
    wprep = weights(ws, dt)
    offset = _offset(bias, raw, zp_in, ws.sum(axis=(0, 1)))
    dynamic_bias = _dynamic_bias(op)
    requant = make_requant(
        p,
        mode,
        yq,
        wide=wide,
        acc_bound=None if dynamic_bias else x_max * row_abs + bias_bound,
        offset=offset,
        dot_bound=dot_bound,
        size=n * oh * ow * cm,
        dot_dtype=dt,
    )

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        x = args[0]
        if raw:  # stored integers, padded with the zero point (their offset is folded)
            xp = pad_hw_as(x, win.pads, zp_in, dt) if mult == 1 else pad_hw(x, win.pads, zp_in)
        else:
            xp = pad_hw(np.subtract(x, zp_in, dtype=dt), win.pads, 0)
        dot = dot_of(xp, wprep)
        if dynamic_bias:
            dot = _with_dynamic_bias(dot, args)
        return requant(dot)

    return kernel


FC_STAGE = "nnopt_fc_stage"
"""Attribute of the kernels of 8-bit FULLY_CONNECTED ops that requantize by lookup: their `FcStage`."""


@dataclass(frozen=True)
class FcStage:
    """An 8-bit FULLY_CONNECTED layer as ``lookup(x @ wt + shifts)`` (static weights, raw inputs).

    Alone it returns the stored outputs (`kernel`). In a chain of such layers
    (`fc_chain_kernel`), where each output feeds only the next layer, the
    intermediate outputs never materialise as 8-bit arrays: each lookup yields the
    stored values as float32, the next layer's exact BLAS input.
    """

    in_shape: tuple[int, ...]
    wt: np.ndarray
    requant: qm.StepRequant
    out_shape: tuple[int, ...]

    def kernel(self) -> Kernel:
        wt, in_shape, out_shape = self.wt, self.in_shape, self.out_shape
        flat, shifts, table, in_place = (
            self.requant.flat,
            self.requant.shifts,
            self.requant.table,
            self.requant.in_place,
        )

        def step_kernel(args: Sequence[np.ndarray]) -> np.ndarray:
            dot = np.dot(args[0].reshape(in_shape), wt)
            if shifts is not None:
                if in_place:
                    dot += shifts
                else:
                    dot = dot + shifts
            return table[flat.searchsorted(dot, side="right")].reshape(out_shape)

        return step_kernel


def fc_chain_kernel(stages: Sequence[FcStage]) -> Kernel:
    """One kernel for FULLY_CONNECTED layers that feed each other (see `FcStage`); it reads ``args[0]``."""
    links = [
        (
            s.in_shape,
            s.wt,
            s.requant.flat,
            s.requant.shifts,
            s.requant.in_place,
            s.requant.table.astype(np.float32),
        )
        for s in stages[:-1]
    ]
    last = stages[-1]
    last_kernel = last.kernel()

    def chain_kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        v = args[0]
        for in_shape, wt, flat, shifts, in_place, values in links:
            dot = np.dot(v.reshape(in_shape), wt)
            if shifts is not None:
                if in_place:
                    dot += shifts
                else:
                    dot = dot + shifts
            v = values[flat.searchsorted(dot, side="right")]
        return last_kernel([v])

    return chain_kernel


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
    bias, bias_bound = _bias(op)

    w_static = static_value(op.weight)
    if w_static is None:  # weights computed at run time: centred inputs, wrapped accumulators
        requant = make_requant(p, mode, yq, wide=wide)

        def dynamic_kernel(args: Sequence[np.ndarray]) -> np.ndarray:
            ws = args[1].astype(np.int64) - wzp
            dt = _mm_dtype(x_max * int(np.abs(ws).sum(axis=1).max(initial=0)))
            wt = np.ascontiguousarray(ws.T, dtype=dt)
            acc = (np.subtract(args[0].reshape(-1, k), zp_in, dtype=dt) @ wt).astype(np.int64)
            if bias is not None:
                acc += bias
            elif len(args) > 2:
                acc += args[2].astype(np.int64)
            return requant(acc).reshape(out_shape)

        return dynamic_kernel

    ws = w_static.astype(np.int64) - wzp
    row_abs = int(np.abs(ws).sum(axis=1).max(initial=0))
    dt, raw, dot_bound = _dot_plan(xq, zp_in, row_abs)
    wt = np.ascontiguousarray(ws.T, dtype=dt)
    offset = _offset(bias, raw, zp_in, ws.sum(axis=1))
    dynamic_bias = _dynamic_bias(op)
    rows = math.prod(out_shape) // max(wt.shape[1], 1)
    requant = make_requant(
        p,
        mode,
        yq,
        wide=wide,
        acc_bound=None if dynamic_bias else x_max * row_abs + bias_bound,
        offset=offset,
        dot_bound=dot_bound,
        size=math.prod(out_shape),
        dot_dtype=dt,
    )
    in_shape = (k,) if rows == 1 else (-1, k)  # one row: a matrix-vector product (BLAS gemv)

    if isinstance(requant, qm.StepRequant) and raw and not dynamic_bias and xq.width == 8:
        stage = FcStage(in_shape, wt, requant, tuple(out_shape))
        step_kernel = stage.kernel()
        setattr(step_kernel, FC_STAGE, stage)
        return step_kernel

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        x = args[0].reshape(in_shape)
        dot = np.dot(x if raw else np.subtract(x, zp_in, dtype=dt), wt)
        if dynamic_bias:
            dot = _with_dynamic_bias(dot, args)
        return requant(dot).reshape(out_shape)

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
    requant = make_requant(
        p, mode, yq, wide=wide, acc_bound=bound, size=math.prod(nn.shape_of(op.output)), dot_dtype=dt
    )

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        a = np.subtract(args[0], za, dtype=dt)
        b = np.subtract(args[1], zb, dtype=dt)
        if adj_x:
            a = np.swapaxes(a, -1, -2)
        if adj_y:
            b = np.swapaxes(b, -1, -2)
        return requant(np.matmul(a, b))

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


SOFTMAX_SCALAR_ROWS = 32
"""Softmax rows up to this count take their reciprocal in Python integers (`qm.get_reciprocal_int`)."""


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
    qmin, qmax = yq.qmin, yq.qmax

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        x = args[0]
        idx = np.subtract(x, x.max(axis=-1, keepdims=True), dtype=np.intp)
        idx += span
        exp = exp_table[idx]
        sum_of_exps = q12_table[idx].sum(axis=-1, keepdims=True)
        if sum_of_exps.size <= SOFTMAX_SCALAR_ROWS:
            pairs = [qm.get_reciprocal_int(s, 12) for s in sum_of_exps.reshape(-1).tolist()]
            shifted_scale = np.array([s for s, _ in pairs], dtype=np.int64).reshape(sum_of_exps.shape)
            num_bits_over_unit = np.array([b for _, b in pairs], dtype=np.int64).reshape(sum_of_exps.shape)
        else:
            shifted_scale, num_bits_over_unit = qm.get_reciprocal(qm.wrap_int32(sum_of_exps), 12)
        exponent = num_bits_over_unit + (31 - out_bits)
        # RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(scale, exp), exponent) on values >= 0:
        # no saturation, no negative rounding, and exponent >= 31 - out_bits (every row holds its own
        # maximum, whose exp is 1.0: the sum is at least 2^19). exp == 0 gives 0, the minimum output.
        out = shifted_scale * exp
        out += 1 << 30
        out >>= 31
        out += (np.int64(1) << exponent) >> 1
        out >>= exponent
        out += qmin
        np.minimum(out, qmax, out=out)
        return out.astype(yq.numpy_dtype)

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
    info = np.iinfo(yq.numpy_dtype)
    fill = info.min

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        xp = pad_hw(args[0], win.pads, fill)
        y = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).max(axis=(3, 4))
        if lo > info.min:
            np.maximum(y, lo, out=y)
        if hi < info.max:
            np.minimum(y, hi, out=y)
        return y.astype(yq.numpy_dtype, copy=False)

    return kernel


def avg_pool2d(op: Operation, p: Params, mode: str) -> Kernel:
    """TFLM integer AVERAGE_POOL: sum of valid cells, divided rounding half away from zero.

    Without padding every window holds the same number of cells, and the
    rounded, clamped average of the window sum comes from a table over every
    possible sum (``count * 255 + 1`` entries).
    """
    assert isinstance(op, nn.AvgPool2DOp)
    if mode == "onnx_rint":
        fn = _float_sim(op, p, ("input",))
        return lambda args: fn(args[0])
    win = window_of(op)
    xq, yq = qtype(op.input), qtype(op.output)
    lo, hi = _bounds(p, "clamp", yq)
    in_hw = nn.shape_of(op.input)[1:3]
    counts = valid_counts(in_hw, win.kernel, win.strides, win.pads, win.out_hw)[None, :, :, None]
    half = counts // 2

    def average(total: np.ndarray, count: np.ndarray | int, half: np.ndarray | int) -> np.ndarray:
        avg = np.where(total > 0, qm.trunc_div(total + half, count), qm.trunc_div(total - half, count))
        return _clamp_cast(avg, lo, hi, yq.numpy_dtype)

    count = int(win.kernel[0] * win.kernel[1])
    if xq.width == 8 and not any(win.pads) and count > 0:
        base = xq.qmin * count
        table = average(np.arange(base, xq.qmax * count + 1, dtype=np.int64), count, count // 2)
        full = tuple(win.kernel) == tuple(in_hw)  # one window over the whole image

        def table_kernel(args: Sequence[np.ndarray]) -> np.ndarray:
            x = args[0]
            if full:
                total = x.sum(axis=(1, 2), keepdims=True, dtype=np.intp)
            else:
                view = window_view(x, win.kernel, win.strides, (1, 1), win.out_hw)
                total = view.sum(axis=(3, 4), dtype=np.intp)
            total -= base
            return table[total]

        return table_kernel

    def kernel(args: Sequence[np.ndarray]) -> np.ndarray:
        xp = pad_hw(args[0].astype(np.int64), win.pads, 0)
        total = window_view(xp, win.kernel, win.strides, (1, 1), win.out_hw).sum(axis=(3, 4))
        return average(total, counts, half)

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
