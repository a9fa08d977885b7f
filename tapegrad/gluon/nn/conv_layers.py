"""Convolution, pooling and padding layers (MXNet 1.9 ``gluon/nn/conv_layers.py``).

Each layer calls one ``F`` operator (``Convolution``, ``Deconvolution``, ``Pooling``, ``Pad``)
with the arguments MXNet's layer passes, so outputs, parameter shapes and names (``conv0_weight``,
``conv0_bias``; every convolution layer, transposed or not, is ``conv<n>``, every pooling layer
``pool<n>``) are MXNet's. ``in_channels=0`` (the default) defers the weight's shape to the first
forward pass.

Convolutions support the channels-first layouts only (``NCW``, ``NCHW``, ``NCDHW``): MXNet runs
channels-last convolutions on GPU only. Pooling layers accept both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...base import ShapeError, TapegradError, fmt_shape
from ..block import HybridBlock
from .activations import Activation
from .basic_layers import LayerArgumentError, _layer_error

__all__ = [
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "ReflectionPad2D",
]

_FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
_AXES = {1: "(batch, channels, width)", 2: "(batch, channels, height, width)"}
_AXES[3] = "(batch, channels, depth, height, width)"


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _ints(cls: str, name: str, v: Any, n: int, low: int) -> tuple:
    """MXNet's size arguments: an int means the same value on every one of the ``n`` axes."""
    t = (v,) * n if _is_int(v) else v
    if (
        not isinstance(t, (tuple, list))
        or len(t) != n
        or not all(_is_int(e) and e >= low for e in t)
    ):
        raise LayerArgumentError(
            f"{cls}: {name}={v!r} must be an integer >= {low} or a tuple of {n} such integers. "
            f"Fix: pass e.g. {name}={(max(low, 1),) * n if n > 1 else max(low, 1)}."
        )
    return tuple(int(e) for e in t)


def _positive(cls: str, name: str, v: Any) -> int:
    if not _is_int(v) or v < 1:
        raise LayerArgumentError(f"{cls}: {name}={v!r} must be a positive integer. Fix: pass one.")
    return int(v)


def _check_ndim(layer: HybridBlock, x: Any, n: int, layout: str) -> None:
    ndim = getattr(x, "ndim", None)
    if ndim is not None and ndim != n + 2:
        raise ShapeError(
            f"{type(layer).__name__} '{layer.name}': input of shape {fmt_shape(x.shape)} is not "
            f"{n + 2}-D ({layout}: {_AXES[n]}). Fix: reshape it, e.g. add a channel axis of "
            "size 1 to single-channel images with x.reshape((N, 1, H, W))."
        )


class _Conv(HybridBlock):
    """Convolution (``op_name='Convolution'``) or transposed convolution
    (``'Deconvolution'``) over ``len(kernel_size)`` spatial axes.

    Parameters: ``weight`` of shape ``(channels, in_channels / groups, *kernel_size)`` for a
    convolution and ``(in_channels, channels / groups, *kernel_size)`` for a transposed one,
    ``bias`` of shape ``(channels,)`` (initialized to zeros) when ``use_bias``.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any,
        padding: Any,
        dilation: Any,
        groups: int,
        layout: str,
        in_channels: int = 0,
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        op_name: str = "Convolution",
        adj: Any = None,
        prefix: str | None = None,
        params: Any = None,
        ndim: int = 2,
    ) -> None:
        cls = type(self).__name__
        n = ndim
        kernel_size = _ints(cls, "kernel_size", kernel_size, n, 1)
        channels = _positive(cls, "channels", channels)
        strides = _ints(cls, "strides", strides, n, 1)
        padding = _ints(cls, "padding", padding, n, 0)
        dilation = _ints(cls, "dilation", dilation, n, 1)
        groups = _positive(cls, "groups", groups)
        if not _is_int(in_channels) or in_channels < 0:
            raise LayerArgumentError(
                f"{cls}: in_channels={in_channels!r} must be an integer >= 0 (0: inferred from "
                "the first input). Fix: pass the number of input channels or leave it out."
            )
        if layout != _FIRST[n]:
            raise LayerArgumentError(
                f"{cls}: layout={layout!r} is not supported: MXNet runs channels-last "
                "convolutions on GPU only, and tapegrad has none. Fix: use "
                f"layout={_FIRST[n]!r} and transpose the data to channels-first."
            )
        if channels % groups or in_channels % groups:
            raise LayerArgumentError(
                f"{cls}: groups={groups} must divide channels={channels} and in_channels="
                f"{in_channels}. Fix: choose groups dividing both."
            )
        if adj is not None:
            adj = _ints(cls, "output_padding", adj, n, 0)
            if any(a >= s for a, s in zip(adj, strides)):
                raise LayerArgumentError(
                    f"{cls}: output_padding={adj} must be smaller than strides={strides} on "
                    "every axis (MXNet's rule). Fix: reduce output_padding."
                )
        super().__init__(prefix=prefix, params=params)
        self._channels = channels
        self._in_channels = in_channels
        self._op_name = op_name
        self._ndim = n
        self._kwargs: dict[str, Any] = {
            "kernel": tuple(kernel_size),
            "stride": strides,
            "dilate": dilation,
            "pad": padding,
            "num_filter": channels,
            "num_group": groups,
            "no_bias": not use_bias,
            "layout": layout,
        }
        if adj is not None:
            self._kwargs["adj"] = adj
        with self.name_scope():
            self.weight = self.params.get(
                "weight",
                shape=self._weight_shape(in_channels),
                init=weight_initializer,
                allow_deferred_init=True,
            )
            if use_bias:
                self.bias = self.params.get(
                    "bias", shape=(channels,), init=bias_initializer, allow_deferred_init=True
                )
            else:
                self.bias = None
            self.act = Activation(activation, prefix=activation + "_") if activation else None

    def _weight_shape(self, in_channels: int) -> tuple:
        g = self._kwargs["num_group"]
        if self._op_name == "Convolution":
            return (self._channels, in_channels // g) + self._kwargs["kernel"]
        return (in_channels, self._channels // g) + self._kwargs["kernel"]

    def _alias(self) -> str:
        return "conv"

    def infer_shape(self, x: Any, *args: Any) -> None:
        """The weight's input channels from ``x.shape[1]``."""
        _check_ndim(self, x, self._ndim, self._kwargs["layout"])
        c, g = x.shape[1], self._kwargs["num_group"]
        if c % g:
            raise ShapeError(
                f"{type(self).__name__} '{self.name}': input of shape {fmt_shape(x.shape)} has "
                f"{c} channels, not divisible by groups={g}. Fix: pass an input whose channel "
                "count groups divides, or change groups."
            )
        self.weight.shape = self._weight_shape(c)

    def hybrid_forward(self, F: Any, x: Any, weight: Any, bias: Any = None) -> Any:
        _check_ndim(self, x, self._ndim, self._kwargs["layout"])
        try:
            out = getattr(F, self._op_name)(x, weight, bias, name="fwd", **self._kwargs)
        except TapegradError as e:
            raise _layer_error(self, e) from None
        if self.act is not None:
            out = self.act(out)
        return out

    def __repr__(self) -> str:
        k = self._kwargs
        n = self._ndim
        s = f"{type(self).__name__}({{mapping}}, kernel_size={k['kernel']}, stride={k['stride']}"
        if k["pad"] != (0,) * n:
            s += f", padding={k['pad']}"
        if k["dilate"] != (1,) * n:
            s += f", dilation={k['dilate']}"
        if k.get("adj", (0,) * n) != (0,) * n:
            s += f", output_padding={k['adj']}"
        if k["num_group"] != 1:
            s += f", groups={k['num_group']}"
        if self.bias is None:
            s += ", bias=False"
        if self.act is not None:
            s += f", {self.act}"
        shape = self.weight.shape
        if self._op_name == "Convolution":
            cin, cout = shape[1] * k["num_group"], shape[0]
        else:
            cin, cout = shape[0], shape[1] * k["num_group"]
        return (s + ")").format(mapping=f"{cin or None} -> {cout}")


class Conv1D(_Conv):
    """1-D convolution over the last axis of ``(batch, in_channels, width)`` inputs.

    ``out_width = floor((width + 2 padding - dilation (kernel_size - 1) - 1) / strides) + 1``.
    Parameters ``weight`` ``(channels, in_channels / groups, kernel_size)``, ``bias``
    ``(channels,)``.

    >>> import tapegrad as mx
    >>> conv = mx.gluon.nn.Conv1D(4, kernel_size=3, padding=1); conv.initialize()
    >>> conv(mx.nd.ones((2, 3, 10))).shape, conv.weight.shape
    ((2, 4, 10), (4, 3, 3))
    """

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        layout: str = "NCW",
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            channels,
            kernel_size,
            strides,
            padding,
            dilation,
            groups,
            layout,
            in_channels,
            activation,
            use_bias,
            weight_initializer,
            bias_initializer,
            op_name="Convolution",
            ndim=1,
            **kwargs,
        )


class Conv2D(_Conv):
    """2-D convolution of ``(batch, in_channels, height, width)`` inputs.

    ``out = floor((in + 2 padding - dilation (kernel_size - 1) - 1) / strides) + 1`` per
    spatial axis. Parameters ``weight`` ``(channels, in_channels / groups, kh, kw)``, ``bias``
    ``(channels,)``.

    >>> import tapegrad as mx
    >>> with mx.name.NameManager():  # names counted from 0
    ...     conv = mx.gluon.nn.Conv2D(6, kernel_size=5, activation='relu')
    >>> conv.initialize()
    >>> conv(mx.nd.ones((2, 1, 28, 28))).shape
    (2, 6, 24, 24)
    >>> conv
    Conv2D(1 -> 6, kernel_size=(5, 5), stride=(1, 1), Activation(relu))
    >>> sorted(conv.collect_params().keys())
    ['conv0_bias', 'conv0_weight']
    """

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: Any = (0, 0),
        dilation: Any = (1, 1),
        groups: int = 1,
        layout: str = "NCHW",
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            channels,
            kernel_size,
            strides,
            padding,
            dilation,
            groups,
            layout,
            in_channels,
            activation,
            use_bias,
            weight_initializer,
            bias_initializer,
            op_name="Convolution",
            ndim=2,
            **kwargs,
        )


class Conv3D(_Conv):
    """3-D convolution of ``(batch, in_channels, depth, height, width)`` inputs.

    Parameters ``weight`` ``(channels, in_channels / groups, kd, kh, kw)``, ``bias``
    ``(channels,)``.

    >>> import tapegrad as mx
    >>> conv = mx.gluon.nn.Conv3D(2, kernel_size=(1, 3, 3)); conv.initialize()
    >>> conv(mx.nd.ones((1, 3, 4, 5, 5))).shape
    (1, 2, 4, 3, 3)
    """

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any = (1, 1, 1),
        padding: Any = (0, 0, 0),
        dilation: Any = (1, 1, 1),
        groups: int = 1,
        layout: str = "NCDHW",
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            channels,
            kernel_size,
            strides,
            padding,
            dilation,
            groups,
            layout,
            in_channels,
            activation,
            use_bias,
            weight_initializer,
            bias_initializer,
            op_name="Convolution",
            ndim=3,
            **kwargs,
        )


class Conv1DTranspose(_Conv):
    """Transposed 1-D convolution (MXNet's ``Deconvolution``):
    ``out_width = (width - 1) strides - 2 padding + dilation (kernel_size - 1) + 1 +
    output_padding``. Parameters ``weight`` ``(in_channels, channels / groups, kernel_size)``,
    ``bias`` ``(channels,)``.

    >>> import tapegrad as mx
    >>> up = mx.gluon.nn.Conv1DTranspose(2, kernel_size=4, strides=2, padding=1)
    >>> up.initialize(); up(mx.nd.ones((1, 3, 5))).shape, up.weight.shape
    ((1, 2, 10), (3, 2, 4))
    """

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        layout: str = "NCW",
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            channels,
            kernel_size,
            strides,
            padding,
            dilation,
            groups,
            layout,
            in_channels,
            activation,
            use_bias,
            weight_initializer,
            bias_initializer,
            op_name="Deconvolution",
            adj=output_padding,
            ndim=1,
            **kwargs,
        )
        self.outpad = self._kwargs["adj"]


class Conv2DTranspose(_Conv):
    """Transposed 2-D convolution (MXNet's ``Deconvolution``), the gradient of ``Conv2D``
    with respect to its input: ``out = (in - 1) strides - 2 padding + dilation (kernel_size -
    1) + 1 + output_padding`` per spatial axis. Parameters ``weight``
    ``(in_channels, channels / groups, kh, kw)``, ``bias`` ``(channels,)``.

    >>> import tapegrad as mx
    >>> up = mx.gluon.nn.Conv2DTranspose(8, kernel_size=4, strides=2, padding=1)
    >>> up.initialize(); up(mx.nd.ones((1, 16, 7, 7))).shape
    (1, 8, 14, 14)
    """

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: Any = (0, 0),
        output_padding: Any = (0, 0),
        dilation: Any = (1, 1),
        groups: int = 1,
        layout: str = "NCHW",
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            channels,
            kernel_size,
            strides,
            padding,
            dilation,
            groups,
            layout,
            in_channels,
            activation,
            use_bias,
            weight_initializer,
            bias_initializer,
            op_name="Deconvolution",
            adj=output_padding,
            ndim=2,
            **kwargs,
        )
        self.outpad = self._kwargs["adj"]


class Conv3DTranspose(_Conv):
    """Transposed 3-D convolution (MXNet's ``Deconvolution``). Parameters ``weight``
    ``(in_channels, channels / groups, kd, kh, kw)``, ``bias`` ``(channels,)``.

    >>> import tapegrad as mx
    >>> up = mx.gluon.nn.Conv3DTranspose(2, kernel_size=2, strides=2); up.initialize()
    >>> up(mx.nd.ones((1, 3, 2, 3, 4))).shape
    (1, 2, 4, 6, 8)
    """

    def __init__(
        self,
        channels: int,
        kernel_size: Any,
        strides: Any = (1, 1, 1),
        padding: Any = (0, 0, 0),
        output_padding: Any = (0, 0, 0),
        dilation: Any = (1, 1, 1),
        groups: int = 1,
        layout: str = "NCDHW",
        activation: str | None = None,
        use_bias: bool = True,
        weight_initializer: Any = None,
        bias_initializer: Any = "zeros",
        in_channels: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            channels,
            kernel_size,
            strides,
            padding,
            dilation,
            groups,
            layout,
            in_channels,
            activation,
            use_bias,
            weight_initializer,
            bias_initializer,
            op_name="Deconvolution",
            adj=output_padding,
            ndim=3,
            **kwargs,
        )
        self.outpad = self._kwargs["adj"]


# ------------------------------------------------------------------------------ pooling


class _Pooling(HybridBlock):
    """Max or average pooling (``F.Pooling``) over ``len(pool_size)`` spatial axes.

    ``strides`` defaults to ``pool_size`` (the operator's default is 1); ``ceil_mode`` picks
    MXNet's ``'full'`` convention (ceil) instead of ``'valid'`` (floor).
    """

    def __init__(
        self,
        pool_size: Any,
        strides: Any,
        padding: Any,
        ceil_mode: bool,
        global_pool: bool,
        pool_type: str,
        layout: str,
        count_include_pad: bool | None = None,
        n: int = 2,
        **kwargs: Any,
    ) -> None:
        cls = type(self).__name__
        if layout not in (_FIRST[n], _LAST[n]):
            raise LayerArgumentError(
                f"{cls}: layout={layout!r} is not valid for {n}-D pooling. Fix: use "
                f"{_FIRST[n]!r} or {_LAST[n]!r}."
            )
        pool_size = _ints(cls, "pool_size", pool_size, n, 1)
        strides = pool_size if strides is None else _ints(cls, "strides", strides, n, 1)
        padding = _ints(cls, "padding", padding, n, 0)
        super().__init__(**kwargs)
        self._ndim = n
        self._kwargs: dict[str, Any] = {
            "kernel": pool_size,
            "stride": strides,
            "pad": padding,
            "global_pool": global_pool,
            "pool_type": pool_type,
            "layout": layout,
            "pooling_convention": "full" if ceil_mode else "valid",
        }
        if count_include_pad is not None:
            self._kwargs["count_include_pad"] = bool(count_include_pad)

    def _alias(self) -> str:
        return "pool"

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        _check_ndim(self, x, self._ndim, self._kwargs["layout"])
        try:
            return F.Pooling(x, name="fwd", **self._kwargs)
        except TapegradError as e:
            raise _layer_error(self, e) from None

    def __repr__(self) -> str:
        k = self._kwargs
        return (
            f"{type(self).__name__}(size={k['kernel']}, stride={k['stride']}, padding={k['pad']}"
            f", ceil_mode={k['pooling_convention'] == 'full'}, global_pool={k['global_pool']}, "
            f"pool_type={k['pool_type']}, layout={k['layout']})"
        )


class MaxPool1D(_Pooling):
    """Max pooling of ``(batch, channels, width)`` (``'NCW'``) or ``'NWC'`` inputs.
    ``out_width = floor((width + 2 padding - pool_size) / strides) + 1`` (ceil with
    ``ceil_mode``); ``strides`` defaults to ``pool_size``.

    >>> import tapegrad as mx
    >>> mx.gluon.nn.MaxPool1D(2)(mx.nd.array([[[1, 3, 2, 5, 4]]])).asnumpy().tolist()
    [[[3.0, 5.0]]]
    """

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: Any = 0,
        layout: str = "NCW",
        ceil_mode: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            pool_size, strides, padding, ceil_mode, False, "max", layout, n=1, **kwargs
        )


class MaxPool2D(_Pooling):
    """Max pooling of ``(batch, channels, height, width)`` (``'NCHW'``) or ``'NHWC'`` inputs;
    ``strides`` defaults to ``pool_size``, ``ceil_mode`` rounds the output size up.

    >>> import tapegrad as mx
    >>> pool = mx.gluon.nn.MaxPool2D(pool_size=2, strides=2)
    >>> pool(mx.nd.arange(16).reshape((1, 1, 4, 4))).asnumpy()[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: Any = 0,
        layout: str = "NCHW",
        ceil_mode: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            pool_size, strides, padding, ceil_mode, False, "max", layout, n=2, **kwargs
        )


class MaxPool3D(_Pooling):
    """Max pooling of ``(batch, channels, depth, height, width)`` (``'NCDHW'``) or
    ``'NDHWC'`` inputs.

    >>> import tapegrad as mx
    >>> mx.gluon.nn.MaxPool3D()(mx.nd.ones((1, 2, 4, 4, 4))).shape
    (1, 2, 2, 2, 2)
    """

    def __init__(
        self,
        pool_size: Any = (2, 2, 2),
        strides: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        layout: str = "NCDHW",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            pool_size, strides, padding, ceil_mode, False, "max", layout, n=3, **kwargs
        )


class AvgPool1D(_Pooling):
    """Average pooling of ``'NCW'``/``'NWC'`` inputs. ``count_include_pad=False`` divides by
    the number of non-padding elements of each window.

    >>> import tapegrad as mx
    >>> mx.gluon.nn.AvgPool1D(2)(mx.nd.array([[[1, 3, 2, 6]]])).asnumpy().tolist()
    [[[2.0, 4.0]]]
    """

    def __init__(
        self,
        pool_size: Any = 2,
        strides: Any = None,
        padding: Any = 0,
        layout: str = "NCW",
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            pool_size,
            strides,
            padding,
            ceil_mode,
            False,
            "avg",
            layout,
            count_include_pad,
            n=1,
            **kwargs,
        )


class AvgPool2D(_Pooling):
    """Average pooling of ``'NCHW'``/``'NHWC'`` inputs; ``count_include_pad=False`` divides
    by the number of non-padding elements of each window.

    >>> import tapegrad as mx
    >>> pool = mx.gluon.nn.AvgPool2D(pool_size=2, padding=1, count_include_pad=False)
    >>> pool(mx.nd.ones((1, 1, 2, 2))).asnumpy()[0, 0].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """

    def __init__(
        self,
        pool_size: Any = (2, 2),
        strides: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        layout: str = "NCHW",
        count_include_pad: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            pool_size,
            strides,
            padding,
            ceil_mode,
            False,
            "avg",
            layout,
            count_include_pad,
            n=2,
            **kwargs,
        )


class AvgPool3D(_Pooling):
    """Average pooling of ``'NCDHW'``/``'NDHWC'`` inputs.

    >>> import tapegrad as mx
    >>> mx.gluon.nn.AvgPool3D()(mx.nd.ones((1, 1, 2, 2, 2))).asnumpy().ravel().tolist()
    [1.0]
    """

    def __init__(
        self,
        pool_size: Any = (2, 2, 2),
        strides: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        layout: str = "NCDHW",
        count_include_pad: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            pool_size,
            strides,
            padding,
            ceil_mode,
            False,
            "avg",
            layout,
            count_include_pad,
            n=3,
            **kwargs,
        )


def _global(n: int, pool_type: str, doc: str) -> type:
    """A global pooling class: every channel's whole map pooled to size 1 (MXNet passes
    ``pool_size=(1,)*n``, ``ceil_mode=True``, ``global_pool=True``)."""

    def __init__(self: _Pooling, layout: str = _FIRST[n], **kwargs: Any) -> None:
        _Pooling.__init__(self, (1,) * n, None, 0, True, True, pool_type, layout, n=n, **kwargs)

    name = f"Global{'Max' if pool_type == 'max' else 'Avg'}Pool{n}D"
    return type(name, (_Pooling,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


GlobalMaxPool1D = _global(1, "max", "Global max pooling: (N, C, W) -> (N, C, 1).")
GlobalMaxPool2D = _global(
    2,
    "max",
    """Global max pooling: (N, C, H, W) -> (N, C, 1, 1).

    >>> import tapegrad as mx
    >>> mx.gluon.nn.GlobalMaxPool2D()(mx.nd.arange(8).reshape((1, 2, 2, 2))).asnumpy().ravel()
    array([3., 7.], dtype=float32)
    """,
)
GlobalMaxPool3D = _global(3, "max", "Global max pooling: (N, C, D, H, W) -> (N, C, 1, 1, 1).")
GlobalAvgPool1D = _global(1, "avg", "Global average pooling: (N, C, W) -> (N, C, 1).")
GlobalAvgPool2D = _global(
    2,
    "avg",
    """Global average pooling: (N, C, H, W) -> (N, C, 1, 1).

    >>> import tapegrad as mx
    >>> mx.gluon.nn.GlobalAvgPool2D()(mx.nd.arange(8).reshape((1, 2, 2, 2))).asnumpy().ravel()
    array([1.5, 5.5], dtype=float32)
    """,
)
GlobalAvgPool3D = _global(3, "avg", "Global average pooling: (N, C, D, H, W) -> (N, C, 1, 1, 1).")


class ReflectionPad2D(HybridBlock):
    """Pads the last two axes of ``(N, C, H, W)`` inputs with their reflection (the edge
    not repeated): ``padding`` an int (all four sides) or MXNet's flat 8-tuple
    ``(0, 0, 0, 0, top, bottom, left, right)``.

    >>> import tapegrad as mx
    >>> pad = mx.gluon.nn.ReflectionPad2D(1)
    >>> pad(mx.nd.arange(4).reshape((1, 1, 2, 2))).asnumpy()[0, 0].tolist()
    [[3.0, 2.0, 3.0, 2.0], [1.0, 0.0, 1.0, 0.0], [3.0, 2.0, 3.0, 2.0], [1.0, 0.0, 1.0, 0.0]]
    """

    def __init__(self, padding: Any = 0, **kwargs: Any) -> None:
        if _is_int(padding) and padding >= 0:
            padding = (0, 0, 0, 0, padding, padding, padding, padding)
        if (
            not isinstance(padding, (tuple, list))
            or len(padding) != 8
            or not all(_is_int(p) and p >= 0 for p in padding)
        ):
            raise LayerArgumentError(
                f"ReflectionPad2D: padding={padding!r} must be an integer >= 0 or 8 integers "
                "(0, 0, 0, 0, top, bottom, left, right). Fix: pass e.g. padding=1."
            )
        super().__init__(**kwargs)
        self._padding = tuple(int(p) for p in padding)

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        try:
            return F.Pad(x, mode="reflect", pad_width=self._padding)
        except TapegradError as e:
            raise _layer_error(self, e) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(padding={self._padding})"
