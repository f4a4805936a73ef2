"""The planning core: lower bound, independent verifier, allocators, exact search."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnopt.compiler.diagnostics import UserError
from nnopt.passes.planning import allocators
from nnopt.passes.planning.allocators import Options, place_in_order, plan_buffers, solve_capacity
from nnopt.passes.planning.problem import Buffer, PlanError, Problem, read_csv, verify_plan, write_csv
from nnopt.testing import assert_at_least_lower_bound, assert_valid_plan, buffer_problems

from .conftest import shared_path

FAST = Options(time_limit=2.0)


def _overlap_pairs(problem: Problem, offsets: list[int]) -> int:
    """Brute-force count of conflicting pairs (reference for the sweep verifier)."""
    bs = problem.buffers
    count = 0
    for i, j in itertools.combinations(range(len(bs)), 2):
        if bs[i].overlaps(bs[j]):
            lo = max(offsets[i], offsets[j])
            hi = min(offsets[i] + bs[i].padded_size, offsets[j] + bs[j].padded_size)
            count += lo < hi
    return count


def _optimum_by_enumeration(problem: Problem) -> int:
    """Best first-fit arena over all orders: the optimum (every packing compacts to one of these)."""
    return min(place_in_order(problem, order)[1] for order in itertools.permutations(range(len(problem))))


# -- lower bound and verifier ----------------------------------------------------


def test_lower_bound_uses_aligned_sizes() -> None:
    p = Problem([Buffer("a", 10, 0, 2, 16), Buffer("b", 20, 1, 3, 16), Buffer("c", 100, 3, 4, 16)])
    assert p.lower_bound() == 112  # step 3: c alone, 112 = align(100); step 1: 16 + 32 = 48
    assert p.peak_step() == 3


@settings(max_examples=150, deadline=None)
@given(buffer_problems(max_buffers=12), st.data())
def test_verifier_agrees_with_brute_force(problem: Problem, data: st.DataObject) -> None:
    align = problem.buffers[0].alignment
    offsets = [data.draw(st.integers(0, 40)) * align for _ in problem.buffers]
    brute = _overlap_pairs(problem, offsets)
    if brute:
        with pytest.raises(PlanError, match="overlap"):
            verify_plan(problem, offsets)
    else:
        verify_plan(problem, offsets)


def test_verifier_checks_alignment_pins_and_capacity() -> None:
    p = Problem([Buffer("a", 16, 0, 1, 16, offset=32), Buffer("b", 16, 0, 1, 16)])
    with pytest.raises(PlanError, match="not aligned"):
        verify_plan(p, [32, 8])
    with pytest.raises(PlanError, match="pinned at 32"):
        verify_plan(p, [0, 32])
    with pytest.raises(PlanError, match="beyond the capacity 48"):
        verify_plan(p, [32, 48], capacity=48)
    verify_plan(p, [32, 0], capacity=48)


# -- allocators -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["portfolio", "tflm", "greedy-size", "linear", "exact"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=buffer_problems(pinned=True))
def test_every_allocator_gives_valid_plans(name: str, problem: Problem) -> None:
    plan = plan_buffers(problem, name, FAST)
    assert_valid_plan(problem, plan.offsets)
    assert_at_least_lower_bound(problem, plan.offsets)
    assert plan.arena_bytes >= plan.lower_bound == problem.lower_bound()


@settings(max_examples=60, deadline=None)
@given(buffer_problems(max_buffers=6, max_steps=6, alignments=(1, 8)))
def test_portfolio_is_optimal_on_small_problems(problem: Problem) -> None:
    plan = plan_buffers(problem, "portfolio", FAST)
    assert plan.arena_bytes == _optimum_by_enumeration(problem)
    assert plan.proven_optimal


@settings(max_examples=60, deadline=None)
@given(buffer_problems(max_buffers=6, max_steps=6, alignments=(1,)))
def test_exact_decision_matches_enumeration(problem: Problem) -> None:
    best = _optimum_by_enumeration(problem)
    status, offsets, _ = solve_capacity(problem, best, 5.0)
    assert status == "ok" and offsets is not None
    assert_valid_plan(problem, offsets, capacity=best)
    status, _, _ = solve_capacity(problem, best - 1, 5.0)
    assert status == "infeasible"


def test_leading_gap_is_used() -> None:
    """XNNPACK#10800: A(100,[0,1]) B(80,[1,2]) C(60,[2,3]) inclusive packs into 180, not 240."""
    p = Problem([Buffer("A", 100, 0, 2, 1), Buffer("B", 80, 1, 3, 1), Buffer("C", 60, 2, 4, 1)])
    for name in ("tflm", "greedy-size", "portfolio"):
        assert plan_buffers(p, name, FAST).arena_bytes == 180


def test_plans_are_deterministic() -> None:
    problem = read_csv(shared_path("benchmarks", "minimalloc", "challenging_C.csv").read_text())
    a = plan_buffers(problem, "portfolio", Options(time_limit=600, seed=7, exact=False))
    b = plan_buffers(problem, "portfolio", Options(time_limit=600, seed=7, exact=False))
    assert a.offsets == b.offsets


def test_pinned_buffers_are_honoured() -> None:
    p = Problem(
        [Buffer("pin", 64, 0, 4, 16, offset=128), Buffer("x", 64, 0, 2, 16), Buffer("y", 200, 1, 4, 16)]
    )
    plan = plan_buffers(p, "portfolio", FAST)
    assert plan.offsets[0] == 128
    assert_valid_plan(p, plan.offsets)


@pytest.mark.parametrize(("name", "capacity"), [("A", 1_048_576), ("C", 1_039_360)])
def test_minimalloc_instances_reach_their_optimum(name: str, capacity: int) -> None:
    problem = read_csv(shared_path("benchmarks", "minimalloc", f"challenging_{name}.csv").read_text(), name)
    plan = plan_buffers(problem, "portfolio", Options(time_limit=30))
    assert plan.arena_bytes == capacity == plan.lower_bound
    assert plan.proven_optimal
    greedy = plan_buffers(problem, "tflm", Options())
    assert greedy.arena_bytes > 1.25 * capacity  # the heuristic TFLM uses is far off on these


def test_anytime_search_keeps_the_best_plan_under_a_tiny_budget() -> None:
    problem = read_csv(shared_path("benchmarks", "minimalloc", "challenging_D.csv").read_text(), "D")
    start = time.perf_counter()
    plan = plan_buffers(problem, "portfolio", Options(time_limit=0.5))
    assert time.perf_counter() - start < 10
    greedy = plan_buffers(problem, "tflm", Options())
    assert plan.arena_bytes < greedy.arena_bytes
    assert_valid_plan(problem, plan.offsets)


# -- CSV and plugins ---------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(buffer_problems(alignments=(1,)))
def test_csv_round_trip(problem: Problem) -> None:
    again = read_csv(write_csv(problem))
    assert [(b.name, b.size, b.lower, b.upper) for b in again.buffers] == [
        (b.name, b.size, b.lower, b.upper) for b in problem.buffers
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty buffer file"),
        ("a,b,c\n", "header must name the columns"),
        ("id,lower,upper,size\n0,1,x,4\n", "in.csv:2:1: error: non-integer field"),
        ("id,lower,upper,size\n0,3,1,4\n", "in.csv:2:1: error: buffer '0' needs size > 0 and lower < upper"),
        ("id,lower,upper,size\n0,0,1,4\n0,0,1,4\n", "in.csv:3:1: error: duplicate buffer id '0'"),
    ],
)
def test_csv_errors(text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        read_csv(text, "in.csv")
    assert message in str(err.value)


def test_allocator_from_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "mine.py"
    good.write_text(
        "def stack(problem, options):\n    return [sum(b.padded_size for b in problem.buffers[:i]) for i in range(len(problem.buffers))]\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text("def clash(problem, options):\n    return [0] * len(problem.buffers)\n")
    p = Problem([Buffer("a", 16, 0, 2, 16), Buffer("b", 16, 1, 3, 16)])
    assert plan_buffers(p, f"{good}:stack").offsets == [0, 16]
    with pytest.raises(UserError, match="produced an invalid plan: buffers 'b'"):
        plan_buffers(p, f"{bad}:clash")
    with pytest.raises(UserError, match="unknown allocator 'nope'"):
        plan_buffers(p, "nope")
    assert "portfolio" in allocators.BUILTIN
