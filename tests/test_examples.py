"""The scripts in examples/ run as shipped: the Gluon autograd tutorial and the MNIST script."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, argv: list[str], monkeypatch: pytest.MonkeyPatch, cwd: Path) -> None:
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [script, *argv])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")


def test_autograd_tutorial_script(tmp_path, monkeypatch, capsys):
    _run("autograd_tutorial.py", [], monkeypatch, tmp_path)
    out = capsys.readouterr().out
    # y = 2x^2 at x = 1, 2, 3: dy/dx = 4x
    assert re.search(r"\[\s*4\.\s+8\.\s+12\.\]", out)
    # the piecewise polynomial's gradient at 0.6 is 3 * 0.6^2
    g = float(re.search(r"gradient at x = 0\.6: ([0-9.]+)", out).group(1))
    assert g == pytest.approx(1.08, abs=1e-5)
    # custom head gradient: d(x^3)^2/dx = 6 x^5 = 192 at x = 2
    assert re.search(r"\[192\.\]", out)
    assert "is_training: False" in out


def test_mnist_script_one_epoch(tmp_path, monkeypatch, capsys):
    """One epoch over the 60,000 training images (about a second) beats 93% on the test set,
    and the saved parameters reproduce it."""
    _run("mnist_mlp.py", ["1"], monkeypatch, tmp_path)
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert acc > 0.93, out
    saved = tmp_path / "mnist_mlp.params"
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(72, activation="tanh"), mx.gluon.nn.Dense(10))
    net.load_parameters(str(saved))
    test = mx.gluon.data.vision.MNIST(train=False)
    x = test._data.asnumpy().reshape(-1, 784).astype(np.float32) / 255
    pred = net(mx.nd.array(x)).asnumpy().argmax(axis=1)
    assert float((pred == test._label).mean()) == pytest.approx(acc, abs=1e-4)
