"""Taylor-mode propagation of input derivatives over the engine's recorded graph.

How it works
------------
1. ``u(x)`` runs once while recording, on a fresh variable standing for ``x``. This is the
   ordinary forward pass: it leaves the engine's graph of nodes.
2. The nodes that depend on ``x`` are visited in topological order and each maps the jets
   (Taylor coefficients, see :mod:`tapegrad.taylor.jets`) of its inputs to its output's, by
   the jet rule its primitive declares (``Primitive.taylor``).
3. Every coefficient is computed with recorded tapegrad primitives, so the results are
   ordinary NDArrays on the tape: ``loss.backward()`` reaches the network's parameters, and
   the derivative can itself be differentiated again.

Cost: a linear operation costs one operation per non-zero coefficient; an elementwise
function of order-``K`` jets costs a number of array products polynomial in K (Faa di Bruno
through the recurrence of the partial Bell polynomials: 1, 4, 10, 20 products for
K = 1..4 when every coefficient is non-zero). Nested reverse mode instead grows
exponentially with the order.

Every builtin primitive declares its jet rule (a test checks it). A primitive without one (a
user's ``defprim``, an ``autograd.Function``) falls back on nested forward mode of the engine:
exact, but exponential in K; it warns once. A primitive without any forward-mode rule raises
an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..base import GraphError, ShapeError, TapegradError, fmt_shape
from ..core.forward import jvp as fwd_jvp
from ..core.graph import Leaf, walk, wrap
from ..core.primitive import BILINEAR, LINEAR, TAPE, ZERO, jvp_of, warn_once
from ..core.variables import trace
from ..core.versions import LAST, changed_after
from .jets import (
    JetContext,
    _is_arr,
    dtype_of,
    full,
    is_jet,
    j_add,
    j_bilinear,
    primal,
    zeros,
)

__all__ = ["taylor", "jvp", "propagate", "trace_call", "JetContext", "unit_directions"]

T = TAPE


# ---------------------------------------------------------------- rules derived from markers


def _zero_rule(ctx: JetContext, node: Any, args: list, ans: Any) -> list:
    return [ans] + [None] * ctx.K


def _linear_rule(ctx: JetContext, node: Any, args: list, ans: Any) -> list:
    """A linear primitive applied to each coefficient (per direction when stacked);
    non-differentiable inputs are passed through, missing coefficients are zeros."""
    prim = node.prim
    kw = node.kwargs
    out = [ans]
    for k in range(1, ctx.K + 1):
        if all(not is_jet(a) or a[k] is None for a in args):
            out.append(None)
            continue
        cs = []
        for i, a in enumerate(args):
            r = prim.vjps[i]
            if r is None or r is ZERO or not is_jet(a) and not _is_arr(a):
                cs.append(a)
            elif not is_jet(a) or a[k] is None:
                cs.append(zeros(ctx, k, a))
            else:
                cs.append(a[k] if ctx.flat else full(ctx, a[k], k, tuple(primal(a).shape)))
        if ctx.flat:
            out.append(prim.call(*cs, **kw))
            continue
        stacked = [i for i, a in enumerate(args) if is_jet(a) or _is_arr(a) and cs[i] is not a]
        rows = []
        for d in range(ctx.lead(k)):
            row = list(cs)
            for i in stacked:
                row[i] = T.getitem(cs[i], key=(d,))
            rows.append(prim.call(*row, **kw))
        out.append(T.stack(*rows, axis=0))
    return out


def _bilinear_rule(ctx: JetContext, node: Any, args: list, ans: Any) -> list:
    """Leibniz's rule with the primitive's two-input form; further inputs are biases added
    to the output (see ``primitive.BILINEAR``). The op must broadcast over leading axes."""
    call = node.prim.call
    y = j_bilinear(ctx, ans, args[0], args[1], op=lambda u, v: call(u, v, **node.kwargs))
    for b in args[2:]:
        if is_jet(b):
            y = j_add(ctx, ans, y, b)
    return y


def _engine_jvp_rule(ctx: JetContext, node: Any, args: list, ans: Any) -> list:
    """First order, one direction: the coefficient of order 1 is exactly the JVP, from the
    primitive's own forward-mode rule."""
    prim = node.prim
    if prim.jvp is None:
        return _fallback_rule(ctx, node, args, ans)  # raises the error naming the operator
    ts = [a[1] if is_jet(a) else None for a in args]
    return [ans, jvp_of(prim, ts, ans, list(node.args), node.kwargs)]


_DERIVED = {ZERO: _zero_rule, LINEAR: _linear_rule, BILINEAR: _bilinear_rule}


def _rule_of(prim: Any, first_order: bool) -> Callable:
    rule = prim.taylor
    if rule is None:
        if first_order:
            return _engine_jvp_rule
        if prim.jvp is None:  # no forward-mode rule at all: the fallback names the operator
            return _fallback_rule
        warn_once(
            ("taylor", prim.name),
            f"Taylor mode: operator '{prim.name}' declares no jet rule, so its derivatives of "
            "order K are computed by nested forward mode, at a cost exponential in K. Fix: "
            "declare a taylor= rule with defprim (see tapegrad.taylor.jets).",
        )
        return _fallback_rule
    rule = _DERIVED.get(rule, rule)
    if first_order and getattr(rule, "jvp_first", False):
        return _engine_jvp_rule
    return rule


def jvp_first(rule: Callable) -> Callable:
    """Mark a jet rule whose order-1, one-direction case costs more operations than the
    primitive's JVP rule: Taylor mode then uses the JVP rule there."""
    rule.jvp_first = True
    return rule


def _fallback_rule(ctx, node, args, ans):
    """Any primitive with forward-mode (JVP) rules: the Taylor coefficients of
    ``t -> prim(x(t))`` along each direction, where ``x(t)`` is the input's Taylor
    polynomial, by nested engine jvp over the scalar ``t`` (exact, exponential in K).

    In collapse mode the summed order-2 input coefficient cannot be split by direction; its
    contribution is linear (a JVP at the primal), and the per-direction curves carry only the
    first-order terms."""
    prim = node.prim
    if prim.jvp is None or prim.vjps is None:
        raise TapegradError(
            f"operator '{prim.name}' has no forward-mode (JVP) rule, so the Taylor "
            "coefficients of the derivative layer cannot be pushed through it. Fix: give it a "
            "jvp (a custom autograd.Function cannot be used inside a derivative layer), or "
            "write the network with built-in operators."
        )
    K = ctx.K
    kw = node.kwargs
    dt = dtype_of(ans)
    split = ctx.collapse and ctx.D > 1  # order 2 handled apart

    def curve_at(t: Any, d: int) -> list:
        vals = []
        for a in args:
            if not is_jet(a):
                vals.append(a)
                continue
            v = a[0]
            fact = 1.0
            tk = None
            for k in range(1, K + 1):
                fact *= k
                tk = t if tk is None else T.multiply(tk, t)  # t^k by products (no 0^-1)
                c = a[k]
                if c is None or (split and k == 2):
                    continue
                cd = c if ctx.flat else T.getitem(c, key=(d if c.shape[0] > 1 else 0,))
                v = T.add(v, T.multiply(cd, T.multiply(tk, 1.0 / fact)))
            vals.append(v)
        return vals

    def derivs(d: int) -> list:
        def f0(t):
            return [prim(*curve_at(t, d), **kw)]

        fn = f0
        for _ in range(K):

            def fn(t, inner=fn):
                p, tan = fwd_jvp(inner, (t,), (wrap(np.ones((), dtype=dt)),))
                return list(p) + [tan[-1]]

        return fn(wrap(np.zeros((), dtype=dt)))[1:]

    per_dir = [derivs(d) for d in range(ctx.D)]
    if ctx.flat:
        return [ans] + per_dir[0]
    out = [ans]
    for k in range(1, K + 1):
        st = T.stack(*[per_dir[d][k - 1] for d in range(ctx.D)], axis=0)
        if ctx.lead(k) == 1 and ctx.D > 1:
            st = T.sum(st, axis=0, keepdims=True)
        out.append(st)
    if split:
        idx = [i for i, a in enumerate(args) if is_jet(a) and a[2] is not None]
        if idx:
            prim_args = [primal(a) for a in args]

            def g(*xs):
                full = list(prim_args)
                for i, v in zip(idx, xs):
                    full[i] = v
                return prim(*full, **kw)

            _, t2 = fwd_jvp(
                g, [prim_args[i] for i in idx], [T.getitem(args[i][2], key=(0,)) for i in idx]
            )
            out[2] = T.add(out[2], T.reshape(t2, shape=(1,) + tuple(ans.shape)))
    return out


# ------------------------------------------------------------------------- the pass


def _where(u: Any) -> str:
    name = getattr(u, "name", None) or getattr(u, "__name__", None) or type(u).__name__
    return str(name)


def propagate(
    ctx: JetContext, y: Any, seeds: dict, where: str = "taylor", u: Any = None
) -> list | None:
    """Push the jets ``seeds`` (graph node -> jet) through the graph that computed ``y``;
    returns ``y``'s jet (None when ``y`` does not depend on the seeds)."""
    if y._node is None or not seeds:
        return None
    jets: dict = dict(seeds)
    first = min(n.seq for n in seeds)
    first_order = ctx.K == 1 and ctx.flat
    for n in walk([y._node], first):
        if type(n) is Leaf or n in seeds or n.args is None:  # (freed: a constant)
            continue
        parents = n.parents
        for p in parents:
            if p is not None and p in jets:
                break
        else:
            continue
        if n.seq < LAST[0] and changed_after(n.ans, n.seq):
            raise GraphError(
                f"{where}: the output of operator '{n.prim.name}' was changed in place inside "
                f"{_where(u)}. Fix: do not modify arrays in place inside the wrapped network."
            )
        args = [jets[p] if p is not None and p in jets else a for a, p in zip(n.args, parents)]
        ans = y if n is y._node else wrap(n.ans, n, n.ans_tan)
        rule = _rule_of(n.prim, first_order)
        try:
            jet = rule(ctx, n, args, ans)
        except (ShapeError, ValueError, IndexError) as e:
            shapes = ", ".join(
                fmt_shape(np.shape(primal(a)._data if _is_arr(primal(a)) else primal(a)))
                for a in args
            )
            raise TapegradError(
                f"{where}: propagating derivatives of order {ctx.K} through operator "
                f"'{n.prim.name}' (inputs {shapes}) failed: {e}"
            ) from e
        jet[0] = ans
        jets[n] = jet
    return jets.get(y._node)


def jvp(f: Callable, primals: Sequence, tangents: Sequence) -> tuple:
    """``(f(*primals), J @ tangents)`` by one Taylor-mode pass of order 1 over the recorded
    graph of ``f`` (the same result as :func:`tapegrad.forward.jvp`, with less overhead per
    operation; used by :func:`tapegrad.functional.hvp`). ``f`` returns one NDArray.

    >>> import tapegrad as mx
    >>> from tapegrad.taylor import jvp
    >>> x = mx.nd.array([1.0, 2.0], dtype='float64')
    >>> jvp(lambda x: (x ** 3).sum(), [x], [mx.nd.ones_like(x)])[1].asnumpy().tolist()
    [15.0]
    """
    ctx = JetContext(1, 1)
    xs = [p if _is_arr(p) else wrap(np.asarray(p)) for p in primals]
    vs = [t if _is_arr(t) else wrap(np.asarray(t, dtype=x.dtype)) for t, x in zip(tangents, xs)]
    for x, t in zip(xs, vs):
        if tuple(t.shape) != tuple(x.shape):
            raise ShapeError(
                f"jvp: tangent of shape {fmt_shape(t.shape)} for a primal of shape "
                f"{fmt_shape(x.shape)}. Fix: give each tangent its primal's shape."
            )
    y, vars_ = trace(f, xs, range(len(xs)))
    if not _is_arr(y):
        raise TapegradError(f"jvp: the function must return one NDArray, got {type(y).__name__}")
    seeds = {}
    for v, t in zip(vars_, vs):
        if v._node in seeds:  # the same array passed twice: tangents add up
            seeds[v._node][1] = T.add(seeds[v._node][1], t)
        else:
            seeds[v._node] = [v, t]
    out = propagate(ctx, y, seeds, "jvp", f)
    t = out[1] if out is not None and out[1] is not None else wrap(np.zeros(y.shape, dtype=y.dtype))
    return y, t


def trace_call(u: Callable, x: Any, where: str = "taylor") -> tuple:
    """Run ``u`` once, recording, on a fresh variable standing for ``x``: ``(variable, y)``."""
    y, (xv,) = trace(u, [x], [0])
    if not _is_arr(y):
        raise TapegradError(
            f"{where}: the wrapped network {_where(u)} returned {type(y).__name__}, but a "
            "derivative layer needs a single NDArray output. Fix: wrap it so that it returns "
            "one array (e.g. concatenate its outputs)."
        )
    return xv, y


def taylor(
    u: Callable,
    x: Any,
    directions: Any,
    order: int,
    collapse: bool = False,
    squeeze: bool = False,
    where: str = "taylor",
) -> tuple:
    """Value and directional derivatives of ``u`` at ``x`` up to ``order``.

    Args:
        u: a function of one NDArray (a Gluon block, or any callable of tapegrad operations).
        x: input NDArray (e.g. a batch of points, shape ``(N, d)``).
        directions: array of shape ``(D,) + x.shape``: ``D`` directions pushed at once.
        order: highest derivative order ``K >= 1``.
        collapse: sum the order-2 coefficients over the directions (forward Laplacian).
        squeeze: with a single direction (D = 1), return coefficients of the output's shape
            instead of ``(1,) + y.shape``.
        where: name used in error messages.

    Returns:
        ``(y, [c_1, ..., c_K])`` with ``y = u(x)`` and ``c_k`` the k-th directional derivative
        of ``y``, of shape ``(D,) + y.shape`` (``(1,) + y.shape`` for a collapsed order 2).

    >>> import tapegrad as mx
    >>> from tapegrad.taylor import taylor
    >>> x = mx.nd.array([[0.5]], dtype='float64')
    >>> y, (d1, d2, d3) = taylor(mx.nd.sin, x, mx.nd.ones((1, 1, 1), dtype='float64'), 3)
    >>> [round(float(c.asscalar()), 6) for c in (d1, d2, d3)]   # cos, -sin, -cos at 0.5
    [0.877583, -0.479426, -0.877583]
    """
    if not _is_arr(x):
        x = wrap(np.asarray(x))
    if order < 1:
        raise ValueError(f"{where}: order must be >= 1, got {order}")
    dirs = directions if _is_arr(directions) else wrap(np.asarray(directions, dtype=x.dtype))
    if dirs.ndim < 1 or tuple(dirs.shape[1:]) != tuple(x.shape):
        raise ShapeError(
            f"{where}: directions of shape {fmt_shape(dirs.shape)} for an input of shape "
            f"{fmt_shape(x.shape)}. Fix: pass directions of shape (D,) + x.shape."
        )
    ctx = JetContext(order, dirs.shape[0], collapse)
    xv, y = trace_call(u, x, where)
    xnode = xv._node
    if ctx.flat:
        # one direction: the coefficients keep the primal's shape
        d0 = (
            wrap(dirs._data.reshape(x.shape))
            if dirs._node is None and not dirs._tan
            else T.reshape(dirs, shape=tuple(x.shape))
        )
    else:
        d0 = dirs
    coefs: list = [None] * order
    out = propagate(ctx, y, {xnode: [xv, d0] + [None] * (order - 1)}, where, u)
    if out is not None:
        coefs = out[1:]
    res = []
    for k, c in enumerate(coefs, start=1):
        if c is None:
            shape = tuple(y.shape) if ctx.flat and squeeze else (ctx.lead(k),) + y.shape
            c = wrap(np.zeros(shape, dtype=y.dtype))
        elif ctx.flat and not squeeze:
            c = T.reshape(c, shape=(1,) + tuple(y.shape))
        res.append(c)
    return y, res


_DIRS: dict = {}  # (shape, dtype, components) -> read-only direction array


def unit_directions(x: Any, components: Sequence[int]) -> Any:
    """Stack of per-row unit vectors ``e_i`` (one per component) for inputs ``x`` of shape
    ``(N, d)`` (or ``(N,)``, one component). Cached: the arrays are read-only constants."""
    shape = tuple(x.shape)
    key = (shape, np.dtype(x.dtype).str, tuple(components))
    dirs = _DIRS.get(key)
    if dirs is None:
        dirs = np.zeros((len(components),) + shape, dtype=x.dtype)
        for k, i in enumerate(components):
            if len(shape) == 1:
                dirs[k] = 1
            else:
                dirs[k, ..., i] = 1
        dirs.flags.writeable = False
        if len(_DIRS) > 64:
            _DIRS.clear()
        _DIRS[key] = dirs
    return wrap(dirs)
