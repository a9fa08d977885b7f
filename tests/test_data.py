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
