"""``gluon.SymbolBlock``: a Block that runs a symbolic graph, e.g. a model exported by MXNet
1.x (``NAME-symbol.json`` + ``NAME-0000.params``), for inference and fine-tuning.

Its parameters are the graph's variables that are not inputs, named as in the graph
(``conv0_weight``; auxiliary states such as ``batchnorm0_running_mean`` with
``grad_req='null'``). Each forward evaluates the graph with ``mx.nd``, so the computation is
recorded by autograd and gradients reach the parameters: a Trainer fine-tunes them like any
Block's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import autograd, initializer
from .. import ndarray as nd
from ..base import ShapeError, TapegradError
from ..symbol import Symbol, SymbolError
from ..symbol import load as _load_symbol
from ..symbol.symbol import DTYPE_CODES, _Node, evaluate
from .block import HybridBlock, _common_prefix
from .parameter import ParameterDict

__all__ = ["SymbolBlock"]


def _flat_symbols(x: Any, what: str) -> list[Symbol]:
    if isinstance(x, Symbol):
        return [x] if len(x) == 1 else list(x)
    if isinstance(x, (list, tuple)) and all(isinstance(s, Symbol) for s in x):
        out: list[Symbol] = []
        for s in x:
            out.extend(_flat_symbols(s, what))
        return out
    raise TypeError(
        f"SymbolBlock: {what} must be a Symbol or a list of Symbols, got {type(x).__name__}. "
        "Fix: pass mx.sym.var('data') (inputs) and the loaded graph (outputs)."
    )


def _shape_attr(text: str | None) -> tuple | None:
    """A variable's ``__shape__`` attribute as a shape (0 = unknown), if usable."""
    if not text:
        return None
    from ..symbol.ops import parse_attr

    v = parse_attr(text)
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v,)
    if isinstance(v, tuple) and v and all(isinstance(d, int) and d >= 0 for d in v):
        return v
    return None


def _param_options(node: _Node) -> dict:
    """Parameter settings a variable carries (``__shape__``, ``__dtype__``, ``__init__``,
    ``__lr_mult__``, ``__wd_mult__``)."""
    a = node.attrs
    opts: dict[str, Any] = {}
    shape = _shape_attr(a.get("__shape__"))
    if shape is not None:
        opts["shape"] = shape
    code = a.get("__dtype__")
    if code is not None and code.strip().lstrip("-").isdigit() and int(code) in DTYPE_CODES:
        opts["dtype"] = DTYPE_CODES[int(code)]
    init = a.get("__init__")
    if init:
        try:
            initializer.create(init)
            opts["init"] = init
        except Exception:  # an initializer tapegrad does not have: the global one is used
            pass
    for key, attr in (("lr_mult", "__lr_mult__"), ("wd_mult", "__wd_mult__")):
        try:
            if attr in a:
                opts[key] = float(a[attr])
        except ValueError:
            pass
    return opts


# ---------------------------------------------------------------- parameter shape rules


def _prod(t: tuple) -> int:
    return int(np.prod(t)) if t else 1


def _conv_shapes(kw: dict, d: tuple) -> dict:
    k, f, g = tuple(kw["kernel"]), kw["num_filter"], kw.get("num_group", 1)
    return {1: (f, d[1] // g) + k, 2: (f,)}


def _deconv_shapes(kw: dict, d: tuple) -> dict:
    k, f, g = tuple(kw["kernel"]), kw["num_filter"], kw.get("num_group", 1)
    return {1: (d[1], f // g) + k, 2: (f,)}


def _fc_shapes(kw: dict, d: tuple) -> dict:
    n = kw["num_hidden"]
    return {1: (n, _prod(d[1:]) if kw.get("flatten", True) else d[-1]), 2: (n,)}


def _bn_shapes(kw: dict, d: tuple) -> dict:
    c = (d[kw.get("axis", 1)],)
    return {1: c, 2: c, 3: c, 4: c}


#: operator -> (attributes, shape of input 0) -> {input position: shape}: how the shapes of
#: parameters are inferred from the data when a SymbolBlock has no parameter file
_PARAM_SHAPES = {
    "Convolution": _conv_shapes,
    "Deconvolution": _deconv_shapes,
    "FullyConnected": _fc_shapes,
    "BatchNorm": _bn_shapes,
    "_contrib_SyncBatchNorm": _bn_shapes,
    "InstanceNorm": lambda kw, d: {1: (d[1],), 2: (d[1],)},
    "LayerNorm": lambda kw, d: {1: (d[kw.get("axis", -1)],), 2: (d[kw.get("axis", -1)],)},
    "GroupNorm": lambda kw, d: {1: (kw.get("num_groups", 1),), 2: (kw.get("num_groups", 1),)},
    "Embedding": lambda kw, d: {1: (kw["input_dim"], kw["output_dim"])},
    "LeakyReLU": lambda kw, d: {1: (d[1] if len(d) > 1 else 1,)},
    "SoftmaxOutput": lambda kw, d: {1: d[:1] if not kw.get("multi_output") else d[:1] + d[2:]},
}


class SymbolBlock(HybridBlock):
    """A Block computing the graph ``outputs`` from the variables ``inputs``; every other
    variable of the graph is a parameter.

    Args:
        outputs: a Symbol (or list of Symbols): the graph's outputs.
        inputs: the variables (Symbols) fed by the arguments of each call, in order.
        params: a ParameterDict whose parameters of the same names are shared.

    Parameters without a value are initialized by ``initialize()``; their shapes come from
    the graph's ``__shape__`` attributes or, at the first call, from the inputs (deferred
    initialization), as for other layers.

    >>> import tapegrad as mx
    >>> data = mx.sym.var('data')
    >>> out = mx.sym.FullyConnected(data, num_hidden=2, name='fc')
    >>> net = mx.gluon.SymbolBlock(out, data)
    >>> net.initialize(mx.init.One())                  # weight and bias all ones
    >>> net(mx.nd.ones((1, 3))).asnumpy().tolist()
    [[4.0, 4.0]]
    >>> sorted(net.collect_params())
    ['fc_bias', 'fc_weight']
    """

    @staticmethod
    def imports(
        symbol_file: str,
        input_names: str | list[str],
        param_file: str | None = None,
        ctx: Any = None,
        allow_missing: bool = False,
        ignore_extra: bool = False,
    ) -> SymbolBlock:
        """Load a model exported by MXNet (``HybridBlock.export`` or
        ``Module.save_checkpoint``): the graph of ``symbol_file`` with the variables
        ``input_names`` as inputs, and the parameters of ``param_file`` (MXNet's ``.params``
        with ``arg:``/``aux:`` prefixes, or plain names), keeping the saved dtypes::

            net = mx.gluon.SymbolBlock.imports("lenet-symbol.json", ["data"], "lenet-0000.params")
        """
        sym = _load_symbol(symbol_file)
        if isinstance(input_names, str):
            input_names = [input_names]
        known = sym.list_inputs()
        absent = [n for n in input_names if n not in known]
        if absent:
            raise SymbolError(
                f"SymbolBlock.imports: {absent} are not variables of the graph in "
                f"'{symbol_file}', whose variables are {known[:12]}"
                f"{' ...' if len(known) > 12 else ''}. Fix: pass the input names it was "
                "exported with (usually ['data'])."
            )
        from ..symbol import var

        block = SymbolBlock(sym, [var(n) for n in input_names])
        if param_file is not None:
            block.collect_params().load(
                param_file,
                ctx,
                allow_missing,
                ignore_extra,
                cast_dtype=True,
                dtype_source="saved",
            )
        return block

    def __init__(self, outputs: Any, inputs: Any, params: ParameterDict | None = None) -> None:
        outs = _flat_symbols(outputs, "outputs")
        ins = _flat_symbols(inputs, "inputs")
        for s in ins:
            node = s._outputs[0][0]
            if node.op != "null":
                raise SymbolError(
                    f"SymbolBlock: input {s.name!r} is the output of an operator ({node.op}); "
                    "inputs must be variables. Fix: pass mx.sym.var(name) for each input."
                )
        super().__init__(prefix=None, params=None)
        self._prefix = ""
        self._params = ParameterDict("", params)
        graph = outs[0] if len(outs) == 1 else Symbol([o for s in outs for o in s._outputs])
        self._graph = graph
        self._input_names = [s.name for s in ins]
        names = set(self._input_names)
        aux = set(graph.list_auxiliary_states())
        nodes = {n.name: n for n in graph._nodes() if n.op == "null"}
        shared = set(params.keys()) if params is not None else set()
        for name in graph.list_arguments():
            if name in shared:  # a shared parameter keeps its own settings
                self.params.get(name)
            elif name not in names:
                self.params.get(name, allow_deferred_init=True, **_param_options(nodes[name]))
        for name in graph.list_auxiliary_states():
            if name in shared:
                self.params.get(name)
            elif name not in names:
                opts = _param_options(nodes[name])
                if "init" not in opts:
                    opts["init"] = "ones" if name.endswith("var") else "zeros"
                self.params.get(name, grad_req="null", allow_deferred_init=True, **opts)
        self._aux = aux
        cut = len(_common_prefix(list(self._params.keys())))
        self._full_names = {key[cut:]: key for key in self._params.keys()}
        self._reg_params = {key[cut:]: p for key, p in self._params.items()}

    def __repr__(self) -> str:
        g = self._graph
        return f"{type(self).__name__}(\n{g} : {len(self._input_names)} -> {len(g)}\n)"

    def infer_shape(self, *args: Any) -> None:
        """Shapes of the parameters still unknown, from the inputs: the graph is run once in
        predict mode without recording, each parameter's shape following from its operator's
        input (convolution, dense, normalization, embedding and PReLU weights)."""
        values = dict(zip(self._input_names, args))
        pending: dict[str, Any] = {}
        for key, p in self._reg_params.items():
            full = self._full_names[key]
            if p.shape is not None and all(d > 0 for d in p.shape):
                values[full] = nd.zeros(p.shape, dtype=p.dtype)
            else:
                pending[full] = p
        if not pending:
            return
        order = self._graph._nodes()
        with autograd.pause(), autograd.predict_mode():
            env: dict[int, tuple] = {}
            for node in order:
                if node.op == "null":
                    if node.name in values:
                        env[id(node)] = (values[node.name],)
                    continue
                srcs = [(src, k) for src, k in node.inputs]
                unknown = [
                    i for i, (src, _) in enumerate(srcs) if src.op == "null" and id(src) not in env
                ]
                if unknown:
                    if 0 in unknown or node.op not in _PARAM_SHAPES:
                        names = [srcs[i][0].name for i in unknown]
                        raise ShapeError(
                            f"SymbolBlock: cannot infer the shape of {names} (inputs of "
                            f"{node.op} node '{node.name}'). Fix: load the parameters "
                            "(param_file=... / load_parameters) or create the graph's "
                            "variables with mx.sym.var(name, shape=...)."
                        )
                    shapes = _PARAM_SHAPES[node.op](
                        node.kwargs(), tuple(env[id(srcs[0][0])][srcs[0][1]].shape)
                    )
                    for i in unknown:
                        src = srcs[i][0]
                        p = pending[src.name]
                        p.shape = shapes[i]
                        env[id(src)] = (nd.ones(p.shape, dtype=p.dtype),)
                args_ = [env[id(src)][k] for src, k in srcs]
                out = node._def.fn(*args_, **node.kwargs())
                env[id(node)] = tuple(out) if isinstance(out, (list, tuple)) else (out,)

    def forward(self, x: Any, *args: Any) -> Any:
        """Evaluate the graph with the inputs ``x, *args``; one output is returned as an
        NDArray, several as a list."""
        if isinstance(x, Symbol):
            raise NotImplementedError(
                "SymbolBlock called on a Symbol: composing graphs is not supported yet. Fix: "
                "call it on NDArrays."
            )
        inputs = (x, *args)
        if len(inputs) != len(self._input_names):
            raise TypeError(
                f"SymbolBlock: the graph has {len(self._input_names)} input(s) "
                f"{self._input_names}, but {len(inputs)} array(s) were given. Fix: pass one "
                "NDArray per input, in that order."
            )
        for name, a in zip(self._input_names, inputs):
            if not isinstance(a, nd.NDArray):
                raise TypeError(
                    f"SymbolBlock: input '{name}' must be an NDArray, got {type(a).__name__}. "
                    "Fix: convert it with mx.nd.array(...)."
                )
        # HybridBlock's call: parameters (deferred ones too), and, hybridized, compiled code
        return super().forward(x, *args)

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **params: Any) -> Any:
        """The graph evaluated on the inputs and the parameters' values."""
        values = {self._full_names[k]: v for k, v in params.items()}
        values.update(zip(self._input_names, (x, *args)))
        out = evaluate(self._graph, values)
        return out[0] if len(out) == 1 else out

    def _deferred_infer_shape(self, *args: Any) -> None:
        try:
            self.infer_shape(*args)
        except TapegradError:
            raise
        except Exception as e:
            raise ShapeError(
                f"SymbolBlock: inferring the parameters' shapes from inputs of shape "
                f"{[getattr(a, 'shape', None) for a in args]} failed: {e}. Fix: load the "
                "parameters before the first call."
            ) from e
