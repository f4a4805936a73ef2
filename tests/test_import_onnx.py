"""ONNX import: layout conversion, transpose cleanup, QDQ/QLinear quantization, names, constant folding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp

from nnopt.backends.numpy import run
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.importers.onnx import import_onnx
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

from .conftest import run_tool, shared_path
from .onnx_build import ZOO, model, node, weights


def graph_of(module: ModuleOp) -> nn.GraphOp:
    (graph,) = [op for op in module.walk() if isinstance(op, nn.GraphOp)]
    return graph


def ops_of(module: ModuleOp, cls: type) -> list:
    return [op for op in graph_of(module).block.ops if isinstance(op, cls)]


def zoo(name: str, cleanup: bool = True) -> tuple[ModuleOp, dict[str, np.ndarray]]:
    data, feeds = ZOO[name](np.random.default_rng(0))
    return import_onnx(data, f"{name}.onnx", cleanup=cleanup), feeds


def test_mnist_imports_nhwc_with_one_interface_transpose() -> None:
    path = shared_path("models", "onnx_mnist8_f32.onnx")
    raw = import_onnx(path.read_bytes(), str(path), cleanup=False)
    clean = import_onnx(path.read_bytes(), str(path))
    g = graph_of(clean)
    assert g.sym_name.data == "CNTKGraph"
    assert g.input_names() == ["Input3"] and g.output_names() == ["Plus214_Output_0"]
    assert nn.shape_of(g.block.args[0]) == (1, 1, 28, 28)
    # Raw: every Conv and MaxPool is wrapped in an NCHW->NHWC / NHWC->NCHW pair.
    assert len(ops_of(raw, nn.TransposeOp)) == 8
    # Cleaned: only the transpose of the NCHW graph input is left; the flatten moved into the weights.
    (t,) = ops_of(clean, nn.TransposeOp)
    assert t.input == g.block.args[0] and nn.ints(t.perm) == (0, 2, 3, 1)
    convs = ops_of(clean, nn.Conv2DOp)
    assert [nn.shape_of(c.output) for c in convs] == [(1, 28, 28, 8), (1, 14, 14, 16)]
    assert all(c.padding.data == "same" for c in convs)  # type: ignore[union-attr]
    (fc,) = ops_of(clean, nn.FullyConnectedOp)
    assert nn.shape_of(fc.weight) == (10, 256)
    # The initializers that were graph inputs (IR version 3) became constants, not arguments.
    assert len(g.block.args) == 1


def test_mnist_cli_keep_layout_and_round_trip(tmp_path: Path) -> None:
    path = shared_path("models", "onnx_mnist8_f32.onnx")
    out = tmp_path / "m.mlir"
    assert run_tool("nnopt", "import", str(path), "-o", str(out)).code == 0
    raw = run_tool("nnopt", "import", str(path), "--keep-layout")
    assert raw.code == 0
    assert out.read_text().count("nn.transpose") == 1 and raw.out.count("nn.transpose") == 8
    again = run_tool("nnopt-opt", str(out))
    assert again.code == 0 and again.out == out.read_text()
    direct = run_tool("nnopt-opt", str(path))
    assert direct.code == 0 and direct.out == out.read_text()


@pytest.mark.parametrize(
    ("name", "raw_count", "clean_count"),
    [
        ("conv_relu_pools", 8, 2),
        ("conv_variants", 10, 6),
        ("classifier", 2, 1),
        ("flatten_classifier", 4, 1),
        ("qlinear", 3, 1),
    ],
)
def test_cleanup_removes_layout_transposes(name: str, raw_count: int, clean_count: int) -> None:
    raw, feeds = zoo(name, cleanup=False)
    clean, _ = zoo(name)
    assert len(ops_of(raw, nn.TransposeOp)) == raw_count
    assert len(ops_of(clean, nn.TransposeOp)) == clean_count
    # Moving data around never changes results.
    (a,) = run(raw, feeds).values()
    (b,) = run(clean, feeds).values()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * float(np.abs(a).max()))


def test_conv_variants_map_to_nn_ops() -> None:
    module, _ = zoo("conv_variants", cleanup=False)
    convs = ops_of(module, nn.Conv2DOp)
    (dw,) = ops_of(module, nn.DepthwiseConv2DOp)
    assert convs[0].padding.data == "same"  # type: ignore[union-attr]
    assert nn.ints(convs[1].padding) == (1, 0, 1, 0)  # type: ignore[arg-type]  # SAME_LOWER: extra before
    assert convs[2].dilation_values() == (2, 2)
    assert nn.shape_of(convs[3].weight) == (6, 3, 3, 2)  # grouped: OHWI with Cin/groups
    assert nn.shape_of(dw.weight) == (1, 3, 3, 8) and dw.depth_multiplier() == 2


def test_constant_subgraphs_are_folded() -> None:
    module, _ = zoo("flatten_classifier")
    names = {op.name for op in graph_of(module).block.ops}
    assert names == {"nn.const", "nn.transpose", "nn.conv2d", "nn.relu", "nn.max_pool2d", "nn.reshape",
                     "nn.fully_connected", "nn.add", "nn.output"}  # fmt: skip


def test_qdq_weights_stay_int8_through_dequantize() -> None:
    module, _ = zoo("qdq_conv")
    (conv,) = ops_of(module, nn.Conv2DOp)
    deq = conv.weight.owner
    assert isinstance(deq, nn.DequantizeOp)
    wq = nn.elem_of(deq.input)
    assert isinstance(wq, UniformQuantizedType) and wq.axis == 0 and wq.width == 8
    assert list(wq.scale_values) == [float(np.float32(s)) for s in (0.01, 0.02, 0.005, 0.03)]
    (q,) = ops_of(module, nn.QuantizeOp)
    assert q.rounding_mode() == "onnx_rint"
    xq = nn.elem_of(q.output)
    assert isinstance(xq, UniformQuantizedType) and (xq.scale, xq.zero_point) == (float(np.float32(0.02)), 3)


def test_qlinear_ops_are_integer_ops_with_onnx_rounding() -> None:
    module, _ = zoo("qlinear")
    (conv,) = ops_of(module, nn.Conv2DOp)
    (fc,) = ops_of(module, nn.FullyConnectedOp)
    for op in (conv, fc):
        assert nn.is_quantized(op.output) and op.rounding_mode() == "onnx_rint" and op.qparams is not None
    assert conv.bias is not None
    bq = nn.elem_of(conv.bias)
    xq = nn.elem_of(conv.input)
    assert isinstance(bq, UniformQuantizedType) and isinstance(xq, UniformQuantizedType)
    assert bq.width == 32 and bq.axis == 0
    ws = [float(np.float32(s)) for s in (0.01, 0.02, 0.015, 0.03)]
    assert list(bq.scale_values) == [xq.scale * s for s in ws]


def test_unsupported_forms_give_located_errors() -> None:
    rng = np.random.default_rng(0)
    cases = {
        "its weight (input 1) must be a constant": model(
            [node("Conv", ["x", "w"], ["y"])], {"x": (1, 1, 4, 4), "w": (1, 1, 3, 3)}, ["y"]
        ),
        "pad mode 'reflect' is not supported": model(
            [node("Pad", ["x", "p"], ["y"], mode="reflect")],
            {"x": (1, 4)},
            ["y"],
            {"p": np.array([0, 1, 0, 1])},
        ),
        "ceil_mode=1 changes the output size": model(
            [node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)],
            {"x": (1, 1, 5, 5)},
            ["y"],
        ),
        "strides must be two positive integers": model(
            [node("Conv", ["x", "w"], ["y"], strides=[0, 1])],
            {"x": (1, 1, 4, 4)},
            ["y"],
            {"w": weights(rng, 1, 1, 3, 3)},
        ),
        "attribute 'group' must be an integer": model(
            [node("Conv", ["x", "w"], ["y"], group=1.5)],
            {"x": (1, 1, 4, 4)},
            ["y"],
            {"w": weights(rng, 1, 1, 3, 3)},
        ),
    }
    for fragment, data in cases.items():
        with pytest.raises(UserError) as info:
            import_onnx(data, "bad.onnx")
        assert fragment in info.value.message, info.value.message
        assert (info.value.location or "").startswith("bad.onnx:0:0 (y)")


# --------------------------------------------------------------------------
# Property: the transpose cleanup preserves results on random NCHW chains
# --------------------------------------------------------------------------

LAYERS = st.lists(
    st.sampled_from(["conv", "relu", "bias", "pool", "sigmoid", "pad", "concat", "mean"]),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None)
@given(layers=LAYERS, seed=st.integers(0, 2**16))
def test_propagate_transposes_preserves_results(layers: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    nodes, inits = [], {}
    cur, c = "x", 3
    for i, kind in enumerate(layers):
        out = f"t{i}"
        if kind == "conv":
            inits[f"w{i}"] = weights(rng, 4, c, 3, 3)
            nodes.append(node("Conv", [cur, f"w{i}"], [out], pads=[1, 1, 1, 1]))
            c = 4
        elif kind == "relu":
            nodes.append(node("Relu", [cur], [out]))
        elif kind == "sigmoid":
            nodes.append(node("Sigmoid", [cur], [out]))
        elif kind == "bias":
            inits[f"b{i}"] = weights(rng, c, 1, 1)
            nodes.append(node("Add", [cur, f"b{i}"], [out]))
        elif kind == "pool":
            nodes.append(node("MaxPool", [cur], [out], kernel_shape=[2, 2], pads=[0, 0, 1, 1]))
        elif kind == "pad":
            inits[f"p{i}"] = np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64)
            nodes.append(node("Pad", [cur, f"p{i}"], [out]))
        elif kind == "concat":
            nodes.append(node("Concat", [cur, cur], [out], axis=1))
            c *= 2
        else:
            nodes.append(node("ReduceMean", [cur], [out], axes=[2], keepdims=1))
        cur = out
    nodes.append(node("Flatten", [cur], ["flat"]))
    data = model(nodes, {"x": (1, 3, 6, 6)}, ["flat"], inits)
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    (a,) = run(import_onnx(data, "p.onnx", cleanup=False), {"x": x}).values()
    clean = import_onnx(data, "p.onnx")
    (b,) = run(clean, {"x": x}).values()
    np.testing.assert_array_equal(a, b)
    assert len(ops_of(clean, nn.TransposeOp)) <= 2
