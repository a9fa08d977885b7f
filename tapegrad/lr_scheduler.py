"""Learning-rate schedules, as MXNet 1.9's ``mx.lr_scheduler``.

A scheduler is called with ``num_update``, the largest number of updates applied to any one
weight so far (the optimizer's ``num_update``), and returns the learning rate to use. Every
scheduler accepts a warmup: for ``num_update < warmup_steps`` the rate goes from
``warmup_begin_lr`` to ``base_lr`` linearly (``warmup_mode='linear'``) or stays at
``warmup_begin_lr`` (``'constant'``).

As in MXNet, an optimizer created with ``lr_scheduler=s`` sets ``s.base_lr`` to its own
``learning_rate``; Poly and Cosine keep decaying from the ``base_lr`` they were built with.

>>> import tapegrad as mx
>>> s = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=1.0)
>>> [s(n) for n in (1, 2, 3, 5)]
[1.0, 1.0, 0.5, 0.25]
"""

from __future__ import annotations

import logging
import math
from math import cos, pi
from typing import Any

__all__ = [
    "LRScheduler",
    "FactorScheduler",
    "MultiFactorScheduler",
    "PolyScheduler",
    "CosineScheduler",
]

# What a saved scheduler's attributes may hold (see LRScheduler._from_state):
#   "lr" a finite number >= 0, "count" an int >= 0, "steps" an int >= 1, "factor" a number in
#   [0, 1], "real" a finite number, "mode" 'linear' or 'constant', "steplist" a non-empty
#   increasing list of ints >= 1.
_KINDS = {
    "lr": "a finite number >= 0",
    "count": "an int >= 0",
    "steps": "an int >= 1",
    "factor": "a number between 0 and 1",
    "real": "a finite number",
    "mode": "'linear' or 'constant'",
    "steplist": "a non-empty increasing list of ints >= 1",
}


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_num(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _fits(kind: str, v: Any) -> bool:
    if kind == "lr":
        return _is_num(v) and v >= 0
    if kind == "count":
        return _is_int(v) and v >= 0
    if kind == "steps":
        return _is_int(v) and v >= 1
    if kind == "factor":
        return _is_num(v) and 0 <= v <= 1
    if kind == "real":
        return _is_num(v)
    if kind == "mode":
        return v in ("linear", "constant")
    if kind == "steplist":
        return (
            isinstance(v, list)
            and len(v) >= 1
            and all(_is_int(x) and x >= 1 for x in v)
            and all(a < b for a, b in zip(v, v[1:]))
        )
    raise AssertionError(kind)


_log = logging.getLogger(__name__)


class LRScheduler:
    """Base class: ``scheduler(num_update) -> learning rate``.

    Args:
        base_lr: the learning rate after warmup.
        warmup_steps: number of updates spent warming up (0: none).
        warmup_begin_lr: the rate at update 0 of the warmup.
        warmup_mode: ``'linear'`` (equal increments) or ``'constant'`` (stay at
            ``warmup_begin_lr``).

    >>> import tapegrad as mx
    >>> s = mx.lr_scheduler.PolyScheduler(max_update=10, base_lr=1.0, warmup_steps=4)
    >>> [round(s(n), 3) for n in (0, 2, 4)]
    [0.0, 0.5, 1.0]
    """

    def __init__(
        self,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        self.base_lr = base_lr
        if not isinstance(warmup_steps, int):
            raise TypeError(
                f"{type(self).__name__}: warmup_steps must be an int, got {warmup_steps!r}"
            )
        self.warmup_steps = warmup_steps
        self.warmup_final_lr = base_lr
        self.warmup_begin_lr = warmup_begin_lr
        if self.warmup_begin_lr > self.warmup_final_lr:
            raise ValueError(
                f"{type(self).__name__}: base_lr ({base_lr}) has to be higher "
                f"than warmup_begin_lr ({warmup_begin_lr})"
            )
        if self.warmup_steps < 0:
            raise ValueError(
                f"{type(self).__name__}: warmup_steps has to be positive or 0, got {warmup_steps}"
            )
        if warmup_mode not in ("linear", "constant"):
            raise ValueError(
                f"{type(self).__name__}: warmup_mode must be 'linear' or "
                f"'constant', got {warmup_mode!r}"
            )
        self.warmup_mode = warmup_mode

    def get_warmup_lr(self, num_update: int) -> float:
        """The learning rate at update ``num_update < warmup_steps``."""
        assert num_update < self.warmup_steps
        if self.warmup_mode == "linear":
            inc = (
                (self.warmup_final_lr - self.warmup_begin_lr)
                * float(num_update)
                / float(self.warmup_steps)
            )
            return self.warmup_begin_lr + inc
        return self.warmup_begin_lr

    def __call__(self, num_update: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(num_update)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_lr={self.base_lr})"

    #: attribute -> kind (see ``_KINDS``) of every attribute a scheduler of this class holds
    _STATE: dict[str, str] = {
        "base_lr": "lr",
        "warmup_steps": "count",
        "warmup_final_lr": "lr",
        "warmup_begin_lr": "lr",
        "warmup_mode": "mode",
    }

    @classmethod
    def _from_state(cls, attrs: Any) -> LRScheduler:
        """A scheduler of this class with the attributes ``attrs`` (from a saved trainer
        state), every one checked first: a value that would make ``__call__`` fail, loop
        forever or give a meaningless rate raises ``ValueError`` naming the attribute."""
        if cls._STATE is LRScheduler._STATE:
            raise ValueError(f"{cls.__name__} cannot be restored from saved states")
        if not isinstance(attrs, dict):
            raise ValueError(f"the attributes are a {type(attrs).__name__}, not a mapping")
        for k in attrs:
            if k not in cls._STATE:
                raise ValueError(f"unexpected attribute {k!r} for a {cls.__name__}")
        for k, kind in cls._STATE.items():
            if k not in attrs:
                raise ValueError(f"attribute {k!r} is missing")
            if not _fits(kind, attrs[k]):
                raise ValueError(f"attribute {k!r} must be {_KINDS[kind]}, got {attrs[k]!r}")
        if attrs["warmup_begin_lr"] > attrs["warmup_final_lr"]:
            raise ValueError("attribute 'warmup_begin_lr' is larger than 'warmup_final_lr'")
        cls._check_state(attrs)
        obj = cls.__new__(cls)
        obj.__dict__.update(attrs)
        return obj

    @classmethod
    def _check_state(cls, attrs: dict) -> None:
        """Checks between attributes (subclasses)."""


class FactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` every ``step`` updates, never below ``stop_factor_lr``:
    ``base_lr * factor ** floor((num_update - 1) / step)``.

    >>> import tapegrad as mx
    >>> s = mx.lr_scheduler.FactorScheduler(step=10, factor=0.1, base_lr=1.0)
    >>> s(10), round(s(11), 6)
    (1.0, 0.1)
    """

    def __init__(
        self,
        step: int,
        factor: float = 1,
        stop_factor_lr: float = 1e-8,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if step < 1:
            raise ValueError(f"FactorScheduler: step must be >= 1, got {step}")
        if factor > 1.0:
            raise ValueError(
                f"FactorScheduler: factor must be <= 1 to reduce the rate, got {factor}"
            )
        self.step = step
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.count = 0

    _STATE = dict(
        LRScheduler._STATE, step="steps", factor="factor", stop_factor_lr="lr", count="count"
    )

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        # a loop, not an if: resuming at a large num_update applies every missed decay
        while num_update > self.count + self.step:
            self.count += self.step
            self.base_lr *= self.factor
            if self.base_lr < self.stop_factor_lr:
                self.base_lr = self.stop_factor_lr
                _log.info(
                    "Update[%d]: now learning rate arrived at %0.5e, will not change in the future",
                    num_update,
                    self.base_lr,
                )
            else:
                _log.info("Update[%d]: Change learning rate to %0.5e", num_update, self.base_lr)
        return self.base_lr


class MultiFactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` each time ``num_update`` passes one of ``step``
    (an increasing list).

    >>> import tapegrad as mx
    >>> s = mx.lr_scheduler.MultiFactorScheduler(step=[2, 4], factor=0.5, base_lr=1.0)
    >>> [s(n) for n in (1, 2, 3, 4, 5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(
        self,
        step: list[int],
        factor: float = 1,
        base_lr: float = 0.01,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if not isinstance(step, list) or len(step) < 1:
            raise ValueError(f"MultiFactorScheduler: step must be a non-empty list, got {step!r}")
        for i, s in enumerate(step):
            if i != 0 and step[i] <= step[i - 1]:
                raise ValueError(f"MultiFactorScheduler: step must be increasing, got {step}")
            if s < 1:
                raise ValueError(f"MultiFactorScheduler: every step must be >= 1, got {step}")
        if factor > 1.0:
            raise ValueError(f"MultiFactorScheduler: factor must be <= 1, got {factor}")
        self.step = step
        self.cur_step_ind = 0
        self.factor = factor
        self.count = 0

    _STATE = dict(
        LRScheduler._STATE, step="steplist", cur_step_ind="count", factor="factor", count="count"
    )

    @classmethod
    def _check_state(cls, attrs: dict) -> None:
        if attrs["cur_step_ind"] > len(attrs["step"]):
            raise ValueError(
                f"attribute 'cur_step_ind' ({attrs['cur_step_ind']}) is past the end of "
                f"'step' ({len(attrs['step'])} entries)"
            )

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        while self.cur_step_ind <= len(self.step) - 1:
            if num_update > self.step[self.cur_step_ind]:
                self.count = self.step[self.cur_step_ind]
                self.cur_step_ind += 1
                self.base_lr *= self.factor
                _log.info("Update[%d]: Change learning rate to %0.5e", num_update, self.base_lr)
            else:
                return self.base_lr
        return self.base_lr


class PolyScheduler(LRScheduler):
    """Polynomial decay after warmup:
    ``final_lr + (base_lr - final_lr) * (1 - (n - warmup_steps) / (max_update -
    warmup_steps)) ** pwr`` for ``n <= max_update``; the last rate after that.

    >>> import tapegrad as mx
    >>> s = mx.lr_scheduler.PolyScheduler(max_update=4, base_lr=1.0, pwr=1)
    >>> [s(n) for n in (0, 2, 4, 9)]
    [1.0, 0.5, 0.0, 0.0]
    """

    def __init__(
        self,
        max_update: int,
        base_lr: float = 0.01,
        pwr: float = 2,
        final_lr: float = 0,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if not isinstance(max_update, int):
            raise TypeError(f"PolyScheduler: max_update must be an int, got {max_update!r}")
        if max_update < 1:
            raise ValueError(f"PolyScheduler: max_update must be >= 1, got {max_update}")
        self.power = pwr
        self.base_lr_orig = self.base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.max_steps = self.max_update - self.warmup_steps

    _STATE = dict(
        LRScheduler._STATE,
        power="real",
        base_lr_orig="lr",
        max_update="steps",
        final_lr="lr",
        max_steps="count",
    )

    @classmethod
    def _check_state(cls, attrs: dict) -> None:
        _check_max_steps(attrs)

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            self.base_lr = self.final_lr + (self.base_lr_orig - self.final_lr) * pow(
                1 - float(num_update - self.warmup_steps) / float(self.max_steps), self.power
            )
        return self.base_lr


class CosineScheduler(LRScheduler):
    """Cosine decay after warmup:
    ``final_lr + (base_lr - final_lr) * (1 + cos(pi * (n - warmup_steps) / (max_update -
    warmup_steps))) / 2`` for ``n <= max_update``; the last rate after that.

    >>> import tapegrad as mx
    >>> s = mx.lr_scheduler.CosineScheduler(max_update=10, base_lr=1.0, final_lr=0.0)
    >>> [round(s(n), 3) for n in (0, 5, 10, 20)]
    [1.0, 0.5, 0.0, 0.0]
    """

    def __init__(
        self,
        max_update: int,
        base_lr: float = 0.01,
        final_lr: float = 0,
        warmup_steps: int = 0,
        warmup_begin_lr: float = 0,
        warmup_mode: str = "linear",
    ) -> None:
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if not isinstance(max_update, int):
            raise TypeError(f"CosineScheduler: max_update must be an int, got {max_update!r}")
        if max_update < 1:
            raise ValueError(f"CosineScheduler: max_update must be >= 1, got {max_update}")
        self.base_lr_orig = base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.max_steps = self.max_update - self.warmup_steps

    _STATE = dict(
        LRScheduler._STATE, base_lr_orig="lr", max_update="steps", final_lr="lr", max_steps="count"
    )

    @classmethod
    def _check_state(cls, attrs: dict) -> None:
        _check_max_steps(attrs)

    def __call__(self, num_update: int) -> float:
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            self.base_lr = (
                self.final_lr
                + (self.base_lr_orig - self.final_lr)
                * (1 + cos(pi * (num_update - self.warmup_steps) / self.max_steps))
                / 2
            )
        return self.base_lr


def _check_max_steps(attrs: dict) -> None:
    if attrs["max_steps"] != attrs["max_update"] - attrs["warmup_steps"]:
        raise ValueError(
            f"attribute 'max_steps' ({attrs['max_steps']}) is not 'max_update' - "
            f"'warmup_steps' ({attrs['max_update']} - {attrs['warmup_steps']})"
        )
