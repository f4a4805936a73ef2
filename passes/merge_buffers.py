"""`nn-merge-buffers`: let values share buffers in place, for the schedule as it is.

Works on bufferized graphs (it runs nn-bufferize first when a graph has no
``nn.buffers``) and rewrites the ``#nn.place`` of values so that several live
in one buffer, then drops the buffers nothing lives in. The op order is
fixed: every sharing is valid for it. Each rule is an option that can be
switched off (``nn-merge-buffers{inplace-concat=false}``):

``views``
    ``y = nn.reshape(x)`` lives at ``x``'s place when ``x`` is contiguous: no
    copy, no buffer. Safe because neither is ever written again while the other
    is live (any later in-place writer must find both dead, see below).
``inplace-elementwise``
    ``relu``, ``relu6``, ``clamp``, ``logistic``, ``tanh``, ``softmax`` (row by row),
    ``add``/``sub``/``mul`` (into an operand of the output's shape), ``quantize``,
    ``dequantize``: the result takes the operand's place when the op is the
    operand's last use, the operand is not a graph output or state variable, and
    the result's element size is at most the operand's (a forward loop that reads
    element ``i`` before writing element ``i`` then never clobbers an unread
    element; with equal sizes any layout works, with a smaller result both must
    be contiguous).
``inplace-concat``
    each input of a ``concat`` that is produced by an op (not a graph input or a
    constant) and whose last use is the concat is written straight into its
    slice of the output (byte offset plus the output's element strides: an NHWC
    channel concat gives strided places); the concat then copies nothing.
    Whatever already shares the input's buffer (an in-place chain feeding it, a
    nested concat) moves along, keeping its position relative to the input.
``inplace-overlap``
    a ``conv2d``, ``depthwise_conv2d`` (when not in place through a scratch),
    ``max_pool2d`` or ``avg_pool2d`` whose input is dead after it writes its
    result over the *start* of the contiguous input (kernel walks the pixels
    forwards) or over its *end* (backwards): safe when no byte written up to
    pixel ``p`` is read by pixel ``p`` or a later one, which bounds the offset
    of the result relative to the input (`nnopt.passes.analysis.overlap`). The
    buffer then holds both at different offsets and is *shaped*: each value is
    reserved only while it lives, so a 1x1 convolution from 8 to 16 channels
    needs ``out + 8`` bytes instead of ``in + out``.
``inplace-depthwise``
    (TinyEngine) a ``depthwise_conv2d`` with multiplier 1 whose input is dead
    after it, has the output's element size and is contiguous: the output takes
    the input's buffer, plus a scratch buffer of ``N*OH*OW`` elements in
    ``nn.scratch``, the per-channel temporary of the C kernel (compute channel
    ``c`` into it, then write it back: only channel-``c`` bytes are touched, and
    with equal channel counts output channel ``c`` lands only on input channel
    ``c`` bytes, which are consumed).

Before merging, graph rewrites remove buffers outright: ``fold-pad`` folds a
zero ``nn.pad`` on H/W into the convolution that reads it (see
`nnopt.passes.fold_pad`), ``fold-chains`` folds back-to-back reshapes and
transposes and identity ones (the ``canonicalize`` patterns).

Every proposed sharing is checked against one safety rule, independently of
the rule that proposed it: two values whose bytes overlap must either never
be live together, or be the same data (a view), or the second must be
written by an op that reads the first for the last time in a hazard-free
order (the element-order arguments above). A sharing is kept only if it does
not raise the liveness lower bound: first the sharings that raise no step's
live bytes are taken, then those that keep the peak. With ``report=true`` the
pass prints, per graph, the lower bound before and after and what merged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Attribute, BlockArgument, Operation, OpResult, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriteWalker, RewritePattern

from nnopt.compiler.diagnostics import UserError
from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import DEFAULT_SPACE, compute_lifetimes, executed_ops, value_name
from nnopt.passes.analysis.overlap import WINDOW_OPS, overlap_pair_in, shift_of
from nnopt.passes.analysis.places import Loc, byte_span, overlap, relocate, slice_loc
from nnopt.passes.bufferize import bufferize_graph
from nnopt.passes.canonicalization import nn as canonical
from nnopt.passes.fold_pad import FoldPadIntoConv, check_not_planned, drop_unused_buffers
from nnopt.passes.planning.problem import align_up, parts_profile

UNARY_INPLACE: tuple[type[Operation], ...] = (
    nn.ReluOp,
    nn.Relu6Op,
    nn.ClampOp,
    nn.LogisticOp,
    nn.TanhOp,
    nn.SoftmaxOp,
    nn.QuantizeOp,
    nn.DequantizeOp,
)
"""Ops that read element ``i`` (softmax: row ``i``) before writing it."""
BINARY_INPLACE: tuple[type[Operation], ...] = (nn.AddOp, nn.SubOp, nn.MulOp)
"""Broadcasting elementwise ops: in place into an operand of the output's shape."""

RULES = ("view", "elementwise", "concat", "depthwise", "overlap")
_KIND_RANK = ("activation", "input", "output", "variable")


@dataclass
class _Buf:
    size: int
    align: int
    kind: str
    space: str


@dataclass
class Merge:
    """One proposed sharing: new places for some values, and maybe a scratch buffer for the op."""

    rule: str
    op: Operation
    moves: dict[SSAValue, Loc]
    what: str
    scratch: int = 0
    """Bytes of scratch the op needs on top of what it has (in-place depthwise)."""


@dataclass
class MergeReport:
    """What nn-merge-buffers did to one graph."""

    graph: str
    bound_before: dict[str, int]
    bound_rewritten: dict[str, int]
    bound_after: dict[str, int]
    buffers_before: int
    buffers_after: int
    rewrites: dict[str, int] = field(default_factory=dict)
    merged: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, int]] = field(default_factory=list)

    def text(self) -> str:
        """The report printed with ``report=true``."""
        lines = [f"// nn-merge-buffers @{self.graph}"]
        for space in sorted(self.bound_after):
            before = self.bound_before.get(space, 0)
            after = self.bound_after[space]
            gain = f" ({100 * (before - after) / before:.1f}% lower)" if before else ""
            lines.append(
                f"//   lower bound '{space}': {before:,} -> {after:,} bytes{gain}"
                + (
                    f"; {self.bound_rewritten[space]:,} after graph rewrites"
                    if self.bound_rewritten.get(space, before) != before
                    else ""
                )
            )
        lines.append(f"//   buffers: {self.buffers_before} -> {self.buffers_after}")
        for name, count in self.rewrites.items():
            if count:
                lines.append(f"//   rewrite {name}: {count}")
        for rule, what in self.merged:
            lines.append(f"//   {rule}: {what}")
        for rule, what, bound in self.refused:
            lines.append(f"//   kept apart ({rule}): {what} would raise the lower bound to {bound:,}")
        return "\n".join(lines)


# --------------------------------------------------------------------------
# Graph rewrites that remove buffers
# --------------------------------------------------------------------------


def rewrite_graph(graph: nn.GraphOp, fold_pad: bool, fold_chains: bool) -> dict[str, int]:
    """Fold pads into convolutions and reshape/transpose chains; returns counts per rewrite."""
    patterns: list[RewritePattern] = []
    if fold_pad:
        patterns.append(FoldPadIntoConv())
    if fold_chains:
        patterns += [
            canonical.FoldIdentityReshape(),
            canonical.FoldReshapeChain(),
            canonical.FoldTransposeChain(),
        ]
    if not patterns:
        return {}

    def count() -> tuple[int, int]:
        ops = list(graph.block.ops)
        return (
            sum(isinstance(op, nn.PadOp) for op in ops),
            sum(isinstance(op, nn.ReshapeOp | nn.TransposeOp) for op in ops),
        )

    pads, chains = count()
    names, outputs = graph.output_names(), list(graph.output.values)
    PatternRewriteWalker(GreedyRewritePatternApplier(patterns, dce_enabled=False)).rewrite_region(graph.body)
    if list(graph.output.values) != outputs:
        # An output is now another value: keep the output names the graph had.
        attrs = (
            [dict(a.data) for a in graph.res_attrs.data]
            if graph.res_attrs is not None
            else [{} for _ in names]
        )
        for entry, name in zip(attrs, names, strict=True):
            entry[nn.NAME_KEY] = StringAttr(name)
        graph.res_attrs = ArrayAttr([DictionaryAttr(a) for a in attrs])
    # Inner links of folded chains may have lost their last use.
    for op in reversed(list(graph.block.ops)):
        if isinstance(op, nn.ReshapeOp | nn.TransposeOp) and not op.output.uses:
            op.detach()
            op.erase()
    pads_after, chains_after = count()
    return {"fold-pad": pads - pads_after, "fold-chains": chains - chains_after}


def _place_new_values(graph: nn.GraphOp, alignment: int) -> None:
    """Give values created by rewrites (no place yet) a buffer of their own."""
    buffers: dict[str, Attribute] = dict(nn.graph_buffers(graph))
    used = {int(n[1:]) for n in buffers if n[:1] == "b" and n[1:].isdigit()}
    k = max(used, default=-1) + 1
    outputs = set(graph.output.values)
    for op in executed_ops(graph):
        if len(op.results) == 1 and nn.PLACE_KEY not in op.attributes:
            name = f"b{k}"
            k += 1
            kind = "output" if op.results[0] in outputs else "activation"
            buffers[name] = nn.BufferAttr(nn.tensor_bytes(op.results[0]), alignment, kind)
            op.attributes[nn.PLACE_KEY] = nn.PlaceAttr(name)
    graph.attributes[nn.BUFFERS_KEY] = DictionaryAttr(buffers)


# --------------------------------------------------------------------------
# The buffer model
# --------------------------------------------------------------------------


class BufferModel:
    """Values, their places and lifetimes, and the live bytes per step, of one bufferized graph."""

    def __init__(self, graph: nn.GraphOp, alignment: int) -> None:
        self.graph = graph
        self.alignment = alignment
        self.ops = executed_ops(graph)
        self.step = {op: i for i, op in enumerate(self.ops)}
        self.nsteps = max(len(self.ops), 1)
        last_step = self.nsteps - 1
        outputs = set(graph.output.values)
        variables: set[SSAValue] = set()
        if graph.arg_attrs is not None:
            for i, attrs in enumerate(graph.arg_attrs.data):
                if nn.VARIABLE_KEY in attrs.data:
                    variables.add(graph.block.args[i])
        self.values: list[SSAValue] = list(graph.block.args)
        for op in self.ops:
            self.values.extend(op.results)
        self.kind: dict[SSAValue, str] = {}
        self.first: dict[SSAValue, int] = {}
        self.last: dict[SSAValue, int] = {}
        self.shape: dict[SSAValue, tuple[int, ...]] = {}
        self.eb: dict[SSAValue, int] = {}
        self.loc: dict[SSAValue, Loc] = {}
        for v in self.values:
            is_arg = isinstance(v, BlockArgument)
            first = 0 if is_arg else self.step[v.owner]  # type: ignore[index]
            last = first
            if v in outputs or v in variables:
                last = last_step
            else:
                for use in v.uses:
                    user = graph.block.find_ancestor_op_in_block(use.operation)
                    if user is not None and user in self.step:
                        last = max(last, self.step[user])
            self.first[v], self.last[v] = first, last
            kind = "variable" if v in variables else "input" if is_arg else "activation"
            self.kind[v] = "output" if v in outputs else kind
            self.shape[v] = nn.shape_of(v)
            self.eb[v] = nn.element_bytes(nn.elem_of(v))
            place = nn.value_place(v)
            if place is None:
                raise UserError(
                    f"nn-merge-buffers: value {value_name(v, '?')} of @{graph.sym_name.data} has no place"
                )
            self.loc[v] = Loc.of(place)
        self.protected = outputs | variables
        self.bufs: dict[str, _Buf] = {
            name: _Buf(b.size.data, b.align.data, b.kind.data, b.space.data)
            for name, b in nn.graph_buffers(graph).items()
        }
        self.members: dict[str, list[SSAValue]] = {name: [] for name in self.bufs}
        for v in self.values:
            if self.loc[v].buffer not in self.bufs:
                raise UserError(
                    f"nn-merge-buffers: value {value_name(v, '?')} is placed in an unknown buffer"
                )
            self.members[self.loc[v].buffer].append(v)
        self.scratch: dict[Operation, Loc] = {}
        self.scratch_users: dict[str, list[Operation]] = {}
        for op in self.ops:
            s = op.attributes.get(nn.SCRATCH_KEY)
            if isinstance(s, nn.PlaceAttr):
                self.scratch[op] = Loc.of(s)
                self.scratch_users.setdefault(s.buffer.data, []).append(op)
        self.live: dict[str, np.ndarray] = {}
        for name in self.bufs:
            buf = self.bufs[name]
            self._add(self.live, buf, self.members[name], self.scratch_users.get(name, []), buf.size)

    # -- live bytes -------------------------------------------------------
    def space(self, name: str) -> str:
        """The memory space of a buffer (the default one when unassigned)."""
        return self.bufs[name].space or DEFAULT_SPACE

    def _add(
        self,
        live: dict[str, np.ndarray],
        buf: _Buf,
        members: list[SSAValue],
        scratch_ops: list[Operation],
        size: int,
        sign: int = 1,
        loc: Callable[[SSAValue], Loc] | None = None,
    ) -> None:
        steps = [self.first[v] for v in members] + [self.step[op] for op in scratch_ops]
        if not steps:
            return
        where = loc if loc is not None else self.loc.__getitem__
        if not scratch_ops and overlap_pair_in(members, lambda v: where(v).offset):
            # A shaped buffer: each value takes its own bytes while it lives.
            a = max(self.alignment, buf.align)
            parts = []
            for v in members:
                lo_b, hi_b = byte_span(self.shape[v], self.eb[v], where(v))
                parts.append((self.first[v], self.last[v], lo_b // a * a, align_up(hi_b, a)))
            arr = live.setdefault(buf.space or DEFAULT_SPACE, np.zeros(self.nsteps, dtype=np.int64))
            arr += sign * parts_profile(parts, self.nsteps)
            return
        lo = min(steps)
        hi = max([self.last[v] for v in members] + [self.step[op] for op in scratch_ops])
        arr = live.setdefault(buf.space or DEFAULT_SPACE, np.zeros(self.nsteps, dtype=np.int64))
        arr[lo : hi + 1] += sign * align_up(size, max(self.alignment, buf.align))

    def bounds(self) -> dict[str, int]:
        """The liveness lower bound of every memory space."""
        return {space: int(arr.max()) if arr.size else 0 for space, arr in self.live.items()}

    # -- sharing rules ------------------------------------------------------
    def is_activation(self, v: SSAValue) -> bool:
        """True for graph inputs and op results that live in buffers (not constants)."""
        return v in self.loc

    def group_moves(
        self, v: SSAValue, target: Loc, members: list[SSAValue] | None = None
    ) -> dict[SSAValue, Loc] | None:
        """New places of everything in `v`'s buffer (or of `members` of it) when `v` moves to `target`."""
        source = self.loc[v].buffer
        if target.buffer == source or self.space(target.buffer) != self.space(source):
            return None
        if self.scratch_users.get(source):
            return None
        moves: dict[SSAValue, Loc] = {}
        for u in self.members[source] if members is None else members:
            if isinstance(u, BlockArgument):
                return None
            new = relocate(
                self.shape[u], self.eb[u], self.loc[u], self.shape[v], self.eb[v], self.loc[v], target
            )
            if new is None:
                return None
            moves[u] = new
        return moves

    def _name(self, v: SSAValue) -> str:
        return value_name(v, f"%{self.values.index(v)}")

    def views(self, op: Operation) -> Iterator[list[Merge]]:
        """Rule `views`: a reshape lives at its contiguous input's place."""
        if not isinstance(op, nn.ReshapeOp) or not self.is_activation(op.input):
            return
        lx = self.loc[op.input]
        target = Loc(lx.buffer, lx.offset)
        if not lx.contiguous or self.loc[op.output] == target:
            return
        moves = self.group_moves(op.output, target)
        if moves is not None:
            yield [Merge("view", op, moves, f"{self._name(op.output)} is a view of {self._name(op.input)}")]

    def elementwise(self, op: Operation) -> Iterator[list[Merge]]:
        """Rule `inplace-elementwise`: the result takes a dying operand's place."""
        if isinstance(op, UNARY_INPLACE):
            candidates = [op.operands[0]]
        elif isinstance(op, BINARY_INPLACE):
            candidates = list(dict.fromkeys(op.operands))
        else:
            return
        y = op.results[0]
        alternatives: list[Merge] = []
        for x in candidates:
            if not self.is_activation(x) or self.shape[x] != self.shape[y] or self.eb[y] > self.eb[x]:
                continue
            if x in self.protected or self.last[x] != self.step[op]:
                continue
            lx = self.loc[x]
            if self.eb[y] == self.eb[x]:
                target = lx
            elif lx.contiguous:
                target = Loc(lx.buffer, lx.offset)
            else:
                continue
            if self.loc[y] == target:
                return
            moves = self.group_moves(y, target)
            if moves is not None:
                what = f"{self._name(y)} ({op.name}) in place of {self._name(x)}"
                alternatives.append(Merge("elementwise", op, moves, what))
        if alternatives:
            yield alternatives

    def depthwise(self, op: Operation) -> Iterator[list[Merge]]:
        """Rule `inplace-depthwise`: output over the input, channel by channel through a temporary."""
        if not isinstance(op, nn.DepthwiseConv2DOp) or not self.is_activation(op.input):
            return
        x, y = op.input, op.output
        if op.depth_multiplier() != 1 or self.eb[x] != self.eb[y] or x in self.protected:
            return
        lx = self.loc[x]
        target = Loc(lx.buffer, lx.offset)
        if not lx.contiguous or self.last[x] != self.step[op] or self.loc[y] == target:
            return
        moves = self.group_moves(y, target)
        if moves is None:
            return
        n, oh, ow, _ = self.shape[y]
        temp = n * oh * ow * self.eb[y]
        what = f"{self._name(y)} ({op.name}) in place of {self._name(x)}, {temp} B scratch"
        yield [Merge("depthwise", op, moves, what, scratch=temp)]

    def window_overlap(self, op: Operation) -> Iterator[list[Merge]]:
        """Rule `inplace-overlap`: a window op's result over the start or the end of its dying input."""
        if not isinstance(op, WINDOW_OPS) or not self.is_activation(op.operands[0]):
            return
        x, y = op.operands[0], op.results[0]
        if x in self.protected or self.last[x] != self.step[op]:
            return
        lx, ly = self.loc[x], self.loc[y]
        if not lx.contiguous or not ly.contiguous or lx.buffer == ly.buffer:
            return
        shift = shift_of(op)
        assert shift is not None
        buf, a = lx.buffer, self.alignment
        size = self.bufs[buf].size
        out = byte_span(self.shape[y], self.eb[y], ly)[1] - ly.offset
        forward, reverse = lx.offset + shift.forward, lx.offset + shift.reverse
        candidates: set[int] = set()
        if forward < size:
            candidates.add(forward // a * a)
        if forward >= 0:
            candidates.add(0)
        if reverse < size + out:
            candidates.add(align_up(reverse, a))
            top = (size - out) // a * a
            if top >= reverse:
                candidates.add(top)
        ranked = sorted(
            candidates, key=lambda c: (max(size + max(0, -c), max(c, 0) + out), abs(c - lx.offset))
        )
        alternatives: list[Merge] = []
        for target in ranked:
            lift = max(0, -target)
            moves: dict[SSAValue, Loc] = {}
            if lift:
                # Make room below: everything in the input's buffer moves up by `lift` bytes.
                if self.scratch_users.get(buf):
                    continue
                for u in self.members[buf]:
                    lu = self.loc[u]
                    moves[u] = Loc(buf, lu.offset + lift, lu.strides)
            own = self.group_moves(y, Loc(buf, target + lift))
            if own is None:
                continue
            moves.update(own)
            way = "forwards" if target - lx.offset <= shift.forward else "backwards"
            what = f"{self._name(y)} ({op.name}, {way}) over {self._name(x)} at {target - lx.offset:+d} bytes"
            alternatives.append(Merge("overlap", op, moves, what))
        if alternatives:
            yield alternatives

    def concat(self, op: Operation) -> Iterator[list[Merge]]:
        """Rule `inplace-concat`: inputs written straight into their slices of the output.

        The input moves with what shares its buffer; when that would raise the
        bound, with only the values born from some step on (the rest keeps its
        buffer, and the first value moved is then computed out of place).
        """
        if not isinstance(op, nn.ConcatOp):
            return
        y = op.output
        axis = op.axis_value()
        start = 0
        counts: dict[SSAValue, int] = {}
        for x in op.inputs:
            counts[x] = counts.get(x, 0) + 1
        for x in op.inputs:
            begin = start
            start += nn.shape_of(x)[axis]
            if not isinstance(x, OpResult) or not self.is_activation(x) or counts[x] > 1:
                continue
            if x in self.protected or self.last[x] != self.step[op]:
                continue
            target = slice_loc(self.shape[y], self.eb[y], self.loc[y], axis, begin, self.shape[x])
            if self.loc[x] == target:
                continue
            group = self.members[self.loc[x].buffer]
            births = sorted({self.first[u] for u in group if self.first[u] <= self.first[x]})
            where = f"+{target.offset}" + (f" strides {list(target.strides)}" if target.strides else "")
            what = f"{self._name(x)} written into its slice of {self._name(y)} ({where})"
            alternatives: list[Merge] = []
            for t in births:
                moves = self.group_moves(x, target, [u for u in group if self.first[u] >= t])
                if moves is not None:
                    alternatives.append(Merge("concat", op, moves, what))
            if alternatives:
                yield alternatives

    # -- the safety rule ------------------------------------------------------
    def _root(self, v: SSAValue, loc: Callable[[SSAValue], Loc]) -> SSAValue:
        """The value whose data `v` is: through reshapes placed as views."""
        while isinstance(v, OpResult) and isinstance(v.op, nn.ReshapeOp):
            x = v.op.input
            if not self.is_activation(x) or loc(x) != loc(v):
                break
            v = x
        return v

    def _inplace_ok(
        self, op: Operation, o: SSAValue, w: SSAValue, loc: Callable[[SSAValue], Loc], scratch: int
    ) -> bool:
        """Whether `op` may write its result `w` over its operand `o` (read for the last time)."""
        lo, lw = loc(o), loc(w)
        same = lo == lw and self.eb[o] == self.eb[w]
        narrower = lo.contiguous and lw.contiguous and lo.offset == lw.offset and self.eb[w] <= self.eb[o]
        if isinstance(op, UNARY_INPLACE) or (
            isinstance(op, BINARY_INPLACE) and self.shape[o] == self.shape[w]
        ):
            return self.shape[o] == self.shape[w] and (same or narrower)
        if (
            isinstance(op, WINDOW_OPS)
            and o is op.operands[0]
            and lo.contiguous
            and lw.contiguous
            and lo.buffer == lw.buffer
            and (shift := shift_of(op)) is not None
            and shift.direction(lw.offset - lo.offset) is not None
        ):
            return True
        if isinstance(op, nn.DepthwiseConv2DOp):
            n, oh, ow, _ = self.shape[w]
            return (
                o is op.input
                and op.depth_multiplier() == 1
                and self.eb[o] == self.eb[w]
                and lo.contiguous
                and lw.contiguous
                and lo.offset == lw.offset
                and scratch >= n * oh * ow * self.eb[w]
            )
        if isinstance(op, nn.ConcatOp):
            axis = op.axis_value()
            start = 0
            ok = False
            for x in op.inputs:
                if x is o:
                    if ok:
                        return False  # one place cannot be two slices
                    ok = loc(x) == slice_loc(self.shape[w], self.eb[w], lw, axis, start, self.shape[x])
                    if not ok:
                        return False
                start += nn.shape_of(x)[axis]
            return ok
        return False

    def conflict(
        self,
        members: list[SSAValue],
        moved: set[SSAValue],
        loc: Callable[[SSAValue], Loc],
        scratch: Callable[[Operation], int],
    ) -> str | None:
        """Why the values of one buffer cannot share it as placed (pairs with a moved value), or None."""
        roots: dict[SSAValue, list[SSAValue]] = {}
        for v in members:
            roots.setdefault(self._root(v, loc), []).append(v)
        items = list(roots.items())
        for i, (a, group_a) in enumerate(items):
            for b, group_b in items[i + 1 :]:
                if not (moved.intersection(group_a) or moved.intersection(group_b)):
                    continue
                if not overlap(self.shape[a], self.eb[a], loc(a), self.shape[b], self.eb[b], loc(b)):
                    continue
                born_a = -1 if isinstance(a, BlockArgument) else self.first[a]
                born_b = -1 if isinstance(b, BlockArgument) else self.first[b]
                if born_a > born_b:
                    a, b, group_a = b, a, group_b
                    born_b = born_a
                elif born_a == born_b:
                    return f"{self._name(a)} and {self._name(b)} overlap from the start"
                dies = max(self.last[v] for v in group_a)
                if dies < born_b:
                    continue
                writer = b.owner
                assert isinstance(writer, Operation)
                if dies == born_b and not self.protected.intersection(group_a):
                    readers = [
                        o for o in writer.operands if self.is_activation(o) and self._root(o, loc) is a
                    ]
                    if readers and all(self._inplace_ok(writer, o, b, loc, scratch(writer)) for o in readers):
                        continue
                return f"{writer.name} writes {self._name(b)} over {self._name(a)}, which is still live"
        return None

    # -- trying and applying ----------------------------------------------------
    def attempt(self, m: Merge, phase: str) -> tuple[str, int]:
        """Apply `m` if it is safe and keeps the bound: 'accepted'; else 'unsafe' or 'bound' (and the bound).

        Phase ``pointwise`` accepts only changes that raise no step's live bytes,
        phase ``bound`` those that keep the peak of every memory space.
        """
        touched: set[str] = set()
        for v, new in m.moves.items():
            touched.add(self.loc[v].buffer)
            touched.add(new.buffer)
        new_members = {
            name: [u for u in self.members[name] if u not in m.moves]
            + [u for u, new in m.moves.items() if new.buffer == name]
            for name in touched
        }
        sizes: dict[str, int] = {}
        for name in touched:
            extents = [
                byte_span(self.shape[u], self.eb[u], m.moves.get(u, self.loc[u]))[1]
                for u in new_members[name]
            ]
            sizes[name] = max([self.bufs[name].size, *extents])
        new_live = {space: arr.copy() for space, arr in self.live.items()}

        def new_loc(v: SSAValue) -> Loc:
            return m.moves.get(v, self.loc[v])

        for name in touched:
            users = self.scratch_users.get(name, [])
            self._add(new_live, self.bufs[name], self.members[name], users, self.bufs[name].size, -1)
            self._add(new_live, self.bufs[name], new_members[name], users, sizes[name], loc=new_loc)
        # The op's scratch: its existing scratch buffer grows, or a new one appears.
        scratch_name: str | None = None
        scratch_buf: _Buf | None = None
        if m.scratch:
            old = self.scratch.get(m.op)
            if old is not None:
                scratch_name = old.buffer
                scratch_buf = _Buf(**vars(self.bufs[scratch_name]))
                scratch_buf.size += m.scratch
                users = self.scratch_users[scratch_name]
                self._add(new_live, self.bufs[scratch_name], [], users, self.bufs[scratch_name].size, -1)
                self._add(new_live, scratch_buf, [], users, scratch_buf.size)
            else:
                k = 0
                while f"s{k}" in self.bufs:
                    k += 1
                scratch_name = f"s{k}"
                space = self.bufs[m.moves.get(m.op.results[0], self.loc[m.op.results[0]]).buffer].space
                scratch_buf = _Buf(m.scratch, self.alignment, "scratch", space)
                self._add(new_live, scratch_buf, [], [m.op], scratch_buf.size)
        worse = False
        for space, arr in new_live.items():
            old_arr = self.live.get(space, np.zeros_like(arr))
            if phase == "pointwise":
                worse |= bool(np.any(arr > old_arr))
            else:
                worse |= int(arr.max()) > int(old_arr.max())
        # A buffer is placed whole: its extent bounds the arena too (shaped buffers can exceed their live bytes).
        bound = max(int(arr.max()) for arr in new_live.values())
        for name in touched:
            extent = align_up(sizes[name], max(self.alignment, self.bufs[name].align))
            old_peak = self.live.get(self.space(name))
            if old_peak is not None and extent > int(old_peak.max()):
                worse = True
                bound = max(bound, extent)
        if worse and phase == "pointwise":
            return "bound", bound

        def loc(v: SSAValue) -> Loc:
            return m.moves.get(v, self.loc[v])

        def scratch(op: Operation) -> int:
            if op is m.op and scratch_buf is not None:
                return scratch_buf.size
            s = self.scratch.get(op)
            return self.bufs[s.buffer].size if s is not None else 0

        moved = set(m.moves)
        for name in touched:
            if self.conflict(new_members[name], moved, loc, scratch) is not None:
                return "unsafe", bound
        if worse:
            return "bound", bound
        # Commit.
        for v, new in m.moves.items():
            self.loc[v] = new
        for name in touched:
            self.members[name] = new_members[name]
            self.bufs[name].size = sizes[name]
        if scratch_name is not None and scratch_buf is not None:
            self.bufs[scratch_name] = scratch_buf
            self.members.setdefault(scratch_name, [])
            self.scratch[m.op] = Loc(scratch_name)
            users = self.scratch_users.setdefault(scratch_name, [])
            if m.op not in users:
                users.append(m.op)
        self.live = new_live
        return "accepted", bound

    # -- writing back -----------------------------------------------------------
    def write_back(self) -> None:
        """Store places, scratch and the surviving buffers in the graph."""
        graph = self.graph
        if graph.block.args:
            arg_attrs = (
                [dict(a.data) for a in graph.arg_attrs.data]
                if graph.arg_attrs is not None
                else [{} for _ in graph.block.args]
            )
            for i, arg in enumerate(graph.block.args):
                arg_attrs[i][nn.PLACE_KEY] = self.loc[arg].attr()
            graph.arg_attrs = ArrayAttr([DictionaryAttr(a) for a in arg_attrs])
        for op in self.ops:
            for r in op.results:
                op.attributes[nn.PLACE_KEY] = self.loc[r].attr()
            if op in self.scratch:
                op.attributes[nn.SCRATCH_KEY] = self.scratch[op].attr()
        buffers: dict[str, Attribute] = {}
        for name, buf in self.bufs.items():
            members = self.members.get(name, [])
            if not members and not self.scratch_users.get(name):
                continue
            kind = buf.kind
            if kind not in ("scratch", "overlay"):
                ranks = [_KIND_RANK.index(self.kind[v]) for v in members]
                kind = _KIND_RANK[max(ranks)] if ranks else kind
            buffers[name] = nn.BufferAttr(buf.size, buf.align, kind, buf.space)
        graph.attributes[nn.BUFFERS_KEY] = DictionaryAttr(buffers)


# --------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------


def _bounds(graph: nn.GraphOp, alignment: int) -> dict[str, int]:
    lifetimes = compute_lifetimes(graph)
    spaces = {lifetimes.spaces.get(iv.name, DEFAULT_SPACE) for iv in lifetimes.buffers} or {DEFAULT_SPACE}
    return {space: lifetimes.problem(alignment, space).lower_bound() for space in spaces}


def merge_graph(
    graph: nn.GraphOp,
    *,
    alignment: int = 16,
    rules: tuple[str, ...] = RULES,
    fold_pad: bool = True,
    fold_chains: bool = True,
) -> MergeReport:
    """Rewrite, then merge the buffers of one graph; returns what happened."""
    check_not_planned(graph, "nn-merge-buffers")
    bufferize_graph(graph, alignment)
    before = _bounds(graph, alignment)
    n_before = len(nn.graph_buffers(graph))
    rewrites = rewrite_graph(graph, fold_pad, fold_chains)
    _place_new_values(graph, alignment)
    drop_unused_buffers(graph)
    rewritten = _bounds(graph, alignment)
    model = BufferModel(graph, alignment)
    proposers: list[Callable[[Operation], Iterator[list[Merge]]]] = []
    if "view" in rules:
        proposers.append(model.views)
    if "elementwise" in rules:
        proposers.append(model.elementwise)
    if "depthwise" in rules:
        proposers.append(model.depthwise)
    if "concat" in rules:
        proposers.append(model.concat)
    if "overlap" in rules:
        proposers.append(model.window_overlap)
    report = MergeReport(graph.sym_name.data, before, rewritten, {}, n_before, 0, rewrites)
    # Rounds until nothing changes: a later sharing can lower the step that made an
    # earlier one raise the peak (and a fixpoint makes the pass idempotent).
    changed = True
    while changed:
        changed = False
        report.refused = []
        for phase in ("pointwise", "bound"):
            for op in model.ops:
                for propose in proposers:
                    for alternatives in propose(op):
                        refused: tuple[str, str, int] | None = None
                        for merge in alternatives:
                            verdict, bound = model.attempt(merge, phase)
                            if verdict == "accepted":
                                report.merged.append((merge.rule, merge.what))
                                changed = True
                                refused = None
                                break
                            if verdict == "bound" and refused is None:
                                refused = (merge.rule, merge.what, bound)
                        if refused is not None and phase == "bound":
                            report.refused.append(refused)
    model.write_back()
    report.bound_after = _bounds(graph, alignment)
    report.buffers_after = len(nn.graph_buffers(graph))
    return report


@dataclass(frozen=True)
class MergeBuffersPass(ModulePass):
    """Share buffers in place (views, elementwise, concat slices, depthwise, window overlap) without raising the peak."""

    name = "nn-merge-buffers"

    views: bool = True
    """Reshapes live at their input's place."""
    inplace_elementwise: bool = True
    """Elementwise results overwrite an operand read for the last time."""
    inplace_concat: bool = True
    """Concat inputs are written straight into their slice of the output."""
    inplace_depthwise: bool = True
    """Depthwise convolutions (multiplier 1) overwrite their input through a one-channel scratch."""
    inplace_overlap: bool = True
    """Convolutions and pools write their result partly over their input, walking pixels in order."""
    fold_pad: bool = True
    """Fold zero pads on H/W into the convolution that reads them."""
    fold_chains: bool = True
    """Fold back-to-back and identity reshapes and transposes."""
    alignment: int = 16
    """Alignment of new buffers and of the lower bound, in bytes (a power of two)."""
    report: bool = False
    """Print the lower bound before and after, and every merge, to stderr."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise UserError(f"nn-merge-buffers: alignment must be a power of two, got {self.alignment}")
        flags = (
            self.views,
            self.inplace_elementwise,
            self.inplace_concat,
            self.inplace_depthwise,
            self.inplace_overlap,
        )
        rules = tuple(r for r, on in zip(RULES, flags, strict=True) if on)
        for graph in [g for g in op.walk() if isinstance(g, nn.GraphOp)]:
            result = merge_graph(
                graph,
                alignment=self.alignment,
                rules=rules,
                fold_pad=self.fold_pad,
                fold_chains=self.fold_chains,
            )
            if self.report:
                print(result.text(), file=sys.stderr)
