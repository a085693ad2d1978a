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
A digest path known to exist implies every directory above it: ``anchors`` keeps, for those
directories that are not digest paths themselves, when that was last learned, also for
``digest_ttl`` (:class:`_Anchors`, a plain bounded map: one float a directory); a digest
directory with a cached listing of its own is known to exist the same way.
So a walk that outlasts ``metadata_ttl`` leaves the registry's content-addressed part, and every
directory above it, answerable without a request.  Newer knowledge still wins (a newer listing of
the parent that lacks the name, a removal).

Every value carries the clock time it was learned; :meth:`MetaCache.lookup` answers from the
newest of the three that knows the path, so a listing fetched after a ``stat`` wins and an
unlink recorded after a listing wins.  A cached listing is authoritative for its directory:
a name it does not contain is absent (until the listing expires).

A listing evicted to stay within ``metadata_cache_entries`` moves to the on-disk
:class:`~s3regfs.fs.metaindex.MetaIndex` when there is one, with the same stamp and expiry: a lookup
or listing the memory does not answer asks it before the driver (and its answer competes on the
same "newest wins" terms); every own change drops the changed directory's row there.  A directory
whose anchor memory dropped is vouched for by a live listing below it in the index.

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

from s3regfs.fs.metaindex import MetaIndex, Row
from s3regfs.fs.paths import basename, digest_path, is_under, join, parent


@dataclass(frozen=True, slots=True)
class Meta:
    """What the cache knows about one existing name."""

    is_dir: bool
    size: int
    mtime: float  # seconds since the epoch; 0.0 when unknown (directories)
    local: bool = False  # mtime is this mount's own clock (a commit), not the server's
    etag: str | None = None  # the file's version (FileInfo.etag); None when unknown (e.g. own commits)


_RACE_HORIZON = 60.0
"""Seconds an index drop is remembered for a concurrent spill of the same directory (far above one spill)."""

_ANCHOR_SLACK = 1.0
"""An anchor at most this much older than a new fact is not renewed (a walk stores thousands a second)."""


class _Anchors:
    """Directories above a known digest path → the stamp of that fact; at most ``maxsize``, oldest out.

    One float per directory in an OrderedDict: 71 bytes an entry besides its path, against 239 for a
    cachetools ``TLRUCache`` entry of (stamp, expiry) (docs/PERFORMANCE.md, "Memory at a million
    objects").  An anchor lives ``ttl`` from its stamp; an expired one is dropped when met.
    Not thread-safe: the cache's lock guards it.
    """

    def __init__(self, maxsize: int, ttl: float, clock: Callable[[], float]) -> None:
        self.maxsize = maxsize
        self._ttl = ttl
        self._clock = clock
        self._data: OrderedDict[str, float] = OrderedDict()

    def get(self, path: str) -> float | None:
        stamp = self._data.get(path)
        if stamp is not None and stamp + self._ttl <= self._clock():
            del self._data[path]
            return None
        return stamp

    def put(self, path: str, stamp: float) -> None:
        data = self._data
        data[path] = stamp
        data.move_to_end(path)
        while len(data) > self.maxsize:
            data.popitem(last=False)

    def pop(self, path: str, default: float | None = None) -> float | None:
        return self._data.pop(path, default)

    def keys(self) -> list[str]:
        return list(self._data)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


ABSENT = Meta(False, -1, 0.0)
"""The answer of :meth:`MetaCache.lookup` for a name known not to exist."""

DIR = Meta(True, 0, 0.0)
"""The Meta of every directory (one shared object: a large tree holds one per directory)."""

Listing = dict[str, Meta]


def _row(name: str, meta: Meta) -> Row:
    return name, meta.is_dir, meta.size, meta.mtime, meta.local, meta.etag


def _meta(row: Row) -> Meta:
    _, is_dir, size, mtime, local, etag = row
    if is_dir and size == 0 and mtime == 0.0 and not local and etag is None:
        return DIR
    return Meta(is_dir, size, mtime, local, etag)


class _Evicting(TLRUCache):  # type: ignore[type-arg]
    """A TLRUCache that keeps what it evicts for room (not what expired) until :meth:`take_evicted`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.evicted: list[tuple[str, tuple[float, Listing, float]]] = []

    def popitem(self) -> tuple[str, tuple[float, Listing, float]]:
        key, value = super().popitem()
        self.evicted.append((key, value))
        return key, value

    def take_evicted(self) -> list[tuple[str, tuple[float, Listing, float]]]:
        taken, self.evicted = self.evicted, []
        return taken


class MetaCache:
    """Thread-safe TTL caches of attributes, listings and negative entries."""

    def __init__(
        self,
        ttl: float,
        negative_ttl: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        digest_ttl: float = 0.0,
        index: MetaIndex | None = None,
    ) -> None:
        self._clock = clock
        self._index = index if ttl > 0 else None
        self._lock = threading.Lock()
        self._enabled = ttl > 0
        size = max(1, max_entries)
        long_ttl = max(ttl, digest_ttl) if self._enabled else ttl

        def expiry(key: str, _value: object, now: float) -> float:
            return now + (long_ttl if digest_path(key) else ttl)

        self._attrs: TLRUCache[str, tuple[float, Meta]] = TLRUCache(size, expiry, timer=clock)
        self._absent: TTLCache[str, float] = TTLCache(size, max(negative_ttl, 1e-9), timer=clock)
        self._neg_enabled = negative_ttl > 0
        self._long_ttl, self._short_ttl = long_ttl, ttl
        # directory -> (stamp, entries, expiry): the expiry rides along for the index
        self._listings = _Evicting(size, lambda _key, value, _now: value[2], timer=clock,
                                   getsizeof=lambda value: len(value[1]) + 1)
        self._ttl = long_ttl
        # directory (not itself a digest path) -> stamp: a digest path below it was known to exist
        # at ``stamp`` (see the module docstring).
        self._anchors = _Anchors(size, long_ttl, clock)
        # This mount's own changes of the last ``ttl`` seconds, re-applied to a listing fetched
        # before them but stored after them.
        self._changes: dict[str, deque[tuple[float, str, Meta]]] = {}
        self._change_order: deque[tuple[float, str]] = deque()
        self._floor = float("-inf")  # nothing learned before this clock time is stored (clear())
        self._index_drops: dict[str, float] = {}  # directory -> when its index row was last dropped
        self._tree_drops: deque[tuple[float, str]] = deque()  # (when, directory) of recent drop_tree
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
            listed = None
            if path != "/":
                listed = self._listings.get(parent(path))
                if listed is not None and (best is None or listed[0] > best[0]):
                    best = (listed[0], listed[1].get(basename(path), ABSENT))
            anchored = self._anchors.get(path)
            if anchored is not None and (best is None or anchored > best[0]):
                best = (anchored, DIR)
            own = None
            if best is None or best[1] is ABSENT:
                own = self._listings.get(path)  # a digest directory's own listing (it outlives its parent's)
                if own is not None and own[1] and (best is None or own[0] > best[0]):
                    best = (own[0], DIR)
            now = self._clock()
            # memory answers alone unless the parent's listing is not in it or the name is unknown/absent
            settled = self._index is None or path == "/" or (listed is not None and best is not None
                                                               and best[1] is not ABSENT)
            if settled:
                return self._count(best)
        best = self._from_index(path, best, listed is None, own is None, now)
        with self._lock:
            return self._count(best)

    def _count(self, best: tuple[float, Meta] | None) -> Meta | None:
        """The answer of a lookup, counted as a hit or a miss (under the lock)."""
        if best is None:
            self.misses += 1
            return None
        self.hits += 1
        return best[1]

    def _from_index(self, path: str, best: tuple[float, Meta] | None, parent_unknown: bool, own_unknown: bool,
                    now: float) -> tuple[float, Meta] | None:
        """``best`` improved by what the on-disk index holds (listings evicted from memory)."""
        assert self._index is not None
        if parent_unknown:
            found = self._index.entry(parent(path), basename(path), now)
            if found is not None and (best is None or found[0] > best[0]):
                best = (found[0], ABSENT if found[1] is None else _meta(found[1]))
        if own_unknown and (best is None or best[1] is ABSENT):
            stamp = self._index.has_names(path, now)
            if stamp is not None and (best is None or stamp > best[0]):
                best = (stamp, DIR)
        if (best is None or best[1] is ABSENT) and not digest_path(path):
            # the anchors of the index: any live listing below ``path`` (the memory keeps at most
            # metadata_cache_entries anchors; a million-object tree has about 290,000 such directories)
            stamp = self._index.live_below(path, now)
            if stamp is not None and (best is None or stamp > best[0]):
                best = (stamp, DIR)
        return best

    def listing(self, directory: str) -> Listing | None:
        """A copy of the cached listing of ``directory`` (from memory, else from the index)."""
        with self._lock:
            listed = self._listings.get(directory)
            if listed is not None:
                return dict(listed[1])
            now = self._clock()
        if self._index is None:
            return None
        held = self._index.listing(directory, now)
        return None if held is None else {row[0]: _meta(row) for row in held[2]}

    # -- what was learned from the driver ------------------------------------------------------

    def put(self, path: str, meta: Meta, asked: float | None = None) -> None:
        """Cache ``meta`` of ``path``, learned from a request made at clock time ``asked``."""
        if not self._enabled:
            return
        with self._lock:
            if asked is None or asked >= self._floor:
                now = self._clock()
                self._attrs[path] = (now, meta)
                if digest_path(path):
                    self._anchor(path, now)

    def put_absent(self, path: str, asked: float | None = None) -> None:
        if not self._neg_enabled:
            return
        with self._lock:
            if asked is None or asked >= self._floor:
                self._absent[path] = self._clock()
                self._attrs.pop(path, None)
                self._unanchor(path)

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
            now = self._clock()
            held = (when, entries, now + (self._long_ttl if digest_path(directory) else self._short_ttl))
            if entries and digest_path(directory):
                self._anchor(directory, when)
            if len(entries) + 1 > self._listings.maxsize:  # larger than the whole memory cache
                evicted = [(directory, held)]  # straight to the index, if there is one
                self._listings.pop(directory, None)
            else:
                if self._index is not None:
                    self._make_room(len(entries) + 1)
                self._listings[directory] = held
                evicted = self._listings.take_evicted()
        if evicted and self._index is not None:
            self._spill(evicted, now)

    def _make_room(self, size: int) -> None:
        """Evict a tenth of the listings at once when ``size`` more does not fit: one spill, not one each."""
        listings = self._listings
        if listings.currsize + size <= listings.maxsize:
            return
        listings.expire()
        floor = min(listings.maxsize - size, listings.maxsize * 9 // 10)
        while listings.currsize > floor and len(listings):
            listings.popitem()

    def _spill(self, evicted: list[tuple[str, tuple[float, Listing, float]]], evicted_at: float) -> None:
        """Move evicted listings to the index (outside the lock), then undo any that a change overtook."""
        assert self._index is not None
        self._index.put((d, stamp, expires, [_row(n, m) for n, m in listed.items()])
                        for d, (stamp, listed, expires) in evicted)
        with self._lock:
            for directory, (stamp, _, _) in evicted:
                if stamp < self._floor or self._index_changed_since(directory, evicted_at):
                    self._index.drop(directory)

    def _index_changed_since(self, directory: str, when: float) -> bool:
        """Did this mount change ``directory`` (or drop a tree holding it) at or after ``when``?"""
        if self._index_drops.get(directory, float("-inf")) >= when:
            return True
        return any(at >= when and (directory == root or is_under(directory, root)) for at, root in self._tree_drops)

    def _index_dropped(self, directory: str, now: float, tree: bool = False) -> None:
        """Note (under the lock) that ``directory``'s index row was dropped now, for :meth:`_spill`'s check."""
        if tree:
            self._tree_drops.append((now, directory))
            while self._tree_drops and self._tree_drops[0][0] < now - _RACE_HORIZON:
                self._tree_drops.popleft()
        else:
            self._index_drops[directory] = now
            if len(self._index_drops) > 10_000:
                self._index_drops = {d: t for d, t in self._index_drops.items() if t >= now - _RACE_HORIZON}

    def _anchor(self, path: str, stamp: float) -> None:
        """The digest path ``path`` existed at ``stamp``: so did each directory above it."""
        step = parent(path)
        while step != "/":
            if not digest_path(step):
                held = self._anchors.get(step)
                if held is not None and held >= stamp - _ANCHOR_SLACK:
                    return  # anchored by a fact at most a second older, and so is everything above it
                self._anchors.put(step, stamp)
            step = parent(step)

    def _unanchor(self, path: str) -> None:
        """Something at or below ``path`` went: what it anchored (``path`` and above) must be asked again."""
        step = path
        while step != "/":
            self._anchors.pop(step, None)
            step = parent(step)

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
            self._unanchor(path)
            if self._neg_enabled:
                self._absent[path] = now
            listed = self._listings.get(parent(path))
            if listed is not None:
                listed[1].pop(basename(path), None)

    def _note(self, now: float, path: str, meta: Meta) -> None:
        if self._index is not None and path != "/":
            self._index.drop(parent(path))  # its listing there lacks this change
            self._index_dropped(parent(path), now)
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
            self._unanchor(path)
            if self._index is not None:
                now = self._clock()
                for directory in (path, parent(path)) if path != "/" else (path,):
                    self._index.drop(directory)
                    self._index_dropped(directory, now)
            listed = self._listings.get(parent(path)) if path != "/" else None
            if listed is not None:
                self._listings.pop(parent(path), None)

    def forget_tree(self, directory: str) -> None:
        """Drop everything known about ``directory`` and below it (directory rename)."""
        with self._lock:
            for cache in (self._attrs, self._absent, self._listings, self._anchors):
                doomed = [key for key in list(cache.keys()) if key == directory or is_under(key, directory)]
                for key in doomed:
                    cache.pop(key, None)
            self._unanchor(directory)
            if self._index is not None:
                self._index.drop_tree(directory)
                self._index_dropped(directory, self._clock(), tree=True)

    def entries(self) -> int:
        """Attribute, listing and negative entries held now (expired ones until they are evicted)."""
        with self._lock:
            held = len(self._attrs) + len(self._listings) + len(self._absent) + len(self._anchors)
        return held

    def index_names(self) -> int:
        """Names held by the on-disk index (0 without one)."""
        return self._index.names() if self._index is not None else 0

    def close(self) -> None:
        """Remove the on-disk index (unmount)."""
        if self._index is not None:
            self._index.close()

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
            self._listings.take_evicted()
            self._anchors.clear()
            if self._index is not None:
                self._index.clear()
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
