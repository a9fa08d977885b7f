"""Every loss against its MXNet 1.9 formula written in NumPy (weight, sample_weight,
batch_axis), and its gradient against finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd
from tapegrad.gluon import loss as gloss

RNG = np.random.default_rng(2)
EPS = 1e-6


def A(x) -> mx.nd.NDArray:
    return mx.nd.array(x, dtype=np.float64)


def batch_mean(loss: np.ndarray, batch_axis: int = 0) -> np.ndarray:
    axes = tuple(i for i in range(loss.ndim) if i != batch_axis)
    return loss.mean(axis=axes) if axes else loss


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def fd(f, a: np.ndarray) -> np.ndarray:
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + EPS
        fp = f(a)
        a[idx] = old - EPS
        fm = f(a)
        a[idx] = old
        g[idx] = (fp - fm) / (2 * EPS)
    return g


def check_pred_grad(loss_fn, pred: np.ndarray, *rest, rtol: float = 1e-5) -> None:
    """d sum(loss(pred, *rest) * r) / d pred against finite differences."""
    args = [A(a) if isinstance(a, np.ndarray) else a for a in rest]
    r = RNG.standard_normal(loss_fn(A(pred), *args).shape)
    p = A(pred)
    p.attach_grad()
    with autograd.record():
        out = (loss_fn(p, *args) * A(r)).sum()
    out.backward()

    def f(v: np.ndarray) -> float:
        return float((loss_fn(A(v), *args).asnumpy() * r).sum())

    np.testing.assert_allclose(p.grad.asnumpy(), fd(f, pred.copy()), rtol=rtol, atol=1e-8)


# ----------------------------------------------------------------------------- L2/L1


def test_l2loss_is_half_mean_of_squares() -> None:
    pred, label = RNG.standard_normal((4, 3, 2)), RNG.standard_normal((4, 6))
    out = gloss.L2Loss()(A(pred), A(label)).asnumpy()
    ref = batch_mean((label.reshape(pred.shape) - pred) ** 2 / 2)  # MEAN, not sum
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    assert out.shape == (4,)
    sw = RNG.uniform(0, 1, (4, 1, 1))
    out = gloss.L2Loss(weight=3.0)(A(pred), A(label), A(sw)).asnumpy()
    np.testing.assert_allclose(
        out, batch_mean((label.reshape(pred.shape) - pred) ** 2 * sw * 1.5), rtol=1e-12
    )
    out = gloss.L2Loss(batch_axis=1)(A(pred), A(label)).asnumpy()
    np.testing.assert_allclose(
        out, batch_mean((label.reshape(pred.shape) - pred) ** 2 / 2, 1), rtol=1e-12
    )
    assert out.shape == (3,)
    check_pred_grad(gloss.L2Loss(weight=2.0), pred, label)


def test_l1loss() -> None:
    pred, label = RNG.standard_normal((5, 4)), RNG.standard_normal((5, 4))
    np.testing.assert_allclose(
        gloss.L1Loss()(A(pred), A(label)).asnumpy(), batch_mean(np.abs(label - pred)), rtol=1e-12
    )
    sw = RNG.uniform(0, 1, (5, 1))
    np.testing.assert_allclose(
        gloss.L1Loss(weight=0.5)(A(pred), A(label), A(sw)).asnumpy(),
        batch_mean(np.abs(label - pred) * sw * 0.5),
        rtol=1e-12,
    )
    check_pred_grad(gloss.L1Loss(), pred, label)


def test_one_dimensional_prediction_keeps_batch() -> None:
    pred, label = RNG.standard_normal(6), RNG.standard_normal(6)
    np.testing.assert_allclose(
        gloss.L2Loss()(A(pred), A(label)).asnumpy(), (label - pred) ** 2 / 2, rtol=1e-12
    )


def test_label_size_mismatch_names_the_loss() -> None:
    with pytest.raises(mx.base.ShapeError, match="L2Loss.*label"):
        gloss.L2Loss()(mx.nd.ones((4, 2)), mx.nd.ones((4, 3)))
    with pytest.raises(TypeError, match="weight must be a number"):
        gloss.L1Loss(weight="2")(mx.nd.ones((2, 2)), mx.nd.ones((2, 2)))


# -------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax_ce_sparse(axis: int) -> None:
    pred = RNG.standard_normal((4, 5, 3))
    ax = axis % 3
    label_shape = tuple(s for i, s in enumerate(pred.shape) if i != ax)
    label = RNG.integers(0, pred.shape[ax], label_shape)
    logp = log_softmax(pred, ax)
    picked = np.take_along_axis(logp, np.expand_dims(label, ax), axis=ax)
    out = gloss.SoftmaxCrossEntropyLoss(axis=axis)(A(pred), A(label)).asnumpy()
    np.testing.assert_allclose(out, batch_mean(-picked), rtol=1e-12)
    check_pred_grad(gloss.SoftmaxCELoss(axis=axis), pred, label.astype(np.float64))


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("weight", [None, 2.5])
def test_softmax_ce_sparse_2d(axis: int, weight: float | None) -> None:
    # (batch, classes) along axis 1 takes a shorter path; axis 0 (classes on the batch axis)
    # must keep MXNet's shape, one mean per batch row
    pred = RNG.standard_normal((4, 3))
    ax = axis % 2
    label = RNG.integers(0, pred.shape[ax], pred.shape[1 - ax])
    picked = np.take_along_axis(log_softmax(pred, ax), np.expand_dims(label, ax), axis=ax)
    loss = gloss.SoftmaxCrossEntropyLoss(axis=axis, weight=weight)
    out = loss(A(pred), A(label)).asnumpy()
    np.testing.assert_allclose(out, batch_mean(-picked) * (weight or 1.0), rtol=1e-12)
    check_pred_grad(loss, pred, label.astype(np.float64))


def test_softmax_ce_dense_label_weights_and_from_logits() -> None:
    pred = RNG.standard_normal((6, 4))
    label = RNG.dirichlet(np.ones(4), 6)
    sw = RNG.uniform(0, 1, (6, 1))
    out = gloss.SoftmaxCrossEntropyLoss(sparse_label=False, weight=2.0)(
        A(pred), A(label), A(sw)
    ).asnumpy()
    ref = -(log_softmax(pred, 1) * label).sum(axis=1, keepdims=True) * sw * 2.0
    np.testing.assert_allclose(out, batch_mean(ref), rtol=1e-12)
    # from_logits=True: pred already holds log-probabilities, used as they are
    logp = log_softmax(pred, 1)
    idx = RNG.integers(0, 4, 6)
    out = gloss.SoftmaxCrossEntropyLoss(from_logits=True)(A(logp), A(idx)).asnumpy()
    np.testing.assert_allclose(out, -logp[np.arange(6), idx], rtol=1e-12)
    raw = gloss.SoftmaxCrossEntropyLoss(from_logits=True)(A(pred), A(idx)).asnumpy()
    np.testing.assert_allclose(raw, -pred[np.arange(6), idx], rtol=1e-12)
    check_pred_grad(gloss.SoftmaxCELoss(sparse_label=False), pred, label)


def test_softmax_ce_bad_sparse_label() -> None:
    with pytest.raises(mx.base.ShapeError, match="sparse_label"):
        gloss.SoftmaxCELoss()(mx.nd.ones((4, 3)), mx.nd.ones((4, 3)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def test_sigmoid_bce_from_logits_and_pos_weight() -> None:
    pred = RNG.standard_normal((5, 3)) * 3
    label = (RNG.random((5, 3)) < 0.5).astype(np.float64)
    p = sigmoid(pred)
    out = gloss.SigmoidBinaryCrossEntropyLoss()(A(pred), A(label)).asnumpy()
    np.testing.assert_allclose(
        out, batch_mean(-(label * np.log(p) + (1 - label) * np.log(1 - p))), rtol=1e-10
    )
    pw = RNG.uniform(0.5, 3, (1, 3))
    out = gloss.SigmoidBCELoss()(A(pred), A(label), None, A(pw)).asnumpy()
    ref = -(label * np.log(p) * pw + (1 - label) * np.log(1 - p))
    np.testing.assert_allclose(out, batch_mean(ref), rtol=1e-10)
    sw = RNG.uniform(0, 1, (5, 1))
    out = gloss.SigmoidBCELoss(weight=0.3)(A(pred), A(label), A(sw)).asnumpy()
    np.testing.assert_allclose(
        out, batch_mean(-(label * np.log(p) + (1 - label) * np.log(1 - p)) * sw * 0.3), rtol=1e-10
    )
    check_pred_grad(gloss.SigmoidBCELoss(), pred, label)
    check_pred_grad(lambda a, b, c: gloss.SigmoidBCELoss()(a, b, None, c), pred, label, pw)


def test_sigmoid_bce_extreme_logits_are_finite() -> None:
    out = gloss.SigmoidBCELoss()(
        mx.nd.array([[1000.0, -1000.0]]), mx.nd.array([[0.0, 1.0]])
    ).asnumpy()
    np.testing.assert_allclose(out, [1000.0], rtol=1e-6)


def test_sigmoid_bce_from_sigmoid() -> None:
    prob = RNG.uniform(0.05, 0.95, (4, 2))
    label = RNG.uniform(0, 1, (4, 2))
    eps = 1e-12
    out = gloss.SigmoidBCELoss(from_sigmoid=True)(A(prob), A(label)).asnumpy()
    ref = -(np.log(prob + eps) * label + np.log(1 - prob + eps) * (1 - label))
    np.testing.assert_allclose(out, batch_mean(ref), rtol=1e-10)
    pw = np.array([[2.0, 0.5]])
    out = gloss.SigmoidBCELoss(from_sigmoid=True)(A(prob), A(label), None, A(pw)).asnumpy()
    ref = -(np.log(prob + eps) * label * pw + np.log(1 - prob + eps) * (1 - label))
    np.testing.assert_allclose(out, batch_mean(ref), rtol=1e-10)
    check_pred_grad(gloss.SigmoidBCELoss(from_sigmoid=True), prob, label)


def test_kldiv() -> None:
    pred = RNG.standard_normal((3, 4))
    label = RNG.dirichlet(np.ones(4), 3)
    out = gloss.KLDivLoss()(A(log_softmax(pred, 1)), A(label)).asnumpy()
    ref = label * (np.log(label + 1e-12) - log_softmax(pred, 1))
    np.testing.assert_allclose(out, batch_mean(ref), rtol=1e-10)
    out2 = gloss.KLDivLoss(from_logits=False)(A(pred), A(label)).asnumpy()
    np.testing.assert_allclose(out2, out, rtol=1e-10)
    check_pred_grad(gloss.KLDivLoss(from_logits=False, weight=2.0), pred, label)


# --------------------------------------------------------------------- robust losses


@pytest.mark.parametrize("rho", [1.0, 0.5])
def test_huber(rho: float) -> None:
    pred = RNG.standard_normal((4, 5)) * 2
    label = RNG.standard_normal((4, 5))
    d = np.abs(label - pred)
    ref = np.where(d > rho, d - 0.5 * rho, 0.5 / rho * d**2)
    np.testing.assert_allclose(
        gloss.HuberLoss(rho=rho)(A(pred), A(label)).asnumpy(), batch_mean(ref), rtol=1e-12
    )
    check_pred_grad(gloss.HuberLoss(rho=rho), pred, label)


def test_hinge_logistic_triplet() -> None:
    pred = RNG.standard_normal((4, 3))
    label = np.where(RNG.random((4, 3)) < 0.5, -1.0, 1.0)
    np.testing.assert_allclose(
        gloss.HingeLoss()(A(pred), A(label)).asnumpy(),
        batch_mean(np.maximum(0, 1 - pred * label)),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        gloss.SquaredHingeLoss(margin=2)(A(pred), A(label)).asnumpy(),
        batch_mean(np.maximum(0, 2 - pred * label) ** 2),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        gloss.LogisticLoss()(A(pred), A(label)).asnumpy(),
        batch_mean(np.log1p(np.exp(-pred * label))),
        rtol=1e-10,
    )
    binary = (label + 1) / 2
    np.testing.assert_allclose(
        gloss.LogisticLoss(label_format="binary")(A(pred), A(binary)).asnumpy(),
        batch_mean(np.log1p(np.exp(-pred * label))),
        rtol=1e-10,
    )
    pos, neg = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    ref = np.maximum(((pos - pred) ** 2 - (neg - pred) ** 2).sum(axis=1) + 1, 0)
    np.testing.assert_allclose(
        gloss.TripletLoss()(A(pred), A(pos), A(neg)).asnumpy(), ref, rtol=1e-12
    )
    with pytest.raises(ValueError, match="label_format"):
        gloss.LogisticLoss(label_format="other")


def test_poisson_and_cosine_embedding() -> None:
    pred = RNG.standard_normal((3, 4))
    target = RNG.integers(0, 5, (3, 4)).astype(np.float64)
    np.testing.assert_allclose(
        gloss.PoissonNLLLoss()(A(pred), A(target)).asnumpy(),
        batch_mean(np.exp(pred) - target * pred),
        rtol=1e-12,
    )
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    label = np.array([1.0, -1.0, -1.0])
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    ref = np.where(label == 1, 1 - cos, np.clip(cos - 0.1, 0, 0.9))
    out = gloss.CosineEmbeddingLoss(margin=0.1)(A(a), A(b), A(label)).asnumpy()
    np.testing.assert_allclose(out, ref, rtol=1e-10)


def test_loss_repr_and_block_nature() -> None:
    assert repr(gloss.L2Loss()) == "L2Loss(batch_axis=0, w=1.0)"
    assert repr(gloss.SoftmaxCELoss(weight=0.5)) == "SoftmaxCrossEntropyLoss(batch_axis=0, w=0.5)"
    assert gloss.SoftmaxCELoss is gloss.SoftmaxCrossEntropyLoss
    assert isinstance(gloss.L1Loss(), mx.gluon.HybridBlock)
