"""Synthetic branching models (as `.nn` text) that give `nn-schedule` something to decide.

`towers` is an Inception-like block of parallel branches of different widths
joined by a concat; `randwire` is a randomly wired cell (Watts-Strogatz ring
oriented into a DAG, as in RandWire / Serenity's irregular networks): each
node concatenates its inputs and applies a 1x1 convolution of its own width.
"""

from __future__ import annotations

import random


def towers(branches: int, depth: int, *, size: int = 16, seed: int = 0, reverse: bool = False) -> str:
    """`branches` parallel towers of `depth` 1x1/3x3 convolutions from one stem, concatenated.

    Branch ``i`` is ``8 * (i + 1)`` channels wide inside and 8 wide at its end.
    The text lists the branches breadth first (layer by layer across branches),
    the order a naive exporter produces; `reverse` lists the widest branch first.
    """
    rng = random.Random(seed)
    lines = [f"model towers_{branches}x{depth}", "seed 0", f"input x: f32[1, {size}, {size}, 8]"]
    lines.append("stem = conv2d(x, filters=16, kernel=3, padding=same, activation=relu)")
    names = [["stem"] for _ in range(branches)]
    order = list(range(branches))
    if reverse:
        order.reverse()
    for level in range(depth):
        for b in order:
            last = level == depth - 1
            filters = 8 if last else 8 * (b + 1) * rng.choice((1, 2))
            kernel = 3 if level % 2 else 1
            name = f"t{b}_{level}"
            lines.append(
                f"{name} = conv2d({names[b][-1]}, filters={filters}, kernel={kernel}, padding=same, activation=relu)"
            )
            names[b].append(name)
    ends = ", ".join(n[-1] for n in names)
    lines += [
        f"joined = concat({ends}, axis=3)",
        "gap = mean(joined, axes=[1, 2])",
        "logits = fully_connected(gap, units=10)",
        "output logits",
    ]
    return "\n".join(lines) + "\n"


def randwire(nodes: int, *, k: int = 4, p: float = 0.75, size: int = 16, seed: int = 0) -> str:
    """A randomly wired cell: WS(nodes, k, p) ring rewired, edges oriented from lower to higher node."""
    rng = random.Random(seed)
    edges: set[tuple[int, int]] = set()
    for i in range(nodes):
        for j in range(1, k // 2 + 1):
            a, b = i, (i + j) % nodes
            if rng.random() < p:
                b = rng.randrange(nodes)
                while b == a or (min(a, b), max(a, b)) in edges:
                    b = rng.randrange(nodes)
            edges.add((min(a, b), max(a, b)))
    preds: dict[int, list[int]] = {v: sorted(a for a, b in edges if b == v) for v in range(nodes)}
    succs = {v: [b for a, b in edges if a == v] for v in range(nodes)}
    lines = [f"model randwire_{nodes}_s{seed}", "seed 0", f"input x: f32[1, {size}, {size}, 8]"]
    for v in range(nodes):
        width = rng.choice((8, 16, 32, 64))
        if preds[v]:
            srcs = [f"n{u}" for u in preds[v]]
            src = srcs[0]
            if len(srcs) > 1:
                lines.append(f"cat{v} = concat({', '.join(srcs)}, axis=3)")
                src = f"cat{v}"
        else:
            src = "x"
        lines.append(f"n{v} = conv2d({src}, filters={width}, kernel=1, activation=relu)")
    sinks = [f"n{v}" for v in range(nodes) if not succs[v]]
    out = sinks[0]
    if len(sinks) > 1:
        lines.append(f"out = concat({', '.join(sinks)}, axis=3)")
        out = "out"
    lines += [f"gap = mean({out}, axes=[1, 2])", "logits = fully_connected(gap, units=10)", "output logits"]
    return "\n".join(lines) + "\n"


def reversed_branching() -> str:
    """examples/models/branching_inception.nn with its wide path written (and run) before the cheap one."""
    from benchmarks.common import ROOT

    lines = (ROOT / "examples" / "models" / "branching_inception.nn").read_text().splitlines()
    a_line = next(line for line in lines if line.startswith("a "))
    lines.remove(a_line)
    at = next(i for i, line in enumerate(lines) if line.startswith("b_out"))
    lines.insert(at + 1, a_line)
    return "\n".join(lines) + "\n"
