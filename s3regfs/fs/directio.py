"""Writes that bypass the page cache (``O_DIRECT``), for spill files and the data cache.

Owns the page-aligned copy buffer (one per thread, an anonymous ``mmap``) that ``O_DIRECT``
needs, and the write loop.  Filling the page cache with every byte written cost up to 1.5
CPU-seconds per GiB on the benchmark machine, direct writes 0.2 (docs/PERFORMANCE.md).  The
callers decide when a write is eligible (page-aligned offset and length) and fall back to
ordinary writes for what a direct write leaves.
"""

from __future__ import annotations

import mmap
import os
import threading

PAGE = 4096
_buffers = threading.local()


def aligned(offset: int, size: int) -> bool:
    """Whether a write of ``size`` bytes at ``offset`` can go through ``O_DIRECT``."""
    return size > 0 and not (offset | size) % PAGE


def pwrite(fd: int, data: memoryview, offset: int) -> int:
    """Write ``data`` at ``offset`` of ``fd`` (opened with ``O_DIRECT``) through an aligned copy.

    Returns the bytes written: all of them, unless the kernel wrote less and left the next
    offset unaligned (the caller writes the rest without ``O_DIRECT``).
    """
    size = len(data)
    buf = getattr(_buffers, "buf", None)
    if buf is None or len(buf) < size:
        buf = _buffers.buf = mmap.mmap(-1, max(size, 1024 * 1024))
    whole = memoryview(buf)[:size]
    try:
        whole[:] = data
        done = 0
        while done < size:
            written = os.pwrite(fd, whole[done:], offset + done)
            done += written
            if written == 0 or done % PAGE:
                break
        return done
    finally:
        whole.release()
