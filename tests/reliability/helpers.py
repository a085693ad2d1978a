"""Helpers shared by the reliability tests: payloads, hashes, a direct view of the bucket."""

from __future__ import annotations

import hashlib
import random
from typing import Any

MiB = 1024 * 1024


def blob(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes (reproducible from ``seed``)."""
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BucketView:
    """What is under one root of a bucket, seen directly (not through the proxy)."""

    def __init__(self, client: Any, bucket: str, root: str) -> None:
        self.client, self.bucket, self.root = client, bucket, root

    def key(self, path: str) -> str:
        return f"{self.root}/{path.lstrip('/')}"

    def put(self, path: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=data)

    def get(self, path: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(path))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def list_keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.root + "/")
        return [obj["Key"][len(self.root) + 1:] for page in pages for obj in page.get("Contents", [])]

    def uploads(self) -> list[dict[str, Any]]:
        resp = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.root + "/")
        return list(resp.get("Uploads", []))
