"""Forward mode beyond the single primitive (the op-spec table checks each primitive's JVP
against its VJP and its Taylor rule against nested forward mode): perturbation confusion for
every nesting of forward, reverse and Taylor mode, forward-over-reverse and
reverse-over-forward."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import functional as F
from tapegrad.core import TAPE
from tapegrad.forward import jvp
from tapegrad.taylor import jvp as taylor_jvp

T = TAPE


def nd(a):
    return mx.nd.array(a, dtype="float64")


def test_nondifferentiable_primitives_carry_no_tangent():
    x = nd([[0.2, 1.5], [2.0, -1.0]])
    y, t = jvp(lambda a: T.greater(a, 1.0) * a, [x], [mx.nd.ones_like(x)])
    # d/dx [1{x>1} x] = 1{x>1} away from the jump
    np.testing.assert_array_equal(t.asnumpy(), (x.asnumpy() > 1.0).astype(float))


# ------------------------------------------------------------------ perturbation confusion
# Siskind & Pearlmutter: d/dx [x * (d/dy (x + y))(y=1)] at x=1 is 1; confusing the two
# perturbations gives 2. Every combination of inner and outer differentiation operator.


def _d_fwd(f):
    return lambda x: jvp(f, [x], [mx.nd.ones_like(x)])[1]


def _d_rev(f):
    return F.grad(lambda x: f(x).sum())


def _d_taylor(f):
    return lambda x: taylor_jvp(f, [x], [mx.nd.ones_like(x)])[1]


OPS = {"fwd": _d_fwd, "rev": _d_rev, "taylor": _d_taylor}


@pytest.mark.parametrize("outer", sorted(OPS))
@pytest.mark.parametrize("inner", sorted(OPS))
def test_no_perturbation_confusion(outer, inner):
    Do, Di = OPS[outer], OPS[inner]
    one = nd([1.0])

    def f(x):
        return x * Di(lambda y: x + y)(one)

    assert float(Do(f)(nd([1.0])).asscalar()) == pytest.approx(1.0)

    # d/dx [x * (d/dy (x * y))(y = x)] = d/dx x^2 = 2x (confusion gives 4x)
    def g(x):
        return x * Di(lambda y: x * y)(x)

    assert float(Do(g)(nd([1.5])).asscalar()) == pytest.approx(3.0)


def test_forward_over_reverse_hvp_matches_nested_reverse():
    x = nd([0.3, -0.7, 1.1])
    v = nd([1.0, 2.0, -0.5])

    def f(z):
        return (mx.nd.sin(z) * z**2).sum()

    fr = jvp(F.grad(f), [x], [v])[1].asnumpy()
    rr = F.grad(lambda z: (F.grad(f)(z) * v).sum())(x).asnumpy()
    a = x.asnumpy()
    h = (2 - a**2) * np.sin(a) + 4 * a * np.cos(a)  # diagonal Hessian of sum(sin(x) x^2)
    np.testing.assert_allclose(fr, h * v.asnumpy(), rtol=1e-12)
    np.testing.assert_allclose(rr, h * v.asnumpy(), rtol=1e-12)


def test_reverse_over_forward_inside_record_trains():
    # a JVP that is part of a loss: its gradient reaches the parameter
    w = nd([0.5, -1.0])
    w.attach_grad()
    x = nd([0.2, 0.4])
    with mx.autograd.record():
        _, t = jvp(lambda z: mx.nd.tanh(w * z), [x], [mx.nd.ones_like(x)])
        loss = (t * t).sum()
    loss.backward()
    wa, xa = w.asnumpy(), x.asnumpy()
    # t = w (1 - tanh(w x)^2); d/dw sum t^2 = 2 t dt/dw
    th = np.tanh(wa * xa)
    t_ = wa * (1 - th**2)
    dt = (1 - th**2) + wa * (-2 * th * (1 - th**2) * xa)
    np.testing.assert_allclose(w.grad.asnumpy(), 2 * t_ * dt, rtol=1e-12)
