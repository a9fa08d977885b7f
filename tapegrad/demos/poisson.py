"""2-D Poisson equation with a physics-informed network (workload W5's problem).

``-(u_xx + u_yy) = 2 pi^2 sin(pi x) sin(pi y)`` on the unit square, ``u = 0`` on its
boundary; the exact solution is ``sin(pi x) sin(pi y)``.

The network ``N`` is a 2-64-64-1 tanh MLP. By default the boundary condition is built into
the ansatz, ``u = x (1 - x) y (1 - y) N(x, y)`` (the same trick as the seed's
``u = x g(x) + 1``), so the loss is the mean squared PDE residual alone; ``--soft-boundary``
uses W5's formulation instead (``u = N`` plus a boundary penalty), which is less accurate.
The Laplacian comes from the :class:`~tapegrad.sciml.Laplacian` block (forward Laplacian:
value, gradient and Laplacian in one pass), on random interior points drawn at every step.

With matplotlib installed it writes ``poisson.png``: the solution and its error on the grid
(``--plot PATH`` elsewhere, ``--no-plot`` none).

    tapegrad demo poisson                 # relative L2 error on a 101 x 101 grid
    tapegrad demo poisson --plot /tmp/poisson.png
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

DESCRIPTION = (
    "solve -Laplace(u) = 2 pi^2 sin(pi x) sin(pi y) on the unit square (u = 0 on "
    "the boundary) with a network and the forward Laplacian"
)

#: relative L2 error the default run must reach
TARGET = 1e-2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps (default 3000)")
    parser.add_argument(
        "--batch", type=int, default=512, help="random interior points per step (default 512)"
    )
    parser.add_argument("--width", type=int, default=64, help="hidden width (default 64)")
    parser.add_argument(
        "--lr",
        type=float,
        default=3e-3,
        help="initial learning rate, cosine decay to lr/100 (default 3e-3)",
    )
    parser.add_argument(
        "--soft-boundary",
        action="store_true",
        help="u = N with a boundary penalty (W5's loss) instead of the hard-constrained ansatz",
    )
    parser.add_argument(
        "--boundary-weight",
        type=float,
        default=100.0,
        help="weight of the boundary penalty with --soft-boundary",
    )
    parser.add_argument("--grid", type=int, default=101, help="evaluation grid size")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument(
        "--plot",
        metavar="PNG",
        default="poisson.png",
        help="PNG of the solution and its error, written when matplotlib is installed "
        "(default poisson.png)",
    )
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def source(p: np.ndarray) -> np.ndarray:
    """f = 2 pi^2 sin(pi x) sin(pi y) at points p (n, 2), shape (n, 1)."""
    return 2.0 * np.pi**2 * np.sin(np.pi * p[:, :1]) * np.sin(np.pi * p[:, 1:2])


def exact(p: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * p[:, :1]) * np.sin(np.pi * p[:, 1:2])


def build(width: int, dtype: str, soft: bool) -> tuple:
    """The network N and the trial solution u."""
    import tapegrad as mx
    from tapegrad.gluon import nn

    net = nn.HybridSequential()
    net.add(
        nn.Dense(width, activation="tanh", in_units=2),
        nn.Dense(width, activation="tanh", in_units=width),
        nn.Dense(1, in_units=width),
    )
    net.initialize(mx.init.Xavier())
    net.cast(dtype)
    if soft:
        return net, net

    def u(z: Any) -> Any:
        x, y = z[:, 0:1], z[:, 1:2]
        return x * (1.0 - x) * y * (1.0 - y) * net(z)

    return net, u


def boundary_points(rs: np.random.RandomState, n: int) -> np.ndarray:
    """n points on the boundary of the unit square, a quarter on each side."""
    t = rs.uniform(0.0, 1.0, size=n)
    q = n // 4
    z, o = np.zeros(q), np.ones(q)
    return np.concatenate(
        [
            np.stack([t[:q], z], 1),
            np.stack([o, t[q : 2 * q]], 1),
            np.stack([t[2 * q : 3 * q], o], 1),
            np.stack([z, t[3 * q : 4 * q]], 1),
        ]
    )


def grid(n: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(s, s)
    return np.stack([X.ravel(), Y.ravel()], axis=1)


def relative_l2(u: Any, n: int, dtype: str) -> float:
    import tapegrad as mx

    p = grid(n)
    ue = u(mx.nd.array(p, dtype=dtype)).asnumpy().astype(np.float64)
    ex = exact(p)
    return float(np.linalg.norm(ue - ex) / np.linalg.norm(ex))


def train(
    steps: int = 3000,
    batch: int = 512,
    width: int = 64,
    lr: float = 3e-3,
    soft: bool = False,
    boundary_weight: float = 100.0,
    seed: int = 0,
    dtype: str = "float32",
    grid_n: int = 101,
    log: Any = None,
) -> dict:
    """Train and return ``{'net', 'u', 'loss', 'rel_l2', 'step_s'}``."""
    import tapegrad as mx
    from tapegrad import autograd, gluon
    from tapegrad.sciml import Laplacian

    mx.random.seed(seed)
    net, u = build(width, dtype, soft)
    lap = Laplacian(u)
    sched = mx.lr_scheduler.CosineScheduler(
        max_update=max(steps, 1), base_lr=lr, final_lr=lr * 1e-2
    )
    trainer = gluon.Trainer(
        net.collect_params(), "adam", {"learning_rate": lr, "lr_scheduler": sched}
    )
    rs = np.random.RandomState(seed + 1)
    loss = None
    t0 = time.perf_counter()
    for i in range(steps):
        p = rs.uniform(0.0, 1.0, size=(batch, 2))
        x = mx.nd.array(p, dtype=dtype)
        f = mx.nd.array(source(p), dtype=dtype)
        xb = mx.nd.array(boundary_points(rs, 128), dtype=dtype) if soft else None
        with autograd.record():
            r = -lap(x) - f
            loss = (r * r).mean()
            if soft:
                ub = u(xb)
                loss = loss + boundary_weight * (ub * ub).mean()
        loss.backward()
        trainer.step(1)
        if log is not None and (i % max(steps // 6, 1) == 0 or i == steps - 1):
            log(
                f"  step {i:5d}  loss {float(loss.asscalar()):.3e}  relative L2 error "
                f"{relative_l2(u, 41, dtype):.2e}"
            )
    step_s = (time.perf_counter() - t0) / max(steps, 1)
    return {
        "net": net,
        "u": u,
        "loss": float(loss.asscalar()) if loss is not None else None,
        "rel_l2": relative_l2(u, grid_n, dtype),
        "step_s": step_s,
    }


def _plot(path: str, u: Any, n: int, dtype: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no PNG written (pip install matplotlib)"
    import tapegrad as mx

    p = grid(n)
    ue = u(mx.nd.array(p, dtype=dtype)).asnumpy().reshape(n, n)
    err = np.abs(ue - exact(p).reshape(n, n))
    fig, axs = plt.subplots(1, 2, figsize=(10, 4))
    for ax, data, title in ((axs[0], ue, "u (network)"), (axs[1], err, "|u - sin(πx) sin(πy)|")):
        im = ax.imshow(data, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def run(args: argparse.Namespace) -> int:
    form = (
        "u = N, boundary penalty" if args.soft_boundary else "u = x(1-x)y(1-y) N (boundary exact)"
    )
    print(
        f"Poisson -Δu = 2π² sin(πx) sin(πy) on [0,1]², u = 0 on the boundary; {form}; "
        f"N = 2-{args.width}-{args.width}-1 tanh; Adam lr {args.lr:g} (cosine), "
        f"{args.steps} steps of {args.batch} random interior points ({args.dtype})"
    )
    res = train(
        args.steps,
        args.batch,
        args.width,
        args.lr,
        args.soft_boundary,
        args.boundary_weight,
        args.seed,
        args.dtype,
        args.grid,
        log=None if args.quiet else print,
    )
    ok = res["rel_l2"] < TARGET
    print(
        f"\nrelative L2 error on a {args.grid}x{args.grid} grid: {res['rel_l2']:.2e} "
        f"(target < {TARGET:g}: {'met' if ok else 'NOT met'});  final loss "
        f"{res['loss']:.2e};  {res['step_s'] * 1e3:.2f} ms/step"
    )
    if args.plot and not args.no_plot:
        msg = _plot(args.plot, res["u"], args.grid, args.dtype)
        print(msg if msg else f"plot written to {args.plot}")
    return 0 if ok else 1
