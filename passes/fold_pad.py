"""`nn-fold-pad`: fold an explicit zero `nn.pad` into the convolution that reads it.

``y = conv2d(pad(x, H/W by (t, b, l, r), 0), w, padding = P)`` computes the same
numbers as ``conv2d(x, w, padding = P' )`` with ``P'`` the explicit padding
``P + (t, b, l, r)``: a convolution's own padding cells are zeros (for a
quantized convolution they hold the input zero point, which is what the pad
writes for the real value 0). The padded tensor, usually the biggest one
around (imported PyTorch and ONNX models pad before every strided
convolution), then never exists.

Conditions: the pad pads only H and W of an NHWC tensor; its value is 0 (for
quantized tensors: any value that quantizes to the zero point); its result has
exactly one use, the *input* operand of an `nn.conv2d` or
`nn.depthwise_conv2d`. Pools are never folded (their padding is not a value).

On a bufferized graph the pad's buffer is dropped; a planned graph is refused
(the convolution now reads `x` later, which a finished plan did not allow for).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp
from xdsl.ir import Attribute
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from nnopt.compiler.diagnostics import UserError, op_location
from nnopt.dialects import nn
from nnopt.dialects.quant import UniformQuantizedType


def _pad_is_zero(op: nn.PadOp) -> bool:
    value = op.pad_value()
    if value == 0.0:
        return True
    elem = nn.elem_of(op.output)
    if isinstance(elem, UniformQuantizedType) and not elem.is_per_axis:
        return abs(value / elem.scale) < 0.5  # rounds to 0: the pad writes the zero point
    return False


def foldable_conv(op: nn.PadOp) -> nn.Conv2DOp | nn.DepthwiseConv2DOp | None:
    """The convolution `op` can fold into, or None when the conditions do not hold."""
    pairs = op.pad_pairs()
    if len(pairs) != 4 or pairs[0] != (0, 0) or pairs[3] != (0, 0) or not _pad_is_zero(op):
        return None
    uses = list(op.output.uses)
    if len(uses) != 1:
        return None
    user, index = uses[0].operation, uses[0].index
    if not isinstance(user, nn.Conv2DOp | nn.DepthwiseConv2DOp) or index != 0:
        return None
    return user


class FoldPadIntoConv(RewritePattern):
    """``conv(pad(x, 0))`` is ``conv(x)`` with the pad added to the convolution's explicit padding."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.PadOp, rewriter: PatternRewriter) -> None:
        conv = foldable_conv(op)
        if conv is None:
            return
        padded = nn.shape_of(op.output)
        kernel = nn.shape_of(conv.weight)[1:3]
        top, bottom, left, right = conv.explicit_padding(padded[1:3], kernel)
        (pt, pb), (pl, pr) = op.pad_pairs()[1], op.pad_pairs()[2]
        new_conv = conv.clone_without_regions({op.output: op.input})
        new_conv.properties["padding"] = nn.int_array([top + pt, bottom + pb, left + pl, right + pr])
        rewriter.replace(conv, new_conv)
        rewriter.erase(op)


def check_not_planned(graph: nn.GraphOp, pass_name: str) -> None:
    """Refuse graphs whose buffers already have offsets (rewriting them would void the plan)."""
    if nn.ARENAS_KEY in graph.attributes or any(b.planned for b in nn.graph_buffers(graph).values()):
        raise UserError(
            f"{pass_name}: graph @{graph.sym_name.data} is already planned; run {pass_name} before nn-plan-arena",
            op_location(graph),
        )


def drop_unused_buffers(graph: nn.GraphOp) -> None:
    """Remove the buffers no value and no scratch lives in (a no-op before nn-bufferize)."""
    buffers = nn.graph_buffers(graph)
    if not buffers:
        return
    used: set[str] = set()
    values = list(graph.block.args) + [r for op in graph.block.ops for r in op.results]
    for value in values:
        place = nn.value_place(value)
        if place is not None:
            used.add(place.buffer.data)
    for op in graph.block.ops:
        scratch = op.attributes.get(nn.SCRATCH_KEY)
        if isinstance(scratch, nn.PlaceAttr):
            used.add(scratch.buffer.data)
    kept: dict[str, Attribute] = {k: v for k, v in buffers.items() if k in used}
    graph.attributes[nn.BUFFERS_KEY] = DictionaryAttr(kept)


def fold_pads(graph: nn.GraphOp) -> int:
    """Fold every foldable pad of `graph`; returns how many were folded."""
    before = sum(isinstance(op, nn.PadOp) for op in graph.block.ops)
    PatternRewriteWalker(
        GreedyRewritePatternApplier([FoldPadIntoConv()], dce_enabled=False), apply_recursively=False
    ).rewrite_region(graph.body)
    after = sum(isinstance(op, nn.PadOp) for op in graph.block.ops)
    return before - after


@dataclass(frozen=True)
class FoldPadPass(ModulePass):
    """Fold explicit zero pads on H/W into the padding of the convolution that reads them."""

    name = "nn-fold-pad"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for graph in [g for g in op.walk() if isinstance(g, nn.GraphOp)]:
            check_not_planned(graph, self.name)
            if fold_pads(graph):
                drop_unused_buffers(graph)
