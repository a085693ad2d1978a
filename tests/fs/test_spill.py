"""Spill files: direct (page-cache bypassing) and buffered writes of one file stay coherent."""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from s3regfs.fs import directio
from s3regfs.fs.spill import DIRECT_MIN, SpillArea

MiB = 1024 * 1024


def test_direct_and_buffered_writes_read_back_exactly(tmp_path: Path) -> None:
    spill = SpillArea(str(tmp_path / "spill")).new()
    try:
        assert spill._direct is not None, "O_DIRECT is expected on the test file system"
        expected = bytearray(4 * MiB)
        rng = random.Random(5)

        def write(offset: int, data: bytes) -> None:
            spill.pwrite(offset, data)
            expected[offset : offset + len(data)] = data

        for i in range(4):  # aligned 1 MiB writes, as a streamed file's FUSE writes are
            write(i * MiB, os.urandom(MiB))
        write(MiB + 123, os.urandom(5000))  # unaligned: through the page cache
        write(2 * MiB, os.urandom(DIRECT_MIN))  # direct again, over cached pages
        for _ in range(50):
            offset = rng.randrange(0, 4 * MiB - 70_000)
            write(offset, os.urandom(rng.choice([1, 4096, 65_536, 70_000])))
        assert spill.pread(0, 4 * MiB) == bytes(expected)
        write(3 * MiB, os.urandom(MiB))
        assert spill.pread(3 * MiB - 10, MiB + 10) == bytes(expected[3 * MiB - 10 :])
    finally:
        spill.close()


def test_without_direct_io_everything_is_buffered(tmp_path: Path) -> None:
    spill = SpillArea(str(tmp_path / "spill")).new()
    try:
        os.close(spill._direct)  # type: ignore[arg-type]
        spill._direct = None  # as on a file system that refuses O_DIRECT
        data = os.urandom(2 * MiB)
        spill.pwrite(0, data)
        assert spill.pread(0, 2 * MiB) == data
    finally:
        spill.close()


def test_many_threads_writing_at_once_share_at_most_the_pool_of_aligned_buffers(tmp_path: Path) -> None:
    """64 writers at once hold at most ``directio.POOL`` aligned buffers; a write that finds none
    free goes through the page cache, and every byte reads back (docs/SEMANTICS.md "Memory")."""
    area = SpillArea(str(tmp_path / "spill"))
    spills = [area.new() for _ in range(64)]
    start = threading.Barrier(64)
    payloads = [os.urandom(4 * MiB) for _ in range(8)]

    def write(i: int) -> None:
        start.wait()
        data = payloads[i % 8]
        for offset in range(0, len(data), MiB):
            spills[i].pwrite(offset, memoryview(data)[offset : offset + MiB])

    try:
        with ThreadPoolExecutor(64) as pool:
            list(pool.map(write, range(64)))
        assert directio.buffers_made() <= directio.POOL
        for i, spill in enumerate(spills):
            assert spill.pread(0, 4 * MiB) == payloads[i % 8]
    finally:
        for spill in spills:
            spill.close()


def test_a_direct_write_longer_than_one_buffer_goes_through_it_in_pieces(tmp_path: Path) -> None:
    spill = SpillArea(str(tmp_path / "spill")).new()
    try:
        data = os.urandom(3 * directio.BUFFER + 8192)
        spill.pwrite(4096, data)
        assert spill.pread(4096, len(data)) == data
    finally:
        spill.close()


def test_page_aligned_memory_is_written_in_place_and_freed_after_its_last_view(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A body the s3 driver received into s3regfs/alignedmem.py goes to disk with O_DIRECT as it is
    (no aligned copy buffer taken from the pool), and its memory is freed once no view is left."""
    import gc
    import weakref

    from s3regfs import alignedmem

    spill = SpillArea(str(tmp_path / "spill")).new()
    try:
        buffer = alignedmem.allocate(3 * MiB)
        assert buffer is not None and alignedmem.address(buffer) % alignedmem.PAGE == 0  # type: ignore[operator]
        buffer[:] = os.urandom(3 * MiB)
        expected = bytes(buffer)
        monkeypatch.setattr(directio, "_take", lambda: None)  # no copy buffer to be had
        assert directio.pwrite(spill._direct, memoryview(os.urandom(MiB)), 0) == 0  # type: ignore[arg-type]
        assert directio.pwrite(spill._direct, buffer[MiB:], 8192) == 2 * MiB  # type: ignore[arg-type]
        assert spill.pread(8192, 2 * MiB) == expected[MiB:]
        owner = weakref.ref(buffer.obj)
        part = buffer[4096:8192]
        del buffer
        gc.collect()
        assert owner() is not None and bytes(part) == expected[4096:8192], "a view keeps the memory"
        del part
        gc.collect()
        assert owner() is None, "the memory is freed with its last view"
    finally:
        spill.close()
