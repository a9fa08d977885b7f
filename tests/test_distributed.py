"""Data-parallel training on MPI (tapegrad.distributed, Trainer(kvstore='dist_sync')).

The tests marked ``needs_mpi`` launch real processes (``tapegrad run -n N``, the MPICH wheel's
mpiexec) running tests/distributed_worker.py, each under a hard timeout; their single-process
references are computed here, in a process that never starts MPI. The others run here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from distributed_worker import LR, _branches, branch_loss, data, make_net, train, values

import tapegrad as mx
import tapegrad.distributed as hvd
from tapegrad import autograd, cli, gluon
from tapegrad.distributed import comm, launcher
from tapegrad.gluon.trainer import TrainerError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "distributed_worker.py")
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and launcher.find_mpiexec() is not None
needs_mpi = pytest.mark.skipif(
    not HAVE_MPI,
    reason="the mpi extra is not installed (pip install 'tapegrad[mpi]': mpi4py and the MPICH "
    "wheel's mpiexec); these tests launch real MPI processes",
)


def launch(n, args, timeout=120, env=None):
    """``tapegrad run -n N args...`` in its own session, killed whole after ``timeout`` s."""
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "tapegrad", "run", "-n", str(n), *args]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} hung for {timeout} s:\n{out[-3000:]}")
    return proc.returncode, out, time.monotonic() - start


def run_scenarios(tmp_path_factory, n, names):
    out_dir = tmp_path_factory.mktemp(f"dist{n}")
    rc, out, _ = launch(n, [WORKER, ",".join(names), str(out_dir)])
    assert rc == 0, out[-3000:]
    results = {}
    for name in names:
        per_rank = []
        for r in range(n):
            with open(out_dir / f"{name}.{r}.json") as f:
                rec = json.load(f)
            assert "error" not in rec, f"{name} on rank {r}:\n{rec.get('error')}"
            per_rank.append(rec)
        results[name] = per_rank
    results["dir"] = out_dir
    return results


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    names = ["sum", "deferred", "add", "stale", "agree", "checkpoint", "collectives"]
    return run_scenarios(tmp_path_factory, 2, names)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    return run_scenarios(tmp_path_factory, 3, ["uneven"])


def same_on_every_rank(per_rank, key):
    first = per_rank[0][key]
    for r, rec in enumerate(per_rank[1:], 1):
        assert rec[key] == first, f"{key}: rank {r} differs from rank 0"
    return first


def close(got, want, rtol=2e-5, atol=2e-6):
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_allclose(
            np.array(got[k], np.float32), np.array(want[k], np.float32), rtol=rtol, atol=atol
        )


def reference(seed, total, kind, optimizer="sgd", params=None, n=2, **kw):
    """One process on every rank's batches put together: the sum of the gradients divided
    by the mean batch ('dist_sync', MXNet's semantics) or by their total (averaging)."""
    net = make_net(seed, **kw.pop("net", {}))
    opt = dict(params if params is not None else LR)
    if kind == "sum":
        opt["rescale_grad"] = float(n)
    tr = gluon.Trainer(net.collect_params(), optimizer, opt)
    xs, ys = data(total)
    train(net, tr, xs, ys, **kw)
    return net, values(net)


# ----------------------------------------------------------------------- MPI: training
@needs_mpi
def test_dist_sync_sums_gradients_like_mxnet(two):
    per_rank = two["sum"]
    assert [rec["kv"] for rec in per_rank] == [["dist_sync", 0, 2], ["dist_sync", 1, 2]]
    # rank 1 drew other initial values: the Trainer broadcast rank 0's
    assert same_on_every_rank(per_rank, "init") == values(make_net(0))
    got = same_on_every_rank(per_rank, "dist_sync")  # bitwise equal on both ranks
    _, want = reference(0, 8, "sum")
    close(got, want)
    # and it is not the averaged result
    _, avg = reference(0, 8, "average")
    assert not np.allclose(got["p0"], avg["p0"], rtol=1e-3)


@needs_mpi
def test_sum_and_average_on_the_issue_example(two):
    # w = 0, every rank's gradient 1.5, lr 1: MXNet 1.9.1's dist_sync gives -3, Horovod -1.5
    assert same_on_every_rank(two["sum"], "toy_dist_sync") == -3.0
    assert same_on_every_rank(two["sum"], "toy_horovod") == -1.5


@needs_mpi
def test_distributed_trainer_averages_like_one_process_on_the_whole_batch(two):
    per_rank = two["sum"]
    got = same_on_every_rank(per_rank, "horovod")
    _, want = reference(0, 8, "average", optimizer="adam", params={"learning_rate": 0.05})
    close(got, want)
    _, want_sgd = reference(0, 8, "average")
    close(same_on_every_rank(per_rank, "horovod_kvstore"), want_sgd)
    close(same_on_every_rank(per_rank, "distributed_optimizer"), want_sgd)


@needs_mpi
def test_three_ranks_with_a_batch_that_does_not_divide_evenly(three):
    per_rank = three["uneven"]  # 10 samples: 4, 3, 3
    for kind, semantics in (("dist_sync", "sum"), ("horovod", "average")):
        got = same_on_every_rank(per_rank, kind)
        _, want = reference(7, 10, semantics, n=3)
        close(got, want)


@needs_mpi
def test_split_sampler_over_three_real_ranks(three):
    per_rank = three["uneven"]
    epochs = [same_on_every_rank(per_rank, f"epoch{e}") for e in range(2)]
    for everyone in epochs:
        assert sorted(everyone) == list(range(23))  # once each, no overlap
    assert epochs[0] != epochs[1]  # a new shuffle, the same on every rank
    assert [rec["len0"] for rec in per_rank] == [8, 8, 7]


@needs_mpi
def test_deferred_initialisation_uses_rank_0_values_from_the_first_forward(two):
    per_rank = two["deferred"]
    init = same_on_every_rank(per_rank, "init")
    net = make_net(0, deferred=True)
    net.hybridize()
    net(mx.nd.ones((1, 5)))
    assert init == values(net)  # rank 0's draw (seed 0), not rank 1's
    xs, ys = data(8)
    tr = gluon.Trainer(net.collect_params(), "sgd", dict(LR, rescale_grad=2.0))
    train(net, tr, xs, ys)
    close(same_on_every_rank(per_rank, "final"), values(net))
    net2 = make_net(10, deferred=True)
    net2(mx.nd.ones((1, 5)))
    assert same_on_every_rank(per_rank, "bp_init") == values(net2)


@needs_mpi
def test_grad_req_add_accumulates_before_the_sum(two):
    got = same_on_every_rank(two["add"], "final")
    _, want = reference(5, 8, "sum", net={"grad_req": "add"}, backwards=2, batch=8)
    close(got, want)


@needs_mpi
def test_ignore_stale_grad_is_agreed(two):
    per_rank = two["stale"]
    refused = [rec["refused"] for rec in per_rank]
    assert refused[0].startswith("StaleGradientError") and "rank(s) [1]" in refused[0]
    assert refused[1].startswith("StaleGradientError") and "`b`" in refused[1]
    assert all(rec["unchanged"] for rec in per_rank)
    got = same_on_every_rank(per_rank, "final")
    # one process: the loss of both ranks (b only in rank 0's), summed
    a, b = _branches(3)
    tr = gluon.Trainer([a, b], "sgd", {"learning_rate": 0.05})
    for s in range(3):
        with autograd.record():
            loss = branch_loss(a, b, 0, s, True) + branch_loss(a, b, 1, s, False)
        loss.backward()
        tr.step(1)
    np.testing.assert_allclose(got[0], a.data().asnumpy(), rtol=2e-5)
    np.testing.assert_allclose(got[1], b.data().asnumpy(), rtol=2e-5)


@needs_mpi
def test_refusals_are_agreed_and_leave_every_rank_unchanged(two):
    r0, r1 = two["agree"]
    assert r1["bad_batch"].startswith("TrainerError: Trainer.step: batch_size must be")
    assert r0["bad_batch"].startswith("TrainerError") and "rank(s) [1]" in r0["bad_batch"]
    assert r1["phase1"].startswith("MemoryError: simulated")
    assert r0["phase1"].startswith("RemoteError") and "failed on rank(s) [1]" in r0["phase1"]
    for rec in (r0, r1):
        assert rec["updates_counted"] == 0  # undone everywhere
        assert rec["non_finite"].startswith("NonFiniteGradientError")
        assert "summed over 2 ranks" in rec["non_finite"]
        assert rec["retry"].startswith("StaleGradientError")
        assert rec["update_first"].startswith("TrainerError: Trainer.update")
        assert "allreduce_grads()" in rec["update_first"]
        assert rec["unchanged"] and rec["steps_done"] == 0
        assert rec["behind"].startswith("CollectiveMismatchError")
        assert "different steps" in rec["behind"] and "rank 1: 0" in rec["behind"]
        assert rec["mismatch"].startswith("CollectiveMismatchError")
        assert "rank 0: Trainer.step, rank 1: allreduce" in rec["mismatch"]
        assert rec["after"] == [3.0]
    # allreduce_grads, clip the sums, update: one process clipping the whole batch's gradient
    net = make_net(2)
    xs, ys = data(8)
    tr = gluon.Trainer(net.collect_params(), "sgd", LR)
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(mx.nd.array(xs[0])), mx.nd.array(ys[0]))
    loss.backward()
    for p in net.collect_params().values():
        p.grad()[:] = mx.nd.clip(p.grad(), -0.05, 0.05)
    tr.step(4)
    close(same_on_every_rank(two["agree"], "clipped"), values(net))


@needs_mpi
def test_checkpoints_written_by_rank_0_load_on_every_rank(two):
    for rec in two["checkpoint"]:
        assert rec["loaded"] and rec["resumed"]
    out_dir = two["dir"]
    assert (out_dir / "net.params").exists() and (out_dir / "trainer.states").exists()
    assert (out_dir / "trainer.states.0").exists()
    assert not (out_dir / "trainer.states.1").exists()  # rank 1 wrote nothing
    assert (out_dir / "net.params.0").exists() and not (out_dir / "net.params.1").exists()


@needs_mpi
def test_collectives_and_metrics_over_ranks(two):
    r0, r1 = two["collectives"]
    for rec in (r0, r1):
        assert rec["average"] == [1.5, 5.0] and rec["sum"] == [3.0, 10.0]
        assert rec["min"] == [1.0, 0.0] and rec["max"] == [2.0, 10.0]
        assert rec["scaled"] == [3.0, 10.0] and rec["inplace"] == [10.0, 12.0]
        assert rec["gather"] == [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
        assert rec["bcast"] == [1.0, 1.0, 1.0] and rec["bcast_"] == [0.0]
        assert rec["bad_shape"].startswith("CollectiveMismatchError")
        # 2 of 2 right on rank 0, 2 of 4 on rank 1: 4 of 6 over both
        assert rec["acc_all"] == pytest.approx(4 / 6)
        assert rec["composite_all"][0] == ["accuracy", "mse"]
        assert rec["composite_all"][1][0] == pytest.approx(4 / 6)
        assert rec["pushpull"] == [3.0, 6.0] and rec["kv_bcast"] == [7.0, 8.0]
        assert rec["kv_init"] == [1.0, 1.0] and rec["kv_push"] == [6.0, 12.0]
    assert r0["acc_local"] == 1.0 and r1["acc_local"] == 0.5
    assert r1["bad_input"].startswith("TypeError: tapegrad.distributed.allreduce")
    assert r0["bad_input"].startswith("RemoteError") and "rank(s) [1]" in r0["bad_input"]
    assert [r0["kv"], r1["kv"]] == [["dist_sync", 0, 2], ["dist_sync", 1, 2]]
    assert r0["sizes"] == [0, 2, 0, 2] and r1["sizes"] == [1, 2, 1, 2]


# ----------------------------------------------------------------------- MPI: failures
@needs_mpi
def test_a_rank_that_raises_mid_step_stops_every_rank(tmp_path):
    rc, out, elapsed = launch(2, [WORKER, "raise", str(tmp_path)], timeout=90)
    assert rc != 0, out
    assert "RuntimeError: simulated failure on rank 1" in out
    assert "rank 1 of 2 stopped on an unhandled RuntimeError" in out
    assert elapsed < 60, f"the ranks took {elapsed:.0f} s to stop"
    assert not list(tmp_path.glob("raise.*.json"))  # no rank finished


@needs_mpi
def test_a_rank_left_waiting_times_out_and_stops_every_rank(tmp_path):
    rc, out, elapsed = launch(
        2, [WORKER, "straggle", str(tmp_path)], timeout=90, env={"TAPEGRAD_DIST_TIMEOUT": "3"}
    )
    assert rc != 0, out
    assert "DistributedTimeoutError" in out and "rank 0 of 2 waited" in out
    assert "TAPEGRAD_DIST_TIMEOUT" in out
    assert elapsed < 60, f"the ranks took {elapsed:.0f} s to stop"


@needs_mpi
def test_demo_mnist_distributed_reaches_the_single_process_accuracy():
    args = ["--limit", "3000", "--epochs", "2", "--no-progress"]
    rc, out, _ = launch(2, ["tapegrad", "demo", "mnist", "--distributed", *args], timeout=300)
    assert rc == 0, out
    assert "on 2 processes (32 samples each)" in out
    assert out.count("test accuracy:") == 1  # rank 0 prints, rank 1 does not
    dist_acc = float(re.search(r"test accuracy: ([\d.]+)%", out).group(1))
    single = subprocess.run(
        [sys.executable, "-m", "tapegrad", "demo", "mnist", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"),
    )
    assert single.returncode == 0, single.stderr
    single_acc = float(re.search(r"test accuracy: ([\d.]+)%", single.stdout).group(1))
    assert single_acc > 85 and abs(dist_acc - single_acc) < 1.5, (dist_acc, single_acc)


# ----------------------------------------------------------------------- without MPI
@pytest.fixture
def no_mpi(monkeypatch):
    """As if mpi4py were not installed (and MPI never started in this process)."""
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    monkeypatch.setattr(comm._S, "mpi", None)
    monkeypatch.setattr(comm._S, "comm", None)


def test_without_mpi4py_the_distributed_api_says_what_to_install(no_mpi):
    for call in (hvd.init, hvd.rank, hvd.size, lambda: hvd.allreduce(mx.nd.ones(2))):
        with pytest.raises(hvd.DistributedUnavailableError) as info:
            call()
        msg = str(info.value)
        assert "pip install 'tapegrad[mpi]'" in msg and "mpi4py" in msg
        assert isinstance(info.value, ImportError)
    assert not hvd.mpi_enabled()
    assert hvd.is_writer() and not hvd.is_initialized()
    w = gluon.Parameter("w", shape=(2,), init=mx.init.Zero())
    w.initialize()
    with pytest.raises(
        hvd.DistributedUnavailableError, match=r"kvstore='dist_sync'.*tapegrad\[mpi\]"
    ):
        gluon.Trainer([w], "sgd", kvstore="dist_sync")
    with pytest.raises(hvd.DistributedUnavailableError):
        hvd.DistributedTrainer([w], "sgd")
    acc = mx.metric.Accuracy()
    acc.update(mx.nd.array([1]), mx.nd.array([[0.2, 0.8]]))
    assert acc.get() == ("accuracy", 1.0)  # everything else works
    with pytest.raises(hvd.DistributedUnavailableError):
        acc.get(all_ranks=True)
    tr = gluon.Trainer([w], "sgd", {"learning_rate": 1.0}, kvstore="local")
    with autograd.record():
        loss = (w.data() * 2).sum()
    loss.backward()
    tr.step(1)
    assert w.data().asnumpy().tolist() == [-2.0, -2.0]


def test_kvstore_names_and_the_local_store():
    kv = hvd.kvstore.create("local")
    assert (kv.type, kv.rank, kv.num_workers, kv.is_capable("optimizer")) == ("local", 0, 1, False)
    a, b = mx.nd.array([1.0, 2.0]), mx.nd.array([10.0, 20.0])
    out = mx.nd.zeros(2)
    kv.pushpull(0, [a, b], out=out)  # sums over the devices
    assert out.asnumpy().tolist() == [11.0, 22.0]
    kv.broadcast(0, a, out=out)
    assert out.asnumpy().tolist() == [1.0, 2.0]
    kv.init(0, a)
    kv.push(0, [a, b])  # init, push and pull: see test_kvstore.py
    kv.pull(0, out=out)
    assert out.asnumpy().tolist() == [11.0, 22.0]
    with pytest.raises(ValueError, match="dist_async.*not supported.*Fix: use 'dist_sync'"):
        hvd.kvstore.create("dist_async")
    with pytest.raises(ValueError, match="unknown kvstore type 'bogus'"):
        hvd.kvstore.create("bogus")
    w = gluon.Parameter("w", shape=(1,))
    w.initialize()
    with pytest.raises(TrainerError, match="dist_async.*Fix: use 'dist_sync'"):
        gluon.Trainer([w], "sgd", kvstore="dist_async")
    with pytest.raises(TypeError, match="kvstore must be a string"):
        gluon.Trainer([w], "sgd", kvstore=3)
    tr = gluon.Trainer([w], "sgd", kvstore=kv)  # a local store: one process
    assert tr._kvstore is None and not tr._distributed


def test_split_sampler_shards_each_epoch():
    parts = [gluon.data.SplitSampler(11, 3, k, seed=5) for k in range(3)]
    assert [len(p) for p in parts] == [4, 4, 3]
    epochs = [[list(p) for p in parts] for _ in range(3)]
    for shards in epochs:
        flat = [i for s in shards for i in s]
        assert sorted(flat) == list(range(11))  # once each, no overlap
        assert [len(s) for s in shards] == [4, 4, 3]
    assert epochs[0] != epochs[1] != epochs[2]
    # another rank's sampler (a separate object, as in another process) draws the same
    again = gluon.data.SplitSampler(11, 3, 1, seed=5)
    again.set_epoch(2)
    assert list(again) == epochs[2][1]
    assert list(gluon.data.SplitSampler(11, 3, 1, seed=6)) != epochs[0][1]
    assert list(gluon.data.SplitSampler(7, 2, 1, shuffle=False)) == [4, 5, 6]
    loader = gluon.data.DataLoader(
        gluon.data.ArrayDataset(mx.nd.arange(11)),
        batch_size=2,
        sampler=gluon.data.SplitSampler(11, 3, 2, seed=5),
    )
    assert [int(v) for b in loader for v in b.asnumpy()] == epochs[0][2]
    for kwargs, pattern in (
        ({"num_parts": 0}, r"num_parts must be a positive int, got 0.*Fix"),
        ({"num_parts": 2, "part_index": 2}, r"part_index must be an int in \[0, 2\), got 2"),
        ({"part_index": -1}, r"part_index must be an int in \[0, 1\)"),
        ({"num_parts": 2.0}, r"num_parts must be a positive int"),
    ):
        with pytest.raises(ValueError, match=pattern):
            gluon.data.SplitSampler(10, **kwargs)
    with pytest.raises(ValueError, match="SplitSampler: length"):
        gluon.data.SplitSampler(-1)
    with pytest.raises(ValueError, match="SplitSampler.set_epoch: epoch"):
        parts[0].set_epoch(-2)


def test_launcher_command_lines(tmp_path, capsys, monkeypatch):
    cmd = launcher.build_command("mpiexec", "mpich", 3, ["python", "s.py"], "hosts", label=True)
    assert cmd == ["mpiexec", "-n", "3", "-f", "hosts", "-prepend-rank", "python", "s.py"]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    cmd = launcher.build_command("mpirun", "openmpi", 2, ["python", "s.py"], export=["X"])
    assert cmd[:4] == ["mpirun", "-n", "2", "--allow-run-as-root"]
    assert "--oversubscribe" in cmd and cmd[-4:] == ["-x", "X", "python", "s.py"]
    script = tmp_path / "s.py"
    script.write_text("print(1)\n")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cli.main(["run", "-n", "2", "--mpiexec", "/x/mpiexec", "--dry-run", str(script)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("OMP_NUM_THREADS=") and f"-n 2 {sys.executable} {script}" in line
    assert cli.main(["run", "--mpiexec", "m", "--dry-run", "-m", "tapegrad", "demo"]) == 0
    assert f"{sys.executable} -m tapegrad demo" in capsys.readouterr().out
    assert cli.main(["run", "--mpiexec", "m", "--dry-run", "tapegrad", "version"]) == 0
    assert f"{sys.executable} -m tapegrad version" in capsys.readouterr().out
    for argv, pattern in (
        (["run"], "nothing to run"),
        (["run", "missing.py"], "'missing.py' is not a file"),
        (["run", "-n", "0", str(script)], "-n must be at least 1"),
        (["run", "--hostfile", "nope", str(script)], "host file 'nope' does not exist"),
    ):
        assert cli.main(argv) == 2
        assert pattern in capsys.readouterr().err


def test_timeouts_are_checked(monkeypatch):
    monkeypatch.setenv("TAPEGRAD_DIST_TIMEOUT", "soon")
    with pytest.raises(hvd.DistributedError, match="TAPEGRAD_DIST_TIMEOUT='soon'.*Fix"):
        comm._env_timeout()
    monkeypatch.setenv("TAPEGRAD_DIST_TIMEOUT", "2.5")
    assert comm._env_timeout() == 2.5
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        hvd.set_timeout(0)
    monkeypatch.setenv("TAPEGRAD_DIST_FUSE_BYTES", "-3")
    with pytest.raises(hvd.DistributedError, match="TAPEGRAD_DIST_FUSE_BYTES"):
        hvd.kvstore.GradientReducer()


def test_distributed_trainer_options_are_checked():
    w = gluon.Parameter("w", shape=(1,))
    w.initialize()
    with pytest.raises(ValueError, match="gradient_predivide_factor must be a positive"):
        hvd.DistributedTrainer([w], "sgd", gradient_predivide_factor=0)
    with pytest.raises(ValueError, match="compression.*not supported"):
        hvd.DistributedTrainer([w], "sgd", compression="fp16")
