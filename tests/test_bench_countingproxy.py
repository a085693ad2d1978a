"""bench/countingproxy.py: forwards signed requests unchanged and counts them as the tests' proxy names them."""

from __future__ import annotations

from typing import Any

import pytest

from bench.countingproxy import CountingProxy, classify
from s3regfs.demo.localserver import LocalS3Server
from s3regfs.driver import factory
from tests.support import s3proxy

REQUESTS = [
    ("GET", "/", {}),
    ("GET", "/b?list-type=2&prefix=a%2F&delimiter=%2F", {}),
    ("GET", "/b/?prefix=a", {}),
    ("GET", "/b?uploads", {}),
    ("GET", "/b?location", {}),
    ("HEAD", "/b", {}),
    ("PUT", "/b", {}),
    ("POST", "/b?delete", {}),
    ("GET", "/b/k%20ey", {}),
    ("GET", "/b/key", {"range": "bytes=0-9"}),
    ("GET", "/b/key?uploadId=u", {}),
    ("HEAD", "/b/key", {}),
    ("PUT", "/b/key", {}),
    ("PUT", "/b/key", {"x-amz-copy-source": "/b/src"}),
    ("PUT", "/b/key?partNumber=1&uploadId=u", {}),
    ("PUT", "/b/key?partNumber=1&uploadId=u", {"x-amz-copy-source": "/b/src"}),
    ("POST", "/b/key?uploads", {}),
    ("POST", "/b/key?uploadId=u", {}),
    ("DELETE", "/b/key?uploadId=u", {}),
    ("DELETE", "/b/key", {}),
]


@pytest.mark.parametrize(("method", "target", "headers"), REQUESTS)
def test_operation_names_match_the_test_proxy(method: str, target: str, headers: dict[str, str]) -> None:
    assert classify(method, target, headers) == s3proxy.classify(method, target, headers)[0]


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
