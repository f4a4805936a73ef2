"""Pass-pipeline syntax: MLIR's ``builtin.module(a,func.func(b{k=v}))`` and xDSL's ``a,b{k=v}``.

xDSL runs every pass on the whole module, so nested anchors such as
``func.func(...)`` or ``nn.graph(...)`` are flattened: their passes act
module-wide, in order.
"""

from __future__ import annotations

import re

from nnopt.compiler.diagnostics import UserError

_ANCHOR = re.compile(r"^\s*([A-Za-z_][\w.]*)\((.*)\)\s*$", re.S)


def split_top_level(spec: str) -> list[str]:
    """Split on commas that are not nested inside parentheses, braces or quotes."""
    parts: list[str] = []
    depth = 0
    quote = False
    cur: list[str] = []
    for ch in spec:
        if ch == '"':
            quote = not quote
        elif not quote:
            if ch in "({":
                depth += 1
            elif ch in ")}":
                depth -= 1
                if depth < 0:
                    raise UserError(f"unbalanced '{ch}' in pass pipeline '{spec}'")
            elif ch == "," and depth == 0:
                parts.append("".join(cur))
                cur = []
                continue
        cur.append(ch)
    if depth != 0 or quote:
        raise UserError(f"unbalanced brackets or quotes in pass pipeline '{spec}'")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def mlir_pipeline_to_xdsl(spec: str) -> str:
    """Flatten an MLIR textual pipeline into xDSL's comma-separated form."""
    out: list[str] = []
    for element in split_top_level(spec):
        match = _ANCHOR.match(element)
        is_anchor = match is not None and "{" not in element.split("(", 1)[0]
        if match is not None and is_anchor:
            inner = mlir_pipeline_to_xdsl(match.group(2))
            if inner:
                out.append(inner)
        else:
            out.append(element)
    return ",".join(out)


def pass_names(spec: str) -> list[str]:
    """The pass names of an xDSL pipeline string, options stripped."""
    return [element.split("{", 1)[0].strip() for element in split_top_level(spec)]
