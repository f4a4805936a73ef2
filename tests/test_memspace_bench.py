"""Smoke test of the memspace benchmark section (fit study, overlays, Apollo table) on KWS."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.run import main

from .conftest import shared_path


def test_memspace_section_on_kws(tmp_path: Path) -> None:
    shared_path("models", "mlperf_tiny_kws_dscnn_int8.tflite")
    out, raw = tmp_path / "BENCH.md", tmp_path / "bench.json"
    args = [
        "--only",
        "memspace",
        "--models",
        "kws_dscnn_int8",
        "--quick",
        "--output",
        str(out),
        "--json",
        str(raw),
    ]
    assert main(args) == 0
    text = out.read_text()
    assert "Fits the on-chip memories?" in text and "Fit rates" in text and "Overlays (TinyOps)" in text
    tables = {t["title"]: t for t in json.loads(raw.read_text())["memspace"]["tables"]}
    sizes = next(t for title, t in tables.items() if title.startswith("Activation memory"))
    row = sizes["rows"][0]
    assert row["model"] == "mlperf_tiny_kws_dscnn_int8"
    assert row["weights"] == 24_368 and row["packed"] == 16_000 and row["naive"] > row["packed"]
    fit = next(t for title, t in tables.items() if title.startswith("Fits"))
    assert fit["rows"][0]["apollo4-plus"] == "yes / yes / yes"
    apollo = next(t for title, t in tables.items() if "Apollo4" in title)
    by_config = {(r["weights"], r["activations"]): r for r in apollo["rows"]}
    assert by_config[("tcm", "tcm")]["fits"] and by_config[("mram", "tcm")]["fits"]
    overlays = next(t for title, t in tables.items() if title.startswith("Overlays"))
    kws = overlays["rows"][0]
    # no data cache on the F469: overlays from QSPI pay off; the H743's cache holds the weights
    assert kws["stm32f469-ext_on"] < kws["stm32f469-ext_off"]
    assert abs(kws["stm32h743-ext_gain"]) < 0.01
