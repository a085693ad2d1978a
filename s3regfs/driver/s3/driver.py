"""The ``s3aws`` storage driver on boto3 (port of distribution v3's s3-aws driver).

Owns: key mapping under ``rootdirectory`` (docs/DRIVERS.md §S4), the write
headers (§S5) and the method → S3 API mapping (§S7).  The boto3 client and
its tuning (§S3) are :mod:`.client`, the S3 error mapping (§S6) is
:mod:`.errors`, reads are :mod:`.reader` and the multipart writer
:mod:`.writer`.

Wire behaviour follows upstream v3 (main where it fixed bugs): ListObjectsV2
everywhere, HEAD-then-list ``stat``, recursive ``delete`` in batches of 1000,
``move`` = CopyObject or parallel UploadPartCopy, a flat-listing ``walk``,
presigned GET/HEAD redirects (20 minutes).

Deviations from upstream (for docs/SEMANTICS.md):

1. ``stat``: the list fallback uses ``Prefix=key + "/"``, so ``/a`` is a
   directory only if something lives under ``/a/`` (upstream: any key
   starting with ``a``, e.g. ``ab``).  ``stat("/")`` is always a directory.
   After a HEAD refused with 403, a ``Prefix=key`` listing still finds the file.
2. ``delete``: a path with no key and nothing under ``path/`` is
   PathNotFoundError, also when only prefix siblings exist (upstream v3
   returns success then).  Siblings are never listed.
3. ``move(p, p)`` is a no-op after checking that ``p`` exists (upstream fails:
   S3 refuses an in-place copy).  ``move`` deletes only the source key, not
   keys under ``source/`` (upstream runs its recursive Delete on the source).
   A failed multipart copy aborts its upload (upstream leaks it).
4. Multipart copy runs on at most ``min(multipartcopymaxconcurrency, 16)``
   threads.
5. ``list``/``list_info``/``walk`` skip keys that map to invalid paths: folder
   placeholders ending in ``/`` (upstream lists ``/x/``) and keys with
   characters outside the path alphabet or empty components.  A placeholder
   still makes its directory exist.
6. ``walk`` remembers a SkipDir only for directories (upstream also for a
   file, hiding keys under a same-named directory) and uses main's
   ``/``-boundary test (``1.2`` does not hide ``1.20``).
7. The reader re-opens a stream that breaks mid-body at the current offset
   (``If-Match`` on the ETag, the shared retry budget) and raises if the body
   ends short; upstream hands out the raw HTTP body.  ``read_range`` verifies
   the body length and never returns short data silently; with an ``etag`` it
   sends ``If-Match`` and raises ObjectChangedError on 412 (or on a response
   whose ETag differs, for a server that ignores the header).  ``FileInfo``
   carries the ETag from HeadObject and ListObjectsV2.
8. ``v4auth: false`` is refused on Amazon S3 naming a v4-only region; presigned
   URLs then use the SigV2 query form (upstream: unsupported).
9. ``forcepathstyle: false`` lets botocore choose the addressing style
   (virtual-hosted where possible, path style for IP endpoints and non-DNS
   bucket names); upstream always asks for virtual-hosted style.
10. Credentials and checksums: static keys when both are set, boto3's
    default chain when neither is (half a pair is refused by the
    parameters); checksums only where required (§S2).
11. ``verifyprefixes`` (s3regfs only, off by default, on for the bundled
    SeaweedFS): every common prefix of a directory listing is confirmed by a
    one-key listing, and a directory's own marker counts only if a plain
    listing shows it, because SeaweedFS reports emptied directories for
    minutes after their last key is gone.
12. Retries: the one policy of :mod:`s3regfs.driver.retry` (transient
    errors, an overall deadline) instead of the SDK's default retryer.
13. ``list_uploads``/``abort_upload`` (for ``s3regfs uploads``) are s3regfs
    extensions; ``partsinflight`` bounds the writer's background uploads.
14. An abandoned multipart upload (cancelled writer, failed completion or
    multipart copy) is aborted with one attempt; if that fails it is retried
    in the background (:mod:`.aborts`) and once more by ``finish_aborts``
    (called by ``close`` and at unmount), which logs each one left at ERROR.
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, BinaryIO

import botocore.exceptions

from s3regfs.driver.base import (
    PATH_RE,
    ZERO_TIME,
    FileInfo,
    FileWriter,
    MultipartUploads,
    Readable,
    StorageDriver,
    UploadInfo,
)
from s3regfs.driver.errors import DriverErrors, FilledBuffer, PathNotFoundError, SkipDir
from s3regfs.driver.retry import DEFAULT_POLICY, Deadline, RetryPolicy, deadline_scope
from s3regfs.driver.s3.aborts import PendingAborts
from s3regfs.driver.observe import RequestEvents
from s3regfs.driver.s3.client import configure_logging, credential_source, make_client, watch_requests
from s3regfs.driver.s3 import lookup
from s3regfs.driver.s3.errors import error_code, http_status, map_error
from s3regfs.driver.s3.params import NO_STORAGE_CLASS, S3Parameters
from s3regfs.driver.s3.reader import S3Reader, read_exact_range
from s3regfs.driver.s3.writer import open_writer
from s3regfs.driver.walk import WalkFn, is_subpath

log = logging.getLogger(__name__)

DRIVER_NAME = "s3aws"
LIST_MAX = 1000
PRESIGN_EXPIRY = 20 * 60
MAX_COPY_THREADS = 16
MAX_WRITER_THREADS = 16
CONTENT_TYPE = "application/octet-stream"


class S3Driver(StorageDriver):
    """A StorageDriver on one S3 bucket (driver name ``s3aws``)."""

    def __init__(self, params: S3Parameters, *, retry: RetryPolicy = DEFAULT_POLICY, session: Any = None) -> None:
        self.params = params
        self.retry = retry
        self.bucket = params.bucket
        self._root = params.rootdirectory.rstrip("/")
        self._root_prefix = self.s3_path("")
        configure_logging(params.loglevel)
        self._session = session
        self.outage: Any = None  # the main client's Outage (set by _make_client)
        self.requests = RequestEvents()  # every HTTP attempt, for whoever watches (metrics, status)
        self.client = self._make_client(params.regionendpoint)
        self._aborts = PendingAborts(self._abort_once)
        self._presign_client_cache: Any = None
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pools_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"S3Driver(bucket={self.bucket!r}, endpoint={self.params.regionendpoint!r})"

    @property
    def name(self) -> str:
        return DRIVER_NAME

    # -- client ------------------------------------------------------------------------

    def _make_client(self, endpoint: str) -> Any:
        client, outage = make_client(self.params, endpoint, self.retry, self._session)
        watch_requests(client, self.requests)
        if self.outage is None:
            self.outage = outage
        return client

    def _presign_client(self) -> Any:
        if not self.params.redirectendpoint:
            return self.client
        if self._presign_client_cache is None:
            self._presign_client_cache = self._make_client(self.params.redirectendpoint)
        return self._presign_client_cache

    def credential_source(self) -> tuple[str, str] | None:
        """Where the client's credentials come from: (botocore's ``method``, a description); None if none."""
        return credential_source(self.client, self._session)

    def pool(self, kind: str) -> ThreadPoolExecutor:
        """The driver's thread pool ``kind`` (``writer``, ``copy``, ``reader``), created lazily."""
        with self._pools_lock:
            if self._closed:
                raise RuntimeError("driver closed")
            pool = self._pools.get(kind)
            if pool is None:
                workers = {
                    "copy": min(self.params.multipartcopymaxconcurrency, MAX_COPY_THREADS),
                    "writer": MAX_WRITER_THREADS,
                    "reader": MAX_WRITER_THREADS,
                }[kind]
                pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"s3-{kind}")
                self._pools[kind] = pool
            return pool

    def close(self) -> None:
        self.finish_aborts()
        with self._pools_lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- key mapping -------------------------------------------------------------------

    def s3_path(self, path: str) -> str:
        """Upstream ``s3Path``: root (trailing ``/`` removed) + path, leading ``/`` removed."""
        return (self._root + path).lstrip("/")

    def bucket_key(self, path: str) -> str | None:
        return self.s3_path(path)

    def multipart_uploads(self) -> MultipartUploads:
        return self  # list_uploads, abort_upload below

    def key_to_path(self, key: str) -> str:
        """Upstream reverse mapping (first occurrence of the root prefix replaced)."""
        if self._root_prefix:
            return key.replace(self._root_prefix, "", 1)
        return "/" + key

    def _dir_prefix(self, path: str) -> str:
        """The listing prefix of the children of ``path`` (``""`` or ``root/`` for ``/``)."""
        return self.s3_path(path.rstrip("/") + "/")

    def write_args(self, *, with_kms_key: bool = True) -> dict[str, Any]:
        """The §S5 headers of PutObject / CreateMultipartUpload / CopyObject."""
        p = self.params
        args: dict[str, Any] = {"ContentType": CONTENT_TYPE, "ACL": p.objectacl}
        if p.encrypt:
            args["ServerSideEncryption"] = "aws:kms" if p.keyid else "AES256"
        if p.keyid and with_kms_key:
            args["SSEKMSKeyId"] = p.keyid
        if p.storageclass != NO_STORAGE_CLASS:
            args["StorageClass"] = p.storageclass
        return args

    # -- content -----------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        stream = self.reader(path, 0)
        try:
            return stream.read()
        finally:
            stream.close()

    def put_content(self, path: str, content: bytes) -> str | None:
        try:
            resp = self.client.put_object(Bucket=self.bucket, Key=self.s3_path(path), Body=bytes(content),
                                          **self.write_args())
        except botocore.exceptions.ClientError as exc:
            raise map_error(path, exc) from exc
        return resp.get("ETag")

    def reader(self, path: str, offset: int = 0) -> BinaryIO | Readable:
        return S3Reader.open(self, path, offset)

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes | memoryview:
        return read_exact_range(self, path, offset, length, etag)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        return open_writer(self, path, append)

    # -- namespace ---------------------------------------------------------------------

    def head(self, path: str) -> dict[str, Any] | None:
        """HeadObject of ``path``'s key; None when it does not exist (404)."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.s3_path(path))
        except botocore.exceptions.ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in ("404", "NotFound", "NoSuchKey"):
                return None
            raise

    def _has_children(self, path: str) -> bool:
        resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._dir_prefix(path), MaxKeys=1)
        return bool(resp.get("Contents") or resp.get("CommonPrefixes"))

    def stat(self, path: str) -> FileInfo:
        if path == "/":
            return FileInfo("/", 0, ZERO_TIME, True)
        key = self.s3_path(path)
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
            return FileInfo(path, int(resp["ContentLength"]), resp["LastModified"], False, resp.get("ETag"))
        except botocore.exceptions.ClientError as exc:
            if http_status(exc) != 404:
                # e.g. 403 from a policy that allows List but not Head: find the file by listing.
                info = self._stat_by_listing(path, key)
                if info is not None:
                    return info
        try:
            if self._has_children(path):
                return FileInfo(path, 0, ZERO_TIME, True)
        except botocore.exceptions.ClientError as exc:
            raise map_error(path, exc) from exc
        raise PathNotFoundError(path)

    def stat_tree(self, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
        return lookup.stat_tree(self, path, limit)  # one LIST (extension 7)

    def _stat_by_listing(self, path: str, key: str) -> FileInfo | None:
        try:
            resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        except botocore.exceptions.ClientError as exc:
            raise map_error(path, exc) from exc
        for obj in resp.get("Contents", []):
            if obj["Key"] == key:
                return FileInfo(path, int(obj["Size"]), obj["LastModified"], False, obj.get("ETag"))
        return None

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """ListObjectsV2 pages (continuation tokens), MaxKeys 1000."""
        kwargs.setdefault("MaxKeys", LIST_MAX)
        token = None
        while True:
            if token:
                kwargs["ContinuationToken"] = token
            resp = self.client.list_objects_v2(Bucket=self.bucket, **kwargs)
            yield resp
            token = resp.get("NextContinuationToken")
            if not resp.get("IsTruncated") or not token:
                return

    def child_path(self, name_key: str) -> str | None:
        """The driver path of a listed key or common prefix, None if it is not a valid path."""
        path = self.key_to_path(name_key.rstrip("/") if name_key.endswith("/") else name_key)
        return path if PATH_RE.fullmatch(path) else None

    def list_info(self, path: str) -> list[FileInfo]:
        prefix = self._dir_prefix(path)
        files: list[FileInfo] = []
        dirs: list[FileInfo] = []
        exists = placeholder = False
        try:
            for page in self._pages(Prefix=prefix, Delimiter="/"):
                for obj in page.get("Contents", []):
                    if obj["Key"] == prefix:
                        placeholder = True  # the directory's own marker: it exists, but is no child
                        continue
                    exists = True
                    if obj["Key"].endswith("/"):
                        continue  # a folder placeholder: makes the directory exist, is no child
                    child = self.child_path(obj["Key"])
                    if child is None:
                        log.debug("list %s: skipping key %r (not a valid path)", path, obj["Key"])
                        continue
                    size, etag = int(obj["Size"]), obj.get("ETag")
                    files.append(FileInfo(child, size, obj["LastModified"], False, etag))
                prefixes = [c["Prefix"] for c in page.get("CommonPrefixes", [])]
                if self.params.verifyprefixes:
                    prefixes = self._nonempty_prefixes(prefixes)
                for common in prefixes:
                    exists = True
                    child = self.child_path(common)
                    if child is None:
                        log.debug("list %s: skipping prefix %r (not a valid path)", path, common)
                        continue
                    dirs.append(FileInfo(child, 0, ZERO_TIME, True))
            if placeholder and not exists and self.params.verifyprefixes:
                # SeaweedFS shows an emptied directory as its own marker in a delimited listing;
                # a real marker object also appears in a plain listing.
                placeholder = bool(self._nonempty_prefixes([prefix]))
        except botocore.exceptions.ClientError as exc:
            raise map_error(path, exc) from exc
        if not (exists or placeholder) and path != "/":
            raise PathNotFoundError(path)
        return files + dirs

    def _nonempty_prefixes(self, prefixes: list[str]) -> list[str]:
        """The prefixes with at least one key under them (``verifyprefixes``), in parallel."""
        if not prefixes:
            return prefixes

        def has_keys(prefix: str) -> bool:
            resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
            return bool(resp.get("Contents"))

        if len(prefixes) == 1:
            return prefixes if has_keys(prefixes[0]) else []
        flags = list(self.pool("reader").map(has_keys, prefixes))
        return [p for p, keep in zip(prefixes, flags) if keep]

    def list(self, path: str) -> list[str]:
        return [info.path for info in self.list_info(path)]

    def move(self, source: str, dest: str) -> None:
        head = self.head(source)
        if head is None:
            raise PathNotFoundError(source)
        if source == dest:
            return
        size = int(head["ContentLength"])
        src_key, dst_key = self.s3_path(source), self.s3_path(dest)
        try:
            if size <= self.params.multipartcopythresholdsize:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=dst_key,
                    CopySource={"Bucket": self.bucket, "Key": src_key},
                    **self.write_args(),
                )
            else:
                self._multipart_copy(src_key, dst_key, size)
        except botocore.exceptions.ClientError as exc:
            raise map_error(source, exc) from exc
        try:
            self.client.delete_object(Bucket=self.bucket, Key=src_key)
        except botocore.exceptions.ClientError as exc:
            raise map_error(source, exc) from exc

    def _multipart_copy(self, src_key: str, dst_key: str, size: int) -> None:
        chunk = self.params.multipartcopychunksize
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=dst_key, **self.write_args())[
            "UploadId"
        ]
        source = {"Bucket": self.bucket, "Key": src_key}

        def copy_part(number: int) -> dict[str, Any]:
            first = (number - 1) * chunk
            last = min(number * chunk, size) - 1
            resp = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=dst_key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={first}-{last}",
            )
            return {"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]}

        count = -(-size // chunk)
        pool = self.pool("copy")
        futures: list[Future[dict[str, Any]]] = [pool.submit(copy_part, n) for n in range(1, count + 1)]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            for f in pending:
                f.cancel()
            wait(pending)
            self.abort_soon(dst_key, upload_id)
            raise failed[0].exception()  # type: ignore[misc]
        parts = [f.result() for f in futures]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=dst_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except Exception:
            self.abort_soon(dst_key, upload_id)
            raise

    def abort_soon(self, key: str, upload_id: str) -> None:
        """Abort an abandoned upload with one attempt, or else in the background; never waits for retries."""
        if self.outage is not None and self.outage.is_silent():
            self._aborts.add(key, upload_id, "S3 does not answer")
            return
        try:
            with deadline_scope(Deadline(0.0)):  # one attempt: the caller is failing already
                self._abort_once(key, upload_id)
        except Exception as exc:  # noqa: BLE001 - retried in the background, reported at unmount
            self._aborts.add(key, upload_id, exc)

    def _abort_once(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NoSuchUpload":  # already gone (completed or aborted): done
                raise

    def finish_aborts(self) -> list[str]:
        """Try every abort still pending once more (one deadline for all); log and return those left."""
        if not len(self._aborts):
            return []
        with deadline_scope(Deadline(self.retry.deadline)):
            left = self._aborts.finish()
        lines = []
        for key, upload_id, error in left:
            path = self.key_to_path(key)
            lines.append(f"{key} {upload_id}")
            log.error("multipart upload %s of %s could not be aborted (%s); it is left in the bucket: remove it "
                      "with `s3regfs uploads abort --older-than 0s %s` (same configuration as this mount)",
                      upload_id, key, error, path if PATH_RE.fullmatch(path) else "/")
        return lines

    def delete(self, path: str) -> None:
        key = self.s3_path(path)
        try:
            first = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
            own = [c["Key"] for c in first.get("Contents", []) if c["Key"] == key]
            batch: list[str] = list(own)
            found = bool(own)
            for page in self._pages(Prefix=key + "/"):
                keys = [c["Key"] for c in page.get("Contents", [])]
                found = found or bool(keys)
                batch.extend(keys)
                while len(batch) >= LIST_MAX:
                    self._delete_batch(batch[:LIST_MAX])
                    del batch[:LIST_MAX]
            if batch:
                self._delete_batch(batch)
        except botocore.exceptions.ClientError as exc:
            raise map_error(path, exc) from exc
        if not found:
            raise PathNotFoundError(path)

    def _delete_batch(self, keys: list[str]) -> None:
        resp = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": False}
        )
        errors = resp.get("Errors") or []
        if errors:
            raise DriverErrors(
                [f"delete {e.get('Key')}: {e.get('Code')}: {e.get('Message')}" for e in errors], DRIVER_NAME
            )

    def redirect_url(
        self,
        method: str,
        path: str,
        *,
        client_ip: str | None = None,
        expires_in: float | None = None,
    ) -> str | None:
        operation = {"GET": "get_object", "HEAD": "head_object"}.get(method.upper())
        if operation is None:
            return None
        expiry = int(expires_in) if expires_in is not None else PRESIGN_EXPIRY
        return self._presign_client().generate_presigned_url(
            operation, Params={"Bucket": self.bucket, "Key": self.s3_path(path)}, ExpiresIn=expiry
        )

    # -- walk --------------------------------------------------------------------------

    def walk(self, path: str, fn: WalkFn, start_after_hint: str = "") -> None:
        """v3 flat walk: one listing without delimiter, directories inferred, raw key order."""
        prefix = self._dir_prefix(path)
        kwargs: dict[str, Any] = {"Prefix": prefix}
        if start_after_hint:
            start_after = self.s3_path(start_after_hint)
            if start_after:
                kwargs["StartAfter"] = start_after
        prev_dir = path
        skip_dir = ""
        try:
            pages = self._pages(**kwargs)
            for page in pages:
                for obj in page.get("Contents", []):
                    for info in self._walk_entries(obj, prev_dir):
                        if info.is_dir:
                            prev_dir = info.path
                        if skip_dir and is_subpath(info.path, skip_dir):
                            continue
                        try:
                            fn(info)
                        except SkipDir:
                            if info.is_dir:
                                skip_dir = info.path
                        except FilledBuffer:
                            return
        except botocore.exceptions.ClientError as exc:
            raise map_error(path, exc) from exc

    def _walk_entries(self, obj: dict[str, Any], prev_dir: str) -> list[FileInfo]:
        """The directories newly entered by key ``obj`` (outermost first), then its file."""
        key = obj["Key"]
        placeholder = key.endswith("/")
        file_path = self.key_to_path(key.rstrip("/") if placeholder else key)
        if not PATH_RE.fullmatch(file_path):
            log.debug("walk: skipping key %r (not a valid path)", key)
            return []
        dirs: list[str] = []
        parent = file_path if placeholder else posixpath.dirname(file_path)
        while parent not in ("/", "") and not is_subpath(prev_dir, parent):
            dirs.append(parent)
            parent = posixpath.dirname(parent)
        infos = [FileInfo(d, 0, ZERO_TIME, True) for d in reversed(dirs)]
        if not placeholder:
            infos.append(FileInfo(file_path, int(obj["Size"]), obj["LastModified"], False, obj.get("ETag")))
        return infos

    # -- uploads (extension 5: MultipartUploads) ----------------------------------------

    def iter_uploads(self, prefix: str) -> Iterator[dict[str, Any]]:
        """ListMultipartUploads under ``prefix``, all pages (key and upload-id markers)."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            resp = self.client.list_multipart_uploads(**kwargs)
            yield from resp.get("Uploads", [])
            if not resp.get("IsTruncated"):
                return
            key_marker, id_marker = resp.get("NextKeyMarker"), resp.get("NextUploadIdMarker")
            if not key_marker and not id_marker:
                return
            kwargs["KeyMarker"] = key_marker or ""
            kwargs["UploadIdMarker"] = id_marker or ""

    def list_uploads(self, path: str = "/") -> list[UploadInfo]:
        """The in-progress multipart uploads at or under ``path``, oldest first."""
        key = self.s3_path(path) if path != "/" else self._dir_prefix("/")
        uploads = []
        for upload in self.iter_uploads(key):
            upload_key = upload["Key"]
            if path != "/" and not (upload_key == key or upload_key.startswith(key + "/")):
                continue
            mapped = self.key_to_path(upload_key)
            valid = PATH_RE.fullmatch(mapped) is not None and (
                not self._root_prefix or upload_key.startswith(self._root_prefix + "/")
            )
            uploads.append(UploadInfo(mapped if valid else None, upload_key, upload["UploadId"], upload["Initiated"]))
        uploads.sort(key=lambda u: (u.initiated, u.key))
        return uploads

    def abort_upload(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload of ``upload_id`` on ``key`` (a raw bucket key)."""
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

