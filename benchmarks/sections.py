"""The registry of benchmark sections, in the order BENCHMARKS.md shows them.

To add a section: write ``benchmarks/<module>.py`` with ``NAME``, ``TITLE`` and
``run(ctx: Context) -> SectionResult`` (see `benchmarks.common`), and list the
module here. ``python -m benchmarks --only NAME`` then runs it alone and
rewrites only its part of BENCHMARKS.md.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

SECTION_MODULES = (
    "benchmarks.interpreter",
    "benchmarks.planning",
    "benchmarks.minimalloc",
    "benchmarks.planner_speed",
    "benchmarks.schedule",
    "benchmarks.quantization",
    "benchmarks.memspace",
    "benchmarks.analog",
    "benchmarks.c_backend",
)


@dataclass(frozen=True)
class Section:
    """A registered section."""

    name: str
    title: str
    module: ModuleType


def all_sections() -> list[Section]:
    """Every section, in report order."""
    sections = []
    for path in SECTION_MODULES:
        module = importlib.import_module(path)
        sections.append(Section(module.NAME, module.TITLE, module))
    return sections
