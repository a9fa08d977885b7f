"""The package's layers: each module imports only modules of its own layer or below (the
engine knows nothing of NDArray's methods, MXNet's ``out=``, Gluon or sciml), there are no
import cycles, and every module can be the first one imported in a fresh interpreter."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import tapegrad

PKG = pathlib.Path(tapegrad.__file__).parent

# lowest first; a module belongs to the first layer whose prefix matches its name
LAYERS = [
    ("errors and devices", ["base", "context", "_malloc"]),
    ("engine", ["core"]),
    ("jet algebra", ["taylor.jets", "taylor.derivs", "taylor.propagation"]),
    ("primitives", ["ops"]),
    ("arrays", ["ndarray", "random", "serialization"]),
    (
        "communication",
        [
            "distributed.comm",
            "distributed.reducer",
            "distributed.collectives",
            "distributed.launcher",
        ],
    ),  # fmt: skip
    (
        "transforms",
        [
            "autograd",
            "forward",
            "engine",
            "functional",
            "func",
            "taylor",
            "explain",
            "trace",
            "trace_passes",
            "testing",
        ],
    ),  # fmt: skip
    ("differential operators", ["sciml.operators"]),
    (
        "training",
        [
            "lr_scheduler",
            "metric",
            "initializer",
            "optimizer",
            "gluon",
            "name",
            "io",
            "test_utils",
            "symbol",
            "distributed",
        ],
    ),  # fmt: skip
    ("derivative layers", ["sciml"]),
    ("applications", ["demos", "cli", "__main__", ""]),
]


def _module_names() -> list[str]:
    names = []
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _layer(mod: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        for pre in prefixes:
            if mod == pre or (pre and mod.startswith(pre + ".")):
                return i
    raise AssertionError(f"module tapegrad.{mod} is in no layer: add it to LAYERS")


def _imports(mod: str) -> set[str]:
    """tapegrad modules imported by ``mod`` (anywhere in it, functions included)."""
    path = PKG / (mod.replace(".", "/") if mod else "")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text())
    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    pkg = [p for p in pkg if p]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("tapegrad"):
                target = node.module[len("tapegrad.") :] if node.module != "tapegrad" else ""
            else:
                continue
            for a in node.names:
                sub = f"{target}.{a.name}" if target else a.name
                out.add(sub if _exists(sub) else target)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("tapegrad."):
                    out.add(a.name[len("tapegrad.") :])
    out.discard(mod)
    return out


def _exists(mod: str) -> bool:
    p = PKG / mod.replace(".", "/")
    return p.is_dir() or p.with_suffix(".py").exists()


def test_every_module_imports_only_its_layer_or_below():
    offenders = []
    for mod in _module_names():
        for dep in _imports(mod):
            if _layer(dep) > _layer(mod):
                offenders.append(
                    f"tapegrad.{mod} ({LAYERS[_layer(mod)][0]}) imports tapegrad.{dep} "
                    f"({LAYERS[_layer(dep)][0]})"
                )
    assert not offenders, "imports going up a layer:\n" + "\n".join(offenders)


def test_the_engine_knows_no_ndarray_methods_nor_mxnet_arguments():
    for p in sorted((PKG / "core").glob("*.py")):
        src = p.read_text()
        assert "out=" not in src.replace("out=None", ""), f"{p.name} handles MXNet's out="
        for mod in _imports(f"core.{p.stem}" if p.stem != "__init__" else "core"):
            assert mod.startswith("core") or mod == "base", f"{p.name} imports tapegrad.{mod}"


def test_no_import_cycles_at_module_level():
    graph = {}
    for mod in _module_names():
        path = PKG / (mod.replace(".", "/") if mod else "")
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        top = ast.parse(path.read_text()).body
        deps = set()
        for stmt in top:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                tree = ast.Module(body=[stmt], type_ignores=[])
                deps |= _imports_of_tree(mod, path, tree)
        graph[mod] = deps
    seen, stack = set(), []

    def visit(m):
        if m in stack:
            cycle = stack[stack.index(m) :] + [m]
            raise AssertionError("import cycle: " + " -> ".join(f"tapegrad.{c}" for c in cycle))
        if m in seen:
            return
        stack.append(m)
        for d in graph.get(m, ()):
            # a package importing its own submodules is how packages are built
            if not d.startswith(m + ".") or not m:
                visit(d)
        stack.pop()
        seen.add(m)

    for m in graph:
        if m:
            visit(m)


def _imports_of_tree(mod: str, path: pathlib.Path, tree: ast.AST) -> set[str]:
    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    pkg = [p for p in pkg if p]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
            target = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{target}.{a.name}" if target else a.name
                out.add(sub if _exists(sub) else target)
    out.discard(mod)
    return out


def test_every_module_imports_first_in_a_fresh_interpreter():
    # (``tapegrad.__main__`` runs the command line when imported: it is not a library module)
    mods = ["tapegrad" + (f".{m}" if m else "") for m in _module_names() if m != "__main__"]
    code = "import importlib, sys; importlib.import_module(sys.argv[1])"

    def run(m):
        r = subprocess.run(
            [sys.executable, "-c", code, m], capture_output=True, text=True, timeout=120
        )
        return m, r.returncode, r.stderr[-2000:]

    with ThreadPoolExecutor(max_workers=4) as ex:
        failed = [(m, err) for m, rc, err in ex.map(run, mods) if rc != 0]
    assert not failed, "\n\n".join(f"{m}:\n{err}" for m, err in failed)
