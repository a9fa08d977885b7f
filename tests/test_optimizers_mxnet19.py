"""The optimizers MXNet 1.9.1 registers besides SGD/NAG/Adam/AdaGrad/RMSProp/AdaDelta (Signum,
FTML, LARS, LBSGD, LAMB, DCASGD, SGLD, Ftrl, Adamax, Nadam, Test, GroupAdaGrad): each against
its update written again here in NumPy from MXNet's documentation and operator kernels
(``src/operator/optimizer_op-inl.h``), over several steps with weight decay, clipping,
rescaling and per-parameter multipliers; every one inside ``gluon.Trainer``, including
``save_states``/``load_states`` and the all-or-nothing step; ``Optimizer(lr_scheduler=...)``
without a learning rate."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon
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


def _norm(x):
    return math.sqrt(float(np.sum(np.square(x))))


# --- references: (w, g, s, t, lr, wd, h) -> new weight; s holds this weight's states,
# h the hyper-parameters (and h["shared"] what the optimizer keeps for all weights)


def ref_signum(w, g, s, t, lr, wd, h):
    # documented: state = momentum * state + (1 - momentum) * rescaled_grad,
    # weight = (1 - lr * wd_lh) * weight - lr * sign(state); the kernel clips the rescaled
    # gradient and adds wd * weight (signum_update)
    rg = _clip(h["rescale"] * g, h["clip"]) + wd * w
    s["state"] = h["momentum"] * s.get("state", 0) + (1 - h["momentum"]) * rg
    return (1 - lr * h["wd_lh"]) * w - lr * np.sign(s["state"])


def ref_ftml(w, g, s, t, lr, wd, h):
    b1, b2 = h["beta1"], h["beta2"]
    rg = _clip(h["rescale"] * g + wd * w, h["clip"])
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * rg**2
    d_t = (1 - b1**t) / lr * (np.sqrt(s["v"] / (1 - b2**t)) + h["epsilon"])
    s["z"] = b1 * s.get("z", 0) + (1 - b1) * rg - (d_t - b1 * s.get("d", 0)) * w
    s["d"] = d_t
    return -s["z"] / d_t


def ref_lars(w, g, s, t, lr, wd, h):
    # lr_layer = lr * eta * |w| / (|g| + wd * |w| + eps) (g rescaled), then SGD with momentum
    wn, gn = _norm(w), _norm(g) * h["rescale"]
    if wn > 0 and gn > 0:
        lr = lr * h["eta"] * wn / (gn + wd * wn + h["eps"])
    r = lr * (_clip(h["rescale"] * g, h["clip"]) + wd * w)
    s["state"] = h["momentum"] * s.get("state", 0) + r
    return w - s["state"]


def ref_lamb(w, g, s, t, lr, wd, h):
    b1, b2 = h["beta1"], h["beta2"]
    gg = _clip(h["rescale"] * g, h["clip"])
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * gg
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * gg**2
    m_hat, v_hat = s["m"] / (1 - b1**t), s["v"] / (1 - b2**t)
    r = m_hat / (np.sqrt(v_hat) + h["epsilon"]) + wd * w
    r1 = min(max(_norm(w), h["lower_bound"]), h["upper_bound"])
    r2 = _norm(r)
    return w - lr * (r1 / r2 if r1 > 0 and r2 > 0 else 1.0) * r


def ref_dcasgd(w, g, s, t, lr, wd, h):
    gg = _clip(h["rescale"] * g, h["clip"])
    prev = s.get("prev", w)
    step = -lr * (gg + wd * w + h["lamda"] * gg * gg * (w - prev))
    s["mom"] = h["momentum"] * s.get("mom", 0) + step
    s["prev"] = w
    return w + s["mom"]


def ref_ftrl(w, g, s, t, lr, wd, h):
    gg = _clip(h["rescale"] * g, h["clip"])
    z, n = s.get("z", 0 * w), s.get("n", 0 * w)
    z = z + gg - (np.sqrt(n + gg**2) - np.sqrt(n)) * w / lr
    n = n + gg**2
    s["z"], s["n"] = z, n
    l1 = h["lamda1"]
    return (np.sign(z) * l1 - z) / ((h["beta"] + np.sqrt(n)) / lr + wd) * (np.abs(z) > l1)


def ref_adamax(w, g, s, t, lr, wd, h):
    b1, b2 = h["beta1"], h["beta2"]
    gg = _clip(h["rescale"] * g + wd * w, h["clip"])
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * gg
    s["u"] = np.maximum(b2 * s.get("u", 0), np.abs(gg))
    return w - lr / (1 - b1**t) * s["m"] / s["u"]


def ref_nadam(w, g, s, t, lr, wd, h):
    b1, b2, sd = h["beta1"], h["beta2"], h["schedule_decay"]
    gg = _clip(h["rescale"] * g + wd * w, h["clip"])
    mu_t = b1 * (1 - 0.5 * 0.96 ** (t * sd))
    mu_t1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * sd))
    h["shared"]["m_schedule"] = h["shared"].get("m_schedule", 1.0) * mu_t  # one for all
    m_sched = h["shared"]["m_schedule"]
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * gg
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * gg**2
    m_bar = (1 - mu_t) * gg / (1 - m_sched) + mu_t1 * s["m"] / (1 - m_sched * mu_t1)
    return w - lr * m_bar / (np.sqrt(s["v"] / (1 - b2**t)) + h["epsilon"])


def ref_sgd(w, g, s, t, lr, wd, h):
    r = lr * (_clip(h["rescale"] * g, h["clip"]) + wd * w)
    if h["momentum"] == 0:
        return w - r
    s["state"] = h["momentum"] * s.get("state", 0) + r
    return w - s["state"]


CASES = [
    ("signum", {"momentum": 0.9, "wd_lh": 0.05}, ref_signum),
    ("ftml", {"beta1": 0.6, "beta2": 0.999, "epsilon": 1e-8}, ref_ftml),
    ("lars", {"momentum": 0.9, "eta": 0.01, "eps": 1e-3}, ref_lars),
    ("lars", {"momentum": 0.0, "eta": 0.5, "eps": 0.0}, ref_lars),
    ("lbsgd", {"momentum": 0.9}, ref_sgd),  # batch_scale 1: SGD (no warmup multiplier)
    (
        "lamb",
        {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-6, "lower_bound": 1.0, "upper_bound": 2.0},
        ref_lamb,
    ),
    ("dcasgd", {"momentum": 0.9, "lamda": 0.5}, ref_dcasgd),
    ("dcasgd", {"momentum": 0.0, "lamda": 0.04}, ref_dcasgd),
    ("ftrl", {"lamda1": 0.01, "beta": 1.0}, ref_ftrl),
    ("adamax", {"beta1": 0.9, "beta2": 0.999}, ref_adamax),
    ("nadam", {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "schedule_decay": 0.004}, ref_nadam),
]


def _run(name, kwargs, ref, dtype):
    opt = mx.optimizer.create(
        name, learning_rate=BASE_LR, wd=WD, rescale_grad=RESCALE, clip_gradient=CLIP, **kwargs
    )
    opt.param_dict = dict(enumerate(MULTS))
    rng = np.random.default_rng(11)
    h = dict(kwargs, rescale=RESCALE, clip=CLIP, shared={})
    h.setdefault("momentum", 0.0)
    h.setdefault("lower_bound", 0.0)
    h.setdefault("upper_bound", np.inf)
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
    return opt, nds, ws


@pytest.mark.parametrize("name,kwargs,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_update_matches_documented_formula_float64(name, kwargs, ref):
    opt, nds, ws = _run(name, kwargs, ref, "float64")
    for nd_w, w in zip(nds, ws):
        assert nd_w.dtype == np.float64
        np.testing.assert_allclose(nd_w.asnumpy(), w, rtol=1e-9, atol=1e-12)
    assert opt.num_update == STEPS


@pytest.mark.parametrize("name,kwargs,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_update_float32_keeps_dtype(name, kwargs, ref):
    _, nds, ws = _run(name, kwargs, ref, "float32")
    for nd_w, w in zip(nds, ws):
        assert nd_w.dtype == np.float32
        np.testing.assert_allclose(nd_w.asnumpy(), w, rtol=1e-4, atol=1e-5)


def test_signum_state_is_the_kernel_convention_and_no_momentum_is_signsgd():
    opt = mx.optimizer.Signum(learning_rate=0.1, momentum=0.9, wd=0.5)
    w = mx.nd.array([1.0, -2.0], dtype="float64")
    s = opt.create_state(0, w)
    opt.update(0, w, mx.nd.array([0.5, 3.0], dtype="float64"), s)
    # signum_update keeps mom = -(documented state): -(0.1 * (g + 0.5 w))
    np.testing.assert_allclose(s.asnumpy(), [-0.1 * (0.5 + 0.5), -0.1 * (3.0 - 1.0)])
    np.testing.assert_allclose(w.asnumpy(), [1.0 - 0.1, -2.0 - 0.1])
    # momentum 0: signsgd_update, (1 - lr wd) w - lr sign(grad), with no state
    opt = mx.optimizer.Signum(learning_rate=0.1, momentum=0.0, wd=0.5)
    w = mx.nd.array([1.0, -2.0], dtype="float64")
    assert opt.create_state(0, w) is None
    opt.update(0, w, mx.nd.array([-0.5, 0.0], dtype="float64"), None)
    np.testing.assert_allclose(w.asnumpy(), [0.95 * 1.0 + 0.1, 0.95 * -2.0])


def test_lars_leaves_bias_gamma_beta_unscaled_and_decays_only_weights():
    names = {0: "fc_weight", 1: "fc_bias", 2: "bn_gamma"}
    opt = mx.optimizer.LARS(learning_rate=1.0, eta=0.1, wd=0.5, param_idx2name=names)
    assert opt._get_wd(0) == 0.5 and opt._get_wd(1) == 0.0 and opt._get_wd(2) == 0.0
    w = mx.nd.array([3.0, 4.0], dtype="float64")
    b = mx.nd.array([3.0, 4.0], dtype="float64")
    g = mx.nd.array([0.0, 1.0], dtype="float64")
    opt.update([0, 1], [w, b], [g, g], [None, None])
    lr_w = 1.0 * 0.1 * 5.0 / (1.0 + 0.5 * 5.0)
    np.testing.assert_allclose(
        w.asnumpy(), (1 - lr_w * 0.5) * np.array([3, 4]) - lr_w * np.array([0, 1])
    )
    np.testing.assert_allclose(b.asnumpy(), [3.0, 3.0])  # bias: lr 1, no weight decay


def _lars_trainer(n_params, sched, momentum=0.9):
    params = []
    for i in range(n_params):
        p = gluon.Parameter(f"p{i}", shape=(2,), dtype="float64")
        p.initialize(init=mx.init.Constant(1.0 + i))
        params.append(p)
    tr = gluon.Trainer(
        params,
        "lars",
        {"learning_rate": 1.0, "momentum": momentum, "eta": 1.0, "lr_scheduler": sched},
    )
    return params, tr


def _grad_step(params, tr):
    with autograd.record():
        loss = sum((p.data() * mx.nd.array([1.0, 2.0], dtype="float64")).sum() for p in params)
    loss.backward()
    tr.step(1)


def test_lars_momentum_correction_applies_to_the_first_chunk_of_a_step():
    """The learning rate halves at update 2; MXNet's updater calls LARS with up to 4 weights
    at a time and only the first call of the step sees lr / previous lr = 0.5."""
    sched = lrs.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    params, tr = _lars_trainer(5, sched)
    w = [np.full(2, 1.0 + i) for i in range(5)]
    mom = [np.zeros(2) for _ in range(5)]
    g = np.array([1.0, 2.0])
    for step, (lr, ratio_first) in enumerate([(1.0, 1.0), (0.5, 0.5)]):
        _grad_step(params, tr)
        for i in range(5):
            ratio = ratio_first if i < 4 else 1.0
            lars = lr * 1.0 * np.linalg.norm(w[i]) / np.linalg.norm(g)
            mom[i] = 0.9 * ratio * mom[i] - lars * g
            w[i] = w[i] + mom[i]
        for i, p in enumerate(params):
            np.testing.assert_allclose(p.data().asnumpy(), w[i], rtol=1e-12, err_msg=f"{step} {i}")


def test_lbsgd_accumulates_batch_scale_gradients_and_warms_up():
    opt = mx.optimizer.LBSGD(learning_rate=0.1, batch_scale=2, warmup_epochs=1, updates_per_epoch=4)
    w = mx.nd.array([1.0, 2.0], dtype="float64")
    s = opt.create_state(0, w)
    g1, g2 = np.array([1.0, -1.0]), np.array([3.0, 1.0])
    opt.update(0, w, mx.nd.array(g1, dtype="float64"), s)
    np.testing.assert_allclose(w.asnumpy(), [1.0, 2.0])  # first of two: accumulated only
    opt.update(0, w, mx.nd.array(g2, dtype="float64"), s)
    mult = 1.0 + (2 - 1) * 2 / 4  # linear warmup: 2 of 4 warmup updates
    np.testing.assert_allclose(w.asnumpy(), np.array([1.0, 2.0]) - 0.1 * mult * (g1 + g2) / 2)


def test_lbsgd_reads_the_learning_rate_before_counting():
    sched = lrs.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    lb = mx.optimizer.LBSGD(lr_scheduler=sched)
    sg = mx.optimizer.SGD(lr_scheduler=lrs.FactorScheduler(step=1, factor=0.5, base_lr=1.0))
    w1, w2 = mx.nd.array([0.0]), mx.nd.array([0.0])
    for _ in range(2):
        lb.update(0, w1, mx.nd.array([1.0]), lb.create_state(0, w1))
        sg.update(0, w2, mx.nd.array([1.0]), None)
    # LBSGD: lr(0) + lr(1) = 1 + 1; SGD: lr(1) + lr(2) = 1 + 0.5
    assert w1.asscalar() == pytest.approx(-2.0) and w2.asscalar() == pytest.approx(-1.5)


def test_sgld_adds_langevin_noise_of_variance_lr():
    mx.random.seed(3)
    noise = mx.nd.random.normal(0, math.sqrt(0.04), shape=(3,), dtype="float64").asnumpy()
    mx.random.seed(3)
    opt = mx.optimizer.SGLD(learning_rate=0.04, wd=0.5)
    w0 = np.array([1.0, -1.0, 0.5])
    g = np.array([2.0, 0.0, -4.0])
    w = mx.nd.array(w0, dtype="float64")
    opt.update(0, w, mx.nd.array(g, dtype="float64"), None)
    np.testing.assert_allclose(w.asnumpy(), w0 - 0.02 * (g + 0.5 * w0) + noise, rtol=1e-12)


def test_test_optimizer_adds_the_gradient_and_keeps_the_weight_as_state():
    opt = mx.optimizer.create("test", rescale_grad=2.0)
    w = mx.nd.array([1.0, 2.0])
    s = opt.create_state(0, w)
    opt.update(0, w, mx.nd.array([0.5, -1.0]), s)
    assert w.asnumpy().tolist() == [2.0, 0.0] and s.asnumpy().tolist() == [2.0, 0.0]


def test_group_adagrad_one_rate_per_row():
    opt = mx.optimizer.contrib.GroupAdaGrad(learning_rate=0.5, eps=1e-5, rescale_grad=2.0)
    assert type(mx.optimizer.create("groupadagrad")) is type(opt)
    w0 = np.array([[1.0, 2.0], [3.0, -1.0]])
    w = mx.nd.array(w0, dtype="float64")
    s = opt.create_state(0, w)
    assert s.shape == (2, 1)
    hist = np.zeros((2, 1))
    for g in (np.array([[1.0, 0.5], [-2.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])):
        opt.update(0, w, mx.nd.array(g, dtype="float64"), s)
        gg = 2.0 * g
        hist = hist + (gg**2).mean(axis=1, keepdims=True)
        w0 = w0 - 0.5 * gg / np.sqrt(hist + 1e-5)
        np.testing.assert_allclose(w.asnumpy(), w0, rtol=1e-12)
    with pytest.raises(OptimizerError, match="GroupAdaGrad.*2-D.*Fix"):
        opt.create_state(1, mx.nd.ones((3,)))
    with pytest.raises(OptimizerError, match="weight decay is not supported.*Fix"):
        mx.optimizer.contrib.GroupAdaGrad(wd=0.1).update(0, w, mx.nd.ones((2, 2)), s)


def test_every_mxnet_optimizer_is_registered():
    mxnet_191 = {
        "sgd", "signum", "ftml", "lars", "lbsgd", "lamb", "dcasgd", "nag", "sgld", "ccsgd",
        "adam", "adagrad", "rmsprop", "adadelta", "ftrl", "adamax", "nadam", "test",
        "groupadagrad",
    }  # fmt: skip
    assert mxnet_191 <= set(mx.optimizer.Optimizer.opt_registry)


def test_defaults_match_mxnet():
    assert mx.optimizer.Signum().learning_rate == 0.01 and mx.optimizer.Signum().momentum == 0.9
    assert mx.optimizer.FTML().beta1 == 0.6 and mx.optimizer.FTML().learning_rate == 0.01
    assert mx.optimizer.LAMB().learning_rate == 0.001 and mx.optimizer.LAMB().epsilon == 1e-6
    assert mx.optimizer.Ftrl().learning_rate == 0.1 and mx.optimizer.Ftrl().lamda1 == 0.01
    assert mx.optimizer.Adamax().learning_rate == 0.002
    assert mx.optimizer.Nadam().schedule_decay == 0.004 and mx.optimizer.Nadam().m_schedule == 1
    assert mx.optimizer.LARS().eta == 0.001 and mx.optimizer.LARS().aggregate_num == 4
    assert mx.optimizer.DCASGD().lamda == 0.04


# --------------------------------------------------------------------------- schedulers


def test_scheduler_without_learning_rate_uses_its_base_lr():
    sched = lrs.FactorScheduler(step=2, factor=0.5, base_lr=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = mx.optimizer.SGD(lr_scheduler=sched)
    assert sched.base_lr == 0.3 and opt.learning_rate == 0.3 and opt.lr is None
    w = mx.nd.array([1.0])
    for _ in range(3):
        opt.update(0, w, mx.nd.array([1.0]), None)
    # updates 1, 2 at 0.3; update 3 at 0.15
    assert w.asscalar() == pytest.approx(1.0 - 0.3 - 0.3 - 0.15)
    assert mx.optimizer.SGD().learning_rate == 0.01  # neither given: 0.01


def test_scheduler_and_learning_rate_the_latter_wins_with_a_warning():
    sched = lrs.FactorScheduler(step=2, factor=0.5, base_lr=0.3)
    with pytest.warns(UserWarning, match="base_lr=0.3.*overwritten by learning_rate=0.1"):
        mx.optimizer.SGD(learning_rate=0.1, lr_scheduler=sched)
    assert sched.base_lr == 0.1
    # Adam's own default learning rate (0.001) is a given learning rate, as in MXNet
    with pytest.warns(UserWarning):
        mx.optimizer.Adam(lr_scheduler=lrs.FactorScheduler(step=2, base_lr=0.3))


def test_trainer_with_scheduler_only_saves_and_loads_states(tmp_path):
    p = gluon.Parameter("w", shape=(2,))
    p.initialize(init=mx.init.One())
    tr = gluon.Trainer([p], "sgd", {"lr_scheduler": lrs.FactorScheduler(step=1, base_lr=0.2)})
    _grad_step([p], tr)
    tr.save_states(str(tmp_path / "s"))
    p2 = gluon.Parameter("w", shape=(2,))
    p2.initialize(init=mx.init.One())
    tr2 = gluon.Trainer([p2], "sgd", {"lr_scheduler": lrs.FactorScheduler(step=1, base_lr=0.7)})
    tr2.load_states(str(tmp_path / "s"))
    assert tr2.optimizer.lr is None and tr2.learning_rate == pytest.approx(0.2)


# --------------------------------------------------------------------------- in the Trainer

TRAINER_CASES = [
    ("signum", {"learning_rate": 0.01, "momentum": 0.9}),
    ("signum", {"learning_rate": 0.01, "momentum": 0.0}),
    ("ftml", {"learning_rate": 0.05}),
    ("lars", {"learning_rate": 0.5, "momentum": 0.9, "eta": 0.1}),
    ("lbsgd", {"learning_rate": 0.1, "momentum": 0.9, "batch_scale": 2}),
    ("lamb", {"learning_rate": 0.05}),
    ("dcasgd", {"learning_rate": 0.05, "momentum": 0.9}),
    ("dcasgd", {"learning_rate": 0.05}),
    ("sgld", {"learning_rate": 0.01}),
    ("ftrl", {"learning_rate": 0.1}),
    ("adamax", {"learning_rate": 0.01}),
    ("nadam", {"learning_rate": 0.01}),
    ("test", {}),
    ("groupadagrad", {"learning_rate": 0.1}),
]


def _params(seed):
    rng = np.random.default_rng(seed)
    out = []
    for name, shape in (("a", (2, 3)), ("b", (3, 2))):
        p = gluon.Parameter(name, shape=shape, dtype="float64")
        p.initialize(init=mx.init.Zero())
        p.set_data(mx.nd.array(rng.standard_normal(shape), dtype="float64"))
        out.append(p)
    return out


def _train(tr, params, steps, seed):
    rng = np.random.default_rng(seed)
    mx.random.seed(seed)  # SGLD's noise
    for _ in range(steps):
        coeffs = [rng.standard_normal(p.shape) for p in params]
        with autograd.record():
            loss = sum(
                ((p.data() * mx.nd.array(c, dtype="float64")) ** 2).sum()
                for p, c in zip(params, coeffs)
            )
        loss.backward()
        tr.step(2)


@pytest.mark.parametrize(
    "name,kw", TRAINER_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TRAINER_CASES)]
)
def test_trainer_save_load_states_resumes_exactly(tmp_path, name, kw):
    params = _params(0)
    tr = gluon.Trainer(params, name, dict(kw))
    _train(tr, params, 3, seed=1)
    path = tmp_path / "t.states"
    tr.save_states(str(path))
    saved = [p.data().asnumpy().copy() for p in params]
    _train(tr, params, 2, seed=2)
    expect = [p.data().asnumpy().copy() for p in params]
    assert not all(np.array_equal(s, e) for s, e in zip(saved, expect)), "nothing trained"

    params2 = _params(5)
    for p, v in zip(params2, saved):
        p.set_data(mx.nd.array(v, dtype="float64"))
    tr2 = gluon.Trainer(params2, name, dict(kw))
    tr2.load_states(str(path))
    _train(tr2, params2, 2, seed=2)
    for e, p in zip(expect, params2):
        np.testing.assert_allclose(p.data().asnumpy(), e, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,kw", [("nadam", {}), ("lars", {"momentum": 0.9})])
def test_failed_trainer_step_restores_what_updates_change(name, kw):
    """A step that fails at the second parameter leaves weights, states, counters and the
    optimizer's own step attributes (Nadam's m_schedule, LARS's learning-rate history) as
    they were, and a retried step gives the result of an uninterrupted one."""
    params, ref = _params(0), _params(0)
    tr, tr_ref = gluon.Trainer(params, name, dict(kw)), gluon.Trainer(ref, name, dict(kw))
    _train(tr, params, 1, seed=1)
    _train(tr_ref, ref, 1, seed=1)
    opt = tr.optimizer
    before = {k: getattr(opt, k) for k in type(opt)._STEP_ATTRS}
    values = [p.data().asnumpy().copy() for p in params]
    real = opt._step

    def failing(index, *args):
        if index == 1:
            raise RuntimeError("injected")
        return real(index, *args)

    opt._step = failing
    with pytest.raises(RuntimeError, match="injected"):
        _train(tr, params, 1, seed=2)
    del opt._step
    assert {k: getattr(opt, k) for k in type(opt)._STEP_ATTRS} == before
    for v, p in zip(values, params):
        np.testing.assert_array_equal(p.data().asnumpy(), v)
    tr.step(2)  # the gradients of the failed step are still there: step again
    _train(tr_ref, ref, 1, seed=2)
    for p, q in zip(params, ref):
        np.testing.assert_allclose(p.data().asnumpy(), q.data().asnumpy(), rtol=1e-12)


def test_updater_calls_aggregating_optimizers_in_chunks_per_dtype():
    calls = []

    class Spy(mx.optimizer.SGD):
        def update(self, index, weight, grad, state):
            calls.append(list(index) if isinstance(index, list) else index)
            super().update(index, weight, grad, state)

    upd = mx.optimizer.get_updater(Spy(learning_rate=0.1))
    ws = [mx.nd.ones((2,), dtype="float64" if i == 2 else "float32") for i in range(6)]
    gs = [mx.nd.ones((2,), dtype=w.dtype) for w in ws]
    upd(list(range(6)), gs, ws)
    assert calls == [[0, 1, 3, 4], [5], [2]]
    assert all(np.allclose(w.asnumpy(), 0.9) for w in ws)
