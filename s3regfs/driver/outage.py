"""Outages of the backend: whether it answers, and the summarised log of its failures.

Owns :class:`Outage`, one per boto3 client (made by
:meth:`s3regfs.driver.retry.RetryPolicy.install`), which the retry hook tells
about every attempt:

* **silence**: since when no request has had any answer (a refused or timed-out
  connection, a reset before the answer) -- cleared by the next answer of any
  kind.  The retry hook stops retrying once the backend has been silent for a
  whole deadline (:meth:`silent_for`), so calls made during a long outage fail
  after one attempt instead of each waiting a deadline of its own;
* **the log of an outage**: the first failure that is retried a second time
  (or not retried at all) opens an outage with one WARNING; while it lasts at
  most one summary WARNING per ``interval`` counts the retries and the failed
  requests; the first successful answer closes it with one WARNING line
  ("S3 answers again after ...").  A single failure retried successfully is
  no outage.  The detail of every attempt is the caller's DEBUG line.

Thread-safe; the fast path of a healthy backend (:meth:`answered`) takes no lock.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("s3regfs.driver.retry")  # one logger for everything about retries

SUMMARY_INTERVAL = 60.0
"""At most one summary line per this many seconds of an outage."""


class Outage:
    """The state of one client's backend (see the module docstring)."""

    def __init__(self, interval: float = SUMMARY_INTERVAL) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._silent_since: float | None = None
        self._started: float | None = None
        self._last_line = 0.0
        self._retried = self._failed = 0  # since the last line
        self._total_retried = self._total_failed = 0
        self._silent = False  # whether the current outage has been a silent one (for the wording)

    def silent_for(self) -> float:
        """Seconds since the backend last failed to answer with no answer since (0 when it answers)."""
        since = self._silent_since
        return 0.0 if since is None else time.monotonic() - since

    def is_silent(self) -> bool:
        """True while the last request that ended had no answer at all."""
        return self._silent_since is not None

    def answered(self, ok: bool) -> None:
        """An answer arrived; ``ok`` when it is not a failure that is retried (a success, a 404 ...)."""
        if self._silent_since is None and (not ok or self._started is None):
            return
        line = None
        with self._lock:
            self._silent_since = None
            if ok and self._started is not None:
                took = time.monotonic() - self._started
                line = (f"S3 answers again after {took:.0f} s of failures: {self._total_retried + self._retried} "
                        f"retries, {self._total_failed + self._failed} requests failed in all")
                self._started = None
                self._retried = self._failed = self._total_retried = self._total_failed = 0
        if line:
            log.warning("%s", line)

    def failed(self, name: str, why: str, *, no_answer: bool, attempt: int, retrying: bool) -> None:
        """Attempt ``attempt`` of a ``name`` request failed; ``retrying`` if it will be retried."""
        now = time.monotonic()
        line = None
        with self._lock:
            if no_answer and self._silent_since is None:
                self._silent_since = now
            if self._started is None:
                if retrying and attempt < 2:
                    return  # a blip: the first failure of a request, retried
                self._started = self._last_line = now
                self._silent = no_answer
                self._count(retrying)
                line = (f"S3 {'does not answer' if no_answer else 'requests are failing'} ({name}: {why}); "
                        f"retrying; further failures are summarised every {self._interval:.0f} s")
            else:
                self._count(retrying)
                self._silent = self._silent or no_answer
                if now - self._last_line >= self._interval:
                    state = "unreachable" if self._silent_since is not None else "failing"
                    line = (f"S3 {state} for {now - self._started:.0f} s: {self._retried} requests retried, "
                            f"{self._failed} failed in the last {now - self._last_line:.0f} s "
                            f"(last: {name}: {why})")
                    self._total_retried += self._retried
                    self._total_failed += self._failed
                    self._retried = self._failed = 0
                    self._last_line = now
        if line:
            log.warning("%s", line)

    def _count(self, retrying: bool) -> None:
        if retrying:
            self._retried += 1
        else:
            self._failed += 1
