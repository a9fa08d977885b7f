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

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "EvalMetric",
    "CompositeEvalMetric",
    "Accuracy",
    "TopKAccuracy",
    "F1",
    "MCC",
    "Perplexity",
    "PearsonCorrelation",
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


class _BinaryCounts:
    """True/false positive/negative counts of a binary classifier, local and global (MXNet's
    ``_BinaryClassificationMetrics``): the predicted class is the argmax of axis 1."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.local = np.zeros(4)  # tp, fp, fn, tn
        self.glob = np.zeros(4)

    def reset_local(self) -> None:
        self.local = np.zeros(4)

    def update(self, label: Any, pred: Any, who: str) -> None:
        p = _np(pred)
        lab = _np(label).astype("int32").ravel()
        if p.ndim != 2 or p.shape[0] != lab.shape[0]:
            raise ValueError(
                f"{who}: predictions of shape {p.shape} for {lab.shape[0]} labels; it needs "
                "one row of class scores per label, shape (batch, 2)"
            )
        if len(np.unique(lab)) > 2:
            raise ValueError(f"{who} currently only supports binary classification.")
        pt = np.argmax(p, axis=1) == 1
        lt = lab == 1
        counts = np.array(
            [(pt & lt).sum(), (pt & ~lt).sum(), (~pt & lt).sum(), (~pt & ~lt).sum()], float
        )
        self.local += counts
        self.glob += counts

    @staticmethod
    def fscore(c: np.ndarray) -> float:
        tp, fp, fn, _ = c
        precision = tp / (tp + fp) if tp + fp > 0 else 0.0
        recall = tp / (tp + fn) if tp + fn > 0 else 0.0
        s = precision + recall
        return float(2 * precision * recall / s) if s > 0 else 0.0

    @staticmethod
    def mcc(c: np.ndarray) -> float:
        tp, fp, fn, tn = c
        if not c.sum():
            return 0.0
        denom = 1.0
        for t in (tp + fp, tp + fn, tn + fp, tn + fn):
            if t != 0:  # MXNet replaces zero terms by 1
                denom *= t
        return float((tp * tn - fp * fn) / math.sqrt(denom))


class _BinaryMetric(EvalMetric):
    """F1 and MCC: a score of the counts, averaged over batches (``average='macro'``, the
    counts restart at each update, as in MXNet) or of all counts (``'micro'``)."""

    _score = staticmethod(_BinaryCounts.fscore)

    def __init__(
        self,
        name: str,
        output_names: list | None = None,
        label_names: list | None = None,
        average: str = "macro",
    ) -> None:
        if average not in ("macro", "micro"):
            raise ValueError(f"{type(self).__name__}: average={average!r}; use 'macro' or 'micro'")
        self.average = average
        self._counts = _BinaryCounts()
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            average=average,
            has_global_stats=True,
        )

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        c = self._counts
        for label, pred in zip(labels, preds):
            c.update(label, pred, type(self).__name__)
        if self.average == "macro":
            self._add(self._score(c.local), 1)
            self.global_sum_metric += self._score(c.glob) - self._score(c.local)
            c.reset()
        else:
            self.sum_metric = self._score(c.local) * c.local.sum()
            self.num_inst = int(c.local.sum())
            self.global_sum_metric = self._score(c.glob) * c.glob.sum()
            self.global_num_inst = int(c.glob.sum())

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "_counts"):
            self._counts.reset()

    def reset_local(self) -> None:
        super().reset_local()
        self._counts.reset_local()


@register
class F1(_BinaryMetric):
    """F1 score of a binary classifier, ``2 precision recall / (precision + recall)``;
    predictions are class scores of shape (batch, 2) (the class is their argmax).
    ``average='macro'`` (default) averages the batches' scores, ``'micro'`` scores all
    samples together.

    >>> import tapegrad as mx
    >>> f1 = mx.metric.F1()
    >>> f1.update([mx.nd.array([0., 1., 1.])], [mx.nd.array([[0.3, 0.7], [0., 1.], [0.4, 0.6]])])
    >>> f1.get()
    ('f1', 0.8)
    """

    def __init__(
        self,
        name: str = "f1",
        output_names: list | None = None,
        label_names: list | None = None,
        average: str = "macro",
    ) -> None:
        super().__init__(name, output_names, label_names, average)


@register
class MCC(_BinaryMetric):
    """Matthews correlation coefficient of a binary classifier,
    ``(tp tn - fp fn) / sqrt((tp + fp)(tp + fn)(tn + fp)(tn + fn))`` with zero factors of the
    denominator taken as 1 (as MXNet); predictions and ``average`` as :class:`F1`.

    >>> import tapegrad as mx
    >>> m = mx.metric.MCC()
    >>> m.update([mx.nd.array([0., 1., 1., 0.])],
    ...          [mx.nd.array([[0.3, 0.7], [0., 1.], [0.4, 0.6], [0.8, 0.2]])])
    >>> round(m.get()[1], 6)
    0.57735
    """

    _score = staticmethod(_BinaryCounts.mcc)

    def __init__(
        self,
        name: str = "mcc",
        output_names: list | None = None,
        label_names: list | None = None,
        average: str = "macro",
    ) -> None:
        super().__init__(name, output_names, label_names, average)


@register
class Perplexity(EvalMetric):
    """``exp(-mean(log p[label]))`` over the samples, ``p`` the predicted probabilities along
    ``axis``; labels equal to ``ignore_label`` are left out (None: none), probabilities are
    floored at 1e-10, as in MXNet.

    >>> import tapegrad as mx
    >>> perp = mx.metric.Perplexity(ignore_label=None)
    >>> perp.update([mx.nd.array([0, 1, 1])], [mx.nd.array([[0.3, 0.7], [0, 1.], [0.4, 0.6]])])
    >>> round(perp.get()[1], 6)
    1.771098
    """

    def __init__(
        self,
        ignore_label: Any,
        axis: int = -1,
        name: str = "perplexity",
        output_names: list | None = None,
        label_names: list | None = None,
    ) -> None:
        super().__init__(
            name,
            ignore_label=ignore_label,
            output_names=output_names,
            label_names=label_names,
            has_global_stats=True,
        )
        self.ignore_label = ignore_label
        self.axis = axis

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        loss, num = 0.0, 0
        for label, pred in zip(labels, preds):
            p = _np(pred)
            lab = _np(label).reshape(-1)
            if p.ndim == 0 or lab.size * p.shape[self.axis] != p.size:
                raise ValueError(
                    f"Perplexity: labels of shape {_np(label).shape} do not fit predictions "
                    f"of shape {p.shape}: it needs one label per row of axis {self.axis}"
                )
            moved = np.moveaxis(p, self.axis, -1).reshape(lab.size, -1)
            picked = moved[np.arange(lab.size), lab.astype(np.int64)]
            if self.ignore_label is not None:
                keep = lab != self.ignore_label
                picked = np.where(keep, picked, 1.0)
                num -= int((~keep).sum())
            loss -= float(np.log(np.maximum(1e-10, picked)).sum())
            num += picked.size
        self._add(loss, num)

    def get(self, all_ranks: bool = False) -> tuple[Any, Any]:
        name, v = super().get(all_ranks)
        return name, math.exp(v) if v == v else v

    def get_global(self, all_ranks: bool = False) -> tuple[Any, Any]:
        name, v = super().get_global(all_ranks)
        return name, math.exp(v) if v == v else v


@register
@_alias("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson correlation of predictions and labels (flattened): the batches' coefficients
    averaged (``average='macro'``, default), or one coefficient of all samples (``'micro'``).

    >>> import tapegrad as mx
    >>> m = mx.metric.PearsonCorrelation()
    >>> m.update([mx.nd.array([1., 2., 3., 4.])], [mx.nd.array([1.1, 1.9, 3.2, 3.9])])
    >>> round(m.get()[1], 4)
    0.9934
    """

    def __init__(
        self,
        name: str = "pearsonr",
        output_names: list | None = None,
        label_names: list | None = None,
        average: str = "macro",
    ) -> None:
        if average not in ("macro", "micro"):
            raise ValueError(f"PearsonCorrelation: average={average!r}; use 'macro' or 'micro'")
        self.average = average
        super().__init__(
            name,
            output_names=output_names,
            label_names=label_names,
            average=average,
            has_global_stats=True,
        )

    def reset(self) -> None:
        super().reset()
        self._sums = np.zeros(6)  # n, sum x, sum y, sum xx, sum yy, sum xy

    def update(self, labels: Any, preds: Any) -> None:
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            y = _np(label).ravel().astype(np.float64)
            x = _np(pred).ravel().astype(np.float64)
            check_label_shapes(y, x)
            if self.average == "macro":
                self._add(float(np.corrcoef(x, y)[0, 1]), 1)
                continue
            self._sums += [x.size, x.sum(), y.sum(), x @ x, y @ y, x @ y]
            n, sx, sy, sxx, syy, sxy = self._sums
            cov, vx, vy = sxy - sx * sy / n, sxx - sx * sx / n, syy - sy * sy / n
            r = float(cov / math.sqrt(vx * vy)) if vx > 0 and vy > 0 else float("nan")
            self.num_inst += 1
            self.global_num_inst += 1
            self.sum_metric = r * self.num_inst
            self.global_sum_metric = r * self.global_num_inst


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
