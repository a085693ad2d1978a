"""The ``scale`` group: the tree workload at 10 thousand, 100 thousand and a million objects.

Owns: the stored trees (one SeaweedFS data directory per size under ``--scale-store``, generated
once and reused by later runs: the keys of :func:`bench.workloads.tree_keys` are written under
``/dev/shm`` and copied into the server's filer with ``weed filer.copy``, about 2,000 objects/s on
the reference machine, where PUTs through the S3 gateway manage about 400/s), and one measurement
per size, every request through the counting proxy (no delay):

* boto3: one flat ``list_objects_v2`` of every key (the count checked), and a HEAD loop over the
  ``stat`` sample;
* s3regfs, on a fresh mount with the page, dentry and inode caches dropped: ``find -type f`` (the count
  checked), ``ls -lR`` right after, then ``os.stat`` of 1,000 listed files; per phase the seconds,
  the HEAD and LIST requests, and the daemon's RSS after it; the peak RSS (VmHWM) over the three;
* the Python FUSE floor (``bench/floorfs.py``, the same keys from a dict, no S3; left out with
  ``--no-floor``): ``find -type f`` and ``ls -lR`` the same way, and its peak RSS: what any Python
  daemon on mfusepy pays for these walks on this machine (issue 15's targets 1 and 6 at every size).

The objects ``weed filer.copy`` writes carry an empty ETag; the three phases never read one.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.countingproxy import CountingProxy
from bench.system import BenchError, drop_caches, peak_rss_mib, run_timed, status_mib
from bench.tools import Credentials, FloorMount, S3regfsMount
from bench.workloads import tree_keys
from s3regfs.demo.localserver import LocalS3Server

log = logging.getLogger(__name__)

BUCKET = "bench-tree"
SIZES = (10_000, 100_000, 1_000_000)
STAT_FILES = 1000
PHASES = ("find", "ls_lR", "stat")


def _body(key: str) -> bytes:
    return (b"sha256:" + key.encode()[-64:]) if key.endswith("/link") else os.urandom(1024)


def _write_tree(root: Path, keys: list[str]) -> None:
    shutil.rmtree(root, ignore_errors=True)
    made: set[str] = set()
    for key in keys:
        directory = os.path.join(root, os.path.dirname(key))
        if directory not in made:
            os.makedirs(directory, exist_ok=True)
            made.add(directory)
        with open(os.path.join(root, key), "wb") as handle:
            handle.write(_body(key))


def count_keys(client: Any, prefix: str = "") -> int:
    found = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        found += page.get("KeyCount", 0)
    return found


def prepare(store: Path, objects: int) -> Path:
    """The data directory of a server holding the ``objects`` tree in ``bench-tree`` (made once)."""
    home = store / str(objects)
    marker = home / "ready.json"
    if marker.exists() and json.loads(marker.read_text()).get("objects") == objects:
        return home / "weed"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    keys = tree_keys(objects)
    started = time.perf_counter()
    staging = Path("/dev/shm") / f"s3regfs-scale-{objects}"
    try:
        _write_tree(staging, keys)
        with LocalS3Server(data_dir=home / "weed") as server:
            server.create_bucket(BUCKET)
            filer = f"http://127.0.0.1:{server.ports['filer.port']}.{server.ports['filer.port.grpc']}"
            done = subprocess.run(["weed", "filer.copy", "-c", "32", str(staging / "docker"),
                                   f"{filer}/buckets/{BUCKET}/"], capture_output=True, text=True)
            if done.returncode != 0:
                raise BenchError(f"weed filer.copy failed: {done.stderr.strip()[-400:]}")
            found = count_keys(server.client())
            if found != len(keys):
                raise BenchError(f"the {objects}-object tree holds {found} objects after the copy")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"objects": objects, "seconds": round(seconds, 1)}))
    log.info("scale: the %d-object tree generated in %.0f s", objects, seconds)
    return home / "weed"


def generation_seconds(store: Path, objects: int) -> float | None:
    marker = store / str(objects) / "ready.json"
    return json.loads(marker.read_text()).get("seconds") if marker.exists() else None


def stat_sample(keys: list[str]) -> list[str]:
    step = max(1, len(keys) // STAT_FILES)
    return keys[::step][:STAT_FILES]


def _requests(proxy: CountingProxy) -> dict[str, int]:
    counts = proxy.counts()
    proxy.reset()
    return {"HEAD": sum(v for k, v in counts.items() if k.startswith("Head")),
            "LIST": sum(v for k, v in counts.items() if k.startswith("ListObjects")),
            "other": sum(v for k, v in counts.items() if not k.startswith(("Head", "ListObjects")))}


def measure(store: Path, objects: int, workdir: Path, extra: list[str], floor: bool = True) -> dict[str, Any]:
    """One size: boto3's flat listing and HEAD loop, s3regfs's three phases, then the floor's two."""
    data_dir = prepare(store, objects)
    keys = tree_keys(objects)
    sample = stat_sample(keys)
    result: dict[str, Any] = {"objects": objects, "generated_s": generation_seconds(store, objects)}
    with LocalS3Server(data_dir=data_dir) as server, CountingProxy(server.endpoint) as proxy:
        creds = Credentials(server.access_key, server.secret_key, server.region)
        proxied = _client_via(server, proxy.endpoint)
        drop_caches()
        proxy.reset()
        start = time.perf_counter()
        found = count_keys(proxied)
        result["flat_listing_s"] = time.perf_counter() - start
        if found != objects:
            raise BenchError(f"flat listing found {found} keys, expected {objects}")
        result["flat_listing_requests"] = _requests(proxy)
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(1) as one:
            list(one.map(lambda key: proxied.head_object(Bucket=BUCKET, Key=key), sample))
        result["head_loop_s"] = time.perf_counter() - start
        proxy.reset()
        mount = S3regfsMount(workdir / f"s3regfs-{objects}", creds, extra)
        mount.mount(BUCKET, proxy.endpoint)
        try:
            drop_caches()
            _requests(proxy)
            result.update(_phases(mount, proxy, keys, sample))
        finally:
            mount.unmount()
    if floor:
        result["floor"] = _floor_phases(objects, workdir, creds)
    return result


def _floor_phases(objects: int, workdir: Path, creds: Credentials) -> dict[str, Any]:
    """``find`` and ``ls -lR`` through the Python FUSE floor over the same keys (no S3, no server)."""
    mount = FloorMount(workdir / f"floor-{objects}", creds)
    mount.objects = objects
    mount.mount(BUCKET, "", timeout=600)  # it builds its dict of the whole tree first
    try:
        mnt = str(mount.mountpoint)
        drop_caches()
        find_s, listed = run_timed(["find", mnt, "-type", "f"], what="find (floor)", timeout=7200)
        seen = listed.count("\n")
        if seen != objects:
            raise BenchError(f"find through the floor saw {seen} files, expected {objects}")
        ls_s, _ = run_timed(["ls", "-lR", mnt], what="ls -lR (floor)", timeout=7200)
        return {"find_s": find_s, "ls_lR_s": ls_s, "peak_rss_mib": peak_rss_mib(mount.pid)}
    finally:
        mount.unmount()


def _client_via(server: LocalS3Server, endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=server.access_key,
                        aws_secret_access_key=server.secret_key, region_name=server.region,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))


def _phases(mount: S3regfsMount, proxy: CountingProxy, keys: list[str], sample: list[str]) -> dict[str, Any]:
    mnt = str(mount.mountpoint)
    out: dict[str, Any] = {}
    find_s, listed = run_timed(["find", mnt, "-type", "f"], what="find", timeout=7200)
    seen = listed.count("\n")
    if seen != len(keys):
        raise BenchError(f"find through s3regfs saw {seen} files, expected {len(keys)}")
    out["find"] = {"s": find_s, **_requests(proxy), "rss_mib": status_mib(mount.pid, "VmRSS")}
    ls_s, _ = run_timed(["ls", "-lR", mnt], what="ls -lR", timeout=7200)
    out["ls_lR"] = {"s": ls_s, **_requests(proxy), "rss_mib": status_mib(mount.pid, "VmRSS")}
    paths = [os.path.join(mnt, key) for key in sample]
    start = time.perf_counter()
    for path in paths:
        os.stat(path)
    out["stat"] = {"s": time.perf_counter() - start, **_requests(proxy), "rss_mib": status_mib(mount.pid, "VmRSS")}
    out["peak_rss_mib"] = peak_rss_mib(mount.pid)
    try:
        status = json.loads(os.getxattr(mnt, "user.s3regfs.status"))
    except OSError:  # an s3regfs without the status xattr (an older commit, for a before/after run)
        status = {}
    out["metadata_cache"] = status.get("metadata_cache")
    out["kernel_entries"] = status.get("kernel_entries")
    return out


def table(result: dict[str, Any]) -> str:
    """The issue's table for one size, with the ratios its targets name."""
    n = result["objects"]
    flat, head = result["flat_listing_s"], result["head_loop_s"]
    find, ls, st = (result[p] for p in PHASES)

    def reqs(phase: dict[str, Any]) -> str:
        return f"{phase['HEAD']} HEAD, {phase['LIST']} LIST"

    fl = result.get("floor")

    def floor(key: str, unit: str = "s", digits: int = 2) -> str:
        return f"{fl[key]:.{digits}f} {unit}" if fl else "—"

    def to_floor(value: float, key: str) -> str:
        return f"; {value / fl[key]:.2f}× the floor" if fl else ""

    rows = [
        f"#### {n:,} objects" + (f" (generated in {result['generated_s']:.0f} s)" if result.get("generated_s") else ""),
        "",
        "| phase | boto3 | Python FUSE floor (no S3) | s3regfs | ratio | s3regfs requests | daemon RSS after, MiB |",
        "|---|---|---|---|---|---|---|",
        f"| `find -type f`, cold | {flat:.2f} s (one flat listing) | {floor('find_s')} | {find['s']:.2f} s "
        f"| {find['s'] / flat:.2f}× the listing{to_floor(find['s'], 'find_s')} | {reqs(find)} | {find['rss_mib']:.0f} |",
        f"| `ls -lR` right after | — | {floor('ls_lR_s')} | {ls['s']:.2f} s "
        f"| {ls['s'] / find['s']:.2f}× the `find`{to_floor(ls['s'], 'ls_lR_s')} | {reqs(ls)} "
        f"| {ls['rss_mib']:.0f} |",
        f"| `stat` of {STAT_FILES:,} listed files right after | {head:.2f} s (HEAD loop) | — | {st['s']:.3f} s "
        f"| {st['s'] / head:.2f}× the HEAD loop | {reqs(st)} | {st['rss_mib']:.0f} |",
        f"| peak daemon RSS over the phases | — | {floor('peak_rss_mib', 'MiB', 0)} | {result['peak_rss_mib']:.0f} MiB "
        "| | | |",
    ]
    meta, kernel = result.get("metadata_cache") or {}, result.get("kernel_entries") or {}
    if meta:
        rows += ["", f"After the three phases: metadata cache {meta.get('entries', 0):,} entries in memory and "
                 f"{meta.get('on_disk', 0):,} names on disk" + (
                     f"; {kernel.get('handed', 0):,} names handed to the kernel (bound {kernel.get('limit', 0):,}), "
                     f"{kernel.get('dropped_directories', 0):,} directories dropped from its cache" if kernel else "")
                 + "."]
    return "\n".join(rows)
