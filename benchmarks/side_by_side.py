"""W1, W2 and W8 of ../shared/bench/WORKLOADS.md, tapegrad and PyTorch eager in ONE process,
interleaved: the frameworks take turns in short blocks of iterations, round after round, so a
noisy moment of a shared machine falls on both alike. Reports each one's median over the
rounds and the ratio tapegrad / PyTorch. For W8 (LeNet) it also times the NumPy matrix products
one step makes (``numpy GEMMs``), the floor of tapegrad's im2col design.

    PYTHONPATH=. BENCH_DIR=../shared/bench $HOME/peers/torch/bin/python \\
        benchmarks/side_by_side.py [--rounds 15] [--block-seconds 0.1]

It runs under the PyTorch peer's interpreter (which has NumPy) with tapegrad on PYTHONPATH;
without PyTorch it times tapegrad alone and says so. The workloads are those of
``peers_tapegrad.py`` and ``peers_torch.py`` (same data, initialisation, learning rate and
update); each case's df/dx (W1) or first loss (W2, W8) is checked against WORKLOADS.md, and the
script exits non-zero if one is off. ``--smoke`` (CI): one round of one call per case.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_BENCH = os.environ.get("BENCH_DIR", os.path.join(_HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, os.path.abspath(_BENCH))
sys.path.insert(0, _HERE)

import benchkit  # noqa: E402
import common  # noqa: E402  (before numpy: pins threads; benchkit is stdlib only)
import numpy as np  # noqa: E402
import peers_tapegrad as ptg  # noqa: E402

import tapegrad as mx  # noqa: E402
from tapegrad import nd  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF

    torch.set_num_threads(common.THREADS)
except ImportError:  # optional: tapegrad alone
    torch = None


def tapegrad_w1():
    step = ptg.make_w1_step()
    return step, lambda: float(step().asscalar())


def torch_w1():
    x = torch.tensor(common.W1_X, dtype=torch.float64, requires_grad=True)

    def step():
        a = torch.exp(x)
        c = a + a**2
        (g,) = torch.autograd.grad(torch.exp(c) + torch.sin(c), x)
        return g

    return step, lambda: float(step())


def tapegrad_w2_raw():
    x_np, y_np = common.w2_data()
    x, y = mx.nd.array(x_np), mx.nd.array(y_np, dtype="int64")
    params = ptg._params(common.w2_params())
    return ptg.make_sgd_step(params, x, y, nd.tanh, common.W2_LR), lambda r: float(r.asscalar())


def tapegrad_w2_gluon():
    x_np, y_np = common.w2_data()
    x, y = mx.nd.array(x_np), mx.nd.array(y_np, dtype="int64")
    step, _, _ = ptg.make_gluon_step(x, y, common.w2_params(), nd.tanh, common.W2_LR)
    return step, lambda r: float(r.mean().asscalar())


def torch_w2():
    x_np, y_np = common.w2_data()
    x, y = torch.tensor(x_np), torch.from_numpy(y_np)
    params = [torch.tensor(np.array(a), requires_grad=True) for a in common.w2_params()]

    def step():
        h = torch.tanh(x @ params[0] + params[1])
        loss = TF.cross_entropy(h @ params[2] + params[3], y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.add_(g, alpha=-common.W2_LR)
        return loss

    return step, lambda r: float(r.item())


def tapegrad_w8():
    x_np, y_np = common.w8_data()
    x, y = mx.nd.array(x_np), mx.nd.array(y_np, dtype="int64")
    params = ptg._params(common.w8_params())
    return ptg.make_w8_step(params, x, y, common.W8_LR), lambda r: float(r.asscalar())


def numpy_w8_gemms():
    return ptg.make_w8_gemms(), None


def torch_w8():
    x_np, y_np = common.w8_data()
    x, y = torch.tensor(x_np), torch.from_numpy(y_np)
    p = [torch.tensor(np.array(a), requires_grad=True) for a in common.w8_params()]

    def step():
        h = TF.max_pool2d(TF.relu(TF.conv2d(x, p[0], p[1])), 2, 2)
        h = TF.max_pool2d(TF.relu(TF.conv2d(h, p[2], p[3])), 2, 2).reshape(x.shape[0], -1)
        h = TF.relu(h @ p[4] + p[5])
        h = TF.relu(h @ p[6] + p[7])
        loss = TF.cross_entropy(h @ p[8] + p[9], y)
        grads = torch.autograd.grad(loss, p)
        with torch.no_grad():
            for q, g in zip(p, grads):
                q.add_(g, alpha=-common.W8_LR)
        return loss

    return step, lambda r: float(r.item())


def main(argv=None) -> int:
    argv, smoke = benchkit.take_smoke_flag(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--block-seconds", type=float, default=0.1)
    ap.add_argument("--smoke", action="store_true", help="one call per case, checked (CI)")
    args = ap.parse_args(argv)
    if smoke:
        args.rounds, args.block_seconds = benchkit.SMOKE_ROUNDS, benchkit.SMOKE_BLOCK_SECONDS
    groups = {
        "W1 seed-scalar": {"tapegrad": tapegrad_w1},
        "W2 mnist-mlp-step": {"tapegrad": tapegrad_w2_raw, "tapegrad gluon": tapegrad_w2_gluon},
        "W8 lenet-step": {"tapegrad": tapegrad_w8, "numpy GEMMs": numpy_w8_gemms},
    }
    if torch is not None:
        groups["W1 seed-scalar"]["torch eager"] = torch_w1
        groups["W2 mnist-mlp-step"]["torch eager"] = torch_w2
        groups["W8 lenet-step"]["torch eager"] = torch_w8
    print(
        f"# one process: tapegrad {mx.__version__}, numpy {np.__version__}, "
        f"torch {torch.__version__ if torch else 'absent'}, threads {common.THREADS}, "
        f"{args.rounds} rounds"
    )
    if torch is None:
        print("# PyTorch is not importable here: its side is SKIPPED, tapegrad runs alone")
    problems = []
    for wl, makers in groups.items():
        wid = wl.split()[0]
        cases, checks = {}, {}
        for name, make in makers.items():
            step, value = make()
            cases[name] = step
            if value is None:  # a reference without a figure (the GEMM floor)
                checks[name] = ""
                continue
            # W1: df/dx; W2, W8: the first step's loss
            fig, val = ("dfdx", value()) if wid == "W1" else ("loss0", value(step()))
            checks[name] = f"{fig}={val:.7g}"
            why = benchkit.check_figure(wid, fig, val)
            if why:
                problems.append(f"{why} ({name})")
        times = benchkit.interleaved_times(cases, args.rounds, args.block_seconds)
        ref = statistics.median(times["torch eager"]) if "torch eager" in times else None
        for name, ts in times.items():
            med = statistics.median(ts)
            ratio = f"  {med / ref:5.2f} x torch eager" if ref else ""
            print(
                f"{wl:18s} {name:15s} median {med * 1e6:8.1f} us  "
                f"(quartiles {np.percentile(ts, 25) * 1e6:.1f}-{np.percentile(ts, 75) * 1e6:.1f})"
                f"{ratio}  {checks[name]}"
            )
    return benchkit.report("side_by_side.py", problems)


if __name__ == "__main__":
    sys.exit(main())
