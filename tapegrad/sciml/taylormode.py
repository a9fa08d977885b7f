"""Taylor-mode propagation of input derivatives over the engine's recorded graph.

How it works
------------
1. ``u(x)`` runs once while recording, on a fresh variable standing for ``x``. This is the
   ordinary forward pass: it leaves the engine's :class:`~tapegrad.engine.Node` graph.
2. The nodes that depend on ``x`` are then visited in topological order and each one maps
   the *Taylor coefficients* of its inputs to those of its output (its "jet" rule). The
   coefficients of ``y(t) = u(x + t v)`` are the directional derivatives
   ``y_k = d^k y / dt^k`` at ``t = 0``, for ``k = 1..K``.
3. Every coefficient is computed with recorded tapegrad primitives, so the results are
   ordinary NDArrays on the tape: ``loss.backward()`` reaches the network's parameters, and
   the derivative can itself be differentiated again (by reverse mode, by forward mode, or by
   another Taylor pass over the graph this one recorded).

Directions are stacked on a new leading axis: a coefficient of a value of shape ``S`` has
shape ``(D,) + S`` for ``D`` directions pushed at once (e.g. the ``d`` unit vectors of a
gradient). Because the rows of a batch of collocation points are independent, one
batch-wide direction gives the per-sample derivative of every row.

``collapse=True`` (order 2 only) sums the second-order coefficients over the directions as
they are formed: with the ``d`` unit vectors this propagates (value, gradient, Laplacian)
-- the *forward Laplacian* -- instead of the ``d`` separate second derivatives.

Cost: a linear operation costs one operation per non-zero coefficient; an elementwise
function of order-``K`` jets costs a number of array products polynomial in K (Faa di Bruno
through the recurrence of the partial Bell polynomials: 1, 4, 10, 20 products for
K = 1..4 when every coefficient is non-zero), with the function's derivatives in closed
form. Zero coefficients are not stored (``None``), so the first layers after the input, where
only the first coefficient is non-zero, stay cheap.
Nested reverse mode instead grows exponentially with the order.

A primitive without a jet rule here (e.g. one a user declared with ``defprim``) falls back on
nested forward mode of the engine (exact, exponential in K); a primitive without any
forward-mode rule (a custom ``autograd.Function``) raises an error naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..base import GraphError, ShapeError, TapegradError, fmt_shape
from ..engine import STATE, TAPE, Leaf, _wrap
from ..ndarray.ndarray import NDArray

__all__ = ["taylor", "jvp", "propagate", "trace_call", "JetContext", "unit_directions"]

T = TAPE


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


def _is_jet(a: Any) -> bool:
    return type(a) is list


def _p(a: Any) -> Any:
    """Primal of a jet, or the constant itself."""
    return a[0] if type(a) is list else a


def _ndim(a: Any) -> int:
    return a._data.ndim if type(a) is NDArray else np.ndim(a)


def _lift(ctx: JetContext, c: Any, nd: int) -> Any:
    """Stacked coefficient ``(D,) + S`` reshaped to have ``nd`` inner dimensions (leading 1s
    inserted after the direction axis), so it broadcasts like its primal would."""
    if ctx.flat:
        return c
    inner = c.ndim - 1
    if inner >= nd:
        return c
    shape = c.shape
    return T.reshape(c, shape=(shape[0],) + (1,) * (nd - inner) + tuple(shape[1:]))


def _scale(c: Any, s: float) -> Any:
    if s == 1:
        return c
    if s == -1:
        return T.negative(c)
    return T.multiply(c, float(s))


def _add_terms(terms: list) -> Any:
    out = None
    for t in terms:
        out = t if out is None else T.add(out, t)
    return out


def _prod(ctx: JetContext, a: Any, i: int, b: Any, j: int, op: Callable = T.multiply) -> Any:
    """``op(a, b)`` for a coefficient of order i and one of order j (order 0 = primal).
    In collapse mode, the product of two first-order coefficients is summed over the
    directions (that is where the Laplacian's sum over d comes from)."""
    # a coefficient times itself: square (one node, a cheaper VJP than multiply(a, a))
    r = T.square(a) if a is b and op is T.multiply else op(a, b)
    if ctx.collapse and i == 1 and j == 1:
        r = T.sum(r, axis=0, keepdims=True)
    return r


def _full(ctx: JetContext, c: Any, k: int, shape: tuple) -> Any:
    """Broadcast a coefficient of order k to ``(lead,) + shape`` when it is smaller."""
    want = _want(ctx, k, shape)
    if tuple(c.shape) != want:
        c = T.broadcast_to(_lift(ctx, c, len(shape)), shape=want)
    return c


def _want(ctx: JetContext, k: int, shape: tuple) -> tuple:
    """Shape of an order-k coefficient of a value of shape ``shape``."""
    return tuple(shape) if ctx.flat else (ctx.lead(k),) + tuple(shape)


def _zeros(ctx: JetContext, k: int, like: Any) -> NDArray:
    shape = np.shape(_p(like)._data if type(_p(like)) is NDArray else _p(like))
    return NDArray(np.zeros(_want(ctx, k, shape), dtype=_dtype(like)))


def _dtype(a: Any) -> Any:
    a = _p(a)
    return a.dtype if type(a) is NDArray else np.result_type(a)


def _coef(a: Any, k: int) -> Any:
    return a[k] if type(a) is list else None


# ------------------------------------------------------------------- jet arithmetic


def j_add(ctx: JetContext, ans: Any, a: Any, b: Any, sign: float = 1.0) -> list:
    """Jet of ``a + sign * b`` (either may be a constant); ``ans``, the primal result, is
    computed when None."""
    if ans is None:
        ans = T.add(_p(a), _p(b)) if sign == 1 else T.subtract(_p(a), _p(b))
    if ctx.flat and ctx.K == 1:  # fast path: one first-order coefficient
        a1, b1 = _coef(a, 1), _coef(b, 1)
        if b1 is None:
            c = a1
        elif a1 is None:
            c = b1 if sign == 1 else T.negative(b1)
        else:
            c = T.add(a1, b1) if sign == 1 else T.subtract(a1, b1)
        if c is not None and c._data.shape != ans._data.shape:
            c = T.broadcast_to(c, shape=ans.shape)
        return [ans, c]
    nd = _ndim(ans)
    out = [ans]
    for k in range(1, ctx.K + 1):
        ak, bk = _coef(a, k), _coef(b, k)
        if ak is None and bk is None:
            out.append(None)
            continue
        if bk is None:
            c = _lift(ctx, ak, nd)
        elif ak is None:
            c = _lift(ctx, bk, nd) if sign == 1 else T.negative(_lift(ctx, bk, nd))
        elif sign == 1:
            c = T.add(_lift(ctx, ak, nd), _lift(ctx, bk, nd))
        else:
            c = T.subtract(_lift(ctx, ak, nd), _lift(ctx, bk, nd))
        out.append(_full(ctx, c, k, ans.shape))
    return out


def j_bilinear(
    ctx: JetContext,
    ans: Any,
    a: Any,
    b: Any,
    op: Callable = T.multiply,
    op_stacked_b: Callable | None = None,
) -> list:
    """Jet of a bilinear ``op(a, b)`` (multiply, matmul, fully-connected): Leibniz's rule
    ``y_k = sum_i C(k, i) op(a_i, b_{k-i})``."""
    a0, b0 = _p(a), _p(b)
    if ctx.flat and ctx.K == 1 and op_stacked_b is None:  # fast path: a0 b1 + a1 b0
        a1, b1 = _coef(a, 1), _coef(b, 1)
        c = None if b1 is None else op(a0, b1)
        if a1 is not None:
            c = op(a1, b0) if c is None else T.add(c, op(a1, b0))
        if c is not None and c._data.shape != ans._data.shape:
            c = T.broadcast_to(c, shape=ans.shape)
        return [ans, c]
    nd = _ndim(ans)
    out = [ans]
    for k in range(1, ctx.K + 1):
        terms = []
        for i in range(k + 1):
            j = k - i
            ai = a0 if i == 0 else _coef(a, i)
            bj = b0 if j == 0 else _coef(b, j)
            if ai is None or bj is None:
                continue
            if i > 0:
                ai = _lift(ctx, ai, nd)
            if j > 0:
                bj = _lift(ctx, bj, nd)
            f = op if (j == 0 or op_stacked_b is None) else op_stacked_b
            t = _prod(ctx, ai, i, bj, j, f)
            terms.append(_scale(t, math.comb(k, i)))
        c = _add_terms(terms)
        out.append(None if c is None else _full(ctx, c, k, ans.shape))
    return out


def j_divide(ctx: JetContext, ans: Any, a: Any, b: Any) -> list:
    """Jet of ``a / b``: ``q_k = (a_k - sum_{j>=1} C(k, j) b_j q_{k-j}) / b_0``."""
    nd = _ndim(ans)
    b0 = _p(b)
    if not _is_jet(b):  # divide by a constant: linear
        out = [ans]
        for k in range(1, ctx.K + 1):
            ak = _coef(a, k)
            out.append(
                None if ak is None else _full(ctx, T.divide(_lift(ctx, ak, nd), b0), k, ans.shape)
            )
        return out
    out = [ans]
    for k in range(1, ctx.K + 1):
        terms = []
        ak = _coef(a, k)
        if ak is not None:
            terms.append(_lift(ctx, ak, nd))
        for j in range(1, k + 1):
            bj, qkj = _coef(b, j), out[k - j]
            if bj is None or qkj is None:
                continue
            t = _prod(ctx, _lift(ctx, bj, nd), j, qkj, k - j)
            terms.append(_scale(t, -math.comb(k, j)))
        c = _add_terms(terms)
        out.append(None if c is None else _full(ctx, T.divide(c, b0), k, ans.shape))
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
        return [ans, T.multiply(x1, f1) if type(f1) is NDArray else _scale(x1, f1)]
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
                terms.append(_scale(_prod(ctx, xi, i, B, n - i), math.comb(n - 1, i - 1)))
            bell[(n, m)] = _add_terms(terms)
        terms = []
        for m in range(1, n + 1):
            B = bell[(n, m)]
            if B is None:
                continue
            fm = deriv(m)
            if fm is None:
                continue
            terms.append(T.multiply(B, fm) if type(fm) is NDArray else _scale(B, fm))
        out.append(_add_terms(terms))
    return out


class _Derivs:
    """Lazily computed, cached derivatives ``f^(m)(x0)`` of a unary function."""

    def __init__(self, fn: Callable[[int], Any]) -> None:
        self.fn = fn
        self.memo: dict = {}

    def __call__(self, m: int) -> Any:
        if m not in self.memo:
            self.memo[m] = self.fn(m)
        return self.memo[m]


def _horner(coeffs: list, y: Any) -> Any:
    """Evaluate the polynomial ``sum coeffs[i] y^i`` (integer coefficients) with recorded ops;
    ``None`` for the zero polynomial."""
    while coeffs and coeffs[-1] == 0:
        coeffs = coeffs[:-1]
    if not coeffs:
        return None
    acc: Any = float(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = _scale(y, acc) if not isinstance(acc, NDArray) else T.multiply(acc, y)
        if c != 0:
            acc = T.add(acc, float(c))
    return acc


def _poly_der(p: list) -> list:
    return [i * p[i] for i in range(1, len(p))]


def _poly_mul(p: list, q: list) -> list:
    r = [0] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            r[i + j] += a * b
    return r


_POLYS: dict = {}  # g -> [None, P_1, P_2, ...], shared by all passes


def _poly_in_y(
    g: list,
    y: Any,
    first: Callable[[], Any] | None = None,
    second: Callable[[Any], Any] | None = None,
) -> _Derivs:
    """Derivatives of an f with ``f' = g(f)`` (tanh: g = 1 - y^2; sigmoid: y - y^2;
    exp: y; tan: 1 + y^2): ``f^(m) = P_m(y)`` with ``P_1 = g``, ``P_{m+1} = P_m' g``.
    ``first``/``second`` give hand-fused forms of ``P_1``/``P_2`` (fewer operations)."""
    polys = _POLYS.setdefault(tuple(g), [None, list(g)])

    def fn(m: int) -> Any:
        while len(polys) <= m:
            polys.append(_poly_mul(_poly_der(polys[-1]), list(g)))
        if m == 1 and first is not None:
            return first()
        if m == 2 and second is not None:
            return second(d(1))
        return _horner(polys[m], y)

    d = _Derivs(fn)
    return d


def _cycle(vals: list) -> _Derivs:
    """Derivatives that cycle with period len(vals): vals[(m - 1) % p] (thunks)."""
    return _Derivs(lambda m: vals[(m - 1) % len(vals)]())


def _power_derivs(x0: Any, p: Any) -> _Derivs:
    """``d^m/dx^m x^p = p (p-1) ... (p-m+1) x^(p-m)`` (zero for integer p < m)."""
    scalar = np.ndim(p) == 0 and not isinstance(p, NDArray)

    def fn(m: int) -> Any:
        if scalar:
            pf = float(p)
            if pf == int(pf) and 0 <= pf < m:
                return None
            c = 1.0
            for j in range(m):
                c *= pf - j
            if pf - m == 0:
                return c
            return _scale(T.power(x0, pf - m), c)
        pr = _p(p)
        pr = pr._data if type(pr) is NDArray else np.asarray(pr)
        c = np.ones_like(pr, dtype=_dtype(x0))
        for j in range(m):
            c = c * (pr - j)
        return T.multiply(T.power(x0, NDArray(pr - m)), NDArray(c.astype(_dtype(x0))))

    return _Derivs(fn)


def _const(a: Any) -> NDArray:
    return NDArray(a)


def _derivs_from_prime(
    ctx: JetContext, x0: Any, prime: Callable[[JetContext, list], list]
) -> _Derivs:
    """Derivatives of an f whose derivative g = f' is a composite of jet-able operations:
    ``f^(m)(x0) = g^(m-1)(x0)``, read off the jet of ``g`` along the direction 1."""
    K = ctx.K
    memo: dict = {}

    def fn(m: int) -> Any:
        if "g" not in memo:
            sub = JetContext(max(K - 1, 1), 1)
            xj = [x0, NDArray(np.ones(tuple(x0.shape), dtype=_dtype(x0)))] + [None] * (sub.K - 1)
            memo["g"] = prime(sub, xj)
        g = memo["g"]
        return g[m - 1] if m - 1 < len(g) else None

    return _Derivs(fn)


def _unary_derivs(ctx: JetContext, name: str, x0: Any, y0: Any, kw: dict) -> _Derivs | None:
    """``f^(m)(x0)`` for the elementwise primitive ``name`` (None: no rule here)."""
    if name == "exp":
        return _Derivs(lambda m: y0)
    if name == "expm1":
        e = _Derivs(lambda m: T.add(y0, 1.0))
        return _Derivs(lambda m: e(1))
    if name == "tanh":
        return _poly_in_y(
            [1, 0, -1],
            y0,
            lambda: T.subtract(1.0, T.square(y0)),
            lambda f1: T.multiply(T.multiply(y0, f1), -2.0),
        )
    if name == "sigmoid":
        return _poly_in_y(
            [0, 1, -1],
            y0,
            lambda: T.multiply(y0, T.subtract(1.0, y0)),
            lambda f1: T.multiply(f1, T.add(T.multiply(y0, -2.0), 1.0)),
        )
    if name == "tan":
        return _poly_in_y([1, 0, 1], y0)
    if name in ("sin", "cos", "sinh", "cosh"):
        memo: dict = {}

        def get(key: str) -> Any:
            if key not in memo:
                if key == "sin":
                    memo[key] = y0 if name == "sin" else T.sin(x0)
                elif key == "cos":
                    memo[key] = y0 if name == "cos" else T.cos(x0)
                elif key == "sinh":
                    memo[key] = y0 if name == "sinh" else T.sinh(x0)
                elif key == "cosh":
                    memo[key] = y0 if name == "cosh" else T.cosh(x0)
                else:  # "-sin" / "-cos"
                    memo[key] = T.negative(get(key[1:]))
            return memo[key]

        seq = {
            "sin": ["cos", "-sin", "-cos", "sin"],
            "cos": ["-sin", "-cos", "sin", "cos"],
            "sinh": ["cosh", "sinh"],
            "cosh": ["sinh", "cosh"],
        }[name]
        return _cycle([lambda k=k: get(k) for k in seq])
    if name in ("log", "log1p", "log2", "log10"):
        base = {"log": 1.0, "log1p": 1.0, "log2": math.log(2.0), "log10": math.log(10.0)}[name]
        powers: list = []

        def logd(m: int) -> Any:
            if not powers:
                powers.append(T.reciprocal(T.add(x0, 1.0) if name == "log1p" else x0))
            while len(powers) < m:
                powers.append(T.multiply(powers[-1], powers[0]))
            return _scale(powers[m - 1], (-1) ** (m - 1) * math.factorial(m - 1) / base)

        return _Derivs(logd)
    if name == "square":
        return _Derivs(lambda m: _scale(x0, 2.0) if m == 1 else (2.0 if m == 2 else None))
    if name == "reciprocal":
        pw: list = []

        def recd(m: int) -> Any:
            if not pw:
                pw.append(y0)
            while len(pw) < m + 1:
                pw.append(T.multiply(pw[-1], y0))
            return _scale(pw[m], (-1) ** m * math.factorial(m))

        return _Derivs(recd)
    if name in ("sqrt", "rsqrt", "cbrt", "rcbrt"):
        p = {"sqrt": 0.5, "rsqrt": -0.5, "cbrt": 1.0 / 3.0, "rcbrt": -1.0 / 3.0}[name]
        return _power_derivs(x0, p)
    if name == "abs":
        return _Derivs(lambda m: _const(np.sign(x0._data)) if m == 1 else None)
    if name == "relu":
        return _Derivs(lambda m: _const((x0._data > 0).astype(x0.dtype)) if m == 1 else None)
    if name == "leaky_relu":
        slope = kw.get("slope", 0.25)
        return _Derivs(
            lambda m: (
                _const(np.where(x0._data > 0, 1.0, slope).astype(x0.dtype)) if m == 1 else None
            )
        )
    if name in ("sign", "floor", "ceil", "round", "rint", "trunc", "fix"):
        return _Derivs(lambda m: None)
    if name in _PRIMES:
        return _derivs_from_prime(ctx, x0, _PRIMES[name])
    return None


def _sq(ctx: JetContext, z: list) -> list:
    return j_bilinear(ctx, T.multiply(z[0], z[0]), z, z)


def j_neg(ctx: JetContext, a: list) -> list:
    return [T.negative(a[0])] + [None if c is None else T.negative(c) for c in a[1:]]


def j_scale(ctx: JetContext, a: list, s: float) -> list:
    return [_scale(a[0], s)] + [None if c is None else _scale(c, s) for c in a[1:]]


def j_recip(ctx: JetContext, a: list) -> list:
    return j_unary(ctx, "reciprocal", a)


def j_unary(ctx: JetContext, name: str, x: list, ans: Any = None, kw: dict | None = None) -> list:
    """Jet of the elementwise primitive ``name`` applied to the jet ``x``."""
    kw = kw or {}
    if ans is None:
        ans = getattr(T, name)(x[0], **kw)
    d = _unary_derivs(ctx, name, x[0], ans, kw)
    if d is None:
        raise TapegradError(f"no Taylor rule for elementwise operator '{name}'")
    return j_compose(ctx, ans, x, d)


# f' of the inverse trigonometric functions, erf and softrelu, as jet composites
_PRIMES: dict = {
    "arctan": lambda c, z: j_recip(c, j_add(c, None, _sq(c, z), 1.0)),
    "arctanh": lambda c, z: j_recip(c, j_add(c, None, 1.0, _sq(c, z), -1.0)),
    "arcsin": lambda c, z: j_unary(c, "rsqrt", j_add(c, None, 1.0, _sq(c, z), -1.0)),
    "arccos": lambda c, z: j_neg(c, j_unary(c, "rsqrt", j_add(c, None, 1.0, _sq(c, z), -1.0))),
    "arcsinh": lambda c, z: j_unary(c, "rsqrt", j_add(c, None, _sq(c, z), 1.0)),
    "arccosh": lambda c, z: j_unary(c, "rsqrt", j_add(c, None, _sq(c, z), -1.0)),
    "erf": lambda c, z: j_scale(
        c, j_unary(c, "exp", j_neg(c, _sq(c, z))), 2.0 / math.sqrt(math.pi)
    ),
    "softrelu": lambda c, z: j_unary(c, "sigmoid", z),
}


# ------------------------------------------------------------------------- node rules
#
# A rule gets (ctx, node, args, ans): ``args[i]`` is the input's jet (a list) when the input
# depends on x, else the constant input itself; ``ans`` is the node's output (its primal).
# It returns the output's jet.

RULES: dict[str, Callable] = {}


def _rule(*names: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        for n in names:
            RULES[n] = fn
        return fn

    return deco


# f'(x) from (x, y = f(x)) for the first-order fast path (one recorded op fewer than the
# general Faa di Bruno machinery and no Python bookkeeping)
_FIRST: dict = {
    "tanh": lambda x, y: T.subtract(1.0, T.square(y)),
    "sigmoid": lambda x, y: T.multiply(y, T.subtract(1.0, y)),
    "exp": lambda x, y: y,
    "sin": lambda x, y: T.cos(x),
    "cos": lambda x, y: T.negative(T.sin(x)),
    "softrelu": lambda x, y: T.sigmoid(x),
}


def _unary_rule(ctx, node, args, ans):
    x = args[0]
    if ctx.K == 1:
        first = _FIRST.get(node.prim.name)
        if first is not None:
            x1 = x[1]
            return [ans, None if x1 is None else T.multiply(x1, first(x[0], ans))]
    d = _unary_derivs(ctx, node.prim.name, _p(args[0]), ans, node.kwargs)
    return j_compose(ctx, ans, args[0], d)


for _n in (
    "exp",
    "expm1",
    "log",
    "log1p",
    "log2",
    "log10",
    "sin",
    "cos",
    "tan",
    "sinh",
    "cosh",
    "tanh",
    "sigmoid",
    "square",
    "reciprocal",
    "sqrt",
    "rsqrt",
    "cbrt",
    "rcbrt",
    "abs",
    "relu",
    "leaky_relu",
    "sign",
    "floor",
    "ceil",
    "round",
    "rint",
    "trunc",
    "fix",
    "arctan",
    "arctanh",
    "arcsin",
    "arccos",
    "arcsinh",
    "arccosh",
    "erf",
    "softrelu",
):
    RULES[_n] = _unary_rule


@_rule("add")
def _add_rule(ctx, node, args, ans):
    return j_add(ctx, ans, args[0], args[1])


@_rule("subtract")
def _sub_rule(ctx, node, args, ans):
    return j_add(ctx, ans, args[0], args[1], -1.0)


@_rule("negative")
def _neg_rule(ctx, node, args, ans):
    return [ans] + [None if c is None else T.negative(c) for c in args[0][1:]]


@_rule("copy")
def _copy_rule(ctx, node, args, ans):
    return [ans] + list(args[0][1:])


@_rule("cast")
def _cast_rule(ctx, node, args, ans):
    dt = node.kwargs["dtype"]
    return [ans] + [None if c is None else T.cast(c, dtype=dt) for c in args[0][1:]]


@_rule("multiply")
def _mul_rule(ctx, node, args, ans):
    return j_bilinear(ctx, ans, args[0], args[1])


@_rule("divide")
def _div_rule(ctx, node, args, ans):
    return j_divide(ctx, ans, args[0], args[1])


@_rule("power")
def _pow_rule(ctx, node, args, ans):
    x, p = args
    if not _is_jet(p):
        return j_compose(ctx, ans, x, _power_derivs(x[0], p))
    # x^p = exp(p log x) when the exponent depends on the input
    lx = (
        j_unary(ctx, "log", x)
        if _is_jet(x)
        else T.log(_p(x) if type(_p(x)) is NDArray else NDArray(np.asarray(x)))
    )
    z = j_bilinear(ctx, T.multiply(_p(p), _p(lx)), p, lx)
    return j_compose(ctx, ans, z, _Derivs(lambda m: ans))


@_rule("maximum", "minimum")
def _minmax_rule(ctx, node, args, ans):
    a0, b0 = (_p(a) for a in args)
    ra = a0._data if type(a0) is NDArray else np.asarray(a0)
    rb = b0._data if type(b0) is NDArray else np.asarray(b0)
    win = (ra > rb) if node.prim.name == "maximum" else (ra < rb)
    m = (win + (ra == rb) * 0.5).astype(_dtype(ans))
    terms = [j_bilinear(ctx, ans, args[0], NDArray(m))] if _is_jet(args[0]) else []
    if _is_jet(args[1]):
        terms.append(j_bilinear(ctx, ans, args[1], NDArray((1.0 - m).astype(m.dtype))))
    if len(terms) == 1:
        return terms[0]
    return j_add(ctx, ans, terms[0], terms[1])


@_rule("clip")
def _clip_rule(ctx, node, args, ans):
    x0 = _p(args[0])._data
    m = np.ones_like(x0)
    lo, hi = node.kwargs.get("a_min"), node.kwargs.get("a_max")
    if lo is not None:
        m = m * (x0 >= lo)
    if hi is not None:
        m = m * (x0 <= hi)
    return j_bilinear(ctx, ans, args[0], NDArray(m.astype(x0.dtype)))


@_rule("mod")
def _mod_rule(ctx, node, args, ans):
    a0, b0 = (_p(a) for a in args)
    ra = a0._data if type(a0) is NDArray else np.asarray(a0)
    rb = b0._data if type(b0) is NDArray else np.asarray(b0)
    q = NDArray(np.floor(ra / rb).astype(_dtype(ans)))
    if not _is_jet(args[1]):
        return j_add(ctx, ans, args[0], 0.0)
    return j_add(ctx, ans, args[0], j_bilinear(ctx, T.multiply(b0, q), args[1], q), -1.0)


@_rule("hypot")
def _hypot_rule(ctx, node, args, ans):
    a, b = args
    sa = _sq(ctx, a) if _is_jet(a) else T.multiply(_p(a), _p(a))
    sb = _sq(ctx, b) if _is_jet(b) else T.multiply(_p(b), _p(b))
    s = j_add(ctx, None, sa, sb)
    return j_unary(ctx, "sqrt", s, ans=ans)


@_rule("where")
def _where_rule(ctx, node, args, ans):
    cond = args[0]
    nd = _ndim(ans)
    out = [ans]
    for k in range(1, ctx.K + 1):
        xk, yk = _coef(args[1], k), _coef(args[2], k)
        if xk is None and yk is None:
            out.append(None)
            continue
        c = T.where(
            _p(cond),
            _lift(ctx, xk, nd) if xk is not None else 0.0,
            _lift(ctx, yk, nd) if yk is not None else 0.0,
        )
        out.append(_full(ctx, c, k, ans.shape))
    return out


def _T2(ctx: JetContext, w: Any) -> Any:
    """Transpose of a primal matrix (cached for the pass) or of a stacked one."""
    if type(w) is NDArray and id(w) in ctx.cache:
        return ctx.cache[id(w)][1]
    t = T.transpose(w)
    ctx.cache[id(w)] = (w, t)  # keep w alive so its id is not reused during the pass
    return t


@_rule("fully_connected")
def _fc_rule(ctx, node, args, ans):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    if ctx.flat and not _is_jet(w):
        # the same 2-D product as the primal, without the bias
        y = [ans] + [None if c is None else T.fully_connected(c, w) for c in x[1:]]
        return j_add(ctx, ans, y, b) if b is not None and _is_jet(b) else y
    if not _is_jet(w):
        # (D, N, in) -> (D*N, in): one 2-D product for all directions
        y = [ans]
        for c in x[1:]:
            if c is None:
                y.append(None)
                continue
            lead = c.shape[0]
            r = T.fully_connected(T.reshape(c, shape=(-1, c.shape[-1])), w)
            y.append(T.reshape(r, shape=(lead,) + tuple(ans.shape)))
        return j_add(ctx, ans, y, b) if b is not None and _is_jet(b) else y
    y = j_bilinear(
        ctx,
        ans,
        x,
        [_p(w)] + [None] * ctx.K if not _is_jet(w) else w,
        op=lambda a, ww: T.matmul(a, _T2(ctx, ww)),
        op_stacked_b=(lambda a, ww: T.matmul(a, T.transpose(ww)))
        if ctx.flat
        else (lambda a, ww: T.matmul(a, T.transpose(ww, axes=(0, 2, 1)))),
    )
    if b is not None and _is_jet(b):
        y = j_add(ctx, ans, y, b)
    return y


@_rule("matmul")
def _matmul_rule(ctx, node, args, ans):
    return j_bilinear(ctx, ans, args[0], args[1], op=T.matmul)


def _shift_axis(ctx: JetContext, axis: Any, ndim: int) -> Any:
    """Axis of a primal -> the same axis of a stacked coefficient (one leading axis)."""
    if ctx.flat:
        return axis
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (tuple, list)):
        return tuple(a % ndim + 1 if ndim else a for a in axis)
    return axis % ndim + 1 if ndim else axis


def _per_coef(ctx: JetContext, x: list, ans: Any, fn: Callable[[Any, int], Any]) -> list:
    """Apply a linear map ``fn(coefficient, k)`` to every non-zero coefficient."""
    out = [ans]
    for k in range(1, ctx.K + 1):
        c = x[k]
        if c is None:
            out.append(None)
            continue
        r = fn(c, k)
        want = _want(ctx, k, ans.shape)
        if tuple(r.shape) != want:
            r = T.reshape(r, shape=want)
        out.append(r)
    return out


@_rule("sum", "mean")
def _sum_rule(ctx, node, args, ans):
    prim = node.prim
    nd = _ndim(_p(args[0]))
    ax = _shift_axis(ctx, node.kwargs.get("axis"), nd)
    keep = node.kwargs.get("keepdims", False)
    return _per_coef(ctx, args[0], ans, lambda c, k: prim(c, axis=ax, keepdims=keep))


@_rule("max", "min")
def _extreme_rule(ctx, node, args, ans):
    x0 = _p(args[0])._data
    axis, keep = node.kwargs.get("axis"), node.kwargs.get("keepdims", False)
    red = np.max if node.prim.name == "max" else np.min
    m = x0 == red(x0, axis=axis, keepdims=True)
    m = (m / m.sum(axis=axis, keepdims=True)).astype(x0.dtype)
    ax = _shift_axis(ctx, axis, x0.ndim)
    mask = NDArray(m)
    return _per_coef(
        ctx, args[0], ans, lambda c, k: T.sum(T.multiply(c, mask), axis=ax, keepdims=keep)
    )


@_rule("logsumexp")
def _lse_rule(ctx, node, args, ans):
    x = args[0]
    axis = node.kwargs.get("axis")
    x0 = _p(x)
    nd = x0.ndim
    # weights w = exp(x - lse) (softmax along axis), as a jet: lse' = sum(w x'), and higher
    # orders from y = log(sum(exp(x - c))) + c with the constant shift c = max(x)
    c = NDArray(np.max(x0._data, axis=axis, keepdims=True))
    e = j_unary(ctx, "exp", j_add(ctx, None, x, c, -1.0))
    ax = _shift_axis(ctx, axis, nd)
    s0 = T.sum(e[0], axis=axis, keepdims=True)
    s = [s0] + [None if ek is None else T.sum(ek, axis=ax, keepdims=True) for ek in e[1:]]
    ls = j_unary(ctx, "log", s)
    out = [ans]
    for k in range(1, ctx.K + 1):
        ck = ls[k]
        if ck is None:
            out.append(None)
            continue
        want = _want(ctx, k, ans.shape)
        out.append(ck if tuple(ck.shape) == want else T.reshape(ck, shape=want))
    return out


@_rule("log_softmax")
def _log_softmax_rule(ctx, node, args, ans):
    x = args[0]
    axis = node.kwargs.get("axis", -1)
    lse = T.logsumexp(_p(x), axis=axis, keepdims=True)
    fake = _FakeNode(RULES["logsumexp"], {"axis": axis, "keepdims": True})
    lj = _lse_rule(ctx, fake, [x], lse)
    return j_add(ctx, ans, x, lj, -1.0)


@_rule("softmax")
def _softmax_rule(ctx, node, args, ans):
    x = args[0]
    axis = node.kwargs.get("axis", -1)
    ls = _log_softmax_rule(
        ctx, _FakeNode(None, {"axis": axis}), [x], T.log_softmax(_p(x), axis=axis)
    )
    return j_compose(ctx, ans, ls, _Derivs(lambda m: ans))


@_rule("softmax_ce")
def _softmax_ce_rule(ctx, node, args, ans):
    # logsumexp(x) - x[label] = -(log_softmax(x)[label]): reuse the log_softmax jet, pick
    from ..ops.nn import _rows

    x, label = args[0], _p(args[1])
    axis = node.kwargs.get("axis", -1)
    x0 = _p(x)
    lab_raw = label._data if type(label) is NDArray else label
    ax, lab = _rows(x0._data, lab_raw, axis)
    grids = np.indices(lab.shape, sparse=True) if lab.ndim else []
    key = _shift_key(ctx, tuple(grids[:ax]) + (lab,) + tuple(grids[ax:]))
    ls = _log_softmax_rule(ctx, _FakeNode(None, {"axis": axis}), [x], T.log_softmax(x0, axis=axis))
    return _per_coef(ctx, ls, ans, lambda c, k: T.negative(T.getitem(c, key=key)))


class _FakeNode:
    """Stand-in node for rules reused inside other rules."""

    def __init__(self, prim: Any, kwargs: dict) -> None:
        self.prim = prim
        self.kwargs = kwargs


@_rule("reshape")
def _reshape_rule(ctx, node, args, ans):
    return _per_coef(ctx, args[0], ans, lambda c, k: T.reshape(c, shape=_want(ctx, k, ans.shape)))


@_rule("transpose")
def _transpose_rule(ctx, node, args, ans):
    nd = _ndim(ans)
    axes = node.kwargs.get("axes")
    axes = tuple(range(nd))[::-1] if axes is None else tuple(a % nd for a in axes)
    ax = axes if ctx.flat else (0,) + tuple(a + 1 for a in axes)
    return _per_coef(ctx, args[0], ans, lambda c, k: T.transpose(c, axes=ax))


@_rule("broadcast_to")
def _broadcast_rule(ctx, node, args, ans):
    nd = _ndim(ans)
    return _per_coef(
        ctx,
        args[0],
        ans,
        lambda c, k: T.broadcast_to(_lift(ctx, c, nd), shape=_want(ctx, k, ans.shape)),
    )


def _shift_key(ctx: JetContext, key: Any) -> Any:
    if ctx.flat:
        return key
    return (slice(None),) + (key if isinstance(key, tuple) else (key,))


@_rule("getitem")
def _getitem_rule(ctx, node, args, ans):
    key = _shift_key(ctx, node.kwargs["key"])
    return _per_coef(ctx, args[0], ans, lambda c, k: T.getitem(c, key=key))


@_rule("scatter")
def _scatter_rule(ctx, node, args, ans):
    key = _shift_key(ctx, node.kwargs["key"])
    shape = tuple(node.kwargs["shape"])
    return _per_coef(
        ctx, args[0], ans, lambda c, k: T.scatter(c, shape=_want(ctx, k, shape), key=key)
    )


@_rule("index_update")
def _index_update_rule(ctx, node, args, ans):
    x, v = args
    key = node.kwargs["key"]
    region = np.empty(ans.shape, dtype=np.bool_)[key].shape
    out = [ans]
    for k in range(1, ctx.K + 1):
        xk, vk = _coef(x, k), _coef(v, k)
        if xk is None and vk is None:
            out.append(None)
            continue
        if xk is None:
            xk = _zeros(ctx, k, ans)
        xk = _full(ctx, xk, k, ans.shape)
        vk = 0.0 if vk is None else _lift(ctx, vk, len(region))
        out.append(T.index_update(xk, vk, key=_shift_key(ctx, key)))
    return out


def _stack_like(ctx, node, args, ans, prim_name: str):
    axis = node.kwargs.get("axis", 0)
    ax = axis if axis < 0 or ctx.flat else axis + 1
    out = [ans]
    for k in range(1, ctx.K + 1):
        cs = [_coef(a, k) for a in args]
        if all(c is None for c in cs):
            out.append(None)
            continue
        parts = []
        for a, c in zip(args, cs):
            if c is None:
                c = _zeros(ctx, k, a)
            else:
                c = _full(ctx, c, k, _p(a).shape)
            parts.append(c)
        r = getattr(T, prim_name)(*parts, axis=ax)
        out.append(r)
    return out


@_rule("concat")
def _concat_rule(ctx, node, args, ans):
    return _stack_like(ctx, node, args, ans, "concat")


@_rule("stack")
def _stack_rule(ctx, node, args, ans):
    return _stack_like(ctx, node, args, ans, "stack")


@_rule("tile")
def _tile_rule(ctx, node, args, ans):
    reps = node.kwargs["reps"]
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    nd = max(len(reps), _ndim(_p(args[0])))
    reps = (1,) * (nd - len(reps)) + reps
    if ctx.flat:
        return _per_coef(ctx, args[0], ans, lambda c, k: T.tile(c, reps=reps))
    return _per_coef(ctx, args[0], ans, lambda c, k: T.tile(_lift(ctx, c, nd), reps=(1,) + reps))


@_rule("repeat")
def _repeat_rule(ctx, node, args, ans):
    rep, axis = node.kwargs["repeats"], node.kwargs.get("axis")
    nd = _ndim(_p(args[0]))
    if ctx.flat:
        return _per_coef(ctx, args[0], ans, lambda c, k: T.repeat(c, repeats=rep, axis=axis))
    if axis is None:
        return _per_coef(
            ctx,
            args[0],
            ans,
            lambda c, k: T.repeat(T.reshape(c, shape=(c.shape[0], -1)), repeats=rep, axis=1),
        )
    return _per_coef(ctx, args[0], ans, lambda c, k: T.repeat(c, repeats=rep, axis=axis % nd + 1))


@_rule("flip")
def _flip_rule(ctx, node, args, ans):
    ax = _shift_axis(ctx, node.kwargs["axis"], _ndim(_p(args[0])))
    return _per_coef(ctx, args[0], ans, lambda c, k: T.flip(c, axis=ax))


# ----------------------------------------------------------------------- fallback rule


def _fallback_rule(ctx, node, args, ans):
    """Any primitive with forward-mode (JVP) rules: the Taylor coefficients of
    ``t -> prim(x(t))`` along each direction, where ``x(t)`` is the input's Taylor
    polynomial, by nested engine jvp over the scalar ``t`` (exact, exponential in K).

    In collapse mode the summed order-2 input coefficient cannot be split by direction; its
    contribution is linear (a JVP at the primal), and the per-direction curves carry only the
    first-order terms."""
    from ..forward import jvp

    prim = node.prim
    if prim.jvp is None:
        raise TapegradError(
            f"operator '{prim.name}' has no forward-mode (JVP) rule, so the Taylor "
            "coefficients of the derivative layer cannot be pushed through it. Fix: give it a "
            "jvp (a custom autograd.Function cannot be used inside a derivative layer), or "
            "write the network with built-in operators."
        )
    K = ctx.K
    kw = node.kwargs
    dt = _dtype(ans)
    split = ctx.collapse and ctx.D > 1  # order 2 handled apart

    def curve_at(t: NDArray, d: int) -> list:
        vals = []
        for a in args:
            if not _is_jet(a):
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
                p, tan = jvp(inner, (t,), (NDArray(np.ones((), dtype=dt)),))
                return list(p) + [tan[-1]]

        return fn(NDArray(np.zeros((), dtype=dt)))[1:]

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
        idx = [i for i, a in enumerate(args) if _is_jet(a) and a[2] is not None]
        if idx:
            prim_args = [_p(a) for a in args]

            def g(*xs):
                full = list(prim_args)
                for i, v in zip(idx, xs):
                    full[i] = v
                return prim(*full, **kw)

            _, t2 = jvp(
                g, [prim_args[i] for i in idx], [T.getitem(args[i][2], key=(0,)) for i in idx]
            )
            out[2] = T.add(out[2], T.reshape(t2, shape=(1,) + tuple(ans.shape)))
    return out


def _engine_jvp_rule(ctx, node, args, ans):
    """First order, one direction: the primitive's own JVP rule from the engine (the
    coefficient of order 1 is exactly the JVP)."""
    prim = node.prim
    if prim.jvp is None:
        return _fallback_rule(ctx, node, args, ans)  # raises the error naming the operator
    ts = [a[1] if _is_jet(a) else None for a in args]
    return [ans, prim._jvp(ts, ans, list(node.args), node.kwargs)]


#: with one direction and order 1, these composite rules cost more operations than the
#: engine's JVP rule of the same primitive
_ENGINE_FIRST = {
    "softmax_ce",
    "log_softmax",
    "softmax",
    "logsumexp",
    "hypot",
    "mod",
    "power",
    "max",
    "min",
    "clip",
    "maximum",
    "minimum",
    "where",
}


# -------------------------------------------------------------------------- the pass


def _fresh_var(x: NDArray) -> NDArray:
    """A variable standing for ``x``: a new leaf, or a recorded copy when ``x`` is itself on
    a graph (so derivatives with respect to what ``x`` came from still flow through)."""
    if x._node is not None:
        old = STATE.recording
        STATE.recording = True
        try:
            return T.reshape(x, shape=tuple(x.shape))  # a recorded identity, no data copy
        finally:
            STATE.recording = old
    v = _wrap(x._data, Leaf(x.shape, x.dtype, None, "write"), x._tan)
    v._version = x._version
    return v


def _seq(n: Any) -> int:
    return n.seq


def _topo(root: Any, first: int) -> list:
    """Nodes reachable from ``root`` that were created at or after creation number ``first``
    (nodes made before the traced call cannot depend on its input), parents first."""
    seen = {root}
    stack = [root]
    while stack:
        for p in stack.pop().parents:
            if p is not None and p not in seen and p.seq >= first:
                seen.add(p)
                stack.append(p)
    return sorted(seen, key=_seq)


def _where(u: Any) -> str:
    name = getattr(u, "name", None) or getattr(u, "__name__", None) or type(u).__name__
    return str(name)


def propagate(
    ctx: JetContext, y: NDArray, seeds: dict, where: str = "taylor", u: Any = None
) -> list | None:
    """Push the jets ``seeds`` (graph node -> jet) through the graph that computed ``y``;
    returns ``y``'s jet (None when ``y`` does not depend on the seeds)."""
    if y._node is None or not seeds:
        return None
    jets: dict = dict(seeds)
    first = min(n.seq for n in seeds)
    first_order = ctx.K == 1 and ctx.flat
    for n in _topo(y._node, first):
        if type(n) is Leaf or n in seeds:
            continue
        parents = n.parents
        for p in parents:
            if p is not None and p in jets:
                break
        else:
            continue
        if n.dirty:
            raise GraphError(
                f"{where}: the output of operator '{n.prim.name}' was changed in place inside "
                f"{_where(u)}. Fix: do not modify arrays in place inside the wrapped network."
            )
        args = [jets[p] if p is not None and p in jets else a for a, p in zip(n.args, parents)]
        ans = y if n is y._node else _wrap(n.ans, n, n.ans_tan)
        name = n.prim.name
        if first_order and (name in _ENGINE_FIRST or name not in RULES):
            rule = _engine_jvp_rule
        else:
            rule = RULES.get(name, _fallback_rule)
        try:
            jet = rule(ctx, n, args, ans)
        except (ShapeError, ValueError, IndexError) as e:
            shapes = ", ".join(
                fmt_shape(np.shape(_p(a)._data if type(_p(a)) is NDArray else _p(a))) for a in args
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
    >>> from tapegrad.sciml.taylormode import jvp
    >>> x = mx.nd.array([1.0, 2.0], dtype='float64')
    >>> jvp(lambda x: (x ** 3).sum(), [x], [mx.nd.ones_like(x)])[1].asnumpy().tolist()
    [15.0]
    """
    ctx = JetContext(1, 1)
    xs = [p if isinstance(p, NDArray) else NDArray(np.asarray(p)) for p in primals]
    vs = [
        t if isinstance(t, NDArray) else NDArray(np.asarray(t, dtype=x.dtype))
        for t, x in zip(tangents, xs)
    ]
    for x, t in zip(xs, vs):
        if tuple(t.shape) != tuple(x.shape):
            raise ShapeError(
                f"jvp: tangent of shape {fmt_shape(t.shape)} for a primal of shape "
                f"{fmt_shape(x.shape)}. Fix: give each tangent its primal's shape."
            )
    vars_ = [_fresh_var(x) for x in xs]
    outer = STATE.recording
    STATE.recording = True
    try:
        y = f(*vars_)
    finally:
        STATE.recording = outer
    if not isinstance(y, NDArray):
        raise TapegradError(f"jvp: the function must return one NDArray, got {type(y).__name__}")
    seeds = {}
    for v, t in zip(vars_, vs):
        if v._node in seeds:  # the same array passed twice: tangents add up
            seeds[v._node][1] = T.add(seeds[v._node][1], t)
        else:
            seeds[v._node] = [v, t]
    out = propagate(ctx, y, seeds, "jvp", f)
    t = (
        out[1]
        if out is not None and out[1] is not None
        else NDArray(np.zeros(y.shape, dtype=y.dtype))
    )
    return y, t


def trace_call(u: Callable, x: NDArray, where: str = "taylor") -> tuple:
    """Run ``u`` once, recording, on a fresh variable standing for ``x``: ``(variable, y)``."""
    xv = _fresh_var(x)
    outer = STATE.recording
    STATE.recording = True
    try:
        y = u(xv)
    finally:
        STATE.recording = outer
    if not isinstance(y, NDArray):
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
    >>> from tapegrad.sciml.taylormode import taylor
    >>> x = mx.nd.array([[0.5]], dtype='float64')
    >>> y, (d1, d2, d3) = taylor(mx.nd.sin, x, mx.nd.ones((1, 1, 1), dtype='float64'), 3)
    >>> [round(float(c.asscalar()), 6) for c in (d1, d2, d3)]   # cos, -sin, -cos at 0.5
    [0.877583, -0.479426, -0.877583]
    """
    if not isinstance(x, NDArray):
        x = NDArray(np.asarray(x))
    if order < 1:
        raise ValueError(f"{where}: order must be >= 1, got {order}")
    dirs = (
        directions
        if isinstance(directions, NDArray)
        else NDArray(np.asarray(directions, dtype=x.dtype))
    )
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
            NDArray(dirs._data.reshape(x.shape))
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
            c = NDArray(np.zeros(shape, dtype=y.dtype))
        elif ctx.flat and not squeeze:
            c = T.reshape(c, shape=(1,) + tuple(y.shape))
        res.append(c)
    return y, res


_DIRS: dict = {}  # (shape, dtype, components) -> read-only direction array


def unit_directions(x: NDArray, components: Sequence[int]) -> NDArray:
    """Stack of per-row unit vectors ``e_i`` (one per component) for inputs ``x`` of shape
    ``(N, d)`` (or ``(N,)``, one component). Cached: the arrays are read-only constants."""
    shape = tuple(x.shape)
    key = (shape, x.dtype.str, tuple(components))
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
    return NDArray(dirs)
