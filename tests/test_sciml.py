"""Derivative layers against analytic derivatives of known functions (orders 1-4, mixed
partials, Laplacians in 1-8 dimensions, gradients, divergence), gradients of losses that
contain derivative layers against finite differences, composition, Gluon integration and
error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon
from tapegrad import functional as F
from tapegrad.sciml import (
    Derivative,
    Derivatives,
    Divergence,
    Gradient,
    Laplacian,
    derivative,
    derivatives,
    divergence,
    gradient,
    laplacian,
)

nd = mx.nd


def arr(a):
    return nd.array(a, dtype="float64")


RNG = np.random.default_rng(7)
X1 = RNG.uniform(-1.0, 1.0, size=(6, 1))


# ---- k-th derivatives of known functions (column 0 of a 1-D input) ---------------------
def _poly_exp(x, k):
    """d^k/dx^k [x^3 e^x] = e^x sum_j C(k, j) (x^3)^(j)."""
    d = [x**3, 3 * x**2, 6 * x, 6 + 0 * x]
    return np.exp(x) * sum(math.comb(k, j) * d[j] for j in range(min(k, 3) + 1))


KNOWN = {
    "sin(2x)": (lambda z: nd.sin(z * 2.0), lambda x, k: 2**k * np.sin(2 * x + k * np.pi / 2)),
    "exp(-x)": (lambda z: nd.exp(-z), lambda x, k: (-1) ** k * np.exp(-x)),
    "x^3 e^x": (lambda z: z**3 * nd.exp(z), _poly_exp),
    "log(2+x)": (
        lambda z: nd.log(z + 2.0),
        lambda x, k: (-1) ** (k - 1) * math.factorial(k - 1) / (2 + x) ** k,
    ),
    "1/(1+x^2)": (lambda z: 1.0 / (1.0 + z * z), None),
    "tanh(x)": (lambda z: nd.tanh(z), None),
    "sigmoid(3x)": (lambda z: nd.sigmoid(z * 3.0), None),
}


def _tanh_derivs(x, k):
    t = np.tanh(x)
    return [
        t,
        1 - t**2,
        -2 * t * (1 - t**2),
        -2 * (1 - t**2) * (1 - 3 * t**2),
        8 * t * (1 - t**2) * (2 - 3 * t**2),
    ][k]


def _rational(x, k):
    # 1/(1+x^2) = Im(1/(x - i)) ... via the partial fractions (i/2)(1/(x+i) - 1/(x-i))
    z1, z2 = x + 1j, x - 1j
    c = (-1) ** k * math.factorial(k)
    return np.real(0.5j * (c / z1 ** (k + 1) - c / z2 ** (k + 1)))


def _sigmoid3(x, k):
    s = 1 / (1 + np.exp(-3 * x))
    d = [
        s,
        s * (1 - s),
        s * (1 - s) * (1 - 2 * s),
        s * (1 - s) * (1 - 6 * s + 6 * s**2),
        s * (1 - s) * (1 - 2 * s) * (1 - 12 * s + 12 * s**2),
    ]
    return 3**k * d[k]


KNOWN["tanh(x)"] = (KNOWN["tanh(x)"][0], _tanh_derivs)
KNOWN["1/(1+x^2)"] = (KNOWN["1/(1+x^2)"][0], _rational)
KNOWN["sigmoid(3x)"] = (KNOWN["sigmoid(3x)"][0], _sigmoid3)


@pytest.mark.parametrize("label", sorted(KNOWN))
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_derivative_of_known_functions(label, order):
    u, exact = KNOWN[label]
    got = Derivative(u, order=order)(arr(X1)).asnumpy()
    np.testing.assert_allclose(got, exact(X1, order), rtol=1e-10, atol=1e-10)


def test_derivatives_returns_every_order_from_one_pass():
    u, exact = KNOWN["x^3 e^x"]
    outs = Derivatives(u, order=4)(arr(X1))
    assert len(outs) == 5
    for k, o in enumerate(outs):
        np.testing.assert_allclose(
            o.asnumpy(), exact(X1, k) if k else X1**3 * np.exp(X1), rtol=1e-10
        )


def test_derivative_with_respect_to_one_component_and_mixed_partials():
    x = RNG.uniform(0.5, 1.5, size=(5, 3))

    def u(z):  # x0^2 x1^3 sin(x2)
        return z[:, 0:1] ** 2 * z[:, 1:2] ** 3 * nd.sin(z[:, 2:3])

    a, b, c = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    cases = {
        (1,): 3 * a**2 * b**2 * np.sin(c),
        (2, 2): -(a**2) * b**3 * np.sin(c),
        (0, 1): 6 * a * b**2 * np.sin(c),
        (0, 0, 1): 6 * b**2 * np.sin(c),
        (0, 1, 2): 6 * a * b**2 * np.cos(c),
        (1, 1, 1, 0): 12 * a * np.sin(c),
    }
    for wrt, expected in cases.items():
        got = derivative(u, arr(x), wrt=wrt if len(wrt) > 1 else wrt[0]).asnumpy()
        np.testing.assert_allclose(got, expected, rtol=1e-10, err_msg=f"wrt={wrt}")
    # block form
    np.testing.assert_allclose(
        Derivative(u, wrt=(0, 1))(arr(x)).asnumpy(), cases[(0, 1)], rtol=1e-10
    )


# ---- Laplacians ---------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2, 3, 5, 8])
def test_laplacian_of_known_functions(d):
    x = RNG.uniform(-1, 1, size=(7, d))
    a = np.linspace(0.3, 1.2, d)

    def u(z):  # exp(a.x) + prod(sin(x_i)) + |x|^4
        e = nd.exp(nd.dot(z, arr(a.reshape(d, 1))))
        p = nd.prod(nd.sin(z), axis=1, keepdims=True)
        r = (z * z).sum(axis=1, keepdims=True)
        return e + p + r * r

    s = np.sum(x * x, axis=1, keepdims=True)
    exact = (
        np.sum(a * a) * np.exp(x @ a.reshape(d, 1))
        - d * np.prod(np.sin(x), axis=1, keepdims=True)
        + (4 * d + 8) * s
    )
    np.testing.assert_allclose(laplacian(u, arr(x)).asnumpy(), exact, rtol=1e-10)
    np.testing.assert_allclose(Laplacian(u)(arr(x)).asnumpy(), exact, rtol=1e-10)


def _mlp(d_in, d_out=1, act="tanh", seed=0):
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(
        gluon.nn.Dense(16, activation=act, in_units=d_in),
        gluon.nn.Dense(16, activation=act, in_units=16),
        gluon.nn.Dense(d_out, in_units=16),
    )
    net.initialize(mx.init.Normal(0.8))
    net.cast("float64")
    return net


@pytest.mark.parametrize("d", [1, 2, 4, 8])
def test_laplacian_of_a_network_equals_trace_of_its_hessian(d):
    net = _mlp(d, seed=d)
    x = RNG.uniform(-1, 1, size=(3, d))
    lap = Laplacian(net)(arr(x)).asnumpy()
    for i in range(3):
        H = F.hessian(lambda z: net(z.reshape((1, d))).sum())(arr(x[i])).asnumpy()
        assert lap[i, 0] == pytest.approx(np.trace(H), rel=1e-10, abs=1e-12)


def test_laplacian_over_some_components_and_value():
    x = RNG.uniform(-1, 1, size=(4, 3))

    def u(z):
        return (z**2 * arr([1.0, 10.0, 100.0])).sum(axis=1, keepdims=True)

    v, lap = Laplacian(u, wrt=(0, 2), return_value=True)(arr(x))
    np.testing.assert_allclose(lap.asnumpy(), np.full((4, 1), 202.0))
    np.testing.assert_allclose(v.asnumpy(), u(arr(x)).asnumpy())


# ---- gradient and divergence ---------------------------------------------------------------
@pytest.mark.parametrize("method", ["auto", "forward", "reverse"])
@pytest.mark.parametrize("d", [1, 3, 6])
def test_gradient_of_known_function(method, d):
    x = RNG.uniform(-1, 1, size=(5, d))
    a = np.arange(1, d + 1, dtype=float)

    def u(z):  # sin(a.x)
        return nd.sin(nd.dot(z, arr(a.reshape(d, 1))))

    exact = np.cos(x @ a.reshape(d, 1)) * a
    np.testing.assert_allclose(gradient(u, arr(x), method).asnumpy(), exact, rtol=1e-12)


def test_gradient_of_vector_output_is_the_jacobian():
    x = RNG.uniform(-1, 1, size=(4, 2))

    def v(z):  # (x0 x1, x0^2, sin x1)
        return nd.concat(z[:, 0:1] * z[:, 1:2], z[:, 0:1] ** 2, nd.sin(z[:, 1:2]), dim=1)

    J = Gradient(v)(arr(x)).asnumpy()
    assert J.shape == (4, 3, 2)
    a, b = x[:, 0], x[:, 1]
    z = np.zeros_like(a)
    exact = np.stack([np.stack([b, a], 1), np.stack([2 * a, z], 1), np.stack([z, np.cos(b)], 1)], 1)
    np.testing.assert_allclose(J, exact, rtol=1e-12)
    np.testing.assert_allclose(gradient(v, arr(x), "reverse").asnumpy(), exact, rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_divergence(d):
    x = RNG.uniform(-1, 1, size=(6, d))

    def field(z):  # x |x|^2: div = (d + 2) |x|^2
        return z * (z * z).sum(axis=1, keepdims=True)

    exact = (d + 2) * np.sum(x * x, axis=1, keepdims=True)
    np.testing.assert_allclose(divergence(field, arr(x)).asnumpy(), exact, rtol=1e-12)
    np.testing.assert_allclose(Divergence(field)(arr(x)).asnumpy(), exact, rtol=1e-12)


# ---- networks: layers against nested forward mode and finite differences ------------------
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "softrelu", "relu"])
def test_derivative_of_a_network_against_nested_forward_mode(act):
    from tapegrad.forward import jvp

    net = _mlp(2, 2, act)
    x = arr(RNG.uniform(-1, 1, size=(5, 2)))
    e1 = arr(np.tile([0.0, 1.0], (5, 1)))
    f = net
    nested = []
    for _ in range(3):
        f = (lambda g: lambda z: jvp(g, [z], [e1])[1])(f)
        nested.append(f(x).asnumpy())
    for k in (1, 2, 3):
        np.testing.assert_allclose(
            Derivative(net, order=k, wrt=1)(x).asnumpy(), nested[k - 1], rtol=1e-9, atol=1e-12
        )


def test_first_derivative_against_finite_differences():
    net = _mlp(1, act="sigmoid")
    x = RNG.uniform(-1, 1, size=(8, 1))
    h = 1e-6
    fd = (net(arr(x + h)).asnumpy() - net(arr(x - h)).asnumpy()) / (2 * h)
    np.testing.assert_allclose(Derivative(net)(arr(x)).asnumpy(), fd, rtol=1e-6, atol=1e-9)


# ---- losses containing derivative layers: their parameter gradients ------------------------
@pytest.mark.parametrize("layer", ["derivative2", "laplacian", "gradient", "divergence"])
def test_gradient_of_loss_with_derivative_layer_against_finite_differences(layer):
    d = 1 if layer == "derivative2" else 2
    out = 2 if layer == "divergence" else 1
    net = _mlp(d, out, "tanh", seed=3)
    x = arr(RNG.uniform(-1, 1, size=(5, d)))
    blk = {
        "derivative2": lambda: Derivative(net, order=2),
        "laplacian": lambda: Laplacian(net),
        "gradient": lambda: Gradient(net, method="forward"),
        "divergence": lambda: Divergence(net),
    }[layer]()
    f, params = F.param_function(blk)

    def loss(*ps):
        r = f(*ps, x) - 0.3
        return (r * r).mean()

    assert mx.gradcheck(loss, params, modes=("rev",), full_jacobian_max=0, n_directions=3)


def test_training_end_to_end_through_a_derivative_layer():
    """u'' = -u with u(0)=0, u'(0)=1 on [0, 1] (u = sin x), u = x + x^2 N(x): the loss falls
    and the parameters get gradients through the second-derivative layer."""
    net = _mlp(1, seed=5)

    class Trial(gluon.HybridBlock):
        def __init__(self, inner, **kw):
            super().__init__(**kw)
            self.inner = inner

        def hybrid_forward(self, F_, x):
            return x + x * x * self.inner(x)

    u = Trial(net)
    d2 = Derivatives(u, order=2)
    assert set(d2.collect_params().keys()) == set(net.collect_params().keys())
    trainer = gluon.Trainer(d2.collect_params(), "adam", {"learning_rate": 1e-2})
    x = arr(np.linspace(0, 1, 16).reshape(-1, 1))
    losses = []
    for _ in range(60):
        with autograd.record():
            uu, _, ddu = d2(x)
            r = ddu + uu
            loss = (r * r).mean()
        loss.backward()
        trainer.step(1)
        losses.append(float(loss.asscalar()))
    assert losses[-1] < 0.2 * losses[0]


def test_layers_compose():
    net = _mlp(1, act="tanh", seed=1)
    x = arr(RNG.uniform(-1, 1, size=(4, 1)))
    d3 = Derivative(net, order=3)(x).asnumpy()
    nested = Derivative(Derivative(Derivative(net)))(x).asnumpy()
    np.testing.assert_allclose(nested, d3, rtol=1e-9, atol=1e-12)
    mixed = Derivative(Derivative(net, order=2), order=1)(x).asnumpy()
    np.testing.assert_allclose(mixed, d3, rtol=1e-9, atol=1e-12)
    # reverse mode over a Taylor-mode layer: d/dx of u'(x) is u''(x)
    xg = F.grad(lambda z: Derivative(net)(z).sum())(x).asnumpy()
    np.testing.assert_allclose(xg, Derivative(net, order=2)(x).asnumpy(), rtol=1e-9)
    # Laplacian of a gradient component in 2-D equals d/dx0 of the Laplacian
    net2 = _mlp(2, seed=2)
    x2 = arr(RNG.uniform(-1, 1, size=(3, 2)))
    a = laplacian(lambda z: Derivative(net2, wrt=0)(z), x2).asnumpy()
    b = derivative(lambda z: laplacian(net2, z), x2, wrt=0).asnumpy()
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_layer_inside_a_sequential_block_and_float32():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(8, activation="tanh", in_units=1), gluon.nn.Dense(1, in_units=8))
    net.initialize()
    model = gluon.nn.Sequential()
    model.add(Derivative(net, order=2), gluon.nn.Dense(3, in_units=1))
    model[1].initialize()
    x = nd.array(np.linspace(-1, 0.5, 5).reshape(-1, 1))  # not symmetric: u'' is odd here
    with autograd.record():
        y = model(x)
        y.sum().backward()
    assert y.shape == (5, 3) and y.dtype == np.float32
    assert np.abs(net[0].weight.grad().asnumpy()).sum() > 0
    assert "Derivative" in repr(model)


def test_no_dependence_on_the_input_gives_zeros():
    out = derivative(lambda z: nd.ones((z.shape[0], 1)), arr(X1), order=2)
    np.testing.assert_array_equal(out.asnumpy(), np.zeros((6, 1)))
    lin = derivative(lambda z: z * 3.0, arr(X1), order=3)
    np.testing.assert_array_equal(lin.asnumpy(), np.zeros((6, 1)))


def test_errors_name_the_layer_the_shapes_and_the_fix():
    x = arr(RNG.uniform(size=(4, 2)))
    with pytest.raises(mx.base.ShapeError, match=r"component 5 .* d=2"):
        Derivative(lambda z: z, wrt=5)(x)
    with pytest.raises(mx.base.ShapeError, match=r"\(N, d\)"):
        laplacian(lambda z: z, arr(np.ones((2, 2, 2))))
    with pytest.raises(mx.base.ShapeError, match="divergence"):
        divergence(lambda z: z.sum(axis=1, keepdims=True), x)
    with pytest.raises(ValueError, match="order"):
        Derivative(lambda z: z, order=0)

    class Square(mx.autograd.Function):
        def forward(self, a):
            self.save_for_backward(a)
            return a * a

        def backward(self, g):
            (a,) = self.saved_tensors
            return 2 * a * g

    xv = arr([[0.5]])
    xv.attach_grad()
    with autograd.record():
        with pytest.raises(mx.base.TapegradError, match="Function:Square"):
            derivative(lambda z: Square()(z), xv, order=2)


def test_derivatives_of_order_k_agree_with_repeated_reverse_mode():
    """Taylor mode vs nested autograd.grad(create_graph=True), orders 1-4."""
    net = _mlp(1, act="sigmoid", seed=4)
    x = arr(RNG.uniform(-1, 1, size=(5, 1)))
    taylor = derivatives(net, x, 4)
    xv = x.copy()
    xv.attach_grad()
    with autograd.record():
        y = net(xv)
        for k in range(1, 5):
            (y,) = autograd.grad(y, [xv], create_graph=True)
            np.testing.assert_allclose(y.asnumpy(), taylor[k].asnumpy(), rtol=1e-9, atol=1e-12)
