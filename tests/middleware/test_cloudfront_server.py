"""The test CloudFront server accepts exactly what botocore's CloudFrontSigner signs, and nothing else.

URLs here are signed by botocore (not by s3regfs), so these tests check the
server independently of the middleware it is later used to check.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from s3regfs.middleware.keys import generate_keypair
from tests.support.cloudfront_server import CloudFrontServer, dict_origin

KEY_ID = "K2JCJMDEHXQW5F"
OBJECTS = {"docker/registry/v2/blobs/sha256/ab/abcd/data": bytes(range(256)) * 1000}
KEY = "docker/registry/v2/blobs/sha256/ab/abcd/data"


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    return generate_keypair(tmp_path_factory.mktemp("cfkeys"))


@pytest.fixture
def cdn(keypair: tuple[Path, bytes]) -> Iterator[CloudFrontServer]:
    with CloudFrontServer(dict_origin(OBJECTS), {KEY_ID: keypair[1]}) as server:
        yield server


def botocore_sign(key_path: Path, url: str, expires: int, key_id: str = KEY_ID) -> str:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)

    def rsa_signer(message: bytes) -> bytes:
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # type: ignore[union-attr,call-arg]

    when = datetime.fromtimestamp(expires, tz=UTC)
    return CloudFrontSigner(key_id, rsa_signer).generate_presigned_url(url, date_less_than=when)


def fetch(url: str, method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def future() -> int:
    return int(datetime.now(UTC).timestamp()) + 600


def test_serves_the_object_for_a_valid_url(cdn: CloudFrontServer, keypair: tuple[Path, bytes]) -> None:
    status, body, _ = fetch(botocore_sign(keypair[0], cdn.url + KEY, future()))
    assert status == 200
    assert body == OBJECTS[KEY]
    assert cdn.requests[-1].reason == "OK"


def test_head_gives_the_length_without_a_body(cdn: CloudFrontServer, keypair: tuple[Path, bytes]) -> None:
    status, body, headers = fetch(botocore_sign(keypair[0], cdn.url + KEY, future()), "HEAD")
    assert (status, body, int(headers["Content-Length"])) == (200, b"", len(OBJECTS[KEY]))


def test_refuses_an_expired_url(cdn: CloudFrontServer, keypair: tuple[Path, bytes]) -> None:
    expired = int(datetime.now(UTC).timestamp()) - 1
    status, body, _ = fetch(botocore_sign(keypair[0], cdn.url + KEY, expired))
    assert status == 403
    assert b"Expired" in body


def test_refuses_a_tampered_signature(cdn: CloudFrontServer, keypair: tuple[Path, bytes]) -> None:
    url = botocore_sign(keypair[0], cdn.url + KEY, future())
    head, sig_and_rest = url.split("&Signature=")
    sig, rest = sig_and_rest.split("&", 1)
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    status, _, _ = fetch(f"{head}&Signature={flipped}&{rest}")
    assert status == 403
    assert cdn.requests[-1].reason == "InvalidSignature"


def test_refuses_a_changed_expiry(cdn: CloudFrontServer, keypair: tuple[Path, bytes]) -> None:
    expires = future()
    url = botocore_sign(keypair[0], cdn.url + KEY, expires)
    status, _, _ = fetch(url.replace(f"Expires={expires}", f"Expires={expires + 3600}"))
    assert (status, cdn.requests[-1].reason) == (403, "InvalidSignature")


def test_refuses_a_url_rewritten_to_another_path(cdn: CloudFrontServer, keypair: tuple[Path, bytes]) -> None:
    url = botocore_sign(keypair[0], cdn.url + "docker/registry/v2/other/data", future())
    status, _, _ = fetch(url.replace("docker/registry/v2/other/data", KEY))
    assert (status, cdn.requests[-1].reason) == (403, "InvalidSignature")


def test_refuses_an_unknown_key_pair_id(cdn: CloudFrontServer, keypair: tuple[Path, bytes]) -> None:
    status, _, _ = fetch(botocore_sign(keypair[0], cdn.url + KEY, future(), key_id="KUNKNOWN"))
    assert (status, cdn.requests[-1].reason) == (403, "UnknownKey")


def test_refuses_a_signature_from_another_key(cdn: CloudFrontServer, tmp_path: Path) -> None:
    other_key, _ = generate_keypair(tmp_path)
    status, _, _ = fetch(botocore_sign(other_key, cdn.url + KEY, future()))
    assert (status, cdn.requests[-1].reason) == (403, "InvalidSignature")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "MissingKeyPairId"),
        ("?Expires=1&Signature=abc", "MissingKeyPairId"),
        (f"?Signature=abc&Key-Pair-Id={KEY_ID}", "MalformedPolicy"),
        (f"?Expires=soon&Signature=abc&Key-Pair-Id={KEY_ID}", "MalformedExpires"),
        (f"?Expires=9999999999&Signature=a%21b&Key-Pair-Id={KEY_ID}", "MalformedSignature"),
        (f"?Expires=1&Expires=2&Signature=abc&Key-Pair-Id={KEY_ID}", "DuplicateExpires"),
    ],
)
def test_refuses_unsigned_or_malformed_requests(cdn: CloudFrontServer, query: str, reason: str) -> None:
    status, _, _ = fetch(cdn.url + KEY + query)
    assert (status, cdn.requests[-1].reason) == (403, reason)


def test_other_query_parameters_are_part_of_the_signed_resource(
    cdn: CloudFrontServer, keypair: tuple[Path, bytes]
) -> None:
    url = botocore_sign(keypair[0], cdn.url + KEY + "?v=1", future())
    assert "?v=1&Expires=" in url
    assert fetch(url)[0] == 200
    assert fetch(url.replace("?v=1&", "?v=2&"))[0] == 403


def test_missing_object_is_404(cdn: CloudFrontServer, keypair: tuple[Path, bytes]) -> None:
    status, _, _ = fetch(botocore_sign(keypair[0], cdn.url + "docker/none", future()))
    assert (status, cdn.requests[-1].reason) == (404, "NoSuchKey")


def test_injected_clock_decides_expiry(keypair: tuple[Path, bytes]) -> None:
    clock = [1_000.0]
    with CloudFrontServer(dict_origin(OBJECTS), {KEY_ID: keypair[1]}, now=lambda: clock[0]) as cdn:
        url = botocore_sign(keypair[0], cdn.url + KEY, 2_000)
        assert fetch(url)[0] == 200
        clock[0] = 1_999.999
        assert fetch(url)[0] == 200
        clock[0] = 2_000.0  # DateLessThan: the expiry second itself is too late
        assert fetch(url)[0] == 403
