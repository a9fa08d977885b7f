"""Checkpoints as MXNet 1.9 scripts write them: Block.save / Block.load (structure + params),
save_parameters / load_parameters, Trainer.save_states / load_states; training resumes as if
never interrupted."""

import numpy as np

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.gluon import nn


def build():
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(8, activation="tanh"), nn.Dense(1))
    return net


def train(net, trainer, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = nd.array(rng.standard_normal((16, 4)))
        y = nd.array(rng.standard_normal((16, 1)))
        with autograd.record():
            loss = gluon.loss.L2Loss()(net(x), y)
        loss.backward()
        trainer.step(16)


mx.random.seed(7)
net = build()
net.initialize(mx.init.Xavier())
trainer = gluon.Trainer(net.collect_params(), "ftml", {"learning_rate": 0.01})
train(net, trainer, 5, seed=1)
net.save("checkpoint")  # checkpoint-model.json + checkpoint-model.params
net.save_parameters("net.params")
trainer.save_states("trainer.states")
x = nd.array(np.random.default_rng(3).standard_normal((2, 4)))
train(net, trainer, 3, seed=2)
expected = net(x).asnumpy()

restored = build()  # built again, with other automatic names
restored.initialize()
restored(x)
restored.load("checkpoint")
trainer2 = gluon.Trainer(restored.collect_params(), "ftml", {"learning_rate": 0.01})
trainer2.load_states("trainer.states")
train(restored, trainer2, 3, seed=2)
np.testing.assert_allclose(restored(x).asnumpy(), expected, rtol=1e-5)

again = build()
again.load_parameters("net.params")
print("restored output:", again(x).asnumpy().ravel())
print("resumed training matches:", np.abs(restored(x).asnumpy() - expected).max())
