"""``tapegrad.func``: the function transforms of :mod:`tapegrad.functional` under a shorter
name (the same function objects, so ``import tapegrad.func as F`` and ``from tapegrad import
functional as F`` are interchangeable).

>>> import tapegrad as mx
>>> import tapegrad.func as F
>>> F.grad is mx.functional.grad
True
>>> F.grad(lambda x: (x * x).sum())(mx.nd.array([3.0])).asnumpy().tolist()
[6.0]
"""

from .functional import *  # noqa: F403  (the same objects, under the same names)
from .functional import __all__  # noqa: F401
