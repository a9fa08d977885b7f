"""MXNet's KVStore interface (``mx.kv.create``) for data-parallel training over MPI.

``create('dist_sync')`` (also ``'dist'``, ``'dist_sync_device'``, ``'dist_device_sync'``)
gives a store whose ``pushpull`` sums over the processes, as MXNet 1.9's parameter servers
did; a ``gluon.Trainer`` given it (or the name) sums gradients across workers before each
update, rescaled by ``rescale_grad / batch_size`` exactly as MXNet applies it.
``create('horovod')`` is the store of :class:`~tapegrad.distributed.DistributedTrainer`:
the Trainer averages gradients instead, as Horovod does. ``'local'`` / ``'device'`` are the
single-process stores (rank 0 of 1; nothing is exchanged).

Unlike MXNet's parameter servers, every rank applies the optimizer itself to the same summed
gradients (there are no server processes), so ``update_on_kvstore`` changes nothing and the
Trainer's states can be saved and loaded as in one process.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import ndarray as nd
from . import comm
from .reducer import GradientReducer

__all__ = ["KVStore", "create", "SUM_TYPES", "AVERAGE_TYPES", "LOCAL_TYPES"]

SUM_TYPES = ("dist", "dist_sync", "dist_sync_device", "dist_device_sync")
AVERAGE_TYPES = ("horovod",)
LOCAL_TYPES = ("local", "device", "nccl", "local_allreduce_cpu", "local_allreduce_device")
_ASYNC = ("dist_async", "dist_async_device", "dist_device_async")


class KVStore:
    """A key-value store: ``type``, ``rank``, ``num_workers``, ``init``/``push``/``pull``,
    ``pushpull``, ``broadcast``.

    >>> import tapegrad as mx
    >>> kv = mx.kv.create("local")
    >>> kv.init(3, mx.nd.ones((2, 3)))
    >>> kv.push(3, [mx.nd.ones((2, 3)), mx.nd.ones((2, 3))])  # summed
    >>> out = mx.nd.zeros((2, 3))
    >>> kv.pull(3, out=out)
    >>> out.asnumpy().tolist()
    [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]

    Args:
        name: ``'dist_sync'`` (and its aliases), ``'horovod'``, or ``'local'``/``'device'``.
    """

    _tapegrad_kvstore = True

    def __init__(self, name: str = "local") -> None:
        if not isinstance(name, str):
            raise TypeError(
                f"kvstore.create: name must be a string, got {type(name).__name__}. Fix: "
                "create('dist_sync')."
            )
        kind = name.lower()
        if kind in _ASYNC:
            raise ValueError(
                f"kvstore.create: {name!r} (asynchronous updates) is not supported: tapegrad "
                "has no parameter servers. Fix: use 'dist_sync' (gradients summed over the "
                "workers at every step) or 'horovod' (averaged)."
            )
        if kind not in SUM_TYPES + AVERAGE_TYPES + LOCAL_TYPES:
            raise ValueError(
                f"kvstore.create: unknown kvstore type {name!r}. Fix: use 'local', 'device', "
                "'dist_sync', 'dist_sync_device', 'dist_device_sync' or 'horovod'."
            )
        self._type = kind
        self.distributed = kind not in LOCAL_TYPES
        self.average = kind in AVERAGE_TYPES
        self.reducer: GradientReducer | None = None
        self._store: dict = {}
        self._updater: Any = None
        if self.distributed:
            comm.init()
            self.reducer = GradientReducer()

    def __repr__(self) -> str:
        return f"KVStore(type={self._type!r}, rank={self.rank}, num_workers={self.num_workers})"

    @property
    def type(self) -> str:
        """The store's type, e.g. ``'dist_sync'``."""
        return self._type

    @property
    def rank(self) -> int:
        """This worker's rank, ``0 .. num_workers-1``."""
        return comm.rank() if self.distributed else 0

    @property
    def num_workers(self) -> int:
        """The number of workers (processes)."""
        return comm.size() if self.distributed else 1

    @property
    def local_rank(self) -> int:
        """This worker's rank among the workers of its machine."""
        return comm.local_rank() if self.distributed else 0

    @staticmethod
    def is_capable(capability: str) -> bool:
        """No server-side optimizer: every rank updates its own copy."""
        return False

    def set_gradient_compression(self, compression_params: dict) -> None:
        """Not supported: gradients are sent exactly (a warning says so)."""
        if compression_params:
            warnings.warn(
                f"kvstore {self._type!r}: gradient compression {compression_params!r} is not "
                "supported; gradients are sent uncompressed (exact).",
                stacklevel=2,
            )

    def _values(self, value: Any) -> list:
        vals = value if isinstance(value, (list, tuple)) else [value]
        for v in vals:
            if not isinstance(v, nd.NDArray):
                raise TypeError(
                    f"KVStore.pushpull: values must be NDArrays, got {type(v).__name__}. Fix: "
                    "pass mx.nd arrays."
                )
        return list(vals)

    def pushpull(self, key: Any, value: Any, out: Any = None, priority: int = 0) -> None:
        """Sum ``value`` (an NDArray, or a list of them: summed too) over the workers into
        ``out`` (default: ``value`` itself, in place)."""
        vals = self._values(value)
        outs = vals if out is None else self._values(out)
        total = np.asarray(vals[0]).copy()
        for v in vals[1:]:
            total += np.asarray(v)
        if self.distributed:
            layout = comm.layout_hash(str(key), total.shape, total.dtype.str)
            comm.agree(10, layout)
            total = comm.allreduce_array(total, "sum", "KVStore.pushpull")
        for o in outs:
            o[:] = total

    def broadcast(self, key: Any, value: Any, out: Any, priority: int = 0) -> None:
        """Rank 0's ``value`` into ``out`` (an NDArray or a list of them) on every worker."""
        vals = self._values(value)
        outs = self._values(out)
        data = np.asarray(vals[0])
        if self.distributed:
            layout = comm.layout_hash(str(key), data.shape, data.dtype.str)
            comm.agree(11, layout)
            data = comm.bcast_array(data, 0, "KVStore.broadcast")
        for o in outs:
            o[:] = data

    # ------------------------------------------------------------------ init / push / pull
    def _pairs(self, what: str, key: Any, value: Any) -> list:
        """``(key, [arrays])`` pairs: one key and a value (or a list of per-device values), or
        a list of keys and a list of values."""
        if isinstance(key, (list, tuple)):
            if not isinstance(value, (list, tuple)) or len(value) != len(key):
                raise ValueError(
                    f"KVStore.{what}: {len(key)} keys need as many values, got "
                    f"{len(value) if isinstance(value, (list, tuple)) else 1}. Fix: pass one "
                    "value (or one list of per-device values) per key."
                )
            return [(k, self._values(v)) for k, v in zip(key, value)]
        return [(key, self._values(value))]

    def _stored(self, what: str, key: Any) -> nd.NDArray:
        if key not in self._store:
            raise KeyError(
                f"KVStore.{what}: key {key!r} was never initialised. Fix: call "
                f"kv.init({key!r}, value) first."
            )
        return self._store[key]

    def init(self, key: Any, value: Any) -> None:
        """Store a copy of ``value`` under ``key`` (lists of keys and values allowed); with a
        distributed store every worker stores rank 0's value, as MXNet's servers did."""
        pairs = self._pairs("init", key, value)
        for k, _ in pairs:
            if k in self._store:
                raise ValueError(
                    f"KVStore.init: key {k!r} is already initialised. Fix: push new values "
                    "to it, or use another key."
                )
        for k, vals in pairs:
            data = np.array(np.asarray(vals[0]))
            if self.distributed:
                comm.agree(15, comm.layout_hash(str(k), data.shape, data.dtype.str))
                data = comm.bcast_array(data, 0, "KVStore.init")
            self._store[k] = nd.array(data, dtype=data.dtype)

    def push(self, key: Any, value: Any, priority: int = 0) -> None:
        """Sum the pushed value (a list of per-device values is summed first; a distributed
        store sums over the workers too) into ``key``: with an optimizer or updater set, the
        updater applies it to the stored value, otherwise the sum replaces it."""
        pairs = self._pairs("push", key, value)
        for k, vals in pairs:
            stored = self._stored("push", k)
            for v in vals:
                if tuple(v.shape) != tuple(stored.shape):
                    raise ValueError(
                        f"KVStore.push: key {k!r} holds shape {tuple(stored.shape)}, got a value "
                        f"of shape {tuple(v.shape)}. Fix: push arrays of the stored shape."
                    )
        for k, vals in pairs:
            stored = self._store[k]
            total = np.array(np.asarray(vals[0]), dtype=stored.dtype)
            for v in vals[1:]:
                total += np.asarray(v)
            if self.distributed:
                comm.agree(16, comm.layout_hash(str(k), total.shape, total.dtype.str))
                total = comm.allreduce_array(total, "sum", "KVStore.push")
            merged = nd.array(total, dtype=total.dtype)
            if self._updater is not None:
                self._updater(k, merged, stored)
            else:
                stored[:] = merged

    def pull(
        self, key: Any, out: Any = None, priority: int = 0, ignore_sparse: bool = True
    ) -> None:
        """Copy the value stored under ``key`` into ``out`` (an NDArray, or a list of them:
        one per device; lists of keys take lists of outs)."""
        if out is None:
            raise ValueError("KVStore.pull: out is required. Fix: kv.pull(key, out=array).")
        for k, outs in self._pairs("pull", key, out):
            stored = self._stored("pull", k)
            for o in outs:
                o[:] = stored

    row_sparse_pull = pull

    def set_optimizer(self, optimizer: Any) -> None:
        """Apply ``optimizer`` to the stored values on every push (MXNet's update on the
        kvstore); with a distributed store every rank updates its own copy identically."""
        from ..optimizer import get_updater

        self._updater = get_updater(optimizer)

    def _set_updater(self, updater: Any) -> None:
        """``updater(key, pushed, stored)`` runs on every push instead of replacing."""
        self._updater = updater

    def barrier(self) -> None:
        """Wait until every worker has arrived here."""
        if self.distributed:
            comm.agree(8, 0.0)

    _barrier = barrier

    def save_optimizer_states(self, fname: str, dump_optimizer: bool = False) -> None:
        """Not here: use ``Trainer.save_states`` (every rank holds the states)."""
        raise NotImplementedError(
            "KVStore.save_optimizer_states: the optimizer runs in the Trainer on every rank. "
            "Fix: call trainer.save_states(fname) (rank 0 writes the file)."
        )

    load_optimizer_states = save_optimizer_states


def create(name: str = "local") -> KVStore:
    """A new :class:`KVStore` (``mx.kv.create``); ``'dist_*'`` and ``'horovod'`` start MPI."""
    return KVStore(name)
