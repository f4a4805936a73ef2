"""Float path of the numpy interpreter against independent references (onnx.reference, direct formulas)."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from xdsl.dialects.builtin import StringAttr

from nnopt.backends.numpy import prepare, run, value_names
from nnopt.compiler.diagnostics import UserError
from nnopt.dialects import nn
from tests.q_build import GraphBuilder, graph_of, tt

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACTS = {"none": (-np.inf, np.inf), "relu": (0, np.inf), "relu6": (0, 6), "relu_n1_to_1": (-1, 1)}


def onnx_run(op_type: str, inputs: dict[str, np.ndarray], **attrs) -> np.ndarray:
    """Run one ONNX node with onnx.reference."""
    node = helper.make_node(op_type, list(inputs), ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, None) for k in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return ReferenceEvaluator(model).run(None, inputs)[0]


def act(y: np.ndarray, activation: str) -> np.ndarray:
    lo, hi = ACTS[activation]
    return np.clip(y, lo, hi)


def rand(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@st.composite
def window_cases(draw, depthwise: bool = False):
    n = draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["same", "valid", "explicit"]))
    pads = [draw(st.integers(0, 2)) for _ in range(4)] if padding == "explicit" else None
    if depthwise:
        c = draw(st.integers(1, 4))
        groups, cout = c, c * draw(st.integers(1, 3))
    else:
        groups = draw(st.integers(1, 3))
        c = groups * draw(st.integers(1, 3))
        cout = groups * draw(st.integers(1, 3))
    return {
        "n": n, "h": h, "w": w, "c": c, "cout": cout, "groups": groups, "k": (kh, kw), "s": (sh, sw),
        "d": (dh, dw), "padding": padding, "pads": pads,
        "bias": draw(st.booleans()), "act": draw(st.sampled_from(list(ACTS))), "seed": draw(st.integers(0, 2**31)),
    }  # fmt: skip


def _geometry(case):
    pad_attr = nn.padding_attr(case["pads"] if case["padding"] == "explicit" else case["padding"])
    pads = nn.resolve_padding(pad_attr, (case["h"], case["w"]), case["k"], case["s"], case["d"])
    oh, ow = nn.window_output_hw((case["h"], case["w"]), case["k"], case["s"], case["d"], pads)
    return pad_attr, pads, oh, ow


def _conv_reference(x, w_ohwi, b, pads, case, groups):
    """onnx.reference Conv in NCHW with explicit (top, left, bottom, right) pads."""
    top, bottom, left, right = pads
    y = onnx_run(
        "Conv",
        {"x": x.transpose(0, 3, 1, 2).copy(), "w": w_ohwi.transpose(0, 3, 1, 2).copy()},
        pads=[top, left, bottom, right],
        strides=list(case["s"]),
        dilations=list(case["d"]),
        group=groups,
    ).transpose(0, 2, 3, 1)
    if b is not None:
        y = y + b
    return act(y, case["act"])


@SETTINGS
@given(window_cases())
def test_conv2d_matches_onnx_reference(case):
    pad_attr, pads, oh, ow = _geometry(case)
    assume(oh >= 1 and ow >= 1)
    rng = np.random.default_rng(case["seed"])
    cin_g = case["c"] // case["groups"]
    x = rand(rng, (case["n"], case["h"], case["w"], case["c"]))
    w = rand(rng, (case["cout"], *case["k"], cin_g))
    b = rand(rng, (case["cout"],)) if case["bias"] else None
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    operands = [xv, g.const(w), g.const(b) if b is not None else None]
    y = g.op(
        nn.Conv2DOp, operands, tt((case["n"], oh, ow, case["cout"])),
        strides=list(case["s"]), padding=pad_attr, dilations=list(case["d"]), fused_activation=case["act"],
    )  # fmt: skip
    got = run(g.module(y), [x])
    expected = _conv_reference(x, w, b, pads, case, case["groups"])
    np.testing.assert_allclose(next(iter(got.values())), expected, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(window_cases(depthwise=True))
def test_depthwise_conv2d_matches_onnx_grouped_conv(case):
    pad_attr, pads, oh, ow = _geometry(case)
    assume(oh >= 1 and ow >= 1)
    rng = np.random.default_rng(case["seed"])
    x = rand(rng, (case["n"], case["h"], case["w"], case["c"]))
    w = rand(rng, (1, *case["k"], case["cout"]))
    b = rand(rng, (case["cout"],)) if case["bias"] else None
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    y = g.op(
        nn.DepthwiseConv2DOp, [xv, g.const(w), g.const(b) if b is not None else None],
        tt((case["n"], oh, ow, case["cout"])),
        strides=list(case["s"]), padding=pad_attr, dilations=list(case["d"]), fused_activation=case["act"],
    )  # fmt: skip
    got = next(iter(run(g.module(y), {"x": x}).values()))
    # depthwise = grouped conv with one group per input channel, output channel o reads input o // M
    w_ohwi = w[0].transpose(2, 0, 1)[..., None]
    expected = _conv_reference(x, w_ohwi, b, pads, case, case["c"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def pool_reference(x: np.ndarray, kernel, strides, pads, out_hw, kind: str) -> np.ndarray:
    """TFLite pooling, one output at a time over the window's in-bounds cells."""
    n, h, w, c = x.shape
    out = np.zeros((n, *out_hw, c), np.float64)
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            y0, x0 = oy * strides[0] - pads[0], ox * strides[1] - pads[2]
            rows = [y for y in range(y0, y0 + kernel[0]) if 0 <= y < h]
            cols = [v for v in range(x0, x0 + kernel[1]) if 0 <= v < w]
            cells = x[:, rows][:, :, cols].astype(np.float64)
            out[:, oy, ox] = cells.max(axis=(1, 2)) if kind == "max" else cells.mean(axis=(1, 2))
    return out


@SETTINGS
@given(window_cases(), st.sampled_from(["max", "avg"]))
def test_pools_match_direct_reference(case, kind):
    pad_attr, pads, oh, ow = _geometry({**case, "d": (1, 1)})
    assume(oh >= 1 and ow >= 1)
    # a window lying entirely in padding has no TFLite meaning
    assume(all(p < k for p, k in zip(pads, (case["k"][0],) * 2 + (case["k"][1],) * 2, strict=True)))
    rng = np.random.default_rng(case["seed"])
    x = rand(rng, (case["n"], case["h"], case["w"], case["c"]))
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    cls = nn.MaxPool2DOp if kind == "max" else nn.AvgPool2DOp
    y = g.op(
        cls, [xv], tt((case["n"], oh, ow, case["c"])),
        kernel=list(case["k"]), strides=list(case["s"]), padding=pad_attr, fused_activation=case["act"],
    )  # fmt: skip
    got = next(iter(run(g.module(y), [x]).values()))
    ref = pool_reference(x, case["k"], case["s"], pads, (oh, ow), kind)
    np.testing.assert_allclose(got, act(ref, case["act"]), rtol=1e-5, atol=1e-6)


def test_avg_pool_counts_only_unpadded_cells():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    y = g.op(nn.AvgPool2DOp, [xv], tt((1, 3, 3, 1)), kernel=[3, 3], strides=[1, 1], padding="same")
    got = next(iter(run(g.module(y), [x]).values()))[0, :, :, 0]
    assert got[0, 0] == pytest.approx((1 + 2 + 4 + 5) / 4)  # corner: 4 valid cells, not 9
    assert got[1, 1] == pytest.approx(5.0)


def test_same_padding_puts_the_extra_cell_after():
    # TFLite SAME: 4x4 input, 2x2 kernel, stride 2 -> no padding; 5x5, k=2, s=2 -> pad bottom/right by 1
    x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    y = g.op(nn.MaxPool2DOp, [xv], tt((1, 3, 3, 1)), kernel=[2, 2], strides=[2, 2], padding="same")
    got = next(iter(run(g.module(y), [x]).values()))[0, :, :, 0]
    np.testing.assert_array_equal(got, [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


@SETTINGS
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.integers(1, 6),
    st.integers(1, 5),
    st.booleans(),
    st.booleans(),
    st.sampled_from(list(ACTS)),
    st.integers(0, 2**31),
)
def test_fully_connected(lead, k, cout, keep, bias, activation, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, (*lead, k))
    w = rand(rng, (cout, k))
    b = rand(rng, (cout,)) if bias else None
    out_shape = nn.FullyConnectedOp.result_shape(x.shape, w.shape, keep)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    y = g.op(
        nn.FullyConnectedOp, [xv, g.const(w), g.const(b) if b is not None else None], tt(out_shape),
        keep_num_dims=True if keep else None, fused_activation=activation,
    )  # fmt: skip
    got = next(iter(run(g.module(y), [x]).values()))
    expected = np.einsum("rk,ok->ro", x.reshape(-1, k).astype(np.float64), w.astype(np.float64))
    if b is not None:
        expected = expected + b
    np.testing.assert_allclose(got, act(expected, activation).reshape(out_shape), rtol=1e-5, atol=1e-5)


@SETTINGS
@given(
    st.lists(st.integers(1, 3), max_size=2),
    st.lists(st.integers(1, 3), max_size=2),
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 4),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_matmul_broadcast_and_adjoints(batch_a, batch_b, m, k, n, adj_x, adj_y, seed):
    a_batch = batch_a
    batch = nn.broadcast_shapes(a_batch, batch_b)
    assume(batch is not None)
    rng = np.random.default_rng(seed)
    a = rand(rng, (*a_batch, *((k, m) if adj_x else (m, k))))
    b = rand(rng, (*batch_b, *((n, k) if adj_y else (k, n))))
    g = GraphBuilder()
    av, bv = g.arg(tt(a.shape), "a"), g.arg(tt(b.shape), "b")
    y = g.op(
        nn.MatMulOp,
        [av, bv],
        tt((*batch, m, n)),
        adj_x=True if adj_x else None,
        adj_y=True if adj_y else None,
    )
    got = next(iter(run(g.module(y), {"a": a, "b": b}).values()))
    a2 = np.swapaxes(a, -1, -2) if adj_x else a
    b2 = np.swapaxes(b, -1, -2) if adj_y else b
    a3 = np.broadcast_to(a2, (*batch, m, k)).astype(np.float64)
    b3 = np.broadcast_to(b2, (*batch, k, n)).astype(np.float64)
    expected = (a3[..., :, :, None] * b3[..., None, :, :]).sum(axis=-2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(
    st.sampled_from([nn.AddOp, nn.SubOp, nn.MulOp]),
    st.lists(st.integers(1, 3), min_size=0, max_size=4),
    st.data(),
    st.sampled_from(list(ACTS)),
)
def test_binary_broadcasting(cls, shape, data, activation):
    other = [data.draw(st.sampled_from([1, d])) for d in shape][data.draw(st.integers(0, len(shape))) :]
    rng = np.random.default_rng(0)
    a, b = rand(rng, shape), rand(rng, other)
    g = GraphBuilder()
    av, bv = g.arg(tt(a.shape), "a"), g.arg(tt(b.shape), "b")
    out_shape = nn.broadcast_shapes(a.shape, b.shape)
    y = g.op(cls, [bv, av], tt(out_shape), fused_activation=activation)
    got = next(iter(run(g.module(y), {"a": a, "b": b}).values()))
    ref = {nn.AddOp: lambda p, q: p + q, nn.SubOp: lambda p, q: p - q, nn.MulOp: lambda p, q: p * q}[cls]
    expected = act(ref(b.astype(np.float64), a.astype(np.float64)), activation)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("cls", "props", "fn"),
    [
        (nn.ReluOp, {}, lambda x: np.maximum(x, 0)),
        (nn.Relu6Op, {}, lambda x: np.minimum(np.maximum(x, 0), 6)),
        (nn.ClampOp, {"min": -0.5, "max": 1.5}, lambda x: np.minimum(np.maximum(x, -0.5), 1.5)),
        (nn.LogisticOp, {}, lambda x: 1 / (1 + np.exp(-x))),
        (nn.TanhOp, {}, np.tanh),
    ],
)
def test_unary(cls, props, fn):
    x = np.linspace(-8, 8, 97, dtype=np.float32).reshape(1, 97)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    y = g.op(cls, [xv], tt(x.shape), **props)
    got = next(iter(run(g.module(y), [x]).values()))
    np.testing.assert_allclose(got, fn(x.astype(np.float64)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("beta", [1.0, 0.5, 3.0])
def test_softmax_with_beta(beta):
    rng = np.random.default_rng(1)
    x = rand(rng, (2, 3, 10)) * 4
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    y = g.op(nn.SoftmaxOp, [xv], tt(x.shape), beta=beta)
    got = next(iter(run(g.module(y), [x]).values()))
    e = np.exp(beta * x.astype(np.float64))
    np.testing.assert_allclose(got, e / e.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data(), st.booleans())
def test_mean(shape, data, keep):
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape)))
    norm = sorted({a % len(shape) for a in axes})
    out_shape = [1 if i in norm else d for i, d in enumerate(shape)] if keep else [
        d for i, d in enumerate(shape) if i not in norm
    ]  # fmt: skip
    x = rand(np.random.default_rng(2), shape)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    y = g.op(nn.MeanOp, [xv], tt(out_shape), axes=axes, keep_dims=True if keep else None)
    got = next(iter(run(g.module(y), [x]).values()))
    expected = x.astype(np.float64).mean(axis=tuple(norm), keepdims=keep)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_data_movement_ops():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    g = GraphBuilder()
    xv = g.arg(tt(x.shape), "x")
    t = g.op(nn.TransposeOp, [xv], tt((4, 2, 3)), "t", perm=[2, 0, 1])
    r = g.op(nn.ReshapeOp, [t], tt((8, 3)), "r")
    p = g.op(nn.PadOp, [r], tt((9, 5)), "p", pads=[1, 0, 0, 2], value=-1.5)
    c = g.op(nn.ConcatOp, [[p, p]], tt((9, 10)), "c", axis=1, fused_activation="relu")
    k = g.add(nn.CopyOp(c), "k")
    out = run(g.module(t, r, p, c, k), [x])
    np.testing.assert_array_equal(out["k"], out["c"])
    assert not np.shares_memory(out["k"], out["c"])
    np.testing.assert_array_equal(out["t"], x.transpose(2, 0, 1))
    np.testing.assert_array_equal(out["r"], x.transpose(2, 0, 1).reshape(8, 3))
    expected_p = np.pad(x.transpose(2, 0, 1).reshape(8, 3), [(1, 0), (0, 2)], constant_values=-1.5)
    np.testing.assert_array_equal(out["p"], expected_p)
    np.testing.assert_array_equal(out["c"], np.maximum(np.concatenate([expected_p] * 2, axis=1), 0))


# --------------------------------------------------------------------------
# API behaviour: inputs, outputs, graphs, errors, dumps, lifetimes
# --------------------------------------------------------------------------


def _two_graphs():
    g1 = GraphBuilder("first")
    x = g1.arg(tt((2, 2)), "x")
    m1 = g1.module(g1.op(nn.ReluOp, [x], tt((2, 2)), "y"))
    g2 = GraphBuilder("second")
    a = g2.arg(tt((3,)), "a")
    b = g2.arg(tt((3,)), "b")
    m2 = g2.module(g2.op(nn.AddOp, [a, b], tt((3,)), "s"), g2.op(nn.MulOp, [a, b], tt((3,)), "p"))
    graph2 = graph_of(m2)
    graph2.detach()
    m1.body.block.add_op(graph2)
    return m1


def test_outputs_keyed_by_output_names_and_inputs_by_name_or_position():
    m = _two_graphs()
    a, b = np.array([1, -2, 3], np.float32), np.array([4, 5, -6], np.float32)
    by_name = run(m, {"b": b, "a": a}, graph="second")
    positional = run(m, [a, b], graph="@second")
    assert list(by_name) == ["s", "p"]
    for out in (by_name, positional):
        np.testing.assert_array_equal(out["s"], a + b)
        np.testing.assert_array_equal(out["p"], a * b)
    np.testing.assert_array_equal(
        run(m, [np.array([[-1, 2], [3, -4]], np.float32)], graph="first")["y"], [[0, 2], [3, 0]]
    )


@pytest.mark.parametrize(
    ("inputs", "graph", "message"),
    [
        ([np.zeros(3, np.float32)], None, "holds 2 graphs"),
        ([np.zeros(3, np.float32)], "third", "no graph named 'third'"),
        ([np.zeros(3, np.float32)], "second", "takes 2 inputs, 1 given"),
        ({"a": np.zeros(3, np.float32)}, "second", "missing 'b'"),
        ({"a": np.zeros(3), "b": np.zeros(3), "c": 1}, "second", "unknown 'c'"),
        ([np.zeros(3), np.zeros(4)], "second", "input 'b' has shape [4], the graph expects [3]"),
        ([np.zeros(3), np.zeros(3, np.int32)], "second", "input 'b' must be a float array"),
    ],
)
def test_input_validation_errors(inputs, graph, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run(_two_graphs(), inputs, graph=graph)


def test_unsupported_op_names_the_op_and_location():
    from xdsl.dialects import arith
    from xdsl.dialects.builtin import FileLineColLoc, IntAttr, StringAttr, i32

    g = GraphBuilder()
    x = g.arg(tt((2,)), "x")
    c = arith.ConstantOp.from_int_and_width(1, i32)
    c.location = FileLineColLoc(StringAttr("model.mlir"), IntAttr(3), IntAttr(5))
    g.block.add_op(c)
    with pytest.raises(UserError) as info:
        run(g.module(x), [np.zeros(2, np.float32)])
    assert (
        str(info.value)
        == "model.mlir:3:5: error: 'arith.constant' op is not supported by the numpy interpreter"
    )


def test_dump_sees_every_result_with_printer_names():
    g = GraphBuilder()
    x = g.arg(tt((4,)), "x")
    r1 = g.op(nn.ReluOp, [x], tt((4,)))
    r2 = g.op(nn.Relu6Op, [r1], tt((4,)), "act")
    r3 = g.op(nn.AddOp, [r2, r1], tt((4,)))
    module = g.module(r3)
    seen: list[tuple[str, str, list[float]]] = []
    run(
        module,
        [np.array([-1, 2, 7, 3], np.float32)],
        dump=lambda n, op, v: seen.append((n, op.name, v.tolist())),
    )
    assert seen == [
        ("%0", "nn.relu", [0, 2, 7, 3]),
        ("act", "nn.relu6", [0, 2, 6, 3]),
        ("%1", "nn.add", [0, 4, 13, 6]),
    ]
    printed = str(module)
    assert "%0 = nn.relu" in printed and "%act = nn.relu6" in printed and "%1 = nn.add" in printed
    assert set(value_names(graph_of(module)).values()) == {"x", "%0", "act", "%1"}


def test_values_are_freed_after_their_last_use():
    """A chain x -> a -> b -> c -> d where every value dies once its consumer has run."""
    g = GraphBuilder()
    x = g.arg(tt((64,)), "x")
    a = g.op(nn.ReluOp, [x], tt((64,)), "a")
    b = g.op(nn.AddOp, [a, a], tt((64,)), "b")
    unused = g.op(nn.TanhOp, [b], tt((64,)), "unused")
    c = g.op(nn.MulOp, [b, b], tt((64,)), "c")
    d = g.op(nn.Relu6Op, [c], tt((64,)), "d")
    del unused
    refs: dict[str, weakref.ref] = {}
    alive_at: dict[str, set[str]] = {}

    def dump(name, op, value):
        gc.collect()
        alive_at[name] = {k for k, r in refs.items() if r() is not None}
        refs[name] = weakref.ref(value)

    out = run(g.module(d, b), [np.ones(64, np.float32)], dump=dump)
    assert alive_at["b"] == {"a"}  # a is b's operand, still referenced while b is computed
    assert alive_at["unused"] == {"b"}  # a died after its last use (b)
    assert alive_at["c"] == {"b"}  # 'unused' had no users: freed right after its dump
    assert alive_at["d"] == {"b", "c"}
    np.testing.assert_array_equal(out["d"], np.full(64, 4.0))
    assert set(out) == {"d", "b"}  # b is a graph output: kept to the end


def test_run_reuses_its_preparation_until_the_graph_changes():
    g = GraphBuilder()
    x = g.arg(tt((3,)), "x")
    w = g.const(np.array([1.0, 2.0, 3.0], np.float32), name="w")
    y = g.op(nn.MulOp, [x, w], tt((3,)), "y")
    module = g.module(y)
    ones = np.ones(3, np.float32)
    assert run(module, [ones])["y"].tolist() == [1, 2, 3]
    program = prepare(module)
    assert run(module, [ones])["y"].tolist() == [1, 2, 3]
    # replace the constant's value: the next run sees the new weights
    const = w.owner
    from xdsl.dialects.builtin import BytesAttr, DenseIntOrFPElementsAttr

    const.value = DenseIntOrFPElementsAttr(
        const.value.type, BytesAttr(np.array([5, 6, 7], np.float32).tobytes())
    )
    assert run(module, [ones])["y"].tolist() == [5, 6, 7]
    # a changed fused activation too
    y.owner.fused_activation = StringAttr("relu6")
    assert run(module, [ones])["y"].tolist() == [5, 6, 6]
    # an explicit Program keeps what it prepared
    assert program.run([ones])["y"].tolist() == [1, 2, 3]


def test_run_sees_renamed_values():
    g = GraphBuilder()
    x = g.arg(tt((2,)), "x")
    y = g.op(nn.ReluOp, [x], tt((2,)), "y")
    module = g.module(y)
    names: list[str] = []
    run(module, [np.ones(2, np.float32)], dump=lambda n, op, v: names.append(n))
    y.name_hint = "z"
    out = run(module, [np.ones(2, np.float32)], dump=lambda n, op, v: names.append(n))
    assert names == ["y", "z"] and list(out) == ["z"]
