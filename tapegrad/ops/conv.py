"""Convolution and pooling primitives, designed (as Chainer's) so that every order of
derivative comes from rules that are themselves primitives:

* ``unfold`` (im2col: the windows of an image laid out ``(C*prod(kernel), prod(out)*N)``) and
  ``fold`` (col2im, its adjoint: the columns summed back into the image) are linear and each
  other's VJP.
* ``convolution(x, w[, b])`` is bilinear in ``(x, w)``: its data gradient is
  ``deconvolution(g, w)`` and its weight gradient a product with ``unfold(x)``;
  ``deconvolution`` (the adjoint of convolution with respect to the data) the other way
  round. They are primitives rather than ``matmul(w, unfold(x))`` so that a node keeps ``x``
  and ``w`` only: the column buffer is recomputed by the backward pass instead of living from
  the forward pass until then.
* ``pool_winners`` / ``pool_gather`` / ``pool_scatter``: max pooling as a gather at the
  winners of each window (an integer array, computed by a primitive of zero derivative and
  owned by the gather's node) and its adjoint, a scatter.
* ``window_sum`` / ``window_sum_t``: sum pooling (the sum of the strided tap views) and its
  adjoint (adding into the strided views); average and Lp pooling are composites of it.

Spatial axes are the trailing ones; ``unfold``/``fold``/``convolution``/``deconvolution``
take ``(N, C, *spatial)`` arrays, the window and gather primitives any leading axes (so the
stacked Taylor coefficients of Taylor mode pass through them unchanged). The ``mx.nd``
functions with MXNet's signatures are in ``tapegrad/ndarray/nn_ops.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..core.primitive import LINEAR, TAPE, ZERO, Formula, defprim
from ..taylor.jets import coef, is_jet, j_add, j_bilinear, ndim_of, per_coef, primal, want

T = TAPE


# --------------------------------------------------------------------------- geometry


def conv_out_size(size: int, k: int, s: int, d: int, p: int) -> int:
    """Output length of a convolution along one axis (MXNet's and PyTorch's formula)."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _padded(x: np.ndarray, lo: tuple, hi: tuple, value: float = 0.0) -> np.ndarray:
    """``x`` with its trailing ``len(lo)`` axes padded by ``lo``/``hi`` (a copy only when some
    padding is non-zero)."""
    if not any(lo) and not any(hi):
        return x
    nsp = len(lo)
    sp = x.shape[x.ndim - nsp :]
    shape = x.shape[: x.ndim - nsp] + tuple(s + a + b for s, a, b in zip(sp, lo, hi))
    out = np.full(shape, value, dtype=x.dtype) if value else np.zeros(shape, dtype=x.dtype)
    out[(Ellipsis,) + tuple(slice(a, a + s) for a, s in zip(lo, sp))] = x
    return out


def _cropped(buf: np.ndarray, lo: tuple, sp: tuple) -> np.ndarray:
    if not any(lo) and buf.shape[buf.ndim - len(sp) :] == tuple(sp):
        return buf
    # a copy: the padded buffer is not kept alive by the result
    return np.ascontiguousarray(buf[(Ellipsis,) + tuple(slice(a, a + s) for a, s in zip(lo, sp))])


def _tap_key(tap: tuple, dilate: tuple, stride: tuple, out: tuple) -> tuple:
    """Index of the strided view of one kernel tap over the trailing (padded) axes."""
    return (Ellipsis,) + tuple(
        slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, dilate, stride, out)
    )


def _check_out(name: str, out: tuple, sp: tuple, kernel: tuple) -> None:
    if any(o < 1 for o in out):
        raise ValueError(
            f"{name}: kernel {kernel} does not fit the (padded) spatial shape {sp}: the output "
            f"shape would be {out}"
        )


# ------------------------------------------------------------------ unfold (im2col) / fold
#
# The columns are laid out (C*prod(kernel), prod(out)*N): row c*K + k holds tap k of channel
# c, and the batch index is the fastest-varying one in a row. With the batch innermost, every
# strided copy of im2col and every strided addition of col2im moves runs of out_w * N (stride
# 1) or N contiguous elements instead of runs of out_w, which measured 2-6x faster on LeNet's
# layers; the price is one transpose of the input and of the output.


def _batch_last(x: np.ndarray) -> np.ndarray:
    """(N, C, *S) -> (C, *S, N), contiguous. When a sample's row is a multiple of 1 KiB, the
    transposing copy would read at a stride that maps every element it gathers to the same
    few cache sets (a (64, 16, 8, 8) float32 gradient: 197 us); the rows are first copied into
    rows 64 bytes longer, then transposed (28 us)."""
    n = x.shape[0]
    m = x.size // n if n else 0
    rows = x.reshape(n, m) if x.flags.c_contiguous else None
    if rows is None or n < 8 or (m * x.itemsize) % 1024:
        return np.ascontiguousarray(x.transpose((*range(1, x.ndim), 0)))
    pad = 64 // x.itemsize
    buf = np.empty((n, m + pad), dtype=x.dtype)
    buf[:, :m] = rows
    return np.ascontiguousarray(buf[:, :m].T).reshape(x.shape[1:] + (n,))


def _batch_last_rule(ctx, node, args, ans):
    nd = ndim_of(ans)
    axes = (*range(1, nd), 0)
    ax = axes if ctx.flat else (0,) + tuple(a + 1 for a in axes)
    return per_coef(ctx, args[0], ans, lambda c, k: T.transpose(c, axes=ax))


# the transpose (N, C, *S) -> (C, *S, N) as one primitive: its NumPy copy avoids the stride
# that aliases in the caches (see _batch_last)
defprim(
    "batch_last",
    _batch_last,
    [lambda xp, g, ans, x: xp.transpose(g, axes=(len(x.shape) - 1, *range(len(x.shape) - 1)))],
    LINEAR,
    taylor=_batch_last_rule,
    explain=Formula(lambda n, a, o: f"{a[0]} with the batch axis last", "1"),
)


def _nlast(x: np.ndarray, lo: tuple, hi: tuple) -> np.ndarray:
    """(N, C, *S) -> (C, *padded S, N), contiguous, zero padded: one copy."""
    nsp = x.ndim - 2
    perm = (1,) + tuple(range(2, 2 + nsp)) + (0,)
    if not any(lo) and not any(hi):
        return _batch_last(x)
    sp = x.shape[2:]
    shape = (x.shape[1],) + tuple(s + a + b for s, a, b in zip(sp, lo, hi)) + (x.shape[0],)
    out = np.zeros(shape, dtype=x.dtype)
    out[(slice(None),) + tuple(slice(a, a + s) for a, s in zip(lo, sp))] = x.transpose(perm)
    return out


def _unfold(x: np.ndarray, kernel: tuple, stride: tuple, dilate: tuple, pad: tuple) -> np.ndarray:
    """Windows of ``x`` (N, C, *S) as columns ``(C*prod(kernel), prod(out)*N)``: row
    ``c*K + k`` holds tap ``k`` of channel ``c`` at every output position of every sample
    (the sample index fastest)."""
    nsp = len(kernel)
    n, c = x.shape[0], x.shape[1]
    xt = _nlast(x, pad, pad)
    sp = xt.shape[1:-1]
    out = tuple(conv_out_size(sp[i], kernel[i], stride[i], dilate[i], 0) for i in range(nsp))
    _check_out("unfold", out, sp, kernel)
    st = xt.strides
    view = as_strided(
        xt,
        (c,) + tuple(kernel) + out + (n,),
        (st[0],)
        + tuple(st[1 + i] * dilate[i] for i in range(nsp))
        + tuple(st[1 + i] * stride[i] for i in range(nsp))
        + (st[-1],),
        writeable=False,
    )
    return np.ascontiguousarray(view).reshape(c * math.prod(kernel), math.prod(out) * n)


def _fold(
    cols: np.ndarray, shape: tuple, kernel: tuple, stride: tuple, dilate: tuple, pad: tuple
) -> np.ndarray:
    """The adjoint of :func:`_unfold`: columns summed back into an image of ``shape``, one
    strided slice per kernel tap (no ``np.add.at``)."""
    nsp = len(kernel)
    n, c = shape[0], shape[1]
    psp = tuple(s + 2 * p for s, p in zip(shape[2:], pad))
    out = tuple(conv_out_size(psp[i], kernel[i], stride[i], dilate[i], 0) for i in range(nsp))
    _check_out("fold", out, psp, kernel)
    if cols.shape != (c * math.prod(kernel), math.prod(out) * n):
        raise ValueError(
            f"fold: columns of shape {cols.shape} do not match the image shape {tuple(shape)} "
            f"(expected {(c * math.prod(kernel), math.prod(out) * n)})"
        )
    cv = cols.reshape((c,) + tuple(kernel) + out + (n,))
    buf = np.zeros((c,) + psp + (n,), dtype=cols.dtype)
    for tap in np.ndindex(*kernel):
        key = _tap_key(tap, dilate, stride, out)[1:]
        buf[(slice(None),) + key + (slice(None),)] += cv[(slice(None),) + tap]
    crop = buf[(slice(None),) + tuple(slice(p, p + s) for p, s in zip(pad, shape[2:]))]
    return np.ascontiguousarray(crop.transpose((nsp + 1, 0) + tuple(range(1, nsp + 1))))


def _geom(node_kwargs: dict) -> dict:
    return {k: node_kwargs[k] for k in ("kernel", "stride", "dilate", "pad")}


def _unfold_rule(ctx, node, args, ans):
    kw = node.kwargs
    if ctx.flat:
        return per_coef(ctx, args[0], ans, lambda c, k: T.unfold(c, **kw))

    def f(c, k):  # (D, N, C, *S) -> unfold of (D*N, C, *S): (C*K, L*D*N) -> (D, C*K, L*N)
        d, n = c.shape[0], c.shape[1]
        r = T.unfold(T.reshape(c, shape=(-1,) + tuple(c.shape[2:])), **kw)
        r = T.reshape(r, shape=(r.shape[0], -1, d, n))
        return T.transpose(r, axes=(2, 0, 1, 3))

    return per_coef(ctx, args[0], ans, f)


def _fold_rule(ctx, node, args, ans):
    kw = node.kwargs
    if ctx.flat:
        return per_coef(ctx, args[0], ans, lambda c, k: T.fold(c, **kw))
    shape = tuple(kw["shape"])
    geom = _geom(kw)

    def f(c, k):  # (D, C*K, L*N) -> (C*K, L*D*N) -> fold to (D*N, C, *S) -> (D, N, C, *S)
        d = c.shape[0]
        r = T.reshape(c, shape=(d, c.shape[1], -1, shape[0]))
        r = T.reshape(T.transpose(r, axes=(1, 2, 0, 3)), shape=(c.shape[1], -1))
        r = T.fold(r, shape=(d * shape[0],) + shape[1:], **geom)
        return T.reshape(r, shape=(d,) + shape)

    return per_coef(ctx, args[0], ans, f)


defprim(
    "unfold",
    _unfold,
    [
        lambda xp, g, ans, x, kernel, stride, dilate, pad: xp.fold(
            g, shape=tuple(x.shape), kernel=kernel, stride=stride, dilate=dilate, pad=pad
        )
    ],
    LINEAR,
    taylor=_unfold_rule,
    explain=Formula(lambda n, a, o: f"im2col({a[0]})", "1"),
)
defprim(
    "fold",
    _fold,
    [
        lambda xp, g, ans, cols, shape, kernel, stride, dilate, pad: xp.unfold(
            g, kernel=kernel, stride=stride, dilate=dilate, pad=pad
        )
    ],
    LINEAR,
    taylor=_fold_rule,
    explain=Formula(lambda n, a, o: f"col2im({a[0]})", "1"),
)


# ------------------------------------------------------------ convolution / deconvolution


def _channels_first(x: np.ndarray) -> np.ndarray:
    """(N, C, *S) -> (C, prod(S)*N), the columns' layout (one copy)."""
    return _nlast(x, (0,) * (x.ndim - 2), (0,) * (x.ndim - 2)).reshape(x.shape[1], -1)


def _from_channels_first(y: np.ndarray, n: int, sp: tuple, b: np.ndarray | None) -> np.ndarray:
    """(F, prod(S)*N) -> (N, F, *S), the bias added in the same pass."""
    f = y.shape[0]
    nsp = len(sp)
    view = y.reshape((f,) + tuple(sp) + (n,)).transpose((nsp + 1, 0) + tuple(range(1, nsp + 1)))
    out = np.empty(view.shape, dtype=np.result_type(y, b) if b is not None else y.dtype)
    if b is None:
        np.copyto(out, view)
    else:
        np.add(view, b.reshape((f,) + (1,) * nsp), out=out)
    return out


def _conv(x, w, b=None, *, stride, dilate, pad, groups=1):
    """Cross-correlation of ``x`` (N, C, *S) with ``w`` (F, C/groups, *kernel), plus ``b``
    (F,): one GEMM (one per group) on the columns of ``x``."""
    kernel = tuple(w.shape[2:])
    cols = _unfold(x, kernel, stride, dilate, pad)
    n, f = x.shape[0], w.shape[0]
    sp = tuple(
        conv_out_size(x.shape[2 + i], kernel[i], stride[i], dilate[i], pad[i])
        for i in range(len(kernel))
    )
    if groups == 1:
        y = w.reshape(f, -1) @ cols
    else:
        y = np.matmul(w.reshape(groups, f // groups, -1), cols.reshape(groups, -1, cols.shape[1]))
        y = y.reshape(f, -1)
    del cols
    return _from_channels_first(y, n, sp, b)


def _deconv(x, w, b=None, *, stride, dilate, pad, adj, groups=1):
    """Transposed convolution (the adjoint of :func:`_conv` with respect to its data) of ``x``
    (N, C, *S) with ``w`` (C, F/groups, *kernel), plus ``b`` (F,)."""
    kernel = tuple(w.shape[2:])
    n, c = x.shape[0], x.shape[1]
    f = w.shape[1] * groups
    sp = tuple(
        stride[i] * (x.shape[2 + i] - 1) + dilate[i] * (kernel[i] - 1) + 1 - 2 * pad[i] + adj[i]
        for i in range(len(kernel))
    )
    x2 = _channels_first(x)
    if groups == 1:
        cols = w.reshape(c, -1).T @ x2
    else:
        wg = w.reshape(groups, c // groups, -1).transpose(0, 2, 1)
        cols = np.matmul(wg, x2.reshape(groups, c // groups, -1)).reshape(-1, x2.shape[1])
    del x2
    y = _fold(cols, (n, f) + sp, kernel, stride, dilate, pad)
    if b is not None:
        bb = b.reshape((f,) + (1,) * len(sp))
        if np.result_type(y, bb) == y.dtype:
            y += bb
        else:
            y = y + bb
    return y


def _cf(xp, a):
    """(N, C, *S) -> (C, prod(S)*N), the columns' layout, in the namespace ``xp``."""
    return xp.reshape(xp.batch_last(a), shape=(a.shape[1], -1))


_SPLIT_LONG = 16384  # see _wgrad


def _wgrad(xp, a, cols, groups):
    """``a (F, L) @ cols (G*R, L)ᵀ`` per group: the weight gradient, (G, F/G, R). Computed
    as ``(cols @ aᵀ)ᵀ``: with the long axis L inside, that order measured 2x faster."""
    f, L = a.shape
    if groups == 1 and L >= _SPLIT_LONG and L % 8 == 0:
        # a long reduction axis (LeNet's first layer: 36,864) split in 8 chunks, one product
        # each, then summed: OpenBLAS runs such skinny products 3x faster in pieces
        c3 = xp.transpose(xp.reshape(cols, shape=(-1, 8, L // 8)), axes=(1, 0, 2))
        a3 = xp.transpose(xp.reshape(a, shape=(f, 8, L // 8)), axes=(1, 2, 0))
        return xp.transpose(xp.sum(xp.matmul(c3, a3), axis=0))
    if groups == 1:
        return xp.transpose(xp.matmul(cols, xp.transpose(a)))
    a3 = xp.reshape(a, shape=(groups, f // groups, L))
    c3 = xp.reshape(cols, shape=(groups, -1, L))
    return xp.transpose(xp.matmul(c3, xp.transpose(a3, axes=(0, 2, 1))), axes=(0, 2, 1))


def _adj_of(x_shape, k_shape, stride, dilate, pad):
    """The ``adj`` that makes a deconvolution of the convolution's output give ``x_shape``."""
    return tuple(
        (x_shape[2 + i] + 2 * pad[i] - dilate[i] * (k_shape[i] - 1) - 1) % stride[i]
        for i in range(len(stride))
    )


def _bias_axes(g):
    return (0,) + tuple(range(2, len(g.shape)))


def _conv_dx(xp, g, ans, x, w, b=None, *, stride, dilate, pad, groups=1):
    adj = _adj_of(x.shape, w.shape[2:], stride, dilate, pad)
    return xp.deconvolution(g, w, stride=stride, dilate=dilate, pad=pad, adj=adj, groups=groups)


def _conv_dw(xp, g, ans, x, w, b=None, *, stride, dilate, pad, groups=1):
    cols = xp.unfold(x, kernel=tuple(w.shape[2:]), stride=stride, dilate=dilate, pad=pad)
    return xp.reshape(_wgrad(xp, _cf(xp, g), cols, groups), shape=tuple(w.shape))


def _deconv_dx(xp, g, ans, x, w, b=None, *, stride, dilate, pad, adj, groups=1):
    return xp.convolution(g, w, stride=stride, dilate=dilate, pad=pad, groups=groups)


def _deconv_dw(xp, g, ans, x, w, b=None, *, stride, dilate, pad, adj, groups=1):
    cols = xp.unfold(g, kernel=tuple(w.shape[2:]), stride=stride, dilate=dilate, pad=pad)
    return xp.reshape(_wgrad(xp, _cf(xp, x), cols, groups), shape=tuple(w.shape))


def _db(xp, g, ans, x, w, b=None, **kw):
    return xp.sum(g, axis=_bias_axes(g))


def _bilinear_jvp(name):
    """``op(tx, w) + op(x, tw) + tb`` (the bias broadcast along the channel axis)."""

    def jvp(xp, ts, ans, x, w, b=None, **kw):
        op = getattr(xp, name)
        out = None
        if ts[0] is not None:
            out = op(ts[0], w, **kw)
        if ts[1] is not None:
            t = op(x, ts[1], **kw)
            out = t if out is None else out + t
        if len(ts) > 2 and ts[2] is not None:
            tb = xp.reshape(ts[2], shape=(-1,) + (1,) * (len(ans.shape) - 2))
            out = xp.broadcast_to(tb, shape=tuple(ans.shape)) if out is None else out + tb
        return out

    return jvp


def _bilinear_rule(name):
    """Jets of ``op(x, w) + b`` by Leibniz's rule. A coefficient stacked over the directions
    has one more axis than its primal: a stacked ``x`` is folded into the batch axis (one
    call); a stacked ``w`` (a weight that depends on the input) is taken direction by
    direction."""

    def rule(ctx, node, args, ans):
        kw = node.kwargs
        x, w = args[0], args[1]
        op = getattr(T, name)
        nd = len(primal(x).shape)

        def apply(a, ww):
            sa, sw = len(a.shape) > nd, len(ww.shape) > nd
            if not sw:
                if not sa:
                    return op(a, ww, **kw)
                r = op(T.reshape(a, shape=(-1,) + tuple(a.shape[2:])), ww, **kw)
                return T.reshape(r, shape=(a.shape[0], -1) + tuple(r.shape[1:]))
            lead = max(a.shape[0] if sa else 1, ww.shape[0])
            rows = []
            for d in range(lead):
                ad = T.getitem(a, key=(d if a.shape[0] > 1 else 0,)) if sa else a
                wd = T.getitem(ww, key=(d if ww.shape[0] > 1 else 0,))
                rows.append(op(ad, wd, **kw))
            return T.stack(*rows, axis=0)

        xj = x if is_jet(x) else [x] + [None] * ctx.K
        wj = w if is_jet(w) else [w] + [None] * ctx.K
        y = j_bilinear(ctx, ans, xj, wj, op=apply, op_stacked_b=None if ctx.flat else apply)
        if len(args) > 2 and is_jet(args[2]):
            b = args[2]
            nsp = nd - 2
            bj = [None] + [
                None
                if coef(b, k) is None
                else T.reshape(coef(b, k), shape=want(ctx, k, (-1,) + (1,) * nsp))
                for k in range(1, ctx.K + 1)
            ]
            y = j_add(ctx, ans, y, bj)
        return y

    return rule


def _conv_formula(sym, dx, dw):
    """``x ⋆ w (+ b)``; the local derivatives: the data cotangent is the other operation
    (transposed convolution for a convolution) with ``w``, the weight's a product with the
    windows of the other input."""
    return Formula(
        lambda n, a, o: f"{a[0]} {sym} {a[1]}" + (f" + {a[2]}" if len(a) > 2 else ""),
        dx,
        dw,
        "1",
    )


# bilinear in (x, w) with the bias added: the node keeps x and w, never the columns
defprim(
    "convolution",
    _conv,
    [_conv_dx, _conv_dw, _db],
    _bilinear_jvp("convolution"),
    taylor=_bilinear_rule("convolution"),
    explain=_conv_formula("⋆", "(·) ⋆ᵀ {1}", "{0} ⋆ (·)"),
)
defprim(
    "deconvolution",
    _deconv,
    [_deconv_dx, _deconv_dw, _db],
    _bilinear_jvp("deconvolution"),
    taylor=_bilinear_rule("deconvolution"),
    explain=_conv_formula("⋆ᵀ", "(·) ⋆ {1}", "(·) ⋆ {0}"),
)


# ------------------------------------------------------------------ max pooling: gather
#
# Max pooling is ``pool_gather(x, pool_winners(x))``: the winners (flat indices into x, -1
# for a window without one) are an integer array computed by a primitive of zero derivative,
# and the gather is linear in x with the indices as a non-differentiable input. Both are
# recorded, so a compiled function (``mx.jit``) recomputes the winners on every call instead
# of keeping the traced ones; the node of the gather owns its index array.


def _gather(x, idx, shape, fill=0.0, unique=False):
    """``x``'s trailing ``shape`` flattened and gathered at ``idx``; ``fill`` where ``idx``
    is -1 (a window without a winner: MXNet's lowest value for the forward pass, 0 for
    derivatives)."""
    lead = x.shape[: x.ndim - len(shape)]
    out = x.reshape(lead + (-1,)).take(idx, axis=len(lead))
    if idx.size and idx.min() < 0:
        out[(Ellipsis,) + (idx < 0,)] = fill
    return out


def _scatter(g, idx, shape, unique=False):
    """The adjoint of :func:`_gather` (with ``fill`` 0): zeros of ``shape`` with ``g`` added
    at ``idx``. ``unique``: no position is gathered twice (the windows do not overlap), so
    plain assignment does; otherwise one ``bincount``. Entries at -1 are dropped."""
    lead = g.shape[: g.ndim - idx.ndim]
    size = math.prod(shape)
    rows = math.prod(lead)
    g2 = g.reshape(rows, -1)
    dead = idx.size and idx.min() < 0
    if unique and not dead:
        out = np.zeros((rows, size), dtype=g.dtype)
        out[:, idx.reshape(-1)] = g2
    else:
        flat = idx.reshape(1, -1)
        if dead:
            g2 = g2 * (flat >= 0)
            flat = np.maximum(flat, 0)
        ids = flat + (np.arange(rows) * size)[:, None]
        out = np.bincount(ids.reshape(-1), weights=g2.reshape(-1), minlength=rows * size)
        out = out.astype(g.dtype, copy=False).reshape(rows, size)
    return out.reshape(lead + tuple(shape))


def _gather_rule(ctx, node, args, ans):
    idx = primal(args[1])
    kw = dict(node.kwargs, fill=0.0)
    return per_coef(ctx, args[0], ans, lambda c, k: T.pool_gather(c, idx, **kw))


def _scatter_rule(ctx, node, args, ans):
    idx = primal(args[1])
    return per_coef(ctx, args[0], ans, lambda c, k: T.pool_scatter(c, idx, **node.kwargs))


# affine in x through ``fill`` (a constant where no element wins), linear otherwise: the JVP
# and the jets gather the tangents with fill 0
defprim(
    "pool_gather",
    _gather,
    [
        lambda xp, g, ans, x, idx, shape, fill=0.0, unique=False: xp.pool_scatter(
            g, idx, shape=shape, unique=unique
        ),
        None,
    ],
    lambda xp, ts, ans, x, idx, shape, fill=0.0, unique=False: (
        None if ts[0] is None else xp.pool_gather(ts[0], idx, shape=shape, unique=unique)
    ),
    taylor=_gather_rule,
    explain=Formula(lambda n, a, o: f"{a[0]}[argmax of each window]", "1"),
)
defprim(
    "pool_scatter",
    _scatter,
    [
        lambda xp, g, ans, u, idx, shape, unique=False: xp.pool_gather(
            g, idx, shape=shape, unique=unique
        ),
        None,
    ],
    LINEAR,
    taylor=_scatter_rule,
    explain=Formula(None, "1"),
)


def _winners(x, kernel, stride, lo, hi):
    """Flat indices into ``x`` (N, C, *S) of the maximum of every pooling window, as MXNet
    picks it: the first element, in scan order, that is strictly greater than every earlier
    one and than the lowest finite value (NaN and -inf never win; padding never wins); -1 for
    a window without a winner (its output is the lowest finite value, its gradient zero).

    The maximum is an elementwise ``fmax`` over the strided views of the kernel taps (a
    reduction over window axes measured 30x slower); the winner is the first tap equal to it,
    found with boolean arithmetic (``argmax`` and masked copies measured 10-20x slower). A
    window covering the whole map (global pooling) is a reduction over one long axis."""
    nsp = len(kernel)
    sp = x.shape[2:]
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    lowest = np.finfo(x.dtype).min if x.dtype.kind == "f" else fill
    if tuple(kernel) == tuple(sp) and not any(lo) and not any(hi):
        flat = x.reshape(x.shape[0] * x.shape[1], -1)
        best = np.fmax.reduce(flat, axis=1)
        win = (flat == best[:, None]).argmax(axis=1)
        idx = win + np.arange(flat.shape[0]) * flat.shape[1]
        idx[~(best > lowest)] = -1
        return idx.reshape(x.shape[:2] + (1,) * nsp)
    xp_ = _padded(x, lo, hi, fill)
    out = tuple((xp_.shape[2 + i] - kernel[i]) // stride[i] + 1 for i in range(nsp))
    _check_out("Pooling", out, xp_.shape[2:], kernel)
    ones = (1,) * nsp
    taps = list(np.ndindex(*kernel))
    views = [xp_[_tap_key(tap, ones, stride, out)] for tap in taps]
    best = np.array(views[0])
    for v in views[1:]:
        np.fmax(best, v, out=best)  # fmax: NaN never wins
    win = np.zeros(best.shape, dtype=np.uint8 if len(taps) < 256 else np.intp)
    if len(taps) > 1:
        free = views[0] != best  # no earlier tap holds the maximum yet
        for t in range(1, len(taps)):
            eq = views[t] == best
            eq &= free
            win += eq.view(np.uint8) * win.dtype.type(t) if win.dtype == np.uint8 else eq * t
            free &= ~eq
    base = _window_origins(x.shape, stride, lo, out)
    offs = np.array([sum(t[i] * math.prod(sp[i + 1 :]) for i in range(nsp)) for t in taps])
    idx = base + offs.astype(np.intp).take(win)
    idx[~(best > lowest)] = -1
    return idx


# the winners of each max-pooling window: an integer array, derivative zero
defprim(
    "pool_winners",
    _winners,
    ZERO,
    explain=Formula(lambda n, a, o: f"argmax of each window of {a[0]}"),
)


_ORIGINS: dict = {}


def _window_origins(shape: tuple, stride: tuple, lo: tuple, out: tuple) -> np.ndarray:
    """Flat index into an array of ``shape`` of each window's first element (in unpadded
    coordinates), for every (sample, channel, output position). Cached read-only."""
    key = (shape, stride, lo, out)
    base = _ORIGINS.get(key)
    if base is None:
        nsp = len(out)
        sp = shape[2:]
        base = np.zeros(out, dtype=np.intp)
        for i in range(nsp):
            step = math.prod(sp[i + 1 :])
            shp = [1] * nsp
            shp[i] = out[i]
            base = base + ((np.arange(out[i]) * stride[i] - lo[i]) * step).reshape(shp)
        plane = (np.arange(shape[0] * shape[1], dtype=np.intp) * math.prod(sp)).reshape(
            shape[:2] + (1,) * nsp
        )
        base = base + plane
        base.flags.writeable = False
        if len(_ORIGINS) >= 16:
            _ORIGINS.clear()
        _ORIGINS[key] = base
    return base


# ------------------------------------------------------- sum pooling: the tap views summed


def _same_kind_rule(name):
    """Jets of a linear primitive that acts on trailing axes: applied to each coefficient,
    the direction axis passing through as a leading one."""

    def rule(ctx, node, args, ans):
        prim = getattr(T, name)
        return per_coef(ctx, args[0], ans, lambda c, k: prim(c, **node.kwargs))

    return rule


def _window_sum(x, kernel, stride, lo, hi):
    """Sum over each window of the trailing ``len(kernel)`` axes (zero padding ``lo``/``hi``):
    the strided views of the kernel taps added up."""
    xp_ = _padded(x, lo, hi)
    nsp = len(kernel)
    sp = xp_.shape[xp_.ndim - nsp :]
    out = tuple((sp[i] - kernel[i]) // stride[i] + 1 for i in range(nsp))
    _check_out("window_sum", out, sp, kernel)
    ones = (1,) * nsp
    acc = None
    for tap in np.ndindex(*kernel):
        v = xp_[_tap_key(tap, ones, stride, out)]
        if acc is None:
            acc = np.array(v)
        else:
            acc += v
    return acc


def _window_sum_t(g, shape, kernel, stride, lo, hi):
    """The adjoint of :func:`_window_sum`: ``g`` added into every tap's strided view of a
    zero image with trailing shape ``shape``."""
    nsp = len(kernel)
    lead = g.shape[: g.ndim - nsp]
    out = g.shape[g.ndim - nsp :]
    psp = tuple(s + a + b for s, a, b in zip(shape, lo, hi))
    buf = np.zeros(lead + psp, dtype=g.dtype)
    ones = (1,) * nsp
    for tap in np.ndindex(*kernel):
        buf[_tap_key(tap, ones, stride, out)] += g
    return _cropped(buf, lo, tuple(shape))


defprim(
    "window_sum",
    _window_sum,
    [
        lambda xp, g, ans, x, kernel, stride, lo, hi: xp.window_sum_t(
            g,
            shape=tuple(x.shape[len(x.shape) - len(kernel) :]),
            kernel=kernel,
            stride=stride,
            lo=lo,
            hi=hi,
        )
    ],
    LINEAR,
    taylor=_same_kind_rule("window_sum"),
    explain=Formula(lambda n, a, o: f"sumpool({a[0]})", "1"),
)
defprim(
    "window_sum_t",
    _window_sum_t,
    [
        lambda xp, g, ans, u, shape, kernel, stride, lo, hi: xp.window_sum(
            g, kernel=kernel, stride=stride, lo=lo, hi=hi
        )
    ],
    LINEAR,
    taylor=_same_kind_rule("window_sum_t"),
    explain=Formula(None, "1"),
)
