"""TFLite Micro offline plans: TFLM's problem read from the flatbuffer, the metadata writer, and the real thing.

The integration tests run stock TFLite Micro (the ``tflite-micro`` wheel) in a
child process on every int8 model of ``../shared/models`` it runs, once
unmodified and once with nnopt's plan written in: outputs must be bit-identical
on seeded inputs, and the arena head TFLM prints must be nnopt's planned arena
and no larger than TFLM's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.tflm_plan import (
    METADATA_NAME,
    ONLINE,
    plan_tflm,
    read_offline_plan,
    read_tflm_graph,
    tflm_plan_from,
    tflm_problem,
    write_offline_plan,
)
from nnopt.passes.planning.allocators import plan_buffers

from .conftest import SHARED, run_tool, shared_path
from .tflite_build import TT, OpSpec, build_model

MODELS = [
    "mlperf_tiny_ad_autoencoder_int8",
    "mlperf_tiny_ic_resnet8_int8",
    "mlperf_tiny_kws_dscnn_int8",
    "mlperf_tiny_vww_mbv1_025_int8",
    "tflm_hello_world_int8",
    "tflm_keyword_scrambled_int8",
    "tflm_micro_speech_int8",
    "tflm_person_detect_int8",
    "tflm_xtensa_mobilenet_v2_224_int8",
]


def tiny_model(variable: bool = False) -> bytes:
    """x -> FC(w) -> a -> RELU -> b; y = ADD(a, b): a lives past its first reader."""
    w = np.ones((8, 8), np.float32)
    tensors = [
        TT("x", (1, 8)),
        TT("w", (8, 8), data=w),
        TT("a", (1, 8)),
        TT("b", (1, 8)),
        TT("y", (1, 8)),
        TT("state", (1, 3), variable=variable),
    ]
    ops = [
        OpSpec("FULLY_CONNECTED", [0, 1, -1], [2], "FullyConnectedOptions", {}),
        OpSpec("RELU", [2], [3]),
        OpSpec("ADD", [2, 3], [4], "AddOptions", {}),
    ]
    return build_model(tensors, ops, inputs=[0], outputs=[4])


# --------------------------------------------------------------------------
# TFLM's problem
# --------------------------------------------------------------------------


def test_lifetimes_follow_tflm_scopes() -> None:
    graph = read_tflm_graph(tiny_model(), "tiny.tflite")
    by_name = {t.name: t for t in graph.tensors}
    assert graph.tensor_count == 6 and graph.ops == ["FULLY_CONNECTED", "RELU", "ADD"]
    # Inputs from scope 0, op k at scope k + 1, outputs to the last scope, inclusive.
    assert (by_name["x"].first, by_name["x"].last) == (0, 1)
    assert (by_name["a"].first, by_name["a"].last) == (1, 3)
    assert (by_name["b"].first, by_name["b"].last) == (2, 3)
    assert (by_name["y"].first, by_name["y"].last) == (3, 3)
    assert by_name["w"].role == "constant" and not by_name["w"].planned
    assert by_name["x"].role == "input" and by_name["y"].role == "output"
    # "state" is read and written by nobody: TFLM still allocates it (first = last = -1).
    assert (by_name["state"].first, by_name["state"].last) == (-1, -1) and by_name["state"].planned
    problem = tflm_problem(graph)
    sizes = {b.values[0]: b.size for b in problem.buffers}
    assert sizes == {"x": 32, "a": 32, "b": 32, "y": 32, "state": 16}  # 12 bytes aligned up to 16
    assert graph.scopes[0] == "graph inputs" and graph.scopes[3] == "op 2 ADD"


def test_plan_offsets_and_conflicts() -> None:
    graph = read_tflm_graph(tiny_model(variable=True), "tiny.tflite")
    tp = plan_tflm(graph)
    words = tp.words()
    assert words[:3] == [1, 1, 6] and len(words) == 3 + 6
    by_name = {t.name: t for t in graph.tensors}
    offsets = {t.name: tp.offsets[t.index] for t in graph.tensors}
    assert offsets["w"] == ONLINE and offsets["state"] == ONLINE  # constants and variables stay TFLM's
    assert by_name["state"].role == "variable"
    planned = [t for t in graph.tensors if t.planned]
    assert all(offsets[t.name] % 16 == 0 and offsets[t.name] >= 0 for t in planned)
    # TFLM's conflict relation (inclusive scopes; an op's inputs and outputs always conflict), checked directly.
    for i, a in enumerate(planned):
        for b in planned[i + 1 :]:
            if a.first <= b.last and b.first <= a.last:
                ea, eb = offsets[a.name] + 32, offsets[b.name] + 32
                assert ea <= offsets[b.name] or eb <= offsets[a.name], (a, b)
    # x, a, b are live together at scope 1..2 (a and b both read by ADD): the optimum is 3 x 32.
    assert tp.plan.arena_bytes == tp.predicted_head == 96
    assert tp.plan.proven_optimal


def test_svdf_scratch_is_modelled() -> None:
    path = shared_path("models", "tflm_keyword_scrambled_int8.tflite")
    graph = read_tflm_graph(path.read_bytes(), str(path))
    assert [t.role for t in graph.tensors].count("variable") == 7
    # Two scratch requests per int8 SVDF (feature and output accumulators), each for one scope.
    assert len(graph.scratch) == 14 and {r.op for r in graph.scratch} == {
        k for k, name in enumerate(graph.ops) if name == "SVDF"
    }
    problem = tflm_problem(graph)
    scratch = [b for b in problem.buffers if b.kind == "scratch"]
    assert len(scratch) == 14 and all(b.upper - b.lower == 1 for b in scratch)


def test_multi_subgraph_models_are_refused() -> None:
    graph = read_tflm_graph(tiny_model(), "tiny.tflite")
    graph.subgraphs = 2
    with pytest.raises(UserError, match="2 subgraphs"):
        plan_tflm(graph)


# --------------------------------------------------------------------------
# Writing the metadata
# --------------------------------------------------------------------------


def test_writer_keeps_the_model_and_replaces_old_plans() -> None:
    import tflite

    data = tiny_model()
    assert read_offline_plan(data) is None
    words = [1, 1, 6, 0, -1, 32, 64, 0, -1]
    out = write_offline_plan(data, words)
    # The original file follows a 16-byte-aligned prefix, byte for byte.
    prefix = len(out) - len(data)
    assert out[prefix:] == data and prefix % 16 == 0 and out[4:8] == b"TFL3"
    assert read_offline_plan(out) == words
    # Everything reads the same through the schema classes.
    a, b = tflite.Model.GetRootAsModel(data, 0), tflite.Model.GetRootAsModel(out, 0)
    assert b.Version() == a.Version() and b.Description() == a.Description()
    assert b.BuffersLength() == a.BuffersLength() + 1
    for i in range(a.BuffersLength()):
        assert (
            a.Buffers(i).DataAsNumpy().tolist() == b.Buffers(i).DataAsNumpy().tolist()
            if a.Buffers(i).DataLength()
            else b.Buffers(i).DataLength() == 0
        )
    sa, sb = a.Subgraphs(0), b.Subgraphs(0)
    assert [sa.Tensors(i).Name() for i in range(sa.TensorsLength())] == [
        sb.Tensors(i).Name() for i in range(sb.TensorsLength())
    ]
    assert read_tflm_graph(out).tensors == read_tflm_graph(data).tensors
    # The payload is 4-aligned int32 little-endian words (TFLM reads it as uint32_t*).
    meta = b.Metadata(0)
    assert meta.Name() == METADATA_NAME.encode()
    buf = b.Buffers(meta.Buffer())
    assert buf.DataAsNumpy().view("<i4").tolist() == words
    # Writing again replaces the entry instead of adding a second one.
    again = write_offline_plan(out, [1, 1, 6, *([16] * 6)])
    model = tflite.Model.GetRootAsModel(again, 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    assert names.count(METADATA_NAME.encode()) == 1
    assert read_offline_plan(again) == [1, 1, 6, *([16] * 6)]


def test_writer_keeps_other_metadata() -> None:
    path = shared_path("models", "tflm_hello_world_int8.tflite")
    data = path.read_bytes()
    out = write_offline_plan(data, [1, 1, 10, *range(10)])
    import tflite

    a, b = tflite.Model.GetRootAsModel(data, 0), tflite.Model.GetRootAsModel(out, 0)
    old = {
        a.Metadata(i).Name(): a.Buffers(a.Metadata(i).Buffer()).DataAsNumpy().tobytes()
        for i in range(a.MetadataLength())
    }
    new = {
        b.Metadata(i).Name(): b.Buffers(b.Metadata(i).Buffer()).DataAsNumpy().tobytes()
        for i in range(b.MetadataLength())
    }
    assert set(new) == set(old) | {METADATA_NAME.encode()}
    assert all(new[k] == v for k, v in old.items())


def test_writer_refuses_what_it_cannot_rewrite() -> None:
    import importlib

    import flatbuffers

    buf_mod, model_mod = importlib.import_module("tflite.Buffer"), importlib.import_module("tflite.Model")
    with pytest.raises(UserError, match="not a TFLite model"):
        write_offline_plan(b"\0" * 64, [1, 1, 0])
    with pytest.raises(UserError, match="not a TFLite model"):
        read_tflm_graph(tiny_model()[:10])
    with pytest.raises(UserError, match="malformed TFLite file"):
        read_tflm_graph(tiny_model()[:200])
    # A root table with a field the writer does not know (a newer schema): refused, not guessed at.
    b = flatbuffers.Builder(256)
    buf_mod.Start(b)
    empty = buf_mod.End(b)
    model_mod.StartBuffersVector(b, 1)
    b.PrependUOffsetTRelative(empty)
    buffers = b.EndVector()
    b.StartObject(9)
    model_mod.AddVersion(b, 3)
    model_mod.AddBuffers(b, buffers)
    b.PrependInt32Slot(8, 42, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    future = bytes(b.Output())
    with pytest.raises(UserError, match="field 8, unknown to nnopt's TFLite writer"):
        write_offline_plan(future, [1, 1, 0])


# --------------------------------------------------------------------------
# Stock TFLite Micro runs the plan
# --------------------------------------------------------------------------

CHILD = r"""
import json, os, sys
os.dup2(1, 2)  # TFLM prints from C++ to stderr; one ordered stream
import numpy as np
from tflite_micro.python.tflite_micro import runtime

results = {}
for path in sys.argv[1:]:
    it = runtime.Interpreter.from_file(path, arena_size=8 * 1024 * 1024)
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(2):  # twice: stateful models (variables) must agree run by run too
        # Inputs are set before every run: TFLM reuses an input's bytes once its last reader ran.
        k = 0
        while True:
            try:
                d = it.get_input_details(k)
            except Exception:
                break
            info = np.iinfo(d["dtype"])
            it.set_input(rng.integers(info.min, info.max, size=d["shape"], endpoint=True).astype(d["dtype"]), k)
            k += 1
        it.invoke()
        n = 0
        while True:
            try:
                outs.append(it.get_output(n).tolist())
            except Exception:
                break
            n += 1
    sys.stdout.flush()
    print("BEGIN", path, flush=True)
    it.print_allocations()
    sys.stdout.flush()
    sys.stderr.flush()
    print("OUTPUTS", json.dumps(outs), flush=True)
"""


def run_tflm(*paths: Path) -> dict[str, tuple[int, list]]:
    """Arena head and outputs of each model in stock TFLM (one child process; fds 1 and 2 captured)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + "\n" + proc.stderr
    out: dict[str, tuple[int, list]] = {}
    current = None
    heads: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("BEGIN "):
            current = line.split(" ", 1)[1]
        elif "Arena allocation head" in line and current is not None:
            heads[current] = int(line.split()[-2])
        elif line.startswith("OUTPUTS ") and current is not None:
            out[current] = (heads.get(current, -1), json.loads(line.split(" ", 1)[1]))
    assert set(out) == set(map(str, paths)), text[-2000:]
    return out


@pytest.fixture(scope="module")
def tflm() -> None:
    pytest.importorskip("tflite_micro")


@pytest.mark.parametrize("name", MODELS)
def test_tflm_runs_the_plan(tflm: None, tmp_path: Path, name: str) -> None:
    src = shared_path("models", f"{name}.tflite")
    data = src.read_bytes()
    tp = plan_tflm(read_tflm_graph(data, str(src)))
    dst = tmp_path / f"{name}.planned.tflite"
    dst.write_bytes(write_offline_plan(data, tp.words()))
    results = run_tflm(src, dst)
    head_before, out_before = results[str(src)]
    head_after, out_after = results[str(dst)]
    assert out_after == out_before  # bit-exact
    assert head_after == tp.plan.arena_bytes == tp.predicted_head
    assert head_after <= head_before
    assert head_before == tp.tflm_head  # nnopt's replay of TFLM's greedy is exact
    if name == "mlperf_tiny_vww_mbv1_025_int8":
        assert (head_before, head_after) == (73_728, 55_296)


def test_tflm_reads_the_offsets(tflm: None, tmp_path: Path) -> None:
    """Control: the same plan moved up by 4096 B moves TFLM's head by 4096 B (the metadata is what counts)."""
    src = shared_path("models", "tflm_person_detect_int8.tflite")
    data = src.read_bytes()
    tp = plan_tflm(read_tflm_graph(data, str(src)))
    shifted = [o + 4096 if o != ONLINE else o for o in tp.offsets]
    dst = tmp_path / "shifted.tflite"
    dst.write_bytes(write_offline_plan(data, [1, 1, len(shifted), *shifted]))
    results = run_tflm(src, dst)
    assert results[str(dst)][0] == tp.plan.arena_bytes + 4096
    assert results[str(dst)][1] == results[str(src)][1]


def test_cli_write_tflite(tflm: None, tmp_path: Path) -> None:
    src = shared_path("models", "mlperf_tiny_vww_mbv1_025_int8.tflite")
    dst, js = tmp_path / "vww.tflite", tmp_path / "vww.json"
    r = run_tool(
        "nnopt", "plan", str(src), "--write-tflite", str(dst), "--json", str(js), "--time-limit", "2"
    )
    assert r.code == 0, r.err
    doc = json.loads(js.read_text())
    assert doc["kind"] == "tflm" and doc["arena_bytes"] == doc["lower_bound"] == 55_296
    assert doc["tflm"]["tflm_head"] == 73_728 and doc["tflm"]["predicted_head"] == 55_296
    assert read_offline_plan(dst.read_bytes()) == [1, 1, 89, *doc["tflm"]["offsets"]]
    assert "TFLM's own head       73,728 B" in r.out and "head with this plan   55,296 B" in r.out
    assert "saving                18,432 B (25.0 %)" in r.out
    # The report's buffer table names the tensors by index and holds their names.
    assert "t0" in r.out and "input_1_int8" in r.out
    # Too small a capacity: one error, nothing written.
    dst.unlink()
    r = run_tool("nnopt", "plan", str(src), "--write-tflite", str(dst), "--capacity", "50000")
    assert r.code == 1 and "proven infeasible" in r.err and not dst.exists()
    assert "Traceback" not in r.err


def test_scratch_replay_predicts_tflm(tflm: None, tmp_path: Path) -> None:
    """A plan that leaves scratch gaps elsewhere (no reuse at all): TFLM's online scratch placement is replayed."""
    src = shared_path("models", "tflm_keyword_scrambled_int8.tflite")
    data = src.read_bytes()
    graph = read_tflm_graph(data, str(src))
    best = plan_tflm(graph)
    linear = tflm_plan_from(graph, plan_buffers(best.plan.problem, "linear"))
    planned = [t for t in graph.tensors if t.planned]
    assert [linear.offsets[t.index] for t in planned] == linear.plan.offsets[: len(planned)]
    # The scratch buffers go into TFLM's first fitting gaps, not where the linear plan put them.
    assert linear.predicted_head < linear.plan.arena_bytes
    dst = tmp_path / "linear.tflite"
    dst.write_bytes(write_offline_plan(data, linear.words()))
    results = run_tflm(src, dst)
    assert results[str(dst)][0] == linear.predicted_head
    assert results[str(dst)][1] == results[str(src)][1]


def test_shared_models_listed() -> None:
    """Every int8 model TFLM runs in ../shared/models is covered above."""
    folder = SHARED / "models"
    if not folder.exists():
        pytest.skip("../shared is absent")
    int8 = sorted(p.stem for p in folder.glob("*int8*.tflite"))
    assert int8 == sorted(MODELS)
