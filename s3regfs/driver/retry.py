"""The one retry policy of the storage drivers.

Owns: how often and how long a backend call is retried, in one place.

* :class:`RetryPolicy` gives botocore its settings (``retries`` mode and
  ``max_attempts``, connect and read timeouts).  The default matches the
  upstream Go driver's SDK retryer (1 try + 3 retries of 5xx, throttling and
  connection errors, exponential back-off with jitter), with a short connect
  timeout so that an unreachable endpoint fails within seconds.
* :class:`Deadline` and :func:`retry_call` are used wherever the driver
  retries something *itself* (re-opening a read stream that broke mid-body):
  the same attempt budget, bounded by an overall deadline.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, back-off and timeouts for backend calls."""

    mode: str = "standard"
    """botocore retry mode: ``standard`` or ``adaptive``."""
    max_attempts: int = 4
    """Total attempts of one request (first try included)."""
    connect_timeout: float = 3.0
    read_timeout: float = 60.0
    deadline: float = 120.0
    """Overall budget (seconds) of a driver-level retry loop."""
    base_delay: float = 0.05
    max_delay: float = 2.0

    def __post_init__(self) -> None:
        if self.mode not in ("standard", "adaptive"):
            raise ValueError(f"retry mode must be standard or adaptive, got {self.mode!r}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def botocore_config(self) -> dict[str, Any]:
        """Keyword arguments for :class:`botocore.config.Config`."""
        return {
            "retries": {"mode": self.mode, "max_attempts": self.max_attempts},
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
        }

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential delay before retry number ``attempt`` (1-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))


DEFAULT_POLICY = RetryPolicy()


class Deadline:
    """A point in monotonic time after which no more retries start."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end


def retry_call(
    fn: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool],
    policy: RetryPolicy = DEFAULT_POLICY,
    deadline: Deadline | None = None,
    what: str = "call",
) -> T:
    """Call ``fn`` until it succeeds, fails with a non-retryable error, or the budget runs out.

    The budget is ``policy.max_attempts`` attempts and ``deadline`` (default:
    ``policy.deadline`` from now); the last error is raised.
    """
    deadline = deadline or Deadline(policy.deadline)
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as exc:
            if not retryable(exc) or attempt >= policy.max_attempts:
                raise
            delay = policy.backoff(attempt)
            if deadline.remaining() <= delay:
                raise
            log.info("%s failed (%s); retry %d of %d", what, exc, attempt, policy.max_attempts - 1)
            time.sleep(delay)
            attempt += 1
