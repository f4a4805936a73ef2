"""`nn-assign-memspace`: give every buffer and constant a memory space of a target, add overlays.

    nnopt-opt model.tflite -p 'nn-bufferize,nn-assign-memspace{target=apollo4-plus},nn-plan-arena'
    nn-assign-memspace{target=stm32f746-ext pin="conv1_weight:dtcm","b3:sram" overlays=false}

Every buffer's ``#nn.buffer`` gets ``space = <memory>`` (and the memory's
alignment when larger); every ``nn.const`` gets ``nn.space = "<memory>"``.
Weights stay in non-volatile memory unless the cost model says a copy into
faster memory pays off; activations never go to non-volatile memory; faster
memories fill first, by benefit per byte; pins (``name:memory``, by value
name, constant name or buffer name) are honoured. With ``overlays=true`` (the
default), ops whose weights sit in slow memory get an ``nn.copy`` of them into
the free space of a fast arena ahead of use (one op early where a DMA engine
can copy during the previous layer). The algorithm is
`nnopt.passes.planning.placement`. When the model cannot fit at all, one
error names the peak step, the buffers live there and the shortfall.

The graph records the target in ``nn.target``; `nn-plan-arena` then plans one
arena per memory within the target's capacities (minus the constants held in
each memory).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp, StringAttr
from xdsl.ir import Attribute, Operation
from xdsl.passes import ModulePass

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.targets import Target, load_target
from nnopt.dialects import nn
from nnopt.passes.analysis.cost import OBJECTIVES, Traffic, analyze_traffic, const_names
from nnopt.passes.analysis.lifetimes import compute_lifetimes, executed_ops
from nnopt.passes.bufferize import bufferize_graph
from nnopt.passes.planning.placement import Placement, Placer
from nnopt.passes.planning.problem import align_up

TARGET_KEY = "nn.target"
"""Graph attribute: the target (preset name or file) the memory spaces come from."""

PLAN_KEYS = (nn.ARENAS_KEY, "nn.plan")
"""Graph attributes of an arena plan (dropped when spaces change)."""


def parse_pins(pins: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["name:space", ...]`` -> ``{name: space}`` (a `UserError` for malformed entries)."""
    out: dict[str, str] = {}
    for entry in pins:
        name, sep, space = entry.rpartition(":")
        name, space = name.strip().removeprefix("%"), space.strip()
        if not sep or not name or not space:
            raise UserError(
                f"pin '{entry}' must be NAME:MEMORY (a value, constant or buffer name, then a memory)"
            )
        if name in out and out[name] != space:
            raise UserError(f"'{name}' is pinned twice ({out[name]} and {space})")
        out[name] = space
    return out


def resolve_pins(
    graph: nn.GraphOp,
    traffic: Traffic,
    target: Target,
    pins: dict[str, str],
    weights: str = "",
    activations: str = "",
) -> dict[str, str]:
    """Item key -> memory for the pins (names of values, constants or buffers) and the blanket options."""
    names: dict[str, str] = {}
    for key, item in traffic.items.items():
        names.setdefault(key, key)
        for value in item.values:
            names.setdefault(value, key)
    # SSA names (%conv1) of results placed in buffers, as printed
    for op in graph.block.ops:
        for result in op.results:
            if result.name_hint:
                place = nn.value_place(result)
                if isinstance(op, nn.ConstOp):
                    names.setdefault(result.name_hint, traffic.const_keys[op])
                elif place is not None:
                    names.setdefault(result.name_hint, place.buffer.data)
    resolved: dict[str, str] = {}
    if weights:
        resolved |= dict.fromkeys(traffic.const_keys.values(), weights)
    if activations:
        resolved |= {k: activations for k, item in traffic.items.items() if item.kind != "constant"}
    for name, space in pins.items():
        found = names.get(name)
        if found is None:
            known = sorted(k for k in traffic.items)[:12]
            raise UserError(
                f"pin '{name}:{space}': no value, constant or buffer called '{name}' "
                f"(some names: {', '.join(known)}{', ...' if len(traffic.items) > 12 else ''})"
            )
        memory = target.memory(space)
        if traffic.items[found].kind != "constant" and not (memory.volatile and memory.writable):
            what = "read-only" if not memory.writable else "non-volatile"
            raise UserError(
                f"pin '{name}:{space}': '{name}' is written at run time and '{space}' is {what}; "
                f"activations live in volatile memory ({', '.join(m.name for m in target.volatile_memories)})"
            )
        resolved[found] = space
    return resolved


def assign_graph(
    graph: nn.GraphOp,
    target: Target,
    *,
    pins: dict[str, str] | None = None,
    overlays: bool = True,
    min_gain: float = 0.02,
    objective: str = "latency",
    weights: str = "",
    activations: str = "",
    target_spec: str = "",
) -> Placement:
    """Choose and write the memory spaces (and overlays) of one graph; returns the placement."""
    bufferize_graph(graph)
    traffic = analyze_traffic(graph)
    lifetimes = compute_lifetimes(graph)
    for space in (weights, activations):
        if space:
            target.memory(space)
    if activations and not (target.memory(activations).volatile and target.memory(activations).writable):
        raise UserError(
            f"activations={activations}: activations live in volatile memory "
            f"({', '.join(m.name for m in target.volatile_memories)})"
        )
    resolved = resolve_pins(graph, traffic, target, pins or {}, weights, activations)
    placement = Placer(
        target, traffic, lifetimes, pins=resolved, objective=objective, overlays=overlays, min_gain=min_gain
    ).place()
    write_placement(graph, target, placement, target_spec or target.name)
    return placement


def write_placement(graph: nn.GraphOp, target: Target, placement: Placement, target_spec: str) -> None:
    """Record a placement in the IR: buffer spaces, ``nn.space`` of constants, overlay copies."""
    consts = const_names(graph)
    by_name = {name: op for op, name in consts.items()}
    ops = executed_ops(graph)
    buffers: dict[str, Attribute] = {}
    for name, buf in nn.graph_buffers(graph).items():
        space = placement.spaces.get(name, target.fastest.name)
        memory = target.memory(space)
        buffers[name] = nn.BufferAttr(
            buf.size.data, max(buf.align.data, memory.alignment), buf.kind.data, space
        )
    for op, name in consts.items():
        op.attributes[nn.SPACE_KEY] = StringAttr(placement.spaces[name])
    for ov in placement.overlays:
        const = by_name[ov.const]
        consumer = ops[ov.consumer]
        before = ops[ov.start]
        copy = nn.CopyOp(const.results[0])
        copy.attributes[nn.PLACE_KEY] = nn.PlaceAttr(ov.name)
        hint = const.results[0].name_hint
        if hint:
            copy.results[0].name_hint = f"{hint}_{ov.space}"
        block = graph.block
        block.insert_op_before(copy, before)
        if not _defined_before(const, copy):
            const.detach()
            block.insert_op_before(const, copy)
        consumer.operands = [copy.results[0] if v is const.results[0] else v for v in consumer.operands]
        memory = target.memory(ov.space)
        buffers[ov.name] = nn.BufferAttr(ov.size, max(16, memory.alignment), "overlay", ov.space)
    graph.attributes[nn.BUFFERS_KEY] = DictionaryAttr(buffers)
    for key in PLAN_KEYS:
        graph.attributes.pop(key, None)
    graph.attributes[TARGET_KEY] = StringAttr(target_spec)


def _defined_before(const: Operation, user: Operation) -> bool:
    op = const.next_op
    while op is not None:
        if op is user:
            return True
        op = op.next_op
    return False


def graph_target(graph: nn.GraphOp) -> str:
    """The target recorded by nn-assign-memspace ('' when none)."""
    attr = graph.attributes.get(TARGET_KEY)
    return attr.data if isinstance(attr, StringAttr) else ""


def arena_capacities(graph: nn.GraphOp, target: Target) -> dict[str, int]:
    """Bytes each memory can give its arena: its capacity minus the constants it holds.

    A `UserError` when the graph's buffers have no memory space or name one the
    target lacks.
    """
    buffers = nn.graph_buffers(graph)
    if any(not b.space.data for b in buffers.values()):
        raise UserError(
            f"the buffers have no memory space: run nn-assign-memspace{{target={target.name}}} before "
            f"nn-plan-arena{{target={target.name}}}"
        )
    capacities = {m.name: m.capacity for m in target.memories}
    for b in buffers.values():
        target.memory(b.space.data)
    for op in graph.block.ops:
        if isinstance(op, nn.ConstOp):
            space = op.attributes.get(nn.SPACE_KEY)
            if isinstance(space, StringAttr) and space.data:
                memory = target.memory(space.data)
                capacities[memory.name] -= align_up(nn.tensor_bytes(op.results[0]), memory.alignment)
    return capacities


@dataclass(frozen=True)
class AssignMemspacePass(ModulePass):
    """Give every buffer and constant a memory space of a target; add weight overlays that pay off."""

    name = "nn-assign-memspace"

    target: str = ""
    """A target preset name or a target description FILE.toml (quote paths: target="boards/x.toml")."""
    pin: tuple[str, ...] = ()
    """NAME:MEMORY pins, quoted: pin="conv1_weight:dtcm","b3:sram" (value, constant or buffer names)."""
    overlays: bool = True
    """Copy weights from slow memory into free fast memory ahead of use where the cost model gains."""
    min_gain: float = 0.02
    """An overlay must save at least this fraction of its consumer's time (energy) to be worth it."""
    objective: str = "latency"
    """What the placement minimises: latency | energy."""
    weights: str = ""
    """Put every constant in this memory (a blanket pin)."""
    activations: str = ""
    """Put every buffer in this memory (a blanket pin)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not self.target:
            raise UserError("nn-assign-memspace needs a target: nn-assign-memspace{target=NAME|FILE.toml}")
        if self.objective not in OBJECTIVES:
            raise UserError(
                f"nn-assign-memspace: objective must be one of {', '.join(OBJECTIVES)}, got '{self.objective}'"
            )
        target = load_target(self.target)
        pins = parse_pins(self.pin)
        for graph in op.walk():
            if isinstance(graph, nn.GraphOp):
                assign_graph(
                    graph,
                    target,
                    pins=pins,
                    overlays=self.overlays,
                    min_gain=self.min_gain,
                    objective=self.objective,
                    weights=self.weights,
                    activations=self.activations,
                    target_spec=self.target,
                )
