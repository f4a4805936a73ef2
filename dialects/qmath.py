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
