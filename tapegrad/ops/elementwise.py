"""Elementwise primitives: unary math, binary arithmetic, comparisons, where, clip."""

from __future__ import annotations

import math
import operator

import numpy as np

from ..engine import ELEMENTWISE, LINEAR, defprim

LN2 = math.log(2.0)
LN10 = math.log(10.0)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

_erf_py = np.frompyfunc(math.erf, 1, 1)


def _erf_fallback(x):
    """erf element by element with math.erf (exact; used when SciPy is absent)."""
    x = np.asarray(x)
    r = np.asarray(_erf_py(x), dtype=x.dtype if x.dtype.kind == "f" else np.float64)
    return r[()] if r.ndim == 0 else r


_ERF: list = []


def _erf(x):
    # SciPy's vectorised erf when installed (imported on first use: it is slow to import)
    if not _ERF:
        try:
            from scipy.special import erf  # type: ignore
        except ImportError:  # pragma: no cover - depends on the environment
            erf = _erf_fallback
        _ERF.append(erf)
    return _ERF[0](x)


def _unary(name, impl, rule):
    """Elementwise unary primitive whose VJP is ``g * f'(x)`` (JVP: same with ``t``)."""
    return defprim(name, impl, [rule], ELEMENTWISE)


def _zero_grad(xp, g, ans, *args, **kw):
    return g * 0.0


# ---- unary ---------------------------------------------------------------------------
_unary("negative", operator.neg, lambda xp, g, ans, x: -g)
_unary("exp", np.exp, lambda xp, g, ans, x: g * ans)
_unary("expm1", np.expm1, lambda xp, g, ans, x: g * (ans + 1.0))
_unary("log", np.log, lambda xp, g, ans, x: g / x)
_unary("log1p", np.log1p, lambda xp, g, ans, x: g / (x + 1.0))
_unary("log2", np.log2, lambda xp, g, ans, x: g / (x * LN2))
_unary("log10", np.log10, lambda xp, g, ans, x: g / (x * LN10))
_unary("sin", np.sin, lambda xp, g, ans, x: g * xp.cos(x))
_unary("cos", np.cos, lambda xp, g, ans, x: -g * xp.sin(x))
_unary("tan", np.tan, lambda xp, g, ans, x: g * (ans * ans + 1.0))
_unary("arcsin", np.arcsin, lambda xp, g, ans, x: g * xp.rsqrt(1.0 - x * x))
_unary("arccos", np.arccos, lambda xp, g, ans, x: -g * xp.rsqrt(1.0 - x * x))
_unary("arctan", np.arctan, lambda xp, g, ans, x: g / (x * x + 1.0))
_unary("sinh", np.sinh, lambda xp, g, ans, x: g * xp.cosh(x))
_unary("cosh", np.cosh, lambda xp, g, ans, x: g * xp.sinh(x))
_unary("tanh", np.tanh, lambda xp, g, ans, x: g * (1.0 - ans * ans))
_unary("arcsinh", np.arcsinh, lambda xp, g, ans, x: g * xp.rsqrt(x * x + 1.0))
_unary("arccosh", np.arccosh, lambda xp, g, ans, x: g * xp.rsqrt(x * x - 1.0))
_unary("arctanh", np.arctanh, lambda xp, g, ans, x: g / (1.0 - x * x))
_unary("sqrt", np.sqrt, lambda xp, g, ans, x: g * 0.5 / ans)
_unary("rsqrt", lambda x: 1.0 / np.sqrt(x), lambda xp, g, ans, x: g * -0.5 * ans * ans * ans)
_unary("cbrt", np.cbrt, lambda xp, g, ans, x: g / (3.0 * ans * ans))
_unary(
    "rcbrt",
    lambda x: 1.0 / np.cbrt(x),
    lambda xp, g, ans, x: g * (-1.0 / 3.0) * (ans * ans) * (ans * ans),
)
_unary("square", np.square, lambda xp, g, ans, x: g * 2.0 * x)
_unary("reciprocal", np.reciprocal, lambda xp, g, ans, x: -g * ans * ans)
_unary("abs", np.abs, lambda xp, g, ans, x: g * xp.sign(x))
_unary(
    "sigmoid", lambda x: 0.5 * (np.tanh(0.5 * x) + 1.0), lambda xp, g, ans, x: g * ans * (1.0 - ans)
)
# relu's derivative at 0 is taken as 0 (the subgradient frameworks use)
_unary("relu", lambda x: np.maximum(x, 0), lambda xp, g, ans, x: g * (x > 0))
# softrelu(x) = log(1 + exp(x)), computed without overflow
_unary("softrelu", lambda x: np.logaddexp(0, x), lambda xp, g, ans, x: g * xp.sigmoid(x))
_unary("erf", _erf, lambda xp, g, ans, x: g * TWO_OVER_SQRT_PI * xp.exp(-(x * x)))
_unary(
    "leaky_relu",
    lambda x, slope=0.25: np.where(x > 0, x, x * slope),
    lambda xp, g, ans, x, slope=0.25: xp.where(x > 0, g, g * slope),
)

# piecewise-constant functions: derivative zero (recorded, so gradients are zeros, not errors)
for _name, _f in [
    ("sign", np.sign),
    ("floor", np.floor),
    ("ceil", np.ceil),
    ("round", np.round),
    ("rint", np.rint),
    ("trunc", np.trunc),
    ("fix", np.fix),
]:
    _unary(_name, _f, _zero_grad)

# ---- binary --------------------------------------------------------------------------
defprim("add", operator.add, [lambda xp, g, ans, x, y: g, lambda xp, g, ans, x, y: g], LINEAR)
defprim("subtract", operator.sub, [lambda xp, g, ans, x, y: g, lambda xp, g, ans, x, y: -g], LINEAR)
defprim(
    "multiply",
    operator.mul,
    [lambda xp, g, ans, x, y: g * y, lambda xp, g, ans, x, y: g * x],
    ELEMENTWISE,
)
defprim(
    "divide",
    operator.truediv,
    [lambda xp, g, ans, x, y: g / y, lambda xp, g, ans, x, y: -g * ans / y],
    ELEMENTWISE,
)


def _pow_dx(xp, g, ans, x, y):
    if type(y) is int and y == 2:  # x ** 2, the common case: one product fewer
        return g * (x + x)
    return g * y * xp.power(x, y - 1.0)


def _pow_dy(xp, g, ans, x, y):
    # only evaluated when the exponent itself needs a gradient; log(x) of x <= 0 is nan
    return g * ans * xp.log(x)


defprim("power", operator.pow, [_pow_dx, _pow_dy], ELEMENTWISE)
# ties split the gradient equally (any choice is a valid subgradient; this one is symmetric)
defprim(
    "maximum",
    np.maximum,
    [
        lambda xp, g, ans, x, y: g * ((x > y) + (x == y) * 0.5),
        lambda xp, g, ans, x, y: g * ((y > x) + (x == y) * 0.5),
    ],
    ELEMENTWISE,
)
defprim(
    "minimum",
    np.minimum,
    [
        lambda xp, g, ans, x, y: g * ((x < y) + (x == y) * 0.5),
        lambda xp, g, ans, x, y: g * ((y < x) + (x == y) * 0.5),
    ],
    ELEMENTWISE,
)
defprim(
    "mod",
    np.mod,
    [lambda xp, g, ans, x, y: g, lambda xp, g, ans, x, y: -g * xp.floor(x / y)],
    ELEMENTWISE,
)
defprim(
    "arctan2",
    np.arctan2,
    [
        lambda xp, g, ans, x, y: g * y / (x * x + y * y),
        lambda xp, g, ans, x, y: -g * x / (x * x + y * y),
    ],
    ELEMENTWISE,
)
defprim(
    "hypot",
    np.hypot,
    [lambda xp, g, ans, x, y: g * x / ans, lambda xp, g, ans, x, y: g * y / ans],
    ELEMENTWISE,
)


def _result_dtype(x, y):
    if isinstance(x, (np.ndarray, np.generic)):
        return x.dtype
    if isinstance(y, (np.ndarray, np.generic)):
        return y.dtype
    return np.float32


def _cmp(np_fn):
    # MXNet's comparisons return 0/1 in the inputs' dtype, not booleans
    return lambda x, y: np.asarray(np_fn(x, y)).astype(_result_dtype(x, y))


for _name, _f in [
    ("equal", np.equal),
    ("not_equal", np.not_equal),
    ("greater", np.greater),
    ("greater_equal", np.greater_equal),
    ("lesser", np.less),
    ("lesser_equal", np.less_equal),
    ("logical_and", np.logical_and),
    ("logical_or", np.logical_or),
    ("logical_xor", np.logical_xor),
    ("floor_divide", np.floor_divide),
]:
    defprim(_name, _f if _name == "floor_divide" else _cmp(_f))
defprim("logical_not", lambda x: np.asarray(np.logical_not(x)).astype(x.dtype))


def _where(cond, x, y):
    return np.where(cond, x, y)


defprim(
    "where",
    _where,
    [
        None,
        lambda xp, g, ans, c, x, y: xp.where(c, g, 0.0),
        lambda xp, g, ans, c, x, y: xp.where(c, 0.0, g),
    ],
    ELEMENTWISE,
)


def _clip_vjp(xp, g, ans, x, a_min=None, a_max=None):
    m = 1.0
    if a_min is not None:
        m = m * (x >= a_min)
    if a_max is not None:
        m = m * (x <= a_max)
    return g * m


defprim(
    "clip", lambda x, a_min=None, a_max=None: np.clip(x, a_min, a_max), [_clip_vjp], ELEMENTWISE
)

defprim(
    "cast",
    lambda x, dtype: np.asarray(x).astype(dtype),
    [lambda xp, g, ans, x, dtype: xp.cast(g, dtype=x.dtype)],
    LINEAR,
)
# identity with its own node: ``x.copy()`` and the fresh variables of the functional API
defprim("copy", lambda x: np.array(x, copy=True), [lambda xp, g, ans, x: g], LINEAR)
