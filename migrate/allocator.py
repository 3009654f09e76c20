"""Let the C allocator keep freed memory for reuse instead of handing it back at once.

Steps read and write whole files (tens of MB each on a big repo), one after another, in
forked workers. With glibc's defaults each such buffer gets fresh pages from the kernel,
and every fresh page costs a fault and a zeroing: on the large benchmark workload (250,000
records in 12 files) that was half of `migrate up`'s 460,000 page faults and 0.4 s of
system time. Raising the mmap threshold (buffers up to 32 MB come from the heap) and the
trim threshold (freed heap stays mapped) lets the next file reuse the same pages.

Peak memory does not change: the peak is the largest file's working set either way, and
the process exits after one command (docs/PERFORMANCE.md). Other C libraries (musl,
macOS) keep their defaults.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_SETTINGS = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))


def keep_freed_memory() -> bool:
    """Apply the settings above; True when the C library took all of them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in _SETTINGS)
