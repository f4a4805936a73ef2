"""The C helper functions generated kernels call, printed into the model's ``.c`` only when used.

Every helper is the C99 twin of a function in `nnopt.dialects.qmath` (named in
its comment) and computes the same integers: gemmlowp's double rounding
(``tflite_double``), TFLite's single rounding (``single``), the 64-bit
multiplier of 16-bit kernels, and the float rounding of quantization
(ties away from zero as TFLite's ``roundf``, ties to even as ONNX's ``rint``).
Wherever numpy wraps to int32, C converts through ``uint32_t`` so that no
signed overflow (undefined behaviour) ever happens.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Helper:
    """One C function: its text and the helpers it calls."""

    code: str
    deps: tuple[str, ...] = ()


HELPERS: dict[str, Helper] = {
    "wrap32": Helper(
        """\
/* qmath.wrap_int32: two's-complement wrap of a 64-bit value to 32 bits. */
static inline int32_t nnopt_wrap32(int64_t v) {
    return (int32_t)(uint32_t)(uint64_t)v;
}"""
    ),
    "srdhm": Helper(
        """\
/* gemmlowp SaturatingRoundingDoublingHighMul (qmath.saturating_rounding_doubling_high_mul). */
static inline int32_t nnopt_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    } else {
        const int64_t ab = (int64_t)a * (int64_t)b;
        const int64_t nudge = ab >= 0 ? (1LL << 30) : (1LL - (1LL << 30));
        return (int32_t)((ab + nudge) / (1LL << 31));
    }
}"""
    ),
    "rdbpot": Helper(
        """\
/* gemmlowp RoundingDivideByPOT for exponents 0..31 (qmath.rounding_divide_by_pot). */
static inline int32_t nnopt_rdbpot(int32_t x, int e) {
    const int32_t mask = (int32_t)((1LL << e) - 1);
    const int32_t rem = x & mask;
    const int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > thr ? 1 : 0);
}"""
    ),
    "rdbpot64": Helper(
        """\
/* RoundingDivideByPOT for any exponent 0..62, computed in 64 bits like numpy. */
static inline int32_t nnopt_rdbpot64(int32_t x, int e) {
    const int64_t mask = (int64_t)((1ULL << e) - 1U);
    const int64_t rem = (int64_t)x & mask;
    const int64_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> e) + (rem > thr ? 1 : 0));
}"""
    ),
    "mbqm_double": Helper(
        """\
/* MultiplyByQuantizedMultiplier, double rounding (TFLM default; qmath mode tflite_double). */
static inline int32_t nnopt_mbqm_double(int32_t x, int32_t m, int shift) {
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return nnopt_rdbpot(nnopt_srdhm((int32_t)((uint32_t)x << left), m), right);
}""",
        ("srdhm", "rdbpot"),
    ),
    "mbqm_double_right": Helper(
        """\
/* MultiplyByQuantizedMultiplier, double rounding, for m >= 0 and a right shift: the high
 * multiply cannot saturate and (x*m + 2^30) >> 31 equals gemmlowp's rounding division. */
static inline int32_t nnopt_mbqm_double_right(int32_t x, int32_t m, int right) {
    return nnopt_rdbpot((int32_t)(((int64_t)x * (int64_t)m + (1LL << 30)) >> 31), right);
}""",
        ("rdbpot",),
    ),
    "mbqm_single": Helper(
        """\
/* MultiplyByQuantizedMultiplier, single rounding (TFLITE_SINGLE_ROUNDING; qmath mode single). */
static inline int32_t nnopt_mbqm_single(int32_t x, int32_t m, int shift) {
    const int t = 31 - shift;
    return nnopt_wrap32(((int64_t)x * (int64_t)m + (1LL << (t - 1))) >> t);
}""",
        ("wrap32",),
    ),
    "mbqm_ste_double": Helper(
        """\
/* MultiplyByQuantizedMultiplierSmallerThanOneExp, double rounding (ADD/SUB rescaling). */
static inline int32_t nnopt_mbqm_ste_double(int32_t x, int32_t m, int shift) {
    return nnopt_rdbpot(nnopt_srdhm(x, m), -shift);
}""",
        ("srdhm", "rdbpot"),
    ),
    "mbqm_i64": Helper(
        """\
/* MultiplyByQuantizedMultiplier on a 64-bit accumulator (16-bit kernels; qmath int64 variant). */
static inline int32_t nnopt_mbqm_i64(int64_t x, int32_t m, int shift) {
    const int64_t reduced = m < 0x7FFF0000 ? ((int64_t)m + (1 << 15)) >> 16 : 0x7FFF;
    const int t = 15 - shift;
    return nnopt_wrap32((int64_t)((uint64_t)x * (uint64_t)reduced + (1ULL << (t - 1))) >> t);
}""",
        ("wrap32",),
    ),
    "round_away_f32": Helper(
        """\
/* roundf (ties away from zero) of a float32, converted to int64 as numpy does on x86
 * (NaN and values beyond int64 become INT64_MIN). TFLM AffineQuantize. */
static inline int64_t nnopt_round_away_f32(float r) {
    int32_t t;
    float frac;
    if (!(r > -9.2233720368547758e18f && r < 9.2233720368547758e18f)) {
        return INT64_MIN;
    }
    if (r >= 8388608.0f || r <= -8388608.0f) {
        return (int64_t)r; /* already an integer */
    }
    t = (int32_t)r;
    if (r < (float)t) {
        t -= 1; /* t = floor(r) */
    }
    frac = r - (float)t;
    return (frac > 0.5f || (frac == 0.5f && r > 0.0f)) ? (int64_t)t + 1 : (int64_t)t;
}"""
    ),
    "rint_f32": Helper(
        """\
/* rint (ties to even) of a float32, converted to int64 as numpy does on x86
 * (NaN and values beyond int64 become INT64_MIN). ONNX QuantizeLinear. */
static inline int64_t nnopt_rint_f32(float r) {
    int32_t t;
    float frac;
    if (!(r > -9.2233720368547758e18f && r < 9.2233720368547758e18f)) {
        return INT64_MIN;
    }
    if (r >= 8388608.0f || r <= -8388608.0f) {
        return (int64_t)r;
    }
    t = (int32_t)r;
    if (r < (float)t) {
        t -= 1;
    }
    frac = r - (float)t;
    return (frac > 0.5f || (frac == 0.5f && (t & 1) != 0)) ? (int64_t)t + 1 : (int64_t)t;
}"""
    ),
    "rint_f64": Helper(
        """\
/* rint (ties to even) of a double (ONNX requantization, qmath.requantize_rint; always finite here). */
static inline int64_t nnopt_rint_f64(double r) {
    int64_t t;
    double frac;
    if (!(r > -9.2233720368547758e18 && r < 9.2233720368547758e18)) {
        return INT64_MIN;
    }
    if (r >= 4503599627370496.0 || r <= -4503599627370496.0) {
        return (int64_t)r;
    }
    t = (int64_t)r;
    if (r < (double)t) {
        t -= 1;
    }
    frac = r - (double)t;
    return (frac > 0.5 || (frac == 0.5 && (t & 1) != 0)) ? t + 1 : t;
}"""
    ),
    "add64": Helper(
        """\
/* int64 addition that wraps like numpy (a zero point added to a rounded value). */
static inline int64_t nnopt_add64(int64_t a, int64_t b) {
    return (int64_t)((uint64_t)a + (uint64_t)b);
}"""
    ),
    "srmpot": Helper(
        """\
/* gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent. */
static inline int32_t nnopt_srmpot(int32_t x, int e) {
    const int32_t thr = (int32_t)((1LL << (31 - e)) - 1);
    if (x > thr) {
        return INT32_MAX;
    }
    if (x < -thr) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}"""
    ),
    "one_over_one_plus_x": Helper(
        """\
/* gemmlowp one_over_one_plus_x_for_x_in_0_1 on Q0.31 raw values (Newton-Raphson, 3 steps). */
static int32_t nnopt_one_over_one_plus_x(int32_t a) {
    const int64_t s = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((s + (s >= 0 ? 1 : -1)) / 2);
    int32_t x = nnopt_wrap32((int64_t)1515870810 + nnopt_srdhm(half_denominator, -1010580540));
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t hdx = nnopt_srdhm(half_denominator, x);
        const int32_t one_minus = nnopt_wrap32((int64_t)(1 << 29) - hdx);
        x = nnopt_wrap32((int64_t)x + nnopt_srmpot(nnopt_srdhm(x, one_minus), 2));
    }
    return nnopt_srmpot(x, 1);
}""",
        ("wrap32", "srdhm", "srmpot"),
    ),
    "clz32": Helper(
        """\
/* Leading zeros of a 32-bit value (32 for 0). */
static inline int nnopt_clz32(uint32_t v) {
    int n = 0;
    if (v == 0U) {
        return 32;
    }
    while ((v & 0x80000000U) == 0U) {
        v <<= 1;
        ++n;
    }
    return n;
}"""
    ),
}


def mbqm_name(mode: str) -> str:
    """The helper that requantizes an int32 accumulator in a rounding mode."""
    return {"tflite_double": "mbqm_double", "single": "mbqm_single"}[mode]


def ste_name(mode: str) -> str:
    """The helper of ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` in a rounding mode."""
    return {"tflite_double": "mbqm_ste_double", "single": "mbqm_single"}[mode]


class HelperSet:
    """The helpers a generated file uses, printed in dependency order."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def use(self, name: str) -> str:
        """Mark `name` (and its dependencies) as used; returns the C function name."""
        if name not in self.used:
            for dep in HELPERS[name].deps:
                self.use(dep)
            self.used.append(name)
        return f"nnopt_{name}"

    def text(self) -> str:
        """The C text of every used helper."""
        return "\n\n".join(HELPERS[name].code for name in self.used)
