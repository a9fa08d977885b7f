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
defprim("softmax", _softmax,
        [lambda xp, g, ans, x, axis=-1: ans * (g - xp.sum(g * ans, axis=axis, keepdims=True))],
        ELEMENTWISE)
defprim("log_softmax", _log_softmax,
        [lambda xp, g, ans, x, axis=-1: g - xp.exp(ans) * xp.sum(g, axis=axis, keepdims=True)],
        lambda xp, ts, ans, x, axis=-1: ts[0] - xp.sum(xp.exp(ans) * ts[0], axis=axis,
                                                       keepdims=True))
