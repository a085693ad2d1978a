"""Attributes: the ``stat`` of a path, and what chmod/chown/utimens set on it.

Owns :class:`Attr` (what the adapter turns into a ``stat`` dict) and :class:`Attributes`: the
mount's modes, owner and times for a Meta, the overrides that chmod/chown/utimens accept but
the bucket cannot store (kept in :class:`~s3regfs.fs.metacache.Overrides`, dropped once the
object changes; an unlinked open file keeps its own on its node), and re-anchoring an override
on the server's mtime after this mount wrote or moved the file (:meth:`Attributes.reanchor`).
"""

from __future__ import annotations

import errno
import logging
import stat
from dataclasses import dataclass

from s3regfs.fs import paths
from s3regfs.fs.errors import FsError
from s3regfs.fs.lookup import Resolver
from s3regfs.fs.metacache import Meta, MetaCache, Override, Overrides
from s3regfs.fs.namespace import Namespace, is_stand_in
from s3regfs.fs.options import FsOptions
from s3regfs.fs.writeback import Node

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attr:
    """A file's attributes as the adapter turns them into a ``stat`` dict."""

    mode: int  # includes S_IFREG / S_IFDIR
    size: int
    mtime: float
    nlink: int
    uid: int
    gid: int


class Attributes:
    """Meta → Attr for one mount, with the overrides of chmod/chown/utimens."""

    def __init__(
        self,
        options: FsOptions,
        namespace: Namespace,
        resolver: Resolver,
        cache: MetaCache,
        overrides: Overrides,
    ) -> None:
        self.options = options
        self._ns = namespace
        self._resolver = resolver
        self._cache = cache
        self.overrides = overrides
        self.file_mode = stat.S_IFREG | (options.file_mode & 0o7777)
        self.dir_mode = stat.S_IFDIR | (options.dir_mode & 0o7777)

    def attr(self, path: str, meta: Meta, live: bool = False) -> Attr:
        opts = self.options
        if meta.is_dir:
            mode, size, nlink = self.dir_mode, 0, 2
            mtime = self._ns.dir_mtime(path)
        else:
            mode, size, nlink, mtime = self.file_mode, meta.size, 1, meta.mtime
        if not self.overrides.any():
            return Attr(mode, size, mtime, nlink, opts.uid, opts.gid)
        return self._overridden(path, meta, live, Attr(mode, size, mtime, nlink, opts.uid, opts.gid))

    def unlinked_attr(self, node: Node) -> Attr:
        """An open file without a name: link count 0, and what fchmod/futimens set on it."""
        meta = node.meta()
        attr = Attr(self.file_mode, meta.size, meta.mtime, 0, self.options.uid, self.options.gid)
        return apply(node.override, attr) if node.override is not None else attr

    def _overridden(self, path: str, meta: Meta, live: bool, attr: Attr) -> Attr:
        """``attr`` with what chmod/chown/utimens set on ``path`` (dropped once the object changed)."""
        override = self.overrides.get(path)
        if override is None:
            return attr
        exact = not live and not meta.local and not meta.is_dir
        if exact and override.base is not None and override.base != (meta.size, meta.mtime):
            self.overrides.pop(path)  # the object was replaced: its own attributes are back
            return attr
        return apply(override, attr)

    def set_override(self, path: str | None, node: Node | None, **fields: object) -> None:
        """chmod/chown/utimens of ``path``, or of the open file ``node`` (``fh``) when given."""
        if node is not None:
            with node.lock:
                if node.path is None:  # unlinked: the attributes live with the open file
                    node.set_override(**fields)
                    return
                path = node.path
        if path is None:
            raise FsError(errno.EBADF, "no path and no open file handle")
        dpath = "/" if path == "/" else paths.for_lookup(path)
        if is_stand_in(dpath):
            self._ns.orphan(dpath).set_override(**fields)
            return
        meta, live = self._resolver.resolve(dpath)
        base = None
        if not meta.is_dir and not live:
            if meta.local:
                meta = self._resolver.fresh_meta(dpath)
            base = (meta.size, meta.mtime)
        self.overrides.update(dpath, base, **fields)

    def reanchor(self, dpath: str) -> None:
        """An override on a file just written or moved: re-anchor it on the server's mtime."""
        try:
            meta = self._resolver.fresh_meta(dpath)
        except (FsError, Exception) as exc:  # noqa: BLE001 - an override is best effort
            log.debug("%s: cannot re-anchor attributes: %s", dpath, exc)
            return
        self.overrides.rebase(dpath, (meta.size, meta.mtime))

    def committed(self, node: Node, path: str, meta: Meta) -> None:
        """A node's content reached the bucket (called under the node's lock)."""
        self._cache.added(path, Meta(False, meta.size, meta.mtime, local=True, etag=meta.etag))
        if self.overrides.get(path) is not None:
            self.reanchor(path)


def apply(override: Override, attr: Attr) -> Attr:
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

