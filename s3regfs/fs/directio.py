"""Writes that bypass the page cache (``O_DIRECT``), for spill files and the data cache.

Owns the page-aligned copy buffers that ``O_DIRECT`` needs and the write loop; data that is
page-aligned already (a body the s3 driver received into :mod:`s3regfs.alignedmem`) is written
in place, without a copy.  Filling
the page cache with every byte written cost up to 1.5 CPU-seconds per GiB on the benchmark
machine, direct writes 0.2 (docs/PERFORMANCE.md).  The callers decide when a write is
eligible (page-aligned offset and length) and write what a direct write leaves with
ordinary writes.

The buffers are a bounded pool, not one per thread: ``POOL`` anonymous ``mmap`` s of
``BUFFER`` bytes each, so 64 FUSE threads writing at once hold at most ``POOL × BUFFER``
(8 MiB) here, not 64 MiB (docs/SEMANTICS.md "Memory").  A write that finds every buffer
taken does not wait: it writes nothing directly and its caller writes it through the page
cache, which costs CPU, never memory or a stall.
"""

from __future__ import annotations

import mmap
import os
import threading

from s3regfs import alignedmem

PAGE = 4096
BUFFER = 1024 * 1024
"""Bytes of one aligned buffer (FUSE's largest write); longer writes go through it in pieces."""
POOL = 8
"""Aligned buffers at most, shared by every thread."""

_lock = threading.Lock()
_free: list[mmap.mmap] = []
_made = 0


def aligned(offset: int, size: int) -> bool:
    """Whether a write of ``size`` bytes at ``offset`` can go through ``O_DIRECT``."""
    return size > 0 and not (offset | size) % PAGE


def _take() -> mmap.mmap | None:
    global _made
    with _lock:
        if _free:
            return _free.pop()
        if _made >= POOL:
            return None
        _made += 1
    return mmap.mmap(-1, BUFFER)


def _give(buf: mmap.mmap) -> None:
    with _lock:
        _free.append(buf)


def pwrite(fd: int, data: memoryview, offset: int) -> int:
    """Write ``data`` at ``offset`` of ``fd`` (opened with ``O_DIRECT``): in place when it is
    page-aligned memory, else through an aligned copy.

    Returns the bytes written: all of them, unless the kernel wrote less and left the next
    offset unaligned, or no aligned buffer was free (0); the caller writes the rest
    without ``O_DIRECT``.
    """
    start = alignedmem.address(data)
    if start is not None and not start % PAGE:
        return _write_aligned(fd, data, offset)
    buf = _take()
    if buf is None:
        return 0
    size = len(data)
    done = 0
    try:
        with memoryview(buf) as whole:
            while done < size:
                piece = min(size - done, BUFFER)
                whole[:piece] = data[done:done + piece]
                written = _write_aligned(fd, whole[:piece], offset + done)
                if written < piece:
                    return done + written
                done += piece
        return done
    finally:
        _give(buf)


def _write_aligned(fd: int, view: memoryview, offset: int) -> int:
    """``pwrite`` all of page-aligned ``view``; stops early when the kernel wrote nothing or left the
    next offset unaligned.  Returns the bytes written."""
    done = 0
    while done < len(view):
        wrote = os.pwrite(fd, view[done:], offset + done)
        done += wrote
        if wrote == 0 or done % PAGE:
            break
    return done


def buffers_made() -> int:
    """Aligned buffers allocated so far (at most ``POOL``)."""
    with _lock:
        return _made
