"""Optimizers (``mx.optimizer``): the registry and MXNet 1.9's update rules.

>>> import tapegrad as mx
>>> type(mx.optimizer.create('adam', learning_rate=0.01)).__name__
'Adam'
"""

from . import contrib
from .optimizer import (
    DCASGD,
    FTML,
    LAMB,
    LARS,
    LBSGD,
    NAG,
    SGD,
    SGLD,
    AdaDelta,
    AdaGrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Nadam,
    Optimizer,
    OptimizerError,
    RMSProp,
    Signum,
    Updater,
    ccSGD,
    create,
    get_updater,
    register,
)
from .optimizer import Test as Test  # MXNet's 'test' optimizer

__all__ = [
    "Optimizer",
    "SGD",
    "NAG",
    "Adam",
    "AdamW",
    "AdaGrad",
    "RMSProp",
    "AdaDelta",
    "ccSGD",
    "Signum",
    "FTML",
    "LARS",
    "LBSGD",
    "LAMB",
    "DCASGD",
    "SGLD",
    "Ftrl",
    "Adamax",
    "Nadam",
    "Test",
    "contrib",
    "Updater",
    "get_updater",
    "create",
    "register",
    "OptimizerError",
]
