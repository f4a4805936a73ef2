"""``nnopt analog``: the report, its JSON, SVG and conductance export, and one error per mistake."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .conftest import assert_user_error, run_tool, shared_path
from .test_analog_mapping import SMALL


def test_ad_autoencoder_report(tmp_path: Path) -> None:
    model = shared_path("models", "mlperf_tiny_ad_autoencoder_int8.tflite")
    out = tmp_path / "r.json"
    svg = tmp_path / "grid.svg"
    result = run_tool(
        "nnopt", "analog", str(model), "--tiles", "membrain-like", "--seeds", "2", "--samples", "4",
        "--json", str(out), "--svg", str(svg), "--export", str(tmp_path / "chip"),
    )  # fmt: skip
    assert result.code == 0, result.err
    text = result.out
    assert "tiles: 5 packed; per-layer mapping needs 14" in text
    assert "float (dequantized twin)" in text and "int8 model (numpy interpreter)" in text
    assert "analog MACs" in text and "digital estimate on stm32f746" in text
    data = json.loads(out.read_text())
    assert data["tiles"] == 5 and data["per_layer_tiles"] == 14 and len(data["layers"]) == 10
    first = data["layers"][0]
    assert (first["rows"], first["cols"], first["cells"]) == (640, 128, 640 * 128 * 2)
    assert len(data["accuracy"]["snr_vs_float_db"]["values"]) == 2
    assert data["energy"]["total_j"] > 0
    assert svg.read_text().startswith("<svg") and "tile 4" in svg.read_text()
    # conductance targets: every block's weights come back from the arrays and the column scales
    chip = json.loads((tmp_path / "chip" / "tiles.json").read_text())
    arrays = np.load(tmp_path / "chip" / "conductances.npz")
    assert len(chip["tiles"]) == 5
    block = chip["tiles"][0]["blocks"][0]
    (r0, r1), (c0, c1) = block["tile_rows"], block["tile_cols"]
    g = arrays["tile0_g_pos"][r0:r1, c0:c1] - arrays["tile0_g_neg"][r0:r1, c0:c1]
    levels = arrays["tile0_level"][r0:r1, c0:c1]
    assert np.allclose(g * 15, levels, atol=1e-5) and np.abs(levels).max() == 15
    assert len(block["column_scale"]) == c1 - c0


def test_mapping_only_per_layer_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "small.nn"
    path.write_text(SMALL)
    result = run_tool(
        "nnopt",
        "analog",
        str(path),
        "--seeds",
        "0",
        "--no-pack",
        "--set",
        "tile.rows=16",
        "--set",
        "tile.cols=16",
    )
    assert result.code == 0, result.err
    assert "per-layer (one tile per block)" in result.out and "accuracy over" not in result.out
    ideal = run_tool("nnopt", "analog", str(path), "--tiles", "ideal", "--seeds", "1", "--samples", "2")
    assert ideal.code == 0, ideal.err
    float_line = next(line for line in ideal.out.splitlines() if line.startswith("float"))
    assert float(float_line.split()[1]) >= 100  # ideal tiles: the float reference, to rounding


def test_premapped_module_keeps_its_mapping(tmp_path: Path) -> None:
    path = tmp_path / "small.nn"
    path.write_text(SMALL)
    mapped = run_tool(
        "nnopt-opt", str(path), "-p", "nn-map-analog{tiles=ideal pack=false}", "-o", str(tmp_path / "m.mlir")
    )
    assert mapped.code == 0, mapped.err
    result = run_tool("nnopt", "analog", str(tmp_path / "m.mlir"), "--seeds", "1", "--samples", "2")
    assert result.code == 0, result.err
    assert "tile target 'ideal'" in result.out and "tiles: 5 per-layer" in result.out


def test_mistakes(tmp_path: Path) -> None:
    path = tmp_path / "small.nn"
    path.write_text(SMALL)
    assert_user_error(run_tool("nnopt", "analog", str(path), "--tiles", "nope"), "unknown tile target 'nope'")
    assert_user_error(
        run_tool("nnopt", "analog", str(path), "--set", "dac.bits=99"), "DAC bits must be between"
    )
    assert_user_error(run_tool("nnopt", "analog", str(path), "--seeds", "-1"), "--seeds must be at least 0")
    assert_user_error(
        run_tool("nnopt", "analog", str(path), "--json", str(tmp_path / "no" / "x.json")), "does not exist"
    )
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((2, 2), dtype=np.float32))
    assert_user_error(run_tool("nnopt", "analog", str(path), "--input", str(bad)), "expected [1, 12, 12, 3]")
    good = tmp_path / "ok.npy"
    np.save(good, np.zeros((3, 1, 12, 12, 3), dtype=np.float32))
    ok = run_tool("nnopt", "analog", str(path), "--input", str(good), "--seeds", "1", "--tiles", "ideal")
    assert ok.code == 0, ok.err
    assert "1 seed(s) x 3 input(s)" in ok.out
