"""The recorded graph: the array type's registration, variables (:class:`Leaf`), tape entries
(:class:`Node`) and the one graph walk every pass uses.

A node stores the tick of the clock it was recorded at (``seq``). Inputs are always recorded
before the operations that use them, so sorting nodes by ``seq`` is a topological order, and
a node older than the oldest variable of interest cannot depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .versions import next_seq

__all__ = ["Leaf", "Node", "new_node", "wrap", "set_array_type", "array_type", "walk"]

#: the array type (tapegrad's NDArray), registered by ``tapegrad.ndarray`` when it loads
_BOX: list = [None]
_new = object.__new__  # NDArray and Node have no __new__ of their own
_ndarray = np.ndarray


def set_array_type(cls: type) -> None:
    """Register the array type the engine wraps results in (called once by NDArray's module)."""
    _BOX[0] = cls


def array_type() -> type:
    """The registered array type (NDArray)."""
    return _BOX[0]


def wrap(data: Any, node: Any = None, tan: Any = None) -> Any:
    """A new array around ``data`` (no copy), on ``node``'s graph, with tangents ``tan``."""
    r = _new(_BOX[0])
    r._data = data
    r._node = node
    r._tan = tan
    r._version = 0
    return r


class Leaf:
    """Graph node of a variable (``attach_grad`` / ``mark_variables``).

    Holds the gradient buffer and the grad_req. ``fresh`` tells the Trainer that a backward
    pass wrote the gradient since the last update (MXNet's stale-gradient check).
    """

    __slots__ = ("shape", "dtype", "grad", "grad_req", "fresh", "seq", "__weakref__")
    parents = ()

    def __init__(self, shape: tuple, dtype: Any, grad: Any, grad_req: str) -> None:
        self.seq = next_seq()
        self.shape = shape
        self.dtype = dtype
        self.grad = grad
        self.grad_req = grad_req
        self.fresh = False

    def __repr__(self) -> str:
        return f"Leaf(shape={self.shape}, grad_req={self.grad_req!r})"


class Node:
    """Tape entry of one recorded primitive call.

    Attributes:
        prim: the Primitive.
        args: the call's positional inputs (arrays or constants), kept for the rules;
            ``None`` once a backward pass freed the node.
        data: the raw NumPy values of ``args`` (what a first-order backward pass uses).
        kwargs: static keyword arguments.
        parents: graph node of each input, ``None`` where the input is constant.
        ans: the output's raw data; ``ans_tan`` its forward-mode tangents, if any.
        shape: the output's shape.
        seq: the clock's tick when recorded.
    """

    __slots__ = ("prim", "args", "data", "kwargs", "parents", "ans", "ans_tan", "shape", "seq")

    def __repr__(self) -> str:
        return f"Node({self.prim.name}, shape={self.shape}, seq={self.seq})"


def _frozen(a: Any) -> bool:
    """Whether nobody can change the memory of NumPy array ``a`` behind the graph's back."""
    b = a
    while b is not None:
        if type(b) is _ndarray and not b.flags.writeable and b.base is None:
            return True
        b = getattr(b, "base", None)
    return False


def _saved(args: Sequence, data: Any) -> tuple:
    """``(args, data)`` with raw NumPy inputs copied: NumPy tells nobody when a user changes
    an array of their own, so the graph keeps its own copy (read-only memory is kept as is).
    Arrays of tapegrad are tracked by their version records instead and never copied."""
    args = list(args)
    data = list(data)
    for i, a in enumerate(args):
        if type(a) is _ndarray and not _frozen(a):
            c = a.copy()
            c.flags.writeable = False
            args[i] = data[i] = c
    return tuple(args), tuple(data)


def new_node(
    prim: Any, args: Sequence, kwargs: dict, parents: Sequence, ans: Any, data: Any, raw: bool
) -> Node:
    """The tape entry of one recorded call of ``prim`` (a plain function: cheaper than
    ``__init__`` on the hot path). ``raw``: some input is a NumPy array, which the node keeps
    a copy of (see :func:`_saved`)."""
    if raw:
        args, data = _saved(args, data)
    n = _new(Node)
    n.prim = prim
    n.args = args
    n.data = data
    n.kwargs = kwargs
    n.parents = parents
    n.ans = ans
    n.ans_tan = None
    n.shape = ans.shape
    n.seq = next_seq()
    return n


def walk(roots: Sequence, since: int = 0) -> list:
    """Nodes reachable from ``roots`` (nodes or leaves) and recorded at or after tick
    ``since``, parents first (increasing ``seq``). The one graph walk of tapegrad: the
    backward pass, Taylor mode and the explainer all use it."""
    seen = {r for r in roots if r is not None}
    stack = list(seen)
    while stack:
        for p in stack.pop().parents:
            if p is not None and p not in seen and p.seq >= since:
                seen.add(p)
                stack.append(p)
    return sorted(seen, key=_seq)


def _seq(n: Any) -> int:
    return n.seq
