"""Shared fixtures: paths, the `../shared` data folder, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
BIN = Path(sys.executable).parent


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test when the folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (../shared is absent)")
    return path


@dataclass
class Result:
    """Outcome of a command-line run."""

    code: int
    out: str
    err: str


def run_tool(
    tool: str,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run one of nnopt's console scripts in a subprocess."""
    full_env = dict(os.environ)
    full_env.pop("NNOPT_TRACEBACK", None)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [str(BIN / tool), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=600,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_user_error(result: Result, *fragments: str) -> None:
    """Exit code 1, one `error:` message containing the fragments, no traceback."""
    assert result.code == 1, (result.code, result.out, result.err)
    assert "Traceback" not in result.err + result.out
    assert "error:" in result.err
    for fragment in fragments:
        assert fragment in result.err, (fragment, result.err)
