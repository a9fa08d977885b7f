"""Optimizers with MXNet 1.9's names, defaults and update formulas.

Each built-in optimizer writes its update once, as a pure NumPy function
``_step(index, lr, wd, weight, grad, states) -> (new_weight, new_states)`` that never changes
its inputs. :meth:`Optimizer.update` (MXNet's in-place API) runs it and copies the results
into the weight and state NDArrays; :class:`~tapegrad.gluon.Trainer` runs it for every
parameter first and copies only when all of them succeeded, so a failing step changes
nothing.

Formulas follow MXNet's operators (``src/operator/optimizer_op-inl.h``): gradients are
rescaled (``rescale_grad * grad``) before clipping, and weight decay enters where MXNet puts
it for each optimizer (see each class). ``clip_gradient`` is active when it is a positive
number, as in MXNet.

>>> import tapegrad as mx
>>> opt = mx.optimizer.create('sgd', learning_rate=0.1, momentum=0.9)
>>> w, g = mx.nd.ones((2,)), mx.nd.ones((2,))
>>> state = opt.create_state(0, w)
>>> opt.update(0, w, g, state)
>>> [round(v, 6) for v in w.asnumpy().tolist()]
[0.9, 0.9]
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import autograd
from ..base import TapegradError
from ..lr_scheduler import LRScheduler
from ..serialization import states_error

__all__ = [
    "Optimizer",
    "SGD",
    "NAG",
    "Adam",
    "AdamW",
    "AdaGrad",
    "RMSProp",
    "AdaDelta",
    "ccSGD",
    "Signum",
    "FTML",
    "LARS",
    "LBSGD",
    "LAMB",
    "DCASGD",
    "SGLD",
    "Ftrl",
    "Adamax",
    "Nadam",
    "Test",
    "GroupAdaGrad",
    "Updater",
    "get_updater",
    "create",
    "register",
    "OptimizerError",
]


class OptimizerError(TapegradError, ValueError):
    """A bad optimizer name, argument or state (the message names the optimizer)."""


# --------------------------------------------------------------------------- helpers


def _raw(x: Any) -> np.ndarray:
    """The NumPy data of an NDArray (or an array-like)."""
    d = getattr(x, "_data", None)
    if isinstance(d, np.ndarray):
        return d
    return np.asarray(x.asnumpy() if hasattr(x, "asnumpy") else x)


def _leaves(state: Any) -> list:
    """The NDArrays of a state (``None``, an NDArray, or nested tuples/lists), in order."""
    if state is None:
        return []
    if isinstance(state, (list, tuple)):
        out: list = []
        for s in state:
            if isinstance(s, (list, tuple)):
                out.extend(_leaves(s))
            elif s is not None:
                out.append(s)
        return out
    return [state]


def _write(arr: Any, value: Any) -> None:
    """Copy ``value`` into the NDArray ``arr`` in place and mark it changed (its version is
    bumped, so a recorded graph that saved the old value raises instead of using it).
    Writing the same value twice is harmless (the write phase may repeat a write)."""
    d = getattr(arr, "_data", None)
    if type(d) is np.ndarray and d.flags.writeable:
        np.copyto(d, value, casting="unsafe")
        arr._bump_version()
    else:  # 0-d or read-only data: NDArray's own assignment (not a recorded operation)
        with autograd.pause():
            arr[...] = value


def _detached(value: Any, inputs: tuple) -> Any:
    """``value``, or a copy of it when it is one of ``inputs`` or a view of some array."""
    if type(value) is np.ndarray:
        if value.base is not None:
            return value.copy()
        for x in inputs:
            if value is x:
                return value.copy()
    return value


_WRITE_RETRIES = 100


def _commit_writes(
    writes: list, finish: Callable[[], None] | None = None, who: str = "Optimizer.update"
) -> None:
    """The write phase of an update: copy every ``(array, new value)`` of ``writes`` in, then
    run ``finish`` (bookkeeping; it must be safe to run twice).

    Everything was computed and checked before, so nothing here can fail for a reason that
    lasts: an exception that arrives meanwhile (a KeyboardInterrupt, a signal handler's
    error) does not stop the phase half-way. The interrupted write is done again, the rest
    are done, and the exception is raised afterwards: the update is then complete.
    """
    i, n = 0, len(writes)
    pending: BaseException | None = None
    for _ in range(_WRITE_RETRIES):
        try:
            while i < n:
                arr, value = writes[i]
                _write(arr, value)
                i += 1
            if finish is not None:
                finish()
            break
        except BaseException as e:  # noqa: BLE001  (re-raised below, once the writes are done)
            if pending is None:
                pending = e
    else:
        raise TapegradError(
            f"{who}: writing the results failed again and again ({pending!r}); {i} of {n} "
            "arrays (weights and optimizer states) were written, so the parameters are now "
            "partly updated. Fix: find the cause of the error above, then reload the "
            "parameters and trainer states from a checkpoint."
        ) from pending
    if pending is not None:
        if hasattr(pending, "add_note"):
            pending.add_note(
                f"{who}: this arrived while the results were being written; the update was "
                "completed (every weight and optimizer state written) before it was raised."
            )
        raise pending


def _clip(g: np.ndarray, bound: float) -> np.ndarray:
    return np.clip(g, -bound, bound)


def _zeros(weight: Any, dtype: Any = None) -> Any:
    from .. import ndarray as nd

    return nd.zeros(weight.shape, dtype=weight.dtype if dtype is None else dtype)


# --------------------------------------------------------------------------- base class


class Optimizer:
    """Base class of the optimizers (MXNet's ``mx.optimizer.Optimizer``).

    Args:
        rescale_grad: multiply gradients by this before the update (the Trainer sets it to
            ``1/batch_size`` at each step).
        param_idx2name: dict index -> parameter name; names not ending in ``_weight`` or
            ``_gamma`` then get a weight-decay multiplier of 0 (MXNet's rule).
        wd: weight decay (L2 regularization) coefficient.
        clip_gradient: clip the rescaled gradient to ``[-clip_gradient, clip_gradient]``.
        learning_rate: the learning rate; 0.01 when neither it nor a scheduler is given. With
            ``lr_scheduler`` and no ``learning_rate``, the scheduler's ``base_lr`` is used;
            with both, ``learning_rate`` becomes the scheduler's ``base_lr`` (MXNet warns
            when they differ, and so does tapegrad).
        lr_scheduler: an :class:`~tapegrad.lr_scheduler.LRScheduler` called with ``num_update``.
        begin_num_update: the update count to start from.
        multi_precision: accepted for MXNet compatibility; updates are computed in the
            weight's dtype.
        param_dict: dict index -> Parameter whose ``lr_mult``/``wd_mult`` apply (set by the
            Trainer).

    ``num_update`` is the largest number of updates applied to any weight;
    ``_index_update_count[index]`` counts the updates of one weight (Adam's ``t``).

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.SGD(learning_rate=0.5, wd=0.1)
    >>> opt.set_lr_mult({0: 0.1})
    >>> opt._get_lr(0), opt._get_lr(1), opt._get_wd(0)
    (0.05, 0.5, 0.1)
    """

    opt_registry: dict[str, type] = {}

    def __init__(
        self,
        rescale_grad: float = 1.0,
        param_idx2name: dict | None = None,
        wd: float = 0.0,
        clip_gradient: float | None = None,
        learning_rate: float | None = None,
        lr_scheduler: LRScheduler | None = None,
        sym: Any = None,
        begin_num_update: int = 0,
        multi_precision: bool = False,
        param_dict: dict | None = None,
        allow_np: bool = False,
    ) -> None:
        self.rescale_grad = rescale_grad
        self.lr_scheduler = lr_scheduler
        if lr_scheduler is None and learning_rate is None:
            learning_rate = 0.01
        self.lr = learning_rate
        if lr_scheduler is not None and learning_rate is not None:
            if lr_scheduler.base_lr != learning_rate:
                warnings.warn(
                    f"{type(self).__name__}: the learning rate of the lr_scheduler "
                    f"(base_lr={lr_scheduler.base_lr}) has been overwritten by learning_rate="
                    f"{learning_rate} of the optimizer.",
                    UserWarning,
                    stacklevel=2,
                )
                lr_scheduler.base_lr = learning_rate
        self.wd = wd
        self.lr_mult: dict = {}
        self.wd_mult: dict = {}
        self.begin_num_update = begin_num_update
        self.num_update = begin_num_update
        self._all_index_update_counts: dict = {0: {}}
        self._index_update_count = self._all_index_update_counts[0]
        self.clip_gradient = clip_gradient
        self.multi_precision = multi_precision
        self.aggregate_num = 0
        if param_idx2name is None:
            param_idx2name = {}
        if not isinstance(param_idx2name, dict):
            raise OptimizerError(
                f"{type(self).__name__}: param_idx2name should be a dict of "
                f"param indexes to names, got {type(param_idx2name).__name__}"
            )
        self.idx2name = param_idx2name.copy()
        if sym is not None:
            raise OptimizerError(
                f"{type(self).__name__}: sym= (MXNet Symbols) is not "
                "supported. Fix: set lr_mult/wd_mult on the Parameters or "
                "with set_lr_mult/set_wd_mult."
            )
        self.sym_info = ()
        self.param_dict = param_dict if param_dict else {}
        self.allow_np = allow_np
        self.set_lr_mult({})
        self.set_wd_mult({})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate}, wd={self.wd})"

    # ---- registry -------------------------------------------------------------------
    @staticmethod
    def register(klass: type) -> type:
        """Register an optimizer class under its lower-cased name (a decorator).

        >>> import tapegrad as mx
        >>> @mx.optimizer.register
        ... class MyOpt(mx.optimizer.Optimizer):
        ...     pass
        >>> type(mx.optimizer.create('myopt')).__name__
        'MyOpt'
        """
        if not isinstance(klass, type):
            raise TypeError(f"register: expected a class, got {klass!r}")
        name = klass.__name__.lower()
        old = Optimizer.opt_registry.get(name)
        if old is not None and old is not klass:
            warnings.warn(
                f"New optimizer {klass.__module__}.{klass.__name__} is overriding "
                f"existing optimizer {old.__module__}.{old.__name__}",
                stacklevel=2,
            )
        Optimizer.opt_registry[name] = klass
        return klass

    @staticmethod
    def create_optimizer(name: str, **kwargs: Any) -> Optimizer:
        """Instantiate a registered optimizer by (case-insensitive) name."""
        if not isinstance(name, str):
            raise TypeError(f"create_optimizer: name must be a str, got {name!r}")
        klass = Optimizer.opt_registry.get(name.lower())
        if klass is None:
            known = ", ".join(sorted(Optimizer.opt_registry))
            raise OptimizerError(
                f"Cannot find optimizer {name!r}. Known optimizers: {known}. "
                "Fix: use one of these names or register your class with "
                "@mx.optimizer.register."
            )
        try:
            return klass(**kwargs)
        except TypeError as e:
            raise TypeError(
                f"optimizer {name!r}: {e}. Fix: check the optimizer_params "
                f"names against {klass.__name__}'s documentation."
            ) from None

    # ---- learning rate ------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The current learning rate (from the scheduler at ``num_update`` if there is one)."""
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr: float) -> None:
        """Set a new learning rate (not allowed when an lr_scheduler drives it)."""
        if self.lr_scheduler is not None:
            raise UserWarning(
                "LRScheduler of the optimizer has already been defined. Note "
                "that set_learning_rate can mutate the value of the learning "
                "rate of the optimizer only when the LRScheduler of the "
                "optimizer is undefined."
            )
        self.lr = lr

    def set_lr_scale(self, args_lrscale: Any) -> None:
        """Deprecated in MXNet: use :meth:`set_lr_mult`."""
        raise DeprecationWarning("set_lr_scale is deprecated; use set_lr_mult")

    def set_lr_mult(self, args_lr_mult: dict) -> None:
        """Learning-rate multipliers by parameter index or name."""
        self.lr_mult = {}
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult: dict) -> None:
        """Weight-decay multipliers by index or name. With ``param_idx2name``, names not
        ending in ``_weight`` or ``_gamma`` default to 0 (biases are not decayed)."""
        self.wd_mult = {}
        for n in self.idx2name.values():
            if not (n.endswith("_weight") or n.endswith("_gamma")):
                self.wd_mult[n] = 0.0
        self.wd_mult.update(args_wd_mult)

    def _set_current_context(self, device_id: int) -> None:
        if device_id not in self._all_index_update_counts:
            self._all_index_update_counts[device_id] = {}
        self._index_update_count = self._all_index_update_counts[device_id]

    def _update_count(self, index: Any) -> None:
        """Count one more update of ``index`` (an int or a list of ints)."""
        if not isinstance(index, (list, tuple)):
            index = [index]
        for idx in index:
            if idx not in self._index_update_count:
                self._index_update_count[idx] = self.begin_num_update
            self._index_update_count[idx] += 1
            self.num_update = max(self._index_update_count[idx], self.num_update)

    def _mult(self, index: Any, attr: str, table: dict) -> float:
        """The lr_mult or wd_mult of one weight (``attr`` names it, ``table`` is the
        optimizer's own dict): its Parameter's, else by index, else by name, else 1."""
        p = self.param_dict.get(index)
        if p is not None:
            return getattr(p, attr)
        if index in table:
            return table[index]
        if index in self.idx2name:
            return table.get(self.idx2name[index], 1.0)
        return 1.0

    def _get_lrs(self, indices: list) -> list[float]:
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        return [lr * self._mult(i, "lr_mult", self.lr_mult) for i in indices]

    def _get_lr(self, index: int) -> float:
        if type(self)._get_lrs is not Optimizer._get_lrs:  # a subclass's own rule
            return self._get_lrs([index])[0]
        # without the list (this runs for every weight every step)
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        return lr * self._mult(index, "lr_mult", self.lr_mult)

    def _get_wds(self, indices: list) -> list[float]:
        return [self.wd * self._mult(i, "wd_mult", self.wd_mult) for i in indices]

    def _get_wd(self, index: int) -> float:
        if type(self)._get_wds is not Optimizer._get_wds:
            return self._get_wds([index])[0]
        return self.wd * self._mult(index, "wd_mult", self.wd_mult)

    def _clip_on(self) -> bool:
        """MXNet passes clip_gradient to its operators only when truthy, and they clip only
        for a non-negative bound."""
        c = self.clip_gradient
        return bool(c) and c > 0

    # ---- states and updates ---------------------------------------------------------------
    def create_state(self, index: int, weight: Any) -> Any:
        """Auxiliary state of one weight (momentum etc.): ``None``, an NDArray or a tuple."""
        return None

    def create_state_multi_precision(self, index: int, weight: Any) -> Any:
        """Same as :meth:`create_state` (tapegrad computes in the weight's dtype)."""
        return self.create_state(index, weight)

    def _step(
        self,
        index: int,
        lr: float,
        wd: float,
        weight: np.ndarray,
        grad: np.ndarray,
        states: list[np.ndarray],
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """The update as a pure function of NumPy arrays (subclasses define it).

        Args:
            index: the weight's index (for per-weight counters such as Adam's ``t``).
            lr, wd: learning rate and weight decay for this weight, multipliers applied.
            weight, grad: current values (never modified).
            states: the state's arrays, in the order of the state tuple (never modified).

        Returns:
            the new weight and the new state arrays, in the same order.
        """
        raise NotImplementedError(
            f"{type(self).__name__}: define update(index, weight, grad, state) or "
            "_step(index, lr, wd, weight, grad, states)"
        )

    #: read the learning rate before counting the update (LBSGD does, so a scheduler sees
    #: the previous ``num_update``)
    _LR_BEFORE_COUNT = False

    def _prepare(
        self, index: int, weight: Any, grad: Any, state: Any
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Count the update and compute the new values without changing anything else.
        The results are checked, so that writing them cannot fail."""
        if self._LR_BEFORE_COUNT:
            lr = float(self._get_lr(index))
            wd = float(self._get_wd(index))
            self._update_count(index)
        else:
            self._update_count(index)
            lr = float(self._get_lr(index))
            wd = float(self._get_wd(index))
        w = _raw(weight)
        g = _raw(grad)
        if g.shape != w.shape:
            raise OptimizerError(
                f"{type(self).__name__}: the gradient of weight {self._name(index)} has shape "
                f"{g.shape} but the weight has shape {w.shape}. Fix: pass the weight's own "
                "gradient."
            )
        leaves = _leaves(state)
        raws = [_raw(s) for s in leaves]
        new_w, new_s = self._step(index, lr, wd, w, g, raws)
        if type(self)._step in _OWN_STEPS:  # ours: fresh arrays of the right shapes
            return new_w, new_s
        self._check_value(index, "the new weight", new_w, w.shape)
        if len(new_s) != len(leaves):
            raise OptimizerError(
                f"{type(self).__name__}._step returned {len(new_s)} state arrays for weight "
                f"{self._name(index)}, whose state has {len(leaves)}. Fix: return one new "
                "array per state array, in the order of the state tuple."
            )
        for k, (arr, val) in enumerate(zip(leaves, new_s)):
            self._check_value(index, f"state array {k}", val, arr.shape)
        # a result that is (a view of) an input would change while the results are written
        # (a custom _step returning the gradient or a state): write a copy instead
        inputs = (w, g, *raws)
        new_w = _detached(new_w, inputs)
        new_s = [_detached(v, inputs) for v in new_s]
        return new_w, new_s

    def _check_value(self, index: int, what: str, value: Any, shape: tuple) -> None:
        """A value ``_step`` returned must be numbers that fit ``shape``."""
        if type(value) is np.ndarray and value.shape == shape and value.dtype.kind in "fiub":
            return
        vshape = np.shape(value)
        ok = isinstance(value, (np.ndarray, np.generic, int, float)) and (
            np.asarray(value).dtype.kind in "fiub"
        )
        if ok:
            try:
                ok = np.broadcast_shapes(vshape, shape) == shape
            except ValueError:
                ok = False
        if not ok:
            raise OptimizerError(
                f"{type(self).__name__}._step returned for {what} of weight "
                f"{self._name(index)} a {type(value).__name__} of shape {vshape}, which does "
                f"not fit shape {shape}. Fix: return real-valued NumPy arrays of the shapes of "
                "the weight and its states."
            )

    def _name(self, index: int) -> str:
        p = self.param_dict.get(index)
        if p is not None and hasattr(p, "name"):
            return f"'{p.name}' (index {index})"
        if index in self.idx2name:
            return f"'{self.idx2name[index]}' (index {index})"
        return f"{index}"

    @staticmethod
    def _writes(weight: Any, state: Any, result: tuple[np.ndarray, list[np.ndarray]]) -> list:
        """The ``(array, new value)`` pairs that install what :meth:`_prepare` computed."""
        new_w, new_s = result
        out = list(zip(_leaves(state), new_s))
        out.append((weight, new_w))
        return out

    def _has_pure_step(self) -> bool:
        """True when updates go through :meth:`_step` (so a Trainer can run them as a
        transaction); False for subclasses that override :meth:`update` themselves."""
        cls = type(self)
        return (
            cls._step is not Optimizer._step
            and cls.update is Optimizer.update
            and cls.update_multi_precision is Optimizer.update_multi_precision
        )

    def update(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        """Update ``weight`` (and ``state``) in place from ``grad``, as MXNet does.

        ``index``, ``weight``, ``grad`` and ``state`` may also be lists of the same length
        (one call, as MXNet's aggregated updates).
        """
        self._begin_call()
        try:
            if isinstance(index, (list, tuple)):
                for i, w, g, s in zip(index, weight, grad, state):
                    self._update_one(i, w, g, s)
            else:
                self._update_one(index, weight, grad, state)
        finally:
            self._end_call()

    def _begin_call(self) -> None:
        """An ``update`` call begins (LARS keeps one learning-rate history entry per call,
        as MXNet's ``_update_impl`` does)."""

    def _end_call(self) -> None:
        """The ``update`` call that :meth:`_begin_call` announced has ended."""

    def _update_one(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        counts = self._index_update_count
        before = (self.num_update, counts.get(index))
        done = [False]
        try:
            result = self._prepare(index, weight, grad, state)
            _commit_writes(self._writes(weight, state, result), lambda: done.__setitem__(0, True))
        except BaseException:
            if not done[0]:  # nothing was written: the update did not happen, uncount it
                self.num_update = before[0]
                if before[1] is None:
                    counts.pop(index, None)
                else:
                    counts[index] = before[1]
            raise

    def update_multi_precision(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        """Same as :meth:`update` (no float16 master copies in tapegrad)."""
        self.update(index, weight, grad, state)

    # ---- snapshots (used by the Trainer to undo a failed step) ----------------------------
    #: plain (immutable) attributes that updates change besides the counters (Nadam's
    #: momentum schedule, LARS's learning-rate history): saved and restored with them
    _STEP_ATTRS: tuple[str, ...] = ()

    def _snapshot(self) -> dict:
        return {
            "num_update": self.num_update,
            "counts": {k: dict(v) for k, v in self._all_index_update_counts.items()},
            "current": next(
                (
                    k
                    for k, v in self._all_index_update_counts.items()
                    if v is self._index_update_count
                ),
                0,
            ),
            "rescale_grad": self.rescale_grad,
            "sched": copy.deepcopy(self.lr_scheduler.__dict__)
            if self.lr_scheduler is not None
            else None,
            "step_attrs": {k: getattr(self, k) for k in self._STEP_ATTRS},
        }

    def _restore(self, snap: dict) -> None:
        self.num_update = snap["num_update"]
        self._all_index_update_counts.clear()
        self._all_index_update_counts.update(snap["counts"])
        self._index_update_count = self._all_index_update_counts.setdefault(snap["current"], {})
        self.rescale_grad = snap["rescale_grad"]
        if snap["sched"] is not None and self.lr_scheduler is not None:
            self.lr_scheduler.__dict__.clear()
            self.lr_scheduler.__dict__.update(snap["sched"])
        for k, v in snap["step_attrs"].items():
            setattr(self, k, v)

    # ---- JSON configuration (Trainer.save_states; never pickle) --------------------------
    _NOT_SAVED = (
        "param_dict",
        "lr_scheduler",
        "_all_index_update_counts",
        "_index_update_count",
        "idx2name",
        "lr_mult",
        "wd_mult",
        "sym_info",
    )

    def _get_config(self) -> dict:
        """JSON-able description of the optimizer's settings and counters."""
        attrs = {}
        for k, v in vars(self).items():
            v = _plain(v)
            if k not in self._NOT_SAVED and _jsonable(v):
                attrs[k] = v
        sched = None
        if self.lr_scheduler is not None:
            sched = {
                "class": type(self.lr_scheduler).__name__,
                "attrs": {
                    k: _plain(v) for k, v in vars(self.lr_scheduler).items() if _jsonable(_plain(v))
                },
            }
        return {
            "optimizer": type(self).__name__.lower(),
            "attrs": attrs,
            "idx2name": [[k, v] for k, v in self.idx2name.items()],
            "lr_mult": [[k, v] for k, v in self.lr_mult.items()],
            "wd_mult": [[k, v] for k, v in self.wd_mult.items()],
            "counts": [
                [dev, [[k, v] for k, v in c.items()]]
                for dev, c in self._all_index_update_counts.items()
            ],
            "lr_scheduler": sched,
        }

    # counters: ints >= 0; settings that must be finite numbers (a NaN or infinite one makes
    # every weight NaN at the next step)
    _INT_ATTRS = ("num_update", "begin_num_update", "aggregate_num")
    _FINITE_ATTRS = (
        "wd",
        "rescale_grad",
        "momentum",
        "beta1",
        "beta2",
        "epsilon",
        "gamma1",
        "gamma2",
        "rho",
        "float_stable_eps",
        "lamda1",
        "lamda",
        "beta",
        "eta",
        "eps",
        "wd_lh",
        "schedule_decay",
        "m_schedule",
    )
    _CONFIG_KEYS = (
        "optimizer",
        "attrs",
        "idx2name",
        "lr_mult",
        "wd_mult",
        "counts",
        "lr_scheduler",
    )

    def _set_config(self, cfg: dict, source: str = "<states>") -> None:
        """Restore what :meth:`_get_config` saved, checking every entry first (a bad one
        raises :class:`~tapegrad.serialization.ParamsFileError` naming ``source`` and the
        entry). Only assigns attributes: shared containers (dicts, the scheduler) are
        replaced, never changed, so a copy of an optimizer can be configured safely."""
        base = "optimizer_config"
        for k in cfg:
            if k not in self._CONFIG_KEYS:
                raise states_error(source, f"{base}.{k}", "is not an optimizer setting")
        attrs = cfg.get("attrs", {})
        if not isinstance(attrs, dict):
            raise states_error(source, f"{base}.attrs", f"is a {type(attrs).__name__}")
        checked = {k: self._check_attr(k, v, source, f"{base}.attrs.{k}") for k, v in attrs.items()}
        idx2name = {
            k: v
            for k, v in _pairs(cfg.get("idx2name", []), source, f"{base}.idx2name", _is_index)
            if _need(isinstance(v, str), source, f"{base}.idx2name", f"name {v!r} of {k}")
        }
        mults = {}
        for table in ("lr_mult", "wd_mult"):
            entry = f"{base}.{table}"
            mults[table] = {
                k: v
                for k, v in _pairs(cfg.get(table, []), source, entry, _is_key)
                if _need(_is_finite(v), source, entry, f"multiplier {v!r} of {k!r}")
            }
        counts: dict[int, dict[int, int]] = {}
        for dev, table in _pairs(cfg.get("counts", []), source, f"{base}.counts", _is_index):
            entry = f"{base}.counts[{dev}]"
            counts[dev] = {
                k: v
                for k, v in _pairs(table, source, entry, _is_index)
                if _need(_is_index(v), source, entry, f"update count {v!r} of weight {k}")
            }
        sched = cfg.get("lr_scheduler")
        new_sched = None
        if sched is not None:
            entry = f"{base}.lr_scheduler"
            if not isinstance(sched, dict) or set(sched) != {"class", "attrs"}:
                raise states_error(source, entry, f"is not a scheduler description: {sched!r:.60}")
            from .. import lr_scheduler as lrs

            name = sched["class"]
            klass = getattr(lrs, name, None) if name in lrs.__all__ else None
            if not (isinstance(klass, type) and issubclass(klass, LRScheduler)):
                raise OptimizerError(
                    f"{source}: the saved learning-rate scheduler {name!r:.60} is unknown "
                    f"(entry '{entry}.class'). Fix: use a scheduler of tapegrad.lr_scheduler "
                    "or create the Trainer with that scheduler and do not load its states."
                )
            try:
                new_sched = klass._from_state(sched["attrs"])
            except ValueError as e:
                raise states_error(source, f"{entry}.attrs", str(e)) from None
        # everything checked: assign (a KeyboardInterrupt here only hits a private copy)
        for k, v in checked.items():
            setattr(self, k, v)
        self.idx2name = idx2name
        self.lr_mult = mults["lr_mult"]
        self.wd_mult = mults["wd_mult"]
        self._all_index_update_counts = counts or {0: {}}
        self._index_update_count = self._all_index_update_counts.setdefault(0, {})
        self.lr_scheduler = new_sched

    def _check_attr(self, k: str, v: Any, source: str, entry: str) -> Any:
        """A saved attribute: a setting this optimizer has, of the type it has now."""
        if k in self._NOT_SAVED or k.startswith("__") or hasattr(type(self), k):
            raise states_error(source, entry, f"is not a setting of {type(self).__name__}")
        ref = vars(self).get(k, _MISSING)
        if k in self._INT_ATTRS:
            ok, want = _is_index(v), "an int >= 0"
        elif k == "lr":  # None: the scheduler's base_lr is the learning rate
            ok, want = v is None or (_is_finite(v) and v >= 0), "a finite number >= 0 or null"
        elif k in self._FINITE_ATTRS:
            ok, want = _is_finite(v) and (k != "lr" or v >= 0), "a finite number"
            want += " >= 0" if k == "lr" else ""
        elif isinstance(ref, bool):
            ok, want = isinstance(v, bool), "True or False"
        elif ref is None or _is_number(ref):
            ok, want = v is None or (_is_number(v) and v == v), "a number or null"
        elif isinstance(ref, str):
            ok, want = isinstance(v, str), "a string"
        elif ref is _MISSING or isinstance(ref, (list, tuple)):
            ok, want = _flat_json(v), "a number, a string or a list of them"
        else:
            ok, want = False, f"a {type(ref).__name__} (which files cannot hold)"
        if not ok:
            raise states_error(source, entry, f"must be {want}, got {v!r:.60}")
        return v


_MISSING = object()


def _is_number(v: Any) -> bool:
    return type(v) in (int, float)


def _is_finite(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _is_index(v: Any) -> bool:
    return type(v) is int and v >= 0


def _is_key(v: Any) -> bool:
    return _is_index(v) or isinstance(v, str)


def _flat_json(v: Any) -> bool:
    if v is None or isinstance(v, (bool, str)) or (_is_number(v) and v == v):
        return True
    return isinstance(v, list) and all(
        x is None or isinstance(x, (bool, str)) or (_is_number(x) and x == x) for x in v
    )


def _need(ok: bool, source: str, entry: str, what: str) -> bool:
    if not ok:
        raise states_error(source, entry, f"{what} is not valid")
    return True


def _pairs(v: Any, source: str, entry: str, key_ok: Callable[[Any], bool]) -> list:
    """A saved list of ``[key, value]`` pairs, checked."""
    if not isinstance(v, list):
        raise states_error(source, entry, f"is a {type(v).__name__}, not a list of pairs")
    out = []
    seen = set()
    for item in v:
        if not (isinstance(item, list) and len(item) == 2 and key_ok(item[0])):
            raise states_error(source, entry, f"holds {item!r:.60}, not a [key, value] pair")
        if item[0] in seen:
            raise states_error(source, entry, f"holds key {item[0]!r} twice")
        seen.add(item[0])
        out.append((item[0], item[1]))
    return out


def _plain(v: Any) -> Any:
    """NumPy scalars (e.g. a learning rate given as np.float32) as Python numbers."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x) for x in v)
    return v


def _jsonable(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_jsonable(x) for x in v)
    return False


register = Optimizer.register
create = Optimizer.create_optimizer


# --------------------------------------------------------------------------- SGD family


@register
class SGD(Optimizer):
    """Stochastic gradient descent with momentum and weight decay (MXNet ``sgd``)::

        g = clip(rescale_grad * grad, clip_gradient)
        without momentum:  weight = (1 - lr * wd) * weight - lr * g
        with momentum:     mom = momentum * mom - lr * wd * weight - lr * g
                           weight = weight + mom

    (MXNet's ``sgd_update`` / ``sgd_mom_update``; the state holds ``mom``, the negative of
    the documented ``state``.)

    Args:
        momentum: the momentum; 0 keeps no state.
        lazy_update: accepted for compatibility (sparse gradients only).

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.SGD(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); opt.update(0, w, mx.nd.array([2.0]), None); w.asscalar()
    np.float32(0.8)
    """

    def __init__(self, momentum: float = 0.0, lazy_update: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.lazy_update = lazy_update
        self.aggregate_num = 4

    def create_state(self, index: int, weight: Any) -> Any:
        if self.momentum != 0.0:
            return _zeros(weight)
        return None

    def _step(self, index, lr, wd, weight, grad, states):
        # Same formulas as above, arranged to make few temporaries (these arrays can be
        # large and the update is memory-bound): every in-place operation below acts on a
        # fresh array, never on the weight, the gradient or the state.
        if self._clip_on():
            step = _clip(self.rescale_grad * grad, self.clip_gradient)
            step *= -lr
        else:
            step = grad * (-lr * self.rescale_grad)
        if not states:
            if wd:
                step += (1.0 - lr * wd) * weight
            else:
                step += weight
            return step, []
        mom = float(self.momentum) * states[0]
        if wd:
            mom -= (lr * wd) * weight
        mom += step
        return weight + mom, [mom]


@register
class ccSGD(SGD):  # noqa: N801  (MXNet's name)
    """Deprecated alias of :class:`SGD`, kept by MXNet for backward compatibility."""


@register
class NAG(Optimizer):
    """Nesterov accelerated gradient (MXNet ``nag``, operator ``nag_mom_update``)::

        g = clip(rescale_grad * grad, clip_gradient) + wd * weight
        mom = momentum * mom - lr * g
        weight = weight + momentum * mom - lr * g

    Without momentum it is plain SGD (``sgd_update``).

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.NAG(learning_rate=0.1, momentum=0.9)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([1.0]), s); round(float(w.asscalar()), 4)
    0.81
    """

    def __init__(self, momentum: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum

    def create_state(self, index: int, weight: Any) -> Any:
        if self.momentum != 0.0:
            return _zeros(weight)
        return None

    def _step(self, index, lr, wd, weight, grad, states):
        g = self.rescale_grad * grad
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        if not states:
            return (1.0 - lr * wd) * weight - lr * g, []
        m = float(self.momentum)
        g = g + wd * weight
        mom = m * states[0] - lr * g
        return weight + m * mom - lr * g, [mom]


# --------------------------------------------------------------------------- adaptive


@register
class Adam(Optimizer):
    """Adam (MXNet ``adam``, operator ``adam_update``), at step ``t`` of this weight::

        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
        weight = weight - lr_t * m / (sqrt(v) + epsilon)

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.Adam(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([5.0]), s); round(float(w.asscalar()), 4)
    0.9
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        lazy_update: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight))  # mean, variance

    def _step(self, index, lr, wd, weight, grad, states):
        t = self._index_update_count[index]
        b1, b2 = float(self.beta1), float(self.beta2)
        lr = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        g = self.rescale_grad * grad + wd * weight
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        mean = b1 * states[0] + (1.0 - b1) * g
        var = b2 * states[1] + (1.0 - b2) * (g * g)
        return weight - lr * mean / (np.sqrt(var) + float(self.epsilon)), [mean, var]


@register
class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), the update of MXNet's
    ``contrib.adamw_update`` operator as MXNet's ``AdamW`` optimizer drives it::

        g = clip(rescale_grad * grad, clip_gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        eta = lr * sqrt(1 - beta2**t) / (1 - beta1**t)     (lr if correct_bias=False)
        weight = weight - eta * (m / (sqrt(v) + epsilon) + wd * weight)

    As the operator does, the update is skipped (counted but not applied) when
    ``rescale_grad`` is 0, NaN or infinite.

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.AdamW(learning_rate=0.1, wd=0.5)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([5.0]), s); round(float(w.asscalar()), 4)
    0.8842
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-6,
        correct_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.correct_bias = correct_bias

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight))  # mean, variance

    def _step(self, index, lr, wd, weight, grad, states):
        scale = float(self.rescale_grad)
        if not math.isfinite(scale) or scale == 0.0:
            return weight.copy(), [s.copy() for s in states]
        t = self._index_update_count[index]
        b1, b2 = float(self.beta1), float(self.beta2)
        eta = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t) if self.correct_bias else lr
        g = scale * grad
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        mean = b1 * states[0] + (1.0 - b1) * g
        var = b2 * states[1] + (1.0 - b2) * (g * g)
        new_w = weight - eta * (mean / (np.sqrt(var) + float(self.epsilon)) + wd * weight)
        return new_w, [mean, var]


@register
class AdaGrad(Optimizer):
    """AdaGrad (MXNet ``adagrad``)::

        g = clip(rescale_grad * grad, clip_gradient)
        history = history + g**2
        weight = weight - lr * (g / sqrt(history + eps) + wd * weight)

    Args:
        eps: added inside the square root (MXNet's ``float_stable_eps``).

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.AdaGrad(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([3.0]), s); round(float(w.asscalar()), 4)
    0.9
    """

    def __init__(self, eps: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index: int, weight: Any) -> Any:
        return _zeros(weight)  # history

    def _step(self, index, lr, wd, weight, grad, states):
        g = self.rescale_grad * grad
        if self.clip_gradient is not None:
            g = _clip(g, self.clip_gradient)
        history = states[0] + g * g
        div = g / np.sqrt(history + float(self.float_stable_eps))
        return weight - lr * (div + wd * weight), [history]


@register
class RMSProp(Optimizer):
    """RMSProp (MXNet ``rmsprop``). Tieleman & Hinton (``centered=False``)::

        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        n = (1 - gamma1) * g**2 + gamma1 * n
        weight = weight - lr * g / sqrt(n + epsilon)

    Graves (``centered=True``), with states ``n, gm, delta``::

        n = (1 - gamma1) * g**2 + gamma1 * n
        gm = (1 - gamma1) * g + gamma1 * gm
        delta = gamma2 * delta - lr * g / sqrt(n - gm**2 + epsilon)
        weight = weight + delta

    ``clip_weights`` (if positive) clips the new weight to ``[-clip_weights, clip_weights]``.

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.RMSProp(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([2.0]), s); round(float(w.asscalar()), 4)
    0.6838
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        gamma1: float = 0.9,
        gamma2: float = 0.9,
        epsilon: float = 1e-8,
        centered: bool = False,
        clip_weights: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.centered = centered
        self.epsilon = epsilon
        self.clip_weights = clip_weights

    def create_state(self, index: int, weight: Any) -> Any:
        if self.centered:
            return (_zeros(weight), _zeros(weight), _zeros(weight))  # n, g, delta
        return (_zeros(weight),)  # n

    def _step(self, index, lr, wd, weight, grad, states):
        g1, eps = float(self.gamma1), float(self.epsilon)
        g = self.rescale_grad * grad + wd * weight
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        n = (1.0 - g1) * (g * g) + g1 * states[0]
        if not self.centered:
            new_w = weight - lr * (g / np.sqrt(n + eps))
            new_s = [n]
        else:
            gm = (1.0 - g1) * g + g1 * states[1]
            delta = float(self.gamma2) * states[2] - lr * g / np.sqrt(n - gm * gm + eps)
            new_w = weight + delta
            new_s = [n, gm, delta]
        cw = self.clip_weights
        if cw and cw > 0:
            new_w = np.clip(new_w, -cw, cw)
        return new_w, new_s


@register
class AdaDelta(Optimizer):
    """AdaDelta (MXNet ``adadelta``); it uses no learning rate::

        g = clip(rescale_grad * grad, clip_gradient)
        acc_g = rho * acc_g + (1 - rho) * g**2
        delta = sqrt(acc_delta + epsilon) / sqrt(acc_g + epsilon) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta**2
        weight = weight - (delta + wd * weight)

    (MXNet's implementation also scales the caller's gradient array in place; tapegrad
    leaves the gradient untouched.)

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.AdaDelta(rho=0.9, epsilon=1e-5)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([1.0]), s); round(float(w.asscalar()), 5)
    0.99
    """

    def __init__(self, rho: float = 0.90, epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight))  # accumulated g, accumulated delta

    def _step(self, index, lr, wd, weight, grad, states):
        rho, eps = float(self.rho), float(self.epsilon)
        g = self.rescale_grad * grad
        if self.clip_gradient is not None:
            g = _clip(g, self.clip_gradient)
        acc_g = rho * states[0] + (1.0 - rho) * (g * g)
        delta = np.sqrt(states[1] + eps) / np.sqrt(acc_g + eps) * g
        acc_delta = rho * states[1] + (1.0 - rho) * (delta * delta)
        return weight - (delta + wd * weight), [acc_g, acc_delta]


# --------------------------------------------------------------------------- more of MXNet 1.9


def _sign(x: np.ndarray) -> np.ndarray:
    return np.sign(x).astype(x.dtype, copy=False)


def _sgd_core(
    lr: float,
    wd: float,
    weight: np.ndarray,
    g: np.ndarray,
    mom: np.ndarray | None,
    momentum: float,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """MXNet's ``sgd_update`` / ``sgd_mom_update`` on an already rescaled and clipped ``g``."""
    if mom is None:
        return (1.0 - lr * wd) * weight - lr * g, []
    new_mom = momentum * mom - (lr * wd) * weight - lr * g
    return weight + new_mom, [new_mom]


@register
class Signum(Optimizer):
    """Signum: steps of the sign of the momentum (signSGD without momentum), Bernstein et
    al. 2018; MXNet ``signum`` (operators ``signum_update`` and ``signsgd_update``)::

        g = clip(rescale_grad * grad, clip_gradient)
        mom = momentum * mom - (1 - momentum) * (wd * weight + g)
        weight = (1 - lr * wd_lh) * weight + lr * sign(mom)

    (the state holds ``mom``, the negative of the documented ``state``). With
    ``momentum=0`` there is no state and MXNet's ``signsgd_update`` runs:
    ``weight = (1 - lr * wd) * weight - lr * sign(grad)`` (the raw gradient's sign; rescaling
    and clipping do not change it).

    Args:
        momentum: the momentum (0.9 by default).
        wd_lh: decoupled weight decay (Loshchilov & Hutter).

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.Signum(learning_rate=0.1)
    >>> w = mx.nd.array([1.0, 1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([3.0, -0.5]), s); w.asnumpy().tolist()
    [0.8999999761581421, 1.100000023841858]
    """

    def __init__(
        self, learning_rate: float = 0.01, momentum: float = 0.9, wd_lh: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum
        self.wd_lh = wd_lh

    def create_state(self, index: int, weight: Any) -> Any:
        return _zeros(weight) if self.momentum != 0.0 else None

    def _step(self, index, lr, wd, weight, grad, states):
        if not states:
            return (1.0 - lr * wd) * weight - lr * _sign(grad), []
        m = float(self.momentum) if self.momentum > 0 else 0.0
        g = self.rescale_grad * grad
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        mom = m * states[0] - (1.0 - m) * (wd * weight) - (1.0 - m) * g
        wd_lh = float(self.wd_lh) if self.wd_lh else 0.0
        return (1.0 - lr * wd_lh) * weight + lr * _sign(mom), [mom]


@register
class FTML(Optimizer):
    """FTML, Follow The Moving Leader (Zheng & Kwok 2017); MXNet ``ftml``, operator
    ``ftml_update``, at step ``t`` of this weight::

        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        v = beta2 * v + (1 - beta2) * g**2
        d_t = (1 - beta1**t) / lr * (sqrt(v / (1 - beta2**t)) + epsilon)
        z = beta1 * z + (1 - beta1) * g - (d_t - beta1 * d) * weight
        d = d_t
        weight = -z / d_t

    The state is ``(d, v, z)``.

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.FTML(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([2.0]), s); round(float(w.asscalar()), 4)
    0.9
    """

    def __init__(
        self, beta1: float = 0.6, beta2: float = 0.999, epsilon: float = 1e-8, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight), _zeros(weight))  # d, v, z

    def _step(self, index, lr, wd, weight, grad, states):
        t = self._index_update_count[index]
        b1, b2 = float(self.beta1), float(self.beta2)
        g = self.rescale_grad * grad + wd * weight
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        d, v, z = states
        v = b2 * v + (1.0 - b2) * (g * g)
        d_t = (1.0 - b1**t) / lr * (np.sqrt(v / (1.0 - b2**t)) + float(self.epsilon))
        z = b1 * z + (1.0 - b1) * g - (d_t - b1 * d) * weight
        return -z / d_t, [d_t, v, z]


@register
class LARS(Optimizer):
    """LARS, layer-wise adaptive rate scaling (You et al. 2017); MXNet ``lars``: SGD with
    momentum whose learning rate is scaled per weight::

        lr_w = lr * eta * |weight| / (|rescale_grad * grad| + wd * |weight| + eps)

    (2-norms; ``lr`` unchanged when either norm is 0, and for weights named ``*gamma``,
    ``*beta`` or ``*bias`` in ``param_idx2name``), followed by MXNet's SGD update with
    ``lr_w``. With ``momentum_correction`` the momentum is multiplied by
    ``lr / previous lr`` when the learning rate changes (Goyal et al. 2017): as in MXNet,
    the ratio applies to the first call of a step (the first ``aggregate_num`` weights of
    the first dtype in a Trainer step; one ``update`` call otherwise).

    Only names ending in ``_weight`` are weight-decayed when ``param_idx2name`` is given.

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.LARS(learning_rate=1.0, eta=0.5)
    >>> w = mx.nd.array([3.0, 4.0])
    >>> opt.update(0, w, mx.nd.array([0.0, 10.0]), None); w.asnumpy().tolist()
    [3.0, 1.5]
    """

    _STEP_ATTRS = (
        "last_lr",
        "cur_lr",
        "_lars_step",
        "_lars_dtype",
        "_lars_n",
        "_lars_ratio",
        "_lars_pending",
        "_lars_call",
    )
    _NOT_SAVED = Optimizer._NOT_SAVED + _STEP_ATTRS[2:]

    def __init__(
        self,
        momentum: float = 0.0,
        lazy_update: bool = True,
        eta: float = 0.001,
        eps: float = 0,
        momentum_correction: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.momentum_correction = momentum_correction
        self.lazy_update = lazy_update
        self.aggregate_num = 4
        self.eta = eta
        self.eps = eps
        self.skip = 0
        self.last_lr: float | None = None
        self.cur_lr: float | None = None
        self._lars_step: int | None = None  # Trainer steps: num_update of the step
        self._lars_dtype: str | None = None  # ... the dtype of its first weight
        self._lars_n = 0  # ... and how many weights of that dtype it has updated
        self._lars_ratio = 1.0
        self._lars_pending = False  # an update() call began: shift the history first
        self._lars_call = False  # inside an update() call

    def set_wd_mult(self, args_wd_mult: dict) -> None:
        """As MXNet's LARS: names not ending in ``_weight`` get no weight decay."""
        self.wd_mult = {n: 0.0 for n in self.idx2name.values() if not n.endswith("_weight")}
        self.wd_mult.update(args_wd_mult)

    def create_state(self, index: int, weight: Any) -> Any:
        return _zeros(weight) if self.momentum != 0.0 else None

    def _begin_call(self) -> None:
        self._lars_pending = True
        self._lars_call = True

    def _end_call(self) -> None:
        self._lars_pending = False
        self._lars_call = False

    def _shift(self) -> float:
        """One entry of MXNet's learning-rate history (its ``_get_lrs``): the ratio of the
        current base learning rate to the previous one."""
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        if self.cur_lr is not None:
            self.last_lr = self.cur_lr
        else:
            self.last_lr = lr
        self.cur_lr = lr
        if self.momentum_correction and self.last_lr != 0:
            return float(self.cur_lr) / float(self.last_lr)
        return 1.0

    def _momentum_ratio(self, dtype: Any) -> float:
        if self._lars_call:  # one update() call: one history entry, one ratio
            if self._lars_pending:
                self._lars_pending = False
                self._lars_ratio = self._shift()
            return self._lars_ratio
        # a Trainer step: MXNet's updater calls in chunks of aggregate_num weights per dtype,
        # each call one history entry; the rate is the same within a step, so only the first
        # chunk sees a ratio other than 1
        dt = np.dtype(dtype).name
        if self._lars_step != self.num_update:
            self._lars_step, self._lars_dtype, self._lars_n = self.num_update, dt, 1
            self._lars_ratio = self._shift()
            return self._lars_ratio
        if dt == self._lars_dtype and self._lars_n < self.aggregate_num:
            self._lars_n += 1
            return self._lars_ratio
        self._shift()
        return 1.0

    def _step(self, index, lr, wd, weight, grad, states):
        ratio = self._momentum_ratio(weight.dtype)
        name = self.idx2name.get(index, str(index))
        if not name.endswith(("gamma", "beta", "bias")):
            w_sq = float(np.dot(weight.ravel(), weight.ravel()))
            g_sq = float(np.dot(grad.ravel(), grad.ravel()))
            if w_sq > 0.0 and g_sq > 0.0:
                w_norm = math.sqrt(w_sq)
                g_norm = math.sqrt(g_sq) * self.rescale_grad
                lr = lr * float(self.eta) * w_norm / (g_norm + wd * w_norm + float(self.eps))
        g = self.rescale_grad * grad
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        momentum = float(self.momentum) * ratio if self.momentum > 0 else 0.0
        return _sgd_core(lr, wd, weight, g, states[0] if states else None, momentum)


@register
class LBSGD(Optimizer):
    """Large-batch SGD (MXNet ``lbsgd``): SGD with momentum whose learning rate is warmed up
    to ``batch_scale`` times over ``warmup_epochs * updates_per_epoch`` updates
    (``warmup_strategy`` 'linear', 'power2', 'sqrt'; 'lars' scales it by
    ``clip(sqrt(|w|^2 / (|g|^2 + wd |w|^2 + 1e-18)), 0.01, 100)``), and that applies
    gradients accumulated over ``batch_scale`` calls: every ``batch_scale``-th update of a
    weight uses the mean of the gradients since the previous one; the others leave the
    weight unchanged. As in MXNet, the learning rate is read before the update is counted.

    The state is the momentum (or None), plus the accumulated gradient when
    ``batch_scale`` is not 1.

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.LBSGD(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); opt.update(0, w, mx.nd.array([2.0]), opt.create_state(0, w))
    >>> round(float(w.asscalar()), 4)
    0.8
    """

    _LR_BEFORE_COUNT = True

    def __init__(
        self,
        momentum: float = 0.0,
        multi_precision: bool = False,
        warmup_strategy: str = "linear",
        warmup_epochs: int = 5,
        batch_scale: int = 1,
        updates_per_epoch: int = 32,
        begin_epoch: int = 0,
        num_epochs: int = 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(multi_precision=multi_precision, **kwargs)
        self.momentum = momentum
        self.warmup_strategy = warmup_strategy
        self.warmup_epochs = warmup_epochs
        self.batch_scale = batch_scale
        self.updates_per_epoch = updates_per_epoch
        self.init_updates = begin_epoch * updates_per_epoch
        self.num_epochs = num_epochs
        self.lbmult = 1
        self.adaptive = False
        self.admult = 1

    def create_state(self, index: int, weight: Any) -> Any:
        mom = _zeros(weight) if self.momentum != 0.0 else None
        if self.batch_scale == 1:
            return mom
        return (mom, _zeros(weight))  # momentum, gradients accumulated since the last update

    def _lbmult(self, nup: int) -> float:
        nwup = self.warmup_epochs * self.updates_per_epoch
        maxmult = float(self.batch_scale)
        if nup >= nwup:
            return maxmult
        if nwup <= 1:
            return 1.0
        if self.warmup_strategy == "linear":
            return 1.0 + (maxmult - 1) * nup / nwup
        if self.warmup_strategy == "power2":
            return 1.0 + (maxmult - 1) * (nup * nup) / (nwup * nwup)
        if self.warmup_strategy == "sqrt":
            return 1.0 + (maxmult - 1) * math.sqrt(float(nup) / nwup)
        return 1.0

    def _step(self, index, lr, wd, weight, grad, states):
        if self.batch_scale == 1:
            mom, acc = (states[0] if states else None), None
        else:
            mom, acc = (states[0], states[1]) if len(states) == 2 else (None, states[0])
        n = self._index_update_count[index] - self.begin_num_update
        num_cums = self.init_updates + n
        total = grad if acc is None else acc + grad
        if num_cums % self.batch_scale != 0:  # accumulate only
            new = [] if mom is None else [mom.copy()]
            return weight.copy(), new + [total]
        grad = total / self.batch_scale
        if self.warmup_strategy == "lars":
            w2 = float(np.sum(weight * weight))
            g2 = float(np.sum(grad * grad))
            lbmult = min(max(math.sqrt(w2 / (g2 + wd * w2 + 1e-18)), 0.01), 100.0)
        else:
            lbmult = self._lbmult(num_cums)
        g = self.rescale_grad * grad
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        m = float(self.momentum) if self.momentum > 0 else 0.0
        new_w, new_s = _sgd_core(lr * lbmult, wd, weight, g, mom, m)
        if acc is not None:
            new_s = new_s + [np.zeros_like(acc)]
        return new_w, new_s


@register
class LAMB(Optimizer):
    """LAMB, layer-wise adaptive moments (You et al. 2019); MXNet ``lamb`` (operators
    ``lamb_update_phase1`` / ``phase2``), at step ``t`` of this weight::

        g = clip(rescale_grad * grad, clip_gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        r = m_hat / (sqrt(v_hat) + epsilon) + wd * weight
            (m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t); m and v without
            bias_correction)
        r1 = |weight| bounded to [lower_bound, upper_bound] (each when given), r2 = |r|
        weight = weight - lr * (r1 / r2 if r1 > 0 and r2 > 0 else 1) * r

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.LAMB(learning_rate=0.1)
    >>> w = mx.nd.array([3.0, 4.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([1.0, 1.0]), s); [round(v, 4) for v in w.asnumpy().tolist()]
    [2.6464, 3.6464]
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-6,
        lower_bound: float | None = None,
        upper_bound: float | None = None,
        bias_correction: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound
        self.bias_correction = bias_correction
        self.aggregate_num = 45

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight))  # mean, variance

    def _step(self, index, lr, wd, weight, grad, states):
        t = self._index_update_count[index]
        b1, b2, eps = float(self.beta1), float(self.beta2), float(self.epsilon)
        g = self.rescale_grad * grad
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        mean = b1 * states[0] + (1.0 - b1) * g
        var = b2 * states[1] + (1.0 - b2) * (g * g)
        if self.bias_correction:
            r = (mean / (1.0 - b1**t)) / (np.sqrt(var / (1.0 - b2**t)) + eps) + wd * weight
        else:
            r = mean / (np.sqrt(var) + eps) + wd * weight
        r1 = math.sqrt(float(np.dot(weight.ravel(), weight.ravel())))
        if self.lower_bound and self.lower_bound >= 0:
            r1 = max(r1, float(self.lower_bound))
        if self.upper_bound and self.upper_bound >= 0:
            r1 = min(r1, float(self.upper_bound))
        r2 = math.sqrt(float(np.dot(r.ravel(), r.ravel())))
        ratio = 1.0 if r1 == 0.0 or r2 == 0.0 else r1 / r2
        return weight - (lr * ratio) * r, [mean, var]


@register
class DCASGD(Optimizer):
    """Delay-compensated asynchronous SGD (Zheng et al. 2016); MXNet ``dcasgd``::

        g = clip(rescale_grad * grad, clip_gradient)
        step = -lr * (g + wd * weight + lamda * g**2 * (weight - previous_weight))
        mom = momentum * mom + step        (step itself without momentum)
        previous_weight = weight
        weight = weight + mom

    The state is ``(mom or None, previous_weight)``, the latter starting as a copy of the
    weight. (MXNet 1.9's own code tests the momentum array's truth value, which fails for
    arrays of more than one element; tapegrad applies the formula above.)

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.DCASGD(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([2.0]), s); round(float(w.asscalar()), 4)
    0.8
    """

    def __init__(self, momentum: float = 0.0, lamda: float = 0.04, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = momentum
        self.lamda = lamda

    def create_state(self, index: int, weight: Any) -> Any:
        from .. import autograd as _ag

        with _ag.pause():
            prev = weight.copy()
        return (_zeros(weight) if self.momentum != 0.0 else None, prev)

    def _step(self, index, lr, wd, weight, grad, states):
        g = self.rescale_grad * grad
        if self.clip_gradient is not None:
            g = _clip(g, self.clip_gradient)
        mom, prev = (states[0], states[1]) if len(states) == 2 else (None, states[0])
        step = -lr * (g + wd * weight + float(self.lamda) * g * g * (weight - prev))
        if mom is None:
            return weight + step, [weight.copy()]
        mom = float(self.momentum) * mom + step
        return weight + mom, [mom, weight.copy()]


@register
class SGLD(Optimizer):
    """Stochastic gradient Langevin dynamics (Welling & Teh 2011); MXNet ``sgld``::

        g = clip(rescale_grad * grad, clip_gradient)
        weight = weight - lr / 2 * (g + wd * weight) + N(0, sqrt(lr))

    The noise is drawn with ``mx.nd.random.normal(0, sqrt(lr), weight.shape)`` (seeded by
    ``mx.random.seed``).
    """

    def create_state(self, index: int, weight: Any) -> Any:
        return None

    def _step(self, index, lr, wd, weight, grad, states):
        from .. import ndarray as nd

        g = self.rescale_grad * grad
        if self.clip_gradient is not None:
            g = _clip(g, self.clip_gradient)
        noise = nd.random.normal(0, math.sqrt(lr), shape=weight.shape, dtype=weight.dtype)
        return weight - lr / 2 * (g + wd * weight) + np.asarray(noise), []


@register
class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al. 2013); MXNet ``ftrl``, operator ``ftrl_update``::

        g = clip(rescale_grad * grad, clip_gradient)
        z = z + g - (sqrt(n + g**2) - sqrt(n)) * weight / lr
        n = n + g**2
        weight = (sign(z) * lamda1 - z) / ((beta + sqrt(n)) / lr + wd) * (|z| > lamda1)

    The state is ``(z, n)``.

    Args:
        lamda1: L1 regularization coefficient.
        learning_rate: 0.1 by default.
        beta: per-coordinate learning-rate parameter.

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.Ftrl(lamda1=0.0, learning_rate=1.0, beta=1.0)
    >>> w = mx.nd.array([0.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([3.0]), s); w.asscalar()
    np.float32(-0.75)
    """

    def __init__(
        self, lamda1: float = 0.01, learning_rate: float = 0.1, beta: float = 1, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.lamda1 = lamda1
        self.beta = beta
        self.lr = learning_rate

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight))  # z, n

    def _step(self, index, lr, wd, weight, grad, states):
        g = self.rescale_grad * grad
        if self._clip_on():
            g = _clip(g, self.clip_gradient)
        z, n = states
        g2 = g * g
        z = z + g - (np.sqrt(n + g2) - np.sqrt(n)) * weight / lr
        n = n + g2
        l1 = float(self.lamda1)
        w = (_sign(z) * l1 - z) / ((float(self.beta) + np.sqrt(n)) / lr + wd) * (np.abs(z) > l1)
        return w.astype(weight.dtype, copy=False), [z, n]


@register
class Adamax(Optimizer):
    """AdaMax, Adam with the infinity norm (Kingma & Ba 2015, section 7); MXNet ``adamax``,
    at step ``t`` of this weight::

        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        m = beta1 * m + (1 - beta1) * g
        u = maximum(beta2 * u, |g|)
        weight = weight - lr / (1 - beta1**t) * m / u

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.Adamax(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([4.0]), s); round(float(w.asscalar()), 4)
    0.9
    """

    def __init__(
        self, learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight))  # m, u

    def _step(self, index, lr, wd, weight, grad, states):
        t = self._index_update_count[index]
        b1, b2 = float(self.beta1), float(self.beta2)
        lr = lr / (1.0 - b1**t)
        g = self.rescale_grad * grad + wd * weight
        if self.clip_gradient is not None:
            g = _clip(g, self.clip_gradient)
        m = b1 * states[0] + (1.0 - b1) * g
        u = np.maximum(b2 * states[1], np.abs(g))
        return weight - lr * m / u, [m, u]


@register
class Nadam(Optimizer):
    """Nesterov Adam (Dozat 2016); MXNet ``nadam``, at step ``t`` of this weight::

        g = clip(rescale_grad * grad + wd * weight, clip_gradient)
        mu_t = beta1 * (1 - 0.5 * 0.96**(t * schedule_decay))
        mu_t1 = beta1 * (1 - 0.5 * 0.96**((t + 1) * schedule_decay))
        m_schedule = m_schedule * mu_t;  m_schedule_next = m_schedule * mu_t1
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_bar = (1 - mu_t) * g / (1 - m_schedule) + mu_t1 * m / (1 - m_schedule_next)
        weight = weight - lr * m_bar / (sqrt(v / (1 - beta2**t)) + epsilon)

    As in MXNet, ``m_schedule`` is one number for the whole optimizer, multiplied at every
    update of every weight (it is saved with the trainer states).

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.Nadam(learning_rate=0.1)
    >>> w = mx.nd.array([1.0]); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([1.0]), s); round(float(w.asscalar()), 4)
    0.8944
    """

    _STEP_ATTRS = ("m_schedule",)

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        schedule_decay: float = 0.004,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.schedule_decay = schedule_decay
        self.m_schedule = 1.0

    def create_state(self, index: int, weight: Any) -> Any:
        return (_zeros(weight), _zeros(weight))  # m, v

    def _step(self, index, lr, wd, weight, grad, states):
        t = self._index_update_count[index]
        b1, b2, sd = float(self.beta1), float(self.beta2), float(self.schedule_decay)
        g = self.rescale_grad * grad + wd * weight
        if self.clip_gradient is not None:
            g = _clip(g, self.clip_gradient)
        mu_t = b1 * (1.0 - 0.5 * 0.96 ** (t * sd))
        mu_t1 = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * sd))
        self.m_schedule = self.m_schedule * mu_t  # restored by the Trainer on failure
        m_next = self.m_schedule * mu_t1
        m = b1 * states[0] + (1.0 - b1) * g
        v = b2 * states[1] + (1.0 - b2) * (g * g)
        m_bar = (1.0 - mu_t) * (g / (1.0 - self.m_schedule)) + mu_t1 * (m / (1.0 - m_next))
        v_hat = v / (1.0 - b2**t)
        return weight - lr * m_bar / (np.sqrt(v_hat) + float(self.epsilon)), [m, v]


@register
class Test(Optimizer):
    """MXNet's ``test`` optimizer: ``weight = weight + rescale_grad * grad``; the state is a
    copy of the new weight."""

    def create_state(self, index: int, weight: Any) -> Any:
        return _zeros(weight)

    def _step(self, index, lr, wd, weight, grad, states):
        new = weight + grad * self.rescale_grad
        return new, [new.copy()]


@register
class GroupAdaGrad(Optimizer):
    """AdaGrad with one learning rate per row (MXNet ``optimizer.contrib.GroupAdaGrad``,
    registered as ``groupadagrad``), for 2-D weights such as embeddings::

        g = clip(rescale_grad * grad, clip_gradient)
        history = history + mean(g**2, axis=1, keepdims=True)
        weight = weight - lr * g / sqrt(history + eps)

    The state ``history`` has shape ``(rows, 1)``. Weight decay is not supported.

    >>> import tapegrad as mx
    >>> opt = mx.optimizer.contrib.GroupAdaGrad(learning_rate=1.0, eps=0.0)
    >>> w = mx.nd.zeros((1, 2)); s = opt.create_state(0, w)
    >>> opt.update(0, w, mx.nd.array([[3.0, 4.0]]), s)
    >>> [round(v, 4) for v in w.asnumpy()[0].tolist()]
    [-0.8485, -1.1314]
    """

    def __init__(self, eps: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index: int, weight: Any) -> Any:
        if len(weight.shape) != 2:
            raise OptimizerError(
                f"GroupAdaGrad: weight {self._name(index)} has shape {tuple(weight.shape)}; "
                "it keeps one learning rate per row of a 2-D weight. Fix: use it for 2-D "
                "weights (e.g. embeddings) only, and AdaGrad for the others."
            )
        from .. import ndarray as nd

        return nd.zeros((weight.shape[0], 1), dtype=weight.dtype)

    def _step(self, index, lr, wd, weight, grad, states):
        if wd != 0:
            raise OptimizerError(
                f"GroupAdaGrad: weight decay is not supported (wd={wd} for weight "
                f"{self._name(index)}). Fix: pass wd=0 (and wd_mult=0)."
            )
        g = self.rescale_grad * grad
        if self.clip_gradient is not None:
            g = _clip(g, self.clip_gradient)
        history = states[0] + np.mean(g * g, axis=1, keepdims=True)
        return weight - lr * g / np.sqrt(history + float(self.float_stable_eps)), [history]


# --------------------------------------------------------------------------- updater


class Updater:
    """Applies an optimizer to weights by index, creating each state on first use
    (MXNet's ``mx.optimizer.Updater``; ``get_updater(opt)`` returns one).

    >>> import tapegrad as mx
    >>> upd = mx.optimizer.get_updater(mx.optimizer.SGD(learning_rate=1.0))
    >>> w = mx.nd.array([1.0]); upd(0, mx.nd.array([0.5]), w); w.asscalar()
    np.float32(0.5)
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        self.states: dict = {}
        self.states_synced: dict = {}
        self.aggregate_updates = False

    def __call__(self, index: Any, grad: Any, weight: Any) -> None:
        """Update ``weight`` from ``grad`` (each may be a list). As in MXNet, an optimizer
        with ``aggregate_num > 0`` (SGD, LARS, LAMB) is called with lists of up to that many
        weights of one dtype at a time."""
        if not isinstance(index, (list, tuple)):
            index, grad, weight = [index], [grad], [weight]
        opt = self.optimizer
        for i, w in zip(index, weight):
            if i not in self.states:
                self.states[i] = opt.create_state_multi_precision(i, w)
                self.states_synced[i] = True
        if opt.aggregate_num <= 0:
            for i, g, w in zip(index, grad, weight):
                opt.update_multi_precision(i, w, g, self.states[i])
            return
        by_dtype: dict = {}
        for i, g, w in zip(index, grad, weight):
            by_dtype.setdefault(np.dtype(w.dtype), []).append((i, w, g))
        n = opt.aggregate_num
        for items in by_dtype.values():
            for k in range(0, len(items), n):
                idx, ws, gs = (list(t) for t in zip(*items[k : k + n]))
                opt.update_multi_precision(idx, ws, gs, [self.states[i] for i in idx])

    def sync_state_context(self, state: Any, context: Any) -> Any:
        """States live on the CPU: returned unchanged."""
        return state

    def get_states(self, dump_optimizer: bool = False) -> bytes:
        """The states (and optionally the optimizer settings) as bytes, in tapegrad's
        trainer-states format (an MXNet NDArray-list file; no pickle)."""
        from .. import serialization

        meta = {"optimizer_config": self.optimizer._get_config() if dump_optimizer else None}
        return serialization.dumps_states(meta, self.states)

    def set_states(self, states: bytes) -> None:
        """Restore what :meth:`get_states` returned. All or nothing: the bytes are checked
        completely before the updater or its optimizer change."""
        from .. import serialization

        meta, st = serialization.loads_states(states)
        cfg = meta.get("optimizer_config")
        new_opt = None
        if cfg is not None:
            new_opt = _optimizer_from_config(cfg, self.optimizer)
        if new_opt is not None:
            self.optimizer = _install_config(self.optimizer, new_opt)
        self.states = st
        self.states_synced = dict.fromkeys(st, False)


def _optimizer_from_config(
    cfg: dict, current: Optimizer | None, source: str = "<states>"
) -> Optimizer:
    """The optimizer a saved configuration describes, every entry checked. ``current`` is
    never changed: when it has the saved class, the result is a configured copy of it, to be
    put in place with :func:`_install_config` once everything else has been checked too."""
    if not isinstance(cfg, dict):
        raise states_error(source, "optimizer_config", f"is a {type(cfg).__name__}")
    name = cfg.get("optimizer", "")
    if not isinstance(name, str):
        raise states_error(source, "optimizer_config.optimizer", f"is not a name: {name!r:.60}")
    if current is not None and type(current).__name__.lower() == name:
        opt = copy.copy(current)
    else:
        klass = Optimizer.opt_registry.get(name)
        if klass is None:
            raise OptimizerError(
                f"{source}: the saved states are for optimizer {name!r:.60}, which is not "
                "registered. Fix: import or register it before loading."
            )
        try:
            opt = klass()
        except TypeError as e:
            raise OptimizerError(
                f"{source}: cannot recreate optimizer {name!r} from saved states ({e}). "
                "Fix: create the Trainer with that optimizer first."
            ) from None
    opt._set_config(cfg, source)
    return opt


def _install_config(current: Optimizer, new: Optimizer) -> Optimizer:
    """Make ``new`` (from :func:`_optimizer_from_config`) the optimizer in use. A copy of
    ``current`` is written back into it, so that references users hold to the optimizer
    (and to its scheduler, when the class is the same) see the restored settings."""
    if type(new) is not type(current):
        return new
    old_sched, new_sched = current.lr_scheduler, new.lr_scheduler
    vars(current).update(vars(new))
    if old_sched is not None and type(old_sched) is type(new_sched):
        vars(old_sched).update(vars(new_sched))
        current.lr_scheduler = old_sched
    return current


def get_updater(optimizer: Optimizer) -> Updater:
    """An :class:`Updater` for ``optimizer``."""
    return Updater(optimizer)


# The _step functions of the optimizers above: each returns fresh arrays of the weight's and
# the states' shapes (tested), so their results need no checks before they are written.
_OWN_STEPS = frozenset(
    k._step
    for k in (
        SGD,
        NAG,
        Adam,
        AdamW,
        AdaGrad,
        RMSProp,
        AdaDelta,
        Signum,
        FTML,
        LARS,
        LBSGD,
        LAMB,
        DCASGD,
        SGLD,
        Ftrl,
        Adamax,
        Nadam,
        Test,
        GroupAdaGrad,
    )
)
