"""Fresh variables, and running a function recording on them: what ``functional``, Taylor
mode and ``explain`` all do before they differentiate a Python function.

A fresh variable stands for an argument: a new leaf, or a recorded identity of the argument
when the argument is itself on a graph (so derivatives with respect to what it came from
still flow through). Each transform differentiates with respect to its own fresh variables,
so inner and outer derivatives never mix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .graph import Leaf, wrap
from .primitive import TAPE
from .state import recording

__all__ = ["fresh_variable", "trace"]


def fresh_variable(x: Any) -> Any:
    """A variable standing for array ``x`` (no copy of its data)."""
    if x._node is not None:
        with recording():
            return TAPE.reshape(x, shape=tuple(x.shape))  # a recorded identity (a view)
    v = wrap(x._data, Leaf(x.shape, x.dtype, None, "write"), x._tan)
    v._version = x._version
    return v


def trace(f: Callable, args: Sequence, nums: Sequence[int]) -> tuple:
    """Run ``f(*args)`` recording, with fresh variables in place of the arguments at
    positions ``nums``; returns ``(output, [the fresh variables])``."""
    args = list(args)
    vars_ = [fresh_variable(args[i]) for i in nums]
    for v, i in zip(vars_, nums):
        args[i] = v
    with recording():
        out = f(*args)
    return out, vars_
