"""``Symbol``: a graph of MXNet operators, read from and written to MXNet's graph JSON
(``NAME-symbol.json``), built by calling the operator functions of ``mx.sym``, and evaluated
with ``mx.nd``.

A graph is made of nodes: a *variable* (``op == 'null'``: an input, a parameter or an
auxiliary state, found by name) or an *operator* node (the MXNet operator's registered name,
its attributes as the strings MXNet writes, e.g. ``{'kernel': '(5, 5)', 'no_bias': 'False'}``,
and its inputs, each a (node, output index) pair). A :class:`Symbol` is a list of such outputs.
Nothing here computes until :meth:`Symbol.eval` (or a ``gluon.SymbolBlock``) runs the graph:
each operator node calls its ``mx.nd`` function, so evaluation is recorded by autograd like any
other NDArray code and gradients reach the arrays passed in.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from numbers import Number
from typing import Any

import numpy as np

from ..base import TapegradError
from . import ops as _ops
from .ops import OpDef, format_attr, parse_attr

__all__ = [
    "Symbol",
    "SymbolError",
    "var",
    "Variable",
    "Group",
    "load",
    "load_json",
]

#: MXNet's dtype codes (``__dtype__`` attributes of variables)
DTYPE_CODES = {
    0: "float32",
    1: "float64",
    2: "float16",
    3: "uint8",
    4: "int32",
    5: "int8",
    6: "int64",
    7: "bool",
    8: "int16",
    9: "uint16",
    10: "uint32",
    11: "uint64",
}
_CODE_OF = {np.dtype(v): k for k, v in DTYPE_CODES.items()}
_STORAGE = {"default": 0, "row_sparse": 1, "csr": 2}
_MAX_JSON_BYTES = 1 << 28
#: the version this writer claims in ``attrs.mxnet_version`` (MXNet 1.9.1's format)
MXNET_VERSION = 10901


class SymbolError(TapegradError, ValueError):
    """A symbol file or graph that cannot be read, or a graph that cannot be evaluated with
    the arrays given."""


class _Node:
    """One node of a graph: a variable (``op == 'null'``) or an operator."""

    __slots__ = ("op", "name", "attrs", "inputs", "_kw", "_def")

    def __init__(self, op: str, name: str, attrs: dict, inputs: list, opdef: OpDef | None):
        self.op = op
        self.name = name
        self.attrs = attrs  # str -> str, as in the JSON
        self.inputs = inputs  # [(node, output index)]
        self._kw: dict | None = None
        self._def = opdef

    def kwargs(self) -> dict:
        """The operator's attributes parsed to Python values (meta ``__x__`` ones left out);
        computed once."""
        kw = self._kw
        if kw is None:
            kw = self._kw = {
                k: parse_attr(v)
                for k, v in self.attrs.items()
                if not (k.startswith("__") and k.endswith("__"))
            }
        return kw

    def output_names(self) -> list[str]:
        if self._def is None:
            return [self.name]
        outs = self._def.output_names(self.kwargs())
        return [f"{self.name}_{o}" for o in outs]

    def num_outputs(self) -> int:
        return 1 if self._def is None else len(self._def.output_names(self.kwargs()))


def _topo(outputs: list) -> list[_Node]:
    """The nodes reachable from ``outputs``, inputs before users, in MXNet's order (a
    depth-first post-order visiting inputs in order); iterative, so deep graphs are fine."""
    order: list[_Node] = []
    seen: set[int] = set()
    for head, _ in outputs:
        if id(head) in seen:
            continue
        seen.add(id(head))
        stack = [(head, 0)]
        while stack:
            node, i = stack.pop()
            if i < len(node.inputs):
                stack.append((node, i + 1))
                child = node.inputs[i][0]
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, 0))
            else:
                order.append(node)
    return order


def _aux_ids(order: list[_Node]) -> set[int]:
    """Variables used as an auxiliary state (a mutable input) by some operator."""
    aux: set[int] = set()
    for node in order:
        if node._def is not None and node._def.aux:
            for pos in node._def.aux:
                if pos < len(node.inputs):
                    aux.add(id(node.inputs[pos][0]))
    return aux


class Symbol:
    """A symbolic graph: one or more outputs of operator or variable nodes.

    Build one from variables and the operator functions of ``mx.sym``, or load one:

    >>> import tapegrad as mx
    >>> x = mx.sym.var('data')
    >>> y = mx.sym.FullyConnected(x, num_hidden=3, name='fc')
    >>> y = mx.sym.Activation(y, act_type='relu', name='relu')
    >>> y.list_arguments(), y.list_outputs()
    (['data', 'fc_weight', 'fc_bias'], ['relu_output'])
    >>> out = y.eval(data=mx.nd.ones((2, 4)), fc_weight=mx.nd.ones((3, 4)), fc_bias=mx.nd.zeros(3))
    >>> out[0].asnumpy().tolist()
    [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]
    >>> mx.sym.load_json(y.tojson()).list_arguments()
    ['data', 'fc_weight', 'fc_bias']
    """

    __slots__ = ("_outputs", "_order")

    def __init__(self, outputs: list) -> None:
        self._outputs = list(outputs)  # [(node, output index)]
        self._order: list[_Node] | None = None

    # ---------------------------------------------------------------- structure
    def _nodes(self) -> list[_Node]:
        if self._order is None:
            self._order = _topo(self._outputs)
        return self._order

    @property
    def name(self) -> str | None:
        """The node's name for a single output; None for a group."""
        if len(self._outputs) != 1:
            return None
        return self._outputs[0][0].name

    def __repr__(self) -> str:
        if self.name is None:
            return f"<Symbol group [{', '.join(str(s.name) for s in self)}]>"
        return f"<Symbol {self.name}>"

    def __len__(self) -> int:
        return len(self._outputs)

    def __iter__(self) -> Iterator[Symbol]:
        return (Symbol([o]) for o in list(self._outputs))

    def __getitem__(self, index: int | str | slice) -> Symbol:
        """The ``index``-th output, or the output called ``index`` (see :meth:`list_outputs`)."""
        if isinstance(index, slice):
            return Symbol(self._outputs[index])
        if isinstance(index, str):
            names = self.list_outputs()
            hits = [i for i, n in enumerate(names) if n == index]
            if len(hits) != 1:
                raise SymbolError(
                    f"Symbol[{index!r}]: {'no' if not hits else 'several'} outputs have that "
                    f"name; the outputs are {names[:20]}{' ...' if len(names) > 20 else ''}. "
                    "Fix: use one of those names (get_internals() lists inner ones)."
                )
            index = hits[0]
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"Symbol indices are ints, names or slices, not {type(index)}")
        return Symbol([self._outputs[index]])

    def list_outputs(self) -> list[str]:
        """The outputs' names: a variable's name, ``<node>_output`` for an operator (or
        ``<node>_output0``... and ``<node>_mean``/``<node>_var`` for several outputs)."""
        out = []
        for node, i in self._outputs:
            out.append(node.output_names()[i])
        return out

    def list_arguments(self) -> list[str]:
        """Names of the variables that are not auxiliary states (inputs and parameters), in
        MXNet's order."""
        order = self._nodes()
        aux = _aux_ids(order)
        return [n.name for n in order if n._def is None and id(n) not in aux]

    def list_auxiliary_states(self) -> list[str]:
        """Names of the auxiliary states (BatchNorm's ``moving_mean``/``moving_var``)."""
        order = self._nodes()
        aux = _aux_ids(order)
        return [n.name for n in order if n._def is None and id(n) in aux]

    def list_inputs(self) -> list[str]:
        """Names of every variable, arguments and auxiliary states, in graph order."""
        return [n.name for n in self._nodes() if n._def is None]

    def get_internals(self) -> Symbol:
        """A group of every output of every node (``sym.get_internals()['fc1_output']`` cuts
        a network at a layer)."""
        outs = []
        for node in self._nodes():
            outs.extend((node, i) for i in range(node.num_outputs()))
        return Symbol(outs)

    def get_children(self) -> Symbol | None:
        """The inputs of this (single-output) symbol's node, as a group; None for a
        variable."""
        node = self._outputs[0][0]
        return Symbol(list(node.inputs)) if node.inputs else None

    # ---------------------------------------------------------------- attributes
    def attr(self, key: str) -> str | None:
        """Attribute ``key`` of this single-output symbol's node (None if absent)."""
        if len(self._outputs) != 1:
            return None
        return self._outputs[0][0].attrs.get(key)

    def list_attr(self) -> dict[str, str]:
        """The attributes of this single-output symbol's node, as strings."""
        return dict(self._outputs[0][0].attrs) if len(self._outputs) == 1 else {}

    def attr_dict(self) -> dict[str, dict[str, str]]:
        """``{node name: attributes}`` for every node with attributes."""
        return {n.name: dict(n.attrs) for n in self._nodes() if n.attrs}

    def _set_attr(self, **kwargs: Any) -> None:
        for node, _ in self._outputs:
            for k, v in kwargs.items():
                node.attrs[k] = format_attr(v)
            node._kw = None

    # ---------------------------------------------------------------- JSON
    def tojson(self) -> str:
        """The graph in MXNet's JSON format (what ``mx.sym.load`` and MXNet 1.x read)."""
        order = self._nodes()
        index = {id(n): i for i, n in enumerate(order)}
        nodes, arg_nodes, row_ptr = [], [], [0]
        for i, n in enumerate(order):
            entry: dict[str, Any] = {"op": n.op, "name": n.name}
            if n.attrs:
                entry["attrs"] = dict(n.attrs)
            entry["inputs"] = [[index[id(src)], k, 0] for src, k in n.inputs]
            nodes.append(entry)
            if n._def is None:
                arg_nodes.append(i)
                row_ptr.append(row_ptr[-1] + 1)
            else:
                row_ptr.append(row_ptr[-1] + n.num_outputs() + n._def.num_hidden(n.kwargs()))
        graph = {
            "nodes": nodes,
            "arg_nodes": arg_nodes,
            "node_row_ptr": row_ptr,
            "heads": [[index[id(n)], k, 0] for n, k in self._outputs],
            "attrs": {"mxnet_version": ["int", MXNET_VERSION]},
        }
        return json.dumps(graph, indent=2)

    def save(self, fname: str) -> None:
        """Write :meth:`tojson` to ``fname`` (atomically: a crash leaves the old file)."""
        text = self.tojson()
        folder = os.path.dirname(os.path.abspath(fname))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-symbol-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, fname)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    # ---------------------------------------------------------------- evaluation
    def eval(self, ctx: Any = None, **kwargs: Any) -> list:
        """Evaluate the graph with ``kwargs`` (``name=NDArray`` for every argument and
        auxiliary state); returns the outputs as a list of NDArrays. Inside
        ``autograd.record()`` the computation is recorded like any NDArray code."""
        return evaluate(self, kwargs)

    def infer_shape(self, *args: Any, **kwargs: Any) -> tuple:
        """MXNet's shape inference: from the shapes of some arguments (positional, in
        :meth:`list_arguments` order, or by name), ``(arg_shapes, out_shapes, aux_shapes)``
        in the order of :meth:`list_arguments`, :meth:`list_outputs` and
        :meth:`list_auxiliary_states`. The parameters' shapes follow from the operators that
        use them; the outputs' from running the graph once on zeros (nothing is recorded).
        ``(None, None, None)`` when the given shapes do not determine every shape.

        >>> import tapegrad as mx
        >>> fc = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=3, name='fc')
        >>> fc.infer_shape(data=(2, 5))
        ([(2, 5), (3, 5), (3,)], [(2, 3)], [])
        """
        from .. import autograd
        from .. import ndarray as nd
        from ..base import ShapeError
        from ..gluon.symbol_block import SymbolBlock

        arg_names = self.list_arguments()
        shapes = dict(zip(arg_names, args))
        shapes.update(kwargs)
        known = {k: tuple(v) for k, v in shapes.items() if v is not None}
        given = [k for k in arg_names if k in known]
        try:
            blk = SymbolBlock(self, [var(k) for k in given])
            with autograd.pause(), autograd.predict_mode():
                blk.infer_shape(*[nd.zeros(known[k]) for k in given])
                values = {k: nd.zeros(known[k]) for k in given}
                for key, p in blk._reg_params.items():
                    values[blk._full_names[key]] = nd.zeros(p.shape, dtype=p.dtype)
                outs = evaluate(self, values)
        except (ShapeError, SymbolError, KeyError, TypeError):
            return None, None, None
        aux = self.list_auxiliary_states()
        return (
            [tuple(values[k].shape) for k in arg_names],
            [tuple(o.shape) for o in outs],
            [tuple(values[k].shape) for k in aux],
        )

    # ---------------------------------------------------------------- arithmetic
    def _binary(self, other: Any, op: str, scalar_op: str, hint: str) -> Symbol:
        if isinstance(other, Symbol):
            return _apply(op, [self, other], {}, None, hint)
        if isinstance(other, Number):
            return _apply(scalar_op, [self], {"scalar": float(other)}, None, hint + "scalar")
        return NotImplemented

    def __add__(self, other: Any) -> Symbol:
        return self._binary(other, "elemwise_add", "_plus_scalar", "_plus")

    def __radd__(self, other: Any) -> Symbol:
        return self.__add__(other)

    def __sub__(self, other: Any) -> Symbol:
        return self._binary(other, "elemwise_sub", "_minus_scalar", "_minus")

    def __rsub__(self, other: Any) -> Symbol:
        if isinstance(other, Number):
            return _apply("_rminus_scalar", [self], {"scalar": float(other)}, None, "_rminusscalar")
        return NotImplemented

    def __mul__(self, other: Any) -> Symbol:
        return self._binary(other, "elemwise_mul", "_mul_scalar", "_mul")

    def __rmul__(self, other: Any) -> Symbol:
        return self.__mul__(other)

    def __truediv__(self, other: Any) -> Symbol:
        return self._binary(other, "elemwise_div", "_div_scalar", "_div")

    def __rtruediv__(self, other: Any) -> Symbol:
        if isinstance(other, Number):
            return _apply("_rdiv_scalar", [self], {"scalar": float(other)}, None, "_rdivscalar")
        return NotImplemented

    def __pow__(self, other: Any) -> Symbol:
        return self._binary(other, "_power", "_power_scalar", "_power")

    def __neg__(self) -> Symbol:
        return self.__mul__(-1.0)

    def __bool__(self) -> bool:
        raise TypeError(
            "A Symbol has no truth value: it is a graph, not a value. Fix: evaluate it "
            "(sym.eval(...)) and test the NDArray."
        )


# ------------------------------------------------------------------------- building


def _name_for(name: str | None, hint: str) -> str:
    from ..gluon.block import NameManager  # shared with Gluon's block names, as in MXNet

    return NameManager.current().get(name, hint)


def var(
    name: str,
    attr: dict | None = None,
    shape: Any = None,
    lr_mult: float | None = None,
    wd_mult: float | None = None,
    dtype: Any = None,
    init: Any = None,
    stype: str | None = None,
    **kwargs: Any,
) -> Symbol:
    """A variable: an input, parameter or auxiliary state of a graph, bound by ``name``.

    ``shape``, ``lr_mult``, ``wd_mult``, ``dtype``, ``init`` and ``stype`` are stored as
    MXNet's attributes (``__shape__``, ``__dtype__`` as MXNet's code...); further attributes
    must be named ``__like_this__``.

    >>> import tapegrad as mx
    >>> w = mx.sym.var('w', shape=(3, 0), lr_mult=2.0)
    >>> w, w.attr('__shape__'), w.attr('__lr_mult__')
    (<Symbol w>, '(3, 0)', '2.0')
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"mx.sym.var: name must be a non-empty str, got {name!r}")
    attrs = {k: format_attr(v) for k, v in (attr or {}).items()}
    if shape is not None:
        attrs["__shape__"] = format_attr(tuple(shape))
    if lr_mult is not None:
        attrs["__lr_mult__"] = format_attr(float(lr_mult))
    if wd_mult is not None:
        attrs["__wd_mult__"] = format_attr(float(wd_mult))
    if dtype is not None:
        attrs["__dtype__"] = str(_CODE_OF[np.dtype(dtype)])
    if init is not None:
        attrs["__init__"] = init if isinstance(init, str) else init.dumps()
    if stype is not None:
        attrs["__storage_type__"] = str(_STORAGE[stype])
    for k, v in kwargs.items():
        if not (k.startswith("__") and k.endswith("__")):
            raise ValueError(
                f"mx.sym.var: attribute {k}={v!r} is not supported. Fix: name additional "
                "attributes with double underscores, e.g. __yourattr__."
            )
        attrs[k] = format_attr(v)
    return Symbol([(_Node("null", name, attrs, [], None), 0)])


Variable = var


def Group(symbols: list) -> Symbol:
    """One symbol with the outputs of all ``symbols``, in order."""
    outs = []
    for s in symbols:
        if not isinstance(s, Symbol):
            raise TypeError(f"Group: expected Symbols, got {type(s).__name__}")
        outs.extend(s._outputs)
    return Symbol(outs)


def _single(sym: Any, op: str, what: str) -> tuple:
    if not isinstance(sym, Symbol):
        raise TypeError(
            f"mx.sym.{op}: input {what} must be a Symbol, got {type(sym).__name__}. Fix: "
            "pass mx.sym.var(...) or the output of another operator."
        )
    if len(sym._outputs) != 1:
        raise SymbolError(
            f"mx.sym.{op}: input {what} is a group of {len(sym._outputs)} outputs. Fix: pick "
            "one with sym[i]."
        )
    return sym._outputs[0]


def _apply(
    op: str, args: list, kwargs: dict, name: str | None, hint: str, attr: dict | None = None
) -> Symbol:
    """A new operator node ``op`` on input Symbols and attributes; missing parameter inputs
    become variables ``<name>_<input>`` (``fc_weight``), as MXNet creates them."""
    opdef = _ops.OPS[op]
    attrs = {k: format_attr(v) for k, v in (attr or {}).items()}
    inputs_by_name: dict[str, Symbol] = {}
    for k, v in kwargs.items():
        if isinstance(v, Symbol):
            inputs_by_name[k] = v
        elif v is not None:
            attrs[k] = format_attr(v)
    name = _name_for(name, hint)
    if opdef.inputs is None:
        if inputs_by_name:
            raise TypeError(
                f"mx.sym.{hint}: takes its inputs as positional arguments, got "
                f"{sorted(inputs_by_name)} by keyword"
            )
        inputs = [_single(s, op, f"{i}") for i, s in enumerate(args)]
        if op in ("Concat", "stack", "add_n", "UpSampling"):
            attrs["num_args"] = str(len(inputs))
    else:
        parsed = {k: parse_attr(v) for k, v in attrs.items()}
        wanted = opdef.input_names(parsed) or []
        if len(args) > len(wanted):
            raise TypeError(
                f"mx.sym.{hint}: {len(args)} positional inputs given but {op} takes "
                f"{wanted}. Fix: pass attributes by keyword."
            )
        unknown = set(inputs_by_name) - set(opdef.inputs)
        if unknown:
            raise TypeError(
                f"mx.sym.{hint}: {sorted(unknown)} are not inputs of {op} (its inputs are "
                f"{list(opdef.inputs)})"
            )
        given = dict(zip(wanted, args))
        for k, v in inputs_by_name.items():
            if k in given:
                raise TypeError(f"mx.sym.{hint}: input {k!r} given twice")
            given[k] = v
        inputs = []
        for k in wanted:
            s = given.get(k)
            if s is None:
                s = var(f"{name}_{k}")
            inputs.append(_single(s, op, k))
    node = _Node(op, name, attrs, inputs, opdef)
    return Symbol([(node, i) for i in range(node.num_outputs())])


def make_function(pyname: str, op: str) -> Any:
    """The ``mx.sym.<pyname>`` function that builds operator ``op``."""

    def fn(*args: Any, name: str | None = None, attr: dict | None = None, **kwargs: Any) -> Symbol:
        return _apply(op, list(args), kwargs, name, pyname.lower(), attr)

    fn.__name__ = pyname
    fn.__qualname__ = pyname
    fn.__doc__ = (
        f"Build a ``{op}`` node (MXNet's operator of that name): inputs as Symbols "
        "(positional or by input name), attributes by keyword, ``name=`` the node's name. "
        f"It computes ``mx.nd.{pyname}`` when evaluated."
    )
    return fn


# -------------------------------------------------------------------------- loading


def _fail(source: str, what: str, fix: str) -> SymbolError:
    return SymbolError(f"{source}: {what}. Fix: {fix}.")


def load_json(json_str: str, source: str = "<json string>") -> Symbol:
    """The Symbol of an MXNet graph JSON string (``Symbol.tojson()``, the content of a
    ``NAME-symbol.json`` file). Operator nodes must name operators tapegrad has."""
    try:
        graph = json.loads(json_str)
    except (ValueError, RecursionError) as e:
        raise _fail(source, f"not valid JSON ({e})", "pass an MXNet -symbol.json file") from None
    return _from_graph(graph, source)


def load(fname: str) -> Symbol:
    """Read an MXNet symbol file (``NAME-symbol.json``, written by ``HybridBlock.export``,
    ``Module.save_checkpoint`` or ``Symbol.save``)."""
    fname = os.fspath(fname)
    try:
        size = os.path.getsize(fname)
        if size > _MAX_JSON_BYTES:
            raise _fail(
                fname,
                f"the file has {size} bytes, more than any symbol file ({_MAX_JSON_BYTES})",
                "pass the -symbol.json file, not the parameters",
            )
        with open(fname, "rb") as f:
            raw = f.read(_MAX_JSON_BYTES + 1)
    except OSError as e:
        raise SymbolError(
            f"mx.sym.load: cannot read '{fname}': {e.strerror or e}. Fix: check the path."
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(
            fname, "not a text file (a symbol file is JSON)", "pass the -symbol.json file"
        ) from None
    return load_json(text, fname)


def _attrs_of(entry: dict, source: str, where: str) -> dict:
    attrs: dict[str, str] = {}
    for key in ("param", "attr", "attrs"):  # MXNet < 0.9 wrote 'param' and 'attr'
        part = entry.get(key)
        if part is None:
            continue
        if not isinstance(part, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in part.items()
        ):
            raise _fail(
                source, f"{where}: '{key}' is not an object of strings", "re-export the model"
            )
        attrs.update(part)
    return attrs


def _from_graph(graph: Any, source: str) -> Symbol:
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        raise _fail(source, "no 'nodes' list: not an MXNet graph", "pass an MXNet -symbol.json")
    heads = graph.get("heads")
    if not isinstance(heads, list) or not heads:
        raise _fail(source, "no 'heads' (the graph's outputs)", "re-export the model")
    nodes: list[_Node] = []
    for i, entry in enumerate(graph["nodes"]):
        where = f"node {i}"
        if not isinstance(entry, dict):
            raise _fail(source, f"{where} is not an object", "re-export the model")
        op, name, inputs = entry.get("op"), entry.get("name"), entry.get("inputs", [])
        if not isinstance(op, str) or not isinstance(name, str) or not isinstance(inputs, list):
            raise _fail(
                source,
                f"{where} lacks a string 'op' and 'name' or an 'inputs' list",
                "re-export the model",
            )
        where = f"node {i} ('{name}')"
        attrs = _attrs_of(entry, source, where)
        opdef = None if op == "null" else _ops.lookup(op, name, source)
        refs = []
        for ref in inputs:
            if (
                not isinstance(ref, list)
                or len(ref) not in (2, 3)
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in ref)
                or not 0 <= ref[0] < i
            ):
                raise _fail(
                    source,
                    f"{where}: input {ref!r} is not [earlier node, output(, version)]",
                    "re-export the model",
                )
            src = nodes[ref[0]]
            if (
                not 0
                <= ref[1]
                < src.num_outputs() + (src._def.num_hidden(src.kwargs()) if src._def else 0)
            ):
                raise _fail(
                    source,
                    f"{where}: input {ref!r} asks for output {ref[1]} of '{src.name}', which "
                    f"has {src.num_outputs()}",
                    "re-export the model",
                )
            refs.append((src, ref[1]))
        node = _Node(op, name, attrs, refs, opdef)
        if opdef is None and refs:
            raise _fail(source, f"{where}: a variable with inputs", "re-export the model")
        if opdef is not None and opdef.inputs is not None:
            want = opdef.input_names(node.kwargs()) or []
            if len(refs) != len(want):
                raise _fail(
                    source,
                    f"{where}: operator {op} with these attributes takes {len(want)} inputs "
                    f"({', '.join(want)}), the file gives {len(refs)}",
                    "re-export the model",
                )
        nodes.append(node)
    outs = []
    for h in heads:
        if (
            not isinstance(h, list)
            or len(h) not in (2, 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in h)
            or not 0 <= h[0] < len(nodes)
            or not 0 <= h[1] < nodes[h[0]].num_outputs()
        ):
            raise _fail(source, f"head {h!r} is not [node, output(, version)]", "re-export")
        outs.append((nodes[h[0]], h[1]))
    return Symbol(outs)


# ------------------------------------------------------------------------ evaluation


def _renamed(e: Exception, prefix: str) -> Exception:
    """``e`` with ``prefix`` in front of its message (same class when it allows it)."""
    try:
        return type(e)(f"{prefix}: {e}")
    except Exception:
        return SymbolError(f"{prefix}: {type(e).__name__}: {e}")


def evaluate(sym: Symbol, values: dict) -> list:
    """The outputs of ``sym`` with its variables bound to the NDArrays of ``values`` (by
    name). Intermediate results are released after their last use."""
    order = sym._nodes()
    missing = [n.name for n in order if n._def is None and n.name not in values]
    if missing:
        raise SymbolError(
            f"Symbol.eval: no value for {missing} (the graph's inputs are "
            f"{[n.name for n in order if n._def is None]}). Fix: pass every input, parameter "
            "and auxiliary state by name."
        )
    last: dict[int, int] = {}
    for pos, node in enumerate(order):
        for src, _ in node.inputs:
            last[id(src)] = pos
    for node, _ in sym._outputs:
        last[id(node)] = len(order)
    env: dict[int, tuple] = {}
    for pos, node in enumerate(order):
        if node._def is None:
            env[id(node)] = (values[node.name],)
            continue
        args = []
        for src, k in node.inputs:
            outs = env[id(src)]
            if k >= len(outs):
                raise SymbolError(
                    f"Symbol.eval: node '{node.name}' uses output {k} of '{src.name}' "
                    f"({src.op}), an output tapegrad does not compute with its attributes "
                    f"{src.attrs} (MXNet's hidden outputs, or output_mean_var=False). Fix: "
                    "use a visible output, or set output_mean_var=True on that node."
                )
            args.append(outs[k])
        try:
            out = node._def.fn(*args, **node.kwargs())
        except TapegradError as e:
            raise _renamed(e, f"Symbol node '{node.name}' ({node.op})") from None
        except TypeError as e:
            raise SymbolError(
                f"Symbol node '{node.name}' ({node.op}) with attributes {node.attrs}: {e}. "
                "Fix: check the node's attributes against MXNet 1.9's operator."
            ) from None
        env[id(node)] = tuple(out) if isinstance(out, (list, tuple)) else (out,)
        for src, _ in node.inputs:
            if last.get(id(src)) == pos:
                env.pop(id(src), None)
    return [env[id(node)][k] for node, k in sym._outputs]
