"""The seed's ODE, solved with a network whose input derivative comes from autodiff.

``u'(x) = 2x`` on [-1, 1] with ``u(0) = 1`` (exact solution ``x^2 + 1``). As in the seed,
``g`` is Dense(32, sigmoid) -> Dense(32, sigmoid) -> Dense(1) and ``u(x) = x g(x) + 1`` (so
``u(0) = 1`` holds exactly); the loss is the mean squared residual ``du/dx - 2x`` on random
points of [-1, 1], drawn afresh at every step. ``du/dx`` is exact: the
:class:`~tapegrad.sciml.Derivative` block pushes a Taylor-mode tangent through ``u``, and the
loss's gradient reaches ``g``'s parameters through it.

Beside it runs the seed's finite-difference version, ``(u(x + dx) - u(x)) / dx`` with
``dx = 1e-4``: time per step, and the error of that derivative against the network's exact
derivative (float64 and float32). With matplotlib installed it writes ``ode.png``: u against
x^2 + 1, and the error along x (``--plot PATH`` elsewhere, ``--no-plot`` none).

    tapegrad demo ode                 # float64 and float32, plus the finite-difference run
    tapegrad demo ode --dtype float64 --no-fd --plot /tmp/ode.png
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

DESCRIPTION = (
    "solve the seed's ODE u'(x) = 2x, u(0) = 1 with u(x) = x g(x) + 1, du/dx by "
    "autodiff, beside the seed's finite differences"
)

#: max |u - (x^2 + 1)| the float64 run must reach with the defaults
TARGET = 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=8000, help="Adam steps (default 8000)")
    parser.add_argument(
        "--batch", type=int, default=256, help="random collocation points per step (default 256)"
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=1e-2,
        help="initial learning rate; cosine decay to lr/1000 (default 1e-2)",
    )
    parser.add_argument(
        "--dtype",
        choices=["both", "float64", "float32"],
        default="both",
        help="precision of the autodiff runs (default: both)",
    )
    parser.add_argument(
        "--fd-step",
        type=float,
        default=1e-4,
        help="finite-difference step dx of the seed's version (default 1e-4)",
    )
    parser.add_argument("--no-fd", action="store_true", help="skip the finite-difference run")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--plot",
        metavar="PNG",
        default="ode.png",
        help="PNG of u against x^2 + 1, written when matplotlib is installed (default ode.png)",
    )
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def build_g(dtype: str) -> Any:
    """The seed's ansatz g: Dense(32, sigmoid) -> Dense(32, sigmoid) -> Dense(1)."""
    import tapegrad as mx
    from tapegrad.gluon import nn

    g = nn.HybridSequential()
    g.add(
        nn.Dense(32, activation="sigmoid", in_units=1),
        nn.Dense(32, activation="sigmoid", in_units=32),
        nn.Dense(1, in_units=32),
    )
    # weights of order 1: the sigmoids start in their curved range (small initial weights
    # leave g nearly linear and training stalls around 1e-2)
    g.initialize(mx.init.Uniform(1.0))
    g.cast(dtype)
    return g


def make_u(g: Any) -> Any:
    """``u(x) = x g(x) + 1``."""
    return lambda x: x * g(x) + 1.0


def fd_derivative(u: Any, x: Any, dx: float) -> Any:
    """The seed's forward difference ``(u(x + dx) - u(x)) / dx``."""
    return (u(x + dx) - u(x)) / dx


def exact_error(u: Any, dtype: str, n: int = 1001) -> float:
    """max |u(x) - (x^2 + 1)| on ``n`` evenly spaced points of [-1, 1]."""
    import tapegrad as mx

    xs = np.linspace(-1.0, 1.0, n).reshape(-1, 1)
    ue = u(mx.nd.array(xs, dtype=dtype)).asnumpy().astype(np.float64)
    return float(np.max(np.abs(ue - (xs**2 + 1.0))))


def train(
    method: str = "ad",
    dtype: str = "float64",
    steps: int = 8000,
    batch: int = 256,
    lr: float = 1e-2,
    seed: int = 0,
    fd_step: float = 1e-4,
    log: Any = None,
) -> dict:
    """Train ``u`` and return ``{'g', 'u', 'loss', 'max_err', 'step_s'}``.

    ``method``: ``'ad'`` (exact derivative, Derivative block) or ``'fd'`` (the seed's
    forward difference with step ``fd_step``).
    """
    import tapegrad as mx
    from tapegrad import autograd, gluon
    from tapegrad.sciml import Derivative

    mx.random.seed(seed)
    g = build_g(dtype)
    u = make_u(g)
    du = Derivative(u) if method == "ad" else (lambda x: fd_derivative(u, x, fd_step))
    sched = mx.lr_scheduler.CosineScheduler(
        max_update=max(steps, 1), base_lr=lr, final_lr=lr * 1e-3
    )
    trainer = gluon.Trainer(
        g.collect_params(), "adam", {"learning_rate": lr, "lr_scheduler": sched}
    )
    rs = np.random.RandomState(seed + 1)
    loss = None
    t0 = time.perf_counter()
    for i in range(steps):
        x = mx.nd.array(rs.uniform(-1.0, 1.0, size=(batch, 1)), dtype=dtype)
        with autograd.record():
            r = du(x) - 2.0 * x
            loss = (r * r).mean()
        loss.backward()
        trainer.step(1)
        if log is not None and (i % max(steps // 8, 1) == 0 or i == steps - 1):
            log(f"    {method} {dtype} step {i:5d}  loss {float(loss.asscalar()):.3e}")
    step_s = (time.perf_counter() - t0) / max(steps, 1)
    return {
        "g": g,
        "u": u,
        "loss": float(loss.asscalar()) if loss is not None else None,
        "max_err": exact_error(u, dtype),
        "step_s": step_s,
    }


def derivative_errors(g64: Any, dx: float) -> dict:
    """Error of the seed's finite difference against the exact derivative of the same
    network, in float64 and in float32 (a float32 copy of the network)."""
    import tapegrad as mx
    from tapegrad.sciml import derivative

    out = {}
    xs = np.linspace(-0.99, 0.99, 199).reshape(-1, 1)
    for dtype in ("float64", "float32"):
        g = g64
        if dtype == "float32":
            g = build_g("float32")
            for p32, p64 in zip(g.collect_params().values(), g64.collect_params().values()):
                p32.set_data(p64.data().astype("float32"))
        u = make_u(g)
        x = mx.nd.array(xs, dtype=dtype)
        exact = derivative(u, x).asnumpy().astype(np.float64)
        fd = fd_derivative(u, x, dx).asnumpy().astype(np.float64)
        out[dtype] = float(np.max(np.abs(fd - exact)))
    return out


def _plot(path: str, runs: dict) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no PNG written (pip install matplotlib)"
    import tapegrad as mx

    xs = np.linspace(-1.0, 1.0, 401).reshape(-1, 1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot(xs, xs**2 + 1.0, "k-", lw=3, alpha=0.3, label="x² + 1 (exact)")
    for label, res in runs.items():
        dtype = "float32" if "float32" in label else "float64"
        ue = res["u"](mx.nd.array(xs, dtype=dtype)).asnumpy()
        ax.plot(xs, ue, "--", label=f"u, {label}")
        ax2.semilogy(xs, np.abs(ue - (xs**2 + 1.0)) + 1e-17, label=label)
    ax.set_xlabel("x")
    ax.legend()
    ax.set_title("u(x) = x g(x) + 1")
    ax2.set_xlabel("x")
    ax2.set_title("|u(x) - (x² + 1)|")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def run(args: argparse.Namespace) -> int:
    log = None if args.quiet else print
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    print(
        f"ODE u'(x) = 2x, u(0) = 1 on [-1, 1]; u = x g(x) + 1, g = 1-32-32-1 sigmoid MLP; "
        f"Adam lr {args.lr:g} (cosine), {args.steps} steps of {args.batch} random points"
    )
    runs = {}
    for dtype in dtypes:
        runs[f"autodiff {dtype}"] = train(
            "ad", dtype, args.steps, args.batch, args.lr, args.seed, log=log
        )
    if not args.no_fd:
        runs["finite differences float64"] = train(
            "fd", "float64", args.steps, args.batch, args.lr, args.seed, args.fd_step, log=log
        )
    print("\nresults (max |u - (x^2 + 1)| on 1001 points of [-1, 1]):")
    for label, res in runs.items():
        print(
            f"  {label:28s} max error {res['max_err']:.2e}   final loss "
            f"{res['loss']:.2e}   {res['step_s'] * 1e3:.3f} ms/step"
        )
    ok = True
    if "autodiff float64" in runs:
        err = runs["autodiff float64"]["max_err"]
        ok = err < TARGET
        print(f"  float64 target max error < {TARGET:g}: {'met' if ok else 'NOT met'}")
    if not args.no_fd:
        ref = runs.get("autodiff float64") or next(iter(runs.values()))
        g64 = ref["g"]
        if "autodiff float64" not in runs:
            g64 = build_g("float64")
            for p64, p in zip(g64.collect_params().values(), ref["g"].collect_params().values()):
                p64.set_data(p.data().astype("float64"))
        derr = derivative_errors(g64, args.fd_step)
        print(
            f"\nthe seed's forward difference (dx = {args.fd_step:g}) against the exact "
            "derivative of the same network, max over [-0.99, 0.99]:"
        )
        for dtype, e in derr.items():
            print(f"  {dtype}: {e:.2e}")
        ad = runs[next(k for k in runs if k.startswith("autodiff"))]["step_s"]
        fd = runs["finite differences float64"]["step_s"]
        print(
            f"  time per training step: autodiff {ad * 1e3:.3f} ms, finite differences "
            f"{fd * 1e3:.3f} ms"
        )
    if args.plot and not args.no_plot:
        msg = _plot(args.plot, runs)
        print(f"\n{msg}" if msg else f"\nplot written to {args.plot}")
    return 0 if ok else 1
