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
