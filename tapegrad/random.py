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

import functools
import hashlib
import numbers
import threading
from typing import Any

import numpy as np

from .base import TapegradError
from .core import STATE, ZERO, primitive

__all__ = [
    "seed",
    "generator",
    "SeedError",
    "uniform",
    "normal",
    "randn",
    "randint",
    "shuffle",
    "exponential",
    "poisson",
    "multinomial",
]


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


def _out(x: np.ndarray, dtype: Any, out: Any = None):
    from .ndarray.ndarray import NDArray, _dtype

    arr = x.astype(_dtype(dtype), copy=False)
    if out is not None:
        out[:] = arr
        return out
    return NDArray(arr)


def _shape(shape: Any) -> tuple:
    if shape is None:
        return (1,)
    return (shape,) if isinstance(shape, int) else tuple(shape)


def uniform(
    low: float = 0.0,
    high: float = 1.0,
    shape: Any = (1,),
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
):
    """Samples from U[low, high) (MXNet: ``nd.random.uniform``)."""
    return _out(generator().uniform(low, high, _shape(shape)), dtype, out)


def normal(
    loc: float = 0.0,
    scale: float = 1.0,
    shape: Any = (1,),
    dtype: Any = None,
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
):
    """Samples from N(loc, scale^2)."""
    return _out(generator().normal(loc, scale, _shape(shape)), dtype, out)


def randn(*shape: int, loc: float = 0.0, scale: float = 1.0, dtype: Any = None, **kwargs: Any):
    """Standard normal samples of the given shape."""
    return normal(loc, scale, shape or (1,), dtype)


def randint(
    low: int,
    high: int,
    shape: Any = (1,),
    dtype: Any = "int32",
    ctx: Any = None,
    out: Any = None,
    **kwargs: Any,
):
    """Integers uniform in [low, high)."""
    return _out(generator().integers(low, high, _shape(shape)), dtype, out)


def exponential(scale: float = 1.0, shape: Any = (1,), dtype: Any = None, **kwargs: Any):
    """Exponential samples with the given scale."""
    return _out(generator().exponential(scale, _shape(shape)), dtype)


def poisson(lam: float = 1.0, shape: Any = (1,), dtype: Any = None, **kwargs: Any):
    """Poisson samples."""
    return _out(generator().poisson(lam, _shape(shape)).astype(np.float64), dtype)


def shuffle(data: Any, **kwargs: Any):
    """A copy of ``data`` with its first axis shuffled."""
    from .ndarray.ndarray import NDArray

    arr = np.array(data.asnumpy() if isinstance(data, NDArray) else data)
    generator().shuffle(arr)
    return NDArray(arr)


def multinomial(
    data: Any, shape: Any = None, get_prob: bool = False, dtype: Any = "int32", **kwargs: Any
):
    """Sample class indices from the probabilities in the last axis of ``data``."""
    from .ndarray.ndarray import NDArray

    p = np.asarray(data.asnumpy() if isinstance(data, NDArray) else data, dtype=np.float64)
    n = int(np.prod(_shape(shape))) if shape is not None else 1
    flat = p.reshape(-1, p.shape[-1])
    cum = np.cumsum(flat, axis=1)
    u = generator().random((flat.shape[0], n)) * cum[:, -1:]
    idx = np.stack([np.searchsorted(cum[i], u[i], side="right") for i in range(len(cum))])
    out_shape = p.shape[:-1] + (_shape(shape) if shape is not None else ())
    return NDArray(idx.reshape(out_shape).astype(dtype))


# ------------------------------------------------------------- samplers in compiled code
# While a function is traced for compilation (tapegrad.trace), a sampler is recorded as one
# impure primitive whose implementation calls the sampler again: the compiled code draws new
# numbers at every call. Samplers given out= or traced arrays as parameters make the trace
# fall back to eager execution (generator() does the same for any other draw).
_sample = primitive("random_sample", lambda *, draw: draw(), [], ZERO, impure=True)


def _draw(fn: Any, args: tuple, kwargs: dict) -> Any:
    return fn(*args, **kwargs)._data


def _compiled_anew(fn: Any) -> Any:
    @functools.wraps(fn)
    def sampler(*args: Any, **kwargs: Any) -> Any:
        tracer = STATE.flags.tracing
        if tracer is None:
            return fn(*args, **kwargs)
        if kwargs.get("out") is not None or any(
            getattr(a, "_node", None) is not None for a in (*args, *kwargs.values())
        ):
            tracer.fail(f"random.{fn.__name__} with out= or with traced arrays as parameters")
        return _sample.call(draw=functools.partial(_draw, fn, args, kwargs))

    return sampler


for _name in ("uniform", "normal", "randn", "randint", "exponential", "poisson", "multinomial"):
    globals()[_name] = _compiled_anew(globals()[_name])
