"""UploadLedger: what the uploads of a mount are doing, for its status and metrics.

Owns the record of every commit's upload (:meth:`UploadLedger.uploading`, around the one place
:class:`~s3regfs.fs.writeback.Node` uploads): the uploads in flight with their paths, sizes and
start times, how many were committed and how many failed, and the last failures with their
paths and causes.  It only observes: nothing here decides, waits or retries.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

RECENT_FAILURES = 20
"""How many of the last failed uploads are remembered with their paths."""


@dataclass(frozen=True)
class Upload:
    path: str
    size: int
    started: float
    """Wall-clock time (``time.time()``) the upload started."""


@dataclass(frozen=True)
class Failure:
    path: str
    error: str
    at: float


class UploadLedger:
    """Uploads in flight, committed and failed (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._in_flight: dict[int, Upload] = {}
        self._recent: deque[Failure] = deque(maxlen=RECENT_FAILURES)
        self.committed = 0
        self.failed = 0
        self.bytes_committed = 0

    @contextmanager
    def uploading(self, path: str, size: int) -> Iterator[None]:
        """Record the upload of ``size`` bytes to ``path`` while the block runs; an exception is a failure."""
        with self._lock:
            token = next(self._ids)
            self._in_flight[token] = Upload(path, size, self._clock())
        try:
            yield
        except BaseException as exc:
            with self._lock:
                del self._in_flight[token]
                self.failed += 1
                self._recent.append(Failure(path, _one_line(exc), self._clock()))
            raise
        with self._lock:
            del self._in_flight[token]
            self.committed += 1
            self.bytes_committed += size

    def in_flight(self) -> list[Upload]:
        """The uploads running now, oldest first."""
        with self._lock:
            return sorted(self._in_flight.values(), key=lambda u: u.started)

    def recent_failures(self) -> list[Failure]:
        """The last :data:`RECENT_FAILURES` failed uploads, oldest first."""
        with self._lock:
            return list(self._recent)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "message", "") or exc).split())
    return text[:300] or type(exc).__name__
