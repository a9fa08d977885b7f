"""Peers in their own processes, taking turns: for each workload, every peer's script runs
once per round in a fresh process (tapegrad, then each peer, round after round), so a slow
period of the shared machine, or the state a long-lived process drifts into, falls on no one
peer. Reports each variant's median over the rounds and its ratio to a reference variant.

    BENCH_DIR=/tmp/bench python benchmarks/turns.py -w W3 -w W5 --rounds 5 \\
        --ref "jax jit"

Interpreters as ``run_all.sh`` finds them: ``$NAME_PYTHON``, else ``$PEERS_ROOT/NAME/bin/python``
(``PEERS_ROOT`` defaults to ``$HOME/peers``); tapegrad runs under this interpreter. A peer whose
interpreter is missing is left out, and the report says so. Each run's correctness figures are
checked (``benchkit.check_records``); the script exits non-zero if one is off.
``--smoke`` (CI): tapegrad alone, one round of W1 with the peers' ``--quick`` timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_BENCH = os.environ.get("BENCH_DIR", os.path.join(_HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, _HERE)

import benchkit  # noqa: E402

PEERS = ("tapegrad", "jax", "torch")


def interpreter(peer: str) -> str | None:
    if peer == "tapegrad":
        return sys.executable
    py = os.environ.get(f"{peer.upper()}_PYTHON") or os.path.join(
        os.environ.get("PEERS_ROOT", os.path.expanduser("~/peers")), peer, "bin", "python"
    )
    return py if os.path.exists(py) else None


def script(peer: str) -> str:
    if peer == "tapegrad":
        return os.path.join(_HERE, "peers_tapegrad.py")
    return os.path.join(_BENCH, f"peers_{peer}.py")


def run_once(peer: str, py: str, workloads: list, extra: list) -> list:
    """One fresh process of ``peer`` over ``workloads``: its records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        args = [py, script(peer), "--json", out, *extra]
        for w in workloads:
            args += ["-w", w]
        env = dict(os.environ, BENCH_DIR=_BENCH)
        root = os.path.abspath(os.path.join(_HERE, ".."))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        subprocess.run(args, check=False, env=env, stdout=subprocess.DEVNULL)
        if not os.path.exists(out):
            return []
        with open(out) as fh:
            return json.load(fh)["records"]


def main(argv=None) -> int:
    argv, smoke = benchkit.take_smoke_flag(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-w", "--workload", action="append", default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated")
    ap.add_argument("--ref", default=None, help="'peer variant' the ratios are taken to")
    ap.add_argument("--quick", action="store_true", help="the peers' short timing")
    ap.add_argument("--smoke", action="store_true", help="tapegrad, one round of W1 (CI)")
    args = ap.parse_args(argv)
    workloads = args.workload or ["W1"]
    peers = [p for p in args.peers.split(",") if p]
    extra = ["--quick"] if args.quick else []
    if smoke:
        workloads, peers, args.rounds, extra = ["W1"], ["tapegrad"], 1, ["--quick"]
    runnable = {p: interpreter(p) for p in peers}
    for p, py in runnable.items():
        if py is None:
            print(f"# {p}: no interpreter (set {p.upper()}_PYTHON or PEERS_ROOT): left out")
    runnable = {p: py for p, py in runnable.items() if py is not None}
    times: dict = {}
    problems: list = []
    for r in range(args.rounds):
        for peer, py in runnable.items():
            recs = run_once(peer, py, workloads, extra)
            if not recs:
                problems.append(f"{peer} round {r + 1}: no results")
            problems += [f"{peer}: {p}" for p in benchkit.check_records(recs)]
            for rec in recs:
                if rec["status"] == "ok":
                    key = (rec["workload"], rec["case"], f"{peer} {rec['variant']}")
                    times.setdefault(key, []).append(rec["median_s"])
    print(f"# {args.rounds} rounds, each peer in a fresh process per round: {', '.join(runnable)}")
    for wid in sorted({k[0] for k in times}):
        keys = sorted(k for k in times if k[0] == wid)
        ref = next((k for k in keys if args.ref and k[2] == args.ref), None)
        for k in keys:
            med = statistics.median(times[k])
            lo, hi = min(times[k]) * 1e6, max(times[k]) * 1e6
            ratio = f"  {med / statistics.median(times[ref]):5.2f} x {args.ref}" if ref else ""
            case = f" [{k[1]}]" if k[1] else ""
            print(
                f"{wid:8s} {k[2] + case:48s} median {med * 1e6:10.1f} us "
                f"(rounds {lo:.1f}-{hi:.1f}){ratio}"
            )
    return benchkit.report("turns.py", problems)


if __name__ == "__main__":
    sys.exit(main())
