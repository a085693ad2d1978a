"""S3RegOperations: the mfusepy adapter between the kernel and :class:`RegistryFilesystem`.

Owns translation only: each method decodes its arguments, makes one call on
the core, converts the result (``Attr`` → ``stat`` dict, listings with full
attributes) and maps every exception through :func:`s3regfs.fs.errors.to_errno`
into :class:`mfusepy.FuseOSError` (unknown exceptions become ``EIO`` and are
logged with their traceback; nothing reaches mfusepy, which would answer
``EINVAL``).  That one place also tells the ``on_operation`` hook (the mount's
metrics) each operation's name and errno (0 for success).  No driver calls, no caching, no retries, no mount lifecycle: the
``init``/``destroy`` callbacks are handed to hooks that :mod:`s3regfs.mount`
provides, which also calls libfuse through :func:`exit_loop` and :func:`invalidate_paths`.

Also owns :class:`RegistryFUSE`, the small :class:`mfusepy.FUSE` subclass that
fills the gaps of mfusepy 3.1 against libfuse 3:

* ``readdir`` passes full attributes with ``FUSE_FILL_DIR_PLUS`` and real
  offsets, so the kernel's READDIRPLUS gets every entry's attributes and
  ``ls -l``/``find`` cost no per-entry lookup (libfuse 3.14 only forwards the
  attributes of entries given with a non-zero offset);
* ``rename`` passes the ``renameat2`` flags (``RENAME_NOREPLACE``/``EXCHANGE``)
  instead of dropping them;
* ``truncate``, ``chmod``, ``chown`` and ``utimens`` pass the file handle of an ``ftruncate``,
  ``fchmod``, ``fchown`` and ``futimens`` (with ``nullpath_ok``, an unlinked file has no path);
* ``write`` passes a view of libfuse's buffer instead of a copy of it: valid for the call
  only, and the core and every driver copy what they keep (a copy of every write's bytes
  cost 1 MiB per writing thread at the peak, 64 MiB with 64 writers: docs/SEMANTICS.md "Memory");
* ``open`` and ``create`` set libfuse's ``direct_io`` for a handle the core says the kernel must not
  cache pages for (a name whose replaced version other handles still read);
* ``read`` takes a view of the fetched part as well as bytes and copies it once into libfuse's
  buffer (mfusepy's ``memmove`` takes only bytes, which cost a copy of every byte read first);

and keeps one Python thread state per libfuse worker thread (:func:`_pin_thread_state`):
a ctypes callback on a thread Python did not start otherwise creates and destroys a
thread state on every request, a quarter of the per-request cost of a metadata walk
(docs/PERFORMANCE.md).  :mod:`s3regfs.mount` runs libfuse with ``max_idle_threads`` equal to
``max_threads``, so workers are never reaped and at most that many thread states exist.

Importing this module selects libfuse 3 for mfusepy (``FUSE_LIBRARY_NAME``)
unless the environment already chose a library.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, cast

from s3regfs.fs import paralleldirops
from s3regfs.fs.core import Attr, RegistryFilesystem
from s3regfs.fs.errors import to_errno
from s3regfs.fs.statpack import BLOCK_SIZE, UNKNOWN_INO, dot_entry, packed, stat_dict  # noqa: F401 (BLOCK_SIZE, UNKNOWN_INO: the adapter's constants)

if "FUSE_LIBRARY_PATH" not in os.environ:
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # mfusepy reads it at import

import mfusepy  # type: ignore[import-untyped]
from mfusepy import FuseOSError, Operations

log = logging.getLogger(__name__)

FILL_DIR_PLUS = 1 << 1
"""``enum fuse_fill_dir_flags`` FUSE_FILL_DIR_PLUS: the stat passed to the filler is complete."""
CAP_PARALLEL_DIROPS = 1 << 18
"""libfuse 3 ``FUSE_CAP_PARALLEL_DIROPS`` (``fuse_common.h``)."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _errors_to_errno(method: _F) -> _F:
    """Run ``method``; any exception becomes ``FuseOSError(to_errno(exc))``; the hook hears of both."""
    name = method.__name__.removesuffix("_plus")  # readdir_plus is the kernel's READDIR(PLUS)

    @functools.wraps(method)
    def translated(self: S3RegOperations, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the one place errors become errnos
            err = to_errno(exc, f"{method.__name__}{_shown(args)}")
            if self._on_operation is not None:
                self._on_operation(name, err)
            raise FuseOSError(err) from None
        if self._on_operation is not None:
            self._on_operation(name, 0)
        return result

    return cast(_F, translated)


def _shown(args: tuple[Any, ...]) -> str:
    """The arguments of a failed call for its log line (no data buffers)."""
    return "(" + ", ".join(repr(a) if not isinstance(a, (bytes, bytearray)) else f"<{len(a)} bytes>" for a in args) + ")"


_DOT = dot_entry()

Entries = list[tuple[bytes, Any]]
"""A listing as the adapter hands it to libfuse: (encoded name, packed ``c_stat``), ``.`` and ``..`` first."""


class _Listings:
    """Each open directory handle: its path (``nullpath_ok`` gives readdir none) and the listing it
    reads from (taken at offset 0, so rewinddir refreshes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._by_fh: dict[int, Entries] = {}
        self._paths: dict[int, str] = {}

    def open(self, path: str) -> int:
        with self._lock:
            fh = next(self._ids)
            self._by_fh[fh] = []
            self._paths[fh] = path
            return fh

    def path(self, fh: int, given: str | None) -> str:
        with self._lock:
            return given if given is not None else self._paths.get(fh, "/")

    def put(self, fh: int, entries: Entries) -> None:
        with self._lock:
            self._by_fh[fh] = entries

    def get(self, fh: int) -> Entries:
        with self._lock:
            return self._by_fh.get(fh, [])

    def close(self, fh: int) -> None:
        with self._lock:
            self._by_fh.pop(fh, None)
            self._paths.pop(fh, None)


class S3RegOperations(Operations):  # type: ignore[misc]
    """mfusepy callbacks → :class:`RegistryFilesystem` calls (thread-safe: the core is)."""

    use_ns = True

    def __init__(
        self,
        core: RegistryFilesystem,
        *,
        on_init: Callable[[], None] | None = None,
        on_destroy: Callable[[], None] | None = None,
        on_operation: Callable[[str, int], None] | None = None,
        on_listed: Callable[[str, int], None] | None = None,
        on_looked_up: Callable[[str], None] | None = None,
    ) -> None:
        self.core = core
        self._on_init = on_init
        self._on_destroy = on_destroy
        self._on_operation = on_operation  # (operation, errno or 0): quick, never raises
        # the names handed to the kernel (s3regfs.kernelentries): quick, never raise
        self._on_listed = on_listed  # (directory, entries)
        self._on_looked_up = on_looked_up  # (path)
        self._listings = _Listings()

    # -- lifecycle (hooks of s3regfs.mount) --------------------------------------------

    def init_with_config(self, conn: Any, config: Any) -> None:
        """Connection settings (the translation of SEMANTICS.md's promises into libfuse's flags).

        * ``nullpath_ok``: operations on a handle whose name was unlinked get no path (instead of
          libfuse's ``ESTALE``): ``fstat``/``ftruncate``/``fchmod`` of an unlinked open file work;
        * ``FUSE_CAP_PARALLEL_DIROPS``: the kernel does not serialise lookups and listings within
          one directory, so a slow lookup never holds up a cached answer next to it (libfuse before
          3.17 drops the flag from its INIT reply: :mod:`s3regfs.fs.paralleldirops` puts it back).
        """
        if config is not None:
            config.nullpath_ok = 1
        if conn is not None and conn.capable & CAP_PARALLEL_DIROPS:
            conn.want |= CAP_PARALLEL_DIROPS
            fuse = current_fuse()
            libfuse = getattr(mfusepy, "_libfuse", None)
            if fuse is not None and libfuse is not None:
                paralleldirops.add_to_init_reply(libfuse, fuse, libfuse_version())
        if self._on_init is not None:
            self._on_init()

    def destroy(self, path: str) -> None:
        if self._on_destroy is not None:
            self._on_destroy()

    # -- attributes and directories ------------------------------------------------------

    @_errors_to_errno
    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        found = stat_dict(self.core.getattr(path, fh))
        if self._on_looked_up is not None and path is not None:
            self._on_looked_up(path)
        return found

    @_errors_to_errno
    def opendir(self, path: str) -> int:
        return self._listings.open(path)

    @_errors_to_errno
    def readdir_plus(self, path: str | None, offset: int, fh: int) -> Iterator[tuple[bytes, Any]]:
        """The entries of the open directory ``fh`` from ``offset`` on (the next one's offset is its
        index + 1); read from the bucket or the caches at offset 0, so ``rewinddir`` refreshes.
        Lazily: the kernel takes a few dozen per call, and a copy of the rest would make a large
        directory's listing quadratic."""
        if offset == 0:
            directory = self._listings.path(fh, path)
            listing = [(name.encode(), packed(attr)) for name, attr in self.core.readdir(directory)]
            self._listings.put(fh, [(b".", _DOT), (b"..", _DOT), *listing])
            if self._on_listed is not None:
                self._on_listed(directory, len(listing))
        entries = self._listings.get(fh)
        return (entries[i] for i in range(offset, len(entries)))

    # mfusepy installs its READDIR callback only for an Operations object with this name; the
    # callback is RegistryFUSE.readdir_fuse_3, which calls readdir_plus (not mfusepy's dict contract).
    readdir_with_offset = readdir_plus

    @_errors_to_errno
    def releasedir(self, path: str, fh: int) -> int:
        self._listings.close(fh)
        return 0

    @_errors_to_errno
    def mkdir(self, path: str, mode: int) -> int:
        self.core.mkdir(path, mode)
        return 0

    @_errors_to_errno
    def rmdir(self, path: str) -> int:
        self.core.rmdir(path)
        return 0

    @_errors_to_errno
    def statfs(self, path: str) -> dict[str, int]:
        return self.core.statfs()

    # -- files ---------------------------------------------------------------------------

    @_errors_to_errno
    def create(self, path: str, mode: int, flags: int) -> int:
        return self.core.create(path, flags, mode, caller_process())

    @_errors_to_errno
    def open(self, path: str, flags: int) -> int:
        return self.core.open(path, flags, caller_process())

    @_errors_to_errno
    def create_file(self, path: str, mode: int, flags: int) -> tuple[int, bool]:
        """(handle, ``direct_io``): :class:`RegistryFUSE` sets the flag of libfuse's file info."""
        return self.core.create_file(path, flags, mode, caller_process())

    @_errors_to_errno
    def open_file(self, path: str, flags: int) -> tuple[int, bool]:
        """(handle, ``direct_io``): :class:`RegistryFUSE` sets the flag of libfuse's file info."""
        return self.core.open_file(path, flags, caller_process())

    @_errors_to_errno
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes | memoryview:
        return self.core.read(fh, offset, size)

    @_errors_to_errno
    def write(self, path: str, data: bytes | memoryview, offset: int, fh: int) -> int:
        return self.core.write(fh, offset, data)

    @_errors_to_errno
    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        self.core.truncate(path, length, fh)
        return 0

    @_errors_to_errno
    def flush(self, path: str, fh: int) -> int:
        self.core.flush(fh, caller_process())
        return 0

    @_errors_to_errno
    def fsync(self, path: str, datasync: int, fh: int) -> int:
        self.core.fsync(fh, bool(datasync))
        return 0

    @_errors_to_errno
    def release(self, path: str, fh: int) -> int:
        self.core.release(fh)
        return 0

    # -- namespace -----------------------------------------------------------------------

    @_errors_to_errno
    def unlink(self, path: str) -> int:
        self.core.unlink(path)
        return 0

    @_errors_to_errno
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        self.core.rename(old, new, flags)
        return 0

    @_errors_to_errno
    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> int:
        self.core.chmod(path, mode, fh)
        return 0

    @_errors_to_errno
    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> int:
        self.core.chown(path, uid, gid, fh)
        return 0

    @_errors_to_errno
    def utimens(self, path: str | None, times: tuple[int, int] | None = None, fh: int | None = None) -> int:
        seconds = None if times is None else (times[0] / 1e9, times[1] / 1e9)
        self.core.utimens(path, seconds, fh)
        return 0

    # -- extended attributes ---------------------------------------------------------------

    @_errors_to_errno
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        return self.core.getxattr(path, name)

    @_errors_to_errno
    def listxattr(self, path: str) -> list[str]:
        return self.core.listxattr(path)

    @_errors_to_errno
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        self.core.setxattr(path, name, value, options)
        return 0

    @_errors_to_errno
    def removexattr(self, path: str, name: str) -> int:
        self.core.removexattr(path, name)
        return 0


def caller_process() -> int:
    """The process (thread group id) whose request is being served; 0 when unknown.

    FUSE reports the calling *thread*; a multi-threaded writer (the registry, a Go program)
    may open on one thread and close on another, so the thread is mapped to its process.
    """
    libfuse = getattr(mfusepy, "_libfuse", None)
    context = libfuse.fuse_get_context() if libfuse is not None else None
    if not context:
        return 0
    tid = int(context.contents.pid)
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            head = f.read(512)
    except OSError:
        return tid  # the thread is gone or hidden (another pid namespace): its id is all there is
    found = _TGID.search(head)
    return int(found.group(1)) if found else tid


_TGID = re.compile(rb"^Tgid:\s*(\d+)", re.MULTILINE)


def libfuse_version() -> tuple[int, int]:
    """(major, minor) of the libfuse mfusepy loaded."""
    return int(mfusepy.fuse_version_major), int(mfusepy.fuse_version_minor)


def current_fuse() -> int | None:
    """The ``struct fuse *`` of the FUSE callback running in this thread (for :func:`exit_loop`)."""
    libfuse = getattr(mfusepy, "_libfuse", None)
    if libfuse is None:
        return None
    context = libfuse.fuse_get_context()
    return int(context.contents.fuse) if context else None


def exit_loop(fuse: int) -> None:
    """``fuse_exit``: the loop stops at its next request (callable from any thread)."""
    libfuse = getattr(mfusepy, "_libfuse", None)
    if libfuse is not None:
        libfuse.fuse_exit(ctypes.c_void_p(fuse))


def invalidate_paths(fuse: int, paths: Iterable[str]) -> int:
    """``fuse_invalidate_path`` of each path: the kernel drops its attributes (and cached pages).

    For a reload, from a thread that is not serving a FUSE request (the kernel may wait for a
    request on the same inode).  A path libfuse has no node for costs no system call.  Returns
    how many paths the kernel had cached.
    """
    libfuse = getattr(mfusepy, "_libfuse", None)
    invalidate = getattr(libfuse, "fuse_invalidate_path", None)  # libfuse >= 3.1
    if invalidate is None:
        return 0
    invalidate.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    invalidate.restype = ctypes.c_int
    return sum(1 for path in paths if invalidate(fuse, os.fsencode(path)) == 0)


def entry_invalidator(fuse: int) -> Callable[[int, str], int] | None:
    """``fuse_lowlevel_notify_inval_entry`` on the session of ``fuse``: (parent node id, name) → 0 or -errno.

    The kernel drops the name and everything below it, and forgets their inodes (libfuse frees the
    nodes).  Only from a thread that serves no FUSE request (s3regfs.kernelentries).
    """
    libfuse = getattr(mfusepy, "_libfuse", None)
    get_session = getattr(libfuse, "fuse_get_session", None)
    notify = getattr(libfuse, "fuse_lowlevel_notify_inval_entry", None)
    if get_session is None or notify is None:
        return None
    get_session.argtypes = [ctypes.c_void_p]
    get_session.restype = ctypes.c_void_p
    notify.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_size_t]
    notify.restype = ctypes.c_int
    session = get_session(fuse)
    if not session:
        return None

    def invalidate(parent: int, name: str) -> int:
        raw = os.fsencode(name)
        return cast(int, notify(session, parent, raw, len(raw)))

    return invalidate


_pinned = threading.local()
_gil_ensure = ctypes.pythonapi.PyGILState_Ensure
_gil_ensure.restype = ctypes.c_int


def _pin_thread_state() -> None:
    """Keep this thread's Python thread state after the callback returns (once per thread).

    The extra ``PyGILState_Ensure`` is never released: the state's counter stays above zero, so
    ctypes' own release at the end of each callback drops the GIL but keeps the state, and the
    next callback on this thread reuses it instead of building a new one.
    """
    if not getattr(_pinned, "done", False):
        _gil_ensure()
        _pinned.done = True


class RegistryFUSE(mfusepy.FUSE):  # type: ignore[misc]
    """mfusepy's FUSE with readdirplus attributes, rename flags, ftruncate handles and pinned thread states."""

    def _wrapper(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        _pin_thread_state()
        return super()._wrapper(func, *args, **kwargs)

    def _decode(self, path: bytes | None) -> str | None:
        return None if path is None else path.decode(self.encoding, self.errors)

    def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int) -> int:
        plus = getattr(self.operations, "readdir_plus", None)
        if plus is None:  # a plain mfusepy Operations (bench/floorfs.py): mfusepy's dict of each stat
            return self._readdir_dicts(path, buf, filler, offset, fip)
        for index, (name, st) in enumerate(plus(self._decode(path), offset, fip.contents.fh), offset + 1):
            if filler(buf, name, st, index, FILL_DIR_PLUS) != 0:
                break
        return 0

    def _readdir_dicts(self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any) -> int:
        st = mfusepy.c_stat()
        entries = self.operations.readdir_with_offset(self._decode(path), offset, fip.contents.fh)
        for name, attrs, next_offset in entries:
            ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
            mfusepy.set_st_attrs(st, attrs, use_ns=True)
            if filler(buf, name.encode(self.encoding, self.errors), st, next_offset, FILL_DIR_PLUS) != 0:
                break
        return 0

    def open(self, path: bytes, fip: Any) -> int:
        opener = getattr(self.operations, "open_file", None)
        if opener is None:  # a plain mfusepy Operations (bench/floorfs.py)
            return cast(int, super().open(path, fip))
        fi = fip.contents
        fi.fh, direct = opener(self._decode(path), fi.flags)
        fi.direct_io = int(direct)
        return 0

    def create(self, path: bytes, mode: int, fip: Any) -> int:
        creator = getattr(self.operations, "create_file", None)
        if creator is None:
            return cast(int, super().create(path, mode, fip))
        fi = fip.contents
        fi.fh, direct = creator(self._decode(path), mode, fi.flags)
        fi.direct_io = int(direct)
        return 0

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        data = self.operations.read(self._decode(path), size, offset, fip.contents.fh)
        count = len(data)
        if count > size:  # never past libfuse's buffer
            log.error("read of %d bytes returned %d: answered EIO", size, count)
            raise FuseOSError(errno.EIO)
        if count:  # one copy, from the fetched part itself (mfusepy's memmove takes bytes only)
            address = ctypes.cast(buf, ctypes.c_void_p).value
            with memoryview((ctypes.c_ubyte * count).from_address(address)) as raw, raw.cast("B") as target:
                target[:] = data
        return count

    def write(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        address = ctypes.cast(buf, ctypes.c_void_p).value
        if not size or not address:
            return cast(int, self.operations.write(self._decode(path), b"", offset, fip.contents.fh))
        # the views end with the call (libfuse reuses the buffer); the core copies what it keeps
        with memoryview((ctypes.c_ubyte * size).from_address(address)) as raw, raw.cast("B") as view:
            return cast(int, self.operations.write(self._decode(path), view, offset, fip.contents.fh))

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        return cast(int, self.operations.rename(self._decode(old), self._decode(new), flags))

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        fh = fip.contents.fh if fip else None
        return cast(int, self.operations.truncate(self._decode(path), length, fh))

    def chmod_fuse_3(self, path: bytes | None, mode: int, fip: Any) -> int:
        return cast(int, self.operations.chmod(self._decode(path), mode, fip.contents.fh if fip else None))

    def chown_fuse_3(self, path: bytes | None, uid: int, gid: int, fip: Any) -> int:
        uid = -1 if mfusepy.c_uid_t(uid + 1).value == 0 else uid  # (uid_t)-1: leave unchanged
        gid = -1 if mfusepy.c_gid_t(gid + 1).value == 0 else gid
        return cast(int, self.operations.chown(self._decode(path), uid, gid, fip.contents.fh if fip else None))

    def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        times = None
        if buf:
            times = (mfusepy.time_of_timespec(buf.contents.actime, use_ns=True),
                     mfusepy.time_of_timespec(buf.contents.modtime, use_ns=True))
        return cast(int, self.operations.utimens(self._decode(path), times, fip.contents.fh if fip else None))
