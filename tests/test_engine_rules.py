"""Guard rails that keep higher order "free": rules use only the ``xp`` namespace they are
given (so the same formula runs on NumPy and on recorded NDArrays), and the engine stays
small enough to read in one sitting."""

from __future__ import annotations

import ast
import pathlib
import types

import numpy as np

import tapegrad

PKG = pathlib.Path(tapegrad.__file__).parent
OPS = sorted((PKG / "ops").glob("*.py"))


def _rule_functions(tree: ast.AST):
    """Functions and lambdas whose first parameter is ``xp`` (VJP and JVP rules)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args.args
            if args and args[0].arg == "xp":
                yield node


def test_rules_never_call_numpy_directly():
    offenders = []
    for path in OPS:
        tree = ast.parse(path.read_text())
        for fn in _rule_functions(tree):
            for node in ast.walk(fn):
                if isinstance(node, ast.Name) and node.id in ("np", "numpy"):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, (
        "derivative rules must use the xp namespace, not NumPy (or they break higher-order "
        f"derivatives): {offenders}"
    )


def test_rules_exist_in_every_family():
    counts = {p.name: sum(1 for _ in _rule_functions(ast.parse(p.read_text()))) for p in OPS}
    for family in ("elementwise.py", "reductions.py", "shape.py", "linalg.py", "nn.py"):
        assert counts[family] > 0, f"no rules found in {family}: the guard would be vacuous"


def _code_lines(path: pathlib.Path) -> int:
    """Lines of code, docstrings and comments excluded."""
    src = path.read_text()
    tree = ast.parse(src)
    doc_lines = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            doc_lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    n = 0
    for i, line in enumerate(src.splitlines(), start=1):
        s = line.strip()
        if s and not s.startswith("#") and i not in doc_lines:
            n += 1
    return n


def test_engine_line_budget():
    engine = _code_lines(PKG / "engine.py") + _code_lines(PKG / "forward.py")
    assert engine <= 600, f"the engine grew to {engine} code lines (budget 600)"


def test_primitives_are_called_as_plain_functions():
    # the hot path's shape: nd functions, TAPE and NDArray's forward operators hold the
    # primitive's call, a plain function (cheaper to call than an instance's __call__)
    from tapegrad import nd
    from tapegrad.engine import PRIMITIVES, TAPE
    from tapegrad.ndarray import NDArray

    for name, prim in PRIMITIVES.items():
        f = getattr(TAPE, name)
        assert isinstance(f, types.FunctionType) and f.prim is prim and f is prim.call
    assert nd.exp is TAPE.exp and nd.sin is TAPE.sin
    assert NDArray.__add__ is TAPE.add and NDArray.__pow__ is TAPE.power
    x = nd.array([0.5, 2.0])
    np.testing.assert_array_equal(PRIMITIVES["power"](x, 3).asnumpy(), (x**3).asnumpy())
