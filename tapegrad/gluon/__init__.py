"""``mx.gluon``: parameters, blocks, layers, losses, the Trainer, data loading, the model zoo
and ``SymbolBlock`` for models exported by MXNet (MXNet 1.x Gluon API)."""

from . import contrib, data, loss, model_zoo, nn, rnn, utils
from .block import Block, HybridBlock
from .parameter import Constant, DeferredInitializationError, Parameter, ParameterDict
from .symbol_block import SymbolBlock
from .trainer import Trainer

__all__ = [
    "Parameter",
    "Constant",
    "ParameterDict",
    "DeferredInitializationError",
    "Block",
    "HybridBlock",
    "SymbolBlock",
    "nn",
    "rnn",
    "loss",
    "Trainer",
    "data",
    "utils",
    "model_zoo",
    "contrib",
]
