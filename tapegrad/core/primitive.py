"""Primitives: everything about one differentiable operation, declared once.

:func:`defprim` takes the NumPy implementation, one VJP rule per input, the JVP rule (or a
marker for its common shapes), the Taylor (jet) rule (or a marker that derives it), the
formula ``explain`` prints, and the names ``mx.nd`` and NDArray expose it under. ``mx.nd``,
the NDArray methods, the explainer and the Taylor pass all read it from the
:class:`Primitive`; nothing about a primitive is written twice.

Rules are written once against an array namespace ``xp`` they are given:

* :data:`RAW` maps every primitive name to its plain NumPy ``impl``: a first-order backward
  pass runs the rules on raw arrays, with no wrapping and no recording;
* :data:`TAPE` maps every name to the primitive's call: with ``create_graph=True`` (or while
  forward-mode tangents are active) the same rules run on NDArrays and are recorded, so
  higher derivatives follow from the same formulas.

Markers (as JAX's ``deflinear`` / ``defbilinear`` / ``defjvp_zero``):

* :data:`ZERO` -- the derivative is identically zero (comparisons, ``sign``, ``floor``...).
  As a VJP entry (or as ``vjps`` for every input) the op is still recorded, so a result
  built from it stays "in the graph" and differentiates to zeros, but its rule is never run:
  the backward pass carries a symbolic zero. As ``jvp``/``taylor``: zero tangents.
* :data:`LINEAR` -- the op is linear in its differentiable inputs: its JVP is the op applied
  to the tangents (static inputs passed through), its jets likewise.
* :data:`BILINEAR` -- ``op(a, b, *bias) = B(a, b) + sum(bias)`` with ``B`` bilinear
  (``op`` called with two inputs): JVP ``B(ta, b) + B(a, tb) + sum(t_bias)``; jets by
  Leibniz's rule.
* :data:`JVP_IS_VJP` -- the JVP is the VJP formula applied to the tangent (summed over the
  inputs). Right exactly when the Jacobian is symmetric: elementwise operations, softmax.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..base import op_error
from . import graph
from .graph import _BOX, _new, new_node, wrap
from .state import STATE

_ndarray = np.ndarray
#: the array type (NDArray), a plain global: the primitive's call reads it on every call
_box: Any = None


def set_array_type(cls: type) -> None:
    """Register the array type the engine wraps results in (called once by NDArray's module)."""
    global _box
    _box = cls
    graph.set_array_type(cls)


__all__ = [
    "Primitive",
    "defprim",
    "primitive",
    "Formula",
    "Variadic",
    "PRIMITIVES",
    "RAW",
    "TAPE",
    "ZERO",
    "LINEAR",
    "BILINEAR",
    "JVP_IS_VJP",
]


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __getitem__(self, i: int) -> _Marker:  # ``vjps=ZERO``: every input's rule is ZERO
        return self


ZERO = _Marker("ZERO")
LINEAR = _Marker("LINEAR")
BILINEAR = _Marker("BILINEAR")
JVP_IS_VJP = _Marker("JVP_IS_VJP")

#: Every primitive, by name.
PRIMITIVES: dict[str, Primitive] = {}
#: Raw namespace: primitive name -> NumPy implementation (first-order backward).
RAW = SimpleNamespace()
#: Tape namespace: primitive name -> the primitive's call (recorded, differentiable).
TAPE = SimpleNamespace()


class Variadic:
    """VJP rules of a primitive with any number of inputs: ``make(i)`` builds input i's."""

    def __init__(self, make: Callable[[int], Any]) -> None:
        self.make = make
        self.cache: dict = {}

    def __getitem__(self, i: int) -> Any:
        r = self.cache.get(i)
        if r is None:
            r = self.cache[i] = self.make(i)
        return r


class Formula:
    """How ``explain`` writes a primitive: ``out`` is the operation as a formula of its inputs'
    names (``"{0}·{1}"``), ``d`` the local derivative with respect to each input
    (``"cos({0})"``; ``{out}`` is the output's name). Either may be a callable
    ``f(node, names_of_inputs, name_of_output) -> str`` for cases that depend on the values."""

    __slots__ = ("out", "d")

    def __init__(self, out: Any = None, *d: Any) -> None:
        self.out = out
        self.d = d


class Primitive:
    """One differentiable operation (see :func:`defprim` for the fields). Its call, a plain
    function held by ``TAPE``, ``mx.nd`` and NDArray's operators, returns an NDArray, records
    a node when needed and carries forward-mode tangents."""

    __slots__ = (
        "name",
        "impl",
        "vjps",
        "jvp",
        "taylor",
        "formula",
        "nd",
        "methods",
        "owner",
        "nin",
        "impure",
        "doc",
        "call",
    )

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)


def _names(v: Any) -> tuple:
    return (v,) if isinstance(v, str) else tuple(v or ())


def defprim(
    name: str,
    impl: Callable,
    vjps: Any = None,
    jvp: Any = None,
    *,
    taylor: Any = None,
    explain: Formula | None = None,
    nd: str | Sequence[str] = (),
    method: str | Sequence[str] = (),
    impure: bool = False,
) -> Primitive:
    """Declare a primitive and add it to :data:`RAW`, :data:`TAPE` and :data:`PRIMITIVES`.

    Args:
        name: the operator's name (messages, the namespaces, the explainer).
        impl: NumPy function ``impl(*inputs, **static_kwargs) -> ndarray``.
        vjps: one rule per positional input, ``rule(xp, g, ans, *inputs, **kwargs)`` giving
            that input's cotangent (any shape that broadcasts to the input: the engine sums it
            down), :data:`ZERO`, or ``None`` for an input that is not differentiable
            (indices, labels, a condition); a :class:`Variadic`; or :data:`ZERO` for all.
            ``vjps=None``: the op is never recorded.
        jvp: ``jvp(xp, tangents, ans, *inputs, **kwargs)`` (``None`` tangents for inputs
            without one), or a marker: :data:`ZERO`, :data:`LINEAR`, :data:`BILINEAR`,
            :data:`JVP_IS_VJP`.
        taylor: the jet rule ``rule(ctx, node, args, ans)`` of :mod:`tapegrad.taylor`, or a
            marker that derives it (:data:`ZERO`, :data:`LINEAR`, :data:`BILINEAR`; by
            default the JVP's marker). Builtin primitives must have one (a test checks);
            without one, Taylor mode falls back on nested forward mode, exponential in the
            order, and warns once.
        explain: a :class:`Formula` for ``tapegrad.explain``.
        nd: name(s) under which ``mx.nd`` exposes the primitive itself.
        method: name(s) of the NDArray methods that call it.
        impure: each call draws new values (random numbers): a compiled function
            (``tapegrad.trace``) calls it anew each time instead of keeping the traced value.

    >>> import numpy as np
    >>> from tapegrad.core.primitive import defprim, JVP_IS_VJP
    >>> cube = defprim("cube_example", lambda x: x ** 3,
    ...                [lambda xp, g, ans, x: g * 3 * x * x], JVP_IS_VJP)
    >>> cube.name, cube.nin
    ('cube_example', 1)
    """
    if name in PRIMITIVES:
        raise ValueError(f"primitive {name!r} is declared twice")
    p = primitive(
        name, impl, vjps, jvp, taylor=taylor, explain=explain, nd=nd, method=method, impure=impure
    )
    p.owner = sys._getframe(1).f_globals.get("__name__", "")
    PRIMITIVES[name] = p
    setattr(RAW, name, impl)
    setattr(TAPE, name, p.call)
    return p


def primitive(
    name: str,
    impl: Callable,
    vjps: Any = None,
    jvp: Any = None,
    *,
    taylor: Any = None,
    explain: Formula | None = None,
    nd: str | Sequence[str] = (),
    method: str | Sequence[str] = (),
    impure: bool = False,
) -> Primitive:
    """A :class:`Primitive` that is not registered in the namespaces (``autograd.Function``
    makes one per call); :func:`defprim` is this plus the registration."""
    p = _new(Primitive)
    p.name = name
    p.impl = impl
    if vjps is None or vjps is ZERO or isinstance(vjps, Variadic):
        p.vjps = vjps
        p.nin = None
    else:  # a non-differentiable input (None) is a zero derivative to the backward pass
        p.vjps = tuple(ZERO if r is None else r for r in vjps)
        p.nin = len(p.vjps)
    p.jvp = ZERO if vjps is ZERO and jvp is None else jvp
    if taylor is None and p.jvp in (ZERO, LINEAR, BILINEAR):
        taylor = p.jvp
    p.taylor = taylor
    p.formula = explain
    p.nd = _names(nd)
    p.methods = _names(method)
    p.owner = ""
    # NumPy's own docstrings (with their examples) are not ours to show
    p.doc = impl.__doc__ if getattr(impl, "__module__", "").startswith("tapegrad") else None
    p.impure = impure
    p.call = _impure_caller(p, _caller(p)) if impure else _caller(p)
    return p


def _caller(prim: Primitive) -> Callable:
    """The call as a plain function (Python calls one directly, without the detour an
    instance's ``__call__`` takes). One path: collect the inputs' data and graph nodes,
    run the NumPy implementation, record a node when recording and some input is on a graph.
    Inputs with forward-mode tangents of an active level take :func:`_forward_call`."""
    name = prim.name
    impl = prim.impl

    def call(*args: Any, **kwargs: Any) -> Any:
        box = _box
        n = len(args)
        if n == 1 and type(a := args[0]) is box:
            # one input, the commonest call: the same steps as below, without the tuples
            if a._tan is not None and STATE.flags.levels:
                return _forward_call(prim, args, (a._data,), kwargs)
            d = a._data
            try:
                out = impl(d, **kwargs) if kwargs else impl(d)
            except (ValueError, IndexError, TypeError, ArithmeticError, AttributeError) as e:
                raise op_error(name, [d], kwargs, e) from None
            r = _new(box)
            r._data = out
            r._tan = None
            r._version = 0
            pa = a._node
            if pa is not None and STATE.flags.recording and prim.vjps is not None:
                r._node = new_node(prim, args, kwargs, (pa,), out, (d,), False)
            else:
                r._node = None
            return r
        raw = False  # a NumPy array among the inputs (the graph keeps a copy of it)
        if n == 1:
            d = args[0]
            data = args
            parents = (None,)
            need = fw = False
        elif n == 2:
            a, b = args
            if type(a) is box:
                da, pa, fw = a._data, a._node, a._tan is not None
            else:
                da, pa, fw = a, None, False
                raw = type(a) is _ndarray
            if type(b) is box:
                db, pb = b._data, b._node
                fw = fw or b._tan is not None
            else:
                db, pb = b, None
                raw = raw or type(b) is _ndarray
            data = (da, db)
            parents = (pa, pb)
            need = pa is not None or pb is not None
        else:
            data = []
            parents = []
            need = fw = False
            for a in args:
                if type(a) is box:
                    data.append(a._data)
                    pa = a._node
                    parents.append(pa)
                    need = need or pa is not None
                    fw = fw or a._tan is not None
                else:
                    data.append(a)
                    parents.append(None)
                    raw = raw or type(a) is _ndarray
        if fw and STATE.flags.levels:
            return _forward_call(prim, args, data, kwargs)
        try:
            if kwargs:
                out = impl(*data, **kwargs)
            elif n == 1:
                out = impl(d)
            elif n == 2:
                out = impl(da, db)  # spelled out: a *data call costs more
            else:
                out = impl(*data)
        except (ValueError, IndexError, TypeError, ArithmeticError, AttributeError) as e:
            raise op_error(name, data, kwargs, e) from None
        r = _new(box)
        r._data = out
        r._tan = None
        r._version = 0
        if need and STATE.flags.recording and prim.vjps is not None:
            r._node = new_node(prim, args, kwargs, parents, out, data, raw)
        else:
            r._node = None
        return r

    call.__name__ = call.__qualname__ = name
    call.__doc__, call.prim = prim.doc, prim
    return call


def _impure_caller(prim: Primitive, call: Callable) -> Callable:
    """The call of a primitive that draws new values each time: while a function is traced
    for compilation it is recorded even with no input on a graph (a node without parents),
    so the compiled function calls it anew instead of keeping the traced value."""

    def impure_call(*args: Any, **kwargs: Any) -> Any:
        fl = STATE.flags
        tracer = fl.tracing
        if tracer is None:
            return call(*args, **kwargs)
        fl.tracing = None  # the draw itself is no read of a traced value
        try:
            r = call(*args, **kwargs)
        finally:
            fl.tracing = tracer
        if r._node is None:
            box = _BOX[0]
            data = tuple(a._data if type(a) is box else a for a in args)
            raw = any(type(a) is _ndarray for a in args)
            r._node = new_node(prim, args, kwargs, (None,) * len(args), r._data, data, raw)
        return r

    impure_call.__name__ = impure_call.__qualname__ = prim.name
    impure_call.__doc__, impure_call.prim = prim.doc, prim
    return impure_call


# --------------------------------------------------------------------------- forward mode


def _forward_call(prim: Primitive, args: tuple, data: Any, kwargs: dict) -> Any:
    """Some input carries tangents of an active level: compute the output, record it as
    usual, and its tangent at every level present, lowest first. The tangent of level L is
    computed from views of the inputs that carry only the levels below L (HIPS autograd's
    nesting of boxes), so nested derivatives never confuse their perturbations."""
    box = _BOX[0]
    active = STATE.flags.levels
    present = sorted(
        {lv for a in args if type(a) is box and a._tan for lv in a._tan if lv in active}
    )
    try:
        out = prim.impl(*data, **kwargs)
    except (ValueError, IndexError, TypeError, ArithmeticError, AttributeError) as e:
        raise op_error(prim.name, list(data), kwargs, e) from None
    parents = tuple(a._node if type(a) is box else None for a in args)
    node = None
    if STATE.flags.recording and prim.vjps is not None and any(p is not None for p in parents):
        raw = any(type(a) is _ndarray for a in args)
        node = new_node(prim, args, kwargs, parents, out, tuple(data), raw)
    if prim.vjps is None or prim.jvp is None:
        if prim.vjps is not None:
            raise NotImplementedError(
                f"operator '{prim.name}' has no forward-mode (JVP) rule, so tangents cannot "
                "pass through it. Fix: declare its jvp, or use reverse mode."
            )
        return wrap(out, node)
    tans: dict = {}
    for lv in present:
        at = [_below(a, lv) if type(a) is box else a for a in args]
        ts = [a._tan.get(lv) if type(a) is box and a._tan else None for a in args]
        t = jvp_of(prim, ts, wrap(out, node, dict(tans) or None), at, kwargs)
        if t is not None:
            tans[lv] = t
    res = wrap(out, node, tans or None)
    if node is not None:
        node.ans_tan = res._tan
    return res


def _below(a: Any, level: int) -> Any:
    """View of ``a`` that carries only the tangents of levels lower than ``level``."""
    tan = a._tan
    if not tan or all(lv < level for lv in tan):
        return a
    v = wrap(a._data, a._node, {lv: t for lv, t in tan.items() if lv < level} or None)
    v._version = a._version
    return v


def _zeros_like(a: Any) -> Any:
    return wrap(np.zeros_like(a._data)) if type(a) is _BOX[0] else 0.0


def jvp_of(prim: Primitive, ts: list, ans: Any, args: list, kwargs: dict) -> Any:
    """Tangent of ``prim``'s output for input tangents ``ts`` (None = zero), with recorded
    operations; None when it is zero."""
    if all(t is None for t in ts):
        return None
    rule = prim.jvp
    if rule is ZERO:
        return None
    if rule is JVP_IS_VJP:
        out = None
        for i, t in enumerate(ts):
            r = prim.vjps[i]
            if t is None or r is None or r is ZERO:
                continue
            c = r(TAPE, t, ans, *args, **kwargs)
            out = c if out is None else out + c
        if out is not None and out.shape != ans.shape:
            out = TAPE.broadcast_to(out, shape=ans.shape)
        return out
    if rule is LINEAR:
        filled = []
        for i, (a, t) in enumerate(zip(args, ts)):
            r = prim.vjps[i]
            if r is None or r is ZERO:
                filled.append(a)  # static input (indices, condition): passed through
            else:
                filled.append(t if t is not None else _zeros_like(a))
        return prim.call(*filled, **kwargs)
    if rule is BILINEAR:
        a, b = args[0], args[1]
        out = None
        if ts[0] is not None:
            out = prim.call(ts[0], b, **kwargs)
        if ts[1] is not None:
            c = prim.call(a, ts[1], **kwargs)
            out = c if out is None else out + c
        for t in ts[2:]:
            if t is not None:
                out = t if out is None else out + t
        if out is not None and out.shape != ans.shape:
            out = TAPE.broadcast_to(out, shape=ans.shape)
        return out
    return rule(TAPE, ts, ans, *args, **kwargs)


_WARNED: set = set()


def warn_once(key: Any, message: str) -> None:
    """Warn once per ``key`` and process (a fallback's cost, say)."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
