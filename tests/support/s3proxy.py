"""A counting, fault-injecting HTTP proxy between an S3 client and a real S3 server (tests only).

Owns: one threaded proxy on loopback (:class:`S3Proxy`) that

* forwards every request byte for byte (request line, headers in their order
  and case, including ``Host``, and the body), so SigV4 signatures made for
  the proxy's address stay valid: point the client's endpoint (the s3
  driver's ``regionendpoint``) at :attr:`S3Proxy.endpoint`;
* classifies each request by S3 operation (:func:`classify`) and counts it
  (:meth:`S3Proxy.counts`, :meth:`S3Proxy.stats`, :meth:`S3Proxy.requests`);
* injects faults by :class:`Rule`: an S3 XML error answer
  (:class:`ErrorReply`, e.g. :data:`SLOWDOWN`), a connection reset after part
  of the body (:class:`ResetMidBody`), a body shorter than its
  ``Content-Length`` (:class:`TruncateBody`), a stall (:class:`Stall`), a
  delay (:class:`Delay`), a hold until the test releases it (:class:`Hold`), a silent close
  (:class:`Drop`) or a rewritten body (:class:`Rewrite`).  A rule targets
  operation names and/or a path regex, and fires on the Nth match, on a run
  of matches, or with a probability drawn from a seeded RNG;
* goes away and comes back: :meth:`S3Proxy.down` closes the listening socket
  and every open connection (new connections are refused), :meth:`S3Proxy.up`
  listens again on the same port; :meth:`S3Proxy.down_for` comes back by
  itself after a delay.

Usage::

    with S3Proxy(server.endpoint) as proxy:
        rule = proxy.add_rule(Rule(SLOWDOWN, op="UploadPart", nth=2))
        params = server.driver_parameters(bucket, regionendpoint=proxy.endpoint)
        ...
        assert rule.fired == 1
        assert proxy.counts()["UploadPart"] == 3

Request bodies are read whole before being forwarded (so a stale upstream
keep-alive connection can be retried transparently); response bodies are
streamed.
"""

from __future__ import annotations

import collections
import http.client
import itertools
import logging
import random
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Self

from bench.countingproxy import classify as operation
from bench.countingproxy import forward, upstream_address

log = logging.getLogger(__name__)

_BUF = 1 << 20
_MAX_RECORDS = 200_000

GET_OPS = ("GetObject", "GetObjectRange")
"""Both kinds of object GET, for rules that target any GET."""

WRITE_OPS = ("PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload", "CopyObject")
"""The operations that create or fill objects."""


# -- faults ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """Base of the faults a :class:`Rule` injects."""

    @property
    def label(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class ErrorReply(Fault):
    """Answer with an S3 XML error instead of forwarding (the request never reaches S3)."""

    status: int = 500
    code: str = "InternalError"
    message: str = "We encountered an internal error. Please try again."

    @property
    def label(self) -> str:
        return f"{self.status} {self.code}"


INTERNAL_ERROR = ErrorReply(500, "InternalError", "We encountered an internal error. Please try again.")
SLOWDOWN = ErrorReply(503, "SlowDown", "Please reduce your request rate.")
SERVICE_UNAVAILABLE = ErrorReply(503, "ServiceUnavailable", "Service is unable to handle request.")


@dataclass(frozen=True)
class ResetMidBody(Fault):
    """Forward, then send the headers and ``after_bytes`` of the body, then reset the connection (RST)."""

    after_bytes: int = 0


@dataclass(frozen=True)
class TruncateBody(Fault):
    """Forward, then send the headers (full ``Content-Length``) and ``after_bytes`` of the body, then close (FIN)."""

    after_bytes: int = 0


@dataclass(frozen=True)
class Stall(Fault):
    """Stall ``seconds`` then close the connection.

    With ``forward`` the request reaches S3 first (its side effects happen)
    and, if ``after_bytes`` is not ``None``, the headers and that many body
    bytes are sent before the stall; otherwise nothing is answered at all.
    """

    seconds: float = 60.0
    after_bytes: int | None = None
    forward: bool = True


@dataclass(frozen=True)
class Delay(Fault):
    """Wait ``seconds``, then forward and answer normally (latency, not failure)."""

    seconds: float = 1.0


@dataclass(frozen=True)
class Hold(Fault):
    """Wait until the test calls :meth:`release` (or ``seconds`` passed), then forward and answer normally.

    For looking at the client while a request is in flight (an upload held open), without guessing a delay.
    """

    seconds: float = 60.0
    released: threading.Event = field(default_factory=threading.Event, compare=False)
    arrived: threading.Event = field(default_factory=threading.Event, compare=False)

    def release(self) -> None:
        self.released.set()


@dataclass(frozen=True)
class Rewrite(Fault):
    """Forward, then answer with ``fn(body)`` instead of the body (``Content-Length`` fixed up).

    For a hostile or buggy server: e.g. a listing that names keys no client could have written.
    """

    fn: Callable[[bytes], bytes] = field(default=lambda body: body)


@dataclass(frozen=True)
class Drop(Fault):
    """Close the connection without an answer; with ``forward`` the request reaches S3 first."""

    forward: bool = False


# -- rules -------------------------------------------------------------------------------


@dataclass
class Rule:
    """Which requests get which :class:`Fault`.

    A request *matches* when its operation is in ``op`` (a name or a
    collection of names; ``None`` = any) and ``path`` (a regex searched in the
    decoded ``/bucket/key`` path, for a listing ``/bucket/<its prefix>``; ``None`` = any) is found.  Among the
    matching requests the first ``skip`` pass untouched; after that each
    match fires with ``probability`` (seeded RNG) until the rule has fired
    ``times`` times (``None`` = forever).  ``nth=N`` is shorthand for
    ``skip=N-1, times=1``.  ``matched`` and ``fired`` count what happened.
    """

    fault: Fault
    op: str | Collection[str] | None = None
    path: str | None = None
    nth: int | None = None
    skip: int = 0
    times: int | None = None
    probability: float = 1.0
    seed: int = 0
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.nth is not None:
            if self.nth < 1:
                raise ValueError("nth counts from 1")
            self.skip, self.times = self.nth - 1, 1
        self._ops = {self.op} if isinstance(self.op, str) else (set(self.op) if self.op is not None else None)
        self._path = re.compile(self.path) if self.path is not None else None
        self._rng = random.Random(self.seed)

    def _decide(self, op: str, path: str) -> bool:
        """Count a request against this rule; True when the fault fires (caller holds the proxy lock)."""
        if self._ops is not None and op not in self._ops:
            return False
        if self._path is not None and not self._path.search(path):
            return False
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.probability < 1.0 and self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


# -- classification ----------------------------------------------------------------------


def classify(method: str, target: str, headers: dict[str, str]) -> tuple[str, str]:
    """The S3 operation name (the benchmark's one classification, :func:`bench.countingproxy.classify`)
    and the decoded path of a path-style request; ``headers`` has lower-case names.
    """
    return operation(method, target, headers), urllib.parse.unquote(urllib.parse.urlsplit(target).path)


def _rule_path(op: str, target: str, path: str) -> str:
    """What a rule's ``path`` is searched in: the path, or for a listing the bucket path and its prefix."""
    if not op.startswith("List"):
        return path
    prefix = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("prefix", [""])[0]
    return path.rstrip("/") + "/" + prefix


# -- records -----------------------------------------------------------------------------


@dataclass
class Record:
    """One request as the proxy saw it (``status``, ``bytes_out`` and ``elapsed`` fill in as it is served)."""

    op: str
    method: str
    path: str
    fault: str | None
    bytes_in: int
    started: float
    status: int | None = None
    bytes_out: int = 0
    elapsed: float | None = None
    _fault: Fault | None = field(default=None, repr=False, compare=False)


@dataclass
class OpStats:
    """Per-operation totals."""

    count: int = 0
    errors: int = 0
    faults: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class _Closed(Exception):
    """The client closed the connection (end of a keep-alive session)."""


# -- the proxy ---------------------------------------------------------------------------


class S3Proxy:
    """The proxy: ``S3Proxy(upstream_endpoint)``; a context manager (start on enter, stop on exit)."""

    def __init__(self, upstream_endpoint: str, *, host: str = "127.0.0.1", port: int = 0,
                 upstream_timeout: float = 120.0, idle_timeout: float = 300.0) -> None:
        self.upstream = upstream_address(upstream_endpoint)
        self.host = host
        self.port = port
        self.upstream_timeout = upstream_timeout
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._stats: dict[str, OpStats] = collections.defaultdict(OpStats)
        self._records: collections.deque[Record] = collections.deque(maxlen=_MAX_RECORDS)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()  # set on stop and on down: wakes stalls
        self._generation = itertools.count()
        self._timer: threading.Timer | None = None
        self._is_up = False

    def __repr__(self) -> str:
        return f"S3Proxy({self.endpoint if self.port else None!r} -> {self.upstream[0]}:{self.upstream[1]})"

    # -- public API -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: give this to the client instead of the server's endpoint."""
        return f"http://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._is_up

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Listen (on a free port unless one was given) and serve."""
        self.up()
        return self

    def stop(self) -> None:
        """Stop listening, close every connection and wait for the handler threads."""
        if self._timer is not None:
            self._timer.cancel()
        self.down()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(10)

    def up(self) -> None:
        """Listen again (on the same port after :meth:`down`); a no-op when already up."""
        with self._lock:
            if self._is_up:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(128)
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._stopping = threading.Event()
            self._is_up = True
            thread = threading.Thread(target=self._accept_loop, args=(listener,), name=f"s3proxy-accept-{self.port}",
                                      daemon=True)
            self._accept_thread = thread
            thread.start()
        log.debug("s3proxy listening on %s", self.endpoint)

    def down(self) -> None:
        """The server is gone: stop listening (connections are refused) and close every open connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns = list(self._conns)
            self._is_up = False
            self._stopping.set()
        if listener is not None:
            _hard_close(listener)
        for conn in conns:
            _kick(conn)
        if self._accept_thread is not None:
            self._accept_thread.join(5)
        log.debug("s3proxy on port %s is down", self.port)

    def down_for(self, seconds: float) -> None:
        """:meth:`down` now, :meth:`up` again after ``seconds`` (in a timer thread)."""
        self.down()
        self._timer = threading.Timer(seconds, self.up)
        self._timer.daemon = True
        self._timer.start()

    def add_rule(self, rule: Rule) -> Rule:
        """Install ``rule`` (rules are checked in the order added; the first that fires wins)."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def fault(self, fault: Fault, **match: object) -> Rule:
        """Shorthand: ``add_rule(Rule(fault, **match))``."""
        return self.add_rule(Rule(fault, **match))  # type: ignore[arg-type]

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def counts(self) -> dict[str, int]:
        """Requests seen per operation name (faulted ones included)."""
        with self._lock:
            return {op: st.count for op, st in self._stats.items() if st.count}

    def stats(self) -> dict[str, OpStats]:
        """Per-operation totals: requests, error answers (status ≥ 400), faults, bytes in and out."""
        with self._lock:
            return {op: OpStats(**vars(st)) for op, st in self._stats.items()}

    def requests(self, op: str | Collection[str] | None = None) -> list[Record]:
        """The recorded requests (the last 200,000, in arrival order), optionally only those of ``op``.

        Records are live: ``status``/``bytes_out``/``elapsed`` of a request still being served may change.
        """
        ops = {op} if isinstance(op, str) else (set(op) if op is not None else None)
        with self._lock:
            return [r for r in self._records if ops is None or r.op in ops]

    def total(self) -> int:
        """All requests seen."""
        return sum(self.counts().values())

    def reset(self) -> None:
        """Forget counts and records, and remove every rule."""
        with self._lock:
            self._stats.clear()
            self._records.clear()
            self._rules.clear()

    # -- serving ----------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._listener is not listener:
                    _abort(conn)
                    return
                self._conns.add(conn)
                thread = threading.Thread(target=self._serve, args=(conn, self._stopping),
                                          name=f"s3proxy-conn-{next(self._generation)}", daemon=True)
                self._threads.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket, stopping: threading.Event) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(self.idle_timeout)
        reader = _SockReader(conn)
        upstream: http.client.HTTPConnection | None = None
        try:
            while not stopping.is_set():
                keep, upstream = self._one_request(conn, reader, upstream, stopping)
                if not keep:
                    break
        except (_Closed, OSError, http.client.HTTPException) as exc:
            log.debug("s3proxy connection ended: %s", exc)
        finally:
            if upstream is not None:
                upstream.close()
            _hard_close(conn)
            with self._lock:
                self._conns.discard(conn)
                self._threads.discard(threading.current_thread())

    def _one_request(self, conn: socket.socket, reader: object, upstream: http.client.HTTPConnection | None,
                     stopping: threading.Event) -> tuple[bool, http.client.HTTPConnection | None]:
        """Serve one request; return (keep the client connection, the upstream connection to reuse)."""
        method, target, _version, headers = _read_head(reader)
        lower = {k.lower(): v for k, v in headers}
        if lower.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = _read_body(reader, lower)
        op, path = classify(method, target, lower)
        rec = self._arrived(op, method, path, len(body), _rule_path(op, target, path))
        try:
            return self._dispatch(conn, upstream, stopping, method, target, headers, body, rec)
        finally:
            rec.elapsed = time.monotonic() - rec.started

    def _dispatch(self, conn: socket.socket, upstream: http.client.HTTPConnection | None,
                  stopping: threading.Event, method: str, target: str, headers: list[tuple[str, str]],
                  body: bytes, rec: Record) -> tuple[bool, http.client.HTTPConnection | None]:
        fault = rec._fault
        if isinstance(fault, ErrorReply):
            self._answered(rec, fault.status)
            _send_error(conn, method, rec.path, fault, lambda n: self._sent(rec, n))
            return True, upstream
        if isinstance(fault, Drop) and not fault.forward:
            return False, upstream
        if isinstance(fault, Stall) and not fault.forward:
            stopping.wait(fault.seconds)
            return False, upstream
        if isinstance(fault, Delay):
            stopping.wait(fault.seconds)
        if isinstance(fault, Hold):
            fault.arrived.set()
            deadline = time.monotonic() + fault.seconds
            while not (fault.released.wait(0.02) or stopping.is_set() or time.monotonic() > deadline):
                pass
        upstream, resp = forward(self.upstream, self.upstream_timeout, upstream, method, target, headers, body)
        self._answered(rec, resp.status)
        if isinstance(fault, Drop):
            upstream.close()
            return False, None
        keep = self._relay(conn, resp, fault, stopping, rec)
        if not keep or resp.will_close or not resp.isclosed():
            upstream.close()
            upstream = None
        return keep, upstream

    def _arrived(self, op: str, method: str, path: str, bytes_in: int, rule_path: str) -> Record:
        """Count the request and pick its fault (rules in order; the first that fires wins)."""
        with self._lock:
            fault = None
            for rule in self._rules:
                if rule._decide(op, rule_path) and fault is None:
                    fault = rule.fault
            rec = Record(op, method, path, fault.label if fault else None, bytes_in, time.monotonic(), _fault=fault)
            st = self._stats[op]
            st.count += 1
            st.bytes_in += bytes_in
            if fault is not None:
                st.faults += 1
            self._records.append(rec)
            return rec

    def _answered(self, rec: Record, status: int) -> None:
        with self._lock:
            rec.status = status
            if status >= 400:
                self._stats[rec.op].errors += 1

    def _sent(self, rec: Record, count: int) -> None:
        """Account ``count`` body bytes (called *before* they are sent, so counts never lag the client)."""
        with self._lock:
            rec.bytes_out += count
            self._stats[rec.op].bytes_out += count

    def _relay(self, conn: socket.socket, resp: http.client.HTTPResponse, fault: Fault | None,
               stopping: threading.Event, rec: Record) -> bool:
        """Send the upstream response to the client, applying a body fault; True to keep the connection."""
        if isinstance(fault, Stall) and fault.after_bytes is None:
            stopping.wait(fault.seconds)  # nothing answered: the client's read timeout must fire
            return False
        resp_headers = [(k, v) for k, v in resp.getheaders() if k.lower() != "transfer-encoding"]
        if resp.chunked or isinstance(fault, Rewrite):  # re-frame as one Content-Length body (small)
            data = resp.read()
            if isinstance(fault, Rewrite):
                data = fault.fn(data)
            resp_headers = [(k, v) for k, v in resp_headers if k.lower() != "content-length"]
            resp_headers.append(("Content-Length", str(len(data))))
            chunks: Iterator[bytes] = iter([data])
        else:
            chunks = _iter_body(resp)
        head = [f"HTTP/1.1 {resp.status} {resp.reason}\r\n"]
        head += [f"{k}: {v}\r\n" for k, v in resp_headers]
        conn.sendall(("".join(head) + "\r\n").encode("latin-1"))
        limit = getattr(fault, "after_bytes", None)
        if isinstance(fault, (ResetMidBody, TruncateBody, Stall)) and limit is not None:
            _send_limited(conn, chunks, limit, lambda n: self._sent(rec, n))
            if isinstance(fault, Stall):
                stopping.wait(fault.seconds)
                return False
            if isinstance(fault, ResetMidBody):
                _abort(conn)
            else:
                _graceful_close(conn)
            return False
        for chunk in chunks:
            self._sent(rec, len(chunk))
            conn.sendall(chunk)
        return not resp.will_close


# -- HTTP helpers --------------------------------------------------------------------------


class _SockReader:
    """A minimal buffered reader over a socket (no ``makefile``, so ``close`` really closes at once)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        data = self._sock.recv(_BUF)
        if not data:
            return False
        self._buf += data
        return True

    def readline(self, limit: int) -> bytes:
        while True:
            idx = self._buf.find(b"\n", 0, limit)
            if idx >= 0 or len(self._buf) >= limit:
                end = idx + 1 if idx >= 0 else limit
                line = bytes(self._buf[:end])
                del self._buf[:end]
                return line
            if not self._fill():
                line = bytes(self._buf)
                self._buf.clear()
                return line

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                break
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data



def _read_head(reader: object) -> tuple[str, str, str, list[tuple[str, str]]]:
    readline = reader.readline  # type: ignore[attr-defined]
    line = readline(65537)
    while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between requests
        line = readline(65537)
    if not line:
        raise _Closed("client closed")
    try:
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    except ValueError as exc:
        raise _Closed(f"bad request line {line!r}") from exc
    headers: list[tuple[str, str]] = []
    while True:
        hline = readline(65537)
        if not hline:
            raise _Closed("client closed mid-headers")
        if hline in (b"\r\n", b"\n"):
            break
        name, _, value = hline.decode("latin-1").rstrip("\r\n").partition(":")
        headers.append((name.strip(), value.strip()))
    return method, target, version, headers


def _read_body(reader: object, lower: dict[str, str]) -> bytes:
    read = reader.read  # type: ignore[attr-defined]
    if lower.get("transfer-encoding", "").lower() == "chunked":
        return _read_chunked_raw(reader)
    length = int(lower.get("content-length", "0") or 0)
    data = read(length) if length else b""
    if len(data) != length:
        raise _Closed("client closed mid-body")
    return data


def _read_chunked_raw(reader: object) -> bytes:
    """The raw chunked encoding (forwarded as is, with the Transfer-Encoding header)."""
    readline, read = reader.readline, reader.read  # type: ignore[attr-defined]
    out = bytearray()
    while True:
        size_line = readline(65537)
        if not size_line:
            raise _Closed("client closed mid-body")
        out += size_line
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers up to the blank line
                trailer = readline(65537)
                out += trailer
                if trailer in (b"\r\n", b"\n", b""):
                    return bytes(out)
        out += read(size + 2)


def _iter_body(resp: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        chunk = resp.read(_BUF)
        if not chunk:
            return
        yield chunk


def _send_limited(conn: socket.socket, chunks: Iterator[bytes], limit: int, account: Callable[[int], None]) -> None:
    sent = 0
    for chunk in chunks:
        if sent >= limit:
            break
        piece = chunk[: limit - sent]
        account(len(piece))
        conn.sendall(piece)
        sent += len(piece)


def _send_error(conn: socket.socket, method: str, path: str, fault: ErrorReply,
                account: Callable[[int], None]) -> None:
    request_id = f"S3PROXY{random.getrandbits(48):012X}"
    body = b"" if method == "HEAD" else (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
        f"<Resource>{_xml_escape(path)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    reason = http.client.responses.get(fault.status, "Error")
    length = len(body)
    head = (
        f"HTTP/1.1 {fault.status} {reason}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {length}\r\n"
        f"x-amz-request-id: {request_id}\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}\r\n"
        "Server: s3proxy-fault\r\n"
        + ("Retry-After: 1\r\n" if fault.status == 503 else "")
        + "\r\n"
    ).encode()
    account(len(body))
    conn.sendall(head + body)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _abort(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0, no FIN first): the peer sees 'connection reset by peer'."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def _kick(sock: socket.socket) -> None:
    """From another thread: make the owner's blocked recv return and its final close send RST."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _graceful_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    _hard_close(sock)


def _hard_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
