"""RegistryFilesystem: POSIX semantics over a StorageDriver (docs/SEMANTICS.md is the contract).

No mfusepy import here: the adapter in :mod:`s3regfs.fs.operations` translates.
Paths are FUSE paths (``/``-rooted str, decoded by the adapter with
``surrogateescape``); every error is raised as :class:`s3regfs.fs.errors.FsError`
or as a driver error that :func:`s3regfs.fs.errors.to_errno` maps.

Owns the namespace state of the mount and the order of operations; the parts live in:
:mod:`~s3regfs.fs.paths` (names), :mod:`~s3regfs.fs.metacache` (attribute/listing cache and
chmod/utimens overrides), :mod:`~s3regfs.fs.listing` (listings and walk-ahead),
:mod:`~s3regfs.fs.writeback` (open-file content, uploads), :mod:`~s3regfs.fs.readahead`,
:mod:`~s3regfs.fs.datacache`, :mod:`~s3regfs.fs.spill`, :mod:`~s3regfs.fs.handles`.

Namespace state kept here (under ``self._ns``): the attached nodes (path → open file), the
directories made by ``mkdir`` or left behind by removing their last entry (``local dirs``),
and the names hidden by an unlink whose key is deleted at the last close.  Lock order:
path locks → ``self._ns`` (held only for table changes, never across a driver call) and
path locks → node lock.

This module is longer than the 600-line budget because it is the one place that orders
the namespace operations; every step it delegates is in the modules above.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TypeVar

from s3regfs.driver.base import FileInfo, StorageDriver
from s3regfs.driver.errors import ObjectChangedError, PathNotFoundError
from s3regfs.fs import paths
from s3regfs.fs.datacache import DataCache
from s3regfs.fs.errors import FsError, io_error
from s3regfs.fs.handles import Handle, HandleTable, PathLocks
from s3regfs.fs.listing import Lister, meta_of
from s3regfs.fs.metacache import ABSENT, Meta, MetaCache, Override, Overrides
from s3regfs.fs.options import FsOptions
from s3regfs.fs.readahead import ByteBudget, ReadStream
from s3regfs.fs.spill import SpillArea
from s3regfs.fs.uploadgate import UploadGate
from s3regfs.fs.writeback import Node, WriteContext

log = logging.getLogger(__name__)
T = TypeVar("T")

URL_XATTR = "user.s3regfs.url"
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_DIR = Meta(True, 0, 0.0)
_KEEP = 0xFFFFFFFF  # chown's "leave unchanged" (-1 as an unsigned id)
PUT_BUDGET_THRESHOLDS = 4
"""Single PUTs in flight hold at most this many ``stream_threshold``s of memory together."""


@dataclass(frozen=True)
class Attr:
    """A file's attributes as the adapter turns them into a ``stat`` dict."""

    mode: int  # includes S_IFREG / S_IFDIR
    size: int
    mtime: float
    nlink: int
    uid: int
    gid: int


class RegistryFilesystem:
    """The filesystem core; thread-safe (mfusepy calls it from many threads)."""

    def __init__(
        self,
        driver: StorageDriver,
        options: FsOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.options = options
        self.mount_time = time.time()
        self._cache = MetaCache(
            options.metadata_ttl, options.negative_ttl, options.metadata_cache_entries, clock,
            digest_ttl=options.digest_ttl,
        )
        self._pool = ThreadPoolExecutor(max(1, options.read_parallelism), thread_name_prefix="s3regfs-io")
        self._lister = Lister(driver, self._cache, options.metadata_ttl, options.listing_walk_ahead, self._pool)
        self._budget = ByteBudget(options.readahead_budget)
        self._spill = SpillArea(os.path.join(options.cache_dir, "spill"))
        self._datacache = self._open_datacache()
        if not options.read_only:
            _usable(options.cache_dir, self._spill.check)
        self._ctx = WriteContext(
            driver,
            options,
            self._spill,
            self._pool,
            UploadGate(options.max_streaming_writers, PUT_BUDGET_THRESHOLDS * options.stream_threshold),
            self._committed,
        )
        self._handles = HandleTable()
        self._paths = PathLocks()
        self._ns = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._local_dirs: dict[str, float] = {}
        self._local_kids: dict[str, set[str]] = {}  # parent -> names of its local dirs
        self._hidden: dict[str, Node] = {}
        self._orphans: dict[str, Node] = {}  # libfuse's .fuse_hidden* stand-in names → open unlinked files
        self._overrides = Overrides()
        self._file_mode = stat.S_IFREG | (options.file_mode & 0o7777)
        self._dir_mode = stat.S_IFDIR | (options.dir_mode & 0o7777)
        self._lost: list[str] = []
        self._closed = False

    def _open_datacache(self) -> DataCache | None:
        opts = self.options
        if opts.data_cache_size <= 0 or not opts.immutable_prefixes:
            return None
        directory = os.path.join(opts.cache_dir, "data")
        return _usable(
            opts.cache_dir,
            lambda: DataCache(
                directory, opts.data_cache_size, opts.data_cache_block, opts.immutable_prefixes
            ),
        )

    # == attributes ==================================================================================

    def getattr(self, path: str | None, fh: int | None = None) -> Attr:
        if fh is not None:
            try:
                node = self._handles.get(fh).node
            except FsError:
                node = None
            if node is not None:
                name = node.path
                if name is None:  # unlinked while open: fstat works as on a local disk
                    return self._unlinked_attr(node)
                return self._attr(name, node.meta(), live=True)
        if path is None:
            raise FsError(errno.EBADF, f"no open file handle {fh}")
        if path == "/":
            return self._attr("/", _DIR)
        dpath = paths.for_lookup(path)
        if _hidden_name(dpath):
            return self._unlinked_attr(self._orphan(dpath))
        meta, live = self._resolve(dpath)
        return self._attr(dpath, meta, live)

    def _attr(self, path: str, meta: Meta, live: bool = False) -> Attr:
        opts = self.options
        if meta.is_dir:
            mode, size, nlink = self._dir_mode, 0, 2
            mtime = self._local_dirs.get(path, self.mount_time)
        else:
            mode, size, nlink, mtime = self._file_mode, meta.size, 1, meta.mtime
        if not self._overrides.any():
            return Attr(mode, size, mtime, nlink, opts.uid, opts.gid)
        return self._overridden(path, meta, live, Attr(mode, size, mtime, nlink, opts.uid, opts.gid))

    def _unlinked_attr(self, node: Node) -> Attr:
        """An open file without a name: link count 0, and what fchmod/futimens set on it."""
        meta = node.meta()
        attr = Attr(self._file_mode, meta.size, meta.mtime, 0, self.options.uid, self.options.gid)
        return _apply(node.override, attr) if node.override is not None else attr

    def _overridden(self, path: str, meta: Meta, live: bool, attr: Attr) -> Attr:
        """``attr`` with what chmod/chown/utimens set on ``path`` (dropped once the object changed)."""
        override = self._overrides.get(path)
        if override is None:
            return attr
        exact = not live and not meta.local and not meta.is_dir
        if exact and override.base is not None and override.base != (meta.size, meta.mtime):
            self._overrides.pop(path)  # the object was replaced: its own attributes are back
            return attr
        return _apply(override, attr)

    def _resolve(self, path: str) -> tuple[Meta, bool]:
        """What ``path`` is (``live`` when it is an open file); ENOENT when nothing."""
        found = self._lookup(path)
        if found is None:
            raise FsError(errno.ENOENT, f"{path}: no such file or directory")
        return found

    def _resolve_file(self, path: str) -> Meta:
        """The Meta of the file at ``path``; ENOENT when nothing, EISDIR for a directory."""
        meta, _ = self._resolve(path)
        if meta.is_dir:
            raise FsError(errno.EISDIR, f"{path}: is a directory")
        return meta

    def _lookup_local(self, path: str) -> Meta | None:
        """What this mount knows about ``path`` without a request: Meta, ABSENT, or None."""
        if path == "/":
            return _DIR
        if _hidden_name(path):
            with self._ns:
                orphan = self._orphans.get(path)
            return orphan.meta() if orphan is not None else ABSENT
        with self._ns:
            node = self._nodes.get(path)
            if node is not None:
                return node.meta()
            if path in self._local_dirs:
                return _DIR
            if path in self._hidden:
                return ABSENT
        return self._cache.lookup(path)

    def _lookup(self, path: str) -> tuple[Meta, bool] | None:
        if path == "/":
            return _DIR, False
        if _hidden_name(path):  # libfuse's stand-in names are never keys: no request
            with self._ns:
                orphan = self._orphans.get(path)
            return (orphan.meta(), True) if orphan is not None else None
        with self._ns:
            node = self._nodes.get(path)
            if node is not None:
                return node.meta(), True
            if path in self._local_dirs:
                return _DIR, False
            if path in self._hidden:
                return None
        meta = self._cache.lookup(path)
        if meta is ABSENT:
            return None
        if meta is None:
            try:
                info = self.driver.stat(path)
            except PathNotFoundError:
                self._cache.put_absent(path)
                return None
            meta = meta_of(info)
            self._cache.put(path, meta)
        return meta, False

    def _dir_or_fail(self, path: str) -> None:
        meta, _ = self._resolve(path)
        if not meta.is_dir:
            raise FsError(errno.ENOTDIR, f"{path}: not a directory")

    # == directories =================================================================================

    def readdir(self, path: str) -> list[tuple[str, Attr]]:
        """The entries of a directory (without ``.`` and ``..``), sorted by name."""
        dpath = paths.for_lookup(path)
        known = self._lookup_local(dpath)
        if known is not None and not known.is_dir:
            raise FsError(errno.ENOTDIR if known is not ABSENT else errno.ENOENT, f"{dpath}: not a directory")
        try:
            entries = self._lister.list_dir(dpath)
        except PathNotFoundError:
            if known is None:
                self._dir_or_fail(dpath)  # ENOENT or ENOTDIR, as the driver says
            entries = {}
        live: set[str] = set()
        with self._ns:
            for name in self._local_children(dpath):
                entries[name] = _DIR
            for node_path, node in self._nodes.items():
                if node_path != "/" and paths.parent(node_path) == dpath:
                    entries[paths.basename(node_path)] = node.meta()
                    live.add(paths.basename(node_path))
            for hidden in self._hidden:
                if paths.parent(hidden) == dpath and paths.basename(hidden) not in live:
                    entries.pop(paths.basename(hidden), None)
        return [
            (name, self._attr(paths.join(dpath, name), entries[name], name in live))
            for name in sorted(entries)
        ]

    def _local_children(self, directory: str) -> list[str]:
        return list(self._local_kids.get(directory, ()))

    def _add_local_dir(self, path: str, when: float) -> None:
        """Record a directory of this mount (call under ``self._ns``)."""
        if path != "/" and path not in self._local_dirs:
            self._local_dirs[path] = when
            self._local_kids.setdefault(paths.parent(path), set()).add(paths.basename(path))

    def _drop_local_dir(self, path: str) -> float | None:
        """Forget a directory of this mount (call under ``self._ns``)."""
        when = self._local_dirs.pop(path, None)
        if when is not None:
            kids = self._local_kids.get(paths.parent(path))
            if kids is not None:
                kids.discard(paths.basename(path))
                if not kids:
                    del self._local_kids[paths.parent(path)]
        return when

    def mkdir(self, path: str, mode: int) -> None:
        self._writable()
        dpath = paths.for_create(path)
        with self._paths.hold(dpath):
            if self._lookup(dpath) is not None:
                raise FsError(errno.EEXIST, f"{dpath}: already exists")
            self._dir_or_fail(paths.parent(dpath))
            with self._ns:
                self._add_local_dir(dpath, time.time())
            self._cache.added(dpath, _DIR)
            self._cache.put_listing(dpath, {})  # known empty: lookups inside cost nothing (within the TTL)

    def rmdir(self, path: str) -> None:
        self._writable()
        dpath = paths.for_lookup(path)
        if dpath == "/":
            raise FsError(errno.EBUSY, "the mount root cannot be removed")
        with self._paths.hold(dpath):
            self._dir_or_fail(dpath)
            self._check_empty(dpath)
            with self._ns:
                hidden = [p for p in self._hidden if paths.is_under(p, dpath)]
            for key in hidden:  # unlinked but still open: copied locally so their keys go now
                self._unhide(key, delete=True)
            with self._ns:
                self._drop_local_dir(dpath)
            self._cache.removed(dpath)
            self._cache.forget_tree(dpath)
            self._lister.forget_sessions_under(dpath)
            self._overrides.pop(dpath)
            self._keep_parent(dpath)

    def _check_empty(self, dpath: str) -> None:
        """ENOTEMPTY unless ``dpath`` has no entry, locally or (freshly listed) in the bucket."""
        with self._ns:
            busy = any(paths.is_under(p, dpath) for p in self._nodes) or bool(self._local_children(dpath))
            hidden = {p for p in self._hidden if paths.is_under(p, dpath)}
        if busy:
            raise FsError(errno.ENOTEMPTY, f"{dpath}: directory not empty")
        try:
            infos = self.driver.list_info(dpath)
        except PathNotFoundError:
            return
        remaining = [info.path for info in infos if info.path not in hidden]
        if not remaining:
            return
        if all(not paths.name_ok(p[len(dpath) + 1 :]) for p in remaining):
            log.warning(
                "rmdir %s: it holds %d key(s) that cannot be represented (e.g. %r); not removed",
                dpath,
                len(remaining),
                remaining[0],
            )
        raise FsError(errno.ENOTEMPTY, f"{dpath}: directory not empty")

    def _keep_parent(self, path: str) -> None:
        """The parent of a removed entry stays a directory in this mount (S3 would drop it)."""
        parent = paths.parent(path)
        if parent == "/":
            return
        with self._ns:
            self._add_local_dir(parent, self.mount_time)

    def statfs(self) -> dict[str, int]:
        blocks = 1 << 40  # 4 PiB of 4 KiB blocks: "large", as a bucket is
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": blocks,
            "f_bfree": blocks,
            "f_bavail": blocks,
            "f_files": 1 << 32,
            "f_ffree": 1 << 32,
            "f_favail": 1 << 32,
            "f_namemax": paths.NAME_MAX,
        }

    # == opening files ===============================================================================

    def create(self, path: str, flags: int, mode: int, pid: int = 0) -> int:
        self._writable()
        dpath = paths.for_create(path)
        with self._paths.hold(dpath):
            with self._ns:
                node = self._nodes.get(dpath)
            if node is not None:
                if flags & os.O_EXCL:
                    raise FsError(errno.EEXIST, f"{dpath}: already exists")
                return self._open_node(node, flags, pid)
            self._unhide(dpath, delete=True)
            found = self._lookup(dpath)
            if found is not None:
                meta, _ = found
                if meta.is_dir:
                    raise FsError(errno.EISDIR, f"{dpath}: is a directory")
                if flags & os.O_EXCL:
                    raise FsError(errno.EEXIST, f"{dpath}: already exists")
                return self._open_node(self._attach(Node(self._ctx, dpath, meta)), flags, pid)
            node = Node(self._ctx, dpath, None)
            node.truncate_to_empty()
            self._attach(node)
            self._cache.added(dpath, node.meta())
            self._overrides.pop(dpath)
            return self._open_node(node, flags & ~os.O_TRUNC, pid)

    def open(self, path: str, flags: int, pid: int = 0) -> int:
        if (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC:
            self._writable()
        dpath = paths.for_lookup(path)
        with self._paths.hold(dpath):
            with self._ns:
                node = self._nodes.get(dpath)
            if node is None:
                meta = self._resolve_file(dpath)
                node = self._attach(Node(self._ctx, dpath, meta))
            return self._open_node(node, flags, pid)

    def _attach(self, node: Node) -> Node:
        assert node.path is not None
        with self._ns:
            self._nodes[node.path] = node
        return node

    def _open_node(self, node: Node, flags: int, pid: int) -> int:
        with node.lock:
            if flags & os.O_TRUNC and (flags & os.O_ACCMODE) != os.O_RDONLY:
                node.truncate_to_empty()
                if node.path is not None:
                    self._overrides.drop_mtime(node.path)
            node.refs += 1
        return self._handles.add(node, flags, pid).fh

    # == data ========================================================================================

    def read(self, fh: int, offset: int, size: int) -> bytes:
        handle = self._handles.get(fh)
        if handle.flags & os.O_ACCMODE == os.O_WRONLY:
            raise FsError(errno.EBADF, f"handle {fh} is not open for reading")
        node = handle.node
        learned = False
        for _ in range(4):  # a read, a re-pin (docs/SEMANTICS.md, "read"), the read again
            data = node.read_local(offset, size)
            if data is not None:
                return data
            with node.lock:
                key, total, etag, served = node.key, node.size, node.pinned_etag(), node.served
                moved = key != node.pinned_key  # this mount renamed it: pin the copy at the new key
                learn = etag is None and not served and not moved and node.path == key
            if key is None:
                return b""
            cached = self._datacache is not None and self._datacache.applies(key)
            if (moved or (learn and cached)) and not learned:  # a data-cached file needs its version
                learned = True
                if self._repin(node, key, etag):
                    continue
                if moved:
                    raise FsError(errno.ESTALE, f"{key}: replaced since this mount moved it", logging.ERROR)
            try:
                data = self._reader(handle, key, total, etag).read(offset, size)
            except ObjectChangedError:
                if self._repin(node, key, etag):
                    continue
                raise  # bytes of the pinned version were returned: ESTALE, never another version's
            if data and not served:
                with node.lock:
                    if (node.key, node.size, node.pinned_etag()) != (key, total, etag):
                        continue  # re-pinned meanwhile by another reader: these may be the old version's
                    node.served = True
            return data
        raise FsError(errno.ESTALE, f"{node.key}: keeps changing under the reader", logging.ERROR)

    def _repin(self, node: Node, key: str, etag: str | None) -> bool:
        """``key`` does not hold the version ``node`` reads: True when it may read the current one."""
        ok, fresh = node.repin(etag)
        if fresh is not None and node.path == key:
            self._cache.put(key, fresh)  # the next open reads the current version
        return ok

    def _reader(self, handle: Handle, key: str, size: int, etag: str | None) -> ReadStream:
        with handle.lock:
            if handle.reader is None or handle.reader_key != (key, size, etag):
                if handle.reader is not None:
                    handle.reader.close()
                opts = self.options
                handle.reader = ReadStream(
                    self._fetcher(key, size, etag),
                    size,
                    self._pool,
                    self._budget,
                    opts.readahead_min,
                    opts.readahead_max,
                    opts.read_part_size,
                    self._align(key),
                )
                handle.reader_key = (key, size, etag)
            return handle.reader

    def _align(self, key: str) -> int:
        cache = self._datacache
        return cache.block if cache is not None and cache.applies(key) else 1

    def _fetcher(self, key: str, size: int, etag: str | None) -> Callable[[int, int], bytes]:
        """Reads of version ``etag`` of ``key`` (unpinned and never data-cached when it is None)."""
        cache = self._datacache
        cache = cache if cache is not None and cache.applies(key) and etag is not None else None

        def fetch(offset: int, length: int) -> bytes:
            if cache is not None:
                hit = cache.read(key, size, etag, offset, length)  # type: ignore[arg-type]
                if hit is not None:
                    return hit
            data = self.driver.read_range(key, offset, length, etag)
            if len(data) != length:
                raise FsError(
                    errno.EIO,
                    f"{key}: short read at {offset}: {len(data)} of {length} bytes "
                    f"(the object changed or is shorter than its size {size})",
                    logging.ERROR,
                )
            if cache is not None:
                cache.store(key, size, etag, offset, data)  # type: ignore[arg-type]
            return data

        return fetch

    def write(self, fh: int, offset: int, data: bytes) -> int:
        self._writable()
        handle = self._handles.get(fh)
        if not handle.writable:
            raise FsError(errno.EBADF, f"handle {fh} is not open for writing")
        written = handle.node.write(offset, bytes(data), handle.append)
        handle.wrote = True
        if handle.node.path is not None:
            self._overrides.drop_mtime(handle.node.path)
        return written

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        self._writable()
        if length < 0:
            raise FsError(errno.EINVAL, f"{path}: negative length")
        if fh is not None:
            handle = self._handles.get(fh)
            handle.node.truncate(length)
            handle.wrote = True
            return
        dpath = paths.for_lookup(path)
        if _hidden_name(dpath):
            self._orphan(dpath).truncate(length)
            return
        with self._paths.hold(dpath):
            with self._ns:
                node = self._nodes.get(dpath)
            if node is not None:
                node.truncate(length)
                return
            meta = self._resolve_file(dpath)
            if meta.size == length:
                return
            scratch = Node(self._ctx, dpath, meta)
            try:
                scratch.truncate(length)
                scratch.commit()
            finally:
                scratch.close()

    def flush(self, fh: int, pid: int = 0) -> None:
        """``close()`` of one descriptor: commit, when this is the writer's own close.

        A flush commits only when something was written through the handle and it comes from
        the process that opened it.  ``dd``, a shell redirect and ``exec >file`` open the file,
        ``dup2`` the descriptor and close the original (a flush before any byte), and children
        that inherited the descriptor close it when they exit (flushes from other processes):
        committing then would put an empty or partial object at the key.  What those flushes
        skip is committed by a later flush, ``fsync`` or the last ``release``.
        """
        handle = self._handles.get(fh)
        if handle.writable and handle.wrote and pid == handle.pid:
            handle.node.commit()

    def fsync(self, fh: int, datasync: bool) -> None:
        self._handles.get(fh).node.commit()

    def release(self, fh: int) -> None:
        handle = self._handles.pop(fh)
        handle.drop_reader()
        node = handle.node
        while True:
            name = node.path
            with self._paths.hold(name or node.key or ""):
                if node.path != name:
                    continue  # renamed meanwhile: lock the new name
                with node.lock:
                    node.refs -= 1
                    if node.refs > 0:
                        return
                    self._last_close(node)
                return

    def _last_close(self, node: Node) -> None:
        """The last handle is gone: save the data, forget the node, run a deferred delete."""
        try:
            node.commit()
        except FsError as exc:
            label = node.path or node.key or "?"
            log.error("%s: closed with data that could NOT be saved: %s", label, exc.message)
            with self._ns:
                self._lost.append(label)
            if node.remote is None and node.path is not None:
                self._cache.removed(node.path)
        finally:
            with self._ns:
                if node.path is not None and self._nodes.get(node.path) is node:
                    del self._nodes[node.path]
            if node.deferred_delete and node.key is not None:
                self._deferred_delete(node.key, node.remote)
                with self._ns:  # only now: an rmdir of its directory waits for this delete
                    if self._hidden.get(node.key) is node:
                        del self._hidden[node.key]
            node.close()

    def _deferred_delete(self, key: str, expected: Meta | None) -> None:
        """Delete the key of a file unlinked while open, unless another writer replaced it since."""
        try:
            now = meta_of(self.driver.stat(key))
            if expected is not None and (
                now.size != expected.size or (not expected.local and now.mtime != expected.mtime)
            ):
                log.info("%s: replaced by another writer since it was unlinked; not deleted", key)
                return
            self.driver.delete(key)
        except PathNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - the file is gone for this mount either way
            log.error("%s: unlinked while open, but deleting it at its last close failed: %s", key, exc)

    # == namespace ===================================================================================

    def unlink(self, path: str) -> None:
        self._writable()
        dpath = paths.for_lookup(path)
        if _hidden_name(dpath):  # libfuse drops its stand-in name at the last close
            with self._ns:
                if self._orphans.pop(dpath, None) is None:
                    raise FsError(errno.ENOENT, f"{dpath}: no such file")
            return
        with self._paths.hold(dpath):
            with self._ns:
                node = self._nodes.get(dpath)
            if node is None:
                self._resolve_file(dpath)
                self._delete_file_key(dpath)
            else:
                self._unlink_open(node, dpath)
            self._cache.removed(dpath)
            self._overrides.pop(dpath)
            self._keep_parent(dpath)

    def _unlink_open(self, node: Node, dpath: str) -> None:
        """Unlink a name that has open handles: they keep the content (docs/SEMANTICS.md)."""
        with node.lock:
            if node.key is not None:
                if node.is_remote() and node.size > self.options.unlink_download_max:
                    self._check_no_dir(dpath)
                    node.deferred_delete = True
                    with self._ns:
                        self._hidden[dpath] = node
                else:
                    node.ensure_local()
                    self._delete_file_key(dpath)
                    node.key = None
            node.path = None
            node.commit()  # drops a stream and the dirty flag: an unlinked file is never uploaded
            with self._ns:
                if self._nodes.get(dpath) is node:
                    del self._nodes[dpath]

    def _hide(self, src: str, hidden: str) -> None:
        """libfuse's unlink (or rename over) of an open file: ``src`` becomes the stand-in ``hidden``.

        The file is unlinked as by :meth:`unlink`; the stand-in name only lets ``fstat`` and friends
        reach the open file (libfuse asks by path): it is never a key, never listed, and libfuse
        unlinks it at the last close.
        """
        with self._paths.hold(src):
            with self._ns:
                node = self._nodes.get(src)
            if node is None:  # already released here: a plain unlink
                self.unlink(src)
                return
            self._unlink_open(node, src)
            self._cache.removed(src)
            override = self._overrides.pop(src)
            self._keep_parent(src)
        with node.lock:
            if override is not None and node.override is None:
                node.override = replace(override, base=None)
        with self._ns:
            self._orphans[hidden] = node

    def _orphan(self, hidden: str) -> Node:
        with self._ns:
            node = self._orphans.get(hidden)
        if node is None:
            raise FsError(errno.ENOENT, f"{hidden}: no such file")
        return node

    def _unhide(self, dpath: str, delete: bool) -> None:
        """A name hidden by unlink-while-open is reused: give the old handles a local copy first."""
        with self._ns:
            node = self._hidden.pop(dpath, None)
        if node is None:
            return
        with node.lock:
            if node.refs == 0:  # its last close ran (under this lock) and deleted the key
                return
            node.ensure_local()
            node.deferred_delete = False
            node.key = None
        if delete:
            self._deferred_delete(dpath, node.remote)

    def _delete_file_key(self, dpath: str) -> None:
        self._check_no_dir(dpath)
        try:
            self.driver.delete(dpath)
        except PathNotFoundError as exc:
            self._cache.removed(dpath)
            raise FsError(errno.ENOENT, f"{dpath}: no such file") from exc

    def _check_no_dir(self, dpath: str) -> None:
        """EISDIR when keys live below ``dpath``: the driver's delete/move would take them too."""
        listed = self._cache.listing(paths.parent(dpath))
        if listed is not None and dpath != "/":
            meta = listed.get(paths.basename(dpath))
            if meta is not None and not meta.is_dir:
                return
        try:
            children = self.driver.list_info(dpath)
        except PathNotFoundError:
            return
        if children:
            log.warning(
                "%s is both a file and a directory in the bucket; the directory wins and the file "
                "is not removed (the driver's delete would remove the directory's content too)",
                dpath,
            )
            raise FsError(errno.EISDIR, f"{dpath}: is also a directory")

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        if flags & RENAME_EXCHANGE or flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise FsError(errno.EINVAL, "RENAME_EXCHANGE (and unknown rename flags) are not supported")
        self._writable()
        src = paths.for_lookup(old)
        dst = paths.for_create(new)
        if _hidden_name(dst):
            self._hide(src, dst)
            return
        if "/" in (src, dst):
            raise FsError(errno.EBUSY, "the mount root cannot be renamed")
        if paths.is_under(dst, src):
            raise FsError(errno.EINVAL, f"cannot move {src} into itself ({dst})")
        with self._paths.hold(src, dst):
            smeta, _ = self._resolve(src)
            if src == dst:
                return
            found = self._lookup(dst)
            if found is not None and flags & RENAME_NOREPLACE:
                raise FsError(errno.EEXIST, f"{dst}: already exists")
            self._dir_or_fail(paths.parent(dst))
            dmeta = found[0] if found is not None else None
            if smeta.is_dir:
                self._rename_dir(src, dst, dmeta)
            elif dmeta is not None and dmeta.is_dir:
                raise FsError(errno.EISDIR, f"{dst}: is a directory")
            else:
                self._rename_file(src, dst)
            self._keep_parent(src)

    def _rename_file(self, src: str, dst: str) -> None:
        with self._ns:
            snode = self._nodes.get(src)
            dnode = self._nodes.get(dst)
        if snode is not None:
            with snode.lock:
                snode.commit()
                size = snode.size
        if dnode is not None and dnode is not snode:
            self._displace(dnode, dst)
        self._unhide(dst, delete=False)
        self.driver.move(src, dst)  # the contract's move touches the source key only (not src/...)
        if snode is not None:
            with snode.lock, self._ns:
                if self._nodes.get(src) is snode:
                    del self._nodes[src]
                self._nodes[dst] = snode
                snode.path = snode.key = dst
                meta = Meta(False, size, time.time(), local=True)
        else:
            old = self._cache.lookup(src)
            if old is not None and old is not ABSENT and not old.is_dir:
                meta = Meta(False, old.size, time.time(), local=True)
            else:  # nothing known (the cache entry expired meanwhile): ask, never record a guessed size
                meta = meta_of(self.driver.stat(dst))
        self._cache.removed(src)
        self._cache.added(dst, meta)
        if self._overrides.move(src, dst) is not None:
            self._rebase(dst)

    def _displace(self, node: Node, dpath: str) -> None:
        """The name of an open file is taken by a rename: its handles keep the old content."""
        with node.lock:
            node.ensure_local()
            node.key = None
            node.path = None
            node.commit()  # unlinked now: drops any stream, uploads nothing
        with self._ns:
            if self._nodes.get(dpath) is node:
                del self._nodes[dpath]

    def _rename_dir(self, src: str, dst: str, dmeta: Meta | None) -> None:
        if dmeta is not None:
            if not dmeta.is_dir:
                raise FsError(errno.ENOTDIR, f"{dst}: not a directory")
            self._check_empty(dst)
        with self._ns:
            open_nodes = [n for p, n in self._nodes.items() if paths.is_under(p, src)]
        for node in open_nodes:
            with node.lock:
                node.commit()
        files, dirs = self._keys_under(src)
        self._move_keys(src, dst, files, dirs)
        with self._ns:
            self._rebase_tree(src, dst)
        self._overrides.move_tree(src, dst)
        for tree in (src, dst):
            self._cache.forget_tree(tree)
            self._lister.forget_sessions_under(tree)
        self._cache.removed(src)
        self._cache.added(dst, _DIR)

    def _keys_under(self, src: str) -> tuple[list[str], set[str]]:
        files: list[str] = []
        dirs: set[str] = set()

        def collect(info: FileInfo) -> None:
            (dirs.add(info.path) if info.is_dir else files.append(info.path))

        try:
            self.driver.walk(src, collect)
        except PathNotFoundError:
            pass
        return files, dirs

    def _move_keys(self, src: str, dst: str, files: list[str], dirs: set[str]) -> None:
        """Move every key (parallel; a key that is also a directory prefix goes last)."""
        with self._ns:
            hidden = {p: n for p, n in self._hidden.items() if paths.is_under(p, src)}
        plain = [f for f in files if f not in dirs]
        clashing = sorted((f for f in files if f in dirs), reverse=True)
        moved = 0
        try:
            futures = [self._pool.submit(self.driver.move, f, paths.rebase(f, src, dst)) for f in plain]
            wait(futures)
            for future in futures:
                future.result()
                moved += 1
            for f in clashing:
                self.driver.move(f, paths.rebase(f, src, dst))
                moved += 1
        except Exception as exc:
            raise io_error(
                f"rename {src} -> {dst} stopped after moving {moved} of {len(files)} keys "
                "(directory renames are not atomic; the rest is still under the old name)",
                exc,
            ) from exc
        finally:
            self._cache.forget_tree(src)
            self._cache.forget_tree(dst)
        with self._ns:
            for old_key, node in hidden.items():
                new_key = paths.rebase(old_key, src, dst)
                del self._hidden[old_key]
                self._hidden[new_key] = node
                node.key = new_key

    def _rebase_tree(self, src: str, dst: str) -> None:
        """Local directories and open files below ``src`` move to ``dst`` (under ``self._ns``).

        Node attributes are assigned without the node lock (the lock order is node → ns).
        """
        for path in sorted(p for p in self._local_dirs if p == src or paths.is_under(p, src)):
            when = self._drop_local_dir(path)
            self._add_local_dir(paths.rebase(path, src, dst), when or self.mount_time)
        for path in [p for p in self._orphans if paths.is_under(p, src)]:
            self._orphans[paths.rebase(path, src, dst)] = self._orphans.pop(path)
        for path in [p for p in self._nodes if paths.is_under(p, src)]:
            node = self._nodes.pop(path)
            new_path = paths.rebase(path, src, dst)
            self._nodes[new_path] = node
            node.path = new_path
            if node.key is not None:
                node.key = new_path
        self._add_local_dir(dst, time.time())

    # == attributes that are accepted but not stored =================================================

    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> None:
        self._set_override(path, fh, mode=mode & 0o7777)

    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> None:
        keep = (-1, _KEEP)
        self._set_override(path, fh, uid=None if uid in keep else uid, gid=None if gid in keep else gid)

    def utimens(self, path: str | None, times: tuple[float, float] | None, fh: int | None = None) -> None:
        self._set_override(path, fh, mtime=time.time() if times is None else float(times[1]))

    def _set_override(self, path: str | None, fh: int | None, **fields: object) -> None:
        self._writable()
        if fh is not None:
            node = self._handles.get(fh).node
            with node.lock:
                if node.path is None:  # unlinked: the attributes live with the open file
                    values = {k: v for k, v in fields.items() if v is not None}
                    node.override = replace(node.override or Override(), **values)  # type: ignore[arg-type]
                    return
                path = node.path
        if path is None:
            raise FsError(errno.EBADF, "no path and no open file handle")
        dpath = "/" if path == "/" else paths.for_lookup(path)
        if _hidden_name(dpath):
            orphan = self._orphan(dpath)
            with orphan.lock:
                values = {k: v for k, v in fields.items() if v is not None}
                orphan.override = replace(orphan.override or Override(), **values)  # type: ignore[arg-type]
            return
        meta, live = self._resolve(dpath)
        base = None
        if not meta.is_dir and not live:
            if meta.local:
                meta = self._fresh_meta(dpath)
            base = (meta.size, meta.mtime)
        self._overrides.update(dpath, base, **fields)

    def _fresh_meta(self, dpath: str) -> Meta:
        try:
            meta = meta_of(self.driver.stat(dpath))
        except PathNotFoundError as exc:
            self._cache.removed(dpath)
            raise FsError(errno.ENOENT, f"{dpath}: no such file") from exc
        self._cache.put(dpath, meta)
        return meta

    def _rebase(self, dpath: str) -> None:
        """An override on a file just written or moved: re-anchor it on the server's mtime."""
        try:
            meta = self._fresh_meta(dpath)
        except (FsError, Exception) as exc:  # noqa: BLE001 - an override is best effort
            log.debug("%s: cannot re-anchor attributes: %s", dpath, exc)
            return
        self._overrides.rebase(dpath, (meta.size, meta.mtime))

    def _committed(self, node: Node, path: str, meta: Meta) -> None:
        """A node's content reached the bucket (called under the node's lock)."""
        self._cache.added(path, Meta(False, meta.size, meta.mtime, local=True))
        if self._overrides.get(path) is not None:
            self._rebase(path)

    # == xattrs ======================================================================================

    def getxattr(self, path: str, name: str) -> bytes:
        if name != URL_XATTR:
            raise FsError(errno.ENODATA, f"{path}: no attribute {name}")
        url = self._url(path)
        if url is None:
            raise FsError(errno.ENODATA, f"{path}: no URL (a directory, an unsaved file, or no redirect)")
        return url.encode()

    def listxattr(self, path: str) -> list[str]:
        return [URL_XATTR] if self._url(path) is not None else []

    def _url(self, path: str) -> str | None:
        if path == "/":
            return None
        dpath = paths.for_lookup(path)
        meta, live = self._resolve(dpath)
        if meta.is_dir:
            return None
        if live:
            with self._ns:
                node = self._nodes.get(dpath)
            if node is not None and (node.key != dpath or node.dirty):
                return None
        return self.driver.redirect_url("GET", dpath, expires_in=self.options.url_duration)

    def setxattr(self, path: str, name: str, value: bytes, flags: int) -> None:
        raise FsError(errno.ENOTSUP, f"{path}: extended attributes cannot be set ({name})")

    def removexattr(self, path: str, name: str) -> None:
        raise FsError(errno.ENOTSUP, f"{path}: extended attributes cannot be removed ({name})")

    # == lifecycle ===================================================================================

    def shutdown(self, timeout: float | None = None) -> bool:
        """Finish or fail every pending upload; True when no data was lost."""
        nodes = {id(h.node): h.node for h in self._handles.all()}.values()
        dirty = [n for n in nodes if n.dirty and n.path is not None]
        ok = True
        if dirty:
            log.info("shutdown: uploading %d open file(s)", len(dirty))
            with ThreadPoolExecutor(max(1, min(8, len(dirty))), thread_name_prefix="s3regfs-final") as pool:
                futures = {pool.submit(n.commit): n for n in dirty}
                done, pending = wait(futures, timeout=timeout)
                for future in done:
                    if future.exception() is not None:
                        ok = False
                        log.error("shutdown: %s was NOT saved: %s", futures[future].path, future.exception())
                for future in pending:
                    ok = False
                    log.error(
                        "shutdown: %s was NOT saved: the upload did not finish in time", futures[future].path
                    )
        with self._ns:
            hidden = list(self._hidden.items())
            self._hidden.clear()
            lost = list(self._lost)
        for key, node in hidden:
            self._deferred_delete(key, node.remote)
        if lost:
            ok = False
            log.error(
                "shutdown: %d file(s) were closed with data that could not be saved: %s", len(lost), lost[:10]
            )
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._datacache is not None:
            self._datacache.close()
        return ok

    @property
    def lost(self) -> list[str]:
        """Paths whose data could not be saved when they were closed (for the exit status)."""
        with self._ns:
            return list(self._lost)

    def _writable(self) -> None:
        if self.options.read_only:
            raise FsError(errno.EROFS, "read-only mount")


_HIDDEN_NAME = re.compile(r"\.fuse_hidden[0-9a-f]{16}")
"""libfuse's stand-in for an unlinked open file (``hidden_name()``: ``.fuse_hidden%08x%08x``)."""


def _hidden_name(path: str) -> bool:
    return _HIDDEN_NAME.fullmatch(paths.basename(path)) is not None


def _apply(override: Override, attr: Attr) -> Attr:
    """``attr`` with the fields chmod/chown/utimens set."""
    mode = attr.mode if override.mode is None else stat.S_IFMT(attr.mode) | (override.mode & 0o7777)
    return Attr(
        mode,
        attr.size,
        attr.mtime if override.mtime is None else override.mtime,
        attr.nlink,
        attr.uid if override.uid is None else override.uid,
        attr.gid if override.gid is None else override.gid,
    )


def _usable(cache_dir: str, make: Callable[[], T]) -> T:
    try:
        return make()
    except OSError as exc:
        from s3regfs.errors import UserError

        raise UserError(
            f"the cache directory {cache_dir} is not usable ({exc.strerror or exc}); "
            "choose a writable one with -o cache_dir=DIR"
        ) from exc
