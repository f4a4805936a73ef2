"""ONNX importer: an ``.onnx`` model becomes one `nn.graph`.

ONNX is NCHW; `nn` is NHWC. Every value keeps ONNX's layout, and each
layout-sensitive op (Conv, pools, QLinearConv) is wrapped in explicit
`nn.transpose` ops (NCHW -> NHWC before, NHWC -> NCHW after); weights are
transposed when read (OIHW -> OHWI). The cleanup (`nn-propagate-transposes`,
then `canonicalize`) sinks the transposes through elementwise ops, cancels
pairs and folds them into constants, so a plain CNN keeps only the transposes
at its NCHW interface.

Shapes are computed here op by op (ONNX files need not carry them). Constant
subgraphs (Shape, Gather, Unsqueeze, Concat, ... on constants) are folded
while importing. Initializer sizes are checked before any array is built.
QuantizeLinear/DequantizeLinear and QLinearConv/QLinearMatMul keep their
quantization with ``rounding = "onnx_rint"``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnitAttr,
    f32,
    f64,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.importers.common import (
    GraphBuilder,
    attach_qparams,
    check_shape,
    quant_type,
    symbol_name,
    unsupported_error,
)
from nnopt.compiler.importers.common import cleanup as run_cleanup
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType

# TensorProto data types -> numpy dtypes nnopt can read.
_DTYPES: dict[int, str] = {
    1: "<f4",
    2: "u1",
    3: "i1",
    4: "<u2",
    5: "<i2",
    6: "<i4",
    7: "<i8",
    9: "?",
    10: "<f2",
    11: "<f8",
    12: "<u4",
    13: "<u8",
}
_QUANT_STORAGE = {
    "uint8": (8, False),
    "int8": (8, True),
    "int16": (16, True),
    "uint16": (16, False),
    "int32": (32, True),
}

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)

Const = np.ndarray
Value = SSAValue | Const


def _dtype_name(code: int) -> str:
    from onnx import TensorProto

    try:
        return str(TensorProto.DataType.Name(code))
    except ValueError:
        return f"type {code}"


class _BadAttribute(Exception):
    """A node attribute of the wrong kind (turned into a located `UserError`)."""


class _Node:
    """A node with its attributes decoded, and helpers for error messages."""

    def __init__(self, index: int, proto: Any) -> None:
        from onnx import helper

        self.index = index
        self.proto = proto
        self.op_type = _text(proto.op_type)
        self.domain = _text(proto.domain)
        self.name = _text(proto.name)
        self.inputs = [_text(v) for v in proto.input]
        self.outputs = [_text(v) for v in proto.output]
        self.attrs: dict[str, Any] = {}
        for a in proto.attribute:
            value = helper.get_attribute_value(a)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            self.attrs[a.name] = value

    def _get(self, name: str, default: Any, kinds: tuple[type, ...], what: str) -> Any:
        value = self.attrs.get(name, default)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise _BadAttribute(f"attribute '{name}' must be {what}, got {value!r}")
        return value

    def get_int(self, name: str, default: int) -> int:
        """An integer attribute."""
        return int(self._get(name, default, (int,), "an integer"))

    def get_float(self, name: str, default: float) -> float:
        """A float attribute (integers accepted)."""
        return float(self._get(name, default, (float, int), "a number"))

    def get_str(self, name: str, default: str) -> str:
        """A string attribute."""
        return str(self._get(name, default, (str,), "a string"))

    def get_ints(self, name: str, default: Sequence[int]) -> list[int]:
        """A list-of-integers attribute."""
        values = self._get(name, list(default), (list, tuple), "a list of integers")
        if not all(isinstance(v, int) for v in values):
            raise _BadAttribute(f"attribute '{name}' must be a list of integers, got {values!r}")
        return [int(v) for v in values]

    def describe(self) -> str:
        label = f" '{self.name}'" if self.name else ""
        return f"node #{self.index} ({self.op_type}{label})"

    def output_name(self) -> str:
        return self.outputs[0] if self.outputs and self.outputs[0] else (self.name or self.op_type)


Handler = Callable[["_Importer", _Node], None]
_HANDLERS: dict[str, Handler] = {}
_FOLDERS: dict[str, Callable[[_Importer, _Node, list[Any]], list[np.ndarray]]] = {}


def _handles(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            _HANDLERS[name] = fn
        return fn

    return register


SUPPORTED_ONNX_OPS = _HANDLERS
"""ONNX operator type -> handler (default domain only; filled below)."""


class _Importer:
    def __init__(self, model: Any, file: str) -> None:
        self.model = model
        self.file = file
        self.opset = _default_opset(model, file)
        self.graph = model.graph
        self.values: dict[str, SSAValue] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.const_values: dict[tuple[str, str], SSAValue] = {}
        self.qconsts: dict[str, tuple[np.ndarray, UniformQuantizedType]] = {}
        """Constants read through DequantizeLinear (QDQ weights): stored integers and their type."""
        self.dequantized: dict[str, SSAValue] = {}
        self.node: _Node | None = None
        for init in self.graph.initializer:
            self.consts[_text(init.name)] = self.tensor_array(init, f"initializer '{_text(init.name)}'")
        inputs = [i for i in self.graph.input if _text(i.name) not in self.consts]
        types = [self.input_type(i) for i in inputs]
        self.builder = GraphBuilder(file, types, [_text(i.name) for i in inputs])
        for i, arg in zip(inputs, self.builder.block.args, strict=True):
            self.values[_text(i.name)] = arg

    # -- reading ----------------------------------------------------------
    def tensor_array(self, proto: Any, what: str) -> np.ndarray:
        """A TensorProto as numpy, with its size checked before anything is allocated."""
        from onnx import numpy_helper

        dtype = _DTYPES.get(proto.data_type)
        if dtype is None:
            raise UserError(
                f"{what} has element type {_dtype_name(proto.data_type)}, which nnopt cannot read", self.file
            )
        if proto.data_location == 1:
            raise UserError(
                f"{what} keeps its data in an external file; nnopt reads self-contained models", self.file
            )
        shape = check_shape(proto.dims, what, self.file)
        count = math.prod(shape)
        itemsize = np.dtype(dtype).itemsize
        if proto.HasField("raw_data"):
            if len(proto.raw_data) != count * itemsize:
                raise UserError(
                    f"{what} holds {len(proto.raw_data)} bytes, but shape {list(shape)} of "
                    f"{_dtype_name(proto.data_type)} needs {count * itemsize}",
                    self.file,
                )
        else:
            stored = max(
                len(proto.float_data),
                len(proto.int32_data),
                len(proto.int64_data),
                len(proto.double_data),
                len(proto.uint64_data),
            )
            if stored != count:
                raise UserError(
                    f"{what} holds {stored} values, but shape {list(shape)} needs {count}", self.file
                )
        return np.asarray(numpy_helper.to_array(proto)).reshape(shape)

    def input_type(self, info: Any) -> TensorType[Attribute]:
        what = f"graph input '{_text(info.name)}'"
        if not info.type.HasField("tensor_type"):
            raise UserError(f"{what} is not a tensor", self.file)
        tt = info.type.tensor_type
        if tt.elem_type != 1:
            raise UserError(
                f"{what} has element type {_dtype_name(tt.elem_type)}; nnopt imports float32 graph inputs",
                self.file,
            )
        if not tt.HasField("shape"):
            raise UserError(f"{what} has no shape; nnopt needs static input shapes", self.file)
        dims: list[int] = []
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            elif k == 0:
                dims.append(1)  # a symbolic batch dimension: one sample
            else:
                label = d.dim_param or "?"
                raise UserError(f"{what} has a symbolic dimension '{label}' at position {k}", self.file)
        return TensorType(f32, list(check_shape(dims, what, self.file)))

    # -- errors -----------------------------------------------------------
    def error(self, message: str) -> UserError:
        node = self.node
        if node is None:
            return UserError(message, self.file)
        return UserError(f"{node.describe()}: {message}", self.builder.where(node.output_name(), node.index))

    # -- values -----------------------------------------------------------
    def has(self, node: _Node, k: int) -> bool:
        return k < len(node.inputs) and node.inputs[k] != ""

    def get(self, node: _Node, k: int) -> Value:
        if not self.has(node, k):
            raise self.error(f"lacks input {k}")
        name = node.inputs[k]
        if name in self.consts:
            return self.consts[name]
        if name in self.qconsts:
            return self.dequantized_const(name)
        if name in self.values:
            return self.values[name]
        raise self.error(f"reads '{name}', which no earlier node or initializer produces")

    def dequantized_const(self, name: str) -> SSAValue:
        """A QDQ constant as a float value: the quantized `nn.const` through `nn.dequantize`."""
        if name not in self.dequantized:
            data, q = self.qconsts[name]
            c = self.materialize(f"{name}/quantized", data, q)
            op = nn.DequantizeOp(c, TensorType(f32, list(data.shape)))
            self.dequantized[name] = self.add(op, name).results[0]
        return self.dequantized[name]

    def weight(self, node: _Node, k: int) -> tuple[np.ndarray, Attribute]:
        """A constant weight operand: float32 data and `f32`, or a QDQ weight's integers and quantized type."""
        if self.has(node, k) and node.inputs[k] in self.qconsts:
            return self.qconsts[node.inputs[k]]
        return self.const(node, k, "weight").astype(np.float32), f32

    def matrix_weight(self, node: _Node, k: int, transposed: bool, alpha: float = 1.0) -> SSAValue:
        """A 2-D constant ``[K, N]`` (``[N, K]`` when `transposed`) as an FC weight ``[N, K]`` (float)."""
        data, elem = self.weight(node, k)
        if data.ndim != 2:
            raise self.error(f"needs a 2-D weight, got shape {list(data.shape)}")
        w = np.ascontiguousarray(data if transposed else data.T)
        name = f"{node.inputs[k]}/weight"
        if not isinstance(elem, UniformQuantizedType):
            if alpha != 1.0:
                w = (w * np.float32(alpha)).astype(np.float32)
            return self.materialize(name, w)
        if alpha != 1.0:
            raise self.error("alpha != 1 with a quantized (QDQ) weight is not supported")
        axis = None if elem.axis is None else (elem.axis if transposed else 1 - elem.axis)
        qc = self.materialize(name, w, _with_axis(elem, axis))
        return self.add(nn.DequantizeOp(qc, TensorType(f32, list(w.shape))), f"{name}/dequantize").results[0]

    def const(self, node: _Node, k: int, what: str) -> np.ndarray:
        v = self.get(node, k)
        if not isinstance(v, np.ndarray):
            raise self.error(f"its {what} (input {k}) must be a constant")
        return v

    def opt_const(self, node: _Node, k: int, what: str) -> np.ndarray | None:
        return self.const(node, k, what) if self.has(node, k) else None

    def ssa(self, node: _Node, k: int, elem: Attribute | None = None) -> SSAValue:
        """An operand as an SSA value; constants become `nn.const` (float32, or `elem`)."""
        v = self.get(node, k)
        if isinstance(v, SSAValue):
            return v
        return self.materialize(node.inputs[k], v, elem)

    def materialize(self, name: str, data: np.ndarray, elem: Attribute | None = None) -> SSAValue:
        elem = f32 if elem is None else elem
        key = (name, str(elem))
        if key not in self.const_values:
            if elem == f32:
                if data.dtype.kind not in "fiub":
                    raise self.error(
                        f"constant '{name}' of type {data.dtype} cannot be used as a float tensor"
                    )
                data = data.astype(np.float32)
            index = self.node.index if self.node is not None else 0
            self.const_values[key] = self.builder.const(data, elem, name, index)
        return self.const_values[key]

    def define(self, node: _Node, value: Value, k: int = 0) -> None:
        name = node.outputs[k]
        if isinstance(value, np.ndarray):
            self.consts[name] = value
        else:
            self.values[name] = value

    def add(self, op: Operation, name: str | None = None) -> Operation:
        """Append an op located at the current node."""
        node = self.node
        assert node is not None
        if isinstance(op, nn.QuantizableOp) and nn.is_quantized(op.results[0]):
            op.rounding = StringAttr("onnx_rint")
        self.builder.add(op, name or node.output_name(), node.index)
        if isinstance(op, nn.QuantizableOp) and nn.is_quantized(op.results[0]):
            attach_qparams(op)
        return op

    def transpose(self, x: SSAValue, perm: Sequence[int], name: str) -> SSAValue:
        shape = nn.shape_of(x)
        out = TensorType(nn.elem_of(x), [shape[p] for p in perm])
        op = nn.TransposeOp(operands=[x], result_types=[out], properties={"perm": nn.int_array(perm)})
        return self.add(op, name).results[0]

    def reshape(self, x: SSAValue, shape: Sequence[int], name: str | None = None) -> SSAValue:
        return self.add(nn.ReshapeOp(x, TensorType(nn.elem_of(x), list(shape))), name).results[0]

    # -- driver -----------------------------------------------------------
    def check_supported(self, nodes: list[_Node]) -> None:
        counts: Counter[str] = Counter()
        for node in nodes:
            if node.domain not in ("", "ai.onnx"):
                counts[f"{node.domain}.{node.op_type}"] += 1
            elif node.op_type not in _HANDLERS and node.op_type not in _FOLDERS:
                counts[node.op_type] += 1
        if counts:
            raise unsupported_error("ONNX", counts, [*_HANDLERS, *_FOLDERS], self.file)

    def run(self) -> ModuleOp:
        nodes = [_Node(i, n) for i, n in enumerate(self.graph.node)]
        self.check_supported(nodes)
        for node in nodes:
            self.node = node
            try:
                self.convert(node)
            except _BadAttribute as exc:
                raise self.error(str(exc)) from None
        self.node = None
        outputs: list[SSAValue] = []
        names = [_text(o.name) for o in self.graph.output]
        for o, oname in zip(self.graph.output, names, strict=True):
            if oname in self.values:
                outputs.append(self.values[oname])
            elif oname in self.consts:
                outputs.append(self.materialize(oname, self.consts[oname]))
            else:
                raise UserError(f"graph output '{oname}' is never produced", self.file)
            self.check_declared_shape(o, outputs[-1])
        if not outputs:
            raise UserError("the graph has no outputs", self.file)
        name = symbol_name(_text(self.graph.name) or "main")
        return self.builder.finish(name, outputs, names, len(self.graph.node))

    def convert(self, node: _Node) -> None:
        """Fold a node on constants, or emit its `nn` ops."""
        if not node.outputs or not node.outputs[0]:
            raise self.error("has no output")
        if node.op_type in _FOLDERS and self.foldable(node):
            args = [self.get(node, k) if self.has(node, k) else None for k in range(len(node.inputs))]
            try:
                results = _FOLDERS[node.op_type](self, node, args)
            except (ValueError, IndexError, TypeError, ZeroDivisionError, FloatingPointError) as exc:
                raise self.error(f"cannot evaluate it on its constant inputs: {exc}") from None
            for k, r in enumerate(results[: len(node.outputs)]):
                self.define(node, np.asarray(r), k)
            return
        if node.op_type not in _HANDLERS:
            raise self.error("needs constant inputs to be imported")
        _HANDLERS[node.op_type](self, node)

    def foldable(self, node: _Node) -> bool:
        if node.op_type == "Shape":
            return True
        return all(not self.has(node, k) or node.inputs[k] in self.consts for k in range(len(node.inputs)))

    def check_declared_shape(self, info: Any, value: SSAValue) -> None:
        tt = info.type.tensor_type
        if not tt.HasField("shape"):
            return
        declared = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        actual = nn.shape_of(value)
        if len(declared) != len(actual) or any(d not in (None, 0, a) for d, a in zip(declared, actual)):
            shown = ["?" if d is None else d for d in declared]
            raise UserError(
                f"graph output '{_text(info.name)}' is declared with shape {shown}, "
                f"but the graph computes {list(actual)}",
                self.file,
            )


def _default_opset(model: Any, file: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise UserError("the model declares no opset for the default ONNX domain (opset_import)", file)
    return int(versions[0])


# --------------------------------------------------------------------------
# Constant folding (shape arithmetic and friends)
# --------------------------------------------------------------------------


def _folds(*names: str) -> Callable[[Callable[..., list[np.ndarray]]], Callable[..., list[np.ndarray]]]:
    def register(fn: Callable[..., list[np.ndarray]]) -> Callable[..., list[np.ndarray]]:
        for name in names:
            _FOLDERS[name] = fn
        return fn

    return register


@_folds("Constant")
def _fold_constant(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    a = node.attrs
    for attr in node.proto.attribute:
        if attr.name == "value":
            return [imp.tensor_array(attr.t, f"{node.describe()} value")]
    if "value_float" in a:
        return [np.array(a["value_float"], np.float32)]
    if "value_floats" in a:
        return [np.array(a["value_floats"], np.float32)]
    if "value_int" in a:
        return [np.array(a["value_int"], np.int64)]
    if "value_ints" in a:
        return [np.array(a["value_ints"], np.int64)]
    raise imp.error("has no supported value attribute")


@_folds("Identity")
def _fold_identity(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    return [args[0]]


@_folds("Shape")
def _fold_shape(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    v = imp.get(node, 0)
    shape = np.array(v.shape if isinstance(v, np.ndarray) else nn.shape_of(v), np.int64)
    start = node.get_int("start", 0)
    end = node.get_int("end", len(shape)) if "end" in node.attrs else None
    return [shape[start:end]]


@_folds("Cast")
def _fold_cast(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    dtype = _DTYPES.get(node.get_int("to", 0))
    if dtype is None:
        raise imp.error(f"casts to {_dtype_name(node.get_int('to', 0))}")
    return [args[0].astype(dtype)]


@_folds("Gather")
def _fold_gather(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    return [np.take(args[0], args[1].astype(np.int64), axis=node.get_int("axis", 0))]


def _axes(imp: _Importer, node: _Node, args: list[Any], k: int) -> list[int] | None:
    if "axes" in node.attrs:
        return node.get_ints("axes", [])
    if k < len(args) and args[k] is not None:
        return [int(a) for a in np.asarray(args[k]).reshape(-1)]
    return None


@_folds("Unsqueeze")
def _fold_unsqueeze(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    x = args[0]
    axes = _axes(imp, node, args, 1) or []
    rank = x.ndim + len(axes)
    return [x.reshape(_unsqueezed(x.shape, [a % rank for a in axes]))]


def _unsqueezed(shape: Sequence[int], axes: Sequence[int]) -> list[int]:
    out = list(shape)
    for a in sorted(axes):
        out.insert(a, 1)
    return out


@_folds("Squeeze")
def _fold_squeeze(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    x = args[0]
    axes = _axes(imp, node, args, 1)
    return [np.squeeze(x, axis=None if axes is None else tuple(a % x.ndim for a in axes))]


@_folds("Concat")
def _fold_concat(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    return [np.concatenate([a for a in args if a is not None], axis=node.get_int("axis", 0))]


@_folds("Reshape")
def _fold_reshape(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    return [args[0].reshape(_reshape_target(imp, node, args[0].shape))]


@_folds("Flatten")
def _fold_flatten(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    return [args[0].reshape(_flatten_shape(args[0].shape, node.get_int("axis", 1)))]


@_folds("Transpose")
def _fold_transpose(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    perm = node.get_ints("perm", list(range(args[0].ndim - 1, -1, -1)))
    if sorted(perm) != list(range(args[0].ndim)):
        raise imp.error(f"perm {perm} is not a permutation of {args[0].ndim} dimensions")
    return [np.transpose(args[0], perm)]


@_folds("Add", "Sub", "Mul", "Div")
def _fold_arith(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    a, b = args[0], args[1]
    if node.op_type == "Add":
        return [np.asarray(a + b, a.dtype)]
    if node.op_type == "Sub":
        return [np.asarray(a - b, a.dtype)]
    if node.op_type == "Mul":
        return [np.asarray(a * b, a.dtype)]
    if a.dtype.kind in "iu":
        return [np.asarray(np.trunc(a / b), a.dtype)]
    return [np.asarray(a / b, a.dtype)]


@_folds("ConstantOfShape")
def _fold_constant_of_shape(imp: _Importer, node: _Node, args: list[Any]) -> list[np.ndarray]:
    shape = check_shape(args[0].reshape(-1), f"{node.describe()} result", imp.file)
    value = np.zeros(1, np.float32)
    for attr in node.proto.attribute:
        if attr.name == "value":
            value = imp.tensor_array(attr.t, f"{node.describe()} value").reshape(-1)
    return [np.full(shape, value[0], value.dtype)]


# --------------------------------------------------------------------------
# Shared shape helpers
# --------------------------------------------------------------------------


def _flatten_shape(shape: Sequence[int], axis: int) -> tuple[int, int]:
    axis = axis % (len(shape) + 1) if axis < 0 else axis
    return (math.prod(shape[:axis]), math.prod(shape[axis:]))


def _reshape_target(imp: _Importer, node: _Node, in_shape: Sequence[int]) -> list[int]:
    if imp.has(node, 1):
        raw = [int(v) for v in imp.const(node, 1, "shape").reshape(-1)]
    elif "shape" in node.attrs:
        raw = node.get_ints("shape", [])
    else:
        raise imp.error("has no target shape")
    allow_zero = node.get_int("allowzero", 0)
    out = [in_shape[i] if v == 0 and not allow_zero and i < len(in_shape) else v for i, v in enumerate(raw)]
    total = math.prod(in_shape)
    if out.count(-1) > 1 or any(v < -1 for v in out):
        raise imp.error(f"has an invalid target shape {raw}")
    if -1 in out:
        known = math.prod(v for v in out if v != -1)
        if known == 0 or total % known:
            raise imp.error(f"cannot reshape {list(in_shape)} to {raw}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total:
        raise imp.error(f"cannot reshape {list(in_shape)} ({total} elements) to {raw}")
    return list(check_shape(out, f"{node.describe()} result", imp.file))


def _pair(imp: _Importer, node: _Node, name: str, default: list[int] | None) -> list[int]:
    """A 2-D window attribute (kernel_shape, strides, dilations): two positive integers."""
    if default is None and name not in node.attrs:
        raise imp.error(f"lacks its {name} attribute")
    values = node.get_ints(name, default or [])
    if len(values) != 2 or any(v < 1 for v in values):
        raise imp.error(f"{name} must be two positive integers (2-D ops only), got {values}")
    return values


def _text(value: str | bytes) -> str:
    """A protobuf string field (bytes when the file holds invalid UTF-8)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _window_padding(
    imp: _Importer,
    node: _Node,
    in_hw: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dil: Sequence[int],
) -> tuple[Attribute, tuple[int, int, int, int]]:
    """The `padding` property and explicit (top, bottom, left, right) of an ONNX window op."""
    auto = node.get_str("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        t, b = nn.same_padding(in_hw[0], kernel[0], strides[0], dil[0])
        left, r = nn.same_padding(in_hw[1], kernel[1], strides[1], dil[1])
        if auto == "SAME_UPPER":
            return StringAttr("same"), (t, b, left, r)
        pads = (b, t, r, left)
        return nn.padding_attr(pads), pads
    if auto == "VALID":
        return StringAttr("valid"), (0, 0, 0, 0)
    if auto != "NOTSET":
        raise imp.error(f"has unknown auto_pad '{auto}'")
    p = node.get_ints("pads", [0, 0, 0, 0])
    if len(p) != 4 or any(v < 0 for v in p):
        raise imp.error(f"has invalid pads {p} (2-D ops take 4 non-negative values)")
    pads = (p[0], p[2], p[1], p[3])
    if pads == (0, 0, 0, 0):
        return StringAttr("valid"), pads
    return nn.padding_attr(pads), pads


def _check_rank(imp: _Importer, v: SSAValue, rank: int, what: str) -> tuple[int, ...]:
    shape = nn.shape_of(v)
    if len(shape) != rank:
        raise imp.error(f"supports rank-{rank} {what} only, got shape {list(shape)}")
    return shape


# --------------------------------------------------------------------------
# Quantization helpers
# --------------------------------------------------------------------------


def _qtype(
    imp: _Importer,
    scale: np.ndarray,
    zp: np.ndarray | None,
    axis: int | None,
    shape: Sequence[int],
    what: str,
) -> UniformQuantizedType:
    """A quantized type from ONNX scale/zero-point constants (a 1-D scale is per-axis along `axis`)."""
    dtype = "uint8" if zp is None else str(zp.dtype)
    if dtype not in _QUANT_STORAGE:
        raise imp.error(f"{what}: quantized type {dtype} is not supported")
    width, signed = _QUANT_STORAGE[dtype]
    scales = [float(s) for s in np.asarray(scale, np.float32).reshape(-1)]
    zps = [0] * len(scales) if zp is None else [int(z) for z in zp.reshape(-1)]
    if len(zps) == 1 and len(scales) > 1:
        zps = zps * len(scales)
    q_axis: int | None = None
    if scale.size > 1:
        q_axis = (1 if axis is None else axis) % max(len(shape), 1)
        if shape[q_axis] != len(scales):
            raise imp.error(
                f"{what}: {len(scales)} scales do not fit dimension {q_axis} of shape {list(shape)}"
            )
    return quant_type(
        width=width,
        signed=signed,
        scales=scales,
        zero_points=zps,
        axis=q_axis,
        what=f"{imp.node.describe() if imp.node else ''} {what}".strip(),
        location=imp.file,
    )


def _with_axis(q: UniformQuantizedType, axis: int | None) -> UniformQuantizedType:
    return UniformQuantizedType(
        width=q.width,
        signed=q.signed,
        scales=q.scale_values,
        zero_points=q.zero_point_values,
        axis=-1 if axis is None else axis,
        storage_min=q.qmin,
        storage_max=q.qmax,
    )


# --------------------------------------------------------------------------
# Handlers
# --------------------------------------------------------------------------


@_handles("Identity", "Dropout")
def _identity(imp: _Importer, node: _Node) -> None:
    imp.define(node, imp.get(node, 0))
    if node.op_type == "Dropout" and len(node.outputs) > 1 and node.outputs[1]:
        raise imp.error("mask output is not supported")


def _conv_like(
    imp: _Importer,
    node: _Node,
    x: SSAValue,
    w: np.ndarray,
    w_elem: Attribute,
    bias: SSAValue | None,
    out_elem: Attribute,
    w_axis_per_channel: bool,
    dequantize: bool = False,
) -> None:
    """Conv / QLinearConv: NCHW `x`, OIHW `w` -> NHWC conv between two transposes.

    With `dequantize`, a quantized `w_elem` (a QDQ weight) reaches the float conv through `nn.dequantize`.
    """
    shape = _check_rank(imp, x, 4, "inputs (2-D convolution)")
    if w.ndim != 4:
        raise imp.error(f"supports 2-D convolutions only, weight shape {list(w.shape)}")
    group = node.get_int("group", 1)
    cout, cin_g, kh, kw = w.shape
    cin = shape[1]
    if group < 1 or cin != cin_g * group or cout % group:
        raise imp.error(f"weight {list(w.shape)} does not fit input {list(shape)} with group={group}")
    kernel = _pair(imp, node, "kernel_shape", [kh, kw])
    if kernel != [kh, kw]:
        raise imp.error(f"kernel_shape {kernel} does not match weight {list(w.shape)}")
    strides = _pair(imp, node, "strides", [1, 1])
    dil = _pair(imp, node, "dilations", [1, 1])
    padding, pads = _window_padding(imp, node, shape[2:], kernel, strides, dil)
    oh, ow = nn.window_output_hw(shape[2:], kernel, strides, dil, pads)
    if oh < 1 or ow < 1:
        raise imp.error(f"kernel {kernel} does not fit input {list(shape)}")
    depthwise = group == cin and cin_g == 1 and group > 1
    wname = node.inputs[1]
    if depthwise:
        wdata = np.ascontiguousarray(w.transpose(1, 2, 3, 0))  # [1, KH, KW, Cout]
        welem = (
            _with_axis(w_elem, 3)
            if w_axis_per_channel and isinstance(w_elem, UniformQuantizedType)
            else w_elem
        )
    else:
        wdata = np.ascontiguousarray(w.transpose(0, 2, 3, 1))  # OHWI
        welem = w_elem
    wv = imp.materialize(f"{wname}/ohwi" if not depthwise else f"{wname}/1hwo", wdata, welem)
    if dequantize and nn.is_quantized(welem):
        deq = nn.DequantizeOp(wv, TensorType(f32, list(wdata.shape)))
        wv = imp.add(deq, f"{wname}/dequantize").results[0]
    xt = imp.transpose(x, TO_NHWC, f"{node.output_name()}/to_nhwc")
    props: dict[str, Attribute] = {"strides": nn.int_array(strides), "padding": padding}
    if dil != [1, 1]:
        props["dilations"] = nn.int_array(dil)
    out_type = TensorType(out_elem, [shape[0], oh, ow, cout])
    cls = nn.DepthwiseConv2DOp if depthwise else nn.Conv2DOp
    y = imp.add(cls(operands=[xt, wv, bias], result_types=[out_type], properties=props)).results[0]
    imp.define(node, imp.transpose(y, TO_NCHW, f"{node.output_name()}/to_nchw"))


@_handles("Conv")
def _conv(imp: _Importer, node: _Node) -> None:
    x = imp.get(node, 0)
    if not isinstance(x, SSAValue):
        x = imp.ssa(node, 0)
    w, w_elem = imp.weight(node, 1)
    bias = None
    if imp.has(node, 2):
        b = imp.const(node, 2, "bias").astype(np.float32).reshape(-1)
        bias = imp.materialize(node.inputs[2], b)
    if isinstance(w_elem, UniformQuantizedType) and w_elem.axis not in (None, 0):
        raise imp.error(f"QDQ weights must be quantized per tensor or along axis 0, got axis {w_elem.axis}")
    _conv_like(imp, node, x, w, w_elem, bias, f32, nn.is_quantized(w_elem), dequantize=True)


@_handles("QLinearConv")
def _qlinear_conv(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    x_q = _qtype(imp, imp.const(node, 1, "x_scale"), imp.opt_const(node, 2, "x_zero_point"), None, (), "x")
    _expect_input_type(imp, x, x_q)
    w = imp.const(node, 3, "weight")
    w_scale = imp.const(node, 4, "w_scale")
    w_q = _qtype(imp, w_scale, imp.opt_const(node, 5, "w_zero_point"), 0, w.shape, "weight")
    y_q = _qtype(imp, imp.const(node, 6, "y_scale"), imp.opt_const(node, 7, "y_zero_point"), None, (), "y")
    bias = None
    if imp.has(node, 8):
        b = imp.const(node, 8, "bias").astype(np.int32).reshape(-1)
        b_scales = [x_q.scale * s for s in w_q.scale_values]
        b_q = quant_type(
            width=32,
            signed=True,
            scales=b_scales,
            zero_points=[0] * len(b_scales),
            axis=0 if w_q.is_per_axis else None,
            what=f"{node.describe()} bias",
            location=imp.file,
        )
        bias = imp.materialize(node.inputs[8], b, b_q)
    _conv_like(imp, node, x, w, w_q, bias, y_q, w_q.is_per_axis)


def _expect_input_type(imp: _Importer, x: SSAValue, q: UniformQuantizedType) -> None:
    if nn.elem_of(x) != q:
        raise imp.error(f"its input has type {nn.elem_of(x)}, but the node reads it as {q}")


def _pool_attrs(
    imp: _Importer, node: _Node, shape: Sequence[int]
) -> tuple[list[int], list[int], Attribute, tuple[int, int, int, int]]:
    kernel = _pair(imp, node, "kernel_shape", None)
    strides = _pair(imp, node, "strides", [1, 1])
    if _pair(imp, node, "dilations", [1, 1]) != [1, 1]:
        raise imp.error("dilated pooling is not supported")
    padding, pads = _window_padding(imp, node, shape[2:], kernel, strides, [1, 1])
    if node.get_int("ceil_mode", 0):
        for i in range(2):
            padded = shape[2 + i] + pads[2 * i] + pads[2 * i + 1]
            if (padded - kernel[i]) % strides[i]:
                raise imp.error("ceil_mode=1 changes the output size here; it is not supported")
    return kernel, strides, padding, pads


@_handles("MaxPool", "AveragePool")
def _pool(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    shape = _check_rank(imp, x, 4, "inputs (2-D pooling)")
    if len(node.outputs) > 1 and node.outputs[1]:
        raise imp.error("the Indices output is not supported")
    kernel, strides, padding, pads = _pool_attrs(imp, node, shape)
    xt = imp.transpose(x, TO_NHWC, f"{node.output_name()}/to_nhwc")
    if node.op_type == "AveragePool" and node.get_int("count_include_pad", 0) and any(pads):
        t, b, left, r = pads
        padded_shape = [shape[0], shape[2] + t + b, shape[3] + left + r, shape[1]]
        xt = imp.add(
            nn.PadOp(
                operands=[xt],
                result_types=[TensorType(nn.elem_of(x), padded_shape)],
                properties={"pads": nn.int_array([0, 0, t, b, left, r, 0, 0])},
            ),
            f"{node.output_name()}/pad",
        ).results[0]
        padding, pads = StringAttr("valid"), (0, 0, 0, 0)
    in_hw = nn.shape_of(xt)[1:3]
    oh, ow = nn.window_output_hw(in_hw, kernel, strides, (1, 1), pads)
    if oh < 1 or ow < 1:
        raise imp.error(f"kernel {kernel} does not fit input {list(shape)}")
    cls = nn.MaxPool2DOp if node.op_type == "MaxPool" else nn.AvgPool2DOp
    out = TensorType(nn.elem_of(x), [shape[0], oh, ow, shape[1]])
    props = {"kernel": nn.int_array(kernel), "strides": nn.int_array(strides), "padding": padding}
    y = imp.add(cls(operands=[xt], result_types=[out], properties=props)).results[0]
    imp.define(node, imp.transpose(y, TO_NCHW, f"{node.output_name()}/to_nchw"))


@_handles("GlobalAveragePool")
def _global_avg(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    shape = nn.shape_of(x)
    if len(shape) < 3:
        raise imp.error(f"needs an input of rank >= 3, got {list(shape)}")
    axes = list(range(2, len(shape)))
    out = TensorType(nn.elem_of(x), [*shape[:2], *([1] * len(axes))])
    op = nn.MeanOp(
        operands=[x], result_types=[out], properties={"axes": nn.int_array(axes), "keep_dims": UnitAttr()}
    )
    imp.define(node, imp.add(op).results[0])


@_handles("GlobalMaxPool")
def _global_max(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    shape = _check_rank(imp, x, 4, "inputs")
    xt = imp.transpose(x, TO_NHWC, f"{node.output_name()}/to_nhwc")
    out = TensorType(nn.elem_of(x), [shape[0], 1, 1, shape[1]])
    props = {
        "kernel": nn.int_array(shape[2:]),
        "strides": nn.int_array([1, 1]),
        "padding": StringAttr("valid"),
    }
    y = imp.add(nn.MaxPool2DOp(operands=[xt], result_types=[out], properties=props)).results[0]
    imp.define(node, imp.transpose(y, TO_NCHW, f"{node.output_name()}/to_nchw"))


def _fully_connected(
    imp: _Importer, node: _Node, a: SSAValue, weight: SSAValue, bias: SSAValue | None, out_elem: Attribute
) -> SSAValue:
    a_shape = nn.shape_of(a)
    w_shape = nn.shape_of(weight)
    keep = len(a_shape) > 2
    out_shape = nn.FullyConnectedOp.result_shape(a_shape, w_shape, keep)
    if out_shape is None or a_shape[-1] != w_shape[1]:
        raise imp.error(f"cannot multiply {list(a_shape)} by a [{w_shape[1]}, {w_shape[0]}] matrix")
    props: dict[str, Attribute] = {"keep_num_dims": UnitAttr()} if keep else {}
    op = nn.FullyConnectedOp(
        operands=[a, weight, bias], result_types=[TensorType(out_elem, list(out_shape))], properties=props
    )
    return imp.add(op).results[0]


@_handles("Gemm")
def _gemm(imp: _Importer, node: _Node) -> None:
    a = imp.ssa(node, 0)
    if len(nn.shape_of(a)) != 2:
        raise imp.error(f"Gemm needs a 2-D input A, got {list(nn.shape_of(a))}")
    if node.get_int("transA", 0):
        a = imp.transpose(a, (1, 0), f"{node.output_name()}/transpose_a")
    alpha = node.get_float("alpha", 1.0)
    beta = node.get_float("beta", 1.0)
    trans_b = node.get_int("transB", 0)
    m = nn.shape_of(a)[0]
    if imp.has(node, 1) and (node.inputs[1] in imp.consts or node.inputs[1] in imp.qconsts):
        w = imp.matrix_weight(node, 1, bool(trans_b), alpha)
        n = nn.shape_of(w)[0]
        bias = None
        c = imp.opt_const(node, 2, "C") if imp.has(node, 2) and node.inputs[2] in imp.consts else None
        if c is not None and c.size in (1, n) and (c.ndim <= 1 or c.shape[-1] == n or c.size == 1):
            cb = np.broadcast_to(c.astype(np.float32).reshape(-1), (n,)) * np.float32(beta)
            bias = imp.materialize(f"{node.inputs[2]}/bias", np.ascontiguousarray(cb, np.float32))
            c_left = False
        else:
            c_left = imp.has(node, 2)
        y = _fully_connected(imp, node, a, w, bias, f32)
    else:
        b = imp.ssa(node, 1)
        if alpha != 1.0:
            raise imp.error("alpha != 1 with a non-constant B is not supported")
        props: dict[str, Attribute] = {"adj_y": UnitAttr()} if trans_b else {}
        bs = nn.shape_of(b)
        n = bs[0] if trans_b else bs[1]
        y = imp.add(
            nn.MatMulOp(operands=[a, b], result_types=[TensorType(f32, [m, n])], properties=props)
        ).results[0]
        c_left = imp.has(node, 2)
    if c_left:
        c_val = imp.ssa(node, 2)
        if beta != 1.0:
            raise imp.error("beta != 1 with a full C matrix is not supported")
        shape = nn.broadcast_shapes(nn.shape_of(y), nn.shape_of(c_val))
        if shape is None:
            raise imp.error(f"C {list(nn.shape_of(c_val))} does not broadcast to [{m}, {n}]")
        y = imp.add(nn.AddOp(y, c_val, TensorType(f32, list(shape)))).results[0]
    imp.define(node, y)


@_handles("MatMul")
def _matmul(imp: _Importer, node: _Node) -> None:
    a = imp.ssa(node, 0)
    name = node.inputs[1] if imp.has(node, 1) else ""
    stored = imp.consts.get(name, imp.qconsts[name][0] if name in imp.qconsts else None)
    if stored is not None and stored.ndim == 2 and len(nn.shape_of(a)) >= 2:
        w = imp.matrix_weight(node, 1, False)
        imp.define(node, _fully_connected(imp, node, a, w, None, f32))
        return
    bv = imp.ssa(node, 1)
    shape = nn.MatMulOp.result_shape(nn.shape_of(a), nn.shape_of(bv), False, False)
    if shape is None:
        raise imp.error(f"cannot multiply {list(nn.shape_of(a))} by {list(nn.shape_of(bv))}")
    imp.define(
        node, imp.add(nn.MatMulOp(operands=[a, bv], result_types=[TensorType(f32, list(shape))])).results[0]
    )


@_handles("QLinearMatMul")
def _qlinear_matmul(imp: _Importer, node: _Node) -> None:
    a = imp.ssa(node, 0)
    a_q = _qtype(imp, imp.const(node, 1, "a_scale"), imp.opt_const(node, 2, "a_zero_point"), None, (), "a")
    _expect_input_type(imp, a, a_q)
    y_q = _qtype(imp, imp.const(node, 6, "y_scale"), imp.opt_const(node, 7, "y_zero_point"), None, (), "y")
    b = imp.get(node, 3)
    if isinstance(b, np.ndarray) and b.ndim == 2:
        b_q = _qtype(
            imp, imp.const(node, 4, "b_scale"), imp.opt_const(node, 5, "b_zero_point"), 1, b.shape, "b"
        )
        w_q = _with_axis(b_q, 0) if b_q.is_per_axis else b_q
        w = imp.materialize(f"{node.inputs[3]}/transposed", np.ascontiguousarray(b.T), w_q)
        imp.define(node, _fully_connected(imp, node, a, w, None, y_q))
        return
    bv = imp.ssa(node, 3)
    b_q = _qtype(imp, imp.const(node, 4, "b_scale"), imp.opt_const(node, 5, "b_zero_point"), None, (), "b")
    _expect_input_type(imp, bv, b_q)
    shape = nn.MatMulOp.result_shape(nn.shape_of(a), nn.shape_of(bv), False, False)
    if shape is None:
        raise imp.error(f"cannot multiply {list(nn.shape_of(a))} by {list(nn.shape_of(bv))}")
    imp.define(
        node, imp.add(nn.MatMulOp(operands=[a, bv], result_types=[TensorType(y_q, list(shape))])).results[0]
    )


_BINARY: dict[str, type[nn.AddOp | nn.SubOp | nn.MulOp]] = {"Add": nn.AddOp, "Sub": nn.SubOp, "Mul": nn.MulOp}


@_handles("Add", "Sub", "Mul", "Div")
def _binary(imp: _Importer, node: _Node) -> None:
    if imp.opset < 7 and node.get_int("broadcast", 0):
        raise imp.error("legacy (opset < 7) broadcasting with 'broadcast'/'axis' is not supported")
    if node.op_type == "Div":
        c = imp.get(node, 1)
        if not isinstance(c, np.ndarray):
            raise imp.error("division by a non-constant tensor is not supported")
        recip = (np.float32(1.0) / c.astype(np.float32)).astype(np.float32)
        lhs, rhs = imp.ssa(node, 0), imp.materialize(f"{node.inputs[1]}/reciprocal", recip)
        cls: type[nn.AddOp | nn.SubOp | nn.MulOp] = nn.MulOp
    else:
        lhs, rhs = imp.ssa(node, 0), imp.ssa(node, 1)
        cls = _BINARY[node.op_type]
    shape = nn.broadcast_shapes(nn.shape_of(lhs), nn.shape_of(rhs))
    if shape is None:
        raise imp.error(f"operands {list(nn.shape_of(lhs))} and {list(nn.shape_of(rhs))} do not broadcast")
    imp.define(node, imp.add(cls(lhs, rhs, TensorType(nn.elem_of(lhs), list(shape)))).results[0])


_UNARY: dict[str, type[nn.ReluOp | nn.LogisticOp | nn.TanhOp]] = {
    "Relu": nn.ReluOp,
    "Sigmoid": nn.LogisticOp,
    "Tanh": nn.TanhOp,
}


@_handles("Relu", "Sigmoid", "Tanh")
def _unary(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    imp.define(node, imp.add(_UNARY[node.op_type](x)).results[0])


@_handles("Clip")
def _clip(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    if imp.opset < 11:
        lo = node.get_float("min", -math.inf)
        hi = node.get_float("max", math.inf)
    else:
        lo_c = imp.opt_const(node, 1, "min")
        hi_c = imp.opt_const(node, 2, "max")
        lo = -math.inf if lo_c is None else float(lo_c.reshape(-1)[0])
        hi = math.inf if hi_c is None else float(hi_c.reshape(-1)[0])
    if lo == 0.0 and hi == 6.0:
        op: Operation = nn.Relu6Op(x)
    elif lo == 0.0 and hi == math.inf:
        op = nn.ReluOp(x)
    else:
        big = float(np.finfo(np.float32).max)
        op = nn.ClampOp(x, min=FloatAttr(max(lo, -big), f64), max=FloatAttr(min(hi, big), f64))
    imp.define(node, imp.add(op).results[0])


@_handles("Softmax")
def _softmax(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    shape = nn.shape_of(x)
    rank = len(shape)
    axis = node.get_int("axis", 1 if imp.opset < 13 else -1) % max(rank, 1)
    if axis == rank - 1:
        imp.define(node, imp.add(nn.SoftmaxOp(x)).results[0])
        return
    name = node.output_name()
    if imp.opset < 13:  # softmax over the flattened trailing dimensions
        flat = imp.reshape(x, _flatten_shape(shape, axis), f"{name}/flatten")
        y = imp.add(nn.SoftmaxOp(flat), f"{name}/softmax").results[0]
        imp.define(node, imp.reshape(y, shape))
        return
    perm = [d for d in range(rank) if d != axis] + [axis]
    inv = [perm.index(d) for d in range(rank)]
    t = imp.transpose(x, perm, f"{name}/axis_last")
    y = imp.add(nn.SoftmaxOp(t), f"{name}/softmax").results[0]
    imp.define(node, imp.transpose(y, inv, name))


@_handles("Reshape")
def _reshape(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    imp.define(node, imp.reshape(x, _reshape_target(imp, node, nn.shape_of(x))))


@_handles("Flatten")
def _flatten(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    imp.define(node, imp.reshape(x, _flatten_shape(nn.shape_of(x), node.get_int("axis", 1))))


@_handles("Squeeze", "Unsqueeze")
def _squeeze(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    shape = list(nn.shape_of(x))
    args = [None, imp.opt_const(node, 1, "axes")]
    axes = _axes(imp, node, args, 1)
    if node.op_type == "Unsqueeze":
        rank = len(shape) + len(axes or [])
        new = _unsqueezed(shape, [a % rank for a in axes or []])
    else:
        drop = (
            {a % len(shape) for a in axes} if axes is not None else {i for i, d in enumerate(shape) if d == 1}
        )
        if any(shape[a] != 1 for a in drop):
            raise imp.error(f"cannot squeeze non-unit dimensions {sorted(drop)} of {shape}")
        new = [d for i, d in enumerate(shape) if i not in drop]
    imp.define(node, imp.reshape(x, new))


@_handles("Transpose")
def _transpose(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    rank = len(nn.shape_of(x))
    perm = node.get_ints("perm", list(range(rank - 1, -1, -1)))
    if sorted(perm) != list(range(rank)):
        raise imp.error(f"perm {perm} is not a permutation of {rank} dimensions")
    imp.define(node, imp.transpose(x, perm, node.output_name()))


@_handles("Concat")
def _concat(imp: _Importer, node: _Node) -> None:
    values = [imp.ssa(node, k) for k in range(len(node.inputs)) if imp.has(node, k)]
    if not values:
        raise imp.error("has no inputs")
    shape = list(nn.shape_of(values[0]))
    axis = node.get_int("axis", 0) % max(len(shape), 1)
    for v in values[1:]:
        s = nn.shape_of(v)
        if len(s) != len(shape) or any(s[i] != shape[i] for i in range(len(shape)) if i != axis):
            raise imp.error(f"input {list(s)} does not match {shape} off axis {axis}")
    shape[axis] = sum(nn.shape_of(v)[axis] for v in values)
    op = nn.ConcatOp(
        operands=[values],
        result_types=[TensorType(nn.elem_of(values[0]), shape)],
        properties={"axis": IntegerAttr(axis, i64)},
    )
    imp.define(node, imp.add(op).results[0])


@_handles("Pad")
def _pad(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    shape = nn.shape_of(x)
    mode = node.get_str("mode", "constant")
    if mode != "constant":
        raise imp.error(f"pad mode '{mode}' is not supported (only 'constant')")
    if imp.opset < 11:
        raw = node.get_ints("pads", [])
        value = node.get_float("value", 0.0)
    else:
        raw = [int(v) for v in imp.const(node, 1, "pads").reshape(-1)]
        c = imp.opt_const(node, 2, "constant_value")
        value = 0.0 if c is None or c.size == 0 else float(c.reshape(-1)[0])
    axes = list(range(len(shape)))
    if imp.has(node, 3):
        axes = [int(a) % len(shape) for a in imp.const(node, 3, "axes").reshape(-1)]
    if len(raw) != 2 * len(axes):
        raise imp.error(f"pads {raw} do not fit {len(axes)} axes")
    if any(v < 0 for v in raw):
        raise imp.error(f"negative pads {raw} (cropping) are not supported")
    pairs = [[0, 0] for _ in shape]
    for j, a in enumerate(axes):
        pairs[a] = [raw[j], raw[j + len(axes)]]
    out = [d + b + e for d, (b, e) in zip(shape, pairs, strict=True)]
    props: dict[str, Attribute] = {"pads": nn.int_array([v for p in pairs for v in p])}
    if value != 0.0:
        props["value"] = FloatAttr(value, f64)
    op = nn.PadOp(
        operands=[x],
        result_types=[TensorType(nn.elem_of(x), check_shape(out, node.describe(), imp.file))],
        properties=props,
    )
    imp.define(node, imp.add(op).results[0])


@_handles("BatchNormalization")
def _batchnorm(imp: _Importer, node: _Node) -> None:
    if len([o for o in node.outputs if o]) > 1 or node.get_int("training_mode", 0):
        raise imp.error("training-mode BatchNormalization is not supported")
    x = imp.ssa(node, 0)
    shape = nn.shape_of(x)
    if len(shape) < 2:
        raise imp.error(f"needs an input of rank >= 2, got {list(shape)}")
    scale, bias, mean, var = (
        imp.const(node, k, n).astype(np.float64) for k, n in enumerate(("scale", "B", "mean", "var"), 1)
    )
    eps = node.get_float("epsilon", 1e-5)
    a = scale / np.sqrt(var + eps)
    c = bias - mean * a
    bshape = [1, shape[1], *([1] * (len(shape) - 2))]
    name = node.output_name()
    av = imp.materialize(f"{name}/scale", a.astype(np.float32).reshape(bshape))
    cv = imp.materialize(f"{name}/shift", c.astype(np.float32).reshape(bshape))
    y = imp.add(nn.MulOp(x, av, x.type), f"{name}/mul").results[0]
    imp.define(node, imp.add(nn.AddOp(y, cv, x.type)).results[0])


@_handles("ReduceMean")
def _reduce_mean(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    shape = nn.shape_of(x)
    axes = _axes(imp, node, [None, imp.opt_const(node, 1, "axes")], 1)
    if axes is None or not axes:
        if node.get_int("noop_with_empty_axes", 0):
            imp.define(node, x)
            return
        axes = list(range(len(shape)))
    norm = sorted({a % len(shape) for a in axes})
    keep = node.get_int("keepdims", 1)
    out = (
        [1 if i in norm else d for i, d in enumerate(shape)]
        if keep
        else [d for i, d in enumerate(shape) if i not in norm]
    )
    props: dict[str, Attribute] = {"axes": nn.int_array(norm)}
    if keep:
        props["keep_dims"] = UnitAttr()
    imp.define(
        node,
        imp.add(
            nn.MeanOp(operands=[x], result_types=[TensorType(nn.elem_of(x), out)], properties=props)
        ).results[0],
    )


@_handles("QuantizeLinear")
def _quantize_linear(imp: _Importer, node: _Node) -> None:
    x = imp.ssa(node, 0)
    shape = nn.shape_of(x)
    q = _qtype(
        imp,
        imp.const(node, 1, "y_scale"),
        imp.opt_const(node, 2, "y_zero_point"),
        node.get_int("axis", 1),
        shape,
        "y",
    )
    if not nn.is_float(x):
        raise imp.error(f"quantizes a non-float input {x.type}")
    op = nn.QuantizeOp(operands=[x], result_types=[TensorType(q, list(shape))])
    imp.define(node, imp.add(op).results[0])


@_handles("DequantizeLinear")
def _dequantize_linear(imp: _Importer, node: _Node) -> None:
    v = imp.get(node, 0)
    shape = v.shape if isinstance(v, np.ndarray) else nn.shape_of(v)
    zp = imp.opt_const(node, 2, "x_zero_point")
    if isinstance(v, np.ndarray) and zp is None:
        zp = np.zeros(1, v.dtype)
    q = _qtype(imp, imp.const(node, 1, "x_scale"), zp, node.get_int("axis", 1), shape, "x")
    if isinstance(v, np.ndarray):
        if str(v.dtype) not in _QUANT_STORAGE or np.dtype(str(v.dtype)) != q.numpy_dtype:
            raise imp.error(f"dequantizes a constant of type {v.dtype} with a {q} zero point")
        imp.qconsts[node.outputs[0]] = (v, q)  # emitted where it is used (weights stay integers)
        return
    else:
        x = v
        if nn.elem_of(x) != q:
            raise imp.error(f"its input has type {nn.elem_of(x)}, but the node reads it as {q}")
    imp.define(node, imp.add(nn.DequantizeOp(x, TensorType(f32, list(shape)))).results[0])


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def read_model(data: bytes, file: str) -> Any:
    """Parse ONNX protobuf bytes, with one clear error for anything that is not a usable model."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(bytes(data))
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise UserError(f"not a valid ONNX model (protobuf parse failed: {exc})", file) from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise UserError("not an ONNX model: it holds no graph", file)
    if model.ir_version <= 0:
        raise UserError("not an ONNX model: ir_version is missing", file)
    return model


def import_onnx(data: bytes, name: str, ctx: Context | None = None, *, cleanup: bool = True) -> ModuleOp:
    """Import an ONNX model as a module holding one verified `nn.graph` (NHWC inside).

    With `cleanup` (the default) the layout transposes are propagated and folded away.
    """
    module = _Importer(read_model(data, name), name).run()
    if cleanup:
        run_cleanup(module, ctx)
    return module
