"""Scientific ML: derivatives of networks with respect to their *inputs*, per sample of a
batch of collocation points, to any order -- usable inside other networks that are trained
(physics-informed networks for ODEs and PDEs).

Blocks (Gluon): :class:`Derivative`, :class:`Derivatives`, :class:`Gradient`,
:class:`Laplacian`, :class:`Divergence`. Functions of ``(u, x)``: :func:`derivative`,
:func:`derivatives`, :func:`gradient`, :func:`laplacian`, :func:`divergence`, and the
engine underneath, :func:`taylor` (Taylor-mode propagation over the recorded graph).

The seed's ODE ``u'(x) = 2x, u(0) = 1`` with ``u(x) = x g(x) + 1``:

>>> import tapegrad as mx
>>> from tapegrad import autograd, gluon
>>> from tapegrad.sciml import Derivative
>>> g = gluon.nn.HybridSequential()
>>> g.add(gluon.nn.Dense(8, activation='sigmoid'), gluon.nn.Dense(1))
>>> g.initialize()
>>> du = Derivative(lambda x: x * g(x) + 1.0)
>>> x = mx.nd.random.uniform(-1, 1, shape=(16, 1))
>>> with autograd.record():
...     loss = ((du(x) - 2 * x) ** 2).mean()
>>> loss.backward()                        # reaches g's parameters
>>> g[0].weight.grad().shape
(8, 1)

Which method each operator uses, and measurements: ``docs/sciml.md``.
"""

from ..taylor import taylor, unit_directions
from .layers import Derivative, Derivatives, Divergence, Gradient, Laplacian
from .operators import derivative, derivatives, divergence, gradient, laplacian

__all__ = [
    "Derivative",
    "Derivatives",
    "Gradient",
    "Laplacian",
    "Divergence",
    "derivative",
    "derivatives",
    "gradient",
    "laplacian",
    "divergence",
    "taylor",
    "unit_directions",
]
