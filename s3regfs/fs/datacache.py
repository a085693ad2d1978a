"""The local data cache for immutable content: one sparse file per blob, a size-bounded LRU.

Owns ``cache_dir/data/``.  Only paths under ``immutable_prefixes`` are cached (registry blobs
are content-addressed: the bytes at ``blobs/sha256/xx/<digest>/data`` never change), so no
revalidation is needed.  Still, an entry is one *version* of a blob: the key is the path, the
size and the object's ETag, so a blob re-written with other bytes (against the registry's
rules) never reads blocks of the old one; a read whose version is unknown is not cached.

Layout: each cached blob is one file ``<key>-<token>.data`` (``key`` a SHA-256 of (path,
size, etag), never the path itself; ``token`` new for every entry, so a file name is never reused
after an eviction) into which whole blocks of ``data_cache_block`` bytes are written at their
offsets (the last block of a file may be shorter; partial blocks are not stored), so a read
of any range is one ``pread``.

Blocks are written by one background thread (:class:`_Writer`), with ``O_DIRECT``
(:mod:`s3regfs.fs.directio`) where the file system allows it, so the reader neither waits for
the disk nor pays for filling the page cache.  At most ``WRITE_QUEUE`` bytes wait to be written (``store`` waits for
room beyond that); a ``read`` of a block still waiting is answered once it is written.

Which blocks a file holds lives in memory.  ``close()`` (at unmount) syncs each file and writes
the list of its blocks beside it (``<key>-<token>.blocks``, atomically), so the cache survives
a clean remount; a data file without its list (after a crash) is deleted at start, since
unwritten blocks of a sparse file read as zeros.  Eviction is least recently used, a whole blob
at a time; a blob larger than the whole cache keeps only the blocks that fit.

Reads keep the descriptors of the ``OPEN_FILES`` most recently read files open (a warm 4 KiB read
is then one ``pread``, no ``open``/``close``).  A descriptor is closed only when no read is using
it: each entry counts its readers, and eviction or the open-file bound only *retires* a
descriptor in use, which its last reader closes.  So a number is never closed under a reader
and reused for another file, and a read never returns another blob's bytes
[t: tests/fs/test_datacache.py::test_an_evicted_file_is_closed_only_after_its_last_reader].

Thread-safe: one lock around the index; file I/O happens outside it.  A file evicted while it
is read is read whole (its inode lives until closed) or is a miss (already unlinked).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import os
import queue
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from s3regfs.fs import directio

log = logging.getLogger(__name__)

WRITE_QUEUE = 32 * 1024 * 1024
"""Bytes of blocks waiting to be written at most (each holds a reference to a fetched part)."""

OPEN_FILES = 64
"""Cache files whose read descriptor stays open between reads, at most (least recently read closed first)."""

ADVISE_SPAN = 1024 * 1024
"""A read whose pages are not in memory asks the kernel for the aligned span around it at once
(``POSIX_FADV_WILLNEED``): random reads of a cached blob whose pages the page cache dropped cost
one disk read per span, not one per 4 KiB (docs/PERFORMANCE.md, "Warm random reads").  Whether
they are in memory is asked of the kernel at each read (``RWF_NOWAIT``), so a span is asked for
again whenever it was dropped again."""

_DATA = ".data"
_BLOCKS = ".blocks"


@functools.lru_cache(maxsize=4096)
def _cache_key(path: str, size: int, etag: str) -> str:
    """The entry's name: a SHA-256 of the version, never the path itself (remembered for warm reads)."""
    text = f"{path}\0{size}\0{etag}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


@dataclass
class _Entry:
    """One cached blob: its file and the blocks in it."""

    name: str  # <key>-<token>, without suffix
    blocks: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)  # queued for the writer
    nbytes: int = 0
    fd: int = -1  # open for reads; owned by DataCache._open, or retired and closed by its last reader
    readers: int = 0  # reads using ``fd`` now


class DataCache:
    """Blocks of immutable files on local disk, one sparse file per file, evicted least recently used first."""

    def __init__(self, directory: str, max_bytes: int, block: int, prefixes: tuple[str, ...]) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.block = block
        self.prefixes = tuple(prefixes)
        self._lock = threading.Lock()
        self._index: OrderedDict[str, _Entry] = OrderedDict()  # key -> entry, least recently used first
        self._open: OrderedDict[str, _Entry] = OrderedDict()  # entries owning an open fd, least recently read first
        self._total = 0
        self._written = threading.Condition(self._lock)  # a queued write finished (or failed)
        self._queued = 0  # bytes waiting for the writer
        self._closed = False  # no store is queued after close (its writer stops)
        self.hits = 0
        self.misses = 0
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._load()
        self._writer = _Writer(self, _direct_io_works(directory))

    # -- policy ------------------------------------------------------------------------------------

    def applies(self, path: str) -> bool:
        return self.max_bytes > 0 and path.startswith(self.prefixes)

    _key = staticmethod(_cache_key)

    def _file(self, entry: _Entry, suffix: str = _DATA) -> str:
        return os.path.join(self.directory, entry.name + suffix)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._total

    # -- reads and writes ----------------------------------------------------------------------------

    def read(self, path: str, size: int, etag: str, offset: int, length: int) -> bytes | bytearray | None:
        """``length`` bytes at ``offset`` of version ``etag`` when every block they touch is cached."""
        if length <= 0:
            return b""
        first, last = offset // self.block, (offset + length - 1) // self.block
        key = self._key(path, size, etag)
        wanted = range(first, last + 1)
        with self._lock:
            entry = self._index.get(key)
            while entry is not None and entry.pending and any(i in entry.pending for i in wanted):
                self._written.wait()  # answered from disk once the writer has it there
                entry = self._index.get(key)
            if entry is None or not (first in entry.blocks if first == last else entry.blocks.issuperset(wanted)):
                self.misses += 1
                return None
            self._index.move_to_end(key)
            entry.readers += 1
            fd = entry.fd
            retired = self._own(key, entry) if fd >= 0 else []
        try:
            if fd < 0:
                fd = self._open_for_reads(key, entry)
            data = _pread_advised(fd, length, offset) if fd >= 0 else b""
        finally:
            self._close_all(self._release(key, entry, fd) + retired)
        if len(data) != length:
            self._evict_entry(key, entry)
            self.misses += 1
            return None
        self.hits += 1
        return data

    def holds(self, path: str, size: int, etag: str, offset: int, length: int) -> bool:
        """Whether every block of these bytes is cached or queued for the disk (nothing is read)."""
        wanted = range(offset // self.block, (offset + max(1, length) - 1) // self.block + 1)
        with self._lock:
            entry = self._index.get(self._key(path, size, etag))
            return entry is not None and all(i in entry.blocks or i in entry.pending for i in wanted)

    # -- descriptors kept open for reads -----------------------------------------------------------

    def _open_for_reads(self, key: str, entry: _Entry) -> int:
        """A read descriptor of ``entry``'s file (-1 when it is gone), owned by the entry if it has none."""
        try:
            fd = os.open(self._file(entry), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return -1
        with self._lock:
            if entry.fd >= 0 or self._index.get(key) is not entry:
                return fd  # another reader opened it first, or evicted meanwhile: ours is private
            entry.fd = fd
            retired = self._own(key, entry)
        self._close_all(retired)
        return fd

    def _own(self, key: str, entry: _Entry) -> list[int]:
        """(Lock held.) Make ``entry``'s fd the most recently read; the descriptors over the bound to close."""
        self._open[key] = entry
        self._open.move_to_end(key)
        closing = []
        while len(self._open) > OPEN_FILES:
            _, old = self._open.popitem(last=False)
            closing += self._retire(old)
        return closing

    def _retire(self, entry: _Entry) -> list[int]:
        """(Lock held, ``entry`` no longer in ``_open``.) Its fd to close now, or none if a read uses it."""
        if entry.fd < 0 or entry.readers > 0:
            return []  # the last reader closes it (``_release``)
        fd, entry.fd = entry.fd, -1
        return [fd]

    def _release(self, key: str, entry: _Entry, fd: int) -> list[int]:
        """A read of ``entry`` through ``fd`` is done: the descriptors to close."""
        with self._lock:
            entry.readers -= 1
            if fd >= 0 and fd != entry.fd:
                return [fd]  # a private one
            return [] if self._open.get(key) is entry else self._retire(entry)  # retired meanwhile: last one closes

    @staticmethod
    def _close_all(fds: list[int]) -> None:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def store(self, path: str, size: int, etag: str, offset: int, data: bytes | memoryview) -> None:
        """Queue every whole block in ``data`` (read at ``offset`` of version ``etag``, of ``size`` bytes)."""
        first = -(-offset // self.block)
        stop = first
        while min((stop + 1) * self.block, size) <= offset + len(data) and stop * self.block < size:
            stop += 1
        if stop == first:
            return
        key = self._key(path, size, etag)
        with self._lock:
            if self._closed:
                return  # a part that arrives after unmount began: nothing will write it
            entry = self._index.get(key)
            if entry is None:
                entry = self._index[key] = _Entry(f"{key}-{secrets.token_hex(4)}")
            self._index.move_to_end(key)
            wanted = [i for i in range(first, stop) if i not in entry.blocks and i not in entry.pending]
            room = self.max_bytes - entry.nbytes - _span(entry.pending, self.block, size)
            while wanted and _span(wanted, self.block, size) > room:
                wanted.pop()  # a blob larger than the whole cache keeps its first blocks
            if not wanted:
                return
            start, end = wanted[0] * self.block, min((wanted[-1] + 1) * self.block, size)
            while self._queued > 0 and self._queued + (end - start) > WRITE_QUEUE:
                self._written.wait()  # back-pressure: the writer is behind
                if self._closed:
                    return
            entry.pending.update(wanted)
            self._queued += end - start
        # contiguous blocks: one write from a view of the fetched part, no copy here
        self._writer.put(_Job(key, entry, wanted, start, memoryview(data)[start - offset : end - offset], size))

    def _written_job(self, job: _Job, ok: bool) -> None:
        """The writer finished ``job``: its blocks are readable (or, on failure, simply not cached)."""
        nbytes = len(job.data)
        job.data = memoryview(b"")  # the fetched part may be freed
        with self._lock:
            job.entry.pending.difference_update(job.blocks)
            if ok and self._index.get(job.key) is job.entry:
                added = [i for i in job.blocks if i not in job.entry.blocks]
                job.entry.blocks.update(added)
                grown = _span(added, self.block, job.size)
                job.entry.nbytes += grown
                self._total += grown
        if ok:
            self._evict(keep=job.key)
        with self._lock:  # last, so that ``drain`` returns with the evictions it caused done
            self._queued -= nbytes
            self._written.notify_all()

    def drain(self) -> None:
        """Wait until every queued block is written (and what it evicted is gone)."""
        with self._lock:
            while self._queued > 0:
                self._written.wait()

    # -- eviction ----------------------------------------------------------------------------------

    def _evict(self, keep: str | None = None) -> None:
        doomed: list[_Entry] = []
        closing: list[int] = []
        with self._lock:
            for key in list(self._index):
                if self._total <= self.max_bytes:
                    break
                if key == keep:
                    continue
                entry = self._index.pop(key)
                self._total -= entry.nbytes
                doomed.append(entry)
                closing += self._forget(key, entry)
        self._close_all(closing)
        for entry in doomed:
            self._remove_files(entry)

    def _evict_entry(self, key: str, entry: _Entry) -> None:
        with self._lock:
            if self._index.get(key) is not entry:
                return
            del self._index[key]
            self._total -= entry.nbytes
            closing = self._forget(key, entry)
        self._close_all(closing)
        self._remove_files(entry)

    def _forget(self, key: str, entry: _Entry) -> list[int]:
        """(Lock held, ``entry`` just left the index.) Its descriptor leaves ``_open``: the fds to close now."""
        if self._open.get(key) is entry:
            del self._open[key]
        return self._retire(entry)

    def _remove_files(self, entry: _Entry) -> None:
        _unlink(self._file(entry, _BLOCKS))  # the list first: a data file without it is never trusted
        _unlink(self._file(entry))

    # -- persistence -------------------------------------------------------------------------------

    def close(self) -> None:
        """Finish the queued writes, sync every cached file and record its blocks for the next mount.

        A store after this (a part still in flight at unmount) returns at once and keeps nothing."""
        with self._lock:
            self._closed = True
            self._written.notify_all()
        self.drain()
        self._writer.stop()
        with self._lock:
            entries = list(self._index.values())
            closing = [fd for old in self._open.values() for fd in self._retire(old)]
            self._open.clear()
        self._close_all(closing)
        for entry in entries:
            try:
                fd = os.open(self._file(entry), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                listing = " ".join(str(i) for i in sorted(entry.blocks)).encode()
                tmp = self._file(entry, _BLOCKS + ".tmp")
                with open(tmp, "wb") as f:
                    f.write(listing)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self._file(entry, _BLOCKS))
            except OSError as exc:
                log.warning("data cache: cannot record %s: %s", entry.name, exc)

    def _load(self) -> None:
        with os.scandir(self.directory) as it:
            names = {item.name for item in it}
        recorded: dict[str, float] = {}  # <key>-<token> with both its files -> mtime of its block list
        for name in names:
            base = name[: -len(_BLOCKS)]
            if name.endswith(_BLOCKS) and base + _DATA in names:
                try:
                    recorded[base] = os.stat(os.path.join(self.directory, name)).st_mtime
                except OSError:
                    continue
        for name in names:
            if name.split(".", 1)[0] not in recorded or name.endswith(".tmp"):
                _unlink(os.path.join(self.directory, name))  # no block list (a crash), a tmp, or stray
        for base in sorted(recorded, key=recorded.__getitem__):
            self._adopt(base)
        self._evict()

    def _adopt(self, base: str) -> None:
        """Take a data file and its block list from a previous mount into the index."""
        key = base.split("-", 1)[0]
        entry = _Entry(base)
        try:
            with open(self._file(entry, _BLOCKS), "rb") as f:
                entry.blocks = {int(i) for i in f.read().split()}
            data_size = os.path.getsize(self._file(entry))
        except (OSError, ValueError):
            self._remove_files(entry)
            return
        entry.blocks = {i for i in entry.blocks if i * self.block < data_size}
        entry.nbytes = _span(entry.blocks, self.block, data_size)
        old = self._index.pop(key, None)
        if old is not None:
            self._total -= old.nbytes
            self._remove_files(old)
        self._index[key] = entry
        self._total += entry.nbytes


@dataclass
class _Job:
    """Blocks to write: ``data`` goes to offset ``start`` of the entry's file."""

    key: str
    entry: _Entry
    blocks: list[int]
    start: int
    data: memoryview
    size: int


class _Writer:
    """The data cache's one writer thread (``O_DIRECT`` through a page-aligned buffer when possible)."""

    def __init__(self, cache: DataCache, direct: bool) -> None:
        self.cache = cache
        self.direct = direct
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="s3regfs-datacache", daemon=True)
        self._thread.start()

    def put(self, job: _Job) -> None:
        self._jobs.put(job)

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            ok = False
            try:
                ok = self._write(self.cache._file(job.entry), job.data, job.start)
            except Exception:  # noqa: BLE001 - a cache write may fail; the reader fetches again
                log.exception("data cache: writing %s failed", job.entry.name)
            finally:
                self.cache._written_job(job, ok)

    def _write(self, path: str, data: memoryview, offset: int) -> bool:
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(path, flags | os.O_DIRECT, 0o600) if self.direct else None
        except OSError:
            fd = None
        try:
            done = 0
            if fd is not None and directio.aligned(offset, len(data) - len(data) % directio.PAGE):
                done = directio.pwrite(fd, data[: len(data) - len(data) % directio.PAGE], offset)
            return done == len(data) or _pwrite(path, data[done:], offset + done)
        except OSError as exc:
            log.warning("data cache: cannot store a block in %s: %s", os.path.dirname(path), exc)
            return False
        finally:
            if fd is not None:
                os.close(fd)


def _direct_io_works(directory: str) -> bool:
    """Whether files in ``directory`` can be opened with ``O_DIRECT`` (not on tmpfs, for one)."""
    probe = os.path.join(directory, f".probe-{secrets.token_hex(4)}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        return False
    os.close(fd)
    _unlink(probe)
    return hasattr(os, "O_DIRECT")


def _span(blocks: Iterable[int], block: int, size: int) -> int:
    """Bytes of the given block indexes in a file of ``size`` bytes."""
    return sum(min(block, size - i * block) for i in blocks)


def _pread(fd: int, length: int, offset: int) -> bytes:
    """``length`` bytes at ``offset`` of the open file ``fd`` (b"" when it cannot be read)."""
    try:
        return os.pread(fd, length, offset)
    except OSError:
        return b""


_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
"""The flag that asks a read not to wait for the disk; 0 once the kernel refused it (before 4.14)."""


def _pread_advised(fd: int, length: int, offset: int) -> bytes | bytearray:
    """``_pread``; when its pages are not all in memory, the whole ``ADVISE_SPAN`` is asked for first.

    Only reads up to a span ask: a larger read (a readahead part) is sequential, which the kernel's
    own readahead serves, and a probe of it would cost a second buffer of its size."""
    global _NOWAIT
    if _NOWAIT and length <= ADVISE_SPAN:
        buf = bytearray(length)
        try:
            if os.preadv(fd, (buf,), offset, _NOWAIT) == length:
                return buf  # from memory: one system call, as a plain pread
        except BlockingIOError:
            pass  # not in memory
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                _NOWAIT = 0  # not on this kernel: plain reads from now on, no hint
            return _pread(fd, length, offset)
        _willneed(fd, offset - offset % ADVISE_SPAN, ADVISE_SPAN)
    return _pread(fd, length, offset)


def _willneed(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to read this span of ``fd`` into the page cache now (asynchronously); a hint only."""
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass


def _pwrite(path: str, data: memoryview, offset: int) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.warning("data cache: cannot store a block in %s: %s", os.path.dirname(path), exc)
        return False
    try:
        written = os.pwrite(fd, data, offset)
        while written < len(data):
            written += os.pwrite(fd, data[written:], offset + written)
        return True
    except OSError as exc:
        log.warning("data cache: cannot store a block in %s: %s", os.path.dirname(path), exc)
        return False
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
