"""Smoke test of the analog benchmark section: tiny workloads, into temporary files (structure, not speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.run import main

from .conftest import shared_path


def test_analog_section_quick(tmp_path: Path) -> None:
    shared_path("models", "tflm_hello_world_f32.tflite")
    pytest.importorskip("sklearn")
    out, raw = tmp_path / "BENCH.md", tmp_path / "bench.json"
    args = [
        "--only",
        "analog",
        "--models",
        "hello_world",
        "--quick",
        "--output",
        str(out),
        "--json",
        str(raw),
    ]
    assert main(args) == 0
    tables = json.loads(raw.read_text())["analog"]["tables"]
    tiles, accuracy, cross = (t["rows"] for t in tables)
    assert {r["model"] for r in tiles} == {"tflm_hello_world_f32", "tflm_hello_world_int8"}
    assert all(r["packed256"] <= r["flat256"] == 3 for r in tiles)
    assert [r["model"] for r in accuracy] == ["tflm_hello_world_f32"]
    assert len(cross) >= 3 and all("±" in r["nnopt"] for r in cross)
    text = out.read_text()
    assert "nnopt's simulator vs aihwkit" in text and "<!-- /bench:analog -->" in text
