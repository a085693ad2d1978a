"""DriverWrapper: a StorageDriver that forwards every call to an inner driver.

The Python stand-in for Go struct embedding.  Every cross-cutting behaviour
(path checks, CloudFront signing, fault injection, counting) subclasses it and
overrides only what it changes.
"""

from __future__ import annotations

from typing import BinaryIO

from s3regfs.driver.base import FileInfo, FileWriter, MultipartUploads, Readable, StorageDriver
from s3regfs.driver.walk import WalkFn


class DriverWrapper(StorageDriver):
    """Forwards everything to ``self.inner``."""

    def __init__(self, inner: StorageDriver) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    def get_content(self, path: str) -> bytes:
        return self.inner.get_content(path)

    def put_content(self, path: str, content: bytes) -> str | None:
        return self.inner.put_content(path, content)

    def reader(self, path: str, offset: int = 0) -> BinaryIO | Readable:
        return self.inner.reader(path, offset)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        return self.inner.writer(path, append)

    def stat(self, path: str) -> FileInfo:
        return self.inner.stat(path)

    def list(self, path: str) -> list[str]:
        return self.inner.list(path)

    def move(self, source: str, dest: str) -> None:
        self.inner.move(source, dest)

    def delete(self, path: str) -> None:
        self.inner.delete(path)

    def redirect_url(
        self,
        method: str,
        path: str,
        *,
        client_ip: str | None = None,
        expires_in: float | None = None,
    ) -> str | None:
        return self.inner.redirect_url(method, path, client_ip=client_ip, expires_in=expires_in)

    def walk(self, path: str, fn: WalkFn, start_after_hint: str = "") -> None:
        self.inner.walk(path, fn, start_after_hint)

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes | memoryview:
        return self.inner.read_range(path, offset, length, etag)

    def list_info(self, path: str) -> list[FileInfo]:
        return self.inner.list_info(path)

    def bucket_key(self, path: str) -> str | None:
        return self.inner.bucket_key(path)

    def multipart_uploads(self) -> MultipartUploads | None:
        return self.inner.multipart_uploads()

    def stat_tree(self, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
        return self.inner.stat_tree(path, limit)

    def drop_caches(self) -> None:
        self.inner.drop_caches()

    def close(self) -> None:
        self.inner.close()

    def unwrap(self) -> StorageDriver:
        """The innermost driver of the chain."""
        inner = self.inner
        while isinstance(inner, DriverWrapper):
            inner = inner.inner
        return inner
