"""Helpers shared by the benchmark scripts: smoke mode, the workloads' correctness figures, and
interleaved timing. Standard library only (``common`` from ../shared/bench is imported by the
caller first, as every script must), so it loads under any peer's interpreter.

Smoke mode (``--smoke`` on any script, or ``TAPEGRAD_BENCH_SMOKE=1``) runs every workload and
case once with tiny repeat counts and checks its correctness figures against the values that
``../shared/bench/WORKLOADS.md`` defines (the figures every peer agrees on); the script then
exits non-zero on a failed case or a wrong figure. CI (``.ci/run``) runs every script this way,
so a benchmark that breaks fails CI.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence

SMOKE_ENV = "TAPEGRAD_BENCH_SMOKE"

# Training lengths and rounds in smoke mode: enough to reach every figure that is checked.
SMOKE_W3_TRAIN_STEPS = 100  # W3-train reports loss100
SMOKE_ROUNDS = 2  # interleaved timing (statistics.quantiles needs two points)
SMOKE_BLOCK_SECONDS = 1e-6  # one call per block

# Correctness figures of WORKLOADS.md: (workload, figure) -> (reference, relative tolerance)
# for values, or (None, bound) for figures that must not exceed ``bound``. The references are
# the normative values quoted there (agreed by PyTorch, JAX, HIPS autograd and the hand-written
# NumPy floor), not our own output. Peers agree to about 1e-5 relative on the first step; the
# trained figures accumulate float32 rounding over the steps, hence looser tolerances.
_A = math.exp(0.1)  # W1: df/dx = (exp(c) + cos(c)) (a + 2 a^2), a = exp(x), c = a + a^2
W1_DFDX = (math.exp(_A + _A * _A) + math.cos(_A + _A * _A)) * (_A + 2 * _A * _A)

EXPECTED: dict[tuple[str, str], tuple[float | None, float]] = {
    ("W1", "dfdx"): (W1_DFDX, 1e-13),
    ("W1", "abs_err"): (None, 1e-12),  # WORKLOADS.md: <= 1e-13; a few ulps of 33.9 to spare
    ("W2", "loss0"): (2.304423, 1e-5),
    ("W2", "loss10"): (2.097817, 1e-5),
    ("W3", "loss0"): (1.158000, 1e-5),
    ("W3-train", "loss100"): (0.0030144, 1e-3),
    ("W4", "vHv"): (66.8426, 1e-5),
    ("W4", "|Hv|"): (27.20864, 1e-5),
    ("W5", "loss0"): (97.98265, 1e-5),
    ("W5", "loss10"): (88.2278, 1e-5),
    ("W6", "loss0"): (2.305610, 1e-5),
    ("W6", "loss5"): (2.273449, 1e-5),
    ("W7", "max_abs_err_fd_vs_ad"): (None, 1e-8),  # WORKLOADS.md: about 1e-11
    # W8: WORKLOADS.md quotes no figures; these are PyTorch 2.13 eager's (peers_torch.py W8)
    ("W8", "loss0"): (2.300893, 1e-5),
    ("W8", "loss5"): (2.295845, 1e-4),
    # W9: WORKLOADS.md quotes no figures; these are PyTorch 2.13 eager's (peers_torch.py W9)
    ("W9", "loss0"): (5.298268, 1e-5),
    ("W9", "loss3"): (5.296763, 1e-5),
}


def take_smoke_flag(argv: Sequence[str] | None) -> tuple[list[str], bool]:
    """``argv`` without ``--smoke``, and whether smoke mode is on (the flag or the environment
    variable). The flag sets the environment variable, so modules imported later see it too."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--smoke" in args:
        args = [a for a in args if a != "--smoke"]
        os.environ[SMOKE_ENV] = "1"
    return args, smoke()


def smoke() -> bool:
    """True in smoke mode."""
    return os.environ.get(SMOKE_ENV, "") not in ("", "0")


def check_figure(wid: str, name: str, value: float) -> str | None:
    """A sentence saying what is wrong with figure ``name`` of workload ``wid``, or None."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{wid} {name}={value!r} is not a finite number"
    spec = EXPECTED.get((wid, name))
    if spec is None:
        return None
    ref, tol = spec
    if ref is None:
        if abs(value) > tol:
            return f"{wid} {name}={value:.3g} exceeds {tol:g}"
    elif abs(value - ref) > tol * abs(ref):
        return f"{wid} {name}={value:.7g}, WORKLOADS.md: {ref:.7g} (relative tolerance {tol:g})"
    return None


def check_records(records: list[dict]) -> list[str]:
    """Problems in the records of a ``common.Results``: failed cases, figures that are off, and
    figures of EXPECTED missing from a workload that ran. Workloads that a script does not
    implement (``common.run`` records them as skipped) are not problems."""
    problems, seen, ran = [], set(), set()
    for rec in records:
        wid, status = rec["workload"], rec["status"]
        if status == "skipped" and rec["variant"] == "-":
            continue
        if status != "ok":
            problems.append(f"{wid} {rec['variant']}: {status}: {rec['note']}")
            continue
        ran.add(wid)
        for name, value in rec["check"].items():
            seen.add((wid, name))
            why = check_figure(wid, name, value)
            if why:
                problems.append(f"{why} ({rec['variant']})")
    for wid, name in EXPECTED:
        if wid in ran and (wid, name) not in seen:
            problems.append(f"{wid}: figure {name} was not reported")
    return problems


def report(script: str, problems: list[str]) -> int:
    """Print the verdict of a checked run; the exit status (0: every check passed)."""
    if problems:
        print(f"# {script}: {len(problems)} check(s) FAILED:")
        for p in problems:
            print(f"#   {p}")
        return 1
    print(f"# {script}: every case ran and every correctness figure checked passed")
    return 0


def run_checked(script: str, peer: str, info: dict, impls: dict, argv=None) -> int:
    """``common.run`` for a workload script, then the correctness checks of its results. In
    smoke mode the timing is cut to one repeat of one iteration."""
    import common

    args, on = take_smoke_flag(argv)
    if "--list" in args:
        return common.run(peer, info, impls, args)
    if on:
        args += ["--quick", "--repeats", "1", "--min-time", "1e-9"]
        print("# smoke mode: one repeat of one iteration per case, figures checked")
    runs: list = []

    def capture(fn: Callable) -> Callable:
        def run(res, cfg, quick):
            if not runs:
                runs.append(res)
            return fn(res, cfg, quick)

        return run

    rc = common.run(peer, info, {k: capture(f) for k, f in impls.items()}, args)
    if rc:
        return rc
    return report(script, check_records(runs[0].records) if runs else [])


def interleaved_times(fns: dict, rounds: int, min_time: float) -> dict:
    """Per-call times of each function, one per round: each round runs every function for
    about ``min_time`` seconds, the functions taking turns (so a noisy moment of a shared
    machine does not favour one of them)."""
    n = {}
    for k, f in fns.items():
        for _ in range(2):
            f()
        t = time.perf_counter()
        f()
        n[k] = max(1, int(min_time / max(time.perf_counter() - t, 1e-9)))
    times: dict = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            gc.collect()
            t = time.perf_counter()
            for _ in range(n[k]):
                f()
            times[k].append((time.perf_counter() - t) / n[k])
    return times
