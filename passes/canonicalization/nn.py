"""Canonicalization patterns for `nn` ops (each one preserves results exactly)."""

from __future__ import annotations

from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from nnopt.dialects import nn


class FoldIdentityReshape(RewritePattern):
    """``nn.reshape`` to its own type is its input."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ReshapeOp, rewriter: PatternRewriter) -> None:
        if op.input.type == op.output.type:
            rewriter.replace(op, [], [op.input])


class FoldReshapeChain(RewritePattern):
    """``reshape(reshape(x))`` is ``reshape(x)``: only the final shape matters."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ReshapeOp, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if isinstance(inner, nn.ReshapeOp):
            rewriter.replace(op, nn.ReshapeOp(inner.input, op.output.type))


class FoldTransposeChain(RewritePattern):
    """``transpose(transpose(x, p), q)`` is ``transpose(x, p∘q)``; the identity permutation vanishes."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.TransposeOp, rewriter: PatternRewriter) -> None:
        perm = nn.ints(op.perm)
        if list(perm) == sorted(perm):
            rewriter.replace(op, [], [op.input])
            return
        inner = op.input.owner
        if isinstance(inner, nn.TransposeOp):
            first = nn.ints(inner.perm)
            composed = [first[p] for p in perm]
            if composed == sorted(composed):
                rewriter.replace(op, [], [inner.input])
            else:
                rewriter.replace(
                    op,
                    nn.TransposeOp(
                        operands=[inner.input],
                        result_types=[op.output.type],
                        properties={"perm": nn.int_array(composed)},
                    ),
                )


class FoldIdempotentActivation(RewritePattern):
    """``relu(relu(x))`` and ``relu6(relu6(x))`` keep one activation when types agree."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.ReluOp | nn.Relu6Op, rewriter: PatternRewriter) -> None:
        inner = op.input.owner
        if type(inner) is type(op) and op.output.type == op.input.type:
            rewriter.replace(op, [], [op.input])


class FoldIdentityQuantize(RewritePattern):
    """``nn.quantize`` between identical quantized types is its input."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn.QuantizeOp, rewriter: PatternRewriter) -> None:
        if op.input.type == op.output.type:
            rewriter.replace(op, [], [op.input])
