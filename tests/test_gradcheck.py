"""tapegrad.gradcheck / gradgradcheck: pass on correct derivatives, catch wrong ones with a
report of the worst element, warn about float32."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tapegrad as mx
from tapegrad.testing import GradcheckError

nd = mx.nd


def arr(a):
    return nd.array(a, dtype="float64")


class WrongExp(mx.autograd.Function):
    """exp whose backward is 10% off: a deliberately broken custom op."""

    def forward(self, x):
        y = nd.exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, dy):
        (y,) = self.saved_tensors
        return dy * y * 1.1


class RightExp(WrongExp):
    def backward(self, dy):
        (y,) = self.saved_tensors
        return dy * y


X = arr([[0.5, -1.0, 0.2], [1.5, 0.1, -0.3]])


def test_correct_functions_pass():
    assert mx.gradcheck(lambda x: nd.tanh(x) * nd.sin(x), X)
    assert mx.gradcheck(lambda a, b: (a * nd.exp(b)).sum(axis=1), [X, X * 0.5])
    assert mx.gradcheck(lambda x: (x[0] * x[1], nd.log(nd.abs(x) + 1)), X)  # two outputs
    # a custom Function has no forward rule: forward mode is skipped, reverse mode checked
    assert mx.gradcheck(lambda x: RightExp()(x) * 2, X)
    assert mx.gradgradcheck(lambda x: nd.tanh(x) ** 3, X)
    assert mx.gradcheck(lambda x: nd.sin(x) * x, X, order=3)


def test_catches_a_wrong_backward_and_reports_the_worst_element():
    with pytest.raises(GradcheckError) as info:
        mx.gradcheck(lambda x: WrongExp()(x) * 2, X)
    msg = str(info.value)
    assert "reverse mode" in msg and "worst element" in msg
    assert "forward mode skipped: operator 'Function:WrongExp'" in msg
    # the worst element is the largest exp: x[1, 0] = 1.5
    assert "d output 0[1, 0] / d input 0[1, 0]" in msg
    analytic = float(msg.split("analytic = ")[1].split()[0])
    numeric = float(msg.split("numeric  = ")[1].split()[0])
    assert analytic == pytest.approx(2 * 1.1 * np.exp(1.5), rel=1e-9)
    assert numeric == pytest.approx(2 * np.exp(1.5), rel=1e-6)
    assert isinstance(info.value, AssertionError)
    assert not mx.gradcheck(lambda x: WrongExp()(x), X, modes=("rev",), raise_exception=False)


def test_catches_a_wrong_gradient_on_large_inputs_by_random_directions():
    x = arr(np.random.default_rng(0).uniform(-1, 1, size=(40, 10)))
    assert mx.gradcheck(lambda z: nd.tanh(z).sum(axis=1), x)
    with pytest.raises(GradcheckError) as info:
        mx.gradcheck(lambda z: WrongExp()(z).sum(axis=1), x, modes=("rev",))
    msg = str(info.value)
    # the worst of the sampled elements is named, then the worst random direction
    assert "reverse mode):\n  worst element: d <w, outputs> / d input 0[" in msg
    assert "reverse mode, along random directions):\n  worst direction: <w, J v>" in msg


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class SinFirstOrderOnly(mx.autograd.Function):
        # right first derivative, but its backward is built from a constant: d2 wrong
        def forward(self, x):
            self.save_for_backward(x)
            return nd.sin(x)

        def backward(self, dy):
            (x,) = self.saved_tensors
            return dy * nd.array(np.cos(x.asnumpy()), dtype="float64")

    f = lambda x: SinFirstOrderOnly()(x)  # noqa: E731
    assert mx.gradcheck(f, X, modes=("rev",))
    with pytest.raises(GradcheckError, match="order 2"):
        mx.gradgradcheck(f, X, modes=("rev",))


def test_forward_mode_is_checked_too():
    # a correct function passes in forward mode alone (a wrong JVP rule is caught below)
    assert mx.gradcheck(lambda x: nd.exp(x), X, modes=("fwd",))


def test_float32_inputs_warn():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert mx.gradcheck(lambda x: nd.tanh(x), nd.array([0.1, 0.2]))
    assert any("float32" in str(m.message) and "float64" in str(m.message) for m in w)


def test_bad_arguments():
    with pytest.raises(mx.base.TapegradError, match="no floating-point NDArray"):
        mx.gradcheck(lambda i: i, nd.array([1, 2], dtype="int32"))
    with pytest.raises(ValueError, match="mode"):
        mx.gradcheck(lambda x: x, X, modes=("sideways",))


def test_catches_a_wrong_forward_mode_rule():
    """A primitive whose VJP is right but whose JVP is 20% off: reverse mode passes, the
    forward-mode check fails and reports the worst element in forward mode."""
    from tapegrad.engine import TAPE, primitive

    bad = primitive(
        "exp_with_bad_jvp",
        np.exp,
        [lambda xp, g, ans, x: g * ans],
        lambda xp, ts, ans, x: ts[0] * ans * 1.2,
    )
    f = lambda x: bad(x) * 2  # noqa: E731
    assert mx.gradcheck(f, X, modes=("rev",))
    with pytest.raises(GradcheckError) as info:
        mx.gradcheck(f, X)
    msg = str(info.value)
    assert "forward mode" in msg and "reverse mode" not in msg
    assert "d output 0[1, 0] / d input 0[1, 0]" in msg  # largest exp, at x = 1.5
    # large inputs: random directions catch it too
    x = arr(np.random.default_rng(1).uniform(-1, 1, size=(40, 10)))
    with pytest.raises(GradcheckError, match="forward mode"):
        mx.gradcheck(lambda z: TAPE.sum(bad(z), axis=1), x, modes=("fwd",))
