"""Partial in-place sharing of sliding-window ops: how far a result may overlap its input.

A convolution, depthwise convolution or pooling op computes its output pixel
by pixel. A kernel that walks the pixels in raster order (batch, row,
column) and writes pixel ``p`` only after reading its window can write its
result *over the start of its own input*, as long as the bytes written up to
pixel ``p`` are never read by pixel ``p`` or a later one. Walking backwards it
can write over the end of the input instead. With a contiguous NHWC input at
byte ``X`` and a contiguous result at byte ``Y``:

* forward order is safe iff ``Y - X <= forward`` where
  ``forward = min_p (first byte read by pixels >= p) - (p + 1) * pixel_bytes``;
* reverse order is safe iff ``Y - X >= reverse`` where
  ``reverse = max_p (end of the bytes read by pixels <= p) - p * pixel_bytes``.

(Reads are counted conservatively: a pixel reads every byte from its first to
its last window row/column, all channels.) A 1x1 convolution from 8 to 16
channels then needs ``out + 8`` bytes instead of ``in + out``; a 3x3 stride-1
depthwise one ``in + (W + 2) * C``. `access_times` gives the same rule as
per-element read/write times, computed element by element, so the arena
executor of the numpy backend checks plans without using these formulas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from xdsl.ir import Operation, OpResult, SSAValue

from nnopt.dialects import nn

WINDOW_OPS: tuple[type[Operation], ...] = (
    nn.Conv2DOp,
    nn.DepthwiseConv2DOp,
    nn.MaxPool2DOp,
    nn.AvgPool2DOp,
)
"""Ops whose output pixel reads one window of the input."""

_INF = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class Shift:
    """Safe byte offsets of a result relative to its input: ``<= forward`` or ``>= reverse``."""

    forward: int
    reverse: int

    def direction(self, delta: int) -> str | None:
        """``"forward"``/``"reverse"`` when a result at input + `delta` bytes is safe that way, else None."""
        if delta <= self.forward:
            return "forward"
        if delta >= self.reverse:
            return "reverse"
        return None


def _geometry(op: Operation) -> tuple[tuple[int, ...], tuple[int, ...], int, int, tuple[int, ...]]:
    from nnopt.backends.numpy.geometry import window_of

    assert isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.MaxPool2DOp | nn.AvgPool2DOp)
    win = window_of(op)
    x_shape = nn.shape_of(op.input)
    y_shape = nn.shape_of(op.output)
    geo = (*win.kernel, *win.strides, *win.dilations, win.pads[0], win.pads[2])
    return (
        x_shape,
        y_shape,
        nn.element_bytes(nn.elem_of(op.input)),
        nn.element_bytes(nn.elem_of(op.output)),
        geo,
    )


def _tap_span(
    out: int, size: int, kernel: int, stride: int, dil: int, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """First and last in-range input index of every output index's window (first > last: none)."""
    o = np.arange(out, dtype=np.int64)[:, None]
    taps = o * stride - pad + np.arange(kernel, dtype=np.int64)[None, :] * dil
    valid = (taps >= 0) & (taps < size)
    first = np.where(valid, taps, _INF).min(axis=1)
    last = np.where(valid, taps, -1).max(axis=1)
    return first, last


def shift_of(op: Operation) -> Shift | None:
    """The safe offsets of `op`'s result relative to its input (contiguous NHWC), or None for other ops."""
    if not isinstance(op, WINDOW_OPS):
        return None
    x_shape, y_shape, eb_x, eb_y, (kh, kw, sh, sw, dh, dw, pt, pl) = _geometry(op)
    n, h, w, c = x_shape
    _, oh, ow, co = y_shape
    r0, r1 = _tap_span(oh, h, kh, sh, dh, pt)
    c0, c1 = _tap_span(ow, w, kw, sw, dw, pl)
    row_bytes, pix_bytes = w * c * eb_x, c * eb_x
    batch = np.arange(n, dtype=np.int64)[:, None, None] * (h * row_bytes)
    reads = (r0 <= r1)[None, :, None] & (c0 <= c1)[None, None, :]
    first = np.where(reads, batch + r0[None, :, None] * row_bytes + c0[None, None, :] * pix_bytes, _INF)
    end = np.where(reads, batch + r1[None, :, None] * row_bytes + (c1[None, None, :] + 1) * pix_bytes, -_INF)
    first, end = first.reshape(-1), end.reshape(-1)
    out_pix = co * eb_y
    p = np.arange(first.size, dtype=np.int64)
    suffix_min = np.minimum.accumulate(first[::-1])[::-1]
    prefix_max = np.maximum.accumulate(end)
    forward = suffix_min - (p + 1) * out_pix
    reverse = prefix_max - p * out_pix
    return Shift(int(min(forward.min(), _INF)), int(max(reverse.max(), -_INF)))


def access_times(op: Operation, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-element write times of the result and last-read times of the input, walking the pixels
    forwards or backwards (element by element, independently of `shift_of`).

    Pixel ``t`` (in walking order) writes at ``2t + 1``; an input element last read by pixel ``t``
    is read at ``2t + 2`` (a kernel may still read pixel ``t``'s window after writing part of
    its result); an element no pixel reads gets ``-1``. A byte written before its read time is a
    hazard.
    """
    x_shape, y_shape, _, _, (kh, kw, sh, sw, dh, dw, pt, pl) = _geometry(op)
    n, h, w, c = x_shape
    _, oh, ow, co = y_shape
    pixels = np.arange(n * oh * ow, dtype=np.int64).reshape(n, oh, ow)
    if reverse:
        pixels = pixels.size - 1 - pixels
    write = np.broadcast_to((2 * pixels + 1)[..., None], (n, oh, ow, co))

    def last_reader(size: int, out: int, kernel: int, stride: int, dil: int, pad: int) -> np.ndarray:
        # For every input index, the output indices whose window holds it: max (forward) or min (reverse).
        best = np.full(size, -1 if not reverse else _INF, dtype=np.int64)
        i = np.arange(size, dtype=np.int64)
        for k in range(kernel):
            num = i + pad - k * dil
            o = num // stride
            ok = (num >= 0) & (num % stride == 0) & (o < out)
            best = np.where(ok, np.maximum(best, o) if not reverse else np.minimum(best, o), best)
        return best

    ry = last_reader(h, oh, kh, sh, dh, pt)
    rx = last_reader(w, ow, kw, sw, dw, pl)
    read_rows = (ry >= 0) & (ry < _INF)
    read_cols = (rx >= 0) & (rx < _INF)
    ry_c = np.clip(ry, 0, oh - 1)
    rx_c = np.clip(rx, 0, ow - 1)
    t = pixels[:, ry_c[:, None], rx_c[None, :]]
    mask = read_rows[:, None] & read_cols[None, :]
    read = np.where(mask[None], 2 * t + 2, -1)
    return write, np.broadcast_to(read[..., None], (n, h, w, c))


def overlap_pair_in(members: Iterable[SSAValue], offset: Callable[[SSAValue], int]) -> bool:
    """True when a window op's result shares a buffer with its input at another offset.

    Such a buffer is *shaped*: its values are reserved only while they live
    (`Buffer.parts` in the planning problem), not the whole buffer for the whole hull of its values.
    """
    ms = set(members)
    for y in ms:
        if isinstance(y, OpResult) and isinstance(y.op, WINDOW_OPS):
            x = y.op.operands[0]
            if x in ms and offset(x) != offset(y):
                return True
    return False
