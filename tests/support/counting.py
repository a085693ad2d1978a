"""CountingDriver: a DriverWrapper that counts the calls made through it (and their paths).

Tests assert request costs with it, e.g. "readdir + N getattr = 1 list_info and 0 stat":

    driver = CountingDriver(InMemoryDriver())
    ...
    assert driver.count("stat") == 0

``stat_tree`` (a lookup) is counted as ``stat``.  Writer methods are counted as ``writer.write``/``writer.commit``/``writer.cancel``/``writer.close``.
Thread-safe.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, BinaryIO

from s3regfs.driver.base import FileInfo, FileWriter, Readable, StorageDriver
from s3regfs.driver.walk import WalkFn
from s3regfs.driver.wrapper import DriverWrapper


class CountingDriver(DriverWrapper):
    """Counts every StorageDriver call by method name."""

    def __init__(self, inner: StorageDriver) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.ranges: list[tuple[str, int, int]] = []  # read_range (path, offset, length)

    def _note(self, method: str, path: str = "") -> None:
        with self._lock:
            self.calls[method] += 1
            self.log.append((method, path))

    def count(self, *methods: str) -> int:
        with self._lock:
            return sum(self.calls[m] for m in methods) if methods else sum(self.calls.values())

    def paths(self, method: str) -> list[str]:
        with self._lock:
            return [p for m, p in self.log if m == method]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.log.clear()
            self.ranges.clear()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)

    # -- counted methods ---------------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        self._note("get_content", path)
        return self.inner.get_content(path)

    def put_content(self, path: str, content: bytes) -> str | None:
        self._note("put_content", path)
        return self.inner.put_content(path, content)

    def reader(self, path: str, offset: int = 0) -> BinaryIO | Readable:
        self._note("reader", path)
        return self.inner.reader(path, offset)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._note("writer", path)
        return _CountingWriter(self, path, self.inner.writer(path, append))

    def stat(self, path: str) -> FileInfo:
        self._note("stat", path)
        return self.inner.stat(path)

    def stat_tree(self, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
        self._note("stat", path)  # a lookup: one request, as stat (its subtree comes with it)
        return self.inner.stat_tree(path, limit)

    def list(self, path: str) -> list[str]:
        self._note("list", path)
        return self.inner.list(path)

    def move(self, source: str, dest: str) -> None:
        self._note("move", source)
        self.inner.move(source, dest)

    def delete(self, path: str) -> None:
        self._note("delete", path)
        self.inner.delete(path)

    def redirect_url(self, method: str, path: str, **kwargs: Any) -> str | None:
        self._note("redirect_url", path)
        return self.inner.redirect_url(method, path, **kwargs)

    def walk(self, path: str, fn: WalkFn, start_after_hint: str = "") -> None:
        self._note("walk", path)
        self.inner.walk(path, fn, start_after_hint)

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes:
        self._note("read_range", path)
        with self._lock:
            self.ranges.append((path, offset, length))
        return self.inner.read_range(path, offset, length, etag)

    def list_info(self, path: str) -> list[FileInfo]:
        self._note("list_info", path)
        return self.inner.list_info(path)


class _CountingWriter(FileWriter):
    def __init__(self, owner: CountingDriver, path: str, inner: FileWriter) -> None:
        self._owner = owner
        self._path = path
        self.inner = inner

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._owner._note("writer.write", self._path)
        return self.inner.write(data)

    def size(self) -> int:
        return self.inner.size()

    def close(self) -> None:
        self._owner._note("writer.close", self._path)
        self.inner.close()

    def commit(self) -> str | None:
        self._owner._note("writer.commit", self._path)
        return self.inner.commit()

    def cancel(self) -> None:
        self._owner._note("writer.cancel", self._path)
        self.inner.cancel()
