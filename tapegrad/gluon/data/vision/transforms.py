"""Image transforms (``gluon.data.vision.transforms``): the minimal set for MNIST-style data.

They are callables on NDArrays, used with ``dataset.transform_first(...)``; like MXNet's they
can be chained with :class:`Compose`.

>>> import tapegrad as mx
>>> from tapegrad.gluon.data.vision import transforms
>>> t = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.5, 0.5)])
>>> x = mx.nd.array([[[0], [255]]], dtype='uint8')      # 1x2 image, 1 channel (HWC)
>>> t(x).asnumpy().tolist()
[[[-1.0, 1.0]]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Compose", "Cast", "ToTensor", "Normalize"]


def _np(x: Any) -> np.ndarray:
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


def _nd(a: np.ndarray) -> Any:
    from ....ndarray import NDArray

    return NDArray(a)


class _Transform:
    """Base: callable, with MXNet Block methods that make sense for a fixed transform."""

    def __call__(self, x: Any, *args: Any) -> Any:
        out = self.forward(x)
        return (out,) + args if args else out

    def forward(self, x: Any) -> Any:
        raise NotImplementedError

    def hybridize(self, *args: Any, **kwargs: Any) -> None:
        """Accepted for MXNet compatibility (nothing to compile)."""


class Compose(_Transform):
    """Apply transforms in sequence.

    >>> from tapegrad.gluon.data.vision import transforms
    >>> transforms.Compose([transforms.Cast('float64')])(__import__('numpy').ones(2)).dtype
    <class 'numpy.float64'>
    """

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self._transforms = list(transforms)

    def forward(self, x: Any) -> Any:
        for t in self._transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self._transforms) + ")"


class Cast(_Transform):
    """Cast to ``dtype`` (float32 by default)."""

    def __init__(self, dtype: Any = "float32") -> None:
        self._dtype = np.dtype(dtype)

    def forward(self, x: Any) -> Any:
        return _nd(_np(x).astype(self._dtype))


class ToTensor(_Transform):
    """``(H, W, C)`` (or ``(N, H, W, C)``) uint8 in [0, 255] -> ``(C, H, W)`` (or
    ``(N, C, H, W)``) float32 in [0, 1].

    >>> import tapegrad as mx
    >>> from tapegrad.gluon.data.vision import transforms
    >>> transforms.ToTensor()(mx.nd.ones((28, 28, 1), dtype='uint8')).shape
    (1, 28, 28)
    """

    def forward(self, x: Any) -> Any:
        a = _np(x)
        if a.ndim == 3:
            a = a.transpose(2, 0, 1)
        elif a.ndim == 4:
            a = a.transpose(0, 3, 1, 2)
        else:
            raise ValueError(
                f"ToTensor: expected an image (H, W, C) or a batch (N, H, W, C), "
                f"got shape {a.shape}"
            )
        return _nd(np.ascontiguousarray(a, dtype=np.float32) / np.float32(255.0))

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize(_Transform):
    """``(x - mean) / std`` per channel of a ``(C, H, W)`` or ``(N, C, H, W)`` tensor.

    >>> import tapegrad as mx
    >>> from tapegrad.gluon.data.vision import transforms
    >>> transforms.Normalize(mean=1.0, std=2.0)(mx.nd.ones((1, 2, 2)) * 3).asnumpy().max()
    np.float32(1.0)
    """

    def __init__(
        self, mean: float | Sequence[float] = 0.0, std: float | Sequence[float] = 1.0
    ) -> None:
        self._mean = mean
        self._std = std

    def forward(self, x: Any) -> Any:
        a = _np(x)
        if a.ndim not in (3, 4):
            raise ValueError(f"Normalize: expected (C, H, W) or (N, C, H, W), got shape {a.shape}")
        c_axis = 0 if a.ndim == 3 else 1
        shape = [1] * a.ndim
        shape[c_axis] = -1
        mean = np.asarray(self._mean, dtype=a.dtype).reshape(
            shape if np.ndim(self._mean) else [1] * a.ndim
        )
        std = np.asarray(self._std, dtype=a.dtype).reshape(
            shape if np.ndim(self._std) else [1] * a.ndim
        )
        return _nd((a - mean) / std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self._mean}, std={self._std})"
