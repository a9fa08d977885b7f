"""Keep freed NumPy temporaries in the process (glibc malloc settings).

A training step of a network allocates many temporaries of a few hundred kilobytes (a
(1024, 64) float32 array is 256 KB) and frees them all at the end of the step. With glibc's
default settings, blocks above the (dynamic) mmap threshold are mapped and unmapped on every
allocation, and the top of the heap is returned to the operating system whenever more than
the trim threshold is free, so the next step page-faults the same memory back in, zeroing it.
On workload W5 (the Poisson PINN step, 2 cores) that doubles the time of a step:
4.7-5.9 ms with the defaults, 2.4 ms with :func:`tune` (``docs/sciml.md``).

:func:`tune` sets a fixed mmap threshold (32 MiB) and a high trim threshold (256 MiB): freed
blocks are reused by the next step instead. This is process-wide; ``import tapegrad`` calls it
once (up to 256 MiB of freed memory then stays with the process,
as with other frameworks' caching allocators). It does nothing on systems without glibc,
when ``TAPEGRAD_MALLOC=0``, or when the user set ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` (their choice wins).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["tune"]

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3
_DONE: list = []


def tune(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Set glibc's mmap and trim thresholds (once per process); True if they were set."""
    if _DONE:
        return _DONE[0]
    ok = False
    env = os.environ
    if env.get("TAPEGRAD_MALLOC", "1") != "0" and not (
        "MALLOC_MMAP_THRESHOLD_" in env or "MALLOC_TRIM_THRESHOLD_" in env
    ):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            # both, in this order: a trim threshold alone would switch off the dynamic mmap
            # threshold and map every block above 128 KB
            ok = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
                mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
            )
    _DONE.append(ok)
    return ok
