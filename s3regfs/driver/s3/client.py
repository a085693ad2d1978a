"""Building the s3 driver's boto3 client, and the botocore tuning that goes with it (docs/DRIVERS.md §S3).

Owns: :func:`make_client` (the botocore ``Config`` from the parameters: addressing style,
signature version, endpoint variants, checksums only when required (§S2), the connection pool,
static or chained credentials, the retry policy of :mod:`s3regfs.driver.retry`), the one shared
boto3 Session, and three botocore tunings, each measured (docs/PERFORMANCE.md) and each a no-op
when botocore's internals differ from what it expects:

* :func:`fast_timestamp`: ISO 8601 timestamps of listings parsed without dateutil;
* no ``Expect: 100-continue`` on small PutObject bodies;
* the endpoint rule set evaluated once, not once per object key.

It also maps the ``loglevel`` parameter onto the botocore/urllib3 loggers
(:func:`configure_logging`), tells which provider of the credential chain
answered (:func:`credential_source`, from botocore's ``credentials.method``), and hands every
HTTP attempt to the driver's :class:`~s3regfs.driver.observe.RequestEvents`
(:func:`watch_requests`, from botocore's ``before-send``/``response-received`` events).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
import botocore.utils
from botocore.config import Config

from s3regfs.driver.errors import CredentialPairError
from s3regfs.driver.observe import Request, RequestEvents, outcome
from s3regfs.driver.retry import RetryPolicy
from s3regfs.driver.s3.params import S3Parameters

MAX_POOL_CONNECTIONS = 64

_session_lock = threading.Lock()
_sessions: dict[str, Any] = {}  # profile ("" = the default chain's) -> its one shared boto3 Session


def configure_logging(level: str) -> None:
    """Map upstream ``loglevel`` names onto the botocore/urllib3 loggers."""
    if level == "off":
        return
    loggers = ["botocore.endpoint", "botocore.hooks", "botocore.client"]
    if level == "debug":
        loggers = ["botocore"]
    elif level == "debugwithsigning":
        loggers = ["botocore", "botocore.auth"]
    elif level == "debugwithhttpbody":
        loggers = ["botocore", "urllib3", "botocore.parsers"]
    elif level == "debugwithrequestretries":
        loggers = ["botocore.retries", "botocore.retryhandler", "botocore.endpoint"]
    elif level == "debugwithrequesterrors":
        loggers = ["botocore.endpoint", "botocore.retries", "botocore.parsers"]
    for name in loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)


CREDENTIAL_METHODS: dict[str, str] = {
    "explicit": "the accesskey/secretkey parameters",
    "env": "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
    "shared-credentials-file": "shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)",
    "config-file": "AWS config file (AWS_CONFIG_FILE or ~/.aws/config)",
    "assume-role": "a role assumed by an AWS profile",
    "assume-role-with-web-identity": "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)",
    "sso": "AWS SSO (IAM Identity Center) login",
    "custom-process": "the credential_process of an AWS profile",
    "container-role": "container role (ECS/EKS task credentials)",
    "iam-role": "instance role (EC2 instance metadata)",
    "boto-config": "boto config file (/etc/boto.cfg or ~/.boto)",
}
"""botocore's ``credentials.method`` → where an operator finds those credentials."""

_PROFILE_METHODS = frozenset(
    {"shared-credentials-file", "config-file", "assume-role", "sso", "custom-process"}
)


def credential_source(client: Any, session: Any = None) -> tuple[str, str] | None:
    """(botocore's ``credentials.method``, a description without any secret) of ``client``; None if none.

    botocore resolves the credential chain when it creates the client, so this makes no request.
    """
    getter = getattr(client, "_get_credentials", None)
    if callable(getter):
        credentials = getter()
    else:  # botocore's internals differ: the request signer holds them
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    if credentials is None:
        return None
    method = str(getattr(credentials, "method", "") or "unknown")
    text = CREDENTIAL_METHODS.get(method, f"the credential provider {method}")
    if method in _PROFILE_METHODS:
        with _session_lock:
            profile = getattr(session or _sessions.get(""), "profile_name", None) or "default"
        text += f", profile {profile}"
    return method, text


def fast_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, ~1000x faster for the ISO 8601 form of S3 listings.

    botocore parses every ``LastModified`` of a ListObjectsV2 page with dateutil
    (~30-110 us each): over a 10,000-key listing that was the largest CPU cost of a
    cold ``find`` (docs/PERFORMANCE.md).  Other forms (RFC 1123 headers, epochs) go
    to botocore's own parser; the result is always timezone-aware.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return botocore.utils.parse_timestamp(value)  # type: ignore[no-any-return]
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return botocore.utils.parse_timestamp(value)  # type: ignore[no-any-return]


def _use_fast_timestamps(session: Any) -> None:
    """Make clients created from ``session`` parse timestamps with :func:`fast_timestamp`."""
    core = getattr(session, "_session", None)  # the botocore session behind a boto3 Session
    if core is None:
        return
    factory = core.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=fast_timestamp)


EXPECT_CONTINUE_MIN = 8 * 1024 * 1024
"""Bodies smaller than this are sent without ``Expect: 100-continue`` (see below)."""


def _no_continue_for_small_bodies(request: Any, **_: Any) -> None:
    """Drop ``Expect: 100-continue`` from a small PutObject (botocore adds it to every one).

    The header makes the client wait one round trip for the server's ``100 Continue`` before it
    sends the body, which is worth it only for bodies large enough that sending one in vain
    costs more than the wait; for the small files of a registry (links, manifests) it was a
    third of each upload's latency.
    """
    if "Expect" not in request.headers:
        return
    size = botocore.utils.determine_content_length(request.body) if request.body is not None else None
    if size is not None and size < EXPECT_CONTINUE_MIN:
        del request.headers["Expect"]  # not a signed header (botocore leaves it out of SigV4)


_PER_REQUEST_ENDPOINT_PARAMS = ("Key", "Prefix", "CopySource")


def _skip_unused_endpoint_params(client: Any) -> None:
    """Leave out of endpoint resolution the per-request parameters S3's rules never read.

    botocore memoizes the endpoint on every parameter of the rule set, including the object key,
    which none of the rules refers to: so each new key evaluates the whole rule set again (a
    quarter of botocore's CPU per small PutObject here).  Only parameters the loaded rule set
    does not reference are left out, so the endpoint cannot change; when botocore's internals
    differ from what this expects, nothing is changed.
    """
    resolver = getattr(client, "_ruleset_resolver", None)
    definitions = getattr(resolver, "_param_definitions", None)
    loader = getattr(client, "_loader", None)
    if not isinstance(definitions, dict) or loader is None:
        return
    try:
        rules = json.dumps(loader.load_service_model("s3", "endpoint-rule-set-1").get("rules", []))
    except Exception:  # noqa: BLE001 - an optimisation only
        return
    unused = {name for name in _PER_REQUEST_ENDPOINT_PARAMS if f'"ref": "{name}"' not in rules}
    if unused & definitions.keys():
        resolver._param_definitions = {k: v for k, v in definitions.items() if k not in unused}


_UPLOAD_OPERATIONS = frozenset({"PutObject", "UploadPart"})
"""The operations whose request body is object data (bytes written to S3)."""
_attempt = threading.local()  # (start, body bytes) of the attempt this thread is sending


def watch_requests(client: Any, events: RequestEvents) -> None:
    """Hand every HTTP attempt of ``client`` to ``events`` (a retried call is one per attempt).

    ``before-send`` and ``response-received`` run on the requesting thread, one attempt at a time,
    so a thread-local holds the start.  With no observer in ``events`` each costs one truth test.
    """

    def before_send(request: Any, event_name: str = "", **_: Any) -> None:
        if not events:
            return None
        sent = 0
        if event_name.rsplit(".", 1)[-1] in _UPLOAD_OPERATIONS and request.body is not None:
            sent = botocore.utils.determine_content_length(request.body) or 0
        _attempt.started = (time.monotonic(), sent)
        return None  # a value here would be taken as the response

    def response_received(event_name: str = "", response_dict: Any = None, **_: Any) -> None:
        started = getattr(_attempt, "started", None)
        _attempt.started = None
        if started is None or not events:
            return
        status = response_dict.get("status_code") if response_dict else None
        result = outcome(status)
        operation = event_name.rsplit(".", 1)[-1]
        received = 0
        if result == "ok" and operation == "GetObject":
            try:
                received = int(response_dict.get("headers", {}).get("content-length", 0))
            except (TypeError, ValueError):
                received = 0
        sent = started[1] if result == "ok" else 0
        events.emit(Request(operation, result, time.monotonic() - started[0], sent, received))

    emitter = client.meta.events
    emitter.register("before-send.s3", before_send, unique_id="s3regfs-observe-before-send")
    emitter.register("response-received.s3", response_received, unique_id="s3regfs-observe-response")


def shared_session(profile: str = "") -> Any:
    """The one boto3 Session of AWS profile ``profile`` ("": the default, ``AWS_PROFILE``), shared by drivers."""
    with _session_lock:
        return _session_of(profile)


def _session_of(profile: str) -> Any:
    session = _sessions.get(profile)
    if session is None:
        session = _sessions[profile] = boto3.session.Session(profile_name=profile or None)
    return session


def _make_boto3_client(session: Any, **kwargs: Any) -> Any:
    """A boto3 S3 client; one shared boto3 Session (its loaded service model) serves every driver."""
    with _session_lock:  # boto3 sessions are not safe for concurrent client creation
        session = session or _session_of("")
        _use_fast_timestamps(session)
        return session.client("s3", **kwargs)


def endpoint_url(params: S3Parameters, endpoint: str) -> str | None:
    """``endpoint`` as a URL: None for AWS's own, the scheme from ``secure`` when it has none."""
    if not endpoint:
        return None
    if "://" in endpoint:
        return endpoint
    return ("https://" if params.secure else "http://") + endpoint


def make_client(
    params: S3Parameters, endpoint: str, retry: RetryPolicy, session: Any = None
) -> tuple[Any, Any]:
    """A tuned boto3 S3 client for ``endpoint``, and the :class:`~s3regfs.driver.outage.Outage` of its retries.

    An invalid configuration is ``ValueError("failed to create new session with aws config: ...")``.
    """
    p = params
    s3_config: dict[str, Any] = {
        "addressing_style": "path" if p.forcepathstyle else "auto",
    }
    if p.usedualstack:
        s3_config["use_dualstack_endpoint"] = True
    if p.accelerate:
        s3_config["use_accelerate_endpoint"] = True
    credentials: dict[str, str] = {}
    if p.accesskey and p.secretkey:
        credentials = {"aws_access_key_id": p.accesskey, "aws_secret_access_key": p.secretkey}
    config = Config(
        region_name=p.region,
        signature_version="s3v4" if p.v4auth else "s3",
        s3=s3_config,
        use_fips_endpoint=p.usefipsendpoint or None,
        user_agent_extra=p.useragent or None,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        tcp_keepalive=True,
        **retry.botocore_config(),
    )
    try:
        client = _make_boto3_client(
            session,
            endpoint_url=endpoint_url(p, endpoint),
            use_ssl=p.secure,
            verify=False if p.skipverify else (p.cabundle or None),  # None: AWS_CA_BUNDLE, ca_bundle, certifi
            config=config,
            **credentials,
        )
        outage = retry.install(client)  # the one retry loop (driver/retry.py), with its deadline
        client.meta.events.register("before-sign.s3.PutObject", _no_continue_for_small_bodies)
        _skip_unused_endpoint_params(client)
        return client, outage
    except botocore.exceptions.PartialCredentialsError as exc:  # AWS_ACCESS_KEY_ID without its secret, ...
        found = getattr(exc, "kwargs", {})
        given, missing = _halves(str(found.get("cred_var") or ""))
        provider = str(found.get("provider") or "")
        source = "the environment" if provider == "env" else CREDENTIAL_METHODS.get(provider, provider)
        raise CredentialPairError(given, missing, source) from None
    except (ValueError, botocore.exceptions.BotoCoreError) as exc:
        raise ValueError(f"failed to create new session with aws config: {exc}") from None


def _halves(missing: str) -> tuple[str, str]:
    """(the half given, the half missing) of a partial key pair in the credential chain."""
    pairs = {"AWS_SECRET_ACCESS_KEY": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "aws_access_key_id"}
    pairs.update({v: k for k, v in pairs.items()})
    return pairs.get(missing, "an access key or secret key"), missing or "its other half"
