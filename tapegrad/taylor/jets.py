"""Jet algebra: Taylor coefficients of values, and how basic operations map them.

A *jet* of a value ``y(t) = u(x + t v)`` is the list ``[y_0, y_1, ..., y_K]`` of its
directional derivatives ``y_k = d^k y / dt^k`` at ``t = 0`` (``y_0`` the primal value),
``None`` for a coefficient that is zero (not stored: the first layers after the input, where
only ``y_1`` is non-zero, stay cheap). Every coefficient is computed with recorded tapegrad
primitives, so the results are ordinary arrays on the tape: they can be trained through and
differentiated again.

Directions are stacked on a new leading axis: a coefficient of a value of shape ``S`` has
shape ``(D,) + S`` for ``D`` directions pushed at once. With one direction (``ctx.flat``) the
coefficients keep the primal's shape. ``collapse=True`` (order 2 only) sums the second-order
coefficients over the directions as they are formed: with the ``d`` unit vectors this
propagates (value, gradient, Laplacian), the *forward Laplacian*.

The rules of the primitives (declared with them in ``tapegrad/ops/``) are written with the
helpers here: ``j_add`` (sums), ``j_bilinear`` (Leibniz's rule), ``j_divide``, ``j_compose``
(Faa di Bruno's formula from a derivative sequence, see ``derivs``), ``per_coef`` (a linear
map applied to every coefficient).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..base import TapegradError
from ..core.graph import _BOX, wrap
from ..core.primitive import PRIMITIVES, TAPE

T = TAPE


def _is_arr(a: Any) -> bool:
    return type(a) is _BOX[0]


class JetContext:
    """Settings of one Taylor pass: highest order ``K``, number of directions ``D``, and
    whether order-2 coefficients are summed over the directions (``collapse``)."""

    __slots__ = ("K", "D", "collapse", "flat", "cache")

    def __init__(self, K: int, D: int, collapse: bool = False) -> None:
        if collapse and K != 2:
            raise ValueError("collapse=True is defined for order 2 only (forward Laplacian)")
        self.K = K
        self.D = D
        # one direction: coefficients keep the primal's shape (no leading axis), so every
        # operation on them is the same 2-D operation as on the primal (cheapest)
        self.flat = D == 1
        self.collapse = collapse and D > 1
        self.cache: dict = {}

    def lead(self, k: int) -> int:
        """Size of the leading (direction) axis of the order-``k`` coefficients."""
        return 1 if self.collapse and k == 2 else self.D


# ------------------------------------------------------------------------ small helpers


def is_jet(a: Any) -> bool:
    return type(a) is list


def primal(a: Any) -> Any:
    """Primal of a jet, or the constant itself."""
    return a[0] if type(a) is list else a


def ndim_of(a: Any) -> int:
    return a._data.ndim if _is_arr(a) else np.ndim(a)


def lift(ctx: JetContext, c: Any, nd: int) -> Any:
    """Stacked coefficient ``(D,) + S`` reshaped to have ``nd`` inner dimensions (leading 1s
    inserted after the direction axis), so it broadcasts like its primal would."""
    if ctx.flat:
        return c
    inner = c.ndim - 1
    if inner >= nd:
        return c
    shape = c.shape
    return T.reshape(c, shape=(shape[0],) + (1,) * (nd - inner) + tuple(shape[1:]))


def scale(c: Any, s: float) -> Any:
    if s == 1:
        return c
    if s == -1:
        return T.negative(c)
    return T.multiply(c, float(s))


def add_terms(terms: list) -> Any:
    out = None
    for t in terms:
        out = t if out is None else T.add(out, t)
    return out


def prod(ctx: JetContext, a: Any, i: int, b: Any, j: int, op: Callable | None = None) -> Any:
    """``op(a, b)`` for a coefficient of order i and one of order j (order 0 = primal).
    In collapse mode, the product of two first-order coefficients is summed over the
    directions (that is where the Laplacian's sum over d comes from)."""
    # a coefficient times itself: square (one node, a cheaper VJP than multiply(a, a))
    if op is None or op is T.multiply:
        r = T.square(a) if a is b else T.multiply(a, b)
    else:
        r = op(a, b)
    if ctx.collapse and i == 1 and j == 1:
        r = T.sum(r, axis=0, keepdims=True)
    return r


def full(ctx: JetContext, c: Any, k: int, shape: tuple) -> Any:
    """Broadcast a coefficient of order k to ``(lead,) + shape`` when it is smaller."""
    w = want(ctx, k, shape)
    if tuple(c.shape) != w:
        c = T.broadcast_to(lift(ctx, c, len(shape)), shape=w)
    return c


def want(ctx: JetContext, k: int, shape: tuple) -> tuple:
    """Shape of an order-k coefficient of a value of shape ``shape``."""
    return tuple(shape) if ctx.flat else (ctx.lead(k),) + tuple(shape)


def zeros(ctx: JetContext, k: int, like: Any) -> Any:
    shape = np.shape(primal(like)._data if _is_arr(primal(like)) else primal(like))
    return wrap(np.zeros(want(ctx, k, shape), dtype=dtype_of(like)))


def dtype_of(a: Any) -> Any:
    a = primal(a)
    return a.dtype if _is_arr(a) else np.result_type(a)


def coef(a: Any, k: int) -> Any:
    return a[k] if type(a) is list else None


# ------------------------------------------------------------------- jet arithmetic


def j_add(ctx: JetContext, ans: Any, a: Any, b: Any, sign: float = 1.0) -> list:
    """Jet of ``a + sign * b`` (either may be a constant); ``ans``, the primal result, is
    computed when None."""
    if ans is None:
        ans = T.add(primal(a), primal(b)) if sign == 1 else T.subtract(primal(a), primal(b))
    if ctx.flat and ctx.K == 1:  # fast path: one first-order coefficient
        a1, b1 = coef(a, 1), coef(b, 1)
        if b1 is None:
            c = a1
        elif a1 is None:
            c = b1 if sign == 1 else T.negative(b1)
        else:
            c = T.add(a1, b1) if sign == 1 else T.subtract(a1, b1)
        if c is not None and c._data.shape != ans._data.shape:
            c = T.broadcast_to(c, shape=ans.shape)
        return [ans, c]
    nd = ndim_of(ans)
    out = [ans]
    for k in range(1, ctx.K + 1):
        ak, bk = coef(a, k), coef(b, k)
        if ak is None and bk is None:
            out.append(None)
            continue
        if bk is None:
            c = lift(ctx, ak, nd)
        elif ak is None:
            c = lift(ctx, bk, nd) if sign == 1 else T.negative(lift(ctx, bk, nd))
        elif sign == 1:
            c = T.add(lift(ctx, ak, nd), lift(ctx, bk, nd))
        else:
            c = T.subtract(lift(ctx, ak, nd), lift(ctx, bk, nd))
        out.append(full(ctx, c, k, ans.shape))
    return out


def j_bilinear(
    ctx: JetContext,
    ans: Any,
    a: Any,
    b: Any,
    op: Callable | None = None,
    op_stacked_b: Callable | None = None,
) -> list:
    """Jet of a bilinear ``op(a, b)`` (multiply, matmul, fully-connected): Leibniz's rule
    ``y_k = sum_i C(k, i) op(a_i, b_{k-i})``."""
    op = op or T.multiply
    a0, b0 = primal(a), primal(b)
    if ctx.flat and ctx.K == 1 and op_stacked_b is None:  # fast path: a0 b1 + a1 b0
        a1, b1 = coef(a, 1), coef(b, 1)
        c = None if b1 is None else op(a0, b1)
        if a1 is not None:
            c = op(a1, b0) if c is None else T.add(c, op(a1, b0))
        if c is not None and c._data.shape != ans._data.shape:
            c = T.broadcast_to(c, shape=ans.shape)
        return [ans, c]
    nd = ndim_of(ans)
    out = [ans]
    for k in range(1, ctx.K + 1):
        terms = []
        for i in range(k + 1):
            j = k - i
            ai = a0 if i == 0 else coef(a, i)
            bj = b0 if j == 0 else coef(b, j)
            if ai is None or bj is None:
                continue
            if i > 0:
                ai = lift(ctx, ai, nd)
            if j > 0:
                bj = lift(ctx, bj, nd)
            f = op if (j == 0 or op_stacked_b is None) else op_stacked_b
            t = prod(ctx, ai, i, bj, j, f)
            terms.append(scale(t, math.comb(k, i)))
        c = add_terms(terms)
        out.append(None if c is None else full(ctx, c, k, ans.shape))
    return out


def j_divide(ctx: JetContext, ans: Any, a: Any, b: Any) -> list:
    """Jet of ``a / b``: ``q_k = (a_k - sum_{j>=1} C(k, j) b_j q_{k-j}) / b_0``."""
    nd = ndim_of(ans)
    b0 = primal(b)
    if not is_jet(b):  # divide by a constant: linear
        out = [ans]
        for k in range(1, ctx.K + 1):
            ak = coef(a, k)
            out.append(
                None if ak is None else full(ctx, T.divide(lift(ctx, ak, nd), b0), k, ans.shape)
            )
        return out
    out = [ans]
    for k in range(1, ctx.K + 1):
        terms = []
        ak = coef(a, k)
        if ak is not None:
            terms.append(lift(ctx, ak, nd))
        for j in range(1, k + 1):
            bj, qkj = coef(b, j), out[k - j]
            if bj is None or qkj is None:
                continue
            t = prod(ctx, lift(ctx, bj, nd), j, qkj, k - j)
            terms.append(scale(t, -math.comb(k, j)))
        c = add_terms(terms)
        out.append(None if c is None else full(ctx, T.divide(c, b0), k, ans.shape))
    return out


def j_compose(ctx: JetContext, ans: Any, x: list, deriv: Callable[[int], Any]) -> list:
    """Jet of ``f(x)`` from ``deriv(m) = f^(m)(x_0)`` (``None`` for zero), by Faa di Bruno's
    formula ``y_n = sum_m f^(m) B_{n,m}(x_1, ..., x_{n-m+1})`` with the partial Bell
    polynomials built by their recurrence
    ``B_{n,m} = sum_i C(n-1, i-1) x_i B_{n-i,m-1}``."""
    K = ctx.K
    if K == 1:
        x1 = x[1]
        if x1 is None:
            return [ans, None]
        f1 = deriv(1)
        if f1 is None:
            return [ans, None]
        return [ans, T.multiply(x1, f1) if _is_arr(f1) else scale(x1, f1)]
    bell: dict = {}
    out = [ans]
    for n in range(1, K + 1):
        bell[(n, 1)] = x[n]
        for m in range(2, n + 1):
            terms = []
            for i in range(1, n - m + 2):
                xi, B = x[i], bell.get((n - i, m - 1))
                if xi is None or B is None:
                    continue
                terms.append(scale(prod(ctx, xi, i, B, n - i), math.comb(n - 1, i - 1)))
            bell[(n, m)] = add_terms(terms)
        terms = []
        for m in range(1, n + 1):
            B = bell[(n, m)]
            if B is None:
                continue
            fm = deriv(m)
            if fm is None:
                continue
            terms.append(T.multiply(B, fm) if _is_arr(fm) else scale(B, fm))
        out.append(add_terms(terms))
    return out


def j_square(ctx: JetContext, z: list) -> list:
    return j_bilinear(ctx, T.multiply(z[0], z[0]), z, z)


def j_neg(ctx: JetContext, a: list) -> list:
    return [T.negative(a[0])] + [None if c is None else T.negative(c) for c in a[1:]]


def j_scale(ctx: JetContext, a: list, s: float) -> list:
    return [scale(a[0], s)] + [None if c is None else scale(c, s) for c in a[1:]]


def j_recip(ctx: JetContext, a: list) -> list:
    return j_unary(ctx, "reciprocal", a)


def j_unary(ctx: JetContext, name: str, x: list, ans: Any = None, kw: dict | None = None) -> list:
    """Jet of the elementwise primitive ``name`` applied to the jet ``x``."""
    kw = kw or {}
    if ans is None:
        ans = getattr(T, name)(x[0], **kw)
    rule = PRIMITIVES[name].taylor
    derivs = getattr(rule, "derivs", None)
    if derivs is None:
        raise TapegradError(f"no derivative sequence for elementwise operator '{name}'")
    return j_compose(ctx, ans, x, derivs(ctx, x[0], ans, kw))


# ------------------------------------------------ helpers of the primitives' rules


def transposed(ctx: JetContext, w: Any) -> Any:
    """Transpose of a primal matrix (cached for the pass) or of a stacked one."""
    if _is_arr(w) and id(w) in ctx.cache:
        return ctx.cache[id(w)][1]
    t = T.transpose(w)
    ctx.cache[id(w)] = (w, t)  # keep w alive so its id is not reused during the pass
    return t


def shift_axis(ctx: JetContext, axis: Any, ndim: int) -> Any:
    """Axis of a primal -> the same axis of a stacked coefficient (one leading axis)."""
    if ctx.flat:
        return axis
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (tuple, list)):
        return tuple(a % ndim + 1 if ndim else a for a in axis)
    return axis % ndim + 1 if ndim else axis


def per_coef(ctx: JetContext, x: list, ans: Any, fn: Callable[[Any, int], Any]) -> list:
    """Apply a linear map ``fn(coefficient, k)`` to every non-zero coefficient."""
    out = [ans]
    for k in range(1, ctx.K + 1):
        c = x[k]
        if c is None:
            out.append(None)
            continue
        r = fn(c, k)
        w = want(ctx, k, ans.shape)
        if tuple(r.shape) != w:
            r = T.reshape(r, shape=w)
        out.append(r)
    return out


class FakeNode:
    """Stand-in node for rules reused inside other rules."""

    def __init__(self, prim: Any, kwargs: dict) -> None:
        self.prim = prim
        self.kwargs = kwargs


def shift_key(ctx: JetContext, key: Any) -> Any:
    if ctx.flat:
        return key
    return (slice(None),) + (key if isinstance(key, tuple) else (key,))


def stack_like(ctx, node, args, ans, prim_name: str):
    axis = node.kwargs.get("axis", 0)
    ax = axis if axis < 0 or ctx.flat else axis + 1
    out = [ans]
    for k in range(1, ctx.K + 1):
        cs = [coef(a, k) for a in args]
        if all(c is None for c in cs):
            out.append(None)
            continue
        parts = []
        for a, c in zip(args, cs):
            if c is None:
                c = zeros(ctx, k, a)
            else:
                c = full(ctx, c, k, primal(a).shape)
            parts.append(c)
        r = getattr(T, prim_name)(*parts, axis=ax)
        out.append(r)
    return out


def apply_rule(ctx: JetContext, name: str, args: list, ans: Any, **kwargs: Any) -> list:
    """The jet rule of primitive ``name`` applied to ``args`` (jets or constants) for the
    output ``ans`` with static arguments ``kwargs``: rules reuse other primitives' rules."""
    prim = PRIMITIVES[name]
    return prim.taylor(ctx, FakeNode(prim, kwargs), args, ans)
