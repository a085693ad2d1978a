"""Session-wide fixtures: the local S3 server (SeaweedFS) and fresh buckets on it.

* ``s3_server`` (session): a running :class:`~s3regfs.demo.localserver.LocalS3Server`.
* ``s3_bucket`` (function): the name of a fresh, empty bucket, deleted afterwards
  (both in the background: :class:`~tests.support.s3server.BucketPool`).
* ``s3_driver_params`` (function): parameters for ``factory.create("s3", ...)``
  on that bucket.

Tests that use ``s3_server`` get the ``s3`` marker automatically.  No logging handler that a
command run in-process installed outlives its test.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # so that ``tests.support`` imports under plain ``pytest`` too
    sys.path.insert(0, _ROOT)

from s3regfs import logs  # noqa: E402
from s3regfs.demo.localserver import LocalS3Server  # noqa: E402
from tests.support.s3server import BucketPool  # noqa: E402

log = logging.getLogger(__name__)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "s3_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.s3)


@pytest.fixture(autouse=True)
def _no_log_handler_outlives_its_test() -> Iterator[None]:
    """A command run in-process (``cli.main``) installs handlers on pytest's stream of that test."""
    yield
    logs.remove_handlers()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3Server]:
    """One SeaweedFS S3 server for the whole session, on loopback with checked signatures."""
    with LocalS3Server(stop_grace=2.0) as server:
        yield server


@pytest.fixture(scope="session")
def _s3_bucket_pool(s3_server: LocalS3Server) -> Iterator[BucketPool]:
    pool = BucketPool(s3_server)
    yield pool
    pool.close()


@pytest.fixture
def s3_bucket(_s3_bucket_pool: BucketPool) -> Iterator[str]:
    """A fresh, uniquely named, empty bucket; deleted (with its content) after the test."""
    name = _s3_bucket_pool.take()
    yield name
    _s3_bucket_pool.give_back(name)


@pytest.fixture
def s3_driver_params(s3_server: LocalS3Server, s3_bucket: str) -> dict[str, Any]:
    """Parameters for ``factory.create("s3", params)`` on the fresh bucket."""
    return s3_server.driver_parameters(s3_bucket)
