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

__all__ = [
    "Sampler",
    "SequentialSampler",
    "RandomSampler",
    "BatchSampler",
    "IntervalSampler",
    "SplitSampler",
]


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


def _check_index(who: str, name: str, value: Any, bound: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or not 0 <= value < bound:
        raise ValueError(
            f"{who}: {name} must be an int in [0, {bound}), got {value!r}. Fix: pass the "
            "rank of this process (tapegrad.distributed.rank(), or kvstore.rank)."
        )
    return int(value)


class SplitSampler(Sampler):
    """The shard of part ``part_index`` of ``num_parts`` (a rank's share of the data set, in
    data-parallel training), drawn anew each epoch.

    Each epoch, the indices ``0 .. length-1`` are shuffled with a generator seeded by
    ``(seed, epoch)``, so every rank draws the same permutation, and part ``k`` takes the
    ``k``-th of ``num_parts`` consecutive pieces of it. The parts cover the data set once
    per epoch, without overlap; their sizes differ by at most one (the first
    ``length % num_parts`` parts have one more). With ``DataLoader(..., last_batch='keep')``
    every rank then gets the same number of batches, except when ``length % (num_parts *
    batch_size)`` is between 1 and ``num_parts - 1`` (a distributed Trainer reports it).

    The epoch advances at every iteration (``iter()``), or is set by :meth:`set_epoch`.
    MXNet's examples defined a ``SplitSampler(length, num_parts, part_index)`` of their own
    that kept the same part every epoch and dropped the remainder; this one has the same
    arguments.

    Args:
        length: the data set's length.
        num_parts: the number of parts (ranks).
        part_index: which part (this rank).
        shuffle: shuffle each epoch (False: part ``k`` is a fixed range of indices).
        seed: the shuffle's seed; it must be the same on every rank.

    >>> import tapegrad as mx
    >>> parts = [mx.gluon.data.SplitSampler(10, 3, k) for k in range(3)]
    >>> [len(p) for p in parts]
    [4, 3, 3]
    >>> sorted(i for p in parts for i in p)
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """

    def __init__(
        self,
        length: int,
        num_parts: int = 1,
        part_index: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        who = "SplitSampler"
        self._length = _check_count(who, "length", length)
        if isinstance(num_parts, bool) or not isinstance(num_parts, (int, np.integer)):
            num_parts = -1
        if num_parts < 1:
            raise ValueError(
                f"{who}: num_parts must be a positive int, got {num_parts!r}. Fix: pass the "
                "number of processes (tapegrad.distributed.size(), or kvstore.num_workers)."
            )
        self._parts = int(num_parts)
        self._index = _check_index(who, "part_index", part_index, self._parts)
        self._seed = _check_count(who, "seed", seed)
        self._shuffle = bool(shuffle)
        base, extra = divmod(self._length, self._parts)
        self._start = self._index * base + min(self._index, extra)
        self._size = base + (1 if self._index < extra else 0)
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` at the next iteration (then ``epoch + 1``...)."""
        self._epoch = _check_count("SplitSampler.set_epoch", "epoch", epoch)

    def __iter__(self) -> Iterator[int]:
        epoch, self._epoch = self._epoch, self._epoch + 1
        if not self._shuffle:
            return iter(range(self._start, self._start + self._size))
        perm = np.random.default_rng([self._seed, epoch]).permutation(self._length)
        return iter(perm[self._start : self._start + self._size].tolist())

    def __len__(self) -> int:
        return self._size


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
