"""Cost of input derivatives against their order, by method (the measurements behind the
method choices of tapegrad.sciml; docs/sciml.md and benchmarks/RESULTS.md).

    python benchmarks/sciml_orders.py [--quick] [--only orders|laplacian|gradient]

1. k-th derivative du^k/dx^k, k = 1..4, of W3's network (1-32-32-1 sigmoid, 64 points,
   float32): Taylor mode (tapegrad.sciml), nested forward mode (forward.jvp of forward.jvp),
   nested reverse mode (autograd.grad(create_graph=True) k times); the derivative alone, and
   a training step (loss = mean of its square, backward to the parameters).
2. Laplacian of W5's network (2-64-64-1 tanh, 1024 points): forward Laplacian, Taylor mode
   order 2 per direction, forward-over-reverse (JVP of the input gradient per direction),
   nested reverse (as PyTorch eager).
3. Input gradient of a d-64-64-1 tanh network (256 points) for d = 1..32: stacked forward
   mode against one reverse pass (what sets sciml.operators.GRADIENT_FORWARD_MAX_DIM).

Every method's result is compared with the first method's (Taylor mode, forward Laplacian,
forward mode); the script exits non-zero if they differ by more than float32 rounding allows.
``--smoke`` (CI, see ``benchkit.py``): every case once, one call per timing.
"""

from __future__ import annotations

import argparse
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

from tapegrad import autograd, nd  # noqa: E402
from tapegrad.functional import jvp  # noqa: E402
from tapegrad.sciml import derivative, gradient, laplacian, taylor, unit_directions  # noqa: E402

# `import tapegrad` keeps freed temporaries in the process (tapegrad/_malloc.py), which
# takes page-fault noise out of the comparisons of docs/sciml.md


def mlp_params(init, dtype="float32"):
    out = []
    for k, a in enumerate(init):
        p = nd.array(a.T if k % 2 == 0 else a, dtype=dtype)
        p.attach_grad()
        out.append(p)
    return out


def mlp(params, x, act):
    h = x
    n = len(params) // 2
    for k in range(n):
        w, b = params[2 * k], params[2 * k + 1]
        h = nd.FullyConnected(h, w, b, num_hidden=w.shape[0])
        if k < n - 1:
            h = act(h)
    return h


def interleaved(fns: dict, rounds: int, min_time: float) -> dict:
    """The best (minimum) per-call time of each function over the rounds of
    :func:`benchkit.interleaved_times`."""
    return {k: min(v) for k, v in benchkit.interleaved_times(fns, rounds, min_time).items()}


# ---------------------------------------------------------------- k-th derivative methods
def kth_taylor(u, x, k):
    return derivative(u, x, order=k)


def kth_nested_forward(u, x, k):
    ones = nd.ones_like(x)
    f = u
    for _ in range(k):
        f = (lambda g: lambda z: jvp(g, [z], [ones])[1])(f)
    return f(x)


def kth_nested_reverse(u, x, k):
    xv = x.copy()
    xv.attach_grad()
    rec = autograd.is_recording()
    with autograd.record():
        y = u(xv)
        for _ in range(k):
            (y,) = autograd.grad(y, [xv], create_graph=True)
    if not rec:
        y = y.detach()
    return y


KTH = {
    "Taylor mode": kth_taylor,
    "nested forward": kth_nested_forward,
    "nested reverse": kth_nested_reverse,
}


def bench_orders(cfg, orders=(1, 2, 3, 4)):
    x = nd.array(common.w3_points())
    params = mlp_params(common.w3_params())

    def u(z):
        return z * mlp(params, z, nd.sigmoid) + 1.0

    fns, errs = {}, {}
    for k in orders:
        ref = kth_taylor(u, x, k).asnumpy()
        for name, fn in KTH.items():
            val = fn(u, x, k).asnumpy()
            errs[name, k] = float(np.max(np.abs(val - ref)) / (np.max(np.abs(ref)) + 1e-30))

            def only(fn=fn, k=k):
                return fn(u, x, k)

            def step(fn=fn, k=k):
                with autograd.record():
                    d = fn(u, x, k)
                    loss = (d * d).mean()
                loss.backward()
                return loss

            fns[name, k, "d"] = only
            fns[name, k, "step"] = step
    best = interleaved(fns, cfg.repeats, cfg.min_time)
    rows = []
    for name in KTH:
        for k in orders:
            t1, t2 = best[name, k, "d"], best[name, k, "step"]
            rows.append((name, k, t1, t2, errs[name, k]))
            print(
                f"  {name:16s} k={k}  derivative {t1 * 1e6:9.1f} us   "
                f"+ backward {t2 * 1e6:9.1f} us   (rel. diff vs Taylor {errs[name, k]:.1e})"
            )
    return rows


# ---------------------------------------------------------------- Laplacian methods
def lap_forward_laplacian(u, x):
    return laplacian(u, x)


def lap_taylor_per_direction(u, x):
    _, (_, c2) = taylor(u, x, unit_directions(x, [0, 1]), 2)
    return c2.sum(axis=0)


def lap_forward_over_reverse(u, x):
    def g(z):
        return gradient(u, z, method="reverse")

    out = None
    for i in range(x.shape[1]):
        e = nd.array(unit_directions(x, [i]).asnumpy()[0])
        t = jvp(g, [x], [e])[1][:, i : i + 1]
        out = t if out is None else out + t
    return out


def lap_nested_reverse(u, x):
    xv = x.copy()
    xv.attach_grad()
    rec = autograd.is_recording()
    with autograd.record():
        y = u(xv)
        (g,) = autograd.grad(y, [xv], create_graph=True)
        out = None
        for i in range(x.shape[1]):
            (gi,) = autograd.grad(g[:, i], [xv], create_graph=True)
            t = gi[:, i : i + 1]
            out = t if out is None else out + t
    return out if rec else out.detach()


LAP = {
    "forward Laplacian": lap_forward_laplacian,
    "Taylor order 2 per direction": lap_taylor_per_direction,
    "forward-over-reverse": lap_forward_over_reverse,
    "nested reverse": lap_nested_reverse,
}


def bench_laplacian(cfg):
    xi_np, _, _ = common.w5_data()
    x = nd.array(xi_np)
    params = mlp_params(common.w5_params())

    def u(z):
        return mlp(params, z, nd.tanh)

    fns, errs = {}, {}
    ref = None
    for name, fn in LAP.items():
        val = fn(u, x).asnumpy()
        ref = val if ref is None else ref
        errs[name] = float(np.max(np.abs(val - ref)) / np.max(np.abs(ref)))

        def only(fn=fn):
            return fn(u, x)

        def step(fn=fn):
            with autograd.record():
                lap = fn(u, x)
                loss = (lap * lap).mean()
            loss.backward()
            return loss

        fns[name, "d"] = only
        fns[name, "step"] = step
    best = interleaved(fns, cfg.repeats, cfg.min_time)
    rows = []
    for name in LAP:
        t1, t2 = best[name, "d"], best[name, "step"]
        rows.append((name, t1, t2, errs[name]))
        print(
            f"  {name:30s} Laplacian {t1 * 1e3:7.2f} ms   + backward {t2 * 1e3:7.2f} ms   "
            f"(rel. diff {errs[name]:.1e})"
        )
    return rows


# ---------------------------------------------------------------- gradient: fwd vs rev
def bench_gradient(cfg, dims=(1, 2, 4, 8, 16, 32)):
    rows = []
    for d in dims:
        x_np, init = common.w7_data(d)
        params = mlp_params(init, "float32")
        x = nd.array(x_np.astype(np.float32))

        def u(z, params=params):
            return mlp(params, z, nd.tanh)

        gf = gradient(u, x, method="forward").asnumpy()
        gr = gradient(u, x, method="reverse").asnumpy()
        err = float(np.max(np.abs(gr - gf)) / (np.max(np.abs(gf)) + 1e-30))
        fns = {}
        for method in ("forward", "reverse"):

            def step(method=method, u=u, x=x):
                with autograd.record():
                    g = gradient(u, x, method=method)
                    loss = (g * g).mean()
                loss.backward()
                return loss

            fns[method] = step
        best = interleaved(fns, cfg.repeats, cfg.min_time)
        out = [best["forward"], best["reverse"]]
        rows.append((d, out[0], out[1], err))
        print(
            f"  d={d:3d}  forward {out[0] * 1e6:8.1f} us   reverse {out[1] * 1e6:8.1f} us   "
            f"(rel. diff {err:.1e})",
            flush=True,
        )
    return rows


# Largest relative difference (max |a - b| / max |b|) accepted between two methods in float32.
MAX_REL_DIFF = 1e-4


def main(argv=None) -> int:
    argv, smoke = benchkit.take_smoke_flag(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--smoke", action="store_true", help="every case once, results checked (CI)")
    p.add_argument("--only", choices=["orders", "laplacian", "gradient"], default=None)
    args = p.parse_args(argv)
    cfg = common.TimingConfig(
        warmup=2, min_time=0.05 if args.quick else 0.1, repeats=3 if args.quick else 7
    )
    if smoke:
        cfg = common.TimingConfig(warmup=1, min_time=benchkit.SMOKE_BLOCK_SECONDS, repeats=1)
        print("# smoke mode: one call per case and method, results checked")
    print(f"# {common.machine_info()}")
    diffs = []
    if args.only in (None, "orders"):
        print("k-th derivative, W3 network (1-32-32-1 sigmoid, 64 points, float32):")
        diffs += [(f"{name} k={k} vs Taylor mode", e) for name, k, _, _, e in bench_orders(cfg)]
    if args.only in (None, "laplacian"):
        print("Laplacian, W5 network (2-64-64-1 tanh, 1024 points, float32):")
        diffs += [(f"Laplacian {n} vs {next(iter(LAP))}", e) for n, _, _, e in bench_laplacian(cfg)]
    if args.only in (None, "gradient"):
        print("input gradient + backward, d-64-64-1 tanh, 256 points, float32:")
        diffs += [(f"gradient d={d} reverse vs forward", e) for d, _, _, e in bench_gradient(cfg)]
    problems = [
        f"{what}: relative difference {e:.1e} > {MAX_REL_DIFF:g}"
        for what, e in diffs
        if not e <= MAX_REL_DIFF  # NaN fails too
    ]
    return benchkit.report("sciml_orders.py", problems)


if __name__ == "__main__":
    sys.exit(main())
