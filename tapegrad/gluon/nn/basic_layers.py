"""Basic layers (MXNet 1.x ``gluon/nn/basic_layers.py`` and ``gluon/contrib/nn``): Dense,
Dropout, BatchNorm (any number of axes), BatchNormReLU, SyncBatchNorm, InstanceNorm, GroupNorm,
LayerNorm, Embedding, Flatten, Lambda, HybridLambda, Identity, HybridConcatenate, Concatenate,
PixelShuffle1D/2D/3D.

Every forward is a composition of differentiable ``mx.nd`` operators, so gradients of any
order exist with respect to inputs and parameters alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import ndarray as nd
from ...base import ShapeError, TapegradError, fmt_shape
from ...ndarray import NDArray
from ..block import Block, HybridBlock, HybridSequential, Sequential
from .activations import Activation

__all__ = [
    "Sequential",
    "HybridSequential",
    "Dense",
    "Dropout",
    "Embedding",
    "BatchNorm",
    "BatchNormReLU",
    "SyncBatchNorm",
    "InstanceNorm",
    "GroupNorm",
    "LayerNorm",
    "Flatten",
    "Lambda",
    "HybridLambda",
    "Identity",
    "HybridConcatenate",
    "Concatenate",
    "PixelShuffle1D",
    "PixelShuffle2D",
    "PixelShuffle3D",
    "LayerArgumentError",
]


class LayerArgumentError(TapegradError, ValueError, AssertionError):
    """A layer built with arguments MXNet 1.9 refuses (it raised ``AssertionError``, so this
    is one too, and a ``ValueError``)."""


def _layer_error(layer: Block, e: Exception) -> Exception:
    """``e`` (an operator's error) with the layer's class and name in front of its message."""
    try:
        return type(e)(f"{type(layer).__name__} '{layer.name}': {e}")
    except Exception:  # an error class with another constructor: keep it as it is
        return e


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
        if isinstance(x, NDArray) and len(x.shape) == 0:
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
                x,
                weight,
                bias,
                no_bias=bias is None,
                num_hidden=self._units,
                flatten=self._flatten,
                name="fwd",
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
            return F.Dropout(x, p=self._rate, axes=self._axes, name="fwd")
        return x.copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p = {self._rate}, axes={self._axes})"


def _check_axis(layer: HybridBlock, x: Any, axis: int, what: str, fix: str) -> int:
    """``axis`` of ``x`` made non-negative, or a ShapeError naming the layer (a Symbol, whose
    shape is not known, keeps ``axis``)."""
    if not isinstance(x, NDArray):
        return axis
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
    """Batch normalization (Ioffe & Szegedy, 2015) over all axes but ``axis``, for inputs
    with any number of axes (``(N, C)``, ``(N, C, W)``, ``(N, C, H, W)``, ...): MXNet's
    ``BatchNorm`` operator with ``fix_gamma = not scale``.

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
        self._fuse_relu = False
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
        if hasattr(x, "shape"):
            channels = x.shape[self._channel_axis(x)]
            if gamma.shape != (channels,):
                raise ShapeError(
                    f"{type(self).__name__} '{self.name}': input of shape {x.shape} has "
                    f"{channels} channels on axis {self._axis} but the layer has "
                    f"{gamma.shape[0]}. Fix: check in_channels and axis."
                )
        try:
            out = F.BatchNorm(x, gamma, beta, running_mean, running_var, name="fwd", **self._kwargs)
        except TapegradError as e:
            raise _layer_error(self, e) from None
        return F.Activation(out, act_type="relu") if self._fuse_relu else out

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


class BatchNormReLU(BatchNorm):
    """:class:`BatchNorm` followed by ReLU (MXNet's fused ``BatchNormReLU``; the same
    parameters, names ``batchnormrelu<n>_gamma``...).

    >>> import tapegrad as mx
    >>> bn = mx.gluon.nn.BatchNormReLU(); bn.initialize()
    >>> [round(v, 3) for v in bn(mx.nd.array([[-1.0], [2.0]])).asnumpy().ravel().tolist()]
    [0.0, 2.0]
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fuse_relu = True


class SyncBatchNorm(BatchNorm):
    """MXNet's cross-device synchronized BatchNorm (``gluon.contrib.nn.SyncBatchNorm``) over
    the channel axis 1. tapegrad runs one process on the CPU, where it is :class:`BatchNorm`
    over the whole batch: ``num_devices`` must be 1 (or None).

    >>> import tapegrad as mx
    >>> bn = mx.gluon.nn.SyncBatchNorm(in_channels=3); bn.initialize()
    >>> bn(mx.nd.ones((2, 3, 4, 4))).shape, sorted(bn.collect_params())[0]
    ((2, 3, 4, 4), 'syncbatchnorm0_beta')
    """

    def __init__(
        self,
        in_channels: int = 0,
        num_devices: int | None = None,
        momentum: float = 0.9,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        use_global_stats: bool = False,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        running_mean_initializer: Any = "zeros",
        running_variance_initializer: Any = "ones",
        **kwargs: Any,
    ) -> None:
        if num_devices not in (None, 1):
            raise LayerArgumentError(
                f"SyncBatchNorm: num_devices={num_devices!r}, but tapegrad computes on one CPU "
                "process, whose batch statistics are the whole batch's. Fix: num_devices=1 "
                "(or leave it out)."
            )
        super().__init__(
            axis=1,
            momentum=momentum,
            epsilon=epsilon,
            center=center,
            scale=scale,
            use_global_stats=use_global_stats,
            beta_initializer=beta_initializer,
            gamma_initializer=gamma_initializer,
            running_mean_initializer=running_mean_initializer,
            running_variance_initializer=running_variance_initializer,
            in_channels=in_channels,
            **kwargs,
        )


class InstanceNorm(HybridBlock):
    """Instance normalization (Ulyanov et al., 2016): each sample's each channel (``axis``)
    normalized over the remaining axes, ``* gamma + beta``. As in MXNet 1.9, ``scale`` is
    False by default (gamma stays 1 and is not trained).

    Parameters ``gamma`` (ones), ``beta`` (zeros), shape ``(in_channels,)``.

    >>> import tapegrad as mx
    >>> layer = mx.gluon.nn.InstanceNorm(); layer.initialize()
    >>> y = layer(mx.nd.array([[[1.1, 2.2]], [[3.3, 4.4]]]))
    >>> [round(v, 4) for v in y.asnumpy().ravel().tolist()]
    [-1.0, 1.0, -1.0, 1.0]
    """

    def __init__(
        self,
        axis: int = 1,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = False,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._kwargs = {"eps": epsilon, "axis": axis, "center": center, "scale": scale}
        self._axis = axis
        self._epsilon = epsilon
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

    def _channel_axis(self, x: Any) -> int:
        ax = _check_axis(self, x, self._axis, "channel", "pass (N, C, ...) input or set axis.")
        if x.ndim < 3 or ax == 0:
            raise ShapeError(
                f"InstanceNorm '{self.name}': input of shape {fmt_shape(x.shape)} needs a batch "
                f"axis 0, a channel axis (axis={self._axis}, not 0) and at least one more axis "
                "to normalize over. Fix: pass (N, C, W), (N, C, H, W), ... inputs."
            )
        return ax

    def infer_shape(self, x: Any, *args: Any) -> None:
        """in_channels is the size of ``axis`` of the input."""
        c = x.shape[self._channel_axis(x)]
        self.gamma.shape = (c,)
        self.beta.shape = (c,)

    def hybrid_forward(self, F: Any, x: Any, gamma: Any, beta: Any) -> Any:
        ax = self._channel_axis(x) if hasattr(x, "shape") else self._axis
        try:
            if ax == 1:
                return F.InstanceNorm(x, gamma, beta, name="fwd", eps=self._epsilon)
            x = F.swapaxes(x, dim1=1, dim2=ax)
            y = F.InstanceNorm(x, gamma, beta, name="fwd", eps=self._epsilon)
            return F.swapaxes(y, dim1=1, dim2=ax)
        except TapegradError as e:
            raise _layer_error(self, e) from None

    def __repr__(self) -> str:
        content = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({content}, in_channels={self.gamma.shape[0]})"


class GroupNorm(HybridBlock):
    """Group normalization (Wu & He, 2018): the channels of ``(N, C, ...)`` inputs split into
    ``num_groups`` groups, each normalized over its channels and the spatial axes. As in
    MXNet 1.x, ``gamma`` and ``beta`` have shape ``(num_groups,)``: one scale and shift per
    group.

    >>> import tapegrad as mx
    >>> layer = mx.gluon.nn.GroupNorm(); layer.initialize()
    >>> y = layer(mx.nd.arange(24).reshape((2, 3, 4)))
    >>> [round(v, 4) for v in y.asnumpy()[0, 0].tolist()]
    [-1.5933, -1.3036, -1.0139, -0.7242]
    """

    def __init__(
        self,
        num_groups: int = 1,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        prefix: str | None = None,
        params: Any = None,
    ) -> None:
        if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
            raise LayerArgumentError(
                f"GroupNorm: num_groups={num_groups!r} must be a positive integer. Fix: pass one."
            )
        if num_groups < 1:
            raise LayerArgumentError(
                f"GroupNorm: num_groups={num_groups} must be a positive integer. Fix: pass one."
            )
        super().__init__(prefix=prefix, params=params)
        self._kwargs = {"eps": epsilon, "num_groups": num_groups, "center": center, "scale": scale}
        self._num_groups = int(num_groups)
        self._epsilon = epsilon
        self._center = center
        self._scale = scale
        self.gamma = self.params.get(
            "gamma",
            grad_req="write" if scale else "null",
            shape=(num_groups,),
            init=gamma_initializer,
            allow_deferred_init=True,
        )
        self.beta = self.params.get(
            "beta",
            grad_req="write" if center else "null",
            shape=(num_groups,),
            init=beta_initializer,
            allow_deferred_init=True,
        )

    def hybrid_forward(self, F: Any, data: Any, gamma: Any, beta: Any) -> Any:
        try:
            return F.GroupNorm(
                data, gamma, beta, num_groups=self._num_groups, eps=self._epsilon, name="fwd"
            )
        except TapegradError as e:
            raise _layer_error(self, e) from None

    def __repr__(self) -> str:
        content = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({content})"


class Identity(HybridBlock):
    """Returns its input (a branch of a :class:`HybridConcatenate`, a residual path).

    >>> import tapegrad as mx
    >>> mx.gluon.nn.Identity()(mx.nd.array([1.0, 2.0])).asnumpy().tolist()
    [1.0, 2.0]
    """

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _concat_children(F: Any, block: Block, x: Any, axis: int) -> Any:
    if not block._children:
        raise ValueError(
            f"{type(block).__name__} '{block.name}' has no children to concatenate. Fix: add "
            "blocks with .add(...) first."
        )
    outs = [child(x) for child in block._children.values()]
    try:
        return F.concat(*outs, dim=axis)
    except TapegradError as e:
        shapes = ", ".join(str(getattr(o, "shape", "?")) for o in outs)
        err = _layer_error(block, e)
        raise type(err)(f"{err} (the children's outputs have shapes {shapes})") from None


class HybridConcatenate(HybridSequential):
    """Feeds its input to every child and concatenates their outputs along ``axis``
    (MXNet 2's ``HybridConcatenate``; MXNet 1.x's ``contrib.nn.HybridConcurrent``).

    >>> import tapegrad as mx
    >>> net = mx.gluon.nn.HybridConcatenate(axis=1)
    >>> net.add(mx.gluon.nn.Dense(3), mx.gluon.nn.Identity())
    >>> net.initialize(); net(mx.nd.ones((2, 4))).shape
    (2, 7)
    """

    def __init__(self, axis: int = -1, prefix: str | None = None, params: Any = None) -> None:
        super().__init__(prefix=prefix, params=params)
        self.axis = axis

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return _concat_children(F, self, x, self.axis)


class Concatenate(Sequential):
    """Feeds its input to every child Block and concatenates their outputs along ``axis``
    (MXNet 2's ``Concatenate``; MXNet 1.x's ``contrib.nn.Concurrent``)."""

    def __init__(self, axis: int = -1, prefix: str | None = None, params: Any = None) -> None:
        super().__init__(prefix=prefix, params=params)
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return _concat_children(nd, self, x, self.axis)


def _factors(cls: str, factor: Any, n: int) -> tuple:
    f = (factor,) * n if isinstance(factor, (int, np.integer)) else factor
    if (
        not isinstance(f, (tuple, list))
        or len(f) != n
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in f)
        or min(f) < 1
    ):
        raise LayerArgumentError(
            f"{cls}: factor={factor!r} must be a positive integer or {n} of them. Fix: pass "
            "e.g. factor=2."
        )
    return tuple(int(v) for v in f)


class _PixelShuffle(HybridBlock):
    _n = 1

    def __init__(self, factor: Any, **kwargs: Any) -> None:
        factors = _factors(type(self).__name__, factor, self._n)
        super().__init__(**kwargs)
        self._factors = factors

    def _check(self, x: Any) -> None:
        if not hasattr(x, "shape"):
            return
        n, f = self._n, int(np.prod(self._factors))
        if x.ndim != n + 2 or x.shape[1] % f:
            raise ShapeError(
                f"{type(self).__name__} '{self.name}': input of shape {fmt_shape(x.shape)} is "
                f"not (N, C * {f}, {n} spatial axes) for factors {self._factors}. Fix: give "
                f"{n + 2}-D input whose channel count is a multiple of {f}."
            )

    def __repr__(self) -> str:
        f = self._factors[0] if self._n == 1 else self._factors
        return f"{type(self).__name__}({f})"


class PixelShuffle1D(_PixelShuffle):
    """Moves channel groups into the width: ``(N, f C, W) -> (N, C, W f)``.

    >>> import tapegrad as mx
    >>> mx.gluon.nn.PixelShuffle1D(2)(mx.nd.zeros((1, 8, 3))).shape
    (1, 4, 6)
    """

    _n = 1

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        self._check(x)
        (f,) = self._factors
        x = F.reshape(x, shape=(0, -4, -1, f, 0))  # (N, C, f, W)
        x = F.transpose(x, axes=(0, 1, 3, 2))  # (N, C, W, f)
        return F.reshape(x, shape=(0, 0, -3))


class PixelShuffle2D(_PixelShuffle):
    """Sub-pixel upsampling (Shi et al., 2016): ``(N, f1 f2 C, H, W) -> (N, C, H f1, W f2)``.

    >>> import tapegrad as mx
    >>> mx.gluon.nn.PixelShuffle2D((2, 3))(mx.nd.zeros((1, 12, 3, 5))).shape
    (1, 2, 6, 15)
    """

    _n = 2

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        self._check(x)
        f1, f2 = self._factors
        x = F.reshape(x, shape=(0, -4, -1, f1 * f2, 0, 0))  # (N, C, f1 f2, H, W)
        x = F.reshape(x, shape=(0, 0, -4, f1, f2, 0, 0))  # (N, C, f1, f2, H, W)
        x = F.transpose(x, axes=(0, 1, 4, 2, 5, 3))  # (N, C, H, f1, W, f2)
        return F.reshape(x, shape=(0, 0, -3, -3))


class PixelShuffle3D(_PixelShuffle):
    """``(N, f1 f2 f3 C, D, H, W) -> (N, C, D f1, H f2, W f3)``.

    >>> import tapegrad as mx
    >>> mx.gluon.nn.PixelShuffle3D((2, 3, 4))(mx.nd.zeros((1, 48, 3, 5, 7))).shape
    (1, 2, 6, 15, 28)
    """

    _n = 3

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        self._check(x)
        f1, f2, f3 = self._factors
        x = F.reshape(x, shape=(0, -4, -1, f1 * f2 * f3, 0, 0, 0))  # (N, C, f1 f2 f3, D, H, W)
        x = F.reshape(x, shape=(0, 0, -4, f1, f2 * f3, 0, 0, 0))  # (N, C, f1, f2 f3, D, H, W)
        x = F.transpose(x, axes=(0, 1, 4, 2, 5, 3, 6))  # (N, C, D, f1, H, f2 f3, W)
        x = F.reshape(x, shape=(0, 0, 0, 0, 0, -4, f2, f3, 0))  # (N, C, D, f1, H, f2, f3, W)
        x = F.transpose(x, axes=(0, 1, 2, 3, 4, 5, 7, 6))  # (N, C, D, f1, H, f2, W, f3)
        return F.reshape(x, shape=(0, 0, -3, -3, -3))
