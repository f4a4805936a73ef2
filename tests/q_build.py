"""Build small `nn` graphs in tests (used by the interpreter and qparams tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    Float32Type,
    IntegerType,
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType


def qt(
    scale: float | Sequence[float],
    zero_point: int | Sequence[int] = 0,
    *,
    width: int = 8,
    signed: bool = True,
    axis: int = -1,
) -> UniformQuantizedType:
    """A per-tensor (or, with `axis`, per-axis) quantized element type."""
    scales = [float(s) for s in scale] if isinstance(scale, Sequence) else [float(scale)]
    zps = (
        [int(z) for z in zero_point] if isinstance(zero_point, Sequence) else [int(zero_point)] * len(scales)
    )
    return UniformQuantizedType(width=width, signed=signed, scales=scales, zero_points=zps, axis=axis)


def tt(shape: Sequence[int], elem: Attribute = f32) -> TensorType[Attribute]:
    """``tensor<shape x elem>``."""
    return TensorType(elem, list(shape))


class GraphBuilder:
    """Append ops to a fresh `nn.graph` and wrap it in a module."""

    def __init__(self, name: str = "g") -> None:
        self.name = name
        self.block = Block()
        self.input_names: list[str] = []

    def arg(self, type_: Attribute, name: str | None = None) -> SSAValue:
        """A graph input."""
        v = self.block.insert_arg(type_, len(self.block.args))
        self.input_names.append(name or f"x{len(self.input_names)}")
        v.name_hint = self.input_names[-1]
        return v

    def add(self, op: Operation, name: str | None = None) -> SSAValue:
        """Append `op`; its first result."""
        self.block.add_op(op)
        if name:
            op.results[0].name_hint = name
        return op.results[0]

    def const(self, data: np.ndarray, elem: Attribute = f32, name: str | None = None) -> SSAValue:
        """An `nn.const` holding `data` (stored integers for a quantized `elem`)."""
        arr = np.ascontiguousarray(data)
        if isinstance(elem, UniformQuantizedType):
            storage: Attribute = IntegerType(elem.width)
            arr = arr.astype(elem.numpy_dtype)
        elif isinstance(elem, Float32Type):
            storage = elem
            arr = arr.astype(np.float32)
        else:
            storage = elem
        value = DenseIntOrFPElementsAttr(TensorType(storage, list(arr.shape)), BytesAttr(arr.tobytes()))
        return self.add(nn.ConstOp(value, tt(arr.shape, elem)), name)

    def op(
        self,
        cls: type[Operation],
        operands: Sequence[SSAValue | Sequence[SSAValue] | None],
        result: Attribute,
        name: str | None = None,
        **props: Any,
    ) -> SSAValue:
        """Append a `cls` op (built with ``create``: operands flattened, ``None`` dropped)."""
        properties = {k: _prop(v) for k, v in props.items() if v is not None}
        flat: list[SSAValue] = []
        for o in operands:
            if isinstance(o, SSAValue):
                flat.append(o)
            elif o is not None:
                flat.extend(o)
        return self.add(cls.create(operands=flat, result_types=[result], properties=properties), name)

    def module(self, *outputs: SSAValue) -> ModuleOp:
        """Finish the graph with `nn.output` and return it in a module."""
        self.block.add_op(nn.OutputOp(list(outputs)))
        arg_attrs = ArrayAttr([DictionaryAttr({nn.NAME_KEY: StringAttr(n)}) for n in self.input_names])
        g = nn.GraphOp(
            self.name,
            [a.type for a in self.block.args],
            [v.type for v in outputs],
            Region(self.block),
            arg_attrs=arg_attrs,
        )
        module = ModuleOp([g])
        module.verify()
        return module


def _prop(v: Any) -> Attribute:
    from xdsl.dialects.builtin import FloatAttr, IntegerAttr, UnitAttr, i64

    if isinstance(v, Attribute):
        return v
    if v is True:
        return UnitAttr()
    if isinstance(v, str):
        return StringAttr(v)
    if isinstance(v, float):
        return FloatAttr(v, f32)
    if isinstance(v, int):
        return IntegerAttr(v, i64)
    if isinstance(v, list | tuple):
        return nn.int_array(v)
    raise TypeError(f"cannot turn {v!r} into a property")


def graph_of(module: ModuleOp) -> nn.GraphOp:
    """The module's graph."""
    op = module.body.block.first_op
    assert isinstance(op, nn.GraphOp)
    return op
