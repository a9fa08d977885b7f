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
    """A key-value store: ``type``, ``rank``, ``num_workers``, ``pushpull``, ``broadcast``.

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

    def set_optimizer(self, optimizer: Any) -> None:
        """Accepted for MXNet scripts: each rank applies the optimizer itself."""

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

    def push(self, key: Any, value: Any, priority: int = 0) -> None:
        """Not available: tapegrad has no parameter servers to push to."""
        raise NotImplementedError(
            "KVStore.push/pull: tapegrad has no parameter servers. Fix: use pushpull(key, "
            "value, out) (sums over the workers) or a gluon.Trainer with this kvstore."
        )

    pull = push
    init = push

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
