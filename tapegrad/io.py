"""Data iterators (``mx.io``) with MXNet 1.9's batching: :class:`NDArrayIter`,
:class:`MNISTIter` (the MNIST copy bundled with tapegrad), :class:`CSVIter`, and the
classes they are built from (:class:`DataDesc`, :class:`DataBatch`, :class:`DataIter`,
:class:`ResizeIter`, :class:`PrefetchingIter`).

>>> import numpy as np
>>> import tapegrad as mx
>>> it = mx.io.NDArrayIter(np.arange(10).reshape(5, 2), np.arange(5), batch_size=2)
>>> [(b.data[0].shape, b.pad) for b in it]
[((2, 2), 0), ((2, 2), 0), ((2, 2), 1)]
>>> it.provide_data
[DataDesc[data,(2, 2),<class 'numpy.float32'>,NCHW]]
"""

from __future__ import annotations

import glob
import logging
import numbers
import os
from collections import OrderedDict, namedtuple
from collections.abc import Iterator
from typing import Any

import numpy as np

from .base import TapegradError
from .ndarray import NDArray

__all__ = [
    "DataDesc",
    "DataBatch",
    "DataIter",
    "ResizeIter",
    "PrefetchingIter",
    "NDArrayIter",
    "MNISTIter",
    "CSVIter",
    "DataIterError",
]


class DataIterError(TapegradError, ValueError):
    """A data iterator was given arguments or data it cannot iterate over (the message
    names the iterator, the argument and the fix)."""


def _batch_size(who: str, batch_size: Any) -> int:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or int(batch_size) < 1
    ):
        raise DataIterError(
            f"{who}: batch_size must be a positive int, got {batch_size!r}. Fix: pass the "
            "number of samples per batch, e.g. batch_size=32."
        )
    return int(batch_size)


class DataDesc(namedtuple("DataDesc", ["name", "shape"])):
    """Name, shape, dtype and layout of one input or label (MXNet's ``DataDesc``).

    >>> d = DataDesc('data', (32, 1, 28, 28))
    >>> d
    DataDesc[data,(32, 1, 28, 28),<class 'numpy.float32'>,NCHW]
    >>> d.name, d.shape, DataDesc.get_batch_axis('TNC')
    ('data', (32, 1, 28, 28), 1)
    """

    dtype: Any
    layout: str

    def __new__(
        cls, name: str, shape: tuple, dtype: Any = np.float32, layout: str = "NCHW"
    ) -> DataDesc:
        ret = super().__new__(cls, name, shape)
        ret.dtype = dtype
        ret.layout = layout
        return ret

    def __repr__(self) -> str:
        return f"DataDesc[{self.name},{self.shape},{self.dtype},{self.layout}]"

    @staticmethod
    def get_batch_axis(layout: str | None) -> int:
        """The axis of ``N`` in ``layout`` (0 when there is no layout, -1 without ``N``)."""
        if layout is None:
            return 0
        return layout.find("N")

    @staticmethod
    def get_list(shapes: list, types: list | None) -> list[DataDesc]:
        """DataDescs from ``[(name, shape)]`` and optionally ``[(name, dtype)]``."""
        if types is not None:
            type_dict = dict(types)
            return [DataDesc(x[0], x[1], type_dict[x[0]]) for x in shapes]
        return [DataDesc(x[0], x[1]) for x in shapes]


class DataBatch:
    """One batch: ``data`` and ``label`` (lists of NDArrays), ``pad`` (how many samples at
    the end repeat earlier ones to fill the batch), ``index``, ``bucket_key`` and the
    ``provide_data``/``provide_label`` descriptions.

    >>> import tapegrad as mx
    >>> b = DataBatch([mx.nd.ones((2, 3))], [mx.nd.zeros((2,))], pad=0)
    >>> str(b)
    'DataBatch: data shapes: [(2, 3)] label shapes: [(2,)]'
    """

    def __init__(
        self,
        data: Any,
        label: Any = None,
        pad: int | None = None,
        index: Any = None,
        bucket_key: Any = None,
        provide_data: Any = None,
        provide_label: Any = None,
    ) -> None:
        if data is not None and not isinstance(data, (list, tuple)):
            raise DataIterError(
                f"DataBatch: data must be a list of NDArrays, got {type(data).__name__}. "
                "Fix: wrap it in a list: DataBatch(data=[x])."
            )
        if label is not None and not isinstance(label, (list, tuple)):
            raise DataIterError(
                f"DataBatch: label must be a list of NDArrays, got {type(label).__name__}. "
                "Fix: wrap it in a list: DataBatch(data=[x], label=[y])."
            )
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    def __str__(self) -> str:
        data_shapes = [d.shape for d in self.data]
        label_shapes = [lab.shape for lab in self.label] if self.label else None
        return f"{type(self).__name__}: data shapes: {data_shapes} label shapes: {label_shapes}"


class DataIter:
    """Base class of data iterators: ``next()`` returns a :class:`DataBatch` and raises
    ``StopIteration`` at the end of the data; ``reset()`` starts again. Subclasses define
    ``iter_next``, ``getdata``, ``getlabel``, ``getpad`` (and ``getindex``), or override
    ``next``.
    """

    def __init__(self, batch_size: int = 0) -> None:
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[DataBatch]:
        return self

    def reset(self) -> None:
        """Go back to the beginning of the data."""

    def next(self) -> DataBatch:
        """The next batch (``StopIteration`` at the end)."""
        if self.iter_next():
            return DataBatch(
                data=self.getdata(),
                label=self.getlabel(),
                pad=self.getpad(),
                index=self.getindex(),
            )
        raise StopIteration

    def __next__(self) -> DataBatch:
        return self.next()

    def iter_next(self) -> bool:
        """Move to the next batch; False at the end."""
        return False

    def getdata(self) -> Any:
        """The data of the current batch (a list of NDArrays)."""
        return None

    def getlabel(self) -> Any:
        """The labels of the current batch (a list of NDArrays)."""
        return None

    def getindex(self) -> Any:
        """The indices of the current batch's samples (None when unknown)."""
        return None

    def getpad(self) -> Any:
        """How many samples at the end of the current batch are padding."""
        return None


class ResizeIter(DataIter):
    """``data_iter`` resized to ``size`` batches per epoch: it restarts the inner iterator
    when that ends early, and stops after ``size`` batches.

    >>> import tapegrad as mx
    >>> it = ResizeIter(mx.io.NDArrayIter(mx.nd.ones((100, 10)), batch_size=25), 2)
    >>> [b.data[0].shape for b in it]
    [(25, 10), (25, 10)]
    """

    def __init__(self, data_iter: DataIter, size: int, reset_internal: bool = True) -> None:
        super().__init__()
        self.data_iter = data_iter
        self.size = size
        self.reset_internal = reset_internal
        self.cur = 0
        self.current_batch: DataBatch | None = None
        self.provide_data = data_iter.provide_data
        self.provide_label = data_iter.provide_label
        self.batch_size = data_iter.batch_size
        if hasattr(data_iter, "default_bucket_key"):
            self.default_bucket_key = data_iter.default_bucket_key

    def reset(self) -> None:
        self.cur = 0
        if self.reset_internal:
            self.data_iter.reset()

    def iter_next(self) -> bool:
        if self.cur == self.size:
            return False
        try:
            self.current_batch = self.data_iter.next()
        except StopIteration:
            self.data_iter.reset()
            self.current_batch = self.data_iter.next()
        self.cur += 1
        return True

    def getdata(self) -> Any:
        return self.current_batch.data

    def getlabel(self) -> Any:
        return self.current_batch.label

    def getindex(self) -> Any:
        return self.current_batch.index

    def getpad(self) -> Any:
        return self.current_batch.pad


class PrefetchingIter(DataIter):
    """Joins several iterators (batch by batch) and renames their inputs, as MXNet's
    ``PrefetchingIter``. tapegrad reads each batch when it is asked for (no background
    thread), so the batches are the same and no thread is left behind.

    Args:
        iters: a DataIter or a list of them (of equal lengths).
        rename_data, rename_label: one dict ``{old name: new name}`` per iterator.
    """

    def __init__(
        self,
        iters: DataIter | list[DataIter],
        rename_data: list[dict] | None = None,
        rename_label: list[dict] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(iters, list):
            iters = [iters]
        if not iters:
            raise DataIterError(
                "PrefetchingIter: got an empty list of iterators. Fix: pass at least one."
            )
        self.n_iter = len(iters)
        self.iters = iters
        self.rename_data = rename_data
        self.rename_label = rename_label
        self.batch_size = self.provide_data[0][1][0]
        self.current_batch: DataBatch | None = None

    def _renamed(self, attr: str, renames: list[dict] | None) -> list:
        if renames is None:
            return sum((getattr(i, attr) for i in self.iters), [])
        return sum(
            (
                [
                    DataDesc(r[x.name], x.shape, x.dtype)
                    if isinstance(x, DataDesc)
                    else DataDesc(r[x[0]], x[1])
                    for x in getattr(i, attr)
                ]
                for r, i in zip(renames, self.iters)
            ),
            [],
        )

    @property
    def provide_data(self) -> list:
        return self._renamed("provide_data", self.rename_data)

    @property
    def provide_label(self) -> list:
        return self._renamed("provide_label", self.rename_label)

    def reset(self) -> None:
        for i in self.iters:
            i.reset()

    def iter_next(self) -> bool:
        batches = []
        for it in self.iters:
            try:
                batches.append(it.next())
            except StopIteration:
                batches.append(None)
        if batches[0] is None:
            if any(b is not None for b in batches):
                raise DataIterError(
                    "PrefetchingIter: the iterators have different numbers of batches. Fix: "
                    "join iterators over the same number of samples with the same batch size."
                )
            return False
        if any(b is None or b.pad != batches[0].pad for b in batches):
            raise DataIterError(
                "PrefetchingIter: the iterators have different numbers of samples (their "
                "batches end or pad differently). Fix: join iterators over the same samples."
            )
        self.current_batch = DataBatch(
            sum((b.data for b in batches), []),
            sum((b.label for b in batches), []),
            batches[0].pad,
            batches[0].index,
            provide_data=self.provide_data,
            provide_label=self.provide_label,
        )
        return True

    def next(self) -> DataBatch:
        if self.iter_next():
            return self.current_batch
        raise StopIteration

    def getdata(self) -> Any:
        return self.current_batch.data

    def getlabel(self) -> Any:
        return self.current_batch.label

    def getindex(self) -> Any:
        return self.current_batch.index

    def getpad(self) -> Any:
        return self.current_batch.pad


# --------------------------------------------------------------------------- NDArrayIter


def _as_source(who: str, name: str, v: Any) -> np.ndarray:
    """One data source as a NumPy array: an NDArray keeps its dtype (and is not copied),
    anything else becomes float32, as ``mx.nd.array`` makes it in MXNet."""
    if isinstance(v, NDArray):
        return np.asarray(v)
    try:
        arr = np.array(v, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise DataIterError(
            f"{who}: {name} of type {type(v).__name__} cannot be converted to an array ({e}). "
            "Fix: pass NDArrays or NumPy arrays (or a list or dict of them)."
        ) from None
    if arr.ndim == 0:
        raise DataIterError(
            f"{who}: {name} is a scalar; it needs a first axis of samples. Fix: pass an array "
            "of shape (num_samples, ...)."
        )
    return arr


def _init_data(who: str, data: Any, allow_empty: bool, default_name: str) -> list:
    """``[(name, array)]`` sorted by name, as MXNet's ``_init_data``."""
    if data is None:
        if not allow_empty:
            raise DataIterError(f"{who}: data is None. Fix: pass the input arrays.")
        data = []
    if isinstance(data, (np.ndarray, NDArray)):
        data = [data]
    if isinstance(data, list):
        if not data and not allow_empty:
            raise DataIterError(f"{who}: data is an empty list. Fix: pass the input arrays.")
        if len(data) == 1:
            data = OrderedDict([(default_name, data[0])])
        else:
            data = OrderedDict((f"_{i}_{default_name}", d) for i, d in enumerate(data))
    if not isinstance(data, dict):
        raise DataIterError(
            f"{who}: {default_name} must be an NDArray, a NumPy array, a list of them or a "
            f"dict name -> array, got {type(data).__name__}. Fix: convert it with "
            "np.asarray(...)."
        )
    return sorted((str(k), _as_source(who, f"'{k}'", v)) for k, v in data.items())


_LAST_BATCH = ("pad", "discard", "roll_over")


class NDArrayIter(DataIter):
    """Iterates over NDArrays / NumPy arrays in batches, exactly as MXNet 1.9's
    ``NDArrayIter``.

    Args:
        data: an array, a list of arrays (named ``_0_data``, ``_1_data``, ...) or a dict
            name -> array; NumPy input becomes float32 (as ``mx.nd.array``), NDArrays keep
            their dtype. Sources are sorted by name.
        label: the same for labels (default name ``'softmax_label'``), or None.
        batch_size: samples per batch.
        shuffle: shuffle the samples at every ``reset()`` (and at creation), with NumPy's
            global generator (``np.random.seed`` makes it repeatable), as MXNet does.
        last_batch_handle: what to do with the last, incomplete batch: ``'pad'`` fills it
            with samples from the beginning (``getpad()`` / ``batch.pad`` says how many);
            ``'discard'`` drops it; ``'roll_over'`` keeps its samples for the first batch
            of the next epoch (after ``reset()``).
        data_name, label_name: names of a single data / label array.
        layout: the data layout; its ``N`` is the batch axis (``provide_data`` shapes).

    >>> import numpy as np
    >>> it = NDArrayIter(np.arange(10), batch_size=4, last_batch_handle='roll_over')
    >>> [b.data[0].asnumpy().tolist() for b in it]
    [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    >>> it.reset(); it.next().data[0].asnumpy().tolist()
    [8.0, 9.0, 0.0, 1.0]
    """

    def __init__(
        self,
        data: Any,
        label: Any = None,
        batch_size: int = 1,
        shuffle: bool = False,
        last_batch_handle: str = "pad",
        data_name: str = "data",
        label_name: str = "softmax_label",
        layout: str = "NCHW",
    ) -> None:
        who = "NDArrayIter"
        batch_size = _batch_size(who, batch_size)
        super().__init__(batch_size)
        if last_batch_handle not in _LAST_BATCH:
            raise DataIterError(
                f"{who}: last_batch_handle={last_batch_handle!r} is not one of 'pad', "
                "'discard', 'roll_over'. Fix: use one of these."
            )
        self.data = _init_data(who, data, False, data_name)
        self.label = _init_data(who, label, True, label_name)
        self.num_data = self.data[0][1].shape[0]
        for k, v in self.data + self.label:
            if v.shape[0] < self.num_data:
                raise DataIterError(
                    f"{who}: '{k}' has {v.shape[0]} samples but '{self.data[0][0]}' has "
                    f"{self.num_data}. Fix: give every data and label array the same number "
                    "of samples (first axis)."
                )
        self.idx = np.arange(self.num_data)
        self._perm: np.ndarray | None = None  # sample order after shuffling (None: as given)
        self.shuffle = shuffle
        self.last_batch_handle = last_batch_handle
        self.cursor = -self.batch_size
        self.layout = layout
        self._cache_data: list | None = None
        self._cache_label: list | None = None
        self.reset()
        self.data_list = [x[1] for x in self.data] + [x[1] for x in self.label]
        self.num_source = len(self.data_list)

    def _describe(self, sources: list) -> list[DataDesc]:
        axis = self.layout.find("N")
        return [
            DataDesc(
                k,
                tuple(list(v.shape[:axis]) + [self.batch_size] + list(v.shape[axis + 1 :])),
                np.dtype(v.dtype).type,
                layout=self.layout,
            )
            for k, v in sources
        ]

    @property
    def provide_data(self) -> list[DataDesc]:
        """Name, batch shape, dtype and layout of each data array."""
        return self._describe(self.data)

    @property
    def provide_label(self) -> list[DataDesc]:
        """Name, batch shape, dtype and layout of each label array."""
        return self._describe(self.label)

    def hard_reset(self) -> None:
        """Back to the beginning, dropping samples kept by ``'roll_over'``."""
        if self.shuffle:
            self._shuffle_data()
        self.cursor = -self.batch_size
        self._cache_data = None
        self._cache_label = None

    def reset(self) -> None:
        """Back to the beginning (reshuffled if ``shuffle``); with ``'roll_over'`` the
        samples left over from the last epoch start the next one."""
        if self.shuffle:
            self._shuffle_data()
        if (
            self.last_batch_handle == "roll_over"
            and self.num_data - self.batch_size < self.cursor < self.num_data
        ):
            self.cursor = self.cursor - self.num_data - self.batch_size
        else:
            self.cursor = -self.batch_size

    def iter_next(self) -> bool:
        self.cursor += self.batch_size
        return self.cursor < self.num_data

    def next(self) -> DataBatch:
        if not self.iter_next():
            raise StopIteration
        data = self.getdata()
        label = self.getlabel()
        if data[0].shape[self._axis()] != self.batch_size:  # an incomplete last batch
            self._cache_data = data
            self._cache_label = label
            raise StopIteration
        return DataBatch(data=data, label=label, pad=self.getpad(), index=None)

    def _axis(self) -> int:
        return max(self.layout.find("N"), 0)

    def _slice(self, sources: list, start: int, end: int) -> list[np.ndarray]:
        axis = self._axis()
        if axis == 0:
            if self._perm is not None:
                rows = self._perm[start:end]
                return [v[rows] for _, v in sources]
            return [v[start:end] for _, v in sources]
        sl = (slice(None),) * axis + (slice(start, end),)
        return [v[sl] for _, v in sources]

    def _batchify(self, sources: list) -> list[NDArray]:
        if self.cursor >= self.num_data:
            raise DataIterError(
                "NDArrayIter: the iterator is at its end. Fix: call reset() before reading "
                "more batches."
            )
        axis = self._axis()
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            # first batch of an epoch: the samples left over from the previous one, then more
            cache = self._cache_data if self._cache_data is not None else self._cache_label
            if cache is None:
                raise DataIterError(
                    "NDArrayIter: no samples were kept from the previous epoch. Fix: read "
                    "the epoch to its end before reset(), or call hard_reset()."
                )
            if self._cache_data is not None:
                self._cache_data = None
            else:
                self._cache_label = None
            second = self._slice(sources, 0, self.cursor + self.batch_size)
            return [
                NDArray(np.concatenate((np.asarray(c), s), axis=axis))
                for c, s in zip(cache, second)
            ]
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            pad = self.batch_size - self.num_data + self.cursor
            first = self._slice(sources, self.cursor, self.num_data)
            if pad > self.num_data:
                reps = [np.concatenate([v] * (pad // self.num_data), axis=0) for _, v in sources]
                rest = self._slice(sources, 0, pad % self.num_data)
                second = [np.concatenate((r, s), axis=0) for r, s in zip(reps, rest)]
            else:
                second = self._slice(sources, 0, pad)
            return [NDArray(np.concatenate((f, s), axis=axis)) for f, s in zip(first, second)]
        end = min(self.cursor + self.batch_size, self.num_data)
        return [NDArray(v) for v in self._slice(sources, self.cursor, end)]

    def getdata(self) -> list[NDArray]:
        return self._batchify(self.data)

    def getlabel(self) -> list[NDArray]:
        return self._batchify(self.label)

    def getpad(self) -> int:
        if self.last_batch_handle == "pad" and self.cursor + self.batch_size > self.num_data:
            return self.cursor + self.batch_size - self.num_data
        if self.last_batch_handle == "roll_over" and -self.batch_size < self.cursor < 0:
            return -self.cursor
        return 0

    def _shuffle_data(self) -> None:
        # MXNet shuffles its index in place with NumPy's global generator and applies it to
        # the current (already shuffled) arrays. The same orders follow here from composing
        # the permutations; batches gather their rows, so a reset copies no data.
        np.random.shuffle(self.idx)
        if self._axis() == 0:
            self._perm = self.idx.copy() if self._perm is None else self._perm[self.idx]
        else:  # along axis 0 whatever the layout, as MXNet does
            self.data = [(k, v[self.idx]) for k, v in self.data]
            self.label = [(k, v[self.idx]) for k, v in self.label]


# --------------------------------------------------------------------------- file iterators


class _FileIter(DataIter):
    """Common part of the iterators that MXNet implements in C++ (``MXDataIter``): one data
    and one label array per batch, ``provide_data``/``provide_label`` from the first
    batch, ``getpad``/``getindex``."""

    def __init__(self, data_name: str, label_name: str) -> None:
        super().__init__()
        self._batch: tuple | None = None
        if not self.iter_next():
            raise DataIterError(
                f"{type(self).__name__}: the data holds no complete batch. Fix: use a smaller "
                "batch_size."
            )
        data, label = self._batch[0], self._batch[1]
        self.provide_data = [DataDesc(data_name, data.shape, np.dtype(data.dtype).type)]
        self.provide_label = [DataDesc(label_name, label.shape, np.dtype(label.dtype).type)]
        self.batch_size = data.shape[0]
        self._first = True  # the batch read above is the first one returned

    def next(self) -> DataBatch:
        if self._first:
            self._first = False
        elif not self.iter_next():
            raise StopIteration
        return DataBatch(
            data=[self.getdata()], label=[self.getlabel()], pad=self.getpad(),
            index=self.getindex(),
        )  # fmt: skip

    def reset(self) -> None:
        self._first = False
        self._before_first()

    def getdata(self) -> NDArray:
        return NDArray(self._batch[0])

    def getlabel(self) -> NDArray:
        return NDArray(self._batch[1])

    def getpad(self) -> int:
        return self._batch[2]

    def getindex(self) -> Any:
        return self._batch[3]

    def iter_next(self) -> bool:
        if getattr(self, "_first", False):
            self._first = False
            return True
        batch = self._next_batch()
        if batch is None:
            return False
        self._batch = batch
        return True

    def _before_first(self) -> None:
        raise NotImplementedError

    def _next_batch(self) -> tuple | None:
        raise NotImplementedError


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _read_mnist_file(path: str, kind: str) -> tuple[np.ndarray, str]:
    """The IDX array at ``path`` (gzipped or raw); when that file does not exist and its
    name is one of the four MNIST files, the copy bundled with tapegrad."""
    from .gluon.data.vision import datasets as ds

    fix = (
        f"pass the path of an MNIST IDX {kind} file (raw or .gz), or one of the names "
        f"{', '.join(_MNIST_FILES)} to use the copy bundled with tapegrad"
    )
    expanded = os.path.expanduser(os.fspath(path))
    if os.path.isfile(expanded):
        raw = ds._read_bytes(expanded, kind, "MNISTIter", fix)
        try:
            return ds.read_idx(raw, kind, expanded), expanded
        except ds.DatasetFileError as e:
            raise ds.DatasetFileError(f"MNISTIter: {e}") from None
    base = os.path.basename(expanded)
    base = base[:-3] if base.endswith(".gz") else base
    if base in _MNIST_FILES:
        ds_train = base.startswith("train")
        mnist = ds.MNIST(train=ds_train)
        if kind == "images":
            arr = np.asarray(mnist._data)[..., 0]
        else:
            arr = mnist._label.astype(np.uint8)
        return arr, os.path.join(ds.BUNDLED_MNIST, base + ".gz")
    raise ds.DatasetFileError(f"MNISTIter: {kind} file '{path}' not found. Fix: {fix}.")


def _part(count: int, num_parts: int, part_index: int) -> tuple[int, int]:
    start = int(float(count) / num_parts * part_index)
    end = int(float(count) / num_parts * (part_index + 1))
    return start, end


def _only_keywords(who: str, args: tuple) -> None:
    if args:
        raise TypeError(
            f"{who} can only accept keyword arguments, got {len(args)} positional. Fix: name "
            f"them, e.g. {who}(batch_size=...)."
        )


class MNISTIter(_FileIter):
    """MNIST in batches, as MXNet's ``mx.io.MNISTIter``: data of shape
    ``(batch_size, 1, 28, 28)`` (``(batch_size, 784)`` with ``flat=True``) scaled by 1/256,
    labels of shape ``(batch_size,)``, both float32. Only complete batches are returned.

    Args (keywords only, as in MXNet):
        image, label: paths of the IDX files (raw or gzipped). When the file does not exist
            and its name is one of the four MNIST files (``train-images-idx3-ubyte``,
            ``t10k-labels-idx1-ubyte``, ...), the copy bundled with tapegrad is used, so
            scripts that expected to download MNIST first run as they are.
        batch_size: 128 by default.
        shuffle: shuffle once, when the iterator is created (True by default); the order is
            fixed by ``seed``. tapegrad's shuffle is its own (MXNet's C++ generator is not
            reproduced), so the batches are the same samples in another order than MXNet's.
        flat: flatten each image to 784 values.
        seed: seed of the shuffle.
        silent: do not log what was loaded.
        num_parts, part_index: read only part ``part_index`` of ``num_parts`` equal parts.
        data_name, label_name: names in ``provide_data`` / ``provide_label``.

    Other MXNet arguments (``prefetch_buffer``, ``ctx``, ``dtype``, ``data_shape``,
    ``input_shape``, ...) are accepted and ignored, as MXNet ignores unknown ones.

    >>> it = MNISTIter(image='t10k-images-idx3-ubyte', label='t10k-labels-idx1-ubyte',
    ...                batch_size=100, shuffle=False, flat=True)
    >>> b = it.next(); b.data[0].shape, b.label[0].shape, int(b.label[0].asnumpy()[0])
    ((100, 784), (100,), 7)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _only_keywords("MNISTIter", args)
        image = kwargs.get("image", "./train-images-idx3-ubyte")
        label = kwargs.get("label", "./train-labels-idx1-ubyte")
        self._bs = _batch_size("MNISTIter", kwargs.get("batch_size", 128))
        shuffle = bool(int(kwargs.get("shuffle", True)))
        flat = bool(int(kwargs.get("flat", False)))
        seed = int(kwargs.get("seed", 0))
        num_parts = int(kwargs.get("num_parts", 1))
        part_index = int(kwargs.get("part_index", 0))
        if not 0 <= part_index < num_parts:
            raise DataIterError(
                f"MNISTIter: part_index={part_index} must be in [0, num_parts={num_parts}). "
                "Fix: pass 0 <= part_index < num_parts."
            )
        images, img_path = _read_mnist_file(image, "images")
        labels, lab_path = _read_mnist_file(label, "labels")
        start, end = _part(images.shape[0], num_parts, part_index)
        lstart, lend = _part(labels.shape[0], num_parts, part_index)
        images, labels = images[start:end], labels[lstart:lend]
        if images.shape[0] != labels.shape[0]:
            raise DataIterError(
                f"MNISTIter: {img_path} holds {images.shape[0]} images but {lab_path} holds "
                f"{labels.shape[0]} labels. Fix: pass the images and labels of one split."
            )
        img = images.astype(np.float32) * np.float32(1.0 / 256.0)
        lab = labels.astype(np.float32)
        if shuffle:
            order = np.random.RandomState(seed).permutation(img.shape[0])
            img, lab = img[order], lab[order]
        n, rows, cols = img.shape
        self._img = img.reshape(n, rows * cols) if flat else img.reshape(n, 1, rows, cols)
        self._lab = lab
        self._loc = 0
        if not bool(int(kwargs.get("silent", False))):
            shape = (self._bs, rows * cols) if flat else (self._bs, 1, rows, cols)
            logging.info("MNISTIter: load %d images, shuffle=%d, shape=%s", n, int(shuffle), shape)
        super().__init__(kwargs.get("data_name", "data"), kwargs.get("label_name", "softmax_label"))

    def _before_first(self) -> None:
        self._loc = 0

    def _next_batch(self) -> tuple | None:
        lo, hi = self._loc, self._loc + self._bs
        if hi > self._img.shape[0]:
            return None
        self._loc = hi
        return self._img[lo:hi], self._lab[lo:hi], 0, None


_CSV_DTYPES = {"float32": np.float32, "int32": np.int32, "int64": np.int64}


def _read_csv(who: str, path: str, dtype: Any, shape: tuple, what: str) -> np.ndarray:
    """The rows of a CSV file (or of every file in a directory), each reshaped to
    ``shape``."""
    path = os.path.expanduser(os.fspath(path))
    files = sorted(glob.glob(os.path.join(path, "*"))) if os.path.isdir(path) else [path]
    rows = []
    size = int(np.prod(shape)) if shape else 1
    for f in files:
        try:
            arr = np.loadtxt(f, delimiter=",", dtype=dtype, ndmin=2)
        except OSError as e:
            raise DataIterError(
                f"{who}: cannot read {what} '{f}' ({e.strerror or e}). Fix: check the path."
            ) from None
        except ValueError as e:
            raise DataIterError(
                f"{who}: {what} '{f}' is not a CSV file of numbers ({e}). Fix: write one "
                "sample per line, values separated by commas."
            ) from None
        if arr.size and arr.shape[1] != size:
            raise DataIterError(
                f"{who}: the rows of {what} '{f}' have {arr.shape[1]} values, but the shape "
                f"{tuple(shape)} of one sample has {size}. Fix: pass the {what} shape that "
                "matches the file."
            )
        rows.append(arr.reshape((arr.shape[0], *shape)) if arr.size else arr)
    rows = [r for r in rows if r.size]
    if not rows:
        raise DataIterError(f"{who}: {what} '{path}' holds no rows. Fix: check the path.")
    return np.concatenate(rows, axis=0)


class CSVIter(_FileIter):
    """Batches of the rows of a CSV file, as MXNet's ``mx.io.CSVIter``.

    Args (keywords only, as in MXNet):
        data_csv: the CSV file (or a directory: all its files, in name order).
        data_shape: the shape each row is reshaped to.
        label_csv: the labels' CSV file; ``'NULL'`` (default) gives labels 0.
        label_shape: the shape of one label, ``(1,)`` by default (labels then have shape
            ``(batch_size,)``).
        batch_size: samples per batch.
        round_batch: True (default): the last batch is completed with rows from the
            beginning, and the next epoch (after ``reset()``) continues after them; False:
            the last batch keeps rows of the previous batch in its padded places, and the
            next epoch starts from the first row. ``getpad()`` says how many rows are padding.
        dtype: ``'float32'`` (default), ``'int32'`` or ``'int64'``.
        data_name, label_name: names in ``provide_data`` / ``provide_label``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _only_keywords("CSVIter", args)
        who = "CSVIter"
        for req in ("data_csv", "data_shape", "batch_size"):
            if req not in kwargs:
                raise DataIterError(f"{who}: argument '{req}' is required. Fix: pass {req}=...")
        dtype = str(kwargs.get("dtype", "float32"))
        if dtype not in _CSV_DTYPES:
            raise DataIterError(
                f"{who}: dtype={dtype!r} is not supported. Fix: use 'float32', 'int32' or 'int64'."
            )
        dt = _CSV_DTYPES[dtype]
        self._bs = _batch_size(who, kwargs["batch_size"])
        data_shape = _shape_arg(who, "data_shape", kwargs["data_shape"])
        label_shape = _shape_arg(who, "label_shape", kwargs.get("label_shape", (1,)))
        self._data = _read_csv(who, kwargs["data_csv"], dt, data_shape, "data_csv")
        label_csv = kwargs.get("label_csv", "NULL")
        if label_csv in (None, "NULL"):
            self._label = np.zeros((self._data.shape[0], 1), dtype=dt)
        else:
            self._label = _read_csv(who, label_csv, dt, label_shape, "label_csv")
            if self._label.shape[0] < self._data.shape[0]:
                raise DataIterError(
                    f"{who}: label_csv has {self._label.shape[0]} rows but data_csv has "
                    f"{self._data.shape[0]}. Fix: give one label row per data row."
                )
        self._round = bool(int(kwargs.get("round_batch", True)))
        self._pos = 0  # the next row to read
        self._overflow = 0  # rows read from the start to complete the last batch
        n = self._data.shape[0]
        if self._round and n < self._bs:
            raise DataIterError(
                f"{who}: {n} rows are fewer than batch_size={self._bs}, which round_batch "
                "needs. Fix: use a smaller batch_size or round_batch=False."
            )
        self._buf_data = np.zeros((self._bs, *self._data.shape[1:]), dtype=dt)
        self._buf_label = np.zeros((self._bs, *self._label.shape[1:]), dtype=dt)
        self._buf_index = np.zeros(self._bs, dtype=np.uint64)
        super().__init__(kwargs.get("data_name", "data"), kwargs.get("label_name", "softmax_label"))

    def _before_first(self) -> None:
        if not self._round or self._overflow == 0:
            self._pos = 0
        else:
            self._overflow = 0

    def _copy_row(self, top: int) -> None:
        self._buf_data[top] = self._data[self._pos]
        self._buf_label[top] = self._label[self._pos]
        self._buf_index[top] = self._pos
        self._pos += 1

    def _next_batch(self) -> tuple | None:
        if self._overflow:
            return None
        n = self._data.shape[0]
        top = 0
        while self._pos < n and top < self._bs:
            self._copy_row(top)
            top += 1
        if top == 0:
            return None
        pad = 0
        if top < self._bs:
            if self._round:
                self._pos = 0
                while top < self._bs:
                    self._copy_row(top)
                    top += 1
                    self._overflow += 1
                pad = self._overflow
            else:  # the rest of the buffer keeps the previous batch's rows, as in MXNet
                pad = self._bs - top
        label = self._buf_label
        if label.ndim == 2 and label.shape[1] == 1:  # MXNet returns (batch_size,) labels
            label = label[:, 0]
        return self._buf_data.copy(), label.copy(), pad, self._buf_index.copy()


def _shape_arg(who: str, name: str, v: Any) -> tuple:
    if isinstance(v, numbers.Integral):
        v = (int(v),)
    try:
        shape = tuple(int(d) for d in v)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise DataIterError(
            f"{who}: {name}={v!r} is not a shape of positive sizes. Fix: pass e.g. {name}=(3,)."
        )
    return shape
