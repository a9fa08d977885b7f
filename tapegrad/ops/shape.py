"""Shape and indexing primitives: reshape, transpose, broadcast_to, getitem and its scatter
adjoint, concat, stack, tile, repeat, flip, index_update. All are linear."""

from __future__ import annotations

import math

import numpy as np

from ..core.primitive import LINEAR, TAPE, Formula, Variadic, defprim
from ..taylor.jets import (
    coef,
    full,
    lift,
    ndim_of,
    per_coef,
    primal,
    shift_axis,
    shift_key,
    stack_like,
    want,
    zeros,
)

T = TAPE
_ID = Formula("{0}", "1")


def _reshape_rule(ctx, node, args, ans):
    return per_coef(ctx, args[0], ans, lambda c, k: T.reshape(c, shape=want(ctx, k, ans.shape)))


defprim(
    "reshape",
    # (the method: np.reshape is a Python-level wrapper, about 1 us a call more)
    lambda x, shape: x.reshape(shape) if type(x) is np.ndarray else np.reshape(x, shape),
    [lambda xp, g, ans, x, shape: xp.reshape(g, shape=x.shape)],
    LINEAR,
    taylor=_reshape_rule,
    explain=_ID,
)


def _inv_perm(axes, ndim):
    if axes is None:
        return None
    inv = [0] * ndim
    for i, a in enumerate(axes):
        inv[a % ndim] = i
    return tuple(inv)


def _transpose_rule(ctx, node, args, ans):
    nd = ndim_of(ans)
    axes = node.kwargs.get("axes")
    axes = tuple(range(nd))[::-1] if axes is None else tuple(a % nd for a in axes)
    ax = axes if ctx.flat else (0,) + tuple(a + 1 for a in axes)
    return per_coef(ctx, args[0], ans, lambda c, k: T.transpose(c, axes=ax))


defprim(
    "transpose",
    lambda x, axes=None: x.transpose(axes) if type(x) is np.ndarray else np.transpose(x, axes),
    [lambda xp, g, ans, x, axes=None: xp.transpose(g, axes=_inv_perm(axes, len(x.shape)))],
    LINEAR,
    taylor=_transpose_rule,
    explain=_ID,
)


# the engine sums the cotangent back down to the input's shape
def _broadcast_to(x, shape):
    if np.shape(x) == shape:
        return x
    if math.prod(shape) <= 65536:
        # small results: filling a new array is several times faster than np.broadcast_to
        out = np.empty(shape, dtype=np.result_type(x))
        out[...] = x
        return out
    return np.broadcast_to(x, shape)


def _broadcast_rule(ctx, node, args, ans):
    nd = ndim_of(ans)
    return per_coef(
        ctx,
        args[0],
        ans,
        lambda c, k: T.broadcast_to(lift(ctx, c, nd), shape=want(ctx, k, ans.shape)),
    )


defprim(
    "broadcast_to",
    _broadcast_to,
    [lambda xp, g, ans, x, shape: g],
    LINEAR,
    taylor=_broadcast_rule,
    explain=_ID,
)


def _is_basic(key):
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice)) or k is None or k is Ellipsis for k in items)


def _scatter(g, shape, key, unique=False):
    """Zeros of ``shape`` with ``g`` added at ``key`` (the adjoint of ``x[key]``).
    ``unique``: the key selects no position twice, so plain assignment suffices."""
    out = np.zeros(shape, dtype=np.result_type(g))
    if unique or _is_basic(key):
        out[key] = g
    else:
        np.add.at(out, key, g)
    return out


def _getitem_rule(ctx, node, args, ans):
    key = shift_key(ctx, node.kwargs["key"])
    return per_coef(ctx, args[0], ans, lambda c, k: T.getitem(c, key=key))


def _scatter_rule(ctx, node, args, ans):
    key = shift_key(ctx, node.kwargs["key"])
    shape = tuple(node.kwargs["shape"])
    return per_coef(
        ctx, args[0], ans, lambda c, k: T.scatter(c, shape=want(ctx, k, shape), key=key)
    )


# ``key`` holds the index arrays by value: the NDArray facade hands over copies
defprim(
    "getitem",
    lambda x, key, unique=False: x[key],
    [lambda xp, g, ans, x, key, unique=False: xp.scatter(g, shape=x.shape, key=key, unique=unique)],
    LINEAR,
    taylor=_getitem_rule,
    explain=Formula(lambda n, a, o: f"{a[0]}[{n.kwargs['key']!r}]", "1"),
)
defprim(
    "scatter",
    _scatter,
    [lambda xp, g, ans, u, shape, key, unique=False: xp.getitem(g, key=key, unique=unique)],
    LINEAR,
    taylor=_scatter_rule,
    explain=Formula(None, "1"),
)


# ------------------------------------------------- gathers at an index array that is an input
#
# ``take_at`` (np.take: Embedding, take) and ``pick_at`` (one position per row: pick) take
# their integer positions as a second, non-differentiable input rather than inside a static
# key, so a compiled function (tapegrad.trace) reads them at every call. ``axis`` counts from
# the end, so the stacked coefficients of Taylor mode (one more leading axis) pass unchanged.


def _take_at(x, idx, axis=-1):
    return np.take(x, idx, axis=axis)


def _take_at_t(g, idx, axis=-1, n=0):
    """The adjoint of ``take_at``: zeros with ``n`` entries on ``axis``, ``g`` added at idx."""
    ax = g.ndim - idx.ndim + 1 + axis
    out = np.zeros(g.shape[:ax] + (n,) + g.shape[ax + idx.ndim :], dtype=np.result_type(g))
    np.add.at(out, (slice(None),) * ax + (idx,), g)
    return out


def _along(idx, ndim, ax):
    """``idx`` with leading 1s up to ``ndim - 1`` axes, and a 1 inserted at ``ax``."""
    return np.expand_dims(idx.reshape((1,) * (ndim - 1 - idx.ndim) + idx.shape), ax)


def _pick_at(x, idx, axis=-1):
    ax = x.ndim + axis
    return np.take_along_axis(x, _along(idx, x.ndim, ax), axis=ax).squeeze(ax)


def _pick_at_t(g, idx, axis=-1, n=0):
    """The adjoint of ``pick_at``: one position per row, so assignment suffices."""
    ndim = g.ndim + 1
    ax = ndim + axis
    out = np.zeros(g.shape[:ax] + (n,) + g.shape[ax:], dtype=np.result_type(g))
    i = np.broadcast_to(_along(idx, ndim, ax), g.shape[:ax] + (1,) + g.shape[ax:])
    np.put_along_axis(out, i, np.expand_dims(g, ax), axis=ax)
    return out


def _gather_prims(name, impl, adj_name, adj_impl, formula):
    def by_idx(fn_name):
        return lambda ctx, node, args, ans: per_coef(
            ctx, args[0], ans, lambda c, k: getattr(T, fn_name)(c, primal(args[1]), **node.kwargs)
        )

    defprim(
        name,
        impl,
        [
            lambda xp, g, ans, x, idx, axis=-1: getattr(xp, adj_name)(
                g, idx, axis=axis, n=x.shape[axis]
            ),
            None,
        ],
        lambda xp, ts, ans, x, idx, axis=-1: (
            None if ts[0] is None else getattr(xp, name)(ts[0], idx, axis=axis)
        ),
        taylor=by_idx(name),
        explain=Formula(formula, "1"),
    )
    defprim(
        adj_name,
        adj_impl,
        [lambda xp, g, ans, u, idx, axis=-1, n=0: getattr(xp, name)(g, idx, axis=axis), None],
        lambda xp, ts, ans, u, idx, axis=-1, n=0: (
            None if ts[0] is None else getattr(xp, adj_name)(ts[0], idx, axis=axis, n=n)
        ),
        taylor=lambda ctx, node, args, ans: per_coef(
            ctx, args[0], ans, lambda c, k: getattr(T, adj_name)(c, primal(args[1]), **node.kwargs)
        ),
        explain=Formula(None, "1"),
    )


_gather_prims("take_at", _take_at, "take_at_t", _take_at_t, lambda n, a, o: f"{a[0]}[{a[1]}]")
_gather_prims("pick_at", _pick_at, "pick_at_t", _pick_at_t, lambda n, a, o: f"pick({a[0]}, {a[1]})")


def _concat_vjp(i):
    def rule(xp, g, ans, *xs, axis=0):
        ax = axis % len(ans.shape)
        start = sum(x.shape[ax] for x in xs[:i])
        key = (slice(None),) * ax + (slice(start, start + xs[i].shape[ax]),)
        return xp.getitem(g, key=key)

    return rule


defprim(
    "concat",
    lambda *xs, axis=0: np.concatenate(xs, axis=axis),
    Variadic(_concat_vjp),
    LINEAR,
    taylor=lambda ctx, node, args, ans: stack_like(ctx, node, args, ans, "concat"),
    explain=Formula(None, "1"),
)


def _stack_vjp(i):
    def rule(xp, g, ans, *xs, axis=0):
        ax = axis % len(ans.shape)
        return xp.getitem(g, key=(slice(None),) * ax + (i,))

    return rule


defprim(
    "stack",
    lambda *xs, axis=0: np.stack(xs, axis=axis),
    Variadic(_stack_vjp),
    LINEAR,
    taylor=lambda ctx, node, args, ans: stack_like(ctx, node, args, ans, "stack"),
    explain=Formula(None, "1"),
)


def _tile_vjp(xp, g, ans, x, reps):
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    n = max(len(reps), len(x.shape))
    xs = (1,) * (n - len(x.shape)) + tuple(x.shape)
    rs = (1,) * (n - len(reps)) + reps
    inter = []
    for r, s in zip(rs, xs):
        inter += [r, s]
    g = xp.sum(xp.reshape(g, shape=tuple(inter)), axis=tuple(range(0, 2 * n, 2)))
    return xp.reshape(g, shape=x.shape)


def _tile_rule(ctx, node, args, ans):
    reps = node.kwargs["reps"]
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    nd = max(len(reps), ndim_of(primal(args[0])))
    reps = (1,) * (nd - len(reps)) + reps
    if ctx.flat:
        return per_coef(ctx, args[0], ans, lambda c, k: T.tile(c, reps=reps))
    return per_coef(ctx, args[0], ans, lambda c, k: T.tile(lift(ctx, c, nd), reps=(1,) + reps))


defprim(
    "tile",
    lambda x, reps: np.tile(x, reps),
    [_tile_vjp],
    LINEAR,
    taylor=_tile_rule,
    explain=Formula(None, "1"),
)


def _repeat_vjp(xp, g, ans, x, repeats, axis=None):
    if axis is None:
        return xp.reshape(xp.sum(xp.reshape(g, shape=(-1, repeats)), axis=1), shape=x.shape)
    ax = axis % len(x.shape)
    shp = tuple(x.shape[:ax]) + (x.shape[ax], repeats) + tuple(x.shape[ax + 1 :])
    return xp.sum(xp.reshape(g, shape=shp), axis=ax + 1)


def _repeat_rule(ctx, node, args, ans):
    rep, axis = node.kwargs["repeats"], node.kwargs.get("axis")
    nd = ndim_of(primal(args[0]))
    if ctx.flat:
        return per_coef(ctx, args[0], ans, lambda c, k: T.repeat(c, repeats=rep, axis=axis))
    if axis is None:
        return per_coef(
            ctx,
            args[0],
            ans,
            lambda c, k: T.repeat(T.reshape(c, shape=(c.shape[0], -1)), repeats=rep, axis=1),
        )
    return per_coef(ctx, args[0], ans, lambda c, k: T.repeat(c, repeats=rep, axis=axis % nd + 1))


defprim(
    "repeat",
    lambda x, repeats, axis=None: np.repeat(x, repeats, axis=axis),
    [_repeat_vjp],
    LINEAR,
    taylor=_repeat_rule,
    explain=Formula(None, "1"),
)


def _flip_rule(ctx, node, args, ans):
    ax = shift_axis(ctx, node.kwargs["axis"], ndim_of(primal(args[0])))
    return per_coef(ctx, args[0], ans, lambda c, k: T.flip(c, axis=ax))


defprim(
    "flip",
    lambda x, axis: np.flip(x, axis),
    [lambda xp, g, ans, x, axis: xp.flip(g, axis=axis)],
    LINEAR,
    taylor=_flip_rule,
    explain=Formula(None, "1"),
)


def _index_update(x, v, key):
    out = np.array(x, copy=True)
    out[key] = v
    return out


def _index_update_rule(ctx, node, args, ans):
    x, v = args
    key = node.kwargs["key"]
    region = np.empty(ans.shape, dtype=np.bool_)[key].shape
    out = [ans]
    for k in range(1, ctx.K + 1):
        xk, vk = coef(x, k), coef(v, k)
        if xk is None and vk is None:
            out.append(None)
            continue
        if xk is None:
            xk = zeros(ctx, k, ans)
        xk = full(ctx, xk, k, ans.shape)
        vk = 0.0 if vk is None else lift(ctx, vk, len(region))
        out.append(T.index_update(xk, vk, key=shift_key(ctx, key)))
    return out


# x with x[key] replaced by v: what ``x[key] = v`` records when v is on the graph
defprim(
    "index_update",
    lambda x, v, key: _index_update(x, v, key),
    [
        lambda xp, g, ans, x, v, key: xp.index_update(g, 0.0, key=key),
        lambda xp, g, ans, x, v, key: xp.getitem(g, key=key),
    ],
    LINEAR,
    taylor=_index_update_rule,
    explain=Formula(None, "[outside key]", "1"),
)
