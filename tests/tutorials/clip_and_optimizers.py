"""Gradient clipping with gluon.utils.clip_global_norm between allreduce_grads() and
update(), and a tour of MXNet 1.9's optimizers on the same problem."""

import numpy as np

import tapegrad as mx
from tapegrad import autograd, gluon, nd

rng = np.random.default_rng(0)
X = nd.array(rng.standard_normal((64, 5)))
true_w = rng.standard_normal((5, 1))
Y = nd.array(X.asnumpy() @ true_w)


def fit(optimizer, params, steps=60, clip=None):
    mx.random.seed(0)
    net = gluon.nn.Dense(1, in_units=5)
    net.initialize(mx.init.Zero())
    trainer = gluon.Trainer(net.collect_params(), optimizer, params)
    loss_fn = gluon.loss.L2Loss()
    first = None
    for _ in range(steps):
        with autograd.record():
            loss = loss_fn(net(X), Y).mean()
        loss.backward()
        if clip is not None:
            trainer.allreduce_grads()
            grads = [p.grad() for p in net.collect_params().values()]
            norm = gluon.utils.clip_global_norm(grads, clip)
            assert np.isfinite(norm)
            trainer.update(1)
        else:
            trainer.step(1)
        first = loss.asscalar() if first is None else first
    return first, loss.asscalar()


for name, params in [
    ("sgd", {"learning_rate": 0.2, "momentum": 0.5}),
    ("signum", {"learning_rate": 0.02}),
    ("ftml", {"learning_rate": 0.05}),
    ("lamb", {"learning_rate": 0.1}),
    ("lars", {"learning_rate": 50.0, "momentum": 0.5, "eta": 0.01}),
    ("adamax", {"learning_rate": 0.1}),
    ("nadam", {"learning_rate": 0.1}),
    ("ftrl", {"learning_rate": 0.5, "lamda1": 0.0}),
    ("dcasgd", {"learning_rate": 0.2}),
    ("lbsgd", {"learning_rate": 0.2}),
]:
    first, last = fit(name, params)
    print(f"{name:8s} loss {first:.4f} -> {last:.4f}")
    assert last < 0.5 * first, (name, first, last)

first, last = fit("sgd", {"learning_rate": 0.5}, clip=0.5)
print(f"clipped sgd loss {first:.4f} -> {last:.4f}")
assert last < 0.2 * first
