"""Scratch memory each op needs besides its inputs and outputs (planned in the arena)."""

from __future__ import annotations

from xdsl.ir import Operation

from nnopt.dialects import nn


def scratch_bytes(op: Operation) -> int:
    """Bytes of temporary memory `op` needs during its own step.

    `nn.mean` accumulates in 32 bits, one accumulator per output element;
    every other op computes straight into its output. (nn-merge-buffers adds
    the per-channel temporary of an in-place depthwise convolution itself.)
    """
    if isinstance(op, nn.MeanOp):
        return 4 * nn.num_elements(nn.shape_of(op.output))
    return 0
