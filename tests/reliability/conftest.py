"""Fixtures of the reliability tests: the fault-injecting proxy and an s3 driver behind it.

* ``s3_proxy`` (function): an :class:`~tests.support.s3proxy.S3Proxy` in front of the
  session's SeaweedFS; stopped (and every stalled connection released) after the test.
* ``fast_policy``: a :class:`~s3regfs.driver.retry.RetryPolicy` with short timeouts and
  a short deadline, so that persistent faults end in seconds.
* ``proxied_params``: s3 driver parameters on the fresh bucket, through the proxy.
* ``faulty_driver``: the s3 driver (wrapped in CheckedDriver, as the factory does) on those
  parameters with ``fast_policy``.
* ``direct``: a boto3 client straight to SeaweedFS (no proxy), to check what really is in
  the bucket.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from s3regfs.driver import CheckedDriver, StorageDriver
from s3regfs.driver.retry import RetryPolicy
from s3regfs.localserver import LocalS3Server
from tests.support.s3proxy import S3Proxy

FAST = RetryPolicy(max_attempts=4, connect_timeout=0.5, read_timeout=1.0, deadline=6.0, base_delay=0.02,
                   max_delay=0.2)


@pytest.fixture
def s3_proxy(s3_server: LocalS3Server) -> Iterator[S3Proxy]:
    with S3Proxy(s3_server.endpoint) as proxy:
        yield proxy


@pytest.fixture
def fast_policy() -> RetryPolicy:
    return FAST


@pytest.fixture
def proxied_params(s3_server: LocalS3Server, s3_bucket: str, s3_proxy: S3Proxy) -> dict[str, Any]:
    return s3_server.driver_parameters(s3_bucket, regionendpoint=s3_proxy.endpoint)


@pytest.fixture
def faulty_driver(proxied_params: dict[str, Any], fast_policy: RetryPolicy) -> Iterator[StorageDriver]:
    from s3regfs.driver.s3 import S3Driver, from_parameters

    driver = CheckedDriver(S3Driver(from_parameters(proxied_params), retry=fast_policy))
    yield driver
    driver.close()


@pytest.fixture
def direct(s3_server: LocalS3Server) -> Any:
    return s3_server.client()
