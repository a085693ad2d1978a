"""Nothing at a key until it is complete: ``dd``, shell redirects, ``touch``, and a daemon killed mid-write.

Through a real mount of a SeaweedFS bucket; the bucket is checked with boto3 directly.  Each
writer is held at a known point (blocked reading its standard input, or at a known file
offset) by watching ``/proc``, never by sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount
from tests.support.waiting import wait_for

MiB = 1024 * 1024


def _object(server: LocalS3Server, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when the key is absent."""
    try:
        return server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise


def _fd_pos(pid: int, fd: int) -> int:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("pos:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _fds_on(pid: int, path: Path) -> list[int]:
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == str(path):
                found.append(int(name))
        except OSError:
            continue
    return found


def _blocked_reading_stdin(pid: int) -> bool:
    """The process sits in read(0, ...) (its stdin is a pipe the test holds)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    return len(fields) >= 2 and fields[0] == str(_read_syscall_number()) and int(fields[1], 16) == 0


def _read_syscall_number() -> int:
    return {"x86_64": 0, "aarch64": 63}.get(os.uname().machine, 0)


def _redirect_writer(target: Path, script: str) -> subprocess.Popen[bytes]:
    """``bash -c 'exec >TARGET; SCRIPT'``: a shell that redirects its output into the mount."""
    return subprocess.Popen(
        ["bash", "-c", f'exec >"$1"; {script}', "bash", str(target)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[bytes], stdin: bytes = b"go\n") -> None:
    assert proc.stdin is not None
    _, err = proc.communicate(stdin, timeout=60)
    assert proc.returncode == 0, err


@pytest.fixture
def bucket_mount(s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str) -> tuple[Mount, Any]:
    return s3_mount, lambda key: _object(s3_server, s3_bucket, key)


def test_dd_puts_nothing_at_the_key_until_it_has_written_everything(bucket_mount: tuple[Mount, Any]) -> None:
    mount, stored = bucket_mount
    target = mount.path / "x.bin"
    data = os.urandom(24 * MiB)
    dd = subprocess.Popen(["dd", f"of={target}", "bs=1M", "iflag=fullblock", "status=none"],
                          stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert dd.stdin is not None
    dd.stdin.write(data[: 12 * MiB])
    dd.stdin.flush()
    wait_for(lambda: _fd_pos(dd.pid, 1) == 12 * MiB, 30, "dd to write 12 MiB")
    assert stored("x.bin") is None  # not an empty object, not a partial one
    dd.stdin.write(data[12 * MiB :])
    _finish(dd, b"")
    assert stored("x.bin") == data


def test_a_shell_redirect_keeps_the_previous_object_until_the_shell_closes(bucket_mount: tuple[Mount, Any]) -> None:
    mount, stored = bucket_mount
    target = mount.path / "existing.txt"
    target.write_bytes(b"OLD\n")
    assert stored("existing.txt") == b"OLD\n"
    # The shell opens, dup2s and closes (a flush before any byte); /bin/true inherits the descriptor
    # and closes it at exit after the first line was written (a flush from another process).
    shell = _redirect_writer(target, "echo first; /bin/true; read -r _; echo second")
    wait_for(lambda: _blocked_reading_stdin(shell.pid), 30, "the shell to wait on its stdin")
    assert _fds_on(shell.pid, target) == [1]
    assert stored("existing.txt") == b"OLD\n"
    _finish(shell)
    assert stored("existing.txt") == b"first\nsecond\n"


def test_false_redirected_over_a_file_empties_it_at_release_as_on_a_local_disk(
    bucket_mount: tuple[Mount, Any],
) -> None:
    mount, stored = bucket_mount
    target = mount.path / "existing2.txt"
    target.write_bytes(b"OLD\n")
    subprocess.run(["bash", "-c", 'false >"$1"', "bash", str(target)], check=False)
    assert target.read_bytes() == b""
    wait_for(lambda: stored("existing2.txt") == b"", 30, "the truncation to reach the bucket at release")


def test_touch_creates_an_empty_object_at_release(bucket_mount: tuple[Mount, Any]) -> None:
    mount, stored = bucket_mount
    subprocess.run(["touch", str(mount.path / "empty")], check=True)
    assert os.stat(mount.path / "empty").st_size == 0
    wait_for(lambda: stored("empty") == b"", 30, "the empty file to reach the bucket at release")


def _python_writer(target: Path) -> subprocess.Popen[bytes]:
    code = (
        "import sys\n"
        "f = open(sys.argv[1], 'wb')\n"
        "f.write(b'P' * (20 << 20)); f.flush()\n"
        "sys.stdin.readline()\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(target)], stdin=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("writer", ["dd", "redirect", "python"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_daemon_killed_mid_write_leaves_the_key_absent_or_its_previous_version(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str, writer: str, existing: bool,
) -> None:
    options, env = mounts.s3_options(s3_server.driver_parameters(s3_bucket))
    mount = mount_factory("s3", options=options, env=env, expect_clean=False)
    target = mount.path / "victim"
    if existing:
        target.write_bytes(b"PREVIOUS")
    if writer == "dd":
        proc = subprocess.Popen(["dd", f"of={target}", "bs=1M", "iflag=fullblock", "status=none"],
                                stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None
        proc.stdin.write(os.urandom(20 * MiB))
        proc.stdin.flush()
        wait_for(lambda: _fd_pos(proc.pid, 1) == 20 * MiB, 30, "dd to write 20 MiB")
    elif writer == "redirect":
        proc = _redirect_writer(target, "echo partial; read -r _; echo rest")
        wait_for(lambda: _blocked_reading_stdin(proc.pid), 30, "the shell to wait on its stdin")
    else:
        proc = _python_writer(target)
        wait_for(lambda: _fd_pos(proc.pid, 3) == 20 * MiB, 30, "python to write 20 MiB")
    mount.proc.send_signal(signal.SIGKILL)
    assert mount.wait_exit(30) == -signal.SIGKILL
    proc.kill()
    proc.wait(30)
    subprocess.run(["fusermount3", "-u", "-z", str(mount.path)], check=True)  # the stale mount point
    assert _object(s3_server, s3_bucket, "victim") == (b"PREVIOUS" if existing else None)
