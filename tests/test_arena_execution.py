"""Planned graphs executed inside real arenas: the differential check of every plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, i64
from xdsl.ir import Operation, SSAValue

from nnopt.backends.numpy import run
from nnopt.backends.numpy.arena import CANARY, ArenaError, is_planned, run_planned
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontends import load_model
from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import compute_lifetimes, executed_ops
from nnopt.passes.analysis.places import Loc, byte_addresses
from nnopt.passes.planning.problem import verify_plan
from nnopt.testing import (
    GraphSpec,
    assert_same_outputs,
    build_graph,
    graph_specs,
    random_inputs,
    run_pipeline,
    spec_seed,
)

from .conftest import ROOT, run_tool

PIPELINE = "nn-bufferize,nn-merge-buffers,nn-plan-arena{time-limit=0.5}"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _graph(module: ModuleOp) -> nn.GraphOp:
    return next(op for op in module.walk() if isinstance(op, nn.GraphOp))


def _verify_ir_plan(graph: nn.GraphOp) -> None:
    """Re-check the offsets written in the IR with the independent verifier."""
    lifetimes = compute_lifetimes(graph)
    buffers = nn.graph_buffers(graph)
    arenas = nn.graph_arenas(graph)
    for space, size in arenas.items():
        problem = lifetimes.problem(16, space)
        verify_plan(problem, [buffers[b.name].offset.data for b in problem.buffers], capacity=size)


# -- the differential property ----------------------------------------------------


@SETTINGS
@given(graph_specs())
def test_merged_and_planned_graphs_compute_the_same_bits(spec: GraphSpec) -> None:
    module = build_graph(spec)
    planned = run_pipeline(module, PIPELINE)
    graph = _graph(planned)
    assert is_planned(graph)
    _verify_ir_plan(graph)
    assert_same_outputs(module, planned, seed=spec_seed(spec))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs())
def test_results_do_not_depend_on_what_the_arena_held(spec: GraphSpec) -> None:
    """No value is read before it is written: the canary byte never leaks into an output."""
    planned = run_pipeline(build_graph(spec), PIPELINE)
    inputs = random_inputs(planned, spec_seed(spec))
    a = run_planned(planned, inputs, canary=CANARY)
    b = run_planned(planned, inputs, canary=0x00)
    for name in a:
        assert a[name].tobytes() == b[name].tobytes()


# -- a wrong plan must fail the check ------------------------------------------------


def _clobber(graph: nn.GraphOp, victim: str, writer: str) -> None:
    """Move buffer `writer` onto `victim`'s offset (growing the arena): a deliberately broken plan."""
    buffers = dict(nn.graph_buffers(graph))
    target = buffers[victim].offset.data
    w = buffers[writer]
    buffers[writer] = w.with_plan(w.space.data, target)
    size = max(nn.graph_arenas(graph)[w.space.data], target + w.size.data)
    graph.attributes[nn.BUFFERS_KEY] = DictionaryAttr(buffers)
    graph.attributes[nn.ARENAS_KEY] = DictionaryAttr({w.space.data: IntegerAttr(size, i64)})


def _truth(graph: nn.GraphOp, inputs: dict[str, np.ndarray]) -> dict[SSAValue, np.ndarray]:
    """The bytes every value holds in a correct run (element order, then byte order)."""
    truth: dict[SSAValue, np.ndarray] = {
        arg: np.ascontiguousarray(inputs[name]).view(np.uint8).reshape(-1)
        for name, arg in zip(graph.input_names(), graph.block.args, strict=True)
    }

    def dump(name: str, op: Operation, value: np.ndarray) -> None:
        truth[op.results[0]] = np.ascontiguousarray(value).view(np.uint8).reshape(-1)

    run(graph, inputs, dump=dump)
    return truth


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs(max_layers=8), st.data())
def test_a_broken_plan_is_caught(spec: GraphSpec, data: st.DataObject) -> None:
    """Move a buffer onto one whose bytes are still needed when it is written: the run must fail."""
    module = build_graph(spec)
    planned = run_pipeline(module, PIPELINE)
    graph = _graph(planned)
    inputs = random_inputs(module, spec_seed(spec))
    truth = _truth(graph, inputs)
    ops = executed_ops(graph)
    step = {op: i for i, op in enumerate(ops)}
    outputs = set(graph.output.values)
    values = list(graph.block.args) + [r for op in ops for r in op.results]

    def born(v: SSAValue) -> int:
        return step[v.owner] if isinstance(v.owner, Operation) else -1

    def last_read(v: SSAValue) -> int:
        if v in outputs:
            return len(ops)
        return max((step[u.operation] for u in v.uses), default=born(v))

    def placed(v: SSAValue) -> tuple[str, Loc, tuple[int, ...], int]:
        place = nn.value_place(v)
        assert place is not None
        return (
            place.buffer.data,
            Loc("", place.offset.data, place.stride_values),
            nn.shape_of(v),
            nn.element_bytes(nn.elem_of(v)),
        )

    candidates = []
    for w in values:
        if not isinstance(w.owner, Operation):
            continue
        wbuf, wloc, wshape, web = placed(w)
        for a in values:
            abuf, aloc, ashape, aeb = placed(a)
            if abuf == wbuf or not born(a) < born(w) < last_read(a):
                continue
            # Bytes of `a` that `w` overwrites once its buffer starts where `a`'s does.
            a_bytes = byte_addresses(ashape, aeb, aloc)
            w_bytes = byte_addresses(wshape, web, wloc)
            common, ia, iw = np.intersect1d(a_bytes, w_bytes, return_indices=True)
            if common.size and np.any(truth[a][ia] != truth[w][iw]):
                candidates.append((abuf, wbuf))
    assume(candidates)
    victim, writer = data.draw(st.sampled_from(candidates))
    _clobber(graph, victim, writer)
    with pytest.raises(ArenaError):
        run_planned(graph, inputs)


def test_a_broken_plan_corrupts_outputs_without_the_checks() -> None:
    module = load_model(str(ROOT / "examples" / "models" / "branching_inception.nn"))
    planned = run_pipeline(module, PIPELINE)
    graph = _graph(planned)
    inputs = random_inputs(module, 1)
    reference = run(module, inputs)
    assert_same_outputs(module, planned, inputs)
    lifetimes = {iv.name: iv for iv in compute_lifetimes(graph).buffers}
    # `a` (the cheap path) is live while the wide path runs: put the wide path's first
    # buffer on top of it.
    by_name = {v: iv.name for iv in lifetimes.values() for v in iv.values}
    _clobber(graph, by_name["a"], by_name["b_red"])
    with pytest.raises(ArenaError, match="a was overwritten while still live"):
        run_planned(graph, inputs)
    corrupted = run_planned(graph, inputs, check=False)
    assert not np.array_equal(corrupted["probs"], reference["probs"])
    with pytest.raises(AssertionError):
        assert_same_outputs(module, graph, inputs)


# -- in-place hazards ------------------------------------------------------------------

PLANNED = """
nn.graph @g(%x: {x} {{nn.place = #nn.place<"b0">}}) -> {y} attributes {{
    nn.buffers = {{b0 = #nn.buffer<size = {size}, align = 16, kind = input, space = sram, offset = 0>}},
    nn.arenas = {{sram = {size} : i64}}}} {{
  %y = {op} %x {{nn.place = #nn.place<"b0"{where}>}} : ({x}) -> {y}
  nn.output %y : {y}
}}
"""

_I8 = "tensor<2x8x!quant.uniform<i8:f32, 0.5:1>>"
_F32 = "tensor<2x8xf32>"


def _parse(text: str) -> ModuleOp:
    from xdsl.parser import Parser

    from nnopt.compiler.registry import make_context

    module = Parser(make_context(), text).parse_module()
    module.verify()
    return module


def test_a_narrower_result_in_place_is_fine_and_a_wider_one_is_a_hazard() -> None:
    x8 = np.arange(-8, 8, dtype=np.int8).reshape(2, 8)
    # quantize f32 -> i8 over its own input: element i is read before byte i is written.
    quant = _parse(PLANNED.format(op="nn.quantize", x=_F32, y=_I8, size=64, where=""))
    xf = np.linspace(-3, 3, 16, dtype=np.float32).reshape(2, 8)
    assert np.array_equal(run_planned(quant, {"x": xf})["y"], run(quant, {"x": xf})["y"])
    # dequantize i8 -> f32 over its own input: element 0 (4 bytes) clobbers elements 1..3.
    deq = _parse(PLANNED.format(op="nn.dequantize", x=_I8, y=_F32, size=64, where=""))
    with pytest.raises(ArenaError, match="in-place hazard"):
        run_planned(deq, {"x": x8})
    # ... unless the result starts after the input ends.
    deq_apart = _parse(PLANNED.format(op="nn.dequantize", x=_I8, y=_F32, size=96, where=" + 16"))
    assert np.array_equal(run_planned(deq_apart, {"x": x8})["y"], run(deq_apart, {"x": x8})["y"])


def test_softmax_in_place_is_row_by_row_and_a_shifted_result_is_a_hazard() -> None:
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    same = _parse(PLANNED.format(op="nn.softmax", x=_F32, y=_F32, size=64, where=""))
    assert np.array_equal(run_planned(same, {"x": x})["y"], run(same, {"x": x})["y"])
    # Row 0 of the result lands on row 1 of the input, read later: a hazard.
    shifted = _parse(PLANNED.format(op="nn.softmax", x=_F32, y=_F32, size=96, where=" + 4"))
    with pytest.raises(ArenaError, match="in-place hazard"):
        run_planned(shifted, {"x": x})


def test_an_op_without_an_in_place_order_may_not_overlap_its_input() -> None:
    text = """
nn.graph @g(%x: tensor<1x4x4x2xf32> {nn.place = #nn.place<"b0">}) -> tensor<1x4x4x2xf32> attributes {
    nn.buffers = {b0 = #nn.buffer<size = 128, align = 16, kind = input, space = sram, offset = 0>},
    nn.arenas = {sram = 128 : i64}} {
  %w = nn.const dense<0.5> : tensor<2x3x3x2xf32>
  %y = nn.conv2d %x, %w {nn.place = #nn.place<"b0">, strides = array<i64: 1, 1>, padding = "same"} : (tensor<1x4x4x2xf32>, tensor<2x3x3x2xf32>) -> tensor<1x4x4x2xf32>
  nn.output %y : tensor<1x4x4x2xf32>
}
"""
    module = _parse(text)
    x = np.ones((1, 4, 4, 2), dtype=np.float32)
    with pytest.raises(ArenaError, match=r"nn.conv2d writes %?y over %?x"):
        run_planned(module, {"x": x})
    # The numpy kernel computes everything before writing, so without the check the
    # result is right: only the hazard model knows a C kernel would not be.
    assert np.array_equal(run_planned(module, {"x": x}, check=False)["y"], run(module, {"x": x})["y"])


def test_scratch_memory_is_scribbled_on_so_an_overlap_with_a_live_value_is_caught() -> None:
    text = """
nn.graph @g(%x: tensor<1x2x2x4xf32> {nn.place = #nn.place<"b0">}) -> (tensor<1x4xf32>, tensor<1x2x2x4xf32>) attributes {
    nn.buffers = {b0 = #nn.buffer<size = 64, align = 16, kind = output, space = sram, offset = 0>,
                  b1 = #nn.buffer<size = 16, align = 16, kind = output, space = sram, offset = 64>,
                  s0 = #nn.buffer<size = 16, align = 16, kind = scratch, space = sram, offset = OFFSET>},
    nn.arenas = {sram = 96 : i64}} {
  %m = nn.mean %x {nn.place = #nn.place<"b1">, nn.scratch = #nn.place<"s0">, axes = array<i64: 1, 2>} : (tensor<1x2x2x4xf32>) -> tensor<1x4xf32>
  nn.output %m, %x : tensor<1x4xf32>, tensor<1x2x2x4xf32>
}
"""
    x = np.arange(16, dtype=np.float32).reshape(1, 2, 2, 4)
    good = _parse(text.replace("OFFSET", "80"))
    assert np.array_equal(run_planned(good, {"x": x})["m"], run(good, {"x": x})["m"])
    bad = _parse(text.replace("OFFSET", "0"))  # scratch on top of %x, which is still an output
    with pytest.raises(ArenaError, match="overwritten while still live"):
        run_planned(bad, {"x": x})


# -- entry points ------------------------------------------------------------------------


def test_unplanned_graphs_are_refused_and_run_takes_an_arenas_flag() -> None:
    module = load_model(str(ROOT / "examples" / "models" / "kws_dscnn.nn"))
    inputs = random_inputs(module)
    with pytest.raises(UserError, match="not planned"):
        run_planned(module, inputs)
    planned = run_pipeline(module, PIPELINE)
    expected = run(module, inputs)
    for name, value in run(planned, inputs, arenas=True).items():
        assert np.array_equal(value, expected[name])


def test_nnopt_run_executes_planned_models_in_their_arenas(tmp_path: Path) -> None:
    planned = tmp_path / "planned.mlir"
    made = run_tool(
        "nnopt-opt",
        str(ROOT / "examples" / "models" / "kws_dscnn.nn"),
        "-p",
        PIPELINE,
        "-o",
        str(planned),
    )
    assert made.code == 0, made.err
    plain = run_tool("nnopt", "run", str(ROOT / "examples" / "models" / "kws_dscnn.nn"), "--seed", "3")
    arena = run_tool("nnopt", "run", str(planned), "--seed", "3")
    assert arena.code == 0, arena.err
    assert "planned: ran inside the arenas (sram " in arena.out
    assert "planned:" not in plain.out

    # Same printed outputs.
    def outputs(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith(("output", "  ["))]

    assert outputs(arena.out) == outputs(plain.out)
