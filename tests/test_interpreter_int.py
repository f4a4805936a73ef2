"""Integer path of the numpy interpreter against references written differently.

* ``tflite_double`` / ``single``: scalar Python ports of TFLM's reference loops
  (padding skipped, not materialised) on window edge cases drawn by hypothesis.
* ``onnx_rint``: ``onnx.reference``'s QLinearConv, QLinearMatMul,
  QuantizeLinear and DequantizeLinear, including uint8 tensors.
* Interpreter behaviour on quantized graphs: input validation, zero-copy
  constants, authoritative stored ``qparams``, located errors.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from xdsl.dialects.builtin import StringAttr, f32

from nnopt.backends.numpy import run
from nnopt.compiler.diagnostics import UserError
from nnopt.dialects import nn, qparams
from tests.q_build import GraphBuilder, graph_of, qt, tt
from tests.test_interpreter_float import window_cases
from tests.test_qmath import ref_double, ref_single, wrap32

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACTS = ["none", "relu", "relu6", "relu_n1_to_1"]


def f32v(x: float) -> float:
    return float(np.float32(x))


def ref_requant(acc: int, m: int, s: int, mode: str) -> int:
    return ref_double(acc, m, s) if mode == "tflite_double" else ref_single(acc, m, s)


def the_op(module):
    ops = list(graph_of(module).block.ops)
    return ops[-2]


# --------------------------------------------------------------------------
# TFLite modes vs scalar ports of the reference loops
# --------------------------------------------------------------------------


def _build_conv(case, rng, depthwise: bool, mode: str, per_channel: bool):
    pad_attr = nn.padding_attr(case["pads"] if case["padding"] == "explicit" else case["padding"])
    pads = nn.resolve_padding(pad_attr, (case["h"], case["w"]), case["k"], case["s"], case["d"])
    oh, ow = nn.window_output_hw((case["h"], case["w"]), case["k"], case["s"], case["d"], pads)
    cout, c = case["cout"], case["c"]
    cin_g = 1 if depthwise else c // case["groups"]
    xs, xz = f32v(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    ws = [f32v(rng.uniform(0.002, 0.02)) for _ in range(cout)] if per_channel else [f32v(0.01)] * cout
    k = case["k"][0] * case["k"][1] * cin_g
    ys = f32v(xs * float(np.mean(ws)) * 74 * 73 * math.sqrt(k) / 40)
    yz = int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, (case["n"], case["h"], case["w"], c)).astype(np.int8)
    w = rng.integers(-127, 128, (1, *case["k"], cout) if depthwise else (cout, *case["k"], cin_g)).astype(
        np.int8
    )
    b = rng.integers(-5000, 5000, cout).astype(np.int32) if case["bias"] else None
    axis = 3 if depthwise else 0
    g = GraphBuilder()
    xv = g.arg(tt(x.shape, qt(xs, xz)), "x")
    wq = qt(ws, 0, axis=axis) if per_channel else qt(ws[0])
    bq = qt([f32v(xs * s) for s in ws], 0, width=32, axis=0)
    ops = [xv, g.const(w, wq), g.const(b, bq) if b is not None else None]
    cls = nn.DepthwiseConv2DOp if depthwise else nn.Conv2DOp
    y = g.op(
        cls, ops, tt((case["n"], oh, ow, cout), qt(ys, yz)), "y", rounding=mode,
        strides=list(case["s"]), padding=pad_attr, dilations=list(case["d"]), fused_activation=case["act"],
    )  # fmt: skip
    return g.module(y), x, w, b, pads, (oh, ow)


def _conv_ref(module, x, w, b, pads, out_hw, case, depthwise: bool, mode: str) -> np.ndarray:
    """TFLM ConvPerChannel / DepthwiseConvPerChannel, one output at a time, padded cells skipped."""
    p = qparams.compute(the_op(module))
    n, h, wd, c = x.shape
    kh, kw = case["k"]
    cout = case["cout"]
    mult = cout // c if depthwise else 1
    cin_g = 1 if depthwise else w.shape[3]
    per_group = cout // (c // cin_g) if not depthwise else None
    xi, wi = x.astype(int).tolist(), w.astype(int).tolist()
    out = np.zeros((n, *out_hw, cout), dtype=np.int64)
    for bi in range(n):
        for oy in range(out_hw[0]):
            for ox in range(out_hw[1]):
                for oc in range(cout):
                    acc = 0
                    for ky in range(kh):
                        iy = oy * case["s"][0] - pads[0] + ky * case["d"][0]
                        for kx in range(kw):
                            ix = ox * case["s"][1] - pads[2] + kx * case["d"][1]
                            if not (0 <= iy < h and 0 <= ix < wd):
                                continue
                            if depthwise:
                                acc += (xi[bi][iy][ix][oc // mult] - p["input_zp"]) * wi[0][ky][kx][oc]
                            else:
                                g0 = (oc // per_group) * cin_g
                                for ic in range(cin_g):
                                    acc += (xi[bi][iy][ix][g0 + ic] - p["input_zp"]) * wi[oc][ky][kx][ic]
                    if b is not None:
                        acc += int(b[oc])
                    v = ref_requant(wrap32(acc), int(p["multiplier"][oc]), int(p["shift"][oc]), mode)
                    out[bi, oy, ox, oc] = min(max(v + p["output_zp"], int(p["clamp"][0])), int(p["clamp"][1]))
    return out.astype(np.int8)


@SETTINGS
@given(window_cases(), st.sampled_from(["tflite_double", "single"]), st.booleans())
def test_conv2d_int_matches_scalar_tflm_port(case, mode, per_channel):
    pads = nn.resolve_padding(
        nn.padding_attr(case["pads"] if case["padding"] == "explicit" else case["padding"]),
        (case["h"], case["w"]), case["k"], case["s"], case["d"],
    )  # fmt: skip
    assume(min(nn.window_output_hw((case["h"], case["w"]), case["k"], case["s"], case["d"], pads)) >= 1)
    rng = np.random.default_rng(case["seed"])
    module, x, w, b, pads, out_hw = _build_conv(case, rng, False, mode, per_channel)
    got = run(module, [x])["y"]
    np.testing.assert_array_equal(got, _conv_ref(module, x, w, b, pads, out_hw, case, False, mode))


@SETTINGS
@given(window_cases(depthwise=True), st.sampled_from(["tflite_double", "single"]), st.booleans())
def test_depthwise_int_matches_scalar_tflm_port(case, mode, per_channel):
    pads = nn.resolve_padding(
        nn.padding_attr(case["pads"] if case["padding"] == "explicit" else case["padding"]),
        (case["h"], case["w"]), case["k"], case["s"], case["d"],
    )  # fmt: skip
    assume(min(nn.window_output_hw((case["h"], case["w"]), case["k"], case["s"], case["d"], pads)) >= 1)
    rng = np.random.default_rng(case["seed"])
    module, x, w, b, pads, out_hw = _build_conv(case, rng, True, mode, per_channel)
    got = run(module, [x])["y"]
    np.testing.assert_array_equal(got, _conv_ref(module, x, w, b, pads, out_hw, case, True, mode))


@pytest.mark.parametrize(
    ("h", "w", "k", "s", "padding"),
    [
        (1, 1, (1, 1), (1, 1), "valid"),  # 1x1 input
        (1, 1, (3, 3), (1, 1), "same"),  # kernel larger than the input, all but one tap padded
        (5, 5, (5, 5), (1, 1), "valid"),  # kernel equal to the input
        (7, 6, (2, 2), (3, 3), "valid"),  # stride larger than the kernel
        (6, 6, (2, 3), (2, 2), "same"),  # asymmetric SAME padding (extra cell after)
        (4, 5, (3, 2), (1, 2), [2, 0, 1, 3]),  # explicit padding, asymmetric
    ],
)
@pytest.mark.parametrize("mode", ["tflite_double", "single"])
def test_conv_window_edge_cases(h, w, k, s, padding, mode):
    case = {
        "n": 1, "h": h, "w": w, "c": 3, "cout": 4, "groups": 1, "k": k, "s": s, "d": (1, 1),
        "padding": "explicit" if isinstance(padding, list) else padding,
        "pads": padding if isinstance(padding, list) else None, "bias": True, "act": "relu", "seed": 0,
    }  # fmt: skip
    rng = np.random.default_rng(h * 100 + w)
    for depthwise in (False, True):
        c = dict(case, cout=6 if depthwise else 4)
        module, x, wt, b, pads, out_hw = _build_conv(c, rng, depthwise, mode, True)
        np.testing.assert_array_equal(
            run(module, [x])["y"], _conv_ref(module, x, wt, b, pads, out_hw, c, depthwise, mode)
        )


@SETTINGS
@given(
    st.integers(1, 3), st.integers(1, 300), st.integers(1, 6), st.booleans(),
    st.sampled_from(["tflite_double", "single"]), st.sampled_from(ACTS), st.integers(0, 2**31),
)  # fmt: skip
def test_fully_connected_int_matches_scalar_port(rows, k, cout, per_channel, mode, act, seed):
    rng = np.random.default_rng(seed)
    xs, xz = f32v(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128))
    ws = [f32v(rng.uniform(0.002, 0.02)) for _ in range(cout)] if per_channel else [f32v(0.0123)] * cout
    ys, yz = f32v(xs * float(np.mean(ws)) * 74 * 73 * math.sqrt(k) / 40), int(rng.integers(-128, 128))
    x = rng.integers(-128, 128, (rows, k)).astype(np.int8)
    w = rng.integers(-127, 128, (cout, k)).astype(np.int8)
    b = rng.integers(-(2**16), 2**16, cout).astype(np.int32)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape, qt(xs, xz)), "x")
    wq = qt(ws, 0, axis=0) if per_channel else qt(ws[0])
    bq = qt([f32v(xs * s) for s in ws], 0, width=32, axis=0)
    y = g.op(
        nn.FullyConnectedOp, [xv, g.const(w, wq), g.const(b, bq)], tt((rows, cout), qt(ys, yz)), "y",
        rounding=mode, fused_activation=act,
    )  # fmt: skip
    module = g.module(y)
    p = qparams.compute(the_op(module))
    expected = np.zeros((rows, cout), np.int64)
    for r in range(rows):
        for o in range(cout):
            acc = sum((int(x[r, i]) - xz) * int(w[o, i]) for i in range(k)) + int(b[o])
            v = ref_requant(wrap32(acc), int(p["multiplier"][o]), int(p["shift"][o]), mode) + yz
            expected[r, o] = min(max(v, int(p["clamp"][0])), int(p["clamp"][1]))
    np.testing.assert_array_equal(run(module, [x])["y"], expected.astype(np.int8))


@SETTINGS
@given(
    st.sampled_from(["add", "sub", "mul"]), st.sampled_from(["tflite_double", "single"]),
    st.sampled_from(ACTS), st.integers(0, 2**31),
)  # fmt: skip
def test_elementwise_int_matches_scalar_port(kind, mode, act, seed):
    rng = np.random.default_rng(seed)
    shape_a, shape_b = (2, 3, 4), [(2, 3, 4), (3, 1), (4,), (1, 1, 1)][int(rng.integers(0, 4))]
    s1, s2 = f32v(rng.uniform(0.01, 0.2)), f32v(rng.uniform(0.01, 0.2))
    z1, z2, yz = (int(v) for v in rng.integers(-128, 128, 3))
    ys = f32v(s1 * s2 * 60 if kind == "mul" else max(s1, s2) * rng.uniform(1, 3))
    a = rng.integers(-128, 128, shape_a).astype(np.int8)
    b = rng.integers(-128, 128, shape_b).astype(np.int8)
    cls = {"add": nn.AddOp, "sub": nn.SubOp, "mul": nn.MulOp}[kind]
    g = GraphBuilder()
    av, bv = g.arg(tt(shape_a, qt(s1, z1)), "a"), g.arg(tt(shape_b, qt(s2, z2)), "b")
    y = g.op(cls, [av, bv], tt(shape_a, qt(ys, yz)), "y", rounding=mode, fused_activation=act)
    module = g.module(y)
    p = qparams.compute(the_op(module))
    got = run(module, [a, b])["y"]
    bb = np.broadcast_to(b, shape_a)
    lo, hi = int(p["clamp"][0]), int(p["clamp"][1])
    for idx in np.ndindex(*shape_a):
        va, vb = int(a[idx]) - z1, int(bb[idx]) - z2
        if kind == "mul":
            v = ref_requant(va * vb, int(p["multiplier"][0]), int(p["shift"][0]), mode) + yz
        else:
            ls = p["left_shift"]

            def rescale(v, m, s, ls=ls):
                shifted = wrap32(v * 2**ls)
                return ref_requant(shifted, m, s, mode)

            r1 = rescale(va, int(p["input1_multiplier"][0]), int(p["input1_shift"][0]))
            r2 = rescale(vb, int(p["input2_multiplier"][0]), int(p["input2_shift"][0]))
            raw = r1 + r2 if kind == "add" else r1 - r2
            v = ref_requant(raw, int(p["output_multiplier"][0]), int(p["output_shift"][0]), mode) + yz
        assert got[idx] == min(max(v, lo), hi), idx


def test_single_and_double_rounding_differ_by_at_most_one_lsb():
    rng = np.random.default_rng(42)
    case = {
        "n": 2, "h": 12, "w": 12, "c": 16, "cout": 16, "groups": 1, "k": (3, 3), "s": (1, 1), "d": (1, 1),
        "padding": "same", "pads": None, "bias": True, "act": "none", "seed": 0,
    }  # fmt: skip
    outs = []
    for mode in ("tflite_double", "single"):
        module, x, *_ = _build_conv(case, np.random.default_rng(7), False, mode, True)
        outs.append(run(module, [x])["y"].astype(int))
    diff = np.abs(outs[0] - outs[1])
    assert diff.max() == 1  # the modes are really different...
    assert np.count_nonzero(diff) < 0.02 * diff.size  # ...on a small fraction of outputs
    del rng


# --------------------------------------------------------------------------
# onnx_rint vs onnx.reference
# --------------------------------------------------------------------------


def onnx_node(op_type: str, inputs: dict[str, np.ndarray], **attrs) -> np.ndarray:
    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int8): TensorProto.INT8,
             np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int32): TensorProto.INT32}  # fmt: skip
    node = helper.make_node(op_type, list(inputs), ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(k, types[v.dtype], None) for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, inputs)[0]


@SETTINGS
@given(window_cases(), st.booleans(), st.booleans())
def test_conv2d_onnx_rint_matches_qlinearconv(case, unsigned, depthwise):
    if depthwise:
        case = dict(case, groups=case["c"], cout=case["c"] * max(1, case["cout"] // max(1, case["groups"])))
    pad_attr = nn.padding_attr(case["pads"] if case["padding"] == "explicit" else case["padding"])
    pads = nn.resolve_padding(pad_attr, (case["h"], case["w"]), case["k"], case["s"], case["d"])
    oh, ow = nn.window_output_hw((case["h"], case["w"]), case["k"], case["s"], case["d"], pads)
    assume(oh >= 1 and ow >= 1)
    rng = np.random.default_rng(case["seed"])
    dt = np.uint8 if unsigned else np.int8
    lo, hi = (0, 255) if unsigned else (-128, 127)
    c, cout, groups = case["c"], case["cout"], case["groups"]
    cin_g = c // groups
    xs, xz = f32v(rng.uniform(0.01, 0.1)), int(rng.integers(lo, hi + 1))
    ws = [f32v(rng.uniform(0.002, 0.02)) for _ in range(cout)]
    wz = [int(v) for v in rng.integers(lo, hi + 1, cout)] if unsigned else [0] * cout
    ys, yz = f32v(xs * float(np.mean(ws)) * 74 * 73 * 3 / 40), int(rng.integers(lo, hi + 1))
    x = rng.integers(lo, hi + 1, (case["n"], case["h"], case["w"], c)).astype(dt)
    w_ohwi = rng.integers(lo, hi + 1, (cout, *case["k"], cin_g)).astype(dt)
    b = rng.integers(-5000, 5000, cout).astype(np.int32)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape, qt(xs, xz, signed=not unsigned)), "x")
    bq = qt([f32v(xs * s) for s in ws], 0, width=32, axis=0)
    common = {
        "strides": list(case["s"]),
        "padding": pad_attr,
        "dilations": list(case["d"]),
        "rounding": "onnx_rint",
    }
    yq = tt((case["n"], oh, ow, cout), qt(ys, yz, signed=not unsigned))
    if depthwise:
        wq = qt(ws, wz, axis=3, signed=not unsigned)
        w_nn = w_ohwi[:, :, :, 0].transpose(1, 2, 0)[None]  # [1, KH, KW, C*M]
        y = g.op(nn.DepthwiseConv2DOp, [xv, g.const(w_nn, wq), g.const(b, bq)], yq, "y", **common)
    else:
        wq = qt(ws, wz, axis=0, signed=not unsigned)
        y = g.op(nn.Conv2DOp, [xv, g.const(w_ohwi, wq), g.const(b, bq)], yq, "y", **common)
    got = run(g.module(y), [x])["y"]
    top, bottom, left, right = pads
    ref = onnx_node(
        "QLinearConv",
        {
            "x": x.transpose(0, 3, 1, 2).copy(), "x_scale": np.float32(xs), "x_zero_point": np.array(xz, dt),
            "w": w_ohwi.transpose(0, 3, 1, 2).copy(), "w_scale": np.array(ws, np.float32),
            "w_zero_point": np.array(wz, dt), "y_scale": np.float32(ys), "y_zero_point": np.array(yz, dt), "B": b,
        },
        pads=[top, left, bottom, right], strides=list(case["s"]), dilations=list(case["d"]), group=groups,
    )  # fmt: skip
    np.testing.assert_array_equal(got, ref.transpose(0, 2, 3, 1))


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 40), st.integers(1, 6), st.booleans(), st.integers(0, 2**31))
def test_matmul_onnx_rint_matches_qlinearmatmul(m, k, n, unsigned, seed):
    rng = np.random.default_rng(seed)
    dt = np.uint8 if unsigned else np.int8
    lo, hi = (0, 255) if unsigned else (-128, 127)
    a = rng.integers(lo, hi + 1, (2, m, k)).astype(dt)
    b = rng.integers(lo, hi + 1, (2, k, n)).astype(dt)
    sa, sb = f32v(rng.uniform(0.01, 0.1)), f32v(rng.uniform(0.01, 0.1))
    za, zb, zy = (int(v) for v in rng.integers(lo, hi + 1, 3))
    sy = f32v(sa * sb * 74 * 74 * math.sqrt(k) / 40)
    g = GraphBuilder()
    av = g.arg(tt(a.shape, qt(sa, za, signed=not unsigned)), "a")
    bv = g.arg(tt(b.shape, qt(sb, zb, signed=not unsigned)), "b")
    y = g.op(nn.MatMulOp, [av, bv], tt((2, m, n), qt(sy, zy, signed=not unsigned)), "y", rounding="onnx_rint")
    got = run(g.module(y), [a, b])["y"]
    ref = onnx_node(
        "QLinearMatMul",
        {"a": a, "a_scale": np.float32(sa), "a_zero_point": np.array(za, dt), "b": b, "b_scale": np.float32(sb),
         "b_zero_point": np.array(zb, dt), "y_scale": np.float32(sy), "y_zero_point": np.array(zy, dt)},
    )  # fmt: skip
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("unsigned", [False, True])
def test_quantize_dequantize_onnx_rint(unsigned):
    rng = np.random.default_rng(3)
    dt = np.uint8 if unsigned else np.int8
    s, z = f32v(0.05), 130 if unsigned else -7
    x = (rng.standard_normal(400) * 4).astype(np.float32)
    x[:40] = (np.arange(40, dtype=np.float32) - 20 + 0.5) * np.float32(s)  # exact ties
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    q = g.op(nn.QuantizeOp, [xv], tt(x.shape, qt(s, z, signed=not unsigned)), "q", rounding="onnx_rint")
    d = g.add(nn.DequantizeOp(q, tt(x.shape, f32)), "d")
    out = run(g.module(q, d), [x])
    ref_q = onnx_node("QuantizeLinear", {"x": x, "s": np.float32(s), "z": np.array(z, dt)})
    np.testing.assert_array_equal(out["q"], ref_q)
    ref_d = onnx_node("DequantizeLinear", {"q": ref_q, "s": np.float32(s), "z": np.array(z, dt)})
    np.testing.assert_array_equal(out["d"], ref_d)


def test_quantize_ties_round_away_in_tflite_mode_and_to_even_in_onnx_mode():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], np.float32)
    outs = {}
    for mode in ("tflite_double", "onnx_rint"):
        g = GraphBuilder()
        xv = g.arg(tt(x.shape), "x")
        outs[mode] = run(g.module(g.op(nn.QuantizeOp, [xv], tt(x.shape, qt(1.0)), "y", rounding=mode)), [x])[
            "y"
        ]
    assert outs["tflite_double"].tolist() == [-3, -2, -1, 1, 2, 3]
    assert outs["onnx_rint"].tolist() == [-2, -2, 0, 0, 2, 2]


def test_per_axis_quantize_and_dequantize():
    x = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -3.0]], np.float32)
    q_type = qt([0.1, 0.01], [0, 5], axis=0)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    q = g.op(nn.QuantizeOp, [xv], tt(x.shape, q_type), "q")
    d = g.add(nn.DequantizeOp(q, tt(x.shape, f32)), "d")
    out = run(g.module(q, d), [x])
    assert out["q"].tolist() == [[1, -2, 3], [105, 127, -128]]
    np.testing.assert_allclose(out["d"], [[0.1, -0.2, 0.3], [1.0, 1.22, -1.33]], rtol=1e-6)


@pytest.mark.parametrize("kind", ["add", "mul", "avg_pool", "softmax", "logistic", "tanh", "relu6", "mean"])
def test_onnx_rint_other_ops_are_dequantize_float_quantize(kind):
    rng = np.random.default_rng(5)
    shape = (1, 4, 4, 3)
    s1, z1, s2, z2 = 0.05, 3, 0.02, -4
    ys, yz = (1 / 256, -128) if kind in ("softmax", "logistic") else (0.04, 2)
    a = rng.integers(-128, 128, shape).astype(np.int8)
    b = rng.integers(-128, 128, shape).astype(np.int8)
    fa = (a.astype(np.float32) - z1) * np.float32(s1)
    fb = (b.astype(np.float32) - z2) * np.float32(s2)
    g = GraphBuilder()
    av = g.arg(tt(shape, qt(s1, z1)), "a")
    bv = g.arg(tt(shape, qt(s2, z2)), "b")
    props = {"rounding": "onnx_rint"}
    out_shape = shape
    if kind == "add":
        y, ref = g.op(nn.AddOp, [av, bv], tt(shape, qt(ys, yz)), "y", **props), fa + fb
    elif kind == "mul":
        y, ref = g.op(nn.MulOp, [av, bv], tt(shape, qt(ys, yz)), "y", **props), fa * fb
    elif kind == "avg_pool":
        out_shape = (1, 2, 2, 3)
        y = g.op(nn.AvgPool2DOp, [av], tt(out_shape, qt(s1, z1)), "y", kernel=[2, 2], strides=[2, 2],
                 padding="valid", **props)  # fmt: skip
        ref, ys, yz = fa.reshape(1, 2, 2, 2, 2, 3).mean(axis=(2, 4)), s1, z1
    elif kind == "softmax":
        y = g.op(nn.SoftmaxOp, [av], tt(shape, qt(ys, yz)), "y", **props)
        e = np.exp(fa - fa.max(axis=-1, keepdims=True))
        ref = e / e.sum(axis=-1, keepdims=True)
    elif kind == "logistic":
        y, ref = g.op(nn.LogisticOp, [av], tt(shape, qt(ys, yz)), "y", **props), 1 / (1 + np.exp(-fa))
    elif kind == "tanh":
        y, ref = g.op(nn.TanhOp, [av], tt(shape, qt(ys, yz)), "y", **props), np.tanh(fa)
    elif kind == "relu6":
        y, ref = g.op(nn.Relu6Op, [av], tt(shape, qt(ys, yz)), "y", **props), np.clip(fa, 0, 6)
    else:
        out_shape = (1, 3)
        y = g.op(nn.MeanOp, [av], tt(out_shape, qt(ys, yz)), "y", axes=[1, 2], **props)
        ref = fa.mean(axis=(1, 2))
    got = run(g.module(y), [a, b])["y"]
    expected = np.clip(np.rint(ref.astype(np.float32) / np.float32(ys)) + yz, -128, 127)
    # float32 op-order differences may move a value across a rounding boundary: allow 1 LSB on few outputs
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert got.shape == out_shape and diff.max() <= 1 and np.count_nonzero(diff) <= max(1, diff.size // 50)


# --------------------------------------------------------------------------
# Behaviour on quantized graphs
# --------------------------------------------------------------------------


def _relu_graph(**props):
    g = GraphBuilder()
    x = g.arg(tt((6,), qt(0.5, -3)), "x")
    return g.module(g.op(nn.ReluOp, [x], tt((6,), qt(0.25, 1)), "y", **props))


def test_quantized_input_validation():
    module = _relu_graph()
    with pytest.raises(UserError, match="must hold the stored integers"):
        run(module, [np.zeros(6, np.float32)])
    with pytest.raises(UserError, match=r"values in \[-200, 0\], outside the storage range \[-128, 127\]"):
        run(module, [np.array([-200, 0, 0, 0, 0, 0])])
    # other integer dtypes are accepted when the values fit
    out = run(module, [np.array([-10, -3, -2, 0, 5, 100], np.int64)])["y"]
    assert out.dtype == np.int8 and out.tolist() == [1, 1, 3, 7, 17, 127]


def test_stored_qparams_are_authoritative():
    module = _relu_graph()
    op = the_op(module)
    x = np.array([-10, -3, -2, 0, 5, 100], np.int8)
    before = run(module, [x])["y"]
    qparams.attach(op)
    assert op.rounding == StringAttr("tflite_double")
    np.testing.assert_array_equal(run(module, [x])["y"], before)
    edited = qparams.get(op)
    edited["clamp"] = np.array([1, 10], np.int32)
    op.qparams = qparams.to_attr(edited)
    assert run(module, [x])["y"].tolist() == [1, 1, 3, 7, 10, 10]


def test_missing_qparams_entry_is_a_located_user_error():
    module = _relu_graph()
    op = the_op(module)
    params = qparams.compute(op)
    del params["shift"]
    op.qparams = qparams.to_attr(params)
    with pytest.raises(UserError, match=re.escape("'nn.relu' op qparams lack the entry 'shift'")):
        run(module, [np.zeros(6, np.int8)])


def test_kernel_preconditions_are_located_user_errors():
    g = GraphBuilder()
    x = g.arg(tt((4,), qt(0.1)), "x")
    y = g.op(nn.SoftmaxOp, [x], tt((4,), qt(0.1)), "y")
    with pytest.raises(
        UserError,
        match=re.escape("'nn.softmax' op integer softmax writes probabilities as i8 with scale 1/256"),
    ):
        run(g.module(y), [np.zeros(4, np.int8)])


def test_constants_are_zero_copy_and_unsigned_bytes_are_reinterpreted():
    g = GraphBuilder()
    x = g.arg(tt((4,), f32), "x")
    c = g.const(np.array([1, 2, 200, 255], np.uint8), qt(0.5, 128, signed=False), "c")
    d = g.add(nn.DequantizeOp(c, tt((4,), f32)), "d")
    s = g.op(nn.AddOp, [x, d], tt((4,)), "s")
    module = g.module(s)
    seen = {}
    run(module, [np.zeros(4, np.float32)], dump=lambda n, op, v: seen.setdefault(n, (op, v)))
    op, value = seen["c"]
    assert value.dtype == np.uint8 and value.tolist() == [1, 2, 200, 255]
    base = value
    while isinstance(base, np.ndarray):
        base = base.base
    assert base is op.value.data.data  # the attribute's bytes, not a copy
    assert seen["d"][1].tolist() == [-63.5, -63.0, 36.0, 63.5]


def test_concat_and_pad_of_quantized_tensors():
    g = GraphBuilder()
    q = qt(0.5, -10)
    a = g.arg(tt((2, 2), q), "a")
    b = g.arg(tt((2, 1), q), "b")
    c = g.op(nn.ConcatOp, [[a, b]], tt((2, 3), q), "c", axis=1, fused_activation="relu6")
    p = g.op(nn.PadOp, [c], tt((3, 3), q), "p", pads=[1, 0, 0, 0], value=1.0)
    out = run(g.module(c, p), [np.array([[-128, 0], [5, 127]], np.int8), np.array([[-11], [3]], np.int8)])
    assert out["c"].tolist() == [[-10, 0, -10], [2, 2, 2]]  # relu6 -> [zp, zp + 6/0.5] = [-10, 2]
    assert out["p"].tolist() == [[-8, -8, -8], [-10, 0, -10], [2, 2, 2]]  # 1.0 -> zp + 2


@pytest.mark.parametrize("kind", ["softmax", "logistic", "tanh", "mean", "avg_pool", "mul"])
def test_single_rounding_stays_within_one_lsb_of_double_rounding(kind):
    rng = np.random.default_rng(11)
    shape = (1, 6, 6, 16)
    x = rng.integers(-128, 128, shape).astype(np.int8)
    outs = {}
    for mode in ("tflite_double", "single"):
        g = GraphBuilder()
        xv = g.arg(tt(shape, qt(0.07, 5)), "x")
        if kind == "softmax":
            y = g.op(nn.SoftmaxOp, [xv], tt(shape, qt(1 / 256, -128)), "y", rounding=mode, beta=1.3)
        elif kind == "logistic":
            y = g.op(nn.LogisticOp, [xv], tt(shape, qt(1 / 256, -128)), "y", rounding=mode)
        elif kind == "tanh":
            y = g.op(nn.TanhOp, [xv], tt(shape, qt(1 / 128)), "y", rounding=mode)
        elif kind == "mean":
            y = g.op(nn.MeanOp, [xv], tt((1, 16), qt(0.03, -2)), "y", axes=[1, 2], rounding=mode)
        elif kind == "avg_pool":
            y = g.op(nn.AvgPool2DOp, [xv], tt((1, 3, 3, 16), qt(0.07, 5)), "y", kernel=[3, 3], strides=[2, 2],
                     padding="same", rounding=mode)  # fmt: skip
        else:
            y = g.op(nn.MulOp, [xv, xv], tt(shape, qt(0.2, 1)), "y", rounding=mode)
        outs[mode] = run(g.module(y), [x])["y"].astype(int)
    assert np.abs(outs["tflite_double"] - outs["single"]).max() <= 1


def test_outputs_may_be_inputs_and_repeat():
    g = GraphBuilder()
    x = g.arg(tt((3,), qt(0.5)), "x")
    y = g.op(nn.ReluOp, [x], tt((3,), qt(0.5)), "y")
    g.block.add_op(nn.OutputOp([x, y, y]))
    from xdsl.dialects.builtin import ModuleOp
    from xdsl.ir import Region

    graph = nn.GraphOp("g", [x.type], [x.type, y.type, y.type], Region(g.block))
    out = run(ModuleOp([graph]), [np.array([-4, 0, 9], np.int8)])
    assert graph.output_names() == ["x", "y", "y_1"]  # the same value output twice: two entries
    assert list(out) == ["x", "y", "y_1"]
    assert out["x"].tolist() == [-4, 0, 9] and out["y"].tolist() == out["y_1"].tolist() == [0, 0, 9]
