"""Build small TFLite flatbuffers in tests with the `tflite` package's generated builder functions.

data = build_model(
    tensors=[TT("x", (1, 4), "FLOAT32"), TT("w", (2, 4), "FLOAT32", data=w), TT("y", (1, 2), "FLOAT32")],
    ops=[OpSpec("FULLY_CONNECTED", [0, 1, -1], [2], "FullyConnectedOptions", {})],
    inputs=[0], outputs=[2],
)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np

_TYPES = {"FLOAT32": 0, "FLOAT16": 1, "INT32": 2, "UINT8": 3, "INT64": 4, "INT16": 7, "INT8": 9}


def _mod(name: str) -> Any:
    return importlib.import_module(f"tflite.{name}")


def op_code(name: str) -> int:
    """The BuiltinOperator code of an operator name."""
    return int(getattr(_mod("BuiltinOperator").BuiltinOperator, name))


@dataclass
class TT:
    """A tensor: name, shape, TFLite type name, optional constant data and quantization."""

    name: str
    shape: tuple[int, ...]
    type: str = "FLOAT32"
    data: np.ndarray | None = None
    scales: list[float] | None = None
    zero_points: list[int] | None = None
    qdim: int = 0
    variable: bool = False
    buffer: int | None = None
    """Force this buffer index (for building broken files)."""


@dataclass
class OpSpec:
    """An operator: builtin name, tensor indices, options table name and its fields."""

    opname: str
    inputs: list[int]
    outputs: list[int]
    options: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    opcode_index: int | None = None
    """Force this opcode index (for building broken files)."""


def _vector(b: flatbuffers.Builder, start: Any, values: list[Any], prepend: str) -> int:
    start(b, len(values))
    for v in reversed(values):
        getattr(b, prepend)(v)
    return b.EndVector()


def _options(b: flatbuffers.Builder, name: str, fields: dict[str, Any]) -> int:
    mod = _mod(name)
    offsets: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, list | tuple):
            start = getattr(mod, f"Start{key}Vector")
            offsets[key] = _vector(b, start, [int(v) for v in value], "PrependInt32")
    mod.Start(b)
    for key, value in fields.items():
        getattr(mod, f"Add{key}")(b, offsets.get(key, value))
    return int(mod.End(b))


def build_model(
    tensors: list[TT],
    ops: list[OpSpec],
    inputs: list[int],
    outputs: list[int],
    *,
    version: int = 3,
    identifier: bytes = b"TFL3",
    name: str = "main",
) -> bytes:
    """Serialize a one-subgraph TFLite model."""
    b = flatbuffers.Builder(1024)
    # Buffers: 0 is the empty sentinel, then one per constant tensor.
    buffer_index: list[int] = []
    buffer_offsets = []
    Buf = _mod("Buffer")
    Buf.Start(b)
    buffer_offsets.append(Buf.End(b))
    for t in tensors:
        if t.data is None:
            buffer_index.append(0)
            continue
        raw = np.ascontiguousarray(t.data).tobytes()
        data_off = b.CreateByteVector(raw)
        Buf.Start(b)
        Buf.AddData(b, data_off)
        buffer_offsets.append(Buf.End(b))
        buffer_index.append(len(buffer_offsets) - 1)
    Ten = _mod("Tensor")
    Q = _mod("QuantizationParameters")
    tensor_offsets = []
    for t, buf in zip(tensors, buffer_index, strict=True):
        name_off = b.CreateString(t.name)
        shape_off = _vector(b, Ten.StartShapeVector, list(t.shape), "PrependInt32")
        q_off = None
        if t.scales is not None:
            s_off = _vector(b, Q.StartScaleVector, [float(s) for s in t.scales], "PrependFloat32")
            zps = t.zero_points if t.zero_points is not None else [0] * len(t.scales)
            z_off = _vector(b, Q.StartZeroPointVector, [int(z) for z in zps], "PrependInt64")
            Q.Start(b)
            Q.AddScale(b, s_off)
            Q.AddZeroPoint(b, z_off)
            Q.AddQuantizedDimension(b, t.qdim)
            q_off = Q.End(b)
        Ten.Start(b)
        Ten.AddShape(b, shape_off)
        Ten.AddType(b, _TYPES[t.type])
        Ten.AddBuffer(b, buf if t.buffer is None else t.buffer)
        Ten.AddName(b, name_off)
        if q_off is not None:
            Ten.AddQuantization(b, q_off)
        if t.variable:
            Ten.AddIsVariable(b, True)
        tensor_offsets.append(Ten.End(b))
    names = sorted({o.opname for o in ops})
    Op = _mod("Operator")
    BO = _mod("BuiltinOptions").BuiltinOptions
    op_offsets = []
    for o in ops:
        in_off = _vector(b, Op.StartInputsVector, o.inputs, "PrependInt32")
        out_off = _vector(b, Op.StartOutputsVector, o.outputs, "PrependInt32")
        opt_off = _options(b, o.options, o.fields) if o.options else None
        Op.Start(b)
        Op.AddOpcodeIndex(b, names.index(o.opname) if o.opcode_index is None else o.opcode_index)
        Op.AddInputs(b, in_off)
        Op.AddOutputs(b, out_off)
        if opt_off is not None:
            Op.AddBuiltinOptionsType(b, getattr(BO, str(o.options)))
            Op.AddBuiltinOptions(b, opt_off)
        op_offsets.append(Op.End(b))
    SG = _mod("SubGraph")
    t_vec = _vector(b, SG.StartTensorsVector, tensor_offsets, "PrependUOffsetTRelative")
    i_vec = _vector(b, SG.StartInputsVector, inputs, "PrependInt32")
    o_vec = _vector(b, SG.StartOutputsVector, outputs, "PrependInt32")
    op_vec = _vector(b, SG.StartOperatorsVector, op_offsets, "PrependUOffsetTRelative")
    sg_name = b.CreateString(name)
    SG.Start(b)
    SG.AddTensors(b, t_vec)
    SG.AddInputs(b, i_vec)
    SG.AddOutputs(b, o_vec)
    SG.AddOperators(b, op_vec)
    SG.AddName(b, sg_name)
    sg_off = SG.End(b)
    OC = _mod("OperatorCode")
    oc_offsets = []
    for n in names:
        code = op_code(n)
        OC.Start(b)
        OC.AddDeprecatedBuiltinCode(b, min(code, 127))
        OC.AddBuiltinCode(b, code)
        OC.AddVersion(b, 1)
        oc_offsets.append(OC.End(b))
    M = _mod("Model")
    oc_vec = _vector(b, M.StartOperatorCodesVector, oc_offsets, "PrependUOffsetTRelative")
    sg_vec = _vector(b, M.StartSubgraphsVector, [sg_off], "PrependUOffsetTRelative")
    buf_vec = _vector(b, M.StartBuffersVector, buffer_offsets, "PrependUOffsetTRelative")
    desc = b.CreateString("nnopt test model")
    M.Start(b)
    M.AddVersion(b, version)
    M.AddOperatorCodes(b, oc_vec)
    M.AddSubgraphs(b, sg_vec)
    M.AddDescription(b, desc)
    M.AddBuffers(b, buf_vec)
    b.Finish(M.End(b), file_identifier=identifier)
    return bytes(b.Output())
