"""The retry policy of one s3 driver: our parameters first, then the AWS settings, then our default.

Owns :func:`retry_policy`: the :class:`~s3regfs.driver.retry.RetryPolicy` of a
driver from its parameters and its boto3 session.  botocore's own retry loop is
left with one attempt (:mod:`s3regfs.driver.retry` decides instead), so the AWS
settings that would have configured it are read here, with this precedence:

* attempts of one request: the ``maxattempts`` parameter (1-100; 0, the default,
  means unset) > ``AWS_MAX_ATTEMPTS`` > ``max_attempts`` of the AWS profile
  (``~/.aws/config``, ``AWS_CONFIG_FILE``, the ``profile`` parameter or
  ``AWS_PROFILE``) > 4;
* mode: ``adaptive`` (botocore's client-side rate limiter) when
  ``AWS_RETRY_MODE`` or the profile's ``retry_mode`` says so, else ``standard``
  (``legacy`` is ``standard``: the retry loop is ours either way);
* the deadline: the ``retrydeadline`` parameter (no AWS setting has one).

A value botocore cannot read (``AWS_MAX_ATTEMPTS=abc``) is a ``ValueError``
naming the setting.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from s3regfs.driver.retry import DEFAULT_POLICY, RetryPolicy
from s3regfs.driver.s3.params import S3Parameters

log = logging.getLogger(__name__)

_SOURCES = (("env", "AWS_MAX_ATTEMPTS"), ("config", "max_attempts in the AWS config file"))


def _aws_setting(session: Any, name: str, described: tuple[tuple[str, str], ...]) -> tuple[Any, str] | None:
    """(value, where it was set) of botocore config variable ``name``: environment, then the profile."""
    core = getattr(session, "_session", session)  # the botocore session behind a boto3 Session
    for method, where in described:
        try:
            value = core.get_config_variable(name, methods=(method,))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where} cannot be read ({exc}); correct it, or set the maxattempts parameter") from None
        if value is not None:
            return value, where
    return None


def retry_policy(params: S3Parameters, session: Any) -> RetryPolicy:
    """The retry policy of a driver with ``params`` whose clients come from ``session`` (see the module doc)."""
    if params.maxattempts:
        attempts, source = params.maxattempts, "the maxattempts parameter"
    else:
        found = _aws_setting(session, "max_attempts", _SOURCES)
        attempts, source = (int(found[0]), found[1]) if found else (DEFAULT_POLICY.max_attempts, "the default")
    attempts = max(1, attempts)
    mode_found = _aws_setting(session, "retry_mode", (("env", "AWS_RETRY_MODE"), ("config", "retry_mode")))
    mode = "adaptive" if mode_found and str(mode_found[0]).lower() == "adaptive" else "standard"
    log.debug("S3 retries: %d attempts (%s), mode %s, deadline %ds", attempts, source, mode, params.retrydeadline)
    return dataclasses.replace(
        DEFAULT_POLICY, max_attempts=attempts, mode=mode, deadline=float(params.retrydeadline)
    )
