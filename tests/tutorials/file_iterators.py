"""mx.io.MNISTIter (the bundled MNIST, under the names MXNet scripts download it to) and
mx.io.CSVIter feeding a softmax regression written with the raw autograd API."""

import numpy as np

import tapegrad as mx
from tapegrad import autograd, nd

train_iter = mx.io.MNISTIter(
    image="data/train-images-idx3-ubyte",
    label="data/train-labels-idx1-ubyte",
    batch_size=100,
    shuffle=True,
    flat=True,
    seed=3,
)
W = nd.zeros((784, 10))
b = nd.zeros((10,))
for p in (W, b):
    p.attach_grad()
for i, batch in enumerate(train_iter):
    if i == 200:
        break
    x, y = batch.data[0], batch.label[0]
    with autograd.record():
        loss = -nd.pick(nd.log_softmax(nd.dot(x, W) + b), y).mean()
    loss.backward()
    W[:] = W - 0.5 * W.grad
    b[:] = b - 0.5 * b.grad

val_iter = mx.io.MNISTIter(
    image="data/t10k-images-idx3-ubyte",
    label="data/t10k-labels-idx1-ubyte",
    batch_size=1000,
    shuffle=False,
    flat=True,
)
correct = total = 0
for batch in val_iter:
    pred = nd.argmax(nd.dot(batch.data[0], W) + b, axis=1)
    correct += (pred == batch.label[0]).sum().asscalar()
    total += batch.data[0].shape[0]
print("softmax regression accuracy:", correct / total)
assert correct / total > 0.85

rng = np.random.default_rng(0)
X = rng.standard_normal((50, 3))
np.savetxt("x.csv", X, delimiter=",")
np.savetxt("y.csv", X @ np.array([1.0, -2.0, 0.5]), delimiter=",")
csv = mx.io.CSVIter(data_csv="x.csv", data_shape=(3,), label_csv="y.csv", batch_size=10)
w = nd.zeros((3,))
w.attach_grad()
for _ in range(40):
    csv.reset()
    for batch in csv:
        with autograd.record():
            loss = ((nd.dot(batch.data[0], w) - batch.label[0]) ** 2).mean()
        loss.backward()
        w[:] = w - 0.1 * w.grad
print("CSV regression weights:", w.asnumpy())
np.testing.assert_allclose(w.asnumpy(), [1.0, -2.0, 0.5], atol=1e-2)
