"""The s3 driver against a real S3 server: the s3-specific cases of upstream's s3 driver tests (docs/DRIVERS.md §T1) and s3regfs's own rules.

Most tests talk HTTP to the session's SeaweedFS (``s3_server``/``s3_bucket``).
SeaweedFS lists keys in directory-tree order, not in S3's raw key order, so
the walk-order cases that depend on raw key order (``-`` and ``.`` sorting
before ``/``) run against a moto server on loopback, which orders keys as
Amazon S3 does.  Faults are injected with tests/support/s3proxy.py.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

from s3regfs.driver import (
    PATH_RE,
    DriverError,
    FileInfo,
    FilledBuffer,
    InvalidPathError,
    PathNotFoundError,
    SkipDir,
    StorageDriver,
    factory,
)
from s3regfs.driver.s3 import S3Driver
from s3regfs.demo.localserver import LocalS3Server, free_ports
from tests.support.s3proxy import ErrorReply, ResetMidBody, S3Proxy, TruncateBody

MiB = 1024 * 1024


def blob(size: int) -> bytes:
    return os.urandom(size)


def make(params: dict[str, Any], **extra: Any) -> StorageDriver:
    return factory.create("s3", {**params, **extra})


@pytest.fixture
def driver(s3_driver_params: dict[str, Any]) -> Iterator[StorageDriver]:
    d = make(s3_driver_params)
    yield d
    d.close()


@pytest.fixture
def small(s3_driver_params: dict[str, Any]) -> Iterator[StorageDriver]:
    """A driver with the smallest chunk size (5 MiB) and 2 parts in flight."""
    d = make(s3_driver_params, chunksize=5 * MiB, partsinflight=2)
    yield d
    d.close()


@pytest.fixture
def raw(s3_server: LocalS3Server) -> Any:
    return s3_server.client()


def keys(raw: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = raw.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def inner(driver: StorageDriver) -> S3Driver:
    return driver.unwrap()  # type: ignore[attr-defined,no-any-return]


# -- key mapping (§S4) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "path", "key"),
    [("", "/docker/registry/v2/x", "docker/registry/v2/x"), ("/", "/x", "x"), ("/registry", "/x/y", "registry/x/y"),
     ("registry/", "/x/y", "registry/x/y"), ("registry", "/x", "registry/x"), ("/a/b/", "/x", "a/b/x")],
)  # fmt: skip
def test_key_mapping(s3_driver_params: dict[str, Any], raw: Any, s3_bucket: str, root: str, path: str, key: str) -> None:
    d = make(s3_driver_params, rootdirectory=root)
    assert d.bucket_key(path) == key
    d.put_content(path, b"k")
    assert keys(raw, s3_bucket) == [key]
    assert d.list(path.rsplit("/", 1)[0] or "/") == [path]


def test_empty_root_list(s3_driver_params: dict[str, Any], s3_bucket: str) -> None:
    """TestEmptyRootList: files written under a root list as valid paths from drivers with root "" and "/"."""
    make(s3_driver_params, rootdirectory="/tmp-root-1234").put_content("/test", b"x")
    for root in ("", "/"):
        listed = make(s3_driver_params, rootdirectory=root).list("/")
        assert listed == ["/tmp-root-1234"]
        assert all(PATH_RE.fullmatch(p) for p in listed)


# -- stat, list, delete, move (§S7) ---------------------------------------------------------


def test_stat_is_strict_about_prefix_siblings(driver: StorageDriver) -> None:
    driver.put_content("/ab", b"12")
    driver.put_content("/a-b/x", b"1")
    with pytest.raises(PathNotFoundError):
        driver.stat("/a")
    info = driver.stat("/ab")
    assert (info.path, info.size, info.is_dir) == ("/ab", 2, False)
    assert driver.stat("/a-b").is_dir


def test_stat_root_is_a_directory_even_when_empty(driver: StorageDriver) -> None:
    assert driver.stat("/") == FileInfo("/", 0, driver.stat("/").mod_time, True)
    assert driver.list("/") == []


def test_file_and_directory_may_share_a_name(driver: StorageDriver) -> None:
    driver.put_content("/x", b"file")
    driver.put_content("/x/y", b"child")
    assert driver.stat("/x").is_dir is False  # HEAD wins: the key exists
    assert sorted(driver.list("/")) == ["/x", "/x"]  # upstream: the file and the directory
    assert driver.list("/x") == ["/x/y"]


def test_list_info_is_one_paginated_listing(driver: StorageDriver) -> None:
    driver.put_content("/d/f", b"123")
    driver.put_content("/d/sub/g", b"1")
    infos = driver.list_info("/d")
    assert [(i.path, i.size, i.is_dir) for i in infos] == [("/d/f", 3, False), ("/d/sub", 0, True)]
    assert infos[0].mod_time.year > 2000 and infos[1].mod_time.year == 1
    with pytest.raises(PathNotFoundError):
        driver.list_info("/d/f")


def test_list_skips_placeholders_and_invalid_keys(driver: StorageDriver, raw: Any, s3_bucket: str) -> None:
    for key in ("p/", "p/ok", "p/bad name", "p/q/"):
        raw.put_object(Bucket=s3_bucket, Key=key, Body=b"")
    assert sorted(driver.list("/p")) == ["/p/ok", "/p/q"]
    assert driver.list("/p/q") == []  # a placeholder makes the directory exist
    assert all(PATH_RE.fullmatch(p) for p in driver.list("/p"))


def test_deleted_directories_are_not_listed(driver: StorageDriver) -> None:
    """SeaweedFS keeps emptied directories for minutes; ``verifyprefixes`` hides them."""
    driver.put_content("/gone/a/b", b"1")
    driver.put_content("/kept", b"1")
    driver.delete("/gone")
    assert driver.list("/") == ["/kept"]
    with pytest.raises(PathNotFoundError):
        driver.list("/gone")


def test_delete_never_touches_prefix_siblings(driver: StorageDriver) -> None:
    for path in ("/a", "/a/x", "/a/y/z", "/a-b/x", "/a.b/x", "/ab"):
        driver.put_content(path, b"1")
    driver.delete("/a")
    for path in ("/a", "/a/x", "/a/y/z"):
        with pytest.raises(PathNotFoundError):
            driver.stat(path)
    assert sorted(driver.list("/")) == ["/a-b", "/a.b", "/ab"]


def test_delete_with_only_prefix_siblings_is_not_found(driver: StorageDriver) -> None:
    driver.put_content("/ab", b"1")
    with pytest.raises(PathNotFoundError):
        driver.delete("/a")
    assert driver.get_content("/ab") == b"1"


def test_delete_table(driver: StorageDriver) -> None:
    """TestDelete (v3): every case deletes exactly its subtree."""
    objects = ["/file1", "/file1-2", "/folder1/file1", "/folder2/file1", "/folder3/file1",
               "/folder3/subfolder1/subfolder1/file1", "/folder3/subfolder2/subfolder1/file1", "/folder4/file1",
               "/folder1-v2/file1", "/folder1-v2/subfolder1/file1"]  # fmt: skip
    cases = {"/folder1": ["/folder1/file1"], "/folder2": ["/folder2/file1"],
             "/folder3": [o for o in objects if o.startswith("/folder3/")]} | {o: [o] for o in objects}  # fmt: skip
    for target, gone in cases.items():
        for path in objects:
            driver.put_content(path, b"x")
        driver.delete(target)
        missing = []
        for path in objects:
            try:
                driver.stat(path)
            except PathNotFoundError:
                missing.append(path)
        assert missing == gone, target
    with pytest.raises(PathNotFoundError):
        driver.delete("/path/does/not/exist")
    for bad in ("/path/is/invalid/", "/path/is/invalid*"):
        with pytest.raises(InvalidPathError):
            driver.delete(bad)


def test_over_thousand_blobs(driver: StorageDriver, raw: Any, s3_bucket: str) -> None:
    """TestOverThousandBlobs: 1005 keys are listed and deleted across pages and batches."""
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: driver.put_content(f"/thousandfiletest/file{i}", b"x"), range(1005)))
    assert len(driver.list("/thousandfiletest")) == 1005
    visited: list[str] = []
    driver.walk("/thousandfiletest", lambda info: visited.append(info.path))
    assert len(visited) == 1005
    driver.delete("/thousandfiletest")
    assert keys(raw, s3_bucket) == []
    with pytest.raises(PathNotFoundError):
        driver.list("/thousandfiletest")


def test_move_small_uses_copy_object(s3_driver_params: dict[str, Any], s3_server: LocalS3Server, s3_bucket: str,
                                     raw: Any) -> None:
    with S3Proxy(s3_server.endpoint) as proxy:
        d = make(s3_driver_params, regionendpoint=proxy.endpoint)
        d.put_content("/src", b"payload")
        d.put_content("/src/child", b"kept")
        d.move("/src", "/deep/dst")
        assert proxy.counts().get("CopyObject") == 1 and "UploadPartCopy" not in proxy.counts()
        assert d.get_content("/deep/dst") == b"payload"
        assert d.get_content("/src/child") == b"kept"  # only the source key moves
    assert raw.head_object(Bucket=s3_bucket, Key="deep/dst")["ContentType"] == "application/octet-stream"


def test_move_onto_itself_is_a_no_op(driver: StorageDriver) -> None:
    driver.put_content("/same", b"data")
    driver.move("/same", "/same")
    assert driver.get_content("/same") == b"data"
    with pytest.raises(PathNotFoundError):
        driver.move("/missing", "/missing")


def test_move_missing_source_leaves_destination(driver: StorageDriver) -> None:
    driver.put_content("/dst", b"old")
    with pytest.raises(PathNotFoundError) as info:
        driver.move("/nope", "/dst")
    assert info.value.path == "/nope" and "s3aws" in str(info.value)
    assert driver.get_content("/dst") == b"old"


def test_move_with_multipart_copy(s3_driver_params: dict[str, Any], s3_server: LocalS3Server, raw: Any,
                                  s3_bucket: str) -> None:
    """TestMoveWithMultipartCopy with 5 MiB parts: 2 × threshold of random bytes, parallel UploadPartCopy."""
    data = blob(12 * MiB + 7)
    with S3Proxy(s3_server.endpoint) as proxy:
        d = make(s3_driver_params, regionendpoint=proxy.endpoint, multipartcopythresholdsize=6 * MiB,
                 multipartcopychunksize=5 * MiB, multipartcopymaxconcurrency=3)
        d.put_content("/big/src", data)
        d.move("/big/src", "/big/dst")
        assert proxy.counts()["UploadPartCopy"] == 3 and "CopyObject" not in proxy.counts()
        assert hashlib.sha256(d.get_content("/big/dst")).digest() == hashlib.sha256(data).digest()
        with pytest.raises(PathNotFoundError):
            d.get_content("/big/src")
    assert raw.head_object(Bucket=s3_bucket, Key="big/dst")["ETag"].endswith('-3"')


def test_failed_multipart_copy_aborts_its_upload(s3_driver_params: dict[str, Any], s3_server: LocalS3Server) -> None:
    with S3Proxy(s3_server.endpoint) as proxy:
        d = make(s3_driver_params, regionendpoint=proxy.endpoint, multipartcopythresholdsize=0,
                 multipartcopychunksize=5 * MiB)
        d.put_content("/src", blob(11 * MiB))
        rule = proxy.fault(ErrorReply(403, "AccessDenied", "no"), op="UploadPartCopy", nth=2)
        with pytest.raises(DriverError, match="AccessDenied"):
            d.move("/src", "/dst")
        assert rule.fired == 1
        assert inner(d).list_uploads() == []
        assert len(d.get_content("/src")) == 11 * MiB
        with pytest.raises(PathNotFoundError):
            d.stat("/dst")


# -- walk (§S7, §C4) -----------------------------------------------------------------------------

WALK_FILES = ["/file1", "/folder1-suffix/file1", "/folder1/file1", "/folder2/file1",
              "/folder3/subfolder1/subfolder1/file1", "/folder3/subfolder2/subfolder1/file1", "/folder4/file1"]  # fmt: skip
F3 = ["/folder3/subfolder1", "/folder3/subfolder1/subfolder1", "/folder3/subfolder1/subfolder1/file1",
      "/folder3/subfolder2", "/folder3/subfolder2/subfolder1", "/folder3/subfolder2/subfolder1/file1"]  # fmt: skip
WALK_ALL = ["/file1", "/folder1-suffix", "/folder1-suffix/file1", "/folder1", "/folder1/file1", "/folder2",
            "/folder2/file1", "/folder3", *F3, "/folder4", "/folder4/file1"]  # fmt: skip

WALK_CASES: dict[str, tuple[str, str, str, str, list[str]]] = {
    # name: (from, hint, skip at, stop at, expected in raw key order)
    "walk all": ("/", "", "", "", WALK_ALL),
    "skip directory": ("/", "", "/folder3", "", [p for p in WALK_ALL if not p.startswith("/folder3/")]),
    "start late without from": ("/", "/folder3/subfolder1/subfolder1/file1", "", "",
                                ["/folder3", *F3[3:], "/folder4", "/folder4/file1"]),
    "start late with from": ("/folder3", "/folder3/subfolder1/subfolder1/file1", "", "", F3[3:]),
    "start after from": ("/folder1", "/folder2", "", "", []),
    "start matches from": ("/folder3", "/folder3", "", "", F3),
    "start doesn't exist": ("/folder3", "/folder3/notafolder/notafile", "", "", F3),
    "stop early": ("/", "", "", "/folder1/file1", WALK_ALL[:5]),
    "from folder": ("/folder1", "", "", "", ["/folder1/file1"]),
    "from missing folder": ("/nothing", "", "", "", []),
}


def run_walk(driver: StorageDriver, root: str, hint: str = "", skip: str = "", stop: str = "") -> list[FileInfo]:
    seen: list[FileInfo] = []

    def fn(info: FileInfo) -> None:
        seen.append(info)
        if info.path == skip:
            raise SkipDir()
        if info.path == stop:
            raise FilledBuffer()

    driver.walk(root, fn, start_after_hint=hint)
    return seen


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback: lists in Amazon S3's raw key order."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_ports(1)[0], verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_driver(moto_endpoint: str) -> Iterator[StorageDriver]:
    import boto3

    bucket = f"walk-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="moto",
                 aws_secret_access_key="moto").create_bucket(Bucket=bucket)
    d = factory.create("s3", {"bucket": bucket, "regionendpoint": moto_endpoint, "forcepathstyle": True,
                              "accesskey": "moto", "secretkey": "moto"})  # fmt: skip
    yield d
    d.close()


@pytest.mark.parametrize("name", list(WALK_CASES))
def test_walk_raw_key_order(moto_driver: StorageDriver, name: str) -> None:
    """TestWalk (v3) on an S3 that lists in raw key order (``-`` before ``/``)."""
    root, hint, skip, stop, expected = WALK_CASES[name]
    for path in WALK_FILES:
        moto_driver.put_content(path, path.encode())
    seen = run_walk(moto_driver, root, hint, skip, stop)
    assert [i.path for i in seen] == expected
    for info in seen:
        assert info.is_dir == (not info.path.endswith("file1"))
        assert info.size == (len(info.path) if not info.is_dir else 0)


def test_walk_error_stops_after_first_entry(moto_driver: StorageDriver) -> None:
    for path in WALK_FILES:
        moto_driver.put_content(path, b"x")
    seen: list[str] = []

    def fn(info: FileInfo) -> None:
        seen.append(info.path)
        raise RuntimeError("boom")

    with pytest.raises(DriverError, match="boom"):
        moto_driver.walk("/", fn)
    assert seen == ["/file1"]


def test_walk_skip_is_a_slash_boundary(moto_driver: StorageDriver) -> None:
    """main's fix of issue #4891: skipping /tags/1.2 must not hide /tags/1.20."""
    for path in ("/tags/1.2/current/link", "/tags/1.2-rc/link", "/tags/1.20/current/link", "/tags/1.3/link"):
        moto_driver.put_content(path, b"x")
    seen = run_walk(moto_driver, "/tags", skip="/tags/1.2")
    assert [i.path for i in seen] == [
        "/tags/1.2-rc", "/tags/1.2-rc/link", "/tags/1.2", "/tags/1.20", "/tags/1.20/current",
        "/tags/1.20/current/link", "/tags/1.3", "/tags/1.3/link",
    ]  # fmt: skip


def test_walk_skip_on_a_file_hides_nothing(moto_driver: StorageDriver) -> None:
    moto_driver.put_content("/x", b"f")
    moto_driver.put_content("/x/y", b"child")
    seen: list[tuple[str, bool]] = []

    def fn(info: FileInfo) -> None:
        seen.append((info.path, info.is_dir))
        if not info.is_dir:
            raise SkipDir()

    moto_driver.walk("/", fn)
    assert seen == [("/x", False), ("/x", True), ("/x/y", False)]


def test_walk_on_seaweedfs_visits_every_entry_once(driver: StorageDriver) -> None:
    """SeaweedFS lists in directory-tree order; the same entries are visited, each directory once."""
    for path in WALK_FILES:
        driver.put_content(path, path.encode())
    seen = run_walk(driver, "/")
    assert sorted(i.path for i in seen) == sorted(WALK_ALL)
    assert [i.path for i in seen][:3] == ["/file1", "/folder1", "/folder1/file1"]  # tree order
    assert [i.path for i in run_walk(driver, "/", skip="/folder3")] == [
        p for p in [i.path for i in seen] if not p.startswith("/folder3/")
    ]
    assert [i.path for i in run_walk(driver, "/", hint="/folder3/subfolder1/subfolder1/file1")] == [
        "/folder3", *F3[3:], "/folder4", "/folder4/file1"
    ]


def test_walk_empty_uploads_dir(driver: StorageDriver, raw: Any, s3_bucket: str) -> None:
    """TestWalkEmptyUploadsDir: a trailing-slash placeholder never yields an empty last component."""
    base = "docker/registry/v2/repositories/testns/testimg"
    for key in (f"{base}/_layers/sha256/abc/link", f"{base}/_manifests/revisions/sha256/def/link",
                f"{base}/_uploads/"):
        raw.put_object(Bucket=s3_bucket, Key=key, Body=b"sha256:abc" if key.endswith("link") else b"")
    seen = [i.path for i in run_walk(driver, "/docker/registry/v2")]
    assert f"/{base}/_uploads" in seen
    assert all(PATH_RE.fullmatch(p) and not p.endswith("/") for p in seen)
    assert len(seen) == len(set(seen))


def test_list_objects_v2(driver: StorageDriver) -> None:
    """TestListObjectsV2 (v3)."""
    prefix = "/test-list-objects-v2"
    files = [f"{prefix}/{i}" for i in range(6)]
    for path in files:
        driver.put_content(path, path.encode())
    info = driver.stat(files[0])
    assert not info.is_dir and info.size == len(files[0])
    driver.put_content(f"{prefix}/sub/0", f"{prefix}/sub/0".encode())
    assert sorted(driver.list(prefix)) == sorted([*files, f"{prefix}/sub"])
    walked = run_walk(driver, prefix)
    assert sorted(i.path for i in walked) == sorted([*files, f"{prefix}/sub", f"{prefix}/sub/0"])
    for item in walked:
        assert item.is_dir == (item.path == f"{prefix}/sub")
        if not item.is_dir:
            assert item.size == len(item.path)
    driver.delete(prefix)
    assert driver.list("/") == []


# -- reads -------------------------------------------------------------------------------------


def test_read_range(driver: StorageDriver) -> None:
    data = blob(1000)
    driver.put_content("/r", data)
    assert driver.read_range("/r", 10, 20) == data[10:30]
    assert driver.read_range("/r", 990, 100) == data[990:]
    assert driver.read_range("/r", 1000, 5) == b""
    assert driver.read_range("/r", 5000, 5) == b""
    assert driver.read_range("/r", 0, 0) == b""
    driver.put_content("/empty", b"")
    assert driver.read_range("/empty", 0, 10) == b""
    with pytest.raises(PathNotFoundError):
        driver.read_range("/missing", 0, 1)


def test_large_ranged_reads_arrive_in_page_aligned_memory_and_keep_their_connection(driver: StorageDriver) -> None:
    """A body of 1 MiB or more is received into page-aligned memory (which the data cache writes with
    O_DIRECT without a copy), and the connection goes back to the pool after it, as after any body."""
    from s3regfs import alignedmem

    data = blob(3 * MiB)
    driver.put_content("/big", data)
    manager = driver.unwrap().client._endpoint.http_session._manager  # type: ignore[attr-defined]
    opened = lambda: sum(manager.pools[key].num_connections for key in manager.pools.keys())  # noqa: E731
    before = opened()
    for offset in range(0, 2 * MiB, 100_000):
        got = driver.read_range("/big", offset, MiB + 17)
        assert isinstance(got, memoryview) and got == data[offset:offset + MiB + 17]
        assert alignedmem.address(got) % alignedmem.PAGE == 0  # type: ignore[operator]
    assert opened() - before <= 1, "every read reused the pool's connection"
    assert driver.read_range("/big", 5, 1000) == data[5:1005]  # small bodies stay bytes


def test_large_ranged_reads_over_tls_arrive_whole_in_place(s3_driver_params: dict[str, Any], s3_server: LocalS3Server,
                                                            tmp_path: Any) -> None:
    """The same in-place receive through TLS (a store behind HTTPS with its own CA, ``cabundle``)."""
    from s3regfs import alignedmem
    from tests.support.tlsrelay import TLSRelay, make_ca

    data = blob(5 * MiB)
    ca, cert, key = make_ca(tmp_path)
    with TLSRelay(s3_server.endpoint, cert, key) as relay:
        d = make(s3_driver_params, regionendpoint=relay.endpoint, cabundle=str(ca))
        try:
            d.put_content("/tls", data)
            for offset, length in ((0, 5 * MiB), (123_456, 2 * MiB + 1), (3 * MiB, 4 * MiB)):
                got = d.read_range("/tls", offset, length)
                assert isinstance(got, memoryview) and got == data[offset:offset + length]
                assert alignedmem.address(got) % alignedmem.PAGE == 0  # type: ignore[operator]
        finally:
            d.close()


def test_read_range_pinned_to_an_etag_sends_if_match_and_checks_the_answer(driver: StorageDriver) -> None:
    """If-Match on the GET; an answer of another version (a server that ignores If-Match) is refused too."""
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    from s3regfs.driver import ObjectChangedError

    inner = driver.unwrap()  # type: ignore[attr-defined]
    expected = {"Bucket": inner.bucket, "Key": "r", "Range": "bytes=0-9", "IfMatch": '"mine"'}
    with Stubber(inner.client) as stub:
        for etag in ('"mine"', '"other"'):
            answer = {"Body": StreamingBody(io.BytesIO(b"x" * 10), 10), "ETag": etag, "ContentLength": 10,
                      "ContentRange": "bytes 0-9/100"}
            stub.add_response("get_object", answer, expected)
        assert driver.read_range("/r", 0, 10, etag='"mine"') == b"x" * 10
        with pytest.raises(ObjectChangedError, match="/r"):
            driver.read_range("/r", 0, 10, etag='"mine"')
        stub.assert_no_pending_responses()


def test_read_range_never_returns_a_truncated_body(s3_driver_params: dict[str, Any], s3_server: LocalS3Server) -> None:
    data = blob(200_000)
    with S3Proxy(s3_server.endpoint) as proxy:
        d = make(s3_driver_params, regionendpoint=proxy.endpoint)
        d.put_content("/t", data)
        rule = proxy.fault(TruncateBody(after_bytes=1000), op="GetObjectRange")
        with pytest.raises(DriverError, match="short body|IncompleteRead|got 1000"):
            d.read_range("/t", 0, 100_000)
        assert rule.fired >= 1
        proxy.clear_rules()
        once = proxy.fault(TruncateBody(after_bytes=1000), op="GetObjectRange", nth=1)
        assert d.read_range("/t", 5, 100_000) == data[5:100_005]  # one truncation is retried
        assert once.fired == 1


def test_reader_resumes_a_broken_stream(s3_driver_params: dict[str, Any], s3_server: LocalS3Server) -> None:
    data = blob(3 * MiB)
    with S3Proxy(s3_server.endpoint) as proxy:
        d = make(s3_driver_params, regionendpoint=proxy.endpoint)
        d.put_content("/s", data)
        rule = proxy.fault(ResetMidBody(after_bytes=MiB), op="GetObjectRange", nth=1)
        stream = d.reader("/s", 100)
        got = b"".join(iter(lambda: stream.read(64 * 1024), b""))
        stream.close()
        assert rule.fired == 1
    assert got == data[100:]


def test_large_sequential_read(small: StorageDriver) -> None:
    data = blob(23 * MiB)
    small.put_content("/big", data)
    stream = small.reader("/big", 3)
    digest = hashlib.sha256()
    while chunk := stream.read(MiB):
        digest.update(chunk)
    stream.close()
    assert digest.digest() == hashlib.sha256(data[3:]).digest()


def test_reader_offsets(driver: StorageDriver) -> None:
    driver.put_content("/o", b"0123456789")
    for offset in (0, 5, 9, 10, 11, 1000):
        stream = driver.reader("/o", offset)
        assert stream.read() == b"0123456789"[offset:]
        stream.close()
    driver.put_content("/zero", b"")
    assert driver.reader("/zero", 0).read(10) == b""


# -- the writer (§W1-§W4) -------------------------------------------------------------------------


def test_writer_uploads_exact_parts_in_the_background(s3_driver_params: dict[str, Any], s3_server: LocalS3Server,
                                                      raw: Any, s3_bucket: str) -> None:
    data = blob(17 * MiB + 3)
    with S3Proxy(s3_server.endpoint) as proxy:
        d = make(s3_driver_params, regionendpoint=proxy.endpoint, chunksize=5 * MiB, partsinflight=2)
        w = d.writer("/w")
        for i in range(0, len(data), 700_000):
            w.write(data[i : i + 700_000])
        assert w.size() <= 15 * MiB  # v3: only uploaded parts count
        w.commit()
        w.close()
        assert w.size() == len(data)
        sizes = [r.bytes_in for r in proxy.requests("UploadPart")]
        assert d.get_content("/w") == data
    assert sorted(sizes) == [2 * MiB + 3, 5 * MiB, 5 * MiB, 5 * MiB]
    assert raw.head_object(Bucket=s3_bucket, Key="w")["ContentType"] == "application/octet-stream"


def test_writer_window_bounds_parts_in_flight(small: StorageDriver) -> None:
    s3 = inner(small)
    real = s3.client.upload_part
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def counting(**kwargs: Any) -> Any:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            time.sleep(0.05)
            return real(**kwargs)
        finally:
            with lock:
                state["now"] -= 1

    s3.client.upload_part = counting
    w = small.writer("/bounded")
    chunk = blob(MiB)
    for _ in range(32):
        w.write(chunk)
    w.commit()
    w.close()
    assert state["peak"] == 2  # partsinflight, never more, and really concurrent
    assert small.stat("/bounded").size == 32 * MiB


def test_failed_part_surfaces_at_the_next_call(s3_driver_params: dict[str, Any], s3_server: LocalS3Server) -> None:
    with S3Proxy(s3_server.endpoint) as proxy:
        d = make(s3_driver_params, regionendpoint=proxy.endpoint, chunksize=5 * MiB)
        rule = proxy.fault(ErrorReply(403, "AccessDenied", "denied"), op="UploadPart", nth=1)
        w = d.writer("/f")
        w.write(blob(5 * MiB))  # part 1 goes out in the background and fails
        deadline = time.monotonic() + 10
        with pytest.raises(DriverError, match="flush: upload part: .*AccessDenied"):
            while time.monotonic() < deadline:
                w.write(b"x")
        with pytest.raises(DriverError, match="AccessDenied"):
            w.commit()
        assert rule.fired == 1
        w.cancel()
        assert inner(d).list_uploads() == []
        with pytest.raises(PathNotFoundError):
            d.stat("/f")


def test_failed_complete_aborts_the_upload(s3_driver_params: dict[str, Any], s3_server: LocalS3Server) -> None:
    with S3Proxy(s3_server.endpoint) as proxy:
        d = make(s3_driver_params, regionendpoint=proxy.endpoint)
        rule = proxy.fault(ErrorReply(400, "InvalidPart", "bad part"), op="CompleteMultipartUpload", nth=1)
        w = d.writer("/c")
        w.write(b"data")
        with pytest.raises(Exception, match="InvalidPart"):  # FileWriter errors are raw, as upstream
            w.commit()
        assert rule.fired == 1
        assert proxy.counts()["AbortMultipartUpload"] == 1
        assert inner(d).list_uploads() == []


def test_empty_writer_commit_makes_an_empty_object(driver: StorageDriver) -> None:
    w = driver.writer("/empty")
    w.commit()
    w.close()
    assert w.size() == 0
    assert driver.stat("/empty").size == 0 and driver.get_content("/empty") == b""


def test_uncommitted_upload_is_invisible_and_resumable(driver: StorageDriver) -> None:
    w = driver.writer("/u")
    w.write(b"abc")
    w.close()
    assert w.size() == 3
    with pytest.raises(PathNotFoundError):
        driver.stat("/u")
    uploads = inner(driver).list_uploads("/u")
    assert [(u.path, u.key) for u in uploads] == [("/u", "u")]
    w2 = driver.writer("/u", append=True)
    assert w2.size() == 3
    w2.write(b"def")
    w2.commit()
    w2.close()
    assert driver.get_content("/u") == b"abcdef"
    assert inner(driver).list_uploads() == []


def test_append_without_upload_or_object_is_not_found(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFoundError):
        driver.writer("/nothing", append=True)


def test_append_to_committed_objects(driver: StorageDriver) -> None:
    driver.put_content("/zero", b"")
    w = driver.writer("/zero", append=True)  # zero-size committed object: a fresh upload
    assert w.size() == 0
    w.write(b"12")
    w.commit()
    w.close()
    assert driver.get_content("/zero") == b"12"
    with pytest.raises(DriverError, match="append to zero-size path /zero unsupported"):
        driver.writer("/zero", append=True)


def test_append_resumes_the_oldest_upload(driver: StorageDriver) -> None:
    first = driver.writer("/two")
    first.write(b"first")
    first.close()
    start = int(time.time())  # S3 (and SeaweedFS) report Initiated to the second
    while int(time.time()) == start:
        time.sleep(0.01)
    second = driver.writer("/two")
    second.write(b"second!")
    second.close()
    w = driver.writer("/two", append=True)
    assert w.size() == 5
    w.commit()
    w.close()
    assert driver.get_content("/two") == b"first"


@pytest.mark.parametrize("total_mib", [1, 6], ids=["below-5MiB", "above-5MiB"])
def test_append_rebases_a_small_last_part(small: StorageDriver, raw: Any, s3_bucket: str, total_mib: int) -> None:
    """§W3: a resumed upload whose last part is < 5 MiB is completed and merged (GetObject or UploadPartCopy)."""
    head = blob(total_mib * MiB + 11)
    tail = blob(6 * MiB + 5)
    w = small.writer("/rb")
    w.write(head)
    w.close()
    assert w.size() == len(head)
    w = small.writer("/rb", append=True)
    assert w.size() == len(head)
    w.write(tail[:10])
    # The re-base committed the partial content, as upstream does.
    assert raw.head_object(Bucket=s3_bucket, Key="rb")["ContentLength"] == len(head)
    w.write(tail[10:])
    w.close()
    w = small.writer("/rb", append=True)
    assert w.size() == len(head) + len(tail)
    w.commit()
    w.close()
    assert small.get_content("/rb") == head + tail
    assert inner(small).list_uploads() == []


def test_uploads_list_and_abort(s3_driver_params: dict[str, Any]) -> None:
    d = make(s3_driver_params, rootdirectory="/reg")
    for path in ("/a/data", "/b/data"):
        w = d.writer(path)
        w.write(b"x")
        w.close()
    s3 = inner(d)
    uploads = s3.list_uploads()
    assert [(u.path, u.key) for u in uploads] == [("/a/data", "reg/a/data"), ("/b/data", "reg/b/data")]
    assert all(u.initiated.year > 2000 and u.upload_id for u in uploads)
    assert [u.path for u in s3.list_uploads("/a")] == ["/a/data"]
    s3.abort_upload(uploads[0].key, uploads[0].upload_id)
    assert [u.path for u in s3.list_uploads()] == ["/b/data"]
    s3.abort_upload(uploads[1].key, uploads[1].upload_id)


# -- headers and storage class (§S5, TestStorageClass) --------------------------------------


@pytest.mark.parametrize("storage_class", ["STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA"])
def test_storage_class(s3_driver_params: dict[str, Any], raw: Any, s3_bucket: str, storage_class: str) -> None:
    d = make(s3_driver_params, storageclass=storage_class)
    d.put_content("/put", b"x")
    w = d.writer("/multipart")
    w.write(b"y")
    w.commit()
    w.close()
    d.move("/put", "/copied")
    for key in ("multipart", "copied"):
        reported = raw.get_object(Bucket=s3_bucket, Key=key).get("StorageClass")
        assert reported in ((None, "STANDARD") if storage_class == "STANDARD" else (storage_class,)), key


def test_storage_class_none_sends_no_header(s3_driver_params: dict[str, Any], raw: Any, s3_bucket: str) -> None:
    d = make(s3_driver_params, storageclass="NONE")
    assert inner(d).write_args() == {"ContentType": "application/octet-stream", "ACL": "private"}
    d.put_content("/n", b"x")
    assert raw.get_object(Bucket=s3_bucket, Key="n").get("StorageClass") in (None, "STANDARD")


def test_encryption_headers(s3_driver_params: dict[str, Any]) -> None:
    assert inner(make(s3_driver_params, encrypt=True)).write_args()["ServerSideEncryption"] == "AES256"
    args = inner(make(s3_driver_params, encrypt=True, keyid="k1")).write_args()
    assert (args["ServerSideEncryption"], args["SSEKMSKeyId"]) == ("aws:kms", "k1")
    assert inner(make(s3_driver_params, keyid="k2")).write_args()["SSEKMSKeyId"] == "k2"  # upstream quirk


# -- client, credentials, failures -------------------------------------------------------------


def test_client_configuration(s3_driver_params: dict[str, Any]) -> None:
    s3 = inner(make(s3_driver_params, skipverify=True, useragent="registry/3"))
    config = s3.client.meta.config
    assert (config.request_checksum_calculation, config.response_checksum_validation) == ("when_required",) * 2
    assert config.max_pool_connections >= 64 and config.connect_timeout <= 5
    assert "registry/3" in config.user_agent_extra
    assert s3.client._endpoint.http_session._verify is False


def test_wrong_credentials_are_refused_quickly(s3_driver_params: dict[str, Any]) -> None:
    for creds in ({"secretkey": "wrong-secret"}, {"accesskey": "NOSUCHKEY"}):
        d = make(s3_driver_params, **creds)
        start = time.monotonic()
        with pytest.raises(DriverError, match="SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied") as info:
            d.put_content("/x", b"x")
        assert time.monotonic() - start < 5
        assert "wrong-secret" not in str(info.value)


def test_unreachable_endpoint_fails_within_seconds(s3_driver_params: dict[str, Any]) -> None:
    d = make(s3_driver_params, regionendpoint=f"http://127.0.0.1:{free_ports(1)[0]}")
    start = time.monotonic()
    with pytest.raises(DriverError, match="Could not connect"):
        d.stat("/x")
    assert time.monotonic() - start < 10


def test_missing_bucket_is_a_clear_error(s3_driver_params: dict[str, Any]) -> None:
    d = make(s3_driver_params, bucket="no-such-bucket-here")
    start = time.monotonic()
    for call in (lambda: d.stat("/x"), lambda: d.list("/"), lambda: d.put_content("/x", b"1")):
        with pytest.raises(DriverError, match="NoSuchBucket"):
            call()
    assert time.monotonic() - start < 5


def test_sigv2_works_against_a_custom_endpoint(s3_driver_params: dict[str, Any]) -> None:
    d = make(s3_driver_params, v4auth=False)
    data = blob(6 * MiB)
    d.put_content("/v2/small", b"hello")
    w = d.writer("/v2/big")
    w.write(data)
    w.commit()
    w.close()
    assert d.get_content("/v2/small") == b"hello" and d.get_content("/v2/big") == data
    url = d.redirect_url("GET", "/v2/small")
    assert url is not None and "Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"hello"


def test_secure_false_means_http_for_an_endpoint_without_scheme(s3_driver_params: dict[str, Any],
                                                                s3_server: LocalS3Server) -> None:
    endpoint = s3_server.endpoint.removeprefix("http://")
    d = make(s3_driver_params, regionendpoint=endpoint, secure=False)
    d.put_content("/plain", b"http")
    assert d.get_content("/plain") == b"http"


# -- redirects (§S7) --------------------------------------------------------------------------


def test_redirect_url_is_presigned_locally(s3_driver_params: dict[str, Any]) -> None:
    d = make(s3_driver_params, regionendpoint=f"http://127.0.0.1:{free_ports(1)[0]}")  # nothing listens
    start = time.monotonic()
    url = d.redirect_url("GET", "/blob")
    assert time.monotonic() - start < 1
    assert url is not None and "X-Amz-Expires=1200" in url and "X-Amz-Signature=" in url
    assert "X-Amz-Expires=60" in (d.redirect_url("HEAD", "/blob", expires_in=60) or "")
    assert d.redirect_url("PUT", "/blob") is None and d.redirect_url("DELETE", "/blob") is None


def test_redirect_url_serves_the_content(driver: StorageDriver) -> None:
    driver.put_content("/served", b"redirected bytes")
    url = driver.redirect_url("GET", "/served")
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"redirected bytes"
    head = urllib.request.Request(driver.redirect_url("HEAD", "/served") or "", method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as resp:
        assert resp.status == 200 and resp.headers["Content-Length"] == "16"


def test_redirect_endpoint_replaces_scheme_and_host(s3_driver_params: dict[str, Any]) -> None:
    d = make(s3_driver_params, redirectendpoint="https://cdn.example.com")
    url = d.redirect_url("GET", "/x") or ""
    assert url.startswith(f"https://cdn.example.com/{s3_driver_params['bucket']}/x?")


def test_close_releases_thread_pools(s3_driver_params: dict[str, Any]) -> None:
    before = set(threading.enumerate())  # other drivers of this session keep their own pools
    d = make(s3_driver_params, chunksize=5 * MiB)
    w = d.writer("/p")
    w.write(blob(11 * MiB))
    w.commit()
    w.close()
    ours = [t for t in threading.enumerate() if t not in before and t.name.startswith("s3-")]
    assert any(t.name.startswith("s3-writer") for t in ours)
    d.close()
    assert [t for t in ours if t.is_alive()] == []


# -- the 5 GiB stream (TestWriteReadLargeStreams) ---------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_write_read_large_streams(s3_driver_params: dict[str, Any]) -> None:
    """5 GiB through Writer → Commit → Close and back through Reader; sha256 must match; RSS stays bounded."""
    import resource

    d = make(s3_driver_params)
    size = 5 * 1024 * MiB
    block = blob(MiB)
    written = hashlib.sha256()
    w = d.writer("/large")
    start = time.monotonic()
    for i in range(size // MiB):
        chunk = i.to_bytes(8, "big") + block[8:]  # every MiB distinct
        written.update(chunk)
        assert w.write(chunk) == MiB
    w.commit()
    w.close()
    assert w.size() == size
    write_s = time.monotonic() - start
    read = hashlib.sha256()
    stream = d.reader("/large")
    start = time.monotonic()
    total = 0
    while chunk := stream.read(4 * MiB):
        read.update(chunk)
        total += len(chunk)
    stream.close()
    read_s = time.monotonic() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"5 GiB: write {write_s:.1f}s ({size / write_s / 1e6:.0f} MB/s), read {read_s:.1f}s "
          f"({size / read_s / 1e6:.0f} MB/s), peak RSS {peak_mib:.0f} MiB")
    assert total == size and read.digest() == written.digest()
    d.delete("/large")
    assert peak_mib < 400


def test_small_puts_skip_expect_continue_and_large_ones_keep_it(driver: StorageDriver) -> None:
    """A small PutObject is sent at once; a large one still waits for ``100 Continue``."""
    sent: list[bytes | None] = []
    inner(driver).client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers.get("Expect"))
    )
    small, large = blob(4096), blob(9 * 1024 * 1024)
    driver.put_content("/small", small)
    driver.put_content("/large", large)
    assert sent == [None, b"100-continue"]
    assert driver.get_content("/small") == small and driver.get_content("/large") == large


def test_endpoint_rules_are_not_evaluated_again_for_every_key(driver: StorageDriver) -> None:
    """The object key is not an endpoint parameter: new keys reuse the resolved endpoint."""
    ruleset = inner(driver).client._ruleset_resolver._provider.ruleset
    evaluations = []
    original = ruleset.evaluate
    ruleset.evaluate = lambda *a, **k: evaluations.append(1) or original(*a, **k)
    try:
        for i in range(20):
            driver.put_content(f"/k/{i}", b"x")
        assert [driver.get_content(f"/k/{i}") for i in range(20)] == [b"x"] * 20
    finally:
        ruleset.evaluate = original
    assert len(evaluations) <= 2, "the endpoint was resolved again for new keys"
