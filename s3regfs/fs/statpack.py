"""Packing an :class:`~s3regfs.fs.attributes.Attr` straight into libfuse's ``struct stat``.

Owns the adapter's translation of attributes: :func:`stat_dict` (what ``getattr`` returns to
mfusepy) and :func:`packed`, the one it makes for every entry of every listing: the
``stat`` that ``readdir`` hands libfuse with ``FUSE_FILL_DIR_PLUS``.  mfusepy's own path clears a
``c_stat`` and sets it from a dict, field by field (``set_st_attrs``: about 5 µs an entry, the
largest single cost of a ``find``, docs/PERFORMANCE.md "Per-request cost"); this one packs the
same bytes with one :class:`struct.Struct` call (about 0.5 µs).

The format is derived from ``mfusepy.c_stat``'s own fields and offsets, so it follows the layout
mfusepy chose for this platform; fields s3regfs never sets (``st_dev``, ``st_ino``, ``st_rdev``,
padding) are zero bytes, as after mfusepy's ``memset``.  When the layout has a field this module
does not know how to pack, :data:`PACKER` is None and the adapter keeps mfusepy's path.
"""

from __future__ import annotations

import ctypes
import math
import operator
import os
import stat
import struct
from typing import Any

if "FUSE_LIBRARY_PATH" not in os.environ:
    os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # mfusepy reads it at import

import mfusepy  # type: ignore[import-untyped]

from s3regfs.fs.attributes import Attr

BLOCK_SIZE = 1 << 20
"""``st_blksize``: tools size their I/O on it (cp, Python's ``open``); one FUSE write is at most 1 MiB."""
UNKNOWN_INO = 0xFFFFFFFF
"""libfuse's FUSE_UNKNOWN_INO, for ``.``/``..`` (an inode 0 entry is skipped by readdir(3))."""

_SET = ("st_nlink", "st_mode", "st_uid", "st_gid", "st_size", "st_blksize", "st_blocks",
        "st_atimespec.tv_sec", "st_atimespec.tv_nsec", "st_mtimespec.tv_sec", "st_mtimespec.tv_nsec",
        "st_ctimespec.tv_sec", "st_ctimespec.tv_nsec")
"""The fields an Attr sets, by their dotted names in ``c_stat``."""


def _leaves(kind: type[ctypes.Structure], base: int, prefix: str) -> list[tuple[int, str, Any]]:
    """(offset, dotted name, ctypes type) of every scalar field of ``kind``, nested ones included."""
    out: list[tuple[int, str, Any]] = []
    for field in kind._fields_:
        name, ctype = field[0], field[1]
        offset = base + getattr(kind, name).offset
        if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
            out += _leaves(ctype, offset, f"{prefix}{name}.")
        else:
            out.append((offset, prefix + name, ctype))
    return out


def _build() -> tuple[struct.Struct, tuple[str, ...]] | None:
    """A Struct whose arguments are the :data:`_SET` fields in layout order, or None."""
    fmt, names, at = "@", [], 0
    for offset, name, ctype in sorted(_leaves(mfusepy.c_stat, 0, "")):
        if name not in _SET:
            continue  # stays zero: a gap of pad bytes
        code = getattr(ctype, "_type_", None)
        if not isinstance(code, str) or code not in "bBhHiIlLqQ" or offset < at:
            return None
        fmt += "x" * (offset - at) + code
        names.append(name)
        at = offset + ctypes.sizeof(ctype)
    fmt += "x" * (ctypes.sizeof(mfusepy.c_stat) - at)
    packer = struct.Struct(fmt)
    if sorted(names) != sorted(_SET) or packer.size != ctypes.sizeof(mfusepy.c_stat):
        return None
    return packer, tuple(names)


_built = _build()
PACKER = None if _built is None else _built[0]
_in_layout_order = operator.itemgetter(*[_SET.index(name) for name in _built[1]]) if _built else None


def stat_values(attr: Attr) -> tuple[int, ...]:
    """The values of the :data:`_SET` fields for ``attr``, in that order (times in seconds and ns)."""
    seconds = math.floor(attr.mtime)
    ns = round((attr.mtime - seconds) * 1_000_000_000)
    if ns >= 1_000_000_000:
        seconds, ns = seconds + 1, ns - 1_000_000_000
    return (attr.nlink, attr.mode, attr.uid, attr.gid, attr.size, BLOCK_SIZE, (attr.size + 511) // 512,
            seconds, ns, seconds, ns, seconds, ns)


def packed(attr: Attr) -> Any:
    """A ``c_stat`` holding ``attr`` (mfusepy's own path when :data:`PACKER` is None)."""
    if PACKER is None or _in_layout_order is None:
        st = mfusepy.c_stat()
        mfusepy.set_st_attrs(st, stat_dict(attr), use_ns=True)
        return st
    return mfusepy.c_stat.from_buffer_copy(PACKER.pack(*_in_layout_order(stat_values(attr))))


def stat_dict(attr: Attr) -> dict[str, int]:
    """``Attr`` → the ``stat`` dict of mfusepy's ``getattr`` (times in nanoseconds: ``use_ns``)."""
    seconds = math.floor(attr.mtime)
    ns = seconds * 1_000_000_000 + round((attr.mtime - seconds) * 1_000_000_000)
    return {
        "st_mode": attr.mode,
        "st_nlink": attr.nlink,
        "st_size": attr.size,
        "st_uid": attr.uid,
        "st_gid": attr.gid,
        "st_mtime": ns,
        "st_atime": ns,
        "st_ctime": ns,
        "st_blocks": (attr.size + 511) // 512,
        "st_blksize": BLOCK_SIZE,
    }


def dot_entry() -> Any:
    """The ``stat`` of ``.`` and ``..``: a directory of unknown inode (the kernel knows them)."""
    st = mfusepy.c_stat()
    st.st_mode = stat.S_IFDIR
    st.st_ino = UNKNOWN_INO
    return st
