"""Host memory across training steps: keep what the next step will ask for again.

Every training step allocates and frees the same buffers (activations, gradients, convolution
workspaces). glibc's malloc gives large ones straight back to the kernel: a block above the mmap
threshold is its own mapping, unmapped when freed, and the heap's free top is trimmed above twice
that threshold. The threshold starts at 128 KiB and rises only after the process has freed a block
that large, so whether a training process pays for it depends on what it happened to free before:
``ganzoo train dcgan --preset digits`` took about 1,500 page faults a step (the same memory faulted
in again, page by page, every step) and ran 5-15% slower than a plain loop whose data preparation
had happened to free a 16 MB tensor (33 faults a step). See docs/benchmarks.md.

``keep_freed_memory`` sets the threshold to glibc's own ceiling (32 MiB on 64-bit systems) and turns
trimming off, so a step reuses the previous step's memory: the process keeps its peak step's memory,
which the next step needs anyway. PyTorch's CUDA allocator keeps device memory the same way; jemalloc
and tcmalloc, which PyTorch recommends for CPU training, do so too. A process whose malloc was set up
by its user (any ``MALLOC_*`` variable, or an allocator in ``LD_PRELOAD``) is left as it is.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_CEILING = 32 * 2**20  # the largest value glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
NEVER_TRIM = -1  # read by glibc as SIZE_MAX


def user_configured_malloc(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    return "LD_PRELOAD" in environ or any(key.startswith("MALLOC_") for key in environ)


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse; True when it took effect (Linux with glibc)."""
    if not sys.platform.startswith("linux") or user_configured_malloc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; musl's is a stub that returns 0.
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_CEILING) == 1 and mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1
