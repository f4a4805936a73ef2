"""References for the analog simulator: the model's own (int8 or float) run and a float twin.

The *float twin* of a quantized graph computes the same network in float32 on
real values: quantized constants become their dequantized values, quantized
tensor types become ``f32``, ``nn.quantize`` / ``nn.dequantize`` disappear and
integer parameters (``rounding``, ``qparams``) are dropped. Its outputs are the
float reference of an int8 model (the network the int8 model approximates,
with the int8 model's weights); for a float model the twin is the model itself.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import FunctionType, ModuleOp, TensorType, f32
from xdsl.ir import Attribute, SSAValue
from xdsl.rewriter import Rewriter

from nnopt.backends.analog.matrices import dequantize_array
from nnopt.backends.numpy.arrays import const_value
from nnopt.compiler.diagnostics import UserError, op_error, verify_module
from nnopt.compiler.frontend.lower import dense_f32
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType


def _float_type(t: Attribute) -> Attribute:
    if isinstance(t, TensorType) and isinstance(t.get_element_type(), UniformQuantizedType):
        return TensorType(f32, t.get_shape())
    return t


def is_quantized_graph(graph: nn.GraphOp) -> bool:
    """True when any value of the graph has a quantized type."""
    values: list[SSAValue] = list(graph.block.args)
    for op in graph.block.ops:
        values.extend(op.results)
    return any(
        isinstance(v.type, TensorType) and isinstance(v.type.get_element_type(), UniformQuantizedType)
        for v in values
    )


def float_twin(graph: nn.GraphOp) -> nn.GraphOp:
    """A float32 copy of `graph` (a new module; `graph` is unchanged)."""
    twin = graph.clone()
    module = ModuleOp([twin])
    for arg in list(twin.block.args):
        if _float_type(arg.type) is not arg.type:
            Rewriter.replace_value_with_new_type(arg, _float_type(arg.type))
    for op in list(twin.block.ops):
        if isinstance(op, nn.ConstOp):
            elem = nn.elem_of(op.result)
            if isinstance(elem, UniformQuantizedType):
                real = dequantize_array(const_value(op), elem).astype(np.float32)
                new = nn.ConstOp(dense_f32(real))
                new.result.name_hint = op.result.name_hint
                Rewriter.replace_op(op, new)
            continue
        if isinstance(op, nn.QuantizeOp | nn.DequantizeOp):
            source = op.input
            op.output.replace_all_uses_with(source)
            Rewriter.erase_op(op)
            continue
        if isinstance(op, nn.OutputOp):
            continue
        for result in list(op.results):
            new_type = _float_type(result.type)
            if new_type is not result.type:
                Rewriter.replace_value_with_new_type(result, new_type)
        for key in ("rounding", "qparams"):
            op.properties.pop(key, None)
    inputs = [a.type for a in twin.block.args]
    outputs = [v.type for v in twin.output.values]
    twin.properties["function_type"] = FunctionType.from_lists(inputs, outputs)
    for op in twin.block.ops:
        for value in (*op.operands, *op.results):
            if isinstance(value.type, TensorType) and isinstance(nn.elem_of(value), UniformQuantizedType):
                raise op_error(op, "cannot build a float reference: a quantized value remains")
    try:
        verify_module(module)
    except UserError as exc:
        raise UserError(f"cannot build a float reference of @{graph.sym_name.data}: {exc.message}") from None
    return twin
