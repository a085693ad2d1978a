"""The AWS IP-range filter: which clients skip CloudFront, served from a real local HTTP server."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from s3regfs.middleware.ipfilter import AWSIPFilter, FetchError, http_fetch, parse_client_ip
from tests.support.cloudfront_server import IPRangesServer, ip_ranges_document

THREAD_NAME = "s3regfs-aws-ip-ranges"


DOC = ip_ranges_document(
    [("3.5.140.0/22", "ap-northeast-2"), ("52.94.76.0/22", "us-west-2"), ("15.230.39.0/24", "US-East-1")],
    [("2600:1f18::/33", "us-east-1"), ("2a05:d07a:a000::/40", "eu-south-1")],
)


@pytest.fixture
def server() -> Iterator[IPRangesServer]:
    srv = IPRangesServer(DOC)
    yield srv
    srv.close()


@pytest.fixture
def make_filter() -> Iterator[Callable[..., AWSIPFilter]]:
    made: list[AWSIPFilter] = []

    def make(*args: Any, **kwargs: Any) -> AWSIPFilter:
        f = AWSIPFilter(*args, **kwargs)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:.1f}s")
        time.sleep(0.01)


def test_ipv4_inside_and_outside(server: IPRangesServer, make_filter: Callable[..., AWSIPFilter]) -> None:
    f = make_filter(server.url, 3600)
    assert not f.initialized and server.hits == 0  # nothing is fetched before a client address is asked about
    assert not f.eligible(None) and server.hits == 0
    assert f.eligible("3.5.140.1")
    assert f.initialized and server.hits == 1
    assert f.eligible("3.5.143.255")  # last address of the /22
    assert f.eligible("15.230.39.7")
    assert not f.eligible("3.5.144.0")  # first address after it
    assert not f.eligible("192.0.2.1")
    assert not f.eligible("127.0.0.1")


def test_ipv6_inside_outside_and_ipv4_mapped(
    server: IPRangesServer, make_filter: Callable[..., AWSIPFilter]
) -> None:
    f = make_filter(server.url, 3600)
    assert f.eligible("2600:1f18::1")
    assert f.eligible("2600:1f18:7fff:ffff:ffff:ffff:ffff:ffff")
    assert not f.eligible("2600:1f18:8000::")
    assert not f.eligible("2001:db8::1")
    assert f.eligible("::ffff:52.94.76.10")  # IPv4-mapped: tested against the IPv4 ranges
    assert not f.eligible("::ffff:192.0.2.1")


def test_client_address_forms(server: IPRangesServer, make_filter: Callable[..., AWSIPFilter]) -> None:
    f = make_filter(server.url, 3600)
    assert f.eligible("52.94.76.1:443")
    assert f.eligible("[2600:1f18::1]:443")
    assert f.eligible(" 52.94.76.1 ")
    assert not f.eligible(None)
    assert parse_client_ip("not-an-ip") is None


def test_unparseable_client_goes_via_cloudfront_with_warning(
    server: IPRangesServer, make_filter: Callable[..., AWSIPFilter], caplog: pytest.LogCaptureFixture
) -> None:
    f = make_filter(server.url, 3600)
    with caplog.at_level(logging.WARNING, "s3regfs.middleware.ipfilter"):
        assert not f.eligible("client.example")
    assert "cannot parse client address 'client.example'" in caplog.text


def test_region_filter_is_case_insensitive(
    server: IPRangesServer, make_filter: Callable[..., AWSIPFilter]
) -> None:
    f = make_filter(server.url, 3600, ["us-east-1", "US-WEST-2"])
    assert f.eligible("15.230.39.1")  # region "US-East-1" in the document
    assert f.eligible("52.94.76.1")  # us-west-2
    assert f.eligible("2600:1f18::1")  # us-east-1 (IPv6)
    assert not f.eligible("3.5.140.1")  # ap-northeast-2: AWS, but not a listed region
    assert not f.eligible("2a05:d07a:a000::1")  # eu-south-1


def test_invalid_cidrs_are_skipped(
    server: IPRangesServer, make_filter: Callable[..., AWSIPFilter], caplog: pytest.LogCaptureFixture
) -> None:
    server.set(
        ip_ranges_document(
            [
                ("52.94.76.0/22", "us-west-2"),
                ("10.0.0.1", "us-west-2"),  # no /n: invalid, as Go's ParseCIDR
                ("300.1.2.0/24", "us-west-2"),
                ("54.0.0.0/40", "us-west-2"),
                ("2600:1f18::/33", "us-west-2"),  # IPv6 in the IPv4 list
                ("not a cidr", "us-west-2"),
                ("18.34.0.0/19", "us-west-2"),
            ],
            [("2a05:d07a:a000::/40", "eu-south-1"), ("2600:zz::/33", "us-east-1"), ("18.0.0.0/8", "x")],
        )
    )
    with caplog.at_level(logging.WARNING, "s3regfs.middleware.ipfilter"):
        f = make_filter(server.url, 3600)
        f.start()
    assert f.initialized
    assert f.eligible("52.94.76.1") and f.eligible("18.34.31.255") and f.eligible("2a05:d07a:a000::5")
    assert not f.eligible("10.0.0.1")
    assert not f.eligible("54.0.0.1")
    assert not f.eligible("2600:1f18::1")
    assert not f.eligible("18.0.0.1")
    for bad in ("'10.0.0.1'", "'300.1.2.0/24'", "'54.0.0.0/40'", "'not a cidr'", "'2600:zz::/33'"):
        assert bad in caplog.text


def test_refresh_picks_up_new_ranges(server: IPRangesServer, make_filter: Callable[..., AWSIPFilter]) -> None:
    f = make_filter(server.url, 0.05)
    assert not f.eligible("198.51.100.7")
    server.set(ip_ranges_document([("198.51.100.0/24", "us-east-1")]))
    wait_for(lambda: f.eligible("198.51.100.7"))
    assert not f.eligible("3.5.140.1")  # the old list was replaced, not merged


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, b"internal error", "failed to fetch network data. response = internal error"),
        (200, b"{not json", "invalid ip ranges document"),
        (200, b'{"prefixes": 7}', "invalid ip ranges document"),
    ],
)
def test_failed_fetch_keeps_the_last_good_ranges(
    server: IPRangesServer,
    make_filter: Callable[..., AWSIPFilter],
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    expected: str,
) -> None:
    f = make_filter(server.url, 0.05)
    assert f.eligible("3.5.140.1")
    with caplog.at_level(logging.WARNING, "s3regfs.middleware.ipfilter"):
        server.set(body, status)
        failures_before = f.attempts - f.successes
        wait_for(lambda: f.attempts - f.successes >= failures_before + 2)
    assert f.initialized
    assert f.eligible("3.5.140.1") and f.eligible("2600:1f18::1")
    assert expected in caplog.text
    assert "keeping the previous ones" in caplog.text


def test_not_initialised_means_never_eligible_until_a_fetch_succeeds(
    server: IPRangesServer, make_filter: Callable[..., AWSIPFilter]
) -> None:
    server.set(b"down", 503)
    f = make_filter(server.url, 0.05)
    assert not f.initialized
    assert not f.eligible("3.5.140.1")
    server.set(DOC, 200)
    wait_for(lambda: f.initialized)
    assert f.eligible("3.5.140.1")


def test_a_hanging_fetch_never_blocks_startup_or_calls(make_filter: Callable[..., AWSIPFilter]) -> None:
    release = threading.Event()

    def hanging_fetch(url: str) -> bytes:
        release.wait(30)
        raise FetchError("gave up")

    start = time.monotonic()
    f = make_filter("http://unused.invalid/", 3600, fetch=hanging_fetch, initial_wait=0.2)
    assert time.monotonic() - start < 5
    call_start = time.monotonic()
    assert not f.eligible("3.5.140.1")
    assert time.monotonic() - call_start < 0.5
    release.set()


def test_injected_fetch_gets_the_configured_url(make_filter: Callable[..., AWSIPFilter]) -> None:
    seen: list[str] = []

    def fetch(url: str) -> bytes:
        seen.append(url)
        return json.dumps(DOC).encode()

    f = make_filter("https://ranges.example/ip.json", 3600, fetch=fetch)
    assert seen == []
    assert f.eligible("3.5.140.1")
    assert seen == ["https://ranges.example/ip.json"]


def test_close_stops_the_refresher(server: IPRangesServer) -> None:
    f = AWSIPFilter(server.url, 0.02)
    f.start()
    wait_for(lambda: f.successes >= 2)
    f.close()
    # The refresher thread is the only fetcher: once it has exited, no fetch can happen.
    assert f._thread.name == THREAD_NAME and not f._thread.is_alive()
    f.close()  # idempotent


def test_default_fetch_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/ip-ranges.json"
        start = time.monotonic()
        with pytest.raises(FetchError, match="failed to fetch network data"):
            http_fetch(url, timeout=0.3)
        assert time.monotonic() - start < 5


def test_non_positive_update_frequency_is_refused() -> None:
    with pytest.raises(ValueError, match="update frequency must be positive"):
        AWSIPFilter("http://unused.invalid/", 0, fetch=lambda url: b"{}")
