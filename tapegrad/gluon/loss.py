"""Loss functions (MXNet 1.9 ``gluon/loss.py``), each a HybridBlock.

Each loss follows MXNet 1.9.1's source: the elementwise loss, times ``sample_weight``
(broadcast) and the scalar ``weight``, then reduced as MXNet reduces it. ``label`` is reshaped
to ``pred``'s shape where the formula pairs them elementwise. They are compositions of
differentiable ``mx.nd`` operators (any order).

Reduction and output shape (``B`` = the size of ``batch_axis``):

================================  ===============================================  ===========
loss                              reduction over the non-batch axes                 output
================================  ===============================================  ===========
L2, L1, SigmoidBCE, SoftmaxCE,    mean                                              (B,)
Huber, Hinge, SquaredHinge,
Logistic
KLDivLoss                         **sum** (MXNet: ``F.sum(..., exclude=True)``)     (B,)
TripletLoss                       sum of the squared distances, then the hinge      (B,)
SDMLLoss                          KLDivLoss of the (B, B) distance softmax          (B,)
PoissonNLLLoss                    mean over **every** axis (MXNet ``F.mean(loss)``)  (1,)
CosineEmbeddingLoss               none: one value per row of the last axis          (N, 1)
================================  ===============================================  ===========

Derivatives at kinks (non-differentiable points) follow PyTorch, everywhere in tapegrad:

* ``relu'(0) = 0`` and ``abs'(0) = 0``: HingeLoss, SquaredHingeLoss and TripletLoss (relu)
  give 0 exactly at the margin; L1Loss and HuberLoss (abs) give 0 at ``pred == label``.
* ``clip(x, lo, hi)`` passes the gradient at ``lo`` and ``hi`` (as ``torch.clamp``):
  CosineEmbeddingLoss (label -1) has derivative 1 in ``cos_sim`` at ``cos_sim == margin``,
  as PyTorch's ``cosine_embedding_loss`` (``clamp_min``).
* ``maximum(a, b)`` / ``minimum(a, b)`` split the gradient 0.5 / 0.5 where ``a == b``, as
  ``torch.maximum`` does.
* Binary cross-entropy on logits (SigmoidBCELoss, LogisticLoss) has the derivative
  ``sigmoid(x) - z`` everywhere, ``0.5 - z`` at ``x = 0`` (a zero-initialised output layer
  starts there); it is computed as ``softrelu(x) - x * z`` (``softrelu(x) = log(1 + exp(x))``,
  stable), which equals MXNet's ``max(x, 0) - x * z + log(1 + exp(-|x|))`` in value.
* ``ELU'(0) = alpha`` (``x <= 0`` takes the negative branch, as PyTorch's ``elu_backward``;
  ``nn.ELU``/``nn.SELU`` call ``nd.LeakyReLU``, where the rule lives).

No NaN where the mathematics is finite: ``0 * log(0)`` counts as 0 (KLDivLoss with a zero
label, PoissonNLLLoss(compute_full=True) with target 0 or 1), the norm of a zero vector has
derivative 0 (CosineEmbeddingLoss), and an ``eps`` that would underflow in the input's dtype
(1e-12 in float16) is raised to that dtype's smallest normal number (6.1e-5 in float16).

Bad input is refused with an error naming the loss, the argument and the fix: arguments that
are not arrays (None, lists, numbers, strings; NumPy arrays are converted), a ``pred`` without
the batch axis (0-d), labels of the wrong size, and class labels outside ``[0, classes)``.
"""

from __future__ import annotations

import inspect
import math
from numbers import Number
from typing import Any

import numpy as np

from .. import ndarray as nd
from ..base import LabelError, ShapeError, TapegradError
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
    "SDMLLoss",
]


class LossInputError(TapegradError, TypeError):
    """An argument of a loss is not an array (None, a list, a number, a string...)."""


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


def _eps(x: Any, eps: float) -> float:
    """``eps``, raised to the smallest normal number of ``x``'s float dtype where it would
    underflow there (1e-12 is 0 in float16, and ``log(p + 0)`` is ``-inf`` at ``p = 0``)."""
    dt = np.dtype(x.dtype)
    if dt.kind != "f":
        return eps
    return max(eps, float(np.finfo(dt).tiny))


def _xlogx(F: Any, x: Any) -> Any:
    """``x * log(x)`` with ``0 * log(0) = 0``, finite in value and derivative at 0."""
    pos = x > 0
    return x * F.log(F.where(pos, x, F.ones_like(x)))


_SIGNATURES: dict[type, tuple[list[str], int, set[str]] | None] = {}


def _signature(cls: type) -> tuple[list[str], int, set[str]] | None:
    """The names of ``cls.hybrid_forward``'s inputs after ``F``, how many are required, and
    which are arrays (no default, or default None); ``None`` (nothing checked) for a
    ``hybrid_forward`` defined outside this module or taking ``*args``."""
    if cls in _SIGNATURES:
        return _SIGNATURES[cls]
    params = list(inspect.signature(cls.hybrid_forward).parameters.values())[2:]
    if cls.hybrid_forward.__module__ != __name__ or any(
        p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    ):
        sig = None  # a user's loss: its inputs may be anything
    else:
        names = [p.name for p in params]
        required = sum(p.default is inspect.Parameter.empty for p in params)
        arrays = {
            p.name for p in params if p.default is inspect.Parameter.empty or p.default is None
        }
        sig = (names, required, arrays)
    _SIGNATURES[cls] = sig
    return sig


def _as_array(who: str, name: str, value: Any) -> Any:
    if isinstance(value, nd.NDArray):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return nd.array(value, dtype=value.dtype)
    if value is None:
        got = "None"
    elif isinstance(value, np.ndarray):
        got = f"a NumPy array of dtype {value.dtype}"
    else:
        got = f"{type(value).__name__} {value!r:.60}"
    raise LossInputError(
        f"{who}: argument '{name}' must be an NDArray, got {got}. Fix: pass an NDArray, e.g. "
        f"mx.nd.array(...), with the batch axis first."
    )


class Loss(HybridBlock):
    """Base class of losses.

    Args:
        weight: global scalar weight of the loss (None for none).
        batch_axis: the axis that indexes samples.

    Calling a built-in loss checks its inputs first: every array argument of
    ``hybrid_forward`` (those without a default or with default None) must be an NDArray (a
    NumPy array is converted), and the first must have the axis ``batch_axis``. A subclass
    with its own ``hybrid_forward`` gets no such checks (its inputs may be anything).
    """

    def __init__(self, weight: float | None, batch_axis: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._weight = weight
        self._batch_axis = batch_axis

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Check the inputs (see the class docstring), then run ``hybrid_forward``."""
        sig = _SIGNATURES[type(self)] if type(self) in _SIGNATURES else _signature(type(self))
        if sig is not None:
            names, required, _ = sig
            n = len(args) + 1
            if (
                kwargs
                or not required <= n <= len(names)
                or not isinstance(x, nd.NDArray)
                or not all(isinstance(a, nd.NDArray) for a in args)
            ):
                x, args, kwargs = self._check_inputs(sig, x, args, kwargs)
            if not -len(x.shape) <= self._batch_axis < len(x.shape):
                raise ShapeError(
                    f"{type(self).__name__}: {names[0]} of shape {tuple(x.shape)} has no axis "
                    f"batch_axis={self._batch_axis}; a loss needs one value per sample along "
                    f"the batch axis. Fix: give {names[0]} a batch axis (e.g. x.reshape((1,)) "
                    "for a single value, or x.expand_dims(0) for a single sample)."
                )
            self._check_values(x, args, kwargs)
        return super().forward(x, *args, **kwargs)

    def _check_values(self, x: Any, args: tuple, kwargs: dict) -> None:
        """Checks of the inputs' values (class labels), made here on the arrays given rather
        than in ``hybrid_forward``: a hybridized loss's trace cannot read them, and its
        compiled code does not run Python."""

    def _check_inputs(self, sig: tuple, x: Any, args: tuple, kwargs: dict) -> tuple:
        """The inputs bound to ``hybrid_forward``'s names, arrays checked (NumPy converted)."""
        who = type(self).__name__
        names, required, arrays = sig
        if len(args) + 1 > len(names):
            raise LossInputError(
                f"{who} takes at most {len(names)} inputs ({', '.join(names)}) but got "
                f"{len(args) + 1} positional ones. Fix: call it as {who}()({', '.join(names)})."
            )
        given = dict(zip(names, (x, *args)))
        for k in kwargs:
            if k not in names:
                raise LossInputError(
                    f"{who} got an unexpected input '{k}'. Fix: its inputs are {', '.join(names)}."
                )
            if k in given:
                raise LossInputError(f"{who} got two values for input '{k}'.")
        given.update(kwargs)
        missing = [n for n in names[:required] if n not in given]
        if missing:
            raise LossInputError(
                f"{who} is missing the input(s) {', '.join(missing)}. Fix: call it as "
                f"{who}()({', '.join(names[:required])})."
            )
        for i, n in enumerate(names):
            if n in arrays and (given.get(n) is not None or i < required):
                given[n] = _as_array(who, n, given[n])
        pos = [given.pop(n) for n in names[: len(args) + 1]]
        return pos[0], tuple(pos[1:]), given

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
    r"""Absolute error: ``L = mean_{non-batch axes} |label - pred|`` (derivative 0 at
    ``pred == label``).

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


def _softrelu(F: Any, x: Any) -> Any:
    """``log(1 + exp(x))``, never overflowing; derivative ``sigmoid(x)`` everywhere."""
    return F.Activation(x, act_type="softrelu")


class SigmoidBinaryCrossEntropyLoss(Loss):
    r"""Binary cross-entropy (alias ``SigmoidBCELoss``), mean over the non-batch axes.

    With ``from_sigmoid=False`` (default) ``pred`` holds logits ``x`` and, with ``z`` the
    label, ``L = log(1 + exp(x)) - x * z`` (MXNet's ``max(x, 0) - x * z + log(1 +
    exp(-|x|))``, computed stably), whose derivative is ``sigmoid(x) - z`` everywhere,
    ``0.5 - z`` at ``x = 0``. With ``pos_weight`` (broadcast to pred, e.g. shape
    (1, classes)) the positive term is weighted:
    ``L = x - x * z + (1 + z * (pos_weight - 1)) * log(1 + exp(-x))``.
    With ``from_sigmoid=True`` ``pred`` holds probabilities:
    ``L = -(log(p + eps) * z * pos_weight + log(1 - p + eps) * (1 - z))`` with ``eps = 1e-12``
    (6.1e-5 in float16, where 1e-12 is 0).

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
                loss = _softrelu(F, pred) - pred * label
            else:
                log_weight = 1 + F.broadcast_mul(pos_weight - 1, label)
                loss = pred - pred * label + log_weight * _softrelu(F, -pred)
        else:
            eps = _eps(pred, 1e-12)
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


def _check_class_axis(who: str, pred: Any, axis: int) -> int:
    ndim = len(pred.shape)
    if not -ndim <= axis < ndim:
        raise ShapeError(
            f"{who}: pred of shape {tuple(pred.shape)} has no class axis {axis}. Fix: pass "
            "pred with a batch axis and a class axis, e.g. shape (batch, classes), or set axis."
        )
    return axis % ndim


def _check_sparse_label(who: str, pred: Any, label: Any, axis: int, values: bool = True) -> None:
    """label must hold one whole number in ``[0, classes)`` per position of pred without
    ``axis`` (MXNet 1.9's ``pick`` would clip -1 to class 0 and ``classes`` to the last);
    ``values=False``: its size only."""
    ax = axis % len(pred.shape)
    expected = pred.shape[:ax] + pred.shape[ax + 1 :]
    if math.prod(label.shape) != math.prod(expected):
        raise ShapeError(
            f"{who}: label of shape {tuple(label.shape)} does not fit pred of shape "
            f"{tuple(pred.shape)}: with sparse_label=True label must hold one class index per "
            f"position, shape {expected}. Fix: pass class indices, or sparse_label=False for "
            "one-hot/probability labels."
        )
    if not values:
        return
    values = np.asarray(label)
    n = pred.shape[ax]
    if values.size == 0:
        return
    lo, hi = values.min(), values.max()
    if values.dtype.kind in "iu":
        if lo >= 0 and hi < n:
            return
        bad = (values < 0) | (values >= n)
    elif values.dtype.kind == "f":
        if lo >= 0 and hi < n and not (values != np.trunc(values)).any():
            return  # (NaN fails lo >= 0)
        bad = ~((values >= 0) & (values < n) & (values == np.trunc(values)))
    else:
        bad = np.ones(values.shape, dtype=bool)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        v = values[where].item()
        v = int(v) if isinstance(v, float) and v.is_integer() else v
        raise LabelError(
            f"{who}: label {v} at position {where} is not a class index of "
            f"pred of shape {tuple(pred.shape)}, which has {n} classes on axis {axis} "
            f"({int(bad.sum())} of {values.size} labels are bad). MXNet 1.9 silently clips "
            "such labels (-1 becomes class 0); tapegrad refuses them. Fix: pass whole numbers in "
            f"0..{n - 1}; to leave a position out of the loss, give it any valid class and "
            "sample_weight 0."
        )


class SoftmaxCrossEntropyLoss(Loss):
    r"""Softmax cross-entropy (alias ``SoftmaxCELoss``), mean over the non-batch axes.

    ``p = log_softmax(pred, axis)`` (or ``p = pred`` when ``from_logits=True``, meaning pred
    already holds log-probabilities, as in MXNet). With ``sparse_label=True`` (default) label
    holds class indices, of pred's shape without ``axis``, and ``L = -p[label]``; otherwise
    label holds a distribution of pred's shape and ``L = -sum(label * p, axis)``.

    Sparse labels must be whole numbers in ``[0, classes)``: others raise a ``LabelError``
    (MXNet 1.9's ``pick`` silently clips them, so a padding label -1 trained class 0).

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

    def _check_values(self, x: Any, args: tuple, kwargs: dict) -> None:
        label = args[0] if args else kwargs.get("label")
        if self._sparse_label and isinstance(label, nd.NDArray):
            who = type(self).__name__
            _check_class_axis(who, x, self._axis)
            _check_sparse_label(who, x, label, self._axis)

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        who = type(self).__name__
        ax = _check_class_axis(who, pred, self._axis)
        if self._sparse_label:  # (the label values: checked by forward, before this)
            _check_sparse_label(who, pred, label, self._axis, values=False)
        if self._sparse_label and not self._from_logits and hasattr(F, "softmax_ce_loss"):
            if F is nd and isinstance(label, nd.NDArray):
                # forward checked the label values once, in the loss's words
                loss = nd.ndarray_functions._softmax_ce_checked(pred, label, ax)
            else:
                loss = F.softmax_ce_loss(pred, label, axis=self._axis)
            if sample_weight is None and len(pred.shape) == 2 and self._batch_axis % 2 == 0:
                if ax == 1:
                    # (batch, classes): the per-sample loss is already the batch mean's result
                    return _apply_weighting(F, loss, self._weight)
            loss = F.expand_dims(loss, ax)
            loss = _apply_weighting(F, loss, self._weight, sample_weight)
            return _batch_mean(F, loss, self._batch_axis)
        if not self._from_logits:
            pred = F.log_softmax(pred, self._axis)
        if self._sparse_label:
            loss = -F.pick(pred, label, axis=self._axis, keepdims=True)
        else:
            label = _reshape_like(label, pred, who)
            loss = -F.sum(pred * label, axis=self._axis, keepdims=True)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(Loss):
    r"""Kullback-Leibler divergence, **summed** over the non-batch axes (as MXNet 1.9.1's
    code does: ``F.sum(loss, axis=batch_axis, exclude=True)``):
    ``L = sum(label * (log(label) - p))`` where ``p = pred`` holds log-probabilities
    (``from_logits=True``, default) or ``p = log_softmax(pred, axis)``.

    ``0 * log(0)`` counts as 0 (MXNet writes ``log(label + 1e-12)``, NaN in float16). A label
    with as many elements as pred is reshaped to pred's shape; otherwise it broadcasts.

    >>> import tapegrad as mx
    >>> l = mx.gluon.loss.KLDivLoss()(mx.nd.array([[0.2, 0.5, 0.2, 0.1]]).log(),
    ...                               mx.nd.array([[0.3, 0.4, 0.1, 0.2]]))
    >>> round(l.item(), 6)
    0.101697
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
        if tuple(label.shape) != tuple(pred.shape) and label.size == pred.size:
            label = label.reshape(pred.shape)
        loss = _xlogx(F, label) - label * pred
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.sum(loss, axis=self._batch_axis, exclude=True)


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
    r"""``L = mean(max(0, margin - pred * label))`` with labels in {-1, 1} (derivative 0 at
    the margin: ``relu'(0) = 0``)."""

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
    'signed'``) or {0, 1} (``'binary'``). Computed as binary cross-entropy on logits
    (``log(1 + exp(x)) - x * z`` with ``z`` the 0/1 label), so the derivative is
    ``sigmoid(x) - z`` everywhere, ``0.5 - z`` at ``x = 0``."""

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
                f"LogisticLoss: label_format can only be 'signed' or 'binary', received "
                f"{label_format!r}. Fix: 'signed' for labels -1/1, 'binary' for 0/1."
            )
        self._label_format = label_format

    def hybrid_forward(self, F: Any, pred: Any, label: Any, sample_weight: Any = None) -> Any:
        label = _reshape_like(label, pred, type(self).__name__)
        if self._label_format == "signed":
            label = (label + 1.0) / 2.0
        loss = _softrelu(F, pred) - pred * label
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class TripletLoss(Loss):
    r"""``L = max(sum(|positive - pred|^2 - |negative - pred|^2) + margin, 0)``, the sum over
    the non-batch axes.

    Call as ``loss(pred, positive, negative)``; tapegrad also takes an optional
    ``sample_weight`` (broadcast to the (batch,) result), which MXNet's has not.
    """

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
    r"""Poisson negative log-likelihood, averaged over **every** element (MXNet's
    ``F.mean(loss)``: the result has shape (1,), not one value per sample).

    With ``from_logits=True`` (default) pred is the log of the rate:
    ``L = exp(pred) - target * pred``; otherwise ``L = pred - target * log(pred + epsilon)``
    (``epsilon`` raised to 6.1e-5 in float16, where 1e-8 is 0). ``compute_full`` adds
    Stirling's term ``target * log(target) - target + 0.5 * log(2 pi target)`` where
    target > 1 (0 elsewhere, with finite derivatives at target 0).

    Call as ``loss(pred, target, sample_weight=None, epsilon=1e-08)``.

    >>> import tapegrad as mx
    >>> l = mx.gluon.loss.PoissonNLLLoss()(mx.nd.zeros((2, 2)), mx.nd.ones((2, 2)))
    >>> l.shape, l.item()
    ((1,), 1.0)
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
            loss = pred - target * F.log(pred + _eps(pred, epsilon))
        if self._compute_full:
            big = target > 1
            t = F.where(big, target, F.ones_like(target))
            stirling = t * F.log(t) - t + 0.5 * F.log(2 * t * np.pi)
            loss = loss + stirling * big
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.mean(loss)


def _norm_rows(F: Any, x: Any) -> Any:
    """L2 norm over the last axis, with derivative 0 (not NaN) at a zero vector."""
    sq = F.sum(F.square(x), axis=-1)
    pos = sq > 0
    return F.where(pos, F.sqrt(F.where(pos, sq, F.ones_like(sq))), F.zeros_like(sq))


class CosineEmbeddingLoss(Loss):
    r"""With ``c`` the cosine similarity of ``input1`` and ``input2`` along the last axis,
    ``c = x.y / max(|x| |y|, 1e-12)``: ``L = 1 - c`` where label is 1, ``max(0, c - margin)``
    where label is -1, and 0 for other labels, as MXNet 1.9. The result has shape (N, 1), one
    row per vector (N = batch size for 2-D inputs), like MXNet's; it is not averaged.

    A zero vector gives ``c = 0`` and finite derivatives (those of the formula above: the
    norm of a zero vector has derivative 0). ``1e-12`` is 6.1e-5 in float16.

    Call as ``loss(input1, input2, label, sample_weight=None)``; label has one entry per row.

    >>> import tapegrad as mx
    >>> l = mx.gluon.loss.CosineEmbeddingLoss()(mx.nd.array([[1.0, 0.0], [1.0, 1.0]]),
    ...     mx.nd.array([[0.0, 1.0], [1.0, 1.0]]), mx.nd.array([1, -1]))
    >>> l.shape, [round(v, 6) for v in l.asnumpy()[:, 0].tolist()]
    ((2, 1), [1.0, 1.0])
    """

    def __init__(
        self, weight: float | None = None, batch_axis: int = 0, margin: float = 0, **kwargs: Any
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(
        self, F: Any, input1: Any, input2: Any, label: Any, sample_weight: Any = None
    ) -> Any:
        who = type(self).__name__
        input1 = _reshape_like(input1, input2, who, "input1")
        x_norm = _norm_rows(F, input1).reshape((-1, 1))
        y_norm = _norm_rows(F, input2).reshape((-1, 1))
        x_dot_y = F.sum(input1 * input2, axis=-1).reshape((-1, 1))
        cos_sim = x_dot_y / F.maximum(x_norm * y_norm, _eps(input2, 1e-12))
        if label.size != cos_sim.shape[0]:
            raise ShapeError(
                f"{who}: label of shape {tuple(label.shape)} has {label.size} entries but the "
                f"inputs of shape {tuple(input2.shape)} hold {cos_sim.shape[0]} vectors (along "
                "the last axis). Fix: pass one label (1 or -1) per pair of vectors."
            )
        label = label.reshape((-1, 1))
        is_same = (label == 1).astype(cos_sim.dtype)
        is_apart = (label == -1).astype(cos_sim.dtype)
        same = (1 - cos_sim) * is_same
        apart = F.clip(is_apart * (cos_sim - self._margin), 0, np.inf)
        return _apply_weighting(F, same + apart, self._weight, sample_weight)


class SDMLLoss(Loss):
    r"""Batchwise Smoothed Deep Metric Learning loss (Bonadiman et al., 2019), as MXNet 1.9.

    ``x1`` and ``x2`` are (batch, dim) with ``x1[i]`` and ``x2[i]`` a positive pair and every
    other row of the batch a negative. With ``D[i, j] = |x1[i] - x2[j]|^2`` the loss is the
    KLDivLoss (summed per row) of ``log_softmax(-D, axis=1)`` against the identity smoothed by
    ``smoothing_parameter`` (1 - s on the diagonal, s / (batch - 1) elsewhere), times
    ``weight`` (MXNet 1.9 ignores ``weight``; the default 1 gives the same result).

    >>> import tapegrad as mx
    >>> x = mx.nd.array([[0.0, 0.0], [10.0, 10.0]])
    >>> mx.gluon.loss.SDMLLoss(smoothing_parameter=0.3)(x, x).shape
    (2,)
    """

    def __init__(
        self,
        smoothing_parameter: float = 0.3,
        weight: float = 1.0,
        batch_axis: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(weight, batch_axis, **kwargs)
        with self.name_scope():
            self.kl_loss = KLDivLoss(from_logits=True)
        self.smoothing_parameter = smoothing_parameter

    def hybrid_forward(self, F: Any, x1: Any, x2: Any) -> Any:
        who = type(self).__name__
        if x1.ndim != 2 or tuple(x1.shape) != tuple(x2.shape) or x1.shape[0] < 2:
            raise ShapeError(
                f"{who}: x1 of shape {tuple(x1.shape)} and x2 of shape {tuple(x2.shape)} must "
                "both be (batch, dim) with the same shape and batch >= 2 (the other rows are "
                "the negatives). Fix: pass two aligned (batch, dim) arrays of at least 2 rows."
            )
        n, dim = x1.shape
        d = F.sum(
            F.square(
                F.broadcast_to(F.expand_dims(x1, 1), (n, n, dim))
                - F.broadcast_to(F.expand_dims(x2, 0), (n, n, dim))
            ),
            axis=2,
        )
        gold = F.eye(n, dtype=x1.dtype)
        s = self.smoothing_parameter
        labels = gold * (1 - s) + (1 - gold) * (s / (n - 1))
        loss = self.kl_loss(F.log_softmax(-d, axis=1), labels)
        return _apply_weighting(F, loss, self._weight)
