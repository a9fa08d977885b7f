"""The samplers of ``mx.nd.random`` / ``mx.random`` and MXNet's sampling operators of ``mx.nd``
(``random_*``, ``sample_*``, ``normal``, ``uniform``, ``shuffle``): shapes, dtypes and argument
rules as MXNet 1.9 documents them, and the distributions' moments."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, nd
from tapegrad.base import ArgumentError, ArgumentValueError, DTypeError, ShapeError, TapegradError

N = 40000  # draws for the moment checks: the standard error of a mean is std / 200


@pytest.fixture(autouse=True)
def _seeded():
    mx.random.seed(1234)


# ------------------------------------------------------------------------ shapes, dtypes


def test_nd_random_defaults_to_one_float32_sample():
    # MXNet: "shape ... If shape is empty one sample" -> NDArray of shape (1,), float32
    for f in (nd.random.uniform, nd.random.normal, nd.random.poisson, nd.random.exponential,
              nd.random.gamma, nd.random.negative_binomial,
              nd.random.generalized_negative_binomial):  # fmt: skip
        r = f()
        assert r.shape == (1,) and r.dtype is np.float32, f.__name__
    assert nd.random.randint(0, 5).shape == (1,)
    assert nd.random.randint(0, 5).dtype is np.int32  # MXNet's default for randint
    assert nd.random.randint(0, 5, shape=3, dtype="int64").dtype is np.int64
    assert nd.random.randn(2, 3).shape == (2, 3)
    assert nd.random.uniform(shape=4, dtype="float64").dtype is np.float64
    assert nd.random.normal(shape=(2, 3), dtype="float16").dtype is np.float16


def test_mx_random_is_nd_random():
    assert mx.random.uniform is nd.random.uniform and mx.random.multinomial is nd.random.multinomial
    assert "gamma" in dir(mx.random) and "seed" in dir(mx.random)
    from tapegrad.random import normal

    assert normal is nd.random.normal


def test_operator_aliases_of_mx_nd():
    # MXNet registers _random_normal with the aliases random_normal and normal, ...
    assert nd.normal is nd.random_normal and nd.uniform is nd.random_uniform
    assert nd.shuffle is nd.random.shuffle
    r = nd.random_normal(0, 1, (2, 3))  # positional: loc, scale, shape
    assert r.shape == (2, 3) and r.dtype is np.float32
    assert nd.random_uniform(shape=3, dtype="float64").dtype is np.float64
    assert nd.random_uniform(low=2, high=3, shape=(50,)).asnumpy().min() >= 2
    assert nd.random_randint(0, 4, shape=(5,)).dtype is np.int32
    for name in ("random_gamma", "random_exponential", "random_poisson",
                 "random_negative_binomial", "random_generalized_negative_binomial"):  # fmt: skip
        assert getattr(nd, name)(shape=(2, 2)).shape == (2, 2), name


def test_operator_form_requires_a_shape():
    # the C operator has no default shape (MXNet fails on nd.random_normal())
    with pytest.raises(ArgumentError, match="random_normal: shape is required.*Fix"):
        nd.random_normal()
    with pytest.raises(ArgumentError, match="random_uniform: low must be a number"):
        nd.random_uniform(nd.zeros(1), 1, shape=2)


def test_ndarray_parameters_draw_per_element():
    # "If loc and scale are NDArrays with shape (x, y), the output has shape (x, y, m, n)"
    loc, scale = nd.array([[0.0, 100.0]]), nd.array([[1.0, 1.0]])
    r = nd.random.normal(loc, scale, shape=(3, 4))
    assert r.shape == (1, 2, 3, 4) and r.dtype is np.float32
    a = r.asnumpy()
    assert abs(a[0, 0].mean()) < 2 and abs(a[0, 1].mean() - 100) < 2
    assert nd.random.normal(loc, scale).shape == (1, 2)
    s = nd.sample_normal(nd.array([0.0, 10.0]), nd.array([1.0, 1.0]), shape=(2,))
    assert s.shape == (2, 2)
    # sample_* draw float32 whatever the parameters' dtype (as MXNet 1.9)
    f64 = nd.array([0.0, 1.0], dtype="float64")
    assert nd.sample_normal(f64, f64 + 1).dtype is np.float32
    assert nd.sample_uniform(nd.zeros(3), nd.ones(3), dtype="float64").dtype is np.float64


def test_parameters_must_agree():
    with pytest.raises(ArgumentError, match="all be NDArrays or all numbers"):
        nd.random.uniform(nd.array([0.0]), 1)
    with pytest.raises(ShapeError, match="one shape"):
        nd.sample_normal(nd.array([0.0, 1.0]), nd.array([1.0, 2.0, 3.0]))
    with pytest.raises(ArgumentError, match="sample_normal: mu must be an NDArray"):
        nd.sample_normal(0.0, 1.0)
    with pytest.raises(ArgumentError, match="uniform: low must be an NDArray or a number"):
        nd.random.uniform("a", 1)


def test_out_is_filled_and_returned():
    o = nd.zeros((2, 2))
    r = nd.random.uniform(2, 3, shape=(2, 2), out=o)
    assert r is o and o.asnumpy().min() >= 2
    # without shape, out's shape (and dtype) is used
    o64 = nd.zeros((3,), dtype="float64")
    assert nd.random.normal(out=o64) is o64 and o64.asnumpy().std() > 0
    with pytest.raises(ShapeError, match="out= has shape"):
        nd.random.normal(shape=(3,), out=o)


def test_unknown_keywords_and_bad_dtypes_are_refused():
    with pytest.raises(ArgumentError, match="uniform: unknown keyword argument foo=3.*Fix"):
        nd.random.uniform(shape=2, foo=3)
    with pytest.raises(ArgumentError, match="Did you mean 'scale'"):
        nd.random.normal(shape=2, scal=3)
    with pytest.raises(ArgumentError, match="random_uniform: unknown keyword"):
        nd.random_uniform(shape=2, foo=3)
    with pytest.raises(ArgumentError, match="randn: unknown keyword"):
        nd.random.randn(2, foo=1)
    with pytest.raises(ArgumentError, match="uniform_like: unknown keyword"):
        nd.random.uniform_like(nd.zeros(2), lo=1)
    # MXNet: normal draws float16/32/64 only, randint int32/int64 only
    with pytest.raises(DTypeError, match="normal: dtype='int32'.*'float16', 'float32'"):
        nd.random.normal(shape=2, dtype="int32")
    with pytest.raises(DTypeError, match="randint.*'int32', 'int64'"):
        nd.random.randint(0, 5, shape=2, dtype="float32")
    with pytest.raises(ArgumentError, match="randint: low must be an int"):
        nd.random.randint(0.5, 5)


def test_invalid_parameters_are_refused():
    with pytest.raises(ArgumentValueError, match="low=2 > high=1"):
        nd.random.uniform(2, 1, shape=3)
    with pytest.raises(ArgumentValueError, match="scale=-1"):
        nd.random.normal(0, -1, shape=3)
    with pytest.raises(ArgumentValueError, match="exponential: scale=0"):
        nd.random.exponential(0)


def test_a_gpu_context_is_refused_with_the_fix():
    with pytest.raises(TapegradError, match=r"normal: cannot place an array on gpu\(0\).*Fix"):
        nd.random.normal(shape=2, ctx=mx.gpu())
    assert nd.random.normal(shape=2, ctx=mx.cpu()).shape == (2,)


# ------------------------------------------------------------------------ distributions


@pytest.mark.parametrize(
    "draw, mean, var",
    [
        (lambda: nd.random.uniform(-1, 3, shape=N), 1.0, 16 / 12),
        (lambda: nd.random.normal(3, 2, shape=N), 3.0, 4.0),
        (lambda: nd.random.randn(N, loc=-1, scale=0.5), -1.0, 0.25),
        (lambda: nd.random.exponential(2.0, shape=N), 2.0, 4.0),  # scale = mean
        (lambda: nd.random_exponential(lam=4.0, shape=N), 0.25, 1 / 16),  # the rate
        (lambda: nd.random.gamma(2.0, 3.0, shape=N), 6.0, 18.0),  # alpha beta, alpha beta^2
        (lambda: nd.random.poisson(4.0, shape=N), 4.0, 4.0),
        # failures before the k-th success: mean k(1-p)/p, variance k(1-p)/p^2
        (lambda: nd.random.negative_binomial(5, 0.5, shape=N), 5.0, 10.0),
        # mean mu, variance mu + alpha mu^2
        (lambda: nd.random.generalized_negative_binomial(2.0, 0.5, shape=N), 2.0, 4.0),
        (lambda: nd.random.generalized_negative_binomial(3.0, 0.0, shape=N), 3.0, 3.0),
        (lambda: nd.random.randint(0, 10, shape=N), 4.5, 99 / 12),
        (lambda: nd.random.exponential_like(nd.zeros(N), lam=2.0), 0.5, 0.25),
        (lambda: nd.random.normal_like(nd.zeros(N, dtype="float64"), 1.0, 3.0), 1.0, 9.0),
    ],
)
def test_moments(draw, mean, var):
    a = draw().asnumpy().astype(np.float64)
    assert a.shape == (N,)
    assert abs(a.mean() - mean) < 5 * np.sqrt(var / N)
    assert abs(a.var() / var - 1) < 0.1


def test_integer_valued_samplers_give_whole_numbers():
    for r in (nd.random.poisson(3, shape=100), nd.random.negative_binomial(3, 0.4, shape=100)):
        a = r.asnumpy()
        assert r.dtype is np.float32 and (a == np.round(a)).all() and a.min() >= 0
    a = nd.random.randint(-3, 3, shape=1000).asnumpy()
    assert a.min() == -3 and a.max() == 2


def test_seed_makes_every_sampler_reproducible():
    def run():
        return [f().asnumpy() for f in (
            lambda: nd.random.normal(shape=3), lambda: nd.random.gamma(2, shape=3),
            lambda: nd.sample_poisson(nd.array([1.0, 5.0]), shape=2),
            lambda: nd.random.multinomial(nd.array([0.3, 0.7]), shape=4),
            lambda: nd.random.shuffle(nd.arange(5)),
        )]  # fmt: skip

    mx.random.seed(7)
    a = run()
    mx.random.seed(7)
    b = run()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------ multinomial


def test_multinomial_shapes_follow_mxnet():
    # "For input data with n dimensions (d1, ..., dn-1, k) and shape (s1, ..., sx), the output
    # has shape (d1, ..., dn-1, s1, ..., sx)"; one distribution without shape gives (1,)
    p1 = nd.array([0.2, 0.8])
    assert nd.random.multinomial(p1).shape == (1,)
    assert nd.random.multinomial(p1).dtype is np.int32
    assert nd.random.multinomial(p1, shape=3).shape == (3,)
    p2 = nd.array([[0.2, 0.8], [0.5, 0.5]])
    assert nd.random.multinomial(p2).shape == (2,)
    assert nd.random.multinomial(p2, shape=(2, 3)).shape == (2, 2, 3)
    assert nd.random.multinomial(nd.ones((2, 3, 4)) / 4, shape=5).shape == (2, 3, 5)
    assert nd.sample_multinomial(p1, shape=5).shape == (5,)
    assert nd.random.multinomial(p1, dtype="float32").dtype is np.float32


def test_multinomial_samples_the_classes():
    assert (nd.random.multinomial(nd.array([0.0, 1.0, 0.0]), shape=50).asnumpy() == 1).all()
    a = nd.random.multinomial(nd.array([0.25, 0.75]), shape=N).asnumpy()
    assert abs(a.mean() - 0.75) < 5 * np.sqrt(0.75 * 0.25 / N)
    # MXNet does not renormalize: the first class whose cumulative sum reaches a draw in
    # [0, 1) wins, so [1, 3] always gives class 0
    assert (nd.random.multinomial(nd.array([1.0, 3.0]), shape=20).asnumpy() == 0).all()


def test_multinomial_get_prob_gives_differentiable_log_probabilities():
    data = nd.array([[0.1, 0.9], [0.6, 0.4]], dtype="float64")
    data.attach_grad()
    with autograd.record():
        sample, logp = nd.random.multinomial(data, shape=3, get_prob=True)
    s = sample.asnumpy()
    assert sample.shape == logp.shape == (2, 3) and logp.dtype is np.float64
    np.testing.assert_allclose(logp.asnumpy(), np.log(data.asnumpy()[[[0], [1]], s]))
    logp.backward()
    # d/dp_c sum log p_{s_j} = (number of draws of c) / p_c
    want = np.zeros((2, 2))
    for i in range(2):
        for c in range(2):
            want[i, c] = (s[i] == c).sum() / data.asnumpy()[i, c]
    np.testing.assert_allclose(data.grad.asnumpy(), want)


def test_multinomial_refuses_what_holds_no_distribution():
    with pytest.raises(ShapeError, match="multinomial: data of shape \\(\\) holds no"):
        nd.random.multinomial(nd.array(0.5))
    with pytest.raises(DTypeError, match="probabilities are floats"):
        nd.random.multinomial(nd.array([0, 1], dtype="int32"))


# ------------------------------------------------------------------------ shuffle


def test_shuffle_permutes_rows_and_passes_gradients_back():
    x = nd.arange(12).reshape((4, 3))
    x.attach_grad()
    with autograd.record():
        y = nd.random.shuffle(x)
        loss = (y * nd.arange(4).reshape((4, 1))).sum()
    loss.backward()
    rows = y.asnumpy()
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, x.asnumpy().tolist()))
    np.testing.assert_array_equal(x.asnumpy(), np.arange(12).reshape(4, 3))  # not in place
    # row i of x went to position j of y: its gradient is j
    pos = {int(r[0]) // 3: j for j, r in enumerate(rows)}
    np.testing.assert_array_equal(x.grad.asnumpy()[:, 0], [pos[i] for i in range(4)])
    assert nd.shuffle(nd.arange(6, dtype="int32")).dtype is np.int32
