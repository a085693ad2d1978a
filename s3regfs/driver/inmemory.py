"""The ``inmemory`` driver: the reference implementation and fast test double.

It models the S3 bucket the ``s3`` driver sees, so that tests on it say
something about S3: a flat key space where directories are implied by keys
(a directory exists while a file lives under it; a file and a directory may
share a name), in-progress writes that stay invisible until ``commit`` and can
be resumed with ``append=True``, and the same errors as ``s3``.  Where the
upstream inmemory driver differs (a node tree, append creating missing files),
this one follows s3; docs/SEMANTICS.md lists the choices.

Every stored file gets a new version token (its ``FileInfo.etag``, from a
counter: even the same bytes written again are a new version), and
``read_range`` pinned to a token raises :class:`ObjectChangedError` once the
path holds another version, as S3's ``If-Match`` does.

All state sits behind one lock; reads return copies.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from s3regfs.driver.base import ZERO_TIME, FileInfo, FileWriter, FirstFiles, StorageDriver
from s3regfs.driver.errors import (
    DriverError,
    ObjectChangedError,
    ParameterError,
    PathNotFoundError,
    WriterStateError,
)

NAME = "inmemory"


_versions = itertools.count(1)


@dataclass
class _File:
    data: bytes
    mod_time: datetime
    etag: str = field(default_factory=lambda: f'"v{next(_versions)}"')


@dataclass
class _Upload:
    """An in-progress write: bytes already 'uploaded' (invisible until commit)."""

    path: str
    data: bytearray = field(default_factory=bytearray)


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryDriver(StorageDriver):
    """A dict of files plus a list of in-progress uploads, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._files: dict[str, _File] = {}
        self._uploads: list[_Upload] = []

    @property
    def name(self) -> str:
        return NAME

    # -- content ------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        with self._lock:
            node = self._files.get(path)
            if node is None:
                raise PathNotFoundError(path)
            return node.data

    def put_content(self, path: str, content: bytes) -> str:
        with self._lock:
            stored = self._files[path] = _File(bytes(content), _now())
            return stored.etag

    def reader(self, path: str, offset: int = 0) -> io.BytesIO:
        data = self.get_content(path)
        return io.BytesIO(data[offset:])

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes:
        with self._lock:
            node = self._files.get(path)
            if node is None:
                raise PathNotFoundError(path)
            if etag is not None and node.etag != etag:
                raise ObjectChangedError(path, etag)
            return node.data[offset : offset + max(length, 0)]  # a negative length would slice from the end

    def writer(self, path: str, append: bool = False) -> FileWriter:
        with self._lock:
            if not append:
                upload = _Upload(path)
                self._uploads.append(upload)
                return _InMemoryWriter(self, upload)
            for upload in self._uploads:
                if upload.path == path:
                    return _InMemoryWriter(self, upload)
            node = self._files.get(path)
            if node is None:
                raise PathNotFoundError(path)
            if node.data:
                raise DriverError(f"append to zero-size path {path} unsupported")
            upload = _Upload(path)
            self._uploads.append(upload)
            return _InMemoryWriter(self, upload)

    # -- namespace ----------------------------------------------------------------

    def _has_children(self, path: str) -> bool:
        prefix = "/" if path == "/" else path + "/"
        return any(key.startswith(prefix) for key in self._files)

    def stat(self, path: str) -> FileInfo:
        with self._lock:
            node = self._files.get(path)
            if node is not None:
                return FileInfo(path, len(node.data), node.mod_time, False, node.etag)
            if path == "/" or self._has_children(path):
                return FileInfo(path, 0, ZERO_TIME, True)
            raise PathNotFoundError(path)

    def stat_tree(self, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
        """As the s3 driver's (one LIST): the files below a directory of at most ``limit`` files."""
        with self._lock:
            info = self.stat(path)
            if not info.is_dir or path == "/":
                return info, None
            prefix = path + "/"
            below = [FileInfo(key, len(node.data), node.mod_time, False, node.etag)
                     for key, node in sorted(self._files.items()) if key.startswith(prefix)]
        return info, (below if len(below) <= limit else FirstFiles(below[: limit + 1]))

    def list_info(self, path: str) -> list[FileInfo]:
        prefix = "/" if path == "/" else path + "/"
        with self._lock:
            files: dict[str, FileInfo] = {}
            dirs: dict[str, FileInfo] = {}
            for key, node in self._files.items():
                if not key.startswith(prefix):
                    continue
                name, sep, _ = key[len(prefix) :].partition("/")
                child = prefix + name
                if sep:
                    dirs.setdefault(child, FileInfo(child, 0, ZERO_TIME, True))
                else:
                    files[child] = FileInfo(child, len(node.data), node.mod_time, False, node.etag)
        if not files and not dirs and path != "/":
            raise PathNotFoundError(path)
        return [files[k] for k in sorted(files)] + [dirs[k] for k in sorted(dirs)]

    def list(self, path: str) -> list[str]:
        return sorted(info.path for info in self.list_info(path))

    def move(self, source: str, dest: str) -> None:
        with self._lock:
            node = self._files.get(source)
            if node is None:
                raise PathNotFoundError(source)
            if source == dest:
                return
            self._files[dest] = _File(node.data, _now())
            del self._files[source]

    def delete(self, path: str) -> None:
        prefix = path + "/"
        with self._lock:
            doomed = [k for k in self._files if k == path or k.startswith(prefix)]
            if not doomed:
                raise PathNotFoundError(path)
            for key in doomed:
                del self._files[key]

    def redirect_url(
        self,
        method: str,
        path: str,
        *,
        client_ip: str | None = None,
        expires_in: float | None = None,
    ) -> str | None:
        return None

    # -- uploads (used by the writer) ---------------------------------------------

    def _commit(self, upload: _Upload) -> str:
        with self._lock:
            stored = self._files[upload.path] = _File(bytes(upload.data), _now())
            self._forget(upload)
            return stored.etag

    def _forget(self, upload: _Upload) -> None:
        with self._lock:
            self._uploads = [u for u in self._uploads if u is not upload]

    def in_progress_uploads(self) -> list[str]:
        """Paths with an unfinished write, oldest first (for tests and tools)."""
        with self._lock:
            return [u.path for u in self._uploads]


class _InMemoryWriter(FileWriter):
    """Buffers privately; ``close``/``commit`` move the buffer into the upload (v3 s3 semantics)."""

    def __init__(self, driver: InMemoryDriver, upload: _Upload) -> None:
        self._driver = driver
        self._upload = upload
        self._buffer = bytearray()
        self._closed = self._committed = self._cancelled = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._check_open()
        self._buffer += data
        return len(data)

    def size(self) -> int:
        return len(self._upload.data)

    def _flush(self) -> None:
        with self._driver._lock:
            self._upload.data += self._buffer
        self._buffer = bytearray()

    def close(self) -> None:
        if self._closed:
            raise WriterStateError("already closed")
        self._closed = True
        self._flush()

    def commit(self) -> str:
        self._check_open()
        self._flush()
        self._committed = True
        return self._driver._commit(self._upload)

    def cancel(self) -> None:
        self._check_open()
        self._cancelled = True
        self._driver._forget(self._upload)


def from_parameters(parameters: Mapping[str, Any]) -> InMemoryDriver:
    """The inmemory driver takes no parameters; unknown ones are an error."""
    if parameters:
        raise ParameterError(f"the inmemory driver takes no parameters, got: {', '.join(sorted(parameters))}")
    return InMemoryDriver()
