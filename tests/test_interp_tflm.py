"""Integer kernels bit-exact with the real TFLite Micro interpreter, one random single-op model per case.

Every case builds the same op twice, as an `nn` graph (run by nnopt's numpy
interpreter in ``tflite_double`` mode, parameters from `qparams`) and as an
int8 ``.tflite`` model (run by the `tflite_micro` wheel in a child process),
and requires identical outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp, f32

from nnopt.backends.numpy import run
from nnopt.dialects import nn
from tests.q_build import GraphBuilder, qt, tt
from tests.q_tflm_oracle import HAVE_TFLM, T, run_tflm, single_op_model

pytestmark = pytest.mark.skipif(not HAVE_TFLM, reason="tflite_micro is not installed")

ACT_CODES = {"none": 0, "relu": 1, "relu_n1_to_1": 2, "relu6": 3}
PAD_CODES = {"same": 0, "valid": 1}


@dataclass
class Case:
    """One op as an nn graph and as a .tflite model, with its inputs."""

    module: ModuleOp
    inputs: list[np.ndarray]
    model: bytes


def f32v(x: float) -> float:
    return float(np.float32(x))


def scale(rng: np.random.Generator, lo: float = 2e-3, hi: float = 0.2) -> float:
    return f32v(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def i8(rng: np.random.Generator, shape, lo: int = -128, hi: int = 127) -> np.ndarray:
    return rng.integers(lo, hi, shape, endpoint=True).astype(np.int8)


def zp(rng: np.random.Generator) -> int:
    return int(rng.integers(-128, 128))


# --------------------------------------------------------------------------
# Case generators
# --------------------------------------------------------------------------


def conv_case(rng: np.random.Generator, depthwise: bool, large: bool = False) -> Case:
    while True:
        h, w = (int(rng.integers(1, 10)), int(rng.integers(1, 10))) if not large else (16, 12)
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = str(rng.choice(["same", "valid"]))
        pads = nn.resolve_padding(nn.padding_attr(padding), (h, w), (kh, kw), strides, dil)
        oh, ow = nn.window_output_hw((h, w), (kh, kw), strides, dil, pads)
        if oh >= 1 and ow >= 1:
            break
    n = int(rng.integers(1, 3))
    c = int(rng.integers(1, 6)) if not large else 48
    mult = int(rng.integers(1, 4)) if depthwise else 1
    cout = c * mult if depthwise else int(rng.integers(1, 7)) if not large else 24
    per_channel = bool(rng.integers(0, 4))  # mostly per-channel, as TFLite does
    x_s, x_z = scale(rng), zp(rng)
    w_s = [scale(rng, 1e-3, 2e-2) for _ in range(cout)] if per_channel else [scale(rng, 1e-3, 2e-2)] * cout
    k = kh * kw * (1 if depthwise else c)
    y_s = f32v(x_s * float(np.mean(w_s)) * 74 * 73 * math.sqrt(k) / 40 * rng.uniform(0.5, 2))
    y_z = zp(rng)
    activation = str(rng.choice(list(ACT_CODES)))
    x = i8(rng, (n, h, w, c))
    wdata = i8(rng, (1, kh, kw, cout) if depthwise else (cout, kh, kw, c), -127, 127)
    has_bias = depthwise or bool(rng.integers(0, 5))  # TFLM depthwise crashes without a bias
    bias = rng.integers(-(2**14), 2**14, cout).astype(np.int32)
    b_scales = [f32v(x_s * s) for s in w_s]
    axis = 3 if depthwise else 0

    w_type = qt(w_s, 0, axis=axis) if per_channel else qt(w_s[0], 0)
    b_type = qt(b_scales, 0, width=32, axis=0) if per_channel else qt(b_scales[0], 0, width=32)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape, qt(x_s, x_z)), "x")
    ops = [xv, g.const(wdata, w_type), g.const(bias, b_type) if has_bias else None]
    props = {
        "strides": list(strides),
        "padding": padding,
        "dilations": list(dil),
        "fused_activation": activation,
    }
    cls = nn.DepthwiseConv2DOp if depthwise else nn.Conv2DOp
    y = g.op(cls, ops, tt((n, oh, ow, cout), qt(y_s, y_z)), "y", **props)
    module = g.module(y)

    inputs = [
        T(x.shape, np.int8, [x_s], [x_z]),
        T(wdata.shape, np.int8, w_s if per_channel else [w_s[0]], [0] * (cout if per_channel else 1),
          axis=axis if per_channel else None, data=wdata),
        T((cout,), np.int32, b_scales if per_channel else [b_scales[0]], [0] * (cout if per_channel else 1),
          data=bias) if has_bias else None,
    ]  # fmt: skip
    options = {
        "padding": PAD_CODES[padding],
        "strideH": strides[0],
        "strideW": strides[1],
        "dilationHFactor": dil[0],
        "dilationWFactor": dil[1],
        "fusedActivationFunction": ACT_CODES[activation],
    }
    if depthwise:
        options["depthMultiplier"] = mult
    model = single_op_model(
        "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
        inputs,
        [T((n, oh, ow, cout), np.int8, [y_s], [y_z])],
        "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions",
        options,
    )
    return Case(module, [x], model)


def fc_case(rng: np.random.Generator, large: bool = False) -> Case:
    batch, k, cout = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 12))
    if large:  # K beyond float32-exact accumulation: the float64 BLAS path
        k = int(rng.integers(600, 2000))
    per_channel = bool(rng.integers(0, 2))
    x_s, x_z = scale(rng), zp(rng)
    w_s = [scale(rng, 1e-3, 2e-2) for _ in range(cout)] if per_channel else [scale(rng, 1e-3, 2e-2)] * cout
    y_s = f32v(x_s * float(np.mean(w_s)) * 74 * 73 * math.sqrt(k) / 40 * rng.uniform(0.5, 2))
    y_z = zp(rng)
    activation = str(rng.choice(list(ACT_CODES)))
    x = i8(rng, (batch, k))
    wdata = i8(rng, (cout, k), -127, 127)
    bias = rng.integers(-(2**14), 2**14, cout).astype(np.int32)
    b_scales = [f32v(x_s * s) for s in w_s]
    w_type = qt(w_s, 0, axis=0) if per_channel else qt(w_s[0], 0)
    b_type = qt(b_scales, 0, width=32, axis=0) if per_channel else qt(b_scales[0], 0, width=32)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape, qt(x_s, x_z)), "x")
    y = g.op(
        nn.FullyConnectedOp, [xv, g.const(wdata, w_type), g.const(bias, b_type)],
        tt((batch, cout), qt(y_s, y_z)), "y", fused_activation=activation,
    )  # fmt: skip
    nw = cout if per_channel else 1
    model = single_op_model(
        "FULLY_CONNECTED",
        [
            T(x.shape, np.int8, [x_s], [x_z]),
            T(wdata.shape, np.int8, w_s[:nw], [0] * nw, axis=0 if per_channel else None, data=wdata),
            T((cout,), np.int32, b_scales[:nw], [0] * nw, data=bias),
        ],
        [T((batch, cout), np.int8, [y_s], [y_z])],
        "FullyConnectedOptions",
        {"fusedActivationFunction": ACT_CODES[activation]},
    )
    return Case(g.module(y), [x], model)


def _broadcast_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    rank = int(rng.integers(1, 5))
    out = tuple(int(d) for d in rng.integers(1, 7, rank))
    a = tuple(d if rng.integers(0, 3) else 1 for d in out)
    b = tuple(d if rng.integers(0, 3) else 1 for d in out)[int(rng.integers(0, rank)) :]
    return a, b, tuple(nn.broadcast_shapes(a, b) or ())


def binary_case(rng: np.random.Generator, kind: str) -> Case:
    a_shape, b_shape, out = _broadcast_pair(rng)
    s1, s2 = scale(rng, 1e-2, 0.2), scale(rng, 1e-2, 0.2)
    if kind == "MUL":
        y_s = f32v(s1 * s2 * 74 * 74 / 40 * rng.uniform(0.5, 2))
    else:
        y_s = f32v(max(s1, s2) * rng.uniform(0.8, 3))
    z1, z2, y_z = zp(rng), zp(rng), zp(rng)
    activation = str(rng.choice(list(ACT_CODES)))
    a, b = i8(rng, a_shape), i8(rng, b_shape)
    cls = {"ADD": nn.AddOp, "SUB": nn.SubOp, "MUL": nn.MulOp}[kind]
    g = GraphBuilder()
    av, bv = g.arg(tt(a_shape, qt(s1, z1)), "a"), g.arg(tt(b_shape, qt(s2, z2)), "b")
    y = g.op(cls, [av, bv], tt(out, qt(y_s, y_z)), "y", fused_activation=activation)
    model = single_op_model(
        kind,
        [T(a_shape, np.int8, [s1], [z1]), T(b_shape, np.int8, [s2], [z2])],
        [T(out, np.int8, [y_s], [y_z])],
        f"{kind.capitalize()}Options",
        {"fusedActivationFunction": ACT_CODES[activation]},
    )
    return Case(g.module(y), [a, b], model)


def pool_case(rng: np.random.Generator, kind: str) -> Case:
    while True:
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = str(rng.choice(["same", "valid"]))
        pads = nn.resolve_padding(nn.padding_attr(padding), (h, w), (kh, kw), strides)
        oh, ow = nn.window_output_hw((h, w), (kh, kw), strides, (1, 1), pads)
        if oh >= 1 and ow >= 1:
            break
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 5))
    s, z = scale(rng), zp(rng)
    activation = str(rng.choice(list(ACT_CODES)))
    x = i8(rng, (n, h, w, c))
    g = GraphBuilder()
    xv = g.arg(tt(x.shape, qt(s, z)), "x")
    cls = nn.MaxPool2DOp if kind == "MAX_POOL_2D" else nn.AvgPool2DOp
    y = g.op(
        cls, [xv], tt((n, oh, ow, c), qt(s, z)), "y",
        kernel=[kh, kw], strides=list(strides), padding=padding, fused_activation=activation,
    )  # fmt: skip
    model = single_op_model(
        kind,
        [T(x.shape, np.int8, [s], [z])],
        [T((n, oh, ow, c), np.int8, [s], [z])],
        "Pool2DOptions",
        {
            "padding": PAD_CODES[padding],
            "strideH": strides[0],
            "strideW": strides[1],
            "filterHeight": kh,
            "filterWidth": kw,
            "fusedActivationFunction": ACT_CODES[activation],
        },
    )
    return Case(g.module(y), [x], model)


def mean_case(rng: np.random.Generator) -> Case:
    rank = int(rng.integers(1, 5))
    shape = tuple(int(d) for d in rng.integers(1, 9, rank))
    axes = sorted({int(a) for a in rng.integers(0, rank, int(rng.integers(1, 3)))})
    keep = bool(rng.integers(0, 2))
    out = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keep else tuple(
        d for i, d in enumerate(shape) if i not in axes
    )  # fmt: skip
    s, z = scale(rng), zp(rng)
    same = bool(rng.integers(0, 2))
    y_s, y_z = (s, z) if same else (f32v(s * rng.uniform(0.3, 1.5)), zp(rng))
    x = i8(rng, shape)
    g = GraphBuilder()
    xv = g.arg(tt(shape, qt(s, z)), "x")
    y = g.op(nn.MeanOp, [xv], tt(out, qt(y_s, y_z)), "y", axes=axes, keep_dims=True if keep else None)
    model = single_op_model(
        "MEAN",
        [T(shape, np.int8, [s], [z]), T((len(axes),), np.int32, data=np.array(axes, np.int32))],
        [T(out, np.int8, [y_s], [y_z])],
        "ReducerOptions",
        {"keepDims": keep},
    )
    return Case(g.module(y), [x], model)


def unary_case(rng: np.random.Generator, kind: str) -> Case:
    rank = int(rng.integers(1, 4))
    shape = tuple(int(d) for d in rng.integers(1, 13, rank))
    x_s, x_z = scale(rng, 5e-3, 0.3), zp(rng)
    x = i8(rng, shape)
    props: dict[str, object] = {}
    options_name, options = None, None
    if kind == "SOFTMAX":
        y_s, y_z, cls = 1 / 256, -128, nn.SoftmaxOp
        beta = f32v(rng.uniform(0.3, 3))
        props["beta"] = beta
        options_name, options = "SoftmaxOptions", {"beta": beta}
    elif kind == "LOGISTIC":
        y_s, y_z, cls = 1 / 256, -128, nn.LogisticOp
    elif kind == "TANH":
        y_s, y_z, cls = 1 / 128, 0, nn.TanhOp
    else:
        cls = nn.ReluOp if kind == "RELU" else nn.Relu6Op
        y_s, y_z = (
            (x_s, x_z)
            if kind == "RELU6" or rng.integers(0, 2)
            else (f32v(x_s * rng.uniform(0.3, 2)), zp(rng))
        )
    g = GraphBuilder()
    xv = g.arg(tt(shape, qt(x_s, x_z)), "x")
    y = g.op(cls, [xv], tt(shape, qt(y_s, y_z)), "y", **props)
    model = single_op_model(
        kind, [T(shape, np.int8, [x_s], [x_z])], [T(shape, np.int8, [y_s], [y_z])], options_name, options
    )
    return Case(g.module(y), [x], model)


def quantize_case(rng: np.random.Generator, kind: str) -> Case:
    shape = tuple(int(d) for d in rng.integers(1, 7, int(rng.integers(1, 4))))
    s, z = scale(rng), zp(rng)
    g = GraphBuilder()
    if kind == "QUANTIZE_F32":
        x = (rng.standard_normal(shape) * s * 60).astype(np.float32)
        # exact ties of x / scale
        x.flat[::3] = (np.round(x.flat[::3] / s) + 0.5).astype(np.float32) * np.float32(s)
        xv = g.arg(tt(shape, f32), "x")
        y = g.op(nn.QuantizeOp, [xv], tt(shape, qt(s, z)), "y")
        model = single_op_model("QUANTIZE", [T(shape, np.float32)], [T(shape, np.int8, [s], [z])])
    elif kind == "REQUANTIZE":
        x = i8(rng, shape)
        s2, z2 = f32v(s * rng.uniform(0.3, 3)), zp(rng)
        xv = g.arg(tt(shape, qt(s, z)), "x")
        y = g.op(nn.QuantizeOp, [xv], tt(shape, qt(s2, z2)), "y")
        model = single_op_model("QUANTIZE", [T(shape, np.int8, [s], [z])], [T(shape, np.int8, [s2], [z2])])
    else:
        x = i8(rng, shape)
        xv = g.arg(tt(shape, qt(s, z)), "x")
        y = g.add(nn.DequantizeOp(xv, tt(shape, f32)), "y")
        model = single_op_model("DEQUANTIZE", [T(shape, np.int8, [s], [z])], [T(shape, np.float32)])
    return Case(g.module(y), [x], model)


def matmul_case(rng: np.random.Generator) -> Case:
    m, k, n = (int(d) for d in rng.integers(1, 9, 3))
    batch = tuple(int(d) for d in rng.integers(1, 4, int(rng.integers(0, 3))))
    adj_x, adj_y = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    a_shape = (*batch, *((k, m) if adj_x else (m, k)))
    b_shape = (*batch, *((n, k) if adj_y else (k, n)))
    s1, s2 = scale(rng), scale(rng)
    z1, z2 = zp(rng), zp(rng)
    y_s, y_z = f32v(s1 * s2 * 100 * 100 * math.sqrt(k) / 40 * rng.uniform(0.5, 2)), zp(rng)
    a, b = i8(rng, a_shape), i8(rng, b_shape)
    out = (*batch, m, n)
    g = GraphBuilder()
    av, bv = g.arg(tt(a_shape, qt(s1, z1)), "a"), g.arg(tt(b_shape, qt(s2, z2)), "b")
    y = g.op(
        nn.MatMulOp,
        [av, bv],
        tt(out, qt(y_s, y_z)),
        "y",
        adj_x=True if adj_x else None,
        adj_y=True if adj_y else None,
    )
    model = single_op_model(
        "BATCH_MATMUL",
        [T(a_shape, np.int8, [s1], [z1]), T(b_shape, np.int8, [s2], [z2])],
        [T(out, np.int8, [y_s], [y_z])],
        "BatchMatMulOptions",
        {"adjX": adj_x, "adjY": adj_y},
    )
    return Case(g.module(y), [a, b], model)


def i16(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-32768, 32767, shape, endpoint=True).astype(np.int16)


def int16_case(rng: np.random.Generator, kind: str) -> Case:
    """16-bit activations (zero points 0), 8-bit weights: TFLM's int16x8 kernels."""
    xs = scale(rng, 1e-4, 1e-2)
    g = GraphBuilder()
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        depthwise = kind == "DEPTHWISE_CONV_2D"
        n, h, w, c, k = 1, int(rng.integers(3, 8)), int(rng.integers(3, 8)), int(rng.integers(1, 6)), 3
        cout = c if depthwise else int(rng.integers(1, 6))
        x = i16(rng, (n, h, w, c))
        wd = i8(rng, (1, k, k, cout) if depthwise else (cout, k, k, c), -127, 127)
        ws = [scale(rng, 1e-3, 1e-2) for _ in range(cout)]
        ys = f32v(xs * float(np.mean(ws)) * 18000 * 73 * math.sqrt(k * k * (1 if depthwise else c)) / 9000)
        bias = rng.integers(-(2**20), 2**20, cout).astype(np.int32)
        bs = [f32v(xs * v) for v in ws]
        has_bias = not depthwise  # TFLM's int16 depthwise reads a 64-bit bias
        axis = 3 if depthwise else 0
        xv = g.arg(tt(x.shape, qt(xs, 0, width=16)), "x")
        ops = [
            xv,
            g.const(wd, qt(ws, 0, axis=axis)),
            g.const(bias, qt(bs, 0, width=32, axis=0)) if has_bias else None,
        ]
        cls = nn.DepthwiseConv2DOp if depthwise else nn.Conv2DOp
        y = g.op(cls, ops, tt((n, h, w, cout), qt(ys, 0, width=16)), "y", strides=[1, 1], padding="same")
        ins = [T(x.shape, np.int16, [xs], [0]), T(wd.shape, np.int8, ws, [0] * cout, axis=axis, data=wd)]
        if has_bias:
            ins.append(T((cout,), np.int32, bs, [0] * cout, data=bias))
        opts = {"padding": 0, "strideH": 1, "strideW": 1, "dilationHFactor": 1, "dilationWFactor": 1}
        if depthwise:
            opts["depthMultiplier"] = 1
        name = "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
        model = single_op_model(kind, ins, [T((n, h, w, cout), np.int16, [ys], [0])], name, opts)
        return Case(g.module(y), [x], model)
    if kind == "FULLY_CONNECTED":
        b_, k, nout = int(rng.integers(1, 4)), int(rng.integers(1, 60)), int(rng.integers(1, 8))
        x = i16(rng, (b_, k))
        wd = i8(rng, (nout, k), -127, 127)
        ws = scale(rng, 1e-3, 1e-2)
        ys = f32v(xs * ws * 18000 * 73 * math.sqrt(k) / 9000)
        bias = rng.integers(-(2**20), 2**20, nout).astype(np.int32)
        xv = g.arg(tt(x.shape, qt(xs, 0, width=16)), "x")
        ops = [xv, g.const(wd, qt(ws, 0)), g.const(bias, qt(f32v(xs * ws), 0, width=32))]
        y = g.op(nn.FullyConnectedOp, ops, tt((b_, nout), qt(ys, 0, width=16)), "y")
        ins = [
            T(x.shape, np.int16, [xs], [0]),
            T(wd.shape, np.int8, [ws], [0], data=wd),
            T((nout,), np.int32, [f32v(xs * ws)], [0], data=bias),
        ]
        model = single_op_model(kind, ins, [T((b_, nout), np.int16, [ys], [0])], "FullyConnectedOptions", {})
        return Case(g.module(y), [x], model)
    if kind in ("ADD", "SUB", "MUL", "BATCH_MATMUL"):
        if kind == "BATCH_MATMUL":
            m, k, nn_ = (int(d) for d in rng.integers(1, 8, 3))
            a_shape, b_shape, out = (2, m, k), (2, k, nn_), (2, m, nn_)
        else:
            a_shape, b_shape, out = _broadcast_pair(rng)
        s2 = scale(rng, 1e-4, 1e-2)
        a, b = i16(rng, a_shape), i16(rng, b_shape)
        if kind in ("ADD", "SUB"):
            ys = f32v(max(xs, s2) * rng.uniform(1, 3))
        elif kind == "MUL":
            ys = f32v(xs * s2 * 18000 * 18000 / 30000 * rng.uniform(0.5, 2))
        else:
            ys = f32v(xs * s2 * 18000 * 18000 * math.sqrt(a_shape[-1]) / 30000)
        av, bv = g.arg(tt(a_shape, qt(xs, 0, width=16)), "a"), g.arg(tt(b_shape, qt(s2, 0, width=16)), "b")
        cls = {"ADD": nn.AddOp, "SUB": nn.SubOp, "MUL": nn.MulOp, "BATCH_MATMUL": nn.MatMulOp}[kind]
        y = g.op(cls, [av, bv], tt(out, qt(ys, 0, width=16)), "y")
        ins = [T(a_shape, np.int16, [xs], [0]), T(b_shape, np.int16, [s2], [0])]
        opts_name = "BatchMatMulOptions" if kind == "BATCH_MATMUL" else f"{kind.capitalize()}Options"
        model = single_op_model(kind, ins, [T(out, np.int16, [ys], [0])], opts_name, {})
        return Case(g.module(y), [a, b], model)
    shape = (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
    s2, z2 = scale(rng, 1e-2, 0.1), zp(rng)
    if kind == "QUANTIZE_F32":
        x = (rng.standard_normal(shape) * xs * 9000).astype(np.float32)
        xv = g.arg(tt(shape), "x")
        y = g.op(nn.QuantizeOp, [xv], tt(shape, qt(xs, 0, width=16)), "y")
        model = single_op_model("QUANTIZE", [T(shape, np.float32)], [T(shape, np.int16, [xs], [0])])
        return Case(g.module(y), [x], model)
    if kind == "REQUANTIZE_16_TO_8":
        x = i16(rng, shape)
        xv = g.arg(tt(shape, qt(xs, 0, width=16)), "x")
        y = g.op(nn.QuantizeOp, [xv], tt(shape, qt(s2, z2)), "y")
        model = single_op_model("QUANTIZE", [T(shape, np.int16, [xs], [0])], [T(shape, np.int8, [s2], [z2])])
        return Case(g.module(y), [x], model)
    x = i8(rng, shape)
    xv = g.arg(tt(shape, qt(s2, z2)), "x")
    y = g.op(nn.QuantizeOp, [xv], tt(shape, qt(xs, 0, width=16)), "y")
    model = single_op_model("QUANTIZE", [T(shape, np.int8, [s2], [z2])], [T(shape, np.int16, [xs], [0])])
    return Case(g.module(y), [x], model)


GENERATORS: dict[str, tuple[int, Callable[[np.random.Generator], Case]]] = {
    "conv2d": (24, lambda r: conv_case(r, False)),
    "depthwise_conv2d": (24, lambda r: conv_case(r, True)),
    "fully_connected": (16, fc_case),
    "conv2d_large": (2, lambda r: conv_case(r, False, large=True)),
    "depthwise_large": (2, lambda r: conv_case(r, True, large=True)),
    "fully_connected_large": (3, lambda r: fc_case(r, large=True)),
    "add": (16, lambda r: binary_case(r, "ADD")),
    "sub": (16, lambda r: binary_case(r, "SUB")),
    "mul": (16, lambda r: binary_case(r, "MUL")),
    "max_pool2d": (12, lambda r: pool_case(r, "MAX_POOL_2D")),
    "avg_pool2d": (16, lambda r: pool_case(r, "AVERAGE_POOL_2D")),
    "mean": (16, mean_case),
    "softmax": (12, lambda r: unary_case(r, "SOFTMAX")),
    "logistic": (8, lambda r: unary_case(r, "LOGISTIC")),
    "tanh": (8, lambda r: unary_case(r, "TANH")),
    "relu": (8, lambda r: unary_case(r, "RELU")),
    "relu6": (6, lambda r: unary_case(r, "RELU6")),
    "quantize": (8, lambda r: quantize_case(r, "QUANTIZE_F32")),
    "requantize": (8, lambda r: quantize_case(r, "REQUANTIZE")),
    "dequantize": (6, lambda r: quantize_case(r, "DEQUANTIZE")),
    "matmul": (12, matmul_case),
    "conv2d_i16": (4, lambda r: int16_case(r, "CONV_2D")),
    "depthwise_i16": (4, lambda r: int16_case(r, "DEPTHWISE_CONV_2D")),
    "fully_connected_i16": (4, lambda r: int16_case(r, "FULLY_CONNECTED")),
    "add_i16": (4, lambda r: int16_case(r, "ADD")),
    "sub_i16": (4, lambda r: int16_case(r, "SUB")),
    "mul_i16": (4, lambda r: int16_case(r, "MUL")),
    "matmul_i16": (4, lambda r: int16_case(r, "BATCH_MATMUL")),
    "quantize_i16": (3, lambda r: int16_case(r, "QUANTIZE_F32")),
    "requantize_i16_i8": (3, lambda r: int16_case(r, "REQUANTIZE_16_TO_8")),
    "requantize_i8_i16": (3, lambda r: int16_case(r, "REQUANTIZE_8_TO_16")),
}

CASE_IDS = [f"{name}-{i}" for name, (count, _) in GENERATORS.items() for i in range(count)]


@pytest.fixture(scope="module")
def tflm_results() -> dict[str, tuple[Case, list[np.ndarray] | str]]:
    cases: dict[str, Case] = {}
    for name, (count, gen) in GENERATORS.items():
        rng = np.random.default_rng(sum(map(ord, name)))
        for i in range(count):
            cases[f"{name}-{i}"] = gen(rng)
    outputs = run_tflm([(c.model, c.inputs) for c in cases.values()])
    return {cid: (case, out) for (cid, case), out in zip(cases.items(), outputs, strict=True)}


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bit_exact_with_tflite_micro(tflm_results, case_id):
    case, expected = tflm_results[case_id]
    assert not isinstance(expected, str), f"TFLM rejected the model: {expected}"
    got = run(case.module, case.inputs)["y"]
    want = expected[0].reshape(got.shape)
    assert got.dtype == want.dtype
    mismatches = int(np.count_nonzero(got != want))
    assert mismatches == 0, (
        f"{mismatches}/{got.size} outputs differ; max |diff| {np.abs(got.astype(np.int64) - want).max()}"
    )
