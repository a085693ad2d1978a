"""Lookups and listings in one directory run in parallel, and a slow request to S3 never holds up
an answer the mount has cached (FUSE_CAP_PARALLEL_DIROPS; docs/SEMANTICS.md "Caching and consistency").

Through a real mount whose requests pass a delaying proxy (a lookup's request answered after a delay:
a LIST with the name as prefix, ``stat_tree``).  The directories hold more files than a lookup brings
along, so that each name is looked up on its own."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount
from tests.support.s3proxy import Delay, Rule

DELAY = 3.0


def test_four_stats_of_uncached_names_in_one_directory_run_in_parallel(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str,
) -> None:
    client = s3_server.client()
    for i in range(4):
        client.put_object(Bucket=s3_bucket, Key=f"d/n{i}", Body=b"x" * (i + 1))
    _fill(client, s3_bucket)
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket, lookup_subtree=32) as (mount, proxy):
        os.stat(mount.path / "d")  # the directory itself is known; its entries are not
        lookups = Rule(Delay(DELAY), op="ListObjectsV2", path="/d/n[0-3]$")
        proxy.add_rule(lookups)
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            sizes = list(pool.map(lambda i: os.stat(mount.path / "d" / f"n{i}").st_size, range(4)))
        took = time.monotonic() - started
        assert sizes == [1, 2, 3, 4] and lookups.fired == 4
        print(f"4 parallel stats, each lookup delayed {DELAY:g} s: {took:.2f} s")
        assert took < 2 * DELAY  # one delay, not four in a row


def _fill(client: object, bucket: str) -> None:
    """More files under d/ than a lookup of d brings along (the mounts here: lookup_subtree=32)."""
    for i in range(40):
        client.put_object(Bucket=bucket, Key=f"d/sub/f{i:02d}", Body=b"")  # type: ignore[attr-defined]


def _stat_missing(path: os.PathLike[str]) -> None:
    try:
        os.stat(path)
    except FileNotFoundError:
        return
    raise AssertionError(f"{path} exists")


def test_a_listing_is_not_held_up_by_a_slow_lookup_in_the_same_directory(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str,
) -> None:
    client = s3_server.client()
    for name in ("a", "b"):
        client.put_object(Bucket=s3_bucket, Key=f"d/{name}", Body=b"data")
    _fill(client, s3_bucket)
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket, lookup_subtree=32) as (mount, proxy):
        os.stat(mount.path / "d")
        slow_lookup = Rule(Delay(4 * DELAY), op="ListObjectsV2", path="/d/missing$")
        proxy.add_rule(slow_lookup)
        slow = threading.Thread(target=_stat_missing, args=(mount.path / "d" / "missing",))
        slow.start()
        deadline = time.monotonic() + 30
        while not slow_lookup.fired and time.monotonic() < deadline:
            time.sleep(0.01)  # poll until the slow lookup has reached S3
        assert slow_lookup.fired
        started = time.monotonic()
        names = sorted(os.listdir(mount.path / "d"))
        took = time.monotonic() - started
        slow.join(60)
        assert names == ["a", "b", "sub"]
        print(f"ls beside a lookup delayed {4 * DELAY:g} s: {took:.2f} s")
        assert took < DELAY
