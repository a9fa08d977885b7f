"""Argument checks of the ``mx.nd`` functions: each returns the argument (normalized) or
raises the typed error (:mod:`tapegrad.base`) that names the function, the argument, what was
given and the fix. The fast path of every check is a type test and a comparison; ``_unknown``
and the ``_bad_*`` helpers only build errors."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import numpy as np

from ..base import (
    ArgumentError,
    ArgumentValueError,
    AxisError,
    DTypeError,
    IndexingError,
    ShapeError,
    fmt_shape,
)
from ..context import Context, gpu_error
from .ndarray import NDArray, _read

_int_types = (int, np.integer)
_F32 = np.dtype(np.float32)
_MODES = ("clip", "wrap", "raise")


def _short(v: Any) -> str:
    """A value as a message shows it: ``NoneType None``, ``str 'abc'``, ``NDArray (2, 3)``."""
    if type(v) is NDArray:
        return f"NDArray of shape {fmt_shape(v.shape)} ({v._data.dtype})"
    if isinstance(v, np.ndarray):
        return f"numpy array of shape {fmt_shape(v.shape)} ({v.dtype})"
    r = repr(v)
    return f"{type(v).__name__} {r if len(r) <= 40 else r[:37] + '...'}"


def _given(v: Any) -> str:
    """A value as a message repeats it: ``True``, ``'abc'``, or its kind for an array."""
    if v is None or isinstance(v, (bool, int, float, str)):
        r = repr(v)
        return r if len(r) <= 40 else r[:37] + "..."
    return _short(v)


def _unknown(fn: Any, kwargs: dict) -> ArgumentError:
    """The error for keyword arguments that ``fn`` does not take, with the closest valid
    name (difflib) for a misspelling."""
    name = fn.__name__
    params = inspect.signature(fn).parameters
    valid = [
        p
        for p, v in params.items()
        if v.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    parts, hints = [], []
    for k, v in kwargs.items():
        parts.append(f"{k}={_given(v)}")
        close = [p for p in valid if p.lower() == str(k).lower()]
        close = close or difflib.get_close_matches(str(k), valid, n=1, cutoff=0.6)
        if close:
            hints.append(f"'{close[0]}'" + (f" for '{k}'" if len(kwargs) > 1 else ""))
    s = "s" if len(kwargs) > 1 else ""
    hint = f" Did you mean {', '.join(hints)}?" if hints else ""
    return ArgumentError(
        f"{name}: unknown keyword argument{s} {', '.join(parts)}.{hint} Fix: use the "
        f"arguments of {name}({', '.join(valid)})."
    )


def _bad_nd(fn: str, arg: str, x: Any) -> NDArray:
    """``x`` if it is an NDArray (of a subclass), else the error naming ``fn`` and ``arg``."""
    if isinstance(x, NDArray):
        return x
    if isinstance(x, (list, tuple, np.ndarray, int, float)) and not isinstance(x, bool):
        fix = f"wrap it, {fn}(nd.array(...), ...)."
    else:
        fix = f"pass an NDArray as {arg}."
    raise ArgumentError(f"{fn}: argument '{arg}' must be an NDArray, got {_short(x)}. Fix: {fix}")


def _ax(fn: str, axis: Any, data: NDArray, arg: str = "axis", extra: int = 0) -> int:
    """``axis`` of ``data`` as an index in ``[0, ndim + extra)`` (``extra=1``: a new axis,
    as in expand_dims and stack)."""
    n = len(data._data.shape) + extra
    if type(axis) is int and -n <= axis < n:
        return axis % n
    return _bad_axis(fn, axis, data, arg, extra)


def _bad_axis(fn: str, axis: Any, data: NDArray, arg: str, extra: int) -> int:
    shape = data._data.shape
    n = len(shape) + extra
    if isinstance(axis, np.integer) and -n <= axis < n:
        return int(axis) % n
    if not isinstance(axis, _int_types) or isinstance(axis, bool):
        valid = f"an int in [{-n}, {n - 1}]" if n else "an int (after reshaping the 0-d input)"
        raise ArgumentError(
            f"{fn}: {arg} must be an integer, got {_short(axis)}. Fix: pass {valid}."
        )
    if n == 0:
        raise AxisError(
            f"{fn}: {arg}={axis}, but the input of shape () is 0-d and has no axes. Fix: "
            "reshape it first, e.g. x.reshape((1,))."
        )
    what = "for a new axis of" if extra else "for"
    raise AxisError(
        f"{fn}: {arg} {axis} is out of range {what} an array of shape {fmt_shape(shape)} "
        f"({len(shape)} axes). Fix: use {arg} in [{-n}, {n - 1}]."
    )


def _axes(fn: str, axes: Any, data: NDArray, arg: str = "axis") -> tuple:
    """An int or a sequence of ints as distinct axes of ``data`` in ``[0, ndim)``."""
    if type(axes) is int or isinstance(axes, np.integer):
        return (_ax(fn, axes, data, arg),)
    if not isinstance(axes, (tuple, list)):
        raise ArgumentError(
            f"{fn}: {arg} must be an int or a tuple of ints, got {_short(axes)}. Fix: pass "
            "e.g. axis=0 or axis=(0, 1)."
        )
    out = tuple(_ax(fn, a, data, arg) for a in axes)
    if len(set(out)) != len(out):
        raise ArgumentValueError(
            f"{fn}: {arg}={tuple(axes)} names an axis twice (array of shape "
            f"{fmt_shape(data.shape)}). Fix: list each axis once."
        )
    return out


def _int(fn: str, arg: str, v: Any, lo: int | None = None) -> int:
    """An integer argument (``lo``: its least allowed value)."""
    if type(v) is not int:
        if not isinstance(v, np.integer) or isinstance(v, bool):
            raise ArgumentError(
                f"{fn}: {arg} must be an integer, got {_short(v)}. Fix: pass an int."
            )
        v = int(v)
    if lo is not None and v < lo:
        raise ArgumentValueError(
            f"{fn}: {arg}={v}, but it must be at least {lo}. Fix: pass {arg} >= {lo}."
        )
    return v


def _number(fn: str, arg: str, v: Any) -> Any:
    """A real number argument (a Python or NumPy int/float, not a bool)."""
    if type(v) is float or type(v) is int:
        return v
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return v
    raise ArgumentError(f"{fn}: {arg} must be a number, got {_short(v)}. Fix: pass a float.")


def _flag(fn: str, arg: str, v: Any) -> bool:
    """A yes/no argument: a bool, or 0/1 as MXNet scripts often write it."""
    if type(v) is bool:
        return v
    if isinstance(v, (int, np.integer, np.bool_)) and v in (0, 1):
        return bool(v)
    raise ArgumentError(f"{fn}: {arg} must be True or False, got {_short(v)}. Fix: pass a bool.")


def _choice(fn: str, arg: str, v: Any, allowed: tuple) -> Any:
    """One of the strings ``allowed``."""
    if isinstance(v, str) and v in allowed:
        return v
    close = difflib.get_close_matches(str(v), allowed, n=1) if isinstance(v, str) else []
    hint = f" Did you mean '{close[0]}'?" if close else ""
    opts = ", ".join(repr(a) for a in allowed)
    raise ArgumentValueError(f"{fn}: unknown {arg} {_short(v)}.{hint} Fix: use one of {opts}.")


def _shape_arg(fn: str, shape: Any, arg: str = "shape", codes: bool = False) -> tuple:
    """A shape: an int or a sequence of ints, non-negative unless ``codes`` (reshape's)."""
    if type(shape) is tuple and all(type(s) is int and s >= 0 for s in shape):
        return shape
    if isinstance(shape, _int_types) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(s, _int_types) and not isinstance(s, bool) for s in shape
    ):
        raise ArgumentError(
            f"{fn}: {arg} must be an int or a tuple of ints, got {_short(shape)}. Fix: pass "
            f"e.g. {arg}=(2, 3)."
        )
    shape = tuple(int(s) for s in shape)
    if not codes and any(s < 0 for s in shape):
        raise ArgumentValueError(
            f"{fn}: {arg}={fmt_shape(shape)} has a negative size. Fix: sizes must be >= 0."
        )
    return shape


def _dt(fn: str, dtype: Any, default: np.dtype = _F32) -> np.dtype:
    """A numeric dtype (``None``: ``default``)."""
    if dtype is None:
        return default
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError) as e:
        raise DTypeError(
            f"{fn}: dtype={dtype!r} is not a dtype ({e}). Fix: use e.g. 'float32', 'float64', "
            "'int32', 'int64' or 'uint8'."
        ) from None
    if dt.kind not in "biufc":
        raise DTypeError(
            f"{fn}: dtype={dtype!r} is not numeric. Fix: use e.g. 'float32', 'float64', "
            "'int32', 'int64' or 'uint8'."
        )
    return dt


def _ctx(fn: str, ctx: Any) -> Any:
    """``ctx`` as a Context (None stays None); a GPU raises the error naming ``fn``."""
    if ctx is None:
        return ctx
    if type(ctx) is not Context:
        try:
            ctx = Context(ctx)
        except (TypeError, ValueError) as e:
            raise ArgumentValueError(
                f"{fn}: ctx={ctx!r} is not a context ({e}). Fix: pass mx.cpu() or leave it out."
            ) from None
    if ctx.device_typeid == 2:
        raise gpu_error(fn, ctx)
    return ctx


def _make(fn: str, make: Any, *args: Any, fix: str = "") -> np.ndarray:
    """Run a NumPy constructor; its errors (negative or huge sizes, bad values) become ours."""
    try:
        return make(*args)
    except (TypeError, ValueError, OverflowError, ArithmeticError, IndexError) as e:
        given = ", ".join(str(a) if isinstance(a, np.dtype) else _given(a) for a in args)
        fix = fix or "pass non-negative sizes that fit in memory and numbers the dtype holds."
        raise ArgumentValueError(
            f"{fn}: cannot build the array from ({given}): {str(e).rstrip('.')}. Fix: {fix}"
        ) from None


def _dense(fn: str, stype: Any) -> None:
    if stype is not None and not (isinstance(stype, str) and stype == "default"):
        raise ArgumentValueError(
            f"{fn}: stype={stype!r}: sparse storage is not supported. Fix: leave stype out "
            "(dense 'default' storage)."
        )


def _write_out(name: str, out: Any, result: Any) -> Any:
    """MXNet's ``out=`` argument: copy ``result`` into the existing array ``out`` and return
    ``out`` (recorded when ``result`` is; refused, like any in-place change, when ``out`` is
    on the graph being recorded)."""
    if out is None:
        return result
    if type(out) is not NDArray or type(result) is not NDArray:
        raise ArgumentError(
            f"operator '{name}': out= must be an NDArray and the function must return one "
            f"array (got out={_short(out)}, result of type {type(result).__name__}). Fix: drop "
            "out= and assign the result, out[:] = result."
        )
    shape = np.shape(result._data)
    if out.shape != shape:
        raise ShapeError(
            f"operator '{name}': out= has shape {fmt_shape(out.shape)} but the result has "
            f"shape {fmt_shape(shape)}. Fix: pass an out array of shape {fmt_shape(shape)}."
        )
    out[...] = result
    return out


def _plain_operand(x: Any, fn: str, arg: str) -> Any:
    """An operand that is not an NDArray, for NumPy: a number as a NumPy scalar, a list as
    an array, an array as is; anything else raises. So an operator given no NDArray computes
    in NumPy's fixed widths and returns an NDArray: ``nd.power(2, 2**63)`` overflows at once
    instead of building a 2**63-bit integer, ``nd.add([1], [2])`` is ``[3]``, not the list
    ``[1, 2]``, and ``nd.abs(2**64)`` leaves no Python int in an NDArray."""
    if isinstance(x, (np.ndarray, np.generic)):
        return x
    if isinstance(x, (int, float, complex)):
        a = np.asarray(x)
        if a.dtype.kind == "O":  # an int beyond 64 bits: as a float, like nd.array would
            try:
                a = np.asarray(float(x))
            except OverflowError:
                raise ArgumentValueError(
                    f"{fn}: the number {str(x)[:12]}... ({len(str(x))} digits) is too large for "
                    "any dtype. Fix: pass a smaller number or an NDArray."
                ) from None
        return a[()]
    if isinstance(x, (list, tuple)):
        try:
            a = np.asarray(x)
        except ValueError as e:
            raise ArgumentValueError(
                f"{fn}: {arg} {_short(x)} is not an array of numbers ({e}). Fix: pass an "
                "NDArray (nd.array(...))."
            ) from None
        if a.dtype.kind in "biufc":
            return a
    raise ArgumentError(
        f"{fn}: argument '{arg}' must be an NDArray or a number, got {_short(x)}. Fix: pass "
        "an NDArray (nd.array(...))."
    )


def _number_or_nd(fn: str, arg: str, v: Any) -> Any:
    if isinstance(v, NDArray):
        return v
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return v
    raise ArgumentError(
        f"{fn}: argument '{arg}' must be an NDArray or a number, got {_short(v)}. Fix: pass "
        "an NDArray (nd.array(...))."
    )


def _index_array(indices: Any, fn: str, arg: str) -> np.ndarray:
    """``indices`` (an NDArray, NumPy array, list or number) as int64 positions (floats
    rounded)."""
    if type(indices) is NDArray:
        _read(indices, f"{fn}'s {arg}")
        idx = np.asarray(indices._data)
    elif isinstance(indices, (np.ndarray, list, tuple, int, float, np.number)):
        try:
            idx = np.asarray(indices)
        except ValueError as e:
            raise ArgumentValueError(
                f"{fn}: {arg} is not an array of numbers ({e}). Fix: pass an NDArray of "
                "integer positions."
            ) from None
    else:
        idx = None
    if idx is None or idx.dtype.kind not in "biuf":
        raise ArgumentError(
            f"{fn}: {arg} must be an NDArray of integer positions, got {_short(indices)}. "
            "Fix: pass e.g. nd.array([0, 2])."
        )
    if idx.dtype.kind == "f":
        if not np.isfinite(idx).all():
            raise IndexingError(
                f"{fn}: {arg} holds NaN or infinite values. Fix: pass finite integer positions."
            )
        idx = np.rint(idx)
    return np.array(idx, dtype=np.int64)  # a copy, and an array even when 0-d


def _indices(indices: Any, n: int, mode: str, fn: str, arg: str = "indices") -> np.ndarray:
    """Integer positions along an axis of length ``n`` (floats are rounded; ``mode``:
    'clip' to the ends, 'wrap' around, or 'raise' for out-of-range ones). A copy: a recorded
    gather must not change when ``indices`` is changed afterwards."""
    if type(mode) is not str or mode not in _MODES:
        _choice(fn, "mode", mode, _MODES)
    idx = _index_array(indices, fn, arg)
    if n == 0 and idx.size:
        raise IndexingError(
            f"{fn}: cannot take positions {arg} from an axis of length 0. Fix: index a "
            "non-empty axis."
        )
    if mode == "clip":  # idx is a fresh copy; np.clip costs several times more
        np.maximum(idx, 0, out=idx)
        return np.minimum(idx, n - 1, out=idx)
    if mode == "wrap":
        return np.mod(idx, n)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexingError(
            f"{fn}: a position in {arg} is out of range for an axis of length {n}. "
            "Fix: use positions in range, or mode='clip'/'wrap'."
        )
    return idx
