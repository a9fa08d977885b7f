"""tapegrad.jit: compiled functions give the eager results and gradients, to any order, and
never a silently wrong one (retrace, fallback with a warning)."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from opspec import check_order

import tapegrad as mx
from tapegrad import autograd, nd
from tapegrad import functional as F


def f64(a):
    return nd.array(a, dtype="float64")


def net(x, w, b):
    h = nd.tanh(nd.dot(x, w) + b)
    return (h * h).sum() + nd.sin(x).sum()


RNG = np.random.default_rng(0)
X, W, B = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2)), RNG.normal(size=(2,))


def test_values_and_gradients_equal_eager():
    jf = mx.jit(net)
    for _ in range(3):  # traced once, then compiled calls
        xs = [f64(a) for a in (X, W, B)]
        for a in xs:
            a.attach_grad()
        with autograd.record():
            y = jf(*xs)
        y.backward()
        got = [y.asnumpy()] + [a.grad.asnumpy() for a in xs]
        xe = [f64(a) for a in (X, W, B)]
        for a in xe:
            a.attach_grad()
        with autograd.record():
            ye = net(*xe)
        ye.backward()
        ref = [ye.asnumpy()] + [a.grad.asnumpy() for a in xe]
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-12)
    assert len(jf.plans) == 1
    assert "backward" in jf.source and "tanh" in jf.source


@pytest.mark.parametrize("order", [1, 2, 3])
def test_derivatives_of_a_compiled_function_against_finite_differences(order):
    jf = mx.jit(net)
    check_order(jf, [X, W, B], order, np.random.default_rng(order))


def test_jit_of_grad_and_grad_of_jit_to_third_order():
    f = lambda x: (nd.sin(x) * x**3).sum()  # noqa: E731
    x = f64([0.3, -0.7, 1.1])
    a = x.asnumpy()
    d3 = -np.cos(a) * a**3 - 9 * np.sin(a) * a**2 + 18 * np.cos(a) * a + 6 * np.sin(a)
    for g in (
        F.grad(lambda z: F.grad(lambda y: F.grad(mx.jit(f))(y).sum())(z).sum()),
        mx.jit(F.grad(lambda z: F.grad(lambda y: F.grad(f)(y).sum())(z).sum())),
        F.grad(lambda z: mx.jit(F.grad(lambda y: F.grad(f)(y).sum()))(z).sum()),
    ):
        np.testing.assert_allclose(g(x).asnumpy(), d3, rtol=1e-10)


def test_hvp_and_taylor_mode_through_a_compiled_function():
    jf = mx.jit(lambda x: (nd.tanh(x) ** 3).sum())
    x = f64([0.2, -0.4])
    v = f64([1.0, 2.0])
    for method in ("rev-fwd", "fwd-rev", "rev-rev"):
        (hv,) = F.hvp(jf, (x,), (v,), method=method)
        (ref,) = F.hvp(lambda z: (nd.tanh(z) ** 3).sum(), (x,), (v,), method="rev-rev")
        np.testing.assert_allclose(hv.asnumpy(), ref.asnumpy(), rtol=1e-10)
    from tapegrad.sciml import derivatives

    u = mx.jit(lambda z: nd.tanh(z) * z)
    pts = f64([[0.1], [0.5]])
    got = derivatives(u, pts, order=3)
    ref = derivatives(lambda z: nd.tanh(z) * z, pts, order=3)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.asnumpy(), r.asnumpy(), rtol=1e-10)


def test_retrace_on_a_new_shape_and_on_a_mode_change():
    calls = []

    def f(x):
        calls.append(1)
        return nd.Dropout(x, p=0.0) * 2 if autograd.is_training() else x * 3

    jf = mx.jit(f)
    jf(nd.ones(3))
    jf(nd.ones(3))
    assert len(calls) == 1
    jf(nd.ones(4))
    assert len(calls) == 2
    with autograd.train_mode():
        out = jf(nd.ones(4))
    assert len(calls) == 3 and out.asnumpy().tolist() == [2.0] * 4
    assert jf(nd.ones(4)).asnumpy().tolist() == [3.0] * 4


def test_data_dependent_control_flow_falls_back_with_a_warning_naming_the_line():
    def f(x):
        if x.sum() > 0:  # reads a traced value
            return x * 2
        return x * -1

    jf = mx.jit(f)
    with pytest.warns(RuntimeWarning, match=r"runs eagerly.*bool\(\).*test_jit\.py:\d+"):
        assert jf(nd.array([1.0])).asnumpy().tolist() == [2.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        assert jf(nd.array([-1.0])).asnumpy().tolist() == [1.0]


def test_too_many_shapes_run_eagerly_and_say_so_once():
    jf = mx.jit(lambda x: x * 2)
    with pytest.warns(RuntimeWarning, match="more than 16"):
        for n in range(1, 20):
            assert jf(nd.ones(n)).shape == (n,)


def test_several_outputs_and_their_gradients():
    def f(x, y):
        return x * y, [nd.exp(x), y.sum()]

    jf = mx.jit(f)
    x, y = f64([0.5, 1.0]), f64([2.0, -1.0])
    for a in (x, y):
        a.attach_grad()
    with autograd.record():
        p, (e, s) = jf(x, y)
        loss = (p * 3).sum() + e.sum()  # s unused: its cotangent is zero
    loss.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * y.asnumpy() + np.exp(x.asnumpy()))
    np.testing.assert_allclose(y.grad.asnumpy(), 3 * x.asnumpy())
    assert s.asnumpy().tolist() == [1.0]


def test_an_argument_updated_in_place_under_pause_is_replayed():
    # BatchNorm's running statistics: updated each call by the compiled code, not differentiated
    def f(x, stats):
        m = x.mean()
        with autograd.pause():
            stats[:] = stats * 0.5 + m.detach() * 0.5
        return x - m

    jf = mx.jit(f)
    stats = f64([0.0])
    x = f64([1.0, 3.0])
    x.attach_grad()
    for expected in (1.0, 1.5, 1.75):
        with autograd.record():
            y = (jf(x, stats) ** 2).sum()
        y.backward()
        assert stats.asnumpy().tolist() == [expected]
    np.testing.assert_allclose(x.grad.asnumpy(), [-2.0, 2.0])


def test_two_threads_call_one_compiled_function():
    jf = mx.jit(net)
    xs = [f64(a) for a in (X, W, B)]
    ref = net(*xs).asnumpy()
    errors = []

    def work():
        try:
            for _ in range(50):
                np.testing.assert_allclose(jf(*xs).asnumpy(), ref, rtol=1e-12)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(jf.plans) == 1


def test_a_compiled_function_in_a_graph_is_one_node():
    jf = mx.jit(net)
    xs = [f64(a) for a in (X, W, B)]
    for a in xs:
        a.attach_grad()
    with autograd.record():
        y = jf(*xs)
    assert y._node.prim.name.startswith("jit:") and len(y._node.parents) == 3


def test_a_repeated_subexpression_is_computed_once_with_the_same_derivatives():
    def f(x):
        return nd.exp(x) * nd.sin(x) + nd.exp(x) * nd.cos(x)  # exp(x) twice

    jf = mx.jit(f)
    x = f64([0.3, -1.2])
    np.testing.assert_allclose(jf(x).asnumpy(), f(x).asnumpy(), rtol=1e-15)
    names = [s.prim.name for s in jf.plans[0].steps]
    assert names.count("exp") == 1 and names.count("multiply") == 2
    for order in (1, 2):
        check_order(lambda a: jf(a).sum(), [x.asnumpy()], order, RNG)


def test_in_place_updates_of_arguments_write_their_memory_directly():
    # Adam's moments: each update runs as a ufunc into the argument's memory (out=)
    def f(p, m):
        m *= 0.9
        m += p * 0.1
        return (m * p).sum()

    jf = mx.jit(f)
    p, m1, m2 = f64([1.0, 2.0]), f64([0.5, -0.5]), f64([0.5, -0.5])
    view = m1.reshape((2, 1))  # shares m1's memory: sees the updates
    for _ in range(3):
        got, want = jf(p, m1), f(p, m2)
        np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), rtol=1e-15)
        np.testing.assert_allclose(m1.asnumpy(), m2.asnumpy(), rtol=1e-15)
    np.testing.assert_allclose(view.asnumpy().ravel(), m2.asnumpy(), rtol=1e-15)
    src = jf.plans[0].source["forward"]
    assert src.count("out=v1, casting='unsafe'") == 2 and "WRITE" not in src


def test_in_place_updates_by_compiled_code_are_seen_by_recorded_graphs():
    # the compiled program notes each argument it updated once, at its end (or its failure):
    # a graph recorded with the old values must refuse to differentiate, as eagerly
    def f(p, m):
        m *= 0.5
        m += p
        p -= 0.1 * m
        return m.sum()

    jf = mx.jit(f)
    p, m = f64([1.0, 2.0]), f64([0.5, -0.5])
    jf(p, m)  # traced
    src = jf.plans[0].source["forward"]
    assert src.count("NOTE(") == 1 and "finally:" in src
    for arg in (p, m):
        w = f64([1.0, 1.0])
        w.attach_grad()
        with autograd.record():
            y = (w * arg).sum()
        jf(p, m)
        with pytest.raises(mx.base.VersionError):
            y.backward()


def test_static_alloc_recycles_dead_buffers_and_keeps_views_alive():
    def f(x):
        a = nd.exp(x)
        v = a.reshape((-1,))  # a view of a: a's buffer must not be recycled while v lives
        b = a * 2.0
        c = b + 1.0  # b is dead after this: c or a later result may take its buffer
        d = c * c
        e = nd.sin(d) * 3.0
        return e + v.reshape(x.shape)

    x = f64(RNG.normal(size=(3, 4)))
    plain, static = mx.jit(f), mx.jit(f, static_alloc=True)
    for _ in range(2):
        np.testing.assert_array_equal(static(x).asnumpy(), plain(x).asnumpy())
    np.testing.assert_allclose(static(x).asnumpy(), f(x).asnumpy(), rtol=1e-15)
    assert static.plans[0].source["forward"].count("out=") >= 2
    assert "out=" not in plain.plans[0].source["forward"]
    # recording: the values the backward pass needs are never recycled
    x.attach_grad()
    for _ in range(2):
        with autograd.record():
            y = static(x).sum()
        y.backward()
        g = x.grad.asnumpy().copy()
    with autograd.record():
        y = f(x).sum()
    y.backward()
    np.testing.assert_allclose(g, x.grad.asnumpy(), rtol=1e-13)


def test_random_draws_of_constant_inputs_are_new_each_call():
    jf = mx.jit(lambda x: nd.Dropout(x, p=0.5))
    x = nd.ones((8, 8))  # no graph: the mask is still drawn anew by the compiled code
    with autograd.train_mode():
        a, b = jf(x).asnumpy(), jf(x).asnumpy()
    assert (a != b).any() and set(np.unique(a)) <= {0.0, 2.0}


def test_nd_random_samplers_draw_new_numbers_at_every_compiled_call():
    jf = mx.jit(
        lambda x: (
            x
            + nd.random.normal(shape=(4,))
            + nd.random.uniform(-1, 1, shape=x.shape)
            + nd.random.randint(0, 100, shape=(4,)).astype("float32")
        )
    )
    x = nd.zeros((4,))
    a, b = jf(x).asnumpy(), jf(x).asnumpy()
    assert len(jf.plans) == 1 and not np.allclose(a, b)
    mx.random.seed(7)
    c = jf(x).asnumpy()
    mx.random.seed(7)
    np.testing.assert_array_equal(jf(x).asnumpy(), c)  # the seed still makes runs reproducible


def test_a_draw_outside_the_samplers_falls_back_with_a_warning():
    jf = mx.jit(lambda x: nd.LeakyReLU(x, act_type="rrelu"))  # draws its slopes directly
    x = nd.array([-1.0, -2.0, -3.0])
    with autograd.train_mode(), pytest.warns(RuntimeWarning, match="random number drawn"):
        a = jf(x).asnumpy()
    with autograd.train_mode():
        b = jf(x).asnumpy()
    assert not jf.plans and not np.allclose(a, b)
