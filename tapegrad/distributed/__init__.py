"""Data-parallel training over processes and machines, on MPI (``pip install
'tapegrad[mpi]'``; start the processes with ``tapegrad run -n N script.py``).

Horovod's API for MXNet, so that a Horovod script ports by changing one import
(``import tapegrad.distributed as hvd``): :func:`init`, :func:`rank`, :func:`size`,
:func:`local_rank`, :func:`allreduce`, :func:`allgather`, :func:`broadcast`,
:func:`broadcast_parameters`, :class:`DistributedTrainer` (gradients averaged over the
ranks). MXNet's own way works too: ``gluon.Trainer(..., kvstore='dist_sync')`` sums them, as
MXNet 1.9 did. Importing this package does not import mpi4py; without it, every call raises
:class:`DistributedUnavailableError` saying what to install. See docs/distributed.md.

>>> import tapegrad.distributed as hvd
>>> hvd.is_initialized() in (True, False)
True
"""

from __future__ import annotations

import warnings
from typing import Any

from ..gluon.trainer import Trainer
from . import comm, kvstore
from .collectives import (
    Average,
    Max,
    Min,
    Product,
    Sum,
    allgather,
    allreduce,
    allreduce_,
    barrier,
    broadcast,
    broadcast_,
    broadcast_parameters,
)
from .comm import (
    CollectiveMismatchError,
    DistributedError,
    DistributedTimeoutError,
    DistributedUnavailableError,
    RemoteError,
    init,
    is_initialized,
    is_writer,
    local_rank,
    local_size,
    rank,
    set_timeout,
    size,
)

__all__ = [
    "init",
    "is_initialized",
    "shutdown",
    "rank",
    "size",
    "local_rank",
    "local_size",
    "cross_rank",
    "cross_size",
    "is_writer",
    "set_timeout",
    "allreduce",
    "allreduce_",
    "allgather",
    "broadcast",
    "broadcast_",
    "broadcast_parameters",
    "barrier",
    "Average",
    "Sum",
    "Min",
    "Max",
    "Product",
    "DistributedTrainer",
    "DistributedOptimizer",
    "kvstore",
    "DistributedError",
    "DistributedUnavailableError",
    "DistributedTimeoutError",
    "CollectiveMismatchError",
    "RemoteError",
    "mpi_enabled",
    "mpi_built",
]


def shutdown() -> None:
    """Accepted for Horovod scripts: MPI is finalized when the process exits."""


def cross_size() -> int:
    """The number of machines (Horovod's ``cross_size``), assuming as many processes on each
    machine as on this one."""
    return max(1, size() // local_size())


def cross_rank() -> int:
    """This machine's index (Horovod's ``cross_rank``), under the same assumption."""
    return rank() // local_size()


def mpi_enabled() -> bool:
    """True when mpi4py can be imported (Horovod's name)."""
    try:
        comm._import_mpi()
    except DistributedUnavailableError:
        return False
    return True


mpi_built = mpi_enabled


def _check_options(who: str, compression: Any, factor: Any, process_set: Any) -> None:
    name = getattr(compression, "__name__", None) or type(compression).__name__
    if compression is not None and name not in ("NoneCompressor", "none", "Compression"):
        raise ValueError(
            f"{who}: gradient compression ({compression!r}) is not supported; gradients are "
            "sent exactly. Fix: drop compression=."
        )
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
        raise ValueError(
            f"{who}: gradient_predivide_factor must be a positive number, got {factor!r}. "
            "Fix: drop it (it only splits the averaging before and after the sum)."
        )
    if process_set is not None and getattr(process_set, "process_set_id", 0) != 0:
        raise ValueError(f"{who}: process sets are not supported. Fix: drop process_set=.")


class DistributedTrainer(Trainer):
    """Horovod's ``DistributedTrainer``: a ``gluon.Trainer`` whose gradients are **averaged**
    over the ranks before every update (``kvstore='horovod'``).

    ``step(batch_size)`` with each rank's own batch size then equals one process's step on
    the ranks' batches put together. Parameters are broadcast from rank 0 when the trainer
    is created (deferred ones after their initialisation). ``compression``,
    ``gradient_predivide_factor``, ``prefix`` and ``num_groups`` are accepted for Horovod
    scripts (gradients are sent exactly; the fusion of small gradients is automatic).
    """

    def __init__(
        self,
        params: Any,
        optimizer: Any,
        optimizer_params: dict | None = None,
        compression: Any = None,
        gradient_predivide_factor: float = 1.0,
        prefix: str | None = None,
        num_groups: int = 0,
        process_set: Any = None,
        check_finite: bool = False,
    ) -> None:
        _check_options("DistributedTrainer", compression, gradient_predivide_factor, process_set)
        if isinstance(optimizer, DistributedOptimizer):
            warnings.warn(
                "DistributedTrainer does not take a DistributedOptimizer; it was unwrapped.",
                stacklevel=2,
            )
            optimizer = optimizer.optimizer
        super().__init__(
            params,
            optimizer,
            optimizer_params,
            kvstore=kvstore.KVStore("horovod"),
            check_finite=check_finite,
        )


class DistributedOptimizer:
    """Horovod's ``DistributedOptimizer``: ``gluon.Trainer(params, DistributedOptimizer(opt))``
    averages gradients over the ranks, as :class:`DistributedTrainer` does."""

    _tapegrad_average = True

    def __init__(
        self,
        optimizer: Any,
        gradient_predivide_factor: float = 1.0,
        num_groups: int = 0,
        process_set: Any = None,
    ) -> None:
        _check_options("DistributedOptimizer", None, gradient_predivide_factor, process_set)
        self.optimizer = optimizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["optimizer"], name)
