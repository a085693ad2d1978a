"""BlobFills: an immutable blob read at random is fetched whole into the data cache, in the background.

Owns the fills of one mount (docs/SEMANTICS.md "read", docs/PERFORMANCE.md "Random reads").
A handle that keeps jumping around a data-cached blob (``FILL_AFTER`` reads that were neither
sequential nor inside a readahead window, or ``FILL_SOONER`` of them that waited ``FILL_WAIT`` for a
distant store, and most of its reads: a scanner, a tool seeking
through an archive's index, a registry serving byte ranges) starts a fill of the version it reads.
The fill fetches the parts of that version not yet in the data cache, ``read_part_size`` each
(rounded down to whole cache blocks), on the mount's read pool, and stores them there; every later
read at any offset is then answered from local disk instead of one round trip per 4 KiB.  The
handle's own reads go on as before meanwhile (a read of a block the fill has queued for the disk
waits for it, ``DataCache.read``).

Bounds, all of them checked before a byte is asked for:

* only a version known by its ETag: each GET is conditional on it (the reader's fetch), so a
  replaced object stops the fill, and the cache, keyed by that version, never holds another's bytes;
* only a blob of at most ``random_fill_max`` bytes and at most half the data cache (a fill never
  pushes out more than half of what is cached); 0 turns fills off;
* at most ``FILL_PARTS`` parts in flight, and at most half of ``read_parallelism`` (the pool is
  shared with readahead windows and listings, which must not wait behind a fill), each holding
  its bytes in the readahead :class:`~s3regfs.fs.readahead.ByteBudget` while it is fetched, so the read memory bound of
  docs/SEMANTICS.md ("Memory") is unchanged; a fill that the budget refuses with nothing in flight
  ends there, and what it did not fetch is read on demand as before;
* one fill at a time in a mount (``MAX_FILLS``); a handle whose fill could not start because
  another runs asks again after its next ``FILL_AFTER`` random reads.

No worker waits for another: each finished part submits the next one, so a fill never holds a pool
thread while it waits.  A failed GET ends the fill (logged at INFO; the handle's reads report their
own errors).  Unmounting stops fills: no part is submitted after :meth:`BlobFills.close`.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from s3regfs.fs.datacache import DataCache
from s3regfs.fs.readahead import ByteBudget, Fetch

log = logging.getLogger(__name__)

FILL_AFTER = 8
"""Random reads of one handle (reads outside any readahead window) that start a fill of its blob."""
FILL_SOONER = 3
"""Random reads that start a fill once they have waited ``FILL_WAIT`` in all (a distant store)."""
FILL_WAIT = 0.05
"""Seconds of waiting on random reads after which ``FILL_SOONER`` of them start a fill (at 20 ms a round
trip, three reads; on loopback, about 2 ms each, ``FILL_AFTER`` reads come first)."""
FILL_PARTS = 4
"""Parts of one fill fetched at once."""
MAX_FILLS = 1
"""Fills running at once in one mount."""

@dataclass
class _Fill:
    key: str
    size: int
    etag: str
    fetch: Fetch  # the reader's fetch of this version: data cache first, then a conditional GET, then stored
    next: int = 0  # the first byte not yet asked for
    in_flight: int = 0
    stopped: bool = False


class BlobFills:
    """The background fills of one mount."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        parallelism: int,
        budget: ByteBudget,
        cache: DataCache,
        part: int,
        limit: int,
    ) -> None:
        self._pool = pool
        self._parts = max(1, min(FILL_PARTS, parallelism // 2))
        self._budget = budget
        self._cache = cache
        self._part = max(cache.block, part // cache.block * cache.block)
        self.limit = min(limit, cache.max_bytes // 2)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running: dict[tuple[str, str], _Fill] = {}
        self._closed = False
        self.started = 0
        self.completed = 0  # fills that reached the blob's end
        self.stopped = 0  # fills ended early (a failed GET, the budget, the unmount)

    def start(self, key: str, size: int, etag: str, fetch: Fetch) -> bool:
        """Fill version ``etag`` of ``key`` (``size`` bytes) in the background.  True when that is done
        with: started, running already, or never to be (too large, unmounting); False when another
        fill runs and this one may start later."""
        if not 0 < size <= self.limit:
            return True
        with self._lock:
            if self._closed or (key, etag) in self._running:
                return True
            if len(self._running) >= MAX_FILLS:
                return False
            fill = self._running[(key, etag)] = _Fill(key, size, etag, fetch)
            self.started += 1
        log.debug("filling %s (%d bytes) after random reads", key, size)
        self._pump_safely(fill)
        return True

    def counts(self) -> dict[str, int]:
        """Fills started, completed and stopped early (the status and the metrics)."""
        with self._lock:
            return {"fills_started": self.started, "fills_completed": self.completed, "fills_stopped": self.stopped}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no fill runs (or ``timeout``); True when none does."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)

    def close(self) -> None:
        """No part is asked for after this; the parts in flight finish or are cancelled with the pool."""
        with self._lock:
            self._closed = True

    def _pump_safely(self, fill: _Fill) -> None:
        """``_pump``; an unexpected error ends the fill (never the reader's read, never a fill left running)."""
        try:
            self._pump(fill)
        except Exception:  # noqa: BLE001 - a bug here must not fail a read or block later fills
            log.exception("fill of %s stopped", fill.key)
            with self._lock:
                fill.stopped = True
                if fill.in_flight == 0:
                    self._end(fill)

    def _pump(self, fill: _Fill) -> None:
        """Ask for the fill's next parts while it has room; end it when nothing is left or in flight."""
        while True:
            with self._lock:
                if self._closed:
                    fill.stopped = True
                offset, length = self._next_part(fill)
                if length == 0:
                    if fill.in_flight == 0:
                        self._end(fill)
                    return
                fill.in_flight += 1
            try:
                self._pool.submit(self._fetch_part, fill, offset, length)
            except RuntimeError:  # the pool is shut down: the mount is going away
                self._budget.release(length)
                with self._lock:
                    fill.in_flight -= 1
                    fill.stopped = True

    def _next_part(self, fill: _Fill) -> tuple[int, int]:
        """(Lock held.) The next part to ask for, its bytes taken from the budget; length 0 when none."""
        if fill.stopped or fill.in_flight >= self._parts:
            return 0, 0
        while fill.next < fill.size:
            offset, length = fill.next, min(self._part, fill.size - fill.next)
            if self._cache.holds(fill.key, fill.size, fill.etag, offset, length):
                fill.next += length  # cached already, or queued for the disk
                continue
            if not self._budget.try_acquire(length):
                if fill.in_flight == 0:
                    fill.stopped = True  # nothing of ours to wait for: the on-demand reads go on
                return 0, 0
            fill.next += length
            return offset, length
        return 0, 0

    def _fetch_part(self, fill: _Fill, offset: int, length: int) -> None:
        try:
            if not fill.stopped:
                fill.fetch(offset, length)
        except Exception as exc:  # noqa: BLE001 - a fill is an optimisation: the reads report errors
            with self._lock:
                fill.stopped = True
            log.info("fill of %s stopped at %d: %s", fill.key, offset, exc)
        finally:
            self._budget.release(length)
            with self._lock:
                fill.in_flight -= 1
            self._pump_safely(fill)

    def _end(self, fill: _Fill) -> None:
        """(Lock held.) ``fill`` has nothing left in flight: forget it."""
        if self._running.get((fill.key, fill.etag)) is fill:
            del self._running[(fill.key, fill.etag)]
            if fill.stopped or fill.next < fill.size:
                self.stopped += 1
            else:
                self.completed += 1
            self._idle.notify_all()
