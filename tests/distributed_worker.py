"""The rank side of tests/test_distributed.py: ``mpiexec -n N python distributed_worker.py
SCENARIO OUT_DIR`` runs a scenario on every rank and writes what each rank saw to
``OUT_DIR/SCENARIO.RANK.json``. The single-process references are computed by the tests,
with the helpers of this module, in the test process (which never starts MPI).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import numpy as np

import tapegrad as mx
from tapegrad import autograd, gluon

STEPS = 4
LR = {"learning_rate": 0.1, "momentum": 0.9}


def make_net(seed: int, deferred: bool = False, grad_req: str = "write") -> gluon.Block:
    """5 -> 4 (tanh) -> 3, with values drawn from ``RandomState(seed)`` (or, deferred,
    initialised by the first forward pass from ``mx.random.seed(seed)``)."""
    net = gluon.nn.HybridSequential()
    net.add(
        gluon.nn.Dense(4, activation="tanh", in_units=0 if deferred else 5),
        gluon.nn.Dense(3, in_units=0 if deferred else 4),
    )
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier())
    if not deferred:
        rs = np.random.RandomState(seed)
        for name in sorted(net.collect_params().keys()):
            p = net.collect_params()[name]
            p.set_data(mx.nd.array(rs.uniform(-0.6, 0.6, p.shape)))
    for p in net.collect_params().values():
        p.grad_req = grad_req
    return net


def data(total: int, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` batches of ``total`` samples (every rank's batches put together)."""
    rs = np.random.RandomState(42)
    return (
        rs.standard_normal((steps, total, 5)).astype(np.float32),
        rs.randint(0, 3, size=(steps, total)),
    )


def bounds(total: int, n: int) -> list[tuple[int, int]]:
    """Rank k's rows of a batch of ``total``: the first ``total % n`` ranks get one more."""
    base, extra = divmod(total, n)
    out, start = [], 0
    for k in range(n):
        size = base + (k < extra)
        out.append((start, start + size))
        start += size
    return out


def values(net: gluon.Block) -> dict:
    """The parameters' values by position in the network (names differ between processes)."""
    params = list(net.collect_params().values())
    return {f"p{i}": p.data().asnumpy().tolist() for i, p in enumerate(params)}


def train(net, trainer, xs, ys, rows=None, steps=STEPS, backwards=1, batch=None) -> None:
    """``steps`` steps on the batches ``xs[s][rows]`` (all rows by default)."""
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    lo, hi = rows if rows is not None else (0, xs.shape[1])
    for s in range(steps):
        x, y = mx.nd.array(xs[s][lo:hi]), mx.nd.array(ys[s][lo:hi])
        for _ in range(backwards):
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
        trainer.step(batch if batch is not None else hi - lo)
        if next(iter(net.collect_params().values())).grad_req == "add":
            net.collect_params().zero_grad()


def outcome(fn) -> str:
    """The name of the exception ``fn()`` raised, with the first words of its message."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    return "ok"


# --------------------------------------------------------------------------- scenarios
def sc_sum(hvd, r, n) -> dict:
    """dist_sync (sum) and DistributedTrainer (average) on equal shards; the toy example."""
    out = {}
    xs, ys = data(4 * n)
    rows = bounds(4 * n, n)[r]
    net = make_net(seed=r)  # different values on each rank: the Trainer broadcasts rank 0's
    tr = gluon.Trainer(net.collect_params(), "sgd", LR, kvstore="dist_sync")
    out["kv"] = [tr._kvstore.type, tr._kvstore.rank, tr._kvstore.num_workers]
    out["init"] = values(net)
    train(net, tr, xs, ys, rows)
    out["dist_sync"] = values(net)
    net = make_net(seed=r)
    tr = hvd.DistributedTrainer(net.collect_params(), "adam", {"learning_rate": 0.05})
    train(net, tr, xs, ys, rows)
    out["horovod"] = values(net)
    # Trainer(kvstore='horovod') and gluon.Trainer(DistributedOptimizer(...)) average too
    net = make_net(seed=r)
    tr = gluon.Trainer(net.collect_params(), "sgd", LR, kvstore="horovod")
    train(net, tr, xs, ys, rows)
    out["horovod_kvstore"] = values(net)
    net = make_net(seed=r)
    opt = hvd.DistributedOptimizer(mx.optimizer.SGD(**LR))
    tr = gluon.Trainer(net.collect_params(), opt)
    train(net, tr, xs, ys, rows)
    out["distributed_optimizer"] = values(net)
    # w = 0, each rank's gradient 1.5, lr 1: summed -3, averaged -1.5
    for kind in ("dist_sync", "horovod"):
        w = gluon.Parameter("w", shape=(1,), init=mx.init.Zero())
        w.initialize()
        tr = gluon.Trainer([w], "sgd", {"learning_rate": 1.0}, kvstore=kind)
        with autograd.record():
            loss = w.data() * 1.5
        loss.backward()
        tr.step(1)
        out[f"toy_{kind}"] = float(w.data().asscalar())
    return out


def sc_uneven(hvd, r, n) -> dict:
    """A batch of 10 over the ranks (4/3/3 on three): each rank steps with its own size."""
    out = {}
    xs, ys = data(10)
    rows = bounds(10, n)[r]
    for kind in ("dist_sync", "horovod"):
        net = make_net(seed=7)
        tr = gluon.Trainer(net.collect_params(), "sgd", LR, kvstore=kind)
        train(net, tr, xs, ys, rows)
        out[kind] = values(net)
    # the sampler over the real ranks: every epoch's shards cover the data once
    sampler = gluon.data.SplitSampler(23, n, r, seed=3)
    for epoch in range(2):
        mine = np.array(list(sampler), dtype=np.int64)
        everyone = hvd.allgather(mx.nd.array(mine, dtype="int64")).asnumpy()
        out[f"epoch{epoch}"] = everyone.tolist()
        out[f"len{epoch}"] = len(mine)
    return out


def sc_deferred(hvd, r, n) -> dict:
    """Deferred shapes, hybridized, a different seed on each rank: the first forward pass
    already uses rank 0's values."""
    xs, ys = data(4 * n)
    rows = bounds(4 * n, n)[r]
    net = make_net(seed=r, deferred=True)
    net.hybridize()
    tr = gluon.Trainer(net.collect_params(), "sgd", LR, kvstore="dist_sync")
    seen = {}
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for s in range(STEPS):
        x, y = mx.nd.array(xs[s][rows[0] : rows[1]]), mx.nd.array(ys[s][rows[0] : rows[1]])
        with autograd.record():
            loss = loss_fn(net(x), y)
        if s == 0:
            seen["init"] = values(net)
        loss.backward()
        tr.step(rows[1] - rows[0])
    seen["final"] = values(net)
    # broadcast_parameters on a deferred network too (Horovod's way)
    net2 = make_net(seed=10 + r, deferred=True)
    hvd.broadcast_parameters(net2.collect_params(), root_rank=0)
    net2(mx.nd.array(xs[0][:2]))
    seen["bp_init"] = values(net2)
    return seen


def sc_add(hvd, r, n) -> dict:
    """grad_req='add': two backward passes accumulate before each step."""
    xs, ys = data(4 * n)
    net = make_net(seed=5, grad_req="add")
    tr = gluon.Trainer(net.collect_params(), "sgd", LR, kvstore="dist_sync")
    train(net, tr, xs, ys, bounds(4 * n, n)[r], backwards=2, batch=4)
    return {"final": values(net)}


def _branches(seed: int):
    a = gluon.Parameter("a", shape=(3,))
    b = gluon.Parameter("b", shape=(3,))
    rs = np.random.RandomState(seed)
    for p in (a, b):
        p.initialize()
        p.set_data(mx.nd.array(rs.uniform(-1, 1, 3)))
    return a, b


def branch_loss(a, b, r, s, use_b):
    x = mx.nd.array(np.arange(3.0) + r + s)
    loss = (a.data() * x).sum() ** 2
    if use_b:
        loss = loss + (b.data() * a.data() * x).sum()
    return loss


def sc_stale(hvd, r, n) -> dict:
    """Parameter b is used on rank 0 only: refused by every rank without
    ignore_stale_grad, updated on every rank (zeros from the others) with it."""
    out = {}
    a, b = _branches(3)
    tr = gluon.Trainer([a, b], "sgd", {"learning_rate": 0.05}, kvstore="dist_sync")
    with autograd.record():
        loss = branch_loss(a, b, r, 0, use_b=(r == 0))
    loss.backward()
    before = [a.data().asnumpy().tolist(), b.data().asnumpy().tolist()]
    out["refused"] = outcome(lambda: tr.step(1))
    out["unchanged"] = before == [a.data().asnumpy().tolist(), b.data().asnumpy().tolist()]
    tr.step(1, ignore_stale_grad=True)
    for s in range(1, 3):
        with autograd.record():
            loss = branch_loss(a, b, r, s, use_b=(r == 0))
        loss.backward()
        tr.step(1, ignore_stale_grad=True)
    out["final"] = [a.data().asnumpy().tolist(), b.data().asnumpy().tolist()]
    return out


def sc_agree(hvd, r, n) -> dict:
    """Refusals agreed by every rank; clipping between allreduce_grads and update; the
    ranks at different steps; different collectives at the same point."""
    out = {}
    xs, ys = data(4 * n)
    rows = bounds(4 * n, n)[r]
    net = make_net(seed=2)
    tr = gluon.Trainer(
        net.collect_params(), "sgd", LR, kvstore="dist_sync_device", check_finite=True
    )
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def backward(scale=1.0):
        x, y = mx.nd.array(xs[0][rows[0] : rows[1]]), mx.nd.array(ys[0][rows[0] : rows[1]])
        with autograd.record():
            loss = loss_fn(net(x), y) * scale
        loss.backward()

    before = values(net)
    backward()
    out["bad_batch"] = outcome(lambda: tr.step(4 if r == 0 else float("nan")))
    backward(float("inf") if r == 1 else 1.0)
    out["non_finite"] = outcome(lambda: tr.step(4))
    out["retry"] = outcome(lambda: tr.step(4))  # the sums are not summed again
    out["update_first"] = outcome(lambda: tr.update(4))
    # computing the update fails on rank 1 only (after the gradients were summed)
    backward()
    if r == 1:

        def broken(*args):
            raise MemoryError("simulated, while computing the update on rank 1")

        tr.optimizer._step = broken
    out["phase1"] = outcome(lambda: tr.step(4))
    if r == 1:
        del tr.optimizer._step
    out["unchanged"] = values(net) == before
    out["steps_done"] = tr._dist_steps
    out["updates_counted"] = tr.optimizer.num_update
    # the refused steps left the gradients as they were: this one goes through
    backward()
    tr.allreduce_grads()
    for p in net.collect_params().values():  # clip the summed gradients
        p.grad()[:] = mx.nd.clip(p.grad(), -0.05, 0.05)
    tr.update(4)
    out["clipped"] = values(net)
    # a Trainer whose step count differs (rank 1 made a new one)
    other = gluon.Trainer(net.collect_params(), "sgd", LR, kvstore="dist_device_sync")
    backward()
    out["behind"] = outcome(lambda: (tr if r == 0 else other).step(4))
    # different collectives at the same point
    out["mismatch"] = outcome(
        lambda: tr.step(4) if r == 0 else hvd.allreduce(mx.nd.ones(3), op=hvd.Sum)
    )
    hvd.barrier()  # still in step: every rank can go on
    out["after"] = hvd.allreduce(mx.nd.array([r + 1.0]), op=hvd.Sum).asnumpy().tolist()
    return out


def sc_checkpoint(hvd, r, n) -> dict:
    """Rank 0 writes, every rank loads."""
    out_dir = sys.argv[2]
    xs, ys = data(4 * n)
    rows = bounds(4 * n, n)[r]
    net = make_net(seed=4)
    tr = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.05}, kvstore="dist_sync")
    train(net, tr, xs, ys, rows, steps=2)
    params_file = os.path.join(out_dir, "net.params")
    if r == 0:
        net.save_parameters(params_file)
    net.save_parameters(os.path.join(out_dir, f"net.params.{r}"))  # rank 0 writes
    tr.save_states(os.path.join(out_dir, f"trainer.states.{r}"))  # rank 0 writes
    tr.save_states(os.path.join(out_dir, "trainer.states"))
    hvd.barrier()
    net2 = make_net(seed=100 + r)
    net2.load_parameters(params_file)
    tr2 = gluon.Trainer(net2.collect_params(), "adam", {"learning_rate": 0.05}, kvstore="dist_sync")
    tr2.load_states(os.path.join(out_dir, "trainer.states"))
    same = values(net2) == values(net)
    train(net, tr, xs, ys, rows, steps=2)
    train(net2, tr2, xs, ys, rows, steps=2)
    return {"loaded": same, "resumed": values(net2) == values(net)}


def sc_collectives(hvd, r, n) -> dict:
    out = {}
    x = mx.nd.array([1.0 + r, 10.0 * r])
    out["average"] = hvd.allreduce(x).asnumpy().tolist()
    out["sum"] = hvd.allreduce(x, average=False).asnumpy().tolist()
    out["min"] = hvd.allreduce(x, op=hvd.Min).asnumpy().tolist()
    out["max"] = hvd.allreduce(x, op=hvd.Max).asnumpy().tolist()
    out["scaled"] = (
        hvd.allreduce(x, op=hvd.Sum, prescale_factor=2.0, postscale_factor=0.5).asnumpy().tolist()
    )
    y = mx.nd.array([5.0, 6.0])
    hvd.allreduce_(y, op=hvd.Sum)
    out["inplace"] = y.asnumpy().tolist()
    g = hvd.allgather(mx.nd.ones((r + 1, 2)) * r)
    out["gather"] = g.asnumpy().tolist()
    out["bcast"] = hvd.broadcast(mx.nd.array([float(r)] * 3), root_rank=n - 1).asnumpy().tolist()
    z = mx.nd.array([float(r)])
    hvd.broadcast_(z, 0)
    out["bcast_"] = z.asnumpy().tolist()
    out["bad_input"] = outcome(lambda: hvd.allreduce("not an array" if r == 1 else mx.nd.ones(2)))
    out["bad_shape"] = outcome(lambda: hvd.allreduce(mx.nd.ones(2 + r)))
    acc = mx.metric.Accuracy()
    labels = mx.nd.array([0, 1, 1, 0][: 2 + 2 * r])
    preds = mx.nd.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]][: 2 + 2 * r])
    acc.update(labels, preds)
    out["acc_local"] = acc.get()[1]
    out["acc_all"] = acc.get(all_ranks=True)[1]
    comp = mx.metric.create(["acc", "mse"])
    comp.update([labels], [preds.argmax(axis=1)])
    out["composite_all"] = comp.get_global(all_ranks=True)
    kv = hvd.kvstore.create("dist_sync")
    out["kv"] = [kv.type, kv.rank, kv.num_workers]
    a = mx.nd.array([1.0, 2.0]) * (r + 1)
    kv.pushpull(3, a)
    out["pushpull"] = a.asnumpy().tolist()
    b = mx.nd.zeros(2)
    kv.broadcast("w", mx.nd.array([7.0, 8.0]) + r, out=b)
    out["kv_bcast"] = b.asnumpy().tolist()
    kv.init(5, mx.nd.array([1.0, 1.0]) * (r + 1))  # rank 0's value on every rank
    c = mx.nd.zeros(2)
    kv.pull(5, out=c)
    out["kv_init"] = c.asnumpy().tolist()
    kv.push(5, [mx.nd.array([1.0, 2.0]) * (r + 1)] * 2)  # summed over devices and ranks
    kv.pull(5, out=c)
    out["kv_push"] = c.asnumpy().tolist()
    out["sizes"] = [hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size()]
    return out


def sc_raise(hvd, r, n) -> dict:
    """Rank 1 raises after its backward pass, in the middle of training."""
    xs, ys = data(4 * n, steps=20)
    net = make_net(seed=1)
    tr = gluon.Trainer(net.collect_params(), "sgd", LR, kvstore="dist_sync")
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for s in range(20):
        with autograd.record():
            loss = loss_fn(net(mx.nd.array(xs[s])), mx.nd.array(ys[s]))
        loss.backward()
        if s == 3 and r == 1:
            raise RuntimeError("simulated failure on rank 1")
        tr.step(4)
    return {}


def sc_straggle(hvd, r, n) -> dict:
    """Rank 1 catches its own error and leaves the loop: rank 0 must not wait forever."""
    net = make_net(seed=1)
    tr = gluon.Trainer(net.collect_params(), "sgd", LR, kvstore="dist_sync")
    for s in range(10):
        with autograd.record():
            loss = net(mx.nd.ones((2, 5))).sum()
        loss.backward()
        if s == 2 and r == 1:
            try:
                raise ValueError("a bad batch (simulated)")
            except ValueError:
                return {}  # rank 1 goes on without the others
        tr.step(2)
    return {}


SCENARIOS = {
    "sum": sc_sum,
    "uneven": sc_uneven,
    "deferred": sc_deferred,
    "add": sc_add,
    "stale": sc_stale,
    "agree": sc_agree,
    "checkpoint": sc_checkpoint,
    "collectives": sc_collectives,
    "raise": sc_raise,
    "straggle": sc_straggle,
}


def main() -> None:
    import tapegrad.distributed as hvd

    names, out_dir = sys.argv[1].split(","), sys.argv[2]
    hvd.init()
    r, n = hvd.rank(), hvd.size()
    for name in names:
        try:
            result = SCENARIOS[name](hvd, r, n)
        except Exception:  # noqa: BLE001  (recorded for the test, which shows it)
            if name in ("raise", "straggle"):
                raise
            result = {"error": traceback.format_exc()}
        with open(os.path.join(out_dir, f"{name}.{r}.json"), "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
