"""Page-aligned buffers from the heap: :func:`allocate` and :func:`address`.

Owns the one kind of memory that both a ranged read of the s3 driver and an ``O_DIRECT``
write of the data cache can use without a copy: the s3 driver receives a large body straight
into such a buffer (``s3regfs/driver/s3/reader.py``), and the data cache writes its blocks
from it with ``O_DIRECT`` as they are (``s3regfs/fs/directio.py``), where a ``bytes`` body
had to be copied into an aligned buffer first: that copy was a seventh of the daemon's CPU
per byte of a cold read (docs/PERFORMANCE.md "CPU per byte").

The memory comes from glibc's ``malloc`` (one page more than asked, the buffer starting at the
first page boundary), so it is the heap a mount keeps (``s3regfs/malloctune.py``): no fresh page
faults per buffer, unlike an anonymous ``mmap``.  ``posix_memalign`` is not used: glibc could not
reuse a freed aligned chunk for the next one of the same size, and the heap of a cold 1 GiB read
grew to 640 MiB.  It is given back with ``free`` when the last view of it is gone.  Without glibc,
:func:`allocate` returns ``None`` and callers use ``bytes``.
"""

from __future__ import annotations

import ctypes
import weakref

PAGE = 4096

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(None)
    _malloc = _libc.malloc
    _malloc.argtypes = [ctypes.c_size_t]
    _malloc.restype = ctypes.c_void_p
    _free = _libc.free
    _free.argtypes = [ctypes.c_void_p]
    _free.restype = None
except (OSError, AttributeError):
    _libc = None


def allocate(size: int) -> memoryview | None:
    """A writable, uninitialised, page-aligned buffer of ``size`` bytes (format ``B``), or None.

    The memory lives as long as any view of it (slices included) and is freed after.
    """
    if _libc is None or size <= 0:
        return None
    pointer = _malloc(size + PAGE)  # not posix_memalign: glibc reuses its freed chunks badly
    if not pointer:
        return None
    array = (ctypes.c_ubyte * size).from_address(pointer + -pointer % PAGE)
    weakref.finalize(array, _free, pointer)
    with memoryview(array) as raw:
        return raw.cast("B")


def address(data: bytes | bytearray | memoryview) -> int | None:
    """Where ``data``'s first byte is in memory, for a writable contiguous buffer; else None."""
    if not isinstance(data, memoryview) or data.readonly or not data.c_contiguous or not data.nbytes:
        return None
    return ctypes.addressof(ctypes.c_char.from_buffer(data))
