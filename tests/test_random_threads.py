"""One random generator per thread, all derived from mx.random.seed."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon


def _in_thread(fn, name=None):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001  (raised in the calling thread)
            out["error"] = e

    t = threading.Thread(target=run, name=name)
    t.start()
    t.join(10)
    if "error" in out:
        raise out["error"]
    return out["value"]


def _seeded_run(between=lambda: None):
    """Xavier init then Dropout, seeded; ``between()`` runs after the init."""
    mx.random.seed(123)
    net = gluon.nn.Sequential()
    net.add(gluon.nn.Dense(16, in_units=8), gluon.nn.Dropout(0.5))
    net.initialize(mx.init.Xavier())
    between()
    with autograd.record():  # training mode: Dropout draws its mask
        y = net(mx.nd.ones((4, 8)))
    return net[0].weight.data().asnumpy(), y.asnumpy()


def test_other_threads_drawing_do_not_change_a_seeded_run():
    ref_w, ref_y = _seeded_run()

    def other_thread_draws():
        _in_thread(lambda: [mx.nd.random.uniform(shape=(1000,)) for _ in range(5)])
        _in_thread(lambda: mx.init.Xavier()(mx.init.InitDesc("fc_weight"), mx.nd.zeros((30, 30))))

    w, y = _seeded_run(other_thread_draws)
    np.testing.assert_array_equal(w, ref_w)
    np.testing.assert_array_equal(y, ref_y)
    assert (y == 0).any() and (y != 0).any()  # Dropout did drop something


def test_main_thread_stream_is_numpy_default_rng_of_the_seed():
    mx.random.seed(7)
    got = mx.random.uniform(shape=(5,), dtype="float64").asnumpy()
    np.testing.assert_array_equal(got, np.random.default_rng(7).uniform(0, 1, (5,)))


def test_a_threads_numbers_depend_on_the_seed_and_its_name():
    def draw():
        return mx.random.normal(shape=(6,), dtype="float64").asnumpy()

    mx.random.seed(11)
    a1 = _in_thread(draw, name="loader-a")
    mx.nd.random.uniform(shape=(100,))  # the main thread draws in between
    b = _in_thread(draw, name="loader-b")
    mx.random.seed(11)
    a2 = _in_thread(draw, name="loader-a")
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, b)
    main = draw()
    assert not np.array_equal(main, a1) and not np.array_equal(main, b)
    mx.random.seed(12)
    assert not np.array_equal(_in_thread(draw, name="loader-a"), a1)


def test_seed_restarts_every_threads_stream():
    go, drawn, results = threading.Event(), threading.Event(), []

    def worker():
        for _ in range(2):
            go.wait(10)
            go.clear()
            results.append(mx.random.uniform(shape=(3,), dtype="float64").asnumpy())
            drawn.set()

    mx.random.seed(5)
    t = threading.Thread(target=worker, name="long-lived")
    t.start()
    for _ in range(2):
        mx.random.seed(5)  # called in the main thread: the worker starts again too
        drawn.clear()
        go.set()
        assert drawn.wait(10)
    t.join(10)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("bad", [1.5, "42", None, -1, True])
def test_seed_must_be_a_non_negative_int(bad):
    with pytest.raises(mx.random.SeedError, match="mx.random.seed: the seed must be .*Fix:"):
        mx.random.seed(bad)
    mx.random.seed(np.int64(3))  # NumPy integers are ints
