"""Samplers: iterables of sample indices (``gluon.data.sampler``), as MXNet 1.9.

:class:`RandomSampler` draws from tapegrad's global generator, so ``mx.random.seed(n)``
makes the order reproducible.

>>> import tapegrad as mx
>>> list(mx.gluon.data.BatchSampler(mx.gluon.data.SequentialSampler(5), 2, 'keep'))
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "BatchSampler", "IntervalSampler"]


def _check_count(who: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(
            f"{who}: {name} must be a non-negative int, got {value!r}. Fix: pass e.g. "
            f"{name}=len(dataset)."
        )
    return int(value)


class Sampler:
    """Base class: an iterable of indices with a length."""

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class SequentialSampler(Sampler):
    """``start, start+1, ..., start+length-1``.

    >>> import tapegrad as mx
    >>> list(mx.gluon.data.SequentialSampler(3, start=2))
    [2, 3, 4]
    """

    def __init__(self, length: int, start: int = 0) -> None:
        self._length = _check_count("SequentialSampler", "length", length)
        self._start = _check_count("SequentialSampler", "start", start)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._start, self._start + self._length))

    def __len__(self) -> int:
        return self._length


def _generator() -> np.random.Generator:
    from ... import random

    return random.generator()


class RandomSampler(Sampler):
    """A random permutation of ``0 .. length-1``, new at each iteration, drawn from
    tapegrad's global generator (``mx.random.seed``).

    >>> import tapegrad as mx
    >>> mx.random.seed(0); a = list(mx.gluon.data.RandomSampler(5))
    >>> mx.random.seed(0); b = list(mx.gluon.data.RandomSampler(5))
    >>> a == b, sorted(a)
    (True, [0, 1, 2, 3, 4])
    """

    def __init__(self, length: int) -> None:
        self._length = _check_count("RandomSampler", "length", length)

    def __iter__(self) -> Iterator[int]:
        indices = np.arange(self._length)
        _generator().shuffle(indices)
        return iter(indices.tolist())

    def __len__(self) -> int:
        return self._length


class IntervalSampler(Sampler):
    """``0, k, 2k, ..., 1, 1+k, ...``: every ``interval``-th index, then the next offset
    (``rollover=False`` stops after the first pass).

    >>> import tapegrad as mx
    >>> list(mx.gluon.data.IntervalSampler(5, 2))
    [0, 2, 4, 1, 3]
    """

    def __init__(self, length: int, interval: int, rollover: bool = True) -> None:
        length = _check_count("IntervalSampler", "length", length)
        if not isinstance(interval, (int, np.integer)) or not 0 < interval <= length:
            raise ValueError(f"IntervalSampler: interval {interval} must be in (0, {length}]")
        self._length = length
        self._interval = interval
        self._rollover = rollover

    def __iter__(self) -> Iterator[int]:
        for i in range(self._interval if self._rollover else 1):
            yield from range(i, self._length, self._interval)

    def __len__(self) -> int:
        return len(list(iter(self)))


class BatchSampler(Sampler):
    """Groups a sampler's indices into batches of ``batch_size``.

    Args:
        sampler: the index sampler.
        batch_size: samples per batch.
        last_batch: what to do with a last, incomplete batch: ``'keep'`` it (smaller),
            ``'discard'`` it, or ``'rollover'`` its samples into the first batch of the next
            iteration.

    >>> import tapegrad as mx
    >>> bs = mx.gluon.data.BatchSampler(mx.gluon.data.SequentialSampler(5), 2, 'rollover')
    >>> list(bs), list(bs)
    ([[0, 1], [2, 3]], [[4, 0], [1, 2], [3, 4]])
    """

    def __init__(self, sampler: Any, batch_size: int, last_batch: str = "keep") -> None:
        if last_batch not in ("keep", "discard", "rollover"):
            raise ValueError(
                f"BatchSampler: last_batch must be one of 'keep', 'discard', or "
                f"'rollover', but got {last_batch!r}"
            )
        if not hasattr(sampler, "__iter__"):
            raise TypeError(
                f"BatchSampler: sampler must be an iterable of indices, got "
                f"{type(sampler).__name__}. Fix: pass e.g. SequentialSampler(len(dataset))."
            )
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"BatchSampler: batch_size must be a positive int, got {batch_size!r}")
        self._sampler = sampler
        self._batch_size = int(batch_size)
        self._last_batch = last_batch
        self._prev: list = []

    def __iter__(self) -> Iterator[list]:
        batch, self._prev = self._prev, []
        for i in self._sampler:
            batch.append(i)
            if len(batch) == self._batch_size:
                yield batch
                batch = []
        if batch:
            if self._last_batch == "keep":
                yield batch
            elif self._last_batch == "rollover":
                self._prev = batch

    def __len__(self) -> int:
        if self._last_batch == "keep":
            return (len(self._sampler) + self._batch_size - 1) // self._batch_size
        if self._last_batch == "discard":
            return len(self._sampler) // self._batch_size
        return (len(self._prev) + len(self._sampler)) // self._batch_size
