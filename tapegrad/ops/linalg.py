"""Linear algebra: matmul (batched, broadcasting) and the fused fully-connected layer."""

from __future__ import annotations

import numpy as np

from ..engine import defprim


def _mT(xp, a):
    n = len(a.shape)
    if n == 2:
        return xp.transpose(a)
    return xp.transpose(a, axes=tuple(range(n - 2)) + (n - 1, n - 2))


def _matmul_jvp(xp, ts, ans, a, b):
    ta, tb = ts
    out = None
    if ta is not None:
        out = xp.matmul(ta, b)
    if tb is not None:
        c = xp.matmul(a, tb)
        out = c if out is None else out + c
    return out


# both operands have ndim >= 2 (nd.dot and the @ operator reshape vectors first)
defprim(
    "matmul",
    np.matmul,
    [
        lambda xp, g, ans, a, b: xp.matmul(g, _mT(xp, b)),
        lambda xp, g, ans, a, b: xp.matmul(_mT(xp, a), g),
    ],
    _matmul_jvp,
)


def _fc(x, w, b=None):
    out = x @ w.T
    if b is not None:
        out += b
    return out


def _fc_jvp(xp, ts, ans, x, w, b=None):
    tx, tw, tb = (list(ts) + [None])[:3]
    out = None
    if tx is not None:
        out = xp.matmul(tx, xp.transpose(w))
    if tw is not None:
        c = xp.matmul(x, xp.transpose(tw))
        out = c if out is None else out + c
    if tb is not None:
        out = tb if out is None else out + tb
        if out.shape != ans.shape:
            out = xp.broadcast_to(out, shape=ans.shape)
    return out


# x (N, in) @ w.T (in, out) + b: one node instead of three on the hot path of every Dense
defprim(
    "fully_connected",
    _fc,
    [
        lambda xp, g, ans, x, w, b=None: xp.matmul(g, w),
        lambda xp, g, ans, x, w, b=None: xp.matmul(xp.transpose(g), x),
        lambda xp, g, ans, x, w, b=None: g,
    ],
    _fc_jvp,
)
