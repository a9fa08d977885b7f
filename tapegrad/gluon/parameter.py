"""Parameters of Gluon blocks: :class:`Parameter`, :class:`Constant`, :class:`ParameterDict`.

Behaviour follows MXNet 1.x ``python/mxnet/gluon/parameter.py``: a Parameter holds one copy of
its value per context and, unless ``grad_req='null'``, a gradient buffer beside each copy (the
value is an autograd variable, as after ``attach_grad``). A shape with a 0 entry is unknown
until the first forward pass infers it ("deferred initialization").
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import autograd, initializer, serialization
from .. import ndarray as nd
from ..base import DeferredInitializationError, ShapeError, TapegradError
from ..context import Context, cpu, current_context, num_gpus

__all__ = [
    "DeferredInitializationError",
    "ParameterLoadError",
    "Parameter",
    "Constant",
    "ParameterDict",
    "tensor_types",
]

tensor_types = (nd.NDArray,)

_GRAD_REQS = ("write", "add", "null")
#: MXNet's default global initializer: Uniform(0.07).
DEFAULT_INIT = initializer.Uniform()


class ParameterLoadError(TapegradError, AssertionError, ValueError):
    """Loading parameters failed: a name is missing or extra, or a shape/dtype differs.

    It is also an ``AssertionError`` and a ``ValueError``, the types MXNet raises for these
    cases, so MXNet code that catches them keeps working.
    """


def _brief(names: Any, limit: int = 7) -> str:
    """``'a', 'b', ..., 'z'``: a list of names shortened for messages."""
    names = [str(n) for n in names]
    if len(names) > limit:
        half = limit // 2
        return _brief(names[:half], limit) + ", ..., " + _brief(names[-half:], limit)
    return ", ".join(f"'{n}'" for n in names)


def _indent(s: str, num_spaces: int) -> str:
    """Indent every line of ``s`` but the first by ``num_spaces``."""
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    pad = " " * num_spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])


def _shape_known(shape: tuple | None) -> bool:
    return shape is not None and all(d > 0 for d in shape)


def _dtype_name(dtype: Any) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def _as_shape(shape: Any) -> tuple | None:
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def _ctx_list(ctx: Any) -> list:
    if ctx is None:
        return [current_context()]
    ctxs = [ctx] if isinstance(ctx, Context) else list(ctx)
    for c in ctxs:
        if Context(c).device_type == "gpu" and num_gpus() == 0:
            raise TapegradError(
                f"Cannot place parameters on {c}: tapegrad has no GPU backend "
                "yet. Fix: use ctx=mx.cpu() (or leave ctx out)."
            )
    return ctxs


class Parameter:
    """A container of a weight of a Block: its value (per context) and gradient buffer.

    Args:
        name: the parameter's name, e.g. ``'dense0_weight'``.
        grad_req: ``'write'`` (each backward overwrites the gradient), ``'add'`` (accumulates;
            call :meth:`zero_grad` yourself) or ``'null'`` (no gradient).
        shape: tuple (an int means a vector); a 0 entry is inferred at the first forward pass.
        dtype: data type, float32 by default.
        lr_mult, wd_mult: multipliers of the optimizer's learning rate and weight decay.
        init: the parameter's own initializer; wins over the global one.
        allow_deferred_init: allow :meth:`initialize` while the shape is still unknown.
        differentiable: ``False`` forces ``grad_req='null'``.

    >>> import tapegrad as mx
    >>> w = mx.gluon.Parameter('fc_weight', shape=(2, 3), init=mx.init.One())
    >>> w.initialize()
    >>> w
    Parameter fc_weight (shape=(2, 3), dtype=<class 'numpy.float32'>)
    >>> w.data().sum().item(), w.grad().sum().item()
    (6.0, 0.0)
    """

    def __init__(
        self,
        name: str,
        grad_req: str = "write",
        shape: Any = None,
        dtype: Any = np.float32,
        lr_mult: float = 1.0,
        wd_mult: float = 1.0,
        init: Any = None,
        allow_deferred_init: bool = False,
        differentiable: bool = True,
        stype: str = "default",
        grad_stype: str = "default",
    ) -> None:
        self._var = None
        self._data: list | None = None
        self._grad: list | None = None
        self._ctx_list: list | None = None
        self._trainer = None
        self._deferred_init: tuple = ()
        self._differentiable = differentiable
        self._allow_deferred_init = allow_deferred_init
        self._grad_req: str | None = None
        self._grad_req_asked = "write"  # what the user asked for (see _effective_req)
        for what, st in (("stype", stype), ("grad_stype", grad_stype)):
            if st != "default":
                raise ValueError(
                    f"Parameter '{name}': {what}={st!r} is not supported; tapegrad "
                    "stores every parameter densely. Fix: use 'default'."
                )
        self._stype = stype
        self._grad_stype = grad_stype
        self._shape = _as_shape(shape)
        self.name = name
        self.dtype = dtype
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self.grad_req = grad_req
        self.init = init

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self.shape}, dtype={self.dtype})"

    # ------------------------------------------------------------------ attributes
    @property
    def dtype(self) -> Any:
        """The data type as it was given, as in MXNet: ``np.float32`` (the default, printed
        ``<class 'numpy.float32'>``) or a name such as ``'float32'`` (the layers' default).
        ``np.dtype(p.dtype)`` compares either."""
        return self._dtype_given

    @dtype.setter
    def dtype(self, dtype: Any) -> None:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(
                f"Parameter '{self.name}': invalid dtype {dtype!r}; use e.g. "
                "'float32' or numpy.float64"
            ) from None
        self._dtype = dt  # (internal checks read the np.dtype)
        self._dtype_given = dtype
        if self.__dict__.get("_grad_req") is not None and self.__dict__.get("_data") is None:
            self._grad_req = self._effective_req()  # no value yet: cast() handles the others

    @property
    def allow_deferred_init(self) -> bool:
        """Whether :meth:`initialize` may wait for the first forward pass to know the shape."""
        return self._allow_deferred_init

    @allow_deferred_init.setter
    def allow_deferred_init(self, value: bool) -> None:
        self._allow_deferred_init = bool(value)

    @property
    def grad_req(self) -> str:
        """``'write'``, ``'add'`` or ``'null'``. Setting ``'null'`` drops the gradient buffer
        and detaches the value from autograd; setting another value re-creates it (zeroed).

        A parameter of integer (or boolean) dtype cannot be differentiated: its ``grad_req``
        is ``'null'`` whatever was asked, and the Trainer leaves it alone; cast to a float
        dtype, it gets the ``grad_req`` that was asked for."""
        return self._grad_req  # type: ignore[return-value]

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        if req not in _GRAD_REQS:
            raise ValueError(
                f"Parameter '{self.name}': grad_req must be one of 'write', 'add' "
                f"or 'null', but got {req!r}"
            )
        self._grad_req_asked = req
        req = self._effective_req()
        if self._grad_req == req:
            return
        self._grad_req = req
        if req == "null" and self._grad is not None:
            self._grad = None
            self._data = [d.detach() for d in self._data or []]
        elif self._data is not None:
            self._init_grad()

    def _effective_req(self) -> str:
        """The grad_req asked for, or 'null' when there can be no gradient (not
        differentiable, or a dtype that is not floating point)."""
        if not self._differentiable or self._dtype.kind not in "fc":
            return "null"
        return self._grad_req_asked

    @property
    def shape(self) -> tuple | None:
        """The shape; 0 marks a dimension still unknown (inferred at the first forward)."""
        return self._shape

    @shape.setter
    def shape(self, new_shape: Any) -> None:
        new_shape = _as_shape(new_shape)
        if self._shape is None:
            self._shape = new_shape
            return
        if (
            new_shape is None
            or len(new_shape) != len(self._shape)
            or not all(old in (0, new) for old, new in zip(self._shape, new_shape))
        ):
            raise ShapeError(
                f"Parameter '{self.name}': expected shape {new_shape} is incompatible with "
                f"given shape {self._shape}. Only dimensions that are 0 (unknown) may change. "
                "Fix: check the layer's in_units/in_channels against the input's shape."
            )
        self._shape = new_shape

    # ------------------------------------------------------------------ access
    def _set_trainer(self, trainer: Any) -> None:
        """Remember the Trainer that updates this parameter."""
        self._trainer = trainer

    def _check_and_get(self, arr_list: list | None, ctx: Any) -> Any:
        if arr_list is not None:
            if ctx is list:
                return arr_list
            if ctx is None:
                if len(arr_list) == 1:
                    return arr_list[0]
                ctx = current_context()
            for c, arr in zip(self._ctx_list or (), arr_list):
                if c == ctx:
                    return arr
            raise RuntimeError(
                f"Parameter '{self.name}' was not initialized on context {ctx}. It was only "
                f"initialized on {self._ctx_list}."
            )
        if self._deferred_init:
            raise DeferredInitializationError(
                f"Parameter '{self.name}' has not been initialized yet because initialization "
                f"was deferred: its shape {self.shape} is not fully known. Actual "
                "initialization happens during the first forward pass. Please pass one batch "
                "of data through the network before accessing Parameters. You can also avoid "
                "deferred initialization by specifying in_units, in_channels, etc., for "
                "network layers."
            )
        raise RuntimeError(
            f"Parameter '{self.name}' has not been initialized. Note that you should "
            "initialize parameters and create Trainer with Block.collect_params() instead of "
            "Block.params because the later does not include Parameters of nested child "
            "Blocks. Fix: call net.initialize() (or param.initialize()) first."
        )

    def data(self, ctx: Any = None) -> Any:
        """The value on ``ctx`` (the only copy when ``ctx`` is None): an NDArray that is an
        autograd variable unless ``grad_req='null'``."""
        data = self._data
        if ctx is None and data is not None and len(data) == 1:
            return data[0]
        return self._check_and_get(data, ctx)

    def list_data(self) -> list:
        """The values on all contexts, in the order they were initialized."""
        return self._check_and_get(self._data, list)

    def _grads(self) -> list | None:
        grads = self._grad
        if grads is not None and self._data is not None:
            # the gradient buffer belongs to the variable; read it back in case it was replaced
            for k, d in enumerate(self._data):
                dg = d.grad
                if dg is not None and dg is not grads[k]:
                    grads = self._grad = [
                        d.grad if d.grad is not None else g for d, g in zip(self._data, grads)
                    ]
                    break
        return grads

    def grad(self, ctx: Any = None) -> Any:
        """The gradient buffer on ``ctx``."""
        if self._data is not None and self._grad is None:
            raise RuntimeError(
                f"Cannot get gradient array for Parameter '{self.name}' because "
                "grad_req='null'. Fix: set param.grad_req = 'write' (or 'add') first."
            )
        return self._check_and_get(self._grads(), ctx)

    def list_grad(self) -> list:
        """The gradient buffers on all contexts."""
        if self._data is not None and self._grad is None:
            raise RuntimeError(
                f"Cannot get gradient array for Parameter '{self.name}' because "
                "grad_req='null'. Fix: set param.grad_req = 'write' (or 'add') first."
            )
        return self._check_and_get(self._grads(), list)

    def list_ctx(self) -> list:
        """The contexts this parameter is (or will be, when deferred) initialized on."""
        if self._data is None:
            if self._deferred_init:
                return self._deferred_init[1]
            raise RuntimeError(f"Parameter '{self.name}' has not been initialized")
        return list(self._ctx_list or [])

    def zero_grad(self) -> None:
        """Set the gradient buffers to 0 (nothing happens without a gradient buffer)."""
        grads = self._grads()
        if grads is None:
            return
        for g in grads:
            g[:] = 0

    # ------------------------------------------------------------------ initialization
    def initialize(
        self,
        init: Any = None,
        ctx: Any = None,
        default_init: Any = DEFAULT_INIT,
        force_reinit: bool = False,
    ) -> None:
        """Create the value (and gradient buffer).

        Args:
            init: initializer for this call; overrides ``self.init`` and ``default_init``.
            ctx: context or list of contexts (one independent copy each).
            default_init: used when both ``init`` and ``self.init`` are None.
            force_reinit: re-initialize a parameter that already has a value.

        With an unknown shape and ``allow_deferred_init`` the work waits for the first
        forward pass.
        """
        if self._data is not None and not force_reinit:
            warnings.warn(
                f"Parameter '{self.name}' is already initialized, ignoring. Set "
                "force_reinit=True to re-initialize.",
                stacklevel=2,
            )
            return
        ctx = _ctx_list(ctx)
        self._data = self._grad = None
        if init is None:
            init = default_init if self.init is None else self.init
        if not _shape_known(self.shape):
            if self._allow_deferred_init:
                self._deferred_init = (init, ctx, default_init, None)
                return
            raise ValueError(
                f"Cannot initialize Parameter '{self.name}' because it has invalid shape: "
                f"{self.shape}. Fix: give the full shape, or create it with "
                "allow_deferred_init=True so the first forward pass infers it."
            )
        self._deferred_init = (init, ctx, default_init, None)
        try:
            self._finish_deferred_init()
        except Exception:
            self._deferred_init = ()
            raise

    def _finish_deferred_init(self) -> None:
        """Run the initialization that :meth:`initialize` deferred (shape now known)."""
        if not self._deferred_init:
            return
        init, ctx, default_init, data = self._deferred_init
        if not _shape_known(self.shape):
            raise ValueError(
                f"Cannot initialize Parameter '{self.name}' because it has invalid shape: "
                f"{self.shape}. Please specify in_units, in_channels, etc for `Block`s."
            )
        with autograd.pause():
            if data is None:
                data = nd.zeros(self.shape, dtype=self.dtype)
                # on failure (e.g. Xavier on a vector) the deferred state is kept for a retry
                initializer.create(default_init)(
                    initializer.InitDesc(self.name, {"__init__": init}), data
                )
            self._init_impl(data, ctx)
        self._deferred_init = ()

    def _save_state(self) -> tuple:
        """What a deferred initialization changes (shape, values, gradient buffers, pending
        initializer), so that a failed first forward can be undone with
        :meth:`_restore_state`."""
        return (self._shape, self._data, self._grad, self._ctx_list, self._deferred_init)

    def _restore_state(self, state: tuple) -> None:
        """Undo to a state saved by :meth:`_save_state`."""
        self._shape, self._data, self._grad, self._ctx_list, self._deferred_init = state

    def _init_impl(self, data: Any, ctx_list: list) -> None:
        """Set the value on every context and create the gradient buffers."""
        if not isinstance(data, nd.NDArray):
            data = nd.array(data, dtype=self.dtype)
        self._ctx_list = list(ctx_list)
        with autograd.pause():
            # one copy per context, each placed there (its .context says which)
            self._data = [data.copyto(c) for c in self._ctx_list]
        self._init_grad()

    def _init_grad(self) -> None:
        """Make every value an autograd variable with a zeroed gradient buffer (none for
        ``grad_req='null'`` and for dtypes that cannot have a gradient)."""
        self._grad_req = self._effective_req()
        if self._grad_req == "null":
            self._grad = None
            return
        for d in self._data or []:
            d.attach_grad(self.grad_req)
        self._grad = [d.grad for d in self._data or []]

    def _reduce(self) -> Any:
        """The value averaged over contexts, as a new array (what gets saved)."""
        block = self.list_data()
        with autograd.pause():
            if len(block) == 1:
                return block[0].copy()
            total = block[0].copy()
            for w in block[1:]:
                total += w
            return total / len(block)

    def _load_init(
        self, data: Any, ctx: Any = None, cast_dtype: bool = False, dtype_source: str = "current"
    ) -> None:
        """(Re)initialize from loaded ``data`` after checking its shape and dtype."""
        data = self._check_loadable(data, cast_dtype, dtype_source)
        if self.shape:
            self._shape = tuple(s if s != 0 else d for s, d in zip(self.shape, data.shape))
        else:
            self._shape = tuple(data.shape)
        if cast_dtype and dtype_source == "saved":
            self.dtype = data.dtype
        if isinstance(ctx, Context):
            ctx = [ctx]
        if self._data is None:
            if self._deferred_init:
                ctx = self._deferred_init[1]
            elif ctx is None:
                ctx = [cpu()]
            self._init_impl(data, ctx)
        elif np.dtype(self._data[0].dtype) != np.dtype(self.dtype):
            self._init_impl(data, self._ctx_list or [cpu()])
        else:
            self.set_data(data)
        self._deferred_init = ()

    def _check_loadable(
        self, data: Any, cast_dtype: bool = False, dtype_source: str = "current"
    ) -> Any:
        """Check ``data`` against this parameter's shape/dtype; return it (cast if asked)."""
        if dtype_source not in ("current", "saved"):
            raise ValueError(f"dtype_source must be 'current' or 'saved', got {dtype_source!r}")
        if not isinstance(data, nd.NDArray):
            data = nd.array(data, dtype=getattr(data, "dtype", None))
        shape = tuple(data.shape)
        if self.shape and (
            len(self.shape) != len(shape) or not all(s in (0, d) for s, d in zip(self.shape, shape))
        ):
            raise ParameterLoadError(
                f"Failed loading Parameter '{self.name}' from saved params: shape "
                f"incompatible expected {self.shape} vs saved {shape}. Fix: build the network "
                "with the same layer sizes as the one that was saved."
            )
        if np.dtype(self.dtype) != np.dtype(data.dtype):
            if not cast_dtype:
                raise ParameterLoadError(
                    f"Failed loading Parameter '{self.name}' from saved params: dtype "
                    f"incompatible expected {_dtype_name(self.dtype)} vs saved "
                    f"{_dtype_name(data.dtype)}. Set cast_dtype=True to cast the dtype of "
                    "saved params."
                )
            if dtype_source == "current":
                data = data.astype(self.dtype)
        return data

    def reset_ctx(self, ctx: Any) -> None:
        """Move the parameter to other contexts (its value is kept)."""
        ctx = _ctx_list(ctx)
        if self._data is not None:
            if ctx == self._ctx_list:
                return
            data = self._reduce()
            self._init_impl(data, ctx)
        elif self._deferred_init:
            init, _, default_init, data = self._deferred_init
            self._deferred_init = (init, ctx, default_init, data)
        else:
            raise ValueError(
                f"Cannot reset context for Parameter '{self.name}' because it has "
                "not been initialized."
            )

    def set_data(self, data: Any) -> None:
        """Overwrite the value on every context with ``data`` (shape must match)."""
        shape = tuple(np.shape(data)) if not hasattr(data, "shape") else tuple(data.shape)
        self.shape = shape
        if self._data is None:
            if not self._deferred_init:
                raise RuntimeError(
                    f"Parameter '{self.name}' has not been initialized. Fix: "
                    "call initialize() before set_data()."
                )
            self._deferred_init = self._deferred_init[:3] + (data,)
            return
        if self._trainer is not None and hasattr(self._trainer, "_reset_kvstore"):
            kv_ok = getattr(self._trainer, "_kv_initialized", False)
            if kv_ok and getattr(self._trainer, "_update_on_kvstore", False):
                self._trainer._reset_kvstore()
        with autograd.pause():
            for arr in self._data:
                arr[:] = data

    def cast(self, dtype: Any) -> None:
        """Convert value and gradient buffer to ``dtype`` (both keep their values, as in
        MXNet).

        >>> import tapegrad as mx
        >>> p = mx.gluon.Parameter('p', shape=(2,), init=mx.init.One()); p.initialize()
        >>> p.cast('float64'); p.data().dtype, p.grad().dtype
        (<class 'numpy.float64'>, <class 'numpy.float64'>)
        """
        self.dtype = dtype
        if self._data is None:
            return
        grads = self._grads()
        with autograd.pause():
            self._data = [
                d.detach().astype(self.dtype).as_in_context(d.context) for d in self._data
            ]
            old = [g.asnumpy() for g in grads] if grads is not None else None
        self._init_grad()
        if old is not None and self._grad is not None:
            with autograd.pause():
                for g, v in zip(self._grad, old):
                    g[:] = v.astype(g.dtype)

    def var(self) -> Any:
        """This parameter as a variable of a symbolic graph (``mx.sym.var``), with MXNet's
        attributes (shape, dtype, learning-rate and weight-decay multipliers, initializer)."""
        from .. import symbol

        init = self.init
        if init is not None and not isinstance(init, str):
            init = init.dumps() if hasattr(init, "dumps") else None
        return symbol.var(
            self.name,
            shape=self.shape,
            dtype=self.dtype,
            lr_mult=self.lr_mult,
            wd_mult=self.wd_mult,
            init=init,
            stype="default",
        )


class _ValueInit(initializer.Initializer):
    """Initializer copying a fixed value (used by :class:`Constant`)."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def __repr__(self) -> str:
        return f"ConstantValue(shape={tuple(self.value.shape)})"

    def _init_weight(self, _: str, arr: Any) -> None:
        arr[:] = self.value


class Constant(Parameter):
    """A parameter that autograd and the Trainer leave alone (``grad_req`` is always 'null').

    Its value changes only through :meth:`set_data`.

    >>> import tapegrad as mx
    >>> c = mx.gluon.Constant('const', [[1, 2], [3, 4]])
    >>> c.initialize()
    >>> c
    Constant const (shape=(2, 2), dtype=<class 'numpy.float32'>)
    >>> c.data().asnumpy().tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """

    def __init__(self, name: str, value: Any) -> None:
        if not isinstance(value, nd.NDArray):
            value = nd.array(value)
        self.value = value
        super().__init__(
            name, grad_req="null", shape=value.shape, dtype=value.dtype, init=_ValueInit(value)
        )

    def __repr__(self) -> str:
        return f"Constant {self.name} (shape={self.shape}, dtype={self.dtype})"

    @property
    def grad_req(self) -> str:
        return "null"

    @grad_req.setter
    def grad_req(self, req: str) -> None:
        if self.__dict__.get("_grad_req") is None:
            self._grad_req = self._grad_req_asked = "null"
            return
        if req != "null":
            warnings.warn(
                f"Constant parameter '{self.name}' does not support grad_req other "
                f"than 'null', and new value '{req}' is ignored.",
                stacklevel=2,
            )


# keys of ParameterDict.get that are compared with an existing Parameter's attribute
_COMPARED = ("shape", "dtype", "init", "grad_req", "lr_mult", "wd_mult")


class ParameterDict:
    """An ordered dictionary ``name -> Parameter`` with a name prefix.

    ``get(name, **kwargs)`` creates (or retrieves, possibly from the ``shared`` dict) the
    parameter ``prefix + name``.

    >>> import tapegrad as mx
    >>> pd = mx.gluon.ParameterDict('net_')
    >>> w = pd.get('weight', shape=(3, 2))
    >>> list(pd.keys()), w.name
    (['net_weight'], 'net_weight')
    >>> pd.initialize(mx.init.Zero())
    >>> pd['net_weight'].data().shape
    (3, 2)
    """

    def __init__(self, prefix: str = "", shared: ParameterDict | None = None) -> None:
        self._prefix = prefix
        self._params: OrderedDict[str, Parameter] = OrderedDict()
        self._shared = shared

    def __repr__(self) -> str:
        name = self._prefix + " " if self._prefix else ""
        content = "\n".join(_indent(f"  {v}", 2) for v in self.values())
        return f"{name}(\n{content}\n)"

    def __getitem__(self, key: str) -> Parameter:
        try:
            return self._params[key]
        except KeyError:
            raise KeyError(
                f"ParameterDict has no parameter '{key}'; it holds {_brief(self._params)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, key: object) -> bool:
        return key in self._params

    def items(self) -> Any:
        """``(name, Parameter)`` pairs, in insertion order."""
        return self._params.items()

    def keys(self) -> Any:
        """Parameter names (with prefix)."""
        return self._params.keys()

    def values(self) -> Any:
        """The Parameters."""
        return self._params.values()

    @property
    def prefix(self) -> str:
        """Prefix prepended to the names of parameters created by :meth:`get`."""
        return self._prefix

    def _get_impl(self, name: str) -> Parameter | None:
        if name in self._params:
            return self._params[name]
        if self._shared is not None and name in self._shared._params:
            self._params[name] = self._shared._params[name]
            return self._params[name]
        return None

    def get(self, name: str, **kwargs: Any) -> Parameter:
        """The Parameter ``prefix + name``: found here, in the shared dict, or created with
        ``kwargs``. For an existing one, ``kwargs`` must agree with it (a 0 dimension matches
        any size)."""
        name = self.prefix + name
        param = self._get_impl(name)
        if param is None:
            param = Parameter(name, **kwargs)
            self._params[name] = param
            return param
        for k, v in kwargs.items():
            if k not in _COMPARED:
                continue
            existing = getattr(param, k)
            if existing is None:
                setattr(param, k, v)
                continue
            if v is None:
                continue
            if k == "shape":
                v = _as_shape(v)
                if len(v) == len(existing) and all(
                    a == b or a * b == 0 for a, b in zip(v, existing)
                ):
                    param._shape = tuple(max(a, b) for a, b in zip(v, existing))
                    continue
            elif k == "dtype":
                if np.dtype(v) == np.dtype(existing):
                    continue
            elif v == existing:
                continue
            raise ValueError(
                f"Cannot retrieve Parameter '{name}' because desired attribute does not match "
                f"with stored for attribute '{k}': desired '{v}' vs stored '{existing}'."
            )
        return param

    def get_constant(self, name: str, value: Any = None) -> Constant:
        """The Constant ``prefix + name``, created from ``value`` when it does not exist."""
        name = self.prefix + name
        param = self._get_impl(name)
        if param is None:
            if value is None:
                raise KeyError(
                    f"No constant named '{name}'. Please specify value if you want "
                    "to create a new constant."
                )
            param = Constant(name, value)
            self._params[name] = param
        elif value is not None:
            if not isinstance(param, Constant):
                raise TypeError(f"Parameter '{name}' already exists but it is not a constant.")
            new = value.asnumpy() if isinstance(value, nd.NDArray) else np.asarray(value)
            if param.shape != new.shape or not (param.value.asnumpy() == new).all():
                raise ValueError(
                    f"Constant '{name}' already exists but its value doesn't match the new value."
                )
        return param  # type: ignore[return-value]

    def update(self, other: Any) -> None:
        """Copy every Parameter of ``other`` into this dict."""
        for k, v in other.items():
            if k in self._params and self._params[k] is not v:
                raise ValueError(
                    "Cannot update self with other because they have different "
                    f"Parameters with the same name '{k}'"
                )
        for k, v in other.items():
            self._params[k] = v

    def initialize(
        self,
        init: Any = DEFAULT_INIT,
        ctx: Any = None,
        verbose: bool = False,
        force_reinit: bool = False,
    ) -> None:
        """Initialize every parameter; ``init`` is the default for those without their own."""
        if verbose:
            init = initializer.create(init)
            init.set_verbosity(verbose=verbose)
        for v in self.values():
            v.initialize(None, ctx, init, force_reinit=force_reinit)

    def zero_grad(self) -> None:
        """Set every parameter's gradient buffer to 0."""
        for p in self.values():
            p.zero_grad()

    def reset_ctx(self, ctx: Any) -> None:
        """Move every parameter to ``ctx`` (only the CPU exists: usually a no-op)."""
        for p in self.values():
            if p._data is not None or p._deferred_init:
                p.reset_ctx(ctx)

    def list_ctx(self) -> list:
        """Contexts of all parameters."""
        out: list = []
        for p in self.values():
            for c in p.list_ctx():
                if c not in out:
                    out.append(c)
        return out

    def setattr(self, name: str, value: Any) -> None:
        """Set attribute ``name`` to ``value`` on every parameter, e.g.
        ``net.collect_params().setattr('grad_req', 'null')``."""
        for p in self.values():
            setattr(p, name, value)

    def select(self, pattern: str) -> ParameterDict:
        """A new dict with the parameters whose names match ``pattern`` (``re.match``)."""
        prog = re.compile(pattern)
        out = ParameterDict(self._prefix)
        out.update({k: v for k, v in self.items() if prog.match(k)})
        return out

    def save(self, filename: str, strip_prefix: str = "") -> None:
        """Save the values under their names (minus ``strip_prefix``) in MXNet's .params
        format."""
        arg_dict = {}
        for param in self.values():
            if not param.name.startswith(strip_prefix):
                raise ValueError(
                    f"Prefix '{strip_prefix}' is to be striped before saving, but Parameter's "
                    f"name '{param.name}' does not start with '{strip_prefix}'. This may be due "
                    "to your Block sharing parameters from other Blocks or to child blocks "
                    "created outside 'with name_scope()'."
                )
            arg_dict[param.name[len(strip_prefix) :]] = param._reduce()
        serialization.save(filename, arg_dict)

    def load(
        self,
        filename: str,
        ctx: Any = None,
        allow_missing: bool = False,
        ignore_extra: bool = False,
        restore_prefix: str = "",
        cast_dtype: bool = False,
        dtype_source: str = "current",
    ) -> None:
        """Load values saved by :meth:`save` (or MXNet's ``nd.save`` of a dict).

        Names in the file get ``restore_prefix`` prepended; ``arg:``/``aux:`` prefixes are
        dropped. Every name, shape and dtype is checked before any parameter changes.
        """
        if restore_prefix:
            for name in self.keys():
                if not name.startswith(restore_prefix):
                    raise ValueError(
                        f"restore_prefix is '{restore_prefix}' but Parameters name "
                        f"'{name}' does not start with '{restore_prefix}'"
                    )
        loaded = serialization.load(filename)
        if not isinstance(loaded, dict):
            raise ParameterLoadError(
                f"File '{filename}' holds an unnamed list of {len(loaded)} arrays, so they "
                "cannot be matched to parameters. Fix: save a dict name -> array."
            )
        arg_dict = {
            restore_prefix + (k[4:] if k.startswith(("arg:", "aux:")) else k): v
            for k, v in loaded.items()
        }
        self._load_dict(
            arg_dict,
            filename,
            ctx,
            allow_missing,
            ignore_extra,
            cast_dtype,
            dtype_source,
            len(restore_prefix),
        )

    def _load_dict(
        self,
        arg_dict: dict,
        filename: str,
        ctx: Any,
        allow_missing: bool,
        ignore_extra: bool,
        cast_dtype: bool,
        dtype_source: str,
        lprefix: int = 0,
    ) -> None:
        if not allow_missing:
            for name in self.keys():
                if name not in arg_dict:
                    raise ParameterLoadError(
                        f"Parameter '{name[lprefix:]}' is missing in file '{filename}', which "
                        f"contains parameters: {_brief(k[lprefix:] for k in arg_dict)}. Please "
                        "make sure source and target networks have the same prefix. Set "
                        "allow_missing=True to ignore missing parameters."
                    )
        todo = []
        for name, value in arg_dict.items():
            if name not in self._params:
                if not ignore_extra:
                    raise ParameterLoadError(
                        f"Parameter '{name[lprefix:]}' loaded from file '{filename}' is not "
                        f"present in ParameterDict, choices are: "
                        f"{_brief(k[lprefix:] for k in self._params)}. Set ignore_extra=True "
                        "to ignore. Please make sure source and target networks have the same "
                        "prefix."
                    )
                continue
            param = self._params[name]
            todo.append((param, param._check_loadable(value, cast_dtype, dtype_source)))
        for param, value in todo:
            param._load_init(value, ctx, cast_dtype=cast_dtype, dtype_source=dtype_source)
