"""``s3regfs check``: the write probe is opt-in (``--write``), and the local side of a mount is checked too.

Run as a user runs it (a subprocess) against the real S3 server behind the counting proxy. The non-root
``allow_other`` case cannot be run as another user here (the interpreter lives under /root, mode 0700), so it
runs the same command in-process with the effective uid and ``/etc/fuse.conf`` replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from s3regfs import check, cli, exitcodes
from tests.support.s3proxy import S3Proxy, WRITE_OPS

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "S3REGFS_", "AWS_"))}
    return subprocess.run([sys.executable, "-m", "s3regfs", "check", *args], capture_output=True, text=True,
                          timeout=120, env={**clean, **env}, cwd=REPO, check=False)


def lines_by_step(stdout: str) -> dict[str, str]:
    return {line.split(":", 1)[0][6:]: line for line in stdout.splitlines()}


@pytest.fixture
def proxied(s3_server: Any, s3_bucket: str, tmp_path: Path) -> Any:
    with S3Proxy(s3_server.endpoint) as proxy:
        options = (f"bucket={s3_bucket},regionendpoint={proxy.endpoint},forcepathstyle=true,"
                   f"cache_dir={tmp_path / 'cache'}")
        env = {"REGISTRY_STORAGE_S3_ACCESSKEY": s3_server.access_key,
               "REGISTRY_STORAGE_S3_SECRETKEY": s3_server.secret_key}
        yield proxy, options, env


def test_check_writes_nothing_unless_asked_and_checks_fuse_and_the_cache_directory(proxied: Any,
                                                                                 tmp_path: Path) -> None:
    proxy, options, env = proxied
    done = run("-o", options, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = lines_by_step(done.stdout)
    assert steps["write probe"] == ("SKIP  write probe: not asked; --write writes, reads back and deletes a "
                                    "64-byte object at the root")
    assert not any(proxy.counts().get(op) for op in WRITE_OPS), proxy.counts()
    assert not proxy.counts().get("DeleteObjects") and not proxy.counts().get("DeleteObject")
    assert steps["FUSE"].startswith("PASS  FUSE: /dev/fuse opens read-write")
    assert steps["cache directory"] == (f"PASS  cache directory: {tmp_path / 'cache'} does not exist yet; "
                                        f"it will be created in {tmp_path}")
    assert "allow_other" not in steps  # not asked for: nothing to check

    written = run("--write", "-o", f"{options},allow_other", env=env)
    assert written.returncode == 0, written.stdout + written.stderr
    steps = lines_by_step(written.stdout)
    assert any(step.startswith("write, read and delete /s3regfs-check-") for step in steps), written.stdout
    assert proxy.counts().get("PutObject") == 1 and proxy.counts().get("DeleteObjects") == 1
    assert steps["allow_other"] == "PASS  allow_other: root may use allow_other without user_allow_other"


def test_an_unusable_cache_directory_fails_the_check(proxied: Any, tmp_path: Path) -> None:
    proxy, options, env = proxied
    (tmp_path / "a-file").write_text("not a directory")
    done = run("-o", f"{options},cache_dir={tmp_path / 'a-file' / 'cache'}", env=env)
    assert done.returncode == exitcodes.CHECK_FAILED, done.stdout
    assert lines_by_step(done.stdout)["cache directory"] == (
        f"FAIL  cache directory: cache_dir {tmp_path / 'a-file' / 'cache'}: {tmp_path / 'a-file'} is not a "
        "directory; choose another cache_dir"
    )


@pytest.mark.parametrize("configured", [False, True])
def test_allow_other_by_a_non_root_user_needs_user_allow_other(
    configured: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fuse_conf = tmp_path / "fuse.conf"
    fuse_conf.write_text("# mount_max = 1000\n" + ("user_allow_other\n" if configured else "#user_allow_other\n"))
    monkeypatch.setattr(check, "FUSE_CONF", str(fuse_conf))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code = cli.main(["check", "--driver", "inmemory", "-o", f"allow_other,cache_dir={tmp_path / 'cache'}"])
    line = lines_by_step(capsys.readouterr().out)["allow_other"]
    if configured:
        assert code == exitcodes.OK and line == f"PASS  allow_other: user_allow_other is set in {fuse_conf}"
    else:
        assert code == exitcodes.CHECK_FAILED
        assert line == (f"FAIL  allow_other: allow_other is asked by a non-root user but {fuse_conf} has no "
                        f"user_allow_other; add the line user_allow_other to {fuse_conf} (as root), or drop "
                        "allow_other")
