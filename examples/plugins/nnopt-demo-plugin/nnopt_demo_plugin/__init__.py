"""An installable nnopt plugin: one pass, published through the `nnopt.plugins` entry point."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.passes import ModulePass
from xdsl.universe import Universe


@dataclass(frozen=True)
class TagGraphsPass(ModulePass):
    """Set the attribute `demo.tag` on every nn.graph."""

    name = "demo-tag-graphs"

    tag: str = "demo"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for inner in op.walk():
            if inner.name == "nn.graph":
                inner.attributes["demo.tag"] = StringAttr(self.tag)


def _tag_graphs() -> type[ModulePass]:
    return TagGraphsPass


UNIVERSE = Universe(all_passes={"demo-tag-graphs": _tag_graphs})
