"""Shape and indexing primitives: reshape, transpose, broadcast_to, getitem and its
scatter adjoint, concat, stack, tile, repeat, flip."""

from __future__ import annotations

import math

import numpy as np

from ..engine import LINEAR, defprim


class Variadic:
    """VJP rules of a primitive with any number of inputs: ``rule(i)`` builds input i's."""

    def __init__(self, make):
        self.make = make
        self.cache = {}

    def __getitem__(self, i):
        r = self.cache.get(i)
        if r is None:
            r = self.cache[i] = self.make(i)
        return r

    def __iter__(self):  # pragma: no cover - never iterated
        raise TypeError("variadic rules cannot be listed")


defprim(
    "reshape",
    lambda x, shape: np.reshape(x, shape),
    [lambda xp, g, ans, x, shape: xp.reshape(g, shape=x.shape)],
    LINEAR,
)


def _inv_perm(axes, ndim):
    if axes is None:
        return None
    inv = [0] * ndim
    for i, a in enumerate(axes):
        inv[a % ndim] = i
    return tuple(inv)


defprim(
    "transpose",
    lambda x, axes=None: x.transpose(axes) if type(x) is np.ndarray else np.transpose(x, axes),
    [lambda xp, g, ans, x, axes=None: xp.transpose(g, axes=_inv_perm(axes, len(x.shape)))],
    LINEAR,
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


defprim("broadcast_to", _broadcast_to, [lambda xp, g, ans, x, shape: g], LINEAR)


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


defprim(
    "getitem",
    lambda x, key, unique=False: x[key],
    [lambda xp, g, ans, x, key, unique=False: xp.scatter(g, shape=x.shape, key=key, unique=unique)],
    LINEAR,
)
defprim(
    "scatter",
    _scatter,
    [lambda xp, g, ans, u, shape, key, unique=False: xp.getitem(g, key=key, unique=unique)],
    LINEAR,
)


def _concat_rule(i):
    def rule(xp, g, ans, *xs, axis=0):
        ax = axis % len(ans.shape)
        start = sum(x.shape[ax] for x in xs[:i])
        key = (slice(None),) * ax + (slice(start, start + xs[i].shape[ax]),)
        return xp.getitem(g, key=key)

    return rule


defprim("concat", lambda *xs, axis=0: np.concatenate(xs, axis=axis), Variadic(_concat_rule), LINEAR)


def _stack_rule(i):
    def rule(xp, g, ans, *xs, axis=0):
        ax = axis % len(ans.shape)
        return xp.getitem(g, key=(slice(None),) * ax + (i,))

    return rule


defprim("stack", lambda *xs, axis=0: np.stack(xs, axis=axis), Variadic(_stack_rule), LINEAR)


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


defprim("tile", lambda x, reps: np.tile(x, reps), [_tile_vjp], LINEAR)


def _repeat_vjp(xp, g, ans, x, repeats, axis=None):
    if axis is None:
        return xp.reshape(xp.sum(xp.reshape(g, shape=(-1, repeats)), axis=1), shape=x.shape)
    ax = axis % len(x.shape)
    shp = tuple(x.shape[:ax]) + (x.shape[ax], repeats) + tuple(x.shape[ax + 1 :])
    return xp.sum(xp.reshape(g, shape=shp), axis=ax + 1)


defprim(
    "repeat", lambda x, repeats, axis=None: np.repeat(x, repeats, axis=axis), [_repeat_vjp], LINEAR
)
defprim(
    "flip",
    lambda x, axis: np.flip(x, axis),
    [lambda xp, g, ans, x, axis: xp.flip(g, axis=axis)],
    LINEAR,
)


def _index_update(x, v, key):
    out = np.array(x, copy=True)
    out[key] = v
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
)
