"""``mx.nd`` functions with MXNet 1.x signatures, built on the primitives.

Functions here are *composites*: they translate MXNet's arguments (``exclude``,
``transpose_a``, reshape codes, ``dim=``) and call primitives, so they need no
derivative rules of their own.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import math
from typing import Any

import numpy as np

from .. import random as _random
from ..base import ShapeError, TapegradError, fmt_shape
from ..core import PRIMITIVES, STATE, TAPE
from .ndarray import NDArray, _dtype, _raw

T = TAPE

# ---------------------------------------------------------------------------- creation


def _shape(shape: Any) -> tuple:
    return (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)


def array(source_array: Any, ctx: Any = None, dtype: Any = None) -> NDArray:
    """A new NDArray holding a copy of ``source_array``.

    The dtype defaults to the source's dtype for an NDArray and to float32 otherwise
    (as in MXNet).

    >>> import tapegrad as mx
    >>> mx.nd.array([1, 2, 3])
    <BLANKLINE>
    [1. 2. 3.]
    <NDArray 3 @cpu(0)>
    """
    if isinstance(source_array, NDArray):
        dt = source_array.dtype if dtype is None else np.dtype(dtype)
        return NDArray(np.array(source_array._data, dtype=dt), ctx)
    return NDArray(np.array(source_array, dtype=_dtype(dtype)), ctx)


def zeros(shape: Any, ctx: Any = None, dtype: Any = None, **kwargs: Any) -> NDArray:
    """An array of zeros (float32 by default)."""
    return NDArray(np.zeros(_shape(shape), dtype=_dtype(dtype)), ctx)


def ones(shape: Any, ctx: Any = None, dtype: Any = None, **kwargs: Any) -> NDArray:
    """An array of ones (float32 by default)."""
    return NDArray(np.ones(_shape(shape), dtype=_dtype(dtype)), ctx)


def full(shape: Any, val: Any, ctx: Any = None, dtype: Any = None, **kwargs: Any) -> NDArray:
    """An array filled with ``val``."""
    return NDArray(np.full(_shape(shape), val, dtype=_dtype(dtype)), ctx)


def empty(shape: Any, ctx: Any = None, dtype: Any = None) -> NDArray:
    """An uninitialised array (zeros here: NumPy memory is not left undefined)."""
    return zeros(shape, ctx, dtype)


def arange(
    start: float,
    stop: Any = None,
    step: float = 1.0,
    repeat: int = 1,
    infer_range: bool = False,
    ctx: Any = None,
    dtype: Any = None,
) -> NDArray:
    """Evenly spaced values in [start, stop) (float32 by default, like MXNet)."""
    a = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if repeat > 1:
        a = np.repeat(a, repeat)
    return NDArray(a.astype(_dtype(dtype)), ctx)


def linspace(
    start: float, stop: float, num: int, endpoint: bool = True, ctx: Any = None, dtype: Any = None
) -> NDArray:
    """``num`` evenly spaced values from start to stop."""
    return NDArray(np.linspace(start, stop, num, endpoint=endpoint).astype(_dtype(dtype)), ctx)


def eye(N: int, M: int = 0, k: int = 0, ctx: Any = None, dtype: Any = None) -> NDArray:
    """Identity-like matrix with ones on diagonal ``k``."""
    return NDArray(np.eye(N, M or None, k, dtype=_dtype(dtype)), ctx)


def zeros_like(data: NDArray, **kwargs: Any) -> NDArray:
    return NDArray(np.zeros(data.shape, data.dtype))


def ones_like(data: NDArray, **kwargs: Any) -> NDArray:
    return NDArray(np.ones(data.shape, data.dtype))


def full_like(data: NDArray, fill_value: Any, **kwargs: Any) -> NDArray:
    return NDArray(np.full(data.shape, fill_value, data.dtype))


def waitall() -> None:
    """No-op: computations are synchronous."""


# ------------------------------------------------------------------------------ out=


def write_out(name: str, out: Any, result: Any) -> Any:
    """MXNet's ``out=`` argument: copy ``result`` into the existing array ``out`` and return
    ``out`` (recorded when ``result`` is; refused, like any in-place change, when ``out`` is
    on the graph being recorded)."""
    if out is None:
        return result
    if type(out) is not NDArray or type(result) is not NDArray:
        raise TypeError(
            f"operator '{name}': out= must be an NDArray and the operator must return one "
            f"array (got out of type {type(out).__name__}). Fix: drop out= and assign the "
            "result, out[:] = result."
        )
    if out.shape != result.shape:
        raise ShapeError(
            f"operator '{name}': out= has shape {fmt_shape(out.shape)} but the result has "
            f"shape {fmt_shape(result.shape)}. Fix: pass an out array of shape "
            f"{fmt_shape(result.shape)}."
        )
    out[...] = result
    return out


def _expose(prim: Any, alias: str) -> Any:
    """The ``mx.nd`` function of a primitive declared with ``nd=``: MXNet's argument names
    (``data``, or ``lhs``/``rhs``) and ``out=``, around the primitive's call."""
    call, name = prim.call, prim.name
    if prim.nin == 1:

        def f(data: Any, out: Any = None, name: Any = None) -> NDArray:
            r = call(data)
            return r if out is None else write_out(alias, out, r)

    else:

        def f(lhs: Any, rhs: Any, out: Any = None, name: Any = None) -> NDArray:
            r = call(lhs, rhs)
            return r if out is None else write_out(alias, out, r)

    f.__name__ = f.__qualname__ = alias
    args = "data" if prim.nin == 1 else "lhs, rhs"
    f.__doc__ = f"MXNet's ``{alias}({args}, out=None)``: the primitive ``{name}``, elementwise."
    f.prim = prim
    return f


for _p in PRIMITIVES.values():
    for _alias in _p.nd:
        globals()[_alias] = _expose(_p, _alias)


# ------------------------------------------------------------------- elementwise math


def softsign(data: NDArray, **kwargs: Any) -> NDArray:
    """x / (1 + |x|)."""
    return data / (T.abs(data) + 1.0)


def logical_not(data: NDArray, **kwargs: Any) -> NDArray:
    return T.logical_not(data)


def _elemwise(prim: Any, name: str):
    def f(lhs: NDArray, rhs: NDArray, **kwargs: Any) -> NDArray:
        if lhs.shape != rhs.shape:
            raise ShapeError(
                f"{name}: operands must have the same shape, got {fmt_shape(lhs.shape)} and "
                f"{fmt_shape(rhs.shape)}. Fix: use broadcast_{name.split('_')[1]} (or the "
                "operator) to broadcast."
            )
        return prim(lhs, rhs)

    f.__name__ = name
    f.__doc__ = f"``{name}``: elementwise on equal shapes (no broadcasting), as in MXNet."
    return f


elemwise_add = _elemwise(T.add, "elemwise_add")
elemwise_sub = _elemwise(T.subtract, "elemwise_sub")
elemwise_mul = _elemwise(T.multiply, "elemwise_mul")
elemwise_div = _elemwise(T.divide, "elemwise_div")


def clip(data: NDArray, a_min: Any, a_max: Any, **kwargs: Any) -> NDArray:
    """Clip values to [a_min, a_max]; the gradient is zero outside."""
    return T.clip(data, a_min=a_min, a_max=a_max)


def where(condition: Any, x: Any, y: Any, **kwargs: Any) -> NDArray:
    """``x`` where ``condition`` is non-zero, else ``y``."""
    return T.where(condition, x, y)


def Activation(data: NDArray, act_type: str = "relu", **kwargs: Any) -> NDArray:
    """MXNet's Activation operator: relu, sigmoid, tanh, softrelu, softsign."""
    if act_type == "relu":
        return T.relu(data)
    if act_type == "sigmoid":
        return T.sigmoid(data)
    if act_type == "tanh":
        return T.tanh(data)
    if act_type == "softrelu":
        return T.softrelu(data)
    if act_type == "softsign":
        return softsign(data)
    if act_type == "log_sigmoid":
        return -T.softrelu(-data)
    if act_type == "mish":
        return data * T.tanh(T.softrelu(data))
    raise TapegradError(
        f"Activation: unknown act_type {act_type!r}. Fix: use one of 'relu', 'sigmoid', "
        "'tanh', 'softrelu', 'softsign', 'log_sigmoid', 'mish'."
    )


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946


def LeakyReLU(
    data: NDArray,
    gamma: Any = None,
    act_type: str = "leaky",
    slope: float = 0.25,
    lower_bound: float = 0.125,
    upper_bound: float = 0.334,
    **kwargs: Any,
) -> NDArray:
    """MXNet's LeakyReLU operator: act_type leaky, elu, selu, gelu, prelu, rrelu."""
    if act_type == "leaky":
        return T.leaky_relu(data, slope=slope)
    if act_type in ("elu", "selu"):
        # expm1 of x where x <= 0 and of 0 elsewhere: the unused branch never overflows (no
        # 0 * inf in the gradient), and the derivative at 0 is alpha, from the negative
        # branch, as in PyTorch (a minimum would split the tie and give alpha / 2)
        alpha = slope if act_type == "elu" else _SELU_ALPHA
        pos = data > 0
        out = T.where(pos, data, T.expm1(T.where(pos, 0.0, data)) * alpha)
        return out if act_type == "elu" else out * _SELU_LAMBDA
    if act_type == "gelu":
        return data * (T.erf(data * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
    if act_type == "prelu":
        if gamma is None:
            raise TapegradError("LeakyReLU(act_type='prelu') needs gamma. Fix: pass gamma=.")
        g = gamma
        if data.ndim > 1 and gamma.ndim == 1 and gamma.shape[0] == data.shape[1]:
            g = T.reshape(gamma, shape=(1, -1) + (1,) * (data.ndim - 2))
        return T.where(data > 0, data, data * g)
    if act_type == "rrelu":
        if STATE.training:
            s = _random.generator().uniform(lower_bound, upper_bound, data.shape)
            return T.where(data > 0, data, data * s.astype(data.dtype))
        return T.leaky_relu(data, slope=(lower_bound + upper_bound) / 2.0)
    raise TapegradError(
        f"LeakyReLU: unknown act_type {act_type!r}. Fix: use 'leaky', 'elu', 'selu', "
        "'gelu', 'prelu' or 'rrelu'."
    )


# ------------------------------------------------------------------------ reductions


def _red_axis(data: NDArray, axis: Any, exclude: bool) -> Any:
    if axis is None or axis == ():
        return None  # MXNet: no axis means every axis, with or without exclude
    ax = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    nd_ = data.ndim
    for a in ax:
        if not -nd_ <= a < nd_:
            raise ShapeError(
                f"reduction: axis {a} is out of range for an array of shape "
                f"{fmt_shape(data.shape)}. Fix: use an axis in [{-nd_}, {nd_ - 1}]."
            )
    ax = tuple(sorted(a % nd_ for a in ax))
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
        **kwargs: Any,
    ) -> NDArray:
        ax = _red_axis(data, axis, exclude)
        r = data if ax == () else prim(data, axis=ax, keepdims=keepdims)
        return r if out is None else write_out(name, out, r)

    f.__name__ = name
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
    data: NDArray, axis: Any = None, keepdims: bool = False, exclude: bool = False, **kwargs: Any
) -> NDArray:
    """Sum treating NaN as zero."""
    return sum(T.where(data != data, 0.0, data), axis, keepdims, exclude)


def norm(
    data: NDArray,
    ord: int = 2,
    axis: Any = None,
    keepdims: bool = False,
    exclude: bool = False,
    **kwargs: Any,
) -> NDArray:
    """L2 (default) or L1 norm over ``axis`` (all elements by default)."""
    if ord == 1:
        return sum(T.abs(data), axis, keepdims, exclude)
    if ord != 2:
        raise TapegradError(f"norm: ord={ord} is not supported. Fix: use ord=1 or ord=2.")
    return _safe_sqrt(sum(data * data, axis, keepdims, exclude))


def _safe_sqrt(s: NDArray) -> NDArray:
    """sqrt(s) for s >= 0 whose every derivative is finite, 0 where s is 0 (the subgradient
    PyTorch's norm uses): sqrt'(0) is infinite, so zeros take sqrt(1), masked out."""
    zero = s == 0
    return T.sqrt(T.where(zero, 1.0, s)) * (1.0 - zero)


def _arg(prim: Any, name: str):
    def f(
        data: NDArray, axis: Any = None, keepdims: bool = False, out: Any = None, **kwargs: Any
    ) -> NDArray:
        r = prim(data, axis=axis, keepdims=keepdims)
        return r if out is None else write_out(name, out, r)

    f.__name__ = name
    f.__doc__ = f"Indices of the {name[3:]} along ``axis`` (float32, as in MXNet)."
    return f


argmax = _arg(T.argmax, "argmax")
argmin = _arg(T.argmin, "argmin")


def argmax_channel(data: NDArray, **kwargs: Any) -> NDArray:
    return argmax(data, axis=-1)


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
    while j < len(target):
        t = target[j]
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
            a, b = target[j + 1], target[j + 2]
            if a == -1:
                a = src[i] // b
            if b == -1:
                b = src[i] // a
            out.extend([a, b])
            i += 1
            j += 2
        else:
            out.append(t)
            i += 1
        j += 1
    if out.count(-1) == 1:
        known = math.prod(d for d in out if d != -1)
        total = math.prod(src)
        if known == 0 or total % known:
            raise ShapeError(
                f"reshape: cannot reshape an array of shape {fmt_shape(src)} to "
                f"{fmt_shape(tuple(target))}. Fix: the sizes must match."
            )
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


def reshape(data: NDArray, shape: Any, reverse: bool = False, **kwargs: Any) -> NDArray:
    """Reshape with MXNet's codes (0 copy a dimension, -1 infer, -2, -3, -4).

    >>> import tapegrad as mx
    >>> mx.nd.ones((2, 3, 4)).reshape((0, -1)).shape
    (2, 12)
    """
    shape = _shape(shape)
    new = (
        _mx_shape(data.shape, shape, reverse)
        if any(s in (0, -2, -3, -4) for s in shape) or shape.count(-1)
        else shape
    )
    if math.prod(new) != data.size:
        raise ShapeError(
            f"reshape: cannot reshape an array of shape {fmt_shape(data.shape)} "
            f"({data.size} elements) to {fmt_shape(tuple(shape))}. Fix: the number of "
            "elements must stay the same (use -1 for one inferred dimension)."
        )
    return T.reshape(data, shape=new)


def reshape_like(lhs: NDArray, rhs: NDArray, **kwargs: Any) -> NDArray:
    """Reshape ``lhs`` to the shape of ``rhs``."""
    return reshape(lhs, rhs.shape)


def transpose(data: NDArray, axes: Any = None, **kwargs: Any) -> NDArray:
    return T.transpose(data, axes=tuple(axes) if axes else None)


def swapaxes(data: NDArray, dim1: int = 0, dim2: int = 0, **kwargs: Any) -> NDArray:
    perm = list(range(data.ndim))
    perm[dim1], perm[dim2] = perm[dim2], perm[dim1]
    return T.transpose(data, axes=tuple(perm))


SwapAxis = swapaxes


def flatten(data: NDArray, **kwargs: Any) -> NDArray:
    """Collapse all but the first axis: (N, ...) -> (N, prod(...))."""
    n = data.shape[0] if data.ndim else 1
    return T.reshape(data, shape=(n, -1 if n else 0))


Flatten = flatten


def expand_dims(data: NDArray, axis: int, **kwargs: Any) -> NDArray:
    nd_ = data.ndim + 1
    ax = axis % nd_
    return T.reshape(data, shape=data.shape[:ax] + (1,) + data.shape[ax:])


def squeeze(data: NDArray, axis: Any = None, **kwargs: Any) -> NDArray:
    if axis is None:
        shp = tuple(s for s in data.shape if s != 1)
    else:
        ax = {a % data.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
        for a in ax:
            if data.shape[a] != 1:
                raise ShapeError(
                    f"squeeze: axis {a} of an array of shape {fmt_shape(data.shape)} has size "
                    f"{data.shape[a]}, not 1. Fix: squeeze only axes of size 1."
                )
        shp = tuple(s for i, s in enumerate(data.shape) if i not in ax)
    return T.reshape(data, shape=shp or (1,))


def broadcast_to(data: NDArray, shape: Any, **kwargs: Any) -> NDArray:
    """Broadcast to ``shape``; a 0 in ``shape`` keeps that dimension (MXNet)."""
    shape = _shape(shape)
    shape = tuple(data.shape[i] if s == 0 else s for i, s in enumerate(shape))
    return T.broadcast_to(data, shape=shape)


def broadcast_like(lhs: NDArray, rhs: NDArray, **kwargs: Any) -> NDArray:
    return T.broadcast_to(lhs, shape=rhs.shape)


def broadcast_axis(data: NDArray, axis: Any = (), size: Any = (), **kwargs: Any) -> NDArray:
    ax = (axis,) if isinstance(axis, int) else tuple(axis)
    sz = (size,) if isinstance(size, int) else tuple(size)
    shp = list(data.shape)
    for a, s in zip(ax, sz):
        shp[a] = s
    return T.broadcast_to(data, shape=tuple(shp))


broadcast_axes = broadcast_axis


def concat(*data: NDArray, dim: int = 1, **kwargs: Any) -> NDArray:
    """Join arrays along ``dim`` (MXNet's default is 1)."""
    if len(data) == 1 and isinstance(data[0], (list, tuple)):
        data = tuple(data[0])
    return T.concat(*data, axis=dim)


concatenate = concat
Concat = concat


def stack(*data: NDArray, axis: int = 0, **kwargs: Any) -> NDArray:
    """Join arrays along a new axis."""
    if len(data) == 1 and isinstance(data[0], (list, tuple)):
        data = tuple(data[0])
    return T.stack(*data, axis=axis)


def split(
    data: NDArray, num_outputs: int, axis: int = 1, squeeze_axis: bool = False, **kwargs: Any
) -> Any:
    """Split into ``num_outputs`` equal parts along ``axis`` (list, or one array if 1)."""
    ax = axis % data.ndim
    n = data.shape[ax]
    if n % num_outputs:
        raise ShapeError(
            f"split: axis {axis} of shape {fmt_shape(data.shape)} has length {n}, which is "
            f"not divisible by num_outputs={num_outputs}. Fix: choose a divisor of {n}."
        )
    step = n // num_outputs
    outs = []
    for i in range(num_outputs):
        key = (builtins.slice(None),) * ax + (builtins.slice(i * step, (i + 1) * step),)
        o = T.getitem(data, key=key)
        if squeeze_axis and step == 1:
            o = T.reshape(o, shape=data.shape[:ax] + data.shape[ax + 1 :])
        outs.append(o)
    return outs[0] if num_outputs == 1 else outs


SliceChannel = split


def slice(data: NDArray, begin: Any, end: Any, step: Any = (), **kwargs: Any) -> NDArray:
    """``data[begin:end:step]`` per axis (None entries mean the whole axis)."""
    step = tuple(step) or (None,) * len(begin)
    key = tuple(builtins.slice(b, e, s) for b, e, s in zip(begin, end, step))
    return T.getitem(data, key=key)


crop = slice


def slice_axis(data: NDArray, axis: int, begin: int, end: Any, **kwargs: Any) -> NDArray:
    """``data[..., begin:end, ...]`` along one axis."""
    ax = axis % data.ndim
    return T.getitem(data, key=(builtins.slice(None),) * ax + (builtins.slice(begin, end),))


def slice_like(data: NDArray, shape_like: NDArray, axes: Any = (), **kwargs: Any) -> NDArray:
    axes = tuple(axes) or tuple(range(shape_like.ndim))
    key = [builtins.slice(None)] * data.ndim
    for a in axes:
        key[a] = builtins.slice(0, shape_like.shape[a])
    return T.getitem(data, key=tuple(key))


def tile(data: NDArray, reps: Any, **kwargs: Any) -> NDArray:
    return T.tile(data, reps=tuple(reps) if not isinstance(reps, int) else reps)


def repeat(data: NDArray, repeats: int, axis: Any = None, **kwargs: Any) -> NDArray:
    return T.repeat(data, repeats=repeats, axis=axis)


def flip(data: NDArray, axis: Any, **kwargs: Any) -> NDArray:
    return T.flip(data, axis=axis)


reverse = flip


def _indices(indices: Any, n: int, mode: str, op: str) -> np.ndarray:
    idx = np.asarray(_raw(indices))
    idx = np.rint(idx).astype(np.int64) if idx.dtype.kind == "f" else idx.astype(np.int64)
    if mode == "clip":
        return np.clip(idx, 0, n - 1)
    if mode == "wrap":
        return np.mod(idx, n)
    if mode == "raise":
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(
                f"{op}: an index is out of range for an axis of length {n}. "
                "Fix: use indices in range, or mode='clip'/'wrap'."
            )
        return idx
    raise TapegradError(f"{op}: unknown mode {mode!r}. Fix: use 'clip', 'wrap' or 'raise'.")


def take(a: NDArray, indices: Any, axis: int = 0, mode: str = "clip", **kwargs: Any) -> NDArray:
    """Gather slices of ``a`` along ``axis`` at ``indices`` (differentiable in ``a``)."""
    ax = axis % a.ndim
    idx = _indices(indices, a.shape[ax], mode, "take")
    return T.getitem(a, key=(builtins.slice(None),) * ax + (idx,))


def pick(
    data: NDArray,
    index: Any,
    axis: int = -1,
    keepdims: bool = False,
    mode: str = "clip",
    **kwargs: Any,
) -> NDArray:
    """Pick one element along ``axis`` per position: ``out[i] = data[i, index[i]]``."""
    ax = axis % data.ndim
    idx = _indices(index, data.shape[ax], mode, "pick")
    other = data.shape[:ax] + data.shape[ax + 1 :]
    idx = idx.reshape(other) if idx.size == math.prod(other) else idx
    grids = np.indices(other, sparse=True) if other else []
    key = tuple(grids[:ax]) + (idx,) + tuple(grids[ax:])
    # one element per position: the adjoint can assign instead of np.add.at
    out = T.getitem(data, key=key, unique=idx.shape == other)
    if keepdims:
        out = T.reshape(out, shape=other[:ax] + (1,) + other[ax:])
    return out


def one_hot(
    indices: Any,
    depth: int,
    on_value: float = 1.0,
    off_value: float = 0.0,
    dtype: Any = None,
    **kwargs: Any,
) -> NDArray:
    """One-hot encoding of integer ``indices`` (not differentiable)."""
    idx = np.asarray(_raw(indices)).astype(np.int64)
    out = np.full(idx.shape + (depth,), off_value, dtype=_dtype(dtype))
    valid = (idx >= 0) & (idx < depth)
    out[valid, idx[valid]] = on_value
    return NDArray(out)


def Embedding(
    data: Any, weight: NDArray, input_dim: int = 0, output_dim: int = 0, **kwargs: Any
) -> NDArray:
    """Rows of ``weight`` at the integer positions in ``data``."""
    return take(weight, data, axis=0)


def sort(data: NDArray, axis: int = -1, is_ascend: bool = True, **kwargs: Any) -> NDArray:
    """Sorted values (differentiable: a gather at the sorted positions)."""
    ax = axis % data.ndim
    order = np.argsort(np.asarray(data._data), axis=ax, kind="stable")
    if not is_ascend:
        order = np.flip(order, axis=ax)
    grids = list(np.indices(data.shape, sparse=True))
    grids[ax] = order
    return T.getitem(data, key=tuple(grids))


def argsort(
    data: NDArray, axis: int = -1, is_ascend: bool = True, dtype: Any = None, **kwargs: Any
) -> NDArray:
    order = np.argsort(np.asarray(data._data), axis=axis, kind="stable")
    if not is_ascend:
        order = np.flip(order, axis=axis)
    return NDArray(order.astype(_dtype(dtype)))


def topk(
    data: NDArray,
    axis: int = -1,
    k: int = 1,
    ret_typ: str = "indices",
    is_ascend: bool = False,
    dtype: Any = None,
    **kwargs: Any,
) -> Any:
    """The k largest (or smallest) entries along ``axis``: indices, values or both."""
    ax = axis % data.ndim
    order = np.argsort(np.asarray(data._data), axis=ax, kind="stable")
    if not is_ascend:
        order = np.flip(order, axis=ax)
    order = np.take(order, np.arange(k), axis=ax)
    if ret_typ == "indices":
        return NDArray(order.astype(_dtype(dtype)))
    grids = list(np.indices(order.shape, sparse=True))
    grids[ax] = order
    vals = T.getitem(data, key=tuple(grids))
    if ret_typ == "value":
        return vals
    return [vals, NDArray(order.astype(_dtype(dtype)))]


# ---------------------------------------------------------------------- linear algebra


def dot(
    lhs: NDArray,
    rhs: NDArray,
    transpose_a: bool = False,
    transpose_b: bool = False,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's dot: matrix product for 2-D; for N-D, contracts the last axis of ``lhs``
    with the first axis of ``rhs``.

    >>> import tapegrad as mx
    >>> mx.nd.dot(mx.nd.ones((2, 3)), mx.nd.ones((3, 4))).shape
    (2, 4)
    """
    if not isinstance(lhs, NDArray):
        lhs = array(lhs, dtype=rhs.dtype)
    if not isinstance(rhs, NDArray):
        rhs = array(rhs, dtype=lhs.dtype)
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
        a2 = T.reshape(lhs, shape=(-1, k1)) if na != 2 else lhs
        b2 = T.reshape(rhs, shape=(k2, -1)) if nb != 2 else rhs
        r = T.reshape(T.matmul(a2, b2), shape=a_shape[:-1] + b_shape[1:])
    return r if out is None else write_out("dot", out, r)


def batch_dot(
    lhs: NDArray, rhs: NDArray, transpose_a: bool = False, transpose_b: bool = False, **kwargs: Any
) -> NDArray:
    """Batched matrix product of (B, N, K) and (B, K, M) arrays."""
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
    return T.matmul(lhs, rhs)


def linalg_gemm2(
    A: NDArray,
    B: NDArray,
    transpose_a: bool = False,
    transpose_b: bool = False,
    alpha: float = 1.0,
    **kwargs: Any,
) -> NDArray:
    out = (batch_dot if A.ndim > 2 else dot)(A, B, transpose_a=transpose_a, transpose_b=transpose_b)
    return out * alpha if alpha != 1.0 else out


def FullyConnected(
    data: NDArray,
    weight: NDArray,
    bias: Any = None,
    num_hidden: int = 0,
    no_bias: bool = False,
    flatten: bool = True,
    **kwargs: Any,
) -> NDArray:
    """``data @ weight.T + bias`` with weight of shape (num_hidden, in_units).

    With ``flatten`` (default) the input is reshaped to (batch, -1) first; otherwise the
    product applies to the last axis.
    """
    x = data
    if flatten and x.ndim != 2:
        x = T.reshape(x, shape=(x.shape[0], -1))
    in_units = x.shape[-1]
    if weight.ndim != 2 or weight.shape[1] != in_units:
        raise ShapeError(
            f"FullyConnected: input of shape {fmt_shape(data.shape)} has {in_units} features "
            f"but the weight has shape {fmt_shape(weight.shape)} (expected "
            f"({weight.shape[0]}, {in_units})). Fix: pass in_units={in_units} or check the "
            "input shape."
        )
    if num_hidden and weight.shape[0] != num_hidden:
        raise ShapeError(
            f"FullyConnected: num_hidden={num_hidden} but the weight has shape "
            f"{fmt_shape(weight.shape)} ({weight.shape[0]} outputs). Fix: pass a weight of "
            f"shape ({num_hidden}, {in_units}) or num_hidden={weight.shape[0]}."
        )
    b = None if no_bias else bias
    if b is not None and tuple(b.shape) != (weight.shape[0],):
        raise ShapeError(
            f"FullyConnected: the bias has shape {fmt_shape(b.shape)} but the weight "
            f"{fmt_shape(weight.shape)} needs ({weight.shape[0]},). Fix: pass a bias of shape "
            f"({weight.shape[0]},) or no_bias=True."
        )
    if x.ndim == 2:
        return T.fully_connected(x, weight, b) if b is not None else T.fully_connected(x, weight)
    lead = x.shape[:-1]
    x2 = T.reshape(x, shape=(-1, in_units))
    out = T.fully_connected(x2, weight, b) if b is not None else T.fully_connected(x2, weight)
    return T.reshape(out, shape=lead + (weight.shape[0],))


# ------------------------------------------------------------------------------- nn


def softmax(
    data: NDArray,
    axis: int = -1,
    temperature: Any = None,
    length: Any = None,
    use_length: bool = False,
    dtype: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Softmax along ``axis`` (max-shifted, stable); ``dtype`` casts the output.

    >>> import tapegrad as mx
    >>> mx.nd.softmax(mx.nd.array([0.0, 0.0]), dtype="float64").dtype
    dtype('float64')
    """
    if use_length or length is not None:
        raise TapegradError(
            "softmax: length/use_length (masked softmax) is not supported. Fix: mask the "
            "input instead, e.g. nd.where(mask, data, -1e30) before softmax."
        )
    if temperature is not None and temperature != 1.0:
        data = data / temperature
    out = T.softmax(data, axis=axis)
    return out if dtype is None else out.astype(dtype, copy=False)


def log_softmax(
    data: NDArray, axis: int = -1, temperature: Any = None, dtype: Any = None, **kwargs: Any
) -> NDArray:
    """log(softmax) along ``axis``, computed stably; ``dtype`` casts the output."""
    if temperature is not None and temperature != 1.0:
        data = data / temperature
    out = T.log_softmax(data, axis=axis)
    return out if dtype is None else out.astype(dtype, copy=False)


def softmax_cross_entropy(data: NDArray, label: Any, **kwargs: Any) -> NDArray:
    """MXNet's ``softmax_cross_entropy``: the cross-entropy of softmax(data) against integer
    labels, summed over the batch (shape (1,)). Fused and stable; differentiable to any
    order in ``data``."""
    return T.sum(T.softmax_ce(data, label, axis=-1), axis=None)


def softmax_ce_loss(data: NDArray, label: Any, axis: int = -1) -> NDArray:
    """Per-position cross-entropy ``logsumexp(data) - data[label]`` along ``axis`` (the axis
    is removed). The fused form of ``-pick(log_softmax(data, axis), label, axis)``."""
    return T.softmax_ce(data, label, axis=axis)


def SoftmaxActivation(data: NDArray, mode: str = "instance", **kwargs: Any) -> NDArray:
    return softmax(data, axis=1 if mode == "channel" else -1)


def stop_gradient(data: NDArray, **kwargs: Any) -> NDArray:
    """The same values, with no gradient flowing back (MXNet's BlockGrad)."""
    return data.detach()


BlockGrad = stop_gradient


def Dropout(
    data: NDArray, p: float = 0.5, mode: str = "training", axes: Any = (), **kwargs: Any
) -> NDArray:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), in training
    mode only (``mode='always'``: always). ``axes`` share one mask along those axes."""
    if not 0.0 <= p < 1.0:
        if p == 1.0 and (STATE.training or mode == "always"):
            return data * 0.0
        if not 0.0 <= p <= 1.0:
            raise TapegradError(f"Dropout: p={p} must be in [0, 1). Fix: choose 0 <= p < 1.")
    if p == 0.0 or not (STATE.training or mode == "always"):
        return data
    shp = tuple(1 if i in {a % data.ndim for a in axes} else s for i, s in enumerate(data.shape))
    keep = _random.generator().random(shp) >= p
    mask = keep.astype(data.dtype) * np.asarray(1.0 / (1.0 - p), dtype=data.dtype)
    return data * mask


def smooth_l1(data: NDArray, scalar: float = 1.0, **kwargs: Any) -> NDArray:
    """Smooth L1 (MXNet's smooth_l1 with sigma = scalar)."""
    s2 = scalar * scalar
    a = T.abs(data)
    return T.where(a < 1.0 / s2, data * data * (0.5 * s2), a - 0.5 / s2)


def L2Normalization(
    data: NDArray, eps: float = 1e-10, mode: str = "instance", **kwargs: Any
) -> NDArray:
    axes = tuple(range(1, data.ndim)) if mode == "instance" else (1,)
    if data.dtype == np.float16:  # eps = 1e-10 is 0 in float16: compute in float32
        return L2Normalization(data.astype(np.float32), eps, mode).astype(np.float16)
    return data / T.sqrt(sum(data * data, axis=axes, keepdims=True) + eps)


# ------------------------------------------------------------------------------ I/O


def save(fname: str, data: Any) -> None:
    """Save an NDArray, a list or a dict of NDArrays in MXNet's .params format."""
    from .. import serialization

    serialization.save(fname, data)


def load(fname: str) -> Any:
    """Load arrays saved by :func:`save` or by MXNet 1.x (never executes code)."""
    from .. import serialization

    return serialization.load(fname)


# ------------------------------------------------------------- NDArray's composite methods


def _reshape_method(self: NDArray, *shape: Any, **kwargs: Any) -> NDArray:
    """Reshape with MXNet's special codes (0 copy, -1 infer, -2, -3, -4)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if "shape" in kwargs:
        shape = tuple(kwargs.pop("shape"))
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


# ------------------------------------------------------------------ out= of composites


def _accepts_out(f: Any) -> Any:
    """Give a composite MXNet's ``out=`` argument (the primitives handle it themselves)."""

    @functools.wraps(f)
    def g(*args: Any, **kwargs: Any) -> Any:
        if "out" in kwargs:
            out = kwargs.pop("out")
            return write_out(f.__name__, out, f(*args, **kwargs))
        return f(*args, **kwargs)

    return g


def _wrap_composites() -> None:
    g = globals()
    for name, f in list(g.items()):
        if (
            name.startswith("_")
            or not inspect.isfunction(f)
            or f.__module__ != __name__
            or name in ("save", "load", "waitall")
        ):
            continue
        params = inspect.signature(f).parameters
        if "out" not in params and any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
        ):
            wrapped = _accepts_out(f)
            for alias, h in list(g.items()):  # aliases (broadcast_axes, crop, ...) too
                if h is f:
                    g[alias] = wrapped


_wrap_composites()
