"""Neural-network primitives kept whole for numerical stability: softmax, log_softmax and the
fused softmax cross-entropy. float16 inputs are computed in float32 and cast back (a float16
sum of 70,000 exponentials overflows)."""

from __future__ import annotations

import numpy as np

from ..core.primitive import JVP_IS_VJP, TAPE, Formula, defprim
from ..taylor.derivs import Derivs
from ..taylor.jets import apply_rule, j_add, j_compose, per_coef, primal, shift_key
from ..taylor.propagation import jvp_first

T = TAPE
_F16 = np.dtype(np.float16)


def _wide(fn):
    """Run ``fn`` in float32 for float16 input, casting the result back."""

    def impl(x, *args, **kwargs):
        if getattr(x, "dtype", None) == _F16:
            return fn(x.astype(np.float32), *args, **kwargs).astype(_F16)
        return fn(x, *args, **kwargs)

    impl.__doc__ = fn.__doc__
    return impl


# ufunc methods directly: on small batches NumPy's np.max/np.sum wrappers dominate
def _softmax(x, axis=-1):
    e = np.exp(x - np.maximum.reduce(x, axis=axis, keepdims=True))
    e /= np.add.reduce(e, axis=axis, keepdims=True)
    return e


def _log_softmax(x, axis=-1):
    s = x - np.maximum.reduce(x, axis=axis, keepdims=True)
    s -= np.log(np.add.reduce(np.exp(s), axis=axis, keepdims=True))
    return s


# softmax's Jacobian diag(s) - s s^T is symmetric, so its JVP is the VJP formula
def _softmax_vjp(xp, g, s, axis):
    return s * (g - xp.sum(g * s, axis=axis, keepdims=True))


@jvp_first
def _log_softmax_rule(ctx, node, args, ans):
    x = args[0]
    axis = node.kwargs.get("axis", -1)
    lse = T.logsumexp(primal(x), axis=axis, keepdims=True)
    lj = apply_rule(ctx, "logsumexp", [x], lse, axis=axis, keepdims=True)
    return j_add(ctx, ans, x, lj, -1.0)


@jvp_first
def _softmax_rule(ctx, node, args, ans):
    x = args[0]
    axis = node.kwargs.get("axis", -1)
    ls = apply_rule(ctx, "log_softmax", [x], T.log_softmax(primal(x), axis=axis), axis=axis)
    return j_compose(ctx, ans, ls, Derivs(lambda m: ans))


defprim(
    "softmax",
    _wide(_softmax),
    [lambda xp, g, ans, x, axis=-1: _softmax_vjp(xp, g, ans, axis)],
    JVP_IS_VJP,
    taylor=_softmax_rule,
    explain=Formula(None, "{out}·(δ - {out}ᵀ)"),
)
defprim(
    "log_softmax",
    _wide(_log_softmax),
    [lambda xp, g, ans, x, axis=-1: g - xp.exp(ans) * xp.sum(g, axis=axis, keepdims=True)],
    lambda xp, ts, ans, x, axis=-1: ts[0] - xp.sum(xp.exp(ans) * ts[0], axis=axis, keepdims=True),
    taylor=_log_softmax_rule,
    explain=Formula(None, "δ - softmax({0})"),
)


def _rows(x, label, axis):
    """(axis, integer labels of x's shape without ``axis``)."""
    ax = axis % x.ndim
    lab = label if type(label) is np.ndarray else np.asarray(label)
    if lab.dtype.kind == "f":
        lab = np.rint(lab)
    lab = lab.astype(np.intp, copy=False)
    shape = x.shape[:ax] + x.shape[ax + 1 :]
    return ax, lab if lab.shape == shape else lab.reshape(shape)


def _softmax_ce(x, label, axis=-1):
    ax, lab = _rows(x, label, axis)
    s = x - np.maximum.reduce(x, axis=ax, keepdims=True)
    lse = np.log(np.add.reduce(np.exp(s), axis=ax, keepdims=True))
    if x.ndim == 2 and ax == 1:
        picked = s[np.arange(x.shape[0]), lab]
        return lse[:, 0] - picked
    picked = np.take_along_axis(s, np.expand_dims(lab, ax), ax)
    return np.squeeze(lse - picked, ax)


def _ce_residual(x, label, axis=-1):
    """softmax(x) - onehot(label) along ``axis``: the derivative of each row's loss."""
    ax, lab = _rows(x, label, axis)
    e = _softmax(x, ax)
    if x.ndim == 2 and ax == 1:
        e[np.arange(x.shape[0]), lab] -= 1.0
    else:
        idx = np.expand_dims(lab, ax)
        np.put_along_axis(e, idx, np.take_along_axis(e, idx, ax) - 1.0, ax)
    return e


def _expand(xp, g, ndim, axis):
    ax = axis % ndim
    return xp.reshape(g, shape=tuple(g.shape[:ax]) + (1,) + tuple(g.shape[ax:]))


def _residual_rule(ctx, node, args, ans):
    # the one-hot is a constant: the jet of softmax(x) with the residual as its value
    axis = node.kwargs.get("axis", -1)
    x = args[0]
    s = apply_rule(ctx, "softmax", [x], T.softmax(primal(x), axis=axis), axis=axis)
    return [ans] + s[1:]


# the residual's Jacobian is softmax's (the one-hot is constant): symmetric, so the JVP is the
# VJP formula; one fused NumPy call on the first-order path of every classifier step
defprim(
    "softmax_ce_residual",
    _wide(_ce_residual),
    [
        lambda xp, g, ans, x, label, axis=-1: _softmax_vjp(xp, g, xp.softmax(x, axis=axis), axis),
        None,
    ],
    JVP_IS_VJP,
    taylor=_residual_rule,
    explain=Formula(None, "softmax'({0})"),
)


@jvp_first
def _softmax_ce_rule(ctx, node, args, ans):
    # logsumexp(x) - x[label] = -(log_softmax(x)[label]): the log_softmax jet, picked
    x, label = args[0], primal(args[1])
    axis = node.kwargs.get("axis", -1)
    x0 = primal(x)
    ax, lab = _rows(x0._data, label._data if hasattr(label, "_data") else label, axis)
    grids = np.indices(lab.shape, sparse=True) if lab.ndim else []
    key = shift_key(ctx, tuple(grids[:ax]) + (lab,) + tuple(grids[ax:]))
    ls = apply_rule(ctx, "log_softmax", [x], T.log_softmax(x0, axis=axis), axis=axis)
    return per_coef(ctx, ls, ans, lambda c, k: T.negative(T.getitem(c, key=key)))


defprim(
    "softmax_ce",
    _wide(_softmax_ce),
    [
        lambda xp, g, ans, x, label, axis=-1: (
            xp.softmax_ce_residual(x, label, axis=axis) * _expand(xp, g, len(x.shape), axis)
        ),
        None,
    ],
    lambda xp, ts, ans, x, label, axis=-1: xp.sum(
        xp.softmax_ce_residual(x, label, axis=axis) * ts[0], axis=axis
    ),
    taylor=_softmax_ce_rule,
    explain=Formula(None, "softmax({0}) - onehot"),
)
