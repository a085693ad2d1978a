"""The mount(8) helper: argument translation, and real ``mount -t fuse.s3regfs`` / fstab / ``umount``."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from s3regfs import logs, mounthelper
from s3regfs.driver import factory
from s3regfs.mountpoint import mounted_at

HELPER = Path("/sbin/mount.fuse.s3regfs")
BLOB = "/docker/registry/v2/blobs/sha256/ab/abcd/data"


# -- translation (no mount) ------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["/etc/s3regfs/r.yml", "/mnt/r", "-o", "ro,allow_other,_netdev,nofail"],
            ["mount", "/mnt/r", "--config", "/etc/s3regfs/r.yml", "-o", "ro,allow_other,_netdev,nofail"],
        ),
        (
            ["my-bucket", "/mnt/b", "-o", "region=us-east-1"],
            ["mount", "/mnt/b", "-o", "bucket=my-bucket", "-o", "region=us-east-1"],
        ),
        (
            ["none", "/mnt/n", "-n", "-s", "-o", "bucket=b", "-t", "fuse.s3regfs"],
            ["mount", "/mnt/n", "-o", "bucket=b"],
        ),
        (["inmemory", "/mnt/m", "-v"], ["mount", "/mnt/m", "--driver", "inmemory", "--log-level", "debug"]),
        (
            ["s3regfs#config.yaml", "/mnt/c", "-oro", "-N", "/proc/1/ns/mnt"],
            ["mount", "/mnt/c", "--config", "config.yaml", "-o", "ro"],
        ),
        (["/etc/r.yml", "/mnt/r", "-f", "-o", "ro"], None),  # -f: fake, do nothing
    ],
)
def test_helper_arguments_become_a_mount_command(argv: list[str], expected: list[str] | None) -> None:
    assert mounthelper.translate(argv) == expected


def test_helper_without_source_and_mountpoint_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert mounthelper.run(["/mnt/only"]) == 2
    assert capsys.readouterr().err.startswith("s3regfs: error: usage: mount.fuse.s3regfs SOURCE MOUNTPOINT")


# -- real mounts -----------------------------------------------------------------------


@pytest.fixture
def helper() -> Iterator[None]:
    """``/sbin/mount.fuse.s3regfs``, installed as docs/CONFIGURATION.md says (a symlink to the console script)."""
    if os.geteuid() != 0:
        pytest.skip("installing the mount helper in /sbin needs root")
    script = Path(sysconfig.get_path("scripts")) / "mount.fuse.s3regfs"
    assert script.exists(), "pip install -e . installs the mount.fuse.s3regfs console script"
    created = False
    if not HELPER.exists():
        HELPER.symlink_to(script)
        created = True
    try:
        yield
    finally:
        if created:
            HELPER.unlink()


@pytest.fixture
def config_file(tmp_path: Path, s3_driver_params: dict[str, Any]) -> Path:
    factory.create("s3", s3_driver_params).put_content(BLOB, b"blob bytes")
    path = tmp_path / "registry.yml"
    document = {
        "version": 0.1,
        "storage": {"s3": s3_driver_params, "delete": {"enabled": True}},
        "http": {"addr": ":5000"},
        "s3regfs": {"cache_dir": str(tmp_path / "cache"), "metadata_ttl": "1s"},
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


def daemons_for(mountpoint: Path) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--daemon-child" in cmdline and str(mountpoint).encode() in cmdline:
                pids.append(int(entry))
    return pids


def wait_gone(mountpoint: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while daemons_for(mountpoint):
        assert time.monotonic() < deadline, f"the daemon for {mountpoint} did not exit"
        time.sleep(0.05)


@pytest.fixture
def mountpoint(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "mnt"
    path.mkdir()
    yield path
    if mounted_at(str(path)) is not None:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
    for pid in daemons_for(path):
        os.kill(pid, 9)


def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False, **kwargs)


def assert_read_only_registry_mount(mountpoint: Path) -> None:
    entry = mounted_at(str(mountpoint))
    assert entry is not None and entry.fstype == "fuse.s3regfs"
    assert (mountpoint / BLOB.lstrip("/")).read_bytes() == b"blob bytes"
    with pytest.raises(OSError) as info:
        (mountpoint / "new-file").write_bytes(b"x")
    assert info.value.errno == errno.EROFS


@pytest.mark.fuse
def test_mount_t_fuse_s3regfs_with_a_config_file_and_umount(
    helper: None, config_file: Path, mountpoint: Path
) -> None:
    result = run("mount", "-t", "fuse.s3regfs", str(config_file), str(mountpoint), "-o", "ro,allow_other")
    assert result.returncode == 0, result.stderr
    # silent, but for where the daemon logs when there is no syslog socket (docs/OPERATIONS.md "Logs")
    lines = result.stderr.splitlines()
    if logs.syslog_available():
        assert lines == []
    else:
        assert len(lines) == 1 and lines[0].endswith("/s3regfs.log"), lines
        assert "WARNING s3regfs: no syslog socket (/dev/log): the mount logs to " in lines[0]
    assert_read_only_registry_mount(mountpoint)
    assert len(daemons_for(mountpoint)) == 1
    assert run("umount", str(mountpoint)).returncode == 0
    assert mounted_at(str(mountpoint)) is None
    wait_gone(mountpoint)


@pytest.mark.fuse
def test_an_fstab_line_with_netdev_nofail_and_automount(
    helper: None, config_file: Path, mountpoint: Path, tmp_path: Path
) -> None:
    fstab = tmp_path / "fstab"
    fstab.write_text(
        f"{config_file} {mountpoint} fuse.s3regfs "
        "ro,allow_other,_netdev,nofail,x-systemd.automount,x-systemd.idle-timeout=60 0 0\n"
    )
    result = run("mount", "--fstab", str(fstab), str(mountpoint))
    assert result.returncode == 0, result.stderr
    assert_read_only_registry_mount(mountpoint)
    assert run("umount", str(mountpoint)).returncode == 0
    wait_gone(mountpoint)


@pytest.mark.fuse
def test_a_bucket_name_as_source_with_secrets_from_the_environment(
    helper: None, s3_driver_params: dict[str, Any], mountpoint: Path, tmp_path: Path
) -> None:
    factory.create("s3", s3_driver_params).put_content(BLOB, b"blob bytes")
    p = s3_driver_params
    env = dict(
        os.environ,
        REGISTRY_STORAGE_S3_ACCESSKEY=f"'{p['accesskey']}'",
        REGISTRY_STORAGE_S3_SECRETKEY=f"'{p['secretkey']}'",
    )
    options = (
        f"ro,region={p['region']},regionendpoint={p['regionendpoint']},forcepathstyle=true,"
        f"cache_dir={tmp_path / 'cache'}"
    )
    result = run("mount", "-t", "fuse.s3regfs", p["bucket"], str(mountpoint), "-o", options, env=env)
    assert result.returncode == 0, result.stderr
    assert_read_only_registry_mount(mountpoint)
    assert run("umount", str(mountpoint)).returncode == 0
    wait_gone(mountpoint)


@pytest.mark.fuse
def test_a_failing_helper_mount_reports_one_line_and_leaves_nothing(
    helper: None, tmp_path: Path, mountpoint: Path
) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /x\n")
    result = run("mount", "-t", "fuse.s3regfs", str(config), str(mountpoint), "-o", "ro")
    assert result.returncode != 0
    assert "s3regfs: error: config file" in result.stderr and "filesystem storage driver" in result.stderr
    assert "Traceback" not in result.stderr
    assert mounted_at(str(mountpoint)) is None and daemons_for(mountpoint) == []


@pytest.mark.fuse
def test_the_mount_fuse3_form_runs_through_the_main_command(config_file: Path, mountpoint: Path) -> None:
    """Without /sbin/mount.fuse.s3regfs, mount.fuse3 runs ``s3regfs SOURCE MOUNTPOINT -o OPTIONS``."""
    result = run(sys.executable, "-m", "s3regfs", str(config_file), str(mountpoint), "-o", "ro")
    assert result.returncode == 0, result.stderr
    assert_read_only_registry_mount(mountpoint)
    assert run("fusermount3", "-u", str(mountpoint)).returncode == 0
    wait_gone(mountpoint)
