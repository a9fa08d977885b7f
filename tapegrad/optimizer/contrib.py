"""``mx.optimizer.contrib``: MXNet's contributed optimizers (``GroupAdaGrad``)."""

from .optimizer import GroupAdaGrad

__all__ = ["GroupAdaGrad"]
