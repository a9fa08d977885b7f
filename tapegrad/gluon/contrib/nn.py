"""``mx.gluon.contrib.nn``: MXNet 1.x's names for layers that MXNet 2 moved to ``gluon.nn``:
``HybridConcurrent`` (``nn.HybridConcatenate``), ``Concurrent`` (``nn.Concatenate``),
``Identity``, ``SyncBatchNorm``, ``PixelShuffle1D/2D/3D``.

>>> import tapegrad as mx
>>> from tapegrad.gluon.contrib.nn import HybridConcurrent, Identity
>>> net = HybridConcurrent(axis=1)
>>> net.add(mx.gluon.nn.Dense(2), Identity())
>>> net.initialize(); net(mx.nd.ones((1, 3))).shape
(1, 5)
"""

from ..nn.basic_layers import (
    Concatenate,
    HybridConcatenate,
    Identity,
    PixelShuffle1D,
    PixelShuffle2D,
    PixelShuffle3D,
    SyncBatchNorm,
)

__all__ = [
    "Concurrent",
    "HybridConcurrent",
    "Identity",
    "SyncBatchNorm",
    "PixelShuffle1D",
    "PixelShuffle2D",
    "PixelShuffle3D",
]


class HybridConcurrent(HybridConcatenate):
    """MXNet 1.x's name of :class:`~tapegrad.gluon.nn.HybridConcatenate` (automatic names
    ``hybridconcurrent<n>_``)."""


class Concurrent(Concatenate):
    """MXNet 1.x's name of :class:`~tapegrad.gluon.nn.Concatenate` (automatic names
    ``concurrent<n>_``)."""
