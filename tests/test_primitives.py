"""mx.nd composites (functions built from primitives, with no rules of their own), first and
second order against central finite differences in float64. The primitives themselves are
checked through the op-spec table (``tests/opspec.py``, ``tests/test_opspec.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from opspec import check_order

import tapegrad as mx
from tapegrad.core import TAPE

T = TAPE


def _nd(a):
    return mx.nd.array(a, dtype="float64")


def _rng(name):
    return np.random.default_rng(sum(map(ord, name)))


# ---------------------------------------------------------------- nd composites


COMPOSITES = {
    "nd.dot 2-D": (lambda a, b: mx.nd.dot(a, b), [(3, 4), (4, 2)]),
    "nd.dot transpose_a/b": (
        lambda a, b: mx.nd.dot(a, b, transpose_a=True, transpose_b=True),
        [(4, 3), (2, 4)],
    ),
    "nd.dot N-D": (lambda a, b: mx.nd.dot(a, b), [(2, 3, 4), (4, 2)]),
    "nd.dot vectors": (lambda a, b: mx.nd.dot(a, b), [(4,), (4,)]),
    "nd.batch_dot": (lambda a, b: mx.nd.batch_dot(a, b, transpose_b=True), [(2, 3, 4), (2, 5, 4)]),
    "nd.FullyConnected flatten": (
        lambda x, w, b: mx.nd.FullyConnected(x, w, b, num_hidden=3),
        [(2, 2, 2), (3, 4), (3,)],
    ),
    "nd.FullyConnected no flatten": (
        lambda x, w: mx.nd.FullyConnected(x, w, num_hidden=3, no_bias=True, flatten=False),
        [(2, 5, 4), (3, 4)],
    ),
    "nd.norm": (lambda a: mx.nd.norm(a, axis=1), [(3, 4)]),
    "nd.softsign": (lambda a: mx.nd.softsign(a), [(3, 4)]),
    "nd.pick": (lambda a: mx.nd.pick(a, mx.nd.array([0, 2, 1]), axis=1), [(3, 4)]),
    "nd.take": (lambda a: mx.nd.take(a, mx.nd.array([[0, 2], [1, 1]]), axis=1), [(3, 4)]),
    "nd.split": (lambda a: mx.nd.split(a, 2, axis=1)[1] * mx.nd.split(a, 2, axis=1)[0], [(3, 4)]),
    "nd.slice_axis": (lambda a: mx.nd.slice_axis(a, axis=1, begin=1, end=3), [(3, 4)]),
    "nd.slice": (lambda a: mx.nd.slice(a, begin=(0, 1), end=(2, 4)), [(3, 4)]),
    "nd.expand_dims/squeeze": (lambda a: mx.nd.squeeze(mx.nd.expand_dims(a, 1) ** 2), [(3, 4)]),
    "nd.reshape codes": (lambda a: a.reshape((0, -1)) ** 2, [(2, 3, 2)]),
    "NDArray boolean mask": (
        lambda a: a[mx.nd.array(np.arange(12).reshape(3, 4) % 3 == 0).astype("bool")] ** 3,
        [(3, 4)],
    ),
    "NDArray x[i, j]": (lambda a: a[1, 2] * a, [(3, 4)]),
    "nd.LeakyReLU elu": (lambda a: mx.nd.LeakyReLU(a, act_type="elu", slope=0.7), [(3, 4)]),
    "nd.LeakyReLU selu": (lambda a: mx.nd.LeakyReLU(a, act_type="selu"), [(3, 4)]),
    "nd.LeakyReLU gelu": (lambda a: mx.nd.LeakyReLU(a, act_type="gelu"), [(3, 4)]),
    "nd.Activation softsign": (lambda a: mx.nd.Activation(a, act_type="softsign"), [(3, 4)]),
    "nd.sum exclude": (lambda a: mx.nd.sum(a**2, axis=1, exclude=True), [(2, 3, 4)]),
    "nd.sort": (lambda a: mx.nd.sort(a, axis=1) * mx.nd.arange(4, dtype="float64"), [(3, 4)]),
    "nd.smooth_l1": (lambda a: mx.nd.smooth_l1(a * 3), [(3, 4)]),
    "nd.softmax_cross_entropy": (
        lambda a: mx.nd.softmax_cross_entropy(a, mx.nd.array([1, 0, 3])),
        [(3, 4)],
    ),
    "nd.softmax_ce_loss 3-D": (
        lambda a: mx.nd.softmax_ce_loss(a, mx.nd.array([[1, 0], [2, 1]]), axis=1),
        [(2, 3, 2)],
    ),
}


@pytest.mark.parametrize("label", sorted(COMPOSITES))
def test_nd_composites(label):
    f, shapes = COMPOSITES[label]
    rng = _rng(label)
    arrays = [rng.uniform(-2, 2, size=s) for s in shapes]
    for order in (1, 2):
        check_order(f, arrays, order, rng)


def test_softmax_ce_residual_values():
    # softmax(x) - onehot(label) along the axis, on the fast 2-D path and the general one
    rng = _rng("softmax_ce_residual values")
    x = rng.normal(size=(4, 5))
    lab = np.array([4, 0, 2, 2])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    ref = e / e.sum(axis=1, keepdims=True) - np.eye(5)[lab]
    np.testing.assert_allclose(T.softmax_ce_residual(_nd(x), lab, axis=1).asnumpy(), ref)
    x3 = rng.normal(size=(2, 3, 4))
    lab3 = np.array([[0, 2, 1, 1], [2, 2, 0, 1]])
    e3 = np.exp(x3 - x3.max(axis=1, keepdims=True))
    ref3 = e3 / e3.sum(axis=1, keepdims=True) - np.moveaxis(np.eye(3)[lab3], -1, 1)
    np.testing.assert_allclose(T.softmax_ce_residual(_nd(x3), lab3, axis=1).asnumpy(), ref3)
