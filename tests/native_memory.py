"""Native memory in use, for tests of what grpc's C core allocates and frees.

RSS moves in pages and with the allocator's caching, and `tracemalloc` sees only Python's own
allocations. glibc's `mallinfo2()` counts the bytes `malloc` has handed out and not yet had back,
over all arenas (grpc's threads allocate in their own): a leak of ~100 bytes per call shows over
a few thousand calls. CPython's small objects come from its own arenas, not from `malloc`, so
Python garbage barely moves it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

import pytest

__all__ = ["malloc_in_use"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use in malloc's arenas
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    function = getattr(libc, "mallinfo2", None)  # glibc 2.33 and later
    if function is None:
        return None
    function.restype = _MallInfo2
    function.argtypes = []
    result: Callable[[], _MallInfo2] = function
    return result


_MALLINFO2 = _mallinfo2()


def malloc_in_use() -> int:
    """Bytes `malloc` has handed out (mmapped blocks included), after a full garbage collection;
    skips the test where the C library has no `mallinfo2` (musl, macOS)."""
    if _MALLINFO2 is None:
        pytest.skip("needs glibc's mallinfo2 to count native memory")
    gc.collect()
    info = _MALLINFO2()
    return int(info.uordblks + info.hblkhd)
