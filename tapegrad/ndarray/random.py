"""``mx.nd.random`` (also ``mx.random``) and MXNet's sampling operators of ``mx.nd``.

Three families, as in MXNet 1.9:

* ``nd.random.uniform/normal/randn/randint/poisson/exponential/gamma/negative_binomial/
  generalized_negative_binomial(params..., shape, dtype, ctx, out)``: the parameters are
  numbers (``shape`` samples; one sample, shape ``(1,)``, without ``shape`` and ``out``) or
  NDArrays of one shape ``S`` (``S + shape`` samples: ``shape`` draws for each element);
  ``multinomial``, ``shuffle`` and the ``*_like`` samplers (the shape and dtype of ``data``).
* ``nd.random_uniform``, ``nd.random_normal`` (also ``nd.uniform``, ``nd.normal``),
  ``nd.random_randint/poisson/exponential/gamma/negative_binomial/
  generalized_negative_binomial``: numbers for parameters, and ``shape`` is required.
  ``random_exponential`` takes the rate ``lam``, ``random.exponential`` the scale.
* ``nd.sample_uniform/normal/gamma/exponential/poisson/negative_binomial/
  generalized_negative_binomial/multinomial``: NDArrays for parameters.

Every draw comes from :func:`tapegrad.random.generator` (``mx.random.seed`` makes a run
reproducible) through one impure primitive, so a compiled (hybridized) function draws new
numbers at each call; the samples have no gradient with respect to the parameters (MXNet's
samplers have none either). ``multinomial(..., get_prob=True)`` also returns the log
probabilities of the draws, differentiable with respect to ``data`` (MXNet's REINFORCE
use). Sampling a multinomial follows MXNet: the probabilities are not renormalized.

>>> import tapegrad as mx
>>> mx.random.seed(0)
>>> mx.nd.random.normal(shape=(2, 3)).shape, mx.nd.random.randint(0, 5).dtype
((2, 3), <class 'numpy.int32'>)
>>> mx.nd.random.multinomial(mx.nd.array([0.0, 1.0]))
<BLANKLINE>
[1]
<NDArray 1 @cpu(0)>
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..base import ArgumentError, ArgumentValueError, DTypeError, ShapeError, fmt_shape
from ..core import TAPE, ZERO, Formula, defprim
from ..random import generator, seed
from ._checks import _bad_nd, _ctx, _flag, _shape_arg, _short, _unknown, _write_out
from .ndarray import NDArray

T = TAPE

_FLOATS = ("float16", "float32", "float64")
_INTS = ("int32", "int64")
_NUMBER = (int, float, np.integer, np.floating)


# ---------------------------------------------------------------------------- the draws


def _expand(p: np.ndarray, extra: int) -> np.ndarray:
    """A parameter array with ``extra`` trailing axes of length 1 (it broadcasts over the
    draws of each element)."""
    return p.reshape(p.shape + (1,) * extra) if extra else p


def _gen_neg_binomial(g: np.random.Generator, mu: Any, alpha: Any, size: tuple) -> np.ndarray:
    # MXNet's sampler: Poisson(Gamma(1/alpha, mu*alpha)), and Poisson(mu) where alpha == 0
    mu, alpha = np.broadcast_arrays(np.asarray(mu, np.float64), np.asarray(alpha, np.float64))
    mu, alpha = np.broadcast_to(mu, size), np.broadcast_to(alpha, size)
    zero = alpha == 0
    a = np.where(zero, 1.0, alpha)
    lam = np.where(zero, mu, g.gamma(1.0 / a, mu * a))
    return g.poisson(lam)


#: dist -> (parameter names, draw(generator, params, size))
_DISTS: dict = {
    "uniform": (("low", "high"), lambda g, p, n: g.uniform(p[0], p[1], n)),
    "normal": (("loc", "scale"), lambda g, p, n: g.normal(p[0], p[1], n)),
    "gamma": (("alpha", "beta"), lambda g, p, n: g.gamma(p[0], p[1], n)),
    "exponential": (("lam",), lambda g, p, n: g.exponential(1.0 / np.asarray(p[0]), n)),
    "poisson": (("lam",), lambda g, p, n: g.poisson(p[0], n)),
    "negative_binomial": (("k", "p"), lambda g, p, n: g.negative_binomial(p[0], p[1], n)),
    "generalized_negative_binomial": (
        ("mu", "alpha"),
        lambda g, p, n: _gen_neg_binomial(g, p[0], p[1], n),
    ),
    "randint": (("low", "high"), lambda g, p, n: g.integers(p[0], p[1], n)),
}


def _multinomial_draw(g: np.random.Generator, data: np.ndarray, n: int) -> np.ndarray:
    """``n`` class indices per distribution in the last axis of ``data`` (MXNet's kernel:
    the first class whose cumulative probability reaches a uniform draw in [0, 1), without
    renormalizing; a draw beyond a total below 1 takes the last class)."""
    k = data.shape[-1]
    cum = np.cumsum(data.reshape(-1, k), axis=1, dtype=np.float64)
    u = g.random((cum.shape[0], n))
    idx = np.empty(u.shape, dtype=np.int64)
    for i in range(cum.shape[0]):
        idx[i] = np.searchsorted(cum[i], u[i], side="left")
    np.minimum(idx, k - 1, out=idx)
    return idx


def _draw(*inputs: Any, dist: str, shape: tuple, dtype: np.dtype, consts: tuple = ()) -> Any:
    """The samples: ``inputs`` are the parameter arrays (or ``data`` for 'multinomial' and
    'shuffle'), ``consts`` the parameters given as numbers."""
    g = generator()
    if dist == "multinomial":
        (data,) = inputs
        n = int(np.prod(shape)) if shape else 1
        return _multinomial_draw(g, np.asarray(data), n).astype(dtype)
    if dist == "permutation":
        return g.permutation(shape[0]).astype(dtype)
    if inputs:
        params = [_expand(np.asarray(p), len(shape)) for p in inputs]
        size = np.shape(inputs[0]) + shape
    else:
        params, size = list(consts), shape
    with np.errstate(all="ignore"):
        out = _DISTS[dist][1](g, params, size)
    return np.asarray(out).astype(dtype, copy=False)


# impure: a compiled function draws anew at every call; no derivative for the parameters
defprim(
    "random_draw",
    _draw,
    ZERO,
    impure=True,
    explain=Formula("random({0})", "0"),
)


# ------------------------------------------------------------------------- arguments


def _dtype(fn: str, dtype: Any, allowed: tuple, default: str) -> np.dtype:
    if dtype is None:
        return np.dtype(default)
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.name not in allowed:
        raise DTypeError(
            f"{fn}: dtype={dtype!r} is not one this sampler draws. Fix: use one of "
            f"{', '.join(repr(a) for a in allowed)}."
        )
    return dt


def _sample_shape(fn: str, shape: Any) -> tuple:
    return () if shape is None else _shape_arg(fn, shape)


def _check_values(fn: str, dist: str, names: tuple, values: list) -> None:
    """MXNet's checks of numeric parameters (NumPy would accept some of them)."""
    v = dict(zip(names, values))
    bad = None
    if dist == "uniform" and v["low"] > v["high"]:
        bad = f"low={v['low']} > high={v['high']}", "pass low <= high"
    elif dist == "randint" and v["low"] >= v["high"]:
        bad = f"low={v['low']} >= high={v['high']}", "pass low < high"
    elif dist == "normal" and not v["scale"] >= 0:
        bad = f"scale={v['scale']}", "the standard deviation must be >= 0"
    elif dist == "gamma" and not (v["alpha"] > 0 and v["beta"] > 0):
        bad = f"alpha={v['alpha']}, beta={v['beta']}", "both must be > 0"
    elif dist in ("exponential", "poisson") and not v["lam"] >= 0:
        bad = f"lam={v['lam']}", "the rate must be >= 0"
    elif dist == "negative_binomial" and not (v["k"] > 0 and 0 <= v["p"] <= 1):
        bad = f"k={v['k']}, p={v['p']}", "pass k > 0 and p in [0, 1]"
    elif dist == "generalized_negative_binomial" and not (v["mu"] >= 0 and v["alpha"] >= 0):
        bad = f"mu={v['mu']}, alpha={v['alpha']}", "pass mu >= 0 and alpha >= 0"
    if bad is not None:
        raise ArgumentValueError(f"{fn}: invalid parameters {bad[0]}. Fix: {bad[1]}.")


def _gpu_check(fn: str, ctx: Any) -> None:
    _ctx(fn, ctx)  # (a GPU raises)


def _sample(
    fn: str,
    dist: str,
    params: tuple,
    shape: Any,
    dtype: Any,
    ctx: Any,
    out: Any,
    allowed: tuple = _FLOATS,
    default: str = "float32",
    arrays: Any = None,
    names: tuple = (),
) -> NDArray:
    """MXNet's ``_random_helper``: numbers or NDArrays for ``params``; ``arrays`` True only
    NDArrays (``sample_*``), False only numbers (``random_*``), None either."""
    names = names or _DISTS[dist][0]
    first = params[0]
    if out is not None and type(out) is not NDArray:
        out = _bad_nd(fn, "out", out)
    if dtype is None and out is not None:
        dtype = np.dtype(out._data.dtype).name
    dt = _dtype(fn, dtype, allowed, default)
    if isinstance(first, NDArray) and arrays is not False:
        for n, p in zip(names, params):
            if not isinstance(p, NDArray):
                raise ArgumentError(
                    f"{fn}: the distribution's parameters must all be NDArrays or all numbers, "
                    f"got {names[0]} an NDArray and {n} {_short(p)}. Fix: pass "
                    f"nd.full_like({names[0]}, {n}) or numbers for all."
                )
            if p.shape != first.shape:
                raise ShapeError(
                    f"{fn}: the parameters must have one shape, got {names[0]} of shape "
                    f"{fmt_shape(first.shape)} and {n} of shape {fmt_shape(p.shape)}. Fix: "
                    "broadcast them to one shape first (nd.broadcast_to)."
                )
        _gpu_check(fn, ctx)
        shp = _sample_shape(fn, shape)
        r = T.random_draw(*params, dist=dist, shape=shp, dtype=dt)
        return r if out is None else _write_out(fn, out, r)
    if arrays is True:
        raise ArgumentError(
            f"{fn}: {names[0]} must be an NDArray (one distribution per element), got "
            f"{_short(first)}. Fix: pass NDArrays, or use nd.random.{dist}(...) for numbers."
        )
    for n, p in zip(names, params):
        if not isinstance(p, _NUMBER) or isinstance(p, bool):
            kind = "an NDArray or a number" if arrays is None else "a number"
            raise ArgumentError(
                f"{fn}: {n} must be {kind}, got {_short(p)}. Fix: pass e.g. "
                f"{n}={1 if n != 'low' else 0}."
            )
        if isinstance(p, (float, np.floating)) and not np.isfinite(p):
            raise ArgumentValueError(f"{fn}: {n}={p} is not finite. Fix: pass a finite number.")
    _check_values(fn, dist, names, list(params))
    _gpu_check(fn, ctx)
    if shape is None:
        if arrays is False and out is None:
            raise ArgumentError(
                f"{fn}: shape is required (MXNet's operator has no default shape). Fix: pass "
                "e.g. shape=(2, 3)."
            )
        shp = (1,) if out is None else out.shape
    else:
        shp = _shape_arg(fn, shape)
    r = T.random_draw(dist=dist, shape=shp, dtype=dt, consts=tuple(params))
    return r if out is None else _write_out(fn, out, r)


# ------------------------------------------------------------------- nd.random.<name>


def uniform(
    low: Any = 0,
    high: Any = 1,
    shape: Any = None,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Samples from U[low, high) (float32 by default)."""
    if kwargs:
        raise _unknown(uniform, kwargs)
    return _sample("uniform", "uniform", (low, high), shape, dtype, ctx, out)


def normal(
    loc: Any = 0,
    scale: Any = 1,
    shape: Any = None,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Samples from N(loc, scale^2) (float32 by default)."""
    if kwargs:
        raise _unknown(normal, kwargs)
    return _sample("normal", "normal", (loc, scale), shape, dtype, ctx, out)


def randn(
    *shape: int,
    loc: Any = 0,
    scale: Any = 1,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Normal samples of shape ``shape`` (``randn(2, 3)``; one sample without a shape)."""
    if kwargs:
        raise _unknown(randn, kwargs)
    return _sample("randn", "normal", (loc, scale), shape or None, dtype, ctx, out)


def poisson(
    lam: Any = 1,
    shape: Any = None,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Poisson samples of rate ``lam`` (whole numbers, float32 by default)."""
    if kwargs:
        raise _unknown(poisson, kwargs)
    return _sample("poisson", "poisson", (lam,), shape, dtype, ctx, out)


def exponential(
    scale: Any = 1,
    shape: Any = None,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Exponential samples of mean ``scale`` (the rate is ``1 / scale``)."""
    if kwargs:
        raise _unknown(exponential, kwargs)
    if isinstance(scale, NDArray):
        lam = 1.0 / scale
    elif isinstance(scale, _NUMBER) and not isinstance(scale, bool):
        if not scale > 0:
            raise ArgumentValueError(
                f"exponential: scale={scale}, but the mean must be > 0. Fix: pass scale > 0."
            )
        lam = 1.0 / scale
    else:
        lam = scale  # (refused below, named as the parameter)
    return _sample("exponential", "exponential", (lam,), shape, dtype, ctx, out)


def gamma(
    alpha: Any = 1,
    beta: Any = 1,
    shape: Any = None,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Gamma samples of shape ``alpha`` and scale ``beta``."""
    if kwargs:
        raise _unknown(gamma, kwargs)
    return _sample("gamma", "gamma", (alpha, beta), shape, dtype, ctx, out)


def negative_binomial(
    k: Any = 1,
    p: Any = 1,
    shape: Any = None,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Failures before the ``k``-th success, with success probability ``p`` (MXNet's names:
    ``k`` the limit of unsuccessful experiments, ``p`` the failure probability)."""
    if kwargs:
        raise _unknown(negative_binomial, kwargs)
    return _sample("negative_binomial", "negative_binomial", (k, p), shape, dtype, ctx, out)


def generalized_negative_binomial(
    mu: Any = 1,
    alpha: Any = 1,
    shape: Any = None,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Negative binomial samples of mean ``mu`` and dispersion ``alpha`` (Poisson for
    ``alpha = 0``)."""
    if kwargs:
        raise _unknown(generalized_negative_binomial, kwargs)
    params = (mu, alpha)
    return _sample(
        "generalized_negative_binomial",
        "generalized_negative_binomial",
        params,
        shape,
        dtype,
        ctx,
        out,
    )


def randint(
    low: Any,
    high: Any,
    shape: Any = None,
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Integers uniform in [low, high) (int32 by default; 'int64' allowed)."""
    if kwargs:
        raise _unknown(randint, kwargs)
    for n, v in (("low", low), ("high", high)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise ArgumentError(
                f"randint: {n} must be an int, got {_short(v)}. Fix: pass integers, e.g. "
                "randint(0, 10)."
            )
    params = (int(low), int(high))
    return _sample("randint", "randint", params, shape, dtype, ctx, out, _INTS, "int32")


def _multinomial(
    fn: str, data: Any, shape: Any, get_prob: Any, out: Any, dtype: Any
) -> NDArray | list:
    if type(data) is not NDArray:
        data = _bad_nd(fn, "data", data)
    if data.ndim == 0 or data.shape[-1] == 0:
        raise ShapeError(
            f"{fn}: data of shape {fmt_shape(data.shape)} holds no distribution: its last axis "
            "lists the probabilities of the classes. Fix: pass e.g. nd.array([0.2, 0.8])."
        )
    if np.dtype(data.dtype).kind != "f":
        raise DTypeError(
            f"{fn}: data has dtype {np.dtype(data.dtype)}; probabilities are floats. Fix: "
            "data.astype('float32')."
        )
    get_prob = _flag(fn, "get_prob", get_prob)
    allowed = ("int32", "int64", "uint8", "float16", "float32", "float64")
    dt = _dtype(fn, dtype, allowed, "int32")
    shp = _sample_shape(fn, shape)
    lead = data.shape[:-1]
    idx = T.random_draw(data, dist="multinomial", shape=shp, dtype=np.dtype(np.int64))
    oshape = lead + shp if (lead or shp) else (1,)
    idx = T.reshape(idx, shape=oshape)
    sample = idx if dt == np.int64 else T.cast(idx, dtype=dt)
    if out is not None:
        sample = _write_out(fn, out, sample)
    if not get_prob:
        return sample
    # log p of each draw, differentiable with respect to data: gather along the last axis
    k = data.shape[-1]
    flat = T.reshape(data, shape=(-1, k))
    rows = np.repeat(np.arange(flat.shape[0]), max(1, int(np.prod(shp)) if shp else 1))
    picked = T.getitem(flat, key=(rows, idx.asnumpy().reshape(-1)))
    return [sample, T.reshape(T.log(picked), shape=oshape)]


def multinomial(
    data: Any,
    shape: Any = None,
    get_prob: Any = False,
    out: Any = None,
    dtype: Any = "int32",
    **kwargs: Any,
) -> NDArray | list:
    """Class indices drawn from the distributions in the last axis of ``data``: shape
    ``data.shape[:-1] + shape`` (``(1,)`` for one distribution and no ``shape``). With
    ``get_prob``, ``[samples, log_probabilities]``."""
    if kwargs:
        raise _unknown(multinomial, kwargs)
    return _multinomial("multinomial", data, shape, get_prob, out, dtype)


def shuffle(data: Any, out: Any = None, **kwargs: Any) -> NDArray:
    """A copy of ``data`` with its first axis in a random order (differentiable: the
    gradient goes back to the positions the rows came from)."""
    if kwargs:
        raise _unknown(shuffle, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("shuffle", "data", data)
    if data.ndim == 0:
        r = data.copy()
    else:
        perm = T.random_draw(
            data, dist="permutation", shape=(data.shape[0],), dtype=np.dtype(np.int64)
        )
        r = T.getitem(data, key=perm.asnumpy())
    return r if out is None else _write_out("shuffle", out, r)


def _signature(names: tuple, defaults: tuple, lead: tuple = ("data",), tail: tuple = ()):
    """An ``inspect.Signature`` for a generated sampler (what ``_unknown`` lists, and what
    ``help()`` shows)."""
    P = inspect.Parameter
    ps = [P(n, P.POSITIONAL_OR_KEYWORD, default=None) for n in lead]
    ps += [P(n, P.POSITIONAL_OR_KEYWORD, default=d) for n, d in zip(names, defaults)]
    ps += [P(n, P.POSITIONAL_OR_KEYWORD, default=d) for n, d in tail]
    ps.append(P("kwargs", P.VAR_KEYWORD))
    return inspect.Signature(ps)


def _bind(f: Any, fname: str, names: tuple, defaults: tuple, args: tuple, kwargs: dict) -> list:
    """The parameters of a generated sampler from its positional and keyword arguments."""
    params = list(defaults)
    if len(args) > len(names):
        raise ArgumentError(
            f"{fname}: takes at most {len(names)} distribution parameters after data "
            f"({', '.join(names)}), got {len(args)}. Fix: pass shape and the others by name."
        )
    params[: len(args)] = args
    for i, n in enumerate(names):
        if n in kwargs:
            params[i] = kwargs.pop(n)
    if kwargs:
        raise _unknown(f, kwargs)
    return params


def _like(dist: str, names: tuple, defaults: tuple):
    def f(data: Any = None, *args: Any, out: Any = None, name: Any = None, **kwargs: Any):
        params = _bind(f, fname, names, defaults, args, kwargs)
        if type(data) is not NDArray:
            data = _bad_nd(fname, "data", data)
        dt = np.dtype(data.dtype)
        if dt.name not in _FLOATS:
            raise DTypeError(
                f"{fname}: data has dtype {dt}; the samples take data's dtype, which must be "
                "a float. Fix: data.astype('float32')."
            )
        return _sample(fname, dist, tuple(params), data.shape, dt.name, None, out, arrays=False)

    fname = f"{dist}_like"
    f.__name__ = f.__qualname__ = fname
    f.__signature__ = _signature(names, defaults, tail=(("out", None), ("name", None)))
    sig = ", ".join(f"{n}={d}" for n, d in zip(names, defaults))
    f.__doc__ = f"``{fname}(data, {sig})``: samples in the shape and dtype of ``data``."
    return f


uniform_like = _like("uniform", ("low", "high"), (0.0, 1.0))
normal_like = _like("normal", ("loc", "scale"), (0.0, 1.0))
gamma_like = _like("gamma", ("alpha", "beta"), (1.0, 1.0))
exponential_like = _like("exponential", ("lam",), (1.0,))
poisson_like = _like("poisson", ("lam",), (1.0,))
negative_binomial_like = _like("negative_binomial", ("k", "p"), (1, 1.0))
generalized_negative_binomial_like = _like(
    "generalized_negative_binomial", ("mu", "alpha"), (1.0, 1.0)
)

# ---------------------------------------------------------- mx.nd's sampling operators

#: MXNet's operator names: dist -> (parameter names, their defaults)
_OPS = {
    "uniform": (("low", "high"), (0.0, 1.0)),
    "normal": (("loc", "scale"), (0.0, 1.0)),
    "gamma": (("alpha", "beta"), (1.0, 1.0)),
    "exponential": (("lam",), (1.0,)),
    "poisson": (("lam",), (1.0,)),
    "negative_binomial": (("k", "p"), (1, 1.0)),
    "generalized_negative_binomial": (("mu", "alpha"), (1.0, 1.0)),
    "randint": (("low", "high"), (None, None)),
}
#: the parameter names of the ``sample_*`` operators where they differ
_SAMPLE_NAMES = {"normal": ("mu", "sigma")}


def _random_op(dist: str):
    """``nd.random_<dist>(params..., shape, ctx, dtype, out)``: numbers for parameters."""
    names, defaults = _OPS[dist]
    allowed, default = (_INTS, "int32") if dist == "randint" else (_FLOATS, "float32")

    def f(*args: Any, shape: Any = None, ctx: Any = None, dtype: Any = None, out: Any = None,
          name: Any = None, **kwargs: Any) -> NDArray:  # fmt: skip
        n = len(names)
        extra = list(args[n:])
        for k, v in zip(("shape", "ctx", "dtype", "out"), (shape, ctx, dtype, out)):
            if extra:  # MXNet's positional order: params, shape, ctx, dtype, out
                v = extra.pop(0)
            kwargs.setdefault("_" + k, v)
        if extra:
            raise ArgumentError(
                f"{fname}: too many positional arguments ({len(args)}). Fix: pass shape, ctx, "
                "dtype and out by name."
            )
        sh, cx, dt, o = (kwargs.pop("_" + k) for k in ("shape", "ctx", "dtype", "out"))
        params = _bind(f, fname, names, defaults, args[:n], kwargs)
        if dist == "randint" and any(p is None for p in params):
            raise ArgumentError(
                f"{fname}: low and high are required. Fix: pass e.g. low=0, high=10."
            )
        return _sample(fname, dist, tuple(params), sh, dt, cx, o, allowed, default, arrays=False)

    fname = f"random_{dist}"
    f.__name__ = f.__qualname__ = fname
    tail = (("shape", None), ("ctx", None), ("dtype", None), ("out", None), ("name", None))
    f.__signature__ = _signature(names, defaults, lead=(), tail=tail)
    f.__doc__ = (
        f"MXNet's ``{fname}({', '.join(names)}, shape, ctx, dtype, out)``: samples of the given "
        "shape (required); the parameters are numbers."
    )
    return f


def _sample_op(dist: str):
    """``nd.sample_<dist>(params..., shape, dtype, out)``: one distribution per element of
    the parameter NDArrays, ``shape`` draws each."""
    names = _SAMPLE_NAMES.get(dist, _OPS[dist][0])

    def f(*args: Any, shape: Any = None, dtype: Any = None, out: Any = None, name: Any = None,
          **kwargs: Any) -> NDArray:  # fmt: skip
        n = len(names)
        extra = list(args[n:])
        for k, v in zip(("shape", "dtype", "out"), (shape, dtype, out)):
            if extra:
                v = extra.pop(0)
            kwargs.setdefault("_" + k, v)
        if extra:
            raise ArgumentError(
                f"{fname}: too many positional arguments ({len(args)}). Fix: pass shape, dtype "
                "and out by name."
            )
        sh, dt, o = (kwargs.pop("_" + k) for k in ("shape", "dtype", "out"))
        params = _bind(f, fname, names, (None,) * n, args[:n], kwargs)
        return _sample(fname, dist, tuple(params), sh, dt, None, o, arrays=True, names=names)

    fname = f"sample_{dist}"
    f.__name__ = f.__qualname__ = fname
    tail = (("shape", None), ("dtype", None), ("out", None), ("name", None))
    f.__signature__ = _signature(names, (None,) * len(names), lead=(), tail=tail)
    f.__doc__ = (
        f"MXNet's ``{fname}({', '.join(names)}, shape, dtype, out)``: NDArrays of one shape "
        "``S`` for the parameters; the result has shape ``S + shape``."
    )
    return f


random_uniform = _random_op("uniform")
random_normal = _random_op("normal")
random_gamma = _random_op("gamma")
random_exponential = _random_op("exponential")
random_poisson = _random_op("poisson")
random_negative_binomial = _random_op("negative_binomial")
random_generalized_negative_binomial = _random_op("generalized_negative_binomial")
random_randint = _random_op("randint")

sample_uniform = _sample_op("uniform")
sample_normal = _sample_op("normal")
sample_gamma = _sample_op("gamma")
sample_exponential = _sample_op("exponential")
sample_poisson = _sample_op("poisson")
sample_negative_binomial = _sample_op("negative_binomial")
sample_generalized_negative_binomial = _sample_op("generalized_negative_binomial")


def sample_multinomial(
    data: Any,
    shape: Any = None,
    get_prob: Any = False,
    dtype: Any = "int32",
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray | list:
    """MXNet's ``sample_multinomial``: :func:`multinomial` under the operator's name."""
    if kwargs:
        raise _unknown(sample_multinomial, kwargs)
    return _multinomial("sample_multinomial", data, shape, get_prob, out, dtype)


#: the names these add to ``mx.nd`` (MXNet's operators; ``normal``/``uniform`` are aliases
#: of ``random_normal``/``random_uniform``, ``shuffle`` of ``random.shuffle``)
ND_NAMES = {
    "random_uniform": random_uniform, "random_normal": random_normal,
    "random_gamma": random_gamma, "random_exponential": random_exponential,
    "random_poisson": random_poisson, "random_negative_binomial": random_negative_binomial,
    "random_generalized_negative_binomial": random_generalized_negative_binomial,
    "random_randint": random_randint, "uniform": random_uniform, "normal": random_normal,
    "sample_uniform": sample_uniform, "sample_normal": sample_normal,
    "sample_gamma": sample_gamma, "sample_exponential": sample_exponential,
    "sample_poisson": sample_poisson, "sample_negative_binomial": sample_negative_binomial,
    "sample_generalized_negative_binomial": sample_generalized_negative_binomial,
    "sample_multinomial": sample_multinomial, "shuffle": shuffle,
}  # fmt: skip

__all__ = [
    "seed", "uniform", "normal", "randn", "randint", "poisson", "exponential", "gamma",
    "negative_binomial", "generalized_negative_binomial", "multinomial", "shuffle",
    "uniform_like", "normal_like", "gamma_like", "exponential_like", "poisson_like",
    "negative_binomial_like", "generalized_negative_binomial_like",
]  # fmt: skip
