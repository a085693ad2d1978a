"""The s3 driver under injected faults (through tests/support/s3proxy.py, against the real SeaweedFS).

Transient faults (500, 503 SlowDown, a reset mid-body, a truncated body, a 200
answer that is half a document or an error document, one stall past the read
timeout, the server gone and back) are retried and the operation returns the
right bytes (sha256) or the whole listing.  Persistent faults end in an
exception within the retry policy's deadline (plus one request timeout),
never in a hang and never in wrong bytes.  Every test also checks that the
fault really was injected (``rule.fired``).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from s3regfs.driver import StorageDriver, StorageDriverError
from s3regfs.driver.retry import RetryPolicy
from tests.reliability.conftest import FAST
from tests.reliability.helpers import BucketView, MiB, blob, sha
from tests.support.s3proxy import (
    GET_OPS,
    INTERNAL_ERROR,
    SLOWDOWN,
    Drop,
    ResetMidBody,
    Rewrite,
    S3Proxy,
    Stall,
    TruncateBody,
)

pytestmark = pytest.mark.s3

def read_all(driver: StorageDriver, path: str, offset: int = 0, step: int = 256 * 1024) -> bytes:
    stream = driver.reader(path, offset)
    try:
        parts = []
        while True:
            chunk = stream.read(step)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
    finally:
        stream.close()


def limit(policy: RetryPolicy) -> float:
    """The longest a failing call may take: the deadline, one more request timeout, a margin."""
    return policy.deadline + policy.read_timeout + policy.connect_timeout + 1.5


# -- transient faults: retried, right bytes --------------------------------------------------


@pytest.mark.parametrize("fault", [INTERNAL_ERROR, SLOWDOWN], ids=["500", "503-slowdown"])
def test_transient_error_on_put_is_retried(faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView,
                                           fault: Any) -> None:
    data = blob(200_000, 1)
    rule = s3_proxy.fault(fault, op="PutObject", times=2)
    faulty_driver.put_content("/a/put", data)
    assert rule.fired == 2
    assert s3_proxy.counts()["PutObject"] == 3
    assert sha(store.get("a/put") or b"") == sha(data)


@pytest.mark.parametrize("fault", [INTERNAL_ERROR, SLOWDOWN], ids=["500", "503-slowdown"])
def test_transient_error_on_get_and_head_is_retried(faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView,
                                                    fault: Any) -> None:
    data = blob(300_000, 2)
    store.put("a/get", data)
    gets = s3_proxy.fault(fault, op=GET_OPS, times=2)
    heads = s3_proxy.fault(fault, op="HeadObject", times=1)
    assert sha(faulty_driver.get_content("/a/get")) == sha(data)
    assert faulty_driver.stat("/a/get").size == len(data)
    assert (gets.fired, heads.fired) == (2, 1)


def _cut_inside_the_xml(body: bytes) -> bytes:
    return body[: len(body) // 2]  # a whole HTTP answer (Content-Length fixed up) of half a document


def _an_error_document(body: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
            b"<Message>We encountered an internal error. Please try again.</Message></Error>")


@pytest.mark.parametrize("answer", [_cut_inside_the_xml, _an_error_document], ids=["cut-short", "error-body"])
def test_a_listing_answered_200_but_cut_short_or_as_an_error_is_retried(
    faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView, answer: Callable[[bytes], bytes]
) -> None:
    """A 200 answer to a LIST that is not a whole listing (half an XML document, an ``<Error>`` document) is
    retried, for the delimited listing of a directory and for the flat walk of a tree: never a short listing."""
    names = [f"/d/f{i:03}" for i in range(40)] + [f"/d/sub/g{i:03}" for i in range(40)]
    for name in names:
        store.put(name[1:], b"x")

    def walked() -> list[str]:
        seen: list[str] = []
        faulty_driver.walk("/d", lambda info: seen.append(info.path) if not info.is_dir else None)
        return sorted(seen)

    def listed() -> list[str]:
        return sorted(faulty_driver.list("/d"))

    for call, expected in ((listed, [*names[:40], "/d/sub"]), (walked, names)):
        s3_proxy.reset()
        assert call() == expected
        clean = s3_proxy.counts()["ListObjectsV2"]
        s3_proxy.reset()
        rule = s3_proxy.fault(Rewrite(answer), op="ListObjectsV2", nth=1)
        assert call() == expected
        assert rule.fired == 1
        assert s3_proxy.counts()["ListObjectsV2"] == clean + 1  # the bad answer was asked once more
        s3_proxy.clear_rules()


@pytest.mark.parametrize("fault", [ResetMidBody(after_bytes=MiB + 123), TruncateBody(after_bytes=MiB + 123)],
                         ids=["reset", "truncated"])
def test_broken_stream_is_resumed(faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView,
                                  fault: Any) -> None:
    data = blob(3 * MiB, 3)
    store.put("a/stream", data)
    rule = s3_proxy.fault(fault, op=GET_OPS, nth=1)
    assert sha(read_all(faulty_driver, "/a/stream")) == sha(data)
    assert rule.fired == 1
    if isinstance(fault, TruncateBody):  # the client got the first MiB: it resumes, it does not restart
        assert s3_proxy.requests(GET_OPS)[1].bytes_out <= len(data) - MiB + 256 * 1024


def test_reset_and_truncation_of_ranged_reads_are_retried(faulty_driver: StorageDriver, s3_proxy: S3Proxy,
                                                          store: BucketView) -> None:
    data = blob(2 * MiB, 4)
    store.put("a/range", data)
    reset = s3_proxy.fault(ResetMidBody(after_bytes=1000), op=GET_OPS, nth=1)
    truncated = s3_proxy.fault(TruncateBody(after_bytes=5000), op=GET_OPS, nth=2)
    assert faulty_driver.read_range("/a/range", 100_000, 700_000) == data[100_000:800_000]
    assert (reset.fired, truncated.fired) == (1, 1)


def test_large_ranged_reads_received_in_place_retry_a_reset_a_truncation_and_a_stall(
        faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView, fast_policy: RetryPolicy) -> None:
    """A body of 1 MiB or more is received straight into page-aligned memory (s3regfs/alignedmem.py):
    a break at any point is retried, never returned short or mixed."""
    data = blob(3 * MiB, 14)
    store.put("a/large", data)
    reset = s3_proxy.fault(ResetMidBody(after_bytes=MiB // 2), op=GET_OPS, nth=1)
    truncated = s3_proxy.fault(TruncateBody(after_bytes=MiB + 5000), op=GET_OPS, nth=2)
    stalled = s3_proxy.fault(Stall(seconds=30, after_bytes=200_000), op=GET_OPS, nth=3)
    got = faulty_driver.read_range("/a/large", 100_000, 2 * MiB)
    assert (reset.fired, truncated.fired, stalled.fired) == (1, 1, 1)
    assert isinstance(got, memoryview) and got == data[100_000:100_000 + 2 * MiB]
    again = [faulty_driver.read_range("/a/large", offset, MiB + 1) for offset in range(0, 2 * MiB, MiB // 2)]
    assert [bytes(a) for a in again] == [data[o:o + MiB + 1] for o in range(0, 2 * MiB, MiB // 2)]


def test_one_stall_past_the_read_timeout_is_retried(faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView,
                                                    fast_policy: RetryPolicy) -> None:
    data = blob(500_000, 5)
    store.put("a/stall", data)
    head_stall = s3_proxy.fault(Stall(seconds=30), op="HeadObject", nth=1)
    body_stall = s3_proxy.fault(Stall(seconds=30, after_bytes=10_000), op=GET_OPS, nth=1)
    start = time.monotonic()
    assert faulty_driver.stat("/a/stall").size == len(data)
    assert sha(faulty_driver.get_content("/a/stall")) == sha(data)
    elapsed = time.monotonic() - start
    assert (head_stall.fired, body_stall.fired) == (1, 1)
    assert 2 * fast_policy.read_timeout * 0.9 <= elapsed < limit(fast_policy)


def test_server_gone_and_back_within_the_deadline(faulty_driver: StorageDriver, s3_proxy: S3Proxy,
                                                  store: BucketView, fast_policy: RetryPolicy) -> None:
    data = blob(100_000, 6)
    faulty_driver.put_content("/a/before", data)  # a pooled keep-alive connection now exists
    s3_proxy.down_for(2.0)  # longer than max_attempts back-offs: only the deadline keeps it retrying
    start = time.monotonic()
    faulty_driver.put_content("/a/after", data)
    assert sha(faulty_driver.get_content("/a/before")) == sha(data)
    assert time.monotonic() - start < limit(fast_policy)
    assert sha(store.get("a/after") or b"") == sha(data)


def test_multipart_write_survives_part_and_complete_faults(s3_proxy: S3Proxy, store: BucketView,
                                                           proxied_params: dict[str, Any],
                                                           fast_policy: RetryPolicy) -> None:
    from s3regfs.driver import CheckedDriver
    from s3regfs.driver.s3 import S3Driver, from_parameters

    driver = CheckedDriver(S3Driver(from_parameters(dict(proxied_params, chunksize=5 * MiB)), retry=fast_policy))
    data = blob(11 * MiB + 17, 7)
    rules = [
        s3_proxy.fault(INTERNAL_ERROR, op="UploadPart", nth=1),
        s3_proxy.fault(Drop(), op="UploadPart", nth=2),  # connection closed before the part arrived
        s3_proxy.fault(SLOWDOWN, op="CreateMultipartUpload", nth=1),
        s3_proxy.fault(INTERNAL_ERROR, op="CompleteMultipartUpload", nth=1),
    ]
    try:
        with driver.writer("/a/multi") as writer:
            for i in range(0, len(data), MiB):
                writer.write(data[i:i + MiB])
            writer.commit()
    finally:
        driver.close()
    assert [r.fired for r in rules] == [1, 1, 1, 1]
    assert sha(store.get("a/multi") or b"") == sha(data)
    assert store.uploads() == []


def test_lost_complete_answer_does_not_report_a_failure_for_saved_data(
    faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView
) -> None:
    """CompleteMultipartUpload done by S3 but its answer lost: the retry gets NoSuchUpload."""
    data = blob(300_000, 8)
    rule = s3_proxy.fault(Drop(forward=True), op="CompleteMultipartUpload", nth=1)
    writer = faulty_driver.writer("/a/lost-answer")
    writer.write(data)
    writer.commit()
    writer.close()
    assert rule.fired == 1
    assert sha(store.get("a/lost-answer") or b"") == sha(data)


def test_a_completed_upload_answered_200_with_an_error_document_is_asked_again(
    faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView
) -> None:
    """S3 documents a 200 with an ``<Error>`` body for CompleteMultipartUpload: it is asked again (botocore
    checks every 200 answer of S3 for one), and the object the first request completed is what stays."""
    data = blob(300_000, 9)
    rule = s3_proxy.fault(Rewrite(_an_error_document), op="CompleteMultipartUpload", nth=1)
    writer = faulty_driver.writer("/a/error-200")
    writer.write(data)
    writer.commit()
    writer.close()
    assert rule.fired == 1
    assert s3_proxy.counts()["CompleteMultipartUpload"] == 2
    assert sha(store.get("a/error-200") or b"") == sha(data)


def test_random_faults_never_return_wrong_bytes(faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView) -> None:
    data = blob(4 * MiB, 9)
    store.put("a/random", data)
    rules = [
        s3_proxy.fault(ResetMidBody(after_bytes=3000), op=GET_OPS, probability=0.15, seed=1),
        s3_proxy.fault(TruncateBody(after_bytes=7000), op=GET_OPS, probability=0.15, seed=2),
        s3_proxy.fault(INTERNAL_ERROR, op=GET_OPS, probability=0.1, seed=3),
    ]
    rng = random.Random(10)
    ok = 0
    for _ in range(40):
        offset, length = rng.randrange(len(data)), rng.randrange(1, 600_000)
        try:
            got = faulty_driver.read_range("/a/random", offset, length)
        except StorageDriverError:
            continue
        assert got == data[offset:offset + length]
        ok += 1
    assert sum(r.fired for r in rules) >= 5
    assert ok >= 36  # 4 attempts each: a failure needs 4 faults in a row
    assert sha(read_all(faulty_driver, "/a/random", step=100_000)) == sha(data)


# -- persistent faults: an exception within the deadline, never wrong bytes -----------------


def _put(driver: StorageDriver, store: BucketView) -> Callable[[], object]:
    return lambda: driver.put_content("/p/x", b"payload")


def _get(driver: StorageDriver, store: BucketView) -> Callable[[], object]:
    store.put("p/x", blob(2 * MiB, 11))
    return lambda: driver.get_content("/p/x")


def _stream(driver: StorageDriver, store: BucketView) -> Callable[[], object]:
    store.put("p/x", blob(2 * MiB, 12))
    return lambda: read_all(driver, "/p/x")


def _range(driver: StorageDriver, store: BucketView) -> Callable[[], object]:
    store.put("p/x", blob(2 * MiB, 13))
    return lambda: driver.read_range("/p/x", 10, MiB)


def _stat(driver: StorageDriver, store: BucketView) -> Callable[[], object]:
    store.put("p/x", b"x")
    return lambda: driver.stat("/p/x")


def _list(driver: StorageDriver, store: BucketView) -> Callable[[], object]:
    store.put("p/x", b"x")
    return lambda: driver.list("/p")


def _write(driver: StorageDriver, store: BucketView) -> Callable[[], object]:
    def run() -> None:
        writer = driver.writer("/p/x")
        writer.write(blob(100_000, 14))
        writer.commit()

    return run


PERSISTENT = [
    ("500-put", INTERNAL_ERROR, "PutObject", _put),
    ("slowdown-get", SLOWDOWN, GET_OPS, _get),
    ("reset-stream", ResetMidBody(after_bytes=2000), GET_OPS, _stream),
    ("truncated-range", TruncateBody(after_bytes=2000), GET_OPS, _range),
    ("truncated-get", TruncateBody(after_bytes=0), GET_OPS, _get),
    ("stall-get", Stall(seconds=60), GET_OPS, _get),
    ("stall-body", Stall(seconds=60, after_bytes=100), GET_OPS, _stream),
    ("stall-head", Stall(seconds=60), "HeadObject", _stat),
    ("500-list", INTERNAL_ERROR, "ListObjectsV2", _list),
    ("500-part", INTERNAL_ERROR, "UploadPart", _write),
    ("reset-complete", Drop(), "CompleteMultipartUpload", _write),
]


@pytest.mark.parametrize("name,fault,op,make", PERSISTENT, ids=[p[0] for p in PERSISTENT])
def test_persistent_fault_ends_in_an_error_within_the_deadline(
    faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView, fast_policy: RetryPolicy,
    name: str, fault: Any, op: Any, make: Callable[..., Callable[[], object]],
) -> None:
    call = make(faulty_driver, store)
    rule = s3_proxy.fault(fault, op=op)
    start = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - driver calls: StorageDriverError; streams, writers: raw
        call()
    elapsed = time.monotonic() - start
    assert rule.fired >= 1
    assert elapsed < limit(fast_policy), f"{name}: failed only after {elapsed:.1f}s"
    if op in ("PutObject", "UploadPart", "CompleteMultipartUpload"):
        assert store.get("p/x") is None  # nothing half written


def test_server_gone_for_good_ends_in_an_error_within_the_deadline(
    s3_proxy: S3Proxy, store: BucketView, proxied_params: dict[str, Any]
) -> None:
    from s3regfs.driver import CheckedDriver
    from s3regfs.driver.s3 import S3Driver, from_parameters

    policy = dataclasses.replace(FAST, deadline=2.0)
    driver = CheckedDriver(S3Driver(from_parameters(proxied_params), retry=policy))
    try:
        store.put("p/x", b"x")
        assert driver.stat("/p/x").size == 1
        s3_proxy.down()
        calls = (lambda: driver.stat("/p/x"), lambda: driver.get_content("/p/x"),
                 lambda: driver.put_content("/p/y", b"y"))
        for i, call in enumerate(calls):
            start = time.monotonic()
            with pytest.raises(StorageDriverError) as info:
                call()
            elapsed = time.monotonic() - start
            if i == 0:
                assert policy.deadline * 0.8 < elapsed < limit(policy)  # retried until the deadline, not longer
            else:  # S3 has not answered for a whole deadline: later calls try once and do not wait again
                assert elapsed < 0.5
            assert "Could not connect" in str(info.value)
        s3_proxy.up()
        assert driver.get_content("/p/x") == b"x"  # and it recovers when the server is back
    finally:
        driver.close()


def test_persistent_part_failure_leaves_no_object_and_cancel_cleans_up(
    faulty_driver: StorageDriver, s3_proxy: S3Proxy, store: BucketView
) -> None:
    s3_proxy.fault(INTERNAL_ERROR, op="UploadPart")
    writer = faulty_driver.writer("/p/big")
    writer.write(blob(50_000, 15))
    with pytest.raises(StorageDriverError):
        writer.commit()
    assert store.get("p/big") is None
    s3_proxy.clear_rules()
    uploads = store.uploads()
    if uploads:  # the writer keeps the upload for a retry by its owner: cancel must remove it
        writer.cancel()
    assert store.uploads() == []


def test_proxy_passes_signatures_through(faulty_driver: StorageDriver, s3_proxy: S3Proxy) -> None:
    """Sanity of the harness: signed requests through the proxy are accepted, and counted by operation."""
    faulty_driver.put_content("/s/one", b"1")
    assert faulty_driver.get_content("/s/one") == b"1"
    faulty_driver.list("/s")
    counts = s3_proxy.counts()
    assert counts["PutObject"] == 1 and counts["ListObjectsV2"] >= 1
    assert counts.get("GetObject", 0) + counts.get("GetObjectRange", 0) >= 1
    assert all(r.status is not None and r.status < 400 for r in s3_proxy.requests())


def test_proxy_with_wrong_secret_is_refused(s3_server: Any, proxied_params: dict[str, Any]) -> None:
    """SeaweedFS checks signatures through the proxy: a wrong secret is refused (so the proxy changes nothing)."""
    from s3regfs.driver import factory

    params = dict(proxied_params, secretkey="wrong" + "x" * 35)
    driver = factory.create("s3", params)
    try:
        with pytest.raises(StorageDriverError) as info:
            driver.put_content("/s/two", b"2")
        assert "SignatureDoesNotMatch" in str(info.value) or "AccessDenied" in str(info.value)
    finally:
        driver.close()


def test_abort_refused_while_s3_is_down_is_retried_in_the_background(
    s3_proxy: S3Proxy, store: BucketView, proxied_params: dict[str, Any]
) -> None:
    from s3regfs.driver import CheckedDriver
    from s3regfs.driver.s3 import S3Driver, from_parameters

    policy = dataclasses.replace(FAST, deadline=2.0)
    driver = CheckedDriver(S3Driver(from_parameters(dict(proxied_params, chunksize=5 * MiB)), retry=policy))
    try:
        writer = driver.writer("/p/cancelled")
        writer.write(blob(6 * MiB, 16))  # one part in the background
        start = time.monotonic()
        while s3_proxy.counts().get("UploadPart", 0) < 1 or writer.size() < 5 * MiB:
            assert time.monotonic() - start < 30, "the part was never uploaded"
            time.sleep(0.02)
        s3_proxy.down()
        start = time.monotonic()
        writer.cancel()  # the abort cannot be sent: handed to the background, the caller does not wait
        assert time.monotonic() - start < 0.5
        assert [u["Key"] for u in store.uploads()] == [store.key("p/cancelled")]
        s3_proxy.up()
        start = time.monotonic()
        while store.uploads():  # retried in the background once S3 answers again
            assert time.monotonic() - start < 20, "the abort was never retried"
            time.sleep(0.05)
        assert s3_proxy.counts().get("AbortMultipartUpload", 0) >= 1
    finally:
        driver.close()
