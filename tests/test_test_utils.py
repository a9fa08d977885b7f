"""``mx.test_utils`` and ``gluon.utils``: comparisons with MXNet's tolerances,
finite-difference gradient checks (a wrong gradient is caught), MNIST in MXNet's layout
from the bundled copy, splitting batches, global-norm clipping, SHA-1 checks and downloads
that need no network."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, nd
from tapegrad.gluon import utils
from tapegrad.gluon.data.vision import MNIST
from tapegrad.gluon.utils import DownloadError
from tapegrad.test_utils import GradientCheckError

tu = mx.test_utils

# --------------------------------------------------------------------------- comparisons


def test_assert_almost_equal_uses_the_dtype_tolerances():
    tu.assert_almost_equal(nd.array([1.0, 2.0]), np.array([1.0, 2.0009], dtype=np.float32))
    with pytest.raises(AssertionError, match=r"Location of maximum error: \(1,\).*ref="):
        tu.assert_almost_equal(
            nd.array([1.0, 2.0], dtype="float64"), np.array([1.0, 2.0009]), names=("x", "ref")
        )
    tu.assert_almost_equal(np.array([1.0, 2.0]), np.array([1.0, 2.5]), rtol=0.3, atol=0)
    with pytest.raises(AssertionError, match="cannot be compared"):
        tu.assert_almost_equal(np.zeros(3), np.zeros(4))
    tu.assert_almost_equal(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), equal_nan=True)
    tu.assert_almost_equal_ignore_nan(np.array([np.nan, 1.0]), np.array([5.0, 1.0]))
    with pytest.raises(AssertionError):
        tu.assert_allclose(np.array([1.0]), np.array([1.0 + 1e-6]))


def test_almost_equal_same_and_shapes():
    assert tu.almost_equal(np.array([1.0]), np.array([1.0 + 1e-6]))
    assert not tu.almost_equal(np.array([1.0]), np.array([1.001]))
    assert not tu.almost_equal(np.ones((2, 1)), np.ones((2,)), use_broadcast=False)
    assert tu.same(nd.array([1, 2]), np.array([1.0, 2.0]))
    assert not tu.same(np.array([1, 2]), np.array([1, 3]))
    x = nd.ones((2,))
    assert tu.same_array(x, x) and not tu.same_array(x, x.copy())


def test_random_helpers():
    np.random.seed(0)
    shape = tu.rand_shape_nd(4, dim=3)
    assert len(shape) == 4 and all(1 <= d <= 3 for d in shape)
    a = tu.rand_ndarray((2, 3))
    assert a.shape == (2, 3) and a.dtype == np.float32
    assert tu.rand_ndarray((2,), dtype="float64").dtype == np.float64
    assert all(1 <= d <= 5 for d in tu.rand_shape_2d(5, 5) + tu.rand_shape_3d(5, 5, 5))
    assert tu.random_arrays((2, 2)).shape == (2, 2) and len(tu.random_arrays((1,), (2,))) == 2
    assert sorted(tu.random_sample([1, 2, 3], 3)) == [1, 2, 3]
    with pytest.raises(ValueError, match="stype='csr'"):
        tu.rand_ndarray((2, 2), stype="csr")


def test_assert_exception_both_ways():
    tu.assert_exception(int, ValueError, "x")
    with pytest.raises(AssertionError, match="did not raise ValueError"):
        tu.assert_exception(int, ValueError, "3")


def test_retry_reruns_failed_assertions():
    calls = []

    @tu.retry(3)
    def flaky():
        calls.append(1)
        assert len(calls) == 2

    flaky()
    assert len(calls) == 2


# --------------------------------------------------------------------------- gradients


def test_check_numeric_gradient_accepts_right_gradients():
    np.random.seed(1)
    tu.check_numeric_gradient(
        lambda x, w: nd.dot(nd.tanh(x), w), [np.random.randn(3, 2), np.random.randn(2, 4)],
        dtype=np.float64,
    )  # fmt: skip
    tu.check_numeric_gradient(lambda x: nd.sigmoid(x) * x, {"x": np.random.randn(4)})
    net = mx.gluon.nn.Dense(3, in_units=2)
    net.initialize()
    tu.check_numeric_gradient(net, [np.random.randn(2, 2)], rtol=1e-2, atol=1e-2)


def test_check_numeric_gradient_catches_a_wrong_gradient():
    class WrongSquare(autograd.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, dy):
            (x,) = self.saved_tensors
            return dy * x  # should be 2 x dy

    with pytest.raises(AssertionError, match="NUMERICAL_0.*BACKWARD_0"):
        tu.check_numeric_gradient(lambda x: WrongSquare()(x), [np.array([0.5, -1.5])],
                                  dtype=np.float64)  # fmt: skip
    # only the named inputs are checked
    tu.check_numeric_gradient(
        lambda x, y: WrongSquare()(x) + y, [np.array([0.5]), np.array([1.0])],
        grad_nodes=["1"], dtype=np.float64,
    )  # fmt: skip


def test_check_numeric_gradient_bad_arguments():
    with pytest.raises(GradientCheckError, match="no Symbols.*Fix"):
        tu.check_numeric_gradient("sym", [np.ones(2)])
    with pytest.raises(GradientCheckError, match="returned a float"):
        tu.check_numeric_gradient(lambda x: 1.0, [np.ones(2)])
    with pytest.raises(GradientCheckError, match="grad_nodes names 'y'"):
        tu.check_numeric_gradient(lambda x: x, {"x": np.ones(2)}, grad_nodes=["y"])


# --------------------------------------------------------------------------- data


def test_get_mnist_has_mxnet_layout_from_the_bundled_copy():
    m = tu.get_mnist()
    assert list(m) == ["train_data", "train_label", "test_data", "test_label"]
    assert m["train_data"].shape == (60000, 1, 28, 28) and m["train_data"].dtype == np.float32
    assert m["test_label"].dtype == np.int8 and m["test_label"].shape == (10000,)
    test = MNIST(train=False)
    np.testing.assert_array_equal(
        m["test_data"][:5, 0], np.asarray(test._data)[:5, :, :, 0].astype(np.float32) / 255
    )
    np.testing.assert_array_equal(m["test_label"], test._label)


def test_get_mnist_ubyte_then_mnist_iter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tu.get_mnist_ubyte()
    assert sorted(os.listdir("data")) == sorted(
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte"]
    )  # fmt: skip
    assert os.path.getsize("data/t10k-labels-idx1-ubyte") == 8 + 10000
    train, val = tu.get_mnist_iterator(100, (1, 28, 28))
    assert train.provide_data[0].shape == (100, 1, 28, 28)
    labels = np.concatenate([b.label[0].asnumpy() for b in val])  # shuffled, as in MXNet
    np.testing.assert_array_equal(np.sort(labels), np.sort(MNIST(train=False)._label))


# --------------------------------------------------------------------------- gluon.utils


def test_split_data_even_uneven_and_axis():
    x = nd.arange(20).reshape((5, 4))
    with pytest.raises(ValueError, match="cannot be evenly split into 2 slices.*even_split"):
        utils.split_data(x, 2)
    parts = utils.split_data(x, 2, even_split=False)
    assert [p.asnumpy()[:, 0].tolist() for p in parts] == [[0, 4, 8], [12, 16]]
    cols = utils.split_data(x, 2, batch_axis=1)
    assert [p.shape for p in cols] == [(5, 2), (5, 2)]
    np.testing.assert_array_equal(cols[1].asnumpy(), x.asnumpy()[:, 2:])
    with pytest.raises(ValueError, match="no axis batch_axis=2"):
        utils.split_data(x, 2, batch_axis=2)


def test_split_and_load():
    x = nd.ones((4, 3))
    assert utils.split_and_load(x, [mx.cpu()])[0] is x
    parts = utils.split_and_load(np.arange(8.0).reshape(4, 2), [mx.cpu(0), mx.cpu(1)])
    assert [p.asnumpy().tolist() for p in parts] == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    with pytest.raises(ValueError, match="ctx_list must be a non-empty list"):
        utils.split_and_load(x, [])


def test_clip_global_norm_scales_in_place():
    a, b = nd.array([3.0, 0.0]), nd.array([[4.0]])
    norm = utils.clip_global_norm([a, b], 2.5)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(a.asnumpy(), [1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.asnumpy(), [[2.0]], rtol=1e-6)
    small = [nd.array([0.3, 0.4])]
    out = utils.clip_global_norm(small, 1.0, check_isfinite=False)
    assert isinstance(out, nd.NDArray) and out.shape == (1,)
    np.testing.assert_allclose(small[0].asnumpy(), [0.3, 0.4], rtol=1e-6)  # below: unchanged
    with pytest.warns(UserWarning, match="nan or inf"):
        utils.clip_global_norm([nd.array([np.inf])], 1.0)
    with pytest.raises(TypeError, match="arrays\\[0\\] is a list"):
        utils.clip_global_norm([[1.0]], 1.0)


def test_clip_global_norm_on_gradients_then_step():
    w = mx.gluon.Parameter("w", shape=(2,))
    w.initialize(init=mx.init.Zero())
    tr = mx.gluon.Trainer([w], "sgd", {"learning_rate": 1.0})
    with autograd.record():
        loss = (w.data() * nd.array([30.0, 40.0])).sum()
    loss.backward()
    assert utils.clip_global_norm([w.grad()], 1.0) == pytest.approx(50.0)
    tr.step(1)
    np.testing.assert_allclose(w.data().asnumpy(), [-0.6, -0.8], rtol=1e-5)


def test_check_sha1_and_shape_is_known(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    assert utils.check_sha1(str(f), hashlib.sha1(b"abc").hexdigest())
    assert not utils.check_sha1(str(f), "0" * 40)
    assert utils.shape_is_known((2, 3)) and not utils.shape_is_known((2, 0))
    assert not utils.shape_is_known(None) and not utils.shape_is_known(())
    with pytest.raises(ValueError, match="cannot be less than 0"):
        utils.shape_is_known((2, -1))


def test_download_without_network(tmp_path):
    src = tmp_path / "src" / "weights.bin"
    src.parent.mkdir()
    src.write_bytes(b"payload")
    sha = hashlib.sha1(b"payload").hexdigest()
    dest = tmp_path / "out"
    got = utils.download(src.as_uri(), path=str(dest) + "/", sha1_hash=sha)
    assert got == str(dest / "weights.bin") and (dest / "weights.bin").read_bytes() == b"payload"
    # an existing file is used as it is: no network needed
    assert utils.download("http://127.0.0.1:9/weights.bin", path=got, sha1_hash=sha) == got
    with pytest.raises(DownloadError, match="does not have SHA-1.*Fix") as e:
        utils.download(src.as_uri(), path=str(tmp_path / "x.bin"), sha1_hash="0" * 40)
    assert isinstance(e.value, OSError) and not (tmp_path / "x.bin").exists()
    with pytest.raises(DownloadError, match="could not get .*missing.bin.*place the file"):
        utils.download((tmp_path / "missing.bin").as_uri(), path=str(tmp_path / "y.bin"))
    with pytest.raises(DownloadError, match="Connection refused|could not get"):
        utils.download("http://127.0.0.1:9/w.bin", path=str(tmp_path / "z.bin"), retries=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temporaries
    assert tu.download(src.as_uri(), dirname=str(tmp_path / "tu")) == str(
        tmp_path / "tu" / "weights.bin"
    )
