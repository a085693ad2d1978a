"""The metadata cache: attributes, directory listings and negative entries, behind one lock.

Owns three cachetools maps:

* ``attrs``: path → :class:`Meta` learned from a ``stat`` or from this mount's own change;
* ``listings``: directory → {name: Meta}, a whole directory as a listing returned it (its size
  in the cache is its number of entries, so ``metadata_cache_entries`` bounds entries, not
  directories);
* ``absent``: path → stamp, names known not to exist (``negative_ttl``).

Attributes and listings live ``metadata_ttl``, except those of digest paths
(:func:`~s3regfs.fs.paths.digest_path`: ``…/sha256/<hex>`` and below, content-addressed in the
registry layout), which live ``digest_ttl`` (a per-entry expiry: cachetools ``TLRUCache``).

Every value carries the clock time it was learned; :meth:`MetaCache.lookup` answers from the
newest of the three that knows the path, so a listing fetched after a ``stat`` wins and an
unlink recorded after a listing wins.  A cached listing is authoritative for its directory:
a name it does not contain is absent (until the listing expires).

This mount's own changes update the cache at once (:meth:`added`, :meth:`removed`,
:meth:`forget_tree`); another mount's changes show when the entries expire (metadata_ttl,
negative_ttl), or at once after :meth:`clear` (SIGHUP), which also refuses whatever a lookup
or listing that started before it stores later.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from cachetools import TLRUCache, TTLCache

from s3regfs.fs.paths import basename, digest_path, is_under, join, parent


@dataclass(frozen=True, slots=True)
class Meta:
    """What the cache knows about one existing name."""

    is_dir: bool
    size: int
    mtime: float  # seconds since the epoch; 0.0 when unknown (directories)
    local: bool = False  # mtime is this mount's own clock (a commit), not the server's
    etag: str | None = None  # the file's version (FileInfo.etag); None when unknown (e.g. own commits)


ABSENT = Meta(False, -1, 0.0)
"""The answer of :meth:`MetaCache.lookup` for a name known not to exist."""

Listing = dict[str, Meta]


class MetaCache:
    """Thread-safe TTL caches of attributes, listings and negative entries."""

    def __init__(
        self,
        ttl: float,
        negative_ttl: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        digest_ttl: float = 0.0,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._enabled = ttl > 0
        size = max(1, max_entries)
        long_ttl = max(ttl, digest_ttl) if self._enabled else ttl

        def expiry(key: str, _value: object, now: float) -> float:
            return now + (long_ttl if digest_path(key) else ttl)

        self._attrs: TLRUCache[str, tuple[float, Meta]] = TLRUCache(size, expiry, timer=clock)
        self._absent: TTLCache[str, float] = TTLCache(size, max(negative_ttl, 1e-9), timer=clock)
        self._neg_enabled = negative_ttl > 0
        self._listings: TLRUCache[str, tuple[float, Listing]] = TLRUCache(
            size, expiry, timer=clock, getsizeof=lambda value: len(value[1]) + 1
        )
        self._ttl = long_ttl
        # This mount's own changes of the last ``ttl`` seconds, re-applied to a listing fetched
        # before them but stored after them.
        self._changes: dict[str, deque[tuple[float, str, Meta]]] = {}
        self._change_order: deque[tuple[float, str]] = deque()
        self._floor = float("-inf")  # nothing learned before this clock time is stored (clear())
        self.hits = 0
        self.misses = 0

    # -- queries -------------------------------------------------------------------------------

    def lookup(self, path: str) -> Meta | None:
        """The cached Meta, :data:`ABSENT`, or ``None`` when the cache does not know."""
        with self._lock:
            best: tuple[float, Meta] | None = self._attrs.get(path)
            absent_stamp = self._absent.get(path)
            if absent_stamp is not None and (best is None or absent_stamp >= best[0]):
                best = (absent_stamp, ABSENT)
            if path != "/":
                listed = self._listings.get(parent(path))
                if listed is not None and (best is None or listed[0] > best[0]):
                    best = (listed[0], listed[1].get(basename(path), ABSENT))
            if best is None:
                self.misses += 1
                return None
            self.hits += 1
            return best[1]

    def listing(self, directory: str) -> Listing | None:
        """A copy of the cached listing of ``directory`` (newer attrs of its children applied)."""
        with self._lock:
            listed = self._listings.get(directory)
            if listed is None:
                return None
            return dict(listed[1])

    # -- what was learned from the driver ------------------------------------------------------

    def put(self, path: str, meta: Meta, asked: float | None = None) -> None:
        """Cache ``meta`` of ``path``, learned from a request made at clock time ``asked``."""
        if not self._enabled:
            return
        with self._lock:
            if asked is None or asked >= self._floor:
                self._attrs[path] = (self._clock(), meta)

    def put_absent(self, path: str, asked: float | None = None) -> None:
        if not self._neg_enabled:
            return
        with self._lock:
            if asked is None or asked >= self._floor:
                self._absent[path] = self._clock()
                self._attrs.pop(path, None)

    def put_listing(self, directory: str, entries: Listing, stamp: float | None = None) -> None:
        """Cache a complete listing (silently skipped when it alone exceeds the cache)."""
        if not self._enabled:
            return
        with self._lock:
            when = self._clock() if stamp is None else stamp
            if when < self._floor:  # fetched before a clear(): maybe older than what clear() wanted gone
                return
            self._trim_changes()
            for changed_at, name, meta in self._changes.get(directory, ()):
                if changed_at >= when:
                    if meta is ABSENT:
                        entries.pop(name, None)
                    else:
                        entries[name] = meta
            try:
                self._listings[directory] = (when, entries)
            except ValueError:  # larger than the whole cache
                return

    def _trim_changes(self) -> None:
        horizon = self._clock() - self._ttl
        while self._change_order and self._change_order[0][0] < horizon:
            _, directory = self._change_order.popleft()
            pending = self._changes.get(directory)
            while pending and pending[0][0] < horizon:
                pending.popleft()
            if not pending:
                self._changes.pop(directory, None)

    def now(self) -> float:
        return self._clock()

    # -- this mount's own changes --------------------------------------------------------------

    def added(self, path: str, meta: Meta) -> None:
        """``path`` now exists with ``meta`` (create/commit/mkdir/rename target)."""
        with self._lock:
            now = self._clock()
            self._note(now, path, meta)
            self._absent.pop(path, None)
            if self._enabled:
                self._attrs[path] = (now, meta)
            listed = self._listings.get(parent(path))
            if listed is not None:
                listed[1][basename(path)] = meta

    def removed(self, path: str) -> None:
        """``path`` no longer exists (unlink/rmdir/rename source)."""
        with self._lock:
            now = self._clock()
            self._note(now, path, ABSENT)
            self._attrs.pop(path, None)
            if self._neg_enabled:
                self._absent[path] = now
            listed = self._listings.get(parent(path))
            if listed is not None:
                listed[1].pop(basename(path), None)

    def _note(self, now: float, path: str, meta: Meta) -> None:
        if self._enabled and path != "/":
            directory = parent(path)
            self._changes.setdefault(directory, deque()).append((now, basename(path), meta))
            self._change_order.append((now, directory))
            if len(self._change_order) % 1024 == 0:
                self._trim_changes()

    def forget(self, path: str) -> None:
        """Drop what is known about ``path`` itself (the next lookup asks the driver)."""
        with self._lock:
            self._attrs.pop(path, None)
            self._absent.pop(path, None)
            self._listings.pop(path, None)
            listed = self._listings.get(parent(path)) if path != "/" else None
            if listed is not None:
                self._listings.pop(parent(path), None)

    def forget_tree(self, directory: str) -> None:
        """Drop everything known about ``directory`` and below it (directory rename)."""
        with self._lock:
            for cache in (self._attrs, self._absent, self._listings):
                doomed = [key for key in list(cache.keys()) if key == directory or is_under(key, directory)]
                for key in doomed:
                    cache.pop(key, None)

    def entries(self) -> int:
        """Attribute, listing and negative entries held now (expired ones until they are evicted)."""
        with self._lock:
            return len(self._attrs) + len(self._listings) + len(self._absent)

    def clear(self) -> list[str]:
        """Forget everything: the next lookup of any name asks the driver (SIGHUP, at any time).

        What a stat or listing that started before the call stores afterwards is refused (it may
        predate the change the caller wants to see).  Returns the existing names the cache knew,
        so the caller can have other caches of them (the kernel's) dropped too.
        """
        with self._lock:
            known = set(self._attrs.keys())
            for directory in list(self._listings.keys()):
                listed = self._listings.get(directory)
                if listed is not None:
                    known.add(directory)
                    known.update(join(directory, name) for name in listed[1])
            self._attrs.clear()
            self._absent.clear()
            self._listings.clear()
            self._changes.clear()
            self._change_order.clear()
            self._floor = self._clock()
        return sorted(known)


@dataclass(frozen=True)
class Override:
    """Attributes set by chmod/chown/utimens, kept in memory (never written to the bucket).

    ``base`` is the (size, server mtime) of the object they were set on; once the object
    is seen with other values, it was replaced and the override is dropped.  ``None``
    means "whatever the object is" (directories, files open for writing).
    """

    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    mtime: float | None = None
    base: tuple[int, float] | None = None


class Overrides:
    """path → Override, at most ``limit`` paths (least recently set dropped first)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Override] = OrderedDict()
        self._limit = limit

    def any(self) -> bool:
        """True when at least one override exists (lock-free fast path for listings)."""
        return bool(self._items)

    def get(self, path: str) -> Override | None:
        with self._lock:
            return self._items.get(path)

    def update(self, path: str, base: tuple[int, float] | None, **fields: object) -> None:
        with self._lock:
            old = self._items.pop(path, None) or Override()
            values = {k: v for k, v in fields.items() if v is not None}
            self._items[path] = replace(old, base=base, **values)  # type: ignore[arg-type]
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def rebase(self, path: str, base: tuple[int, float] | None) -> None:
        with self._lock:
            old = self._items.get(path)
            if old is not None:
                self._items[path] = replace(old, base=base)

    def drop_mtime(self, path: str) -> None:
        with self._lock:
            old = self._items.get(path)
            if old is not None and old.mtime is not None:
                self._items[path] = replace(old, mtime=None)

    def pop(self, path: str) -> Override | None:
        with self._lock:
            return self._items.pop(path, None)

    def move(self, old: str, new: str) -> Override | None:
        with self._lock:
            self._items.pop(new, None)
            item = self._items.pop(old, None)
            if item is not None:
                self._items[new] = item
            return item

    def move_tree(self, old: str, new: str) -> None:
        with self._lock:
            for path in [p for p in self._items if p == old or is_under(p, old)]:
                self._items[new + path[len(old) :]] = self._items.pop(path)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
