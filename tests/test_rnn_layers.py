"""gluon.rnn's layers (RNN, LSTM, GRU) and nd.RNN: MXNet 1.9's results (a checkpoint written
by MXNet and its output), its equations (an independent NumPy reference), its parameter names
in memory and in files, derivatives of every order, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rnn_reference import stack as reference

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.base import ShapeError
from tapegrad.gluon import nn, rnn
from tapegrad.ndarray.rnn_ops import ArgumentValueError

MXNET_DIR = Path(__file__).resolve().parent / "data" / "mxnet-params" / "cnn_rnn"
LAYERS = {"lstm": rnn.LSTM, "gru": rnn.GRU, "rnn_tanh": rnn.RNN, "rnn_relu": rnn.RNN}


def make(mode, hidden=4, layers=2, bidirectional=False, input_size=3, seed=0, **kw):
    """A float64 layer with random weights and biases; also the weights in the reference's
    order (layer by layer, direction by direction: i2h, h2h weights and biases, h2r)."""
    if mode.startswith("rnn_"):
        kw["activation"] = mode[4:]
    layer = LAYERS[mode](
        hidden,
        num_layers=layers,
        bidirectional=bidirectional,
        input_size=input_size,
        dtype="float64",
        **kw,
    )
    layer.initialize()
    rng = np.random.default_rng(seed)
    weights = []
    for i in range(layers):
        for d in "lr"[: 2 if bidirectional else 1]:
            w = []
            for slot in ("i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias", "h2r_weight"):
                p = getattr(layer, f"{d}{i}_{slot}", None)
                if p is None:
                    w.append(None)
                    continue
                v = rng.uniform(-0.6, 0.6, size=p.shape)
                p.set_data(nd.array(v, dtype="float64"))
                w.append(v)
            weights.append(w)
    return layer, weights


def states_for(layer, batch, seed=1):
    rng = np.random.default_rng(seed)
    return [
        nd.array(rng.uniform(-0.5, 0.5, size=info["shape"]), dtype="float64")
        for info in layer.state_info(batch)
    ]


# ---------------------------------------------------------------- MXNet's own numbers


class LSTMLM(gluon.Block):
    """The network MXNet 1.9.1 saved in lstm_lm.params (see data/mxnet-params/README.md)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.embed = nn.Embedding(50, 16)
            self.lstm = rnn.LSTM(32, num_layers=2, layout="TNC", input_size=16)
            self.out = nn.Dense(50, flatten=False, in_units=32)

    def forward(self, x):
        return self.out(self.lstm(self.embed(x)))


def test_lstm_checkpoint_written_by_mxnet_loads_and_gives_mxnet_output():
    ref = json.loads((MXNET_DIR / "expected.json").read_text())["nets"]["lstm_lm"]
    net = LSTMLM()
    net.load_parameters(str(MXNET_DIR / "lstm_lm.params"))
    # the file's keys are MXNet's _unfused ones, and every array landed where it belongs
    params = net._collect_params_with_prefix()
    assert set(params) == set(ref["params"])
    for key, want in ref["params"].items():
        value = params[key].data().asnumpy()
        assert list(value.shape) == want["shape"], key
        np.testing.assert_allclose(value.sum(), want["sum"], rtol=1e-5, atol=1e-6, err_msg=key)
        np.testing.assert_allclose(value.reshape(-1)[:3], want["first"], rtol=1e-6, err_msg=key)
    x = nd.array((np.arange(15) * 7919 % 50).reshape(ref["input_shape"]))
    out = net(x).asnumpy()
    expected = np.array(ref["output"], dtype=np.float32).reshape(ref["output_shape"])
    assert out.shape == expected.shape
    # MXNet's float32 output: differences are rounding (a wrong gate order is off by 1e-2)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_save_parameters_writes_mxnet_keys_and_loads_back(tmp_path):
    net = LSTMLM()
    net.initialize()
    x = nd.array((np.arange(15) * 31 % 50).reshape(5, 3))
    before = net(x).asnumpy()
    path = str(tmp_path / "lm.params")
    net.save_parameters(path)
    keys = set(nd.load(path))
    assert "lstm._unfused.0.i2h_weight" in keys and "lstm._unfused.1.h2h_bias" in keys
    assert not any("l0_" in k for k in keys)
    other = LSTMLM()
    other.load_parameters(path)
    np.testing.assert_array_equal(other(x).asnumpy(), before)


def test_bidirectional_file_keys_and_collect_params_names(tmp_path):
    with gluon.block.NameManager():
        layer = rnn.GRU(3, num_layers=2, bidirectional=True, input_size=2)
    names = sorted(layer.collect_params())
    assert names[:2] == ["gru0_l0_h2h_bias", "gru0_l0_h2h_weight"]
    assert names[2:4] == ["gru0_l0_i2h_bias", "gru0_l0_i2h_weight"]
    assert "gru0_r1_i2h_weight" in names and len(names) == 16
    assert layer.r1_i2h_weight.shape == (9, 6)  # 3 gates x 3; input: both directions of layer 0
    layer.initialize()
    path = str(tmp_path / "gru.params")
    layer.save_parameters(path)
    keys = sorted(nd.load(path))
    assert "_unfused.0.l_cell.i2h_weight" in keys and "_unfused.1.r_cell.h2h_bias" in keys
    assert len(keys) == 16
    again = rnn.GRU(3, num_layers=2, bidirectional=True, input_size=2)
    again.load_parameters(path)
    got, want = again.r1_h2h_weight.data(), layer.r1_h2h_weight.data()
    np.testing.assert_array_equal(got.asnumpy(), want.asnumpy())


# ---------------------------------------------------------------- MXNet's equations


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_layer_matches_the_equations(mode, bidirectional):
    layer, weights = make(mode, bidirectional=bidirectional)
    x = np.random.default_rng(5).uniform(-1, 1, size=(5, 2, 3))
    states = states_for(layer, 2)
    out, new = layer(nd.array(x, dtype="float64"), states)
    c0 = states[1].asnumpy() if mode == "lstm" else None
    ref, h_n, c_n = reference(mode, x, weights, states[0].asnumpy(), c0, 2, bidirectional)
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new[0].asnumpy(), h_n, rtol=1e-10, atol=1e-12)
    if mode == "lstm":
        np.testing.assert_allclose(new[1].asnumpy(), c_n, rtol=1e-10, atol=1e-12)
    assert len(new) == (2 if mode == "lstm" else 1)


def test_ntc_layout_is_the_transpose_and_default_states_are_zeros():
    layer, weights = make("lstm", layout="NTC")
    x = np.random.default_rng(2).uniform(-1, 1, size=(2, 6, 3))  # batch, time, features
    out = layer(nd.array(x, dtype="float64"))  # no states: zeros, and only the output
    assert isinstance(out, nd.NDArray) and out.shape == (2, 6, 4)
    zeros = np.zeros((2, 2, 4))
    ref, _, _ = reference("lstm", x.transpose(1, 0, 2), weights, zeros, zeros, 2, False)
    np.testing.assert_allclose(out.asnumpy(), ref.transpose(1, 0, 2), rtol=1e-10, atol=1e-12)


def test_projection_and_state_clipping_follow_the_equations():
    layer, weights = make("lstm", projection_size=2, state_clip_min=-0.3, state_clip_max=0.25)
    assert layer.l0_h2r_weight.shape == (2, 4) and layer.l1_i2h_weight.shape == (16, 2)
    x = np.random.default_rng(3).uniform(-2, 2, size=(4, 3, 3))
    states = states_for(layer, 3)
    assert [s.shape for s in states] == [(2, 3, 2), (2, 3, 4)]
    out, (h, c) = layer(nd.array(x, dtype="float64"), states)
    ref, h_n, c_n = reference(
        "lstm", x, weights, states[0].asnumpy(), states[1].asnumpy(), 2, False, clip=(-0.3, 0.25)
    )
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c.asnumpy(), c_n, rtol=1e-10, atol=1e-12)
    assert c.asnumpy().max() <= 0.25 and c.asnumpy().min() >= -0.3


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_sequence_length_reads_each_sequence_to_its_end(mode):
    layer, weights = make(mode, bidirectional=True, use_sequence_length=True)
    x = np.random.default_rng(4).uniform(-1, 1, size=(5, 3, 3))
    lengths = np.array([5, 2, 3])
    states = states_for(layer, 3)
    out, new = layer(nd.array(x, dtype="float64"), states, nd.array(lengths))
    c0 = states[1].asnumpy() if mode == "lstm" else None
    ref, h_n, _ = reference(mode, x, weights, states[0].asnumpy(), c0, 2, True, lengths=lengths)
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new[0].asnumpy(), h_n, rtol=1e-10, atol=1e-12)
    assert np.all(out.asnumpy()[2:, 1] == 0)  # past the second sequence's end


def test_nd_rnn_reads_mxnets_flat_parameter_vector():
    layer, weights = make("lstm", bidirectional=True)
    params = flat_params(weights)
    x = nd.array(np.random.default_rng(6).uniform(-1, 1, size=(4, 2, 3)), dtype="float64")
    h0, c0 = states_for(layer, 2)
    out, h, c = nd.RNN(
        x, params, h0, c0, state_size=4, num_layers=2, bidirectional=True, mode="lstm",
        state_outputs=True,
    )  # fmt: skip
    want_out, (want_h, want_c) = layer(x, [h0, c0])
    np.testing.assert_allclose(out.asnumpy(), want_out.asnumpy(), rtol=1e-12)
    np.testing.assert_allclose(h.asnumpy(), want_h.asnumpy(), rtol=1e-12)
    np.testing.assert_allclose(c.asnumpy(), want_c.asnumpy(), rtol=1e-12)
    only = nd.RNN(x, params, h0, c0, state_size=4, num_layers=2, bidirectional=True, mode="lstm")
    np.testing.assert_array_equal(only.asnumpy(), out.asnumpy())
    # the gradient reaches every element of the flat vector
    params.attach_grad()
    with autograd.record():
        y = nd.RNN(x, params, h0, c0, state_size=4, num_layers=2, bidirectional=True, mode="lstm")
    y.backward()
    assert np.count_nonzero(params.grad.asnumpy()) == params.size


def test_nd_rnn_gru_takes_sequence_length_in_the_fourth_position():
    layer, weights = make("gru", layers=1, use_sequence_length=True)
    x = nd.array(np.random.default_rng(7).uniform(-1, 1, size=(4, 2, 3)), dtype="float64")
    (h0,) = states_for(layer, 2)
    lengths = nd.array([4, 2])
    out = nd.RNN(
        x, flat_params(weights), h0, lengths, state_size=4, num_layers=1,
        mode="gru", use_sequence_length=True,
    )  # fmt: skip
    want, _ = layer(x, [h0], lengths)
    np.testing.assert_allclose(out.asnumpy(), want.asnumpy(), rtol=1e-12)


# ---------------------------------------------------------------- training behaviour


def test_dropout_between_layers_only_in_training():
    mx.random.seed(0)
    layer = rnn.LSTM(8, num_layers=2, dropout=0.5, input_size=3)
    layer.initialize()
    x = nd.random.uniform(shape=(6, 4, 3))
    a, b = layer(x), layer(x)
    np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())  # predict mode: deterministic
    with autograd.train_mode():
        c = layer(x)
    assert not np.allclose(c.asnumpy(), a.asnumpy())
    one = rnn.LSTM(8, num_layers=1, dropout=0.5, input_size=3)
    one.initialize()
    with autograd.train_mode():  # no layer after the only one: no dropout
        np.testing.assert_array_equal(one(x).asnumpy(), one(x).asnumpy())


def test_deferred_input_size_and_repr():
    layer = rnn.LSTM(5, num_layers=2, bidirectional=True)
    assert layer.l0_i2h_weight.shape == (20, 0)
    assert repr(layer) == "LSTM(None -> 5, TNC, num_layers=2, bidirectional)"
    layer.initialize()
    out = layer(nd.ones((3, 2, 7)))
    assert out.shape == (3, 2, 10)
    assert layer.l0_i2h_weight.shape == (20, 7) and layer.r0_i2h_weight.shape == (20, 7)
    assert layer.l1_i2h_weight.shape == (20, 10)
    assert repr(layer) == "LSTM(7 -> 5, TNC, num_layers=2, bidirectional)"
    assert repr(rnn.GRU(3, dropout=0.2)) == "GRU(None -> 3, TNC, dropout=0.2)"


def test_begin_state_shapes_and_dtype():
    layer = rnn.LSTM(6, num_layers=3, bidirectional=True, projection_size=4)
    h, c = layer.begin_state(batch_size=5)
    assert h.shape == (6, 5, 4) and c.shape == (6, 5, 6) and h.dtype == np.float32
    (g,) = rnn.GRU(3).begin_state(2, dtype="float64")
    assert g.shape == (1, 2, 3) and g.dtype == np.float64
    (u,) = rnn.RNN(3).begin_state(2, func=nd.ones)
    assert u.asnumpy().sum() == 6


def test_hidden_state_carried_across_record_blocks_acts_as_a_constant():
    # truncated backpropagation through time, MXNet's way: the state from the previous
    # block is not detached, and the second backward treats it as a constant
    layer, _ = make("lstm", layers=1)
    x = nd.array(np.random.default_rng(8).uniform(-1, 1, size=(3, 2, 3)), dtype="float64")
    states = states_for(layer, 2)
    with autograd.record():
        out, states = layer(x, states)
        loss = out.sum()
    loss.backward()
    w = layer.l0_h2h_weight
    with autograd.record():
        out2, _ = layer(x, states)
        loss = out2.sum()
    loss.backward()
    carried = w.grad().asnumpy().copy()
    with autograd.record():
        out3, _ = layer(x, [s.detach() for s in states])
        loss = out3.sum()
    loss.backward()
    np.testing.assert_allclose(carried, w.grad().asnumpy(), rtol=1e-12)


# ---------------------------------------------------------------- derivatives


def flat_params(weights):
    """MXNet's flat parameter vector (gluon's _rnn_param_concat order): every weight layer by
    layer and direction by direction (i2h, h2h, h2r), then every bias (i2h, h2h)."""
    parts = [w[j].reshape(-1) for w in weights for j in (0, 1, 4) if w[j] is not None]
    parts += [w[j].reshape(-1) for w in weights for j in (2, 3)]
    return nd.array(np.concatenate(parts), dtype="float64")


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_gradients_match_finite_differences(mode):
    layer, weights = make(mode, hidden=3, layers=2, bidirectional=True, input_size=2)
    params = flat_params(weights)
    x = nd.array(np.random.default_rng(9).uniform(-1, 1, size=(3, 2, 2)), dtype="float64")
    states = states_for(layer, 2)

    def f(p, x, *states):
        out = nd.RNN(
            x, p, *states, state_size=3, num_layers=2, bidirectional=True, mode=mode,
            state_outputs=True,
        )  # fmt: skip
        return tuple(out)

    # weights, biases, input and initial states; every output (sequence and final states)
    assert mx.gradcheck(f, [params, x, *states])


def test_second_and_third_derivatives_through_nd_rnn():
    layer, weights = make("lstm", hidden=2, layers=1, input_size=2)
    params = flat_params(weights)
    x = nd.array(np.random.default_rng(10).uniform(-1, 1, size=(3, 2, 2)), dtype="float64")
    h0, c0 = states_for(layer, 2)

    def f(p, x):
        return nd.RNN(x, p, h0, c0, state_size=2, num_layers=1, mode="lstm")

    assert mx.gradcheck(f, [params, x], order=3, n_directions=2)


def test_hessian_vector_product_methods_agree_through_a_gru():
    from tapegrad import functional as F

    layer, weights = make("gru", hidden=3, layers=1, input_size=2)
    params = flat_params(weights)
    x = nd.array(np.random.default_rng(11).uniform(-1, 1, size=(4, 2, 2)), dtype="float64")
    (h0,) = states_for(layer, 2)

    def loss(p):
        out = nd.RNN(x, p, h0, state_size=3, num_layers=1, mode="gru")
        return (out * out).sum()

    v = nd.array(np.random.default_rng(12).standard_normal(params.shape), dtype="float64")
    methods = ("rev-fwd", "fwd-rev", "rev-rev")  # Taylor mode, forward and reverse over reverse
    results = [F.hvp(loss, (params,), (v,), method=m)[0].asnumpy() for m in methods]
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=1e-9, atol=1e-11)
    # and against finite differences of the gradient
    eps = 1e-6
    g = lambda p: F.grad(loss)(p).asnumpy()  # noqa: E731
    fd = (g(params + eps * v) - g(params - eps * v)) / (2 * eps)
    np.testing.assert_allclose(results[0], fd, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- bad input


def test_bad_settings_raise_before_the_layer_exists():
    with pytest.raises(ArgumentValueError, match="LSTM: invalid layout 'CNT'.*Fix"):
        rnn.LSTM(3, layout="CNT")
    with pytest.raises(ArgumentValueError, match="state_clip_min=-1 and state_clip_max=None"):
        rnn.LSTM(3, state_clip_min=-1)
    with pytest.raises(ArgumentValueError, match=r"projection_size=5 must be in \[1, state_size=3"):
        rnn.LSTM(3, projection_size=5)
    with pytest.raises(ArgumentValueError, match="RNN: activation must be 'relu' or 'tanh'"):
        rnn.RNN(3, activation="sigmoid")
    with pytest.raises(ArgumentValueError, match="dropout p=1.5"):
        rnn.GRU(3, dropout=1.5)
    with pytest.raises(ArgumentValueError, match="num_layers must be a positive integer, got 0"):
        rnn.GRU(3, num_layers=0)


def test_bad_inputs_name_the_layer_the_shapes_and_the_fix():
    layer = rnn.LSTM(4, num_layers=2, input_size=3)
    layer.initialize()
    with pytest.raises(ShapeError, match=r"LSTM '.*': the input has shape \(5, 3\).*3 axes"):
        layer(nd.ones((5, 3)))
    with pytest.raises(ShapeError, match="the input has 7 features.*built for 3.*input_size=7"):
        layer(nd.ones((5, 2, 7)))
    with pytest.raises(ShapeError, match=r"state \(h\) shape \(2, 3, 4\), expecting \(2, 2, 4\)"):
        layer(nd.ones((5, 2, 3)), [nd.zeros((2, 3, 4)), nd.zeros((2, 2, 4))])
    with pytest.raises(
        ArgumentValueError, match=r"expected 2 state array\(s\) \(\[h, c\]\), got 1"
    ):
        layer(nd.ones((5, 2, 3)), [nd.zeros((2, 2, 4))])
    with pytest.raises(TypeError, match="the input must be an NDArray, got list"):
        layer([[1.0]])
    with pytest.raises(ArgumentValueError, match="without use_sequence_length=True"):
        layer(nd.ones((5, 2, 3)), None, nd.array([5, 5]))
    seq = rnn.GRU(4, input_size=3, use_sequence_length=True)
    seq.initialize()
    with pytest.raises(ArgumentValueError, match=r"sequence_length\[1\] = 6.0 is outside \[1, 5\]"):
        seq(nd.ones((5, 2, 3)), None, nd.array([5, 6]))
    # a failed first call leaves a deferred layer deferred (nothing half-initialized)
    lazy = rnn.LSTM(4)
    lazy.initialize()
    with pytest.raises(ShapeError):
        lazy(nd.ones((5, 3)))
    assert lazy.l0_i2h_weight.shape == (16, 0)


def test_nd_rnn_bad_arguments():
    x = nd.ones((3, 2, 4))
    h = nd.zeros((1, 2, 5))
    with pytest.raises(ShapeError, match="parameters has 10 elements, but mode='gru'.*needs 165"):
        nd.RNN(x, nd.zeros(10), h, state_size=5, num_layers=1, mode="gru")
    with pytest.raises(ArgumentValueError, match="unknown mode 'lstmp'"):
        nd.RNN(x, nd.zeros(10), h, state_size=5, num_layers=1, mode="lstmp")
    with pytest.raises(ArgumentValueError, match="mode='lstm' needs state_cell"):
        nd.RNN(x, nd.zeros(10), h, state_size=5, num_layers=1, mode="lstm")
    with pytest.raises(ShapeError, match="data must be a 3-D NDArray"):
        nd.RNN(nd.ones((3, 4)), nd.zeros(10), h, state_size=5, num_layers=1, mode="gru")


def test_compiled_recurrent_network_gives_the_eager_values_and_derivatives():
    from tapegrad import functional as F

    layer, _ = make("lstm", hidden=3, layers=2, bidirectional=True, input_size=2)
    x = nd.array(np.random.default_rng(13).uniform(-1, 1, size=(4, 2, 2)), dtype="float64")

    def f(x):
        return (layer(x) ** 3).sum()

    compiled = mx.jit(f)
    for _ in range(2):  # the traced call, then the compiled one
        np.testing.assert_allclose(compiled(x).asnumpy(), f(x).asnumpy(), rtol=1e-12)
        np.testing.assert_allclose(
            F.grad(compiled)(x).asnumpy(), F.grad(f)(x).asnumpy(), rtol=1e-12
        )
    v = nd.ones_like(x)
    np.testing.assert_allclose(
        F.hvp(compiled, (x,), (v,))[0].asnumpy(), F.hvp(f, (x,), (v,))[0].asnumpy(), rtol=1e-10
    )
