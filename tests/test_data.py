"""gluon.data: datasets, transforms, samplers and DataLoader edge cases."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad.gluon import data as gdata
from tapegrad.gluon.data.vision import transforms


def _batches(loader):
    out = []
    for b in loader:
        if isinstance(b, list):
            out.append([x.asnumpy().tolist() for x in b])
        else:
            out.append(b.asnumpy().tolist())
    return out


# ----------------------------------------------------------------------------- datasets


def test_array_dataset_items_and_lengths():
    x = mx.nd.arange(12).reshape(6, 2)
    y = mx.nd.arange(6)
    ds = gdata.ArrayDataset(x, y, list("abcdef"))
    assert len(ds) == 6
    xi, yi, zi = ds[2]
    assert xi.shape == (2,) and xi.asnumpy().tolist() == [4, 5]
    assert isinstance(yi, np.floating) and yi == 2  # a 1-D NDArray is converted to NumPy
    assert zi == "c"
    assert gdata.ArrayDataset([1, 2])[1] == 2  # one array: plain items
    with pytest.raises(ValueError, match="array\\[1\\] has 3"):
        gdata.ArrayDataset([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        gdata.ArrayDataset()


def test_transform_is_lazy_and_transform_first_keeps_label():
    calls = []

    def f(x, y):
        calls.append(x)
        return x * 10, y

    ds = gdata.ArrayDataset([1, 2, 3], [7, 8, 9])
    lazy = ds.transform(f)
    assert calls == []
    assert lazy[1] == (20, 8) and calls == [2]
    eager = ds.transform(f, lazy=False)
    assert len(calls) == 4 and isinstance(eager, gdata.SimpleDataset) and eager[2] == (30, 9)
    first = ds.transform_first(lambda x: -x)
    assert first[0] == (-1, 7)
    assert gdata.SimpleDataset([1, 2]).transform_first(lambda x: x + 1)[0] == 2


def test_filter_shard_take_sample():
    ds = gdata.SimpleDataset(list(range(10)))
    assert list(ds.filter(lambda v: v > 6)) == [7, 8, 9]
    shards = [list(ds.shard(3, i)) for i in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert list(ds.take(3)) == [0, 1, 2] and len(ds.take(None)) == 10
    assert list(ds.sample(gdata.SequentialSampler(3, start=4))) == [4, 5, 6]


# ----------------------------------------------------------------------------- samplers


def test_batch_sampler_last_batch_modes():
    seq = gdata.SequentialSampler(7)
    keep = gdata.BatchSampler(seq, 3, "keep")
    assert list(keep) == [[0, 1, 2], [3, 4, 5], [6]] and len(keep) == 3
    discard = gdata.BatchSampler(seq, 3, "discard")
    assert list(discard) == [[0, 1, 2], [3, 4, 5]] and len(discard) == 2
    roll = gdata.BatchSampler(seq, 3, "rollover")
    assert len(roll) == 2 and list(roll) == [[0, 1, 2], [3, 4, 5]]
    assert len(roll) == 2  # (1 left over + 7) // 3
    assert list(roll) == [[6, 0, 1], [2, 3, 4]]
    assert len(roll) == 3 and list(roll) == [[5, 6, 0], [1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match="last_batch"):
        gdata.BatchSampler(seq, 3, "pad")
    with pytest.raises(ValueError, match="batch_size"):
        gdata.BatchSampler(seq, 0)


def test_random_sampler_is_a_permutation_and_follows_the_seed():
    s = gdata.RandomSampler(20)
    mx.random.seed(3)
    a, b = list(s), list(s)
    assert sorted(a) == list(range(20)) and a != b  # a new order each epoch
    mx.random.seed(3)
    assert list(s) == a and list(s) == b


# ----------------------------------------------------------------------------- DataLoader


def test_dataloader_last_batch_modes():
    ds = gdata.ArrayDataset(mx.nd.arange(10))
    assert _batches(gdata.DataLoader(ds, 4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert _batches(gdata.DataLoader(ds, 4, last_batch="discard")) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    roll = gdata.DataLoader(ds, 4, last_batch="rollover")
    assert len(roll) == 2
    assert _batches(roll) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(roll) == 3
    assert _batches(roll) == [[8, 9, 0, 1], [2, 3, 4, 5], [6, 7, 8, 9]]
    assert len(gdata.DataLoader(ds, 4)) == 3
    big = gdata.DataLoader(ds, 32)
    assert _batches(big) == [list(range(10))]
    assert _batches(gdata.DataLoader(ds, 32, last_batch="discard")) == []


def test_dataloader_shuffle_is_reproducible_under_a_seed():
    ds = gdata.ArrayDataset(mx.nd.arange(50), mx.nd.arange(50) * 2)

    def epoch(loader):
        return [x.asnumpy().tolist() for x, _ in loader]

    loader = gdata.DataLoader(ds, batch_size=8, shuffle=True)
    mx.random.seed(11)
    e1, e2 = epoch(loader), epoch(loader)
    mx.random.seed(11)
    assert epoch(loader) == e1 and epoch(loader) == e2
    assert e1 != e2
    assert sorted(v for b in e1 for v in b) == list(range(50))
    mx.random.seed(12)
    assert epoch(loader) != e1
    for x, y in loader:  # pairs stay together
        np.testing.assert_array_equal(y.asnumpy(), 2 * x.asnumpy())


def test_dataloader_argument_rules():
    ds = gdata.SimpleDataset(list(range(5)))
    with pytest.raises(ValueError, match="batch_size must be specified"):
        gdata.DataLoader(ds)
    with pytest.raises(ValueError, match="shuffle must not be specified"):
        gdata.DataLoader(ds, 2, shuffle=True, sampler=gdata.SequentialSampler(5))
    bs = gdata.BatchSampler(gdata.SequentialSampler(5), 2)
    for bad in (
        {"batch_size": 2},
        {"shuffle": True},
        {"last_batch": "keep"},
        {"sampler": gdata.SequentialSampler(5)},
    ):
        with pytest.raises(ValueError, match="must not be specified"):
            gdata.DataLoader(ds, batch_sampler=bs, **bad)
    assert _batches(gdata.DataLoader(ds, batch_sampler=bs, num_workers=4)) == [[0, 1], [2, 3], [4]]
    rev = gdata.DataLoader(ds, 2, sampler=[4, 3, 2, 1, 0])
    assert _batches(rev) == [[4, 3], [2, 1], [0]]


def test_default_batchify_and_custom_batchify():
    samples = [(mx.nd.ones((2, 2)) * i, i, float(i)) for i in range(3)]
    x, y, z = gdata.DataLoader(gdata.SimpleDataset(samples), 3).__iter__().__next__()
    assert x.shape == (3, 2, 2) and x.dtype == np.float32
    assert y.dtype == np.int64 and z.dtype == np.float64  # NumPy's dtypes, as in MXNet
    assert y.asnumpy().tolist() == [0, 1, 2]
    loader = gdata.DataLoader(
        gdata.SimpleDataset(list(range(4))), 2, batchify_fn=lambda items: sum(items)
    )
    assert list(loader) == [1, 5]


def test_fast_path_equals_sample_by_sample():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((13, 3)).astype(np.float32)
    y = rng.integers(0, 5, 13).astype(np.int32)
    fast = gdata.ArrayDataset(mx.nd.array(x), mx.nd.array(y, dtype="int32"))
    slow = gdata.SimpleDataset([fast[i] for i in range(13)])  # no fast path
    for lb in ("keep", "discard"):
        a = list(gdata.DataLoader(fast, 5, last_batch=lb))
        b = list(gdata.DataLoader(slow, 5, last_batch=lb))
        assert len(a) == len(b)
        for (xa, ya), (xb, yb) in zip(a, b):
            assert xa.dtype == xb.dtype and ya.dtype == yb.dtype
            np.testing.assert_array_equal(xa.asnumpy(), xb.asnumpy())
            np.testing.assert_array_equal(ya.asnumpy(), yb.asnumpy())


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "bad, shown",
    [(None, "None"), ("cat", "str 'cat'"), ({"a": 1}, "dict {'a': 1}"), (object(), "object")],
)
def test_unbatchable_samples_name_the_dataset_index_and_type(bad, shown):
    # they used to become object or string arrays
    ds = gdata.SimpleDataset([1.0, 2.0, 3.0, bad])
    loader = gdata.DataLoader(ds, 2)
    it = iter(loader)
    assert next(it).asnumpy().tolist() == [1.0, 2.0]
    with pytest.raises(gdata.dataloader.BatchifyError) as e:
        next(it)
    msg = str(e.value)
    assert f"DataLoader: the sample at dataset index 3 is {shown}" in msg
    assert "cannot be batched" in msg and "Fix:" in msg
    assert isinstance(e.value, TypeError)
    # inside a tuple, the element is named; through a sampler, the dataset index
    pairs = gdata.SimpleDataset([(mx.nd.ones(2), 0), (mx.nd.ones(2), bad)])
    with pytest.raises(
        gdata.dataloader.BatchifyError, match="element 1 of the sample at dataset index 1 is"
    ):
        list(gdata.DataLoader(pairs, 2, sampler=[1, 0]))
    with pytest.raises(gdata.dataloader.BatchifyError, match="sample 1 of the batch"):
        gdata.default_batchify_fn([0, bad])


def test_string_and_object_numpy_samples_are_refused():
    for arr in (np.array(["a", "b"]), np.array([None, 1], dtype=object)):
        with pytest.raises(gdata.dataloader.BatchifyError, match=f"dtype {arr.dtype}"):
            gdata.default_batchify_fn([arr, arr])


def test_samples_of_different_shapes_or_structure():
    with pytest.raises(
        mx.base.ShapeError,
        match="index 2 has shape \\(3,\\) but the sample at dataset index 0 has shape \\(2,\\)",
    ):
        list(gdata.DataLoader(gdata.SimpleDataset([np.ones(2), np.ones(2), np.ones(3)]), 3))
    with pytest.raises(mx.base.ShapeError, match="index 1 has shape"):
        list(gdata.DataLoader(gdata.SimpleDataset([mx.nd.ones(2), mx.nd.ones(3)]), 2))
    with pytest.raises(gdata.dataloader.BatchifyError, match="is a list|is list|tuple of 2"):
        list(gdata.DataLoader(gdata.SimpleDataset([(1, 2), (1, 2, 3)]), 2))


@pytest.mark.parametrize("order", ["nd first", "numpy first"])
def test_mixed_ndarray_and_numpy_samples_batch_the_same_either_way(order):
    a32 = np.arange(3, dtype=np.float32)
    b64 = np.arange(3, 6, dtype=np.float64)
    samples = [mx.nd.array(a32), b64] if order == "nd first" else [b64, mx.nd.array(a32)]
    out = gdata.default_batchify_fn(samples)
    assert out.dtype == np.float64  # NumPy's promotion of float32 and float64
    expect = np.stack([a32, b64]) if order == "nd first" else np.stack([b64, a32])
    np.testing.assert_array_equal(out.asnumpy(), expect)
    # same dtypes: kept; numbers with arrays of the same shape (0-d) too
    same = gdata.default_batchify_fn([mx.nd.array(a32), a32 + 1])
    assert same.dtype == np.float32 and same.shape == (2, 3)
    mixed = gdata.default_batchify_fn([mx.nd.array(2.0), 3, np.float32(4.0)])
    assert mixed.shape == (3,) and mixed.asnumpy().tolist() == [2.0, 3.0, 4.0]


@pytest.mark.parametrize("index", [5, 100, -1])
@pytest.mark.parametrize("kind", ["array", "simple"])
def test_out_of_range_sampler_indices_are_refused(index, kind):
    data = np.arange(10.0).reshape(5, 2)
    ds = gdata.ArrayDataset(data) if kind == "array" else gdata.SimpleDataset(list(data))
    loader = gdata.DataLoader(ds, 2, sampler=[0, 1, 2, index])
    it = iter(loader)
    next(it)
    with pytest.raises(gdata.dataloader.SamplerIndexError) as e:
        next(it)  # -1 used to wrap around to the last sample
    msg = str(e.value)
    assert f"the sampler gave the index {index}, outside the dataset of length 5" in msg
    assert "valid: 0..4" in msg and "Fix:" in msg
    assert isinstance(e.value, IndexError)
    bs = gdata.DataLoader(ds, batch_sampler=[[0, 1], [index]])
    with pytest.raises(gdata.dataloader.SamplerIndexError, match=f"index {index}"):
        list(bs)


def test_non_integer_sampler_indices_are_refused():
    ds = gdata.SimpleDataset(list(range(5)))
    with pytest.raises(gdata.dataloader.SamplerIndexError, match="index float 1.5.*whole"):
        list(gdata.DataLoader(ds, 2, sampler=[0, 1.5]))
    with pytest.raises(gdata.dataloader.SamplerIndexError, match="index str '1'"):
        list(gdata.DataLoader(ds, 2, sampler=[0, "1"]))
    assert _batches(gdata.DataLoader(ds, 2, sampler=np.array([4, 3]))) == [[4, 3]]


def test_dataloader_and_datasets_refuse_non_datasets():
    for bad in (None, 3, object()):
        with pytest.raises(
            gdata.dataset.DatasetError,
            match="DataLoader: dataset must be a Dataset.*Fix: pass e.g. gluon.data.ArrayDataset",
        ):
            gdata.DataLoader(bad, batch_size=2)
    with pytest.raises(gdata.dataset.DatasetError, match="got None"):
        gdata.DataLoader(None, batch_sampler=[[0]])
    with pytest.raises(gdata.dataset.DatasetError, match="SimpleDataset needs a sequence"):
        gdata.SimpleDataset(None)
    with pytest.raises(gdata.dataset.DatasetError, match="ArrayDataset \\(array\\[1\\]\\)"):
        gdata.ArrayDataset([1, 2], None)

    class NoLen:  # enough for a batch_sampler, which needs no len()
        def __getitem__(self, i):
            return i * 2

    assert _batches(gdata.DataLoader(NoLen(), batch_sampler=[[0, 7]])) == [[0, 14]]


def test_samplers_refuse_bad_lengths():
    for make in (gdata.SequentialSampler, gdata.RandomSampler):
        for bad in (-1, 2.5, None, "3"):
            with pytest.raises(ValueError, match=f"{make.__name__}: length must be a non-neg"):
                make(bad)
    with pytest.raises(ValueError, match="IntervalSampler"):
        gdata.IntervalSampler(5, 0)
    with pytest.raises(TypeError, match="BatchSampler: sampler must be an iterable"):
        gdata.BatchSampler(None, 2)


# ----------------------------------------------------------------------------- transforms


def test_to_tensor_and_normalize():
    img = np.arange(2 * 3 * 2, dtype=np.uint8).reshape(2, 3, 2) * 10
    t = transforms.ToTensor()(mx.nd.array(img, dtype="uint8"))
    assert t.shape == (2, 2, 3) and t.dtype == np.float32
    np.testing.assert_allclose(t.asnumpy(), img.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    n = transforms.Normalize(mean=(0.5, 0.25), std=(2.0, 4.0))(t)
    expect = (img.transpose(2, 0, 1) / 255.0 - np.array([0.5, 0.25])[:, None, None]) / np.array(
        [2.0, 4.0]
    )[:, None, None]
    np.testing.assert_allclose(n.asnumpy(), expect, rtol=1e-5)
    batch = transforms.ToTensor()(mx.nd.array(np.stack([img, img]), dtype="uint8"))
    assert batch.shape == (2, 2, 2, 3)
    with pytest.raises(ValueError, match="ToTensor"):
        transforms.ToTensor()(mx.nd.ones((4,)))
    ds = gdata.ArrayDataset(mx.nd.array(np.stack([img] * 4), dtype="uint8"), mx.nd.arange(4))
    x, y = next(iter(gdata.DataLoader(ds.transform_first(transforms.ToTensor()), 4)))
    assert x.shape == (4, 2, 2, 3) and y.shape == (4,)
