"""Random numbers: ``mx.random.seed`` and sampling functions, one generator per thread.

All randomness in tapegrad (initializers, Dropout, DataLoader shuffling, ``nd.random``)
draws from :func:`generator`, so one ``seed`` call makes a run reproducible.

Each thread has its own NumPy ``Generator``, derived from the global seed and the thread:
the main thread's is ``numpy.random.default_rng(seed)``, another thread's is seeded with
``SeedSequence(seed, spawn_key=(hash of the thread's name,))``. So a seeded computation gives
the same numbers whatever other threads draw meanwhile, and a thread's numbers depend only
on the seed and its name (give threads names, ``threading.Thread(name=...)``, for numbers
that do not depend on how many threads were started before). ``seed`` sets the global seed
for every thread: each thread starts its stream again at its next draw. Before any
``seed`` call every thread draws from fresh operating-system entropy.

>>> import tapegrad as mx
>>> mx.random.seed(42)
>>> a = mx.random.uniform(shape=(2,))
>>> mx.random.seed(42)
>>> bool((mx.random.uniform(shape=(2,)) == a).asnumpy().all())
True
"""

from __future__ import annotations

import hashlib
import numbers
import threading
from typing import Any

import numpy as np

from .base import TapegradError
from .core import STATE

#: MXNet's ``mx.random`` samplers: those of ``mx.nd.random`` (:mod:`tapegrad.ndarray.random`)
_SAMPLERS = (
    "uniform", "normal", "randn", "randint", "poisson", "exponential", "gamma",
    "negative_binomial", "generalized_negative_binomial", "multinomial", "shuffle",
)  # fmt: skip

__all__ = ["seed", "generator", "SeedError", *_SAMPLERS]


class SeedError(TapegradError, ValueError, TypeError):
    """A seed that is not a non-negative integer."""


_LOCK = threading.Lock()
_GLOBAL = [None, 0]  # [the global seed (None: unseeded), epoch: counts the seed() calls]
_LOCAL = threading.local()  # .gen, .epoch: this thread's generator and the epoch it follows


def _thread_key(name: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(name.encode("utf-8", "replace"), digest_size=8).digest(), "little"
    )


def _make(seed_value: int | None) -> np.random.Generator:
    """This thread's generator for the global seed ``seed_value``."""
    if seed_value is None:
        return np.random.default_rng()
    t = threading.current_thread()
    if t is threading.main_thread():
        return np.random.default_rng(seed_value)
    return np.random.default_rng(
        np.random.SeedSequence(seed_value, spawn_key=(_thread_key(t.name),))
    )


def seed(seed_state: int, ctx: Any = "all") -> None:
    """Set the global seed: every thread's generator starts again from it (each thread has
    its own stream, see the module's documentation). ``ctx`` is accepted for MXNet
    compatibility (there is only the CPU)."""
    if isinstance(seed_state, bool) or not isinstance(seed_state, numbers.Integral):
        raise SeedError(
            f"mx.random.seed: the seed must be an int, got {seed_state!r} "
            f"({type(seed_state).__name__}). Fix: pass an integer such as 42."
        )
    value = int(seed_state)
    if value < 0:
        raise SeedError(
            f"mx.random.seed: the seed must be >= 0, got {value}. Fix: pass a non-negative integer."
        )
    with _LOCK:
        _GLOBAL[0] = value
        _GLOBAL[1] += 1
        epoch = _GLOBAL[1]
    _LOCAL.gen = _make(value)
    _LOCAL.epoch = epoch


def generator() -> np.random.Generator:
    """The calling thread's NumPy ``Generator``, which every tapegrad sampler uses."""
    tracer = STATE.flags.tracing
    if tracer is not None:  # a draw a compiled function would freeze: run eagerly instead
        tracer.fail("a random number drawn outside an impure primitive")
    loc = _LOCAL
    gen = getattr(loc, "gen", None)
    if gen is not None and loc.epoch == _GLOBAL[1]:
        return gen
    with _LOCK:
        value, epoch = _GLOBAL
    gen = loc.gen = _make(value)
    loc.epoch = epoch
    return gen


def __getattr__(name: str) -> Any:
    # the samplers live with the NDArray (tapegrad.ndarray.random), which imports this module
    if name in _SAMPLERS:
        from .ndarray import random as _nd_random

        f = getattr(_nd_random, name)
        globals()[name] = f
        return f
    raise AttributeError(f"module 'tapegrad.random' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_SAMPLERS))
