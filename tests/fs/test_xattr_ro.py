"""xattrs (the signed URL), read-only mounts."""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest

from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.driver.wrapper import DriverWrapper
from s3regfs.fs.core import URL_XATTR
from s3regfs.fs.errors import FsError
from tests.fs.conftest import Mount

PROBES = ("security.capability", "system.posix_acl_access", "system.posix_acl_default", "security.selinux")


class Signing(DriverWrapper):
    """A driver whose redirect_url signs locally (as S3 presigning and CloudFront do)."""

    def __init__(self, inner: InMemoryDriver) -> None:
        super().__init__(inner)
        self.serial = 0

    def redirect_url(self, method: str, path: str, **kwargs: Any) -> str | None:
        self.serial += 1
        return f"https://cdn.example{path}?expires={kwargs.get('expires_in')}&n={self.serial}"


def _errno(fn) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(FsError) as info:
        fn()
    return info.value.errno


@pytest.fixture
def signed(make_fs) -> Mount:  # type: ignore[no-untyped-def]
    store = InMemoryDriver()
    m = make_fs(store=store, url_duration=60.0)
    m.faulty.inner = Signing(store)  # put the signer below the counting/faulty wrappers
    return m


def test_url_xattr_on_a_file_is_fresh_each_time(signed: Mount) -> None:
    signed.put("/blob", b"x")
    first = signed.fs.getxattr("/blob", URL_XATTR)
    second = signed.fs.getxattr("/blob", URL_XATTR)
    assert first.startswith(b"https://cdn.example/blob?expires=60.0") and first != second
    assert signed.fs.listxattr("/blob") == [URL_XATTR]


def test_url_xattr_costs_at_most_the_stat(signed: Mount) -> None:
    signed.put("/d/blob", b"x")
    signed.driver.reset()
    signed.fs.getxattr("/d/blob", URL_XATTR)
    assert set(signed.driver.snapshot()) <= {"stat", "redirect_url"}
    assert signed.driver.count("stat") <= 1
    signed.driver.reset()
    signed.fs.getxattr("/d/blob", URL_XATTR)  # cached: only the local signing
    assert signed.driver.snapshot() == {"redirect_url": 1}


def test_directories_and_unknown_names_have_no_data(signed: Mount) -> None:
    signed.put("/d/f", b"x")
    assert _errno(lambda: signed.fs.getxattr("/d", URL_XATTR)) == errno.ENODATA
    assert signed.fs.listxattr("/d") == []
    assert signed.fs.listxattr("/") == []
    assert _errno(lambda: signed.fs.getxattr("/d/f", "user.other")) == errno.ENODATA
    assert _errno(lambda: signed.fs.getxattr("/missing", URL_XATTR)) == errno.ENOENT


def test_acl_and_security_probes_are_answered_locally(signed: Mount) -> None:
    """Not ENODATA: ``ls -l`` takes ENOTSUP as "this device has none" and stops asking for every file."""
    signed.driver.reset()
    for name in PROBES + ("trusted.overlay.opaque",):
        for path in ("/", "/anything", "/not/even/there"):
            assert _errno(lambda p=path, n=name: signed.fs.getxattr(p, n)) == errno.ENOTSUP
    assert signed.driver.count() == 0


def test_set_and_remove_are_not_supported(signed: Mount) -> None:
    signed.put("/f", b"x")
    assert _errno(lambda: signed.fs.setxattr("/f", "user.x", b"1", 0)) == errno.ENOTSUP
    assert _errno(lambda: signed.fs.removexattr("/f", URL_XATTR)) == errno.ENOTSUP


def test_an_unsaved_file_has_no_url(signed: Mount) -> None:
    fh = signed.fs.create("/new", os.O_WRONLY | os.O_CREAT, 0o644)
    signed.fs.write(fh, 0, b"x")
    assert _errno(lambda: signed.fs.getxattr("/new", URL_XATTR)) == errno.ENODATA
    assert signed.fs.listxattr("/new") == []
    signed.fs.flush(fh)
    assert signed.fs.getxattr("/new", URL_XATTR).startswith(b"https://")
    signed.fs.release(fh)


def test_no_redirect_means_no_data(m: Mount) -> None:
    m.put("/f", b"x")  # the in-memory driver has no URLs
    assert _errno(lambda: m.fs.getxattr("/f", URL_XATTR)) == errno.ENODATA
    assert m.fs.listxattr("/f") == []


# -- read-only ---------------------------------------------------------------------------------------------


def test_read_only_mount_refuses_every_change_with_erofs(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(read_only=True)
    m.put("/f", b"data")
    m.put("/d/g", b"x")
    changes = [
        lambda: m.fs.create("/new", os.O_WRONLY | os.O_CREAT, 0o644),
        lambda: m.fs.open("/f", os.O_WRONLY),
        lambda: m.fs.open("/f", os.O_RDWR),
        lambda: m.fs.open("/f", os.O_RDONLY | os.O_TRUNC),
        lambda: m.fs.mkdir("/e", 0o755),
        lambda: m.fs.rmdir("/d"),
        lambda: m.fs.unlink("/f"),
        lambda: m.fs.rename("/f", "/g"),
        lambda: m.fs.truncate("/f", 0),
        lambda: m.fs.chmod("/f", 0o600),
        lambda: m.fs.chown("/f", 1, 1),
        lambda: m.fs.utimens("/f", None),
    ]
    for change in changes:
        assert _errno(change) == errno.EROFS
    assert m.read_file("/f") == b"data"
    assert m.names("/") == ["d", "f"]
    assert m.driver.count("put_content", "writer", "delete", "move") == 0
