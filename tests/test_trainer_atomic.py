"""Trainer.step is all or nothing even when interrupted (a fault injected at every line of a
step); bad batch sizes; the message for asynchronous kvstores (tests/test_distributed.py
covers the distributed steps)."""

from __future__ import annotations

import gc
import os
import sys

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon
from tapegrad.gluon.trainer import TrainerError

TAPEGRAD_DIR = os.path.dirname(os.path.abspath(mx.__file__))


def _setup(name, kw, warm_steps):
    """Two parameters and a Trainer, after ``warm_steps`` steps, with fresh gradients."""
    a = gluon.Parameter("a", shape=(2, 3))
    b = gluon.Parameter("b", shape=(3,))
    for p, v in ((a, np.arange(6.0).reshape(2, 3) / 7), (b, [0.5, -1.0, 2.0])):
        p.initialize(init=mx.init.Zero())
        p.set_data(mx.nd.array(v))
    tr = gluon.Trainer([a, b], name, kw)
    for s in range(warm_steps + 1):
        with autograd.record():
            loss = (a.data() * a.data()).sum() * (s + 1) + (b.data() * mx.nd.array([1, 2, 3])).sum()
        loss.backward()
        if s < warm_steps:
            tr.step(4)
    return tr, [a, b]


def _snapshot(tr, params):
    states = {}
    for i, st in tr._updaters[0].states.items():
        leaves = st if isinstance(st, tuple) else (st,)
        states[i] = [None if x is None else x.asnumpy().copy() for x in leaves]
    return {
        "weights": [p.data().asnumpy().copy() for p in params],
        "states": states,
        "num_update": tr.optimizer.num_update,
        "counts": dict(tr.optimizer._index_update_count),
        "fresh": [bool(p.data()._fresh_grad) for p in params],
        "rescale_grad": tr.optimizer.rescale_grad,
    }


def _same(x, y):
    if x.keys() != y.keys():
        return False
    for k in x:
        if k == "weights":
            if not all(np.array_equal(u, v) for u, v in zip(x[k], y[k])):
                return False
        elif k == "states":
            if x[k].keys() != y[k].keys():
                return False
            for i in x[k]:
                for u, v in zip(x[k][i], y[k][i]):
                    if (u is None) != (v is None) or (u is not None and not np.array_equal(u, v)):
                        return False
        elif x[k] != y[k]:
            return False
    return True


class _Fault:
    """Raise ``exc`` at the ``at``-th line executed in tapegrad's own code (a signal such as
    Ctrl-C arriving there), once: CPython turns tracing off when the trace function raises."""

    def __init__(self, at, exc=KeyboardInterrupt):
        self.at, self.exc, self.lines = at, exc, 0

    def _global(self, frame, event, arg):
        return self._local if frame.f_code.co_filename.startswith(TAPEGRAD_DIR) else None

    def _local(self, frame, event, arg):
        if event == "line":
            self.lines += 1
            if self.lines == self.at:
                raise self.exc(f"injected at line event {self.at}")
        return self._local

    def __enter__(self):
        # no cyclic garbage collection meanwhile: a collection would run weakref callbacks
        # (tapegrad's version records) at a moment that depends on unrelated allocations, and
        # a fault raised inside a callback is swallowed by Python instead of interrupting
        self._gc = gc.isenabled()
        gc.disable()
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)
        if self._gc:
            gc.enable()
        return False


CASES = [
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("adam", {"learning_rate": 0.05}),
]


@pytest.mark.parametrize("warm_steps", [0, 2], ids=["first-step", "later-step"])
@pytest.mark.parametrize("name,kw", CASES, ids=[c[0] for c in CASES])
def test_interrupt_at_every_point_of_a_step_is_all_or_nothing(name, kw, warm_steps):
    ref, ref_params = _setup(name, kw, warm_steps)
    with _Fault(at=0) as count:  # at=0: never fires; counts the lines of one step
        ref.step(4)
    after = _snapshot(ref, ref_params)
    assert count.lines > 50
    outcomes = {"nothing": 0, "all": 0}
    for k in range(1, count.lines + 1):
        tr, params = _setup(name, kw, warm_steps)
        before = _snapshot(tr, params)
        versions = [p.data()._version for p in params]
        with pytest.raises(KeyboardInterrupt, match="injected"), _Fault(at=k):
            tr.step(4)
        now = _snapshot(tr, params)
        if _same(now, before):
            outcomes["nothing"] += 1
            assert [p.data()._version for p in params] == versions, k
            tr.step(4)  # the gradients are still fresh: the step can simply be done again
            assert _same(_snapshot(tr, params), after), k
        else:
            assert _same(now, after), f"half-done step after a fault at line event {k}"
            assert all(p.data()._version != v for p, v in zip(params, versions)), k
            outcomes["all"] += 1
    # both phases were hit: faults while computing undo, faults while writing complete
    assert outcomes["nothing"] > 10 and outcomes["all"] > 10, outcomes


def test_interrupted_write_completes_and_says_so(monkeypatch):
    tr, params = _setup("sgd", {"learning_rate": 0.1, "momentum": 0.9}, 1)
    ref, ref_params = _setup("sgd", {"learning_rate": 0.1, "momentum": 0.9}, 1)
    ref.step(4)
    real = mx.optimizer.optimizer._write
    calls = []

    def write_once_interrupted(arr, value):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("Ctrl-C (simulated)")
        real(arr, value)

    monkeypatch.setattr(mx.optimizer.optimizer, "_write", write_once_interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        tr.step(4)
    assert "update was completed" in "".join(info.value.__notes__)
    assert _same(_snapshot(tr, params), _snapshot(ref, ref_params))


def test_write_that_keeps_failing_is_reported(monkeypatch):
    tr, params = _setup("adam", {"learning_rate": 0.1}, 1)

    def broken(arr, value):
        raise OSError("device gone (simulated)")

    monkeypatch.setattr(mx.optimizer.optimizer, "_write", broken)
    with pytest.raises(mx.base.TapegradError, match="partly updated.*Fix: .*checkpoint") as info:
        tr.step(4)
    assert "0 of 6 arrays" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize("bad", [float("nan"), -1, -0.5, 0, float("inf"), "128", True, None])
def test_step_refuses_a_bad_batch_size(bad):
    tr, params = _setup("sgd", {"learning_rate": 0.1, "momentum": 0.9}, 1)
    before = _snapshot(tr, params)
    with pytest.raises(TrainerError, match="Trainer.step: batch_size.*positive finite.*Fix:"):
        tr.step(bad)
    with pytest.raises(ValueError):  # TrainerError is a ValueError, as MXNet users expect
        tr.update(bad)
    assert _same(_snapshot(tr, params), before)
    tr.step(np.int64(4))  # NumPy numbers are fine
    assert not _same(_snapshot(tr, params), before)


def test_asynchronous_kvstore_is_refused_with_the_fix():
    p = gluon.Parameter("w", shape=(1,))
    p.initialize()
    with pytest.raises(TrainerError) as info:
        gluon.Trainer([p], "sgd", kvstore="dist_async")
    msg = str(info.value)
    assert "not supported" in msg and "dist_async" in msg and "Fix: use 'dist_sync'" in msg
