"""Pieces shared by the model importers: size checks, types, constants, names, the graph builder."""

from __future__ import annotations

import importlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FileLineColLoc,
    IntAttr,
    IntegerType,
    ModuleOp,
    NameLoc,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from nnopt.compiler.diagnostics import UserError, op_error, verify_module
from nnopt.dialects import nn
from nnopt.dialects.quant import STORAGE_WIDTHS, UniformQuantizedType, storage_limits

MAX_ELEMENTS = 1 << 31
"""Largest number of elements nnopt accepts in one tensor of an imported model."""

MAX_RANK = 8
"""Largest tensor rank nnopt accepts in an imported model."""

Importer = Callable[..., ModuleOp]

IMPORTERS: dict[str, str] = {
    "tflite": "nnopt.compiler.importers.tflite:import_tflite",
    "onnx": "nnopt.compiler.importers.onnx:import_onnx",
}
"""Model format -> ``module:function`` of its importer ``(data, name, ctx=None, *, cleanup=True)``."""


def check_shape(shape: Iterable[int], what: str, location: str) -> tuple[int, ...]:
    """A static shape as a tuple, rejecting negative, too many or absurdly many elements."""
    dims = tuple(int(d) for d in shape)
    if len(dims) > MAX_RANK:
        raise UserError(f"{what} has rank {len(dims)}; nnopt supports at most rank {MAX_RANK}", location)
    if any(d < 0 for d in dims):
        raise UserError(f"{what} has a negative (dynamic) dimension in shape {list(dims)}", location)
    count = math.prod(dims)
    if count > MAX_ELEMENTS:
        raise UserError(
            f"{what} has shape {list(dims)} = {count} elements; "
            f"nnopt supports at most 2^31 elements per tensor",
            location,
        )
    return dims


def quant_type(
    *,
    width: int,
    signed: bool,
    scales: Sequence[float],
    zero_points: Sequence[int],
    axis: int | None,
    what: str,
    location: str,
) -> UniformQuantizedType:
    """A `!quant.uniform` element type, with one clear error for parameters the dialect rejects."""
    if width not in STORAGE_WIDTHS:
        raise UserError(f"{what}: {width}-bit quantized storage is not supported", location)
    lo, hi = storage_limits(width, signed)
    if len(zero_points) != len(scales):
        raise UserError(f"{what} has {len(scales)} scales but {len(zero_points)} zero points", location)
    for i, (s, z) in enumerate(zip(scales, zero_points, strict=True)):
        where = f" (channel {i})" if axis is not None else ""
        if not (math.isfinite(s) and s > 0):
            raise UserError(f"{what} has an invalid quantization scale {s}{where}", location)
        if not lo <= z <= hi:
            raise UserError(f"{what} has zero point {z}{where} outside [{lo}, {hi}]", location)
    return UniformQuantizedType(
        width=width,
        signed=signed,
        scales=[float(s) for s in scales],
        zero_points=[int(z) for z in zero_points],
        axis=-1 if axis is None else axis,
    )


def storage_dtype(elem: Attribute) -> np.dtype:
    """The numpy dtype of the values stored for an element type (quantized: the storage integers)."""
    if isinstance(elem, UniformQuantizedType):
        return elem.numpy_dtype
    if elem == f32:
        return np.dtype("<f4")
    if isinstance(elem, IntegerType):
        return np.dtype(f"<i{elem.width.data // 8}")
    raise ValueError(f"no numpy dtype for {elem}")


def dense_attr(data: np.ndarray, elem: Attribute) -> DenseIntOrFPElementsAttr:
    """A dense attribute holding `data` (quantized: the storage integers, as signless integers)."""
    shape = list(data.shape)
    if isinstance(elem, UniformQuantizedType):
        value_type: Attribute = elem.storage_type
        raw = np.ascontiguousarray(data, dtype=elem.numpy_dtype.newbyteorder("<")).tobytes()
    else:
        value_type = elem
        raw = np.ascontiguousarray(data, dtype=storage_dtype(elem)).tobytes()
    return DenseIntOrFPElementsAttr(TensorType(cast(Any, value_type), shape), BytesAttr(raw))


_NAME_OK = re.compile(r"[A-Za-z_$.][\w$.-]*")


MAX_HINT = 40
"""Longest SSA name hint; the full tensor name stays in the op's location and `nn.name`."""


def value_name(text: str) -> str | None:
    """An SSA name hint close to a model's tensor name (None when nothing usable remains).

    TFLite converters join fused tensor names with ``;``: the first part is kept,
    and long names keep their (most specific) tail.
    """
    name = re.sub(r"[^\w$.-]+", "_", text.split(";")[0].strip()).strip("_")
    if len(name) > MAX_HINT:
        name = name[-MAX_HINT:].lstrip("_.-$0123456789")
    if not name:
        return None
    if not _NAME_OK.fullmatch(name):
        name = "t" + name
    return name if _NAME_OK.fullmatch(name) else None


def symbol_name(text: str, default: str = "main") -> str:
    """A graph symbol name from a model's graph name."""
    name = re.sub(r"[^\w$.]", "_", text.strip())
    if not name:
        return default
    return name if re.match(r"[A-Za-z_]", name) else "g" + name


def unsupported_error(kind: str, counts: Counter[str], supported: Iterable[str], location: str) -> UserError:
    """One error listing every unsupported operator of a model with its count."""
    listing = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
    total = sum(counts.values())
    return UserError(
        f"{total} unsupported {kind} operator{'s' if total != 1 else ''}: {listing}; "
        f"nnopt imports {', '.join(sorted(set(supported)))}",
        location,
    )


class GraphBuilder:
    """Builds one `nn.graph`: ops get ``NameLoc(tensor, file:index:0)`` locations and SSA name hints."""

    def __init__(self, file: str, input_types: Sequence[Attribute], input_names: Sequence[str]) -> None:
        self.file = file
        self._file_attr = StringAttr(file)
        self.block = Block(arg_types=input_types)
        self.input_names = list(input_names)
        for arg, name in zip(self.block.args, input_names, strict=True):
            arg.name_hint = value_name(name)

    def loc(self, name: str, index: int) -> NameLoc:
        """The location of the op at `index` (operator or node index) producing tensor `name`."""
        return NameLoc(StringAttr(name), FileLineColLoc(self._file_attr, IntAttr(max(index, 0)), IntAttr(0)))

    def where(self, name: str, index: int) -> str:
        """The formatted location of an op, for error messages."""
        return f"{self.file}:{max(index, 0)}:0 ({name})"

    def add(self, op: Operation, name: str, index: int) -> Operation:
        """Append `op`, located at `index` and naming its first result after `name`."""
        op.location = self.loc(name, index)
        self.block.add_op(op)
        if op.results:
            op.results[0].name_hint = value_name(name)
        return op

    def const(self, data: np.ndarray, elem: Attribute, name: str, index: int) -> SSAValue:
        """An `nn.const` holding `data` with element type `elem` (a quantized const holds the integers)."""
        attr = dense_attr(data, elem)
        result_type = TensorType(elem, list(data.shape))
        op = nn.ConstOp(attr, result_type)
        self.add(op, name, index)
        return op.result

    def finish(
        self, graph_name: str, outputs: Sequence[SSAValue], output_names: Sequence[str], index: int = 0
    ) -> ModuleOp:
        """Close the graph with `nn.output` (located at `index`), wrap it in a verified module."""
        output = nn.OutputOp(list(outputs))
        output.location = FileLineColLoc(self._file_attr, IntAttr(max(index, 0)), IntAttr(0))
        self.block.add_op(output)
        graph = nn.GraphOp(
            graph_name,
            [a.type for a in self.block.args],
            [v.type for v in outputs],
            Region(self.block),
            arg_attrs=_name_attrs(self.input_names),
            res_attrs=_name_attrs(output_names),
        )
        graph.location = FileLineColLoc(self._file_attr, IntAttr(0), IntAttr(0))
        module = ModuleOp([graph])
        module.location = graph.location
        verify_module(module)
        return module


def _name_attrs(names: Sequence[str]) -> ArrayAttr[DictionaryAttr]:
    return ArrayAttr([DictionaryAttr({nn.NAME_KEY: StringAttr(n)}) for n in names])


def attach_qparams(op: Operation) -> None:
    """Store the derived integer parameters of a quantized op (`nnopt.dialects.qparams.attach`).

    Parameters no integer kernel can implement (say, a softmax whose output is
    not scaled 1/256) are the file's fault: a located `UserError`.
    """
    from nnopt.dialects import qparams

    try:
        qparams.attach(op)
    except qparams.QuantParamError as exc:
        raise op_error(op, str(exc)) from None


def cleanup(module: ModuleOp, ctx: Context | None = None) -> None:
    """The default layout cleanup after import: `nn-propagate-transposes`, then `canonicalize`."""
    from xdsl.transforms.canonicalize import CanonicalizePass

    from nnopt.passes.propagate_transposes import PropagateTransposesPass

    context = Context() if ctx is None else ctx
    PropagateTransposesPass().apply(context, module)
    CanonicalizePass().apply(context, module)
    verify_module(module)


def sniff_format(data: bytes, path: str) -> str:
    """The model format of a file: a TFLite identifier wins, then the extension."""
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return "tflite"
    ext = Path(path).suffix.lower().lstrip(".")
    if ext in IMPORTERS:
        return ext
    raise UserError(
        f"cannot tell the model format (extension '.{ext}'); nnopt imports "
        + ", ".join(f".{e}" for e in IMPORTERS),
        path,
    )


def load_importer(fmt: str) -> Importer:
    """The importer function of a format."""
    module_name, func = IMPORTERS[fmt].split(":")
    importer: Importer = getattr(importlib.import_module(module_name), func)
    return importer


def import_model(path: str, *, cleanup: bool = True, ctx: Context | None = None) -> ModuleOp:
    """Read and import a `.tflite` or `.onnx` file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read model: {exc.strerror or exc}", path) from None
    return load_importer(sniff_format(data, path))(data, path, ctx, cleanup=cleanup)
