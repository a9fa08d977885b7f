"""See a gradient as a straight-line program: the forward trace and the adjoint trace.

:func:`explain` runs a function once while recording, walks the engine's recorded graph
(the :class:`~tapegrad.core.Node` objects that ``backward`` uses: ``prim``, ``parents``,
``args``, ``kwargs``, ``ans``) and prints it the way Domke's notes write reverse mode:

* the forward trace (Eq. 2.3): one named intermediate per recorded primitive,
  ``a = exp(x)``, ``b = a²``, ``c = a + b``, ... with its value;
* the adjoint trace (Eq. 2.4): for each variable, from the output back to the inputs,
  ``df/dc = df/dd·exp(c) + df/de·cos(c)`` with its value, computed by the engine's own
  backward pass over that same graph.

:func:`to_dot` exports the graph in Graphviz DOT; :func:`render` draws it to SVG/PNG/PDF with
the ``dot`` program.

>>> import tapegrad as mx
>>> e = mx.explain(lambda x: mx.nd.exp(x) * x, mx.nd.array(1.0, dtype='float64'))
Forward trace (2 operations):
  a = exp(x)  = 2.71828
  f = a·x     = 2.71828
Adjoint trace (reverse mode), from df/df = 1:
  df/df = 1
  df/da = df/df·x                 = 1
  df/dx = df/da·exp(x) + df/df·a  = 5.43656
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

from .base import TapegradError
from .core import Leaf, Node, backward_pass, trace, walk
from .ndarray.ndarray import NDArray

__all__ = ["explain", "to_dot", "render", "Explanation"]

_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _fmt_value(v: Any) -> str:
    a = np.asarray(v)
    if a.size == 1:
        return f"{float(a.reshape(-1)[0]):.6g}"
    shape = "x".join(str(s) for s in a.shape)
    body = np.array2string(a.reshape(-1)[:4], precision=4, separator=", ")
    more = ", ...]" if a.size > 4 else ""
    return f"<{shape}> " + (body[:-1] + more if more else body)


def _const_repr(a: Any) -> str:
    if isinstance(a, NDArray):
        a = a._data
    arr = np.asarray(a)
    if arr.size == 1:
        v = float(arr.reshape(-1)[0])
        return f"{v:g}"
    return f"const<{'x'.join(str(s) for s in arr.shape)}>"


class _Names:
    """Letters for intermediates, as in the notes: a, b, c, ... (skipping f, the output,
    and the inputs' names), then v27, v28, ..."""

    def __init__(self, taken: set) -> None:
        self.taken = set(taken) | {"f"}
        self.pool = [c for c in "abcdeghijklmnopqrstuvw" if c not in self.taken]
        self.n = 0

    def next(self) -> str:
        if self.pool:
            name = self.pool.pop(0)
        else:
            self.n += 1
            name = f"v{self.n}"
            while name in self.taken:
                self.n += 1
                name = f"v{self.n}"
        self.taken.add(name)
        return name


class Explanation:
    """What :func:`explain` found: ``forward`` and ``adjoint`` trace lines, the ``steps``
    (name, expression, value, gradient) and the DOT text of the graph (``dot``)."""

    def __init__(self, forward: list, adjoint: list, steps: list, dot: str) -> None:
        self.forward = forward
        self.adjoint = adjoint
        self.steps = steps
        self.dot = dot

    @property
    def text(self) -> str:
        return "\n".join(self.forward + self.adjoint)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        n = sum(1 for s in self.steps if s["kind"] == "op")
        return f"<Explanation: {n} operations; print(e) for the traces, e.dot for the graph>"


def _arg_names(f: Callable, n: int) -> list:
    names: list = []
    try:
        target = f.forward if hasattr(f, "forward") and not inspect.isfunction(f) else f
        params = list(inspect.signature(target).parameters.values())
        names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][
            :n
        ]
    except (TypeError, ValueError):
        pass
    default = ["x", "y", "z"] if n <= 3 else [f"x{i + 1}" for i in range(n)]
    names = [nm if nm and nm not in ("self", "F") else default[i] for i, nm in enumerate(names)]
    return names + default[len(names) : n]


def _param_names(f: Any) -> dict:
    """Leaf node -> parameter name, when ``f`` is a Gluon block."""
    out: dict = {}
    try:
        params = f.collect_params()
    except Exception:  # not a block
        return out
    for name, p in params.items():
        try:
            for arr in p.list_data():
                if arr._node is not None:
                    out[arr._node] = name
        except Exception:  # deferred or uninitialized
            continue
    return out


def _record(f: Callable, inputs: tuple) -> tuple:
    """Run ``f`` recording on fresh variables for the float inputs."""
    args = []
    for a in inputs:
        if not isinstance(a, NDArray) and isinstance(a, (int, float, np.ndarray, list)):
            a = NDArray(np.asarray(a, dtype=np.float64))
        args.append(a)
    nums = [
        i for i, a in enumerate(args) if isinstance(a, NDArray) and np.dtype(a.dtype).kind == "f"
    ]
    out, vars_ = trace(f, args, nums)
    leaves = [None] * len(args)
    for i, v in zip(nums, vars_):
        leaves[i] = v._node
    if isinstance(out, (tuple, list)):
        raise TapegradError(
            f"explain: the function returned {len(out)} values; it must return one NDArray "
            "(the f whose derivative is traced). Fix: return a single output, e.g. the loss."
        )
    if not isinstance(out, NDArray):
        raise TapegradError(
            f"explain: the function returned {type(out).__name__}, not an NDArray. Fix: "
            "compute it with tapegrad operations on the inputs."
        )
    return out, leaves


def _analyse(f: Callable, inputs: tuple) -> dict:
    out, leaves = _record(f, inputs)
    if out._node is None:
        raise TapegradError(
            "explain: the output does not depend on any input, so there is nothing to trace. "
            "Fix: make sure the function uses its float NDArray inputs."
        )
    # the graph: every node reachable from the output, in creation order
    order = walk([out._node])
    in_names = _arg_names(f, len(inputs))
    pnames = _param_names(f)
    names: dict = {}
    for leaf, nm in zip(leaves, in_names):
        if leaf is not None:
            names[leaf] = nm
    gen = _Names(set(names.values()))
    k = 0
    for n in order:
        if n in names:
            continue
        if type(n) is Leaf:
            if n in pnames:
                names[n] = pnames[n]
            else:
                k += 1
                names[n] = f"w{k}"
        elif n is out._node:
            names[n] = "f"
        else:
            names[n] = gen.next()
    # df/dv for every node, by the engine's backward pass over this graph
    head = np.ones(out.shape, dtype=out.dtype) if out.shape else np.dtype(out.dtype).type(1)
    grads = backward_pass([out], [NDArray(head)], targets=order, retain_graph=True)
    return {"out": out, "order": order, "names": names, "grads": dict(zip(order, grads))}


def _arg_strs(n: Node, names: dict) -> list:
    return [names[p] if p is not None else _const_repr(a) for a, p in zip(n.args, n.parents)]


def _formula(part: Any, n: Node, a: list, names: dict) -> str | None:
    if part is None:
        return None
    if callable(part):
        return part(n, a, names[n])
    return part.format(*a, out=names[n])


def _expr(n: Node, names: dict) -> str:
    """The operation of node ``n`` as a formula of its inputs' names (the primitive's
    declared ``explain`` formula, else ``name(inputs, kwargs)``)."""
    prim = n.prim
    a = _arg_strs(n, names)
    f = prim.formula
    text = _formula(f.out, n, a, names) if f is not None else None
    if text is not None:
        return text
    kw = ", ".join(
        f"{k}={v!r}" for k, v in n.kwargs.items() if k != "key" and v is not None and v is not False
    )
    if "key" in n.kwargs:
        kw = (kw + ", " if kw else "") + f"key={n.kwargs['key']!r}"
    return f"{prim.name}({', '.join(a)}{', ' + kw if kw else ''})"


def _local(n: Node, i: int, names: dict) -> str:
    """d node / d input_i as a formula ("1" for identity), from the primitive's declaration."""
    f = n.prim.formula
    d = f.d if f is not None else ()
    part = d[i] if i < len(d) else (d[-1] if d and n.prim.nin is None else None)
    if part is not None:
        text = _formula(part, n, _arg_strs(n, names), names)
        if text is not None:
            return text
    return f"∂{names[n]}/∂{_arg_strs(n, names)[i]}"


def _term(child: str, local: str) -> str:
    if local == "1":
        return f"df/d{child}"
    if local == "-1":
        return f"-df/d{child}"
    return f"df/d{child}·{local}"


def _build(info: dict) -> tuple:
    order, names, grads, out = info["order"], info["names"], info["grads"], info["out"]
    ops = [n for n in order if type(n) is not Leaf]
    steps, fwd_rows = [], []
    for n in order:
        if type(n) is Leaf:
            steps.append(
                dict(kind="input", name=names[n], expr=names[n], value=None, grad=grads.get(n))
            )
            continue
        e = _expr(n, names)
        fwd_rows.append((f"{names[n]} = {e}", _fmt_value(n.ans)))
        steps.append(
            dict(
                kind="op",
                name=names[n],
                expr=e,
                value=n.ans,
                grad=grads.get(n),
                prim=n.prim.name,
                node=n,
            )
        )
    w = max((len(r[0]) for r in fwd_rows), default=0)
    forward = [f"Forward trace ({len(ops)} operation{'s' if len(ops) != 1 else ''}):"]
    forward += [f"  {lhs.ljust(w)}  = {val}" for lhs, val in fwd_rows]
    # adjoint: each variable collects df/dchild · dchild/dvariable over its children
    children: dict = {n: [] for n in order}
    for n in ops:
        for i, p in enumerate(n.parents):
            if (
                p is not None
                and p in children
                and n.prim.vjps is not None
                and n.prim.vjps[i] is not None
            ):
                children[p].append((n, i))
    seed = "1" if out.size == 1 else f"1 (ones of shape {out.shape}: the elements are summed)"
    adj_rows = [(f"df/df = {seed}", None)]
    for n in reversed(order):
        if n is out._node:
            continue
        terms = [_term(names[c], _local(c, i, names)) for c, i in children[n]]
        g = grads.get(n)
        val = _fmt_value(g) if g is not None else "0"
        adj_rows.append((f"df/d{names[n]} = {' + '.join(terms) if terms else '0'}", val))
    w = max((len(r[0]) for r in adj_rows if r[1] is not None), default=0)
    adjoint = ["Adjoint trace (reverse mode), from df/df = 1:"]
    adjoint += [
        f"  {lhs}" if val is None else f"  {lhs.ljust(w)}  = {val}" for lhs, val in adj_rows
    ]
    return forward, adjoint, steps, children


def _dot_text(info: dict, steps: list, children: dict) -> str:
    names = info["names"]

    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "digraph tapegrad {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
    ]
    for s in steps:
        g = s["grad"]
        gtxt = f"\\ndf/d{s['name']} = {_fmt_value(g)}" if g is not None else ""
        if s["kind"] == "input":
            lines.append(
                f'  {q(s["name"])} [shape=ellipse, style=filled, fillcolor="#e8f0fe", '
                f'label={q(s["name"])[:-1]}{gtxt}"];'
            )
        else:
            label = f"{s['name']} = {s['expr']}\\n= {_fmt_value(s['value'])}{gtxt}"
            shape = "doubleoctagon" if s["name"] == "f" else "box"
            lines.append(
                f'  {q(s["name"])} [shape={shape}, label={q(label)[:-1]}"];'.replace("\\\\n", "\\n")
            )
    for p, kids in children.items():
        for c, i in kids:
            lines.append(f"  {q(names[p])} -> {q(names[c])} [label={q(_local(c, i, names))}];")
    lines.append("}")
    return "\n".join(lines)


def explain(
    f: Callable, *inputs: Any, file: TextIO | None = None, compiled: bool = False
) -> Explanation:
    """Print the forward trace and the adjoint trace of ``f`` at ``inputs``.

    Args:
        f: function of NDArrays returning one NDArray (a block works too: its parameters
            appear under their names).
        inputs: the arguments; float NDArrays (or Python numbers) become the variables
            named after ``f``'s parameters (``x``, ``y``, ... otherwise).
        file: where to print (default ``sys.stdout``).
        compiled: print instead the straight-line code ``mx.jit`` compiles ``f`` to (or ``f``
            itself is a compiled function): its forward program and its adjoint program, one
            line per primitive -- the same two traces, as the machine runs them.

    Returns:
        An :class:`Explanation` with the lines, the steps and the DOT text.

    The notes' example (Eq. 2.1): ``mx.explain(lambda x: mx.nd.exp(mx.nd.exp(x) +
    mx.nd.exp(x) ** 2) + mx.nd.sin(mx.nd.exp(x) + mx.nd.exp(x) ** 2), x)`` prints
    ``a = exp(x), b = a², c = a + b, ...`` and ``df/dc = df/dd·exp(c) + df/de·cos(c)``;
    see ``docs/explain.md``.
    """
    if compiled:
        return _explain_compiled(f, inputs, file)
    info = _analyse(f, inputs)
    forward, adjoint, steps, children = _build(info)
    dot = _dot_text(info, steps, children)
    e = Explanation(forward, adjoint, steps, dot)
    print(e.text, file=file if file is not None else sys.stdout)
    return e


def _explain_compiled(f: Callable, inputs: tuple, file: TextIO | None) -> Explanation:
    from . import autograd
    from .trace import Compiled

    comp = f if isinstance(f, Compiled) else Compiled(f)
    args = []
    for a in inputs:
        if not isinstance(a, NDArray) and isinstance(a, (int, float, np.ndarray, list)):
            a = NDArray(np.asarray(a, dtype=np.float64))
        if isinstance(a, NDArray) and np.dtype(a.dtype).kind == "f":
            a = a.copy().detach()
            a.attach_grad()
        args.append(a)
    for _ in range(2):  # the first backward learns the shapes, the second is the final code
        with autograd.record():
            out = comp(*args)
        if not isinstance(out, NDArray):
            raise TapegradError(
                "explain(compiled=True): the function must return one NDArray. Fix: return "
                "the quantity whose gradient you want, e.g. the loss."
            )
        out.backward()
    if not comp.plans:
        raise TapegradError(
            f"explain(compiled=True): {comp.name} could not be compiled (it runs eagerly; "
            "see the warning). Fix: explain it without compiled=True."
        )
    src = comp.plans[-1].source
    forward = ["Compiled forward program:"] + src["forward (recording)"].rstrip().splitlines()
    adjoint = ["Compiled adjoint program (reverse mode):"] + src["backward"].rstrip().splitlines()
    e = Explanation(forward, adjoint, [], "")
    print(e.text, file=file if file is not None else sys.stdout)
    return e


def to_dot(f: Callable, *inputs: Any) -> str:
    """The recorded graph of ``f`` at ``inputs`` in Graphviz DOT: one box per operation (its
    formula, value and df/d of it), one ellipse per input, edges labelled with the local
    derivative.

    >>> import tapegrad as mx
    >>> from tapegrad.explain import to_dot
    >>> print(to_dot(lambda x: mx.nd.sin(x), mx.nd.array(0.0, dtype='float64'))
    ...       .splitlines()[-2])
      "x" -> "f" [label="cos(x)"];
    """
    info = _analyse(f, inputs)
    _, _, steps, children = _build(info)
    return _dot_text(info, steps, children)


def render(f: Callable, *inputs: Any, path: str) -> str:
    """Draw the graph of ``f`` at ``inputs`` to ``path`` (.svg, .png or .pdf) with Graphviz's
    ``dot`` program; returns ``path``."""
    fmt = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if fmt not in ("svg", "png", "pdf"):
        raise TapegradError(
            f"render: cannot tell the image format from {path!r}. Fix: end the path with .svg, "
            ".png or .pdf."
        )
    exe = shutil.which("dot")
    if exe is None:
        raise TapegradError(
            "render: the Graphviz 'dot' program is not installed, so the graph cannot be drawn. "
            "Fix: install Graphviz (apt install graphviz, brew install graphviz or conda "
            "install graphviz), or write to_dot(f, *inputs) to a .dot file and view it "
            "elsewhere."
        )
    dot = to_dot(f, *inputs)
    res = subprocess.run(
        [exe, f"-T{fmt}", "-o", path], input=dot.encode(), capture_output=True, check=False
    )
    if res.returncode != 0:
        raise TapegradError(
            f"render: dot failed ({res.returncode}): {res.stderr.decode(errors='replace').strip()}"
        )
    return path


# ``mx.explain`` is this function, but once ``tapegrad.explain`` (the module) has been imported
# the package attribute is the module; make both spellings work: the module is callable, and
# the function carries the module's other entry points.
class _CallableModule(types.ModuleType):
    def __call__(
        self, f: Callable, *inputs: Any, file: TextIO | None = None, compiled: bool = False
    ) -> Explanation:
        return explain(f, *inputs, file=file, compiled=compiled)


sys.modules[__name__].__class__ = _CallableModule
explain.to_dot = to_dot  # type: ignore[attr-defined]
explain.render = render  # type: ignore[attr-defined]
explain.Explanation = Explanation  # type: ignore[attr-defined]
