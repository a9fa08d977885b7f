"""``mx.nd`` functions with MXNet 1.x signatures, built on the primitives.

Functions here are *composites*: they translate MXNet's arguments (``exclude``,
``transpose_a``, reshape codes, ``dim=``) and call primitives, so they need no
derivative rules of their own.

Bad input raises a typed error (:mod:`tapegrad.base`) naming the function, the argument,
what was given and the fix; the checks are in :mod:`._checks`. Every function takes
``**kwargs`` only to refuse the keywords it does not know (``if kwargs: raise _unknown(...)``,
which names the closest valid one): with an explicit signature Python refuses them with a
plain ``TypeError``, and turning that into ours would take a wrapper around every call, about
four times the cost of the empty dict (measured on ``nd.exp``).
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from .. import random as _random
from ..base import (
    ArgumentError,
    ArgumentValueError,
    AxisError,
    IndexingError,
    LabelError,
    ShapeError,
    fmt_shape,
)
from ..core import PRIMITIVES, STATE, TAPE, ZERO, Formula, defprim
from ._checks import (
    _ax,
    _axes,
    _bad_axis,
    _bad_nd,
    _choice,
    _ctx,
    _dense,
    _dt,
    _flag,
    _index_array,
    _indices,
    _int,
    _make,
    _number,
    _number_or_nd,
    _plain_operand,
    _shape_arg,
    _short,
    _unknown,
    _write_out,
)
from .ndarray import NDArray, _read

T = TAPE

# ---------------------------------------------------------------------------- creation


def array(source_array: Any, ctx: Any = None, dtype: Any = None, **kwargs: Any) -> NDArray:
    """A new NDArray holding a copy of ``source_array``.

    The dtype defaults to the source's dtype for an NDArray and to float32 otherwise
    (as in MXNet).

    >>> import tapegrad as mx
    >>> mx.nd.array([1, 2, 3])
    <BLANKLINE>
    [1. 2. 3.]
    <NDArray 3 @cpu(0)>
    """
    if kwargs:
        raise _unknown(array, kwargs)
    ctx = _ctx("array", ctx)
    if isinstance(source_array, NDArray):
        dt = source_array.dtype if dtype is None else _dt("array", dtype)
        return NDArray(np.array(source_array._data, dtype=dt), ctx)
    if source_array is None or isinstance(source_array, (str, bytes, dict, set)):
        raise ArgumentError(
            f"array: source_array must be numbers, a (nested) list of numbers or a NumPy "
            f"array, got {_short(source_array)}. Fix: pass e.g. nd.array([1, 2, 3])."
        )
    dt = _dt("array", dtype)
    fix = "pass numbers, or (nested) lists of numbers with equal lengths at each level."
    return NDArray(_make("array", np.array, source_array, dt, fix=fix), ctx)


def _unknown_attrs(kwargs: dict) -> bool:
    """Keywords other than MXNet's graph attributes (``__layout__``: begin_state passes it to
    the creation functions, which MXNet accepts and keeps as an attribute)."""
    return any(not (k.startswith("__") and k.endswith("__")) for k in kwargs)


def zeros(
    shape: Any,
    ctx: Any = None,
    dtype: Any = None,
    stype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """An array of zeros (float32 by default)."""
    if kwargs and _unknown_attrs(kwargs):  # (MXNet's ``__layout__``-style attributes pass)
        raise _unknown(zeros, kwargs)
    _dense("zeros", stype)
    shp = _shape_arg("zeros", shape)
    r = NDArray(_make("zeros", np.zeros, shp, _dt("zeros", dtype)), _ctx("zeros", ctx))
    return r if out is None else _write_out("zeros", out, r)


def ones(
    shape: Any, ctx: Any = None, dtype: Any = None, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """An array of ones (float32 by default)."""
    if kwargs and _unknown_attrs(kwargs):  # (MXNet's ``__layout__``-style attributes pass)
        raise _unknown(ones, kwargs)
    shp = _shape_arg("ones", shape)
    r = NDArray(_make("ones", np.ones, shp, _dt("ones", dtype)), _ctx("ones", ctx))
    return r if out is None else _write_out("ones", out, r)


def full(
    shape: Any,
    val: Any,
    ctx: Any = None,
    dtype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """An array filled with ``val``."""
    if kwargs and _unknown_attrs(kwargs):  # (MXNet's ``__layout__``-style attributes pass)
        raise _unknown(full, kwargs)
    shp = _shape_arg("full", shape)
    val = _number("full", "val", val)
    r = NDArray(_make("full", np.full, shp, val, _dt("full", dtype)), _ctx("full", ctx))
    return r if out is None else _write_out("full", out, r)


def empty(
    shape: Any, ctx: Any = None, dtype: Any = None, stype: Any = None, **kwargs: Any
) -> NDArray:
    """An uninitialised array (zeros here: NumPy memory is not left undefined)."""
    if kwargs and _unknown_attrs(kwargs):  # (MXNet's ``__layout__``-style attributes pass)
        raise _unknown(empty, kwargs)
    _dense("empty", stype)
    shp = _shape_arg("empty", shape)
    return NDArray(_make("empty", np.zeros, shp, _dt("empty", dtype)), _ctx("empty", ctx))


def arange(
    start: float,
    stop: Any = None,
    step: float = 1.0,
    repeat: int = 1,
    infer_range: bool = False,
    ctx: Any = None,
    dtype: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Evenly spaced values in [start, stop) (float32 by default, like MXNet)."""
    if kwargs:
        raise _unknown(arange, kwargs)
    start = _number("arange", "start", start)
    if stop is not None:
        stop = _number("arange", "stop", stop)
    if _number("arange", "step", step) == 0:
        raise ArgumentValueError("arange: step=0 never reaches stop. Fix: pass a non-zero step.")
    repeat = _int("arange", "repeat", repeat, lo=1)
    _flag("arange", "infer_range", infer_range)
    dt = _dt("arange", dtype)
    a = (
        _make("arange", np.arange, start, stop, step)
        if stop is not None
        else (_make("arange", np.arange, start))
    )
    if repeat > 1:
        a = np.repeat(a, repeat)
    return NDArray(a.astype(dt), _ctx("arange", ctx))


def linspace(
    start: float,
    stop: float,
    num: int,
    endpoint: bool = True,
    ctx: Any = None,
    dtype: Any = None,
    **kwargs: Any,
) -> NDArray:
    """``num`` evenly spaced values from start to stop."""
    if kwargs:
        raise _unknown(linspace, kwargs)
    start, stop = _number("linspace", "start", start), _number("linspace", "stop", stop)
    num = _int("linspace", "num", num, lo=0)
    endpoint = _flag("linspace", "endpoint", endpoint)
    dt = _dt("linspace", dtype)
    a = _make("linspace", np.linspace, start, stop, num, endpoint)
    return NDArray(a.astype(dt), _ctx("linspace", ctx))


def eye(
    N: int, M: int = 0, k: int = 0, ctx: Any = None, dtype: Any = None, **kwargs: Any
) -> NDArray:
    """Identity-like matrix with ones on diagonal ``k``."""
    if kwargs:
        raise _unknown(eye, kwargs)
    N, M = _int("eye", "N", N, lo=0), _int("eye", "M", M, lo=0)
    k = _int("eye", "k", k)
    return NDArray(_make("eye", np.eye, N, M or None, k, _dt("eye", dtype)), _ctx("eye", ctx))


def zeros_like(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """Zeros of ``data``'s shape and dtype."""
    if kwargs:
        raise _unknown(zeros_like, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("zeros_like", "data", data)
    r = NDArray(np.zeros(data.shape, data.dtype))
    return r if out is None else _write_out("zeros_like", out, r)


def ones_like(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """Ones of ``data``'s shape and dtype."""
    if kwargs:
        raise _unknown(ones_like, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("ones_like", "data", data)
    r = NDArray(np.ones(data.shape, data.dtype))
    return r if out is None else _write_out("ones_like", out, r)


def full_like(
    data: NDArray, fill_value: Any, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """``fill_value`` in ``data``'s shape and dtype."""
    if kwargs:
        raise _unknown(full_like, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("full_like", "data", data)
    v = _number("full_like", "fill_value", fill_value)
    r = NDArray(_make("full_like", np.full, data.shape, v, data.dtype))
    return r if out is None else _write_out("full_like", out, r)


def waitall(**kwargs: Any) -> None:
    """No-op: computations are synchronous."""
    if kwargs:
        raise _unknown(waitall, kwargs)


# ------------------------------------------------------------------------------ out=


def _expose(prim: Any, alias: str) -> Any:
    """The ``mx.nd`` function of a primitive declared with ``nd=``: MXNet's argument names
    (``data``, or ``lhs``/``rhs``) and ``out=``, around the primitive's call."""
    call, pname = prim.call, prim.name
    if prim.nin == 1:

        def f(data: Any, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
            if kwargs:
                raise _unknown(f, kwargs)
            if type(data) is not NDArray:
                data = _plain_operand(data, alias, "data")
            r = call(data)
            return r if out is None else _write_out(alias, out, r)

    else:

        def f(lhs: Any, rhs: Any, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
            if kwargs:
                raise _unknown(f, kwargs)
            if type(lhs) is not NDArray and type(rhs) is not NDArray:
                lhs, rhs = _plain_operand(lhs, alias, "lhs"), _plain_operand(rhs, alias, "rhs")
            r = call(lhs, rhs)
            return r if out is None else _write_out(alias, out, r)

    f.__name__ = f.__qualname__ = alias
    args = "data" if prim.nin == 1 else "lhs, rhs"
    f.__doc__ = f"MXNet's ``{alias}({args}, out=None)``: the primitive ``{pname}``, elementwise."
    f.prim = prim
    return f


#: the names of the primitives' ``mx.nd`` functions (they join ``__all__``)
_EXPOSED: list = []
for _p in PRIMITIVES.values():
    for _alias in _p.nd:
        globals()[_alias] = _expose(_p, _alias)
        _EXPOSED.append(_alias)


# ------------------------------------------------------------------- elementwise math


def softsign(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """x / (1 + |x|)."""
    if kwargs:
        raise _unknown(softsign, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("softsign", "data", data)
    r = data / (T.abs(data) + 1.0)
    return r if out is None else _write_out("softsign", out, r)


def logical_not(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """1 where ``data`` is zero, else 0 (in ``data``'s dtype)."""
    if kwargs:
        raise _unknown(logical_not, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("logical_not", "data", data)
    r = T.logical_not(data)
    return r if out is None else _write_out("logical_not", out, r)


def _elemwise(prim: Any, name: str):
    def f(lhs: NDArray, rhs: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> Any:
        if kwargs:
            raise _unknown(f, kwargs)
        if type(lhs) is not NDArray:
            lhs = _bad_nd(fname, "lhs", lhs)
        if type(rhs) is not NDArray:
            rhs = _bad_nd(fname, "rhs", rhs)
        if lhs.shape != rhs.shape:
            raise ShapeError(
                f"{fname}: operands must have the same shape, got {fmt_shape(lhs.shape)} and "
                f"{fmt_shape(rhs.shape)}. Fix: use broadcast_{fname.split('_')[1]} (or the "
                "operator) to broadcast."
            )
        r = prim(lhs, rhs)
        return r if out is None else _write_out(fname, out, r)

    fname = name  # the function's name (inside f, `name` is MXNet's node-name argument)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"``{name}``: elementwise on equal shapes (no broadcasting), as in MXNet."
    return f


elemwise_add = _elemwise(T.add, "elemwise_add")
elemwise_sub = _elemwise(T.subtract, "elemwise_sub")
elemwise_mul = _elemwise(T.multiply, "elemwise_mul")
elemwise_div = _elemwise(T.divide, "elemwise_div")


def clip(
    data: NDArray, a_min: Any, a_max: Any, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """Clip values to [a_min, a_max]; the gradient is zero outside."""
    if kwargs:
        raise _unknown(clip, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("clip", "data", data)
    a_min, a_max = _number("clip", "a_min", a_min), _number("clip", "a_max", a_max)
    r = T.clip(data, a_min=a_min, a_max=a_max)
    return r if out is None else _write_out("clip", out, r)


def where(
    condition: NDArray, x: Any, y: Any, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """``x`` where ``condition`` is non-zero, else ``y`` (NumPy broadcasting; ``x`` and ``y``
    may also be numbers)."""
    if kwargs:
        raise _unknown(where, kwargs)
    if type(condition) is not NDArray:
        condition = _bad_nd("where", "condition", condition)
    if type(x) is not NDArray:
        x = _number_or_nd("where", "x", x)
    if type(y) is not NDArray:
        y = _number_or_nd("where", "y", y)
    r = T.where(condition, x, y)
    return r if out is None else _write_out("where", out, r)


_ACT_TYPES = ("relu", "sigmoid", "tanh", "softrelu", "softsign", "log_sigmoid", "mish")


def Activation(
    data: NDArray, act_type: str = "relu", out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """MXNet's Activation operator: relu, sigmoid, tanh, softrelu, softsign, log_sigmoid,
    mish."""
    if kwargs:
        raise _unknown(Activation, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("Activation", "data", data)
    if act_type == "relu":
        r = T.relu(data)
    elif act_type == "sigmoid":
        r = T.sigmoid(data)
    elif act_type == "tanh":
        r = T.tanh(data)
    elif act_type == "softrelu":
        r = T.softrelu(data)
    elif act_type == "softsign":
        r = softsign(data)
    elif act_type == "log_sigmoid":
        r = -T.softrelu(-data)
    elif act_type == "mish":
        r = data * T.tanh(T.softrelu(data))
    else:
        _choice("Activation", "act_type", act_type, _ACT_TYPES)
    return r if out is None else _write_out("Activation", out, r)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946
_LEAKY_TYPES = ("leaky", "elu", "selu", "gelu", "prelu", "rrelu")


def LeakyReLU(
    data: NDArray,
    gamma: Any = None,
    act_type: str = "leaky",
    slope: float = 0.25,
    lower_bound: float = 0.125,
    upper_bound: float = 0.334,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's LeakyReLU operator: act_type leaky, elu, selu, gelu, prelu, rrelu."""
    if kwargs:
        raise _unknown(LeakyReLU, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("LeakyReLU", "data", data)
    _choice("LeakyReLU", "act_type", act_type, _LEAKY_TYPES)
    slope = _number("LeakyReLU", "slope", slope)
    if act_type == "leaky":
        r = T.leaky_relu(data, slope=slope)
    elif act_type in ("elu", "selu"):
        # expm1 of x where x <= 0 and of 0 elsewhere: the unused branch never overflows (no
        # 0 * inf in the gradient), and the derivative at 0 is alpha, from the negative
        # branch, as in PyTorch (a minimum would split the tie and give alpha / 2)
        alpha = slope if act_type == "elu" else _SELU_ALPHA
        pos = data > 0
        r = T.where(pos, data, T.expm1(T.where(pos, 0.0, data)) * alpha)
        r = r if act_type == "elu" else r * _SELU_LAMBDA
    elif act_type == "gelu":
        r = data * (T.erf(data * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
    elif act_type == "prelu":
        if gamma is None:
            raise ArgumentValueError(
                "LeakyReLU(act_type='prelu') needs gamma, the learned slopes. Fix: pass gamma=."
            )
        if type(gamma) is not NDArray:
            gamma = _bad_nd("LeakyReLU", "gamma", gamma)
        g = gamma
        if data.ndim > 1 and gamma.ndim == 1 and gamma.shape[0] == data.shape[1]:
            g = T.reshape(gamma, shape=(1, -1) + (1,) * (data.ndim - 2))
        r = T.where(data > 0, data, data * g)
    else:  # rrelu
        lo = _number("LeakyReLU", "lower_bound", lower_bound)
        hi = _number("LeakyReLU", "upper_bound", upper_bound)
        if STATE.training:
            s = _random.generator().uniform(lo, hi, data.shape)
            r = T.where(data > 0, data, data * s.astype(data.dtype))
        else:
            r = T.leaky_relu(data, slope=(lo + hi) / 2.0)
    return r if out is None else _write_out("LeakyReLU", out, r)


# ------------------------------------------------------------------------ reductions


def _red_axis(fn: str, data: NDArray, axis: Any, exclude: bool) -> Any:
    """MXNet's reduction axes: None or () is every axis, with or without ``exclude``."""
    if axis is None:
        return None
    nd_ = len(data._data.shape)
    if type(axis) is int:
        if not -nd_ <= axis < nd_:
            _bad_axis(fn, axis, data, "axis", 0)
        ax = (axis % nd_,)
    else:
        if type(axis) in (tuple, list) and not axis:
            return None
        ax = _axes(fn, axis, data)
        if len(ax) > 1:
            ax = tuple(sorted(ax))
    if exclude:
        ax = tuple(i for i in range(nd_) if i not in ax)
    return ax


def _reduction(prim: Any, name: str):
    def f(
        data: NDArray,
        axis: Any = None,
        keepdims: bool = False,
        exclude: bool = False,
        out: Any = None,
        name: Any = None,
        **kwargs: Any,
    ) -> NDArray:
        if kwargs:
            raise _unknown(f, kwargs)
        if type(data) is not NDArray:
            data = _bad_nd(fname, "data", data)
        if type(keepdims) is not bool:
            keepdims = _flag(fname, "keepdims", keepdims)
        if type(exclude) is not bool:
            exclude = _flag(fname, "exclude", exclude)
        ax = _red_axis(fname, data, axis, exclude)
        r = data if ax == () else prim(data, axis=ax, keepdims=keepdims)
        return r if out is None else _write_out(fname, out, r)

    fname = name  # the function's name (inside f, `name` is MXNet's node-name argument)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = (
        f"``{name}`` over ``axis`` (all axes by default; the result then has shape "
        "(1,), as in MXNet), with keepdims and MXNet's ``exclude``."
    )
    return f


sum = _reduction(T.sum, "sum")
mean = _reduction(T.mean, "mean")
max = _reduction(T.max, "max")
min = _reduction(T.min, "min")
prod = _reduction(T.prod, "prod")
logsumexp = _reduction(T.logsumexp, "logsumexp")
sum_axis = sum
max_axis = max
min_axis = min


def nansum(
    data: NDArray,
    axis: Any = None,
    keepdims: bool = False,
    exclude: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Sum treating NaN as zero."""
    if kwargs:
        raise _unknown(nansum, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("nansum", "data", data)
    keepdims, exclude = _flag("nansum", "keepdims", keepdims), _flag("nansum", "exclude", exclude)
    _red_axis("nansum", data, axis, exclude)
    r = sum(T.where(data != data, 0.0, data), axis, keepdims, exclude)
    return r if out is None else _write_out("nansum", out, r)


def norm(
    data: NDArray,
    ord: int = 2,
    axis: Any = None,
    out_dtype: Any = None,
    keepdims: bool = False,
    exclude: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """L2 (default) or L1 norm over ``axis`` (all elements by default); ``out_dtype`` casts
    the result."""
    if kwargs:
        raise _unknown(norm, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("norm", "data", data)
    if ord not in (1, 2) or isinstance(ord, bool):
        raise ArgumentValueError(f"norm: ord={ord!r} is not supported. Fix: use ord=1 or ord=2.")
    dt = None if out_dtype is None else _dt("norm", out_dtype)
    keepdims, exclude = _flag("norm", "keepdims", keepdims), _flag("norm", "exclude", exclude)
    _red_axis("norm", data, axis, exclude)
    if ord == 1:
        r = sum(T.abs(data), axis, keepdims, exclude)
    else:
        r = _safe_sqrt(sum(data * data, axis, keepdims, exclude))
    if dt is not None:
        r = r.astype(dt, copy=False)
    return r if out is None else _write_out("norm", out, r)


def _safe_sqrt(s: NDArray) -> NDArray:
    """sqrt(s) for s >= 0 whose every derivative is finite, 0 where s is 0 (the subgradient
    PyTorch's norm uses): sqrt'(0) is infinite, so zeros take sqrt(1), masked out."""
    zero = s == 0
    return T.sqrt(T.where(zero, 1.0, s)) * (1.0 - zero)


def _arg(prim: Any, name: str):
    def f(
        data: NDArray,
        axis: Any = None,
        keepdims: bool = False,
        out: Any = None,
        name: Any = None,
        **kwargs: Any,
    ) -> NDArray:
        if kwargs:
            raise _unknown(f, kwargs)
        if type(data) is not NDArray:
            data = _bad_nd(fname, "data", data)
        if type(keepdims) is not bool:
            keepdims = _flag(fname, "keepdims", keepdims)
        if axis is not None:
            axis = _ax(fname, axis, data)
        elif data.size == 0:
            raise ShapeError(
                f"{fname}: the input of shape {fmt_shape(data.shape)} is empty. Fix: pass a "
                "non-empty array."
            )
        if axis is not None and data.shape[axis] == 0:
            raise ShapeError(
                f"{fname}: axis {axis} of the input of shape {fmt_shape(data.shape)} is "
                "empty. Fix: choose a non-empty axis."
            )
        r = prim(data, axis=axis, keepdims=keepdims)
        return r if out is None else _write_out(fname, out, r)

    fname = name  # the function's name (inside f, `name` is MXNet's node-name argument)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"Indices of the {name[3:]} along ``axis`` (float32, as in MXNet)."
    return f


argmax = _arg(T.argmax, "argmax")
argmin = _arg(T.argmin, "argmin")


def argmax_channel(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """Indices of the maxima along the last axis."""
    if kwargs:
        raise _unknown(argmax_channel, kwargs)
    return argmax(data, axis=-1, out=out)


# ------------------------------------------------------------------------------ shape


def _mx_shape(src: tuple, target: tuple, reverse: bool = False) -> tuple:
    """Resolve MXNet's reshape codes: 0 copy, -1 infer, -2 copy rest, -3 merge two,
    -4 split one into the two numbers that follow."""
    if reverse:
        return tuple(reversed(_mx_shape(tuple(reversed(src)), _rev4(target))))
    out: list = []
    i = 0  # position in src
    j = 0
    target = list(target)

    def bad(why: str) -> ShapeError:
        return ShapeError(
            f"reshape: cannot reshape an array of shape {fmt_shape(src)} to "
            f"{fmt_shape(tuple(target))}: {why}. Fix: 0 copies an input dimension, -1 infers "
            "one, -2 copies the rest, -3 merges two, -4 splits one into the two numbers that "
            "follow it."
        )

    while j < len(target):
        t = target[j]
        if t in (0, -3, -4) and i + (2 if t == -3 else 1) > len(src):
            raise bad(f"code {t} at position {j} has no input dimension left to use")
        if t == 0:
            out.append(src[i])
            i += 1
        elif t == -1:
            out.append(-1)
            i += 1
        elif t == -2:
            out.extend(src[i:])
            i = len(src)
        elif t == -3:
            out.append(src[i] * src[i + 1])
            i += 2
        elif t == -4:
            if j + 2 >= len(target):
                raise bad("-4 must be followed by two numbers")
            a, b = target[j + 1], target[j + 2]
            if a < -1 or b < -1 or (a == -1 and b == -1) or (a * b != src[i] and -1 not in (a, b)):
                raise bad(f"-4 splits {src[i]} into {a} x {b}")
            if a == -1:
                a = src[i] // b if b else -1
            if b == -1:
                b = src[i] // a if a else -1
            if a < 0 or b < 0 or a * b != src[i]:
                raise bad(f"-4 cannot split {src[i]} with {target[j + 1]}, {target[j + 2]}")
            out.extend([a, b])
            i += 1
            j += 2
        elif t < -4:
            raise bad(f"{t} is not a reshape code")
        else:
            out.append(t)
            i += 1
        j += 1
    if out.count(-1) > 1:
        raise bad("only one dimension can be inferred (-1)")
    if out.count(-1) == 1:
        known = math.prod(d for d in out if d != -1)
        total = math.prod(src)
        if known == 0 or total % known:
            raise bad(f"{total} elements do not divide into the known sizes ({known})")
        out[out.index(-1)] = total // known
    return tuple(out)


def _rev4(target: tuple) -> tuple:
    t = list(target)
    out = []
    j = len(t) - 1
    while j >= 0:
        if j >= 2 and t[j - 2] == -4:
            out += [-4, t[j], t[j - 1]]
            j -= 3
        else:
            out.append(t[j])
            j -= 1
    return tuple(out)


def reshape(
    data: NDArray,
    shape: Any,
    reverse: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Reshape with MXNet's codes (0 copy a dimension, -1 infer, -2, -3, -4).

    >>> import tapegrad as mx
    >>> mx.nd.ones((2, 3, 4)).reshape((0, -1)).shape
    (2, 12)
    """
    if kwargs:
        raise _unknown(reshape, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("reshape", "data", data)
    shape = _shape_arg("reshape", shape, codes=True)
    reverse = _flag("reshape", "reverse", reverse)
    new = (
        _mx_shape(data.shape, shape, reverse)
        if any(s in (0, -2, -3, -4) or s < -4 for s in shape) or shape.count(-1)
        else shape
    )
    if math.prod(new) != data.size:
        raise ShapeError(
            f"reshape: cannot reshape an array of shape {fmt_shape(data.shape)} "
            f"({data.size} elements) to {fmt_shape(tuple(shape))}. Fix: the number of "
            "elements must stay the same (use -1 for one inferred dimension)."
        )
    r = T.reshape(data, shape=new)
    return r if out is None else _write_out("reshape", out, r)


def reshape_like(
    lhs: NDArray,
    rhs: NDArray,
    lhs_begin: Any = None,
    lhs_end: Any = None,
    rhs_begin: Any = None,
    rhs_end: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Reshape ``lhs`` to the shape of ``rhs``; with MXNet's begin/end arguments, only the
    axes ``lhs_begin:lhs_end`` of ``lhs`` are replaced by the axes ``rhs_begin:rhs_end`` of
    ``rhs`` (None: from the first / to the last axis)."""
    if kwargs:
        raise _unknown(reshape_like, kwargs)
    if type(lhs) is not NDArray:
        lhs = _bad_nd("reshape_like", "lhs", lhs)
    if type(rhs) is not NDArray:
        rhs = _bad_nd("reshape_like", "rhs", rhs)
    lb, le = _span("reshape_like", lhs, lhs_begin, lhs_end, "lhs")
    rb, re = _span("reshape_like", rhs, rhs_begin, rhs_end, "rhs")
    shape = lhs.shape[:lb] + rhs.shape[rb:re] + lhs.shape[le:]
    if math.prod(shape) != lhs.size:
        raise ShapeError(
            f"reshape_like: lhs of shape {fmt_shape(lhs.shape)} ({lhs.size} elements) cannot "
            f"take the shape {fmt_shape(shape)} from rhs of shape {fmt_shape(rhs.shape)}. Fix: "
            "the sizes must match (choose the begin/end axes accordingly)."
        )
    r = T.reshape(lhs, shape=shape)
    return r if out is None else _write_out("reshape_like", out, r)


def _span(fn: str, x: NDArray, begin: Any, end: Any, which: str) -> tuple:
    """MXNet's ``*_begin``/``*_end`` axes (negative ones count from the end) as a slice
    ``[b, e)`` of ``x``'s axes."""
    n = x.ndim
    pos = []
    for arg, v, default in ((f"{which}_begin", begin, 0), (f"{which}_end", end, n)):
        if v is None:
            pos.append(default)
            continue
        v = _int(fn, arg, v)
        if not -n <= v <= n:
            raise AxisError(
                f"{fn}: {arg}={v} is out of range for {which} of shape {fmt_shape(x.shape)}. "
                f"Fix: use {arg} in [{-n}, {n}]."
            )
        pos.append(v + n if v < 0 else v)
    if pos[0] > pos[1]:
        raise ArgumentValueError(
            f"{fn}: {which}_begin={begin} comes after {which}_end={end} for an array of shape "
            f"{fmt_shape(x.shape)}. Fix: pass begin <= end."
        )
    return pos[0], pos[1]


def transpose(
    data: NDArray, axes: Any = None, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """Permute the axes (reverse them when ``axes`` is empty)."""
    if kwargs:
        raise _unknown(transpose, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("transpose", "data", data)
    if axes is None or (isinstance(axes, (tuple, list)) and not axes):
        perm = None
    else:
        perm = _axes("transpose", axes, data, "axes")
        if len(perm) != data.ndim:
            raise ShapeError(
                f"transpose: axes={tuple(axes)} must be a permutation of the {data.ndim} axes "
                f"of an array of shape {fmt_shape(data.shape)}. Fix: list every axis once."
            )
    r = T.transpose(data, axes=perm)
    return r if out is None else _write_out("transpose", out, r)


def swapaxes(
    data: NDArray,
    dim1: int = 0,
    dim2: int = 0,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Interchange two axes."""
    if kwargs:
        raise _unknown(swapaxes, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("swapaxes", "data", data)
    d1, d2 = _ax("swapaxes", dim1, data, "dim1"), _ax("swapaxes", dim2, data, "dim2")
    perm = list(range(data.ndim))
    perm[d1], perm[d2] = perm[d2], perm[d1]
    r = T.transpose(data, axes=tuple(perm))
    return r if out is None else _write_out("swapaxes", out, r)


SwapAxis = swapaxes


def flatten(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """Collapse all but the first axis: (N, ...) -> (N, prod(...))."""
    if kwargs:
        raise _unknown(flatten, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("flatten", "data", data)
    shp = data.shape
    n = shp[0] if shp else 1
    r = T.reshape(data, shape=(n, math.prod(shp[1:])))
    return r if out is None else _write_out("flatten", out, r)


Flatten = flatten


def expand_dims(
    data: NDArray, axis: int, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """Insert an axis of length 1 at ``axis`` (in [-ndim-1, ndim])."""
    if kwargs:
        raise _unknown(expand_dims, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("expand_dims", "data", data)
    ax = _ax("expand_dims", axis, data, extra=1)
    r = T.reshape(data, shape=data.shape[:ax] + (1,) + data.shape[ax:])
    return r if out is None else _write_out("expand_dims", out, r)


def squeeze(
    data: NDArray, axis: Any = None, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """Remove axes of length 1 (all of them, or those in ``axis``); a result with no axes
    left has shape (1,), as in MXNet."""
    if kwargs:
        raise _unknown(squeeze, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("squeeze", "data", data)
    if axis is None:
        shp = tuple(s for s in data.shape if s != 1)
    else:
        ax = _axes("squeeze", axis, data)
        for a in ax:
            if data.shape[a] != 1:
                raise ShapeError(
                    f"squeeze: axis {a} of an array of shape {fmt_shape(data.shape)} has size "
                    f"{data.shape[a]}, not 1. Fix: squeeze only axes of size 1."
                )
        shp = tuple(s for i, s in enumerate(data.shape) if i not in ax)
    r = T.reshape(data, shape=shp or (1,))
    return r if out is None else _write_out("squeeze", out, r)


def broadcast_to(
    data: NDArray, shape: Any, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """Broadcast to ``shape``; a 0 in ``shape`` keeps that dimension (MXNet)."""
    if kwargs:
        raise _unknown(broadcast_to, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("broadcast_to", "data", data)
    shape = _shape_arg("broadcast_to", shape)
    src = data.shape
    if len(shape) < len(src):
        raise ShapeError(
            f"broadcast_to: cannot broadcast an array of shape {fmt_shape(src)} to "
            f"{fmt_shape(shape)}, which has fewer axes. Fix: give a shape with at least "
            f"{len(src)} axes."
        )
    lead = len(shape) - len(src)
    shape = tuple(src[i - lead] if s == 0 and i >= lead else s for i, s in enumerate(shape))
    r = T.broadcast_to(data, shape=shape)
    return r if out is None else _write_out("broadcast_to", out, r)


def broadcast_like(
    lhs: NDArray,
    rhs: NDArray,
    lhs_axes: Any = None,
    rhs_axes: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Broadcast ``lhs`` to the shape of ``rhs`` (only ``lhs_axes``, to the sizes of
    ``rhs_axes``, when given)."""
    if kwargs:
        raise _unknown(broadcast_like, kwargs)
    if type(lhs) is not NDArray:
        lhs = _bad_nd("broadcast_like", "lhs", lhs)
    if type(rhs) is not NDArray:
        rhs = _bad_nd("broadcast_like", "rhs", rhs)
    if lhs_axes is None and rhs_axes is None:
        shape = rhs.shape
    else:
        la = _axes("broadcast_like", () if lhs_axes is None else lhs_axes, lhs, "lhs_axes")
        ra = _axes("broadcast_like", () if rhs_axes is None else rhs_axes, rhs, "rhs_axes")
        if len(la) != len(ra):
            raise ArgumentValueError(
                f"broadcast_like: lhs_axes={lhs_axes} and rhs_axes={rhs_axes} must have the "
                "same length. Fix: pair each lhs axis with one rhs axis."
            )
        shp = list(lhs.shape)
        for a, b in zip(la, ra):
            shp[a] = rhs.shape[b]
        shape = tuple(shp)
    r = T.broadcast_to(lhs, shape=shape)
    return r if out is None else _write_out("broadcast_like", out, r)


def broadcast_axis(
    data: NDArray,
    axis: Any = (),
    size: Any = (),
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Broadcast the length-1 axes ``axis`` to the lengths ``size``."""
    if kwargs:
        raise _unknown(broadcast_axis, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("broadcast_axis", "data", data)
    ax = _axes("broadcast_axis", axis, data)
    sz = _shape_arg("broadcast_axis", size, "size")
    if len(ax) != len(sz):
        raise ArgumentValueError(
            f"broadcast_axis: axis={axis} and size={size} must have the same length. Fix: "
            "give one size per axis."
        )
    shp = list(data.shape)
    for a, s in zip(ax, sz):
        if shp[a] != 1 and shp[a] != s:
            raise ShapeError(
                f"broadcast_axis: axis {a} of an array of shape {fmt_shape(data.shape)} has "
                f"size {shp[a]}, not 1. Fix: broadcast only axes of size 1."
            )
        shp[a] = s
    r = T.broadcast_to(data, shape=tuple(shp))
    return r if out is None else _write_out("broadcast_axis", out, r)


broadcast_axes = broadcast_axis


def _arrays(fn: str, data: tuple) -> tuple:
    if len(data) == 1 and isinstance(data[0], (list, tuple)):
        data = tuple(data[0])
    if not data:
        raise ArgumentValueError(f"{fn}: no arrays given. Fix: pass at least one NDArray.")
    for i, d in enumerate(data):
        if type(d) is not NDArray:
            _bad_nd(fn, f"data[{i}]", d)
    return data


def concat(
    *data: NDArray,
    dim: int = 1,
    num_args: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Join arrays along ``dim`` (MXNet's default is 1)."""
    if kwargs:
        raise _unknown(concat, kwargs)
    data = _arrays("concat", data)
    first = data[0]
    ax = _ax("concat", dim, first, "dim")
    for d in data[1:]:
        if d.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(d.shape, first.shape)) if i != ax
        ):
            raise ShapeError(
                f"concat: arrays of shapes {', '.join(fmt_shape(x.shape) for x in data)} "
                f"differ outside dim {dim}. Fix: make every other dimension equal."
            )
    r = T.concat(*data, axis=ax)
    return r if out is None else _write_out("concat", out, r)


concatenate = concat
Concat = concat


def stack(
    *data: NDArray,
    axis: int = 0,
    num_args: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Join arrays of one shape along a new axis."""
    if kwargs:
        raise _unknown(stack, kwargs)
    data = _arrays("stack", data)
    first = data[0]
    ax = _ax("stack", axis, first, extra=1)
    if any(d.shape != first.shape for d in data[1:]):
        raise ShapeError(
            f"stack: arrays of shapes {', '.join(fmt_shape(x.shape) for x in data)} differ. "
            "Fix: stack arrays of one shape."
        )
    r = T.stack(*data, axis=ax)
    return r if out is None else _write_out("stack", out, r)


def split(
    data: NDArray,
    num_outputs: int,
    axis: int = 1,
    squeeze_axis: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> Any:
    """Split into ``num_outputs`` equal parts along ``axis`` (list, or one array if 1)."""
    if kwargs:
        raise _unknown(split, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("split", "data", data)
    ax = _ax("split", axis, data)
    num_outputs = _int("split", "num_outputs", num_outputs, lo=1)
    squeeze_axis = _flag("split", "squeeze_axis", squeeze_axis)
    n = data.shape[ax]
    if n % num_outputs or (n == 0 and num_outputs > 1):
        raise ShapeError(
            f"split: axis {axis} of shape {fmt_shape(data.shape)} has length {n}, which is "
            f"not divisible into num_outputs={num_outputs} parts. Fix: choose a divisor of {n}."
        )
    step = n // num_outputs
    outs = []
    for i in range(num_outputs):
        key = (builtins.slice(None),) * ax + (builtins.slice(i * step, (i + 1) * step),)
        o = T.getitem(data, key=key)
        if squeeze_axis and step == 1:
            o = T.reshape(o, shape=data.shape[:ax] + data.shape[ax + 1 :])
        outs.append(o)
    r = outs[0] if num_outputs == 1 else outs
    return r if out is None else _write_out("split", out, r)


SliceChannel = split


def _bound(fn: str, arg: str, v: Any) -> Any:
    if v is None or type(v) is int:
        return v
    if isinstance(v, np.integer):
        return int(v)
    raise ArgumentError(f"{fn}: {arg} must hold ints or None, got {_short(v)}. Fix: pass ints.")


def slice(
    data: NDArray,
    begin: Any,
    end: Any,
    step: Any = (),
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """``data[begin:end:step]`` per axis (None entries mean the whole axis)."""
    if kwargs:
        raise _unknown(slice, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("slice", "data", data)
    for arg, v in (("begin", begin), ("end", end), ("step", step)):
        if not isinstance(v, (tuple, list)):
            raise ArgumentError(
                f"slice: {arg} must be a tuple of ints or None, got {_short(v)}. Fix: pass "
                f"e.g. {arg}=(0, None)."
            )
    step = tuple(step) or (None,) * len(begin)
    if not len(begin) == len(end) == len(step) or len(begin) > data.ndim:
        raise ArgumentValueError(
            f"slice: begin={tuple(begin)}, end={tuple(end)} and step={step} must have one "
            f"entry per sliced axis (at most {data.ndim} for shape {fmt_shape(data.shape)}). "
            "Fix: give begin, end (and step) of equal lengths."
        )
    key = []
    for b, e, s in zip(begin, end, step):
        b, e, s = _bound("slice", "begin", b), _bound("slice", "end", e), _bound("slice", "step", s)
        if s == 0:
            raise ArgumentValueError("slice: a step is 0. Fix: use non-zero steps.")
        key.append(builtins.slice(b, e, s))
    r = T.getitem(data, key=tuple(key))
    return r if out is None else _write_out("slice", out, r)


crop = slice


def slice_axis(
    data: NDArray,
    axis: int,
    begin: int,
    end: Any,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """``data[..., begin:end, ...]`` along one axis (negative begin/end count from the end;
    end None is the axis's length). As in MXNet, an empty or out-of-range slice raises."""
    if kwargs:
        raise _unknown(slice_axis, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("slice_axis", "data", data)
    ax = _ax("slice_axis", axis, data)
    n = data.shape[ax]
    b = _int("slice_axis", "begin", begin)
    e = n if end is None else _int("slice_axis", "end", end)
    b, e = b + n if b < 0 else b, e + n if e < 0 else e
    if n and not 0 <= b < e <= n:
        raise IndexingError(
            f"slice_axis: begin={begin}, end={end} do not select a non-empty range of axis "
            f"{axis} (length {n}) of shape {fmt_shape(data.shape)}. Fix: use "
            f"-{n} <= begin < end <= {n} (negative values count from the end)."
        )
    key = (builtins.slice(None),) * ax + (builtins.slice(b, e) if n else builtins.slice(0, 0),)
    r = T.getitem(data, key=key)
    return r if out is None else _write_out("slice_axis", out, r)


def slice_like(
    data: NDArray,
    shape_like: NDArray,
    axes: Any = (),
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """``data`` cut to the shape of ``shape_like`` (on ``axes`` only, when given)."""
    if kwargs:
        raise _unknown(slice_like, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("slice_like", "data", data)
    if type(shape_like) is not NDArray:
        shape_like = _bad_nd("slice_like", "shape_like", shape_like)
    if axes is None or (isinstance(axes, (tuple, list)) and not axes):
        if shape_like.ndim != data.ndim:
            raise ShapeError(
                f"slice_like: data of shape {fmt_shape(data.shape)} and shape_like of shape "
                f"{fmt_shape(shape_like.shape)} have different numbers of axes. Fix: pass "
                "axes= to name the axes to cut."
            )
        ax = tuple(range(data.ndim))
    else:
        ax = _axes("slice_like", axes, data, "axes")
        _axes("slice_like", axes, shape_like, "axes")
    key = [builtins.slice(None)] * data.ndim
    for a in ax:
        key[a] = builtins.slice(0, shape_like.shape[a])
    r = T.getitem(data, key=tuple(key))
    return r if out is None else _write_out("slice_like", out, r)


def tile(data: NDArray, reps: Any, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """Repeat the whole array ``reps`` times along each axis."""
    if kwargs:
        raise _unknown(tile, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("tile", "data", data)
    reps = _shape_arg("tile", reps, "reps")
    r = T.tile(data, reps=reps)
    return r if out is None else _write_out("tile", out, r)


def repeat(
    data: NDArray,
    repeats: int,
    axis: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Repeat each element ``repeats`` times along ``axis`` (of the flattened array when
    None)."""
    if kwargs:
        raise _unknown(repeat, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("repeat", "data", data)
    repeats = _int("repeat", "repeats", repeats, lo=0)
    if axis is not None:
        axis = _ax("repeat", axis, data)
    r = T.repeat(data, repeats=repeats, axis=axis)
    return r if out is None else _write_out("repeat", out, r)


def flip(data: NDArray, axis: Any, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """Reverse the order of the elements along ``axis`` (an int or a tuple)."""
    if kwargs:
        raise _unknown(flip, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("flip", "data", data)
    ax = _axes("flip", axis, data)
    r = T.flip(data, axis=ax[0] if len(ax) == 1 else ax)
    return r if out is None else _write_out("flip", out, r)


reverse = flip


# --------------------------------------------------------------------------- indexing


def _as_index(
    x: Any,
    n: int,
    mode: str = "clip",
    fn: str = "as_index",
    arg: str = "indices",
    shape: Any = None,
) -> np.ndarray:
    idx = _indices(x, n, mode, fn, arg)
    return idx if shape is None else idx.reshape(shape)


# integer positions computed from an index array (rounded, clipped, wrapped or checked): a
# primitive of zero derivative, so that a compiled function recomputes them at every call
defprim("as_index", _as_index, ZERO, ZERO, explain=Formula("positions({0})", "0"))


def _index_input(
    indices: Any, n: int, mode: str, fn: str, arg: str = "indices", shape: Any = None
) -> Any:
    """``indices`` as integer positions for ``take_at``/``pick_at``: an NDArray (through
    ``as_index``, recorded when ``indices`` is on a graph) or, for lists and NumPy arrays, the
    checked positions themselves."""
    if type(indices) is NDArray:
        return T.as_index(indices, n=n, mode=mode, fn=fn, arg=arg, shape=shape)
    return _as_index(indices, n, mode, fn, arg, shape)


def take(
    a: NDArray,
    indices: Any,
    axis: int = 0,
    mode: str = "clip",
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Gather slices of ``a`` along ``axis`` at ``indices`` (differentiable in ``a``)."""
    if kwargs:
        raise _unknown(take, kwargs)
    if type(a) is not NDArray:
        a = _bad_nd("take", "a", a)
    ax = _ax("take", axis, a)
    r = T.take_at(a, _index_input(indices, a.shape[ax], mode, "take"), axis=ax - a.ndim)
    return r if out is None else _write_out("take", out, r)


def pick(
    data: NDArray,
    index: Any,
    axis: int = -1,
    keepdims: bool = False,
    mode: str = "clip",
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Pick one element along ``axis`` per position: ``out[i] = data[i, index[i]]``."""
    if kwargs:
        raise _unknown(pick, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("pick", "data", data)
    if axis is None:
        raise ArgumentValueError(
            "pick: axis=None is not supported (nor was it in MXNet). Fix: pass the axis to "
            "pick along."
        )
    ax = _ax("pick", axis, data)
    keepdims = _flag("pick", "keepdims", keepdims)
    other = data.shape[:ax] + data.shape[ax + 1 :]
    ishape = tuple(index.shape) if type(index) is NDArray else np.shape(index)
    if ishape != other and math.prod(ishape) != math.prod(other):
        raise ShapeError(
            f"pick: index of shape {fmt_shape(ishape)} does not fit data of shape "
            f"{fmt_shape(data.shape)} picked along axis {axis}: it needs one position "
            f"per entry of shape {fmt_shape(other)}. Fix: pass an index of that shape."
        )
    idx = _index_input(index, data.shape[ax], mode, "pick", "index", shape=other)
    r = T.pick_at(data, idx, axis=ax - data.ndim)
    if keepdims:
        r = T.reshape(r, shape=other[:ax] + (1,) + other[ax:])
    return r if out is None else _write_out("pick", out, r)


def one_hot(
    indices: Any,
    depth: int,
    on_value: float = 1.0,
    off_value: float = 0.0,
    dtype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """One-hot encoding of integer ``indices`` (not differentiable); positions outside
    ``[0, depth)`` give rows of ``off_value``, as in MXNet."""
    if kwargs:
        raise _unknown(one_hot, kwargs)
    depth = _int("one_hot", "depth", depth, lo=0)
    on_value = _number("one_hot", "on_value", on_value)
    off_value = _number("one_hot", "off_value", off_value)
    dt = _dt("one_hot", dtype)
    idx = _index_array(indices, "one_hot", "indices")
    o = _make("one_hot", np.full, idx.shape + (depth,), off_value, dt)
    valid = (idx >= 0) & (idx < depth)
    o[valid, idx[valid]] = on_value
    r = NDArray(o)
    return r if out is None else _write_out("one_hot", out, r)


def Embedding(
    data: Any,
    weight: NDArray,
    input_dim: int = 0,
    output_dim: int = 0,
    dtype: Any = None,
    sparse_grad: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Rows of ``weight`` (input_dim, output_dim) at the integer positions in ``data``
    (clipped to the rows, as in MXNet)."""
    if kwargs:
        raise _unknown(Embedding, kwargs)
    if type(weight) is not NDArray:
        weight = _bad_nd("Embedding", "weight", weight)
    if weight.ndim != 2:
        raise ShapeError(
            f"Embedding: weight must be 2-D (input_dim, output_dim), got shape "
            f"{fmt_shape(weight.shape)}. Fix: pass a weight of shape (input_dim, output_dim)."
        )
    for arg, v, have in (("input_dim", input_dim, 0), ("output_dim", output_dim, 1)):
        v = _int("Embedding", arg, v, lo=0)
        if v and v != weight.shape[have]:
            raise ShapeError(
                f"Embedding: {arg}={v} but the weight has shape {fmt_shape(weight.shape)}. "
                f"Fix: pass {arg}={weight.shape[have]} or a weight that fits."
            )
    _flag("Embedding", "sparse_grad", sparse_grad)
    if dtype is not None:
        _dt("Embedding", dtype)
    r = T.take_at(weight, _index_input(data, weight.shape[0], "clip", "Embedding", "data"), axis=-2)
    return r if out is None else _write_out("Embedding", out, r)


def _flat_or_axis(fn: str, data: NDArray, axis: Any) -> tuple:
    """(the array to sort, its axis): the flattened array when ``axis`` is None (MXNet)."""
    if axis is None:
        return T.reshape(data, shape=(-1,)), 0
    return data, _ax(fn, axis, data)


def _order(src: NDArray, ax: int, is_ascend: Any) -> np.ndarray:
    _read(src, "sort/topk/argsort")
    order = np.argsort(np.asarray(src._data), axis=ax, kind="stable")
    return order if is_ascend else np.flip(order, axis=ax)


def _gather(src: NDArray, order: np.ndarray, ax: int) -> NDArray:
    grids = list(np.indices(order.shape, sparse=True))
    grids[ax] = order
    return T.getitem(src, key=tuple(grids))


def sort(
    data: NDArray,
    axis: Any = -1,
    is_ascend: bool = True,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Sorted values along ``axis`` (of the flattened array when None); differentiable: a
    gather at the sorted positions."""
    if kwargs:
        raise _unknown(sort, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("sort", "data", data)
    is_ascend = _flag("sort", "is_ascend", is_ascend)
    src, ax = _flat_or_axis("sort", data, axis)
    r = _gather(src, _order(src, ax, is_ascend), ax)
    return r if out is None else _write_out("sort", out, r)


def argsort(
    data: NDArray,
    axis: Any = -1,
    is_ascend: bool = True,
    dtype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Positions that sort ``data`` along ``axis`` (of the flattened array when None), as
    ``dtype`` (float32 by default, as in MXNet)."""
    if kwargs:
        raise _unknown(argsort, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("argsort", "data", data)
    dt = _dt("argsort", dtype)
    is_ascend = _flag("argsort", "is_ascend", is_ascend)
    src, ax = _flat_or_axis("argsort", data, axis)
    r = NDArray(_order(src, ax, is_ascend).astype(dt))
    return r if out is None else _write_out("argsort", out, r)


_RET_TYPES = ("indices", "value", "both", "mask")


def topk(
    data: NDArray,
    axis: Any = -1,
    k: int = 1,
    ret_typ: str = "indices",
    is_ascend: bool = False,
    dtype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> Any:
    """The k largest (or smallest) entries along ``axis`` (of the flattened array when
    None): their positions (as ``dtype``, float32 by default), their values, both
    (``[values, positions]``), or a 0/1 mask of ``data``'s shape. As in MXNet, ``k < 1``
    selects every entry and a ``k`` beyond the axis's length raises."""
    if kwargs:
        raise _unknown(topk, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("topk", "data", data)
    _choice("topk", "ret_typ", ret_typ, _RET_TYPES)
    k = _int("topk", "k", k)
    dt = _dt("topk", dtype)
    is_ascend = _flag("topk", "is_ascend", is_ascend)
    src, ax = _flat_or_axis("topk", data, axis)
    n = src.shape[ax]
    if k < 1:
        k = n
    elif k > n:
        raise ArgumentValueError(
            f"topk: k={k} but axis {axis} of the input of shape {fmt_shape(data.shape)} has "
            f"only {n} entries. Fix: use k <= {n}, or k=0 for all of them."
        )
    order = _order(src, ax, is_ascend)[(builtins.slice(None),) * ax + (builtins.slice(0, k),)]
    if ret_typ == "indices":
        r = NDArray(order.astype(dt))
    elif ret_typ == "mask":
        mask = np.zeros(src.shape, dtype=data.dtype)
        np.put_along_axis(mask, order, 1, axis=ax)
        r = NDArray(mask.reshape(data.shape))
    else:
        vals = _gather(src, order, ax)
        r = vals if ret_typ == "value" else [vals, NDArray(order.astype(dt))]
    return r if out is None else _write_out("topk", out, r)


# ---------------------------------------------------------------------- linear algebra


def _operand(fn: str, arg: str, x: Any, like: Any) -> NDArray:
    """A dot operand: an NDArray, or numbers / a NumPy array converted to ``like``'s dtype."""
    if isinstance(x, NDArray):
        return x
    if isinstance(x, (np.ndarray, list, tuple, int, float)) and not isinstance(x, bool):
        dt = like.dtype if isinstance(like, NDArray) else None
        return array(x, dtype=dt)
    return _bad_nd(fn, arg, x)


def dot(
    lhs: NDArray,
    rhs: NDArray,
    transpose_a: bool = False,
    transpose_b: bool = False,
    forward_stype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's dot: matrix product for 2-D; for N-D, contracts the last axis of ``lhs``
    with the first axis of ``rhs``.

    >>> import tapegrad as mx
    >>> mx.nd.dot(mx.nd.ones((2, 3)), mx.nd.ones((3, 4))).shape
    (2, 4)
    """
    if kwargs:
        raise _unknown(dot, kwargs)
    if type(lhs) is not NDArray:
        lhs = _operand("dot", "lhs", lhs, rhs)
    if type(rhs) is not NDArray:
        rhs = _operand("dot", "rhs", rhs, lhs)
    if forward_stype is not None:
        _dense("dot", forward_stype)
    if type(transpose_a) is not bool:
        transpose_a = _flag("dot", "transpose_a", transpose_a)
    if type(transpose_b) is not bool:
        transpose_b = _flag("dot", "transpose_b", transpose_b)
    # raw shapes, not the NDArray properties: this runs for every layer of every step
    if transpose_a:
        n = len(lhs._data.shape)
        lhs = T.transpose(lhs, axes=tuple(range(1, n)) + (0,)) if n > 2 else T.transpose(lhs)
    if transpose_b:
        n = len(rhs._data.shape)
        rhs = T.transpose(rhs, axes=(n - 1,) + tuple(range(n - 1))) if n > 2 else T.transpose(rhs)
    a_shape, b_shape = lhs._data.shape, rhs._data.shape
    k1 = a_shape[-1] if a_shape else 1
    k2 = b_shape[0] if b_shape else 1
    if k1 != k2:
        raise ShapeError(
            f"dot: shapes {fmt_shape(a_shape)} and {fmt_shape(b_shape)} are not aligned "
            f"(the last axis of lhs has {k1} elements, the first axis of rhs has {k2}). Fix: "
            "transpose one operand (transpose_a / transpose_b) or reshape it."
        )
    na, nb = len(a_shape), len(b_shape)
    if na == 2 and nb == 2:
        r = T.matmul(lhs, rhs)
    elif na == 1 and nb == 1:
        r = T.sum(lhs * rhs, axis=None)
    else:
        a2 = T.reshape(lhs, shape=(math.prod(a_shape[:-1]), k1)) if na != 2 else lhs
        b2 = T.reshape(rhs, shape=(k2, math.prod(b_shape[1:]))) if nb != 2 else rhs
        r = T.reshape(T.matmul(a2, b2), shape=a_shape[:-1] + b_shape[1:])
    return r if out is None else _write_out("dot", out, r)


def batch_dot(
    lhs: NDArray,
    rhs: NDArray,
    transpose_a: bool = False,
    transpose_b: bool = False,
    forward_stype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Batched matrix product of (B, N, K) and (B, K, M) arrays."""
    if kwargs:
        raise _unknown(batch_dot, kwargs)
    if type(lhs) is not NDArray:
        lhs = _bad_nd("batch_dot", "lhs", lhs)
    if type(rhs) is not NDArray:
        rhs = _bad_nd("batch_dot", "rhs", rhs)
    if forward_stype is not None:
        _dense("batch_dot", forward_stype)
    transpose_a = _flag("batch_dot", "transpose_a", transpose_a)
    transpose_b = _flag("batch_dot", "transpose_b", transpose_b)
    if lhs.ndim < 3 or rhs.ndim < 3:
        raise ShapeError(
            f"batch_dot: operands must be at least 3-D, got {fmt_shape(lhs.shape)} and "
            f"{fmt_shape(rhs.shape)}. Fix: add a batch axis (expand_dims) or use dot."
        )
    if transpose_a:
        lhs = swapaxes(lhs, -1, -2)
    if transpose_b:
        rhs = swapaxes(rhs, -1, -2)
    if lhs.shape[-1] != rhs.shape[-2] or lhs.shape[:-2] != rhs.shape[:-2]:
        raise ShapeError(
            f"batch_dot: shapes {fmt_shape(lhs.shape)} and {fmt_shape(rhs.shape)} do not fit "
            "(need (B, N, K) and (B, K, M)). Fix: transpose or reshape an operand."
        )
    r = T.matmul(lhs, rhs)
    return r if out is None else _write_out("batch_dot", out, r)


def linalg_gemm2(
    A: NDArray,
    B: NDArray,
    transpose_a: bool = False,
    transpose_b: bool = False,
    alpha: float = 1.0,
    axis: int = -2,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """``alpha * op(A) @ op(B)`` over the last two axes (batched for N-D); MXNet's ``axis``
    (the axis of the matrices' rows) must be -2 here."""
    if kwargs:
        raise _unknown(linalg_gemm2, kwargs)
    if axis != -2 or type(axis) is not int:
        raise ArgumentValueError(
            f"linalg_gemm2: axis={axis!r} is not supported (only -2: the matrices are the "
            "last two axes). Fix: move the row axis with swapaxes/transpose first."
        )
    if type(A) is not NDArray:
        A = _bad_nd("linalg_gemm2", "A", A)
    if type(B) is not NDArray:
        B = _bad_nd("linalg_gemm2", "B", B)
    alpha = _number("linalg_gemm2", "alpha", alpha)
    if A.ndim < 2 or B.ndim < 2:
        raise ShapeError(
            f"linalg_gemm2: A and B must be at least 2-D, got {fmt_shape(A.shape)} and "
            f"{fmt_shape(B.shape)}. Fix: reshape them to matrices."
        )
    f = batch_dot if A.ndim > 2 else dot
    r = f(A, B, transpose_a=transpose_a, transpose_b=transpose_b)
    r = r * alpha if alpha != 1.0 else r
    return r if out is None else _write_out("linalg_gemm2", out, r)


def FullyConnected(
    data: NDArray,
    weight: NDArray,
    bias: Any = None,
    num_hidden: int = 0,
    no_bias: bool = False,
    flatten: bool = True,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """``data @ weight.T + bias`` with weight of shape (num_hidden, in_units).

    With ``flatten`` (default) the input is reshaped to (batch, -1) first (a 1-D input of
    length N is N samples of one feature, as in MXNet); otherwise the product applies to
    the last axis.
    """
    if kwargs:
        raise _unknown(FullyConnected, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("FullyConnected", "data", data)
    if type(weight) is not NDArray:
        weight = _bad_nd("FullyConnected", "weight", weight)
    if type(flatten) is not bool:
        flatten = _flag("FullyConnected", "flatten", flatten)
    if type(no_bias) is not bool:
        no_bias = _flag("FullyConnected", "no_bias", no_bias)
    x = data
    shp = x._data.shape
    if not shp:
        raise ShapeError(
            "FullyConnected: the input is 0-d (shape ()). Fix: pass a batch, e.g. "
            "x.reshape((1, 1))."
        )
    if flatten and len(shp) != 2:
        x = T.reshape(x, shape=(shp[0], math.prod(shp[1:])))
    in_units = x._data.shape[-1]
    wshape = weight._data.shape
    if len(wshape) != 2 or wshape[1] != in_units:
        h = wshape[0] if wshape else num_hidden
        raise ShapeError(
            f"FullyConnected: input of shape {fmt_shape(data.shape)} has {in_units} features "
            f"but the weight has shape {fmt_shape(wshape)} (expected ({h}, {in_units})). Fix: "
            f"pass in_units={in_units} or check the input shape."
        )
    if num_hidden and wshape[0] != num_hidden:
        raise ShapeError(
            f"FullyConnected: num_hidden={num_hidden} but the weight has shape "
            f"{fmt_shape(wshape)} ({wshape[0]} outputs). Fix: pass a weight of "
            f"shape ({num_hidden}, {in_units}) or num_hidden={wshape[0]}."
        )
    b = None if no_bias else bias
    if b is not None:
        if type(b) is not NDArray:
            b = _bad_nd("FullyConnected", "bias", b)
        if b._data.shape != (wshape[0],):
            raise ShapeError(
                f"FullyConnected: the bias has shape {fmt_shape(b.shape)} but the weight "
                f"{fmt_shape(wshape)} needs ({wshape[0]},). Fix: pass a bias of shape "
                f"({wshape[0]},) or no_bias=True."
            )
    if len(x._data.shape) == 2:
        r = T.fully_connected(x, weight, b) if b is not None else T.fully_connected(x, weight)
    else:
        lead = x._data.shape[:-1]
        x2 = T.reshape(x, shape=(math.prod(lead), in_units))
        r = T.fully_connected(x2, weight, b) if b is not None else T.fully_connected(x2, weight)
        r = T.reshape(r, shape=lead + (wshape[0],))
    return r if out is None else _write_out("FullyConnected", out, r)


# ------------------------------------------------------------------------------- nn


def _temperature(fn: str, data: NDArray, temperature: Any) -> NDArray:
    t = _number(fn, "temperature", temperature)
    if t == 1.0:
        return data
    if t == 0:
        raise ArgumentValueError(
            f"{fn}: temperature=0 divides by zero. Fix: pass a positive temperature."
        )
    return data / t


def softmax(
    data: NDArray,
    axis: int = -1,
    temperature: Any = None,
    length: Any = None,
    use_length: bool = False,
    dtype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Softmax along ``axis`` (max-shifted, stable); ``dtype`` casts the output.

    >>> import tapegrad as mx
    >>> mx.nd.softmax(mx.nd.array([0.0, 0.0]), dtype="float64").dtype
    <class 'numpy.float64'>
    """
    if kwargs:
        raise _unknown(softmax, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("softmax", "data", data)
    if use_length is not False and _flag("softmax", "use_length", use_length) or length is not None:
        raise ArgumentValueError(
            "softmax: length/use_length (masked softmax) is not supported. Fix: mask the "
            "input instead, e.g. nd.where(mask, data, -1e30) before softmax."
        )
    n = len(data._data.shape)
    if type(axis) is not int or not -n <= axis < n:
        axis = _bad_axis("softmax", axis, data, "axis", 0)
    dt = None if dtype is None else _dt("softmax", dtype)
    if temperature is not None:
        data = _temperature("softmax", data, temperature)
    r = T.softmax(data, axis=axis)
    if dt is not None:
        r = r.astype(dt, copy=False)
    return r if out is None else _write_out("softmax", out, r)


def log_softmax(
    data: NDArray,
    axis: int = -1,
    temperature: Any = None,
    dtype: Any = None,
    use_length: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """log(softmax) along ``axis``, computed stably; ``dtype`` casts the output."""
    if kwargs:
        raise _unknown(log_softmax, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("log_softmax", "data", data)
    if use_length is not False and _flag("log_softmax", "use_length", use_length):
        raise ArgumentValueError(
            "log_softmax: use_length (masked log_softmax) is not supported. Fix: mask the "
            "input instead, e.g. nd.where(mask, data, -1e30)."
        )
    n = len(data._data.shape)
    if type(axis) is not int or not -n <= axis < n:
        axis = _bad_axis("log_softmax", axis, data, "axis", 0)
    dt = None if dtype is None else _dt("log_softmax", dtype)
    if temperature is not None:
        data = _temperature("log_softmax", data, temperature)
    r = T.log_softmax(data, axis=axis)
    if dt is not None:
        r = r.astype(dt, copy=False)
    return r if out is None else _write_out("log_softmax", out, r)


def _check_labels(fn: str, data: NDArray, label: Any, ax: int) -> None:
    """``label`` must hold class indices for ``data``'s classes on axis ``ax``: one per
    position of data's shape without ``ax``, each a whole number in ``[0, classes)``; else a
    LabelError or a ShapeError. (MXNet 1.9 took the last class for -1 here while ``pick``
    clips it to class 0, and truncated 1.5: tapegrad refuses such labels.)"""
    raw = np.asarray(label._data) if type(label) is NDArray else _index_array(label, fn, "label")
    shape = data._data.shape
    n = shape[ax]
    other = shape[:ax] + shape[ax + 1 :]
    if raw.size != math.prod(other):
        raise ShapeError(
            f"{fn}: label of shape {fmt_shape(raw.shape)} does not fit data of shape "
            f"{fmt_shape(shape)} with classes on axis {ax}: it needs one label per entry "
            f"of shape {fmt_shape(other)}. Fix: pass labels of that shape."
        )
    if not raw.size:
        return
    kind = raw.dtype.kind
    if kind in "fiu":  # (NaN fails the bounds)
        if np.minimum.reduce(raw, axis=None) >= 0 and np.maximum.reduce(raw, axis=None) < n:
            if kind != "f" or not np.remainder(raw, 1).any():
                return
    if kind not in "biuf":
        _index_array(label, fn, "label")  # raises: not numbers
    vals = raw.astype(np.float64).reshape(-1)
    bad = ~((vals >= 0) & (vals < n) & (vals == np.trunc(vals)))  # (True for NaN)
    if not bad.any():  # bool labels
        return
    v = vals[np.argmax(bad)]
    v = int(v) if np.isfinite(v) and v == np.trunc(v) else v
    raise LabelError(
        f"{fn}: label {v} is not a class index of data of shape {fmt_shape(shape)}, which has "
        f"{n} classes on axis {ax} ({int(bad.sum())} of {vals.size} labels are not whole "
        f"numbers in 0..{n - 1}). "
        f"Fix: pass whole numbers in 0..{n - 1}."
    )


def softmax_cross_entropy(
    data: NDArray, label: Any, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """MXNet's ``softmax_cross_entropy``: the cross-entropy of softmax(data) against integer
    labels in ``[0, classes)`` (classes on the last axis), summed over the batch (shape
    (1,)). Fused and stable; differentiable to any order in ``data``."""
    if kwargs:
        raise _unknown(softmax_cross_entropy, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("softmax_cross_entropy", "data", data)
    ax = _ax("softmax_cross_entropy", -1, data)
    _check_labels("softmax_cross_entropy", data, label, ax)
    r = T.sum(T.softmax_ce(data, label, axis=ax), axis=None)
    return r if out is None else _write_out("softmax_cross_entropy", out, r)


def softmax_ce_loss(
    data: NDArray, label: Any, axis: int = -1, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """Per-position cross-entropy ``logsumexp(data) - data[label]`` along ``axis`` (the axis
    is removed); labels must be class indices in ``[0, classes)``. The fused form of
    ``-pick(log_softmax(data, axis), label, axis)``."""
    if kwargs:
        raise _unknown(softmax_ce_loss, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("softmax_ce_loss", "data", data)
    ax = _ax("softmax_ce_loss", axis, data)
    _check_labels("softmax_ce_loss", data, label, ax)
    r = T.softmax_ce(data, label, axis=ax)
    return r if out is None else _write_out("softmax_ce_loss", out, r)


def _softmax_ce_checked(data: NDArray, label: NDArray, ax: int) -> NDArray:
    """``softmax_ce_loss`` for a caller that has checked ``label`` already (the Gluon
    loss checks it once, in its own words)."""
    return T.softmax_ce(data, label, axis=ax)


def SoftmaxActivation(
    data: NDArray, mode: str = "instance", out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """Softmax over the last axis (``mode='instance'``) or over axis 1 (``'channel'``)."""
    if kwargs:
        raise _unknown(SoftmaxActivation, kwargs)
    _choice("SoftmaxActivation", "mode", mode, ("instance", "channel"))
    if type(data) is not NDArray:
        data = _bad_nd("SoftmaxActivation", "data", data)
    ax = _ax("SoftmaxActivation", 1 if mode == "channel" else -1, data)
    r = T.softmax(data, axis=ax)
    return r if out is None else _write_out("SoftmaxActivation", out, r)


def stop_gradient(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """The same values, with no gradient flowing back (MXNet's BlockGrad)."""
    if kwargs:
        raise _unknown(stop_gradient, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("stop_gradient", "data", data)
    r = data.detach()
    return r if out is None else _write_out("stop_gradient", out, r)


BlockGrad = stop_gradient


def _dropout_mask(x: Any, p: float, shape: tuple) -> np.ndarray:
    """0 with probability ``p``, else ``1 / (1 - p)``, in ``x``'s dtype, of ``shape``."""
    dt = np.result_type(x)
    keep = _random.generator().random(shape) >= p
    return keep.astype(dt) * dt.type(1.0 / (1.0 - p))


# a new mask at every call (impure: a compiled function draws it anew each time); its
# derivative with respect to the data it is drawn for is zero
defprim(
    "dropout_mask",
    _dropout_mask,
    [ZERO],
    ZERO,
    impure=True,
    explain=Formula("mask({0})", "0"),
)


def Dropout(
    data: NDArray,
    p: float = 0.5,
    mode: str = "training",
    axes: Any = (),
    cudnn_off: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), in training
    mode only (``mode='always'``: always). ``axes`` share one mask along those axes."""
    if kwargs:
        raise _unknown(Dropout, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("Dropout", "data", data)
    p = _number("Dropout", "p", p)
    if not 0.0 <= p <= 1.0:
        raise ArgumentValueError(f"Dropout: p={p} must be in [0, 1]. Fix: choose 0 <= p < 1.")
    _choice("Dropout", "mode", mode, ("training", "always"))
    empty = isinstance(axes, (tuple, list)) and not axes
    shared = () if empty else set(_axes("Dropout", axes, data, "axes"))
    active = STATE.training or mode == "always"
    if p == 1.0 and active:
        r = data * 0.0
    elif p == 0.0 or not active:
        r = data
    else:
        shp = tuple(1 if i in shared else s for i, s in enumerate(data.shape))
        r = data * T.dropout_mask(data, p=p, shape=shp)
    return r if out is None else _write_out("Dropout", out, r)


def smooth_l1(
    data: NDArray, scalar: float = 1.0, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """Smooth L1 (MXNet's smooth_l1 with sigma = scalar)."""
    if kwargs:
        raise _unknown(smooth_l1, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("smooth_l1", "data", data)
    scalar = _number("smooth_l1", "scalar", scalar)
    if scalar == 0:
        raise ArgumentValueError(
            "smooth_l1: scalar=0 (sigma) divides by zero. Fix: pass a positive scalar."
        )
    s2 = scalar * scalar
    a = T.abs(data)
    r = T.where(a < 1.0 / s2, data * data * (0.5 * s2), a - 0.5 / s2)
    return r if out is None else _write_out("smooth_l1", out, r)


def L2Normalization(
    data: NDArray,
    eps: float = 1e-10,
    mode: str = "instance",
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Divide by the L2 norm over every axis but the first (``mode='instance'``), over axis
    1 (``'channel'``) or over the axes after 1 (``'spatial'``)."""
    if kwargs:
        raise _unknown(L2Normalization, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("L2Normalization", "data", data)
    _choice("L2Normalization", "mode", mode, ("instance", "channel", "spatial"))
    eps = _number("L2Normalization", "eps", eps)
    need = 3 if mode == "spatial" else 2
    if data.ndim < need:
        raise ShapeError(
            f"L2Normalization: mode={mode!r} needs an input of at least {need} axes, got shape "
            f"{fmt_shape(data.shape)}. Fix: reshape the input (batch first)."
        )
    if mode == "instance":
        axes = tuple(range(1, data.ndim))
    elif mode == "channel":
        axes = (1,)
    else:
        axes = tuple(range(2, data.ndim))
    x = data.astype(np.float32) if data.dtype == np.float16 else data
    # eps = 1e-10 is 0 in float16: float16 is normalized in float32
    r = x / T.sqrt(T.sum(x * x, axis=axes, keepdims=True) + eps)
    r = r.astype(np.float16) if data.dtype == np.float16 else r
    return r if out is None else _write_out("L2Normalization", out, r)


# ------------------------------------------------------------------------------ I/O


def save(fname: str, data: Any, **kwargs: Any) -> None:
    """Save an NDArray, a list or a dict of NDArrays in MXNet's .params format."""
    if kwargs:
        raise _unknown(save, kwargs)
    from .. import serialization

    serialization.save(fname, data)


def load(fname: str, **kwargs: Any) -> Any:
    """Load arrays saved by :func:`save` or by MXNet 1.x (never executes code)."""
    if kwargs:
        raise _unknown(load, kwargs)
    from .. import serialization

    return serialization.load(fname)


# ------------------------------------------------------------- NDArray's composite methods


def _reshape_method(self: NDArray, *shape: Any, **kwargs: Any) -> NDArray:
    """Reshape with MXNet's special codes (0 copy, -1 infer, -2, -3, -4). As MXNet 1.x's
    ``NDArray.reshape`` (not ``nd.reshape``), an explicit shape with fewer elements is a view
    of the first ones: ``nd.arange(6).reshape((3, 1))`` is ``[[0], [1], [2]]``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if "shape" in kwargs:
        shape = kwargs.pop("shape")
    if (
        not kwargs
        and isinstance(shape, tuple)
        and shape
        and all(type(s) is int and s > 0 for s in shape)
        and math.prod(shape) < self.size
    ):
        return reshape(reshape(self, (-1,))[: math.prod(shape)], shape)
    return reshape(self, shape, **kwargs)


def _method(f: Any, name: str) -> Any:
    def method(self: NDArray, *args: Any, **kwargs: Any) -> Any:
        return f(self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"``nd.{name}`` of this array."
    return method


def _attach_methods() -> None:
    NDArray.reshape = _reshape_method
    NDArray.__matmul__ = lambda self, o: dot(self, o)
    NDArray.__rmatmul__ = lambda self, o: dot(o, self)
    g = globals()
    for name in (
        "swapaxes", "flatten", "expand_dims", "squeeze", "broadcast_to", "one_hot",
        "sum", "mean", "max", "min", "prod", "nansum", "argmax", "argmin", "norm", "logsumexp",
        "clip", "softmax", "log_softmax", "pick", "take", "slice", "slice_axis", "split",
        "topk", "sort", "argsort", "dot",
    ):  # fmt: skip
        setattr(NDArray, name, _method(g[name], name))


_attach_methods()

#: what ``mx.nd`` exports: MXNet 1.x's names (and ``softmax_ce_loss``, the fused loss) for
#: the composites above, then the primitives' functions
# ------------------------------------------- more of MXNet 1.9.1's names for what tapegrad computes
# (the names of MXNet's operator list that tapegrad leaves out are listed, with the reasons, in
# docs/mxnet_api.md; tests/test_mxnet_names.py keeps the two in step)

less = globals()["lesser"]
less_equal = globals()["lesser_equal"]
Reshape = reshape


def _angle(fn: str, factor: float) -> Any:
    def f(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
        if kwargs:
            raise _unknown(f, kwargs)
        if type(data) is not NDArray:
            data = _bad_nd(fn, "data", data)
        r = T.multiply(data, factor)
        return r if out is None else _write_out(fn, out, r)

    f.__name__ = f.__qualname__ = fn
    return f


radians = _angle("radians", math.pi / 180.0)
radians.__doc__ = """Degrees to radians, elementwise (``data * pi / 180``).

    >>> import tapegrad as mx
    >>> mx.nd.radians(mx.nd.array([180.0], dtype="float64")).asnumpy().round(5).tolist()
    [3.14159]
    """
degrees = _angle("degrees", 180.0 / math.pi)
degrees.__doc__ = """Radians to degrees, elementwise (``data * 180 / pi``)."""


def identity(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """A copy of ``data`` (MXNet's ``identity``/``_copy``); the gradient passes through."""
    if kwargs:
        raise _unknown(identity, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("identity", "data", data)
    r = T.copy(data)
    return r if out is None else _write_out("identity", out, r)


def cast(data: NDArray, dtype: Any, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """``data`` in ``dtype`` (MXNet's ``Cast``); the gradient is cast back."""
    if kwargs:
        raise _unknown(cast, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("cast", "data", data)
    r = data.astype(_dt("cast", dtype))
    return r if out is None else _write_out("cast", out, r)


Cast = cast


def add_n(*args: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """The elementwise sum of the arrays (MXNet's ``add_n``/``ElementWiseSum``).

    >>> import tapegrad as mx
    >>> mx.nd.add_n(mx.nd.ones(2), mx.nd.ones(2), mx.nd.ones(2)).asnumpy().tolist()
    [3.0, 3.0]
    """
    if kwargs:
        raise _unknown(add_n, kwargs)
    if not args:
        raise ArgumentValueError("add_n: no arrays given. Fix: pass at least one NDArray.")
    arrays = [a if type(a) is NDArray else _bad_nd("add_n", f"args[{i}]", a)
              for i, a in enumerate(args)]  # fmt: skip
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ShapeError(
            f"add_n: the arrays have different shapes {sorted(shapes)}; add_n does not "
            "broadcast. Fix: pass arrays of one shape."
        )
    r = arrays[0]
    for a in arrays[1:]:
        r = T.add(r, a)
    if len(arrays) == 1:
        r = T.copy(r)
    return r if out is None else _write_out("add_n", out, r)


ElementWiseSum = add_n


def moveaxis(tensor: NDArray, source: Any, destination: Any, **kwargs: Any) -> NDArray:
    """Move axes to new positions, as ``numpy.moveaxis``."""
    if kwargs:
        raise _unknown(moveaxis, kwargs)
    if type(tensor) is not NDArray:
        tensor = _bad_nd("moveaxis", "tensor", tensor)
    src = list(source) if isinstance(source, (list, tuple)) else [source]
    dst = list(destination) if isinstance(destination, (list, tuple)) else [destination]
    if len(src) != len(dst):
        raise ArgumentValueError(
            f"moveaxis: {len(src)} source axes but {len(dst)} destinations. Fix: pass as many "
            "of each."
        )
    src = [_ax("moveaxis", a, tensor, "source") for a in src]
    dst = [_ax("moveaxis", a, tensor, "destination") for a in dst]
    order = [a for a in range(tensor.ndim) if a not in src]
    for d, a in sorted(zip(dst, src)):
        order.insert(d, a)
    return T.transpose(tensor, axes=tuple(order))


def softmin(
    data: NDArray,
    axis: int = -1,
    temperature: Any = None,
    dtype: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """``softmax(-data)`` along ``axis``."""
    if kwargs:
        raise _unknown(softmin, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("softmin", "data", data)
    return softmax(-data, axis=axis, temperature=temperature, dtype=dtype, out=out)


def hard_sigmoid(
    data: NDArray,
    alpha: float = 0.2,
    beta: float = 0.5,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """``clip(alpha * data + beta, 0, 1)``."""
    if kwargs:
        raise _unknown(hard_sigmoid, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("hard_sigmoid", "data", data)
    alpha, beta = _number("hard_sigmoid", "alpha", alpha), _number("hard_sigmoid", "beta", beta)
    r = T.clip(T.add(T.multiply(data, alpha), beta), a_min=0.0, a_max=1.0)
    return r if out is None else _write_out("hard_sigmoid", out, r)


def shape_array(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """The shape of ``data`` as an int64 array."""
    if kwargs:
        raise _unknown(shape_array, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("shape_array", "data", data)
    return NDArray(np.array(data.shape, dtype=np.int64))


def size_array(data: NDArray, out: Any = None, name: Any = None, **kwargs: Any) -> NDArray:
    """The number of elements of ``data``, as an int64 array of shape (1,)."""
    if kwargs:
        raise _unknown(size_array, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("size_array", "data", data)
    return NDArray(np.array([data.size], dtype=np.int64))


def moments(
    data: NDArray, axes: Any = None, keepdims: bool = False, name: Any = None, **kwargs: Any
) -> list:
    """``[mean, variance]`` of ``data`` over ``axes`` (all when None), as MXNet."""
    if kwargs:
        raise _unknown(moments, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("moments", "data", data)
    m = mean(data, axis=axes, keepdims=True)
    d = data - m
    v = mean(d * d, axis=axes, keepdims=keepdims)
    return [m if keepdims else T.reshape(m, shape=v.shape), v]


def cumsum(
    a: NDArray, axis: Any = None, dtype: Any = None, out: Any = None, **kwargs: Any
) -> NDArray:
    """Cumulative sum along ``axis`` (of the flattened array when None), as a product with a
    triangular matrix of ones: differentiable to any order, O(n²) along the axis.

    >>> import tapegrad as mx
    >>> mx.nd.cumsum(mx.nd.array([1.0, 2.0, 3.0])).asnumpy().tolist()
    [1.0, 3.0, 6.0]
    """
    if kwargs:
        raise _unknown(cumsum, kwargs)
    if type(a) is not NDArray:
        a = _bad_nd("cumsum", "a", a)
    if dtype is not None:
        a = a.astype(_dt("cumsum", dtype))
    if axis is None:
        a, axis = T.reshape(a, shape=(-1,)), 0
    ax = _ax("cumsum", axis, a)
    n = a.shape[ax]
    tri = np.triu(np.ones((n, n), dtype=np.result_type(a._data)))
    r = moveaxis(T.matmul(moveaxis(a, ax, -1), tri), -1, ax)
    return r if out is None else _write_out("cumsum", out, r)


def diag(
    data: NDArray, k: int = 0, axis1: int = 0, axis2: int = 1, name: Any = None, **kwargs: Any
) -> NDArray:
    """MXNet's ``diag``: of a 1-D array, the square matrix with it on diagonal ``k``; of an
    N-D array, diagonal ``k`` of the planes ``(axis1, axis2)``, appended as the last axis.

    >>> import tapegrad as mx
    >>> mx.nd.diag(mx.nd.array([[1.0, 2.0], [3.0, 4.0]])).asnumpy().tolist()
    [1.0, 4.0]
    """
    if kwargs:
        raise _unknown(diag, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("diag", "data", data)
    k = _int("diag", "k", k)
    if data.ndim == 1:
        m = data.shape[0] + builtins.abs(k)
        dt = np.result_type(data._data)
        padded = concat(data, zeros((builtins.abs(k),), dtype=dt), dim=0) if k else data
        place = np.eye(m, m, k, dtype=dt)
        if k >= 0:
            return T.multiply(T.reshape(padded, shape=(m, 1)), place)
        return T.multiply(T.reshape(padded, shape=(1, m)), place)
    if data.ndim == 0:
        raise ShapeError("diag: a 0-d array has no diagonal. Fix: pass 1-D or more.")
    a1, a2 = _ax("diag", axis1, data, "axis1"), _ax("diag", axis2, data, "axis2")
    if a1 == a2:
        raise ArgumentValueError(f"diag: axis1 and axis2 are both {a1}. Fix: pass two axes.")
    x = moveaxis(data, [a1, a2], [-2, -1])
    rows, cols = x.shape[-2], x.shape[-1]
    i = np.arange(builtins.max(0, -k), builtins.min(rows, cols - k))
    return x[..., _positions(i), _positions(i + k)]


def _positions(i: np.ndarray) -> NDArray:
    return NDArray(np.asarray(i, dtype=np.int64))


def nanprod(
    data: NDArray,
    axis: Any = None,
    keepdims: bool = False,
    exclude: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """The product with NaN counted as 1."""
    if kwargs:
        raise _unknown(nanprod, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("nanprod", "data", data)
    ok = NDArray(~np.isnan(data._data))
    r = prod(where(ok, data, 1.0), axis=axis, keepdims=keepdims, exclude=exclude)
    return r if out is None else _write_out("nanprod", out, r)


def batch_take(
    a: NDArray, indices: Any, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """``a[i, indices[i]]`` for every row ``i`` of the 2-D ``a`` (``pick`` along axis 1)."""
    if kwargs:
        raise _unknown(batch_take, kwargs)
    if type(a) is not NDArray:
        a = _bad_nd("batch_take", "a", a)
    if a.ndim != 2:
        raise ShapeError(
            f"batch_take: a of shape {fmt_shape(a.shape)} must be 2-D (rows, columns). Fix: "
            "reshape it, or use pick with an axis."
        )
    return pick(a, indices, axis=1, out=out)


def choose_element_0index(lhs: NDArray, rhs: Any, out: Any = None, **kwargs: Any) -> NDArray:
    """MXNet's old name of ``batch_take``: ``lhs[i, rhs[i]]``."""
    if kwargs:
        raise _unknown(choose_element_0index, kwargs)
    return batch_take(lhs, rhs, out=out)


def gather_nd(data: NDArray, indices: Any, name: Any = None, **kwargs: Any) -> NDArray:
    """``data[indices[0], indices[1], ...]``: ``indices`` of shape (M, ...) indexes the first
    M axes of ``data``; the gradient goes back to the gathered places (summed)."""
    if kwargs:
        raise _unknown(gather_nd, kwargs)
    if type(data) is not NDArray:
        data = _bad_nd("gather_nd", "data", data)
    idx = _index_array(indices, "gather_nd", "indices")
    if idx.ndim == 0 or idx.shape[0] > data.ndim:
        raise ShapeError(
            f"gather_nd: indices of shape {fmt_shape(idx.shape)} for data of shape "
            f"{fmt_shape(data.shape)}: the first axis of indices counts the indexed axes of "
            f"data (at most {data.ndim}). Fix: pass indices of shape (M, ...) with M <= "
            f"{data.ndim}."
        )
    return data[tuple(_positions(row.astype(np.int64)) for row in idx)]


def onehot_encode(indices: NDArray, out: Any = None, **kwargs: Any) -> NDArray:
    """MXNet's old one-hot: ``out[i] = one_hot(indices[i], out.shape[1])``, written into
    ``out`` and returned."""
    if kwargs:
        raise _unknown(onehot_encode, kwargs)
    if type(out) is not NDArray or out.ndim != 2:
        raise ArgumentError(
            "onehot_encode: out must be a 2-D NDArray (rows, classes). Fix: pass "
            "out=mx.nd.zeros((n, classes)), or use one_hot."
        )
    out[:] = one_hot(indices, out.shape[1], dtype=out.dtype)
    return out


__all__ = [
    # creation
    "array", "zeros", "ones", "full", "empty", "arange", "linspace", "eye",
    "zeros_like", "ones_like", "full_like", "waitall",
    # elementwise
    "softsign", "logical_not", "elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div",
    "clip", "where", "Activation", "LeakyReLU", "radians", "degrees", "identity", "cast",
    "Cast", "add_n", "ElementWiseSum", "softmin", "hard_sigmoid", "less", "less_equal",
    "moveaxis", "shape_array", "size_array", "moments", "Reshape", "cumsum", "diag", "nanprod",
    "batch_take", "choose_element_0index", "gather_nd", "onehot_encode",
    # reductions
    "sum", "mean", "max", "min", "prod", "logsumexp", "sum_axis", "max_axis", "min_axis",
    "nansum", "norm", "argmax", "argmin", "argmax_channel",
    # shape
    "reshape", "reshape_like", "transpose", "swapaxes", "SwapAxis", "flatten", "Flatten",
    "expand_dims", "squeeze", "broadcast_to", "broadcast_like", "broadcast_axis",
    "broadcast_axes", "concat", "concatenate", "Concat", "stack", "split", "SliceChannel",
    "slice", "crop", "slice_axis", "slice_like", "tile", "repeat", "flip", "reverse",
    # indexing and sorting
    "take", "pick", "one_hot", "Embedding", "sort", "argsort", "topk",
    # linear algebra
    "dot", "batch_dot", "linalg_gemm2", "FullyConnected",
    # nn
    "softmax", "log_softmax", "softmax_cross_entropy", "softmax_ce_loss", "SoftmaxActivation",
    "stop_gradient", "BlockGrad", "Dropout", "smooth_l1", "L2Normalization",
    # I/O
    "save", "load",
] + _EXPOSED  # fmt: skip
