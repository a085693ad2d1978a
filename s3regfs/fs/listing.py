"""Directory listings from the driver: filtering, the file/directory clash rule, walk-ahead.

Owns how a directory's entries are learned and put into the :class:`MetaCache`:

* a child whose name the driver contract cannot represent (``x/`` placeholders, spaces, …)
  is left out, with ONE warning per directory;
* a file and a directory with the same name: the directory wins (one warning per
  directory); the file is not reachable through the mount;
* walk-ahead (``listing_walk_ahead`` keys): the first listing of a directory walks its whole
  subtree with the driver's flat ``walk`` and stops after that many files; every
  subdirectory the walk finished is cached, so ``find``/``ls -R`` cost about one LIST per
  1000 keys instead of one per directory.  A later listing of a directory the walk has not
  reached resumes it once (``start_after_hint``), then falls back to ``list_info``; a directory
  the walk has been inside for a whole batch (one above a subtree larger than a batch) is listed
  with ``list_info`` at once, since the next batch would most likely not finish it either;
* pipelining: after a batch the reader had to wait for, the next batch is fetched in the
  background (``executor``), and when the reader reaches the first directory of a batch
  fetched that way, the one after it: at most ``MAX_AHEAD`` batches ahead of the reader, so a
  walk nobody follows stops after two extra LISTs, and what the reader gets is at most a few
  batches old (a listing of a repository lives ``metadata_ttl``).

The walk relies on the contract's order: a directory is reported before anything below it and
its subtree is contiguous (true of depth-first order and of S3 key order).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from s3regfs.driver.base import FileInfo, StorageDriver
from s3regfs.driver.errors import FilledBuffer, PathNotFoundError
from s3regfs.fs.metacache import DIR, Listing, Meta, MetaCache
from s3regfs.fs.paths import basename, is_under, name_ok, parent, relative_ok

log = logging.getLogger(__name__)

_MAX_SESSIONS = 64
MAX_AHEAD = 2
"""Background batches a walk may run ahead of its reader: a walk further ahead serves listings that
are older when read (a repository's expire metadata_ttl after they were fetched), and costs a
walk nobody follows more LISTs."""
_MAX_WARNED = 10_000
WALK_SESSION_TTL = 120.0
"""How long a walk-ahead may be resumed (a walk of a large tree outlasts metadata_ttl)."""


def _prefix(directory: str) -> str:
    return "/" if directory == "/" else directory + "/"


def meta_of(info: FileInfo) -> Meta:
    if info.is_dir:
        return DIR
    try:
        mtime = info.mod_time.timestamp()
    except (OverflowError, ValueError, OSError):
        mtime = 0.0
    return Meta(False, info.size, mtime, etag=info.etag)


def merge(entries: Listing, name: str, meta: Meta) -> bool:
    """Add one child; the directory wins a clash. True when a clash was seen."""
    old = entries.get(name)
    if old is None:
        entries[name] = meta
        return False
    if old.is_dir == meta.is_dir:
        return False
    if meta.is_dir:
        entries[name] = meta
    return True


@dataclass
class _Session:
    """One walk-ahead over the subtree of ``root``."""

    root: str
    stamp: float
    cursor: str = ""
    done: bool = False
    root_empty: bool = False
    chain: list[str] = field(default_factory=list)
    partial: dict[str, Listing] = field(default_factory=dict)
    since: dict[str, float] = field(default_factory=dict)  # when a partial listing got its first page
    lock: threading.Lock = field(default_factory=threading.Lock)
    first_closed: str | None = None  # the first directory the current batch cached
    background: bool = False  # the current batch is fetched ahead of the reader
    fetching: bool = False  # a background worker is queued or running
    more: bool = False  # the worker should fetch one more batch after this one
    ahead: int = 0  # background batches whose first directory the reader has not reached yet
    batches: int = 0  # batches finished
    opened: dict[str, int] = field(default_factory=dict)  # open directory -> the batch that entered it


class Lister:
    """Fetches listings through the driver and caches them."""

    def __init__(self, driver: StorageDriver, cache: MetaCache, ttl: float, walk_ahead: int,
                 executor: Executor | None = None) -> None:
        self.driver = driver
        self.cache = cache
        self.ttl = ttl
        self.walk_ahead = walk_ahead if ttl > 0 else 0
        # A walk may be resumed for this long: each batch is fresh when fetched and every listing it
        # caches is stamped with the time of its own first page, so resuming never serves older data.
        self.session_ttl = max(ttl, WALK_SESSION_TTL)
        self.executor = executor
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._triggers: dict[str, _Session] = {}  # directory -> session to advance when it is read
        self._warned: set[tuple[str, str]] = set()

    # -- public ------------------------------------------------------------------------------------

    def list_dir(self, directory: str) -> Listing:
        """The entries of ``directory`` (cached or fetched); PathNotFoundError when it has none."""
        cached = self.cache.listing(directory)
        if cached is not None:
            if self._triggers:
                self._reached(directory)
            return cached
        if self.walk_ahead > 0:
            entries = self._via_walk(directory)
            if entries is not None:
                return entries
        return self._list_info(directory)

    def forget_sessions_under(self, directory: str) -> None:
        """Drop every walk that covers ``directory`` or lies below it (its tree changed)."""
        with self._lock:
            for root in [
                r
                for r in self._sessions
                if r == directory or is_under(r, directory) or is_under(directory, r)
            ]:
                del self._sessions[root]
            self._triggers = {d: s for d, s in self._triggers.items() if self._sessions.get(s.root) is s}

    # -- plain listing -----------------------------------------------------------------------------

    def _list_info(self, directory: str) -> Listing:
        stamp = self.cache.now()
        infos = self.driver.list_info(directory)
        entries: Listing = {}
        bad: list[str] = []
        clash = False
        prefix = _prefix(directory)
        for info in infos:
            name = info.path[len(prefix) :] if info.path.startswith(prefix) else ""
            if not name_ok(name):
                bad.append(info.path)
                continue
            clash |= merge(entries, name, meta_of(info))
        self._warn(directory, bad, clash)
        self.cache.put_listing(directory, entries, stamp)
        return dict(entries)

    def learned_subtree(self, directory: str, files: list[FileInfo], stamp: float) -> None:
        """Cache the listings of ``directory`` and every directory below it from all the files below it.

        ``files`` is complete (a lookup's ``stat_tree``); the same name filter and clash rule as a listing.
        """
        listings: dict[str, Listing] = {directory: {}}
        bad: list[str] = []
        clash = False
        prefix = _prefix(directory)
        for info in files:
            rel = info.path[len(prefix):] if info.path.startswith(prefix) else ""
            if not relative_ok(rel):
                bad.append(info.path)
                continue
            here = directory
            parts = rel.split("/")
            for depth, part in enumerate(parts):
                entries = listings.setdefault(here, {})
                last = depth == len(parts) - 1
                clash |= merge(entries, part, meta_of(info) if last else DIR)
                here = _prefix(here) + part
        self._warn(directory, bad, clash)
        for path, entries in listings.items():
            self.cache.put_listing(path, entries, stamp)

    def learned_first_files(self, directory: str, files: list[FileInfo], stamp: float) -> None:
        """A lookup's LIST below ``directory`` stopped after ``files`` (key order, ``FirstFiles``): every
        directory holding one of them exists, and one whose keys all sort before the last of them is
        complete (its subtree is cached as :meth:`learned_subtree` does).  So the lookups of the
        directories between ``directory`` and a file below it need no request of their own."""
        if not files:
            return
        last, prefix = files[-1].path, _prefix(directory)
        complete: dict[str, list[FileInfo]] = {}  # the highest complete directory above a file → its files
        seen: set[str] = set()
        for info in files:
            rel = info.path[len(prefix):] if info.path.startswith(prefix) else ""
            if not relative_ok(rel):
                continue
            here = directory
            for part in rel.split("/")[:-1]:
                here = _prefix(here) + part
                seen.add(here)
                if not is_under(last, here):
                    complete.setdefault(here, []).append(info)
                    break  # all of it is here, and so all below it
        for path in seen:
            self.cache.put(path, DIR, stamp)
        for path, below in complete.items():
            self.learned_subtree(path, below, stamp)

    def _warn(self, directory: str, bad: list[str], clash: bool) -> None:
        if len(self._warned) > _MAX_WARNED:
            self._warned.clear()
        if bad and (directory, "bad") not in self._warned:
            self._warned.add((directory, "bad"))
            log.warning(
                "%s: %d key(s) cannot be represented and are not listed (e.g. %r): names may use only "
                "A-Z a-z 0-9 . _ - (storage driver path rule)",
                directory,
                len(bad),
                bad[0],
            )
        if clash and (directory, "clash") not in self._warned:
            self._warned.add((directory, "clash"))
            log.warning(
                "%s: a file and a directory share a name in the bucket; the directory is shown, "
                "the file is not reachable through the mount",
                directory,
            )

    # -- walk-ahead --------------------------------------------------------------------------------

    def _session_for(self, directory: str) -> tuple[_Session, bool]:
        """The deepest live session whose root covers ``directory``, or a new one rooted there."""
        now = self.cache.now()
        with self._lock:
            stale = [r for r, s in self._sessions.items() if s.done or now - s.stamp > self.session_ttl]
            for root in stale:
                del self._sessions[root]
            if stale and self._triggers:
                self._triggers = {d: s for d, s in self._triggers.items() if self._sessions.get(s.root) is s}
            best: _Session | None = None
            for session in self._sessions.values():
                covers = session.root == directory or is_under(directory, session.root)
                if covers and (best is None or len(session.root) > len(best.root)):
                    best = session
            if best is not None:
                return best, False
            if len(self._sessions) >= _MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda s: s.stamp)
                del self._sessions[oldest.root]
            session = _Session(directory, now, chain=[directory], partial={directory: {}}, opened={directory: 0})
            self._sessions[directory] = session
            return session, True

    def _via_walk(self, directory: str) -> Listing | None:
        """The listing from a walk session, or None when one more page did not finish it."""
        session, new = self._session_for(directory)
        if not new and self._spans_batches(session, directory):
            # The walk has been inside this directory for a whole batch: its subtree is larger than a
            # batch, so waiting for the next one would not give its listing. List it on its own
            # instead, and keep the walk going in the background for what lies below.
            self._fetch_next(session)
            return None
        with session.lock:
            cached = self.cache.listing(directory)
            if cached is None and not session.done and (new or not self._spans_batches(session, directory)):
                self._advance(session)
                with self._lock:
                    session.ahead = 0  # the reader overtook the background batches: their triggers are behind it
                if session.done and session.root == directory and session.root_empty:
                    raise PathNotFoundError(directory)
                cached = self.cache.listing(directory)
        self._fetch_next(session)
        return cached

    @staticmethod
    def _spans_batches(session: _Session, directory: str) -> bool:
        """Is ``directory`` open in the walk since before its last finished batch, or did it hold every
        file of a finished batch (a subtree larger than a batch)?  One entered during the last batch is
        left, most likely, in the next (a repository the batch ended in).  (Read without the session's
        lock: a stale answer costs a wait or one LIST.)"""
        opened = session.opened.get(directory)  # set exactly while the directory is in the chain
        return opened is not None and opened < session.batches

    # -- pipelining ---------------------------------------------------------------------------------

    def _reached(self, directory: str) -> None:
        """The reader got to ``directory``: if a background batch starts there, fetch the next one."""
        with self._lock:
            session = self._triggers.pop(directory, None)
            if session is None or self._sessions.get(session.root) is not session:
                return
            session.ahead = max(0, session.ahead - 1)
        self._fetch_next(session)

    def _fetch_next(self, session: _Session) -> None:
        """Have the session's next batch fetched in the background (one worker per session)."""
        if self.executor is None or session.done:
            return
        with self._lock:
            if session.ahead + session.fetching + session.more >= MAX_AHEAD:
                return  # far enough ahead: the reader reaching one of those batches asks for the next
            if session.fetching:
                session.more = True  # the running worker goes on with one more batch
                return
            session.fetching = True
            session.more = False
        try:
            self.executor.submit(self._background, session)
        except RuntimeError:  # the executor is shut down (unmounting)
            with self._lock:
                session.fetching = False

    def _background(self, session: _Session) -> None:
        try:
            while True:
                with session.lock:
                    if session.done:
                        return
                    self._advance(session, background=True)
                with self._lock:
                    if not session.more or session.done:
                        return
                    session.more = False
        except Exception:  # noqa: BLE001 - the reader repeats the batch itself and sees the error
            log.debug("background listing of %s failed", session.root, exc_info=True)
        finally:
            with self._lock:
                session.fetching = False

    def _advance(self, session: _Session, background: bool = False) -> None:
        """Walk about ``walk_ahead`` more files of the session; cache every directory it finished."""
        stamp = self.cache.now()
        files = 0
        bad: dict[str, list[str]] = {}
        session.first_closed = None
        session.background = background
        root = session.root
        prefix = _prefix(root)
        holding: list[str] = []  # the directories that hold the batch's first file

        def visit(info: FileInfo) -> None:
            nonlocal files
            session.cursor = info.path
            if not info.path.startswith(prefix):
                return
            rel = info.path[len(prefix) :]
            if not relative_ok(rel):
                bad.setdefault(parent(info.path), []).append(info.path)
                return
            self._place(session, info, stamp)
            if not info.is_dir:
                files += 1
                if files == 1:
                    holding.extend(session.chain)
                if files >= self.walk_ahead:
                    raise FilledBuffer()

        stopper = _Stopper(visit)
        try:
            self.driver.walk(root, stopper, session.cursor)
        except FilledBuffer:
            stopper.stopped = True
        except PathNotFoundError:
            pass
        if stopper.stopped:
            # Still open, these hold every file of the batch: larger than a batch, they span batches
            # (the top of a tree after the first batch; see _spans_batches).
            for directory in holding:
                if directory in session.opened:
                    session.opened[directory] = min(session.opened[directory], session.batches)
        session.batches += 1
        if not stopper.stopped:
            session.done = True
            while session.chain:
                self._close(session, session.chain.pop(), stamp)
        for directory, paths in bad.items():
            self._warn(directory, paths, False)

    def _place(self, session: _Session, info: FileInfo, stamp: float) -> None:
        """Add one walked entry below the session root; close the directories it has left."""
        target = parent(info.path)
        chain = session.chain
        if info.is_dir and info.path in chain:
            # A resumed walk (start_after_hint) reports the ancestors of its first key again;
            # they are still open in the chain and must not close (and truncate) it.
            return
        while len(chain) > 1 and chain[-1] != target and not is_under(target, chain[-1]):
            self._close(session, chain.pop(), stamp)
        while chain[-1] != target:  # a directory the walk did not report before its children
            step = target
            while parent(step) != chain[-1]:
                step = parent(step)
            merge(session.partial[chain[-1]], basename(step), DIR)
            chain.append(step)
            session.partial[step] = {}
            session.since.setdefault(step, stamp)
            session.opened.setdefault(step, session.batches + 1)
        if merge(session.partial[target], basename(info.path), meta_of(info)):
            self._warn(target, [], True)
        session.since.setdefault(target, stamp)
        if info.is_dir:
            chain.append(info.path)
            session.partial.setdefault(info.path, {})
            session.since.setdefault(info.path, stamp)
            session.opened.setdefault(info.path, session.batches + 1)

    def _close(self, session: _Session, directory: str, stamp: float) -> None:
        entries = session.partial.pop(directory, {})
        stamp = min(stamp, session.since.pop(directory, stamp))  # as fresh as its first page
        session.opened.pop(directory, None)
        if directory == session.root and not entries:
            session.root_empty = True  # no key below the root: "no such directory" for the driver
            return
        if session.first_closed is None:
            session.first_closed = directory
            if session.background:  # the reader reaching this batch asks for the next one
                with self._lock:
                    self._triggers[directory] = session
                    session.ahead += 1
        self.cache.put_listing(directory, entries, stamp)


class _Stopper:
    """Wraps the visit function so the caller can tell "stopped early" from "finished"."""

    def __init__(self, fn: Callable[[FileInfo], None]) -> None:
        self.fn = fn
        self.stopped = False

    def __call__(self, info: FileInfo) -> None:
        try:
            self.fn(info)
        except FilledBuffer:
            self.stopped = True
            raise
