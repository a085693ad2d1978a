"""The one retry policy of the storage drivers.

Owns: which backend failures are retried, how often, with which back-off,
and the overall deadline, in one place.

* :class:`RetryPolicy` holds the numbers.  :meth:`RetryPolicy.install` makes
  it the retry loop of a boto3 client: botocore's own retry handler is left
  with a single attempt and our ``needs-retry`` handler decides instead
  (transient errors only: connection failures and timeouts, HTTP 500/502/503/
  504/429, S3's ``InternalError``/``SlowDown``/``RequestTimeout``...), with
  full-jitter exponential back-off (longer when throttled), at most
  ``max_attempts`` attempts, and never starting an attempt past the deadline.
  An endpoint that cannot be reached at all (connection refused, connect
  timeout: nothing was sent) is retried until the deadline whatever the
  attempt count, so a server that restarts within the deadline is ridden out
  -- but only once the client has had at least one answer from it: an
  endpoint that never answered (a wrong address, a server that is not up)
  fails after ``max_attempts``, i.e. within seconds.
* :class:`Deadline` and :func:`retry_call` are used wherever the driver
  retries something *itself* (re-opening a read stream that broke mid-body).
  While ``retry_call`` runs, its deadline is the thread's *current deadline*,
  which the botocore handler honours too: nested retries share one budget, so
  a call fails at most ``deadline + connect_timeout + read_timeout`` after it
  started, however the faults combine.
* An outage stops the waiting: once the endpoint has not answered anything
  for a whole deadline (:class:`~s3regfs.driver.outage.Outage`), a request
  that gets no answer is not retried, so a call made during a long outage
  fails after one attempt instead of waiting a deadline of its own, and a
  call that needs several requests (a part, then the retry from the local
  copy) does not add deadline to deadline.  Any answer ends it.
* Logging: each attempt of a botocore request is a DEBUG line; an outage is
  one WARNING when it starts, at most one summary WARNING a minute, and one
  when S3 answers again (:mod:`s3regfs.driver.outage`).  The driver's own
  loop (:func:`retry_call`) logs DEBUG, INFO, then WARNING from the third
  retry and when giving up.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from s3regfs.driver.outage import Outage

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({500, 502, 503, 504, 429})
THROTTLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "ProvisionedThroughputExceededException", "EC2ThrottledException", "PriorRequestNotComplete",
})
TRANSIENT_CODES = frozenset({
    "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "ExpiredRequest",
    "OperationAborted",
}) | THROTTLE_CODES

_DEADLINE_KEY = "s3regfs_deadline"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, back-off, timeouts and the deadline of backend calls."""

    mode: str = "standard"
    """botocore retry mode: ``standard``, or ``adaptive`` (adds botocore's client-side rate limiter)."""
    max_attempts: int = 4
    """Total attempts of one request (first try included)."""
    connect_timeout: float = 3.0
    read_timeout: float = 60.0
    deadline: float = 120.0
    """Overall budget (seconds) of one call and its retries: no retry starts after it."""
    base_delay: float = 0.05
    max_delay: float = 2.0
    throttle_base_delay: float = 0.5
    """First back-off after a throttling answer (503 SlowDown, 429), doubling up to ``max_delay``."""

    def __post_init__(self) -> None:
        if self.mode not in ("standard", "adaptive"):
            raise ValueError(f"retry mode must be standard or adaptive, got {self.mode!r}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def botocore_config(self) -> dict[str, Any]:
        """Keyword arguments for :class:`botocore.config.Config` (pair with :meth:`install`)."""
        return {
            "retries": {"mode": self.mode, "total_max_attempts": 1},
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
        }

    def backoff(self, attempt: int, throttled: bool = False) -> float:
        """Full-jitter exponential delay before retry number ``attempt`` (1-based)."""
        base = self.throttle_base_delay if throttled else self.base_delay
        return random.uniform(0, min(self.max_delay, base * (2 ** (attempt - 1))))

    def install(self, client: Any) -> Outage:
        """Make this policy the retry loop of boto3 ``client`` (see the module docstring); its outage state."""
        hooks = _BotocoreHooks(self)
        events = client.meta.events
        events.register_first("before-call.s3", hooks.before_call, unique_id="s3regfs-retry-before-call")
        events.register_first("needs-retry.s3", hooks.needs_retry, unique_id="s3regfs-retry-needs-retry")
        return hooks.outage


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

    def earliest(self, other: Deadline | None) -> Deadline:
        return self if other is None or self._end <= other._end else other


_local = threading.local()


def current_deadline() -> Deadline | None:
    """The deadline of the innermost :func:`retry_call` running in this thread, if any."""
    return getattr(_local, "deadline", None)


@contextlib.contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Make ``deadline`` (or an earlier enclosing one) the thread's current deadline."""
    outer = current_deadline()
    _local.deadline = deadline.earliest(outer)
    try:
        yield _local.deadline
    finally:
        _local.deadline = outer


def _log_retry(attempt: int, message: str, *args: object) -> None:
    level = logging.DEBUG if attempt <= 1 else logging.INFO if attempt == 2 else logging.WARNING
    log.log(level, message, *args)


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
    ``policy.deadline`` from now, or the enclosing call's deadline if that is
    earlier); the last error is raised.
    """
    deadline = (deadline or Deadline(policy.deadline)).earliest(current_deadline())
    attempt = 1
    with deadline_scope(deadline):
        while True:
            try:
                return fn()
            except Exception as exc:
                if not retryable(exc) or attempt >= policy.max_attempts:
                    raise
                delay = policy.backoff(attempt)
                if deadline.remaining() <= delay:
                    log.warning("%s failed (%s); giving up: the retry deadline has passed", what, exc)
                    raise
                _log_retry(attempt, "%s failed (%s); retry %d of %d", what, exc, attempt, policy.max_attempts - 1)
                time.sleep(delay)
                attempt += 1


# -- botocore -------------------------------------------------------------------------------


def is_unreachable(exception: BaseException | None) -> bool:
    """True when no connection could be made (refused, unroutable, connect timeout): nothing was sent."""
    import botocore.exceptions

    return isinstance(exception, (botocore.exceptions.EndpointConnectionError,
                                  botocore.exceptions.ConnectTimeoutError, ConnectionRefusedError))


def transient_reason(response: Any, exception: BaseException | None) -> tuple[str, bool] | None:
    """Why a botocore attempt may be retried, and whether it was throttled; None if it may not."""
    if exception is not None:
        import botocore.exceptions
        import urllib3.exceptions

        if isinstance(exception, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
                                  urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
            return f"{type(exception).__name__}: {exception}", False
        return None
    if response is None:
        return None
    http_response, parsed = response
    status = int(getattr(http_response, "status_code", 0) or 0)
    code = ""
    if isinstance(parsed, dict):
        code = str(parsed.get("Error", {}).get("Code", "") or "")
    if code in TRANSIENT_CODES or status in TRANSIENT_STATUS:
        throttled = code in THROTTLE_CODES or status in (429, 503)
        return f"HTTP {status} {code}".strip(), throttled
    return None


class _BotocoreHooks:
    """The ``before-call``/``needs-retry`` handlers that :meth:`RetryPolicy.install` registers."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.reached = False  # set by the first answer of any kind from the endpoint
        self.outage = Outage()

    def before_call(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:
            context[_DEADLINE_KEY] = Deadline(self.policy.deadline).earliest(current_deadline())

    def needs_retry(self, attempts: int = 1, response: Any = None, caught_exception: BaseException | None = None,
                    request_dict: dict[str, Any] | None = None, operation: Any = None, **_: Any) -> float | bool:
        if response is not None:
            self.reached = True
        reason = transient_reason(response, caught_exception)
        if response is not None:
            self.outage.answered(ok=reason is None)
        if reason is None:
            return False
        why, throttled = reason
        name = getattr(operation, "name", "request")
        no_answer = response is None
        unreachable = is_unreachable(caught_exception) and self.reached
        context = (request_dict or {}).get("context") or {}
        deadline: Deadline | None = context.get(_DEADLINE_KEY) or current_deadline()
        delay = self.policy.backoff(attempts, throttled)
        if attempts >= self.policy.max_attempts and not unreachable:
            give_up = f"after {attempts} attempts"
        elif no_answer and self.reached and self.outage.silent_for() + delay >= self.policy.deadline:
            give_up = f"S3 has not answered for {self.outage.silent_for():.0f} s (deadline {self.policy.deadline:g} s)"
        elif deadline is not None and deadline.remaining() <= delay:
            give_up = "the retry deadline has passed"
        else:
            give_up = ""
        self.outage.failed(name, why, no_answer=no_answer, attempt=attempts, retrying=not give_up)
        if give_up:
            log.debug("%s failed (%s); giving up: %s", name, why, give_up)
            return False
        if unreachable:
            log.debug("%s failed (%s); retry %d in %.2fs (until the deadline, %.0fs left)", name, why, attempts,
                      delay, deadline.remaining() if deadline else float("nan"))
        else:
            log.debug("%s failed (%s); retry %d of %d in %.2fs", name, why, attempts, self.policy.max_attempts - 1,
                      delay)
        return delay
