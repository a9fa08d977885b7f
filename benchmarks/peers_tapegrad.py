"""tapegrad implementation of the peer workloads (../shared/bench/WORKLOADS.md).

    python benchmarks/peers_tapegrad.py [--workload W2] [--json tapegrad.json] [--quick]

Run side by side with the peers through the shared harness:

    TAPEGRAD_PYTHON=$(which python) BENCH_DIR=../shared/bench \\
        ../shared/bench/run_all.sh --out bench-results   # after copying this file there

or simply run this script and the peers one after another (see benchmarks/README.md).
``BENCH_DIR`` points at the folder holding ``common.py`` (default: ../shared/bench next to
this repository).

Variants: ``eager`` is the raw autograd API (NDArrays + attach_grad + record/backward);
``gluon`` the same workload through Gluon blocks, losses and Trainer.

The correctness figures are checked against WORKLOADS.md after the run (exit status 1 if one is
off). ``--smoke`` runs every case once with tiny repeat counts (CI does; see ``benchkit.py``).
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_BENCH = os.environ.get("BENCH_DIR", os.path.join(_HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, os.path.abspath(_BENCH))
sys.path.insert(0, os.path.abspath(os.path.join(_HERE, "..")))
sys.path.insert(0, _HERE)

import benchkit  # noqa: E402
import common  # noqa: E402  (before numpy: pins threads; benchkit is stdlib only)
import numpy as np  # noqa: E402

import tapegrad as mx  # noqa: E402
from tapegrad import autograd, nd  # noqa: E402


def _params(arrs, dtype=None):
    ps = [mx.nd.array(a, dtype=dtype or a.dtype) for a in arrs]
    for p in ps:
        p.attach_grad()
    return ps


# ---------------------------------------------------------------- W1
def make_w1_step():
    """One W1 iteration: the six operations recorded, then df/dx by backward()."""
    x = mx.nd.array(common.W1_X, dtype="float64")
    x.attach_grad()
    exp, sin = nd.exp, nd.sin

    def step():
        with autograd.record():
            a = exp(x)
            p = a**2
            c = a + p
            e = exp(c)
            s = sin(c)
            f = e + s
        f.backward()
        return x.grad

    return step


def make_w1_jit_step():
    """W1 through ``mx.jit``: the six operations compiled (traced on the first call)."""
    x = mx.nd.array(common.W1_X, dtype="float64")
    x.attach_grad()
    exp, sin = nd.exp, nd.sin

    @mx.jit
    def f(x):
        a = exp(x)
        p = a**2
        c = a + p
        return exp(c) + sin(c)

    def step():
        with autograd.record():
            y = f(x)
        y.backward()
        return x.grad

    return step


def make_w1_jit_grad():
    """W1 as JAX runs it: ``mx.jit(functional.grad(f))``, the forward and the adjoint trace
    compiled into one straight-line program (no tape at run time)."""
    from tapegrad import functional as F

    x = mx.nd.array(common.W1_X, dtype="float64")
    exp, sin = nd.exp, nd.sin

    def f(x):
        a = exp(x)
        p = a**2
        c = a + p
        return exp(c) + sin(c)

    g = mx.jit(F.grad(f))
    return lambda: g(x)


def w1(res, cfg, quick):
    exact = common.w1_closed_form()
    variants = (("eager", make_w1_step), ("jit", make_w1_jit_step), ("jit grad", make_w1_jit_grad))
    for variant, make in variants:
        step = make()
        t = common.bench(step, cfg)
        g = float(step().asscalar())
        res.add("W1", variant, t, check={"dfdx": g, "abs_err": abs(g - exact)},
                mode="jit" if variant.startswith("jit") else "eager")  # fmt: skip


# ---------------------------------------------------------------- W2 / W6
def mlp_logits(params, x, act):
    h = x
    n = len(params) // 2
    for k in range(n):
        h = nd.dot(h, params[2 * k]) + params[2 * k + 1]
        if k < n - 1:
            h = act(h)
    return h


def xent(logits, y):
    """mean_i(logsumexp_j f_ij - f_i,y_i): MXNet's fused softmax_cross_entropy (a sum)."""
    return nd.softmax_cross_entropy(logits, y) / logits.shape[0]


def make_jit_sgd_step(params, x, y, act, lr):
    """The whole step compiled, as ``jax.jit`` runs it: loss and gradients by
    ``functional.value_and_grad``, then ``p -= lr * g`` written into the arguments."""
    from tapegrad import functional as F

    n = len(params)
    vg = F.value_and_grad(
        lambda *a: xent(mlp_logits(a[:n], a[n], act), a[n + 1]), argnums=tuple(range(n))
    )

    @mx.jit
    def compiled(*a):
        loss, grads = vg(*a)
        for p, g in zip(a[:n], grads):
            p -= lr * g
        return loss

    return lambda: compiled(*params, x, y)


def make_sgd_step(params, x, y, act, lr, compiled=False):
    loss_of = lambda *a: xent(mlp_logits(a[:-2], a[-2], act), a[-1])  # noqa: E731
    if compiled:
        loss_of = mx.jit(loss_of)

    def step():
        with autograd.record():
            loss = loss_of(*params, x, y)
        loss.backward()
        for p in params:
            p -= lr * p.grad
        return loss

    return step


def classifier_workload(res, cfg, wid, data, init, act, lr, check_steps, flops=None):
    x_np, y_np = data
    x, y = mx.nd.array(x_np), mx.nd.array(y_np, dtype="int64")
    for variant in ("eager", "jit", "jit step"):
        try:
            params = _params(init)
            if variant == "jit step":
                step = make_jit_sgd_step(params, x, y, act, lr)
            else:
                step = make_sgd_step(params, x, y, act, lr, compiled=variant == "jit")
            loss0 = float(step().asscalar())
            for _ in range(check_steps - 1):
                step()
            lossk = float(xent(mlp_logits(params, x, act), y).asscalar())
            check = {"loss0": loss0, f"loss{check_steps}": lossk}
            t = common.bench(step, cfg)
            extra = {"GFLOP/s": flops / t.median / 1e9} if flops else {}
            res.add(wid, variant, t, check=check, extra=extra, mode=variant.split()[0])
        except Exception as exc:  # noqa: BLE001
            res.fail(wid, variant, exc)
    for variant in ("gluon", "gluon hybridized"):
        try:
            gluon_workload(res, cfg, wid, x, y, init, act, lr, check_steps, flops, variant)
        except Exception as exc:  # noqa: BLE001
            res.fail(wid, variant, exc)


def make_gluon_step(x, y, init, act, lr):
    """One iteration through Gluon: Dense layers holding ``init`` (MXNet's (out, in) weight
    layout), SoftmaxCrossEntropyLoss, and an SGD Trainer. Returns (step, net, loss_fn)."""
    from tapegrad import gluon

    act_name = {nd.tanh: "tanh", nd.relu: "relu"}[act]
    net = gluon.nn.HybridSequential()
    n = len(init) // 2
    for k in range(n):
        w = init[2 * k]
        act_k = act_name if k < n - 1 else None
        net.add(gluon.nn.Dense(w.shape[1], in_units=w.shape[0], activation=act_k))
    net.initialize()
    for k, blk in enumerate(net):
        blk.weight.set_data(mx.nd.array(init[2 * k].T))
        blk.bias.set_data(mx.nd.array(init[2 * k + 1]))
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    batch = x.shape[0]

    def step():
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(batch)
        return loss

    return step, net, loss_fn


def gluon_workload(res, cfg, wid, x, y, init, act, lr, check_steps, flops, variant="gluon"):
    step, net, loss_fn = make_gluon_step(x, y, init, act, lr)
    if variant == "gluon hybridized":
        net.hybridize()
    loss0 = float(step().mean().asscalar())
    for _ in range(check_steps - 1):
        step()
    lossk = float(loss_fn(net(x), y).mean().asscalar())
    check = {"loss0": loss0, f"loss{check_steps}": lossk}
    t = common.bench(step, cfg)
    extra = {"GFLOP/s": flops / t.median / 1e9} if flops else {}
    mode = "jit" if "hybrid" in variant else "eager"
    res.add(wid, variant, t, check=check, extra=extra, mode=mode)


def w2(res, cfg, quick):
    classifier_workload(
        res,
        cfg,
        "W2",
        common.w2_data(),
        common.w2_params(),
        nd.tanh,
        common.W2_LR,
        common.W2_CHECK_STEPS,
    )


def w6(res, cfg, quick):
    classifier_workload(
        res,
        cfg,
        "W6",
        common.w6_data(),
        common.w6_params(),
        nd.relu,
        common.W6_LR,
        common.W6_CHECK_STEPS,
        flops=common.w6_flops_per_step(),
    )
    t = common.numpy_matmul_gflops(cfg=cfg)
    res.add("W6-ref", "numpy matmul", t, extra={"GFLOP/s": t.gflops}, case="numpy matmul")
    n = common.W6_MATMUL_N
    rs = np.random.RandomState(0)
    a = mx.nd.array(rs.random_sample((n, n)))
    b = mx.nd.array(rs.random_sample((n, n)))
    t = common.bench(lambda: nd.dot(a, b), cfg)
    res.add(
        "W6-ref",
        f"tapegrad dot {n}",
        t,
        extra={"GFLOP/s": 2.0 * n**3 / t.median / 1e9},
        case="framework matmul",
    )


# ---------------------------------------------------------------- W8
def lenet_loss(p, x, y):
    """W8's LeNet-5 (WORKLOADS.md) with MXNet's operators, as peers_mxnet.py writes it."""
    h = nd.relu(nd.Convolution(x, p[0], p[1], kernel=(5, 5), num_filter=6))
    h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
    h = nd.relu(nd.Convolution(h, p[2], p[3], kernel=(5, 5), num_filter=16))
    h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max").reshape((0, -1))
    h = nd.relu(nd.dot(h, p[4]) + p[5])
    h = nd.relu(nd.dot(h, p[6]) + p[7])
    return xent(nd.dot(h, p[8]) + p[9], y)


def make_w8_step(params, x, y, lr, compiled=False):
    loss_of = mx.jit(lambda *a: lenet_loss(a[:-2], a[-2], a[-1])) if compiled else None

    def step():
        with autograd.record():
            loss = loss_of(*params, x, y) if compiled else lenet_loss(params, x, y)
        loss.backward()
        for p in params:
            p -= lr * p.grad
        return loss

    return step


def make_w8_gemms():
    """The matrix products one W8 step makes, on float32 arrays of the step's shapes: each
    convolution's forward and weight-gradient GEMMs (im2col columns of LeNet's layers), the
    second one's data gradient, and the three products of each dense layer. Their time is the
    floor of the im2col design."""
    rs = np.random.RandomState(0)
    n = common.W8_BATCH

    def r(*shape):
        return rs.random_sample(shape).astype(np.float32)

    pairs = [
        (r(6, 25), r(25, n * 24 * 24)),  # conv1 forward
        (r(25, n * 24 * 24), r(6, n * 24 * 24).T),  # conv1 weight gradient (transposed)
        (r(16, 150), r(150, n * 8 * 8)),  # conv2 forward
        (r(150, n * 8 * 8), r(16, n * 8 * 8).T),  # conv2 weight gradient (transposed)
        (r(16, 150).T, r(16, n * 8 * 8)),  # conv2 data gradient
    ]
    for i, o in ((256, 120), (120, 84), (84, 10)):
        pairs += [(r(n, i), r(i, o)), (r(n, i).T, r(n, o)), (r(n, o), r(i, o).T)]

    def gemms():
        for a, b in pairs:
            a @ b

    return gemms


def w8(res, cfg, quick):
    x_np, y_np = common.w8_data()
    x, y = mx.nd.array(x_np), mx.nd.array(y_np, dtype="int64")
    for variant in ("eager", "jit"):
        try:
            params = _params(common.w8_params())
            step = make_w8_step(params, x, y, common.W8_LR, compiled=variant == "jit")
            loss0 = float(step().asscalar())
            for _ in range(common.W8_CHECK_STEPS - 1):
                step()
            lossk = float(lenet_loss(params, x, y).asscalar())
            check = {"loss0": loss0, f"loss{common.W8_CHECK_STEPS}": lossk}
            t = common.bench(step, cfg)
            res.add("W8", variant, t, check=check, mode=variant)
        except Exception as exc:  # noqa: BLE001
            res.fail("W8", variant, exc)
    t = common.bench(make_w8_gemms(), cfg)
    res.add("W8-ref", "numpy GEMMs of a step", t, case="GEMM floor")


# ---------------------------------------------------------------- W9
def w9_params_mxnet():
    """W9's parameters in MXNet's layout: E, per layer (i2h weight (4H, in), h2h weight
    (4H, H), bias), the output weight (H, V) and bias; float32 NumPy arrays."""
    p = common.w9_params()
    layers = [
        (p[1 + 3 * k].T.copy(), p[2 + 3 * k].T.copy(), p[3 + 3 * k])
        for k in range(common.W9_LAYERS)
    ]
    return p[0], layers, p[-2], p[-1]


def make_w9_eager(tok, tgt, lr, compiled=False):
    """W9 through the raw autograd API and MXNet's fused operator ``nd.RNN`` (its flat
    parameter vector concatenated from the parameters inside the recorded step, as Gluon's
    ``_rnn_param_concat`` does; the h2h biases are constant zeros: W9 has one bias per
    layer); ``compiled``: the loss through ``mx.jit``. Returns (step, loss_fn)."""
    E, layers, wo, bo = w9_params_mxnet()
    H, L = common.W9_HIDDEN, common.W9_LAYERS
    params = _params([E] + [a for lay in layers for a in lay] + [wo, bo])
    T, N = tok.shape
    zero_b = nd.zeros(4 * H)
    h0 = nd.zeros((L, N, H))

    def loss_of(*ps):
        ws = [ps[1 + 3 * k : 4 + 3 * k] for k in range(L)]
        flat = nd.concat(
            *[w.reshape(-1) for wi, wh, _ in ws for w in (wi, wh)],
            *[b for _, _, b in ws for b in (b, zero_b)],
            dim=0,
        )
        x = nd.Embedding(tok, ps[0])
        y = nd.RNN(x, flat, h0, h0, state_size=H, num_layers=L, mode="lstm")
        logits = nd.dot(y.reshape((T * N, H)), ps[-2]) + ps[-1]
        return xent(logits, tgt)

    loss_f = mx.jit(loss_of) if compiled else loss_of

    def step():
        with autograd.record():
            loss = loss_f(*params)
        loss.backward()
        for p in params:
            p -= lr * p.grad
        return loss

    return step, lambda: loss_f(*params)


def make_w9_gluon(tok, tgt, lr, hybridize=False):
    """W9 through Gluon: Embedding, ``rnn.LSTM`` (2 layers), Dense(flatten=False), the
    softmax cross-entropy loss and an SGD Trainer (h2h biases fixed at zero); ``hybridize``:
    the network compiled. Returns (step, loss_fn)."""
    from tapegrad import gluon
    from tapegrad.gluon import nn, rnn

    E, layers, wo, bo = w9_params_mxnet()
    H, L, V = common.W9_HIDDEN, common.W9_LAYERS, common.W9_VOCAB

    class LM(gluon.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.embed = nn.Embedding(V, E.shape[1])
                self.lstm = rnn.LSTM(H, num_layers=L, input_size=E.shape[1])
                self.out = nn.Dense(V, flatten=False, in_units=H)

        def hybrid_forward(self, F, x):
            return self.out(self.lstm(self.embed(x)))

    net = LM()
    net.initialize()
    net.embed.weight.set_data(mx.nd.array(E))
    for k, (wi, wh, b) in enumerate(layers):
        getattr(net.lstm, f"l{k}_i2h_weight").set_data(mx.nd.array(wi))
        getattr(net.lstm, f"l{k}_h2h_weight").set_data(mx.nd.array(wh))
        getattr(net.lstm, f"l{k}_i2h_bias").set_data(mx.nd.array(b))
        hb = getattr(net.lstm, f"l{k}_h2h_bias")
        hb.set_data(mx.nd.zeros(4 * H))
        hb.grad_req = "null"
    net.out.weight.set_data(mx.nd.array(wo.T))
    net.out.bias.set_data(mx.nd.array(bo))
    if hybridize:
        net.hybridize()
    trainable = {k: p for k, p in net.collect_params().items() if p.grad_req != "null"}
    trainer = gluon.Trainer(trainable, "sgd", {"learning_rate": lr})
    loss_f = gluon.loss.SoftmaxCrossEntropyLoss()
    T, N = tok.shape
    label = mx.nd.array(tgt, dtype="int64")

    def losses():  # one per (t, n) position
        return loss_f(net(tok).reshape((T * N, V)), label)

    def loss_fn():
        return losses().mean()

    def step():
        with autograd.record():
            loss = losses()
        loss.backward()
        trainer.step(T * N)  # averaged over the positions
        return loss.mean()

    return step, loss_fn


def w9(res, cfg, quick):
    tok_np, tgt_np = common.w9_data()
    tok = mx.nd.array(tok_np, dtype="int64")
    tgt = tgt_np.reshape(-1)
    variants = (
        ("eager", make_w9_eager),
        ("jit", lambda *a: make_w9_eager(*a, compiled=True)),
        ("gluon", make_w9_gluon),
        ("gluon hybridized", lambda *a: make_w9_gluon(*a, hybridize=True)),
    )
    for variant, make in variants:
        try:
            step, loss_fn = make(tok, tgt, common.W9_LR)
            loss0 = float(step().asscalar())
            for _ in range(common.W9_CHECK_STEPS - 1):
                step()
            lossk = float(loss_fn().asscalar())
            check = {"loss0": loss0, f"loss{common.W9_CHECK_STEPS}": lossk}
            t = common.bench(step, cfg)
            mode = "jit" if variant == "jit" or "hybrid" in variant else "eager"
            res.add("W9", variant, t, check=check, mode=mode)
        except Exception as exc:  # noqa: BLE001
            res.fail("W9", variant, exc)


def _sciml(name):
    def run(res, cfg, quick):
        import tapegrad_sciml_workloads as m

        return getattr(m, name)(res, cfg, quick)

    return run


def main(argv=None):
    import platform

    info = {
        "framework": "tapegrad " + mx.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    impls = {"W1": w1, "W2": w2, "W6": w6, "W8": w8, "W9": w9}
    if os.path.exists(os.path.join(_HERE, "tapegrad_sciml_workloads.py")):
        impls.update(
            {"W3": _sciml("w3"), "W4": _sciml("w4"), "W5": _sciml("w5"), "W7": _sciml("w7")}
        )
    return benchkit.run_checked("peers_tapegrad.py", "tapegrad", info, impls, argv)


if __name__ == "__main__":
    sys.exit(main())
