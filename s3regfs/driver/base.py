"""The StorageDriver contract (port of distribution v3 ``storagedriver.go``/``fileinfo.go``).

Owns: the path rule (:data:`PATH_RE`), :class:`FileInfo`, the abstract
:class:`FileWriter` and :class:`StorageDriver`, and the default
implementations of derived operations (``get_content``, ``read_range``,
``list_info``, ``walk``) that a driver overrides only when its backend has a
cheaper call.

Python idiom for the Go API:

* ``ctx`` arguments are dropped; errors are exceptions from
  :mod:`s3regfs.driver.errors`.
* ``reader`` returns a readable binary stream (``read(n)`` returns ``b""`` at
  EOF) that the caller must ``close()``.
* ``redirect_url(method, path)`` returns ``None`` for "no redirect" (Go: ``""``).
* A walk function signals ``ErrSkipDir``/``ErrFilledBuffer`` by *raising*
  :class:`SkipDir`/:class:`FilledBuffer`.

Extensions beyond upstream (all with defaults written on the primitives, so
every driver has them; numbered as in docs/DRIVERS.md):

1. ``read_range(path, offset, length, etag=None)``: at most ``length`` bytes at
   ``offset`` (``bytes`` or a ``memoryview``); with ``etag``, only of that version of the file, else
   :class:`~s3regfs.driver.errors.ObjectChangedError`.
2. ``list_info(path)``: the children with their :class:`FileInfo`, so a
   directory listing needs no per-entry ``stat``.
3. ``bucket_key(path)``: the backend object key, or ``None`` for drivers
   without one (used by the CloudFront middleware).
4. ``FileInfo.etag``: an opaque name of the file's current version (the S3
   ETag; ``None`` for directories and for drivers that cannot tell), equal
   in ``stat``, ``list_info`` and ``walk``, different once the content is
   replaced by other bytes.  It is what ``read_range`` pins to.
5. ``multipart_uploads()``: the driver's :class:`MultipartUploads` (the
   in-progress uploads of ``s3regfs uploads``), or ``None`` for drivers
   without them; wrappers pass it through, as ``bucket_key``.
6. ``drop_caches()``: forget what the driver or a wrapper caches about the
   store (the reload on SIGHUP); a no-op for drivers that cache nothing;
   wrappers pass it through.
7. ``stat_tree(path, limit)``: ``stat``, and for a directory holding at most
   ``limit`` files (at any depth) those files' FileInfos; for a larger one,
   where the driver can tell cheaply, the first files below it in key order
   as :class:`FirstFiles`; else ``None``.  The s3 driver answers all of it
   with one LIST (a lookup by path in one request).  The default is ``stat``
   alone.
8. ``put_content`` and ``FileWriter.commit`` return the version they made
   (the ``FileInfo.etag`` a ``stat`` right after would show: the S3 ETag of
   the PUT or CompleteMultipartUpload answer), or ``None`` when the driver
   cannot tell; upstream returns only an error.  Wrappers pass it through.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import BinaryIO, Protocol

from s3regfs.driver.errors import ObjectChangedError, PathNotFoundError, WriterStateError
from s3regfs.driver.walk import WalkFn, walk_fallback

PATH_RE = re.compile(r"(/[A-Za-z0-9._-]+)+")
"""Upstream ``PathRegexp`` (``^(/[A-Za-z0-9._-]+)+$``); always use ``fullmatch``."""

ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""Go's zero ``time.Time``: the mod time s3 reports for directories."""


@dataclass(frozen=True)
class FileInfo:
    """What ``stat`` tells about a path (``FileInfoFields``)."""

    path: str
    size: int
    mod_time: datetime
    is_dir: bool
    etag: str | None = None
    """The version of a file (extension 4 in the module docstring); None when unknown."""


class FirstFiles(list[FileInfo]):
    """``stat_tree``'s files of a directory with more files than its limit (extension 7): the first ones
    below it in key order, as one LIST that stopped returned them; every file of a directory below that
    sorts before the last of them is here."""


class Readable(Protocol):
    """The stream ``reader`` returns."""

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class FileWriter(abc.ABC):
    """A resumable writer (``storagedriver.FileWriter``).

    Canonical use: ``write``* → ``commit`` → ``close`` to finish a file, or
    ``write``* → ``close`` to pause and later ``writer(path, append=True)``.
    State errors raise :class:`~s3regfs.driver.errors.WriterStateError` with
    the upstream texts ``already closed``/``already committed``/``already cancelled``.
    """

    _closed: bool = False
    _committed: bool = False
    _cancelled: bool = False

    def _check_open(self) -> None:
        """Raise the upstream state error unless the writer may still write/commit/cancel."""
        if self._closed:
            raise WriterStateError("already closed")
        if self._committed:
            raise WriterStateError("already committed")
        if self._cancelled:
            raise WriterStateError("already cancelled")

    @abc.abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Accept ``data``; return its length."""

    @abc.abstractmethod
    def size(self) -> int:
        """Bytes written so far; may lag until ``close``/``commit`` (read it only then)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush what is buffered; the write may be resumed with ``append=True``."""

    @abc.abstractmethod
    def commit(self) -> str | None:
        """Flush and make the content visible at the path; the version made (extension 8) or None."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Abandon the write; nothing becomes visible."""

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class UploadInfo:
    """An in-progress multipart upload (for ``s3regfs uploads list``)."""

    path: str | None
    """The driver path, or None when the key is outside the root or not a valid path."""
    key: str
    upload_id: str
    initiated: datetime


class MultipartUploads(Protocol):
    """The in-progress multipart uploads of a driver (extension 5): ``s3regfs uploads list`` and ``abort``."""

    def list_uploads(self, path: str = "/") -> Sequence[UploadInfo]:
        """The in-progress uploads at or under ``path``, oldest first."""
        ...

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort upload ``upload_id`` of ``key`` (a raw bucket key, as in :attr:`UploadInfo.key`)."""
        ...


class StorageDriver(abc.ABC):
    """The registry's storage driver interface (v3 semantics)."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The registration name stamped on errors (``inmemory``, ``s3aws``)."""

    @abc.abstractmethod
    def get_content(self, path: str) -> bytes:
        """The whole content at ``path`` (small objects)."""

    @abc.abstractmethod
    def put_content(self, path: str, content: bytes) -> str | None:
        """Store ``content`` at ``path``, replacing what was there; the version made (extension 8) or None."""

    @abc.abstractmethod
    def reader(self, path: str, offset: int = 0) -> BinaryIO | Readable:
        """A stream of the content from ``offset``; offset ≥ size gives an empty stream."""

    @abc.abstractmethod
    def writer(self, path: str, append: bool = False) -> FileWriter:
        """A :class:`FileWriter`; ``append`` resumes an unfinished write."""

    @abc.abstractmethod
    def stat(self, path: str) -> FileInfo:
        """The :class:`FileInfo` of ``path``."""

    @abc.abstractmethod
    def list(self, path: str) -> list[str]:
        """Absolute paths of the direct children of ``path``."""

    @abc.abstractmethod
    def move(self, source: str, dest: str) -> None:
        """Move ``source`` to ``dest``, overwriting it."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Delete ``path`` and everything below it (never prefix siblings)."""

    @abc.abstractmethod
    def redirect_url(
        self,
        method: str,
        path: str,
        *,
        client_ip: str | None = None,
        expires_in: float | None = None,
    ) -> str | None:
        """A URL from which ``path`` can be fetched with ``method``, or ``None`` (no redirect).

        ``client_ip`` stands in for the Go ``*http.Request`` (used by the
        CloudFront IP filter); ``expires_in`` (seconds) overrides the
        driver's default lifetime where it has one.
        """

    def walk(self, path: str, fn: WalkFn, start_after_hint: str = "") -> None:
        """Visit every file and directory below ``path`` (not ``path`` itself)."""
        walk_fallback(self, path, fn, start_after_hint)

    # -- extensions with defaults on the primitives --------------------------------

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes | memoryview:
        """At most ``length`` bytes at ``offset`` (fewer only at end of file).

        ``bytes``, or a ``memoryview`` the caller owns (s3: a large body in page-aligned memory).
        With ``etag``, the bytes are of that version or :class:`ObjectChangedError` is raised.
        This default (for drivers without a conditional read) checks ``stat`` before and
        after the read; drivers with one override it.
        """
        if etag is None:
            return self._read_stream(path, offset, length)
        self._check_version(path, etag)
        data = self._read_stream(path, offset, length)
        self._check_version(path, etag)
        return data

    def _check_version(self, path: str, etag: str) -> None:
        if self.stat(path).etag != etag:
            raise ObjectChangedError(path, etag)

    def _read_stream(self, path: str, offset: int, length: int) -> bytes:
        stream = self.reader(path, offset)
        try:
            chunks: list[bytes] = []
            remaining = length
            while remaining > 0:
                chunk = stream.read(remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            return b"".join(chunks)
        finally:
            stream.close()

    def list_info(self, path: str) -> list[FileInfo]:
        """The children of ``path`` with their :class:`FileInfo` (vanished children skipped)."""
        infos = []
        for child in self.list(path):
            try:
                infos.append(self.stat(child))
            except PathNotFoundError:
                continue
        return infos

    def bucket_key(self, path: str) -> str | None:
        """The backend object key for ``path``, or ``None`` when there is none."""
        return None

    def multipart_uploads(self) -> MultipartUploads | None:
        """The driver's in-progress multipart uploads (extension 5), or ``None`` when it has none."""
        return None

    def stat_tree(self, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
        """``stat(path)``, and every file below a directory of at most ``limit`` files (extension 7).

        For a directory with more files than ``limit``, the first of them in key order (:class:`FirstFiles`)
        or None; None when the driver cannot tell cheaply (this default) and for a file.
        """
        return self.stat(path), None

    def drop_caches(self) -> None:
        """Forget what is cached about the store (extension 6); no-op by default."""

    def close(self) -> None:
        """Release clients, pools and threads (no-op by default)."""
