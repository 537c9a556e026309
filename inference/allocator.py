"""Keep the large blocks that the evidence frees and asks for again at once (glibc's malloc on Linux).

Each chunk of the evidence (25 draws × 100 images of MNIST) allocates and frees the same few blocks of
8 MB (the decoder's logits, the per-pixel log-likelihoods) 40 times per block of images. glibc gives
freed memory at the top of its heap back to the system once more than its trim threshold is free
(by default twice its dynamic mmap threshold, 16 MB here), and the next chunk faults the same pages in
again, zeroed by the kernel: on a 2-core VM, 20 000–120 000 page faults and ~6 % of the evidence's time
for 400 images × K = 1000 (measured with ``getrusage``; 0 faults for the same chunks in a tight loop).
Whether glibc's default trims at all depends on the heap's layout and changes from run to run
(tests/test_allocator.py's reduced chunk: 0 or ~4,000 faults per round); the settings below make it 0 always.

:func:`keep_freed_blocks` sets glibc's mmap threshold to 32 MiB (the most its own dynamic rule moves it
to, so blocks this size stay on the heap as they already do after their first free) and its trim
threshold to 256 MiB (freed memory up to that stays mapped for the next chunk). Peak memory (what the
code holds) is unchanged; the process keeps up to 256 MiB it could have returned. Nothing is done
where the user chose the allocator's settings (``MALLOC_*_`` or ``GLIBC_TUNABLES`` in the environment),
or where the C library is not glibc. Written here because torch has no caching allocator for the CPU
that Python can switch on, and Python's standard library no binding of ``mallopt``.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3    # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                 "GLIBC_TUNABLES")

_done: bool | None = None


def keep_freed_blocks() -> bool:
    """Apply the settings above once per process; True when glibc took them."""
    global _done
    if _done is None:
        _done = _apply()
    return _done


def _apply() -> bool:
    if any(name in os.environ for name in USER_SETTINGS) or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
