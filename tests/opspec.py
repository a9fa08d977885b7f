"""The op-spec table: one entry (or more) per primitive, driving every generic primitive check
in ``tests/test_opspec.py`` (as PyTorch's OpInfo and Chainer's FunctionTestCase do):

* finite differences in float64, orders 1 to ``orders``, in random directions, over random
  shapes (broadcasting included for binary operations);
* the JVP/VJP adjoint identity ``<u, J v> = <J^T u, v>`` (forward mode against reverse mode,
  and the Taylor-mode JVP against forward mode);
* Taylor mode against nested forward mode (order 3 along one direction, and order 2 summed
  over three directions, the forward Laplacian).

``test_every_primitive_has_a_spec`` fails when a primitive is declared without an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import tapegrad as mx
from tapegrad import autograd
from tapegrad.core import TAPE

T = TAPE
EPS = 1e-6
U = (-2.0, 2.0)
POS = (0.3, 2.0)
UNIT = (-0.8, 0.8)

#: input shapes drawn at random: ``UNARY`` (0-3 dimensions, sides 1-4) or ``BROADCAST``
#: (two mutually broadcastable shapes)
UNARY = "unary"
BROADCAST = "broadcast"


@dataclass
class Spec:
    """``fn`` calls the primitive ``name`` on float64 NDArrays drawn from ``domains`` (one
    ``(low, high)`` per input) with shapes ``shapes`` (fixed, or UNARY / BROADCAST)."""

    name: str
    fn: Callable
    domains: list
    shapes: object = UNARY
    orders: int = 2
    label: str = ""
    taylor: bool = True
    fixed: list | None = None  # fixed input values (a point of interest: zeros, ties)
    fd: bool = True  # False: the derivative is declared, not the function's (stop_gradient)

    @property
    def id(self) -> str:
        return self.name + (f"[{self.label}]" if self.label else "")

    def draw_shapes(self, rng: np.random.Generator) -> list:
        if self.shapes == UNARY:
            nd = int(rng.integers(0, 4))
            return [tuple(int(s) for s in rng.integers(1, 5, size=nd))]
        if self.shapes == BROADCAST:
            nd = int(rng.integers(0, 4))
            base = [int(s) for s in rng.integers(1, 4, size=nd)]
            out = []
            for _ in range(2):
                drop = int(rng.integers(0, nd + 1))
                s = [1 if rng.random() < 0.3 else b for b in base[drop:]]
                out.append(tuple(s))
            return out
        return list(self.shapes)

    def draw(self, rng: np.random.Generator) -> list:
        if self.fixed is not None:
            return [np.array(v, dtype=np.float64) for v in self.fixed]
        shapes = self.draw_shapes(rng)
        return [rng.uniform(lo, hi, size=s) for s, (lo, hi) in zip(shapes, self.domains)]


def _unary(name, dom, orders=3, **kw):
    return Spec(name, lambda a, n=name: getattr(T, n)(a), [dom], UNARY, orders, **kw)


def _binary(name, da, db, orders=3, **kw):
    return Spec(name, lambda a, b, n=name: getattr(T, n)(a, b), [da, db], BROADCAST, orders, **kw)


SPECS: list[Spec] = []

# ---- elementwise unary (third order; piecewise ones on both sides of their kink)
for _n, _d in {
    "negative": U, "exp": U, "expm1": U, "log": POS, "log1p": (-0.5, 2), "log2": POS,
    "log10": POS, "sin": (-3, 3), "cos": (-3, 3), "tan": (-1.2, 1.2), "arcsin": UNIT,
    "arccos": UNIT, "arctan": (-3, 3), "sinh": U, "cosh": U, "tanh": U, "arcsinh": (-3, 3),
    "arccosh": (1.2, 3), "arctanh": UNIT, "sqrt": POS, "rsqrt": POS, "cbrt": POS, "rcbrt": POS,
    "square": U, "reciprocal": POS, "abs": (0.2, 2), "sigmoid": (-4, 4), "relu": (0.1, 2),
    "softrelu": (-4, 4), "erf": U, "sign": (0.2, 2), "floor": (0.1, 0.9), "ceil": (0.1, 0.9),
    "round": (0.1, 0.4), "rint": (0.1, 0.4), "trunc": (0.1, 0.9), "fix": (0.1, 0.9),
}.items():  # fmt: skip
    SPECS.append(_unary(_n, _d))
for _n, _d in {"abs": (-2, -0.2), "relu": (-2, -0.1), "sign": (-2, -0.2)}.items():
    SPECS.append(_unary(_n, _d, label="negative side"))
SPECS += [
    Spec("leaky_relu", lambda a: T.leaky_relu(a, slope=0.1), [U], UNARY, 3, "both sides"),
    Spec("clip", lambda a: T.clip(a, a_min=-0.5, a_max=0.5), [(-0.4, 0.4)], UNARY, 3, "inside"),
    Spec("clip", lambda a: T.clip(a, a_min=-0.5, a_max=0.5), [(0.6, 2)], UNARY, 3, "outside"),
    Spec("cast", lambda a: T.cast(a, dtype=np.float64) * a, [U], [(3, 2)], 3),
    Spec("copy", lambda a: T.copy(a) * a, [U], [(2, 3)], 3),
]

# ---- binary, broadcasting
for _n, (_da, _db) in {
    "add": (U, U), "subtract": (U, U), "multiply": (U, U), "divide": (U, (0.5, 2)),
    "power": ((0.5, 2), (-1.5, 1.5)), "mod": ((0.1, 0.9), (1.5, 2.5)),
    "arctan2": ((0.5, 2), (0.5, 2)), "hypot": ((0.5, 2), (0.5, 2)),
}.items():  # fmt: skip
    SPECS.append(_binary(_n, _da, _db))
SPECS.append(_binary("arctan2", (-2, -0.5), (-0.3, 0.3), label="left half-plane"))
# power where the math is finite: d/dy 0**y = 0 (y > 0), d/dx x**0 = 0 (x = 0 included)
X0 = np.array([0.0, 0.7, 0.0])
SPECS.append(Spec("power", lambda y: T.power(X0, y), [(0.5, 2.5)], [(3,)], 3, "base 0"))
SPECS.append(
    Spec("power", lambda x: T.power(x, np.array([0.0, 2.0, 1.0])), [U], [(3,)], 3, "exponent 0",
         fixed=[[0.0, 0.7, 0.0]])
)  # fmt: skip
# maximum/minimum away from ties (the inputs live in disjoint ranges)
SPECS.append(_binary("maximum", (-2, -0.5), (0.5, 2), label="second wins"))
SPECS.append(_binary("maximum", (0.5, 2), (-2, -0.5), label="first wins"))
SPECS.append(_binary("minimum", (-2, -0.5), (0.5, 2), label="first wins"))
SPECS.append(_binary("minimum", (0.5, 2), (-2, -0.5), label="second wins"))
# derivative identically zero: comparisons (inputs never cross 1.5 under perturbation)
for _n in ("equal", "not_equal", "greater", "greater_equal", "lesser", "lesser_equal",
           "logical_and", "logical_or", "logical_xor", "floor_divide"):  # fmt: skip
    SPECS.append(
        Spec(_n, lambda a, b, n=_n: getattr(T, n)(a, b) * a, [(0.2, 1.2), (1.6, 3)], BROADCAST)
    )
SPECS.append(Spec("logical_not", lambda a: T.logical_not(a) * a, [(0.2, 1.2)], UNARY))
COND = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
SPECS.append(Spec("where", lambda a, b: T.where(COND, a, b), [U, U], [(2, 3), (3,)], 3))

# ---- reductions over every axis, with and without keepdims
for _n in ("sum", "mean", "max", "min", "prod", "logsumexp"):
    for _ax in (None, 0, 1, -1, (0, 2)):
        for _k in (False, True):
            SPECS.append(
                Spec(
                    _n,
                    lambda a, n=_n, ax=_ax, k=_k: getattr(T, n)(a, axis=ax, keepdims=k),
                    [(0.5, 1.5)],
                    [(2, 3, 4)],
                    2,
                    f"axis={_ax}, keepdims={_k}",
                )
            )
for _n in ("argmax", "argmin"):
    SPECS.append(Spec(_n, lambda a, n=_n: getattr(T, n)(a, axis=1) * a.sum(), [U], [(3, 4)]))
# prod at zeros: the gradient at a zero is the product of the other entries (one zero in the
# first row, two in the second)
SPECS.append(
    Spec("prod", lambda a: T.prod(a, axis=1) ** 2, [U], [(2, 3)], 3, "zeros",
         fixed=[[[0.0, 1.5, -0.7], [0.8, 0.0, 0.0]]])
)  # fmt: skip

# ---- shape and indexing
SPECS += [
    Spec("reshape", lambda a: T.reshape(a, shape=(4, 3)) ** 2, [U], [(2, 6)], 3),
    Spec("transpose", lambda a: T.transpose(a, axes=(2, 0, 1)) * a.sum(), [U], [(2, 3, 4)], 3),
    Spec("transpose", lambda a: T.transpose(a) ** 2, [U], [(2, 3)], 2, "2-D"),
    Spec("broadcast_to", lambda a: T.broadcast_to(a, shape=(2, 3, 4)) ** 3, [U], [(3, 1)], 3),
    Spec(
        "getitem",
        lambda a: a[1:, ::2] ** 2 + T.getitem(a, key=(np.array([0, 2, 0]),)).sum(),
        [U],
        [(3, 4)],
        3,
    ),
    Spec(
        "scatter",
        lambda a: T.scatter(a**2, shape=(4, 3), key=(np.array([0, 2, 2]),)),
        [U],
        [(3, 3)],
        3,
    ),
    # gathers at an index input (Embedding, take, pick): repeated rows add up in the adjoint
    Spec(
        "take_at",
        lambda a: T.take_at(a**2, np.array([[0, 2], [2, 2]]), axis=-2) * a[0],
        [U],
        [(3, 4)],
        3,
    ),
    Spec(
        "take_at",
        lambda a: T.take_at(a, np.array([1, 1, 0]), axis=-1) ** 3,
        [U],
        [(2, 3)],
        3,
        "last axis",
    ),
    Spec(
        "take_at_t",
        lambda a: T.take_at_t(a**2, np.array([0, 2, 2]), axis=-2, n=4),
        [U],
        [(3, 2)],
        3,
    ),
    Spec(
        "pick_at",
        lambda a: T.pick_at(a**2, np.array([0, 2, 1]), axis=-1) * a[:, 0],
        [U],
        [(3, 4)],
        3,
    ),
    Spec(
        "pick_at_t", lambda a: T.pick_at_t(a**2, np.array([1, 0, 1]), axis=-2, n=2), [U], [(3,)], 3
    ),
    # integer positions: a zero derivative (a * 0 + 1.4 rounds to 1 at every point)
    Spec(
        "as_index",
        lambda a: T.take_at(a, T.as_index(a * 0.0 + 1.4, n=3), axis=-1) * a,
        [U],
        [(2, 3)],
    ),
    Spec("concat", lambda a, b: T.concat(a, b * b, a, axis=1) ** 2, [U, U], [(2, 3), (2, 1)]),
    Spec("stack", lambda a, b: T.stack(a, b * a, axis=1) ** 2, [U, U], [(2, 3), (2, 3)]),
    Spec("tile", lambda a: T.tile(a, reps=(2, 1, 3)) ** 2, [U], [(2, 3)], 3),
    Spec(
        "repeat",
        lambda a: T.repeat(a, repeats=2, axis=1) ** 2 + T.repeat(a, repeats=3).sum(),
        [U],
        [(2, 3)],
        3,
    ),
    Spec("flip", lambda a: T.flip(a, axis=1) * a, [U], [(2, 3)], 3),
    Spec(
        "index_update",
        lambda a, b: T.index_update(a * a, b**3, key=(slice(0, 2), np.array([0, 2]))),
        [U, U],
        [(3, 3), (2,)],
    ),
]

# ---- linear algebra
SPECS += [
    Spec("matmul", lambda a, b: T.matmul(a, b) ** 2, [U, U], [(2, 3, 4), (4, 2)], 2, "batched"),
    Spec("matmul", lambda a, b: T.matmul(a, b) ** 2, [U, U], [(3, 4), (4, 2)], 3, "2-D"),
    Spec(
        "fully_connected",
        lambda x, w, b: T.tanh(T.fully_connected(x, w, b)),
        [U, U, U],
        [(4, 3), (5, 3), (5,)],
        3,
        "bias",
    ),
    Spec(
        "fully_connected",
        lambda x, w: T.fully_connected(x, w) ** 2,
        [U, U],
        [(4, 3), (5, 3)],
        3,
        "no bias",
    ),
]

# ---- neural-network primitives
SPECS += [
    Spec("softmax", lambda a: T.softmax(a, axis=1) * T.softmax(a, axis=0), [U], [(3, 4)], 3),
    Spec("log_softmax", lambda a: T.log_softmax(a, axis=-1) ** 2, [U], [(3, 4)], 3),
    Spec(
        "softmax_ce",
        lambda a: (
            T.softmax_ce(a, np.array([2, 0, 3]), axis=-1) ** 2
            + T.sum(T.softmax_ce(a, np.array([1.0, 0.0, 2.0, 0.0]), axis=0))
        ),
        [U],
        [(3, 4)],
        3,
    ),
    Spec(
        "softmax_ce_residual",
        lambda a: T.softmax_ce_residual(a, np.array([2, 0, 3]), axis=-1) ** 2,
        [U],
        [(3, 4)],
        3,
        "rows",
    ),
    Spec(
        "softmax_ce_residual",
        lambda a: T.softmax_ce_residual(a, np.array([[1, 0], [2, 2]]), axis=1) ** 2,
        [U],
        [(2, 3, 2)],
        3,
        "3-D",
    ),
]

# ---- convolution and pooling (tapegrad/ops/conv.py), and the mx.nd operators built on them
_G2 = dict(kernel=(2, 3), stride=(2, 1), dilate=(1, 2), pad=(1, 0))
_CV = dict(stride=(2, 1), dilate=(1, 2), pad=(1, 1))
_IDX = np.array([[0, 5, 5], [11, 2, 7]])  # position 5 gathered twice
_DEAD = np.array([[0, 5, -1], [11, 2, 7]])  # -1: a window without a winner
_NDP = mx.nd.Pooling
SPECS += [
    Spec("unfold", lambda a: T.unfold(a, **_G2) ** 2, [U], [(2, 2, 5, 6)], 3),
    Spec("batch_last", lambda a: T.batch_last(a) ** 2 * a.sum(), [U], [(3, 2, 4)], 3),
    Spec("batch_last", lambda a: T.batch_last(a) ** 3, [U], [(8, 2, 8, 8)], 2, "padded rows"),
    Spec("fold", lambda a: T.fold(a**2, shape=(2, 2, 5, 6), **_G2), [U], [(12, 12)], 3),
    Spec(
        "convolution",
        lambda x, w, b: T.tanh(T.convolution(x, w, b, groups=2, **_CV)),
        [U, U, U],
        [(2, 4, 5, 6), (6, 2, 3, 2), (6,)],
        2,
        "2-D, groups, bias",
    ),
    Spec(
        "convolution",
        lambda x, w: T.convolution(x, w, stride=(2,), dilate=(1,), pad=(2,)) ** 2,
        [U, U],
        [(2, 3, 7), (4, 3, 3)],
        2,
        "1-D",
    ),
    Spec(
        "convolution",
        lambda x, w: T.convolution(x, w, stride=(1, 2, 1), dilate=(1, 1, 2), pad=(0, 1, 1)) ** 2,
        [U, U],
        [(1, 2, 3, 4, 5), (2, 2, 2, 2, 2)],
        2,
        "3-D",
    ),
    Spec(
        "deconvolution",
        lambda x, w, b: T.tanh(
            T.deconvolution(x, w, b, stride=(2, 1), dilate=(1, 2), pad=(1, 1), adj=(1, 0))
        ),
        [U, U, U],
        [(2, 4, 3, 4), (4, 3, 3, 2), (3,)],
        2,
        "2-D, bias, adj",
    ),
    Spec(
        "deconvolution",
        lambda x, w: (
            T.deconvolution(x, w, stride=(2,), dilate=(1,), pad=(0,), adj=(0,), groups=2) ** 2
        ),
        [U, U],
        [(2, 4, 3), (4, 1, 3)],
        2,
        "1-D, groups",
    ),
    Spec("pool_gather", lambda a: T.pool_gather(a, _IDX, shape=(3, 4)) ** 2, [U], [(3, 4)], 3),
    Spec(
        "pool_gather",
        lambda a: T.pool_gather(a, _DEAD, shape=(3, 4), fill=-5.0) ** 3,
        [U],
        [(2, 3, 4)],
        3,
        "leading axis, no winner",
    ),
    Spec(
        "pool_scatter",
        lambda a: (
            T.pool_scatter(a**2, _IDX, shape=(3, 4)) * T.sin(T.pool_scatter(a, _DEAD, shape=(3, 4)))
        ),
        [U],
        [(2, 3)],
        3,
    ),
    Spec(
        "pool_scatter",
        lambda a: T.pool_scatter(a, np.array([[1, 4], [6, 11]]), shape=(3, 4), unique=True) ** 2,
        [U],
        [(2, 2)],
        3,
        "unique",
    ),
    Spec(
        "pool_winners",
        lambda a: T.pool_winners(a, kernel=(2, 2), stride=(1, 2), lo=(1, 0), hi=(0, 1)) * a.sum(),
        [U],
        [(1, 2, 3, 4)],
    ),
    Spec(
        "window_sum",
        lambda a: T.window_sum(a, kernel=(2, 3), stride=(1, 2), lo=(1, 0), hi=(0, 2)) ** 2,
        [U],
        [(2, 3, 4, 5)],
        3,
    ),
    Spec(
        "window_sum_t",
        lambda a: T.window_sum_t(
            a**2, shape=(4, 5), kernel=(2, 3), stride=(1, 2), lo=(1, 0), hi=(0, 2)
        ),
        [U],
        [(2, 3, 4, 3)],
        3,
    ),
    Spec(
        "pool_gather",
        lambda a: _NDP(a, kernel=(3, 2), stride=(2, 1), pad=(1, 1), pooling_convention="full") ** 2,
        [U],
        [(2, 2, 5, 4)],
        2,
        "nd.Pooling max, overlapping, padded, full",
    ),
    Spec(
        "window_sum",
        lambda a: T.tanh(
            _NDP(
                a,
                kernel=(3, 2),
                stride=(2, 2),
                pad=(1, 0),
                pool_type="avg",
                count_include_pad=False,
                pooling_convention="full",
            )
        ),
        [U],
        [(2, 2, 5, 4)],
        2,
        "nd.Pooling avg",
    ),  # fmt: skip
    Spec(
        "window_sum",
        lambda a: _NDP(a, kernel=(2,), stride=(2,), pool_type="lp", p_value=2) ** 3,
        [U],
        [(2, 2, 5)],
        2,
        "nd.Pooling lp 2",
    ),
]

# ---- the engine's own: a value tied to other arrays by a zero derivative
SPECS.append(Spec("depends_on", lambda a, b: T.depends_on(a * b, b), [U, U], [(2, 3), (2, 3)], 3))


# ---- recurrent helpers (tapegrad/ops/rnn.py): a sequence split in one node, read step by
# step (a step read twice, one never read), and the adjoints (a missing step is zero)
def _steps(a, axis, order):
    s = T.unstack(a, axis=axis)
    return T.stack(*[T.unstack_get(s, index=i) * (i + 1.0) for i in order], axis=0)


SPECS += [
    Spec("unstack", lambda a: _steps(a, 1, (2, 0, 2)) ** 2, [U], [(2, 3, 4)], 3, "axis 1"),
    Spec("unstack", lambda a: _steps(a * a, -1, (1, 0)), [U], [(3, 2)], 3, "last axis"),
    Spec(
        "unstack_get",
        lambda a, b: T.unstack_get(T.unstack(a * b, axis=0), index=1) ** 3,
        [U, U],
        [(3, 2), (3, 2)],
        3,
    ),
    Spec(
        "unstack_put",
        lambda a: T.unstack_join(T.unstack_put(a**2, index=1, n=3), axis=1) * a.sum(),
        [U],
        [(2, 4)],
        3,
    ),
    Spec(
        "unstack_join",
        lambda a: T.unstack_join(T.unstack(T.sin(a), axis=1), axis=0) ** 2,
        [U],
        [(2, 3, 2)],
        3,
    ),
]


# ---------------------------------------------------------------- the checking machinery


def nd(a):
    return mx.nd.array(a, dtype="float64")


def _scalar(f, xs, ct):
    return (f(*xs) * ct).sum()


def check_order(f, arrays, order, rng, rtol=1e-5, atol=1e-7):
    """The ``order``-th directional derivative of ``S = <ct, f(x)>`` from autograd (order-1
    nested ``grad(create_graph=True)``, contracted with random directions) against central
    finite differences of the (order-1)-th one."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    with autograd.pause():
        out_shape = f(*[nd(a) for a in arrays]).shape
    ct = nd(rng.standard_normal(out_shape))
    ws = [[rng.standard_normal(a.shape) for a in arrays] for _ in range(order - 1)]
    v = [rng.standard_normal(a.shape) for a in arrays]

    def D(arrs, want_graph):
        xs = [nd(a) for a in arrs]
        for x in xs:
            x.attach_grad()
        with autograd.record():
            val = _scalar(f, xs, ct)
            for k in range(order - 1):
                gs = autograd.grad(val, xs, create_graph=True, retain_graph=True)
                val = sum((g * nd(w)).sum() for g, w in zip(gs, ws[k]))
            if not want_graph:
                return float(val.asscalar())
            return autograd.grad(val, xs, retain_graph=True)

    analytic = sum(float((g.asnumpy() * vi).sum()) for g, vi in zip(D(arrays, True), v))
    plus = D([a + EPS * vi for a, vi in zip(arrays, v)], False)
    minus = D([a - EPS * vi for a, vi in zip(arrays, v)], False)
    numeric = (plus - minus) / (2 * EPS)
    assert np.isfinite(analytic), f"non-finite derivative of order {order}"
    assert abs(analytic - numeric) <= atol + rtol * max(abs(numeric), abs(analytic)), (
        f"order {order}: autograd {analytic!r} vs finite differences {numeric!r}"
    )


# its derivative is zero by declaration, not the identity's: no finite differences (its own
# test checks it); the adjoint and Taylor checks apply
SPECS.append(Spec("stop_gradient", lambda a: T.stop_gradient(a) * a, [U], UNARY, 3, fd=False))

# ---- random: the dropout mask (p = 0 keeps every element, so it is deterministic here; the
# randomness itself is tested with Dropout)
SPECS.append(Spec("dropout_mask", lambda a: T.dropout_mask(a, p=0.0, shape=a.shape) * a, [U]))
# ---- random: the samplers' draw (nd.random.*, sample_*): no derivative for the parameters,
# so a + 0 * draw is a (the draws themselves are tested in test_random_samplers.py)
SPECS.append(
    Spec(
        "random_draw",
        lambda a: (
            a + 0.0 * T.random_draw(a, T.abs(a) + 1.0, dist="normal", shape=(), dtype=np.float64)
        ),
        [U],
    )
)
