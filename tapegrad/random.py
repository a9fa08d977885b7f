"""The global random number generator: ``mx.random.seed`` and sampling functions.

All randomness in tapegrad (initializers, Dropout, DataLoader shuffling, ``nd.random``)
draws from :func:`generator`, so one ``seed`` call makes a run reproducible.

>>> import tapegrad as mx
>>> mx.random.seed(42)
>>> a = mx.random.uniform(shape=(2,))
>>> mx.random.seed(42)
>>> bool((mx.random.uniform(shape=(2,)) == a).asnumpy().all())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "seed",
    "generator",
    "uniform",
    "normal",
    "randn",
    "randint",
    "shuffle",
    "exponential",
    "poisson",
    "multinomial",
]

_GEN = [np.random.default_rng()]


def seed(seed_state: int, ctx: Any = "all") -> None:
    """Seed the global generator (``ctx`` is accepted for MXNet compatibility)."""
    _GEN[0] = np.random.default_rng(int(seed_state))


def generator() -> np.random.Generator:
    """The global NumPy ``Generator`` every tapegrad sampler uses."""
    return _GEN[0]


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
