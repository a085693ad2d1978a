"""``-o profile=NAME`` (an AWS shared-config profile) and ``-o cabundle=FILE`` (the CA of a store's own TLS).

Run as a user runs them (``s3regfs check``/``url`` in a subprocess) against the real S3 server; for TLS the
server sits behind a TLS relay whose certificate is signed by a throwaway CA (tests/support/tlsrelay.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3regfs import exitcodes
from tests.support.tlsrelay import TLSRelay, make_ca

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "S3REGFS_", "AWS_"))}
    environment = {
        **clean, "HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"), **(env or {}),
    }
    return subprocess.run([sys.executable, "-m", "s3regfs", *args], capture_output=True, text=True, timeout=120,
                          env=environment, cwd=REPO, check=False)


def keys(server: Any) -> dict[str, str]:
    return {"REGISTRY_STORAGE_S3_ACCESSKEY": server.access_key, "REGISTRY_STORAGE_S3_SECRETKEY": server.secret_key}


def one_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("s3regfs: error: ") and done.stdout == "", lines
    return lines[0]


# -- cabundle ----------------------------------------------------------------------------------


@pytest.fixture
def tls(s3_server: Any, tmp_path: Path) -> Iterator[tuple[TLSRelay, Path]]:
    ca, cert, key = make_ca(tmp_path)
    with TLSRelay(s3_server.endpoint, cert, key) as relay:
        yield relay, ca


def test_cabundle_verifies_a_store_with_its_own_tls(
    s3_server: Any, s3_bucket: str, tls: tuple[TLSRelay, Path], tmp_path: Path
) -> None:
    relay, ca = tls
    o = f"bucket={s3_bucket},regionendpoint={relay.endpoint},forcepathstyle=true,ro"

    trusted = run(tmp_path, "check", "-o", f"{o},cabundle={ca}", env=keys(s3_server))
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "PASS  list /: " in trusted.stdout

    untrusted = run(tmp_path, "check", "-o", o, env=keys(s3_server))  # the system's CAs do not know it
    assert untrusted.returncode != 0
    assert "FAIL  list /" in untrusted.stdout and "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout

    aws_variable = run(tmp_path, "check", "-o", o, env={**keys(s3_server), "AWS_CA_BUNDLE": str(ca)})
    assert aws_variable.returncode == 0, aws_variable.stdout  # without cabundle, AWS_CA_BUNDLE still counts


@pytest.mark.parametrize(
    ("bundle", "expected"),
    [
        ("missing.pem", "cannot be read (No such file or directory)"),
        ("not-a-pem.txt", "holds no PEM certificate"),
    ],
)
def test_an_unreadable_ca_bundle_is_one_line(tmp_path: Path, bundle: str, expected: str) -> None:
    (tmp_path / "not-a-pem.txt").write_text("hello\n")
    path = tmp_path / bundle
    done = run(tmp_path, "url", "/docker/registry/v2/x", "-o",
               f"bucket=b,regionendpoint=https://127.0.0.1:9,cabundle={path}",
               env={"REGISTRY_STORAGE_S3_ACCESSKEY": "AKIA", "REGISTRY_STORAGE_S3_SECRETKEY": "s"})
    line = one_line(done, exitcodes.CONFIG)
    assert line.startswith(f"s3regfs: error: -o cabundle: the cabundle parameter {path} ") and expected in line


def test_cabundle_with_skipverify_is_refused(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)[0]
    done = run(tmp_path, "url", "/x", "-o", f"bucket=b,regionendpoint=https://127.0.0.1:9,cabundle={ca},skipverify=true")
    assert "contradicts skipverify=true" in one_line(done, exitcodes.CONFIG)


# -- profile -----------------------------------------------------------------------------------


def test_profile_gives_the_credentials_and_check_names_it(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    (tmp_path / "aws-credentials").write_text(
        f"[default]\naws_access_key_id = AKIANOTTHEONE\naws_secret_access_key = wrong\n\n"
        f"[ops]\naws_access_key_id = {s3_server.access_key}\naws_secret_access_key = {s3_server.secret_key}\n"
    )
    o = f"bucket={s3_bucket},regionendpoint={s3_server.endpoint},forcepathstyle=true,ro"

    done = run(tmp_path, "check", "-o", f"{o},profile=ops")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  credentials: shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials), profile ops" \
        in done.stdout
    assert s3_server.secret_key not in done.stdout + done.stderr

    default = run(tmp_path, "check", "-o", o)  # the default profile's key is refused: the profile did choose
    assert default.returncode == exitcodes.CREDENTIALS, default.stdout


def test_a_missing_profile_is_one_line_naming_the_files(tmp_path: Path) -> None:
    (tmp_path / "aws-config").write_text("[profile other]\nregion = eu-west-1\n")
    done = run(tmp_path, "url", "/x", "-o", "bucket=b,regionendpoint=http://127.0.0.1:9,profile=nope")
    line = one_line(done, exitcodes.CONFIG)
    assert line.startswith("s3regfs: error: -o profile: the profile parameter nope: no such AWS profile")
    assert str(tmp_path / "aws-config") in line and str(tmp_path / "aws-credentials") in line
