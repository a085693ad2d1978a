"""Retries as an operator sets them: ``maxattempts``/``retrydeadline`` > ``AWS_MAX_ATTEMPTS`` > the AWS profile > 4.

``s3regfs uploads list`` runs as a user runs it, against the real S3 server behind the fault-injecting proxy,
which answers every ListMultipartUploads with ``500 InternalError`` (a transient error, retried) and counts
the attempts that reach it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3regfs import exitcodes
from tests.support.s3proxy import INTERNAL_ERROR, Rule, S3Proxy

REPO = Path(__file__).resolve().parents[2]
OP = "ListMultipartUploads"


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[S3Proxy]:
    with S3Proxy(s3_server.endpoint) as p:
        p.add_rule(Rule(INTERNAL_ERROR, op=OP))
        yield p


def uploads_list(
    proxy: S3Proxy, server: Any, bucket: str, tmp_path: Path, *options: str, env: dict[str, str] | None = None
) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``s3regfs uploads list`` through the proxy; (attempts that reached it, the run)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "S3REGFS_", "AWS_"))}
    environment = {
        **clean,
        "HOME": str(tmp_path),  # no ~/.aws of the machine
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "REGISTRY_STORAGE_S3_ACCESSKEY": server.access_key,
        "REGISTRY_STORAGE_S3_SECRETKEY": server.secret_key,
        **(env or {}),
    }
    o = f"bucket={bucket},regionendpoint={proxy.endpoint},region={server.region},forcepathstyle=true"
    before = proxy.counts().get(OP, 0)
    done = subprocess.run(
        [sys.executable, "-m", "s3regfs", "uploads", "list", "-o", o, *options],
        capture_output=True, text=True, timeout=120, env=environment, cwd=REPO, check=False,
    )
    return proxy.counts().get(OP, 0) - before, done


def failed_in_one_line(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == exitcodes.STORAGE, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if " WARNING s3regfs.driver.retry: " not in line]
    assert len(errors) == 1 and errors[0].startswith("s3regfs: error: ") and "InternalError" in errors[0], errors
    assert "Traceback" not in done.stderr


def test_attempts_default_to_4(proxy: S3Proxy, s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    attempts, done = uploads_list(proxy, s3_server, s3_bucket, tmp_path)
    failed_in_one_line(done)
    assert attempts == 4


def test_aws_max_attempts_and_the_aws_config_file_are_honoured(
    proxy: S3Proxy, s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    attempts, done = uploads_list(proxy, s3_server, s3_bucket, tmp_path, env={"AWS_MAX_ATTEMPTS": "2"})
    failed_in_one_line(done)
    assert attempts == 2

    (tmp_path / "aws-config").write_text("[default]\nmax_attempts = 3\n\n[profile ops]\nmax_attempts = 5\n")
    attempts, done = uploads_list(proxy, s3_server, s3_bucket, tmp_path)
    failed_in_one_line(done)
    assert attempts == 3

    attempts, done = uploads_list(proxy, s3_server, s3_bucket, tmp_path, "-o", "profile=ops")
    failed_in_one_line(done)
    assert attempts == 5

    attempts, _ = uploads_list(proxy, s3_server, s3_bucket, tmp_path, env={"AWS_MAX_ATTEMPTS": "2"})
    assert attempts == 2  # the environment wins over the config file, as in the AWS SDKs


def test_the_maxattempts_parameter_wins_over_the_aws_settings(
    proxy: S3Proxy, s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "aws-config").write_text("[default]\nmax_attempts = 3\n")
    attempts, done = uploads_list(
        proxy, s3_server, s3_bucket, tmp_path, "-o", "maxattempts=6", env={"AWS_MAX_ATTEMPTS": "2"}
    )
    failed_in_one_line(done)
    assert attempts == 6

    attempts, done = uploads_list(proxy, s3_server, s3_bucket, tmp_path, "-o", "maxattempts=1")
    failed_in_one_line(done)
    assert attempts == 1


def test_retrydeadline_ends_the_retries_before_the_attempts_do(
    proxy: S3Proxy, s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    start = time.monotonic()
    attempts, done = uploads_list(proxy, s3_server, s3_bucket, tmp_path, "-o", "maxattempts=100,retrydeadline=1")
    failed_in_one_line(done)
    assert 2 <= attempts < 100
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        (("-o", "maxattempts=101"), {}, "-o maxattempts: the maxattempts 101 parameter should be a number between 0 "
                                        "and 100 (inclusive); correct or remove the value"),
        ((), {"AWS_MAX_ATTEMPTS": "many"}, "AWS_MAX_ATTEMPTS cannot be read"),
    ],
)
def test_a_bad_attempt_count_is_one_line(
    proxy: S3Proxy, s3_server: Any, s3_bucket: str, tmp_path: Path, options: tuple[str, ...],
    env: dict[str, str], expected: str,
) -> None:
    attempts, done = uploads_list(proxy, s3_server, s3_bucket, tmp_path, *options, env=env)
    assert done.returncode == exitcodes.CONFIG, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert attempts == 0
