"""VGG 11/13/16/19 with and without batch normalization (Simonyan & Zisserman, 2014), with
MXNet 1.9's layers, initializers and parameter names (``vgg0_conv0_weight``...)."""

from __future__ import annotations

from typing import Any

from ....initializer import Xavier
from ... import nn
from ...block import HybridBlock
from ._common import load_pretrained

__all__ = [
    "VGG",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "get_vgg",
]

# layers per block and filters per block
vgg_spec = {
    11: ([1, 1, 2, 2, 2], [64, 128, 256, 512, 512]),
    13: ([2, 2, 2, 2, 2], [64, 128, 256, 512, 512]),
    16: ([2, 2, 3, 3, 3], [64, 128, 256, 512, 512]),
    19: ([2, 2, 4, 4, 4], [64, 128, 256, 512, 512]),
}


class VGG(HybridBlock):
    """VGG: blocks of 3x3 convolutions (+ BatchNorm with ``batch_norm``) and ReLU, each
    followed by 2x2 max pooling; two dense layers of 4096 with dropout; dense output."""

    def __init__(
        self,
        layers: list,
        filters: list,
        classes: int = 1000,
        batch_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(layers) != len(filters):
            raise ValueError(
                f"VGG: {len(layers)} layer counts but {len(filters)} filter counts. Fix: give "
                "one filter count per block."
            )
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            for i, num in enumerate(layers):
                for _ in range(num):
                    self.features.add(
                        nn.Conv2D(
                            filters[i],
                            kernel_size=3,
                            padding=1,
                            weight_initializer=Xavier(
                                rnd_type="gaussian", factor_type="out", magnitude=2
                            ),
                            bias_initializer="zeros",
                        )
                    )
                    if batch_norm:
                        self.features.add(nn.BatchNorm())
                    self.features.add(nn.Activation("relu"))
                self.features.add(nn.MaxPool2D(strides=2))
            for _ in range(2):
                self.features.add(
                    nn.Dense(
                        4096,
                        activation="relu",
                        weight_initializer="normal",
                        bias_initializer="zeros",
                    )
                )
                self.features.add(nn.Dropout(rate=0.5))
            self.output = nn.Dense(classes, weight_initializer="normal", bias_initializer="zeros")

    def hybrid_forward(self, F: Any, x: Any) -> Any:
        return self.output(self.features(x))


def get_vgg(
    num_layers: int,
    pretrained: bool = False,
    ctx: Any = None,
    root: str | None = None,
    **kwargs: Any,
) -> VGG:
    """VGG with ``num_layers`` in 11, 13, 16, 19 (``batch_norm=True`` for the BN variant)."""
    if num_layers not in vgg_spec:
        raise ValueError(
            f"get_vgg: num_layers={num_layers} is not one of {sorted(vgg_spec)}. Fix: use one."
        )
    layers, filters = vgg_spec[num_layers]
    net = VGG(layers, filters, **kwargs)
    if pretrained:
        suffix = "_bn" if kwargs.get("batch_norm") else ""
        load_pretrained(net, f"vgg{num_layers}{suffix}", root, ctx)
    return net


def vgg11(**kwargs: Any) -> VGG:
    """VGG-11."""
    return get_vgg(11, **kwargs)


def vgg13(**kwargs: Any) -> VGG:
    """VGG-13."""
    return get_vgg(13, **kwargs)


def vgg16(**kwargs: Any) -> VGG:
    """VGG-16."""
    return get_vgg(16, **kwargs)


def vgg19(**kwargs: Any) -> VGG:
    """VGG-19."""
    return get_vgg(19, **kwargs)


def vgg11_bn(**kwargs: Any) -> VGG:
    """VGG-11 with batch normalization."""
    kwargs["batch_norm"] = True
    return get_vgg(11, **kwargs)


def vgg13_bn(**kwargs: Any) -> VGG:
    """VGG-13 with batch normalization."""
    kwargs["batch_norm"] = True
    return get_vgg(13, **kwargs)


def vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16 with batch normalization."""
    kwargs["batch_norm"] = True
    return get_vgg(16, **kwargs)


def vgg19_bn(**kwargs: Any) -> VGG:
    """VGG-19 with batch normalization."""
    kwargs["batch_norm"] = True
    return get_vgg(19, **kwargs)
