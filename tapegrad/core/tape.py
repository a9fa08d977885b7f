"""The backward pass: cotangents from the heads to the variables.

Nodes are processed in decreasing ``seq`` (children before parents), each once, after every
node that feeds a cotangent into it: a node enters a heap when it receives its first
cotangent, so no separate graph walk is needed for ``backward()``. Each rule's result is
summed down to its input's shape here, once (un-broadcasting), not in every rule.

A rule marked :data:`~tapegrad.core.primitive.ZERO` is never run: its input receives a
*symbolic* zero, which travels on to the variables without any arithmetic, so a variable
reached only through zero derivatives (the second derivative of ``relu``, a comparison, a
``floor``) gets a gradient of zeros instead of an error, as in MXNet and PyTorch.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any

import numpy as np

from ..base import GraphError, VersionError, fmt_shape
from .graph import _BOX, Leaf, wrap
from .primitive import LINEAR, RAW, TAPE, ZERO, Formula, Variadic, defprim
from .state import STATE
from .versions import LAST, changed_after, next_seq, note_change, tick

__all__ = ["backward_pass", "unbroadcast", "check_node"]

#: the symbolic zero cotangent
_Z = ZERO


def unbroadcast(xp: Any, g: Any, shape: tuple) -> Any:
    """Sum ``g`` down to ``shape`` (the inverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1
    )
    if axes:
        # raw arrays: the ufunc's reduce directly (xp.sum adds MXNet's wrapper layers)
        g = np.add.reduce(g, axis=axes) if xp is RAW else xp.sum(g, axis=axes, keepdims=False)
    if g.shape != shape:
        g = xp.reshape(g, shape=shape)
    return g


def _on_path(heads: list, targets: set) -> set:
    """Nodes on a path from a head to a target (only they need cotangents)."""
    from .graph import walk

    need: set = set()
    first = min((t.seq for t in targets), default=0)
    for n in walk(heads, first):  # a node older than every target cannot reach one
        if n in targets or any(p in need for p in n.parents if p is not None):
            need.add(n)
    return need


def backward_pass(
    heads: list,
    head_grads: list,
    targets: list | None = None,
    create_graph: bool = False,
    retain_graph: bool = False,
    train_mode: bool = True,
) -> list | None:
    """Reverse-mode sweep from ``heads``.

    Args:
        heads: output arrays (each must carry a graph node).
        head_grads: cotangent of each head (an array, or None meaning ones).
        targets: graph nodes whose gradients to return (``autograd.grad``); ``None`` means
            "write into the gradient buffer of every variable reached" (``backward``).
        create_graph: run the rules on recorded operations, so the result is differentiable.
        retain_graph: keep the graph for another backward pass.
        train_mode: the training switch the rules see during the pass.

    Returns:
        the gradients of ``targets`` (``None`` for a target no head reaches; zeros for one
        reached only through zero derivatives), or ``None``.
    """
    for h in heads:
        if h._node is None:
            raise GraphError(
                f"Cannot differentiate an array of shape {fmt_shape(h.shape)}: it is not in a "
                "computational graph. Fix: call attach_grad() on the inputs and compute the "
                "output inside `with autograd.record():`."
            )
    flags = STATE.flags
    if flags.tracing is not None:  # compiling a function: its derivatives are part of it
        if targets is None:
            flags.tracing.fail("backward() (writing .grad buffers) inside a compiled function")
        create_graph = True
    tape = bool(create_graph or flags.levels)
    xp = TAPE if tape else RAW
    need = tset = None
    if targets is not None:
        tset = set(targets)
        need = _on_path([h._node for h in heads], tset)
    grads: dict = {}
    heap: list = []
    newest = 0  # the newest head's tick
    for h, hg in zip(heads, head_grads):
        if hg is None:
            d = h._data
            if type(d) is np.ndarray:
                g = np.empty(d.shape, dtype=d.dtype)
                g.fill(1)  # np.ones costs microseconds more (a Python-level function)
            else:  # a NumPy scalar (the result of an operation on 0-d arrays)
                g = type(d)(1)
            g = wrap(g) if tape else g
        else:
            g = hg if tape else hg._data
        k = h._node
        if k.seq > newest:
            newest = k.seq
        if k in grads:
            grads[k] = grads[k] + g
        else:
            grads[k] = g
            heap.append((-k.seq, k))
    if len(heap) > 1:
        heapify(heap)
    found: dict = {}
    saved_rec, saved_train = flags.recording, flags.training
    flags.recording, flags.training = bool(create_graph), train_mode
    last_change = LAST[0]
    # a freed node keeps the tick of the pass that freed it: a head recorded after that pass
    # reached it through a value carried over from an earlier record() block, which is a
    # constant (as in MXNet: truncated backpropagation through time)
    freed = next_seq()
    try:
        while heap:
            n = heappop(heap)[1]
            g = grads.pop(n)
            if type(n) is Leaf:
                found[n] = g
                continue
            if need is not None:
                if n not in need:
                    continue
                if n in tset:  # a target that is a node (a fresh variable on a graph)
                    found[n] = g
            args = n.args
            if args is None or n.seq < last_change:
                if args is None and type(n.data) is int and n.data < newest:
                    continue  # freed before the heads were recorded: a constant
                # freed (a second backward through it), or changed in place since recorded
                check_node(n)
            if g is _Z:
                for p in n.parents:  # a symbolic zero passes on without arithmetic
                    if p is not None and p not in grads and (need is None or p in need):
                        grads[p] = _Z
                        heappush(heap, (-p.seq, p))
                if not retain_graph:
                    n.args, n.data = None, freed
                continue
            if tape:
                ans = wrap(n.ans, n, n.ans_tan)
            else:
                ans = n.ans
                args = n.data
            kw = n.kwargs
            # rules get their arguments spelled out where they can: a call with *args costs
            # about 60 ns more than a direct one, and most nodes have one or two inputs
            k = 0 if kw else len(args)
            vjps = n.prim.vjps
            i = 0
            for p in n.parents:
                if p is not None and (need is None or p in need):
                    rule = vjps[i]
                    if rule is ZERO:  # also an input that is not differentiable (an index)
                        if p not in grads:
                            grads[p] = _Z
                            heappush(heap, (-p.seq, p))
                    else:
                        if k == 1:
                            gi = rule(xp, g, ans, args[0])
                        elif k == 2:
                            gi = rule(xp, g, ans, args[0], args[1])
                        else:
                            gi = rule(xp, g, ans, *args, **kw)
                        if gi.shape != p.shape:
                            gi = unbroadcast(xp, gi, p.shape)
                        old = grads.get(p)
                        if old is None:
                            grads[p] = gi
                            heappush(heap, (-p.seq, p))
                        elif old is _Z:
                            grads[p] = gi
                        else:
                            grads[p] = old + gi
                i += 1
            if not retain_graph:
                n.args, n.data = None, freed
    finally:
        flags.recording, flags.training = saved_rec, saved_train
    if targets is not None:
        return [
            _materialize(found[t], t, create_graph, heads) if t in found else None for t in targets
        ]
    for n, g in found.items():
        store_grad(n, g, tape)
    return None


def _materialize(g: Any, leaf: Leaf, create_graph: bool, heads: list) -> Any:
    """A gradient for ``autograd.grad``: zeros for a symbolic zero; with ``create_graph``, a
    constant result (no graph of its own: the derivative of a linear op, a dropout mask) is
    tied to the heads by a zero derivative, so differentiating it again gives zeros."""
    if g is _Z:
        g = np.zeros(leaf.shape, dtype=leaf.dtype)
    if not create_graph:
        return g
    box = _BOX[0]
    if type(g) is not box:
        g = wrap(g)
    if g._node is None and g._tan is None:
        with_rec = STATE.flags.recording
        STATE.flags.recording = True
        try:
            g = TAPE.depends_on(g, *heads)
        finally:
            STATE.flags.recording = with_rec
    return g


def check_node(n: Any) -> None:
    """Raise a clear error for a freed node, or one whose saved values were changed in place
    after it was recorded (directly, or through another array on the same memory)."""
    name = n.prim.name
    if n.args is None:
        raise GraphError(
            f"backward through operator '{name}' a second time: its graph was freed by the "
            "first backward pass. Fix: pass retain_graph=True to the first backward() (or "
            "autograd.grad), or record the computation again."
        )
    fix = "Fix: change a copy (x.copy()) instead, or record the computation again after the change."
    box = _BOX[0]
    for a in n.args:
        if type(a) is box and a._version > n.seq:
            raise VersionError(
                f"an input of operator '{name}' (shape {fmt_shape(a.shape)}, {a.dtype}) was "
                "changed in place after the operator was recorded, so its gradient would be "
                f"wrong. {fix}"
            )
    saved = (*n.data, n.ans)
    for i, d in enumerate(saved):
        if changed_after(d, n.seq):
            what = "the output" if i == len(saved) - 1 else "an input"
            raise VersionError(
                f"{what} of operator '{name}' (shape {fmt_shape(d.shape)}, {d.dtype}) "
                "shares memory with an array that was changed in place after the operator "
                "was recorded (the array itself, or a view: a slice, reshape, transpose, "
                f"detach() or a gradient buffer), so its gradient would be wrong. {fix}"
            )


def store_grad(leaf: Leaf, g: Any, tape: bool) -> None:
    """Write or add a gradient into a variable's buffer according to its grad_req. The
    buffer's memory is marked changed, so a graph that saved it raises a VersionError
    instead of differentiating against the new values."""
    buf = leaf.grad
    req = leaf.grad_req
    if req == "null" or buf is None:
        return
    leaf.fresh = True
    if g is _Z:
        if req == "add":
            return
        g = np.zeros(leaf.shape, dtype=leaf.dtype)
    elif tape:
        if g._node is not None or g._tan is not None:
            # a differentiable gradient replaces the buffer's content and keeps its graph
            if req == "add":
                g = buf + g
            buf._data = np.array(g._data, dtype=leaf.dtype)
            buf._node, buf._tan = g._node, g._tan
            buf._version = tick()
            return
        g = g._data
    bd = buf._data
    if req == "add":
        if type(bd) is np.ndarray:
            bd += g
            buf._version = note_change(bd)
        else:
            buf._data = bd + g
            buf._version = tick()
    elif type(bd) is np.ndarray and bd.shape == g.shape:
        bd[...] = g
        buf._version = note_change(bd)
    else:
        buf._data = np.array(g, dtype=leaf.dtype)
        buf._version = tick()


def _depends_on_jet(ctx: Any, node: Any, args: list, ans: Any) -> list:
    g = args[0]
    return [ans] + (list(g[1:]) if type(g) is list else [None] * ctx.K)


# ``depends_on(g, *heads)`` is ``g``, tied to the heads' graph by a zero derivative (see
# _materialize): the gradient of a linear function is still a function of its inputs
defprim(
    "depends_on",
    lambda g, *heads: g,
    Variadic(lambda i: (lambda xp, g, ans, *a: g) if i == 0 else ZERO),
    LINEAR,
    taylor=_depends_on_jet,
    explain=Formula("{0}", "1"),
)
