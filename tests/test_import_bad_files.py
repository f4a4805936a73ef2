"""Broken model files: one clear `error:` naming the file (and tensor/op), exit 1, nothing allocated or written."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.importers.onnx import import_onnx
from nnopt.compiler.importers.tflite import import_tflite

from .conftest import assert_user_error, run_tool, shared_path
from .tflite_build import TT, OpSpec, build_model

# --------------------------------------------------------------------------
# TFLite
# --------------------------------------------------------------------------


def fc_model(**overrides: object) -> bytes:
    """x[1,4] -> FULLY_CONNECTED(w[2,4]) -> y[1,2]; `overrides` replace tensors/ops."""
    w = np.arange(8, dtype=np.float32).reshape(2, 4)
    tensors = overrides.get("tensors") or [TT("x", (1, 4)), TT("w", (2, 4), data=w), TT("y", (1, 2))]
    ops = overrides.get("ops") or [OpSpec("FULLY_CONNECTED", [0, 1, -1], [2], "FullyConnectedOptions", {})]
    return build_model(tensors, ops, [0], [2], **overrides.get("kwargs", {}))  # type: ignore[arg-type]


def tflite_error(data: bytes, name: str = "bad.tflite") -> UserError:
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        import_tflite(data, name)
    assert time.perf_counter() - start < 5, "a broken file must fail fast"
    return info.value


def test_valid_builder_model_imports() -> None:
    # The broken files below differ from this one in one place each.
    import_tflite(fc_model(), "ok.tflite")


@pytest.mark.parametrize("keep", [0, 3, 7, 16, 100, 400])
def test_truncated_tflite(keep: int) -> None:
    data = fc_model()
    err = tflite_error(data[:keep])
    assert err.location == "bad.tflite"
    assert "TFLite" in err.message


def test_truncated_real_model() -> None:
    data = shared_path("models", "tflm_person_detect_int8.tflite").read_bytes()
    for keep in (len(data) // 2, len(data) - 100, 1000):
        err = tflite_error(data[:keep])
        assert "malformed TFLite file" in err.message or "outside the file" in err.message


def test_random_bytes_and_wrong_identifier() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert "file identifier" in tflite_error(noise).message
    for seed in range(20):
        noise = bytearray(np.random.default_rng(seed).integers(0, 256, 2048, dtype=np.uint8).tobytes())
        noise[4:8] = b"TFL3"
        err = tflite_error(bytes(noise))
        assert err.location == "bad.tflite"
    data = bytearray(fc_model())
    data[4:8] = b"ONNX"
    assert "file identifier is b'ONNX', expected b'TFL3'" in tflite_error(bytes(data)).message


def test_wrong_schema_version() -> None:
    err = tflite_error(fc_model(kwargs={"version": 2}))
    assert "schema version 2" in err.message


def test_absurd_shape_is_rejected_before_allocating() -> None:
    tensors = [TT("x", (1 << 20, 1 << 20)), TT("y", (1 << 20, 1 << 20))]
    ops = [OpSpec("RELU", [0], [1])]
    err = tflite_error(build_model(tensors, ops, [0], [1]))
    assert "tensor 'x' (#0)" in err.message and "2^31" in err.message


def test_negative_dimension() -> None:
    err = tflite_error(build_model([TT("x", (1, -4)), TT("y", (1, 4))], [OpSpec("RELU", [0], [1])], [0], [1]))
    assert "tensor 'x' (#0)" in err.message and "negative" in err.message


def test_tensor_index_out_of_range() -> None:
    ops = [OpSpec("FULLY_CONNECTED", [0, 99, -1], [2], "FullyConnectedOptions", {})]
    err = tflite_error(fc_model(ops=ops))
    assert (
        "operator #0 (FULLY_CONNECTED) input 1 refers to tensor 99, but the subgraph has 3 tensors"
        in err.message
    )


def test_opcode_and_buffer_index_out_of_range() -> None:
    ops = [OpSpec("FULLY_CONNECTED", [0, 1, -1], [2], "FullyConnectedOptions", {}, opcode_index=5)]
    assert "operator #0: its opcode refers to index 5" in tflite_error(fc_model(ops=ops)).message
    tensors = [
        TT("x", (1, 4), buffer=40),
        TT("w", (2, 4), data=np.zeros((2, 4), np.float32)),
        TT("y", (1, 2)),
    ]
    assert "tensor 'x' (#0): its buffer refers to index 40" in tflite_error(fc_model(tensors=tensors)).message


def test_buffer_shorter_than_tensor() -> None:
    tensors = [TT("x", (1, 4)), TT("w", (2, 4), data=np.zeros(3, np.float32)), TT("y", (1, 2))]
    err = tflite_error(fc_model(tensors=tensors))
    assert "tensor 'w' (#1): buffer 1 holds 12 bytes, but shape [2, 4] of FLOAT32 needs 32" in err.message


def test_bad_quantization_parameters() -> None:
    tensors = [
        TT("x", (1, 4), "INT8", scales=[0.0], zero_points=[0]),
        TT("y", (1, 4), "INT8", scales=[0.5], zero_points=[0]),
    ]
    err = tflite_error(build_model(tensors, [OpSpec("RELU", [0], [1])], [0], [1]))
    assert "tensor 'x' (#0) has an invalid quantization scale 0.0" in err.message
    tensors = [
        TT("x", (1, 4), "INT8", scales=[0.5], zero_points=[300]),
        TT("y", (1, 4), "INT8", scales=[0.5], zero_points=[0]),
    ]
    assert (
        "zero point 300 outside [-128, 127]"
        in tflite_error(build_model(tensors, [OpSpec("RELU", [0], [1])], [0], [1])).message
    )
    tensors = [
        TT("x", (1, 4), "INT8", scales=[0.5, 0.5, 0.5], zero_points=[0, 0, 0], qdim=1),
        TT("y", (1, 4), "INT8", scales=[0.5], zero_points=[0]),
    ]
    err = tflite_error(build_model(tensors, [OpSpec("RELU", [0], [1])], [0], [1]))
    assert "3 scales along dimension 1, which does not fit shape [1, 4]" in err.message


def test_tensor_read_before_written() -> None:
    tensors = [TT("x", (1, 4)), TT("t", (1, 4)), TT("y", (1, 4))]
    ops = [OpSpec("RELU", [1], [2]), OpSpec("RELU", [0], [1])]
    err = tflite_error(build_model(tensors, ops, [0], [2]))
    assert "operator #0 (RELU): reads tensor 't' (#1), which no earlier operator produces" in err.message
    assert err.location == "bad.tflite:0:0 (y)"


def test_missing_constant_operand() -> None:
    tensors = [TT("x", (1, 2, 2, 1)), TT("perm", (4,), "INT32"), TT("y", (1, 2, 1, 2))]
    ops = [OpSpec("TRANSPOSE", [0, 1], [2])]
    err = tflite_error(build_model(tensors, ops, [0], [2]))
    assert "its permutation (tensor 'perm' (#1)) must be a constant integer tensor" in err.message


def test_cli_reports_one_line_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(fc_model()[:100])
    out = tmp_path / "out.mlir"
    result = run_tool("nnopt", "import", str(bad), "-o", str(out))
    assert_user_error(result, str(bad))
    assert len(result.err.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    result = run_tool("nnopt-opt", str(bad))
    assert_user_error(result, str(bad))
    missing = run_tool("nnopt", "import", str(tmp_path / "nope.tflite"))
    assert_user_error(missing, "nope.tflite")
    unknown = tmp_path / "model.xyz"
    unknown.write_bytes(b"\x00" * 16)
    assert_user_error(run_tool("nnopt", "import", str(unknown)), "cannot tell the model format")


# --------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------


def onnx_relu(**changes: object) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    graph = helper.make_graph([node], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def onnx_error(data: bytes, name: str = "bad.onnx") -> UserError:
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        import_onnx(data, name)
    assert time.perf_counter() - start < 5
    return info.value


def test_onnx_valid_base_model_imports() -> None:
    import_onnx(onnx_relu().SerializeToString(), "ok.onnx")


def test_onnx_truncated_random_and_empty() -> None:
    data = shared_path("models", "onnx_mnist8_f32.onnx").read_bytes()
    for keep in (len(data) // 2, 37, 5):
        err = onnx_error(data[:keep])
        assert err.location == "bad.onnx"
    for seed in range(5):
        noise = np.random.default_rng(seed).integers(0, 256, 3000, dtype=np.uint8).tobytes()
        onnx_error(noise)
    assert "not an ONNX model" in onnx_error(b"").message


def test_onnx_missing_opset() -> None:
    model = onnx_relu()
    del model.opset_import[:]
    assert "declares no opset for the default ONNX domain" in onnx_error(model.SerializeToString()).message


def test_onnx_absurd_initializer_shape() -> None:
    model = onnx_relu()
    big = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    model.graph.initializer.append(big)
    err = onnx_error(model.SerializeToString())
    assert "initializer 'w'" in err.message and "2^31" in err.message


def test_onnx_initializer_shorter_than_shape() -> None:
    model = onnx_relu()
    short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=bytes(40))
    model.graph.initializer.append(short)
    err = onnx_error(model.SerializeToString())
    assert "initializer 'w' holds 40 bytes, but shape [4, 4] of FLOAT needs 64" in err.message
    model = onnx_relu()
    model.graph.initializer.append(
        TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[3], float_data=[1.0, 2.0])
    )
    assert (
        "initializer 'v' holds 2 values, but shape [3] needs 3"
        in onnx_error(model.SerializeToString()).message
    )


def test_onnx_external_data_and_symbolic_dims() -> None:
    model = onnx_relu()
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], data_location=TensorProto.EXTERNAL)
    model.graph.initializer.append(t)
    assert "external file" in onnx_error(model.SerializeToString()).message
    model = onnx_relu()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "features"
    err = onnx_error(model.SerializeToString())
    assert "graph input 'x' has a symbolic dimension 'features' at position 1" in err.message


def test_onnx_undefined_input_and_unsupported_ops() -> None:
    model = onnx_relu()
    model.graph.node[0].input[0] = "ghost"
    err = onnx_error(model.SerializeToString())
    assert "node #0 (Relu 'relu'): reads 'ghost'" in err.message
    assert err.location == "bad.onnx:0:0 (y)"
    model = onnx_relu()
    model.graph.node.extend(
        [
            helper.make_node("Erf", ["y"], ["e"]),
            helper.make_node("Erf", ["e"], ["f"]),
            helper.make_node("LSTM", ["f"], ["g"]),
            helper.make_node("Gelu", ["g"], ["h"], domain="com.microsoft"),
        ]
    )
    err = onnx_error(model.SerializeToString())
    assert err.message.startswith("4 unsupported ONNX operators:")
    assert "Erf x2" in err.message and "LSTM x1" in err.message and "com.microsoft.Gelu x1" in err.message


def test_onnx_declared_output_shape_mismatch() -> None:
    model = onnx_relu()
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 5
    err = onnx_error(model.SerializeToString())
    assert "graph output 'y' is declared with shape [1, 5], but the graph computes [1, 4]" in err.message


def test_onnx_cli_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage\xff\xff\xff")
    result = run_tool("nnopt", "import", str(bad), "-o", str(tmp_path / "o.mlir"))
    assert_user_error(result, str(bad))
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "o.mlir").exists()


# --------------------------------------------------------------------------
# Fuzz: corrupted real files give a user error or a valid import, never a crash
# --------------------------------------------------------------------------

MUTATIONS = st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8
)


def mutate(data: bytes, changes: list[tuple[float, int]]) -> bytes:
    out = bytearray(data)
    for where, value in changes:
        out[int(where * len(out))] = value
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(changes=MUTATIONS)
def test_corrupted_tflite_never_crashes(changes: list[tuple[float, int]]) -> None:
    data = shared_path("models", "tflm_micro_speech_int8.tflite").read_bytes()
    try:
        import_tflite(mutate(data, changes), "fuzz.tflite")
    except UserError as exc:
        assert exc.location is not None and exc.location.startswith("fuzz.tflite")


@settings(max_examples=60, deadline=None)
@given(changes=MUTATIONS)
def test_corrupted_onnx_never_crashes(changes: list[tuple[float, int]]) -> None:
    data = shared_path("models", "onnx_mnist8_f32.onnx").read_bytes()
    try:
        import_onnx(mutate(data, changes), "fuzz.onnx")
    except UserError as exc:
        assert exc.location is not None and exc.location.startswith("fuzz.onnx")
