"""Cost model: MACs, parameters, bytes moved per memory space, cycles and energy of every op.

Two halves. `analyze_traffic(graph)` is independent of any target: for each
executed op it counts the work (MACs, or element operations for elementwise
ops, pools and the rest), the parameters, and every access to a storage
*item* (a buffer, or a constant) with its bytes and how many times they are
read. `CostModel(target, traffic).evaluate(placement)` then prices a
placement (item -> memory space) on a target.

Access model (CMSIS-NN-like kernels on a microcontroller, documented in
``docs/targets.md``):

* weights are re-read once per pair of output pixels (``conv2d``, 1x1 or not),
  once per output pixel (``depthwise_conv2d``) and once per row of the input
  (``fully_connected``, ``matmul`` with a constant operand); biases likewise;
* window ops read their input ``KH*KW/(SH*SW)`` times (at least once); other
  ops read each input once; every op writes its result once; scratch memory is
  written and read once; a view (a result placed in its operand's buffer at the
  same bytes) moves nothing;
* a read from a memory costs ``1/bandwidth + latency/burst`` seconds per byte;
  through the data cache (memories marked ``cached``) the latency is spread
  over a cache line instead, and when all the weights an op re-reads through
  the cache fit in it together, they are fetched from the memory once: the
  other passes hit the cache (priced like the fastest memory);
* an op takes ``max(compute, memory)`` (roofline): compute is
  ``MACs / macs_per_cycle[class] / clock``, memory the sum over its accesses;
* ``nn.copy`` (an overlay) moves its bytes at the slower of the two memories;
  with a DMA engine it runs beside the processor from where it stands until its
  consumer needs it (one channel, copies in program order), without one the
  processor does it;
* energy: bytes times the memories' per-byte energies, MACs times the MAC
  energy, plus the core's base power and the leakage of every powered memory
  over the run time. A memory is powered when it holds something or cannot be
  powered off; an unused memory that can be powered off costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xdsl.ir import BlockArgument, Operation, OpResult, SSAValue

from nnopt.compiler.targets import Memory, Target
from nnopt.dialects import nn
from nnopt.passes.analysis.lifetimes import executed_ops, value_name

ELEMENTWISE_OPS = (
    nn.AddOp,
    nn.SubOp,
    nn.MulOp,
    nn.ReluOp,
    nn.Relu6Op,
    nn.ClampOp,
    nn.QuantizeOp,
    nn.DequantizeOp,
)
"""Ops priced as elementwise (one element operation per output element)."""

OBJECTIVES = ("latency", "energy")
"""What a placement may minimise."""


# --------------------------------------------------------------------------
# Target-independent traffic
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """`bytes` of storage item `item` read `passes` times (or written once when `write`)."""

    item: str
    bytes: int
    passes: int = 1
    write: bool = False
    weight: bool = False
    """A constant operand: the cache rule applies."""


@dataclass
class OpTraffic:
    """What one executed op computes and moves."""

    step: int
    name: str
    """Its result's name (or the op name when it has none)."""
    opname: str
    op_class: str
    """One of `nnopt.compiler.targets.OP_KINDS`, or ``copy``."""
    macs: int
    params: int
    param_bytes: int
    accesses: list[Access] = field(default_factory=list)
    copy_source: str | None = None
    """For ``nn.copy``: the item it copies from (its write access names the destination)."""
    waits_for: tuple[str, ...] = ()
    """Items produced by copies this op reads (it waits for those copies)."""


@dataclass
class Item:
    """A storage item: a buffer (or an unbufferized value), or a constant."""

    key: str
    size: int
    kind: str
    """``constant``, or a buffer kind (activation, input, output, scratch, variable, overlay)."""
    values: list[str] = field(default_factory=list)


@dataclass
class Traffic:
    """The target-independent traffic of a graph: per-op work and accesses, and the items."""

    graph: str
    ops: list[OpTraffic]
    items: dict[str, Item]
    const_keys: dict[Operation, str]
    """``nn.const`` op -> its item key (its unique name)."""

    def users(self) -> dict[str, list[int]]:
        """Item -> indices (in `ops`) of the ops that access it."""
        out: dict[str, list[int]] = {k: [] for k in self.items}
        for i, op in enumerate(self.ops):
            for key in {a.item for a in op.accesses}:
                out.setdefault(key, []).append(i)
        return out

    def total_macs(self) -> int:
        return sum(op.macs for op in self.ops)


def const_names(graph: nn.GraphOp) -> dict[Operation, str]:
    """A unique readable name for every ``nn.const`` of a graph (its value name)."""
    names: dict[Operation, str] = {}
    used: set[str] = set()
    index = 0
    for op in graph.block.ops:
        if isinstance(op, nn.ConstOp):
            base = value_name(op.result, f"const{index}")
            index += 1
            name, k = base, 1
            while name in used:
                name = f"{base}#{k}"
                k += 1
            used.add(name)
            names[op] = name
    return names


def _is_param(value: SSAValue) -> bool:
    """A constant, or an overlay copy of one (weights read from fast memory are still weights)."""
    if isinstance(value, OpResult) and isinstance(value.op, nn.CopyOp):
        return _is_param(value.op.input)
    return _is_const(value)


def _is_const(value: SSAValue) -> bool:
    return isinstance(value, OpResult) and isinstance(value.op, nn.ConstOp)


def _window(op: Operation) -> tuple[int, int, int, int]:
    """(KH, KW, SH, SW) of a window op."""
    assert isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp | nn.MaxPool2DOp | nn.AvgPool2DOp)
    if isinstance(op, nn.MaxPool2DOp | nn.AvgPool2DOp):
        kh, kw = nn.ints(op.kernel)
    else:
        shape = nn.shape_of(op.weight)
        kh, kw = shape[1], shape[2]
    strides = nn.ints(op.strides, (1, 1))
    return kh, kw, strides[0], strides[1]


def analyze_traffic(graph: nn.GraphOp) -> Traffic:
    """The per-op work and storage accesses of `graph` (bufferized or not)."""
    consts = const_names(graph)
    items: dict[str, Item] = {}
    buffers = nn.graph_buffers(graph)
    value_keys: dict[SSAValue, str] = {}
    used_names: set[str] = set(consts.values())

    def key_of(value: SSAValue) -> str:
        if isinstance(value, OpResult) and isinstance(value.op, nn.ConstOp):
            return consts[value.op]
        if value in value_keys:
            return value_keys[value]
        place = nn.value_place(value)
        if place is not None:
            key = place.buffer.data
            buf = buffers.get(key)
            item = items.get(key)
            if item is None:
                kind = buf.kind.data if buf is not None else "activation"
                item = items[key] = Item(
                    key, buf.size.data if buf is not None else nn.tensor_bytes(value), kind
                )
            item.values.append(value_name(value, key))
        else:
            base = value_name(value, f"v{len(value_keys)}")
            key, k = base, 1
            while key in used_names:
                key = f"{base}#{k}"
                k += 1
            used_names.add(key)
            kind = "input" if isinstance(value, BlockArgument) else "activation"
            items[key] = Item(key, nn.tensor_bytes(value), kind, [key])
        value_keys[value] = key
        return key

    for op, name in consts.items():
        items[name] = Item(name, nn.tensor_bytes(op.results[0]), "constant", [name])
    for arg in graph.block.args:
        key_of(arg)
    outputs = set(graph.output.values)
    for value in outputs:
        if not _is_const(value):
            key = key_of(value)
            if items[key].kind == "activation":
                items[key].kind = "output"

    copy_items: set[str] = set()
    ops: list[OpTraffic] = []
    for step, op in enumerate(executed_ops(graph)):
        result = op.results[0] if op.results else None
        name = value_name(result, f"%{step}") if result is not None else op.name
        traffic = _op_traffic(op, step, name, key_of)
        scratch = op.attributes.get(nn.SCRATCH_KEY)
        if isinstance(scratch, nn.PlaceAttr):
            skey = scratch.buffer.data
            buf = buffers.get(skey)
            size = buf.size.data if buf is not None else 0
            if skey not in items:
                items[skey] = Item(skey, size, "scratch")
            if size:
                traffic.accesses.append(Access(skey, size, 1, write=True))
                traffic.accesses.append(Access(skey, size, 1))
        if isinstance(op, nn.CopyOp):
            copy_items.add(key_of(op.output))
        traffic.waits_for = tuple(
            sorted({key_of(v) for v in op.operands if not _is_const(v) and key_of(v) in copy_items})
        )
        ops.append(traffic)
    for key in copy_items:
        if items[key].kind == "activation":
            items[key].kind = "overlay"
    return Traffic(graph.sym_name.data, ops, items, consts)


def _op_traffic(op: Operation, step: int, name: str, key_of: Any) -> OpTraffic:
    """Work and accesses of one op."""
    opname = op.name
    result = op.results[0] if op.results else None
    out_bytes = nn.tensor_bytes(result) if result is not None else 0
    const_operands = [v for v in op.operands if _is_param(v)]
    params = sum(nn.num_elements(nn.shape_of(v)) for v in const_operands)
    param_bytes = sum(nn.tensor_bytes(v) for v in const_operands)
    t = OpTraffic(step, name, opname, "other", 0, params, param_bytes)

    def read(value: SSAValue, passes: int = 1) -> None:
        t.accesses.append(
            Access(key_of(value), nn.tensor_bytes(value), max(1, passes), weight=_is_param(value))
        )

    def write() -> None:
        if result is not None and out_bytes:
            t.accesses.append(Access(key_of(result), out_bytes, 1, write=True))

    if isinstance(op, nn.CopyOp):
        t.op_class = "copy"
        t.params = t.param_bytes = 0  # counted where the copy is used
        t.copy_source = key_of(op.input)
        read(op.input)
        write()
        return t
    if isinstance(op, nn.Conv2DOp | nn.DepthwiseConv2DOp):
        n, oh, ow, oc = nn.shape_of(op.output)
        kh, kw, sh, sw = _window(op)
        pixels = n * oh * ow
        if isinstance(op, nn.Conv2DOp):
            cin = nn.shape_of(op.weight)[3]
            t.macs = pixels * oc * kh * kw * cin
            t.op_class = "conv2d_1x1" if kh == kw == 1 else "conv2d"
            passes = math.ceil(pixels / 2)
        else:
            t.macs = pixels * oc * kh * kw
            t.op_class = "depthwise_conv2d"
            passes = pixels
        read(op.input, math.ceil(kh * kw / (sh * sw)))
        for v in op.operands[1:]:
            read(v, passes if _is_param(v) else 1)
        write()
        return t
    if isinstance(op, nn.FullyConnectedOp):
        w = nn.shape_of(op.weight)
        rows = nn.num_elements(nn.shape_of(op.input)) // max(1, w[1])
        t.macs = rows * w[0] * w[1]
        t.op_class = "fully_connected"
        read(op.input)
        for v in op.operands[1:]:
            read(v, rows if _is_param(v) else 1)
        write()
        return t
    if isinstance(op, nn.MatMulOp):
        a, b = op.operands[0], op.operands[1]
        out = nn.shape_of(op.results[0])
        k = nn.shape_of(a)[-1] if not op.adj_x else nn.shape_of(a)[-2]
        t.macs = nn.num_elements(out) * k
        t.op_class = "matmul"
        rows = nn.num_elements(out) // max(1, out[-1]) if out else 1
        read(a, rows if _is_param(a) else 1)
        read(b, rows if _is_param(b) else 1)
        write()
        return t
    if isinstance(op, nn.MaxPool2DOp | nn.AvgPool2DOp):
        kh, kw, sh, sw = _window(op)
        t.macs = nn.num_elements(nn.shape_of(op.results[0])) * kh * kw
        t.op_class = "pool"
        read(op.operands[0], math.ceil(kh * kw / (sh * sw)))
        write()
        return t
    if isinstance(op, nn.MeanOp):
        t.macs = nn.num_elements(nn.shape_of(op.operands[0]))
        t.op_class = "pool"
        read(op.operands[0])
        write()
        return t
    if isinstance(op, nn.ReshapeOp) and result is not None:
        before, after = nn.value_place(op.operands[0]), nn.value_place(result)
        if before is not None and after is not None and before == after:
            return t  # a view: nothing moves
        t.op_class = "other"
        read(op.operands[0])
        write()
        return t
    if isinstance(op, ELEMENTWISE_OPS):
        t.op_class = "elementwise"
    elif isinstance(op, nn.SoftmaxOp | nn.LogisticOp | nn.TanhOp):
        t.op_class = "other"
    t.macs = nn.num_elements(nn.shape_of(result)) if result is not None else 0
    for v in op.operands:
        read(v)
    write()
    return t


# --------------------------------------------------------------------------
# Pricing a placement
# --------------------------------------------------------------------------


@dataclass
class OpCost:
    """One row of the per-layer cost table."""

    step: int
    name: str
    opname: str
    op_class: str
    macs: int
    params: int
    param_bytes: int
    reads: dict[str, int]
    """Bytes read per memory space (``cache`` for weight passes served by the data cache)."""
    writes: dict[str, int]
    compute_s: float
    memory_s: float
    seconds: float
    """Its own duration: max(compute, memory), or the transfer time of a copy."""
    start_s: float = 0.0
    end_s: float = 0.0
    """When it starts and ends on the timeline (copies with a DMA run beside the processor)."""
    energy_j: float = 0.0
    """Dynamic energy (bytes and MACs)."""
    async_copy: bool = False

    @property
    def bound(self) -> str:
        """``compute`` or ``memory`` (``copy`` for copies)."""
        if self.op_class == "copy":
            return "copy"
        return "memory" if self.memory_s > self.compute_s else "compute"

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "name": self.name,
            "op": self.opname,
            "class": self.op_class,
            "macs": self.macs,
            "params": self.params,
            "param_bytes": self.param_bytes,
            "reads": dict(self.reads),
            "writes": dict(self.writes),
            "compute_us": self.compute_s * 1e6,
            "memory_us": self.memory_s * 1e6,
            "us": self.seconds * 1e6,
            "start_us": self.start_s * 1e6,
            "end_us": self.end_s * 1e6,
            "bound": self.bound,
            "energy_uj": self.energy_j * 1e6,
            "async": self.async_copy,
        }


@dataclass
class CostReport:
    """The price of a placement on a target."""

    target: str
    ops: list[OpCost]
    latency_s: float
    dynamic_j: float
    base_j: float
    leakage_j: float
    powered: list[str]
    bytes_per_space: dict[str, int]
    """Bytes of items held per memory space (buffers counted whole, not packed)."""

    @property
    def energy_j(self) -> float:
        """Total energy of one inference."""
        return self.dynamic_j + self.base_j + self.leakage_j

    def objective(self, name: str) -> float:
        """The value of an objective (`OBJECTIVES`)."""
        return self.latency_s if name == "latency" else self.energy_j

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "latency_us": self.latency_s * 1e6,
            "energy_uj": self.energy_j * 1e6,
            "dynamic_uj": self.dynamic_j * 1e6,
            "base_uj": self.base_j * 1e6,
            "leakage_uj": self.leakage_j * 1e6,
            "powered": list(self.powered),
            "macs": sum(op.macs for op in self.ops),
            "ops": [op.as_dict() for op in self.ops],
        }


class CostModel:
    """Prices placements of one graph's traffic on one target."""

    def __init__(self, target: Target, traffic: Traffic) -> None:
        self.target = target
        self.traffic = traffic
        self.memories: dict[str, Memory] = {m.name: m for m in target.memories}
        proc = target.processor
        self.clock = proc.clock_hz
        fastest = target.by_speed()[0]
        self.hit_cost = 1.0 / fastest.read_bandwidth
        self.hit_energy = fastest.read_energy

    # -- per access ------------------------------------------------------
    def _memory(self, space: str) -> Memory:
        memory = self.memories.get(space)
        if memory is None:
            return self.target.memory(space)  # raises a UserError naming the memories
        return memory

    def access_cost(self, access: Access, space: str, working_set: int = 0) -> tuple[float, float, int, int]:
        """(seconds, joules, bytes from the memory, bytes from the cache) of one access.

        `working_set`: bytes of all the weights the op reads through the cache; the
        passes after the first hit the cache only when they all fit in it together."""
        m = self._memory(space)
        proc = self.target.processor
        if access.write:
            n = access.bytes * access.passes
            return n * m.write_seconds_per_byte(), n * m.write_energy, n, 0
        cached = m.cached and proc.cache_bytes > 0
        line = proc.cache_line if cached else 0
        per_byte = m.read_seconds_per_byte(line)
        fits = max(working_set, access.bytes) <= proc.cache_bytes
        if cached and access.weight and fits and access.passes > 1:
            memory_bytes = access.bytes
            hit_bytes = access.bytes * (access.passes - 1)
        else:
            memory_bytes = access.bytes * access.passes
            hit_bytes = 0
        seconds = memory_bytes * per_byte + hit_bytes * self.hit_cost
        joules = memory_bytes * m.read_energy + hit_bytes * self.hit_energy
        return seconds, joules, memory_bytes, hit_bytes

    def op_cost(self, op: OpTraffic, placement: Mapping[str, str]) -> OpCost:
        """The cost of one op under a placement (timeline fields left at 0)."""
        proc = self.target.processor
        reads: dict[str, int] = {}
        writes: dict[str, int] = {}
        memory_s = 0.0
        energy = op.macs * proc.mac_energy
        if op.op_class == "copy":
            assert op.copy_source is not None
            src = self._memory(placement[op.copy_source])
            dst_access = next(a for a in op.accesses if a.write)
            dst = self._memory(placement[dst_access.item])
            n = dst_access.bytes
            rate = min(
                src.read_bandwidth, dst.write_bandwidth if dst.write_bandwidth > 0 else src.read_bandwidth
            )
            seconds = n / rate + src.read_latency + dst.write_latency
            reads[src.name] = n
            writes[dst.name] = n
            energy += n * (src.read_energy + dst.write_energy)
            return OpCost(
                op.step,
                op.name,
                op.opname,
                "copy",
                0,
                0,
                0,
                reads,
                writes,
                0.0,
                seconds,
                seconds,
                energy_j=energy,
            )
        working_set = sum(
            a.bytes
            for a in op.accesses
            if a.weight and not a.write and a.passes > 1 and self._memory(placement[a.item]).cached
        )
        for access in op.accesses:
            space = placement[access.item]
            seconds, joules, memory_bytes, hit_bytes = self.access_cost(access, space, working_set)
            memory_s += seconds
            energy += joules
            target = writes if access.write else reads
            target[space] = target.get(space, 0) + memory_bytes
            if hit_bytes:
                reads["cache"] = reads.get("cache", 0) + hit_bytes
        compute_s = op.macs / proc.throughput(op.op_class) / self.clock if op.macs else 0.0
        return OpCost(
            op.step,
            op.name,
            op.opname,
            op.op_class,
            op.macs,
            op.params,
            op.param_bytes,
            reads,
            writes,
            compute_s,
            memory_s,
            max(compute_s, memory_s),
            energy_j=energy,
        )

    # -- the whole graph --------------------------------------------------
    def evaluate(self, placement: Mapping[str, str]) -> CostReport:
        """Price a placement: every item of the traffic must have a memory space."""
        missing = [k for k in self.traffic.items if k not in placement]
        if missing:
            raise KeyError(f"no memory space for {', '.join(missing[:5])}")
        proc = self.target.processor
        costs = [self.op_cost(op, placement) for op in self.traffic.ops]
        cpu = 0.0
        dma = 0.0
        ready: dict[str, float] = {}
        for op, cost in zip(self.traffic.ops, costs, strict=True):
            if op.op_class == "copy" and proc.dma:
                start = max(cpu, dma)
                dma = start + cost.seconds
                cost.start_s, cost.end_s, cost.async_copy = start, dma, True
                for a in op.accesses:
                    if a.write:
                        ready[a.item] = dma
                continue
            start = max([cpu, *(ready.get(k, 0.0) for k in op.waits_for)])
            cpu = start + cost.seconds
            cost.start_s, cost.end_s = start, cpu
        latency = max(cpu, 0.0)
        held: dict[str, int] = {}
        for key, item in self.traffic.items.items():
            held[placement[key]] = held.get(placement[key], 0) + item.size
        powered = [m.name for m in self.target.memories if held.get(m.name, 0) > 0 or not m.power_off]
        leakage = sum(self.memories[name].leakage for name in powered) * latency
        dynamic = sum(c.energy_j for c in costs)
        return CostReport(
            self.target.name,
            costs,
            latency,
            dynamic,
            proc.base_power * latency,
            leakage,
            powered,
            held,
        )


# --------------------------------------------------------------------------
# Placements read from the IR
# --------------------------------------------------------------------------


def default_space(target: Target, item: Item) -> str:
    """Where an item without a memory space is assumed to live.

    Activations: the fastest volatile memory. Constants: the fastest
    non-volatile memory, or the fastest memory when there is none.
    """
    if item.kind == "constant":
        nvm = target.by_speed(tuple(m for m in target.memories if not m.volatile))
        return (nvm or target.by_speed())[0].name
    return target.fastest.name


def ir_placement(graph: nn.GraphOp, traffic: Traffic, target: Target) -> dict[str, str]:
    """The placement recorded in the IR (``space`` of buffers, ``nn.space`` of constants),
    with `default_space` for items that have none."""
    placement: dict[str, str] = {}
    buffers = nn.graph_buffers(graph)
    for op, key in traffic.const_keys.items():
        space = op.attributes.get(nn.SPACE_KEY)
        text = getattr(space, "data", None)
        if isinstance(text, str) and text:
            placement[key] = text
    for key, item in traffic.items.items():
        if key in placement:
            continue
        buf = buffers.get(key)
        if buf is not None and buf.space.data:
            placement[key] = buf.space.data
        else:
            placement[key] = default_space(target, item)
    for name in set(placement.values()):
        target.memory(name)  # a UserError when the IR names a memory the target lacks
    return placement


def graph_cost(graph: nn.GraphOp, target: Target) -> CostReport:
    """The cost of a graph as its IR places it (unplaced items at their default spaces)."""
    traffic = analyze_traffic(graph)
    return CostModel(target, traffic).evaluate(ir_placement(graph, traffic, target))
