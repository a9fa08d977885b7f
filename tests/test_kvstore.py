"""mx.kv: the single-process KVStore of MXNet's KVStore tutorial (init, push summing the
per-device values, pull, an updater applied on push, several keys at once) and its errors.
The multi-process stores are tested in test_distributed.py."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx

SHAPE = (2, 3)


def _pull(kv, key):
    out = mx.nd.zeros(SHAPE)
    kv.pull(key, out=out)
    return out.asnumpy()


def test_the_kvstore_tutorial_sequence():
    kv = mx.kv.create("local")
    assert kv.type == "local" and kv.rank == 0 and kv.num_workers == 1
    kv.init(3, mx.nd.ones(SHAPE) * 2)
    np.testing.assert_array_equal(_pull(kv, 3), np.full(SHAPE, 2.0))
    kv.push(3, mx.nd.ones(SHAPE) * 8)  # no updater: the pushed value replaces the stored one
    np.testing.assert_array_equal(_pull(kv, 3), np.full(SHAPE, 8.0))
    kv.push(3, [mx.nd.ones(SHAPE)] * 4)  # per-device values are summed
    np.testing.assert_array_equal(_pull(kv, 3), np.full(SHAPE, 4.0))
    seen = []

    def update(key, pushed, stored):
        seen.append(key)
        stored += pushed * 2

    kv._set_updater(update)
    kv.push(3, mx.nd.ones(SHAPE))
    np.testing.assert_array_equal(_pull(kv, 3), np.full(SHAPE, 6.0))
    keys = [5, 7, 9]
    kv.init(keys, [mx.nd.ones(SHAPE)] * 3)
    kv.push(keys, [mx.nd.ones(SHAPE)] * 3)
    outs = [[mx.nd.zeros(SHAPE)] * 2 for _ in keys]
    kv.pull(keys, out=outs)
    np.testing.assert_array_equal(outs[1][1].asnumpy(), np.full(SHAPE, 3.0))
    kv.push(keys, [[mx.nd.ones(SHAPE)] * 4] * 3)
    kv.pull(keys, out=outs)
    np.testing.assert_array_equal(outs[2][0].asnumpy(), np.full(SHAPE, 11.0))
    assert seen == [3, 5, 7, 9, 5, 7, 9]


def test_init_copies_and_set_optimizer_updates_on_push():
    kv = mx.kv.create("device")
    w = mx.nd.ones(SHAPE)
    kv.init("w", w)
    w[:] = 7  # the store holds a copy
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.5))
    kv.push("w", mx.nd.ones(SHAPE) * 2)
    np.testing.assert_allclose(_pull(kv, "w"), np.full(SHAPE, 1 - 0.5 * 2))


def test_errors_name_the_call_and_the_fix():
    kv = mx.kv.create("local")
    with pytest.raises(KeyError, match=r"KVStore.push: key 1 was never initialised.*kv.init"):
        kv.push(1, mx.nd.ones(SHAPE))
    with pytest.raises(KeyError, match="KVStore.pull: key 2"):
        kv.pull(2, out=mx.nd.ones(SHAPE))
    kv.init(1, mx.nd.ones(SHAPE))
    with pytest.raises(ValueError, match="KVStore.init: key 1 is already initialised"):
        kv.init(1, mx.nd.ones(SHAPE))
    with pytest.raises(ValueError, match=r"holds shape \(2, 3\), got a value of shape \(3,\)"):
        kv.push(1, mx.nd.ones((3,)))
    with pytest.raises(ValueError, match="2 keys need as many values, got 1"):
        kv.init([4, 5], [mx.nd.ones(SHAPE)])
    with pytest.raises(ValueError, match="out is required"):
        kv.pull(1)
    with pytest.raises(ValueError, match="dist_async.*not supported"):
        mx.kv.create("dist_async")
    np.testing.assert_array_equal(_pull(kv, 1), np.ones(SHAPE))  # failed calls changed nothing
