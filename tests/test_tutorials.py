"""The MXNet 1.x-style scripts in tests/tutorials/ run unchanged after ``import tapegrad as mx``
(each checks its own results with assertions), each in a fresh folder."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent / "tutorials"
SCRIPTS = sorted(p.name for p in TUTORIALS.glob("*.py") if p.name != "conftest.py")


def test_there_are_tutorials():
    assert len(SCRIPTS) >= 6


@pytest.mark.parametrize("script", SCRIPTS)
def test_tutorial_runs(script, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [script])
    runpy.run_path(str(TUTORIALS / script), run_name="__main__")
    assert capsys.readouterr().out.strip()  # each prints what it computed
