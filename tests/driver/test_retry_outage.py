"""The retry policy's botocore hook through an outage: summarised warnings, and no second wait.

Driven directly (no server): the hook is called as botocore calls it after each
attempt, with a fake monotonic clock, so minutes of outage take milliseconds.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import botocore.exceptions
import pytest

from s3regfs.driver.retry import RetryPolicy, _BotocoreHooks

RETRY_LOGGER = "s3regfs.driver.retry"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("time.monotonic", fake)
    return fake


OPERATION = types.SimpleNamespace(name="UploadPart")


def refused(hooks: _BotocoreHooks, attempts: int) -> Any:
    exc = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    return hooks.needs_retry(attempts=attempts, caught_exception=exc, request_dict={"context": {}},
                             operation=OPERATION)


def answered(hooks: _BotocoreHooks, status: int = 200) -> Any:
    return hooks.needs_retry(attempts=1, response=(types.SimpleNamespace(status_code=status), {}),
                             request_dict={"context": {}}, operation=OPERATION)


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == RETRY_LOGGER and r.levelno == level]


def test_an_outage_logs_one_warning_then_one_summary_a_minute_then_one_line_when_it_ends(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=RETRY_LOGGER)
    hooks = _BotocoreHooks(RetryPolicy(deadline=10_000.0))
    assert answered(hooks) is False  # the endpoint answered once: refusals are retried until the deadline
    attempts = 0
    for step in range(1200):  # 300 s of refused connections, four attempts a second
        clock.now += 0.25
        attempts += 1
        assert refused(hooks, attempts=step % 8 + 1) is not False
    warnings = records(caplog, logging.WARNING)
    assert 1 <= len(warnings) <= 1 + 300 // 60, [r.getMessage() for r in warnings]
    assert "retried" in warnings[-1].getMessage()  # a summary counts the retries
    assert len(records(caplog, logging.DEBUG)) >= attempts  # the detail of every attempt, at DEBUG
    clock.now += 1
    caplog.clear()
    assert answered(hooks) is False
    ended = [r.getMessage() for r in caplog.records if r.name == RETRY_LOGGER and r.levelno >= logging.INFO]
    assert len(ended) == 1 and "S3 answers again" in ended[0], ended
    caplog.clear()
    answered(hooks)  # nothing more once it is over
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_once_s3_has_not_answered_for_a_whole_deadline_calls_stop_waiting(clock: Clock) -> None:
    hooks = _BotocoreHooks(RetryPolicy(deadline=10.0))
    answered(hooks)
    assert refused(hooks, attempts=1) is not False  # a restart shorter than the deadline is ridden out
    clock.now += 5
    assert refused(hooks, attempts=9) is not False  # past max_attempts: refused is retried until the deadline
    clock.now += 5.5
    assert refused(hooks, attempts=10) is False  # silent for a whole deadline: this call gives up ...
    clock.now += 1
    assert refused(hooks, attempts=1) is False  # ... and a new call tries once and does not wait again
    clock.now += 1
    assert answered(hooks, status=404) is False  # any answer: S3 is back
    assert refused(hooks, attempts=1) is not False  # so a refusal is retried again
