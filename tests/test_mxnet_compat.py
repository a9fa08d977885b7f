"""MXNet 1.9 behaviours that real scripts rely on (issue 12): the types of errors and dtypes,
contexts, operands. Expected values are MXNet 1.9.1's documented (and observed) behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import gluon, nd

# ------------------------------------------------------------------------------ errors


def test_mxnet_error_is_a_runtime_error() -> None:
    # MXNet: class MXNetError(RuntimeError); gluon's DeferredInitializationError(MXNetError)
    assert issubclass(mx.base.MXNetError, RuntimeError)
    assert issubclass(gluon.parameter.DeferredInitializationError, mx.base.MXNetError)
    assert issubclass(gluon.DeferredInitializationError, RuntimeError)
    # each typed error keeps its builtin kind as well
    assert issubclass(mx.base.ShapeError, ValueError) and issubclass(
        mx.base.ShapeError, RuntimeError
    )
    assert issubclass(mx.base.ArgumentError, TypeError)


def test_scripts_catch_deferred_initialization_as_runtime_error() -> None:
    net = gluon.nn.Dense(3)
    net.initialize()
    with pytest.raises(RuntimeError, match="deferred|initializ"):
        net.weight.data()


def test_axis_error_still_reads_as_numpy_axis_error() -> None:
    with pytest.raises(np.exceptions.AxisError) as info:
        nd.expand_dims(nd.ones((2, 3)), axis=5)
    assert "expand_dims" in str(info.value) and "Fix" in str(info.value)
    assert isinstance(info.value, RuntimeError)


# ------------------------------------------------------------------------------ dtype


def test_ndarray_dtype_is_the_numpy_scalar_type() -> None:
    x = nd.array([1, 2])
    assert x.dtype is np.float32
    assert str(x.dtype) == "<class 'numpy.float32'>"
    assert nd.array([1], dtype="int32").dtype is np.int32
    assert nd.zeros(2).astype("float16").dtype is np.float16
    assert nd.array([1], dtype=np.float64).dtype is np.float64


def test_ndarray_dtype_comparisons_and_conversions() -> None:
    x = nd.array([1, 2], dtype="float64")
    assert x.dtype == np.float64 and x.dtype == np.dtype("float64")
    assert x.dtype != np.float32
    # np.float64 == 'float64' is False in Python, hence in MXNet too
    assert not (x.dtype == "float64")
    assert np.dtype(x.dtype).itemsize == 8 and np.dtype(x.dtype).kind == "f"
    assert x.astype(x.dtype).dtype is np.float64
    assert nd.zeros((2,), dtype=x.dtype).dtype is np.float64
    assert np.zeros(2, dtype=x.dtype).dtype == np.float64
    assert x.asnumpy().dtype == np.float64


def test_parameter_repr_shows_the_dtype_as_given() -> None:
    # MXNet's Parameter keeps dtype as given: numpy.float32 by default, 'float32' in layers
    p = gluon.Parameter("w", shape=(2, 3))
    assert repr(p) == "Parameter w (shape=(2, 3), dtype=<class 'numpy.float32'>)"
    assert p.dtype is np.float32
    q = gluon.Parameter("v", shape=(2,), dtype="float64")
    assert repr(q) == "Parameter v (shape=(2,), dtype=float64)" and q.dtype == "float64"
    d = gluon.nn.Dense(3, in_units=2)
    assert repr(d.weight).endswith("(shape=(3, 2), dtype=float32)")
    d.initialize()
    assert d.weight.data().dtype is np.float32
    p.initialize()
    p.cast("float64")
    assert repr(p).endswith("dtype=float64)") and p.data().dtype is np.float64


# ------------------------------------------------------------------------------ contexts


def test_an_array_keeps_its_own_context() -> None:
    x = nd.ones((2,))
    with mx.gpu():  # naming the default context changes nothing for existing arrays
        assert x.context == mx.cpu(0)
    with mx.cpu(1):
        y = nd.zeros((2,))
    assert y.context == mx.cpu(1) and mx.current_context() == mx.cpu(0)
    z = nd.array([1, 2], ctx=mx.cpu(2))
    assert z.context == mx.cpu(2) and repr(z).endswith("<NDArray 2 @cpu(2)>")
    assert x.ctx == mx.cpu(0)


def test_as_in_context_returns_self_or_a_copy_on_the_context() -> None:
    x = nd.array([1.0, 2.0])
    assert x.as_in_context(mx.cpu()) is x  # MXNet: the same array when already there
    y = x.as_in_context(mx.cpu(1))
    assert y is not x and y.context == mx.cpu(1)
    np.testing.assert_array_equal(y.asnumpy(), [1.0, 2.0])
    x.attach_grad()
    with mx.autograd.record():
        z = (x.as_in_context(mx.cpu(1)) * 3).sum()
    z.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [3.0, 3.0])  # the copy is recorded


def test_gpu_placement_fails_the_same_way_everywhere() -> None:
    # MXNet without a GPU fails on each of these; tapegrad says why and what to do
    x = nd.ones((2,))
    pattern = r"cannot place an array on gpu\(0\).*Fix: use mx.cpu\(\)"
    for call, who in [
        (lambda: x.as_in_context(mx.gpu()), "as_in_context"),
        (lambda: x.copyto(mx.gpu()), "copyto"),
        (lambda: nd.zeros((2,), ctx=mx.gpu()), "zeros"),
        (lambda: nd.array([1], ctx=mx.gpu(0)), "array"),
    ]:
        with pytest.raises(mx.base.MXNetError, match=f"{who}: {pattern}"):
            call()
    with pytest.raises(mx.base.MXNetError, match=pattern), mx.gpu():
        nd.zeros((2,))
    # choosing the context the usual way runs on the CPU
    ctx = mx.gpu() if mx.context.num_gpus() > 0 else mx.cpu()
    assert nd.zeros((2,), ctx=ctx).context == mx.cpu()


# ------------------------------------------------------------------------------ operands


@pytest.mark.parametrize(
    "call, expr",
    [
        (lambda x: x * "abc", "NDArray \\* str"),
        (lambda x: "abc" * x, "str \\* NDArray"),
        (lambda x: x + object(), "NDArray \\+ object"),
        (lambda x: x - None, "NDArray - NoneType"),
        (lambda x: x / {}, "NDArray / dict"),
        (lambda x: x == "a", "NDArray == str"),
        (lambda x: x < "a", "NDArray < str"),
        (lambda x: x ** ["a"], "NDArray \\*\\* list"),
    ],
)
def test_unsupported_operands_raise_a_type_error(call, expr) -> None:
    from fractions import Fraction

    # MXNet: "TypeError: type <class 'str'> not supported"; never an object array or a str
    for x in (nd.array([1.0, 2.0]), nd.array(2, dtype="int32")):
        with pytest.raises(TypeError, match=f"{expr}: unsupported operand.*Fix"):
            call(x)
    with pytest.raises(mx.base.ArgumentError, match="NDArray \\* Fraction"):
        nd.array([1.0]) * Fraction(1, 2)


def test_in_place_operators_refuse_them_too_and_change_nothing() -> None:
    x = nd.array([1.0, 2.0])
    with pytest.raises(TypeError, match="NDArray -= str"):
        x -= "a"
    np.testing.assert_array_equal(x.asnumpy(), [1.0, 2.0])


def test_numbers_arrays_and_lists_stay_operands() -> None:
    i = nd.array(2, dtype="int32")
    assert (i * [1, 2]).asnumpy().tolist() == [2, 4]  # an array, not a repeated list
    x = nd.array([1.0, 2.0])
    assert (x + np.array([1.0, 1.0])).asnumpy().tolist() == [2.0, 3.0]
    assert (2**x).asnumpy().tolist() == [2.0, 4.0]
    assert (x * np.float64(3)).asnumpy().tolist() == [3.0, 6.0]
    assert (x == None) is False and (x != None) is True  # noqa: E711
    assert (x > 1).asnumpy().tolist() == [0.0, 1.0]


def test_objects_that_opt_out_of_numpy_get_their_reflected_operator() -> None:
    class Scale:
        __array_ufunc__ = None

        def __rmul__(self, other):
            return ("scaled", other)

    x = nd.ones((2,))
    r = x * Scale()
    assert r[0] == "scaled" and r[1] is x


# ------------------------------------------------------------------------------ labels


def test_one_label_error_class_and_one_check() -> None:
    from tapegrad.gluon import loss as gloss

    assert gloss.LabelError is mx.base.LabelError
    with pytest.raises(mx.base.LabelError, match="softmax_ce_loss: label 1.5 is not a class"):
        nd.softmax_ce_loss(nd.zeros((2, 3)), nd.array([0, 1.5]))
    from tapegrad.ndarray import ndarray_functions as fns

    calls, op_calls = [], []
    real, real_op = gloss._check_sparse_label, fns._check_labels

    def counted(*a, values=True):
        if values:
            calls.append(a)
        return real(*a, values=values)

    gloss._check_sparse_label = counted
    fns._check_labels = lambda *a: op_calls.append(a) or real_op(*a)
    try:
        loss = gloss.SoftmaxCELoss()(nd.zeros((2, 3)), nd.array([0, 2]))
        # the loss reads the label values once, and the fused operator does not again
        assert loss.shape == (2,) and len(calls) == 1 and not op_calls
        with pytest.raises(mx.base.LabelError, match="SoftmaxCrossEntropyLoss: label 3"):
            gloss.SoftmaxCELoss()(nd.zeros((2, 3)), nd.array([0, 3]))
        assert len(calls) == 2 and not op_calls  # the bad label in the loss's own words
    finally:
        gloss._check_sparse_label, fns._check_labels = real, real_op


def test_the_reshape_method_takes_a_smaller_explicit_shape_as_mxnet_1x():
    # MXNet 1.9.1's NDArray tutorial: nd.arange(6).reshape((3, 1)) is [[0], [1], [2]], a view
    # of the first elements (the C API checks only that the new shape is not larger)
    x = nd.arange(6)
    y = x.reshape((3, 1))
    assert y.asnumpy().tolist() == [[0.0], [1.0], [2.0]]
    y[:] = 7
    assert x.asnumpy().tolist() == [7.0, 7.0, 7.0, 3.0, 4.0, 5.0]
    w = nd.arange(6)
    w.attach_grad()
    with mx.autograd.record():
        (w.reshape(2, 1) * 3).sum().backward()
    assert w.grad.asnumpy().tolist() == [3.0, 3.0, 0.0, 0.0, 0.0, 0.0]
    # a larger shape, and nd.reshape (the operator), still refuse
    with pytest.raises(mx.base.ShapeError, match="cannot reshape"):
        nd.arange(6).reshape((4, 2))
    with pytest.raises(mx.base.ShapeError, match="cannot reshape"):
        nd.reshape(nd.arange(6), (3, 1))
