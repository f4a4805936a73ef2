"""The C99 backend: generated projects built with gcc and checked against the numpy interpreter.

Every generated test program compares the library's outputs with outputs the
numpy interpreter recorded (integers bit for bit, floats within a relative
tolerance) and checks that nothing outside the memory plan is written (guard
zones, plan holes, each layer's own result and scratch). Each model is
generated and compiled once per session.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from nnopt.backends.c.names import Namer, comment_text, identifier, string_literal
from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.frontends import load_model
from nnopt.dialects import nn
from nnopt.testing import build_graph, graph_specs
from nnopt.testing.differential import run_pipeline
from tests.c_projects import ARM_CC, CC, QEMU, Project, build_project, graph_of
from tests.conftest import ROOT, SHARED, assert_user_error, run_tool

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (gcc) on PATH")

EXAMPLES = sorted((ROOT / "examples" / "models").glob("*.nn"))
SHARED_MODELS = sorted(p.name for p in SHARED.glob("models/*") if p.suffix in (".tflite", ".onnx"))
UNSUPPORTED = {"tflm_keyword_scrambled_int8.tflite": "SVDF"}
"""Shared models the importer rejects (the reason must be in its error)."""


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------


def test_identifiers_are_valid_c_and_unique() -> None:
    assert identifier("serving_default_input_1:0") == "serving_default_input_1_0"
    assert identifier("3d conv") == "x_3d_conv"
    assert identifier("int") == "int_"
    assert identifier("__reserved") == "reserved"
    assert identifier("") == "x"
    namer = Namer({"arena_sram"})
    assert [namer(n) for n in ("a", "a", "a/b", "arena_sram")] == ["a", "a_2", "a_b", "arena_sram_2"]
    for text in ("x */ evil(); /*", "é", "a\nb", "while"):
        name = identifier(text)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name not in ("while",)


def test_string_literals_and_comments_cannot_escape() -> None:
    assert string_literal('a"b\\c') == '"a\\"b\\\\c"'
    assert string_literal("??/") == '"?\\?/"'  # no trigraph
    assert string_literal("é\n") == '"\\303\\251\\012"'
    text = comment_text("x */ int evil; /* ??/\nline")
    assert "*/" not in text and "/*" not in text and "??" not in text and "\n" not in text


# --------------------------------------------------------------------------
# Models: every example and every shared model the interpreter runs
# --------------------------------------------------------------------------

_BUILT: dict[str, Project] = {}


def model_project(path: Path, tmp_root: Path) -> Project:
    """Generate and write the project of a model once per session."""
    key = str(path)
    if key not in _BUILT:
        name = re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_")
        module = load_model(str(path))
        _BUILT[key] = build_project(module, tmp_root / name, name, vectors=10, seed=1)
    return _BUILT[key]


@pytest.fixture(scope="session")
def c_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("c_projects")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_model_matches_interpreter(path: Path, c_root: Path) -> None:
    out = model_project(path, c_root).run_test()
    assert "10 vectors" in out


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_model_matches_interpreter(name: str, c_root: Path) -> None:
    path = SHARED / "models" / name
    if name in UNSUPPORTED:
        with pytest.raises(UserError, match=UNSUPPORTED[name]):
            load_model(str(path))
        pytest.skip(f"{name}: the importer does not support {UNSUPPORTED[name]}")
    out = model_project(path, c_root).run_test()
    assert "10 vectors" in out and "no write outside the plan" in out


@pytest.mark.parametrize(
    "path",
    [
        SHARED / "models" / "mlperf_tiny_kws_dscnn_int8.tflite",
        SHARED / "models" / "mlperf_tiny_kws_dscnn_hybrid.tflite",
        ROOT / "examples" / "models" / "branching_inception.nn",
    ],
    ids=["kws_int8", "kws_hybrid", "branching"],
)
def test_sanitizers_are_clean(path: Path, c_root: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is not available")
    project = model_project(path, c_root)
    proc = project.make("sanitize")
    assert "PASS" in proc.stdout
    assert "runtime error" not in proc.stdout + proc.stderr


def test_library_builds_without_warnings_at_o0_and_o2(c_root: Path) -> None:
    path = SHARED / "models" / "mlperf_tiny_kws_dscnn_int8.tflite"
    if not path.exists():
        pytest.skip("../shared is absent")
    project = model_project(path, c_root)
    for opt in ("-O0", "-O2"):
        project.make("clean")
        proc = project.make(f"lib{project.name}.a", OPT=opt)
        assert "warning" not in (proc.stdout + proc.stderr).lower()


# --------------------------------------------------------------------------
# Random graphs in every rounding mode
# --------------------------------------------------------------------------

_COUNTER = {"n": 0}


def _random_graph_check(spec: object, rounding: str | None, root: Path) -> None:
    module = build_graph(spec)  # type: ignore[arg-type]
    legalize = f"nn-legalize-quant{{rounding={rounding}}}," if rounding else ""
    try:
        module = run_pipeline(module, legalize + "nn-bufferize,nn-merge-buffers,nn-plan-arena")
    except UserError:
        return  # a graph the quantizer cannot express in this mode
    _COUNTER["n"] += 1
    project = build_project(
        module, root / f"g{_COUNTER['n']}", "g", vectors=4, seed=_COUNTER["n"], plan=False
    )
    project.run_test(OPT="-O0")


@pytest.mark.parametrize("rounding", ["tflite_double", "single", "onnx_rint", None])
def test_random_graphs_match_interpreter(rounding: str | None, tmp_path: Path) -> None:
    quantized = rounding is not None

    @settings(
        max_examples=8,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(graph_specs(quantized=quantized, max_layers=8))
    def check(spec: object) -> None:
        _random_graph_check(spec, rounding, tmp_path)

    check()


# --------------------------------------------------------------------------
# Op coverage beyond the random graphs: grouped/dilated conv, depthwise multiplier, matmul,
# per-axis quantize/dequantize, 16-bit activations
# --------------------------------------------------------------------------


def _coverage_graph(rounding: str) -> object:
    from tests.q_build import GraphBuilder, qt, tt

    rng = np.random.default_rng(7)
    g = GraphBuilder("coverage")
    xq = qt(0.05, -3)
    x = g.arg(tt((1, 7, 6, 4), xq), "x")
    f = g.arg(tt((1, 3, 5)), "f")

    def weights(shape: tuple[int, ...], axis: int, in_scale: float) -> tuple[object, object]:
        ch = shape[axis]
        scales = [float(s) for s in rng.uniform(0.005, 0.03, ch)]
        w = g.const(rng.integers(-127, 128, shape), qt(scales, 0, axis=axis))
        b = g.const(rng.integers(-300, 300, (ch,)), qt([in_scale * s for s in scales], 0, width=32, axis=0))
        return w, b

    outs = []
    w, b = weights((6, 3, 2, 2), 0, 0.05)  # grouped: 4 input channels, 2 groups
    outs.append(
        g.op(
            nn.Conv2DOp,
            [x, w, b],
            tt((1, 4, 3, 6), qt(0.1, 5)),
            "grouped",
            strides=[2, 2],
            padding=[1, 1, 0, 1],
            dilations=[1, 2],
            fused_activation="relu6",
            rounding=rounding,
        )
    )
    w, b = weights((1, 3, 3, 8), 3, 0.05)  # depthwise multiplier 2, dilation 2
    outs.append(
        g.op(
            nn.DepthwiseConv2DOp,
            [x, w, b],
            tt((1, 4, 3, 8), qt(0.08, -1)),
            "dw_mult2",
            strides=[2, 2],
            padding="same",
            dilations=[2, 2],
            rounding=rounding,
        )
    )
    a = g.op(nn.ReshapeOp, [x], tt((2, 21, 4), xq), "rows")
    outs.append(g.op(nn.MatMulOp, [a, a], tt((2, 21, 21), qt(0.2, 2)), "gram", adj_y=True, rounding=rounding))
    outs.append(g.op(nn.QuantizeOp, [x], tt((1, 7, 6, 4), qt(0.03, 10)), "requant", rounding=rounding))
    per_axis = qt([0.02, 0.05, 0.1, 0.2, 0.01], [0, 3, -2, 5, 1], axis=2)
    fq = g.op(nn.QuantizeOp, [f], tt((1, 3, 5), per_axis), "fq", rounding=rounding)
    outs.append(g.op(nn.DequantizeOp, [fq], tt((1, 3, 5)), "deq_axis"))
    outs.append(g.op(nn.QuantizeOp, [f], tt((1, 3, 5), qt(0.01, -7)), "quant_f", rounding=rounding))
    if rounding != "onnx_rint":
        x16 = g.op(nn.QuantizeOp, [x], tt((1, 7, 6, 4), qt(0.001, 0, width=16)), "x16", rounding=rounding)
        outs.append(
            g.op(nn.Relu6Op, [x16], tt((1, 7, 6, 4), qt(0.0008, 0, width=16)), "relu16", rounding=rounding)
        )
        w, b = weights((1, 3, 3, 4), 3, 0.001)
        outs.append(
            g.op(
                nn.DepthwiseConv2DOp,
                [x16, w, b],
                tt((1, 7, 6, 4), qt(0.002, 0, width=16)),
                "dw16",
                strides=[1, 1],
                padding="same",
                rounding=rounding,
            )
        )
    outs.append(g.op(nn.TransposeOp, [x], tt((1, 4, 7, 6), xq), "nchw", perm=[0, 3, 1, 2]))
    outs.append(g.op(nn.PadOp, [x], tt((1, 9, 7, 4), xq), "padded", pads=[0, 0, 1, 1, 0, 1, 0, 0], value=0.5))
    outs.append(g.op(nn.MeanOp, [x], tt((1, 7, 6), qt(0.04, 1)), "mean_c", axes=[3], rounding=rounding))
    return g.module(*outs)


@pytest.mark.parametrize("rounding", ["tflite_double", "single", "onnx_rint"])
def test_op_coverage_graph_matches_interpreter(rounding: str, tmp_path: Path) -> None:
    module = _coverage_graph(rounding)
    project = build_project(module, tmp_path / "cov", "cov", vectors=10)  # type: ignore[arg-type]
    project.run_test()


# --------------------------------------------------------------------------
# The checks themselves fail when they should
# --------------------------------------------------------------------------


def _small_project(tmp_path: Path) -> Project:
    module = load_model(str(ROOT / "examples" / "models" / "kws_dscnn.nn"))
    return build_project(module, tmp_path / "kws", "kws", vectors=10)


def test_write_outside_the_plan_is_detected(tmp_path: Path) -> None:
    project = _small_project(tmp_path)
    source = project.folder / "kws.c"
    text = source.read_text()
    # Make the last layer also write one arena byte outside its result.
    fn = re.findall(r"static void (layer(\d+)_\w+)\(uint8_t \*arena_sram\) \{\n", text)[-1]
    writes = project.src.layers[int(fn[1])].writes
    byte = next(i for i in range(project.src.arenas["sram"]) if not any(a <= i < b for _, a, b in writes))
    patched = text.replace(
        f"static void {fn[0]}(uint8_t *arena_sram) {{\n",
        f"static void {fn[0]}(uint8_t *arena_sram) {{\n    arena_sram[{byte}] ^= 1u;\n",
    )
    source.write_text(patched)
    project.make(f"test_{project.name}")
    proc = subprocess.run([str(project.folder / "test_kws")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "outside its result and scratch" in proc.stdout and "FAIL" in proc.stdout


def test_guard_zone_write_is_detected(tmp_path: Path) -> None:
    project = _small_project(tmp_path)
    source = project.folder / "kws.c"
    text = source.read_text()
    fn = re.findall(r"static void (layer\d+_\w+)\(uint8_t \*arena_sram\) \{\n", text)[0]
    source.write_text(
        text.replace(
            f"static void {fn}(uint8_t *arena_sram) {{\n",
            f"static void {fn}(uint8_t *arena_sram) {{\n    arena_sram[KWS_ARENA_SRAM_SIZE] = 0u;\n",
        )
    )
    project.make(f"test_{project.name}")
    proc = subprocess.run([str(project.folder / "test_kws")], capture_output=True, text=True)
    assert proc.returncode == 1 and "guard zone after the arena" in proc.stdout


def test_wrong_plan_or_wrong_result_fails_the_comparison(tmp_path: Path) -> None:
    project = _small_project(tmp_path)
    data = project.folder / "kws_test_data.h"
    text = data.read_text()
    # Flip the first expected float: the comparison must notice.
    first = re.search(r"static const float test_expected0\[\d+\] = \{\n    ([^,]+),", text)
    assert first is not None
    data.write_text(text.replace(first.group(1), "0x1p+3f", 1))
    project.make(f"test_{project.name}")
    proc = subprocess.run([str(project.folder / "test_kws")], capture_output=True, text=True)
    assert proc.returncode == 1 and "outputs differ" in proc.stdout


# --------------------------------------------------------------------------
# Identifiers from model files
# --------------------------------------------------------------------------

EVIL = 'x */ int evil_symbol = 1; /* "\\ ??/'


def test_injection_through_tensor_names(tmp_path: Path) -> None:
    from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, NameLoc, StringAttr, UnknownLoc

    from tests.q_build import GraphBuilder, tt

    g = GraphBuilder("evil")
    x = g.arg(tt((1, 4)), "x")
    w = g.const(np.eye(4, dtype=np.float32), name="w")
    y = g.op(nn.FullyConnectedOp, [x, w], tt((1, 4)), "y")
    module = g.module(y)
    graph = graph_of(module)
    # Model names come from arg/result attributes and op locations (TFLite tensor names).
    graph.arg_attrs = ArrayAttr([DictionaryAttr({nn.NAME_KEY: StringAttr(EVIL)})])
    graph.res_attrs = ArrayAttr([DictionaryAttr({nn.NAME_KEY: StringAttr('out\n#include "/etc/passwd"')})])
    y.owner.location = NameLoc(StringAttr(EVIL + "\n*/ int evil_symbol = 2;"), UnknownLoc())
    w.owner.location = NameLoc(StringAttr(EVIL), UnknownLoc())
    project = build_project(module, tmp_path / "evil", "evil", vectors=10)
    project.run_test()
    tokens = re.compile(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|//[^\n]*', re.DOTALL)
    for f in ("evil.h", "evil.c", "evil_weights.h", "test_evil.c", "evil_test_data.h"):
        raw = (project.folder / f).read_text()
        code = tokens.sub("", raw)  # C without comments and strings
        assert not re.search(r"\bint\s+evil_symbol\b|evil_symbol\s*=", code), f
        includes = re.findall(r"^\s*#\s*include\s*(.*)$", raw, re.MULTILINE)
        assert set(includes) <= {
            "<stdint.h>",
            "<stdio.h>",
            "<string.h>",
            "<math.h>",
            '"evil.h"',
            '"evil_weights.h"',
            '"evil_test_data.h"',
        }, includes
    nm = subprocess.run(["nm", str(project.folder / "test_evil")], capture_output=True, text=True)
    assert not re.search(
        r"\sevil_symbol$", nm.stdout, re.MULTILINE
    )  # only sanitised names like w_x_int_evil_symbol_1
    header = (project.folder / "evil.h").read_text()
    assert "#define EVIL_INPUT0_NAME " + string_literal(EVIL) in header


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


def test_cli_compile_writes_a_project_that_passes_and_is_reproducible(tmp_path: Path) -> None:
    model = ROOT / "examples" / "models" / "ad_autoencoder.nn"
    out = tmp_path / "ad"
    result = run_tool("nnopt", "compile", str(model), "--target", "host", "--emit", "c", "-o", str(out))
    assert result.code == 0, result.err
    assert "make -C" in result.out
    files = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {Path("ad_autoencoder.h"), Path("ad_autoencoder.c"), Path("Makefile"), Path("README.md")} <= set(
        files
    )
    proc = subprocess.run(["make", "-C", str(out), "test"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "PASS" in proc.stdout, proc.stdout + proc.stderr
    assert "warning" not in proc.stderr.lower()
    assert (out / "libad_autoencoder.a").exists()
    again = run_tool("nnopt", "compile", str(model), "-o", str(out))
    assert again.code == 0, again.err
    regenerated = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert regenerated == files  # byte-identical, and the build products of the old folder are gone


def test_cli_compile_errors(tmp_path: Path) -> None:
    model = ROOT / "examples" / "models" / "kws_dscnn.nn"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert_user_error(run_tool("nnopt", "compile", str(model), "-o", str(foreign)), "did not generate")
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert_user_error(
        run_tool("nnopt", "compile", str(model), "-o", str(tmp_path / "x"), "--name", "9bad-name"),
        "not a C identifier",
    )
    assert_user_error(
        run_tool("nnopt", "compile", str(model), "-o", str(tmp_path / "x"), "--target", "nowhere"),
        "unknown target",
    )
    assert_user_error(
        run_tool("nnopt", "compile", str(tmp_path / "none.nn"), "-o", str(tmp_path / "x")), "no such file"
    )
    assert not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".nnopt-c-")]


def test_unplanned_graph_is_a_user_error() -> None:
    from nnopt.backends.c import generate_library
    from tests.q_build import GraphBuilder, tt

    g = GraphBuilder("bad")
    x = g.arg(tt((1, 4)), "x")
    y = g.op(nn.ReluOp, [x], tt((1, 4)), "y")
    module = g.module(y)
    with pytest.raises(UserError, match="not memory-planned"):
        generate_library(graph_of(module), "bad", "bad")


def test_unsupported_element_type_is_one_located_error_and_writes_nothing(tmp_path: Path) -> None:
    model = tmp_path / "half.mlir"
    model.write_text(
        "nn.graph @half(%x: tensor<1x4xf16>) -> tensor<1x4xf16> {\n"
        "  %y = nn.relu %x : (tensor<1x4xf16>) -> tensor<1x4xf16>\n"
        "  nn.output %y : tensor<1x4xf16>\n"
        "}\n"
    )
    result = run_tool("nnopt", "compile", str(model), "-o", str(tmp_path / "out"))
    assert_user_error(result, "half.mlir:2:", "f16", "C backend")
    assert not (tmp_path / "out").exists()


def test_nnopt_opt_target_c_prints_the_library() -> None:
    model = ROOT / "examples" / "models" / "kws_dscnn.nn"
    result = run_tool(
        "nnopt-opt", str(model), "-p", "nn-bufferize,nn-merge-buffers,nn-plan-arena", "-t", "c{lib=kws}"
    )
    assert result.code == 0, result.err
    assert "// ----- kws.h -----" in result.out and "int kws_run(" in result.out
    assert "// ----- kws_weights.h -----" in result.out
    unplanned = run_tool("nnopt-opt", str(model), "-t", "c")
    assert_user_error(unplanned, "memory-planned")


# --------------------------------------------------------------------------
# Cortex-M4 under QEMU
# --------------------------------------------------------------------------

ARM_MODELS = ["mlperf_tiny_kws_dscnn_int8.tflite", "mlperf_tiny_ad_autoencoder_int8.tflite"]


@pytest.mark.parametrize("name", ARM_MODELS)
def test_cortex_m4_under_qemu_matches_interpreter(name: str, c_root: Path) -> None:
    if ARM_CC is None or QEMU is None:
        pytest.skip(
            "arm-none-eabi-gcc / qemu-system-arm not installed "
            "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm; `make test` does it)"
        )
    path = SHARED / "models" / name
    if not path.exists():
        pytest.skip("../shared is absent")
    project = model_project(path, c_root)
    proc = project.make("arm-test", timeout=900)
    assert "PASS" in proc.stdout, proc.stdout
    size = project.make("arm-size").stdout
    line = next(ln for ln in size.splitlines() if ln.split() and ln.split()[0].isdigit())
    text, data, bss = (int(v) for v in line.split()[:3])
    assert data == 0  # no initialised RAM: weights are const, arenas zero-filled
    assert bss >= project.src.arenas["sram"] and text >= project.src.weight_bytes


def test_generated_readme_and_header_document_the_api(c_root: Path) -> None:
    path = ROOT / "examples" / "models" / "kws_dscnn.nn"
    project = model_project(path, c_root)
    header = (project.folder / f"{project.name}.h").read_text()
    for macro in (
        "_ARENA_SRAM_SIZE",
        "_ARENA_SRAM_ALIGN",
        "_INPUT0_SHAPE",
        "_OUTPUT0_DTYPE",
        "_ERROR_NULL_POINTER",
    ):
        assert project.name.upper() + macro in header
    readme = (project.folder / "README.md").read_text()
    assert "make test" in readme and "NNOPT_SECTION_SRAM" in readme
    source = (project.folder / f"{project.name}.c").read_text()
    assert "malloc" not in source and "printf" not in source and "assert" not in source


def test_int8_library_has_no_floating_point(c_root: Path) -> None:
    path = SHARED / "models" / "mlperf_tiny_kws_dscnn_int8.tflite"
    if not path.exists():
        pytest.skip("../shared is absent")
    project = model_project(path, c_root)
    source = (project.folder / f"{project.name}.c").read_text()
    body = source.split("/* ---- layers ---- */", 1)[1]
    assert not re.search(r"\b(float|double)\b", body)
    assert "math.h" not in source


def test_target_with_several_memories_gets_one_arena_per_space(tmp_path: Path) -> None:
    """apollo4-plus: activations split over TCM and SSRAM, weights in MRAM and faster memories."""
    module = load_model(str(ROOT / "examples" / "models" / "mobilenet_v2_035.nn"))
    project = build_project(module, tmp_path / "mb", "mb", vectors=10, target="apollo4-plus")
    assert set(project.src.arenas) == {"tcm", "ssram"}
    header = (project.folder / "mb.h").read_text()
    assert "uint8_t *arena_ssram, uint8_t *arena_tcm" in header
    source = (project.folder / "mb.c").read_text()
    assert '#define NNOPT_SECTION_TCM __attribute__((section(".tcm")))' in source
    assert '#define NNOPT_WEIGHTS_SECTION_MRAM __attribute__((section(".rodata.nnopt")))' in source
    project.run_test()


def test_float_coverage_graph_matches_interpreter(tmp_path: Path) -> None:
    from tests.q_build import GraphBuilder, tt

    rng = np.random.default_rng(3)
    g = GraphBuilder("fcov")
    x = g.arg(tt((1, 7, 6, 4)), "x")
    outs = [
        g.op(
            nn.Conv2DOp,
            [x, g.const(rng.normal(size=(6, 3, 2, 2))), g.const(rng.normal(size=6))],
            tt((1, 4, 3, 6)),
            "grouped",
            strides=[2, 2],
            padding=[1, 1, 0, 1],
            dilations=[1, 2],
            fused_activation="relu6",
        ),
        g.op(
            nn.DepthwiseConv2DOp,
            [x, g.const(rng.normal(size=(1, 3, 3, 8)))],
            tt((1, 4, 3, 8)),
            "dw_mult2",
            strides=[2, 2],
            padding="same",
            dilations=[2, 2],
        ),
        g.op(
            nn.FullyConnectedOp,
            [x, g.const(rng.normal(size=(9, 4)))],
            tt((42, 9)),
            "fc",
            fused_activation="relu",
        ),
        g.op(nn.MaxPool2DOp, [x], tt((1, 4, 3, 4)), "maxp", kernel=[3, 3], strides=[2, 2], padding="same"),
        g.op(nn.AvgPool2DOp, [x], tt((1, 4, 3, 4)), "avgp", kernel=[3, 3], strides=[2, 2], padding="same"),
        g.op(nn.SoftmaxOp, [x], tt((1, 7, 6, 4)), "sm", beta=0.5),
        g.op(nn.LogisticOp, [x], tt((1, 7, 6, 4)), "sig"),
        g.op(nn.TanhOp, [x], tt((1, 7, 6, 4)), "th"),
        g.op(nn.MeanOp, [x], tt((1, 1, 1, 4)), "gap", axes=[1, 2], keep_dims=True),
        g.op(nn.SubOp, [x, g.const(rng.normal(size=(6, 1)))], tt((1, 7, 6, 4)), "bsub"),
    ]
    project = build_project(g.module(*outs), tmp_path / "fcov", "fcov", vectors=10)  # type: ignore[arg-type]
    out = project.run_test()
    assert "largest float deviation" in out


def test_compile_creates_missing_output_folders(tmp_path: Path) -> None:
    """`-o build/kws` works in a fresh checkout (like `mkdir -p`); a file in the way is one clear error."""
    model = str(ROOT / "examples" / "models" / "ad_autoencoder.nn")
    out = tmp_path / "build" / "deep" / "ad"
    res = run_tool("nnopt", "compile", model, "--target", "host", "--emit", "c", "-o", str(out))
    assert res.code == 0, res.err
    assert (out / "Makefile").is_file()
    (tmp_path / "afile").write_text("x")
    blocked = run_tool(
        "nnopt", "compile", model, "--target", "host", "--emit", "c", "-o", str(tmp_path / "afile" / "ad")
    )
    assert_user_error(blocked, "is not a folder")
    assert (tmp_path / "afile").read_text() == "x"
