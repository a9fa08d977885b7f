"""What each part of ``mx.jit`` buys, on W1, W2 and W3 of ../shared/bench/WORKLOADS.md.

Each workload runs as a ladder of variants, taking turns in one process (so a noisy moment of
the shared machine falls on all alike), and each variant's median is reported with its ratio
to eager execution:

- ``eager``: the tape records each operation, ``backward()`` walks it (``peers_tapegrad.py``'s
  eager step);
- ``jit loss``: the loss compiled by ``mx.jit`` (one node on the tape), backward and update
  eager;
- ``jit step``: the whole step compiled (``functional.value_and_grad`` inside ``mx.jit``, the
  update written into the arguments): straight-line NumPy calls, no tape, no NDArray wrappers;
- ``jit step, no CSE`` / ``no fused writes``: the same with one pass of
  ``tapegrad.trace_passes`` switched off while the program is built (common subexpressions;
  in-place updates fused into the ufunc that computes them, ``out=``);
- ``jit step, static_alloc``: dead intermediate buffers recycled through ``out=``;
- W3 also ``jit step, flat Adam`` (``tapegrad_sciml_workloads.make_jit_flat_adam_step``: the
  parameters and Adam's moments in one buffer each, the update 13 operations in all).

Every variant's first loss (W1: df/dx) is checked against WORKLOADS.md; the script exits
non-zero if one is off.

    BENCH_DIR=../shared/bench python benchmarks/jit_parts.py [--rounds 15] [-w W3]

The pass switches reach into ``tapegrad.trace`` (a measuring tool, not an API).
``--smoke`` (CI): one round of one call per variant, checked.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
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
import tapegrad_sciml_workloads as sci  # noqa: E402

import tapegrad as mx  # noqa: E402
from tapegrad import nd, trace, trace_passes  # noqa: E402


@contextlib.contextmanager
def passes(cse: bool = True, fused: bool = True, static_alloc: bool = False):
    """Build compiled programs (first calls) with passes switched off or static_alloc on."""
    saved = trace.eliminate_common, trace_passes.Emitter.fused_write, trace.Compiled.__init__
    init = saved[2]
    if not cse:
        trace.eliminate_common = lambda plan: 0
    if not fused:
        trace_passes.Emitter.fused_write = lambda self, i: None
    if static_alloc:
        trace.Compiled.__init__ = lambda self, f, name=None, sa=False: init(self, f, name, True)
    try:
        yield
    finally:
        trace.eliminate_common, trace_passes.Emitter.fused_write, trace.Compiled.__init__ = saved


LADDER = (
    ("jit step, no CSE", {"cse": False}),
    ("jit step, no fused writes", {"fused": False}),
    ("jit step, static_alloc", {"static_alloc": True}),
)


def w1() -> dict:
    cases = {"eager": ptg.make_w1_step, "jit loss": ptg.make_w1_jit_step}
    cases["jit step"] = ptg.make_w1_jit_grad
    for name, kw in LADDER:
        cases[name] = functools.partial(_built, ptg.make_w1_jit_grad, kw)
    return {k: (v, lambda r: ("dfdx", float(r.asscalar()))) for k, v in cases.items()}


def _built(make, kw):
    """``make()``'s step, its first call (trace and compile) made under the switches ``kw``;
    the first call's result is kept as ``step.first``."""
    with passes(**kw):
        step = make()
        first = step()
    step.first = first
    return step


def w2() -> dict:
    x_np, y_np = common.w2_data()
    x, y = nd.array(x_np), nd.array(y_np, dtype="int64")
    init, act, lr = common.w2_params(), nd.tanh, common.W2_LR

    def make(kind, kw=None):
        def build():
            params = ptg._params(init)
            if kind == "step":
                return ptg.make_jit_sgd_step(params, x, y, act, lr)
            return ptg.make_sgd_step(params, x, y, act, lr, compiled=kind == "loss")

        return build if kw is None else functools.partial(_built, build, kw)

    cases = {"eager": make("eager"), "jit loss": make("loss"), "jit step": make("step")}
    for name, kw in LADDER:
        cases[name] = make("step", kw)
    return {k: (v, lambda r: ("loss0", float(r.asscalar()))) for k, v in cases.items()}


def w3() -> dict:
    x = nd.array(common.w3_points())

    def make(kind, kw=None):
        def build():
            params = sci.mlp_params(common.w3_params())
            loss = lambda p: sci.w3_loss_taylor(p, x)  # noqa: E731
            if kind == "flat":
                return sci.make_jit_flat_adam_step(loss, params, common.W3_LR)
            if kind == "step":
                return sci.make_jit_adam_step(loss, params, common.W3_LR)
            return sci.make_adam_step(loss, params, common.W3_LR, compiled=kind == "loss")

        return build if kw is None else functools.partial(_built, build, kw)

    cases = {"eager": make("eager"), "jit loss": make("loss"), "jit step": make("step")}
    for name, kw in LADDER:
        cases[name] = make("step", kw)
    cases["jit step, flat Adam"] = make("flat")
    cases["jit step, flat Adam, static_alloc"] = make("flat", {"static_alloc": True})
    return {k: (v, lambda r: ("loss0", float(r.asscalar()))) for k, v in cases.items()}


WORKLOADS = {"W1": w1, "W2": w2, "W3": w3}


def main(argv=None) -> int:
    argv, smoke = benchkit.take_smoke_flag(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-w", "--workload", action="append", choices=sorted(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--block-seconds", type=float, default=0.1)
    ap.add_argument("--smoke", action="store_true", help="one call per variant, checked (CI)")
    args = ap.parse_args(argv)
    if smoke:
        args.rounds, args.block_seconds = benchkit.SMOKE_ROUNDS, benchkit.SMOKE_BLOCK_SECONDS
    print(
        f"# one process: tapegrad {mx.__version__}, numpy {np.__version__}, "
        f"threads {common.THREADS}, {args.rounds} rounds"
    )
    problems = []
    for wid in args.workload or sorted(WORKLOADS):
        steps, checks = {}, {}
        for name, (make, figure) in WORKLOADS[wid]().items():
            step = make()
            first = step.first if hasattr(step, "first") else step()
            fig, val = figure(first)  # the first step's figure
            checks[name] = f"{fig}={val:.7g}"
            why = benchkit.check_figure(wid, fig, val)
            if why:
                problems.append(f"{why} ({name})")
            steps[name] = step
        times = benchkit.interleaved_times(steps, args.rounds, args.block_seconds)
        ref = statistics.median(times["eager"])
        for name, ts in times.items():
            med = statistics.median(ts)
            print(
                f"{wid} {name:34s} median {med * 1e6:8.1f} us  "
                f"(quartiles {np.percentile(ts, 25) * 1e6:.1f}-{np.percentile(ts, 75) * 1e6:.1f})"
                f"  {med / ref:5.2f} x eager  {checks[name]}"
            )
    return benchkit.report("jit_parts.py", problems)


if __name__ == "__main__":
    sys.exit(main())
