"""Taylor mode: derivatives of any order along directions, in one pass over a recorded graph.

* :mod:`~tapegrad.taylor.jets` -- jet algebra (Taylor coefficients and basic operations);
* :mod:`~tapegrad.taylor.derivs` -- derivative sequences of elementwise functions;
* :mod:`~tapegrad.taylor.propagation` -- the pass: :func:`taylor`, :func:`jvp`.

The jet rule of each primitive is declared with the primitive (``defprim(..., taylor=...)``).

>>> import tapegrad as mx
>>> from tapegrad.taylor import taylor
>>> x = mx.nd.array([[0.5]], dtype='float64')
>>> y, (d1, d2) = taylor(mx.nd.exp, x, mx.nd.ones((1, 1, 1), dtype='float64'), 2)
>>> round(float(d2.asscalar()), 6)
1.648721
"""

from __future__ import annotations

from typing import Any

__all__ = ["taylor", "jvp", "propagate", "trace_call", "JetContext", "unit_directions"]


def __getattr__(name: str) -> Any:
    # the pass sits above mx.nd; the jet algebra below it (the primitives' rules use it),
    # so importing this package must not import the pass eagerly
    if name in __all__:
        from . import propagation

        return getattr(propagation, name)
    raise AttributeError(f"module 'tapegrad.taylor' has no attribute {name!r}")
