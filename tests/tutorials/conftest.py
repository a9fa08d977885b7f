"""The scripts here run as whole programs from tests/test_tutorials.py (each in a fresh
folder); pytest must not import them itself (``--doctest-modules`` would run them in the
repository root)."""

collect_ignore_glob = ["*.py"]
