"""Hessian-vector products of the MNIST network's loss ("NetPortHvp" in the seed).

The lecture notes' network, 784 -> Dense(72, tanh) -> Dense(10), softmax cross-entropy, on a
batch of MNIST images (the copy bundled with tapegrad; ``--random`` uses a random batch).
``H v`` (H the Hessian of the loss with respect to all parameters, v a random direction) is
computed three ways with :func:`tapegrad.functional.hvp` -- reverse over a Taylor-mode
directional derivative (the default), forward over reverse, reverse over reverse -- and with
MXNet's idiom (``autograd.grad(create_graph=True)`` then ``backward``), checked against
central finite differences of the gradient, ``(g(w + h v) - g(w - h v)) / 2h`` in float64,
and timed relative to one gradient.

    tapegrad demo hvp
    tapegrad demo hvp --random --batch 32
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

DESCRIPTION = (
    "Hessian-vector products of the MNIST MLP's loss (784-72-10 tanh), checked "
    "against finite differences of the gradient, with their cost"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=128, help="images in the batch (default 128)")
    parser.add_argument(
        "--random", action="store_true", help="random inputs and labels instead of MNIST images"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--fd-step",
        type=float,
        default=1e-5,
        help="finite-difference step of the check (default 1e-5)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=20,
        help="timed calls per method (default 20; best is reported)",
    )


def load_batch(n: int, random: bool, seed: int) -> tuple:
    """(images (n, 784) float64 in [0, 1], labels (n,)) from MNIST or at random."""
    rs = np.random.RandomState(seed)
    if not random:
        try:
            from tapegrad.gluon.data.vision import MNIST

            data = MNIST(train=True)
            idx = rs.choice(len(data), size=n, replace=False)
            xs = np.stack(
                [np.asarray(data[int(i)][0], dtype=np.float64).reshape(-1) / 255.0 for i in idx]
            )
            ys = np.array([int(data[int(i)][1]) for i in idx])
            return xs, ys, "MNIST (bundled)"
        except Exception as e:  # a missing dataset is not fatal for this demo
            print(f"(MNIST unavailable: {e}; using a random batch)")
    return rs.random_sample((n, 784)), rs.randint(0, 10, size=n), "random"


def make_loss(x: Any, y: Any) -> Any:
    """loss(W1, b1, W2, b2): mean softmax cross-entropy of the 784-72-10 tanh network."""
    from tapegrad import nd

    def loss(w1: Any, b1: Any, w2: Any, b2: Any) -> Any:
        h = nd.tanh(nd.FullyConnected(x, w1, b1, num_hidden=72))
        z = nd.FullyConnected(h, w2, b2, num_hidden=10)
        return -nd.pick(nd.log_softmax(z, axis=1), y, axis=1).mean()

    return loss


def _best(fn: Any, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(args: argparse.Namespace) -> int:
    import tapegrad as mx
    from tapegrad import autograd, nd
    from tapegrad import functional as F

    xs, ys, source = load_batch(args.batch, args.random, args.seed)
    rs = np.random.RandomState(args.seed + 1)
    shapes = [(72, 784), (72,), (10, 72), (10,)]
    w0 = [rs.uniform(-1, 1, s) / np.sqrt(s[-1] if len(s) == 2 else 1) for s in shapes]
    w0[1][:] = 0.0
    w0[3][:] = 0.0
    v0 = [rs.standard_normal(s) for s in shapes]
    print(
        f"784-72-10 tanh MLP, softmax cross-entropy, batch of {args.batch} ({source}); "
        f"{sum(int(np.prod(s)) for s in shapes)} parameters; v ~ N(0, 1)"
    )

    # the check in float64: central differences of the gradient along v
    x64, y64 = nd.array(xs, dtype="float64"), nd.array(ys, dtype="float64")
    loss64 = make_loss(x64, y64)
    nums = (0, 1, 2, 3)
    g64 = F.grad(loss64, argnums=nums)
    p64 = [nd.array(a, dtype="float64") for a in w0]
    v64 = [nd.array(a, dtype="float64") for a in v0]
    h = args.fd_step
    gp = g64(*[p + h * v for p, v in zip(p64, v64)])
    gm = g64(*[p - h * v for p, v in zip(p64, v64)])
    fd = [(a - b).asnumpy() / (2 * h) for a, b in zip(gp, gm)]
    fd_norm = np.sqrt(sum(np.sum(a * a) for a in fd))

    # timings in float32, the usual training precision
    x32, y32 = nd.array(xs, dtype="float32"), nd.array(ys, dtype="float32")
    loss32 = make_loss(x32, y32)
    p32 = [nd.array(a, dtype="float32") for a in w0]
    v32 = [nd.array(a, dtype="float32") for a in v0]
    g32 = F.grad(loss32, argnums=nums)
    pv = [p.copy() for p in p32]
    for p in pv:
        p.attach_grad()

    def double_backward(loss: Any, params: list, vs: list) -> list:
        for p in params:
            p.attach_grad()
        with autograd.record():
            gs = autograd.grad(loss(*params), params, create_graph=True)
            dot = sum((gi * vi).sum() for gi, vi in zip(gs, vs))
        dot.backward()
        return [p.grad for p in params]

    methods = [
        ("functional.hvp (reverse over Taylor mode)", lambda L, P, V: F.hvp(L, P, V)),
        ("functional.hvp(method='fwd-rev')", lambda L, P, V: F.hvp(L, P, V, method="fwd-rev")),
        ("functional.hvp(method='rev-rev')", lambda L, P, V: F.hvp(L, P, V, method="rev-rev")),
        (
            "autograd.grad(create_graph) + backward",
            lambda L, P, V: double_backward(L, [p.copy() for p in P], V),
        ),
    ]
    t_grad = _best(lambda: g32(*p32), args.repeats)
    print(f"\none gradient: {t_grad * 1e3:.3f} ms (float32)\n")
    print(f"{'method':44s} {'rel. error vs FD (f64)':>22s} {'time (f32)':>12s} {'hvp/grad':>9s}")
    worst = 0.0
    for name, fn in methods:
        hv = [a.asnumpy() for a in fn(loss64, p64, v64)]
        err = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(hv, fd))) / fd_norm
        worst = max(worst, err)
        t = _best(lambda fn=fn: fn(loss32, p32, v32), args.repeats)
        print(f"{name:44s} {err:22.2e} {t * 1e3:10.3f} ms {t / t_grad:9.2f}")
    ok = worst < 1e-5
    print(
        f"\nall Hessian-vector products agree with finite differences of the gradient "
        f"(relative error < 1e-5): {'yes' if ok else 'NO'}"
    )
    _ = mx
    return 0 if ok else 1
