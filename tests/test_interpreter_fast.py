"""The numpy interpreter's fast exact mechanisms against the direct definitions they replace.

* `qmath.StepRequant` (requantization by threshold lookup) and
  `qmath.AffineRequant` (requantization in one affine int64 step) equal
  ``clip(requantize(acc) + zp, lo, hi)`` at every threshold, next to it, at
  the ends of the accumulator range and at random points, in every rounding
  mode, with per-channel parameters, zero multipliers, left and large right
  shifts; `requantize_is_monotone` accepts only maps that are monotone.
* `qmath.get_reciprocal_int` (softmax rows in Python integers) equals the
  vectorised `get_reciprocal`.
* The exact BLAS dtype (`_dot_plan`): float32 only when the bound of every
  partial sum allows it, and then equal to int64 accumulation on the worst
  inputs; the zero-point fold of raw inputs.
* `windows.depthwise_sum` (all taps in one ``einsum`` over strided views)
  equals tap-by-tap accumulation for any stride, dilation and padding.
* The interpreter's fast path: fused chains of 8-bit FULLY_CONNECTED layers,
  constant folding at preparation, repeated runs, weights given at run time,
  all equal to op-by-op execution (the ``dump`` path).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnopt.backends.numpy import prepare, run
from nnopt.backends.numpy.interpreter import _MEMO
from nnopt.backends.numpy.kernels_int import FC_STAGE, _dot_plan, _mm_dtype
from nnopt.backends.numpy.windows import depthwise_rows, depthwise_sum, pad_hw
from nnopt.dialects import nn, qparams
from nnopt.dialects import qmath as qm
from tests.q_build import GraphBuilder, graph_of, qt, tt

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
I32_MAX = 2**31 - 1


# --------------------------------------------------------------------------
# Requantization: threshold lookup and affine form
# --------------------------------------------------------------------------


@st.composite
def requant_cases(draw: st.DrawFn) -> dict[str, object]:
    """Parameters of one requantization: mode, per-channel multipliers and shifts, offsets, bounds, clamp."""
    mode = draw(st.sampled_from(["tflite_double", "single", "onnx_rint"]))
    channels = draw(st.integers(1, 4))
    per_channel = draw(st.booleans())
    n = channels if per_channel else 1
    if mode == "onnx_rint":
        exps = draw(st.lists(st.integers(-24, 1), min_size=n, max_size=n))
        mults = [draw(st.floats(0.0, 2.0**e, allow_nan=False, allow_infinity=False, width=32)) for e in exps]
        multiplier = np.asarray(mults, dtype=np.float32)
        shift = None
    else:
        m = draw(st.lists(st.one_of(st.just(0), st.integers(2**30, I32_MAX)), min_size=n, max_size=n))
        top = 2 if mode == "tflite_double" else 1
        s = draw(st.lists(st.integers(-31, top), min_size=n, max_size=n))
        multiplier, shift = np.asarray(m, dtype=np.int64), np.asarray(s, dtype=np.int64)
    dot_bound = draw(st.one_of(st.integers(0, 300), st.integers(0, 2**24 - 1)))
    offsets = draw(
        st.one_of(
            st.just([0] * channels),
            st.lists(st.integers(-(2**22), 2**22), min_size=channels, max_size=channels),
        )
    )
    zp = draw(st.integers(-128, 127))
    lo = draw(st.one_of(st.just(-128), st.just(zp), st.integers(-128, 127)))
    hi = draw(st.integers(lo, 127))
    return {
        "mode": mode,
        "channels": channels,
        "per_channel": per_channel,
        "multiplier": multiplier,
        "shift": shift,
        "offset": np.asarray(offsets, dtype=np.int64),
        "dot_bound": dot_bound,
        "acc_bound": dot_bound + max(abs(o) for o in offsets),
        "zp": zp,
        "lo": lo,
        "hi": hi,
    }


def _probe_dots(case: dict[str, object], reference, rng: np.random.Generator) -> np.ndarray:
    """``[rows, channels]`` dots: every threshold of every channel, its neighbours, the ends, random points."""
    channels, dot_bound, acc_bound = case["channels"], case["dot_bound"], case["acc_bound"]
    off = case["offset"]
    levels = np.arange(case["lo"] + 1, case["hi"] + 1, dtype=np.int64)
    columns = []
    for c in range(channels):

        def ref_c(a: np.ndarray, c: int = c) -> np.ndarray:
            return reference(np.broadcast_to(a[..., None], (*a.shape, channels)))[..., c]

        thresholds = qm.step_thresholds(ref_c, levels, -acc_bound, acc_bound) - off[c]
        near = np.concatenate([thresholds - 1, thresholds, thresholds + 1, [-dot_bound, dot_bound, 0]])
        near = near[np.abs(near) <= dot_bound]
        columns.append(np.concatenate([near, rng.integers(-dot_bound, dot_bound + 1, 64)]))
    rows = max(len(col) for col in columns)
    dots = np.zeros((rows, channels), dtype=np.int64)
    for c, col in enumerate(columns):
        dots[:, c] = np.resize(col, rows)
    acc = dots + off
    return dots[np.all(np.abs(acc) <= acc_bound, axis=1)]


def _reference(case: dict[str, object]):
    return qm.requantize_reference(
        case["mode"], case["multiplier"], case["shift"], case["zp"], case["lo"], case["hi"]
    )


@SETTINGS
@given(requant_cases(), st.integers(0, 2**32 - 1))
def test_threshold_lookup_equals_direct_requantization(case, seed):
    if not qm.requantize_is_monotone(case["mode"], case["multiplier"], case["shift"], case["acc_bound"]):
        return
    reference = _reference(case)
    uniform = not case["per_channel"]
    scalar = None
    if uniform:
        m0 = case["multiplier"].reshape(-1)[0]
        s0 = None if case["shift"] is None else case["shift"].reshape(-1)[0]
        scalar = qm.requantize_reference(case["mode"], m0, s0, case["zp"], case["lo"], case["hi"])
    dots = _probe_dots(case, reference, np.random.default_rng(seed))
    expected = reference(dots + case["offset"]).astype(np.int8)
    for dot_dtype in (np.float32, np.float64):
        step = qm.StepRequant.build(
            scalar if uniform else reference,
            case["lo"],
            case["hi"],
            case["offset"],
            case["channels"],
            case["acc_bound"],
            case["dot_bound"],
            np.int8,
            uniform=uniform,
            dot_dtype=dot_dtype,
        )
        assert step is not None
        assert step.in_place == (dot_dtype is np.float32 and step.flat.dtype == np.float32)
        np.testing.assert_array_equal(step(dots.astype(dot_dtype)), expected)
    # int64 accumulators work too (float64 thresholds compare them exactly)
    np.testing.assert_array_equal(step(dots.copy()), expected)


@SETTINGS
@given(requant_cases(), st.integers(0, 2**32 - 1))
def test_affine_requantization_equals_direct_requantization(case, seed):
    if case["shift"] is None:
        return
    affine = qm.AffineRequant.build(
        case["mode"],
        case["multiplier"],
        case["shift"],
        case["offset"],
        case["zp"],
        case["lo"],
        case["hi"],
        case["acc_bound"],
        case["dot_bound"],
    )
    monotone = qm.requantize_is_monotone(case["mode"], case["multiplier"], case["shift"], case["acc_bound"])
    if not monotone:
        assert affine is None
        return
    assert affine is not None  # the drawn bounds never come near int64's
    reference = _reference(case)
    dots = _probe_dots(case, reference, np.random.default_rng(seed))
    expected = reference(dots + case["offset"])
    np.testing.assert_array_equal(
        affine(dots.astype(np.float32 if case["dot_bound"] < 2**24 else np.float64)), expected
    )
    np.testing.assert_array_equal(affine(dots), expected)


def test_affine_requantization_covers_the_awkward_parameters():
    """Zero multipliers with shift -31, zero points too large to fold, left shifts, the sign fix."""
    acc = np.arange(-70000, 70001, 7, dtype=np.int64)
    for m, s, zp, lo in [
        ([0, 1 << 30], [-31, -3], -128, -128),  # a dead channel next to a live one
        ([1518500250], [-26], -128, -128),  # zp << 57 does not fit: added after the shift
        ([1518500250], [-26], 5, -128),  # the sign fix, zero point folded
        ([1073741824, 2147483647], [2, -1], 3, -100),  # left shifts, per channel
        ([1300000000], [-9], 0, 0),  # the clamp hides the sign fix
    ]:
        for mode in ("tflite_double", "single"):
            if mode == "single" and max(s) > 0:
                continue
            mult, shift = np.asarray(m), np.asarray(s)
            dots = np.broadcast_to(acc[:, None], (acc.size, mult.size))
            affine = qm.AffineRequant.build(mode, mult, shift, 0, zp, lo, 127, 70000, 70000)
            assert affine is not None
            expected = qm.requantize_reference(mode, mult, shift, zp, lo, 127)(dots)
            np.testing.assert_array_equal(affine(dots.astype(np.float32)), expected)


def test_monotonicity_check_refuses_what_is_not_monotone():
    # a negative multiplier decreases; accumulators beyond int32 wrap in TFLM
    assert not qm.requantize_is_monotone("tflite_double", np.array([-(1 << 30)]), np.array([0]), 100)
    assert not qm.requantize_is_monotone("tflite_double", np.array([1 << 30]), np.array([0]), 1 << 31)
    # a left shift that wraps acc << shift in int32
    assert qm.requantize_is_monotone("tflite_double", np.array([1 << 30]), np.array([3]), (1 << 28) - 1)
    assert not qm.requantize_is_monotone("tflite_double", np.array([1 << 30]), np.array([3]), 1 << 28)
    wrapped = qm.multiply_by_quantized_multiplier(np.array([(1 << 28) - 1, 1 << 28]), 1 << 30, 3)
    assert wrapped[1] < wrapped[0]
    # single rounding whose result wraps to int32
    assert not qm.requantize_is_monotone("single", np.array([I32_MAX]), np.array([30]), 1 << 20)
    assert not qm.requantize_is_monotone("onnx_rint", np.array([-0.5], np.float32), None, 100)
    # a zero multiplier is a constant: monotone
    assert qm.requantize_is_monotone("tflite_double", np.array([0]), np.array([-31]), 1 << 30)


@SETTINGS
@given(requant_cases(), st.integers(0, 2**32 - 1))
def test_accepted_maps_are_monotone(case, seed):
    if not qm.requantize_is_monotone(case["mode"], case["multiplier"], case["shift"], case["acc_bound"]):
        return
    rng = np.random.default_rng(seed)
    bound = case["acc_bound"]
    acc = np.sort(np.concatenate([rng.integers(-bound, bound + 1, 4000), [-bound, bound]]))
    ref = qm.requantize_reference(case["mode"], case["multiplier"], case["shift"], 0, -(2**40), 2**40)
    out = ref(np.broadcast_to(acc[:, None], (acc.size, case["multiplier"].size)))
    assert np.all(np.diff(out, axis=0) >= 0)


def test_step_thresholds_of_a_step_function():
    steps = np.array([-50, -50, -7, 0, 3, 90])
    fn = lambda x: np.searchsorted(steps, x, side="right")  # noqa: E731 - non-decreasing, levels 0..6
    t = qm.step_thresholds(fn, np.arange(1, 8), -60, 60)
    np.testing.assert_array_equal(t, [-50, -50, -7, 0, 3, 61, 61])  # 90 is beyond the domain: never


# --------------------------------------------------------------------------
# Softmax reciprocal in Python integers
# --------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=20), st.integers(0, 16))
def test_scalar_reciprocal_equals_vectorised(values, digits):
    edges = [0, 1, 2, 4095, 4096, 2**19, 2**19 + 1, 2**30, 2**31 - 1, -(2**31), -1]
    xs = np.asarray(values + edges, dtype=np.int64)
    scale, bits = qm.get_reciprocal(xs, digits)
    assert [qm.get_reciprocal_int(int(v), digits) for v in xs] == list(
        zip(scale.tolist(), bits.tolist(), strict=True)
    )


def _softmax_module(rows: int):
    g = GraphBuilder()
    x = g.arg(tt((rows, 10), qt(0.1, 3)), "x")
    y = g.op(nn.SoftmaxOp, [x], tt((rows, 10), qt(1 / 256, -128)), "y", beta=1.0)
    return g.module(y)


def test_softmax_rows_agree_between_the_scalar_and_vectorised_reciprocals():
    data = np.random.default_rng(3).integers(-128, 128, (40, 10)).astype(np.int8)
    many = run(_softmax_module(40), [data])["y"]  # 40 rows: the vectorised reciprocal
    few = np.concatenate([run(_softmax_module(4), [data[i : i + 4]])["y"] for i in range(0, 40, 4)])
    np.testing.assert_array_equal(many, few)


# --------------------------------------------------------------------------
# Exact BLAS products
# --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([(8, True), (8, False), (16, True)]),
    st.integers(-128, 127),
    st.integers(1, 2000),
    st.integers(0, 2**32 - 1),
)
def test_float32_only_when_every_partial_sum_is_exact(kind, zp, k, seed):
    width, signed = kind
    xq = qt(0.1, 0 if width == 16 else (zp if signed else zp + 128), width=width, signed=signed)
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (k, 3))
    row_abs = int(np.abs(w).sum(axis=0).max())
    dt, raw, bound = _dot_plan(xq, xq.zero_point, row_abs)
    raw_max = max(-xq.qmin, xq.qmax)
    centred_max = max(abs(xq.qmin - xq.zero_point), abs(xq.qmax - xq.zero_point))
    assert bound == (raw_max if raw else centred_max) * row_abs
    if dt is np.float32:
        assert bound < 2**24
    else:
        assert dt is np.float64 and bound < 2**53
        assert min(raw_max, centred_max) * row_abs >= 2**24
        assert _mm_dtype(min(raw_max, centred_max) * row_abs) is np.float64
    # the worst input for every column: each x at the end of its range whose sign matches the weight's
    lo, hi = (xq.qmin, xq.qmax) if raw else (xq.qmin - xq.zero_point, xq.qmax - xq.zero_point)
    for col in range(3):
        x = np.where(w[:, col] >= 0, hi, lo)
        exact = int(x @ w[:, col])
        assert int(np.dot(x.astype(dt), w[:, col].astype(dt))) == exact
        if raw:  # the zero point folds into the offset: sum((x - zp) w) = sum(x w) - zp sum(w)
            assert exact - xq.zero_point * int(w[:, col].sum()) == int((x - xq.zero_point) @ w[:, col])


@settings(max_examples=200, deadline=None)
@given(
    st.tuples(st.integers(1, 2), st.integers(1, 11), st.integers(1, 11), st.integers(1, 5)),
    st.tuples(st.integers(1, 4), st.integers(1, 4)),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.integers(1, 2), st.integers(1, 2)),
    st.tuples(*[st.integers(0, 2)] * 4),
    st.integers(0, 2**32 - 1),
)
def test_depthwise_sum_over_strided_views_equals_tap_by_tap(shape, kernel, strides, dilations, pads, seed):
    n, _, _, c = shape
    rng = np.random.default_rng(seed)
    xp = pad_hw(rng.integers(-128, 128, shape).astype(np.float32), pads, 0.0)
    hp, wp = xp.shape[1:3]
    oh = (hp - (kernel[0] - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (wp - (kernel[1] - 1) * dilations[1] - 1) // strides[1] + 1
    if oh < 1 or ow < 1:
        return
    wt = rng.integers(-127, 128, (1, *kernel, c)).astype(np.float32)
    expected = np.zeros((n, oh, ow, c), np.float32)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            y0, x0 = i * dilations[0], j * dilations[1]
            tap = xp[
                :,
                y0 : y0 + (oh - 1) * strides[0] + 1 : strides[0],
                x0 : x0 + (ow - 1) * strides[1] + 1 : strides[1],
            ]
            expected += tap * wt[0, i, j]
    rows = depthwise_rows(wt, kernel, ow, np.float32)
    got = depthwise_sum(xp, rows, kernel, strides, dilations, (oh, ow))
    np.testing.assert_array_equal(got.reshape(n, oh, ow, c), expected)  # small integers: exact in any order


# --------------------------------------------------------------------------
# The interpreter's fast path
# --------------------------------------------------------------------------


def _mlp(widths: list[int], rng: np.random.Generator, *, branch: bool = False):
    """int8 FULLY_CONNECTED layers; with `branch` the second layer's output is also a graph output."""
    g = GraphBuilder()
    scale, zp = 0.05, int(rng.integers(-128, 128))
    x = g.arg(tt((1, widths[0]), qt(scale, zp)), "x")
    v = x
    outs = []
    for i, (k, c) in enumerate(itertools.pairwise(widths)):
        w = rng.integers(-127, 128, (c, k)).astype(np.int8)
        ws = float(rng.uniform(0.002, 0.02))
        b = rng.integers(-3000, 3000, c).astype(np.int32)
        out_scale = float(scale * ws * 60 * np.sqrt(k) / 8)
        out_zp = -128 if i % 2 == 0 else int(rng.integers(-20, 20))
        act = "relu" if i % 2 == 0 else "none"
        v = g.op(
            nn.FullyConnectedOp,
            [v, g.const(w, qt(ws)), g.const(b, qt(scale * ws, 0, width=32))],
            tt((1, c), qt(out_scale, out_zp)),
            f"fc{i}",
            fused_activation=act,
        )
        if branch and i == 1:
            outs.append(v)
        scale = out_scale
    return g.module(*outs, v)


@pytest.mark.parametrize("branch", [False, True])
def test_fused_fully_connected_chain_equals_op_by_op(branch):
    rng = np.random.default_rng(7)
    module = _mlp([64, 48, 48, 8, 48, 200], rng, branch=branch)
    program = prepare(module)
    fused = [entry for entry in program._fast if not hasattr(entry[0], FC_STAGE)]
    assert fused, "the chain was fused"
    seen: dict[str, np.ndarray] = {}
    for seed in range(5):
        x = np.random.default_rng(seed).integers(-128, 128, (1, 64)).astype(np.int8)
        fast = [program.run([x]), program.run([x])]  # the checked first run, then the plain one
        slow = program.run([x], dump=lambda name, op, value: seen.__setitem__(name, value))
        for out in fast:
            assert out.keys() == slow.keys()
            for name in out:
                np.testing.assert_array_equal(out[name], slow[name])
                assert out[name].dtype == np.int8
    if branch:
        np.testing.assert_array_equal(slow["fc1"], seen["fc1"])


def test_repeated_runs_and_folded_constant_outputs_are_independent():
    g = GraphBuilder()
    x = g.arg(tt((4,), qt(0.5)), "x")
    c = g.const(np.array([1, -2, 3, 4], np.int8), qt(0.5), name="c")
    folded = g.op(nn.ReluOp, [c], tt((4,), qt(0.5)), "folded")  # computed once, at preparation
    y = g.op(nn.AddOp, [x, folded], tt((4,), qt(0.5)), "y")
    program = prepare(g.module(y, folded))
    first = program.run([np.array([1, 1, 1, 1], np.int8)])
    np.testing.assert_array_equal(first["folded"], [1, 0, 3, 4])
    np.testing.assert_array_equal(first["y"], [2, 1, 4, 5])
    first["folded"][:] = 99  # the caller owns what it gets
    second = program.run([np.array([2, 2, 2, 2], np.int8)])
    np.testing.assert_array_equal(second["folded"], [1, 0, 3, 4])
    np.testing.assert_array_equal(second["y"], [3, 2, 5, 6])


def _weighted(kind: str, mode: str, dynamic: str, rng: np.random.Generator):
    """One conv/depthwise/FC op; `dynamic` names what comes as graph inputs: nothing, the bias, or both."""
    g = GraphBuilder()
    xq, wq, yq = qt(0.05, 7), qt(0.01), qt(0.3, -5)
    bq = qt(0.05 * 0.01, 0, width=32)
    same = {"padding": nn.padding_attr("same"), "dilations": [1, 1]}
    x_shape, w_shape, out_shape, props = {
        "fc": ((2, 24), (5, 24), (2, 5), {}),
        "conv": ((1, 6, 6, 3), (4, 3, 3, 3), (1, 6, 6, 4), {"strides": [1, 1], **same}),
        "dw": ((1, 6, 6, 3), (1, 3, 3, 3), (1, 6, 6, 3), {"strides": [1, 1], **same}),
        "dw_mult2": ((1, 6, 6, 3), (1, 3, 3, 6), (1, 3, 3, 6), {"strides": [2, 2], **same}),
    }[kind]
    w = rng.integers(-127, 128, w_shape).astype(np.int8)
    b = rng.integers(-4000, 4000, w_shape[3] if kind.startswith("dw") else w_shape[0]).astype(np.int32)
    xs = rng.integers(-128, 128, x_shape).astype(np.int8)
    x = g.arg(tt(x_shape, xq), "x")
    wv = g.arg(tt(w_shape, wq), "w") if dynamic == "all" else g.const(w, wq)
    bv = g.arg(tt(b.shape, bq), "b") if dynamic != "none" else g.const(b, bq)
    cls = (
        nn.DepthwiseConv2DOp
        if kind.startswith("dw")
        else nn.Conv2DOp
        if kind == "conv"
        else nn.FullyConnectedOp
    )
    y = g.op(cls, [x, wv, bv], tt(out_shape, yq), "y", rounding=mode, fused_activation="relu", **props)
    inputs = {"none": [xs], "bias": [xs, b], "all": [xs, w, b]}[dynamic]
    return g.module(y), inputs


@pytest.mark.parametrize("kind", ["fc", "conv", "dw", "dw_mult2"])
@pytest.mark.parametrize("mode", ["tflite_double", "single", "onnx_rint"])
def test_weights_given_at_run_time_match_constant_weights(kind, mode):
    static_module, static_inputs = _weighted(kind, mode, "none", np.random.default_rng(11))
    expected = run(static_module, static_inputs)["y"]
    assert np.any(expected != expected.min())  # not all clamped
    for dynamic in ("bias", "all"):
        module, inputs = _weighted(kind, mode, dynamic, np.random.default_rng(11))
        np.testing.assert_array_equal(run(module, inputs)["y"], expected)


def test_run_sees_a_changed_operand_new_qparams_and_a_new_op():
    g = GraphBuilder()
    x = g.arg(tt((3,), qt(0.5)), "x")
    a = g.op(nn.ReluOp, [x], tt((3,), qt(0.5)), "a")
    b = g.op(nn.Relu6Op, [x], tt((3,), qt(0.5)), "b")
    y = g.op(nn.AddOp, [a, b], tt((3,), qt(0.5)), "y")
    module = g.module(y)
    graph = graph_of(module)
    data = np.array([-4, 2, 20], np.int8)
    assert run(module, [data])["y"].tolist() == [0, 4, 32]
    y.owner.operands[1] = a  # a + a
    assert run(module, [data])["y"].tolist() == [0, 4, 40]
    params = qparams.compute(y.owner)
    params["output_zp"] = 1
    y.owner.qparams = qparams.to_attr(params)
    assert run(module, [data])["y"].tolist() == [1, 5, 41]
    kept = getattr(graph, _MEMO)[1]
    graph.block.insert_op_before(nn.ReluOp.create(operands=[x], result_types=[x.type]), y.owner)
    assert run(module, [data])["y"].tolist() == [1, 5, 41]  # an unused op: the same outputs...
    assert getattr(graph, _MEMO)[1] is not kept  # ... from a new preparation
