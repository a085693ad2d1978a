"""KernelEntries: a bound on the names the kernel keeps of the mount, and so on libfuse's node table.

libfuse's high-level API keeps a node (about 200 bytes with its name) for every inode the kernel
has looked up, until the kernel sends FORGET, and the kernel forgets only under memory pressure.
A ``find`` over a registry tree of a million objects leaves about 2.3 million of them: over 400 MiB
in the daemon, growing with the bucket (docs/PERFORMANCE.md, "Memory").

The adapter reports every name it hands the kernel: each listed directory with its number of
entries, each looked-up name (counted for its directory).  Once more than ``limit`` were handed out,
a thread of its own tells the kernel to drop the least recently listed directories, each by
``fuse_lowlevel_notify_inval_entry`` on its name in its parent, until the rest is under half the
limit: the kernel forgets the directory and everything below it, and libfuse frees their nodes.
A dropped name is looked up again on its next use, from the metadata cache while that knows it.

Only this thread calls libfuse here, never a FUSE worker, and it holds no lock a worker needs while
it does (the kernel may wait for a request on the parent directory to finish first).  The parent's
inode number is its libfuse node id (``st_ino`` without ``use_ino``), read with ``lstat`` through the
mount.  A directory listed before an ancestor of it was dropped is skipped: it went with the ancestor.
A directory that is some process's working directory is never dropped (its ``getcwd`` would fail
with ENOENT until it changes directory); dropping an ancestor of it is harmless.  The daemon sees
the working directories of the processes ``/proc`` shows it (all of them when it runs as root).
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

from s3regfs.fs.paths import basename, parent

log = logging.getLogger(__name__)

ROOT_ID = 1
"""libfuse's node id of the mount's root."""

Invalidate = Callable[[int, str], int]
"""(parent node id, name) → 0, or a negative errno (the kernel did not have the name)."""


class KernelEntries:
    """Counts the names handed to the kernel per directory; drops the oldest directories past ``limit``."""

    def __init__(self, limit: int, mountpoint: str, lstat: Callable[[str], os.stat_result] = os.lstat,
                 working_directories: Callable[[], list[str]] | None = None) -> None:
        self.limit = limit
        self._mountpoint = mountpoint.rstrip("/")
        self._lstat = lstat
        self._cwds = working_directories or _working_directories
        self._lock = threading.Lock()
        self._dirs: OrderedDict[str, tuple[int, int]] = OrderedDict()  # directory -> (listed at seq, names)
        self._dropped: dict[str, int] = {}  # directory told to go -> seq at the time
        self._seq = 0
        self._total = 0
        self._wake = threading.Event()
        self._invalidate: Invalidate | None = None
        self._calling = threading.Lock()  # held while libfuse is called; stop() waits for it
        self._thread: threading.Thread | None = None
        self.dropped_directories = 0
        self.prunes = 0

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def handed(self) -> int:
        """Names handed to the kernel and not yet dropped (an upper bound of what it keeps)."""
        with self._lock:
            return self._total

    def snapshot(self) -> dict[str, int]:
        """For the status document: the bound, the names handed out now, and what was dropped."""
        return {"limit": self.limit, "handed": self.handed(), "dropped_directories": self.dropped_directories,
                "prunes": self.prunes}

    # -- the adapter's reports (any FUSE worker; quick, never raise) -----------------------

    def listed(self, directory: str, names: int) -> None:
        """``directory`` was listed with ``names`` entries (readdirplus: each one is a kernel entry)."""
        if self.limit <= 0:
            return
        with self._lock:
            self._seq += 1
            old = self._dirs.pop(directory, None)
            self._total += names - (old[1] if old else 0)
            self._dirs[directory] = (self._seq, names)
            over = self._total > self.limit
        if over:
            self._wake.set()

    def looked_up(self, path: str) -> None:
        """The kernel asked for ``path`` (a lookup or a getattr): one more name in its directory."""
        if self.limit <= 0 or path == "/":
            return
        directory = parent(path)
        unit = path if directory == "/" else directory  # a name in the root is its own unit (the root stays)
        with self._lock:
            held = self._dirs.get(unit)
            if held is None:
                self._seq += 1
                self._dirs[unit] = (self._seq, 1)
            else:
                self._dirs[unit] = (held[0], held[1] + 1)
            self._total += 1
            over = self._total > self.limit
        if over:
            self._wake.set()

    # -- the thread that drops --------------------------------------------------------------

    def start(self, invalidate: Invalidate) -> None:
        """Begin dropping through ``invalidate`` (once the FUSE session exists)."""
        if self.limit <= 0 or self._thread is not None:
            return
        self._invalidate = invalidate
        self._thread = threading.Thread(target=self._run, name="s3regfs-kernel-entries", daemon=True)
        self._thread.start()
        if self.handed() > self.limit:
            self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """No libfuse call after this returns (before the FUSE session goes)."""
        self._invalidate = None
        self._wake.set()
        if self._calling.acquire(timeout=timeout):
            self._calling.release()
        else:
            log.warning("a kernel cache drop did not finish within %.0f s; unmounting anyway", timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._invalidate is None:
                return
            try:
                self.prune()
            except Exception:  # noqa: BLE001 - dropping is an optimisation; the mount goes on without it
                log.exception("dropping kernel entries failed")

    def prune(self) -> int:
        """Drop the least recently listed directories until under half the limit; returns how many."""
        busy = set()
        for cwd in self._cwds():
            if cwd == self._mountpoint or cwd.startswith(self._mountpoint + "/"):
                busy.add(cwd[len(self._mountpoint):] or "/")
        victims = self._choose(busy)
        if not victims:
            return 0
        dropped = 0
        for directory in victims:
            if self._drop(directory):
                dropped += 1
        self.dropped_directories += dropped
        self.prunes += 1
        log.debug("dropped %d directories from the kernel's cache (%d names still handed out)", dropped,
                  self.handed())
        return dropped

    def _choose(self, busy: set[str]) -> list[str]:
        """Pop directories, oldest listed first, until the rest is under half the limit (``busy`` ones stay)."""
        victims: list[str] = []
        kept: list[tuple[str, tuple[int, int]]] = []
        with self._lock:
            if self._total <= self.limit:
                return victims
            target = self.limit // 2
            while self._dirs and self._total > target:
                directory, (seq, names) = self._dirs.popitem(last=False)
                self._total -= names
                if self._went_with_an_ancestor(directory, seq):
                    continue
                if directory in busy:
                    kept.append((directory, (seq, names)))
                    continue
                victims.append(directory)
                self._dropped[directory] = self._seq
            for directory, held in kept:  # to the newest end: asked again only after the others
                self._dirs[directory] = held
                self._total += held[1]
            if len(self._dropped) > 4 * max(1, self.limit):
                self._dropped.clear()  # bounded: a forgotten drop only costs one useless call later
        return victims

    def _went_with_an_ancestor(self, directory: str, seq: int) -> bool:
        step = directory
        while step != "/":
            dropped_at = self._dropped.get(step)
            if dropped_at is not None and dropped_at >= seq:
                return True
            step = parent(step)
        return False

    def _drop(self, directory: str) -> bool:
        if directory == "/":
            return False
        up = parent(directory)
        try:
            node = ROOT_ID if up == "/" else self._lstat(self._mountpoint + up).st_ino
        except OSError:
            return False  # the parent went meanwhile: so did the kernel's entry of the directory
        with self._calling:
            invalidate = self._invalidate
            if invalidate is None:
                return False
            return invalidate(node, basename(directory)) == 0


def _working_directories() -> list[str]:
    """The working directories of the processes this daemon may look at (``/proc/PID/cwd``)."""
    found = []
    for link in glob.glob("/proc/[0-9]*/cwd"):
        try:
            found.append(os.readlink(link))
        except OSError:
            continue  # gone, or another user's
    return found
