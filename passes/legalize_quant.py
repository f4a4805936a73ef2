"""``nn-legalize-quant``: give every quantized op its rounding mode and its integer parameters."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from nnopt.compiler.diagnostics import UserError, op_error
from nnopt.dialects import nn, qparams


@dataclass(frozen=True)
class LegalizeQuantPass(ModulePass):
    """Attach ``qparams`` (multipliers, shifts, zero points, clamps) to every quantized op lacking them.

    Ops without a ``rounding`` property get the pass's `rounding` option
    (``tflite_double``, ``single`` or ``onnx_rint``); ops that already carry
    ``qparams`` keep them (stored parameters are authoritative).
    """

    name = "nn-legalize-quant"

    rounding: str = "tflite_double"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.rounding not in nn.ROUNDING_MODES:
            modes = ", ".join(nn.ROUNDING_MODES)
            raise UserError(
                f"pass 'nn-legalize-quant': unknown rounding '{self.rounding}' (use one of {modes})"
            )
        for inner in op.walk():
            if not qparams.is_quantized_op(inner) or not isinstance(inner, nn.QuantizableOp):
                continue
            if inner.qparams is not None:
                continue
            try:
                qparams.attach(inner, self.rounding)
            except (qparams.QuantParamError, ValueError) as exc:
                raise op_error(inner, str(exc)) from None
