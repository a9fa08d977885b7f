"""Activation layers (MXNet 1.x ``gluon/nn/activations.py``).

Each is a composition of differentiable ``mx.nd`` operators, so derivatives of any order
exist (also with respect to the layer's input).
"""

from __future__ import annotations

from typing import Any

from ... import initializer
from ..block import HybridBlock

_ALPHA_INIT = initializer.Constant(0.25)

__all__ = ["Activation", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Swish"]


class Activation(HybridBlock):
    """Applies ``mx.nd.Activation`` with ``act_type=activation``: 'relu', 'sigmoid', 'tanh',
    'softrelu' or 'softsign'.

    >>> import tapegrad as mx
    >>> act = mx.gluon.nn.Activation('relu')
    >>> act(mx.nd.array([-1.0, 2.0])).asnumpy().tolist()
    [0.0, 2.0]
    >>> act
    Activation(relu)
    """

    def __init__(self, activation: str, **kwargs: Any) -> None:
        self._act_type = activation
        super().__init__(**kwargs)

    def _alias(self) -> str:
        return self._act_type

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return F.Activation(x, act_type=self._act_type, name="fwd")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._act_type})"


class LeakyReLU(HybridBlock):
    """``x`` for ``x > 0``, ``alpha * x`` otherwise (``alpha >= 0``).

    >>> import tapegrad as mx
    >>> mx.gluon.nn.LeakyReLU(0.1)(mx.nd.array([-2.0, 3.0])).asnumpy().tolist()
    [-0.20000000298023224, 3.0]
    """

    def __init__(self, alpha: float, **kwargs: Any) -> None:
        if alpha < 0:
            raise ValueError(f"LeakyReLU: slope coefficient alpha={alpha} must be no less than 0.")
        super().__init__(**kwargs)
        self._alpha = alpha

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return F.LeakyReLU(x, act_type="leaky", slope=self._alpha, name="fwd")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._alpha})"


class PReLU(HybridBlock):
    """Leaky ReLU whose negative slope ``alpha`` is learned (one per channel of axis 1 when
    ``in_channels > 1``). ``alpha`` starts at 0.25.

    >>> import tapegrad as mx
    >>> layer = mx.gluon.nn.PReLU(); layer.initialize()
    >>> layer(mx.nd.array([-4.0, 1.0])).asnumpy().tolist()
    [-1.0, 1.0]
    """

    def __init__(
        self, alpha_initializer: Any = _ALPHA_INIT, in_channels: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        with self.name_scope():
            self.alpha = self.params.get("alpha", shape=(in_channels,), init=alpha_initializer)

    def hybrid_forward(self, F: Any, x: Any, alpha: Any) -> Any:
        return F.LeakyReLU(x, gamma=alpha, act_type="prelu", name="fwd")


class ELU(HybridBlock):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    >>> import tapegrad as mx
    >>> round(mx.gluon.nn.ELU()(mx.nd.array([-1.0])).item(), 4)
    -0.6321
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._alpha = alpha

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return F.LeakyReLU(x, act_type="elu", slope=self._alpha, name="fwd")


class SELU(HybridBlock):
    """``scale * x`` for ``x > 0``, ``scale * alpha * (exp(x) - 1)`` otherwise, with
    scale = 1.0507009873554805 and alpha = 1.6732632423543772.

    >>> import tapegrad as mx
    >>> round(mx.gluon.nn.SELU()(mx.nd.array([1.0])).item(), 4)
    1.0507
    """

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return F.LeakyReLU(x, act_type="selu", name="fwd")


class GELU(HybridBlock):
    """``x * Phi(x)`` with Phi the standard normal CDF (exact, via erf).

    >>> import tapegrad as mx
    >>> round(mx.gluon.nn.GELU()(mx.nd.array([1.0])).item(), 4)
    0.8413
    """

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return F.LeakyReLU(x, act_type="gelu", name="fwd")


class Swish(HybridBlock):
    """``x * sigmoid(beta * x)``.

    >>> import tapegrad as mx
    >>> round(mx.gluon.nn.Swish()(mx.nd.array([1.0])).item(), 4)
    0.7311
    """

    def __init__(self, beta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._beta = beta

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return x * F.sigmoid(self._beta * x)
