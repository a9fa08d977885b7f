"""Primitives by family. Importing this package declares every primitive.

Each module declares its primitives with :func:`tapegrad.engine.defprim`: the NumPy
implementation, one VJP rule per input and the JVP rule side by side. Rules use only the
``xp`` namespace they are given (never ``numpy`` directly), so every rule is itself
differentiable. ``tests/test_engine_rules.py`` enforces this.
"""

from . import elementwise, linalg, nn, reductions, shape  # noqa: F401
