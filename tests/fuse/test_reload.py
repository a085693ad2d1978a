"""SIGHUP reloads (docs/OPERATIONS.md "Reload (SIGHUP)"): the metadata caches are dropped, so another
writer's change shows at once, the log file is reopened, and the mount stays."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount
from tests.support.waiting import wait_for

RELOADED = "reloaded: metadata caches dropped, log file reopened"
LONG_TTL = {"metadata_ttl": "60s", "negative_ttl": "60s"}
MountFactory = Callable[..., Mount]


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _reload(mount: Mount, log: Callable[[], str] | None = None) -> None:
    """``kill -HUP`` the daemon and wait (with a deadline) for its reload line."""
    read = log or mount.log
    before = read().count(RELOADED)
    mount.signal(signal.SIGHUP)
    wait_for(lambda: read().count(RELOADED) > before, 30, "the reload line in the log")


def _exists(path: Path) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    return True


def test_sighup_shows_another_writers_change_at_once_and_the_mount_stays(
    mount_factory: MountFactory, s3_server: LocalS3Server, s3_bucket: str, s3_driver_params: dict[str, Any]
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="d/changed", Body=b"v1")
    client.put_object(Bucket=s3_bucket, Key="d/gone", Body=b"here")
    options, env = mounts.s3_options(s3_driver_params)
    mount = mount_factory("s3", options={**options, **LONG_TTL}, env=env)
    d = mount.path / "d"
    assert sorted(os.listdir(d)) == ["changed", "gone"]
    assert (d / "changed").stat().st_size == 2 and not _exists(d / "new")

    # another writer changes the bucket: within metadata_ttl this mount does not see it
    client.put_object(Bucket=s3_bucket, Key="d/changed", Body=b"version two")
    client.put_object(Bucket=s3_bucket, Key="d/new", Body=b"new")
    client.delete_object(Bucket=s3_bucket, Key="d/gone")
    assert sorted(os.listdir(d)) == ["changed", "gone"]
    assert (d / "changed").stat().st_size == 2 and _exists(d / "gone") and not _exists(d / "new")

    _reload(mount)
    # at once: no wait, not even the kernel's attribute time (the reload invalidated what it knew)
    assert (d / "changed").stat().st_size == len(b"version two")
    assert (d / "changed").read_bytes() == b"version two"
    assert sorted(os.listdir(d)) == ["changed", "new"]
    assert _exists(d / "new") and not _exists(d / "gone")

    # still mounted, still the same daemon, still answering reads and writes
    assert mount.is_mounted() and mount.proc.poll() is None
    (mount.path / "after").write_bytes(b"written after the reload")
    assert client.get_object(Bucket=s3_bucket, Key="after")["Body"].read() == b"written after the reload"
    assert "unmounting" not in mount.log().lower()


def test_sigterm_and_sigint_still_unmount_after_a_reload(mount_factory: MountFactory) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        mount = mount_factory()
        _reload(mount)
        assert mount.is_mounted()
        mount.signal(sig)
        assert mount.wait_exit(60) == 0
        assert not mount.is_mounted()


def test_sighup_reopens_the_log_file_after_logrotate(mount_factory: MountFactory, tmp_path: Path) -> None:
    log_file = tmp_path / "s3regfs.log"
    mount = mount_factory(options={"log_file": str(log_file)})
    wait_for(lambda: "mounted" in _text(log_file), 30, "the mount's line in log_file")
    rotated = tmp_path / "s3regfs.log.1"
    log_file.rename(rotated)  # logrotate's default (create): rename, then signal the daemon
    _reload(mount, lambda: _text(log_file))
    assert RELOADED not in rotated.read_text()
    assert mount.is_mounted()


def test_a_renamed_log_file_is_reopened_without_sighup(mount_factory: MountFactory, tmp_path: Path) -> None:
    log_file = tmp_path / "s3regfs.log"
    mount = mount_factory(options={"log_file": str(log_file)})
    wait_for(lambda: "mounted" in _text(log_file), 30, "the mount's line in log_file")
    rotated = tmp_path / "s3regfs.log.1"
    log_file.rename(rotated)
    try:
        open(mount.path / "bad name", "w").close()  # noqa: SIM115 - refused, with a WARNING line
    except OSError:
        pass
    wait_for(lambda: "bad name" in _text(log_file), 30, "the line in a new log_file")
    assert "bad name" not in rotated.read_text()
