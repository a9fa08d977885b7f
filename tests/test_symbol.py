"""mx.sym (issue 11): MXNet's graph JSON read and written (the LeNet exported by real MXNet
1.9.1 round-trips node for node), graphs built by calling operator functions, evaluation with
mx.nd (MXNet's output, gradients), attribute strings, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, nd
from tapegrad.symbol import SymbolError, UnknownOperatorError
from tapegrad.symbol.ops import format_attr, parse_attr

EXPORTS = Path(__file__).resolve().parent / "data" / "mxnet-params" / "exports"
RNG = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def fresh_names():
    with mx.name.NameManager():
        yield


def lenet_values() -> dict:
    params = nd.load(str(EXPORTS / "lenet_export-0000.params"))
    return {k.split(":", 1)[1]: v for k, v in params.items()}


def test_mxnet_export_round_trips_and_lists_its_variables():
    text = (EXPORTS / "lenet_export-symbol.json").read_text()
    sym = mx.sym.load(str(EXPORTS / "lenet_export-symbol.json"))
    assert mx.symbol is mx.sym
    assert sym.name == "dense2_fwd" and repr(sym) == "<Symbol dense2_fwd>"
    assert sym.list_arguments() == [
        "data",
        "conv0_weight",
        "conv0_bias",
        "conv1_weight",
        "conv1_bias",
        "dense0_weight",
        "dense0_bias",
        "dense1_weight",
        "dense1_bias",
        "dense2_weight",
        "dense2_bias",
    ]
    assert sym.list_outputs() == ["dense2_fwd_output"]
    assert sym.list_auxiliary_states() == []
    # what tapegrad writes is what MXNet wrote (nodes, attributes, row pointers, heads)
    assert json.loads(sym.tojson()) == json.loads(text)
    assert sym.attr_dict()["conv0_fwd"]["kernel"] == "(5, 5)"
    internals = sym.get_internals()
    assert "pool1_fwd_output" in internals.list_outputs()
    assert internals["conv0_relu_fwd_output"].name == "conv0_relu_fwd"


def test_mxnet_export_evaluates_to_mxnets_output():
    expected = json.loads((EXPORTS / "expected.json").read_text())["models"]["lenet_export"]
    sym = mx.sym.load(str(EXPORTS / "lenet_export-symbol.json"))
    x = np.cos(0.23 * np.arange(1568)).reshape(2, 1, 28, 28).astype(np.float32)
    (out,) = sym.eval(data=nd.array(x), **lenet_values())
    assert out.shape == tuple(expected["output_shape"])
    np.testing.assert_allclose(out.asnumpy().ravel(), expected["output"], rtol=1e-5, atol=1e-6)
    # a graph cut at an inner layer: the same first layers
    feat = sym.get_internals()["dense0_relu_fwd_output"]
    (h,) = feat.eval(
        data=nd.array(x), **{k: v for k, v in lenet_values().items() if k in feat.list_arguments()}
    )
    assert h.shape == (2, 120) and float(h.min().asscalar()) >= 0


def test_built_graph_names_attrs_and_json():
    data = mx.sym.var("data")
    conv = mx.sym.Convolution(data=data, kernel=(3, 3), num_filter=4, pad=(1, 1))
    assert conv.name == "convolution0"
    assert conv.list_arguments() == ["data", "convolution0_weight", "convolution0_bias"]
    assert conv.list_attr() == {"kernel": "(3, 3)", "num_filter": "4", "pad": "(1, 1)"}
    bn = mx.sym.BatchNorm(conv, fix_gamma=False, name="bn")
    assert bn.list_arguments() == [
        "data",
        "convolution0_weight",
        "convolution0_bias",
        "bn_gamma",
        "bn_beta",
    ]
    assert bn.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    act = mx.sym.Activation(bn, act_type="relu", name="relu")
    pool = mx.sym.Pooling(act, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool")
    fc = mx.sym.FullyConnected(mx.sym.flatten(pool), num_hidden=3, no_bias=True, name="fc")
    assert "fc_bias" not in fc.list_arguments()
    graph = json.loads(fc.tojson())
    ops = [n["op"] for n in graph["nodes"]]
    assert ops.count("null") == len(graph["arg_nodes"]) == 8
    assert "Flatten" in ops and graph["nodes"][-1]["attrs"] == {
        "no_bias": "True",
        "num_hidden": "3",
    }
    back = mx.sym.load_json(fc.tojson())
    assert back.tojson() == fc.tojson()
    assert back.list_inputs() == fc.list_inputs()


def test_built_graph_evaluates_like_nd_and_gradients_flow():
    data = mx.sym.var("data")
    h = mx.sym.Convolution(data, kernel=(3, 3), num_filter=2, name="c")
    h = mx.sym.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="avg", name="p")
    h = mx.sym.concat(h, h * 2.0, dim=1, name="cat")
    out = mx.sym.sum(mx.sym.tanh(h) + 1.0, name="s")
    x = nd.array(RNG.standard_normal((2, 3, 6, 6)), dtype="float64")
    w = nd.array(RNG.standard_normal((2, 3, 3, 3)), dtype="float64")
    b = nd.array(RNG.standard_normal(2), dtype="float64")
    w.attach_grad()
    with autograd.record():
        (y,) = out.eval(data=x, c_weight=w, c_bias=b)
    y.backward()
    w2 = w.copy()
    w2.attach_grad()
    with autograd.record():
        r = nd.Pooling(
            nd.Convolution(x, w2, b, kernel=(3, 3), num_filter=2),
            kernel=(2, 2),
            stride=(2, 2),
            pool_type="avg",
        )
        y2 = (nd.tanh(nd.concat(r, r * 2.0, dim=1)) + 1.0).sum()
    y2.backward()
    assert float(y.asscalar()) == pytest.approx(float(y2.asscalar()), rel=1e-12)
    np.testing.assert_allclose(w.grad.asnumpy(), w2.grad.asnumpy(), rtol=1e-12)
    names = [n["op"] for n in json.loads(out.tojson())["nodes"]]
    assert "_mul_scalar" in names and "_plus_scalar" in names and "Concat" in names


def test_arithmetic_and_multi_output_nodes():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    c = (a + b) * a - 1.0 / b
    ops = [n["op"] for n in json.loads(c.tojson())["nodes"]]
    assert ops == ["null", "null", "elemwise_add", "elemwise_mul", "_rdiv_scalar", "elemwise_sub"]
    assert c.list_arguments() == ["a", "b"]
    av, bv = nd.array([1.0, 2.0]), nd.array([4.0, 0.5])
    np.testing.assert_allclose(c.eval(a=av, b=bv)[0].asnumpy(), [4.75, 3.0])
    parts = mx.sym.split(a, num_outputs=2, axis=0, name="sp")
    assert len(parts) == 2 and parts.list_outputs() == ["sp_output0", "sp_output1"]
    out = parts.eval(a=nd.array([3.0, 5.0]))
    assert [o.asnumpy().tolist() for o in out] == [[3.0], [5.0]]
    g = mx.sym.Group([parts[1], a])
    assert g.name is None and g.list_outputs() == ["sp_output1", "a"]
    bn = mx.sym.BatchNorm(a, output_mean_var=True, name="bn")
    assert bn.list_outputs() == ["bn_output", "bn_mean", "bn_var"]


def test_variables_attributes_and_save(tmp_path):
    w = mx.sym.var("w", shape=(3, 0), lr_mult=2, wd_mult=0.0, dtype="float64", init=mx.init.One())
    assert w.list_attr() == {
        "__shape__": "(3, 0)",
        "__lr_mult__": "2.0",
        "__wd_mult__": "0.0",
        "__dtype__": "1",
        "__init__": '["one", {}]',
    }
    with pytest.raises(ValueError, match="double underscores"):
        mx.sym.var("v", color="red")
    path = tmp_path / "net-symbol.json"
    y = mx.sym.FullyConnected(w, num_hidden=2, name="fc")
    y.save(str(path))
    assert mx.sym.load(str(path)).tojson() == y.tojson()


@pytest.mark.parametrize(
    "text, value",
    [
        ("True", True),
        ("false", False),
        ("None", None),
        ("(5, 5)", (5, 5)),
        ("[1, 2]", (1, 2)),
        ("(None, 1)", (None, 1)),
        ("6", 6),
        ("1e-05", 1e-05),
        ("-inf", -np.inf),
        ("relu", "relu"),
        ("float32", "float32"),
        ("__import__('os')", "__import__('os')"),
        ("(" * 5000 + ")" * 5000, "(" * 5000 + ")" * 5000),
    ],
)
def test_attribute_strings_are_parsed_as_literals(text, value):
    assert parse_attr(text) == value


def test_attributes_are_written_as_mxnet_writes_them():
    assert format_attr(True) == "True"
    assert format_attr((5, 5)) == "(5, 5)"
    assert format_attr([2]) == "(2,)"
    assert format_attr(np.int64(3)) == "3"
    assert format_attr(0.001) == "0.001"
    assert format_attr(np.float32) == "float32"


# ------------------------------------------------------------------------------ errors


def _graph(nodes, heads=((1, 0, 0),)):
    return json.dumps({"nodes": nodes, "arg_nodes": [0], "heads": [list(h) for h in heads]})


def test_unknown_operator_is_named():
    text = _graph(
        [
            {"op": "null", "name": "data", "inputs": []},
            {"op": "_contrib_DeformableConvolution", "name": "dcn0", "inputs": [[0, 0, 0]]},
        ]
    )
    with pytest.raises(UnknownOperatorError) as e:
        mx.sym.load_json(text)
    msg = str(e.value)
    assert "'_contrib_DeformableConvolution'" in msg and "'dcn0'" in msg and "Fix:" in msg
    assert isinstance(e.value, mx.base.MXNetError)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "no 'nodes' list"),
        (json.dumps({"nodes": [], "heads": []}), "no 'heads'"),
        (_graph([{"op": "null", "name": "x", "inputs": []}], heads=((3, 0, 0),)), "head"),
        (
            _graph([{"op": "null", "name": "x"}, {"op": "relu", "name": "r", "inputs": [[1, 0]]}]),
            r"input \[1, 0\] is not \[earlier node",
        ),
        (
            _graph([{"op": "null", "name": "x"}, {"op": "relu", "name": "r", "inputs": [[0, 2]]}]),
            "asks for output 2 of 'x'",
        ),
        (
            _graph(
                [
                    {"op": "null", "name": "x"},
                    {
                        "op": "FullyConnected",
                        "name": "fc",
                        "inputs": [[0, 0]],
                        "attrs": {"num_hidden": "2"},
                    },
                ]
            ),
            r"FullyConnected with these attributes takes 3 inputs \(data, weight, bias\)",
        ),
        (
            _graph([{"op": "null", "name": "x"}, {"op": "relu", "name": "r", "attrs": {"a": 1}}]),
            "'attrs' is not an object of strings",
        ),
    ],
)
def test_malformed_graphs(text, match):
    with pytest.raises(SymbolError, match=match) as e:
        mx.sym.load_json(text)
    assert "Fix:" in str(e.value)


def test_file_errors(tmp_path):
    with pytest.raises(SymbolError, match=r"cannot read .*missing.json.*Fix"):
        mx.sym.load(str(tmp_path / "missing.json"))
    bad = tmp_path / "weights-symbol.json"
    bad.write_bytes(b"\x12\x01\x00\x00\xff\xfe")
    with pytest.raises(SymbolError, match="not a text file"):
        mx.sym.load(str(bad))


def test_evaluation_errors_name_the_node():
    x = mx.sym.var("x")
    y = mx.sym.Convolution(x, kernel=(3, 3), num_filter=2, name="conv")
    with pytest.raises(SymbolError, match=r"no value for \['conv_weight', 'conv_bias'\]"):
        y.eval(x=nd.ones((1, 1, 5, 5)))
    with pytest.raises(mx.base.ShapeError, match=r"Symbol node 'conv' \(Convolution\): .*weight"):
        y.eval(x=nd.ones((1, 1, 5, 5)), conv_weight=nd.ones((2, 3, 3, 3)), conv_bias=nd.ones(2))
    bad = mx.sym.Activation(x, act_type="relu", name="act", bogus_attribute=3)
    # an operator refuses an attribute it does not have (MXNet's parameter parsing does too)
    with pytest.raises(TypeError, match=r"Symbol node 'act' \(Activation\).*bogus_attribute"):
        bad.eval(x=nd.array([-1.0]))
    with pytest.raises(TypeError, match="not inputs of Convolution"):
        mx.sym.Convolution(x, kernel=(1, 1), num_filter=1, label=x)
    with pytest.raises(TypeError, match="no truth value"):
        bool(x)
