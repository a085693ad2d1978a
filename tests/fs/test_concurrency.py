"""Several writers and readers at once, through one core (mfusepy calls it from many threads)."""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

from tests.fs.conftest import Mount

KiB = 1024


def _payload(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def test_many_writers_and_readers_at_once(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(
        stream_threshold=64 * KiB, read_part_size=32 * KiB, readahead_min=16 * KiB, readahead_max=128 * KiB
    )
    existing = {f"/in/f{i}": _payload(200 * KiB, seed=i) for i in range(6)}
    for path, data in existing.items():
        m.put(path, data)
    m.fs.mkdir("/out", 0o755)
    written = {f"/out/w{i}": _payload((i + 1) * 40 * KiB, seed=100 + i) for i in range(8)}

    def write(path: str) -> None:
        data = written[path]
        fh = m.fs.create(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, len(data), 8 * KiB):
            m.fs.write(fh, off, data[off : off + 8 * KiB])
        m.fs.flush(fh)
        m.fs.release(fh)

    def read(path: str) -> bytes:
        return m.read_file(path, chunk=16 * KiB)

    with ThreadPoolExecutor(16) as pool:
        writes = [pool.submit(write, p) for p in written]
        reads = {p: pool.submit(read, p) for p in list(existing) * 2}
        listings = [pool.submit(m.names, "/out") for _ in range(10)]
        for f in writes + listings:
            f.result()
        for path, future in reads.items():
            assert future.result() == existing[path]
    for path, data in written.items():
        assert m.store.get_content(path) == data
    assert m.names("/out") == sorted(p.rsplit("/", 1)[1] for p in written)
    assert m.fs._spill.open_files == 0


def test_a_reader_while_a_writer_writes_the_same_file(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(stream_threshold=64 * KiB)
    data = _payload(512 * KiB, seed=9)
    fh = m.fs.create("/shared", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    done = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        rh = m.fs.open("/shared", os.O_RDONLY)
        try:
            while not done.is_set():
                size = m.fs.getattr("/shared").size
                got = m.fs.read(rh, 0, size)
                if got != data[: len(got)]:
                    problems.append(f"wrong bytes within the first {size}")
        finally:
            m.fs.release(rh)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for off in range(0, len(data), 16 * KiB):
        m.fs.write(fh, off, data[off : off + 16 * KiB])
    m.fs.flush(fh)
    done.set()
    for t in threads:
        t.join()
    m.fs.release(fh)
    assert problems == []
    assert m.read_file("/shared") == data


def test_concurrent_creates_renames_and_unlinks_in_one_directory(m: Mount) -> None:
    m.fs.mkdir("/d", 0o755)

    def work(i: int) -> None:
        m.write_file(f"/d/tmp{i}", str(i).encode())
        m.fs.rename(f"/d/tmp{i}", f"/d/final{i}")
        if i % 3 == 0:
            m.fs.unlink(f"/d/final{i}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(30)))
    expected = sorted(f"final{i}" for i in range(30) if i % 3)
    assert m.names("/d") == expected
    assert sorted(m.store.list("/d")) == [f"/d/{n}" for n in expected]
    for name in expected:
        assert m.read_file(f"/d/{name}") == name[5:].encode()


def test_two_handles_writing_one_file_share_its_content(m: Mount) -> None:
    a = m.fs.create("/f", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    b = m.fs.open("/f", os.O_RDWR)

    def fill(fh: int, start: int) -> None:
        for i in range(start, 200, 2):
            m.fs.write(fh, i * 10, bytes([i]) * 10)

    threads = [threading.Thread(target=fill, args=(a, 0)), threading.Thread(target=fill, args=(b, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.fs.read(b, 0, 4000) == b"".join(bytes([i]) * 10 for i in range(200))
    m.fs.release(a)
    m.fs.release(b)
    assert m.store.get_content("/f") == b"".join(bytes([i]) * 10 for i in range(200))
