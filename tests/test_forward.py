"""Forward mode against reverse mode, primitive by primitive: <u, J v> = <J^T u, v>.

For every differentiable primitive of ``tapegrad.engine.PRIMITIVES`` (the coverage test fails
when one is added without a case), on random float64 inputs of a few shapes including
broadcasting: the JVP of ``forward.jvp``, the JVP of the Taylor-mode pass
(``sciml.taylormode.jvp``) and the VJP of ``functional.vjp`` must satisfy the adjoint
identity. Then perturbation-confusion cases for every nesting of forward and reverse mode.
"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import functional as F
from tapegrad.engine import PRIMITIVES, TAPE
from tapegrad.forward import jvp
from tapegrad.sciml.taylormode import jvp as taylor_jvp

T = TAPE


def nd(a):
    return mx.nd.array(a, dtype="float64")


U = (-2.0, 2.0)
POS = (0.3, 2.0)
UNIT = (-0.8, 0.8)

# name -> list of (function of NDArrays, [(shape, domain), ...]); shapes broadcast
UNARY_DOMAINS = {
    "negative": U,
    "exp": U,
    "expm1": U,
    "log": POS,
    "log1p": POS,
    "log2": POS,
    "log10": POS,
    "sin": U,
    "cos": U,
    "tan": (-1.2, 1.2),
    "arcsin": UNIT,
    "arccos": UNIT,
    "arctan": U,
    "sinh": U,
    "cosh": U,
    "tanh": U,
    "arcsinh": U,
    "arccosh": (1.2, 3.0),
    "arctanh": UNIT,
    "sqrt": POS,
    "rsqrt": POS,
    "cbrt": POS,
    "rcbrt": POS,
    "square": U,
    "reciprocal": POS,
    "abs": POS,
    "sigmoid": U,
    "relu": POS,
    "softrelu": U,
    "erf": U,
    "sign": POS,
    "floor": (0.1, 0.9),
    "ceil": (0.1, 0.9),
    "round": (0.1, 0.4),
    "rint": (0.1, 0.4),
    "trunc": (0.1, 0.9),
    "fix": (0.1, 0.9),
}
BINARY_DOMAINS = {
    "add": (U, U),
    "subtract": (U, U),
    "multiply": (U, U),
    "divide": (U, POS),
    "power": (POS, (-1.5, 1.5)),
    "maximum": (U, U),
    "minimum": (U, U),
    "mod": ((0.1, 0.9), (1.5, 2.5)),
    "arctan2": (POS, POS),
    "hypot": (POS, POS),
}
SHAPES_1 = [(), (3,), (2, 3)]
SHAPES_2 = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1), (1, 3)), ((), (2, 2))]

COND = nd(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
OTHER = {
    "leaky_relu": [(lambda a: T.leaky_relu(a, slope=0.2), [((2, 3), U)])],
    "where": [(lambda a, b: T.where(COND, a, b), [((2, 3), U), ((3,), U)])],
    "clip": [(lambda a: T.clip(a, a_min=-0.5, a_max=0.7), [((3, 4), U)])],
    "cast": [(lambda a: T.cast(a, dtype=np.float64), [((2, 3), U)])],
    "copy": [(lambda a: T.copy(a), [((2, 3), U)])],
    "reshape": [(lambda a: T.reshape(a, shape=(3, 2)), [((2, 3), U)])],
    "transpose": [
        (lambda a: T.transpose(a, axes=(2, 0, 1)), [((2, 3, 4), U)]),
        (lambda a: T.transpose(a), [((2, 3), U)]),
    ],
    "broadcast_to": [(lambda a: T.broadcast_to(a, shape=(2, 3, 4)), [((3, 1), U)])],
    "getitem": [
        (lambda a: T.getitem(a, key=(slice(1, None), slice(None, None, 2))), [((3, 4), U)]),
        (lambda a: T.getitem(a, key=(np.array([0, 2, 0]),)), [((3, 4), U)]),
    ],
    "scatter": [(lambda a: T.scatter(a, shape=(4, 3), key=(np.array([0, 2, 2]),)), [((3, 3), U)])],
    "concat": [(lambda a, b: T.concat(a, b, a, axis=1), [((2, 3), U), ((2, 1), U)])],
    "stack": [(lambda a, b: T.stack(a, b, axis=-1), [((2, 3), U), ((2, 3), U)])],
    "tile": [(lambda a: T.tile(a, reps=(2, 1, 3)), [((2, 3), U)])],
    "repeat": [
        (lambda a: T.repeat(a, repeats=2, axis=1), [((2, 3), U)]),
        (lambda a: T.repeat(a, repeats=3), [((2, 3), U)]),
    ],
    "flip": [(lambda a: T.flip(a, axis=1), [((2, 3), U)])],
    "index_update": [
        (
            lambda a, b: T.index_update(a, b, key=(slice(0, 2), np.array([0, 2]))),
            [((3, 3), U), ((2,), U)],
        )
    ],
    "matmul": [(lambda a, b: T.matmul(a, b), [((2, 3, 4), U), ((4, 2), U)])],
    "fully_connected": [
        (lambda x, w, b: T.fully_connected(x, w, b), [((4, 3), U), ((5, 3), U), ((5,), U)]),
        (lambda x, w: T.fully_connected(x, w), [((4, 3), U), ((5, 3), U)]),
    ],
    "softmax": [(lambda a: T.softmax(a, axis=1), [((3, 4), U)])],
    "log_softmax": [(lambda a: T.log_softmax(a, axis=0), [((3, 4), U)])],
    "softmax_ce": [
        (lambda a: T.softmax_ce(a, np.array([2, 0, 3]), axis=-1), [((3, 4), U)]),
        (lambda a: T.softmax_ce(a, np.array([1, 0, 2, 0]), axis=0), [((3, 4), U)]),
    ],
    "softmax_ce_residual": [
        (lambda a: T.softmax_ce_residual(a, np.array([2, 0, 3]), axis=-1), [((3, 4), U)]),
        (lambda a: T.softmax_ce_residual(a, np.array([[1, 0]]), axis=1), [((1, 3, 2), U)]),
    ],
}
for _name in ("sum", "mean", "max", "min", "prod", "logsumexp"):
    OTHER[_name] = [
        (lambda a, n=_name, ax=ax, k=k: getattr(T, n)(a, axis=ax, keepdims=k), [((2, 3, 4), POS)])
        for ax, k in [(None, False), (1, True), ((0, 2), False), (-1, False)]
    ]


def _cases():
    cases = {}
    for name, dom in UNARY_DOMAINS.items():
        cases[name] = [(lambda a, n=name: getattr(T, n)(a), [(s, dom)]) for s in SHAPES_1]
    for name, (da, db) in BINARY_DOMAINS.items():
        cases[name] = [
            (lambda a, b, n=name: getattr(T, n)(a, b), [(sa, da), (sb, db)]) for sa, sb in SHAPES_2
        ]
    cases.update(OTHER)
    return cases


CASES = _cases()
DIFFERENTIABLE = sorted(n for n, p in PRIMITIVES.items() if p.vjps is not None)


def test_every_differentiable_primitive_has_a_case():
    missing = set(DIFFERENTIABLE) - set(CASES)
    assert not missing, f"primitives without a JVP-vs-VJP case: {sorted(missing)}"


def _inputs(specs, rng):
    arrays = []
    for shape, (lo, hi) in specs:
        a = rng.uniform(lo, hi, size=shape)
        arrays.append(a)
    return arrays


def _adjoint_check(f, arrays, rng, name):
    xs = [nd(a) for a in arrays]
    vs = [nd(rng.standard_normal(np.shape(a))) for a in arrays]
    y, jv = jvp(f, xs, vs)
    u = nd(rng.standard_normal(y.shape))
    _, pull = F.vjp(f, *xs)
    jtu = pull(u)
    lhs = float((u * jv).sum().asscalar())
    rhs = sum(float((g * v).sum().asscalar()) for g, v in zip(jtu, vs))
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs) + abs(rhs)), (
        f"{name}: <u, J v> = {lhs!r} but <J^T u, v> = {rhs!r}"
    )
    # the Taylor-mode JVP (order-1 pass over the recorded graph) gives the same tangent
    _, tv = taylor_jvp(f, xs, vs)
    np.testing.assert_allclose(
        tv.asnumpy(),
        jv.asnumpy(),
        rtol=1e-10,
        atol=1e-12,
        err_msg=f"{name}: Taylor-mode JVP differs from forward.jvp",
    )


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_jvp_is_adjoint_of_vjp(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    for f, specs in CASES[name]:
        _adjoint_check(f, _inputs(specs, rng), rng, name)


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


# ------------------------------------------------------------------ Taylor-mode rules
# Each primitive's Taylor rule (order 3, one direction; order 2 collapsed over three
# directions, the forward Laplacian) against nested forward mode of the engine.


def _nested(f, xs, vs, K):
    fn = lambda *z: [f(*z)]  # noqa: E731
    for _ in range(K):

        def fn(*z, inner=fn):
            p, t = jvp(inner, list(z), vs)
            return list(p) + [t[-1]]

    return fn(*xs)


def _taylor_many(f, xs, dirs, K, collapse):
    """taylor() for several inputs: pack them into one flat vector."""
    from tapegrad.sciml.taylormode import taylor

    shapes = [x.shape for x in xs]
    sizes = [int(np.prod(s)) for s in shapes]

    def g(flat):
        parts, k = [], 0
        for s, n in zip(shapes, sizes):
            parts.append(T.reshape(T.getitem(flat, key=(slice(k, k + n),)), shape=s))
            k += n
        return f(*parts)

    flat = nd(np.concatenate([x.asnumpy().reshape(-1) for x in xs]))
    D = np.stack([np.concatenate([d.reshape(-1) for d in dd]) for dd in dirs])
    return taylor(g, flat, nd(D), K, collapse=collapse)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_taylor_rules_match_nested_forward_mode(name):
    rng = np.random.default_rng(sum(map(ord, name)) + 1)
    for f, specs in CASES[name]:
        arrays = _inputs(specs, rng)
        xs = [nd(a) for a in arrays]
        dirs = [[rng.standard_normal(np.shape(a)) for a in arrays] for _ in range(3)]
        _, cs = _taylor_many(f, xs, dirs[:1], 3, False)
        ref = _nested(f, xs, [nd(d) for d in dirs[0]], 3)
        for k in (1, 2, 3):
            np.testing.assert_allclose(
                cs[k - 1].asnumpy()[0],
                ref[k].asnumpy(),
                rtol=1e-8,
                atol=1e-9,
                err_msg=f"{name}: order {k}",
            )
        _, (c1, c2) = _taylor_many(f, xs, dirs, 2, True)
        lap = 0.0
        for d in range(3):
            r = _nested(f, xs, [nd(a) for a in dirs[d]], 2)
            np.testing.assert_allclose(c1.asnumpy()[d], r[1].asnumpy(), rtol=1e-8, atol=1e-9)
            lap = lap + r[2].asnumpy()
        np.testing.assert_allclose(
            c2.asnumpy()[0], lap, rtol=1e-8, atol=1e-9, err_msg=f"{name}: collapsed order 2"
        )
