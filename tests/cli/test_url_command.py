"""``s3regfs url PATH``: the signed URL of a path, printed without mounting, and what it downloads.

The command runs as a user runs it (``python -m s3regfs url ...`` in a
subprocess); its URL is fetched from the fake CloudFront server (which checks
key pair id, signature and expiry and serves from the local S3 server) or,
without CloudFront, straight from the S3 server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from s3regfs.middleware.keys import generate_keypair
from s3regfs import exitcodes
from tests.support.cloudfront_server import CloudFrontServer, IPRangesServer, ip_ranges_document, s3_origin
from tests.support.downloads import download

REPO = Path(__file__).resolve().parent.parent.parent
KEY_ID = "K2JCJMDEHXQW5F"
BLOB = "/docker/registry/v2/blobs/sha256/ab/ab12cd34/data"
ROOT = "registry"


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    return generate_keypair(tmp_path_factory.mktemp("cfkeys"))


@pytest.fixture
def blob(s3_server: Any, s3_bucket: str) -> bytes:
    """A layer-sized object at ``BLOB`` under rootdirectory ``/registry``."""
    data = os.urandom(512 * 1024 + 7)
    s3_server.client().put_object(Bucket=s3_bucket, Key=ROOT + BLOB, Body=data)
    return data


@pytest.fixture
def cdn(s3_server: Any, s3_bucket: str, keypair: tuple[Path, bytes]) -> Iterator[CloudFrontServer]:
    with CloudFrontServer(s3_origin(s3_server.client(), s3_bucket), {KEY_ID: keypair[1]}) as server:
        yield server


def s3_options(server: Any, bucket: str) -> str:
    return (
        f"bucket={bucket},regionendpoint={server.endpoint},region={server.region},forcepathstyle=true,"
        f"rootdirectory=/{ROOT}"
    )


def credentials(server: Any) -> dict[str, str]:
    return {
        "REGISTRY_STORAGE_S3_ACCESSKEY": server.access_key,
        "REGISTRY_STORAGE_S3_SECRETKEY": server.secret_key,
    }


def run_url(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "S3REGFS_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-m", "s3regfs", "url", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        cwd=REPO,
        check=False,
    )


def printed_url(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    return lines[0]


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_expires(url: str, before: float, after: float, lifetime: int) -> None:
    expires = int(query(url)["Expires"])
    assert int(before + lifetime) <= expires <= int(after + lifetime), (expires, before, after, lifetime)


def test_o_options_give_a_cloudfront_url_that_downloads_the_file(
    s3_server: Any, s3_bucket: str, keypair: tuple[Path, bytes], cdn: CloudFrontServer, blob: bytes
) -> None:
    cloudfront = (
        f"cloudfront.baseurl={cdn.url},cloudfront.privatekey={keypair[0]},cloudfront.keypairid={KEY_ID}"
    )
    before = time.time()
    done = run_url(
        BLOB,
        "--duration",
        "5m",
        "-o",
        s3_options(s3_server, s3_bucket),
        "-o",
        cloudfront,
        env=credentials(s3_server),
    )
    after = time.time()
    url = printed_url(done)

    assert url.startswith(f"{cdn.url}{ROOT}{BLOB}?Expires=")
    assert list(query(url)) == ["Expires", "Signature", "Key-Pair-Id"]
    assert query(url)["Key-Pair-Id"] == KEY_ID
    assert_expires(url, before, after, 5 * 60)
    curl = subprocess.run(["curl", "-sf", url], capture_output=True, timeout=60, check=False)
    assert curl.returncode == 0 and sha256(curl.stdout) == sha256(blob)
    assert cdn.requests[-1].status == 200


def test_a_registry_config_file_gives_the_same_url_and_duration_changes_expires(
    s3_server: Any,
    s3_bucket: str,
    keypair: tuple[Path, bytes],
    cdn: CloudFrontServer,
    blob: bytes,
    tmp_path: Path,
) -> None:
    registry_config = {
        "version": 0.1,
        "storage": {
            "s3": {
                "accesskey": s3_server.access_key,
                "secretkey": s3_server.secret_key,
                "region": s3_server.region,
                "regionendpoint": s3_server.endpoint,
                "forcepathstyle": True,
                "bucket": s3_bucket,
                "rootdirectory": f"/{ROOT}",
            },
            "redirect": {"disable": False},
        },
        "middleware": {
            "storage": [
                {
                    "name": "cloudfront",
                    "options": {
                        "baseurl": cdn.url,
                        "privatekey": str(keypair[0]),
                        "keypairid": KEY_ID,
                        "duration": "3000s",
                    },
                }
            ]
        },
        "http": {"addr": ":5000"},
    }
    config_file = tmp_path / "config.yml"
    config_file.write_text(yaml.safe_dump(registry_config))
    config_file.chmod(0o600)

    runs = {}
    for lifetime, extra in ((3000, ()), (5400, ("--duration", "1h30m"))):
        before = time.time()
        url = printed_url(run_url("--config", str(config_file), *extra, BLOB))
        assert_expires(url, before, time.time(), lifetime)
        runs[lifetime] = url

    assert int(query(runs[5400])["Expires"]) - int(query(runs[3000])["Expires"]) >= 2400 - 5
    for url in runs.values():
        assert url.startswith(f"{cdn.url}{ROOT}{BLOB}?Expires=") and query(url)["Key-Pair-Id"] == KEY_ID
        status, body = download(url)
        assert status == 200 and sha256(body) == sha256(blob)


def test_without_cloudfront_it_prints_a_working_s3_presigned_url(
    s3_server: Any, s3_bucket: str, blob: bytes
) -> None:
    options = s3_options(s3_server, s3_bucket)
    short = printed_url(run_url(BLOB, "--duration", "5m", "-o", options, env=credentials(s3_server)))
    default = printed_url(run_url(BLOB, "-o", options, env=credentials(s3_server)))

    for url, lifetime in ((short, "300"), (default, "1200")):
        assert url.startswith(f"{s3_server.endpoint}/{s3_bucket}/{ROOT}{BLOB}?")
        params = query(url)
        assert params["X-Amz-Expires"] == lifetime and params["X-Amz-Signature"]
        assert "Key-Pair-Id" not in params
        status, body = download(url)
        assert status == 200 and sha256(body) == sha256(blob)


@pytest.mark.parametrize("problem", ["missing", "group-readable"])
def test_a_bad_key_file_is_one_line_naming_privatekey(problem: str, tmp_path: Path) -> None:
    if problem == "missing":
        key_file = tmp_path / "nonexistent.pem"
    else:
        key_file = generate_keypair(tmp_path)[0]
        key_file.chmod(0o640)
    options = (
        "bucket=registry,regionendpoint=http://127.0.0.1:9,forcepathstyle=true,"
        f"cloudfront.baseurl=https://d111111abcdef8.cloudfront.net,cloudfront.privatekey={key_file},"
        f"cloudfront.keypairid={KEY_ID}"
    )
    done = run_url(BLOB, "--duration", "5m", "-o", options)

    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("s3regfs: error: ") and "privatekey" in lines[0] and str(key_file) in lines[0]
    assert ("no such file" in lines[0]) if problem == "missing" else ("chmod 600" in lines[0])


def one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and done.stdout == "", done.stdout + done.stderr
    assert lines[0].startswith("s3regfs: error: ") and "; " in lines[0]
    return lines[0]


def test_a_presigned_url_longer_than_7_days_is_refused_cloudfront_keeps_its_own_limit(
    s3_server: Any, s3_bucket: str, keypair: tuple[Path, bytes], cdn: CloudFrontServer, blob: bytes
) -> None:
    options = s3_options(s3_server, s3_bucket)

    for too_long in ("720h", "168h1s"):
        line = one_line_error(
            run_url(BLOB, "--duration", too_long, "-o", options, env=credentials(s3_server)), exitcodes.USAGE
        )
        assert f"--duration {too_long}: " in line and "7 days (168h)" in line and "cloudfront" in line

    week = printed_url(run_url(BLOB, "--duration", "168h", "-o", options, env=credentials(s3_server)))
    assert query(week)["X-Amz-Expires"] == "604800"
    status, body = download(week)
    assert status == 200 and sha256(body) == sha256(blob)

    cloudfront = (
        f"cloudfront.baseurl={cdn.url},cloudfront.privatekey={keypair[0]},cloudfront.keypairid={KEY_ID}"
    )
    before = time.time()
    month = printed_url(
        run_url(BLOB, "--duration", "720h", "-o", options, "-o", cloudfront, env=credentials(s3_server))
    )
    assert_expires(month, before, time.time(), 720 * 3600)
    status, body = download(month)
    assert status == 200 and sha256(body) == sha256(blob)


def test_awsregion_takes_colon_separated_regions_in_o_options(
    s3_server: Any, s3_bucket: str, keypair: tuple[Path, bytes], cdn: CloudFrontServer
) -> None:
    ranges = ip_ranges_document(
        [("10.1.0.0/16", "us-east-1"), ("10.2.0.0/16", "eu-west-1"), ("10.3.0.0/16", "ap-south-1")]
    )
    with IPRangesServer(ranges) as server:
        cloudfront = (
            f"cloudfront.baseurl={cdn.url},cloudfront.privatekey={keypair[0]},cloudfront.keypairid={KEY_ID},"
            f"cloudfront.ipfilteredby=awsregion,cloudfront.awsregion=us-east-1:EU-west-1,"
            f"cloudfront.iprangesurl={server.url}"
        )
        done = run_url(
            BLOB, "--log-level", "debug", "--client-ip", "10.3.0.1", "-o", s3_options(s3_server, s3_bucket),
            "-o", cloudfront, env=credentials(s3_server),
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{cdn.url}{ROOT}{BLOB}?Expires=")
    assert f"AWS IP ranges updated from {server.url}: 2 IPv4" in done.stderr, done.stderr


def test_client_ip_applies_ipfilteredby_and_the_ranges_are_fetched_only_for_it(
    s3_server: Any, s3_bucket: str, keypair: tuple[Path, bytes], cdn: CloudFrontServer, blob: bytes
) -> None:
    ranges = ip_ranges_document([("10.1.0.0/16", "us-east-1"), ("10.3.0.0/16", "ap-south-1")])
    with IPRangesServer(ranges) as server:
        cloudfront = (
            f"cloudfront.baseurl={cdn.url},cloudfront.privatekey={keypair[0]},cloudfront.keypairid={KEY_ID},"
            f"cloudfront.ipfilteredby=awsregion,cloudfront.awsregion=us-east-1,cloudfront.iprangesurl={server.url}"
        )
        options = ("-o", s3_options(s3_server, s3_bucket), "-o", cloudfront)

        no_client = printed_url(run_url(BLOB, *options, env=credentials(s3_server)))
        assert no_client.startswith(f"{cdn.url}{ROOT}{BLOB}?Expires=")
        assert server.hits == 0  # no client address: the ranges are not needed, so not fetched

        inside = printed_url(run_url(BLOB, "--client-ip", "10.1.2.3", *options, env=credentials(s3_server)))
        assert server.hits == 1
        assert inside.startswith(f"{s3_server.endpoint}/{s3_bucket}/{ROOT}{BLOB}?"), inside  # inside AWS: S3
        assert "X-Amz-Signature" in query(inside)
        status, body = download(inside)
        assert status == 200 and sha256(body) == sha256(blob)

        for outside in ("10.3.0.1", "[2001:db8::1]:443", "192.0.2.7:5000"):
            url = printed_url(run_url(BLOB, "--client-ip", outside, *options, env=credentials(s3_server)))
            assert url.startswith(f"{cdn.url}{ROOT}{BLOB}?Expires="), (outside, url)
        assert server.hits == 4

        line = one_line_error(
            run_url(BLOB, "--client-ip", "registry.example", *options, env=credentials(s3_server)),
            exitcodes.USAGE,
        )
        assert "--client-ip registry.example: not an IP address" in line
        assert server.hits == 4


def test_upper_case_driver_paths_are_valid_and_the_error_says_which_characters_are(
    s3_server: Any, s3_bucket: str
) -> None:
    options = s3_options(s3_server, s3_bucket)
    upper = "/docker/registry/v2/repositories/Team/App/_layers/sha256/AB/link"
    url = printed_url(run_url(upper, "-o", options, env=credentials(s3_server)))
    assert url.startswith(f"{s3_server.endpoint}/{s3_bucket}/{ROOT}{upper}?")

    line = one_line_error(run_url("/Team/a b", "-o", options, env=credentials(s3_server)), exitcodes.USAGE)
    assert "/Team/a b: not a driver path" in line and "lower-case" not in line
    assert "letters, digits" in line
