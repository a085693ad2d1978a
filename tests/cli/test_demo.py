"""``s3regfs demo``: the README's first command, non-interactively (--check) and stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3regfs.mountpoint import mounted_at

pytestmark = [pytest.mark.fuse, pytest.mark.s3]


def demo(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "S3REGFS_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "s3regfs", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def workdir_of(output: str) -> Path:
    match = re.search(r"config\s+(\S+)/config\.yml", output)
    assert match, output
    return Path(match.group(1))


def test_demo_check_verifies_what_it_shows_and_cleans_up(tmp_path: Path) -> None:
    mountpoint = tmp_path / "registry"
    proc = demo("--check", str(mountpoint))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert f"mounted at {mountpoint}" in out
    assert re.search(
        r"image\s+demo/hello:latest \(4 blobs\), pushed by (docker-registry \+ skopeo|the s3 driver)", out
    )
    for hint in ("ls ", "find ", "getfattr -n user.s3regfs.url ", "s3regfs url --config "):
        assert hint in out
    results = [line for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert [line.split(":")[0] for line in results] == [
        "PASS  tag",
        "PASS  blobs",
        "PASS  find",
        "PASS  getfattr -n user.s3regfs.url",
        "PASS  s3regfs url",
    ]
    assert "signature verified" in results[3] and "signature verified" in results[4]
    assert "Traceback" not in err
    assert mounted_at(str(mountpoint)) is None
    assert not mountpoint.exists()  # it created the directory, so it removed it
    assert not workdir_of(out).exists()


def test_demo_stops_and_cleans_up_on_ctrl_c() -> None:
    proc = demo()
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while not any(line.startswith("Press Ctrl-C") for line in lines):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines) + (
            proc.stderr.read() if proc.stderr else ""
        )
        lines.append(proc.stdout.readline())
    output = "".join(lines)
    mountpoint = Path(re.search(r"mounted at (\S+)", output).group(1))  # type: ignore[union-attr]
    assert (
        (mountpoint / "docker/registry/v2/repositories/demo/hello/_manifests/tags/latest/current/link")
        .read_text()
        .startswith("sha256:")
    )
    os.killpg(proc.pid, signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest + err
    assert "stopping: unmounting" in rest
    assert mounted_at(str(mountpoint)) is None
    assert not workdir_of(output).exists()
