"""bench/countingproxy.py: the S3 operation names (the tests' proxy uses the same), and counting forwarded requests."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from bench.countingproxy import CountingProxy, _Handler, _relay, classify
from s3regfs.demo.localserver import LocalS3Server
from s3regfs.driver import factory
from tests.support import s3proxy

REQUESTS = [
    ("GET", "/", {}, "ListBuckets"),
    ("GET", "/b?list-type=2&prefix=a%2F&delimiter=%2F", {}, "ListObjectsV2"),
    ("GET", "/b/?prefix=a", {}, "ListObjects"),
    ("GET", "/b?uploads", {}, "ListMultipartUploads"),
    ("GET", "/b?location", {}, "GetBucketLocation"),
    ("HEAD", "/b", {}, "HeadBucket"),
    ("PUT", "/b", {}, "CreateBucket"),
    ("POST", "/b?delete", {}, "DeleteObjects"),
    ("GET", "/b/k%20ey", {}, "GetObject"),
    ("GET", "/b/key", {"range": "bytes=0-9"}, "GetObjectRange"),
    ("GET", "/b/key?uploadId=u", {}, "ListParts"),
    ("HEAD", "/b/key", {}, "HeadObject"),
    ("PUT", "/b/key", {}, "PutObject"),
    ("PUT", "/b/key", {"x-amz-copy-source": "/b/src"}, "CopyObject"),
    ("PUT", "/b/key?partNumber=1&uploadId=u", {}, "UploadPart"),
    ("PUT", "/b/key?partNumber=1&uploadId=u", {"x-amz-copy-source": "/b/src"}, "UploadPartCopy"),
    ("POST", "/b/key?uploads", {}, "CreateMultipartUpload"),
    ("POST", "/b/key?uploadId=u", {}, "CompleteMultipartUpload"),
    ("DELETE", "/b/key?uploadId=u", {}, "AbortMultipartUpload"),
    ("DELETE", "/b/key", {}, "DeleteObject"),
]


@pytest.mark.parametrize(("method", "target", "headers", "expected"), REQUESTS)
def test_operation_names(method: str, target: str, headers: dict[str, str], expected: str) -> None:
    assert classify(method, target, headers) == expected
    assert s3proxy.classify(method, target, headers) == (expected, target.split("?")[0].replace("%20", " "))


def test_counts_the_requests_of_a_signed_client(s3_server: LocalS3Server, s3_bucket: str) -> None:
    with CountingProxy(s3_server.endpoint) as proxy:
        params: dict[str, Any] = s3_server.driver_parameters(s3_bucket, regionendpoint=proxy.endpoint)
        driver = factory.create("s3", params)
        try:
            driver.put_content("/dir/file", b"payload")
            assert driver.get_content("/dir/file") == b"payload"
            assert driver.stat("/dir/file").size == 7
            assert driver.list("/dir") == ["/dir/file"]
            counts = proxy.counts()
            assert counts.get("PutObject") == 1 and counts.get("GetObject", 0) + counts.get("GetObjectRange", 0) >= 1
            assert counts.get("HeadObject", 0) + counts.get("ListObjectsV2", 0) >= 2
            proxy.reset()
            assert proxy.counts() == {}
            driver.stat("/dir/file")
            assert sum(proxy.counts().values()) >= 1
        finally:
            driver.close()


def test_the_remote_profile_delays_every_request_before_forwarding_it(s3_server: LocalS3Server, s3_bucket: str) -> None:
    """``--profile remote``: each request waits ``delay`` in the proxy (a lower bound, never an upper one)."""
    with CountingProxy(s3_server.endpoint, delay=0.25) as proxy:
        client = s3_server.client()
        client.put_object(Bucket=s3_bucket, Key="k", Body=b"v")
        params: dict[str, Any] = s3_server.driver_parameters(s3_bucket, regionendpoint=proxy.endpoint)
        driver = factory.create("s3", params)
        try:
            started = time.monotonic()
            assert driver.get_content("/k") == b"v"
            took = time.monotonic() - started
        finally:
            driver.close()
        requests = sum(proxy.counts().values())
    assert requests >= 1 and took >= 0.25 * requests


class _Response:
    """What :func:`bench.countingproxy._relay` reads of an upstream response."""

    status, reason, chunked, will_close = 200, "OK", False, False

    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def getheaders(self) -> list[tuple[str, str]]:
        return [("Content-Length", str(len(self._body.getvalue())))]

    def read(self, size: int = -1) -> bytes:
        return self._body.read(size)


class _Writes(io.RawIOBase):
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: Any) -> int:
        self.writes.append(bytes(data))
        return len(data)


def test_the_proxy_adds_no_delay_of_its_own_to_a_response_with_a_body() -> None:
    """A head and a body written apart on a socket with Nagle's algorithm wait for the client's delayed
    ACK (40 ms on Linux): every LIST through the proxy took about 45 ms instead of 4. The proxy's
    sockets are TCP_NODELAY and a small response leaves in one write."""
    assert _Handler.disable_nagle_algorithm
    out = _Writes()
    assert _relay(out, _Response(b"<ListBucketResult/>"))  # type: ignore[arg-type]
    assert len(out.writes) == 1
    assert out.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and out.writes[0].endswith(b"\r\n\r\n<ListBucketResult/>")
    out = _Writes()
    _relay(out, _Response(b""))  # type: ignore[arg-type]
    assert len(out.writes) == 1 and out.writes[0].endswith(b"\r\n\r\n")
