"""The s3regfs command: help, version, exit codes, one-line errors, url, check and uploads on the real S3 server."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from s3regfs import __version__, cli, exitcodes
from s3regfs.driver import factory
from s3regfs.middleware.cloudfront import canned_policy, cloudfront_b64decode
from s3regfs.middleware.keys import generate_keypair

SECRET_PARAMS = ("accesskey", "secretkey")


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "S3REGFS_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "s3regfs", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def split_params(params: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(-o string without secrets, environment with the secrets), the way an operator should pass them."""
    option = ",".join(f"{k}={v}" for k, v in params.items() if k not in SECRET_PARAMS)
    env = {f"REGISTRY_STORAGE_S3_{k.upper()}": f"'{params[k]}'" for k in SECRET_PARAMS}
    return option, env


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("s3regfs: error: ") and "; " in lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# -- help, version, usage --------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["mount"], ["url"], ["check"], ["uploads"], ["demo"]])
def test_help_of_every_command_has_examples(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*command, "--help"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert out.startswith("usage: s3regfs")
    assert ("examples:" in out) or ("commands:" in out)
    assert "s3regfs " + (command[0] if command else "mount") in out.split("usage:", 1)[1]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == exitcodes.OK
    assert capsys.readouterr().out.strip() == f"s3regfs {__version__}"


def test_help_works_without_importing_libfuse() -> None:
    code = "import sys, s3regfs.cli as c; c.main(['mount', '--help']); print('mfusepy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().endswith("False")


@pytest.mark.parametrize(
    "args, fragments",
    [
        ([], ["the following arguments are required: COMMAND", "see 's3regfs --help'"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
        (["mount"], ["the following arguments are required: MOUNTPOINT", "see 's3regfs mount --help'"]),
        (["mount", "--driver", "ftp", "/mnt"], ["argument --driver: invalid choice: 'ftp'"]),
        (
            ["uploads", "list", "--older-than", "3 days", "--driver", "inmemory"],
            ["--older-than 3 days: time: unknown unit"],
        ),
        (["url", "--driver", "inmemory", "/Bad Path"], ["/Bad Path: not a driver path"]),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run(*args), exitcodes.USAGE, *fragments)


def test_configuration_errors_are_one_line_with_exit_code_3(tmp_path: Path) -> None:
    assert_one_line_error(
        run("mount", "-f", "--driver", "inmemory", "-o", "file_mode=9", str(tmp_path)),
        exitcodes.CONFIG,
        "-o file_mode: file_mode=9: not an octal mode",
    )
    bad = tmp_path / "config.yml"
    bad.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n")
    checked = run("check", "--config", str(bad))  # check reports it as its first step, on stdout
    assert checked.returncode == exitcodes.CONFIG
    assert checked.stdout.startswith(
        f"FAIL  configuration: config file {bad} (storage.filesystem): the filesystem "
        "storage driver cannot be mounted"
    )
    assert_one_line_error(
        run("url", "--config", str(tmp_path / "missing.yml"), "/a"),
        exitcodes.CONFIG,
        "No such file or directory",
    )


def test_mount_point_errors_are_one_line_with_exit_code_5(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert_one_line_error(
        run("mount", "-f", "--driver", "inmemory", str(missing)),
        exitcodes.MOUNT,
        f"mount point {missing} does not exist",
        "mkdir -p",
    )
    # in the background (mount(8) style) the child's error reaches the caller the same way
    assert_one_line_error(
        run("mount", "--driver", "inmemory", str(missing)),
        exitcodes.MOUNT,
        f"mount point {missing} does not exist",
    )


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run("mount", "-f", "--debug", "--driver", "inmemory", "-o", "uid=nobody-such", str(tmp_path))
    assert result.returncode == exitcodes.CONFIG
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("s3regfs: error: -o uid: uid=nobody-such")


def test_inmemory_has_no_urls_and_no_uploads() -> None:
    assert_one_line_error(run("url", "--driver", "inmemory", "/a/b"), exitcodes.CONFIG, "hands out no URLs")
    assert_one_line_error(
        run("uploads", "list", "--driver", "inmemory"), exitcodes.CONFIG, "has no multipart uploads"
    )


# -- url -------------------------------------------------------------------------------


def test_url_prints_a_presigned_url_that_fetches_the_object(s3_driver_params: dict[str, Any]) -> None:
    driver = factory.create("s3", s3_driver_params)
    driver.put_content("/docker/registry/v2/blobs/sha256/ab/abcd/data", b"blob content")
    option, env = split_params(s3_driver_params)
    result = run(
        "url", "-o", option, "--duration", "5m", "/docker/registry/v2/blobs/sha256/ab/abcd/data", env=env
    )
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith(
        f"{s3_driver_params['regionendpoint']}/{s3_driver_params['bucket']}/docker/registry/v2/"
    )
    assert "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"blob content"
    for key in SECRET_PARAMS:
        assert s3_driver_params[key] not in result.stdout + result.stderr or key == "accesskey"
    assert s3_driver_params["secretkey"] not in result.stdout + result.stderr


def test_url_with_cloudfront_is_signed_with_the_key(s3_driver_params: dict[str, Any], tmp_path: Path) -> None:
    key_path, public_pem = generate_keypair(tmp_path)
    option, env = split_params(s3_driver_params)
    cloudfront = f"cloudfront.baseurl=https://d1.example.net/,cloudfront.keypairid=KTEST,cloudfront.privatekey={key_path}"
    result = run(
        "url", "-o", option, "-o", cloudfront, "/docker/registry/v2/blobs/sha256/ab/abcd/data", env=env
    )
    assert result.returncode == 0, result.stderr
    base, _, query = result.stdout.strip().partition("?")
    assert base == "https://d1.example.net/docker/registry/v2/blobs/sha256/ab/abcd/data"
    fields = dict(urllib.parse.parse_qsl(query))
    assert fields["Key-Pair-Id"] == "KTEST"
    public = serialization.load_pem_public_key(public_pem)
    public.verify(
        cloudfront_b64decode(fields["Signature"]),
        canned_policy(base, int(fields["Expires"])),  # type: ignore[union-attr,call-arg]
        padding.PKCS1v15(),
        hashes.SHA1(),
    )  # type: ignore[arg-type]


def test_url_with_a_bad_cloudfront_key_names_the_option(
    s3_driver_params: dict[str, Any], tmp_path: Path
) -> None:
    option, env = split_params(s3_driver_params)
    result = run(
        "url",
        "-o",
        option,
        "-o",
        f"cloudfront.baseurl=https://d1/,cloudfront.keypairid=K,cloudfront.privatekey={tmp_path}/nope.pem",
        "/a",
        env=env,
    )
    assert_one_line_error(result, exitcodes.CONFIG, "-o cloudfront.privatekey:", "nope.pem")


# -- check -----------------------------------------------------------------------------


def test_check_passes_every_step_on_a_working_bucket(s3_driver_params: dict[str, Any]) -> None:
    option, env = split_params(s3_driver_params)
    result = run("check", "--write", "-o", option, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines][:4] == [
        "PASS  configuration",
        "PASS  driver",
        "PASS  credentials",
        "PASS  list /",
    ]
    assert lines[2] == (
        "PASS  credentials: the accesskey/secretkey parameters (environment variable "
        "REGISTRY_STORAGE_S3_ACCESSKEY, environment variable REGISTRY_STORAGE_S3_SECRETKEY)"
    )
    assert lines[4].startswith("PASS  write, read and delete /s3regfs-check-")
    assert lines[5].startswith("PASS  presigned URL: http")
    assert lines[6].startswith("PASS  FUSE: /dev/fuse") and lines[7].startswith("PASS  cache directory: ")
    assert len(lines) == 8
    driver = factory.create("s3", s3_driver_params)
    assert driver.list_info("/") == [] or all(
        not i.path.startswith("/s3regfs-check") for i in driver.list_info("/")
    )


def test_check_read_only_skips_the_write_probe(s3_driver_params: dict[str, Any]) -> None:
    option, env = split_params(s3_driver_params)
    result = run("check", "--write", "-o", option + ",ro", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIP  write probe: read-only (ro): nothing is written" in result.stdout


def test_check_with_a_wrong_secret_fails_and_never_prints_it(s3_driver_params: dict[str, Any]) -> None:
    params = dict(s3_driver_params, secretkey="wrong-secret-value-123")
    option, env = split_params(params)
    result = run("check", "-o", option, env=env)
    assert result.returncode == exitcodes.CREDENTIALS
    assert "FAIL  list /: S3 refused the credentials" in result.stdout
    assert "wrong-secret-value-123" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# -- uploads ---------------------------------------------------------------------------


def test_uploads_list_and_abort(s3_server: Any, s3_driver_params: dict[str, Any]) -> None:
    bucket = s3_driver_params["bucket"]
    client = s3_server.client()
    keys = [
        "registry/docker/registry/v2/repositories/app/_uploads/u1/data",
        "registry/docker/registry/v2/repositories/other/_uploads/u2/data",
    ]
    ids = [client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"] for key in keys]
    option, env = split_params(dict(s3_driver_params, rootdirectory="/registry"))

    listed = run("uploads", "list", "-o", option, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "/docker/registry/v2/repositories/app/_uploads/u1/data" in listed.stdout
    assert "/docker/registry/v2/repositories/other/_uploads/u2/data" in listed.stdout
    assert "2 in-progress upload(s)" in listed.stdout and all(i in listed.stdout for i in ids)

    under = run("uploads", "list", "/docker/registry/v2/repositories/app", "-o", option, env=env)
    assert "u1/data" in under.stdout and "u2/data" not in under.stdout
    young = run("uploads", "list", "--older-than", "1h", "-o", option, env=env)
    assert young.stdout.strip() == "no in-progress uploads"

    kept = run("uploads", "abort", "-o", option, env=env)  # default: older than 168h
    assert kept.returncode == 0 and "aborted 0 upload(s)" in kept.stdout
    dry = run("uploads", "abort", "--older-than", "0s", "--dry-run", "-o", option, env=env)
    assert dry.stdout.count("would abort  ") == 2 and "would abort 2 upload(s)" in dry.stdout
    assert len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 2

    aborted = run(
        "uploads",
        "abort",
        "--older-than",
        "0s",
        "/docker/registry/v2/repositories/app",
        "-o",
        option,
        env=env,
    )
    assert aborted.returncode == 0 and "aborted 1 upload(s)" in aborted.stdout
    left = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["Key"] for u in left] == [keys[1]]
    assert run("uploads", "abort", "--older-than", "0s", "-o", option, env=env).returncode == 0
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
