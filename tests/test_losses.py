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


def batch_sum(loss: np.ndarray, batch_axis: int = 0) -> np.ndarray:
    axes = tuple(i for i in range(loss.ndim) if i != batch_axis)
    return loss.sum(axis=axes) if axes else loss


# ------------------------------------------------------------------ kinks (exact values)
# The derivative at a kink is the analytic value of the documented convention (PyTorch's),
# checked at exactly the kink point: finite differences straddle it and would average.


def pred_grad(loss_fn, pred, *rest) -> np.ndarray:
    p = A(pred)
    p.attach_grad()
    with autograd.record():
        out = loss_fn(p, *[A(r) if isinstance(r, np.ndarray) else r for r in rest]).sum()
    out.backward()
    return p.grad.asnumpy()


def test_bce_with_logits_derivative_at_zero_is_half_minus_label() -> None:
    # a zero-initialised output layer gives logit exactly 0 at step one: sigmoid(0) - z
    z = np.array([[1.0, 0.0, 0.3, 1.0]])
    g = pred_grad(gloss.SigmoidBCELoss(), np.zeros((1, 4)), z)
    np.testing.assert_allclose(g, (0.5 - z) / 4, rtol=1e-12)
    # pos_weight: L = x - x z + (1 + (pw - 1) z) log(1 + exp(-x)), L'(0) = 1 - z - lw / 2
    pw = np.array([[2.0, 3.0, 0.5, 1.0]])
    g = pred_grad(lambda a, b, c: gloss.SigmoidBCELoss()(a, b, None, c), np.zeros((1, 4)), z, pw)
    lw = 1 + (pw - 1) * z
    np.testing.assert_allclose(g, (1 - z - lw / 2) / 4, rtol=1e-12)
    # and still sigmoid(x) - z away from 0, in float32 too
    x = np.array([[-3.0, 0.0, 2.0]])
    zz = np.array([[1.0, 1.0, 0.0]])
    p = mx.nd.array(x, dtype="float32")
    p.attach_grad()
    with autograd.record():
        gloss.SigmoidBCELoss()(p, mx.nd.array(zz, dtype="float32")).backward()
    np.testing.assert_allclose(p.grad.asnumpy(), (sigmoid(x) - zz) / 3, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["signed", "binary"])
def test_logistic_loss_derivative_at_zero(fmt: str) -> None:
    z01 = np.array([[1.0, 0.0]])
    label = z01 * 2 - 1 if fmt == "signed" else z01
    g = pred_grad(gloss.LogisticLoss(label_format=fmt), np.zeros((1, 2)), label)
    np.testing.assert_allclose(g, (0.5 - z01) / 2, rtol=1e-12)


def test_relu_and_abs_kinks_in_losses_give_zero() -> None:
    # relu'(0) = 0: exactly at the margin (pred * label == margin) the hinge has derivative 0
    g = pred_grad(gloss.HingeLoss(), np.array([[1.0, -1.0]]), np.array([[1.0, -1.0]]))
    np.testing.assert_array_equal(g, [[0.0, 0.0]])
    g = pred_grad(gloss.SquaredHingeLoss(), np.array([[1.0]]), np.array([[1.0]]))
    np.testing.assert_array_equal(g, [[0.0]])
    # abs'(0) = 0: L1 at pred == label
    g = pred_grad(gloss.L1Loss(), np.array([[2.0, 0.0]]), np.array([[2.0, 1.0]]))
    np.testing.assert_array_equal(g, [[0.0, -0.5]])
    # TripletLoss at sum(d+ - d-) + margin == 0: relu'(0) = 0
    pred, pos, neg = np.array([[0.0]]), np.array([[1.0]]), np.array([[2.0]])
    g = pred_grad(gloss.TripletLoss(margin=3.0), pred, pos, neg)
    np.testing.assert_array_equal(g, [[0.0]])


def test_bce_from_sigmoid_float16_eps_does_not_underflow() -> None:
    # eps = 1e-12 is 0 in float16: log(0) * 0 was NaN; the smallest normal float16 is used
    p = mx.nd.array([[0.0, 1.0, 0.0, 1.0]], dtype="float16")
    p.attach_grad()
    z = mx.nd.array([[0.0, 1.0, 1.0, 0.0]], dtype="float16")
    with autograd.record():
        out = gloss.SigmoidBCELoss(from_sigmoid=True)(p, z)
    out.backward()
    tiny = float(np.finfo(np.float16).tiny)
    # the two confident-wrong entries cost -log(tiny) each, the right ones ~0
    np.testing.assert_allclose(out.asnumpy().astype(float), [-np.log(tiny) / 2], rtol=2e-3)
    assert np.isfinite(p.grad.asnumpy()).all()
    np.testing.assert_allclose(
        p.grad.asnumpy().astype(float)[0, 2:], [-1 / tiny / 4, 1 / tiny / 4], rtol=2e-3
    )
    # float32 keeps MXNet's 1e-12
    out32 = gloss.SigmoidBCELoss(from_sigmoid=True)(
        mx.nd.array([[0.0]], dtype="float64"), mx.nd.array([[1.0]], dtype="float64")
    )
    np.testing.assert_allclose(out32.asnumpy(), [-np.log(1e-12)], rtol=1e-12)


def test_kldiv_sums_over_the_non_batch_axes() -> None:
    # MXNet 1.9.1: F.sum(loss, axis=batch_axis, exclude=True), not the mean
    pred = RNG.standard_normal((3, 4))
    label = RNG.dirichlet(np.ones(4), 3)
    out = gloss.KLDivLoss()(A(log_softmax(pred, 1)), A(label)).asnumpy()
    ref = label * (np.log(label + 1e-12) - log_softmax(pred, 1))
    np.testing.assert_allclose(out, batch_sum(ref), rtol=1e-10)
    out2 = gloss.KLDivLoss(from_logits=False)(A(pred), A(label)).asnumpy()
    np.testing.assert_allclose(out2, out, rtol=1e-10)
    sw = RNG.uniform(0, 1, (3, 1))
    out3 = gloss.KLDivLoss(weight=0.5)(A(log_softmax(pred, 1)), A(label), A(sw)).asnumpy()
    np.testing.assert_allclose(out3, batch_sum(ref * sw * 0.5), rtol=1e-10)
    check_pred_grad(gloss.KLDivLoss(from_logits=False, weight=2.0), pred, label)


def test_kldiv_reproduces_mxnet_191() -> None:
    # the figure real MXNet 1.9.1 prints for this call (float32)
    out = gloss.KLDivLoss()(
        mx.nd.array([[0.2, 0.5, 0.2, 0.1]]).log(), mx.nd.array([[0.3, 0.4, 0.1, 0.2]])
    )
    assert out.shape == (1,)
    np.testing.assert_allclose(out.asnumpy(), [0.10169685], rtol=1e-6)
    # = 0.3 ln(0.3/0.2) + 0.4 ln(0.4/0.5) + 0.1 ln(0.1/0.2) + 0.2 ln(0.2/0.1)
    by_hand = 0.3 * np.log(1.5) + 0.4 * np.log(0.8) + 0.1 * np.log(0.5) + 0.2 * np.log(2.0)
    np.testing.assert_allclose(out.asnumpy(), [by_hand], rtol=1e-6)


def test_kldiv_zero_label_is_finite_in_float16() -> None:
    # 0 * log(0 + 1e-12) is NaN in float16 (1e-12 underflows); 0 log 0 = 0 is meant
    pred = np.log(np.array([[0.25, 0.75]]))
    label = np.array([[0.0, 1.0]])
    for dtype in ("float16", "float32", "float64"):
        p = mx.nd.array(pred, dtype=dtype)
        p.attach_grad()
        with autograd.record():
            out = gloss.KLDivLoss()(p, mx.nd.array(label, dtype=dtype))
        out.backward()
        np.testing.assert_allclose(out.asnumpy(), [-np.log(0.75)], rtol=2e-3)
        np.testing.assert_allclose(p.grad.asnumpy(), -label, rtol=0)


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


def test_poisson_is_one_mean_over_every_element() -> None:
    # MXNet 1.9.1 returns F.mean(loss): shape (1,), the mean over all axes
    pred = RNG.standard_normal((3, 4))
    target = RNG.integers(0, 5, (3, 4)).astype(np.float64)
    out = gloss.PoissonNLLLoss()(A(pred), A(target)).asnumpy()
    assert out.shape == (1,)
    np.testing.assert_allclose(out, [np.mean(np.exp(pred) - target * pred)], rtol=1e-12)
    rate = np.exp(pred)
    sw = RNG.uniform(0, 1, (3, 1))
    out = gloss.PoissonNLLLoss(from_logits=False, weight=2.0)(A(rate), A(target), A(sw))
    ref = np.mean((rate - target * np.log(rate + 1e-8)) * sw * 2.0)
    np.testing.assert_allclose(out.asnumpy(), [ref], rtol=1e-12)
    check_pred_grad(gloss.PoissonNLLLoss(), pred, target)


def stirling(t: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = t * np.log(t) - t + 0.5 * np.log(2 * t * np.pi)
    return np.where(t > 1, s, 0.0)


def test_poisson_compute_full_with_zero_target_is_finite() -> None:
    pred = np.array([[0.3, -0.2, 1.1, 0.5]])
    target = np.array([[0.0, 1.0, 3.0, 7.0]])
    p, t = A(pred), A(target)
    p.attach_grad()
    t.attach_grad()
    with autograd.record():
        out = gloss.PoissonNLLLoss(compute_full=True)(p, t)
    out.backward()
    ref = np.mean(np.exp(pred) - target * pred + stirling(target))
    np.testing.assert_allclose(out.asnumpy(), [ref], rtol=1e-12)
    np.testing.assert_allclose(p.grad.asnumpy(), (np.exp(pred) - target) / 4, rtol=1e-12)
    # d/dt: -pred + (log t + 1 - 1 + 1 / (2 t)) where t > 1, -pred elsewhere
    with np.errstate(divide="ignore", invalid="ignore"):
        dt = -pred + np.where(target > 1, np.log(target) + 0.5 / target, 0.0)
    np.testing.assert_allclose(t.grad.asnumpy(), dt / 4, rtol=1e-12)


def test_poisson_from_rate_float16_epsilon_does_not_underflow() -> None:
    out = gloss.PoissonNLLLoss(from_logits=False)(
        mx.nd.array([[0.0, 2.0]], dtype="float16"), mx.nd.array([[1.0, 2.0]], dtype="float16")
    )
    # 1e-8 is 0 in float16: log(0) would be -inf; the smallest normal float16 is used instead
    ref = np.mean([0 - np.log(np.finfo(np.float16).tiny), 2 - 2 * np.log(2.0)])
    np.testing.assert_allclose(out.asnumpy().astype(np.float64), [ref], rtol=2e-3)


def cosine_embedding_ref(a, b, label, margin):
    """MXNet 1.9.1's formula: (1 - cos) * [label == 1] + max(0, [label == -1] * (cos - m))."""
    cos = (a * b).sum(-1) / np.maximum(
        np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12
    )
    cos = cos.reshape(-1, 1)
    label = label.reshape(-1, 1)
    return (1 - cos) * (label == 1) + np.maximum(0, (label == -1) * (cos - margin))


def test_cosine_embedding_matches_mxnet_shape_and_formula() -> None:
    a, b = RNG.standard_normal((4, 5)), RNG.standard_normal((4, 5))
    label = np.array([1.0, -1.0, -1.0, 0.0])  # label 0: loss 0, as in MXNet
    out = gloss.CosineEmbeddingLoss(margin=0.1)(A(a), A(b), A(label)).asnumpy()
    assert out.shape == (4, 1)  # (batch, 1), not averaged
    np.testing.assert_allclose(out, cosine_embedding_ref(a, b, label, 0.1), rtol=1e-10)
    assert out[3, 0] == 0
    sw = RNG.uniform(0, 1, (4, 1))
    out = gloss.CosineEmbeddingLoss(weight=3.0)(A(a), A(b), A(label), A(sw)).asnumpy()
    np.testing.assert_allclose(out, cosine_embedding_ref(a, b, label, 0) * sw * 3, rtol=1e-10)
    ints = gloss.CosineEmbeddingLoss()(
        mx.nd.array(a, dtype="float32"),
        mx.nd.array(b, dtype="float32"),
        mx.nd.array([1, -1, 1, -1], dtype="int64"),
    )
    assert ints.dtype == np.float32
    check_pred_grad(
        lambda x, y, lab: gloss.CosineEmbeddingLoss(margin=-0.5)(x, y, lab), a, b, label
    )
    with pytest.raises(mx.base.ShapeError, match="CosineEmbeddingLoss: label of shape \\(3,\\)"):
        gloss.CosineEmbeddingLoss()(A(a), A(b), A(label[:3]))


def test_cosine_embedding_zero_vector_has_finite_gradient() -> None:
    # cos = x.y / max(|x||y|, 1e-12): at x = 0 the max takes 1e-12 (no tie), so
    # d(1 - cos)/dx = -y / 1e-12 and d/dy = -x / 1e-12 = 0; NaN before (norm of 0)
    y_val = np.array([[1.0, 2.0]])
    for dtype, eps in (("float64", 1e-12), ("float32", 1e-12)):
        x, y = mx.nd.zeros((1, 2), dtype=dtype), mx.nd.array(y_val, dtype=dtype)
        x.attach_grad()
        y.attach_grad()
        with autograd.record():
            out = gloss.CosineEmbeddingLoss()(x, y, mx.nd.array([1]))
        out.backward()
        np.testing.assert_allclose(out.asnumpy(), [[1.0]])
        np.testing.assert_allclose(x.grad.asnumpy(), -y_val / eps, rtol=1e-6)
        np.testing.assert_allclose(y.grad.asnumpy(), [[0.0, 0.0]])


def test_cosine_embedding_gradient_at_the_margin_passes() -> None:
    # x = (3, 4), y = (4, 3): cos = 24/25 exactly = margin, the kink of max(0, cos - margin).
    # clamp convention (PyTorch's clamp_min): derivative 1 in cos, so d/dx = dcos/dx =
    # y / (|x||y|) - cos * x / |x|^2 = (4, 3)/25 - 0.96 (3, 4)/25
    x = A([[3.0, 4.0]])
    x.attach_grad()
    with autograd.record():
        out = gloss.CosineEmbeddingLoss(margin=0.96)(x, A([[4.0, 3.0]]), A([-1.0]))
    out.backward()
    assert out.item() == 0.0
    expected = np.array([[4.0, 3.0]]) / 25 - 0.96 * np.array([[3.0, 4.0]]) / 25
    np.testing.assert_allclose(x.grad.asnumpy(), expected, rtol=1e-12)


def test_sdml_loss_matches_mxnet_formula() -> None:
    x1, x2 = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    s = 0.3
    d = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(2)
    labels = np.eye(4) * (1 - s) + (1 - np.eye(4)) * s / 3
    logp = log_softmax(-d, 1)
    ref = (labels * (np.log(labels) - logp)).sum(1)
    out = gloss.SDMLLoss(smoothing_parameter=s)(A(x1), A(x2)).asnumpy()
    np.testing.assert_allclose(out, ref, rtol=1e-10)
    check_pred_grad(gloss.SDMLLoss(), x1, x2)
    with pytest.raises(mx.base.ShapeError, match="SDMLLoss.*batch >= 2"):
        gloss.SDMLLoss()(A(x1[:1]), A(x2[:1]))


def test_loss_repr_and_block_nature() -> None:
    assert repr(gloss.L2Loss()) == "L2Loss(batch_axis=0, w=1.0)"
    assert repr(gloss.SoftmaxCELoss(weight=0.5)) == "SoftmaxCrossEntropyLoss(batch_axis=0, w=0.5)"
    assert gloss.SoftmaxCELoss is gloss.SoftmaxCrossEntropyLoss
    assert isinstance(gloss.L1Loss(), mx.gluon.HybridBlock)
