"""BENCHMARKS.md: one delimited block per section, so a section can be re-run alone."""

from __future__ import annotations

import re
from collections.abc import Sequence

from benchmarks.common import SectionResult, machine_line

HEADER = """# nnopt benchmarks

Measured by the harness in `benchmarks/`: `make bench` (= `python -m benchmarks`) runs every section and
rewrites this file; `python -m benchmarks --only NAME` re-runs one section and replaces only its block;
`--repeat N` changes the repetitions, `--json FILE` also writes the raw numbers. Do not edit the blocks by
hand: the text in them, commentary included, is generated from the measurements.

The machine is small and shared (2 cores, other jobs running): times are medians of several runs, peers are
measured side by side in the same run (interleaved), and the ratios are the numbers to read, not the absolute
times. Each section names its machine state, date, versions and exact command.

Sections: {index}
"""

BEGIN = "<!-- bench:{name} -->"
END = "<!-- /bench:{name} -->"


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def render_section(number: int, result: SectionResult) -> str:
    """The Markdown block of one section result."""
    lines = [
        BEGIN.format(name=result.name),
        f"## {number}. {result.title}",
        "",
        f"Run {result.started}, took {result.seconds:.0f} s. Command: `{result.command}`"
        + (
            ""
            if "--only" in result.command
            else f" (this section alone: `python -m benchmarks --only {result.name}`)"
        )
        + ".",
        "",
        machine_line(result.machine),
        "",
    ]
    warning = load_warning(result.machine)
    if warning:
        lines.extend([warning, ""])
    if result.setup:
        lines.extend(f"- {s}" for s in result.setup)
        lines.append("")
    for table in result.tables:
        lines.append(table.markdown())
        lines.append("")
    if result.commentary:
        lines.append("What this shows:")
        lines.append("")
        lines.extend(f"- {c}" for c in result.commentary)
        lines.append("")
    lines.append(END.format(name=result.name))
    return "\n".join(lines)


def load_warning(machine: dict[str, str]) -> str:
    """A caution when other jobs kept the machine busier than its cores at the start of a section."""
    try:
        load = float(machine.get("load", "").split(",")[0])
        cores = int(machine.get("cores", "0"))
    except ValueError:
        return ""
    if cores <= 0 or load <= cores:
        return ""
    return (
        f"**Caution:** other jobs were running (load average {load:.1f} on {cores} cores); times are noisy "
        "(see the spreads), the side-by-side ratios less so."
    )


def placeholder(number: int, name: str, title: str) -> str:
    """The block of a section that has not been run yet."""
    return "\n".join(
        [
            BEGIN.format(name=name),
            f"## {number}. {title}",
            "",
            f"Not run yet: `python -m benchmarks --only {name}`.",
            END.format(name=name),
        ]
    )


def existing_blocks(text: str) -> dict[str, str]:
    """Section name -> its block (markers included) in an existing BENCHMARKS.md."""
    blocks: dict[str, str] = {}
    for m in re.finditer(r"<!-- bench:([\w-]+) -->.*?<!-- /bench:\1 -->", text, flags=re.S):
        blocks[m.group(1)] = m.group(0)
    return blocks


def renumber(block: str, number: int) -> str:
    """Give a kept block its current section number."""
    return re.sub(r"^## \d+\. ", f"## {number}. ", block, count=1, flags=re.M)


def compose(
    sections: Sequence[tuple[str, str]], results: dict[str, SectionResult], previous: str = ""
) -> str:
    """The whole file: new blocks for `results`, kept blocks from `previous` for the other sections."""
    old = existing_blocks(previous)
    index = " · ".join(f"[{i}. {title}](#{i}-{_anchor(title)})" for i, (_, title) in enumerate(sections, 1))
    parts = [HEADER.format(index=index).rstrip() + "\n"]
    for number, (name, title) in enumerate(sections, 1):
        if name in results:
            parts.append(render_section(number, results[name]))
        elif name in old:
            parts.append(renumber(old[name], number))
        else:
            parts.append(placeholder(number, name, title))
    return "\n\n".join(parts).rstrip() + "\n"
