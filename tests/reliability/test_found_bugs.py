"""Regression tests, at the core level (no FUSE), for bugs the soak and fault tests found.

* A file renamed while the move took longer than the metadata TTL (a multipart
  copy of a large blob) was given size 0 in the cache: readers of the new name
  on the same mount read 0 bytes for up to the TTL (found by tests/reliability/
  test_soak.py as "WRONG BYTES ... 0 bytes" after the registry's upload-then-
  rename).  The core now asks the driver when it knows nothing of the source.
"""

from __future__ import annotations

import os
from pathlib import Path

from s3regfs.driver import CheckedDriver, DriverWrapper
from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.fs.core import RegistryFilesystem
from s3regfs.fs.options import FsOptions


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _SlowMove(DriverWrapper):
    """``move`` takes ``seconds`` of the fake clock (a multipart copy of a big object)."""

    def __init__(self, inner: InMemoryDriver, clock: _Clock, seconds: float) -> None:
        super().__init__(inner)
        self.clock, self.seconds = clock, seconds

    def move(self, source: str, dest: str) -> None:
        super().move(source, dest)
        self.clock.now += self.seconds


def test_rename_slower_than_the_metadata_ttl_keeps_the_size(tmp_path: Path) -> None:
    clock = _Clock()
    driver = _SlowMove(CheckedDriver(InMemoryDriver()), clock, seconds=5.0)
    fs = RegistryFilesystem(driver, FsOptions(cache_dir=str(tmp_path), metadata_ttl=2.0), clock=clock)
    try:
        data = os.urandom(70_000)
        fh = fs.create("/uploads/tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        fs.write(fh, 0, data)
        fs.flush(fh)
        fs.release(fh)
        fs.mkdir("/blobs", 0o755)
        fs.rename("/uploads/tmp", "/blobs/data")
        assert fs.getattr("/blobs/data").size == len(data)
        fh = fs.open("/blobs/data", os.O_RDONLY)
        try:
            assert fs.read(fh, 0, len(data) + 10) == data
        finally:
            fs.release(fh)
    finally:
        fs.shutdown(timeout=10)
