"""Resolver: what a path is, and the checks that ask the bucket before a name changes.

Owns the lookup order of the core: the namespace tables first (open files, local directories,
hidden names: :class:`~s3regfs.fs.namespace.Namespace`), then the metadata cache, then one
``stat_tree`` (whose answer, or absence, is cached; for a small directory also the listings of its
whole subtree, so the next lookups below it need no request).  Once a second name was missing from
the same directory within ``metadata_ttl`` (bulk creates: the kernel looks up every new name first),
the directory's listing is fetched instead, and answers its names until it expires
(:class:`_Misses`).  Also the questions a removal or a rename asks
the bucket: is a directory empty (:meth:`Resolver.check_empty`), are there keys below a file's
name (:meth:`Resolver.check_no_dir`), and a file's current attributes
(:meth:`Resolver.fresh_meta`).

No lock is held here across a driver call: the namespace lock is taken only inside the
namespace's own methods.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections import OrderedDict

from s3regfs.driver.base import FirstFiles, StorageDriver
from s3regfs.driver.errors import PathNotFoundError
from s3regfs.fs import paths
from s3regfs.fs.errors import FsError
from s3regfs.fs.listing import Lister, meta_of
from s3regfs.fs.metacache import ABSENT, Meta, MetaCache
from s3regfs.fs.namespace import DIR, Namespace

log = logging.getLogger(__name__)



_MAX_MISSES = 1024
"""Directories :class:`_Misses` remembers (the least recent go first)."""


class _Misses:
    """Directories in which a looked-up name was missing from the bucket, and when (at most ``_MAX_MISSES``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._when: OrderedDict[str, float] = OrderedDict()

    def note(self, directory: str, now: float) -> None:
        with self._lock:
            self._when[directory] = now
            self._when.move_to_end(directory)
            if len(self._when) > _MAX_MISSES:
                self._when.popitem(last=False)

    def since(self, directory: str, since: float) -> bool:
        """Was a name missing from ``directory`` at ``since`` or later?"""
        with self._lock:
            when = self._when.get(directory)
            return when is not None and when >= since


class Resolver:
    """Path → Meta through the namespace, the metadata cache and the driver."""

    def __init__(self, driver: StorageDriver, namespace: Namespace, cache: MetaCache, lister: Lister,
                 subtree: int) -> None:
        self.driver = driver
        self._subtree = subtree  # FsOptions.lookup_subtree
        self._ns = namespace
        self._cache = cache
        self._lister = lister
        self._misses = _Misses()

    def lookup_local(self, path: str) -> Meta | None:
        """What this mount knows about ``path`` without a request: Meta, ABSENT, or None."""
        if path == "/":
            return DIR
        known = self._ns.known(path)
        if known is not None:
            return known[0]
        return self._cache.lookup(path)

    def lookup(self, path: str) -> tuple[Meta, bool] | None:
        """(Meta, ``live`` when it is an open file), or None when nothing is at ``path``."""
        if path == "/":
            return DIR, False
        known = self._ns.known(path)  # libfuse's stand-in names are never keys: no request
        if known is not None:
            return None if known[0] is ABSENT else known
        meta = self.in_bucket(path)
        return None if meta is None else (meta, False)

    def in_bucket(self, path: str) -> Meta | None:
        """What the cache, else the bucket, has at ``path`` (not ``/``; an open file's name aside), or None."""
        meta = self._cache.lookup(path)
        if meta is ABSENT:
            return None
        if meta is None:
            asked = self._cache.now()
            directory = paths.parent(path)
            if self._lister.ttl > 0 and self._misses.since(directory, asked - self._lister.ttl):
                return self._from_listing(path, directory, asked)
            try:
                info, below = self.driver.stat_tree(path, self._subtree)
            except PathNotFoundError:
                return self._missing(path, directory, asked)
            meta = meta_of(info)
            self._cache.put(path, meta, asked)
            if isinstance(below, FirstFiles):  # a larger directory: what the answer shows of it
                self._lister.learned_first_files(path, below, asked)
            elif below is not None:
                self._lister.learned_subtree(path, below, asked)
        return meta

    def _from_listing(self, path: str, directory: str, asked: float) -> Meta | None:
        """``path`` from its directory's listing (fetched and cached: it answers the next names too)."""
        try:
            meta = self._lister.list_dir(directory).get(paths.basename(path))
        except PathNotFoundError:  # no key below the directory: nothing at the name either
            meta = None
        return self._missing(path, directory, asked) if meta is None else meta

    def _missing(self, path: str, directory: str, asked: float) -> None:
        """Nothing at ``path`` (asked at ``asked``): cached as absent, and counted against its directory."""
        self._cache.put_absent(path, asked)
        self._misses.note(directory, asked)

    def resolve(self, path: str) -> tuple[Meta, bool]:
        """What ``path`` is (``live`` when it is an open file); ENOENT when nothing."""
        found = self.lookup(path)
        if found is None:
            raise FsError(errno.ENOENT, f"{path}: no such file or directory")
        return found

    def resolve_file(self, path: str) -> Meta:
        """The Meta of the file at ``path``; ENOENT when nothing, EISDIR for a directory."""
        meta, _ = self.resolve(path)
        if meta.is_dir:
            raise FsError(errno.EISDIR, f"{path}: is a directory")
        return meta

    def dir_or_fail(self, path: str) -> None:
        meta, _ = self.resolve(path)
        if not meta.is_dir:
            raise FsError(errno.ENOTDIR, f"{path}: not a directory")

    def fresh_meta(self, dpath: str) -> Meta:
        """The attributes the bucket has for ``dpath`` now (cached); ENOENT when it has none."""
        try:
            meta = meta_of(self.driver.stat(dpath))
        except PathNotFoundError as exc:
            self._cache.removed(dpath)
            raise FsError(errno.ENOENT, f"{dpath}: no such file") from exc
        self._cache.put(dpath, meta)
        return meta

    def check_empty(self, dpath: str) -> None:
        """ENOTEMPTY unless ``dpath`` has no entry, locally or (freshly listed) in the bucket."""
        busy, hidden = self._ns.occupancy(dpath)
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

    def check_no_dir(self, dpath: str) -> None:
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
