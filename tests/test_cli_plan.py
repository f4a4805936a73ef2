"""``nnopt plan``: reports, JSON, SVG and CSV of model plans and bare buffer sets; fit-or-fail; errors."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnopt.compiler import cli
from nnopt.compiler.report.plan_svg import render_svg
from nnopt.compiler.report.plan_text import SpaceReport, render_text, report_json, timeline
from nnopt.passes.planning.allocators import Options, plan_buffers
from nnopt.passes.planning.problem import Buffer, Problem, read_csv

from .conftest import ROOT, assert_user_error, run_tool, shared_path

KWS = ROOT / "examples" / "models" / "kws_dscnn.nn"

# Nine buffers whose liveness lower bound (19) cannot be reached: the optimum is 20.
GAP_CSV = """id,lower,upper,size
a,7,9,8
b,3,7,2
c,5,7,6
d,1,5,10
e,4,8,6
f,8,10,10
g,3,8,1
h,6,8,3
i,1,2,8
"""

SVG = "{http://www.w3.org/2000/svg}"


def nnopt(*args: str):
    return run_tool("nnopt", "plan", *args)


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_disjoint(buffers: list[dict]) -> None:
    """No two buffers live at the same step share a byte (checked pairwise, independently)."""
    for i, a in enumerate(buffers):
        for b in buffers[i + 1 :]:
            if a["first"] <= b["last"] and b["first"] <= a["last"]:
                assert (
                    a["offset"] + a["padded_size"] <= b["offset"]
                    or b["offset"] + b["padded_size"] <= a["offset"]
                ), (a, b)


def live_peak(buffers: list[dict]) -> int:
    """Most bytes in use at one step; a shaped buffer counts the bytes of its live parts."""

    def used(b: dict, s: int) -> int:
        if "parts" not in b:
            return b["padded_size"] if b["first"] <= s <= b["last"] else 0
        covered: set[int] = set()
        for p in b["parts"]:
            if p["first"] <= s <= p["last"]:
                covered.update(range(p["start"], p["end"]))
        return len(covered)

    steps = {s for b in buffers for s in range(b["first"], b["last"] + 1)}
    return max(sum(used(b, s) for b in buffers) for s in steps)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


def test_model_report_json_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js, svg = tmp_path / "plan.json", tmp_path / "plan.svg"
    code, out, err = main(capsys, str(KWS), "--json", str(js), "--svg", str(svg), "--time-limit", "2")
    assert code == 0, err
    doc = json.loads(js.read_text())
    buffers = doc["buffers"]
    # The numbers agree with each other and with an independent recomputation.
    assert doc["arena_bytes"] == max(b["offset"] + b["padded_size"] for b in buffers)
    assert doc["lower_bound"] == live_peak(buffers)
    assert doc["arena_bytes"] >= doc["lower_bound"] > 0
    assert doc["proven_optimal"] == (doc["arena_bytes"] == doc["proven_lower_bound"])
    assert_disjoint(buffers)
    assert {"name", "size", "offset", "first", "last", "kind", "values"} <= set(buffers[0])
    assert doc["graph"] == "kws_dscnn" and doc["pipeline"][-1] == "nn-plan-arena"
    assert "nn-bufferize" in doc["pipeline"]
    assert set(doc["spaces"]) == {"sram"} and doc["spaces"]["sram"]["arena_bytes"] == doc["arena_bytes"]
    assert isinstance(doc["allocator"], str) and doc["seconds"] >= 0
    # Every graph input and output is held by some buffer.
    held = {v for b in buffers for v in b["values"]}
    assert {"audio", "probs"} <= held

    # The terminal report says the same numbers.
    assert f"liveness lower bound  {doc['lower_bound']:,} B" in out
    assert f"arena                 {doc['arena_bytes']:,} B" in out
    assert "allocator" in out and "planning time" in out
    for b in buffers:
        assert b["name"] in out
    # Timeline: rows cover every step once (steps with the same live buffers share a row), peak marked once.
    rows = [line for line in out.splitlines() if re.match(r"^\s+\d+(-\d+)?  [.0-9a-zA-Z]{80}  ", line)]
    steps = max(b["last"] for b in buffers) + 1
    covered = []
    for r in rows:
        label = r.split()[0]
        lo, _, hi = label.partition("-")
        covered += range(int(lo), int(hi or lo) + 1)
    assert covered == list(range(steps))
    assert sum("<- peak" in r for r in rows) == 1
    peak_row = next(r for r in rows if "<- peak" in r)
    assert f"{doc['lower_bound'] / 1024:,.1f}K" in peak_row

    # SVG: well-formed, one rectangle with a tooltip per buffer.
    root = ET.fromstring(svg.read_text())
    groups = [
        g
        for g in root.iter(f"{SVG}g")
        if g.find(f"{SVG}title") is not None and g.find(f"{SVG}rect") is not None
    ]
    assert len(groups) == len(buffers)
    tips = " ".join(g.find(f"{SVG}title").text or "" for g in groups)
    for b in buffers:
        assert f"{b['name']}: {b['size']:,} B" in tips
    assert f"wrote {js}" in out and f"wrote {svg}" in out


def test_no_schedule_no_merge_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "p.json"
    code, out, err = main(
        capsys, str(KWS), "--no-schedule", "--no-merge", "--json", str(js), "--time-limit", "1"
    )
    assert code == 0, err
    doc = json.loads(js.read_text())
    assert "nn-schedule" not in doc["pipeline"] and "nn-merge-buffers" not in doc["pipeline"]
    assert "nn-schedule (switched off)" in doc["skipped"]
    assert "nn-merge-buffers (switched off)" in doc["skipped"]
    # Without merging, every buffer holds exactly one value.
    assert all(len(b["values"]) == 1 for b in doc["buffers"])
    assert "switched off" in out


def test_capacity_model_fits_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "p.json"
    code, _, err = main(capsys, str(KWS), "--json", str(js), "--time-limit", "1")
    assert code == 0, err
    arena = json.loads(js.read_text())["arena_bytes"]
    code, out, err = main(capsys, str(KWS), "--capacity", str(arena), "--time-limit", "1")
    assert code == 0, err
    assert "fits, 0 B to spare" in out
    js.unlink()
    r = nnopt(str(KWS), "--capacity", f"sram={arena - 16}", "--time-limit", "1", "--json", str(js))
    assert_user_error(r, "do not fit 'sram' capacity", "proven infeasible", "the peak is at step", "are live")
    assert not js.exists()  # nothing half-written
    assert len(r.err.strip().splitlines()) == 1


# --------------------------------------------------------------------------
# Bare buffer sets
# --------------------------------------------------------------------------


def test_buffers_csv_plan_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "gap.csv"
    src.write_text(GAP_CSV)
    out_csv, js = tmp_path / "out.csv", tmp_path / "out.json"
    code, out, err = main(
        capsys, "--buffers", str(src), "--output", str(out_csv), "--json", str(js), "--time-limit", "2"
    )
    assert code == 0, err
    doc = json.loads(js.read_text())
    assert doc["lower_bound"] == 19 and doc["arena_bytes"] == 20  # the bound is not reachable
    assert doc["proven_optimal"] and doc["proven_lower_bound"] == 20
    assert doc["alignment"] == 1
    assert_disjoint(doc["buffers"])
    assert "yes, proven (exact search)" in out
    # The written CSV holds the plan; read back, its offsets pin the same arena.
    planned = read_csv(out_csv.read_text(), str(out_csv))
    assert [b.offset for b in planned.buffers] == [b["offset"] for b in doc["buffers"]]
    code, _, err = main(capsys, "--buffers", str(out_csv), "--json", str(js))
    assert code == 0, err
    assert json.loads(js.read_text())["arena_bytes"] == 20


def test_buffers_alignment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "b.csv"
    src.write_text("id,lower,upper,size\nx,0,2,3\ny,1,3,5\n")
    js = tmp_path / "b.json"
    code, _, err = main(capsys, "--buffers", str(src), "--alignment", "8", "--json", str(js))
    assert code == 0, err
    doc = json.loads(js.read_text())
    assert doc["lower_bound"] == 16 and doc["arena_bytes"] == 16
    assert all(b["offset"] % 8 == 0 for b in doc["buffers"])


def test_capacity_fit_or_fail_messages(tmp_path: Path) -> None:
    src = tmp_path / "gap.csv"
    src.write_text(GAP_CSV)
    ok = nnopt("--buffers", str(src), "--capacity", "20", "--time-limit", "2")
    assert ok.code == 0 and "capacity              20 B: fits" in ok.out
    # Below the liveness bound: proven at once.
    r = nnopt("--buffers", str(src), "--capacity", "18")
    assert_user_error(r, "proven infeasible: the liveness lower bound is 19 bytes", "peak is at step")
    # At the bound: only the exhaustive search can tell.
    r = nnopt("--buffers", str(src), "--capacity", "19", "--time-limit", "2")
    assert_user_error(r, "proven infeasible by exhaustive search")
    assert len(r.err.strip().splitlines()) == 1


def test_capacity_not_found_within_limit(tmp_path: Path) -> None:
    # A hard MiniMalloc instance that fits 1 MiB; one search node cannot show it.
    path = shared_path("benchmarks", "minimalloc", "challenging_A.csv")
    r = nnopt(
        "--buffers",
        str(path),
        "--capacity",
        "1048576",
        "--allocator",
        "tflm",
        "--node-limit",
        "1",
        "--time-limit",
        "5",
    )
    assert_user_error(r, "no plan found within the 1-node limit", "raise --node-limit", "best plan")


# --------------------------------------------------------------------------
# Errors: one line, exit 1, nothing written
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["missing.nn"], ["cannot read 'missing.nn': no such file"]),
        ([], ["give a MODEL to plan, or a buffer set"]),
        ([str(KWS), "--allocator", "nope"], ["unknown allocator 'nope'", "portfolio"]),
        ([str(KWS), "--capacity", "-5"], ["--capacity must be a non-negative number of bytes, got -5"]),
        ([str(KWS), "--capacity", "lots"], ["expected a number of bytes"]),
        ([str(KWS), "--capacity", "flash=100"], ["unknown memory space(s) flash", "spaces: sram"]),
        ([str(KWS), "--time-limit", "-1"], ["--time-limit must be a non-negative"]),
        ([str(KWS), "--alignment", "12"], ["--alignment must be a power of two, got 12"]),
        ([str(KWS), "--write-tflite", "x.tflite"], ["--tflm and --write-tflite need a .tflite MODEL"]),
        ([str(KWS), "--json", "/no/such/dir/p.json"], ["--json '/no/such/dir/p.json': folder"]),
    ],
)
def test_bad_options(capsys: pytest.CaptureFixture[str], args: list[str], fragments: list[str]) -> None:
    code, out, err = main(capsys, *args)
    assert code == 1, (out, err)
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in err


def test_garbage_model_and_bad_csv(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(bytes(range(256)) * 3)
    js = tmp_path / "p.json"
    r = nnopt(str(junk), "--json", str(js))
    assert_user_error(r, "junk.tflite")
    r = nnopt(str(junk), "--tflm", "--json", str(js))
    assert_user_error(r, "not a TFLite model")
    assert not js.exists()

    bad = tmp_path / "bad.csv"
    bad.write_text("id,lower,upper,size\na,0,2,10\nb,1,x,5\n")
    r = nnopt("--buffers", str(bad))
    assert_user_error(r, f"{bad}:3:1: error: non-integer field")
    bad.write_text("id,lower,upper,size\na,0,2,10\nb,3,2,5\n")
    r = nnopt("--buffers", str(bad))
    assert_user_error(r, f"{bad}:3:1: error: buffer 'b' needs size > 0 and lower < upper")
    bad.write_text("name,start,end\n")
    assert_user_error(nnopt("--buffers", str(bad)), f"{bad}:1:1: error: header must name the columns")
    bad.write_bytes(b"\xff\xfe\x00garbage")
    assert_user_error(nnopt("--buffers", str(bad)), "not a text (CSV) file")
    assert_user_error(nnopt("--buffers", str(tmp_path / "none.csv")), "no such file")
    assert_user_error(nnopt(str(KWS), "--buffers", str(bad)), "not both")


# --------------------------------------------------------------------------
# Renderers on random plans
# --------------------------------------------------------------------------


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    n = draw(st.integers(1, 40))
    buffers = []
    for i in range(n):
        lower = draw(st.integers(0, 30))
        upper = draw(st.integers(lower + 1, lower + 12))
        buffers.append(
            Buffer(f"b{i}", draw(st.integers(1, 5000)), lower, upper, draw(st.sampled_from([1, 4, 16])))
        )
    return Problem(buffers)


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(20, 120))
def test_renderers_agree_with_the_plan(problem: Problem, width: int) -> None:
    plan = plan_buffers(problem, "portfolio", Options(time_limit=0.05, exact=False))
    rep = SpaceReport("sram", plan)
    # Timeline: every row's live total is the sum of the buffers live there, and a row only shows
    # letters of buffers live in it.
    rows = {r.letter: r for r in rep.rows()}
    text = timeline(rep, width, max_rows=0)
    for line in text.splitlines()[1:]:
        m = re.match(rf"^\s+(\d+)(?:-(\d+))?  (\S{{{width}}})\s+([\d,.]+)K", line)
        assert m, line
        step = int(m.group(1))
        live = [b for b in problem.buffers if b.lower <= step < b.upper]
        assert float(m.group(4).replace(",", "")) == pytest.approx(
            sum(b.padded_size for b in live) / 1024, abs=0.06
        )
        names = {b.name for b in live}
        for ch in set(m.group(3)) - {"."}:
            assert any(r.name in names for r in rows.values() if r.letter == ch), (ch, line)
    # JSON mirrors the plan exactly.
    doc = report_json([rep], {"input": "x"})
    assert doc["arena_bytes"] == plan.arena_bytes and doc["lower_bound"] == problem.lower_bound()
    assert [b["offset"] for b in doc["buffers"]] == plan.offsets
    assert_disjoint(doc["buffers"])
    # SVG parses and has a tooltip rectangle per buffer.
    root = ET.fromstring(render_svg([rep], 't <&> "q"'))
    tipped = [
        g
        for g in root.iter(f"{SVG}g")
        if g.find(f"{SVG}title") is not None and g.find(f"{SVG}rect") is not None
    ]
    assert len(tipped) == len(problem.buffers)


def test_several_spaces_json_and_text() -> None:
    a = plan_buffers(Problem([Buffer("x", 10, 0, 2, 1), Buffer("y", 6, 1, 3, 1)]), "tflm")
    b = plan_buffers(Problem([Buffer("w", 100, 0, 1, 1)]), "tflm")
    reps = [SpaceReport("sram", a), SpaceReport("flash", b)]
    doc = report_json(reps, {})
    assert doc["arena_bytes"] == 16 + 100 and doc["lower_bound"] == 116
    assert set(doc["spaces"]) == {"sram", "flash"}
    assert {(x["name"], x["space"]) for x in doc["buffers"]} == {("x", "sram"), ("y", "sram"), ("w", "flash")}
    text = render_text(reps, "two")
    assert "memory space 'sram'" in text and "memory space 'flash'" in text
    root = ET.fromstring(render_svg(reps, "two"))
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "space"]) == 2


def test_timeline_row_limit_keeps_the_peak() -> None:
    problem = Problem([Buffer(f"b{i}", 16 + (i == 77) * 1000, i, i + 2, 16) for i in range(300)])
    rep = SpaceReport("sram", plan_buffers(problem, "tflm"))
    text = timeline(rep, 40, max_rows=20)
    assert "<- peak" in text
    assert "rows shown; --timeline-rows 0 shows all" in text
    assert len(text.splitlines()) <= 1 + 21 + 1
