"""MetaIndex: the on-disk second level of the metadata cache (``cache_dir/metadata.sqlite``).

The in-memory :class:`~s3regfs.fs.metacache.MetaCache` holds at most ``metadata_cache_entries``
names, about 1 KiB each in Python.  A listing it evicts to stay under that bound is not forgotten:
it moves here, one row per name in an SQLite table (about 150 bytes on disk), with the time it
was learned and the time it expires, which are the in-memory ones.  A lookup or listing the memory
does not answer asks this index before the driver, so a walk of a tree larger than the memory bound
(``find`` over a million objects) is still known afterwards, while the daemon's memory stays
independent of the bucket's size: SQLite's own page cache is 8 MiB.

It also stands in for the anchors memory could not keep: a live, non-empty listing below a directory
shows that the directory exists (:meth:`MetaIndex.live_below`, a scan of at most ``BELOW_SCAN`` rows).

The index answers only what the memory cache would have answered: nothing after its expiry, and
nothing about a directory this mount changed since (every change drops that directory's row).
It holds at most ``max_names`` names: past that, the earliest-expiring listings go first.  The file
is a cache for this mount only: it is emptied when the mount starts and when the cache is cleared
(SIGHUP), and written without journal or sync (a crash loses nothing but the cache).

One connection behind one lock; every call is a local read or write of a few rows (no request).
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

Row = tuple[str, bool, int, float, bool, "str | None"]
"""(name, is_dir, size, mtime, local, etag): a Meta without the class (MetaCache converts)."""

_SCHEMA = """
CREATE TABLE listing (id INTEGER PRIMARY KEY, dir TEXT NOT NULL UNIQUE, stamp REAL NOT NULL, expires REAL NOT NULL,
    names INTEGER NOT NULL);
CREATE INDEX listing_expires ON listing (expires);
CREATE TABLE entry (listing INTEGER NOT NULL, name TEXT NOT NULL, is_dir INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime REAL NOT NULL, local INTEGER NOT NULL, etag TEXT, PRIMARY KEY (listing, name)) WITHOUT ROWID;
"""
PAGE_CACHE_KIB = 8 * 1024
BELOW_SCAN = 64
"""How many listings below a directory :meth:`MetaIndex.live_below` looks at, at most."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(default: Any) -> Callable[[_F], _F]:
    """An SQLite error (a full disk, a removed file) turns the index off, with one warning: it is a cache."""

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        def guarded(self: MetaIndex, *args: Any, **kwargs: Any) -> Any:
            if self.broken:
                return default
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                self.broken = True
                log.warning("the metadata index %s failed (%s); going on without it (more requests, no "
                            "wrong answers)", self.path, exc)
                return default

        return guarded  # type: ignore[return-value]

    return wrap


class MetaIndex:
    """Listings evicted from memory, on disk until they expire (thread-safe)."""

    def __init__(self, path: str, max_names: int) -> None:
        """Create the index at ``path`` (replacing any left there); OSError when it cannot be made."""
        self.path = path
        self.max_names = max(1, max_names)
        self.broken = False
        self._lock = threading.Lock()
        for stale in (path, path + "-journal", path + "-wal", path + "-shm"):
            if os.path.exists(stale):
                os.unlink(stale)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.executescript(
                f"PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; "
                f"PRAGMA cache_size=-{PAGE_CACHE_KIB};" + _SCHEMA
            )
        except sqlite3.Error as exc:
            raise OSError(f"cannot create the metadata index {path}: {exc}") from exc
        self._names = 0
        self.hits = 0

    # -- writes ---------------------------------------------------------------------------------

    @_guarded(None)
    def put(self, listings: Iterable[tuple[str, float, float, list[Row]]]) -> None:
        """Store each (directory, stamp, expires, rows), replacing what was held for that directory."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for directory, stamp, expires, rows in listings:
                    self._drop(directory)
                    lid = self._db.execute("INSERT INTO listing (dir, stamp, expires, names) VALUES (?, ?, ?, ?)",
                                           (directory, stamp, expires, len(rows))).lastrowid
                    self._db.executemany("INSERT INTO entry VALUES (?, ?, ?, ?, ?, ?, ?)", [(lid, *row) for row in rows])
                    self._names += len(rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if self._names > self.max_names:
                self._shrink()

    @_guarded(None)
    def drop(self, directory: str) -> None:
        """Forget the listing of ``directory`` (this mount changed it, or memory holds a newer one)."""
        with self._lock:
            self._drop(directory)

    @_guarded(None)
    def drop_tree(self, directory: str) -> None:
        """Forget the listings of ``directory`` and of everything below it."""
        low = "/" if directory == "/" else directory + "/"
        high = low[:-1] + "0"  # '0' follows '/': every path below sorts between the two
        with self._lock:
            doomed = [row[0] for row in self._db.execute(
                "SELECT dir FROM listing WHERE dir = ? OR (dir >= ? AND dir < ?)", (directory, low, high))]
            for name in doomed:
                self._drop(name)

    @_guarded(None)
    def clear(self) -> None:
        with self._lock:
            self._db.executescript("DELETE FROM listing; DELETE FROM entry;")
            self._names = 0

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _drop(self, directory: str) -> None:
        held = self._db.execute("SELECT id, names FROM listing WHERE dir = ?", (directory,)).fetchone()
        if held is None:
            return
        self._db.execute("DELETE FROM listing WHERE id = ?", (held[0],))
        self._db.execute("DELETE FROM entry WHERE listing = ?", (held[0],))
        self._names -= held[1]

    def _shrink(self) -> None:
        """Drop the earliest-expiring listings until a tenth of the room is free again."""
        target = self.max_names - self.max_names // 10
        doomed: list[str] = []
        freed = 0
        for directory, names in self._db.execute("SELECT dir, names FROM listing ORDER BY expires"):
            if self._names - freed <= target:
                break
            doomed.append(directory)
            freed += names
        self._db.execute("BEGIN")
        for directory in doomed:
            self._drop(directory)
        self._db.execute("COMMIT")

    # -- reads ----------------------------------------------------------------------------------

    @_guarded(None)
    def entry(self, directory: str, name: str, now: float) -> tuple[float, Row | None] | None:
        """(stamp, the row of ``name``, or None when the listing lacks it); None without a live listing."""
        with self._lock:
            held = self._db.execute("SELECT id, stamp FROM listing WHERE dir = ? AND expires > ?",
                                    (directory, now)).fetchone()
            if held is None:
                return None
            row = self._db.execute(
                "SELECT name, is_dir, size, mtime, local, etag FROM entry WHERE listing = ? AND name = ?",
                (held[0], name)).fetchone()
            self.hits += 1
        return held[1], (None if row is None else _row(row))

    @_guarded(None)
    def has_names(self, directory: str, now: float) -> float | None:
        """The stamp of a live, non-empty listing of ``directory``; None without one."""
        with self._lock:
            held = self._db.execute("SELECT stamp FROM listing WHERE dir = ? AND expires > ? AND names > 0",
                                    (directory, now)).fetchone()
        return None if held is None else float(held[0])

    @_guarded(None)
    def live_below(self, directory: str, now: float) -> float | None:
        """The newest stamp among the first ``BELOW_SCAN`` non-empty listings below ``directory`` that
        are live; None without one (a bounded scan of the ``dir`` index: a few rows, never the tree)."""
        low = "/" if directory == "/" else directory + "/"
        high = low[:-1] + "0"  # '0' follows '/': every path below sorts between the two
        with self._lock:
            held = self._db.execute(
                "SELECT max(stamp) FROM (SELECT stamp, expires FROM listing WHERE dir > ? AND dir < ? AND names > 0 "
                "LIMIT ?) WHERE expires > ?", (low, high, BELOW_SCAN, now)).fetchone()
        return None if held is None or held[0] is None else float(held[0])

    @_guarded(None)
    def listing(self, directory: str, now: float) -> tuple[float, float, list[Row]] | None:
        """(stamp, expires, rows) of a live listing of ``directory``; None without one."""
        with self._lock:
            held = self._db.execute("SELECT id, stamp, expires FROM listing WHERE dir = ? AND expires > ?",
                                    (directory, now)).fetchone()
            if held is None:
                return None
            rows = [_row(r) for r in self._db.execute(
                "SELECT name, is_dir, size, mtime, local, etag FROM entry WHERE listing = ?", (held[0],))]
            self.hits += 1
        return held[1], held[2], rows

    def names(self) -> int:
        with self._lock:
            return self._names


def _row(raw: tuple[object, ...]) -> Row:
    name, is_dir, size, mtime, local, etag = raw
    return str(name), bool(is_dir), int(size), float(mtime), bool(local), None if etag is None else str(etag)  # type: ignore[arg-type]
