"""``tapegrad demo lenet``: the MXNet crash course's LeNet, trained with Gluon on MNIST.

Conv2D(6, 5, relu) -> MaxPool2D(2, 2) -> Conv2D(16, 3, relu) -> MaxPool2D(2, 2) -> Flatten ->
Dense(120, relu) -> Dense(84, relu) -> Dense(10), Xavier initialization, softmax
cross-entropy, SGD with momentum and a cosine learning-rate schedule, on the MNIST copy bundled
with tapegrad (images scaled to [0, 1] and normalized with the training set's mean 0.1307 and
standard deviation 0.3081), each training image shifted by up to 2 pixels, anew every epoch.
Prints a progress bar (loss, samples/s) to stderr, the test accuracy and the time of each
epoch; with its defaults (8 epochs) it reached 99.15-99.28% on the 10,000 test images over
seeds 0-3 (6 epochs: 99.08-99.24%; without the shifts 98.9%).
``--save`` writes the parameters in MXNet's ``.params`` format (``net.save_parameters``, loadable
by MXNet 1.x), ``--plot`` draws the first layer's filters and misclassified digits.
"""

from __future__ import annotations

import argparse
import sys
import time

from .mnist import _Progress

DESCRIPTION = (
    "train the MXNet crash course's LeNet (2 conv + 3 dense layers) on MNIST with Gluon "
    "+ Trainer and print its test accuracy and time per epoch"
)

MEAN, STD = 0.1307, 0.3081


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tapegrad demo lenet``."""
    parser.add_argument(
        "--epochs", type=int, default=8, help="passes over the training set (default 8)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="samples per step (default 64)")
    parser.add_argument(
        "--lr", type=float, default=0.05, help="initial SGD learning rate (default 0.05)"
    )
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--wd", type=float, default=1e-4, help="weight decay (default 1e-4)")
    parser.add_argument(
        "--shift",
        type=int,
        default=2,
        help="shift each training image by up to this many pixels, a new random shift per "
        "image and epoch (data augmentation; 0: none; default 2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N training images only (quick runs, tests)",
    )
    parser.add_argument(
        "--test-limit",
        type=int,
        default=None,
        metavar="N",
        help="evaluate on the first N test images only (quick runs, tests)",
    )
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="folder with the MNIST IDX files (default: the bundled copy)",
    )
    parser.add_argument(
        "--save",
        default=None,
        metavar="PATH",
        help="save the trained parameters (MXNet's .params format) to PATH",
    )
    parser.add_argument(
        "--plot",
        default=None,
        metavar="PATH",
        help="draw the first layer's 6 filters and misclassified test digits into a PNG "
        "(needs matplotlib)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar, only one line per epoch"
    )


def build_net():
    """The crash course's LeNet (``tapegrad.gluon.nn``), not yet initialized."""
    from tapegrad.gluon import nn

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
    return net


def images(dataset, limit: int | None = None):
    """A vision dataset's images as normalized float32 ``(N, 1, 28, 28)`` NumPy and its
    labels."""
    import numpy as np

    x = dataset._data.asnumpy()[:limit]
    x = (x.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255) - MEAN) / STD
    return x.astype(np.float32), np.asarray(dataset._label[:limit])


def shifted(x, shift: int, rng):
    """Images ``x`` (N, 1, H, W) each moved by a random offset in ``[-shift, shift]`` along
    both axes, the uncovered border filled with the background value (one vectorized
    gather)."""
    import numpy as np

    if shift <= 0 or len(x) == 0:
        return x
    n, _, h, w = x.shape
    background = np.float32((0 - MEAN) / STD)
    padded = np.pad(x[:, 0], ((0, 0), (shift, shift), (shift, shift)), constant_values=background)
    dy = rng.integers(0, 2 * shift + 1, size=n)
    dx = rng.integers(0, 2 * shift + 1, size=n)
    rows = (dy[:, None] + np.arange(h))[:, :, None]
    cols = (dx[:, None] + np.arange(w))[:, None, :]
    return padded[np.arange(n)[:, None, None], rows, cols][:, None]


def predict(net, x, batch: int = 1000):
    """Class predictions for NumPy images ``x``, ``batch`` images at a time."""
    import numpy as np

    from tapegrad import nd

    out = [
        net(nd.array(x[i : i + batch])).asnumpy().argmax(axis=1) for i in range(0, len(x), batch)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _plot(weight, x_test, y_test, pred, path: str) -> None:
    """The first layer's filters and up to 12 misclassified test digits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    wrong = np.flatnonzero(pred != y_test)[:12]
    fig, axes = plt.subplots(3, 6, figsize=(9, 5))
    for ax in axes.ravel():
        ax.axis("off")
    for k in range(min(6, weight.shape[0])):
        m = float(abs(weight[k, 0]).max()) or 1.0
        axes[0, k].imshow(weight[k, 0], cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        axes[0, k].set_title(f"filter {k}", fontsize=9)
    for j, i in enumerate(wrong):
        ax = axes[1 + j // 6, j % 6]
        ax.imshow(x_test[i, 0] * STD + MEAN, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{y_test[i]} read as {pred[i]}", fontsize=9)
    fig.suptitle("LeNet: first-layer 5x5 filters (red +, blue -) and misclassified digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(args: argparse.Namespace, out=print) -> dict:
    """Train with ``args`` (the demo's options); returns the network, the test accuracy, the
    seconds of each epoch and the test predictions."""
    import numpy as np

    import tapegrad as mx
    from tapegrad import autograd, gluon, nd

    mx.random.seed(args.seed)
    t0 = time.perf_counter()
    train_set = gluon.data.vision.MNIST(root=args.data, train=True)
    test_set = gluon.data.vision.MNIST(root=args.data, train=False)
    x_train, y_train = images(train_set, args.limit)
    x_test, y_test = images(test_set, args.test_limit)
    out(
        f"MNIST: {len(y_train)} training and {len(y_test)} test images "
        f"(loaded in {time.perf_counter() - t0:.1f} s)"
    )

    net = build_net()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.default_rng(args.seed)
    labels = nd.array(y_train, dtype="int32")

    def loader_for_epoch():
        x = shifted(x_train, args.shift, rng)
        return gluon.data.DataLoader(
            gluon.data.ArrayDataset(nd.array(x), labels), batch_size=args.batch_size, shuffle=True
        )

    steps = max(-(-len(y_train) // args.batch_size) * args.epochs, 1)
    schedule = mx.lr_scheduler.CosineScheduler(max_update=steps, base_lr=args.lr, final_lr=0.0)
    trainer = gluon.Trainer(
        net.collect_params(),
        "sgd",
        {
            "learning_rate": args.lr,
            "momentum": args.momentum,
            "wd": args.wd,
            "lr_scheduler": schedule,
        },
    )
    out(
        f"LeNet, SGD lr={args.lr} (cosine decay) momentum={args.momentum} wd={args.wd}, "
        f"batch {args.batch_size}, {args.epochs} epochs, random shifts up to {args.shift} px"
    )

    epoch_times: list[float] = []
    acc = 0.0
    pred = np.zeros(0, dtype=np.int64)
    for epoch in range(1, args.epochs + 1):
        loader = loader_for_epoch()
        bar = _Progress(len(loader), f"epoch {epoch}/{args.epochs}", not args.no_progress)
        start = time.perf_counter()
        total_loss = 0.0
        seen = 0
        for i, (xb, yb) in enumerate(loader, 1):
            with autograd.record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(xb.shape[0])
            total_loss += float(loss.asnumpy().sum())
            seen += xb.shape[0]
            bar.update(i, total_loss / seen, seen / (time.perf_counter() - start))
        elapsed = time.perf_counter() - start
        bar.close()
        epoch_times.append(elapsed)
        pred = predict(net, x_test)
        acc = float((pred == y_test).mean()) if len(y_test) else 0.0
        out(
            f"epoch {epoch:2d}: train loss {total_loss / max(seen, 1):.4f}, test accuracy "
            f"{100 * acc:.2f}%, {elapsed:.1f} s ({seen / elapsed:,.0f} samples/s)"
        )
    return {
        "net": net,
        "accuracy": acc,
        "epoch_times": epoch_times,
        "pred": pred,
        "x_test": x_test,
        "y_test": y_test,
    }


def run(args: argparse.Namespace) -> int:
    """Train, report, optionally save and plot. Returns the exit status."""
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "tapegrad demo lenet: --plot needs matplotlib, which is not installed. Fix: "
                "pip install matplotlib (or pip install 'tapegrad[plot]'), or drop --plot.",
                file=sys.stderr,
            )
            return 2
    if args.epochs < 1 or args.batch_size < 1:
        print(
            "tapegrad demo lenet: --epochs and --batch-size must be >= 1. Fix: pass positive "
            "values.",
            file=sys.stderr,
        )
        return 2
    res = train(args)
    times = res["epoch_times"]
    print(
        f"test accuracy: {100 * res['accuracy']:.2f}% on {len(res['y_test']):,} test images "
        f"(mean {sum(times) / len(times):.1f} s per epoch)"
    )
    if args.save:
        res["net"].save_parameters(args.save)
        print(f"parameters saved to {args.save} (MXNet .params format)")
    if args.plot:
        weight = res["net"][0].weight.data().asnumpy()
        _plot(weight, res["x_test"], res["y_test"], res["pred"], args.plot)
        print(f"filters and misclassified digits drawn to {args.plot}")
    return 0
