"""Sliding-window views shared by the convolution and pooling kernels (no copies until needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided


def pad_hw(x: np.ndarray, pads: Sequence[int], value: float | int) -> np.ndarray:
    """Pad the H and W axes of an NHWC tensor by (top, bottom, left, right) with `value`."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, h, w, c = x.shape
    out = np.full((n, h + top + bottom, w + left + right, c), value, dtype=x.dtype)
    out[:, top : top + h, left : left + w, :] = x
    return out


def window_view(
    xp: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """Read-only view ``[N, OH, OW, KH, KW, C]`` of the windows of a padded NHWC tensor."""
    n, _, _, c = xp.shape
    sn, sh, sw, sc = xp.strides
    kh, kw = kernel
    oh, ow = out_hw
    return as_strided(
        xp,
        shape=(n, oh, ow, kh, kw, c),
        strides=(sn, sh * strides[0], sw * strides[1], sh * dilations[0], sw * dilations[1], sc),
        writeable=False,
    )


def tap_slice(
    xp: np.ndarray, i: int, j: int, strides: Sequence[int], dilations: Sequence[int], out_hw: Sequence[int]
) -> np.ndarray:
    """The ``[N, OH, OW, C]`` input samples that kernel tap (i, j) multiplies."""
    y0, x0 = i * dilations[0], j * dilations[1]
    return xp[
        :,
        y0 : y0 + (out_hw[0] - 1) * strides[0] + 1 : strides[0],
        x0 : x0 + (out_hw[1] - 1) * strides[1] + 1 : strides[1],
        :,
    ]


def valid_counts(
    in_hw: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """``[OH, OW]`` number of non-padded cells under each pooling window."""
    counts = []
    for axis in range(2):
        origin = np.arange(out_hw[axis]) * strides[axis] - pads[2 * axis]
        start = np.maximum(origin, 0)
        end = np.minimum(origin + kernel[axis], in_hw[axis])
        counts.append(np.maximum(end - start, 0))
    return np.outer(counts[0], counts[1])


def im2col(
    xp: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """Rows ``[N*OH*OW, KH*KW*C]`` of convolution patches (one copy of the windows)."""
    n, c = xp.shape[0], xp.shape[3]
    kh, kw = kernel
    oh, ow = out_hw
    if kh == kw == 1 and tuple(strides) == (1, 1):
        return xp[:, :oh, :ow, :].reshape(n * oh * ow, c)
    view = window_view(xp, kernel, strides, dilations, out_hw)
    return view.reshape(n * oh * ow, kh * kw * c)


def pad_hw_as(x: np.ndarray, pads: Sequence[int], value: float | int, dtype: np.dtype | type) -> np.ndarray:
    """`pad_hw` into a new array of `dtype` (the conversion and the padding in one copy)."""
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    if not any(pads):
        return x.astype(dtype)
    out = np.full((n, h + top + bottom, w + left + right, c), value, dtype=dtype)
    out[:, top : top + h, left : left + w, :] = x
    return out


def tap_rows(
    xp: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> list[np.ndarray]:
    """Per kernel tap (row-major), the ``[N, OH, OW*C]`` samples it multiplies, contiguous along ``OW*C``.

    Depthwise kernels multiply each by the tap's weights tiled ``OW`` times, so
    numpy runs long inner loops instead of ``C``-long ones. With a horizontal
    stride above 1 the padded input is first split into its column phases (one
    copy per phase used).
    """
    n, _, _, c = xp.shape
    sh, sw = strides
    dh, dw = dilations
    oh, ow = out_hw
    phases: dict[int, np.ndarray] = {}
    views: list[np.ndarray] = []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            y0, x0 = i * dh, j * dw
            q, start = x0 % sw, x0 // sw
            if q not in phases:
                phases[q] = xp if sw == 1 else np.ascontiguousarray(xp[:, :, q::sw, :])
            view = phases[q][:, y0 : y0 + (oh - 1) * sh + 1 : sh, start : start + ow, :]
            views.append(view.reshape(n, oh, ow * c))
    return views


def weighted_sum(terms: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> np.ndarray:
    """``terms[0]*weights[0] + terms[1]*weights[1] + ...``, accumulated in that order (one scratch array)."""
    acc = np.multiply(terms[0], weights[0])
    if len(terms) > 1:
        tmp = np.empty_like(acc)
        for t, w in zip(terms[1:], weights[1:], strict=True):
            np.multiply(t, w, out=tmp)
            acc += tmp
    return acc


def depthwise_rows(
    w: np.ndarray, kernel: Sequence[int], out_w: int, dtype: type[np.generic]
) -> list[np.ndarray]:
    """Depthwise weights ``[.., KH, KW, C]`` (multiplier 1) as one ``[OW*C]`` row per tap, for `tap_rows`."""
    kh, kw = kernel
    w3 = w.reshape(kh, kw, -1)
    return [np.tile(w3[i, j].astype(dtype), out_w) for i in range(kh) for j in range(kw)]


def depthwise_matrices(
    w: np.ndarray, kernel: Sequence[int], channels: int, dtype: type[np.generic]
) -> np.ndarray:
    """Depthwise weights ``[.., KH, KW, C*M]`` as per-channel matrices ``[C, KH*KW, M]``."""
    kh, kw = kernel
    mult = w.size // (kh * kw * channels)
    return np.ascontiguousarray(w.reshape(kh * kw, channels, mult).transpose(1, 0, 2), dtype=dtype)


def depthwise_as_matmul(
    xp: np.ndarray,
    mats: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out_hw: Sequence[int],
) -> np.ndarray:
    """Depthwise convolution of a padded NHWC tensor as one batched product per input channel.

    ``[C, N*OH*OW, KH*KW] @ [C, KH*KW, M]`` (`depthwise_matrices`), result
    ``[N, OH, OW, C*M]``: for a channel multiplier M above 1, where tap-by-tap
    passes would run M-long inner loops.
    """
    n, _, _, c = xp.shape
    oh, ow = out_hw
    view = window_view(xp, kernel, strides, dilations, out_hw)
    cols = np.ascontiguousarray(view.transpose(5, 0, 1, 2, 3, 4)).reshape(c, n * oh * ow, -1)
    y = np.matmul(cols, mats)
    return y.transpose(1, 0, 2).reshape(n, oh, ow, -1)
