"""Recurrent networks that learn, in a few seconds: a GRU that predicts a sine wave's next value
(the way MXNet's time-series tutorials use Gluon), and ``tapegrad demo lstm`` on a shortened
run, with the text it ships."""

from __future__ import annotations

import argparse
import hashlib
import math
import re
from collections import Counter

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.demos import lstm as demo
from tapegrad.gluon import nn, rnn


class Forecaster(gluon.Block):
    """GRU over the sequence (batch-major), a Dense head on every step."""

    def __init__(self, hidden, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.rnn = rnn.GRU(hidden, layout="NTC")
            self.head = nn.Dense(1, flatten=False)

    def forward(self, x):
        return self.head(self.rnn(x))


def sine_batch(rng, n=32, steps=20):
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    freq = rng.uniform(0.3, 0.6, size=(n, 1))
    t = np.arange(steps + 1)[None, :]
    s = np.sin(freq * t + phase).astype(np.float32)
    return nd.array(s[:, :-1, None]), nd.array(s[:, 1:, None])


def test_a_gru_learns_to_forecast_a_sine_wave():
    mx.random.seed(0)
    rng = np.random.default_rng(0)
    net = Forecaster(16)
    net.initialize(mx.init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.02})
    loss_fn = gluon.loss.L2Loss()
    x_val, y_val = sine_batch(np.random.default_rng(99), n=64)
    before = float(loss_fn(net(x_val), y_val).mean().asscalar())
    for _ in range(150):
        x, y = sine_batch(rng)
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
    after = float(loss_fn(net(x_val), y_val).mean().asscalar())
    # predicting "no change" scores about 0.02 here; the trained GRU does far better
    naive = float(loss_fn(x_val, y_val).mean().asscalar())
    assert after < 0.1 * naive < before


def _args(argv):
    p = argparse.ArgumentParser()
    demo.add_arguments(p)
    return p.parse_args(argv)


def bigram_perplexity(text: str) -> float:
    """Validation perplexity (the demo's split) of a smoothed character bigram model: the bar
    a recurrent model must clear to show it learned more than letter pairs."""
    cut = int(len(text) * 0.9)
    train, val = text[:cut], text[cut:]
    pairs = Counter(zip(train, train[1:]))
    single = Counter(train)
    vocab = len(set(text))
    nll = -sum(
        math.log((pairs[(a, b)] + 0.1) / (single[a] + 0.1 * vocab)) for a, b in zip(val, val[1:])
    )
    return math.exp(nll / (len(val) - 1))


def test_lstm_demo_shortened_run_beats_a_bigram_model_and_samples(capsys):
    bar = bigram_perplexity(demo.load_text(24000))  # about 11.9
    argv = "--epochs 2 --limit 24000 --hidden 48 --layers 1 --batch-size 8 --bptt 32 --lr 0.01"
    args = _args(argv.split() + ["--sample", "60", "--no-progress", "--target", str(bar)])
    code = demo.run(args)
    out = capsys.readouterr().out
    ppl = [float(v) for v in re.findall(r"validation perplexity\s+([\d.]+)", out)]
    assert len(ppl) == 3  # two epochs, then the summary
    assert ppl[1] < ppl[0] and ppl[1] < bar
    assert code == 0 and "below the target" in out
    sample = out.split("sample (temperature 0.7):\n", 1)[1].split("\n\n")[0]
    assert sample.startswith("Alice") and len(sample) == len("Alice") + 60


def test_lstm_demo_refuses_bad_settings(capsys):
    assert demo.run(_args(["--epochs", "0"])) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
    assert demo.run(_args(["--limit", "100"])) == 2
    assert "leaves too little text" in capsys.readouterr().err


def test_cli_lists_the_demo(capsys):
    from tapegrad import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["demo", "lstm", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "Alice" in out and "--bptt" in out and "--temperature" in out


def test_shipped_text_is_the_book_alone_as_its_readme_says():
    data = open(demo.TEXT, "rb").read()
    readme = open(demo.TEXT.replace("alice.txt", "README.md"), encoding="utf-8").read()
    digest = hashlib.sha256(data).hexdigest()
    assert f"`{digest}`" in readme and "public domain" in readme.lower()
    text = data.decode("ascii")
    assert text.startswith("ALICE'S ADVENTURES IN WONDERLAND") and text.rstrip().endswith("THE END")
    assert "gutenberg" not in text.lower() and "\r" not in text
    assert len(text) == 144430 and len(set(text)) == 71
