"""``mx.io``: NDArrayIter's batches for each ``last_batch_handle`` (worked out by hand from
MXNet 1.9's documented behaviour), its shuffling, names and descriptions; MNISTIter over the
bundled MNIST; CSVIter's ``round_batch`` (MXNet's documented example); ResizeIter and
PrefetchingIter; bad arguments."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import nd
from tapegrad.gluon.data.vision import MNIST
from tapegrad.gluon.data.vision.datasets import BUNDLED_MNIST, DatasetFileError
from tapegrad.io import DataIterError

N = 10


def _samples(it, key="data"):
    """Sample ids (first feature) and pad of each batch of one epoch."""
    out = []
    for b in it:
        arrays = b.data if key == "data" else b.label
        out.append(
            (arrays[0].asnumpy().reshape(len(arrays[0]), -1)[:, 0].astype(int).tolist(), b.pad)
        )
    return out


def _iter(bs, handle, shuffle=False):
    data = np.arange(N * 2).reshape(N, 2) / 2  # sample i holds [i, i + 0.5]
    return mx.io.NDArrayIter(data, np.arange(N), bs, shuffle, last_batch_handle=handle)


def test_pad_fills_the_last_batch_from_the_beginning():
    it = _iter(3, "pad")
    assert _samples(it) == [([0, 1, 2], 0), ([3, 4, 5], 0), ([6, 7, 8], 0), ([9, 0, 1], 2)]
    it.reset()
    assert _samples(it, "label") == [([0, 1, 2], 0), ([3, 4, 5], 0), ([6, 7, 8], 0), ([9, 0, 1], 2)]
    # a pad longer than the data repeats it
    small = mx.io.NDArrayIter(np.arange(2.0), batch_size=5)
    assert _samples(small) == [([0, 1, 0, 1, 0], 3)]


def test_discard_drops_the_incomplete_batch():
    it = _iter(3, "discard")
    for _ in range(2):
        assert _samples(it) == [([0, 1, 2], 0), ([3, 4, 5], 0), ([6, 7, 8], 0)]
        it.reset()


def test_roll_over_starts_the_next_epoch_with_the_leftover():
    it = _iter(3, "roll_over")
    epochs = []
    for _ in range(4):
        epochs.append(_samples(it))
        it.reset()
    assert epochs[0] == [([0, 1, 2], 0), ([3, 4, 5], 0), ([6, 7, 8], 0)]
    # MXNet reports the number of rolled-over samples as the first batch's pad
    assert epochs[1] == [([9, 0, 1], 1), ([2, 3, 4], 0), ([5, 6, 7], 0)]
    assert epochs[2] == [([8, 9, 0], 2), ([1, 2, 3], 0), ([4, 5, 6], 0), ([7, 8, 9], 0)]
    assert epochs[3] == epochs[0]
    it.hard_reset()
    it.next()
    it.hard_reset()  # drops any leftover: the epoch starts at sample 0
    assert _samples(it)[0] == ([0, 1, 2], 0)


def test_manual_iteration_protocol():
    it = _iter(4, "pad")
    seen = []
    while it.iter_next():
        seen.append((it.getdata()[0].shape, it.getlabel()[0].asnumpy().tolist(), it.getpad()))
    assert seen == [((4, 2), [0, 1, 2, 3], 0), ((4, 2), [4, 5, 6, 7], 0), ((4, 2), [8, 9, 0, 1], 2)]
    with pytest.raises(StopIteration):
        it.next()
    it.reset()
    assert len(list(iter(it))) == 3


def test_shuffle_follows_numpy_global_generator_as_mxnet():
    """MXNet shuffles an index array in place with np.random.shuffle at every reset (and at
    creation) and applies it to the already shuffled data."""
    np.random.seed(4)
    it = _iter(5, "pad", shuffle=True)
    epoch1 = [s for ids, _ in _samples(it) for s in ids]
    it.reset()
    epoch2 = [s for ids, _ in _samples(it) for s in ids]
    np.random.seed(4)
    idx = np.arange(N)
    np.random.shuffle(idx)
    order1 = idx.copy()
    np.random.shuffle(idx)
    order2 = order1[idx]
    assert epoch1 == order1.tolist() and epoch2 == order2.tolist()
    assert sorted(epoch2) == list(range(N))
    # labels stay with their samples
    it.reset()
    for b in it:
        np.testing.assert_array_equal(b.data[0].asnumpy()[:, 0], b.label[0].asnumpy())


def test_names_dtypes_and_descriptions():
    it = mx.io.NDArrayIter(
        {"b": np.zeros((6, 3)), "a": nd.ones((6, 2, 2), dtype="int32")},
        {"lab": np.zeros((6,), dtype=np.int64)},
        batch_size=4,
    )
    assert [d.name for d in it.provide_data] == ["a", "b"]  # sorted by name
    assert it.provide_data[0] == ("a", (4, 2, 2)) and it.provide_data[0].dtype == np.int32
    assert it.provide_data[1].dtype == np.float32  # NumPy input becomes float32
    assert repr(it.provide_label[0]) == "DataDesc[lab,(4,),<class 'numpy.float32'>,NCHW]"
    b = it.next()
    assert b.data[0].dtype == np.int32 and b.data[1].dtype == np.float32
    lst = mx.io.NDArrayIter([np.zeros((4, 1)), np.zeros((4, 2))], batch_size=2)
    assert [d.name for d in lst.provide_data] == ["_0_data", "_1_data"]
    one = mx.io.NDArrayIter(np.zeros((4, 1)), np.zeros(4), batch_size=2, data_name="x")
    assert one.provide_data[0].name == "x" and one.provide_label[0].name == "softmax_label"
    assert mx.io.NDArrayIter(np.zeros((4, 1)), batch_size=2).provide_label == []
    assert one.next().label[0].shape == (2,)


def test_batches_are_copies():
    src = nd.arange(8).reshape((4, 2))
    it = mx.io.NDArrayIter(src, batch_size=2)
    b = it.next()
    b.data[0][:] = -1
    assert src.asnumpy().min() == 0.0


def test_bad_arguments_are_named():
    with pytest.raises(DataIterError, match="batch_size must be a positive int, got 0.*Fix"):
        mx.io.NDArrayIter(np.zeros((4, 1)), batch_size=0)
    with pytest.raises(DataIterError, match="last_batch_handle='drop'.*Fix"):
        mx.io.NDArrayIter(np.zeros((4, 1)), batch_size=2, last_batch_handle="drop")
    with pytest.raises(DataIterError, match="'softmax_label' has 3 samples but 'data' has 4"):
        mx.io.NDArrayIter(np.zeros((4, 1)), np.zeros(3), batch_size=2)
    with pytest.raises(DataIterError, match="data is None"):
        mx.io.NDArrayIter(None)
    with pytest.raises(DataIterError, match="must be an NDArray.*str"):
        mx.io.NDArrayIter("abc", batch_size=1)
    with pytest.raises(DataIterError, match="DataBatch: data must be a list"):
        mx.io.DataBatch(nd.ones((2,)))


# --------------------------------------------------------------------------- MNISTIter


def test_mnist_iter_shapes_scale_and_order():
    it = mx.io.MNISTIter(
        image="data/t10k-images-idx3-ubyte", label="data/t10k-labels-idx1-ubyte",
        batch_size=128, shuffle=False,
    )  # fmt: skip
    test = MNIST(train=False)
    assert it.provide_data[0] == ("data", (128, 1, 28, 28))
    assert it.provide_label[0] == ("softmax_label", (128,))
    batches = list(it)
    assert len(batches) == 10000 // 128  # only complete batches
    b = batches[1]
    expect = np.asarray(test._data)[128:256, :, :, 0].astype(np.float32) / 256
    np.testing.assert_array_equal(b.data[0].asnumpy()[:, 0], expect)
    np.testing.assert_array_equal(b.label[0].asnumpy(), test._label[128:256])
    assert b.data[0].dtype == np.float32 and b.pad == 0
    it.reset()
    np.testing.assert_array_equal(it.next().label[0].asnumpy(), test._label[:128])


def test_mnist_iter_flat_shuffle_and_parts(tmp_path):
    src = f"{BUNDLED_MNIST}/t10k-labels-idx1-ubyte.gz"
    with gzip.open(src) as f, open(tmp_path / "labels", "wb") as out:
        shutil.copyfileobj(f, out)  # a real (uncompressed) file is read from its path
    kw = dict(image="t10k-images-idx3-ubyte", label=str(tmp_path / "labels"), batch_size=100)
    a = mx.io.MNISTIter(flat=True, seed=1, **kw)
    b = mx.io.MNISTIter(flat=True, seed=1, **kw)
    c = mx.io.MNISTIter(flat=True, seed=2, **kw)
    la = np.concatenate([x.label[0].asnumpy() for x in a])
    lb = np.concatenate([x.label[0].asnumpy() for x in b])
    lc = np.concatenate([x.label[0].asnumpy() for x in c])
    assert a.provide_data[0].shape == (100, 784)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(la, lc)
    np.testing.assert_array_equal(np.sort(la), np.sort(MNIST(train=False)._label))
    part = mx.io.MNISTIter(num_parts=4, part_index=3, shuffle=False, **kw)
    first = part.next().label[0].asnumpy()
    np.testing.assert_array_equal(first, MNIST(train=False)._label[7500:7600])
    assert len(list(part)) == 24  # 2500 samples: 25 batches, one already read


def test_mnist_iter_errors():
    with pytest.raises(TypeError, match="only accept keyword arguments"):
        mx.io.MNISTIter("train-images-idx3-ubyte")
    with pytest.raises(DatasetFileError, match="'nope.idx' not found.*Fix"):
        mx.io.MNISTIter(image="nope.idx")
    with pytest.raises(DataIterError, match="part_index=4.*Fix"):
        mx.io.MNISTIter(num_parts=4, part_index=4)
    with pytest.raises(DataIterError, match="no complete batch"):
        mx.io.MNISTIter(image="t10k-images-idx3-ubyte", label="t10k-labels-idx1-ubyte",
                        batch_size=20000)  # fmt: skip


# --------------------------------------------------------------------------- CSVIter


@pytest.fixture()
def csv(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2,3\n2,3,4\n3,4,5\n4,5,6\n")
    return str(path)


def _rows(it):
    return [(b.data[0].asnumpy().astype(int).tolist(), b.pad) for b in it]


def test_csv_iter_round_batch_as_mxnet_documents(csv):
    it = mx.io.CSVIter(data_csv=csv, data_shape=(3,), batch_size=2)
    assert _rows(it) == [([[1, 2, 3], [2, 3, 4]], 0), ([[3, 4, 5], [4, 5, 6]], 0)]
    it = mx.io.CSVIter(data_csv=csv, data_shape=(3,), batch_size=3)
    assert _rows(it) == [
        ([[1, 2, 3], [2, 3, 4], [3, 4, 5]], 0),
        ([[4, 5, 6], [1, 2, 3], [2, 3, 4]], 2),
    ]
    it.reset()  # the second pass continues after the rows used to complete the batch
    assert _rows(it) == [([[3, 4, 5], [4, 5, 6], [1, 2, 3]], 1)]
    it = mx.io.CSVIter(data_csv=csv, data_shape=(3,), batch_size=3, round_batch=False)
    for _ in range(2):  # padded places keep the previous batch's rows, as in MXNet
        assert _rows(it) == [
            ([[1, 2, 3], [2, 3, 4], [3, 4, 5]], 0),
            ([[4, 5, 6], [2, 3, 4], [3, 4, 5]], 2),
        ]
        it.reset()


def test_csv_iter_labels_shapes_and_dtypes(csv, tmp_path):
    lab = tmp_path / "label.csv"
    lab.write_text("0\n1\n2\n3\n")
    it = mx.io.CSVIter(data_csv=csv, data_shape=(3, 1), label_csv=str(lab), batch_size=2,
                       dtype="int32")  # fmt: skip
    b = it.next()
    assert b.data[0].shape == (2, 3, 1) and b.data[0].dtype == np.int32
    assert b.label[0].asnumpy().tolist() == [0, 1] and it.provide_label[0].shape == (2,)
    nolab = mx.io.CSVIter(data_csv=csv, data_shape=(3,), batch_size=4)
    assert nolab.next().label[0].asnumpy().tolist() == [0.0] * 4
    lab2 = tmp_path / "label2.csv"
    lab2.write_text("0,1\n1,1\n2,1\n3,1\n")
    two = mx.io.CSVIter(data_csv=csv, data_shape=(3,), label_csv=str(lab2), label_shape=(2,),
                        batch_size=2)  # fmt: skip
    assert two.next().label[0].shape == (2, 2)
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.csv").write_text("1,1\n")
    (folder / "b.csv").write_text("2,2\n")
    both = mx.io.CSVIter(data_csv=str(folder), data_shape=(2,), batch_size=2)
    assert both.next().data[0].asnumpy().tolist() == [[1, 1], [2, 2]]


def test_csv_iter_errors(csv, tmp_path):
    with pytest.raises(DataIterError, match="rows of data_csv .* have 3 values.*\\(2,\\).*Fix"):
        mx.io.CSVIter(data_csv=csv, data_shape=(2,), batch_size=2)
    with pytest.raises(DataIterError, match="'data_shape' is required"):
        mx.io.CSVIter(data_csv=csv, batch_size=2)
    with pytest.raises(DataIterError, match="dtype='float64' is not supported"):
        mx.io.CSVIter(data_csv=csv, data_shape=(3,), batch_size=2, dtype="float64")
    with pytest.raises(DataIterError, match="cannot read data_csv"):
        mx.io.CSVIter(data_csv=str(tmp_path / "missing.csv"), data_shape=(3,), batch_size=2)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,a,3\n")
    with pytest.raises(DataIterError, match="not a CSV file of numbers"):
        mx.io.CSVIter(data_csv=str(bad), data_shape=(3,), batch_size=1)
    with pytest.raises(DataIterError, match="fewer than batch_size=5.*round_batch"):
        mx.io.CSVIter(data_csv=csv, data_shape=(3,), batch_size=5)


# --------------------------------------------------------------------------- composition


def test_resize_iter_restarts_and_stops():
    it = mx.io.ResizeIter(mx.io.NDArrayIter(np.arange(6.0), batch_size=4), 3)
    assert _samples(it) == [([0, 1, 2, 3], 0), ([4, 5, 0, 1], 2), ([0, 1, 2, 3], 0)]
    it.reset()
    assert len(list(it)) == 3


def test_prefetching_iter_joins_and_renames():
    a = mx.io.NDArrayIter({"data": np.zeros((4, 2))}, batch_size=2)
    b = mx.io.NDArrayIter({"data": np.ones((4, 3))}, batch_size=2)
    it = mx.io.PrefetchingIter([a, b], rename_data=[{"data": "d1"}, {"data": "d2"}])
    assert [d.name for d in it.provide_data] == ["d1", "d2"] and it.batch_size == 2
    batches = list(it)
    assert len(batches) == 2 and [x.shape for x in batches[0].data] == [(2, 2), (2, 3)]
    it.reset()
    assert len(list(it)) == 2
    short = mx.io.PrefetchingIter([mx.io.NDArrayIter(np.zeros((4, 1)), batch_size=2),
                                   mx.io.NDArrayIter(np.zeros((2, 1)), batch_size=2)])  # fmt: skip
    with pytest.raises(DataIterError, match="iterators have different numbers of"):
        list(short)


def test_custom_data_iter_subclass():
    class Counter(mx.io.DataIter):
        def __init__(self):
            super().__init__(batch_size=2)
            self.i = 0

        def iter_next(self):
            self.i += 1
            return self.i <= 3

        def getdata(self):
            return [nd.full((2,), self.i)]

        def getlabel(self):
            return []

        def getpad(self):
            return 0

    assert [b.data[0].asnumpy().tolist() for b in Counter()] == [[1, 1], [2, 2], [3, 3]]
