"""Spill files: the local copy of a file being written, under ``cache_dir/spill/``.

Owns :class:`SpillArea` (the directory, created 0700) and :class:`SpillFile`.  A spill file
never has a name derived from a bucket key: it is created with ``O_TMPFILE`` (no name at all;
the kernel frees it when it is closed or the process dies) or, where the filesystem lacks
``O_TMPFILE``, with a random ``mkstemp`` name that is unlinked at once.  So nothing is left
behind after an upload, a crash or a kill, and no key can name a local path.

Large page-aligned writes (a streamed file's 1 MiB FUSE writes) go through a second descriptor
opened with ``O_DIRECT`` (reopened through ``/proc/self/fd``; :mod:`s3regfs.fs.directio`).
Other writes, and every read, use the page cache;
the kernel keeps both coherent (a direct write flushes and drops the cached pages it covers).
Where ``O_DIRECT`` is refused (tmpfs, for one), everything is buffered.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import threading

from s3regfs.fs import directio

log = logging.getLogger(__name__)

DIRECT_MIN = 64 * 1024
"""Writes at least this large, at page-aligned offsets and of page-aligned lengths, bypass the page cache."""


class SpillArea:
    """The directory spill files live in."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._ready = False
        self.open_files = 0
        self.bytes_written = 0

    def _prepare(self) -> None:
        with self._lock:
            if not self._ready:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                self._ready = True

    def check(self) -> None:
        """Create the directory and prove a spill file can be made there (raises OSError)."""
        self.new().close()

    def new(self) -> SpillFile:
        """A new spill file; OSError ENOSPC/EDQUOT when the disk is full, EIO for any other local failure."""
        try:
            fd = self._new_fd()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            # ENOTDIR, EACCES, EROFS... of *our* directory would mislead the application about its own file.
            log.error("cannot create a spill file in %s: %s", self.directory, exc)
            raise OSError(
                errno.EIO, f"cannot create a spill file in {self.directory}: {exc.strerror}"
            ) from exc
        with self._lock:
            self.open_files += 1
        return SpillFile(self, fd)

    def _new_fd(self) -> int:
        self._prepare()
        try:
            return self._open()
        except FileNotFoundError:
            # The directory was removed under us (a cache cleaner, rm -rf): make it again, once.
            log.warning("spill directory %s vanished; creating it again", self.directory)
            with self._lock:
                self._ready = False
            self._prepare()
            return self._open()

    def _open(self) -> int:
        flag = getattr(os, "O_TMPFILE", 0)
        if flag:
            try:
                return os.open(self.directory, flag | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
        fd, name = tempfile.mkstemp(prefix="spill-", dir=self.directory)
        os.unlink(name)
        return fd

    def _closed(self) -> None:
        with self._lock:
            self.open_files -= 1


class SpillFile:
    """A nameless local file with positional I/O (thread-safe: pread/pwrite)."""

    def __init__(self, area: SpillArea, fd: int) -> None:
        self._area = area
        self._fd: int | None = fd
        self._direct: int | None = _reopen_direct(fd)

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise ValueError("spill file is closed")
        return self._fd

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        size = len(view)
        if self._direct is not None and size >= DIRECT_MIN and directio.aligned(offset, size):
            done = directio.pwrite(self._direct, view, offset)
            view, offset = view[done:], offset + done  # any rest (a short direct write) is buffered
        while view:
            done = os.pwrite(self.fd, view, offset)
            view = view[done:]
            offset += done

    def pread(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        chunks = []
        while length > 0:
            chunk = os.pread(self.fd, length, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def truncate(self, length: int) -> None:
        os.ftruncate(self.fd, length)

    def close(self) -> None:
        if self._direct is not None:
            direct, self._direct = self._direct, None
            os.close(direct)
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
            self._area._closed()


def _reopen_direct(fd: int) -> int | None:
    """A second descriptor of the same file with ``O_DIRECT``, or None where that is not possible."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | flag | os.O_CLOEXEC)
    except OSError:
        return None
