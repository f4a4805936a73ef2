"""Memory-space placement: which memory holds every buffer and constant, and which weights get overlays.

The algorithm behind `nn-assign-memspace` (the pass writes its result into
the IR). For one *set* of memories it places, in three phases:

1. **Activations** (every buffer: activations, graph inputs and outputs,
   scratch, state) go to volatile memories only, fastest first: buffers are
   taken by *benefit per byte* (bytes they move per byte they occupy) and each
   goes to the fastest memory whose live bytes stay within its capacity over the
   buffer's lifetime (the liveness bound per memory). Every memory is then
   packed with the greedy portfolio of the planner; a memory whose packing
   overflows gets its budget lowered by the overflow and the phase starts again,
   which spills its least dense buffers to the next memory.
2. **Constants** go to non-volatile memory (densest first into the fastest one
   that has room); where none has room, or the target has no non-volatile
   memory, into volatile memory. A constant is then *copied* (at boot) into a
   faster volatile memory only when the cost model says it pays off and the
   memory has room left beside its arena: candidates by gain per byte.
3. **Overlays**: for an op whose weights sit in a slower memory, a copy of the
   weights into the free space of a faster arena right before use, issued one
   op early when a DMA engine can run it during the previous layer (double
   buffering) and when the space allows, else right before the consumer. Only
   where the cost model says the op gains at least `min_gain` of its own cost
   (so a data cache that already holds the weights, as on the STM32H743 for
   small layers, makes them pointless), and only what the packing of the fast
   arena can still hold.

`place` runs those phases for every subset of the target's memories (an unused
memory is powered off) that contains what the pins require, prices each
result with the cost model and keeps the cheapest (ties: fewer powered
memories, then the other objective). Since the subsets of a target are also
subsets of any target with one more memory, adding a memory never makes the
estimated cost worse. Pins fix items to memories. When no subset fits, the
error of the full set is raised: the peak step, the buffers live there and the
shortfall.

Lifetimes are handled in *doubled* steps: op ``s`` is at ``2s+1`` and an
overlay copy inserted before op ``s`` at ``2s``, so overlays can be sized
before they exist in the IR.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.targets import Memory, Target
from nnopt.passes.analysis.cost import (
    OBJECTIVES,
    Access,
    CostModel,
    CostReport,
    Item,
    OpTraffic,
    Traffic,
)
from nnopt.passes.analysis.lifetimes import Lifetimes
from nnopt.passes.planning.allocators import greedy_portfolio
from nnopt.passes.planning.problem import Buffer, Problem, align_up

MAX_SUBSET_MEMORIES = 6
"""Targets with more memories only try the full set (2^k subsets otherwise)."""

WEIGHTED_CLASSES = ("conv2d", "conv2d_1x1", "depthwise_conv2d", "fully_connected", "matmul")
"""Op classes whose weights may get an overlay."""


@dataclass(frozen=True)
class Span:
    """A buffer's lifetime in doubled steps, half-open ``[lo, hi)``."""

    name: str
    size: int
    lo: int
    hi: int
    kind: str


@dataclass(frozen=True)
class Overlay:
    """A copy of constant `const` into `space`, read by op `consumer` (index in the traffic's ops)
    and inserted before op `start` (`consumer`, or `consumer - 1` when double-buffered)."""

    name: str
    const: str
    consumer: int
    start: int
    space: str
    size: int
    gain: float

    @property
    def double_buffered(self) -> bool:
        return self.start < self.consumer


@dataclass
class Placement:
    """The result for one set of memories."""

    memories: tuple[str, ...]
    spaces: dict[str, str]
    """Item (buffer or constant) -> memory space."""
    overlays: list[Overlay]
    arenas: dict[str, int]
    """Greedy arena bytes per memory (the final plan can only be smaller)."""
    static: dict[str, int]
    """Bytes of constants held per memory (aligned)."""
    report: CostReport
    traffic: Traffic
    volatile: frozenset[str] = frozenset()
    """Names of the target's volatile memories."""

    @property
    def used(self) -> tuple[str, ...]:
        """The memories that hold something, in the order `memories` lists them."""
        held = {space for key, space in self.spaces.items() if self.traffic.items[key].size > 0}
        return tuple(name for name in self.memories if name in held)

    def key(self, objective: str) -> tuple[float, int, int, float]:
        """Sort key: the objective, then fewer constant bytes copied into volatile memory (weights
        stay in non-volatile memory unless copying pays off), fewer powered memories, the other
        objective."""
        other = "energy" if objective == "latency" else "latency"
        return (
            _rounded(self.report.objective(objective)),
            sum(b for name, b in self.static.items() if name in self.volatile),
            len(self.report.powered),
            _rounded(self.report.objective(other)),
        )


def _rounded(value: float) -> float:
    """Objective values compared with 12 significant digits (float noise must not decide)."""
    return float(f"{value:.12g}")


class NoFit(Exception):
    """A set of memories cannot hold the model; `error` is the user-facing message."""

    def __init__(self, error: UserError) -> None:
        super().__init__(str(error))
        self.error = error


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def spans(lifetimes: Lifetimes) -> dict[str, Span]:
    """Buffer lifetimes in doubled steps (graph inputs start before any copy)."""
    out: dict[str, Span] = {}
    for iv in lifetimes.buffers:
        lo = 0 if iv.first == 0 and iv.kind in ("input", "variable") else 2 * iv.first + 1
        out[iv.name] = Span(iv.name, iv.size, lo, 2 * iv.last + 2, iv.kind)
    return out


def densities(traffic: Traffic) -> dict[str, float]:
    """Bytes each item moves per byte it occupies (its benefit per byte in a faster memory)."""
    moved: dict[str, float] = dict.fromkeys(traffic.items, 0.0)
    for op in traffic.ops:
        for a in op.accesses:
            moved[a.item] = moved.get(a.item, 0.0) + a.bytes * a.passes
    return {k: moved[k] / max(1, item.size) for k, item in traffic.items.items()}


# --------------------------------------------------------------------------
# The placer
# --------------------------------------------------------------------------


@dataclass
class _Budget:
    memory: Memory
    budget: int
    usage: list[int] = field(default_factory=list)
    static: int = 0
    """Bytes of constants held for the whole run."""

    def fits(self, lo: int, hi: int, size: int) -> bool:
        return all(self.usage[t] + size <= self.budget for t in range(lo, hi))

    def add(self, lo: int, hi: int, size: int) -> None:
        for t in range(lo, hi):
            self.usage[t] += size


class Placer:
    """Places one graph's items on one target (see the module docstring)."""

    def __init__(
        self,
        target: Target,
        traffic: Traffic,
        lifetimes: Lifetimes,
        *,
        pins: Mapping[str, str] | None = None,
        objective: str = "latency",
        overlays: bool = True,
        min_gain: float = 0.02,
    ) -> None:
        if objective not in OBJECTIVES:
            raise UserError(f"unknown objective '{objective}' (one of {', '.join(OBJECTIVES)})")
        self.target = target
        self.traffic = traffic
        self.lifetimes = lifetimes
        self.pins = dict(pins or {})
        self.objective = objective
        self.overlays = overlays
        self.min_gain = min_gain
        self.model = CostModel(target, traffic)
        self.spans = spans(lifetimes)
        self.horizon = 2 * max(len(lifetimes.steps), 1) + 2
        self.density = densities(traffic)
        self.users = traffic.users()
        self.buffers = [k for k, item in traffic.items.items() if item.kind != "constant"]
        self.buffer_set = set(self.buffers)
        self.constants = [k for k, item in traffic.items.items() if item.kind == "constant"]
        for key, space in self.pins.items():
            memory = target.memory(space)
            if key not in traffic.items:
                raise UserError(f"pin '{key}:{space}' names no buffer or constant of the graph")
            if traffic.items[key].kind != "constant" and not (memory.volatile and memory.writable):
                raise UserError(
                    f"pin '{key}:{space}': '{key}' is written at run time and '{space}' is "
                    f"{'read-only' if not memory.writable else 'non-volatile'}; activations live in "
                    f"volatile memory ({', '.join(m.name for m in target.volatile_memories)})"
                )

    # -- helpers -----------------------------------------------------------
    def padded(self, key: str, memory: Memory) -> int:
        """Bytes an item takes in `memory`: buffers as nn-plan-arena aligns them, constants to the memory."""
        if key in self.buffer_set:
            align = max(16, self.lifetimes.alignments.get(key, 1), memory.alignment)
        else:
            align = memory.alignment
        return align_up(self.traffic.items[key].size, align)

    def problem(self, memory: Memory, names: Sequence[str], overlays: Sequence[Overlay] = ()) -> Problem:
        """The packing problem of `memory` once `overlays` exist, exactly as nn-plan-arena will see it:
        buffers in the graph's order, lifetimes renumbered around the copies, the same alignments."""
        # Step index of op s and of each copy once the copies are inserted.
        starts: dict[int, list[Overlay]] = {}
        for ov in sorted(overlays, key=lambda o: (o.start, o.consumer)):
            starts.setdefault(ov.start, []).append(ov)
        op_index: list[int] = []
        copy_index: dict[str, int] = {}
        k = 0
        for s in range(max(1, len(self.lifetimes.steps))):  # a graph without ops still has step 0
            for ov in starts.get(s, []):
                copy_index[ov.name] = k
                k += 1
            op_index.append(k)
            k += 1
        chosen = set(names)
        items: list[Buffer] = []
        for iv in self.lifetimes.buffers:
            if iv.name not in chosen:
                continue
            first = 0 if iv.first == 0 and iv.kind in ("input", "variable") else op_index[iv.first]
            align = max(16, self.lifetimes.alignments.get(iv.name, 1), memory.alignment)
            parts = tuple(
                (first if f == iv.first else op_index[f], op_index[last] + 1, lo, hi)
                for f, last, lo, hi in iv.parts
            )
            items.append(
                Buffer(iv.name, iv.size, first, op_index[iv.last] + 1, align, kind=iv.kind, parts=parts)
            )
        for ov in overlays:
            if ov.space == memory.name:
                align = max(16, memory.alignment)
                items.append(
                    Buffer(
                        ov.name,
                        ov.size,
                        copy_index[ov.name],
                        op_index[ov.consumer] + 1,
                        align,
                        kind="overlay",
                    )
                )
        return Problem(items, name=memory.name)

    def _arena(self, memory: Memory, names: Sequence[str], overlays: Sequence[Overlay] = ()) -> int:
        problem = self.problem(memory, names, overlays)
        if not problem.buffers:
            return 0
        return greedy_portfolio(problem)[1]

    def _step_name(self, t: int) -> tuple[int, str]:
        step = max(0, (t - 1) // 2)
        steps = self.lifetimes.steps
        return step, steps[step] if step < len(steps) else "the graph inputs"

    # -- phases 1 and 2: buffers and constants ------------------------------------
    def place_items(
        self, subset: Sequence[Memory], mode: str
    ) -> tuple[dict[str, str], dict[str, int], dict[str, int]]:
        """Buffers and constants -> memories of `subset`; returns spaces, greedy arenas, constant bytes.

        `mode` ``activations-first`` places every buffer before any constant;
        ``density`` takes buffers and constants together by benefit per byte (a
        constant in volatile memory occupies it for the whole run).
        """
        rw = self.target.by_speed(tuple(m for m in subset if m.volatile and m.writable))
        nvm = self.target.by_speed(tuple(m for m in subset if not m.volatile))
        if not rw:
            raise NoFit(UserError("no volatile memory for the activations"))
        names = {m.name for m in subset}
        for space in self.pins.values():
            if space not in names:
                raise NoFit(UserError(f"pinned memory '{space}' is not in use"))
        free = [k for k in (*self.buffers, *self.constants) if k not in self.pins]
        by_density = sorted(free, key=lambda k: (-self.density[k], -self.traffic.items[k].size, k))
        if mode == "activations-first":
            by_density = [k for k in by_density if k in self.buffer_set] + [
                k for k in by_density if k not in self.buffer_set
            ]
        budgets = {m.name: m.capacity for m in rw}
        whole = (0, self.horizon)
        for _ in range(12):
            state = {m.name: _Budget(m, budgets[m.name], [0] * self.horizon) for m in rw}
            nvm_used = {m.name: 0 for m in nvm}
            static = {m.name: 0 for m in subset}
            spaces: dict[str, str] = {}
            provisional = dict.fromkeys(self.buffers, rw[0].name)
            provisional |= dict.fromkeys(self.constants, (nvm or rw)[0].name)
            provisional |= self.pins
            for key in (k for k in (*self.buffers, *self.constants) if k in self.pins):
                m = self.target.memory(self.pins[key])
                size = self.padded(key, m)
                spaces[key] = m.name
                if key in self.buffer_set:
                    span = self.spans.get(key)
                    if span is not None:
                        state[m.name].add(span.lo, span.hi, size)
                elif m.name in state:
                    state[m.name].add(*whole, size)
                    state[m.name].static += size
                    static[m.name] += size
                    if static[m.name] > m.capacity:
                        raise NoFit(self._nvm_error(m, self._pinned_constants(m)))
                else:
                    nvm_used[m.name] += size
                    if nvm_used[m.name] > m.capacity:
                        raise NoFit(self._nvm_error(m, self._pinned_constants(m)))
            for key in by_density:
                if key in self.buffer_set:
                    span = self.spans.get(key)
                    if span is None:  # nothing lives in it: it takes no memory
                        spaces[key] = rw[0].name
                        continue
                    for m in rw:
                        if state[m.name].fits(span.lo, span.hi, self.padded(key, m)):
                            state[m.name].add(span.lo, span.hi, self.padded(key, m))
                            spaces[key] = m.name
                            break
                    else:
                        raise NoFit(self._activation_error(key, rw, state))
                else:
                    home = next(
                        (m for m in nvm if nvm_used[m.name] + self.padded(key, m) <= m.capacity), None
                    )
                    fast = next((m for m in rw if state[m.name].fits(*whole, self.padded(key, m))), None)
                    if fast is not None and home is not None:
                        faster = self.target.read_cost(fast) < self.target.read_cost(home)
                        if not faster or self.gain(key, fast.name, {**provisional, key: home.name}) <= 0:
                            fast = None
                    if fast is not None:
                        state[fast.name].add(*whole, self.padded(key, fast))
                        state[fast.name].static += self.padded(key, fast)
                        static[fast.name] += self.padded(key, fast)
                        spaces[key] = fast.name
                    elif home is not None:
                        nvm_used[home.name] += self.padded(key, home)
                        spaces[key] = home.name
                    else:
                        raise NoFit(self._constant_error(subset, state, nvm_used))
                provisional[key] = spaces[key]
            arenas: dict[str, int] = {}
            overflow = False
            for m in rw:
                mine = [k for k, s in spaces.items() if s == m.name and k in self.buffer_set]
                arenas[m.name] = self._arena(m, mine)
                room = m.capacity - static[m.name]
                if arenas[m.name] > room:
                    if all(k in self.pins for k in mine) or budgets[m.name] <= 0:
                        raise NoFit(self._pinned_error(m, mine, arenas[m.name], room))
                    budgets[m.name] -= arenas[m.name] - room
                    overflow = True
            if not overflow:
                return spaces, arenas, static
        raise NoFit(
            UserError(f"the model does not fit '{self.target.name}': the activations cannot be packed")
        )

    def _activation_error(self, key: str, rw: Sequence[Memory], state: Mapping[str, _Budget]) -> UserError:
        # Total bytes live at each step against the total capacity of the volatile memories.
        live = [0] * self.horizon
        for name in self.buffers:
            span = self.spans.get(name)
            if span is not None:
                size = align_up(self.traffic.items[name].size, rw[0].alignment)
                for t in range(span.lo, span.hi):
                    live[t] += size
        static = {m.name: state[m.name].static for m in rw}
        total = sum(m.capacity for m in rw)
        peak_t = max(range(self.horizon), key=lambda t: (live[t], -t))
        memories = " + ".join(f"{m.name} {m.capacity:,}" for m in rw)
        if live[peak_t] > total:
            step, op = self._step_name(peak_t)
            return UserError(
                f"the model does not fit '{self.target.name}': the activations need {live[peak_t]:,} bytes at "
                f"step {step} ({op}) where {self._live_listing(peak_t)} are live, but the volatile memories "
                f"hold {total:,} ({memories}) (short by {live[peak_t] - total:,})"
            )
        span = self.spans[key]
        size = self.traffic.items[key].size
        worst = max(range(span.lo, span.hi), key=lambda t: sum(b.usage[t] for b in state.values()))
        step, op = self._step_name(worst)
        free = {m.name: max(0, state[m.name].budget - state[m.name].usage[worst]) for m in rw}
        best = max(free.values(), default=0)
        frees = ", ".join(f"{name} has {f:,} free" for name, f in free.items())
        held = (
            "; constants take " + ", ".join(f"{n} {b:,}" for n, b in static.items() if b > 0)
            if any(b > 0 for b in static.values())
            else ""
        )
        return UserError(
            f"the model does not fit '{self.target.name}': buffer '{key}' ({size:,} bytes, live at steps "
            f"{(span.lo - 1) // 2 if span.lo else 0}-{(span.hi - 2) // 2}) fits in no memory: at step {step} "
            f"({op}) {frees} (short by {max(1, size - best):,}){held}; live there: {self._live_listing(worst)}"
        )

    def _live_listing(self, t: int) -> str:
        live = sorted(
            (k for k in self.buffers if (s := self.spans.get(k)) is not None and s.lo <= t < s.hi),
            key=lambda k: (-self.traffic.items[k].size, k),
        )
        parts = [f"{k} ({self.traffic.items[k].size:,} B)" for k in live[:8]]
        more = f" and {len(live) - 8} more" if len(live) > 8 else ""
        return ", ".join(parts) + more

    def _pinned_error(self, memory: Memory, names: Sequence[str], arena: int, room: int) -> UserError:
        problem = self.problem(memory, names)
        step = problem.peak_step()
        need = max(arena, problem.lower_bound())
        live = sorted(problem.live_at(step), key=lambda b: (-b.size, b.name))
        listing = ", ".join(f"{b.name} ({b.size:,} B)" for b in live[:8]) + (
            f" and {len(live) - 8} more" if len(live) > 8 else ""
        )
        op = self.lifetimes.steps[step] if step < len(self.lifetimes.steps) else "the graph inputs"
        return UserError(
            f"the model does not fit '{self.target.name}': the buffers pinned to '{memory.name}' need "
            f"{need:,} bytes at step {step} ({op}) where {listing} are live, but it has {room:,} "
            f"(short by {need - room:,})"
        )

    def _pinned_constants(self, memory: Memory) -> int:
        return sum(self.padded(k, memory) for k in self.constants if self.pins.get(k) == memory.name)

    def _nvm_error(self, memory: Memory, need: int) -> UserError:
        return UserError(
            f"the model does not fit '{self.target.name}': the constants pinned to '{memory.name}' need "
            f"{need:,} bytes but it holds {memory.capacity:,} (short by {need - memory.capacity:,})"
        )

    def _constant_error(
        self, subset: Sequence[Memory], state: Mapping[str, _Budget], nvm_used: Mapping[str, int]
    ) -> UserError:
        need = sum(self.traffic.items[k].size for k in self.constants)
        nvm = [m for m in subset if not m.volatile]
        held = sum(m.capacity for m in nvm)
        left = sum(max(0, b.budget - max(b.usage)) for b in state.values())
        biggest = sorted(self.constants, key=lambda k: (-self.traffic.items[k].size, k))[:4]
        listing = ", ".join(f"{k} ({self.traffic.items[k].size:,} B)" for k in biggest)
        where = f"the non-volatile memories hold {held:,} and " if nvm else ""
        return UserError(
            f"the model does not fit '{self.target.name}': the constants need {need:,} bytes but {where}the "
            f"volatile memories have {left:,} left beside the activations (short by {max(1, need - held - left):,}); "
            f"largest: {listing}"
        )

    # -- cost deltas -----------------------------------------------------------
    def _static_power(self, subset_names: Sequence[str]) -> float:
        leak = sum(self.target.memory(n).leakage for n in subset_names)
        return self.target.processor.base_power + leak

    def gain(
        self, key: str, space: str, spaces: Mapping[str, str], ops: Sequence[int] | None = None
    ) -> float:
        """How much the objective drops when item `key` moves to `space` (its users' op costs)."""
        moved = dict(spaces)
        moved[key] = space
        dt = 0.0
        de = 0.0
        for i in self.users.get(key, []) if ops is None else ops:
            op = self.traffic.ops[i]
            old = self.model.op_cost(op, spaces)
            new = self.model.op_cost(op, moved)
            dt += old.seconds - new.seconds
            de += old.energy_j - new.energy_j
        if self.objective == "latency":
            return dt
        return de + self._static_power(sorted(set(spaces.values()))) * dt

    # -- phase 3: overlays ------------------------------------------------------
    def _overlay_options(
        self,
        subset: Sequence[Memory],
        i: int,
        access: Access,
        spaces: Mapping[str, str],
        starts: Sequence[int] | None = None,
    ) -> list[Overlay]:
        """Overlays of one weight access of op `i` that gain at least `min_gain` of the op's cost."""
        rw = self.target.by_speed(tuple(m for m in subset if m.volatile and m.writable))
        proc = self.target.processor
        op = self.traffic.ops[i]
        home = self.target.memory(spaces[access.item])
        base = self.model.op_cost(op, spaces)
        own = base.seconds if self.objective == "latency" else base.energy_j
        out: list[Overlay] = []
        for m in rw:
            if self.target.read_cost(m) >= self.target.read_cost(home):
                continue
            new = self.model.op_cost(op, {**spaces, access.item: m.name})
            copy_s = (
                access.bytes / min(home.read_bandwidth, m.write_bandwidth)
                + home.read_latency
                + m.write_latency
            )
            copy_j = access.bytes * (home.read_energy + m.write_energy)
            options: list[tuple[float, int]] = []
            if proc.dma and i > 0:
                prev = self.model.op_cost(self.traffic.ops[i - 1], spaces).seconds
                options.append((max(0.0, copy_s - prev), i - 1))
            options.append((copy_s, i))
            for penalty, start in options:
                if starts is not None and start not in starts:
                    continue
                dt = base.seconds - new.seconds - penalty
                de = base.energy_j - new.energy_j - copy_j
                if self.objective == "latency":
                    gain = dt
                else:
                    gain = de + self._static_power([s.name for s in subset]) * dt
                if gain > max(0.0, self.min_gain * own) and (
                    self.objective == "latency" or dt >= 0 or de > 0
                ):
                    out.append(Overlay("", access.item, i, start, m.name, access.bytes, gain))
        return out

    def plan_overlays(
        self,
        subset: Sequence[Memory],
        spaces: Mapping[str, str],
        arenas: dict[str, int],
        static: Mapping[str, int],
    ) -> list[Overlay]:
        """Overlay copies that pay off and fit, with the arenas updated.

        First the largest constant of each weighted op (its weights), by gain
        per byte; then, for the ops that got one, their other constants
        (biases) with the weights already moved, when that still gains."""
        rw = self.target.by_speed(tuple(m for m in subset if m.volatile and m.writable))
        state: dict[str, _Budget] = {}
        for m in rw:
            budget = _Budget(m, m.capacity - static.get(m.name, 0), [0] * self.horizon)
            for key, space in spaces.items():
                span = self.spans.get(key)
                if space == m.name and span is not None:
                    budget.add(span.lo, span.hi, self.padded(key, m))
            state[m.name] = budget
        chosen: dict[tuple[int, str], Overlay] = {}

        def take(candidates: list[Overlay]) -> None:
            candidates.sort(key=lambda o: (-o.gain / max(1, o.size), o.consumer, o.const, o.start, o.space))
            for ov in candidates:
                if (ov.consumer, ov.const) in chosen:
                    continue
                m = self.target.memory(ov.space)
                size = align_up(ov.size, max(16, m.alignment))
                lo, hi = 2 * ov.start, 2 * ov.consumer + 2
                if state[m.name].fits(lo, hi, size):
                    state[m.name].add(lo, hi, size)
                    chosen[(ov.consumer, ov.const)] = ov

        weighted: dict[int, list[Access]] = {}
        for i, op in enumerate(self.traffic.ops):
            accesses = [a for a in op.accesses if a.weight and not a.write]
            if op.op_class in WEIGHTED_CLASSES and accesses:
                weighted[i] = sorted(accesses, key=lambda a: (-a.bytes, a.item))
        first: list[Overlay] = []
        for i, accesses in weighted.items():
            first.extend(self._overlay_options(subset, i, accesses[0], spaces))
        take(first)
        second: list[Overlay] = []
        for (i, _), ov in list(chosen.items()):
            moved = {**spaces, ov.const: ov.space}
            for access in weighted[i][1:]:
                second.extend(self._overlay_options(subset, i, access, moved, starts=[ov.start]))
        take(second)
        # Pack every memory as nn-plan-arena will (the copies renumber the steps of all of them);
        # while one overflows, drop its weakest overlay (or the weakest of all) and check again.
        picked = sorted(chosen.values(), key=lambda o: (o.consumer, -o.size, o.const))
        picked = [replace(o, name=f"ov{k}") for k, o in enumerate(picked)]
        while picked:
            for m in rw:
                names = [k for k, s in spaces.items() if s == m.name and k in self.buffer_set]
                arena = self._arena(m, names, picked)
                if arena + static.get(m.name, 0) > m.capacity:
                    mine = [o for o in picked if o.space == m.name] or picked
                    picked.remove(min(mine, key=lambda o: (o.gain, o.consumer)))
                    break
                arenas[m.name] = arena
            else:
                break
        return picked

    # -- one subset -----------------------------------------------------------
    def place_subset(self, names: Sequence[str]) -> Placement:
        """Place everything using only the memories `names` (a `NoFit` when they cannot hold it).

        Both orders of phases 1-2 are tried (activations first, or everything by
        density) and the cheaper result is kept."""
        subset = tuple(self.target.memory(n) for n in names)
        best: Placement | None = None
        error: NoFit | None = None
        for mode in ("activations-first", "density"):
            try:
                spaces, arenas, static = self.place_items(subset, mode)
            except NoFit as exc:
                error = error or exc
                continue
            overlays: list[Overlay] = []
            if self.overlays and not any(op.op_class == "copy" for op in self.traffic.ops):
                overlays = self.plan_overlays(subset, spaces, arenas, static)
            traffic, all_spaces = with_overlays(self.traffic, spaces, overlays)
            report = CostModel(self.target, traffic).evaluate(all_spaces)
            volatile = frozenset(m.name for m in self.target.memories if m.volatile)
            candidate = Placement(
                tuple(names), all_spaces, overlays, arenas, static, report, traffic, volatile
            )
            if best is None or candidate.key(self.objective) < best.key(self.objective):
                best = candidate
        if best is None:
            assert error is not None
            raise error
        return best

    # -- every subset ----------------------------------------------------------
    def subsets(self) -> list[tuple[str, ...]]:
        """The memory sets to try: all subsets holding the pinned memories and a volatile one."""
        names = self.target.names
        required = set(self.pins.values())
        if len(names) > MAX_SUBSET_MEMORIES:
            return [names]
        out: list[tuple[str, ...]] = []
        for r in range(len(names), 0, -1):
            for combo in itertools.combinations(names, r):
                if not required <= set(combo):
                    continue
                if not any(self.target.memory(n).volatile and self.target.memory(n).writable for n in combo):
                    continue
                out.append(combo)
        return out

    def place(self) -> Placement:
        """The cheapest placement over every subset of memories; the full set's error when none fits."""
        best: Placement | None = None
        first_error: NoFit | None = None
        for combo in self.subsets():
            try:
                candidate = self.place_subset(combo)
            except NoFit as exc:
                if first_error is None:
                    first_error = exc
                continue
            if best is None or candidate.key(self.objective) < best.key(self.objective):
                best = candidate
        if best is None:
            assert first_error is not None
            raise first_error.error
        return best


# --------------------------------------------------------------------------
# Traffic with overlays
# --------------------------------------------------------------------------


def with_overlays(
    traffic: Traffic, spaces: Mapping[str, str], overlays: Sequence[Overlay]
) -> tuple[Traffic, dict[str, str]]:
    """The traffic once the overlay copies exist, and the placement including their buffers."""
    all_spaces = dict(spaces)
    if not overlays:
        return traffic, all_spaces
    by_start: dict[int, list[Overlay]] = {}
    by_consumer: dict[int, list[Overlay]] = {}
    for ov in overlays:
        by_start.setdefault(ov.start, []).append(ov)
        by_consumer.setdefault(ov.consumer, []).append(ov)
    items = dict(traffic.items)
    ops: list[OpTraffic] = []
    for i, op in enumerate(traffic.ops):
        for ov in by_start.get(i, []):
            items[ov.name] = Item(ov.name, ov.size, "overlay", [ov.name])
            all_spaces[ov.name] = ov.space
            ops.append(
                OpTraffic(
                    -1,
                    f"{ov.const} -> {ov.space}",
                    "nn.copy",
                    "copy",
                    0,
                    0,
                    0,
                    [Access(ov.const, ov.size), Access(ov.name, ov.size, 1, write=True)],
                    copy_source=ov.const,
                )
            )
        for used in by_consumer.get(i, []):
            accesses = [
                replace(a, item=used.name) if a.item == used.const and not a.write else a for a in op.accesses
            ]
            op = replace(op, accesses=accesses, waits_for=(*op.waits_for, used.name))
        ops.append(replace(op))
    for step, op in enumerate(ops):
        op.step = step
    return Traffic(traffic.graph, ops, items, traffic.const_keys), all_spaces
