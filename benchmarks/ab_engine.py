"""Two versions of tapegrad in ONE process, interleaved: for judging an engine change when
the machine's speed drifts by more than the change (a shared VM does, by 10-50%).

    git worktree add /tmp/tg-old <revision>
    BENCH_DIR=../shared/bench python benchmarks/ab_engine.py /tmp/tg-old [--rounds 100]

Each checkout's ``tapegrad`` package is copied into a temporary folder under its own name
(``tg_old``, ``tg_new``; the package imports itself relatively, so both load side by side),
then W1 (the seed's scalar chain, forward and backward) and W2 (the MNIST MLP step) of
``../shared/bench/WORKLOADS.md`` run in short blocks, the versions taking turns. Reported:
each version's median per-iteration time and the median over the rounds of new / old.
Each version's df/dx (W1) and first loss (W2) are checked against WORKLOADS.md; the script
exits non-zero if one is off.

``--smoke`` (CI): one round of one call per case; without an old checkout it compares this
checkout with itself (A/A).
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

import benchkit  # noqa: E402
import common  # noqa: E402  (before numpy: pins threads; benchkit is stdlib only)


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


def main(argv=None) -> int:
    argv, smoke = benchkit.take_smoke_flag(argv)
    here = os.path.join(_HERE, "..")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "old",
        nargs="?",
        help="checkout of the old version (a folder holding tapegrad/); "
        "optional with --smoke (default there: this checkout, an A/A run)",
    )
    ap.add_argument("new", nargs="?", default=here, help="default: here")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--block-seconds", type=float, default=0.02)
    ap.add_argument("--smoke", action="store_true", help="one call per case, checked (CI)")
    args = ap.parse_args(argv)
    if smoke:
        args.rounds, args.block_seconds = benchkit.SMOKE_ROUNDS, benchkit.SMOKE_BLOCK_SECONDS
        if args.old is None:
            args.old = here
            print("# smoke mode, no old checkout given: A/A, this checkout against itself")
    elif args.old is None:
        ap.error(
            "the old checkout is required (a folder holding tapegrad/), e.g. "
            "git worktree add /tmp/tg-old <revision>"
        )
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        old, new = load(args.old, "tg_old", tmp), load(args.new, "tg_new", tmp)
        print(f"# old {os.path.abspath(args.old)}, new {os.path.abspath(args.new)}")
        for wl, make in [("W1 seed-scalar", w1_step), ("W2 mnist-mlp-step", w2_step)]:
            steps = {"old": make(old), "new": make(new)}
            wid, fig = ("W1", "dfdx") if wl.startswith("W1") else ("W2", "loss0")
            for version, step in steps.items():
                val = float(step().asscalar())  # W1: df/dx; W2: the first step's loss
                why = benchkit.check_figure(wid, fig, val)
                if why:
                    problems.append(f"{why} ({version})")
            times = benchkit.interleaved_times(steps, args.rounds, args.block_seconds)
            ratio = [n / o for o, n in zip(times["old"], times["new"])]
            q = statistics.quantiles(ratio, n=4)
            print(
                f"{wl:18s} old {statistics.median(times['old']) * 1e6:8.1f} us  "
                f"new {statistics.median(times['new']) * 1e6:8.1f} us  "
                f"new/old median {statistics.median(ratio):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f})"
            )
    return benchkit.report("ab_engine.py", problems)


if __name__ == "__main__":
    sys.exit(main())
