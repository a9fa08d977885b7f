"""``mx.gluon``: parameters, blocks, layers, losses, the Trainer and data loading
(MXNet 1.x Gluon API)."""

from . import contrib, data, loss, model_zoo, nn
from .block import Block, HybridBlock
from .parameter import Constant, DeferredInitializationError, Parameter, ParameterDict
from .trainer import Trainer

__all__ = [
    "Parameter",
    "Constant",
    "ParameterDict",
    "DeferredInitializationError",
    "Block",
    "HybridBlock",
    "nn",
    "loss",
    "Trainer",
    "data",
    "model_zoo",
    "contrib",
]
