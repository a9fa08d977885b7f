"""Forward mode: tangents that travel with the values, one *level* per ``jvp`` call.

Each call of :func:`jvp` takes a fresh level number, attaches the tangents to its inputs
under that level, runs the function, and reads the output tangents of that level back.
Because levels are never reused and a primitive computes the tangent of level ``L`` from
inputs that carry only the levels below ``L`` (``primitive._forward_call``), nested
derivatives keep their perturbations apart:

>>> import tapegrad as mx
>>> from tapegrad.forward import jvp
>>> x = mx.nd.array(2.0, dtype='float64')
>>> # d/dx [x * d/dy (x + y)]  at y = x  is 1, not 2
>>> inner = lambda x: jvp(lambda y: x + y, (x,), (mx.nd.ones_like(x),))[1]
>>> float(jvp(lambda x: x * inner(x), (x,), (mx.nd.ones_like(x),))[1].asscalar())
1.0
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..base import ShapeError, fmt_shape
from .graph import array_type, wrap
from .state import STATE

__all__ = ["jvp", "new_level", "dual", "tangent_of", "primal_of"]

_COUNTER = itertools.count(1)


class new_level:
    """Context manager that activates a fresh forward-mode level (``with new_level() as L``)."""

    def __enter__(self) -> int:
        self.level = next(_COUNTER)
        STATE.levels.append(self.level)
        return self.level

    def __exit__(self, *exc: Any) -> None:
        STATE.levels.remove(self.level)


def _as_array(x: Any, dtype: Any = None) -> Any:
    return x if type(x) is array_type() else wrap(np.array(x, dtype=dtype))


def dual(x: Any, t: Any, level: int) -> Any:
    """``x`` carrying tangent ``t`` at ``level`` (same data and graph node as ``x``)."""
    t = _as_array(t, x.dtype)
    if tuple(t.shape) != tuple(x.shape):
        raise ShapeError(
            f"jvp: tangent of shape {fmt_shape(t.shape)} for a primal of shape "
            f"{fmt_shape(x.shape)}. Fix: give each tangent its primal's shape."
        )
    tan = dict(x._tan) if x._tan else {}
    tan[level] = t
    d = wrap(x._data, x._node, tan)
    d._version = x._version
    return d


def tangent_of(y: Any, level: int) -> Any:
    """The tangent of ``y`` at ``level`` (zeros if ``y`` does not depend on the inputs)."""
    if type(y) is array_type():
        if y._tan and level in y._tan:
            return y._tan[level]
        return wrap(np.zeros(y.shape, dtype=y.dtype))
    return wrap(np.zeros(np.shape(y), dtype=np.result_type(y)))


def primal_of(y: Any, level: int) -> Any:
    """``y`` without its tangent at ``level``."""
    if type(y) is not array_type() or not y._tan or level not in y._tan:
        return y
    kept = {lv: t for lv, t in y._tan.items() if lv != level}
    p = wrap(y._data, y._node, kept or None)
    p._version = y._version
    return p


def jvp(f: Callable, primals: Sequence, tangents: Sequence) -> tuple:
    """Value and directional derivative of ``f`` at ``primals`` along ``tangents``.

    Returns ``(f(*primals), J @ tangents)`` with the structure of ``f``'s output (one
    NDArray, or a tuple/list of them). Works inside ``autograd.record()`` (the tangent is
    recorded, so it can be part of a trained loss) and nested in other transforms.
    """
    primals = [_as_array(p) for p in primals]
    if len(primals) != len(tangents):
        raise ShapeError(
            f"jvp: {len(primals)} primals but {len(tangents)} tangents. Fix: "
            "pass one tangent per primal."
        )
    with new_level() as lv:
        out = f(*[dual(p, t, lv) for p, t in zip(primals, tangents)])
        if isinstance(out, (tuple, list)):
            return (
                type(out)(primal_of(o, lv) for o in out),
                type(out)(tangent_of(o, lv) for o in out),
            )
        return primal_of(out, lv), tangent_of(out, lv)
