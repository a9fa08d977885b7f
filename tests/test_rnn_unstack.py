"""The time-axis split of the recurrent layers (``tapegrad/ops/rnn.py``): one node, a sparse
per-step gradient gathered into one array, and what users see of it (explain). The op-spec
table checks its derivatives to third order; these tests check the contract that makes it
fast and its behaviour at the edges."""

from __future__ import annotations

import numpy as np

import tapegrad as mx
from tapegrad import autograd, nd
from tapegrad.core import RAW
from tapegrad.ndarray.rnn_ops import split_steps
from tapegrad.ops.rnn import Steps


def test_a_step_gradient_holds_that_step_only_and_merges_without_arithmetic():
    g = np.ones((2, 3))
    one = RAW.unstack_put(g, index=4, n=100)
    assert isinstance(one, Steps) and list(one.items) == [4] and one.items[4] is g
    both = one + RAW.unstack_put(2 * g, index=7, n=100)
    assert sorted(both.items) == [4, 7] and both.items[4] is g  # merged, not copied
    twice = both + RAW.unstack_put(g, index=4, n=100)  # a step read twice: added
    np.testing.assert_array_equal(twice.items[4], 2 * g)
    dense = RAW.unstack_join(twice, axis=1)  # one array, zeros for the steps never read
    assert dense.shape == (2, 100, 3)
    np.testing.assert_array_equal(dense[:, 4], 2 * g)
    np.testing.assert_array_equal(dense[:, 7], 2 * g)
    assert np.count_nonzero(dense) == 12


def test_split_steps_gradient_with_steps_read_twice_or_never():
    x = nd.array(np.arange(24.0).reshape(4, 2, 3), dtype="float64")
    x.attach_grad()
    with autograd.record():
        s = split_steps(x, axis=1)  # two steps of shape (4, 3)
        y = (s[0] * 3).sum() + (s[0] * s[0]).sum()
    y.backward()
    want = np.zeros((4, 2, 3))
    want[:, 0] = 3 + 2 * x.asnumpy()[:, 0]
    np.testing.assert_array_equal(x.grad.asnumpy(), want)


def test_long_sequence_gradient_is_exact():
    # 300 steps of a scalar recurrence h = tanh(x_t + 0.5 h): gradient against a hand-written
    # backward pass
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((300, 2))
    x = nd.array(xs, dtype="float64")
    x.attach_grad()
    with autograd.record():
        h = None
        for v in split_steps(x, 0):
            h = nd.tanh(v) if h is None else nd.tanh(v + 0.5 * h)
        loss = h.sum()
    loss.backward()
    hs = []
    h = np.zeros(2)
    for t in range(300):
        h = np.tanh(xs[t] + (0.5 * h if t else 0))
        hs.append(h)
    g = np.ones(2)
    want = np.zeros_like(xs)
    for t in range(299, -1, -1):
        dz = g * (1 - hs[t] ** 2)
        want[t] = dz
        g = 0.5 * dz
    np.testing.assert_allclose(x.grad.asnumpy(), want, rtol=1e-12, atol=1e-300)


def test_explain_shows_the_split_and_the_gathered_gradient():
    def f(x):
        a, b = split_steps(x, 0)
        return (nd.tanh(a) * b).sum()

    text = str(mx.explain(f, nd.array([[0.5, 1.0], [2.0, -1.0]], dtype="float64")))
    assert "unstack(x, axis=0)  = <2x2> [ 0.5,  1. ,  2. , -1. ]" in text
    assert "b = a[0]" in text and "c = a[1]" in text
    assert "df/da = df/db + df/dc" in text  # the two steps' gradients, gathered
