"""The mount option ``url_duration`` (lifetime of the ``user.s3regfs.url`` xattr) and S3's 7-day presign limit.

Mirrors ``s3regfs url --duration`` (tests/cli/test_url_command.py): over 168h with S3 presigned URLs (no
``cloudfront`` middleware) the mount is refused at configuration time with one line; CloudFront keeps its own
limit. Real mounts of a SeaweedFS bucket; URLs read with ``getfattr`` as a user reads them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s3regfs import exitcodes, mountpoint
from s3regfs.middleware.keys import generate_keypair
from tests.support import mounts
from tests.support.mounts import REPO, Mount, run_tool

BLOB = "docker/registry/v2/blobs/sha256/ab/ab12/data"


def url_of(path: Path) -> str:
    return run_tool(["getfattr", "--absolute-names", "--only-values", "-n", "user.s3regfs.url", str(path)]).stdout


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def mount_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "s3regfs", "mount", "-f", *args], capture_output=True, text=True,
                          timeout=30, env=env, cwd=REPO, stdin=subprocess.DEVNULL, check=False)


def test_url_duration_over_7_days_with_s3_presigning_is_refused_before_mounting(
    s3_driver_params: dict[str, Any], tmp_path: Path
) -> None:
    options, env = mounts.s3_options(s3_driver_params)
    point = tmp_path / "mnt"
    point.mkdir()
    for too_long in ("720h", "168h1s"):
        try:
            done = mount_cli("-o", mounts.format_options({**options, "url_duration": too_long}), str(point),
                             env={**os.environ, **env})
        finally:  # a mount that was not refused must not be left behind
            if mountpoint.mounted_at(str(point)) is not None:
                mountpoint.unmount(str(point), lazy=True)
        assert done.returncode == exitcodes.CONFIG, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("s3regfs: error: -o url_duration: url_duration="), lines
        assert f"url_duration={too_long}: " in lines[0] and "7 days (168h)" in lines[0] and "cloudfront" in lines[0]
    assert mountpoint.mounted_at(str(point)) is None


def test_168h_presigns_for_a_week_and_cloudfront_takes_longer(
    mount_factory: Callable[..., Mount], s3_server: Any, s3_bucket: str, s3_driver_params: dict[str, Any],
    tmp_path: Path,
) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key=BLOB, Body=b"layer")
    options, env = mounts.s3_options(s3_driver_params)
    week = mount_factory("s3", options={**options, "url_duration": "168h", "ro": True}, env=env)
    assert query(url_of(week.path / BLOB))["X-Amz-Expires"] == "604800"

    key_path = generate_keypair(tmp_path)[0]
    cloudfront = {"cloudfront.baseurl": "https://d111111abcdef8.cloudfront.net/",
                  "cloudfront.privatekey": str(key_path), "cloudfront.keypairid": "K2JCJMDEHXQW5F"}
    month = mount_factory("s3", options={**options, **cloudfront, "url_duration": "720h", "ro": True}, env=env)
    before = time.time()
    url = url_of(month.path / BLOB)
    assert url.startswith(f"https://d111111abcdef8.cloudfront.net/{BLOB}?Expires=")
    assert int(before + 720 * 3600) <= int(query(url)["Expires"]) <= int(time.time() + 720 * 3600)
