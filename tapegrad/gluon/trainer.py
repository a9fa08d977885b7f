"""``gluon.Trainer``: applies an optimizer to a set of Parameters (MXNet 1.9 behaviour).

A step is a transaction: every parameter's new value and optimizer state are computed first
and written only when all of them succeeded. A step that raises (an error in an update, a
stale gradient, or a non-finite gradient with ``check_finite=True``) leaves every parameter,
every optimizer state and the optimizer's counters exactly as they were.

>>> import tapegrad as mx
>>> from tapegrad import autograd, gluon
>>> w = gluon.Parameter('w', shape=(2,), init=mx.init.One())
>>> w.initialize()
>>> trainer = gluon.Trainer([w], 'sgd', {'learning_rate': 0.5})
>>> with autograd.record():
...     loss = (w.data() * mx.nd.array([1.0, 2.0])).sum()
>>> loss.backward()
>>> trainer.step(batch_size=1)
>>> w.data().asnumpy().tolist()
[0.5, 0.0]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import optimizer as opt
from .. import serialization
from ..base import TapegradError

__all__ = ["Trainer", "StaleGradientError", "NonFiniteGradientError"]


class StaleGradientError(TapegradError, UserWarning):
    """A parameter's gradient was not written by ``backward`` since the last step.

    It is also a ``UserWarning``: the exception type MXNet raises in this case.
    """


class NonFiniteGradientError(TapegradError, FloatingPointError):
    """A gradient holds NaN or infinity and the Trainer was created with ``check_finite``."""


def _is_fresh(arr: Any) -> bool:
    return bool(getattr(arr, "_fresh_grad", False))


def _set_stale(arr: Any) -> None:
    try:
        arr._fresh_grad = False
    except AttributeError:
        pass


def _raw(x: Any) -> np.ndarray:
    d = getattr(x, "_data", None)
    return d if isinstance(d, np.ndarray) else np.asarray(x.asnumpy())


class Trainer:
    """Applies an :class:`~tapegrad.optimizer.Optimizer` to a set of Parameters.

    Args:
        params: a ParameterDict or dict (its parameters are taken in sorted-name order,
            as MXNet does) or a list of Parameters.
        optimizer: an optimizer name (``'sgd'``, ``'adam'``, ...) or an Optimizer instance.
        optimizer_params: keyword arguments of the optimizer, e.g.
            ``{'learning_rate': 0.1, 'momentum': 0.9}``; must be empty when ``optimizer`` is
            an instance.
        kvstore, compression_params, update_on_kvstore: accepted for MXNet compatibility;
            with one device there is nothing to reduce, so updates happen locally.
        check_finite: tapegrad's addition: refuse a step whose gradients hold NaN or
            infinity (raises :class:`NonFiniteGradientError`, nothing is changed).

    ``step(batch_size)`` rescales gradients by ``rescale_grad / batch_size`` (``rescale_grad``
    from ``optimizer_params``, default 1) before the update, so a loss summed over a batch
    gives a mean-gradient step.
    """

    def __init__(
        self,
        params: Any,
        optimizer: Any,
        optimizer_params: dict | None = None,
        kvstore: Any = "device",
        compression_params: dict | None = None,
        update_on_kvstore: bool | None = None,
        check_finite: bool = False,
    ) -> None:
        if isinstance(params, Mapping):
            params = [params[k] for k in sorted(params.keys())]
        elif hasattr(params, "values") and hasattr(params, "keys") and callable(params.keys):
            params = [params[k] for k in sorted(params.keys())]
        if not isinstance(params, (list, tuple)):
            raise ValueError(
                f"Trainer: first argument must be a list or dict of Parameters, "
                f"got {type(params).__name__}. Fix: pass net.collect_params()."
            )
        self._params: list = []
        self._param2idx: dict = {}
        for i, p in enumerate(params):
            if not (hasattr(p, "list_data") and hasattr(p, "grad_req") and hasattr(p, "name")):
                raise ValueError(
                    f"Trainer: first argument must be a list or dict of "
                    f"Parameters, got a list containing {type(p).__name__} at "
                    f"position {i}. Fix: pass net.collect_params()."
                )
            if id(p) in self._param2idx:  # shared parameter listed twice
                continue
            self._param2idx[id(p)] = i
            self._params.append(p)
            if hasattr(p, "_set_trainer"):
                p._set_trainer(self)
        if isinstance(kvstore, str) and kvstore.startswith("dist"):
            raise TapegradError(
                f"Trainer: kvstore={kvstore!r} (distributed training) is not "
                "supported by gluon.Trainer. Fix: use kvstore='device' (one "
                "process) or tapegrad.distributed for data parallelism."
            )
        self._compression_params = compression_params
        self._kvstore_params = {"kvstore": kvstore, "update_on_kvstore": update_on_kvstore}
        self._kvstore = None
        self._update_on_kvstore = None
        self._kv_initialized = True
        self._distributed = False
        self._check_finite = bool(check_finite)
        optimizer_params = optimizer_params if optimizer_params else {}
        self._init_optimizer(optimizer, optimizer_params)
        self._scale = self._optimizer.rescale_grad

    def __repr__(self) -> str:
        return (
            f"Trainer({len(self._params)} parameters, optimizer={type(self._optimizer).__name__})"
        )

    # ---- optimizer ----------------------------------------------------------------------
    def _init_optimizer(self, optimizer: Any, optimizer_params: dict) -> None:
        param_dict = dict(enumerate(self._params))
        if isinstance(optimizer, opt.Optimizer):
            if optimizer_params:
                raise ValueError(
                    "Trainer: optimizer_params must be None if optimizer is an "
                    "instance of Optimizer instead of str. Fix: set them on the "
                    "instance."
                )
            self._optimizer = optimizer
            # not copied: later changes of a Parameter's lr_mult/wd_mult take effect
            self._optimizer.param_dict = param_dict
        else:
            self._optimizer = opt.create(optimizer, param_dict=param_dict, **optimizer_params)
        self._updaters = [opt.get_updater(self._optimizer)]

    def _reset_kvstore(self) -> None:
        """No kvstore on one device: nothing to reset."""

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate."""
        return self._optimizer.learning_rate

    @property
    def optimizer(self) -> opt.Optimizer:
        """The Optimizer instance."""
        return self._optimizer

    def set_learning_rate(self, lr: float) -> None:
        """Set a new learning rate of the optimizer."""
        self._optimizer.set_learning_rate(lr)

    # ---- steps --------------------------------------------------------------------------
    def step(self, batch_size: int | float, ignore_stale_grad: bool = False) -> None:
        """One update of every parameter from its gradient, scaled by ``1/batch_size``.

        Call it after ``backward()`` and outside ``autograd.record()``.

        Args:
            batch_size: the gradients are multiplied by ``rescale_grad / batch_size``; pass 1
                when the loss is already a mean.
            ignore_stale_grad: skip (instead of refusing) parameters whose gradient was not
                written by ``backward`` since the last step.
        """
        self._update(batch_size, ignore_stale_grad)

    def allreduce_grads(self) -> None:
        """Sum gradients over devices: a no-op with one device (kept for MXNet code that
        calls ``allreduce_grads()`` then ``update()``, e.g. to clip gradients in between)."""

    def update(self, batch_size: int | float, ignore_stale_grad: bool = False) -> None:
        """The update part of :meth:`step` (after :meth:`allreduce_grads`)."""
        self._update(batch_size, ignore_stale_grad)

    def _collect(self, ignore_stale_grad: bool) -> list:
        """(index, parameter, data, grad) of every parameter to update; raises on a stale
        gradient before anything changes."""
        todo = []
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            datas = p.list_data()
            grads = p.list_grad()
            if not ignore_stale_grad:
                for d in datas:
                    if not _is_fresh(d):
                        raise StaleGradientError(
                            f"Gradient of Parameter `{p.name}` on context {d.context} has not "
                            "been updated by backward since last `step`. This could mean a bug "
                            "in your model that made it only use a subset of the Parameters "
                            "(Blocks) for this iteration. If you are intentionally only using "
                            "a subset, call step with ignore_stale_grad=True to suppress this "
                            "warning and skip updating of Parameters with stale gradient"
                        )
            for d, g in zip(datas, grads):
                if not ignore_stale_grad or _is_fresh(d):
                    todo.append((i, p, d, g))
        return todo

    def _update(self, batch_size: int | float, ignore_stale_grad: bool) -> None:
        if not batch_size:
            raise ValueError(
                f"Trainer.step: batch_size must be a positive number, got {batch_size!r}"
            )
        optim = self._optimizer
        updater = self._updaters[0]
        todo = self._collect(ignore_stale_grad)
        if self._check_finite:
            bad = [p.name for _, p, _, g in todo if not np.isfinite(_raw(g)).all()]
            if bad:
                raise NonFiniteGradientError(
                    f"Trainer.step: the gradient of parameter(s) {', '.join(bad)} holds NaN or "
                    "infinity; nothing was updated. Fix: lower the learning rate, clip "
                    "gradients (optimizer_params={'clip_gradient': ...}) or check the loss "
                    "for log(0) / division by zero."
                )
        snap = optim._snapshot()
        optim.rescale_grad = self._scale / batch_size
        pure = optim._has_pure_step()
        new_states: dict = {}
        results: list = []
        backups: list = []
        current = None
        try:
            for i, p, d, g in todo:
                current = p
                state = updater.states.get(i, new_states.get(i))
                if i not in updater.states and i not in new_states:
                    state = optim.create_state_multi_precision(i, d)
                    new_states[i] = state
                if pure:
                    results.append((d, state, optim._prepare(i, d, g, state)))
                else:
                    # an optimizer that updates in place itself: keep copies to undo
                    arrays = [d, *opt.optimizer._leaves(state)]
                    backups.append([(a, _raw(a).copy()) for a in arrays])
                    optim.update_multi_precision(i, d, g, state)
        except BaseException as e:
            optim._restore(snap)
            for saved in reversed(backups):
                for a, val in saved:
                    opt.optimizer._write(a, val)
            if current is not None and hasattr(e, "add_note"):
                e.add_note(
                    f"Trainer.step: updating parameter '{current.name}' failed; no "
                    "parameter or optimizer state was changed."
                )
            raise
        for d, state, res in results:
            optim._commit(d, state, res)
        updater.states.update(new_states)
        for i in new_states:
            updater.states_synced[i] = True
        for _, _, d, _ in todo:
            _set_stale(d)

    # ---- states -------------------------------------------------------------------------
    def save_states(self, fname: str | os.PathLike) -> None:
        """Save the optimizer's settings, counters and states (momentum etc.) atomically.

        The file is an MXNet NDArray-list file holding the states plus a JSON description;
        it never contains pickled objects. ``lr_mult``/``wd_mult`` of the Parameters are not
        saved (they belong to the Parameters), as in MXNet.
        """
        meta = {
            "optimizer_config": self._optimizer._get_config(),
            "params": [
                {"name": p.name, "shape": list(p.shape) if p.shape else None} for p in self._params
            ],
        }
        serialization.save_states(fname, meta, self._updaters[0].states)

    def load_states(self, fname: str | os.PathLike) -> None:
        """Load what :meth:`save_states` wrote: optimizer settings, counters and states.

        Raises:
            ParamsFileError: the file is not a trainer-states file or is damaged.
            TapegradError: the states do not fit this Trainer's parameters (the message
                names the parameter and both shapes).
        """
        path = os.fspath(fname)
        meta, states = serialization.load_states(path)
        saved = meta.get("params") or []
        if saved and len(saved) != len(self._params):
            raise TapegradError(
                f"{path}: the states are for {len(saved)} parameters but this Trainer has "
                f"{len(self._params)}. Fix: load them into a Trainer over the same network."
            )
        for idx in states:
            if not 0 <= idx < len(self._params):
                raise TapegradError(
                    f"{path}: state index {idx} is out of range for "
                    f"{len(self._params)} parameters. Fix: load the states into "
                    "a Trainer over the same network."
                )
            p = self._params[idx]
            want = tuple(saved[idx]["shape"]) if saved and saved[idx].get("shape") else None
            have = tuple(p.shape) if p.shape else None
            if want is not None and have is not None and want != have:
                raise TapegradError(
                    f"{path}: the optimizer state of parameter '{p.name}' (index {idx}) was "
                    f"saved for shape {want}, but the parameter has shape {have}. Fix: load "
                    "the states into a Trainer over the same network."
                )
        cfg = meta.get("optimizer_config")
        new_opt = self._optimizer
        if cfg is not None:
            new_opt = opt.optimizer._optimizer_from_config(cfg, self._optimizer)
        new_opt.param_dict = dict(enumerate(self._params))
        self._optimizer = new_opt
        upd = self._updaters[0]
        upd.optimizer = new_opt
        upd.states = states
        upd.states_synced = dict.fromkeys(states, True)
