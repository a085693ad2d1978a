"""systemd integration: the unit verifies, sd_notify works, and a full daemon run notifies in order without leaking secrets."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3regfs import exitcodes, systemd
from s3regfs.driver import factory

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "s3regfs@.service"
INSTALLED = Path("/usr/local/bin/s3regfs")
JOURNAL_LINE = re.compile(r"^<[2-7]>(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def unit_directives() -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


@pytest.fixture
def installed_command() -> Iterator[None]:
    """The unit's ExecStart path, as a production install has it (docs: pip install puts it there)."""
    created = False
    if not INSTALLED.exists():
        if os.geteuid() != 0:
            pytest.skip(f"{INSTALLED} missing and not root to create it")
        INSTALLED.symlink_to(Path(sysconfig.get_path("scripts")) / "s3regfs")
        created = True
    try:
        yield
    finally:
        if created:
            INSTALLED.unlink()


def verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (apt install systemd)")
    (tmp_path / "s3regfs@.service").write_text(unit_text)
    return subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "s3regfs@registry.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )


def test_the_unit_passes_systemd_analyze_verify(installed_command: None, tmp_path: Path) -> None:
    result = verify(UNIT.read_text(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "s3regfs@" not in result.stdout + result.stderr


def test_systemd_analyze_verify_does_catch_mistakes(installed_command: None, tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("Type=notify", "Type=notify\nRestartt=always")
    result = verify(broken, tmp_path)
    assert "Unknown key 'Restartt' in section [Service]" in result.stderr


def test_the_unit_is_a_notify_template_with_the_documented_mapping() -> None:
    d = unit_directives()
    assert d["Type"] == ["notify"]
    exec_start = (
        "/usr/local/bin/s3regfs mount --systemd --config /etc/s3regfs/%i.yml "
        "-o cache_dir=${CACHE_DIRECTORY} ${MOUNTPOINT}"
    )
    assert d["ExecStart"] == [exec_start]
    assert d["Environment"] == ["MOUNTPOINT=/mnt/%i"]
    assert d["EnvironmentFile"] == ["-/etc/s3regfs/%i.env"]
    assert d["Restart"] == ["on-failure"]
    assert d["DeviceAllow"] == ["/dev/fuse rw"]
    assert any("fusermount3 -u ${MOUNTPOINT}" in v for v in d["ExecStop"])
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # systemctl reload: SIGHUP reloads, the mount stays
    timeout = d["TimeoutStopSec"][0]
    assert timeout.endswith("min") and int(timeout[:-3]) >= 10
    # no directive that gives the service its own mount namespace: the mount would not reach the host
    for namespaced in (
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "PrivateMounts",
        "ProtectKernelTunables",
        "ProtectControlGroups",
        "ReadOnlyPaths",
        "TemporaryFileSystem",
    ):
        assert namespaced not in d


# -- sd_notify -------------------------------------------------------------------------


def test_notify_sends_to_a_path_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert systemd.ready("mounted")
        assert sock.recv(4096) == b"READY=1\nSTATUS=mounted"


def test_notify_sends_to_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"s3regfs-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.stopping()
        assert sock.recv(4096) == b"STOPPING=1"


def test_notify_without_a_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/socket")
    assert systemd.notify("READY=1") is False


# -- a full daemon run -----------------------------------------------------------------


class Daemon:
    """``s3regfs mount --systemd`` with a NOTIFY_SOCKET of the test's own."""

    def __init__(self, tmp_path: Path, params: dict[str, Any]) -> None:
        self.mountpoint = tmp_path / "mnt"
        self.mountpoint.mkdir()
        self.sock_path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.messages: list[str] = []
        option = ",".join(f"{k}={v}" for k, v in params.items() if k not in ("accesskey", "secretkey"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "S3REGFS_"))}
        env.update(
            NOTIFY_SOCKET=self.sock_path,
            REGISTRY_STORAGE_S3_ACCESSKEY=f"'{params['accesskey']}'",
            REGISTRY_STORAGE_S3_SECRETKEY=f"'{params['secretkey']}'",
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "s3regfs",
                "mount",
                "--systemd",
                "--log-level",
                "debug",
                "-o",
                option,
                "-o",
                f"cache_dir={tmp_path / 'cache'}",
                str(self.mountpoint),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def receive_until(self, wanted: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.messages:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and self.proc.poll() is None, f"no {wanted}; got {self.messages}"
            self.sock.settimeout(min(remaining, 0.5))
            try:
                self.messages.extend(self.sock.recv(65536).decode().splitlines())
            except TimeoutError:
                continue

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, stderr = self.proc.communicate(timeout=120)
        self.sock.settimeout(0.2)
        while True:
            try:
                self.messages.extend(self.sock.recv(65536).decode().splitlines())
            except OSError:
                break
        self.sock.close()
        return self.proc.returncode, stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True, check=False)


@pytest.mark.fuse
def test_daemon_notifies_ready_status_and_stopping_in_order_and_logs_no_secret(
    tmp_path: Path, s3_driver_params: dict[str, Any]
) -> None:
    factory.create("s3", s3_driver_params).put_content(
        "/docker/registry/v2/blobs/sha256/ab/abcd/data", b"x" * 100
    )
    daemon = Daemon(tmp_path, s3_driver_params)
    try:
        daemon.receive_until("READY=1")
        mp = daemon.mountpoint
        assert (mp / "docker/registry/v2/blobs/sha256/ab/abcd/data").read_bytes() == b"x" * 100
        (mp / "written.txt").write_bytes(b"hello")
        assert sorted(os.listdir(mp)) == ["docker", "written.txt"]
        code, stderr = daemon.stop()
    finally:
        daemon.kill()
    assert code == exitcodes.OK, stderr
    messages = daemon.messages
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert statuses and "READY=1" in messages and "STOPPING=1" in messages
    assert messages.index("READY=1") < messages.index("STOPPING=1")
    assert messages.index(statuses[0]) < messages.index("READY=1")  # what it is doing before it is ready
    assert statuses[-1] == "STATUS=Stopped: every upload completed"
    assert factory.create("s3", s3_driver_params).get_content("/written.txt") == b"hello"
    # journald form: every line carries a syslog priority prefix
    lines = [line for line in stderr.splitlines() if line]
    assert lines
    # every record of ours carries the prefix (libfuse may print raw lines of its own to stderr)
    unprefixed = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
    assert [line for line in lines if unprefixed.match(line)] == []
    assert any(JOURNAL_LINE.match(line) and line.startswith("<7>DEBUG") for line in lines)
    # the secrets are in the daemon's environment and used for every request, but never logged
    for secret in (s3_driver_params["secretkey"], s3_driver_params["accesskey"]):
        assert secret not in stderr
