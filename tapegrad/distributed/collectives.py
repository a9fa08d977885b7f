"""Horovod's collective operations on NDArrays (``allreduce``, ``allgather``, ``broadcast``,
their in-place forms, ``broadcast_parameters``, ``barrier``), over MPI.

Each is a collective: every rank must call it, in the same order, with arrays of the same
shape and dtype (``allgather``: the same shape after the first axis). A rank that passes bad
input raises the error, and the other ranks raise :class:`~.comm.RemoteError` at the same
call: no rank is left waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import ndarray as nd
from ..base import DeferredInitializationError
from . import comm

__all__ = [
    "Average",
    "Sum",
    "Min",
    "Max",
    "Product",
    "allreduce",
    "allreduce_",
    "allgather",
    "broadcast",
    "broadcast_",
    "broadcast_parameters",
    "barrier",
]

# reduction operations (Horovod's names)
Average = "average"
Sum = "sum"
Min = "min"
Max = "max"
Product = "prod"
_OPS = (Average, Sum, Min, Max, Product)


def _as_numpy(tensor: Any, who: str) -> np.ndarray:
    if isinstance(tensor, nd.NDArray):
        return np.asarray(tensor)
    if isinstance(tensor, np.ndarray):
        return tensor
    raise TypeError(
        f"tapegrad.distributed.{who}: expected an NDArray, got {type(tensor).__name__}. Fix: "
        "wrap it with mx.nd.array(...)."
    )


def _numeric(arr: np.ndarray, who: str) -> None:
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"tapegrad.distributed.{who}: arrays of dtype {arr.dtype} cannot be sent. Fix: "
            "pass a numeric NDArray (float32, float64, int32, ...)."
        )


def _resolve_op(average: bool | None, op: str | None) -> str:
    if op is not None and average is not None:
        raise ValueError(
            "tapegrad.distributed.allreduce: pass either op or average, not both. Fix: "
            "op=tapegrad.distributed.Sum (or Average)."
        )
    if op is None:
        return Average if average is None or average else Sum
    if op not in _OPS:
        raise ValueError(
            f"tapegrad.distributed.allreduce: unknown op {op!r}. Fix: use one of "
            "tapegrad.distributed.Average, Sum, Min, Max, Product."
        )
    return op


def _check_factor(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"tapegrad.distributed.allreduce: {name} must be a number, got {value!r}")
    return float(value)


def allreduce(
    tensor: Any,
    average: bool | None = None,
    name: str | None = None,
    priority: int = 0,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
    process_set: Any = None,
    op: str | None = None,
) -> nd.NDArray:
    """A new NDArray: ``tensor`` reduced over the ranks (by default averaged, as Horovod).

    Args:
        tensor: an NDArray of the same shape and dtype on every rank.
        average: Horovod's older switch (True: Average, False: Sum).
        name, priority: accepted for Horovod scripts; calls are matched by order.
        prescale_factor, postscale_factor: multiply before / after the reduction.
        op: ``Average`` (default), ``Sum``, ``Min``, ``Max`` or ``Product``.
    """
    error = None
    arr = None
    try:
        _check_process_set(process_set, "allreduce")
        red = _resolve_op(average, op)
        pre = _check_factor(prescale_factor, "prescale_factor")
        post = _check_factor(postscale_factor, "postscale_factor")
        arr = _as_numpy(tensor, "allreduce")
        _numeric(arr, "allreduce")
    except Exception as e:  # noqa: BLE001  (raised below, after telling the other ranks)
        error = e
    layout = comm.layout_hash(None if arr is None else (arr.shape, arr.dtype.str), op, average)
    comm.agree(4, layout, error=error)
    send = arr if pre == 1.0 else (arr * pre).astype(arr.dtype, copy=False)
    out = comm.allreduce_array(send, "sum" if red == Average else red, "allreduce")
    scale = post / comm.size() if red == Average else post
    if scale != 1.0:
        out = (out * scale).astype(arr.dtype, copy=False)
    return nd.array(out, dtype=arr.dtype)


def allreduce_(tensor: Any, average: bool | None = None, name: str | None = None, **kw: Any) -> Any:
    """:func:`allreduce` written back into ``tensor``; returns ``tensor``."""
    result = allreduce(tensor, average=average, name=name, **kw)
    tensor[:] = result
    return tensor


def allgather(
    tensor: Any, name: str | None = None, priority: int = 0, process_set: Any = None
) -> nd.NDArray:
    """The tensors of every rank concatenated along the first axis, in rank order (their
    first dimensions may differ; the other dimensions and the dtype must agree)."""
    error = None
    arr = None
    try:
        _check_process_set(process_set, "allgather")
        arr = _as_numpy(tensor, "allgather")
        _numeric(arr, "allgather")
        if arr.ndim == 0:
            raise ValueError(
                "tapegrad.distributed.allgather: the tensor is a scalar (shape ()), which has "
                "no first axis to concatenate along. Fix: reshape it to (1,)."
            )
    except Exception as e:  # noqa: BLE001
        error = e
    layout = comm.layout_hash(None if arr is None else (arr.shape[1:], arr.dtype.str))
    rows = 0 if arr is None else arr.shape[0]
    table = comm.agree(6, layout, [rows], error=error)
    counts = [int(row[3]) for row in table]
    out = comm.allgatherv_rows(arr, counts, "allgather")
    return nd.array(out, dtype=arr.dtype)


def _check_root(root: Any, who: str) -> int:
    n = comm.size()
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < n:
        raise ValueError(
            f"tapegrad.distributed.{who}: root_rank must be a rank, 0..{n - 1}, got {root!r}. "
            "Fix: pass root_rank=0."
        )
    return int(root)


def _check_process_set(process_set: Any, who: str) -> None:
    if process_set is not None and getattr(process_set, "process_set_id", 0) != 0:
        raise ValueError(
            f"tapegrad.distributed.{who}: process sets are not supported; every call spans "
            "all ranks. Fix: drop process_set=."
        )


def broadcast(
    tensor: Any,
    root_rank: int = 0,
    name: str | None = None,
    priority: int = 0,
    process_set: Any = None,
) -> nd.NDArray:
    """A new NDArray holding rank ``root_rank``'s ``tensor`` on every rank."""
    error = None
    arr = None
    try:
        _check_process_set(process_set, "broadcast")
        root = _check_root(root_rank, "broadcast")
        arr = _as_numpy(tensor, "broadcast")
        _numeric(arr, "broadcast")
    except Exception as e:  # noqa: BLE001
        error = e
    layout = comm.layout_hash(None if arr is None else (arr.shape, arr.dtype.str), root_rank)
    comm.agree(5, layout, error=error)
    return nd.array(comm.bcast_array(arr, root, "broadcast"), dtype=arr.dtype)


def broadcast_(tensor: Any, root_rank: int = 0, name: str | None = None, **kw: Any) -> Any:
    """:func:`broadcast` written into ``tensor``; returns ``tensor``."""
    result = broadcast(tensor, root_rank, name=name, **kw)
    tensor[:] = result
    return tensor


def sum_over_ranks(x: np.ndarray, op: int = 4) -> np.ndarray:
    """``x`` (a NumPy array of the same shape on every rank) summed over the ranks."""
    comm.agree(op, comm.layout_hash(x.shape, x.dtype.str))
    return comm.allreduce_array(x, "sum", comm.OPS[op])


def barrier() -> None:
    """Wait until every rank has arrived here (bounded by the timeout)."""
    comm.agree(8, 0.0)


# ------------------------------------------------------------------------- parameters
def _is_parameter(p: Any) -> bool:
    return hasattr(p, "list_data") and hasattr(p, "grad_req") and hasattr(p, "set_data")


def _initialised(p: Any) -> bool:
    try:
        p.list_data()
    except (DeferredInitializationError, RuntimeError):
        return False
    return True


def _items(params: Any, who: str) -> list:
    if isinstance(params, Mapping) or (hasattr(params, "items") and hasattr(params, "keys")):
        return [params[k] for k in sorted(params.keys())]
    if isinstance(params, (list, tuple)):
        return list(params)
    raise TypeError(
        f"tapegrad.distributed.{who}: params must be a ParameterDict, a dict or a list of "
        f"Parameters (or NDArrays), got {type(params).__name__}. Fix: pass "
        "net.collect_params()."
    )


def _broadcast_values(items: list, root: int, op: int, what: str, error: Any = None) -> None:
    """Rank ``root``'s values of the initialised Parameters / NDArrays ``items`` on every
    rank: one broadcast per dtype."""
    arrays = []
    for it in items:
        arrays.append(np.asarray(it.list_data()[0] if _is_parameter(it) else it))
    layout = comm.layout_hash(root, [(a.shape, a.dtype.str) for a in arrays])
    comm.agree(op, layout, error=error)
    if not arrays:
        return
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.dtype.str, []).append(i)
    me = comm.rank()
    for dt, idx in groups.items():
        if me == root:
            buf = np.concatenate([arrays[i].reshape(-1) for i in idx])
        else:
            buf = np.empty(sum(arrays[i].size for i in idx), dtype=np.dtype(dt))
        buf = comm.bcast_array(buf, root, what)
        if me == root:
            continue
        start = 0
        for i in idx:
            n = arrays[i].size
            value = buf[start : start + n].reshape(arrays[i].shape)
            start += n
            it = items[i]
            if _is_parameter(it):
                it.set_data(value)
            else:
                it[:] = value


def _hook_deferred(p: Any, root: int) -> None:
    """Broadcast ``p``'s value from ``root`` as soon as its deferred initialisation runs (in
    the first forward pass, on every rank alike), as Horovod does."""
    if getattr(p, "_tapegrad_bcast_root", None) is not None:
        p._tapegrad_bcast_root = root
        return
    finish = p._finish_deferred_init  # the bound method of the class

    def finish_and_broadcast() -> None:
        was_deferred = not _initialised(p)
        finish()
        if was_deferred and _initialised(p):
            _broadcast_values([p], p._tapegrad_bcast_root, 12, OPS_INIT)

    p._tapegrad_bcast_root = root
    p._finish_deferred_init = finish_and_broadcast


OPS_INIT = comm.OPS[12]


def broadcast_parameters(
    params: Any, root_rank: int = 0, prefix: str | None = None, *, root: int | None = None
) -> None:
    """Give every rank rank ``root_rank``'s parameter values (Horovod's
    ``broadcast_parameters``; ``root=`` is an alias of ``root_rank``).

    Initialised parameters are sent now, in one broadcast per dtype. A parameter whose
    initialisation is deferred (its shape is known at the first forward pass) is sent right
    after it is initialised, so the first forward pass already uses rank 0's values on every
    rank; that forward pass (or ``initialize()``) is then a collective call.

    Args:
        params: ``net.collect_params()``, a dict name -> Parameter/NDArray (taken in sorted
            key order, the same on every rank), or a list.
        root_rank: the rank whose values are kept.
        prefix: accepted for Horovod scripts.
    """
    error = None
    items: list = []
    deferred: list = []
    r = 0
    try:
        r = _check_root(root_rank if root is None else root, "broadcast_parameters")
        for it in _items(params, "broadcast_parameters"):
            if _is_parameter(it):
                (items if _initialised(it) else deferred).append(it)
            elif isinstance(it, nd.NDArray):
                items.append(it)
            else:
                raise TypeError(
                    f"tapegrad.distributed.broadcast_parameters: got a {type(it).__name__} "
                    "among the parameters. Fix: pass Parameters or NDArrays."
                )
    except Exception as e:  # noqa: BLE001
        error = e
        items = []
    _broadcast_values(items, r, 7, "broadcast_parameters", error=error)
    for p in deferred:
        _hook_deferred(p, r)
