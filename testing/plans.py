"""Hypothesis strategies for buffer sets, and checkers for plans users' allocators produce.

from hypothesis import given
from nnopt.testing import buffer_problems, assert_valid_plan

@given(buffer_problems())
def test_my_allocator(problem):
    offsets = my_allocator(problem)
    assert_valid_plan(problem, offsets)
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from nnopt.passes.planning.problem import Buffer, PlanError, Problem, verify_plan


@st.composite
def buffer_problems(
    draw: st.DrawFn,
    *,
    max_buffers: int = 24,
    max_steps: int = 20,
    max_size: int = 4096,
    alignments: Sequence[int] = (1, 4, 16),
    pinned: bool = False,
) -> Problem:
    """Random packing problems: sizes, half-open lifetimes, alignments (and optionally pinned buffers)."""
    n = draw(st.integers(1, max_buffers))
    alignment = draw(st.sampled_from(list(alignments)))
    buffers: list[Buffer] = []
    for i in range(n):
        lower = draw(st.integers(0, max_steps - 1))
        upper = draw(st.integers(lower + 1, max_steps))
        size = draw(st.integers(1, max_size))
        buffers.append(Buffer(f"t{i}", size, lower, upper, alignment))
    if pinned and buffers:
        # Pin the first buffer somewhere: alone at its own lifetime nothing can clash with it.
        offset = draw(st.integers(0, 8)) * alignment
        first = buffers[0]
        buffers[0] = Buffer(first.name, first.size, first.lower, first.upper, alignment, offset)
    return Problem(buffers)


def assert_valid_plan(problem: Problem, offsets: Sequence[int], capacity: int | None = None) -> None:
    """Fail (AssertionError) unless the plan is valid: aligned, pinned offsets kept, no live overlaps."""
    try:
        verify_plan(problem, offsets, capacity)
    except PlanError as exc:
        raise AssertionError(f"invalid plan: {exc}") from None


def assert_at_least_lower_bound(problem: Problem, offsets: Sequence[int]) -> None:
    """No valid plan can beat the liveness lower bound; fail if this one claims to."""
    arena = max((o + b.padded_size for o, b in zip(offsets, problem.buffers, strict=True)), default=0)
    assert arena >= problem.lower_bound(), f"arena {arena} below the lower bound {problem.lower_bound()}"
