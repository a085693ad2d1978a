"""A real mount of a real bucket (SeaweedFS on loopback): data, request costs, xattrs, read-only, failed uploads."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from s3regfs import exitcodes
from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount, run_tool
from tests.support.s3proxy import WRITE_OPS, Rule, S3Proxy

MiB = 1024 * 1024


def _round_trip(mount: Mount, server: LocalS3Server, bucket: str, size: int) -> None:
    """Write ``size`` random bytes sequentially, read them back, and check the object in the bucket."""
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with open(mount.path / "big.bin", "wb", buffering=0) as f:
        for i in range(size // MiB):
            chunk = block[i % 7 :] + block[: i % 7]  # every MiB differs from its neighbours
            digest.update(chunk)
            f.write(chunk)
    assert os.stat(mount.path / "big.bin").st_size == size
    back = hashlib.sha256()
    with open(mount.path / "big.bin", "rb", buffering=0) as f:
        while chunk := f.read(4 * MiB):
            back.update(chunk)
    assert back.hexdigest() == digest.hexdigest()
    obj = server.client().get_object(Bucket=bucket, Key="big.bin")
    stored = hashlib.sha256()
    for chunk in obj["Body"].iter_chunks(4 * MiB):
        stored.update(chunk)
    assert stored.hexdigest() == digest.hexdigest()


def test_64_mib_sha256_round_trip(s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str) -> None:
    _round_trip(s3_mount, s3_server, s3_bucket, 64 * MiB)


@pytest.mark.slow
def test_1_gib_sha256_round_trip(s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str) -> None:
    _round_trip(s3_mount, s3_server, s3_bucket, 1024 * MiB)


def test_objects_written_by_others_show_with_their_sizes(
    s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="docker/registry/v2/blobs/sha256/ab/abcd/data", Body=b"x" * 4321)
    client.put_object(Bucket=s3_bucket, Key="docker/registry/v2/repositories/app/_layers/link", Body=b"sha256:ab")
    root = s3_mount.path / "docker" / "registry" / "v2"
    assert sorted(os.listdir(root)) == ["blobs", "repositories"]
    assert os.stat(root / "blobs/sha256/ab/abcd/data").st_size == 4321
    assert (root / "repositories/app/_layers/link").read_bytes() == b"sha256:ab"


def test_ls_l_and_find_cost_list_requests_only(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    for d in range(4):
        for f in range(15):
            client.put_object(Bucket=s3_bucket, Key=f"tree/d{d}/f{f}", Body=b"z" * (d * 100 + f + 1))
    with S3Proxy(s3_server.endpoint) as proxy:
        options, env = mounts.s3_options(s3_server.driver_parameters(s3_bucket, regionendpoint=proxy.endpoint))
        mount = mount_factory("s3", options=options, env=env)
        proxy.reset()
        listing = run_tool(["ls", "-lR", str(mount.path / "tree")]).stdout
        found = run_tool(["find", str(mount.path / "tree"), "-type", "f", "-size", "-2k", "-printf", "%s\n"]).stdout
        counts = proxy.counts()
        assert mount.unmount() == 0
    assert sum(int(x) for x in found.split()) == sum(d * 100 + f + 1 for d in range(4) for f in range(15))
    assert listing.count("-rw-r--r--") == 60
    assert counts.get("HeadObject", 0) <= 1, counts  # the lookup of "tree" itself, not one per file
    assert counts.get("GetObject", 0) == 0 and counts.get("GetObjectRange", 0) == 0, counts
    assert 1 <= sum(n for op, n in counts.items() if op.startswith("List")) <= 10, counts


def test_url_xattr_is_a_working_presigned_url(s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str) -> None:
    s3_server.client().put_object(Bucket=s3_bucket, Key="blobs/data", Body=b"layer bytes")
    path = s3_mount.path / "blobs" / "data"
    names = run_tool(["getfattr", "--absolute-names", "-d", "-m", "-", str(path)]).stdout
    assert "user.s3regfs.url" in names
    url = run_tool(["getfattr", "--absolute-names", "--only-values", "-n", "user.s3regfs.url", str(path)]).stdout
    assert url.startswith("http")
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == b"layer bytes"


def test_url_xattr_errors(s3_mount: Mount) -> None:
    (s3_mount.path / "d").mkdir()
    (s3_mount.path / "d" / "f").write_bytes(b"1")
    with pytest.raises(OSError) as exc:
        os.getxattr(s3_mount.path / "d", "user.s3regfs.url")
    assert exc.value.errno == errno.ENODATA
    for call in (
        lambda: os.setxattr(s3_mount.path / "d" / "f", "user.other", b"1"),
        lambda: os.setxattr(s3_mount.path / "d" / "f", "user.s3regfs.url", b"http://elsewhere"),
        lambda: os.removexattr(s3_mount.path / "d" / "f", "user.s3regfs.url"),
    ):
        with pytest.raises(OSError) as exc:
            call()
        assert exc.value.errno == errno.ENOTSUP
    done = subprocess.run(["setfattr", "-n", "user.x", "-v", "1", str(s3_mount.path / "d" / "f")],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "Operation not supported" in done.stderr


def test_read_only_mount_refuses_every_write_with_erofs(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str, s3_driver_params: dict[str, Any]
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="dir/file", Body=b"content")
    options, env = mounts.s3_options(s3_driver_params)
    mount = mount_factory("s3", options={**options, "ro": True}, env=env)
    f, d = mount.path / "dir" / "file", mount.path / "dir"
    assert f.read_bytes() == b"content"
    writes: dict[str, Callable[[], object]] = {
        "create": lambda: os.open(d / "new", os.O_CREAT | os.O_WRONLY, 0o644),
        "open-write": lambda: os.open(f, os.O_WRONLY),
        "open-rdwr": lambda: os.open(f, os.O_RDWR),
        "truncate": lambda: os.truncate(f, 0),
        "unlink": lambda: os.unlink(f),
        "rename": lambda: os.rename(f, d / "moved"),
        "mkdir": lambda: os.mkdir(d / "sub"),
        "rmdir": lambda: os.rmdir(d),
        "chmod": lambda: os.chmod(f, 0o600),
        "utime": lambda: os.utime(f, (1, 1)),
        "setxattr": lambda: os.setxattr(f, "user.x", b"1"),
    }
    for what, call in writes.items():
        with pytest.raises(OSError) as exc:
            call()
        assert exc.value.errno == errno.EROFS, what
    assert [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]] == ["dir/file"]
    assert client.get_object(Bucket=s3_bucket, Key="dir/file")["Body"].read() == b"content"


def test_close_returns_eio_when_the_upload_fails(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket) as (mount, proxy):
        (mount.path / "saved").write_bytes(b"before")
        fd = os.open(mount.path / "doomed", os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, os.urandom(MiB))
        rule = proxy.add_rule(Rule(mounts.DENIED, op=WRITE_OPS))  # the storage refuses every write from now on
        with pytest.raises(OSError) as exc:
            os.close(fd)
        assert exc.value.errno in (errno.EIO, errno.EACCES)
        assert rule.fired >= 1
        assert mount.proc.poll() is None  # still serving
        assert (mount.path / "saved").read_bytes() == b"before"
        assert mount.unmount() == exitcodes.DATA_LOSS  # reported to the application, and in the exit status
        assert "doomed" in mount.log()
    assert [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]] == ["saved"]


def test_close_returns_eio_when_a_streamed_upload_fails(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket, stream_threshold="5MiB") as (mount, proxy):
        f = open(mount.path / "streamed", "wb", buffering=0)  # noqa: SIM115 - closed below, where it must fail
        write_error = None
        try:
            f.writelines(os.urandom(MiB) for _ in range(12))
            proxy.add_rule(Rule(mounts.DENIED, op=WRITE_OPS))
            f.writelines(os.urandom(MiB) for _ in range(12))
        except OSError as exc:  # a part upload already failed: a later write may say so
            write_error = exc.errno
        with pytest.raises(OSError) as exc:
            f.close()
        assert exc.value.errno in (errno.EIO, errno.EACCES)
        assert write_error in (None, errno.EIO, errno.EACCES)
        assert mount.proc.poll() is None
        mount.unmount()
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=s3_bucket)  # no half-written object
