"""Two versions of tapegrad in ONE process, interleaved: for judging an engine change when
the machine's speed drifts by more than the change (a shared VM does, by 10-50%).

    git worktree add /tmp/tg-old <revision>
    BENCH_DIR=../shared/bench python benchmarks/ab_engine.py /tmp/tg-old [--rounds 100]

Each checkout's ``tapegrad`` package is copied into a temporary folder under its own name
(``tg_old``, ``tg_new``; the package imports itself relatively, so both load side by side),
then W1 (the seed's scalar chain, forward and backward) and W2 (the MNIST MLP step) of
``../shared/bench/WORKLOADS.md`` run in short blocks, the versions taking turns. Reported:
each version's median per-iteration time and the median over the rounds of new / old.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_BENCH = os.environ.get("BENCH_DIR", os.path.join(_HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, os.path.abspath(_BENCH))
sys.path.insert(0, _HERE)

import common  # noqa: E402  (must come first: pins threads)
from sciml_orders import interleaved_times  # noqa: E402


def w1_step(mx):
    """W1 with package ``mx``: the six operations recorded, then df/dx by backward()."""
    x = mx.nd.array(common.W1_X, dtype="float64")
    x.attach_grad()
    exp, sin = mx.nd.exp, mx.nd.sin

    def step():
        with mx.autograd.record():
            a = exp(x)
            c = a + a**2
            f = exp(c) + sin(c)
        f.backward()
        return x.grad

    return step


def w2_step(mx):
    """W2 with package ``mx``: 784-72-10 tanh MLP, softmax cross-entropy, SGD in place."""
    x_np, y_np = common.w2_data()
    x, y = mx.nd.array(x_np), mx.nd.array(y_np, dtype="int64")
    params = [mx.nd.array(a) for a in common.w2_params()]
    for p in params:
        p.attach_grad()
    nd = mx.nd

    def step():
        with mx.autograd.record():
            h = nd.tanh(nd.dot(x, params[0]) + params[1])
            f = nd.dot(h, params[2]) + params[3]
            loss = nd.softmax_cross_entropy(f, y) / f.shape[0]
        loss.backward()
        for p in params:
            p -= common.W2_LR * p.grad
        return loss

    return step


def load(checkout: str, name: str, into: str):
    """Import ``checkout``'s tapegrad package under the module name ``name``."""
    shutil.copytree(os.path.join(checkout, "tapegrad"), os.path.join(into, name))
    return importlib.import_module(name)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="checkout of the old version (a folder holding tapegrad/)")
    ap.add_argument("new", nargs="?", default=os.path.join(_HERE, ".."), help="default: here")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--block-seconds", type=float, default=0.02)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        old, new = load(args.old, "tg_old", tmp), load(args.new, "tg_new", tmp)
        print(f"# old {os.path.abspath(args.old)}, new {os.path.abspath(args.new)}")
        for wl, make in [("W1 seed-scalar", w1_step), ("W2 mnist-mlp-step", w2_step)]:
            steps = {"old": make(old), "new": make(new)}
            times = interleaved_times(steps, args.rounds, args.block_seconds)
            ratio = [n / o for o, n in zip(times["old"], times["new"])]
            q = statistics.quantiles(ratio, n=4)
            print(
                f"{wl:18s} old {statistics.median(times['old']) * 1e6:8.1f} us  "
                f"new {statistics.median(times['new']) * 1e6:8.1f} us  "
                f"new/old median {statistics.median(ratio):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f})"
            )


if __name__ == "__main__":
    main()
