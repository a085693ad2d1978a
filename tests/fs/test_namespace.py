"""Directories, unlink, rename, the file/directory clash, attributes and statfs (core level)."""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from datetime import UTC, datetime

import pytest

from s3regfs.driver.inmemory import _File
from s3regfs.fs.errors import FsError
from tests.fs.conftest import Mount


def _errno(fn) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(FsError) as info:
        fn()
    return info.value.errno


# -- the root and implied directories ---------------------------------------------------------------


def test_root_is_a_directory_even_on_an_empty_bucket(m: Mount) -> None:
    attr = m.fs.getattr("/")
    assert stat.S_ISDIR(attr.mode) and attr.nlink == 2
    assert m.fs.readdir("/") == []


def test_directories_are_implied_by_keys(m: Mount) -> None:
    m.put("/docker/registry/v2/blobs/sha256/ab/abcd/data", b"blob")
    assert m.names("/") == ["docker"]
    assert stat.S_ISDIR(m.fs.getattr("/docker/registry").mode)
    assert m.names("/docker/registry/v2/blobs/sha256/ab/abcd") == ["data"]
    assert m.fs.getattr("/docker/registry/v2/blobs/sha256/ab/abcd/data").size == 4


def test_attributes_come_from_driver_and_options(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(uid=1234, gid=5678, file_mode=0o640, dir_mode=0o750)
    m.put("/d/f", b"12345")
    info = m.store.stat("/d/f")
    f = m.fs.getattr("/d/f")
    assert (f.mode, f.size, f.uid, f.gid, f.nlink) == (stat.S_IFREG | 0o640, 5, 1234, 5678, 1)
    assert f.mtime == info.mod_time.timestamp()
    d = m.fs.getattr("/d")
    assert (d.mode, d.uid, d.gid) == (stat.S_IFDIR | 0o750, 1234, 5678)
    assert d.mtime == m.fs.mount_time


def test_readdir_of_a_file_is_enotdir_and_of_nothing_enoent(m: Mount) -> None:
    m.put("/f", b"x")
    assert _errno(lambda: m.fs.readdir("/f")) == errno.ENOTDIR
    assert _errno(lambda: m.fs.readdir("/nope")) == errno.ENOENT
    assert _errno(lambda: m.fs.getattr("/nope")) == errno.ENOENT


# -- mkdir / rmdir -----------------------------------------------------------------------------------


def test_mkdir_lives_in_the_mount_until_a_file_is_written(m: Mount) -> None:
    m.fs.mkdir("/new", 0o755)
    assert "new" in m.names("/")
    assert stat.S_ISDIR(m.fs.getattr("/new").mode)
    assert m.fs.readdir("/new") == []
    assert m.store.list("/") == []  # nothing in the bucket yet
    m.fs.mkdir("/new/sub", 0o755)
    m.write_file("/new/sub/f", b"data")
    assert m.store.list("/new/sub") == ["/new/sub/f"]


def test_mkdir_of_existing_name_is_eexist(m: Mount) -> None:
    m.put("/f", b"x")
    m.put("/d/x", b"x")
    assert _errno(lambda: m.fs.mkdir("/f", 0o755)) == errno.EEXIST
    assert _errno(lambda: m.fs.mkdir("/d", 0o755)) == errno.EEXIST
    assert _errno(lambda: m.fs.mkdir("/missing/sub", 0o755)) == errno.ENOENT
    assert _errno(lambda: m.fs.mkdir("/f/sub", 0o755)) == errno.ENOTDIR


def test_rmdir_of_non_empty_is_enotempty(m: Mount) -> None:
    m.put("/d/f", b"x")
    assert _errno(lambda: m.fs.rmdir("/d")) == errno.ENOTEMPTY
    m.fs.mkdir("/e", 0o755)
    m.fs.mkdir("/e/sub", 0o755)
    assert _errno(lambda: m.fs.rmdir("/e")) == errno.ENOTEMPTY
    fh = m.fs.create("/e/sub/pending", os.O_WRONLY | os.O_CREAT, 0o644)
    assert _errno(lambda: m.fs.rmdir("/e/sub")) == errno.ENOTEMPTY
    m.fs.release(fh)
    assert _errno(lambda: m.fs.rmdir("/d/f")) == errno.ENOTDIR
    assert _errno(lambda: m.fs.rmdir("/nope")) == errno.ENOENT


def test_rmdir_of_local_dir_removes_it(m: Mount) -> None:
    m.fs.mkdir("/d", 0o755)
    m.fs.rmdir("/d")
    assert m.names("/") == []
    assert _errno(lambda: m.fs.getattr("/d")) == errno.ENOENT


def test_rmdir_sees_keys_another_writer_added(m: Mount) -> None:
    m.fs.mkdir("/d", 0o755)
    assert m.fs.readdir("/d") == []
    m.put("/d/late", b"x")  # another mount, after our listing was cached
    assert _errno(lambda: m.fs.rmdir("/d")) == errno.ENOTEMPTY


def test_directory_stays_after_its_last_file_is_removed(m: Mount) -> None:
    """rm dir/*; rmdir dir works as on a local filesystem (S3 alone would drop the directory)."""
    m.put("/d/sub/f", b"x")
    m.put("/d/g", b"y")
    m.fs.unlink("/d/sub/f")
    m.fs.unlink("/d/g")
    assert m.names("/d") == ["sub"]
    assert m.fs.readdir("/d/sub") == []
    m.fs.rmdir("/d/sub")
    assert m.names("/") == ["d"]
    m.fs.rmdir("/d")
    assert m.names("/") == []


def test_rmdir_refuses_a_directory_holding_only_unrepresentable_keys(
    m: Mount, caplog: pytest.LogCaptureFixture
) -> None:
    m.store.put_content("/d/has space", b"x")  # the in-memory store takes any key; S3 too
    assert m.fs.readdir("/d") == []
    with caplog.at_level(logging.WARNING):
        assert _errno(lambda: m.fs.rmdir("/d")) == errno.ENOTEMPTY
    assert "cannot be represented" in caplog.text
    assert m.store.list("/d") == ["/d/has space"]


# -- listings ------------------------------------------------------------------------------------------


def test_unrepresentable_keys_are_left_out_with_one_warning_per_directory(
    make_fs,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    m = make_fs(metadata_ttl=0.0)  # no cache: every readdir lists again
    for key in ("/d/ok", "/d/a b", "/d/c~", "/e/x y"):
        m.store.put_content(key, b"x")
    with caplog.at_level(logging.WARNING, logger="s3regfs.fs.listing"):
        assert m.names("/d") == ["ok"]
        assert m.names("/d") == ["ok"]
        assert m.names("/e") == []
    warnings = [r for r in caplog.records if "cannot be represented" in r.getMessage()]
    assert len(warnings) == 2
    assert {w.getMessage().split(":")[0] for w in warnings} == {"/d", "/e"}


def test_placeholder_keys_are_hidden(m: Mount) -> None:
    m.store.put_content("/d/", b"")  # an "x/" folder placeholder made by another tool
    m.store.put_content("/d/f", b"1")
    assert m.names("/d") == ["f"]


def test_file_and_directory_with_the_same_name_directory_wins(
    m: Mount, caplog: pytest.LogCaptureFixture
) -> None:
    m.put("/x", b"file")
    m.put("/x/child", b"child")
    with caplog.at_level(logging.WARNING):
        entries = dict(m.fs.readdir("/"))
    assert list(entries) == ["x"] and stat.S_ISDIR(entries["x"].mode)
    assert "share a name" in caplog.text
    assert stat.S_ISDIR(m.fs.getattr("/x").mode)
    assert m.names("/x") == ["child"]
    # unlink of the name never deletes the directory's content (the driver's delete is recursive)
    assert _errno(lambda: m.fs.unlink("/x")) == errno.EISDIR
    assert m.store.get_content("/x/child") == b"child"


def test_unlink_checks_for_a_same_named_directory_when_not_listed(m: Mount) -> None:
    m.put("/y", b"file")
    m.put("/y/child", b"child")
    m.driver.reset()
    # an uncached lookup asks the driver's stat, which reports the file ...
    assert not stat.S_ISDIR(m.fs.getattr("/y").mode)
    # ... but a destructive operation checks first and refuses
    assert _errno(lambda: m.fs.unlink("/y")) == errno.EISDIR
    assert m.store.get_content("/y/child") == b"child"
    assert m.store.get_content("/y") == b"file"
    # rename uses the driver's move, which touches the one key: the directory stays
    m.fs.rename("/y", "/z")
    assert m.store.get_content("/z") == b"file"
    assert m.store.get_content("/y/child") == b"child"


def test_readdir_lists_100000_entries(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs()
    now = datetime.now(UTC)
    for i in range(100_000):  # straight into the store: put_content 100k times is slow-ish
        m.store._files[f"/big/f{i:06d}"] = _File(b"", now)
    entries = m.fs.readdir("/big")
    assert len(entries) == 100_000
    assert entries[0][0] == "f000000" and entries[-1][0] == "f099999"
    m.driver.reset()
    for name, _ in entries[::100]:
        m.fs.getattr("/big/" + name)
    assert m.driver.count() == 0


# -- unlink --------------------------------------------------------------------------------------------


def test_unlink_deletes_the_key(m: Mount) -> None:
    m.put("/f", b"x")
    m.put("/f-sibling", b"y")
    m.fs.unlink("/f")
    assert m.store.list("/") == ["/f-sibling"]
    assert _errno(lambda: m.fs.getattr("/f")) == errno.ENOENT
    assert _errno(lambda: m.fs.unlink("/f")) == errno.ENOENT
    m.fs.mkdir("/d", 0o755)
    assert _errno(lambda: m.fs.unlink("/d")) == errno.EISDIR


# -- rename --------------------------------------------------------------------------------------------


def test_rename_file_uses_move_and_replaces_the_target(m: Mount) -> None:
    m.put("/a", b"new")
    m.put("/b", b"old")
    m.driver.reset()
    m.fs.rename("/a", "/b")
    assert m.driver.count("move") == 1
    assert m.store.list("/") == ["/b"]
    assert m.read_file("/b") == b"new"
    assert _errno(lambda: m.fs.getattr("/a")) == errno.ENOENT


def test_rename_noreplace_and_exchange(m: Mount) -> None:
    m.put("/a", b"1")
    m.put("/b", b"2")
    assert _errno(lambda: m.fs.rename("/a", "/b", 1)) == errno.EEXIST
    assert _errno(lambda: m.fs.rename("/a", "/b", 2)) == errno.EINVAL
    m.fs.rename("/a", "/c", 1)
    assert sorted(m.store.list("/")) == ["/b", "/c"]


def test_rename_errors(m: Mount) -> None:
    m.put("/f", b"1")
    m.put("/d/x", b"2")
    m.put("/e/y", b"3")
    assert _errno(lambda: m.fs.rename("/nope", "/x")) == errno.ENOENT
    assert _errno(lambda: m.fs.rename("/f", "/d")) == errno.EISDIR
    assert _errno(lambda: m.fs.rename("/d", "/f")) == errno.ENOTDIR
    assert _errno(lambda: m.fs.rename("/d", "/e")) == errno.ENOTEMPTY
    assert _errno(lambda: m.fs.rename("/d", "/d/sub")) == errno.EINVAL
    assert _errno(lambda: m.fs.rename("/f", "/missing/f")) == errno.ENOENT
    m.fs.rename("/f", "/f")  # same name: nothing happens
    assert m.store.get_content("/f") == b"1"


def test_rename_directory_moves_every_key(m: Mount) -> None:
    for key in ("/d/a", "/d/sub/b", "/d/sub/deep/c", "/d-sibling/z"):
        m.put(key, key.encode())
    m.fs.mkdir("/d/empty", 0o755)
    assert m.names("/d") == ["a", "empty", "sub"]
    m.fs.rename("/d", "/moved")
    assert sorted(m.store._files) == [
        "/d-sibling/z",
        "/moved/a",
        "/moved/sub/b",
        "/moved/sub/deep/c",
    ]
    assert m.names("/") == ["d-sibling", "moved"]
    assert m.names("/moved") == ["a", "empty", "sub"]
    assert m.read_file("/moved/sub/deep/c") == b"/d/sub/deep/c"
    assert _errno(lambda: m.fs.getattr("/d")) == errno.ENOENT


def test_rename_directory_over_empty_directory(m: Mount) -> None:
    m.put("/d/a", b"1")
    m.fs.mkdir("/e", 0o755)
    m.fs.rename("/d", "/e")
    assert m.names("/e") == ["a"]
    assert m.names("/") == ["e"]


def test_rename_local_directory(m: Mount) -> None:
    m.fs.mkdir("/l", 0o755)
    m.fs.mkdir("/l/sub", 0o755)
    m.fs.rename("/l", "/m")
    assert m.names("/") == ["m"]
    assert m.names("/m") == ["sub"]


def test_rename_directory_failure_is_reported_not_silent(m: Mount) -> None:
    for i in range(5):
        m.put(f"/d/f{i}", b"x")
    m.faulty.fail("move", after=2)
    assert _errno(lambda: m.fs.rename("/d", "/e")) == errno.EIO
    # nothing is lost: every key is under one of the two names
    keys = sorted(m.store._files)
    assert len(keys) == 5
    assert {k.rsplit("/", 1)[1] for k in keys} == {f"f{i}" for i in range(5)}


# -- chmod / chown / utimens ------------------------------------------------------------------------------


def test_chmod_chown_utimens_succeed_and_are_kept_in_memory(m: Mount) -> None:
    m.put("/f", b"x")
    m.fs.chmod("/f", 0o600)
    m.fs.chown("/f", 42, 43)
    m.fs.utimens("/f", (1.0, 1_000_000.0))
    attr = m.fs.getattr("/f")
    assert (stat.S_IMODE(attr.mode), attr.uid, attr.gid, attr.mtime) == (0o600, 42, 43, 1_000_000.0)
    assert dict(m.fs.readdir("/"))["f"].mtime == 1_000_000.0
    m.fs.chown("/f", -1, 44)
    assert (m.fs.getattr("/f").uid, m.fs.getattr("/f").gid) == (42, 44)
    # nothing of it reached the bucket: the object is unchanged
    assert m.store.get_content("/f") == b"x"


def test_overrides_vanish_when_the_object_changes(m: Mount) -> None:
    m.put("/f", b"x")
    m.fs.utimens("/f", (1.0, 5.0))
    assert m.fs.getattr("/f").mtime == 5.0
    m.put("/f", b"changed by another writer")
    m.clock.advance(m.fs.options.metadata_ttl + 1)
    attr = m.fs.getattr("/f")
    assert attr.size == 25 and attr.mtime != 5.0


def test_rsync_style_times_survive_write_close_utimens_rename(m: Mount) -> None:
    """rsync -a: write a temp file, close, set its times, rename it over the target."""
    m.write_file("/.f.tmp123", b"payload")
    m.fs.utimens("/.f.tmp123", (1.0, 1_500_000_000.0))
    m.fs.chmod("/.f.tmp123", 0o600)
    m.fs.rename("/.f.tmp123", "/f")
    m.clock.advance(m.fs.options.metadata_ttl + 1)  # the cache now asks the driver again
    attr = m.fs.getattr("/f")
    assert (attr.mtime, stat.S_IMODE(attr.mode), attr.size) == (1_500_000_000.0, 0o600, 7)
    assert m.names("/") == ["f"]


def test_utimens_on_directory_and_open_file(m: Mount) -> None:
    m.fs.mkdir("/d", 0o755)
    m.fs.utimens("/d", (0.0, 77.0))
    assert m.fs.getattr("/d").mtime == 77.0
    fh = m.fs.create("/d/f", os.O_WRONLY | os.O_CREAT, 0o644)
    m.fs.write(fh, 0, b"abc")
    m.fs.utimens("/d/f", (0.0, 88.0))  # cp -p: futimens before close
    m.fs.flush(fh)
    m.fs.release(fh)
    m.clock.advance(m.fs.options.metadata_ttl + 1)
    assert m.fs.getattr("/d/f").mtime == 88.0


# -- statfs -----------------------------------------------------------------------------------------------


def test_statfs_values(m: Mount) -> None:
    st = m.fs.statfs()
    assert st["f_bsize"] == 4096 and st["f_frsize"] == 4096 and st["f_namemax"] == 255
    assert st["f_blocks"] >= 1 << 30 and st["f_bfree"] == st["f_blocks"] and st["f_files"] > 0
    m.driver.reset()
    m.fs.statfs()
    assert m.driver.count() == 0


def test_create_and_mkdir_modes_are_not_kept(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(file_mode=0o644, dir_mode=0o755)
    fh = m.fs.create("/f", os.O_WRONLY | os.O_CREAT, 0o600)
    m.fs.release(fh)
    m.fs.mkdir("/d", 0o700)
    assert stat.S_IMODE(m.fs.getattr("/f").mode) == 0o644
    assert stat.S_IMODE(m.fs.getattr("/d").mode) == 0o755


def test_mtime_after_an_own_upload_then_the_servers(m: Mount) -> None:
    before = time.time()
    m.write_file("/f", b"x")
    assert before <= m.fs.getattr("/f").mtime <= time.time()
    m.clock.advance(m.fs.options.metadata_ttl + 1)
    assert m.fs.getattr("/f").mtime == m.store.stat("/f").mod_time.timestamp()


def test_mkdir_is_not_seen_by_another_mount(make_fs) -> None:  # type: ignore[no-untyped-def]
    first = make_fs()
    first.fs.mkdir("/only-here", 0o755)
    second = make_fs(store=first.store)
    assert second.names("/") == []
    assert first.names("/") == ["only-here"]


def test_the_root_cannot_be_removed_or_renamed(m: Mount) -> None:
    assert _errno(lambda: m.fs.rmdir("/")) == errno.EBUSY
    assert _errno(lambda: m.fs.rename("/", "/x")) == errno.EBUSY
