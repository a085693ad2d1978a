"""Unlinked open files through a real mount: fstat, ftruncate and fchmod work as on a local disk, and a
directory whose files were unlinked (some still open by readers) can be removed."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from tests.support.mounts import Mount

MiB = 1024 * 1024


@pytest.mark.parametrize("size", [100, 12 * MiB], ids=["small", "large"])
def test_fstat_ftruncate_and_fchmod_of_an_unlinked_open_file(s3_mount: Mount, size: int) -> None:
    path = s3_mount.path / "gone"
    path.write_bytes(b"z" * size)
    fd = os.open(path, os.O_RDWR)
    try:
        os.unlink(path)
        st = os.fstat(fd)
        assert (st.st_size, st.st_nlink, stat.S_ISREG(st.st_mode)) == (size, 0, True)
        os.ftruncate(fd, 10)
        assert os.fstat(fd).st_size == 10
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
        assert os.pread(fd, 20, 0) == b"z" * 10
    finally:
        os.close(fd)
    assert not path.exists()


def test_a_directory_is_removed_after_concurrent_readers_of_its_file(s3_mount: Mount) -> None:
    """The registry's TestConcurrentStreamReads: write, read at random offsets from several readers, close,
    then remove the directory recursively."""
    directory = s3_mount.path / "d" / "sub"
    directory.mkdir(parents=True)
    data = os.urandom(10 * MiB)
    (directory / "file").write_bytes(data)
    errors: list[BaseException] = []

    def reader(seed: int) -> None:
        try:
            with open(directory / "file", "rb") as f:
                for i in range(20):
                    offset = (seed * 7919 + i * 104729) % (len(data) - 4096)
                    f.seek(offset)
                    assert f.read(4096) == data[offset : offset + 4096]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    shutil.rmtree(s3_mount.path / "d")
    assert not (s3_mount.path / "d").exists()


def test_a_directory_is_removed_while_a_reader_still_has_its_unlinked_file_open(s3_mount: Mount) -> None:
    directory = s3_mount.path / "e"
    directory.mkdir()
    for name, size in (("small", 1000), ("large", 12 * MiB)):
        (directory / name).write_bytes(b"q" * size)
    fds = [os.open(directory / name, os.O_RDONLY) for name in ("small", "large")]
    try:
        os.unlink(directory / "small")
        os.unlink(directory / "large")
        os.rmdir(directory)
        assert not directory.exists()
        assert os.pread(fds[1], 5, 12 * MiB - 5) == b"qqqqq"
    finally:
        for fd in fds:
            os.close(fd)
