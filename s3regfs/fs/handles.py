"""Handles, the open-node table and per-path locks.

Owns:

* :class:`Handle`: one FUSE file handle (``fh``): its node, its open flags, the process that
  opened it and whether anything was written through it (the flush rule), and its read
  state (a :class:`~s3regfs.fs.readahead.ReadStream` while it reads from the bucket);
* :class:`HandleTable`: ``fh`` → Handle, numbered from 1 with a counter, under a lock;
* :class:`PathLocks`: a lock per path in use, so that namespace operations on the same name
  (open/create/unlink/rename/truncate) happen one at a time while operations on different
  names run in parallel.  Lock order: path locks (sorted), then a node's lock.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from s3regfs.fs.errors import FsError
from s3regfs.fs.readahead import ReadStream
from s3regfs.fs.writeback import Node


@dataclass
class Handle:
    """One open file description as FUSE numbers it."""

    fh: int
    node: Node
    flags: int
    pid: int = 0  # the process that opened it: only its flushes commit (docs/SEMANTICS.md)
    wrote: bool = False  # a write or truncate went through this handle
    lock: threading.Lock = field(default_factory=threading.Lock)
    reader: ReadStream | None = None
    reader_key: tuple[str, int, str | None] | None = None  # (key, size, etag) the reader reads

    @property
    def writable(self) -> bool:
        return (self.flags & os.O_ACCMODE) in (os.O_WRONLY, os.O_RDWR)

    @property
    def append(self) -> bool:
        return bool(self.flags & os.O_APPEND)

    def drop_reader(self) -> None:
        with self.lock:
            if self.reader is not None:
                self.reader.close()
                self.reader = None
                self.reader_key = None


class HandleTable:
    """fh → Handle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[int, Handle] = {}
        self._counter = itertools.count(1)

    def add(self, node: Node, flags: int, pid: int = 0) -> Handle:
        with self._lock:
            handle = Handle(next(self._counter), node, flags, pid)
            self._handles[handle.fh] = handle
            return handle

    def get(self, fh: int) -> Handle:
        with self._lock:
            handle = self._handles.get(fh)
        if handle is None:
            raise FsError(errno.EBADF, f"no open file handle {fh}")
        return handle

    def pop(self, fh: int) -> Handle:
        with self._lock:
            handle = self._handles.pop(fh, None)
        if handle is None:
            raise FsError(errno.EBADF, f"no open file handle {fh}")
        return handle

    def all(self) -> list[Handle]:
        with self._lock:
            return list(self._handles.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._handles)


@dataclass
class _PathLock:
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: int = 0


class PathLocks:
    """Reference-counted locks keyed by path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, _PathLock] = {}

    @contextmanager
    def hold(self, *paths: str) -> Iterator[None]:
        ordered = sorted(set(paths))
        entries = []
        with self._lock:
            for path in ordered:
                entry = self._locks.setdefault(path, _PathLock())
                entry.users += 1
                entries.append((path, entry))
        acquired: list[_PathLock] = []
        try:
            for _, entry in entries:
                entry.lock.acquire()
                acquired.append(entry)
            yield
        finally:
            for entry in reversed(acquired):
                entry.lock.release()
            with self._lock:
                for path, entry in entries:
                    entry.users -= 1
                    if entry.users == 0:
                        self._locks.pop(path, None)
