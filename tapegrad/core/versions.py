"""One clock for graph nodes and in-place changes, and version records shared by every view
of the same memory.

Every recorded node takes a tick of the clock (its ``seq``), and so does every in-place
change. A backward pass needs a node's saved values as they were when it was recorded, so
"changed after recording" is simply "a change with a larger tick touched the memory".

Several arrays can share memory (a slice, ``reshape``, ``.T``, ``detach()``, a gradient
buffer read through a view). So the record of changes is kept per *memory*, not per array:
the key is the object that owns the memory (the end of a NumPy array's ``base`` chain), and
every view of it finds the same record. A record keeps the tick of the latest change of the
whole memory and the regions changed since, with their ticks; a list that grows past
``_MAX`` regions collapses into one whole-memory change at its newest tick. Collapsing can
only make a check stricter (a ``VersionError`` for a disjoint region), never forget a change:
no bound on the number of other changes in the process lets a stale value through. A record
lives as long as its memory (a weak reference removes it).

>>> import numpy as np
>>> from tapegrad.core import versions
>>> w = np.zeros(4)
>>> t = versions.tick()
>>> _ = versions.note_change(w[2:])          # a change through a view
>>> versions.changed_after(w[:2], t), versions.changed_after(w, t)
(False, True)
"""

from __future__ import annotations

import functools
import itertools
import weakref
from typing import Any

import numpy as np

__all__ = ["tick", "next_seq", "note_change", "changed_after", "owner", "LAST"]

_SEQ = itertools.count(1)
#: ``LAST[0]``: the tick of the latest in-place change (0 before any). A node with a larger
#: ``seq`` cannot have been invalidated, which spares the backward pass every check.
LAST = [0]
_MAX = 32
_ndarray = np.ndarray

#: the clock as a plain function (a node takes ``next_seq()`` when it is recorded)
next_seq = _SEQ.__next__


def tick() -> int:
    """Take a tick for an in-place change or a rebinding (it becomes ``LAST[0]``)."""
    c = LAST[0] = next_seq()
    return c


class _Record:
    """Changes of one memory: ``whole``, the tick of the latest change of all of it, and
    ``regions``, the partial changes since, as ``(tick, (shape, dtype, byte offset,
    strides))``."""

    __slots__ = ("whole", "regions", "ref")


_RECORDS: dict[int, _Record] = {}


def owner(a: Any) -> Any:
    """The object that owns the memory of NumPy array ``a`` (the end of its ``base`` chain)."""
    b = a.base
    while b is not None:
        a = b
        b = getattr(a, "base", None)
    return a


def _record(own: Any) -> _Record:
    key = id(own)
    rec = _RECORDS.get(key)
    if rec is None:
        rec = _Record()
        rec.whole = 0
        rec.regions = []
        try:
            # the callback, pop(key, the dead reference), runs no Python code of ours
            rec.ref = weakref.ref(own, functools.partial(_RECORDS.pop, key))
        except TypeError:  # memory NumPy does not own and that cannot be weakly referenced
            rec.ref = own  # (kept alive with its record: rare, e.g. a bytes buffer)
        _RECORDS[key] = rec
    return rec


def _addr(a: Any) -> int:
    return a.__array_interface__["data"][0]


def note_change(data: Any) -> int:
    """Record an in-place change of the NumPy array ``data`` (all of its memory or a view of
    part of it) and return the change's tick. NumPy scalars are immutable: only a tick."""
    c = LAST[0] = next_seq()
    if type(data) is _ndarray:
        b = data.base
        if b is None:  # the common case: an array that owns its memory, changed whole
            rec = _RECORDS.get(id(data)) or _record(data)
            rec.whole = c
            if rec.regions:
                rec.regions = []
            return c
        own = owner(b)
        rec = _RECORDS.get(id(own)) or _record(own)
        if type(own) is not _ndarray or (own.size == data.size and own.dtype == data.dtype):
            rec.whole = c
            rec.regions = []
        else:
            regions = rec.regions
            regions.append((c, (data.shape, data.dtype, _addr(data) - _addr(own), data.strides)))
            if len(regions) > _MAX:  # collapse: stricter, never forgetful
                rec.whole = c
                rec.regions = []
    return c


def changed_after(data: Any, since: int) -> bool:
    """Whether memory that NumPy array ``data`` covers was changed after tick ``since``."""
    if type(data) is not _ndarray or not data.size:
        return False
    b = data.base
    own = data if b is None else owner(b)
    rec = _RECORDS.get(id(own))
    if rec is None:
        return False
    if rec.whole > since:
        return True
    for c, layout in rec.regions:
        if c > since and _overlap(data, own, layout):
            return True
    return False


def _overlap(data: np.ndarray, own: np.ndarray, layout: tuple) -> bool:
    shape, dtype, off, strides = layout
    try:
        region = np.ndarray(shape, dtype, buffer=own, offset=off, strides=strides)
    except (TypeError, ValueError):  # an owner that exposes no flat buffer: assume overlap
        return True
    if not np.may_share_memory(data, region):
        return False
    try:
        return bool(np.shares_memory(data, region, max_work=100_000))
    except np.exceptions.TooHardError:  # pragma: no cover - pathological strides
        return True
