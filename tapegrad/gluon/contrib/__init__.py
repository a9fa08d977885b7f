"""``mx.gluon.contrib``: MXNet 1.x's contributed layers that tapegrad has (``contrib.nn``)."""

from . import nn

__all__ = ["nn"]
