"""Handing freed memory back to the system between large allocations.

glibc's allocator keeps freed heap memory for reuse, and it serves allocations of up to 32 MB
(a decoded 720p frame in float32 is 11 MB) from its heap once a freed mapping of that size has
raised its threshold. Over a long encode the heap then holds many such holes, and the process's
resident memory drifts up with the work done rather than with what is alive. :func:`trim`
returns the free pages to the system (``malloc_trim``); the loops that allocate whole frames
call it once per chunk, which bounds the drift by one chunk's work. Forcing such allocations
into their own mappings instead (``M_MMAP_THRESHOLD``) bounds memory too but made 720p training
steps 2-3.5 times slower (every step's activations freshly mapped and zeroed;
benchmarks/speed/memory_trace.py), so training keeps the default allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_trim = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim = _libc.malloc_trim
        _trim.argtypes = [ctypes.c_size_t]
        _trim.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        _trim = None


def trim() -> None:
    """Return the C heap's free pages to the system; a no-op where the C library cannot."""
    if _trim is not None:
        _trim(0)
