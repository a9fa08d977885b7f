"""tapegrad.explain: the forward and adjoint traces of the lecture notes' example (Eq. 2.3,
2.4), read from the engine's recorded graph; DOT export; rendering errors."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest

import tapegrad as mx
from tapegrad.explain import render, to_dot

nd = mx.nd


def notes_f(x):
    """Eq. 2.1 written as Eq. 2.3 computes it."""
    a = nd.exp(x)
    b = a**2
    c = a + b
    return nd.exp(c) + nd.sin(c)


def _run(f, *xs):
    out = io.StringIO()
    e = mx.explain(f, *xs, file=out)
    return e, out.getvalue()


def test_forward_trace_is_eq_2_3():
    x0 = 0.1
    e, text = _run(notes_f, nd.array(x0, dtype="float64"))
    rows = [
        ln.split("=")[0].strip() + " = " + ln.split("=")[1].strip() for ln in text.splitlines()[1:7]
    ]
    assert rows == ["a = exp(x)", "b = a²", "c = a + b", "d = exp(c)", "e = sin(c)", "f = d + e"]
    a = math.exp(x0)
    c = a + a * a
    values = {s["name"]: float(np.asarray(s["value"])) for s in e.steps if s["kind"] == "op"}
    assert values["c"] == pytest.approx(c, rel=1e-15)
    assert values["f"] == pytest.approx(math.exp(c) + math.sin(c), rel=1e-15)


def test_adjoint_trace_is_eq_2_4_with_values():
    x0 = 0.1
    _, text = _run(notes_f, nd.array(x0, dtype="float64"))
    adj = {
        m.group(1): (m.group(2).strip(), float(m.group(3)))
        for m in re.finditer(r"df/d(\w) = (.*?)\s+= (\S+)\n", text)
    }
    assert adj["e"][0] == "df/df" and adj["d"][0] == "df/df"
    assert adj["c"][0] == "df/dd·exp(c) + df/de·cos(c)"
    assert adj["b"][0] == "df/dc"
    assert set(adj["a"][0].split(" + ")) == {"df/dc", "df/db·2a"}
    assert adj["x"][0] == "df/da·exp(x)"
    a = math.exp(x0)
    c = a + a * a
    dc = math.exp(c) + math.cos(c)
    assert adj["c"][1] == pytest.approx(dc, rel=1e-5)
    assert adj["a"][1] == pytest.approx(dc * (1 + 2 * a), rel=1e-5)
    assert adj["x"][1] == pytest.approx(dc * (1 + 2 * a) * a, rel=1e-5)  # W1's 33.9078
    assert "df/df = 1" in text


def test_gradients_in_steps_are_the_engines():
    e, _ = _run(notes_f, nd.array(0.1, dtype="float64"))
    x = nd.array(0.1, dtype="float64")
    x.attach_grad()
    with mx.autograd.record():
        y = notes_f(x)
    y.backward()
    g = {s["name"]: s["grad"] for s in e.steps}
    assert float(np.asarray(g["x"])) == pytest.approx(float(x.grad.asscalar()), rel=1e-14)


def test_written_out_expression_records_every_operation():
    # the expression exactly as Eq. 2.1 writes it: exp(x) is computed four times
    e, text = _run(
        lambda x: nd.exp(nd.exp(x) + nd.exp(x) ** 2) + nd.sin(nd.exp(x) + nd.exp(x) ** 2),
        nd.array(0.1, dtype="float64"),
    )
    assert text.startswith("Forward trace (11 operations):")
    assert text.count("= exp(x)") == 4


def test_two_inputs_named_after_the_parameters_and_non_scalar_output():
    _, text = _run(
        lambda u, v: u * nd.tanh(v),
        nd.array([1.0, 2.0], dtype="float64"),
        nd.array([0.5, -0.5], dtype="float64"),
    )
    assert "a = tanh(v)" in text and "f = u·a" in text
    assert "df/du = df/df·a" in text and "df/dv = df/da·(1 - tanh(v)²)" in text
    assert "ones of shape (2,)" in text


def test_block_parameters_appear_under_their_names():
    net = mx.gluon.nn.Dense(2, in_units=3, activation="tanh")
    net.initialize()
    _, text = _run(net, nd.ones((1, 3)))
    assert net.weight.name in text and net.bias.name in text


def test_dot_export():
    dot = to_dot(notes_f, nd.array(0.1, dtype="float64"))
    assert dot.startswith("digraph tapegrad {") and dot.rstrip().endswith("}")
    for edge in [
        '"x" -> "a"',
        '"a" -> "b"',
        '"a" -> "c"',
        '"b" -> "c"',
        '"c" -> "d"',
        '"c" -> "e"',
        '"d" -> "f"',
        '"e" -> "f"',
    ]:
        assert edge in dot
    assert 'label="cos(c)"' in dot
    assert mx.explain.to_dot is to_dot


def test_render_without_dot_is_a_clear_error(monkeypatch, tmp_path):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(mx.base.TapegradError, match="Graphviz 'dot' program"):
        render(notes_f, nd.array(0.1), path=str(tmp_path / "g.svg"))
    with pytest.raises(mx.base.TapegradError, match=".svg, .png or .pdf"):
        render(notes_f, nd.array(0.1), path=str(tmp_path / "g.bmp"))


def test_errors():
    with pytest.raises(mx.base.TapegradError, match="does not depend"):
        mx.explain(lambda x: nd.ones((1,)), nd.array(1.0), file=io.StringIO())
    with pytest.raises(mx.base.TapegradError, match="one NDArray"):
        mx.explain(lambda x: (x, x), nd.array(1.0), file=io.StringIO())


def _needs_dot():
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's 'dot' program is not installed (optional: rendering)")


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_render_draws_the_graph_with_dot(tmp_path, fmt):
    _needs_dot()
    path = tmp_path / f"g.{fmt}"
    assert render(notes_f, nd.array(0.1, dtype="float64"), path=str(path)) == str(path)
    data = path.read_bytes()
    magic = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF"}[fmt]
    assert data.startswith(magic)
    if fmt == "svg":  # the labels made it into the picture
        text = data.decode()
        assert "df/dx = 33.9078" in text and "cos(c)" in text


def test_dot_text_of_blocks_and_indexing_is_valid_graphviz(tmp_path):
    # parameter names, slices and array constants in labels must be quoted correctly
    _needs_dot()
    net = mx.gluon.nn.Dense(2, in_units=3, activation="tanh")
    net.initialize()
    x = nd.array([[1.0, 2.0, 3.0]], dtype="float64")
    net.cast("float64")
    for f in (net, lambda z: (net(z)[:, 1:] * nd.array([[2.0]], dtype="float64")).sum()):
        path = tmp_path / "g.svg"
        render(f, x, path=str(path))
        assert "<svg" in path.read_text()


def test_compiled_programs_list_the_primitives_forward_then_reversed():
    out = io.StringIO()
    e = mx.explain(notes_f, 1.5, file=out, compiled=True)
    fwd_ops = re.findall(r"# (\w+)$", "\n".join(e.forward), flags=re.M)
    adj_ops = re.findall(r"# (\w+)$", "\n".join(e.adjoint), flags=re.M)
    assert fwd_ops == ["exp", "power", "add", "exp", "sin", "add"]
    # the adjoint program runs the rules of the non-linear primitives in reverse order;
    # the additions only route cotangents (g4 = g6, g3 = g3 + t)
    assert adj_ops == ["sin", "exp", "power", "exp"]
    assert out.getvalue().startswith("Compiled forward program:")
    # the program explained is the program run: its gradient is Eq. 2.1's derivative
    f = mx.jit(notes_f)
    x = nd.array([1.5], dtype="float64")
    x.attach_grad()
    with mx.autograd.record():
        y = f(x)
    y.backward()
    a = math.exp(1.5)
    c = a + a * a
    expected = (math.exp(c) + math.cos(c)) * (a + 2 * a * a)
    np.testing.assert_allclose(x.grad.asnumpy(), [expected], rtol=1e-12)


def test_compiled_explain_needs_one_ndarray_output():
    with pytest.raises(mx.TapegradError, match="must return one NDArray"):
        mx.explain(lambda x: (x * 2, x * 3), 1.0, compiled=True, file=io.StringIO())
