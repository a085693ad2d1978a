#!/usr/bin/env python3
"""The floor of a Python FUSE daemon: a trivial read-only tree held in a dict, served by mfusepy.

Owns nothing the benchmark times; it is the evidence for docs/PERFORMANCE.md:
``find``/``ls -lR`` over the same registry-shaped tree through this filesystem
cost what the kernel round trips and mfusepy/libfuse's per-request work cost,
with no S3, no caches and no locks; ``/blob`` (256 MiB of zeros) gives the same
floor for 4 KiB random reads (``fio --rw=randread --bs=4k``). Usage (as root)::

    python bench/floorfs.py MOUNTPOINT [OBJECTS]   # foreground; fusermount3 -u MOUNTPOINT ends it
"""

from __future__ import annotations

import errno
import stat
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workloads import tree_keys  # noqa: E402
from s3regfs.fs.operations import RegistryFUSE, stat_dict  # noqa: E402  (selects libfuse 3)
from s3regfs.fs.core import Attr  # noqa: E402
import mfusepy  # noqa: E402

DIR = stat_dict(Attr(stat.S_IFDIR | 0o755, 0, 0.0, 2, 0, 0))
FILE = stat_dict(Attr(stat.S_IFREG | 0o644, 71, 0.0, 1, 0, 0))
BLOB_SIZE = 256 * 1024 * 1024
BLOB = stat_dict(Attr(stat.S_IFREG | 0o644, BLOB_SIZE, 0.0, 1, 0, 0))
ZEROS = bytes(1024 * 1024)


class Floor(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, keys: list[str]) -> None:
        self.dirs: dict[str, dict[str, dict[str, int]]] = {"/": {}}  # /blob is not listed (find counts files)
        for key in keys:
            parts = key.split("/")
            path = ""
            for index, part in enumerate(parts):
                parent, path = path or "/", f"{path}/{part}"
                is_file = index == len(parts) - 1
                self.dirs[parent][part] = FILE if is_file else DIR
                if not is_file:
                    self.dirs.setdefault(path, {})
        self.files = {"/" + key for key in keys}

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        if path == "/blob":
            return BLOB
        if path in self.dirs:
            return DIR
        if path in self.files:
            return FILE
        raise mfusepy.FuseOSError(errno.ENOENT)

    def opendir(self, path: str) -> int:
        return 0

    def readdir_with_offset(self, path: str, offset: int, fh: int):  # type: ignore[no-untyped-def]
        entries = [(".", DIR), ("..", DIR), *self.dirs[path].items()]
        return ((entries[i][0], entries[i][1], i + 1) for i in range(offset, len(entries)))

    def releasedir(self, path: str, fh: int) -> int:
        return 0

    def open(self, path: str, flags: int) -> int:
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        """``/blob``: 256 MiB of zeros, for the per-request cost of small reads."""
        size = max(0, min(size, BLOB_SIZE - offset, len(ZEROS)))
        return ZEROS[:size]

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """As s3regfs answers (docs/SEMANTICS.md "xattrs"): ENOTSUP outside ``user.``, which ``ls -l``
        takes as "this device has none" (ENODATA made it ask twice for every entry)."""
        raise mfusepy.FuseOSError(errno.ENODATA if name.startswith("user.") else errno.ENOTSUP)


def main() -> None:
    mountpoint = sys.argv[1]
    objects = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    RegistryFUSE(Floor(tree_keys(objects)), mountpoint, foreground=True, ro=True, fsname="floorfs",
                 entry_timeout=1.0, attr_timeout=1.0, max_threads=64, max_idle_threads=64)


if __name__ == "__main__":
    main()
