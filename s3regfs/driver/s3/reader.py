"""Reading objects: the s3 driver's ``reader`` stream and exact ranged reads.

Owns: :func:`read_exact_range` (one ranged GetObject whose body length is
verified; a short or truncated body is retried, then raised — never returned;
a body of ``ALIGNED_MIN`` bytes or more is received in place into page-aligned
memory, :func:`_read_aligned`)
and :class:`S3Reader`, the stream ``reader(path, offset)`` returns:

* one GetObject ``Range: bytes=offset-`` (as upstream), read straight from
  the HTTP response without decoding layers, so memory stays at one read;
* a stream that breaks mid-body or ends short is re-opened at the current
  offset, pinned to the first answer's ETag (``If-Match``) so that a
  replaced object is never spliced, under the shared retry policy; when the
  budget is spent the error is raised, never a short read.

(Parallel ranged reads are the job of the filesystem's readahead, which
calls :func:`read_exact_range` concurrently, pinned to the ETag the file had
when it was opened: ``If-Match`` on every GET; a 412, or an answer whose ETag
differs (a server that ignores ``If-Match``), is :class:`ObjectChangedError`.)
"""

from __future__ import annotations

import http.client
import logging
import threading
from typing import TYPE_CHECKING, Any

import botocore.exceptions
import botocore.response
import urllib3.exceptions

from s3regfs import alignedmem
from s3regfs.driver.errors import ObjectChangedError
from s3regfs.driver.retry import retry_call
from s3regfs.driver.s3.errors import error_code, http_status, map_error

if TYPE_CHECKING:
    from s3regfs.driver.s3.driver import S3Driver

log = logging.getLogger(__name__)

STREAM_READ = 1 << 20
ALIGNED_MIN = 1 << 20
"""Bodies of at least this many bytes are received into page-aligned memory (:func:`_read_aligned`)."""


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
    return error_code(exc) == "InvalidRange" or http_status(exc) == 416


def _total_size(resp: dict[str, Any]) -> int | None:
    """The object size from ``Content-Range: bytes a-b/total`` (None if absent or ``*``)."""
    content_range = resp.get("ContentRange") or ""
    _, _, total = content_range.rpartition("/")
    return int(total) if total.isdigit() else None


def _get(driver: S3Driver, path: str, range_header: str, etag: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Bucket": driver.bucket, "Key": driver.s3_path(path), "Range": range_header}
    if etag:
        kwargs["IfMatch"] = etag
    try:
        resp = driver.client.get_object(**kwargs)
    except botocore.exceptions.ClientError as exc:
        if etag and (http_status(exc) == 412 or error_code(exc) == "PreconditionFailed"):
            raise ObjectChangedError(path, etag) from exc
        raise map_error(path, exc) from exc
    if etag and resp.get("ETag") and resp["ETag"] != etag:
        resp["Body"].close()  # a server that ignored If-Match: these bytes are of another version
        raise ObjectChangedError(path, etag)
    return resp


def _read_body(resp: dict[str, Any]) -> bytes | memoryview:
    body = resp["Body"]
    expected = None if resp.get("ContentLength") is None else int(resp["ContentLength"])
    try:
        data = _read_aligned(body, expected) if expected is not None and expected >= ALIGNED_MIN else None
        if data is None:
            data = body.read()
    finally:
        body.close()
    if expected is not None and len(data) != expected:
        raise ShortBodyError(f"short body: got {len(data)} of {expected} bytes")
    return data


def _read_aligned(body: Any, size: int) -> memoryview | None:
    """The body received straight into page-aligned memory (:mod:`s3regfs.alignedmem`); None to read it as bytes.

    ``StreamingBody.read`` returns a new ``bytes`` that the data cache would copy again to write
    it with ``O_DIRECT``.  Here the HTTP response fills the buffer itself (``http.client``'s
    ``readinto``, under urllib3's response), and the connection goes back to urllib3's pool once
    every byte is read, as urllib3 does when it reads a body to its end.  Only a plain
    ``StreamingBody`` (not one that validates a checksum while reading) takes this way.
    """
    raw = getattr(body, "_raw_stream", None)
    source = getattr(raw, "_fp", None)
    if type(body) is not botocore.response.StreamingBody or not hasattr(source, "readinto"):
        return None
    buffer = alignedmem.allocate(size)
    if buffer is None:
        return None
    done = 0
    try:
        while done < size:
            got = source.readinto(buffer[done:])
            if not got:
                break
            done += got
    except (OSError, http.client.HTTPException) as exc:
        raise ShortBodyError(f"body broke after {done} of {size} bytes: {exc!r}") from exc
    if done < size:
        raise ShortBodyError(f"short body: got {done} of {size} bytes")
    raw.release_conn()
    return buffer


def read_exact_range(
    driver: S3Driver, path: str, offset: int, length: int, etag: str | None = None
) -> bytes | memoryview:
    """``length`` bytes at ``offset`` (fewer only at end of object); 416 → ``b""``.

    A body of ``ALIGNED_MIN`` bytes or more comes as a writable view of page-aligned memory.
    """
    if length <= 0:
        return b""

    def attempt() -> bytes | memoryview:
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

    def __init__(self, driver: S3Driver, path: str, offset: int) -> None:
        self._driver = driver
        self._path = path
        self._pos = offset
        self._end = offset  # end (exclusive) of the object, known after the first answer
        self._etag: str | None = None
        self._raw: Any = None  # the urllib3 response of the open GET
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, driver: S3Driver, path: str, offset: int) -> S3Reader:
        reader = cls(driver, path, offset)
        reader._open_first()
        return reader

    # -- opening -----------------------------------------------------------------------

    def _open_first(self) -> None:
        """One GetObject ``Range: bytes=offset-``; PathNotFoundError for a missing key, 416 → empty."""
        start = self._pos
        try:
            resp = _get(self._driver, self._path, f"bytes={start}-", None)
        except botocore.exceptions.ClientError as exc:
            if _is_invalid_range(exc):
                return  # offset at or past the end: an empty stream
            raise
        self._etag = resp.get("ETag")
        length = int(resp.get("ContentLength", 0))
        raw = resp["Body"]._raw_stream
        if not resp.get("ContentRange"):
            # The server ignored the Range header and sent the whole object: skip to the offset.
            self._end = length
            self._raw = raw
            self._skip(start)
        else:
            self._end = start + length
            self._raw = raw

    def _skip(self, count: int) -> None:
        self._pos = 0
        while self._pos < count:
            chunk = self._raw.read(min(count - self._pos, STREAM_READ), decode_content=False)
            if not chunk:
                break
            self._pos += len(chunk)

    def _reopen(self) -> None:
        """Re-open the stream at ``self._pos`` (same ETag) after it broke."""
        self._close_raw()
        resp = _get(self._driver, self._path, f"bytes={self._pos}-{self._end - 1}", self._etag)
        self._raw = resp["Body"]._raw_stream

    def _close_raw(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            try:
                if self._pos >= self._end:
                    raw.release_conn()  # fully read: the connection goes back to the pool
                else:
                    raw.close()
            except Exception:  # noqa: BLE001 - closing a broken stream
                pass

    # -- reading -----------------------------------------------------------------------

    def read(self, n: int = -1, /) -> bytes:
        with self._lock:
            if self._closed:
                raise ValueError("read of closed reader")
            if n is None or n < 0:
                parts = []
                while chunk := self._read_some(STREAM_READ * 8):
                    parts.append(chunk)
                return b"".join(parts)
            return self._read_some(n) if n else b""

    def readinto(self, target: bytearray | memoryview) -> int:
        data = self.read(len(target))
        memoryview(target)[: len(data)] = data
        return len(data)

    def _read_some(self, n: int) -> bytes:
        want = min(n, self._end - self._pos)
        if want <= 0:
            self._close_raw()
            return b""

        def attempt() -> bytes:
            if self._raw is None:
                self._reopen()
            try:
                data = self._raw.read(want, decode_content=False)
            except Exception:
                self._close_raw()
                raise
            if not data:
                self._close_raw()
                raise ShortBodyError(f"stream of {self._path} ended at {self._pos}, expected {self._end} bytes")
            return data

        data = retry_call(
            attempt, retryable=_retryable, policy=self._driver.retry, what=f"stream {self._path}@{self._pos}"
        )
        self._pos += len(data)
        return data

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_raw()

    @property
    def closed(self) -> bool:
        return self._closed

    def readable(self) -> bool:
        return True

    def __enter__(self) -> S3Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
