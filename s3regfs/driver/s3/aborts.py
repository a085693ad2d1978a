"""Multipart uploads that could not be aborted at once: retried in the background, then at close.

Owns :class:`PendingAborts`.  When the driver abandons a multipart upload (a
cancelled writer, a failed CompleteMultipartUpload or multipart copy) it tries
the abort once, without retries; if S3 does not answer or refuses, the upload
is handed to this queue and the caller returns at once with its own error.  A
background thread (started on first use) retries each abort after 1, 2, 5,
10, 30 s and then every minute, :data:`RETRY_DELAYS` attempts in all (each
attempt is one driver call under the retry policy); an abort that exhausted
them waits for :meth:`PendingAborts.finish`, which the driver runs at
unmount/close: it tries every pending abort once more and returns those that
still failed, for the caller to report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 60.0, 60.0, 60.0, 60.0)
"""Seconds before each background attempt (about 5 minutes in all)."""


@dataclass
class _Pending:
    key: str
    upload_id: str
    error: str
    attempts: int = 0
    due: float = 0.0
    busy: bool = False


class PendingAborts:
    """The aborts still to do (thread-safe)."""

    def __init__(self, abort: Callable[[str, str], None], delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self._abort = abort
        self._delays = delays
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)

    def add(self, key: str, upload_id: str, error: object) -> None:
        """Abort ``upload_id`` of ``key`` later (the first attempt failed with ``error``)."""
        log.warning("could not abort multipart upload %s of %s (%s); retrying in the background", upload_id, key,
                    error)
        with self._cond:
            item = _Pending(key, upload_id, str(error), due=time.monotonic() + self._delays[0])
            self._pending.setdefault((key, upload_id), item)
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="s3-aborts", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _next(self) -> _Pending | None:
        """The next due abort, waiting for it; None once stopped."""
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                waiting = [p for p in self._pending.values() if not p.busy]
                due = min(waiting, key=lambda p: p.due, default=None)
                if due is not None and due.due <= now:
                    due.busy = True
                    return due
                self._cond.wait(None if due is None or due.due == float("inf") else due.due - now)
            return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            error = self._try(item)
            with self._cond:
                item.busy = False
                if error is None:
                    self._pending.pop((item.key, item.upload_id), None)
                    log.info("aborted multipart upload %s of %s (retried in the background)", item.upload_id,
                             item.key)
                else:
                    item.error, item.attempts = error, item.attempts + 1
                    if item.attempts < len(self._delays):
                        item.due = time.monotonic() + self._delays[item.attempts]
                    else:
                        item.due = float("inf")
                        log.warning("could not abort multipart upload %s of %s after %d attempts (%s); trying "
                                    "again at unmount", item.upload_id, item.key, item.attempts, error)
                self._cond.notify_all()

    def _try(self, item: _Pending) -> str | None:
        try:
            self._abort(item.key, item.upload_id)
        except Exception as exc:  # noqa: BLE001 - retried later, reported at finish
            return str(exc)
        return None

    def finish(self) -> list[tuple[str, str, str]]:
        """Stop the background retries, try each pending abort once more: (key, upload id, error) of the rest."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            while any(p.busy for p in self._pending.values()):
                self._cond.wait()
            items = list(self._pending.values())
            self._pending.clear()
        left = []
        for item in items:
            error = self._try(item)
            if error is not None:
                left.append((item.key, item.upload_id, error))
        return left
