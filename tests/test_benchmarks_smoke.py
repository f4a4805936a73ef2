"""Smoke test of the benchmark harness: tiny workloads, one repetition, into temporary files.

It checks the structure of what the harness writes (tables, numbers, JSON),
never a speed: performance targets live in BENCHMARKS.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.common import Column, Table, format_value
from benchmarks.report import compose, existing_blocks
from benchmarks.run import main
from benchmarks.sections import all_sections
from tests.conftest import shared_path


def _table_rows(markdown: str, header_start: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_sections_are_registered() -> None:
    names = [s.name for s in all_sections()]
    assert names[:4] == ["interpreter", "planning", "minimalloc", "planner-speed"]
    assert len(set(names)) == len(names)
    for s in all_sections():
        assert callable(s.module.run) and s.title


def test_table_formatting() -> None:
    table = Table("t", [Column("m", "model"), Column("b", "bytes", "bytes"), Column("r", "ratio", "ratio")])
    table.add(m="a", b=73728, r=0.5)
    table.add(m="b", b="n/a: crashed", r=None)
    text = table.markdown()
    assert "| a | 73,728 | 0.500x |" in text
    assert "| b | n/a: crashed | - |" in text
    assert format_value(True, "bool") == "yes"
    assert format_value(0.0123, "ms") == "12.3"


def test_only_one_block_is_replaced() -> None:
    sections = [(s.name, s.title) for s in all_sections()]
    first = compose(sections, {})
    blocks = existing_blocks(first)
    assert list(blocks) == [name for name, _ in sections]
    assert all("Not run yet" in b for b in blocks.values())
    edited = first.replace("Not run yet: `python -m benchmarks --only minimalloc`.", "kept text")
    again = compose(sections, {}, edited)
    assert "kept text" in again
    assert again.count("<!-- bench:") == len(sections)


def test_interpreter_and_planning_on_a_tiny_model(tmp_path: Path) -> None:
    shared_path("models", "tflm_hello_world_int8.tflite")
    pytest.importorskip("tflite_micro")
    pytest.importorskip("ai_edge_litert")
    out, raw = tmp_path / "BENCH.md", tmp_path / "bench.json"
    code = main(
        [
            "--only",
            "interpreter,planning",
            "--models",
            "hello_world_int8",
            "--repeat",
            "1",
            "--output",
            str(out),
            "--json",
            str(raw),
        ]
    )
    assert code == 0
    text = out.read_text()
    assert "## 1. Interpreter latency" in text and "## 2. Planning" in text
    assert "Not run yet: `python -m benchmarks --only minimalloc`." in text
    assert "Command: `python -m benchmarks --only interpreter,planning" in text
    header = next(line for line in text.splitlines() if line.startswith("| model | dtype |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    [cells] = _table_rows(text, "| model | dtype |")
    row = dict(zip(columns, cells, strict=True))
    assert row["model"] == "tflm_hello_world_int8"
    for key in ("nnopt ms", "LiteRT ref ms", "TFLM ms"):
        assert float(row[key]) > 0
    assert row["nnopt = TFLM"] == "yes"  # bit-exact

    data = json.loads(raw.read_text())
    [interp] = data["interpreter"]["tables"][0]["rows"]
    assert interp["nnopt"] > 0 and interp["tflm"] > 0 and interp["litert"] > 0
    assert interp["bit_exact_tflm"] is True
    [plan] = data["planning"]["tables"][0]["rows"]
    assert plan["lb"] > 0 and plan["plain"] >= plan["lb"]
    assert plan["tflm"] == plan["tflm_reimpl"]
    assert plan["outputs"] is True


def test_minimalloc_section_on_a_small_instance(tmp_path: Path) -> None:
    data = tmp_path / "instances"
    data.mkdir()
    # Three buffers: a and c never meet, b meets both; the optimum stacks b on a / c.
    (data / "tiny.csv").write_text("id,lower,upper,size\na,0,2,64\nb,1,4,32\nc,2,4,64\n")
    out, raw = tmp_path / "BENCH.md", tmp_path / "bench.json"
    args = ["--only", "minimalloc", "--minimalloc-dir", str(data), "--repeat", "1"]
    assert main([*args, "--time-limit", "1", "--output", str(out), "--json", str(raw)]) == 0
    [row] = _table_rows(out.read_text(), "| instance |")
    assert row[0] == "tiny"
    assert row[2] == "96" and row[4] == "96"  # lower bound and nnopt's arena
    [data_row] = json.loads(raw.read_text())["minimalloc"]["tables"][0]["rows"]
    assert data_row["optimal"] is True and data_row["seconds"] > 0


def test_synthetic_planner_speed_instances() -> None:
    from benchmarks.planner_speed import cnn_like, graph_text, random_intervals

    for problem in (cnn_like(), random_intervals()):
        assert len(problem) == 1000
        assert problem.lower_bound() > 0
    assert cnn_like().lower_bound() == cnn_like().lower_bound()  # seeded
    assert graph_text(6).count(" = ") == 6


def test_quantization_section_on_hello_world(tmp_path: Path) -> None:
    shared_path("models", "tflm_hello_world_f32.tflite")
    pytest.importorskip("sklearn")
    out, raw = tmp_path / "BENCH.md", tmp_path / "bench.json"
    args = [
        "--only",
        "quantization",
        "--models",
        "hello_world",
        "--quick",
        "--output",
        str(out),
        "--json",
        str(raw),
    ]
    assert main(args) == 0
    text = out.read_text()
    rows = _table_rows(text, "| model | int8 model |")
    assert [r[1] for r in rows][:2] == ["TFLite converter (different weights!)", "nnopt minmax"]
    assert "separate trainings" in text  # the float/int8 hello_world files hold different weights
    digits = _table_rows(text, "| model | int8 configuration |")
    assert digits and all(r[0].startswith("MLP") for r in digits)
    data = json.loads(raw.read_text())["quantization"]["tables"]
    nnopt_row = data[0]["rows"][1]
    assert nnopt_row["raw"]["snr"] > 10  # eight samples of a sine MLP stay close to float
    assert all(0.9 <= r["raw"]["int8_acc"] <= 1.0 for r in data[1]["rows"])
