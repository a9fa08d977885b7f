"""Evaluation metrics (``mx.metric``), as MXNet 1.9's ``python/mxnet/metric.py``.

A metric accumulates over batches: ``update(labels, preds)`` takes lists of NDArrays (or a
single NDArray each), ``get()`` returns ``(name, value)``, ``reset()`` starts over. Values
are NaN before the first update. Every metric also keeps "global" totals that
``reset_local()`` leaves alone (``get_global()``).

As in MXNet 1.x, MSE, MAE and RMSE average the per-batch values (each ``update`` counts one
instance per label array), while Accuracy and CrossEntropy average over samples.

>>> import tapegrad as mx
>>> acc = mx.metric.Accuracy()
>>> acc.update(labels=[mx.nd.array([0, 1, 1])],
...            preds=[mx.nd.array([[0.3, 0.7], [0, 1.], [0.4, 0.6]])])
>>> acc.get()
('accuracy', 0.6666666666666666)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "EvalMetric",
    "CompositeEvalMetric",
    "Accuracy",
    "TopKAccuracy",
    "MAE",
    "MSE",
    "RMSE",
    "CrossEntropy",
    "NegativeLogLikelihood",
    "Loss",
    "CustomMetric",
    "create",
    "register",
    "check_label_shapes",
    "np_metric",
]

_REGISTRY: dict[str, type] = {}


def register(klass: type) -> type:
    """Register a metric class under its lower-cased name (a decorator)."""
    _REGISTRY[klass.__name__.lower()] = klass
    return klass


def _alias(*names: str) -> Callable[[type], type]:
    def deco(klass: type) -> type:
        for n in names:
            _REGISTRY[n.lower()] = klass
        return klass

    return deco


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    return np.asarray(x)


def _is_array(x: Any) -> bool:
    return hasattr(x, "asnumpy") or isinstance(x, np.ndarray)


def check_label_shapes(
    labels: Any, preds: Any, wrap: bool = False, shape: bool = False
) -> tuple[Any, Any]:
    """Check that labels and predictions match in number (or in shape with ``shape=True``);
    with ``wrap=True`` single arrays are wrapped in lists."""
    if not shape:
        label_shape, pred_shape = len(labels), len(preds)
    else:
        label_shape, pred_shape = labels.shape, preds.shape
    if label_shape != pred_shape:
        raise ValueError(
            f"Shape of labels {label_shape} does not match shape of predictions {pred_shape}"
        )
    if wrap:
        if _is_array(labels):
            labels = [labels]
        if _is_array(preds):
            preds = [preds]
    return labels, preds


class EvalMetric:
    """Base class of the metrics.

    Args:
        name: the metric's display name.
        output_names, label_names: names used by :meth:`update_dict` to pick arrays.

    Subclasses implement ``update(labels, preds)`` adding to ``sum_metric`` and
    ``num_inst`` (and the ``global_`` twins); ``get()`` returns their ratio.
    """

    def __init__(
        self,
        name: str,
        output_names: list | None = None,
        label_names: list | None = None,
        **kwargs: Any,
    ) -> None:
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._has_global_stats = kwargs.pop("has_global_stats", False)
        self._kwargs = kwargs
        self.reset()

    def __str__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self) -> dict:
        """Settings from which :func:`create` rebuilds the metric."""
        config = self._kwargs.copy()
        config.update(
            {
                "metric": type(self).__name__,
                "name": self.name,
                "output_names": self.output_names,
                "label_names": self.label_names,
            }
        )
        return config

    def update_dict(self, label: dict, pred: dict) -> None:
        """Update with dicts name -> array (selected by ``label_names``/``output_names``)."""
        if self.output_names is not None:
            preds = [pred[name] for name in self.output_names]
        else:
            preds = list(pred.values())
        if self.label_names is not None:
            labels = [label[name] for name in self.label_names]
        else:
            labels = list(label.values())
        self.update(labels, preds)

    def update(self, labels: Any, preds: Any) -> None:
        """Add a batch: ``labels`` and ``preds`` are lists of NDArrays (or single arrays)."""
        raise NotImplementedError(f"{type(self).__name__} must define update(labels, preds)")

    def _add(self, value: float, count: float) -> None:
        self.sum_metric += value
        self.global_sum_metric += value
        self.num_inst += count
        self.global_num_inst += count

    def reset(self) -> None:
        """Forget everything accumulated (local and global)."""
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self) -> None:
        """Forget the local totals only."""
        self.num_inst = 0
        self.sum_metric = 0.0

    def get(self, all_ranks: bool = False) -> tuple[Any, Any]:
        """``(name, value)``; the value is NaN when nothing was accumulated.

        Args:
            all_ranks: in distributed training (:mod:`tapegrad.distributed`), the value over
                the samples of every rank: the totals are summed over the ranks before the
                division. A collective call: every rank must make it.
        """
        if all_ranks:
            return self._over_ranks(False)
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, float(self.sum_metric / self.num_inst))

    def get_global(self, all_ranks: bool = False) -> tuple[Any, Any]:
        """``(name, value)`` over everything since the last :meth:`reset` (``all_ranks``:
        over every rank's samples, as in :meth:`get`)."""
        if all_ranks:
            return self._over_ranks(True)
        if self._has_global_stats:
            if self.global_num_inst == 0:
                return (self.name, float("nan"))
            return (self.name, float(self.global_sum_metric / self.global_num_inst))
        return self.get()

    def _totals(self, global_: bool) -> list[tuple[str, float, float]]:
        """``[(name, sum, count)]``: what :meth:`get` (or :meth:`get_global`) divides."""
        if global_ and self._has_global_stats:
            return [(self.name, float(self.global_sum_metric), float(self.global_num_inst))]
        return [(self.name, float(self.sum_metric), float(self.num_inst))]

    def _over_ranks(self, global_: bool) -> tuple[Any, Any]:
        from .distributed.collectives import sum_over_ranks

        totals = self._totals(global_)
        summed = sum_over_ranks(np.array([[s, n] for _, s, n in totals], dtype=np.float64), 9)
        names = [name for name, _, _ in totals]
        values = [float(s / n) if n else float("nan") for s, n in summed]
        if isinstance(self, CompositeEvalMetric):
            return names, values
        return names[0], values[0]

    def get_name_value(self) -> list[tuple[str, float]]:
        """``[(name, value), ...]``."""
        name, value = self.get()
        if not isinstance(name, list):
            name = [name]
        if not isinstance(value, list):
            value = [value]
        return list(zip(name, value))

    def get_global_name_value(self) -> list[tuple[str, float]]:
        """``[(name, global value), ...]``."""
        name, value = self.get_global()
        if not isinstance(name, list):
            name = [name]
        if not isinstance(value, list):
            value = [value]
        return list(zip(name, value))


def create(metric: Any, *args: Any, **kwargs: Any) -> EvalMetric:
    """A metric from a name (``'acc'``, ``'mse'``, ``'ce'``, ...), an instance, a list of
    those (a :class:`CompositeEvalMetric`) or a function ``f(label, pred)``.

    >>> import tapegrad as mx
    >>> m = mx.metric.create(['acc', 'mse'])
    >>> [c.name for c in m.metrics]
    ['accuracy', 'mse']
    """
    if isinstance(metric, EvalMetric):
        return metric
    if isinstance(metric, list):
        composite = CompositeEvalMetric()
        for child in metric:
            composite.add(create(child, *args, **kwargs))
        return composite
    if isinstance(metric, str):
        klass = _REGISTRY.get(metric.lower())
        if klass is None:
            raise ValueError(
                f"Cannot find metric {metric!r}. Known metrics: {', '.join(sorted(_REGISTRY))}."
            )
        return klass(*args, **kwargs)
    if callable(metric):
        return CustomMetric(metric, *args, **kwargs)
    raise TypeError(f"create: cannot make a metric from {metric!r}")


@register
@_alias("composite")
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns lists of names and values.

    >>> import tapegrad as mx
    >>> m = mx.metric.CompositeEvalMetric([mx.metric.Accuracy(), mx.metric.MSE()])
    >>> m.update([mx.nd.array([1, 0])], [mx.nd.array([1, 1])])
    >>> m.get()
    (['accuracy', 'mse'], [0.5, 0.5])
    """

    def __init__(
        self,
        metrics: list | None = None,
        name: str = "composite",
        output_names: list | None = None,
        label_names: list | None = None,
    ) -> None:
        super().__init__(
            "composite", output_names=output_names, label_names=label_names, has_global_stats=True
        )
        self.metrics = [create(i) for i in (metrics or [])]

    def add(self, metric: Any) -> None:
        """Add a child metric (an instance or a name)."""
        self.metrics.append(create(metric))

    def get_metric(self, index: int) -> EvalMetric:
        """The child metric at ``index``."""
        try:
            return self.metrics[index]
        except IndexError:
            raise ValueError(
                f"Metric index {index} is out of range 0 and {len(self.metrics)}"
            ) from None

    def update_dict(self, labels: dict, preds: dict) -> None:
        if self.label_names is not None:
            labels = OrderedDict([i for i in labels.items() if i[0] in self.label_names])
        if self.output_names is not None:
            preds = OrderedDict([i for i in preds.items() if i[0] in self.output_names])
        for metric in self.metrics:
            metric.update_dict(labels, preds)

    def update(self, labels: Any, preds: Any) -> None:
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self) -> None:
        for metric in getattr(self, "metrics", []):
            metric.reset()

    def reset_local(self) -> None:
        for metric in self.metrics:
            metric.reset_local()

    def _collect(self, getter: str) -> tuple[list, list]:
        names: list = []
        values: list = []
        for metric in self.metrics:
            name, value = getattr(metric, getter)()
            names.extend(name if isinstance(name, list) else [name])
            values.extend(value if isinstance(value, list) else [value])
        return names, values

    def get(self, all_ranks: bool = False) -> tuple[list, list]:
        if all_ranks:
            return self._over_ranks(False)
        return self._collect("get")

    def get_global(self, all_ranks: bool = False) -> tuple[list, list]:
        if all_ranks:
            return self._over_ranks(True)
        return self._collect("get_global")

    def _totals(self, global_: bool) -> list[tuple[str, float, float]]:
        return [t for metric in self.metrics for t in metric._totals(global_)]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"metrics": [i.get_config() for i in self.metrics]})
        return config


@register
@_alias("acc")
class Accuracy(EvalMetric):
    """Fraction of samples whose predicted class equals the label. Predictions may be class
    indices (same shape as the labels) or scores, reduced by ``argmax`` over ``axis``.

    >>> import tapegrad as mx
    >>> acc = mx.metric.Accuracy()
    >>> acc.update([mx.nd.array([2, 0])], [mx.nd.array([[0, 0, 1], [0, 1, 0]])])
    >>> acc.get()
    ('accuracy', 0.5)
    """

    def __init__(
        self,
        axis: int = 1,
        name: str = "accuracy",
        output_names: list | None = None,
        label_names: list | None = None,
    ) -> None:
        super().__init__(
            name,
            axis=axis,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self.axis = axis

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            p = _np(pred)
            lab = _np(label)
            if p.shape != lab.shape:
                p = np.argmax(p, axis=self.axis)
            p = p.astype("int32").ravel()
            lab = lab.astype("int32").ravel()
            check_label_shapes(lab, p)
            self._add(int((p == lab).sum()), len(p))


@register
@_alias("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """Fraction of samples whose label is among the ``top_k`` highest-scored classes; the
    name becomes ``'top_k_accuracy_<k>'``. ``top_k`` must be > 1 (use Accuracy for 1).

    >>> import tapegrad as mx
    >>> m = mx.metric.TopKAccuracy(top_k=2)
    >>> m.update([mx.nd.array([2, 0])], [mx.nd.array([[0.1, 0.5, 0.4], [0.2, 0.3, 0.5]])])
    >>> m.get()
    ('top_k_accuracy_2', 0.5)
    """

    def __init__(
        self,
        top_k: int = 1,
        name: str = "top_k_accuracy",
        output_names: list | None = None,
        label_names: list | None = None,
    ) -> None:
        super().__init__(
            name,
            top_k=top_k,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self.top_k = top_k
        if not self.top_k > 1:
            raise ValueError("TopKAccuracy: Please use Accuracy if top_k is no more than 1")
        self.name += f"_{self.top_k}"

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            p = _np(pred).astype("float32")
            if p.ndim > 2:
                raise ValueError(
                    f"TopKAccuracy: predictions should be no more than 2 dims, got shape {p.shape}"
                )
            order = np.argsort(p, axis=-1)
            lab = _np(label).astype("int32")
            check_label_shapes(lab, order)
            n = order.shape[0]
            if order.ndim == 1:
                correct = int((order.ravel() == lab.ravel()).sum())
            else:
                num_classes = order.shape[1]
                k = min(num_classes, self.top_k)
                correct = 0
                for j in range(k):
                    correct += int((order[:, num_classes - 1 - j].ravel() == lab.ravel()).sum())
            self._add(correct, n)


def _as_2d(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], 1) if a.ndim == 1 else a


@register
class MAE(EvalMetric):
    """Mean absolute error, averaged over batches.

    >>> import tapegrad as mx
    >>> m = mx.metric.MAE()
    >>> m.update([mx.nd.array([2.5, 0.0, 2, 8])], [mx.nd.array([3, -0.5, 2, 7])])
    >>> m.get()
    ('mae', 0.5)
    """

    def __init__(
        self, name: str = "mae", output_names: list | None = None, label_names: list | None = None
    ) -> None:
        super().__init__(
            name, output_names=output_names, label_names=label_names, has_global_stats=True
        )

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            lab, p = _as_2d(_np(label)), _as_2d(_np(pred))
            self._add(float(np.abs(lab - p).mean()), 1)


@register
class MSE(EvalMetric):
    """Mean squared error, averaged over batches.

    >>> import tapegrad as mx
    >>> m = mx.metric.MSE()
    >>> m.update([mx.nd.array([2.5, 0.0, 2, 8])], [mx.nd.array([3, -0.5, 2, 7])])
    >>> m.get()
    ('mse', 0.375)
    """

    def __init__(
        self, name: str = "mse", output_names: list | None = None, label_names: list | None = None
    ) -> None:
        super().__init__(
            name, output_names=output_names, label_names=label_names, has_global_stats=True
        )

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            lab, p = _as_2d(_np(label)), _as_2d(_np(pred))
            self._add(float(((lab - p) ** 2.0).mean()), 1)


@register
class RMSE(EvalMetric):
    """Root mean squared error of each batch, averaged over batches.

    >>> import tapegrad as mx
    >>> m = mx.metric.RMSE()
    >>> m.update([mx.nd.array([2.5, 0.0, 2, 8])], [mx.nd.array([3, -0.5, 2, 7])])
    >>> round(m.get()[1], 6)
    0.612372
    """

    def __init__(
        self, name: str = "rmse", output_names: list | None = None, label_names: list | None = None
    ) -> None:
        super().__init__(
            name, output_names=output_names, label_names=label_names, has_global_stats=True
        )

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            lab, p = _as_2d(_np(label)), _as_2d(_np(pred))
            self._add(float(np.sqrt(((lab - p) ** 2.0).mean())), 1)


def _pick_probs(label: Any, pred: Any, who: str) -> np.ndarray:
    lab = _np(label).ravel()
    p = _np(pred)
    if lab.shape[0] != p.shape[0]:
        raise ValueError(
            f"{who}: {lab.shape[0]} labels but predictions of shape {p.shape}; "
            "they need one row per label"
        )
    return p[np.arange(lab.shape[0]), np.int64(lab)]


@register
@_alias("ce")
class CrossEntropy(EvalMetric):
    """Cross entropy of predicted probabilities, ``-log(p[label] + eps)`` averaged over
    samples (predictions must already be probabilities, e.g. after softmax).

    >>> import tapegrad as mx
    >>> ce = mx.metric.CrossEntropy()
    >>> ce.update([mx.nd.array([0, 1, 1])], [mx.nd.array([[0.3, 0.7], [0, 1.], [0.4, 0.6]])])
    >>> round(ce.get()[1], 6)
    0.571599
    """

    def __init__(
        self,
        eps: float = 1e-12,
        name: str = "cross-entropy",
        output_names: list | None = None,
        label_names: list | None = None,
    ) -> None:
        super().__init__(
            name, eps=eps, output_names=output_names, label_names=label_names, has_global_stats=True
        )
        self.eps = eps

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            prob = _pick_probs(label, pred, "CrossEntropy")
            self._add(float((-np.log(prob + self.eps)).sum()), prob.shape[0])


@register
@_alias("nll_loss")
class NegativeLogLikelihood(EvalMetric):
    """Negative log-likelihood: the same value as :class:`CrossEntropy`, name
    ``'nll-loss'``."""

    def __init__(
        self,
        eps: float = 1e-12,
        name: str = "nll-loss",
        output_names: list | None = None,
        label_names: list | None = None,
    ) -> None:
        super().__init__(
            name, eps=eps, output_names=output_names, label_names=label_names, has_global_stats=True
        )
        self.eps = eps

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            prob = _pick_probs(label, pred, "NegativeLogLikelihood")
            self._add(float((-np.log(prob + self.eps)).sum()), prob.shape[0])


@register
class Loss(EvalMetric):
    """Mean of the values passed as predictions (to show a loss); labels are ignored.

    >>> import tapegrad as mx
    >>> m = mx.metric.Loss()
    >>> m.update(None, [mx.nd.array([1.0, 3.0])])
    >>> m.get()
    ('loss', 2.0)
    """

    def __init__(
        self, name: str = "loss", output_names: list | None = None, label_names: list | None = None
    ) -> None:
        super().__init__(
            name, output_names=output_names, label_names=label_names, has_global_stats=True
        )

    def update(self, _: Any, preds: Any) -> None:
        if _is_array(preds):
            preds = [preds]
        for pred in preds:
            p = _np(pred)
            self._add(float(p.sum()), p.size)


@register
class CustomMetric(EvalMetric):
    """A metric from ``feval(label, pred)`` on NumPy arrays, returning a number (one
    instance) or ``(sum_metric, num_inst)``.

    >>> import tapegrad as mx
    >>> m = mx.metric.CustomMetric(lambda l, p: float(abs(l - p).sum()), name='l1')
    >>> m.update([mx.nd.array([1.0, 2.0])], [mx.nd.array([1.5, 2.0])])
    >>> m.get()
    ('l1', 0.5)
    """

    def __init__(
        self,
        feval: Callable,
        name: str | None = None,
        allow_extra_outputs: bool = False,
        output_names: list | None = None,
        label_names: list | None = None,
    ) -> None:
        if name is None:
            name = getattr(feval, "__name__", "custom")
            if "<" in name:
                name = f"custom({name})"
        super().__init__(
            name,
            feval=feval,
            allow_extra_outputs=allow_extra_outputs,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels: Any, preds: Any) -> None:
        if not self._allow_extra_outputs:
            labels, preds = check_label_shapes(labels, preds, True)
        for pred, label in zip(preds, labels):
            reval = self._feval(_np(label), _np(pred))
            if isinstance(reval, tuple):
                s, n = reval
                self._add(s, n)
            else:
                self._add(reval, 1)

    def get_config(self) -> dict:
        raise NotImplementedError("CustomMetric cannot be serialized")


def np_metric(
    numpy_feval: Callable, name: str | None = None, allow_extra_outputs: bool = False
) -> CustomMetric:
    """A :class:`CustomMetric` from a function of NumPy arrays (MXNet's ``metric.np``)."""

    def feval(label: np.ndarray, pred: np.ndarray) -> Any:
        return numpy_feval(label, pred)

    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)
