"""Where the daemon's log lines go and what they look like (docs/OPERATIONS.md "Logs"): stderr lines carry a
timestamp unless journald receives them; a background mount without a syslog socket logs to a file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from s3regfs import logs, mountpoint
from tests.support.mounts import Mount
from tests.support.waiting import wait_for

STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")
BARE = re.compile(r"^(<\d>)?(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def _ours(text: str) -> list[str]:
    """The lines of s3regfs's records (libfuse may print raw lines of its own)."""
    return [line for line in text.splitlines() if STAMPED.match(line) or BARE.match(line)]


def test_stderr_lines_carry_a_timestamp(mount_factory: Callable[..., Mount]) -> None:
    mount = mount_factory()
    wait_for(lambda: "mounted" in mount.log(), 30, "the mount's line")
    lines = _ours(mount.log())
    assert lines and all(STAMPED.match(line) for line in lines), mount.log()


def test_under_systemd_stderr_lines_have_no_timestamp(mount_factory: Callable[..., Mount]) -> None:
    mount = mount_factory(args=["--systemd"])
    wait_for(lambda: "mounted" in mount.log(), 30, "the mount's line")
    lines = _ours(mount.log())
    assert lines and not any(STAMPED.match(line) for line in lines), mount.log()
    assert all(line.startswith("<") for line in lines)  # journald's priority prefix instead


def test_stderr_connected_to_journald_has_no_timestamp(
    mount_factory: Callable[..., Mount], tmp_path: Path
) -> None:
    log_path = tmp_path / "journal.log"
    log_path.touch()
    st = os.stat(log_path)  # JOURNAL_STREAM names the device:inode of the stream journald reads
    mount = mount_factory(log_path=log_path, env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    wait_for(lambda: "mounted" in mount.log(), 30, "the mount's line")
    lines = _ours(mount.log())
    assert lines and all(BARE.match(line) for line in lines), mount.log()


def test_journal_stream_of_another_stream_keeps_the_timestamp(mount_factory: Callable[..., Mount]) -> None:
    # inherited from a service whose stderr was journald, but this process's stderr goes elsewhere
    mount = mount_factory(env={"JOURNAL_STREAM": "1:1"})
    wait_for(lambda: "mounted" in mount.log(), 30, "the mount's line")
    lines = _ours(mount.log())
    assert lines and all(STAMPED.match(line) for line in lines), mount.log()


@pytest.mark.skipif(logs.syslog_available(), reason="/dev/log exists here: the syslog socket is used")
def test_a_background_mount_without_a_syslog_socket_logs_to_a_file_in_the_cache_dir(tmp_path: Path) -> None:
    path = tmp_path / "bg"
    path.mkdir()
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "s3regfs", "mount", "--driver", "inmemory", "-o", f"cache_dir={cache}"]
    done = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL, check=False)
    fallback = cache / logs.FALLBACK_NAME
    try:
        assert done.returncode == 0, done.stderr
        assert f"no syslog socket (/dev/log): the mount logs to {fallback}" in done.stderr  # said before detaching
        wait_for(lambda: fallback.exists() and "mounted" in fallback.read_text(), 30, "the mount's line")
        first = fallback.read_text().splitlines()[0]
        assert "/dev/log" in first and str(fallback) in first, first
        try:
            open(path / "bad name", "w").close()  # noqa: SIM115 - refused, with a WARNING line
        except OSError:
            pass
        wait_for(lambda: "bad name" in fallback.read_text(), 30, "a line logged after detaching")
        assert all(STAMPED.match(line) for line in _ours(fallback.read_text()))
    finally:
        subprocess.run(["fusermount3", "-u", str(path)], capture_output=True, check=False)
        wait_for(lambda: mountpoint.mounted_at(str(path)) is None, 30, "the unmount")
        wait_for(lambda: "unmounted" in fallback.read_text() if fallback.exists() else True, 30,
                 "the daemon's last line")
