"""Placing weight matrices on tiles: splitting, 2-D packing with free column splits, and a verifier.

*Per-layer mapping* (``pack=False``, the way aihwkit maps layers): every
logical matrix is cut into a grid of tile-sized pieces, ``ceil(rows/R)`` by
``ceil(cols/C)`` (full pieces first, the remainder last), one piece per tile,
no tile shared; a block-diagonal matrix is cut like a dense one, zeros included.

*Packing* (``pack=True``): a block-diagonal matrix is cut along its diagonal
instead (as many whole groups per piece as fit a tile: only the diagonal blocks
occupy cells), and all pieces of all ops are packed into as few tiles as
possible with MaxRects (best short side fit, pieces by decreasing height). A
piece that fits no free rectangle whole may be split along its columns into
free rectangles tall enough for it (columns split for free: no partial sums),
before a new tile is opened. Pieces on one tile run one at a time (a piece's
word lines are driven while the others' are held at 0 V), so any non-overlapping
placement is valid; pieces that share word lines draw current in each other's
cells, which the simulator counts as parasitic MACs. If packing ever needed
more tiles than per-layer mapping, per-layer mapping is used: packing never
costs tiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nnopt.backends.analog.matrices import MatrixOp
from nnopt.compiler.targets.tiles import TileTarget
from nnopt.dialects.analog import BlockAttr, MapAttr

MIN_SPLIT_COLS = 8
"""A column split leaves parts at least this wide (or the whole remainder)."""


@dataclass(frozen=True)
class Piece:
    """A rectangle of the logical matrix of op number `op` to place on a tile."""

    op: int
    row: int
    col: int
    rows: int
    cols: int


@dataclass(frozen=True)
class Placed:
    """A piece (or a column part of one) at (row, col) of a tile."""

    op: int
    tile: int
    row: int
    col: int
    matrix_row: int
    matrix_col: int
    rows: int
    cols: int

    def attr(self) -> BlockAttr:
        """The IR attribute of this block."""
        return BlockAttr(
            self.tile, self.row, self.col, self.matrix_row, self.matrix_col, self.rows, self.cols
        )


def _spans(total: int, size: int) -> list[tuple[int, int]]:
    """``[(start, length), ...]``: full `size` spans first, then the remainder."""
    return [(s, min(size, total - s)) for s in range(0, total, size)]


def dense_pieces(index: int, m: MatrixOp, tiles: TileTarget) -> list[Piece]:
    """The per-layer grid of pieces of the whole logical matrix."""
    return [
        Piece(index, r, c, nr, nc)
        for r, nr in _spans(m.rows, tiles.rows)
        for c, nc in _spans(m.cols, tiles.cols)
    ]


def packed_pieces(index: int, m: MatrixOp, tiles: TileTarget) -> list[Piece]:
    """Pieces for packing: a grouped matrix is cut along its diagonal blocks."""
    if m.groups == 1:
        return dense_pieces(index, m, tiles)
    r, c = m.group_rows, m.group_cols
    if r <= tiles.rows and c <= tiles.cols:
        per = min(tiles.rows // r, tiles.cols // c, m.groups)
        return [
            Piece(index, g * r, g * c, min(per, m.groups - g) * r, min(per, m.groups - g) * c)
            for g in range(0, m.groups, per)
        ]
    return [
        Piece(index, g * r + rr, g * c + cc, nr, nc)
        for g in range(m.groups)
        for rr, nr in _spans(r, tiles.rows)
        for cc, nc in _spans(c, tiles.cols)
    ]


def per_layer_tiles(matrices: Sequence[MatrixOp], tiles: TileTarget) -> int:
    """Tiles of per-layer mapping: sum of ceil(rows/R) * ceil(cols/C)."""
    return sum(math.ceil(m.rows / tiles.rows) * math.ceil(m.cols / tiles.cols) for m in matrices)


# --------------------------------------------------------------------------
# MaxRects packing
# --------------------------------------------------------------------------

Rect = tuple[int, int, int, int]
"""(row, col, rows, cols) on a tile."""


def _contains(a: Rect, b: Rect) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and a[0] + a[2] >= b[0] + b[2] and a[1] + a[3] >= b[1] + b[3]


def _split_free(free: list[Rect], used: Rect) -> list[Rect]:
    """MaxRects: the maximal free rectangles left after placing `used`."""
    ur, uc, un, um = used
    out: list[Rect] = []
    for f in free:
        fr, fc, fn, fm = f
        if ur >= fr + fn or ur + un <= fr or uc >= fc + fm or uc + um <= fc:
            out.append(f)
            continue
        if ur > fr:
            out.append((fr, fc, ur - fr, fm))
        if ur + un < fr + fn:
            out.append((ur + un, fc, fr + fn - ur - un, fm))
        if uc > fc:
            out.append((fr, fc, fn, uc - fc))
        if uc + um < fc + fm:
            out.append((fr, uc + um, fn, fc + fm - uc - um))
    pruned: list[Rect] = []
    for i, a in enumerate(out):
        if any(j != i and _contains(b, a) and (b != a or j < i) for j, b in enumerate(out)):
            continue
        pruned.append(a)
    return pruned


class Packer:
    """MaxRects bin packing of pieces into R x C tiles, with column splits into leftover space."""

    def __init__(self, rows: int, cols: int) -> None:
        self.rows = rows
        self.cols = cols
        self.free: list[list[Rect]] = []
        self.placed: list[Placed] = []

    def _open(self) -> int:
        self.free.append([(0, 0, self.rows, self.cols)])
        return len(self.free) - 1

    def _put(self, piece: Piece, tile: int, rect: Rect, col_offset: int) -> None:
        self.free[tile] = _split_free(self.free[tile], rect)
        self.placed.append(
            Placed(piece.op, tile, rect[0], rect[1], piece.row, piece.col + col_offset, rect[2], rect[3])
        )

    def _best_whole(self, rows: int, cols: int) -> tuple[int, Rect] | None:
        best: tuple[tuple[int, int, int], int, Rect] | None = None
        for t, free in enumerate(self.free):
            for f in free:
                if f[2] >= rows and f[3] >= cols:
                    short = min(f[2] - rows, f[3] - cols)
                    long = max(f[2] - rows, f[3] - cols)
                    key = (short, long, t)
                    if best is None or key < best[0]:
                        best = (key, t, (f[0], f[1], rows, cols))
        return None if best is None else (best[1], best[2])

    def _widest(self, rows: int, need: int) -> tuple[int, Rect] | None:
        best: tuple[tuple[int, int, int], int, Rect] | None = None
        for t, free in enumerate(self.free):
            for f in free:
                if f[2] >= rows and f[3] >= min(need, MIN_SPLIT_COLS):
                    width = min(f[3], need)
                    key = (-width, f[2] - rows, t)
                    if best is None or key < best[0]:
                        best = (key, t, (f[0], f[1], rows, width))
        return None if best is None else (best[1], best[2])

    def add(self, piece: Piece) -> None:
        """Place one piece: whole where it fits best, else split over columns, else on a new tile."""
        found = self._best_whole(piece.rows, piece.cols)
        if found is not None:
            self._put(piece, found[0], found[1], 0)
            return
        done = 0
        parts: list[tuple[int, Rect, int]] = []
        saved = [list(f) for f in self.free]
        while done < piece.cols:
            slot = self._widest(piece.rows, piece.cols - done)
            if slot is None:
                break
            tile, rect = slot
            self.free[tile] = _split_free(self.free[tile], rect)
            parts.append((tile, rect, done))
            done += rect[3]
        self.free = saved
        if done == piece.cols:
            for tile, rect, offset in parts:
                self._put(piece, tile, rect, offset)
            return
        tile = self._open()
        self._put(piece, tile, (0, 0, piece.rows, piece.cols), 0)

    @property
    def tile_count(self) -> int:
        """Tiles opened so far."""
        return len(self.free)


def pack(pieces: Sequence[Piece], rows: int, cols: int) -> list[Placed]:
    """Pack pieces into as few R x C tiles as the heuristic finds (tallest, then widest, first)."""
    packer = Packer(rows, cols)
    order = sorted(range(len(pieces)), key=lambda i: (-pieces[i].rows, -pieces[i].cols, i))
    for i in order:
        packer.add(pieces[i])
    return packer.placed


def per_layer(pieces: Sequence[Piece]) -> list[Placed]:
    """One piece per tile, in order."""
    return [Placed(p.op, t, 0, 0, p.row, p.col, p.rows, p.cols) for t, p in enumerate(pieces)]


@dataclass
class Mapping:
    """The placement of every matrix on tiles."""

    blocks: list[Placed]
    tiles: int
    packed: bool
    per_layer_tiles: int

    def of(self, op: int) -> list[Placed]:
        """The blocks of op number `op`, in matrix order."""
        return sorted(
            (b for b in self.blocks if b.op == op), key=lambda b: (b.matrix_row, b.matrix_col, b.tile)
        )


def map_matrices(matrices: Sequence[MatrixOp], tiles: TileTarget, pack_tiles: bool = True) -> Mapping:
    """Place the matrices on tiles (see the module docstring)."""
    dense = [p for i, m in enumerate(matrices) for p in dense_pieces(i, m, tiles)]
    baseline = per_layer(dense)
    if not pack_tiles:
        return Mapping(baseline, len(dense), False, len(dense))
    pieces = [p for i, m in enumerate(matrices) for p in packed_pieces(i, m, tiles)]
    placed = pack(pieces, tiles.rows, tiles.cols)
    count = 1 + max((b.tile for b in placed), default=-1)
    if count > len(dense):
        return Mapping(baseline, len(dense), False, len(dense))
    return Mapping(placed, count, True, len(dense))


def map_attr(m: MatrixOp, blocks: Sequence[Placed]) -> MapAttr:
    """The ``#analog.map`` of one op."""
    return MapAttr(m.rows, m.cols, m.groups, [b.attr() for b in blocks])


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------


class MappingError(Exception):
    """A mapping that does not describe a valid placement."""


def verify_mapping(
    matrices: Sequence[MatrixOp], blocks: Sequence[Sequence[tuple[int, ...]]], tiles: TileTarget
) -> int:
    """Check a mapping independently of how it was made; returns the number of tiles used.

    `blocks[i]` holds op i's blocks as (tile, row, col, matrix_row, matrix_col,
    rows, cols). Every block must lie inside its tile and its matrix; no two
    blocks may overlap on a tile; every weight of every matrix (the diagonal
    blocks of a grouped matrix) must be covered exactly once. A `MappingError`
    names the first problem.
    """
    occupancy: dict[int, np.ndarray] = {}
    for m, op_blocks in zip(matrices, blocks, strict=True):
        name = getattr(m.op, "name", "op")
        cover = np.zeros((m.groups, m.group_rows, m.group_cols), dtype=np.int32)
        for t, r, c, mr, mc, nr, nc in op_blocks:
            text = f"tile {t} at ({r}, {c}) holds [{mr}:{mr + nr}, {mc}:{mc + nc}]"
            if r + nr > tiles.rows or c + nc > tiles.cols:
                raise MappingError(f"{name}: block '{text}' exceeds the {tiles.rows}x{tiles.cols} tile")
            if mr + nr > m.rows or mc + nc > m.cols:
                raise MappingError(f"{name}: block '{text}' lies outside the {m.rows}x{m.cols} matrix")
            grid = occupancy.setdefault(t, np.zeros((tiles.rows, tiles.cols), dtype=np.int32))
            grid[r : r + nr, c : c + nc] += 1
            gr, gc = m.group_rows, m.group_cols
            first = max(mr // gr, mc // gc)
            last = min((mr + nr - 1) // gr, (mc + nc - 1) // gc)
            for g in range(first, last + 1):
                r0, r1 = max(mr, g * gr), min(mr + nr, (g + 1) * gr)
                c0, c1 = max(mc, g * gc), min(mc + nc, (g + 1) * gc)
                if r0 < r1 and c0 < c1:
                    cover[g, r0 - g * gr : r1 - g * gr, c0 - g * gc : c1 - g * gc] += 1
        if cover.size and (cover.min() < 1 or cover.max() > 1):
            g, rr, cc = (int(v[0]) for v in np.nonzero(cover != 1))
            times = int(cover[g, rr, cc])
            raise MappingError(
                f"{name}: weight [{g * m.group_rows + rr}, {g * m.group_cols + cc}] is covered {times} times"
            )
    for t, grid in sorted(occupancy.items()):
        if grid.max() > 1:
            rr, cc = (int(v[0]) for v in np.nonzero(grid > 1))
            raise MappingError(f"tile {t}: cell ({rr}, {cc}) holds {int(grid.max())} blocks")
    return len(occupancy)
