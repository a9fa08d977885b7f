"""Elementwise primitives: unary math, binary arithmetic, comparisons, where, clip.

Derivatives at kinks follow PyTorch: ``relu'(0) = 0``, ``abs'(0) = sign(0) = 0``,
``leaky_relu'(0) = slope``, ``clip`` passes the gradient at its bounds (``a_min <= x <= a_max``),
``where`` sends it to the branch it selected, and ties of ``maximum``/``minimum`` split it
0.5/0.5 between the inputs (``torch.maximum`` does the same). Where the math is finite, so is
the gradient: ``d/dy x**y`` is 0 at ``x = 0`` (``y >= 0``), ``d/dx x**0`` is 0 everywhere.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..core.primitive import BILINEAR, JVP_IS_VJP, LINEAR, TAPE, ZERO, Formula, defprim
from ..taylor.derivs import (
    Derivs,
    elementwise,
    every,
    from_prime,
    log_derivs,
    mask_derivs,
    poly_in_y,
    power_derivs,
    reciprocal_derivs,
    scale,
    trig,
)
from ..taylor.jets import (
    coef,
    full,
    is_jet,
    j_add,
    j_bilinear,
    j_compose,
    j_divide,
    j_neg,
    j_recip,
    j_scale,
    j_square,
    j_unary,
    lift,
    ndim_of,
    primal,
    wrap,
)
from ..taylor.propagation import jvp_first

T = TAPE
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


def _unary(name, impl, rule, derivs, d, *, first=None, out=None, exposed=True):
    """An elementwise unary primitive: VJP ``g * f'(x)`` (the JVP is the same formula), its
    derivative sequence for Taylor mode, and how ``explain`` writes it."""
    return defprim(
        name,
        impl,
        [rule],
        JVP_IS_VJP,
        taylor=elementwise(derivs, first),
        explain=Formula(out or f"{name}({{0}})", d),
        nd=name if exposed else (),
        method=name if exposed else (),
    )


def _prime(fn):
    """Derivative sequence of an f whose f' is a composite of jet operations."""
    return lambda ctx, x, y, kw: from_prime(ctx, x, fn)


# ---- unary ---------------------------------------------------------------------------
_unary(
    "negative", operator.neg, lambda xp, g, ans, x: -g,
    lambda c, x, y, kw: Derivs(lambda m: -1.0 if m == 1 else None), "-1", out="-{0}",
)  # fmt: skip
_unary(
    "exp", np.exp, lambda xp, g, ans, x: g * ans,
    lambda c, x, y, kw: Derivs(lambda m: y), "exp({0})", first=lambda x, y: y,
)  # fmt: skip
_unary(
    "expm1", np.expm1, lambda xp, g, ans, x: g * (ans + 1.0),
    lambda c, x, y, kw: every(lambda: T.add(y, 1.0)), "exp({0})",
)  # fmt: skip
_unary(
    "log", np.log, lambda xp, g, ans, x: g / x,
    lambda c, x, y, kw: log_derivs(x), "1/{0}",
)  # fmt: skip
_unary(
    "log1p", np.log1p, lambda xp, g, ans, x: g / (x + 1.0),
    lambda c, x, y, kw: log_derivs(x, shift=1.0), "1/(1 + {0})",
)  # fmt: skip
_unary(
    "log2", np.log2, lambda xp, g, ans, x: g / (x * LN2),
    lambda c, x, y, kw: log_derivs(x, LN2), "1/({0}·ln 2)",
)  # fmt: skip
_unary(
    "log10", np.log10, lambda xp, g, ans, x: g / (x * LN10),
    lambda c, x, y, kw: log_derivs(x, LN10), "1/({0}·ln 10)",
)  # fmt: skip
_unary(
    "sin", np.sin, lambda xp, g, ans, x: g * xp.cos(x),
    lambda c, x, y, kw: trig("sin", x, y), "cos({0})", first=lambda x, y: T.cos(x),
)  # fmt: skip
_unary(
    "cos", np.cos, lambda xp, g, ans, x: -g * xp.sin(x),
    lambda c, x, y, kw: trig("cos", x, y), "-sin({0})",
    first=lambda x, y: T.negative(T.sin(x)),
)  # fmt: skip
_unary(
    "tan", np.tan, lambda xp, g, ans, x: g * (ans * ans + 1.0),
    lambda c, x, y, kw: poly_in_y([1, 0, 1], y), "(1 + tan({0})²)",
)  # fmt: skip
_unary(
    "sinh", np.sinh, lambda xp, g, ans, x: g * xp.cosh(x),
    lambda c, x, y, kw: trig("sinh", x, y), "cosh({0})",
)  # fmt: skip
_unary(
    "cosh", np.cosh, lambda xp, g, ans, x: g * xp.sinh(x),
    lambda c, x, y, kw: trig("cosh", x, y), "sinh({0})",
)  # fmt: skip
_unary(
    "tanh", np.tanh, lambda xp, g, ans, x: g * (1.0 - ans * ans),
    lambda c, x, y, kw: poly_in_y(
        [1, 0, -1], y,
        lambda: T.subtract(1.0, T.square(y)),
        lambda f1: T.multiply(T.multiply(y, f1), -2.0),
    ),
    "(1 - tanh({0})²)", first=lambda x, y: T.subtract(1.0, T.square(y)),
)  # fmt: skip
_unary(
    "sigmoid", lambda x: 0.5 * (np.tanh(0.5 * x) + 1.0),
    lambda xp, g, ans, x: g * ans * (1.0 - ans),
    lambda c, x, y, kw: poly_in_y(
        [0, 1, -1], y,
        lambda: T.multiply(y, T.subtract(1.0, y)),
        lambda f1: T.multiply(f1, T.add(T.multiply(y, -2.0), 1.0)),
    ),
    "σ({0})·(1 - σ({0}))", first=lambda x, y: T.multiply(y, T.subtract(1.0, y)), out="σ({0})",
)  # fmt: skip
_unary(
    "arcsin", np.arcsin, lambda xp, g, ans, x: g * xp.rsqrt(1.0 - x * x),
    _prime(lambda c, z: j_unary(c, "rsqrt", j_add(c, None, 1.0, j_square(c, z), -1.0))),
    "1/√(1 - {0}²)",
)  # fmt: skip
_unary(
    "arccos", np.arccos, lambda xp, g, ans, x: -g * xp.rsqrt(1.0 - x * x),
    _prime(
        lambda c, z: j_neg(c, j_unary(c, "rsqrt", j_add(c, None, 1.0, j_square(c, z), -1.0)))
    ),
    "-1/√(1 - {0}²)",
)  # fmt: skip
_unary(
    "arctan", np.arctan, lambda xp, g, ans, x: g / (x * x + 1.0),
    _prime(lambda c, z: j_recip(c, j_add(c, None, j_square(c, z), 1.0))), "1/(1 + {0}²)",
)  # fmt: skip
_unary(
    "arcsinh", np.arcsinh, lambda xp, g, ans, x: g * xp.rsqrt(x * x + 1.0),
    _prime(lambda c, z: j_unary(c, "rsqrt", j_add(c, None, j_square(c, z), 1.0))),
    "1/√({0}² + 1)",
)  # fmt: skip
_unary(
    "arccosh", np.arccosh, lambda xp, g, ans, x: g * xp.rsqrt(x * x - 1.0),
    _prime(lambda c, z: j_unary(c, "rsqrt", j_add(c, None, j_square(c, z), -1.0))),
    "1/√({0}² - 1)",
)  # fmt: skip
_unary(
    "arctanh", np.arctanh, lambda xp, g, ans, x: g / (1.0 - x * x),
    _prime(lambda c, z: j_recip(c, j_add(c, None, 1.0, j_square(c, z), -1.0))), "1/(1 - {0}²)",
)  # fmt: skip
_unary(
    "sqrt", np.sqrt, lambda xp, g, ans, x: g * 0.5 / ans,
    lambda c, x, y, kw: power_derivs(x, 0.5), "1/(2√{0})",
)  # fmt: skip
_unary(
    "rsqrt", lambda x: 1.0 / np.sqrt(x), lambda xp, g, ans, x: g * -0.5 * ans * ans * ans,
    lambda c, x, y, kw: power_derivs(x, -0.5), "-½·{0}^(-3/2)",
)  # fmt: skip
_unary(
    "cbrt", np.cbrt, lambda xp, g, ans, x: g / (3.0 * ans * ans),
    lambda c, x, y, kw: power_derivs(x, 1.0 / 3.0), "⅓·{0}^(-2/3)",
)  # fmt: skip
_unary(
    "rcbrt", lambda x: 1.0 / np.cbrt(x),
    lambda xp, g, ans, x: g * (-1.0 / 3.0) * (ans * ans) * (ans * ans),
    lambda c, x, y, kw: power_derivs(x, -1.0 / 3.0), "-⅓·{0}^(-4/3)",
)  # fmt: skip
_unary(
    "square", np.square, lambda xp, g, ans, x: g * 2.0 * x,
    lambda c, x, y, kw: Derivs(lambda m: scale(x, 2.0) if m == 1 else (2.0 if m == 2 else None)),
    "2{0}", out="{0}²",
)  # fmt: skip
_unary(
    "reciprocal", np.reciprocal, lambda xp, g, ans, x: -g * ans * ans,
    lambda c, x, y, kw: reciprocal_derivs(y), "-1/{0}²", out="1/{0}",
)  # fmt: skip
_unary(
    "abs", np.abs, lambda xp, g, ans, x: g * xp.sign(x),
    lambda c, x, y, kw: mask_derivs(np.sign(x._data)), "sign({0})",
)  # fmt: skip
_unary(
    "relu", lambda x: np.maximum(x, 0), lambda xp, g, ans, x: g * (x > 0),
    lambda c, x, y, kw: mask_derivs((x._data > 0).astype(x.dtype)), "[{0} > 0]",
)  # fmt: skip
# softrelu(x) = log(1 + exp(x)), computed without overflow
_unary(
    "softrelu", lambda x: np.logaddexp(0, x), lambda xp, g, ans, x: g * xp.sigmoid(x),
    _prime(lambda c, z: j_unary(c, "sigmoid", z)), "σ({0})",
    first=lambda x, y: T.sigmoid(x),
)  # fmt: skip
_unary(
    "erf", _erf, lambda xp, g, ans, x: g * TWO_OVER_SQRT_PI * xp.exp(-(x * x)),
    _prime(lambda c, z: j_scale(c, j_unary(c, "exp", j_neg(c, j_square(c, z))), TWO_OVER_SQRT_PI)),
    "(2/√π)·exp(-{0}²)",
)  # fmt: skip
_unary(
    "leaky_relu",
    lambda x, slope=0.25: np.where(x > 0, x, x * slope),
    lambda xp, g, ans, x, slope=0.25: xp.where(x > 0, g, g * slope),
    lambda c, x, y, kw: mask_derivs(
        np.where(x._data > 0, 1.0, kw.get("slope", 0.25)).astype(x.dtype)
    ),
    "[{0} > 0 or slope]", exposed=False,
)  # fmt: skip

# piecewise-constant functions: derivative identically zero (recorded, never run)
for _name, _f in [
    ("sign", np.sign),
    ("floor", np.floor),
    ("ceil", np.ceil),
    ("round", np.round),
    ("rint", np.rint),
    ("trunc", np.trunc),
    ("fix", np.fix),
]:
    defprim(_name, _f, [ZERO], ZERO, explain=Formula(None, "0"), nd=_name, method=_name)

# ---- binary --------------------------------------------------------------------------
_ADD = ("add", "broadcast_add", "broadcast_plus")
_SUB = ("subtract", "broadcast_sub", "broadcast_minus")
defprim(
    "add",
    operator.add,
    [lambda xp, g, ans, x, y: g, lambda xp, g, ans, x, y: g],
    LINEAR,
    taylor=lambda ctx, node, args, ans: j_add(ctx, ans, args[0], args[1]),
    explain=Formula("{0} + {1}", "1", "1"),
    nd=_ADD,
)
defprim(
    "subtract",
    operator.sub,
    [lambda xp, g, ans, x, y: g, lambda xp, g, ans, x, y: -g],
    LINEAR,
    taylor=lambda ctx, node, args, ans: j_add(ctx, ans, args[0], args[1], -1.0),
    explain=Formula("{0} - {1}", "1", "-1"),
    nd=_SUB,
)
defprim(
    "multiply",
    operator.mul,
    [lambda xp, g, ans, x, y: g * y, lambda xp, g, ans, x, y: g * x],
    BILINEAR,
    explain=Formula("{0}·{1}", "{1}", "{0}"),
    nd=("multiply", "broadcast_mul"),
)
defprim(
    "divide",
    operator.truediv,
    [lambda xp, g, ans, x, y: g / y, lambda xp, g, ans, x, y: -g * ans / y],
    JVP_IS_VJP,
    taylor=lambda ctx, node, args, ans: j_divide(ctx, ans, args[0], args[1]),
    explain=Formula("{0}/{1}", "1/{1}", "-{0}/{1}²"),
    nd=("divide", "broadcast_div", "true_divide"),
)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _pow_dx(xp, g, ans, x, y):
    if _is_number(y):
        if y == 2:  # x ** 2, the common case: one product fewer
            return g * (x + x)
        if y == 0:
            return g * 0.0
        return g * y * xp.power(x, y - 1.0)
    # y * x^(y-1) with the exponent 0 where y is 0 (x^-1 at x = 0 would make 0 * inf): the
    # next order uses this rule again, so every order stays finite there
    return g * y * xp.power(x, xp.where(y == 0, 1.0, y) - 1.0)


def _pow_dy(xp, g, ans, x, y):
    # g x^y log(x); at x = 0 the derivative is 0 (y > 0), log(0) = -inf would make it NaN
    if _is_number(x):
        return g * ans * (math.log(x) if x > 0 else (0.0 if x == 0 else math.nan))
    return g * ans * xp.log(xp.where(x == 0, 1.0, x))


@jvp_first
def _pow_rule(ctx, node, args, ans):
    x, p = args
    if not is_jet(p):
        return j_compose(ctx, ans, x, power_derivs(x[0], p))
    # x^p = exp(p log x) when the exponent depends on the input; a constant base 0 has
    # x^p = 0 for every p > 0 (log taken as 0 there, as in the VJP)
    if is_jet(x):
        lx = j_unary(ctx, "log", x)
    else:
        x0 = primal(x)
        x0 = x0._data if hasattr(x0, "_data") else np.asarray(x0)
        lx = wrap(np.log(np.where(x0 == 0, 1.0, x0)).astype(ans.dtype))
    z = j_bilinear(ctx, T.multiply(primal(p), primal(lx)), p, lx)
    return j_compose(ctx, ans, z, Derivs(lambda m: ans))


def _pow_out(node, a, out):
    y = node.args[1]
    p = np.asarray(y._data if hasattr(y, "_data") else y)
    if node.parents[1] is None and p.size == 1 and float(p) == int(float(p)) and 0 <= p < 10:
        sup = str(int(float(p))).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
        return f"{a[0]}{sup}"
    return f"{a[0]}^{a[1]}"


def _pow_d0(node, a, out):
    y = node.args[1]
    p = np.asarray(y._data if hasattr(y, "_data") else y)
    if node.parents[1] is None and p.size == 1:
        pv = float(p)
        if pv == 2:
            return f"2{a[0]}"
        e = pv - 1
        sup = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
        es = str(int(e)).translate(sup) if e == int(e) else f"^{e:g}"
        return f"{pv:g}·{a[0]}{es}"
    return f"{a[1]}·{a[0]}^({a[1]} - 1)"


defprim(
    "power",
    operator.pow,
    [_pow_dx, _pow_dy],
    JVP_IS_VJP,
    taylor=_pow_rule,
    explain=Formula(_pow_out, _pow_d0, "{out}·ln({0})"),
    nd=("power", "broadcast_power"),
    method="power",
)


def _minmax_mask(xp, x, y, first_wins):
    # 1 where the first input is the extreme, 0.5 on ties (PyTorch's convention), else 0
    return first_wins + (x == y) * 0.5


@jvp_first
def _minmax_rule(ctx, node, args, ans):
    a0, b0 = (primal(a) for a in args)
    ra = a0._data if hasattr(a0, "_data") else np.asarray(a0)
    rb = b0._data if hasattr(b0, "_data") else np.asarray(b0)
    win = (ra > rb) if node.prim.name == "maximum" else (ra < rb)
    m = (win + (ra == rb) * 0.5).astype(ans.dtype)
    terms = [j_bilinear(ctx, ans, args[0], wrap(m))] if is_jet(args[0]) else []
    if is_jet(args[1]):
        terms.append(j_bilinear(ctx, ans, args[1], wrap((1.0 - m).astype(m.dtype))))
    if len(terms) == 1:
        return terms[0]
    return j_add(ctx, ans, terms[0], terms[1])


defprim(
    "maximum",
    np.maximum,
    [
        lambda xp, g, ans, x, y: g * _minmax_mask(xp, x, y, x > y),
        lambda xp, g, ans, x, y: g * _minmax_mask(xp, y, x, y > x),
    ],
    JVP_IS_VJP,
    taylor=_minmax_rule,
    explain=Formula(None, "[{0} ≥ {1}]", "[{1} ≥ {0}]"),
    nd=("maximum", "broadcast_maximum"),
    method="maximum",
)
defprim(
    "minimum",
    np.minimum,
    [
        lambda xp, g, ans, x, y: g * _minmax_mask(xp, x, y, x < y),
        lambda xp, g, ans, x, y: g * _minmax_mask(xp, y, x, y < x),
    ],
    JVP_IS_VJP,
    taylor=_minmax_rule,
    explain=Formula(None, "[{0} ≤ {1}]", "[{1} ≤ {0}]"),
    nd=("minimum", "broadcast_minimum"),
    method="minimum",
)


@jvp_first
def _mod_rule(ctx, node, args, ans):
    a0, b0 = (primal(a) for a in args)
    ra = a0._data if hasattr(a0, "_data") else np.asarray(a0)
    rb = b0._data if hasattr(b0, "_data") else np.asarray(b0)
    q = wrap(np.floor(ra / rb).astype(ans.dtype))
    if not is_jet(args[1]):
        return j_add(ctx, ans, args[0], 0.0)
    return j_add(ctx, ans, args[0], j_bilinear(ctx, T.multiply(b0, q), args[1], q), -1.0)


defprim(
    "mod",
    np.mod,
    [lambda xp, g, ans, x, y: g, lambda xp, g, ans, x, y: -g * xp.floor(x / y)],
    JVP_IS_VJP,
    taylor=_mod_rule,
    nd=("modulo", "broadcast_mod"),
)


def _arctan2_rule(ctx, node, args, ans):
    # arctan2(a, b) = s * arctan(u / v) + a piecewise constant, with (u, v) = (a, b) where
    # |b| >= |a| (s = 1) and (b, a) elsewhere (s = -1): |u/v| <= 1, v != 0 off the origin
    a, b = args
    ra, rb = (
        np.asarray(primal(z)._data if hasattr(primal(z), "_data") else primal(z)) for z in args
    )
    keep = np.abs(rb) >= np.abs(ra)
    dt = ans.dtype

    def pick(p, q):
        out = [T.where(keep, primal(p), primal(q))]
        for k in range(1, ctx.K + 1):
            pk, qk = coef(p, k), coef(q, k)
            if pk is None and qk is None:
                out.append(None)
                continue
            nd = ndim_of(ans)
            c = T.where(
                keep,
                lift(ctx, pk, nd) if pk is not None else 0.0,
                lift(ctx, qk, nd) if qk is not None else 0.0,
            )
            out.append(full(ctx, c, k, ans.shape))
        return out

    u, v = pick(a, b), pick(b, a)
    z = j_unary(ctx, "arctan", j_divide(ctx, T.divide(u[0], v[0]), u, v))
    s = wrap(np.where(keep, 1.0, -1.0).astype(dt))
    return [ans] + [None if c is None else T.multiply(c, s) for c in z[1:]]


defprim(
    "arctan2",
    np.arctan2,
    [
        lambda xp, g, ans, x, y: g * y / (x * x + y * y),
        lambda xp, g, ans, x, y: -g * x / (x * x + y * y),
    ],
    JVP_IS_VJP,
    taylor=_arctan2_rule,
    explain=Formula(None, "{1}/({0}² + {1}²)", "-{0}/({0}² + {1}²)"),
    nd="arctan2",
)


def _hypot_rule(ctx, node, args, ans):
    a, b = args
    sa = j_square(ctx, a) if is_jet(a) else T.multiply(primal(a), primal(a))
    sb = j_square(ctx, b) if is_jet(b) else T.multiply(primal(b), primal(b))
    return j_unary(ctx, "sqrt", j_add(ctx, None, sa, sb), ans=ans)


defprim(
    "hypot",
    np.hypot,
    [lambda xp, g, ans, x, y: g * x / ans, lambda xp, g, ans, x, y: g * y / ans],
    JVP_IS_VJP,
    taylor=jvp_first(_hypot_rule),
    explain=Formula(None, "{0}/{out}", "{1}/{out}"),
    nd=("hypot", "broadcast_hypot"),
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


# comparisons and floor division: derivative identically zero (recorded, never run)
for _name, _f, _out in [
    ("equal", np.equal, "[{0} = {1}]"),
    ("not_equal", np.not_equal, "[{0} ≠ {1}]"),
    ("greater", np.greater, "[{0} > {1}]"),
    ("greater_equal", np.greater_equal, "[{0} ≥ {1}]"),
    ("lesser", np.less, "[{0} < {1}]"),
    ("lesser_equal", np.less_equal, "[{0} ≤ {1}]"),
    ("logical_and", np.logical_and, None),
    ("logical_or", np.logical_or, None),
    ("logical_xor", np.logical_xor, None),
]:
    defprim(
        _name,
        _cmp(_f),
        [ZERO, ZERO],
        ZERO,
        explain=Formula(_out, "0", "0"),
        nd=(_name, "broadcast_" + _name),
    )
defprim("floor_divide", np.floor_divide, [ZERO, ZERO], ZERO, explain=Formula(None, "0", "0"))
defprim(
    "logical_not",
    lambda x: np.asarray(np.logical_not(x)).astype(x.dtype),
    [ZERO],
    ZERO,
    explain=Formula(None, "0"),
)


def _where(cond, x, y):
    return np.where(cond, x, y)


def _where_rule(ctx, node, args, ans):
    cond = args[0]
    nd = ndim_of(ans)
    out = [ans]
    for k in range(1, ctx.K + 1):
        xk, yk = coef(args[1], k), coef(args[2], k)
        if xk is None and yk is None:
            out.append(None)
            continue
        c = T.where(
            primal(cond),
            lift(ctx, xk, nd) if xk is not None else 0.0,
            lift(ctx, yk, nd) if yk is not None else 0.0,
        )
        out.append(full(ctx, c, k, ans.shape))
    return out


defprim(
    "where",
    _where,
    [
        None,
        lambda xp, g, ans, c, x, y: xp.where(c, g, 0.0),
        lambda xp, g, ans, c, x, y: xp.where(c, 0.0, g),
    ],
    JVP_IS_VJP,
    taylor=jvp_first(_where_rule),
    explain=Formula("{1} if {0} else {2}", "0", "[{0}]", "[not {0}]"),
)


def _clip_vjp(xp, g, ans, x, a_min=None, a_max=None):
    m = 1.0
    if a_min is not None:
        m = m * (x >= a_min)
    if a_max is not None:
        m = m * (x <= a_max)
    return g * m


@jvp_first
def _clip_rule(ctx, node, args, ans):
    x0 = primal(args[0])._data
    m = np.ones_like(x0)
    lo, hi = node.kwargs.get("a_min"), node.kwargs.get("a_max")
    if lo is not None:
        m = m * (x0 >= lo)
    if hi is not None:
        m = m * (x0 <= hi)
    return j_bilinear(ctx, ans, args[0], wrap(m.astype(x0.dtype)))


defprim(
    "clip",
    lambda x, a_min=None, a_max=None: np.clip(x, a_min, a_max),
    [_clip_vjp],
    JVP_IS_VJP,
    taylor=_clip_rule,
    explain=Formula(None, "[a_min ≤ {0} ≤ a_max]"),
)


def _cast_rule(ctx, node, args, ans):
    dt = node.kwargs["dtype"]
    return [ans] + [None if c is None else T.cast(c, dtype=dt) for c in args[0][1:]]


defprim(
    "cast",
    lambda x, dtype: np.asarray(x).astype(dtype),
    [lambda xp, g, ans, x, dtype: xp.cast(g, dtype=x.dtype)],
    LINEAR,
    taylor=_cast_rule,
    explain=Formula("{0}", "1"),
)
# identity whose derivative is zero: ``stop_gradient``/``BlockGrad``, and ``detach()`` in a
# function being compiled (the value is recomputed each call, the gradient stays blocked)
defprim("stop_gradient", lambda x: x, [ZERO], ZERO, explain=Formula("{0}", "0"))
# identity with its own node: ``x.copy()``
defprim(
    "copy",
    lambda x: np.array(x, copy=True),
    [lambda xp, g, ans, x: g],
    LINEAR,
    taylor=lambda ctx, node, args, ans: [ans] + list(args[0][1:]),
    explain=Formula("{0}", "1"),
)
