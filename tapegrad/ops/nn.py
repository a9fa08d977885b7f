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
defprim(
    "softmax",
    _softmax,
    [lambda xp, g, ans, x, axis=-1: ans * (g - xp.sum(g * ans, axis=axis, keepdims=True))],
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
    lab = np.asarray(label)
    lab = (np.rint(lab) if lab.dtype.kind == "f" else lab).astype(np.intp)
    return ax, lab.reshape(x.shape[:ax] + x.shape[ax + 1 :])


def _one_hot(label, depth, axis=-1, dtype=np.float32):
    """One-hot along ``axis`` of integer ``label`` (not differentiable)."""
    lab = np.asarray(label)
    lab = (np.rint(lab) if lab.dtype.kind == "f" else lab).astype(np.intp)
    out = np.zeros(lab.shape + (depth,), dtype=dtype)
    np.put_along_axis(out, lab[..., None], 1, axis=-1)
    return np.moveaxis(out, -1, axis) if axis not in (-1, lab.ndim) else out


def _softmax_ce(x, label, axis=-1):
    ax, lab = _rows(x, label, axis)
    s = x - np.maximum.reduce(x, axis=ax, keepdims=True)
    lse = np.log(np.add.reduce(np.exp(s), axis=ax, keepdims=True))
    if x.ndim == 2 and ax == 1:
        picked = s[np.arange(x.shape[0]), lab]
        return lse[:, 0] - picked
    picked = np.take_along_axis(s, np.expand_dims(lab, ax), ax)
    return np.squeeze(lse - picked, ax)


def _ce_residual(xp, x, label, axis):
    """softmax(x) - onehot(label): the derivative of the loss of each row."""
    return xp.softmax(x, axis=axis) - xp.one_hot_along(
        label, depth=x.shape[axis], axis=axis, dtype=x.dtype
    )


def _expand(xp, g, ndim, axis):
    ax = axis % ndim
    return xp.reshape(g, shape=tuple(g.shape[:ax]) + (1,) + tuple(g.shape[ax:]))


defprim("one_hot_along", _one_hot)
# fused cross-entropy: one node instead of log_softmax + pick + negative, and its gradient
# softmax - onehot in one pass (what every training step of a classifier needs)
defprim(
    "softmax_ce",
    _softmax_ce,
    [
        lambda xp, g, ans, x, label, axis=-1: (
            _ce_residual(xp, x, label, axis) * _expand(xp, g, len(x.shape), axis)
        ),
        None,
    ],
    lambda xp, ts, ans, x, label, axis=-1: xp.sum(
        _ce_residual(xp, x, label, axis) * ts[0], axis=axis
    ),
)
