"""Shape inference through operators, for deferred Parameters of custom HybridBlocks.

MXNet infers a Parameter declared with unknown (0) dimensions from the operator that uses
it: ``self.params.get('weight', shape=(5, 0), allow_deferred_init=True)`` passed to
``F.FullyConnected(x, weight, num_hidden=5)`` gets its second dimension from ``x``. tapegrad
has no symbolic graph, so the first call of a HybridBlock whose parameters are still
deferred (and that defines no ``infer_shape`` of its own) runs ``hybrid_forward`` with

* a :class:`DeferredParam` in place of each deferred Parameter's value, and
* an ``F`` that wraps ``mx.nd``: an operator receiving a ``DeferredParam`` finds the missing
  dimensions from its other inputs with the operator's shape rule (:data:`SHAPE_RULES`,
  MXNet's own inference rules), the Parameter is initialized there and the operator runs
  on its value.

Elementwise arithmetic with a ``DeferredParam`` on the left (``w * x``) and
``F.elemwise_*`` take the other operand's shape, as MXNet's non-broadcasting symbol
arithmetic does. Any other use raises a :class:`~tapegrad.base.ShapeError` naming the
parameter and the operator.

An operator that gains parameters (another family) registers its rule with
:func:`register_shape_rule`.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np

from ..base import ShapeError

__all__ = ["DeferredParam", "InferringNamespace", "register_shape_rule", "SHAPE_RULES"]

#: operator name -> (argument names in MXNet's positional order, rule). A rule gets the
#: bound arguments (name -> value; a DeferredParam stands for an unknown parameter) and
#: returns the shape of every parameter argument it can infer (name -> shape).
SHAPE_RULES: dict[str, tuple[tuple[str, ...], Callable[[dict], dict]]] = {}


def register_shape_rule(name: str, arg_names: tuple[str, ...]) -> Callable:
    """Decorator: ``rule(args) -> {arg_name: shape}`` infers the parameter shapes of operator
    ``name`` (``arg_names`` maps positional arguments to names)."""

    def deco(rule: Callable[[dict], dict]) -> Callable[[dict], dict]:
        SHAPE_RULES[name] = (tuple(arg_names), rule)
        return rule

    return deco


def _shape(v: Any) -> tuple:
    if isinstance(v, DeferredParam):
        return v.shape
    return tuple(np.shape(v)) if not hasattr(v, "shape") else tuple(v.shape)


def _tuple(v: Any) -> tuple:
    if v is None:
        return ()
    if isinstance(v, (int, np.integer)):
        return (int(v),)
    return tuple(int(k) for k in v)


class DeferredParam:
    """What ``hybrid_forward`` receives for a Parameter whose shape is not known yet.

    It has the Parameter's ``shape`` (0 for unknown dimensions) and ``dtype``; an operator
    of ``F`` that can infer the shape initializes the Parameter and uses its value."""

    __array_priority__ = 2000.0
    __array_ufunc__ = None

    def __init__(self, param: Any, block: Any, resolver: _Resolver) -> None:
        self.param = param
        self._block = block
        self._resolver = resolver

    @property
    def shape(self) -> tuple:
        return tuple(self.param.shape or ())

    @property
    def dtype(self) -> np.dtype:
        return self.param.dtype

    @property
    def name(self) -> str:
        return self.param.name

    def __repr__(self) -> str:
        return f"DeferredParam({self.param.name}, shape={self.shape})"

    def _error(self, use: str) -> ShapeError:
        blk = self._block
        return ShapeError(
            f"{type(blk).__name__} '{blk.name}': Parameter '{self.param.name}' has shape "
            f"{self.shape} (0 = not known yet) and was used {use}, where tapegrad cannot "
            "infer its shape. Fix: give the parameter its full shape, pass it to an operator "
            f"of F that infers it ({', '.join(sorted(SHAPE_RULES))}), or define "
            "infer_shape(self, x, *args) on the block to set param.shape from the inputs."
        )

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._error("as an array (outside the operators of F)")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._error(f"through its attribute '{name}'")

    def __bool__(self) -> bool:
        raise self._error("as a truth value")

    def _same_shape_as(self, other: Any, op: str) -> Any:
        if not hasattr(other, "shape") or isinstance(other, DeferredParam):
            raise self._error(f"in '{op}' with a {type(other).__name__}")
        return self._resolver.resolve({self: tuple(other.shape)}, op)[self]

    def __add__(self, other: Any) -> Any:
        return self._same_shape_as(other, "+") + other

    def __radd__(self, other: Any) -> Any:
        return other + self._same_shape_as(other, "+")

    def __sub__(self, other: Any) -> Any:
        return self._same_shape_as(other, "-") - other

    def __rsub__(self, other: Any) -> Any:
        return other - self._same_shape_as(other, "-")

    def __mul__(self, other: Any) -> Any:
        return self._same_shape_as(other, "*") * other

    def __rmul__(self, other: Any) -> Any:
        return other * self._same_shape_as(other, "*")

    def __truediv__(self, other: Any) -> Any:
        return self._same_shape_as(other, "/") / other

    def __rtruediv__(self, other: Any) -> Any:
        return other / self._same_shape_as(other, "/")


class _Resolver:
    """Turns DeferredParams into values: ``init`` mode initializes the Parameter (the
    first forward pass); ``shape`` mode only sets its shape and gives zeros (a dry run for
    ``infer_shape``)."""

    def __init__(self, block: Any, order: list, init: bool) -> None:
        self.block = block
        self.order = {id(p): k for k, p in enumerate(order)}
        self.init = init
        self.values: dict[int, Any] = {}

    def resolve(self, shapes: dict, op: str) -> dict:
        """``{DeferredParam: inferred shape}`` -> ``{DeferredParam: value}``."""
        from .. import ndarray as nd

        todo = []
        for dp, shape in shapes.items():
            if id(dp.param) in self.values:
                continue
            old = dp.shape
            new = tuple(int(s) for s in shape)
            if len(new) != len(old) or any(o not in (0, n) for o, n in zip(old, new)):
                raise ShapeError(
                    f"{type(self.block).__name__} '{self.block.name}': operator '{op}' needs "
                    f"Parameter '{dp.param.name}' to have shape {new}, but it was declared "
                    f"with shape {old}. Fix: declare it with a shape that fits the inputs "
                    "(0 for dimensions to infer)."
                )
            if any(n <= 0 for n in new):
                raise dp._error(f"in operator '{op}', which leaves its shape {new} open")
            todo.append((dp, new))
        # parameters inferred together are initialized in the block's order (as MXNet does)
        todo.sort(key=lambda t: self.order.get(id(t[0].param), len(self.order)))
        for dp, new in todo:
            p = dp.param
            p.shape = new
            if self.init:
                p._finish_deferred_init()
                self.values[id(p)] = p.data()
            else:
                self.values[id(p)] = nd.zeros(new, dtype=p.dtype)
        return {dp: self.values[id(dp.param)] for dp in shapes}


class InferringNamespace:
    """``mx.nd`` (or one of its submodules) whose operators resolve DeferredParams."""

    def __init__(self, module: Any, resolver: _Resolver) -> None:
        self._module = module
        self._resolver = resolver

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            out: Any = InferringNamespace(attr, self._resolver)
        elif callable(attr) and not isinstance(attr, type):
            out = _inferring(name, attr, self._resolver)
        else:
            out = attr
        self.__dict__[name] = out
        return out


def _has_deferred(values: Any) -> bool:
    for v in values:
        if isinstance(v, DeferredParam):
            return True
        if isinstance(v, (list, tuple)) and _has_deferred(v):
            return True
    return False


def _inferring(name: str, fn: Callable, resolver: _Resolver) -> Callable:
    def call(*args: Any, **kwargs: Any) -> Any:
        if not (_has_deferred(args) or _has_deferred(kwargs.values())):
            return fn(*args, **kwargs)
        top = [v for v in (*args, *kwargs.values()) if isinstance(v, DeferredParam)]
        for v in _flat((*args, *kwargs.values())):
            if isinstance(v, DeferredParam) and not any(v is t for t in top):
                raise v._error(f"inside a list passed to operator '{name}'")
        found = top
        entry = SHAPE_RULES.get(name)
        if entry is None:
            raise found[0]._error(f"in operator '{name}'")
        names, rule = entry
        if len(args) > len(names):
            raise found[0]._error(f"in operator '{name}' with {len(args)} positional arguments")
        bound = dict(zip(names, args))
        bound.update(kwargs)
        inferred = rule(bound)
        shapes = {}
        for k, v in bound.items():
            if isinstance(v, DeferredParam):
                if k not in inferred:
                    raise v._error(f"as argument '{k}' of operator '{name}'")
                shapes[v] = inferred[k]
        values = resolver.resolve(shapes, name)
        args = tuple(values.get(a, a) if isinstance(a, DeferredParam) else a for a in args)
        kwargs = {
            k: (values.get(v, v) if isinstance(v, DeferredParam) else v) for k, v in kwargs.items()
        }
        return fn(*args, **kwargs)

    call.__name__ = name
    call.__doc__ = fn.__doc__
    return call


def _flat(values: Any) -> list:
    out = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


def _fill(declared: tuple, want: tuple) -> tuple:
    """``want`` where the declared dimension is unknown; a declared known dimension wins
    (a disagreement is reported by the resolver)."""
    if len(declared) != len(want):
        return want
    return tuple(d if d else w for d, w in zip(declared, want))


# --------------------------------------------------------------------------- MXNet's rules


def _channel_axis(layout: Any, ndim: int) -> int:
    """The channel axis of a layout string such as 'NCHW' or 'NHWC' (1 without one)."""
    if isinstance(layout, str) and len(layout) == ndim and "C" in layout:
        return layout.index("C")
    return 1


@register_shape_rule(
    "FullyConnected", ("data", "weight", "bias", "num_hidden", "no_bias", "flatten")
)
def _fully_connected(a: dict) -> dict:
    d = _shape(a["data"])
    n = int(a.get("num_hidden") or 0)
    flatten = a.get("flatten", True)
    k = int(np.prod(d[1:])) if flatten else (d[-1] if d else 0)
    return {"weight": (n, k), "bias": (n,)}


@register_shape_rule("Embedding", ("data", "weight", "input_dim", "output_dim"))
def _embedding(a: dict) -> dict:
    return {"weight": (int(a.get("input_dim") or 0), int(a.get("output_dim") or 0))}


_CONV_NAMES = (
    "data",
    "weight",
    "bias",
    "kernel",
    "stride",
    "dilate",
    "pad",
    "num_filter",
    "num_group",
    "workspace",
    "no_bias",
    "cudnn_tune",
    "cudnn_off",
    "layout",
)


@register_shape_rule("Convolution", _CONV_NAMES)
def _convolution(a: dict) -> dict:
    d = _shape(a["data"])
    kernel = _tuple(a.get("kernel"))
    nf, g = int(a.get("num_filter") or 0), int(a.get("num_group") or 1)
    layout = a.get("layout")
    c = d[_channel_axis(layout, len(d))] // g
    channels_last = layout is not None and str(layout).endswith("C")
    w = (nf, *kernel, c) if channels_last else (nf, c, *kernel)
    return {"weight": w, "bias": (nf,)}


@register_shape_rule(
    "Deconvolution",
    (*_CONV_NAMES[:7], "adj", "target_shape", *_CONV_NAMES[7:]),
)
def _deconvolution(a: dict) -> dict:
    d = _shape(a["data"])
    kernel = _tuple(a.get("kernel"))
    nf, g = int(a.get("num_filter") or 0), int(a.get("num_group") or 1)
    c = d[_channel_axis(a.get("layout"), len(d))]
    return {"weight": (c, nf // g, *kernel), "bias": (nf,)}


@register_shape_rule(
    "BatchNorm", ("data", "gamma", "beta", "moving_mean", "moving_var", "eps", "momentum",
                  "fix_gamma", "use_global_stats", "output_mean_var", "axis")
)  # fmt: skip
def _batch_norm(a: dict) -> dict:
    d = _shape(a["data"])
    c = (d[int(a.get("axis", 1))],)
    return dict.fromkeys(("gamma", "beta", "moving_mean", "moving_var"), c)


@register_shape_rule("InstanceNorm", ("data", "gamma", "beta", "eps"))
def _instance_norm(a: dict) -> dict:
    c = (_shape(a["data"])[1],)
    return {"gamma": c, "beta": c}


@register_shape_rule("LayerNorm", ("data", "gamma", "beta", "axis", "eps"))
def _layer_norm(a: dict) -> dict:
    c = (_shape(a["data"])[int(a.get("axis", -1))],)
    return {"gamma": c, "beta": c}


@register_shape_rule("GroupNorm", ("data", "gamma", "beta", "num_groups", "eps"))
def _group_norm(a: dict) -> dict:
    g = (int(a.get("num_groups", 1)),)  # one scale per group in MXNet 1.x
    return {"gamma": g, "beta": g}


@register_shape_rule("LeakyReLU", ("data", "gamma", "act_type", "slope"))
def _leaky_relu(a: dict) -> dict:
    d = _shape(a["data"])
    return {"gamma": (d[1],) if len(d) > 1 else (1,)}


def _contracted(a: dict, batch: bool) -> dict:
    """dot / batch_dot: the unknown operand gets the contracted (and batch) dimensions of
    the other one; its own free dimensions must be declared."""
    lhs, rhs = a["lhs"], a["rhs"]
    ta, tb = bool(a.get("transpose_a", False)), bool(a.get("transpose_b", False))
    out = {}
    if isinstance(rhs, DeferredParam) and not isinstance(lhs, DeferredParam):
        ls, want = _shape(lhs), list(rhs.shape)
        if want:
            k = ls[-2] if ta and batch else ls[0] if ta else ls[-1]
            want[-1 if tb else (1 if batch else 0)] = k
            if batch:
                want[0] = ls[0]
        out["rhs"] = _fill(rhs.shape, tuple(want))
    if isinstance(lhs, DeferredParam) and not isinstance(rhs, DeferredParam):
        rs, want = _shape(rhs), list(lhs.shape)
        if want:
            k = rs[-1] if tb else (rs[1] if batch else rs[0])
            want[(1 if batch else 0) if ta else -1] = k
            if batch:
                want[0] = rs[0]
        out["lhs"] = _fill(lhs.shape, tuple(want))
    return out


@register_shape_rule("dot", ("lhs", "rhs", "transpose_a", "transpose_b"))
def _dot(a: dict) -> dict:
    return _contracted(a, batch=False)


@register_shape_rule("batch_dot", ("lhs", "rhs", "transpose_a", "transpose_b"))
def _batch_dot(a: dict) -> dict:
    return _contracted(a, batch=True)


def _same_shape(a: dict) -> dict:
    lhs, rhs = a["lhs"], a["rhs"]
    if isinstance(lhs, DeferredParam) and not isinstance(rhs, DeferredParam):
        return {"lhs": _shape(rhs)}
    if isinstance(rhs, DeferredParam) and not isinstance(lhs, DeferredParam):
        return {"rhs": _shape(lhs)}
    return {}


for _op in ("elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div"):
    register_shape_rule(_op, ("lhs", "rhs"))(_same_shape)
