"""Plain-text tables and human-readable quantities for the report commands."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """An aligned text table; columns whose index is in `right` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def size(n: float) -> str:
    """Bytes as ``512 B``, ``16.0 KiB``, ``2.00 MiB``, ``4.00 GiB``."""
    if n < 1024:
        return f"{int(n)} B"
    for unit, scale in (("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)):
        if n < scale * 1024 or unit == "GiB":
            value = n / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n} B"  # pragma: no cover


def seconds(s: float) -> str:
    """A duration in s, ms or µs with 3-4 significant digits."""
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.2f} us"


def joules(j: float) -> str:
    """An energy in J, mJ, µJ or nJ."""
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("uJ", 1e-6)):
        if j >= scale:
            return f"{j / scale:.3f} {unit}"
    return f"{j * 1e9:.2f} nJ"


def count(n: float) -> str:
    """A count with a K/M/G suffix (``1.23M``)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.3g}"


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters with an ellipsis in the middle."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep // 2] + "~" + text[len(text) - (keep - keep // 2) :]


def write_text(path: str, text: str) -> None:
    """Write `text` to `path` atomically (nothing is left half-written)."""
    from nnopt.compiler.diagnostics import atomic_output

    with atomic_output(path) as handle:
        handle.write(text)  # type: ignore[attr-defined]


def write_json(path: str, data: object) -> None:
    """Write `data` as indented JSON to `path` atomically."""
    import json

    write_text(path, json.dumps(data, indent=2) + "\n")
