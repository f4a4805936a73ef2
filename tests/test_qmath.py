"""nnopt.dialects.qmath against straightforward scalar pure-Python references (C semantics spelled out)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnopt.dialects import qmath as qm

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# --------------------------------------------------------------------------
# Scalar references, written from the C sources with Python's unbounded ints
# --------------------------------------------------------------------------


def c_div(a: int, b: int) -> int:
    """C integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def ref_srdhm(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    return c_div(ab + nudge, 2**31)


def ref_rdbpot(x: int, e: int) -> int:
    """Round x / 2^e to nearest, ties away from zero."""
    if e == 0:
        return x
    half = 2 ** (e - 1)
    return (x + half) // 2**e if x >= 0 else -((-x + half) // 2**e)


def ref_double(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return ref_rdbpot(ref_srdhm(wrap32(x * 2**left), m), right)


def ref_single(x: int, m: int, shift: int) -> int:
    t = 31 - shift
    return wrap32((x * m + 2 ** (t - 1)) // 2**t)


def ref_rint(acc: int, multiplier: float) -> int:
    return round(float(acc) * float(np.float32(multiplier)))  # Python rounds floats half to even


def ref_quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier from exact rationals: M0 = round_half_away(real * 2^(31-e)), e = floor(log2 real)+1."""
    r = Fraction(real)
    e = 0
    while r >= Fraction(2) ** e:
        e += 1
    while r < Fraction(2) ** (e - 1):
        e -= 1
    scaled = r * Fraction(2) ** (31 - e)
    m = math.floor(scaled)
    if scaled - m >= Fraction(1, 2):
        m += 1
    if m == 2**31:
        m, e = 2**30, e + 1
    if e < -31:
        return 0, 0
    return m, e


# --------------------------------------------------------------------------
# Random triples, including ties, extremes and wrapping
# --------------------------------------------------------------------------


def _triples(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = n // 5
    # 1. random accumulators with multipliers from random reals
    acc = [rng.integers(I32_MIN, I32_MAX, k, endpoint=True)]
    reals = np.exp(rng.uniform(np.log(1e-7), np.log(50.0), k))
    ms, ss = zip(*(qm.quantize_multiplier(float(r)) for r in reals), strict=True)
    mult, shift = [np.array(ms)], [np.array(ss)]
    # 2. small accumulators (typical conv outputs), shifts spread over the valid range
    acc.append(rng.integers(-(2**20), 2**20, k))
    mult.append(rng.integers(2**30, 2**31, k))
    shift.append(rng.integers(-31, 8, k))
    # 3. exact ties: M0 = 2^30 (0.5) so that x * 2^(shift-1) lands on .5 for odd x
    acc.append(rng.integers(-(2**16), 2**16, k) * 2 + 1)
    mult.append(np.full(k, 2**30))
    shift.append(rng.integers(-12, 1, k))
    # 4. extremes: INT32_MIN/MAX, 0, +-1 with every shift, including left shifts that wrap
    extremes = np.array([I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX - 1, I32_MAX])
    acc.append(rng.choice(extremes, k))
    # (INT32_MIN is no valid multiplier, but it reaches SRDHM's INT32_MIN * INT32_MIN saturation)
    mult.append(rng.choice(np.array([0, 1, 2**30, 2**31 - 1, 1518500250, I32_MIN]), k))
    shift.append(rng.integers(-31, 31, k))
    # 5. left shifts of large values (int32 wrap of x << left_shift)
    acc.append(rng.integers(-(2**30), 2**30, n - 4 * k))
    mult.append(rng.integers(2**30, 2**31, n - 4 * k))
    shift.append(rng.integers(1, 10, n - 4 * k))
    return (
        np.concatenate(acc).astype(np.int64),
        np.concatenate(mult).astype(np.int64),
        np.concatenate(shift).astype(np.int64),
    )


def test_requantization_fuzz_200k_zero_mismatches():
    acc, mult, shift = _triples(200_000, seed=1234)
    double = qm.multiply_by_quantized_multiplier(acc, mult, shift, "tflite_double")
    single_ok = shift <= 30
    single = qm.multiply_by_quantized_multiplier(acc[single_ok], mult[single_ok], shift[single_ok], "single")
    real = mult.astype(np.float64) * np.ldexp(1.0, (shift - 31).astype(np.int32))
    mult_f32 = real.astype(np.float32)
    rint = qm.requantize_rint(acc, mult_f32)
    bad_double = bad_single = bad_rint = 0
    single_list = single.tolist()
    j = 0
    for x, m, s, d, r, mf in zip(
        acc.tolist(),
        mult.tolist(),
        shift.tolist(),
        double.tolist(),
        rint.tolist(),
        mult_f32.tolist(),
        strict=True,
    ):
        bad_double += ref_double(x, m, s) != d
        if s <= 30:
            bad_single += ref_single(x, m, s) != single_list[j]
            j += 1
        bad_rint += ref_rint(x, mf) != r
    assert (bad_double, bad_single, bad_rint) == (0, 0, 0)


def test_ties_follow_each_mode():
    # multiplier 0.5 on odd accumulators: exact ties (int8-c-analog.md A.4)
    x = np.array([-3, -1, 1, 3, 5, -5, 7, 9])
    m, s = qm.quantize_multiplier(0.5)
    assert (m, s) == (2**30, 0)
    assert qm.multiply_by_quantized_multiplier(x, m, s, "tflite_double").tolist() == [
        -1,
        0,
        1,
        2,
        3,
        -2,
        4,
        5,
    ]
    assert qm.multiply_by_quantized_multiplier(x, m, s, "single").tolist() == [-1, 0, 1, 2, 3, -2, 4, 5]
    assert qm.requantize_rint(x, np.float32(0.5)).tolist() == [-2, 0, 0, 2, 2, -2, 4, 4]


def test_srdhm_saturates_only_at_int32_min_squared():
    assert int(qm.saturating_rounding_doubling_high_mul(I32_MIN, I32_MIN)) == I32_MAX
    rng = np.random.default_rng(7)
    a = np.concatenate(
        [rng.integers(I32_MIN, I32_MAX, 20_000, endpoint=True), [I32_MIN, I32_MIN, I32_MAX, 0]]
    )
    b = np.concatenate(
        [rng.integers(I32_MIN, I32_MAX, 20_000, endpoint=True), [I32_MAX, 0, I32_MIN, I32_MIN]]
    )
    got = qm.saturating_rounding_doubling_high_mul(a, b).tolist()
    assert got == [ref_srdhm(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]


def test_rounding_divide_by_pot_matches_round_half_away():
    rng = np.random.default_rng(3)
    x = rng.integers(I32_MIN, I32_MAX, 30_000, endpoint=True)
    e = rng.integers(0, 32, 30_000)
    got = qm.rounding_divide_by_pot(x, e).tolist()
    assert got == [ref_rdbpot(a, b) for a, b in zip(x.tolist(), e.tolist(), strict=True)]


@settings(max_examples=400, deadline=None)
@given(st.floats(min_value=1e-12, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_is_the_rational_rounding(real):
    m, shift = qm.quantize_multiplier(real)
    assert (m, shift) == ref_quantize_multiplier(real)
    if m:
        assert 2**30 <= m < 2**31
        assert abs(Fraction(real) - Fraction(m) * Fraction(2) ** (shift - 31)) <= Fraction(2) ** (shift - 32)


def test_quantize_multiplier_edge_cases():
    assert qm.quantize_multiplier(0.0) == (0, 0)
    assert qm.quantize_multiplier(1.0) == (2**30, 1)
    assert qm.quantize_multiplier(1 - 2.0**-40) == (2**30, 1)  # q rounds to 2^31
    assert qm.quantize_multiplier(2.0**-33) == (0, 0)  # flushed: shift < -31
    assert qm.quantize_multiplier(2.0**-32) == (2**30, -31)
    assert qm.quantize_multiplier(2.0**40) == (2**30, 41)
    assert qm.quantize_multiplier(2.0**40, single_rounding=True) == (2**31 - 1, 30)
    with pytest.raises(ValueError):
        qm.quantize_multiplier(-0.5)
    with pytest.raises(ValueError):
        qm.quantize_multiplier(float("nan"))
    assert qm.quantize_multiplier_smaller_than_one_exp(0.25) == (2**30, -1)
    with pytest.raises(ValueError):
        qm.quantize_multiplier_smaller_than_one_exp(1.0)
    with pytest.raises(ValueError):
        qm.quantize_multiplier_smaller_than_one_exp(1 - 2.0**-40)  # rounds up to 1.0
    assert qm.quantize_multiplier_greater_than_one(3.0) == (3 * 2**29, 2)


def test_conv_multiplier_rounds_the_scale_product_to_float32():
    s_in, s_w, s_out = 0.0235294122248888, 0.00392156885936856, 0.0470588244497776
    f32_product = float(np.float32(np.float32(s_in) * np.float32(s_w)))
    assert qm.conv_multiplier_f32(s_in, s_w, s_out) == f32_product / float(np.float32(s_out))
    double = float(np.float32(s_in)) * float(np.float32(s_w)) / float(np.float32(s_out))
    assert qm.per_channel_multiplier(s_in, s_w, s_out) == double
    assert qm.conv_multiplier_f32(s_in, s_w, s_out) != double  # the two paths differ here


def test_smaller_than_one_and_greater_than_one_variants():
    rng = np.random.default_rng(11)
    x = rng.integers(-(2**26), 2**26, 5000)
    reals = rng.uniform(0.001, 0.999, 5000)
    for real, xi in zip(reals.tolist()[:300], x.tolist()[:300], strict=True):
        m, s = qm.quantize_multiplier_smaller_than_one_exp(real)
        got = int(qm.multiply_by_quantized_multiplier_smaller_than_one_exp(xi, m, s))
        assert got == ref_rdbpot(ref_srdhm(xi, m), -s)
        assert int(
            qm.multiply_by_quantized_multiplier_smaller_than_one_exp(xi, m, s, "single")
        ) == ref_single(xi, m, s)
    small = rng.integers(-1000, 1000, 300)
    for xi in small.tolist():
        m, s = qm.quantize_multiplier_greater_than_one(37.5)
        assert int(qm.multiply_by_quantized_multiplier_greater_than_one(xi, m, s)) == ref_srdhm(
            wrap32(xi * 2**s), m
        )


def test_int64_multiplier_reduces_to_16_bits():
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**40), 2**40, 2000)
    m = rng.integers(2**30, 2**31, 2000)
    s = rng.integers(-20, 2, 2000)
    got = qm.multiply_by_quantized_multiplier_int64(x, m, s).tolist()
    for xi, mi, si, g in zip(x.tolist(), m.tolist(), s.tolist(), got, strict=True):
        reduced = (mi + 2**15) >> 16 if mi < 0x7FFF0000 else 0x7FFF
        total = 15 - si
        assert g == wrap32((xi * reduced + 2 ** (total - 1)) >> total)


def test_round_half_away():
    assert qm.round_half_away(2.5) == 3.0
    assert qm.round_half_away(-2.5) == -3.0
    assert qm.round_half_away(0.49999999999999994) == 0.0
    assert qm.round_half_away(-0.5) == -1.0
    a = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997], np.float32)
    assert qm.round_half_away_array(a).tolist() == [-3, -2, -1, 1, 2, 3, 0]
    assert qm.round_half_away_array(a).dtype == np.float32


def test_fixed_point_functions_track_the_real_functions():
    # Q4.27 inputs across [-16, 16): gemmlowp's fixed-point functions are accurate to a few 2^-31 units
    raw = np.arange(-(2**31), 2**31 - 1, 2**19 + 12345, dtype=np.int64)
    real = raw / 2.0**27
    assert np.max(np.abs(qm.logistic(raw, 4) / 2.0**31 - 1 / (1 + np.exp(-real)))) < 1e-6
    assert np.max(np.abs(qm.tanh(raw, 4) / 2.0**31 - np.tanh(real))) < 1e-6
    neg = -np.abs(raw)
    assert np.max(np.abs(qm.exp_on_negative_values(neg, 4) / 2.0**31 - np.exp(neg / 2.0**27))) < 1e-6
    x = np.arange(1, 2**31 - 1, 2**20, dtype=np.int64)
    assert np.max(np.abs(qm.one_over_one_plus_x_for_x_in_0_1(x) / 2.0**31 - 1 / (1 + x / 2.0**31))) < 1e-6
    recip, bits = qm.get_reciprocal(np.array([3 << 27]), 4)  # 3.0 in Q4.27 = 1.5 * 2^1 -> 1/1.5, 1 bit
    assert bits.tolist() == [1] and abs(recip[0] / 2.0**31 - 2 / 3) < 1e-8
    assert qm.count_leading_zeros32(np.array([0, 1, 2**30, 2**31 - 1])).tolist() == [32, 31, 1, 1]


def test_calculate_input_radius():
    # CalculateInputRadius(4, 24, 31) = floor(15 * 2^27 / 2^24) = 120
    assert qm.calculate_input_radius(4, 24) == 120
    assert qm.calculate_input_radius(5, 21) == math.floor(31 * 2**26 / 2**21)
