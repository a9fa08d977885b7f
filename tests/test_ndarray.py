"""NDArray and mx.nd behaviour against MXNet 1.x's documented semantics and NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad.base import ShapeError, TapegradError


def test_package_surface():
    assert mx.base.MXNetError is mx.base.TapegradError
    assert isinstance(mx.__version__, str)
    assert repr(mx.cpu()) == "cpu(0)" and mx.context.current_context() == mx.cpu()
    assert mx.nd.ones((1,)).context == mx.cpu()
    with pytest.raises(TapegradError, match="GPU"):
        mx.nd.NDArray(np.ones(2), ctx=mx.gpu())


def test_default_dtype_float32_and_dtype_argument():
    assert mx.nd.array([1, 2]).dtype == np.float32
    assert mx.nd.array(np.arange(3.0)).dtype == np.float32  # MXNet: float32 unless NDArray
    assert mx.nd.array(mx.nd.ones((2,), dtype="float64")).dtype == np.float64
    for f in (mx.nd.zeros, mx.nd.ones, mx.nd.empty):
        assert f((2, 3)).dtype == np.float32
        assert f((2, 3), dtype="float64").dtype == np.float64
    assert mx.nd.full((2,), 7).asnumpy().tolist() == [7.0, 7.0]
    assert mx.nd.arange(0, 1, 0.25).asnumpy().tolist() == [0.0, 0.25, 0.5, 0.75]
    assert mx.nd.arange(3, repeat=2).asnumpy().tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(mx.nd.linspace(0, 1, 5).asnumpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(mx.nd.eye(3, k=1).asnumpy(), np.eye(3, k=1))
    z = mx.nd.zeros_like(mx.nd.ones((2, 2), dtype="float64"))
    assert z.dtype == np.float64 and z.asnumpy().sum() == 0


def test_repr_like_mxnet():
    assert repr(mx.nd.array([[1, 2], [3, 4]])) == "\n[[1. 2.]\n [3. 4.]]\n<NDArray 2x2 @cpu(0)>"
    assert repr(mx.nd.array([1, 2, 3])).endswith("<NDArray 3 @cpu(0)>")


def test_members():
    x = mx.nd.array(np.arange(6).reshape(2, 3))
    assert x.shape == (2, 3) and x.size == 6 and x.ndim == 2 and len(x) == 2
    assert x.T.shape == (3, 2)
    assert mx.nd.array([5]).asscalar() == 5 and mx.nd.array([5]).item() == 5.0
    assert isinstance(mx.nd.array([5]).item(), float)
    assert x.astype("int32").dtype == np.int32
    c = x.copy()
    c[0, 0] = 100
    assert x[0, 0].asscalar() == 0
    d = mx.nd.zeros((2, 3))
    assert x.copyto(d) is d
    np.testing.assert_array_equal(d.asnumpy(), x.asnumpy())
    with pytest.raises(ShapeError, match=r"copyto.*\(2, 3\).*\(3,\)"):
        x.copyto(mx.nd.zeros((3,)))  # MXNet requires equal shapes (no broadcasting)
    assert x.copyto(mx.cpu()).shape == (2, 3)
    assert np.asarray(x).shape == (2, 3)
    rows = [r.asnumpy().tolist() for r in x]
    assert rows == [[0, 1, 2], [3, 4, 5]]
    assert bool(mx.nd.array([1])) and not bool(mx.nd.array([0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x)
    assert x.detach()._node is None


def test_integer_index_on_1d_keeps_one_element_like_mxnet():
    x = mx.nd.array([1, 2, 3])
    assert x[1].shape == (1,) and x[1].asscalar() == 2
    assert x[-1].asscalar() == 3
    with pytest.raises(IndexError, match="out of bounds"):
        x[3]
    m = mx.nd.array([[1, 2], [3, 4]])
    assert m[1].shape == (2,)


def test_reshape_codes():
    x = mx.nd.ones((2, 3, 4))
    assert x.reshape((0, -1)).shape == (2, 12)
    assert x.reshape((-2,)).shape == (2, 3, 4)
    assert x.reshape((-3, 4)).shape == (6, 4)
    assert x.reshape((-4, 1, 2, -2)).shape == (1, 2, 3, 4)
    assert x.reshape((6, -1)).shape == (6, 4)
    assert x.reshape(4, 6).shape == (4, 6)
    assert x.reshape(shape=(24,)).shape == (24,)
    with pytest.raises(ShapeError, match="reshape"):
        x.reshape((5, 5))


def test_reductions_with_axis_keepdims_exclude():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = mx.nd.array(a)
    assert x.sum().shape == (1,) and x.sum().asscalar() == a.sum()  # MXNet: shape (1,)
    np.testing.assert_allclose(x.sum(axis=1).asnumpy(), a.sum(axis=1))
    np.testing.assert_allclose(
        x.mean(axis=(0, 2), keepdims=True).asnumpy(), a.mean(axis=(0, 2), keepdims=True)
    )
    np.testing.assert_allclose(x.max(axis=1, exclude=True).asnumpy(), a.max(axis=(0, 2)))
    np.testing.assert_allclose(
        x.sum(axis=(0, 2), exclude=True, keepdims=True).asnumpy(), a.sum(1, keepdims=True)
    )
    assert x.sum(exclude=True).shape == (1,)  # no axis: every axis, exclude or not
    assert x.mean(axis=(0, 1, 2), exclude=True).shape == (2, 3, 4)  # nothing left to reduce
    np.testing.assert_allclose(mx.nd.min(x, axis=-1).asnumpy(), a.min(axis=-1))
    np.testing.assert_allclose(mx.nd.prod(x + 1, axis=0).asnumpy(), (a + 1).prod(axis=0))
    np.testing.assert_allclose(mx.nd.norm(x).asnumpy(), [np.linalg.norm(a)], rtol=1e-6)
    np.testing.assert_allclose(x.argmax(axis=2).asnumpy(), a.argmax(axis=2))
    assert x.argmax(axis=2).dtype == np.float32  # MXNet returns float indices
    big = mx.nd.array([[1000.0, 1000.0]], dtype="float64")
    np.testing.assert_allclose(mx.nd.logsumexp(big, axis=1).asnumpy(), [1000 + np.log(2)])
    with pytest.raises(ShapeError, match="axis 3 is out of range"):
        x.sum(axis=3)


def test_operators_reflected_inplace_and_comparisons():
    a = mx.nd.array([1.0, 2.0, 4.0])
    n = a.asnumpy()
    np.testing.assert_allclose((2 - a).asnumpy(), 2 - n)
    np.testing.assert_allclose((2 / a).asnumpy(), 2 / n)
    np.testing.assert_allclose((2**a).asnumpy(), 2**n)
    np.testing.assert_allclose((a // 3).asnumpy(), n // 3)
    np.testing.assert_allclose((a % 3).asnumpy(), n % 3)
    np.testing.assert_allclose((-a).asnumpy(), -n)
    np.testing.assert_allclose(abs(mx.nd.array([-1.0])).asnumpy(), [1.0])
    assert (np.float32(2) * a).__class__ is mx.nd.NDArray
    m = mx.nd.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose((m @ m).asnumpy(), m.asnumpy() @ m.asnumpy())
    eq = a == 2
    assert eq.dtype == np.float32 and eq.asnumpy().tolist() == [0, 1, 0]
    assert (a > 1).asnumpy().tolist() == [0, 1, 1]
    assert (a <= 2).asnumpy().tolist() == [1, 1, 0]
    assert (a != 2).asnumpy().tolist() == [1, 0, 1]
    b = a.copy()
    b += 1
    b *= 2
    b -= 1
    b /= 3
    np.testing.assert_allclose(b.asnumpy(), ((n + 1) * 2 - 1) / 3)
    with pytest.raises(ShapeError):
        b += mx.nd.ones((4,))


def test_indexing_basic_integer_boolean_and_setitem():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = mx.nd.array(a)
    np.testing.assert_array_equal(x[1:, ::2].asnumpy(), a[1:, ::2])
    np.testing.assert_array_equal(x[mx.nd.array([2, 0])].asnumpy(), a[[2, 0]])
    np.testing.assert_array_equal(x[[0, 2]].asnumpy(), a[[0, 2]])
    mask = mx.nd.array(a > 5).astype("bool")
    np.testing.assert_array_equal(x[mask].asnumpy(), a[a > 5])
    x[:, 1] = 0
    x[0] = mx.nd.array([9, 9, 9, 9])
    a[:, 1] = 0
    a[0] = 9
    np.testing.assert_array_equal(x.asnumpy(), a)
    with pytest.raises(ShapeError, match="__setitem__"):
        x[0] = mx.nd.ones((5,))


def test_shape_functions_match_numpy():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = mx.nd.array(a)
    np.testing.assert_array_equal(
        mx.nd.transpose(x, axes=(2, 0, 1)).asnumpy(), a.transpose(2, 0, 1)
    )
    np.testing.assert_array_equal(x.flatten().asnumpy(), a.reshape(2, -1))
    assert x.expand_dims(1).shape == (2, 1, 3, 4)
    assert mx.nd.ones((1, 3, 1)).squeeze().shape == (3,)
    assert mx.nd.ones((1, 3, 1)).squeeze(axis=0).shape == (3, 1)
    np.testing.assert_array_equal(
        mx.nd.concat(x, x, dim=1).asnumpy(), np.concatenate([a, a], axis=1)
    )
    np.testing.assert_array_equal(mx.nd.stack(x, x, axis=1).asnumpy(), np.stack([a, a], 1))
    parts = mx.nd.split(x, 3, axis=1)
    assert [p.shape for p in parts] == [(2, 1, 4)] * 3
    assert mx.nd.split(x, 3, axis=1, squeeze_axis=True)[0].shape == (2, 4)
    np.testing.assert_array_equal(mx.nd.slice(x, begin=(0, 1), end=(1, 3)).asnumpy(), a[0:1, 1:3])
    np.testing.assert_array_equal(
        mx.nd.slice_axis(x, axis=2, begin=1, end=3).asnumpy(), a[:, :, 1:3]
    )
    np.testing.assert_array_equal(mx.nd.tile(x, reps=(1, 2, 1)).asnumpy(), np.tile(a, (1, 2, 1)))
    np.testing.assert_array_equal(
        mx.nd.repeat(x, repeats=2, axis=0).asnumpy(), np.repeat(a, 2, axis=0)
    )
    np.testing.assert_array_equal(mx.nd.flip(x, axis=2).asnumpy(), np.flip(a, 2))
    assert mx.nd.broadcast_to(mx.nd.ones((3, 1)), shape=(2, 3, 4)).shape == (2, 3, 4)
    assert mx.nd.broadcast_to(mx.nd.ones((3, 1)), shape=(0, 5)).shape == (3, 5)
    np.testing.assert_array_equal(
        mx.nd.reshape_like(x, mx.nd.ones((4, 6))).asnumpy(), a.reshape(4, 6)
    )
    with pytest.raises(ShapeError, match="not divisible"):
        mx.nd.split(x, 2, axis=1)


def test_pick_take_one_hot_where_clip():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = mx.nd.array(a)
    idx = mx.nd.array([0, 3, 1])
    np.testing.assert_array_equal(mx.nd.pick(x, idx, axis=1).asnumpy(), a[[0, 1, 2], [0, 3, 1]])
    assert mx.nd.pick(x, idx, axis=1, keepdims=True).shape == (3, 1)
    np.testing.assert_array_equal(
        mx.nd.take(x, mx.nd.array([2, 7]), axis=0).asnumpy(), a[[2, 2]]
    )  # mode='clip'
    oh = mx.nd.one_hot(mx.nd.array([1, 0, 3]), 4)
    np.testing.assert_array_equal(oh.asnumpy(), np.eye(4)[[1, 0, 3]])
    w = mx.nd.where(x > 5, x, -x)
    np.testing.assert_array_equal(w.asnumpy(), np.where(a > 5, a, -a))
    np.testing.assert_array_equal(mx.nd.clip(x, 2, 5).asnumpy(), np.clip(a, 2, 5))


def test_activations_and_softmax_values():
    z = np.linspace(-3, 3, 7).astype(np.float64)
    x = mx.nd.array(z, dtype="float64")
    np.testing.assert_allclose(mx.nd.sigmoid(x).asnumpy(), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(mx.nd.relu(x).asnumpy(), np.maximum(z, 0))
    np.testing.assert_allclose(mx.nd.softrelu(x).asnumpy(), np.log1p(np.exp(z)))
    np.testing.assert_allclose(
        mx.nd.Activation(x, act_type="softsign").asnumpy(), z / (1 + np.abs(z))
    )
    np.testing.assert_allclose(mx.nd.LeakyReLU(x, slope=0.1).asnumpy(), np.where(z > 0, z, 0.1 * z))
    np.testing.assert_allclose(
        mx.nd.LeakyReLU(x, act_type="elu", slope=1.0).asnumpy(), np.where(z > 0, z, np.expm1(z))
    )
    import math

    np.testing.assert_allclose(mx.nd.erf(x).asnumpy(), [math.erf(v) for v in z], rtol=1e-12)
    s = mx.nd.softmax(mx.nd.array([[1.0, 2.0, 3.0]], dtype="float64")).asnumpy()
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(s, [e / e.sum()])
    ls = mx.nd.log_softmax(mx.nd.array([[1000.0, 0.0]], dtype="float64")).asnumpy()
    np.testing.assert_allclose(ls, [[0.0, -1000.0]])
    with pytest.raises(TapegradError, match="use_length.*not supported"):
        mx.nd.softmax(x, use_length=True)
    # dtype= casts the output (MXNet's softmax/log_softmax option); float32 input here
    s64 = mx.nd.softmax(mx.nd.array([[1.0, 2.0, 3.0]]), dtype="float64")
    assert s64.dtype == np.float64
    np.testing.assert_allclose(s64.asnumpy(), [e / e.sum()], rtol=1e-6)
    assert mx.nd.log_softmax(mx.nd.array([[1.0, 2.0]]), dtype="float16").dtype == np.float16
    with pytest.raises(TapegradError, match="unknown act_type"):
        mx.nd.Activation(x, act_type="swishy")


def test_dot_batch_dot_fully_connected():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    A, B = mx.nd.array(a, dtype="float64"), mx.nd.array(b, dtype="float64")
    np.testing.assert_allclose(mx.nd.dot(A, B).asnumpy(), a @ b)
    np.testing.assert_allclose(
        mx.nd.dot(B, A, transpose_a=True, transpose_b=True).asnumpy(), b.T @ a.T
    )
    t = rng.normal(size=(2, 3, 4))
    np.testing.assert_allclose(
        mx.nd.dot(
            mx.nd.array(t, dtype="float64"), mx.nd.array(rng.normal(size=(4, 5)), dtype="float64")
        ).shape,
        (2, 3, 5),
    )
    p, q = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 3, 4))
    np.testing.assert_allclose(
        mx.nd.batch_dot(mx.nd.array(p, dtype="float64"), mx.nd.array(q, dtype="float64")).asnumpy(),
        p @ q,
    )
    w, bias = rng.normal(size=(4, 6)), rng.normal(size=(4,))
    x = rng.normal(size=(2, 2, 3))
    out = mx.nd.FullyConnected(
        mx.nd.array(x, dtype="float64"),
        mx.nd.array(w, dtype="float64"),
        mx.nd.array(bias, dtype="float64"),
        num_hidden=4,
    )
    np.testing.assert_allclose(out.asnumpy(), x.reshape(2, 6) @ w.T + bias)
    with pytest.raises(ShapeError, match="FullyConnected.*6 features.*\\(4, 5\\)"):
        mx.nd.FullyConnected(mx.nd.ones((2, 6)), mx.nd.ones((4, 5)), num_hidden=4, no_bias=True)


def test_random_seed_reproducible():
    mx.random.seed(7)
    a = mx.random.uniform(-1, 1, shape=(3, 2)).asnumpy()
    b = mx.nd.random.normal(0, 1, shape=(4,)).asnumpy()
    mx.random.seed(7)
    np.testing.assert_array_equal(mx.random.uniform(-1, 1, shape=(3, 2)).asnumpy(), a)
    np.testing.assert_array_equal(mx.nd.random.normal(0, 1, shape=(4,)).asnumpy(), b)
    assert a.dtype == np.float32 and (np.abs(a) <= 1).all()
    r = mx.random.randint(0, 5, shape=(100,)).asnumpy()
    assert r.min() >= 0 and r.max() < 5
    s = mx.nd.random.shuffle(mx.nd.arange(10)).asnumpy()
    assert sorted(s.tolist()) == list(range(10))
    draws = []
    for _ in range(2):
        mx.random.seed(3)
        draws.append(
            (
                mx.nd.random.randint(0, 1000, shape=(20,)).asnumpy(),
                mx.nd.random.shuffle(mx.nd.arange(20)).asnumpy(),
            )
        )
    for a1, a2 in zip(*draws):
        np.testing.assert_array_equal(a1, a2)
    assert mx.nd.random.randint(0, 5, shape=(2,)).dtype == np.int32  # MXNet's default


def test_erf_fallback_without_scipy_is_exact():
    import math

    from tapegrad.ops.elementwise import _erf_fallback

    z = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(_erf_fallback(z), [math.erf(v) for v in z], rtol=1e-15)
    assert _erf_fallback(np.float32(0.5)).dtype == np.float32
    assert np.ndim(_erf_fallback(np.float64(0.5))) == 0


def test_integer_index_on_every_axis_gives_shape_1_like_mxnet():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = mx.nd.array(a)
    assert x[1, 2].shape == (1,) and x[1, 2].asscalar() == 5
    assert x[-1, -3].asscalar() == 3
    assert x[1, 1:].shape == (2,)  # a slice keeps its axis
    with pytest.raises(IndexError, match=r"index 5 .* axis 1 .* shape \(2, 3\)"):
        x[1, 5]
    x[0, 1] = 7
    assert x.asnumpy()[0, 1] == 7
    # and the gradient lands on that one element
    x.attach_grad()
    with mx.autograd.record():
        y = x[1, 2] * 3
    y.backward()
    expect = np.zeros((2, 3))
    expect[1, 2] = 3
    np.testing.assert_array_equal(x.grad.asnumpy(), expect)


def test_out_argument_like_mxnet():
    a = np.array([[0.5, 1.5], [2.0, 3.0]], dtype=np.float32)
    x = mx.nd.array(a)
    o = mx.nd.zeros((2, 2))
    assert mx.nd.exp(x, out=o) is o  # a primitive
    np.testing.assert_allclose(o.asnumpy(), np.exp(a))
    assert mx.nd.dot(x, x, out=o) is o  # a composite
    np.testing.assert_allclose(o.asnumpy(), a @ a)
    assert mx.nd.elemwise_add(x, x, out=o) is o
    np.testing.assert_allclose(o.asnumpy(), 2 * a)
    s = mx.nd.zeros((1,))
    assert x.sum(out=s) is s and s.asscalar() == a.sum()  # a method
    with pytest.raises(ShapeError, match=r"'exp': out= has shape \(3,\).*\(2, 2\)"):
        mx.nd.exp(x, out=mx.nd.zeros((3,)))
    # recorded: the gradient flows through the out array
    w = mx.nd.array([1.0, 2.0])
    w.attach_grad()
    buf = mx.nd.zeros((2,))
    with mx.autograd.record():
        mx.nd.square(w, out=buf)
        z = buf * 3
        with pytest.raises(mx.nd.InplaceError, match="Inplace operations"):
            mx.nd.exp(w, out=z)  # z is on the graph
        y = z.sum()
    y.backward()
    np.testing.assert_allclose(w.grad.asnumpy(), [6.0, 12.0])


def test_fully_connected_checks_num_hidden_and_bias():
    x, w = mx.nd.ones((2, 4)), mx.nd.ones((5, 4))
    with pytest.raises(ShapeError, match=r"num_hidden=6 but the weight has shape \(5, 4\)"):
        mx.nd.FullyConnected(x, w, mx.nd.ones((5,)), num_hidden=6)
    with pytest.raises(ShapeError, match=r"bias has shape \(3,\).*needs \(5,\)"):
        mx.nd.FullyConnected(x, w, mx.nd.ones((3,)), num_hidden=5)


def test_array_protocol_copy_and_dtype():
    x = mx.nd.array([1.0, 2.0])
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    c = x.__array__(copy=True)
    c[0] = 9
    assert x.asnumpy()[0] == 1.0


def test_array_protocol_view_is_read_only():
    # a write through np.asarray(x) would bypass the version checks: NumPy refuses it
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    with mx.autograd.record():
        y = (x * x).sum()
    v = np.asarray(x)
    np.testing.assert_array_equal(v, [1.0, 2.0])  # reading works, without a copy
    assert np.shares_memory(v, x._data)
    with pytest.raises(ValueError, match="read-only"):
        v[0] = 100.0
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [2.0, 4.0])
    w = np.array(x)  # an explicit copy stays writable
    w[0] = 5.0
    assert x.asnumpy()[0] == 1.0 and x._data.flags.writeable
