"""tapegrad implementations of workloads W3, W4, W5 and W7 (../shared/bench/WORKLOADS.md).

Same structure, case labels and checks as ``peers_torch.py``; ``peers_tapegrad.py`` imports
``w3, w4, w5, w7`` from here. Standalone:

    python benchmarks/tapegrad_sciml_workloads.py -w W3 -w W5 --quick
    TAPEGRAD_MALLOC=1 python benchmarks/tapegrad_sciml_workloads.py -w W5   # tapegrad._malloc

Idioms: input derivatives with ``tapegrad.sciml`` (Taylor mode for du/dx, forward Laplacian
for W5), the MXNet idiom (``autograd.grad(..., create_graph=True)``, nested reverse mode) beside
it; Hessian-vector products with ``tapegrad.functional.hvp`` (reverse over a Taylor-mode
directional derivative), forward-over-reverse, and double backward. Parameters are plain
NDArrays with the workloads' initial values (weights stored as (out, in), as Gluon's Dense
stores them); Adam is the torch formula (``common.NumpyAdam``) with the moments in NumPy and
the update applied in place through the public API (``p -= ...``).

``--smoke`` (see ``benchkit.py``): every case once, W3-train shortened to 100 steps, the
correctness figures checked; exits non-zero if one is off.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_BENCH = os.environ.get("BENCH_DIR", os.path.join(_HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, os.path.abspath(_BENCH))
sys.path.insert(0, os.path.abspath(os.path.join(_HERE, "..")))
sys.path.insert(0, _HERE)

import benchkit  # noqa: E402
import common  # noqa: E402  (must come before numpy: pins the thread counts)
import numpy as np  # noqa: E402

import tapegrad as mx  # noqa: E402
from tapegrad import _malloc, autograd, nd  # noqa: E402
from tapegrad import functional as F  # noqa: E402
from tapegrad.sciml import derivative, laplacian  # noqa: E402

__all__ = ["w3", "w4", "w5", "w7", "mlp_params"]

# `import tapegrad` keeps freed temporaries in the process (tapegrad._malloc.tune; W5 runs
# twice as fast with it); TAPEGRAD_MALLOC=0 measures glibc's default behaviour instead.


def sync(r):
    """Results are materialised already (NumPy is synchronous)."""
    return r


def mlp_params(init: list, dtype: str = "float32") -> list:
    """Workload parameters [W1, b1, ...] (W of shape (in, out)) as NDArray variables with
    the weights transposed to (out, in) for ``nd.FullyConnected``."""
    out = []
    for k, a in enumerate(init):
        arr = nd.array(a.T if k % 2 == 0 else a, dtype=dtype)
        arr.attach_grad()
        out.append(arr)
    return out


def mlp(params: list, x, act):
    """``h @ W + b`` per layer, ``act`` after every layer but the last."""
    h = x
    n = len(params) // 2
    for k in range(n):
        w, b = params[2 * k], params[2 * k + 1]
        h = nd.FullyConnected(h, w, b, num_hidden=w.shape[0])
        if k < n - 1:
            h = act(h)
    return h


class Adam:
    """torch.optim.Adam, the formula of WORKLOADS.md and ``common.NumpyAdam``: the moments are
    NumPy arrays, the update is applied with NDArray's own ``p -= ...`` (``np.asarray(p)`` is a
    read-only view: NDArrays change only through their API)."""

    def __init__(self, params: list, lr: float) -> None:
        self.params, self.lr, self.t = params, lr, 0
        self.m = [np.zeros_like(np.asarray(p)) for p in params]
        self.v = [np.zeros_like(np.asarray(p)) for p in params]

    def step(self) -> None:
        b1, b2, eps = common.ADAM_B1, common.ADAM_B2, common.ADAM_EPS
        self.t += 1
        bc1, bc2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            g = np.asarray(p.grad)
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            p -= (self.lr / bc1) * m / (np.sqrt(v / bc2) + eps)


# ---------------------------------------------------------------- W3
def w3_u(params, x):
    return x * mlp(params, x, nd.sigmoid) + 1.0


def w3_loss_taylor(params, x):
    du = derivative(lambda z: w3_u(params, z), x)
    r = du - 2.0 * x
    return (r * r).mean()


def w3_loss_grad(params, x):
    """MXNet's idiom: x is a variable, du/dx by autograd.grad(create_graph=True)."""
    u = w3_u(params, x)
    (du,) = autograd.grad(u, [x], create_graph=True)
    r = du - 2.0 * x
    return (r * r).mean()


def make_jit_adam_step(loss_fn, params, lr):
    """The whole step compiled, as ``jax.jit`` runs it: loss and gradients by
    ``functional.value_and_grad``, then Adam (the formula of ``Adam`` above, ``t`` an
    NDArray) written into the parameters and moments, which are the compiled function's
    arguments."""
    b1, b2, eps = common.ADAM_B1, common.ADAM_B2, common.ADAM_EPS
    n = len(params)
    m = [nd.zeros_like(p) for p in params]
    v = [nd.zeros_like(p) for p in params]
    t = nd.zeros((), dtype=params[0].dtype)
    vg = F.value_and_grad(lambda *ps: loss_fn(list(ps)), argnums=tuple(range(n)))

    @mx.jit
    def compiled(*s):
        ps, ms, vs, tt = s[:n], s[n : 2 * n], s[2 * n : 3 * n], s[3 * n]
        loss, grads = vg(*ps)
        tt += 1.0
        step_size = lr / (1.0 - b1**tt)
        inv_bc2 = 1.0 / (1.0 - b2**tt)
        for p, mi, vi, g in zip(ps, ms, vs, grads):
            mi *= b1
            mi += (1.0 - b1) * g
            vi *= b2
            vi += (1.0 - b2) * g * g
            p -= step_size * mi / (nd.sqrt(vi * inv_bc2) + eps)
        return loss

    state = [*params, *m, *v, t]
    return lambda: compiled(*state)


def make_jit_flat_adam_step(loss_fn, params, lr, static_alloc=False):
    """``make_jit_adam_step`` with the parameters and moments in one flat buffer each (the
    "multi-tensor" form of PyTorch's ``foreach`` optimizers): the compiled function slices
    each parameter out of the buffer (views), the gradients are concatenated, and Adam runs
    as 13 operations on the whole buffer instead of 13 per parameter. ``static_alloc``: as
    ``mx.jit``'s (dead buffers recycled)."""
    b1, b2, eps = common.ADAM_B1, common.ADAM_B2, common.ADAM_EPS
    n = len(params)
    shapes = [tuple(p.shape) for p in params]
    ends = np.cumsum([int(np.prod(s)) for s in shapes]).tolist()
    flat = nd.concat(*[p.reshape((-1,)) for p in params], dim=0)
    # the caller's parameters become views of the buffer: they see every update
    params[:] = [flat[a:b].reshape(s) for a, b, s in zip([0, *ends], ends, shapes)]
    m, v = nd.zeros_like(flat), nd.zeros_like(flat)
    t = nd.zeros((), dtype=flat.dtype)
    vg = F.value_and_grad(lambda *ps: loss_fn(list(ps)), argnums=tuple(range(n)))

    @mx.jit(static_alloc=static_alloc)
    def compiled(fl, mi, vi, tt):
        ps = [fl[a:b].reshape(s) for a, b, s in zip([0, *ends], ends, shapes)]
        loss, grads = vg(*ps)
        g = nd.concat(*[gi.reshape((-1,)) for gi in grads], dim=0)
        tt += 1.0
        step_size = lr / (1.0 - b1**tt)
        inv_bc2 = 1.0 / (1.0 - b2**tt)
        mi *= b1
        mi += (1.0 - b1) * g
        vi *= b2
        vi += (1.0 - b2) * g * g
        fl -= step_size * mi / (nd.sqrt(vi * inv_bc2) + eps)
        return loss

    return lambda: compiled(flat, m, v, t)


def make_adam_step(loss_fn, params, lr, compiled=False):
    opt = Adam(params, lr)
    if compiled:  # the loss and its input derivatives compiled by mx.jit, params as arguments
        jl = mx.jit(lambda *ps: loss_fn(list(ps)))
        loss_of = lambda p: jl(*p)  # noqa: E731
    else:
        loss_of = loss_fn

    def step():
        with autograd.record():
            loss = loss_of(params)
        loss.backward()
        opt.step()
        return loss

    return step


def w3(res, cfg, quick):
    x = nd.array(common.w3_points())
    xv = nd.array(common.w3_points())  # a variable: autograd.grad differentiates w.r.t. it
    xv.attach_grad()
    xe = nd.array(common.w3_eval_points())

    def run(name, loss_fn):
        xx = xv if loss_fn is w3_loss_grad else x
        jit = name.startswith("jit")
        params = mlp_params(common.w3_params())
        with common.Stopwatch() as first:
            if name.startswith("jit step, flat"):
                sa = name.endswith("static_alloc")
                step = make_jit_flat_adam_step(lambda p: loss_fn(p, xx), params, common.W3_LR, sa)
            elif name.startswith("jit step"):
                step = make_jit_adam_step(lambda p: loss_fn(p, xx), params, common.W3_LR)
            else:
                step = make_adam_step(lambda p: loss_fn(p, xx), params, common.W3_LR, jit)
            loss0 = float(step().asscalar())
        t = common.bench(step, cfg, sync=sync)
        extra = {"first_call_s": first.seconds} if jit else {}
        res.add("W3", name, t, check={"loss0": loss0}, extra=extra,
                mode="jit" if jit else "eager")  # fmt: skip
        if jit:
            return
        steps = benchkit.SMOKE_W3_TRAIN_STEPS if benchkit.smoke() else common.W3_TRAIN_STEPS
        params = mlp_params(common.w3_params())
        step = make_adam_step(lambda p: loss_fn(p, xx), params, common.W3_LR)
        loss100 = None
        with common.Stopwatch() as sw:
            for i in range(steps):
                loss = step()
                if i == 99:
                    loss100 = float(loss.asscalar())
        ue = w3_u(params, xe).asnumpy()
        err = float(np.max(np.abs(ue - (xe.asnumpy() ** 2 + 1.0))))
        res.add(
            "W3-train",
            name,
            sw.timing,
            check={"loss100": loss100, "final_loss": float(loss.asscalar()), "max_abs_err": err},
            extra={"steps": steps, "per_step_s": sw.seconds / steps},
        )

    for name, fn in [
        ("eager", w3_loss_taylor),
        ("eager autograd.grad", w3_loss_grad),
        ("jit", w3_loss_taylor),
        ("jit autograd.grad", w3_loss_grad),
        ("jit step", w3_loss_taylor),
        ("jit step autograd.grad", w3_loss_grad),
        ("jit step, flat Adam", w3_loss_taylor),
        ("jit step, flat Adam, static_alloc", w3_loss_taylor),
    ]:
        try:
            run(name, fn)
        except Exception as exc:
            res.fail("W3", name, exc)


# ---------------------------------------------------------------- W4
def w4(res, cfg, quick):
    x_np, y_np = common.w2_data()
    x = nd.array(x_np)
    y = nd.array(y_np, dtype="float32")
    init = common.w2_params()
    params = [nd.array(a.T if k % 2 == 0 else a) for k, a in enumerate(init)]
    v = [nd.array(a.T if k % 2 == 0 else a) for k, a in enumerate(common.w4_vector(init))]
    nums = tuple(range(len(params)))

    def loss(*ps):
        logits = mlp(list(ps), x, nd.tanh)
        return -nd.pick(nd.log_softmax(logits, axis=1), y, axis=1).mean()

    grad_fn = F.grad(loss, argnums=nums)

    def grad_only():
        return grad_fn(*params)

    def hvp_functional():
        return F.hvp(loss, params, v)

    def hvp_fwd_rev():
        return F.hvp(loss, params, v, method="fwd-rev")

    pvars = [p.copy() for p in params]
    for p in pvars:
        p.attach_grad()

    def hvp_double_backward():
        with autograd.record():
            g = autograd.grad(loss(*pvars), pvars, create_graph=True)
            dot = sum((gi * vi).sum() for gi, vi in zip(g, v))
        dot.backward()
        return [p.grad for p in pvars]

    jit_grad = mx.jit(grad_fn)
    jit_hvp = mx.jit(lambda *a: F.hvp(loss, list(a[: len(a) // 2]), list(a[len(a) // 2 :])))

    def grad_jit():
        return jit_grad(*params)

    def hvp_jit():
        return jit_hvp(*params, *v)

    tg = common.bench(grad_only, cfg, sync=sync)
    res.add("W4", "grad", tg, case="grad")
    tgj = common.bench(grad_jit, cfg, sync=sync)
    res.add("W4", "jit grad", tgj, case="grad", mode="jit")
    for name, fn in [
        ("hvp functional.hvp", hvp_functional),
        ("hvp jvp(grad)", hvp_fwd_rev),
        ("hvp double-backward", hvp_double_backward),
        ("jit hvp functional.hvp", hvp_jit),
    ]:
        try:
            hv = [h.asnumpy().astype(np.float64) for h in fn()]
            vv = [a.asnumpy().astype(np.float64) for a in v]
            vhv = float(sum(np.sum(h * a) for h, a in zip(hv, vv)))
            norm = float(np.sqrt(sum(np.sum(h * h) for h in hv)))
            t = common.bench(fn, cfg, sync=sync)
            jit = name.startswith("jit")
            res.add(
                "W4",
                name,
                t,
                check={"vHv": vhv, "|Hv|": norm},
                extra={"hvp/grad": t.median / (tgj if jit else tg).median},
                case="hvp",
                mode="jit" if jit else "eager",
            )
        except Exception as exc:
            res.fail("W4", name, exc)


# ---------------------------------------------------------------- W5
def w5_loss_laplacian(params, xi, f, xb):
    """Forward Laplacian (tapegrad.sciml.laplacian)."""
    lap = laplacian(lambda z: mlp(params, z, nd.tanh), xi)
    r = -lap - f
    ub = mlp(params, xb, nd.tanh)
    return (r * r).mean() + (ub * ub).mean()


def w5_loss_grad(params, xi, f, xb):
    """Nested reverse mode, as torch eager: three autograd.grad(create_graph=True)."""
    u = mlp(params, xi, nd.tanh)
    (g,) = autograd.grad(u, [xi], create_graph=True)
    (gx,) = autograd.grad(g[:, 0], [xi], create_graph=True)
    (gy,) = autograd.grad(g[:, 1], [xi], create_graph=True)
    r = -(gx[:, 0:1] + gy[:, 1:2]) - f
    ub = mlp(params, xb, nd.tanh)
    return (r * r).mean() + (ub * ub).mean()


def w5(res, cfg, quick):
    xi_np, f_np, xb_np = common.w5_data()
    f, xb = nd.array(f_np), nd.array(xb_np)
    for name, loss_fn in [
        ("eager", w5_loss_laplacian),
        ("eager autograd.grad", w5_loss_grad),
        ("jit", w5_loss_laplacian),
        ("jit autograd.grad", w5_loss_grad),
        ("jit step", w5_loss_laplacian),
        ("jit step autograd.grad", w5_loss_grad),
        ("jit step, flat Adam", w5_loss_laplacian),
        ("jit step, flat Adam, static_alloc", w5_loss_laplacian),
    ]:
        xi = nd.array(xi_np)
        if loss_fn is w5_loss_grad:
            xi.attach_grad()  # nested reverse mode differentiates w.r.t. this variable
        try:
            params = mlp_params(common.w5_params())
            loss_of = lambda p, fn=loss_fn, xi=xi: fn(p, xi, f, xb)  # noqa: E731
            if name.startswith("jit step, flat"):
                sa = name.endswith("static_alloc")
                step = make_jit_flat_adam_step(loss_of, params, common.W5_LR, sa)
            elif name.startswith("jit step"):
                step = make_jit_adam_step(loss_of, params, common.W5_LR)
            else:
                step = make_adam_step(loss_of, params, common.W5_LR, name.startswith("jit"))
            loss0 = float(step().asscalar())
            for _ in range(common.W5_CHECK_STEPS - 1):
                step()
            with autograd.record():  # the nested-reverse loss needs a graph to differentiate
                lossk = float(loss_fn(params, xi, f, xb).asscalar())
            t = common.bench(step, cfg, sync=sync)
            res.add("W5", name, t, check={"loss0": loss0, f"loss{common.W5_CHECK_STEPS}": lossk},
                    mode="jit" if name.startswith("jit") else "eager")  # fmt: skip
        except Exception as exc:
            res.fail("W5", name, exc)


# ---------------------------------------------------------------- W7
def w7_dim(res, cfg, d):
    x_np, init = common.w7_data(d)
    params = [nd.array(a.T if k % 2 == 0 else a, dtype="float64") for k, a in enumerate(init)]
    X = nd.array(x_np, dtype="float64")
    gfn = F.grad(lambda z: mlp(params, z, nd.tanh).sum())

    def ad():
        return gfn(X)

    def forward_sum(xp):
        return mlp(params, nd.array(xp, dtype="float64"), nd.tanh).asnumpy()[:, 0]

    def fd():
        return common.fd_gradient_loop(forward_sum, x_np)

    gjit = mx.jit(gfn)
    g_jit = gjit(X).asnumpy()
    g_ad = ad().asnumpy()
    g_fd = fd()
    err = float(np.max(np.abs(g_fd - g_ad)))
    ta = common.bench(ad, cfg, sync=sync)
    res.add("W7", f"d={d} ad", ta, check={"sum_grad": float(g_ad.sum())}, case=f"d={d} ad")
    tj = common.bench(lambda: gjit(X), cfg, sync=sync)
    res.add(
        "W7",
        f"d={d} jit ad",
        tj,
        check={"sum_grad": float(g_jit.sum())},
        case=f"d={d} ad",
        mode="jit",
    )
    tf = common.bench(fd, cfg, sync=sync)
    res.add(
        "W7",
        f"d={d} fd",
        tf,
        check={"max_abs_err_fd_vs_ad": err},
        extra={"fd/ad": tf.median / ta.median},
        case=f"d={d} fd",
    )


def w7(res, cfg, quick):
    for d in common.W7_DIMS:
        w7_dim(res, cfg, d)


def main(argv=None) -> int:
    info = {
        "framework": f"tapegrad {mx.__version__}",
        "malloc_tuned": _malloc.tune(),  # done by `import tapegrad`: this returns its result
    }
    impls = {"W3": w3, "W4": w4, "W5": w5, "W7": w7}
    return benchkit.run_checked("tapegrad_sciml_workloads.py", "tapegrad", info, impls, argv)


if __name__ == "__main__":
    sys.exit(main())
