"""Gluon layers: forward against NumPy references, gradients (input and parameters) against
central finite differences in float64, second derivatives where they mean something."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd
from tapegrad.gluon import nn

RNG = np.random.default_rng(0)
EPS = 1e-6


def A(x) -> mx.nd.NDArray:
    """float64 NDArray (mx.nd.array defaults to float32, as in MXNet)."""
    return mx.nd.array(x, dtype=np.float64)


def away_from_zero(*shape: int, low: float = 0.2, high: float = 2.0) -> np.ndarray:
    """Random float64 values with |v| in [low, high] (keeps FD off the kinks at 0)."""
    mag = RNG.uniform(low, high, shape)
    return np.where(RNG.random(shape) < 0.5, -mag, mag)


def fd(f, a: np.ndarray) -> np.ndarray:
    """Central finite-difference gradient of the scalar function f at a (a is restored)."""
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


def forward_np(block, x: np.ndarray, train: bool) -> np.ndarray:
    scope = autograd.train_mode() if train else autograd.predict_mode()
    with scope:
        return block(mx.nd.array(x, dtype=x.dtype)).asnumpy()


def check_grads(
    block, x: np.ndarray, train: bool = False, rtol: float = 1e-5, atol: float = 1e-7
) -> None:
    """d sum(block(x) * r) / d(x, every trainable parameter) against finite differences."""
    out_shape = forward_np(block, x, train).shape
    r = RNG.standard_normal(out_shape)
    xa = A(x)
    xa.attach_grad()
    with autograd.record(train_mode=train):
        loss = (block(xa) * A(r)).sum()
    loss.backward()

    def f_x(v: np.ndarray) -> float:
        return float((forward_np(block, v, train) * r).sum())

    np.testing.assert_allclose(xa.grad.asnumpy(), fd(f_x, x.copy()), rtol=rtol, atol=atol)
    for name, p in block.collect_params().items():
        if p.grad_req == "null":
            continue
        analytic = p.grad().asnumpy().copy()
        value = p.data().asnumpy().copy()

        def f_p(v: np.ndarray, p=p) -> float:
            p.set_data(A(v))
            return f_x(x)

        numeric = fd(f_p, value.copy())
        p.set_data(A(value))
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol, err_msg=name)


def check_second_order(block, x: np.ndarray, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """d/dx (s . grad_x sum(block(x) * r)) via create_graph against finite differences of the
    analytic first derivative."""
    r = RNG.standard_normal(forward_np(block, x, False).shape)
    s = RNG.standard_normal(x.shape)

    def directional(v: np.ndarray) -> float:
        xa = A(v)
        xa.attach_grad()
        with autograd.record(train_mode=False):
            loss = (block(xa) * A(r)).sum()
        (g,) = autograd.grad(loss, [xa])
        return float((g.asnumpy() * s).sum())

    xa = A(x)
    xa.attach_grad()
    with autograd.record(train_mode=False):
        loss = (block(xa) * A(r)).sum()
        (g,) = autograd.grad(loss, [xa], create_graph=True)
        h = (g * A(s)).sum()
    h.backward()
    np.testing.assert_allclose(xa.grad.asnumpy(), fd(directional, x.copy()), rtol=rtol, atol=atol)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------- Dense


@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_forward_matches_numpy(flatten: bool, use_bias: bool) -> None:
    layer = nn.Dense(4, use_bias=use_bias, flatten=flatten, dtype="float64")
    layer.initialize(mx.init.Normal(1.0))
    x = RNG.standard_normal((3, 2, 5))
    out = forward_np(layer, x, False)
    W = layer.weight.data().asnumpy()
    b = layer.bias.data().asnumpy() if use_bias else 0.0
    if flatten:
        expected = x.reshape(3, -1) @ W.T + b
        assert W.shape == (4, 10)
    else:
        expected = x @ W.T + b
        assert W.shape == (4, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert out.dtype == np.float64


def test_dense_activation_and_grads() -> None:
    layer = nn.Dense(3, activation="tanh", in_units=4, dtype="float64")
    layer.initialize(mx.init.Normal(0.5))
    layer.bias.set_data(A(RNG.standard_normal(3)))
    x = RNG.standard_normal((2, 4))
    W, b = layer.weight.data().asnumpy(), layer.bias.data().asnumpy()
    np.testing.assert_allclose(forward_np(layer, x, False), np.tanh(x @ W.T + b), rtol=1e-12)
    check_grads(layer, x)
    check_second_order(layer, x)


def test_dense_mixed_second_derivative_wrt_weight() -> None:
    """The PINN pattern: a parameter gradient of an input derivative (d/dW of du/dx)."""
    layer = nn.Dense(3, activation="tanh", in_units=2, dtype="float64")
    layer.initialize(mx.init.Normal(0.5))
    x = RNG.standard_normal((4, 2))
    r = RNG.standard_normal((4, 3))
    s = RNG.standard_normal((4, 2))

    def directional(wv: np.ndarray) -> float:
        layer.weight.set_data(A(wv))
        xa = A(x)
        xa.attach_grad()
        with autograd.record():
            loss = (layer(xa) * A(r)).sum()
        (g,) = autograd.grad(loss, [xa])
        return float((g.asnumpy() * s).sum())

    w0 = layer.weight.data().asnumpy().copy()
    numeric = fd(directional, w0.copy())
    layer.weight.set_data(A(w0))
    xa = A(x)
    xa.attach_grad()
    with autograd.record():
        loss = (layer(xa) * A(r)).sum()
        (g,) = autograd.grad(loss, [xa], create_graph=True)
        h = (g * A(s)).sum()
    h.backward()
    np.testing.assert_allclose(layer.weight.grad().asnumpy(), numeric, rtol=1e-5, atol=1e-7)


def test_dense_deferred_shape_and_repr() -> None:
    layer = nn.Dense(7)
    assert layer.weight.shape == (7, 0)
    assert repr(layer) == "Dense(None -> 7, linear)"
    layer.initialize()
    with pytest.raises(mx.gluon.DeferredInitializationError, match=layer.weight.name):
        layer.weight.data()
    layer(mx.nd.ones((2, 3, 4)))
    assert layer.weight.shape == (7, 12)
    assert layer.weight.data().shape == (7, 12)
    assert repr(layer) == "Dense(12 -> 7, linear)"
    relu = nn.Dense(2, activation="relu", in_units=3)
    assert repr(relu) == "Dense(3 -> 2, Activation(relu))"
    assert relu.act.prefix == relu.prefix + "relu_"


def test_dense_wrong_input_size_names_layer() -> None:
    layer = nn.Dense(2, in_units=3)
    layer.initialize()
    with pytest.raises(mx.base.ShapeError, match=layer.name):
        layer(mx.nd.ones((4, 5)))


# ------------------------------------------------------------------------ activations


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "softrelu": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
}


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_activation_forward_and_grads(act: str) -> None:
    layer = nn.Activation(act)
    x = away_from_zero(3, 4)
    np.testing.assert_allclose(forward_np(layer, x, False), ACTIVATIONS[act](x), rtol=1e-12)
    check_grads(layer, x)
    if act != "relu":
        check_second_order(layer, x)
    assert repr(layer) == f"Activation({act})"


SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
ERF = np.vectorize(math.erf)


@pytest.mark.parametrize(
    "make, ref, smooth",
    [
        (lambda: nn.LeakyReLU(0.1), lambda x: np.where(x > 0, x, 0.1 * x), None),
        (lambda: nn.ELU(0.7), lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), False),
        (
            lambda: nn.SELU(),
            lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)),
            False,
        ),
        (lambda: nn.GELU(), lambda x: 0.5 * x * (1 + ERF(x / np.sqrt(2))), True),
        (lambda: nn.Swish(1.5), lambda x: x * sigmoid(1.5 * x), True),
    ],
    ids=["leaky", "elu", "selu", "gelu", "swish"],
)
def test_parametrized_activations(make, ref, smooth: bool) -> None:
    layer = make()
    x = away_from_zero(2, 5)
    np.testing.assert_allclose(forward_np(layer, x, False), ref(x), rtol=1e-12)
    check_grads(layer, x)
    if smooth is None:  # piecewise linear: no second derivative to check
        return
    # second derivatives away from the kink (and across it for the smooth ones)
    check_second_order(layer, x)
    if smooth:
        check_second_order(layer, RNG.standard_normal((2, 5)))


def test_leaky_relu_rejects_negative_slope() -> None:
    with pytest.raises(ValueError, match="alpha"):
        nn.LeakyReLU(-0.1)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_prelu_forward_and_grads(in_channels: int) -> None:
    layer = nn.PReLU(in_channels=in_channels)
    layer.initialize()
    assert layer.alpha.data().asnumpy().tolist() == [0.25] * in_channels
    layer.cast("float64")
    alpha = RNG.uniform(0.1, 0.5, in_channels)
    layer.alpha.set_data(A(alpha))
    x = away_from_zero(2, 3, 4)
    a = alpha.reshape(1, -1, 1) if in_channels > 1 else alpha
    np.testing.assert_allclose(forward_np(layer, x, False), np.where(x > 0, x, a * x), rtol=1e-12)
    check_grads(layer, x)


# --------------------------------------------------------------------------- Dropout


def test_dropout_identity_in_predict_mode() -> None:
    drop = nn.Dropout(0.5)
    x = mx.nd.ones((3, 3))
    assert not autograd.is_training()
    np.testing.assert_array_equal(drop(x).asnumpy(), np.ones((3, 3)))
    with autograd.record(train_mode=False):
        np.testing.assert_array_equal(drop(x).asnumpy(), np.ones((3, 3)))


def test_dropout_scales_in_train_mode() -> None:
    mx.random.seed(3)
    drop = nn.Dropout(0.25)
    x = mx.nd.ones((200, 50))
    with autograd.record():
        out = drop(x).asnumpy()
    values = np.unique(out)
    assert len(values) == 2 and values[0] == 0.0
    assert values[1] == pytest.approx(1 / 0.75, rel=1e-6)
    frac = (out == 0).mean()
    assert abs(frac - 0.25) < 0.02  # 10,000 draws: std of the fraction ~ 0.004
    assert abs(out.mean() - 1.0) < 0.03  # expectation preserved


def test_dropout_gradient_is_the_mask() -> None:
    drop = nn.Dropout(0.5)
    x = mx.nd.array(RNG.standard_normal((4, 6)))
    x.attach_grad()
    with autograd.record():
        y = drop(x)
    y.backward()
    mask = y.asnumpy() / x.asnumpy()
    np.testing.assert_allclose(x.grad.asnumpy(), mask, rtol=1e-6)


def test_dropout_axes_share_mask_and_rate_zero() -> None:
    drop = nn.Dropout(0.5, axes=(1,))
    with autograd.train_mode():
        out = drop(mx.nd.ones((8, 5))).asnumpy()
    assert all(len(set(row.tolist())) == 1 for row in out)
    assert repr(drop) == "Dropout(p = 0.5, axes=(1,))"
    zero = nn.Dropout(0.0)
    with autograd.train_mode():
        np.testing.assert_array_equal(zero(mx.nd.ones((2, 2))).asnumpy(), np.ones((2, 2)))


# ------------------------------------------------------------------------- BatchNorm


def bn_ref(x: np.ndarray, gamma, beta, mean, var, axis: int, eps: float) -> np.ndarray:
    shape = [1] * x.ndim
    shape[axis] = -1
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(
        shape
    ) + beta.reshape(shape)


def test_batchnorm_train_forward_and_running_stats() -> None:
    bn = nn.BatchNorm(momentum=0.8)
    bn.initialize()
    bn.cast("float64")
    gamma, beta = RNG.uniform(0.5, 2, 3), RNG.standard_normal(3)
    bn.gamma.set_data(A(gamma))
    bn.beta.set_data(A(beta))
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(2):
        x = RNG.standard_normal((4, 3, 2)) * 3 + 1
        mean = x.mean(axis=(0, 2))
        var = x.var(axis=(0, 2))  # biased, as MXNet
        with autograd.record():
            out = bn(A(x))
        np.testing.assert_allclose(
            out.asnumpy(), bn_ref(x, gamma, beta, mean, var, 1, 1e-5), rtol=1e-10
        )
        rm = rm * 0.8 + mean * 0.2
        rv = rv * 0.8 + var * 0.2
        np.testing.assert_allclose(bn.running_mean.data().asnumpy(), rm, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.data().asnumpy(), rv, rtol=1e-12)
    # predict mode: running statistics, which stay unchanged
    x = RNG.standard_normal((5, 3, 2))
    out = bn(A(x)).asnumpy()
    np.testing.assert_allclose(out, bn_ref(x, gamma, beta, rm, rv, 1, 1e-5), rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.data().asnumpy(), rm, rtol=1e-12)


def test_batchnorm_defaults_names_and_repr() -> None:
    bn = nn.BatchNorm()
    names = [n[len(bn.prefix) :] for n in bn.collect_params()]
    assert names == ["gamma", "beta", "running_mean", "running_var"]
    assert [p.grad_req for p in bn.collect_params().values()] == ["write", "write", "null", "null"]
    assert repr(bn) == (
        "BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, "
        "use_global_stats=False, in_channels=None)"
    )
    bn.initialize()
    bn(mx.nd.ones((2, 4)))
    got = [p.data().asnumpy().tolist() for p in bn.collect_params().values()]
    assert got == [[1.0] * 4, [0.0] * 4, [0.0] * 4, [1.0] * 4]


def test_batchnorm_global_stats_axis_and_no_scale() -> None:
    bn = nn.BatchNorm(axis=-1, use_global_stats=True, scale=False, in_channels=2)
    bn.initialize()
    assert bn.gamma.grad_req == "null"
    bn.running_mean.set_data(mx.nd.array([1.0, -1.0]))
    bn.running_var.set_data(mx.nd.array([4.0, 0.25]))
    bn.gamma.set_data(mx.nd.array([5.0, 5.0]))  # ignored: scale=False fixes gamma to 1
    x = RNG.standard_normal((3, 2)).astype(np.float32)
    with autograd.record():
        out = bn(mx.nd.array(x)).asnumpy()
    ref = bn_ref(x, np.ones(2), np.zeros(2), np.array([1.0, -1.0]), np.array([4.0, 0.25]), 1, 1e-5)
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    assert bn.running_mean.data().asnumpy().tolist() == [1.0, -1.0]


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_grads(train: bool) -> None:
    bn = nn.BatchNorm(in_channels=3)
    bn.initialize()
    bn.cast("float64")
    bn.gamma.set_data(A(RNG.uniform(0.5, 2, 3)))
    bn.beta.set_data(A(RNG.standard_normal(3)))
    bn.running_var.set_data(A(RNG.uniform(0.5, 2, 3)))
    check_grads(bn, RNG.standard_normal((4, 3)), train=train, rtol=1e-4, atol=1e-6)


def test_batchnorm_channel_mismatch_names_layer() -> None:
    bn = nn.BatchNorm(in_channels=3)
    bn.initialize()
    with pytest.raises(mx.base.ShapeError, match=bn.name):
        bn(mx.nd.ones((2, 4)))


# ------------------------------------------------------------------------- LayerNorm


@pytest.mark.parametrize("axis", [-1, 1])
def test_layernorm_forward_and_grads(axis: int) -> None:
    ln = nn.LayerNorm(axis=axis)
    ln.initialize()
    x = RNG.standard_normal((2, 3, 4))
    ln(mx.nd.array(x))
    ln.cast("float64")
    c = x.shape[axis]
    gamma, beta = RNG.uniform(0.5, 2, c), RNG.standard_normal(c)
    ln.gamma.set_data(A(gamma))
    ln.beta.set_data(A(beta))
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    shape = [1, 1, 1]
    shape[axis] = c
    ref = (x - mean) / np.sqrt(var + 1e-5) * gamma.reshape(shape) + beta.reshape(shape)
    np.testing.assert_allclose(forward_np(ln, x, False), ref, rtol=1e-10)
    check_grads(ln, x, rtol=1e-4, atol=1e-6)
    check_second_order(ln, x, rtol=1e-4, atol=1e-5)


def test_layernorm_repr() -> None:
    assert repr(nn.LayerNorm(in_channels=3)) == (
        "LayerNorm(eps=1e-05, axis=-1, center=True, scale=True, in_channels=3)"
    )


# ------------------------------------------------------------------ Embedding & co


def test_embedding_forward_and_grad() -> None:
    emb = nn.Embedding(5, 3)
    emb.initialize(mx.init.Normal(1.0))
    idx = np.array([[0, 4, 4], [2, 0, 1]])
    W = emb.weight.data().asnumpy()
    with autograd.record():
        out = emb(mx.nd.array(idx))
        loss = (out * mx.nd.array(np.arange(18).reshape(2, 3, 3))).sum()
    loss.backward()
    np.testing.assert_allclose(out.asnumpy(), W[idx])
    expected = np.zeros((5, 3))
    np.add.at(expected, idx.ravel(), np.arange(18).reshape(6, 3))
    np.testing.assert_allclose(emb.weight.grad().asnumpy(), expected)
    assert repr(emb) == "Embedding(5 -> 3, float32)"


def test_flatten_lambda_hybridlambda() -> None:
    x = RNG.standard_normal((2, 3, 4))
    assert forward_np(nn.Flatten(), x, False).shape == (2, 12)
    np.testing.assert_allclose(forward_np(nn.Lambda("tanh"), x, False), np.tanh(x), rtol=1e-6)
    np.testing.assert_allclose(forward_np(nn.Lambda(lambda a: a * 3), x, False), 3 * x, rtol=1e-6)
    hl = nn.HybridLambda(lambda F, a: F.relu(a) + 1)
    np.testing.assert_allclose(forward_np(hl, x, False), np.maximum(x, 0) + 1, rtol=1e-6)
    np.testing.assert_allclose(
        forward_np(nn.HybridLambda("sigmoid"), x, False), sigmoid(x), rtol=1e-6
    )
    assert repr(nn.Lambda("tanh")) == "Lambda(tanh)"
    assert repr(nn.Lambda(mx.nd.tanh)) == "Lambda(tanh)"
    seen = []
    nn.HybridLambda(lambda F, a: seen.append(F) or a)(mx.nd.ones((1,)))
    assert seen == [mx.nd]  # F is mx.nd
    with pytest.raises(ValueError, match="not_an_op"):
        nn.Lambda("not_an_op")
    with pytest.raises(ValueError, match="Unrecognized"):
        nn.HybridLambda(3)
    check_grads(nn.Flatten(), x)


# ------------------------------------------------------------- whole network checks


def test_mlp_grads_first_and_second_order() -> None:
    net = nn.HybridSequential()
    net.add(
        nn.Dense(5, activation="tanh", dtype="float64"),
        nn.LayerNorm(),
        nn.Dense(4, activation="sigmoid", dtype="float64"),
        nn.Dense(2, dtype="float64"),
    )
    net.initialize(mx.init.Xavier())
    x = RNG.standard_normal((3, 4))
    net(A(x))
    net.cast("float64")
    eager = forward_np(net, x, False)
    check_grads(net, x, rtol=1e-4, atol=1e-7)
    check_second_order(net, x, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(forward_np(net, x, False), eager)  # checks ran no update
