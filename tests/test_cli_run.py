"""``nnopt run``: outputs, saved files, dumps, and one clear error per mistake."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nnopt.compiler import cli
from nnopt.compiler.diagnostics import UserError

from .conftest import ROOT, Result, assert_user_error, run_tool

KWS = str(ROOT / "examples" / "models" / "kws_dscnn.nn")

TWO_BY_TWO = """model pair
input a: f32[2, 3]
input b: f32[1, 3]
file = add(a, b)
diff = sub(a, b, activation=relu)
output file, diff
"""

QUANTIZED = """nn.graph @q(%x: tensor<2x3x!quant.uniform<i8:f32, 0.5:-1>> {nn.name = "x"}) -> (tensor<2x3xf32> {nn.name = "y"}, tensor<1x3x!quant.uniform<i8:f32, 0.5:-1>> {nn.name = "row"}) {
  %y = nn.dequantize %x : (tensor<2x3x!quant.uniform<i8:f32, 0.5:-1>>) -> tensor<2x3xf32>
  %row = nn.mean %x {axes = array<i64: 0>, keep_dims} : (tensor<2x3x!quant.uniform<i8:f32, 0.5:-1>>) -> tensor<1x3x!quant.uniform<i8:f32, 0.5:-1>>
  nn.output %y, %row : tensor<2x3xf32>, tensor<1x3x!quant.uniform<i8:f32, 0.5:-1>>
}
"""

TWO_GRAPHS = """nn.graph @first(%x: tensor<2xf32>) -> tensor<2xf32> {
  %y = nn.relu %x : (tensor<2xf32>) -> tensor<2xf32>
  nn.output %y : tensor<2xf32>
}
nn.graph @second(%x: tensor<2xf32>) -> tensor<2xf32> {
  %y = nn.tanh %x : (tensor<2xf32>) -> tensor<2xf32>
  nn.output %y : tensor<2xf32>
}
"""


def nnopt_run(*args: str, cwd: Path | None = None) -> Result:
    return run_tool("nnopt", "run", *args, cwd=cwd)


@pytest.fixture
def pair(tmp_path: Path) -> Path:
    path = tmp_path / "pair.nn"
    path.write_text(TWO_BY_TWO)
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.save(tmp_path / "b.npy", np.array([[1.0, 10.0, 2.0]]))  # float64: converted
    return path


# --------------------------------------------------------------------------
# The must-show: the KWS model runs, and survives nnopt-opt to .mlir and back
# --------------------------------------------------------------------------


def test_kws_example_runs_and_prints_outputs() -> None:
    result = nnopt_run(KWS, "--seed", "0")
    assert result.code == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    assert lines[0] == f"graph @kws_dscnn ({KWS})"
    assert lines[1] == "input  audio: f32[1, 49, 10, 1] <- random (seed 0)"
    assert lines[2].startswith("output probs: f32[1, 12]  min ")
    assert " argmax " in lines[2]
    # The probabilities are printed (12 values) and sum to 1.
    printed = " ".join(lines[3:]).strip().strip("[]")
    values = [float(v) for v in printed.split(",")]
    assert len(values) == 12 and abs(sum(values) - 1) < 1e-4


def test_kws_through_nnopt_opt_to_mlir_and_back_gives_identical_outputs(tmp_path: Path) -> None:
    mlir = tmp_path / "kws.mlir"
    generic = tmp_path / "kws_generic.mlir"
    opt = run_tool("nnopt-opt", KWS, "-o", str(mlir))
    assert opt.code == 0, opt.err
    opt = run_tool("nnopt-opt", str(mlir), "--print-op-generic", "-o", str(generic))
    assert opt.code == 0, opt.err
    saved = []
    for source in (KWS, str(mlir), str(generic)):
        out = tmp_path / f"{Path(source).stem}.npz"
        result = nnopt_run(source, "--seed", "0", "--output", str(out))
        assert result.code == 0, result.err
        saved.append(np.load(out)["probs"])
    assert saved[0].dtype == np.float32 and saved[0].shape == (1, 12)
    np.testing.assert_array_equal(saved[0], saved[1])
    np.testing.assert_array_equal(saved[0], saved[2])


# --------------------------------------------------------------------------
# Inputs, outputs and dumps
# --------------------------------------------------------------------------


def test_named_inputs_and_npz_output(pair: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.npz"
    result = nnopt_run(str(pair), "--input", "a=a.npy", "--input", "b=b.npy", "-o", "out.npz", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "input  b: f32[1, 3] <- b.npy" in result.out
    assert "output diff: f32[2, 3]" in result.out
    saved = np.load(out)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([[1.0, 10.0, 2.0]], dtype=np.float32)
    # An output may be called "file" (np.savez would reject that keyword).
    assert sorted(saved.files) == ["diff", "file"]
    np.testing.assert_array_equal(saved["file"], a + b)
    np.testing.assert_array_equal(saved["diff"], np.maximum(a - b, 0))


def test_inputs_from_one_npz_and_seed_fills_the_rest(pair: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "ins.npz", a=np.ones((2, 3), np.float32))
    out = tmp_path / "o.npz"
    result = nnopt_run(str(pair), "--input", "ins.npz", "--seed", "5", "-o", "o.npz", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "input  a: f32[2, 3] <- ins.npz:a" in result.out
    assert "input  b: f32[1, 3] <- random (seed 5)" in result.out
    again = tmp_path / "p.npz"
    assert nnopt_run(str(pair), "--input", "ins.npz", "--seed", "5", "-o", str(again), cwd=tmp_path).code == 0
    np.testing.assert_array_equal(np.load(out)["file"], np.load(again)["file"])


def test_single_input_bare_npy_and_npy_output(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((1, 49, 10, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = nnopt_run(KWS, "--input", "x.npy", "-o", "probs.npy", cwd=tmp_path)
    assert result.code == 0, result.err
    probs = np.load(tmp_path / "probs.npy")
    assert probs.shape == (1, 12) and abs(float(probs.sum()) - 1) < 1e-5
    assert f"argmax {int(np.argmax(probs))}" in result.out


def test_quantized_inputs_are_seeded_storage_integers(tmp_path: Path) -> None:
    model = tmp_path / "q.mlir"
    model.write_text(QUANTIZED)
    result = nnopt_run(str(model), "--seed", "3", "--dump-dir", "dump", "-o", "out.npz", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "input  x: i8[2, 3] !quant.uniform<i8:f32, 0.5:-1> <- random (seed 3)" in result.out
    x = np.load(tmp_path / "dump" / "0000_x.npy")
    assert x.dtype == np.int8
    saved = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(saved["y"], 0.5 * (x.astype(np.float32) + 1))
    # A quantized output is saved as storage integers and also summarised as real values.
    row = saved["row"]
    assert row.dtype == np.int8 and row.shape == (1, 3)
    real = 0.5 * (row.astype(np.float64) + 1)
    line = next(line for line in result.out.splitlines() if "real values:" in line)
    assert f"max {real.max():.6g}" in line and f"argmax {int(np.argmax(real))}" in line
    # Quantized inputs from a file: integers in the storage range, converted to the storage type.
    np.save(tmp_path / "q.npy", np.array([[-128, 0, 127], [1, 2, 3]], dtype=np.int64))
    assert nnopt_run(str(model), "--input", "q.npy", cwd=tmp_path).code == 0
    np.save(tmp_path / "big.npy", np.array([[-129, 0, 127], [1, 2, 3]]))
    assert_user_error(
        nnopt_run(str(model), "--input", "big.npy", cwd=tmp_path), "outside the storage range [-128, 127]"
    )
    np.save(tmp_path / "f.npy", np.zeros((2, 3), np.float32))
    assert_user_error(
        nnopt_run(str(model), "--input", "f.npy", cwd=tmp_path), "expected integers", "quantize first"
    )


def test_dump_dir_holds_every_tensor_in_order(tmp_path: Path) -> None:
    model = str(ROOT / "examples" / "models" / "ic_resnet8.nn")
    result = nnopt_run(model, "--seed", "1", "--dump-dir", "layers", "-o", "out.npz", cwd=tmp_path)
    assert result.code == 0, result.err
    index = json.loads((tmp_path / "layers" / "index.json").read_text())["tensors"]
    files = sorted(p.name for p in (tmp_path / "layers").glob("*.npy"))
    assert [e["file"] for e in index] == files  # zero-padded numbers keep the run order
    assert [e["index"] for e in index] == list(range(len(index)))
    assert index[0]["op"] == "input" and index[0]["name"] == "image"
    ops = [e["op"] for e in index[1:]]
    assert "nn.const" not in ops
    assert ops.count("nn.conv2d") == 9 and ops.count("nn.add") == 3
    for entry in index:
        array = np.load(tmp_path / "layers" / entry["file"])
        assert list(array.shape) == entry["shape"] and str(array.dtype) == entry["dtype"]
    assert index[1]["location"] == f"{model}:11:1"
    np.testing.assert_array_equal(
        np.load(tmp_path / "layers" / index[-1]["file"]), np.load(tmp_path / "out.npz")["probs"]
    )
    # A second dump replaces the first one wholesale.
    assert nnopt_run(KWS, "--seed", "1", "--dump-dir", "layers", cwd=tmp_path).code == 0
    names = [e["name"] for e in json.loads((tmp_path / "layers" / "index.json").read_text())["tensors"]]
    assert names[0] == "audio" and len(list((tmp_path / "layers").glob("*.npy"))) == len(names)


def test_graph_selection(tmp_path: Path) -> None:
    model = tmp_path / "two.mlir"
    model.write_text(TWO_GRAPHS)
    assert_user_error(
        nnopt_run(str(model), "--seed", "0"), "holds 2 graphs (first, second); choose one with --graph"
    )
    result = nnopt_run(str(model), "--seed", "0", "--graph", "second")
    assert result.code == 0 and "graph @second" in result.out
    assert_user_error(nnopt_run(str(model), "--seed", "0", "--graph", "third"), "no graph named 'third'")


# --------------------------------------------------------------------------
# Errors: exit code 1, one error line, no traceback, nothing written
# --------------------------------------------------------------------------


def _single_error_line(result: Result) -> None:
    assert [line for line in result.err.splitlines() if "error:" in line] == [result.err.splitlines()[0]]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ("missing input(s) audio", "--seed N")),
        (["--input", "missing.npy"], ("input file 'missing.npy' not found",)),
        (["--input", "junk.npy"], ("'junk.npy' is not a .npy or .npz file",)),
        (
            ["--input", "short.npy"],
            ("input 'audio' (short.npy) has shape [1, 49, 10], expected [1, 49, 10, 1]",),
        ),
        (["--input", "ints.npy"], ("has dtype int64, expected floating-point values",)),
        (["--input", "mic=x.npy"], ("the model has no input named 'mic' (inputs: audio)",)),
        (["--input", "x.npy", "--input", "audio=x.npy"], ("input 'audio' is given twice",)),
        (["--seed", "-2"], ("--seed must be a non-negative integer",)),
        (["--seed", "0", "-o", "out.txt"], ("use a .npz file",)),
        (["--seed", "0", "--dump-dir", "x.npy"], ("exists and is not a directory",)),
        (["--seed", "0", "--dump-dir", "notes"], ("is not empty and is not an nnopt dump",)),
    ],
    ids=[
        "no-inputs",
        "missing-file",
        "not-npy",
        "shape",
        "dtype",
        "unknown-name",
        "twice",
        "negative-seed",
        "output-kind",
        "dump-dir-is-file",
        "dump-dir-not-ours",
    ],
)
def test_run_errors(tmp_path: Path, args: list[str], fragments: tuple[str, ...]) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 49, 10, 1), np.float32))
    np.save(tmp_path / "short.npy", np.zeros((1, 49, 10), np.float32))
    np.save(tmp_path / "ints.npy", np.zeros((1, 49, 10, 1), np.int64))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = nnopt_run(KWS, *args, cwd=tmp_path)
    assert_user_error(result, *fragments)
    _single_error_line(result)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written or removed


def test_multi_io_model_errors(pair: Path, tmp_path: Path) -> None:
    result = nnopt_run(str(pair), "--input", "a.npy", cwd=tmp_path)
    assert_user_error(result, "the model has 2 inputs (a, b): name them with --input NAME=FILE.npy")
    result = nnopt_run(str(pair), "--seed", "0", "-o", "out.npy", cwd=tmp_path)
    assert_user_error(result, "the model has 2 outputs (file, diff); save them to a .npz file")
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("bad.nn", "input x: f32[1, 4]\ny = relu(x\n", "bad.nn:2:11: error: syntax error"),
        (
            "bad.mlir",
            "nn.graph @g(%x: tensor<2xf32>) -> tensor<2xf32> {\n  nn.output %x : tensor<3xf32>\n}\n",
            "bad.mlir:2:",
        ),
        ("model.onnx.txt", "hello", "unknown model format '.txt'"),
        ("absent.nn", None, "cannot read 'absent.nn': no such file"),
    ],
)
def test_model_file_errors(tmp_path: Path, name: str, text: str | None, fragment: str) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    result = nnopt_run(name, "--seed", "0", cwd=tmp_path)
    assert_user_error(result, fragment)
    _single_error_line(result)


def test_interrupted_run_leaves_no_dump_or_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import nnopt.backends.numpy as backend

    real_run = backend.run

    def failing_run(*args: object, **kwargs: object) -> object:
        dump = kwargs["dump"]

        def dump_then_fail(name: str, op: object, value: object) -> None:
            dump(name, op, value)  # type: ignore[operator]
            if name == "pw2":
                raise UserError("kernel failed half-way", "somewhere.nn:1:1")

        kwargs["dump"] = dump_then_fail
        return real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "run", failing_run)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", KWS, "--seed", "0", "--dump-dir", "dump", "-o", "out.npz"])
    assert code == 1
    assert "somewhere.nn:1:1: error: kernel failed half-way" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no dump folder, no temporary folder, no output
