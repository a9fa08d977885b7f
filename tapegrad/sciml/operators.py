"""Differential operators on networks, per sample of a batch of points: derivatives of any
order, gradient, Laplacian, divergence. Functions of ``(u, x)``; the Gluon blocks in
:mod:`tapegrad.sciml.layers` wrap them.

``x`` is a batch of points of shape ``(N, d)`` (or ``(N,)`` for scalar inputs) and ``u`` a
network that maps it row by row (rows must not interact: no BatchNorm in training mode).
The results are recorded like any other operation, so they can be part of a loss that is
trained, and differentiated again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..base import ShapeError, TapegradError, fmt_shape
from ..core import STATE, TAPE, backward_pass
from ..ndarray.ndarray import NDArray
from ..taylor import JetContext, propagate, taylor, trace_call, unit_directions

__all__ = [
    "derivative",
    "derivatives",
    "gradient",
    "laplacian",
    "divergence",
    "GRADIENT_FORWARD_MAX_DIM",
]

T = TAPE

#: Gradient of a network with fewer outputs than inputs: forward mode (the d unit directions
#: stacked in one pass) up to this input dimension, one reverse pass per output above it.
#: Measured on d-64-64-1 tanh MLPs, 256 points (gradient + backward to the parameters; table
#: in docs/sciml.md): about equal at d = 1, reverse mode ahead from d = 2 and flat in d.
GRADIENT_FORWARD_MAX_DIM = 1


def _as_input(x: Any, where: str) -> NDArray:
    if not isinstance(x, NDArray):
        x = NDArray(np.asarray(x, dtype=np.float32))
    if x.ndim not in (1, 2):
        raise ShapeError(
            f"{where}: expected a batch of points of shape (N, d) or (N,), got "
            f"{fmt_shape(x.shape)}. Fix: reshape the input to (N, d), one point per row."
        )
    if np.dtype(x.dtype).kind != "f":
        raise TapegradError(
            f"{where}: the points have dtype {np.dtype(x.dtype)}; derivatives need floats. Fix: "
            "x.astype('float32') (or 'float64')."
        )
    return x


def _dim(x: NDArray) -> int:
    return 1 if x.ndim == 1 else x.shape[1]


def _check_component(i: int, d: int, where: str) -> int:
    if not -d <= i < d:
        raise ShapeError(
            f"{where}: input component {i} does not exist; the points have d={d} "
            f"components. Fix: use wrt in [0, {d - 1}]."
        )
    return i % d


def _squeeze_lead(c: NDArray) -> NDArray:
    return T.reshape(c, shape=tuple(c.shape[1:]))


def derivatives(u: Callable, x: Any, order: int, wrt: int = 0) -> list:
    """``[u(x), du/dx_i, ..., d^k u/dx_i^k]`` per sample, from one Taylor-mode pass.

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import derivatives
    >>> x = mx.nd.array([[0.0], [1.0]], dtype='float64')
    >>> [d.asnumpy().ravel().tolist() for d in derivatives(lambda z: z ** 3, x, 3)]
    [[0.0, 1.0], [0.0, 3.0], [0.0, 6.0], [6.0, 6.0]]
    """
    where = f"derivatives(order={order}, wrt={wrt})"
    x = _as_input(x, where)
    i = _check_component(wrt, _dim(x), where)
    y, cs = taylor(u, x, unit_directions(x, [i]), order, squeeze=True, where=where)
    return [y] + cs


def derivative(u: Callable, x: Any, order: int = 1, wrt: int | Sequence[int] = 0) -> NDArray:
    """Derivative of ``u`` of order ``order`` with respect to input component ``wrt``, per
    sample; ``wrt`` may also be a sequence of components for a mixed partial derivative
    (``wrt=(0, 0, 1)`` is d^3 u / dx0^2 dx1).

    Pure derivatives use one Taylor-mode pass of order k (cost O(k^2) per nonlinearity);
    mixed ones nest one such pass per component (innermost: the component that appears
    first).

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import derivative
    >>> x = mx.nd.array([[1.0, 2.0]], dtype='float64')
    >>> f = lambda z: (z[:, 0:1] ** 2) * (z[:, 1:2] ** 3)
    >>> float(derivative(f, x, wrt=(0, 1)).asscalar())   # d2/dx0 dx1 = 2 x0 * 3 x1^2
    24.0
    """
    if isinstance(wrt, (int, np.integer)):
        if order < 1:
            raise ValueError(f"derivative: order must be >= 1, got {order}")
        return derivatives(u, x, order, int(wrt))[-1]
    comps = [int(w) for w in wrt]
    if not comps:
        raise ValueError(
            "derivative: wrt is an empty sequence. Fix: name at least one input component."
        )
    if order not in (1, len(comps)):
        raise ValueError(
            f"derivative: order={order} but wrt={tuple(comps)} names {len(comps)} "
            f"components. Fix: omit order (it is len(wrt)) or make them agree."
        )
    x = _as_input(x, "derivative")
    d = _dim(x)
    groups = list(Counter(_check_component(c, d, "derivative") for c in comps).items())
    f = u
    for comp, k in groups:
        f = _partial_of(f, comp, k)
    return f(x)


def _partial_of(inner: Callable, comp: int, k: int) -> Callable:
    """``z -> d^k inner / dz_comp^k`` (one Taylor pass)."""
    return lambda z: derivatives(inner, z, k, comp)[-1]


def gradient(u: Callable, x: Any, method: str = "auto") -> NDArray:
    """Gradient of ``u`` with respect to the input, per sample: shape ``(N, d)`` for a network
    with one output, ``(N, m, d)`` (the Jacobian) for ``m`` outputs.

    ``method``: ``'forward'`` pushes the d unit directions in one stacked forward-mode pass;
    ``'reverse'`` runs one backward pass per output (cost independent of d); ``'auto'`` uses
    forward mode when ``d <= GRADIENT_FORWARD_MAX_DIM`` or there are at least as many outputs
    as inputs, reverse mode otherwise. Either way ``u`` runs once.

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import gradient
    >>> x = mx.nd.array([[1.0, 2.0]], dtype='float64')
    >>> gradient(lambda z: (z * z).sum(axis=1, keepdims=True), x).asnumpy().tolist()
    [[2.0, 4.0]]
    """
    x = _as_input(x, "gradient")
    d = _dim(x)
    if method not in ("auto", "forward", "reverse"):
        raise ValueError(f"gradient: method must be 'auto', 'forward' or 'reverse', got {method!r}")
    xv, y = trace_call(u, x, "gradient")
    n = x.shape[0]
    m = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    if method == "auto":
        method = "forward" if d <= GRADIENT_FORWARD_MAX_DIM or m >= d else "reverse"
    if y._node is None:  # u does not depend on x
        g = NDArray(np.zeros((n, m, d), dtype=y.dtype))
    elif method == "forward":
        dirs = unit_directions(x, list(range(d)))
        ctx = JetContext(1, d)
        seed = NDArray(dirs._data.reshape(x.shape)) if ctx.flat else dirs
        jet = propagate(ctx, y, {xv._node: [xv, seed]}, "gradient", u)
        c1 = jet[1] if jet is not None and jet[1] is not None else None
        if c1 is None:
            g = NDArray(np.zeros((n, m, d), dtype=y.dtype))
        elif ctx.flat:  # one input component: the tangent is the gradient
            g = T.reshape(c1, shape=(n, m, 1))
        else:  # (d, N, *out) -> (N, m, d)
            g = T.transpose(T.reshape(c1, shape=(d, n, m)), axes=(1, 2, 0))
    else:
        create = STATE.recording or bool(STATE.levels)
        rows = []
        for j in range(m):
            ct = np.zeros((n, m), dtype=y.dtype)
            ct[:, j] = 1
            (gj,) = backward_pass(
                [y],
                [NDArray(ct.reshape(y.shape))],
                [xv._node],
                create_graph=create,
                retain_graph=True,
            )
            if gj is None:
                gj = np.zeros(x.shape, dtype=y.dtype)
            gj = gj if isinstance(gj, NDArray) else NDArray(gj)
            rows.append(T.reshape(gj, shape=(n, 1, d)))
        g = rows[0] if m == 1 else T.concat(*rows, axis=1)
    if m == 1 and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        return T.reshape(g, shape=(n, d))
    return g


def laplacian(u: Callable, x: Any, wrt: Sequence[int] | None = None) -> NDArray:
    """Laplacian ``sum_i d^2 u / dx_i^2`` per sample (over the components ``wrt``, default
    all), with the shape of ``u(x)``, by the forward Laplacian: one pass carrying value,
    gradient and Laplacian (collapsed order-2 Taylor mode).

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import laplacian
    >>> x = mx.nd.array([[1.0, 2.0, 3.0]], dtype='float64')
    >>> laplacian(lambda z: (z ** 3).sum(axis=1, keepdims=True), x).asnumpy().tolist()
    [[36.0]]
    """
    return _laplacian(u, x, wrt)[1]


def _laplacian(u: Callable, x: Any, wrt: Sequence[int] | None) -> tuple:
    x = _as_input(x, "laplacian")
    d = _dim(x)
    comps = (
        list(range(d)) if wrt is None else [_check_component(int(c), d, "laplacian") for c in wrt]
    )
    if not comps:
        raise ValueError("laplacian: wrt is empty. Fix: name at least one component.")
    y, (_, c2) = taylor(
        u, x, unit_directions(x, comps), 2, collapse=True, squeeze=True, where="laplacian"
    )
    return y, c2 if len(comps) == 1 else _squeeze_lead(c2)


def divergence(v: Callable, x: Any) -> NDArray:
    """Divergence ``sum_i d v_i / dx_i`` per sample of a vector field ``v: R^d -> R^d``
    (output shape ``(N, d)``), shape ``(N, 1)``: one stacked forward-mode pass.

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import divergence
    >>> x = mx.nd.array([[1.0, 2.0]], dtype='float64')
    >>> divergence(lambda z: z * z, x).asnumpy().tolist()
    [[6.0]]
    """
    return _divergence(v, x)[1]


def _divergence(v: Callable, x: Any) -> tuple:
    x = _as_input(x, "divergence")
    d = _dim(x)
    y, (c1,) = taylor(v, x, unit_directions(x, list(range(d))), 1, where="divergence")
    if y.ndim != 2 or y.shape[1] != d:
        raise ShapeError(
            f"divergence: the field must map points of shape (N, {d}) to vectors of shape "
            f"(N, {d}), but it returned {fmt_shape(y.shape)}. Fix: give the network {d} "
            "outputs."
        )
    eye = NDArray(np.eye(d, dtype=y.dtype).reshape(d, 1, d))
    div = T.sum(T.multiply(c1, eye), axis=(0, 2))
    return y, T.reshape(div, shape=(y.shape[0], 1))
