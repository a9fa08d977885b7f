"""A custom HybridBlock whose weight shape is declared with a 0 (inferred by the operator that
uses it), mixed with built-in layers, called with a Python number among its inputs, trained
with an optimizer given only a learning-rate scheduler."""

import numpy as np

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.gluon import nn


class MyDense(gluon.HybridBlock):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self._units = units
        with self.name_scope():
            self.weight = self.params.get(
                "weight", shape=(units, 0), init=mx.init.Xavier(), allow_deferred_init=True
            )
            self.bias = self.params.get("bias", shape=(units,), init="zeros")

    def hybrid_forward(self, F, x, scale, weight, bias):
        return F.relu(F.FullyConnected(x, weight, bias, num_hidden=self._units)) * scale


class Net(gluon.HybridBlock):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.hidden = MyDense(16)
            self.out = nn.Dense(1)

    def hybrid_forward(self, F, x):
        return self.out(self.hidden(x, 1.0))


mx.random.seed(1)
rng = np.random.default_rng(0)
X = rng.uniform(-1, 1, (256, 3)).astype(np.float32)
Y = (X**2).sum(axis=1, keepdims=True).astype(np.float32)
ctx = mx.gpu() if mx.context.num_gpus() > 0 else mx.cpu()
with ctx:
    net = Net()
    net.initialize(ctx=ctx)
    assert net.hidden.weight.shape == (16, 0)
    scheduler = mx.lr_scheduler.FactorScheduler(step=100, factor=0.5, base_lr=0.1)
    # no learning_rate: SGD takes the scheduler's base_lr (Adam-like optimizers have their
    # own default learning_rate, which would replace it, as in MXNet)
    trainer = gluon.Trainer(
        net.collect_params(), "sgd", {"lr_scheduler": scheduler, "momentum": 0.9}
    )
    loss_fn = gluon.loss.L2Loss()
    it = mx.io.NDArrayIter(X, Y, batch_size=32, shuffle=True, label_name="target")
    losses = []
    for _ in range(15):
        it.reset()
        total = 0.0
        for batch in it:
            with autograd.record():
                loss = loss_fn(net(batch.data[0]), batch.label[0])
            loss.backward()
            trainer.step(batch.data[0].shape[0])
            total += loss.mean().asscalar()
        losses.append(total)
print("inferred weight shape:", net.hidden.weight.shape)
print("first/last epoch loss:", losses[0], losses[-1])
assert net.hidden.weight.shape == (16, 3)
assert trainer.learning_rate < 0.1  # the scheduler halved it along the way
assert losses[-1] < 0.2 * losses[0], losses
net.hybridize()
np.testing.assert_allclose(net(nd.array(X[:4])).asnumpy(), net(nd.array(X[:4])).asnumpy())
