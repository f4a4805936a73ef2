"""Memory plans as a Vela-style summary, a per-buffer table, a TFLM-style ASCII timeline, and JSON.

A `SpaceReport` wraps one verified `Plan` (one memory space) with what a
reader needs to make sense of it: step labels (op names), the capacity it was
checked against, and extra facts. Every renderer reads only the report.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nnopt.passes.planning.problem import Buffer, Plan, union_bytes

ORDINALS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Timeline letters, as TFLite Micro's PrintMemoryPlan numbers buffers (cycling after 62)."""


def letter(i: int) -> str:
    """The timeline character of the `i`-th buffer."""
    return ORDINALS[i % len(ORDINALS)]


@dataclass(frozen=True)
class Row:
    """One buffer of a plan, ready to print."""

    letter: str
    name: str
    values: tuple[str, ...]
    size: int
    padded: int
    offset: int
    first: int
    last: int
    kind: str
    parts: tuple[tuple[int, int, int, int], ...] = ()
    """A shaped buffer's live parts ``(first, last, start, end)``, bytes relative to `offset`."""

    def spans_at(self, step: int) -> list[tuple[int, int]]:
        """Arena byte ranges the buffer holds at `step`."""
        if not self.parts:
            return [(self.offset, self.end)] if self.first <= step <= self.last else []
        return [(self.offset + s, self.offset + e) for f, last, s, e in self.parts if f <= step <= last]

    @property
    def end(self) -> int:
        """First byte after the buffer."""
        return self.offset + self.padded


@dataclass
class SpaceReport:
    """The plan of one memory space and what to say about it."""

    space: str
    plan: Plan
    step_labels: Sequence[str] | None = None
    """Label of each step (index = step number), e.g. the op executed."""
    capacity: int | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    """Extra ``(label, value)`` lines of the summary."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Extra JSON fields of this space."""

    @property
    def buffers(self) -> list[Buffer]:
        """The planned buffers."""
        return self.plan.problem.buffers

    @property
    def lower_bound(self) -> int:
        """Liveness lower bound (padded sizes)."""
        return self.plan.lower_bound

    @property
    def arena(self) -> int:
        """Bytes the plan uses."""
        return self.plan.arena_bytes

    @property
    def proven_lower_bound(self) -> int:
        """The best bound proven on the arena (the liveness bound, or more after exact search)."""
        value = self.plan.stats.get("proven_lower_bound")
        proven = value if isinstance(value, int) else self.lower_bound
        return self.arena if self.plan.proven_optimal else max(proven, self.lower_bound)

    @property
    def peak_step(self) -> int:
        """A step where the most bytes are live."""
        return self.plan.problem.peak_step()

    def rows(self) -> list[Row]:
        """Buffers ordered by first step, then offset; letters follow that order."""
        order = sorted(
            range(len(self.buffers)),
            key=lambda i: (self.buffers[i].lower, self.plan.offsets[i], self.buffers[i].name),
        )
        rows = []
        for k, i in enumerate(order):
            b = self.buffers[i]
            rows.append(
                Row(
                    letter(k),
                    b.name,
                    b.values,
                    b.size,
                    b.padded_size,
                    self.plan.offsets[i],
                    b.first,
                    b.last,
                    b.kind,
                    tuple((lo, hi - 1, s, e) for lo, hi, s, e in b.rects()) if b.shaped else (),
                )
            )
        return rows

    def step_label(self, step: int) -> str:
        """What happens at `step` ('' when unknown)."""
        if self.step_labels is not None and 0 <= step < len(self.step_labels):
            return self.step_labels[step]
        return ""


def _b(n: int) -> str:
    return f"{n:,} B"


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


def summary(rep: SpaceReport) -> str:
    """Vela's ``--verbose-allocation`` footer, extended: bounds, arena, overhead, optimality, allocator."""
    lines: list[tuple[str, str]] = []
    peak = rep.peak_step
    label = rep.step_label(peak)
    lines.append(("buffers", f"{len(rep.buffers)}"))
    lines.append(
        (
            "liveness lower bound",
            f"{_b(rep.lower_bound)}  (peak at step {peak}{': ' + _shorten(label, 60) if label else ''})",
        )
    )
    lines.append(("arena", f"{_b(rep.arena)}  ({_kib(rep.arena)})"))
    lines.append(
        ("overhead", f"{100 * rep.plan.overhead:.2f} %  ({_b(rep.arena - rep.lower_bound)} over the bound)")
    )
    if rep.plan.proven_optimal:
        why = "arena = liveness lower bound" if rep.arena <= rep.lower_bound else "exact search"
        lines.append(("optimal", f"yes, proven ({why})"))
    else:
        bound = rep.proven_lower_bound
        gap = 100 * (rep.arena / bound - 1) if bound else 0.0
        lines.append(("optimal", f"not proven; proven lower bound {_b(bound)} (gap {gap:.2f} %)"))
    lines.append(("allocator", rep.plan.algorithm))
    lines.append(("planning time", f"{rep.plan.seconds:.3f} s"))
    if rep.capacity is not None:
        lines.append(("capacity", f"{_b(rep.capacity)}: fits, {_b(rep.capacity - rep.arena)} to spare"))
    lines.extend(rep.facts)
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in lines)


def buffer_table(rep: SpaceReport, name_width: int = 32, values_width: int = 48) -> str:
    """One line per buffer: letter, name, size, offset range, first/last step, kind, values held."""
    rows = rep.rows()
    nw = min(max([len(r.name) for r in rows] + [4]), name_width)
    bw = max([len(f"{r.end:,}") for r in rows] + [6])
    sw = max([len(str(r.last)) for r in rows] + [5])
    kw = max([len(r.kind) for r in rows] + [4])
    head = (
        f"  id  {'name':<{nw}}  {'size':>{bw}}  {'offset':>{bw}}  {'end':>{bw}}  "
        f"{'first':>{sw}}  {'last':>{sw}}  {'kind':<{kw}}  values"
    )
    lines = [head, "  " + "-" * (len(head) - 2)]
    for r in rows:
        held = "" if list(r.values) in ([], [r.name]) else _shorten(", ".join(r.values), values_width)
        lines.append(
            f"  {r.letter:>2}  {_shorten(r.name, nw):<{nw}}  {r.size:>{bw},}  {r.offset:>{bw},}  {r.end:>{bw},}  "
            f"{r.first:>{sw}}  {r.last:>{sw}}  {r.kind:<{kw}}  {held}".rstrip()
        )
    return "\n".join(lines)


def _segments(rep: SpaceReport) -> list[tuple[int, int]]:
    """Maximal step ranges ``[a, b)`` over which the set of live buffers does not change."""
    points = sorted(
        {b.lower for b in rep.buffers}
        | {b.upper for b in rep.buffers}
        | {t for b in rep.buffers for lo, hi, _, _ in (b.rects() if b.shaped else []) for t in (lo, hi)}
    )
    return list(itertools.pairwise(points))


def timeline(rep: SpaceReport, width: int = 80, max_rows: int = 100) -> str:
    """TFLite Micro's PrintMemoryPlan picture: a row per step, a column per ``arena / width`` bytes.

    Each live buffer is drawn with its letter from the buffer table over the
    columns its bytes cover (a column goes to the buffer holding its middle
    byte; a buffer narrower than a column still gets one free column when
    possible); ``.`` is free. Steps where the live set does not change are
    merged into one row (``a-b``). With more than `max_rows` rows (0: no
    limit), evenly spaced rows are shown, the peak always among them.
    """
    rows = rep.rows()
    arena = max(rep.arena, 1)
    by_row = sorted(zip(rows, range(len(rows)), strict=True), key=lambda t: t[0].offset)
    segments = _segments(rep)
    if not segments:
        return "  (no buffers)"
    peak = rep.peak_step
    shown = list(range(len(segments)))
    note = ""
    if max_rows and len(segments) > max_rows:
        peak_seg = next((k for k, (a, b) in enumerate(segments) if a <= peak < b), 0)
        stride = len(segments) / max_rows
        chosen = {int(k * stride) for k in range(max_rows)} | {peak_seg}
        shown = sorted(chosen)
        note = f"  ({len(shown)} of {len(segments)} rows shown; --timeline-rows 0 shows all)"
    step_width = max(len(f"{a}-{b - 1}") if b - a > 1 else len(str(a)) for a, b in segments)
    right = f"{arena:,} B"
    ruler = "0" + right.rjust(width - 1)
    out = [f"  {'step':>{step_width}}  {ruler}  {'live':>9}  (one column = {arena / width:,.0f} B)"]
    for k in shown:
        a, b = segments[k]
        line = ["."] * width
        live_bytes = 0
        unseen = []
        for r, _ in by_row:
            spans = r.spans_at(a)
            if not spans:
                continue
            live_bytes += union_bytes(spans)
            marked = False
            for start, end in spans:
                lo = start * width / arena
                hi = end * width / arena
                for c in range(int(lo), min(int(hi) + 1, width)):
                    if lo <= c + 0.5 < hi:
                        line[c] = r.letter
                        marked = True
            if not marked:
                unseen.append((r, int(spans[0][0] * width / arena)))
        for r, c in unseen:
            c = min(c, width - 1)
            if line[c] == ".":
                line[c] = r.letter
        steps = f"{a}-{b - 1}" if b - a > 1 else str(a)
        label = rep.step_label(a) if b - a == 1 else ""
        mark = "  <- peak" if a <= peak < b else ""
        out.append(
            f"  {steps:>{step_width}}  {''.join(line)}  {live_bytes / 1024:>8,.1f}K  {_shorten(label, 40)}{mark}".rstrip()
        )
    if note:
        out.append(note)
    return "\n".join(out)


def render_text(reports: Sequence[SpaceReport], title: str, width: int = 80, max_rows: int = 100) -> str:
    """The whole terminal report: per space, summary, buffer table and timeline."""
    parts = [title]
    for rep in reports:
        parts.append("")
        parts.append(f"memory space '{rep.space}'")
        parts.append(summary(rep))
        parts.append("")
        parts.append(buffer_table(rep))
        parts.append("")
        parts.append(f"arena over time (0 .. {rep.arena:,} B, left to right)")
        parts.append(timeline(rep, width, max_rows))
    return "\n".join(parts)


def space_json(rep: SpaceReport) -> dict[str, Any]:
    """Everything about one space, for machines."""
    data: dict[str, Any] = {
        "space": rep.space,
        "lower_bound": rep.lower_bound,
        "arena_bytes": rep.arena,
        "overhead": round(rep.plan.overhead, 6),
        "proven_optimal": rep.plan.proven_optimal,
        "proven_lower_bound": rep.proven_lower_bound,
        "allocator": rep.plan.algorithm,
        "seconds": round(rep.plan.seconds, 6),
        "peak_step": rep.peak_step,
        "capacity": rep.capacity,
        "buffers": [
            {
                "name": b.name,
                "values": list(b.values),
                "size": b.size,
                "padded_size": b.padded_size,
                "alignment": b.alignment,
                "offset": off,
                "first": b.first,
                "last": b.last,
                "kind": b.kind,
                **(
                    {
                        "parts": [
                            {"first": lo, "last": hi - 1, "start": s, "end": e} for lo, hi, s, e in b.rects()
                        ]
                    }
                    if b.shaped
                    else {}
                ),
            }
            for b, off in zip(rep.buffers, rep.plan.offsets, strict=True)
        ],
    }
    if rep.step_labels is not None:
        data["steps"] = list(rep.step_labels)
    greedy = rep.plan.stats.get("greedy")
    if isinstance(greedy, dict):
        data["greedy"] = greedy
    data.update(rep.extra)
    return data


def report_json(reports: Sequence[SpaceReport], meta: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` document: `meta`, the totals and buffers at the top, and every space by name.

    With one space the top-level fields are that space's; with several they
    are sums (arena, lower bound), ``proven_optimal`` holds when it holds for
    all, and the buffer list carries each buffer's ``space``.
    """
    spaces = {rep.space: space_json(rep) for rep in reports}
    data: dict[str, Any] = dict(meta)
    if len(reports) == 1:
        top = dict(next(iter(spaces.values())))
    else:
        top = {
            "lower_bound": sum(r.lower_bound for r in reports),
            "arena_bytes": sum(r.arena for r in reports),
            "proven_optimal": all(r.plan.proven_optimal for r in reports),
            "allocator": ", ".join(sorted({r.plan.algorithm for r in reports})),
            "seconds": round(sum(r.plan.seconds for r in reports), 6),
            "buffers": [{**b, "space": name} for name, s in spaces.items() for b in s["buffers"]],
        }
    top.pop("space", None)
    data.update(top)
    data["spaces"] = spaces
    return data
