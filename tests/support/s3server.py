"""Helpers around the session's local S3 server: unique bucket names and a bucket pool.

Creating a bucket on SeaweedFS takes 0.3–0.9 s (plus ~0.2 s to grow its
volume at the first write) and deleting one 0.2–1 s, which would dominate a
suite of short tests.  :class:`BucketPool` hands out buckets that are fresh
in every way a test can see: no objects, no multipart uploads, and no
directory entries (SeaweedFS keeps emptied "directories" for minutes; they
are removed explicitly).  A returned bucket is emptied and checked in a
background thread and reused; one that cannot be made clean is deleted and
replaced by a new one.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import secrets
import threading
from typing import Any

log = logging.getLogger(__name__)

_counter = itertools.count(1)


def unique_bucket_name(prefix: str = "t") -> str:
    """A bucket name unique in this session and across concurrent sessions (3–63 chars, DNS-safe)."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}-{secrets.token_hex(3)}"


def is_clean(client: Any, bucket: str) -> bool:
    """True when ``bucket`` has no object, no directory entry and no multipart upload."""
    listing = client.list_objects_v2(Bucket=bucket, Delimiter="/", MaxKeys=1)
    if listing.get("Contents") or listing.get("CommonPrefixes"):
        return False
    return not client.list_multipart_uploads(Bucket=bucket, MaxUploads=1).get("Uploads")


def empty_bucket(client: Any, bucket: str) -> None:
    """Abort every upload, delete every object, then every (SeaweedFS) directory entry, deepest first."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        batch = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if batch:
            client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    dirs: list[str] = []
    pending = [""]
    while pending and len(dirs) < 2000:
        prefix = pending.pop()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                dirs.append(common["Prefix"])
                pending.append(common["Prefix"])
    dirs.sort(key=lambda d: d.count("/"), reverse=True)
    for start in range(0, len(dirs), 1000):
        batch = [{"Key": d} for d in dirs[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


class BucketPool:
    """Clean buckets, prepared and recycled by one background thread."""

    def __init__(self, server: Any, depth: int = 2) -> None:
        self._server = server
        self._client = server.client()
        self._ready: queue.Queue[str] = queue.Queue()
        self._returned: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._all: set[str] = set()
        self._depth = depth
        self._thread = threading.Thread(target=self._run, name="bucket-pool", daemon=True)
        self._thread.start()

    def _make(self) -> str:
        name = self._server.create_bucket(unique_bucket_name())
        self._client.put_object(Bucket=name, Key="warm-up", Body=b"x")  # grow the bucket's volume now
        self._client.delete_object(Bucket=name, Key="warm-up")
        self._all.add(name)
        return name

    def _recycle(self, name: str) -> None:
        try:
            empty_bucket(self._client, name)
            if is_clean(self._client, name):
                self._ready.put(name)
                return
            log.info("bucket pool: %s is not clean after emptying; replacing it", name)
        except Exception as exc:  # noqa: BLE001 - a bucket we cannot clean is replaced
            log.info("bucket pool: could not empty %s (%s); replacing it", name, exc)
        self._delete(name)

    def _delete(self, name: str) -> None:
        self._all.discard(name)
        try:
            self._server.delete_bucket(name)
        except Exception as exc:  # noqa: BLE001 - cleanup must not fail a test
            log.warning("could not delete bucket %s: %s", name, exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._recycle(self._returned.get(timeout=0.05))
                continue
            except queue.Empty:
                pass
            if self._ready.qsize() < self._depth:
                try:
                    self._ready.put(self._make())
                except Exception as exc:  # noqa: BLE001 - the taker makes its own bucket instead
                    log.warning("bucket pool: could not prepare a bucket: %s", exc)

    def take(self) -> str:
        """A clean bucket (made on the spot if the background thread has none ready)."""
        while True:
            try:
                name = self._ready.get(timeout=30)
            except queue.Empty:
                return self._make()
            if is_clean(self._client, name):
                return name
            self._returned.put(name)  # something wrote into it after it was returned

    def give_back(self, name: str) -> None:
        """Empty ``name`` in the background and reuse it."""
        self._returned.put(name)

    def close(self) -> None:
        """Stop the thread; the server's data goes away with it."""
        self._stop.set()
        self._thread.join(timeout=30)
