"""nn-schedule: memory-aware topological orders (exact DP, beam search, arena-ranked candidates)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, OpResult

from nnopt.backends.numpy import run
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontends import load_model
from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import compute_lifetimes, executed_ops
from nnopt.passes.analysis.schedule_dp import best_order, dep_graph
from nnopt.passes.bufferize import bufferize_graph
from nnopt.passes.schedule import SchedulePass, evaluate_order, reorder_graph, schedule_graph
from nnopt.testing import GraphSpec, build_graph, graph_specs, spec_seed

EXAMPLES = Path(__file__).parent.parent / "examples" / "models"
CHAINS = ["kws_dscnn.nn", "vww_mobilenet_v1_025.nn", "mobilenet_v2_035.nn", "ad_autoencoder.nn"]


def _graph(module: ModuleOp) -> nn.GraphOp:
    return next(op for op in module.walk() if isinstance(op, nn.GraphOp))


def _inputs(spec: GraphSpec) -> list[np.ndarray]:
    rng = np.random.default_rng(spec_seed(spec))
    if spec.quantized:
        return [rng.integers(-128, 128, spec.input_shape).astype(np.int8)]
    return [rng.standard_normal(spec.input_shape).astype(np.float32)]


def _producers(op: Operation, executed: set[Operation]) -> set[Operation]:
    return {v.op for v in op.operands if isinstance(v, OpResult) and v.op in executed}


def _topological_orders(graph: nn.GraphOp) -> Iterator[list[int]]:
    """Every topological order of the executed ops (reference enumeration from the IR)."""
    ops = executed_ops(graph)
    executed = set(ops)
    index = {op: i for i, op in enumerate(ops)}
    preds = [{index[p] for p in _producers(op, executed)} for op in ops]

    def extend(done: list[int]) -> Iterator[list[int]]:
        if len(done) == len(ops):
            yield list(done)
            return
        for v in range(len(ops)):
            if v not in done and preds[v] <= set(done):
                done.append(v)
                yield from extend(done)
                done.pop()

    return extend([])


def _bufferized_bound(graph: nn.GraphOp, order: list[int] | tuple[int, ...]) -> int:
    """Lower bound of `graph` run in `order`, the way the planner sees it (independent of the DP)."""
    clone = graph.clone()
    reorder_graph(clone, executed_ops(clone), order)
    bufferize_graph(clone, 16)
    return compute_lifetimes(clone).lower_bound(16)


def _assert_defined_before_use(graph: nn.GraphOp) -> None:
    seen: set[Operation] = set()
    for op in graph.block.ops:
        for v in op.operands:
            if isinstance(v, OpResult):
                assert v.op in seen, f"{op.name} reads {v.name_hint} before it is defined"
        seen.add(op)
    assert isinstance(graph.block.last_op, nn.OutputOp)


def _branching_reversed() -> ModuleOp:
    """The branching example with the wide path written (and run) before the cheap one."""
    lines = (EXAMPLES / "branching_inception.nn").read_text().splitlines()
    a_line = next(line for line in lines if line.startswith("a "))
    lines.remove(a_line)
    at = next(i for i, line in enumerate(lines) if line.startswith("b_out"))
    lines.insert(at + 1, a_line)
    return load_model_text("\n".join(lines) + "\n")


def load_model_text(text: str, suffix: str = ".nn") -> ModuleOp:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        path.write_text(text)
        return load_model(str(path))


@st.composite
def wide_models(draw: st.DrawFn, max_nodes: int = 5) -> str:
    """`.nn` text of a random DAG of fully connected layers of very different widths.

    Each node reads one or two earlier nodes (two through a concat); the
    nodes nobody reads are concatenated into the output. Far more branching
    than `graph_specs`, so the order matters.
    """
    n = draw(st.integers(2, max_nodes))
    lines = ["model wide", "seed 0", "input x: f32[1, 8]"]
    read: set[str] = set()
    names = ["x"]
    for i in range(n):
        srcs = sorted(set(draw(st.lists(st.sampled_from(names), min_size=1, max_size=2))))
        read.update(srcs)
        src = srcs[0]
        if len(srcs) == 2:
            lines.append(f"c{i} = concat({srcs[0]}, {srcs[1]}, axis=1)")
            src = f"c{i}"
        lines.append(f"n{i} = fully_connected({src}, units={draw(st.sampled_from([4, 16, 64, 256]))})")
        names.append(f"n{i}")
    sinks = [m for m in names[1:] if m not in read]
    lines.append(f"out = concat({', '.join(sinks)}, axis=1)" if len(sinks) > 1 else f"out = relu({sinks[0]})")
    lines.append("output out")
    return "\n".join(lines) + "\n"


# -- the cost model ------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs(max_layers=8), st.randoms(use_true_random=False))
def test_peak_of_any_order_is_the_planners_lower_bound(spec: GraphSpec, rnd: object) -> None:
    graph = _graph(build_graph(spec))
    dg, _ = dep_graph(graph)
    orders = list(_topological_orders(graph)) if dg.n <= 6 else [list(range(dg.n))]
    order = orders[rnd.randrange(len(orders))]  # type: ignore[attr-defined]
    assert dg.peak(order) == _bufferized_bound(graph, order)


def test_peak_rejects_orders_that_break_dependences() -> None:
    graph = _graph(_branching_reversed())
    dg, _ = dep_graph(graph)
    with pytest.raises(ValueError, match="before one of its operands"):
        dg.peak([1, 0, *range(2, dg.n)])
    with pytest.raises(ValueError, match="permutation"):
        dg.peak([0, 0])


# -- exactness -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs(max_layers=8))
def test_exact_dp_equals_brute_force(spec: GraphSpec) -> None:
    graph = _graph(build_graph(spec))
    dg, _ = dep_graph(graph)
    brute = min(dg.peak(order) for order in _topological_orders(graph))
    for tie in ("area", "original"):
        s = best_order(dg, tie=tie)
        assert s.exact
        assert s.peak == brute == dg.peak(s.order)
    assert _bufferized_bound(graph, s.order) == brute


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide_models())
def test_exact_dp_equals_brute_force_on_wide_graphs(text: str) -> None:
    graph = _graph(load_model_text(text))
    dg, _ = dep_graph(graph)
    orders = _topological_orders(graph)
    brute = min(dg.peak(order) for _, order in zip(range(50_000), orders, strict=False))
    s = best_order(dg)
    assert s.exact and s.lower_bound == s.peak
    if next(orders, None) is None:  # enumerated them all
        assert s.peak == brute
    else:
        assert s.peak <= brute


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide_models(max_nodes=8), st.integers(1, 4), st.sampled_from(["peak", "live"]), st.integers(1, 400))
def test_heuristic_orders_are_valid_and_bounded(text: str, beam: int, rank: str, max_states: int) -> None:
    graph = _graph(load_model_text(text))
    dg, _ = dep_graph(graph)
    exact = best_order(dg)
    assert exact.exact
    s = best_order(dg, max_states=max_states, beam=beam, rank=rank, window=4)
    assert sorted(s.order) == list(range(dg.n))
    assert s.peak == dg.peak(s.order) >= exact.peak  # peak() also checks the dependences
    assert s.lower_bound <= exact.peak
    if s.exact:
        assert s.peak == exact.peak
    # Never worse than a plain beam search of the same width.
    plain = best_order(dg, max_states=1, beam=beam, rank=rank)
    assert s.peak <= plain.peak


def test_segments_split_at_points_every_order_passes() -> None:
    graph = _graph(load_model(str(EXAMPLES / "branching_inception.nn")))
    dg, ops = dep_graph(graph)
    names = [op.results[0].name_hint for op in ops]
    # stem | a, b_red, b_wide, b_out | joined | pool | gap | logits | probs
    assert [names[lo:hi] for lo, hi in dg.segments()][:2] == [["stem"], ["a", "b_red", "b_wide", "b_out"]]
    assert len(dg.segments()) == 7


# -- the pass ------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHAINS)
def test_linear_chains_are_left_alone(name: str) -> None:
    module = load_model(str(EXAMPLES / name))
    before = str(module)
    SchedulePass().apply(None, module)  # type: ignore[arg-type]
    assert str(module) == before


def test_branching_model_bound_drops() -> None:
    module = _branching_reversed()
    graph = _graph(module)
    x = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype(np.float32)
    expected = run(module, [x])
    report = schedule_graph(graph)
    # Wide path first: stem (16 KiB) + b_red (32 KiB) + b_wide (64 KiB) live together. `peak` is
    # the unmerged liveness peak, `bound` the one after in-place merging (convolutions partly over
    # their inputs), which the arena reaches.
    assert report.original.peak == 114_688
    assert report.original.bound == report.original.arena == 84_224
    assert report.best.peak == 106_496
    assert report.best.bound == report.best.arena == 76_032
    order = [op.results[0].name_hint for op in executed_ops(graph)]
    assert order[:5] == ["stem", "a", "b_red", "b_wide", "b_out"]
    assert evaluate_order(graph, list(range(len(order))))[1] == 76_032
    got = run(module, [x])
    assert all(np.array_equal(got[k], expected[k]) for k in expected)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs(), st.booleans())
def test_schedule_is_valid_equivalent_and_never_worse(spec: GraphSpec, evaluate: bool) -> None:
    module = build_graph(spec)
    graph = _graph(module)
    expected = run(module, _inputs(spec))
    dg_before, _ = dep_graph(graph)
    peak_before = dg_before.peak(range(dg_before.n))
    text_before = str(module)
    original = evaluate_order(graph, list(range(dg_before.n))) if evaluate else None
    report = schedule_graph(graph, evaluate=evaluate, candidates=2)
    module.verify()
    _assert_defined_before_use(graph)
    dg_after, _ = dep_graph(graph)
    peak_after = dg_after.peak(range(dg_after.n))
    assert peak_after == report.best.peak <= peak_before
    if original is not None:
        after = evaluate_order(graph, list(range(dg_after.n)))
        assert after[0] <= original[0] and after[1] <= original[1]
    if not report.changed:
        assert peak_after == peak_before
        assert str(module) == text_before
    if all(hi - lo == 1 for lo, hi in dg_before.segments()):  # one topological order only
        assert not report.changed
    got = run(module, _inputs(spec))
    assert got.keys() == expected.keys()
    for k in expected:
        assert np.array_equal(got[k], expected[k], equal_nan=True), k


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs())
def test_schedule_is_deterministic(spec: GraphSpec) -> None:
    a, b = build_graph(spec), build_graph(spec)
    SchedulePass(candidates=2).apply(None, a)  # type: ignore[arg-type]
    SchedulePass(candidates=2).apply(None, b)  # type: ignore[arg-type]
    assert str(a) == str(b)


EDGE_CASES = """
nn.graph @g(%x: tensor<1x16xf32>, %unused: tensor<1x64xf32>, %state: tensor<1x8xf32> {nn.variable})
    -> (tensor<1x8xf32>, tensor<1x16xf32>) {
  %spare = nn.const dense<1.0> : tensor<4xf32>
  %wa = nn.const dense<0.5> : tensor<1024x16xf32>
  %wb = nn.const dense<0.25> : tensor<512x16xf32>
  %wa2 = nn.const dense<0.5> : tensor<4x1024xf32>
  %wb2 = nn.const dense<0.5> : tensor<4x512xf32>
  %a = nn.fully_connected %x, %wa : (tensor<1x16xf32>, tensor<1024x16xf32>) -> tensor<1x1024xf32>
  %b = nn.fully_connected %x, %wb : (tensor<1x16xf32>, tensor<512x16xf32>) -> tensor<1x512xf32>
  %a2 = nn.fully_connected %a, %wa2 : (tensor<1x1024xf32>, tensor<4x1024xf32>) -> tensor<1x4xf32>
  %b2 = nn.fully_connected %b, %wb2 : (tensor<1x512xf32>, tensor<4x512xf32>) -> tensor<1x4xf32>
  %both = nn.concat %a2, %b2 {axis = 1 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x8xf32>
  %sum = nn.add %both, %state : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  nn.output %sum, %x : tensor<1x8xf32>, tensor<1x16xf32>
}
"""


def test_unread_inputs_state_tensors_and_constants() -> None:
    """An unread input lives at the first step only, a state tensor and an output input throughout."""
    module = load_model_text(EDGE_CASES, ".mlir")
    graph = _graph(module)
    dg, _ = dep_graph(graph)
    for order in _topological_orders(graph):
        assert dg.peak(order) == _bufferized_bound(graph, order)
    # As written, x (an output) + state + a + b + a2 are live at step 2.
    assert dg.peak(range(dg.n)) == 64 + 32 + 4096 + 2048 + 16
    # a, a2, b, ... would peak with the unread input at step 0: 64 + 256 + 32 + 4096 + 16 at a2;
    # b, b2 first moves the unread input's step away from the wide one.
    assert dg.peak([0, 2, 1, 3, 4, 5]) == 64 + 256 + 32 + 4096
    report = schedule_graph(graph)
    assert report.best.peak == report.best.arena == 64 + 32 + 16 + 4096 + 16
    names = [op.results[0].name_hint for op in executed_ops(graph)]
    assert names == ["b", "b2", "a", "a2", "both", "sum"]
    # The constant nobody reads goes first; the others sit just before their reader.
    ops = list(graph.block.ops)
    assert ops[0].results[0].name_hint == "spare"
    assert [op.results[0].name_hint for op in ops[1:3]] == ["wb", "b"]
    _assert_defined_before_use(graph)


def test_bufferized_graphs_are_refused() -> None:
    module = _branching_reversed()
    bufferize_graph(_graph(module))
    with pytest.raises(UserError, match="before nn-bufferize"):
        SchedulePass().apply(None, module)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam": 0}, "beam must be >= 1"),
        ({"max_states": 0}, "max-states"),
        ({"candidates": -1}, "candidates"),
    ],
)
def test_bad_options(options: dict[str, int], message: str) -> None:
    with pytest.raises(UserError, match=message):
        SchedulePass(**options).apply(None, _branching_reversed())  # type: ignore[arg-type]


def test_benchmark_section_measures_the_branching_models() -> None:
    from benchmarks.common import Context
    from benchmarks.schedule import run as run_section

    result = run_section(Context(quick=True, repeat=1, models=["branching_inception"], log=lambda _: None))
    models, synthetic, _ = result.tables
    assert [r["model"] for r in models.rows] == ["branching_inception.nn"]
    assert models.rows[0]["arena1"] == models.rows[0]["arena0"] == 76_032  # already the best order
    assert models.rows[0]["peak0"] == 106_496
    reversed_row = synthetic.rows[0]
    assert reversed_row["changed"] and reversed_row["exact"]
    assert reversed_row["peak0"] == 114_688 and reversed_row["peak1"] == 106_496
    assert reversed_row["arena0"] == 84_224 and reversed_row["arena1"] == 76_032
    assert "No arena grew." in result.commentary
