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


# ------------------------------------------------- F1, MCC, Perplexity, PearsonCorrelation


def _mcc_case():
    # MXNet 1.9.1's MCC docstring: a network that almost always predicts positive
    fp, fn, tp, tn = 1000, 1, 10000, 1
    preds = [
        mx.nd.array([[0.3, 0.7]] * fp + [[0.7, 0.3]] * tn + [[0.7, 0.3]] * fn + [[0.3, 0.7]] * tp)
    ]
    labels = [mx.nd.array([0.0] * (fp + tn) + [1.0] * (fn + tp))]
    return labels, preds


def test_f1_and_mcc_give_mxnets_documented_values():
    labels, preds = _mcc_case()
    f1, mcc = metric.F1(), metric.MCC()
    f1.update(labels=labels, preds=preds)
    mcc.update(labels=labels, preds=preds)
    assert f1.get() == ("f1", pytest.approx(0.95233560306652054, rel=1e-12))
    assert mcc.get() == ("mcc", pytest.approx(0.01917751877733392, rel=1e-12))
    small = metric.F1()
    small.update(
        [mx.nd.array([0.0, 1.0, 1.0])], [mx.nd.array([[0.3, 0.7], [0.0, 1.0], [0.4, 0.6]])]
    )
    assert small.get() == ("f1", pytest.approx(0.8))
    assert isinstance(metric.create("f1"), metric.F1) and isinstance(
        metric.create("mcc"), metric.MCC
    )


def test_f1_macro_averages_batches_and_micro_pools_them():
    b1 = ([mx.nd.array([1.0, 1.0, 0.0, 0.0])], [mx.nd.array([[0, 1], [1, 0], [0, 1], [1, 0]])])
    b2 = ([mx.nd.array([1.0, 0.0])], [mx.nd.array([[0, 1], [1, 0]])])
    macro, micro = metric.F1(), metric.F1(average="micro")
    for m in (macro, micro):
        m.update(*b1)
        m.update(*b2)
    assert macro.get()[1] == pytest.approx((0.5 + 1.0) / 2)  # per batch: 0.5, then 1
    tp, fp, fn = 2, 1, 1  # pooled counts
    assert micro.get()[1] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert macro.get_global()[1] == pytest.approx(0.75) and micro.get_global()[1] == micro.get()[1]
    micro.reset_local()
    assert math.isnan(micro.get()[1]) and micro.get_global()[1] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="only supports binary"):
        metric.F1().update([mx.nd.array([0, 1, 2])], [mx.nd.array(np.eye(3))])
    with pytest.raises(ValueError, match="average='weighted'"):
        metric.MCC(average="weighted")


def test_perplexity_as_mxnet_documents_it_with_ignored_labels():
    preds = [mx.nd.array([[0.3, 0.7], [0, 1.0], [0.4, 0.6]])]
    perp = metric.Perplexity(ignore_label=None)
    perp.update([mx.nd.array([0, 1, 1])], preds)
    assert perp.get() == ("perplexity", pytest.approx(1.7710976285155853, rel=1e-12))
    ignoring = metric.Perplexity(ignore_label=0)  # the first sample is left out
    ignoring.update([mx.nd.array([0, 1, 1])], preds)
    assert ignoring.get()[1] == pytest.approx(math.exp(-(math.log(1.0) + math.log(0.6)) / 2))
    # class axis first, and the 1e-10 floor
    p = np.array([[0.5, 0.0], [0.5, 1.0]])
    axis0 = metric.Perplexity(ignore_label=None, axis=0)
    axis0.update([mx.nd.array([1, 0])], [mx.nd.array(p)])
    assert axis0.get()[1] == pytest.approx(math.exp(-(math.log(0.5) + math.log(1e-10)) / 2))
    with pytest.raises(ValueError, match="do not fit predictions"):
        metric.Perplexity(ignore_label=None).update([mx.nd.array([0, 1])], preds)


def test_pearson_correlation_macro_and_micro():
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=20) for _ in range(3)]
    ys = [x + rng.normal(size=20) for x in xs]
    macro, micro = metric.PearsonCorrelation(), metric.PearsonCorrelation(average="micro")
    for x, y in zip(xs, ys):
        for m in (macro, micro):
            m.update([mx.nd.array(y)], [mx.nd.array(x)])
    want_macro = np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(xs, ys)])
    want_micro = np.corrcoef(np.concatenate(xs), np.concatenate(ys))[0, 1]
    assert macro.get() == ("pearsonr", pytest.approx(want_macro, rel=1e-6))
    assert micro.get()[1] == pytest.approx(want_micro, rel=1e-6)
    assert micro.get_global()[1] == pytest.approx(want_micro, rel=1e-6)


def test_new_metrics_refuse_bad_input_and_settings():
    with pytest.raises(ValueError, match=r"F1: predictions of shape \(3,\) for 3 labels"):
        metric.F1().update([mx.nd.array([0, 1, 1])], [mx.nd.array([0.2, 0.9, 0.7])])
    with pytest.raises(ValueError, match="average='weighted'; use 'macro' or 'micro'"):
        metric.PearsonCorrelation(average="weighted")
    m = metric.F1()
    with pytest.raises(ValueError):
        m.update([mx.nd.array([0, 1, 2])], [mx.nd.array(np.eye(3))])
    assert math.isnan(m.get()[1])  # the refused batch counted nothing
