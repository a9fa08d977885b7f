"""Loss functions (MXNet 1.x ``gluon/loss.py``), each a HybridBlock.

Every loss returns one value per sample: the elementwise loss, times ``sample_weight``
(broadcast) and the scalar ``weight``, then averaged over every axis except ``batch_axis``.
``label`` is reshaped to ``pred``'s shape where the formula pairs them elementwise.
They are compositions of differentiable ``mx.nd`` operators (any order).
"""

from __future__ import annotations

import math
from numbers import Number
from typing import Any

import numpy as np

from ..base import ShapeError
from .block import HybridBlock

__all__ = [
    "Loss",
    "L2Loss",
    "L1Loss",
    "SigmoidBinaryCrossEntropyLoss",
    "SigmoidBCELoss",
    "SoftmaxCrossEntropyLoss",
    "SoftmaxCELoss",
    "KLDivLoss",
    "HuberLoss",
    "HingeLoss",
    "SquaredHingeLoss",
    "LogisticLoss",
    "TripletLoss",
    "PoissonNLLLoss",
    "CosineEmbeddingLoss",
]


def _apply_weighting(F: Any, loss: Any, weight: Any = None, sample_weight: Any = None) -> Any:
    """``loss * sample_weight * weight`` (each optional)."""
    if sample_weight is not None:
        loss = F.broadcast_mul(loss, sample_weight)
    if weight is not None:
        if not isinstance(weight, Number):
            raise TypeError(f"weight must be a number, got {weight!r}")
        loss = loss * weight
    return loss


def _reshape_like(x: Any, y: Any, who: str, what: str = "label") -> Any:
    """``x`` reshaped to ``y``'s shape, with an error naming the loss on a size mismatch."""
    if tuple(x.shape) == tuple(y.shape):
        return x
    if math.prod(x.shape) != math.prod(y.shape):
        raise ShapeError(
            f"{who}: {what} of shape {tuple(x.shape)} has {int(np.prod(x.shape))} elements but "
            f"pred of shape {tuple(y.shape)} has {int(np.prod(y.shape))}; they must have the "
            f"same number of elements. Fix: pass a {what} with one value per prediction."
        )
    return x.reshape(y.shape)


def _batch_mean(F: Any, loss: Any, batch_axis: int) -> Any:
    """Mean over every axis but ``batch_axis``."""
    return F.mean(loss, axis=batch_axis, exclude=True)


class Loss(HybridBlock):
    """Base class of losses.

    Args:
        weight: global scalar weight of the loss (None for none).
        batch_axis: the axis that indexes samples.
    """

    def __init__(self, weight: float | None, batch_axis: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._weight = weight
        self._batch_axis = batch_axis

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement hybrid_forward")


class L2Loss(Loss):
    r"""Squared error: ``L = weight / 2 * mean_{non-batch axes} (label - pred)^2``.

    (MXNet documents a sum; its code, matched here, takes the mean over the non-batch axes.)

    >>> import tapegrad as mx
    >>> mx.gluon.loss.L2Loss()(mx.nd.array([[1.0, 3.0]]), mx.nd.array([[0.0, 0.0]])
    ...                        ).asnumpy().tolist()
    [2.5]
    """

    def __init__(self, weight: float = 1.0, batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        label = _reshape_like(label, pred, type(self).__name__)
        loss = F.square(label - pred)
        loss = _apply_weighting(F, loss, self._weight / 2, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class L1Loss(Loss):
    r"""Absolute error: ``L = mean_{non-batch axes} |label - pred|``.

    >>> import tapegrad as mx
    >>> mx.gluon.loss.L1Loss()(mx.nd.array([[1.0, -3.0]]), mx.nd.array([[0.0, 0.0]])
    ...                        ).asnumpy().tolist()
    [2.0]
    """

    def __init__(self, weight: float | None = None, batch_axis: int = 0, **kwargs: Any) -> None:
        super().__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        label = _reshape_like(label, pred, type(self).__name__)
        loss = F.abs(label - pred)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


def _softrelu_neg_abs(F: Any, x: Any) -> Any:
    """``log(1 + exp(-|x|))``, never overflowing."""
    return F.Activation(-F.abs(x), act_type="softrelu")


class SigmoidBinaryCrossEntropyLoss(Loss):
    r"""Binary cross-entropy (alias ``SigmoidBCELoss``).

    With ``from_sigmoid=False`` (default) ``pred`` holds logits and the stable form
    ``max(x, 0) - x * z + log(1 + exp(-|x|))`` is used; with ``pos_weight`` (broadcast to
    pred, e.g. shape (1, classes)) the positive term is weighted:
    ``x - x * z + (1 + z * (pos_weight - 1)) * (log(1 + exp(-|x|)) + max(-x, 0))``.
    With ``from_sigmoid=True`` ``pred`` holds probabilities:
    ``-(log(p + 1e-12) * z * pos_weight + log(1 - p + 1e-12) * (1 - z))``.

    Call as ``loss(pred, label, sample_weight=None, pos_weight=None)``.

    >>> import tapegrad as mx
    >>> l = mx.gluon.loss.SigmoidBCELoss()(mx.nd.array([[0.0]]), mx.nd.array([[1.0]]))
    >>> round(l.item(), 4)
    0.6931
    """

    def __init__(
        self,
        from_sigmoid: bool = False,
        weight: float | None = None,
        batch_axis: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._from_sigmoid = from_sigmoid

    def hybrid_forward(
        self, F: Any, pred: Any, label: Any, sample_weight: Any = None, pos_weight: Any = None
    ) -> Any:
        label = _reshape_like(label, pred, type(self).__name__)
        if not self._from_sigmoid:
            if pos_weight is None:
                loss = F.relu(pred) - pred * label + _softrelu_neg_abs(F, pred)
            else:
                log_weight = 1 + F.broadcast_mul(pos_weight - 1, label)
                loss = (
                    pred - pred * label + log_weight * (_softrelu_neg_abs(F, pred) + F.relu(-pred))
                )
        else:
            eps = 1e-12
            if pos_weight is None:
                loss = -(F.log(pred + eps) * label + F.log(1.0 - pred + eps) * (1.0 - label))
            else:
                loss = -(
                    F.broadcast_mul(F.log(pred + eps) * label, pos_weight)
                    + F.log(1.0 - pred + eps) * (1.0 - label)
                )
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


def _check_sparse_label(who: str, pred: Any, label: Any, axis: int) -> None:
    ax = axis % pred.ndim
    expected = pred.shape[:ax] + pred.shape[ax + 1 :]
    if math.prod(label.shape) != math.prod(expected):
        raise ShapeError(
            f"{who}: label of shape {tuple(label.shape)} does not fit pred of shape "
            f"{tuple(pred.shape)}: with sparse_label=True label must hold one class index per "
            f"position, shape {expected}. Fix: pass class indices, or sparse_label=False for "
            "one-hot/probability labels."
        )


class SoftmaxCrossEntropyLoss(Loss):
    r"""Softmax cross-entropy (alias ``SoftmaxCELoss``).

    ``p = log_softmax(pred, axis)`` (or ``p = pred`` when ``from_logits=True``, meaning pred
    already holds log-probabilities, as in MXNet). With ``sparse_label=True`` (default) label
    holds class indices, of pred's shape without ``axis``, and ``L = -p[label]``; otherwise
    label holds a distribution of pred's shape and ``L = -sum(label * p, axis)``.

    >>> import tapegrad as mx
    >>> l = mx.gluon.loss.SoftmaxCELoss()(mx.nd.array([[0.0, 0.0]]), mx.nd.array([1]))
    >>> round(l.item(), 4)
    0.6931
    """

    def __init__(
        self,
        axis: int = -1,
        sparse_label: bool = True,
        from_logits: bool = False,
        weight: float | None = None,
        batch_axis: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        if self._sparse_label and not self._from_logits and hasattr(F, "softmax_ce_loss"):
            _check_sparse_label(type(self).__name__, pred, label, self._axis)
            if (
                sample_weight is None
                and self._batch_axis == 0
                and len(pred.shape) == 2
                and self._axis % 2 == 1
            ):
                # (batch, classes): the per-sample loss is already the batch mean's result
                loss = F.softmax_ce_loss(pred, label, axis=self._axis)
                return _apply_weighting(F, loss, self._weight)
            loss = F.expand_dims(F.softmax_ce_loss(pred, label, axis=self._axis), self._axis)
            loss = _apply_weighting(F, loss, self._weight, sample_weight)
            return _batch_mean(F, loss, self._batch_axis)
        if not self._from_logits:
            pred = F.log_softmax(pred, self._axis)
        if self._sparse_label:
            _check_sparse_label(type(self).__name__, pred, label, self._axis)
            loss = -F.pick(pred, label, axis=self._axis, keepdims=True)
        else:
            label = _reshape_like(label, pred, type(self).__name__)
            loss = -F.sum(pred * label, axis=self._axis, keepdims=True)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(Loss):
    r"""Kullback-Leibler divergence ``L = mean(label * (log(label + 1e-12) - p))`` where
    ``p = pred`` holds log-probabilities (``from_logits=True``, default) or
    ``p = log_softmax(pred, axis)``.

    >>> import tapegrad as mx
    >>> l = mx.gluon.loss.KLDivLoss(from_logits=False)(
    ...     mx.nd.array([[0.0, 0.0]]), mx.nd.array([[0.5, 0.5]]))
    >>> abs(round(l.item(), 6))
    0.0
    """

    def __init__(
        self,
        from_logits: bool = True,
        axis: int = -1,
        weight: float | None = None,
        batch_axis: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._axis = axis

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        if not self._from_logits:
            pred = F.log_softmax(pred, self._axis)
        loss = label * (F.log(label + 1e-12) - pred)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class HuberLoss(Loss):
    r"""Smoothed L1: with ``d = |label - pred|``, ``L = mean(d > rho ? d - rho/2 :
    d^2 / (2 rho))``.

    >>> import tapegrad as mx
    >>> mx.gluon.loss.HuberLoss()(mx.nd.array([[0.5, 3.0]]), mx.nd.zeros((1, 2))
    ...                           ).asnumpy().tolist()
    [1.3125]
    """

    def __init__(
        self, rho: float = 1, weight: float | None = None, batch_axis: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._rho = rho

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        label = _reshape_like(label, pred, type(self).__name__)
        loss = F.abs(label - pred)
        loss = F.where(loss > self._rho, loss - 0.5 * self._rho, (0.5 / self._rho) * F.square(loss))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class HingeLoss(Loss):
    r"""``L = mean(max(0, margin - pred * label))`` with labels in {-1, 1}."""

    def __init__(
        self, margin: float = 1, weight: float | None = None, batch_axis: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        label = _reshape_like(label, pred, type(self).__name__)
        loss = F.relu(self._margin - pred * label)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class SquaredHingeLoss(Loss):
    r"""``L = mean(max(0, margin - pred * label)^2)`` with labels in {-1, 1}."""

    def __init__(
        self, margin: float = 1, weight: float | None = None, batch_axis: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        label = _reshape_like(label, pred, type(self).__name__)
        loss = F.square(F.relu(self._margin - pred * label))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class LogisticLoss(Loss):
    r"""``L = mean(log(1 + exp(-pred * label)))``; labels in {-1, 1} (``label_format=
    'signed'``) or {0, 1} (``'binary'``)."""

    def __init__(
        self,
        weight: float | None = None,
        batch_axis: int = 0,
        label_format: str = "signed",
        **kwargs: Any,
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        if label_format not in ("signed", "binary"):
            raise ValueError(
                f"label_format can only be signed or binary, received {label_format!r}."
            )
        self._label_format = label_format

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        label = _reshape_like(label, pred, type(self).__name__)
        if self._label_format == "signed":
            label = (label + 1.0) / 2.0
        loss = F.relu(pred) - pred * label + _softrelu_neg_abs(F, pred)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class TripletLoss(Loss):
    r"""``L = max(sum(|positive - pred|^2 - |negative - pred|^2) + margin, 0)``, the sum over
    the non-batch axes."""

    def __init__(
        self, margin: float = 1, weight: float | None = None, batch_axis: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(
        self, F: Any, pred: Any, positive: Any, negative: Any, sample_weight: Any = None
    ) -> Any:
        positive = _reshape_like(positive, pred, type(self).__name__, "positive")
        negative = _reshape_like(negative, pred, type(self).__name__, "negative")
        loss = F.sum(
            F.square(positive - pred) - F.square(negative - pred),
            axis=self._batch_axis,
            exclude=True,
        )
        loss = F.relu(loss + self._margin)
        return _apply_weighting(F, loss, self._weight, sample_weight)


class PoissonNLLLoss(Loss):
    r"""Poisson negative log-likelihood. With ``from_logits=True`` (default) pred is the log
    of the rate: ``L = exp(pred) - target * pred``; otherwise
    ``L = pred - target * log(pred + epsilon)``. ``compute_full`` adds Stirling's term
    ``target * log(target) - target + 0.5 * log(2 pi target)`` where target > 1.

    Call as ``loss(pred, target, sample_weight=None, epsilon=1e-08)``.
    """

    def __init__(
        self,
        weight: float | None = None,
        from_logits: bool = True,
        batch_axis: int = 0,
        compute_full: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._compute_full = compute_full

    def hybrid_forward(
        self, F: Any, pred: Any, target: Any, sample_weight: Any = None, epsilon: float = 1e-08
    ) -> Any:
        target = _reshape_like(target, pred, type(self).__name__, "target")
        if self._from_logits:
            loss = F.exp(pred) - target * pred
        else:
            loss = pred - target * F.log(pred + epsilon)
        if self._compute_full:
            stirling = target * F.log(target) - target + 0.5 * F.log(2 * target * np.pi)
            loss = loss + stirling * (target > 1)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class CosineEmbeddingLoss(Loss):
    r"""With ``c`` the cosine similarity of ``input1`` and ``input2`` along the last axis:
    ``L = 1 - c`` where label is 1, else ``clip(c - margin, 0, 1 - margin)``.

    Call as ``loss(input1, input2, label, sample_weight=None)``; label has one entry per row.
    """

    def __init__(
        self, weight: float | None = None, batch_axis: int = 0, margin: float = 0, **kwargs: Any
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(
        self, F: Any, input1: Any, input2: Any, label: Any, sample_weight: Any = None
    ) -> Any:
        input1 = _reshape_like(input1, input2, type(self).__name__, "input1")
        x_norm = F.sqrt(F.sum(F.square(input1), axis=-1)).reshape((-1, 1))
        y_norm = F.sqrt(F.sum(F.square(input2), axis=-1)).reshape((-1, 1))
        x_dot_y = F.sum(input1 * input2, axis=-1).reshape((-1, 1))
        cos_sim = x_dot_y / F.maximum(x_norm * y_norm, 1e-12)
        label = _reshape_like(label, cos_sim, type(self).__name__)
        loss = F.where(label == 1, 1 - cos_sim, F.clip(cos_sim - self._margin, 0, 1 - self._margin))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)
