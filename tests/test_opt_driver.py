"""Behaviour of `nnopt-opt`: pipelines, diagnostics, plugins, output handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from nnopt.compiler.opt import main as opt_main
from nnopt.compiler.pipeline import mlir_pipeline_to_xdsl, split_top_level
from nnopt.testing import GraphSpec, build_graph, graph_specs

from .conftest import ROOT, assert_user_error, run_tool

OPS = ROOT / "tests" / "filecheck" / "dialects" / "nn" / "ops.mlir"
DEMO = ROOT / "examples" / "demo.mlir"
COUNT_OPS = ROOT / "examples" / "plugins" / "count_ops.py"


def _opt(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run nnopt-opt in-process, returning the exit code and the written output."""
    out = tmp_path / "out.mlir"
    if out.exists():
        out.unlink()
    code = opt_main([*args, "-o", str(out)])
    return code, out.read_text() if out.exists() else ""


# -- pipelines ----------------------------------------------------------------


def test_mlir_pipeline_syntax_is_flattened() -> None:
    assert mlir_pipeline_to_xdsl("builtin.module(cse,canonicalize)") == "cse,canonicalize"
    assert (
        mlir_pipeline_to_xdsl("builtin.module(func.func(cse),nn.graph(a{k=1 j=2}),b)") == "cse,a{k=1 j=2},b"
    )
    assert mlir_pipeline_to_xdsl('a{s="x,y"},b') == 'a{s="x,y"},b'
    assert split_top_level("a{k=1,2},b(c,d),e") == ["a{k=1,2}", "b(c,d)", "e"]


@pytest.mark.parametrize("path", [OPS, DEMO])
def test_both_pipeline_syntaxes_agree(tmp_path: Path, path: Path) -> None:
    code1, mlir = _opt(tmp_path, str(path), "--pass-pipeline=builtin.module(cse,canonicalize)")
    code2, xdsl = _opt(tmp_path, str(path), "-p", "cse,canonicalize")
    assert code1 == code2 == 0
    assert mlir == xdsl


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(graph_specs())
def test_both_pipeline_syntaxes_agree_on_random_graphs(tmp_path: Path, spec: GraphSpec) -> None:
    src = tmp_path / "g.mlir"
    src.write_text(str(build_graph(spec)))
    code1, mlir = _opt(tmp_path, str(src), "--pass-pipeline=builtin.module(canonicalize,cse,dce)")
    code2, xdsl = _opt(tmp_path, str(src), "-p", "canonicalize,cse,dce")
    assert code1 == code2 == 0
    assert mlir == xdsl and mlir


def test_canonicalize_folds_data_movement(tmp_path: Path) -> None:
    code, out = _opt(tmp_path, str(DEMO), "-p", "canonicalize,cse")
    assert code == 0
    assert "nn.transpose" not in out
    assert out.count("nn.reshape") == 1
    assert out.count("nn.avg_pool2d") == 1


def test_stdin_and_generic_form() -> None:
    generic = run_tool("nnopt-opt", str(DEMO), "--print-op-generic")
    assert generic.code == 0 and '"nn.conv2d"' in generic.out
    back = run_tool("nnopt-opt", stdin=generic.out)
    direct = run_tool("nnopt-opt", str(DEMO))
    assert back.code == 0 and back.out == direct.out


def test_debuginfo_shows_source_locations() -> None:
    res = run_tool("nnopt-opt", str(DEMO), "--print-debuginfo")
    assert res.code == 0
    assert f'loc("{DEMO}":6:3)' in res.out


def test_print_ir_after_all(tmp_path: Path) -> None:
    res = run_tool("nnopt-opt", str(DEMO), "--mlir-print-ir-after-all", "-p", "canonicalize,cse")
    assert res.code == 0
    assert "IR Dump After canonicalize" in res.err and "IR Dump After cse" in res.err


def test_list_passes() -> None:
    res = run_tool("nnopt-opt", "--list-passes")
    assert res.code == 0
    for name in ("canonicalize", "cse", "dce"):
        assert name in res.out


def test_split_input_file_keeps_line_numbers() -> None:
    path = ROOT / "tests" / "filecheck" / "dialects" / "nn" / "ops_invalid.mlir"
    res = run_tool("nnopt-opt", str(path), "--split-input-file", "--verify-diagnostics")
    assert res.code == 0
    first = next(line for line in res.out.splitlines() if "error:" in line)
    line_no = int(first.split(":")[1])
    assert "nn.conv2d" in path.read_text().splitlines()[line_no - 1]


def test_help_is_lazy() -> None:
    """`--help` must not import nnopt's or xDSL's pass modules."""
    code = (
        "import sys\n"
        "from nnopt.compiler.opt import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in sys.modules if m.startswith(('nnopt.passes.', 'xdsl.transforms.'))]\n"
        "assert not [m for m in loaded if m != 'xdsl.transforms'], loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# -- diagnostics ------------------------------------------------------------------

GOOD = DEMO.read_text()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            GOOD.replace("nn.relu", "nn.rulu").replace("nn.avg_pool2d %t2", "nn.avg_pul %t2", 1),
            ["bad.mlir:", "nn.avg_pul"],
        ),
        (
            GOOD.replace(
                "tensor<1x1x1x4x!quant.uniform<i8:f32, 0.2:-128>>) -> tensor<1x1x4",
                "tensor<1x1x1x5x!quant.uniform<i8:f32, 0.2:-128>>) -> tensor<1x1x4",
            ),
            ["bad.mlir:"],
        ),
        (GOOD[: len(GOOD) // 2], ["bad.mlir:"]),
        (
            GOOD.replace('padding = "same"', 'padding = "sideways"'),
            ["bad.mlir:6:", "padding must be one of same, valid"],
        ),
        (GOOD.replace("0.05:-3", "0.05:-300"), ["bad.mlir:", "zero point -300"]),
    ],
    ids=["unknown-op", "wrong-shape", "truncated", "bad-property", "bad-type"],
)
def test_malformed_files_give_one_located_error(tmp_path: Path, text: str, fragments: list[str]) -> None:
    bad = tmp_path / "bad.mlir"
    bad.write_text(text)
    res = run_tool("nnopt-opt", str(bad), cwd=tmp_path)
    assert_user_error(res, *fragments)
    assert res.out == ""


def test_garbage_bytes(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.mlir"
    bad.write_bytes(bytes(range(256)) * 4)
    assert_user_error(run_tool("nnopt-opt", str(bad)), "garbage.mlir:2:118:", "not UTF-8")


def test_missing_file() -> None:
    assert_user_error(run_tool("nnopt-opt", "does-not-exist.mlir"), "does-not-exist.mlir")


def test_unknown_extension(tmp_path: Path) -> None:
    bad = tmp_path / "model.xyz"
    bad.write_text("x")
    assert_user_error(run_tool("nnopt-opt", str(bad)), "Unrecognized file extension 'xyz'")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["-p", "nope"], ["unknown pass 'nope'", "available passes:", "canonicalize"]),
        (["-p", "cse{foo=1}"], ["pass 'cse'", "foo", "accepted options: none"]),
        (["--pass-pipeline=builtin.module(cse"], ["unbalanced"]),
        (["--pass-pipeline=builtin.module(cse)", "-p", "cse"], ["either --pass-pipeline or -p"]),
        (
            ["--load-pass-plugin", str(COUNT_OPS), "-p", "demo-count-ops{report=perhaps}"],
            [
                "pass 'demo-count-ops'",
                "expected a bool value, got 'perhaps'",
                "accepted options: report: bool = false",
            ],
        ),
    ],
)
def test_bad_pipelines(args: list[str], fragments: list[str]) -> None:
    assert_user_error(run_tool("nnopt-opt", str(DEMO), *args), *fragments)


def test_verifier_error_after_a_pass_names_the_pass(tmp_path: Path) -> None:
    plugin = tmp_path / "breaker.py"
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n"
        "from xdsl.dialects.builtin import StringAttr\n"
        "@dataclass(frozen=True)\n"
        "class Break(ModulePass):\n"
        "    name = 'test-break'\n"
        "    def apply(self, ctx, op):\n"
        "        for o in op.walk():\n"
        "            if o.name == 'nn.conv2d':\n"
        "                o.properties['padding'] = StringAttr('bogus')\n"
    )
    res = run_tool("nnopt-opt", str(DEMO), "--load-pass-plugin", str(plugin), "-p", "test-break")
    assert_user_error(res, "after pass 'test-break'", "demo.mlir:6:3", "padding must be one of")


def test_output_file_not_written_on_error(tmp_path: Path) -> None:
    out = tmp_path / "out.mlir"
    bad = tmp_path / "bad.mlir"
    bad.write_text(GOOD.replace("nn.relu", "nn.rulu").replace("nn.conv2d", "nn.cnv2d"))
    res = run_tool("nnopt-opt", str(bad), "-o", str(out))
    assert res.code == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_broken_pipe_is_not_an_error() -> None:
    opt = Path(sys.executable).parent / "nnopt-opt"
    proc = subprocess.run(f"'{opt}' '{OPS}' | head -c 10", shell=True, capture_output=True, text=True)
    assert "Traceback" not in proc.stderr


# -- plugins ---------------------------------------------------------------------


def test_plugin_file_adds_its_pass_to_the_pipeline(tmp_path: Path) -> None:
    res = run_tool(
        "nnopt-opt",
        str(DEMO),
        "--load-pass-plugin",
        str(COUNT_OPS),
        "--pass-pipeline=builtin.module(canonicalize,demo-count-ops{report=true})",
    )
    assert res.code == 0, res.err
    assert "nn.conv2d = 1 : i64" in res.out and "nn.reshape = 1 : i64" in res.out
    assert "nn.avg_pool2d" in res.err


def test_plugin_file_pass_is_listed() -> None:
    res = run_tool("nnopt-opt", "--load-pass-plugin", str(COUNT_OPS), "--list-passes")
    assert res.code == 0
    assert "demo-count-ops" in res.out and str(COUNT_OPS) in res.out


def test_duplicate_pass_names_name_both_sources(tmp_path: Path) -> None:
    clash = tmp_path / "clash.py"
    clash.write_text(
        "from dataclasses import dataclass\nfrom xdsl.passes import ModulePass\n"
        "@dataclass(frozen=True)\nclass Cse(ModulePass):\n    name = 'cse'\n    def apply(self, ctx, op):\n        pass\n"
    )
    assert_user_error(
        run_tool("nnopt-opt", str(DEMO), "--load-pass-plugin", str(clash)),
        "pass 'cse' is defined twice",
        "xDSL",
        str(clash),
    )
    again = run_tool(
        "nnopt-opt", str(DEMO), "--load-pass-plugin", str(COUNT_OPS), "--load-pass-plugin", str(COUNT_OPS)
    )
    assert_user_error(again, "pass 'demo-count-ops' is defined twice")


def test_broken_plugin_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert_user_error(
        run_tool("nnopt-opt", str(DEMO), "--load-pass-plugin", str(broken)), "cannot load pass plugin", "boom"
    )
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    assert_user_error(
        run_tool("nnopt-opt", str(DEMO), "--load-pass-plugin", str(empty)), "defines no ModulePass"
    )


@pytest.fixture(scope="module")
def installed_demo_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin package installed (for real, with pip) into a private folder."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT / "examples" / "plugins" / "nnopt-demo-plugin"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return target


def test_entry_point_plugin(installed_demo_plugin: Path) -> None:
    env = {"PYTHONPATH": str(installed_demo_plugin) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    listed = run_tool("nnopt-opt", "--list-passes", env=env)
    assert listed.code == 0
    assert "demo-tag-graphs" in listed.out and "plugin 'demo'" in listed.out
    res = run_tool(
        "nnopt-opt", str(DEMO), '--pass-pipeline=builtin.module(demo-tag-graphs{tag="v2"})', env=env
    )
    assert res.code == 0, res.err
    assert 'demo.tag = "v2"' in res.out
    # Without the plugin on the path the pass does not exist.
    assert_user_error(
        run_tool("nnopt-opt", str(DEMO), "-p", "demo-tag-graphs"), "unknown pass 'demo-tag-graphs'"
    )
