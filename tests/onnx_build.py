"""Small ONNX models for tests, built with `onnx.helper`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, Sequence[int]],
    outputs: Sequence[str],
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 13,
    name: str = "g",
) -> bytes:
    """A float32 ONNX model; outputs are declared without shapes (ONNX allows it)."""
    graph = helper.make_graph(
        list(nodes),
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (inits or {}).items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: object) -> onnx.NodeProto:
    """One node (named after its first output)."""
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op}_{outputs[0]}", **attrs)


def weights(rng: np.random.Generator, *shape: int, scale: float = 0.5) -> np.ndarray:
    """Random float32 weights."""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# --------------------------------------------------------------------------
# A zoo of small models covering the importer's op mapping
# --------------------------------------------------------------------------

Case = tuple[bytes, dict[str, np.ndarray]]


def _x(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def conv_relu_pools(rng: np.random.Generator) -> Case:
    """Conv (pads, bias) -> Relu -> MaxPool (pads) -> AveragePool both count_include_pad modes."""
    nodes = [
        node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 2, 1, 0]),
        node("Relu", ["c"], ["r"]),
        node("MaxPool", ["r"], ["m"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        node("AveragePool", ["m"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("AveragePool", ["m"], ["ai"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
        node("Add", ["a", "ai"], ["y"]),
    ]
    inits = {"w": weights(rng, 4, 3, 3, 3), "b": weights(rng, 4)}
    return model(nodes, {"x": (1, 3, 9, 8)}, ["y"], inits), {"x": _x(rng, 1, 3, 9, 8)}


def conv_variants(rng: np.random.Generator) -> Case:
    """Strided SAME_UPPER/SAME_LOWER, dilated, depthwise (multiplier 2) and grouped convolutions, concatenated."""
    nodes = [
        node("Conv", ["x", "w1"], ["a"], auto_pad="SAME_UPPER", strides=[2, 2]),
        node("Conv", ["x", "w1"], ["b"], auto_pad="SAME_LOWER", strides=[2, 2]),
        node("Conv", ["x", "w2"], ["c"], dilations=[2, 2], strides=[2, 2], pads=[2, 2, 2, 2]),
        node("Conv", ["x", "wd", "bd"], ["d"], group=4, strides=[2, 2], pads=[1, 1, 1, 1]),
        node("Conv", ["x", "wg"], ["e"], group=2, strides=[2, 2], pads=[1, 1, 1, 1]),
        node("Concat", ["a", "b", "c", "d", "e"], ["y"], axis=1),
    ]
    inits = {
        "w1": weights(rng, 5, 4, 3, 3),
        "w2": weights(rng, 3, 4, 3, 3),
        "wd": weights(rng, 8, 1, 3, 3),
        "bd": weights(rng, 8),
        "wg": weights(rng, 6, 2, 3, 3),
    }
    return model(nodes, {"x": (1, 4, 8, 8)}, ["y"], inits), {"x": _x(rng, 1, 4, 8, 8)}


def classifier(rng: np.random.Generator) -> Case:
    """Conv -> BatchNorm -> Clip(0, 6) -> GlobalAveragePool -> Flatten -> Gemm(transB, alpha, beta) -> Softmax."""
    nodes = [
        node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["n"], epsilon=1e-3),
        node("Clip", ["n", "lo", "hi"], ["k"]),
        node("GlobalAveragePool", ["k"], ["g"]),
        node("Flatten", ["g"], ["f"]),
        node("Gemm", ["f", "fw", "fb"], ["z"], transB=1, alpha=0.5, beta=2.0),
        node("Softmax", ["z"], ["y"]),
    ]
    inits = {
        "w": weights(rng, 6, 2, 3, 3),
        "s": weights(rng, 6) + 1,
        "bb": weights(rng, 6),
        "mu": weights(rng, 6),
        "var": np.abs(weights(rng, 6)) + 0.5,
        "lo": np.array(0.0, np.float32),
        "hi": np.array(6.0, np.float32),
        "fw": weights(rng, 5, 6),
        "fb": weights(rng, 5),
    }
    return model(nodes, {"x": (1, 2, 7, 7)}, ["y"], inits), {"x": _x(rng, 1, 2, 7, 7)}


def flatten_classifier(rng: np.random.Generator) -> Case:
    """The PyTorch export pattern: Shape/Gather/Unsqueeze/Concat feeding Reshape, then MatMul + Add."""
    nodes = [
        node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
        node("Relu", ["c"], ["r"]),
        node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Shape", ["p"], ["shape"]),
        node("Gather", ["shape", "zero"], ["batch"], axis=0),
        node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
        node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        node("Reshape", ["p", "target"], ["f"]),
        node("MatMul", ["f", "fw"], ["mm"]),
        node("Add", ["mm", "fb"], ["y"]),
    ]
    inits = {
        "w": weights(rng, 4, 3, 3, 3),
        "zero": np.array(0, np.int64),
        "axes0": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
        "fw": weights(rng, 36, 3),
        "fb": weights(rng, 3),
    }
    return model(nodes, {"x": (1, 3, 8, 8)}, ["y"], inits), {"x": _x(rng, 1, 3, 8, 8)}


def elementwise(rng: np.random.Generator) -> Case:
    """Sub/Mul/Div by constants, Sigmoid, Tanh, Pad, Transpose, ReduceMean, Squeeze/Unsqueeze, MatMul of activations."""
    nodes = [
        node("Sub", ["x", "c1"], ["a"]),
        node("Mul", ["a", "c2"], ["b"]),
        node("Div", ["b", "c3"], ["d"]),
        node("Sigmoid", ["d"], ["s"]),
        node("Tanh", ["x"], ["t"]),
        node("Add", ["s", "t"], ["u"]),
        node("Pad", ["u", "pads", "pv"], ["p"]),
        node("Transpose", ["p"], ["q"], perm=[0, 2, 1]),
        node("ReduceMean", ["q"], ["m"], axes=[1], keepdims=0),
        node("Unsqueeze", ["m", "ax2"], ["m3"]),
        node("MatMul", ["q", "m3"], ["mm"]),
        node("Squeeze", ["mm", "ax2"], ["y"]),
    ]
    inits = {
        "c1": weights(rng, 4),
        "c2": weights(rng, 3, 1),
        "c3": np.array([2.0, -0.5, 4.0, 0.25], np.float32),
        "pads": np.array([0, 1, 0, 0, 1, 2], np.int64),
        "pv": np.array(0.5, np.float32),
        "ax2": np.array([2], np.int64),
    }
    return model(nodes, {"x": (1, 3, 4)}, ["y"], inits), {"x": _x(rng, 1, 3, 4)}


def softmax_axes(rng: np.random.Generator) -> Case:
    """Softmax over a middle axis (opset 13: transposed to the last axis) and a batched MatMul with a constant."""
    nodes = [
        node("Softmax", ["x"], ["s"], axis=1),
        node("MatMul", ["s", "w"], ["y"]),
    ]
    inits = {"w": weights(rng, 5, 2)}
    return model(nodes, {"x": (2, 3, 5)}, ["y"], inits), {"x": _x(rng, 2, 3, 5)}


def legacy_opset(rng: np.random.Generator) -> Case:
    """Opset 9 forms: Clip with attributes, Softmax coercing to 2-D, Reshape with 0 in the shape."""
    nodes = [
        node("Clip", ["x"], ["c"], min=-0.5, max=0.75),
        node("Reshape", ["c", "shape"], ["r"]),
        node("Softmax", ["r"], ["y"], axis=1),
    ]
    inits = {"shape": np.array([0, 4, -1], np.int64)}
    return model(nodes, {"x": (2, 2, 2, 3)}, ["y"], inits, opset=9), {"x": _x(rng, 2, 2, 2, 3)}


def qdq_conv(rng: np.random.Generator) -> Case:
    """QDQ: QuantizeLinear/DequantizeLinear on activations, int8 per-channel weights through DequantizeLinear."""
    wq = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    nodes = [
        node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        node("DequantizeLinear", ["wq", "ws"], ["wd"], axis=0),
        node("Conv", ["xd", "wd"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("Relu", ["c"], ["y"]),
    ]
    inits = {
        "xs": np.array(0.02, np.float32),
        "xz": np.array(3, np.int8),
        "wq": wq,
        "ws": np.array([0.01, 0.02, 0.005, 0.03], np.float32),
    }
    return model(nodes, {"x": (1, 3, 6, 6)}, ["y"], inits, opset=21), {"x": _x(rng, 1, 3, 6, 6)}


def qlinear(rng: np.random.Generator) -> Case:
    """Integer QLinearConv (per-channel int8 weights, int32 bias) and QLinearMatMul between Quantize/DequantizeLinear."""
    wq = rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)
    ws = np.array([0.01, 0.02, 0.015, 0.03], np.float32)
    xs, ys = np.float32(0.05), np.float32(0.08)
    bias = rng.integers(-500, 500, 4).astype(np.int32)
    mq = rng.integers(-127, 128, (4, 3)).astype(np.int8)
    nodes = [
        node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        node(
            "QLinearConv", ["xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz", "bias"], ["c"], pads=[1, 1, 1, 1]
        ),
        node("Transpose", ["c"], ["ct"], perm=[0, 2, 3, 1]),
        node("QLinearMatMul", ["ct", "ys", "yz", "mq", "ms", "mz", "zs", "zz"], ["m"]),
        node("DequantizeLinear", ["m", "zs", "zz"], ["y"]),
    ]
    inits = {
        "xs": np.array(xs),
        "xz": np.array(-2, np.int8),
        "wq": wq,
        "ws": ws,
        "wz": np.zeros(4, np.int8),
        "ys": np.array(ys),
        "yz": np.array(5, np.int8),
        "bias": bias,
        "mq": mq,
        "ms": np.array(0.02, np.float32),
        "mz": np.array(0, np.int8),
        "zs": np.array(0.1, np.float32),
        "zz": np.array(-7, np.int8),
    }
    return model(nodes, {"x": (1, 2, 5, 5)}, ["y"], inits, opset=21), {"x": _x(rng, 1, 2, 5, 5) * 2}


ZOO = {
    f.__name__: f
    for f in (
        conv_relu_pools,
        conv_variants,
        classifier,
        flatten_classifier,
        elementwise,
        softmax_axes,
        legacy_opset,
        qdq_conv,
        qlinear,
    )
}
"""Name -> builder ``(rng) -> (model bytes, feeds)``."""
