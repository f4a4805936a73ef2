"""The planning problem every allocator solves, its lower bound, and an independent plan verifier.

A buffer has a size, an alignment and a half-open lifetime ``[lower, upper)``
in schedule steps (MiniMalloc's convention; a tensor produced by op ``i`` and
last read by op ``j`` lives on ``[i, j + 1)``). Two buffers conflict when their
lifetimes intersect; a plan gives each buffer an offset so that conflicting
buffers never share a byte. The arena is the highest byte used.

A *shaped* buffer (in-place sharing at different offsets, see
nn-merge-buffers' ``inplace-overlap``) lists `parts`: rectangles
``(lower, upper, start, end)`` relative to its offset, one per value it holds.
Its bytes are reserved only where and when a part is live, so another buffer
may use the gap a dead part leaves; the lower bound counts the union of the
live parts. Allocators that ignore parts treat the buffer as its whole
rectangle, which is always a valid (if looser) placement.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from nnopt.compiler.diagnostics import UserError

KINDS = ("activation", "input", "output", "scratch", "variable", "overlay")
"""What a buffer holds (reports group by it)."""


def align_up(value: int, alignment: int) -> int:
    """`value` rounded up to a multiple of `alignment`."""
    return -(-value // alignment) * alignment if alignment > 1 else value


@dataclass(frozen=True)
class Buffer:
    """One buffer to place: `size` bytes live on ``[lower, upper)``, offsets aligned to `alignment`.

    `offset` pins the buffer (e.g. an offline plan); `values` names the IR
    values that share it (in-place merging puts several in one buffer).
    """

    name: str
    size: int
    lower: int
    upper: int
    alignment: int = 16
    offset: int | None = None
    kind: str = "activation"
    values: tuple[str, ...] = ()
    parts: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def shaped(self) -> bool:
        """True when the buffer lists parts (reserved only while each is live)."""
        return bool(self.parts)

    def rects(self) -> list[tuple[int, int, int, int]]:
        """``(lower, upper, start, end)`` rectangles relative to the offset, padded to the alignment."""
        if not self.parts:
            return [(self.lower, self.upper, 0, self.padded_size)]
        a = self.alignment
        return [(lo, hi, s // a * a, min(align_up(e, a), self.padded_size)) for lo, hi, s, e in self.parts]

    @property
    def first(self) -> int:
        """First step the buffer is live (inclusive)."""
        return self.lower

    @property
    def last(self) -> int:
        """Last step the buffer is live (inclusive)."""
        return self.upper - 1

    @property
    def padded_size(self) -> int:
        """The size rounded up to the alignment: what the buffer occupies in the arena."""
        return align_up(self.size, self.alignment)

    def overlaps(self, other: Buffer) -> bool:
        """True when the two lifetimes intersect."""
        return self.lower < other.upper and other.lower < self.upper


@dataclass
class Problem:
    """A set of buffers to pack, optionally under a capacity (bytes)."""

    buffers: list[Buffer]
    capacity: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        for b in self.buffers:
            if b.size <= 0 or b.upper <= b.lower or b.alignment <= 0:
                raise UserError(
                    f"buffer '{b.name}': needs size > 0, lower < upper and alignment > 0 "
                    f"(size {b.size}, lifetime [{b.lower}, {b.upper}), alignment {b.alignment})"
                )
            if b.offset is not None and (b.offset < 0 or b.offset % b.alignment):
                raise UserError(
                    f"buffer '{b.name}': pinned offset {b.offset} is not a non-negative multiple of {b.alignment}"
                )

    def __len__(self) -> int:
        return len(self.buffers)

    def live_profile(self) -> list[tuple[int, int]]:
        """(step, bytes live from that step on) at every change, using padded sizes."""
        events: dict[int, int] = {}
        for b in self.buffers:
            if b.shaped:
                used = parts_profile([(lo, hi - 1, s, e) for lo, hi, s, e in b.rects()], b.upper)
                change = np.diff(used, prepend=0, append=0)
                for t in np.flatnonzero(change):
                    events[int(t)] = events.get(int(t), 0) + int(change[t])
                continue
            events[b.lower] = events.get(b.lower, 0) + b.padded_size
            events[b.upper] = events.get(b.upper, 0) - b.padded_size
        profile: list[tuple[int, int]] = []
        live = 0
        for step in sorted(events):
            live += events[step]
            profile.append((step, live))
        return profile

    def lower_bound(self) -> int:
        """The liveness lower bound: most padded bytes live at one step."""
        return max((live for _, live in self.live_profile()), default=0)

    def peak_step(self) -> int:
        """A step where the liveness lower bound is reached."""
        best, step = -1, 0
        for s, live in self.live_profile():
            if live > best:
                best, step = live, s
        return step

    def live_at(self, step: int) -> list[Buffer]:
        """Buffers live at `step`."""
        return [b for b in self.buffers if b.lower <= step < b.upper]


@dataclass
class Plan:
    """Offsets for a problem's buffers, with how they were found."""

    problem: Problem
    offsets: list[int]
    algorithm: str
    lower_bound: int
    proven_optimal: bool = False
    seconds: float = 0.0
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def arena_bytes(self) -> int:
        """Highest byte used (padded sizes)."""
        return max(
            (o + b.padded_size for o, b in zip(self.offsets, self.problem.buffers, strict=True)), default=0
        )

    @property
    def overhead(self) -> float:
        """Arena over the lower bound, as a fraction."""
        return self.arena_bytes / self.lower_bound - 1 if self.lower_bound else 0.0


def union_bytes(spans: Iterable[tuple[int, int]]) -> int:
    """Bytes covered by a set of half-open byte ranges."""
    total, end = 0, None
    for lo, hi in sorted(spans):
        if end is None or lo >= end:
            total, end = total + hi - lo, hi
        elif hi > end:
            total, end = total + hi - end, hi
    return total


def parts_profile(parts: Sequence[tuple[int, int, int, int]], steps: int) -> np.ndarray:
    """Bytes in use at every step ``0..steps-1`` by parts ``(first, last, start, end)`` (steps inclusive)."""
    out = np.zeros(steps, dtype=np.int64)
    if not parts:
        return out
    lo = min(p[0] for p in parts)
    hi = max(p[1] for p in parts)
    for t in range(lo, min(hi, steps - 1) + 1):
        out[t] = union_bytes((s, e) for f, last, s, e in parts if f <= t <= last)
    return out


class PlanError(Exception):
    """A plan that breaks a rule (raised by `verify_plan`)."""


def verify_plan(problem: Problem, offsets: Sequence[int], capacity: int | None = None) -> None:
    """Independent check of a plan; raises `PlanError` naming the first violation.

    Rules: one non-negative aligned offset per buffer, pinned offsets kept,
    everything below the capacity, and no two buffers that are live at the same
    time share a byte. A time sweep keeps the live buffers sorted by offset, so
    each new buffer is checked against its two address neighbours only
    (O(n log n) comparisons) — it shares no code with the allocators.
    """
    buffers = problem.buffers
    if len(offsets) != len(buffers):
        raise PlanError(f"{len(offsets)} offsets for {len(buffers)} buffers")
    cap = capacity if capacity is not None else problem.capacity
    for b, off in zip(buffers, offsets, strict=True):
        if off < 0:
            raise PlanError(f"buffer '{b.name}' has a negative offset {off}")
        if off % b.alignment:
            raise PlanError(f"buffer '{b.name}' at offset {off} is not aligned to {b.alignment}")
        if b.offset is not None and off != b.offset:
            raise PlanError(f"buffer '{b.name}' is pinned at {b.offset} but placed at {off}")
        if cap is not None and off + b.padded_size > cap:
            raise PlanError(f"buffer '{b.name}' ends at {off + b.padded_size}, beyond the capacity {cap}")
    if any(b.shaped for b in buffers):
        _verify_rects(buffers, offsets)
        return
    events = sorted(
        [(b.upper, 0, i) for i, b in enumerate(buffers)] + [(b.lower, 1, i) for i, b in enumerate(buffers)]
    )
    keys: list[tuple[int, int]] = []  # (offset, index) of live buffers, sorted
    for _, is_start, i in events:
        key = (offsets[i], i)
        if not is_start:
            del keys[bisect_left(keys, key)]
            continue
        pos = bisect_left(keys, key)
        for j in (pos - 1, pos):
            if 0 <= j < len(keys):
                other = keys[j][1]
                lo = max(offsets[i], offsets[other])
                hi = min(offsets[i] + buffers[i].padded_size, offsets[other] + buffers[other].padded_size)
                if lo < hi:
                    a, b = buffers[i], buffers[other]
                    raise PlanError(
                        f"buffers '{a.name}' (steps {a.first}-{a.last}, bytes {offsets[i]}-{offsets[i] + a.padded_size}) "
                        f"and '{b.name}' (steps {b.first}-{b.last}, bytes {offsets[other]}-{offsets[other] + b.padded_size}) overlap"
                    )
        keys.insert(pos, key)


def _verify_rects(buffers: Sequence[Buffer], offsets: Sequence[int]) -> None:
    """Pairwise check of the live rectangles of different buffers (shaped problems)."""
    rects = sorted(
        (lo, hi, off + s, off + e, i)
        for i, (b, off) in enumerate(zip(buffers, offsets, strict=True))
        for lo, hi, s, e in b.rects()
    )
    active: list[tuple[int, int, int, int, int]] = []
    for r in rects:
        active = [a for a in active if a[1] > r[0]]
        for a in active:
            if a[4] != r[4] and a[2] < r[3] and r[2] < a[3]:
                x, y = buffers[a[4]], buffers[r[4]]
                raise PlanError(
                    f"buffers '{x.name}' (steps {a[0]}-{a[1] - 1}, bytes {a[2]}-{a[3]}) and "
                    f"'{y.name}' (steps {r[0]}-{r[1] - 1}, bytes {r[2]}-{r[3]}) overlap"
                )
        active.append(r)


# --------------------------------------------------------------------------
# MiniMalloc's CSV format: id,lower,upper,size[,offset] with half-open lifetimes
# --------------------------------------------------------------------------


def read_csv(text: str, name: str = "<csv>", alignment: int = 1) -> Problem:
    """Parse a MiniMalloc-style CSV (``id,lower,upper,size[,offset]``)."""
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows:
        raise UserError("empty buffer file", name)
    header = [h.strip().lower() for h in rows[0]]
    required = ("id", "lower", "upper", "size")
    if any(h not in header for h in required):
        raise UserError(
            f"header must name the columns id,lower,upper,size[,offset]; got {','.join(header)}",
            f"{name}:1:1",
        )
    col = {h: header.index(h) for h in header}
    buffers: list[Buffer] = []
    seen: set[str] = set()
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < len(required):
            raise UserError(f"expected {len(header)} columns, got {len(row)}", f"{name}:{line_no}:1")
        try:
            ident = row[col["id"]].strip()
            lower, upper, size = (int(row[col[k]]) for k in ("lower", "upper", "size"))
            offset = int(row[col["offset"]]) if "offset" in col and row[col["offset"]].strip() else None
        except ValueError:
            raise UserError(f"non-integer field in row {row}", f"{name}:{line_no}:1") from None
        if ident in seen:
            raise UserError(f"duplicate buffer id '{ident}'", f"{name}:{line_no}:1")
        seen.add(ident)
        if size <= 0 or upper <= lower:
            raise UserError(f"buffer '{ident}' needs size > 0 and lower < upper", f"{name}:{line_no}:1")
        buffers.append(Buffer(ident, size, lower, upper, alignment, offset))
    return Problem(buffers, name=name)


def write_csv(problem: Problem, offsets: Sequence[int] | None = None) -> str:
    """MiniMalloc-style CSV of a problem (with an offset column when `offsets` is given)."""
    out = io.StringIO()
    out.write("id,lower,upper,size" + (",offset" if offsets is not None else "") + "\n")
    for i, b in enumerate(problem.buffers):
        row = [b.name, str(b.lower), str(b.upper), str(b.size)]
        if offsets is not None:
            row.append(str(offsets[i]))
        out.write(",".join(row) + "\n")
    return out.getvalue()


def with_offsets(buffers: Iterable[Buffer], offsets: Sequence[int]) -> list[Buffer]:
    """Buffers pinned at the given offsets."""
    return [replace(b, offset=o) for b, o in zip(buffers, offsets, strict=True)]
