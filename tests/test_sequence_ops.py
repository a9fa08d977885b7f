"""nd.SequenceMask, nd.SequenceLast, nd.SequenceReverse: MXNet's documented examples, both
sequence axes, gradients, and clear errors for bad lengths."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, nd
from tapegrad.base import ShapeError
from tapegrad.ndarray.rnn_ops import ArgumentValueError

# the example of MXNet's documentation: 3 steps, 2 sequences, 3 features
X = np.arange(1, 19, dtype=np.float32).reshape(3, 2, 3)


def test_sequence_mask_documented_examples():
    x = nd.array(X)
    np.testing.assert_array_equal(nd.SequenceMask(x).asnumpy(), X)
    out = nd.SequenceMask(x, sequence_length=nd.array([1, 1]), use_sequence_length=True)
    want = X.copy()
    want[1:] = 0
    np.testing.assert_array_equal(out.asnumpy(), want)
    out = nd.SequenceMask(x, nd.array([2, 3]), use_sequence_length=True, value=1)
    want = X.copy()
    want[2, 0] = 1
    np.testing.assert_array_equal(out.asnumpy(), want)


def test_sequence_mask_batch_major_and_gradient():
    x = nd.array(X.transpose(1, 0, 2))  # (batch, time, features), axis=1
    x.attach_grad()
    with autograd.record():
        y = nd.SequenceMask(x, nd.array([2, 3]), use_sequence_length=True, value=-1.0, axis=1)
        s = (y * y).sum()
    s.backward()
    keep = np.array([[1, 1, 0], [1, 1, 1]], dtype=np.float32)[:, :, None]
    want = np.where(keep, X.transpose(1, 0, 2), -1.0)
    np.testing.assert_array_equal(y.asnumpy(), want)
    np.testing.assert_array_equal(x.grad.asnumpy(), 2 * X.transpose(1, 0, 2) * keep)


def test_sequence_last_documented_examples_and_axis_1():
    x = np.arange(1, 28, dtype=np.float32).reshape(3, 3, 3)
    np.testing.assert_array_equal(nd.SequenceLast(nd.array(x)).asnumpy(), x[-1])
    out = nd.SequenceLast(nd.array(x), nd.array([1, 2, 3]), use_sequence_length=True)
    np.testing.assert_array_equal(out.asnumpy(), [[1, 2, 3], [13, 14, 15], [25, 26, 27]])
    xt = nd.array(x.transpose(1, 0, 2))
    out = nd.SequenceLast(xt, nd.array([1, 2, 3]), use_sequence_length=True, axis=1)
    np.testing.assert_array_equal(out.asnumpy(), [[1, 2, 3], [13, 14, 15], [25, 26, 27]])
    # the gradient goes to the picked step only
    v = nd.array(x)
    v.attach_grad()
    with autograd.record():
        y = nd.SequenceLast(v, nd.array([3, 1, 2]), use_sequence_length=True).sum()
    y.backward()
    g = v.grad.asnumpy()
    assert g.sum() == 9 and g[2, 0].sum() == 3 and g[0, 1].sum() == 3 and g[1, 2].sum() == 3


def test_sequence_reverse_documented_examples_and_gradient():
    x = nd.array(X)
    np.testing.assert_array_equal(nd.SequenceReverse(x).asnumpy(), X[::-1])
    out = nd.SequenceReverse(x, nd.array([2, 2]), use_sequence_length=True)
    np.testing.assert_array_equal(out.asnumpy(), X[[1, 0, 2]])
    out = nd.SequenceReverse(x, nd.array([2, 3]), use_sequence_length=True).asnumpy()
    np.testing.assert_array_equal(out[:, 0], X[[1, 0, 2], 0])
    np.testing.assert_array_equal(out[:, 1], X[[2, 1, 0], 1])
    w = nd.array(np.random.default_rng(0).standard_normal(X.shape), dtype="float64")

    def f(v):
        return nd.SequenceReverse(v, nd.array([2, 3]), use_sequence_length=True) * w

    assert mx.gradcheck(f, [nd.array(X, dtype="float64")], order=2)


def test_out_argument():
    x = nd.array(X)
    out = nd.zeros((3, 2, 3))
    assert nd.SequenceReverse(x, out=out) is out
    np.testing.assert_array_equal(out.asnumpy(), X[::-1])
    last = nd.zeros((2, 3))
    assert nd.SequenceLast(x, out=last) is last


def test_bad_lengths_and_axes_say_what_and_how_to_fix():
    x = nd.array(X)
    with pytest.raises(
        ArgumentValueError, match=r"Last: sequence_length\[1\] = 0.0 is outside \[1, 3"
    ):
        nd.SequenceLast(x, nd.array([1, 0]), use_sequence_length=True)
    with pytest.raises(ArgumentValueError, match=r"SequenceMask: sequence_length\[0\] = -1"):
        nd.SequenceMask(x, nd.array([-1, 2]), use_sequence_length=True)
    with pytest.raises(ShapeError, match=r"one number per batch element, shape \(2,\).*\(3,\)"):
        nd.SequenceReverse(x, nd.array([1, 2, 3]), use_sequence_length=True)
    with pytest.raises(ArgumentValueError, match="use_sequence_length=True but no sequence_length"):
        nd.SequenceMask(x, use_sequence_length=True)
    with pytest.raises(ArgumentValueError, match="given but use_sequence_length is False"):
        nd.SequenceLast(x, nd.array([1, 2]))
    with pytest.raises(ArgumentValueError, match="SequenceReverse: axis=1 is not supported.*Fix"):
        nd.SequenceReverse(x, axis=1)
    with pytest.raises(ShapeError, match="needs at least 2 axes"):
        nd.SequenceMask(nd.ones((3,)))
