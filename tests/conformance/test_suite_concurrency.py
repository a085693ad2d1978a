"""Conformance: concurrent readers and writers (docs/DRIVERS.md §T1, ``-short`` sizes)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from s3regfs.driver import StorageDriver
from tests.conformance.suitelib import (
    MiB,
    delete_path,
    first_part,
    random_contents,
    random_path,
    read_all,
    write_all,
)

DEADLINE = 120.0  # seconds for all workers together: a hang fails instead of blocking the run


def test_concurrent_stream_reads(driver: StorageDriver) -> None:
    """10 readers at random offsets of a 10 MiB file each see exactly ``content[offset:]``."""
    path, data = random_path(32), random_contents(10 * MiB)
    driver.put_content(path, data)
    offsets = [random.randrange(len(data)) for _ in range(10)]

    def read_from(offset: int) -> bool:
        return read_all(driver.reader(path, offset), 256 * 1024) == data[offset:]

    try:
        with ThreadPoolExecutor(len(offsets)) as pool:
            futures = [pool.submit(read_from, offset) for offset in offsets]
            assert [f.result(timeout=DEADLINE) for f in futures] == [True] * len(offsets)
    finally:
        delete_path(driver, first_part(path))


def test_concurrent_file_streams(driver: StorageDriver) -> None:
    """8 writers stream 8 MiB each to their own paths at once; every file reads back intact."""
    jobs = {random_path(32): random_contents(8 * MiB) for _ in range(8)}

    def stream(path: str) -> bool:
        writer = driver.writer(path, False)
        assert write_all(writer, jobs[path], chunk=MiB) == len(jobs[path])
        writer.commit()
        writer.close()
        return read_all(driver.reader(path, 0)) == jobs[path]

    try:
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = {path: pool.submit(stream, path) for path in jobs}
            assert {p: f.result(timeout=DEADLINE) for p, f in futures.items()} == {p: True for p in jobs}
    finally:
        for top in sorted({first_part(p) for p in jobs}):
            delete_path(driver, top)
