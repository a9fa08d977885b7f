"""The MPI side of :mod:`tapegrad.distributed`: start-up, bounded waits, agreement between
ranks, and collectives on NumPy arrays.

Every collective that tapegrad makes is two MPI calls on its own communicator (a duplicate of
``COMM_WORLD``, so a script's own MPI calls cannot be confused with ours):

1. a fixed-size *header*, gathered from every rank: which operation the rank is in, a hash of
   the layout of its data (shapes, dtypes, root...), and a few numbers (a step counter, a
   batch size, a local error code). Because every header has the same size, ranks that are
   in different operations still match here, and all of them raise the same clear error
   (:class:`CollectiveMismatchError`) instead of exchanging garbage or hanging;
2. the *payload*, only when the headers agree.

Waits are bounded: a rank that stopped (an exception it caught, a different number of steps)
makes the others raise :class:`DistributedTimeoutError` after ``timeout`` seconds (default
600, ``TAPEGRAD_DIST_TIMEOUT`` or ``init(timeout=...)``). An exception that no one catches makes
the rank print its traceback and abort every rank (``MPI_Abort``), so a run never hangs.
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base import TapegradError

__all__ = [
    "DistributedError",
    "DistributedUnavailableError",
    "DistributedTimeoutError",
    "CollectiveMismatchError",
    "RemoteError",
    "init",
    "is_initialized",
    "rank",
    "size",
    "local_rank",
    "local_size",
    "timeout",
    "set_timeout",
]

INSTALL_HINT = (
    "Fix: pip install 'tapegrad[mpi]' (mpi4py and the MPICH wheel; it needs no system "
    "packages), or pip install mpi4py with an MPI library of your own (Open MPI, MPICH), "
    "then start the processes with `tapegrad run -n N script.py`."
)
DEFAULT_TIMEOUT = 600.0
_TIMEOUT_ENV = "TAPEGRAD_DIST_TIMEOUT"


class DistributedError(TapegradError, RuntimeError):
    """A distributed operation failed (the message names the operation, the ranks and the
    fix)."""


class DistributedUnavailableError(DistributedError, ImportError):
    """mpi4py (or the MPI library under it) is not installed: the message says what to
    install."""


class DistributedTimeoutError(DistributedError, TimeoutError):
    """The other ranks did not arrive at a collective operation within the timeout."""


class CollectiveMismatchError(DistributedError):
    """The ranks called different collective operations, or the same one on different data
    (shapes, dtypes, roots, step counts)."""


class RemoteError(DistributedError):
    """Another rank failed in an operation that all ranks agree on (a Trainer step); this
    rank did nothing either."""


class _State:
    def __init__(self) -> None:
        self.mpi: Any = None
        self.comm: Any = None
        self.rank = 0
        self.size = 1
        self.local_rank = 0
        self.local_size = 1
        self.timeout: float | None = None
        self.prev_hook: Any = None


_S = _State()


def _import_mpi() -> Any:
    if _S.mpi is not None:
        return _S.mpi
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise DistributedUnavailableError(
            f"tapegrad.distributed needs mpi4py and an MPI library, which are not installed "
            f"({e}). {INSTALL_HINT}"
        ) from e
    except Exception as e:  # noqa: BLE001  (mpi4py present, its MPI library broken)
        raise DistributedUnavailableError(
            f"tapegrad.distributed: mpi4py is installed but could not start MPI ({e!r}). "
            f"{INSTALL_HINT}"
        ) from e
    _S.mpi = MPI
    return MPI


def _env_timeout() -> float:
    raw = os.environ.get(_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise DistributedError(
            f"tapegrad.distributed: {_TIMEOUT_ENV}={raw!r} is not a positive number of "
            f"seconds. Fix: unset it (default {DEFAULT_TIMEOUT:g} s) or set e.g. "
            f"{_TIMEOUT_ENV}=120."
        )
    return value


def _check_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(
            f"tapegrad.distributed.init: timeout must be a positive number of seconds, got "
            f"{value!r}. Fix: pass e.g. timeout=120, or None for the default "
            f"({_TIMEOUT_ENV} or {DEFAULT_TIMEOUT:g} s)."
        )
    return float(value)


def init(timeout: float | None = None) -> None:
    """Start MPI (once) and join the processes started by ``tapegrad run`` / ``mpiexec``.

    Safe to call more than once; later calls only change the timeout. A process started
    without a launcher is rank 0 of 1. After ``init``, an exception that no one catches
    prints its traceback and aborts every rank (no rank is left waiting).

    Args:
        timeout: seconds a rank waits for the others in a collective operation before it
            raises :class:`DistributedTimeoutError` (default: ``TAPEGRAD_DIST_TIMEOUT`` or
            600).
    """
    if timeout is not None:
        timeout = _check_timeout(timeout)
    if _S.comm is None:
        MPI = _import_mpi()
        env_timeout = _env_timeout()
        comm = MPI.COMM_WORLD.Dup()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)
        _S.local_rank, _S.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        _S.rank, _S.size = comm.Get_rank(), comm.Get_size()
        _S.timeout = env_timeout
        _S.comm = comm
        _install_excepthook()
    if timeout is not None:
        _S.timeout = timeout


def is_initialized() -> bool:
    """True once :func:`init` (or a distributed Trainer) has started MPI in this process.
    Never imports mpi4py."""
    return _S.comm is not None


def _comm() -> Any:
    if _S.comm is None:
        init()
    return _S.comm


def rank() -> int:
    """This process's rank, ``0 .. size()-1`` (starts MPI if needed)."""
    _comm()
    return _S.rank


def size() -> int:
    """The number of processes (starts MPI if needed)."""
    _comm()
    return _S.size


def local_rank() -> int:
    """This process's rank among the processes of its machine."""
    _comm()
    return _S.local_rank


def local_size() -> int:
    """The number of processes on this machine."""
    _comm()
    return _S.local_size


def timeout() -> float:
    """Seconds a rank waits for the others before it raises."""
    _comm()
    return float(_S.timeout or DEFAULT_TIMEOUT)


def set_timeout(seconds: float) -> None:
    """Change the timeout of collective operations (seconds)."""
    _S.timeout = _check_timeout(seconds)


def is_writer() -> bool:
    """True where checkpoints are written: everywhere in a single process, on rank 0 only
    once MPI was started by tapegrad. Never imports mpi4py."""
    return _S.comm is None or _S.rank == 0


# ------------------------------------------------------------------------- aborting
def _excepthook(etype: type, value: BaseException, tb: Any) -> None:
    try:
        sys.stderr.write(
            f"\ntapegrad.distributed: rank {_S.rank} of {_S.size} stopped on an unhandled "
            f"{etype.__name__}; aborting every rank (MPI_Abort). Its traceback:\n"
        )
        (_S.prev_hook or sys.__excepthook__)(etype, value, tb)
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        if _S.size > 1 and _S.mpi is not None:
            # the launcher forwards output through a pipe: give it a moment to pass the
            # traceback on before MPI_Abort tears the processes (and their pipes) down
            time.sleep(0.5)
            _S.mpi.COMM_WORLD.Abort(1)


def _install_excepthook() -> None:
    if sys.excepthook is not _excepthook:
        _S.prev_hook = sys.excepthook
        sys.excepthook = _excepthook


# ------------------------------------------------------------------------- waiting
# poll without sleeping this long (yielding the CPU between polls: a peer is usually just
# behind), then sleep between polls, longer and longer up to 1 ms (a peer that is evaluating
# or saving alone; a machine with more processes than cores)
_SPIN_S = 2e-3


def wait(requests: Sequence[Any], what: str) -> None:
    """Wait for MPI requests, at most ``timeout()`` seconds."""
    MPI = _S.mpi
    reqs = list(requests)
    if reqs[0].Test() if len(reqs) == 1 else MPI.Request.Testall(reqs):
        return
    start = time.monotonic()
    limit = _S.timeout or DEFAULT_TIMEOUT
    sched_yield = getattr(os, "sched_yield", None)
    while not MPI.Request.Testall(reqs):
        waited = time.monotonic() - start
        if waited > limit:
            raise DistributedTimeoutError(
                f"tapegrad.distributed: rank {_S.rank} of {_S.size} waited {waited:.0f} s in "
                f"{what} for the other ranks, which did not arrive. One of them probably "
                "stopped on an error (see its output), or the ranks made different numbers "
                "of calls (e.g. one rank had a batch more than the others). Fix: look at the "
                "other ranks' output; give every rank the same number of batches "
                "(gluon.data.SplitSampler); if a rank is legitimately busy for longer (saving, "
                f"evaluating alone), raise the limit: {_TIMEOUT_ENV}=SECONDS or "
                "tapegrad.distributed.init(timeout=SECONDS)."
            )
        if waited < _SPIN_S:
            if sched_yield is not None:
                sched_yield()
            continue
        time.sleep(min(1e-3, 0.05 * waited))


# ------------------------------------------------------------------------- agreement
HEADER = 8  # float64 values per rank: op, layout hash, error flag, five operation-specific values

OPS = {
    1: "Trainer.step",
    2: "Trainer.update",
    3: "Trainer.allreduce_grads",
    4: "allreduce",
    5: "broadcast",
    6: "allgather",
    7: "broadcast_parameters",
    8: "barrier",
    9: "a metric's reduction over ranks",
    10: "KVStore.pushpull",
    11: "KVStore.broadcast",
    12: "the broadcast of a parameter initialised in a forward pass",
    13: "Trainer (creation with a distributed kvstore)",
    14: "Trainer.step's commit",
    15: "KVStore.init",
    16: "KVStore.push",
}


def layout_hash(*parts: Any) -> float:
    """A number that is equal on two ranks when their data have the same layout."""
    return float(zlib.crc32(repr(parts).encode()))


def agree(
    op: int,
    layout: float,
    values: Sequence[float] = (),
    error: BaseException | None = None,
) -> list[list[float]]:
    """Gather ``[op, layout, error flag, *values]`` from every rank (one row per rank;
    ``values`` start at column 3), after checking that every rank is in the same operation,
    that none had an error, and that their data have the same layout.

    Args:
        error: this rank's own error (bad input): it is raised here, after the other ranks
            have learned of it (they raise :class:`RemoteError`).

    Raises:
        CollectiveMismatchError: on every rank, when they differ.
    """
    comm = _comm()
    rec = np.zeros(HEADER, dtype=np.float64)
    head = [op, layout, 0.0 if error is None else 1.0, *values]
    rec[: len(head)] = head
    table = np.empty((_S.size, HEADER), dtype=np.float64)
    what = OPS.get(op, "a collective operation")
    wait([comm.Iallgather(rec, table)], what)
    rows = table.tolist()
    if any(row[0] != op for row in rows):
        calls = ", ".join(
            f"rank {r}: {OPS.get(int(row[0]), f'operation {int(row[0])}')}"
            for r, row in enumerate(rows)
        )
        raise CollectiveMismatchError(
            f"tapegrad.distributed: the ranks called different collective operations at the "
            f"same point ({calls}). Every rank must make the same distributed calls in the "
            "same order. Fix: give every rank the same number of batches and steps "
            "(gluon.data.SplitSampler), and call code that reduces over ranks (metrics, "
            "barriers) on every rank, not only on rank 0."
        )
    if error is not None:
        raise error
    failed = [r for r, row in enumerate(rows) if row[2]]
    if failed:
        raise RemoteError(
            f"tapegrad.distributed: {what} failed on rank(s) {failed} (bad input there; see "
            f"its error); rank {_S.rank} stopped at the same call. Fix: the error printed by "
            f"rank {failed[0]}."
        )
    if any(row[1] != layout for row in rows):
        odd = [r for r, row in enumerate(rows) if row[1] != rows[0][1]]
        raise CollectiveMismatchError(
            f"tapegrad.distributed: {what} was called on data of a different layout (shapes, "
            f"dtypes, root, operation, parameters) on rank(s) {odd} than on rank 0. Fix: "
            "build the same network, in the same order, on every rank, and pass arrays of "
            "the same shape and dtype (and the same root and operation)."
        )
    return rows


# ------------------------------------------------------------------------- payloads
def mpi_op(name: str) -> Any:
    MPI = _S.mpi
    return {"sum": MPI.SUM, "min": MPI.MIN, "max": MPI.MAX, "prod": MPI.PROD}[name]


def allreduce_array(x: np.ndarray, op: str, what: str) -> np.ndarray:
    """A new array: ``x`` reduced over the ranks with ``op`` (sum, min, max, prod)."""
    comm = _comm()
    send = np.ascontiguousarray(x)
    out = np.empty_like(send)
    wait([comm.Iallreduce(send, out, op=mpi_op(op))], what)
    return out


def bcast_array(x: np.ndarray, root: int, what: str) -> np.ndarray:
    """Rank ``root``'s ``x`` on every rank (a new array; ``x`` is left alone)."""
    comm = _comm()
    buf = np.array(x, copy=True, order="C")
    wait([comm.Ibcast(buf, root=root)], what)
    return buf


def allgatherv_rows(x: np.ndarray, counts: Sequence[int], what: str) -> np.ndarray:
    """The arrays of every rank concatenated along axis 0 (``counts``: rows per rank)."""
    comm = _comm()
    send = np.ascontiguousarray(x)
    row = int(np.prod(send.shape[1:], dtype=np.int64))
    sizes = [int(c) * row for c in counts]
    out = np.empty((int(sum(counts)), *send.shape[1:]), dtype=send.dtype)
    displs = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    wait([comm.Iallgatherv(send, [out, (sizes, displs)])], what)
    return out
