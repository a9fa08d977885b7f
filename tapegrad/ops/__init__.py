"""Primitives by family. Importing this package declares every primitive.

Each module declares its primitives with :func:`tapegrad.core.defprim`: the NumPy
implementation, one VJP rule per input, the JVP rule (or a marker), the Taylor (jet) rule
(or a marker), the formula ``explain`` prints and the ``mx.nd``/NDArray names, side by side.
Rules use only the ``xp`` namespace they are given (never ``numpy`` directly), so every rule
is itself differentiable; ``tests/test_engine_rules.py`` enforces it.
"""

from . import conv, elementwise, linalg, nn, reductions, rnn, shape  # noqa: F401
