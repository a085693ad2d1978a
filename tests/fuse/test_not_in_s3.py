"""Operations S3 cannot hold, through a real mount: symlinks, FIFOs, device nodes, hard links, fallocate.

Each one is refused with the errno docs/SEMANTICS.md gives ("Operations that S3 cannot hold"), by the
command-line tool a user would run (``ln -s``, ``mkfifo``, ``ln``, ``fallocate`` from util-linux) and by
the system call itself; nothing is created, the file involved is unchanged, and the mount keeps serving.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest


def tool(*cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a coreutils/util-linux command in the C locale, so its message is the English strerror."""
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} is not installed")
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "LC_ALL": "C"})


def refused(done: subprocess.CompletedProcess[str], code: int) -> None:
    assert done.returncode != 0, done
    assert os.strerror(code) in done.stderr, done.stderr


def test_symlink_is_enosys(mnt: Path) -> None:
    (mnt / "target").write_bytes(b"t")
    refused(tool("ln", "-s", "target", str(mnt / "link")), errno.ENOSYS)
    with pytest.raises(OSError) as info:
        os.symlink("target", mnt / "link")
    assert info.value.errno == errno.ENOSYS
    assert sorted(os.listdir(mnt)) == ["target"]


def test_mkfifo_and_mknod_are_enosys(mnt: Path) -> None:
    refused(tool("mkfifo", str(mnt / "fifo")), errno.ENOSYS)
    with pytest.raises(OSError) as info:
        os.mkfifo(mnt / "fifo")
    assert info.value.errno == errno.ENOSYS
    kinds = [stat.S_IFIFO, stat.S_IFSOCK] + ([stat.S_IFCHR, stat.S_IFBLK] if os.geteuid() == 0 else [])
    for kind in kinds:
        with pytest.raises(OSError) as info:
            os.mknod(mnt / "node", kind | 0o644, os.makedev(1, 3))
        assert info.value.errno == errno.ENOSYS, stat.filemode(kind)
    assert os.listdir(mnt) == []


def test_a_regular_file_made_by_mknod_is_a_file(mnt: Path) -> None:
    """mknod(S_IFREG) is the kernel's create: an empty file, like touch."""
    os.mknod(mnt / "plain", stat.S_IFREG | 0o644)
    assert stat.S_ISREG(os.stat(mnt / "plain").st_mode) and (mnt / "plain").read_bytes() == b""


def test_link_is_eperm(mnt: Path) -> None:
    (mnt / "file").write_bytes(b"content")
    refused(tool("ln", str(mnt / "file"), str(mnt / "hard")), errno.EPERM)
    with pytest.raises(OSError) as info:
        os.link(mnt / "file", mnt / "hard")
    assert info.value.errno == errno.EPERM
    assert os.listdir(mnt) == ["file"] and os.stat(mnt / "file").st_nlink == 1


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10


def fallocate(path: Path, mode: int, offset: int, length: int) -> int:
    """fallocate(2) on ``path`` (Python has no binding): 0, or the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fd = os.open(path, os.O_RDWR)
    try:
        return 0 if libc.fallocate(fd, mode, offset, length) == 0 else ctypes.get_errno()
    finally:
        os.close(fd)


def test_fallocate_is_eopnotsupp(mnt: Path) -> None:
    (mnt / "file").write_bytes(b"0123456789")
    refused(tool("fallocate", "-l", "1M", str(mnt / "file")), errno.EOPNOTSUPP)
    refused(tool("fallocate", "-l", "64K", str(mnt / "new")), errno.EOPNOTSUPP)
    for mode in (0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE):
        assert fallocate(mnt / "file", mode, 0, 4096) == errno.EOPNOTSUPP, hex(mode)
    assert (mnt / "file").read_bytes() == b"0123456789"
    assert (mnt / "new").stat().st_size == 0  # created by fallocate(1)'s open, never extended


def test_posix_fallocate_falls_back_to_writing(mnt: Path) -> None:
    """glibc's posix_fallocate writes the new blocks itself when fallocate is EOPNOTSUPP: the file grows."""
    path = mnt / "file"
    path.write_bytes(b"abc")
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, 10_000)
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert len(data) == 10_000 and data[:3] == b"abc" and set(data[3:]) == {0}
