"""Runs every lit/filecheck file as one pytest item, so pytest counts them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).parent / "filecheck"
FILES = sorted(p for p in SUITE.rglob("*") if p.suffix in (".mlir", ".nn") and "Output" not in p.parts)
LIT = [sys.executable, "-c", "from lit.main import main; main()"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SUITE)))
def test_lit(path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run([*LIT, "-v", str(path)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
