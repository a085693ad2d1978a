"""FaultyDriver: a DriverWrapper that fails chosen calls, for fault-injection tests.

    driver = FaultyDriver(InMemoryDriver())
    driver.fail("put_content", DriverError("boom"))            # the next put_content fails
    driver.fail("writer.commit", times=None)                     # every writer commit fails
    driver.fail("read_range", after=2, path="/big")              # the 3rd read_range of /big fails
    driver.short("read_range", path="/big")                      # read_range returns one byte too few

Methods are StorageDriver method names, or ``writer.write``/``writer.commit`` for the
FileWriter the driver returns.  A rule fires ``times`` times (``None``: forever) after
skipping ``after`` matching calls.  Thread-safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

from s3regfs.driver.base import FileInfo, FileWriter, Readable, StorageDriver
from s3regfs.driver.walk import WalkFn
from s3regfs.driver.errors import DriverError
from s3regfs.driver.wrapper import DriverWrapper


@dataclass
class Rule:
    method: str
    exc: BaseException | None
    times: int | None
    after: int
    path: str | None
    short: bool = False
    fired: int = 0
    seen: int = 0


class FaultyDriver(DriverWrapper):
    """Fails (or shortens) selected calls to the inner driver."""

    def __init__(self, inner: StorageDriver) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        self.rules: list[Rule] = []

    def fail(
        self,
        method: str,
        exc: BaseException | None = None,
        *,
        times: int | None = 1,
        after: int = 0,
        path: str | None = None,
    ) -> Rule:
        rule = Rule(method, exc or DriverError(f"injected {method} failure", "faulty"), times, after, path)
        with self._lock:
            self.rules.append(rule)
        return rule

    def short(
        self, method: str = "read_range", *, times: int | None = 1, after: int = 0, path: str | None = None
    ) -> Rule:
        rule = Rule(method, None, times, after, path, short=True)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _match(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.method != method or (rule.path is not None and rule.path != path):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                rule.fired += 1
                return rule
        return None

    def _check(self, method: str, path: str) -> None:
        rule = self._match(method, path)
        if rule is not None and not rule.short:
            assert rule.exc is not None
            raise rule.exc

    # -- wrapped methods ---------------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        self._check("get_content", path)
        return self.inner.get_content(path)

    def put_content(self, path: str, content: bytes) -> str | None:
        self._check("put_content", path)
        return self.inner.put_content(path, content)

    def reader(self, path: str, offset: int = 0) -> BinaryIO | Readable:
        self._check("reader", path)
        return self.inner.reader(path, offset)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._check("writer", path)
        return _FaultyWriter(self, path, self.inner.writer(path, append))

    def stat(self, path: str) -> FileInfo:
        self._check("stat", path)
        return self.inner.stat(path)

    def stat_tree(self, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
        self._check("stat", path)  # a lookup fails as stat does
        return self.inner.stat_tree(path, limit)

    def list(self, path: str) -> list[str]:
        self._check("list", path)
        return self.inner.list(path)

    def list_info(self, path: str) -> list[FileInfo]:
        self._check("list_info", path)
        return self.inner.list_info(path)

    def move(self, source: str, dest: str) -> None:
        self._check("move", source)
        self.inner.move(source, dest)

    def delete(self, path: str) -> None:
        self._check("delete", path)
        self.inner.delete(path)

    def walk(self, path: str, fn: WalkFn, start_after_hint: str = "") -> None:
        self._check("walk", path)
        self.inner.walk(path, fn, start_after_hint)

    def redirect_url(self, method: str, path: str, **kwargs: Any) -> str | None:
        self._check("redirect_url", path)
        return self.inner.redirect_url(method, path, **kwargs)

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes:
        rule = self._match("read_range", path)
        if rule is not None and not rule.short:
            assert rule.exc is not None
            raise rule.exc
        data = self.inner.read_range(path, offset, length, etag)
        return data[:-1] if rule is not None and rule.short and data else data


class _FaultyWriter(FileWriter):
    def __init__(self, owner: FaultyDriver, path: str, inner: FileWriter) -> None:
        self._owner = owner
        self._path = path
        self.inner = inner

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._owner._check("writer.write", self._path)
        return self.inner.write(data)

    def size(self) -> int:
        return self.inner.size()

    def close(self) -> None:
        self.inner.close()

    def commit(self) -> str | None:
        self._owner._check("writer.commit", self._path)
        return self.inner.commit()

    def cancel(self) -> None:
        self.inner.cancel()
