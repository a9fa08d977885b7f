"""``mx.autograd``: recording scopes, train/predict mode, backward and grad (MXNet 1.9 API).

>>> import tapegrad as mx
>>> x = mx.nd.array([1, 2, 3])
>>> x.attach_grad()
>>> with mx.autograd.record():
...     y = 2 * x ** 2
>>> y.backward()
>>> x.grad
<BLANKLINE>
[ 4.  8. 12.]
<NDArray 3 @cpu(0)>
"""

from __future__ import annotations

from typing import Any

from .base import GraphError, ShapeError, TapegradError, fmt_shape
from .core import STATE, Leaf, backward_pass
from .ndarray.ndarray import NDArray, _check_grad_req, head_grad

__all__ = [
    "record",
    "pause",
    "train_mode",
    "predict_mode",
    "is_recording",
    "is_training",
    "set_recording",
    "set_training",
    "mark_variables",
    "backward",
    "grad",
    "Function",
    "get_symbol",
]


class _Scope:
    """Context manager that sets (recording, training) and restores them on exit."""

    __slots__ = ("_rec", "_train", "_old_rec", "_old_train", "_flags")

    def __init__(self, is_record: Any, train_mode: Any) -> None:
        self._rec = is_record
        self._train = train_mode

    def __enter__(self) -> _Scope:
        # this thread's flags, fetched once (a thread-local access is the costly part)
        f = self._flags = STATE.flags
        self._old_rec = f.recording
        self._old_train = f.training
        if self._rec is not None:
            f.recording = self._rec
        if self._train is not None:
            f.training = self._train
        return self

    def __exit__(self, typ: Any, value: Any, tb: Any) -> None:
        f = self._flags
        f.recording = self._old_rec
        f.training = self._old_train


def record(train_mode: bool = True) -> _Scope:
    """Scope in which operations on variables are recorded for differentiation.

    ``train_mode`` (default True) also switches layers such as Dropout to training behaviour.
    """
    return _Scope(True, train_mode)


def pause(train_mode: bool = False) -> _Scope:
    """Scope in which nothing is recorded (inside a ``record()`` scope)."""
    if STATE.flags.tracing is not None:  # compiling: recorded, replayed, not differentiated
        from .trace import pause_scope

        return pause_scope(train_mode)
    return _Scope(False, train_mode)


def train_mode() -> _Scope:
    """Scope with training behaviour (Dropout active), recording unchanged."""
    return _Scope(None, True)


def predict_mode() -> _Scope:
    """Scope with inference behaviour, recording unchanged."""
    return _Scope(None, False)


def is_recording() -> bool:
    """Whether operations are being recorded."""
    return STATE.recording


def is_training() -> bool:
    """Whether layers behave as in training."""
    return STATE.training


def set_recording(is_recording: bool) -> bool:
    """Set the recording flag; returns the previous value."""
    old = STATE.recording
    STATE.recording = bool(is_recording)
    return old


def set_training(train_mode: bool) -> bool:
    """Set the training flag; returns the previous value."""
    old = STATE.training
    STATE.training = bool(train_mode)
    return old


def mark_variables(variables: Any, gradients: Any, grad_reqs: Any = "write") -> None:
    """Mark arrays as variables whose gradients go into the given ``gradients`` buffers."""
    if isinstance(variables, NDArray):
        variables, gradients = [variables], [gradients]
    if isinstance(grad_reqs, str):
        grad_reqs = [grad_reqs] * len(variables)
    if not (len(variables) == len(gradients) == len(grad_reqs)):
        raise TapegradError(
            f"mark_variables: got {len(variables)} variables, {len(gradients)} gradients and "
            f"{len(grad_reqs)} grad_reqs. Fix: pass one gradient buffer and grad_req per "
            "variable."
        )
    for v, g, req in zip(variables, gradients, grad_reqs):
        _check_grad_req(req, "mark_variables")
        if g.shape != v.shape:
            raise ShapeError(
                f"mark_variables: gradient buffer of shape {fmt_shape(g.shape)} for a "
                f"variable of shape {fmt_shape(v.shape)}. Fix: use zeros_like(variable)."
            )
        v._node = Leaf(v.shape, v.dtype, g, req)
        v._tan = None


def _heads(heads: Any, head_grads: Any, where: str) -> tuple[list, list]:
    if isinstance(heads, NDArray):
        heads = [heads]
    heads = list(heads)
    if head_grads is None:
        hgs: list = [None] * len(heads)
    else:
        hgs = [head_grads] if isinstance(head_grads, NDArray) else list(head_grads)
        if len(hgs) != len(heads):
            raise TapegradError(
                f"{where}: got {len(heads)} heads but {len(hgs)} head gradients. Fix: pass "
                "one head gradient per head (None for ones)."
            )
        hgs = [None if g is None else head_grad(h, g, where) for h, g in zip(heads, hgs)]
    return heads, hgs


def backward(
    heads: Any, head_grads: Any = None, retain_graph: bool = False, train_mode: bool = True
) -> None:
    """Compute the gradients of ``heads`` into the ``.grad`` of every variable they reach.

    A head with several elements is summed implicitly (its head gradient is ones), unless a
    head gradient is given.
    """
    heads, hgs = _heads(heads, head_grads, "backward")
    backward_pass(
        heads, hgs, None, create_graph=False, retain_graph=retain_graph, train_mode=train_mode
    )


def grad(
    heads: Any,
    variables: Any,
    head_grads: Any = None,
    retain_graph: Any = None,
    create_graph: bool = False,
    train_mode: bool = True,
) -> Any:
    """Gradients of ``heads`` with respect to ``variables``, returned as new arrays.

    With ``create_graph=True`` the gradients are themselves recorded, so they can be
    differentiated again (to any order). ``retain_graph`` defaults to ``create_graph``.

    >>> import tapegrad as mx
    >>> x = mx.nd.array([2.0]); x.attach_grad()
    >>> with mx.autograd.record():
    ...     y = x ** 3
    ...     (dy,) = mx.autograd.grad(y, [x], create_graph=True)
    >>> dy.backward()
    >>> float(x.grad.asscalar())  # d2y/dx2 = 6x
    12.0
    """
    variables = [variables] if isinstance(variables, NDArray) else list(variables)
    if not variables:
        raise TapegradError(
            "grad: `variables` is empty. Fix: pass the arrays (marked with attach_grad()) "
            "whose gradients you want."
        )
    heads, hgs = _heads(heads, head_grads, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    nodes = []
    for i, v in enumerate(variables):
        if v._node is None:
            raise GraphError(
                f"grad: variable {i} (shape {fmt_shape(v.shape)}) is not in a computational "
                "graph. Fix: call attach_grad() on it before computing the heads inside "
                "autograd.record()."
            )
        nodes.append(v._node)
    res = backward_pass(
        heads,
        hgs,
        nodes,
        create_graph=create_graph,
        retain_graph=retain_graph,
        train_mode=train_mode,
    )
    out = []
    for i, (v, g) in enumerate(zip(variables, res)):
        if g is None:
            raise GraphError(
                f"grad: the heads do not depend on variable {i} (shape {fmt_shape(v.shape)}). "
                "Fix: remove it from `variables`, or check that it is used inside "
                "autograd.record()."
            )
        out.append(g if isinstance(g, NDArray) else NDArray(g))
    return out


def get_symbol(x: Any) -> Any:
    """Not supported: tapegrad has no symbolic graph."""
    raise TapegradError(
        "get_symbol: tapegrad has no Symbol API. Fix: use tapegrad.explain "
        "to print or draw the recorded graph."
    )


class Function:
    """Custom differentiable operation, as ``mx.autograd.Function``.

    Subclass it and define ``forward(self, *inputs)`` and ``backward(self, *output_grads)``
    on NDArrays; call ``self.save_for_backward(...)`` in forward and read
    ``self.saved_tensors`` in backward. ``backward`` runs with recording off unless the
    gradient is being taken with ``create_graph=True``, in which case the operations it
    uses are recorded (so write it with nd operations to get higher derivatives).

    >>> import tapegrad as mx
    >>> class Sigmoid(mx.autograd.Function):
    ...     def forward(self, x):
    ...         y = 1 / (1 + mx.nd.exp(-x))
    ...         self.save_for_backward(y)
    ...         return y
    ...     def backward(self, dy):
    ...         (y,) = self.saved_tensors
    ...         return dy * y * (1 - y)
    >>> x = mx.nd.array([0.0]); x.attach_grad()
    >>> with mx.autograd.record():
    ...     z = Sigmoid()(x)
    >>> z.backward()
    >>> float(x.grad.asscalar())
    0.25
    """

    def __init__(self) -> None:
        self.saved_tensors: tuple = ()

    def save_for_backward(self, *args: Any) -> None:
        self.saved_tensors = args

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *output_grads: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *inputs: NDArray) -> Any:
        from .core import RAW, primitive, wrap

        detached = [x.detach() if isinstance(x, NDArray) else x for x in inputs]
        with pause(train_mode=STATE.training):
            outputs = self.forward(*detached)
        single = isinstance(outputs, NDArray)
        outs = [outputs] if single else list(outputs)
        if not STATE.recording or not any(
            isinstance(x, NDArray) and x._node is not None for x in inputs
        ):
            return outputs
        fn = self
        n_in = len(inputs)
        saved = self.saved_tensors

        def make_rule(i: int, k: int):
            def rule(xp: Any, g: Any, ans: Any, *args: Any) -> Any:
                gs = [None] * len(outs)
                gs[k] = g if isinstance(g, NDArray) else NDArray(g)
                gs = [x if x is not None else NDArray(o._data * 0) for x, o in zip(gs, outs)]
                if xp is not RAW:
                    # differentiable backward: saved inputs/outputs become the recorded ones
                    swap = {id(d): a for d, a in zip(detached, args)}
                    swap[id(outs[k])] = ans
                    fn.saved_tensors = tuple(swap.get(id(t), t) for t in saved)
                try:
                    with _Scope(STATE.recording, None):
                        r = fn.backward(*gs)
                finally:
                    fn.saved_tensors = saved
                r = [r] if isinstance(r, NDArray) or n_in == 1 else list(r)
                gi = r[i]
                if not isinstance(gi, NDArray):
                    gi = NDArray(gi)
                return gi._data if xp is RAW else gi

            return rule

        results = []
        for k, o in enumerate(outs):
            prim = primitive(
                f"Function:{type(self).__name__}",
                lambda *a, _o=o: _o._data,
                [make_rule(i, k) for i in range(n_in)],
                None,
            )
            r = prim(*inputs)
            results.append(wrap(o._data, r._node))
        return results[0] if single else results
