"""The command line: demos are discovered, the tutorial demo reproduces its numbers."""

from __future__ import annotations

import subprocess
import sys

from tapegrad import cli


def test_tutorial_demo_reproduces_documented_numbers(capsys):
    assert cli.main(["demo", "tutorial"]) == 0
    out = capsys.readouterr().out
    assert "MISMATCH" not in out
    assert "gradient at x = 0.6: 1.08" in out
    assert "dz/dx at x = 2: 192.0" in out
    assert "all tutorial numbers reproduced" in out


def test_cli_lists_demos_and_version(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    for name in ("tutorial", "mnist"):
        assert name in out
    assert cli.main(["version"]) == 0


def test_python_dash_m_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "tapegrad", "version"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and r.stdout.strip()
