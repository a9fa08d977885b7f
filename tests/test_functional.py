"""Function transforms: hessian against finite differences of the gradient, hvp against
hessian @ v for every method, jacobian by reverse against forward mode, transforms inside
autograd.record() trained through, and the Gluon parameter bridge."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon
from tapegrad import functional as F


def nd(a):
    return mx.nd.array(a, dtype="float64")


def f_vec(x):
    """A non-separable scalar function of a vector."""
    return (mx.nd.tanh(x) * mx.nd.sin(x[::-1] * 2.0)).sum() + (x.sum() ** 3) * 0.1


X0 = np.array([0.3, -0.8, 1.2, 0.5])


def num_hessian(f, x, h=1e-5):
    n = x.size
    H = np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        gp = F.grad(f)(nd(x + e)).asnumpy()
        gm = F.grad(f)(nd(x - e)).asnumpy()
        H[:, j] = (gp - gm) / (2 * h)
    return H


def test_hessian_against_finite_differences_of_the_gradient():
    H = F.hessian(f_vec)(nd(X0)).asnumpy()
    np.testing.assert_allclose(H, num_hessian(f_vec, X0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["rev-fwd", "fwd-rev", "rev-rev"])
def test_hvp_equals_hessian_times_v(method):
    v = np.array([1.0, -2.0, 0.5, 3.0])
    H = F.hessian(f_vec)(nd(X0)).asnumpy()
    (hv,) = F.hvp(f_vec, (nd(X0),), (nd(v),), method=method)
    np.testing.assert_allclose(hv.asnumpy(), H @ v, rtol=1e-10, atol=1e-12)
    (vh,) = F.vhp(f_vec, (nd(X0),), (nd(v),))
    np.testing.assert_allclose(vh.asnumpy(), v @ H, rtol=1e-10, atol=1e-12)


def test_hvp_over_several_arguments():
    rng = np.random.default_rng(0)
    a0, b0 = rng.normal(size=(3, 2)), rng.normal(size=(2,))

    def f(a, b):
        return (mx.nd.tanh(mx.nd.dot(a, b)) ** 2).sum()

    va, vb = rng.normal(size=(3, 2)), rng.normal(size=(2,))
    hv = F.hvp(f, (nd(a0), nd(b0)), (nd(va), nd(vb)))
    # reference: H of the concatenated variables, by finite differences of the gradient
    flat = np.concatenate([a0.ravel(), b0])

    def g(z):
        return f(z[:6].reshape((3, 2)), z[6:])

    H = num_hessian(g, flat)
    ref = H @ np.concatenate([va.ravel(), vb])
    np.testing.assert_allclose(hv[0].asnumpy().ravel(), ref[:6], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(hv[1].asnumpy(), ref[6:], rtol=1e-6, atol=1e-8)


def test_hessian_over_several_arguments_is_the_blocks_of_the_full_one():
    # argnums=(0, 1): H[j][i] is d^2 f / d arg_j d arg_i, shaped arg_j.shape + arg_i.shape
    rng = np.random.default_rng(2)
    a0, b0 = rng.normal(size=(3, 2)), rng.normal(size=(2,))

    def f(a, b):
        return (mx.nd.tanh(mx.nd.dot(a, b)) ** 2).sum() + (b**3).sum()

    H = F.hessian(f, argnums=(0, 1))(nd(a0), nd(b0))
    full = num_hessian(lambda z: f(z[:6].reshape((3, 2)), z[6:]), np.concatenate([a0.ravel(), b0]))
    blocks = [[full[:6, :6], full[:6, 6:]], [full[6:, :6], full[6:, 6:]]]
    shapes = [(3, 2), (2,)]
    for j in range(2):
        for i in range(2):
            assert H[j][i].shape == shapes[j] + shapes[i]
            np.testing.assert_allclose(
                H[j][i].asnumpy().reshape(blocks[j][i].shape), blocks[j][i], rtol=1e-6, atol=1e-8
            )


def test_jacobian_reverse_equals_forward():
    rng = np.random.default_rng(1)
    w = nd(rng.normal(size=(3, 4)))

    def f(x):
        return mx.nd.sin(mx.nd.dot(w, x)) * x[:3]

    x = nd(rng.normal(size=(4,)))
    jr = F.jacobian(f, mode="rev")(x).asnumpy()
    jf = F.jacobian(f, mode="fwd")(x).asnumpy()
    assert jr.shape == (3, 4)
    np.testing.assert_allclose(jr, jf, rtol=1e-12, atol=1e-14)
    # and against central differences
    num = np.stack(
        [(f(x + nd(e * 1e-6)).asnumpy() - f(x - nd(e * 1e-6)).asnumpy()) / 2e-6 for e in np.eye(4)],
        axis=1,
    )
    np.testing.assert_allclose(jr, num, rtol=1e-6, atol=1e-8)


def test_value_and_grad_argnums_and_aux():
    def f(a, b):
        return (a * b).sum(), a * 2

    (val, aux), (ga, gb) = F.value_and_grad(f, argnums=(0, 1), has_aux=True)(
        nd([1.0, 2.0]), nd([3.0, 4.0])
    )
    assert float(val.asscalar()) == 11.0
    assert aux.asnumpy().tolist() == [2.0, 4.0]
    assert ga.asnumpy().tolist() == [3.0, 4.0] and gb.asnumpy().tolist() == [1.0, 2.0]


def test_grad_inside_record_is_trained_through():
    """loss(w) = sum((d/dx f(x; w))^2) with the derivative from functional.grad; its gradient
    w.r.t. w (reaching w through the recorded derivative) against finite differences."""
    x = nd([0.1, -0.4, 0.9])

    def loss_of(wv):
        w = nd(wv)
        w.attach_grad()
        with autograd.record():
            dx = F.grad(lambda z: (mx.nd.tanh(w[0] * z) * w[1]).sum())(x)
            loss = (dx * dx).sum()
        loss.backward()
        return float(loss.asscalar()), w.grad.asnumpy()

    w0 = np.array([0.7, -1.3])
    _, g = loss_of(w0)
    num = np.array([(loss_of(w0 + e)[0] - loss_of(w0 - e)[0]) / 2e-6 for e in np.eye(2) * 1e-6])
    np.testing.assert_allclose(g, num, rtol=1e-6)


def test_hvp_inside_record_is_trained_through():
    w = nd([0.5, 1.5])
    w.attach_grad()
    x = nd([0.2, -0.3])
    v = nd([1.0, 0.0])
    with autograd.record():
        (hv,) = F.hvp(lambda z: (mx.nd.exp(w * z)).sum(), (x,), (v,))
        out = hv.sum()
    out.backward()
    # H v = w^2 exp(w x) * v; d/dw of its first component = (2 w + w^2 x) exp(w x)
    wa, xa = w.asnumpy(), x.asnumpy()
    expected = np.array([(2 * wa[0] + wa[0] ** 2 * xa[0]) * np.exp(wa[0] * xa[0]), 0.0])
    np.testing.assert_allclose(w.grad.asnumpy(), expected, rtol=1e-12)


def test_param_function_over_a_gluon_block():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(4, activation="tanh", in_units=3), gluon.nn.Dense(1, in_units=4))
    net.initialize(mx.init.Normal(0.5))
    net.cast("float64")
    x = nd(np.random.default_rng(2).normal(size=(5, 3)))
    f, params = F.param_function(net)
    gs = F.grad(lambda *p: f(*p, x).sum(), argnums=tuple(range(len(params))))(*params)
    # the block's own backward gives the same gradients, and its parameters are untouched
    with autograd.record():
        y = net(x).sum()
    y.backward()
    for g, p in zip(gs, net.collect_params().values()):
        np.testing.assert_allclose(g.asnumpy(), p.grad().asnumpy(), rtol=1e-12)
        assert p.data()._node is not None  # still the Parameter's own variable
    # Hessian-vector product over the parameters
    vs = [mx.nd.ones_like(p) for p in params]
    hv = F.hvp(lambda *p: (f(*p, x) ** 2).sum(), params, vs)
    assert [h.shape for h in hv] == [p.shape for p in params]


def test_param_function_errors_name_the_problem():
    net = gluon.nn.Dense(2)
    net.initialize()
    with pytest.raises(mx.base.TapegradError, match="forward pass"):
        F.param_function(net)
    net2 = gluon.nn.Dense(2, in_units=3)
    net2.initialize()
    f, params = F.param_function(net2)
    with pytest.raises(mx.base.ShapeError, match="weight"):
        f(mx.nd.ones((3, 3)), params[1], mx.nd.ones((1, 3)))
    # the parameters were restored after the failed call
    assert net2.weight.data().shape == (2, 3)


def test_hvp_rejects_bad_arguments():
    with pytest.raises(mx.base.ShapeError, match="one tangent per primal"):
        F.hvp(f_vec, (nd(X0),), ())
    with pytest.raises(mx.base.TapegradError, match="method"):
        F.hvp(f_vec, (nd(X0),), (nd(X0),), method="magic")


def test_jacobian_of_several_outputs_and_arguments():
    """outputs outer, arguments inner; reverse and forward mode against central differences."""
    rng = np.random.default_rng(3)
    a0, b0 = rng.normal(size=(2,)), rng.normal(size=(3,))

    def f(a, b):
        return mx.nd.sin(a).sum() * b, mx.nd.tanh(a) * b[:2]

    h = 1e-6

    def num(j, i):  # d output j / d argument i, column by column
        x0 = [a0, b0]
        cols = []
        for e in np.eye(x0[i].size):
            p, m = list(x0), list(x0)
            p[i], m[i] = x0[i] + h * e, x0[i] - h * e
            cols.append(f(nd(p[0]), nd(p[1]))[j].asnumpy() - f(nd(m[0]), nd(m[1]))[j].asnumpy())
        return np.stack(cols, axis=-1) / (2 * h)

    for mode in ("rev", "fwd"):
        J = F.jacobian(f, argnums=(0, 1), mode=mode)(nd(a0), nd(b0))
        assert [[t.shape for t in row] for row in J] == [[(3, 2), (3, 3)], [(2, 2), (2, 3)]]
        for j in range(2):
            for i in range(2):
                np.testing.assert_allclose(
                    J[j][i].asnumpy(), num(j, i), rtol=1e-6, atol=1e-8, err_msg=f"{mode} {j} {i}"
                )
        # one argument, two outputs: a tuple over the outputs
        J0 = F.jacobian(f, argnums=0, mode=mode)(nd(a0), nd(b0))
        assert isinstance(J0, tuple) and [t.shape for t in J0] == [(3, 2), (2, 2)]
    with pytest.raises(mx.base.TapegradError, match="output 1 .* float"):
        F.jacobian(lambda a: (a * 2, 3.0))(nd(a0))


def test_func_is_another_name_for_functional():
    import tapegrad.func as G

    assert mx.func.grad is F.grad and G.hvp is F.hvp and G.jacobian is F.jacobian
    assert set(G.__all__) == set(F.__all__)
    assert float(G.grad(lambda x: (x**3).sum())(nd([2.0])).asscalar()) == 12.0


@pytest.mark.parametrize("transform", ["jacobian-rev", "jacobian-fwd", "hessian", "vhp", "vjp"])
def test_other_transforms_inside_record_are_trained_through(transform):
    """d/dw of a loss built from each transform of z -> exp(w z), against finite differences."""
    x = nd([0.2, -0.3])
    ones = mx.nd.ones_like(x)
    build = {
        "jacobian-rev": lambda w: F.jacobian(lambda z: mx.nd.exp(w * z))(x),
        "jacobian-fwd": lambda w: F.jacobian(lambda z: mx.nd.exp(w * z), mode="fwd")(x),
        "hessian": lambda w: F.hessian(lambda z: mx.nd.exp(w * z).sum())(x),
        "vhp": lambda w: F.vhp(lambda z: mx.nd.exp(w * z).sum(), (x,), (ones,))[0],
        "vjp": lambda w: F.vjp(lambda z: mx.nd.exp(w * z), x)[1](ones)[0],
    }[transform]

    def loss_of(wv):
        w = nd(wv)
        w.attach_grad()
        with autograd.record():
            t = build(w)
            loss = (t * t).sum()
        loss.backward()
        return float(loss.asscalar()), w.grad.asnumpy()

    w0 = np.array([0.5, 1.5])
    _, g = loss_of(w0)
    num = np.array([(loss_of(w0 + e)[0] - loss_of(w0 - e)[0]) / 2e-6 for e in np.eye(2) * 1e-6])
    np.testing.assert_allclose(g, num, rtol=1e-6)
