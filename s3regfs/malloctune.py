"""glibc malloc tuning of a mounting process: :func:`bound_malloc_retention`, called once at mount start-up.

Owns the process-wide allocator settings s3regfs makes (``M_ARENA_MAX``, ``M_MMAP_THRESHOLD``,
``M_TRIM_THRESHOLD``), kept out of
the driver so that creating a driver (tests, ``s3regfs check``, ``s3regfs url``) changes
nothing in the process; :meth:`s3regfs.mount._Mount.run` calls it before the storage probe,
the FUSE loop and the driver's thread pools start.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_MALLOC_TUNED = False
_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENA_MAX = 1
MMAP_THRESHOLD = 32 * 1024 * 1024
"""Buffers below this come from the heap (glibc's own ceiling for its adaptive threshold)."""
TRIM_THRESHOLD = 64 * 1024 * 1024
"""Free memory at the top of the heap kept for the next buffers instead of returned to the kernel."""


def bound_malloc_retention() -> None:
    """Limit glibc to ``ARENA_MAX`` malloc arena(s) and keep freed buffers (once per process; no-op without glibc).

    Part and readahead buffers (8-10 MiB) are allocated from FUSE and pool threads
    alike; with glibc's default of up to 8 arenas per core, each thread's arena keeps
    its freed buffers, so a 1 GiB write peaked at 163-234 MiB RSS (idle daemon: 55 MiB)
    and a cold 1 GiB read at 200-249 MiB.  Two arenas: 134-154 MiB; one: 120-140 MiB,
    at no CPU cost (docs/PERFORMANCE.md).  A fixed 1 MiB mmap threshold reached 111 MiB
    but cost 25% more CPU on writes and 2x on reads (every buffer became fresh page
    faults).

    The heap keeps up to ``TRIM_THRESHOLD`` free at its top (glibc's adaptive default: twice
    the largest buffer freed, 32 MiB for the 16 MiB read parts).  With the adaptive rule the
    readahead's parts were given back and faulted in again: a cold 1 GiB read took 73,000 to
    121,000 minor page faults after start-up (zeroing and mapping each new page), against
    about 25,000 with 64 MiB kept; the page faults were a tenth of the daemon's CPU per byte
    (docs/PERFORMANCE.md "CPU per byte").  Setting the trim threshold turns glibc's adaptive mmap
    threshold off, so that is pinned at the ceiling the adaptive rule would reach
    (``MMAP_THRESHOLD``); without it every buffer above 128 KiB is a fresh ``mmap``.

    Must run before the daemon's threads allocate: a mount calls it first thing, before the
    FUSE loop and the driver's pools start.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        for name, param, value in (("M_ARENA_MAX", _M_ARENA_MAX, ARENA_MAX),
                                    ("M_MMAP_THRESHOLD", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                    ("M_TRIM_THRESHOLD", _M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
            if libc.mallopt(param, value) != 1:
                log.debug("mallopt(%s) refused", name)
    except (OSError, AttributeError) as exc:
        log.debug("glibc mallopt unavailable: %s", exc)
