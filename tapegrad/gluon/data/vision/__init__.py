"""Vision datasets and transforms (``gluon.data.vision``).

>>> import tapegrad as mx
>>> mx.gluon.data.vision.MNIST(train=False)[0][0].shape
(28, 28, 1)
"""

from . import transforms
from .datasets import CIFAR10, CIFAR100, MNIST, DatasetFileError, FashionMNIST

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "DatasetFileError", "transforms"]
