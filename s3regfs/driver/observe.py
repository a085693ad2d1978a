"""Watching a driver's requests: the observer interface of the driver layer.

Owns :class:`Request` (one HTTP attempt to the storage, as a driver saw it), the
:class:`RequestObserver` interface, :class:`RequestEvents` (the fan-out a driver hands its
requests to; empty and free until someone listens), :class:`RequestCounts` (the plain counts
``s3regfs status`` shows) and :func:`outcome`, the one classification of an answer.

The s3 driver feeds it from botocore's event system (:func:`s3regfs.driver.s3.client.watch_requests`);
whoever wants the requests (the metrics of :mod:`s3regfs.metrics`, the status of
:mod:`s3regfs.status`) adds an observer: nothing here knows about Prometheus, FUSE or the mount.
Observers are called on the thread that made the request, so they must be quick and must not raise.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "not_found", "denied", "client_error", "throttled", "server_error", "network_error")
"""Every value :func:`outcome` returns, in the order docs/OPERATIONS.md lists them."""


def outcome(status: int | None) -> str:
    """The outcome of one attempt from its HTTP status (None: no answer at all)."""
    if status is None:
        return "network_error"
    if status < 400:
        return "ok"
    if status == 404:
        return "not_found"
    if status == 403:
        return "denied"
    if status in (429, 503):
        return "throttled"
    if status >= 500:
        return "server_error"
    return "client_error"


@dataclass(frozen=True)
class Request:
    """One HTTP attempt (a retried call is several): its API operation, outcome, duration and payload."""

    operation: str
    outcome: str
    seconds: float
    sent: int = 0
    """Object bytes sent (the body of PutObject/UploadPart that the storage accepted), else 0."""
    received: int = 0
    """Object bytes received (the ``Content-Length`` of a successful GetObject), else 0."""


class RequestObserver(Protocol):
    def request_done(self, request: Request) -> None:
        """One attempt ended (quick, never raises: it runs on the requesting thread)."""


class RequestEvents:
    """The observers of one driver's requests (thread-safe; adding one while requests run is fine)."""

    def __init__(self) -> None:
        self._observers: tuple[RequestObserver, ...] = ()
        self._lock = threading.Lock()

    def add(self, observer: RequestObserver) -> None:
        with self._lock:
            self._observers = (*self._observers, observer)

    def remove(self, observer: RequestObserver) -> None:
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not observer)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def emit(self, request: Request) -> None:
        for observer in self._observers:  # a tuple: replaced, never changed in place
            try:
                observer.request_done(request)
            except Exception:  # noqa: BLE001 - watching must never fail a request
                log.exception("a request observer failed")


class RequestCounts:
    """Counts of requests by operation and outcome, and object bytes (what ``s3regfs status`` shows)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self.bytes_sent = 0
        self.bytes_received = 0

    def request_done(self, request: Request) -> None:
        key = (request.operation, request.outcome)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            self.bytes_sent += request.sent
            self.bytes_received += request.received

    def snapshot(self) -> dict[str, object]:
        """``{"by_operation": {op: {outcome: n}}, "total": n, "bytes_sent": n, "bytes_received": n}``."""
        with self._lock:
            counts = dict(self._counts)
            sent, received = self.bytes_sent, self.bytes_received
        by_op: dict[str, dict[str, int]] = {}
        for (op, result), n in sorted(counts.items()):
            by_op.setdefault(op, {})[result] = n
        return {"total": sum(counts.values()), "by_operation": by_op, "bytes_sent": sent, "bytes_received": received}
