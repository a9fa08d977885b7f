"""Neural-network primitives kept whole for numerical stability: softmax, log_softmax."""

from __future__ import annotations

import numpy as np

from ..engine import ELEMENTWISE, defprim


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


defprim(
    "softmax",
    _softmax,
    [lambda xp, g, ans, x, axis=-1: _softmax_vjp(xp, g, ans, axis)],
    ELEMENTWISE,
)
defprim(
    "log_softmax",
    _log_softmax,
    [lambda xp, g, ans, x, axis=-1: g - xp.exp(ans) * xp.sum(g, axis=axis, keepdims=True)],
    lambda xp, ts, ans, x, axis=-1: ts[0] - xp.sum(xp.exp(ans) * ts[0], axis=axis, keepdims=True),
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


# the residual's Jacobian is softmax's (the one-hot is constant): symmetric, so the JVP is the
# VJP formula; one fused NumPy call on the first-order path of every classifier step
defprim(
    "softmax_ce_residual",
    _ce_residual,
    [
        lambda xp, g, ans, x, label, axis=-1: _softmax_vjp(xp, g, xp.softmax(x, axis=axis), axis),
        None,
    ],
    ELEMENTWISE,
)
defprim(
    "softmax_ce",
    _softmax_ce,
    [
        lambda xp, g, ans, x, label, axis=-1: (
            xp.softmax_ce_residual(x, label, axis=axis) * _expand(xp, g, len(x.shape), axis)
        ),
        None,
    ],
    lambda xp, ts, ans, x, label, axis=-1: xp.sum(
        xp.softmax_ce_residual(x, label, axis=axis) * ts[0], axis=axis
    ),
)
