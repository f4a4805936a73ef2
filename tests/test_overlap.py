"""Partial in-place sharing of convolutions and pools (nn-merge-buffers' ``inplace-overlap``).

The safe offsets come from a closed form (`shift_of`); these tests check it
against element-by-element access times, check that plans using it run
bit-identically inside real arenas and in C, and that shaped buffers are
planned, verified and reported by their live parts.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnopt.backends.numpy.arena import ArenaError, run_planned
from nnopt.compiler.frontends import load_model
from nnopt.compiler.registry import make_context
from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import compute_lifetimes
from nnopt.passes.analysis.overlap import access_times, shift_of
from nnopt.passes.planning.allocators import place_shaped, plan_buffers
from nnopt.passes.planning.problem import Buffer, PlanError, Problem, verify_plan
from nnopt.testing import assert_same_outputs, random_inputs, run_pipeline
from tests.q_build import graph_of

from .conftest import shared_path

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLANNED = "nn-bufferize,nn-merge-buffers,nn-plan-arena{time-limit=0.5}"


def _window_module(
    kind: str, h: int, w: int, c: int, co: int, k: int, s: int, d: int, pads: tuple[int, ...]
) -> ModuleOp | None:
    pt, pb, pl, pr = pads
    oh = (h + pt + pb - (d * (k - 1) + 1)) // s + 1
    ow = (w + pl + pr - (d * (k - 1) + 1)) // s + 1
    if oh <= 0 or ow <= 0:
        return None
    pad = f"array<i64: {pt}, {pb}, {pl}, {pr}>"
    xt = f"tensor<1x{h}x{w}x{c}xf32>"
    if kind == "conv":
        wt = f"tensor<{co}x{k}x{k}x{c}xf32>"
        attrs = f"strides = array<i64: {s}, {s}>, padding = {pad}, dilations = array<i64: {d}, {d}>"
        body = f"%w = nn.const dense<0.25> : {wt}\n  %y = nn.conv2d %x, %w {{{attrs}}} : ({xt}, {wt})"
    elif kind == "dw":
        co = c
        wt = f"tensor<1x{k}x{k}x{c}xf32>"
        attrs = f"strides = array<i64: {s}, {s}>, padding = {pad}, dilations = array<i64: {d}, {d}>"
        body = (
            f"%w = nn.const dense<0.5> : {wt}\n  %y = nn.depthwise_conv2d %x, %w {{{attrs}}} : ({xt}, {wt})"
        )
    else:
        co = c
        if max(pads) >= k:
            return None
        attrs = f"kernel = array<i64: {k}, {k}>, strides = array<i64: {s}, {s}>, padding = {pad}"
        body = f"%y = nn.max_pool2d %x {{{attrs}}} : ({xt})"
    yt = f"tensor<1x{oh}x{ow}x{co}xf32>"
    text = (
        f"nn.graph @g(%x: {xt}) -> {yt} {{\n  %r = nn.relu %x : ({xt}) -> {xt}\n"
        f"  {body.replace('%x,', '%r,').replace('pool2d %x', 'pool2d %r')} -> {yt}\n"
        f"  %o = nn.relu %y : ({yt}) -> {yt}\n  nn.output %o : {yt}\n}}"
    )
    module = Parser(make_context(), text).parse_module()
    module.verify()
    return module


def _window_op(module: ModuleOp) -> nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.MaxPool2DOp:
    return next(
        op for op in module.walk() if isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.MaxPool2DOp)
    )


def _hazard(op: nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.MaxPool2DOp, delta: int, reverse: bool) -> bool:
    """Whether writing the result at input + `delta` bytes clobbers an unread input byte (float32)."""
    write_t, read_t = access_times(op, reverse)
    waddr = (np.arange(write_t.size)[:, None] * 4 + np.arange(4)).reshape(-1) + delta
    raddr = (np.arange(read_t.size)[:, None] * 4 + np.arange(4)).reshape(-1)
    lo = min(int(waddr.min()), int(raddr.min()))
    written = np.full(max(int(waddr.max()), int(raddr.max())) + 1 - lo, np.iinfo(np.int64).max)
    written[waddr - lo] = np.repeat(write_t.reshape(-1), 4)
    return bool(np.any(written[raddr - lo] < np.repeat(read_t.reshape(-1), 4)))


window_cases = st.tuples(
    st.sampled_from(["conv", "dw", "pool"]),
    st.integers(1, 7),
    st.integers(1, 7),
    st.integers(1, 3),
    st.integers(1, 5),
    st.sampled_from([1, 2, 3]),
    st.sampled_from([1, 2]),
    st.sampled_from([1, 2]),
    st.tuples(*[st.integers(0, 1)] * 4),
)


@SETTINGS
@given(window_cases)
def test_safe_offsets_are_exactly_the_hazard_free_ones(case: tuple) -> None:
    kind, h, w, c, co, k, s, d, pads = case
    module = _window_module(kind, h, w, c, co, k, s, 1 if kind == "pool" else d, pads)
    if module is None:
        return
    op = _window_op(module)
    shift = shift_of(op)
    assert shift is not None
    if abs(shift.forward) > 1 << 40:
        return  # no pixel reads the input at all (every window in the padding)
    for delta in range(shift.forward - 8, shift.forward + 1):
        assert not _hazard(op, delta, reverse=False), delta
    for delta in range(shift.reverse, shift.reverse + 8):
        assert not _hazard(op, delta, reverse=True), delta
    # Tight: one byte closer clobbers something in that walking order.
    assert _hazard(op, shift.forward + 1, reverse=False)
    assert _hazard(op, shift.reverse - 1, reverse=True)


def test_pointwise_expansion_needs_one_input_pixel_more_than_its_output() -> None:
    module = _window_module("conv", 6, 6, 8, 16, 1, 1, 1, (0, 0, 0, 0))
    assert module is not None
    shift = shift_of(_window_op(module))
    assert shift is not None
    n, in_pix, out_pix = 36, 8 * 4, 16 * 4
    assert shift.forward == -((n - 1) * in_pix + out_pix)  # result below, ending one input pixel in
    assert shift.reverse == in_pix  # result from the second input pixel on


@SETTINGS
@given(window_cases, st.integers(0, 3))
def test_merged_window_ops_run_identically_in_their_arena(case: tuple, seed: int) -> None:
    kind, h, w, c, co, k, s, d, pads = case
    module = _window_module(kind, h, w, c, co, k, s, 1 if kind == "pool" else d, pads)
    if module is None:
        return
    planned = run_pipeline(module, PLANNED)
    assert_same_outputs(module, planned, random_inputs(module, seed))


def test_an_overlap_moved_one_step_too_close_is_a_hazard() -> None:
    module = _window_module("conv", 8, 8, 4, 8, 1, 1, 1, (0, 0, 0, 0))
    assert module is not None
    planned = run_pipeline(module, PLANNED)
    graph = graph_of(planned)
    op = _window_op(planned)
    x_place, y_place = nn.value_place(op.operands[0]), nn.value_place(op.results[0])
    assert x_place is not None and y_place is not None
    assert x_place.buffer == y_place.buffer and x_place.offset != y_place.offset  # merged with an overlap
    inputs = random_inputs(module, 0)
    run_planned(graph, inputs)
    shift = shift_of(op)
    assert shift is not None
    delta = y_place.offset.data - x_place.offset.data
    closer = delta + 16 if delta <= shift.forward else delta - 16  # into the unsafe band
    op.attributes[nn.PLACE_KEY] = nn.PlaceAttr(y_place.buffer.data, x_place.offset.data + closer)
    assert shift.direction(closer) is None
    with pytest.raises(ArenaError, match=r"in-place hazard|overwritten"):
        run_planned(graph, inputs)


# -- shaped buffers in the planner ------------------------------------------------------------


def test_shaped_buffers_share_the_gaps_their_dead_parts_leave() -> None:
    # One buffer holds %a (steps 0-1, bytes 0-64) then %b (steps 1-3, bytes 32-96);
    # c (steps 2-3) fits in bytes 0-32 once %a is dead.
    shaped = Buffer("ab", 96, 0, 4, 16, parts=((0, 2, 0, 64), (1, 4, 32, 96)))
    other = Buffer("c", 32, 2, 4, 16)
    problem = Problem([shaped, other])
    assert problem.lower_bound() == 96
    offsets, arena = place_shaped(problem, [0, 1])
    assert arena == 96 and offsets == [0, 0]
    verify_plan(problem, offsets)
    with pytest.raises(PlanError, match="overlap"):
        verify_plan(Problem([shaped, Buffer("c", 48, 1, 4, 16)]), [0, 0])
    plan = plan_buffers(problem)
    assert plan.arena_bytes == 96 and plan.proven_optimal


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(1, 4), st.integers(1, 6), st.integers(0, 4), st.booleans()),
        min_size=1,
        max_size=10,
    )
)
def test_shaped_plans_are_valid_and_above_the_bound(specs: list[tuple[int, int, int, int, bool]]) -> None:
    buffers = []
    for i, (lower, length, size, shift, shaped) in enumerate(specs):
        upper = lower + length
        total = (size + shift) * 16
        parts = (
            ((lower, lower + 1, 0, size * 16), (lower + 1, upper + 1, shift * 16, total)) if shaped else ()
        )
        buffers.append(Buffer(f"b{i}", total, lower, upper + (1 if shaped else 0), 16, parts=parts))
    problem = Problem(buffers)
    plan = plan_buffers(problem)
    verify_plan(problem, plan.offsets)
    assert plan.arena_bytes >= problem.lower_bound()


# -- real models --------------------------------------------------------------------------------


def test_vww_goes_below_the_tflite_order_bound_and_runs_identically() -> None:
    """TFLite Micro's order needs 55,296 B live at the first 8->16 pointwise convolution; written
    partly over its input it needs 36,880 B, and the arena ends at 37,456 B."""
    path = shared_path("models", "mlperf_tiny_vww_mbv1_025_int8.tflite")
    module = load_model(str(path))
    planned = run_pipeline(module, "nn-bufferize,nn-merge-buffers,nn-plan-arena{time-limit=2.0}")
    graph = graph_of(planned)
    arena = sum(nn.graph_arenas(graph).values())
    assert arena <= 37_456 < 55_296
    shaped = [iv for iv in compute_lifetimes(graph).buffers if iv.parts]
    assert shaped
    assert_same_outputs(module, planned, random_inputs(module, 0))
