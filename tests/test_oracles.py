"""Imported models against the peer runtimes.

* int8 TFLite models: nnopt's interpreter equals TFLite Micro bit for bit on 10
  seeded random inputs, and on every intermediate tensor of the first input.
* float TFLite models: within 1e-5 (relative to the output's magnitude) of
  LiteRT's reference kernels; the hybrid model against a float copy of itself.
* ONNX models: against onnxruntime (optimizations off) and `onnx.reference`.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import FileLineColLoc, ModuleOp, NameLoc
from xdsl.ir import Operation

from nnopt.backends.numpy import run
from nnopt.compiler.importers.onnx import import_onnx
from nnopt.compiler.importers.tflite import import_tflite, read_model
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

from .conftest import SHARED, shared_path
from .onnx_build import ZOO
from .peer_oracles import (
    HAVE_LITERT,
    HAVE_ORT,
    HAVE_TFLM,
    float_copy_of_hybrid,
    run_litert,
    run_onnx_reference,
    run_ort,
    run_tflm,
)
from .tflite_build import TT, OpSpec, build_model

INT8_MODELS = [
    "mlperf_tiny_ad_autoencoder_int8",
    "mlperf_tiny_ic_resnet8_int8",
    "mlperf_tiny_kws_dscnn_int8",
    "mlperf_tiny_vww_mbv1_025_int8",
    "tflm_hello_world_int8",
    "tflm_micro_speech_int8",
    "tflm_person_detect_int8",
    "tflm_xtensa_mobilenet_v2_224_int8",
]
FLOAT_MODELS = [
    "mlperf_tiny_ad_autoencoder_f32",
    "mlperf_tiny_ic_resnet8_f32",
    "mlperf_tiny_vww_mbv1_025_f32",
    "tflm_hello_world_f32",
]
SAMPLES = 10


@functools.cache
def imported(name: str) -> ModuleOp:
    path = SHARED / "models" / f"{name}.tflite"
    return import_tflite(path.read_bytes(), str(path))


def graph_of(module: ModuleOp) -> nn.GraphOp:
    (graph,) = [op for op in module.walk() if isinstance(op, nn.GraphOp)]
    return graph


def random_inputs(graph: nn.GraphOp, seed: int, count: int) -> list[np.ndarray]:
    """Seeded inputs: the full storage range for quantized inputs, N(0, 1) for float ones."""
    (t,) = graph.function_type.inputs.data
    shape, elem = nn.shape_of(t), nn.elem_of(t)
    rng = np.random.default_rng(seed)
    if isinstance(elem, UniformQuantizedType):
        return [
            rng.integers(elem.qmin, elem.qmax, shape, endpoint=True).astype(elem.numpy_dtype)
            for _ in range(count)
        ]
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]


def operator_index(op: Operation) -> tuple[int, str] | None:
    """(TFLite operator index, output tensor name) from an imported op's location."""
    loc = op.location
    if isinstance(loc, NameLoc) and isinstance(loc.location, FileLineColLoc):
        return loc.location.line.data, loc.desc.data
    return None


@pytest.mark.skipif(not HAVE_TFLM, reason="tflite_micro is not installed")
@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_model_is_bit_exact_with_tflm(name: str) -> None:
    path = shared_path("models", f"{name}.tflite")
    data = path.read_bytes()
    raw = read_model(data, str(path))
    module = imported(name)
    graph = graph_of(module)
    inputs = random_inputs(graph, seed=zlib.crc32(name.encode()), count=SAMPLES)
    # The producer of every operator's output, to compare intermediates.
    produced: dict[int, Operation] = {}
    for op in graph.block.ops:
        where = operator_index(op)
        if where is not None and not isinstance(op, nn.ConstOp):
            k, tensor = where
            out = raw.operators[k].outputs[0] if k < len(raw.operators) else -1
            if out >= 0 and raw.tensors[out].name == tensor:
                produced[out] = op
    ref_outputs, ref_tensors = run_tflm(data, inputs, len(raw.outputs), sorted(produced))
    seen: dict[Operation, np.ndarray] = {}
    first = run(module, [inputs[0]], dump=lambda _n, op, value: seen.__setitem__(op, np.array(value)))
    # Layer by layer on the first input: name the first op that differs.
    for index in sorted(produced, key=lambda i: next(o.index for o in raw.operators if i in o.outputs)):
        op = produced[index]
        mine, ref = seen[op], ref_tensors[index].reshape(seen[op].shape)
        if not np.array_equal(mine, ref):
            diff = np.abs(mine.astype(np.int64) - ref.astype(np.int64))
            pytest.fail(
                f"{name}: first difference at {op.name} producing '{raw.tensors[index].name}' (#{index}): "
                f"{int((diff > 0).sum())}/{diff.size} values differ, max |diff| {int(diff.max())}"
            )
    for k, x in enumerate(inputs):
        outputs = first if k == 0 else run(module, [x])
        for mine, ref in zip(outputs.values(), ref_outputs[k], strict=True):
            assert mine.dtype == ref.dtype
            assert np.array_equal(mine, ref.reshape(mine.shape)), f"{name}: input {k} differs from TFLM"


@pytest.mark.skipif(not HAVE_LITERT, reason="ai_edge_litert is not installed")
@pytest.mark.parametrize("name", FLOAT_MODELS)
def test_float_model_matches_litert_reference_kernels(name: str) -> None:
    path = shared_path("models", f"{name}.tflite")
    module = imported(name)
    for x in random_inputs(graph_of(module), seed=7, count=SAMPLES):
        (ref,) = run_litert(str(path), [x])
        (mine,) = run(module, [x]).values()
        tol = 1e-5 * float(np.abs(ref).max())
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=tol)


@pytest.mark.skipif(not (HAVE_LITERT and HAVE_TFLM), reason="peers are not installed")
def test_hybrid_model_matches_its_float_copy_and_litert_hybrid_kernels() -> None:
    path = shared_path("models", "mlperf_tiny_kws_dscnn_hybrid.tflite")
    module = imported("mlperf_tiny_kws_dscnn_hybrid")
    float_copy = float_copy_of_hybrid(path.read_bytes())
    for x in random_inputs(graph_of(module), seed=3, count=SAMPLES):
        (mine,) = run(module, [x]).values()
        # Exactly the float graph nnopt imports: the dequantized weights in float buffers.
        (ref,) = run_litert(float_copy, [x])
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
        # LiteRT's hybrid kernels quantize activations on the fly: same class, probabilities within 0.05.
        (hybrid,) = run_litert(str(path), [x])
        assert np.argmax(mine) == np.argmax(hybrid)
        assert float(np.abs(mine - hybrid).max()) < 0.05


@pytest.mark.skipif(not HAVE_LITERT, reason="ai_edge_litert is not installed")
def test_person_detect_is_rejected_by_litert_but_not_by_nnopt() -> None:
    path = shared_path("models", "tflm_person_detect_int8.tflite")
    with pytest.raises(ValueError, match="quantized_dimension"):
        run_litert(str(path), [np.zeros((1, 96, 96, 1), np.int8)])
    assert graph_of(imported("tflm_person_detect_int8")).output_names() == [
        "MobilenetV1/Predictions/Reshape_1"
    ]


def test_shared_models_folder_matches_lists() -> None:
    models = Path(shared_path("models"))
    tflite = {p.stem for p in models.glob("*.tflite")}
    assert {
        *INT8_MODELS,
        *FLOAT_MODELS,
        "mlperf_tiny_kws_dscnn_hybrid",
        "tflm_keyword_scrambled_int8",
    } == tflite


# --------------------------------------------------------------------------
# Single-op TFLite models: the importer's op mapping against LiteRT / TFLM
# --------------------------------------------------------------------------


def _conv_opts(padding: int, stride: tuple[int, int], act: int = 0, dil: tuple[int, int] = (1, 1)) -> dict:
    return {
        "Padding": padding,
        "StrideH": stride[0],
        "StrideW": stride[1],
        "FusedActivationFunction": act,
        "DilationHFactor": dil[0],
        "DilationWFactor": dil[1],
    }


def _float_cases() -> dict[str, tuple[list[TT], list[OpSpec], list[int], list[int]]]:
    rng = np.random.default_rng(5)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    pool = {"Padding": 0, "StrideH": 2, "StrideW": 2, "FilterHeight": 3, "FilterWidth": 3}
    return {
        "conv_same_s2_relu6": (
            [
                TT("x", (1, 7, 8, 3)),
                TT("w", (4, 3, 3, 3), data=w(4, 3, 3, 3)),
                TT("b", (4,), data=w(4)),
                TT("y", (1, 4, 4, 4)),
            ],
            [OpSpec("CONV_2D", [0, 1, 2], [3], "Conv2DOptions", _conv_opts(0, (2, 2), 3))],
            [0],
            [3],
        ),
        "conv_valid_dilated": (
            [
                TT("x", (1, 9, 9, 2)),
                TT("w", (3, 3, 3, 2), data=w(3, 3, 3, 2)),
                TT("b", (3,), data=w(3)),
                TT("y", (1, 5, 5, 3)),
            ],
            [OpSpec("CONV_2D", [0, 1, 2], [3], "Conv2DOptions", _conv_opts(1, (1, 1), 0, (2, 2)))],
            [0],
            [3],
        ),
        "depthwise_multiplier2": (
            [
                TT("x", (1, 6, 6, 3)),
                TT("w", (1, 3, 3, 6), data=w(1, 3, 3, 6)),
                TT("b", (6,), data=w(6)),
                TT("y", (1, 6, 6, 6)),
            ],
            [
                OpSpec(
                    "DEPTHWISE_CONV_2D",
                    [0, 1, 2],
                    [3],
                    "DepthwiseConv2DOptions",
                    {**_conv_opts(0, (1, 1), 1), "DepthMultiplier": 2},
                )
            ],
            [0],
            [3],
        ),
        "fc_keep_num_dims": (
            [TT("x", (2, 3, 4)), TT("w", (5, 4), data=w(5, 4)), TT("y", (2, 3, 5))],
            [OpSpec("FULLY_CONNECTED", [0, 1, -1], [2], "FullyConnectedOptions", {"KeepNumDims": True})],
            [0],
            [2],
        ),
        "pools": (
            [TT("x", (1, 7, 7, 2)), TT("a", (1, 4, 4, 2)), TT("m", (1, 3, 3, 2))],
            [
                OpSpec("AVERAGE_POOL_2D", [0], [1], "Pool2DOptions", pool),
                OpSpec(
                    "MAX_POOL_2D",
                    [1],
                    [2],
                    "Pool2DOptions",
                    {**pool, "Padding": 1, "StrideH": 1, "StrideW": 1, "FilterHeight": 2, "FilterWidth": 2},
                ),
            ],
            [0],
            [2],
        ),
        "elementwise_with_constants": (
            [
                TT("x", (1, 2, 3, 4)),
                TT("c", (4,), data=w(4)),
                TT("a", (1, 2, 3, 4)),
                TT("s", (1, 2, 3, 4)),
                TT("y", (1, 2, 3, 4)),
            ],
            [
                OpSpec("ADD", [0, 1], [2], "AddOptions", {"FusedActivationFunction": 2}),
                OpSpec("SUB", [2, 0], [3], "SubOptions", {}),
                OpSpec("MUL", [3, 1], [4], "MulOptions", {"FusedActivationFunction": 1}),
            ],
            [0],
            [4],
        ),
        "concat_pad_transpose": (
            [
                TT("x", (1, 2, 3, 2)),
                TT("c", (1, 2, 3, 4)),
                TT("p", (4, 2), "INT32", data=np.array([[0, 0], [1, 0], [0, 2], [0, 1]], np.int32)),
                TT("v", (1,), data=np.array([1.5], np.float32)),
                TT("q", (1, 3, 5, 5)),
                TT("perm", (4,), "INT32", data=np.array([0, 3, 1, 2], np.int32)),
                TT("y", (1, 5, 3, 5)),
            ],
            [
                OpSpec("CONCATENATION", [0, 0], [1], "ConcatenationOptions", {"Axis": -1}),
                OpSpec("PADV2", [1, 2, 3], [4]),
                OpSpec("TRANSPOSE", [4, 5], [6]),
            ],
            [0],
            [6],
        ),
        "mean_reshape_softmax": (
            [
                TT("x", (1, 4, 5, 6)),
                TT("axes", (2,), "INT32", data=np.array([1, 2], np.int32)),
                TT("m", (1, 6)),
                TT("shape", (3,), "INT32", data=np.array([1, 2, 3], np.int32)),
                TT("r", (1, 2, 3)),
                TT("y", (1, 2, 3)),
            ],
            [
                OpSpec("MEAN", [0, 1], [2], "ReducerOptions", {"KeepDims": False}),
                OpSpec("RESHAPE", [2, 3], [4]),
                OpSpec("SOFTMAX", [4], [5], "SoftmaxOptions", {"Beta": 0.5}),
            ],
            [0],
            [5],
        ),
        "activations": (
            [
                TT("x", (2, 8)),
                TT("a", (2, 8)),
                TT("b", (2, 8)),
                TT("c", (2, 8)),
                TT("d", (2, 8)),
                TT("y", (2, 8)),
            ],
            [
                OpSpec("LOGISTIC", [0], [1]),
                OpSpec("TANH", [0], [2]),
                OpSpec("RELU_N1_TO_1", [0], [3]),
                OpSpec("ADD", [1, 2], [4], "AddOptions", {"FusedActivationFunction": 3}),
                OpSpec("ADD", [4, 3], [5], "AddOptions", {}),
            ],
            [0],
            [5],
        ),
        "batch_matmul_adj": (
            [TT("x", (2, 3, 4)), TT("w", (2, 5, 4), data=w(2, 5, 4)), TT("y", (2, 3, 5))],
            [OpSpec("BATCH_MATMUL", [0, 1], [2], "BatchMatMulOptions", {"AdjY": True})],
            [0],
            [2],
        ),
    }


FLOAT_CASES = _float_cases()


@pytest.mark.skipif(not HAVE_LITERT, reason="ai_edge_litert is not installed")
@pytest.mark.parametrize("case", sorted(FLOAT_CASES))
def test_single_op_float_model_matches_litert(case: str) -> None:
    tensors, ops, ins, outs = FLOAT_CASES[case]
    data = build_model(tensors, ops, ins, outs)
    module = import_tflite(data, f"{case}.tflite")
    rng = np.random.default_rng(11)
    for _ in range(3):
        x = (rng.standard_normal(tensors[ins[0]].shape) * 2).astype(np.float32)
        (ref,) = run_litert(data, [x])
        (mine,) = run(module, [x]).values()
        assert mine.shape == ref.shape
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(ref).max())))


def _int8_cases() -> dict[str, tuple[list[TT], list[OpSpec]]]:
    q = {"scales": [0.05], "zero_points": [-3]}
    return {
        "quantize_padv2_dequantize": (
            [
                TT("x", (1, 3, 3, 2)),
                TT("q", (1, 3, 3, 2), "INT8", **q),
                TT("p", (4, 2), "INT32", data=np.array([[0, 0], [1, 1], [2, 0], [0, 0]], np.int32)),
                TT("v", (1,), "INT8", data=np.array([17], np.int8), **q),
                TT("padded", (1, 5, 5, 2), "INT8", **q),
                TT("y", (1, 5, 5, 2)),
            ],
            [OpSpec("QUANTIZE", [0], [1]), OpSpec("PADV2", [1, 2, 3], [4]), OpSpec("DEQUANTIZE", [4], [5])],
        ),
        "requantize_relu_logistic": (
            [
                TT("x", (1, 16)),
                TT("q", (1, 16), "INT8", **q),
                TT("r", (1, 16), "INT8", scales=[0.02], zero_points=[-128]),
                TT("s", (1, 16), "INT8", scales=[1 / 256], zero_points=[-128]),
                TT("t", (1, 16), "INT8", scales=[0.011], zero_points=[4]),
                TT("y", (1, 16)),
            ],
            [
                OpSpec("QUANTIZE", [0], [1]),
                OpSpec("RELU", [1], [2]),
                OpSpec("LOGISTIC", [2], [3]),
                OpSpec("QUANTIZE", [3], [4]),
                OpSpec("DEQUANTIZE", [4], [5]),
            ],
        ),
    }


INT8_CASES = _int8_cases()


@pytest.mark.skipif(not HAVE_TFLM, reason="tflite_micro is not installed")
@pytest.mark.parametrize("case", sorted(INT8_CASES))
def test_single_op_int8_model_is_bit_exact_with_tflm(case: str) -> None:
    tensors, ops = INT8_CASES[case]
    data = build_model(tensors, ops, [0], [len(tensors) - 1])
    module = import_tflite(data, f"{case}.tflite")
    rng = np.random.default_rng(2)
    xs = [(rng.standard_normal(tensors[0].shape) * 3).astype(np.float32) for _ in range(SAMPLES)]
    ref, _ = run_tflm(data, xs)
    for x, (r,) in zip(xs, ref, strict=True):
        (mine,) = run(module, [x]).values()
        np.testing.assert_array_equal(mine, r.reshape(mine.shape))


# --------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime is not installed")
def test_mnist_matches_onnxruntime_and_reference() -> None:
    path = shared_path("models", "onnx_mnist8_f32.onnx")
    data = path.read_bytes()
    module = import_onnx(data, str(path))
    rng = np.random.default_rng(1)
    for _ in range(SAMPLES):
        x = rng.random((1, 1, 28, 28)).astype(np.float32) * 255
        (mine,) = run(module, {"Input3": x}).values()
        for ref in (run_ort(data, {"Input3": x})[0], run_onnx_reference(data, {"Input3": x})[0]):
            np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


FLOAT_ZOO = [
    "conv_relu_pools",
    "conv_variants",
    "classifier",
    "flatten_classifier",
    "elementwise",
    "softmax_axes",
    "legacy_opset",
    "qdq_conv",
]


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime is not installed")
@pytest.mark.parametrize("name", FLOAT_ZOO)
def test_onnx_zoo_matches_onnxruntime(name: str) -> None:
    for seed in range(3):
        data, feeds = ZOO[name](np.random.default_rng(seed))
        (ref,) = run_ort(data, feeds)
        for cleanup in (True, False):
            (mine,) = run(import_onnx(data, f"{name}.onnx", cleanup=cleanup), feeds).values()
            np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime is not installed")
def test_onnx_integer_ops_match_onnx_reference_exactly() -> None:
    for seed in range(SAMPLES):
        data, feeds = ZOO["qlinear"](np.random.default_rng(seed))
        module = import_onnx(data, "qlinear.onnx")
        (mine,) = run(module, feeds).values()
        (ref,) = run_onnx_reference(data, feeds)
        np.testing.assert_array_equal(mine, ref)
        # onnxruntime rescales in float32 and can round an exact tie the other way: one step at most.
        (ort,) = run_ort(data, feeds)
        assert float(np.abs(mine - ort).max()) <= 0.1 + 1e-6
