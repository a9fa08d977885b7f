"""``gluon.data.DataLoader``: mini-batches from a Dataset (MXNet 1.9 semantics).

Loading happens in the calling thread; ``num_workers`` and the other multiprocessing options
are accepted for compatibility and ignored. Shuffling uses tapegrad's global generator, so
``mx.random.seed(n)`` makes the batch order reproducible.

>>> import tapegrad as mx
>>> ds = mx.gluon.data.ArrayDataset(mx.nd.arange(10).reshape(5, 2), mx.nd.arange(5))
>>> [(x.shape, y.shape) for x, y in mx.gluon.data.DataLoader(ds, batch_size=2)]
[((2, 2), (2,)), ((2, 2), (2,)), ((1, 2), (1,))]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import sampler as _sampler

__all__ = ["DataLoader", "default_batchify_fn"]


def _is_nd(x: Any) -> bool:
    return hasattr(x, "asnumpy") and hasattr(x, "_data")


def _wrap(a: np.ndarray) -> Any:
    from ...ndarray import NDArray

    return NDArray(a)


def default_batchify_fn(data: list) -> Any:
    """Collate samples into a batch: NDArrays are stacked along a new first axis, tuples are
    collated element-wise (a list of batches), anything else becomes an NDArray of its NumPy
    dtype (Python ints give int64, floats float64, as in MXNet).

    >>> import tapegrad as mx
    >>> from tapegrad.gluon.data import default_batchify_fn
    >>> b = default_batchify_fn([(mx.nd.ones((2,)), 1), (mx.nd.zeros((2,)), 0)])
    >>> b[0].shape, b[1].dtype
    ((2, 2), dtype('int64'))
    """
    first = data[0]
    if _is_nd(first):
        return _wrap(np.stack([np.asarray(d._data) for d in data]))
    if isinstance(first, tuple):
        return [default_batchify_fn(list(col)) for col in zip(*data)]
    arr = np.asarray(data)
    return _wrap(arr)


def _fast_batch(dataset: Any, indices: list) -> Any:
    """The batch of ``indices`` by fancy indexing, for datasets that support it (same result
    as collating the samples one by one); ``None`` when the dataset has no fast path."""
    get = getattr(dataset, "_get_batch", None)
    if get is None:
        return None
    return get(indices)


class DataLoader:
    """Iterates over a dataset in mini-batches.

    Args:
        dataset: a Dataset (anything with ``__getitem__`` and ``__len__``).
        batch_size: samples per batch (required unless ``batch_sampler`` is given).
        shuffle: draw samples in random order each epoch (tapegrad's global generator).
        sampler: an iterable of indices (excludes ``shuffle``).
        last_batch: ``'keep'`` (default), ``'discard'`` or ``'rollover'`` the last
            incomplete batch.
        batch_sampler: an iterable of index lists (excludes the four options above).
        batchify_fn: ``fn(list_of_samples) -> batch``; default :func:`default_batchify_fn`.
        num_workers, pin_memory, pin_device_id, prefetch, thread_pool, timeout,
            try_nopython: accepted and ignored (single-process loading).

    >>> import tapegrad as mx
    >>> dl = mx.gluon.data.DataLoader(mx.gluon.data.SimpleDataset(list(range(5))),
    ...                               batch_size=2, last_batch='discard')
    >>> [b.asnumpy().tolist() for b in dl]
    [[0, 1], [2, 3]]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = None,
        shuffle: bool = False,
        sampler: Any = None,
        last_batch: str | None = None,
        batch_sampler: Any = None,
        batchify_fn: Callable | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        pin_device_id: int = 0,
        prefetch: int | None = None,
        thread_pool: bool = False,
        timeout: int = 120,
        try_nopython: bool | None = None,
    ) -> None:
        self._dataset = dataset
        if batch_sampler is None:
            if batch_size is None:
                raise ValueError(
                    "DataLoader: batch_size must be specified unless batch_sampler is specified"
                )
            if sampler is None:
                if shuffle:
                    sampler = _sampler.RandomSampler(len(dataset))
                else:
                    sampler = _sampler.SequentialSampler(len(dataset))
            elif shuffle:
                raise ValueError(
                    "DataLoader: shuffle must not be specified if sampler is specified"
                )
            batch_sampler = _sampler.BatchSampler(
                sampler, batch_size, last_batch if last_batch else "keep"
            )
        elif batch_size is not None or shuffle or sampler is not None or last_batch is not None:
            raise ValueError(
                "DataLoader: batch_size, shuffle, sampler and last_batch must "
                "not be specified if batch_sampler is specified."
            )
        if num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be >= 0, got {num_workers}")
        self._batch_sampler = batch_sampler
        self._num_workers = num_workers
        self._default_batchify = batchify_fn is None
        self._batchify_fn = default_batchify_fn if batchify_fn is None else batchify_fn

    def __iter__(self) -> Iterator:
        ds = self._dataset
        fast = self._default_batchify and hasattr(ds, "_get_batch")
        for batch in self._batch_sampler:
            if fast:
                out = _fast_batch(ds, batch)
                if out is not None:
                    yield out
                    continue
            yield self._batchify_fn([ds[idx] for idx in batch])

    def __len__(self) -> int:
        return len(self._batch_sampler)
