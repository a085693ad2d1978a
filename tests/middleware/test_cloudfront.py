"""The cloudfront middleware: signed URLs, options, keys, the IP filter, and a CloudFront round trip."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.signers import CloudFrontSigner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from s3regfs import middleware
from s3regfs.driver.base import StorageDriver
from s3regfs.driver.errors import InvalidPathError, ParameterError
from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.driver.wrapper import DriverWrapper
from s3regfs.middleware.cloudfront import UNSUPPORTED_DRIVER_WARNING, CloudFrontMiddleware
from s3regfs.middleware.keys import generate_keypair
from tests.support.downloads import download

KEY_ID = "APKAEIBAERJR2EXAMPLE"
NOW = 1_700_000_000.75
BLOB = "/docker/registry/v2/blobs/sha256/ab/ab12/data"


class KeyedDriver(DriverWrapper):
    """The in-memory driver with an s3-like bucket key (rootdirectory ``registry``) and redirect URL."""

    def __init__(self) -> None:
        super().__init__(InMemoryDriver())
        self.redirects: list[tuple[str, str, str | None, float | None]] = []

    def bucket_key(self, path: str) -> str | None:
        return "registry" + path

    def redirect_url(
        self, method: str, path: str, *, client_ip: str | None = None, expires_in: float | None = None
    ) -> str | None:
        self.redirects.append((method, path, client_ip, expires_in))
        return f"https://bucket.s3.amazonaws.com/registry{path}?X-Amz-Expires=1200"


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    directory = tmp_path_factory.mktemp("cfkeys")
    return {fmt: generate_keypair(directory, key_format=fmt) for fmt in ("pkcs1", "pkcs8")}  # type: ignore[misc]


@pytest.fixture
def key_path(keys: dict[str, tuple[Path, bytes]]) -> Path:
    return keys["pkcs1"][0]


@pytest.fixture
def public_key(keys: dict[str, tuple[Path, bytes]]) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(keys["pkcs1"][1])
    assert isinstance(key, rsa.RSAPublicKey)
    return key


@pytest.fixture
def make() -> Iterator[Callable[..., CloudFrontMiddleware]]:
    made: list[CloudFrontMiddleware] = []

    def build(
        options: dict[str, Any], inner: StorageDriver | None = None, **kwargs: Any
    ) -> CloudFrontMiddleware:
        kwargs.setdefault("now", lambda: NOW)
        mw = CloudFrontMiddleware(inner if inner is not None else KeyedDriver(), options, **kwargs)
        made.append(mw)
        return mw

    yield build
    for mw in made:
        if mw.ip_filter is not None:
            mw.ip_filter.close()


def opts(key_path: Path, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "baseurl": "https://d111111abcdef8.cloudfront.net/",
        "privatekey": str(key_path),
    }
    options["keypairid"] = KEY_ID
    options.update(extra)
    return options


def split_signed(url: str) -> tuple[str, dict[str, str]]:
    resource, _, query = url.rpartition("?Expires=")
    params = dict(p.split("=", 1) for p in ("Expires=" + query).split("&"))
    return resource, params


def b64decode_cf(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"), validate=True)


def botocore_url(key_path: Path, url: str, expires: int) -> str:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)

    def rsa_signer(message: bytes) -> bytes:
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # type: ignore[union-attr,call-arg]

    signer = CloudFrontSigner(KEY_ID, rsa_signer)
    return signer.generate_presigned_url(url, date_less_than=datetime.fromtimestamp(expires, tz=UTC))


# -- signing ------------------------------------------------------------------------


def test_signature_verifies_with_the_public_key(
    make: Callable[..., CloudFrontMiddleware], key_path: Path, public_key: rsa.RSAPublicKey
) -> None:
    url = make(opts(key_path)).redirect_url("GET", BLOB)
    assert url is not None
    resource, params = split_signed(url)
    assert resource == "https://d111111abcdef8.cloudfront.net/registry" + BLOB
    assert list(params) == ["Expires", "Signature", "Key-Pair-Id"]
    assert params["Key-Pair-Id"] == KEY_ID
    expires = params["Expires"]
    policy = (
        f'{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}'
    ).encode()
    public_key.verify(b64decode_cf(params["Signature"]), policy, padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(InvalidSignature):
        public_key.verify(b64decode_cf(params["Signature"]), policy + b" ", padding.PKCS1v15(), hashes.SHA1())


@pytest.mark.parametrize(
    ("duration", "expected"),
    [(None, 1_700_001_200), ("3000s", 1_700_003_000), ("1h30m", 1_700_005_400), ("0.2s", 1_700_000_000)],
)
def test_expiry_is_now_plus_duration(
    make: Callable[..., CloudFrontMiddleware], key_path: Path, duration: str | None, expected: int
) -> None:
    extra = {} if duration is None else {"duration": duration}
    url = make(opts(key_path, **extra)).redirect_url("GET", BLOB)
    assert url is not None
    assert split_signed(url)[1]["Expires"] == str(expected)


def test_expires_in_overrides_duration_and_the_clock_is_read_per_call(
    make: Callable[..., CloudFrontMiddleware], key_path: Path
) -> None:
    clock = [NOW]
    mw = make(opts(key_path, duration="20m"), now=lambda: clock[0])
    assert split_signed(mw.redirect_url("GET", BLOB, expires_in=60) or "")[1]["Expires"] == "1700000060"
    clock[0] += 100
    assert split_signed(mw.redirect_url("GET", BLOB) or "")[1]["Expires"] == "1700001300"


@pytest.mark.parametrize("key_format", ["pkcs1", "pkcs8"])
@pytest.mark.parametrize(
    ("baseurl", "resource_prefix"),
    [
        ("https://d111111abcdef8.cloudfront.net/", "https://d111111abcdef8.cloudfront.net/"),
        ("d111111abcdef8.cloudfront.net", "https://d111111abcdef8.cloudfront.net/"),
        ("https://cdn.example.com/mirror", "https://cdn.example.com/mirror/"),
        ("http://cdn.example.com:8080/a/", "http://cdn.example.com:8080/a/"),
        ("https://cdn.example.com/?tenant=a&b=1", "https://cdn.example.com/?tenant=a&b=1/"),
    ],
)
def test_url_matches_botocore_byte_for_byte(
    make: Callable[..., CloudFrontMiddleware],
    keys: dict[str, tuple[Path, bytes]],
    key_format: str,
    baseurl: str,
    resource_prefix: str,
) -> None:
    key_path = keys[key_format][0]
    url = make(opts(key_path, baseurl=baseurl, duration="3000s")).redirect_url("GET", BLOB)
    expected = botocore_url(key_path, resource_prefix + "registry" + BLOB, int(NOW) + 3000)
    assert url == expected
    join = "&" if "?" in baseurl else "?"
    assert f"{join}Expires=1700003000&Signature=" in (url or "")


def test_method_is_not_examined(make: Callable[..., CloudFrontMiddleware], key_path: Path) -> None:
    mw = make(opts(key_path))
    assert mw.redirect_url("GET", BLOB) == mw.redirect_url("HEAD", BLOB) == mw.redirect_url("PUT", BLOB)


def test_invalid_path_is_refused(make: Callable[..., CloudFrontMiddleware], key_path: Path) -> None:
    mw = make(opts(key_path))
    for path in ("/docker/../secret", "relative", "/a//b", "/a b"):
        with pytest.raises(InvalidPathError):
            mw.redirect_url("GET", path)


def test_everything_else_passes_through(make: Callable[..., CloudFrontMiddleware], key_path: Path) -> None:
    inner = KeyedDriver()
    mw = make(opts(key_path), inner=inner)
    mw.put_content("/a/b", b"payload")
    assert inner.get_content("/a/b") == b"payload"
    assert mw.get_content("/a/b") == b"payload"
    assert mw.list("/a") == ["/a/b"]
    assert mw.stat("/a/b").size == 7
    assert mw.bucket_key("/a/b") == "registry/a/b"
    assert mw.name == inner.name


def test_driver_without_bucket_keys_gets_its_own_url_and_one_warning(
    make: Callable[..., CloudFrontMiddleware], key_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class PlainRedirects(DriverWrapper):
        def redirect_url(self, method: str, path: str, **kwargs: Any) -> str | None:
            return "https://origin.example" + path

    mw = make(opts(key_path), inner=PlainRedirects(InMemoryDriver()))
    with caplog.at_level(logging.WARNING, "s3regfs.middleware.cloudfront"):
        assert mw.redirect_url("GET", "/a/b") == "https://origin.example/a/b"
        assert mw.redirect_url("GET", "/a/c") == "https://origin.example/a/c"
    assert caplog.text.count(UNSUPPORTED_DRIVER_WARNING) == 1
    assert make(opts(key_path), inner=InMemoryDriver()).redirect_url("GET", "/a/b") is None


# -- keys -----------------------------------------------------------------------------


def write_key(path: Path, pem: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(pem)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("key_format", ["pkcs1", "pkcs8"])
def test_pkcs1_and_pkcs8_keys_are_accepted(
    make: Callable[..., CloudFrontMiddleware], keys: dict[str, tuple[Path, bytes]], key_format: str
) -> None:
    key_path, public_pem = keys[key_format]
    header = b"-----BEGIN RSA PRIVATE KEY-----" if key_format == "pkcs1" else b"-----BEGIN PRIVATE KEY-----"
    assert key_path.read_bytes().startswith(header)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    url = make(opts(key_path)).redirect_url("GET", BLOB) or ""
    resource, params = split_signed(url)
    policy = json.dumps(
        {
            "Statement": [
                {
                    "Resource": resource,
                    "Condition": {"DateLessThan": {"AWS:EpochTime": int(params["Expires"])}},
                }
            ]
        },
        separators=(",", ":"),
    ).encode()
    public = serialization.load_pem_public_key(public_pem)
    public.verify(b64decode_cf(params["Signature"]), policy, padding.PKCS1v15(), hashes.SHA1())  # type: ignore[union-attr,call-arg]


def test_read_only_key_file_is_accepted(
    make: Callable[..., CloudFrontMiddleware], key_path: Path, tmp_path: Path
) -> None:
    copy = write_key(tmp_path / "ro.pem", key_path.read_bytes(), 0o400)
    assert make(opts(copy)).redirect_url("GET", BLOB)


@pytest.mark.parametrize("pem_format", ["pkcs8", "pkcs1"])
def test_encrypted_key_is_refused(tmp_path: Path, pem_format: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pem_format == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.BestAvailableEncryption(b"secret"))
    path = write_key(tmp_path / "enc.pem", pem)
    with pytest.raises(ParameterError) as info:
        CloudFrontMiddleware(KeyedDriver(), opts(path))
    assert f"privatekey {path} is encrypted" in str(info.value)


@pytest.mark.parametrize("kind", ["ec-pkcs8", "ec-sec1", "ed25519"])
def test_non_rsa_key_is_refused(tmp_path: Path, kind: str) -> None:
    if kind == "ed25519":
        key: Any = ed25519.Ed25519PrivateKey.generate()
        fmt = serialization.PrivateFormat.PKCS8
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        fmt = (
            serialization.PrivateFormat.PKCS8
            if kind == "ec-pkcs8"
            else serialization.PrivateFormat.TraditionalOpenSSL
        )
    path = write_key(
        tmp_path / "k.pem", key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    )
    with pytest.raises(ParameterError) as info:
        CloudFrontMiddleware(KeyedDriver(), opts(path))
    message = str(info.value)
    assert f"privatekey {path} is not an RSA key" in message
    assert ("Ed25519" if kind == "ed25519" else "EC") in message


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620])
def test_key_file_accessible_by_others_is_refused(key_path: Path, tmp_path: Path, mode: int) -> None:
    path = write_key(tmp_path / "open.pem", key_path.read_bytes(), mode)
    with pytest.raises(ParameterError) as info:
        CloudFrontMiddleware(KeyedDriver(), opts(path))
    message = str(info.value)
    assert f"privatekey file {path} is accessible by group or others (mode {mode:04o})" in message
    assert message.endswith(f"chmod 600 {path}")


# -- options --------------------------------------------------------------------------

NO_KEY = "/nonexistent/pk.pem"

# (id, options to change (None = remove), exact upstream message or prefix, option the message names)
INVALID_OPTIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("baseurl-missing", {"baseurl": None}, "no baseurl provided", "baseurl"),
    ("baseurl-not-string", {"baseurl": 42}, "baseurl must be a string", "baseurl"),
    ("baseurl-bad-port", {"baseurl": "https://cdn.example.com:port/"}, "invalid baseurl: ", "baseurl"),
    ("baseurl-bad-ipv6", {"baseurl": "https://[::1/"}, "invalid baseurl: ", "baseurl"),
    ("baseurl-control-char", {"baseurl": "https://cdn.example.com/a\nb"}, "invalid baseurl: ", "baseurl"),
    ("baseurl-bad-escape", {"baseurl": "https://cdn.example.com/%zz"}, "invalid baseurl: ", "baseurl"),
    ("baseurl-scheme", {"baseurl": "ftp://cdn.example.com/"}, "invalid baseurl: scheme must be", "baseurl"),
    ("baseurl-no-host", {"baseurl": "https:///path"}, "invalid baseurl: no host", "baseurl"),
    (
        "baseurl-non-ascii",
        {"baseurl": "https://cdn.exämple.com/"},
        "invalid baseurl: must be ASCII",
        "baseurl",
    ),
    (
        "baseurl-signing-param",
        {"baseurl": "https://cdn.example.com/?Expires=1"},
        "invalid baseurl: Expires",
        "baseurl",
    ),
    ("privatekey-missing", {"privatekey": None}, "no privatekey provided", "privatekey"),
    ("privatekey-not-string", {"privatekey": ["a"]}, "privatekey must be a string", "privatekey"),
    ("keypairid-missing", {"keypairid": None}, "no keypairid provided", "keypairid"),
    ("keypairid-not-string", {"keypairid": 12}, "keypairid must be a string", "keypairid"),
    (
        "privatekey-file-missing",
        {"privatekey": NO_KEY},
        f"failed to read privatekey file: open {NO_KEY}: no such file or directory",
        "privatekey",
    ),
    (
        "duration-unitless",
        {"duration": "3000"},
        'invalid duration: time: missing unit in duration "3000"',
        "duration",
    ),
    ("duration-garbage", {"duration": "soon"}, 'invalid duration: time: invalid duration "soon"', "duration"),
    ("duration-int", {"duration": 3000}, 'duration must be a duration string such as "20m"', "duration"),
    ("duration-bool", {"duration": True}, "duration must be a duration string", "duration"),
    (
        "updatefrequency-garbage",
        {"updatefrequency": "daily"},
        'invalid updatefrequency: time: invalid duration "daily"',
        "updatefrequency",
    ),
    (
        "updatefrequency-int",
        {"updatefrequency": 43200},
        "updatefrequency must be a duration string",
        "updatefrequency",
    ),
    (
        "updatefrequency-zero",
        {"updatefrequency": "0s"},
        "invalid updatefrequency: must be positive",
        "updatefrequency",
    ),
    (
        "updatefrenquency-garbage",
        {"updatefrenquency": "12"},
        "invalid updatefrequency (set via deprecated updatefrenquency): time: missing unit",
        "updatefrenquency",
    ),
    ("iprangesurl-not-string", {"iprangesurl": 1}, "iprangesurl must be a string", "iprangesurl"),
    (
        "ipfilteredby-unknown",
        {"ipfilteredby": "gcp"},
        "ipfilteredby only allows a string the following value: none|aws|awsregion",
        "ipfilteredby",
    ),
    (
        "ipfilteredby-not-string",
        {"ipfilteredby": True},
        "ipfilteredby only allows a string with the following value: none|aws|awsregion",
        "ipfilteredby",
    ),
    ("awsregion-missing", {"ipfilteredby": "awsregion"}, "awsRegion is not defined", "awsregion"),
    (
        "awsregion-not-string",
        {"ipfilteredby": "awsregion", "awsregion": ["us-east-1"]},
        "awsRegion must be a comma separated string of valid aws regions",
        "awsregion",
    ),
]


@pytest.mark.parametrize(
    ("changes", "message", "option"), [c[1:] for c in INVALID_OPTIONS], ids=[c[0] for c in INVALID_OPTIONS]
)
def test_invalid_option_names_it(key_path: Path, changes: dict[str, Any], message: str, option: str) -> None:
    options = opts(key_path)
    for name, value in changes.items():
        if value is None:
            options.pop(name)
        else:
            options[name] = value
    with pytest.raises(ParameterError) as info:
        CloudFrontMiddleware(KeyedDriver(), options, fetch=lambda url: b"{}")
    text = str(info.value)
    assert text.startswith(message), text
    assert option in text.lower()
    assert "\n" not in text


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (
            b"not a key at all\n",
            "failed to decode private key as an rsa private key: no PEM block in privatekey",
        ),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "failed to decode private key as an rsa private key: privatekey",
        ),
        (
            b"-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
            "failed to parse privatekey",
        ),
    ],
    ids=["no-pem-block", "certificate", "garbage-body"],
)
def test_unusable_key_file_names_privatekey(tmp_path: Path, pem: bytes, message: str) -> None:
    path = write_key(tmp_path / "bad.pem", pem)
    with pytest.raises(ParameterError) as info:
        CloudFrontMiddleware(KeyedDriver(), opts(path))
    assert str(info.value).startswith(message)
    assert str(path) in str(info.value)


def test_key_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as info:
        CloudFrontMiddleware(KeyedDriver(), opts(tmp_path))
    assert str(info.value).startswith(f"failed to read privatekey file: read {tmp_path}: is a directory")


def test_options_are_checked_in_upstream_order(key_path: Path) -> None:
    def error(**changes: Any) -> str:
        options = {k: v for k, v in {**opts(key_path), **changes}.items() if v is not None}
        with pytest.raises(ParameterError) as info:
            CloudFrontMiddleware(KeyedDriver(), options)
        return str(info.value)

    assert error(baseurl=None, privatekey=None) == "no baseurl provided"
    assert error(privatekey=NO_KEY, keypairid=None) == "no keypairid provided"
    assert error(privatekey=NO_KEY, duration="x").startswith("failed to read privatekey file")
    assert error(duration="x", updatefrequency="y").startswith("invalid duration")
    assert error(updatefrequency="y", iprangesurl=3).startswith("invalid updatefrequency")
    assert error(iprangesurl=3, ipfilteredby="gcp") == "iprangesurl must be a string"


def test_defaults_and_normalisation(make: Callable[..., CloudFrontMiddleware], key_path: Path) -> None:
    mw = make(opts(key_path, baseurl="cdn.example.com"))
    assert mw.base_url == "https://cdn.example.com/"
    assert mw.duration == 20 * 60
    assert mw.ip_filter is None
    for mode in ("", "none", " NONE "):
        assert make(opts(key_path, ipfilteredby=mode)).ip_filter is None
    assert make(opts(key_path, duration=timedelta(minutes=5))).duration == 300


# -- IP filter through the middleware ---------------------------------------------------

RANGES = json.dumps(
    {
        "prefixes": [
            {"ip_prefix": "52.94.76.0/22", "region": "us-west-2", "service": "AMAZON"},
            {"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "S3"},
        ],
        "ipv6_prefixes": [{"ipv6_prefix": "2600:1f18::/33", "region": "us-east-1", "service": "S3"}],
    }
).encode()


def test_aws_clients_get_the_storage_url(make: Callable[..., CloudFrontMiddleware], key_path: Path) -> None:
    urls: list[str] = []

    def fetch(url: str) -> bytes:
        urls.append(url)
        return RANGES

    inner = KeyedDriver()
    mw = make(
        opts(key_path, ipfilteredby="aws", iprangesurl="https://ranges.test/ip.json"),
        inner=inner,
        fetch=fetch,
    )
    assert urls == []  # fetched lazily: only once a URL is asked for a client address
    assert (mw.redirect_url("GET", BLOB) or "").startswith("https://d111111abcdef8.cloudfront.net/")
    assert urls == []
    s3_url = "https://bucket.s3.amazonaws.com/registry" + BLOB + "?X-Amz-Expires=1200"
    assert mw.redirect_url("GET", BLOB, client_ip="52.94.76.9") == s3_url
    assert urls == ["https://ranges.test/ip.json"]
    assert mw.redirect_url("GET", BLOB, client_ip="2600:1f18::7", expires_in=60) == s3_url
    assert inner.redirects[-1] == ("GET", BLOB, "2600:1f18::7", 60)
    for outside in ("192.0.2.1", "2001:db8::1", None, "garbage"):
        assert (mw.redirect_url("GET", BLOB, client_ip=outside) or "").startswith(
            "https://d111111abcdef8.cloudfront.net/"
        )


def test_awsregion_filters_on_the_listed_regions(
    make: Callable[..., CloudFrontMiddleware], key_path: Path
) -> None:
    mw = make(
        opts(key_path, ipfilteredby="AWSRegion", awsregion=" US-West-2 ,us-east-1"), fetch=lambda url: RANGES
    )
    assert mw.ip_filter is not None and mw.ip_filter.regions == ["us-west-2", "us-east-1"]
    assert "s3.amazonaws.com" in (mw.redirect_url("GET", BLOB, client_ip="52.94.76.9") or "")
    assert "cloudfront.net" in (mw.redirect_url("GET", BLOB, client_ip="3.5.140.1") or "")


def test_uninitialised_filter_sends_everyone_to_cloudfront(
    make: Callable[..., CloudFrontMiddleware], key_path: Path
) -> None:
    def failing(url: str) -> bytes:
        raise OSError("network is unreachable")

    mw = make(opts(key_path, ipfilteredby="aws"), fetch=failing)
    assert mw.ip_filter is not None and not mw.ip_filter.initialized
    assert "cloudfront.net" in (mw.redirect_url("GET", BLOB, client_ip="52.94.76.9") or "")


def test_deprecated_updatefrenquency_wins_with_a_warning(
    make: Callable[..., CloudFrontMiddleware], key_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "s3regfs.middleware.cloudfront"):
        mw = make(
            opts(key_path, ipfilteredby="aws", updatefrequency="1h", updatefrenquency="30m", duration="5m"),
            fetch=lambda url: RANGES,
        )
    assert mw.ip_filter is not None and mw.ip_filter.update_frequency == 1800
    assert mw.duration == 300  # not the 2.8 bug, which put the refresh period into the URL lifetime
    assert "updatefrenquency is deprecated; use updatefrequency" in caplog.text


def test_close_stops_the_filter_and_closes_the_inner_driver(key_path: Path) -> None:
    closed: list[bool] = []

    class Closing(KeyedDriver):
        def close(self) -> None:
            closed.append(True)

    mw = CloudFrontMiddleware(Closing(), opts(key_path, ipfilteredby="aws"), fetch=lambda url: RANGES)
    assert mw.ip_filter is not None
    mw.close()
    assert closed == [True]
    assert not mw.ip_filter._thread.is_alive()


# -- the registry -----------------------------------------------------------------------


def test_registry_builds_the_chain_in_list_order(key_path: Path) -> None:
    calls: list[str] = []

    class Tag(DriverWrapper):
        pass

    def tagger(tag: str) -> Callable[[StorageDriver, Any], StorageDriver]:
        def ctor(driver: StorageDriver, options: Any) -> StorageDriver:
            calls.append(f"{tag}:{options.get('n')}")
            return Tag(driver)

        return ctor

    name_a, name_b = f"test-a-{os.getpid()}", f"test-b-{os.getpid()}"
    middleware.register(name_a, tagger("a"))
    middleware.register(name_b, tagger("b"))
    base = KeyedDriver()
    driver = middleware.wrap(base, [("cloudfront", opts(key_path)), (name_a, {"n": 1}), (name_b, None)])
    assert calls == ["a:1", "b:None"]
    assert isinstance(driver, Tag) and isinstance(driver.inner, Tag)
    assert isinstance(driver.inner.inner, CloudFrontMiddleware) and driver.inner.inner.inner is base
    assert "cloudfront.net" in (driver.redirect_url("GET", BLOB) or "")
    assert "cloudfront" in middleware.names()
    with pytest.raises(ValueError, match=f"name already registered: {name_a}"):
        middleware.register(name_a, tagger("again"))


def test_registry_errors_are_upstream_texts(key_path: Path) -> None:
    with pytest.raises(ParameterError) as info:
        middleware.wrap(InMemoryDriver(), [("redirectx", {})])
    assert str(info.value) == (
        "unable to configure storage middleware (redirectx): no storage middleware registered with name: redirectx"
    )
    with pytest.raises(ParameterError) as info:
        middleware.wrap(InMemoryDriver(), [("cloudfront", {"privatekey": str(key_path)})])
    assert str(info.value) == "unable to configure storage middleware (cloudfront): no baseurl provided"
    assert middleware.wrap(InMemoryDriver(), []).name == "inmemory"


# -- end to end: the s3 driver, this middleware, and a server that plays CloudFront ----


@pytest.fixture
def s3_cdn(
    s3_server: Any, s3_bucket: str, keys: dict[str, tuple[Path, bytes]]
) -> Iterator[tuple[Any, StorageDriver]]:
    from s3regfs.driver import factory
    from tests.support.cloudfront_server import CloudFrontServer, s3_origin

    key_path, public_pem = keys["pkcs1"]
    params = s3_server.driver_parameters(s3_bucket, rootdirectory="/registry")
    driver = factory.create("s3", params)
    with CloudFrontServer(s3_origin(s3_server.client(), s3_bucket), {KEY_ID: public_pem}) as cdn:
        chain = middleware.wrap(
            driver, [("cloudfront", {"baseurl": cdn.url, "privatekey": str(key_path), "keypairid": KEY_ID})]
        )
        try:
            yield cdn, chain
        finally:
            chain.close()


@pytest.mark.s3
def test_cloudfront_serves_exactly_the_object(s3_cdn: tuple[Any, StorageDriver]) -> None:
    cdn, chain = s3_cdn
    blob = os.urandom(3 * 1024 * 1024 + 17)
    other = b"another object"
    chain.put_content(BLOB, blob)
    chain.put_content("/docker/registry/v2/blobs/sha256/cd/cd34/data", other)
    url = chain.redirect_url("GET", BLOB)
    assert url is not None and url.startswith(cdn.url + "registry" + BLOB + "?Expires=")
    assert download(url) == (200, blob)
    curl = subprocess.run(["curl", "-sSf", url], capture_output=True, timeout=60, check=False)
    assert (curl.returncode, curl.stdout) == (0, blob)
    other_url = chain.redirect_url("GET", "/docker/registry/v2/blobs/sha256/cd/cd34/data") or ""
    assert download(other_url) == (200, other)


@pytest.mark.s3
def test_cloudfront_refuses_expired_tampered_and_rewritten_urls(
    s3_cdn: tuple[Any, StorageDriver], keys: dict[str, tuple[Path, bytes]]
) -> None:
    cdn, chain = s3_cdn
    chain.put_content(BLOB, b"secret layer")
    chain.put_content("/docker/registry/v2/blobs/sha256/ef/ef56/data", b"other layer")
    url = chain.redirect_url("GET", BLOB) or ""

    expired = chain.redirect_url("GET", BLOB, expires_in=-1) or ""
    assert download(expired)[0] == 403 and cdn.requests[-1].reason == "Expired"

    sig = split_signed(url)[1]["Signature"]
    tampered = url.replace(sig, sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB"))
    assert download(tampered)[0] == 403 and cdn.requests[-1].reason == "InvalidSignature"

    rewritten = url.replace(BLOB, "/docker/registry/v2/blobs/sha256/ef/ef56/data")
    status, body = download(rewritten)
    assert status == 403 and b"other layer" not in body
    assert cdn.requests[-1].reason == "InvalidSignature"

    assert download(url) == (200, b"secret layer")


@pytest.mark.s3
def test_aws_clients_get_a_working_s3_url_and_others_cloudfront(
    s3_server: Any, s3_bucket: str, keys: dict[str, tuple[Path, bytes]]
) -> None:
    from s3regfs.driver import factory
    from tests.support.cloudfront_server import (
        CloudFrontServer,
        IPRangesServer,
        ip_ranges_document,
        s3_origin,
    )

    key_path, public_pem = keys["pkcs8"]
    driver = factory.create("s3", s3_server.driver_parameters(s3_bucket))
    ranges = ip_ranges_document([("127.0.0.0/8", "us-east-1"), ("10.0.0.0/8", "eu-west-1")])
    with (
        IPRangesServer(ranges) as ip_ranges,
        CloudFrontServer(s3_origin(s3_server.client(), s3_bucket), {KEY_ID: public_pem}) as cdn,
    ):
        options = {
            "baseurl": cdn.url,
            "privatekey": str(key_path),
            "keypairid": KEY_ID,
            "ipfilteredby": "awsregion",
            "awsregion": "us-east-1",
            "iprangesurl": ip_ranges.url,
        }
        chain = middleware.wrap(driver, [("cloudfront", options)])
        try:
            chain.put_content(BLOB, b"layer bytes")
            in_aws = chain.redirect_url("GET", BLOB, client_ip="127.0.0.1") or ""
            assert in_aws.startswith(s3_server.endpoint) and "X-Amz-Signature=" in in_aws
            assert download(in_aws) == (200, b"layer bytes")
            for outside in ("10.1.2.3", "192.0.2.1"):  # another region, and outside AWS
                via_cdn = chain.redirect_url("GET", BLOB, client_ip=outside) or ""
                assert via_cdn.startswith(cdn.url + "docker/registry/v2/") and "Key-Pair-Id=" in via_cdn
                assert download(via_cdn) == (200, b"layer bytes")
            assert ip_ranges.hits == 1
        finally:
            chain.close()
