"""HybridBlock.hybridize(): every layer, loss and demo network compiled gives the eager
results and gradients, derivatives of any order go through it, it retraces when it must,
falls back with a warning when it cannot trace, and export writes MXNet's files."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from opspec import check_order

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad import functional as F
from tapegrad.gluon import nn, rnn

RNG = np.random.default_rng(0)
SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mxnet-params"
LOCAL = pathlib.Path(__file__).parent / "data" / "mxnet-params"


def _fixture(*parts: str) -> pathlib.Path:
    p = LOCAL.joinpath(*parts)
    return p if p.exists() else SHARED.joinpath(*parts)


LAYERS = {
    "Dense": (lambda: nn.Dense(4, activation="tanh"), (3, 5)),
    "Dense no flatten": (lambda: nn.Dense(4, flatten=False), (2, 3, 5)),
    "Conv2D": (lambda: nn.Conv2D(3, kernel_size=3, padding=1, activation="relu"), (2, 2, 6, 6)),
    "Conv1D strided": (lambda: nn.Conv1D(2, kernel_size=3, strides=2), (2, 3, 9)),
    "Conv2DTranspose": (lambda: nn.Conv2DTranspose(2, kernel_size=3, strides=2), (1, 2, 4, 4)),
    "MaxPool2D": (lambda: nn.MaxPool2D(2), (2, 3, 6, 6)),
    "AvgPool2D": (lambda: nn.AvgPool2D(3, strides=2, padding=1), (2, 3, 7, 7)),
    "GlobalAvgPool2D": (lambda: nn.GlobalAvgPool2D(), (2, 3, 4, 4)),
    "BatchNorm": (lambda: nn.BatchNorm(), (4, 3, 2, 2)),
    "LayerNorm": (lambda: nn.LayerNorm(), (3, 6)),
    "InstanceNorm": (lambda: nn.InstanceNorm(), (2, 3, 5)),
    "GroupNorm": (lambda: nn.GroupNorm(num_groups=2), (2, 4, 3, 3)),
    "Embedding": (lambda: nn.Embedding(10, 4), None),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.1), (3, 4)),
    "PReLU": (lambda: nn.PReLU(), (3, 4)),
    "ELU": (lambda: nn.ELU(), (3, 4)),
    "Swish": (lambda: nn.Swish(), (3, 4)),
    "Flatten": (lambda: nn.Flatten(), (2, 3, 4)),
    "PixelShuffle2D": (lambda: nn.PixelShuffle2D(2), (1, 8, 3, 3)),
    "LSTM": (lambda: rnn.LSTM(5, num_layers=2), (4, 2, 3)),
    "GRU bidirectional": (lambda: rnn.GRU(4, bidirectional=True), (3, 2, 3)),
}


def _input(shape):
    if shape is None:
        return nd.array(RNG.integers(0, 10, size=(2, 5)))
    return nd.array(RNG.normal(size=shape))


def _run(block, x, train=True):
    with autograd.record(train_mode=train):
        out = block(x)
        out = out[0] if isinstance(out, (list, tuple)) else out
        loss = (out * out).sum()
    loss.backward()
    grads = {k: p.grad().asnumpy().copy() for k, p in block.collect_params().items()
             if p.grad_req != "null"}  # fmt: skip
    xg = None if x.grad is None else x.grad.asnumpy().copy()
    return out.asnumpy(), grads, xg


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_hybridized_gives_the_eager_results_and_gradients(name):
    make, shape = LAYERS[name]
    x = _input(shape)
    if shape is not None:
        x.attach_grad()
    eager = make()
    eager.initialize(mx.init.Xavier())
    eager(x)  # deferred shapes
    hyb = make()
    hyb.initialize()
    hyb(x)
    for p, q in zip(eager.collect_params().values(), hyb.collect_params().values()):
        q.set_data(p.data())
    hyb.hybridize()
    for _ in range(3):  # traced, then compiled
        a, b = _run(eager, x), _run(hyb, x)
        np.testing.assert_allclose(b[0], a[0], rtol=1e-5, atol=1e-6)
        for ga, gb in zip(a[1].values(), b[1].values()):
            np.testing.assert_allclose(gb, ga, rtol=1e-4, atol=1e-5)
        if a[2] is not None:
            np.testing.assert_allclose(b[2], a[2], rtol=1e-4, atol=1e-5)
    assert hyb._compiled is not None and hyb._compiled.plans


def test_batchnorm_statistics_match_eager_after_several_steps():
    nets = []
    for _ in range(2):
        net = nn.HybridSequential()
        net.add(nn.Conv2D(4, 3), nn.BatchNorm(), nn.Activation("relu"))
        net.initialize(mx.init.One())
        nets.append(net)
    nets[1].hybridize()
    for _ in range(5):
        x = nd.array(RNG.normal(size=(4, 2, 5, 5)))
        for net in nets:
            with autograd.record():
                y = net(x).sum()
            y.backward()
    (ea, ha) = [net[1].running_mean.data().asnumpy() for net in nets]
    (ev, hv) = [net[1].running_var.data().asnumpy() for net in nets]
    np.testing.assert_allclose(ha, ea, rtol=1e-6)
    np.testing.assert_allclose(hv, ev, rtol=1e-6)
    assert np.abs(ea).sum() > 0  # the statistics did move
    # predict mode uses them, compiled and eager alike
    x = nd.array(RNG.normal(size=(2, 2, 5, 5)))
    np.testing.assert_allclose(nets[1](x).asnumpy(), nets[0](x).asnumpy(), rtol=1e-5)


def _lenet():
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


def test_a_hybridized_lenet_trains_like_the_eager_one():
    nets = [_lenet(), _lenet()]
    x = nd.array(RNG.random((8, 1, 28, 28)))
    y = nd.array(RNG.integers(0, 10, size=8))
    for net in nets:
        net.initialize(mx.init.Xavier())
        net(x)
    for p, q in zip(nets[0].collect_params().values(), nets[1].collect_params().values()):
        q.set_data(p.data())
    nets[1].hybridize()
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    trainers = [gluon.Trainer(n.collect_params(), "sgd", {"learning_rate": 0.1}) for n in nets]
    for _ in range(4):
        for net, tr in zip(nets, trainers):
            with autograd.record():
                ls = loss(net(x), y)
            ls.backward()
            tr.step(8)
    for p, q in zip(nets[0].collect_params().values(), nets[1].collect_params().values()):
        np.testing.assert_allclose(q.data().asnumpy(), p.data().asnumpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("order", [1, 2])
def test_input_derivatives_through_a_hybridized_block_against_finite_differences(order):
    net = nn.HybridSequential()
    net.add(nn.Dense(5, activation="tanh", dtype="float64"), nn.Dense(2, dtype="float64"))
    net.initialize()
    net(nd.zeros((1, 3), dtype="float64"))
    net.hybridize()
    check_order(lambda x: net(x), [RNG.normal(size=(2, 3))], order, np.random.default_rng(order))


def test_sciml_and_hvp_on_a_hybridized_network():
    from tapegrad.sciml import derivative

    net = nn.HybridSequential()
    net.add(nn.Dense(8, activation="tanh", dtype="float64"), nn.Dense(1, dtype="float64"))
    net.initialize()
    pts = nd.array(RNG.uniform(-1, 1, (5, 1)), dtype="float64")
    eager = derivative(net, pts, order=2).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(derivative(net, pts, order=2).asnumpy(), eager, rtol=1e-10)
    f, params = F.param_function(net)
    v = [nd.ones_like(p) for p in params]
    hv = F.hvp(lambda *ps: f(*ps, pts).sum(), params, v)
    net.hybridize(active=False)
    ref = F.hvp(lambda *ps: f(*ps, pts).sum(), params, v)
    for a, b in zip(hv, ref):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-9)


def test_retrace_on_shape_mode_and_grad_req_change():
    net = nn.HybridSequential()
    net.add(nn.Dense(3), nn.Dropout(0.5))
    net.initialize()
    net.hybridize()
    net(nd.ones((2, 4)))
    net(nd.ones((2, 4)))
    assert len(net._compiled.plans) == 1
    net(nd.ones((5, 4)))
    assert len(net._compiled.plans) == 2
    with autograd.record():  # training mode: another plan (Dropout active)
        net(nd.ones((5, 4)))
    assert len(net._compiled.plans) == 3
    # grad_req: the same plan, the gradient goes where the new setting says
    net[0].weight.grad_req = "null"
    x = nd.ones((5, 4))
    x.attach_grad()
    with autograd.record(train_mode=False):
        net(x).sum().backward()
    assert net[0].weight.grad_req == "null" and np.abs(x.grad.asnumpy()).sum() > 0


def test_dropout_masks_differ_between_compiled_calls():
    net = nn.HybridSequential()
    net.add(nn.Dropout(0.5))
    net.initialize()
    net.hybridize()
    x = nd.ones((50, 20))
    with autograd.train_mode():
        a = net(x).asnumpy()
        b = net(x).asnumpy()
    assert set(np.unique(a)) <= {0.0, 2.0} and (a != b).any()
    x.attach_grad()
    with autograd.record():
        y = net(x)
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), y.asnumpy())  # the same mask


class _Branchy(gluon.HybridBlock):
    def hybrid_forward(self, F, x):
        if x.sum() > 0:  # data-dependent control flow
            return x * 2
        return x


def test_data_dependent_control_flow_runs_eagerly_with_a_warning():
    blk = _Branchy()
    blk.hybridize()
    with pytest.warns(RuntimeWarning, match="runs eagerly.*test_hybridize.py"):
        assert blk(nd.array([1.0])).asnumpy().tolist() == [2.0]
    assert blk(nd.array([-1.0])).asnumpy().tolist() == [-1.0]


def test_export_writes_mxnets_graph_and_symbolblock_loads_it(tmp_path):
    with gluon.block.NameManager():
        net = _lenet()
    net.initialize(mx.init.Xavier())
    x = nd.array(np.cos(0.23 * np.arange(1568)).reshape(2, 1, 28, 28))
    y = net(x).asnumpy()
    net.hybridize()
    net(x)
    net.export(str(tmp_path / "lenet"), epoch=3)
    ours = json.loads((tmp_path / "lenet-symbol.json").read_text())
    mxnet = json.loads(_fixture("exports", "lenet_export-symbol.json").read_text())
    # node for node as MXNet 1.9.1 exports the same network
    assert [n["name"] for n in ours["nodes"]] == [n["name"] for n in mxnet["nodes"]]
    for a, b in zip(ours["nodes"], mxnet["nodes"]):
        assert a["op"] == b["op"]
        if a["op"] != "null":
            assert a.get("attrs") == b.get("attrs"), a["name"]
    assert ours["heads"] == mxnet["heads"] and ours["arg_nodes"] == mxnet["arg_nodes"]
    names = sorted(nd.load(str(tmp_path / "lenet-0003.params")))
    assert names[0].startswith("arg:conv0_") and len(names) == 10
    sb = gluon.SymbolBlock.imports(
        str(tmp_path / "lenet-symbol.json"), ["data"], str(tmp_path / "lenet-0003.params")
    )
    np.testing.assert_allclose(sb(x).asnumpy(), y, rtol=1e-6)


def test_symbol_api_of_the_hybridize_tutorial():
    net = nn.HybridSequential()
    net.add(nn.Dense(8, activation="relu"), nn.Dense(2))
    net.initialize()
    data = mx.sym.var("data")
    out = net(data)
    args = out.list_arguments()
    assert args[0] == "data" and len(args) == 5 and out.list_outputs()[0].endswith("_output")
    assert json.loads(out.tojson())["nodes"][-1]["op"] == "FullyConnected"
    arg_shapes, out_shapes, aux = out.infer_shape(data=(3, 4))
    assert arg_shapes == [(3, 4), (8, 4), (8,), (2, 8), (2,)] and out_shapes == [(3, 2)]


def test_two_threads_train_through_one_hybridized_block():
    net = nn.HybridSequential()
    net.add(nn.Dense(6, activation="tanh"), nn.Dense(2))
    net.initialize(mx.init.Xavier())
    xs = [nd.array(RNG.normal(size=(4, 3))) for _ in range(2)]
    ref = []
    for x in xs:  # eager gradients of the input, one per thread's data
        x.attach_grad()
        with autograd.record():
            y = (net(x) ** 2).sum()
        y.backward()
        ref.append(x.grad.asnumpy().copy())
    net.hybridize()
    errors = []

    def work(k):
        try:
            for _ in range(30):
                x = xs[k].copy()
                x.attach_grad()
                with autograd.record():
                    y = (net(x) ** 2).sum()
                y.backward()
                np.testing.assert_allclose(x.grad.asnumpy(), ref[k], rtol=1e-5, atol=1e-6)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    import threading

    ts = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert len(net._compiled.plans) == 1


def test_a_hybridized_block_stops_tracing_after_max_traces_shapes_and_says_so_once():
    from tapegrad.trace import MAX_TRACES

    net = nn.Dense(2, in_units=3)
    net.initialize()
    net.hybridize()
    with pytest.warns(RuntimeWarning, match="runs eagerly from now on") as rec:
        for n in range(1, MAX_TRACES + 4):
            x = nd.ones((n, 3))
            np.testing.assert_allclose(net(x).asnumpy(), nd.dot(x, net.weight.data().T).asnumpy()
                                       + net.bias.data().asnumpy())  # fmt: skip
    assert len([w for w in rec if "runs eagerly" in str(w.message)]) == 1
    assert len(net._compiled.plans) == MAX_TRACES
