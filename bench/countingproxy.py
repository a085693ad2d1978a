"""A request-counting HTTP proxy between the benchmarked tools and the S3 server.

Owns what bench/run.py's counting pass needs and nothing more: one threaded
proxy on loopback (:class:`CountingProxy`) that forwards every request byte for
byte (request line, headers in their order and case, ``Host`` included, and the
body), so SigV4 signatures made for the proxy's address stay valid, and counts
each request by S3 operation name (:func:`classify`: ``ListObjectsV2``,
``HeadObject``, ``GetObjectRange``, ...; the names bench/report.py groups).

Usage::

    with CountingProxy(server.endpoint) as proxy:
        ...  # point the tool's endpoint at proxy.endpoint
        counts = proxy.counts()
        proxy.reset()

The benchmark does not import the tests: the fault-injecting proxy of the test
suite (tests/support/s3proxy.py) classifies requests the same way.
"""

from __future__ import annotations

import collections
import http.client
import logging
import socketserver
import threading
import time
import urllib.parse
from typing import BinaryIO, Self

log = logging.getLogger(__name__)

_BUF = 1 << 20
_LINE = 65537


def classify(method: str, target: str, headers: dict[str, str]) -> str:
    """The S3 operation of a path-style request (``headers`` with lower-case names).

    Object GETs with a ``Range`` header are ``GetObjectRange``.
    """
    parsed = urllib.parse.urlsplit(target)
    path = urllib.parse.unquote(parsed.path)
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    parts = path.lstrip("/").split("/", 1)
    if path in ("", "/"):
        return "ListBuckets" if method == "GET" else f"{method} /"
    if len(parts) == 1 or parts[1] == "":
        return _bucket_op(method, query)
    return _object_op(method, query, headers)


def _bucket_op(method: str, query: dict[str, list[str]]) -> str:
    if method == "GET":
        if "uploads" in query:
            return "ListMultipartUploads"
        if query.get("list-type") == ["2"]:
            return "ListObjectsV2"
        if "location" in query:
            return "GetBucketLocation"
        return "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(method, f"{method} bucket")


def _object_op(method: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
    copy = "x-amz-copy-source" in headers
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        return "GetObjectRange" if "range" in headers else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "POST object"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return f"{method} object"


class CountingProxy:
    """``CountingProxy(upstream_endpoint)``: a context manager (listens on enter, stops on exit)."""

    def __init__(self, upstream_endpoint: str, *, host: str = "127.0.0.1", upstream_timeout: float = 120.0,
                 delay: float = 0.0) -> None:
        self.upstream = upstream_address(upstream_endpoint)
        self.upstream_timeout = upstream_timeout
        self.delay = delay
        """Seconds each request waits before it is forwarded: a round trip to a remote store (``--profile remote``)."""
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._server = _Server((host, 0), _Handler)
        self._server.proxy = self
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: give this to the tool instead of the server's endpoint."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"countingproxy-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def counts(self) -> dict[str, int]:
        """Requests seen per operation name since the start or the last :meth:`reset`."""
        with self._lock:
            return {op: n for op, n in self._counts.items() if n}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def _count(self, op: str) -> None:
        with self._lock:
            self._counts[op] += 1

    def _forward(self, upstream: http.client.HTTPConnection | None, method: str, target: str,
                 headers: list[tuple[str, str]], body: bytes
                 ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        return forward(self.upstream, self.upstream_timeout, upstream, method, target, headers, body)


def upstream_address(endpoint: str) -> tuple[str, int]:
    """(host, port) of an ``http://`` endpoint (``host:port`` alone means http); ValueError otherwise."""
    up = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if up.scheme != "http" or not up.hostname:
        raise ValueError(f"upstream must be an http:// endpoint, got {endpoint!r}")
    return up.hostname, up.port or 80


def forward(address: tuple[str, int], timeout: float, upstream: http.client.HTTPConnection | None, method: str,
            target: str, headers: list[tuple[str, str]], body: bytes
            ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send a request to ``address`` unchanged (once more on a stale keep-alive ``upstream``).

    Returns the connection (to reuse) and the response; ``Expect`` is dropped (the body is already read).
    """
    for attempt in range(2):
        fresh = upstream is None
        if upstream is None:
            upstream = http.client.HTTPConnection(*address, timeout=timeout)
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() != "expect":
                    upstream.putheader(name, value)
            upstream.endheaders(body if body else None)
            return upstream, upstream.getresponse()
        except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError):
            upstream.close()
            upstream = None
            if fresh or attempt:
                raise
    raise AssertionError("unreachable")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: CountingProxy


class _Handler(socketserver.StreamRequestHandler):
    """One client connection: its requests in turn (keep-alive), each over one reused upstream connection."""

    timeout = 300.0
    disable_nagle_algorithm = True  # TCP_NODELAY, as S3 servers and http.client set it (see _relay)
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        upstream: http.client.HTTPConnection | None = None
        try:
            while True:
                head = _read_head(self.rfile)
                if head is None:
                    return
                method, target, headers = head
                lower = {k.lower(): v for k, v in headers}
                if lower.get("expect", "").lower() == "100-continue":
                    self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = _read_body(self.rfile, lower)
                proxy._count(classify(method, target, lower))
                if proxy.delay > 0:
                    time.sleep(proxy.delay)  # the simulated round trip; each connection's own thread waits
                upstream, resp = proxy._forward(upstream, method, target, headers, body)
                keep = _relay(self.wfile, resp)
                if not keep:
                    upstream.close()
                    return
        except (OSError, ValueError, http.client.HTTPException) as exc:
            log.debug("counting proxy connection ended: %s", exc)
        finally:
            if upstream is not None:
                upstream.close()


def _read_head(rfile: BinaryIO) -> tuple[str, str, list[tuple[str, str]]] | None:
    """(method, target, headers) of the next request; None when the client closed the connection."""
    line = rfile.readline(_LINE)
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(_LINE)
    if not line:
        return None
    method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while True:
        hline = rfile.readline(_LINE)
        if not hline:
            raise ConnectionError("client closed mid-headers")
        if hline in (b"\r\n", b"\n"):
            return method, target, headers
        name, _, value = hline.decode("latin-1").rstrip("\r\n").partition(":")
        headers.append((name.strip(), value.strip()))


def _read_body(rfile: BinaryIO, lower: dict[str, str]) -> bytes:
    """The request body as sent (a chunked one raw, forwarded with its Transfer-Encoding header)."""
    if lower.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size_line = rfile.readline(_LINE)
            if not size_line:
                raise ConnectionError("client closed mid-body")
            out += size_line
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers up to the blank line
                    trailer = rfile.readline(_LINE)
                    out += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        return bytes(out)
            out += rfile.read(size + 2)
    length = int(lower.get("content-length", "0") or 0)
    data = rfile.read(length) if length else b""
    if len(data) != length:
        raise ConnectionError("client closed mid-body")
    return data


def _relay(wfile: BinaryIO, resp: http.client.HTTPResponse) -> bool:
    """Send the upstream response to the client (a chunked one re-framed); True to keep both connections."""
    headers = [(k, v) for k, v in resp.getheaders() if k.lower() != "transfer-encoding"]
    if resp.chunked:
        data = resp.read()
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(data))))
        chunks = [data]
    else:
        chunks = iter(lambda: resp.read(_BUF), b"")
    head = [f"HTTP/1.1 {resp.status} {resp.reason}\r\n"] + [f"{k}: {v}\r\n" for k, v in headers]
    pending = ("".join(head) + "\r\n").encode("latin-1")
    for chunk in chunks:  # the head goes out with the first chunk of the body: one segment for a small response
        wfile.write(pending + chunk if pending else chunk)
        pending = b""
    if pending:
        wfile.write(pending)
    return not resp.will_close
