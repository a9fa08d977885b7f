"""The demos of issue 4: the ODE's accuracy on a shortened run, and smoke runs of the Poisson
and Hessian-vector-product demos with tiny settings."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tapegrad.demos import hvp, ode, poisson

TINY = {
    ode: ["--steps", "3", "--batch", "8", "--quiet"],
    poisson: ["--steps", "3", "--batch", "16", "--width", "8", "--grid", "11", "--quiet"],
}


def _args(mod, argv):
    p = argparse.ArgumentParser()
    mod.add_arguments(p)
    return p.parse_args(argv)


def test_ode_shortened_run_is_accurate():
    res = ode.train("ad", "float64", steps=1200, batch=128, lr=1e-2, seed=0)
    # the full default run (8000 steps) reaches < 1e-3; a seventh of it gets within 1e-2
    assert res["max_err"] < 1e-2
    assert res["loss"] < 1e-3
    # u(0) = 1 holds exactly by construction
    import tapegrad as mx

    assert float(res["u"](mx.nd.array([[0.0]], dtype="float64")).asscalar()) == 1.0


def test_ode_finite_differences_lose_digits_in_float32():
    g = ode.build_g("float64")
    errs = ode.derivative_errors(g, 1e-4)
    # forward difference: truncation ~ dx/2 |u''| in float64, round-off ~ eps32/dx in float32
    assert errs["float64"] < 1e-3
    assert errs["float32"] > 10 * errs["float64"]


def test_ode_cli_smoke(capsys):
    args = _args(ode, ["--steps", "30", "--batch", "16", "--quiet", "--no-plot"])
    code = ode.run(args)
    out = capsys.readouterr().out
    assert code in (0, 1)  # 30 steps are not meant to reach the target
    # by default: autodiff in float64 and in float32, and the seed's finite differences
    assert "autodiff float64" in out and "autodiff float32" in out
    assert "finite differences float64" in out and "target max error" in out
    assert "float32:" in out and "time per training step" in out


def test_poisson_smoke(capsys):
    res = poisson.train(steps=40, batch=64, width=16, lr=3e-3, grid_n=21)
    assert np.isfinite(res["rel_l2"]) and res["rel_l2"] < 1.0
    args = _args(
        poisson,
        [
            "--steps",
            "5",
            "--batch",
            "32",
            "--width",
            "8",
            "--grid",
            "11",
            "--quiet",
            "--soft-boundary",
            "--no-plot",
        ],
    )
    assert poisson.run(args) in (0, 1)
    assert "relative L2 error" in capsys.readouterr().out


def test_poisson_exact_boundary():
    import tapegrad as mx

    _, u = poisson.build(8, "float64", soft=False)
    edge = np.array([[0.0, 0.3], [1.0, 0.7], [0.2, 0.0], [0.9, 1.0]])
    np.testing.assert_array_equal(u(mx.nd.array(edge, dtype="float64")).asnumpy(), 0.0)


@pytest.mark.parametrize("random", [True, False])
def test_hvp_demo_agrees_with_finite_differences(capsys, random):
    argv = ["--batch", "8", "--repeats", "1"] + (["--random"] if random else [])
    assert hvp.run(_args(hvp, argv)) == 0
    out = capsys.readouterr().out
    assert "hvp/grad" in out and ": yes" in out


@pytest.mark.parametrize("mod", [ode, poisson], ids=["ode", "poisson"])
def test_demo_writes_a_png_when_matplotlib_is_installed(mod, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (optional: plots)")
    path = tmp_path / "out.png"
    mod.run(_args(mod, TINY[mod] + ["--plot", str(path)]))
    assert f"plot written to {path}" in capsys.readouterr().out
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize("mod", [ode, poisson], ids=["ode", "poisson"])
def test_demo_without_matplotlib_says_so_and_writes_nothing(mod, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = tmp_path / "out.png"
    mod.run(_args(mod, TINY[mod] + ["--plot", str(path)]))
    assert "matplotlib is not installed: no PNG written" in capsys.readouterr().out
    assert not path.exists()
    # --no-plot: not even an attempt
    mod.run(_args(mod, TINY[mod] + ["--plot", str(path), "--no-plot"]))
    assert "matplotlib" not in capsys.readouterr().out
