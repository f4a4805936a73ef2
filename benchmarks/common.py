"""What every section shares: the run context, tables, timing statistics and the machine description.

A section is a module with ``NAME``, ``TITLE`` and ``run(ctx) -> SectionResult``
(registered in `benchmarks.sections`). It measures, then returns tables of raw
values (numbers stay numbers, so the JSON output is exact) and a few lines of
commentary derived from those values; `benchmarks.report` turns them into
Markdown.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding `benchmarks/`)."""

SHARED = (ROOT / ".." / "shared").resolve()
"""Data beside the checkout: real models and packing instances."""


@dataclass
class Context:
    """Settings of one harness run, shared by all sections."""

    repeat: int | None = None
    """Override of every section's repetition count (None: each section's default)."""
    models: list[str] = field(default_factory=list)
    """Only models whose file name contains one of these strings (empty: all)."""
    models_dir: Path = SHARED / "models"
    examples_dir: Path = ROOT / "examples" / "models"
    minimalloc_dir: Path = SHARED / "benchmarks" / "minimalloc"
    time_limit: float = 60.0
    """Planner time limit of the MiniMalloc section (seconds)."""
    quick: bool = False
    """Smaller workloads (for smoke tests): fewer instances and shorter limits."""
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))

    def reps(self, default: int) -> int:
        """Repetitions for a section whose default is `default`."""
        return max(1, self.repeat) if self.repeat is not None else default

    def wants(self, name: str) -> bool:
        """Whether a model file name passes the ``--models`` filter."""
        return not self.models or any(m in name for m in self.models)


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------

KINDS = ("text", "int", "bytes", "ms", "s", "ratio", "pct", "spread", "bool")


@dataclass(frozen=True)
class Column:
    """One table column: the row key, its header and how values are printed."""

    key: str
    header: str
    kind: str = "text"
    """text | int | bytes (thousands separators) | ms | s | ratio (x) | pct (signed) | spread (%) | bool."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.key}: unknown kind {self.kind}")

    @property
    def right(self) -> bool:
        """Numbers are right-aligned."""
        return self.kind != "text"


def format_value(value: object, kind: str) -> str:
    """Markdown text of a cell; strings (reasons such as 'n/a: …') are printed as they are."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if not isinstance(value, int | float):
        return str(value)
    if kind in ("int", "bytes"):
        return f"{int(value):,}"
    if kind == "ms":
        ms = value * 1e3
        return (
            f"{ms:.4f}"
            if ms < 0.1
            else f"{ms:.3f}"
            if ms < 10
            else f"{ms:.1f}"
            if ms < 1000
            else f"{ms:,.0f}"
        )
    if kind == "s":
        return f"{value:.4f}" if value < 0.01 else f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if kind == "ratio":
        return f"{value:.3f}x" if value < 10 else f"{value:.1f}x"
    if kind == "spread":
        return f"{value * 100:.0f} %"
    if kind == "pct":
        return f"{value * 100:+.1f} %"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class Table:
    """Rows of raw values under typed columns, plus footnotes."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, **row: Any) -> dict[str, Any]:
        """Append a row (unknown keys are kept for the JSON output only)."""
        self.rows.append(row)
        return row

    def unavailable(self, row: dict[str, Any], key: str, reason: str, label: str = "n/a") -> None:
        """Mark a cell as missing: a short label in the table, the reason in a footnote."""
        row[key] = label
        row.setdefault("why", {})[key] = reason

    def reasons(self) -> list[str]:
        """One footnote per missing cell: row, column, why."""
        headers = {c.key: c.header for c in self.columns}
        first = self.columns[0].key
        return [
            f"`{r.get(first)}`, {headers.get(key, key)}: {why}"
            for r in self.rows
            for key, why in r.get("why", {}).items()
        ]

    def markdown(self) -> str:
        """A GitHub Markdown table."""
        head = "| " + " | ".join(c.header for c in self.columns) + " |"
        rule = "|" + "|".join("---:" if c.right else "---" for c in self.columns) + "|"
        body = [
            "| "
            + " | ".join(format_value(r.get(c.key), c.kind).replace("|", "\\|") for c in self.columns)
            + " |"
            for r in self.rows
        ]
        parts = [f"**{self.title}**", "", head, rule, *body]
        notes = [*self.notes, *self.reasons()]
        if notes:
            parts.append("")
            parts.extend(f"- {n}" for n in notes)
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        """Raw rows (numbers unformatted)."""
        return {
            "title": self.title,
            "columns": [{"key": c.key, "header": c.header, "kind": c.kind} for c in self.columns],
            "rows": [{k: _jsonable(v) for k, v in r.items()} for r in self.rows],
            "notes": self.notes,
        }


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass
class SectionResult:
    """What one section measured."""

    name: str
    title: str
    command: str
    started: str
    seconds: float = 0.0
    setup: list[str] = field(default_factory=list)
    """How it was measured (repetitions, options, peers): printed above the tables."""
    tables: list[Table] = field(default_factory=list)
    commentary: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Everything, raw."""
        return {
            "name": self.name,
            "title": self.title,
            "command": self.command,
            "started": self.started,
            "seconds": self.seconds,
            "setup": self.setup,
            "machine": self.machine,
            "tables": [t.to_json() for t in self.tables],
            "commentary": self.commentary,
        }


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


@contextlib.contextmanager
def single_thread_blas() -> Iterator[str]:
    """Limit numpy's BLAS to one thread (as the peers run), yielding a description of what is in effect.

    On a loaded 2-core machine, a 2-thread OpenBLAS spins against the other jobs and single inferences
    vary by 10x or more; one thread is both fair to single-threaded peers and stable.
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        yield "numpy with its default BLAS threads (threadpoolctl is not installed)"
        return
    with threadpool_limits(limits=1):
        yield "numpy's BLAS limited to 1 thread (threadpoolctl)"


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> float:
    """Relative spread (max - min) / median, a noise indicator."""
    m = median(values)
    return (max(values) - min(values)) / m if m > 0 else 0.0


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock seconds of one call, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ratio(a: float | int | None, b: float | int | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    if a is None or b is None or isinstance(a, str) or isinstance(b, str) or b == 0:
        return None
    return float(a) / float(b)


def now() -> str:
    """The current UTC time, ISO-formatted to the second."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_error(exc: BaseException, limit: int = 240, strip: str = "") -> str:
    """One line of an exception, shortened; `strip` (e.g. a file path prefix) is removed."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if strip:
        text = text.replace(f"{strip}: ", "").replace(strip, "")
    text = text.split("; nnopt imports ")[0]  # the importer's list of every supported operator
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------

PACKAGES = (
    "nnopt",
    "xdsl",
    "numpy",
    "ai-edge-litert",
    "tflite-micro",
    "ethos-u-vela",
    "onnxruntime",
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> str:
    """Commit of the checkout, with ``+dirty`` when tracked files differ from it."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def machine_info() -> dict[str, str]:
    """CPU, cores, load, OS, Python and the versions of nnopt and the peers."""
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    info = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "load": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "nnopt commit": git_revision(),
    }
    for dist in PACKAGES:
        info[dist] = _version(dist)
    return info


def machine_line(info: dict[str, str]) -> str:
    """One Markdown line describing the machine and the versions."""
    versions = ", ".join(f"{d} {info.get(d, '?')}" for d in PACKAGES if d in info)
    return (
        f"Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, load average at start "
        f"{info.get('load', '?')}; {info.get('os', '?')}, Python {info.get('python', '?')}; "
        f"nnopt commit `{info.get('nnopt commit', '?')}`; {versions}."
    )


def join_nonempty(parts: Iterable[str], sep: str = "; ") -> str:
    """Join the non-empty strings."""
    return sep.join(p for p in parts if p)
