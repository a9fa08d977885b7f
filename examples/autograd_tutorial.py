"""The MXNet Gluon autograd tutorial (../shared/seeds/mxnet-gluon-autograd-tutorial.md), as a
plain script: the original code with ``import tapegrad as mx`` in place of ``import mxnet``.

    python examples/autograd_tutorial.py
"""

import math

import tapegrad as mx
from tapegrad import autograd
from tapegrad.gluon.loss import L2Loss
from tapegrad.gluon.nn import Dense, HybridSequential

# Define network
net = HybridSequential()
net.add(Dense(units=3))
net.add(Dense(units=1))
net.initialize()

# Define loss
loss_fn = L2Loss()

# Create dummy data
x = mx.nd.array([[0.3, 0.5]])
y = mx.nd.array([[1.5]])

with autograd.record():
    y_hat = net(x)
    loss = loss_fn(y_hat, y)
loss.backward()
print(net[0].weight.grad())

# Switching between training vs inference modes
dropout = mx.gluon.nn.Dropout(rate=0.5)
data = mx.nd.ones(shape=(3, 3))

output = dropout(data)
is_training = autograd.is_training()
print("is_training:", is_training, output)

with autograd.record():
    output = dropout(data)
print("is_training:", is_training, output)

# Skipping the calculation of parameter gradients
net[0].weight.grad_req = "null"

# Calculating non-parameter gradients: y = 2x^2, dy/dx = 4x
x = mx.nd.array([1, 2, 3])
x.attach_grad()
with autograd.record():
    y = 2 * x**2
y.backward()
print(x.grad)


# Using Python control flow
def f(x):
    y = x  # going to change y but still want to use x
    if x < 0.75:  # variable num_loops because it depends on x
        num_loops = math.floor(1 / (1 - x.asscalar()))
        for i in range(num_loops):  # noqa: B007  (the tutorial's code, verbatim)
            y = y * x  # increase polynomial degree
    else:  # otherwise flatline
        y = y * 0
    return y


def get_grad(f, x):
    x.attach_grad()
    with autograd.record():
        y = f(x)
    y.backward()
    return x.grad


xs = mx.nd.arange(0.0, 1.0, step=0.1)
grads = [get_grad(f, x).asscalar() for x in xs]
print([round(float(g), 3) for g in grads])
print("gradient at x = 0.6:", grads[6])  # 3x^2 = 1.08

# Custom head gradients: y = x^3 in tapegrad, z = y^2 in NumPy, dz/dx = 6x^5 = 192 at x = 2
x = mx.nd.array([2])
x.attach_grad()
with autograd.record():
    y = x**3
y_np = y.asnumpy()
z_np = y_np**2
dzdy_np = 2 * y_np
dzdy = mx.nd.array(dzdy_np)
y.backward(dzdy)
print(x.grad)
