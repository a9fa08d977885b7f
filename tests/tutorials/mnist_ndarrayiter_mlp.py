"""Straight-Dope style: MNIST from mx.test_utils.get_mnist, fed by mx.io.NDArrayIter, a Gluon
MLP trained with split_and_load on whatever devices exist, accuracy with mx.metric."""

import numpy as np

import tapegrad as mx
from tapegrad import autograd, gluon
from tapegrad.gluon import nn

mx.random.seed(42)
np.random.seed(42)
ctx = [mx.gpu(i) for i in mx.test_utils.list_gpus()] or [mx.cpu()]

mnist = mx.test_utils.get_mnist()
batch_size = 100
n_train = 6000  # a tenth of the training set keeps the script to a second or two
train_data = mx.io.NDArrayIter(
    mnist["train_data"][:n_train], mnist["train_label"][:n_train], batch_size, shuffle=True
)
val_data = mx.io.NDArrayIter(mnist["test_data"], mnist["test_label"], batch_size)

net = nn.Sequential()
with net.name_scope():
    net.add(nn.Dense(64, activation="relu"))
    net.add(nn.Dense(32, activation="relu"))
    net.add(nn.Dense(10))
net.initialize(mx.init.Xavier(magnitude=2.24), ctx=ctx)
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.2})
softmax_cross_entropy_loss = gluon.loss.SoftmaxCrossEntropyLoss()
metric = mx.metric.Accuracy()

for epoch in range(2):
    train_data.reset()
    for batch in train_data:
        data = gluon.utils.split_and_load(batch.data[0], ctx_list=ctx, batch_axis=0)
        label = gluon.utils.split_and_load(batch.label[0], ctx_list=ctx, batch_axis=0)
        outputs = []
        with autograd.record():
            for x, y in zip(data, label):
                z = net(x)
                loss = softmax_cross_entropy_loss(z, y)
                loss.backward()
                outputs.append(z)
        metric.update(label, outputs)
        trainer.step(batch.data[0].shape[0])
    name, acc = metric.get()
    metric.reset()
    print(f"training acc at epoch {epoch}: {name}={acc:.4f}")

val_data.reset()
for batch in val_data:
    data = gluon.utils.split_and_load(batch.data[0], ctx_list=ctx, batch_axis=0)
    label = gluon.utils.split_and_load(batch.label[0], ctx_list=ctx, batch_axis=0)
    metric.update(label, [net(x) for x in data])
name, val_acc = metric.get()
print(f"validation acc: {name}={val_acc:.4f}")
assert val_acc > 0.88, val_acc
