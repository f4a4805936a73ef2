"""nnopt.dialects.qparams: the derived integers, their storage, and the nn-legalize-quant pass."""

from __future__ import annotations

import re

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, StringAttr, f32

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.mlir_input import parse_mlir
from nnopt.compiler.registry import make_context
from nnopt.dialects import nn, qparams
from nnopt.dialects import qmath as qm
from nnopt.passes.legalize_quant import LegalizeQuantPass
from tests.q_build import GraphBuilder, graph_of, qt, tt

MODES = ["tflite_double", "single", "onnx_rint"]


def f32v(x: float) -> float:
    return float(np.float32(x))


def zoo(mode: str | None = None):
    """One graph holding every quantizable op kind on quantized tensors (plus a float op)."""
    rounding = {"rounding": mode} if mode else {}
    q_in, q_out = qt(0.0470588244497776, -3), qt(0.1098039224743843, 7)
    g = GraphBuilder()
    x = g.arg(tt((1, 6, 6, 4), q_in), "x")
    w = g.const(np.ones((5, 3, 3, 4)), qt([0.01, 0.02, 0.005, 0.03, 0.011], 0, axis=0))
    b = g.const(np.zeros(5), qt([f32v(0.0470588244497776 * s) for s in (0.01, 0.02, 0.005, 0.03, 0.011)], 0,
                                width=32, axis=0))  # fmt: skip
    conv = g.op(nn.Conv2DOp, [x, w, b], tt((1, 6, 6, 5), q_out), "conv", strides=[1, 1], padding="same",
                fused_activation="relu6", **rounding)  # fmt: skip
    dww = g.const(np.ones((1, 3, 3, 8)), qt(0.004))
    dw = g.op(nn.DepthwiseConv2DOp, [x, dww], tt((1, 2, 2, 8), q_out), "dw", strides=[2, 2], padding="valid",
              dilations=[1, 1], fused_activation="relu", **rounding)  # fmt: skip
    fcw = g.const(np.ones((3, 144)), qt(0.0031))
    fc = g.op(nn.FullyConnectedOp, [x, fcw], tt((1, 3), q_out), "fc", **rounding)
    mm = g.op(nn.MatMulOp, [conv, conv], tt((1, 6, 6, 6), q_in), "mm", adj_y=True, **rounding)
    add = g.op(nn.AddOp, [conv, conv], tt((1, 6, 6, 5), q_in), "add", **rounding)
    sub = g.op(
        nn.SubOp, [conv, conv], tt((1, 6, 6, 5), q_in), "sub", fused_activation="relu_n1_to_1", **rounding
    )
    mul = g.op(nn.MulOp, [conv, conv], tt((1, 6, 6, 5), q_in), "mul", **rounding)
    relu = g.op(nn.ReluOp, [conv], tt((1, 6, 6, 5), q_in), "relu", **rounding)
    relu6 = g.op(nn.Relu6Op, [conv], tt((1, 6, 6, 5), q_out), "relu6", **rounding)
    clamp = g.op(nn.ClampOp, [conv], tt((1, 6, 6, 5), q_in), "clamp", min=-0.5, max=1.25, **rounding)
    mp = g.op(nn.MaxPool2DOp, [conv], tt((1, 3, 3, 5), q_out), "mp", kernel=[2, 2], strides=[2, 2],
              padding="valid", **rounding)  # fmt: skip
    ap = g.op(nn.AvgPool2DOp, [conv], tt((1, 3, 3, 5), q_out), "ap", kernel=[2, 2], strides=[2, 2],
              padding="valid", **rounding)  # fmt: skip
    mean = g.op(nn.MeanOp, [conv], tt((1, 5), q_in), "mean", axes=[1, 2], **rounding)
    sm = g.op(nn.SoftmaxOp, [conv], tt((1, 6, 6, 5), qt(1 / 256, -128)), "sm", beta=0.7, **rounding)
    lg = g.op(nn.LogisticOp, [conv], tt((1, 6, 6, 5), qt(1 / 256, -128)), "lg", **rounding)
    th = g.op(nn.TanhOp, [conv], tt((1, 6, 6, 5), qt(1 / 128, 0)), "th", **rounding)
    rq = g.op(nn.QuantizeOp, [conv], tt((1, 6, 6, 5), q_in), "rq", **rounding)
    fl = g.arg(tt((2, 3), f32), "fl")
    qf = g.op(nn.QuantizeOp, [fl], tt((2, 3), qt([0.1, 0.2], [1, -1], axis=0)), "qf", **rounding)
    fr = g.op(nn.ReluOp, [fl], tt((2, 3), f32), "float_relu")
    return g.module(dw, fc, mm, add, sub, mul, relu, relu6, clamp, mp, ap, mean, sm, lg, th, rq, qf, fr)


def ops_by_name(module) -> dict[str, nn.QuantizableOp]:
    return {
        op.results[0].name_hint: op
        for op in graph_of(module).block.ops
        if op.results and op.results[0].name_hint
    }


def same(a: qparams.Params, b: qparams.Params) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        va, vb = a[k], b[k]
        if isinstance(va, np.ndarray) != isinstance(vb, np.ndarray):
            return False
        if isinstance(va, np.ndarray):
            assert isinstance(vb, np.ndarray)
            if va.dtype != vb.dtype or not np.array_equal(va, vb):
                return False
        elif va != vb:
            return False
    return True


@pytest.mark.parametrize("mode", MODES)
def test_attach_get_and_text_round_trip_preserve_every_parameter(mode):
    module = zoo(mode)
    computed = {name: qparams.compute(op) for name, op in ops_by_name(module).items()}
    assert computed["float_relu"] == {}
    for op in ops_by_name(module).values():
        qparams.attach(op)
    reparsed = parse_mlir(make_context(), str(module), "zoo.mlir")
    for name, op in ops_by_name(reparsed).items():
        assert same(qparams.get(op), computed[name]), name
        if name != "float_relu":
            assert op.rounding == StringAttr(mode)
            assert op.qparams is not None
        else:
            assert op.rounding is None and op.qparams is None


def test_attach_sets_the_default_rounding_only_when_unset():
    module = zoo()
    ops = ops_by_name(module)
    qparams.attach(ops["conv"])
    assert ops["conv"].rounding == StringAttr("tflite_double")
    qparams.attach(ops["relu"], "single")
    assert ops["relu"].rounding == StringAttr("single")
    ops["add"].rounding = StringAttr("onnx_rint")
    qparams.attach(ops["add"], "single")
    assert ops["add"].rounding == StringAttr("onnx_rint")
    assert "input1_scale" in qparams.get(ops["add"])


def test_conv_uses_doubles_and_per_tensor_fc_the_float32_product():
    s_in, s_w, s_out = 0.0235294122248888, 0.00392156885936856, 0.0470588244497776
    g = GraphBuilder()
    x = g.arg(tt((1, 1, 1, 2), qt(s_in)), "x")
    conv = g.op(nn.Conv2DOp, [x, g.const(np.ones((1, 1, 1, 2)), qt(s_w))], tt((1, 1, 1, 1), qt(s_out)), "c",
                strides=[1, 1], padding="valid")  # fmt: skip
    fc = g.op(nn.FullyConnectedOp, [x, g.const(np.ones((1, 2)), qt(s_w))], tt((1, 1), qt(s_out)), "f")
    fc_pc = g.op(
        nn.FullyConnectedOp, [x, g.const(np.ones((1, 2)), qt([s_w], axis=0))], tt((1, 1), qt(s_out)), "p"
    )
    g.module(conv, fc, fc_pc)
    double = qm.quantize_multiplier(qm.per_channel_multiplier(s_in, s_w, s_out))
    product = qm.quantize_multiplier(qm.conv_multiplier_f32(s_in, s_w, s_out))
    assert double != product
    for op, expected in ((conv, double), (fc, product), (fc_pc, double)):
        p = qparams.compute(op.owner)
        assert (int(p["multiplier"][0]), int(p["shift"][0])) == expected


def test_activation_clamps_round_half_away_and_onnx_half_even():
    q = qt(12.0)  # 6 / 12 = 0.5 exactly: a tie
    assert qparams.activation_range("relu6", q) == (0, 1)
    assert qparams.activation_range("relu6", q, "onnx_rint") == (0, 0)
    assert qparams.activation_range("relu6", qt(0.1, 4)) == (4, 64)
    assert qparams.activation_range("relu_n1_to_1", qt(1 / 128)) == (-128, 127)
    assert qparams.activation_range("relu", qt(0.5, -128)) == (-128, 127)
    assert qparams.activation_range("none", qt(0.5, 3, width=16)) == (-32768, 32767)
    assert qparams.activation_range("relu", qt(0.5, 3, signed=False)) == (3, 255)
    assert qparams.activation_range("relu6", qt(0.5, 0, signed=True)) == (0, 12)
    with pytest.raises(qparams.QuantParamError):
        qparams.activation_range("gelu", q)


def _single_op(cls, in_q, out_q, shape=(4,), **props):
    g = GraphBuilder()
    x = g.arg(tt(shape, in_q), "x")
    y = g.op(cls, [x], tt(shape, out_q), "y", **props)
    g.module(y)
    return y.owner


def test_single_rounding_saturates_large_shifts():
    double = qparams.compute(_single_op(nn.ReluOp, qt(2.0**30), qt(2.0**-10)))
    single = qparams.compute(_single_op(nn.ReluOp, qt(2.0**30), qt(2.0**-10), rounding="single"))
    assert (int(double["multiplier"][0]), int(double["shift"][0])) == (2**30, 41)
    assert (int(single["multiplier"][0]), int(single["shift"][0])) == (2**31 - 1, 30)


def test_softmax_logistic_tanh_parameters():
    p = qparams.compute(_single_op(nn.SoftmaxOp, qt(1.0), qt(1 / 256, -128)))
    assert (int(p["input_multiplier"][0]), p["input_left_shift"], p["diff_min"]) == (2**30, 27, -15)
    # a huge input scale saturates at 2^31 - 1 (double rounding) or 2^30 - 1 (single rounding)
    big = qparams.compute(_single_op(nn.SoftmaxOp, qt(1000.0), qt(1 / 256, -128)))
    assert (int(big["input_multiplier"][0]), big["input_left_shift"]) == qm.quantize_multiplier(2.0**31 - 1)
    big1 = qparams.compute(_single_op(nn.SoftmaxOp, qt(1000.0), qt(1 / 256, -128), rounding="single"))
    assert (int(big1["input_multiplier"][0]), big1["input_left_shift"]) == qm.quantize_multiplier(2.0**30 - 1)
    lg = qparams.compute(_single_op(nn.LogisticOp, qt(0.1, 5), qt(1 / 256, -128)))
    real = f32v(0.1) * 2**27
    assert lg["input_left_shift"] == 24 and int(lg["input_multiplier"][0]) == round(real / 2**24 * 2**31)
    assert lg["input_range_radius"] == 120 and lg["input_zp"] == 5
    th = qparams.compute(_single_op(nn.TanhOp, qt(0.1, 5), qt(1 / 128, 0)))
    assert {k: v for k, v in th.items() if k != "input_multiplier"} == {
        k: v for k, v in lg.items() if k != "input_multiplier"
    }


@pytest.mark.parametrize(
    ("cls", "out_q", "message"),
    [
        (nn.SoftmaxOp, qt(1 / 256, 0), "integer softmax writes probabilities as i8 with scale 1/256"),
        (
            nn.LogisticOp,
            qt(1 / 256, 0),
            "integer logistic writes int8 with scale 0.00390625 and zero point -128",
        ),
        (nn.TanhOp, qt(1 / 64, 0), "integer tanh writes int8 with scale 0.0078125 and zero point 0"),
    ],
)
def test_kernel_preconditions(cls, out_q, message):
    with pytest.raises(qparams.QuantParamError, match=re.escape(message)):
        qparams.compute(_single_op(cls, qt(0.1), out_q))
    # ONNX semantics have no such constraint (dequantize -> float -> quantize)
    assert "output_scale" in qparams.compute(_single_op(cls, qt(0.1), out_q, rounding="onnx_rint"))


def test_int16_kernels_need_zero_zero_points():
    with pytest.raises(qparams.QuantParamError, match="16-bit lhs must have zero point 0"):
        g = GraphBuilder()
        a = g.arg(tt((4,), qt(0.1, 3, width=16)), "a")
        y = g.op(nn.AddOp, [a, a], tt((4,), qt(0.1, 0, width=16)), "y")
        g.module(y)
        qparams.compute(y.owner)


def test_add_uses_doubles_and_sub_float32():
    rng = np.random.default_rng(0)
    found = False
    for _ in range(2000):
        s1, s2, so = (f32v(v) for v in rng.uniform(0.001, 0.5, 3))
        twice = 2 * max(s1, s2)
        add_real = (s1 / twice, s2 / twice, twice / (2**20 * so))
        t32 = np.float32(2) * np.float32(max(s1, s2))
        sub_real = (
            float(np.float32(s1) / t32),
            float(np.float32(s2) / t32),
            float(t32 / (np.float32(2**20) * np.float32(so))),
        )
        g = GraphBuilder()
        a, b = g.arg(tt((2,), qt(s1)), "a"), g.arg(tt((2,), qt(s2)), "b")
        add = g.op(nn.AddOp, [a, b], tt((2,), qt(so)), "add")
        sub = g.op(nn.SubOp, [a, b], tt((2,), qt(so)), "sub")
        g.module(add, sub)
        pa, ps = qparams.compute(add.owner), qparams.compute(sub.owner)
        for p, reals in ((pa, add_real), (ps, sub_real)):
            for key, real in zip(("input1", "input2", "output"), reals, strict=True):
                expected = qm.quantize_multiplier_smaller_than_one_exp(real)
                assert (int(p[f"{key}_multiplier"][0]), int(p[f"{key}_shift"][0])) == expected
        found |= int(pa["output_multiplier"][0]) != int(ps["output_multiplier"][0])
        if found:
            break
    assert found  # the two formulas really differ somewhere


def test_mean_folds_the_element_count_into_the_multiplier():
    g = GraphBuilder()
    x = g.arg(tt((1, 3, 5, 2), qt(0.5, 1)), "x")
    y = g.op(nn.MeanOp, [x], tt((1, 2), qt(0.5, 1)), "y", axes=[1, 2])
    g.module(y)
    p = qparams.compute(y.owner)
    # 0.5 / 0.5 = 1 -> (2^30, 1); count 15 -> shift by 3, multiplier (2^30 << 3) // 15
    assert p["count"] == 15
    assert (int(p["multiplier"][0]), int(p["shift"][0])) == ((2**30 << 3) // 15, 1 - 3)


def test_from_attr_rejects_foreign_entries():
    with pytest.raises(
        qparams.QuantParamError, match="qparams entry 'x' must be an integer or a dense array"
    ):
        qparams.from_attr(DictionaryAttr({"x": StringAttr("no")}))


# --------------------------------------------------------------------------
# nn-legalize-quant
# --------------------------------------------------------------------------


def test_legalize_quant_pass_attaches_to_every_quantized_op():
    module = zoo()
    ops = ops_by_name(module)
    ops["relu"].rounding = StringAttr("single")
    LegalizeQuantPass(rounding="onnx_rint").apply(Context(), module)
    for name, op in ops_by_name(module).items():
        if name == "float_relu":
            assert op.qparams is None and op.rounding is None
            continue
        assert op.qparams is not None, name
        assert op.rounding == StringAttr("single" if name == "relu" else "onnx_rint")
        assert same(qparams.get(op), qparams.compute(op))
    module.verify()


def test_legalize_quant_pass_errors():
    with pytest.raises(UserError, match="unknown rounding 'up'"):
        LegalizeQuantPass(rounding="up").apply(Context(), zoo())
    g = GraphBuilder()
    x = g.arg(tt((4,), qt(0.1)), "x")
    y = g.op(nn.SoftmaxOp, [x], tt((4,), qt(0.1)), "y")
    module = g.module(y)
    with pytest.raises(UserError, match=re.escape("'nn.softmax' op integer softmax writes")):
        LegalizeQuantPass().apply(Context(), module)
