"""nnopt's passes, one per file, registered lazily by their kebab-case names."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.passes import ModulePass


def _propagate_transposes() -> type[ModulePass]:
    from nnopt.passes.propagate_transposes import PropagateTransposesPass

    return PropagateTransposesPass


def _bufferize() -> type[ModulePass]:
    from nnopt.passes.bufferize import BufferizePass

    return BufferizePass


def _lifetimes() -> type[ModulePass]:
    from nnopt.passes.lifetimes import LifetimesPass

    return LifetimesPass


def _plan_arena() -> type[ModulePass]:
    from nnopt.passes.plan_arena import PlanArenaPass

    return PlanArenaPass


def _legalize_quant() -> type[ModulePass]:
    from nnopt.passes.legalize_quant import LegalizeQuantPass

    return LegalizeQuantPass


def _schedule() -> type[ModulePass]:
    from nnopt.passes.schedule import SchedulePass

    return SchedulePass


def _merge_buffers() -> type[ModulePass]:
    from nnopt.passes.merge_buffers import MergeBuffersPass

    return MergeBuffersPass


def _fold_pad() -> type[ModulePass]:
    from nnopt.passes.fold_pad import FoldPadPass

    return FoldPadPass


def _assign_memspace() -> type[ModulePass]:
    from nnopt.passes.assign_memspace import AssignMemspacePass

    return AssignMemspacePass


def _quantize() -> type[ModulePass]:
    from nnopt.passes.quantize import QuantizePass

    return QuantizePass


def _map_analog() -> type[ModulePass]:
    from nnopt.passes.map_analog import MapAnalogPass

    return MapAnalogPass


def get_all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """Name -> factory for every nnopt pass; factories import their module on first use."""
    return {
        "nn-assign-memspace": _assign_memspace,
        "nn-bufferize": _bufferize,
        "nn-fold-pad": _fold_pad,
        "nn-legalize-quant": _legalize_quant,
        "nn-lifetimes": _lifetimes,
        "nn-map-analog": _map_analog,
        "nn-merge-buffers": _merge_buffers,
        "nn-plan-arena": _plan_arena,
        "nn-propagate-transposes": _propagate_transposes,
        "nn-quantize": _quantize,
        "nn-schedule": _schedule,
    }
