"""Kernel emitters: one specialised C function body per layer.

Each emitter reads the layer's accesses (constant shapes and strides, arena
offsets from the plan) and the op's integer parameters through
`nnopt.dialects.qparams.get` -- the same source the numpy interpreter reads --
and prints plain loops with every size, stride and parameter folded in.

Integer kernels reproduce the interpreter's arithmetic exactly:

* convolutions and fully connected layers fold the input zero point into a
  per-channel bias computed here (``bias - zx * sum(w)``) for windows without
  padding; border windows subtract the zero point per tap. Accumulators are
  ``int32_t`` when a bound computed from the actual weights proves that no
  partial sum can overflow, else ``int64_t`` wrapped to 32 bits at the end
  (the interpreter's ``wrap_int32``).
* 8-bit unary ops (relu, relu6, clamp, logistic, tanh, requantize) become a
  256-entry table computed at compile time by the interpreter's own kernel.
* int8 softmax looks ``exp`` up in a table of the interpreter's
  ``exp_on_negative_values`` and computes the reciprocal at run time with
  gemmlowp's Newton-Raphson, as TFLM does.

Float kernels follow the interpreter's formulas; only summation order differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from xdsl.ir import Operation

from nnopt.backends.c.codegen import (
    INT_LIMITS,
    KernelContext,
    broadcast_strides,
    double_literal,
    float_literal,
    int_literal,
    lin,
    merge_dims,
)
from nnopt.backends.c.model import Access, Constant
from nnopt.backends.c.runtime import mbqm_name, ste_name
from nnopt.backends.numpy.geometry import window_of
from nnopt.compiler.diagnostics import UserError, op_error
from nnopt.dialects import nn, qparams
from nnopt.dialects import qmath as qm
from nnopt.dialects.quant import UniformQuantizedType
from nnopt.passes.analysis.overlap import shift_of

Emitter = Callable[[KernelContext], None]

_ACT_BOUNDS = {"none": (None, None), "relu": (0.0, None), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _err(k: KernelContext, message: str) -> UserError:
    return op_error(k.layer.op, message)


def _params(k: KernelContext) -> qparams.Params:
    try:
        return qparams.get(k.layer.op)
    except qparams.QuantParamError as exc:
        raise _err(k, str(exc)) from None


def _mode(k: KernelContext) -> str:
    op = k.layer.op
    assert isinstance(op, nn.QuantizableOp)
    return op.rounding_mode()


def _qtype(acc: Access) -> UniformQuantizedType:
    assert isinstance(acc.elem, UniformQuantizedType)
    return acc.elem


def _p_int(p: qparams.Params, key: str) -> int:
    return int(np.asarray(p[key]).reshape(-1)[0])


def _p_arr(p: qparams.Params, key: str, n: int) -> np.ndarray:
    a = np.asarray(p[key]).reshape(-1)
    return np.broadcast_to(a, (n,)) if a.size == 1 else a


def _store_bounds(p: qparams.Params, q: UniformQuantizedType) -> tuple[int, int]:
    """The interpreter's output bounds: the clamp intersected with the storage range."""
    if "clamp" not in p:
        return q.qmin, q.qmax
    bounds = np.asarray(p["clamp"]).reshape(-1)
    return max(int(bounds[0]), q.qmin), min(int(bounds[1]), q.qmax)


def _clamp(var: str, lo: int | None, hi: int | None) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{var} = {var} < {int_literal(lo)} ? {int_literal(lo)} : {var};")
    if hi is not None:
        parts.append(f"{var} = {var} > {int_literal(hi)} ? {int_literal(hi)} : {var};")
    return " ".join(parts)


def _fclamp(var: str, activation: str) -> str | None:
    lo, hi = _ACT_BOUNDS[activation]
    parts = []
    if lo is not None:
        parts.append(f"{var} = {var} < {float_literal(lo)} ? {float_literal(lo)} : {var};")
    if hi is not None:
        parts.append(f"{var} = {var} > {float_literal(hi)} ? {float_literal(hi)} : {var};")
    return " ".join(parts) or None


def _minus(expr: str, zp: int) -> str:
    """``(expr - zp)`` written without double signs (just `expr` for zp 0)."""
    if zp == 0:
        return expr
    return f"({expr} - {zp})" if zp > 0 else f"({expr} + {-zp})"


def _quantized(k: KernelContext) -> bool:
    return qparams.is_quantized_op(k.layer.op)


def _check_no_alias(k: KernelContext, *inputs: Access) -> None:
    out = k.layer.output
    for acc in inputs:
        if out.overlaps(acc):
            raise _err(
                k,
                f"writes its result over its own input (arena '{out.space}' bytes "
                f"{out.byte_range()} and {acc.byte_range()}); the C backend runs this op only out of place",
            )


def _check_elementwise_alias(k: KernelContext, *inputs: Access) -> None:
    """Elementwise loops may write in place: same place, or a prefix of a contiguous input."""
    out = k.layer.output
    for acc in inputs:
        if not out.overlaps(acc) or out.same_place(acc):
            continue
        if (
            out.offset == acc.offset
            and out.contiguous
            and acc.contiguous
            and out.elem_bytes <= acc.elem_bytes
            and out.size == acc.size
        ):
            continue
        raise _err(
            k,
            f"writes its result partly over an input (arena '{out.space}' bytes {out.byte_range()} "
            f"and {acc.byte_range()}) in a way an elementwise loop cannot run in place",
        )


def _window_alias(k: KernelContext) -> None:
    """Allow a convolution/pool result over its input when a pixel walk makes it safe.

    Forwards when the result sits low enough, backwards (``k.reverse``) when it
    sits high enough, as `nnopt.passes.analysis.overlap` bounds it; anything
    else in between is a planning error.
    """
    x, y = k.layer.inputs[0], k.layer.output
    _check_no_alias(k, *k.layer.inputs[1:])
    if not y.overlaps(x):
        return
    shift = shift_of(k.layer.op)
    if shift is not None and x.contiguous and y.contiguous:
        way = shift.direction(y.offset - x.offset)
        if way is not None:
            k.reverse = way == "reverse"
            return
    raise _err(
        k,
        f"writes its result over its input (arena '{y.space}' bytes {y.byte_range()} and "
        f"{x.byte_range()}) where no pixel order keeps the unread input intact",
    )


def _pixel_loop(k: KernelContext, var: str, count: int) -> None:
    """A loop over output pixels (batch, row or column), backwards when ``k.reverse``."""
    if k.reverse:
        k.code.open(f"for (int {var} = {count} - 1; {var} >= 0; --{var})")
    else:
        k.code.loop(var, count)


def _elementwise(
    k: KernelContext,
    ins: Sequence[Access],
    body: Callable[[str, list[str], list[str]], None],
    keep: Sequence[int] = (),
    out: Access | None = None,
    names: Sequence[str] | None = None,
) -> None:
    """Loop over the output; `body(y_index, input_indices, loop_vars_of_kept_dims)` prints the statement."""
    out = out if out is not None else k.layer.output
    c = k.code
    names = list(names) if names is not None else [f"x{i}" for i in range(len(ins))]
    for name, acc in zip(names, ins, strict=True):
        k.pointer(name, acc)
    k.pointer("y", out, writable=True)
    strides = [out.strides] + [broadcast_strides(a, out.shape) for a in ins]
    nest = merge_dims(out.shape, strides, keep)
    variables = [f"i{d}" for d in range(len(nest.dims))]
    for var, size in zip(variables, nest.dims, strict=True):
        c.loop(var, size)
    idx = [lin(zip(variables, st, strict=True)) for st in nest.strides]
    kept_vars: list[str] = []
    for axis in keep:
        found = [variables[i] for i, d in enumerate(nest.kept) if d == axis]
        kept_vars.append(found[0] if found else "0")
    body(idx[0], idx[1:], kept_vars)
    for _ in nest.dims:
        c.close()


def _flat_index(acc: Access, flat: str) -> str:
    """Element offset of the `flat`-th element (row-major order) of a possibly strided access."""
    if acc.contiguous:
        return flat
    terms: list[tuple[str | int, int]] = []
    inner = 1
    for d in range(len(acc.shape) - 1, -1, -1):
        size = acc.shape[d]
        if size > 1:
            e = f"{flat} / {inner}" if inner > 1 else flat
            terms.append((f"({e}) % {size}", acc.strides[d]))
        inner *= size
    return lin(reversed(terms))


def _acc_bound_ctype(bound: int) -> str:
    return "int32_t" if bound < (1 << 31) else "int64_t"


def _finish_acc(acc_type: str, var: str) -> str:
    """The int32 value of an accumulator (wrapped like the interpreter)."""
    return var if acc_type == "int32_t" else f"nnopt_wrap32({var})"


class _Requant:
    """Prints the requantization of a conv/FC/matmul accumulator and the store, for any mode."""

    def __init__(self, k: KernelContext, p: qparams.Params, channels: int, wide: bool) -> None:
        self.k = k
        self.mode = _mode(k)
        self.wide = wide
        yq = _qtype(k.layer.output)
        self.ctype = k.layer.output.ctype
        self.lo, self.hi = _store_bounds(p, yq)
        self.zy = _p_int(p, "output_zp")
        self.per_channel = False
        if self.mode == "onnx_rint":
            mult = _p_arr(p, "multiplier", channels).astype(np.float32)
            self.uniform = bool(np.all(mult == mult[0]))
            if self.uniform:
                self.mult_expr = lambda ch: float_literal(float(mult[0]))
            else:
                name = k.table(
                    "mult", "float", mult, f"layer {k.layer.index}: float requantization multipliers"
                )
                self.mult_expr = lambda ch: f"{name}[{ch}]"
            k.use("rint_f64")
        else:
            mult = _p_arr(p, "multiplier", channels).astype(np.int64)
            shift = _p_arr(p, "shift", channels).astype(np.int64)
            if wide and int(shift.max()) > 14:
                raise _err(k, f"16-bit requantization shift {int(shift.max())} is out of range (at most 14)")
            if not wide and int(shift.min()) < -31:
                raise _err(k, f"requantization shift {int(shift.min())} is out of range")
            # Double rounding with right shifts only and non-negative multipliers (every TFLite
            # model): SaturatingRoundingDoublingHighMul cannot saturate, (a*m + 2^30) >> 31 equals it.
            right_only = self.mode == "tflite_double" and not wide and shift.max() <= 0 and mult.min() >= 0
            if right_only:
                shift = -shift
            uniform = bool(np.all(mult == mult[0]) and np.all(shift == shift[0]))
            if uniform:
                m0, s0 = int(mult[0]), int(shift[0])
                self.mult_expr = lambda ch: int_literal(m0)
                self.shift_expr = lambda ch: str(s0)
            else:
                mname = k.table("mult", "int32_t", mult, f"layer {k.layer.index}: requantization multipliers")
                what = "right shifts" if right_only else "shifts"
                sname = k.table("shift", "int8_t", shift, f"layer {k.layer.index}: requantization {what}")
                self.mult_expr = lambda ch: f"{mname}[{ch}]"
                self.shift_expr = lambda ch: f"{sname}[{ch}]"
            if wide:
                self.fn = k.use("mbqm_i64")
            elif right_only:
                self.fn = k.use("mbqm_double_right")
            else:
                self.fn = k.use(mbqm_name(self.mode))

    def store(self, acc_var: str, acc_type: str, ch: str, target: str) -> None:
        """``target = clamp(requant(acc) + zy)``."""
        c = self.k.code
        if self.mode == "onnx_rint":
            c(
                f"int64_t v = nnopt_rint_f64((double){_finish_acc(acc_type, acc_var)} * "
                f"(double){self.mult_expr(ch)}) + {self.zy};"
            )
            c(_clamp("v", self.lo, self.hi))
        elif self.wide:
            src = acc_var if acc_type == "int64_t" else f"(int64_t){acc_var}"
            c(f"int32_t v = {self.fn}({src}, {self.mult_expr(ch)}, {self.shift_expr(ch)});")
            c(_clamp("v", self.lo, self.hi))
        else:
            zy = f" + {self.zy}" if self.zy > 0 else f" - {-self.zy}" if self.zy < 0 else ""
            c(
                f"int32_t v = {self.fn}({_finish_acc(acc_type, acc_var)}, {self.mult_expr(ch)}, "
                f"{self.shift_expr(ch)}){zy};"
            )
            c(_clamp("v", self.lo, self.hi))
        c(f"{target} = ({self.ctype})v;")


def _tap_range(k: KernelContext, lo: str, hi: str, origin: str, kernel: int, dil: int, size: int) -> None:
    """Valid kernel taps ``[lo, hi)`` along one axis: ``0 <= origin + tap * dil < size``."""
    c = k.code
    if dil == 1:
        c(f"const int {lo} = {origin} < 0 ? -{origin} : 0;")
        c(f"const int {hi} = {size} - {origin} < {kernel} ? {size} - {origin} : {kernel};")
    else:
        c(f"const int {lo} = {origin} < 0 ? (-{origin} + {dil - 1}) / {dil} : 0;")
        c(f"const int {hi}_last = {size} - 1 - {origin};")
        c(
            f"const int {hi} = {hi}_last < 0 ? 0 : ({hi}_last / {dil} + 1 < {kernel} ? "
            f"{hi}_last / {dil} + 1 : {kernel});"
        )


def _interior(out_size: int, in_size: int, kernel: int, stride: int, dil: int, pad: int) -> tuple[int, int]:
    """Output positions ``[a, b)`` whose whole window lies inside the input."""
    inside = [
        o
        for o in range(out_size)
        if o * stride - pad >= 0 and o * stride - pad + (kernel - 1) * dil < in_size
    ]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def _cond(var: str, lo: int, hi: int, size: int) -> list[str]:
    parts = []
    if lo > 0:
        parts.append(f"{var} >= {lo}")
    if hi < size:
        parts.append(f"{var} < {hi}")
    return parts


def _channel_block(channels: int) -> int:
    if channels <= 64:
        return channels
    for cb in range(64, 15, -1):
        if channels % cb == 0:
            return cb
    return 64


# --------------------------------------------------------------------------
# Convolutions and fully connected
# --------------------------------------------------------------------------


def _const_values(k: KernelContext, acc: Access | None) -> np.ndarray | None:
    if acc is None or acc.const is None:
        return None
    return k.tables.constants[acc.const].value


def _weights_minus_zp(
    k: KernelContext, w_acc: Access, wzp: np.ndarray, axis: int
) -> tuple[Access, np.ndarray | None, bool]:
    """Weights with their zero points subtracted (a derived int16 table when any is non-zero)."""
    w = _const_values(k, w_acc)
    if not np.any(wzp):
        return w_acc, (w.astype(np.int64) if w is not None else None), False
    if w is None:
        return w_acc, None, True
    shape = [1] * w.ndim
    shape[axis] = -1
    wd = w.astype(np.int64) - wzp.astype(np.int64).reshape(shape)
    name = k.table("w", "int16_t", wd, f"layer {k.layer.index}: weights minus their zero points")
    k.tables.constants.setdefault(name, Constant(name, wd, "int16_t", name))
    k.tables.const_names[name] = name
    return Access("int16_t", 2, w_acc.shape, w_acc.strides, const=name), wd, False


def _input_max_abs(q: UniformQuantizedType, zp: int) -> tuple[int, int]:
    """Largest |x| and |x - zp| of the stored integers."""
    return max(abs(q.qmin), abs(q.qmax)), max(abs(q.qmin - zp), abs(q.qmax - zp))


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def _conv2d_patch(k: KernelContext) -> bool:
    """Integer convolution through an im2col patch, when the weights are constants.

    For each output pixel (and group) the input window is gathered once into a
    16-bit patch on the stack (padded cells hold the input zero point, so the
    folded bias ``bias - zx * sum(w)`` covers them exactly), then every output
    channel is one dot product of the patch with its weight row, zero-padded to
    a multiple of 16 so that compilers vectorize it.
    """
    op = k.layer.op
    assert isinstance(op, nn.Conv2DOp)
    x_acc, w_acc = k.layer.inputs[0], k.layer.inputs[1]
    b_acc = k.layer.inputs[2] if len(k.layer.inputs) > 2 else None
    y_acc = k.layer.output
    if w_acc.const is None:
        return False
    p = _params(k)
    win = window_of(op)
    n_, h_, w_, c_ = x_acc.shape
    cout, kh, kw, cg = w_acc.shape
    groups = c_ // cg
    cout_g = cout // groups
    oh, ow = win.out_hw
    sh, sw = win.strides
    dh, dw = win.dilations
    pt, _, pl, _ = win.pads
    xs, ys = x_acc.strides, y_acc.strides
    zx = _p_int(p, "input_zp")
    wzp = _p_arr(p, "weight_zp", cout).astype(np.int64)
    w = k.tables.constants[w_acc.const].value.astype(np.int64) - wzp.reshape(-1, 1, 1, 1)
    kk = kh * kw * cg
    kp = _round_up(kk, 16)
    wrows = np.zeros((cout, kp), np.int64)
    wrows[:, :kk] = w.reshape(cout, kk)
    bvals = _const_values(k, b_acc)
    fold = b_acc is None or bvals is not None
    xq = _qtype(x_acc)
    max_x, max_xd = _input_max_abs(xq, zx)
    wsum_abs = np.abs(wrows).sum(axis=1)
    if fold:
        base = bvals.astype(np.int64) if bvals is not None else np.zeros(cout, np.int64)
        bias = qm.wrap_int32(base - zx * wrows.sum(axis=1))
        bound = int((wsum_abs * max_x + np.abs(bias)).max(initial=0))
        bname = k.table("bias", "int32_t", bias, f"layer {k.layer.index}: bias - input_zp * sum(weights)")
    else:
        bound = int((wsum_abs * max_xd).max(initial=0)) + (1 << 31)
    acc_t = _acc_bound_ctype(bound)
    req = _Requant(k, p, cout, wide=False)
    c = k.code
    k.pointer("x", x_acc)
    if kp == kk and not np.any(wzp):
        k.pointer("w", w_acc)
        wtype = w_acc.ctype
    else:
        wtype = "int8_t" if wrows.min(initial=0) >= -128 and wrows.max(initial=0) <= 127 else "int16_t"
        what = "weights minus zero points, " if np.any(wzp) else "weights, "
        wname = k.table("w", wtype, wrows, f"layer {k.layer.index}: {what}rows padded to {kp}")
        c(f"const {wtype} *w = {wname};")
    if not fold:
        k.pointer("b", b_acc)  # type: ignore[arg-type]
    k.pointer("y", y_acc, writable=True)
    ptype = "int16_t" if xq.width == 8 else "int32_t"
    fill = zx if fold else 0
    c(f"{ptype} patch[{kp}];")
    if kp > kk:
        c.loop("k", kp, kk)
        c("patch[k] = 0;")
        c.close()
    pads_reachable = any(win.pads) or _interior(oh, h_, kh, sh, dh, pt) != (0, oh)
    pads_reachable = pads_reachable or _interior(ow, w_, kw, sw, dw, pl) != (0, ow)
    _pixel_loop(k, "n", n_)
    _pixel_loop(k, "oy", oh)
    c(f"const int iy0 = {lin([('oy', sh)], -pt)};")
    _pixel_loop(k, "ox", ow)
    c(f"const int ix0 = {lin([('ox', sw)], -pl)};")
    if groups > 1:
        c.loop("g", groups)
    # Gather the window into the patch.
    c.loop("ky", kh)
    c(f"const int iy = {lin([('iy0', 1), ('ky', dh)])};")
    c.loop("kx", kw)
    c(f"const int ix = {lin([('ix0', 1), ('kx', dw)])};")
    c(f"{ptype} *pp = patch + {lin([('ky', kw * cg), ('kx', cg)])};")
    if pads_reachable:
        c.open(f"if (iy < 0 || iy >= {h_} || ix < 0 || ix >= {w_})")
        c.loop("ci", cg)
        c(f"pp[ci] = {fill};")
        c.close()
        c.depth -= 1
        c.open("} else")
    gterm = [("g", cg * xs[3])] if groups > 1 else []
    c(f"const {x_acc.ctype} *xp = x + ({lin([('n', xs[0]), ('iy', xs[1]), ('ix', xs[2]), *gterm])});")
    c.loop("ci", cg)
    xe = "xp[ci]" if xs[3] == 1 else f"xp[ci * {xs[3]}]"
    c(f"pp[ci] = ({ptype}){xe};" if fold else f"pp[ci] = ({ptype})({_minus(xe, zx)});")
    c.close()
    if pads_reachable:
        c.close()
    c.close()
    c.close()
    # One dot product per output channel.
    if groups > 1:
        c.loop("j", cout_g)
        c(f"const int oc = g * {cout_g} + j;")
    else:
        c.loop("oc", cout)
    c(f"const {wtype} *wr = w + oc * {kp};")
    c(f"{acc_t} acc = {bname + '[oc]' if fold else 'b[oc]'};")
    c.loop("q", kp)
    cast = "(int64_t)" if acc_t == "int64_t" else ""
    c(f"acc += {cast}patch[q] * wr[q];")
    c.close()
    req.store("acc", acc_t, "oc", f"y[{lin([('n', ys[0]), ('oy', ys[1]), ('ox', ys[2]), ('oc', ys[3])])}]")
    c.close()
    if groups > 1:
        c.close()
    c.close()
    c.close()
    c.close()
    return True


FLOAT_BLOCK = 8
"""Output channels per block of the float conv/FC kernels (the accumulators stay in registers)."""


def _float_blocks(w: np.ndarray) -> np.ndarray:
    """Weights ``[groups, cout, K]`` as ``[groups, cout/8, K, 8]`` (zero-padded): each block of
    output channels reads its weights in one sequential stream."""
    groups, cout, kk = w.shape
    cb = min(cout, FLOAT_BLOCK)
    nb = -(-cout // cb)
    padded = np.zeros((groups, nb * cb, kk), np.float32)
    padded[:, :cout] = w
    return np.ascontiguousarray(padded.reshape(groups, nb, cb, kk).transpose(0, 1, 3, 2))


def _float_rows(
    k: KernelContext,
    kk: int,
    cout: int,
    wt_name: str,
    bias: str | None,
    activation: str,
    target: Callable[[str], str],
) -> None:
    """``y[oc] = act(bias[oc] + sum_k patch[k] * w[oc][k])`` for one patch, 8 output channels at a
    time (weights from `_float_blocks`); each output still sums its products in order."""
    c = k.code
    cb = min(cout, FLOAT_BLOCK)
    if cb == cout:
        c("const int o0 = 0;")
        count: int | str = cout
    else:
        c.open(f"for (int o0 = 0; o0 < {cout}; o0 += {cb})")
        count = f"({cout} - o0 < {cb} ? {cout} - o0 : {cb})" if cout % cb else cb
    if count != cb:
        c.loop("j", cb)
        c("acc[j] = 0.0f;")
        c.close()
    if bias or count == cb:
        c.loop("j", count)
        c(f"acc[j] = {f'{bias}[o0 + j]' if bias else '0.0f'};")
        c.close()
    c(f"const float *wb = {wt_name} + o0 * {kk};")
    c.loop("q", kk)
    c("const float xv = patch[q];")
    c(f"const float *wq = wb + q * {cb};")
    c.loop("j", cb)
    c("acc[j] += xv * wq[j];")
    c.close()
    c.close()
    c.loop("j", count)
    c("float v = acc[j];")
    clamp = _fclamp("v", activation)
    if clamp:
        c(clamp)
    c(f"{target('o0 + j')} = v;")
    c.close()
    if cb != cout:
        c.close()
    else:
        c("(void)o0;")


def _conv2d_float(k: KernelContext) -> bool:
    """Float convolution with constant weights: a patch per pixel (and group), weights transposed
    to ``[K][Cout]`` at compile time so that the output channels form the vector dimension."""
    op = k.layer.op
    assert isinstance(op, nn.Conv2DOp)
    x_acc, w_acc = k.layer.inputs[0], k.layer.inputs[1]
    b_acc = k.layer.inputs[2] if len(k.layer.inputs) > 2 else None
    y_acc = k.layer.output
    if w_acc.const is None or x_acc.ctype != "float":
        return False
    win = window_of(op)
    n_, h_, w_, c_ = x_acc.shape
    cout, kh, kw, cg = w_acc.shape
    groups = c_ // cg
    cout_g = cout // groups
    oh, ow = win.out_hw
    sh, sw = win.strides
    dh, dw = win.dilations
    pt, _, pl, _ = win.pads
    xs, ys = x_acc.strides, y_acc.strides
    kk = kh * kw * cg
    wt = _float_blocks(k.tables.constants[w_acc.const].value.astype(np.float32).reshape(groups, cout_g, kk))
    c = k.code
    k.pointer("x", x_acc)
    wname = k.table("wt", "float", wt, f"layer {k.layer.index}: weights as [group][channel block][k][8]")
    if b_acc is not None:
        k.pointer("b", b_acc)
    k.pointer("y", y_acc, writable=True)
    c(f"float patch[{kk}];")
    c(f"float acc[{min(cout_g, FLOAT_BLOCK)}];")
    _pixel_loop(k, "n", n_)
    _pixel_loop(k, "oy", oh)
    c(f"const int iy0 = {lin([('oy', sh)], -pt)};")
    _pixel_loop(k, "ox", ow)
    c(f"const int ix0 = {lin([('ox', sw)], -pl)};")
    c.loop("g", groups)
    c.loop("ky", kh)
    c(f"const int iy = {lin([('iy0', 1), ('ky', dh)])};")
    c.loop("kx", kw)
    c(f"const int ix = {lin([('ix0', 1), ('kx', dw)])};")
    c(f"float *pp = patch + {lin([('ky', kw * cg), ('kx', cg)])};")
    c.open(f"if (iy < 0 || iy >= {h_} || ix < 0 || ix >= {w_})")
    c.loop("ci", cg)
    c("pp[ci] = 0.0f;")
    c.close()
    c.depth -= 1
    c.open("} else")
    c(f"const float *xp = x + ({lin([('n', xs[0]), ('iy', xs[1]), ('ix', xs[2]), ('g', cg * xs[3])])});")
    c.loop("ci", cg)
    c("pp[ci] = xp[ci];" if xs[3] == 1 else f"pp[ci] = xp[ci * {xs[3]}];")
    c.close()
    c.close()
    c.close()
    c.close()
    c(f"const float *wg = {wname} + g * {wt[0].size};")
    bias = None
    if b_acc is not None:
        c(f"const float *bg = b + g * {cout_g};")
        bias = "bg"

    def target(oc: str) -> str:
        return f"y[{lin([('n', ys[0]), ('oy', ys[1]), ('ox', ys[2])])} + (g * {cout_g} + {oc}) * {ys[3]}]"

    _float_rows(k, kk, cout_g, "wg", bias, op.activation(), target)
    c.close()
    c.close()
    c.close()
    c.close()
    return True


def conv2d(k: KernelContext) -> None:
    """Convolution (grouped, dilated, padded, strided) in int or float."""
    op = k.layer.op
    assert isinstance(op, nn.Conv2DOp)
    _window_alias(k)
    if _quantized(k) and _conv2d_patch(k):
        return
    if not _quantized(k) and _conv2d_float(k):
        return
    x_acc, w_acc = k.layer.inputs[0], k.layer.inputs[1]
    b_acc = k.layer.inputs[2] if len(k.layer.inputs) > 2 else None
    y_acc = k.layer.output
    win = window_of(op)
    n_, h_, w_, c_ = x_acc.shape
    cout, kh, kw, cg = w_acc.shape
    groups = c_ // cg
    cout_g = cout // groups
    oh, ow = win.out_hw
    sh, sw = win.strides
    dh, dw = win.dilations
    pt, _, pl, _ = win.pads
    xs, ys = x_acc.strides, y_acc.strides
    quant = _quantized(k)
    c = k.code
    k.pointer("x", x_acc)
    fold = False
    acc_t = "float"
    zx = 0
    if quant:
        p = _params(k)
        zx = _p_int(p, "input_zp")
        wzp = _p_arr(p, "weight_zp", cout).astype(np.int64)
        w_acc, wvals, runtime_wzp = _weights_minus_zp(k, w_acc, wzp, 0)
        bvals = _const_values(k, b_acc)
        xq = _qtype(x_acc)
        max_x, max_xd = _input_max_abs(xq, zx)
        req = _Requant(k, p, cout, wide=False)
        if wvals is not None:
            wsum_abs = np.abs(wvals).reshape(cout, -1).sum(axis=1)
            babs = np.abs(bvals.astype(np.int64)) if bvals is not None else np.zeros(cout, np.int64)
            if bvals is None and b_acc is not None:
                babs = np.full(cout, 1 << 31, np.int64)
            border_bound = int((wsum_abs * max_xd + babs).max(initial=0))
            fold = b_acc is None or bvals is not None
            if fold:
                wsum = wvals.reshape(cout, -1).sum(axis=1)
                base = bvals.astype(np.int64) if bvals is not None else np.zeros(cout, np.int64)
                bfold = qm.wrap_int32(base - zx * wsum)
                fold_bound = int((wsum_abs * max_x + np.abs(bfold)).max(initial=0))
                bname = k.table(
                    "bias", "int32_t", bfold, f"layer {k.layer.index}: bias - input_zp * sum(weights)"
                )
            else:
                fold_bound = border_bound
            acc_t = _acc_bound_ctype(max(border_bound, fold_bound))
        else:
            acc_t = "int64_t" if runtime_wzp or cg * kh * kw * 65536 >= (1 << 30) else "int32_t"
    else:
        activation = op.activation()
    oy_in = _interior(oh, h_, kh, sh, dh, pt)
    ox_in = _interior(ow, w_, kw, sw, dw, pl)
    has_interior = oy_in[1] > oy_in[0] and ox_in[1] > ox_in[0]
    all_interior = oy_in == (0, oh) and ox_in == (0, ow)
    use_fast = has_interior and (fold or not quant)
    k.pointer("w", w_acc)
    if b_acc is not None and not (quant and use_fast and all_interior):
        k.pointer("b", b_acc)
    k.pointer("y", y_acc, writable=True)
    wzp_expr = ""
    if quant and runtime_wzp:
        wz = k.table("wzp", "int32_t", wzp, f"layer {k.layer.index}: weight zero points")
        wzp_expr = f" - {wz}[oc]"
    segment = groups == 1 and dw == 1 and xs[3] == 1 and xs[2] == c_

    def store(acc_var: str, target: str) -> None:
        if quant:
            req.store(acc_var, acc_t, "oc", target)
        else:
            clamp = _fclamp(acc_var, activation)
            if clamp:
                c(clamp)
            c(f"{target} = {acc_var};")

    def init(folded: bool) -> str:
        if quant:
            if folded:
                return f"{acc_t} acc = {bname}[oc];"
            return f"{acc_t} acc = {'b[oc]' if b_acc is not None else '0'};"
        return f"float acc = {'b[oc]' if b_acc is not None else '0.0f'};"

    def prod(xe: str, we: str, folded: bool) -> str:
        if not quant:
            return f"acc += {xe} * {we};"
        xterm = xe if folded else _minus(xe, zx)
        wterm = f"({we}{wzp_expr})" if wzp_expr else we
        if acc_t == "int64_t":
            return f"acc += (int64_t){xterm} * {wterm};"
        return f"acc += {xterm} * {wterm};"

    y_index = lin([("n", ys[0]), ("oy", ys[1]), ("ox", ys[2]), ("oc", ys[3])])

    def fast_body() -> None:
        c.loop("oc", cout)
        if groups > 1:
            c(f"const int g = oc / {cout_g};")
        c(init(quant))
        if segment:
            seg = kw * cg
            if kh > 1:
                c.loop("ky", kh)
            ky = "ky" if kh > 1 else 0
            c(
                f"const {x_acc.ctype} *xr = x + ({lin([('n', xs[0]), ('iy0', xs[1]), (ky, dh * xs[1]), ('ix0', xs[2])])});"
            )
            c(f"const {w_acc.ctype} *wr = w + ({lin([('oc', kh * kw * cg), (ky, kw * cg)])});")
            c.loop("k", seg)
            c(prod("xr[k]", "wr[k]", quant))
            c.close()
            if kh > 1:
                c.close()
        else:
            taps((kh,), (kw,), quant)
        store("acc", f"y[{y_index}]")
        c.close()

    def taps(ky: tuple[int | str, ...], kx: tuple[int | str, ...], folded: bool) -> None:
        """The accumulation over the window taps ``ky``/``kx`` (loop bounds) and input channels."""
        c.loop("ky", *ky)
        c.loop("kx", *kx)
        c.loop("ci", cg)
        xe = lin(
            [
                ("n", xs[0]),
                ("iy0", xs[1]),
                ("ky", dh * xs[1]),
                ("ix0", xs[2]),
                ("kx", dw * xs[2]),
                ("ci", xs[3]),
            ]
        )
        if groups > 1:
            xe += f" + g * {cg * xs[3]}"
        we = lin([("oc", kh * kw * cg), ("ky", kw * cg), ("kx", cg), ("ci", 1)])
        c(prod(f"x[{xe}]", f"w[{we}]", folded))
        c.close()
        c.close()
        c.close()

    def border_body() -> None:
        _tap_range(k, "ky0", "ky1", "iy0", kh, dh, h_)
        _tap_range(k, "kx0", "kx1", "ix0", kw, dw, w_)
        c.loop("oc", cout)
        if groups > 1:
            c(f"const int g = oc / {cout_g};")
        c(init(False))
        taps(("ky1", "ky0"), ("kx1", "kx0"), False)
        store("acc", f"y[{y_index}]")
        c.close()

    if n_ > 1:
        _pixel_loop(k, "n", n_)
    else:
        c("const int n = 0;")
    _pixel_loop(k, "oy", oh)
    c(f"const int iy0 = {lin([('oy', sh)], -pt)};")
    _pixel_loop(k, "ox", ow)
    c(f"const int ix0 = {lin([('ox', sw)], -pl)};")
    if use_fast and all_interior:
        fast_body()
    elif use_fast:
        cond = _cond("oy", *oy_in, oh) + _cond("ox", *ox_in, ow)
        c.open(f"if ({' && '.join(cond)})")
        fast_body()
        c.depth -= 1
        c.open("} else")
        border_body()
        c.close()
    else:
        border_body()
    c.close()
    c.close()
    if n_ > 1:
        c.close()
    else:
        c("(void)n;")


def depthwise_conv2d(k: KernelContext) -> None:
    """Depthwise convolution (any multiplier); in place channel by channel when the plan says so."""
    op = k.layer.op
    assert isinstance(op, nn.DepthwiseConv2DOp)
    x_acc, w_acc = k.layer.inputs[0], k.layer.inputs[1]
    b_acc = k.layer.inputs[2] if len(k.layer.inputs) > 2 else None
    y_acc = k.layer.output
    win = window_of(op)
    n_, h_, w_, c_ = x_acc.shape
    co = w_acc.shape[3]
    mult = co // c_
    kh, kw = win.kernel
    oh, ow = win.out_hw
    sh, sw = win.strides
    dh, dw = win.dilations
    pt, _, pl, _ = win.pads
    quant = _quantized(k)
    in_place = y_acc.overlaps(x_acc) and k.layer.scratch is not None
    if in_place:
        _check_in_place_depthwise(k, x_acc, y_acc, mult)
        _check_no_alias(k, *k.layer.inputs[1:])
    else:
        _window_alias(k)
    c = k.code
    wide = False
    zx = 0
    if quant:
        p = _params(k)
        mode = _mode(k)
        zx = _p_int(p, "input_zp")
        wide = _qtype(x_acc).width == 16 and mode != "onnx_rint"
        wzp = _p_arr(p, "weight_zp", co).astype(np.int64)
        w_acc, wvals, runtime_wzp = _weights_minus_zp(k, w_acc, wzp, 3)
        _, max_xd = _input_max_abs(_qtype(x_acc), zx)
        bvals = _const_values(k, b_acc)
        if wide:
            acc_t = "int64_t"
        elif wvals is not None and (b_acc is None or bvals is not None):
            wabs = np.abs(wvals).reshape(-1, co).sum(axis=0)
            babs = np.abs(bvals.astype(np.int64)) if bvals is not None else 0
            acc_t = _acc_bound_ctype(int((wabs * max_xd + babs).max(initial=0)))
        else:
            acc_t = "int64_t"
        req = _Requant(k, p, co, wide)
        if runtime_wzp:
            wz = k.table("wzp", "int32_t", wzp, f"layer {k.layer.index}: weight zero points")
    else:
        acc_t = "float"
        activation = op.activation()
    k.pointer("x", x_acc)
    k.pointer("w", w_acc)
    if b_acc is not None:
        k.pointer("b", b_acc)
    k.pointer("y", y_acc, writable=True)
    xs, ys = x_acc.strides, y_acc.strides

    def mac(xe: str, we: str, j: str) -> str:
        if not quant:
            return f"acc[{j}] += {xe} * {we};"
        xterm = _minus(xe, zx)
        wterm = f"({we} - {wz}[c0 + {j}])" if runtime_wzp else we
        cast = "(int64_t)" if acc_t == "int64_t" else ""
        return f"acc[{j}] += {cast}{xterm} * {wterm};"

    def store(j: str, target: str) -> None:
        if quant:
            req.store(f"acc[{j}]", acc_t, f"c0 + {j}", target)
        else:
            c(f"float v = acc[{j}];")
            clamp = _fclamp("v", activation)
            if clamp:
                c(clamp)
            c(f"{target} = v;")

    zero = "0" if quant else "0.0f"

    if in_place:
        # Channel by channel: the output planes of channel c (every batch) go to the scratch temp,
        # then over channel c of the shared buffer. Input and result have the same channel
        # stride, so only channel-c bytes are written, and channel c of the input is consumed.
        assert k.layer.scratch is not None
        plane = oh * ow
        tmp = k.layer.scratch
        k.pointer(
            "t", Access(y_acc.ctype, y_acc.elem_bytes, (n_ * plane,), (1,), tmp.space, tmp.offset), True
        )
        taps = [(ty, tx) for ty in range(kh) for tx in range(kw)]
        unroll = len(taps) <= 25 and not (quant and runtime_wzp)
        oy_in = _interior(oh, h_, kh, sh, dh, pt)
        ox_in = _interior(ow, w_, kw, sw, dw, pl)
        has_interior = unroll and oy_in[1] > oy_in[0] and ox_in[1] > ox_in[0]
        all_interior = oy_in == (0, oh) and ox_in == (0, ow)
        wt = "float" if not quant else ("int64_t" if acc_t == "int64_t" else "int32_t")
        c.loop("c0", c_)
        c("const int j = 0;")
        if has_interior:
            for t, (ty, tx) in enumerate(taps):
                c(f"const {wt} w{t} = w[{lin([(ty * kw + tx, co), ('c0', 1)])}];")
        c.loop("n", n_)
        c.loop("oy", oh)
        c(f"const int iy0 = {lin([('oy', sh)], -pt)};")
        c.loop("ox", ow)
        c(f"const int ix0 = {lin([('ox', sw)], -pl)};")
        c(f"{acc_t} acc[1];")
        c(f"acc[0] = {'b[c0]' if b_acc is not None else zero};")
        if has_interior:
            if not all_interior:
                cond = _cond("oy", *oy_in, oh) + _cond("ox", *ox_in, ow)
                c.open(f"if ({' && '.join(cond)})")
            c(
                f"const {x_acc.ctype} *xp = x + ({lin([('n', xs[0]), ('iy0', xs[1]), ('ix0', xs[2]), ('c0', xs[3])])});"
            )
            for t, (ty, tx) in enumerate(taps):
                xe = f"xp[{ty * dh * xs[1] + tx * dw * xs[2]}]"
                c(f"acc[0] += {_minus(xe, zx) if quant else xe} * w{t};")
            if not all_interior:
                c.depth -= 1
                c.open("} else")
        if not (has_interior and all_interior):
            _tap_range(k, "ky0", "ky1", "iy0", kh, dh, h_)
            _tap_range(k, "kx0", "kx1", "ix0", kw, dw, w_)
            c.loop("ky", "ky1", "ky0")
            c.loop("kx", "kx1", "kx0")
            xe = lin(
                [
                    ("n", xs[0]),
                    ("iy0", xs[1]),
                    ("ky", dh * xs[1]),
                    ("ix0", xs[2]),
                    ("kx", dw * xs[2]),
                    ("c0", xs[3]),
                ]
            )
            c(mac(f"x[{xe}]", f"w[{lin([('ky', kw * co), ('kx', co), ('c0', 1)])}]", "j"))
            c.close()
            c.close()
        if has_interior and not all_interior:
            c.close()
        store("j", f"t[{lin([('n', plane), ('oy', ow), ('ox', 1)])}]")
        c.close()
        c.close()
        c.close()
        c.loop("n", n_)
        c.loop("p", plane)
        c(f"y[{lin([('n', ys[0]), ('p', ys[2]), ('c0', ys[3])])}] = t[{lin([('n', plane), ('p', 1)])}];")
        c.close()
        c.close()
        c.close()
        return

    cb = _channel_block(co)
    if n_ > 1:
        _pixel_loop(k, "n", n_)
    else:
        c("const int n = 0;")
    _pixel_loop(k, "oy", oh)
    c(f"const int iy0 = {lin([('oy', sh)], -pt)};")
    _tap_range(k, "ky0", "ky1", "iy0", kh, dh, h_)
    _pixel_loop(k, "ox", ow)
    c(f"const int ix0 = {lin([('ox', sw)], -pl)};")
    _tap_range(k, "kx0", "kx1", "ix0", kw, dw, w_)
    if cb == co:
        c("const int c0 = 0;")
        count: str | int = co
    else:
        c.open(f"for (int c0 = 0; c0 < {co}; c0 += {cb})")
        if co % cb:
            c(f"const int cn = {co} - c0 < {cb} ? {co} - c0 : {cb};")
            count = "cn"
        else:
            count = cb
    c(f"{acc_t} acc[{cb}];")
    c.loop("j", count)
    c(f"acc[j] = {'b[c0 + j]' if b_acc is not None else zero};")
    c.close()
    c.loop("ky", "ky1", "ky0")
    c.loop("kx", "kx1", "kx0")
    xrow = lin([("n", xs[0]), ("iy0", xs[1]), ("ky", dh * xs[1]), ("ix0", xs[2]), ("kx", dw * xs[2])])
    c(f"const {x_acc.ctype} *xp = x + ({xrow});")
    c(f"const {w_acc.ctype} *wp = w + ({lin([('ky', kw * co), ('kx', co), ('c0', 1)])});")
    c.loop("j", count)
    ch = "c0 + j" if mult == 1 else f"(c0 + j) / {mult}"
    xe = f"xp[{ch}]" if xs[3] == 1 else f"xp[({ch}) * {xs[3]}]"
    c(mac(xe, "wp[j]", "j"))
    c.close()
    c.close()
    c.close()
    c.loop("j", count)
    store("j", f"y[{lin([('n', ys[0]), ('oy', ys[1]), ('ox', ys[2]), ('c0', ys[3]), ('j', ys[3])])}]")
    c.close()
    if cb != co:
        c.close()
    else:
        c("(void)c0;")
    c.close()
    c.close()
    if n_ > 1:
        c.close()
    else:
        c("(void)n;")


def _check_in_place_depthwise(k: KernelContext, x: Access, y: Access, mult: int) -> None:
    scratch = k.layer.scratch
    n_, oh, ow = y.shape[0], y.shape[1], y.shape[2]
    need = n_ * oh * ow * y.elem_bytes
    ok = (
        mult == 1
        and x.offset == y.offset
        and x.contiguous
        and y.contiguous
        and x.elem_bytes == y.elem_bytes
        and scratch is not None
        and scratch.size >= need
        and not scratch.overlaps(y)
        and not scratch.overlaps(x)
    )
    if not ok:
        raise _err(
            k,
            "writes over its input in a way the C backend cannot run: an in-place depthwise convolution "
            f"needs multiplier 1, the same contiguous place for input and result, and a scratch "
            f"temp of {need} bytes outside them",
        )


def _fully_connected_patch(k: KernelContext) -> bool:
    """Integer fully connected layer with constant weights: each input row widened once to a
    16-bit patch, then one dot product per output channel (rows padded to a multiple of 16)."""
    x_acc, w_acc = k.layer.inputs[0], k.layer.inputs[1]
    b_acc = k.layer.inputs[2] if len(k.layer.inputs) > 2 else None
    y_acc = k.layer.output
    xq = _qtype(x_acc)
    if w_acc.const is None or xq.width != 8:
        return False
    p = _params(k)
    cout, kk = w_acc.shape
    rows = x_acc.size // kk
    zx = _p_int(p, "input_zp")
    wzp = _p_arr(p, "weight_zp", cout).astype(np.int64)
    kp = _round_up(kk, 16)
    wrows = np.zeros((cout, kp), np.int64)
    wrows[:, :kk] = k.tables.constants[w_acc.const].value.astype(np.int64).reshape(cout, kk) - wzp.reshape(
        -1, 1
    )
    bvals = _const_values(k, b_acc)
    fold = b_acc is None or bvals is not None
    max_x, max_xd = _input_max_abs(xq, zx)
    wsum_abs = np.abs(wrows).sum(axis=1)
    if fold:
        base = bvals.astype(np.int64) if bvals is not None else np.zeros(cout, np.int64)
        bias = qm.wrap_int32(base - zx * wrows.sum(axis=1))
        acc_t = _acc_bound_ctype(int((wsum_abs * max_x + np.abs(bias)).max(initial=0)))
        bname = k.table("bias", "int32_t", bias, f"layer {k.layer.index}: bias - input_zp * sum(weights)")
    else:
        acc_t = _acc_bound_ctype(int((wsum_abs * max_xd).max(initial=0)) + (1 << 31))
    req = _Requant(k, p, cout, wide=False)
    c = k.code
    k.pointer("x", x_acc)
    if kp == kk and not np.any(wzp):
        k.pointer("w", w_acc)
        wtype = w_acc.ctype
    else:
        wtype = "int8_t" if wrows.min(initial=0) >= -128 and wrows.max(initial=0) <= 127 else "int16_t"
        wname = k.table("w", wtype, wrows, f"layer {k.layer.index}: weight rows padded to {kp}")
        c(f"const {wtype} *w = {wname};")
    if not fold:
        k.pointer("b", b_acc)  # type: ignore[arg-type]
    k.pointer("y", y_acc, writable=True)
    c(f"int16_t patch[{kp}];")
    if kp > kk:
        c.loop("q", kp, kk)
        c("patch[q] = 0;")
        c.close()
    c.loop("r", rows)
    c.loop("i", kk)
    xe = f"x[r * {kk} + i]" if x_acc.contiguous else f"x[{_flat_index(x_acc, f'r * {kk} + i')}]"
    c(f"patch[i] = (int16_t){xe};" if fold else f"patch[i] = (int16_t)({_minus(xe, zx)});")
    c.close()
    c.loop("oc", cout)
    c(f"const {wtype} *wr = w + oc * {kp};")
    c(f"{acc_t} acc = {bname + '[oc]' if fold else 'b[oc]'};")
    c.loop("q", kp)
    c(f"acc += {'(int64_t)' if acc_t == 'int64_t' else ''}patch[q] * wr[q];")
    c.close()
    target = f"y[r * {cout} + oc]" if y_acc.contiguous else f"y[{_flat_index(y_acc, f'r * {cout} + oc')}]"
    req.store("acc", acc_t, "oc", target)
    c.close()
    c.close()
    return True


def fully_connected(k: KernelContext) -> None:
    """Fully connected layer ``y = x @ W^T + b`` over rows of K."""
    op = k.layer.op
    assert isinstance(op, nn.FullyConnectedOp)
    x_acc, w_acc = k.layer.inputs[0], k.layer.inputs[1]
    b_acc = k.layer.inputs[2] if len(k.layer.inputs) > 2 else None
    y_acc = k.layer.output
    _check_no_alias(k, *k.layer.inputs)
    if _quantized(k) and _fully_connected_patch(k):
        return
    if not _quantized(k) and w_acc.const is not None and x_acc.ctype == "float":
        cout, kk = w_acc.shape
        rows = x_acc.size // kk
        c = k.code
        wt = _float_blocks(k.tables.constants[w_acc.const].value.astype(np.float32).reshape(1, cout, kk))
        k.pointer("x", x_acc)
        wname = k.table("wt", "float", wt, f"layer {k.layer.index}: weights as [channel block][k][8]")
        if b_acc is not None:
            k.pointer("b", b_acc)
        k.pointer("y", y_acc, writable=True)
        c(f"float acc[{min(cout, FLOAT_BLOCK)}];")
        c.loop("r", rows)
        if x_acc.contiguous:
            c(f"const float *patch = x + r * {kk};")
        else:
            c(f"float patch[{kk}];")
            c.loop("i", kk)
            c(f"patch[i] = x[{_flat_index(x_acc, f'r * {kk} + i')}];")
            c.close()

        def fc_target(oc: str) -> str:
            flat = f"r * {cout} + {oc}"
            return f"y[{flat}]" if y_acc.contiguous else f"y[{_flat_index(y_acc, flat)}]"

        _float_rows(k, kk, cout, wname, "b" if b_acc is not None else None, op.activation(), fc_target)
        c.close()
        return
    cout, kk = w_acc.shape
    rows = x_acc.size // kk
    quant = _quantized(k)
    c = k.code
    k.pointer("x", x_acc)
    fold = False
    if quant:
        p = _params(k)
        mode = _mode(k)
        zx = _p_int(p, "input_zp")
        wide = _qtype(x_acc).width == 16 and mode != "onnx_rint"
        wzp = _p_arr(p, "weight_zp", cout).astype(np.int64)
        w_acc, wvals, runtime_wzp = _weights_minus_zp(k, w_acc, wzp, 0)
        bvals = _const_values(k, b_acc)
        req = _Requant(k, p, cout, wide)
        max_x, _ = _input_max_abs(_qtype(x_acc), zx)
        if wide:
            acc_t = "int64_t"
            fold = False
        elif wvals is not None and (b_acc is None or bvals is not None):
            fold = True
            wsum = wvals.sum(axis=1)
            base = bvals.astype(np.int64) if bvals is not None else np.zeros(cout, np.int64)
            bfold = qm.wrap_int32(base - zx * wsum)
            bound = int((np.abs(wvals).sum(axis=1) * max_x + np.abs(bfold)).max(initial=0))
            acc_t = _acc_bound_ctype(bound)
            bname = k.table(
                "bias", "int32_t", bfold, f"layer {k.layer.index}: bias - input_zp * sum(weights)"
            )
        else:
            acc_t = "int64_t"
        if runtime_wzp:
            wz = k.table("wzp", "int32_t", wzp, f"layer {k.layer.index}: weight zero points")
    else:
        acc_t = "float"
    k.pointer("w", w_acc)
    if b_acc is not None and not (quant and fold):
        k.pointer("b", b_acc)
    k.pointer("y", y_acc, writable=True)
    if rows > 1:
        c.loop("r", rows)
    else:
        c("const int r = 0;")
    c.loop("oc", cout)
    if quant and fold:
        c(f"{acc_t} acc = {bname}[oc];")
    elif quant:
        c(f"{acc_t} acc = {'b[oc]' if b_acc is not None else '0'};")
    else:
        c(f"float acc = {'b[oc]' if b_acc is not None else '0.0f'};")
    x_contig = x_acc.contiguous
    if x_contig:
        c(f"const {x_acc.ctype} *xr = x + r * {kk};")
    c(f"const {w_acc.ctype} *wr = w + oc * {kk};")
    c.loop("i", kk)
    xe = "xr[i]" if x_contig else f"x[{_flat_index(x_acc, f'r * {kk} + i')}]"
    if not quant:
        c(f"acc += {xe} * wr[i];")
    else:
        xterm = xe if fold else _minus(xe, zx)
        wterm = f"(wr[i] - {wz}[oc])" if runtime_wzp else "wr[i]"
        cast = "(int64_t)" if acc_t == "int64_t" else ""
        c(f"acc += {cast}{xterm} * {wterm};")
    c.close()
    target = (
        f"y[{_flat_index(y_acc, 'r * ' + str(cout) + ' + oc')}]"
        if not y_acc.contiguous
        else f"y[r * {cout} + oc]"
    )
    if quant:
        req.store("acc", acc_t, "oc", target)
    else:
        clamp = _fclamp("acc", op.activation())
        if clamp:
            c(clamp)
        c(f"{target} = acc;")
    c.close()
    if rows > 1:
        c.close()
    else:
        c("(void)r;")


def matmul(k: KernelContext) -> None:
    """Batched matrix product with broadcast batch dims and optional transposes."""
    op = k.layer.op
    assert isinstance(op, nn.MatMulOp)
    a_acc, b_acc = k.layer.inputs
    y_acc = k.layer.output
    _check_no_alias(k, a_acc, b_acc)
    quant = _quantized(k)
    c = k.code
    ys = y_acc.shape
    batch = ys[:-2]
    m, n = ys[-2], ys[-1]
    adj_x, adj_y = op.adj_x is not None, op.adj_y is not None
    kk = a_acc.shape[-2] if adj_x else a_acc.shape[-1]
    a_st = broadcast_strides(a_acc.with_view(a_acc.shape[:-2], a_acc.strides[:-2]), batch) if batch else ()
    b_st = broadcast_strides(b_acc.with_view(b_acc.shape[:-2], b_acc.strides[:-2]), batch) if batch else ()
    a_m, a_k = (a_acc.strides[-1], a_acc.strides[-2]) if adj_x else (a_acc.strides[-2], a_acc.strides[-1])
    b_k, b_n = (b_acc.strides[-1], b_acc.strides[-2]) if adj_y else (b_acc.strides[-2], b_acc.strides[-1])
    k.pointer("a", a_acc)
    k.pointer("b", b_acc)
    k.pointer("y", y_acc, writable=True)
    if quant:
        p = _params(k)
        mode = _mode(k)
        za, zb = _p_int(p, "lhs_zp"), _p_int(p, "rhs_zp")
        wide = _qtype(a_acc).width == 16 and mode != "onnx_rint"
        _, ma = _input_max_abs(_qtype(a_acc), za)
        _, mb = _input_max_abs(_qtype(b_acc), zb)
        acc_t = "int64_t" if wide else _acc_bound_ctype(ma * mb * kk)
        req = _Requant(k, p, 1, wide)
    bvars = [f"t{d}" for d in range(len(batch))]
    for var, size in zip(bvars, batch, strict=True):
        c.loop(var, size)
    abase = lin(zip(bvars, a_st, strict=True))
    bbase = lin(zip(bvars, b_st, strict=True))
    ybase = lin(zip(bvars, y_acc.strides[:-2], strict=True))
    c.loop("i", m)
    c.loop("j", n)
    c(f"{acc_t if quant else 'float'} acc = {'0' if quant else '0.0f'};")
    c.loop("q", kk)
    ae = f"a[{abase} + {lin([('i', a_m), ('q', a_k)])}]"
    be = f"b[{bbase} + {lin([('q', b_k), ('j', b_n)])}]"
    if quant:
        at = _minus(ae, za)
        bt = _minus(be, zb)
        cast = "(int64_t)" if acc_t == "int64_t" else ""
        c(f"acc += {cast}{at} * {bt};")
    else:
        c(f"acc += {ae} * {be};")
    c.close()
    target = f"y[{ybase} + {lin([('i', y_acc.strides[-2]), ('j', y_acc.strides[-1])])}]"
    if quant:
        req.store("acc", acc_t, "0", target)
    else:
        c(f"{target} = acc;")
    c.close()
    c.close()
    for _ in bvars:
        c.close()


# --------------------------------------------------------------------------
# Pools and reductions
# --------------------------------------------------------------------------


def pool2d(k: KernelContext) -> None:
    """Max or average pooling over windows (padded cells never count)."""
    op = k.layer.op
    assert isinstance(op, nn.MaxPool2DOp | nn.AvgPool2DOp)
    is_max = isinstance(op, nn.MaxPool2DOp)
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    _window_alias(k)
    quant = _quantized(k)
    mode = _mode(k) if quant else ""
    if quant and not is_max and mode == "onnx_rint":
        _float_sim_pool(k)
        return
    win = window_of(op)
    n_, h_, w_, c_ = x_acc.shape
    kh, kw = win.kernel
    oh, ow = win.out_hw
    sh, sw = win.strides
    pt, _, pl, _ = win.pads
    c = k.code
    k.pointer("x", x_acc)
    k.pointer("y", y_acc, writable=True)
    xs, ys = x_acc.strides, y_acc.strides
    if quant:
        p = _params(k)
        lo, hi = _store_bounds(p, _qtype(y_acc))
        acc_t = "int32_t"
        init = "INT32_MIN" if is_max else "0"
    else:
        acc_t = "float"
        init = "-HUGE_VALF" if is_max else "0.0f"
        if is_max:
            k.needs_math = True
    cb = _channel_block(c_)
    if n_ > 1:
        _pixel_loop(k, "n", n_)
    else:
        c("const int n = 0;")
    _pixel_loop(k, "oy", oh)
    c(f"const int iy0 = {lin([('oy', sh)], -pt)};")
    _tap_range(k, "ky0", "ky1", "iy0", kh, 1, h_)
    _pixel_loop(k, "ox", ow)
    c(f"const int ix0 = {lin([('ox', sw)], -pl)};")
    _tap_range(k, "kx0", "kx1", "ix0", kw, 1, w_)
    if not is_max:
        c("const int cnt = (ky1 > ky0 ? ky1 - ky0 : 0) * (kx1 > kx0 ? kx1 - kx0 : 0);")
    if cb == c_:
        c("const int c0 = 0;")
        count: str | int = c_
    else:
        c.open(f"for (int c0 = 0; c0 < {c_}; c0 += {cb})")
        if c_ % cb:
            c(f"const int cn = {c_} - c0 < {cb} ? {c_} - c0 : {cb};")
            count = "cn"
        else:
            count = cb
    c(f"{acc_t} acc[{cb}];")
    c.loop("j", count)
    c(f"acc[j] = {init};")
    c.close()
    c.loop("ky", "ky1", "ky0")
    c.loop("kx", "kx1", "kx0")
    c(
        f"const {x_acc.ctype} *xp = x + ({lin([('n', xs[0]), ('iy0', xs[1]), ('ky', xs[1]), ('ix0', xs[2]), ('kx', xs[2]), ('c0', xs[3])])});"
    )
    c.loop("j", count)
    xe = "xp[j]" if xs[3] == 1 else f"xp[j * {xs[3]}]"
    if is_max:
        c(f"acc[j] = {xe} > acc[j] ? {xe} : acc[j];")
    else:
        c(f"acc[j] += {xe};")
    c.close()
    c.close()
    c.close()
    c.loop("j", count)
    target = f"y[{lin([('n', ys[0]), ('oy', ys[1]), ('ox', ys[2]), ('c0', ys[3]), ('j', ys[3])])}]"
    if quant:
        if is_max:
            c("int32_t v = acc[j];")
        else:
            c("const int32_t total = acc[j];")
            c("const int32_t half = cnt / 2;")
            c("int32_t v = cnt == 0 ? 0 : (total > 0 ? (total + half) / cnt : (total - half) / cnt);")
        c(_clamp("v", lo, hi))
        c(f"{target} = ({y_acc.ctype})v;")
    else:
        c("float v = acc[j];" if is_max else "float v = acc[j] / (float)cnt;")
        clamp = _fclamp("v", op.activation())
        if clamp:
            c(clamp)
        c(f"{target} = v;")
    c.close()
    if cb != c_:
        c.close()
    else:
        c("(void)c0;")
    c.close()
    c.close()
    if n_ > 1:
        c.close()
    else:
        c("(void)n;")


def _float_sim_pool(k: KernelContext) -> None:
    """ONNX average pool: dequantize, float average, rint quantize."""
    op = k.layer.op
    assert isinstance(op, nn.AvgPool2DOp)
    p = _params(k)
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    win = window_of(op)
    n_, h_, w_, c_ = x_acc.shape
    kh, kw = win.kernel
    oh, ow = win.out_hw
    sh, sw = win.strides
    pt, _, pl, _ = win.pads
    lo, hi = _store_bounds(p, _qtype(y_acc))
    sx, zx = float(np.asarray(p["input_scale"]).reshape(-1)[0]), _p_int(p, "input_zp")
    sy, zy = float(np.asarray(p["output_scale"]).reshape(-1)[0]), _p_int(p, "output_zp")
    fn = k.use("rint_f32")
    c = k.code
    k.pointer("x", x_acc)
    k.pointer("y", y_acc, writable=True)
    xs, ys = x_acc.strides, y_acc.strides
    _pixel_loop(k, "n", n_)
    _pixel_loop(k, "oy", oh)
    c(f"const int iy0 = {lin([('oy', sh)], -pt)};")
    _tap_range(k, "ky0", "ky1", "iy0", kh, 1, h_)
    _pixel_loop(k, "ox", ow)
    c(f"const int ix0 = {lin([('ox', sw)], -pl)};")
    _tap_range(k, "kx0", "kx1", "ix0", kw, 1, w_)
    c("const int cnt = (ky1 > ky0 ? ky1 - ky0 : 0) * (kx1 > kx0 ? kx1 - kx0 : 0);")
    c.loop("ch", c_)
    c("float total = 0.0f;")
    c.loop("ky", "ky1", "ky0")
    c.loop("kx", "kx1", "kx0")
    xe = lin([("n", xs[0]), ("iy0", xs[1]), ("ky", xs[1]), ("ix0", xs[2]), ("kx", xs[2]), ("ch", xs[3])])
    c(f"total += (float)((int32_t)x[{xe}] - {zx}) * {float_literal(sx)};")
    c.close()
    c.close()
    c(f"int64_t v = {k.use('add64')}({fn}((total / (float)cnt) / {float_literal(sy)}), {zy});")
    c(_clamp("v", lo, hi))
    c(f"y[{lin([('n', ys[0]), ('oy', ys[1]), ('ox', ys[2]), ('ch', ys[3])])}] = ({y_acc.ctype})v;")
    c.close()
    c.close()
    c.close()
    c.close()


def mean(k: KernelContext) -> None:
    """Mean over axes: one reduction loop per output element."""
    op = k.layer.op
    assert isinstance(op, nn.MeanOp)
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    axes = op.axis_values()
    quant = _quantized(k)
    _check_no_alias(k, x_acc)
    c = k.code
    k.pointer("x", x_acc)
    k.pointer("y", y_acc, writable=True)
    xshape = x_acc.shape
    kept = [d for d in range(len(xshape)) if d not in axes]
    count = math.prod(xshape[d] for d in axes)
    # Output elements in row-major order of the kept dims; the result shape has the same order.
    out_vars = [f"o{d}" for d in kept]
    for var, d in zip(out_vars, kept, strict=True):
        c.loop(var, xshape[d])
    red_vars = {d: f"r{d}" for d in axes}
    mode = _mode(k) if quant else ""
    if quant:
        p = _params(k)
        yq = _qtype(y_acc)
        xq = _qtype(x_acc)
        if mode == "onnx_rint":
            c("float total = 0.0f;")
        else:
            c("uint32_t total = 0U;")
    else:
        c("float total = 0.0f;")
    for d in axes:
        c.loop(red_vars[d], xshape[d])
    xe = lin(
        [
            (out_vars[kept.index(d)] if d in kept else red_vars[d], x_acc.strides[d])
            for d in range(len(xshape))
        ]
    )
    if quant and mode == "onnx_rint":
        sx, zx = float(np.asarray(p["input_scale"]).reshape(-1)[0]), _p_int(p, "input_zp")
        c(f"total += (float)((int32_t)x[{xe}] - {zx}) * {float_literal(sx)};")
    elif quant:
        c(f"const int32_t v = x[{xe}];")
        c("total += (uint32_t)v;")
    else:
        c(f"total += x[{xe}];")
    for _ in axes:
        c.close()
    # Output index: drop reduced dims (or keep them as 0 with keep_dims).
    ys = y_acc.strides
    if op.keep_dims is not None:
        yterms = [(out_vars[kept.index(d)] if d in kept else 0, ys[d]) for d in range(len(xshape))]
    else:
        yterms = [(out_vars[i], ys[i]) for i in range(len(kept))]
    target = f"y[{lin(yterms)}]"
    if quant and mode == "onnx_rint":
        fn = k.use("rint_f32")
        sy, zy = float(np.asarray(p["output_scale"]).reshape(-1)[0]), _p_int(p, "output_zp")
        lo, hi = _store_bounds(p, yq)
        c(
            f"int64_t v = {k.use('add64')}({fn}((total / {float_literal(float(count))}) / {float_literal(sy)}), {zy});"
        )
        c(_clamp("v", lo, hi))
        c(f"{target} = ({y_acc.ctype})v;")
    elif quant:
        zx = _p_int(p, "input_zp")
        correction = (zx * _p_int(p, "count")) & 0xFFFFFFFF
        fn = k.use(mbqm_name(mode))
        mult, shift = _p_int(p, "multiplier"), _p_int(p, "shift")
        zy = _p_int(p, "output_zp")
        c(f"const int32_t shifted = (int32_t)(total - {correction}U);")
        c(f"int32_t v = {fn}(shifted, {int_literal(mult)}, {shift}) + {zy};")
        c(_clamp("v", yq.qmin, yq.qmax))
        c(f"{target} = ({y_acc.ctype})v;")
        del xq
    else:
        c(f"{target} = total / {float_literal(float(count))};")
    for _ in out_vars:
        c.close()


# --------------------------------------------------------------------------
# Elementwise
# --------------------------------------------------------------------------


def _lut_unary(k: KernelContext) -> bool:
    """8-bit unary ops: a 256-entry table from the interpreter's own kernel."""
    from nnopt.backends.numpy.arrays import all_values
    from nnopt.backends.numpy.interpreter import make_kernel

    op = k.layer.op
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    xq = _qtype(x_acc)
    if xq.width != 8 or xq.is_per_axis:
        return False
    values = all_values(xq)  # every byte value, in uint8 order
    table = make_kernel(op)([values])
    name = k.table(
        "lut", y_acc.ctype, np.asarray(table).reshape(-1), f"layer {k.layer.index}: {op.name} table"
    )
    _check_elementwise_alias(k, x_acc)
    k.code(f"/* {op.name[3:]} of every input byte, computed at compile time by the interpreter */")
    _elementwise(k, [x_acc], lambda yi, xi, _: k.code(f"y[{yi}] = {name}[(uint8_t)x0[{xi[0]}]];"))
    return True


def unary(k: KernelContext) -> None:
    """relu, relu6, clamp, logistic, tanh on floats or integers."""
    op = k.layer.op
    x_acc = k.layer.inputs[0]
    c = k.code
    if _quantized(k):
        if _lut_unary(k):
            return
        p = _params(k)
        mode = _mode(k)
        y_acc = k.layer.output
        yq = _qtype(y_acc)
        _check_elementwise_alias(k, x_acc)
        if mode == "onnx_rint":
            _float_sim_unary(k, p)
            return
        if isinstance(op, nn.LogisticOp | nn.TanhOp):
            raise _err(k, "integer logistic/tanh needs 8-bit tensors")
        fn = k.use(mbqm_name(mode))
        zx, zy = _p_int(p, "input_zp"), _p_int(p, "output_zp")
        lo, hi = _store_bounds(p, yq)
        mult, shift = _p_int(p, "multiplier"), _p_int(p, "shift")

        def body(yi: str, xi: list[str], _: list[str]) -> None:
            c(f"int32_t v = {fn}((int32_t)x0[{xi[0]}] - {zx}, {int_literal(mult)}, {shift}) + {zy};")
            c(_clamp("v", lo, hi))
            c(f"y[{yi}] = ({y_acc.ctype})v;")

        _elementwise(k, [x_acc], body)
        return
    _check_elementwise_alias(k, x_acc)
    if isinstance(op, nn.ReluOp):
        expr = "v < 0.0f ? 0.0f : v"
    elif isinstance(op, nn.Relu6Op):
        expr = "v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v)"
    elif isinstance(op, nn.ClampOp):
        flo, fhi = float_literal(op.min.value.data), float_literal(op.max.value.data)
        expr = f"v < {flo} ? {flo} : (v > {fhi} ? {fhi} : v)"
    elif isinstance(op, nn.LogisticOp):
        k.needs_math = True
        expr = "1.0f / (1.0f + expf(-v))"
    else:
        k.needs_math = True
        expr = "tanhf(v)"

    def fbody(yi: str, xi: list[str], _: list[str]) -> None:
        c(f"const float v = x0[{xi[0]}];")
        c(f"y[{yi}] = {expr};")

    _elementwise(k, [x_acc], fbody)


def _float_sim_unary(k: KernelContext, p: qparams.Params) -> None:
    """ONNX semantics of a 16-bit unary op: dequantize, float op, rint quantize."""
    op = k.layer.op
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    lo, hi = _store_bounds(p, _qtype(y_acc))
    sx, zx = float(np.asarray(p["input_scale"]).reshape(-1)[0]), _p_int(p, "input_zp")
    sy, zy = float(np.asarray(p["output_scale"]).reshape(-1)[0]), _p_int(p, "output_zp")
    fn = k.use("rint_f32")
    if isinstance(op, nn.ReluOp):
        expr = "f < 0.0f ? 0.0f : f"
    elif isinstance(op, nn.Relu6Op):
        expr = "f < 0.0f ? 0.0f : (f > 6.0f ? 6.0f : f)"
    elif isinstance(op, nn.ClampOp):
        a, b = float_literal(op.min.value.data), float_literal(op.max.value.data)
        expr = f"f < {a} ? {a} : (f > {b} ? {b} : f)"
    elif isinstance(op, nn.LogisticOp):
        k.needs_math = True
        expr = "1.0f / (1.0f + expf(-f))"
    else:
        k.needs_math = True
        expr = "tanhf(f)"
    c = k.code

    def body(yi: str, xi: list[str], _: list[str]) -> None:
        c(f"const float f = (float)((int32_t)x0[{xi[0]}] - {zx}) * {float_literal(sx)};")
        c(f"int64_t v = {k.use('add64')}({fn}(({expr}) / {float_literal(sy)}), {zy});")
        c(_clamp("v", lo, hi))
        c(f"y[{yi}] = ({y_acc.ctype})v;")

    _elementwise(k, [x_acc], body)


def binary(k: KernelContext) -> None:
    """add, sub, mul with numpy broadcasting and a fused activation."""
    op = k.layer.op
    assert isinstance(op, nn.AddOp | nn.SubOp | nn.MulOp)
    a_acc, b_acc = k.layer.inputs
    y_acc = k.layer.output
    _check_elementwise_alias(k, a_acc, b_acc)
    c = k.code
    sym = "+" if isinstance(op, nn.AddOp) else "-" if isinstance(op, nn.SubOp) else "*"
    if not _quantized(k):
        clamp = _fclamp("v", op.activation())

        def fbody(yi: str, xi: list[str], _: list[str]) -> None:
            c(f"float v = x0[{xi[0]}] {sym} x1[{xi[1]}];")
            if clamp:
                c(clamp)
            c(f"y[{yi}] = v;")

        _elementwise(k, [a_acc, b_acc], fbody)
        return
    p = _params(k)
    mode = _mode(k)
    yq = _qtype(y_acc)
    lo, hi = _store_bounds(p, yq)
    if mode == "onnx_rint":
        fn = k.use("rint_f32")
        sa, za = float(np.asarray(p["input1_scale"]).reshape(-1)[0]), _p_int(p, "input1_zp")
        sb, zb = float(np.asarray(p["input2_scale"]).reshape(-1)[0]), _p_int(p, "input2_zp")
        sy, zy = float(np.asarray(p["output_scale"]).reshape(-1)[0]), _p_int(p, "output_zp")
        act = _fclamp("f", op.activation())

        def obody(yi: str, xi: list[str], _: list[str]) -> None:
            c(f"const float fa = (float)((int32_t)x0[{xi[0]}] - {za}) * {float_literal(sa)};")
            c(f"const float fb = (float)((int32_t)x1[{xi[1]}] - {zb}) * {float_literal(sb)};")
            c(f"float f = fa {sym} fb;")
            if act:
                c(act)
            c(f"int64_t v = {k.use('add64')}({fn}(f / {float_literal(sy)}), {zy});")
            c(_clamp("v", lo, hi))
            c(f"y[{yi}] = ({y_acc.ctype})v;")

        _elementwise(k, [a_acc, b_acc], obody)
        return
    zy = _p_int(p, "output_zp")
    if isinstance(op, nn.MulOp):
        fn = k.use(mbqm_name(mode))
        wrap = k.use("wrap32")
        za, zb = _p_int(p, "input1_zp"), _p_int(p, "input2_zp")
        mult, shift = _p_int(p, "multiplier"), _p_int(p, "shift")

        def mbody(yi: str, xi: list[str], _: list[str]) -> None:
            c(
                f"const int32_t prod = {wrap}((int64_t)((int32_t)x0[{xi[0]}] - {za}) * "
                f"((int32_t)x1[{xi[1]}] - {zb}));"
            )
            c(f"int32_t v = {fn}(prod, {int_literal(mult)}, {shift}) + {zy};")
            c(_clamp("v", lo, hi))
            c(f"y[{yi}] = ({y_acc.ctype})v;")

        _elementwise(k, [a_acc, b_acc], mbody)
        return
    fn = k.use(ste_name(mode))
    wrap = k.use("wrap32")
    ls = _p_int(p, "left_shift")
    z1, z2 = _p_int(p, "input1_zp"), _p_int(p, "input2_zp")
    m1, s1 = _p_int(p, "input1_multiplier"), _p_int(p, "input1_shift")
    m2, s2 = _p_int(p, "input2_multiplier"), _p_int(p, "input2_shift")
    mo, so = _p_int(p, "output_multiplier"), _p_int(p, "output_shift")

    def abody(yi: str, xi: list[str], _: list[str]) -> None:
        c(f"const int32_t a = {wrap}((int64_t)((int32_t)x0[{xi[0]}] - {z1}) * {1 << ls});")
        c(f"const int32_t b = {wrap}((int64_t)((int32_t)x1[{xi[1]}] - {z2}) * {1 << ls});")
        c(
            f"const int32_t raw = {wrap}((int64_t){fn}(a, {int_literal(m1)}, {s1}) {sym} "
            f"{fn}(b, {int_literal(m2)}, {s2}));"
        )
        c(f"int32_t v = {fn}(raw, {int_literal(mo)}, {so}) + {zy};")
        c(_clamp("v", lo, hi))
        c(f"y[{yi}] = ({y_acc.ctype})v;")

    _elementwise(k, [a_acc, b_acc], abody)


def softmax(k: KernelContext) -> None:
    """Softmax over the last dimension."""
    op = k.layer.op
    assert isinstance(op, nn.SoftmaxOp)
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    _check_elementwise_alias(k, x_acc)
    c = k.code
    rank = len(x_acc.shape)
    depth = x_acc.shape[-1]
    quant = _quantized(k)
    mode = _mode(k) if quant else ""
    k.pointer("x", x_acc)
    k.pointer("y", y_acc, writable=True)
    lead = [f"t{d}" for d in range(rank - 1)]
    for var, size in zip(lead, x_acc.shape[:-1], strict=True):
        c.loop(var, size)
    xb = lin(zip(lead, x_acc.strides[:-1], strict=True))
    yb = lin(zip(lead, y_acc.strides[:-1], strict=True))
    xe = f"x[{xb} + {lin([('i', x_acc.strides[-1])])}]"
    ye = f"y[{yb} + {lin([('i', y_acc.strides[-1])])}]"
    if not quant:
        k.needs_math = True
        beta = float_literal(op.beta_value())
        c(f"float mx = x[{xb}];")
        c.loop("i", depth, 1)
        c(f"mx = {xe} > mx ? {xe} : mx;")
        c.close()
        c("float sum = 0.0f;")
        c.loop("i", depth)
        c(f"sum += expf(({xe} - mx) * {beta});")
        c.close()
        c.loop("i", depth)
        c(f"{ye} = expf(({xe} - mx) * {beta}) / sum;")
        c.close()
    elif mode == "onnx_rint":
        k.needs_math = True
        p = _params(k)
        fn = k.use("rint_f32")
        sx, zx = float(np.asarray(p["input_scale"]).reshape(-1)[0]), _p_int(p, "input_zp")
        sy, zy = float(np.asarray(p["output_scale"]).reshape(-1)[0]), _p_int(p, "output_zp")
        lo, hi = _store_bounds(p, _qtype(y_acc))
        beta = float_literal(op.beta_value())

        def deq_of(e: str) -> str:
            return f"((float)((int32_t){e} - {zx}) * {float_literal(sx)})"

        deq = deq_of(xe)
        c(f"float mx = {deq_of(f'x[{xb}]')};")
        c.loop("i", depth, 1)
        c(f"const float f = {deq};")
        c("mx = f > mx ? f : mx;")
        c.close()
        c("float sum = 0.0f;")
        c.loop("i", depth)
        c(f"sum += expf(({deq} - mx) * {beta});")
        c.close()
        c.loop("i", depth)
        c(
            f"int64_t v = {k.use('add64')}({fn}((expf(({deq} - mx) * {beta}) / sum) / {float_literal(sy)}), {zy});"
        )
        c(_clamp("v", lo, hi))
        c(f"{ye} = ({y_acc.ctype})v;")
        c.close()
    else:
        _int_softmax(k, xe, ye, xb, depth)
    for _ in lead:
        c.close()


def _int_softmax(k: KernelContext, xe: str, ye: str, xb: str, depth: int) -> None:
    p = _params(k)
    mode = _mode(k)
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    xq, yq = _qtype(x_acc), _qtype(y_acc)
    c = k.code
    # exp(scaled diff) for every possible diff = x - max in [-(qmax - qmin), 0], from qmath itself.
    span = xq.qmax - xq.qmin
    diffs = -np.arange(span + 1, dtype=np.int64)
    rescaled = qm.multiply_by_quantized_multiplier_greater_than_one(
        diffs, int(np.asarray(p["input_multiplier"]).reshape(-1)[0]), int(p["input_left_shift"]), mode
    )
    exp = qm.exp_on_negative_values(rescaled, 5)
    exp = np.where(diffs >= int(p["diff_min"]), exp, 0)
    table = k.table(
        "exp", "int32_t", exp, f"layer {k.layer.index}: exp of x - max(x), index max(x) - x (Q0.31)"
    )
    srdhm = k.use("srdhm")
    rdbpot64 = k.use("rdbpot64")
    wrap = k.use("wrap32")
    recip = k.use("one_over_one_plus_x")
    clz = k.use("clz32")
    c(f"int32_t mx = x[{xb}];")
    c.loop("i", depth, 1)
    c(f"mx = {xe} > mx ? {xe} : mx;")
    c.close()
    c("int64_t total = 0;")
    c.loop("i", depth)
    c(f"total += {rdbpot64}({table}[mx - {xe}], 12);")
    c.close()
    c.block()
    c(f"const int32_t sum = {wrap}(total);")
    c(f"const int headroom = {clz}((uint32_t)sum);")
    c("const int32_t shifted = (int32_t)(((uint32_t)sum << headroom) - 0x80000000U);")
    c(f"const int32_t scale = {recip}(shifted);")
    c(f"const int exponent = 12 - headroom + 31 - {yq.width};")
    c.loop("i", depth)
    c(f"int32_t v = {rdbpot64}({srdhm}(scale, {table}[mx - {xe}]), exponent) + {yq.qmin};")
    c(_clamp("v", yq.qmin, yq.qmax))
    c(f"{ye} = ({y_acc.ctype})v;")
    c.close()
    c.close()


# --------------------------------------------------------------------------
# Quantize / dequantize
# --------------------------------------------------------------------------


def quantize(k: KernelContext) -> None:
    """Float -> integer (TFLM AffineQuantize or ONNX QuantizeLinear), or integer requantization."""
    op = k.layer.op
    assert isinstance(op, nn.QuantizeOp)
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    _check_elementwise_alias(k, x_acc)
    yq = _qtype(y_acc)
    mode = _mode(k)
    p = _params(k)
    c = k.code
    if not nn.is_float(op.input):
        if _lut_unary(k):
            return
        if mode == "onnx_rint":
            _float_sim_requant(k, p)
            return
        fn = k.use(mbqm_name(mode))
        zx, zy = _p_int(p, "input_zp"), _p_int(p, "output_zp")
        mult, shift = _p_int(p, "multiplier"), _p_int(p, "shift")

        def rbody(yi: str, xi: list[str], _: list[str]) -> None:
            c(f"int32_t v = {fn}((int32_t)x0[{xi[0]}] - {zx}, {int_literal(mult)}, {shift}) + {zy};")
            c(_clamp("v", yq.qmin, yq.qmax))
            c(f"y[{yi}] = ({y_acc.ctype})v;")

        _elementwise(k, [x_acc], rbody)
        return
    fn = k.use("rint_f32" if mode == "onnx_rint" else "round_away_f32")
    scales = np.asarray(p["scale"], dtype=np.float32).reshape(-1)
    zps = np.asarray(p["zero_point"], dtype=np.int64).reshape(-1)
    axis = int(p["axis"])
    if axis >= 0:
        st = k.table("scale", "float", scales, f"layer {k.layer.index}: per-axis scales")
        zt = k.table("zp", "int32_t", zps, f"layer {k.layer.index}: per-axis zero points")

        def pbody(yi: str, xi: list[str], kept: list[str]) -> None:
            c(f"int64_t v = {k.use('add64')}({fn}(x0[{xi[0]}] / {st}[{kept[0]}]), {zt}[{kept[0]}]);")
            c(_clamp("v", yq.qmin, yq.qmax))
            c(f"y[{yi}] = ({y_acc.ctype})v;")

        _elementwise(k, [x_acc], pbody, keep=[axis])
        return
    scale, zp = float_literal(float(scales[0])), int(zps[0])

    def qbody(yi: str, xi: list[str], _: list[str]) -> None:
        c(f"int64_t v = {k.use('add64')}({fn}(x0[{xi[0]}] / {scale}), {zp});")
        c(_clamp("v", yq.qmin, yq.qmax))
        c(f"y[{yi}] = ({y_acc.ctype})v;")

    _elementwise(k, [x_acc], qbody)


def _float_sim_requant(k: KernelContext, p: qparams.Params) -> None:
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    lo, hi = _store_bounds(p, _qtype(y_acc))
    sx, zx = float(np.asarray(p["input_scale"]).reshape(-1)[0]), _p_int(p, "input_zp")
    sy, zy = float(np.asarray(p["output_scale"]).reshape(-1)[0]), _p_int(p, "output_zp")
    fn = k.use("rint_f32")
    c = k.code

    def body(yi: str, xi: list[str], _: list[str]) -> None:
        c(f"const float f = (float)((int32_t)x0[{xi[0]}] - {zx}) * {float_literal(sx)};")
        c(f"int64_t v = {k.use('add64')}({fn}(f / {float_literal(sy)}), {zy});")
        c(_clamp("v", lo, hi))
        c(f"y[{yi}] = ({y_acc.ctype})v;")

    _elementwise(k, [x_acc], body)


def dequantize(k: KernelContext) -> None:
    """Quantized -> float32: ``(float)(q - zp) * scale``, per tensor or per axis."""
    x_acc = k.layer.inputs[0]
    _check_elementwise_alias(k, x_acc)
    q = _qtype(x_acc)
    c = k.code
    if q.axis is not None:
        st = k.table(
            "scale", "float", np.asarray(q.scale_values, np.float32), f"layer {k.layer.index}: scales"
        )
        zt = k.table(
            "zp", "int32_t", np.asarray(q.zero_point_values, np.int64), f"layer {k.layer.index}: zero points"
        )

        def pbody(yi: str, xi: list[str], kept: list[str]) -> None:
            c(f"y[{yi}] = (float)((int32_t)x0[{xi[0]}] - {zt}[{kept[0]}]) * {st}[{kept[0]}];")

        _elementwise(k, [x_acc], pbody, keep=[q.axis])
        return
    scale, zp = float_literal(q.scale), q.zero_point

    def body(yi: str, xi: list[str], _: list[str]) -> None:
        c(f"y[{yi}] = (float)((int32_t)x0[{xi[0]}] - {zp}) * {scale};")

    _elementwise(k, [x_acc], body)


# --------------------------------------------------------------------------
# Data movement
# --------------------------------------------------------------------------


def _copy(k: KernelContext, src: Access, dst: Access, shape: Sequence[int], label: str) -> None:
    """Elementwise copy of `shape` elements from `src` to `dst` (same element type)."""
    c = k.code
    strides = [dst.strides, src.strides]
    nest = merge_dims(shape, strides)
    if dst.overlaps(src) and not dst.same_place(src):
        raise _err(k, f"{label}: source and destination overlap partially in arena '{dst.space}'")
    if dst.same_place(src):
        return
    c.block()
    k.pointer("s", src)
    k.pointer("d", dst, writable=True)
    variables = [f"i{d}" for d in range(len(nest.dims))]
    for var, size in zip(variables, nest.dims, strict=True):
        c.loop(var, size)
    di = lin(zip(variables, nest.strides[0], strict=True))
    si = lin(zip(variables, nest.strides[1], strict=True))
    c(f"d[{di}] = s[{si}];")
    for _ in nest.dims:
        c.close()
    c.close()


def reshape(k: KernelContext) -> None:
    """A view when input and result share the place; else a copy in row-major order."""
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    if (
        x_acc.space is not None
        and x_acc.space == y_acc.space
        and x_acc.offset == y_acc.offset
        and x_acc.contiguous
        and y_acc.contiguous
    ):
        return
    if x_acc.contiguous and y_acc.contiguous:
        flat = (x_acc.size,)
        _copy(k, x_acc.with_view(flat, (1,)), y_acc.with_view(flat, (1,)), flat, "reshape")
        return
    _check_no_alias(k, x_acc)
    c = k.code
    k.pointer("x", x_acc)
    k.pointer("y", y_acc, writable=True)
    c.loop("i", y_acc.size)
    c(f"y[{_flat_index(y_acc, 'i')}] = x[{_flat_index(x_acc, 'i')}];")
    c.close()


def transpose(k: KernelContext) -> None:
    """Permute dimensions: output dim i reads input dim perm[i]."""
    op = k.layer.op
    assert isinstance(op, nn.TransposeOp)
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    _check_no_alias(k, x_acc)
    perm = nn.ints(op.perm)
    src = x_acc.with_view(y_acc.shape, tuple(x_acc.strides[p] for p in perm))
    _copy(k, src, y_acc, y_acc.shape, "transpose")


def pad(k: KernelContext) -> None:
    """Fill the result with the padding value, then copy the input into its interior."""
    op = k.layer.op
    assert isinstance(op, nn.PadOp)
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    _check_no_alias(k, x_acc)
    fill = _pad_fill(k, op, x_acc, y_acc)
    if fill is None:
        _copy(k, x_acc, y_acc, x_acc.shape, "pad")
        return
    literal = float_literal(float(fill)) if y_acc.ctype == "float" else int_literal(int(fill))
    c = k.code
    k.pointer("y", y_acc, writable=True)
    nest = merge_dims(y_acc.shape, [y_acc.strides])
    variables = [f"i{d}" for d in range(len(nest.dims))]
    for var, size in zip(variables, nest.dims, strict=True):
        c.loop(var, size)
    c(f"y[{lin(zip(variables, nest.strides[0], strict=True))}] = {literal};")
    for _ in nest.dims:
        c.close()
    inner = sum(b * s for (b, _), s in zip(op.pad_pairs(), y_acc.strides, strict=True)) * y_acc.elem_bytes
    _copy(k, x_acc, y_acc.with_view(x_acc.shape, y_acc.strides, inner), x_acc.shape, "pad")


def _pad_fill(k: KernelContext, op: nn.PadOp, x_acc: Access, y_acc: Access) -> float | int | None:
    """The padding value exactly as the interpreter computes it (None when nothing is padded)."""
    from nnopt.backends.numpy.interpreter import make_kernel

    pairs = op.pad_pairs()
    if not any(b or a for b, a in pairs):
        return None
    one = np.zeros([1] * len(x_acc.shape), dtype=np.float32)
    if isinstance(y_acc.elem, UniformQuantizedType):
        one = one.astype(y_acc.elem.numpy_dtype)
    padded = make_kernel(op)([one])
    inside = int(np.ravel_multi_index(tuple(b for b, _ in pairs), padded.shape))
    flat = padded.reshape(-1)
    return flat[0 if inside != 0 else flat.size - 1].item()


def concat(k: KernelContext) -> None:
    """Copy each input into its slice (nothing to do for inputs already written there), then clamp."""
    op = k.layer.op
    assert isinstance(op, nn.ConcatOp)
    y_acc = k.layer.output
    axis = op.axis_value()
    offset = 0
    for i, x_acc in enumerate(k.layer.inputs):
        extent = x_acc.shape[axis]
        dst = y_acc.with_view(x_acc.shape, y_acc.strides, offset * y_acc.strides[axis] * y_acc.elem_bytes)
        offset += extent
        if dst.same_place(x_acc):
            k.code(f"/* input {i} is already in its slice */")
            continue
        _copy(k, x_acc, dst, x_acc.shape, f"concat input {i}")
    activation = op.activation()
    if activation == "none":
        return
    c = k.code
    elem = y_acc.elem
    nest = merge_dims(y_acc.shape, [y_acc.strides])
    c.block()
    k.pointer("y", y_acc, writable=True)
    variables = [f"i{d}" for d in range(len(nest.dims))]
    for var, size in zip(variables, nest.dims, strict=True):
        c.loop(var, size)
    yi = lin(zip(variables, nest.strides[0], strict=True))
    if isinstance(elem, UniformQuantizedType):
        lo, hi = qparams.activation_range(activation, elem)
        c(f"int32_t v = y[{yi}];")
        c(_clamp("v", lo, hi))
        c(f"y[{yi}] = ({y_acc.ctype})v;")
    else:
        c(f"float v = y[{yi}];")
        clamp = _fclamp("v", activation)
        if clamp:
            c(clamp)
        c(f"y[{yi}] = v;")
    for _ in nest.dims:
        c.close()
    c.close()


def copy(k: KernelContext) -> None:
    """``nn.copy``: the value into its new place (an overlay: weights moved into a fast arena)."""
    x_acc, y_acc = k.layer.inputs[0], k.layer.output
    _copy(k, x_acc, y_acc, y_acc.shape, "copy")


EMITTERS: dict[type[Operation], Emitter] = {
    nn.Conv2DOp: conv2d,
    nn.DepthwiseConv2DOp: depthwise_conv2d,
    nn.FullyConnectedOp: fully_connected,
    nn.MatMulOp: matmul,
    nn.AddOp: binary,
    nn.SubOp: binary,
    nn.MulOp: binary,
    nn.ReluOp: unary,
    nn.Relu6Op: unary,
    nn.ClampOp: unary,
    nn.LogisticOp: unary,
    nn.TanhOp: unary,
    nn.SoftmaxOp: softmax,
    nn.MaxPool2DOp: pool2d,
    nn.AvgPool2DOp: pool2d,
    nn.MeanOp: mean,
    nn.ReshapeOp: reshape,
    nn.TransposeOp: transpose,
    nn.PadOp: pad,
    nn.ConcatOp: concat,
    nn.QuantizeOp: quantize,
    nn.DequantizeOp: dequantize,
    nn.CopyOp: copy,
}
"""The emitter of every op the C backend supports."""

_ = (INT_LIMITS, double_literal)
