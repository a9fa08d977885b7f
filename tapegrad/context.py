"""Devices (``mx.context``). Only the CPU (NumPy) exists today; ``gpu()`` contexts can be
named (GPU-choosing code runs) but arrays cannot be placed on them.

MXNet code that picks a device works unchanged and runs on the CPU:

>>> import tapegrad as mx
>>> ctx = mx.gpu() if mx.context.num_gpus() > 0 else mx.cpu()
>>> ctx
cpu(0)
>>> with mx.cpu(1):
...     mx.current_context()
cpu(1)
>>> mx.current_context()
cpu(0)
"""

from __future__ import annotations

import threading
import warnings

__all__ = [
    "Context",
    "cpu",
    "gpu",
    "cpu_pinned",
    "current_context",
    "num_gpus",
    "gpu_memory_info",
    "gpu_error",
]


class _DefaultCtx(threading.local):
    """The default context of this thread (MXNet's ``Context._default_ctx``)."""

    value: Context | None = None


class Context:
    """A device: ``Context('cpu', 0)``, as in MXNet.

    Used as a context manager (``with mx.cpu(): ...``) it is the default context of new
    arrays in this thread for the duration of the block; nested and re-entered blocks each
    restore what was there before.

    >>> import tapegrad as mx
    >>> mx.Context('cpu', 0) == mx.cpu(), mx.Context(mx.gpu(1))
    (True, gpu(1))
    """

    __slots__ = ("device_typeid", "device_id", "_old_ctx")
    _default_ctx = _DefaultCtx()
    devtype2str = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
    devstr2type = {"cpu": 1, "gpu": 2, "cpu_pinned": 3, "cpu_shared": 5}

    def __init__(self, device_type: str | Context = "cpu", device_id: int = 0) -> None:
        if isinstance(device_type, Context):
            self.device_typeid = device_type.device_typeid
            self.device_id = device_type.device_id
        else:
            typeid = Context.devstr2type.get(device_type) if isinstance(device_type, str) else None
            if typeid is None:
                raise ValueError(
                    f"Context: unknown device type {device_type!r}. Fix: use 'cpu' or 'gpu' "
                    "(or mx.cpu() / mx.gpu())."
                )
            self.device_typeid = typeid
            self.device_id = device_id
        self._old_ctx: list = []

    @property
    def device_type(self) -> str:
        """``'cpu'``, ``'gpu'``, ``'cpu_pinned'`` or ``'cpu_shared'``."""
        return Context.devtype2str[self.device_typeid]

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Context)
            and self.device_typeid == other.device_typeid
            and self.device_id == other.device_id
        )

    def __hash__(self) -> int:
        return hash((self.device_typeid, self.device_id))

    def __enter__(self) -> Context:
        # a stack, so that one Context object can be entered again inside its own block
        self._old_ctx.append(Context._default_ctx.value)
        Context._default_ctx.value = self
        return self

    def __exit__(self, *exc: object) -> None:
        Context._default_ctx.value = self._old_ctx.pop()

    def empty_cache(self) -> None:
        """Release cached device memory: nothing to do on the CPU."""

    @classmethod
    def _get_default(cls) -> Context:
        return cls._default_ctx.value or _CPU


def _deprecated_default_ctx(cls: type) -> Context:
    warnings.warn(
        "Context.default_ctx has been deprecated. Please use Context.current_context() "
        "instead. Please use test_utils.set_default_context to set a default context",
        DeprecationWarning,
        stacklevel=3,
    )
    return Context._get_default()


class _DefaultCtxProperty:
    """``Context.default_ctx`` (deprecated in MXNet, still read by old scripts)."""

    def __get__(self, obj: object, cls: type) -> Context:
        return _deprecated_default_ctx(cls)


Context.default_ctx = _DefaultCtxProperty()  # type: ignore[attr-defined]


def cpu(device_id: int = 0) -> Context:
    """The CPU context (NumPy arrays)."""
    return Context("cpu", device_id)


def cpu_pinned(device_id: int = 0) -> Context:
    """MXNet's pinned-memory CPU context; the same memory as the CPU here."""
    return Context("cpu_pinned", device_id)


def gpu(device_id: int = 0) -> Context:
    """A GPU context. It can be named and compared, but arrays cannot be created on it
    yet (that raises an ``MXNetError``): check ``num_gpus()`` first."""
    return Context("gpu", device_id)


def num_gpus() -> int:
    """Number of usable GPUs: 0 until a GPU backend lands."""
    return 0


def gpu_memory_info(device_id: int = 0) -> tuple[int, int]:
    """``(free, total)`` bytes of GPU ``device_id``: there is none, so this raises."""
    from .base import TapegradError

    raise TapegradError(
        f"gpu_memory_info({device_id}): tapegrad has no GPU backend, so there is no GPU "
        "memory to query. Fix: check mx.context.num_gpus() > 0 first."
    )


def gpu_error(where: str, ctx: Context) -> Exception:
    """The error for placing an array on a GPU: there is none (MXNet without a GPU fails
    there too, with a CUDA error)."""
    from .base import TapegradError

    return TapegradError(
        f"{where}: cannot place an array on {ctx}: tapegrad computes on the CPU (NumPy) and has "
        "no GPU backend. Fix: use mx.cpu(), or choose the context with "
        "mx.gpu() if mx.context.num_gpus() > 0 else mx.cpu()."
    )


def current_context() -> Context:
    """The default context of new arrays in this thread (``cpu(0)`` unless changed with
    ``with ctx:``)."""
    return Context._default_ctx.value or _CPU


_CPU = Context("cpu", 0)
