"""Every optimizer against its documented MXNet update, written again here in NumPy, over
several steps with weight decay, clipping, gradient rescaling and per-parameter lr/wd
multipliers; the registry; learning-rate schedulers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd
from tapegrad import lr_scheduler as lrs
from tapegrad.optimizer import OptimizerError

SHAPES = [(3, 4), (5,)]
STEPS = 5
RESCALE = 0.5
CLIP = 0.3
WD = 0.01
BASE_LR = 0.1
MULTS = [SimpleNamespace(lr_mult=0.5, wd_mult=2.0), SimpleNamespace(lr_mult=1.0, wd_mult=1.0)]


def _clip(x, c):
    return np.minimum(np.maximum(x, -c), c) if c else x


# --- reference updates, transcribed from MXNet's documentation / operator definitions ------
# Each takes (w, g, s, t, lr, wd, h) with s a dict of states and h the hyper-parameters, and
# returns the new weight (updating s).


def ref_sgd(w, g, s, t, lr, wd, h):
    # rescaled_grad = lr * (clip(rescale_grad * grad) + wd * weight)
    # state = momentum * state + rescaled_grad; weight = weight - state
    r = lr * (_clip(h["rescale"] * g, h["clip"]) + wd * w)
    if h["momentum"] == 0:
        return w - r
    s["state"] = h["momentum"] * s.get("state", 0) + r
    return w - s["state"]


def ref_nag(w, g, s, t, lr, wd, h):
    # state = momentum * state + grad + wd * weight
    # weight = weight - lr * (grad + wd * weight + momentum * state)
    gg = _clip(h["rescale"] * g, h["clip"]) + wd * w
    s["state"] = h["momentum"] * s.get("state", 0) + gg
    return w - lr * (gg + h["momentum"] * s["state"])


def ref_adam(w, g, s, t, lr, wd, h):
    gg = _clip(h["rescale"] * g + wd * w, h["clip"])
    s["m"] = h["beta1"] * s.get("m", 0) + (1 - h["beta1"]) * gg
    s["v"] = h["beta2"] * s.get("v", 0) + (1 - h["beta2"]) * gg**2
    lr_t = lr * math.sqrt(1 - h["beta2"] ** t) / (1 - h["beta1"] ** t)
    return w - lr_t * s["m"] / (np.sqrt(s["v"]) + h["epsilon"])


def ref_adamw(w, g, s, t, lr, wd, h):
    gg = _clip(h["rescale"] * g, h["clip"])
    s["m"] = h["beta1"] * s.get("m", 0) + (1 - h["beta1"]) * gg
    s["v"] = h["beta2"] * s.get("v", 0) + (1 - h["beta2"]) * gg**2
    lr_t = lr * math.sqrt(1 - h["beta2"] ** t) / (1 - h["beta1"] ** t)
    return w - lr_t * (s["m"] / (np.sqrt(s["v"]) + h["epsilon"]) + wd * w)


def ref_adagrad(w, g, s, t, lr, wd, h):
    gg = _clip(h["rescale"] * g, h["clip"])
    s["history"] = s.get("history", 0) + gg**2
    return w - lr * (gg / np.sqrt(s["history"] + h["eps"]) + wd * w)


def ref_rmsprop(w, g, s, t, lr, wd, h):
    gg = _clip(h["rescale"] * g + wd * w, h["clip"])
    s["n"] = (1 - h["gamma1"]) * gg**2 + h["gamma1"] * s.get("n", 0)
    if not h["centered"]:
        return w - lr * gg / np.sqrt(s["n"] + h["epsilon"])
    s["g"] = (1 - h["gamma1"]) * gg + h["gamma1"] * s.get("g", 0)
    s["delta"] = h["gamma2"] * s.get("delta", 0) - lr * gg / np.sqrt(
        s["n"] - s["g"] ** 2 + h["epsilon"]
    )
    return w + s["delta"]


def ref_adadelta(w, g, s, t, lr, wd, h):
    gg = _clip(h["rescale"] * g, h["clip"])
    s["acc_g"] = h["rho"] * s.get("acc_g", 0) + (1 - h["rho"]) * gg**2
    delta = np.sqrt(s.get("acc_delta", 0) + h["epsilon"]) / np.sqrt(s["acc_g"] + h["epsilon"])
    delta = delta * gg
    s["acc_delta"] = h["rho"] * s.get("acc_delta", 0) + (1 - h["rho"]) * delta**2
    return w - (delta + wd * w)


CASES = [
    ("sgd", {"momentum": 0.0}, ref_sgd),
    ("sgd", {"momentum": 0.9}, ref_sgd),
    ("nag", {"momentum": 0.9}, ref_nag),
    ("nag", {"momentum": 0.0}, ref_sgd),  # NAG without momentum is plain SGD in MXNet
    ("adam", {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}, ref_adam),
    ("adamw", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}, ref_adamw),
    ("adagrad", {"eps": 1e-7}, ref_adagrad),
    ("rmsprop", {"gamma1": 0.9, "epsilon": 1e-8, "centered": False}, ref_rmsprop),
    ("rmsprop", {"gamma1": 0.95, "gamma2": 0.8, "epsilon": 1e-8, "centered": True}, ref_rmsprop),
    ("adadelta", {"rho": 0.9, "epsilon": 1e-5}, ref_adadelta),
]


def _run(name, kwargs, ref, dtype):
    opt = mx.optimizer.create(
        name, learning_rate=BASE_LR, wd=WD, rescale_grad=RESCALE, clip_gradient=CLIP, **kwargs
    )
    opt.param_dict = dict(enumerate(MULTS))
    rng = np.random.default_rng(7)
    h = dict(kwargs, rescale=RESCALE, clip=CLIP)
    h.setdefault("momentum", 0.0)
    ws = [rng.standard_normal(s) for s in SHAPES]
    nds = [mx.nd.array(w, dtype=dtype) for w in ws]
    states = [opt.create_state(i, w) for i, w in enumerate(nds)]
    ref_states: list = [{} for _ in SHAPES]
    for t in range(1, STEPS + 1):
        for i, shape in enumerate(SHAPES):
            g = rng.standard_normal(shape) * 2.0  # large enough for clipping to matter
            opt.update(i, nds[i], mx.nd.array(g, dtype=dtype), states[i])
            lr = BASE_LR * MULTS[i].lr_mult
            wd = WD * MULTS[i].wd_mult
            ws[i] = ref(ws[i], g, ref_states[i], t, lr, wd, h)
    return opt, nds, ws, states


@pytest.mark.parametrize("name,kwargs,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_update_matches_documented_formula_float64(name, kwargs, ref):
    opt, nds, ws, _ = _run(name, kwargs, ref, "float64")
    for nd_w, w in zip(nds, ws):
        assert nd_w.dtype == np.float64
        np.testing.assert_allclose(nd_w.asnumpy(), w, rtol=1e-10, atol=1e-12)
    assert opt.num_update == STEPS
    assert opt._index_update_count == {0: STEPS, 1: STEPS}


@pytest.mark.parametrize(
    "name,kwargs,ref", CASES[:3] + CASES[4:6], ids=["sgd", "sgd-mom", "nag", "adam", "adamw"]
)
def test_update_float32_keeps_dtype(name, kwargs, ref):
    _, nds, ws, states = _run(name, kwargs, ref, "float32")
    for nd_w, w in zip(nds, ws):
        assert nd_w.dtype == np.float32
        np.testing.assert_allclose(nd_w.asnumpy(), w, rtol=2e-5, atol=2e-6)
    for st in states:
        for a in st if isinstance(st, tuple) else [st]:
            if a is not None:
                assert a.dtype == np.float32


def test_sgd_momentum_state_is_mxnet_convention():
    # MXNet's sgd_mom_update keeps mom = momentum * mom - lr * (g + wd * w): the negative of
    # the documented "state"
    opt = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, wd=0.1)
    w = mx.nd.array([1.0, -2.0], dtype="float64")
    mom = opt.create_state(0, w)
    opt.update(0, w, mx.nd.array([0.5, 0.5], dtype="float64"), mom)
    np.testing.assert_allclose(
        mom.asnumpy(), -0.1 * (np.array([0.5, 0.5]) + 0.1 * np.array([1.0, -2.0]))
    )
    np.testing.assert_allclose(w.asnumpy(), np.array([1.0, -2.0]) + mom.asnumpy())


def test_clipping_happens_after_rescaling():
    opt = mx.optimizer.SGD(learning_rate=1.0, rescale_grad=0.1, clip_gradient=1.0)
    w = mx.nd.zeros((1,), dtype="float64")
    opt.update(0, w, mx.nd.array([5.0], dtype="float64"), None)
    assert w.asnumpy()[0] == pytest.approx(-0.5)  # clip(0.1 * 5) = 0.5, not 0.1 * clip(5)


def test_no_clipping_when_clip_gradient_is_zero_or_none():
    for clip in (None, 0, 0.0):
        opt = mx.optimizer.Adam(learning_rate=1.0, clip_gradient=clip)
        w = mx.nd.zeros((1,), dtype="float64")
        st = opt.create_state(0, w)
        opt.update(0, w, mx.nd.array([100.0], dtype="float64"), st)
        assert st[0].asnumpy()[0] == pytest.approx(10.0)  # (1 - beta1) * 100, unclipped


def test_adamw_skips_update_on_bad_rescale():
    for bad in (float("nan"), float("inf"), 0.0):
        opt = mx.optimizer.AdamW(learning_rate=0.1, rescale_grad=bad)
        w = mx.nd.array([1.0, 2.0])
        st = opt.create_state(0, w)
        opt.update(0, w, mx.nd.array([1.0, 1.0]), st)
        assert w.asnumpy().tolist() == [1.0, 2.0]
        assert opt.num_update == 1


def test_adam_t_is_per_weight():
    opt = mx.optimizer.Adam(learning_rate=0.1)
    a, b = mx.nd.zeros((1,), dtype="float64"), mx.nd.zeros((1,), dtype="float64")
    sa, sb = opt.create_state(0, a), opt.create_state(1, b)
    g = mx.nd.array([1.0], dtype="float64")
    for _ in range(3):
        opt.update(0, a, g, sa)
    opt.update(1, b, g, sb)  # first update of b: t = 1, whatever num_update is
    assert opt.num_update == 3 and opt._index_update_count[1] == 1
    assert b.asnumpy()[0] == pytest.approx(-0.1, rel=1e-6)


def test_lr_mult_wd_mult_by_index_name_and_param_dict():
    opt = mx.optimizer.SGD(
        learning_rate=1.0, wd=0.5, param_idx2name={0: "fc_weight", 1: "fc_bias", 2: "bn_gamma"}
    )
    # MXNet: with names, only *_weight and *_gamma are decayed
    assert [opt._get_wd(i) for i in range(3)] == [0.5, 0.0, 0.5]
    opt.set_lr_mult({"fc_bias": 2.0, 0: 0.1})
    assert opt._get_lr(0) == pytest.approx(0.1) and opt._get_lr(1) == 2.0
    opt.set_wd_mult({"fc_bias": 1.0})
    assert opt._get_wd(1) == 0.5
    opt.param_dict = {1: SimpleNamespace(lr_mult=3.0, wd_mult=0.0)}  # Parameters win
    assert opt._get_lr(1) == 3.0 and opt._get_wd(1) == 0.0
    # the single-index forms agree with MXNet's list forms, which a subclass may override
    assert [opt._get_lr(i) for i in range(3)] == opt._get_lrs([0, 1, 2])
    assert [opt._get_wd(i) for i in range(3)] == opt._get_wds([0, 1, 2])

    class Halved(mx.optimizer.SGD):
        def _get_lrs(self, indices):
            return [x / 2 for x in super()._get_lrs(indices)]

    w = mx.nd.array([1.0])
    Halved(learning_rate=1.0).update(0, w, mx.nd.array([2.0]), None)
    assert w.asscalar() == pytest.approx(0.0)  # 1 - (1.0 / 2) * 2


def test_update_accepts_lists():
    opt = mx.optimizer.SGD(learning_rate=1.0)
    ws = [mx.nd.ones((2,)), mx.nd.ones((3,))]
    gs = [mx.nd.ones((2,)), mx.nd.ones((3,)) * 2]
    opt.update([0, 1], ws, gs, [None, None])
    assert ws[0].asnumpy().tolist() == [0, 0] and ws[1].asnumpy().tolist() == [-1, -1, -1]


def test_update_bumps_version_of_weight_and_state():
    opt = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9)
    w = mx.nd.ones((2,))
    st = opt.create_state(0, w)
    v_w, v_s = w._version, st._version
    opt.update(0, w, mx.nd.ones((2,)), st)
    assert w._version > v_w and st._version > v_s


def test_gradient_shape_mismatch_is_named():
    opt = mx.optimizer.SGD()
    opt.param_dict = {0: SimpleNamespace(name="dense0_weight", lr_mult=1.0, wd_mult=1.0)}
    with pytest.raises(OptimizerError, match="dense0_weight.*\\(3,\\).*\\(2,\\)"):
        opt.update(0, mx.nd.ones((2,)), mx.nd.ones((3,)), None)


# ----------------------------------------------------------------------------- registry


def test_registry_create_and_register():
    assert type(mx.optimizer.create("SGD")) is mx.optimizer.SGD
    assert type(mx.optimizer.create("ccsgd")).__mro__[1] is mx.optimizer.SGD
    for name in ("sgd", "nag", "adam", "adamw", "adagrad", "rmsprop", "adadelta"):
        assert name in mx.optimizer.Optimizer.opt_registry
    with pytest.raises(OptimizerError, match="Cannot find optimizer 'nosuch'.*adam"):
        mx.optimizer.create("nosuch")
    with pytest.raises(TypeError, match="'sgd'"):
        mx.optimizer.create("sgd", momentom=0.9)

    @mx.optimizer.register
    class HalfStep(mx.optimizer.Optimizer):
        def _step(self, index, lr, wd, weight, grad, states):
            return weight - 0.5 * lr * grad, []

    try:
        o = mx.optimizer.create("halfstep", learning_rate=1.0)
        w = mx.nd.ones((1,))
        mx.optimizer.get_updater(o)(0, mx.nd.ones((1,)), w)
        assert w.asnumpy()[0] == 0.5
    finally:
        del mx.optimizer.Optimizer.opt_registry["halfstep"]


def test_defaults_match_mxnet():
    assert mx.optimizer.SGD().lr == 0.01 and mx.optimizer.SGD().momentum == 0.0
    adam = mx.optimizer.Adam()
    assert (adam.lr, adam.beta1, adam.beta2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-8)
    rms = mx.optimizer.RMSProp()
    assert (rms.lr, rms.gamma1, rms.gamma2, rms.epsilon, rms.centered) == (
        0.001,
        0.9,
        0.9,
        1e-8,
        False,
    )
    assert mx.optimizer.AdaGrad().float_stable_eps == 1e-7
    ad = mx.optimizer.AdaDelta()
    assert (ad.rho, ad.epsilon) == (0.9, 1e-5)
    assert mx.optimizer.AdamW().epsilon == 1e-6


def test_set_learning_rate_and_scheduler():
    opt = mx.optimizer.SGD(learning_rate=0.5)
    opt.set_learning_rate(0.25)
    assert opt.learning_rate == 0.25
    sched = lrs.FactorScheduler(step=2, factor=0.5)
    opt = mx.optimizer.SGD(learning_rate=1.0, lr_scheduler=sched)
    assert sched.base_lr == 1.0  # the optimizer's learning_rate becomes the base rate
    with pytest.raises(UserWarning):
        opt.set_learning_rate(0.1)
    w = mx.nd.zeros((1,), dtype="float64")
    g = mx.nd.ones((1,), dtype="float64")
    seen = []
    for _ in range(5):
        before = w.asnumpy()[0]
        opt.update(0, w, g, None)
        seen.append(before - w.asnumpy()[0])
    # num_update 1, 2 -> 1.0; 3, 4 -> 0.5; 5 -> 0.25
    np.testing.assert_allclose(seen, [1.0, 1.0, 0.5, 0.5, 0.25])


# ----------------------------------------------------------------------------- schedulers


def test_factor_scheduler():
    s = lrs.FactorScheduler(step=3, factor=0.5, base_lr=1.0, stop_factor_lr=0.2)
    got = [s(n) for n in range(1, 12)]
    assert got == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2]
    with pytest.raises(ValueError):
        lrs.FactorScheduler(step=0)
    with pytest.raises(ValueError):
        lrs.FactorScheduler(step=2, factor=1.5)


def test_factor_scheduler_warmup():
    s = lrs.FactorScheduler(step=10, factor=0.1, base_lr=1.0, warmup_steps=4, warmup_begin_lr=0.2)
    np.testing.assert_allclose([s(n) for n in range(4)], [0.2, 0.4, 0.6, 0.8])
    assert s(4) == 1.0
    c = lrs.FactorScheduler(
        step=10, base_lr=1.0, warmup_steps=3, warmup_begin_lr=0.1, warmup_mode="constant"
    )
    assert [c(n) for n in range(3)] == [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="warmup_mode"):
        lrs.FactorScheduler(step=1, warmup_mode="cubic")
    with pytest.raises(ValueError, match="warmup_begin_lr"):
        lrs.FactorScheduler(step=1, base_lr=0.1, warmup_begin_lr=0.5)


def test_multifactor_scheduler():
    s = lrs.MultiFactorScheduler(step=[2, 5], factor=0.1, base_lr=1.0)
    np.testing.assert_allclose([s(n) for n in range(1, 8)], [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])
    with pytest.raises(ValueError):
        lrs.MultiFactorScheduler(step=[5, 2])


def test_poly_scheduler():
    s = lrs.PolyScheduler(max_update=10, base_lr=2.0, pwr=2, final_lr=0.5, warmup_steps=2)
    expect = [0.5 + 1.5 * (1 - (n - 2) / 8) ** 2 for n in range(2, 11)]
    np.testing.assert_allclose([s(n) for n in range(2, 11)], expect)
    assert s(20) == pytest.approx(0.5)
    assert s(0) == 0.0 and s(1) == pytest.approx(1.0)  # linear warmup from 0 to 2


def test_cosine_scheduler():
    s = lrs.CosineScheduler(max_update=8, base_lr=1.0, final_lr=0.1)
    expect = [0.1 + 0.9 * (1 + math.cos(math.pi * n / 8)) / 2 for n in range(9)]
    np.testing.assert_allclose([s(n) for n in range(9)], expect)
    assert s(100) == pytest.approx(0.1)


# ----------------------------------------------------------------------------- failures


def test_failed_update_is_not_counted():
    opt = mx.optimizer.Adam(learning_rate=0.1)
    w = mx.nd.ones((2,))
    st = opt.create_state(0, w)
    opt.update(0, w, mx.nd.ones((2,)), st)
    before = (opt.num_update, dict(opt._index_update_count), w.asnumpy().copy())
    with pytest.raises(OptimizerError, match="shape"):
        opt.update(0, w, mx.nd.ones((3,)), st)
    with pytest.raises(OptimizerError, match="shape"):
        opt.update(1, mx.nd.ones((2,)), mx.nd.ones((3,)), opt.create_state(1, w))
    assert (opt.num_update, opt._index_update_count) == before[:2]
    np.testing.assert_array_equal(w.asnumpy(), before[2])


@pytest.mark.parametrize(
    "result,pattern",
    [
        (lambda w: (np.ones(5), []), "new weight.*shape \\(5,\\).*does not fit shape \\(2,\\)"),
        (lambda w: (None, []), "new weight.*NoneType"),
        (lambda w: (w.astype(complex), []), "new weight.*real-valued"),
        (lambda w: (w, [w]), "returned 1 state arrays.*has 0"),
    ],
    ids=["shape", "none", "complex", "states"],
)
def test_bad_step_results_are_refused_before_writing(result, pattern):
    class Bad(mx.optimizer.Optimizer):
        def _step(self, index, lr, wd, weight, grad, states):
            return result(weight)

    opt = Bad()
    w = mx.nd.array([1.0, 2.0])
    v = w._version
    with pytest.raises(OptimizerError, match=pattern):
        opt.update(0, w, mx.nd.ones((2,)), None)
    assert w.asnumpy().tolist() == [1.0, 2.0] and w._version == v
    assert opt.num_update == 0
    # a scalar or a broadcastable result is fine (written into every element)
    Bad._step = lambda self, index, lr, wd, weight, grad, states: (np.float32(7.0), [])
    opt.update(0, w, mx.nd.ones((2,)), None)
    assert w.asnumpy().tolist() == [7.0, 7.0]


def test_update_is_in_place_and_invalidates_recorded_uses():
    # the weight keeps its memory (views of it see the update, as in MXNet) and its version
    # changes, so a graph recorded before the update refuses to use the old value
    w = mx.nd.array([1.0, 2.0])
    w.attach_grad()
    view = w.reshape((2, 1))
    raw = np.asarray(w)
    with autograd.record():
        y = (w * w).sum()
    mx.optimizer.SGD(learning_rate=0.5).update(0, w, mx.nd.array([2.0, 2.0]), None)
    assert view.asnumpy().ravel().tolist() == [0.0, 1.0] and raw.tolist() == [0.0, 1.0]
    with pytest.raises(mx.base.VersionError):
        y.backward()


def test_step_results_that_alias_inputs_are_written_correctly():
    class Swap(mx.optimizer.Optimizer):
        """New weight = old state, new state = old weight: each result is an input."""

        def create_state(self, index, weight):
            return mx.nd.array([10.0, 20.0])

        def _step(self, index, lr, wd, weight, grad, states):
            return states[0], [weight[...]]

    opt = Swap()
    w = mx.nd.array([1.0, 2.0])
    st = opt.create_state(0, w)
    opt.update(0, w, mx.nd.ones((2,)), st)
    assert w.asnumpy().tolist() == [10.0, 20.0] and st.asnumpy().tolist() == [1.0, 2.0]
