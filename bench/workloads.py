"""The measurements, one function per workload group and tool.

Owns: what each workload does and which figures it yields (:data:`METRICS`),
the data it needs in the bucket (set up with boto3, untimed), and what makes a
phase cold (a fresh daemon with an empty cache directory, then the kernel's
caches dropped; the server's own page cache is dropped too, for every tool,
boto3 included).

A group function takes the run :class:`Context`, a tool (a
:class:`~bench.tools.Mount` or the :class:`~bench.tools.Boto3Ceiling`) and the
repetition number, and returns ``{metric: value}``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import logging
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.system import (GiB, MiB, BenchError, cpu_seconds, drop_caches, peak_rss_mib, preload, run_timed,
                          wait_for)
from bench.tools import Boto3Ceiling, Mount

log = logging.getLogger(__name__)

Tool = Mount | Boto3Ceiling


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    fmt: str = "{:.0f}"


METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("seq_write", "sequential write, until in S3", "MB/s", True),
    Metric("cold_read", "cold sequential read", "MB/s", True),
    Metric("cold_read_cpu", "CPU of the client per GiB, cold sequential read (boto3: its own process)",
           "CPU-s/GiB", False, "{:.2f}"),
    Metric("rand_cold", "4 KiB random reads, cold file", "IOPS", True),
    Metric("rand_warm", "4 KiB random reads, file read before", "IOPS", True),
    Metric("rand_disk", "4 KiB random reads of a local file, page cache dropped, no FUSE (floor only)", "IOPS", True),
    Metric("small_files", "new 4 KiB files, until in S3", "files/s", True),
    Metric("find", "`find -type f`, cold (boto3: one flat listing)", "s", False, "{:.2f}"),
    Metric("ls_lR", "`ls -lR` right after", "s", False, "{:.2f}"),
    Metric("stat", "`stat` of listed files", "s", False, "{:.3f}"),
    Metric("lookup", "`stat` of files by path, fresh mount, no listing (boto3: HEAD loop)", "s", False, "{:.2f}"),
    Metric("rss_write", "peak RSS of the daemon, sequential write", "MiB", False),
    Metric("readers_mbps", "16 files read at once (aggregate)", "MB/s", True),
    Metric("readers_rss", "peak RSS of the daemon, 16 readers", "MiB", False),
    Metric("big_write", "sequential write of the big file, until in S3", "MB/s", True),
    Metric("big_rss", "peak RSS of the daemon, big write", "MiB", False),
)}


@dataclass(frozen=True)
class Sizes:
    seq: int
    big: int
    rand_file: int
    rand_seconds: float
    small_files: int
    tree_objects: int
    stat_files: int
    readers: int
    reader_size: int
    reps: int

    @classmethod
    def full(cls) -> "Sizes":
        return cls(seq=1 * GiB, big=2 * GiB, rand_file=256 * MiB, rand_seconds=8.0, small_files=1000,
                   tree_objects=10_000, stat_files=1000, readers=16, reader_size=64 * MiB, reps=3)

    @classmethod
    def short(cls) -> "Sizes":
        return cls(seq=256 * MiB, big=256 * MiB, rand_file=64 * MiB, rand_seconds=2.0, small_files=300,
                   tree_objects=1_000, stat_files=500, readers=16, reader_size=16 * MiB, reps=1)


@dataclass
class Context:
    """Everything a workload needs: the server, buckets, sizes and scratch space."""

    endpoint: str
    data_bucket: str
    tree_bucket: str
    sizes: Sizes
    workdir: Path
    boto3: Boto3Ceiling
    run_id: str
    source: Path = field(init=False)
    written: dict[tuple[str, int], str] = field(default_factory=dict)
    tree_keys: list[str] = field(default_factory=list)
    rand_key: str = ""
    rand_sha256: str = ""
    reader_keys: list[str] = field(default_factory=list)

    @property
    def client(self) -> Any:
        return self.boto3.client

    def blob_key(self, label: str) -> str:
        hexdigest = hashlib.sha256(f"{self.run_id}/{label}".encode()).hexdigest()
        return f"docker/registry/v2/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"


# -- helpers ----------------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """A writable that discards (for boto3 downloads)."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def _wait_in_s3(ctx: Context, bucket: str, key: str, size: int, timeout: float = 600) -> None:
    def present() -> bool:
        return ctx.client.head_object(Bucket=bucket, Key=key)["ContentLength"] == size

    wait_for(f"s3://{bucket}/{key} ({size} bytes)", present, timeout, interval=0.05)


def _dd_write(src: Path, dst: Path, size: int) -> float:
    elapsed, _ = run_timed(["dd", f"if={src}", f"of={dst}", "bs=1M", f"count={size // MiB}", "status=none"],
                           what=f"dd to {dst}")
    return elapsed


def _dd_read(path: Path, size: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M"], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"dd from {path} failed: {proc.stderr.strip()[-300:]}")
    copied = int(proc.stderr.strip().splitlines()[-1].split()[0])
    if copied != size:
        raise BenchError(f"dd read {copied} bytes of {path}, expected {size}")
    return elapsed


def _mb_per_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def _sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


def _fio_iops(path: Path, seconds: float, size: int = 0) -> float:
    _, out = run_timed(["fio", "--name=rand4k", f"--filename={path}", *([f"--size={size}"] if size else []),
                        "--rw=randread", "--bs=4k",
                        "--ioengine=psync", "--iodepth=1", f"--runtime={seconds}", "--time_based", "--readonly",
                        "--invalidate=1", "--fadvise_hint=1", "--randrepeat=0", "--output-format=json"],
                       what="fio", timeout=seconds + 300)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    if job.get("error"):
        raise BenchError(f"fio on {path}: error {job['error']}")
    return float(job["read"]["iops"])


def _upload(ctx: Context, key: str, source: Path, size: int) -> None:
    with open(source, "rb") as handle:
        ctx.client.upload_fileobj(_Limited(handle, size), ctx.data_bucket, key, Config=ctx.boto3.transfer)


class _Limited(io.RawIOBase):
    """The first ``size`` bytes of a file object."""

    def __init__(self, handle: Any, size: int) -> None:
        self.handle, self.left = handle, size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.handle.read(n)
        self.left -= len(data)
        return data


# -- sequential write and cold read ------------------------------------------------------


def seq(ctx: Context, tool: Tool, rep: int) -> dict[str, float]:
    """Write ``sizes.seq`` bytes (until the object is in S3), then read it back cold."""
    size, key = ctx.sizes.seq, ctx.blob_key(f"seq/{tool.name}/{rep}")
    out = _write_until_in_s3(ctx, tool, key, size, "seq_write", "rss_write")
    out["cold_read"], out["cold_read_cpu"] = _cold_read(ctx, tool, key, size)
    ctx.client.delete_object(Bucket=ctx.data_bucket, Key=key)
    return out


def big(ctx: Context, tool: Tool, rep: int) -> dict[str, float]:
    """Write ``sizes.big`` bytes once; its peak RSS is what issue 3 asks for."""
    size, key = ctx.sizes.big, ctx.blob_key(f"big/{tool.name}/{rep}")
    out = _write_until_in_s3(ctx, tool, key, size, "big_write", "big_rss")
    ctx.client.delete_object(Bucket=ctx.data_bucket, Key=key)
    return out


def _write_until_in_s3(ctx: Context, tool: Tool, key: str, size: int, speed: str, rss: str) -> dict[str, float]:
    if isinstance(tool, Boto3Ceiling):
        preload(ctx.source)
        start = time.perf_counter()
        _upload(ctx, key, ctx.source, size)
        _wait_in_s3(ctx, ctx.data_bucket, key, size)
        return {speed: _mb_per_s(size, time.perf_counter() - start)}
    tool.remount(ctx.data_bucket, ctx.endpoint)  # a fresh daemon: its VmHWM covers this write only
    target = tool.path(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    preload(ctx.source)
    start = time.perf_counter()
    _dd_write(ctx.source, target, size)
    _wait_in_s3(ctx, ctx.data_bucket, key, size)
    elapsed = time.perf_counter() - start
    return {speed: _mb_per_s(size, elapsed), rss: peak_rss_mib(tool.pid)}


def _cold_read(ctx: Context, tool: Tool, key: str, size: int) -> tuple[float, float]:
    """MB/s, and the client's CPU seconds per GiB (the daemon's, all threads; boto3: this process's)."""
    if isinstance(tool, Boto3Ceiling):
        drop_caches()
        start, cpu = time.perf_counter(), cpu_seconds()
        ctx.client.download_fileobj(ctx.data_bucket, key, _Sink(), Config=ctx.boto3.transfer)
        return _mb_per_s(size, time.perf_counter() - start), (cpu_seconds() - cpu) / (size / GiB)
    tool.remount(ctx.data_bucket, ctx.endpoint)
    drop_caches()
    cpu = cpu_seconds(tool.pid)
    speed = _mb_per_s(size, _dd_read(tool.path(key), size))
    return speed, (cpu_seconds(tool.pid) - cpu) / (size / GiB)


# -- random reads -------------------------------------------------------------------------


def setup_rand(ctx: Context) -> None:
    ctx.rand_key = ctx.blob_key("rand")
    _upload(ctx, ctx.rand_key, ctx.source, ctx.sizes.rand_file)
    with open(ctx.source, "rb") as handle:
        ctx.rand_sha256 = hashlib.sha256(handle.read(ctx.sizes.rand_file)).hexdigest()


def rand(ctx: Context, tool: Tool, rep: int) -> dict[str, float]:
    """fio 4 KiB random reads for ``rand_seconds``: on a cold file, then after one full read of it."""
    seconds = ctx.sizes.rand_seconds
    if isinstance(tool, Boto3Ceiling):
        drop_caches()
        return {"rand_cold": _boto3_ranged_rate(ctx, seconds), "rand_warm": _boto3_ranged_rate(ctx, seconds)}
    if tool.name == "floor":
        # its /blob from memory: what mfusepy and the kernel cost per 4 KiB read, nothing else; and
        # the local disk that a warm read of a cached blob reads from after drop_caches, without FUSE
        tool.remount(ctx.data_bucket, ctx.endpoint)
        drop_caches()
        memory = _fio_iops(tool.path("blob"), seconds)
        drop_caches()
        return {"rand_warm": memory, "rand_disk": _fio_iops(ctx.source, seconds, ctx.sizes.rand_file)}
    tool.remount(ctx.data_bucket, ctx.endpoint)
    drop_caches()
    path = tool.path(ctx.rand_key)
    cold = _fio_iops(path, seconds)
    if _sha256_path(path) != ctx.rand_sha256:  # the read before (untimed), and a content check
        raise BenchError(f"{tool.name} returned wrong content for {ctx.rand_key}")
    drop_caches()
    warm = _fio_iops(path, seconds)
    return {"rand_cold": cold, "rand_warm": warm}


def _boto3_ranged_rate(ctx: Context, seconds: float) -> float:
    rng = random.Random()
    blocks = ctx.sizes.rand_file // 4096
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        offset = rng.randrange(blocks) * 4096
        body = ctx.client.get_object(Bucket=ctx.data_bucket, Key=ctx.rand_key,
                                     Range=f"bytes={offset}-{offset + 4095}")["Body"].read()
        if len(body) != 4096:
            raise BenchError(f"ranged GET returned {len(body)} bytes")
        count += 1
    return count / elapsed


# -- small files --------------------------------------------------------------------------


def small(ctx: Context, tool: Tool, rep: int) -> dict[str, float]:
    """Create ``sizes.small_files`` new 4 KiB files in one directory, until all are in S3."""
    count, prefix = ctx.sizes.small_files, f"small/{tool.name}-{rep}"
    payloads = [os.urandom(4096) for _ in range(count)]
    if isinstance(tool, Boto3Ceiling):
        start = time.perf_counter()
        for index, payload in enumerate(payloads):
            ctx.client.put_object(Bucket=ctx.data_bucket, Key=f"{prefix}/f-{index:05d}", Body=payload)
    else:
        tool.remount(ctx.data_bucket, ctx.endpoint)
        directory = tool.path(prefix)
        directory.mkdir(parents=True)
        start = time.perf_counter()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        for index, payload in enumerate(payloads):  # what cp or the registry does (Python's open() adds an ioctl)
            fd = os.open(directory / f"f-{index:05d}", flags, 0o644)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
    wait_for(f"{count} small files in S3", lambda: _count_keys(ctx, ctx.data_bucket, prefix + "/") >= count,
             timeout=600, interval=0.05)
    elapsed = time.perf_counter() - start
    _delete_prefix(ctx, ctx.data_bucket, prefix + "/")
    return {"small_files": count / elapsed}


def _count_keys(ctx: Context, bucket: str, prefix: str) -> int:
    total = 0
    for page in ctx.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        total += sum(1 for obj in page.get("Contents", []) if not obj["Key"].endswith("/"))
    return total


def _delete_prefix(ctx: Context, bucket: str, prefix: str) -> None:
    for page in ctx.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            ctx.client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


# -- the registry-shaped tree ---------------------------------------------------------------


def tree_keys(total: int, seed: int = 7) -> list[str]:
    """``total`` distinct keys shaped like a registry: 30% blobs, the rest repository links.

    Each repository links 60 layers and has 10 tags (a revision link, the tag's
    ``current/link`` and its index link each).
    """
    rng = random.Random(seed)
    root = "docker/registry/v2"
    blobs = ["%064x" % rng.getrandbits(256) for _ in range(total * 3 // 10)]
    keys: dict[str, None] = dict.fromkeys(f"{root}/blobs/sha256/{h[:2]}/{h}/data" for h in blobs)
    repo = 0
    while len(keys) < total:
        base = f"{root}/repositories/team{repo % 7}/app{repo}"
        batch = [f"{base}/_layers/sha256/{h}/link" for h in rng.sample(blobs, min(len(blobs), 60))]
        for tag in range(10):
            h = rng.choice(blobs)
            batch += [f"{base}/_manifests/revisions/sha256/{h}/link", f"{base}/_manifests/tags/v{tag}/current/link",
                      f"{base}/_manifests/tags/v{tag}/index/sha256/{h}/link"]
        keys.update(dict.fromkeys(batch))
        repo += 1
    return sorted(list(keys)[:total])


def setup_tree(ctx: Context) -> None:
    """Put the tree into its bucket with 16 threads (small bodies: links hold a digest, blobs 1 KiB)."""
    ctx.tree_keys = keys = tree_keys(ctx.sizes.tree_objects)

    def put(key: str) -> None:
        body = (b"sha256:" + key.encode()[-64:]) if key.endswith("/link") else os.urandom(1024)
        ctx.client.put_object(Bucket=ctx.tree_bucket, Key=key, Body=body)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))
    found = _count_keys(ctx, ctx.tree_bucket, "")
    if found != len(keys):
        raise BenchError(f"tree bucket holds {found} objects, expected {len(keys)}")


def flat_listing_seconds(ctx: Context) -> float:
    start = time.perf_counter()
    found = _count_keys(ctx, ctx.tree_bucket, "")
    elapsed = time.perf_counter() - start
    if found != len(ctx.tree_keys):
        raise BenchError(f"flat listing found {found} keys, expected {len(ctx.tree_keys)}")
    return elapsed


def stat_sample(ctx: Context) -> list[str]:
    step = max(1, len(ctx.tree_keys) // ctx.sizes.stat_files)
    return ctx.tree_keys[::step][: ctx.sizes.stat_files]


def tree(ctx: Context, tool: Tool, rep: int, endpoint: str | None = None,
         between: Callable[[str], None] | None = None) -> dict[str, float]:
    """Cold ``find -type f``, then ``ls -lR`` and ``stat`` of ``stat_files`` listed files right after.

    ``between(phase)`` is called after each phase (the request-counting pass uses it).
    """
    if isinstance(tool, Boto3Ceiling):
        drop_caches()
        return {"find": flat_listing_seconds(ctx)}
    tool.remount(ctx.tree_bucket, endpoint or ctx.endpoint)
    drop_caches()
    if between:
        between("mount")
    mnt = str(tool.mountpoint)
    find_s, out = run_timed(["find", mnt, "-type", "f"], what="find")
    seen = out.count("\n")
    if seen != len(ctx.tree_keys):
        raise BenchError(f"find through {tool.name} saw {seen} files, expected {len(ctx.tree_keys)}")
    if between:
        between("find")
    ls_s, _ = run_timed(["ls", "-lR", mnt], what="ls -lR")
    if between:
        between("ls_lR")
    paths = [os.path.join(mnt, key) for key in stat_sample(ctx)]
    start = time.perf_counter()
    for path in paths:
        os.stat(path)
    stat_s = time.perf_counter() - start
    if between:
        between("stat")
    return {"find": find_s, "ls_lR": ls_s, "stat": stat_s}


def setup_lookup(ctx: Context) -> None:
    """The tree of the ``tree`` group (put once, if that group has not)."""
    if not getattr(ctx, "tree_keys", None):
        setup_tree(ctx)


def lookup(ctx: Context, tool: Tool, rep: int) -> dict[str, float]:
    """``stat`` of ``stat_files`` files of the tree by their paths on a fresh mount, no listing first.

    What a tool checking given digests does; boto3: a HeadObject loop over the same keys.
    """
    keys = stat_sample(ctx)
    if isinstance(tool, Boto3Ceiling):
        start = time.perf_counter()
        for key in keys:
            ctx.client.head_object(Bucket=ctx.tree_bucket, Key=key)
        return {"lookup": time.perf_counter() - start}
    tool.remount(ctx.tree_bucket, ctx.endpoint)
    drop_caches()
    paths = [os.path.join(str(tool.mountpoint), key) for key in keys]
    start = time.perf_counter()
    for path in paths:
        os.stat(path)
    return {"lookup": time.perf_counter() - start}


# -- many readers at once -------------------------------------------------------------------


def setup_readers(ctx: Context) -> None:
    ctx.reader_keys = [ctx.blob_key(f"reader/{i}") for i in range(ctx.sizes.readers)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda key: _upload(ctx, key, ctx.source, ctx.sizes.reader_size), ctx.reader_keys))


def readers(ctx: Context, tool: Tool, rep: int) -> dict[str, float]:
    """``sizes.readers`` files read at once from a cold start; aggregate MB/s and the daemon's peak RSS."""
    size, total = ctx.sizes.reader_size, ctx.sizes.reader_size * len(ctx.reader_keys)
    if isinstance(tool, Boto3Ceiling):
        drop_caches()

        def get(key: str) -> None:
            body = ctx.client.get_object(Bucket=ctx.data_bucket, Key=key)["Body"]
            while body.read(MiB):
                pass

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(ctx.reader_keys)) as pool:
            list(pool.map(get, ctx.reader_keys))
        return {"readers_mbps": _mb_per_s(total, time.perf_counter() - start)}
    tool.remount(ctx.data_bucket, ctx.endpoint)
    drop_caches()
    start = time.perf_counter()
    procs = [subprocess.Popen(["dd", f"if={tool.path(key)}", "of=/dev/null", "bs=1M", "status=none"],
                              stderr=subprocess.PIPE) for key in ctx.reader_keys]
    failures = [p.stderr.read().decode() if p.stderr else "" for p in procs if p.wait() != 0]
    elapsed = time.perf_counter() - start
    if failures:
        raise BenchError(f"{len(failures)} readers failed through {tool.name}: {failures[0][-300:]}")
    return {"readers_mbps": _mb_per_s(total, elapsed), "readers_rss": peak_rss_mib(tool.pid)}


GROUPS: dict[str, tuple[Callable[[Context], None] | None, Callable[..., dict[str, float]], tuple[str, ...]]] = {
    "seq": (None, seq, ("seq_write", "cold_read", "cold_read_cpu", "rss_write")),
    "rand": (setup_rand, rand, ("rand_cold", "rand_warm")),
    "small": (None, small, ("small_files",)),
    "tree": (setup_tree, tree, ("find", "ls_lR", "stat")),
    "lookup": (setup_lookup, lookup, ("lookup",)),
    "readers": (setup_readers, readers, ("readers_mbps", "readers_rss")),
    "big": (None, big, ("big_write", "big_rss")),
}
"""group name → (setup or None, per-tool function, metrics it yields)."""
