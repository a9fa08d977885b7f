"""``tapegrad demo lenet`` and examples/lenet.py (issue 11): a short LeNet training run on a
subset of the bundled MNIST with a stated accuracy, the command line (--save writes MXNet's
format, --plot), and the example script."""

from __future__ import annotations

import argparse
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import nd
from tapegrad.demos import lenet

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    lenet.add_arguments(p)
    return p.parse_args(argv)


def test_short_lenet_run_learns():
    """2 epochs over 2,000 training images (4,000 steps' worth of samples, a few seconds with
    one BLAS thread): 92.4% on the first 1,000 test images with seed 0 here (88-92% over
    seeds 0-3); at least 85% is asserted."""
    lines: list[str] = []
    argv = ["--epochs", "2", "--limit", "2000", "--test-limit", "1000", "--batch-size", "32"]
    res = lenet.train(_args([*argv, "--no-progress"]), out=lines.append)
    assert res["accuracy"] >= 0.85, lines
    assert len(res["epoch_times"]) == 2 and len(res["pred"]) == 1000
    assert lines[0].startswith("MNIST: 2000 training and 1000 test images")
    assert re.search(r"epoch  2: train loss [0-9.]+, test accuracy [0-9.]+%", lines[-1])
    # the crash course's network: conv 6x5x5, conv 16x3x3, dense 120, 84, 10
    shapes = [p.shape for p in res["net"].collect_params().values()]
    assert shapes[0] == (6, 1, 5, 5) and shapes[2] == (16, 6, 3, 3) and shapes[4] == (120, 400)


def test_shifted_images_move_whole_digits():
    rng = np.random.default_rng(0)
    x = np.zeros((50, 1, 28, 28), dtype=np.float32)
    x[:, 0, 10:18, 12:16] = 1.0
    y = lenet.shifted(x, 2, rng)
    assert y.shape == x.shape and y.dtype == np.float32
    # every digit is kept whole and moved by at most 2 pixels; the border is background
    assert np.all((y == 1.0).sum(axis=(1, 2, 3)) == 32)
    rows = np.argmax(y[:, 0].max(axis=2) == 1.0, axis=1)
    cols = np.argmax(y[:, 0].max(axis=1) == 1.0, axis=1)
    assert set(rows - 10) <= set(range(-2, 3)) and set(cols - 12) <= set(range(-2, 3))
    assert len(set(zip(rows, cols))) > 5  # shifts differ between images
    bg = np.float32(-lenet.MEAN / lenet.STD)
    assert set(np.unique(y)) <= {np.float32(1.0), np.float32(0.0), bg}
    np.testing.assert_array_equal(lenet.shifted(x, 0, rng), x)


def test_cli_saves_mxnet_parameters_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="--plot needs the optional matplotlib")
    params = tmp_path / "lenet.params"
    png = tmp_path / "lenet.png"
    argv = ["demo", "lenet", "--epochs", "1", "--limit", "512", "--test-limit", "300"]
    argv += ["--save", str(params), "--plot", str(png), "--no-progress"]
    from tapegrad import cli

    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy: ([0-9.]+)% on 300 test images", out).group(1))
    assert re.search(r"mean [0-9.]+ s per epoch", out)
    assert png.stat().st_size > 1000
    # the saved file is MXNet's format with structural names, loadable into the same network
    assert sorted(nd.load(str(params))) == sorted(
        f"{i}.{w}" for i in (0, 2, 5, 6, 7) for w in ("weight", "bias")
    )
    net = lenet.build_net()
    net.load_parameters(str(params))
    x, y = lenet.images(mx.gluon.data.vision.MNIST(train=False), 300)
    assert 100 * float((lenet.predict(net, x) == y).mean()) == pytest.approx(acc, abs=0.01)


def test_cli_refuses_bad_options(capsys):
    from tapegrad import cli

    assert cli.main(["demo", "lenet", "--epochs", "0"]) == 2
    assert "--epochs and --batch-size must be >= 1" in capsys.readouterr().err


def test_example_script(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lenet.py", "1", "3000"])
    runpy.run_path(str(EXAMPLES / "lenet.py"), run_name="__main__")
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert acc > 0.75, out  # one epoch over 3,000 images: 89% of the 10,000 tests here
    assert "Total params: 60170" in out
    assert (tmp_path / "lenet.params").exists()
