"""Real mounts through an S3 outage longer than the retry deadline (issue 11, item 5).

With a short deadline (``retrydeadline``), S3 (the proxy) goes down in the
middle of writes: no ``write``/``close`` call may block longer than one
deadline (plus a margin), the uploads the outage broke are aborted once S3 is
back (no multipart upload left after a clean unmount), and the daemon log
summarises the retries instead of printing one warning per attempt.  An abort
that S3 keeps refusing is named at unmount (key, upload id, the command that
removes it) and the unmount does not claim that every upload completed.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from s3regfs import exitcodes
from tests.reliability.conftest import MountSet
from tests.reliability.helpers import BucketView, MiB, blob, sha
from tests.support.loglines import records
from tests.support.s3proxy import INTERNAL_ERROR, S3Proxy
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.s3, pytest.mark.fuse]

DEADLINE = 3
"""The mounts' retry deadline (seconds): short, so the outage tests stay quick."""
MARGIN = 1.5
"""What a call may take beyond the deadline (scheduling on a loaded 2-core machine)."""
STREAMING = {"stream_threshold": "5MiB", "metadata_ttl": "1"}
RETRY_LOGGER = " s3regfs.driver.retry: "


def short_deadline(mounts_: MountSet) -> dict[str, Any]:
    return {**mounts_.params, "chunksize": str(5 * MiB), "retrydeadline": str(DEADLINE)}


class Timed:
    """Runs calls and records how long each one took."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, what: str, fn: Callable[[], Any]) -> Any:
        start = time.monotonic()
        try:
            return fn()
        finally:
            self.calls.append((what, time.monotonic() - start))

    def slowest(self) -> tuple[str, float]:
        return max(self.calls, key=lambda c: c[1])


def warning_lines(log: str, logger: str = RETRY_LOGGER) -> list[str]:
    return [line for line in records(log) if line.startswith("WARNING") and logger in line]


def test_s3_down_longer_than_the_deadline_in_the_middle_of_writes(s3_mounts: MountSet, s3_proxy: S3Proxy,
                                                                  store: BucketView) -> None:
    m = s3_mounts.start(params=short_deadline(s3_mounts), options=STREAMING, expect_clean=False)
    timed = Timed()
    block = blob(MiB, 60)
    fds = {name: os.open(m.path / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) for name in ("a", "b")}
    try:
        for _ in range(7):  # both files stream (threshold 5 MiB): one 5 MiB part each
            for fd in fds.values():
                timed("write", lambda fd=fd: os.write(fd, block))
        wait_for(lambda: s3_proxy.counts().get("UploadPart", 0) >= 2, 30, "a part of each file uploaded")
        s3_proxy.down()
        down_at = time.monotonic()
        # b is closed while S3 is down: its last part cannot be uploaded, nor the file from its local copy
        with pytest.raises(OSError) as info:
            timed("close b", lambda: os.close(fds.pop("b")))
        assert info.value.errno in (errno.EIO, errno.ECONNREFUSED, errno.ETIMEDOUT)
        # a keeps writing (parts fail, the local copy keeps every byte), then is closed
        for _ in range(25):
            timed("write a", lambda: os.write(fds["a"], block))
        with pytest.raises(OSError) as info:
            timed("close a", lambda: os.close(fds.pop("a")))
        assert info.value.errno in (errno.EIO, errno.ECONNREFUSED, errno.ETIMEDOUT)
    finally:
        for fd in fds.values():
            os.close(fd)
    what, longest = timed.slowest()
    assert longest < DEADLINE + MARGIN, f"{what} blocked {longest:.1f}s (deadline {DEADLINE}s): {timed.calls}"
    # the last close (release) of each file tries again and gives up: the data is lost, and said so
    wait_for(lambda: m.log().count("closed with data that could NOT be saved") >= 2, 4 * DEADLINE + 10,
             "the releases of a and b to give up")
    outage = time.monotonic() - down_at
    s3_proxy.up()
    assert m.unmount() == exitcodes.DATA_LOSS
    log = m.log()
    assert store.uploads() == [], f"multipart uploads left behind:\n{log}"
    assert store.get("a") is None and store.get("b") is None  # nothing half written
    assert "every upload completed" not in log
    # one warning when the outage starts, at most one summary a minute, one line when S3 answers again
    retries = warning_lines(log)
    assert 1 <= len(retries) <= 2 + int(outage // 60), "\n".join(retries)
    assert "S3 answers again" in log


def test_abort_refused_until_unmount_is_named_with_the_command_that_removes_it(
    s3_mounts: MountSet, s3_proxy: S3Proxy, store: BucketView
) -> None:
    m = s3_mounts.start(params=short_deadline(s3_mounts), options=STREAMING)
    rule = s3_proxy.fault(INTERNAL_ERROR, op="AbortMultipartUpload")
    data = bytearray(blob(12 * MiB, 61))
    fd = os.open(m.path / "f", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(0, len(data), MiB):
            os.write(fd, data[i:i + MiB])
        wait_for(lambda: s3_proxy.counts().get("UploadPart", 0) >= 1, 30, "a part uploaded")
        start = time.monotonic()
        os.pwrite(fd, b"X", 0)  # a write that is not at the end cancels the stream: its abort is refused
        assert time.monotonic() - start < 1.0  # and the write does not wait for the abort's retries
        data[0:1] = b"X"
    finally:
        os.close(fd)  # uploaded whole from the local copy
    assert sha(store.get("f") or b"") == sha(bytes(data))
    left = store.uploads()
    assert [u["Key"] for u in left] == [store.key("f")]
    code = m.unmount()
    log = m.log()
    errors = [line for line in records(log) if line.startswith("ERROR") and left[0]["UploadId"] in line]
    assert errors, log
    assert left[0]["Key"] in errors[0] and "s3regfs uploads abort" in errors[0]
    assert "every upload completed" not in log
    assert code == exitcodes.OK  # every file was saved: the exit status is about data
    assert rule.fired >= 2  # tried in the background and again at unmount
    store.client.abort_multipart_upload(Bucket=store.bucket, Key=left[0]["Key"], UploadId=left[0]["UploadId"])
