"""Credentials through the command line (issue 14): missing, half-set, refused, and where they came from.

Every command runs as a user runs it (``python -m s3regfs ...`` in a subprocess) against the local S3
server, in an environment with no credentials anywhere unless the test gives some: no ``AWS_*`` or
``REGISTRY_*`` variables, no shared files (``AWS_CONFIG_FILE``/``AWS_SHARED_CREDENTIALS_FILE`` point at
nothing) and no instance metadata (``AWS_EC2_METADATA_DISABLED``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from s3regfs import exitcodes

REPO = Path(__file__).resolve().parent.parent.parent
WHERE = (  # every place the one-line error names
    "storage.s3.accesskey/secretkey",
    "REGISTRY_STORAGE_S3_ACCESSKEY/SECRETKEY",
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    "AWS profile",
    "instance role",
)
COMMANDS = {
    "url": ["url", "/docker/registry/v2/blobs/sha256/ab/abcd/data"],
    "uploads": ["uploads", "list"],
    "mount -f": ["mount", "-f"],
    "mount": ["mount"],
}


def run(*args: str, env: dict[str, str] | None = None, tmp: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "S3REGFS_", "AWS_"))}
    clean.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
    )
    return subprocess.run(
        [sys.executable, "-m", "s3regfs", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        cwd=REPO,
        check=False,
    )


def options(server: Any, bucket: str, **extra: str) -> str:
    params = {
        "bucket": bucket,
        "regionendpoint": server.endpoint,
        "region": server.region,
        "forcepathstyle": "true",
        **extra,
    }
    return ",".join(f"{k}={v}" for k, v in params.items() if v)


def command(name: str, tmp: Path) -> list[str]:
    args = list(COMMANDS[name])
    if name.startswith("mount"):
        mountpoint = tmp / "mnt"
        mountpoint.mkdir(exist_ok=True)
        args += ["-o", f"cache_dir={tmp / 'cache'}", str(mountpoint)]
    return args


def one_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("s3regfs: error: ") and "; " in lines[0]
    assert "Traceback" not in done.stderr and "this is a bug" not in done.stderr
    return lines[0]


# -- item 1: no credentials anywhere, or refused ones ----------------------------------


@pytest.mark.parametrize("name", list(COMMANDS))
def test_no_credentials_anywhere_is_one_line_saying_where_they_are_looked_for(
    name: str, s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    done = run(*command(name, tmp_path), "-o", options(s3_server, s3_bucket), tmp=tmp_path)

    line = one_line(done, exitcodes.CREDENTIALS)
    assert "no S3 credentials" in line
    for place in WHERE:
        assert place in line, line
    assert done.stdout == ""


def test_check_without_credentials_fails_at_the_driver_with_the_credentials_exit_code(
    s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    done = run("check", "-o", options(s3_server, s3_bucket), tmp=tmp_path)

    assert done.returncode == exitcodes.CREDENTIALS, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("PASS  configuration")
    assert lines[1].startswith("FAIL  driver: no S3 credentials") and all(p in lines[1] for p in WHERE)
    assert [line.split(":")[0] for line in lines[2:]] == ["PASS  FUSE", "PASS  cache directory"]  # local steps
    assert "this is a bug" not in done.stdout + done.stderr


@pytest.mark.parametrize("wrong", ["secretkey", "accesskey"])
def test_refused_credentials_are_one_line_with_the_credentials_exit_code(
    wrong: str, s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    secret = "wrong-secret-value-123"
    given = {"accesskey": s3_server.access_key, "secretkey": s3_server.secret_key, wrong: secret}
    env = {f"REGISTRY_STORAGE_S3_{k.upper()}": v for k, v in given.items()}

    for name in ("uploads", "mount -f"):
        done = run(*command(name, tmp_path), "-o", options(s3_server, s3_bucket), env=env, tmp=tmp_path)
        line = one_line(done, exitcodes.CREDENTIALS)
        assert "S3 refused the credentials" in line and "(environment variable REGISTRY_STORAGE_S3_" in line
        assert secret not in done.stdout + done.stderr
        assert line.count("s3aws:") <= 1

    checked = run("check", "-o", options(s3_server, s3_bucket), env=env, tmp=tmp_path)
    assert checked.returncode == exitcodes.CREDENTIALS, checked.stdout + checked.stderr
    failed = [line for line in checked.stdout.splitlines() if line.startswith("FAIL")]
    assert failed and failed[0].startswith("FAIL  list /: ") and "S3 refused the credentials" in failed[0]
    assert secret not in checked.stdout + checked.stderr


def test_an_unreachable_endpoint_names_the_driver_once(
    s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    env = {
        "REGISTRY_STORAGE_S3_ACCESSKEY": s3_server.access_key,
        "REGISTRY_STORAGE_S3_SECRETKEY": s3_server.secret_key,
    }
    closed = "http://127.0.0.1:9"  # discard: nothing listens on loopback
    done = run(
        *command("mount -f", tmp_path),
        "-o",
        options(s3_server, s3_bucket, regionendpoint=closed, retrydeadline="1"),
        env=env,
        tmp=tmp_path,
    )

    assert done.returncode == exitcodes.STORAGE, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("s3regfs: error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr  # retry warnings come before it
    assert "s3aws: " in errors[0] and errors[0].count("s3aws:") == 1, errors[0]


# -- item 2: a half-set pair, and where the credentials came from ----------------------


@pytest.mark.parametrize("name", ["url", "check", "uploads", "mount -f"])
def test_an_access_key_without_a_secret_key_is_refused_naming_both(
    name: str, s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    env = {"REGISTRY_STORAGE_S3_ACCESSKEY": s3_server.access_key}
    args = ["check"] if name == "check" else command(name, tmp_path)
    done = run(*args, "-o", options(s3_server, s3_bucket), env=env, tmp=tmp_path)

    assert done.returncode == exitcodes.CREDENTIALS, done.stdout + done.stderr
    text = done.stdout if name == "check" else one_line(done, exitcodes.CREDENTIALS)
    set_by = "accesskey is set (environment variable REGISTRY_STORAGE_S3_ACCESSKEY)"
    assert f"{set_by} but secretkey is not" in text
    assert "REGISTRY_STORAGE_S3_SECRETKEY" in text
    assert s3_server.access_key not in done.stdout + done.stderr


def test_a_secret_key_in_the_config_file_without_an_access_key_names_the_file(
    s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "config.yml"
    storage = {"bucket": s3_bucket, "region": s3_server.region, "secretkey": s3_server.secret_key}
    config_file.write_text(yaml.safe_dump({"version": 0.1, "storage": {"s3": storage}}))
    config_file.chmod(0o600)

    done = run("url", "--config", str(config_file), "/docker/a", tmp=tmp_path)

    line = one_line(done, exitcodes.CREDENTIALS)
    assert f"secretkey is set (config file {config_file} (storage.s3.secretkey)) but accesskey is not" in line
    assert s3_server.secret_key not in done.stdout + done.stderr


def test_an_aws_access_key_id_without_its_secret_is_refused_naming_both(
    s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key}
    done = run("url", "/docker/a", "-o", options(s3_server, s3_bucket), env=env, tmp=tmp_path)

    line = one_line(done, exitcodes.CREDENTIALS)
    assert "AWS_ACCESS_KEY_ID is set (the environment) but AWS_SECRET_ACCESS_KEY is not" in line
    assert s3_server.access_key not in done.stderr


def _check_credentials_line(done: subprocess.CompletedProcess[str], *secrets: str) -> str:
    assert done.returncode == exitcodes.OK, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("PASS  credentials: ")]
    assert len(lines) == 1, done.stdout
    for secret in secrets:
        assert secret not in done.stdout + done.stderr
    return lines[0]


def test_check_prints_the_credential_source_never_the_secret(
    s3_server: Any, s3_bucket: str, tmp_path: Path
) -> None:
    opts = options(s3_server, s3_bucket)
    secrets = (s3_server.secret_key,)

    registry_env = {
        "REGISTRY_STORAGE_S3_ACCESSKEY": s3_server.access_key,
        "REGISTRY_STORAGE_S3_SECRETKEY": s3_server.secret_key,
    }
    line = _check_credentials_line(run("check", "-o", opts, env=registry_env, tmp=tmp_path), *secrets)
    assert "accesskey/secretkey parameters" in line and "REGISTRY_STORAGE_S3_ACCESSKEY" in line

    aws_env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    line = _check_credentials_line(run("check", "-o", opts, env=aws_env, tmp=tmp_path), *secrets)
    assert "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)" in line

    shared = tmp_path / "credentials"
    shared.write_text(
        f"[registry]\naws_access_key_id = {s3_server.access_key}\n"
        f"aws_secret_access_key = {s3_server.secret_key}\n"
    )
    profile_env = {"AWS_SHARED_CREDENTIALS_FILE": str(shared), "AWS_PROFILE": "registry"}
    line = _check_credentials_line(run("check", "-o", opts, env=profile_env, tmp=tmp_path), *secrets)
    assert "shared credentials file" in line and "profile registry" in line
