"""The ``driver`` fixture of the conformance suite: one suite, every driver and wrapper chain.

Parameters (ids):

* ``inmemory`` - ``factory.create("inmemory")``, fresh for every test;
* ``wrapped`` - the same inside a plain :class:`DriverWrapper` subclass (the
  shape of every middleware chain);
* ``s3`` - ``factory.create("s3")`` on the local SeaweedFS server;
* ``s3-root`` - the same with a ``rootdirectory``;
* ``cloudfront-s3`` - ``s3regfs.middleware.wrap`` with ``cloudfront`` over
  ``s3``, its URLs served by the local CloudFront stand-in
  (:mod:`tests.support.cloudfront_server`) from the same bucket.

As upstream, one driver instance per s3 chain serves the whole session, on
its own bucket: a fresh bucket and driver per test would cost SeaweedFS a new
collection (volume growth) and boto3 a new client model every time, about
0.7 s per test. Instead every test must leave the bucket empty, which the
teardown asserts (upstream ``TearDownTest``, made stricter: no unfinished
upload either); then it purges whatever is left, so that one failure does not
cascade.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from s3regfs.driver import DriverWrapper, StorageDriver, factory
from tests.conformance import suitelib
from tests.conformance.suitelib import DriverCase

log = logging.getLogger(__name__)

S3_ROOT = "/conformance/root"
CLOUDFRONT_KEY_ID = "K2CONFORMANCE"


class PassThroughWrapper(DriverWrapper):
    """A wrapper that overrides nothing: every call must reach the inner driver unchanged."""


def _inmemory(request: pytest.FixtureRequest) -> DriverCase:
    return DriverCase("inmemory", factory.create("inmemory"), "fallback")


def _wrapped(request: pytest.FixtureRequest) -> DriverCase:
    return DriverCase("wrapped", PassThroughWrapper(factory.create("inmemory")), "fallback")


def _s3(request: pytest.FixtureRequest, root: str = "") -> DriverCase:
    from tests.support.s3server import unique_bucket_name

    server = request.getfixturevalue("s3_server")
    client = request.getfixturevalue("s3_raw_client")
    bucket = server.create_bucket(unique_bucket_name("conf"))
    extra = {"rootdirectory": root} if root else {}
    try:
        driver = factory.create("s3", server.driver_parameters(bucket, **extra))
    except BaseException:
        server.delete_bucket(bucket)
        raise
    case = DriverCase("s3-root" if root else "s3", driver, "s3", bucket, root, client)
    case.cleanups.append(lambda: server.delete_bucket(bucket))
    case.family = "s3" if _lists_in_byte_order(client, bucket) else "s3-tree"
    return case


def _lists_in_byte_order(client: Any, bucket: str) -> bool:
    """Does the server list keys in byte order (S3) or directory-tree order (SeaweedFS)?"""
    keys = ["probe/a-b", "probe/a/b"]  # byte order: '-' < '/'; tree order: "a" before "a-b"
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"")
    listed = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="probe/")["Contents"]]
    _purge_bucket(client, bucket)
    return listed == sorted(keys)


def _s3_root(request: pytest.FixtureRequest) -> DriverCase:
    return _s3(request, S3_ROOT)


def _cloudfront_s3(request: pytest.FixtureRequest) -> DriverCase:
    from tests.support.cloudfront_server import CloudFrontServer, s3_origin

    case = _s3(request)
    key_path, public_pem = request.getfixturevalue("cloudfront_keypair")
    cdn = CloudFrontServer(s3_origin(case.client, case.bucket), {CLOUDFRONT_KEY_ID: public_pem}).start()
    case.cleanups.append(cdn.close)
    options = {"baseurl": cdn.url, "privatekey": str(key_path), "keypairid": CLOUDFRONT_KEY_ID}
    try:
        case.driver = importlib.import_module("s3regfs.middleware").wrap(
            case.driver, [("cloudfront", options)]
        )
    except BaseException:
        _close(case)
        raise
    case.id = "cloudfront-s3"
    case.redirect_base = cdn.url
    return case


def _middleware_ready() -> bool:
    try:
        return hasattr(importlib.import_module("s3regfs.middleware"), "wrap")
    except ImportError:
        return False


FRESH: dict[str, Callable[[pytest.FixtureRequest], DriverCase]] = {"inmemory": _inmemory, "wrapped": _wrapped}
SHARED: dict[str, Callable[[pytest.FixtureRequest], DriverCase]] = {"s3": _s3, "s3-root": _s3_root}
PARAMS = [
    pytest.param("inmemory", id="inmemory"),
    pytest.param("wrapped", id="wrapped"),
    pytest.param("s3", id="s3", marks=pytest.mark.s3),
    pytest.param("s3-root", id="s3-root", marks=pytest.mark.s3),
]
if _middleware_ready():
    SHARED["cloudfront-s3"] = _cloudfront_s3
    PARAMS.append(pytest.param("cloudfront-s3", id="cloudfront-s3", marks=pytest.mark.s3))


def _close(case: DriverCase) -> None:
    try:
        case.driver.close()
    finally:
        for cleanup in reversed(case.cleanups):
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001 - session cleanup must not mask results
                log.warning("cleanup of %s failed: %s", case.id, exc)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_raw_client(s3_server: Any) -> Any:
    """One plain boto3 client on the local server, to look at buckets behind the driver's back."""
    return s3_server.client()


@pytest.fixture(scope="session")
def cloudfront_keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """One RSA key pair for the session: (private key file, public key PEM)."""
    from s3regfs.middleware.keys import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("cloudfront"))


@pytest.fixture(scope="session")
def _shared_chains(s3_server: Any) -> Iterator[dict[str, DriverCase]]:
    """The s3 chains built so far (lazily, on first use), closed before the server stops."""
    chains: dict[str, DriverCase] = {}
    yield chains
    for case in chains.values():
        _close(case)


@pytest.fixture(autouse=True)
def _seeded_names() -> int:
    """Seed the random names; the seed is printed so a failure can be replayed."""
    value = int.from_bytes(os.urandom(4), "big")
    suitelib.seed(value)
    print(f"suitelib seed: {value}")
    return value


@pytest.fixture(params=PARAMS)
def driver_case(request: pytest.FixtureRequest) -> Iterator[DriverCase]:
    """The driver chain under test; afterwards nothing may be left in it."""
    name = request.param
    if name in FRESH:
        case = FRESH[name](request)
        try:
            yield case
            _assert_clean(case)
        finally:
            _close(case)
        return
    chains = request.getfixturevalue("_shared_chains")  # only s3 runs start the server
    if name not in chains:
        chains[name] = SHARED[name](request)
    case = chains[name]
    try:
        yield case
        _assert_clean(case)
    finally:
        _purge_bucket(case.client, case.bucket)


@pytest.fixture
def driver(driver_case: DriverCase) -> StorageDriver:
    """The driver under test."""
    return driver_case.driver


# -- cleanliness ------------------------------------------------------------------------


def _assert_clean(case: DriverCase) -> None:
    """Upstream TearDownTest, stricter: ``list("/")`` is empty and no unfinished upload is left.

    On the s3 chains the bucket itself is checked too (all of it, so that
    nothing escaped the rootdirectory).
    """
    listed = case.driver.list("/")
    if case.client is None:
        uploads = case.driver.unwrap().in_progress_uploads()  # type: ignore[attr-defined]
    else:
        uploads = [
            u["Key"] for u in case.client.list_multipart_uploads(Bucket=case.bucket).get("Uploads", [])
        ]
        keys = [o["Key"] for o in case.client.list_objects_v2(Bucket=case.bucket).get("Contents", [])]
        assert keys == [], f"Storage driver did not clean up properly. Keys left in the bucket: {keys}"
    assert (listed, uploads) == ([], []), (
        f"Storage driver did not clean up properly. Offending files: {listed}, uploads: {uploads}"
    )


def _purge_bucket(client: Any, bucket: str | None) -> None:
    """Abort uploads, delete every key, then SeaweedFS's leftover empty folders (deepest first).

    SeaweedFS keeps a deleted key's parent folders until an asynchronous cleaner
    runs; removing them here keeps one test's leftovers out of the next.
    """
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    folders: list[str] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
        found = [p["Prefix"] for p in listing.get("CommonPrefixes", [])]
        folders.extend(found)
        pending.extend(found)
    if folders:  # one batch, deepest first: SeaweedFS removes only empty folders
        ordered = sorted(folders, key=lambda f: -f.count("/"))
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f} for f in ordered], "Quiet": True})
