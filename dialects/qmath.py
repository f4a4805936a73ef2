"""Exact integer arithmetic of quantized kernels, vectorised with numpy.

Everything here reproduces, bit for bit, the integer helpers that TFLite /
TFLite Micro (``tensorflow/lite/kernels/internal/{common,quantization_util}``)
and gemmlowp (``fixedpoint/fixedpoint.h``) use, plus ONNX's float
requantization:

* `quantize_multiplier` and friends turn a real multiplier into ``(M0, shift)``
  exactly as ``QuantizeMultiplier`` does (``frexp``, ``std::round``, the
  ``q == 2^31`` case, flush to zero below ``2^-31``).
* `multiply_by_quantized_multiplier` requantizes int32 accumulators in the
  ``tflite_double`` mode (gemmlowp ``SaturatingRoundingDoublingHighMul`` +
  ``RoundingDivideByPOT``, with the int32 wrap of ``x << left_shift`` and the
  ``INT32_MIN * INT32_MIN`` saturation) or the ``single`` mode
  (``(x*M0 + 2^(t-1)) >> t`` with ``t = 31 - shift``), broadcasting per-channel
  multipliers and shifts. `requantize_rint` is ONNX's float multiply with
  round-half-to-even.
* The gemmlowp fixed-point functions (`exp_on_negative_values`, `logistic`,
  `tanh`, `one_over_one_plus_x_for_x_in_0_1`, `get_reciprocal`) used by the int8
  softmax, logistic and tanh kernels.

Integer arrays are carried as ``int64`` numpy arrays holding int32 values;
every place where C code computes in 32 bits wraps explicitly with `wrap_int32`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
"""An int64 array holding (usually int32-ranged) integers."""

ArrayLike = npt.ArrayLike

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

ROUNDING_MODES = ("tflite_double", "single", "onnx_rint")
"""The requantization modes (the `rounding` property of quantized `nn` ops)."""


def _i64(x: ArrayLike) -> IntArray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x: ArrayLike) -> IntArray:
    """Two's-complement wrap of integers to int32 (as int64 values)."""
    v = _i64(x)
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def trunc_div(a: ArrayLike, b: ArrayLike) -> IntArray:
    """C integer division (rounds toward zero); `b` must be non-zero."""
    av, bv = _i64(a), _i64(b)
    q = np.abs(av) // np.abs(bv)
    return np.where((av < 0) != (bv < 0), -q, q)


# --------------------------------------------------------------------------
# Rounding of floats
# --------------------------------------------------------------------------


def round_half_away(x: float) -> float:
    """``std::round`` (TfLiteRound) on a double: ties away from zero, exact."""
    if not math.isfinite(x):
        return x
    r = math.floor(x)
    frac = x - r  # exact for doubles
    if frac > 0.5 or (frac == 0.5 and x > 0):
        return float(r + 1)
    return float(r)


def round_half_away_array(x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
    """Elementwise ties-away-from-zero rounding that keeps the dtype (``roundf`` for float32)."""
    r = np.floor(x)
    frac = x - r  # exact in the array's own precision
    up = (frac > 0.5) | ((frac == 0.5) & (x > 0))
    return np.where(up, r + 1, r).astype(x.dtype, copy=False)


# --------------------------------------------------------------------------
# Real multipliers -> (M0, shift)
# --------------------------------------------------------------------------


def quantize_multiplier(real: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ~= M0 * 2^(shift - 31)``, ``M0`` in ``[2^30, 2^31)``.

    `shift` > 0 means a left shift. Multipliers below ``2^-31`` flush to ``(0, 0)``.
    With `single_rounding` (``TFLITE_SINGLE_ROUNDING``) shifts above 30 saturate
    to ``(2^31 - 1, 30)``.
    """
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"multiplier must be finite and non-negative, got {real}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * float(1 << 31)))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    if single_rounding and shift > 30:
        shift = 30
        q_fixed = (1 << 31) - 1
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(
    real: float, *, single_rounding: bool = False
) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplierSmallerThanOneExp``: a multiplier in (0, 1), shift <= 0."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier must be in (0, 1), got {real}")
    m, shift = quantize_multiplier(real, single_rounding=single_rounding)
    if shift > 0:
        raise ValueError(f"multiplier {real} rounds up to 1.0")
    return m, shift


def quantize_multiplier_greater_than_one(real: float, *, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplierGreaterThanOne``: a multiplier > 1, shift >= 0."""
    if not real > 1.0:
        raise ValueError(f"multiplier must be > 1, got {real}")
    m, shift = quantize_multiplier(real, single_rounding=single_rounding)
    if shift < 0:  # pragma: no cover - impossible for real > 1
        raise ValueError(f"multiplier {real} gave a negative shift")
    return m, shift


def f32(x: float) -> float:
    """Round a Python float to the nearest float32 (C's ``static_cast<float>``)."""
    return float(np.float32(x))


def conv_multiplier_f32(input_scale: float, weight_scale: float, output_scale: float) -> float:
    """``GetQuantizedConvolutionMultipler``: ``double(float(s_in * s_w)) / double(s_out)``.

    The product of the two float32 scales is rounded to float32 first; TFLM's
    per-tensor FULLY_CONNECTED and BATCH_MATMUL use this.
    """
    product = np.float32(input_scale) * np.float32(weight_scale)
    return float(product) / f32(output_scale)


def per_channel_multiplier(input_scale: float, weight_scale: float, output_scale: float) -> float:
    """``double(s_in) * double(s_w) / double(s_out)`` on float32 scales (TFLM's per-channel path)."""
    return f32(input_scale) * f32(weight_scale) / f32(output_scale)


def onnx_multiplier(input_scale: float, weight_scale: float, output_scale: float) -> np.float32:
    """ONNX reference ``x_scale * w_scale / y_scale`` evaluated in float32."""
    return np.float32(np.float32(input_scale) * np.float32(weight_scale)) / np.float32(output_scale)


# --------------------------------------------------------------------------
# gemmlowp primitives
# --------------------------------------------------------------------------


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values (ARM ``VQRDMULH``).

    gemmlowp adds a nudge of ``2^30`` (or ``1 - 2^30`` for negative products)
    and divides by ``2^31`` truncating toward zero; that is exactly
    ``floor((a*b + 2^30) / 2^31)``, i.e. round half up, computed here with one
    arithmetic shift. ``INT32_MIN * INT32_MIN`` saturates to ``INT32_MAX``.
    """
    av, bv = _i64(a), _i64(b)
    high = (av * bv + (1 << 30)) >> 31
    if np.any(bv == INT32_MIN):
        high = np.where((av == INT32_MIN) & (bv == INT32_MIN), INT32_MAX, high)
    return high


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> IntArray:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2^exponent`` rounded to nearest, ties away from zero."""
    xv, e = _i64(x), _i64(exponent)
    half = (np.int64(1) << e) >> 1
    return (xv + half - ((xv < 0) & (half > 0))) >> e


def saturating_rounding_multiply_by_pot(x: ArrayLike, exponent: int) -> IntArray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on int32 values."""
    xv = _i64(x)
    if exponent == 0:
        return xv
    if exponent < 0:
        return rounding_divide_by_pot(xv, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    result = wrap_int32(xv << exponent)
    result = np.where(xv > threshold, INT32_MAX, result)
    return np.where(xv < -threshold, INT32_MIN, result)


def _add(a: ArrayLike, b: ArrayLike) -> IntArray:
    return wrap_int32(_i64(a) + _i64(b))


def _sub(a: ArrayLike, b: ArrayLike) -> IntArray:
    return wrap_int32(_i64(a) - _i64(b))


def _neg(a: ArrayLike) -> IntArray:
    return wrap_int32(-_i64(a))


_mul = saturating_rounding_doubling_high_mul


def _rescale(x: ArrayLike, src_integer_bits: int, dst_integer_bits: int) -> IntArray:
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a: ArrayLike, b: ArrayLike) -> IntArray:
    """gemmlowp ``RoundingHalfSum`` on int32: ``(a + b) / 2`` rounded half away from zero."""
    s = _i64(a) + _i64(b)
    sign = np.where(s >= 0, 1, -1)
    return trunc_div(s + sign, 2)


# --------------------------------------------------------------------------
# Requantization
# --------------------------------------------------------------------------


def _mbqm_double(x: IntArray, multiplier: IntArray, shift: IntArray) -> IntArray:
    if np.all(shift <= 0):  # the usual case: no left shift
        return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap_int32(x << left)  # C: x * (1 << left_shift) in int32
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def _mbqm_single(x: IntArray, multiplier: IntArray, shift: IntArray) -> IntArray:
    total = 31 - shift
    rounding = np.int64(1) << (total - 1)
    return wrap_int32((x * multiplier + rounding) >> total)


def multiply_by_quantized_multiplier(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike, mode: str = "tflite_double"
) -> IntArray:
    """TFLite's ``MultiplyByQuantizedMultiplier(int32 x, M0, shift)``, elementwise with broadcasting.

    `mode` is ``tflite_double`` (gemmlowp double rounding, TFLM's default build)
    or ``single`` (``TFLITE_SINGLE_ROUNDING``). `x` holds int32 values.
    """
    xv, m, s = _i64(x), _i64(multiplier), _i64(shift)
    if mode == "tflite_double":
        return _mbqm_double(xv, m, s)
    if mode == "single":
        return _mbqm_single(xv, m, s)
    raise ValueError(f"no integer multiplier in rounding mode '{mode}'")


def multiply_by_quantized_multiplier_int64(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> IntArray:
    """``MultiplyByQuantizedMultiplier(int64 x, M0, shift)`` (int16 kernels' 48-bit accumulators).

    Both rounding builds of TFLite use the same formula: the multiplier is
    reduced to 16 bits and one rounding shift is applied.
    """
    xv, m, s = _i64(x), _i64(multiplier), _i64(shift)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - s
    v = xv * reduced + (np.int64(1) << (total - 1))
    return wrap_int32(v >> total)


def multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: ArrayLike, multiplier: ArrayLike, left_shift: ArrayLike, mode: str = "tflite_double"
) -> IntArray:
    """``MultiplyByQuantizedMultiplierSmallerThanOneExp`` (ADD/SUB rescaling; `left_shift` <= 0)."""
    xv, m, s = _i64(x), _i64(multiplier), _i64(left_shift)
    if mode == "tflite_double":
        return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(xv, m), -s)
    if mode == "single":
        return _mbqm_single(xv, m, s)
    raise ValueError(f"no integer multiplier in rounding mode '{mode}'")


def multiply_by_quantized_multiplier_greater_than_one(
    x: ArrayLike, multiplier: ArrayLike, left_shift: ArrayLike, mode: str = "tflite_double"
) -> IntArray:
    """``MultiplyByQuantizedMultiplierGreaterThanOne`` (softmax input scaling; `left_shift` >= 0)."""
    xv, m, s = _i64(x), _i64(multiplier), _i64(left_shift)
    if mode == "tflite_double":
        return saturating_rounding_doubling_high_mul(wrap_int32(xv << s), m)
    if mode == "single":
        return _mbqm_single(xv, m, s)
    raise ValueError(f"no integer multiplier in rounding mode '{mode}'")


def requantize_rint(acc: ArrayLike, multiplier: ArrayLike) -> IntArray:
    """ONNX reference requantization: ``rint(float64(acc) * float64(float32 multiplier))``.

    ``onnx.reference`` multiplies the int32 accumulator by the float32 multiplier
    with numpy promotion to float64 and rounds half to even.
    """
    m = np.asarray(multiplier, dtype=np.float32).astype(np.float64)
    return np.rint(np.asarray(acc, dtype=np.float64) * m).astype(np.int64)


def requantize(acc: ArrayLike, params_multiplier: ArrayLike, shift: ArrayLike | None, mode: str) -> IntArray:
    """Requantize accumulators in any mode (`shift` is ignored for ``onnx_rint``)."""
    if mode == "onnx_rint":
        return requantize_rint(acc, params_multiplier)
    assert shift is not None
    return multiply_by_quantized_multiplier(acc, params_multiplier, shift, mode)


# --------------------------------------------------------------------------
# Requantization of bounded accumulators (fast, exact forms)
# --------------------------------------------------------------------------


def requantize_reference(
    mode: str,
    multiplier: ArrayLike,
    shift: ArrayLike | None,
    zero_point: int,
    lo: int,
    hi: int,
) -> Callable[[ArrayLike], IntArray]:
    """``acc -> clip(requantize(acc) + zero_point, lo, hi)`` for int32 accumulators that need no wrap.

    Per-channel multipliers and shifts broadcast along the last axis of `acc`.
    This is the direct definition that `affine_requant` and `step_thresholds`
    are built from and checked against.
    """
    m = np.asarray(multiplier)
    s = None if shift is None else _i64(shift)

    def reference(acc: ArrayLike) -> IntArray:
        out = requantize(acc, m, s, mode) + zero_point
        return np.clip(out, lo, hi)

    return reference


def requantize_is_monotone(mode: str, multiplier: ArrayLike, shift: ArrayLike | None, acc_bound: int) -> bool:
    """Whether the requantization is non-decreasing on accumulators in ``[-acc_bound, acc_bound]``.

    ``tflite_double``: ``SaturatingRoundingDoublingHighMul`` and ``RoundingDivideByPOT``
    are non-decreasing for ``M0 >= 0`` (the saturation needs ``M0 = INT32_MIN``);
    a left shift must not wrap ``acc << shift`` in int32. ``single``: ``M0 >= 0``,
    a right shift of at least 1, and no int32 wrap of the result. ``onnx_rint``:
    a multiplier >= 0 (float rounding and ``rint`` are monotone). A zero
    multiplier gives a constant. Accumulators beyond int32 are never monotone
    (TFLM wraps them).
    """
    if acc_bound > INT32_MAX:
        return False
    if mode == "onnx_rint":
        mf = np.asarray(multiplier, dtype=np.float32)
        return bool(np.all(np.isfinite(mf)) and np.all(mf >= 0))
    if shift is None:
        return False
    m, s = np.broadcast_arrays(_i64(multiplier), _i64(shift))
    if np.any(m < 0) or np.any(m > INT32_MAX):
        return False
    if mode == "tflite_double":
        if np.any(s < -31) or np.any(s > 31):
            return False
        left = np.maximum(s, 0)
        return all(acc_bound << int(k) <= INT32_MAX for k in np.unique(left))
    if mode == "single":
        if np.any(s > 30) or np.any(s < -31):
            return False
        for mi, si in zip(m.reshape(-1).tolist(), s.reshape(-1).tolist(), strict=True):
            t = 31 - si
            top = (acc_bound * mi + (1 << (t - 1))) >> t
            bottom = (-acc_bound * mi + (1 << (t - 1))) >> t
            if top > INT32_MAX or bottom < INT32_MIN:
                return False
        return True
    return False


def step_thresholds(fn: Callable[[IntArray], IntArray], levels: ArrayLike, lo: int, hi: int) -> IntArray:
    """For a non-decreasing integer function on ``[lo, hi]``: the smallest x with ``fn(x) >= level``.

    Exact bisection, vectorised over `levels` (any shape; `fn` is evaluated
    on int64 arrays of that shape, so per-channel parameters broadcast along
    the last axis). A level that no x in ``[lo, hi]`` reaches gets ``hi + 1``.
    Then, for every x in ``[lo, hi]``, ``fn(x) >= level`` exactly when
    ``x >= threshold``.
    """
    lv = _i64(levels)
    left = np.full(lv.shape, lo - 1, dtype=np.int64)  # fn(left) < level (lo - 1: below the domain)
    right = np.full(lv.shape, hi + 1, dtype=np.int64)  # fn(right) >= level (hi + 1: above the domain)
    while True:
        open_ = right - left > 1
        if not np.any(open_):
            return right
        mid = np.where(open_, left + (right - left) // 2, left + 1)
        mid = np.minimum(np.maximum(mid, lo), hi)
        reached = fn(mid) >= lv
        right = np.where(open_ & reached, mid, right)
        left = np.where(open_ & ~reached, mid, left)


@dataclass(frozen=True)
class StepRequant:
    """Requantization of ``dot + offset`` by threshold lookup, for small outputs of 8-bit types.

    For fixed parameters, ``acc -> output`` is a non-decreasing step function
    with at most 255 steps: ``output = lo + #{thresholds <= acc}``. One
    ``searchsorted`` counts the steps and a table turns the count into the
    output, clamp included. With the same multiplier and shift for every channel
    the thresholds are those of ``acc = dot + offset`` (``shifts`` holds the
    offsets); otherwise every channel's thresholds of ``dot`` live in one sorted
    array, channel ``c`` shifted by ``c * spacing`` after a sentinel, and
    ``shifts`` holds ``c * spacing``. The arrays are float32 when every value
    involved stays below 2^24 and `dot` is float32 (then ``shifts`` is added in
    place), else float64.
    """

    flat: np.ndarray
    shifts: np.ndarray | None
    table: np.ndarray
    in_place: bool

    def __call__(self, dot: np.ndarray) -> np.ndarray:
        if self.shifts is not None:
            if self.in_place:
                dot += self.shifts
            else:
                dot = dot + self.shifts
        return self.table[self.flat.searchsorted(dot, side="right")]

    @classmethod
    def build(
        cls,
        reference: Callable[[IntArray], IntArray],
        lo: int,
        hi: int,
        offset: ArrayLike,
        channels: int,
        acc_bound: int,
        dot_bound: int,
        dtype: npt.DTypeLike,
        *,
        uniform: bool = False,
        dot_dtype: npt.DTypeLike = np.float64,
    ) -> StepRequant | None:
        """Thresholds of ``reference(dot + offset)``, ``|dot| <= dot_bound``, ``|dot + offset| <= acc_bound``.

        `reference` must be non-decreasing on ``[-acc_bound, acc_bound]``
        (`requantize_is_monotone`); with `uniform` it is the same for every
        channel (and is evaluated on one-dimensional arrays), else it broadcasts
        `channels` along the last axis. `offset` is per channel (or one value);
        `dtype` is the output's, `dot_dtype` the accumulators'. None when float64
        cannot hold the (shifted) thresholds exactly.
        """
        steps = hi - lo
        if steps < 0 or steps > 1 << 16 or acc_bound >= 1 << 52:
            return None
        off = np.broadcast_to(_i64(offset).reshape(-1), (channels,))
        levels = np.arange(lo + 1, hi + 1, dtype=np.int64)
        shifts: IntArray | None
        if uniform:
            acc_t = step_thresholds(reference, levels, -acc_bound, acc_bound)
            flat = np.concatenate([[-acc_bound - 1], acc_t])
            table = (lo + np.maximum(np.arange(-1, steps + 1), 0)).astype(dtype)  # [0]: unused
            shifts = None if not np.any(off) else (off if np.any(off != off[0]) else off[:1])
            largest = max(acc_bound + 1, int(np.abs(off).max(initial=0)))
        else:
            spacing = 2 * dot_bound + 4
            if channels * spacing + dot_bound >= 1 << 52:
                return None
            acc_t = step_thresholds(
                reference, np.broadcast_to(levels[:, None], (steps, channels)), -acc_bound, acc_bound
            )
            dot_t = np.minimum(
                np.maximum(acc_t.T - off[:, None], -dot_bound), dot_bound + 1
            )  # [channel, level]
            base = np.arange(channels, dtype=np.int64)[:, None] * spacing
            sentinel = np.full((channels, 1), -dot_bound - 1, dtype=np.int64)
            flat = (np.concatenate([sentinel, dot_t], axis=1) + base).reshape(-1)
            index = np.arange(channels * (steps + 1) + 1, dtype=np.int64)
            table = (lo + (index - 1) % (steps + 1)).astype(dtype)
            shifts = None if channels == 1 else base[:, 0]
            largest = channels * spacing + dot_bound
        narrow = np.dtype(dot_dtype) == np.float32 and largest < 1 << 24
        ftype = np.float32 if narrow else np.float64
        return cls(flat.astype(ftype), None if shifts is None else shifts.astype(ftype), table, narrow)


@dataclass(frozen=True)
class AffineRequant:
    """Requantization of ``dot + offset`` in one multiply, a few adds and one shift (int64).

    For int32 accumulators that need no wrap, gemmlowp's double rounding
    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc << l, M0), r)``
    equals ``(acc*M + 2^30 + 2^(30+r) - 2^31*[acc*M + 2^30 < 0]) >> (31 + r)``
    with ``M = M0 << l`` (nested floor divisions by powers of two merge, and
    gemmlowp's "ties away from zero" subtracts one exactly when the high product
    is negative). ``single``: ``(acc*M0 + 2^(t-1)) >> t``. The offset folds into
    the added constant, and so does the zero point (``zp << shift``) when int64
    holds it, else it is added after the shift. A zero multiplier gives the zero
    point whatever the shift. The sign fix is skipped when the clamp hides it
    (``lo >= zero_point``: a negative high product gives at most the zero point
    either way). `__call__` returns the clamped int64 values.
    """

    mul: IntArray
    add: IntArray
    fix: IntArray | None
    add2: IntArray | None
    shift: IntArray
    post: int
    lo: int
    hi: int

    def __call__(self, dot: np.ndarray) -> IntArray:
        if dot.dtype == np.int64:
            p = dot * self.mul
        else:
            p = dot.astype(np.int64)  # exact: float accumulators hold integers
            p *= self.mul
        p += self.add
        if self.fix is not None and self.add2 is not None:
            sign = p >> 63  # -1 where acc*M + 2^30 < 0
            sign &= self.fix
            p += sign
            p += self.add2
        p >>= self.shift
        if self.post:
            p += self.post
        np.maximum(p, self.lo, out=p)
        np.minimum(p, self.hi, out=p)
        return p

    @classmethod
    def build(
        cls,
        mode: str,
        multiplier: ArrayLike,
        shift: ArrayLike,
        offset: ArrayLike,
        zero_point: int,
        lo: int,
        hi: int,
        acc_bound: int,
        dot_bound: int,
    ) -> AffineRequant | None:
        """The constants for ``|dot| <= dot_bound`` and ``|dot + offset| <= acc_bound``; None when
        the accumulators may wrap, the map is not monotone, or int64 could overflow."""
        if mode not in ("tflite_double", "single") or not requantize_is_monotone(
            mode, multiplier, shift, acc_bound
        ):
            return None
        m, s, off = (a.reshape(-1) for a in np.broadcast_arrays(_i64(multiplier), _i64(shift), _i64(offset)))
        rows: list[tuple[int, int, int, int, int]] = []  # mul, add, fix, add2 (without the zero point), shift
        for mi, si, oi in zip(m.tolist(), s.tolist(), off.tolist(), strict=True):
            if mi == 0:  # SRDHM(x, 0) = 0, and every rounding of 0 is 0
                rows.append((0, 1 << 30, 0, 0, 31))
            elif mode == "tflite_double":
                left, right = max(si, 0), max(-si, 0)
                mul = mi << left
                fix = -(1 << 31) if right > 0 else 0
                half = (1 << (30 + right)) if right > 0 else 0
                rows.append((mul, oi * mul + (1 << 30), fix, half, 31 + right))
            else:
                total = 31 - si
                rows.append((mi, oi * mi + (1 << (total - 1)), 0, 0, total))
        limit = 1 << 62
        if any(dot_bound * mul + abs(add) + abs(add2) + (1 << 32) >= limit for mul, add, _, add2, _ in rows):
            return None
        fold = all(
            dot_bound * mul + abs(add) + abs(add2) + abs(zero_point << total) + (1 << 32) < limit
            for mul, add, _, add2, total in rows
        )
        if fold:  # the zero point joins the last added constant
            rows = [
                (mul, add, fix, add2 + (zero_point << total), total) for mul, add, fix, add2, total in rows
            ]
        need_fix = lo < zero_point and any(fix != 0 for _, _, fix, _, _ in rows)
        if not need_fix:
            rows = [(mul, add + add2, 0, 0, total) for mul, add, _, add2, total in rows]

        def arr(column: int) -> IntArray:
            a = np.asarray([r[column] for r in rows], dtype=np.int64)
            return a[0].copy() if np.all(a == a[0]) else a

        return cls(
            arr(0),
            arr(1),
            arr(2) if need_fix else None,
            arr(3) if need_fix else None,
            arr(4),
            0 if fold else zero_point,
            lo,
            hi,
        )


# --------------------------------------------------------------------------
# gemmlowp fixed-point math (raw int32 values, vectorised)
# --------------------------------------------------------------------------


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: IntArray) -> IntArray:
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _add(a, 1 << 28)  # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(_add(_mul(_add(x4_over_4, x3), constant_1_over_3), x2), -1)
    return _add(constant_term, _mul(constant_term, _add(x, poly)))


_EXP_BARREL = (
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
)


def exp_on_negative_values(a: ArrayLike, integer_bits: int) -> IntArray:
    """gemmlowp ``exp_on_negative_values``: Q(integer_bits) input <= 0, Q0.31 output."""
    av = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _sub(av & mask, one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0)
    )
    remainder = _sub(a_mod_quarter_minus_one_quarter, av)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, _mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(av < clamp, 0, result)
    return np.where(av == 0, INT32_MAX, result)


def _newton_reciprocal(a: IntArray) -> IntArray:
    """The shared Newton-Raphson part of gemmlowp's ``1/(1+x)`` helpers (result in Q2.29)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    x = _add(constant_48_over_17, _mul(half_denominator, constant_neg_32_over_17))
    one_q2 = 1 << 29  # F2::One() in Q2.29
    for _ in range(3):
        half_denominator_times_x = _mul(half_denominator, x)
        one_minus = _sub(one_q2, half_denominator_times_x)
        x = _add(x, _rescale(_mul(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> IntArray:
    """gemmlowp ``one_over_one_plus_x_for_x_in_0_1`` on Q0.31 raw values."""
    x = _newton_reciprocal(_i64(a))
    return _rescale(x, 1, 0)  # ExactMulByPot<-1> then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: ArrayLike) -> IntArray:
    """gemmlowp ``one_minus_x_over_one_plus_x_for_x_in_0_1`` on Q0.31 raw values."""
    x = _newton_reciprocal(_i64(a))
    return _rescale(_sub(x, 1 << 29), 2, 0)


def logistic(a: ArrayLike, integer_bits: int) -> IntArray:
    """gemmlowp ``logistic`` on Q(integer_bits) raw values; result in Q0.31."""
    av = _i64(a)
    positive = av > 0
    abs_input = np.where(positive, av, _neg(av))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(_neg(abs_input), integer_bits)
    )
    result_if_negative = _sub(INT32_MAX, result_if_positive)
    out = np.where(positive, result_if_positive, result_if_negative)
    return np.where(av == 0, 1 << 30, out)


def tanh(a: ArrayLike, integer_bits: int) -> IntArray:
    """gemmlowp ``tanh`` on Q(integer_bits) raw values; result in Q0.31."""
    av = _i64(a)
    negative = av < 0
    n = np.where(negative, av, _neg(av))
    # neg_tanh_on_negative_values: exp of 2n (ExactMulByPot<1>: same raw, one more integer bit)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    out = np.where(negative, _neg(t), t)
    return np.where(av == 0, 0, out)


def count_leading_zeros32(x: ArrayLike) -> IntArray:
    """``CountLeadingZeros`` of non-negative int32 values viewed as uint32 (32 for 0)."""
    xv = _i64(x) & 0xFFFFFFFF
    _, exponent = np.frexp(xv.astype(np.float64))
    return 32 - exponent.astype(np.int64)


def get_reciprocal(x: ArrayLike, x_integer_digits: int) -> tuple[IntArray, IntArray]:
    """TFLite's ``GetReciprocal``: Q0.31 ``1/x`` scaled into [0.5, 1) and its ``num_bits_over_unit``."""
    xv = _i64(x)
    headroom_plus_one = count_leading_zeros32(xv)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((xv & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF
    shifted_sum_minus_one = wrap_int32(shifted - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def _wrap_int(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _srdhm_int(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    return (a * b + (1 << 30)) >> 31


def _multiply_by_pot_int(x: int, exponent: int) -> int:
    """`saturating_rounding_multiply_by_pot` for one value and exponent >= 0."""
    if exponent == 0:
        return x
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return _wrap_int(x << exponent)


def get_reciprocal_int(x: int, x_integer_digits: int) -> tuple[int, int]:
    """`get_reciprocal` of one value in Python integers (a softmax row costs microseconds, not a hundred).

    The same steps as the vectorised version: ``CountLeadingZeros``, the shift
    into [1, 2), and gemmlowp's ``one_over_one_plus_x_for_x_in_0_1`` (three
    Newton-Raphson iterations in Q2.29), with int32 wraps and saturations.
    """
    xu = x & 0xFFFFFFFF
    headroom_plus_one = 32 - xu.bit_length()
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    a = _wrap_int(((xu << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    s = a + INT32_MAX  # rounding_half_sum(a, INT32_MAX)
    v = s + (1 if s >= 0 else -1)
    half_denominator = abs(v) // 2 if v >= 0 else -(abs(v) // 2)  # C division: toward zero
    r = _wrap_int(1515870810 + _srdhm_int(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = _wrap_int((1 << 29) - _srdhm_int(half_denominator, r))
        r = _wrap_int(r + _multiply_by_pot_int(_srdhm_int(r, one_minus), 2))
    return _multiply_by_pot_int(r, 1), num_bits_over_unit


def calculate_input_radius(
    input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
) -> int:
    """TFLite's ``CalculateInputRadius`` (the saturation radius of logistic/tanh/softmax inputs)."""
    max_input_rescaled = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * float(1 << (total_signed_bits - input_integer_bits))
        / math.ldexp(1.0, input_left_shift)
    )
    return math.floor(max_input_rescaled)
