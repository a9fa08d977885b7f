"""The MXNet autograd tutorial (../shared/seeds), run on tapegrad with its numbers checked."""

from __future__ import annotations

import argparse
import math

import numpy as np

DESCRIPTION = "run the MXNet autograd tutorial's examples and print the numbers it documents"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (Dropout, init)")


def _check(label: str, got: object, expected: object, ok: bool) -> bool:
    mark = "ok" if ok else "MISMATCH"
    print(f"  [{mark}] {label}: {got}  (tutorial: {expected})")
    return ok


def run(args: argparse.Namespace) -> int:
    import tapegrad as mx
    from tapegrad import autograd
    from tapegrad.gluon.loss import L2Loss
    from tapegrad.gluon.nn import Dense, HybridSequential

    mx.random.seed(args.seed)
    ok = True

    print("1. A Gluon network, its loss, and the gradients of its first layer")
    net = HybridSequential()
    net.add(Dense(units=3))
    net.add(Dense(units=1))
    net.initialize()
    loss_fn = L2Loss()
    x = mx.nd.array([[0.3, 0.5]])
    y = mx.nd.array([[1.5]])
    with autograd.record():
        y_hat = net(x)
        loss = loss_fn(y_hat, y)
    loss.backward()
    g = net[0].weight.grad()
    print(f"  net[0].weight.grad() has shape {g.shape}:\n{g.asnumpy()}")
    # the first layer's gradient is (dL/dh)^T x: every row is a multiple of x = [0.3, 0.5]
    rows = g.asnumpy()
    ok &= _check(
        "each row of net[0].weight.grad() is proportional to x",
        bool(np.allclose(rows[:, 0] * 0.5, rows[:, 1] * 0.3, atol=1e-7)),
        True,
        bool(np.allclose(rows[:, 0] * 0.5, rows[:, 1] * 0.3, atol=1e-7)),
    )

    print("2. Training vs inference mode: Dropout(rate=0.5) on ones((3, 3))")
    dropout = mx.gluon.nn.Dropout(rate=0.5)
    data = mx.nd.ones(shape=(3, 3))
    output = dropout(data)
    is_training = autograd.is_training()
    print("  is_training:", is_training, output)
    ok &= _check(
        "outside record(): identity, is_training False",
        (is_training, bool((output.asnumpy() == 1).all())),
        (False, True),
        not is_training and bool((output.asnumpy() == 1).all()),
    )
    with autograd.record():
        output = dropout(data)
        is_training = autograd.is_training()
    print("  is_training:", is_training, output)
    vals = set(np.unique(output.asnumpy()).tolist())
    ok &= _check(
        "inside record(): values in {0, 2}, is_training True",
        (is_training, vals),
        "(True, {0.0, 2.0})",
        is_training and vals <= {0.0, 2.0},
    )

    print("3. grad_req='null' freezes a parameter")
    net[0].weight.grad_req = "null"
    with autograd.record():
        loss = loss_fn(net(x), y)
    loss.backward()
    ok &= _check(
        "net[0].weight.grad_req", net[0].weight.grad_req, "null", net[0].weight.grad_req == "null"
    )

    print("4. Gradient with respect to a non-parameter: y = 2x^2, dy/dx = 4x")
    x = mx.nd.array([1, 2, 3])
    x.attach_grad()
    with autograd.record():
        y = 2 * x**2
    y.backward()
    print("  x.grad:", x.grad)
    ok &= _check(
        "x.grad",
        x.grad.asnumpy().tolist(),
        [4.0, 8.0, 12.0],
        x.grad.asnumpy().tolist() == [4.0, 8.0, 12.0],
    )

    print("5. Python control flow")

    def f(x):
        y = x  # going to change y but still want to use x
        if x < 0.75:  # variable num_loops because it depends on x
            num_loops = math.floor(1 / (1 - x.asscalar()))
            for _ in range(num_loops):
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
    print("  x    :", [round(float(v), 2) for v in xs.asnumpy()])
    print("  grads:", [round(float(v), 4) for v in grads])
    expected = []
    for xv in np.arange(0.0, 1.0, 0.1, dtype=np.float32):
        if xv < 0.75:
            n = math.floor(1 / (1 - xv)) + 1
            expected.append(n * float(xv) ** (n - 1))
        else:
            expected.append(0.0)
    ok &= _check(
        "gradients by segment (2x, 3x^2, 4x^3, 0)",
        "match",
        "2x, 3x^2, 4x^3, 0",
        bool(np.allclose(grads, expected, rtol=1e-5)),
    )
    g06 = float(grads[6])
    ok &= _check("gradient at x = 0.6", round(g06, 4), 1.08, abs(g06 - 1.08) < 1e-5)

    print("6. Custom head gradients: y = x^3 in tapegrad, z = y^2 in NumPy")
    x = mx.nd.array([2])
    x.attach_grad()
    with autograd.record():
        y = x**3
    y_np = y.asnumpy()
    dzdy_np = 2 * y_np
    dzdy = mx.nd.array(dzdy_np)
    y.backward(dzdy)
    print("  x.grad:", x.grad)
    ok &= _check(
        "dz/dx at x = 2", float(x.grad.asscalar()), 192.0, float(x.grad.asscalar()) == 192.0
    )

    print("\nall tutorial numbers reproduced" if ok else "\nSOME NUMBERS DIFFER")
    return 0 if ok else 1
