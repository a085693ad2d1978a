"""The s3 driver's FileWriter: a multipart upload with background part uploads.

Owns: opening a writer (new upload, or ``append=True`` resuming the oldest
in-progress upload of the key, docs/DRIVERS.md §W1), buffering into parts
(§W2), merging a resumed upload's small last part (§W3) and
close/commit/cancel (§W4).

v3 semantics: one buffer; every part is exactly ``chunksize`` bytes except the
last; ``size()`` counts only uploaded parts; commit of an empty file uploads an
empty part; a failed CompleteMultipartUpload aborts the upload; close keeps
the upload open for ``append=True``.

s3regfs addition: full parts upload in the background while the caller keeps
writing, at most ``partsinflight`` at a time; ``write`` blocks while the window
is full (back-pressure), so memory stays ≈ ``chunksize × (partsinflight + 1)``.
A failed part upload is raised by the next ``write``/``close``/``commit``.

Deviations from upstream (for docs/SEMANTICS.md):

* ``append=True`` picks the matching upload with the oldest ``Initiated``
  time and pages ListMultipartUploads with both markers; with no matching
  upload it checks the key with HEAD (upstream: only if the first page had no
  uploads at all, and via Stat, so a "directory" counted as size 0);
* the merge's CreateMultipartUpload sends all §S5 headers (upstream omits
  SSEKMSKeyId there);
* ``close`` after ``cancel`` only releases the buffer (no part upload);
* ``cancel`` (and a failed completion) aborts the upload with one attempt and,
  if S3 does not answer or refuses, hands it to the driver's background
  retries (``S3Driver.abort_soon``) instead of raising: the caller never waits
  for the abort's retries, and nothing is left behind once S3 answers again.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from s3regfs.driver.base import FileWriter
from s3regfs.driver.errors import DriverError, PathNotFoundError, WriterStateError
from s3regfs.driver.s3.params import MIN_CHUNK_SIZE

if TYPE_CHECKING:
    from s3regfs.driver.s3.driver import S3Driver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int


class S3FileWriter(FileWriter):
    """A FileWriter over one multipart upload (thread-safe)."""

    def __init__(self, driver: S3Driver, path: str, upload_id: str, parts: list[Part]) -> None:
        self._driver = driver
        self._path = path
        self._key = driver.s3_path(path)
        self._upload_id = upload_id
        self._chunk = driver.params.chunksize
        self._max_in_flight = driver.params.partsinflight
        self._parts: dict[int, Part] = {p.number: p for p in parts}
        self._next_number = max(self._parts, default=0) + 1
        self._size = sum(p.size for p in parts)
        self._buffer = bytearray()
        self._needs_merge = bool(parts) and parts[-1].size < MIN_CHUNK_SIZE
        self._closed = self._committed = self._cancelled = False
        self._api_lock = threading.RLock()  # one public call at a time
        self._state = threading.Condition()  # guards in-flight count, parts, size, error
        self._in_flight = 0
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"S3FileWriter(path={self._path!r}, upload_id={self._upload_id!r})"

    @property
    def upload_id(self) -> str:
        return self._upload_id

    # -- state checks ------------------------------------------------------------------

    def _raise_failed(self) -> None:
        with self._state:
            error = self._error
        if error is not None:
            raise DriverError(f"flush: upload part: {error}") from error

    # -- writing -----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> int:
        with self._api_lock:
            self._check_open()
            self._raise_failed()
            if self._needs_merge:
                self._merge_small_last_part()
            view = memoryview(data).cast("B")
            length = len(view)
            while view:
                room = self._chunk - len(self._buffer)
                self._buffer += view[:room]
                view = view[room:]
                if len(self._buffer) >= self._chunk:
                    self._submit(self._buffer)
                    self._buffer = bytearray()
            return length

    def _submit(self, data: bytearray) -> None:
        """Upload ``data`` as the next part in the background; blocks while the window is full."""
        with self._state:
            while self._in_flight >= self._max_in_flight and self._error is None:
                self._state.wait()
            if self._error is not None:
                error = self._error
                raise DriverError(f"flush: upload part: {error}") from error
            number = self._next_number
            self._next_number += 1
            self._in_flight += 1
        try:
            future = self._driver.pool("writer").submit(self._upload_part, number, data)
        except BaseException:
            with self._state:
                self._in_flight -= 1
                self._state.notify_all()
            raise
        future.add_done_callback(lambda f, n=number, size=len(data): self._part_done(f, n, size))

    def _upload_part(self, number: int, data: bytearray) -> str:
        resp = self._driver.client.upload_part(
            Bucket=self._driver.bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data
        )
        return str(resp["ETag"])

    def _part_done(self, future: Future[str], number: int, size: int) -> None:
        with self._state:
            self._in_flight -= 1
            if future.cancelled():
                self._error = self._error or RuntimeError(f"part {number} upload cancelled")
            elif future.exception() is not None:
                self._error = self._error or future.exception()
                log.warning("upload part %d of %s failed: %s", number, self._path, future.exception())
            else:
                self._parts[number] = Part(number, future.result(), size)
                self._size += size
            self._state.notify_all()

    def _drain(self) -> None:
        """Wait until no part is in flight; raise the first part failure."""
        with self._state:
            while self._in_flight:
                self._state.wait()
        self._raise_failed()

    def _flush(self) -> None:
        """Upload what is buffered (at most one part smaller than chunksize) and wait for all parts."""
        if self._buffer:
            if self._needs_merge:
                self._merge_small_last_part()
            if self._buffer:
                data, self._buffer = self._buffer, bytearray()
                self._submit(data)
        self._drain()

    # -- merging a small last part (docs/DRIVERS.md §W3) --------------------------------

    def _merge_small_last_part(self) -> None:
        """Merge a resumed upload's small last part: complete the upload, start a new one, carry the content over.

        S3 refuses to complete an upload whose parts other than the last are under 5 MiB, so a
        resumed upload whose last part is small cannot simply get more parts (§W3).
        """
        self._needs_merge = False
        client, bucket = self._driver.client, self._driver.bucket
        self._complete(sorted(self._parts.values(), key=lambda p: p.number))
        resp = client.create_multipart_upload(Bucket=bucket, Key=self._key, **self._driver.write_args())
        self._upload_id = resp["UploadId"]
        total = self._size
        self._parts = {}
        self._next_number = 1
        if total < MIN_CHUNK_SIZE:
            obj = client.get_object(Bucket=bucket, Key=self._key)
            body = obj["Body"]
            try:
                content = body.read()
            finally:
                body.close()
            if len(content) != total:
                raise DriverError(f"re-base of {self._path}: read {len(content)} bytes, expected {total}")
            self._size = 0
            self._buffer = bytearray(content) + self._buffer
        else:
            copy = client.upload_part_copy(
                Bucket=bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=1,
                CopySource={"Bucket": bucket, "Key": self._key},
            )
            self._parts = {1: Part(1, copy["CopyPartResult"]["ETag"], total)}
            self._next_number = 2

    def _complete(self, parts: list[Part]) -> str | None:
        """CompleteMultipartUpload, the object's ETag; on failure abort (:meth:`S3Driver.abort_soon`) and raise."""
        try:
            resp = self._driver.client.complete_multipart_upload(
                Bucket=self._driver.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
            )
        except Exception:
            self._driver.abort_soon(self._key, self._upload_id)
            raise
        return resp.get("ETag")

    # -- FileWriter --------------------------------------------------------------------

    def size(self) -> int:
        with self._state:
            return self._size

    def close(self) -> None:
        with self._api_lock:
            if self._closed:
                raise WriterStateError("already closed")
            self._closed = True
            if self._cancelled:
                self._buffer = bytearray()
                return
            try:
                self._flush()
            finally:
                self._buffer = bytearray()

    def commit(self) -> str | None:
        with self._api_lock:
            self._check_open()
            self._flush()
            self._committed = True
            with self._state:
                parts = sorted(self._parts.values(), key=lambda p: p.number)
            if not parts:
                resp = self._driver.client.upload_part(
                    Bucket=self._driver.bucket, Key=self._key, UploadId=self._upload_id, PartNumber=1, Body=b""
                )
                parts = [Part(1, str(resp["ETag"]), 0)]
                with self._state:
                    self._parts[1] = parts[0]
            return self._complete(parts)

    def cancel(self) -> None:
        with self._api_lock:
            self._check_open()
            self._cancelled = True
            self._buffer = bytearray()
            with self._state:
                while self._in_flight:
                    self._state.wait()
            self._driver.abort_soon(self._key, self._upload_id)


# -- opening ---------------------------------------------------------------------------


def open_writer(driver: S3Driver, path: str, append: bool) -> S3FileWriter:
    """``Writer(path, append)``: a new upload, or the resumed oldest upload of the key."""
    key = driver.s3_path(path)
    if not append:
        return _fresh(driver, path)
    matching = [u for u in driver.iter_uploads(key) if u["Key"] == key]
    if not matching:
        head = driver.head(path)
        if head is None:
            raise PathNotFoundError(path)
        if int(head["ContentLength"]) == 0:
            return _fresh(driver, path)
        raise DriverError(f"append to zero-size path {path} unsupported")
    upload = min(matching, key=lambda u: u["Initiated"])
    return S3FileWriter(driver, path, upload["UploadId"], _list_parts(driver, key, upload["UploadId"]))


def _fresh(driver: S3Driver, path: str) -> S3FileWriter:
    resp = driver.client.create_multipart_upload(
        Bucket=driver.bucket, Key=driver.s3_path(path), **driver.write_args()
    )
    return S3FileWriter(driver, path, resp["UploadId"], [])


def _list_parts(driver: S3Driver, key: str, upload_id: str) -> list[Part]:
    parts: list[Part] = []
    kwargs: dict[str, Any] = {"Bucket": driver.bucket, "Key": key, "UploadId": upload_id}
    while True:
        resp = driver.client.list_parts(**kwargs)
        parts.extend(Part(int(p["PartNumber"]), str(p["ETag"]), int(p["Size"])) for p in resp.get("Parts", []))
        if not resp.get("IsTruncated"):
            break
        kwargs["PartNumberMarker"] = resp["NextPartNumberMarker"]
    return sorted(parts, key=lambda p: p.number)
