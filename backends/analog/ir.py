"""Reading and writing the analog mapping in the IR (the ``analog.*`` attributes of `nnopt.dialects.analog`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    f64,
    i64,
)
from xdsl.ir import Attribute, Operation

from nnopt.backends.analog.mapping import MappingError, verify_mapping
from nnopt.backends.analog.matrices import MatrixOp, matrix_of
from nnopt.compiler.diagnostics import UserError, op_error
from nnopt.compiler.targets.tiles import TileTarget, tiles_from_data
from nnopt.dialects import nn
from nnopt.dialects.analog import DIGITAL_KEY, MAP_KEY, TARGET_KEY, TILES_KEY, MapAttr

ANALOG_KEYS = (MAP_KEY, DIGITAL_KEY)
"""Op attributes a mapping writes."""

GRAPH_KEYS = (TARGET_KEY, TILES_KEY, "analog.packed", "analog.per_layer_tiles")
"""Graph attributes a mapping writes."""


def data_to_attr(value: Any) -> Attribute:
    """TOML-shaped data as a builtin attribute (dictionaries, arrays, strings, booleans, numbers)."""
    if isinstance(value, Mapping):
        return DictionaryAttr({str(k): data_to_attr(v) for k, v in value.items()})
    if isinstance(value, bool):
        return BoolAttr.from_bool(value)
    if isinstance(value, int):
        return IntegerAttr(value, i64)
    if isinstance(value, float):
        return FloatAttr(value, f64)
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, list | tuple):
        return ArrayAttr([data_to_attr(v) for v in value])
    raise TypeError(f"cannot store {value!r} in an attribute")


def attr_to_data(attr: Attribute) -> Any:
    """The inverse of `data_to_attr`."""
    if isinstance(attr, DictionaryAttr):
        return {k: attr_to_data(v) for k, v in attr.data.items()}
    if isinstance(attr, IntegerAttr):
        t = attr.type
        if isinstance(t, IntegerType) and t.width.data == 1:
            return bool(attr.value.data)
        return int(attr.value.data)
    if isinstance(attr, FloatAttr):
        return float(attr.value.data)
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, ArrayAttr):
        return [attr_to_data(a) for a in attr.data]
    raise UserError(f"analog.target: unexpected attribute {attr}")


def target_attr(tiles: TileTarget) -> DictionaryAttr:
    """The graph attribute recording a tile target."""
    attr = data_to_attr(tiles.to_data())
    assert isinstance(attr, DictionaryAttr)
    return attr


def graph_target(graph: nn.GraphOp) -> TileTarget | None:
    """The tile target recorded on a mapped graph (None when the graph is not mapped)."""
    attr = graph.attributes.get(TARGET_KEY)
    if attr is None:
        return None
    return tiles_from_data(attr_to_data(attr), f"@{graph.sym_name.data} {TARGET_KEY}")


def is_mapped(graph: nn.GraphOp) -> bool:
    """True when `nn-map-analog` ran on the graph."""
    return TARGET_KEY in graph.attributes


def clear_mapping(graph: nn.GraphOp) -> None:
    """Remove every analog attribute from a graph and its ops."""
    for key in GRAPH_KEYS:
        graph.attributes.pop(key, None)
    for op in graph.block.ops:
        for key in ANALOG_KEYS:
            op.attributes.pop(key, None)


@dataclass
class MappedOp:
    """A mapped op: its matrix and its blocks (tile, row, col, matrix_row, matrix_col, rows, cols)."""

    matrix: MatrixOp
    blocks: list[tuple[int, int, int, int, int, int, int]]


def read_mapping(graph: nn.GraphOp, tiles: TileTarget) -> list[MappedOp]:
    """The mapped ops of a graph in execution order, verified against `tiles` (a `UserError` if invalid)."""
    mapped: list[MappedOp] = []
    for op in graph.block.ops:
        attr = op.attributes.get(MAP_KEY)
        if attr is None:
            continue
        if not isinstance(attr, MapAttr):
            raise op_error(op, f"'{MAP_KEY}' must be an #analog.map attribute, got {attr}")
        m = matrix_of(op)
        if isinstance(m, str):
            raise op_error(op, f"has an analog mapping but cannot run on tiles: {m}")
        if (m.rows, m.cols, m.groups) != (attr.rows.data, attr.cols.data, attr.groups.data):
            raise op_error(
                op,
                f"analog mapping is for a {attr.rows.data}x{attr.cols.data} matrix in {attr.groups.data} "
                f"group(s), but the op's matrix is {m.rows}x{m.cols} in {m.groups}",
            )
        mapped.append(MappedOp(m, attr.block_values()))
    try:
        verify_mapping([m.matrix for m in mapped], [m.blocks for m in mapped], tiles)
    except MappingError as exc:
        raise UserError(f"invalid analog mapping: {exc}") from None
    return mapped


def digital_reason(op: Operation) -> str | None:
    """Why a matrix op was left digital (None when it was not)."""
    attr = op.attributes.get(DIGITAL_KEY)
    return attr.data if isinstance(attr, StringAttr) else None
