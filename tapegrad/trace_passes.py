"""Passes over a traced :class:`~tapegrad.trace.Plan` before it becomes code.

* :func:`eliminate_common` (always): two steps that apply the same pure primitive to the same
  inputs with the same static arguments compute the same array; the second is dropped and its
  readers read the first. Derivatives are unchanged (a VJP is linear in the cotangent, so one
  rule call on the summed cotangents equals two).
* :class:`Emitter` decides, per forward program, how each step writes its result:
  - an in-place update of an argument (``m *= b1``: a ufunc step whose only reader is the
    write that follows it) runs as the ufunc with ``out=`` the argument's memory, instead of
    a temporary and a copy;
  - with ``static_alloc`` (MXNet's flag), **liveness analysis**: once a ufunc step's result is
    dead (no later step, output, write or saved value reads it, nor any value that may be a
    view of it), its buffer goes back to a pool, and a later ufunc step of the same shape and
    dtype writes into it through ``out=`` instead of allocating.

Only ufunc steps (the elementwise arithmetic and ``matmul``) take ``out=``; they always return
fresh memory, which is what makes their buffers safe to recycle. A result of any other step
may be a view of its inputs (a reshape, a transpose, an index), so it keeps its inputs alive.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

__all__ = ["eliminate_common", "ufunc_of", "Emitter"]

_OPERATOR_UFUNCS = {
    operator.add: np.add,
    operator.sub: np.subtract,
    operator.mul: np.multiply,
    operator.truediv: np.true_divide,
    operator.neg: np.negative,
    operator.pow: np.power,
}


def ufunc_of(step: Any) -> np.ufunc | None:
    """The one-output NumPy ufunc a step's implementation is, or None."""
    if step.kwargs:
        return None
    impl = step.prim.impl
    if isinstance(impl, np.ufunc):
        return impl if impl.nout == 1 else None
    try:
        return _OPERATOR_UFUNCS.get(impl)
    except TypeError:  # an unhashable implementation
        return None


def eliminate_common(plan: Any) -> int:
    """Drop the steps that repeat an earlier one (common subexpressions); returns how many.
    Random (impure) primitives and steps reading an argument that is written in place are
    kept: their value depends on when they run."""
    written = {w[1] for w in plan.writes}
    remap: dict = {}
    seen: dict = {}
    keep = []

    def ref(r: tuple) -> tuple:
        return ("v", remap.get(r[1], r[1])) if r[0] == "v" else r

    for s in plan.steps:
        s.ins = [ref(r) for r in s.ins]
        if s.prim.impure or any(r[0] == "v" and r[1] in written for r in s.ins):
            keep.append(s)
            continue
        ins = tuple(r if r[0] == "v" else ("c", id(r[1])) for r in s.ins)
        key: Any = (s.prim, s.nograd, ins, tuple(sorted(s.kwargs.items())))
        try:
            first = seen.setdefault(key, s.out)
        except TypeError:  # unhashable static arguments (an index array): keep
            keep.append(s)
            continue
        if first == s.out:
            keep.append(s)
        else:
            remap[s.out] = first
    plan.steps = keep
    plan.outs = [ref(r) for r in plan.outs]
    plan.writes = [(t, k, key, ref(r)) for t, k, key, r in plan.writes]
    return len(remap)


class Emitter:
    """How the forward program writes each step's result (see the module's documentation).

    Args:
        plan: the plan; ``events`` its steps and writes in program order, as
            ``(kind, index)`` with kind 0 a step, 1 a write.
        keep: variables that must survive the program (outputs, saved for the backward).
        static_alloc: recycle dead buffers.
    """

    def __init__(self, plan: Any, events: list, keep: set, static_alloc: bool) -> None:
        self.plan, self.events, self.static_alloc = plan, events, static_alloc
        n = len(events)
        last: dict = {}
        readers: dict = {}
        for i, (kind, k) in enumerate(events):
            for v in self._reads(kind, k):
                last[v] = i
                readers[v] = readers.get(v, 0) + 1
        for v in keep:
            last[v] = n
        # a step that is not a ufunc may return a view of its inputs: they live as long as it
        for kind, k in reversed(events):
            if kind == 0:
                s = plan.steps[k]
                if ufunc_of(s) is None:
                    end = last.get(s.out, -1)
                    for r in s.ins:
                        if r[0] == "v" and last.get(r[1], -1) < end:
                            last[r[1]] = end
        self.last, self.readers, self.keep = last, readers, keep
        self.pool: dict = {}  # (shape, dtype) -> free buffers (variable names)
        self.dying: dict = {}  # event position -> variables whose buffers free after it

    def _reads(self, kind: int, k: int) -> list:
        if kind == 0:
            return [r[1] for r in self.plan.steps[k].ins if r[0] == "v"]
        _, arg, _, r = self.plan.writes[k]
        return [arg] + ([r[1]] if r[0] == "v" else [])

    def fused_write(self, i: int) -> int | None:
        """If event ``i`` is a ufunc step whose result only the next event (a whole-array
        write of an argument of the same shape) reads: that argument's index."""
        if i + 1 >= len(self.events):
            return None
        (kind, k), (nkind, j) = self.events[i], self.events[i + 1]
        if kind != 0 or nkind != 1:
            return None
        s = self.plan.steps[k]
        _, arg, key, r = self.plan.writes[j]
        shapes = self.plan.shapes
        if (
            key is Ellipsis
            and r == ("v", s.out)
            and self.readers.get(s.out) == 1
            and s.out not in self.keep
            and ufunc_of(s) is not None
            and shapes[s.out] == shapes[arg]
        ):
            return arg
        return None

    def out_buffer(self, i: int) -> str | None:
        """For the ufunc step at event ``i``: a free buffer to write into (or None), under
        ``static_alloc``. Call once per step, in program order; then :meth:`release`."""
        if not self.static_alloc:
            return None
        s = self.plan.steps[self.events[i][1]]
        dtype = self.plan.dtypes[s.out]
        shape = self.plan.shapes[s.out]
        if ufunc_of(s) is None or dtype is None or shape == ():
            return None
        if self.last.get(s.out, -1) > i:  # read later: its buffer can be recycled when dead
            self.dying.setdefault(self.last[s.out], []).append(s.out)
        free = self.pool.get((shape, dtype))
        return f"v{free.pop()}" if free else None

    def release(self, i: int) -> None:
        """Return to the pool the buffers whose last reader was event ``i``."""
        for v in self.dying.pop(i, ()):
            key = (self.plan.shapes[v], self.plan.dtypes[v])
            self.pool.setdefault(key, []).append(v)
