"""The engine: recording state, primitives, tape nodes, reverse and forward mode.

Everything about differentiation lives in this one file; the operators themselves are
declared in ``tapegrad/ops/`` through :func:`defprim`.

How it fits together
--------------------
* A :class:`Primitive` wraps one NumPy function (``impl``) together with its derivative
  rules: one VJP per array input and one JVP. Rules are written against an array
  namespace ``xp`` they are *given*:

  - :data:`RAW` maps every primitive name to its plain NumPy ``impl``. A first-order
    backward pass runs the rules on raw ``numpy`` arrays: no wrapping, no recording.
  - :data:`TAPE` maps every primitive name to the :class:`Primitive`'s call (a plain
    function whose ``prim`` attribute is the Primitive). With
    ``create_graph=True`` (or while forward-mode tangents are active) the same rules run on
    NDArrays, so the backward pass is itself recorded and higher derivatives follow from the
    same formulas. No derivative formula exists twice.

* Calling a primitive inside ``autograd.record()`` on an input that carries a graph node
  (a marked variable, or the output of an earlier recorded operation) attaches a
  :class:`Node` to the output: the primitive, its inputs, the keyword arguments, the output
  value and the input versions. Nothing is recorded outside ``record()`` or for values no
  variable reaches.

* :func:`backward_pass` walks the nodes from the heads in reverse topological order, runs
  the VJP rules, sums cotangents, un-broadcasts each one to its input's shape (done here,
  once, not in every rule) and frees the graph unless asked to keep it.

* Forward mode: an NDArray may carry tangents in ``_tan``, a dict ``level -> tangent``.
  Each ``forward.jvp`` call opens a new level (a fresh integer) so nested derivatives never
  confuse their perturbations: the tangent of level ``L`` is computed from inputs that carry
  only the levels *below* ``L`` (exactly the nesting of HIPS autograd's boxes). The
  tangent computations are ordinary recorded operations, so reverse-over-forward works, and
  the tape keeps the inputs with their tangents, so forward-over-reverse (Hessian-vector
  products) works too.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import threading
import weakref
from collections.abc import Callable, Sequence
from heapq import heapify, heappop, heappush
from types import SimpleNamespace
from typing import Any

import numpy as np

from .base import GraphError, ShapeError, VersionError, fmt_shape, op_error

__all__ = [
    "STATE",
    "Primitive",
    "Node",
    "new_node",
    "Leaf",
    "defprim",
    "RAW",
    "TAPE",
    "PRIMITIVES",
    "ELEMENTWISE",
    "LINEAR",
    "backward_pass",
]


class _Flags:
    """One thread's switches: recording, training, and the active forward-mode levels."""

    __slots__ = ("recording", "training", "levels")

    def __init__(self) -> None:
        self.recording = False
        self.training = False
        self.levels: list[int] = []


def _flag(name: str) -> property:
    return property(lambda s: getattr(s.flags, name), lambda s, v: setattr(s.flags, name, v))


class _State(threading.local):
    """Per-thread switches. Each access to a thread-local attribute costs about 70 ns (W1
    made 19 a step), so the hot paths (a primitive's call, ``record()``, ``backward_pass``)
    fetch this thread's :class:`_Flags` once, ``STATE.flags``, and use its plain attributes;
    ``STATE.recording``, ``.training`` and ``.levels`` read and write the same flags."""

    def __init__(self) -> None:
        self.flags = _Flags()

    recording = _flag("recording")
    training = _flag("training")
    levels = _flag("levels")


STATE = _State()

#: Every primitive, by name.
PRIMITIVES: dict[str, Primitive] = {}
#: Raw namespace: primitive name -> NumPy implementation (first-order backward).
RAW = SimpleNamespace()
#: Tape namespace: primitive name -> the Primitive's call (recorded, differentiable backward).
TAPE = SimpleNamespace()

#: JVP marker: the op is elementwise, its JVP is the VJP formula applied to the tangent.
ELEMENTWISE = "elementwise"
#: JVP marker: the op is linear in its differentiable inputs; its JVP is the op itself.
LINEAR = "linear"

_NDArray: Any = None  # set by tapegrad.ndarray (avoids an import cycle)
_new = object.__new__  # NDArray and Node have no __new__ of their own; a global is quicker
#: One clock orders graph nodes and in-place changes alike: every node and every change
#: takes the next tick, so "changed after this node was recorded" is "tick > node.seq".
_SEQ = itertools.count(1)
#: ``MUTATIONS[0]``: the tick of the latest in-place change (0 before any).
MUTATIONS = [0]
#: Recent in-place changes of memory, ``(counter, where)`` in counter order (at most
#: ``2 * _LOG_MAX`` entries, trimmed to the newest ``_LOG_MAX``). ``where`` holds the memory
#: weakly (a weak reference, plus the view's layout for a view) so the log never keeps an
#: array alive. A backward pass compares the memory a node saved with the arrays
#: changed after it was recorded, which catches changes made through another NDArray on the
#: same memory (a slice, ``reshape``, ``detach()``, ``.T``).
MUTATION_LOG: list = []
_LOG_MAX = 4096


def note_mutation(data: Any) -> int:
    """Count one in-place change of ``data`` (a NumPy array) and return its tick."""
    c = tick()
    if type(data) is np.ndarray:
        log = MUTATION_LOG
        if data.base is None:
            log.append((c, weakref.ref(data)))
        else:
            own = _owner(data)
            if type(own) is np.ndarray and own.flags.c_contiguous:
                off = data.__array_interface__["data"][0] - own.__array_interface__["data"][0]
                layout = (data.shape, data.dtype, off, data.strides)
                log.append((c, (weakref.ref(own), layout)))
            else:  # memory NumPy does not own (a buffer, a memory map): keep the view
                log.append((c, data))
        if len(log) > 2 * _LOG_MAX:
            del log[:_LOG_MAX]
    return c


def tick() -> int:
    """Take a tick of the clock for an in-place change (the new ``_version`` of an array)."""
    c = MUTATIONS[0] = next(_SEQ)
    return c


def _wrap(data: Any, node: Any = None, tan: Any = None) -> Any:
    """A new NDArray around ``data`` (no copy)."""
    r = _new(_NDArray)
    r._data = data
    r._node = node
    r._tan = tan
    r._version = 0
    return r


class Leaf:
    """Graph node of a marked variable (``attach_grad`` / ``mark_variables``).

    Holds the gradient buffer and the grad_req. ``fresh`` tells the Trainer that a backward
    pass wrote the gradient since the last update (MXNet's stale-gradient check).
    """

    __slots__ = ("shape", "dtype", "grad", "grad_req", "fresh", "seq", "__weakref__")
    parents = ()

    def __init__(self, shape: tuple, dtype: Any, grad: Any, grad_req: str) -> None:
        self.seq = next(_SEQ)
        self.shape = shape
        self.dtype = dtype
        self.grad = grad
        self.grad_req = grad_req
        self.fresh = False


class Node:
    """Tape entry of one recorded primitive call.

    Attributes:
        prim: the Primitive.
        args: the call's positional inputs (NDArrays or Python constants), kept for the rules;
            ``None`` once a backward pass freed the node.
        kwargs: static keyword arguments.
        parents: graph node of each input, ``None`` where the input is constant.
        data: the raw NumPy values of ``args`` (what a first-order backward pass uses).
        ans: the output's raw data; ``ans_tan`` its forward-mode tangents, if any.
        seq: the clock's tick when recorded; parents always have smaller ticks, so sorting
            by ``seq`` gives a topological order, and an input whose ``_version`` (the tick of
            its last in-place change) is larger was changed afterwards.
        dirty: the output itself was changed in place after recording.

    Nodes are made by :func:`new_node` (a plain function: cheaper than ``__init__``).
    """

    __slots__ = (
        "prim",
        "args",
        "data",
        "kwargs",
        "parents",
        "ans",
        "ans_tan",
        "shape",
        "seq",
        "dirty",
        "__weakref__",
    )


def new_node(
    prim: Primitive, args: Sequence, kwargs: dict, parents: Sequence, ans: Any, data: Any = None
) -> Node:
    """The tape entry of one recorded call of ``prim`` (see :class:`Node`)."""
    n = _new(Node)
    n.prim = prim
    n.args = args
    n.data = data
    n.kwargs = kwargs
    n.parents = parents
    n.ans = ans
    n.ans_tan = None
    n.shape = ans.shape
    n.seq = next(_SEQ)
    n.dirty = False
    return n


class Primitive:
    """One differentiable operation: NumPy implementation plus VJP and JVP rules.

    Args:
        name: operator name used in messages and in the namespaces.
        impl: NumPy function ``impl(*arrays, **static_kwargs) -> ndarray``.
        vjps: one rule per positional input, ``vjp(xp, g, ans, *args, **kwargs)`` returning
            the cotangent of that input (any broadcastable shape: the engine sums it down to
            the input's shape). ``None`` for an input that is not differentiable (indices,
            conditions). ``vjps=None`` marks the whole op as non-differentiable: it is
            never recorded.
        jvp: ``jvp(xp, tangents, ans, *args, **kwargs)`` where ``tangents[i]`` is ``None``
            for inputs without a tangent; or :data:`ELEMENTWISE` / :data:`LINEAR`.

    Calling the primitive with NDArrays returns an NDArray, records a node when needed and
    propagates forward-mode tangents.
    """

    __slots__ = ("name", "impl", "vjps", "jvp", "doc", "call")

    def __init__(self, name: str, impl: Callable, vjps: Sequence | None, jvp: Any) -> None:
        self.name = name
        self.impl = impl
        self.vjps = vjps if vjps is None or hasattr(vjps, "make") else tuple(vjps)
        self.jvp = jvp
        self.doc = impl.__doc__
        self.call = self._caller()

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)

    def _caller(self) -> Callable:
        """The call as a plain function: Python calls one directly, without the C detour an
        instance's ``__call__`` takes (the namespaces and ``nd`` functions hold it)."""

        def call(*args: Any, **kwargs: Any) -> Any:
            # The hot path: keep it short. Unary and binary calls (nearly all of them) take
            # straight-line code; the general case loops over the inputs once.
            if kwargs and "out" in kwargs:
                kw = dict(kwargs)
                out = kw.pop("out")
                return write_out(self.name, out, call(*args, **kw))
            nd = _NDArray
            nargs = len(args)
            if nargs == 1:
                a = args[0]
                if type(a) is not nd:
                    return self._generic(args, kwargs)
                if a._tan is not None and STATE.flags.levels:
                    return self._call_fw(args, [a._data], kwargs)
                d = a._data
                try:
                    out = self.impl(d, **kwargs) if kwargs else self.impl(d)
                except (ValueError, IndexError, TypeError) as e:
                    raise op_error(self.name, [d], kwargs, e) from None
                r = _new(nd)
                r._data = out
                r._tan = None
                r._version = 0
                n = a._node
                if n is not None and STATE.flags.recording and self.vjps is not None:
                    r._node = new_node(self, args, kwargs, (n,), out, (d,))
                else:
                    r._node = None
                return r
            if nargs == 2:
                a, b = args
                if type(a) is nd:
                    da, na = a._data, a._node
                    fw = a._tan is not None
                else:
                    da, na, fw = a, None, False
                if type(b) is nd:
                    db, nb = b._data, b._node
                    fw = fw or b._tan is not None
                else:
                    db, nb = b, None
                data = (da, db)
                parents = (na, nb)
                need = na is not None or nb is not None
            else:
                data = []
                parents = []
                need = fw = False
                for a in args:
                    if type(a) is nd:
                        data.append(a._data)
                        n = a._node
                        parents.append(n)
                        if n is not None:
                            need = True
                        if a._tan is not None:
                            fw = True
                    else:
                        data.append(a)
                        parents.append(None)
            if fw and STATE.flags.levels:
                return self._call_fw(args, list(data), kwargs)
            try:
                if nargs == 2 and not kwargs:
                    out = self.impl(da, db)  # spelled out: a *data call costs more
                else:
                    out = self.impl(*data, **kwargs)
            except (ValueError, IndexError, TypeError) as e:
                raise op_error(self.name, list(data), kwargs, e) from None
            r = _new(nd)
            r._data = out
            r._tan = None
            r._version = 0
            if need and STATE.flags.recording and self.vjps is not None:
                r._node = new_node(self, args, kwargs, parents, out, data)
            else:
                r._node = None
            return r

        call.__name__ = call.__qualname__ = self.name
        call.__doc__, call.prim = self.doc, self
        return call

    def _generic(self, args: tuple, kwargs: dict) -> Any:
        """A call whose only input is not an NDArray (a NumPy array or a number)."""
        try:
            out = self.impl(*args, **kwargs)
        except (ValueError, IndexError, TypeError) as e:
            raise op_error(self.name, list(args), kwargs, e) from None
        return _wrap(out)

    def _call_fw(self, args: tuple, data: list, kwargs: dict) -> Any:
        """Slow path: some input carries forward-mode tangents of an active level."""
        nd = _NDArray
        active = STATE.flags.levels
        present = sorted(
            {lv for a in args if type(a) is nd and a._tan for lv in a._tan if lv in active}
        )
        out = self.impl(*data, **kwargs)
        node = None
        parents = [a._node if type(a) is nd else None for a in args]
        if STATE.flags.recording and self.vjps is not None and any(p is not None for p in parents):
            node = new_node(self, args, kwargs, parents, out, data)
        if self.vjps is None or self.jvp is None:
            if self.vjps is not None and present:
                raise NotImplementedError(f"forward-mode rule for '{self.name}' is not implemented")
            return _wrap(out, node)
        tans: dict = {}
        for lv in present:
            # inputs as seen at level lv: only the tangents of lower levels
            prim_args = [_below(a, lv) if type(a) is nd else a for a in args]
            ts = [a._tan.get(lv) if type(a) is nd and a._tan else None for a in args]
            ans = _wrap(out, node, dict(tans) or None)
            t = self._jvp(ts, ans, prim_args, kwargs)
            if t is not None:
                tans[lv] = t
        res = _wrap(out, node, tans or None)
        if node is not None:
            node.ans_tan = res._tan
        return res

    def _jvp(self, ts: list, ans: Any, args: list, kwargs: dict) -> Any:
        """Tangent of the output for input tangents ``ts`` (None = zero)."""
        if all(t is None for t in ts):
            return None
        rule = self.jvp
        if rule == ELEMENTWISE:
            out = None
            for i, t in enumerate(ts):
                if t is None or self.vjps[i] is None:
                    continue
                c = self.vjps[i](TAPE, t, ans, *args, **kwargs)
                out = c if out is None else out + c
            if out is not None and out.shape != ans.shape:
                out = TAPE.broadcast_to(out, shape=ans.shape)
            return out
        if rule == LINEAR:
            filled = []
            for i, (a, t) in enumerate(zip(args, ts)):
                if self.vjps[i] is None:
                    filled.append(a)  # static input (indices, condition): passed through
                elif t is not None:
                    filled.append(t)
                elif type(a) is _NDArray:
                    filled.append(_wrap(np.zeros_like(a._data)))
                else:
                    filled.append(0.0)
            out = self.call(*filled, **kwargs)
            return out
        return rule(TAPE, ts, ans, *args, **kwargs)


def _below(a: Any, level: int) -> Any:
    """View of ``a`` that carries only the tangents of levels lower than ``level``."""
    tan = a._tan
    if not tan or all(lv < level for lv in tan):
        return a
    kept = {lv: t for lv, t in tan.items() if lv < level}
    v = _wrap(a._data, a._node, kept or None)
    v._version = a._version
    return v


def defprim(name: str, impl: Callable, vjps: Sequence | None = None, jvp: Any = None) -> Primitive:
    """Declare a primitive and add it to :data:`RAW` and :data:`TAPE`.

    >>> import numpy as np
    >>> from tapegrad.engine import defprim, ELEMENTWISE
    >>> cube = defprim("cube_example", lambda x: x ** 3,
    ...                [lambda xp, g, ans, x: g * 3 * x * x], ELEMENTWISE)
    >>> cube.name
    'cube_example'
    """
    if name in PRIMITIVES:
        raise ValueError(f"primitive {name!r} is declared twice")
    p = Primitive(name, impl, vjps, jvp)
    PRIMITIVES[name] = p
    setattr(RAW, name, impl)
    setattr(TAPE, name, p.call)
    return p


def write_out(name: str, out: Any, result: Any) -> Any:
    """MXNet's ``out=`` argument: copy ``result`` into the existing array ``out`` and return
    ``out`` (recorded when ``result`` is; refused, like any in-place change, when ``out`` is
    on the graph being recorded)."""
    if out is None:
        return result
    if type(out) is not _NDArray or type(result) is not _NDArray:
        raise TypeError(
            f"operator '{name}': out= must be an NDArray and the operator must return one "
            f"array (got out of type {type(out).__name__}). Fix: drop out= and assign the "
            "result, out[:] = result."
        )
    if out.shape != result.shape:
        raise ShapeError(
            f"operator '{name}': out= has shape {fmt_shape(out.shape)} but the result has "
            f"shape {fmt_shape(result.shape)}. Fix: pass an out array of shape "
            f"{fmt_shape(result.shape)}."
        )
    out[...] = result
    return out


# --------------------------------------------------------------------------- backward


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


def _graph(roots: list) -> list:
    """Nodes reachable from ``roots``, children before parents (decreasing ``seq``)."""
    seen = set(roots)
    stack = list(seen)
    while stack:
        for p in stack.pop().parents:
            if p is not None and p not in seen:
                seen.add(p)
                stack.append(p)
    return sorted(seen, key=_SEQ_OF, reverse=True)


_SEQ_OF = operator.attrgetter("seq")


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
        heads: output NDArrays (each must carry a graph node).
        head_grads: cotangent of each head (NDArray or None meaning ones).
        targets: nodes whose gradients to return (``autograd.grad``); ``None`` means
            "write into the gradient buffers of every reached variable" (``backward``).
        create_graph: run the rules through recorded ops so the result is differentiable.
        retain_graph: keep the graph for another backward pass.
        train_mode: training flag seen by the rules during the pass.

    Returns:
        the gradients of ``targets`` (``None`` entries for unreached ones), or ``None``.
    """
    for h in heads:
        if h._node is None:
            raise GraphError(
                f"Cannot differentiate an array of shape {fmt_shape(h.shape)}: it is not in a "
                "computational graph. Fix: call attach_grad() on the inputs and compute the "
                "output inside `with autograd.record():`."
            )
    flags = STATE.flags  # this thread's switches (one thread-local access)
    tape = bool(create_graph or flags.levels)
    xp = TAPE if tape else RAW
    need = None
    if targets is not None:
        # only nodes on a path to a target get cotangents
        tset = set(targets)
        need = set()
        for n in reversed(_graph([h._node for h in heads])):
            if n in tset or any(p in need for p in n.parents if p is not None):
                need.add(n)
    grads: dict = {}
    heap: list = []
    for h, hg in zip(heads, head_grads):
        if hg is None:
            d = h._data
            if type(d) is np.ndarray:
                g = np.empty(d.shape, dtype=d.dtype)
                g.fill(1)  # np.ones costs microseconds more (a Python-level function)
            else:  # a NumPy scalar (the result of an operation on 0-d arrays)
                g = type(d)(1)
            g = _wrap(g) if tape else g
        else:
            g = hg if tape else hg._data
        k = h._node
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
    last_change = MUTATIONS[0]
    changed: dict = {}  # arrays changed in place since recording (see _changed_since)
    try:
        # Nodes come out in decreasing creation order, so every node is processed after
        # all the nodes that feed cotangents into it (their seq is larger). A node enters
        # the heap when it receives its first cotangent: no separate graph walk is needed.
        while heap:
            n = heappop(heap)[1]
            g = grads.pop(n)
            if type(n) is Leaf:
                found[n] = g
                continue
            if need is not None:
                if n not in need:
                    continue
                if n in tset:
                    found[n] = g
            args = n.args
            if args is None or n.dirty or n.seq < last_change:
                # freed, or something was changed in place since: check this node's inputs
                _check_node(n, changed)
            if tape:
                ans = _wrap(n.ans, n, n.ans_tan)
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
                    if rule is not None:
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
                        else:
                            grads[p] = old + gi
                i += 1
            if not retain_graph:
                n.args = n.data = None
    finally:
        flags.recording, flags.training = saved_rec, saved_train
    if targets is not None:
        return [found.get(t) for t in targets]
    for n, g in found.items():
        _store_grad(n, g, tape)
    return None


def _check_node(n: Node, cache: dict) -> None:
    """Raise a clear error for a freed node or a mutated saved value."""
    if n.args is None:
        raise GraphError(
            f"backward through operator '{n.prim.name}' a second time: its graph was freed by "
            "the first backward pass. Fix: pass retain_graph=True to the first backward() "
            "(or autograd.grad), or record the computation again."
        )
    if n.dirty:
        raise VersionError(
            f"the output of operator '{n.prim.name}' (shape {fmt_shape(n.shape)}) was changed "
            "in place after it was recorded, so its gradient would be wrong. Fix: modify a "
            "copy (x.copy()) instead, or record the computation again after the change."
        )
    for a in n.args:
        if type(a) is _NDArray and a._version > n.seq:
            raise VersionError(
                f"an input of operator '{n.prim.name}' (shape {fmt_shape(a.shape)}, "
                f"{a.dtype}) was changed in place after the operator was recorded, so its "
                "gradient would be wrong. Fix: change a copy (x.copy()) instead, or record "
                "the computation again after the change."
            )
    changed = _changed_since(n.seq, cache)
    if not changed:
        return
    for i, a in enumerate((*n.args, n.ans)):
        d = a._data if type(a) is _NDArray else a
        if type(d) is not np.ndarray:
            continue
        b = d.base
        ms = changed.get(id(d) if b is None else id(_owner(b)))
        if ms and any(c > n.seq and _overlap(d, m) for c, m in ms):
            what = "the output" if i == len(n.args) else "an input"
            raise VersionError(
                f"{what} of operator '{n.prim.name}' (shape {fmt_shape(d.shape)}, {d.dtype}) "
                "shares memory with an array that was changed in place after the operator "
                "was recorded (through a view: a slice, reshape, transpose or detach()), so "
                "its gradient would be wrong. Fix: change a copy (x.copy()) instead, or "
                "record the computation again after the change."
            )


def _owner(a: Any) -> Any:
    """The object that owns the memory of NumPy array ``a`` (the end of its ``base`` chain)."""
    b = getattr(a, "base", None)
    while b is not None:
        a = b
        b = getattr(a, "base", None)
    return a


def _changed_since(since: int, cache: dict) -> dict | None:
    """The arrays changed in place after tick ``since`` that are still alive, as
    ``{id of the memory's owner: [(counter, array), ...]}``, or None if nothing changed.

    ``cache`` lives for one backward pass; the log is scanned once per pass, backwards, as
    far as the oldest node asks (callers filter by counter).
    """
    if since in cache:
        return cache[since]
    log = MUTATION_LOG
    i = bisect.bisect_right(log, since, key=_FIRST)
    mp = None
    if i < len(log):
        start = cache.get("start", len(log))  # log[start:] is already in cache["map"]
        mp = cache.setdefault("map", {})
        if i < start:
            for c, ref in log[i:start]:
                m = _logged(ref)
                if m is not None:
                    mp.setdefault(id(_owner(m)), []).append((c, m))
            cache["start"] = i
    cache[since] = mp
    return mp


_FIRST = operator.itemgetter(0)


def _logged(ref: Any) -> Any:
    """The changed memory of one log entry, or None if it was freed."""
    if type(ref) is np.ndarray:
        return ref
    if type(ref) is tuple:
        own = ref[0]()
        if own is None:
            return None
        shape, dtype, off, strides = ref[1]
        return np.ndarray(shape, dtype, buffer=own, offset=off, strides=strides)
    return ref()


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=100_000))
    except np.exceptions.TooHardError:  # pragma: no cover - pathological strides
        return True


def _store_grad(leaf: Leaf, g: Any, tape: bool) -> None:
    """Write or add a gradient into a variable's buffer according to its grad_req."""
    buf = leaf.grad
    req = leaf.grad_req
    if req == "null" or buf is None:
        return
    if tape:
        if g._node is not None or g._tan is not None:
            # a differentiable gradient replaces the buffer's content and keeps its graph
            if req == "add":
                g = buf + g
            buf._data = np.array(g._data, dtype=leaf.dtype)
            buf._node, buf._tan = g._node, g._tan
            leaf.fresh = True
            return
        g = g._data
    bd = buf._data
    if req == "add":
        if type(bd) is np.ndarray:
            bd += g
        else:
            buf._data = bd + g
    elif type(bd) is np.ndarray and bd.shape == g.shape:
        bd[...] = g
    else:
        buf._data = np.array(g, dtype=leaf.dtype)
    leaf.fresh = True
