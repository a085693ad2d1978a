"""The AWS IP-range filter of the CloudFront middleware (port of distribution's ``awsips.go``).

Owns :class:`AWSIPFilter`: which client addresses are inside AWS (all of it,
or only the listed regions), so that they get the S3 URL instead of the
CloudFront one.

* **Fetch.** An HTTP GET of ``iprangesurl`` (the AWS ``ip-ranges.json``), through
  an injectable ``fetch(url) -> bytes`` function; the default uses urllib with
  a timeout (upstream has none). A non-200 answer is the upstream error
  ``failed to fetch network data. response = <body>``.
* **Parse.** ``prefixes[].ip_prefix`` and ``ipv6_prefixes[].ipv6_prefix`` are
  CIDRs (a bare address without ``/n`` is invalid, as in Go). ``service`` is
  ignored. Invalid entries are logged and skipped. With a region list, an
  entry is kept only if its ``region`` matches one, case-insensitively.
* **State.** The IPv4 and IPv6 sets are replaced together under a lock; a
  failed fetch or parse logs a warning and keeps the last good sets.
  Until one fetch has succeeded the filter is *not initialised* and no
  address is eligible (everything goes via CloudFront).
* **Refresh, lazily.** Nothing is fetched until the filter is first asked
  about a client address (:meth:`AWSIPFilter.eligible` with an address, or
  :meth:`AWSIPFilter.start`): a mount's xattr URLs have no client, so a mount
  never fetches. Then a daemon thread fetches at once, and again every
  ``update_frequency`` seconds, until :meth:`AWSIPFilter.close`. That first
  call waits for the first attempt at most ``initial_wait`` seconds (upstream
  fetches at start and waits without a bound), so a slow or unreachable
  endpoint delays it by at most that, and never blocks a later call.
* **Match.** An address with an IPv4 form (including IPv4-mapped IPv6) is
  tested against the IPv4 set, any other against the IPv6 set. The sets are
  stored collapsed and sorted, so a lookup is a bisection (upstream: a linear
  scan; same answers).
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_IP_RANGES_URL = "https://ip-ranges.amazonaws.com/ip-ranges.json"
DEFAULT_UPDATE_FREQUENCY = 12 * 3600.0
DEFAULT_FETCH_TIMEOUT = 10.0
DEFAULT_INITIAL_WAIT = 5.0

Fetch = Callable[[str], bytes]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Ranges = tuple[list[int], list[int]]  # sorted starts, matching ends (inclusive), non-overlapping


class FetchError(Exception):
    """The IP ranges could not be fetched or understood."""


def http_fetch(url: str, timeout: float = DEFAULT_FETCH_TIMEOUT) -> bytes:
    """GET ``url`` and return the body; a non-200 status raises :class:`FetchError` (upstream text)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(f"failed to fetch network data: {exc}") from exc
    if status != 200:
        text = body[:512].decode("utf-8", "replace")
        raise FetchError(f"failed to fetch network data. response = {text}")
    return body


def parse_client_ip(value: str) -> IPAddress | None:
    """``value`` as an address; ``host:port`` and ``[v6]:port`` forms are accepted (port stripped)."""
    value = value.strip()
    candidates = [value]
    if value.startswith("[") and "]" in value:
        candidates.append(value[1 : value.index("]")])
    elif value.count(":") == 1:
        candidates.append(value.split(":", 1)[0])
    for candidate in candidates:
        try:
            return ipaddress.ip_address(candidate)
        except ValueError:
            continue
    return None


def parse_ranges(document: bytes, regions: Sequence[str] | None) -> tuple[_Ranges, _Ranges]:
    """The (IPv4, IPv6) ranges of an ``ip-ranges.json`` body; raise :class:`FetchError` if it is not one."""
    try:
        data = json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FetchError(f"invalid ip ranges document: {exc}") from exc
    if not isinstance(data, dict):
        raise FetchError("invalid ip ranges document: not a JSON object")
    wanted = None if regions is None else {r.lower() for r in regions}
    v4 = _networks(data.get("prefixes"), "ip_prefix", ipaddress.IPv4Network, wanted)
    v6 = _networks(data.get("ipv6_prefixes"), "ipv6_prefix", ipaddress.IPv6Network, wanted)
    return _index(v4), _index(v6)


def _networks(entries: Any, field: str, kind: type, wanted: set[str] | None) -> list[Any]:
    """The valid networks of one list of the document, region-filtered."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise FetchError(f"invalid ip ranges document: {field} list is not a list")
    nets = []
    for entry in entries:
        if not isinstance(entry, dict):
            log.warning("skipping invalid ip range entry %r", entry)
            continue
        region = entry.get("region", "")
        if wanted is not None and (not isinstance(region, str) or region.lower() not in wanted):
            continue
        net = _parse_cidr(entry.get(field), kind)
        if net is None:
            log.warning("skipping invalid %s %r", field, entry.get(field))
            continue
        nets.append(net)
    return nets


def _parse_cidr(text: Any, kind: type) -> Any:
    """``text`` as a network of ``kind``, or None (a CIDR needs its ``/n``, as Go's ParseCIDR)."""
    if not isinstance(text, str) or "/" not in text:
        return None
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, kind) else None


def _index(networks: Iterable[Any]) -> _Ranges:
    """Collapse ``networks`` into sorted, disjoint integer intervals for bisection."""
    starts: list[int] = []
    ends: list[int] = []
    for net in ipaddress.collapse_addresses(networks):
        starts.append(int(net.network_address))
        ends.append(int(net.broadcast_address))
    return starts, ends


def _in(ranges: _Ranges, value: int) -> bool:
    starts, ends = ranges
    i = bisect.bisect_right(starts, value) - 1
    return i >= 0 and value <= ends[i]


class AWSIPFilter:
    """The AWS IP ranges, refreshed in the background; answers "is this client inside AWS?"."""

    def __init__(
        self,
        url: str = DEFAULT_IP_RANGES_URL,
        update_frequency: float = DEFAULT_UPDATE_FREQUENCY,
        regions: Sequence[str] | None = None,
        *,
        fetch: Fetch | None = None,
        initial_wait: float = DEFAULT_INITIAL_WAIT,
    ) -> None:
        if update_frequency <= 0:
            raise ValueError(f"update frequency must be positive, got {update_frequency}")
        self.url = url
        self.update_frequency = float(update_frequency)
        self.regions = None if regions is None else [r.strip().lower() for r in regions]
        self._fetch: Fetch = fetch if fetch is not None else http_fetch
        self._lock = threading.Lock()
        self._v4: _Ranges = ([], [])
        self._v6: _Ranges = ([], [])
        self._initialized = False
        self._successes = 0
        self._attempts = 0
        self.initial_wait = initial_wait
        self._stop = threading.Event()
        self._first_attempt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3regfs-aws-ip-ranges", daemon=True)
        self._started = False

    def start(self) -> None:
        """Start fetching (once; later calls return at once); wait for the first attempt at most ``initial_wait``."""
        with self._lock:
            if self._started or self._stop.is_set():
                return
            self._started = True
            self._thread.start()
        if not self._first_attempt.wait(self.initial_wait):
            log.warning(
                "AWS IP ranges from %s not fetched within %.1fs; all clients use CloudFront until they are",
                self.url,
                self.initial_wait,
            )

    # -- state ----------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        """True once one fetch has succeeded."""
        with self._lock:
            return self._initialized

    @property
    def successes(self) -> int:
        """Number of successful fetches so far (tests poll it to see refreshes)."""
        with self._lock:
            return self._successes

    @property
    def attempts(self) -> int:
        """Number of fetch attempts so far, failed ones included."""
        with self._lock:
            return self._attempts

    def refresh(self) -> bool:
        """Fetch and replace the ranges now; on failure log a warning, keep the old ones, return False."""
        try:
            v4, v6 = parse_ranges(self._fetch(self.url), self.regions)
        except Exception as exc:  # noqa: BLE001 - any failure of the injected fetch keeps the old ranges
            with self._lock:
                self._attempts += 1
            log.warning(
                "failed to update AWS IP ranges from %s (keeping the previous ones): %s", self.url, exc
            )
            return False
        with self._lock:
            self._v4, self._v6 = v4, v6
            self._initialized = True
            self._successes += 1
            self._attempts += 1
        log.debug(
            "AWS IP ranges updated from %s: %d IPv4, %d IPv6 intervals", self.url, len(v4[0]), len(v6[0])
        )
        return True

    def _run(self) -> None:
        try:
            self.refresh()
        finally:
            self._first_attempt.set()
        while not self._stop.wait(self.update_frequency):
            self.refresh()

    def close(self) -> None:
        """Stop the refresher thread (idempotent)."""
        with self._lock:
            self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=DEFAULT_FETCH_TIMEOUT + 1)

    # -- queries --------------------------------------------------------------------

    def contains(self, address: str | IPAddress) -> bool:
        """True when ``address`` lies in the current ranges (False for an unparseable one)."""
        ip = parse_client_ip(address) if isinstance(address, str) else address
        if ip is None:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        with self._lock:
            ranges = self._v4 if isinstance(ip, ipaddress.IPv4Address) else self._v6
        return _in(ranges, int(ip))

    def eligible(self, client_ip: str | None) -> bool:
        """True when the client should bypass CloudFront: filter initialised and address inside.

        The first call with an address starts the fetching (:meth:`start`).
        """
        if client_ip is None:
            return False
        ip = parse_client_ip(client_ip)
        if ip is None:
            log.warning("cannot parse client address %r; using CloudFront", client_ip)
            return False
        self.start()
        return self.initialized and self.contains(ip)
