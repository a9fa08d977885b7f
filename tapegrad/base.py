"""Error types shared by every part of tapegrad.

``MXNetError`` is an alias of :class:`TapegradError`, so MXNet code that catches
``mx.base.MXNetError`` keeps working. As in MXNet 1.x, it is a ``RuntimeError``; each
subclass is also the builtin error of its kind (a :class:`ShapeError` is a ``ValueError``,
an :class:`ArgumentError` a ``TypeError``, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "TapegradError",
    "MXNetError",
    "ShapeError",
    "GraphError",
    "VersionError",
    "DeferredInitializationError",
    "AxisError",
    "ArgumentError",
    "DTypeError",
    "ArgumentValueError",
    "IndexingError",
    "NumericError",
    "LabelError",
]


class TapegradError(RuntimeError):
    """Base class of tapegrad's errors. Messages name the operator, the shapes/dtypes
    involved, and how to fix the problem. A ``RuntimeError``, as MXNet's ``MXNetError`` is
    (scripts catch ``RuntimeError`` around deferred initialization, say).

    >>> import tapegrad as mx
    >>> try:
    ...     mx.nd.ones((2, 3)) + mx.nd.ones((4,))
    ... except mx.base.MXNetError as e:
    ...     print(type(e).__name__)
    ShapeError
    """


class ShapeError(TapegradError, ValueError):
    """Operands whose shapes do not fit the operator."""


class GraphError(TapegradError, RuntimeError):
    """A problem with the recorded graph: nothing recorded, freed, or unreachable."""


class VersionError(GraphError):
    """An array saved for the backward pass was changed in place afterwards."""


class DeferredInitializationError(TapegradError):
    """A Parameter's value was asked for before its deferred initialization finished (the
    first forward pass, which infers the shapes, has not run yet)."""


class AxisError(ShapeError, np.exceptions.AxisError):
    """An axis outside ``[-ndim, ndim)`` (or an axis of a 0-d array). Also NumPy's
    ``AxisError``, hence both a ``ValueError`` and an ``IndexError``."""

    def __init__(self, *args: Any) -> None:
        # NumPy's constructor sets the fields its __str__ reads (RuntimeError's comes first
        # in the method resolution order)
        np.exceptions.AxisError.__init__(self, *args)


class ArgumentError(TapegradError, TypeError):
    """An argument of the wrong kind: an unknown keyword, or None, a string or a list where
    the function needs an NDArray or a number."""


class DTypeError(ArgumentError):
    """An operator given a dtype it has no implementation for (``sign`` of bool, a string
    operand, ``log_softmax`` of integers), or a dtype name NumPy does not know."""


class ArgumentValueError(TapegradError, ValueError):
    """An argument of the right kind with a value the function cannot use: ``k`` beyond the
    axis, an unknown ``mode``, a negative size, ``p`` outside ``[0, 1]``."""


class IndexingError(TapegradError, IndexError):
    """An index outside an axis's range, or a key NumPy cannot index with."""


class NumericError(TapegradError, ArithmeticError):
    """An arithmetic failure inside an operator: an integer too large for its dtype, a
    division by zero."""


class LabelError(TapegradError, ValueError):
    """Class labels outside ``[0, classes)`` (or not whole numbers)."""


MXNetError = TapegradError


def fmt_shape(shape: tuple) -> str:
    """``(2, 3)`` -> ``'(2, 3)'``; used in messages."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _describe(d: Any) -> str:
    """``(2, 3) float32`` for an array, the type (and a short repr) for anything else."""
    shape, dtype = getattr(d, "shape", None), getattr(d, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        try:  # an NDArray's dtype is a scalar type: show its name
            dtype = np.dtype(dtype)
        except TypeError:
            pass
        return f"{fmt_shape(shape)} {dtype}"
    if isinstance(d, (bool, int, float, complex, np.generic)):
        return f"{type(d).__name__} {d!r}"
    r = repr(d)
    return f"{type(d).__name__} {r if len(r) <= 40 else r[:37] + '...'}"


_SHAPE_WORDS = ("broadcast", "shape", "aligned", "mismatch", "dimension")
_DTYPE_WORDS = ("loop", "cast", "dtype", "input types", "data type")


def op_error(name: str, data: Any, kwargs: dict, e: Exception) -> TapegradError:
    """Turn an error raised inside operator ``name`` (by NumPy, on the error path only) into
    a typed :class:`TapegradError` that names the operator, the inputs' shapes and dtypes,
    NumPy's reason, and a fix. The class keeps the builtin kind of ``e``: an
    :class:`AxisError` or :class:`IndexingError` is an ``IndexError``, a
    :class:`DTypeError`/:class:`ArgumentError` a ``TypeError``, a :class:`ShapeError` or
    :class:`ArgumentValueError` a ``ValueError``, a :class:`NumericError` an
    ``ArithmeticError``. One of tapegrad's own errors, raised with its own context inside an
    operator (a deferred parameter standing in for an array), is returned unchanged."""
    if isinstance(e, TapegradError):
        return e
    try:
        inputs = ", ".join(_describe(d) for d in data)
    except Exception:  # a message must never fail to build
        inputs = "?"
    msg = str(e).rstrip(".")
    low = msg.lower()
    err: type
    if isinstance(e, np.exceptions.AxisError):
        err, fix = AxisError, "pass an axis in [-ndim, ndim) of the input."
    elif isinstance(e, (TypeError, AttributeError)):  # AttributeError: NumPy's object loops
        if any(w in low for w in _DTYPE_WORDS):
            err = DTypeError
            fix = (
                "pass numeric NDArrays (or numbers) of a dtype the operator supports, e.g. "
                "x.astype('float32')."
            )
        else:
            err, fix = ArgumentError, "pass NDArrays or numbers of the right kind."
    elif isinstance(e, IndexError):
        err = IndexingError
        if "only integers" in low:
            fix = "index with integers, slices, None, ... or integer/boolean arrays."
        else:
            fix = "use indices within the array's bounds."
    elif isinstance(e, ArithmeticError):
        err = NumericError
        fix = "use values the dtype can hold (e.g. convert to float64), and no zero divisor."
    elif any(w in low for w in _SHAPE_WORDS):
        err = ShapeError
        fix = (
            "make the shapes compatible (NumPy broadcasting rules: trailing dimensions must "
            "be equal or 1), e.g. with reshape/expand_dims/transpose."
        )
    else:
        err, fix = ArgumentValueError, "check the values of the arguments."
    kw = f" with {kwargs}" if kwargs else ""
    return err(f"operator '{name}' failed on inputs [{inputs}]{kw}: {msg}. Fix: {fix}")
