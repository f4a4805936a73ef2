"""nnopt's dialects, passes and targets as an xDSL `Universe` (also published to `xdsl-opt`)."""

from __future__ import annotations

from xdsl.ir import Dialect
from xdsl.universe import Universe

from nnopt.passes import get_all_passes


def _nn() -> Dialect:
    from nnopt.dialects.nn import NN

    return NN


def _quant() -> Dialect:
    from nnopt.dialects.quant import Quant

    return Quant


def _analog() -> Dialect:
    from nnopt.dialects.analog import Analog

    return Analog


NNOPT_UNIVERSE = Universe(
    all_dialects={"nn": _nn, "quant": _quant, "analog": _analog},
    all_passes=get_all_passes(),
)
