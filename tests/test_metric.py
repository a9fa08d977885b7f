"""mx.metric against MXNet 1.x's definitions (values computed by hand / in NumPy here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import metric


def test_accuracy_with_scores_and_with_class_indices():
    acc = metric.Accuracy()
    assert math.isnan(acc.get()[1])
    preds = mx.nd.array([[0.3, 0.7], [0, 1.0], [0.4, 0.6]])
    acc.update([mx.nd.array([0, 1, 1])], [preds])
    assert acc.get() == ("accuracy", pytest.approx(2 / 3))
    acc.update([mx.nd.array([1, 1])], [mx.nd.array([1, 0])])  # indices, same shape as labels
    assert acc.get()[1] == pytest.approx(3 / 5)
    acc.update(mx.nd.array([0, 0]), mx.nd.array([[1.0, 0.0], [0.0, 1.0]]))  # bare arrays
    assert acc.num_inst == 7 and acc.sum_metric == 4
    acc.reset()
    assert acc.num_inst == 0 and math.isnan(acc.get()[1])


def test_accuracy_axis():
    scores = mx.nd.array([[0, 9, 0], [0, 0, 5], [7, 0, 0]])
    acc0, acc1 = metric.Accuracy(axis=0), metric.Accuracy()
    acc0.update([mx.nd.array([2, 0, 0])], [scores])  # argmax over axis 0: [2, 0, 1]
    acc1.update([mx.nd.array([2, 0, 0])], [scores])  # argmax over axis 1: [1, 2, 0]
    assert acc0.get()[1] == pytest.approx(2 / 3) and acc1.get()[1] == pytest.approx(1 / 3)


def test_top_k_accuracy():
    rng = np.random.default_rng(0)
    scores = rng.random((20, 6))
    labels = rng.integers(0, 6, 20)
    m = metric.TopKAccuracy(top_k=3)
    assert m.name == "top_k_accuracy_3"
    m.update([mx.nd.array(labels)], [mx.nd.array(scores)])
    top3 = np.argsort(-scores, axis=1)[:, :3]
    expect = np.mean([labels[i] in top3[i] for i in range(20)])
    assert m.get()[1] == pytest.approx(expect)
    with pytest.raises(ValueError, match="top_k"):
        metric.TopKAccuracy(top_k=1)


def test_regression_metrics_average_per_batch_like_mxnet():
    l1, p1 = np.array([2.5, 0.0, 2, 8]), np.array([3, -0.5, 2, 7])
    l2, p2 = np.array([1.0, 1.0]), np.array([3.0, 1.0])
    mse, mae, rmse = metric.MSE(), metric.MAE(), metric.RMSE()
    for m in (mse, mae, rmse):
        m.update([mx.nd.array(l1)], [mx.nd.array(p1)])
        m.update([mx.nd.array(l2)], [mx.nd.array(p2)])
    b1, b2 = np.mean((l1 - p1) ** 2), np.mean((l2 - p2) ** 2)
    assert mse.get() == ("mse", pytest.approx((b1 + b2) / 2))  # not the pooled mean
    assert mae.get()[1] == pytest.approx((np.mean(abs(l1 - p1)) + np.mean(abs(l2 - p2))) / 2)
    assert rmse.get()[1] == pytest.approx((np.sqrt(b1) + np.sqrt(b2)) / 2)
    assert mse.num_inst == 2


def test_cross_entropy():
    ce = metric.CrossEntropy()
    probs = np.array([[0.3, 0.7], [0, 1.0], [0.4, 0.6]])
    ce.update([mx.nd.array([0, 1, 1])], [mx.nd.array(probs)])
    expect = -(np.log(0.3 + 1e-12) + np.log(1 + 1e-12) + np.log(0.6 + 1e-12)) / 3
    assert ce.get() == ("cross-entropy", pytest.approx(expect, rel=1e-6))
    with pytest.raises(ValueError, match="2 labels"):
        ce.update([mx.nd.array([0, 1])], [mx.nd.array(probs)])
    nll = metric.NegativeLogLikelihood()
    nll.update([mx.nd.array([0, 1, 1])], [mx.nd.array(probs)])
    assert nll.get()[1] == pytest.approx(expect, rel=1e-6)


def test_composite_and_create():
    comp = metric.create(["acc", "mse"])
    assert isinstance(comp, metric.CompositeEvalMetric)
    comp.update([mx.nd.array([1, 0])], [mx.nd.array([1, 1])])
    assert comp.get() == (["accuracy", "mse"], [0.5, 0.5])
    assert comp.get_name_value() == [("accuracy", 0.5), ("mse", 0.5)]
    comp.reset()
    assert all(math.isnan(v) for v in comp.get()[1])
    assert isinstance(metric.create("ce"), metric.CrossEntropy)
    assert isinstance(metric.create("top_k_accuracy", top_k=2), metric.TopKAccuracy)
    acc = metric.Accuracy()
    assert metric.create(acc) is acc
    custom = metric.create(lambda label, pred: float(np.abs(label - pred).sum()))
    custom.update([mx.nd.array([1.0])], [mx.nd.array([3.0])])
    assert custom.get()[1] == 2.0
    with pytest.raises(ValueError, match="Cannot find metric"):
        metric.create("nosuch")
    with pytest.raises(ValueError, match="does not match"):
        metric.Accuracy().update([mx.nd.array([1])], [mx.nd.array([1]), mx.nd.array([1])])


def test_global_statistics_survive_reset_local():
    acc = metric.Accuracy()
    acc.update([mx.nd.array([1, 1])], [mx.nd.array([1, 0])])
    acc.reset_local()
    acc.update([mx.nd.array([1, 1])], [mx.nd.array([1, 1])])
    assert acc.get()[1] == 1.0 and acc.get_global()[1] == pytest.approx(0.75)


def test_update_dict_selects_by_name():
    acc = metric.Accuracy(output_names=["out"], label_names=["lab"])
    acc.update_dict(
        {"lab": mx.nd.array([1]), "x": mx.nd.array([0])},
        {"out": mx.nd.array([1]), "y": mx.nd.array([0])},
    )
    assert acc.get()[1] == 1.0
