"""Reads: readahead growth, random reads, the memory budget, never wrong bytes, the data cache."""

from __future__ import annotations

import errno
import logging
import os
import random
import threading

import pytest

from s3regfs.driver.errors import DriverError, ObjectChangedError
from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.fs.errors import FsError, to_errno
from s3regfs.fs.readahead import GROWTH
from tests.fs.conftest import Mount

KiB = 1024
MiB = 1024 * KiB
BLOB = "/docker/registry/v2/blobs/sha256/ab/" + "ab" * 32 + "/data"


def _payload(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def _small_readahead(**extra: object) -> dict[str, object]:
    opts: dict[str, object] = {
        "readahead_min": 64 * KiB,
        "readahead_max": 1 * MiB,
        "read_part_size": 256 * KiB,
    }
    opts.update(extra)
    return opts


def test_sequential_reads_grow_the_window_and_fetch_ahead_in_parts(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead())
    data = _payload(8 * MiB)
    m.put("/big", data)
    fh = m.fs.open("/big", os.O_RDONLY)
    m.driver.reset()
    windows = []
    out = bytearray()
    while len(out) < len(data):
        out += m.fs.read(fh, len(out), 128 * KiB)
        windows.append(m.fs._handles.get(fh).reader.window)  # type: ignore[union-attr]
    m.fs.release(fh)
    assert bytes(out) == data
    assert windows == sorted(windows) and windows[0] <= GROWTH * 64 * KiB < 1 * MiB and windows[-1] == 1 * MiB
    lengths = [length for _, _, length in m.driver.ranges]
    assert max(lengths) == 256 * KiB  # parts of the window, never more
    assert sum(lengths) == len(data)  # every byte fetched exactly once
    assert len(lengths) < len(data) // (128 * KiB)  # fewer requests than the application's reads


def test_a_sequential_reader_keeps_its_window_full_with_whole_parts(make_fs) -> None:  # type: ignore[no-untyped-def]
    """At the largest window, each refill asks for whole ``read_part_size`` parts (a shorter
    request only at the end of the file: a short part costs a round trip of its own) as soon as
    the reader is a part into the window, so at least window − part bytes are always fetched or in
    flight ahead of it (docs/PERFORMANCE.md "Cold sequential read: the pipeline kept full")."""
    m = make_fs(**_small_readahead())
    data = _payload(8 * MiB + 100 * KiB)
    m.put("/big", data)
    fh = m.fs.open("/big", os.O_RDONLY)
    m.driver.reset()
    reader = None
    out = bytearray()
    ahead = []
    while len(out) < len(data):
        out += m.fs.read(fh, len(out), 96 * KiB)
        reader = m.fs._handles.get(fh).reader  # type: ignore[union-attr]
        if reader.window == 1 * MiB and reader.fetched_to < len(data):
            ahead.append(reader.fetched_to - len(out))
    m.fs.release(fh)
    assert bytes(out) == data
    assert ahead and min(ahead) >= 1 * MiB - 256 * KiB  # the window, less one part, always ahead
    requests = sorted((offset, length) for _, offset, length in m.driver.ranges)
    first_whole = next(i for i, (_, length) in enumerate(requests) if length == 256 * KiB)
    assert [length for offset, length in requests[first_whole:] if offset + length < len(data)] == [256 * KiB] * (
        len(requests) - first_whole - 1
    )
    assert sum(length for _, length in requests) == len(data)  # every byte fetched exactly once


def test_reads_within_one_fetched_part_are_views_of_it_and_reads_across_parts_are_whole(make_fs) -> None:  # type: ignore[no-untyped-def]
    """The window's parts are served as views (the FUSE adapter copies them once into libfuse's
    buffer, docs/PERFORMANCE.md "CPU per byte"); a read across two parts joins them."""
    m = make_fs(**_small_readahead())
    data = _payload(2 * MiB)
    m.put("/big", data)
    fh = m.fs.open("/big", os.O_RDONLY)
    m.driver.reset()
    reads = [m.fs.read(fh, offset, 100 * KiB) for offset in range(0, len(data), 100 * KiB)]
    m.fs.release(fh)
    assert b"".join(reads) == data
    parts = sorted(offset for _, offset, _ in m.driver.ranges)
    views = [r for r in reads if isinstance(r, memoryview)]
    assert len(views) >= len(reads) - len(parts)  # every read but those across a part's end
    assert any(len(view.obj) > len(view) for view in views)  # type: ignore[arg-type]  # of a larger part


def test_random_reads_fetch_only_what_they_need(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead())
    data = _payload(4 * MiB)
    m.put("/big", data)
    fh = m.fs.open("/big", os.O_RDONLY)
    m.driver.reset()
    rng = random.Random(7)
    for _ in range(50):
        offset = rng.randrange(1, len(data) - 4 * KiB)
        assert m.fs.read(fh, offset, 4 * KiB) == data[offset : offset + 4 * KiB]
    m.fs.release(fh)
    assert [length for _, _, length in m.driver.ranges] == [4 * KiB] * 50


def test_reads_at_end_of_file_and_beyond(m: Mount) -> None:
    m.put("/f", b"0123456789")
    fh = m.fs.open("/f", os.O_RDONLY)
    assert m.fs.read(fh, 5, 100) == b"56789"
    assert m.fs.read(fh, 10, 100) == b""
    assert m.fs.read(fh, 1000, 100) == b""
    m.fs.release(fh)
    m.put("/empty", b"")
    assert m.read_file("/empty") == b""


def test_small_file_is_read_with_one_request(m: Mount) -> None:
    m.put("/link", b"sha256:" + b"0" * 64)
    m.driver.reset()
    assert m.read_file("/link", chunk=4096) == b"sha256:" + b"0" * 64
    assert m.driver.count("read_range") == 1


def test_readahead_memory_is_bounded_across_open_files(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead(readahead_budget=512 * KiB))
    files = {f"/f{i}": _payload(2 * MiB, seed=i) for i in range(6)}
    for path, data in files.items():
        m.put(path, data)
    handles = {path: m.fs.open(path, os.O_RDONLY) for path in files}
    results: dict[str, bytes] = {}

    def reader(path: str) -> None:
        out = bytearray()
        while True:
            chunk = m.fs.read(handles[path], len(out), 128 * KiB)
            if not chunk:
                break
            out += chunk
        results[path] = bytes(out)

    threads = [threading.Thread(target=reader, args=(p,)) for p in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for fh in handles.values():
        m.fs.release(fh)
    assert results == files  # correct bytes, falling back to direct reads when the budget is used up
    assert m.fs._budget.peak <= 512 * KiB
    assert m.fs._budget.used == 0


def test_a_short_read_in_the_middle_of_a_file_is_eio(m: Mount) -> None:
    m.put("/f", _payload(100 * KiB))
    m.faulty.short("read_range", path="/f")
    fh = m.fs.open("/f", os.O_RDONLY)
    with pytest.raises(FsError) as info:
        m.fs.read(fh, 0, 64 * KiB)
    assert info.value.errno == errno.EIO
    m.fs.release(fh)


def _estale(fn) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:
        fn()
    return to_errno(info.value)


@pytest.mark.parametrize("size", [256 * KiB, 10, 300 * KiB])
def test_an_object_replaced_under_an_open_handle_is_estale_not_wrong_bytes(make_fs, size, caplog) -> None:  # type: ignore[no-untyped-def]
    """Bytes of one version only: once a handle returned bytes, another version is ESTALE (same size too)."""
    m = make_fs(**_small_readahead())
    old = _payload(256 * KiB)
    m.put("/f", old)
    fh = m.fs.open("/f", os.O_RDONLY)
    assert m.fs.read(fh, 0, 64 * KiB) == old[: 64 * KiB]
    m.put("/f", _payload(size, seed=2))  # replaced by another writer
    out = bytearray(old[: 64 * KiB])
    with caplog.at_level(logging.WARNING):
        with pytest.raises(ObjectChangedError) as info:
            while len(out) < len(old):
                data = m.fs.read(fh, len(out), 64 * KiB)
                assert data, "a short file instead of an error"
                out += data
    assert to_errno(info.value, "read") == errno.ESTALE
    assert "/f" in caplog.text and "ESTALE" in caplog.text  # logged
    assert bytes(out) == old[: len(out)] and len(out) < len(old)  # what was returned is the old version
    assert _estale(lambda: m.fs.read(fh, 0, 10)) == errno.ESTALE  # and stays so for this handle
    m.fs.release(fh)
    assert m.read_file("/f") == _payload(size, seed=2)  # a new open reads the new version


def _held_at_a_replaced_version(m, seed: int) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    """A handle that returned bytes of ``/f``, replaced since by another writer (the failed read taught
    the mount): (the handle, the new content)."""
    old, new = _payload(256 * KiB), _payload(200 * KiB, seed=seed)
    m.put("/f", old)
    held = m.fs.open("/f", os.O_RDONLY)
    assert m.fs.read(held, 0, 64 * KiB) == old[: 64 * KiB]
    m.put("/f", new)
    assert _estale(lambda: m.fs.read(held, 192 * KiB, 64 * KiB)) == errno.ESTALE
    return held, new


def test_an_open_while_a_handle_reads_a_replaced_version_gets_the_current_one(make_fs) -> None:  # type: ignore[no-untyped-def]
    """The old handle stays open: a new open of the name reads the current version (close-to-open), its
    handle bypasses the kernel's page cache while the old version's handles live (one inode, two
    versions), and the old handle keeps its version: old bytes or ESTALE."""
    m = make_fs(**_small_readahead())
    held, new = _held_at_a_replaced_version(m, seed=5)
    assert m.fs.getattr("/f").size == len(new)
    assert dict(m.fs.readdir("/"))["f"].size == len(new)  # ls -l agrees with stat
    fresh, direct = m.fs.open_file("/f", os.O_RDONLY)
    assert direct
    assert m.fs.read(fresh, 0, len(new)) == new
    assert m.fs.getattr("/f").size == len(new)
    held_attr = m.fs.getattr(None, held)  # the kernel's one inode for the name: never "unlinked", never old
    assert (held_attr.size, held_attr.nlink) == (len(new), 1)
    assert _estale(lambda: m.fs.read(held, 128 * KiB, 64 * KiB)) == errno.ESTALE
    m.fs.release(held)
    again, direct = m.fs.open_file("/f", os.O_RDONLY)
    assert not direct  # the old version's last handle is gone: the page cache holds one version again
    assert m.fs.read(again, 0, len(new)) == new
    m.fs.release(again)
    m.fs.release(fresh)


def test_an_append_by_create_while_a_handle_reads_a_replaced_version_appends_to_the_current_one(make_fs) -> None:  # type: ignore[no-untyped-def]
    """``>>`` reaches the core as CREATE when the kernel's entry expired: it appends to the version the
    bucket holds, not to the old one a reader still holds (whose copy could no longer be made)."""
    m = make_fs(**_small_readahead())
    held, new = _held_at_a_replaced_version(m, seed=6)
    fh, direct = m.fs.create_file("/f", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    assert direct
    m.fs.write(fh, 0, b"appended")
    m.fs.flush(fh)
    m.fs.release(fh)
    m.fs.release(held)
    assert m.store.get_content("/f") == new + b"appended"


def test_an_open_of_a_file_held_open_and_unchanged_shares_its_node(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead())
    data = _payload(256 * KiB)
    m.put("/f", data)
    held = m.fs.open("/f", os.O_RDONLY)
    assert m.fs.read(held, 0, 64 * KiB) == data[: 64 * KiB]
    fresh, direct = m.fs.open_file("/f", os.O_RDONLY)
    assert not direct and m.fs.read(fresh, 64 * KiB, 64 * KiB) == data[64 * KiB : 128 * KiB]
    m.fs.release(held)
    m.fs.release(fresh)


def test_a_handle_that_returned_nothing_yet_reads_the_current_version(make_fs) -> None:  # type: ignore[no-untyped-def]
    """A stale cached version (replaced by another writer within the TTL) is re-pinned at the first read."""
    m = make_fs(**_small_readahead())
    m.put("/d/f", _payload(300 * KiB))
    m.names("/d")  # the listing caches the old version
    new = _payload(200 * KiB, seed=3)
    m.put("/d/f", new)
    fh = m.fs.open("/d/f", os.O_RDONLY)
    assert m.fs.getattr("/d/f", fh).size == 300 * KiB  # what the cache said at open
    out = bytearray()
    while data := m.fs.read(fh, len(out), 64 * KiB):
        out += data
    assert bytes(out) == new
    assert m.fs.getattr("/d/f", fh).size == len(new)  # the handle now reports the version it reads
    m.fs.release(fh)
    assert m.fs.getattr("/d/f").size == len(new)  # and the cache learned it


def test_handles_keep_reading_a_file_this_mount_renamed(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead())
    data = _payload(512 * KiB)
    m.put("/a", data)
    fh = m.fs.open("/a", os.O_RDONLY)
    out = bytearray(m.fs.read(fh, 0, 64 * KiB))
    m.fs.rename("/a", "/b")  # a new object (version) at the new key, copied from the one being read
    while data_ := m.fs.read(fh, len(out), 64 * KiB):
        out += data_
    m.fs.release(fh)
    assert bytes(out) == data


def test_read_errors_from_the_driver_surface(m: Mount) -> None:
    m.put("/f", b"x" * 100)
    m.faulty.fail("read_range", path="/f")
    fh = m.fs.open("/f", os.O_RDONLY)
    with pytest.raises(DriverError):
        m.fs.read(fh, 0, 100)
    assert m.fs.read(fh, 0, 100) == b"x" * 100  # the next read tries again
    m.fs.release(fh)


# -- the data cache ---------------------------------------------------------------------------------------


def test_immutable_blobs_are_served_from_the_data_cache_the_second_time(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead(data_cache_block=64 * KiB))
    data = _payload(3 * MiB + 123)
    m.put(BLOB, data)
    assert m.read_file(BLOB) == data
    m.driver.reset()
    assert m.read_file(BLOB) == data
    assert m.driver.count("read_range") == 0
    fh = m.fs.open(BLOB, os.O_RDONLY)  # random 4 KiB reads: hits too
    for offset in (5, 70_000, 3 * MiB):
        assert m.fs.read(fh, offset, 4 * KiB) == data[offset : offset + 4 * KiB]
    m.fs.release(fh)
    assert m.driver.count("read_range") == 0


def test_other_files_are_not_data_cached(m: Mount) -> None:
    m.put("/docker/registry/v2/repositories/r/_manifests/tags/t/current/link", b"sha256:x")
    m.read_file("/docker/registry/v2/repositories/r/_manifests/tags/t/current/link")
    m.driver.reset()
    m.read_file("/docker/registry/v2/repositories/r/_manifests/tags/t/current/link")
    assert m.driver.count("read_range") == 1
    assert os.listdir(m.cache_dir / "data") == []


def test_data_cache_is_a_size_bounded_lru_named_by_hashes(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead(data_cache_block=64 * KiB, data_cache_size=256 * KiB))
    for i in range(4):
        path = BLOB.replace("ab" * 32, f"{i:02d}" * 32)
        m.put(path, _payload(200 * KiB, seed=i))
        m.read_file(path)
    m.fs._datacache.drain()
    files = os.listdir(m.cache_dir / "data")
    total = sum(os.path.getsize(m.cache_dir / "data" / f) for f in files)
    assert 0 < total <= 256 * KiB
    assert all("sha256" not in f and "docker" not in f and "/" not in f for f in files)


def test_data_cache_survives_a_remount(make_fs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = _payload(1 * MiB)
    first = make_fs(cache_dir=tmp_path / "shared", **_small_readahead())
    first.put(BLOB, data)
    first.read_file(BLOB)
    first.fs.shutdown()
    second = make_fs(store=first.store, cache_dir=tmp_path / "shared", **_small_readahead())
    assert second.read_file(BLOB) == data
    assert second.driver.count("read_range") == 0


def test_data_cache_files_without_their_block_list_are_not_trusted(make_fs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After a crash (no clean unmount) the cached files are dropped: holes would read as zeros."""
    data = _payload(1 * MiB)
    first = make_fs(cache_dir=tmp_path / "shared", **_small_readahead())
    first.put(BLOB, data)
    first.read_file(BLOB)
    first.fs._datacache.drain()
    assert [f for f in os.listdir(tmp_path / "shared" / "data") if f.endswith(".data")]
    second = make_fs(store=first.store, cache_dir=tmp_path / "shared", **_small_readahead())  # no shutdown
    assert second.read_file(BLOB) == data
    assert second.driver.count("read_range") > 0


def test_data_cache_keeps_one_file_per_blob_and_evicts_whole_blobs(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead(data_cache_block=64 * KiB, data_cache_size=512 * KiB))
    blobs = {BLOB.replace("ab" * 32, f"{i:02d}" * 32): _payload(256 * KiB, seed=10 + i) for i in range(3)}
    for path, data in blobs.items():
        m.put(path, data)
        assert m.read_file(path) == data
    m.fs._datacache.drain()  # blocks are written by a background thread
    files = sorted(os.listdir(m.cache_dir / "data"))
    assert len(files) == 2 and all(f.endswith(".data") for f in files), "the oldest blob was evicted whole"
    m.driver.reset()
    last = list(blobs)[-1]
    assert m.read_file(last) == blobs[last] and m.driver.count("read_range") == 0


def test_a_blob_larger_than_the_data_cache_keeps_what_fits(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead(data_cache_block=64 * KiB, data_cache_size=256 * KiB))
    data = _payload(1 * MiB)
    m.put(BLOB, data)
    assert m.read_file(BLOB) == data
    m.fs._datacache.drain()
    assert m.fs._datacache.total_bytes == 256 * KiB
    m.driver.reset()
    fh = m.fs.open(BLOB, os.O_RDONLY)
    assert m.fs.read(fh, 10, 4 * KiB) == data[10 : 10 + 4 * KiB]  # the first blocks are cached
    m.fs.release(fh)
    assert m.driver.count("read_range") == 0
    assert m.read_file(BLOB) == data


def test_the_data_cache_never_serves_blocks_of_another_version(make_fs) -> None:  # type: ignore[no-untyped-def]
    """A blob re-written with other bytes of the same size (against the registry's rules)."""
    m = make_fs(**_small_readahead(data_cache_block=64 * KiB))
    old, new = _payload(1 * MiB), _payload(1 * MiB, seed=9)
    m.put(BLOB, old)
    assert m.read_file(BLOB) == old  # cached whole
    m.fs._datacache.drain()
    m.put(BLOB, new)
    assert m.read_file(BLOB) == old  # the mount still knows the old version: served whole, from its blocks
    m.clock.advance(m.fs.options.digest_ttl + 1)  # the mount learns the new version
    assert m.read_file(BLOB) == new
    m.fs._datacache.drain()
    m.driver.reset()
    assert m.read_file(BLOB) == new and m.driver.count("read_range") == 0  # and caches it as another version


class _Versionless(InMemoryDriver):
    """A driver whose writes do not tell the version they made (driver extension 8 allows None)."""

    def put_content(self, path: str, content: bytes) -> None:  # type: ignore[override]
        super().put_content(path, content)

    def _commit(self, upload) -> None:  # type: ignore[no-untyped-def, override]
        super()._commit(upload)


@pytest.mark.parametrize("size", [4 * MiB, 100 * KiB], ids=["multipart", "one-put"])
def test_a_file_this_mount_wrote_is_read_pinned_to_the_version_its_commit_made(make_fs, size) -> None:  # type: ignore[no-untyped-def]
    """The commit names the version (driver extension 8): reading it back asks no stat, and another
    writer's version replacing it mid-read is ESTALE, never its bytes after the old ones."""
    m = make_fs(**_small_readahead(), stream_threshold=1 * MiB)
    old, new = _payload(size), _payload(size, seed=4)
    m.write_file("/f", old)
    m.driver.reset()
    fh = m.fs.open("/f", os.O_RDONLY)
    assert m.fs.read(fh, 0, 64 * KiB) == old[: 64 * KiB]
    assert m.driver.count("stat") == 0 and m.driver.count("stat_tree") == 0
    m.put("/f", new)
    assert _estale(lambda: m.fs.read(fh, size - 32 * KiB, 32 * KiB)) == errno.ESTALE  # past the window
    m.fs.release(fh)


def test_a_file_written_through_a_driver_that_cannot_tell_the_version_learns_it_before_its_first_byte(
    make_fs,  # type: ignore[no-untyped-def]
) -> None:
    """Without the commit's version, one stat pins the handle before its first byte."""
    m = make_fs(_Versionless(), **_small_readahead())
    old, new = _payload(4 * MiB), _payload(4 * MiB, seed=4)
    m.write_file("/f", old)
    m.driver.reset()
    fh = m.fs.open("/f", os.O_RDONLY)
    assert m.fs.read(fh, 0, 64 * KiB) == old[: 64 * KiB]
    assert m.driver.count("stat") == 1
    m.put("/f", new)
    assert _estale(lambda: m.fs.read(fh, 3 * MiB, 64 * KiB)) == errno.ESTALE  # past the window
    m.fs.release(fh)
    m.write_file("/link", b"sha256:" + b"ab" * 32)  # one page: each read brings it whole
    m.driver.reset()
    assert m.read_file("/link") == b"sha256:" + b"ab" * 32
    assert m.driver.count("stat") == 0


def test_a_blob_this_mount_wrote_is_data_cached_without_a_stat(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead(data_cache_block=64 * KiB))
    data = _payload(512 * KiB)
    m.write_file(BLOB, data)
    m.driver.reset()
    assert m.read_file(BLOB) == data
    assert m.driver.count("stat") == 0
    m.fs._datacache.drain()
    m.driver.reset()
    assert m.read_file(BLOB) == data
    assert m.driver.count("read_range") == 0 and m.driver.count("stat") == 0


def test_a_partly_cached_blob_replaced_meanwhile_is_estale_then_the_new_version(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead(data_cache_block=64 * KiB))
    old, new = _payload(1 * MiB), _payload(1 * MiB, seed=9)
    m.put(BLOB, old)
    fh = m.fs.open(BLOB, os.O_RDONLY)
    assert m.fs.read(fh, 0, 128 * KiB) == old[: 128 * KiB]  # the first blocks are cached
    m.fs.release(fh)
    m.fs._datacache.drain()
    m.put(BLOB, new)
    fh = m.fs.open(BLOB, os.O_RDONLY)
    assert m.fs.read(fh, 0, 64 * KiB) == old[: 64 * KiB]  # the version the mount knows, from the cache
    assert _estale(lambda: m.fs.read(fh, 960 * KiB, 64 * KiB)) == errno.ESTALE  # not cached: gone
    m.fs.release(fh)
    assert m.read_file(BLOB) == new  # the failed read taught the mount the new version


def test_data_cache_disabled_with_size_zero(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(data_cache_size=0)
    m.put(BLOB, b"blob")
    m.read_file(BLOB)
    m.read_file(BLOB)
    assert m.driver.count("read_range") == 2
    assert not (m.cache_dir / "data").exists()


def test_many_sequential_readers_share_the_budget_instead_of_falling_back(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_small_readahead(readahead_budget=1 * MiB, readahead_max=1 * MiB))
    files = {f"/s{i}": _payload(1 * MiB, seed=50 + i) for i in range(8)}
    for path, data in files.items():
        m.put(path, data)
    handles = {path: m.fs.open(path, os.O_RDONLY) for path in files}
    offsets = dict.fromkeys(files, 0)
    out = {path: bytearray() for path in files}
    while any(offsets[p] < len(files[p]) for p in files):  # interleaved, as 8 readers would be
        for path in files:
            chunk = m.fs.read(handles[path], offsets[path], 32 * KiB)
            out[path] += chunk
            offsets[path] += len(chunk)
    for fh in handles.values():
        m.fs.release(fh)
    assert {p: bytes(d) for p, d in out.items()} == files
    assert m.fs._budget.peak <= 1 * MiB
    assert max(length for _, _, length in m.driver.ranges) <= 256 * KiB
    assert len(m.driver.ranges) < 8 * (1 * MiB // (32 * KiB)) // 2  # far fewer requests than reads
