"""gluon.Trainer: batch-size scaling, stale gradients, transactional steps, states."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon
from tapegrad.gluon.trainer import NonFiniteGradientError, StaleGradientError
from tapegrad.serialization import ParamsFileError


def _param(name, values, **kw):
    p = gluon.Parameter(name, shape=np.shape(values), **kw)
    p.initialize(init=mx.init.Constant(0))
    p.set_data(mx.nd.array(values))
    return p


def _backward(params, coeffs):
    """loss = sum_i sum(coeff_i * p_i): the gradient of p_i is coeff_i."""
    with autograd.record():
        loss = None
        for p, c in zip(params, coeffs):
            term = (p.data() * mx.nd.array(c)).sum()
            loss = term if loss is None else loss + term
    loss.backward()


def _values(params):
    return [p.data().asnumpy().copy() for p in params]


def _state_values(trainer):
    out = {}
    for i, st in trainer._updaters[0].states.items():
        leaves = st if isinstance(st, tuple) else (st,)
        out[i] = [None if a is None else a.asnumpy().copy() for a in leaves]
    return out


def test_step_rescales_by_batch_size():
    w = _param("w", [1.0, 2.0, 3.0])
    tr = gluon.Trainer([w], "sgd", {"learning_rate": 0.5})
    _backward([w], [[4.0, 8.0, -4.0]])
    tr.step(batch_size=4)  # w -= lr * grad / 4
    np.testing.assert_allclose(w.data().asnumpy(), [0.5, 1.0, 3.5])
    assert tr.optimizer.rescale_grad == pytest.approx(0.25)


def test_rescale_grad_option_multiplies_the_batch_scaling():
    w = _param("w", [0.0])
    tr = gluon.Trainer([w], "sgd", {"learning_rate": 1.0, "rescale_grad": 3.0})
    _backward([w], [[2.0]])
    tr.step(2)
    assert w.data().asnumpy()[0] == pytest.approx(-3.0)  # 3 / 2 * 2


def test_allreduce_then_update_equals_step():
    a, b = _param("a", [1.0, 1.0]), _param("b", [1.0, 1.0])
    ta = gluon.Trainer([a], "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    tb = gluon.Trainer([b], "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    for _ in range(3):
        _backward([a], [[1.0, -2.0]])
        ta.step(2)
        _backward([b], [[1.0, -2.0]])
        tb.allreduce_grads()
        tb.update(2)
    np.testing.assert_allclose(a.data().asnumpy(), b.data().asnumpy())


def test_params_as_dict_are_sorted_like_mxnet():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(3, in_units=2), gluon.nn.Dense(1, in_units=3))
    net.initialize()
    params = net.collect_params()
    tr = gluon.Trainer(params, "sgd")
    # MXNet 1.x takes a dict's parameters in sorted key order (biases before weights),
    # not in the network's order
    keys = list(params.keys())
    assert [p.name for p in tr._params] == [params[k].name for k in sorted(keys)]
    assert sorted(keys) != keys
    with pytest.raises(ValueError, match="list or dict of Parameters"):
        gluon.Trainer(mx.nd.ones((2,)), "sgd")
    with pytest.raises(ValueError, match="list or dict of Parameters"):
        gluon.Trainer([mx.nd.ones((2,))], "sgd")
    with pytest.raises(ValueError, match="optimizer_params must be None"):
        gluon.Trainer(params, mx.optimizer.SGD(), {"learning_rate": 0.1})


def test_learning_rate_property_and_setter():
    w = _param("w", [1.0])
    tr = gluon.Trainer([w], "adam", {"learning_rate": 0.01})
    assert tr.learning_rate == 0.01
    tr.set_learning_rate(0.5)
    assert tr.learning_rate == 0.5 and tr.optimizer.lr == 0.5


def test_parameter_lr_mult_and_wd_mult_apply():
    a = _param("a", [1.0])
    b = _param("b", [1.0])
    b.lr_mult = 0.1
    b.wd_mult = 0.0
    tr = gluon.Trainer([a, b], "sgd", {"learning_rate": 1.0, "wd": 0.5})
    _backward([a, b], [[1.0], [1.0]])
    tr.step(1)
    assert a.data().asnumpy()[0] == pytest.approx(1.0 - (1.0 + 0.5))
    assert b.data().asnumpy()[0] == pytest.approx(1.0 - 0.1 * 1.0)


def test_stale_gradient_raises_and_changes_nothing():
    a, b = _param("a", [1.0]), _param("b", [2.0])
    tr = gluon.Trainer([a, b], "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    _backward([a, b], [[1.0], [1.0]])
    tr.step(1)
    before, states = _values([a, b]), _state_values(tr)
    _backward([a], [[1.0]])  # b is not used this time
    with pytest.raises(StaleGradientError, match="Parameter `b`.*ignore_stale_grad"):
        tr.step(1)
    with pytest.raises(UserWarning):  # MXNet raises UserWarning here
        tr.step(1)
    for x, y in zip(before, _values([a, b])):
        np.testing.assert_array_equal(x, y)
    assert all(
        np.array_equal(x, y) for i in states for x, y in zip(states[i], _state_values(tr)[i])
    )
    assert tr.optimizer.num_update == 1
    tr.step(1, ignore_stale_grad=True)  # updates a only
    assert a.data().asnumpy()[0] != before[0][0]
    assert b.data().asnumpy()[0] == before[1][0]
    assert tr.optimizer._index_update_count == {0: 2, 1: 1}


def test_null_grad_req_is_skipped():
    a = _param("a", [1.0])
    frozen = _param("frozen", [5.0], grad_req="null")
    tr = gluon.Trainer([a, frozen], "sgd", {"learning_rate": 1.0})
    _backward([a], [[1.0]])
    tr.step(1)  # no stale-gradient error for the frozen parameter
    assert frozen.data().asnumpy()[0] == 5.0 and a.data().asnumpy()[0] == 0.0


class _FailOn(mx.optimizer.SGD):
    """SGD whose update raises for one weight index."""

    fail_index = 1

    def _step(self, index, lr, wd, weight, grad, states):
        if index == self.fail_index:
            raise RuntimeError("update exploded (simulated)")
        return super()._step(index, lr, wd, weight, grad, states)


class _InPlaceFail(mx.optimizer.Optimizer):
    """An MXNet-style optimizer that updates in place itself and fails on index 1."""

    def create_state(self, index, weight):
        return mx.nd.zeros(weight.shape)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        state[:] = state + grad
        weight[:] = weight - state
        if index == 1:
            raise RuntimeError("in-place update exploded (simulated)")


@pytest.mark.parametrize(
    "make",
    [lambda: _FailOn(learning_rate=0.1, momentum=0.9), lambda: _InPlaceFail()],
    ids=["pure", "in-place"],
)
def test_failed_step_leaves_parameters_and_states_unchanged(make):
    a, b, c = _param("a", [1.0, 2.0]), _param("b", [3.0]), _param("c", [4.0])
    optim = make()
    tr = gluon.Trainer([a, b, c], optim)
    if isinstance(optim, _FailOn):
        optim.fail_index = 99  # first step succeeds and creates the states
        _backward([a, b, c], [[1.0, 1.0], [1.0], [1.0]])
        tr.step(1)
        optim.fail_index = 1
    before, states = _values([a, b, c]), _state_values(tr)
    counts = dict(optim._index_update_count)
    num_update = optim.num_update
    versions = [p.data()._version for p in (a, b, c)]
    _backward([a, b, c], [[1.0, 1.0], [1.0], [1.0]])
    with pytest.raises(RuntimeError, match="simulated") as info:
        tr.step(1)
    assert "parameter 'b'" in "".join(getattr(info.value, "__notes__", []))
    for x, y in zip(before, _values([a, b, c])):
        np.testing.assert_array_equal(x, y)
    after = _state_values(tr)
    assert after.keys() == states.keys()
    for i in states:
        for x, y in zip(states[i], after[i]):
            np.testing.assert_array_equal(x, y)
    assert optim._index_update_count == counts and optim.num_update == num_update
    if isinstance(optim, _FailOn):
        assert [p.data()._version for p in (a, b, c)] == versions
        # the gradients are still fresh: the step can be retried once the cause is fixed
        optim.fail_index = 99
        tr.step(1)
        ref = gluon.Trainer(
            [_param("a", [1.0, 2.0])], "sgd", {"learning_rate": 0.1, "momentum": 0.9}
        )
        pa = ref._params[0]
        for _ in range(2):
            _backward([pa], [[1.0, 1.0]])
            ref.step(1)
        np.testing.assert_allclose(a.data().asnumpy(), pa.data().asnumpy())


def test_check_finite_refuses_nan_gradients():
    a, b = _param("a", [1.0]), _param("b", [1.0])
    tr = gluon.Trainer([a, b], "adam", {"learning_rate": 0.1}, check_finite=True)
    _backward([a, b], [[1.0], [1.0]])
    tr.step(1)
    before, states = _values([a, b]), _state_values(tr)
    _backward([a, b], [[1.0], [float("nan")]])
    with pytest.raises(NonFiniteGradientError, match="'?b'?.*NaN"):
        tr.step(1)
    for x, y in zip(before, _values([a, b])):
        np.testing.assert_array_equal(x, y)
    for i in states:
        for x, y in zip(states[i], _state_values(tr)[i]):
            np.testing.assert_array_equal(x, y)
    assert tr.optimizer.num_update == 1
    # without check_finite the NaN goes through, as in MXNet
    c = _param("c", [1.0])
    tr2 = gluon.Trainer([c], "sgd", {"learning_rate": 0.1})
    _backward([c], [[float("inf")]])
    tr2.step(1)
    assert not np.isfinite(c.data().asnumpy()[0])


def test_kvstore_options():
    w = _param("w", [1.0])
    gluon.Trainer([w], "sgd", kvstore="local", update_on_kvstore=False)
    gluon.Trainer([w], "sgd", kvstore=None, compression_params={"type": "2bit"})
    with pytest.raises(mx.base.TapegradError, match="dist_sync"):
        gluon.Trainer([w], "sgd", kvstore="dist_async")  # not supported: use dist_sync


def _train(trainer, params, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        _backward(params, [rng.standard_normal(p.shape) for p in params])
        trainer.step(2)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("adam", {"learning_rate": 0.01}),
        ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
        ("rmsprop", {"centered": True}),
    ],
)
def test_save_load_states_resumes_exactly(tmp_path, name, kw):
    sched = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5)
    a, b = _param("a", [1.0, 2.0]), _param("b", [[0.5, -1.0], [2.0, 0.0]])
    tr = gluon.Trainer([a, b], name, dict(kw, lr_scheduler=sched))
    _train(tr, [a, b], 3, seed=1)
    path = tmp_path / "trainer.states"
    tr.save_states(str(path))
    assert path.read_bytes()[:8] == (0x112).to_bytes(8, "little")  # MXNet container, no pickle
    saved = _values([a, b])
    _train(tr, [a, b], 2, seed=2)
    expect = _values([a, b])

    a2, b2 = _param("a", saved[0]), _param("b", saved[1])
    tr2 = gluon.Trainer(
        [a2, b2], name, dict(kw, lr_scheduler=mx.lr_scheduler.FactorScheduler(step=2, factor=0.5))
    )
    tr2.load_states(str(path))
    assert tr2.optimizer.num_update == 3
    _train(tr2, [a2, b2], 2, seed=2)
    for x, y in zip(expect, _values([a2, b2])):
        np.testing.assert_allclose(x, y, rtol=1e-6)


def test_load_states_rejects_mismatch(tmp_path):
    a = _param("a", [1.0, 2.0])
    tr = gluon.Trainer([a], "adam")
    _train(tr, [a], 1, seed=0)
    path = tmp_path / "t.states"
    tr.save_states(str(path))
    other = _param("a", [1.0, 2.0, 3.0])
    with pytest.raises(mx.base.TapegradError, match="'a'.*\\(2,\\).*\\(3,\\)"):
        gluon.Trainer([other], "adam").load_states(str(path))
    with pytest.raises(mx.base.TapegradError, match="1 parameters"):
        gluon.Trainer([_param("x", [1.0]), _param("y", [1.0])], "adam").load_states(str(path))
    params_file = tmp_path / "p.params"
    mx.nd.save(str(params_file), {"a": mx.nd.ones((2,))})
    with pytest.raises(ParamsFileError, match="not a trainer-states file"):
        tr.load_states(str(params_file))


def test_load_states_restores_the_saved_optimizer(tmp_path):
    a = _param("a", [1.0])
    tr = gluon.Trainer([a], "adam", {"learning_rate": 0.02, "beta1": 0.8})
    _train(tr, [a], 2, seed=0)
    path = tmp_path / "t.states"
    tr.save_states(str(path))
    tr2 = gluon.Trainer([_param("a", [1.0])], "sgd")
    tr2.load_states(str(path))  # as MXNet: the saved optimizer replaces the current one
    assert type(tr2.optimizer) is mx.optimizer.Adam
    assert tr2.optimizer.beta1 == 0.8 and tr2.learning_rate == 0.02
    assert tr2.optimizer.param_dict[0] is tr2._params[0]


def test_updater_get_set_states_round_trip():
    opt = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9)
    upd = mx.optimizer.get_updater(opt)
    w = mx.nd.ones((2,))
    upd(0, mx.nd.ones((2,)), w)
    blob = upd.get_states(dump_optimizer=True)
    upd2 = mx.optimizer.get_updater(mx.optimizer.SGD())
    upd2.set_states(blob)
    assert upd2.optimizer.momentum == 0.9 and upd2.optimizer.num_update == 1
    np.testing.assert_allclose(upd2.states[0].asnumpy(), upd.states[0].asnumpy())


def test_step_updates_in_place_where_the_old_data_is_observable():
    # The step may hand the weight its freshly computed array instead of copying it in; it
    # must not when something still sees the old memory (a view of the weight) or when the
    # new array is held elsewhere (an optimizer returning the gradient's own array).
    w = _param("w", [[1.0, 2.0], [3.0, 4.0]])
    tr = gluon.Trainer([w], "sgd", {"learning_rate": 0.5})
    _backward([w], [[[2.0, 2.0], [2.0, 2.0]]])
    view = w.data().reshape((4,))
    tr.step(1)
    np.testing.assert_allclose(w.data().asnumpy(), [[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_allclose(view.asnumpy(), [0.0, 1.0, 2.0, 3.0])  # the view saw it
    del view
    _backward([w], [[[2.0, 2.0], [2.0, 2.0]]])
    tr.step(1)  # no view now: the values are the same either way
    np.testing.assert_allclose(w.data().asnumpy(), [[-1.0, 0.0], [1.0, 2.0]])

    class GradIsNewWeight(mx.optimizer.Optimizer):
        def _step(self, index, lr, wd, weight, grad, states):
            return grad, []

    v = _param("v", [5.0, 6.0])
    tr = gluon.Trainer([v], GradIsNewWeight())
    _backward([v], [[1.0, -1.0]])
    tr.step(1)
    np.testing.assert_allclose(v.data().asnumpy(), [1.0, -1.0])
    v.data().grad[:] = 7.0  # the weight must not share memory with the gradient buffer
    np.testing.assert_allclose(v.data().asnumpy(), [1.0, -1.0])


@pytest.mark.parametrize("hybridize", [False, True])
@pytest.mark.parametrize("opt", [("sgd", {"momentum": 0.9}), ("adam", {})])
def test_several_contexts_train_as_one_with_the_whole_batch(hybridize, opt):
    # MXNet's multi-device idiom on CPU contexts (its MNIST tutorial: ctx = [mx.cpu(0),
    # mx.cpu(1)]): a copy of each parameter per context, the batch split by split_and_load,
    # one backward per slice; Trainer.step sums the copies' gradients, as MXNet's kvstore
    # does, and writes the same update to every copy
    import tapegrad as mx
    from tapegrad import autograd, gluon, nd
    from tapegrad.gluon import nn

    def run(ctx):
        net = nn.HybridSequential()
        net.add(nn.Dense(4, activation="tanh", in_units=5), nn.Dense(3, in_units=4))
        net.initialize(mx.init.Constant(0.1), ctx=ctx)
        net.cast("float64")  # (Adam's m / sqrt(v) magnifies float32 rounding of tiny gradients)
        net[0].weight.set_data(nd.array(np.linspace(-1, 1, 20).reshape(4, 5), dtype="float64"))
        if hybridize:
            net.hybridize()
        trainer = gluon.Trainer(net.collect_params(), opt[0], {"learning_rate": 0.1, **opt[1]})
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        rs = np.random.RandomState(1)
        for _ in range(3):
            x, y = nd.array(rs.rand(6, 5), dtype="float64"), nd.array(rs.randint(0, 3, 6))
            xs = gluon.utils.split_and_load(x, ctx_list=ctx)
            ys = gluon.utils.split_and_load(y, ctx_list=ctx)
            with autograd.record():
                for xi, yi in zip(xs, ys):
                    loss_fn(net(xi), yi).backward()
            trainer.step(6)
        return [p.list_data() for p in net.collect_params().values()]

    one = run([mx.cpu(0)])
    two = run([mx.cpu(0), mx.cpu(1)])
    for (a,), (b0, b1) in zip(one, two):
        np.testing.assert_allclose(b0.asnumpy(), a.asnumpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_array_equal(b0.asnumpy(), b1.asnumpy())
        assert (b0.context, b1.context) == (mx.cpu(0), mx.cpu(1))
