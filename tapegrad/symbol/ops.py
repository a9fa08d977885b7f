"""The operator table of ``mx.sym``: MXNet's operator names, how each is computed with
``mx.nd``, its inputs, auxiliary states and outputs, and the conversion of attributes between
Python values and the strings MXNet writes in its graph JSON.

An entry is an :class:`OpDef`; :data:`OPS` maps MXNet's registered operator name (the ``"op"``
of a JSON node, e.g. ``Convolution``, ``Concat``, ``elemwise_add``, ``_plus_scalar``) to it and
:data:`FUNCTIONS` maps every Python name of ``mx.sym`` (``concat``, ``Concat``, ``flatten``,
``split``...) to the registered name it builds. Only operators listed here can be loaded or
evaluated; anything else is an :class:`UnknownOperatorError` naming it.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ndarray as nd
from ..base import TapegradError

__all__ = ["OpDef", "OPS", "FUNCTIONS", "UnknownOperatorError", "format_attr", "parse_attr"]


class UnknownOperatorError(TapegradError, ValueError):
    """A graph names an operator tapegrad does not have."""


@dataclass(frozen=True)
class OpDef:
    """One MXNet operator.

    Args:
        name: MXNet's registered name (what graph JSON files contain).
        fn: ``fn(*inputs, **attrs)`` computing it with ``mx.nd`` (NDArray or list).
        inputs: input names in MXNet's order (``("data", "weight", "bias")``); None for an
            operator taking any number of inputs (``Concat``, ``add_n``, ``UpSampling``).
        aux: positions of the inputs that are auxiliary states (BatchNorm's moving mean and
            variance), which ``list_auxiliary_states`` lists apart from the arguments.
        optional: ``optional(attrs) -> names`` of inputs absent for these attributes (the
            bias with ``no_bias=True``).
        outputs: ``outputs(attrs) -> names`` of the visible outputs (``["output"]`` for most).
        hidden: number of extra outputs MXNet counts in ``node_row_ptr`` but does not show
            (an int, or a function of the attributes).
    """

    name: str
    fn: Callable[..., Any]
    inputs: tuple | None = ("data",)
    aux: tuple = ()
    optional: Callable[[dict], set] | None = None
    outputs: Callable[[dict], list] | None = None
    hidden: int | Callable[[dict], int] = 0

    def input_names(self, attrs: dict) -> list[str] | None:
        """The input names present for parsed ``attrs`` (None: variadic)."""
        if self.inputs is None:
            return None
        skip = self.optional(attrs) if self.optional else set()
        return [n for n in self.inputs if n not in skip]

    def num_hidden(self, attrs: dict) -> int:
        """Outputs MXNet counts but does not show (workspaces, masks, statistics)."""
        return self.hidden(attrs) if callable(self.hidden) else self.hidden

    def output_names(self, attrs: dict) -> list[str]:
        """The visible outputs' names for parsed ``attrs``."""
        return self.outputs(attrs) if self.outputs else ["output"]


# --------------------------------------------------------------------------- attributes


def format_attr(value: Any) -> str:
    """A Python attribute value as MXNet writes it in graph JSON: ``str(value)``, with
    tuples/lists of numbers as ``(5, 5)``, booleans ``True``/``False``, dtypes by name."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        return str(tuple(format_attr_elem(v) for v in value))
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    return str(value)


def format_attr_elem(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


_WORDS = {"True": True, "true": True, "False": False, "false": False, "None": None}
_FLOATS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan, "+inf": math.inf}


def _tuples(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuples(e) for e in v)
    if isinstance(v, tuple):
        return tuple(_tuples(e) for e in v)
    return v


def parse_attr(text: str) -> Any:
    """An attribute string of MXNet's JSON as a Python value: ``"True"`` -> True,
    ``"(5, 5)"`` -> (5, 5), ``"6"`` -> 6, ``"1e-05"`` -> 1e-05, ``"relu"`` -> ``"relu"``.
    Only literals are read (``ast.literal_eval``): nothing in a file is executed."""
    s = text.strip()
    if s in _WORDS:
        return _WORDS[s]
    if s.lower() in _FLOATS:
        return _FLOATS[s.lower()]
    if s and len(s) <= 10000 and (s[0] in "([-+.0123456789"):
        try:
            return _tuples(ast.literal_eval(s))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return text
    return text


# ---------------------------------------------------------------------- implementations


def _softmax_output(data, label=None, **kw):
    """Forward of ``SoftmaxOutput``: a softmax over axis 1 (``multi_output``), the last axis
    (``preserve_shape``) or the flattened features. The label is not used."""
    if kw.get("multi_output"):
        return nd.softmax(data, axis=1)
    if kw.get("preserve_shape") or data.ndim <= 2:
        return nd.softmax(data, axis=-1)
    return nd.softmax(nd.reshape(data, shape=(0, -1)), axis=-1).reshape(data.shape)


def _scalar(f: Callable) -> Callable:
    def op(data, scalar=0.0, is_int=False, **kw):
        return f(data, scalar)

    return op


def _cast(data, dtype="float32", **kw):
    return data.astype(dtype)


def _copy(data, **kw):
    return data.copy()


def _add_n(*args, num_args=None, **kw):
    out = args[0]
    for a in args[1:]:
        out = out + a
    return out


def _creator(f: Callable) -> Callable:
    def op(shape=(), dtype="float32", ctx=None, **kw):
        return f(shape, dtype=dtype, **kw)

    return op


def _batchnorm(data, gamma, beta, mean, var, ndev=None, key=None, **kw):
    return nd.BatchNorm(data, gamma, beta, mean, var, **kw)


def _reshape(data, shape=None, reverse=False, target_shape=None, keep_highest=False, **kw):
    return nd.reshape(data, shape=shape, reverse=reverse)


def _bias(attrs: dict) -> set:
    return {"bias"} if attrs.get("no_bias", False) else set()


def _deconv_bias(attrs: dict) -> set:
    return {"bias"} if attrs.get("no_bias", True) else set()


def _prelu(attrs: dict) -> set:
    return set() if attrs.get("act_type", "leaky") == "prelu" else {"gamma"}


def _bn_out(attrs: dict) -> list:
    return ["output", "mean", "var"] if attrs.get("output_mean_var") else ["output"]


def _norm_out(attrs: dict) -> list:
    return ["output", "mean", "std"] if attrs.get("output_mean_var") else ["output"]


def _split_out(attrs: dict) -> list:
    n = attrs.get("num_outputs", 1)
    return [f"output{i}" for i in range(n)] if isinstance(n, int) and n > 1 else ["output"]


def _topk_out(attrs: dict) -> list:
    return ["output0", "output1"] if attrs.get("ret_typ") == "both" else ["output"]


OPS: dict[str, OpDef] = {}
FUNCTIONS: dict[str, str] = {}


def _def(name: str, fn: Callable, *aliases: str, **kw: Any) -> None:
    OPS[name] = OpDef(name, fn, **kw)
    FUNCTIONS[name] = name
    for a in aliases:
        FUNCTIONS[a] = name


# layers
_def("Convolution", nd.Convolution, inputs=("data", "weight", "bias"), optional=_bias)
_def("Deconvolution", nd.Deconvolution, inputs=("data", "weight", "bias"), optional=_deconv_bias)
_def("FullyConnected", nd.FullyConnected, inputs=("data", "weight", "bias"), optional=_bias)


def _pool_hidden(attrs: dict) -> int:
    # MXNet 1.9's MKL-DNN build (the PyPI wheel) gives max pooling a workspace output
    max_pool = attrs.get("pool_type", "max") == "max" and not attrs.get("global_pool", False)
    return int(max_pool and attrs.get("pooling_convention", "valid") != "full")


_def("Pooling", nd.Pooling, hidden=_pool_hidden)
_def("Activation", nd.Activation)
_def("LeakyReLU", nd.LeakyReLU, inputs=("data", "gamma"), optional=_prelu)
_def("Dropout", nd.Dropout, hidden=1)
_def("Flatten", nd.flatten, "flatten")
_def(
    "BatchNorm",
    _batchnorm,
    inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
    aux=(3, 4),
    outputs=_bn_out,
    hidden=2,
)
_def(
    "_contrib_SyncBatchNorm",
    _batchnorm,
    "SyncBatchNorm",
    inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
    aux=(3, 4),
    outputs=_bn_out,
    hidden=2,
)
_def("InstanceNorm", nd.InstanceNorm, inputs=("data", "gamma", "beta"))
_def("LayerNorm", nd.LayerNorm, inputs=("data", "gamma", "beta"), outputs=_norm_out, hidden=2)
_def("GroupNorm", nd.GroupNorm, inputs=("data", "gamma", "beta"), outputs=_norm_out, hidden=2)
_def("Embedding", nd.Embedding, inputs=("data", "weight"))
_def("UpSampling", nd.UpSampling, inputs=None)
_def("Pad", nd.Pad, "pad")
_def("L2Normalization", nd.L2Normalization)
_def("im2col", nd.im2col)
_def("col2im", nd.col2im)
_def("depth_to_space", nd.depth_to_space)
_def("space_to_depth", nd.space_to_depth)
_def("SoftmaxActivation", nd.SoftmaxActivation)
_def("softmax", nd.softmax)
_def("log_softmax", nd.log_softmax)
_def("SoftmaxOutput", _softmax_output, "Softmax", inputs=("data", "label"))
_def("softmax_cross_entropy", nd.softmax_cross_entropy, inputs=("data", "label"))
_def("smooth_l1", nd.smooth_l1)
_def("BlockGrad", nd.BlockGrad, "stop_gradient")
_def("_copy", _copy, "identity")
_def("Cast", _cast, "cast")
# shapes
_def("Reshape", _reshape, "reshape")
_def("transpose", nd.transpose)
_def("SwapAxis", nd.swapaxes, "swapaxes")
_def("expand_dims", nd.expand_dims)
_def("squeeze", nd.squeeze)
_def("reverse", nd.reverse, "flip")
_def("tile", nd.tile)
_def("repeat", nd.repeat)
_def("broadcast_to", nd.broadcast_to)
_def("broadcast_axis", nd.broadcast_axis, "broadcast_axes")
_def("broadcast_like", nd.broadcast_like, inputs=("lhs", "rhs"))
_def("reshape_like", nd.reshape_like, inputs=("lhs", "rhs"))
_def("slice", nd.slice, "crop")
_def("slice_axis", nd.slice_axis)
_def("slice_like", nd.slice_like, inputs=("data", "shape_like"))
_def("Concat", nd.concat, "concat", inputs=None)
_def("stack", nd.stack, inputs=None)
_def("SliceChannel", nd.split, "split", outputs=_split_out)
_def("where", nd.where, inputs=("condition", "x", "y"))
_def("take", nd.take, inputs=("a", "indices"))
_def("pick", nd.pick, inputs=("data", "index"))
_def("one_hot", nd.one_hot, inputs=("indices",))
_def("clip", nd.clip)
_def("topk", nd.topk, outputs=_topk_out)
_def("sort", nd.sort)
_def("argsort", nd.argsort)
# linear algebra
_def("dot", nd.dot, inputs=("lhs", "rhs"))
_def("batch_dot", nd.batch_dot, inputs=("lhs", "rhs"))
_def("_linalg_gemm2", nd.linalg_gemm2, "linalg_gemm2", inputs=("A", "B"))
# reductions
_def("sum", nd.sum, "sum_axis")
_def("mean", nd.mean)
_def("max", nd.max, "max_axis")
_def("min", nd.min, "min_axis")
_def("prod", nd.prod)
_def("nansum", nd.nansum)
_def("norm", nd.norm)
_def("argmax", nd.argmax)
_def("argmin", nd.argmin)
_def("argmax_channel", nd.argmax_channel)
_def("add_n", _add_n, "ElementWiseSum", inputs=None)
# creation
_def("_zeros", _creator(nd.zeros), "zeros", inputs=())
_def("_ones", _creator(nd.ones), "ones", inputs=())
_def("zeros_like", nd.zeros_like)
_def("ones_like", nd.ones_like)

for _name in (
    "relu sigmoid tanh softsign exp expm1 log log10 log1p log2 sqrt rsqrt cbrt rcbrt square "
    "abs negative reciprocal sign floor ceil round rint fix trunc sin cos tan arcsin arccos "
    "arctan sinh cosh arcsinh arccosh arctanh erf logical_not"
).split():
    _def(_name, getattr(nd, _name))

_BINARY = {
    "elemwise_add": ("_plus", "_Plus", "_add"),
    "elemwise_sub": ("_minus", "_Minus", "_sub"),
    "elemwise_mul": ("_mul", "_Mul"),
    "elemwise_div": ("_div", "_Div"),
    "_power": ("_Power", "pow"),
    "_maximum": ("_Maximum",),
    "_minimum": ("_Minimum",),
    "_mod": ("_Mod",),
    "_hypot": ("_Hypot",),
    "_equal": (),
    "_not_equal": (),
    "_greater": (),
    "_greater_equal": (),
    "_lesser": (),
    "_lesser_equal": (),
    "_logical_and": (),
    "_logical_or": (),
    "_logical_xor": (),
}
_ND_OF = {
    "elemwise_add": nd.elemwise_add,
    "elemwise_sub": nd.elemwise_sub,
    "elemwise_mul": nd.elemwise_mul,
    "elemwise_div": nd.elemwise_div,
    "_power": nd.power,
    "_maximum": nd.maximum,
    "_minimum": nd.minimum,
    "_mod": nd.modulo,
    "_hypot": nd.hypot,
    "_equal": nd.equal,
    "_not_equal": nd.not_equal,
    "_greater": nd.greater,
    "_greater_equal": nd.greater_equal,
    "_lesser": nd.lesser,
    "_lesser_equal": nd.lesser_equal,
    "_logical_and": nd.logical_and,
    "_logical_or": nd.logical_or,
    "_logical_xor": nd.logical_xor,
}
for _name, _aliases in _BINARY.items():
    _f = _ND_OF[_name]
    _def(
        _name, (lambda f: lambda lhs, rhs, **kw: f(lhs, rhs))(_f), *_aliases, inputs=("lhs", "rhs")
    )

for _suffix in (
    "add sub mul div plus minus power maximum minimum mod hypot equal not_equal greater "
    "greater_equal lesser lesser_equal logical_and logical_or logical_xor"
).split():
    _f = getattr(nd, f"broadcast_{_suffix}")
    _def(
        f"broadcast_{_suffix}",
        (lambda f: lambda lhs, rhs, **kw: f(lhs, rhs))(_f),
        inputs=("lhs", "rhs"),
    )

_SCALAR = {
    "_plus_scalar": ("_PlusScalar", lambda x, s: x + s),
    "_minus_scalar": ("_MinusScalar", lambda x, s: x - s),
    "_rminus_scalar": ("_RMinusScalar", lambda x, s: s - x),
    "_mul_scalar": ("_MulScalar", lambda x, s: x * s),
    "_div_scalar": ("_DivScalar", lambda x, s: x / s),
    "_rdiv_scalar": ("_RDivScalar", lambda x, s: s / x),
    "_power_scalar": ("_PowerScalar", lambda x, s: x**s),
    "_rpower_scalar": ("_RPowerScalar", lambda x, s: s**x),
    "_maximum_scalar": ("_MaximumScalar", lambda x, s: nd.maximum(x, s)),
    "_minimum_scalar": ("_MinimumScalar", lambda x, s: nd.minimum(x, s)),
    "_mod_scalar": ("_ModScalar", lambda x, s: nd.modulo(x, s)),
    "_rmod_scalar": ("_RModScalar", lambda x, s: nd.modulo(s, x)),
    "_hypot_scalar": ("_HypotScalar", lambda x, s: nd.hypot(x, s)),
    "_equal_scalar": ("_EqualScalar", lambda x, s: nd.equal(x, s)),
    "_not_equal_scalar": ("_NotEqualScalar", lambda x, s: nd.not_equal(x, s)),
    "_greater_scalar": ("_GreaterScalar", lambda x, s: nd.greater(x, s)),
    "_greater_equal_scalar": ("_GreaterEqualScalar", lambda x, s: nd.greater_equal(x, s)),
    "_lesser_scalar": ("_LesserScalar", lambda x, s: nd.lesser(x, s)),
    "_lesser_equal_scalar": ("_LesserEqualScalar", lambda x, s: nd.lesser_equal(x, s)),
}
for _name, (_alias, _f) in _SCALAR.items():
    _def(_name, _scalar(_f), _alias)


def list_operators() -> list[str]:
    """MXNet's names of the operators tapegrad can load and evaluate, sorted."""
    return sorted(OPS)


def lookup(op: str, node: str, source: str) -> OpDef:
    """The entry of operator ``op``, or an :class:`UnknownOperatorError` naming it."""
    d = OPS.get(op)
    if d is None:
        raise UnknownOperatorError(
            f"{source}: node '{node}' uses the operator '{op}', which tapegrad does not have "
            f"({len(OPS)} MXNet operators are supported; tapegrad.symbol.ops.list_operators() "
            "lists them). Fix: export the model without that operator (or replace it), or "
            "rebuild the network with tapegrad's Gluon layers and load its parameters."
        )
    return d
