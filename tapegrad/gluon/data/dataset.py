"""Datasets (``gluon.data``): anything with ``__getitem__`` and ``__len__``, as in MXNet 1.9.

>>> import tapegrad as mx
>>> ds = mx.gluon.data.ArrayDataset([1, 2, 3], ['a', 'b', 'c'])
>>> ds[1]
(2, 'b')
>>> ds.transform_first(lambda x: x * 10)[1]
(20, 'b')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...base import TapegradError

__all__ = ["Dataset", "SimpleDataset", "ArrayDataset", "DatasetError"]


class DatasetError(TapegradError, TypeError):
    """Something that is not a dataset (or a sequence) where one is needed."""


def _check_sequence(who: str, data: Any, fix: str) -> None:
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        got = "None" if data is None else f"{type(data).__name__} {data!r:.50}"
        raise DatasetError(
            f"{who} needs a sequence (an object with __len__ and __getitem__, such as a list, "
            f"a NumPy array or an NDArray), got {got}. Fix: {fix}"
        )


class Dataset:
    """Abstract dataset: subclasses define ``__getitem__(idx)`` and ``__len__()``."""

    def __getitem__(self, idx: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def filter(self, fn: Callable[[Any], bool]) -> SimpleDataset:
        """A new dataset with the samples for which ``fn(sample)`` is true.

        >>> import tapegrad as mx
        >>> list(mx.gluon.data.SimpleDataset(range(6)).filter(lambda x: x % 2 == 0))
        [0, 2, 4]
        """
        return SimpleDataset([self[i] for i in range(len(self)) if fn(self[i])])

    def shard(self, num_shards: int, index: int) -> _SampledDataset:
        """Shard ``index`` of ``num_shards`` contiguous shards (the first ones take the
        remainder, as MXNet).

        >>> import tapegrad as mx
        >>> list(mx.gluon.data.SimpleDataset(range(7)).shard(3, 0))
        [0, 1, 2]
        """
        if not 0 <= index < num_shards:
            raise ValueError(f"shard: index {index} is out of range for {num_shards} shards")
        length = len(self)
        per, rest = divmod(length, num_shards)
        start = per * index + min(index, rest)
        end = start + per + (1 if index < rest else 0)
        return _SampledDataset(self, list(range(start, end)))

    def take(self, count: int | None) -> _SampledDataset:
        """The first ``count`` samples (all of them for ``None``)."""
        if count is None or count > len(self):
            count = len(self)
        return _SampledDataset(self, list(range(count)))

    def sample(self, sampler: Any) -> _SampledDataset:
        """The samples at the indices a sampler yields."""
        return _SampledDataset(self, list(sampler))

    def transform(self, fn: Callable, lazy: bool = True) -> Dataset:
        """A dataset of ``fn(*sample)`` (``fn(sample)`` when a sample is not a tuple).

        With ``lazy=True`` (default) ``fn`` runs on each access; otherwise all samples are
        transformed now.
        """
        trans = _LazyTransformDataset(self, fn)
        if lazy:
            return trans
        return SimpleDataset([trans[i] for i in range(len(trans))])

    def transform_first(self, fn: Callable, lazy: bool = True) -> Dataset:
        """Like :meth:`transform` but ``fn`` applies to the first element of each sample only
        (the data, leaving the label)."""
        return self.transform(_TransformFirstClosure(fn), lazy)


class SimpleDataset(Dataset):
    """A dataset over any sequence (list, NumPy array, NDArray...).

    >>> import tapegrad as mx
    >>> len(mx.gluon.data.SimpleDataset([5, 6, 7]))
    3
    """

    def __init__(self, data: Any) -> None:
        _check_sequence("SimpleDataset", data, "pass a list of samples, e.g. list(samples).")
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: int) -> Any:
        return self._data[idx]


def _take(data: Any, indices: list) -> Any:
    """``data[indices]`` as a batch NDArray when ``data`` is an NDArray with at least two
    dimensions or a NumPy array; ``None`` otherwise."""
    from ...ndarray import NDArray

    if isinstance(data, NDArray):
        return NDArray(np.asarray(data._data)[np.asarray(indices, dtype=np.int64)])
    if isinstance(data, np.ndarray) and data.dtype != object:
        return NDArray(data[np.asarray(indices, dtype=np.int64)])
    return None


class _LazyTransformDataset(Dataset):
    def __init__(self, data: Any, fn: Callable) -> None:
        self._data = data
        self._fn = fn

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, idx: int) -> Any:
        item = self._data[idx]
        if isinstance(item, tuple):
            return self._fn(*item)
        return self._fn(item)


class _TransformFirstClosure:
    """Picklable ``lambda x, *rest: (fn(x), *rest)``."""

    def __init__(self, fn: Callable) -> None:
        self._fn = fn

    def __call__(self, x: Any, *args: Any) -> Any:
        if args:
            return (self._fn(x),) + args
        return self._fn(x)


class _SampledDataset(Dataset):
    def __init__(self, dataset: Any, indices: list) -> None:
        self._dataset = dataset
        self._indices = indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, idx: int) -> Any:
        return self._dataset[self._indices[idx]]


class ArrayDataset(Dataset):
    """Combines several equally long arrays: sample ``i`` is ``(a[i], b[i], ...)``, or
    ``a[i]`` for a single array. A 1-D NDArray is converted to NumPy (so its items are
    scalars), as MXNet does.

    >>> import tapegrad as mx
    >>> x, y = mx.nd.zeros((4, 2)), mx.nd.array([0, 1, 0, 1])
    >>> data, label = mx.gluon.data.ArrayDataset(x, y)[1]
    >>> data.shape, float(label)
    ((2,), 1.0)
    """

    def __init__(self, *args: Any) -> None:
        if not args:
            raise ValueError("ArrayDataset needs at least 1 array")
        _check_sequence("ArrayDataset (array[0])", args[0], "pass arrays or lists.")
        self._length = len(args[0])
        self._data = []
        for i, data in enumerate(args):
            _check_sequence(f"ArrayDataset (array[{i}])", data, "pass arrays or lists.")
            if len(data) != self._length:
                raise ValueError(
                    f"ArrayDataset: all arrays must have the same length; "
                    f"array[0] has length {self._length} while array[{i}] has "
                    f"{len(data)}."
                )
            if hasattr(data, "asnumpy") and len(data.shape) == 1:
                data = data.asnumpy()
            self._data.append(data)

    def __getitem__(self, idx: int) -> Any:
        if len(self._data) == 1:
            return self._data[0][idx]
        return tuple(data[idx] for data in self._data)

    def _get_batch(self, indices: list) -> Any:
        """The default-collated batch of ``indices`` by fancy indexing (DataLoader's fast
        path), or ``None`` when some array is not a NumPy array or an NDArray."""
        cols = [_take(d, indices) for d in self._data]
        if any(c is None for c in cols):
            return None
        return cols[0] if len(cols) == 1 else cols

    def __len__(self) -> int:
        return self._length
