"""Error types shared by every part of tapegrad.

``MXNetError`` is an alias of :class:`TapegradError`, so MXNet code that catches
``mx.base.MXNetError`` keeps working.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TapegradError",
    "MXNetError",
    "ShapeError",
    "GraphError",
    "VersionError",
    "DeferredInitializationError",
]


class TapegradError(Exception):
    """Base class of tapegrad's errors. Messages name the operator, the shapes/dtypes
    involved, and how to fix the problem.

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


MXNetError = TapegradError


def fmt_shape(shape: tuple) -> str:
    """``(2, 3)`` -> ``'(2, 3)'``; used in messages."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def op_error(name: str, data: list, kwargs: dict, e: Exception) -> Exception:
    """Turn a NumPy error raised inside operator ``name`` into one that names the operator,
    the inputs' shapes and dtypes, and a fix (a :class:`ShapeError` for shape problems)."""
    shapes = ", ".join(f"{fmt_shape(np.shape(d))} {np.asarray(d).dtype}" for d in data)
    msg = str(e)
    fix = ""
    err: type = type(e) if isinstance(e, (ValueError, IndexError, TypeError)) else ValueError
    if "broadcast" in msg or "shape" in msg or "aligned" in msg or "mismatch" in msg:
        fix = (
            " Fix: make the shapes compatible (NumPy broadcasting rules: trailing "
            "dimensions must be equal or 1), e.g. with reshape/expand_dims/transpose."
        )
        err = ShapeError
    kw = f" with {kwargs}" if kwargs else ""
    return err(f"operator '{name}' failed on inputs [{shapes}]{kw}: {msg}.{fix}")
