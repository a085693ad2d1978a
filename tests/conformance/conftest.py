"""The ``driver`` fixture of the conformance suite: one suite, every driver and wrapper chain.

Each parameter builds a fresh driver (a fresh bucket for the s3 ones):

* ``inmemory`` - ``factory.create("inmemory")``;
* ``wrapped`` - the same inside a plain :class:`DriverWrapper` subclass (the
  shape of every middleware chain);
* ``s3`` - ``factory.create("s3")`` on the local SeaweedFS server;
* ``s3-root`` - the same with a ``rootdirectory``;
* ``cloudfront-s3`` - ``s3regfs.middleware.wrap`` with ``cloudfront`` over
  ``s3`` (present once the middleware package provides ``wrap``).

Teardown asserts that ``list("/")`` is empty, like upstream ``TearDownTest``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from s3regfs.driver import DriverWrapper, StorageDriver, factory
from tests.conformance import suitelib
from tests.conformance.suitelib import DriverCase

S3_ROOT = "/conformance/root"
CLOUDFRONT_KEY_ID = "K2CONFORMANCE"


class PassThroughWrapper(DriverWrapper):
    """A wrapper that overrides nothing: every call must reach the inner driver unchanged."""


def _inmemory(request: pytest.FixtureRequest) -> DriverCase:
    return DriverCase("inmemory", factory.create("inmemory"), "fallback")


def _wrapped(request: pytest.FixtureRequest) -> DriverCase:
    return DriverCase("wrapped", PassThroughWrapper(factory.create("inmemory")), "fallback")


def _s3(request: pytest.FixtureRequest, root: str = "") -> DriverCase:
    server = request.getfixturevalue("s3_server")
    client = request.getfixturevalue("s3_raw_client")
    params = dict(request.getfixturevalue("s3_driver_params"))
    if root:
        params["rootdirectory"] = root
    driver = factory.create("s3", params)
    return DriverCase(
        "s3-root" if root else "s3", driver, "s3", params["bucket"], root, client, server
    )


def _s3_root(request: pytest.FixtureRequest) -> DriverCase:
    return _s3(request, S3_ROOT)


def _cloudfront_s3(request: pytest.FixtureRequest) -> DriverCase:
    """cloudfront over s3, its URLs served by the local CloudFront stand-in from the same bucket."""
    from tests.support.cloudfront_server import CloudFrontServer, s3_origin

    case = _s3(request)
    key_path, public_pem = request.getfixturevalue("cloudfront_keypair")
    cdn = CloudFrontServer(s3_origin(case.client, case.bucket), {CLOUDFRONT_KEY_ID: public_pem}).start()
    options = {"baseurl": cdn.url, "privatekey": str(key_path), "keypairid": CLOUDFRONT_KEY_ID}
    try:
        case.driver = importlib.import_module("s3regfs.middleware").wrap(case.driver, [("cloudfront", options)])
    except BaseException:
        case.driver.close()
        cdn.close()
        raise
    case.cleanups.append(cdn.close)
    case.id = "cloudfront-s3"
    case.redirect_base = cdn.url
    return case


@pytest.fixture(scope="session")
def s3_raw_client(s3_server: object) -> object:
    """One plain boto3 client on the local server, to look at buckets behind the driver's back."""
    return s3_server.client()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def cloudfront_keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """One RSA key pair for the session: (private key file, public key PEM)."""
    from s3regfs.middleware.keys import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("cloudfront"))


def _middleware_ready() -> bool:
    try:
        return hasattr(importlib.import_module("s3regfs.middleware"), "wrap")
    except ImportError:
        return False


BUILDERS: dict[str, Callable[[pytest.FixtureRequest], DriverCase]] = {
    "inmemory": _inmemory,
    "wrapped": _wrapped,
    "s3": _s3,
    "s3-root": _s3_root,
}
PARAMS = [
    pytest.param("inmemory", id="inmemory"),
    pytest.param("wrapped", id="wrapped"),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
    pytest.param("s3-root", id="s3-root", marks=pytest.mark.s3),
]
if _middleware_ready():
    BUILDERS["cloudfront-s3"] = _cloudfront_s3
    PARAMS.append(pytest.param("cloudfront-s3", id="cloudfront-s3", marks=pytest.mark.s3))


@pytest.fixture(autouse=True)
def _seeded_names() -> int:
    """Seed the random names; the seed is printed so a failure can be replayed."""
    value = int.from_bytes(os.urandom(4), "big")
    suitelib.seed(value)
    print(f"suitelib seed: {value}")
    return value


@pytest.fixture(params=PARAMS)
def driver_case(request: pytest.FixtureRequest) -> Iterator[DriverCase]:
    """A fresh driver of one chain; afterwards ``list("/")`` must be empty."""
    case = BUILDERS[request.param](request)
    try:
        yield case
        _assert_clean(case)
    finally:
        case.driver.close()
        for cleanup in reversed(case.cleanups):
            cleanup()


def _assert_clean(case: DriverCase) -> None:
    """Upstream TearDownTest, made stricter: no file, no directory, no unfinished upload is left.

    On the s3 chains the bucket itself is checked (all of it, so nothing escaped
    the rootdirectory). ``list("/")`` may still name *empty* directories there:
    SeaweedFS keeps a deleted key's parent folders (and lists them as common
    prefixes) until its asynchronous empty-folder cleaner runs, which real S3
    never does; each such name must have nothing under it.
    """
    listed = case.driver.list("/")
    if case.client is None:
        inner = case.driver.unwrap()  # type: ignore[attr-defined]
        uploads = inner.in_progress_uploads()
        assert (listed, uploads) == ([], []), (
            f"Storage driver did not clean up properly. Offending files: {listed}, uploads: {uploads}"
        )
        return
    keys = [o["Key"] for o in case.client.list_objects_v2(Bucket=case.bucket).get("Contents", [])]
    uploads = [u["Key"] for u in case.client.list_multipart_uploads(Bucket=case.bucket).get("Uploads", [])]
    assert (keys, uploads) == ([], []), f"Storage driver did not clean up properly. Keys: {keys}, uploads: {uploads}"
    for name in listed:
        assert suitelib.walk_paths(case.driver, name) == [], f"{name} is listed and not empty"


@pytest.fixture
def driver(driver_case: DriverCase) -> StorageDriver:
    """The driver under test."""
    return driver_case.driver
