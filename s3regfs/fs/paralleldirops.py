"""Parallel lookups and listings in one directory on libfuse before 3.17.

Owns one work-around.  The kernel serialises every LOOKUP and READDIR within a directory
(``fuse_lock_inode``) unless the filesystem answers ``FUSE_INIT`` with ``FUSE_PARALLEL_DIROPS``.
libfuse 3.x sets ``FUSE_CAP_PARALLEL_DIROPS`` in ``conn->want`` by default but, before 3.17
(libfuse commit "Pass FUSE_PARALLEL_DIROPS to kernel"), never copies it into the INIT reply; Debian 12
ships 3.14.  On such a mount one lookup waiting for S3 holds up every lookup and every ``ls`` of
its directory, cached or not (docs/SEMANTICS.md, "Caching and consistency").

:func:`add_to_init_reply` is called from the ``init`` callback, that is on the thread that is
about to send the INIT reply.  It gives the session a custom I/O (``fuse_session_custom_io``,
libfuse ≥ 3.14) whose ``writev`` sets the flag in that one reply and then hands the session
libc's own ``read``/``writev`` (C function pointers: no Python on the request path afterwards).
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

log = logging.getLogger(__name__)

FUSE_PARALLEL_DIROPS = 1 << 18
"""``include/uapi/linux/fuse.h``: the INIT flag (the same bit as libfuse's capability)."""
FIXED_IN = (3, 17)
"""The first libfuse that sends the flag itself."""

_INIT_OUT_FLAGS = 12  # struct fuse_init_out: major, minor, max_readahead, flags (u32 each)

_WRITEV = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
_READ = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _CustomIo(ctypes.Structure):
    """``struct fuse_custom_io`` (libfuse 3.14–3.16)."""

    _fields_ = [
        ("writev", ctypes.c_void_p),
        ("read", ctypes.c_void_p),
        ("splice_receive", ctypes.c_void_p),
        ("splice_send", ctypes.c_void_p),
    ]


_keep: list[Any] = []  # callbacks and structs libfuse points to, alive for the process


def add_to_init_reply(libfuse: Any, fuse_ptr: int, version: tuple[int, int]) -> bool:
    """Make the pending INIT reply ask for parallel directory operations; True when arranged."""
    if version >= FIXED_IN or not hasattr(libfuse, "fuse_session_custom_io"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libfuse.fuse_get_session.restype = ctypes.c_void_p
    libfuse.fuse_get_session.argtypes = [ctypes.c_void_p]
    libfuse.fuse_session_fd.argtypes = [ctypes.c_void_p]
    libfuse.fuse_session_custom_io.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    session = libfuse.fuse_get_session(ctypes.c_void_p(fuse_ptr))
    if not session:
        return False
    fd = libfuse.fuse_session_fd(session)
    plain = _CustomIo(
        ctypes.cast(libc.writev, ctypes.c_void_p).value, ctypes.cast(libc.read, ctypes.c_void_p).value, None, None
    )
    libc_writev = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)(
        ("writev", libc)
    )

    def first_writev(fd_: int, iov: int, count: int, _userdata: int) -> int:
        vectors = ctypes.cast(iov, ctypes.POINTER(_Iovec))
        if count >= 2 and vectors[1].iov_len >= _INIT_OUT_FLAGS + 4:
            flags = ctypes.c_uint32.from_address(vectors[1].iov_base + _INIT_OUT_FLAGS)
            flags.value |= FUSE_PARALLEL_DIROPS
        sent = int(libc_writev(fd_, iov, count))
        if libfuse.fuse_session_custom_io(session, ctypes.byref(plain), fd) != 0:
            log.warning("could not restore libfuse's plain I/O after INIT; requests stay correct but slower")
        return sent

    patched_writev = _WRITEV(first_writev)
    first = _CustomIo(ctypes.cast(patched_writev, ctypes.c_void_p).value, plain.read, None, None)
    _keep.extend([patched_writev, first, plain, libc_writev])
    if libfuse.fuse_session_custom_io(session, ctypes.byref(first), fd) != 0:
        log.warning("libfuse %d.%d: parallel lookups in one directory could not be enabled", *version)
        return False
    return True
