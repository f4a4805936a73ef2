"""Byte geometry of values placed in buffers: addresses, exact overlaps, relocations.

A value of shape ``S`` and element size ``eb`` placed at ``(buffer, offset,
strides)`` occupies, for every index ``i`` of ``S``, the bytes
``offset + eb * sum(i_k * strides_k)`` to ``+ eb``. Strides are in *elements*
(as in ``#nn.place``); no strides means row-major contiguous. These helpers
are shared by nn-merge-buffers (is a sharing safe?) and the arena executor of
the numpy backend (does an op clobber bytes it has not read yet?).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nnopt.dialects import nn


@dataclass(frozen=True)
class Loc:
    """A value's place: `buffer`, byte `offset` in it, element `strides` (empty: row-major)."""

    buffer: str
    offset: int = 0
    strides: tuple[int, ...] = ()

    @staticmethod
    def of(place: nn.PlaceAttr) -> Loc:
        """The `Loc` of a ``#nn.place`` attribute."""
        return Loc(place.buffer.data, place.offset.data, place.stride_values)

    def attr(self) -> nn.PlaceAttr:
        """The ``#nn.place`` attribute of this place."""
        return nn.PlaceAttr(self.buffer, self.offset, self.strides)

    @property
    def contiguous(self) -> bool:
        """True when the value is stored row-major without gaps."""
        return not self.strides


def row_major(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major element strides of a shape."""
    strides: list[int] = []
    acc = 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


def effective_strides(shape: Sequence[int], strides: Sequence[int]) -> tuple[int, ...]:
    """The element strides of a place: explicit ones, else row-major."""
    return tuple(strides) if strides else row_major(shape)


def normalize(shape: Sequence[int], strides: Sequence[int]) -> tuple[int, ...]:
    """Canonical strides: empty for a row-major layout, else with every size-1 dimension's
    stride set to what its inner neighbour implies (so equal layouts compare equal)."""
    if not strides:
        return ()
    rm = row_major(shape)
    if all(d <= 1 or s == r for d, s, r in zip(shape, strides, rm, strict=True)):
        return ()
    out = list(strides)
    for k in range(len(shape) - 1, -1, -1):
        if shape[k] <= 1:
            out[k] = out[k + 1] * shape[k + 1] if k + 1 < len(shape) else 1
    return tuple(out)


def byte_span(shape: Sequence[int], eb: int, loc: Loc) -> tuple[int, int]:
    """``[first byte, one past the last byte)`` covered by a placed value."""
    if math.prod(shape) == 0:
        return (loc.offset, loc.offset)
    strides = effective_strides(shape, loc.strides)
    last = sum((d - 1) * s for d, s in zip(shape, strides, strict=True))
    return (loc.offset, loc.offset + (last + 1) * eb)


def element_addresses(shape: Sequence[int], eb: int, loc: Loc) -> np.ndarray:
    """Byte address (in the buffer) of the first byte of every element, an int64 array of `shape`."""
    strides = effective_strides(shape, loc.strides)
    addr = np.full(tuple(shape), loc.offset, dtype=np.int64)
    for k, (d, s) in enumerate(zip(shape, strides, strict=True)):
        view = [1] * len(shape)
        view[k] = d
        addr = addr + (np.arange(d, dtype=np.int64) * (s * eb)).reshape(view)
    return addr


def byte_addresses(shape: Sequence[int], eb: int, loc: Loc) -> np.ndarray:
    """Every byte address covered by a placed value (flat, in element order then byte order)."""
    addr = element_addresses(shape, eb, loc).reshape(-1, 1)
    return (addr + np.arange(eb, dtype=np.int64)).reshape(-1)


def overlap(shape_a: Sequence[int], eb_a: int, a: Loc, shape_b: Sequence[int], eb_b: int, b: Loc) -> bool:
    """True when two placed values in the same buffer share at least one byte (exact)."""
    if a.buffer != b.buffer:
        return False
    lo_a, hi_a = byte_span(shape_a, eb_a, a)
    lo_b, hi_b = byte_span(shape_b, eb_b, b)
    lo, hi = max(lo_a, lo_b), min(hi_a, hi_b)
    if lo >= hi:
        return False
    if a.contiguous and b.contiguous:
        return True
    mask = np.zeros(hi - lo, dtype=bool)
    bytes_a = byte_addresses(shape_a, eb_a, a)
    bytes_a = bytes_a[(bytes_a >= lo) & (bytes_a < hi)]
    mask[bytes_a - lo] = True
    bytes_b = byte_addresses(shape_b, eb_b, b)
    bytes_b = bytes_b[(bytes_b >= lo) & (bytes_b < hi)]
    return bool(mask[bytes_b - lo].any())


def fit_affine(shape: Sequence[int], eb: int, addresses: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
    """(offset, element strides) such that `addresses` (first bytes, array of `shape`) are affine; else None."""
    if addresses.size == 0:
        return None
    origin = int(addresses.reshape(-1)[0])
    strides: list[int] = []
    for k, d in enumerate(shape):
        if d <= 1:
            strides.append(0)
            continue
        index = [0] * len(shape)
        index[k] = 1
        step = int(addresses[tuple(index)]) - origin
        if step < 0 or step % eb:
            return None
        strides.append(step // eb)
    expected = element_addresses(shape, eb, Loc("", origin, tuple(strides)))
    if not np.array_equal(expected, addresses):
        return None
    return origin, tuple(strides)


def relocate(
    shape: Sequence[int],
    eb: int,
    loc: Loc,
    anchor_shape: Sequence[int],
    anchor_eb: int,
    anchor: Loc,
    target: Loc,
) -> Loc | None:
    """Where a value placed at `loc` goes when the value at `anchor` moves to `target`.

    The value keeps its position relative to the anchor's elements. With a
    contiguous anchor and target this is a byte shift (any layout, any element
    size, but the value must lie inside the anchor's bytes). Otherwise the value
    must have the anchor's element size, cover whole anchor elements and map to
    an affine (strided) layout. None when the value cannot follow.
    """
    lo, hi = byte_span(shape, eb, loc)
    a_lo, a_hi = byte_span(anchor_shape, anchor_eb, anchor)
    if lo < a_lo or hi > a_hi:
        return None
    if anchor.contiguous and target.contiguous:
        offset = loc.offset - anchor.offset + target.offset
        return Loc(target.buffer, offset, loc.strides) if offset >= 0 else None
    if eb != anchor_eb or math.prod(shape) == 0:
        return None
    anchor_addr = element_addresses(anchor_shape, anchor_eb, anchor).reshape(-1)
    order = np.argsort(anchor_addr, kind="stable")
    sorted_addr = anchor_addr[order]
    addr = element_addresses(shape, eb, loc).reshape(-1)
    pos = np.searchsorted(sorted_addr, addr)
    if np.any(pos >= sorted_addr.size) or not np.array_equal(
        sorted_addr[np.minimum(pos, sorted_addr.size - 1)], addr
    ):
        return None
    flat = order[pos]
    new_anchor = element_addresses(anchor_shape, anchor_eb, target).reshape(-1)
    fitted = fit_affine(shape, eb, new_anchor[flat].reshape(tuple(shape)))
    if fitted is None:
        return None
    offset, strides = fitted
    return Loc(target.buffer, offset, normalize(shape, strides))


def slice_loc(
    out_shape: Sequence[int], eb: int, out: Loc, axis: int, start: int, in_shape: Sequence[int]
) -> Loc:
    """The place of ``out[..., start:start + in_shape[axis], ...]`` (a slice along `axis`)."""
    strides = effective_strides(out_shape, out.strides)
    offset = out.offset + start * strides[axis] * eb
    return Loc(out.buffer, offset, normalize(in_shape, strides))
