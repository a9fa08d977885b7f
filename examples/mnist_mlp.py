"""Train the lecture notes' MNIST network (784 -> 72 tanh -> 10) with the MXNet Gluon API.

Run:  python examples/mnist_mlp.py [EPOCHS]
It is plain MXNet 1.x Gluon code: replace the import line by ``import mxnet as mx`` and it
runs on MXNet too (except for the bundled-data default of ``MNIST()``).
"""

import sys
import time

import numpy as np

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.gluon import nn

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
batch_size = 64
mx.random.seed(0)

# data: uint8 images (N, 28, 28, 1) -> float32 vectors in [0, 1]
train = gluon.data.vision.MNIST(train=True)
test = gluon.data.vision.MNIST(train=False)


def flatten(ds):
    x = ds._data.asnumpy().reshape(-1, 784).astype(np.float32) / 255
    return nd.array(x), nd.array(ds._label, dtype="int32")


x_train, y_train = flatten(train)
x_test, y_test = flatten(test)
loader = gluon.data.DataLoader(
    gluon.data.ArrayDataset(x_train, y_train), batch_size=batch_size, shuffle=True
)

# the network of the notes: h = tanh(M x), y = W h (plus biases)
net = nn.HybridSequential()
net.add(nn.Dense(72, activation="tanh"), nn.Dense(10))
net.initialize(mx.init.Xavier())
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9})
metric = mx.metric.Accuracy()

for epoch in range(epochs):
    start, total = time.time(), 0.0
    for x, y in loader:
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])  # gradients are summed over the batch: scale by 1/batch
        total += loss.sum().asscalar()
    metric.reset()
    metric.update([y_test], [net(x_test)])
    print(
        f"epoch {epoch + 1}: loss {total / len(y_train):.4f}, "
        f"test {metric.get()[0]} {metric.get()[1]:.4f}, {time.time() - start:.1f} s"
    )

net.save_parameters("mnist_mlp.params")
print("saved mnist_mlp.params")
