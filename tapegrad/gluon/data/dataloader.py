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

from ...base import ShapeError, TapegradError
from ...ndarray import NDArray
from . import sampler as _sampler
from .dataset import DatasetError

__all__ = ["DataLoader", "default_batchify_fn", "BatchifyError", "SamplerIndexError"]


class BatchifyError(TapegradError, TypeError):
    """A sample the default batchify function cannot turn into an array (None, a string, a
    dict, an object...)."""


class SamplerIndexError(TapegradError, IndexError):
    """A sampler gave an index that is not a whole number in ``[0, len(dataset))``."""


_SCALARS = (bool, int, float, np.bool_, np.integer, np.floating)


def _describe(x: Any) -> str:
    return f"{type(x).__name__} {x!r:.50}" if x is not None else "None"


def _unbatchable(sample: Any, arr: Any, where: Callable[[int], str], k: int) -> BatchifyError:
    what = f"a NumPy array of dtype {arr.dtype}" if arr is not None else _describe(sample)
    return BatchifyError(
        f"DataLoader: {where(k)} is {what}, which cannot be batched into an array. Fix: make "
        "the dataset return numbers, NumPy arrays or NDArrays (or tuples of them), e.g. with "
        f"dataset.transform(...), or pass a batchify_fn that handles {type(sample).__name__} "
        "samples."
    )


def _as_numpy(sample: Any, where: Callable[[int], str], k: int) -> np.ndarray:
    """One sample as a NumPy array: NDArrays, NumPy arrays, numbers and (nested) lists of
    numbers; anything else is a :class:`BatchifyError` naming ``where(k)``."""
    if isinstance(sample, NDArray):
        return np.asarray(sample)
    arr = None
    if isinstance(sample, (np.ndarray, np.generic, list, *_SCALARS)):
        try:
            arr = np.asarray(sample)
        except ValueError:  # a ragged list
            arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        raise _unbatchable(sample, arr, where, k)
    return arr


def _collate(data: list, where: Callable[[int], str]) -> Any:
    first = data[0]
    if isinstance(first, tuple):
        for k, d in enumerate(data):
            if not isinstance(d, tuple) or len(d) != len(first):
                raise BatchifyError(
                    f"DataLoader: {where(k)} is {_describe(d)} but {where(0)} is a tuple of "
                    f"{len(first)}; samples of a batch must have the same structure. Fix: make "
                    "every sample a tuple of the same length (e.g. (data, label))."
                )
        return [
            _collate(list(col), lambda k, j=j: f"element {j} of {where(k)}")
            for j, col in enumerate(zip(*data))
        ]
    if all(isinstance(d, _SCALARS) for d in data):  # labels: one conversion
        arr = np.asarray(data)
        if arr.dtype.kind in "biuf":
            return NDArray(arr)
    if all(isinstance(d, NDArray) for d in data):  # images: no per-sample conversion
        arrays = [d._data for d in data]
    else:
        arrays = [_as_numpy(d, where, k) for k, d in enumerate(data)]
    try:
        return NDArray(np.stack(arrays))
    except ValueError:
        shape = np.shape(arrays[0])
        k = next(k for k, a in enumerate(arrays) if np.shape(a) != shape)
        raise ShapeError(
            f"DataLoader: {where(k)} has shape {np.shape(arrays[k])} but {where(0)} has shape "
            f"{shape}; the samples of a batch are stacked, so their shapes must be equal. Fix: "
            "resize or pad the samples to one shape (e.g. with dataset.transform), or pass a "
            "batchify_fn that pads."
        ) from None


def default_batchify_fn(data: list) -> Any:
    """Collate samples into a batch: tuples are collated element-wise (a list of batches);
    NDArrays, NumPy arrays, numbers and lists of numbers are stacked along a new first axis,
    with NumPy's dtype promotion whatever their order (NDArrays and NumPy arrays may be mixed;
    Python ints give int64, floats float64, as in MXNet). Anything else (None, strings,
    dicts, objects) raises a :class:`BatchifyError`, samples of different shapes a
    ``ShapeError``, each naming the sample.

    >>> import tapegrad as mx
    >>> from tapegrad.gluon.data import default_batchify_fn
    >>> b = default_batchify_fn([(mx.nd.ones((2,)), 1), (mx.nd.zeros((2,)), 0)])
    >>> b[0].shape, b[1].dtype
    ((2, 2), <class 'numpy.int64'>)
    """
    if not data:
        raise BatchifyError("default_batchify_fn: got no samples. Fix: pass a non-empty list.")
    return _collate(list(data), lambda k: f"sample {k} of the batch")


def _check_indices(batch: Any, n: int | None) -> None:
    """Every index of ``batch`` a whole number in ``[0, n)`` (``n`` None: not checked)."""
    idx = np.asarray(batch)
    if idx.size == 0:
        return
    if idx.dtype.kind not in "iu":
        bad = next(
            (i for i in batch if not isinstance(i, (int, np.integer)) or isinstance(i, bool)),
            batch[0],
        )
        raise SamplerIndexError(
            f"DataLoader: the sampler gave the index {_describe(bad)}; indices must be whole "
            "numbers. Fix: make the sampler yield ints."
        )
    if n is not None and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)][0]
        raise SamplerIndexError(
            f"DataLoader: the sampler gave the index {int(bad)}, outside the dataset of length "
            f"{n} (valid: 0..{n - 1}). Fix: build the sampler for this dataset, e.g. "
            f"SequentialSampler(len(dataset)), or pass indices in range."
        )


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
        dataset: a Dataset (anything with ``__getitem__`` and ``__len__``; ``__len__`` may
            be missing when ``batch_sampler`` is given).
        batch_size: samples per batch (required unless ``batch_sampler`` is given).
        shuffle: draw samples in random order each epoch (tapegrad's global generator).
        sampler: an iterable of indices (excludes ``shuffle``).
        last_batch: ``'keep'`` (default), ``'discard'`` or ``'rollover'`` the last
            incomplete batch.
        batch_sampler: an iterable of index lists (excludes the four options above).
        batchify_fn: ``fn(list_of_samples) -> batch``; default :func:`default_batchify_fn`.
        num_workers, pin_memory, pin_device_id, prefetch, thread_pool, timeout,
            try_nopython: accepted and ignored (single-process loading).

    Every index the sampler gives must be a whole number in ``[0, len(dataset))``
    (:class:`SamplerIndexError` otherwise: a -1 would silently wrap around in a NumPy-backed
    dataset). With the default batchify function a sample that cannot be batched (None, a
    string, a dict...) raises :class:`BatchifyError` naming its dataset index.

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
        needs = ("__getitem__",) if batch_sampler is not None else ("__getitem__", "__len__")
        if not all(hasattr(dataset, a) for a in needs):
            raise DatasetError(
                f"DataLoader: dataset must be a Dataset (an object with "
                f"{' and '.join(needs)}), got {_describe(dataset)}. Fix: pass e.g. "
                "gluon.data.ArrayDataset(x, y) or gluon.data.SimpleDataset(list_of_samples)."
            )
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
        n = len(ds) if hasattr(ds, "__len__") else None
        fast = self._default_batchify and hasattr(ds, "_get_batch")
        for batch in self._batch_sampler:
            _check_indices(batch, n)
            if fast:
                out = _fast_batch(ds, batch)
                if out is not None:
                    yield out
                    continue
            samples = [ds[idx] for idx in batch]
            if self._default_batchify:
                yield _collate(samples, lambda k, b=batch: f"the sample at dataset index {b[k]}")
            else:
                yield self._batchify_fn(samples)

    def __len__(self) -> int:
        return len(self._batch_sampler)
