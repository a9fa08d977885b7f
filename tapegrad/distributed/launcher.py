"""``tapegrad run -n N script.py [args]``: start N processes of a script with the MPI launcher
found in the environment (the MPICH wheel's ``mpiexec`` next to this Python first).

Across machines, give a host file (``--hostfile hosts``: one machine a line, MPICH's
``host:slots`` or Open MPI's ``host slots=N``); every machine needs the same Python
environment at the same path and password-less ssh from the first one. See
docs/distributed.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["add_arguments", "run", "find_mpiexec", "launcher_kind", "build_command"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def find_mpiexec() -> str | None:
    """The ``mpiexec`` of this Python's environment (the MPICH wheel installs it next to the
    interpreter), else the first ``mpiexec`` / ``mpirun`` on ``PATH``."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return shutil.which("mpiexec") or shutil.which("mpirun")


def launcher_kind(mpiexec: str) -> str:
    """``'mpich'`` (Hydra), ``'openmpi'`` or ``'unknown'``, from ``mpiexec --version``."""
    try:
        out = subprocess.run(
            [mpiexec, "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).lower()
    if "open mpi" in text or "open-mpi" in text or "openrte" in text:
        return "openmpi"
    if "hydra" in text or "mpich" in text:
        return "mpich"
    return "unknown"


def build_command(
    mpiexec: str,
    kind: str,
    n: int,
    target: Sequence[str],
    hostfile: str | None = None,
    label: bool = False,
    export: Sequence[str] = (),
) -> list[str]:
    """The launcher's command line for ``target`` (``[python, ...]``) on ``n`` processes."""
    cmd = [mpiexec, "-n", str(n)]
    if kind == "openmpi":
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        if hostfile:
            cmd += ["--hostfile", hostfile]
        else:
            cmd.append("--oversubscribe")
        if label:
            cmd.append("--tag-output")
        for var in export:
            cmd += ["-x", var]
    else:  # MPICH's Hydra (passes the whole environment by itself)
        if hostfile:
            cmd += ["-f", hostfile]
        if label:
            cmd.append("-prepend-rank")
    return cmd + list(target)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tapegrad run``."""
    parser.add_argument(
        "-n", "--np", dest="n", type=int, default=2, help="number of processes (default 2)"
    )
    parser.add_argument(
        "--hostfile",
        default=None,
        metavar="FILE",
        help="machines to run on, one a line (MPICH: host:slots, Open MPI: host slots=N)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="T",
        help="BLAS/OpenMP threads per process (default: cores / N on one machine; "
        "OMP_NUM_THREADS etc. if set)",
    )
    parser.add_argument(
        "--mpiexec", default=None, metavar="PATH", help="the MPI launcher (default: found)"
    )
    parser.add_argument(
        "--label", action="store_true", help="prefix every output line with its rank"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the command instead of running it"
    )
    parser.add_argument(
        "-m", dest="module", default=None, metavar="MODULE", help="run a module (python -m)"
    )
    parser.add_argument(
        "target",
        nargs=argparse.REMAINDER,
        help="script.py [args] (or 'tapegrad demo ...', or -m MODULE [args])",
    )


def _error(msg: str) -> int:
    print(f"tapegrad run: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Start the processes; the launcher's exit status (non-zero when any rank failed)."""
    if args.n < 1:
        return _error(f"-n must be at least 1, got {args.n}")
    if args.threads is not None and args.threads < 1:
        return _error(f"--threads must be at least 1, got {args.threads}")
    target = list(args.target)
    if args.module:
        argv = [sys.executable, "-m", args.module, *target]
    elif not target:
        return _error(
            "nothing to run. Fix: tapegrad run -n 2 script.py [args], or tapegrad run -n 2 "
            "tapegrad demo mnist --distributed"
        )
    elif target[0] == "tapegrad":
        argv = [sys.executable, "-m", "tapegrad", *target[1:]]
    elif os.path.isfile(target[0]):
        argv = [sys.executable, *target]
    else:
        return _error(
            f"{target[0]!r} is not a file. Fix: give the path of a Python script, -m MODULE, "
            "or 'tapegrad demo ...'."
        )
    if args.hostfile and not os.path.isfile(args.hostfile):
        return _error(f"host file {args.hostfile!r} does not exist")
    mpiexec = args.mpiexec or find_mpiexec()
    if mpiexec is None:
        return _error(
            "no MPI launcher (mpiexec) found. Fix: pip install 'tapegrad[mpi]' (mpi4py and "
            "the MPICH wheel, which brings mpiexec), or put your MPI's mpiexec on PATH."
        )
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    threads = args.threads
    if threads is None and not args.hostfile:
        threads = max(1, (os.cpu_count() or 1) // args.n)
    exported = ["PYTHONUNBUFFERED"]
    for var in _THREAD_VARS:
        if args.threads is not None or var not in env:
            if threads is not None:
                env[var] = str(threads)
        if var in env:
            exported.append(var)
    kind = launcher_kind(mpiexec)
    cmd = build_command(mpiexec, kind, args.n, argv, args.hostfile, args.label, exported)
    if args.dry_run:
        shown = " ".join(f"{v}={env[v]}" for v in _THREAD_VARS if v in env)
        print(f"{shown} {' '.join(cmd)}".strip())
        return 0
    try:
        proc = subprocess.Popen(cmd, env=env)
    except OSError as e:
        return _error(f"could not start {mpiexec}: {e}")
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the launcher too: let it stop the ranks
        try:
            return proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.terminate()
            return proc.wait()
