"""The allocator setting made at import (tapegrad._malloc): on by default, off on request."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "import tapegrad, tapegrad._malloc as m; print(m._DONE)"


def _run(env_extra: dict) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALLOC_") and k != "TAPEGRAD_MALLOC"
    }
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="optional: the setting needs glibc's mallopt"
)
def test_import_tunes_the_allocator_unless_told_not_to():
    assert _run({}) == "[True]"
    assert _run({"TAPEGRAD_MALLOC": "0"}) == "[False]"
    # the user's own glibc settings win
    assert _run({"MALLOC_TRIM_THRESHOLD_": "131072"}) == "[False]"
