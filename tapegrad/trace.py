"""Trace once, run compiled straight-line NumPy, to any order: ``jit`` and ``hybridize``.

The first call of a compiled function runs the Python code once, recording, on fresh
variables standing for its array arguments (*trace by value*). The recorded primitive calls
reachable from the outputs become a :class:`Plan`: a list of steps, each a primitive, its
inputs (arguments, captured arrays, earlier steps or constants) and its static arguments. The
plan is compiled to Python source (``compile``/``exec``) that calls the primitives' NumPy
implementations directly -- no NDArray wrappers, no nodes, no per-operation switches -- and,
for the backward pass, their VJP rules on raw arrays, in reverse, with the un-broadcasting
known from the trace. That straight-line code *is* the lecture notes' forward trace and
adjoint trace (``Compiled.source``).

Inside ``autograd.record()`` a compiled call is **one node** on the tape whose VJP is the
compiled backward. A differentiable backward (``create_graph=True``, forward-over-reverse)
calls the backward as a compiled function of its own (``jit`` of the plan's VJP, traced on
first use), so ``grad(jit(f))``, ``jit(grad(f))`` and every higher order work; Taylor mode
(the ``sciml`` layers, ``functional.hvp``) replays the plan with jets.

Plans are cached by the arguments' shapes and dtypes, the training switch and the static
(non-array) arguments; a miss retraces, and after ``MAX_TRACES`` plans the function runs
eagerly, saying so once. A trace that cannot be trusted falls back to eager execution for
good, with a one-time warning naming the line: code that reads a traced value (``bool(x)``,
``asnumpy``, ``asscalar``, ``item``: data-dependent control flow), index arrays computed from
traced values, an in-place change of a traced value, a first-order ``backward()`` inside the
function. Random operations (Dropout, ``nd.random``) draw new numbers on every call; in-place
updates of captured arrays (BatchNorm's running statistics) are replayed by the compiled code.

>>> import tapegrad as mx
>>> from tapegrad import autograd, nd
>>> f = mx.jit(lambda x: (nd.exp(x) * x).sum())
>>> x = nd.array([1.0, 2.0], dtype="float64"); x.attach_grad()
>>> with autograd.record():
...     y = f(x)
>>> y.backward()
>>> [round(v, 4) for v in x.grad.asnumpy().tolist()]     # (1 + x) exp(x)
[5.4366, 22.1672]
"""

from __future__ import annotations

import functools
import itertools
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import TapegradError
from .core import (
    RAW,
    STATE,
    ZERO,
    Leaf,
    Variadic,
    new_node,
    primitive,
    recording,
    unbroadcast,
    walk,
    wrap,
)
from .core.versions import next_seq, note_change
from .ndarray.ndarray import NDArray
from .random import generator
from .trace_passes import Emitter, eliminate_common, ufunc_of

__all__ = ["jit", "Compiled", "Plan", "TraceFallback", "MAX_TRACES"]

#: plans kept per compiled function before it runs eagerly
MAX_TRACES = 16
_PKG = __file__.rsplit("/", 1)[0]


class TraceFallback(Exception):
    """Raised inside a trace when it cannot be trusted; the function then runs eagerly."""


def _user_line() -> str:
    """The innermost line of user code (outside tapegrad) on the stack."""
    for fr in reversed(traceback.extract_stack()[:-2]):
        if not fr.filename.startswith(_PKG):
            return f"{fr.filename}:{fr.lineno} ({(fr.line or '').strip()})"
    return "(tapegrad internals)"


class Tracer:
    """What a trace collects besides the recorded graph: in-place writes of captured arrays
    and the ticks of ``pause()`` scopes (their operations replay but get no gradient)."""

    def __init__(self) -> None:
        self.start = next_seq()
        self.inputs: dict = {}  # input variable's leaf -> argument index
        self.writes: list = []  # (tick, argument index, key, value)
        self.paused: list = []  # [start, end) ticks
        self.copied: set = set()  # argument variables given their own memory for the trace

    def fail(self, what: str) -> None:
        raise TraceFallback(f"{what} at {_user_line()}")

    def read(self, a: Any, what: str) -> None:
        """A traced value is read by Python (data-dependent control flow)."""
        if a._node is not None:
            self.fail(f"{what} reads the value of a traced array")

    def writable(self, a: Any) -> bool:
        """An in-place change of a traced array: allowed (and replayed) for an argument,
        otherwise the trace gives up (eager code would have raised or changed a value the
        compiled code cannot reproduce)."""
        if a._node in self.inputs:
            return True
        self.fail("an in-place change of a traced array")
        return False

    def capture_write(
        self, target: Any, key: Any, value: Any, op: Any = None, other: Any = None
    ) -> bool:
        """``target[key] = value`` (or ``target op= other``) on an argument variable: recorded
        for the compiled code to replay, and done on a private copy during the trace (the
        compiled code then does it for real). Other targets: not handled here."""
        k = self.inputs.get(target._node)
        if k is None:
            return False
        if op is not None:
            value = op(target._alias(), other)
        if id(target) not in self.copied:  # copy-on-write: the argument's memory is untouched
            self.copied.add(id(target))
            target._data = np.array(target._data)
        d = target._data
        d[key] = value._data if type(value) is NDArray else value
        self.writes.append((next_seq(), k, key, value))
        return True


class _PauseScope:
    """``autograd.pause()`` while tracing: operations stay recorded (they are part of the
    computation to replay) but the plan gives them no gradient."""

    def __init__(self, tracer: Tracer, train_mode: bool) -> None:
        self.tracer, self.train = tracer, train_mode

    def __enter__(self) -> _PauseScope:
        f = STATE.flags
        self.old_train = f.training
        f.training = self.train
        self.begin = next_seq()
        return self

    def __exit__(self, *exc: Any) -> None:
        STATE.flags.training = self.old_train
        self.tracer.paused.append((self.begin, next_seq()))


def pause_scope(train_mode: bool) -> Any:
    """The scope ``autograd.pause()`` returns while a function is traced, else None."""
    t = STATE.flags.tracing
    return None if t is None else _PauseScope(t, train_mode)


# ----------------------------------------------------------------------------- flattening


def _flatten(out: Any) -> tuple[list, Any]:
    """Leaves (NDArrays and constants) of nested tuples/lists, and how to rebuild them."""
    if isinstance(out, (tuple, list)):
        leaves, specs = [], []
        for o in out:
            lv, sp = _flatten(o)
            leaves += lv
            specs.append((len(lv), sp))
        return leaves, (type(out), tuple(specs))  # hashable: part of a cache key
    return [out], None


def _unflatten(leaves: list, spec: Any) -> Any:
    if spec is None:
        return leaves[0]
    typ, specs = spec
    out, k = [], 0
    for n, sp in specs:
        out.append(_unflatten(leaves[k : k + n], sp))
        k += n
    return typ(out)


# ----------------------------------------------------------------------------- the plan


class _Step:
    __slots__ = ("prim", "ins", "kwargs", "out", "nograd", "shape", "seq")

    def __init__(
        self, prim: Any, ins: list, kwargs: dict, out: int, nograd: bool, shape: Any, seq: int
    ) -> None:
        self.prim, self.ins, self.kwargs, self.out = prim, ins, kwargs, out
        self.nograd, self.shape, self.seq = nograd, shape, seq


class Plan:
    """One traced call: variables ``0..n_in-1`` are the array arguments, then the captured
    arrays (``captured``, read when the plan runs), then one per step. An input reference is
    ``("v", index)`` or ``("c", constant)``; a constant NDArray is read when the plan runs."""

    def __init__(self, name: str, n_in: int) -> None:
        self.name = name
        self.n_in = n_in
        self.captured: list = []  # NDArrays whose data the plan reads each call
        self.cap_nodes: list = []  # their graph nodes when traced
        self.steps: list[_Step] = []
        self.shapes: list = []  # shape of each variable
        self.dtypes: list = []  # dtype of each variable (None: not an array)
        self.static_alloc = False  # recycle dead buffers (trace_passes.Emitter)
        self.outs: list = []  # output references
        self.spec: Any = None
        self.writes: list = []  # (tick, argument index, key, value reference)
        self.written: list = []  # the arguments written in place
        self.fwd_infer: Callable | None = None
        self.fwd_train: Callable | None = None
        self.saved: list = []  # step variables the backward pass needs
        self.backwards: dict = {}  # needs mask -> compiled backward
        self.source: dict = {}  # "forward", "backward" -> generated source
        self.prim: Any = None
        self.out_shapes: list = []
        self.out_dtypes: list = []
        self._bjit: Any = None
        self.lock = threading.Lock()

    @property
    def n_vars(self) -> int:
        return self.n_in + len(self.captured)


def _build(name: str, tracer: Tracer, in_leaves: list, outs: list, spec: Any) -> Plan:
    plan = Plan(name, len(in_leaves))
    index: dict = {leaf: i for i, leaf in enumerate(in_leaves)}
    plan.shapes = [leaf.shape for leaf in in_leaves]
    plan.dtypes = [np.dtype(leaf.dtype) for leaf in in_leaves]
    roots = [o._node for o in outs if type(o) is NDArray and o._node is not None]
    roots += [v._node for *_, v in tracer.writes if type(v) is NDArray and v._node is not None]
    nodes = [n for n in walk(roots, tracer.start) if type(n) is not Leaf and n not in index]
    captured: dict = {}  # graph node from outside the trace -> the array seen with it

    def capture(a: Any, p: Any) -> None:
        if p is not None and p not in index and p not in captured:
            if type(p) is Leaf or p.seq < tracer.start:
                captured[p] = a

    steps = set(nodes)
    for n in nodes:
        if n.args is None:
            raise TraceFallback(f"a value whose graph was freed is used ({n.prim.name})")
        for a, p in zip(n.args, n.parents):
            if p not in steps:
                capture(a, p)
    for o in outs:
        if type(o) is NDArray and o._node not in steps:
            capture(o, o._node)
    for *_, v in tracer.writes:
        if type(v) is NDArray and v._node not in steps:
            capture(v, v._node)
    for p, a in captured.items():  # a parameter, a closure's array: read at each call
        index[p] = plan.n_vars
        plan.captured.append(a)
        plan.cap_nodes.append(p)
        plan.shapes.append(tuple(a.shape))
        plan.dtypes.append(getattr(a, "dtype", None))
    for n in nodes:
        index[n] = len(plan.shapes)
        plan.shapes.append(tuple(n.shape))
        plan.dtypes.append(getattr(n.ans, "dtype", None))

    def ref(a: Any, p: Any) -> tuple:
        return ("c", a) if p is None else ("v", index[p])

    for n in nodes:
        nograd = any(b <= n.seq < e for b, e in tracer.paused)
        ins = [ref(a, p) for a, p in zip(n.args, n.parents)]
        plan.steps.append(_Step(n.prim, ins, n.kwargs, index[n], nograd, tuple(n.shape), n.seq))
    plan.outs = [ref(o, o._node) if type(o) is NDArray else ("c", o) for o in outs]
    plan.spec = spec
    for tick_, k, key, value in tracer.writes:
        r = ref(value, value._node) if type(value) is NDArray else ("c", value)
        plan.writes.append((tick_, k, key, r))
    return plan


# ----------------------------------------------------------------------------- codegen


def _arg(r: tuple, env: dict, consts: dict) -> str:
    if r[0] == "v":
        return f"v{r[1]}"
    c = r[1]
    key = id(c)
    if key not in consts:
        consts[key] = f"C{len(consts)}"
        # an NDArray constant is read when the plan runs (it may change in place)
        env[consts[key]] = c
    name = consts[key]
    return f"{name}._data" if type(c) is NDArray else name


def _compile(plan: Plan, train: bool) -> Callable:
    """The forward pass as straight-line code: ``f(v0, ..., v{n_vars-1})`` returns the
    outputs' data (and, for ``train``, the step values the backward pass needs)."""
    env: dict = {"NOTE": _note_all}
    consts: dict = {}
    args = ", ".join(f"v{i}" for i in range(plan.n_vars))
    lines = [f"def forward({args}):"]
    noted: list = []  # arguments updated in place by fused ufunc steps
    events = [(s.seq, 0, k) for k, s in enumerate(plan.steps)]
    events += [(w[0], 1, j) for j, w in enumerate(plan.writes)]
    events = [(kind, k) for _, kind, k in sorted(events)]
    keep = {r[1] for r in plan.outs if r[0] == "v"} | (set(plan.saved) if train else set())
    em = Emitter(plan, events, keep, plan.static_alloc)
    skip = False
    for i, (kind, k) in enumerate(events):
        if skip:  # the write fused into the step before it
            skip = False
            em.release(i)
            continue
        if kind == 0:
            s = plan.steps[k]
            call = ", ".join(_arg(r, env, consts) for r in s.ins)
            arg = em.fused_write(i)
            if arg is not None:
                env[f"U{k}"] = ufunc_of(s)
                lines.append(f"    U{k}({call}, out=v{arg}, casting='unsafe')  # {s.prim.name}")
                if arg not in noted:
                    noted.append(arg)
                skip = True
                em.release(i)
                continue
            buf = em.out_buffer(i)
            if buf is not None:
                env[f"U{k}"] = ufunc_of(s)
                lines.append(f"    v{s.out} = U{k}({call}, out={buf})  # {s.prim.name}")
            else:
                fn = f"F{k}"
                env[fn] = functools.partial(s.prim.impl, **s.kwargs) if s.kwargs else s.prim.impl
                lines.append(f"    v{s.out} = {fn}({call})  # {s.prim.name}")
        else:
            _, arg, key, r = plan.writes[k]
            env[f"K{k}"] = key
            env["WRITE"] = _write
            val = _arg(r, env, consts)
            lines.append(f"    WRITE(v{arg}, K{k}, {val})  # in-place update of argument {arg}")
        em.release(i)
    outs = ", ".join(_arg(r, env, consts) for r in plan.outs)
    if train:
        saved = ", ".join(f"v{v}" for v in plan.saved)
        lines.append(f"    return ({outs},), ({saved}{',' if plan.saved else ''})")
    else:
        lines.append(f"    return ({outs},)")
    if noted:
        # one version change per updated argument, once, when the program ends (or fails:
        # a graph that used an argument must not miss a change that happened)
        lines[1:] = ["    try:"] + ["    " + ln for ln in lines[1:]]
        lines += ["    finally:", f"        NOTE({', '.join(f'v{a}' for a in noted)})"]
    src = "\n".join(lines) + "\n"
    plan.source["forward" if not train else "forward (recording)"] = src
    exec(compile(src, f"<tapegrad.jit {plan.name}>", "exec"), env)
    return env["forward"]


def _note_all(*arrays: Any) -> None:
    """In-place changes of the arguments ``arrays`` (see :func:`note_change`)."""
    for a in arrays:
        note_change(a)


def _write(data: Any, key: Any, value: Any) -> None:
    """An argument's memory changed in place (its version record says so)."""
    data[key] = value
    note_change(data)


def _saved_vars(plan: Plan) -> list:
    """Step variables that the VJP rules of the differentiable steps read."""
    need = set()
    for s in plan.steps:
        if s.nograd:
            continue
        need.add(s.out)
        for r in s.ins:
            if r[0] == "v" and r[1] >= plan.n_vars:
                need.add(r[1])
    return sorted(need)


def _needs(plan: Plan, mask: tuple) -> tuple[set, set]:
    """Variables that depend differentiably on a masked input (forward), and those on a path
    to an output (backward): only their intersection gets cotangents."""
    dep = {i for i, m in enumerate(mask) if m}
    for s in plan.steps:
        if s.nograd:
            continue
        for i, r in enumerate(s.ins):
            if r[0] == "v" and r[1] in dep and s.prim.vjps[i] is not ZERO:
                dep.add(s.out)
                break
    live = {r[1] for r in plan.outs if r[0] == "v"}
    for s in reversed(plan.steps):
        if s.out in live and s.out in dep:
            for i, r in enumerate(s.ins):
                if r[0] == "v" and s.prim.vjps[i] is not ZERO:
                    live.add(r[1])
    return dep, live


def _compile_backward(plan: Plan, mask: tuple, probe: dict | None = None) -> Callable:
    """The adjoint trace as straight-line code: ``b(g0, ..., v0, ..., saved...)`` returns one
    cotangent per input and captured array (None where ``mask`` is False).

    Compiled twice: the first version runs once and records, for each rule call, the shape
    of its result and whether it handed the cotangent through unchanged (``add``, a reshape
    of the same shape); the second knows both (shapes are fixed for a plan) and keeps only
    the un-broadcasting that is needed and no call for the pass-through rules."""
    dep, live = _needs(plan, mask)
    has = dep & live
    env: dict = {"UB": functools.partial(unbroadcast, RAW), "np": np, "RAW": RAW}
    consts: dict = {}
    nout = len(plan.outs)
    params = [f"g_out{j}" for j in range(nout)] + [f"v{i}" for i in range(plan.n_vars)]
    params += [f"v{v}" for v in plan.saved]
    lines = [f"def backward({', '.join(params)}):"]
    assigned: set = set()
    calls: list = []  # (rule call number) -> (shape, target variable)

    def add(v: int, expr: str) -> None:
        if v in assigned:
            lines.append(f"    g{v} = g{v} + {expr}")
        else:
            lines.append(f"    g{v} = {expr}")
            assigned.add(v)

    for j, r in enumerate(plan.outs):
        if r[0] == "v" and r[1] in has:
            add(r[1], f"g_out{j}")
    for k in range(len(plan.steps) - 1, -1, -1):
        s = plan.steps[k]
        if s.nograd or s.out not in assigned:
            continue
        argv = ", ".join(_arg(r, env, consts) for r in s.ins)
        for i, r in enumerate(s.ins):
            if r[0] != "v" or r[1] not in has:
                continue
            rule = s.prim.vjps[i]
            if rule is ZERO:
                continue
            v, shape, c = r[1], plan.shapes[r[1]], len(calls)
            calls.append(shape)
            g = f"g{s.out}"
            if probe is not None and probe[c] == "same":  # the rule hands g through
                add(v, g)
                continue
            rn = f"R{k}_{i}"
            env[rn] = functools.partial(rule, **s.kwargs) if s.kwargs else rule
            lines.append(f"    t = {rn}(RAW, {g}, v{s.out}, {argv})  # {s.prim.name}")
            if probe is None:
                lines.append(f"    PROBE({c}, t, {g})")
                lines.append(f"    if t.shape != {shape!r}: t = UB(t, {shape!r})")
            elif probe[c] != shape:
                lines.append(f"    t = UB(t, {shape!r})")
            add(v, "t")
    rets = []
    for i in range(plan.n_vars):
        if not mask[i]:
            rets.append("None")
        elif i in assigned:
            rets.append(f"g{i}")
        else:  # reached only through zero derivatives
            rets.append(f"np.zeros({plan.shapes[i]!r}, v{i}.dtype)")
    lines.append(f"    return ({', '.join(rets)},)")
    src = "\n".join(lines) + "\n"
    name = f"<tapegrad.jit {plan.name} backward>"
    if probe is not None:
        plan.source["backward"] = src
        exec(compile(src, name, "exec"), env)
        return env["backward"]
    seen: dict = {}

    def record(c: int, t: Any, g: Any) -> None:
        shape = np.shape(t)
        seen[c] = "same" if t is g and shape == calls[c] else shape

    env["PROBE"] = record
    exec(compile(src, name, "exec"), env)
    first = env["backward"]

    def probing(*a: Any) -> tuple:
        out = first(*a)
        with plan.lock:  # from now on, the specialised version
            plan.backwards[mask] = _compile_backward(plan, mask, seen)
        return out

    return probing


# ----------------------------------------------------------------------------- running


def _replay(plan: Plan, xs: list) -> list:
    """The plan run eagerly on arrays (recorded when recording): a differentiable
    re-execution for the derivatives that need one."""
    vals: dict = dict(enumerate(xs))

    def get(r: tuple) -> Any:
        return vals[r[1]] if r[0] == "v" else r[1]

    for s in plan.steps:
        out = s.prim.call(*[get(r) for r in s.ins], **s.kwargs)
        vals[s.out] = out.detach() if s.nograd else out
    return [get(r) for r in plan.outs]


def _joint_rule(plan: Plan, i: int) -> Callable:
    """Input ``i``'s VJP rule of the plan's node: the compiled backward runs once per
    cotangent (the node's other inputs take its results from the same run)."""

    def rule(xp: Any, g: Any, ans: Any, *args: Any, _saved: list) -> Any:
        state = _saved
        if state[1] is not g:
            state[1] = g
            if type(g) is _Cts:
                cts = list(g)
                for j, c in enumerate(cts):  # an output that received no cotangent: zeros
                    if c is None:
                        z = np.zeros(plan.out_shapes[j], dtype=plan.out_dtypes[j])
                        cts[j] = z if xp is RAW else wrap(z)
            else:
                cts = (g,)
            if xp is RAW:
                mask = state[2]
                bwd = plan.backwards.get(mask)
                if bwd is None:
                    with plan.lock:
                        bwd = plan.backwards[mask] = _compile_backward(plan, mask)
                state[3] = bwd(*cts, *args, *state[0])  # (args: the inputs' raw data)
            else:
                state[3] = plan_vjp(plan)(*cts, *args)
        r = state[3][i]
        if r is None:
            z = np.zeros(plan.shapes[i], dtype=np.result_type(args[i]))
            return z if xp is RAW else wrap(z)
        return r

    return rule


def plan_vjp(plan: Plan) -> Any:
    """The plan's VJP as a compiled function of (cotangents..., inputs...): what a
    differentiable backward pass through the plan's node calls, traced on first use."""
    if plan._bjit is None:
        nout = len(plan.outs)

        def vjp_of_plan(*a: Any) -> tuple:
            from .functional import vjp

            cts, xs = a[:nout], a[nout:]
            _, pull = vjp(lambda *z: tuple(_replay(plan, list(z))), *xs)
            return pull(tuple(cts))

        plan._bjit = Compiled(vjp_of_plan, f"{plan.name}.vjp")
    return plan._bjit


class _Cts(list):
    """Cotangents of a plan node with several outputs, one slot each (None: zero)."""

    __slots__ = ("shape",)

    def __add__(self, other: Any) -> _Cts:
        out = _Cts(a if b is None else b if a is None else a + b for a, b in zip(self, other))
        out.shape = self.shape
        return out


def _taylor_rule(plan: Plan) -> Callable:
    """Jets through the plan: an eager, recorded replay of its steps (so the coefficients
    stay differentiable with respect to everything), propagated by each step's own rule."""

    def rule(ctx: Any, node: Any, args: list, ans: Any) -> list:
        from .taylor.jets import is_jet, primal
        from .taylor.propagation import propagate

        xs = [primal(a) for a in args]
        with recording():
            outs = _replay(plan, xs)
        # the replay hangs off the inputs' own graph nodes: coefficients and primal values
        # stay differentiable with respect to everything the inputs depend on
        seeds = {x._node: a for x, a in zip(xs, args) if is_jet(a)}
        jets = [propagate(ctx, o, seeds) if type(o) is NDArray else None for o in outs]
        if len(outs) == 1:
            j = jets[0]
            return [ans] + (j[1:] if j is not None else [None] * ctx.K)
        return [ans] + [[None if j is None else j[k] for j in jets] for k in range(1, ctx.K + 1)]

    return rule


def _make_prim(plan: Plan) -> Any:
    return primitive(
        f"jit:{plan.name}",
        lambda *a, **k: None,
        Variadic(lambda i: _joint_rule(plan, i)),
        None,
        taylor=_taylor_rule(plan),
    )


_pick = primitive(
    "jit_output",
    lambda packed, i, n: packed[i],
    [lambda xp, g, ans, packed, i, n: _slot(g, i, n), ZERO],
    None,
)


def _slot(g: Any, i: int, n: int) -> _Cts:
    c = _Cts([None] * n)
    c[i] = g
    c.shape = _SHAPES
    return c


_SHAPES = ("several outputs",)


def _run(plan: Plan, arrays: list) -> Any:
    """Run the compiled plan on the argument arrays; inside ``record()`` the call is one node."""
    inputs = arrays + plan.captured if plan.captured else arrays
    data = [a._data for a in inputs]
    for k in plan.written:  # written in place: a NumPy scalar becomes an array
        d = data[k]
        if type(d) is not np.ndarray or not d.flags.writeable:
            data[k] = inputs[k]._writable()
    recorded = False
    if STATE.flags.recording:
        parents = tuple([a._node for a in inputs])
        for p in parents:
            if p is not None:
                recorded = True
                break
    if not recorded:
        outs = plan.fwd_infer(*data)
        if plan.spec is None:
            o = outs[0]
            return wrap(o) if isinstance(o, (np.ndarray, np.generic)) else o
        return _unflatten(
            [wrap(o) if isinstance(o, (np.ndarray, np.generic)) else o for o in outs], plan.spec
        )
    if plan.fwd_train is None:
        with plan.lock:
            plan.saved = _saved_vars(plan)
            plan.fwd_train = _compile(plan, True)
    outs, saved = plan.fwd_train(*data)
    state = [saved, None, tuple([p is not None for p in parents]), None]
    if len(outs) == 1:
        ans = outs[0]
        node = new_node(plan.prim, inputs, {"_saved": state}, parents, ans, data, False)
        r = wrap(ans, node)
        return r if plan.spec is None else _unflatten([r], plan.spec)
    packed = tuple(outs)
    node = new_node(plan.prim, inputs, {"_saved": state}, parents, np.empty(0), data, False)
    node.ans = packed
    node.shape = _SHAPES
    holder = wrap(packed, node)
    res = []
    for i, o in enumerate(outs):
        n = new_node(_pick, (holder, i), {"n": len(outs)}, (node, None), o, (packed, i), False)
        res.append(wrap(o, n))
    return _unflatten(res, plan.spec)


# ----------------------------------------------------------------------------- jit


class Compiled:
    """A function compiled by :func:`jit` (see the module's documentation)."""

    def __init__(self, f: Callable, name: str | None = None, static_alloc: bool = False) -> None:
        self.f = f
        self.name = name or getattr(f, "__name__", "f")
        self.static_alloc = static_alloc
        self._cache: dict = {}
        self._eager = False
        self._lock = threading.Lock()
        functools.update_wrapper(self, f, updated=())

    def __repr__(self) -> str:
        return f"<tapegrad.jit {self.name}: {len(self._cache)} plan(s)>"

    @property
    def plans(self) -> list[Plan]:
        return list(self._cache.values())

    @property
    def source(self) -> str:
        """The generated code of the newest plan (forward and adjoint traces)."""
        if not self._cache:
            return ""
        p = list(self._cache.values())[-1]
        return "\n".join(p.source.values())

    def eager(self, reason: str) -> None:
        """Run eagerly from now on, saying why once."""
        self._eager = True
        warnings.warn(
            f"tapegrad.jit: {self.name} runs eagerly from now on: {reason}",
            RuntimeWarning,
            stacklevel=3,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fl = STATE.flags
        if self._eager or fl.tracing is not None:
            # (inside another trace: run the code itself, the outer trace records it)
            return self.f(*args, **kwargs)
        arrays, key = [], []
        for a in args:
            if type(a) is NDArray:
                if a._tan is not None and fl.levels:  # forward-mode tangents: run eagerly
                    return self.f(*args, **kwargs)
                arrays.append(a)
                key.append((a._data.shape, a._data.dtype))
            else:
                key.append(("static", a if _hashable(a) else id(a)))
        if kwargs:
            key.append(tuple(sorted((k, v if _hashable(v) else id(v)) for k, v in kwargs.items())))
        key.append(fl.training)
        key = tuple(key)
        plan = self._cache.get(key)
        if plan is None:
            plan = self._trace(args, kwargs, key)
            if plan is None:
                return self.f(*args, **kwargs)
        return _run(plan, arrays)

    def _trace(self, args: tuple, kwargs: dict, key: tuple) -> Plan | None:
        with self._lock:
            plan = self._cache.get(key)
            if plan is not None:
                return plan
            if len(self._cache) >= MAX_TRACES:
                self.eager(f"more than {MAX_TRACES} different argument shapes/modes")
                return None
            try:
                plan = trace_plan(self.f, args, kwargs, self.name, self.static_alloc)
            except TraceFallback as e:
                self.eager(str(e))
                return None
            self._cache[key] = plan
            return plan


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def trace_plan(
    f: Callable, args: tuple, kwargs: dict, name: str = "f", static_alloc: bool = False
) -> Plan:
    """Trace ``f(*args, **kwargs)`` once and compile its plan (raises TraceFallback)."""
    fl = STATE.flags
    tracer = Tracer()
    leaves, targs = [], []
    for a in args:
        if type(a) is NDArray:
            v = wrap(a._data, Leaf(a.shape, a.dtype, None, "write"))
            tracer.inputs[v._node] = len(leaves)
            leaves.append(v._node)
            targs.append(v)
        else:
            targs.append(a)
    # the compiled code runs right after the trace and draws the random numbers (Dropout) the
    # trace drew: as eagerly, a seeded first call then gives the numbers that seed gives
    gen = generator()
    rng_state = gen.bit_generator.state
    old = (fl.tracing, fl.recording)
    fl.tracing, fl.recording = tracer, True
    try:
        out = f(*targs, **kwargs)
    finally:
        fl.tracing, fl.recording = old
        gen.bit_generator.state = rng_state
    outs, spec = _flatten(out)
    plan = _build(name, tracer, leaves, outs, spec)
    eliminate_common(plan)
    plan.static_alloc = static_alloc
    plan.written = sorted({w[1] for w in plan.writes})
    plan.out_shapes = [np.shape(o._data if type(o) is NDArray else o) for o in outs]
    plan.out_dtypes = [np.result_type(o._data if type(o) is NDArray else o) for o in outs]
    plan.prim = _make_prim(plan)
    plan.fwd_infer = _compile(plan, False)
    return plan


def jit(f: Callable | None = None, *, name: str | None = None, static_alloc: bool = False) -> Any:
    """Compile ``f``, a function of NDArrays, to straight-line NumPy code on its first call
    (per argument shapes/dtypes and training mode), differentiable to any order. Usable as a
    decorator. Non-array arguments are static (part of the cache key). ``static_alloc``:
    the forward program writes results into the buffers of dead intermediates
    (:mod:`tapegrad.trace_passes`) instead of allocating.

    >>> import tapegrad as mx
    >>> @mx.jit
    ... def f(x):
    ...     return mx.nd.tanh(x) * 2
    >>> [round(v, 4) for v in f(mx.nd.array([0.0, 1.0])).asnumpy().tolist()]
    [0.0, 1.5232]
    """
    if f is None:
        return lambda g: Compiled(g, name, static_alloc)
    return Compiled(f, name, static_alloc)


_ = (itertools, sys, TapegradError)
