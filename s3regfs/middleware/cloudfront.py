"""The ``cloudfront`` storage middleware (port of distribution's ``middleware/cloudfront``).

Owns :class:`CloudFrontMiddleware`, a :class:`DriverWrapper` that overrides only
``redirect_url``: it returns ``baseurl`` + the inner driver's bucket key, signed
with the CloudFront canned policy, valid for ``duration``. Every other call goes
to the wrapped driver.

Options (a string-keyed map of YAML values, processed in upstream order):
``baseurl``, ``privatekey``, ``keypairid`` (all required), then the key file,
``duration`` (``20m``), ``updatefrequency`` (``12h``; the deprecated spelling
``updatefrenquency`` wins with a warning), ``iprangesurl``, ``ipfilteredby``
(``none``/``aws``/``awsregion``) and, for ``awsregion``, ``awsregion``. The
error texts are upstream's, each naming its option.

Signing (what AWS SDKs do): policy
``{"Statement":[{"Resource":"<url>","Condition":{"DateLessThan":{"AWS:EpochTime":<expires>}}}]}``,
RSA PKCS#1 v1.5 over its SHA-1, base64 with ``+``→``-``, ``=``→``_``, ``/``→``~``,
then ``<url>?Expires=<expires>&Signature=<sig>&Key-Pair-Id=<id>`` (``&`` if the
URL already has a ``?``). ``expires = int(now + duration)``. The JSON is
encoded as aws-sdk-go does (``SetEscapeHTML(false)``: ``&`` stays ``&``), which is
also what botocore's ``CloudFrontSigner`` produces.

Deliberate deviations from upstream:

* **PKCS#8 keys** (``BEGIN PRIVATE KEY``) are accepted as well as PKCS#1
  (``BEGIN RSA PRIVATE KEY``); upstream takes PKCS#1 only.
* **Refused keys**, with a message naming the file: an encrypted key (upstream
  fails with an opaque parse error), a non-RSA key, a key file readable or
  writable by group or others (``mode & 0o077``; fix: ``chmod 600 <file>``),
  a key file owned by another user than the mounting user or root (fix:
  ``chown``), and a key file in a directory that another user can write (group
  or others can write it without the sticky bit, or it belongs to another user
  than the mounting user or root), who could put another key in its place
  (fix: ``chmod go-w <dir>``, or move the key).  Upstream reads any file it can.
* **A non-string ``duration`` or ``updatefrequency``** (a YAML integer such as
  ``3000``) is an error naming the option. Upstream silently ignores it and
  keeps the default, so ``duration: 3000`` gives 20-minute URLs without a word,
  and the number has no unit anyway (seconds? Go's nanoseconds?). A
  ``datetime.timedelta`` (a typed value from Python callers, like Go's
  ``time.Duration``) is accepted.
* **``updatefrequency`` must be positive**: upstream would re-fetch in a tight loop.
* **``baseurl`` is checked at startup** for what signing needs (scheme
  http/https, a host, ASCII only, no ``Expires``/``Policy``/``Signature``/
  ``Key-Pair-Id`` query parameter); upstream fails on every redirect instead.
* **The path is validated** (driver path rules, no ``.``/``..``) before signing,
  so a signed URL can never point outside the bucket key space.
* **The unsupported-driver warning** ("the CloudFront middleware does not
  support this backend storage driver") is logged once, not on every call.
* **The IP filter** (see :mod:`s3regfs.middleware.ipfilter`) fetches lazily (at the first URL asked
  for a client address, never for the xattr), with a timeout, bounds the initial wait, and is stopped
  by :meth:`close`.
* ``expires_in`` (seconds) passed to ``redirect_url`` overrides ``duration``
  (upstream v3 ignores expiry options).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pwd
import re
import stat
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from s3regfs.driver.base import StorageDriver
from s3regfs.driver.checked import is_valid_path
from s3regfs.driver.errors import InvalidPathError, ParameterError
from s3regfs.driver.wrapper import DriverWrapper
from s3regfs.durations import DurationError, parse_duration
from s3regfs.middleware.ipfilter import (
    DEFAULT_INITIAL_WAIT,
    DEFAULT_IP_RANGES_URL,
    DEFAULT_UPDATE_FREQUENCY,
    AWSIPFilter,
    Fetch,
)

log = logging.getLogger(__name__)

NAME = "cloudfront"
DEFAULT_DURATION = 20 * 60.0
ILLEGAL_QUERY_PARAMS = ("Expires", "Policy", "Signature", "Key-Pair-Id")
UNSUPPORTED_DRIVER_WARNING = "the CloudFront middleware does not support this backend storage driver"

Clock = Callable[[], float]

_PEM_BLOCK = re.compile(rb"-----BEGIN ([^-\r\n]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_ENCRYPTED_HEADER = re.compile(rb"^Proc-Type:[ \t]*4,[ \t]*ENCRYPTED", re.MULTILINE)


# -- signing ------------------------------------------------------------------------


def canned_policy(resource: str, expires: int) -> bytes:
    """The canned policy JSON for ``resource`` expiring at ``expires`` (Unix seconds), compact."""
    policy = {
        "Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]
    }
    return json.dumps(policy, separators=(",", ":")).encode("ascii")


def cloudfront_b64(data: bytes) -> str:
    """Base64 with CloudFront's URL-safe substitutions (``+``→``-``, ``=``→``_``, ``/``→``~``)."""
    return base64.b64encode(data).decode("ascii").translate(str.maketrans("+=/", "-_~"))


def cloudfront_b64decode(text: str) -> bytes:
    """Inverse of :func:`cloudfront_b64`; raise ``ValueError`` on bad input."""
    return base64.b64decode(text.translate(str.maketrans("-_~", "+=/")), validate=True)


def sign_url(url: str, expires: int, key_pair_id: str, key: rsa.RSAPrivateKey) -> str:
    """``url`` signed with the canned policy (the standard CloudFront signed-URL form)."""
    if not url.isascii():
        raise ValueError(f"unable to sign resource, [{url}]. Resources must only contain ascii characters.")
    signature = key.sign(canned_policy(url, expires), padding.PKCS1v15(), hashes.SHA1())
    join = "&" if "?" in url else "?"
    return f"{url}{join}Expires={expires}&Signature={cloudfront_b64(signature)}&Key-Pair-Id={key_pair_id}"


# -- option parsing -----------------------------------------------------------------


def _required_string(options: Mapping[str, Any], name: str) -> str:
    if name not in options:
        raise ParameterError(f"no {name} provided")
    value = options[name]
    if not isinstance(value, str):
        raise ParameterError(f"{name} must be a string")
    return value


def _base_url(options: Mapping[str, Any]) -> str:
    """``baseurl`` normalised as upstream (``https://`` added, trailing ``/``) and checked for signing."""
    base = _required_string(options, "baseurl")
    if "://" not in base:
        base = "https://" + base
    if not base.endswith("/"):
        base += "/"
    try:
        parts = urllib.parse.urlsplit(base)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise ParameterError(f"invalid baseurl: {exc}") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in base):
        raise ParameterError("invalid baseurl: net/url: invalid control character in URL")
    if re.search(r"%(?![0-9A-Fa-f]{2})", base):
        raise ParameterError(f"invalid baseurl: invalid URL escape in {base!r}")
    if parts.scheme.lower() not in ("http", "https"):
        raise ParameterError(f"invalid baseurl: scheme must be http or https, got {parts.scheme!r}")
    if not parts.hostname:
        raise ParameterError(f"invalid baseurl: no host in {base!r}")
    if not base.isascii():
        raise ParameterError(f"invalid baseurl: must be ASCII (use punycode / percent-encoding): {base!r}")
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    for name in ILLEGAL_QUERY_PARAMS:
        if name in query:
            raise ParameterError(f"invalid baseurl: {name} cannot be a query parameter for a signed URL")
    return base


def _go_os_error(op: str, path: str, exc: OSError) -> str:
    """An OSError in Go's ``*PathError`` form: ``open /x: no such file or directory``."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"{op} {path}: {text[:1].lower()}{text[1:]}"


def load_private_key(path: str) -> rsa.RSAPrivateKey:
    """Read and parse the RSA key at ``path``; raise :class:`ParameterError` naming the problem."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ParameterError(f"failed to read privatekey file: {_go_os_error('open', path, exc)}") from None
    try:
        st = os.fstat(fd)
        mode, owner = st.st_mode, st.st_uid
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read()
    except OSError as exc:
        raise ParameterError(f"failed to read privatekey file: {_go_os_error('read', path, exc)}") from None
    finally:
        os.close(fd)
    if mode & 0o077:
        raise ParameterError(
            f"privatekey file {path} is accessible by group or others (mode {mode & 0o777:04o});"
            f" restrict it with: chmod 600 {path}"
        )
    _check_owners(path, owner)
    return parse_private_key(data, path)


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name}, uid {uid}"
    except KeyError:
        return f"uid {uid}"


def _check_owners(path: str, owner: int) -> None:
    """Refuse a key that another user than us or root could replace: its owner, or its directory's writer."""
    me = os.geteuid()
    if owner not in (me, 0):
        name = _user(me).split(",")[0]
        raise ParameterError(
            f"privatekey file {path} is owned by another user ({_user(owner)}), who could replace the key;"
            f" make it yours with: chown {name} {path}"
        )
    directories = (os.path.dirname(os.path.abspath(path)), os.path.dirname(os.path.realpath(path)))
    for directory in dict.fromkeys(directories):
        try:
            st = os.stat(directory)
        except OSError:
            continue  # the key was read through it a moment ago; nothing to judge
        if st.st_uid not in (me, 0):
            raise ParameterError(
                f"privatekey file {path} lies in {directory}, which belongs to another user"
                f" ({_user(st.st_uid)}), who could put another key in its place; move the key to a directory"
                " of yours or root's"
            )
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            raise ParameterError(
                f"privatekey file {path} lies in {directory}, which group or others can write"
                f" (mode {stat.S_IMODE(st.st_mode):04o}), so they could put another key in its place;"
                f" restrict it with: chmod go-w {directory} (or move the key to a directory only you can"
                " write)"
            )


def parse_private_key(data: bytes, path: str = "<privatekey>") -> rsa.RSAPrivateKey:
    """The RSA key in the first PEM block of ``data`` (PKCS#1 or PKCS#8, unencrypted)."""
    block = _PEM_BLOCK.search(data)
    if block is None:
        raise ParameterError(
            f"failed to decode private key as an rsa private key: no PEM block in privatekey {path}"
        )
    kind = block.group(1).decode("ascii", "replace").strip()
    body = block.group(2)
    if kind == "ENCRYPTED PRIVATE KEY" or _ENCRYPTED_HEADER.search(body):
        raise ParameterError(
            f"privatekey {path} is encrypted; CloudFront signing needs an unencrypted key"
            f" (decrypt it with: openssl pkey -in {path} -out <new file>, then chmod 600 it)"
        )
    if kind.endswith("PRIVATE KEY") and kind not in ("RSA PRIVATE KEY", "PRIVATE KEY"):
        raise ParameterError(
            f"privatekey {path} is not an RSA key ({kind}); CloudFront signing needs an RSA key"
        )
    if kind not in ("RSA PRIVATE KEY", "PRIVATE KEY"):
        raise ParameterError(
            f"failed to decode private key as an rsa private key: privatekey {path} starts with a {kind!r}"
            " PEM block, not 'RSA PRIVATE KEY' (PKCS#1) or 'PRIVATE KEY' (PKCS#8)"
        )
    try:
        key = serialization.load_pem_private_key(block.group(0), password=None)
    except Exception as exc:  # noqa: BLE001 - cryptography raises ValueError, TypeError, UnsupportedAlgorithm
        raise ParameterError(f"failed to parse privatekey {path}: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ParameterError(
            f"privatekey {path} is not an RSA key ({_algorithm(key)}); CloudFront signing needs an RSA key"
        )
    return key


def _algorithm(key: object) -> str:
    """A short name for a non-RSA key type."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519

    for kind, name in (
        (ec.EllipticCurvePrivateKey, "EC"),
        (ed25519.Ed25519PrivateKey, "Ed25519"),
        (ed448.Ed448PrivateKey, "Ed448"),
        (dsa.DSAPrivateKey, "DSA"),
    ):
        if isinstance(key, kind):
            return name
    return type(key).__name__


def _duration_option(
    options: Mapping[str, Any], name: str, default: float, source: str | None = None
) -> float:
    """A duration option in seconds: a Go duration string or a ``timedelta``; anything else is an error."""
    source = source or name
    if source not in options:
        return default
    value = options[source]
    label = name if source == name else f"{name} (set via deprecated {source})"
    if isinstance(value, timedelta):
        return value.total_seconds()
    if not isinstance(value, str):
        raise ParameterError(
            f'{label} must be a duration string such as "20m" or "3000s", got {type(value).__name__} {value!r}'
        )
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ParameterError(f"invalid {label}: {exc}") from None


def _update_frequency(options: Mapping[str, Any]) -> float:
    """``updatefrequency``, or the deprecated ``updatefrenquency`` which wins (v3 behaviour)."""
    source = "updatefrequency"
    if "updatefrenquency" in options:
        log.warning("cloudfront option updatefrenquency is deprecated; use updatefrequency")
        source = "updatefrenquency"
    seconds = _duration_option(options, "updatefrequency", DEFAULT_UPDATE_FREQUENCY, source)
    if seconds <= 0:
        raise ParameterError(f"invalid updatefrequency: must be positive, got {options[source]!r}")
    return seconds


def _regions(options: Mapping[str, Any]) -> list[str]:
    if "awsregion" not in options:
        raise ParameterError("awsRegion is not defined")
    value = options["awsregion"]
    if not isinstance(value, str):
        raise ParameterError("awsRegion must be a comma separated string of valid aws regions")
    return [item.strip().lower() for item in value.split(",")]


def _filter_mode(options: Mapping[str, Any]) -> str:
    value = options.get("ipfilteredby", "")
    if not isinstance(value, str):
        raise ParameterError("ipfilteredby only allows a string with the following value: none|aws|awsregion")
    mode = value.strip().lower()
    if mode not in ("", "none", "aws", "awsregion"):
        raise ParameterError("ipfilteredby only allows a string the following value: none|aws|awsregion")
    return "none" if mode == "" else mode


# -- the middleware -----------------------------------------------------------------


class CloudFrontMiddleware(DriverWrapper):
    """Hands out CloudFront-signed URLs instead of the inner driver's redirect URLs."""

    def __init__(
        self,
        inner: StorageDriver,
        options: Mapping[str, Any],
        *,
        now: Clock = time.time,
        fetch: Fetch | None = None,
        initial_wait: float = DEFAULT_INITIAL_WAIT,
    ) -> None:
        super().__init__(inner)
        self.base_url = _base_url(options)
        key_path = _required_string(options, "privatekey")
        self.key_pair_id = _required_string(options, "keypairid")
        self._key = load_private_key(key_path)
        self.duration = _duration_option(options, "duration", DEFAULT_DURATION)
        update_frequency = _update_frequency(options)
        ranges_url = options.get("iprangesurl", DEFAULT_IP_RANGES_URL)
        if not isinstance(ranges_url, str):
            raise ParameterError("iprangesurl must be a string")
        self.filter_mode = _filter_mode(options)
        regions = _regions(options) if self.filter_mode == "awsregion" else None
        self._now = now
        self._warned = threading.Event()
        self.ip_filter: AWSIPFilter | None = None
        if self.filter_mode != "none":
            self.ip_filter = AWSIPFilter(
                ranges_url, update_frequency, regions, fetch=fetch, initial_wait=initial_wait
            )

    def redirect_url(
        self,
        method: str,
        path: str,
        *,
        client_ip: str | None = None,
        expires_in: float | None = None,
    ) -> str | None:
        """The CloudFront-signed URL of ``path`` (the method is not examined, as upstream)."""
        key = self.inner.bucket_key(path)
        if key is None:
            if not self._warned.is_set():
                self._warned.set()
                log.warning("%s (%s)", UNSUPPORTED_DRIVER_WARNING, self.inner.name)
            return self.inner.redirect_url(method, path, client_ip=client_ip, expires_in=expires_in)
        if self.ip_filter is not None and self.ip_filter.eligible(client_ip):
            log.debug("client %s is inside the allowed AWS ranges; using the storage URL", client_ip)
            return self.inner.redirect_url(method, path, client_ip=client_ip, expires_in=expires_in)
        if not is_valid_path(path):
            raise InvalidPathError(path, self.inner.name)
        lifetime = self.duration if expires_in is None else expires_in
        expires = int(self._now() + lifetime)
        return sign_url(self.base_url + key, expires, self.key_pair_id, self._key)

    def close(self) -> None:
        """Stop the IP-range refresher, then close the wrapped driver."""
        if self.ip_filter is not None:
            self.ip_filter.close()
        super().close()


def new(inner: StorageDriver, options: Mapping[str, Any]) -> StorageDriver:
    """The registry constructor: ``cloudfront`` around ``inner`` with ``options``."""
    return CloudFrontMiddleware(inner, options)


__all__ = [
    "CloudFrontMiddleware",
    "canned_policy",
    "cloudfront_b64",
    "cloudfront_b64decode",
    "load_private_key",
    "new",
    "parse_private_key",
    "sign_url",
]
