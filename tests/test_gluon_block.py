"""Blocks and parameters: naming, registration, deferred init, grad_req, hooks, save/load
(including files written by real MXNet 1.9.1), summary, Sequential containers."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, serialization
from tapegrad.gluon import Block, HybridBlock, Parameter, ParameterDict, nn
from tapegrad.gluon.block import NameManager
from tapegrad.gluon.parameter import ParameterLoadError

# files written by real MXNet 1.9.1 (copies of ../shared/data/mxnet-params)
MXNET_FILES = Path(__file__).resolve().parent / "data" / "mxnet-params"
RNG = np.random.default_rng(1)


def mlp(hidden: int = 4, out: int = 2) -> nn.HybridSequential:
    net = nn.HybridSequential()
    net.add(nn.Dense(hidden, activation="tanh"), nn.Dense(out))
    return net


def values(net: Block) -> dict:
    return {k: p.data().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}


# ----------------------------------------------------------------------- the tutorial


def test_tutorial_snippet_gradients() -> None:
    """MXNet's autograd tutorial: HybridSequential + Dense + L2Loss, net[0].weight.grad()."""
    net = nn.HybridSequential()
    net.add(nn.Dense(units=3))
    net.add(nn.Dense(units=1))
    net.initialize()
    loss_fn = mx.gluon.loss.L2Loss()
    x = mx.nd.array([[0.3, 0.5]])
    y = mx.nd.array([[1.5]])
    with autograd.record():
        y_hat = net(x)
        loss = loss_fn(y_hat, y)
    loss.backward()
    W0, b0 = net[0].weight.data().asnumpy(), net[0].bias.data().asnumpy()
    W1, b1 = net[1].weight.data().asnumpy(), net[1].bias.data().asnumpy()
    h = x.asnumpy() @ W0.T + b0
    pred = h @ W1.T + b1
    dpred = pred - 1.5  # d/dpred of (pred - y)^2 / 2
    np.testing.assert_allclose(loss.asnumpy(), ((pred - 1.5) ** 2 / 2).ravel(), rtol=1e-5)
    np.testing.assert_allclose(
        net[0].weight.grad().asnumpy(), (dpred @ W1).T @ x.asnumpy(), rtol=1e-4, atol=1e-7
    )
    np.testing.assert_allclose(net[1].weight.grad().asnumpy(), dpred.T @ h, rtol=1e-4, atol=1e-7)
    assert net[0].weight.grad().shape == (3, 2)
    # freezing the first layer, as the tutorial does next
    net[0].weight.grad_req = "null"
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    with pytest.raises(RuntimeError, match="grad_req='null'"):
        net[0].weight.grad()


# --------------------------------------------------------------------------- naming


def test_automatic_prefixes_and_parameter_repr() -> None:
    with NameManager():
        d0, d1 = nn.Dense(72, in_units=784), nn.Dense(10)
        seq = nn.Sequential()
        assert (d0.prefix, d1.prefix, seq.prefix) == ("dense0_", "dense1_", "sequential0_")
        assert d0.name == "dense0"
        assert repr(d0.weight) == "Parameter dense0_weight (shape=(72, 784), dtype=float32)"
        assert list(d1.params.keys()) == ["dense1_weight", "dense1_bias"]
        with seq.name_scope():
            inner = nn.Dense(3, activation="relu")
        assert inner.prefix == "sequential0_dense0_"
        assert inner.act.prefix == "sequential0_dense0_relu_"
        assert nn.Dense(2, prefix="fc_").weight.name == "fc_weight"


def test_custom_block_registers_children_and_params() -> None:
    class Model(Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.encoder = nn.Dense(4, in_units=3)
                self.scale = self.params.get("scale", shape=(1,), init=mx.init.One())
                self.layers = [nn.Dense(2)]  # hidden in a list: not registered

        def forward(self, x):
            return self.encoder(x) * self.scale.data()

    m = Model(prefix="model_")
    assert list(m._children) == ["encoder"]
    with pytest.warns(UserWarning, match="unregistered container"):
        names = list(m.collect_params().keys())
    assert names == ["model_scale", "model_dense0_weight", "model_dense0_bias"]
    assert sorted(m._collect_params_with_prefix()) == ["encoder.bias", "encoder.weight", "scale"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = m.collect_params(".*weight|.*scale")
    assert list(sel.keys()) == ["model_scale", "model_dense0_weight"]
    with pytest.raises(TypeError, match="Changing attribute type"):
        m.encoder = 3
    assert "(encoder): Dense(3 -> 4, linear)" in repr(m)


def test_block_without_super_init_gets_clear_error() -> None:
    class Broken(Block):
        def __init__(self):
            self.dense = nn.Dense(2)

    with pytest.raises(RuntimeError, match=r"super\(\)\.__init__"):
        Broken()


def test_hybridblock_children_must_be_hybrid() -> None:
    net = nn.HybridSequential()
    with pytest.raises(ValueError, match="HybridSequential"):
        net.add(nn.Lambda("tanh"))


def test_parameter_sharing_through_params() -> None:
    d0 = nn.Dense(3, in_units=2)
    d1 = nn.Dense(3, in_units=2, params=d0.collect_params())
    assert d1.weight is d0.weight and d1.bias is d0.bias
    d0.initialize()
    x = mx.nd.array(RNG.standard_normal((2, 2)))
    np.testing.assert_array_equal(d0(x).asnumpy(), d1(x).asnumpy())


# ------------------------------------------------------------------- deferred init


def test_deferred_initialization() -> None:
    net = mlp()
    net.initialize()
    with pytest.raises(mx.gluon.DeferredInitializationError) as err:
        net[0].weight.data()
    msg = str(err.value)
    assert net[0].weight.name in msg and "in_units" in msg and "forward" in msg
    net(mx.nd.ones((5, 7)))
    assert net[0].weight.shape == (4, 7) and net[1].weight.shape == (2, 4)
    assert net[0].weight.data().shape == (4, 7)


def test_custom_hybridblock_deferred_shape_without_infer_shape() -> None:
    class Scale(HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.w = self.params.get("w", shape=(0,), allow_deferred_init=True)

        def hybrid_forward(self, F, x, w):
            return x * w

    blk = Scale()
    blk.initialize()
    # MXNet infers shapes through the operator; (0,) cannot become the (2, 3) '*' needs
    with pytest.raises(ValueError, match="scale0_w.*shape \\(2, 3\\).*declared with shape"):
        blk(mx.nd.ones((2, 3)))

    class Scale2(Scale):
        def infer_shape(self, x):
            self.w.shape = (x.shape[-1],)

    blk2 = Scale2()
    blk2.initialize(mx.init.One())
    assert blk2(mx.nd.ones((2, 3))).asnumpy().tolist() == [[1.0] * 3] * 2


def test_initialize_without_shape_is_an_error() -> None:
    p = Parameter("w", shape=(3, 0))
    with pytest.raises(ValueError, match="'w'.*invalid shape"):
        p.initialize()


# -------------------------------------------------------------------------- grad_req


def test_grad_req_add_accumulates_and_zero_grad() -> None:
    layer = nn.Dense(2, in_units=3)
    layer.initialize()
    layer.collect_params().setattr("grad_req", "add")
    x = mx.nd.array(RNG.standard_normal((4, 3)))
    grads = []
    for _ in range(2):
        with autograd.record():
            y = layer(x).sum()
        y.backward()
        grads.append(layer.weight.grad().asnumpy().copy())
    np.testing.assert_allclose(grads[1], 2 * grads[0], rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad().asnumpy(), [8.0, 8.0])
    layer.collect_params().zero_grad()
    assert not layer.weight.grad().asnumpy().any()
    with autograd.record():
        y = layer(x).sum()
    y.backward()
    np.testing.assert_allclose(layer.weight.grad().asnumpy(), grads[0], rtol=1e-6)


def test_grad_req_write_overwrites_and_null_detaches() -> None:
    layer = nn.Dense(2, in_units=3)
    layer.initialize()
    x = mx.nd.array(RNG.standard_normal((4, 3)))
    for _ in range(2):
        with autograd.record():
            y = layer(x).sum()
        y.backward()
    np.testing.assert_allclose(layer.bias.grad().asnumpy(), [4.0, 4.0])
    layer.weight.grad_req = "null"
    assert layer.weight.list_data()[0].grad is None
    x.attach_grad()
    with autograd.record():
        y = layer(x).sum()
    y.backward()
    np.testing.assert_allclose(
        x.grad.asnumpy(), np.tile(layer.weight.data().asnumpy().sum(0), (4, 1)), rtol=1e-6
    )
    with pytest.raises(RuntimeError, match="grad_req='null'"):
        layer.weight.list_grad()
    layer.weight.zero_grad()  # no-op without a gradient buffer
    layer.weight.grad_req = "write"
    assert not layer.weight.grad().asnumpy().any()
    with pytest.raises(ValueError, match="grad_req"):
        layer.weight.grad_req = "sometimes"


# ------------------------------------------------------------------------ Parameter


def test_parameter_init_precedence_and_force_reinit() -> None:
    p = Parameter("fc_weight", shape=(2, 3), init=mx.init.Constant(2.0))
    p.initialize(default_init=mx.init.One())
    assert p.data().asnumpy().tolist() == [[2.0] * 3] * 2  # own init wins
    with pytest.warns(UserWarning, match="already initialized"):
        p.initialize()
    p.initialize(init=mx.init.Zero(), force_reinit=True)  # explicit init wins over own
    assert not p.data().asnumpy().any()
    q = Parameter("fc_weight", shape=(2,))
    q.initialize(default_init="ones")
    assert q.data().asnumpy().tolist() == [1.0, 1.0]
    # a network's global initializer fills weights; layers' own 'zeros' bias init wins
    layer = nn.Dense(3, in_units=2, bias_initializer="ones")
    layer.initialize(mx.init.Constant(0.5))
    assert layer.weight.data().asnumpy().tolist() == [[0.5, 0.5]] * 3
    assert layer.bias.data().asnumpy().tolist() == [1.0] * 3


def test_parameter_set_data_cast_attributes() -> None:
    p = Parameter("w", shape=(2, 2), lr_mult=2.0, wd_mult=0.0)
    assert (p.lr_mult, p.wd_mult, p.dtype) == (2.0, 0.0, np.float32)
    p.initialize()
    p.set_data(mx.nd.array([[1, 2], [3, 4]]))
    assert p.data().asnumpy().tolist() == [[1, 2], [3, 4]]
    with pytest.raises(mx.base.ShapeError, match="'w'"):
        p.set_data(mx.nd.ones((3, 2)))
    p.cast("float64")
    assert p.data().dtype == np.float64 and p.grad().dtype == np.float64
    assert p.list_ctx() == [mx.cpu()]
    with pytest.raises(RuntimeError, match="not initialized on context"):
        p.data(mx.cpu(1))
    with pytest.raises(mx.base.TapegradError, match="GPU"):
        Parameter("g", shape=(2,)).initialize(ctx=mx.gpu(0))
    fresh = Parameter("v", shape=(2,))
    with pytest.raises(RuntimeError, match="'v' has not been initialized"):
        fresh.data()


def test_constant() -> None:
    c = mx.gluon.Constant("const", [[1, 2], [3, 4]])
    c.initialize()
    # MXNet 1.9 prints the dtype as it was given: the value's, numpy.float32
    assert repr(c) == "Constant const (shape=(2, 2), dtype=<class 'numpy.float32'>)"
    assert c.grad_req == "null"
    with pytest.warns(UserWarning, match="does not support"):
        c.grad_req = "write"
    assert c.grad_req == "null"
    assert c.data().asnumpy().tolist() == [[1, 2], [3, 4]]


def test_parameterdict() -> None:
    pd = ParameterDict("net_")
    w = pd.get("weight", shape=(3, 0), allow_deferred_init=True)
    assert pd.get("weight", shape=(3, 4)) is w and w.shape == (3, 4)
    with pytest.raises(ValueError, match="'net_weight'.*shape"):
        pd.get("weight", shape=(5, 4))
    shared = ParameterDict("net_", shared=pd)
    assert shared.get("weight") is w
    assert "net_weight" in pd and len(pd) == 1 and list(pd) == ["net_weight"]
    pd.initialize(mx.init.One())
    pd.setattr("lr_mult", 0.5)
    assert w.lr_mult == 0.5
    const = pd.get_constant("c", [1.0, 2.0])
    assert pd.get_constant("c") is const
    other = ParameterDict("net_")
    other.get("weight", shape=(3, 4))
    with pytest.raises(ValueError, match="same name 'net_weight'"):
        pd.update(other)
    # (the default dtype of a Parameter is numpy.float32, printed as MXNet prints it)
    assert "Parameter net_weight (shape=(3, 4), dtype=<class 'numpy.float32'>)" in repr(pd)
    pd.reset_ctx(mx.cpu())
    assert w.data().asnumpy().sum() == 12


# ------------------------------------------------------------------------ save/load


def test_save_load_round_trip_with_structural_names(tmp_path: Path) -> None:
    net = mlp()
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(RNG.standard_normal((3, 5)))
    before = net(x).asnumpy()
    fname = str(tmp_path / "net.params")
    net.save_parameters(fname)
    assert sorted(serialization.load(fname)) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    other = mlp()  # different automatic prefix, not initialized: load initializes
    other.load_parameters(fname)
    np.testing.assert_array_equal(other(x).asnumpy(), before)
    # loading into an initialized net overwrites in place
    third = mlp()
    third.initialize()
    third(x)
    third.load_parameters(fname)
    np.testing.assert_array_equal(third(x).asnumpy(), before)


def test_load_errors_name_the_parameter_and_change_nothing(tmp_path: Path) -> None:
    net = mlp()
    net.initialize()
    net(mx.nd.ones((1, 5)))
    fname = str(tmp_path / "net.params")
    net.save_parameters(fname)

    bigger = nn.HybridSequential()
    bigger.add(nn.Dense(4, activation="tanh"), nn.Dense(2), nn.Dense(1))
    with pytest.raises(ParameterLoadError, match=r"'2\.weight' is missing.*allow_missing"):
        bigger.load_parameters(fname)
    bigger.load_parameters(fname, allow_missing=True)
    assert bigger[1].weight.data().shape == (2, 4)

    smaller = nn.HybridSequential()
    smaller.add(nn.Dense(4, activation="tanh"))
    with pytest.raises(ParameterLoadError, match=r"'1\.weight'.*not present.*ignore_extra"):
        smaller.load_parameters(fname)
    smaller.load_parameters(fname, ignore_extra=True)
    np.testing.assert_array_equal(
        smaller[0].weight.data().asnumpy(), net[0].weight.data().asnumpy()
    )

    wrong = mlp(hidden=4, out=3)
    wrong.initialize()
    wrong(mx.nd.ones((1, 5)))
    old = values(wrong)
    with pytest.raises(ParameterLoadError, match=r"shape incompatible.*\(3, 4\).*\(2, 4\)"):
        wrong.load_parameters(fname)
    for k, v in values(wrong).items():  # nothing half-loaded
        np.testing.assert_array_equal(v, old[k], err_msg=k)
    # errors are also AssertionError/ValueError, as MXNet raises
    with pytest.raises(AssertionError):
        wrong.load_parameters(fname)


def test_load_dtype_checks_and_cast(tmp_path: Path) -> None:
    net = nn.Dense(2, in_units=3)
    net.initialize()
    fname = str(tmp_path / "d.params")
    net.save_parameters(fname)
    target = nn.Dense(2, in_units=3, dtype="float64")
    target.initialize()
    with pytest.raises(ParameterLoadError, match="dtype incompatible.*cast_dtype=True"):
        target.load_parameters(fname)
    target.load_parameters(fname, cast_dtype=True)
    assert target.weight.data().dtype == np.float64
    np.testing.assert_allclose(target.weight.data().asnumpy(), net.weight.data().asnumpy())
    target.load_parameters(fname, cast_dtype=True, dtype_source="saved")
    assert target.weight.dtype == np.float32 and target.weight.data().dtype == np.float32


def test_load_list_file_is_refused(tmp_path: Path) -> None:
    fname = str(tmp_path / "list.params")
    serialization.save(fname, [mx.nd.ones((2,))])
    with pytest.raises(ParameterLoadError, match="unnamed list"):
        nn.Dense(2, in_units=1).load_parameters(fname)


def scoped_mlp(prefix: str | None = None) -> nn.HybridSequential:
    net = nn.HybridSequential(prefix=prefix)
    with net.name_scope():
        net.add(nn.Dense(4, activation="tanh"), nn.Dense(2))
    return net


def test_legacy_prefixed_names(tmp_path: Path) -> None:
    net = scoped_mlp()
    net.initialize()
    net(mx.nd.ones((1, 3)))
    fname = str(tmp_path / "legacy.params")
    with pytest.warns(DeprecationWarning):
        net.save_params(fname)  # names relative to the net: dense0_weight, ...
    names = sorted(serialization.load(fname))
    assert all("." not in n for n in names) and len(names) == 4
    assert names == ["dense0_bias", "dense0_weight", "dense1_bias", "dense1_weight"]
    same_structure = scoped_mlp()  # another prefix: names are read relative to it
    same_structure.load_parameters(fname)
    for a, b in zip(values(net).values(), values(same_structure).values()):
        np.testing.assert_array_equal(a, b)
    # ParameterDict.save keeps full names; a net of the same structure under another
    # automatic prefix still finds them (the file's common prefix is replaced)
    full = str(tmp_path / "full.params")
    net.collect_params().save(full)
    other = scoped_mlp()
    other.load_parameters(full)
    for a, b in zip(values(net).values(), values(other).values()):
        np.testing.assert_array_equal(a, b)
    pd = net.collect_params()
    pd.load(full)  # exact names
    with pytest.raises(ParameterLoadError, match=r"dense0_weight' is missing.*same prefix"):
        scoped_mlp().collect_params().load(full)
    with pytest.raises(ParameterLoadError, match="is not present in ParameterDict"):
        scoped_mlp().collect_params().load(full, allow_missing=True)


def test_real_mxnet_checkpoint_forward_matches() -> None:
    expected = json.loads((MXNET_FILES / "expected.json").read_text())
    net = nn.HybridSequential()
    net.add(nn.Dense(72, activation="tanh"), nn.Dense(10))
    net.load_parameters(str(MXNET_FILES / "mlp_784_72_10.params"))
    for name, info in expected["mlp_784_72_10.params"].items():
        idx, attr = name.split(".")
        arr = getattr(net[int(idx)], attr).data().asnumpy()
        assert list(arr.shape) == info["shape"]
        np.testing.assert_allclose(arr.sum(), info["sum"], atol=1e-4)
        np.testing.assert_allclose(arr.ravel()[:3], info["first"], rtol=1e-6)
    x = mx.nd.array(np.linspace(0, 1, 784).reshape(1, 784))
    np.testing.assert_allclose(
        net(x).asnumpy()[0], expected["mlp_784_72_10.forward"]["output"], rtol=1e-5, atol=1e-6
    )


def test_real_mxnet_prefixed_file() -> None:
    expected = json.loads((MXNET_FILES / "expected.json").read_text())["dense_prefixed.params"]
    fname = str(MXNET_FILES / "dense_prefixed.params")
    layer = nn.Dense(3, in_units=2, prefix="dense0_")
    layer.collect_params().load(fname)  # MXNet's own way for collect_params().save files
    np.testing.assert_allclose(
        layer.weight.data().asnumpy().ravel(), expected["dense0_weight"]["values"], rtol=1e-6
    )
    fresh = nn.Dense(3, in_units=2)  # any automatic prefix
    fresh.load_parameters(fname)
    np.testing.assert_allclose(
        fresh.weight.data().asnumpy().ravel(), expected["dense0_weight"]["values"], rtol=1e-6
    )
    assert fresh.bias.data().asnumpy().tolist() == expected["dense0_bias"]["values"]


def test_deduplicate_shared_parameters(tmp_path: Path) -> None:
    class Tied(HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.a = nn.Dense(3, in_units=3)
                self.b = nn.Dense(3, in_units=3, params=self.a.collect_params())

        def hybrid_forward(self, F, x):
            return self.b(self.a(x))

    t = Tied()
    t.initialize()
    fname = str(tmp_path / "tied.params")
    t.save_parameters(fname, deduplicate=True)
    assert sorted(serialization.load(fname)) == ["a.bias", "a.weight"]
    t2 = Tied()
    t2.load_parameters(fname)
    x = mx.nd.ones((1, 3))
    np.testing.assert_array_equal(t2(x).asnumpy(), t(x).asnumpy())


# ------------------------------------------------------------------------ hooks etc.


def test_forward_hooks_and_handles() -> None:
    layer = nn.Dense(2, in_units=3)
    layer.initialize()
    calls = []
    pre = layer.register_forward_pre_hook(lambda blk, inp: calls.append(("pre", inp[0].shape)))
    post = layer.register_forward_hook(
        lambda blk, inp, out: calls.append(("post", blk is layer, out.shape))
    )
    layer(mx.nd.ones((4, 3)))
    assert calls == [("pre", (4, 3)), ("post", True, (4, 2))]
    pre.detach()
    layer(mx.nd.ones((1, 3)))
    assert calls[-1] == ("post", True, (1, 2)) and len(calls) == 3
    with post:
        pass  # leaving the context detaches
    layer(mx.nd.ones((1, 3)))
    assert len(calls) == 3


def test_apply_cast_and_repr() -> None:
    net = mlp()
    seen = []
    net.apply(lambda b: seen.append(type(b).__name__))
    assert seen == ["Activation", "Dense", "Dense", "HybridSequential"]
    net.initialize()
    net(mx.nd.ones((2, 3)))
    net.cast("float64")
    assert all(p.data().dtype == np.float64 for p in net.collect_params().values())
    assert net(mx.nd.ones((2, 3), dtype="float64")).dtype == np.float64
    assert repr(net) == (
        "HybridSequential(\n  (0): Dense(3 -> 4, Activation(tanh))\n  (1): Dense(4 -> 2, linear)\n)"
    )


def test_cast_keeps_values_of_data_and_gradient() -> None:
    p = Parameter("p", shape=(2,), grad_req="add", init=mx.init.Constant(1.5))
    p.initialize()
    with autograd.record():
        loss = (p.data() * mx.nd.array([1.0, 2.0])).sum()
    loss.backward()
    p.cast("float64")
    assert p.data().dtype == np.float64 and p.grad().dtype == np.float64
    assert p.data().asnumpy().tolist() == [1.5, 1.5]
    assert p.grad().asnumpy().tolist() == [1.0, 2.0]  # kept, as MXNet's cast does
    with autograd.record():  # still a variable, still accumulating ('add')
        loss = (p.data() * mx.nd.array([1.0, 2.0], dtype="float64")).sum()
    loss.backward()
    assert p.grad().asnumpy().tolist() == [2.0, 4.0]


class _AttrParam(HybridBlock):
    """A block whose Parameter is assigned directly, not created through self.params.get."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = Parameter("scale", shape=(3,), init=mx.init.One())
        with self.name_scope():
            self.dense = nn.Dense(2, in_units=3)

    def hybrid_forward(self, F, x, scale):
        return self.dense(F.broadcast_mul(x, scale))


def test_parameters_assigned_as_attributes_are_collected_and_trained() -> None:
    blk = _AttrParam()
    names = list(blk.collect_params().keys())
    assert names[0] == "scale" and len(names) == 3
    assert list(blk.collect_params("scale").keys()) == ["scale"]
    blk.initialize()  # initializes 'scale' too
    trainer = mx.gluon.Trainer(blk.collect_params(), "sgd", {"learning_rate": 1.0})
    x = mx.nd.array([[1.0, 2.0, 3.0]])
    w = blk.dense.weight.data().asnumpy().copy()
    with autograd.record():
        loss = blk(x).sum()
    loss.backward()
    trainer.step(1)
    # d loss / d scale_j = x_j * sum_i W_ij
    np.testing.assert_allclose(
        blk.scale.data().asnumpy(), 1.0 - x.asnumpy()[0] * w.sum(axis=0), rtol=1e-6
    )
    blk.cast("float64")
    assert blk.scale.data().dtype == np.float64
    # a name clash with a parameter of the block is an error that names it
    clash = _AttrParam(prefix="c_")
    clash.other = clash.params.get("x", shape=(1,))
    clash.extra = Parameter("c_x", shape=(1,))
    with pytest.raises(ValueError, match="'c_x'"):
        clash.collect_params()


def test_summary(capsys: pytest.CaptureFixture) -> None:
    net = mlp(hidden=72, out=10)
    net.initialize()
    net[1].weight.grad_req = "null"
    net.summary(mx.nd.ones((2, 784)))
    out = capsys.readouterr().out
    rows = [
        line.split()
        for line in out.splitlines()
        if line.strip().startswith(("Input", "Activation-", "Dense-"))
    ]
    assert rows == [
        ["Input", "(2,", "784)", "0"],
        ["Activation-1", "(2,", "72)", "0"],
        ["Dense-2", "(2,", "72)", "56520"],
        ["Dense-3", "(2,", "10)", "730"],
    ]
    total = 784 * 72 + 72 + 72 * 10 + 10
    assert f"Total params: {total}" in out
    assert f"Trainable params: {total - 720}" in out
    assert "Non-trainable params: 720" in out
    assert not net[0]._forward_hooks  # summary removes its hooks


def test_sequential_indexing_slicing_iteration() -> None:
    net = nn.Sequential()
    net.add(nn.Dense(3, in_units=2), nn.Dense(4, in_units=3), nn.Dense(1, in_units=4))
    net.initialize()
    assert len(net) == 3 and isinstance(net[-1], nn.Dense)
    assert [b.weight.shape for b in net] == [(3, 2), (4, 3), (1, 4)]
    head = net[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is net[0]
    x = mx.nd.array(RNG.standard_normal((5, 2)))
    np.testing.assert_allclose(net(x).asnumpy(), net[2](head(x)).asnumpy(), rtol=1e-6)
    with pytest.warns(UserWarning, match="HybridSequential"):
        net.hybridize()


def test_hybridize_is_accepted_with_mxnets_flags() -> None:
    # hybridize() does not compile yet (issue 13): until it does, comparing a "hybridized"
    # block with eager execution cannot fail, so this test only pins what is promised now:
    # MXNet's signature is accepted, the flags are kept, and children are reached
    net = mlp()
    net.initialize()
    assert net.hybridize(active=True, static_alloc=True, static_shape=True) is None
    assert net._active and dict(net._flags) == {"static_alloc": True, "static_shape": True}
    assert all(child._active for child in net._children.values())
    net.hybridize(active=False)
    assert not net._active


def test_save_is_atomic_file(tmp_path: Path) -> None:
    net = nn.Dense(2, in_units=2)
    net.initialize()
    fname = tmp_path / "a.params"
    net.save_parameters(str(fname))
    assert fname.exists() and os.listdir(tmp_path) == ["a.params"]


def test_bad_inputs_get_clear_errors() -> None:
    layer = nn.Dense(2, in_units=2)
    layer.initialize()
    with pytest.raises(TypeError, match="requires the first argument.*NDArray"):
        layer(np.ones((1, 2)))
    with pytest.raises(TypeError, match="expected Blocks"):
        nn.Sequential().add(np.tanh)


def test_sequential_passes_multiple_outputs() -> None:
    net = nn.Sequential()
    net.add(nn.Lambda(lambda x: (x, x * 2)), nn.Lambda(lambda a, b: a + b))
    assert net(mx.nd.ones((2,))).asnumpy().tolist() == [3.0, 3.0]


def test_several_cpu_contexts_hold_independent_copies(tmp_path: Path) -> None:
    p = Parameter("w", shape=(2,), init=mx.init.One())
    p.initialize(ctx=[mx.cpu(0), mx.cpu(1)])
    assert len(p.list_data()) == 2 and len(p.list_grad()) == 2
    assert p.data(mx.cpu(1)) is p.list_data()[1]
    p.list_data()[1][:] = 3.0
    pd = ParameterDict()
    pd._params["w"] = p
    fname = str(tmp_path / "w.params")
    pd.save(fname)  # the saved value is the average over contexts
    assert serialization.load(fname)["w"].asnumpy().tolist() == [2.0, 2.0]
