"""Derivative sequences of elementwise functions, and the jet rule built from one.

An elementwise primitive declares how to get ``f^(m)(x0)``, its m-th derivative at the
primal, as a :class:`Derivs` (computed lazily and cached, with recorded operations); the rule
:func:`elementwise` then maps the input's jet to the output's by Faa di Bruno's formula
(``jets.j_compose``). Helpers cover the common shapes: ``f' = g(f)`` with ``g`` a polynomial
(tanh, sigmoid, exp, tan: :func:`poly_in_y`), periodic derivatives (sin, cos:
:func:`cycle`), powers (:func:`power_derivs`), and functions whose derivative is itself a
composite of jet operations (arctan, erf: :func:`from_prime`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.primitive import TAPE
from .jets import JetContext, _is_arr, dtype_of, j_compose, primal, scale, wrap

T = TAPE

__all__ = [
    "Derivs",
    "elementwise",
    "every",
    "poly_in_y",
    "cycle",
    "trig",
    "log_derivs",
    "reciprocal_derivs",
    "power_derivs",
    "mask_derivs",
    "from_prime",
    "const",
]


class Derivs:
    """Lazily computed, cached derivatives ``f^(m)(x0)`` of a unary function."""

    def __init__(self, fn: Callable[[int], Any]) -> None:
        self.fn = fn
        self.memo: dict = {}

    def __call__(self, m: int) -> Any:
        if m not in self.memo:
            self.memo[m] = self.fn(m)
        return self.memo[m]


def horner(coeffs: list, y: Any) -> Any:
    """Evaluate the polynomial ``sum coeffs[i] y^i`` (integer coefficients) with recorded ops;
    ``None`` for the zero polynomial."""
    while coeffs and coeffs[-1] == 0:
        coeffs = coeffs[:-1]
    if not coeffs:
        return None
    acc: Any = float(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = scale(y, acc) if not _is_arr(acc) else T.multiply(acc, y)
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


def poly_in_y(
    g: list,
    y: Any,
    first: Callable[[], Any] | None = None,
    second: Callable[[Any], Any] | None = None,
) -> Derivs:
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
        return horner(polys[m], y)

    d = Derivs(fn)
    return d


def cycle(vals: list) -> Derivs:
    """Derivatives that cycle with period len(vals): vals[(m - 1) % p] (thunks)."""
    return Derivs(lambda m: vals[(m - 1) % len(vals)]())


def power_derivs(x0: Any, p: Any) -> Derivs:
    """``d^m/dx^m x^p = p (p-1) ... (p-m+1) x^(p-m)`` (zero for integer p < m)."""
    scalar = np.ndim(p) == 0 and not _is_arr(p)

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
            return scale(T.power(x0, pf - m), c)
        pr = primal(p)
        pr = pr._data if _is_arr(pr) else np.asarray(pr)
        c = np.ones_like(pr, dtype=dtype_of(x0))
        for j in range(m):
            c = c * (pr - j)
        # where the coefficient vanishes (an integer p < m) the power is taken as x^0: a term
        # 0 * x^(p-m) would be 0 * inf at x = 0
        e = np.where(c == 0, 0.0, pr - m)
        return T.multiply(T.power(x0, wrap(e)), wrap(c.astype(dtype_of(x0))))

    return Derivs(fn)


def const(a: Any) -> Any:
    return wrap(a)


def from_prime(ctx: JetContext, x0: Any, prime: Callable[[JetContext, list], list]) -> Derivs:
    """Derivatives of an f whose derivative g = f' is a composite of jet-able operations:
    ``f^(m)(x0) = g^(m-1)(x0)``, read off the jet of ``g`` along the direction 1."""
    K = ctx.K
    memo: dict = {}

    def fn(m: int) -> Any:
        if "g" not in memo:
            sub = JetContext(max(K - 1, 1), 1)
            xj = [x0, wrap(np.ones(tuple(x0.shape), dtype=dtype_of(x0)))] + [None] * (sub.K - 1)
            memo["g"] = prime(sub, xj)
        g = memo["g"]
        return g[m - 1] if m - 1 < len(g) else None

    return Derivs(fn)


class elementwise:
    """The jet rule of an elementwise unary primitive from its derivative sequence.

    Args:
        derivs: ``derivs(ctx, x0, y0, kwargs) -> Derivs`` (``x0``/``y0`` the primal input
            and output).
        first: optional ``first(x0, y0) -> f'(x0)`` for order 1 with one direction: one
            recorded product instead of the general machinery.
    """

    __slots__ = ("derivs", "first")

    def __init__(self, derivs: Callable, first: Callable | None = None) -> None:
        self.derivs = derivs
        self.first = first

    def __call__(self, ctx: JetContext, node: Any, args: list, ans: Any) -> list:
        x = args[0]
        if ctx.K == 1 and self.first is not None:
            x1 = x[1]
            return [ans, None if x1 is None else T.multiply(x1, self.first(x[0], ans))]
        return j_compose(ctx, ans, x, self.derivs(ctx, primal(x), ans, node.kwargs))


def every(thunk: Callable[[], Any]) -> Derivs:
    """The same value for every order (``exp``: ``f^(m) = exp``), computed once."""
    memo: list = []

    def fn(m: int) -> Any:
        if not memo:
            memo.append(thunk())
        return memo[0]

    return Derivs(fn)


_TRIG = {
    "sin": ["cos", "-sin", "-cos", "sin"],
    "cos": ["-sin", "-cos", "sin", "cos"],
    "sinh": ["cosh", "sinh"],
    "cosh": ["sinh", "cosh"],
}


def trig(name: str, x0: Any, y0: Any) -> Derivs:
    """Derivatives of sin, cos, sinh or cosh at ``x0`` (``y0`` its value): a cycle of
    sin/cos (sinh/cosh) values and their negatives, each computed once."""
    memo: dict = {name: y0}

    def get(key: str) -> Any:
        if key not in memo:
            if key.startswith("-"):
                memo[key] = T.negative(get(key[1:]))
            else:
                memo[key] = getattr(T, key)(x0)
        return memo[key]

    return cycle([lambda k=k: get(k) for k in _TRIG[name]])


def log_derivs(x0: Any, base_log: float = 1.0, shift: float = 0.0) -> Derivs:
    """Derivatives of ``log(x + shift) / base_log``: ``(-1)^(m-1) (m-1)! / (x+shift)^m``."""
    powers: list = []

    def fn(m: int) -> Any:
        if not powers:
            powers.append(T.reciprocal(T.add(x0, shift) if shift else x0))
        while len(powers) < m:
            powers.append(T.multiply(powers[-1], powers[0]))
        return scale(powers[m - 1], (-1) ** (m - 1) * math.factorial(m - 1) / base_log)

    return Derivs(fn)


def reciprocal_derivs(y0: Any) -> Derivs:
    """Derivatives of ``1/x`` from ``y0 = 1/x0``: ``(-1)^m m! y0^(m+1)``."""
    pw: list = [y0]

    def fn(m: int) -> Any:
        while len(pw) < m + 1:
            pw.append(T.multiply(pw[-1], y0))
        return scale(pw[m], (-1) ** m * math.factorial(m))

    return Derivs(fn)


def mask_derivs(mask: Any) -> Derivs:
    """A piecewise-linear function: ``f' = mask`` (a constant), higher derivatives zero."""
    return Derivs(lambda m: const(mask) if m == 1 else None)
