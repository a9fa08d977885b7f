"""Basic layers (MXNet 1.x ``gluon/nn/basic_layers.py``): Dense, Dropout, BatchNorm,
LayerNorm, Embedding, Flatten, Lambda, HybridLambda.

Every forward is a composition of differentiable ``mx.nd`` operators, so gradients of any
order exist with respect to inputs and parameters alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import autograd
from ... import ndarray as nd
from ...base import ShapeError
from ..block import Block, HybridBlock, HybridSequential, Sequential
from .activations import Activation

__all__ = [
    "Sequential",
    "HybridSequential",
    "Dense",
    "Dropout",
    "Embedding",
    "BatchNorm",
    "LayerNorm",
    "Flatten",
    "Lambda",
    "HybridLambda",
]


class Dense(HybridBlock):
    """Fully connected layer: ``activation(dot(x, weight.T) + bias)``.

    Args:
        units: output size.
        activation: name of an activation (see :class:`Activation`); None means linear.
        use_bias: whether to add a bias.
        flatten: collapse all input axes but the first (True) or apply to the last axis only.
        dtype: parameter dtype.
        weight_initializer, bias_initializer: initializers (bias: 'zeros').
        in_units: input size; 0 means "infer at the first forward" (deferred init).

    Parameters: ``weight`` of shape (units, in_units), ``bias`` of shape (units,).

    >>> import tapegrad as mx
    >>> layer = mx.gluon.nn.Dense(3, activation='tanh')
    >>> layer.initialize()
    >>> layer(mx.nd.ones((2, 5))).shape, layer.weight.shape
    ((2, 3), (3, 5))
    >>> layer
    Dense(5 -> 3, Activation(tanh))
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        flatten: bool = True,
        dtype: Any = "float32",
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_units: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._flatten = flatten
        with self.name_scope():
            self._units = units
            self._in_units = in_units
            self.weight = self.params.get(
                "weight",
                shape=(units, in_units),
                init=weight_initializer,
                dtype=dtype,
                allow_deferred_init=True,
            )
            if use_bias:
                self.bias = self.params.get(
                    "bias",
                    shape=(units,),
                    init=bias_initializer,
                    dtype=dtype,
                    allow_deferred_init=True,
                )
            else:
                self.bias = None
            if activation is not None:
                self.act = Activation(activation, prefix=activation + "_")
            else:
                self.act = None

    def _check_input(self, x: Any) -> None:
        if len(x.shape) == 0:
            raise ShapeError(
                f"Dense '{self.name}': input of shape () is 0-d; Dense needs a batch axis "
                "(flatten=True: (batch, features...); flatten=False: (..., features)). Fix: "
                "pass x.reshape((1, 1)) for a single value, or x.reshape((1, -1)) for one "
                "sample."
            )

    def infer_shape(self, x: Any, *args: Any) -> None:
        """in_units from the input: all axes but the first (flatten) or the last axis."""
        self._check_input(x)
        in_units = int(np.prod(x.shape[1:])) if self._flatten else x.shape[-1]
        self.weight.shape = (self._units, in_units)

    def hybrid_forward(self, F: Any, x: Any, weight: Any, bias: Any = None) -> Any:
        self._check_input(x)
        try:
            out = F.FullyConnected(
                x, weight, bias, no_bias=bias is None, num_hidden=self._units, flatten=self._flatten
            )
        except ShapeError as e:
            raise ShapeError(f"Dense '{self.name}': {e}") from None
        if self.act is not None:
            out = self.act(out)
        return out

    def __repr__(self) -> str:
        shape = self.weight.shape
        layout = f"{shape[1] if shape[1] else None} -> {shape[0]}"
        return f"{type(self).__name__}({layout}, {self.act if self.act else 'linear'})"


class Dropout(HybridBlock):
    """Zeroes a fraction ``rate`` of the inputs and scales the rest by ``1 / (1 - rate)``
    in training mode (inside ``autograd.record()`` or ``train_mode()``); identity otherwise.

    Args:
        rate: fraction of inputs to drop, in [0, 1).
        axes: axes along which one mask is shared (e.g. ``(1,)``).

    >>> import tapegrad as mx
    >>> drop = mx.gluon.nn.Dropout(0.5)
    >>> drop(mx.nd.ones((2, 2))).asnumpy().tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    >>> with mx.autograd.record():
    ...     y = drop(mx.nd.ones((1000,)))
    >>> sorted(set(y.asnumpy().tolist()))
    [0.0, 2.0]
    """

    def __init__(self, rate: float, axes: tuple = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Dropout: rate={rate} must be between 0 and 1.")
        self._rate = rate
        self._axes = axes

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        if self._rate > 0:
            return F.Dropout(x, p=self._rate, axes=self._axes)
        return x.copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p = {self._rate}, axes={self._axes})"


def _check_axis(layer: HybridBlock, x: Any, axis: int, what: str, fix: str) -> int:
    """``axis`` of ``x`` made non-negative, or a ShapeError naming the layer."""
    ndim = len(x.shape)
    if not -ndim <= axis < ndim:
        raise ShapeError(
            f"{type(layer).__name__} '{layer.name}': input of shape {tuple(x.shape)} has no "
            f"{what} axis {axis}. Fix: {fix}"
        )
    return axis % ndim


def _bcast_shape(ndim: int, axis: int, size: int) -> tuple:
    shape = [1] * ndim
    shape[axis] = size
    return tuple(shape)


class BatchNorm(HybridBlock):
    """Batch normalization (Ioffe & Szegedy, 2015) over all axes but ``axis``.

    In training mode (inside ``autograd.record()``) the batch mean and (biased) variance
    normalize the input, and the running statistics are updated as MXNet does::

        running_mean = running_mean * momentum + batch_mean * (1 - momentum)
        running_var  = running_var  * momentum + batch_var  * (1 - momentum)

    In predict mode, or with ``use_global_stats=True``, the running statistics are used and
    left unchanged. ``out = (x - mean) / sqrt(var + epsilon) * gamma + beta``; with
    ``scale=False`` gamma is fixed to 1, with ``center=False`` beta is not trained.

    Parameters: ``gamma`` (ones), ``beta`` (zeros), ``running_mean`` (zeros),
    ``running_var`` (ones), each of shape (in_channels,).

    >>> import tapegrad as mx
    >>> bn = mx.gluon.nn.BatchNorm(); bn.initialize()
    >>> x = mx.nd.array([[1.0, 2.0], [3.0, 6.0]])
    >>> with mx.autograd.record():
    ...     y = bn(x)
    >>> bn.running_mean.data().asnumpy().tolist()
    [0.20000000298023224, 0.4000000059604645]
    """

    def __init__(
        self,
        axis: int = 1,
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        use_global_stats: bool = False,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        running_mean_initializer: Any = "zeros",
        running_variance_initializer: Any = "ones",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._kwargs = {
            "axis": axis,
            "eps": epsilon,
            "momentum": momentum,
            "fix_gamma": not scale,
            "use_global_stats": use_global_stats,
        }
        self._axis = axis
        self._momentum = momentum
        self._epsilon = epsilon
        self._scale = scale
        self._use_global_stats = use_global_stats
        if in_channels != 0:
            self.in_channels = in_channels
        self.gamma = self.params.get(
            "gamma",
            grad_req="write" if scale else "null",
            shape=(in_channels,),
            init=gamma_initializer,
            allow_deferred_init=True,
            differentiable=scale,
        )
        self.beta = self.params.get(
            "beta",
            grad_req="write" if center else "null",
            shape=(in_channels,),
            init=beta_initializer,
            allow_deferred_init=True,
            differentiable=center,
        )
        self.running_mean = self.params.get(
            "running_mean",
            grad_req="null",
            shape=(in_channels,),
            init=running_mean_initializer,
            allow_deferred_init=True,
            differentiable=False,
        )
        self.running_var = self.params.get(
            "running_var",
            grad_req="null",
            shape=(in_channels,),
            init=running_variance_initializer,
            allow_deferred_init=True,
            differentiable=False,
        )

    def _channel_axis(self, x: Any) -> int:
        return _check_axis(
            self,
            x,
            self._axis,
            "channel",
            "pass input with a batch and a channel axis, e.g. (batch, channels) or "
            "(batch, channels, height, width), or set axis.",
        )

    def infer_shape(self, x: Any, *args: Any) -> None:
        """in_channels is the size of ``axis`` of the input."""
        channels = x.shape[self._channel_axis(x)]
        for p in (self.gamma, self.beta, self.running_mean, self.running_var):
            p.shape = (channels,)

    def cast(self, dtype: Any) -> None:
        """Cast; float16 is kept as float32 for the statistics, as in MXNet."""
        if np.dtype(dtype).name == "float16":
            dtype = "float32"
        super().cast(dtype)

    def hybrid_forward(
        self, F: Any, x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any
    ) -> Any:
        axis = self._channel_axis(x)
        channels = x.shape[axis]
        if gamma.shape != (channels,):
            raise ShapeError(
                f"BatchNorm '{self.name}': input of shape {x.shape} has {channels} channels "
                f"on axis {self._axis} but the layer has {gamma.shape[0]}. Fix: check "
                "in_channels and axis."
            )
        bshape = _bcast_shape(x.ndim, axis, channels)
        red = tuple(i for i in range(x.ndim) if i != axis)
        if autograd.is_training() and not self._use_global_stats:
            mean = F.mean(x, axis=red, keepdims=True)
            centered = x - mean
            var = F.mean(F.square(centered), axis=red, keepdims=True)
            m = self._momentum
            with autograd.pause():
                running_mean[:] = running_mean * m + mean.detach().reshape((channels,)) * (1 - m)
                running_var[:] = running_var * m + var.detach().reshape((channels,)) * (1 - m)
        else:
            centered = x - running_mean.reshape(bshape)
            var = running_var.reshape(bshape)
        out = centered / F.sqrt(var + self._epsilon)
        if self._scale:
            out = out * gamma.reshape(bshape)
        return out + beta.reshape(bshape)

    def __repr__(self) -> str:
        in_channels = self.gamma.shape[0]
        content = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({content}, in_channels={in_channels or None})"


class LayerNorm(HybridBlock):
    """Layer normalization (Ba et al., 2016) along ``axis``:
    ``out = (x - mean) / sqrt(var + epsilon) * gamma + beta`` with the mean and (biased)
    variance taken over ``axis`` only.

    >>> import tapegrad as mx
    >>> ln = mx.gluon.nn.LayerNorm(); ln.initialize()
    >>> [round(v, 4) for v in ln(mx.nd.array([[1, 2, 3, 4, 5]])).asnumpy()[0].tolist()]
    [-1.4142, -0.7071, 0.0, 0.7071, 1.4142]
    """

    def __init__(
        self,
        axis: int = -1,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        in_channels: int = 0,
        prefix: str | None = None,
        params: Any = None,
    ) -> None:
        super().__init__(prefix=prefix, params=params)
        self._kwargs = {"eps": epsilon, "axis": axis, "center": center, "scale": scale}
        self._axis = axis
        self._epsilon = epsilon
        self._center = center
        self._scale = scale
        self.gamma = self.params.get(
            "gamma",
            grad_req="write" if scale else "null",
            shape=(in_channels,),
            init=gamma_initializer,
            allow_deferred_init=True,
        )
        self.beta = self.params.get(
            "beta",
            grad_req="write" if center else "null",
            shape=(in_channels,),
            init=beta_initializer,
            allow_deferred_init=True,
        )

    def _norm_axis(self, x: Any) -> int:
        return _check_axis(
            self, x, self._axis, "normalized", "pass input with that axis, or set axis."
        )

    def infer_shape(self, x: Any, *args: Any) -> None:
        """in_channels is the size of ``axis`` of the input."""
        channels = x.shape[self._norm_axis(x)]
        self.gamma.shape = (channels,)
        self.beta.shape = (channels,)

    def hybrid_forward(self, F: Any, data: Any, gamma: Any, beta: Any) -> Any:
        axis = self._norm_axis(data)
        channels = data.shape[axis]
        if gamma.shape != (channels,):
            raise ShapeError(
                f"LayerNorm '{self.name}': input of shape {data.shape} has {channels} "
                f"features on axis {self._axis} but the layer has {gamma.shape[0]}. Fix: check "
                "in_channels and axis."
            )
        bshape = _bcast_shape(data.ndim, axis, channels)
        mean = F.mean(data, axis=axis, keepdims=True)
        centered = data - mean
        var = F.mean(F.square(centered), axis=axis, keepdims=True)
        out = centered / F.sqrt(var + self._epsilon)
        return out * gamma.reshape(bshape) + beta.reshape(bshape)

    def __repr__(self) -> str:
        content = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({content}, in_channels={self.gamma.shape[0]})"


class Embedding(HybridBlock):
    """Maps integer indices to rows of a learned (input_dim, output_dim) matrix.

    Input of shape (d1, ..., dk) gives output (d1, ..., dk, output_dim); indices outside
    [0, input_dim) are clipped.

    >>> import tapegrad as mx
    >>> emb = mx.gluon.nn.Embedding(10, 4); emb.initialize()
    >>> emb(mx.nd.array([[1, 2, 3]])).shape
    (1, 3, 4)
    >>> emb
    Embedding(10 -> 4, float32)
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        dtype: Any = "float32",
        weight_initializer: Any = None,
        sparse_grad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._kwargs = {
            "input_dim": input_dim,
            "output_dim": output_dim,
            "dtype": dtype,
            "sparse_grad": sparse_grad,
        }
        self.weight = self.params.get(
            "weight",
            shape=(input_dim, output_dim),
            init=weight_initializer,
            dtype=dtype,
            allow_deferred_init=True,
        )

    def hybrid_forward(self, F: Any, x: Any, weight: Any) -> Any:
        return F.Embedding(
            x, weight, input_dim=self._kwargs["input_dim"], output_dim=self._kwargs["output_dim"]
        )

    def __repr__(self) -> str:
        k = self._kwargs
        return f"{type(self).__name__}({k['input_dim']} -> {k['output_dim']}, {k['dtype']})"


class Flatten(HybridBlock):
    """Reshapes (N, d1, ..., dk) to (N, d1 * ... * dk).

    >>> import tapegrad as mx
    >>> mx.gluon.nn.Flatten()(mx.nd.ones((2, 3, 4))).shape
    (2, 12)
    """

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return F.flatten(x)

    def __repr__(self) -> str:
        return type(self).__name__


def _callable_name(f: Any) -> str:
    name = getattr(f, "__name__", None) or getattr(f, "name", None)
    return name if isinstance(name, str) else type(f).__name__


class Lambda(Block):
    """Wraps a function (or the name of an ``mx.nd`` operator) as a Block.

    >>> import tapegrad as mx
    >>> mx.gluon.nn.Lambda('tanh')(mx.nd.zeros((2,))).asnumpy().tolist()
    [0.0, 0.0]
    >>> mx.gluon.nn.Lambda(lambda x: x * 2)(mx.nd.ones((1,))).asnumpy().tolist()
    [2.0]
    """

    def __init__(self, function: Any, prefix: str | None = None) -> None:
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            if not hasattr(nd, function):
                raise ValueError(
                    f"Lambda: function name '{function}' is not found in "
                    "ndarray. Fix: pass an mx.nd operator name or a callable."
                )
            self._func_impl = getattr(nd, function)
            self._func_name = function
        elif callable(function):
            self._func_impl = function
            self._func_name = _callable_name(function)
        else:
            raise ValueError(
                f"Unrecognized function in lambda: {function} of type {type(function)}"
            )

    def forward(self, *args: Any) -> Any:
        return self._func_impl(*args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._func_name})"


class HybridLambda(HybridBlock):
    """Wraps ``function(F, x, *args)`` (or the name of an ``mx.nd`` operator) as a
    HybridBlock.

    >>> import tapegrad as mx
    >>> blk = mx.gluon.nn.HybridLambda(lambda F, x: F.LeakyReLU(x, slope=0.1))
    >>> blk(mx.nd.array([-1.0], dtype='float64')).asnumpy().tolist()
    [-0.1]
    """

    def __init__(self, function: Any, prefix: str | None = None) -> None:
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            if not hasattr(nd, function):
                raise ValueError(
                    f"HybridLambda: function name '{function}' is not found in "
                    "ndarray. Fix: pass an mx.nd operator name or a callable."
                )
            op = getattr(nd, function)
            self._func = lambda F, *args: op(*args)
            self._func_name = function
        elif callable(function):
            self._func = function
            self._func_name = _callable_name(function)
        else:
            raise ValueError(
                f"Unrecognized function in lambda: {function} of type {type(function)}"
            )

    def hybrid_forward(self, F: Any, x: Any, *args: Any) -> Any:
        return self._func(F, x, *args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._func_name})"
