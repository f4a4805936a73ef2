"""TFLite import: every shared model imports, keeps names and quantization exactly, and round-trips."""

from __future__ import annotations

import functools
import importlib.util
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import tflite
from xdsl.dialects.builtin import FileLineColLoc, ModuleOp, NameLoc, TensorType
from xdsl.ir import Operation
from xdsl.printer import Printer

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.importers.tflite import import_tflite
from nnopt.compiler.mlir_input import parse_mlir
from nnopt.compiler.registry import make_context
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

from .conftest import SHARED, assert_user_error, run_tool, shared_path
from .tflite_build import TT, OpSpec, build_model

MODELS = [
    "mlperf_tiny_ad_autoencoder_f32",
    "mlperf_tiny_ad_autoencoder_int8",
    "mlperf_tiny_ic_resnet8_f32",
    "mlperf_tiny_ic_resnet8_int8",
    "mlperf_tiny_kws_dscnn_hybrid",
    "mlperf_tiny_kws_dscnn_int8",
    "mlperf_tiny_vww_mbv1_025_f32",
    "mlperf_tiny_vww_mbv1_025_int8",
    "tflm_hello_world_f32",
    "tflm_hello_world_int8",
    "tflm_micro_speech_int8",
    "tflm_person_detect_int8",
    "tflm_xtensa_mobilenet_v2_224_int8",
]
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}


def model_path(name: str) -> Path:
    return shared_path("models", f"{name}.tflite")


@functools.cache
def imported(name: str) -> ModuleOp:
    path = SHARED / "models" / f"{name}.tflite"
    return import_tflite(path.read_bytes(), str(path))


def graph_of(module: ModuleOp) -> nn.GraphOp:
    (graph,) = [op for op in module.walk() if isinstance(op, nn.GraphOp)]
    return graph


def printed(module: ModuleOp, debuginfo: bool = False) -> str:
    stream = StringIO()
    Printer(stream=stream, print_debuginfo=debuginfo).print_op(module)
    return stream.getvalue()


class FileTensors:
    """The tensors of a .tflite file, read with the `tflite` package directly (not nnopt's reader)."""

    def __init__(self, path: Path) -> None:
        self.buf = path.read_bytes()
        self.model = tflite.Model.GetRootAs(self.buf, 0)
        self.sg = self.model.Subgraphs(0)
        self.by_name = {self.sg.Tensors(i).Name().decode(): i for i in range(self.sg.TensorsLength())}

    def tensor(self, i: int) -> tflite.Tensor:
        return self.sg.Tensors(i)

    def shape(self, i: int) -> tuple[int, ...]:
        t = self.tensor(i)
        return tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()

    def quant(self, i: int) -> tuple[list[float], list[int]] | None:
        q = self.tensor(i).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        return [float(s) for s in q.ScaleAsNumpy()], [int(z) for z in q.ZeroPointAsNumpy()]

    def data(self, i: int) -> bytes:
        b = self.model.Buffers(self.tensor(i).Buffer())
        return b.DataAsNumpy().tobytes() if b.DataLength() else b""


def located_tensor(op: Operation) -> str | None:
    loc = op.location
    return loc.desc.data if isinstance(loc, NameLoc) else None


@pytest.mark.parametrize("name", MODELS)
def test_shared_model_imports_with_exact_types(name: str) -> None:
    path = model_path(name)
    module = imported(name)
    graph = graph_of(module)
    ft = FileTensors(path)
    # Graph inputs and outputs keep the model's tensor names.
    ins = [ft.tensor(int(i)).Name().decode() for i in ft.sg.InputsAsNumpy()]
    outs = [ft.tensor(int(i)).Name().decode() for i in ft.sg.OutputsAsNumpy()]
    assert graph.input_names() == ins
    assert graph.output_names() == outs
    checked = 0
    for op in graph.block.ops:
        name_ = located_tensor(op)
        if name_ is None or name_ not in ft.by_name or not op.results:
            continue
        i = ft.by_name[name_]
        result_type = op.results[0].type
        assert isinstance(result_type, TensorType)
        assert result_type.get_shape() == ft.shape(i), name_
        elem = result_type.get_element_type()
        q = ft.quant(i)
        type_name = _TYPE_NAMES[ft.tensor(i).Type()]
        if q is None or type_name == "FLOAT32":
            assert nn.is_float(result_type), name_
        else:
            # Scales are the file's float32 values carried exactly; zero points and storage too.
            assert isinstance(elem, UniformQuantizedType), name_
            scales, zps = q
            assert list(elem.scale_values) == scales, name_
            assert list(elem.zero_point_values) == (zps if len(zps) == len(scales) else zps * len(scales))
            assert elem.width == {"INT8": 8, "UINT8": 8, "INT16": 16, "INT32": 32}[type_name]
            assert elem.signed == (type_name != "UINT8")
        if isinstance(op, nn.ConstOp):
            assert op.value.data.data == ft.data(i), f"constant {name_} differs from the file"
        # Every op is located at file:operator index with the tensor name.
        loc = op.location
        assert isinstance(loc, NameLoc) and isinstance(loc.location, FileLineColLoc)
        assert loc.location.filename.data == str(path)
        checked += 1
    assert checked >= len(list(graph.block.ops)) // 2


@pytest.mark.parametrize("name", [m for m in MODELS if "int8" in m])
def test_quantized_ops_carry_tflite_rounding(name: str) -> None:
    model_path(name)
    have_qparams = importlib.util.find_spec("nnopt.dialects.qparams") is not None
    quantized = [
        op
        for op in graph_of(imported(name)).block.ops
        if isinstance(op, nn.QuantizableOp) and nn.is_quantized(op.results[0])
    ]
    assert quantized
    for op in quantized:
        assert op.rounding_mode() == "tflite_double" and op.rounding is not None
        if have_qparams:
            assert op.qparams is not None, op.name


def test_hybrid_model_dequantizes_its_int8_weights() -> None:
    model_path("mlperf_tiny_kws_dscnn_hybrid")
    graph = graph_of(imported("mlperf_tiny_kws_dscnn_hybrid"))
    deq = [op for op in graph.block.ops if isinstance(op, nn.DequantizeOp)]
    # Five int8 weight tensors (the 1x1 and first convolutions), each dequantized once.
    assert len(deq) == 5
    for op in deq:
        assert isinstance(op.input.owner, nn.ConstOp)
        assert all(isinstance(u.operation, nn.Conv2DOp) for u in op.output.uses)
    compute = [op for op in graph.block.ops if not isinstance(op, nn.ConstOp | nn.DequantizeOp | nn.OutputOp)]
    assert all(nn.is_float(r) for op in compute for r in op.results)


def test_person_detect_biases_are_per_axis_along_dimension_zero() -> None:
    model_path("tflm_person_detect_int8")
    graph = graph_of(imported("tflm_person_detect_int8"))
    biases = [op.bias for op in graph.block.ops if isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp)]
    assert len(biases) == 28
    for b in biases:
        assert b is not None
        elem = nn.elem_of(b)
        assert isinstance(elem, UniformQuantizedType) and elem.axis == 0 and elem.width == 32
        assert len(elem.scale_values) == nn.shape_of(b)[0]


def test_mobilenet_v2_keeps_its_transpose_and_pads() -> None:
    model_path("tflm_xtensa_mobilenet_v2_224_int8")
    graph = graph_of(imported("tflm_xtensa_mobilenet_v2_224_int8"))
    ops = [op for op in graph.block.ops if not isinstance(op, nn.ConstOp)]
    first = ops[0]
    assert isinstance(first, nn.TransposeOp) and nn.ints(first.perm) == (0, 2, 3, 1)
    assert first.input == graph.block.args[0] and nn.shape_of(first.input) == (1, 3, 224, 224)
    pads = [op for op in ops if isinstance(op, nn.PadOp)]
    assert len(pads) == 18
    assert all(op.pad_value() == 0.0 for op in pads)
    assert sum(isinstance(op, nn.AddOp) for op in ops) == 10


@pytest.mark.parametrize("name", MODELS)
def test_printed_ir_round_trips(name: str) -> None:
    model_path(name)
    module = imported(name)
    for debuginfo in (False, True):
        text = printed(module, debuginfo)
        again = parse_mlir(make_context(), text, f"{name}.mlir")
        assert printed(again, debuginfo) == text


def test_import_command_then_nnopt_opt_round_trips(tmp_path: Path) -> None:
    path = model_path("tflm_person_detect_int8")
    out = tmp_path / "pd.mlir"
    result = run_tool("nnopt", "import", str(path), "-o", str(out))
    assert result.code == 0, result.err
    assert result.out == ""
    text = out.read_text()
    assert "nn.graph @" in text and '{nn.name = "input"}' in text
    again = run_tool("nnopt-opt", str(out))
    assert again.code == 0, again.err
    assert again.out == text
    # nnopt-opt reads the .tflite file directly through the frontends, giving the same IR.
    direct = run_tool("nnopt-opt", str(path))
    assert direct.code == 0, direct.err
    assert direct.out == text


def test_debuginfo_names_tensors(tmp_path: Path) -> None:
    path = model_path("tflm_micro_speech_int8")
    result = run_tool("nnopt", "import", str(path), "--print-debuginfo")
    assert result.code == 0, result.err
    assert f'loc("labels_softmax"("{path}":3:0))' in result.out


def test_keyword_scrambled_lists_its_unsupported_ops() -> None:
    path = model_path("tflm_keyword_scrambled_int8")
    with pytest.raises(UserError) as info:
        import_tflite(path.read_bytes(), str(path))
    assert "SVDF x7" in info.value.message
    assert info.value.location == str(path)
    result = run_tool("nnopt", "import", str(path))
    assert_user_error(result, str(path), "7 unsupported TFLite operators: SVDF x7")
    assert result.err.count("error:") == 1


# --------------------------------------------------------------------------
# Synthetic models: op mapping details
# --------------------------------------------------------------------------


def one_op(opname: str, options: str | None, fields: dict, tensors: list[TT], n_in: int) -> nn.GraphOp:
    ops = [OpSpec(opname, list(range(n_in)), [len(tensors) - 1], options, fields)]
    inputs = [i for i in range(n_in) if tensors[i].data is None]
    data = build_model(tensors, ops, inputs, [len(tensors) - 1])
    return graph_of(import_tflite(data, f"{opname.lower()}.tflite"))


def main_op(graph: nn.GraphOp) -> Operation:
    ops = [op for op in graph.block.ops if not isinstance(op, nn.ConstOp | nn.OutputOp)]
    return ops[-1]


def test_conv_options_map_to_properties() -> None:
    w = np.ones((4, 3, 3, 2), np.float32)
    g = one_op(
        "CONV_2D",
        "Conv2DOptions",
        {
            "Padding": 1,
            "StrideW": 2,
            "StrideH": 1,
            "FusedActivationFunction": 3,
            "DilationWFactor": 1,
            "DilationHFactor": 2,
        },
        [
            TT("x", (1, 9, 9, 2)),
            TT("w", (4, 3, 3, 2), data=w),
            TT("b", (4,), data=np.zeros(4, np.float32)),
            TT("y", (1, 5, 4, 4)),
        ],
        3,
    )
    op = main_op(g)
    assert isinstance(op, nn.Conv2DOp)
    assert nn.ints(op.strides) == (1, 2) and op.dilation_values() == (2, 1)
    assert op.activation() == "relu6" and op.padding.data == "valid"  # type: ignore[union-attr]


def test_padv2_value_is_dequantized_and_concat_requantizes() -> None:
    g = one_op(
        "PADV2",
        None,
        {},
        [
            TT("x", (1, 2, 2, 1), "INT8", scales=[0.5], zero_points=[3]),
            TT("p", (4, 2), "INT32", data=np.array([[0, 0], [1, 1], [0, 2], [0, 0]], np.int32)),
            TT("v", (1,), "INT8", data=np.array([7], np.int8), scales=[0.5], zero_points=[3]),
            TT("y", (1, 4, 4, 1), "INT8", scales=[0.5], zero_points=[3]),
        ],
        3,
    )
    op = main_op(g)
    assert isinstance(op, nn.PadOp) and op.pad_value() == 2.0
    assert op.pad_pairs() == [(0, 0), (1, 1), (0, 2), (0, 0)]
    g = one_op(
        "CONCATENATION",
        "ConcatenationOptions",
        {"Axis": -1},
        [
            TT("a", (1, 2), "INT8", scales=[0.5], zero_points=[0]),
            TT("b", (1, 3), "INT8", scales=[0.25], zero_points=[1]),
            TT("y", (1, 5), "INT8", scales=[0.5], zero_points=[0]),
        ],
        2,
    )
    requant = [op for op in g.block.ops if isinstance(op, nn.QuantizeOp)]
    assert len(requant) == 1 and requant[0].input == g.block.args[1]
    assert isinstance(main_op(g), nn.ConcatOp)


def test_uint8_and_int16_tensors_keep_their_storage() -> None:
    g = one_op(
        "QUANTIZE",
        None,
        {},
        [
            TT("x", (1, 4), "UINT8", scales=[0.1], zero_points=[128]),
            TT("y", (1, 4), "INT16", scales=[0.01], zero_points=[0]),
        ],
        1,
    )
    xq, yq = nn.elem_of(g.block.args[0]), nn.elem_of(main_op(g).results[0])
    assert isinstance(xq, UniformQuantizedType) and (xq.width, xq.signed, xq.zero_point) == (8, False, 128)
    assert isinstance(yq, UniformQuantizedType) and (yq.width, yq.signed) == (16, True)


def test_unsupported_ops_and_activations_are_listed_together() -> None:
    tensors = [TT("x", (1, 4)), TT("a", (1, 4)), TT("b", (1, 4)), TT("c", (1, 4)), TT("d", (1, 4))]
    ops = [
        OpSpec("HARD_SWISH", [0], [1]),
        OpSpec("HARD_SWISH", [1], [2]),
        OpSpec("ADD", [2, 2], [3], "AddOptions", {"FusedActivationFunction": 4}),
        OpSpec("FLOOR", [3], [4]),
    ]
    data = build_model(tensors, ops, [0], [4])
    with pytest.raises(UserError) as info:
        import_tflite(data, "m.tflite")
    msg = info.value.message
    assert msg.startswith("4 unsupported TFLite operators:")
    assert "HARD_SWISH x2" in msg and "FLOOR x1" in msg and "ADD with fused activation TANH x1" in msg


def test_output_shape_mismatch_is_a_located_error() -> None:
    tensors = [TT("x", (1, 8, 8, 2)), TT("pooled_wrong", (1, 3, 3, 2))]
    ops = [
        OpSpec(
            "MAX_POOL_2D",
            [0],
            [1],
            "Pool2DOptions",
            {"Padding": 1, "StrideW": 2, "StrideH": 2, "FilterWidth": 2, "FilterHeight": 2},
        )
    ]
    with pytest.raises(UserError) as info:
        import_tflite(build_model(tensors, ops, [0], [1]), "pool.tflite")
    assert info.value.location == "pool.tflite:0:0 (pooled_wrong)"
    assert "nn.max_pool2d" in info.value.message and "[1, 3, 3, 2]" in info.value.message


def test_graph_inputs_and_outputs_named_in_arg_attrs() -> None:
    g = one_op("RELU", None, {}, [TT("in:0", (1, 3)), TT("out/relu", (1, 3))], 1)
    assert g.input_names() == ["in:0"] and g.output_names() == ["out/relu"]
    assert g.sym_name.data == "main"


@pytest.mark.skipif(not (SHARED / "models").exists(), reason="../shared is absent")
def test_every_shared_tflite_model_is_covered() -> None:
    files = {p.stem for p in (SHARED / "models").glob("*.tflite")}
    assert files == {*MODELS, "tflm_keyword_scrambled_int8"}


def test_byte_moving_op_with_new_quantization_requantizes() -> None:
    g = one_op(
        "RESHAPE",
        None,
        {},
        [
            TT("x", (1, 2, 2), "INT8", scales=[0.5], zero_points=[1]),
            TT("y", (1, 4), "INT8", scales=[0.25], zero_points=[0]),
        ],
        1,
    )
    reshape, requant = [op for op in g.block.ops if not isinstance(op, nn.OutputOp)]
    assert isinstance(reshape, nn.ReshapeOp) and nn.elem_of(reshape.output) == nn.elem_of(g.block.args[0])
    assert isinstance(requant, nn.QuantizeOp) and requant.rounding_mode() == "tflite_double"
    assert nn.elem_of(requant.output) == nn.elem_of(g.function_type.outputs.data[0])


def test_float16_weights_are_widened() -> None:
    w16 = np.array([[0.5, -1.25, 3.0]], np.float16)
    tensors = [TT("x", (1, 3)), TT("w16", (1, 3), "FLOAT16", data=w16), TT("w", (1, 3)), TT("y", (1, 1))]
    ops = [
        OpSpec("DEQUANTIZE", [1], [2]),
        OpSpec("FULLY_CONNECTED", [0, 2, -1], [3], "FullyConnectedOptions", {}),
    ]
    g = graph_of(import_tflite(build_model(tensors, ops, [0], [3]), "f16.tflite"))
    (fc,) = [op for op in g.block.ops if isinstance(op, nn.FullyConnectedOp)]
    const = fc.weight.owner
    assert isinstance(const, nn.ConstOp) and nn.elem_of(const.result) == nn.elem_of(g.block.args[0])
    assert np.frombuffer(const.value.data.data, "<f4").tolist() == [0.5, -1.25, 3.0]
