"""Optimizers (``mx.optimizer``): the registry and MXNet 1.9's update rules.

>>> import tapegrad as mx
>>> type(mx.optimizer.create('adam', learning_rate=0.01)).__name__
'Adam'
"""

from .optimizer import (
    NAG,
    SGD,
    AdaDelta,
    AdaGrad,
    Adam,
    AdamW,
    Optimizer,
    OptimizerError,
    RMSProp,
    Updater,
    ccSGD,
    create,
    get_updater,
    register,
)

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
    "Updater",
    "get_updater",
    "create",
    "register",
    "OptimizerError",
]
