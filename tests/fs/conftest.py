"""Fixtures of the core tests: a RegistryFilesystem on the in-memory driver, no FUSE.

``make_fs(**options)`` builds ``RegistryFilesystem(CountingDriver(FaultyDriver(CheckedDriver(
InMemoryDriver()))), FsOptions(cache_dir=tmp_path, ...))`` and returns a :class:`Mount` with
the core, the counting and faulty wrappers, the raw in-memory driver and a fake clock for
TTL tests.  Every mount is shut down at the end of the test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from s3regfs.driver.checked import CheckedDriver
from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.fs.core import RegistryFilesystem
from s3regfs.fs.options import FsOptions
from tests.support.counting import CountingDriver
from tests.support.faulty import FaultyDriver


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Mount:
    fs: RegistryFilesystem
    driver: CountingDriver
    faulty: FaultyDriver
    store: InMemoryDriver
    clock: Clock
    cache_dir: Path
    handles: list[int] = field(default_factory=list)

    # small helpers that read like shell commands
    def write_file(self, path: str, data: bytes, flags: int = os.O_WRONLY) -> None:
        fh = self.fs.create(path, flags | os.O_CREAT | os.O_TRUNC, 0o644)
        self.fs.write(fh, 0, data)
        self.fs.flush(fh)
        self.fs.release(fh)

    def read_file(self, path: str, chunk: int = 128 * 1024) -> bytes:
        fh = self.fs.open(path, os.O_RDONLY)
        try:
            out = bytearray()
            while True:
                data = self.fs.read(fh, len(out), chunk)
                if not data:
                    return bytes(out)
                out += data
        finally:
            self.fs.release(fh)

    def names(self, path: str) -> list[str]:
        return [name for name, _ in self.fs.readdir(path)]

    def put(self, path: str, data: bytes) -> None:
        """Another writer (the registry, another mount) puts an object straight into the bucket."""
        self.store.put_content(path, data)


@pytest.fixture
def make_fs(tmp_path: Path) -> Iterator[Callable[..., Mount]]:
    mounts: list[Mount] = []

    def make(store: InMemoryDriver | None = None, **options: object) -> Mount:
        store = store or InMemoryDriver()
        faulty = FaultyDriver(CheckedDriver(store))
        counting = CountingDriver(faulty)
        clock = Clock()
        cache_dir = Path(str(options.pop("cache_dir", tmp_path / f"cache{len(mounts)}")))
        opts = FsOptions(cache_dir=str(cache_dir), **options)  # type: ignore[arg-type]
        fs = RegistryFilesystem(counting, opts, clock=clock)
        mount = Mount(fs, counting, faulty, store, clock, cache_dir)
        mounts.append(mount)
        return mount

    yield make
    for mount in mounts:
        mount.fs.shutdown(timeout=10)


@pytest.fixture
def m(make_fs: Callable[..., Mount]) -> Mount:
    """A default mount."""
    return make_fs()
