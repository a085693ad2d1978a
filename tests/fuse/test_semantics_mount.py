"""docs/SEMANTICS.md claims that depend on the kernel, checked through a real mount.

The core's own tests (tests/fs) check each claim on the core; these check
that the kernel path (dup'd descriptors, mmap, renameat2 flags, readdir
offsets, attribute caching, ...) delivers the same behaviour to a user.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount, run_tool

MiB = 1024 * 1024
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)


def _renameat2(old: Path, new: Path, flags: int) -> None:
    AT_FDCWD = -100
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _object(server: LocalS3Server, bucket: str, key: str) -> bytes | None:
    client = server.client()
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


# -- close, fsync, mmap: when the bucket gets the data ---------------------------------------


def test_first_close_of_dupd_descriptors_commits_and_later_writes_commit_again(
    s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    fd = os.open(s3_mount.path / "f", os.O_CREAT | os.O_RDWR, 0o644)
    other = os.dup(fd)
    os.write(fd, b"first")
    assert _object(s3_server, s3_bucket, "f") is None  # nothing in the bucket before a close
    os.close(fd)  # FUSE flush: the first close commits
    assert _object(s3_server, s3_bucket, "f") == b"first"
    os.write(other, b"+second")
    os.close(other)
    assert _object(s3_server, s3_bucket, "f") == b"first+second"


def test_fsync_may_be_called_repeatedly_and_each_saves_what_was_written(
    s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    with open(s3_mount.path / "journal", "wb", buffering=0) as f:
        for i in range(3):
            f.write(b"entry%d\n" % i)
            os.fsync(f.fileno())
            os.fsync(f.fileno())
            assert _object(s3_server, s3_bucket, "journal") == b"".join(b"entry%d\n" % j for j in range(i + 1))
        os.fdatasync(f.fileno())


def test_writes_through_a_shared_mmap_are_uploaded(s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str) -> None:
    path = s3_mount.path / "mapped"
    path.write_bytes(b"a" * 8192)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 8192) as m:
        m[100:105] = b"HELLO"
        m.flush()
    expected = b"a" * 100 + b"HELLO" + b"a" * (8192 - 105)
    assert path.read_bytes() == expected
    assert _object(s3_server, s3_bucket, "mapped") == expected


def test_the_size_written_so_far_shows_before_close(s3_mount: Mount) -> None:
    with open(s3_mount.path / "growing", "wb", buffering=0) as f:
        for i in range(1, 4):
            f.write(b"x" * 100_000)
            assert os.stat(s3_mount.path / "growing").st_size == i * 100_000
            assert os.fstat(f.fileno()).st_size == i * 100_000
            assert ("growing", i * 100_000) in [(e.name, e.stat().st_size) for e in os.scandir(s3_mount.path)]


# -- rename ------------------------------------------------------------------------------------


def test_renameat2_noreplace_is_eexist_and_exchange_is_einval(mnt: Path) -> None:
    (mnt / "a").write_bytes(b"A")
    (mnt / "b").write_bytes(b"B")
    with pytest.raises(OSError) as exc:
        _renameat2(mnt / "a", mnt / "b", RENAME_NOREPLACE)
    assert exc.value.errno == errno.EEXIST
    with pytest.raises(OSError) as exc:
        _renameat2(mnt / "a", mnt / "b", RENAME_EXCHANGE)
    assert exc.value.errno == errno.EINVAL
    assert (mnt / "a").read_bytes() == b"A" and (mnt / "b").read_bytes() == b"B"
    _renameat2(mnt / "a", mnt / "c", RENAME_NOREPLACE)
    assert sorted(os.listdir(mnt)) == ["b", "c"]


def test_mv_n_does_not_clobber(mnt: Path) -> None:
    (mnt / "a").write_bytes(b"A")
    (mnt / "b").write_bytes(b"B")
    run_tool(["mv", "-n", str(mnt / "a"), str(mnt / "b")])
    assert (mnt / "b").read_bytes() == b"B" and (mnt / "a").read_bytes() == b"A"


def test_handles_on_a_replaced_target_keep_reading_the_old_content(mnt: Path) -> None:
    (mnt / "target").write_bytes(b"old" * 1000)
    (mnt / "tmp").write_bytes(b"new" * 1000)
    with open(mnt / "target", "rb") as old:
        os.rename(mnt / "tmp", mnt / "target")
        assert old.read() == b"old" * 1000
    assert (mnt / "target").read_bytes() == b"new" * 1000


# -- reading while writing -----------------------------------------------------------------------


def test_a_reader_while_a_writer_writes_the_same_file(mnt: Path) -> None:
    """Another descriptor reads the file being written: exactly what was written so far."""
    chunks = [os.urandom(256 * 1024 + i) for i in range(8)]
    with open(mnt / "shared", "wb", buffering=0) as w:
        for i, chunk in enumerate(chunks):
            w.write(chunk)
            with open(mnt / "shared", "rb") as r:
                assert r.read() == b"".join(chunks[: i + 1])
    assert (mnt / "shared").read_bytes() == b"".join(chunks)


def test_shell_redirection_truncates_an_existing_file(mnt: Path) -> None:
    (mnt / "f").write_bytes(b"a long old content\n" * 100)
    run_tool(["sh", "-c", f"echo short > {mnt / 'f'}"])
    assert (mnt / "f").read_bytes() == b"short\n"


# -- listings ----------------------------------------------------------------------------------------


def test_a_large_directory_lists_completely(mnt: Path) -> None:
    """1500 entries: dozens of readdir requests, each resumed at the kernel's offset."""
    names = {f"entry-{i:05d}" for i in range(1500)}
    for name in names:
        os.close(os.open(mnt / name, os.O_CREAT | os.O_WRONLY, 0o644))
    assert set(os.listdir(mnt)) == names
    listing = run_tool(["ls", "-la", str(mnt)]).stdout.splitlines()
    assert len(listing) == 1 + 2 + 1500  # total, ., .., entries
    assert run_tool(["find", str(mnt), "-type", "f"]).stdout.count("\n") == 1500


def test_rm_r_of_a_tree(mnt: Path) -> None:
    for d in ("a", "a/b", "a/b/c"):
        (mnt / d).mkdir()
        (mnt / d / "f").write_bytes(b"1")
    run_tool(["rm", "-r", str(mnt / "a")])
    assert os.listdir(mnt) == []


# -- the bucket as others see it ----------------------------------------------------------------------


def test_other_writers_changes_show_within_the_ttl_plus_the_kernel_cache(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str, s3_driver_params: dict[str, Any]
) -> None:
    options, env = mounts.s3_options(s3_driver_params)
    mount = mount_factory("s3", options={**options, "metadata_ttl": 1}, env=env)
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="dir/one", Body=b"1")
    assert os.listdir(mount.path / "dir") == ["one"] and os.stat(mount.path / "dir/one").st_size == 1
    client.put_object(Bucket=s3_bucket, Key="dir/two", Body=b"22")
    client.put_object(Bucket=s3_bucket, Key="dir/one", Body=b"111")
    changed = time.monotonic()
    while sorted(os.listdir(mount.path / "dir")) != ["one", "two"] or os.stat(mount.path / "dir/one").st_size != 3:
        assert time.monotonic() - changed < 1 + 1 + 1.5, "not visible within metadata_ttl + kernel attr cache"
        time.sleep(0.05)
    assert (mount.path / "dir/one").read_bytes() == b"111"


def test_a_second_mount_sees_what_the_first_wrote(
    mount_factory: Callable[..., Mount], s3_driver_params: dict[str, Any]
) -> None:
    options, env = mounts.s3_options(s3_driver_params)
    writer = mount_factory("s3", options=options, env=env)
    reader = mount_factory("s3", options={**options, "metadata_ttl": 1}, env=env)
    assert os.listdir(reader.path) == []
    data = os.urandom(3 * MiB)
    (writer.path / "blob").write_bytes(data)
    deadline = time.monotonic() + 5
    while not (reader.path / "blob").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (reader.path / "blob").read_bytes() == data


def test_unrepresentable_keys_are_left_out_and_logged(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str, s3_driver_params: dict[str, Any]
) -> None:
    options, env = mounts.s3_options(s3_driver_params)
    mount = mount_factory("s3", options={**options, "log_level": "debug"}, env=env)
    client = s3_server.client()
    for key in ("d/good", "d/with space", "d/sha256:x", "d/ok.txt"):
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"1")
    assert sorted(os.listdir(mount.path / "d")) == ["good", "ok.txt"]
    assert run_tool(["find", str(mount.path)]).stdout.count("\n") == 4  # root, d, and the two files
    log = mount.log()
    assert "with space" in log and "sha256:x" in log  # named in the log (the s3 driver logs them at DEBUG)


def test_an_empty_mkdir_is_forgotten_at_remount_a_written_one_is_not(
    mount_factory: Callable[..., Mount], s3_driver_params: dict[str, Any]
) -> None:
    options, env = mounts.s3_options(s3_driver_params)
    first = mount_factory("s3", options=options, env=env, name="m")
    (first.path / "empty").mkdir()
    (first.path / "full").mkdir()
    (first.path / "full" / "f").write_bytes(b"1")
    assert first.unmount() == 0
    again = mount_factory("s3", options=options, env=env, name="m")
    assert os.listdir(again.path) == ["full"]
