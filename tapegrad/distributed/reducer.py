"""Summing many arrays (a network's gradients) over the ranks in few MPI calls.

Arrays of up to ``fuse_bytes`` bytes are packed into one buffer per dtype and summed in one
call (in place in that buffer). Larger ones are summed in a call of their own, from their own
memory: in place when the caller allows it (the Trainer does for ``grad_req='write'``
gradients, which the next backward pass overwrites anyway), since a copy of a large gradient
costs a good part of what its transfer does. The calls are made one after the other: MPICH
progresses several outstanding collectives much more slowly than the same calls in sequence.
``fuse_bytes`` comes from ``TAPEGRAD_DIST_FUSE_BYTES`` (default 64 KiB; 0 sums every array in
its own call, a huge value packs them all into one buffer); benchmarks/distributed_scaling.py
measures the three.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import comm

__all__ = ["GradientReducer", "DEFAULT_FUSE_BYTES"]

DEFAULT_FUSE_BYTES = 64 * 1024
_ENV = "TAPEGRAD_DIST_FUSE_BYTES"


def _env_fuse_bytes() -> int:
    raw = os.environ.get(_ENV)
    if not raw:
        return DEFAULT_FUSE_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise comm.DistributedError(
            f"tapegrad.distributed: {_ENV}={raw!r} is not a number of bytes >= 0. Fix: unset "
            f"it (default {DEFAULT_FUSE_BYTES}) or set e.g. {_ENV}=65536."
        )
    return value


class _Plan:
    """Buffers for one list of (shape, dtype): fused groups by dtype, the large arrays."""

    def __init__(self, arrays: Sequence[np.ndarray], fuse_bytes: int) -> None:
        self.fused: dict[str, list[tuple[int, int, int]]] = {}  # dtype -> (index, start, size)
        self.large: list[int] = []
        for i, a in enumerate(arrays):
            if a.nbytes <= fuse_bytes:
                group = self.fused.setdefault(a.dtype.str, [])
                start = group[-1][1] + group[-1][2] if group else 0
                group.append((i, start, a.size))
            else:
                self.large.append(i)
        self.send = {
            dt: np.empty(g[-1][1] + g[-1][2], dtype=np.dtype(dt)) for dt, g in self.fused.items()
        }
        self.large_recv = {i: np.empty(arrays[i].shape, arrays[i].dtype) for i in self.large}
        self.zeros: dict[int, np.ndarray] = {}
        self.calls = len(self.fused) + len(self.large)


class GradientReducer:
    """Sums lists of arrays over the ranks; keeps its buffers between calls.

    ``stats`` counts the reductions, MPI calls, bytes and the seconds spent (packing,
    waiting, unpacking), for benchmarks.
    """

    def __init__(self, fuse_bytes: int | None = None) -> None:
        self.fuse_bytes = _env_fuse_bytes() if fuse_bytes is None else int(fuse_bytes)
        self._plans: dict[tuple, _Plan] = {}
        self.stats = {"reductions": 0, "calls": 0, "bytes": 0, "seconds": 0.0}

    def _plan(self, arrays: Sequence[np.ndarray], key: Any = None) -> _Plan:
        if key is None:
            key = tuple((a.shape, a.dtype.str) for a in arrays)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 8:  # a few layouts at most (one per Trainer, usually one)
                self._plans.clear()
            plan = self._plans[key] = _Plan(arrays, self.fuse_bytes)
        return plan

    def sum(
        self,
        arrays: Sequence[np.ndarray],
        contribute: Sequence[bool] | None,
        what: str,
        counts: np.ndarray | None = None,
        key: Any = None,
        inplace: Sequence[bool] | None = None,
    ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The sums over the ranks of ``arrays`` (this rank adds zeros for an array whose
        ``contribute`` is False); and, when given, ``counts`` (an int32 vector) summed
        alongside.

        A large array whose ``inplace`` is True (it must be writable and C-contiguous) is
        summed in its own memory and returned; the other sums are arrays owned by the
        reducer, valid until its next call. Every rank must pass arrays of the same shapes
        and dtypes (checked before, by the caller's header). ``key``: a hashable
        description of those shapes and dtypes, when the caller has one.
        """
        t0 = time.perf_counter()
        mpi_comm = comm._comm()
        SUM = comm.mpi_op("sum")
        IN_PLACE = comm._S.mpi.IN_PLACE
        plan = self._plan(arrays, key)
        calls = []  # (send, receive) pairs, reduced one after the other
        for dt, group in plan.fused.items():
            send = plan.send[dt]
            for i, start, n in group:
                if contribute is None or contribute[i]:
                    send[start : start + n] = arrays[i].reshape(-1)
                else:
                    send[start : start + n] = 0
            calls.append((IN_PLACE, send))
        out: list = [None] * len(arrays)
        for i in plan.large:
            src = arrays[i]
            if inplace is not None and inplace[i]:
                if contribute is not None and not contribute[i]:
                    src[...] = 0
                calls.append((IN_PLACE, src))
                out[i] = src
                continue
            if contribute is not None and not contribute[i]:
                src = plan.zeros.get(i)
                if src is None:
                    src = plan.zeros[i] = np.zeros(arrays[i].shape, arrays[i].dtype)
            calls.append((np.ascontiguousarray(src), plan.large_recv[i]))
            out[i] = plan.large_recv[i]
        total = None
        if counts is not None:
            total = np.empty_like(counts)
            calls.append((counts, total))
        # one at a time: MPICH progresses several outstanding collectives much more slowly
        # than the same calls in sequence (3x on W2's four gradients, measured)
        for send, recv in calls:
            comm.wait([mpi_comm.Iallreduce(send, recv, op=SUM)], what)
        for dt, group in plan.fused.items():
            buf = plan.send[dt]
            for i, start, n in group:
                out[i] = buf[start : start + n].reshape(arrays[i].shape)
        st = self.stats
        st["reductions"] += 1
        st["calls"] += len(calls)
        st["bytes"] += sum(a.nbytes for a in arrays)
        st["seconds"] += time.perf_counter() - t0
        return out, total
