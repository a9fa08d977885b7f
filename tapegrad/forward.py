"""Forward mode (``tapegrad.forward``): levels, tangents, ``jvp``.

The implementation is :mod:`tapegrad.core.forward`; this module is its public name.

>>> import tapegrad as mx
>>> from tapegrad.forward import jvp
>>> x = mx.nd.array([1.0, 2.0], dtype='float64')
>>> jvp(lambda x: x * x, (x,), (mx.nd.ones_like(x),))[1].asnumpy().tolist()
[2.0, 4.0]
"""

from .core.forward import dual, jvp, new_level, primal_of, tangent_of

__all__ = ["jvp", "new_level", "dual", "tangent_of", "primal_of"]
