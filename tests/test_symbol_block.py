"""gluon.SymbolBlock (issue 11): the LeNet exported by real MXNet 1.9.1 imported with its
parameters gives MXNet's output, fine-tunes (its gradients equal those of the same network
built from Gluon layers), deferred shapes for graphs without parameter files, auxiliary
states, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.gluon import nn
from tapegrad.symbol import SymbolError, UnknownOperatorError

EXPORTS = Path(__file__).resolve().parent / "data" / "mxnet-params" / "exports"
SYMBOL = str(EXPORTS / "lenet_export-symbol.json")
PARAMS = str(EXPORTS / "lenet_export-0000.params")
RNG = np.random.default_rng(9)


@pytest.fixture(autouse=True)
def fresh_names():
    with mx.name.NameManager():
        yield


def x_expected() -> tuple[np.ndarray, dict]:
    expected = json.loads((EXPORTS / "expected.json").read_text())["models"]["lenet_export"]
    x = np.cos(0.23 * np.arange(1568)).reshape(2, 1, 28, 28).astype(np.float32)
    return x, expected


def gluon_lenet():
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(6, kernel_size=5, activation="relu"),
        nn.MaxPool2D(2, 2),
        nn.Conv2D(16, 5, activation="relu"),
        nn.MaxPool2D(2, 2),
        nn.Flatten(),
        nn.Dense(120, activation="relu"),
        nn.Dense(84, activation="relu"),
        nn.Dense(10),
    )
    return net


def test_imports_gives_mxnets_output():
    x, expected = x_expected()
    net = gluon.SymbolBlock.imports(SYMBOL, ["data"], PARAMS)
    out = net(nd.array(x))
    np.testing.assert_allclose(out.asnumpy().ravel(), expected["output"], rtol=1e-5, atol=1e-6)
    assert sorted(net.collect_params()) == sorted(
        f"{layer}_{w}"
        for layer in ("conv0", "conv1", "dense0", "dense1", "dense2")
        for w in ("weight", "bias")
    )
    assert net.collect_params()["conv0_weight"].shape == (6, 1, 5, 5)
    # the same call with input_names as a string, and hybridize accepted
    again = gluon.SymbolBlock.imports(SYMBOL, "data", PARAMS)
    again.hybridize()
    np.testing.assert_array_equal(again(nd.array(x)).asnumpy(), out.asnumpy())
    assert "SymbolBlock" in repr(net) and "dense2_fwd" in repr(net)


def test_fine_tuning_gradients_equal_the_gluon_networks():
    x, _ = x_expected()
    y = nd.array([3, 7])
    sb = gluon.SymbolBlock.imports(SYMBOL, ["data"], PARAMS)
    ref = gluon_lenet()
    ref.initialize()
    ref(nd.array(x))
    layer_of = {"conv0": 0, "conv1": 2, "dense0": 5, "dense1": 6, "dense2": 7}
    for name, p in sb.collect_params().items():
        layer, what = name.split("_")
        getattr(ref[layer_of[layer]], what).set_data(p.data())
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for net in (sb, ref):
        with autograd.record():
            loss = loss_fn(net(nd.array(x)), y)
        loss.backward()
    for name, p in sb.collect_params().items():
        layer, what = name.split("_")
        g_ref = getattr(ref[layer_of[layer]], what).grad().asnumpy()
        assert np.abs(p.grad().asnumpy()).sum() > 0, name
        np.testing.assert_allclose(p.grad().asnumpy(), g_ref, rtol=1e-5, atol=1e-7, err_msg=name)
    # and a Trainer fine-tunes the loaded parameters
    trainer = gluon.Trainer(sb.collect_params(), "sgd", {"learning_rate": 0.1})
    before = sb.collect_params()["conv0_weight"].data().asnumpy().copy()
    losses = []
    for _ in range(4):
        with autograd.record():
            loss = loss_fn(sb(nd.array(x)), y)
        loss.backward()
        trainer.step(2)
        losses.append(float(loss.mean().asscalar()))
    assert losses[-1] < losses[0] / 2
    assert not np.array_equal(sb.collect_params()["conv0_weight"].data().asnumpy(), before)


def test_save_and_load_parameters_of_a_symbol_block(tmp_path):
    x, _ = x_expected()
    sb = gluon.SymbolBlock.imports(SYMBOL, ["data"], PARAMS)
    path = str(tmp_path / "sb.params")
    sb.save_parameters(path)
    assert "conv0_weight" in nd.load(path)
    other = gluon.SymbolBlock(mx.sym.load(SYMBOL), mx.sym.var("data"))
    other.load_parameters(path)
    np.testing.assert_array_equal(other(nd.array(x)).asnumpy(), sb(nd.array(x)).asnumpy())


def test_graph_without_parameter_file_defers_shapes_and_keeps_aux_states():
    data = mx.sym.var("data")
    h = mx.sym.Convolution(data, kernel=(3, 3), num_filter=4, name="c0")
    h = mx.sym.BatchNorm(h, fix_gamma=False, momentum=0.5, name="bn0")
    h = mx.sym.Activation(h, act_type="relu", name="r0")
    out = mx.sym.FullyConnected(h, num_hidden=3, name="fc0")
    net = gluon.SymbolBlock(out, data)
    params = net.collect_params()
    assert list(params) == [
        "c0_weight",
        "c0_bias",
        "bn0_gamma",
        "bn0_beta",
        "fc0_weight",
        "fc0_bias",
        "bn0_moving_mean",
        "bn0_moving_var",
    ]
    assert params["bn0_moving_var"].grad_req == "null"
    # as in MXNet, parameters without an __init__ attribute get the global initializer
    # (Xavier would refuse the vectors); the auxiliary states get zeros and ones
    net.initialize(mx.init.Uniform())
    x = nd.array(RNG.standard_normal((2, 2, 5, 5)))
    with autograd.record():
        y = net(x)
    assert y.shape == (2, 3)
    assert params["c0_weight"].shape == (4, 2, 3, 3)
    assert params["fc0_weight"].shape == (3, 4 * 3 * 3)
    assert params["bn0_moving_mean"].shape == (4,)
    mean = params["bn0_moving_mean"].data().asnumpy()
    assert np.abs(mean).min() > 0  # zeros, then updated in training mode
    with autograd.predict_mode():
        net(x)
    np.testing.assert_array_equal(params["bn0_moving_mean"].data().asnumpy(), mean)


def test_shapes_from_the_graph_attributes_are_kept():
    data = mx.sym.var("data")
    w = mx.sym.var("fc_weight", shape=(3, 0))
    net = gluon.SymbolBlock(mx.sym.FullyConnected(data, w, num_hidden=3, name="fc"), data)
    assert net.collect_params()["fc_weight"].shape == (3, 0)
    net.initialize()
    assert net(nd.ones((1, 5))).shape == (1, 3)
    assert net.collect_params()["fc_weight"].shape == (3, 5)


def test_errors(tmp_path):
    with pytest.raises(SymbolError, match=r"\['input'\] are not variables of the graph"):
        gluon.SymbolBlock.imports(SYMBOL, ["input"], PARAMS)
    net = gluon.SymbolBlock.imports(SYMBOL, ["data"], PARAMS)
    with pytest.raises(TypeError, match=r"1 input\(s\) \['data'\], but 2 array\(s\)"):
        net(nd.ones((1, 1, 28, 28)), nd.ones((1, 1, 28, 28)))
    with pytest.raises(mx.base.ShapeError, match=r"Symbol node 'conv0_fwd' \(Convolution\)"):
        net(nd.ones((1, 3, 28, 28)))
    # a graph with an operator tapegrad does not have
    graph = json.loads(Path(SYMBOL).read_text())
    graph["nodes"][4]["op"] = "_contrib_quantized_act"
    bad = tmp_path / "bad-symbol.json"
    bad.write_text(json.dumps(graph))
    with pytest.raises(UnknownOperatorError, match=r"'conv0_relu_fwd' uses the operator "):
        gluon.SymbolBlock.imports(str(bad), ["data"], PARAMS)
    # parameters missing from the file
    params = nd.load(PARAMS)
    del params["arg:dense2_bias"]
    short = str(tmp_path / "short.params")
    nd.save(short, params)
    with pytest.raises(mx.gluon.parameter.ParameterLoadError, match="dense2_bias"):
        gluon.SymbolBlock.imports(SYMBOL, ["data"], short)
    # a parameter whose shape nothing determines
    data, scale = mx.sym.var("data"), mx.sym.var("scale")
    block = gluon.SymbolBlock(mx.sym.broadcast_mul(data, scale), data)
    block.initialize()
    with pytest.raises(mx.base.ShapeError, match=r"cannot infer the shape of \['scale'\]"):
        block(nd.ones((2, 2)))
    assert block.collect_params()["scale"].shape is None  # still deferred
    with pytest.raises(SymbolError, match="inputs must be variables"):
        gluon.SymbolBlock(data + 1.0, [data + 1.0])


def test_parameters_shared_with_a_gluon_block():
    dense = nn.Dense(3, in_units=4, prefix="fc_", weight_initializer=mx.init.Xavier())
    dense.initialize()
    data = mx.sym.var("data")
    w = mx.sym.var("fc_weight", init=mx.init.Xavier())  # another initializer object: no clash
    out = mx.sym.FullyConnected(data, w, num_hidden=3, name="fc")
    net = gluon.SymbolBlock(out, data, params=dense.collect_params())
    assert net.collect_params()["fc_weight"] is dense.weight
    x = nd.array(RNG.standard_normal((2, 4)))
    np.testing.assert_allclose(net(x).asnumpy(), dense(x).asnumpy(), rtol=1e-6)


def test_symbol_block_is_also_in_gluon_nn_as_in_mxnet():
    # MXNet 1.9.1's gluon/nn re-exports block's __all__ (Block, HybridBlock, SymbolBlock);
    # its save/load tutorial calls gluon.nn.SymbolBlock.imports
    assert mx.gluon.nn.SymbolBlock is mx.gluon.SymbolBlock
    assert "SymbolBlock" in mx.gluon.nn.__all__
