"""``gluon.Trainer``: applies an optimizer to a set of Parameters (MXNet 1.9 behaviour).

A step is a transaction: every parameter's new value and optimizer state are computed first
and written only when all of them succeeded. A step that raises (an error in an update, a
stale gradient, or a non-finite gradient with ``check_finite=True``) leaves every parameter,
every optimizer state and the optimizer's counters exactly as they were. An exception that
arrives while the results are written (a KeyboardInterrupt) does not stop the writing: the
step is completed, then the exception is raised. So after any exception a step either
happened completely or not at all.

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

import math
import numbers
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import ndarray as nd
from .. import optimizer as opt
from .. import serialization
from ..base import TapegradError
from ..optimizer import optimizer as _opt
from ..serialization import states_error

__all__ = ["Trainer", "TrainerError", "StaleGradientError", "NonFiniteGradientError"]


class TrainerError(TapegradError, ValueError):
    """A bad argument of a Trainer method, or trainer states that do not fit its parameters
    (the message names the parameter and the fix)."""


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


_AUTO_NAME = re.compile(r"^(.*[^\d])(\d+)$")


def _structural_names(names: list[str]) -> list[str]:
    """Names that do not depend on how many blocks were created before: in each name, every
    automatic part (``dense9``, ``hybridsequential4``) is renumbered in order of first
    appearance among the parts of its kind under the same parent, so the same network built
    again (``dense9``..``dense11`` or ``dense0``..``dense2``) gets the same names, in the
    order the parameters were given (the network's order for ``collect_params()``).

    >>> _structural_names(["dense10_weight", "dense10_bias", "dense9_weight", "dense9_bias"])
    ['dense0_weight', 'dense0_bias', 'dense1_weight', 'dense1_bias']
    """
    seen: dict[tuple, dict[str, int]] = {}
    out = []
    for name in names:
        parts: list[str] = []
        for part in name.split("_"):
            m = _AUTO_NAME.match(part)
            if m:
                table = seen.setdefault((tuple(parts), m.group(1)), {})
                part = f"{m.group(1)}{table.setdefault(m.group(2), len(table))}"
            parts.append(part)
        out.append("_".join(parts))
    return out


def _check_batch_size(batch_size: Any, who: str) -> None:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Real)
        or not math.isfinite(batch_size)
        or batch_size <= 0
    ):
        raise TrainerError(
            f"{who}: batch_size must be a positive finite number, got {batch_size!r} (a NaN "
            "would make every weight NaN, a negative one would climb the loss). Fix: pass "
            "the number of samples in the batch, or 1 when the loss is already a mean."
        )


def _stale_message(p: Any, d: Any) -> str:
    return (
        f"Gradient of Parameter `{p.name}` on context {d.context} has not been updated by "
        "backward since last `step`. This could mean a bug in your model that made it only "
        "use a subset of the Parameters (Blocks) for this iteration. If you are intentionally "
        "only using a subset, call step with ignore_stale_grad=True to suppress this warning "
        "and skip updating of Parameters with stale gradient"
    )


def _in_place_ok(g: Any) -> bool:
    """The gradient's memory can be summed over the ranks in place."""
    d = getattr(g, "_data", None)
    return (
        type(d) is np.ndarray
        and d.flags.writeable
        and d.flags.c_contiguous
        and hasattr(g, "_bump_version")
    )


def _check_finite(pairs: list, where: str) -> None:
    bad = [p.name for p, g in pairs if not np.isfinite(g).all()]
    if bad:
        raise NonFiniteGradientError(
            f"Trainer.step: the gradient of parameter(s) {', '.join(bad)}{where} holds NaN or "
            "infinity; nothing was updated. Fix: lower the learning rate, clip "
            "gradients (optimizer_params={'clip_gradient': ...}) or check the loss "
            "for log(0) / division by zero."
        )


def _make_kvstore(kvstore: Any) -> Any:
    """None for one process; a distributed KVStore for ``'dist_sync'`` & co."""
    if kvstore is None:
        return None
    if getattr(kvstore, "_tapegrad_kvstore", False):
        return kvstore if kvstore.distributed else None
    if not isinstance(kvstore, str):
        raise TypeError(
            f"Trainer: kvstore must be a string, a KVStore or None, got "
            f"{type(kvstore).__name__}. Fix: pass e.g. kvstore='dist_sync'."
        )
    from ..distributed import comm
    from ..distributed.kvstore import LOCAL_TYPES, KVStore

    if kvstore.lower() in LOCAL_TYPES:
        return None
    try:
        return KVStore(kvstore)
    except comm.DistributedUnavailableError as e:
        raise comm.DistributedUnavailableError(
            f"Trainer: kvstore={kvstore!r} trains over several processes, with MPI: {e}"
        ) from None
    except ValueError as e:
        raise TrainerError(f"Trainer: {e}") from None


class Trainer:
    """Applies an :class:`~tapegrad.optimizer.Optimizer` to a set of Parameters.

    Args:
        params: a ParameterDict or dict (its parameters are taken in sorted-name order,
            as MXNet does) or a list of Parameters.
        optimizer: an optimizer name (``'sgd'``, ``'adam'``, ...) or an Optimizer instance.
        optimizer_params: keyword arguments of the optimizer, e.g.
            ``{'learning_rate': 0.1, 'momentum': 0.9}``; must be empty when ``optimizer`` is
            an instance.
        kvstore: ``'device'``/``'local'`` (default; one process), or ``'dist_sync'`` (also
            ``'dist'``, ``'dist_sync_device'``, ``'dist_device_sync'``): gradients are
            **summed** over the processes started by ``tapegrad run`` / ``mpiexec`` before
            every update, as in MXNet 1.9 (a worker's ``step(batch_size)`` rescales the sum by
            ``rescale_grad / batch_size``); ``'horovod'``: averaged, as Horovod does. A
            :class:`tapegrad.distributed.kvstore.KVStore` is accepted too. Needs the ``mpi``
            extra (``pip install 'tapegrad[mpi]'``); see docs/distributed.md.
        compression_params, update_on_kvstore: accepted for MXNet compatibility; every rank
            updates its own copy of the parameters (with the same summed gradients).
        check_finite: tapegrad's addition: refuse a step whose gradients hold NaN or
            infinity (raises :class:`NonFiniteGradientError`, nothing is changed).

    ``step(batch_size)`` rescales gradients by ``rescale_grad / batch_size`` (``rescale_grad``
    from ``optimizer_params``, default 1) before the update, so a loss summed over a batch
    gives a mean-gradient step.

    With a distributed kvstore, a step is a transaction across the ranks too: the ranks agree
    on the batch sizes, the stale gradients, the step count and the finite-gradient check
    before anything changes, and on the success of every rank's computation before any
    rank writes, so no rank updates while another refuses. The parameters are broadcast from
    rank 0 when the Trainer is created (a parameter initialised later, in the first forward
    pass, right after its initialisation). If the ranks pass different batch sizes (a last
    batch that does not split evenly), the sum is rescaled by their mean (``'dist_sync'``)
    or by their total (``'horovod'``), the same number on every rank.
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
        given = params  # the order given (a network's order for collect_params())
        if isinstance(params, Mapping) or (
            hasattr(params, "values") and hasattr(params, "keys") and callable(params.keys)
        ):
            given = [params[k] for k in params.keys()]
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
            self._param2idx[id(p)] = len(self._params)
            self._params.append(p)
            if hasattr(p, "_set_trainer"):
                p._set_trainer(self)
        # structural names (for load_states), from the order the parameters were given
        key_of: dict[int, str] = {}
        uniq = [p for p in given if id(p) in self._param2idx]
        for p, key in zip(uniq, _structural_names([str(p.name) for p in uniq])):
            key_of.setdefault(id(p), key)
        self._keys = []
        for p in self._params:  # two parameters of one name (a list): keep the keys apart
            key = key_of[id(p)]
            while key in self._keys:
                key += "'"
            self._keys.append(key)
        if getattr(type(optimizer), "_tapegrad_average", False):  # DistributedOptimizer
            optimizer = optimizer.optimizer
            if kvstore is None or (isinstance(kvstore, str) and kvstore in ("device", "local")):
                kvstore = "horovod"
        kv = _make_kvstore(kvstore)
        self._compression_params = compression_params
        self._kvstore_params = {"kvstore": kvstore, "update_on_kvstore": update_on_kvstore}
        self._kvstore = kv
        self._update_on_kvstore = False if kv is not None else None
        self._kv_initialized = True
        self._distributed = kv is not None
        self._dist_steps = 0  # steps done, compared across ranks at every step
        self._reduced: Any = None  # after allreduce_grads(): which gradients any rank wrote
        self._layout_cache: Any = None
        self._check_finite = bool(check_finite)
        optimizer_params = optimizer_params if optimizer_params else {}
        self._init_optimizer(optimizer, optimizer_params)
        self._scale = self._optimizer.rescale_grad
        if kv is not None:
            if compression_params:
                kv.set_gradient_compression(compression_params)
            self._dist_setup()

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
        """Nothing to reset: parameters live on each rank, not in the kvstore."""

    def _dist_setup(self) -> None:
        """Every rank starts from rank 0's values: initialised parameters now, deferred ones
        right after their initialisation (collective calls)."""
        from ..distributed import collectives

        ready = [p for p in self._params if collectives._initialised(p)]
        later = [p for p in self._params if not collectives._initialised(p)]
        collectives._broadcast_values(ready, 0, 13, "Trainer (creation)")
        for p in later:
            collectives._hook_deferred(p, 0)

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
        if self._kvstore is not None:
            self._dist_update(batch_size, ignore_stale_grad, reduce=True)
        else:
            self._update(batch_size, ignore_stale_grad)

    def allreduce_grads(self) -> None:
        """Sum gradients over the processes into the gradient buffers (a no-op in one
        process). With :meth:`update` it splits :meth:`step` in two, e.g. to clip the summed
        gradients in between. A collective call with a distributed kvstore."""
        if self._kvstore is None:
            return
        from ..distributed import comm

        entries, grads, fresh = self._dist_entries()
        layout = self._dist_layout(grads) + 3
        comm.agree(3, layout, [self._dist_steps, 0, 0, fresh.count(False), 0])
        any_stale = fresh.count(False) > 0
        flags = np.array(fresh, dtype=np.int32)
        sums, counts = self._kvstore.reducer.sum(
            grads, fresh if any_stale else None, "Trainer.allreduce_grads", counts=flags
        )
        for (_, _, _, g), total in zip(entries, sums):
            _opt._write(g, total)
        self._reduced = counts > 0

    def update(self, batch_size: int | float, ignore_stale_grad: bool = False) -> None:
        """The update part of :meth:`step` (after :meth:`allreduce_grads`)."""
        if self._kvstore is not None:
            self._dist_update(batch_size, ignore_stale_grad, reduce=False)
        else:
            self._update(batch_size, ignore_stale_grad)

    def _collect(self, ignore_stale_grad: bool) -> list:
        """(index, parameter, data, grad) of every parameter to update; raises on a stale
        gradient before anything changes."""
        todo = []
        self._mirrors = {}
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            datas = p.list_data()
            grads = p.list_grad()
            if not ignore_stale_grad:
                for d in datas:
                    if not _is_fresh(d):
                        raise StaleGradientError(_stale_message(p, d))
            pairs = [(d, g) for d, g in zip(datas, grads) if not ignore_stale_grad or _is_fresh(d)]
            if len(datas) > 1 and pairs:
                # copies on several contexts (MXNet's multi-device training): their gradients
                # are summed, one update is computed and written to every copy, as MXNet's
                # kvstore aggregates the devices
                total = _raw(pairs[0][1]).copy()
                for _, g in pairs[1:]:
                    total += _raw(g)
                todo.append((i, p, datas[0], total))
                self._mirrors[id(datas[0])] = datas[1:]
                continue
            todo.extend((i, p, d, g) for d, g in pairs)
        return todo

    def _update(self, batch_size: int | float, ignore_stale_grad: bool) -> None:
        _check_batch_size(batch_size, "Trainer.step")
        todo = self._collect(ignore_stale_grad)
        if self._check_finite:
            _check_finite([(p, _raw(g)) for _, p, _, g in todo], "")
        self._apply(todo, self._scale / batch_size)

    def _apply(self, todo: list, rescale: float, vote: Any = None, on_finish: Any = None) -> None:
        """Phase 1 (compute every new value) and phase 2 (write them) of a step.

        ``vote(error)``, in distributed training, tells the other ranks whether this rank's
        phase 1 succeeded (``error`` is None) and raises if another rank's failed: either
        every rank writes or none does.
        """
        optim = self._optimizer
        updater = self._updaters[0]
        mirrors = getattr(self, "_mirrors", {}) if vote is None else {}
        snap = optim._snapshot()
        new_states: dict = {}
        writes: list = []
        backups: list = []
        current = None
        done = [False]
        voted = [False]  # this rank's vote was cast (it is cast once)
        agreed = [False]  # every rank computed its update: this rank writes, come what may

        def finish() -> None:  # bookkeeping of the write phase; safe to run twice
            updater.states.update(new_states)
            for i in new_states:
                updater.states_synced[i] = True
            for _, _, d, _ in todo:
                _set_stale(d)
                for m in mirrors.get(id(d), ()):
                    _set_stale(m)
            if on_finish is not None:
                on_finish()
            done[0] = True

        try:
            # phase 1: compute every new value (nothing but the counters changes, except
            # for optimizers that update in place, which are undone from copies)
            optim.rescale_grad = rescale
            pure = optim._has_pure_step()
            for i, p, d, g in todo:
                current = p
                state = updater.states.get(i, new_states.get(i))
                if i not in updater.states and i not in new_states:
                    state = optim.create_state_multi_precision(i, d)
                    new_states[i] = state
                if pure:
                    new = optim._writes(d, state, optim._prepare(i, d, g, state))
                    writes.extend(new)
                    for m in mirrors.get(id(d), ()):  # the other contexts' copies
                        writes.extend((m, v) for a, v in new if a is d)
                else:
                    arrays = [d, *_opt._leaves(state)]
                    backups.append([(a, _raw(a).copy()) for a in arrays])
                    if isinstance(g, np.ndarray):  # a gradient summed over ranks or copies
                        g = nd.array(g, dtype=g.dtype)
                    optim.update_multi_precision(i, d, g, state)
                    for m in mirrors.get(id(d), ()):
                        writes.append((m, _raw(d).copy()))
            current = None
            if vote is not None:
                voted[0] = True
                vote(None)
                agreed[0] = True
            # phase 2: write; once it has begun it runs to the end, even when an exception
            # arrives meanwhile (that exception is raised afterwards, with done[0] set)
            _opt._commit_writes(writes, finish, "Trainer.step")
        except BaseException as e:
            if done[0]:
                raise  # the step is complete; the exception arrived while it was written
            if agreed[0]:  # the other ranks write: so does this one, then raises
                _opt._commit_writes(writes, finish, "Trainer.step")
                raise
            try:
                if vote is not None and not voted[0]:
                    voted[0] = True
                    try:
                        vote(e)  # tell the other ranks, which then refuse the step too
                    except Exception:  # noqa: BLE001  (they know now, or they are gone)
                        pass
            finally:
                optim._restore(snap)
                for saved in reversed(backups):
                    for a, val in saved:
                        _opt._write(a, val)
            if current is not None and hasattr(e, "add_note"):
                e.add_note(
                    f"Trainer.step: updating parameter '{current.name}' failed; no "
                    "parameter or optimizer state was changed."
                )
            raise

    # ---- distributed steps --------------------------------------------------------------
    def _dist_entries(self) -> tuple[list, list, list]:
        """(index, parameter, data, grad) of the parameters with gradients, their gradients
        as NumPy arrays, and whether backward wrote each since the last step (this rank)."""
        entries, grads, fresh = [], [], []
        for i, p in enumerate(self._params):
            if p.grad_req == "null":
                continue
            datas, gs = p.list_data(), p.list_grad()
            if len(datas) != 1:
                raise TrainerError(
                    f"Trainer: parameter '{p.name}' lives on {len(datas)} contexts; with "
                    f"kvstore={self._kvstore.type!r} each process holds one copy. Fix: "
                    "initialize the network on one context per process (the default)."
                )
            entries.append((i, p, datas[0], gs[0]))
            grads.append(np.asarray(gs[0]))
            fresh.append(_is_fresh(datas[0]))
        return entries, grads, fresh

    def _dist_layout(self, grads: list) -> float:
        """A number equal on every rank that trains the same network the same way."""
        key = tuple((g.shape, g.dtype.char) for g in grads)
        cached = self._layout_cache
        if cached is None or cached[0] != key:
            from ..distributed import comm

            layout = comm.layout_hash(
                self._kvstore.average,
                [
                    (k, tuple(p.shape or ()), np.dtype(p.dtype).str, p.grad_req)
                    for k, p in zip(self._keys, self._params)
                ],
            )
            cached = self._layout_cache = (key, layout * 16)
        return cached[1]

    def _dist_update(self, batch_size: Any, ignore_stale_grad: bool, reduce: bool) -> None:
        """A step (``reduce``: sum the gradients first) or an update (after
        allreduce_grads) that every rank takes or none does."""
        from ..distributed import comm

        kv = self._kvstore
        who = "Trainer.step" if reduce else "Trainer.update"
        op = 1 if reduce else 2
        bad_batch = None
        try:
            _check_batch_size(batch_size, who)
        except TrainerError as e:
            bad_batch = e
        entries, grads, fresh = self._dist_entries()
        n_stale = fresh.count(False)
        error = None
        if not reduce and self._reduced is None:
            error = TrainerError(
                f"Trainer.update: with kvstore={kv.type!r} the gradients must be summed over "
                "the ranks before the update, or the ranks' parameters drift apart. Fix: call "
                "trainer.allreduce_grads() before trainer.update(), or trainer.step() (both)."
            )
        base = self._dist_layout(grads)
        table = comm.agree(
            op,
            base + op,
            [
                self._dist_steps,
                float("nan") if bad_batch is not None else float(batch_size),
                0.0 if bad_batch is None else 1.0,
                n_stale,
                1.0 if ignore_stale_grad else 0.0,
            ],
            error=error,
        )
        ranks = range(len(table))
        steps = [row[3] for row in table]
        if any(c != steps[0] for c in steps):
            done = ", ".join(f"rank {r}: {int(steps[r])}" for r in ranks)
            raise comm.CollectiveMismatchError(
                f"{who}: the ranks are at different steps of this Trainer (steps done: {done}); "
                "nothing was updated on any rank. Every rank must take the same number of "
                "steps. Fix: give every rank the same number of batches: shard the data with "
                "gluon.data.SplitSampler(len(dataset), num_parts, part_index); its shards "
                "differ by at most one sample, which gives every rank the same number of "
                "batches unless len(dataset) % (num_parts * batch_size) is between 1 and "
                "num_parts - 1 (then pick another batch size)."
            )
        if any(row[7] != table[0][7] for row in table):
            raise comm.CollectiveMismatchError(
                f"{who}: ignore_stale_grad differs between the ranks "
                f"({[bool(row[7]) for row in table]}); nothing was updated on any rank. Fix: "
                "pass the same ignore_stale_grad on every rank."
            )
        bad = [r for r in ranks if table[r][5]]
        if bad:
            if bad_batch is not None:
                raise bad_batch
            raise TrainerError(
                f"{who}: rank(s) {bad} passed an invalid batch_size (see their error); no rank "
                "changed anything. Fix: pass the number of samples in the batch on every rank."
            )
        stale_ranks = [r for r in ranks if table[r][6]]
        if stale_ranks and not ignore_stale_grad:
            if n_stale:
                k = fresh.index(False)
                raise StaleGradientError(
                    _stale_message(entries[k][1], entries[k][2])
                    + f" (rank {comm.rank()}; every rank refused this step)"
                )
            raise StaleGradientError(
                f"{who}: a gradient on rank(s) {stale_ranks} has not been updated by backward "
                "since the last step (see their error); every rank refused this step. If you "
                "are intentionally only using a subset of the Parameters, call step with "
                "ignore_stale_grad=True (a parameter is then updated when any rank wrote its "
                "gradient, with zeros from the others)."
            )
        in_place = False
        if reduce:
            flags = np.array(fresh, dtype=np.int32) if stale_ranks else None
            # 'write' gradients are summed in their own buffers (backward overwrites them
            # next time): no copy of a large gradient; 'add' buffers keep their local sums
            writable = [p.grad_req == "write" and _in_place_ok(g) for _, p, _, g in entries]
            in_place = any(writable)
            arrays = [_raw(g) if w else a for (_, _, _, g), w, a in zip(entries, writable, grads)]
            sums, counts = kv.reducer.sum(
                arrays,
                fresh if n_stale else None,
                who,
                counts=flags,
                key=self._layout_cache[0],
                inplace=writable,
            )
            for (_, _, _, g), w in zip(entries, writable):
                if w:
                    g._bump_version()
            updated = counts > 0 if counts is not None else [True] * len(entries)
        else:
            sums = grads
            updated = self._reduced
        todo = [(i, p, d, sums[k]) for k, (i, p, d, _) in enumerate(entries) if updated[k]]
        steps_before = self._dist_steps
        try:
            if self._check_finite:
                where = f" (summed over {len(steps)} ranks)"
                _check_finite([(p, g) for _, p, _, g in todo], where)
            self._run_dist_apply(todo, table, base, who, steps, kv)
        except BaseException as e:
            if in_place and self._dist_steps == steps_before:
                for _, _, d, _ in entries:  # they hold sums now: a retry needs a backward
                    _set_stale(d)
                if hasattr(e, "add_note"):
                    e.add_note(
                        f"{who}: the gradients were summed over the ranks in place, so they "
                        "are marked stale: run backward again before the next step."
                    )
            raise

    def _run_dist_apply(
        self, todo: list, table: list, base: float, who: str, steps: list, kv: Any
    ) -> None:
        from ..distributed import comm

        ranks = range(len(table))
        total = sum(row[4] for row in table)
        rescale = self._scale / (total if kv.average else total / len(table))

        def vote(error: BaseException | None) -> None:
            result = comm.agree(14, base + 14, [0.0 if error is None else 1.0])
            failed = [r for r in ranks if result[r][3]]
            if failed:
                raise comm.RemoteError(
                    f"{who}: computing the update failed on rank(s) {failed} (see their "
                    "error); no rank changed anything."
                )

        def on_finish() -> None:
            self._dist_steps = int(steps[0]) + 1
            self._reduced = None

        self._apply(todo, rescale, vote=vote, on_finish=on_finish)

    # ---- states -------------------------------------------------------------------------
    def save_states(self, fname: str | os.PathLike) -> None:
        """Save the optimizer's settings, counters and states (momentum etc.) atomically.

        The file is an MXNet NDArray-list file holding the states plus a JSON description
        and a checksum; it never contains pickled objects. Each parameter is recorded with
        its structural name (automatic numbers counted from the first block of the network,
        see :meth:`load_states`) and shape. ``lr_mult``/``wd_mult`` of the Parameters are not
        saved (they belong to the Parameters), as in MXNet.

        With a distributed kvstore only rank 0 writes the file (every rank holds the same
        states); the others return at once (this is no collective call, so ``if rank == 0:
        trainer.save_states(...)`` works too). Every rank can then :meth:`load_states` it.
        """
        if self._kvstore is not None:
            from ..distributed import comm

            if not comm.is_writer():
                return
        meta = {
            "optimizer_config": self._optimizer._get_config(),
            "params": [
                {"name": p.name, "key": key, "shape": list(p.shape) if p.shape else None}
                for p, key in zip(self._params, self._keys)
            ],
        }
        serialization.save_states(fname, meta, self._updaters[0].states)

    def load_states(self, fname: str | os.PathLike) -> None:
        """Load what :meth:`save_states` wrote: optimizer settings, counters and states.

        States are matched to parameters by structural name: the parameter's name with its
        automatic numbers counted again from the network's first block, in the order the
        parameters were given (``net.collect_params()`` gives the network's order). So the
        same network built again, whatever automatic names it got (``dense9_weight`` instead
        of ``dense0_weight``), gets its own states back; a network of another structure is
        refused. The file is checked completely (settings, scheduler, the shape and dtype of
        every state against what this Trainer's optimizer uses) before anything changes:
        a failed load leaves the Trainer as it was.

        Raises:
            ParamsFileError: the file is not a trainer-states file, is damaged, or holds an
                invalid entry, such as a state whose shape or dtype is not the one the
                optimizer uses for its parameter (the message names the file and the entry).
            TrainerError: the states do not fit this Trainer's parameters (the message
                names the parameter and what differs).
        """
        path = os.fspath(fname)
        meta, states = serialization.load_states(path)
        to_here = self._match_saved_params(meta.get("params"), states, path)
        states = {to_here[i]: st for i, st in states.items()}
        cfg = meta.get("optimizer_config")
        new_opt = self._optimizer
        if cfg is not None:
            new_opt = _opt._optimizer_from_config(cfg, self._optimizer, path)
            _reindex_optimizer(new_opt, to_here, path)
        new_opt_is_copy = new_opt is not self._optimizer
        saved_index = {j: i for i, j in to_here.items()}
        for j, st in states.items():
            self._check_state(new_opt, j, st, path, f"layout.{saved_index[j]}")
        # everything checked: put it in place
        if new_opt_is_copy:
            new_opt = _opt._install_config(self._optimizer, new_opt)
        new_opt.param_dict = dict(enumerate(self._params))
        self._optimizer = new_opt
        upd = self._updaters[0]
        upd.optimizer = new_opt
        upd.states = states
        upd.states_synced = dict.fromkeys(states, True)

    def _match_saved_params(self, saved: Any, states: dict, path: str) -> dict[int, int]:
        """Saved index -> index here, by structural name (files of format version 1, which
        have none, by name). Raises TrainerError on any difference."""
        n = len(self._params)
        if saved is None:  # states without a parameter list (Updater.get_states)
            for idx in states:
                if idx >= n:
                    raise TrainerError(
                        f"{path}: state index {idx} is out of range for {n} parameters. Fix: "
                        "load the states into a Trainer over the same network."
                    )
            return {i: i for i in range(n)}
        if len(saved) != n:
            raise TrainerError(
                f"{path}: the states are for {len(saved)} parameters but this Trainer has "
                f"{n}. Fix: load them into a Trainer over the same network."
            )
        by_key = "key" in saved[0] if saved else True
        if by_key:
            mine = {k: j for j, k in enumerate(self._keys)}
            what = "structural name"
        else:
            mine = {p.name: j for j, p in enumerate(self._params)}
            what = "name (a file of format version 1 records no structure)"
        to_here: dict[int, int] = {}
        for i, entry in enumerate(saved):
            key = entry.get("key") if by_key else entry["name"]
            if key is None:
                raise states_error(path, f"params[{i}].key", "is missing")
            j = mine.get(key)
            if j is None:
                raise TrainerError(
                    f"{path}: the states of parameter '{entry['name']}' ({what} '{key}') have "
                    f"no parameter here; this Trainer's parameters are "
                    f"{', '.join(repr(k) for k in mine)}. Fix: load the states into a Trainer "
                    "over the same network, built the same way, with its parameters given in "
                    "the same order (net.collect_params())."
                )
            if j in to_here.values():
                raise states_error(path, f"params[{i}]", f"{what} '{key}' appears twice")
            p = self._params[j]
            want = tuple(entry["shape"]) if entry.get("shape") else None
            have = tuple(p.shape) if p.shape else None
            if want is not None and have is not None and want != have:
                raise TrainerError(
                    f"{path}: the optimizer state of parameter '{p.name}' ({what} '{key}') "
                    f"was saved for shape {want}, but the parameter has shape {have}. Fix: "
                    "load the states into a Trainer over the same network."
                )
            to_here[i] = j
        for idx in states:
            if idx not in to_here:
                raise states_error(path, f"layout.{idx}", f"is no parameter index (0..{n - 1})")
        return to_here

    def _check_state(self, optim: Any, i: int, state: Any, path: str, entry: str) -> None:
        """A loaded state must have the structure, shapes and dtypes of the state the
        optimizer creates for the parameter (when its data exists already)."""
        p = self._params[i]
        try:
            weight = p.list_data()[0]
        except Exception:  # noqa: BLE001  (not initialized yet: nothing to compare with)
            return
        template = optim.create_state_multi_precision(i, weight)
        problem = _state_mismatch(template, state, "")
        if problem:
            raise states_error(
                path,
                entry,
                f"the optimizer state of parameter '{p.name}' does not fit "
                f"{type(optim).__name__}: {problem}",
                "load states saved by a Trainer with the same optimizer settings over the same "
                "network (and dtypes), or save them again",
            )


def _state_mismatch(want: Any, got: Any, where: str) -> str:
    """What differs between the state an optimizer creates and a loaded one ('' if none)."""
    at = f" at {where}" if where else ""
    if want is None or got is None:
        return (
            ""
            if want is None and got is None
            else (
                f"expected {'no state' if want is None else 'a state'}{at}, the file has "
                f"{'none' if got is None else 'one'}"
            )
        )
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            n = len(got) if isinstance(got, (tuple, list)) else 1
            return f"expected {len(want)} state arrays{at}, the file has {n}"
        for k, (w, g) in enumerate(zip(want, got)):
            problem = _state_mismatch(w, g, f"{where}[{k}]")
            if problem:
                return problem
        return ""
    if hasattr(want, "shape"):
        if not hasattr(got, "shape"):
            return f"expected an array{at}, the file has {got!r:.40}"
        if tuple(got.shape) != tuple(want.shape) or np.dtype(got.dtype) != np.dtype(want.dtype):
            return (
                f"expected shape {tuple(want.shape)} and dtype {np.dtype(want.dtype)}{at}, "
                f"the file has shape {tuple(got.shape)} and dtype {np.dtype(got.dtype)}"
            )
        return ""
    if type(want) is not type(got):
        return f"expected a {type(want).__name__}{at}, the file has {got!r:.40}"
    return ""


def _reindex_optimizer(optim: Any, to_here: dict[int, int], path: str) -> None:
    """Move the per-weight entries of a freshly configured optimizer from saved indices to
    this Trainer's indices."""

    def move(table: dict, entry: str) -> dict:
        out = {}
        for k, v in table.items():
            if isinstance(k, int):
                if k not in to_here:
                    raise states_error(path, entry, f"refers to weight {k}, which is not saved")
                k = to_here[k]
            out[k] = v
        return out

    base = "optimizer_config"
    optim._all_index_update_counts = {
        dev: move(c, f"{base}.counts[{dev}]") for dev, c in optim._all_index_update_counts.items()
    }
    optim._index_update_count = optim._all_index_update_counts.setdefault(0, {})
    optim.idx2name = move(optim.idx2name, f"{base}.idx2name")
    optim.lr_mult = move(optim.lr_mult, f"{base}.lr_mult")
    optim.wd_mult = move(optim.wd_mult, f"{base}.wd_mult")
