"""``mx.nd.random``: the samplers of :mod:`tapegrad.random` under MXNet's other name."""

from ..random import (  # noqa: F401
    exponential,
    multinomial,
    normal,
    poisson,
    randint,
    randn,
    seed,
    shuffle,
    uniform,
)
