"""glibc malloc tuning of a mounting process: :func:`bound_malloc_retention`, called once at mount start-up.

Owns the one process-wide allocator setting s3regfs makes (``M_ARENA_MAX``), kept out of
the driver so that creating a driver (tests, ``s3regfs check``, ``s3regfs url``) changes
nothing in the process; :meth:`s3regfs.mount._Mount.run` calls it before the storage probe,
the FUSE loop and the driver's thread pools start.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

_MALLOC_TUNED = False
_M_ARENA_MAX = -8  # glibc mallopt parameter
ARENA_MAX = 1


def bound_malloc_retention() -> None:
    """Limit glibc to ``ARENA_MAX`` malloc arena(s) (once per process; a no-op without glibc).

    Part and readahead buffers (8-10 MiB) are allocated from FUSE and pool threads
    alike; with glibc's default of up to 8 arenas per core, each thread's arena keeps
    its freed buffers, so a 1 GiB write peaked at 163-234 MiB RSS (idle daemon: 55 MiB)
    and a cold 1 GiB read at 200-249 MiB.  Two arenas: 134-154 MiB; one: 120-140 MiB,
    at no CPU cost (docs/PERFORMANCE.md).  A fixed 1 MiB mmap threshold reached 111 MiB
    but cost 25% more CPU on writes and 2x on reads (every buffer became fresh page
    faults).  Must run before the daemon's threads allocate: a mount calls it first thing,
    before the FUSE loop and the driver's pools start.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        if libc.mallopt(_M_ARENA_MAX, ARENA_MAX) != 1:
            log.debug("mallopt(M_ARENA_MAX) refused")
    except (OSError, AttributeError) as exc:
        log.debug("glibc mallopt unavailable: %s", exc)
