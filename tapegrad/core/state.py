"""Per-thread switches: recording, training, and the active forward-mode levels.

MXNet keeps these per thread, and so does tapegrad: a thread inside ``autograd.record()``
does not make another thread record. Reading a thread-local attribute costs about 70 ns, so
the hot paths (a primitive's call, ``record()``, the backward pass) fetch this thread's
:class:`Flags` once, ``STATE.flags``, and use its plain attributes; ``STATE.recording``,
``.training`` and ``.levels`` read and write the same flags for the rest of the code.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["STATE", "Flags", "recording"]


class Flags:
    """One thread's switches: recording, training, the active forward-mode levels, and the
    tracer when a function is being traced for compilation (``tapegrad.trace``)."""

    __slots__ = ("recording", "training", "levels", "tracing")

    def __init__(self) -> None:
        self.recording = False
        self.training = False
        self.levels: list[int] = []
        self.tracing: Any = None


def _flag(name: str) -> property:
    return property(lambda s: getattr(s.flags, name), lambda s, v: setattr(s.flags, name, v))


class _State(threading.local):
    def __init__(self) -> None:
        self.flags = Flags()

    recording = _flag("recording")
    training = _flag("training")
    levels = _flag("levels")


#: This thread's switches (``STATE.flags`` on hot paths).
STATE = _State()


class recording:
    """Context manager that records on this thread inside (``recording(False)``: does not),
    restoring the previous switch on exit, errors included.

    >>> from tapegrad.core.state import STATE, recording
    >>> with recording():
    ...     STATE.recording
    True
    """

    __slots__ = ("_on", "_old", "_flags")

    def __init__(self, on: bool = True) -> None:
        self._on = on

    def __enter__(self) -> recording:
        f = self._flags = STATE.flags
        self._old = f.recording
        f.recording = self._on
        return self

    def __exit__(self, *exc: Any) -> None:
        self._flags.recording = self._old
