"""RegistryFilesystem: POSIX semantics over a StorageDriver (docs/SEMANTICS.md is the contract).

No mfusepy import here: the adapter in :mod:`s3regfs.fs.operations` translates.
Paths are FUSE paths (``/``-rooted str, decoded by the adapter with
``surrogateescape``); every error is raised as :class:`s3regfs.fs.errors.FsError`
or as a driver error that :func:`s3regfs.fs.errors.to_errno` maps.

Owns the composition of the parts and the order of the operations that are not a part's own
(getattr, readdir, mkdir/rmdir, create/open, write/truncate/flush/fsync/release, xattrs,
shutdown).  The parts, each below the next in the import order (nothing calls back up):

* :mod:`~s3regfs.fs.namespace`: the namespace tables (open files, local directories, hidden
  names, libfuse's stand-in names), their lock and the node moves;
* :mod:`~s3regfs.fs.lookup`: what a path is (tables → metadata cache → one stat), emptiness checks;
* :mod:`~s3regfs.fs.attributes`: ``stat`` attributes and the chmod/chown/utimens overrides;
* :mod:`~s3regfs.fs.unlinking`: unlink, also of open files, and deferred deletes;
* :mod:`~s3regfs.fs.renaming`: rename of files and directories;
* :mod:`~s3regfs.fs.reading`: reads (local copy, read streams, version pins, data cache);
* and below them :mod:`~s3regfs.fs.paths`, :mod:`~s3regfs.fs.metacache`,
  :mod:`~s3regfs.fs.listing`, :mod:`~s3regfs.fs.writeback`, :mod:`~s3regfs.fs.readahead`,
  :mod:`~s3regfs.fs.datacache`, :mod:`~s3regfs.fs.spill`, :mod:`~s3regfs.fs.handles`,
  :mod:`~s3regfs.fs.uploadgate`.

Lock order: path locks → node lock → namespace lock.  The namespace lock is held only inside
:class:`~s3regfs.fs.namespace.Namespace` for table changes, never across a driver call, so an
answer from the tables or the cache never waits for S3.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

from s3regfs.driver.base import StorageDriver
from s3regfs.driver.errors import PathNotFoundError
from s3regfs.fs import paths
from s3regfs.fs.attributes import Attr, Attributes
from s3regfs.fs.datacache import DataCache
from s3regfs.fs.errors import CacheDirError, FsError
from s3regfs.fs.handles import HandleTable, PathLocks
from s3regfs.fs.listing import Lister
from s3regfs.fs.lookup import Resolver
from s3regfs.fs.metacache import ABSENT, Meta, MetaCache, Overrides
from s3regfs.fs.metaindex import MetaIndex
from s3regfs.fs.namespace import DIR, Namespace, is_stand_in
from s3regfs.fs.options import FsOptions
from s3regfs.fs.readahead import ByteBudget
from s3regfs.fs.reading import ReadPath
from s3regfs.fs.renaming import RENAME_EXCHANGE, RENAME_NOREPLACE, Renamer
from s3regfs.fs.spill import SpillArea
from s3regfs.fs.unlinking import Unlinker
from s3regfs.fs.uploadgate import UploadGate
from s3regfs.fs.writeback import Node, WriteContext

__all__ = ["Attr", "RegistryFilesystem", "URL_XATTR", "STATUS_XATTR", "RENAME_NOREPLACE", "RENAME_EXCHANGE"]

log = logging.getLogger(__name__)
T = TypeVar("T")

URL_XATTR = "user.s3regfs.url"
STATUS_XATTR = "user.s3regfs.status"
"""On the mount root only, read-only: the mount's status as JSON (``s3regfs status``; docs/OPERATIONS.md)."""
_KEEP = 0xFFFFFFFF  # chown's "leave unchanged" (-1 as an unsigned id)
PUT_BUDGET_THRESHOLDS = 4
"""Single PUTs in flight hold at most this many ``stream_threshold``s of memory together."""


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
            digest_ttl=options.digest_ttl, index=self._open_index(),
        )
        self._pool = ThreadPoolExecutor(max(1, options.read_parallelism), thread_name_prefix="s3regfs-io")
        self._lister = Lister(driver, self._cache, options.metadata_ttl, options.listing_walk_ahead, self._pool)
        self._budget = ByteBudget(options.readahead_budget)
        self._spill = SpillArea(os.path.join(options.cache_dir, "spill"))
        self._datacache = self._open_datacache()
        if not options.read_only:
            _usable(options.cache_dir, self._spill.check)
        self._handles = HandleTable()
        self._paths = PathLocks()
        self._ns = Namespace(self.mount_time)
        self._overrides = Overrides()
        self._resolver = Resolver(driver, self._ns, self._cache, self._lister, options.lookup_subtree)
        self._attrs = Attributes(options, self._ns, self._resolver, self._cache, self._overrides)
        self._ctx = WriteContext(
            driver,
            options,
            self._spill,
            self._pool,
            UploadGate(options.max_streaming_writers, PUT_BUDGET_THRESHOLDS * options.stream_threshold),
            self._attrs.committed,
        )
        self._unlinker = Unlinker(
            driver, options, self._ns, self._resolver, self._cache, self._overrides, self._paths
        )
        self._renamer = Renamer(
            driver, self._ns, self._resolver, self._unlinker, self._attrs, self._cache, self._lister,
            self._paths, self._pool,
        )
        self._reading = ReadPath(driver, options, self._cache, self._pool, self._budget, self._datacache)
        self._closed = False
        self.status_source: Callable[[], bytes] | None = None
        """What the :data:`STATUS_XATTR` of the root answers (set by the mount; None: no such xattr)."""

    def _open_index(self) -> MetaIndex | None:
        opts = self.options
        if opts.metadata_index_entries <= 0 or opts.metadata_ttl <= 0:
            return None
        try:
            os.makedirs(opts.cache_dir, exist_ok=True)
            return MetaIndex(os.path.join(opts.cache_dir, "metadata.sqlite"), opts.metadata_index_entries)
        except OSError as exc:
            log.warning("no metadata index in %s (%s): what memory cannot hold is asked again", opts.cache_dir, exc)
            return None

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
                if name is not None:
                    return self._attrs.attr(name, node.meta(), live=True)
                path = self._ns.displaced_from(node)  # its name's inode: the name's attributes
                if path is None:  # unlinked while open: fstat works as on a local disk
                    return self._attrs.unlinked_attr(node)
        if path is None:
            raise FsError(errno.EBADF, f"no open file handle {fh}")
        if path == "/":
            return self._attrs.attr("/", DIR)
        dpath = paths.for_lookup(path)
        if is_stand_in(dpath):
            return self._attrs.unlinked_attr(self._ns.orphan(dpath))
        node = self._ns.node(dpath)
        if node is not None and (current := self._replaced_in_bucket(node, dpath)) is not None:
            return self._attrs.attr(dpath, current)  # what the next open reads; its handles read on
        meta, live = self._resolver.resolve(dpath)
        return self._attrs.attr(dpath, meta, live)

    # == directories =================================================================================

    def readdir(self, path: str) -> list[tuple[str, Attr]]:
        """The entries of a directory (without ``.`` and ``..``), sorted by name."""
        dpath = paths.for_lookup(path)
        known = self._resolver.lookup_local(dpath)
        if known is not None and not known.is_dir:
            raise FsError(errno.ENOTDIR if known is not ABSENT else errno.ENOENT, f"{dpath}: not a directory")
        try:
            entries = self._lister.list_dir(dpath)
        except PathNotFoundError:
            if known is None:
                self._resolver.dir_or_fail(dpath)  # ENOENT or ENOTDIR, as the driver says
            entries = {}
        live = self._ns.overlay(dpath, entries)
        return [
            (name, self._attrs.attr(paths.join(dpath, name), entries[name], name in live))
            for name in sorted(entries)
        ]

    def mkdir(self, path: str, mode: int) -> None:
        self._writable()
        dpath = paths.for_create(path)
        with self._paths.hold(dpath):
            if self._resolver.lookup(dpath) is not None:
                raise FsError(errno.EEXIST, f"{dpath}: already exists")
            self._resolver.dir_or_fail(paths.parent(dpath))
            self._ns.add_dir(dpath, time.time())
            self._cache.added(dpath, DIR)
            self._cache.put_listing(dpath, {})  # known empty: lookups inside cost nothing (within the TTL)

    def rmdir(self, path: str) -> None:
        self._writable()
        dpath = paths.for_lookup(path)
        if dpath == "/":
            raise FsError(errno.EBUSY, "the mount root cannot be removed")
        with self._paths.hold(dpath):
            self._resolver.dir_or_fail(dpath)
            self._resolver.check_empty(dpath)
            for key in list(self._ns.hidden_under(dpath)):  # unlinked but still open: copied locally
                self._unlinker.unhide(key, delete=True)  # so that their keys go now
            self._ns.drop_dir(dpath)
            self._cache.removed(dpath)
            self._cache.forget_tree(dpath)
            self._lister.forget_sessions_under(dpath)
            self._overrides.pop(dpath)
            self._ns.keep_parent(dpath)

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
        return self.create_file(path, flags, mode, pid)[0]

    def create_file(self, path: str, flags: int, mode: int, pid: int = 0) -> tuple[int, bool]:
        """(handle, ``direct``) as :meth:`open_file`, for an ``open`` with ``O_CREAT``."""
        self._writable()
        dpath = paths.for_create(path)
        with self._paths.hold(dpath):
            node = self._open_file_at(dpath)
            if node is not None:
                if flags & os.O_EXCL:
                    raise FsError(errno.EEXIST, f"{dpath}: already exists")
                return self._open_node(node, flags, pid)
            self._unlinker.unhide(dpath, delete=True)
            found = self._resolver.lookup(dpath)
            if found is not None:
                meta, _ = found
                if meta.is_dir:
                    raise FsError(errno.EISDIR, f"{dpath}: is a directory")
                if flags & os.O_EXCL:
                    raise FsError(errno.EEXIST, f"{dpath}: already exists")
                return self._open_node(self._ns.attach(Node(self._ctx, dpath, meta)), flags, pid)
            node = Node(self._ctx, dpath, None)
            node.truncate_to_empty()
            self._ns.attach(node)
            self._cache.added(dpath, node.meta())
            self._overrides.pop(dpath)
            return self._open_node(node, flags & ~os.O_TRUNC, pid)

    def open(self, path: str, flags: int, pid: int = 0) -> int:
        return self.open_file(path, flags, pid)[0]

    def open_file(self, path: str, flags: int, pid: int = 0) -> tuple[int, bool]:
        """(handle, ``direct``: True when the kernel must not cache its pages, because handles of a
        replaced version of this name still read there: one inode, two versions; docs/SEMANTICS.md)."""
        if (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC:
            self._writable()
        dpath = paths.for_lookup(path)
        with self._paths.hold(dpath):
            node = self._open_file_at(dpath)
            if node is None:
                meta = self._resolver.resolve_file(dpath)
                node = self._ns.attach(Node(self._ctx, dpath, meta))
            return self._open_node(node, flags, pid)

    def _open_file_at(self, dpath: str) -> Node | None:
        """(Path lock held.) The open file a new handle of ``dpath`` joins; None when it needs a new node."""
        node = self._ns.node(dpath)
        if node is not None and self._replaced_in_bucket(node, dpath) is not None and self._displace(node, dpath):
            return None
        return node

    def _replaced_in_bucket(self, node: Node, dpath: str) -> Meta | None:
        """The current version at ``dpath``, when the handles of ``node`` read another one from the bucket
        (they returned bytes of a version the bucket no longer has at its name; docs/SEMANTICS.md, "read")."""
        served = node.served_version()
        if served is None:
            return None
        current = self._resolver.in_bucket(dpath)
        if current is None or current.is_dir or current.etag is None or current.etag == served:
            return None
        return current

    def _displace(self, node: Node, dpath: str) -> bool:
        """An open of a file whose handles read a replaced version: the new handle gets a node of its own
        for the current version; the old handles keep theirs, pinned to the old one (old bytes or
        ``ESTALE``, never a mix), as the handles of a local file replaced by a rename."""
        with node.lock:
            if node.path != dpath or node.served_version() is None:
                return False  # written, moved or re-pinned meanwhile: it is this name's file
            node.detach()
        self._ns.displace(dpath, node)
        log.info("%s: replaced in the bucket while open here; a new open reads the current version", dpath)
        return True

    def _open_node(self, node: Node, flags: int, pid: int) -> tuple[int, bool]:
        with node.lock:
            if flags & os.O_TRUNC and (flags & os.O_ACCMODE) != os.O_RDONLY:
                node.truncate_to_empty()
                if node.path is not None:
                    self._overrides.drop_mtime(node.path)
            node.add_ref()
            direct = node.path is not None and self._ns.displaced_at(node.path)
        return self._handles.add(node, flags, pid).fh, direct

    # == data ========================================================================================

    def read(self, fh: int, offset: int, size: int) -> bytes | memoryview:
        """The bytes at ``offset``: possibly a view of a fetched part, valid while the caller holds it."""
        return self._reading.read(self._handles.get(fh), offset, size)

    def write(self, fh: int, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` at ``offset``; ``data`` may be a view of the caller's buffer, so nothing keeps it."""
        self._writable()
        handle = self._handles.get(fh)
        if not handle.writable:
            raise FsError(errno.EBADF, f"handle {fh} is not open for writing")
        written = handle.node.write(offset, data, handle.append)
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
        if is_stand_in(dpath):
            self._ns.orphan(dpath).truncate(length)
            return
        with self._paths.hold(dpath):
            node = self._ns.node(dpath)
            if node is not None:
                node.truncate(length)
                return
            meta = self._resolver.resolve_file(dpath)
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
                    if node.drop_ref() > 0:
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
            self._ns.record_lost(label)
            if node.remote is None and node.path is not None:
                self._cache.removed(node.path)
        finally:
            self._ns.forget(node.path, node)
            self._ns.drop_displaced(node)
            if node.deferred_delete and node.key is not None:
                self._unlinker.deferred_delete(node.key, node.remote)
                self._ns.drop_hidden(node.key, node)  # only now: an rmdir of its directory waits
            node.close()

    # == namespace ===================================================================================

    def unlink(self, path: str) -> None:
        self._writable()
        self._unlinker.unlink(paths.for_lookup(path))

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        Renamer.check_flags(flags)
        self._writable()
        self._renamer.rename(old, new, flags)

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
        node = self._handles.get(fh).node if fh is not None else None
        self._attrs.set_override(path, node, **fields)

    # == xattrs ======================================================================================

    def getxattr(self, path: str, name: str) -> bytes:
        if name == STATUS_XATTR and path == "/" and self.status_source is not None:
            return self.status_source()
        if not name.startswith("user."):  # ls -l stops asking a device that answers ENOTSUP
            raise FsError(errno.ENOTSUP, f"{path}: no {name.split('.', 1)[0]} attributes on this filesystem")
        if name != URL_XATTR:
            raise FsError(errno.ENODATA, f"{path}: no attribute {name}")
        url = self._url(path)
        if url is None:
            raise FsError(errno.ENODATA, f"{path}: no URL (a directory, an unsaved file, or no redirect)")
        return url.encode()

    def listxattr(self, path: str) -> list[str]:
        """The URL of a file; never :data:`STATUS_XATTR` (read by name only: ``cp -a``/``rsync -X`` skip it)."""
        return [URL_XATTR] if self._url(path) is not None else []

    def _url(self, path: str) -> str | None:
        if path == "/":
            return None
        dpath = paths.for_lookup(path)
        meta, live = self._resolver.resolve(dpath)
        if meta.is_dir:
            return None
        if live:
            node = self._ns.node(dpath)
            if node is not None and (node.key != dpath or node.dirty):
                return None
        return self.driver.redirect_url("GET", dpath, expires_in=self.options.url_duration)

    def setxattr(self, path: str, name: str, value: bytes, flags: int) -> None:
        raise FsError(errno.ENOTSUP, f"{path}: extended attributes cannot be set ({name})")

    def removexattr(self, path: str, name: str) -> None:
        raise FsError(errno.ENOTSUP, f"{path}: extended attributes cannot be removed ({name})")

    # == lifecycle ===================================================================================

    def drop_caches(self) -> list[str]:
        """Forget every cached attribute, listing and negative entry (SIGHUP); thread-safe, no request.

        Another writer's changes then show at the next lookup; the driver chain drops its own caches
        too (``drop_caches``, e.g. the oci view's).  Open files, their local copies, the
        chmod/chown/utimens overrides and the data cache (immutable content, checked by ETag) stay.
        Returns the names the cache knew, for the kernel's caches of them to be dropped too.
        """
        self._lister.forget_sessions_under("/")
        self.driver.drop_caches()
        return self._cache.clear()

    def snapshot(self) -> dict[str, Any]:
        """What the core holds and does now (status, metrics): no request, each lock only for a moment.

        ``pending`` are the open files with data not saved yet (those uploading included), ``in_flight``
        the uploads running, ``lost`` the paths closed with data that could not be saved.
        """
        nodes = list({id(h.node): h.node for h in self._handles.all()}.values())
        pending = sorted((n.path, n.size) for n in nodes if n.dirty and n.path is not None)
        ledger = self._ctx.uploads
        gate = self._ctx.gate
        streaming, multipart, put_bytes = gate.in_use()
        data = self._datacache
        return {
            "open_files": len(nodes),
            "uploads": {
                "pending": [{"path": p, "size": size} for p, size in pending],
                "in_flight": [{"path": u.path, "size": u.size, "started": u.started} for u in ledger.in_flight()],
                "committed": ledger.committed,
                "bytes_committed": ledger.bytes_committed,
                "failed": ledger.failed,
                "recent_failures": [{"path": f.path, "error": f.error, "at": f.at} for f in ledger.recent_failures()],
                "lost": self._ns.lost(),
            },
            "metadata_cache": {"entries": self._cache.entries(), "on_disk": self._cache.index_names(),
                               "hits": self._cache.hits, "misses": self._cache.misses},
            "data_cache": None if data is None else {
                "bytes": data.total_bytes, "max_bytes": data.max_bytes, "hits": data.hits, "misses": data.misses,
                **self._reading.fill_counts(),
            },
            "readahead": {"bytes_in_use": self._budget.used, "budget": self._budget.total},
            "write_buffers": {
                "put_bytes_in_use": put_bytes, "put_budget": gate.put_bytes,
                "streaming_files": streaming, "multipart_uploads": multipart, "multipart_slots": gate.slots,
            },
        }

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
        hidden = self._ns.take_hidden()
        lost = self._ns.lost()
        for key, node in hidden:
            self._unlinker.deferred_delete(key, node.remote)
        if lost:
            ok = False
            log.error(
                "shutdown: %d file(s) were closed with data that could not be saved: %s", len(lost), lost[:10]
            )
        self._closed = True
        if self._reading.fills is not None:
            self._reading.fills.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._cache.close()
        if self._datacache is not None:
            self._datacache.close()
        return ok

    @property
    def lost(self) -> list[str]:
        """Paths whose data could not be saved when they were closed (for the exit status)."""
        return self._ns.lost()

    def _writable(self) -> None:
        if self.options.read_only:
            raise FsError(errno.EROFS, "read-only mount")


def _usable(cache_dir: str, make: Callable[[], T]) -> T:
    """``make()``; an OSError (the cache directory cannot be used) is a :class:`CacheDirError`."""
    try:
        return make()
    except OSError as exc:
        raise CacheDirError(cache_dir, exc) from exc
