"""CheckedDriver: path validation and driver-name stamping (port of ``base.Base``).

Every driver the factory creates is wrapped in it.  It

* rejects paths that do not match :data:`~s3regfs.driver.base.PATH_RE` in full
  with :class:`InvalidPathError` (the inner driver is not called); ``/`` is
  allowed only for ``stat``, ``list``, ``walk`` and ``list_info``;
* rejects ``.`` and ``..`` components too (stricter than upstream, on
  purpose: they could escape the root of a filesystem-like backend);
* checks a negative reader offset before the path;
* stamps the inner driver's name on errors, and wraps any other exception in
  :class:`DriverError`.

Readers and writers it returns are not wrapped (upstream returns them raw).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import BinaryIO, TypeVar

from s3regfs.driver.base import PATH_RE, FileInfo, FileWriter, Readable
from s3regfs.driver.errors import (
    DriverError,
    FilledBuffer,
    InvalidOffsetError,
    InvalidPathError,
    SkipDir,
    StorageDriverError,
)
from s3regfs.driver.walk import WalkFn
from s3regfs.driver.wrapper import DriverWrapper

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_valid_path(path: str, allow_root: bool = False) -> bool:
    """True when ``path`` is a valid driver path (``/`` only if ``allow_root``)."""
    if allow_root and path == "/":
        return True
    if not isinstance(path, str) or PATH_RE.fullmatch(path) is None:
        return False
    return all(part not in (".", "..") for part in path.split("/")[1:])


class CheckedDriver(DriverWrapper):
    """Validates paths and offsets, and stamps the driver name on errors."""

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        start = time.monotonic()
        try:
            return fn()
        except StorageDriverError as exc:
            raise exc.with_driver(self.inner.name)
        except (SkipDir, FilledBuffer):
            raise
        except Exception as exc:
            raise DriverError(exc, self.inner.name) from exc
        finally:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s took %.3fs", self.inner.name, action, time.monotonic() - start)

    def _check(self, path: str, allow_root: bool = False) -> None:
        if not is_valid_path(path, allow_root):
            raise InvalidPathError(path, self.inner.name)

    def get_content(self, path: str) -> bytes:
        self._check(path)
        return self._call("get_content", lambda: self.inner.get_content(path))

    def put_content(self, path: str, content: bytes) -> str | None:
        self._check(path)
        return self._call("put_content", lambda: self.inner.put_content(path, content))

    def reader(self, path: str, offset: int = 0) -> BinaryIO | Readable:
        if offset < 0:
            raise InvalidOffsetError(path, offset, self.inner.name)
        self._check(path)
        return self._call("reader", lambda: self.inner.reader(path, offset))

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes | memoryview:
        if offset < 0:
            raise InvalidOffsetError(path, offset, self.inner.name)
        self._check(path)
        return self._call("read_range", lambda: self.inner.read_range(path, offset, length, etag))

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._check(path)
        return self._call("writer", lambda: self.inner.writer(path, append))

    def stat(self, path: str) -> FileInfo:
        self._check(path, allow_root=True)
        return self._call("stat", lambda: self.inner.stat(path))

    def list(self, path: str) -> list[str]:
        self._check(path, allow_root=True)
        return self._call("list", lambda: self.inner.list(path))

    def list_info(self, path: str) -> list[FileInfo]:
        self._check(path, allow_root=True)
        return self._call("list_info", lambda: self.inner.list_info(path))

    def move(self, source: str, dest: str) -> None:
        self._check(source)
        self._check(dest)
        self._call("move", lambda: self.inner.move(source, dest))

    def delete(self, path: str) -> None:
        self._check(path)
        self._call("delete", lambda: self.inner.delete(path))

    def redirect_url(
        self,
        method: str,
        path: str,
        *,
        client_ip: str | None = None,
        expires_in: float | None = None,
    ) -> str | None:
        self._check(path)
        return self._call(
            "redirect_url",
            lambda: self.inner.redirect_url(
                method, path, client_ip=client_ip, expires_in=expires_in
            ),
        )

    def walk(self, path: str, fn: WalkFn, start_after_hint: str = "") -> None:
        self._check(path, allow_root=True)
        self._call("walk", lambda: self.inner.walk(path, fn, start_after_hint))

    def bucket_key(self, path: str) -> str | None:
        self._check(path, allow_root=True)
        return self.inner.bucket_key(path)

    def stat_tree(self, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
        self._check(path, allow_root=True)
        return self._call("stat_tree", lambda: self.inner.stat_tree(path, limit))
