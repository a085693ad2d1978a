"""The mount's life: start (foreground, background, systemd), refusals, signals, unmount, exit codes."""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from s3regfs import exitcodes
from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount
from tests.support.s3proxy import WRITE_OPS, Hold, Rule

MiB = 1024 * 1024


def _mount_cli(*args: str, timeout: float = 90, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "s3regfs", "mount", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, check=False)


def _keys(server: LocalS3Server, bucket: str) -> dict[str, bytes]:
    client = server.client()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


# -- refusals --------------------------------------------------------------------------------------


def test_missing_mount_point_is_a_clear_error(tmp_path: Path) -> None:
    done = _mount_cli("-f", "--driver", "inmemory", str(tmp_path / "nope"))
    assert done.returncode == exitcodes.MOUNT
    assert "does not exist" in done.stderr and "mkdir -p" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_mount_point_in_use_is_refused(mount_factory: Callable[..., Mount]) -> None:
    mount = mount_factory()
    done = _mount_cli("-f", "--driver", "inmemory", str(mount.path))
    assert done.returncode == exitcodes.MOUNT
    assert "already a mount point" in done.stderr and "fusermount3 -u" in done.stderr
    assert mount.proc.poll() is None and os.listdir(mount.path) == []


def test_a_stale_mount_point_is_detached_and_reused(mount_factory: Callable[..., Mount]) -> None:
    dead = mount_factory(name="stale", expect_clean=False)
    dead.proc.kill()
    dead.wait_exit()
    with pytest.raises(OSError) as exc:
        os.listdir(dead.path)
    assert exc.value.errno == errno.ENOTCONN  # "Transport endpoint is not connected"
    again = mount_factory(name="stale")
    (again.path / "f").write_bytes(b"works")
    assert (again.path / "f").read_bytes() == b"works"
    assert "stale" in again.log()


def test_unreachable_storage_fails_the_mount(tmp_path: Path, s3_server: LocalS3Server, s3_bucket: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    params = s3_server.driver_parameters(s3_bucket, regionendpoint=f"http://127.0.0.1:{closed_port}")
    options, env = mounts.s3_options(params)
    (tmp_path / "m").mkdir()
    started = time.monotonic()
    done = _mount_cli("-f", "--driver", "s3", "-o", mounts.format_options(options), str(tmp_path / "m"), env=env)
    assert done.returncode == exitcodes.STORAGE, done.stderr
    assert time.monotonic() - started < 80
    assert "storage" in done.stderr and "Traceback" not in done.stderr
    assert mounts.mountpoints.mounted_at(str(tmp_path / "m")) is None


def test_wrong_credentials_fail_the_mount(tmp_path: Path, s3_driver_params: dict[str, Any]) -> None:
    options, env = mounts.s3_options({**s3_driver_params, "secretkey": "not-the-secret-key"})
    (tmp_path / "m").mkdir()
    done = _mount_cli("-f", "--driver", "s3", "-o", mounts.format_options(options), str(tmp_path / "m"), env=env)
    assert done.returncode == exitcodes.CREDENTIALS, done.stderr
    assert "S3 refused the credentials" in done.stderr
    assert "not-the-secret-key" not in done.stderr


def _super_options(path: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return set(line.split(" - ")[1].split()[2].split(",")) | set(fields[5].split(","))
    raise AssertionError(f"{path} is not mounted")


def test_mount_options_by_default_and_with_allow_other(mount_factory: Callable[..., Mount]) -> None:
    private = mount_factory()
    assert not {"allow_other", "default_permissions"} & _super_options(private.path)
    shared = mount_factory(options={"allow_other": True, "ro": True})
    assert {"allow_other", "default_permissions", "ro"} <= _super_options(shared.path)


# -- background and systemd ------------------------------------------------------------------------


def _daemon_pids(path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if os.fsencode(path) in cmdline and b"mount" in cmdline:
                pids.append(int(entry.name))
    return pids


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, f"daemon {pids} still running"
        time.sleep(0.05)


def test_background_mount_returns_once_the_mount_answers(tmp_path: Path) -> None:
    path = tmp_path / "bg"
    path.mkdir()
    done = _mount_cli("--driver", "inmemory", "-o", f"cache_dir={tmp_path / 'cache'}", str(path))
    pids = _daemon_pids(path)
    try:
        assert done.returncode == 0, done.stderr
        entry = mounts.mountpoints.mounted_at(str(path))
        assert entry is not None and entry.fstype == "fuse.s3regfs"
        (path / "f").write_bytes(b"served by the daemon")
        assert (path / "f").read_bytes() == b"served by the daemon"
        assert len(pids) == 1 and pids[0] != os.getpid()
        assert os.getsid(pids[0]) != os.getsid(0)  # detached: its own session
    finally:
        subprocess.run(["fusermount3", "-u", str(path)], capture_output=True, check=False)
        _wait_gone(pids, 30)
    assert mounts.mountpoints.mounted_at(str(path)) is None


def test_background_mount_reports_the_childs_error(tmp_path: Path) -> None:
    done = _mount_cli("--driver", "inmemory", str(tmp_path / "missing"))
    assert done.returncode == exitcodes.MOUNT
    assert "does not exist" in done.stderr


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    directory = tempfile.mkdtemp(prefix="s3n", dir="/tmp")  # AF_UNIX paths are short
    address = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.2)
    yield sock, address
    sock.close()
    shutil.rmtree(directory)


def _messages_until(sock: socket.socket, want: str, timeout: float) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            messages += sock.recv(4096).decode().split("\n")
        except TimeoutError:
            continue
        if want in messages:
            return messages
    raise AssertionError(f"no {want} within {timeout}s; got {messages}")


def test_systemd_notifications_and_their_order(
    mount_factory: Callable[..., Mount], notify_socket: tuple[socket.socket, str]
) -> None:
    sock, address = notify_socket
    mount = mount_factory(args=["--systemd"], env={"NOTIFY_SOCKET": address})
    before = _messages_until(sock, "READY=1", 30)
    assert mount.is_mounted() and os.stat(mount.path)
    mount.signal(signal.SIGTERM)
    after = _messages_until(sock, "STOPPING=1", 30)
    assert mount.wait_exit(60) == exitcodes.OK
    after += _messages_until(sock, "STATUS=Stopped: every upload completed", 10)
    statuses = [m for m in before if m.startswith("STATUS=")]
    assert statuses[:2] == ["STATUS=Checking the mount point", "STATUS=Checking the storage"]
    assert f"STATUS=Mounting {mount.path}" in before
    assert after.index("STOPPING=1") < after.index(f"STATUS=Unmounting {mount.path}")
    assert not mount.is_mounted()


# -- stopping ---------------------------------------------------------------------------------------


def _wait_detached(mount: Mount, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while mount.is_mounted():
        assert time.monotonic() < deadline, f"{mount.path} still mounted:\n{mount.log()}"
        time.sleep(0.05)


def test_fusermount_u_from_outside_stops_the_daemon_cleanly(mount_factory: Callable[..., Mount]) -> None:
    mount = mount_factory()
    (mount.path / "f").write_bytes(b"x")
    assert mount.unmount() == exitcodes.OK
    assert "unmounted" in mount.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_after_writes_uploads_everything_then_unmounts(
    sig: signal.Signals, s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    files = {f"dir/f{i}": os.urandom(100_000 * (i + 1)) for i in range(3)}
    (s3_mount.path / "dir").mkdir()
    for key, data in files.items():
        (s3_mount.path / key).write_bytes(data)
    s3_mount.signal(sig)
    assert s3_mount.wait_exit(60) == exitcodes.OK
    assert not s3_mount.is_mounted()
    assert _keys(s3_server, s3_bucket) == files


def test_sigterm_while_a_file_is_open_for_writing(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str, s3_driver_params: dict[str, Any]
) -> None:
    options, env = mounts.s3_options(s3_driver_params)
    mount = mount_factory("s3", options=options, env=env, expect_clean=False)
    (mount.path / "closed").write_bytes(b"complete")
    data = os.urandom(3 * MiB)
    fd = os.open(mount.path / "open", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    mount.signal(signal.SIGTERM)
    _wait_detached(mount)
    try:
        os.close(fd)  # the busy mount was detached lazily: this close is its last request
    except OSError as exc:
        assert exc.errno in (errno.EIO, errno.ENOTCONN, errno.ECONNABORTED)
    code = mount.wait_exit(60)
    keys = _keys(s3_server, s3_bucket)
    assert keys.get("closed") == b"complete"
    # the open file is uploaded as written so far, or reported lost; never half an object
    if code == exitcodes.OK:
        assert keys.get("open") == data
    else:
        assert code == exitcodes.DATA_LOSS and "open" not in keys
    assert not mount.is_mounted()


def test_exit_status_says_data_was_lost(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket) as (mount, proxy):
        fd = os.open(mount.path / "pending", os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, os.urandom(MiB))
        proxy.add_rule(Rule(mounts.DENIED, op=WRITE_OPS))  # the storage now refuses every write
        mount.signal(signal.SIGTERM)
        _wait_detached(mount)
        with pytest.raises(OSError):
            os.close(fd)
        assert mount.wait_exit(120) == exitcodes.DATA_LOSS
    assert "could not be uploaded" in mount.log() and "pending" in mount.log()
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=s3_bucket)


def test_unmount_while_a_background_fill_is_held_exits_at_once_and_cleanly(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    """Random reads start a background fill of a blob (s3regfs/fs/blobfill.py); the proxy holds its
    GETs.  Unmounting does not wait for them: the daemon exits at once with status 0."""
    blob = "docker/registry/v2/blobs/sha256/ab/" + "ab" * 32 + "/data"
    data = random.Random(9).randbytes(8 * MiB)
    s3_server.client().put_object(Bucket=s3_bucket, Key=blob, Body=data)
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket, read_part_size=MiB) as (mount, proxy):
        hold = Hold(seconds=120)
        proxy.add_rule(Rule(hold, op={"GetObject", "GetObjectRange"}, path="/data$", skip=8))
        with open(mount.path / blob, "rb", buffering=0) as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
            for offset in random.Random(4).sample(range(0, len(data), 4096), 8):  # the 8th starts the fill
                assert os.pread(f.fileno(), 4096, offset) == data[offset : offset + 4096]
        assert hold.arrived.wait(30), "the fill asked for no part"
        try:
            started = time.monotonic()
            assert mount.unmount(timeout=30) == exitcodes.OK
            assert time.monotonic() - started < 20, "the unmount waited for the held GETs"
        finally:
            hold.release()
    assert "unmounted" in mount.log() and "Traceback" not in mount.log()
