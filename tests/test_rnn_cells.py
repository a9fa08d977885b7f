"""gluon.rnn's cells: one step against MXNet's equations, unroll (layouts, merged or listed
outputs, valid_length), the containers and modifiers, the cells' agreement with the fused
layers whose parameters they share, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from rnn_reference import stack as ref_stack
from rnn_reference import step as ref_step

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.base import ShapeError
from tapegrad.gluon import rnn
from tapegrad.gluon.rnn.rnn_cell import ModifiedCellError
from tapegrad.ndarray.rnn_ops import ArgumentValueError

CELLS = {"lstm": rnn.LSTMCell, "gru": rnn.GRUCell, "rnn_tanh": rnn.RNNCell}


def f64(a):
    return nd.array(a, dtype="float64")


def randomize(cell, seed=0):
    """Random float64 values for every parameter of ``cell``; returns them by name."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, p in sorted(cell.collect_params().items()):
        v = rng.uniform(-0.6, 0.6, size=p.shape)
        p.set_data(f64(v))
        out[name[len(cell.prefix) :]] = v
    return out


def make_cell(mode, hidden=4, input_size=3, seed=0, **kw):
    cell = CELLS[mode](hidden, input_size=input_size, **kw)
    cell.initialize()
    cell.cast("float64")
    w = randomize(cell, seed)
    return cell, (w["i2h_weight"], w["h2h_weight"], w["i2h_bias"], w["h2h_bias"], None)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_one_step_matches_the_equations(mode):
    cell, w = make_cell(mode)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(2, 3))
    states = [rng.uniform(-1, 1, size=(2, 4)) for _ in cell.state_info()]
    out, new = cell(f64(x), [f64(s) for s in states])
    h, c = ref_step(mode, x, states[0], states[1] if mode == "lstm" else None, w)
    np.testing.assert_allclose(out.asnumpy(), h, rtol=1e-12)
    np.testing.assert_allclose(new[0].asnumpy(), h, rtol=1e-12)
    if mode == "lstm":
        np.testing.assert_allclose(new[1].asnumpy(), c, rtol=1e-12)


@pytest.mark.parametrize("layout", ["NTC", "TNC"])
@pytest.mark.parametrize("merge", [True, False, None])
def test_unroll_layouts_and_output_forms(layout, merge):
    cell, w = make_cell("lstm")
    x = np.random.default_rng(2).uniform(-1, 1, size=(5, 2, 3))  # time-major
    inp = x if layout == "TNC" else x.transpose(1, 0, 2)
    outs, states = cell.unroll(5, f64(inp), layout=layout, merge_outputs=merge)
    zeros = np.zeros((1, 2, 4))
    ref, h_n, c_n = ref_stack("lstm", x, [w], zeros, zeros, 1, False)
    if merge is True:  # one array in the layout
        got = outs.asnumpy() if layout == "TNC" else outs.asnumpy().transpose(1, 0, 2)
    else:  # False, or None ("whatever is faster": a cell steps, so a list), as in MXNet
        assert isinstance(outs, list) and len(outs) == 5
        got = np.stack([o.asnumpy() for o in outs])
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    np.testing.assert_allclose(states[0].asnumpy(), h_n[0], rtol=1e-12)
    np.testing.assert_allclose(states[1].asnumpy(), c_n[0], rtol=1e-12)
    # a list of steps as input: merge None keeps a list
    listed, _ = cell.unroll(5, [f64(s) for s in x], layout=layout)
    assert isinstance(listed, list) and len(listed) == 5


def test_unroll_with_valid_length():
    cell, w = make_cell("gru")
    x = np.random.default_rng(3).uniform(-1, 1, size=(2, 4, 3))  # NTC
    valid = np.array([4, 2])
    outs, (h,) = cell.unroll(
        4, f64(x), layout="NTC", merge_outputs=True, valid_length=nd.array(valid)
    )
    zeros = np.zeros((1, 2, 4))
    ref, h_n, _ = ref_stack("gru", x.transpose(1, 0, 2), [w], zeros, None, 1, False, lengths=valid)
    np.testing.assert_allclose(outs.asnumpy(), ref.transpose(1, 0, 2), rtol=1e-12)
    np.testing.assert_allclose(h.asnumpy(), h_n[0], rtol=1e-12)
    assert np.all(outs.asnumpy()[1, 2:] == 0)


def copy_layer_into_cells(layer, cells_by_key):
    """Give cells the layer's weights (what MXNet's _unfuse does by sharing)."""
    for key, p in layer._collect_params_with_prefix().items():
        cell, name = cells_by_key(key)
        getattr(cell, name).set_data(p.data())


def test_sequential_cells_share_the_fused_layers_results():
    layer = rnn.LSTM(4, num_layers=2, input_size=3, dtype="float64")
    layer.initialize()
    randomize(layer, 5)
    stack = rnn.HybridSequentialRNNCell()
    with stack.name_scope():
        cells = [rnn.LSTMCell(4, input_size=3), rnn.LSTMCell(4, input_size=4)]
        for c in cells:
            stack.add(c)
    stack.initialize()
    stack.cast("float64")
    # _unfused.{layer}.{i2h|h2h}_{weight|bias}
    copy_layer_into_cells(layer, lambda k: (cells[int(k.split(".")[1])], k.split(".")[2]))
    x = f64(np.random.default_rng(6).uniform(-1, 1, size=(5, 2, 3)))
    outs, states = stack.unroll(5, x, layout="TNC", merge_outputs=True)
    want, (h, c) = layer(x, layer.begin_state(2, dtype="float64"))
    np.testing.assert_allclose(outs.asnumpy(), want.asnumpy(), rtol=1e-12)
    np.testing.assert_allclose(states[2].asnumpy(), h.asnumpy()[1], rtol=1e-12)
    np.testing.assert_allclose(states[3].asnumpy(), c.asnumpy()[1], rtol=1e-12)
    # stepping the stack by hand gives the same
    st = stack.begin_state(batch_size=2, dtype="float64")
    for t in range(5):
        o, st = stack(x[t], st)
    np.testing.assert_allclose(o.asnumpy(), want.asnumpy()[-1], rtol=1e-12)


@pytest.mark.parametrize("valid", [None, [3, 5]])
def test_bidirectional_cell_matches_the_bidirectional_layer(valid):
    layer = rnn.GRU(3, bidirectional=True, input_size=2, dtype="float64", use_sequence_length=True)
    layer.initialize()
    randomize(layer, 7)
    bi = rnn.BidirectionalCell(rnn.GRUCell(3, input_size=2), rnn.GRUCell(3, input_size=2))
    bi.initialize()
    bi.cast("float64")
    cells = {"l_cell": bi._children["l_cell"], "r_cell": bi._children["r_cell"]}
    copy_layer_into_cells(layer, lambda k: (cells[k.split(".")[2]], k.split(".")[3]))
    x = f64(np.random.default_rng(8).uniform(-1, 1, size=(5, 2, 2)))
    lengths = nd.array(valid if valid else [5, 5])
    vl = None if valid is None else lengths
    outs, states = bi.unroll(5, x, layout="TNC", merge_outputs=True, valid_length=vl)
    want, (h,) = layer(x, layer.begin_state(2, dtype="float64"), lengths)
    np.testing.assert_allclose(outs.asnumpy(), want.asnumpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(states[0].asnumpy(), h.asnumpy()[0], rtol=1e-12)
    np.testing.assert_allclose(states[1].asnumpy(), h.asnumpy()[1], rtol=1e-12)
    with pytest.raises(NotImplementedError, match="cannot be stepped.*Fix: use unroll"):
        bi(x[0], states)


def test_dropout_cell():
    mx.random.seed(1)
    cell = rnn.DropoutCell(0.5)
    x = nd.ones((200, 10))
    out, states = cell(x, [])
    np.testing.assert_array_equal(out.asnumpy(), 1)  # predict mode
    with autograd.train_mode():
        out, _ = cell(x, [])
    vals = out.asnumpy()
    assert set(np.unique(vals)) == {0.0, 2.0} and 0.4 < (vals == 0).mean() < 0.6
    seq = nd.ones((2, 5, 3))
    merged, st = cell.unroll(5, seq, merge_outputs=True)
    assert merged.shape == (2, 5, 3) and st == []
    with pytest.raises(ArgumentValueError, match="rate=1.0 must be in"):
        rnn.DropoutCell(1.0)


def test_residual_and_zoneout_cells():
    base, _ = make_cell("gru", hidden=3, input_size=3)
    res = rnn.ResidualCell(base)
    x = f64(np.random.default_rng(9).uniform(-1, 1, size=(2, 4, 3)))
    outs, _ = res.unroll(4, x, merge_outputs=True)
    res.base_cell._modified = False
    plain, _ = base.unroll(4, x, merge_outputs=True)
    base._modified = True
    np.testing.assert_allclose(outs.asnumpy(), plain.asnumpy() + x.asnumpy(), rtol=1e-12)
    with pytest.raises(ModifiedCellError, match="wrapped by a modifier.*Fix: call the modifier"):
        base.begin_state(batch_size=2)
    with pytest.raises(ModifiedCellError, match="already modified"):
        rnn.ZoneoutCell(base)

    mx.random.seed(2)
    cell, _ = make_cell("lstm", hidden=3, input_size=3)
    zone = rnn.ZoneoutCell(cell, zoneout_outputs=0.5, zoneout_states=0.5)
    cell._modified = False
    ref, _ = cell.unroll(4, x, merge_outputs=True)
    cell._modified = True
    pred, _ = zone.unroll(4, x, merge_outputs=True)  # predict mode: no zoneout
    np.testing.assert_allclose(pred.asnumpy(), ref.asnumpy(), rtol=1e-12)
    with autograd.train_mode():
        st = zone.begin_state(batch_size=2, dtype="float64")
        prev = np.zeros((2, 3))
        kept = 0
        zone.reset()
        for t in range(4):
            new_out, new_st = cell(x[:, t], st)  # what the base cell alone would give
            out, st2 = zone(x[:, t], st)
            o = out.asnumpy()
            # each element is the new output or the previous one
            assert np.all(np.isclose(o, new_out.asnumpy()) | np.isclose(o, prev))
            kept += int(np.sum(~np.isclose(o, new_out.asnumpy())))
            prev, st = o, st2
    assert kept > 0
    assert "ZoneoutCell(p_out=0.5, p_state=0.5, LSTMCell(3 -> 12))" == repr(zone)


def test_parameter_names_deferred_shapes_and_repr():
    with gluon.block.NameManager():
        cell = rnn.LSTMCell(5)
        gru = rnn.GRUCell(2)
        plain = rnn.RNNCell(3, activation="relu")
    assert sorted(cell.collect_params()) == [
        "lstm0_h2h_bias", "lstm0_h2h_weight", "lstm0_i2h_bias", "lstm0_i2h_weight",
    ]  # fmt: skip
    assert gru.prefix == "gru0_" and plain.prefix == "rnn0_"
    assert repr(cell) == "LSTMCell(None -> 20)" and repr(plain) == "RNNCell(None -> 3, relu)"
    cell.initialize()
    out, _ = cell(nd.ones((2, 7)), cell.begin_state(batch_size=2))
    assert out.shape == (2, 5) and cell.i2h_weight.shape == (20, 7)
    assert repr(cell) == "LSTMCell(7 -> 20)"


def test_cell_activations():
    x = f64([[0.5, -1.0]])
    for act, f in [
        ("relu", lambda z: np.maximum(z, 0)),
        ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
        ("softsign", lambda z: z / (1 + np.abs(z))),
        ("softrelu", lambda z: np.log1p(np.exp(z))),
        (gluon.nn.LeakyReLU(0.1), lambda z: np.where(z > 0, z, 0.1 * z)),
        (lambda z: z * 2, lambda z: z * 2),
    ]:
        cell = rnn.RNNCell(2, activation=act, input_size=2)
        cell.initialize()
        cell.cast("float64")
        w = randomize(cell)
        h = np.array([[0.3, -0.2]])
        out, _ = cell(x, [f64(h)])
        z = x.asnumpy() @ w["i2h_weight"].T + w["i2h_bias"] + h @ w["h2h_weight"].T + w["h2h_bias"]
        np.testing.assert_allclose(out.asnumpy(), f(z), rtol=1e-12)


def test_unrolled_cell_gradients_match_finite_differences():
    cell, _ = make_cell("lstm", hidden=2, input_size=2)
    x = f64(np.random.default_rng(10).uniform(-1, 1, size=(2, 3, 2)))
    h0 = f64(np.random.default_rng(11).uniform(-1, 1, size=(2, 2)))
    c0 = f64(np.random.default_rng(12).uniform(-1, 1, size=(2, 2)))

    def f(x, h0, c0):
        outs, states = cell.unroll(3, x, begin_state=[h0, c0], merge_outputs=True)
        return outs, states[1]

    assert mx.gradcheck(f, [x, h0, c0], order=2, n_directions=2)


def test_bad_cell_input_says_what_and_how_to_fix():
    cell, _ = make_cell("lstm")
    with pytest.raises(ArgumentValueError, match=r"expected a list of 2 state array\(s\), got 1"):
        cell(f64(np.ones((2, 3))), [f64(np.zeros((2, 4)))])
    with pytest.raises(ShapeError, match=r"state 1 is \(3, 4\), expecting \(2, 4\).*batch_size=2"):
        cell(f64(np.ones((2, 3))), [f64(np.zeros((2, 4))), f64(np.zeros((3, 4)))])
    with pytest.raises(ShapeError, match=r"length=4 but the input has 5 steps.*Fix: pass length=5"):
        cell.unroll(4, f64(np.ones((2, 5, 3))))
    with pytest.raises(ArgumentValueError, match="invalid layout 'TCN'"):
        cell.unroll(5, f64(np.ones((2, 5, 3))), layout="TCN")
    with pytest.raises(ShapeError, match=r"LSTMCell '.*' \(input\).*FullyConnected"):
        cell(f64(np.ones((2, 6))), cell.begin_state(2, dtype="float64"))
    with pytest.raises(ArgumentValueError, match="unroll\\(inputs=None\\)"):
        cell.unroll(3, None)
    with pytest.raises(TypeError, match="must be a recurrent cell"):
        rnn.ResidualCell(gluon.nn.Dense(2))
