"""Placement sweeps: run the placement pipeline on a model for many configurations and price each.

`place_model` runs one configuration (schedule, bufferize, merge, assign the
memory spaces, plan the arenas) on a copy of a module and returns the cost
model's report; `configurations` lists the sweep of ``nnopt explore``
(weights in each memory, activations in each volatile memory, overlays on and
off, the model's op order and nn-schedule's); `explore` runs them, in worker
processes when asked, and `pick_baseline` chooses the reference row
(everything in the fastest memory, where that fits).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

from xdsl.dialects.builtin import ModuleOp

from nnopt.compiler.diagnostics import UserError
from nnopt.compiler.targets import Target, load_target
from nnopt.dialects import nn
from nnopt.passes.analysis.cost import CostReport, graph_cost
from nnopt.passes.planning.allocators import Options

DEFAULT_TIME_LIMIT = 1.0
"""Seconds of exact search per memory space in a sweep (plans are node-bounded too)."""
NODE_LIMIT = 20_000
"""Exact-search nodes per decision: sweep results do not depend on the machine's speed."""


@dataclass(frozen=True)
class Config:
    """One placement configuration ('' = let nn-assign-memspace choose)."""

    weights: str = ""
    activations: str = ""
    overlays: bool = True
    schedule: bool = False
    """Run nn-schedule first (else keep the model's op order)."""
    merge: bool = True
    """Run nn-merge-buffers (in-place sharing) when it is available."""

    @property
    def name(self) -> str:
        """``w=mram a=tcm +ov sched`` style label (unique per configuration)."""
        parts = [f"w={self.weights or 'auto'}", f"a={self.activations or 'auto'}"]
        parts.append("ov" if self.overlays else "no-ov")
        parts.append("sched" if self.schedule else "given")
        if not self.merge:
            parts.append("no-merge")
        return " ".join(parts)


@dataclass
class Outcome:
    """What one configuration gave: fits or the error, per-memory bytes, latency and energy."""

    config: Config
    fits: bool
    error: str = ""
    arenas: dict[str, int] = field(default_factory=dict)
    constants: dict[str, int] = field(default_factory=dict)
    overlays: int = 0
    latency_s: float = 0.0
    energy_j: float = 0.0
    powered: list[str] = field(default_factory=list)
    pipeline: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def used(self, memory: str) -> int:
        """Bytes of a memory in use: its arena plus the constants it holds."""
        return self.arenas.get(memory, 0) + self.constants.get(memory, 0)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = {"name": self.config.name, **asdict(self.config)}
        data["latency_us"] = self.latency_s * 1e6
        data["energy_uj"] = self.energy_j * 1e6
        del data["latency_s"], data["energy_j"]
        return data


def available_passes() -> dict[str, Any]:
    """nnopt's pass registry (name -> factory)."""
    from nnopt.passes import get_all_passes

    return get_all_passes()


def select_graph(module: ModuleOp, name: str | None = None) -> nn.GraphOp:
    """The only graph of a module, or the one called `name`."""
    graphs = [op for op in module.walk() if isinstance(op, nn.GraphOp)]
    if not graphs:
        raise UserError("the model holds no nn.graph")
    if name is not None:
        for g in graphs:
            if g.sym_name.data == name.removeprefix("@"):
                return g
        raise UserError(f"no graph named '{name}' (graphs: {', '.join(g.sym_name.data for g in graphs)})")
    if len(graphs) > 1:
        raise UserError(
            f"the model holds {len(graphs)} graphs ({', '.join(g.sym_name.data for g in graphs)}); "
            "choose one with --graph NAME"
        )
    return graphs[0]


@dataclass
class Placed:
    """A module after the placement pipeline, with its cost."""

    module: ModuleOp
    graph: nn.GraphOp
    report: CostReport
    arenas: dict[str, int]
    constants: dict[str, int]
    overlays: int
    pipeline: list[str]


def constants_per_memory(graph: nn.GraphOp, target: Target) -> dict[str, int]:
    """Bytes of constants each memory holds (aligned to the memory)."""
    from xdsl.dialects.builtin import StringAttr

    from nnopt.passes.planning.problem import align_up

    held: dict[str, int] = {}
    for op in graph.block.ops:
        if isinstance(op, nn.ConstOp):
            space = op.attributes.get(nn.SPACE_KEY)
            if isinstance(space, StringAttr):
                m = target.memory(space.data)
                held[m.name] = held.get(m.name, 0) + align_up(nn.tensor_bytes(op.results[0]), m.alignment)
    return held


def place_model(
    module: ModuleOp,
    target: Target,
    config: Config,
    *,
    graph_name: str | None = None,
    pins: dict[str, str] | None = None,
    objective: str = "latency",
    target_spec: str = "",
    time_limit: float = DEFAULT_TIME_LIMIT,
    copy: bool = True,
) -> Placed:
    """Schedule, bufferize, merge, assign memory spaces and plan a copy of `module` (a `UserError`
    when it does not fit)."""
    from nnopt.compiler.registry import make_context
    from nnopt.passes.assign_memspace import arena_capacities, assign_graph
    from nnopt.passes.bufferize import bufferize_graph
    from nnopt.passes.plan_arena import plan_graph

    work = module.clone() if copy else module
    graph = select_graph(work, graph_name)
    passes = available_passes()
    ctx = make_context()
    pipeline: list[str] = []
    if config.schedule and "nn-schedule" in passes:
        passes["nn-schedule"]()().apply(ctx, work)
        pipeline.append("nn-schedule")
    bufferize_graph(graph)
    pipeline.append("nn-bufferize")
    if config.merge and "nn-merge-buffers" in passes:
        passes["nn-merge-buffers"]()().apply(ctx, work)
        pipeline.append("nn-merge-buffers")
    placement = assign_graph(
        graph,
        target,
        pins=pins,
        overlays=config.overlays,
        objective=objective,
        weights=config.weights,
        activations=config.activations,
        target_spec=target_spec or target.name,
    )
    pipeline.append("nn-assign-memspace")
    options = Options(time_limit=time_limit, node_limit=NODE_LIMIT)
    plans = plan_graph(graph, options=options, capacities=arena_capacities(graph, target))
    pipeline.append("nn-plan-arena")
    report = graph_cost(graph, target)
    arenas = {space: p.arena_bytes for space, p in plans.items()}
    return Placed(
        work,
        graph,
        report,
        arenas,
        constants_per_memory(graph, target),
        len(placement.overlays),
        pipeline,
    )


# --------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------


def configurations(
    target: Target,
    *,
    schedules: Sequence[bool] = (False, True),
    overlays: Sequence[bool] = (True, False),
    weights: Sequence[str] | None = None,
    activations: Sequence[str] | None = None,
) -> list[Config]:
    """The sweep: weights in each memory (or auto), activations in each volatile memory (or auto),
    overlays on/off where weights can sit in a slower memory, each schedule variant."""
    by_speed = target.by_speed()
    w_opts = list(weights) if weights is not None else ["", *(m.name for m in by_speed)]
    a_opts = (
        list(activations) if activations is not None else ["", *(m.name for m in target.volatile_memories)]
    )
    if "nn-schedule" not in available_passes():
        schedules = [s for s in schedules if not s] or [False]
    fastest = by_speed[0].name
    out: list[Config] = []
    for sched in schedules:
        for w in w_opts:
            for a in a_opts:
                for ov in overlays:
                    if ov and w == fastest and len(overlays) > 1:
                        continue  # nothing is faster than where the weights are: no overlay possible
                    out.append(Config(w, a, ov, sched))
    return out


def run_config(
    module: ModuleOp,
    target: Target,
    config: Config,
    *,
    graph_name: str | None = None,
    pins: dict[str, str] | None = None,
    objective: str = "latency",
    target_spec: str = "",
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> Outcome:
    """One row of the sweep; a model that does not fit gives ``fits=False`` and the error."""
    start = time.perf_counter()
    try:
        placed = place_model(
            module,
            target,
            config,
            graph_name=graph_name,
            pins=pins,
            objective=objective,
            target_spec=target_spec,
            time_limit=time_limit,
        )
    except UserError as exc:
        message = re.sub(r"^the model does not fit '[^']*': ", "", exc.message)
        return Outcome(config, False, error=message, seconds=time.perf_counter() - start)
    return Outcome(
        config,
        True,
        arenas=placed.arenas,
        constants=placed.constants,
        overlays=placed.overlays,
        latency_s=placed.report.latency_s,
        energy_j=placed.report.energy_j,
        powered=placed.report.powered,
        pipeline=placed.pipeline,
        seconds=time.perf_counter() - start,
    )


_WORKER: dict[str, Any] = {}


def _worker_init(model: str, target: str) -> None:
    from nnopt.compiler.frontends import load_model

    _WORKER["module"] = load_model(model)
    _WORKER["target"] = load_target(target)
    _WORKER["spec"] = target


def _worker_run(config: Config, kwargs: dict[str, Any]) -> Outcome:
    return run_config(_WORKER["module"], _WORKER["target"], config, target_spec=_WORKER["spec"], **kwargs)


Progress = Callable[[int, int, Outcome], None]


def explore(
    model_path: str,
    target_spec: str,
    configs: Sequence[Config],
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    graph_name: str | None = None,
    pins: dict[str, str] | None = None,
    objective: str = "latency",
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> list[Outcome]:
    """Run every configuration (in `jobs` worker processes when > 1); results in `configs` order."""
    from nnopt.compiler.frontends import load_model

    kwargs: dict[str, Any] = {
        "graph_name": graph_name,
        "pins": pins,
        "objective": objective,
        "time_limit": time_limit,
    }
    target = load_target(target_spec)
    module = load_model(model_path)
    select_graph(module, graph_name)  # a bad --graph fails before any work
    results: list[Outcome | None] = [None] * len(configs)
    if jobs <= 1 or len(configs) <= 1:
        for i, config in enumerate(configs):
            results[i] = run_config(module, target, config, target_spec=target_spec, **kwargs)
            if progress is not None:
                progress(i + 1, len(configs), results[i])  # type: ignore[arg-type]
    else:
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(configs)), initializer=_worker_init, initargs=(model_path, target_spec)
        ) as pool:
            futures = {pool.submit(_worker_run, config, kwargs): i for i, config in enumerate(configs)}
            for done, future in enumerate(as_completed(futures), start=1):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress(done, len(configs), results[futures[future]])  # type: ignore[arg-type]
    return [r for r in results if r is not None]


def pick_baseline(target: Target, outcomes: Sequence[Outcome], name: str | None = None) -> Outcome | None:
    """The reference row: `name` if given; else everything (weights and activations) in the fastest
    memory where that fits, trying memories fastest first, with the model's op order and no overlays;
    else the first row that fits."""
    if name is not None:
        for o in outcomes:
            if o.config.name == name:
                return o
        known = "; ".join(o.config.name for o in outcomes[:6])
        raise UserError(f"--baseline '{name}' is not one of the configurations (e.g. {known}, ...)")
    for m in target.volatile_memories:
        for o in outcomes:
            c = o.config
            if o.fits and c.weights == m.name and c.activations == m.name and not c.schedule:
                return o
    return next((o for o in outcomes if o.fits), None)


def progress_bar(stream: Any = None) -> Progress:
    """A one-line progress bar on `stream` (stderr)."""
    out = stream if stream is not None else sys.stderr
    start = time.perf_counter()

    def show(done: int, total: int, outcome: Outcome) -> None:
        width = 30
        filled = int(width * done / max(1, total))
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done) if done else 0.0
        out.write(
            f"\rexplore [{'#' * filled}{'.' * (width - filled)}] {done}/{total} configurations, "
            f"{elapsed:5.1f} s elapsed, ~{eta:4.0f} s left "
        )
        if done == total:
            out.write("\n")
        out.flush()

    return show


def default_jobs() -> int:
    """Worker processes when --jobs is 0: the CPUs available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)
