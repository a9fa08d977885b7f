"""Datasets and data loading (``gluon.data``), as MXNet 1.9.

>>> import tapegrad as mx
>>> loader = mx.gluon.data.DataLoader(mx.gluon.data.ArrayDataset(mx.nd.ones((6, 3))),
...                                   batch_size=4)
>>> [b.shape for b in loader]
[(4, 3), (2, 3)]
"""

from . import vision
from .dataloader import DataLoader, default_batchify_fn
from .dataset import ArrayDataset, Dataset, SimpleDataset
from .sampler import (
    BatchSampler,
    IntervalSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SplitSampler,
)

__all__ = [
    "Dataset",
    "SimpleDataset",
    "ArrayDataset",
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "BatchSampler",
    "IntervalSampler",
    "SplitSampler",
    "DataLoader",
    "default_batchify_fn",
    "vision",
]
