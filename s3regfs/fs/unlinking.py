"""Unlinker: removing a file's name, also while it is open.

Owns ``unlink`` (docs/SEMANTICS.md, "unlink"): a closed file's key is deleted at once; an open
file's handles keep its content (a local copy, or for a large remote file the key itself, whose
delete is deferred to the last close: the name is *hidden*); libfuse's ``.fuse_hidden*``
stand-in names for such files (:meth:`Unlinker.hide`); reusing a hidden name
(:meth:`Unlinker.unhide`); and the deferred delete itself, which spares an object another
writer put there meanwhile.

The table changes go through :class:`~s3regfs.fs.namespace.Namespace`; the caller holds the
path lock of the name (lock order: path locks → node lock → namespace lock).
"""

from __future__ import annotations

import errno
import logging

from s3regfs.driver.base import StorageDriver
from s3regfs.driver.errors import PathNotFoundError
from s3regfs.fs import paths
from s3regfs.fs.errors import FsError
from s3regfs.fs.handles import PathLocks
from s3regfs.fs.listing import meta_of
from s3regfs.fs.lookup import Resolver
from s3regfs.fs.metacache import Meta, MetaCache, Overrides
from s3regfs.fs.namespace import Namespace, is_stand_in
from s3regfs.fs.options import FsOptions
from s3regfs.fs.writeback import Node

log = logging.getLogger(__name__)


class Unlinker:
    """unlink, hidden names and deferred deletes of one mount."""

    def __init__(
        self,
        driver: StorageDriver,
        options: FsOptions,
        namespace: Namespace,
        resolver: Resolver,
        cache: MetaCache,
        overrides: Overrides,
        path_locks: PathLocks,
    ) -> None:
        self.driver = driver
        self.options = options
        self._ns = namespace
        self._resolver = resolver
        self._cache = cache
        self._overrides = overrides
        self._paths = path_locks

    def unlink(self, dpath: str) -> None:
        """Remove the name ``dpath`` (a lookup path; the caller checked the mount is writable)."""
        if is_stand_in(dpath):  # libfuse drops its stand-in name at the last close
            if self._ns.drop_orphan(dpath) is None:
                raise FsError(errno.ENOENT, f"{dpath}: no such file")
            return
        with self._paths.hold(dpath):
            node = self._ns.node(dpath)
            if node is None:
                self._resolver.resolve_file(dpath)
                self.delete_file_key(dpath)
            else:
                self._unlink_open(node, dpath)
            self._cache.removed(dpath)
            self._overrides.pop(dpath)
            self._ns.keep_parent(dpath)

    def _unlink_open(self, node: Node, dpath: str) -> None:
        """Unlink a name that has open handles: they keep the content (docs/SEMANTICS.md)."""
        with node.lock:
            if node.key is not None:
                if node.is_remote() and node.size > self.options.unlink_download_max:
                    self._resolver.check_no_dir(dpath)
                    self._ns.hide(dpath, node)
                else:
                    node.ensure_local()
                    self.delete_file_key(dpath)
                    node.drop_key()
            node.detach()
            self._ns.forget(dpath, node)

    def hide(self, src: str, hidden: str) -> None:
        """libfuse's unlink (or rename over) of an open file: ``src`` becomes the stand-in ``hidden``.

        The file is unlinked as by :meth:`unlink`; the stand-in name only lets ``fstat`` and friends
        reach the open file (libfuse asks by path): it is never a key, never listed, and libfuse
        unlinks it at the last close.
        """
        with self._paths.hold(src):
            node = self._ns.node(src)
            if node is None:  # already released here: a plain unlink
                self.unlink(src)
                return
            self._unlink_open(node, src)
            self._cache.removed(src)
            override = self._overrides.pop(src)
            self._ns.keep_parent(src)
        node.adopt_override(override)
        self._ns.add_orphan(hidden, node)

    def unhide(self, dpath: str, delete: bool) -> None:
        """A name hidden by unlink-while-open is reused: give the old handles a local copy first."""
        node = self._ns.unhide(dpath)
        if node is None:
            return
        with node.lock:
            if node.refs == 0:  # its last close ran (under this lock) and deleted the key
                return
            node.ensure_local()
            node.drop_key()
        if delete:
            self.deferred_delete(dpath, node.remote)

    def delete_file_key(self, dpath: str) -> None:
        self._resolver.check_no_dir(dpath)
        try:
            self.driver.delete(dpath)
        except PathNotFoundError as exc:
            self._cache.removed(dpath)
            raise FsError(errno.ENOENT, f"{dpath}: no such file") from exc

    def deferred_delete(self, key: str, expected: Meta | None) -> None:
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
