"""Gluon blocks that wrap a network ``u`` and return its input derivatives per sample.

Each block registers ``u`` as its child (so ``collect_params()`` and ``Trainer`` see its
parameters), can be used inside other blocks, and is trained end to end: its output is
recorded like any layer's. Blocks compose: ``Derivative(Derivative(u))`` is ``u''``.

Method used by each block (measurements in ``docs/sciml.md``):

* :class:`Derivative` / :class:`Derivatives` -- Taylor mode of order k along the unit
  direction (one pass, O(k^2) per nonlinearity); mixed partials nest one pass per
  component.
* :class:`Laplacian` -- forward Laplacian (collapsed order-2 Taylor mode: value, gradient and
  Laplacian in one pass).
* :class:`Gradient` -- one reverse pass per output (cost flat in the input dimension); stacked
  forward mode when d = 1 or there are at least as many outputs as inputs (Jacobians).
* :class:`Divergence` -- stacked forward mode (all d directions in one pass).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..gluon.block import Block, HybridBlock
from . import operators as ops

__all__ = ["Derivative", "Derivatives", "Gradient", "Laplacian", "Divergence"]


class _Wrapper(HybridBlock):
    """A block around a network ``net`` (a Block, or any callable of NDArrays)."""

    def __init__(self, net: Callable, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not callable(net):
            raise TypeError(
                f"{type(self).__name__}: net must be a Block or a callable, got "
                f"{type(net).__name__}."
            )
        if isinstance(net, Block):
            # any Block may be wrapped, hybrid or not (the derivative is computed eagerly)
            Block.register_child(self, net, "net")
        object.__setattr__(self, "net", net)

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError  # forward() is overridden

    def _repr_args(self) -> str:
        return ""

    def __repr__(self) -> str:
        inner = repr(self.net).replace("\n", "\n  ")
        args = self._repr_args()
        return f"{type(self).__name__}({args}{', ' if args else ''}\n  {inner}\n)"


class Derivative(_Wrapper):
    """``d^k net / dx_i^k`` per sample (or a mixed partial for a sequence ``wrt``).

    Args:
        net: the network ``u``; input ``(N, d)`` (or ``(N,)``), output ``(N, m)``.
        order: derivative order k >= 1.
        wrt: input component i, or a sequence of components for a mixed partial
            (``(0, 0, 1)`` is d^3 u / dx0^2 dx1).
        return_value: also return ``u(x)`` (free: it is computed anyway):
            ``(u, derivative)``.

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import Derivative
    >>> net = mx.gluon.nn.Dense(1, in_units=1, activation='tanh')
    >>> net.initialize(mx.init.One())
    >>> du = Derivative(net)      # d tanh(x + 0) / dx = 1 - tanh(x)^2
    >>> round(float(du(mx.nd.array([[0.5]])).asscalar()), 5)
    0.78645
    """

    def __init__(
        self,
        net: Callable,
        order: int = 1,
        wrt: int | Sequence[int] = 0,
        return_value: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(net, **kwargs)
        if isinstance(wrt, int) and order < 1:
            raise ValueError(f"Derivative: order must be >= 1, got {order}")
        self._order = order if isinstance(wrt, int) else len(tuple(wrt))
        self._wrt = wrt if isinstance(wrt, int) else tuple(int(w) for w in wrt)
        self._return_value = return_value

    def _repr_args(self) -> str:
        return f"order={self._order}, wrt={self._wrt}"

    def forward(self, x: Any) -> Any:
        if isinstance(self._wrt, int):
            ds = ops.derivatives(self.net, x, self._order, self._wrt)
            return (ds[0], ds[-1]) if self._return_value else ds[-1]
        out = ops.derivative(self.net, x, wrt=self._wrt)
        if self._return_value:
            return self.net(x), out
        return out


class Derivatives(_Wrapper):
    """``(u, du/dx_i, ..., d^k u/dx_i^k)`` per sample, all from one Taylor-mode pass (for
    residuals that combine several orders, e.g. ``u'' + u' - f``).

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import Derivatives
    >>> u, du, d2u = Derivatives(lambda x: x ** 3, order=2)(mx.nd.array([[2.0]]))
    >>> [float(a.asscalar()) for a in (u, du, d2u)]
    [8.0, 12.0, 12.0]
    """

    def __init__(self, net: Callable, order: int, wrt: int = 0, **kwargs: Any) -> None:
        super().__init__(net, **kwargs)
        if order < 1:
            raise ValueError(f"Derivatives: order must be >= 1, got {order}")
        self._order = order
        self._wrt = wrt

    def _repr_args(self) -> str:
        return f"order={self._order}, wrt={self._wrt}"

    def forward(self, x: Any) -> Any:
        return tuple(ops.derivatives(self.net, x, self._order, self._wrt))


class Gradient(_Wrapper):
    """Input gradient per sample: ``(N, d)`` for a one-output network, ``(N, m, d)`` (the
    Jacobian) for m outputs. ``method``: 'auto', 'forward' or 'reverse' (see
    :func:`tapegrad.sciml.gradient`).

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import Gradient
    >>> g = Gradient(lambda x: (x ** 2).sum(axis=1, keepdims=True))
    >>> g(mx.nd.array([[1.0, -2.0]])).asnumpy().tolist()
    [[2.0, -4.0]]
    """

    def __init__(
        self, net: Callable, method: str = "auto", return_value: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(net, **kwargs)
        self._method = method
        self._return_value = return_value

    def _repr_args(self) -> str:
        return f"method={self._method!r}"

    def forward(self, x: Any) -> Any:
        g = ops.gradient(self.net, x, self._method)
        return (self.net(x), g) if self._return_value else g


class Laplacian(_Wrapper):
    """Laplacian per sample over the input components ``wrt`` (default all), with the shape
    of ``net(x)``, by the forward Laplacian. ``return_value=True`` returns ``(u, lap u)``
    from the same pass.

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import Laplacian
    >>> lap = Laplacian(lambda x: (x ** 2).sum(axis=1, keepdims=True))
    >>> lap(mx.nd.array([[1.0, 2.0, 3.0]])).asnumpy().tolist()
    [[6.0]]
    """

    def __init__(
        self,
        net: Callable,
        wrt: Sequence[int] | None = None,
        return_value: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(net, **kwargs)
        self._wrt = None if wrt is None else tuple(int(w) for w in wrt)
        self._return_value = return_value

    def _repr_args(self) -> str:
        return f"wrt={self._wrt}"

    def forward(self, x: Any) -> Any:
        y, lap = ops._laplacian(self.net, x, self._wrt)
        return (y, lap) if self._return_value else lap


class Divergence(_Wrapper):
    """Divergence ``sum_i d v_i/dx_i`` per sample of a vector field net ``(N, d) -> (N, d)``,
    shape ``(N, 1)``, by stacked forward mode.

    >>> import tapegrad as mx
    >>> from tapegrad.sciml import Divergence
    >>> Divergence(lambda x: x * x)(mx.nd.array([[1.0, 2.0]])).asnumpy().tolist()
    [[6.0]]
    """

    def __init__(self, net: Callable, return_value: bool = False, **kwargs: Any) -> None:
        super().__init__(net, **kwargs)
        self._return_value = return_value

    def forward(self, x: Any) -> Any:
        y, div = ops._divergence(self.net, x)
        return (y, div) if self._return_value else div
