"""The ``user.s3regfs.url`` xattr end to end: a real mount of a SeaweedFS bucket with the cloudfront middleware.

The mount is ``s3regfs mount -f --driver s3 -o ...,cloudfront.baseurl=...`` with a
fresh key pair (mode 0600) and the fake CloudFront server (which checks key
pair id, signature and expiry, and serves from the S3 server) as ``baseurl``.
URLs are read with ``getfattr`` and fetched with ``curl``/urllib as a user
would; the mount's own S3 traffic goes through a counting proxy.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from s3regfs.demo.localserver import LocalS3Server
from s3regfs.middleware.keys import generate_keypair
from tests.support import mounts
from tests.support.cloudfront_server import CloudFrontServer, s3_origin
from tests.support.downloads import download
from tests.support.mounts import Mount, run_tool
from tests.support.s3proxy import GET_OPS, S3Proxy
from tests.support.s3server import unique_bucket_name

pytestmark = [pytest.mark.fuse, pytest.mark.s3]

XATTR = "user.s3regfs.url"
KEY_ID = "K3D5EWEUDCCXON"
ROOT = "registry"
BLOBS = "docker/registry/v2/blobs/sha256"
DEFAULT_LIFETIME = 20 * 60
OBJECTS = {
    "written-directly": os.urandom(700 * 1024), "fresh": b"fresh layer", "secret": b"secret layer",
    "other": b"other layer", "listed": b"x", "readonly-attr": b"x", "probed": b"x", "short-lived": b"short layer",
    "presigned": os.urandom(256 * 1024),
}


@dataclass
class Setup:
    """The module's bucket, the proxy in front of it, the fake CloudFront, the key pair and the mount."""

    server: LocalS3Server
    bucket: str
    proxy: S3Proxy
    cdn: CloudFrontServer
    key_path: Path
    mount: Mount

    def path(self, name: str) -> Path:
        """The path in the mount of the object :data:`OBJECTS` ``name``."""
        return self.mount.path / blob(name)


def cloudfront_options(cdn: CloudFrontServer, key_path: Path, **extra: str) -> dict[str, mounts.OptionValue]:
    options: dict[str, mounts.OptionValue] = {
        "cloudfront.baseurl": cdn.url, "cloudfront.privatekey": str(key_path), "cloudfront.keypairid": KEY_ID,
    }
    options.update({f"cloudfront.{k}": v for k, v in extra.items()})
    return options


def s3_mount_options(server: LocalS3Server, bucket: str, endpoint: str) -> tuple[dict[str, Any], dict[str, str]]:
    params = server.driver_parameters(bucket, regionendpoint=endpoint, rootdirectory=f"/{ROOT}")
    return mounts.s3_options(params)


@pytest.fixture(scope="module")
def setup(s3_server: LocalS3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("xattr-cf")
    key_path, public_pem = generate_keypair(root)
    assert key_path.stat().st_mode & 0o777 == 0o600
    bucket = s3_server.create_bucket(unique_bucket_name("xcf"))
    client = s3_server.client()
    for name, data in OBJECTS.items():  # written by "the registry", before the mount looks at them
        client.put_object(Bucket=bucket, Key=f"{ROOT}/{blob(name)}", Body=data)
    with (
        S3Proxy(s3_server.endpoint) as proxy,
        CloudFrontServer(s3_origin(s3_server.client(), bucket), {KEY_ID: public_pem}) as cdn,
    ):
        options, env = s3_mount_options(s3_server, bucket, proxy.endpoint)
        options.update(cloudfront_options(cdn, key_path), cache_dir=str(root / "cache"))
        with mounts.mounted(root / "mnt", driver="s3", options=options, env=env) as mount:
            yield Setup(s3_server, bucket, proxy, cdn, key_path, mount)
        assert mount.returncode == 0 and "Traceback" not in mount.log(), mount.log()
    s3_server.delete_bucket(bucket)


# -- helpers -------------------------------------------------------------------------


def url_of(path: Path) -> str:
    """``getfattr --only-values -n user.s3regfs.url PATH``."""
    return run_tool(["getfattr", "--absolute-names", "--only-values", "-n", XATTR, str(path)]).stdout


def getfattr_error(*args: str) -> str:
    done = subprocess.run(["getfattr", "--absolute-names", *args], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0, done.stdout
    return done.stderr


def params(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


def with_param(url: str, name: str, value: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, value if k == name else v) for k, v in urllib.parse.parse_qsl(parts.query)]
    return parts._replace(query=urllib.parse.urlencode(query, safe="~")).geturl()


def curl(url: str) -> bytes:
    done = subprocess.run(["curl", "-sf", url], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, f"curl -sf {url} -> {done.returncode}"
    return done.stdout


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob(name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return f"{BLOBS}/{digest[:2]}/{digest}/data"


def assert_cloudfront_url(url: str, cdn: CloudFrontServer, relpath: str, before: float, after: float,
                          lifetime: float) -> None:
    assert url.startswith(f"{cdn.url}{ROOT}/{relpath}?Expires="), url
    query = params(url)
    assert list(query) == ["Expires", "Signature", "Key-Pair-Id"] and query["Key-Pair-Id"] == KEY_ID
    assert int(before + lifetime) <= int(query["Expires"]) <= int(after + lifetime)


# -- with CloudFront -----------------------------------------------------------------


def test_a_file_written_through_the_mount_downloads_from_its_url(setup: Setup) -> None:
    relpath = blob("written-through-the-mount")
    path = setup.mount.path / relpath
    path.parent.mkdir(parents=True)
    data = os.urandom(3 * 1024 * 1024 + 101)
    path.write_bytes(data)

    before = time.time()
    url = url_of(path)
    after = time.time()

    assert_cloudfront_url(url, setup.cdn, relpath, before, after, DEFAULT_LIFETIME)
    assert sha256(curl(url)) == sha256(data)
    assert setup.cdn.requests[-1].status == 200


def test_a_file_in_the_bucket_downloads_and_getxattr_costs_at_most_one_stat(setup: Setup) -> None:
    relpath, data = blob("written-directly"), OBJECTS["written-directly"]
    path = setup.path("written-directly")
    os.stat(path.parent)  # the directories are known; the file is not yet
    setup.proxy.reset()

    before = time.time()
    first = url_of(path)
    after = time.time()
    first_counts = setup.proxy.counts()
    again = url_of(path)
    counts = setup.proxy.counts()

    assert_cloudfront_url(first, setup.cdn, relpath, before, after, DEFAULT_LIFETIME)
    assert set(first_counts) <= {"HeadObject"} and sum(first_counts.values()) <= 1, first_counts  # the one stat
    assert set(counts) <= {"HeadObject"} and sum(counts.values()) <= 2, counts  # no GET, no listing
    assert sha256(curl(again)) == sha256(data)


def test_each_read_gives_a_fresh_url(setup: Setup) -> None:
    path = setup.path("fresh")
    first = url_of(path)
    expires = int(params(first)["Expires"])
    deadline = time.monotonic() + 5
    while time.time() + DEFAULT_LIFETIME < expires + 1:  # until a URL made now must expire later
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = url_of(path)

    assert int(params(second)["Expires"]) > expires
    assert params(second)["Signature"] != params(first)["Signature"]
    assert download(first) == (200, b"fresh layer") and download(second) == (200, b"fresh layer")


def test_edited_and_tampered_urls_are_refused(setup: Setup) -> None:
    secret, other = setup.path("secret"), setup.path("other")
    url = url_of(secret)
    other_rel = str(other.relative_to(setup.mount.path))
    signature = params(url)["Signature"]

    attempts = {
        "another path": (url.replace(str(secret.relative_to(setup.mount.path)), other_rel), "InvalidSignature"),
        "signature": (with_param(url, "Signature", signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")),
                      "InvalidSignature"),
        "later expiry": (with_param(url, "Expires", str(int(params(url)["Expires"]) + 3600)), "InvalidSignature"),
        "key pair id": (with_param(url, "Key-Pair-Id", "KUNKNOWN"), "UnknownKey"),
    }
    for what, (edited, reason) in attempts.items():
        assert edited != url
        status, body = download(edited)
        assert status == 403 and b"layer" not in body, what
        assert setup.cdn.requests[-1].reason == reason, what
    assert download(url) == (200, b"secret layer")
    assert download(url_of(other)) == (200, b"other layer")


def test_an_expired_url_is_refused(setup: Setup, mount_factory: Callable[..., Mount]) -> None:
    options, env = s3_mount_options(setup.server, setup.bucket, setup.server.endpoint)
    short = mount_factory("s3", options={**options, **cloudfront_options(setup.cdn, setup.key_path, duration="2s")},
                          env=env)
    relpath = blob("short-lived")

    before = time.time()
    url = url_of(short.path / relpath)
    assert_cloudfront_url(url, setup.cdn, relpath, before, time.time(), 2)

    statuses = []
    deadline = time.monotonic() + 15
    while not statuses or statuses[-1] != 403:
        assert time.monotonic() < deadline, f"not refused in time: {statuses}"
        status, body = download(url)
        statuses.append(status)
        assert (status, body) == (200, b"short layer") or status == 403
        time.sleep(0.1)  # polling the expiry (a clock), not synchronising with a component
    assert setup.cdn.requests[-1].reason == "Expired"
    assert time.time() >= int(params(url)["Expires"])
    assert all(s == 200 for s in statuses[:-1])


def test_only_files_have_the_attribute(setup: Setup) -> None:
    path = setup.path("listed")
    directory = path.parent

    listing = run_tool(["getfattr", "--absolute-names", "-d", "-m", "-", str(path)]).stdout
    assert f'{XATTR}="{setup.cdn.url}' in listing
    assert run_tool(["getfattr", "--absolute-names", "-d", "-m", "-", str(directory)]).stdout == ""
    assert os.listxattr(path) == [XATTR]
    assert os.listxattr(directory) == []
    assert os.listxattr(setup.mount.path) == []

    for target, name in ((directory, XATTR), (setup.mount.path, XATTR), (path, "user.s3regfs.other"),
                         (path, "user.url")):
        assert "No such attribute" in getfattr_error("-n", name, str(target)), (target, name)
        with pytest.raises(OSError) as info:
            os.getxattr(target, name)
        assert info.value.errno == errno.ENODATA


def test_setting_or_removing_is_not_supported(setup: Setup) -> None:
    path = setup.path("readonly-attr")
    for args in (["-n", XATTR, "-v", "http://elsewhere/"], ["-n", "user.note", "-v", "1"], ["-x", XATTR]):
        done = subprocess.run(["setfattr", *args, str(path)], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0 and "Operation not supported" in done.stderr, (args, done.stderr)
    assert url_of(path).startswith(setup.cdn.url)


def test_probes_that_tools_make_are_not_supported(setup: Setup) -> None:
    """Names outside ``user.`` are ENOTSUP (``ls -l`` then stops asking); an unknown ``user.`` name is ENODATA."""
    path = setup.path("probed")
    os.stat(path)
    setup.proxy.reset()
    for target in (path, path.parent):
        for name in ("security.capability", "system.posix_acl_access", "security.selinux", "trusted.x"):
            with pytest.raises(OSError) as info:
                os.getxattr(target, name)
            assert info.value.errno == errno.ENOTSUP, (target, name)
        with pytest.raises(OSError) as info:
            os.getxattr(target, "user.other")
        assert info.value.errno == errno.ENODATA
    assert "Operation not supported" in getfattr_error("-n", "security.capability", str(path))
    assert "No such attribute" in getfattr_error("-n", "user.other", str(path))
    assert setup.proxy.total() == 0, setup.proxy.counts()


# -- without CloudFront --------------------------------------------------------------


def test_without_cloudfront_the_url_is_a_working_s3_presigned_url(
    setup: Setup, mount_factory: Callable[..., Mount]
) -> None:
    options, env = s3_mount_options(setup.server, setup.bucket, setup.proxy.endpoint)
    plain = mount_factory("s3", options=options, env=env)
    relpath, data = blob("presigned"), OBJECTS["presigned"]
    os.stat((plain.path / relpath).parent)
    setup.proxy.reset()

    url = url_of(plain.path / relpath)
    counts = setup.proxy.counts()

    assert not any(counts.get(op) for op in GET_OPS) and setup.proxy.total() <= 1, counts
    assert url.startswith(f"{setup.proxy.endpoint}/{setup.bucket}/{ROOT}/{relpath}?")
    query = params(url)
    assert query["X-Amz-Expires"] == str(DEFAULT_LIFETIME) and query["X-Amz-Signature"]
    assert "Key-Pair-Id" not in query
    status, body = download(url)
    assert status == 200 and sha256(body) == sha256(data)
