"""Quantized models compiled to C stay bit-exact with the numpy interpreter.

``nnopt compile`` records input vectors and the interpreter's outputs in the
generated test program; ``make test`` builds it with ``-Werror`` and fails on
any differing output (or any write outside the memory plan).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, run_tool

MODELS = ROOT / "examples" / "models"

CONFIGS = [
    ("kws_dscnn.nn", []),  # float interface, per-channel, tflite_double
    ("ic_resnet8.nn", ["--interface", "quantized", "--weights", "per-tensor", "--rounding", "single"]),
    ("branching_inception.nn", ["--skip", "stem", "--method", "mse"]),  # a float conv between integer layers
]


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("make") is None, reason="needs cc and make")
@pytest.mark.parametrize(("model", "options"), CONFIGS, ids=[m for m, _ in CONFIGS])
def test_generated_c_matches_the_interpreter(tmp_path: Path, model: str, options: list[str]) -> None:
    quantized = tmp_path / "q.mlir"
    res = run_tool(
        "nnopt",
        "quantize",
        str(MODELS / model),
        "--calibration-seed",
        "0",
        "--samples",
        "8",
        "-o",
        str(quantized),
        *options,
    )
    assert res.code == 0, res.err
    assert "nn.conv2d" in quantized.read_text() and "qparams" in quantized.read_text()
    build = tmp_path / "build"
    res = run_tool("nnopt", "compile", str(quantized), "-o", str(build), "--vectors", "4")
    assert res.code == 0, res.err
    proc = subprocess.run(["make", "-C", str(build), "test"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PASS q: 4 vectors" in proc.stdout and "outputs match" in proc.stdout
