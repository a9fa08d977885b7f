"""The cost of distribution: one process with 2 BLAS threads against 2 processes with 1 thread
each (the same cores), on W2 (MNIST MLP) and W6 (wide MLP) of ../shared/bench/WORKLOADS.md.

    python benchmarks/distributed_scaling.py [--smoke] [--workload W6] [--rounds 7]
                                             [--torch PATH/TO/python] [--json out.json]

Cases, each in fresh processes (``mpiexec -n 2`` for tapegrad, gloo over 127.0.0.1 for torch):

* ``single``: one process, 2 threads, the whole batch (128 / 256), SGD;
* ``dist``: 2 processes, 1 thread each, half the batch each, gradients averaged over the ranks
  (tapegrad: ``DistributedTrainer``; torch: ``DistributedDataParallel``): the same update as
  ``single``. tapegrad is run with three fusion settings of the gradient reduction
  (``TAPEGRAD_DIST_FUSE_BYTES``): one call per parameter, the default (small ones fused), all
  fused into one buffer;
* ``nosync``: the same 2 processes and half batches without any communication (tapegrad: a
  local Trainer; torch: ``DDP.no_sync()``): what the distributed step costs without the
  exchange.

Each case is launched ``--launches`` times (default 3), the cases taking turns, and the launch
with the median time is reported: a slow period of a shared machine then falls on all cases.
Reported: time per step (median of ``--rounds`` rounds, the slower rank's), samples/s, the
overhead share ``1 - t(nosync) / t(dist)``, and for tapegrad the share of the step spent in
the gradient reduction (packing, waiting, unpacking; measured by the reducer). The
distributed runs check WORKLOADS.md's ``loss0`` / ``loss10`` (W2) and ``loss0`` / ``loss5``
(W6), computed over both ranks. ``--smoke`` (CI) runs tapegrad's cases (default fusion) with
two one-step rounds and checks the figures; without the ``mpi`` extra the script says so and
exits 0. The torch cases need torch with gloo (default ``$HOME/peers/torch/bin/python``, see
README.md) and are skipped when it is absent, and in smoke mode.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_BENCH = os.environ.get("BENCH_DIR", os.path.join(_HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, os.path.abspath(_BENCH))
sys.path.insert(0, os.path.abspath(os.path.join(_HERE, "..")))
sys.path.insert(0, _HERE)

import benchkit  # noqa: E402

WORKLOADS = ("W2", "W6")
FUSIONS = {"per-parameter": "0", "default": None, "one buffer": str(1 << 40)}


# ----------------------------------------------------------------------- workers
def _spec(wid):
    import common

    if wid == "W2":
        x, y = common.w2_data()
        return x, y, common.w2_params(), "tanh", common.W2_LR, common.W2_CHECK_STEPS
    x, y = common.w6_data()
    return x, y, common.w6_params(), "relu", common.W6_LR, common.W6_CHECK_STEPS


def _cpu():
    import common

    return common.cpu_snapshot()


def _rounds(step, rounds, per_round, barrier):
    for _ in range(3):
        step()
    times = []
    snap = _cpu()
    for _ in range(rounds):
        barrier()
        t0 = time.perf_counter()
        for _ in range(per_round):
            step()
        times.append((time.perf_counter() - t0) / per_round)
    return times, snap, _cpu()


def worker_tapegrad(case, wid, rounds, per_round, out):
    import common  # noqa: F401  (pins the BLAS threads first)

    import tapegrad as mx
    from tapegrad import autograd, gluon

    x_all, y_all, init, act, lr, check_steps = _spec(wid)
    r, n, hvd = 0, 1, None
    if case != "single":
        import tapegrad.distributed as hvd

        hvd.init()
        r, n = hvd.rank(), hvd.size()
    rows = slice(r * len(x_all) // n, (r + 1) * len(x_all) // n)
    x, y = mx.nd.array(x_all[rows]), mx.nd.array(y_all[rows], dtype="int64")
    net = gluon.nn.HybridSequential()
    k = len(init) // 2
    for i in range(k):
        w = init[2 * i]
        net.add(
            gluon.nn.Dense(w.shape[1], in_units=w.shape[0], activation=act if i < k - 1 else None)
        )
    net.initialize()
    for i, blk in enumerate(net):
        blk.weight.set_data(mx.nd.array(init[2 * i].T))
        blk.bias.set_data(mx.nd.array(init[2 * i + 1]))
    if case == "dist":
        trainer = hvd.DistributedTrainer(net.collect_params(), "sgd", {"learning_rate": lr})
    else:
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    total = len(x_all)

    def global_mean(local_sum):
        if hvd is None:
            return local_sum / total
        return (
            float(hvd.allreduce(mx.nd.array([local_sum], dtype="float64"), op=hvd.Sum).asscalar())
            / total
        )

    def step():
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
        return loss

    check = {}
    if case != "nosync":
        check["loss0"] = global_mean(float(step().sum().asscalar()))
        for _ in range(check_steps - 1):
            step()
        check[f"loss{check_steps}"] = global_mean(float(loss_fn(net(x), y).sum().asscalar()))
    reducer = getattr(getattr(trainer, "_kvstore", None), "reducer", None)
    before = dict(reducer.stats) if reducer else None
    times, snap0, snap1 = _rounds(step, rounds, per_round, hvd.barrier if hvd else lambda: None)
    rec = {"times": times, "snap": [snap0, snap1], "check": check, "rank": r}
    if reducer:
        spent = reducer.stats["seconds"] - before["seconds"]
        rec["reduce_share"] = spent / (sum(times) * per_round)
        rec["calls"] = (reducer.stats["calls"] - before["calls"]) / (
            reducer.stats["reductions"] - before["reductions"]
        )
    with open(f"{out}.{r}.json", "w") as f:
        json.dump(rec, f)


def worker_torch(case, wid, rounds, per_round, out, rank, world, port):
    import common
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    torch.set_num_threads(common.THREADS)
    x_all, y_all, init, act, lr, check_steps = _spec(wid)
    if world > 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
    rows = slice(rank * len(x_all) // world, (rank + 1) * len(x_all) // world)
    x, y = torch.from_numpy(x_all[rows]), torch.from_numpy(y_all[rows]).long()
    layers = []
    k = len(init) // 2
    for i in range(k):
        lin = torch.nn.Linear(*init[2 * i].shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(init[2 * i].T.copy()))
            lin.bias.copy_(torch.from_numpy(init[2 * i + 1]))
        layers.append(lin)
        if i < k - 1:
            layers.append(torch.nn.Tanh() if act == "tanh" else torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step():
        opt.zero_grad()
        if case == "nosync":
            with model.no_sync():
                loss = F.cross_entropy(model(x), y)
                loss.backward()
        else:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
        opt.step()
        return loss

    def global_mean(v):
        if world == 1:
            return v
        t = torch.tensor([v], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t[0]) / world

    check = {}
    if case != "nosync":
        check["loss0"] = global_mean(float(step().detach()))
        for _ in range(check_steps - 1):
            step()
        with torch.no_grad():
            check[f"loss{check_steps}"] = global_mean(float(F.cross_entropy(model(x), y)))
    barrier = dist.barrier if world > 1 else (lambda: None)
    times, snap0, snap1 = _rounds(step, rounds, per_round, barrier)
    with open(f"{out}.{rank}.json", "w") as f:
        json.dump({"times": times, "snap": [snap0, snap1], "check": check, "rank": rank}, f)
    if world > 1:
        dist.destroy_process_group()


# ----------------------------------------------------------------------- orchestration
def _env(threads, extra=None):
    env = dict(os.environ, BENCH_THREADS=str(threads), BENCH_DIR=os.path.abspath(_BENCH))
    env["PYTHONPATH"] = (
        os.path.abspath(os.path.join(_HERE, "..")) + os.pathsep + env.get("PYTHONPATH", "")
    )
    env.update(extra or {})
    return env


def _collect(out, n):
    recs = []
    for r in range(n):
        with open(f"{out}.{r}.json") as f:
            recs.append(json.load(f))
    import common

    times = [max(rs) for rs in zip(*(rec["times"] for rec in recs))]  # the slower rank
    times.sort()
    a, b = recs[0]["snap"]
    own = 0.0
    for rec in recs:
        own += rec["snap"][1][2] - rec["snap"][0][2]
    hz = os.sysconf("SC_CLK_TCK")
    total = (b[1] - a[1]) / hz
    foreign = max(0.0, min(1.0, ((b[0] - a[0]) / hz - own) / total)) if total > 0 else None
    res = {
        "median": times[len(times) // 2],
        "min": times[0],
        "check": recs[0]["check"],
        "foreign_cpu": foreign,
    }
    if "reduce_share" in recs[0]:
        res["reduce_share"] = max(rec["reduce_share"] for rec in recs)
        res["calls"] = recs[0]["calls"]
    del common
    return res


def _run(cmd, env, what, timeout):
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"{what}: timed out after {timeout} s"
    if p.returncode != 0:
        return f"{what}: exit {p.returncode}: {(p.stdout + p.stderr)[-1500:]}"
    return None


def _free_port():
    """A TCP port of 127.0.0.1 that nothing listens on now (gloo's rendezvous)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_case(framework, case, wid, rounds, per_round, tmp, fusion=None, torch_python=None):
    out = os.path.join(tmp, f"{framework}-{case}-{wid}-{fusion or 'x'}")
    n = 1 if case == "single" else 2
    threads = 2 if case == "single" else 1
    args = [case, wid, str(rounds), str(per_round), out]
    timeout = 600
    if framework == "tapegrad":
        worker = [sys.executable, os.path.abspath(__file__), "--worker", "tapegrad", *args]
        extra = {"TAPEGRAD_DIST_FUSE_BYTES": fusion} if fusion else {}
        if n == 1:
            err = _run(worker, _env(threads, extra), out, timeout)
        else:
            from tapegrad.distributed import launcher

            cmd = [launcher.find_mpiexec(), "-n", "2", *worker]
            err = _run(cmd, _env(threads, extra), out, timeout)
    else:
        port = str(_free_port())
        procs = []
        for r in range(n):
            cmd = [
                torch_python,
                os.path.abspath(__file__),
                "--worker",
                "torch",
                *args,
                str(r),
                str(n),
                port,
            ]
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=_env(threads),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        err = None
        for p in procs:
            try:
                text, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                text, _ = p.communicate()
            if p.returncode != 0 and err is None:
                err = f"{out}: exit {p.returncode}: {text[-1500:]}"
    if err:
        return {"error": err}
    return _collect(out, n)


def main(argv=None):
    args, smoke = benchkit.take_smoke_flag(argv)
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", "-w", action="append", choices=WORKLOADS)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--launches", type=int, default=3, help="launches of each case (median)")
    ap.add_argument("--torch", default=os.path.expanduser("~/peers/torch/bin/python"))
    ap.add_argument("--json", default=None)
    opts = ap.parse_args(args)
    try:
        import mpi4py  # noqa: F401

        from tapegrad.distributed import launcher

        have_mpi = launcher.find_mpiexec() is not None
    except ImportError:
        have_mpi = False
    if not have_mpi:
        print(
            "# distributed_scaling.py: skipped: the mpi extra is not installed "
            "(pip install 'tapegrad[mpi]')"
        )
        return 0
    have_torch = (
        os.path.exists(opts.torch)
        and subprocess.run(
            [opts.torch, "-c", "import torch.distributed as d; assert d.is_gloo_available()"],
            capture_output=True,
            timeout=120,
        ).returncode
        == 0
    )
    if not have_torch:
        print(f"# torch with gloo not found at {opts.torch}: the PyTorch DDP cases are skipped")
    rounds = 2 if smoke else opts.rounds
    launches = 1 if smoke else opts.launches
    results, problems = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for wid in opts.workload or WORKLOADS:
            per_round = 1 if smoke else (40 if wid == "W2" else 6)
            cases = [("tapegrad", "single", None), ("tapegrad", "nosync", None)]
            cases += [("tapegrad", "dist", f) for f in (["default"] if smoke else FUSIONS)]
            if have_torch and not smoke:
                cases += [("torch", c, None) for c in ("single", "nosync", "dist")]
            runs: dict = {}
            for k in range(launches):  # round robin: a slow period falls on every case
                for fw, case, fusion in cases:
                    res = run_case(
                        fw, case, wid, rounds, per_round, tmp, FUSIONS.get(fusion), opts.torch
                    )
                    label = f"{fw} {case}" + (f" ({fusion})" if fusion else "")
                    runs.setdefault(label, []).append(res)
                    if "error" in res:
                        problems.append(res["error"])
                        print(f"{wid} {label}: FAILED")
                        continue
                    for name, value in res["check"].items():
                        why = benchkit.check_figure(wid, name, value)
                        if why:
                            problems.append(f"{why} ({label})")
                    print(f"{wid} {label} (launch {k + 1}): {_line(res)}")
            for label, rs in runs.items():
                ok = sorted((r for r in rs if "median" in r), key=lambda r: r["median"])
                results[f"{wid} {label}"] = ok[len(ok) // 2] if ok else rs[0]
    print()
    print(table(results, opts.workload or WORKLOADS))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)
    return benchkit.report("distributed_scaling.py", problems)


def _line(res):
    out = f"{res['median'] * 1e3:.2f} ms/step"
    if "reduce_share" in res:
        out += f", reduction {100 * res['reduce_share']:.0f}% ({res['calls']:.0f} MPI calls)"
    if res.get("foreign_cpu") is not None:
        out += f"  [other processes: {100 * res['foreign_cpu']:.0f}% CPU]"
    return out


def table(results, workloads):
    import common

    lines = [
        "| workload | case | time/step | samples/s | vs single | overhead share "
        "| reduction share |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    batch = {"W2": common.W2_BATCH, "W6": common.W6_BATCH}
    for wid in workloads:
        for fw in ("tapegrad", "torch"):
            single = results.get(f"{wid} {fw} single", {})
            nosync = results.get(f"{wid} {fw} nosync", {})
            for key, res in results.items():
                if not key.startswith(f"{wid} {fw} ") or "median" not in res:
                    continue
                t = res["median"]
                vs = single["median"] / t if "median" in single else float("nan")
                over = 1 - nosync["median"] / t if " dist" in key and "median" in nosync else None
                red = res.get("reduce_share")
                lines.append(
                    f"| {wid} | {key[len(wid) + 1 :]} | {common.fmt_time(t)} "
                    f"| {batch[wid] / t:,.0f} | "
                    f"{vs:.2f} | {'-' if over is None else f'{100 * over:.0f}%'} | "
                    f"{'-' if red is None else f'{100 * red:.0f}%'} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        fw, rest = sys.argv[2], sys.argv[3:]
        case, wid, rounds, per_round, out = rest[:5]
        if fw == "tapegrad":
            worker_tapegrad(case, wid, int(rounds), int(per_round), out)
        else:
            worker_torch(
                case, wid, int(rounds), int(per_round), out, int(rest[5]), int(rest[6]), rest[7]
            )
        sys.exit(0)
    sys.exit(main())
