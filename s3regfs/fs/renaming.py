"""Renamer: ``rename`` of a file or a directory (docs/SEMANTICS.md, "rename").

Owns the order of a rename: the checks (flags, the root, a move into itself, ``RENAME_NOREPLACE``,
the kinds of source and target), libfuse's rename onto a ``.fuse_hidden*`` stand-in name (an
unlink: :meth:`Unlinker.hide <s3regfs.fs.unlinking.Unlinker.hide>`), a file's move (one driver
``move``; an open file follows its name, an open file at the target keeps its content without a
name), and a directory's move (every key below it, in parallel; not atomic).

It uses the parts below it and nothing calls back into it: the namespace tables and node moves
(:class:`~s3regfs.fs.namespace.Namespace`), lookups and emptiness checks
(:class:`~s3regfs.fs.lookup.Resolver`), hidden names (:class:`~s3regfs.fs.unlinking.Unlinker`),
and attribute overrides (:class:`~s3regfs.fs.attributes.Attributes`).  Both names' path locks
are held throughout (lock order: path locks → node lock → namespace lock); no namespace lock
is held across a driver call.
"""

from __future__ import annotations

import errno
import time
from concurrent.futures import ThreadPoolExecutor, wait

from s3regfs.driver.base import FileInfo, StorageDriver
from s3regfs.driver.errors import PathNotFoundError
from s3regfs.fs import paths
from s3regfs.fs.attributes import Attributes
from s3regfs.fs.errors import FsError, io_error
from s3regfs.fs.handles import PathLocks
from s3regfs.fs.listing import Lister, meta_of
from s3regfs.fs.lookup import Resolver
from s3regfs.fs.metacache import ABSENT, Meta, MetaCache
from s3regfs.fs.namespace import DIR, Namespace, is_stand_in
from s3regfs.fs.unlinking import Unlinker
from s3regfs.fs.writeback import Node

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


class Renamer:
    """rename(2) on one mount."""

    def __init__(
        self,
        driver: StorageDriver,
        namespace: Namespace,
        resolver: Resolver,
        unlinker: Unlinker,
        attributes: Attributes,
        cache: MetaCache,
        lister: Lister,
        path_locks: PathLocks,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.driver = driver
        self._ns = namespace
        self._resolver = resolver
        self._unlinker = unlinker
        self._attributes = attributes
        self._overrides = attributes.overrides
        self._cache = cache
        self._lister = lister
        self._paths = path_locks
        self._pool = pool

    @staticmethod
    def check_flags(flags: int) -> None:
        if flags & RENAME_EXCHANGE or flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise FsError(errno.EINVAL, "RENAME_EXCHANGE (and unknown rename flags) are not supported")

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        """Rename (the caller checked the flags and that the mount is writable)."""
        src = paths.for_lookup(old)
        dst = paths.for_create(new)
        if is_stand_in(dst):
            self._unlinker.hide(src, dst)
            return
        if "/" in (src, dst):
            raise FsError(errno.EBUSY, "the mount root cannot be renamed")
        if paths.is_under(dst, src):
            raise FsError(errno.EINVAL, f"cannot move {src} into itself ({dst})")
        with self._paths.hold(src, dst):
            smeta, _ = self._resolver.resolve(src)
            if src == dst:
                return
            found = self._resolver.lookup(dst)
            if found is not None and flags & RENAME_NOREPLACE:
                raise FsError(errno.EEXIST, f"{dst}: already exists")
            self._resolver.dir_or_fail(paths.parent(dst))
            dmeta = found[0] if found is not None else None
            if smeta.is_dir:
                self._rename_dir(src, dst, dmeta)
            elif dmeta is not None and dmeta.is_dir:
                raise FsError(errno.EISDIR, f"{dst}: is a directory")
            else:
                self._rename_file(src, dst)
            self._ns.keep_parent(src)

    def _rename_file(self, src: str, dst: str) -> None:
        snode = self._ns.node(src)
        dnode = self._ns.node(dst)
        if snode is not None:
            with snode.lock:
                snode.commit()
                size = snode.size
        if dnode is not None and dnode is not snode:
            self._displace(dnode, dst)
        self._unlinker.unhide(dst, delete=False)
        self.driver.move(src, dst)  # the contract's move touches the source key only (not src/...)
        if snode is not None:
            self._ns.move_node(snode, src, dst)
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
            self._attributes.reanchor(dst)

    def _displace(self, node: Node, dpath: str) -> None:
        """The name of an open file is taken by a rename: its handles keep the old content."""
        with node.lock:
            node.ensure_local()
            node.drop_key()
            node.detach()  # unlinked now: drops any stream, uploads nothing
        self._ns.forget(dpath, node)

    def _rename_dir(self, src: str, dst: str, dmeta: Meta | None) -> None:
        if dmeta is not None:
            if not dmeta.is_dir:
                raise FsError(errno.ENOTDIR, f"{dst}: not a directory")
            self._resolver.check_empty(dst)
        for node in self._ns.nodes_under(src):
            with node.lock:
                node.commit()
        files, dirs = self._keys_under(src)
        self._move_keys(src, dst, files, dirs)
        self._ns.move_tree(src, dst, time.time())
        self._overrides.move_tree(src, dst)
        for tree in (src, dst):
            self._cache.forget_tree(tree)
            self._lister.forget_sessions_under(tree)
        self._cache.removed(src)
        self._cache.added(dst, DIR)

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
        hidden = self._ns.hidden_under(src)
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
        self._ns.move_hidden(src, dst, hidden)
