"""The engine's public names, for code that declares its own primitives.

The engine itself is the package :mod:`tapegrad.core` (one job per module); this module
re-exports what a user of ``defprim`` needs:

>>> from tapegrad.engine import JVP_IS_VJP, defprim
"""

from .core import *  # noqa: F403
from .core import __all__  # noqa: F401
