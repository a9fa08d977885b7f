"""Reductions: sum, mean, max, min, prod, logsumexp (stable), argmax/argmin.

float16 inputs are accumulated in float32 and the result cast back (a float16 sum of 20,000
values of 10 overflows); ties of ``max``/``min`` share the gradient equally (as PyTorch's
``amax``); the gradient of ``prod`` at a zero entry is the product of the other entries.
"""

from __future__ import annotations

import numpy as np

from ..core.primitive import LINEAR, TAPE, ZERO, Formula, defprim
from ..taylor.jets import (
    apply_rule,
    j_add,
    j_bilinear,
    j_unary,
    ndim_of,
    per_coef,
    primal,
    shift_axis,
    want,
    wrap,
)
from ..taylor.propagation import jvp_first

T = TAPE


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim for a in axis) if ndim else ()


def _keep(xp, g, shape, axis, keepdims):
    """Reshape a reduced array so it broadcasts against the unreduced ``shape``."""
    if keepdims:
        return g
    ax = _axes(axis, len(shape))
    kept = tuple(1 if i in ax else s for i, s in enumerate(shape))
    return xp.reshape(g, shape=kept)


def _sum_vjp(xp, g, ans, x, axis=None, keepdims=False):
    return xp.broadcast_to(_keep(xp, g, x.shape, axis, keepdims), shape=x.shape)


def _count(shape, axis):
    n = 1
    for a in _axes(axis, len(shape)):
        n *= shape[a]
    return n


def _mean_vjp(xp, g, ans, x, axis=None, keepdims=False):
    # divide the reduced cotangent, not the broadcast one (fewer elements)
    return _sum_vjp(xp, g / float(_count(x.shape, axis)), ans, x, axis, keepdims)


def _mx(fn):
    """MXNet reduces everything to shape (1,), not to a 0-d array."""

    def impl(x, axis=None, keepdims=False):
        r = fn(x, axis=axis, keepdims=keepdims)
        if axis is None and not keepdims:  # (the method: np.reshape's wrapper costs 0.6 us)
            r = r.reshape((1,)) if isinstance(r, (np.ndarray, np.generic)) else np.reshape(r, (1,))
        return r

    return impl


_F16 = np.dtype(np.float16)


def _sum(x, axis=None, keepdims=False):
    # ``np.add.reduce`` directly: NumPy's ``np.sum`` wrapper costs microseconds
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if x.dtype == _F16:
        return np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=np.float32).astype(_F16)
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


def _mean(x, axis=None, keepdims=False):
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    n = _count(x.shape, axis)
    if x.dtype == _F16:
        s = np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=np.float32)
        return (s / np.float32(n) if n else s * np.nan).astype(_F16)
    s = np.add.reduce(x, axis=axis, keepdims=keepdims)
    if x.dtype.kind != "f":
        return s / n
    return s / x.dtype.type(n) if n else s * np.nan


def _sum_rule(ctx, node, args, ans):
    prim = node.prim
    ax = shift_axis(ctx, node.kwargs.get("axis"), ndim_of(primal(args[0])))
    keep = node.kwargs.get("keepdims", False)
    return per_coef(ctx, args[0], ans, lambda c, k: prim.call(c, axis=ax, keepdims=keep))


defprim(
    "sum", _mx(_sum), [_sum_vjp], LINEAR, taylor=_sum_rule, explain=Formula(None, "1")
)  # fmt: skip
defprim(
    "mean",
    _mx(_mean),
    [_mean_vjp],
    LINEAR,
    taylor=_sum_rule,
    explain=Formula(
        None, lambda n, a, o: f"1/{max(np.size(n.data[0]) // max(np.size(n.ans), 1), 1)}"
    ),
)


def _ufunc_reduce(uf):
    def f(x, axis=None, keepdims=False):
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        return uf.reduce(x, axis=axis, keepdims=keepdims)

    return f


def _extreme_mask(xp, ans, x, axis, keepdims):
    # ties share the gradient equally
    m = x == _keep(xp, ans, x.shape, axis, keepdims)
    return m / xp.sum(m, axis=axis, keepdims=True)


def _extreme_vjp(xp, g, ans, x, axis=None, keepdims=False):
    return _keep(xp, g, x.shape, axis, keepdims) * _extreme_mask(xp, ans, x, axis, keepdims)


def _extreme_jvp(xp, ts, ans, x, axis=None, keepdims=False):
    return xp.sum(ts[0] * _extreme_mask(xp, ans, x, axis, keepdims), axis=axis, keepdims=keepdims)


@jvp_first
def _extreme_rule(ctx, node, args, ans):
    x0 = primal(args[0])._data
    axis, keep = node.kwargs.get("axis"), node.kwargs.get("keepdims", False)
    red = np.max if node.prim.name == "max" else np.min
    m = x0 == red(x0, axis=axis, keepdims=True)
    mask = wrap((m / m.sum(axis=axis, keepdims=True)).astype(x0.dtype))
    ax = shift_axis(ctx, axis, x0.ndim)
    return per_coef(
        ctx, args[0], ans, lambda c, k: T.sum(T.multiply(c, mask), axis=ax, keepdims=keep)
    )


for _name, _uf in (("max", np.maximum), ("min", np.minimum)):
    defprim(
        _name,
        _mx(_ufunc_reduce(_uf)),
        [_extreme_vjp],
        _extreme_jvp,
        taylor=_extreme_rule,
        explain=Formula(None, "[{0} = {out}]/#ties"),
    )


def _others(xp, ans, x, axis, keepdims):
    """The product of the other entries of each entry's reduction: ``ans / x`` where x is
    non-zero; at a zero, the product of the non-zero entries when it is the only zero, else
    0. Written with differentiable operations, so every order is finite at zeros too."""
    zero = x == 0
    safe = xp.where(zero, 1.0, x)
    nz = _keep(xp, xp.prod(safe, axis=axis, keepdims=keepdims), x.shape, axis, keepdims)
    nzero = xp.sum(zero, axis=axis, keepdims=True)
    full = _keep(xp, ans, x.shape, axis, keepdims)
    return xp.where(zero, xp.where(nzero == 1, nz, 0.0), full / safe)


def _prod_vjp(xp, g, ans, x, axis=None, keepdims=False):
    return _keep(xp, g, x.shape, axis, keepdims) * _others(xp, ans, x, axis, keepdims)


def _prod_jvp(xp, ts, ans, x, axis=None, keepdims=False):
    return xp.sum(ts[0] * _others(xp, ans, x, axis, keepdims), axis=axis, keepdims=keepdims)


def _prod_rule(ctx, node, args, ans):
    # the product along the reduced axes as a chain of Leibniz products of the slices
    x = args[0]
    x0 = primal(x)
    nd = x0.ndim
    axes = _axes(node.kwargs.get("axis"), nd)
    perm = tuple(i for i in range(nd) if i not in axes) + axes
    rest = tuple(x0.shape[i] for i in perm[: nd - len(axes)])
    xt = apply_rule(ctx, "transpose", [x], T.transpose(x0, axes=perm), axes=perm)
    flat = rest + (-1,)
    xf = apply_rule(ctx, "reshape", [xt], T.reshape(xt[0], shape=flat), shape=flat)
    n = xf[0].shape[-1]
    acc = None
    for i in range(n):
        key = (Ellipsis, i)
        xi = apply_rule(ctx, "getitem", [xf], T.getitem(xf[0], key=key), key=key)
        acc = xi if acc is None else j_bilinear(ctx, T.multiply(acc[0], xi[0]), acc, xi)
    if acc is None:  # an empty reduction: the product is 1, a constant
        return [ans] + [None] * ctx.K
    return apply_rule(ctx, "reshape", [acc], ans, shape=tuple(ans.shape))


defprim(
    "prod",
    _mx(_ufunc_reduce(np.multiply)),
    [_prod_vjp],
    _prod_jvp,
    taylor=_prod_rule,
    explain=Formula(None, "{out}/{0}"),
)


def _logsumexp(x, axis=None, keepdims=False):
    dt = x.dtype
    if dt == _F16:
        x = x.astype(np.float32)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return out.astype(dt, copy=False)


def _lse_vjp(xp, g, ans, x, axis=None, keepdims=False):
    # the softmax weights exp(x - lse); float16 computes them from the float32 ``x - lse``
    return _keep(xp, g, x.shape, axis, keepdims) * xp.exp(
        x - _keep(xp, ans, x.shape, axis, keepdims)
    )


def _lse_jvp(xp, ts, ans, x, axis=None, keepdims=False):
    w = xp.exp(x - _keep(xp, ans, x.shape, axis, keepdims))
    return xp.sum(ts[0] * w, axis=axis, keepdims=keepdims)


@jvp_first
def _lse_rule(ctx, node, args, ans):
    x = args[0]
    axis = node.kwargs.get("axis")
    x0 = primal(x)
    # y = log(sum(exp(x - c))) + c with the constant shift c = max(x)
    c = wrap(np.max(x0._data, axis=axis, keepdims=True))
    e = j_unary(ctx, "exp", j_add(ctx, None, x, c, -1.0))
    ax = shift_axis(ctx, axis, x0.ndim)
    s0 = T.sum(e[0], axis=axis, keepdims=True)
    s = [s0] + [None if ek is None else T.sum(ek, axis=ax, keepdims=True) for ek in e[1:]]
    ls = j_unary(ctx, "log", s)
    out = [ans]
    for k in range(1, ctx.K + 1):
        ck = ls[k]
        if ck is None:
            out.append(None)
            continue
        w = want(ctx, k, ans.shape)
        out.append(ck if tuple(ck.shape) == w else T.reshape(ck, shape=w))
    return out


# a primitive of its own for numerical stability (max-shifted)
defprim(
    "logsumexp",
    _mx(_logsumexp),
    [_lse_vjp],
    _lse_jvp,
    taylor=_lse_rule,
    explain=Formula(None, "exp({0} - {out})"),
)


def _arg(fn):
    # MXNet returns indices as float32
    def impl(x, axis=None, keepdims=False):
        r = fn(x, axis=axis)
        if keepdims and axis is not None:
            r = np.expand_dims(r, axis)
        if axis is None:
            r = np.reshape(r, (1,))
        return np.asarray(r, dtype=np.float32)

    return impl


# indices: derivative identically zero
defprim("argmax", _arg(np.argmax), [ZERO], ZERO, explain=Formula(None, "0"))
defprim("argmin", _arg(np.argmin), [ZERO], ZERO, explain=Formula(None, "0"))
