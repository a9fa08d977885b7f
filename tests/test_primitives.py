"""Every differentiable primitive, first and second order (third for elementwise functions),
against central finite differences in float64, in random directions, over random shapes
with broadcasting, every reduction axis and keepdims.

The table below must name every primitive of ``tapegrad.engine.PRIMITIVES``:
``test_every_primitive_is_covered`` fails when a new primitive is added without a spec.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tapegrad as mx
from tapegrad import autograd
from tapegrad.base import GraphError
from tapegrad.engine import PRIMITIVES, TAPE

T = TAPE
EPS = 1e-6

# ---------------------------------------------------------------- the checking machinery


def _nd(a):
    return mx.nd.array(a, dtype="float64")


def _scalar(f, xs, ct):
    """S(xs) = sum(ct * f(xs)) as a tapegrad scalar."""
    out = f(*xs)
    return (out * ct).sum()


def _numpy_S(f, arrays, ct):
    with autograd.pause():
        return float((f(*[_nd(a) for a in arrays]) * ct).sum().asscalar())


def _grads(f, xs, ct, create_graph):
    """Gradients of S = <ct, f(xs)> w.r.t. all xs (recorded when create_graph)."""
    for x in xs:
        x.attach_grad()
    with autograd.record():
        s = _scalar(f, xs, ct)
        gs = autograd.grad(s, xs, create_graph=create_graph, retain_graph=True)
    return gs


def check_order(f, arrays, order, rng, rtol=1e-5, atol=1e-7):
    """Compare the ``order``-th directional derivative from autograd with finite
    differences of the (order-1)-th one. order 1: d/deps S(x + eps v)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    with autograd.pause():
        out_shape = f(*[_nd(a) for a in arrays]).shape
    ct = _nd(rng.standard_normal(out_shape))
    # random directions w_1..w_{order-1} contract the lower derivatives to a scalar
    ws = [[rng.standard_normal(a.shape) for a in arrays] for _ in range(order - 1)]
    v = [rng.standard_normal(a.shape) for a in arrays]

    def grad_or_zero(val, xs, create):
        # a derivative that no longer depends on the inputs (e.g. the second derivative of
        # a linear op) is zero; the finite differences below still check that claim
        out = []
        for x in xs:
            try:
                out.append(autograd.grad(val, [x], create_graph=create, retain_graph=True)[0])
            except GraphError:
                out.append(mx.nd.zeros(x.shape, dtype=x.dtype))
        return out

    def D(arrs, want_graph):
        """(order-1)-th directional derivative of S along ws, as a function of arrs."""
        xs = [_nd(a) for a in arrs]
        for x in xs:
            x.attach_grad()
        with autograd.record():
            val = _scalar(f, xs, ct)
            for k in range(order - 1):
                gs = grad_or_zero(val, xs, True)
                val = sum((g * _nd(w)).sum() for g, w in zip(gs, ws[k]))
            if not want_graph:
                return float(val.asscalar())
            gs = grad_or_zero(val, xs, False)
        return gs

    analytic = sum(float((g.asnumpy() * vi).sum()) for g, vi in zip(D(arrays, True), v))
    plus = D([a + EPS * vi for a, vi in zip(arrays, v)], False)
    minus = D([a - EPS * vi for a, vi in zip(arrays, v)], False)
    numeric = (plus - minus) / (2 * EPS)
    assert np.isfinite(analytic), f"non-finite derivative of order {order}"
    assert abs(analytic - numeric) <= atol + rtol * max(abs(numeric), abs(analytic)), (
        f"order {order}: autograd {analytic!r} vs finite differences {numeric!r}"
    )


# ---------------------------------------------------------------- the table

# elementwise unary: name -> domain (low, high); third order is checked for these
UNARY = {
    "negative": (-2, 2),
    "exp": (-2, 2),
    "expm1": (-2, 2),
    "log": (0.3, 3),
    "log1p": (-0.5, 2),
    "log2": (0.3, 3),
    "log10": (0.3, 3),
    "sin": (-3, 3),
    "cos": (-3, 3),
    "tan": (-1.2, 1.2),
    "arcsin": (-0.8, 0.8),
    "arccos": (-0.8, 0.8),
    "arctan": (-3, 3),
    "sinh": (-2, 2),
    "cosh": (-2, 2),
    "tanh": (-2, 2),
    "arcsinh": (-3, 3),
    "arccosh": (1.2, 3),
    "arctanh": (-0.8, 0.8),
    "sqrt": (0.3, 3),
    "rsqrt": (0.3, 3),
    "cbrt": (0.3, 3),
    "rcbrt": (0.3, 3),
    "square": (-2, 2),
    "reciprocal": (0.3, 3),
    "abs": (0.2, 2),
    "sigmoid": (-4, 4),
    "relu": (0.1, 2),
    "softrelu": (-4, 4),
    "erf": (-2, 2),
    "sign": (0.2, 2),
    "floor": (0.1, 0.9),
    "ceil": (0.1, 0.9),
    "round": (0.1, 0.4),
    "rint": (0.1, 0.4),
    "trunc": (0.1, 0.9),
    "fix": (0.1, 0.9),
}
# (also a negative-side check for the piecewise ones)
UNARY_NEG = {"abs": (-2, -0.2), "relu": (-2, -0.1), "sign": (-2, -0.2)}

BINARY = {
    "add": ((-2, 2), (-2, 2)),
    "subtract": ((-2, 2), (-2, 2)),
    "multiply": ((-2, 2), (-2, 2)),
    "divide": ((-2, 2), (0.5, 2)),
    "power": ((0.5, 2), (-1.5, 1.5)),
    "maximum": ((-2, 2), (-2, 2)),
    "minimum": ((-2, 2), (-2, 2)),
    "mod": ((0.1, 0.9), (1.5, 2.5)),
    "arctan2": ((0.5, 2), (0.5, 2)),
    "hypot": ((0.5, 2), (0.5, 2)),
}

NONDIFF = {
    "equal",
    "not_equal",
    "greater",
    "greater_equal",
    "lesser",
    "lesser_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "floor_divide",
    "argmax",
    "argmin",
}

REDUCTIONS = ["sum", "mean", "max", "min", "prod", "logsumexp"]

# everything else has a hand-written case below
OTHERS = {
    "leaky_relu",
    "where",
    "clip",
    "cast",
    "copy",
    "reshape",
    "transpose",
    "broadcast_to",
    "getitem",
    "scatter",
    "concat",
    "stack",
    "tile",
    "repeat",
    "flip",
    "index_update",
    "matmul",
    "fully_connected",
    "softmax",
    "log_softmax",
    "softmax_ce",
    "softmax_ce_residual",
}


def test_every_primitive_is_covered():
    covered = set(UNARY) | set(BINARY) | NONDIFF | set(REDUCTIONS) | OTHERS
    missing = set(PRIMITIVES) - covered
    assert not missing, f"primitives without a finite-difference spec: {sorted(missing)}"
    stale = covered - set(PRIMITIVES)
    assert not stale, f"specs for primitives that do not exist: {sorted(stale)}"


def _uniform(rng, shape, dom):
    return rng.uniform(dom[0], dom[1], size=shape)


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=array_shapes(min_dims=0, max_dims=3, max_side=4), seed=st.integers(0, 2**16))
@settings(max_examples=4, deadline=None)
def test_unary(name, shape, seed):
    rng = np.random.default_rng(seed)
    prim = getattr(T, name)
    doms = [UNARY[name]] + ([UNARY_NEG[name]] if name in UNARY_NEG else [])
    for dom in doms:
        x = _uniform(rng, shape, dom)
        for order in (1, 2, 3):
            check_order(lambda a: prim(a), [x], order, rng)


@pytest.mark.parametrize("name", sorted(BINARY))
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=5, deadline=None)
def test_binary_broadcasting(name, shapes, seed):
    rng = np.random.default_rng(seed)
    prim = getattr(T, name)
    dx, dy = BINARY[name]
    sx, sy = shapes.input_shapes
    x, y = _uniform(rng, sx, dx), _uniform(rng, sy, dy)
    if name in ("maximum", "minimum"):
        y = x * 0 + y + 0.3 * np.sign(y - x + 1e-9) if sx == sy else y  # keep away from ties
    for order in (1, 2, 3):
        check_order(lambda a, b: prim(a, b), [x, y], order, rng)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_with_python_scalar(name):
    rng = np.random.default_rng(0)
    prim = getattr(T, name)
    dx, dy = BINARY[name]
    x = _uniform(rng, (2, 3), dx)
    c = float(np.mean(dy))
    check_order(lambda a: prim(a, c), [x], 2, rng)
    if name not in ("mod",):
        c2 = float(np.mean(dx))
        check_order(lambda b: prim(c2, b), [_uniform(rng, (3,), dy)], 2, rng)


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_every_axis(name, axis, keepdims):
    rng = np.random.default_rng(hash((name, str(axis), keepdims)) % 2**32)
    x = rng.uniform(0.5, 1.5, size=(2, 3, 4))
    prim = getattr(T, name)
    for order in (1, 2):
        check_order(lambda a: prim(a, axis=axis, keepdims=keepdims), [x], order, rng)


@pytest.mark.parametrize("name", sorted(NONDIFF))
def test_nondifferentiable_ops_are_not_recorded(name):
    x = _nd([[0.2, 1.5], [2.0, -1.0]])
    x.attach_grad()
    prim = getattr(T, name)
    with autograd.record():
        if name in ("argmax", "argmin"):
            out = prim(x, axis=1)
        elif name == "logical_not":
            out = prim(x)
        else:
            out = prim(x, 1.0)
    assert out._node is None
    # and the values are NumPy's
    ref = {
        "equal": np.equal,
        "not_equal": np.not_equal,
        "greater": np.greater,
        "greater_equal": np.greater_equal,
        "lesser": np.less,
        "lesser_equal": np.less_equal,
        "logical_and": np.logical_and,
        "logical_or": np.logical_or,
        "logical_xor": np.logical_xor,
        "floor_divide": np.floor_divide,
    }
    a = x.asnumpy()
    if name in ref:
        np.testing.assert_array_equal(out.asnumpy(), ref[name](a, 1.0).astype(np.float64))
    elif name == "logical_not":
        np.testing.assert_array_equal(out.asnumpy(), np.logical_not(a).astype(np.float64))
    else:
        np.testing.assert_array_equal(out.asnumpy(), getattr(np, name)(a, axis=1))


# ---- the hand-written cases ------------------------------------------------------------


def _rng(name):
    return np.random.default_rng(sum(map(ord, name)))


CASES = {
    "leaky_relu": (
        lambda a: T.leaky_relu(a, slope=0.1),
        [((3, 4), (0.1, 2))],
        [((3, 4), (-2, -0.1))],
    ),
    "clip": (
        lambda a: T.clip(a, a_min=-0.5, a_max=0.5),
        [((3, 4), (-0.4, 0.4))],
        [((3, 4), (0.6, 2))],
    ),
    "cast": (lambda a: T.cast(a, dtype=np.float64) * a, [((3, 2), (-2, 2))], []),
    "copy": (lambda a: T.copy(a) * a, [((2, 3), (-2, 2))], []),
    "reshape": (lambda a: T.reshape(a, shape=(4, 3)) ** 2, [((2, 6), (-2, 2))], []),
    "transpose": (lambda a: T.transpose(a, axes=(2, 0, 1)) * a.sum(), [((2, 3, 4), (-2, 2))], []),
    "broadcast_to": (lambda a: T.broadcast_to(a, shape=(2, 3, 4)) ** 3, [((3, 1), (-2, 2))], []),
    "getitem": (lambda a: a[1:, ::2] ** 2 + a[np.array([0, 2, 0])].sum(), [((3, 4), (-2, 2))], []),
    "scatter": (
        lambda a: T.scatter(a**2, shape=(4, 3), key=(np.array([0, 2, 2]),)),
        [((3, 3), (-2, 2))],
        [],
    ),
    "tile": (lambda a: T.tile(a, reps=(2, 1, 3)) ** 2, [((2, 3), (-2, 2))], []),
    "repeat": (
        lambda a: T.repeat(a, repeats=2, axis=1) ** 2 + T.repeat(a, repeats=3).sum(),
        [((2, 3), (-2, 2))],
        [],
    ),
    "flip": (lambda a: T.flip(a, axis=1) * a, [((2, 3), (-2, 2))], []),
    "softmax": (lambda a: T.softmax(a, axis=1) * T.softmax(a, axis=0), [((3, 4), (-2, 2))], []),
    "log_softmax": (lambda a: T.log_softmax(a, axis=-1) ** 2, [((3, 4), (-2, 2))], []),
    "softmax_ce": (
        lambda a: (
            T.softmax_ce(a, np.array([2, 0, 3]), axis=-1) ** 2
            + T.sum(T.softmax_ce(a, np.array([1.0, 0.0, 2.0, 0.0]), axis=0))
        ),
        [((3, 4), (-2, 2))],
        [],
    ),
    # 2-D rows (the fast path) and a 3-D array along its middle axis (the general one)
    "softmax_ce_residual": (
        lambda a: T.softmax_ce_residual(a, np.array([2, 0, 3]), axis=-1) ** 2,
        [((3, 4), (-2, 2))],
        [],
    ),
    "softmax_ce_residual 3-D": (
        lambda a: T.softmax_ce_residual(a, np.array([[1, 0], [2, 2]]), axis=1) ** 2,
        [((2, 3, 2), (-2, 2))],
        [],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_unary_cases(name):
    f, doms, extra = CASES[name]
    rng = _rng(name)
    for shape, dom in doms + extra:
        x = _uniform(rng, shape, dom)
        for order in (1, 2, 3):
            check_order(f, [x], order, rng)


def test_where():
    rng = _rng("where")
    cond = _nd(rng.uniform(size=(3, 4)) > 0.5)
    check_order(
        lambda a, b: T.where(cond, a, b) ** 2,
        [rng.normal(size=(3, 4)), rng.normal(size=(4,))],
        2,
        rng,
    )
    check_order(
        lambda a, b: T.where(cond, a * b, b**3),
        [rng.normal(size=(3, 1)), rng.normal(size=(3, 4))],
        3,
        rng,
    )


def test_concat_and_stack():
    rng = _rng("concat")
    for order in (1, 2):
        check_order(
            lambda a, b: T.concat(a, b * b, a, axis=1) ** 2,
            [rng.normal(size=(2, 3)), rng.normal(size=(2, 1))],
            order,
            rng,
        )
        check_order(
            lambda a, b: T.stack(a, b * a, axis=1) ** 2,
            [rng.normal(size=(2, 3)), rng.normal(size=(2, 3))],
            order,
            rng,
        )


def test_index_update():
    rng = _rng("index_update")
    key = (slice(0, 2), np.array([0, 2]))
    check_order(
        lambda a, b: T.index_update(a * a, b**3, key=key),
        [rng.normal(size=(3, 3)), rng.normal(size=(2,))],
        2,
        rng,
    )


@given(
    batch=array_shapes(min_dims=0, max_dims=2, max_side=3),
    n=st.integers(1, 3),
    k=st.integers(1, 3),
    m=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=8, deadline=None)
def test_matmul_batched_broadcasting(batch, n, k, m, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=tuple(batch) + (n, k))
    b = rng.normal(size=(k, m))
    for order in (1, 2):
        check_order(lambda x, y: T.matmul(x, y) ** 2, [a, b], order, rng)


def test_fully_connected():
    rng = _rng("fc")
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5,))
    for order in (1, 2, 3):
        check_order(lambda x_, w_, b_: T.tanh(T.fully_connected(x_, w_, b_)), [x, w, b], order, rng)
        check_order(lambda x_, w_: T.fully_connected(x_, w_) ** 2, [x, w], order, rng)


# ---------------------------------------------------------------- nd composites


COMPOSITES = {
    "nd.dot 2-D": (lambda a, b: mx.nd.dot(a, b), [(3, 4), (4, 2)]),
    "nd.dot transpose_a/b": (
        lambda a, b: mx.nd.dot(a, b, transpose_a=True, transpose_b=True),
        [(4, 3), (2, 4)],
    ),
    "nd.dot N-D": (lambda a, b: mx.nd.dot(a, b), [(2, 3, 4), (4, 2)]),
    "nd.dot vectors": (lambda a, b: mx.nd.dot(a, b), [(4,), (4,)]),
    "nd.batch_dot": (lambda a, b: mx.nd.batch_dot(a, b, transpose_b=True), [(2, 3, 4), (2, 5, 4)]),
    "nd.FullyConnected flatten": (
        lambda x, w, b: mx.nd.FullyConnected(x, w, b, num_hidden=3),
        [(2, 2, 2), (3, 4), (3,)],
    ),
    "nd.FullyConnected no flatten": (
        lambda x, w: mx.nd.FullyConnected(x, w, num_hidden=3, no_bias=True, flatten=False),
        [(2, 5, 4), (3, 4)],
    ),
    "nd.norm": (lambda a: mx.nd.norm(a, axis=1), [(3, 4)]),
    "nd.softsign": (lambda a: mx.nd.softsign(a), [(3, 4)]),
    "nd.pick": (lambda a: mx.nd.pick(a, mx.nd.array([0, 2, 1]), axis=1), [(3, 4)]),
    "nd.take": (lambda a: mx.nd.take(a, mx.nd.array([[0, 2], [1, 1]]), axis=1), [(3, 4)]),
    "nd.split": (lambda a: mx.nd.split(a, 2, axis=1)[1] * mx.nd.split(a, 2, axis=1)[0], [(3, 4)]),
    "nd.slice_axis": (lambda a: mx.nd.slice_axis(a, axis=1, begin=1, end=3), [(3, 4)]),
    "nd.slice": (lambda a: mx.nd.slice(a, begin=(0, 1), end=(2, 4)), [(3, 4)]),
    "nd.expand_dims/squeeze": (lambda a: mx.nd.squeeze(mx.nd.expand_dims(a, 1) ** 2), [(3, 4)]),
    "nd.reshape codes": (lambda a: a.reshape((0, -1)) ** 2, [(2, 3, 2)]),
    "NDArray boolean mask": (
        lambda a: a[mx.nd.array(np.arange(12).reshape(3, 4) % 3 == 0).astype("bool")] ** 3,
        [(3, 4)],
    ),
    "NDArray x[i, j]": (lambda a: a[1, 2] * a, [(3, 4)]),
    "nd.LeakyReLU elu": (lambda a: mx.nd.LeakyReLU(a, act_type="elu", slope=0.7), [(3, 4)]),
    "nd.LeakyReLU selu": (lambda a: mx.nd.LeakyReLU(a, act_type="selu"), [(3, 4)]),
    "nd.LeakyReLU gelu": (lambda a: mx.nd.LeakyReLU(a, act_type="gelu"), [(3, 4)]),
    "nd.Activation softsign": (lambda a: mx.nd.Activation(a, act_type="softsign"), [(3, 4)]),
    "nd.sum exclude": (lambda a: mx.nd.sum(a**2, axis=1, exclude=True), [(2, 3, 4)]),
    "nd.sort": (lambda a: mx.nd.sort(a, axis=1) * mx.nd.arange(4, dtype="float64"), [(3, 4)]),
    "nd.smooth_l1": (lambda a: mx.nd.smooth_l1(a * 3), [(3, 4)]),
    "nd.softmax_cross_entropy": (
        lambda a: mx.nd.softmax_cross_entropy(a, mx.nd.array([1, 0, 3])),
        [(3, 4)],
    ),
    "nd.softmax_ce_loss 3-D": (
        lambda a: mx.nd.softmax_ce_loss(a, mx.nd.array([[1, 0], [2, 1]]), axis=1),
        [(2, 3, 2)],
    ),
}


@pytest.mark.parametrize("label", sorted(COMPOSITES))
def test_nd_composites(label):
    f, shapes = COMPOSITES[label]
    rng = _rng(label)
    arrays = [rng.uniform(-2, 2, size=s) for s in shapes]
    for order in (1, 2):
        check_order(f, arrays, order, rng)


def test_softmax_ce_residual_values():
    # softmax(x) - onehot(label) along the axis, on the fast 2-D path and the general one
    rng = _rng("softmax_ce_residual values")
    x = rng.normal(size=(4, 5))
    lab = np.array([4, 0, 2, 2])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    ref = e / e.sum(axis=1, keepdims=True) - np.eye(5)[lab]
    np.testing.assert_allclose(T.softmax_ce_residual(_nd(x), lab, axis=1).asnumpy(), ref)
    x3 = rng.normal(size=(2, 3, 4))
    lab3 = np.array([[0, 2, 1, 1], [2, 2, 0, 1]])
    e3 = np.exp(x3 - x3.max(axis=1, keepdims=True))
    ref3 = e3 / e3.sum(axis=1, keepdims=True) - np.moveaxis(np.eye(3)[lab3], -1, 1)
    np.testing.assert_allclose(T.softmax_ce_residual(_nd(x3), lab3, axis=1).asnumpy(), ref3)
