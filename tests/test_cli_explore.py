"""`nnopt cost` and `nnopt explore`: tables, JSON, SVG, baselines, parallel sweeps, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import ROOT, assert_user_error, run_tool, shared_path

KWS_NN = str(ROOT / "examples" / "models" / "kws_dscnn.nn")
MBV2_NN = str(ROOT / "examples" / "models" / "mobilenet_v2_035.nn")


def _rows(out: str) -> dict[str, list[str]]:
    """Table rows of `nnopt explore` by configuration name (the name is the first 4-5 words)."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("w="):
            words = line.replace(" *", "").split()
            rows[" ".join(words[:4])] = words[4:]
    return rows


def test_explore_kws_on_apollo_prints_the_placement_table(tmp_path: Path) -> None:
    model = shared_path("models", "mlperf_tiny_kws_dscnn_int8.tflite")
    out_json, out_svg = tmp_path / "e.json", tmp_path / "e.svg"
    result = run_tool(
        "nnopt",
        "explore",
        str(model),
        "--target",
        "apollo4-plus",
        "--json",
        str(out_json),
        "--svg",
        str(out_svg),
    )
    assert result.code == 0, result.err
    assert "config" in result.out and "latency" in result.out and "energy" in result.out
    rows = _rows(result.out)
    # TCM only, and weights in MRAM with activations in TCM: both fit
    assert rows["w=tcm a=tcm no-ov given"][0] == "yes"
    assert rows["w=mram a=tcm ov given"][0] == "yes"
    assert "* baseline: w=tcm a=tcm no-ov given" in result.out
    data = json.loads(out_json.read_text())
    assert data["baseline"] == "w=tcm a=tcm no-ov given"
    assert data["memories"] == ["tcm", "ssram", "mram"]
    by_name = {c["config"]["name"]: c for c in data["configurations"]}
    tcm_only = by_name["w=tcm a=tcm no-ov given"]
    assert tcm_only["fits"] and tcm_only["constants"] == {"tcm": tcm_only["constants"]["tcm"]}
    assert set(tcm_only["arenas"]) == {"tcm"}
    mram_w = by_name["w=mram a=tcm ov given"]
    assert set(mram_w["constants"]) == {"mram"} and set(mram_w["arenas"]) == {"tcm"}
    # weights in MRAM (cached) cost little: within a few percent of the TCM-only baseline
    assert mram_w["latency_us"] <= tcm_only["latency_us"] * 1.05
    assert out_svg.read_text().startswith("<svg")


def test_explore_table_json_and_parallel_agree(tmp_path: Path) -> None:
    args = ["explore", KWS_NN, "--target", "stm32f746-ext", "--schedule", "given", "--weights", "flash,qspi"]
    one, two = tmp_path / "1.json", tmp_path / "2.json"
    r1 = run_tool("nnopt", *args, "--json", str(one))
    r2 = run_tool("nnopt", *args, "--json", str(two), "--jobs", "2", "--progress")
    assert r1.code == 0 and r2.code == 0, r1.err + r2.err
    assert "explore [" in r2.err and "configurations" in r2.err

    def strip(path: Path) -> list[dict[str, object]]:
        configs = json.loads(path.read_text())["configurations"]
        for c in configs:
            c.pop("seconds")
        return configs

    assert strip(one) == strip(two)
    configs = strip(one)
    assert {c["config"]["weights"] for c in configs} == {"flash", "qspi"}  # type: ignore[index]
    qspi = [c for c in configs if c["config"]["weights"] == "qspi" and c["fits"]]  # type: ignore[index]
    with_ov = [c for c in qspi if c["config"]["overlays"]]  # type: ignore[index]
    without = [c for c in qspi if not c["config"]["overlays"]]  # type: ignore[index]
    assert with_ov and without
    assert min(c["latency_us"] for c in with_ov) < min(c["latency_us"] for c in without)  # type: ignore[type-var]


def test_explore_lists_what_does_not_fit() -> None:
    result = run_tool(
        "nnopt",
        "explore",
        MBV2_NN,
        "--target",
        "stm32f469-ext",
        "--weights",
        "sdram",
        "--activations",
        "sram,sdram",
        "--overlays",
        "off",
        "--schedule",
        "given",
    )
    assert result.code == 0, result.err
    rows = _rows(result.out)
    assert rows["w=sdram a=sram no-ov given"][0] == "no"
    assert re.search(
        r"w=sdram a=sram no-ov given: the buffers pinned to 'sram' need [0-9,]+ bytes at step \d+ \(nn\.\w+ .*\) "
        r"where .* are live, but it has 262,144 \(short by [0-9,]+\)",
        result.out,
    ), result.out
    assert rows["w=sdram a=sdram no-ov given"][0] == "yes"
    # the baseline falls back to a configuration that fits
    assert "* baseline: w=sdram a=sdram no-ov given" in result.out


def test_explore_errors() -> None:
    assert_user_error(run_tool("nnopt", "explore", KWS_NN, "--target", "nope"), "unknown target 'nope'")
    assert_user_error(
        run_tool("nnopt", "explore", KWS_NN, "--target", "apollo4-plus", "--activations", "mram"),
        "--activations: 'mram' is not one of auto, ssram, tcm",
    )
    assert_user_error(
        run_tool("nnopt", "explore", KWS_NN, "--target", "apollo4-plus", "--baseline", "w=x"),
        "--baseline 'w=x' is not one of the configurations",
    )


def test_cost_per_layer_and_json(tmp_path: Path) -> None:
    out = tmp_path / "cost.json"
    result = run_tool("nnopt", "cost", KWS_NN, "--target", "stm32f746", "--json", str(out))
    assert result.code == 0, result.err
    assert "conv2d_1x1" in result.out and "depthwise_conv2d" in result.out and "latency" in result.out
    data = json.loads(out.read_text())
    assert sum(op["macs"] for op in data["ops"]) == 2_664_780
    assert data["latency_us"] > 0 and data["energy_uj"] > data["dynamic_uj"]
    assert set(data["arenas"]) <= {"dtcm", "sram"}
    assert all(op["bound"] in ("compute", "memory", "copy") for op in data["ops"])


def test_cost_of_a_placed_model_uses_its_placement(tmp_path: Path) -> None:
    planned = tmp_path / "planned.mlir"
    result = run_tool(
        "nnopt-opt",
        KWS_NN,
        "-p",
        "nn-bufferize,nn-assign-memspace{target=stm32f469-ext weights=qspi},nn-plan-arena",
        "-o",
        str(planned),
    )
    assert result.code == 0, result.err
    text = planned.read_text()
    assert "nn.copy" in text and 'nn.space = "qspi"' in text
    result = run_tool("nnopt", "cost", str(planned), "--target", "stm32f469-ext")
    assert result.code == 0, result.err
    assert "as placed in the file" in result.out and "copy (async)" in result.out
    assert_user_error(run_tool("nnopt", "cost", str(planned), "--target", "apollo4-plus"), "has no memory")
    assert_user_error(
        run_tool("nnopt", "cost", str(planned), "--target", "stm32f469-ext", "--weights", "flash"),
        "placed already",
    )


def test_plan_with_a_target_plans_one_arena_per_memory(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = run_tool(
        "nnopt",
        "plan",
        MBV2_NN,
        "--target",
        "apollo4-plus",
        "--json",
        str(out),
        "--time-limit",
        "1",
        "--node-limit",
        "2000",
    )
    assert result.code == 0, result.err
    assert "memory space 'tcm'" in result.out and "nn-assign-memspace{target=apollo4-plus}" in result.out
    data = json.loads(out.read_text())
    assert data["target"] == "apollo4-plus"
    assert set(data["spaces"]) <= {"tcm", "ssram"}
    for space in data["spaces"].values():
        assert space["capacity"] is not None and space["arena_bytes"] <= space["capacity"]
    assert_user_error(run_tool("nnopt", "plan", MBV2_NN, "--target", "stm32f469"), "does not fit 'stm32f469'")
    assert_user_error(run_tool("nnopt", "plan", MBV2_NN, "--target", "nope"), "unknown target 'nope'")
