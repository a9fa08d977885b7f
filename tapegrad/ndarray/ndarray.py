"""NDArray: a NumPy array with a graph node, forward-mode tangents and a version counter.

The class is deliberately thin: operators call primitives (through
:data:`tapegrad.core.TAPE`), which do the recording.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import (
    ArgumentError,
    ArgumentValueError,
    IndexingError,
    ShapeError,
    TapegradError,
    fmt_shape,
)
from ..context import _CPU, Context, gpu_error
from ..core import (
    PRIMITIVES,
    STATE,
    TAPE,
    Leaf,
    backward_pass,
    note_change,
    set_array_type,
    tick,
    wrap,
)

__all__ = ["NDArray", "InplaceError"]

T = TAPE


class InplaceError(TapegradError, NotImplementedError):
    """An in-place change of an array that is part of the graph being recorded."""


def _dtype(d: Any) -> np.dtype:
    """``None`` means float32 (MXNet's default); anything NumPy understands otherwise."""
    if d is None:
        return np.dtype(np.float32)
    return np.dtype(d)


def _raw(x: Any) -> Any:
    return x._data if type(x) is NDArray else x


_INT = (int, np.integer)


def _index_key(key: Any, shape: tuple) -> Any:
    """MXNet indexing keys -> NumPy keys (NDArray indices become integer/boolean arrays;
    an integer index into a 1-D array keeps one element, as in MXNet 1.x). Index arrays are
    copied: a recorded ``x[idx]`` must not change when ``idx`` is changed afterwards."""
    if type(key) is NDArray:
        _read(key, "indexing with an NDArray")
        k = np.asarray(key._data)
        return k.copy() if k.dtype == np.bool_ else k.astype(np.int64)
    if type(key) is np.ndarray:
        return key.copy()
    if isinstance(key, tuple):
        if (
            len(key) == len(shape)
            and key
            and all(isinstance(k, _INT) and not isinstance(k, bool) for k in key)
        ):
            # every axis indexed by an integer: MXNet 1.x gives shape (1,), not a 0-d array
            n, i = shape[-1], int(key[-1])
            if not -n <= i < n:
                raise IndexingError(
                    f"index {i} is out of bounds for axis {len(shape) - 1} of an NDArray of "
                    f"shape {fmt_shape(shape)}. Fix: use an index in [{-n}, {n - 1}]."
                )
            return key[:-1] + (slice(i % n, i % n + 1),)
        return tuple(
            _index_key(k, ()) if type(k) in (NDArray, np.ndarray, list) else k for k in key
        )
    if isinstance(key, _INT) and not isinstance(key, bool) and len(shape) == 1:
        n = shape[0]
        i = int(key)
        if not -n <= i < n:
            raise IndexingError(
                f"index {i} is out of bounds for an NDArray of shape {fmt_shape(shape)}. "
                f"Fix: use an index in [{-n}, {n - 1}]."
            )
        i %= n
        return slice(i, i + 1)
    if isinstance(key, list):
        try:
            return np.asarray(key)
        except ValueError as e:  # a ragged list
            raise IndexingError(
                f"cannot index an NDArray of shape {fmt_shape(shape)} with the list {key!r}: "
                f"{str(e).rstrip('.')}. Fix: index with a list of integers, or a tuple for "
                "several axes."
            ) from None
    return key


class NDArray:
    """An n-dimensional array on the CPU (NumPy), with MXNet 1.x's interface.

    Create arrays with :func:`tapegrad.nd.array`, :func:`~tapegrad.nd.zeros` etc.

    >>> import tapegrad as mx
    >>> x = mx.nd.array([[1, 2], [3, 4]])
    >>> x.attach_grad()
    >>> with mx.autograd.record():
    ...     y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    <BLANKLINE>
    [[2. 4.]
     [6. 8.]]
    <NDArray 2x2 @cpu(0)>
    """

    # _ctx: the CPU context the array was created on, set only when it is not cpu(0) (the
    # engine's results leave it unset: they read as cpu(0))
    __slots__ = ("_data", "_node", "_tan", "_version", "_ctx", "__weakref__")
    # make NumPy defer to our reflected operators (np.float32(2) * x -> NDArray)
    __array_priority__ = 1000.0
    __array_ufunc__ = None

    def __init__(self, data: Any, ctx: Any = None, dtype: Any = None) -> None:
        if isinstance(data, NDArray):
            data = data._data
        # a copy: memory NumPy owns can change without tapegrad's knowing (a recorded graph
        # would then differentiate against the new values); nd.array copies too
        d = np.array(data, dtype=dtype)
        # 0-d data is kept as a NumPy scalar: ufuncs on scalars are several times faster
        self._data = d[()] if d.ndim == 0 else d
        self._node = None
        self._tan = None
        self._version = 0
        c = Context._default_ctx.value if ctx is None else ctx
        if c is not None and c is not _CPU:  # (the common case costs one thread-local read)
            c = c if type(c) is Context else Context(c)
            if c.device_typeid == 2:
                raise gpu_error("NDArray", c)
            if c != _CPU:
                self._ctx = c

    # ---- basic properties -----------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> type:
        """The NumPy scalar type of the elements, as in MXNet: ``x.dtype is np.float32``
        (printed ``<class 'numpy.float32'>``). ``np.dtype(x.dtype)`` gives the ``np.dtype``
        (``.kind``, ``.itemsize``, ``.name``); ``x.dtype == np.float32`` and
        ``x.astype(x.dtype)`` work. Like MXNet's, it does not compare equal to the string
        ``'float32'``."""
        return self._data.dtype.type

    @property
    def size(self) -> int:
        return int(np.size(self._data))

    @property
    def ndim(self) -> int:
        return np.ndim(self._data)

    @property
    def context(self) -> Context:
        """The context the array was created on (``cpu(0)`` unless created with another
        CPU context); results of operators are on ``cpu(0)``."""
        try:
            return self._ctx
        except AttributeError:
            return _CPU

    ctx = context

    @property
    def stype(self) -> str:
        return "default"

    @property
    def T(self) -> NDArray:
        return self.transpose()

    @property
    def grad(self) -> NDArray | None:
        """The gradient buffer of a variable (after :meth:`attach_grad`), else None."""
        n = self._node
        return n.grad if type(n) is Leaf else None

    @property
    def _fresh_grad(self) -> bool:
        n = self._node
        return bool(type(n) is Leaf and n.fresh)

    @_fresh_grad.setter
    def _fresh_grad(self, value: bool) -> None:
        n = self._node
        if type(n) is Leaf:
            n.fresh = bool(value)

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.shape)
        return f"\n{np.asarray(self._data)}\n<NDArray {shape} @{self.context}>"

    def __str__(self) -> str:
        return self.__repr__()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The data for NumPy. Without a copy it is a read-only view: a write through it
        would bypass the version checks that keep gradients right, so NumPy refuses it
        (change the NDArray itself, ``x[:] = v``, or take a copy, ``x.asnumpy()``)."""
        _read(self, "np.asarray()")
        a = np.asarray(self._data)
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        if copy:
            return np.array(a)
        v = a.view()
        v.flags.writeable = False
        return v

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d NDArray")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        _read(self, "bool()")
        if self.size == 1:
            return bool(np.asarray(self._data).reshape(-1)[0])
        if self.size == 0:
            return False
        raise ArgumentValueError(
            f"The truth value of an NDArray of shape {fmt_shape(self.shape)} is ambiguous. "
            "Fix: reduce it first, e.g. (x > 0).sum() or x.asnumpy().any()."
        )

    __hash__ = object.__hash__

    # ---- conversion -----------------------------------------------------------------
    def asnumpy(self) -> np.ndarray:
        """A NumPy copy of the data."""
        _read(self, "asnumpy()")
        return np.array(self._data)

    def asscalar(self) -> Any:
        """The single element as a NumPy scalar (the array must have exactly one)."""
        if self.size != 1:
            raise ShapeError(
                f"asscalar: the array has shape {fmt_shape(self.shape)} ({self.size} elements) "
                "but asscalar needs exactly one. Fix: index or reduce it first, e.g. "
                "x[0].asscalar() or x.sum().asscalar()."
            )
        _read(self, "asscalar()")
        return np.asarray(self._data).reshape(-1)[0]

    def item(self) -> Any:
        """The single element as a Python number."""
        return self.asscalar().item()

    def tolist(self) -> list:
        _read(self, "tolist()")
        return np.asarray(self._data).tolist()

    def astype(self, dtype: Any, copy: bool = True) -> NDArray:
        """Cast to ``dtype`` (differentiable: the gradient is cast back)."""
        dt = np.dtype(dtype)
        if not copy and dt == self._data.dtype:
            return self
        return T.cast(self, dtype=dt)

    def copy(self) -> NDArray:
        """A copy with its own memory (recorded: gradients flow through it)."""
        return T.copy(self)

    def copyto(self, other: Any) -> NDArray:
        """Copy into another NDArray (``other[:] = self``) or to a context (a new array;
        a GPU context raises: there is none)."""
        if isinstance(other, Context):
            if other.device_typeid == 2:
                raise gpu_error("copyto", other)
            r = self.copy()
            if other != _CPU:
                r._ctx = other
            return r
        if not isinstance(other, NDArray):
            raise TypeError(
                f"copyto: the target must be an NDArray or a Context, not "
                f"{type(other).__name__}. Fix: pass mx.cpu() or an NDArray of shape "
                f"{fmt_shape(self.shape)}."
            )
        if other.shape != self.shape:
            raise ShapeError(
                f"copyto: cannot copy an array of shape {fmt_shape(self.shape)} into one of "
                f"shape {fmt_shape(other.shape)}. Fix: the target must have the same shape."
            )
        other[...] = self
        return other

    def as_in_context(self, context: Any) -> NDArray:
        """This array if it is on ``context`` already, else a copy there (recorded, as
        MXNet's). A GPU context raises, as creating an array there does: there is none."""
        c = context if type(context) is Context else Context(context)
        if c == self.context:
            return self
        if c.device_typeid == 2:
            raise gpu_error("as_in_context", c)
        return self.copyto(c)

    as_in_ctx = as_in_context

    def wait_to_read(self) -> None:
        """No-op: NumPy computations are synchronous."""

    def detach(self) -> NDArray:
        """The same data, cut from the graph (and from forward-mode tangents)."""
        if STATE.flags.tracing is not None and self._node is not None:
            return T.stop_gradient(self)  # a compiled function recomputes it each call
        return wrap(self._data)

    # ---- autograd ---------------------------------------------------------------------
    def attach_grad(self, grad_req: str = "write", stype: Any = None) -> None:
        """Make this array a variable: allocate its gradient buffer (zeros).

        ``grad_req``: 'write' (each backward overwrites), 'add' (accumulates) or 'null'.
        """
        _check_grad_req(grad_req, "attach_grad")
        dt = self._data.dtype
        if dt.kind not in "fc":
            raise TapegradError(
                f"attach_grad: an array of dtype {dt} (shape {fmt_shape(self.shape)}) "
                "cannot have a gradient. Fix: convert it first, e.g. "
                "x = x.astype('float32')."
            )
        buf = wrap(np.zeros(self.shape, dtype=dt))
        self._node = Leaf(self.shape, dt, buf, grad_req)
        self._tan = None

    def backward(
        self, out_grad: Any = None, retain_graph: bool = False, train_mode: bool = True
    ) -> None:
        """Gradients of this array (summed if it has several elements, unless ``out_grad``,
        the head gradient, is given) into every variable."""
        if out_grad is None:
            backward_pass([self], [None], None, False, retain_graph, train_mode)
        else:
            hg = head_grad(self, out_grad, "backward")
            backward_pass([self], [hg], None, False, retain_graph, train_mode)

    # ---- mutation ---------------------------------------------------------------------
    def _bump_version(self, region: Any = None) -> None:
        """Record that the data changed in place (saved copies of it become invalid).
        ``region``: the view of the data that changed, when only part of it did."""
        self._version = note_change(region if type(region) is np.ndarray else self._data)

    def _check_inplace(self, what: str) -> None:
        f = STATE.flags
        if self._node is not None and f.recording:
            if f.tracing is not None and f.tracing.writable(self):
                return  # a traced argument changed in place: replayed by the compiled code
            raise InplaceError(
                f"NotImplementedError: Inplace operations (+=, -=, x[:]=, etc) are not "
                f"supported when recording with autograd ({what} on an array of shape "
                f"{fmt_shape(self.shape)} that is part of the recorded graph). Fix: write "
                "y = x + 1 instead of x += 1, or do it outside autograd.record()."
            )

    def _writable(self) -> np.ndarray:
        d = self._data
        if type(d) is not np.ndarray or not d.flags.writeable:
            d = self._data = np.array(d)
        return d

    def _alias(self) -> NDArray:
        """Another NDArray object for the current value (the input of a recorded in-place
        operation, so that rebinding ``self`` leaves the recorded input untouched)."""
        a = wrap(self._data, self._node, self._tan)
        a._version = self._version
        return a

    def _rebind(self, r: NDArray) -> NDArray:
        self._data, self._node, self._tan = r._data, r._node, r._tan
        self._version = tick()
        return self

    def __setitem__(self, key: Any, value: Any) -> None:
        self._check_inplace("__setitem__")
        k = _index_key(key, self.shape)
        f = STATE.flags
        if f.tracing is not None and f.tracing.capture_write(self, k, value):
            return
        if f.recording and type(value) is NDArray and value._node is not None:
            self._rebind(T.index_update(self._alias(), value, key=k))
            return
        v = _raw(value)
        if v is None:
            raise ArgumentError(
                f"__setitem__: cannot assign None to the selection {key!r} of an array of "
                f"shape {fmt_shape(self.shape)}. Fix: assign a number or an array "
                "(float('nan') for a missing value)."
            )
        d = self._writable()
        try:
            d[k] = v
        except (ValueError, TypeError, IndexError, OverflowError) as e:
            raise _setitem_error(self, key, v, e) from None
        # a basic key selects a view: only that region changed (saved disjoint parts stay valid)
        self._bump_version(d[k] if _is_basic_key(k) else None)

    def __getitem__(self, key: Any) -> NDArray:
        k = _index_key(key, self.shape)
        return T.getitem(self, key=k)

    def _inplace(self, op: Any, other: Any) -> NDArray:
        prim = op.prim
        if type(other) not in _PLAIN_OPERANDS:
            other = _operand(other, _SYMBOLS.get(prim.name, prim.name) + "=")
            if other is NotImplemented:
                return other
        self._check_inplace(f"in-place {prim.name}")
        f = STATE.flags
        if f.tracing is not None and f.tracing.capture_write(self, Ellipsis, None, op, other):
            return self
        if f.recording and type(other) is NDArray and other._node is not None:
            return self._rebind(op(self._alias(), other))
        d = self._data
        o = _raw(other)
        uf = _INPLACE_UFUNCS.get(prim.name)
        if (
            uf is not None
            and type(d) is np.ndarray
            and d.flags.writeable
            and _fits(d.shape, np.shape(o))
        ):
            uf(d, o, out=d, casting="unsafe")
        else:
            try:
                res = prim.impl(d, o)
            except ValueError as e:
                raise ShapeError(
                    f"in-place {prim.name}: shapes {fmt_shape(self.shape)} and "
                    f"{fmt_shape(np.shape(o))} do not broadcast: {e}"
                ) from None
            if np.shape(res) != self.shape:
                raise ShapeError(
                    f"in-place {prim.name}: the result has shape {fmt_shape(np.shape(res))} "
                    f"but the array has shape {fmt_shape(self.shape)}. Fix: use the "
                    "out-of-place form, x = x + y."
                )
            if type(d) is np.ndarray and d.flags.writeable:
                d[...] = res
            else:
                self._data = np.asarray(res, dtype=d.dtype)
        self._bump_version()
        return self

    def __iadd__(self, o: Any) -> NDArray:
        return self._inplace(T.add, o)

    def __isub__(self, o: Any) -> NDArray:
        return self._inplace(T.subtract, o)

    def __imul__(self, o: Any) -> NDArray:
        return self._inplace(T.multiply, o)

    def __itruediv__(self, o: Any) -> NDArray:
        return self._inplace(T.divide, o)

    def __imod__(self, o: Any) -> NDArray:
        return self._inplace(T.mod, o)

    def __ipow__(self, o: Any) -> NDArray:
        return self._inplace(T.power, o)

    # ---- arithmetic: the binary operators are made by _binary_operators() below ---------
    def __neg__(self) -> NDArray:
        return T.negative(self)

    def __pos__(self) -> NDArray:
        return self

    def __abs__(self) -> NDArray:
        return T.abs(self)

    # ---- shape (the composites: reshape with MXNet's codes, squeeze, the reductions, ...
    # are attached by ndarray_functions, where they are defined) -------------------------
    def reshape_like(self, other: NDArray) -> NDArray:
        return T.reshape(self, shape=other.shape)

    def transpose(self, *axes: Any) -> NDArray:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return T.transpose(self, axes=tuple(axes) if axes else None)

    def broadcast_like(self, other: NDArray) -> NDArray:
        return T.broadcast_to(self, shape=other.shape)

    def tile(self, reps: Any) -> NDArray:
        return T.tile(self, reps=reps)

    def repeat(self, repeats: int, axis: Any = None) -> NDArray:
        return T.repeat(self, repeats=repeats, axis=axis)

    def flip(self, axis: int) -> NDArray:
        return T.flip(self, axis=axis)

    def zeros_like(self) -> NDArray:
        return NDArray(np.zeros(self.shape, self._data.dtype))

    def ones_like(self) -> NDArray:
        return NDArray(np.ones(self.shape, self._data.dtype))


#: operands the arithmetic operators hand to the primitive unchecked (the common cases)
_PLAIN_OPERANDS = frozenset(
    [NDArray, float, int, bool, np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
     np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]
)  # fmt: skip
_SYMBOLS = {
    "add": "+", "subtract": "-", "multiply": "*", "divide": "/", "floor_divide": "//",
    "mod": "%", "power": "**", "equal": "==", "not_equal": "!=", "greater": ">",
    "greater_equal": ">=", "lesser": "<", "lesser_equal": "<=",
}  # fmt: skip


def _operand(o: Any, sym: str, reflected: bool = False) -> Any:
    """The other operand of an arithmetic operator: a number, an NDArray, or numbers in a
    NumPy array, list or tuple (as an array: Python would repeat a list, or a string, by a
    0-d integer array). An object that opts out of NumPy (``__array_ufunc__ = None``) gets
    NotImplemented, so that its reflected operator runs; anything else is refused (MXNet
    raises a TypeError too), never stored in an object-dtype array."""
    if isinstance(o, NDArray):
        return o
    if isinstance(o, (int, float, complex)):
        return o
    if isinstance(o, (np.ndarray, np.generic)) and o.dtype.kind in "biufc":
        return o
    if getattr(type(o), "__array_ufunc__", False) is None:
        return NotImplemented
    if isinstance(o, (list, tuple)):
        try:
            a = np.asarray(o)
        except ValueError:  # a ragged list
            a = None
        if a is not None and a.dtype.kind in "biufc":
            return a
    r, kind = repr(o), type(o).__name__
    expr = f"{kind} {sym} NDArray" if reflected else f"NDArray {sym} {kind}"
    raise ArgumentError(
        f"{expr}: unsupported operand "
        f"{r if len(r) <= 40 else r[:37] + '...'}. Fix: use a number or an NDArray "
        "(mx.nd.array(...)) as the other operand."
    )


def _binary_operators() -> None:
    """NDArray's arithmetic and comparison operators: the primitive's call, after a type
    test of the other operand (:func:`_operand` for anything but the common types)."""

    def make(call: Any, sym: str, reflected: bool) -> Any:
        if reflected:

            def op(self: NDArray, o: Any, _call: Any = call, _ok: Any = _PLAIN_OPERANDS) -> Any:
                if type(o) not in _ok:
                    o = _operand(o, sym, True)
                    if o is NotImplemented:
                        return o
                return _call(o, self)

        else:

            def op(self: NDArray, o: Any, _call: Any = call, _ok: Any = _PLAIN_OPERANDS) -> Any:
                if type(o) not in _ok:
                    o = _operand(o, sym)
                    if o is NotImplemented:
                        return o
                return _call(self, o)

        return op

    for name, prim, refl in (
        ("add", TAPE.add, True), ("sub", TAPE.subtract, True), ("mul", TAPE.multiply, True),
        ("truediv", TAPE.divide, True), ("floordiv", TAPE.floor_divide, True),
        ("mod", TAPE.mod, True), ("pow", TAPE.power, True), ("gt", TAPE.greater, False),
        ("ge", TAPE.greater_equal, False), ("lt", TAPE.lesser, False),
        ("le", TAPE.lesser_equal, False),
    ):  # fmt: skip
        sym = _SYMBOLS[prim.prim.name]
        op = make(prim, sym, False)
        op.__name__ = op.__qualname__ = f"__{name}__"
        setattr(NDArray, op.__name__, op)
        if refl:
            rop = make(prim, sym, True)
            rop.__name__ = rop.__qualname__ = f"__r{name}__"
            setattr(NDArray, rop.__name__, rop)

    eq, ne = make(TAPE.equal, "==", False), make(TAPE.not_equal, "!=", False)

    def __eq__(self: NDArray, o: Any) -> Any:
        return False if o is None else eq(self, o)

    def __ne__(self: NDArray, o: Any) -> Any:
        return True if o is None else ne(self, o)

    NDArray.__eq__, NDArray.__ne__ = __eq__, __ne__  # type: ignore[method-assign]
    NDArray.__hash__ = object.__hash__  # (defining __eq__ would have removed it)


_binary_operators()


def _setitem_error(x: NDArray, key: Any, v: Any, e: Exception) -> Exception:
    """The typed error of a failed ``x[key] = v``."""
    where = f"the selection {key!r} of an array of shape {fmt_shape(x.shape)}"
    if isinstance(e, IndexError):
        return IndexingError(
            f"__setitem__: the key {key!r} does not index an array of shape "
            f"{fmt_shape(x.shape)}: {e}. Fix: use integers within the bounds, slices, or "
            "integer/boolean arrays."
        )
    try:
        vshape = np.shape(v)
    except ValueError:  # a ragged list
        vshape = None
    if isinstance(e, ValueError) and "shape" in str(e) and vshape is not None:
        return ShapeError(
            f"__setitem__: cannot assign a value of shape {fmt_shape(vshape)} to "
            f"{where}: {e}. Fix: give a value that broadcasts to the selection."
        )
    return ArgumentError(
        f"__setitem__: cannot assign {type(v).__name__} {v!r:.40} to {where} of dtype "
        f"{x._data.dtype}: {str(e).rstrip('.')}. Fix: assign a number, an NDArray or a NumPy array "
        "of numbers."
    )


def _is_basic_key(key: Any) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice)) or k is None or k is Ellipsis for k in items)


def _fits(shape: tuple, other: tuple) -> bool:
    if shape == other or not other:
        return True
    try:
        return np.broadcast_shapes(shape, other) == shape
    except ValueError:
        return False


_INPLACE_UFUNCS = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
}


def _read(a: NDArray, what: str) -> None:
    """Python reads ``a``'s value: a function being traced for compilation cannot replay
    that (data-dependent control flow), so the trace gives up and the function runs eagerly."""
    t = STATE.flags.tracing
    if t is not None:
        t.read(a, what)


def head_grad(head: NDArray, g: Any, where: str) -> NDArray:
    """A head gradient for ``head``: an NDArray of the head's shape."""
    g = g if type(g) is NDArray else NDArray(g, dtype=head._data.dtype)
    if tuple(g.shape) != tuple(head.shape):
        raise ShapeError(
            f"{where}: head gradient of shape {fmt_shape(g.shape)} for a head of shape "
            f"{fmt_shape(head.shape)}. Fix: the head gradient must have the head's shape."
        )
    return g


def _check_grad_req(grad_req: str, where: str) -> None:
    if grad_req not in ("write", "add", "null"):
        raise TapegradError(
            f"{where}: invalid grad_req {grad_req!r}. Fix: use 'write', 'add' or 'null'."
        )


def _primitive_methods() -> None:
    """NDArray methods that are primitives themselves (declared with ``method=``)."""
    for prim in PRIMITIVES.values():
        for m in prim.methods:
            setattr(NDArray, m, prim.call)


_primitive_methods()
set_array_type(NDArray)
