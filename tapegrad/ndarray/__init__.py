"""``mx.nd``: the NDArray and its operators (MXNet 1.x names and signatures)."""

from .. import ops as _ops  # noqa: F401  (declares the primitives the functions below expose)
from . import ndarray_functions as _functions
from . import nn_ops as _nn_ops
from . import random  # noqa: F401
from . import rnn_ops as _rnn_ops
from .ndarray import InplaceError, NDArray
from .ndarray_functions import *  # noqa: F401,F403
from .nn_ops import *  # noqa: F401,F403
from .random import ND_NAMES as _RANDOM_OPS
from .rnn_ops import *  # noqa: F401,F403

globals().update(_RANDOM_OPS)  # random_normal, normal, sample_multinomial, shuffle, ...

__all__ = [
    "NDArray",
    "InplaceError",
    *_functions.__all__,
    *_nn_ops.__all__,
    *_rnn_ops.__all__,
    *_RANDOM_OPS,
]
