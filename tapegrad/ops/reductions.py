"""Reductions: sum, mean, max, min, prod, logsumexp (stable), argmax/argmin."""

from __future__ import annotations

import numpy as np

from ..engine import LINEAR, defprim


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
        if axis is None and not keepdims:
            r = np.reshape(r, (1,))
        return r

    return impl


def _ufunc_reduce(uf):
    """``uf.reduce`` called directly: NumPy's ``np.sum``-style wrappers cost microseconds."""

    def f(x, axis=None, keepdims=False):
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        return uf.reduce(x, axis=axis, keepdims=keepdims)

    return f


def _np_mean(x, axis=None, keepdims=False):
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    s = np.add.reduce(x, axis=axis, keepdims=keepdims)
    n = _count(x.shape, axis)
    if x.dtype.kind != "f":
        return s / n
    return s / x.dtype.type(n) if n else s * np.nan


defprim("sum", _mx(_ufunc_reduce(np.add)), [_sum_vjp], LINEAR)
defprim("mean", _mx(_np_mean), [_mean_vjp], LINEAR)


def _extreme_mask(xp, ans, x, axis, keepdims):
    # ties share the gradient equally
    m = x == _keep(xp, ans, x.shape, axis, keepdims)
    return m / xp.sum(m, axis=axis, keepdims=True)


def _extreme_vjp(xp, g, ans, x, axis=None, keepdims=False):
    return _keep(xp, g, x.shape, axis, keepdims) * _extreme_mask(xp, ans, x, axis, keepdims)


def _extreme_jvp(xp, ts, ans, x, axis=None, keepdims=False):
    return xp.sum(ts[0] * _extreme_mask(xp, ans, x, axis, keepdims), axis=axis, keepdims=keepdims)


defprim("max", _mx(_ufunc_reduce(np.maximum)), [_extreme_vjp], _extreme_jvp)
defprim("min", _mx(_ufunc_reduce(np.minimum)), [_extreme_vjp], _extreme_jvp)


# prod: d/dx_i = prod / x_i (undefined where an input is exactly zero)
def _prod_vjp(xp, g, ans, x, axis=None, keepdims=False):
    return _keep(xp, g * ans, x.shape, axis, keepdims) / x


def _prod_jvp(xp, ts, ans, x, axis=None, keepdims=False):
    return xp.sum(ts[0] / x, axis=axis, keepdims=keepdims) * ans


defprim("prod", _mx(_ufunc_reduce(np.multiply)), [_prod_vjp], _prod_jvp)


def _logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return out


def _lse_vjp(xp, g, ans, x, axis=None, keepdims=False):
    return _keep(xp, g, x.shape, axis, keepdims) * xp.exp(
        x - _keep(xp, ans, x.shape, axis, keepdims)
    )


def _lse_jvp(xp, ts, ans, x, axis=None, keepdims=False):
    w = xp.exp(x - _keep(xp, ans, x.shape, axis, keepdims))
    return xp.sum(ts[0] * w, axis=axis, keepdims=keepdims)


# a primitive of its own for numerical stability (max-shifted)
defprim("logsumexp", _mx(_logsumexp), [_lse_vjp], _lse_jvp)


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


defprim("argmax", _arg(np.argmax))
defprim("argmin", _arg(np.argmin))
