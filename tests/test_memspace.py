"""nn-assign-memspace and the cost model: placement rules, capacities, overlays, properties."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, StringAttr

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontends import load_model
from nnopt.compiler.targets import Memory, Processor, Target, load_target
from nnopt.dialects import nn
from nnopt.passes.analysis.cost import CostModel, analyze_traffic, graph_cost
from nnopt.passes.analysis.lifetimes import compute_lifetimes
from nnopt.passes.assign_memspace import arena_capacities, assign_graph
from nnopt.passes.plan_arena import plan_graph
from nnopt.passes.planning.allocators import Options
from nnopt.passes.planning.problem import Buffer, Problem, align_up, verify_plan
from nnopt.testing import build_graph, graph_specs

from .conftest import ROOT, shared_path

# Node-bounded exact search: plans are the same on every run and machine.
FAST = Options(time_limit=30.0, node_limit=2000)
KWS_NN = ROOT / "examples" / "models" / "kws_dscnn.nn"
MBV2_NN = ROOT / "examples" / "models" / "mobilenet_v2_035.nn"


def graph_of(module: ModuleOp) -> nn.GraphOp:
    return next(op for op in module.walk() if isinstance(op, nn.GraphOp))


def plan(graph: nn.GraphOp, target: Target) -> None:
    plan_graph(graph, options=FAST, capacities=arena_capacities(graph, target))


def memory(
    name: str,
    capacity: int,
    *,
    kind: str = "sram",
    volatile: bool = True,
    mb_s: float = 400.0,
    latency_ns: float = 0.0,
    leak_uw: float = 0.0,
    power_off: bool = True,
    alignment: int = 16,
) -> Memory:
    return Memory(
        name=name,
        kind=kind,
        capacity=capacity,
        volatile=volatile,
        read_bandwidth=mb_s * 1e6,
        write_bandwidth=mb_s * 1e6 if volatile else 0.0,
        read_latency=latency_ns * 1e-9,
        write_latency=latency_ns * 1e-9,
        read_energy=mb_s and 1e-12 * (1000 / mb_s),
        write_energy=1e-12 * (1000 / mb_s) if volatile else 0.0,
        leakage=leak_uw * 1e-6,
        power_off=power_off,
        alignment=alignment,
    )


def board(*memories: Memory, dma: bool = True) -> Target:
    proc = Processor("test core", 100e6, {"default": 1.0}, dma=dma, mac_energy=1e-12, base_power=1e-3)
    return Target("board", "", proc, tuple(memories))


def placed_spaces(graph: nn.GraphOp) -> tuple[dict[str, str], dict[str, str]]:
    """Buffer -> space and constant (by SSA name) -> space, as written in the IR."""
    buffers = {name: b.space.data for name, b in nn.graph_buffers(graph).items()}
    consts = {}
    for op in graph.block.ops:
        if isinstance(op, nn.ConstOp):
            attr = op.attributes.get(nn.SPACE_KEY)
            consts[op.result.name_hint or str(id(op))] = attr.data if isinstance(attr, StringAttr) else ""
    return buffers, consts


def check_planned(graph: nn.GraphOp, target: Target) -> None:
    """Independent checks of a planned graph against its target (no code shared with the planner)."""
    buffers = nn.graph_buffers(graph)
    arenas = nn.graph_arenas(graph)
    lifetimes = compute_lifetimes(graph)
    static: dict[str, int] = {}
    for op in graph.block.ops:
        if isinstance(op, nn.ConstOp):
            space = op.attributes[nn.SPACE_KEY]
            assert isinstance(space, StringAttr)
            m = target.memory(space.data)
            static[m.name] = static.get(m.name, 0) + align_up(nn.tensor_bytes(op.result), m.alignment)
    for m in target.memories:
        held = arenas.get(m.name, 0) + static.get(m.name, 0)
        assert held <= m.capacity, (m.name, held, m.capacity)
    for space in arenas:
        m = target.memory(space)
        live = [iv for iv in lifetimes.buffers if buffers[iv.name].space.data == space]
        problem = Problem(
            [Buffer(iv.name, iv.size, iv.first, iv.last + 1, buffers[iv.name].align.data) for iv in live]
        )
        verify_plan(problem, [buffers[iv.name].offset.data for iv in live], arenas[space])
        if live:
            assert m.volatile and m.writable, f"buffers in non-volatile '{space}'"
        for iv in live:
            assert buffers[iv.name].offset.data % m.alignment == 0


# --------------------------------------------------------------------------
# Cost model
# --------------------------------------------------------------------------


def test_macs_params_and_traffic_of_kws() -> None:
    graph = graph_of(load_model(str(KWS_NN)))
    traffic = analyze_traffic(graph)
    by_class = {}
    for op in traffic.ops:
        by_class.setdefault(op.op_class, []).append(op)
    conv1 = by_class["conv2d"][0]
    assert conv1.macs == 25 * 5 * 64 * (10 * 4 * 1)
    assert conv1.params == 64 * 10 * 4 + 64
    assert [op.macs for op in by_class["depthwise_conv2d"]] == [25 * 5 * 64 * 9] * 4
    assert [op.macs for op in by_class["conv2d_1x1"]] == [25 * 5 * 64 * 64] * 4
    fc = by_class["fully_connected"][0]
    assert fc.macs == 64 * 12 and fc.param_bytes == (64 * 12 + 12) * 4
    # 1x1 weights are read once per pair of output pixels: ceil(125 / 2) = 63 passes
    pw = by_class["conv2d_1x1"][0]
    weight = next(a for a in pw.accesses if a.weight and a.bytes == 64 * 64 * 4)
    assert weight.passes == 63
    assert traffic.total_macs() == sum(op.macs for op in traffic.ops)


def test_roofline_cache_and_leakage() -> None:
    graph = graph_of(load_model(str(KWS_NN)))
    traffic = analyze_traffic(graph)
    fast = memory("fast", 1 << 20, mb_s=4000)
    slow = memory("slow", 1 << 20, volatile=False, kind="flash", mb_s=10, latency_ns=100)
    spare = memory("spare", 1 << 20, leak_uw=500.0, power_off=True)
    target = board(fast, slow, spare)
    model = CostModel(target, traffic)
    in_fast = dict.fromkeys(traffic.items, "fast")
    in_slow = {k: ("slow" if item.kind == "constant" else "fast") for k, item in traffic.items.items()}
    a, b = model.evaluate(in_fast), model.evaluate(in_slow)
    assert a.latency_s < b.latency_s
    pw = next(op for op in b.ops if op.op_class == "conv2d_1x1")
    assert pw.bound == "memory" and pw.memory_s > pw.compute_s
    assert next(op for op in a.ops if op.op_class == "conv2d_1x1").bound == "compute"
    # an empty memory that can be powered off costs nothing; a used one leaks over the run time
    assert "spare" not in a.powered and a.leakage_j == 0.0
    in_spare = dict(in_fast, **{k: "spare" for k, i in traffic.items.items() if i.kind != "constant"})
    c = model.evaluate(in_spare)
    assert "spare" in c.powered and c.leakage_j == pytest.approx(500e-6 * c.latency_s)
    # with a data cache in front of the slow memory, weights that fit are fetched once
    cached = dataclasses.replace(slow, cached=True)
    proc = dataclasses.replace(target.processor, cache_bytes=64 * 1024)
    target_c = Target("board", "", proc, (fast, cached, spare))
    d = CostModel(target_c, traffic).evaluate(in_slow)
    pw_d = next(op for op in d.ops if op.op_class == "conv2d_1x1")
    params = (64 * 64 + 64) * 4  # weights and bias
    assert pw_d.reads["slow"] == params and pw_d.reads["cache"] == 62 * params
    assert d.latency_s < b.latency_s


# --------------------------------------------------------------------------
# Placement rules
# --------------------------------------------------------------------------


def test_kws_on_apollo_fits_tcm_only_and_mram_weights() -> None:
    target = load_target("apollo4-plus")
    for weights in ("tcm", "mram"):
        graph = graph_of(load_model(str(KWS_NN)))
        assign_graph(graph, target, weights=weights, activations="tcm")
        plan(graph, target)
        check_planned(graph, target)
        buffers, consts = placed_spaces(graph)
        assert set(buffers.values()) == {"tcm"}
        assert set(consts.values()) == {weights}


def test_activations_never_in_non_volatile_memory() -> None:
    target = load_target("apollo4-plus")
    graph = graph_of(load_model(str(MBV2_NN)))
    assign_graph(graph, target)
    plan(graph, target)
    check_planned(graph, target)
    buffers, _ = placed_spaces(graph)
    assert "mram" not in buffers.values()
    with pytest.raises(UserError, match="activations live in volatile memory"):
        assign_graph(graph_of(load_model(str(KWS_NN))), target, activations="mram")


def test_weights_stay_in_non_volatile_memory_unless_a_copy_pays_off() -> None:
    # A fast non-volatile memory: copying the weights into RAM gains nothing, so they stay.
    nvm = memory("nvm", 1 << 20, kind="mram", volatile=False, mb_s=4000)
    ram = memory("ram", 1 << 20, mb_s=4000)
    graph = graph_of(load_model(str(KWS_NN)))
    assign_graph(graph, board(ram, nvm))
    _, consts = placed_spaces(graph)
    assert set(consts.values()) == {"nvm"}
    # A slow one: the weights move to RAM at boot (they fit beside the activations).
    slow = memory("nvm", 1 << 20, kind="flash", volatile=False, mb_s=5, latency_ns=200)
    graph = graph_of(load_model(str(KWS_NN)))
    assign_graph(graph, board(ram, slow), overlays=False)
    _, consts = placed_spaces(graph)
    assert {v for k, v in consts.items() if k.endswith("_weight")} == {"ram"}
    # a bias whose op is compute-bound once its weights are fast gains nothing: it stays
    assert consts["pw1_bias"] == "nvm"


def test_fastest_memory_first_and_spill_by_benefit() -> None:
    # 24 KiB fast memory: the 8,000-byte activation pair fits, the rest spills to the slow memory.
    fast = memory("fast", 24 * 1024, mb_s=4000)
    slow = memory("slow", 1 << 20, mb_s=100, latency_ns=50)
    nvm = memory("flash", 1 << 20, kind="flash", volatile=False, mb_s=200)
    target = board(fast, slow, nvm)
    graph = graph_of(load_model(str(KWS_NN)))
    assign_graph(graph, target, overlays=False)
    plan(graph, target)
    check_planned(graph, target)
    arenas = nn.graph_arenas(graph)
    assert 0 < arenas.get("fast", 0) <= 24 * 1024


def test_pins_are_honoured() -> None:
    target = load_target("stm32f746-ext")
    graph = graph_of(load_model(str(KWS_NN)))
    assign_graph(graph, target, pins={"dw1": "sdram", "pw2_weight": "qspi", "b3": "sram"})
    plan(graph, target)
    check_planned(graph, target)
    buffers, consts = placed_spaces(graph)
    dw1 = next(op for op in graph.block.ops if op.results and op.results[0].name_hint == "dw1")
    place = dw1.attributes[nn.PLACE_KEY]
    assert isinstance(place, nn.PlaceAttr)
    assert buffers[place.buffer.data] == "sdram"
    assert buffers["b3"] == "sram"
    assert consts["pw2_weight"] == "qspi"
    with pytest.raises(UserError, match="no value, constant or buffer called 'nope'"):
        assign_graph(graph_of(load_model(str(KWS_NN))), target, pins={"nope": "sram"})
    with pytest.raises(UserError, match="is read-only"):
        assign_graph(graph_of(load_model(str(KWS_NN))), target, pins={"dw1": "qspi"})


def test_a_model_that_cannot_fit_gets_one_error_naming_the_peak() -> None:
    graph = graph_of(load_model(str(MBV2_NN)))
    with pytest.raises(UserError) as info:
        assign_graph(graph, load_target("stm32f469"))
    text = str(info.value)
    assert text.count("error:") == 1
    assert "does not fit 'stm32f469'" in text
    assert "at step 4 (nn.depthwise_conv2d" in text and "are live" in text
    assert "short by 290,816" in text  # 552,960 live bytes against 262,144


def test_constants_that_fit_nowhere() -> None:
    ram = memory("ram", 80 * 1024)  # the float activations need 64,000 bytes at their peak
    nvm = memory("flash", 16 * 1024, kind="flash", volatile=False)
    with pytest.raises(
        UserError, match=r"the constants need .* bytes but the non-volatile memories hold 16,384"
    ):
        assign_graph(graph_of(load_model(str(KWS_NN))), board(ram, nvm))


# --------------------------------------------------------------------------
# Overlays
# --------------------------------------------------------------------------


def _run_both(module: ModuleOp, planned: ModuleOp) -> None:
    arena = pytest.importorskip("nnopt.backends.numpy.arena")
    from nnopt.backends.numpy.interpreter import run

    graph = graph_of(module)
    rng = np.random.default_rng(0)
    inputs = []
    for arg in graph.block.args:
        elem = nn.elem_of(arg)
        q = getattr(elem, "qmin", None)
        if q is not None:
            inputs.append(rng.integers(elem.qmin, elem.qmax, size=nn.shape_of(arg)).astype(elem.numpy_dtype))  # type: ignore[attr-defined]
        else:
            inputs.append(rng.standard_normal(nn.shape_of(arg)).astype(np.float32))
    expected = run(module, inputs)
    got = arena.run_planned(planned, inputs)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


@pytest.mark.parametrize("target_name", ["stm32f469-ext", "stm32f746-ext"])
def test_overlays_from_external_flash_run_exactly(target_name: str) -> None:
    target = load_target(target_name)
    module = load_model(str(KWS_NN))
    planned = module.clone()
    graph = graph_of(planned)
    placement = assign_graph(graph, target, weights="qspi")
    plan(graph, target)
    check_planned(graph, target)
    copies = [op for op in graph.block.ops if isinstance(op, nn.CopyOp)]
    assert copies and len(copies) == len(placement.overlays)
    buffers = nn.graph_buffers(graph)
    for op in copies:
        place = op.attributes[nn.PLACE_KEY]
        assert isinstance(place, nn.PlaceAttr)
        assert buffers[place.buffer.data].kind.data == "overlay"
        assert target.memory(buffers[place.buffer.data].space.data).volatile
    if target.processor.dma:
        assert any(ov.double_buffered for ov in placement.overlays)
    # the overlays pay off in the cost model
    without = graph_of(load_model(str(KWS_NN)))
    assign_graph(without, target, weights="qspi", overlays=False)
    assert graph_cost(graph, target).latency_s < graph_cost(without, target).latency_s
    _run_both(module, planned)


def test_overlays_of_a_quantized_model_run_exactly() -> None:
    path = shared_path("models", "mlperf_tiny_kws_dscnn_int8.tflite")
    target = load_target("stm32f469-ext")
    module = load_model(str(path))
    planned = module.clone()
    graph = graph_of(planned)
    assign_graph(graph, target, weights="qspi")
    plan(graph, target)
    check_planned(graph, target)
    assert any(isinstance(op, nn.CopyOp) for op in graph.block.ops)
    _run_both(module, planned)


def test_no_overlays_where_the_cache_holds_the_weights() -> None:
    # TinyOps: on the H743 the 16 KiB data cache holds each KWS int8 layer's weights, so copying them
    # into SRAM gains nothing; the F746's 4 KiB cache cannot hold a 4 KiB 1x1 layer plus its bias.
    path = str(shared_path("models", "mlperf_tiny_kws_dscnn_int8.tflite"))
    placement = assign_graph(graph_of(load_model(path)), load_target("stm32h743"), weights="flash")
    assert placement.overlays == []
    h743 = assign_graph(graph_of(load_model(path)), load_target("stm32h743-ext"), weights="qspi")
    f746 = assign_graph(graph_of(load_model(path)), load_target("stm32f746-ext"), weights="qspi")
    base = analyze_traffic(graph_of(load_model(path))).ops  # overlays name their consumer by its index here
    classes = {
        name: {base[o.consumer].op_class for o in p.overlays} for name, p in (("h743", h743), ("f746", f746))
    }
    assert classes["h743"] <= {"fully_connected"}  # read once: no cache can help there
    assert "conv2d_1x1" in classes["f746"]


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


@st.composite
def targets(draw: st.DrawFn, *, min_memories: int = 1, max_memories: int = 3) -> Target:
    n = draw(st.integers(min_memories, max_memories))
    mems = []
    for i in range(n):
        volatile = i == 0 or draw(st.booleans())
        mems.append(
            memory(
                f"m{i}",
                draw(st.sampled_from([256, 1024, 4096, 16384, 1 << 20])),
                kind="sram" if volatile else "flash",
                volatile=volatile,
                mb_s=draw(st.sampled_from([5.0, 50.0, 400.0, 4000.0])),
                latency_ns=draw(st.sampled_from([0.0, 20.0, 200.0])),
                leak_uw=draw(st.sampled_from([0.0, 10.0, 1000.0])),
                power_off=draw(st.booleans()),
                alignment=draw(st.sampled_from([4, 16, 32])),
            )
        )
    return board(*mems, dma=draw(st.booleans()))


PROPERTY = settings(
    max_examples=int(os.environ.get("NNOPT_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(graph_specs(max_layers=6), targets(), st.booleans())
def test_every_placement_respects_capacities_or_errors(spec, target: Target, overlays: bool) -> None:
    graph = graph_of(build_graph(spec))
    try:
        placement = assign_graph(graph, target, overlays=overlays)
    except UserError as exc:
        assert "does not fit" in str(exc)
        event("does not fit")
        return
    event(f"{min(len(placement.overlays), 2)}+ overlays")
    plan(graph, target)  # never fails once nn-assign-memspace succeeded
    check_planned(graph, target)


@PROPERTY
@given(
    graph_specs(max_layers=6),
    targets(max_memories=2),
    targets(max_memories=1),
    st.sampled_from(["latency", "energy"]),
)
def test_adding_a_memory_never_makes_the_cost_worse(
    spec, base: Target, extra: Target, objective: str
) -> None:
    # An added memory that can be powered off (or does not leak) costs nothing while unused, so more
    # choice can only help. (One that must stay powered adds its leakage to every placement.)
    new = dataclasses.replace(extra.memories[0], name="extra", power_off=True)
    bigger = dataclasses.replace(base, memories=(*base.memories, new))
    try:
        before = assign_graph(graph_of(build_graph(spec)), base, objective=objective)
    except UserError:
        return
    after = assign_graph(graph_of(build_graph(spec)), bigger, objective=objective)
    assert after.report.objective(objective) <= before.report.objective(objective) * (1 + 1e-9)


@PROPERTY
@given(graph_specs(max_layers=8), st.sampled_from([16, 32]))
def test_a_single_memory_gives_the_single_arena_plan(spec, alignment: int) -> None:
    reference = graph_of(build_graph(spec))
    plan_graph(reference, alignment=alignment, options=FAST)
    graph = graph_of(build_graph(spec))
    target = board(memory("ram", 1 << 30, alignment=alignment))
    assign_graph(graph, target)
    plan_graph(graph, alignment=alignment, options=FAST, capacities=arena_capacities(graph, target))
    want = {name: b.offset.data for name, b in nn.graph_buffers(reference).items()}
    got = {name: b.offset.data for name, b in nn.graph_buffers(graph).items()}
    assert got == want
    assert list(nn.graph_arenas(graph).values()) == list(nn.graph_arenas(reference).values())
    assert set(nn.graph_arenas(graph)) <= {"ram"}
    assert not any(isinstance(op, nn.CopyOp) for op in graph.block.ops)


def test_single_memory_preset_matches_plain_planning() -> None:
    reference = graph_of(load_model(str(MBV2_NN)))
    plan_graph(reference, options=FAST)
    graph = graph_of(load_model(str(MBV2_NN)))
    target = load_target("host")
    assign_graph(graph, target)
    plan(graph, target)
    assert nn.graph_arenas(graph) == {"ram": nn.graph_arenas(reference)["sram"]}
    assert {n: b.offset.data for n, b in nn.graph_buffers(graph).items()} == {
        n: b.offset.data for n, b in nn.graph_buffers(reference).items()
    }
    assert math.isfinite(graph_cost(graph, target).latency_s)


@st.composite
def overlay_targets(draw: st.DrawFn) -> Target:
    """A fast small memory, maybe a second RAM, and slow external flash holding the weights."""
    fast = memory("fast", draw(st.sampled_from([512, 2048, 8192, 65536])), mb_s=4000)
    ram = memory("ram", draw(st.sampled_from([1024, 1 << 20])), mb_s=400, latency_ns=10)
    slow = memory(
        "xflash",
        1 << 24,
        kind="qspi-flash",
        volatile=False,
        mb_s=draw(st.sampled_from([5.0, 50.0])),
        latency_ns=200,
    )
    mems = (fast, ram, slow) if draw(st.booleans()) else (fast, slow)
    return board(*mems, dma=draw(st.booleans()))


@settings(
    max_examples=int(os.environ.get("NNOPT_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(graph_specs(max_layers=6), overlay_targets())
def test_overlay_plans_fit_and_run_exactly(spec, target: Target) -> None:
    module = build_graph(spec)
    planned = module.clone()
    graph = graph_of(planned)
    try:
        placement = assign_graph(graph, target, weights="xflash")
    except UserError as exc:
        assert "does not fit" in str(exc)
        event("does not fit")
        return
    event(f"{min(len(placement.overlays), 3)}+ overlays")
    plan(graph, target)
    check_planned(graph, target)
    assert sum(isinstance(op, nn.CopyOp) for op in graph.block.ops) == len(placement.overlays)
    _run_both(module, planned)


def test_the_cost_of_the_written_ir_matches_the_placement() -> None:
    # The placer prices overlays before they exist; the IR it writes must cost the same.
    target = load_target("stm32f469-ext")
    graph = graph_of(load_model(str(KWS_NN)))
    placement = assign_graph(graph, target, weights="qspi")
    assert placement.overlays
    report = graph_cost(graph, target)
    assert report.latency_s == pytest.approx(placement.report.latency_s, rel=1e-12)
    assert report.energy_j == pytest.approx(placement.report.energy_j, rel=1e-12)
    assert sum(op.params for op in report.ops) == sum(
        op.params for op in analyze_traffic(graph_of(load_model(str(KWS_NN)))).ops
    )


def test_pinned_constants_that_overflow_their_memory() -> None:
    with pytest.raises(
        UserError, match=r"the constants pinned to 'sram' need 1,566,608 bytes but it holds 262,144"
    ):
        assign_graph(graph_of(load_model(str(MBV2_NN))), load_target("stm32f746"), weights="sram")
