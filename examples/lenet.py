"""Train LeNet, the MXNet crash course's convolutional network, on MNIST with Gluon.

Run:  python examples/lenet.py [EPOCHS] [TRAIN_IMAGES]
It is MXNet 1.x Gluon code: replace the import line by ``import mxnet as mx`` and it runs on
MXNet too (except for the bundled-data default of ``MNIST()``). ``tapegrad demo lenet`` is the
same network with data augmentation, a learning-rate schedule and plots (99.0-99.2%).
"""

import sys
import time

import numpy as np

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.gluon import nn

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
batch_size = 64
mx.random.seed(0)

# data: uint8 images (N, 28, 28, 1) -> normalized float32 (N, 1, 28, 28)
train = gluon.data.vision.MNIST(train=True)
test = gluon.data.vision.MNIST(train=False)


def to_nchw(ds, n=None):
    x = ds._data.asnumpy()[:n].reshape(-1, 1, 28, 28).astype(np.float32) / 255
    return nd.array((x - 0.13) / 0.31), nd.array(ds._label[:n], dtype="int32")


x_train, y_train = to_nchw(train, limit)
x_test, y_test = to_nchw(test)
loader = gluon.data.DataLoader(
    gluon.data.ArrayDataset(x_train, y_train), batch_size=batch_size, shuffle=True
)

net = nn.HybridSequential()
net.add(
    nn.Conv2D(channels=6, kernel_size=5, activation="relu"),
    nn.MaxPool2D(pool_size=2, strides=2),
    nn.Conv2D(channels=16, kernel_size=3, activation="relu"),
    nn.MaxPool2D(pool_size=2, strides=2),
    nn.Flatten(),
    nn.Dense(120, activation="relu"),
    nn.Dense(84, activation="relu"),
    nn.Dense(10),
)
net.initialize(mx.init.Xavier())
net.hybridize()
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05, "momentum": 0.9})
metric = mx.metric.Accuracy()

for epoch in range(epochs):
    start, total = time.time(), 0.0
    for x, y in loader:
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
        total += loss.sum().asscalar()
    metric.reset()
    for i in range(0, x_test.shape[0], 1000):  # in chunks: the convolutions' columns are big
        metric.update([y_test[i : i + 1000]], [net(x_test[i : i + 1000])])
    print(
        f"epoch {epoch + 1}: loss {total / x_train.shape[0]:.4f}, "
        f"test accuracy {metric.get()[1]:.4f}, {time.time() - start:.1f} s"
    )

net.summary(x_test[:1])
net.save_parameters("lenet.params")  # MXNet's format: net.load_parameters works in MXNet too
print("saved lenet.params")
