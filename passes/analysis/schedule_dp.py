"""Memory-aware topological orders of a graph's ops (the search behind `nn-schedule`).

The cost model is the one `compute_lifetimes` uses, with aligned sizes and the
scratch buffers `nn-bufferize` adds: at the step of an op, its inputs, its
results and its scratch are live together with every value produced earlier
and still read later. Graph inputs are live from the first step until their
last reader (an unread input only at the first step), graph outputs and state
tensors until the end. Which values are live between two steps depends only
on the *set* of ops already executed, so the smallest peak over all orders is
a shortest-path problem over the downward-closed sets of ops (Liberis & Lane's
memoized recursion over working sets, run forwards):

    best(S + v) = min over the ops v that can end S + v of max(best(S), cost(S, v))

The search runs layer by layer (one layer per number of executed ops). A cut
is a position that every topological order passes through with the same set
of executed ops (all ops before it are ancestors of all ops after it); the
graph splits into independent segments there, each searched on its own
(`best_orders` describes the per-segment strategy: beam search for a first
order, exact search for a strictly better one within `max_states` states,
exact re-ordering of sliding windows beyond). Two rules shrink the exact
search without losing the optimum:

* states whose peak exceeds the best known order's are dropped;
* an op that fits under the current peak (or under the largest op floor, a
  peak no order avoids) and frees at least the bytes it keeps is run at
  once, alone: moving such an op forward in any order lowers or keeps every
  step it passes, so some optimal order does so.

Ties between orders of the same peak are broken by a secondary cost: the sum
of the live bytes over the steps (``area``) or the distance from the
original order (``original``); the secondary cost is minimised greedily
(per state), not exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.ir import Operation, OpResult, SSAValue

from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import executed_ops
from nnopt.passes.analysis.scratch import scratch_bytes
from nnopt.passes.planning.problem import align_up

TIES = ("area", "original")
"""Secondary costs that order schedules of equal peak."""
RANKS = ("peak", "live")
"""How the beam search ranks the states of a layer: peak so far first, or bytes live now first."""


@dataclass(frozen=True)
class DepGraph:
    """The executed ops of a graph as a dependence graph with the byte counts of the cost model.

    Ops are numbered in their original block order (a topological order).
    Masks are Python integers with bit ``i`` standing for op ``i``.
    """

    preds: tuple[int, ...]
    """Mask of the ops producing each op's (non-constant) operands."""
    succs: tuple[tuple[int, ...], ...]
    """Ops reading each op's results."""
    step_bytes: tuple[int, ...]
    """Bytes an op adds during its own step: all of its results and its scratch."""
    keep_bytes: tuple[int, ...]
    """Bytes of an op's results that stay live after its step (read later, or graph outputs)."""
    frees: tuple[tuple[tuple[int, int], ...], ...]
    """Per op, (readers mask, bytes) of each operand value that dies once all its readers have run."""
    live0: int
    """Bytes live before the first op: graph inputs that are read, graph outputs or state tensors."""
    first_extra: int
    """Bytes of graph inputs nobody reads: live at the first step only."""
    floors: tuple[int, ...] = ()
    """Bytes live at an op's step in any order: its operands, results, scratch and the pinned inputs."""
    names: tuple[str, ...] = ()
    """A readable name per op (for reports)."""

    @property
    def n(self) -> int:
        """Number of ops."""
        return len(self.preds)

    def live_after(self, mask: int, live: int, v: int) -> int:
        """Bytes live once op `v` has run, given the ops in `mask` (which includes `v`) ran before."""
        live += self.keep_bytes[v]
        for readers, size in self.frees[v]:
            if readers & ~mask == 0:
                live -= size
        return live

    def profile(self, order: Sequence[int]) -> list[int]:
        """Bytes live at each step of `order` (a permutation of the ops, checked topological)."""
        if sorted(order) != list(range(self.n)):
            raise ValueError("order is not a permutation of the ops")
        mask, live, out = 0, self.live0, []
        for v in order:
            if self.preds[v] & ~mask:
                raise ValueError(f"op {v} runs before one of its operands is produced")
            out.append(live + self.step_bytes[v] + (self.first_extra if mask == 0 else 0))
            mask |= 1 << v
            live = self.live_after(mask, live, v)
        return out

    def peak(self, order: Sequence[int]) -> int:
        """The liveness peak of `order` (what the planner's lower bound will be before merging).

        A graph without ops still holds its inputs (at step 0, as `compute_lifetimes` counts them).
        """
        return max(self.profile(order), default=self.live0 + self.first_extra)

    def ancestors(self) -> list[int]:
        """Mask of the (transitive) ancestors of each op."""
        anc: list[int] = []
        for v in range(self.n):
            mask, preds = self.preds[v], self.preds[v]
            while preds:
                low = preds & -preds
                mask |= anc[low.bit_length() - 1]
                preds ^= low
            anc.append(mask)
        return anc

    def cuts(self) -> list[int]:
        """Positions k (0 < k < n) where every order has run exactly the first k original ops."""
        anc = self.ancestors()
        suffix = -1  # all ones
        ands = [0] * (self.n + 1)
        ands[self.n] = -1
        for y in range(self.n - 1, -1, -1):
            suffix &= anc[y]
            ands[y] = suffix
        return [k for k in range(1, self.n) if ands[k] & ((1 << k) - 1) == (1 << k) - 1]

    def segments(self) -> list[tuple[int, int]]:
        """The original positions [lo, hi) of the independent segments between cuts."""
        bounds = [0, *self.cuts(), self.n]
        return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1) if bounds[i] < bounds[i + 1]]


def _is_constant(value: SSAValue) -> bool:
    return isinstance(value, OpResult) and isinstance(value.op, nn.ConstOp)


def dep_graph(graph: nn.GraphOp, alignment: int = 16) -> tuple[DepGraph, list[Operation]]:
    """The dependence graph of a graph's executed ops (in block order) and those ops.

    Ops are pure and flat (nn ops have no regions), so only their operands order them.
    """
    ops = executed_ops(graph)
    index = {op: i for i, op in enumerate(ops)}
    outputs = set(graph.output.values)
    pinned: set[SSAValue] = set(outputs)
    if graph.arg_attrs is not None:
        for i, attrs in enumerate(graph.arg_attrs.data):
            if nn.VARIABLE_KEY in attrs.data:
                pinned.add(graph.block.args[i])

    def size(value: SSAValue) -> int:
        return align_up(nn.tensor_bytes(value), alignment)

    def readers(value: SSAValue) -> int:
        mask = 0
        for use in value.uses:
            user = graph.block.find_ancestor_op_in_block(use.operation)
            if user is not None and user in index:
                mask |= 1 << index[user]
        return mask

    preds: list[int] = []
    succs: list[set[int]] = [set() for _ in ops]
    step_bytes: list[int] = []
    keep_bytes: list[int] = []
    frees: list[tuple[tuple[int, int], ...]] = []
    floors: list[int] = []
    for i, op in enumerate(ops):
        operands: list[SSAValue] = []
        for operand in op.operands:
            if operand not in operands and not _is_constant(operand):
                operands.append(operand)
        mask = 0
        free: list[tuple[int, int]] = []
        for operand in operands:
            producer = operand.op if isinstance(operand, OpResult) else None
            if producer is not None and producer in index:
                mask |= 1 << index[producer]
                succs[index[producer]].add(i)
            if operand not in pinned:
                free.append((readers(operand), size(operand)))
        preds.append(mask)
        frees.append(tuple(free))
        results = list(op.results)
        step_bytes.append(sum(size(r) for r in results) + align_up(scratch_bytes(op), alignment))
        pinned_args = [a for a in graph.block.args if a in pinned and a not in operands]
        floors.append(step_bytes[-1] + sum(size(v) for v in [*operands, *pinned_args]))
        keep_bytes.append(sum(size(r) for r in results if r in pinned or readers(r)))
    live0 = 0
    first_extra = 0
    for arg in graph.block.args:
        if arg in pinned or readers(arg):
            live0 += size(arg)
        else:
            first_extra += size(arg)
    names = tuple(
        f"{op.name} %{op.results[0].name_hint}" if op.results and op.results[0].name_hint else op.name
        for op in ops
    )
    dg = DepGraph(
        tuple(preds),
        tuple(tuple(sorted(s)) for s in succs),
        tuple(step_bytes),
        tuple(keep_bytes),
        tuple(frees),
        live0,
        first_extra,
        tuple(floors),
        names,
    )
    return dg, ops


@dataclass(frozen=True)
class Schedule:
    """An order of the ops and what it took to find it."""

    order: tuple[int, ...]
    peak: int
    secondary: int
    exact: bool
    """True when every segment was searched exhaustively (the peak is the smallest possible)."""
    lower_bound: int
    """No order has a smaller peak (equal to `peak` when exact)."""
    states: int
    """DP states created over all segments."""
    segments: int


class _TooMany(Exception):
    """The exhaustive search needs more states than allowed."""


class _NoOrder(Exception):
    """No order stays within the peak budget."""

    def __init__(self, states: int) -> None:
        super().__init__(states)
        self.states = states


@dataclass(frozen=True)
class _Part:
    """An order of some ops found by one search."""

    order: list[int]
    peak: int
    secondary: int
    live: int
    """Bytes live after the last op."""
    states: int


def _search(
    dg: DepGraph,
    ops: int,
    start_mask: int,
    start_live: int,
    start_pos: int,
    *,
    tie: str,
    limit: int | None = None,
    bound: int | None = None,
    beam: int = 0,
    rank: str = "live",
) -> _Part:
    """Order the ops of mask `ops` after those of `start_mask` ran (at positions from `start_pos`).

    Every op of `ops` must have its producers in `start_mask` or in `ops`.
    Exhaustive when `beam` is 0: raises `_TooMany` beyond `limit` states, and
    drops states whose peak exceeds `bound` (raising `_NoOrder` when none is
    left). With `beam`, keeps the `beam` best states of each layer by `rank`.
    """
    cap = bound if bound is not None else -1
    ready = 0
    rest = ops
    while rest:
        low = rest & -rest
        rest ^= low
        if dg.preds[low.bit_length() - 1] & ~start_mask == 0:
            ready |= low
    floor = 0
    rest = ops
    while rest:
        low = rest & -rest
        rest ^= low
        floor = max(floor, dg.floors[low.bit_length() - 1])
    # state: mask -> [peak, secondary, live, ready]
    layer: dict[int, list[int]] = {start_mask: [0, 0, start_live, ready]}
    parents: list[dict[int, tuple[int, int]]] = []
    states = 1
    by_area = tie == "area"
    for pos in range(start_pos, start_pos + ops.bit_count()):
        new: dict[int, list[int]] = {}
        back: dict[int, tuple[int, int]] = {}
        for mask, (peak, sec, live, rdy) in layer.items():
            extra = dg.first_extra if mask == 0 else 0
            r = rdy
            # An op that fits under the peak and frees at least what it keeps may run
            # now: moving it forward in any order lowers or keeps every step in between.
            budget = peak if peak > floor else floor
            f = rdy
            while f:
                low = f & -f
                f ^= low
                v = low.bit_length() - 1
                if live + dg.step_bytes[v] + extra <= budget and dg.live_after(mask | low, live, v) <= live:
                    r = low
                    break
            while r:
                low = r & -r
                r ^= low
                v = low.bit_length() - 1
                cost = live + dg.step_bytes[v] + extra
                npeak = peak if peak >= cost else cost
                if cap >= 0 and npeak > cap:
                    continue
                nsec = sec + (cost if by_area else abs(pos - v))
                nmask = mask | low
                cur = new.get(nmask)
                if cur is None:
                    nlive = dg.live_after(nmask, live, v)
                    nready = rdy ^ low
                    for w in dg.succs[v]:
                        if dg.preds[w] & ~nmask == 0 and (ops >> w) & 1:
                            nready |= 1 << w
                    new[nmask] = [npeak, nsec, nlive, nready]
                    back[nmask] = (mask, v)
                elif npeak < cur[0] or (npeak == cur[0] and nsec < cur[1]):
                    cur[0], cur[1] = npeak, nsec
                    back[nmask] = (mask, v)
        states += len(new)
        if limit is not None and states > limit:
            raise _TooMany
        if not new:
            raise _NoOrder(states)
        if beam and len(new) > beam:
            if rank == "peak":
                kept = sorted(new.items(), key=lambda kv: (kv[1][0], kv[1][2], kv[1][1]))[:beam]
            else:
                kept = sorted(new.items(), key=lambda kv: (kv[1][2], kv[1][0], kv[1][1]))[:beam]
            new = dict(kept)
        parents.append(back)
        layer = new
    (end_mask, (peak, sec, live, _)) = next(iter(layer.items()))
    order: list[int] = []
    mask = end_mask
    for back in reversed(parents):
        mask, v = back[mask]
        order.append(v)
    order.reverse()
    return _Part(order, peak, sec, live, states)


def _improve_windows(
    dg: DepGraph,
    part: _Part,
    start_mask: int,
    start_live: int,
    start_pos: int,
    *,
    tie: str,
    window: int,
    limit: int,
) -> _Part:
    """Re-order windows of `window` consecutive ops of `part` exactly, keeping each change that helps.

    A window's ops are re-ordered with the ops before it fixed; the set run
    after it is unchanged, so the rest of the order costs the same. Sweeps
    until a sweep changes nothing or `limit` states are spent.
    """
    order = list(part.order)
    states = 0
    improved = True
    while improved and states < limit:
        improved = False
        costs, lives, masks = [], [start_live], [start_mask]
        mask, live = start_mask, start_live
        for v in order:
            costs.append(live + dg.step_bytes[v] + (dg.first_extra if mask == 0 else 0))
            mask |= 1 << v
            live = dg.live_after(mask, live, v)
            masks.append(mask)
            lives.append(live)
        step = max(1, window // 2)
        for i in range(0, max(1, len(order) - window + step), step):
            j = min(len(order), i + window)
            if j - i < 2:
                continue
            old = costs[i:j]
            old_sec = (
                sum(old)
                if tie == "area"
                else sum(abs(start_pos + i + k - v) for k, v in enumerate(order[i:j]))
            )
            try:
                found = _search(
                    dg,
                    masks[j] & ~masks[i],
                    masks[i],
                    lives[i],
                    start_pos + i,
                    tie=tie,
                    limit=limit - states,
                    bound=max(old),
                )
            except _TooMany:
                states = limit
                improved = False
                break
            states += found.states
            if (found.peak, found.secondary) < (max(old), old_sec):
                order[i:j] = found.order
                improved = True
                break
    mask, live = start_mask, start_live
    costs = []
    for v in order:
        costs.append(live + dg.step_bytes[v] + (dg.first_extra if mask == 0 else 0))
        mask |= 1 << v
        live = dg.live_after(mask, live, v)
    sec = sum(costs) if tie == "area" else sum(abs(start_pos + k - v) for k, v in enumerate(order))
    return _Part(order, max(costs), sec, live, states)


def best_orders(
    dg: DepGraph,
    *,
    max_states: int = 100_000,
    beam: int = 128,
    ties: Sequence[str] = TIES,
    rank: str = "live",
    window: int = 12,
) -> list[Schedule]:
    """Topological orders of least peak, one per tie-break in `ties`; exact per segment within `max_states`.

    Per segment: two beam searches of width `beam` (states ranked by bytes
    live now or by peak so far; `rank` first, it wins ties) give an order.
    The exact search then looks for a strictly smaller peak, dropping every
    partial order already above the beam's: the order it finds is optimal,
    and when it finds none, the beam's order is. The optimal peak then bounds
    one more exact search per tie-break that orders the optimal orders by it
    (if the states allow; else the first optimal order found stays). A
    segment too large for `max_states` keeps the beam's order, improved by
    exact re-ordering of sliding windows of `window` ops (per tie-break, each
    within `max_states` states).
    """
    for tie in ties:
        if tie not in TIES:
            raise ValueError(f"tie must be one of {TIES}, got {tie!r}")
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {RANKS}, got {rank!r}")
    if not ties:
        return []
    k = len(ties)
    orders: list[list[int]] = [[] for _ in ties]
    peaks = [0 if dg.n else dg.live0 + dg.first_extra] * k
    secs = [0] * k
    states = 0
    lower = peaks[0]
    exact = True
    mask, live = 0, dg.live0
    segments = dg.segments()
    ranks = (rank, *(r for r in RANKS if r != rank))
    for lo, hi in segments:
        ops = ((1 << hi) - 1) ^ ((1 << lo) - 1)
        parts: list[_Part]
        if hi - lo == 1:
            cost = live + dg.step_bytes[lo] + (dg.first_extra if mask == 0 else 0)
            end = dg.live_after(mask | ops, live, lo)
            parts = [_Part([lo], cost, cost if tie == "area" else 0, end, 0) for tie in ties]
            floor = cost
            states += 1
        else:
            heuristic = []
            for tie in ties:
                tried = [_search(dg, ops, mask, live, lo, tie=tie, beam=beam, rank=r) for r in ranks]
                states += sum(t.states for t in tried)
                heuristic.append(min(tried, key=lambda t: (t.peak, t.secondary)))
            known = min(heuristic, key=lambda t: t.peak)
            floor = max(dg.floors[lo:hi])
            optimum: _Part | None = None
            try:
                optimum = _search(
                    dg, ops, mask, live, lo, tie=ties[0], limit=max_states, bound=known.peak - 1
                )
                states += optimum.states
            except _TooMany:
                states += max_states
            except _NoOrder as none:
                states += none.states
                optimum = known
            if optimum is None:
                exact = False
                parts = []
                for tie, part in zip(ties, heuristic, strict=True):
                    # Each tie-break improves its own beam order: two different starting points.
                    improved = _improve_windows(
                        dg, part, mask, live, lo, tie=tie, window=window, limit=max_states
                    )
                    states += improved.states
                    parts.append(improved)
            else:
                floor = optimum.peak
                parts = []
                for tie, part in zip(ties, heuristic, strict=True):
                    best = optimum if optimum is not known or part.peak > optimum.peak else part
                    if tie != ties[0] or optimum is known:
                        try:
                            best = _search(
                                dg, ops, mask, live, lo, tie=tie, limit=max_states, bound=optimum.peak
                            )
                            states += best.states
                        except _TooMany:
                            states += max_states
                    parts.append(best)
        for i, part in enumerate(parts):
            orders[i].extend(part.order)
            peaks[i] = max(peaks[i], part.peak)
            secs[i] += part.secondary
        lower = max(lower, floor)
        live = parts[0].live
        mask |= ops
    return [
        Schedule(tuple(orders[i]), peaks[i], secs[i], exact, lower, states, len(segments)) for i in range(k)
    ]


def best_order(
    dg: DepGraph,
    *,
    max_states: int = 100_000,
    beam: int = 128,
    tie: str = "area",
    rank: str = "live",
    window: int = 12,
) -> Schedule:
    """A topological order of least peak, ties broken by `tie` (see `best_orders`)."""
    return best_orders(dg, max_states=max_states, beam=beam, ties=(tie,), rank=rank, window=window)[0]
