"""A local HTTP server that plays CloudFront for signed-URL tests.

It does what a CloudFront distribution with a trusted key group does for a
canned-policy signed URL. It imports nothing from :mod:`s3regfs.middleware`:
the only thing shared is the documented URL format.

1. ``Key-Pair-Id``, ``Signature`` and ``Expires`` must each be present once, and
   the key pair id must be one it trusts;
2. the resource is rebuilt from the request as CloudFront does
   (``http://<Host><path>`` plus any other query parameters) and the canned
   policy from it and ``Expires``; the signature must verify against the
   trusted public key (RSA PKCS#1 v1.5, SHA-1);
3. the current time must be before ``Expires``;
4. then the object whose key is the URL path (origin path empty, as the
   registry docs require) is served from the origin — the S3 server through
   :func:`s3_origin`, or a dict through :func:`dict_origin`.

For the IP filter, :class:`IPRangesServer` serves an AWS ``ip-ranges.json``
(built with :func:`ip_ranges_document`) on loopback.

Any failed check is ``403`` with a reason (also kept in :attr:`CloudFrontServer.requests`),
a missing object ``404``. Usage::

    with CloudFrontServer(s3_origin(client, bucket), {"KID": public_pem}) as cdn:
        options = {"baseurl": cdn.url, "privatekey": key_path, "keypairid": "KID"}
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = logging.getLogger(__name__)

CHUNK = 1 << 20
SIGNING_PARAMS = ("Expires", "Signature", "Key-Pair-Id", "Policy")


class OriginObject(Protocol):
    """What an origin returns for a key: its size and a byte stream."""

    size: int

    def chunks(self) -> Iterator[bytes]: ...


@dataclass
class _Object:
    size: int
    _chunks: Callable[[], Iterator[bytes]]

    def chunks(self) -> Iterator[bytes]:
        return self._chunks()


Origin = Callable[[str], OriginObject | None]
"""Maps an object key to the object, or None when there is none (→ 404)."""


def dict_origin(objects: Mapping[str, bytes]) -> Origin:
    """An origin serving ``objects`` (key → bytes)."""

    def lookup(key: str) -> OriginObject | None:
        data = objects.get(key)
        if data is None:
            return None
        return _Object(len(data), lambda: iter([data]))

    return lookup


def s3_origin(client: Any, bucket: str) -> Origin:
    """An origin serving the objects of ``bucket`` through the boto3 ``client``."""

    def lookup(key: str) -> OriginObject | None:
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

        def chunks() -> Iterator[bytes]:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return _Object(int(head["ContentLength"]), chunks)

    return lookup


@dataclass(frozen=True)
class Request:
    """One request the server answered."""

    method: str
    path: str
    status: int
    reason: str


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.translate(str.maketrans("-_~", "+=/")), validate=True)
    except (binascii.Error, ValueError):
        raise _Refusal(403, "MalformedSignature") from None


class CloudFrontServer:
    """A threaded HTTP server on loopback that checks CloudFront canned-policy signatures."""

    def __init__(
        self,
        origin: Origin,
        public_keys: Mapping[str, bytes],
        *,
        now: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
    ) -> None:
        self.origin = origin
        self.now = now
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        for key_id, pem in public_keys.items():
            key = serialization.load_pem_public_key(pem)
            if not isinstance(key, rsa.RSAPublicKey):
                raise TypeError(f"public key {key_id} is not an RSA key")
            self._keys[key_id] = key
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._httpd = ThreadingHTTPServer((host, 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to configure as the middleware's ``baseurl`` (with a trailing ``/``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="cloudfront-server", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def requests(self) -> list[Request]:
        """The requests answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    # -- the CloudFront checks --------------------------------------------------------

    def check(self, host: str, raw_target: str) -> str:
        """Verify a signed request target (``/path?query``); return the object key or raise ``_Refusal``."""
        split = urllib.parse.urlsplit(raw_target)
        kept: list[str] = []
        signing: dict[str, str] = {}
        for part in split.query.split("&") if split.query else []:
            name, _, value = part.partition("=")
            if name in SIGNING_PARAMS:
                if name in signing:
                    raise _Refusal(403, f"Duplicate{name.replace('-', '')}")
                signing[name] = urllib.parse.unquote(value)
            else:
                kept.append(part)
        if "Key-Pair-Id" not in signing:
            raise _Refusal(403, "MissingKeyPairId")
        if "Policy" in signing or "Expires" not in signing or "Signature" not in signing:
            raise _Refusal(403, "MalformedPolicy")
        public_key = self._keys.get(signing["Key-Pair-Id"])
        if public_key is None:
            raise _Refusal(403, "UnknownKey")
        if not signing["Expires"].isdigit():
            raise _Refusal(403, "MalformedExpires")
        expires = int(signing["Expires"])
        resource = f"http://{host}{split.path}" + (f"?{'&'.join(kept)}" if kept else "")
        policy = json.dumps(
            {
                "Statement": [
                    {"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}
                ]
            },
            separators=(",", ":"),
        ).encode()
        try:
            public_key.verify(_b64decode(signing["Signature"]), policy, padding.PKCS1v15(), hashes.SHA1())
        except InvalidSignature:
            raise _Refusal(403, "InvalidSignature") from None
        if self.now() >= expires:
            raise _Refusal(403, "Expired")
        return urllib.parse.unquote(split.path.removeprefix("/"))

    def _record(self, method: str, path: str, status: int, reason: str) -> None:
        with self._lock:
            self._requests.append(Request(method, path, status, reason))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve(with_body=True)

            def do_HEAD(self) -> None:
                self._serve(with_body=False)

            def _serve(self, with_body: bool) -> None:
                path = urllib.parse.urlsplit(self.path).path
                try:
                    key = server.check(self.headers.get("Host", ""), self.path)
                    obj = server.origin(key)
                    if obj is None:
                        raise _Refusal(404, "NoSuchKey")
                except _Refusal as refusal:
                    server._record(self.command, path, refusal.status, refusal.reason)
                    self._error(refusal.status, refusal.reason, with_body)
                    return
                server._record(self.command, path, 200, "OK")
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(obj.size))
                self.send_header("X-Cache", "Miss from cloudfront")
                self.end_headers()
                if with_body:
                    for chunk in obj.chunks():
                        self.wfile.write(chunk)

            def _error(self, status: int, reason: str, with_body: bool) -> None:
                code = "NoSuchKey" if status == 404 else "AccessDenied"
                body = f"<Error><Code>{code}</Code><Message>{reason}</Message></Error>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("cloudfront-server: " + format, *args)

        return Handler


# -- the AWS side: an ip-ranges.json endpoint -----------------------------------------


def ip_ranges_document(v4: Iterable[tuple[str, str]], v6: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    """An AWS ``ip-ranges.json`` document from ``(prefix, region)`` pairs."""
    return {
        "syncToken": "1",
        "prefixes": [
            {"ip_prefix": p, "region": r, "service": "AMAZON", "network_border_group": r} for p, r in v4
        ],
        "ipv6_prefixes": [{"ipv6_prefix": p, "region": r, "service": "S3"} for p, r in v6],
    }


class IPRangesServer:
    """Serves a document (JSON object, or raw bytes) with a status on 127.0.0.1; both may change."""

    def __init__(self, document: Any, status: int = 200) -> None:
        self.document = document
        self.status = status
        self.hits = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    outer.hits += 1
                    status, doc = outer.status, outer.document
                body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("ip-ranges-server: " + format, *args)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/ip-ranges.json"

    def set(self, document: Any = None, status: int | None = None) -> None:
        """Change what the next requests get."""
        with self._lock:
            if document is not None:
                self.document = document
            if status is not None:
                self.status = status

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
