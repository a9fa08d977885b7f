"""mx.test_utils as MXNet's own tests use it: random inputs, tolerant comparisons, finite
differences against autograd for a custom layer, and expected exceptions."""

import numpy as np

import tapegrad as mx
from tapegrad import nd
from tapegrad.test_utils import (
    assert_almost_equal,
    assert_exception,
    check_numeric_gradient,
    default_context,
    rand_ndarray,
    rand_shape_nd,
)

np.random.seed(0)
shape = rand_shape_nd(2, dim=5)
x = rand_ndarray(shape)
assert x.shape == tuple(shape) and x.context == default_context()


def swish(a, beta):
    return a * nd.sigmoid(beta * a)


check_numeric_gradient(swish, [np.random.randn(*shape), np.random.randn(*shape)], dtype=np.float64)
check_numeric_gradient(lambda a: nd.log_softmax(a, axis=-1), {"a": np.random.randn(3, 4)})

layer = mx.gluon.nn.Dense(3, in_units=4)
layer.initialize()
out = layer(x if shape[1] == 4 else nd.ones((2, 4)))
assert_almost_equal(
    out, nd.dot(nd.ones((2, 4)) if shape[1] != 4 else x, layer.weight.data().T) + layer.bias.data()
)
assert_exception(mx.nd.ones((2, 3)).reshape, mx.base.MXNetError, (7,))
print("all checks passed for shape", shape)
