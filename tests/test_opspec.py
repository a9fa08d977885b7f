"""Every primitive, through the op-spec table (``tests/opspec.py``): finite differences to the
spec's order, the JVP/VJP adjoint identity, Taylor mode against nested forward mode; and the
table covers every primitive, each of which declares its Taylor rule."""

from __future__ import annotations

import numpy as np
import pytest
from opspec import SPECS, check_order, nd

from tapegrad import functional as F
from tapegrad.core import PRIMITIVES, TAPE
from tapegrad.forward import jvp
from tapegrad.taylor import jvp as taylor_jvp
from tapegrad.taylor import taylor

IDS = [s.id for s in SPECS]
T = TAPE


def _rng(spec, salt=0):
    return np.random.default_rng(sum(map(ord, spec.id)) + salt)


# (a spec whose derivative is declared rather than the function's has its own test)
@pytest.mark.parametrize("spec", [s for s in SPECS if s.fd], ids=[s.id for s in SPECS if s.fd])
def test_finite_differences(spec):
    rng = _rng(spec)
    draws = 3 if spec.fixed is None and isinstance(spec.shapes, str) else 1
    for _ in range(draws):
        arrays = spec.draw(rng)
        for order in range(1, spec.orders + 1):
            check_order(spec.fn, arrays, order, rng)


# ---------------------------------------------------------------- forward vs reverse


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_jvp_is_adjoint_of_vjp(spec):
    rng = _rng(spec, 1)
    xs = [nd(a) for a in spec.draw(rng)]
    vs = [nd(rng.standard_normal(x.shape)) for x in xs]
    y, jv = jvp(spec.fn, xs, vs)
    u = nd(rng.standard_normal(y.shape))
    _, pull = F.vjp(spec.fn, *xs)
    lhs = float((u * jv).sum().asscalar())
    rhs = sum(float((g * v).sum().asscalar()) for g, v in zip(pull(u), vs))
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs) + abs(rhs)), (
        f"<u, J v> = {lhs!r} but <J^T u, v> = {rhs!r}"
    )
    # the Taylor-mode JVP (an order-1 pass over the recorded graph) gives the same tangent
    _, tv = taylor_jvp(spec.fn, xs, vs)
    np.testing.assert_allclose(tv.asnumpy(), jv.asnumpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- Taylor vs nested forward


def _nested(f, xs, vs, K):
    fn = lambda *z: [f(*z)]  # noqa: E731
    for _ in range(K):

        def fn(*z, inner=fn):
            p, t = jvp(inner, list(z), vs)
            return list(p) + [t[-1]]

    return fn(*xs)


def _taylor_many(f, xs, dirs, K, collapse):
    """taylor() for several inputs: pack them into one flat vector."""
    shapes = [x.shape for x in xs]
    sizes = [int(np.prod(s)) for s in shapes]

    def g(flat):
        parts, k = [], 0
        for s, n in zip(shapes, sizes):
            parts.append(flat[k : k + n].reshape(s) if s else flat[k : k + n].reshape(()))
            k += n
        return f(*parts)

    flat = nd(np.concatenate([x.asnumpy().reshape(-1) for x in xs]))
    D = np.stack([np.concatenate([d.reshape(-1) for d in dd]) for dd in dirs])
    return taylor(g, flat, nd(D), K, collapse=collapse)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_taylor_rule_matches_nested_forward_mode(spec):
    rng = _rng(spec, 2)
    xs = [nd(a) for a in spec.draw(rng)]
    dirs = [[rng.standard_normal(x.shape) for x in xs] for _ in range(3)]
    _, cs = _taylor_many(spec.fn, xs, dirs[:1], 3, False)
    ref = _nested(spec.fn, xs, [nd(d) for d in dirs[0]], 3)
    for k in (1, 2, 3):
        np.testing.assert_allclose(
            cs[k - 1].asnumpy()[0], ref[k].asnumpy(), rtol=1e-8, atol=1e-9, err_msg=f"order {k}"
        )
    _, (c1, c2) = _taylor_many(spec.fn, xs, dirs, 2, True)
    lap = 0.0
    for d in range(3):
        r = _nested(spec.fn, xs, [nd(a) for a in dirs[d]], 2)
        np.testing.assert_allclose(c1.asnumpy()[d], r[1].asnumpy(), rtol=1e-8, atol=1e-9)
        lap = lap + r[2].asnumpy()
    np.testing.assert_allclose(c2.asnumpy()[0], lap, rtol=1e-8, atol=1e-9, err_msg="collapsed")


# ---------------------------------------------------------------- coverage


def _builtin():
    return {n: p for n, p in PRIMITIVES.items() if p.owner.startswith("tapegrad.")}


def test_every_primitive_has_a_spec():
    covered = {s.name for s in SPECS}
    missing = set(_builtin()) - covered
    assert not missing, f"primitives without an op spec: {sorted(missing)}"
    stale = covered - set(PRIMITIVES)
    assert not stale, f"specs for primitives that do not exist: {sorted(stale)}"


def test_every_builtin_primitive_declares_its_rules():
    for name, p in _builtin().items():
        assert p.vjps is not None, f"{name}: no VJP rules"
        assert p.jvp is not None, f"{name}: no JVP rule (or marker)"
        assert p.taylor is not None, f"{name}: no Taylor rule (or marker): nested forward mode"


def test_a_primitive_without_a_taylor_rule_warns_once_and_stays_exact():
    from tapegrad.core import JVP_IS_VJP, primitive

    cube = primitive(
        "cube_without_jet", lambda x: x**3, [lambda xp, g, ans, x: g * 3 * x * x], JVP_IS_VJP
    )
    x = nd([0.5, -1.0])
    with pytest.warns(RuntimeWarning, match="cube_without_jet.*exponential"):
        _, (d1, d2, d3) = taylor(lambda z: cube(z), x, nd(np.ones((1, 2))), 3)
    np.testing.assert_allclose(d3.asnumpy()[0], [6.0, 6.0])
    np.testing.assert_allclose(d2.asnumpy()[0], 6 * x.asnumpy())


def test_stop_gradient_passes_the_value_and_blocks_the_gradient():
    from tapegrad import autograd

    x = nd([0.5, -1.0])
    x.attach_grad()
    with autograd.record():
        y = (T.stop_gradient(x) * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [0.5, -1.0])  # d/dx (c x) with c = x
