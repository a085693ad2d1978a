"""Real mounts (``s3regfs mount -f --driver s3``) under injected faults, through tests/support/s3proxy.py.

What a user sees: a write that cannot be saved fails at ``close``/``fsync``
with EIO and never appears half written in the bucket; transient faults are
retried and the file is right; reads return the right bytes or EIO, never
wrong bytes; a mount with S3 down fails at once with one line; a daemon killed
mid-write leaves no partial object, its upload is listed and aborted by
``s3regfs uploads``, and the mount point can be mounted again; a full or
missing spill directory fails the write (ENOSPC/EIO) and touches nothing saved.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from s3regfs import exitcodes
from tests.reliability.conftest import MountSet, s3_cli_args
from tests.reliability.helpers import BucketView, MiB, blob, sha
from tests.support import mounts
from tests.support.s3proxy import GET_OPS, INTERNAL_ERROR, SLOWDOWN, Drop, ResetMidBody, S3Proxy, TruncateBody
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.s3, pytest.mark.fuse]

# Small streaming thresholds so that "big" files (multipart, streamed while written) stay small here.
STREAMING = {"stream_threshold": "5MiB", "metadata_ttl": "1"}
CHUNK = {"chunksize": str(5 * MiB)}


def write_file(path: Path, data: bytes, block: int = MiB, fsync: bool = False) -> None:
    """open/write/close with the OSError of any step raised (close included)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(0, len(data), block):
            os.write(fd, data[i:i + block])
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)


def read_file(path: Path, block: int = 128 * 1024) -> bytes:
    with open(path, "rb", buffering=0) as f:
        parts = []
        while True:
            chunk = f.read(block)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)


def mount_params(mounts_: MountSet, **extra: str) -> dict[str, Any]:
    return {**mounts_.params, **extra}


# -- writes that cannot be saved ------------------------------------------------------------


def test_persistent_put_failure_is_eio_at_close_and_fsync(s3_mounts: MountSet, s3_proxy: S3Proxy,
                                                          store: BucketView) -> None:
    m = s3_mounts.start(expect_clean=False)
    rule = s3_proxy.fault(INTERNAL_ERROR, op="PutObject")
    with pytest.raises(OSError) as info:
        write_file(m.path / "small", blob(100_000, 1))
    assert info.value.errno == errno.EIO
    assert store.get("small") is None

    # fsync reports the failure too, as often as it is called, and succeeds once S3 is back
    data = blob(200_000, 2)
    fd = os.open(m.path / "synced", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        for _ in range(2):
            with pytest.raises(OSError) as info:
                os.fsync(fd)
            assert info.value.errno == errno.EIO
        assert store.get("synced") is None
        # the last close of "small" (RELEASE, after close returned) tries once more; let it give up
        wait_for(lambda: "/small: closed with data that could NOT be saved" in m.log(), 60, "the release of small")
        s3_proxy.clear_rules()
        os.fsync(fd)
        assert sha(store.get("synced") or b"") == sha(data)
    finally:
        os.close(fd)
    assert rule.fired >= 8
    assert sha(read_file(m.path / "synced")) == sha(data)  # the daemon keeps serving
    assert m.unmount() == exitcodes.DATA_LOSS  # "small" was lost, and the exit status says so
    assert "small" in m.log() and "could NOT be saved" in m.log()


def test_persistent_part_failure_of_a_streamed_file_is_eio_and_leaves_nothing(
    s3_mounts: MountSet, s3_proxy: S3Proxy, store: BucketView
) -> None:
    m = s3_mounts.start(params=mount_params(s3_mounts, **CHUNK), options=STREAMING, expect_clean=False)
    rule = s3_proxy.fault(INTERNAL_ERROR, op="UploadPart")
    with pytest.raises(OSError) as info:
        write_file(m.path / "big", blob(16 * MiB, 3))
    assert info.value.errno == errno.EIO
    assert rule.fired >= 4
    assert store.get("big") is None  # never half written
    # the release after the failed close tries once more in the background, then gives up and aborts
    wait_for(lambda: "could NOT be saved" in m.log(), 60, "the daemon to give up on /big")
    assert store.uploads() == []  # no upload left behind
    assert store.get("big") is None
    assert not (m.path / "big").exists()
    assert m.unmount() == exitcodes.DATA_LOSS


def test_transient_faults_during_a_big_write_are_retried(s3_mounts: MountSet, s3_proxy: S3Proxy,
                                                         store: BucketView) -> None:
    m = s3_mounts.start(params=mount_params(s3_mounts, **CHUNK), options=STREAMING)
    rules = [
        s3_proxy.fault(INTERNAL_ERROR, op="UploadPart", nth=1),
        s3_proxy.fault(Drop(), op="UploadPart", nth=3),
        s3_proxy.fault(SLOWDOWN, op="UploadPart", nth=4),
        s3_proxy.fault(SLOWDOWN, op="CreateMultipartUpload", nth=1),
        s3_proxy.fault(INTERNAL_ERROR, op="CompleteMultipartUpload", nth=1),
        s3_proxy.fault(INTERNAL_ERROR, op="UploadPart", probability=0.2, seed=7),
    ]
    data = blob(23 * MiB + 5, 4)
    write_file(m.path / "big", data, block=256 * 1024)
    assert [r.fired for r in rules[:5]] == [1, 1, 1, 1, 1]
    assert sha(store.get("big") or b"") == sha(data)
    assert sha(read_file(m.path / "big")) == sha(data)
    assert store.uploads() == []


# -- reads -----------------------------------------------------------------------------------


def test_reads_with_injected_resets_return_right_bytes_or_eio(s3_mounts: MountSet, s3_proxy: S3Proxy,
                                                              store: BucketView) -> None:
    files = {f"r{i}": blob(6 * MiB + i * 1000, 10 + i) for i in range(4)}
    for name, data in files.items():
        store.put(name, data)
    m = s3_mounts.start()
    rules = [
        s3_proxy.fault(ResetMidBody(after_bytes=100_000), op=GET_OPS, probability=0.25, seed=1),
        s3_proxy.fault(TruncateBody(after_bytes=50_000), op=GET_OPS, probability=0.15, seed=2),
        s3_proxy.fault(INTERNAL_ERROR, op=GET_OPS, probability=0.1, seed=3),
    ]
    outcomes = {"ok": 0, "eio": 0}
    for name, data in files.items():
        for block in (4096, 1 << 20):
            try:
                got = read_file(m.path / name, block)
            except OSError as exc:
                assert exc.errno == errno.EIO
                outcomes["eio"] += 1
                continue
            assert sha(got) == sha(data), f"{name}: wrong bytes"
            outcomes["ok"] += 1
    assert sum(r.fired for r in rules) >= 3
    assert outcomes["ok"] >= 1


def test_persistently_truncated_read_is_eio_not_zeros(s3_mounts: MountSet, s3_proxy: S3Proxy,
                                                      store: BucketView) -> None:
    data = blob(3 * MiB, 20)
    store.put("cut", data)
    m = s3_mounts.start()
    assert (m.path / "cut").stat().st_size == len(data)
    rule = s3_proxy.fault(TruncateBody(after_bytes=1000), op=GET_OPS)
    start = time.monotonic()
    got = b""
    with open(m.path / "cut", "rb", buffering=0) as f, pytest.raises(OSError) as info:
        while chunk := f.read(256 * 1024):
            got += chunk
    assert info.value.errno == errno.EIO
    assert got == data[:len(got)]  # what was returned before the error is right: no zeros, no garbage
    assert rule.fired >= 4
    assert time.monotonic() - start < 60


# -- S3 down at mount time -------------------------------------------------------------------


def test_s3_down_at_mount_time_fails_fast_with_one_line(tmp_path: Path, s3_proxy: S3Proxy,
                                                        proxied_params: dict[str, Any]) -> None:
    if mounts.fuse_unusable_reason():
        pytest.skip(mounts.fuse_unusable_reason())
    s3_proxy.down()
    args, env = s3_cli_args(proxied_params)
    mp = tmp_path / "mp"
    mp.mkdir()
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "s3regfs", "mount", "-f", *args, "-o",
                           f"cache_dir={tmp_path / 'cache'}", str(mp)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    elapsed = time.monotonic() - start
    assert done.returncode == exitcodes.STORAGE
    assert elapsed < 30
    errors = [line for line in done.stderr.splitlines() if line.startswith("s3regfs: error:")]
    assert len(errors) == 1, done.stderr
    assert "Could not connect" in errors[0] and s3_proxy.endpoint in errors[0]
    assert "Traceback" not in done.stderr
    assert not mounts.mountpoints.mounted_at(str(mp))


# -- the daemon killed mid-write --------------------------------------------------------------


def test_sigkill_mid_multipart_write(s3_mounts: MountSet, s3_proxy: S3Proxy, store: BucketView,
                                     proxied_params: dict[str, Any]) -> None:
    m = s3_mounts.start(params=mount_params(s3_mounts, **CHUNK), options=STREAMING, expect_clean=False)
    target = m.path / "docker" / "blob"
    (m.path / "docker").mkdir()
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            with open(target, "wb") as f:
                block = blob(MiB, 30)
                for _ in range(64):
                    if stop.is_set():
                        return
                    f.write(block)
                    f.flush()
                    time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - the daemon dies under it: ENOTCONN expected
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    wait_for(lambda: s3_proxy.counts().get("UploadPart", 0) >= 2, 60, "two parts uploaded")
    os.kill(m.proc.pid, signal.SIGKILL)
    m.wait_exit(30)
    stop.set()
    thread.join(30)
    assert m.proc.returncode == -signal.SIGKILL

    assert store.get("docker/blob") is None  # no partial object
    uploads = store.uploads()
    assert [u["Key"] for u in uploads] == [store.key("docker/blob")]

    args, env = s3_cli_args(proxied_params)
    listed = subprocess.run([sys.executable, "-m", "s3regfs", "uploads", *args, "list"],
                            capture_output=True, text=True, env=env, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "/docker/blob" in listed.stdout and uploads[0]["UploadId"] in listed.stdout
    aborted = subprocess.run([sys.executable, "-m", "s3regfs", "uploads", *args, "abort", "--older-than", "0s"],
                             capture_output=True, text=True, env=env, timeout=60, check=False)
    assert aborted.returncode == 0, aborted.stderr
    assert store.uploads() == []

    # the killed daemon left a stale mount point ("Transport endpoint is not connected")
    with pytest.raises(OSError) as info:
        os.stat(m.path)
    assert info.value.errno == errno.ENOTCONN
    again = s3_mounts.start(name=m.path.name, params=mount_params(s3_mounts, **CHUNK), options=STREAMING)
    assert "stale s3regfs mount" in again.log()
    data = blob(7 * MiB, 31)
    write_file(again.path / "after", data)
    assert sha(store.get("after") or b"") == sha(data)


# -- the spill directory full or gone -----------------------------------------------------------


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Any:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = tmp_path / "tiny"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_spill_directory_full_is_enospc_and_touches_nothing_saved(s3_mounts: MountSet, store: BucketView,
                                                                  tiny_tmpfs: Path) -> None:
    saved = blob(300_000, 40)
    store.put("saved", saved)
    m = s3_mounts.start(options={"cache_dir": str(tiny_tmpfs), "data_cache_size": "0"})
    small = blob(100_000, 41)
    write_file(m.path / "fits", small)
    big = blob(3 * MiB, 42)
    written = 0
    fd = os.open(m.path / "too-big", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with pytest.raises(OSError) as info:
            while written < len(big):
                written += os.write(fd, big[written:written + 256 * 1024])
        assert info.value.errno == errno.ENOSPC
    finally:
        os.close(fd)  # POSIX: the file holds what was written before ENOSPC, no more, no less
    assert 0 < written <= MiB
    assert sha(store.get("too-big") or b"") == sha(big[:written])
    assert sha(store.get("saved") or b"") == sha(saved)
    assert sha(read_file(m.path / "saved")) == sha(saved)
    assert sha(read_file(m.path / "fits")) == sha(small)
    write_file(m.path / "fits-again", small)  # the space came back once the file was closed
    assert sha(store.get("fits-again") or b"") == sha(small)


def test_spill_directory_removed_is_recreated_and_touches_nothing_saved(s3_mounts: MountSet, store: BucketView,
                                                                       tmp_path: Path) -> None:
    saved = blob(300_000, 50)
    store.put("saved", saved)
    cache = tmp_path / "cache-gone"
    m = s3_mounts.start(options={"cache_dir": str(cache), "data_cache_size": "0"})
    write_file(m.path / "before", saved)
    shutil.rmtree(cache)  # a cache cleaner, or an operator, removes the directory under the mount
    after = blob(100_000, 51)
    write_file(m.path / "after", after)
    assert "spill directory" in m.log() and "creating it again" in m.log()
    assert sha(store.get("after") or b"") == sha(after)
    assert sha(store.get("saved") or b"") == sha(saved)
    assert sha(store.get("before") or b"") == sha(saved)
    assert sha(read_file(m.path / "saved")) == sha(saved)


def test_spill_directory_that_cannot_be_made_is_eio(s3_mounts: MountSet, store: BucketView, tmp_path: Path) -> None:
    saved = blob(300_000, 52)
    store.put("saved", saved)
    cache = tmp_path / "cache-blocked"
    m = s3_mounts.start(options={"cache_dir": str(cache), "data_cache_size": "0"}, expect_clean=False)
    shutil.rmtree(cache)
    cache.write_bytes(b"a file where the directory was")  # the directory cannot be made again
    with pytest.raises(OSError) as info:
        write_file(m.path / "after", b"x" * 1000)
    assert info.value.errno in (errno.EIO, errno.ENOSPC)
    assert store.get("after") is None
    assert sha(read_file(m.path / "saved")) == sha(saved)  # reads still work
    assert sha(store.get("saved") or b"") == sha(saved)
