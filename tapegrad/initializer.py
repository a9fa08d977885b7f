"""Weight initializers (``mx.init`` / ``mx.initializer``), with MXNet 1.x semantics.

An initializer fills an NDArray in place. Gluon calls it as
``global_init(InitDesc(name, {'__init__': param_init}), arr)``: when the descriptor carries
an ``__init__`` attribute (a Parameter's own initializer, or the global one standing in for
it), that initializer's ``_init_weight`` fills the array whatever its name. A descriptor
without ``__init__`` dispatches on the name's ending, as MXNet does: ``weight`` ->
``_init_weight``, ``bias``/``beta`` -> 0, ``gamma`` -> 1; the legacy string call
``init('fc_bias', arr)`` also knows ``running_mean``/``moving_mean`` (0) and
``running_var``/``moving_var`` (1).

All random draws use tapegrad's global generator, so ``mx.random.seed`` makes them
reproducible.

>>> import tapegrad as mx
>>> arr = mx.nd.zeros((2, 3))
>>> mx.init.Constant(0.5)(mx.init.InitDesc('fc_weight'), arr)
>>> arr.asnumpy()[0].tolist()
[0.5, 0.5, 0.5]
>>> mx.init.Constant(0.5)(mx.init.InitDesc('fc_bias'), arr)  # name dispatch: bias -> 0
>>> arr.asnumpy()[0].tolist()
[0.0, 0.0, 0.0]
>>> mx.init.create('xavier', magnitude=2).magnitude
2.0
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable
from math import sqrt
from typing import Any

import numpy as np

from . import random as _random

__all__ = [
    "InitDesc",
    "Initializer",
    "register",
    "alias",
    "create",
    "Load",
    "Mixed",
    "Zero",
    "One",
    "Constant",
    "Uniform",
    "Normal",
    "Orthogonal",
    "Xavier",
    "MSRAPrelu",
    "LSTMBias",
]

_REGISTRY: dict[str, type] = {}


class InitDesc(str):
    """Name of the array to initialize, plus attributes (MXNet's ``InitDesc``).

    ``attrs['__init__']`` names the initializer chosen for this array (an Initializer, a
    registered name or a JSON dump); ``global_init`` is the fallback initializer.

    >>> d = InitDesc('dense0_weight', {'__init__': 'zeros'})
    >>> str(d), d.attrs['__init__']
    ('dense0_weight', 'zeros')
    """

    attrs: dict
    global_init: Initializer | None

    def __new__(
        cls, name: str, attrs: dict | None = None, global_init: Initializer | None = None
    ) -> InitDesc:
        ret = super().__new__(cls, name)
        ret.attrs = attrs or {}
        ret.global_init = global_init
        return ret


class Initializer:
    """Base class of initializers. Subclasses override ``_init_weight(name, arr)``.

    >>> import tapegrad as mx
    >>> @mx.init.register
    ... class Halves(mx.init.Initializer):
    ...     def _init_weight(self, name, arr):
    ...         arr[:] = 0.5
    >>> w = mx.gluon.Parameter('w', shape=(2,), init='halves')
    >>> w.initialize()
    >>> w.data().asnumpy().tolist()
    [0.5, 0.5]
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._verbose = False
        self._print_func: Callable | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        """Initializers are equal when they are of the same class with the same arguments
        (as in MXNet), so blocks sharing a Parameter may each name ``Xavier()``."""
        if not isinstance(other, Initializer):
            return NotImplemented
        return type(self) is type(other) and _same_kwargs(self._kwargs, other._kwargs)

    def __hash__(self) -> int:
        return hash(type(self))  # equal initializers have the same class

    def set_verbosity(
        self, verbose: bool = False, print_func: Callable | None = None
    ) -> Initializer:
        """Log every initialized array (with ``print_func(arr)``, default its RMS value)."""
        self._verbose = verbose
        if print_func is None:

            def print_func(x: Any) -> str:
                a = x.asnumpy()
                return str(float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))))

        self._print_func = print_func
        return self

    def _verbose_print(self, desc: str, init: Any, arr: Any) -> None:
        if self._verbose and self._print_func:
            logging.info("Initialized %s as %s: %s", desc, init, self._print_func(arr))

    def dumps(self) -> str:
        """JSON description ``'["name", {kwargs}]'``, readable by :func:`create`."""
        return json.dumps([type(self).__name__.lower(), self._kwargs])

    def __call__(self, desc: Any, arr: Any) -> None:
        """Fill ``arr`` in place for the array described by ``desc``."""
        if not isinstance(desc, InitDesc):
            self._legacy_init(desc, arr)
            return
        if desc.global_init is None:
            desc.global_init = self
        init = desc.attrs.get("__init__", "")
        if init:
            create(init)._init_weight(desc, arr)
            self._verbose_print(desc, init, arr)
            return
        for ending, method in (
            ("weight", self._init_weight),
            ("bias", self._init_bias),
            ("gamma", self._init_gamma),
            ("beta", self._init_beta),
        ):
            if desc.endswith(ending):
                method(desc, arr)
                self._verbose_print(desc, ending, arr)
                return
        self._init_default(desc, arr)

    def _legacy_init(self, name: str, arr: Any) -> None:
        """``init('name', arr)``: MXNet's deprecated call, dispatching on the name."""
        warnings.warn(
            "Calling an initializer with init(str, NDArray) is deprecated; use "
            "init(mx.init.InitDesc(name), arr) instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        if not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a str, got {type(name)}")
        table = (
            ("bias", self._init_bias),
            ("gamma", self._init_gamma),
            ("beta", self._init_beta),
            ("weight", self._init_weight),
            ("moving_mean", self._init_zero),
            ("running_mean", self._init_zero),
            ("moving_var", self._init_one),
            ("running_var", self._init_one),
            ("moving_inv_var", self._init_zero),
            ("moving_avg", self._init_zero),
        )
        for ending, method in table:
            if name.endswith(ending):
                method(name, arr)
                return
        self._init_default(name, arr)

    def _init_zero(self, _: str, arr: Any) -> None:
        arr[:] = 0.0

    def _init_one(self, _: str, arr: Any) -> None:
        arr[:] = 1.0

    def _init_bias(self, _: str, arr: Any) -> None:
        arr[:] = 0.0

    def _init_gamma(self, _: str, arr: Any) -> None:
        arr[:] = 1.0

    def _init_beta(self, _: str, arr: Any) -> None:
        arr[:] = 0.0

    def _init_weight(self, name: str, arr: Any) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} does not implement _init_weight(name, arr); subclasses "
            "of Initializer must override it."
        )

    def _init_default(self, name: str, _: Any) -> None:
        raise ValueError(
            f"Unknown initialization pattern for '{name}'. Default initialization is limited "
            'to names ending in "weight", "bias", "gamma" (1.0) and "beta" (0.0). Fix: give '
            "the parameter its own initializer (Parameter(..., init=mx.init.Zero()) or "
            "params.get(name, init=...))."
        )


def _same_value(a: Any, b: Any) -> bool:
    if hasattr(a, "asnumpy") or isinstance(a, np.ndarray):
        a = a.asnumpy() if hasattr(a, "asnumpy") else a
        b = b.asnumpy() if hasattr(b, "asnumpy") else b
        return bool(np.array_equal(a, np.asarray(b)))
    if hasattr(b, "asnumpy") or isinstance(b, np.ndarray):
        return _same_value(b, a)
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # a comparison without a truth value
        return a is b


def _same_kwargs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)


def register(klass: type) -> type:
    """Register an Initializer subclass under its lower-cased class name."""
    if not (isinstance(klass, type) and issubclass(klass, Initializer)):
        raise TypeError(f"register: {klass!r} is not a subclass of mx.init.Initializer")
    name = klass.__name__.lower()
    if name in _REGISTRY and _REGISTRY[name] is not klass:
        warnings.warn(
            f"New initializer {klass.__module__}.{klass.__name__} is overriding "
            f"existing initializer {_REGISTRY[name].__name__} registered as "
            f"'{name}'",
            UserWarning,
            stacklevel=2,
        )
    _REGISTRY[name] = klass
    return klass


def alias(*aliases: str) -> Callable[[type], type]:
    """Decorator registering extra names for an initializer class."""

    def reg(klass: type) -> type:
        for name in aliases:
            _REGISTRY[name.lower()] = klass
        return klass

    return reg


def create(init: Any, *args: Any, **kwargs: Any) -> Initializer:
    """An Initializer from an instance, a registered name, or a JSON ``dumps()`` string.

    >>> create('zeros')
    Zero()
    >>> create('normal', sigma=0.5)
    Normal(sigma=0.5)
    >>> create('["uniform", {"scale": 0.1}]')
    Uniform(scale=0.1)
    """
    if isinstance(init, Initializer):
        if args or kwargs:
            raise ValueError(
                f"create: {init!r} is already an initializer; extra arguments "
                f"{args or ''}{kwargs or ''} cannot be applied to it"
            )
        return init
    if isinstance(init, type) and issubclass(init, Initializer):
        return init(*args, **kwargs)
    if not isinstance(init, str):
        raise TypeError(
            f"create: cannot make an initializer from {init!r} of type "
            f"{type(init).__name__}; pass an mx.init.Initializer or a name such "
            f"as 'xavier'"
        )
    if init.startswith("["):
        name, saved = json.loads(init)
        kwargs = {**saved, **kwargs}
    else:
        name = init
    key = name.lower()
    if key not in _REGISTRY:
        raise ValueError(
            f"Cannot find initializer '{name}'. Registered initializers: "
            f"{', '.join(sorted(_REGISTRY))}. Fix: use one of these names or "
            "register your class with @mx.init.register."
        )
    return _REGISTRY[key](*args, **kwargs)


class Load:
    """Initialize arrays from a file or dict of saved arrays, falling back to ``default_init``.

    Names starting with ``arg:`` or ``aux:`` are matched without that prefix.
    """

    def __init__(
        self, param: Any, default_init: Initializer | None = None, verbose: bool = False
    ) -> None:
        if isinstance(param, str):
            from .serialization import load

            param = load(param)
        if not isinstance(param, dict):
            raise TypeError("Load: expected a file of named arrays or a dict name -> array")
        self.param = {(k[4:] if k.startswith(("arg:", "aux:")) else k): v for k, v in param.items()}
        self.default_init = default_init
        self.verbose = verbose

    def __call__(self, name: str, arr: Any) -> None:
        if name in self.param:
            src = self.param[name]
            if tuple(arr.shape) != tuple(src.shape):
                raise ValueError(
                    f"Parameter '{name}' cannot be initialized from loading: "
                    f"shape mismatch, target {tuple(arr.shape)} vs loaded "
                    f"{tuple(src.shape)}"
                )
            arr[:] = src
            if self.verbose:
                logging.info("Initialized %s by loading", name)
            return
        if self.default_init is None:
            raise ValueError(
                f"Cannot initialize '{name}': not found in the loaded arrays and "
                "no default_init was given"
            )
        self.default_init(name, arr)
        if self.verbose:
            logging.info("Initialized %s by default", name)


class Mixed:
    """Pick the initializer of the first regular expression that matches the name.

    >>> init = Mixed(['bias', '.*'], [Zero(), Uniform(0.1)])
    """

    def __init__(self, patterns: list[str], initializers: list[Initializer]) -> None:
        if len(patterns) != len(initializers):
            raise ValueError("Mixed: patterns and initializers must have the same length")
        self.map = [(re.compile(p), create(i)) for p, i in zip(patterns, initializers)]

    def __call__(self, name: str, arr: Any) -> None:
        for prog, init in self.map:
            if prog.match(name):
                init(name, arr)
                return
        raise ValueError(
            f"Parameter name '{name}' did not match any pattern. Fix: add a "
            "'.*' pattern at the end with a default initializer."
        )


def _fill_uniform(arr: Any, low: float, high: float) -> None:
    arr[:] = _random.generator().uniform(low, high, tuple(arr.shape)).astype(arr.dtype)


def _fill_normal(arr: Any, loc: float, scale: float) -> None:
    arr[:] = _random.generator().normal(loc, scale, tuple(arr.shape)).astype(arr.dtype)


@register
@alias("zeros")
class Zero(Initializer):
    """Fills with 0 (registered as ``'zero'`` and ``'zeros'``).

    >>> import tapegrad as mx
    >>> w = mx.gluon.Parameter('w', shape=(2,), init=mx.init.Zero()); w.initialize()
    >>> w.data().asnumpy().tolist()
    [0.0, 0.0]
    """

    def _init_weight(self, _: str, arr: Any) -> None:
        arr[:] = 0


@register
@alias("ones")
class One(Initializer):
    """Fills with 1 (registered as ``'one'`` and ``'ones'``).

    >>> import tapegrad as mx
    >>> w = mx.gluon.Parameter('w', shape=(2,), init='ones'); w.initialize()
    >>> w.data().asnumpy().tolist()
    [1.0, 1.0]
    """

    def _init_weight(self, _: str, arr: Any) -> None:
        arr[:] = 1


@register
class Constant(Initializer):
    """Fills with ``value``: a scalar, or an array broadcastable to the parameter's shape.

    >>> import tapegrad as mx
    >>> w = mx.gluon.Parameter('w', shape=(2,), init=mx.init.Constant(3)); w.initialize()
    >>> w.data().asnumpy().tolist()
    [3.0, 3.0]
    """

    def __init__(self, value: Any) -> None:
        super().__init__(value=value)
        self.value = value

    def _init_weight(self, _: str, arr: Any) -> None:
        value = self.value
        if hasattr(value, "asnumpy"):
            value = value.asnumpy()
        arr[:] = value

    def dumps(self) -> str:
        value = self.value.asnumpy() if hasattr(self.value, "asnumpy") else self.value
        value = value.tolist() if isinstance(value, np.ndarray) else value
        return json.dumps([type(self).__name__.lower(), {"value": value}])


@register
class Uniform(Initializer):
    """Samples from U[-scale, scale]; MXNet's default ``scale`` is 0.07.

    >>> import tapegrad as mx
    >>> w = mx.gluon.Parameter('w', shape=(100,), init=mx.init.Uniform(0.1)); w.initialize()
    >>> bool(abs(w.data().asnumpy()).max() <= 0.1)
    True
    """

    def __init__(self, scale: float = 0.07) -> None:
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, _: str, arr: Any) -> None:
        _fill_uniform(arr, -self.scale, self.scale)


@register
class Normal(Initializer):
    """Samples from N(0, sigma^2); MXNet's default ``sigma`` is 0.01.

    >>> import tapegrad as mx
    >>> w = mx.gluon.Parameter('w', shape=(3,), init=mx.init.Normal(1.0)); w.initialize()
    >>> w.data().shape
    (3,)
    """

    def __init__(self, sigma: float = 0.01) -> None:
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _: str, arr: Any) -> None:
        _fill_normal(arr, 0.0, self.sigma)


@register
class Orthogonal(Initializer):
    """Scaled orthogonal matrix (Saxe et al. 2013) from uniform or normal samples.

    >>> import tapegrad as mx
    >>> w = mx.gluon.Parameter('w', shape=(3, 3), init=mx.init.Orthogonal(scale=1.0))
    >>> w.initialize()
    >>> import numpy as np; W = w.data().asnumpy()
    >>> bool(np.allclose(W @ W.T, np.eye(3), atol=1e-5))
    True
    """

    def __init__(self, scale: float = 1.414, rand_type: str = "uniform") -> None:
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, name: str, arr: Any) -> None:
        nout = arr.shape[0]
        nin = int(np.prod(arr.shape[1:]))
        gen = _random.generator()
        if self.rand_type == "uniform":
            tmp = gen.uniform(-1.0, 1.0, (nout, nin))
        elif self.rand_type == "normal":
            tmp = gen.normal(0.0, 1.0, (nout, nin))
        else:
            raise ValueError(
                f"Orthogonal: unknown rand_type {self.rand_type!r}; use 'uniform' or 'normal'"
            )
        u, _, v = np.linalg.svd(tmp, full_matrices=False)
        res = u if u.shape == tmp.shape else v
        arr[:] = self.scale * res.reshape(arr.shape)


@register
class Xavier(Initializer):
    """Xavier/Glorot initialization.

    ``scale = sqrt(magnitude / factor)`` with ``factor`` = ``(fan_in + fan_out) / 2``
    (``'avg'``), ``fan_in`` (``'in'``) or ``fan_out`` (``'out'``), where for a weight of shape
    ``(out, in, *k)`` ``fan_in = in * prod(k)`` and ``fan_out = out * prod(k)``. Samples are
    U[-scale, scale] (``rnd_type='uniform'``) or N(0, scale^2) (``'gaussian'``).

    >>> import tapegrad as mx
    >>> w = mx.gluon.Parameter('w', shape=(4, 6), init=mx.init.Xavier()); w.initialize()
    >>> bool(abs(w.data().asnumpy()).max() <= (3 / 5) ** 0.5)
    True
    """

    def __init__(
        self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3
    ) -> None:
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def _init_weight(self, name: str, arr: Any) -> None:
        shape = tuple(arr.shape)
        if len(shape) < 2:
            raise ValueError(
                f"Xavier initializer cannot be applied to vector {name} of shape {shape}. It "
                "requires at least 2D. Fix: give this parameter its own initializer (e.g. "
                "init='zeros'), or use Uniform/Normal as the global initializer."
            )
        hw_scale = float(np.prod(shape[2:])) if len(shape) > 2 else 1.0
        fan_in, fan_out = shape[1] * hw_scale, shape[0] * hw_scale
        if self.factor_type == "avg":
            factor = (fan_in + fan_out) / 2.0
        elif self.factor_type == "in":
            factor = fan_in
        elif self.factor_type == "out":
            factor = fan_out
        else:
            raise ValueError(
                f"Xavier: incorrect factor_type {self.factor_type!r}; use 'avg', 'in' or 'out'"
            )
        scale = sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            _fill_uniform(arr, -scale, scale)
        elif self.rnd_type == "gaussian":
            _fill_normal(arr, 0.0, scale)
        else:
            raise ValueError(
                f"Xavier: unknown rnd_type {self.rnd_type!r}; use 'uniform' or 'gaussian'"
            )


@register
class MSRAPrelu(Xavier):
    """He/MSRA initialization: Gaussian Xavier with ``magnitude = 2 / (1 + slope^2)``.

    >>> MSRAPrelu(slope=0.0).magnitude
    2.0
    """

    def __init__(self, factor_type: str = "avg", slope: float = 0.25) -> None:
        magnitude = 2.0 / (1 + slope**2)
        super().__init__("gaussian", factor_type, magnitude)
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class LSTMBias(Initializer):
    """All zeros except the forget-gate quarter, set to ``forget_bias``.

    >>> import tapegrad as mx
    >>> b = mx.gluon.Parameter('b', shape=(8,), init=mx.init.LSTMBias(1.0)); b.initialize()
    >>> b.data().asnumpy().tolist()
    [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, forget_bias: float = 1.0) -> None:
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, name: str, arr: Any) -> None:
        arr[:] = 0.0
        num_hidden = int(arr.shape[0] / 4)
        arr[num_hidden : 2 * num_hidden] = self.forget_bias
