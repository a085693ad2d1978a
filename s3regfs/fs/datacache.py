"""The local data cache for immutable content: blocks on disk, a size-bounded LRU.

Owns ``cache_dir/data/``.  Only paths under ``immutable_prefixes`` are cached (registry blobs
are content-addressed: the bytes at ``blobs/sha256/xx/<digest>/data`` never change), so no
revalidation is needed; the object's size is part of the block key as a further guard.
Block files are named by a SHA-256 of (path, size) plus the block index, never by the key
itself.  Blocks are ``data_cache_block`` bytes (the last block of a file may be shorter);
only whole blocks are stored.  The index lives in memory and is rebuilt from the directory
at start (oldest modification first), so the cache survives a remount.

Thread-safe: one lock around the index; file I/O happens outside it, and a block evicted
while it is being read is simply a miss.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict

log = logging.getLogger(__name__)


class DataCache:
    """Blocks of immutable files on local disk, evicted least recently used first."""

    def __init__(self, directory: str, max_bytes: int, block: int, prefixes: tuple[str, ...]) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.block = block
        self.prefixes = tuple(prefixes)
        self._lock = threading.Lock()
        self._index: OrderedDict[str, int] = OrderedDict()
        self._total = 0
        self.hits = 0
        self.misses = 0
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._load()

    # -- policy ------------------------------------------------------------------------------------

    def applies(self, path: str) -> bool:
        return self.max_bytes > 0 and any(path.startswith(p) for p in self.prefixes)

    @staticmethod
    def _key(path: str, size: int) -> str:
        return hashlib.sha256(f"{path}\0{size}".encode("utf-8", "surrogateescape")).hexdigest()[:40]

    def _name(self, path: str, size: int, index: int) -> str:
        return f"{self._key(path, size)}-{index}"

    # -- index -------------------------------------------------------------------------------------

    def _load(self) -> None:
        entries = []
        with os.scandir(self.directory) as it:
            for entry in it:
                if ".tmp" in entry.name:
                    _unlink(entry.path)
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                entries.append((st.st_mtime, entry.name, st.st_size))
        for _, name, size in sorted(entries):
            self._index[name] = size
            self._total += size
        self._evict()

    def _evict(self) -> None:
        doomed = []
        with self._lock:
            while self._total > self.max_bytes and self._index:
                name, size = self._index.popitem(last=False)
                self._total -= size
                doomed.append(name)
        for name in doomed:
            _unlink(os.path.join(self.directory, name))

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._total

    # -- reads and writes ----------------------------------------------------------------------------

    def read(self, path: str, size: int, offset: int, length: int) -> bytes | None:
        """``length`` bytes at ``offset`` when every block they touch is cached, else None."""
        if length <= 0:
            return b""
        first, last = offset // self.block, (offset + length - 1) // self.block
        names = [self._name(path, size, i) for i in range(first, last + 1)]
        with self._lock:
            if not all(name in self._index for name in names):
                self.misses += 1
                return None
            for name in names:
                self._index.move_to_end(name)
        parts = []
        for i, name in zip(range(first, last + 1), names):
            start = max(offset, i * self.block)
            end = min(offset + length, (i + 1) * self.block)
            data = _pread(self.directory + os.sep + name, end - start, start - i * self.block)
            if len(data) != end - start:
                self._drop(name)
                self.misses += 1
                return None
            parts.append(data)
        self.hits += 1
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def store(self, path: str, size: int, offset: int, data: bytes) -> None:
        """Keep every whole block inside ``data`` (read at ``offset`` of a file of ``size`` bytes)."""
        end = offset + len(data)
        index = -(-offset // self.block)
        view = memoryview(data)  # blocks are written from slices of it, without copies
        while True:
            start = index * self.block
            stop = min(start + self.block, size)
            if stop > end or start >= stop:
                break
            self._put(self._name(path, size, index), view[start - offset : stop - offset])
            index += 1
        self._evict()

    def _put(self, name: str, block: bytes | memoryview) -> None:
        with self._lock:
            if name in self._index:
                self._index.move_to_end(name)
                return
        final = os.path.join(self.directory, name)
        tmp = f"{final}.tmp{threading.get_ident()}"
        try:
            with open(tmp, "wb") as f:
                f.write(block)
            os.replace(tmp, final)
        except OSError as exc:
            log.warning("data cache: cannot store a block in %s: %s", self.directory, exc)
            _unlink(tmp)
            return
        with self._lock:
            if name not in self._index:
                self._index[name] = len(block)
                self._total += len(block)

    def _drop(self, name: str) -> None:
        with self._lock:
            size = self._index.pop(name, None)
            if size is not None:
                self._total -= size
        _unlink(os.path.join(self.directory, name))


def _pread(path: str, length: int, offset: int) -> bytes:
    """``length`` bytes at ``offset`` of ``path`` (b"" when it is gone): plain os calls, no file object."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.pread(fd, length, offset)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
