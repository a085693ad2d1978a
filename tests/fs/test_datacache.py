"""The data cache's read descriptors: kept open between reads, bounded, never closed under a reader.

These drive :class:`~s3regfs.fs.datacache.DataCache` directly on a real directory; the one
fake is a ``pread`` held at a barrier, to evict a file while a read of it is in progress.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from s3regfs.fs import datacache
from s3regfs.fs.datacache import DataCache

KiB = 1024
BLOCK = 64 * KiB
PREFIX = "docker/registry/v2/blobs/"


def _blob(i: int) -> str:
    return f"{PREFIX}sha256/{i:02x}/{i:02x}{'0' * 62}/data"


def _payload(i: int, n: int = 2 * BLOCK) -> bytes:
    return bytes((i * 7 + j) % 251 for j in range(n))


def _cached(cache: DataCache, i: int, n: int = 2 * BLOCK) -> bytes:
    data = _payload(i, n)
    cache.store(_blob(i), n, f"etag{i}", 0, data)
    cache.drain()
    return data


def _cache_fds(directory: Path) -> list[str]:
    """Descriptors of this process open on files of ``directory`` (deleted ones included)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


@pytest.fixture
def cache(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = DataCache(str(tmp_path / "data"), 64 * BLOCK, BLOCK, (PREFIX,))
    yield c
    c.close()


def test_warm_reads_reuse_one_descriptor_per_file(cache: DataCache, tmp_path: Path) -> None:
    data = _cached(cache, 1)
    for offset in range(0, len(data) - 4 * KiB, 4 * KiB):
        assert cache.read(_blob(1), len(data), "etag1", offset, 4 * KiB) == data[offset : offset + 4 * KiB]
    assert len(_cache_fds(tmp_path / "data")) == 1
    cache.close()
    assert _cache_fds(tmp_path / "data") == [], "close() at unmount closes them"


def test_at_most_open_files_descriptors_stay_open(cache: DataCache, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(datacache, "OPEN_FILES", 4)
    blobs = {i: _cached(cache, i) for i in range(10)}
    for i, data in blobs.items():
        assert cache.read(_blob(i), len(data), f"etag{i}", 100, 1000) == data[100:1100]
        assert len(_cache_fds(tmp_path / "data")) <= 4
    for i, data in blobs.items():  # the closed ones open again
        assert cache.read(_blob(i), len(data), f"etag{i}", 5, 10) == data[5:15]


def test_an_evicted_file_is_closed_only_after_its_last_reader(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Eviction while a read of the file is in progress: the read gets the evicted blob's bytes
    (its descriptor stays open until then), the descriptor is closed after it, and new files
    opened meanwhile never receive the reader's descriptor number."""
    cache = DataCache(str(tmp_path / "data"), 2 * BLOCK, BLOCK, (PREFIX,))  # room for one blob
    try:
        first = _cached(cache, 1)
        assert cache.read(_blob(1), len(first), "etag1", 0, 10) == first[:10]  # its descriptor is open
        inside, go_on = threading.Event(), threading.Event()
        real_pread = datacache._pread_advised
        used: list[int] = []

        def held_pread(fd: int, length: int, offset: int) -> bytes | bytearray:
            used.append(fd)
            inside.set()
            assert go_on.wait(10)
            return real_pread(fd, length, offset)

        monkeypatch.setattr(datacache, "_pread_advised", held_pread)
        result: list[bytes | None] = []
        reader = threading.Thread(target=lambda: result.append(cache.read(_blob(1), len(first), "etag1", BLOCK, 4 * KiB)))
        reader.start()
        assert inside.wait(10)
        monkeypatch.setattr(datacache, "_pread_advised", real_pread)
        second = _cached(cache, 2)  # evicts blob 1 (its files are unlinked)
        assert not [f for f in os.listdir(tmp_path / "data") if f.startswith(DataCache._key(_blob(1), len(first), "etag1"))]
        assert cache.read(_blob(2), len(second), "etag2", 0, 100) == second[:100]  # opens blob 2's file
        assert os.readlink(f"/proc/self/fd/{used[0]}").endswith("(deleted)"), "still blob 1's, not reused"
        go_on.set()
        reader.join(10)
        assert result == [first[BLOCK : BLOCK + 4 * KiB]]
        assert [t for t in _cache_fds(tmp_path / "data") if t.endswith("(deleted)")] == [], "closed by its last reader"
        assert cache.read(_blob(1), len(first), "etag1", 0, 10) is None, "evicted: a miss"
    finally:
        cache.close()


def _drop_pages(directory: Path) -> None:
    """Drop the page cache of every file in ``directory`` (clean pages: gone when this returns)."""
    for name in os.listdir(directory):
        fd = os.open(directory / name, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _record_willneed(monkeypatch) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    asked: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def recording(fd: int, offset: int, length: int, advice: int) -> None:
        if advice == os.POSIX_FADV_WILLNEED:
            asked.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", recording)
    return asked


def test_a_read_that_would_wait_for_the_disk_asks_for_its_whole_span(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """After the page cache lost a cached blob's pages, random 4 KiB reads would each wait for the
    disk; a read that finds its pages missing asks for its whole ``ADVISE_SPAN`` (WILLNEED) first,
    every time the pages are gone, and a read of pages in memory asks for nothing."""
    monkeypatch.setattr(datacache, "ADVISE_SPAN", 2 * BLOCK)
    cache = DataCache(str(tmp_path / "data"), 64 * BLOCK, BLOCK, (PREFIX,))
    try:
        data = _cached(cache, 3, 8 * BLOCK)
        asked = _record_willneed(monkeypatch)
        _drop_pages(tmp_path / "data")
        assert cache.read(_blob(3), len(data), "etag3", 5 * BLOCK + 7, 4 * KiB) == data[5 * BLOCK + 7 : 5 * BLOCK + 7 + 4 * KiB]
        assert asked == [(4 * BLOCK, 2 * BLOCK)]
        for offset in range(0, len(data), 4 * KiB):  # every page into memory: no read asks for anything
            assert cache.read(_blob(3), len(data), "etag3", offset, 4 * KiB) is not None
        asked.clear()
        for offset in (5 * BLOCK + 7, 0, 7 * BLOCK + 100):
            assert cache.read(_blob(3), len(data), "etag3", offset, 4 * KiB) == data[offset : offset + 4 * KiB]
        assert asked == []
        _drop_pages(tmp_path / "data")  # memory pressure took them again: the same span is asked again
        assert cache.read(_blob(3), len(data), "etag3", 5 * BLOCK, 4 * KiB) == data[5 * BLOCK : 5 * BLOCK + 4 * KiB]
        assert asked == [(4 * BLOCK, 2 * BLOCK)]
        probes: list[int] = []
        real_preadv = os.preadv
        monkeypatch.setattr(os, "preadv", lambda fd, bufs, *rest: probes.append(len(bufs[0])) or real_preadv(fd, bufs, *rest))
        assert cache.read(_blob(3), len(data), "etag3", 0, 3 * BLOCK) == data[: 3 * BLOCK]
        assert probes == []  # a read larger than a span (a readahead part) is not probed: no second buffer
        assert cache.read(_blob(3), len(data), "etag3", 0, 4 * KiB) == data[: 4 * KiB]
        assert probes == [4 * KiB]
    finally:
        cache.close()


def test_a_store_after_close_returns_at_once_and_keeps_nothing(tmp_path: Path) -> None:
    """A part still in flight at unmount (a readahead window, a background fill) arrives after
    ``close``: it must not wait for a writer that has stopped (its pool thread would wait forever,
    and a process's exit waits for its pool threads) and must not be recorded as cached."""
    cache = DataCache(str(tmp_path / "data"), 1024 * BLOCK, BLOCK, (PREFIX,))
    cache.close()
    part = bytes(datacache.WRITE_QUEUE // 2 + BLOCK)
    stores = threading.Thread(target=lambda: [cache.store(_blob(i), len(part), f"etag{i}", 0, part) for i in range(3)])
    stores.start()
    stores.join(10)
    assert not stores.is_alive(), "a store after close waited for the stopped writer"
    assert not cache.holds(_blob(0), len(part), "etag0", 0, BLOCK)
    assert cache.read(_blob(0), len(part), "etag0", 0, 10) is None
