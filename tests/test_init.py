"""Initializers (mx.init): MXNet 1.x defaults, formulas, registry, name dispatch, seeding."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import tapegrad as mx
from tapegrad.gluon import Parameter, nn
from tapegrad.initializer import InitDesc


def init_array(init, shape, name: str = "w_weight", dtype: str = "float32") -> np.ndarray:
    p = Parameter(name, shape=shape, init=init, dtype=dtype)
    p.initialize()
    return p.data().asnumpy()


def test_module_aliases() -> None:
    assert mx.init is mx.initializer


def test_uniform_default_scale_is_0_07() -> None:
    assert mx.init.Uniform().scale == 0.07
    mx.random.seed(0)
    a = init_array(mx.init.Uniform(), (100, 100))
    assert a.dtype == np.float32
    assert np.abs(a).max() <= 0.07 and np.abs(a).max() > 0.069
    assert abs(a.mean()) < 0.002
    assert abs(a.std() - 0.07 / math.sqrt(3)) < 0.001  # std of U[-s, s] is s / sqrt(3)


def test_normal_default_sigma_is_0_01() -> None:
    assert mx.init.Normal().sigma == 0.01
    mx.random.seed(1)
    a = init_array(mx.init.Normal(0.5), (200, 100), dtype="float64")
    assert a.dtype == np.float64
    assert abs(a.mean()) < 0.01 and abs(a.std() - 0.5) < 0.01


@pytest.mark.parametrize("factor_type", ["avg", "in", "out"])
def test_xavier_uniform_bounds(factor_type: str) -> None:
    mx.random.seed(2)
    shape = (60, 40, 3, 3)  # conv weight: fan_in = 40*9, fan_out = 60*9
    a = init_array(mx.init.Xavier(factor_type=factor_type, magnitude=3), shape)
    fan_in, fan_out = 40 * 9, 60 * 9
    factor = {"avg": (fan_in + fan_out) / 2, "in": fan_in, "out": fan_out}[factor_type]
    scale = math.sqrt(3 / factor)
    assert np.abs(a).max() <= scale * (1 + 1e-6)
    assert np.abs(a).max() > 0.99 * scale
    assert abs(a.std() - scale / math.sqrt(3)) < 0.02 * scale


def test_xavier_gaussian_and_msraprelu() -> None:
    mx.random.seed(3)
    a = init_array(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2), (300, 200))
    assert abs(a.std() - math.sqrt(2 / 200)) < 0.02 * math.sqrt(2 / 200)
    msra = mx.init.MSRAPrelu(slope=0.25)
    assert msra.rnd_type == "gaussian" and msra.magnitude == pytest.approx(2 / (1 + 0.0625))
    b = init_array(msra, (300, 200))
    assert abs(b.std() - math.sqrt(msra.magnitude / 250)) < 0.02 * math.sqrt(msra.magnitude / 250)
    assert json.loads(msra.dumps()) == ["msraprelu", {"factor_type": "avg", "slope": 0.25}]


def test_xavier_rejects_vectors_with_actionable_message() -> None:
    p = Parameter("fc_bias", shape=(4,))
    with pytest.raises(ValueError, match="fc_bias.*at least 2D"):
        p.initialize(default_init=mx.init.Xavier())
    with pytest.raises(ValueError, match="factor_type"):
        init_array(mx.init.Xavier(factor_type="bad"), (2, 2))


def test_constant_zero_one() -> None:
    assert not init_array(mx.init.Zero(), (2, 3)).any()
    assert (init_array(mx.init.One(), (2, 3)) == 1).all()
    assert (init_array(mx.init.Constant(-1.5), (2, 3)) == -1.5).all()
    eye = init_array(mx.init.Constant(np.eye(3)), (3, 3))
    np.testing.assert_array_equal(eye, np.eye(3))
    np.testing.assert_array_equal(
        init_array(mx.init.Constant(mx.nd.array([1, 2])), (2, 2)), [[1, 2], [1, 2]]
    )


def test_orthogonal_and_lstm_bias() -> None:
    mx.random.seed(4)
    w = init_array(mx.init.Orthogonal(scale=2.0, rand_type="normal"), (4, 6))
    np.testing.assert_allclose(w @ w.T, 4 * np.eye(4), atol=1e-5)
    b = init_array(mx.init.LSTMBias(forget_bias=2.0), (12,), name="lstm_bias")
    np.testing.assert_array_equal(b, [0] * 3 + [2] * 3 + [0] * 6)


def test_registry_create_and_dumps_round_trip() -> None:
    assert isinstance(mx.init.create("zeros"), mx.init.Zero)
    assert isinstance(mx.init.create("ONES"), mx.init.One)
    assert isinstance(mx.init.create("msraprelu"), mx.init.MSRAPrelu)
    x = mx.init.create("xavier", rnd_type="gaussian", magnitude=2.34)
    assert (x.rnd_type, x.magnitude) == ("gaussian", 2.34)
    y = mx.init.create(x.dumps())
    assert (type(y), y.rnd_type, y.factor_type, y.magnitude) == (
        mx.init.Xavier,
        "gaussian",
        "avg",
        2.34,
    )
    inst = mx.init.Normal()
    assert mx.init.create(inst) is inst
    with pytest.raises(ValueError, match="Cannot find initializer 'nosuch'.*xavier"):
        mx.init.create("nosuch")
    with pytest.raises(TypeError, match="initializer"):
        mx.init.create(3.0)


def test_register_custom_initializer() -> None:
    @mx.init.register
    @mx.init.alias("sevens")
    class SevenInit(mx.init.Initializer):
        def _init_weight(self, name, arr):
            arr[:] = 7

    assert (init_array("seveninit", (2,)) == 7).all()
    assert (init_array("sevens", (2,)) == 7).all()
    with pytest.raises(TypeError):
        mx.init.register(int)


def test_initdesc_name_dispatch() -> None:
    """Without a per-array initializer the name's ending decides, as in MXNet."""
    init = mx.init.Constant(5.0)
    expected = {"fc_weight": 5.0, "fc_bias": 0.0, "bn_gamma": 1.0, "bn_beta": 0.0}
    for name, value in expected.items():
        arr = mx.nd.full((2,), 9.0)
        init(InitDesc(name), arr)
        assert arr.asnumpy().tolist() == [value, value], name
    with pytest.raises(ValueError, match="Unknown initialization pattern for 'bn_running_mean'"):
        init(InitDesc("bn_running_mean"), mx.nd.zeros((2,)))
    # the legacy string call also knows running statistics
    with pytest.warns(DeprecationWarning):
        for name, value in {
            "bn_running_mean": 0.0,
            "bn_running_var": 1.0,
            "bn_moving_var": 1.0,
            "fc_bias": 0.0,
        }.items():
            arr = mx.nd.full((2,), 9.0)
            init(name, arr)
            assert arr.asnumpy().tolist() == [value, value], name
    # an explicit __init__ attribute wins over the name
    arr = mx.nd.full((2,), 9.0)
    init(InitDesc("fc_bias", {"__init__": "ones"}), arr)
    assert arr.asnumpy().tolist() == [1.0, 1.0]


def test_layer_defaults_follow_mxnet() -> None:
    """Global init fills weights; biases, gamma, beta and running stats keep their layer
    defaults (the layers give those parameters their own initializers, as in MXNet)."""
    net = nn.HybridSequential()
    net.add(
        nn.Dense(3, in_units=4),
        nn.BatchNorm(in_channels=3),
        nn.LayerNorm(in_channels=3),
        nn.PReLU(),
    )
    net.initialize(mx.init.Constant(0.5))
    params = {k.split("_", 1)[1]: p.data().asnumpy() for k, p in net.collect_params().items()}
    assert (params["weight"] == 0.5).all() and not params["bias"].any()
    assert (params["gamma"] == 1).all() and not params["beta"].any()
    assert not params["running_mean"].any() and (params["running_var"] == 1).all()
    assert (params["alpha"] == 0.25).all()


def test_seed_makes_initialization_reproducible() -> None:
    def make() -> np.ndarray:
        layer = nn.Dense(5, in_units=4)
        layer.initialize(mx.init.Xavier())
        return layer.weight.data().asnumpy()

    mx.random.seed(42)
    a = make()
    mx.random.seed(42)
    b = make()
    c = make()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_mixed_and_verbose(caplog: pytest.LogCaptureFixture) -> None:
    mixed = mx.init.Mixed([".*bias", ".*"], [mx.init.Constant(3.0), mx.init.One()])
    arr = mx.nd.full((2,), 3.0)
    mixed(InitDesc("fc_bias", {"__init__": "zeros"}), arr)  # own __init__ wins
    assert not arr.asnumpy().any()
    mixed(InitDesc("fc_weight"), arr)
    assert (arr.asnumpy() == 1).all()
    with pytest.raises(ValueError, match="did not match"):
        mx.init.Mixed(["a"], [mx.init.Zero()])(InitDesc("b"), arr)
    import logging

    with caplog.at_level(logging.INFO):
        layer = nn.Dense(2, in_units=2)
        layer.initialize(mx.init.One(), verbose=True)
    assert any(layer.weight.name in r.getMessage() for r in caplog.records)
