"""The mfusepy adapter without a mount: results converted, every failure an errno, nothing else escapes.

Runs S3RegOperations on the real core over the in-memory driver; faults come
from FaultyDriver.  (Needs libfuse only to import mfusepy.)
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import mfusepy
import pytest
from mfusepy import FuseOSError

from s3regfs.driver.checked import CheckedDriver
from s3regfs.driver.errors import DriverError
from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.fs import statpack
from s3regfs.fs.core import Attr, RegistryFilesystem
from s3regfs.fs.operations import BLOCK_SIZE, UNKNOWN_INO, S3RegOperations, stat_dict
from s3regfs.fs.options import FsOptions
from tests.support.faulty import FaultyDriver


@pytest.fixture
def faulty() -> FaultyDriver:
    return FaultyDriver(CheckedDriver(InMemoryDriver()))


@pytest.fixture
def ops(faulty: FaultyDriver, tmp_path: Path) -> Iterator[S3RegOperations]:
    core = RegistryFilesystem(faulty, FsOptions(cache_dir=str(tmp_path / "cache")))
    yield S3RegOperations(core)
    core.shutdown()


def _errno(call: object, *args: object) -> int:
    with pytest.raises(FuseOSError) as exc:
        call(*args)  # type: ignore[operator]
    return exc.value.errno


def test_stat_dict_converts_every_field() -> None:
    st = stat_dict(Attr(mode=stat.S_IFREG | 0o640, size=1025, mtime=1_700_000_000.25, nlink=1, uid=7, gid=8))
    assert st["st_mode"] == stat.S_IFREG | 0o640 and st["st_size"] == 1025 and st["st_nlink"] == 1
    assert (st["st_uid"], st["st_gid"]) == (7, 8)
    assert st["st_mtime"] == st["st_atime"] == st["st_ctime"] == 1_700_000_000_250_000_000  # nanoseconds
    assert st["st_blocks"] == 3 and st["st_blksize"] == BLOCK_SIZE


def test_a_file_through_the_adapter(ops: S3RegOperations) -> None:
    fh = ops.create("/f", 0o644, os.O_WRONLY | os.O_CREAT)
    assert ops.write("/f", b"hello", 0, fh) == 5
    ops.flush("/f", fh)
    ops.release("/f", fh)
    fh = ops.open("/f", os.O_RDONLY)
    assert ops.read("/f", 100, 0, fh) == b"hello"
    assert ops.getattr("/f", fh)["st_size"] == 5
    ops.release("/f", fh)
    assert ops.getattr("/f")["st_mode"] & stat.S_IFREG


def test_readdir_gives_attributes_and_resumes_at_an_offset(ops: S3RegOperations) -> None:
    ops.mkdir("/d", 0o755)
    for name in ("a", "b", "c"):
        fh = ops.create(f"/d/{name}", 0o644, os.O_WRONLY | os.O_CREAT)
        ops.write(f"/d/{name}", name.encode() * 3, 0, fh)
        ops.release(f"/d/{name}", fh)
    dh = ops.opendir("/d")
    entries = list(ops.readdir_plus("/d", 0, dh))
    assert [n for n, _ in entries] == [b".", b"..", b"a", b"b", b"c"]
    assert entries[0][1].st_ino == UNKNOWN_INO and stat.S_ISDIR(entries[1][1].st_mode)
    assert all(st.st_size == 3 and stat.S_ISREG(st.st_mode) for _, st in entries[2:])
    assert [n for n, _ in ops.readdir_plus("/d", 3, dh)] == [b"b", b"c"]  # the kernel resumes here (offset 3)
    ops.releasedir("/d", dh)
    assert list(ops.readdir_plus("/d", 3, dh)) == []


def test_the_operation_hook_hears_a_listing_as_readdir(ops: S3RegOperations) -> None:
    """The metrics' ``operation`` label of the kernel's READDIR(PLUS) stays ``readdir``."""
    heard: list[tuple[str, int]] = []
    ops._on_operation = lambda name, err: heard.append((name, err))
    ops.readdir_plus("/", 0, ops.opendir("/"))
    assert heard == [("opendir", 0), ("readdir", 0)]


@pytest.mark.parametrize(
    "attr",
    [
        Attr(mode=stat.S_IFREG | 0o640, size=1025, mtime=1_700_000_000.25, nlink=1, uid=7, gid=8),
        Attr(mode=stat.S_IFDIR | 0o755, size=0, mtime=0.0, nlink=2, uid=0, gid=0),
        Attr(mode=stat.S_IFREG | 0o600, size=(1 << 40) + 3, mtime=1_765_000_000.9999999999, nlink=0, uid=65534, gid=65534),
        Attr(mode=stat.S_IFREG | 0o644, size=0, mtime=-1.5, nlink=1, uid=1, gid=2),
    ],
)
def test_a_packed_stat_is_byte_for_byte_what_mfusepy_builds_from_the_stat_dict(attr: Attr) -> None:
    """readdir's packed ``struct stat`` (s3regfs/fs/statpack.py) against mfusepy's own path."""
    expected = mfusepy.c_stat()
    mfusepy.set_st_attrs(expected, stat_dict(attr), use_ns=True)
    assert statpack.PACKER is not None  # the layout of this platform is one the packer knows
    assert bytes(statpack.packed(attr)) == bytes(expected)


def test_errors_become_errnos(ops: S3RegOperations) -> None:
    assert _errno(ops.getattr, "/missing") == errno.ENOENT
    assert _errno(ops.open, "/missing", os.O_RDONLY) == errno.ENOENT
    assert _errno(ops.mkdir, "/bad name", 0o755) == errno.EINVAL
    assert _errno(ops.create, "/" + "x" * 256, 0o644, os.O_WRONLY | os.O_CREAT) == errno.ENAMETOOLONG
    ops.mkdir("/d", 0o755)
    fh = ops.create("/d/f", 0o644, os.O_WRONLY | os.O_CREAT)
    ops.release("/d/f", fh)
    assert _errno(ops.rmdir, "/d") == errno.ENOTEMPTY
    assert _errno(ops.create, "/d/f", 0o644, os.O_WRONLY | os.O_CREAT | os.O_EXCL) == errno.EEXIST
    assert _errno(ops.rename, "/d/f", "/d", 0) in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST)


def test_rename_flags_reach_the_core(ops: S3RegOperations) -> None:
    for name in ("/a", "/b"):
        ops.release(name, ops.create(name, 0o644, os.O_WRONLY | os.O_CREAT))
    assert _errno(ops.rename, "/a", "/b", 1) == errno.EEXIST  # RENAME_NOREPLACE
    ops.rename("/a", "/c", 1)
    assert _errno(ops.getattr, "/a") == errno.ENOENT


def test_driver_failures_are_eio_and_logged(
    ops: S3RegOperations, faulty: FaultyDriver, caplog: pytest.LogCaptureFixture
) -> None:
    faulty.fail("stat", DriverError(RuntimeError("connection reset by peer")), times=None)
    faulty.fail("list_info", DriverError(RuntimeError("connection reset by peer")), times=None)
    faulty.fail("list", DriverError(RuntimeError("connection reset by peer")), times=None)
    with caplog.at_level(logging.WARNING):
        assert _errno(ops.getattr, "/somewhere") == errno.EIO
    assert "connection reset by peer" in caplog.text


def test_an_unexpected_exception_is_eio_with_a_traceback(
    ops: S3RegOperations, faulty: FaultyDriver, caplog: pytest.LogCaptureFixture
) -> None:
    for method in ("stat", "list", "list_info"):
        faulty.fail(method, ZeroDivisionError("a bug"), times=None)
    with caplog.at_level(logging.ERROR):
        assert _errno(ops.getattr, "/f") == errno.EIO  # never mfusepy's EINVAL
    assert "ZeroDivisionError" in caplog.text and "Traceback" in caplog.text
