"""Devices. Only the CPU (NumPy) exists today; ``gpu()`` is reserved for a CuPy backend."""

from __future__ import annotations

__all__ = ["Context", "cpu", "gpu", "current_context", "num_gpus"]


class Context:
    """A device: ``Context('cpu', 0)``. Usable as ``with mx.cpu(): ...`` like MXNet.

    >>> import tapegrad as mx
    >>> mx.cpu()
    cpu(0)
    """

    __slots__ = ("device_type", "device_id")
    _default: Context | None = None

    def __init__(self, device_type: str = "cpu", device_id: int = 0):
        if isinstance(device_type, Context):
            device_type, device_id = device_type.device_type, device_type.device_id
        if device_type not in ("cpu", "gpu", "cpu_pinned"):
            raise ValueError(f"Context: unknown device type {device_type!r}; use 'cpu' or 'gpu'")
        self.device_type = device_type
        self.device_id = device_id

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Context)
            and self.device_type == other.device_type
            and self.device_id == other.device_id
        )

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))

    def __enter__(self) -> Context:
        self._old = Context._default
        Context._default = self
        return self

    def __exit__(self, *exc) -> None:
        Context._default = self._old


def cpu(device_id: int = 0) -> Context:
    """The CPU context (NumPy arrays)."""
    return Context("cpu", device_id)


def gpu(device_id: int = 0) -> Context:
    """A GPU context. Arrays on it are not supported yet: creating one raises a clear error."""
    return Context("gpu", device_id)


def num_gpus() -> int:
    """Number of usable GPUs: 0 until the CuPy backend lands."""
    return 0


def current_context() -> Context:
    """The default context of new arrays."""
    return Context._default or _CPU


_CPU = Context("cpu", 0)
