"""nn-map-analog: tile counts, packing, the independent verifier, and the mapping in the IR."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnopt.backends.analog.ir import graph_target, read_mapping
from nnopt.backends.analog.mapping import (
    MappingError,
    Piece,
    map_matrices,
    pack,
    per_layer_tiles,
    verify_mapping,
)
from nnopt.backends.analog.matrices import MatrixOp, matrix_of
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontends import load_model
from nnopt.compiler.targets.tiles import load_tiles
from nnopt.dialects import nn
from nnopt.dialects.analog import MAP_KEY, MapAttr
from nnopt.passes.map_analog import map_graph

from .conftest import run_tool, shared_path

SMALL = """model small
seed 0
input image: f32[1, 12, 12, 3]
conv = conv2d(image, filters=8, kernel=3, padding=same, activation=relu)
dw = depthwise_conv2d(conv, kernel=3, padding=same, activation=relu6)
pw = conv2d(dw, filters=24, kernel=1)
gap = mean(pw, axes=[1, 2])
fc1 = fully_connected(gap, units=40, activation=relu)
logits = fully_connected(fc1, units=10)
output logits
"""


def small_graph(tmp_path: Path) -> nn.GraphOp:
    path = tmp_path / "small.nn"
    path.write_text(SMALL)
    module = load_model(str(path))
    return next(op for op in module.walk() if isinstance(op, nn.GraphOp))


def fake_matrix(rows: int, cols: int, groups: int = 1) -> MatrixOp:
    w = np.ones((groups, rows // groups, cols // groups))
    return MatrixOp(None, "fully_connected", groups, rows // groups, cols // groups, 1, w)  # type: ignore[arg-type]


TILES = load_tiles("ideal")


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), min_size=1, max_size=6),
    tile=st.tuples(st.integers(4, 128), st.integers(4, 128)),
)
def test_tile_counts(shapes: list[tuple[int, int]], tile: tuple[int, int]) -> None:
    tiles = TILES.with_changes(rows=tile[0], cols=tile[1])
    matrices = [fake_matrix(r, c) for r, c in shapes]
    expected = sum(math.ceil(r / tile[0]) * math.ceil(c / tile[1]) for r, c in shapes)
    flat = map_matrices(matrices, tiles, pack_tiles=False)
    assert flat.tiles == expected == per_layer_tiles(matrices, tiles)
    packed = map_matrices(matrices, tiles, pack_tiles=True)
    assert packed.tiles <= expected
    for mapping in (flat, packed):
        blocks = [
            [(b.tile, b.row, b.col, b.matrix_row, b.matrix_col, b.rows, b.cols) for b in mapping.of(i)]
            for i in range(len(matrices))
        ]
        assert verify_mapping(matrices, blocks, tiles) == mapping.tiles


def test_packing_shares_tiles_and_splits_columns() -> None:
    # two 64x40 pieces and a 10x64 one: 3 tiles per layer, one when packed (the last split by columns)
    placed = pack([Piece(0, 0, 0, 64, 40), Piece(1, 0, 0, 64, 40), Piece(2, 0, 0, 10, 64)], 64, 128)
    assert {p.tile for p in placed} == {0}
    third = [p for p in placed if p.op == 2]
    assert sum(p.cols for p in third) == 64 and len(third) == 2


def test_block_diagonal_matrices_pack_along_the_diagonal() -> None:
    tiles = TILES.with_changes(rows=64, cols=64)
    dw = fake_matrix(64 * 9, 64, groups=64)  # a 3x3 depthwise convolution of 64 channels
    assert map_matrices([dw], tiles, pack_tiles=False).tiles == 9
    packed = map_matrices([dw], tiles, pack_tiles=True)
    assert packed.tiles == 1  # 7 channels (63x7) per piece, 10 pieces side by side on one tile
    assert all(b.rows % 9 == 0 and b.cols == b.rows // 9 for b in packed.blocks)


def test_verifier_catches_bad_mappings() -> None:
    tiles = TILES.with_changes(rows=8, cols=8)
    m = fake_matrix(8, 8)
    with pytest.raises(MappingError, match="covered 0 times"):
        verify_mapping([m], [[(0, 0, 0, 0, 0, 8, 4)]], tiles)
    with pytest.raises(MappingError, match="covered 2 times"):
        verify_mapping([m], [[(0, 0, 0, 0, 0, 8, 8), (1, 0, 0, 0, 0, 8, 8)]], tiles)
    with pytest.raises(MappingError, match="exceeds the 8x8 tile"):
        verify_mapping([m], [[(0, 4, 0, 0, 0, 8, 8)]], tiles)
    two = [fake_matrix(8, 4), fake_matrix(8, 4)]
    with pytest.raises(MappingError, match=r"tile 0: cell .* holds 2 blocks"):
        verify_mapping(two, [[(0, 0, 0, 0, 0, 8, 4)], [(0, 0, 2, 0, 0, 8, 4)]], tiles)


def test_matrices_of_ops(tmp_path: Path) -> None:
    graph = small_graph(tmp_path)
    kinds = {}
    for op in graph.block.ops:
        m = matrix_of(op)
        if not isinstance(m, str):
            kinds[m.kind + str(len(kinds))] = (m.rows, m.cols, m.groups, m.vectors)
    assert list(kinds.values()) == [
        (27, 8, 1, 144),  # conv 3x3x3 -> 8 over 12x12 pixels
        (72, 8, 8, 144),  # depthwise 3x3 over 8 channels: block diagonal
        (8, 24, 1, 144),
        (24, 40, 1, 1),
        (40, 10, 1, 1),
    ]


def test_pass_writes_the_ir_and_it_round_trips(tmp_path: Path) -> None:
    graph = small_graph(tmp_path)
    tiles = load_tiles("membrain-like").with_changes(rows=16, cols=16)
    mapping = map_graph(graph, tiles)
    assert graph.attributes["analog.tiles"].value.data == mapping.tiles  # type: ignore[attr-defined]
    attrs = [op.attributes[MAP_KEY] for op in graph.block.ops if MAP_KEY in op.attributes]
    assert len(attrs) == 5 and all(isinstance(a, MapAttr) for a in attrs)
    module = graph.parent_op()
    text = str(module)
    assert "#analog.map<rows 27, cols 8, groups 1, blocks [tile" in text
    again = tmp_path / "mapped.mlir"
    again.write_text(text)
    reloaded = load_model(str(again))
    graph2 = next(op for op in reloaded.walk() if isinstance(op, nn.GraphOp))
    assert str(reloaded) == text
    target = graph_target(graph2)
    assert target is not None and target.rows == 16 and target.levels == 15
    mapped = read_mapping(graph2, target)
    assert [m.blocks for m in mapped] == [a.block_values() for a in attrs]  # type: ignore[union-attr]


def test_depthwise_left_digital_when_the_target_says_so(tmp_path: Path) -> None:
    graph = small_graph(tmp_path)
    map_graph(graph, load_tiles("aihwkit-inference"))
    dw = next(op for op in graph.block.ops if isinstance(op, nn.DepthwiseConv2DOp))
    assert MAP_KEY not in dw.attributes
    assert "maps these digitally" in dw.attributes["analog.digital"].data  # type: ignore[attr-defined]


def test_a_tampered_mapping_is_refused(tmp_path: Path) -> None:
    graph = small_graph(tmp_path)
    map_graph(graph, load_tiles("ideal"))
    text = str(graph.parent_op()).replace("holds [0:27, 0:8]", "holds [0:27, 0:7]", 1)
    path = tmp_path / "bad.mlir"
    path.write_text(text)
    reloaded = next(op for op in load_model(str(path)).walk() if isinstance(op, nn.GraphOp))
    target = graph_target(reloaded)
    assert target is not None
    with pytest.raises(UserError, match=r"invalid analog mapping: .* covered 0 times"):
        read_mapping(reloaded, target)


def test_nnopt_opt_runs_the_pass(tmp_path: Path) -> None:
    path = tmp_path / "small.nn"
    path.write_text(SMALL)
    result = run_tool("nnopt-opt", str(path), "-p", "nn-map-analog{tiles=ideal pack=false}")
    assert result.code == 0, result.err
    assert "analog.tiles = 5 : i64" in result.out and "analog.packed = false" in result.out
    bad = run_tool("nnopt-opt", str(path), "-p", "nn-map-analog{tiles=nope}")
    assert bad.code == 1 and "unknown tile target 'nope'" in bad.err and "Traceback" not in bad.err


def test_shared_models_save_tiles_with_packing() -> None:
    """The goal of the packing: at least 30 % fewer tiles than per-layer mapping on KWS and AD."""
    tiles = load_tiles("membrain-like")
    for name in ("mlperf_tiny_kws_dscnn_int8.tflite", "mlperf_tiny_ad_autoencoder_int8.tflite"):
        graph = next(
            op for op in load_model(str(shared_path("models", name))).walk() if isinstance(op, nn.GraphOp)
        )
        mapping = map_graph(graph, tiles)
        assert mapping.tiles <= 0.7 * mapping.per_layer_tiles, (name, mapping.tiles, mapping.per_layer_tiles)
