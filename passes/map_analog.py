"""`nn-map-analog`: place the weight matrices of matrix ops on analog crossbar tiles.

    nnopt-opt model.tflite -p 'nn-map-analog{tiles=membrain-like}'
    nnopt-opt model.mlir -p 'nn-map-analog{tiles=chip.toml pack=false}'

Fully connected layers, matmuls with a constant right-hand side and
convolutions (im2col: rows = KH*KW*Cin/groups, cols = Cout) become logical
weight matrices (`nnopt.backends.analog.matrices`); depthwise and grouped
convolutions are block-diagonal matrices, mapped along their diagonal or left
digital as the tile target's ``mapping.depthwise`` says. Matrices larger than a
tile are split: along rows with digital partial-sum accumulation, along
columns freely. With ``pack=true`` (the default) the pieces of all layers are
packed into as few tiles as possible (2-D bin packing,
`nnopt.backends.analog.mapping`); ``pack=false`` gives each piece a tile of its
own (per-layer mapping, as aihwkit does). Every other op stays digital.

The result is in the IR: each mapped op gets ``analog.map =
#analog.map<rows R, cols C, groups G, blocks [tile T at (r, c) holds [r0:r1,
c0:c1], ...]>``, matrix ops left digital get ``analog.digital = "<reason>"``,
and the graph records the target (``analog.target``, the whole description, so
that the module can be simulated on its own), the tile count (``analog.tiles``)
and the per-layer count for comparison (``analog.per_layer_tiles``). Weights
are quantized to the cell levels with per-column scales when the simulator
programs the tiles (`nnopt.backends.analog.simulator`); running the pass again
replaces an earlier mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import BoolAttr, IntegerAttr, ModuleOp, StringAttr, i64
from xdsl.passes import ModulePass

from nnopt.backends.analog.ir import clear_mapping, target_attr
from nnopt.backends.analog.mapping import Mapping, map_attr, map_matrices
from nnopt.backends.analog.matrices import MATRIX_OPS, MatrixOp, matrix_of
from nnopt.compiler.targets.tiles import TileTarget, load_tiles
from nnopt.dialects import nn
from nnopt.dialects.analog import DIGITAL_KEY, MAP_KEY, TARGET_KEY, TILES_KEY


def map_graph(graph: nn.GraphOp, tiles: TileTarget, pack: bool = True) -> Mapping:
    """Map one graph's matrix ops onto tiles and record the mapping on the IR; returns the mapping."""
    clear_mapping(graph)
    matrices: list[MatrixOp] = []
    for op in graph.block.ops:
        if not isinstance(op, MATRIX_OPS):
            continue
        m = matrix_of(op)
        if isinstance(m, str):
            op.attributes[DIGITAL_KEY] = StringAttr(m)
            continue
        if m.groups > 1 and tiles.depthwise == "digital":
            what = "depthwise" if m.kind == "depthwise_conv2d" else "grouped"
            op.attributes[DIGITAL_KEY] = StringAttr(
                f"{what} convolution: tile target '{tiles.name}' maps these digitally"
            )
            continue
        matrices.append(m)
    mapping = map_matrices(matrices, tiles, pack)
    for i, m in enumerate(matrices):
        m.op.attributes[MAP_KEY] = map_attr(m, mapping.of(i))
    graph.attributes[TARGET_KEY] = target_attr(tiles)
    graph.attributes[TILES_KEY] = IntegerAttr(mapping.tiles, i64)
    graph.attributes["analog.per_layer_tiles"] = IntegerAttr(mapping.per_layer_tiles, i64)
    graph.attributes["analog.packed"] = BoolAttr.from_bool(mapping.packed)
    return mapping


@dataclass(frozen=True)
class MapAnalogPass(ModulePass):
    """Place matrix ops on analog tiles (``analog.map`` on each op, the target on the graph)."""

    name = "nn-map-analog"

    tiles: str = "membrain-like"
    """A tile preset (membrain-like, ideal, aihwkit-inference) or a ``.toml`` file."""
    pack: bool = True
    """Pack the pieces of all layers into shared tiles; false: one tile per piece (per-layer mapping)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = load_tiles(self.tiles)
        for graph in [g for g in op.walk() if isinstance(g, nn.GraphOp)]:
            map_graph(graph, target, self.pack)
