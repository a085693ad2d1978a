"""Reading objects: the s3 driver's ``reader`` stream and exact ranged reads.

Owns: :func:`read_exact_range` (one ranged GetObject whose body length is
verified; a short or truncated body is retried, then raised — never returned)
and :class:`S3Reader`, the stream ``reader(path, offset)`` returns:

* the first ``chunksize`` bytes are streamed from one ranged GetObject, so a
  small read of a large object costs one request;
* once the caller has read past that, the following ``chunksize`` ranges are
  fetched in parallel, at most ``partsinflight`` ahead, all pinned to the
  first response's ETag (``If-Match``) so that a replaced object is never
  spliced; memory stays ≈ ``chunksize × (partsinflight + 1)``;
* a stream that breaks mid-body is re-opened at the current offset under the
  shared retry policy.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import botocore.exceptions
import urllib3.exceptions

from s3regfs.driver.retry import Deadline, retry_call

if TYPE_CHECKING:
    from s3regfs.driver.s3.driver import S3Driver

log = logging.getLogger(__name__)

STREAM_READ = 1 << 20


class ShortBodyError(IOError):
    """The server sent fewer bytes than it announced."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(
        exc,
        (
            ShortBodyError,
            urllib3.exceptions.ProtocolError,
            urllib3.exceptions.ReadTimeoutError,
            botocore.exceptions.ResponseStreamingError,
            botocore.exceptions.IncompleteReadError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectionClosedError,
            ConnectionError,
        ),
    )


def _is_invalid_range(exc: BaseException) -> bool:
    from s3regfs.driver.s3.driver import error_code, http_status

    return error_code(exc) == "InvalidRange" or http_status(exc) == 416


def _total_size(resp: dict[str, Any]) -> int | None:
    """The object size from ``Content-Range: bytes a-b/total`` (None if absent or ``*``)."""
    content_range = resp.get("ContentRange") or ""
    _, _, total = content_range.rpartition("/")
    return int(total) if total.isdigit() else None


def _get(driver: "S3Driver", path: str, range_header: str, etag: str | None) -> dict[str, Any]:
    from s3regfs.driver.s3.driver import map_error

    kwargs: dict[str, Any] = {"Bucket": driver.bucket, "Key": driver.s3_path(path), "Range": range_header}
    if etag:
        kwargs["IfMatch"] = etag
    try:
        return driver.client.get_object(**kwargs)
    except botocore.exceptions.ClientError as exc:
        raise map_error(path, exc) from exc


def _read_body(resp: dict[str, Any]) -> bytes:
    body = resp["Body"]
    try:
        data = body.read()
    finally:
        body.close()
    expected = resp.get("ContentLength")
    if expected is not None and len(data) != int(expected):
        raise ShortBodyError(f"short body: got {len(data)} of {expected} bytes")
    return data


def read_exact_range(
    driver: "S3Driver", path: str, offset: int, length: int, etag: str | None = None
) -> bytes:
    """``length`` bytes at ``offset`` (fewer only at end of object); 416 → ``b""``."""
    if length <= 0:
        return b""

    def attempt() -> bytes:
        try:
            resp = _get(driver, path, f"bytes={offset}-{offset + length - 1}", etag)
        except botocore.exceptions.ClientError as exc:
            if _is_invalid_range(exc):
                return b""
            raise
        data = _read_body(resp)
        if not resp.get("ContentRange") and resp.get("ResponseMetadata", {}).get("HTTPStatusCode") == 200:
            return data[offset : offset + length]  # the server ignored the Range header
        total = _total_size(resp)
        expected = length if total is None else max(0, min(length, total - offset))
        if len(data) != expected:
            raise ShortBodyError(f"range read of {path} at {offset}: got {len(data)} of {expected} bytes")
        return data

    return retry_call(attempt, retryable=_retryable, policy=driver.retry, what=f"read {path}@{offset}")


class S3Reader:
    """A readable binary stream over one object from an offset (see the module docstring)."""

    def __init__(self, driver: "S3Driver", path: str, offset: int) -> None:
        self._driver = driver
        self._path = path
        self._pos = offset
        self._block = driver.params.chunksize
        self._window = driver.params.partsinflight
        self._size: int | None = None
        self._etag: str | None = None
        self._body: Any = None
        self._body_end = offset  # end (exclusive) of the range the current body covers
        self._buffer = memoryview(b"")
        self._prefetch: deque[tuple[int, Future[bytes]]] = deque()
        self._next_fetch = 0
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, driver: "S3Driver", path: str, offset: int) -> "S3Reader":
        reader = cls(driver, path, offset)
        reader._open_first()
        return reader

    # -- opening -----------------------------------------------------------------------

    def _open_first(self) -> None:
        """Open the first streamed range; raises PathNotFoundError for a missing key."""
        start, end = self._pos, self._pos + self._block - 1
        try:
            resp = _get(self._driver, self._path, f"bytes={start}-{end}", None)
        except botocore.exceptions.ClientError as exc:
            if _is_invalid_range(exc):
                self._size = start  # offset at or past the end: an empty stream
                self._body_end = start
                return
            raise
        self._etag = resp.get("ETag")
        total = _total_size(resp)
        if total is None and not resp.get("ContentRange"):
            # The server ignored the Range header and sent the whole object.
            total = int(resp.get("ContentLength", 0))
            self._skip_prefix(resp["Body"], start)
            self._body_end = total
        else:
            self._body_end = start + int(resp.get("ContentLength", 0))
        self._size = total
        self._body = resp["Body"]
        self._next_fetch = self._body_end

    @staticmethod
    def _skip_prefix(body: Any, count: int) -> None:
        while count > 0:
            chunk = body.read(min(count, STREAM_READ))
            if not chunk:
                return
            count -= len(chunk)

    def _reopen_body(self) -> None:
        """Re-open the current streamed range at ``self._pos`` after a broken stream."""
        self._close_body()
        resp = _get(self._driver, self._path, f"bytes={self._pos}-{self._body_end - 1}", self._etag)
        self._body = resp["Body"]

    def _close_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            try:
                body.close()
            except Exception:  # noqa: BLE001 - closing a broken stream
                pass

    # -- reading -----------------------------------------------------------------------

    def read(self, n: int = -1, /) -> bytes:
        with self._lock:
            if self._closed:
                raise ValueError("read of closed reader")
            if n is None or n < 0:
                parts = []
                while True:
                    chunk = self._read_some(1 << 30)
                    if not chunk:
                        return b"".join(parts)
                    parts.append(chunk)
            return self._read_some(n) if n else b""

    def readinto(self, target: bytearray | memoryview) -> int:
        data = self.read(len(target))
        memoryview(target)[: len(data)] = data
        return len(data)

    def _read_some(self, n: int) -> bytes:
        if self._buffer:
            return self._take(n)
        if self._size is not None and self._pos >= self._size:
            return b""
        if self._body is not None and self._pos < self._body_end:
            return self._read_stream(n)
        self._close_body()
        if not self._next_block():
            return b""
        return self._take(n)

    def _take(self, n: int) -> bytes:
        chunk = bytes(self._buffer[:n])
        self._buffer = self._buffer[len(chunk) :]
        self._pos += len(chunk)
        return chunk

    def _read_stream(self, n: int) -> bytes:
        want = min(n, self._body_end - self._pos)
        deadline = Deadline(self._driver.retry.deadline)

        def attempt() -> bytes:
            if self._body is None:
                self._reopen_body()
            try:
                data = self._body.read(want)
            except Exception:
                self._close_body()
                raise
            if not data:
                self._close_body()
                raise ShortBodyError(
                    f"stream of {self._path} ended at {self._pos}, expected data up to {self._body_end}"
                )
            return data

        data = retry_call(
            attempt, retryable=_retryable, policy=self._driver.retry, deadline=deadline,
            what=f"stream {self._path}@{self._pos}",
        )
        self._pos += len(data)
        return data

    def _next_block(self) -> bool:
        """Make the block at ``self._pos`` the buffer (parallel prefetch); False at the end."""
        assert self._size is not None
        self._fill_window()
        if not self._prefetch:
            return False
        start, future = self._prefetch.popleft()
        data = future.result()
        expected = min(self._block, self._size - start)
        if start != self._pos or len(data) != expected:
            raise ShortBodyError(
                f"read of {self._path} at {start}: got {len(data)} of {expected} bytes (object changed?)"
            )
        self._buffer = memoryview(data)
        self._fill_window()
        return True

    def _fill_window(self) -> None:
        assert self._size is not None
        pool = self._driver.pool("reader")
        while len(self._prefetch) < self._window and self._next_fetch < self._size:
            start = self._next_fetch
            length = min(self._block, self._size - start)
            future = pool.submit(read_exact_range, self._driver, self._path, start, length, self._etag)
            self._prefetch.append((start, future))
            self._next_fetch = start + length

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_body()
            for _, future in self._prefetch:
                future.cancel()
            self._prefetch.clear()
            self._buffer = memoryview(b"")

    @property
    def closed(self) -> bool:
        return self._closed

    def readable(self) -> bool:
        return True

    def __enter__(self) -> "S3Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
