"""Splitting a sequence along its time axis in one node: ``unstack`` and its adjoints.

A recurrent network reads its input one step at a time. Taking ``x[t]`` for each of T steps
with ``getitem`` costs a full-size gradient per step in the backward pass (each slice's
adjoint is a zero array of x's shape with one slice filled in, and the engine adds T of
them): O(T^2) memory traffic for one sequence. Here the split is a single node whose value
is a :class:`Steps`, the T slices (views, no copy); each step is read from it by
``unstack_get``. The cotangent of a ``Steps`` is a ``Steps`` too, holding only the steps that
received a gradient (a missing step is zero), so the per-step cotangents are gathered without
arithmetic and written into one array once, by ``unstack``'s adjoint ``unstack_join``.

The four primitives are linear and form two adjoint pairs (``unstack`` / ``unstack_join``,
``unstack_get`` / ``unstack_put``), so every derivative order is available, as for any
primitive. Their values are only ever read by each other: ``Steps`` is an implementation
detail of the recurrent layers, never returned to users.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.primitive import LINEAR, TAPE, Formula, defprim
from ..taylor.jets import full, ndim_of, primal, shift_axis

T = TAPE

__all__ = ["Steps"]


class Steps:
    """``n`` arrays of one shape and dtype, by step index: the value of ``unstack`` (every
    step present) or a cotangent of one (a missing step is zero). Adding two merges them
    (steps present in both are added), without touching the arrays of the others."""

    __slots__ = ("items", "n", "item_shape", "dtype")
    # NumPy defers to our reflected operators (an ndarray + Steps is Steps.__radd__)
    __array_ufunc__ = None

    def __init__(self, items: dict, n: int, item_shape: tuple, dtype: Any) -> None:
        self.items = items
        self.n = n
        self.item_shape = item_shape
        self.dtype = np.dtype(dtype)

    @property
    def shape(self) -> tuple:
        return (self.n,)

    @property
    def ndim(self) -> int:
        return 1

    @property
    def size(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (
            f"Steps({len(self.items)} of {self.n} steps of shape {self.item_shape}, {self.dtype})"
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The steps stacked along a new first axis (what ``explain`` shows)."""
        out = _unstack_join(self)
        return out if dtype is None else out.astype(dtype)

    def __add__(self, other: Any) -> Steps:
        if type(other) is not Steps:
            # a zero from forward mode (the tangent of an input without one)
            if not np.any(other):
                return self
            raise TypeError(f"cannot add {type(other).__name__} to {self!r}")
        if other.n != self.n:
            raise ValueError(f"cannot add {other!r} to {self!r}: different numbers of steps")
        big, small = (self, other) if len(self.items) >= len(other.items) else (other, self)
        items = dict(big.items)
        for k, v in small.items.items():
            w = items.get(k)
            items[k] = v if w is None else w + v
        return Steps(items, self.n, self.item_shape, np.result_type(self.dtype, other.dtype))

    __radd__ = __add__


def _item_key(axis: int, t: int) -> tuple:
    return (slice(None),) * axis + (t,)


def _unstack(x: Any, axis: int = 0) -> Steps:
    """The slices of ``x`` along ``axis`` (views)."""
    x = np.asarray(x)
    ax = axis % x.ndim
    moved = x if ax == 0 else np.moveaxis(x, ax, 0)
    return Steps(dict(enumerate(moved)), moved.shape[0], moved.shape[1:], x.dtype)


def _unstack_get(s: Steps, index: int) -> Any:
    v = s.items.get(index)
    if v is None:  # a step no gradient reached
        return np.zeros(s.item_shape, dtype=s.dtype)
    return v


def _unstack_put(g: Any, index: int, n: int) -> Steps:
    g = np.asarray(g)
    return Steps({index: g}, n, g.shape, g.dtype)


def _unstack_join(s: Steps, axis: int = 0) -> Any:
    """The steps stacked along ``axis`` (zeros where a step is missing)."""
    ax = axis % (len(s.item_shape) + 1)
    out = np.empty((s.n,) + tuple(s.item_shape), dtype=s.dtype)
    items = s.items
    for t in range(s.n):
        v = items.get(t)
        if v is None:
            out[t] = 0
        else:
            out[t] = v
    return out if ax == 0 else np.moveaxis(out, 0, ax)


# ---- Taylor rules: the same linear map on every coefficient (stacked directions lead)


def _unstack_rule(ctx, node, args, ans):
    x = args[0]
    shape = tuple(primal(x).shape)
    ax = shift_axis(ctx, node.kwargs.get("axis", 0) % len(shape), len(shape))
    out = [ans]
    for k in range(1, ctx.K + 1):
        c = x[k]
        out.append(None if c is None else T.unstack(full(ctx, c, k, shape), axis=ax))
    return out


def _get_rule(ctx, node, args, ans):
    index = node.kwargs["index"]
    return [ans] + [None if c is None else T.unstack_get(c, index=index) for c in args[0][1:]]


def _put_rule(ctx, node, args, ans):
    g, kw = args[0], node.kwargs
    shape = tuple(primal(g).shape)
    out = [ans]
    for k in range(1, ctx.K + 1):
        c = g[k]
        out.append(None if c is None else T.unstack_put(full(ctx, c, k, shape), **kw))
    return out


def _join_rule(ctx, node, args, ans):
    nd = ndim_of(ans)
    ax = shift_axis(ctx, node.kwargs.get("axis", 0) % nd, nd)
    return [ans] + [None if c is None else T.unstack_join(c, axis=ax) for c in args[0][1:]]


_STEP = Formula(None, "1")

defprim(
    "unstack",
    _unstack,
    [lambda xp, g, ans, x, axis=0: xp.unstack_join(g, axis=axis)],
    LINEAR,
    taylor=_unstack_rule,
    explain=_STEP,
)
defprim(
    "unstack_get",
    _unstack_get,
    [lambda xp, g, ans, s, index: xp.unstack_put(g, index=index, n=s.shape[0])],
    LINEAR,
    taylor=_get_rule,
    explain=Formula(lambda n, a, o: f"{a[0]}[{n.kwargs['index']}]", "1"),
)
defprim(
    "unstack_put",
    _unstack_put,
    [lambda xp, g, ans, c, index, n: xp.unstack_get(g, index=index)],
    LINEAR,
    taylor=_put_rule,
    explain=_STEP,
)
defprim(
    "unstack_join",
    _unstack_join,
    [lambda xp, g, ans, s, axis=0: xp.unstack(g, axis=axis)],
    LINEAR,
    taylor=_join_rule,
    explain=_STEP,
)
