"""Build generated C projects in tests: plan, generate, write, run make (shared by the C backend tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from nnopt.backends.c import CSources, generate_project
from nnopt.compiler.commands.compile import DEFAULT_NODE_LIMIT, plan_module, write_project
from nnopt.dialects import nn

CC = shutil.which("gcc") or shutil.which("cc")
ARM_CC = shutil.which("arm-none-eabi-gcc")
QEMU = shutil.which("qemu-system-arm")


@dataclass
class Project:
    """A generated project on disk."""

    folder: Path
    name: str
    src: CSources

    def make(self, *targets: str, timeout: float = 900, **variables: str) -> subprocess.CompletedProcess[str]:
        """Run ``make`` in the project; fails the test with the output when make fails."""
        args = ["make", "--no-print-directory", "-C", str(self.folder), *targets]
        args += [f"{k}={v}" for k, v in variables.items()]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, (
            f"make {' '.join(targets)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
        return proc

    def make_raw(
        self, *targets: str, timeout: float = 900, **variables: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``make`` and return the result whatever it is."""
        args = ["make", "--no-print-directory", "-C", str(self.folder), *targets]
        args += [f"{k}={v}" for k, v in variables.items()]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)

    def run_test(self, **variables: str) -> str:
        """Build the test program only (not the library) and run it; returns its output (asserted PASS)."""
        self.make(f"test_{self.name}", **variables)
        proc = subprocess.run(
            [str(self.folder / f"test_{self.name}")], capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0 and "PASS" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-2000:]
        return proc.stdout


def graph_of(module: ModuleOp) -> nn.GraphOp:
    """The module's only graph."""
    graphs = [op for op in module.walk() if isinstance(op, nn.GraphOp)]
    assert len(graphs) == 1
    return graphs[0]


def build_project(
    module: ModuleOp,
    folder: Path,
    name: str,
    *,
    vectors: int = 10,
    seed: int = 0,
    plan: bool = True,
    target: str = "host",
) -> Project:
    """Plan `module` (as `nnopt compile` does) unless told not to, generate the project, write it."""
    if plan:
        plan_module(module, target, DEFAULT_NODE_LIMIT)
    graph = graph_of(module)
    src, files = generate_project(
        graph, name=name, source=f"{name}.mlir", target=target, vectors=vectors, seed=seed
    )
    if folder.exists():
        shutil.rmtree(folder)
    os.makedirs(folder.parent, exist_ok=True)
    write_project(str(folder), files)
    return Project(folder, name, src)
