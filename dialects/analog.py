"""The ``analog`` dialect: where the weight matrices of matrix ops sit on analog crossbar tiles.

`nn-map-analog` marks every matrix op it maps with a discardable attribute
``analog.map`` holding a `MapAttr`: the op's logical weight matrix (rows = the
inputs of one output, cols = the outputs; a grouped or depthwise convolution
is a block-diagonal matrix of `groups` blocks) and the `BlockAttr` rectangles
that cover it, each placed on one tile::

    %y = nn.fully_connected %x, %w, %b {analog.map = #analog.map<rows 640, cols 128, groups 1,
           blocks [tile 0 at (0, 0) holds [0:256, 0:128], tile 1 at (0, 0) holds [256:512, 0:128],
                   tile 2 at (0, 0) holds [512:640, 0:128]]>} : ...

``tile 1 at (0, 0) holds [256:512, 0:128]`` reads: weight-matrix rows 256..511
and columns 0..127 sit on tile 1 from word line 0 and weight column 0. Blocks
that split a matrix along its rows produce partial sums that are added
digitally; blocks of different ops may share a tile (packing). The graph holds
the tile target (``analog.target``) and the tile count (``analog.tiles``);
matrix ops left digital say why in ``analog.digital``.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import ArrayAttr, IntAttr
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

MAP_KEY = "analog.map"
"""Op attribute: the op's `MapAttr`."""

TARGET_KEY = "analog.target"
"""Graph attribute: the tile target the mapping was made for (TOML-shaped dictionary)."""

TILES_KEY = "analog.tiles"
"""Graph attribute: the number of tiles the mapping uses."""

DIGITAL_KEY = "analog.digital"
"""Op attribute on a matrix op left digital: the reason."""


def _parse_block_body(parser: AttrParser) -> tuple[int, ...]:
    """``tile T at (R, C) holds [R0:R1, C0:C1]`` -> (T, R, C, R0, C0, R1 - R0, C1 - C0)."""
    parser.parse_keyword("tile")
    tile = parser.parse_integer(allow_boolean=False, allow_negative=False)
    parser.parse_keyword("at")
    parser.parse_punctuation("(")
    row = parser.parse_integer(allow_boolean=False, allow_negative=False)
    parser.parse_punctuation(",")
    col = parser.parse_integer(allow_boolean=False, allow_negative=False)
    parser.parse_punctuation(")")
    parser.parse_keyword("holds")
    parser.parse_punctuation("[")
    r0 = parser.parse_integer(allow_boolean=False, allow_negative=False)
    parser.parse_punctuation(":")
    r1 = parser.parse_integer(allow_boolean=False, allow_negative=False)
    parser.parse_punctuation(",")
    c0 = parser.parse_integer(allow_boolean=False, allow_negative=False)
    parser.parse_punctuation(":")
    c1 = parser.parse_integer(allow_boolean=False, allow_negative=False)
    parser.parse_punctuation("]")
    return (tile, row, col, r0, c0, r1 - r0, c1 - c0)


@irdl_attr_definition
class BlockAttr(ParametrizedAttribute):
    """A rectangle of a weight matrix on one tile: ``#analog.block<tile 3 at (0, 64) holds [0:64, 128:192]>``.

    `tile` numbers tiles from 0 (grid position and chip follow from the target's
    grid); (`row`, `col`) is the first word line and weight column the
    rectangle occupies on the tile; the rectangle holds matrix rows
    ``[matrix_row, matrix_row + rows)`` and columns ``[matrix_col, matrix_col + cols)``.
    """

    name = "analog.block"

    tile: IntAttr
    row: IntAttr
    col: IntAttr
    matrix_row: IntAttr
    matrix_col: IntAttr
    rows: IntAttr
    cols: IntAttr

    def __init__(
        self, tile: int, row: int, col: int, matrix_row: int, matrix_col: int, rows: int, cols: int
    ) -> None:
        super().__init__(
            IntAttr(tile),
            IntAttr(row),
            IntAttr(col),
            IntAttr(matrix_row),
            IntAttr(matrix_col),
            IntAttr(rows),
            IntAttr(cols),
        )

    def values(self) -> tuple[int, int, int, int, int, int, int]:
        """(tile, row, col, matrix_row, matrix_col, rows, cols)."""
        return (
            self.tile.data,
            self.row.data,
            self.col.data,
            self.matrix_row.data,
            self.matrix_col.data,
            self.rows.data,
            self.cols.data,
        )

    def verify(self) -> None:
        if any(v.data < 0 for v in (self.tile, self.row, self.col, self.matrix_row, self.matrix_col)):
            raise VerifyException(f"analog.block: negative position in {self.body()}")
        if self.rows.data < 1 or self.cols.data < 1:
            raise VerifyException(f"analog.block: empty rectangle in {self.body()}")

    def body(self) -> str:
        """The text inside the angle brackets."""
        t, r, c, mr, mc, nr, nc = self.values()
        return f"tile {t} at ({r}, {c}) holds [{mr}:{mr + nr}, {mc}:{mc + nc}]"

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            values = _parse_block_body(parser)
        return tuple(IntAttr(v) for v in values)

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.body()}>")


@irdl_attr_definition
class MapAttr(ParametrizedAttribute):
    """The mapping of one op's weight matrix: ``#analog.map<rows R, cols C, groups G, blocks [...]>``.

    A matrix of `groups` > 1 is block diagonal: group g holds rows
    ``[g*R/G, (g+1)*R/G)`` and columns ``[g*C/G, (g+1)*C/G)``; the cells outside
    the diagonal blocks are zero. The blocks cover every cell of the diagonal
    blocks exactly once (``nnopt.backends.analog.mapping.verify_mapping`` checks it
    together with the tile bounds and overlaps).
    """

    name = "analog.map"

    rows: IntAttr
    cols: IntAttr
    groups: IntAttr
    blocks: ArrayAttr[BlockAttr]

    def __init__(self, rows: int, cols: int, groups: int, blocks: Sequence[BlockAttr]) -> None:
        super().__init__(IntAttr(rows), IntAttr(cols), IntAttr(groups), ArrayAttr(blocks))

    def block_values(self) -> list[tuple[int, int, int, int, int, int, int]]:
        """Every block as (tile, row, col, matrix_row, matrix_col, rows, cols)."""
        return [b.values() for b in self.blocks.data]

    def verify(self) -> None:
        rows, cols, groups = self.rows.data, self.cols.data, self.groups.data
        if rows < 1 or cols < 1 or groups < 1:
            raise VerifyException(
                f"analog.map: rows, cols and groups must be positive, got {rows}, {cols}, {groups}"
            )
        if rows % groups or cols % groups:
            raise VerifyException(f"analog.map: {groups} groups do not divide a {rows}x{cols} matrix")
        if not self.blocks.data:
            raise VerifyException("analog.map: no blocks")
        for block in self.blocks.data:
            _, _, _, mr, mc, nr, nc = block.values()
            if mr + nr > rows or mc + nc > cols:
                raise VerifyException(
                    f"analog.map: block '{block.body()}' lies outside the {rows}x{cols} matrix"
                )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            parser.parse_keyword("rows")
            rows = parser.parse_integer(allow_boolean=False, allow_negative=False)
            parser.parse_punctuation(",")
            parser.parse_keyword("cols")
            cols = parser.parse_integer(allow_boolean=False, allow_negative=False)
            parser.parse_punctuation(",")
            parser.parse_keyword("groups")
            groups = parser.parse_integer(allow_boolean=False, allow_negative=False)
            parser.parse_punctuation(",")
            parser.parse_keyword("blocks")
            bodies = parser.parse_comma_separated_list(
                parser.Delimiter.SQUARE, lambda: _parse_block_body(parser)
            )
        blocks = [BlockAttr(*body) for body in bodies]
        return (IntAttr(rows), IntAttr(cols), IntAttr(groups), ArrayAttr(blocks))

    def print_parameters(self, printer: Printer) -> None:
        inner = ", ".join(b.body() for b in self.blocks.data)
        printer.print_string(
            f"<rows {self.rows.data}, cols {self.cols.data}, groups {self.groups.data}, blocks [{inner}]>"
        )


Analog = Dialect("analog", [], [BlockAttr, MapAttr])
