"""Error types shared by every part of tapegrad.

``MXNetError`` is an alias of :class:`TapegradError`, so MXNet code that catches
``mx.base.MXNetError`` keeps working.
"""

from __future__ import annotations

__all__ = ["TapegradError", "MXNetError", "ShapeError", "GraphError", "VersionError"]


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


MXNetError = TapegradError


def fmt_shape(shape: tuple) -> str:
    """``(2, 3)`` -> ``'(2, 3)'``; used in messages."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
