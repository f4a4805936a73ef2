"""``nnopt quantize``: the quantized IR, the per-layer report, JSON, and one error per mistake."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .conftest import ROOT, assert_user_error, run_tool, shared_path

KWS = str(ROOT / "examples" / "models" / "kws_dscnn.nn")


def test_resnet8_report_and_run(tmp_path: Path) -> None:
    model = shared_path("models", "mlperf_tiny_ic_resnet8_f32.tflite")
    out = tmp_path / "ic.mlir"
    res = run_tool("nnopt", "quantize", str(model), "--calibration-seed", "0", "-o", str(out), "--report")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer") and "SNR dB" in line)
    rows = []
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    assert len(rows) == 16  # every op of ResNet-8 but the constants
    snrs = [math.inf if line_snr(r) == "exact" else float(line_snr(r)) for r in rows]
    assert snrs == sorted(snrs)  # worst layers first
    assert "synthetic" in res.out  # synthetic calibration is labelled
    assert "top-1 agreement" in res.out
    run = run_tool("nnopt", "run", str(out), "--seed", "1")
    assert run.code == 0, run.err
    assert "output Identity: f32[1, 10]" in run.out


def line_snr(row: list[str]) -> str:
    """The SNR column of a report row: the 4 columns after the type hold SNR, cosine, max err, LSB."""
    # row: name, op, i8, s=.., zp=.., SNR, cosine, max err, LSB[, (float: ...)]
    index = next(i for i, cell in enumerate(row) if cell.startswith("zp=") or cell == "f32") + 1
    return row[index]


def test_json_report_and_options(tmp_path: Path) -> None:
    out, doc_path = tmp_path / "kws.mlir", tmp_path / "kws.json"
    res = run_tool(
        "nnopt",
        "quantize",
        KWS,
        "--calibration-seed",
        "3",
        "--samples",
        "8",
        "-o",
        str(out),
        "--json",
        str(doc_path),
        "--skip",
        "dw2",
        "--method",
        "percentile",
        "--weights",
        "per-tensor",
    )
    assert res.code == 0, res.err
    assert "float: dw2 (depthwise_conv2d: skipped)" in res.out
    doc = json.loads(doc_path.read_text())
    assert doc["options"]["method"] == "percentile" and doc["options"]["synthetic_calibration"] is True
    (graph,) = doc["graphs"]
    assert graph["samples"] == 8 and graph["kept_float"] == [
        {"name": "dw2", "op": "nn.depthwise_conv2d", "reason": "skipped"}
    ]
    snrs = [math.inf if layer["snr_db"] == "inf" else layer["snr_db"] for layer in graph["layers"]]
    assert snrs == sorted(snrs)
    (output,) = graph["outputs"]
    assert output["name"] == "probs" and output["classifier"] and 0.0 <= output["top1_agreement"] <= 1.0
    assert "nn.quantize" in out.read_text() and "per-axis" not in out.read_text()


def test_calibration_file(tmp_path: Path) -> None:
    calib = tmp_path / "calib.npz"
    np.savez(calib, audio=np.random.default_rng(0).standard_normal((6, 1, 49, 10, 1)).astype(np.float32))
    out = tmp_path / "kws.mlir"
    res = run_tool(
        "nnopt", "quantize", KWS, "--calibration", str(calib), "-o", str(out), "--interface", "quantized"
    )
    assert res.code == 0, res.err
    assert "calibration: calib.npz, 6 samples" in res.out and "synthetic" not in res.out
    run = run_tool("nnopt", "run", str(out), "--seed", "0")
    assert run.code == 0 and "real values" in run.out


def test_errors_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never.mlir"
    cases = [
        (["--calibration-seed", "0", "--skip", "nope"], "skip: no op named 'nope'"),
        (["--calibration", str(tmp_path / "missing.npz")], "calibration file"),
        (["--calibration-seed", "0", "--percentile", "10", "--method", "percentile"], "percentile must be"),
        (["--calibration-seed", "0", "--input-range", "abc"], "input range 'abc' must be LO:HI"),
        (["--calibration-seed", "-2"], "--calibration-seed must be a non-negative integer"),
    ]
    for extra, message in cases:
        res = run_tool("nnopt", "quantize", KWS, "-o", str(out), *extra)
        assert_user_error(res, message)
        assert len(res.err.strip().splitlines()) == 1, res.err
        assert not out.exists()
    bad_dir = run_tool(
        "nnopt", "quantize", KWS, "--calibration-seed", "0", "-o", str(tmp_path / "no" / "x.mlir")
    )
    assert_user_error(bad_dir, "does not exist")
