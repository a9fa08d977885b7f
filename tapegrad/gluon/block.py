"""Blocks: the containers of layers and models (MXNet 1.x ``gluon/block.py`` semantics).

* Child blocks and parameters assigned as attributes are registered automatically.
* Names follow MXNet 1.x: a block created at top level gets the prefix ``<alias><n>_`` from a
  global counter (``dense0_``, ``dense1_``...); a block created inside
  ``with parent.name_scope():`` gets ``parent.prefix + <alias><n>_`` with a counter per
  parent. Parameter names are ``prefix + name`` (``dense0_weight``).
* ``save_parameters`` writes structural names (``0.weight``, ``encoder.1.bias``) as MXNet 1.9
  does; ``load_parameters`` reads those and, like MXNet, old prefixed names too.
* ``HybridBlock.hybridize()`` is accepted; tapegrad runs the same eager code either way, so
  results are identical.
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import autograd, serialization
from .. import ndarray as nd
from ..base import TapegradError
from ..core import STATE
from ..trace import Compiled
from ..trace import _flatten as _trace_flatten
from ..trace import _unflatten as _trace_unflatten
from . import _infer
from .parameter import (
    DEFAULT_INIT,
    DeferredInitializationError,
    Parameter,
    ParameterDict,
    ParameterLoadError,
    _brief,
    _indent,
)

__all__ = [
    "Block",
    "HybridBlock",
    "Sequential",
    "HybridSequential",
    "HookHandle",
    "NameManager",
    "HybridBlockInputError",
    "ModelFileError",
]


class HybridBlockInputError(TapegradError, TypeError, ValueError):
    """A HybridBlock was called without any NDArray among its inputs.

    It is a ``ValueError`` (what MXNet raises) and a ``TypeError``."""


class ModelFileError(TapegradError, ValueError):
    """A ``<prefix>-model.json`` file (``Block.save``) is damaged or describes another
    network than the one loading it."""


def _has_ndarray(values: Any) -> bool:
    for v in values:
        if isinstance(v, nd.NDArray):
            return True
        if isinstance(v, (list, tuple)) and _has_ndarray(v):
            return True
    return False


class NameManager:
    """Counters that give unnamed top-level blocks unique prefixes (``dense0_``, ``dense1_``).

    Use it as a context manager to start counting afresh, as with MXNet's
    ``mx.name.NameManager``:

    >>> import tapegrad as mx
    >>> with mx.gluon.block.NameManager():
    ...     print(mx.gluon.nn.Dense(2).prefix, mx.gluon.nn.Dense(2).prefix)
    dense0_ dense1_
    """

    _current = threading.local()

    def __init__(self) -> None:
        self._counter: dict[str, int] = {}
        self._old: NameManager | None = None

    def get(self, name: str | None, hint: str) -> str:
        """``name`` if given, else ``hint`` followed by the next number for that hint."""
        if name:
            return name
        n = self._counter.get(hint, 0)
        self._counter[hint] = n + 1
        return f"{hint}{n}"

    def __enter__(self) -> NameManager:
        self._old = NameManager.current()
        NameManager._current.value = self
        return self

    def __exit__(self, *exc: Any) -> None:
        NameManager._current.value = self._old

    @staticmethod
    def current() -> NameManager:
        """The active manager of this thread."""
        cur = getattr(NameManager._current, "value", None)
        if cur is None:
            cur = NameManager._current.value = NameManager()
        return cur


class _BlockScope:
    """The ``name_scope()`` of a block: children created inside get prefixed names."""

    _current = threading.local()

    def __init__(self, block: Block) -> None:
        self._block = block
        self._counter: dict[str, int] = {}
        self._old_scope: _BlockScope | None = None

    @staticmethod
    def create(
        prefix: str | None, params: ParameterDict | None, hint: str
    ) -> tuple[str, ParameterDict]:
        """Prefix and ParameterDict of a new block."""
        current = getattr(_BlockScope._current, "value", None)
        if current is None:
            if prefix is None:
                prefix = NameManager.current().get(None, hint) + "_"
            if params is None:
                params = ParameterDict(prefix)
            else:
                params = ParameterDict(params.prefix, params)
            return prefix, params
        if prefix is None:
            count = current._counter.get(hint, 0)
            prefix = f"{hint}{count}_"
            current._counter[hint] = count + 1
        if params is None:
            parent = current._block.params
            params = ParameterDict(parent.prefix + prefix, parent._shared)
        else:
            params = ParameterDict(params.prefix, params)
        return current._block.prefix + prefix, params

    def __enter__(self) -> _BlockScope:
        if self._block._empty_prefix:
            return self
        self._old_scope = getattr(_BlockScope._current, "value", None)
        _BlockScope._current.value = self
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._block._empty_prefix:
            return
        _BlockScope._current.value = self._old_scope


class HookHandle:
    """Handle returned by ``register_forward_hook``; ``detach()`` removes the hook.

    Also a context manager that detaches the hook on exit.
    """

    _next_id = [0]

    def __init__(self) -> None:
        self._hooks_dict_ref: Callable[[], Any] | None = None
        self._id: int | None = None

    def attach(self, hooks_dict: OrderedDict, hook: Callable) -> None:
        """Add ``hook`` to ``hooks_dict`` under a fresh id."""
        if self._hooks_dict_ref is not None:
            raise RuntimeError("The same handle cannot be attached twice.")
        self._id = HookHandle._next_id[0]
        HookHandle._next_id[0] += 1
        hooks_dict[self._id] = hook
        self._hooks_dict_ref = lambda: hooks_dict

    def detach(self) -> None:
        """Remove the hook (no-op if already removed)."""
        if self._hooks_dict_ref is None:
            return
        hooks = self._hooks_dict_ref()
        if hooks is not None and self._id in hooks:
            del hooks[self._id]
        self._hooks_dict_ref = None

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()


_MAX_MODEL_JSON = 64 << 20  # a model description is kilobytes; refuse absurd files


class _UndoLog(threading.local):
    """Per thread: the undo functions of the deferred initializations done during the
    outermost ``Block.__call__`` in progress (None outside any call)."""

    log: list | None = None


_UNDO = _UndoLog()
_EAGER = object()  # "run this call eagerly"


class _SymbolPrefix(NameManager):
    """Names of the operator nodes a block builds: its prefix, then the name it gives
    (``fwd``) or the operator's hint and a counter (MXNet's ``Prefix`` name manager)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def get(self, name: str | None, hint: str) -> str:
        return self._prefix + super().get(name, hint)


def _is_symbol(x: Any) -> bool:
    return type(x).__name__ == "Symbol" and type(x).__module__.startswith("tapegrad.symbol")


def _has_symbol(obj: Any) -> bool:
    if isinstance(obj, (list, tuple)):
        return any(_has_symbol(o) for o in obj)
    return _is_symbol(obj)


def _flat_shapes(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_flat_shapes(i) for i in x]
    return x.shape if isinstance(x, nd.NDArray) else x


def _shape_str(args: Any) -> str:
    shapes = _flat_shapes(args)
    return str(shapes)[1:-1] if isinstance(shapes, list) else str(shapes)


class Block:
    """Base class of all layers and models. Subclass it and define ``forward``.

    Args:
        prefix: name prefix of this block's parameters and children (default: an automatic
            ``<classname><n>_``).
        params: a ParameterDict whose parameters this block shares (e.g.
            ``Dense(20, params=dense0.collect_params())``).

    >>> import tapegrad as mx
    >>> from tapegrad.gluon import Block, nn
    >>> class Model(Block):
    ...     def __init__(self, **kwargs):
    ...         super().__init__(**kwargs)
    ...         with self.name_scope():
    ...             self.dense0 = nn.Dense(5, in_units=3)
    ...             self.dense1 = nn.Dense(2, in_units=5)
    ...     def forward(self, x):
    ...         return self.dense1(mx.nd.relu(self.dense0(x)))
    >>> model = Model(prefix='model_')
    >>> model.initialize()
    >>> model(mx.nd.ones((4, 3))).shape
    (4, 2)
    >>> sorted(model.collect_params().keys())[:2]
    ['model_dense0_bias', 'model_dense0_weight']
    """

    def __init__(self, prefix: str | None = None, params: ParameterDict | None = None) -> None:
        self._empty_prefix = prefix == ""
        self._prefix, self._params = _BlockScope.create(prefix, params, self._alias())
        self._name = self._prefix[:-1] if self._prefix.endswith("_") else self._prefix
        self._scope = _BlockScope(self)
        self._children: OrderedDict[str, Block] = OrderedDict()
        self._reg_params: dict[str, Parameter] = {}
        self._forward_hooks: OrderedDict = OrderedDict()
        self._forward_pre_hooks: OrderedDict = OrderedDict()

    def __repr__(self) -> str:
        modstr = "\n".join(
            f"  ({key}): {_indent(repr(block), 2)}"
            for key, block in self.__dict__.items()
            if isinstance(block, Block)
        )
        return f"{type(self).__name__}(\n{modstr}\n)"

    def __setattr__(self, name: str, value: Any) -> None:
        """Register child blocks and parameters assigned as attributes."""
        if isinstance(value, (Block, Parameter)) and "_children" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.{name}: cannot register a {type(value).__name__} "
                "before Block.__init__ ran. Fix: call super().__init__(**kwargs) first in "
                f"{type(self).__name__}.__init__."
            )
        if name in self.__dict__:
            existing = self.__dict__[name]
            if isinstance(existing, (Parameter, Block)) and not isinstance(value, type(existing)):
                raise TypeError(
                    f"Changing attribute type for {name} from {type(existing)} to "
                    f"{type(value)} is not allowed."
                )
        if isinstance(value, Block):
            self.register_child(value, name)
        elif isinstance(value, Parameter):
            if name in self._reg_params:
                raise ValueError(
                    f"Overriding Parameter attribute {name} of {type(self).__name__} is not "
                    "allowed. If you want to share parameters between blocks, please set "
                    "'params' at Block construction instead."
                )
            self._reg_params[name] = value
        object.__setattr__(self, name, value)

    def _check_container_with_block(self) -> None:
        children = set(map(id, self._children.values()))

        def hidden(data: Any) -> bool:
            if isinstance(data, (list, tuple)):
                return any(hidden(d) for d in data)
            if isinstance(data, dict):
                return any(hidden(d) for d in data.values())
            return isinstance(data, Block) and id(data) not in children

        for k, v in self.__dict__.items():
            if isinstance(v, (list, tuple, dict)) and not (k.startswith("__") or k == "_children"):
                if hidden(v):
                    warnings.warn(
                        f'"{type(self).__name__}.{k}" is an unregistered container with Blocks. '
                        "Note that Blocks inside the list, tuple or dict will not be registered "
                        "automatically. Make sure to register them using register_child() or "
                        "switching to nn.Sequential/nn.HybridSequential instead.",
                        stacklevel=3,
                    )

    def _alias(self) -> str:
        return type(self).__name__.lower()

    @property
    def prefix(self) -> str:
        """Prefix of this block's names, e.g. ``'dense0_'``."""
        return self._prefix

    @property
    def name(self) -> str:
        """Name of this block: the prefix without its trailing ``_``."""
        return self._name

    def name_scope(self) -> _BlockScope:
        """Context manager in which new child blocks get this block's prefix."""
        return self._scope

    @property
    def params(self) -> ParameterDict:
        """This block's own parameters (children's are not included; see
        :meth:`collect_params`)."""
        return self._params

    def collect_params(self, select: str | None = None) -> ParameterDict:
        """All parameters of this block and its children, optionally only those whose names
        match the regular expression ``select`` (``re.match``, e.g. ``'.*weight|.*bias'``)."""
        self._check_container_with_block()
        ret = ParameterDict(self._params.prefix)
        own = self._own_params()
        if not select:
            ret.update(own)
        else:
            pattern = re.compile(select)
            ret.update({n: p for n, p in own.items() if pattern.match(n)})
        for child in self._children.values():
            ret.update(child.collect_params(select=select))
        return ret

    def _own_params(self) -> dict[str, Parameter]:
        """This block's parameters by name: ``self.params`` plus Parameters assigned as
        attributes without going through ``self.params.get`` (``self.w = Parameter('w', ...)``).

        MXNet 1.x leaves the latter out of ``collect_params`` (so ``initialize`` and the
        Trainer never see them); tapegrad includes them, as MXNet 2 does."""
        own = dict(self._params.items())
        known = {id(p) for p in own.values()}
        for p in self._reg_params.values():
            if id(p) not in known:
                if p.name in own:
                    raise ValueError(
                        f"{type(self).__name__} '{self.name}': the Parameter assigned as an "
                        f"attribute is named '{p.name}', like another Parameter of this block. "
                        "Fix: give it another name."
                    )
                own[p.name] = p
                known.add(id(p))
        return own

    def _collect_params_with_prefix(self, prefix: str = "") -> dict[str, Parameter]:
        """Parameters by structural name: ``'0.weight'``, ``'encoder.dense.bias'``."""
        if prefix:
            prefix += "."
        ret = {prefix + key: val for key, val in self._reg_params.items()}
        for name, child in self._children.items():
            ret.update(child._collect_params_with_prefix(prefix + name))
        return ret

    def save_parameters(self, filename: str, deduplicate: bool = False) -> None:
        """Save the parameters under structural names (``0.weight``) in MXNet's .params
        format. ``deduplicate`` stores a shared parameter once. The write is atomic. In
        data-parallel training (``tapegrad.distributed``) only rank 0 writes the file (every
        rank holds the same values); the others return at once."""
        from ..distributed import comm

        if not comm.is_writer():
            return
        params = self._collect_params_with_prefix()
        if deduplicate:
            first: dict[int, str] = {}
            for k, v in params.items():
                first.setdefault(id(v), k)
            params = {k: v for k, v in params.items() if first[id(v)] == k}
        serialization.save(filename, {key: val._reduce() for key, val in params.items()})

    def save_params(self, filename: str) -> None:
        """[Deprecated] Save with prefixed names; use :meth:`save_parameters`."""
        warnings.warn(
            "save_params is deprecated. Please use save_parameters.",
            DeprecationWarning,
            stacklevel=2,
        )
        self.collect_params().save(filename, strip_prefix=self.prefix)

    def load_parameters(
        self,
        filename: str,
        ctx: Any = None,
        allow_missing: bool = False,
        ignore_extra: bool = False,
        cast_dtype: bool = False,
        dtype_source: str = "current",
    ) -> None:
        """Load parameters saved by :meth:`save_parameters` (or by MXNet).

        Args:
            filename: path of the .params file.
            ctx: context(s) to initialize loaded parameters on.
            allow_missing: silently skip parameters of this block absent from the file.
            ignore_extra: silently ignore arrays of the file that this block does not have.
            cast_dtype: cast saved arrays to the parameter's dtype (``dtype_source='current'``)
                or adopt the saved dtype (``'saved'``).

        Files whose names contain no ``.`` are MXNet's older prefixed format
        (``dense0_weight``) and are matched against ``collect_params()``. Every name, shape and
        dtype is checked before any parameter changes; an error names the offending parameter.
        """
        loaded = serialization.load(filename)
        if not isinstance(loaded, dict):
            raise ParameterLoadError(
                f"File '{filename}' holds an unnamed list of {len(loaded)} arrays, so they "
                "cannot be matched to parameters. Fix: load it with mx.nd.load and call "
                "set_data on each parameter."
            )
        params = self._collect_params_with_prefix()
        if not loaded and not params:
            return
        if not any("." in k for k in loaded):
            self._load_legacy(
                loaded, filename, ctx, allow_missing, ignore_extra, cast_dtype, dtype_source
            )
            return
        if not allow_missing:
            # a shared parameter is saved once (deduplicate): any of its names will do
            names_of = defaultdict(list)
            for k, v in params.items():
                names_of[id(v)].append(k)
            for name, param in params.items():
                if not any(n in loaded for n in names_of[id(param)]):
                    raise ParameterLoadError(
                        f"Parameter '{name}' is missing in file '{filename}', which contains "
                        f"parameters: {_brief(loaded)}. Set allow_missing=True to ignore "
                        "missing parameters."
                    )
        todo = []
        for name, value in loaded.items():
            if name not in params:
                if not ignore_extra:
                    raise ParameterLoadError(
                        f"Parameter '{name}' loaded from file '{filename}' is not present in "
                        f"this {type(self).__name__}, which contains parameters "
                        f"{_brief(params)}. Set ignore_extra=True to ignore."
                    )
                continue
            param = params[name]
            try:
                value = param._check_loadable(value, cast_dtype, dtype_source)
            except ParameterLoadError as e:
                raise ParameterLoadError(f"{e} (name in file: '{name}')") from None
            todo.append((param, value))
        for param, value in todo:
            param._load_init(value, ctx, cast_dtype=cast_dtype, dtype_source=dtype_source)

    def _load_legacy(
        self,
        loaded: dict,
        filename: str,
        ctx: Any,
        allow_missing: bool,
        ignore_extra: bool,
        cast_dtype: bool,
        dtype_source: str,
    ) -> None:
        """Load a file of prefixed names (MXNet's ``save_params`` / ``ParameterDict.save``).

        As MXNet does, names are first read as relative to this block (``weight`` ->
        ``dense0_weight``). When that leaves parameters unmatched, two more readings are tried:
        the names as they are (a file written by ``collect_params().save()`` of a block with
        the same prefix), and the names with the file's own common prefix replaced by this
        block's (the same network built under another automatic name, e.g. ``dense3_``).
        """
        params = self.collect_params()
        names = {(k[4:] if k.startswith(("arg:", "aux:")) else k): v for k, v in loaded.items()}
        prefix = self.prefix
        candidates = [{prefix + k: v for k, v in names.items()}, dict(names)]
        common = _common_prefix(list(names))
        cut = common.rfind("_") + 1
        if cut:
            candidates.append({prefix + k[cut:]: v for k, v in names.items()})
        wanted = set(params.keys())

        def fit(i: int) -> tuple:
            cand = set(candidates[i])
            exact = wanted <= cand and (ignore_extra or cand <= wanted)
            return (exact, len(wanted & cand), -i)

        chosen = candidates[max(range(len(candidates)), key=fit)]
        lprefix = len(prefix) if chosen is candidates[0] else 0
        params._load_dict(
            chosen, filename, ctx, allow_missing, ignore_extra, cast_dtype, dtype_source, lprefix
        )

    def save(self, prefix: str) -> None:
        """Save the model's structure and parameters as MXNet 1.9 does:
        ``<prefix>-model.json`` (each block's class, name and children, in order) and
        ``<prefix>-model.params`` (:meth:`save_parameters`). Reload into a network built
        the same way with :meth:`load`.

        tapegrad has no symbolic graph, so a HybridBlock is recorded as not hybridized
        (MXNet then rebuilds its graph on the first call, as here). Both writes are atomic.
        """
        model: dict = {}
        index = [0]

        def walk(blk: Block, structure: dict) -> None:
            mdl: dict = {"orig_name": blk.name}
            structure[type(blk).__name__.lower() + str(index[0])] = mdl
            if isinstance(blk, HybridBlock):
                mdl["hybridized"] = False
            children: dict = {}
            mdl["children"] = children
            for ch_name, child in blk._children.items():
                index[0] += 1
                children[child.name] = ch_name
                walk(child, mdl)

        walk(self, model)
        text = json.dumps(model).encode("utf-8")
        serialization.atomic_write(prefix + "-model.json", lambda f: f.write(text))
        self.save_parameters(prefix + "-model.params")

    def load(self, prefix: str) -> None:
        """Load what :meth:`save` wrote, as MXNet 1.9 does: every block gets back the name
        it had when saved (its parameters are listed under ``<name>_<param>`` in its
        ``params``), children get back their saved names, and the parameters are loaded
        from ``<prefix>-model.params``. The network must be built the same way (the same
        blocks in the same order); this does not rebuild it.

        Everything is checked before the network changes: a file that does not describe
        this network raises :class:`ModelFileError` (naming the block), and when loading
        the parameters fails, the names are put back as they were.
        """
        fname = prefix + "-model.json"
        try:
            with open(fname, "rb") as f:
                raw = f.read(_MAX_MODEL_JSON + 1)
        except OSError as e:
            raise ModelFileError(
                f"Block.load: cannot read '{fname}' ({e.strerror or e}). Fix: pass the prefix "
                "given to Block.save (the files are <prefix>-model.json and "
                "<prefix>-model.params)."
            ) from None
        if len(raw) > _MAX_MODEL_JSON:
            raise ModelFileError(
                f"Block.load: '{fname}' is larger than {_MAX_MODEL_JSON} bytes, far more than "
                "a model description holds. Fix: check that it is the file written by "
                "Block.save."
            )
        try:
            model = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ModelFileError(
                f"Block.load: '{fname}' is not valid JSON ({e}). Fix: save the model again "
                "with Block.save."
            ) from None
        plan: list = []
        self._plan_load(model, [0], plan, fname, type(self).__name__)
        undo = [
            (blk, blk._name, OrderedDict(blk.params._params), OrderedDict(blk._children),
             getattr(blk, "_active", None))
            for blk, *_ in plan
        ]  # fmt: skip
        for blk, name, pnames, children, hybridized in plan:
            blk._name = name
            blk.params._params = pnames
            blk._children = children
            if hybridized:
                blk._active = True
        try:
            self.load_parameters(prefix + "-model.params")
        except BaseException:
            for blk, name, pnames, children, active in undo:
                blk._name = name
                blk.params._params = pnames
                blk._children = children
                if active is not None:
                    blk._active = active
            raise

    def _plan_load(self, structure: Any, index: list, plan: list, fname: str, path: str) -> str:
        """Check the saved description of this block and plan its renaming (appended to
        ``plan``); returns the block's saved name."""
        key = type(self).__name__.lower() + str(index[0])
        mdl = structure.get(key) if isinstance(structure, dict) else None
        if not (
            isinstance(mdl, dict)
            and isinstance(mdl.get("orig_name"), str)
            and isinstance(mdl.get("children"), dict)
        ):
            raise ModelFileError(
                f"Block.load: '{fname}' has no valid entry '{key}' for block {path} "
                f"({type(self).__name__}, block number {index[0]} of the network). Fix: build "
                "the network exactly as it was when saved (the same blocks, created in the "
                "same order)."
            )
        name = mdl["orig_name"]
        old_prefix = self.params.prefix
        pnames = OrderedDict(
            (name + "_" + k[len(old_prefix) :], p) for k, p in self.params._params.items()
        )
        saved_names = []
        for ch_name, child in self._children.items():
            index[0] += 1
            saved_names.append(child._plan_load(mdl, index, plan, fname, f"{path}.{ch_name}"))
        table = mdl["children"]
        children: OrderedDict = OrderedDict()
        for saved, (ch_name, child) in zip(saved_names, self._children.items()):
            new = table.get(saved)
            if not isinstance(new, str) or new in children:
                raise ModelFileError(
                    f"Block.load: '{fname}' does not list child '{saved}' of block {path} "
                    f"(child '{ch_name}', a {type(child).__name__}) once. Fix: build the "
                    "network exactly as it was when saved."
                )
            children[new] = child
        hybridized = isinstance(self, HybridBlock) and mdl.get("hybridized") is True
        plan.append((self, name, pnames, children, hybridized))
        return name

    def load_params(
        self,
        filename: str,
        ctx: Any = None,
        allow_missing: bool = False,
        ignore_extra: bool = False,
    ) -> None:
        """[Deprecated] Use :meth:`load_parameters`."""
        warnings.warn(
            "load_params is deprecated. Please use load_parameters.",
            DeprecationWarning,
            stacklevel=2,
        )
        self.load_parameters(filename, ctx, allow_missing, ignore_extra)

    def register_child(self, block: Block, name: str | None = None) -> None:
        """Register ``block`` as a child (attributes are registered automatically)."""
        if name is None:
            name = str(len(self._children))
        self._children[name] = block

    def register_forward_pre_hook(self, hook: Callable) -> HookHandle:
        """Call ``hook(block, inputs)`` before every forward. Returns a removable handle."""
        handle = HookHandle()
        handle.attach(self._forward_pre_hooks, hook)
        return handle

    def register_forward_hook(self, hook: Callable) -> HookHandle:
        """Call ``hook(block, inputs, outputs)`` after every forward. Returns a handle."""
        handle = HookHandle()
        handle.attach(self._forward_hooks, hook)
        return handle

    def apply(self, fn: Callable[[Block], Any]) -> Block:
        """Call ``fn(block)`` on every descendant, then on this block; returns self."""
        for child in self._children.values():
            child.apply(fn)
        fn(self)
        return self

    def initialize(
        self,
        init: Any = DEFAULT_INIT,
        ctx: Any = None,
        verbose: bool = False,
        force_reinit: bool = False,
    ) -> None:
        """Initialize all parameters (``collect_params().initialize(...)``). ``init`` is used
        for parameters without their own initializer."""
        self.collect_params().initialize(init, ctx, verbose, force_reinit)

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        """Hybridize the HybridBlock children (no effect on plain Blocks)."""
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    def cast(self, dtype: Any) -> None:
        """Cast every parameter of this block and its children to ``dtype``."""
        for child in self._children.values():
            child.cast(dtype)
        for param in self._own_params().values():
            param.cast(dtype)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the forward pre-hooks, ``forward``, then the forward hooks.

        A call that fails leaves every parameter whose shape it was inferring (deferred
        initialization, in this block or any block it calls) deferred again, shape unknown.
        """
        if _UNDO.log is not None:
            return self._call(args, kwargs)
        log = _UNDO.log = []
        try:
            ctx = getattr(args[0], "_ctx", None) if args and type(args[0]) is nd.NDArray else None
            if ctx is not None:  # an input on cpu(k), k > 0: parameters' copies on cpu(k)
                with ctx:
                    return self._call(args, kwargs)
            return self._call(args, kwargs)
        except BaseException:
            for undo in reversed(log):
                undo()
            raise
        finally:
            _UNDO.log = None

    def _call(self, args: tuple, kwargs: dict) -> Any:
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                hook(self, args)
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                hook(self, args, out)
        return out

    def forward(self, *args: Any) -> Any:
        """Override with the computation, written with NDArray operations."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(self, *args)")

    def summary(self, *inputs: Any) -> None:
        """Print each layer's output shape and parameter count for one forward of
        ``inputs`` (the network must be initialized)."""
        summary: OrderedDict[str, dict] = OrderedDict()
        seen: set[int] = set()
        hooks: list[HookHandle] = []

        def summary_hook(block: Block, _: Any, outputs: Any) -> None:
            key = f"{type(block).__name__}-{len(summary)}"
            n_params = trainable = shared = 0
            for p in block._own_params().values():
                size = int(np.prod(p.data().shape))
                n_params += size
                trainable += 0 if p.grad_req == "null" else size
                if id(p) in seen:
                    shared += size
                else:
                    seen.add(id(p))
            summary[key] = {
                "output_shape": _shape_str(outputs),
                "n_params": n_params,
                "trainable": trainable,
                "shared": shared,
            }

        def register(block: Block) -> None:
            if not isinstance(block, (Sequential, HybridSequential)):
                hooks.append(block.register_forward_hook(summary_hook))

        summary["Input"] = {
            "output_shape": _shape_str(inputs),
            "n_params": 0,
            "trainable": 0,
            "shared": 0,
        }
        try:
            self.apply(register)
            self(*inputs)
        finally:
            for h in hooks:
                h.detach()
        line = "{:>20}  {:>42} {:>15}"
        print("-" * 80)
        print(line.format("Layer (type)", "Output Shape", "Param #"))
        print("=" * 80)
        total = trainable = shared = 0
        for layer, row in summary.items():
            print(line.format(layer, str(row["output_shape"]), row["n_params"]))
            total += row["n_params"]
            trainable += row["trainable"]
            shared += row["shared"]
        print("=" * 80)
        print("Parameters in forward computation graph, duplicate included")
        print(f"   Total params: {total}")
        print(f"   Trainable params: {trainable}")
        print(f"   Non-trainable params: {total - trainable}")
        print(f"Shared params in forward computation graph: {shared}")
        print(f"Unique parameters in model: {total - shared}")
        print("-" * 80)


def _known(shape: Any) -> bool:
    return shape is not None and len(shape) > 0 and all(d > 0 for d in shape)


def _common_prefix(names: list[str]) -> str:
    if not names:
        return ""
    prefix = names[0]
    for name in names[1:]:
        i = 0
        while i < len(prefix) and i < len(name) and prefix[i] == name[i]:
            i += 1
        prefix = prefix[:i]
    return prefix


class HybridBlock(Block):
    """A Block whose computation is written once as ``hybrid_forward(F, x, *args, **params)``.

    ``F`` is ``mx.nd``; ``params`` holds this block's registered parameters as keyword
    NDArrays (``weight=...``). Parameters with unknown (0) dimensions are created at the
    first call, after ``infer_shape(x, *args)`` fills in their shapes; built-in layers define
    it, a custom HybridBlock with deferred shapes must too.

    >>> import tapegrad as mx
    >>> from tapegrad.gluon import HybridBlock
    >>> class Scale(HybridBlock):
    ...     def __init__(self, **kwargs):
    ...         super().__init__(**kwargs)
    ...         with self.name_scope():
    ...             self.s = self.params.get('s', shape=(1,), init=mx.init.Constant(2.0))
    ...     def hybrid_forward(self, F, x, s):
    ...         return F.broadcast_mul(x, s)
    >>> blk = Scale(); blk.initialize(); blk.hybridize()
    >>> blk(mx.nd.ones((2,))).asnumpy().tolist()
    [2.0, 2.0]
    """

    def __init__(self, prefix: str | None = None, params: ParameterDict | None = None) -> None:
        super().__init__(prefix=prefix, params=params)
        self._active = False
        self._flags: list = []
        self._compiled: Any = None

    def register_child(self, block: Block, name: str | None = None) -> None:
        """Register a child; children of a HybridBlock must be HybridBlocks too."""
        if not isinstance(block, HybridBlock):
            raise ValueError(
                f"Children of HybridBlock must also be HybridBlock, but {block!r} has type "
                f"{type(block)}. If you are using Sequential, please try HybridSequential "
                "instead."
            )
        super().register_child(block, name)
        self._compiled = None  # a new child: its parameters join the compiled function's

    def hybridize(
        self,
        active: bool = True,
        static_alloc: bool = False,
        static_shape: bool = False,
        **kwargs: Any,
    ) -> None:
        """Compile this block (``active``): its first call per input shapes and mode traces
        ``hybrid_forward`` once and later calls run the compiled straight-line code
        (:mod:`tapegrad.trace`), one node on the tape, differentiable to any order.
        ``static_alloc``/``static_shape`` are MXNet's flags, accepted; code that reads traced
        values falls back to eager execution with a warning. ``active=False`` goes back to
        eager execution."""
        if static_alloc:
            kwargs["static_alloc"] = static_alloc
        if static_shape:
            kwargs["static_shape"] = static_shape
        self._active = active
        self._flags = list(kwargs.items())
        self._compiled = None
        if active and (self._forward_hooks or self._forward_pre_hooks):
            warnings.warn(
                f'"{self.name}" is being hybridized while still having forward '
                "hook/pre-hook. In MXNet the hooks of a hybridized child do not run; "
                "tapegrad runs them.",
                stacklevel=2,
            )
        super().hybridize(active, **kwargs)

    def infer_shape(self, *args: Any) -> None:
        """Fill in the unknown (0) dimensions of this block's parameters from the inputs.

        The default runs ``hybrid_forward`` once on ``args`` (in predict mode, nothing
        recorded) with the parameters of unknown shape standing in, and takes their shapes
        from the operators that use them, as MXNet's symbolic inference does (see
        :mod:`tapegrad.gluon._infer`); they are not initialized. Built-in layers override it
        with their own rule, and so may custom blocks.
        """
        params = self._deferred_order()
        resolver = _infer._Resolver(self, params, init=False)
        values = {}
        for k, p in self._reg_params.items():
            if p._data is not None:
                values[k] = p.data()
            elif p.shape is not None and p.shape and all(d > 0 for d in p.shape):
                values[k] = nd.zeros(p.shape, dtype=p.dtype)
            else:
                values[k] = _infer.DeferredParam(p, self, resolver)
        with autograd.pause():
            self.hybrid_forward(_infer.InferringNamespace(nd, resolver), *args, **values)

    def _deferred_order(self) -> list:
        """This block's parameters, each once, in MXNet's order (``self.params`` first)."""
        return list(
            {id(p): p for p in [*self.params.values(), *self._reg_params.values()]}.values()
        )

    def _deferred_infer_shape(self, *args: Any) -> None:
        try:
            self.infer_shape(*args)
        except TapegradError:
            raise  # ours already names the layer, the shapes and the fix
        except Exception as e:
            shapes = ", ".join(str(getattr(a, "shape", type(a).__name__)) for a in args)
            raise ValueError(
                f"Deferred initialization failed because shape cannot be inferred "
                f"for {type(self).__name__} '{self.name}' from inputs of shape "
                f"{shapes}: {e}"
            ) from e

    def _param_arrays(self, x: Any, args: tuple) -> tuple[dict[str, Any], Callable | None, Any]:
        """This block's parameter values by attribute name, then None, None; or, when some
        were deferred: the values (initialized after inferring their shapes), a function
        that undoes that (registered with the outermost ``__call__`` too), and the ``F`` to
        run ``hybrid_forward`` with.

        A block with its own ``infer_shape`` (the built-in layers) gets its parameters
        initialized here. For the others, parameters of unknown shape are passed as
        :class:`~tapegrad.gluon._infer.DeferredParam` with an ``F`` whose operators infer
        their shapes and initialize them where they are used."""
        try:  # (several copies: the current context's, which __call__ set from the input)
            return {k: p.data() for k, p in self._reg_params.items()}, None, None
        except DeferredInitializationError:
            pass
        params = self._deferred_order()
        saved = [(p, p._save_state()) for p in params]

        def undo() -> None:
            for p, state in saved:
                p._restore_state(state)

        if _UNDO.log is not None:
            _UNDO.log.append(undo)
        try:
            if type(self).infer_shape is HybridBlock.infer_shape:
                resolver = _infer._Resolver(self, params, init=True)
                values = {}
                for k, p in self._reg_params.items():
                    if p._data is None and p._deferred_init and not _known(p.shape):
                        values[k] = _infer.DeferredParam(p, self, resolver)
                    else:
                        p._finish_deferred_init()
                        values[k] = p.data()
                return values, undo, _infer.InferringNamespace(nd, resolver)
            self._deferred_infer_shape(x, *args)
            for p in params:
                p._finish_deferred_init()
            return {k: p.data() for k, p in self._reg_params.items()}, undo, None
        except BaseException:
            undo()
            raise

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``hybrid_forward(mx.nd, x, *args, **params)``.

        As in MXNet, the inputs may be NDArrays, (nested) lists of them, Python numbers or
        None, as long as one NDArray is among them."""
        if _is_symbol(x) or _has_symbol(args):
            return self._forward_symbolic(x, args, kwargs)
        if not isinstance(x, nd.NDArray) and not _has_ndarray((x, args)):
            raise HybridBlockInputError(
                f"{type(self).__name__} '{self.name}': HybridBlock requires the first argument "
                "to forward, or one inside the arguments, to be an NDArray, but got "
                f"{', '.join(type(a).__name__ for a in (x, *args))}. Fix: convert the input "
                "with mx.nd.array(...)."
            )
        self._n_inputs = 1 + len(args)
        if self._active and not kwargs and STATE.flags.tracing is None:
            out = self._call_compiled(x, args)
            if out is not _EAGER:
                return out
        return self._forward_eager(x, args, kwargs)

    def _forward_eager(self, x: Any, args: tuple, kwargs: dict) -> Any:
        params, undo, F = self._param_arrays(x, args)
        if kwargs:
            params = {**params, **kwargs}
        if undo is None:
            return self.hybrid_forward(nd, x, *args, **params)
        try:  # the first forward of deferred parameters: a failure leaves them deferred
            return self.hybrid_forward(F or nd, x, *args, **params)
        except BaseException:
            undo()
            raise

    def _forward_symbolic(self, x: Any, args: tuple, kwargs: dict) -> Any:
        """``hybrid_forward(mx.sym, ...)``: called on Symbols, the block builds MXNet's graph
        (operator nodes named after the block, ``dense0_fwd``; parameters as variables)."""
        from .. import symbol

        params = {k: p.var() for k, p in self._reg_params.items()}
        params.update(kwargs)
        with _SymbolPrefix(self.prefix):
            return self.hybrid_forward(symbol, x, *args, **params)

    def export(self, path: str, epoch: int = 0, remove_amp_cast: bool = True) -> None:
        """Write ``path-symbol.json`` (MXNet's graph JSON) and ``path-NNNN.params`` (MXNet's
        format, ``arg:``/``aux:`` names), as MXNet 1.x's ``HybridBlock.export``: real MXNet
        and :meth:`SymbolBlock.imports` load the model. The graph is built by calling the
        block on ``mx.sym.var('data')`` (``data0``, ``data1``... for several inputs, as many
        as the last call had)."""
        from .. import symbol

        n = getattr(self, "_n_inputs", 1)
        names = ["data"] if n == 1 else [f"data{i}" for i in range(n)]
        with NameManager():
            out = self(*[symbol.var(nm) for nm in names])
        if isinstance(out, (list, tuple)):
            out = symbol.Group(list(out))
        args, aux = set(out.list_arguments()), set(out.list_auxiliary_states())
        arrays = {}
        for p in self.collect_params().values():
            if p.name in args:
                arrays["arg:" + p.name] = p.data()
            elif p.name in aux:
                arrays["aux:" + p.name] = p.data()
        out.save(f"{path}-symbol.json")
        nd.save(f"{path}-{epoch:04d}.params", arrays)

    def _call_compiled(self, x: Any, args: tuple) -> Any:
        """The hybridized call: the inputs (nested lists flattened) and every parameter's
        value are the compiled function's arguments, so the plan reads them anew each call
        and writes back what the block changes in place (BatchNorm's statistics)."""
        comp = self._compiled
        if comp is None:
            static_alloc = dict(self._flags).get("static_alloc", False)
            comp = Compiled(self._traced_forward, name=self.name, static_alloc=static_alloc)
            comp.params = tuple({id(p): p for p in self.collect_params().values()}.values())
            self._compiled = comp
        params = comp.params
        try:
            values = [p.data() for p in params]
        except DeferredInitializationError:
            return _EAGER  # the first call infers the shapes, eagerly
        leaves, spec = _trace_flatten((x, *args))
        return comp(spec, len(leaves), params, *leaves, *values)

    def _traced_forward(self, spec: Any, n: int, params: tuple, *arrays: Any) -> Any:
        x, *args = _trace_unflatten(list(arrays[:n]), spec)
        saved = [p._data for p in params]
        try:  # the parameters' values are the traced arguments for the length of the call
            for p, v in zip(params, arrays[n:]):
                p._data = [v]
            return self._forward_eager(x, tuple(args), {})
        finally:
            for p, d in zip(params, saved):
                p._data = d

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Override with the computation; ``F`` is ``mx.nd``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement hybrid_forward(self, F, x, *args, **params)"
        )


def _seq_call(children: Iterator[Block], x: Any, args: tuple) -> Any:
    for block in children:
        x = block(x, *args)
        args = ()
        if isinstance(x, (tuple, list)):
            args = tuple(x[1:])
            x = x[0]
    if args:
        x = tuple([x, *args])
    return x


def _seq_add(seq: Block, blocks: tuple) -> None:
    for block in blocks:
        if not isinstance(block, Block):
            raise TypeError(
                f"{type(seq).__name__}.add: expected Blocks, got {block!r} of type "
                f"{type(block).__name__}. Fix: wrap functions in nn.Lambda or "
                "nn.HybridLambda."
            )
        seq.register_child(block)


def _seq_repr(block: Block) -> str:
    modstr = "\n".join(
        f"  ({key}): {_indent(repr(child), 2)}" for key, child in block._children.items()
    )
    return f"{type(block).__name__}(\n{modstr}\n)"


def _seq_getitem(block: Any, key: Any) -> Any:
    layers = list(block._children.values())[key]
    if isinstance(layers, list):
        net = type(block)(prefix=block._prefix)
        with net.name_scope():
            net.add(*layers)
        return net
    return layers


class Sequential(Block):
    """Stacks Blocks: the output of each is the input of the next.

    >>> import tapegrad as mx
    >>> net = mx.gluon.nn.Sequential()
    >>> net.add(mx.gluon.nn.Dense(4, activation='relu'), mx.gluon.nn.Dense(2))
    >>> net.initialize()
    >>> net(mx.nd.ones((3, 5))).shape, len(net), len(net[:1])
    ((3, 2), 2, 1)
    """

    def __init__(self, prefix: str | None = None, params: ParameterDict | None = None) -> None:
        super().__init__(prefix=prefix, params=params)

    def add(self, *blocks: Block) -> None:
        """Append blocks to the stack."""
        _seq_add(self, blocks)

    def forward(self, x: Any, *args: Any) -> Any:
        return _seq_call(iter(self._children.values()), x, args)

    def __repr__(self) -> str:
        return _seq_repr(self)

    def __getitem__(self, key: int | slice) -> Any:
        return _seq_getitem(self, key)

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Block]:
        return iter(list(self._children.values()))

    def hybridize(self, active: bool = True, **kwargs: Any) -> None:
        """Hybridize the children; warns if they are all HybridBlocks (as MXNet does)."""
        if self._children and all(isinstance(c, HybridBlock) for c in self._children.values()):
            warnings.warn(
                f"All children of this Sequential layer '{self.prefix}' are "
                "HybridBlocks. Consider using HybridSequential for the best "
                "performance.",
                stacklevel=2,
            )
        super().hybridize(active, **kwargs)


class HybridSequential(HybridBlock):
    """Stacks HybridBlocks: the output of each is the input of the next.

    >>> import tapegrad as mx
    >>> net = mx.gluon.nn.HybridSequential()
    >>> net.add(mx.gluon.nn.Dense(4, activation='tanh'))
    >>> net.add(mx.gluon.nn.Dense(1))
    >>> net.initialize(); net.hybridize()
    >>> net(mx.nd.ones((3, 2))).shape, net[0].weight.shape
    ((3, 1), (4, 2))
    """

    def __init__(self, prefix: str | None = None, params: ParameterDict | None = None) -> None:
        super().__init__(prefix=prefix, params=params)

    def add(self, *blocks: Block) -> None:
        """Append blocks to the stack."""
        _seq_add(self, blocks)

    def hybrid_forward(self, F: Any, x: Any, *args: Any) -> Any:
        return _seq_call(iter(self._children.values()), x, args)

    def __repr__(self) -> str:
        return _seq_repr(self)

    def __getitem__(self, key: int | slice) -> Any:
        return _seq_getitem(self, key)

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Block]:
        return iter(list(self._children.values()))
