"""Linear algebra: matmul (batched, broadcasting) and the fused fully-connected layer. Both
are bilinear: their JVPs and jets come from the BILINEAR marker (Leibniz's rule)."""

from __future__ import annotations

import numpy as np

from ..core.primitive import BILINEAR, TAPE, Formula, defprim
from ..taylor.jets import is_jet, j_add, j_bilinear, primal, transposed

T = TAPE


def _mT(xp, a):
    n = len(a.shape)
    if n == 2:
        return xp.transpose(a)
    return xp.transpose(a, axes=tuple(range(n - 2)) + (n - 1, n - 2))


# both operands have ndim >= 2 (nd.dot and the @ operator reshape vectors first)
defprim(
    "matmul",
    np.matmul,
    [
        lambda xp, g, ans, a, b: xp.matmul(g, _mT(xp, b)),
        lambda xp, g, ans, a, b: xp.matmul(_mT(xp, a), g),
    ],
    BILINEAR,
    explain=Formula("{0} @ {1}", "(·) @ {1}ᵀ", "{0}ᵀ @ (·)"),
)


def _fc(x, w, b=None):
    out = x @ w.T
    if b is not None:
        out += b
    return out


def _fc_rule(ctx, node, args, ans):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    if ctx.flat and not is_jet(w):
        # the same 2-D product as the primal, without the bias
        y = [ans] + [None if c is None else T.fully_connected(c, w) for c in x[1:]]
        return j_add(ctx, ans, y, b) if b is not None and is_jet(b) else y
    if not is_jet(w):
        # (D, N, in) -> (D*N, in): one 2-D product for all directions
        y = [ans]
        for c in x[1:]:
            if c is None:
                y.append(None)
                continue
            lead = c.shape[0]
            r = T.fully_connected(T.reshape(c, shape=(-1, c.shape[-1])), w)
            y.append(T.reshape(r, shape=(lead,) + tuple(ans.shape)))
        return j_add(ctx, ans, y, b) if b is not None and is_jet(b) else y
    y = j_bilinear(
        ctx,
        ans,
        x,
        [primal(w)] + [None] * ctx.K if not is_jet(w) else w,
        op=lambda a, ww: T.matmul(a, transposed(ctx, ww)),
        op_stacked_b=(lambda a, ww: T.matmul(a, T.transpose(ww)))
        if ctx.flat
        else (lambda a, ww: T.matmul(a, T.transpose(ww, axes=(0, 2, 1)))),
    )
    if b is not None and is_jet(b):
        y = j_add(ctx, ans, y, b)
    return y


# x (N, in) @ w.T (in, out) + b: one node instead of three on the hot path of every Dense;
# bilinear in (x, w) with b added (the BILINEAR marker's form)
defprim(
    "fully_connected",
    _fc,
    [
        lambda xp, g, ans, x, w, b=None: xp.matmul(g, w),
        lambda xp, g, ans, x, w, b=None: xp.matmul(xp.transpose(g), x),
        lambda xp, g, ans, x, w, b=None: g,
    ],
    BILINEAR,
    taylor=_fc_rule,
    explain=Formula(
        lambda n, a, o: f"{a[0]} @ {a[1]}ᵀ" + (f" + {a[2]}" if len(a) > 2 else ""),
        "(·) @ {1}",
        "(·)ᵀ @ {0}",
        "1",
    ),
)
