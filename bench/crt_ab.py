#!/usr/bin/env python3
"""Issue 15's A/B of the read data path: botocore against the AWS common runtime (``awscrt``).

``python bench/crt_ab.py [--size-mib 1024] [--rounds 3]`` (``pip install -e '.[bench]'`` brings awscrt)

One local SeaweedFS, one object of ``--size-mib``, read whole by each side in its own fresh
subprocess, which reports MB/s and its own CPU seconds (``getrusage``) per GiB:

* ``boto3``: ``download_fileobj`` (32 MiB parts × 8, as ``bench/run.py``) into a sink;
* ``driver``: s3regfs's s3 driver ``read_range`` in 16 MiB parts, 4 at a time: what a mount's
  readahead asks of the driver for a cold sequential read (``read_part_size``, ``readahead_max``);
* ``crt-ranges``: the same 16 MiB ranged GETs, 4 at a time, through ``awscrt.s3.S3Client``, each
  part's body gathered into one ``bytes`` from the ``on_body`` callbacks: what ``read_range`` on
  awscrt would be;
* ``crt-sink``: one ``S3Client`` GET of the whole object (split into parts by the CRT), the body
  dropped in ``on_body``: the CRT's best case with the body still entering Python;
* ``crt-file``: the same GET with ``recv_filepath`` (the CRT writes the body into a file from C,
  no Python per chunk; the file is on ``/dev/shm``).

The server's CPU is not counted: every side makes the same requests of it, but for the part size.
docs/PERFORMANCE.md ("CPU per byte: the awscrt A/B") has the results and what was kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.system import GiB, MiB, cpu_seconds  # noqa: E402
PART = 16 * MiB
IN_FLIGHT = 4
KEY = "bench/crt-ab"
SIDES = ("boto3", "driver", "crt-ranges", "crt-sink", "crt-file")


class _Sink:
    def write(self, data: Any) -> int:
        return len(data)


def _crt_client(params: dict[str, Any]) -> Any:
    from awscrt import auth, io, s3

    group = io.EventLoopGroup(2)
    bootstrap = io.ClientBootstrap(group, io.DefaultHostResolver(group))
    creds = auth.AwsCredentialsProvider.new_static(params["accesskey"], params["secretkey"])
    signing = s3.create_default_s3_signing_config(region=params["region"], credential_provider=creds)
    tls = s3.S3RequestTlsMode.DISABLED if params["regionendpoint"].startswith("http:") else s3.S3RequestTlsMode.ENABLED
    return s3.S3Client(bootstrap=bootstrap, region=params["region"], signing_config=signing, tls_mode=tls,
                       part_size=PART, throughput_target_gbps=10)


def _crt_get(client: Any, params: dict[str, Any], byte_range: str | None, on_body: Any = None,
             recv_filepath: str | None = None) -> None:
    from awscrt import http, s3

    host = params["regionendpoint"].split("://", 1)[1].rstrip("/")
    headers = [("Host", host)] + ([("Range", byte_range)] if byte_range else [])
    request = http.HttpRequest("GET", f"/{params['bucket']}/{KEY}", http.HttpHeaders(headers))
    status: list[int] = []
    made = client.make_request(type=s3.S3RequestType.GET_OBJECT, request=request, on_body=on_body,
                               recv_filepath=recv_filepath,
                               on_headers=lambda status_code, headers, **_: status.append(status_code))
    made.finished_future.result()
    if not status or status[0] not in (200, 206):
        raise SystemExit(f"GET {byte_range or 'whole'}: HTTP {status}")


def _crt_range(client: Any, params: dict[str, Any], offset: int, length: int) -> bytes:
    pieces: list[bytes] = []
    _crt_get(client, params, f"bytes={offset}-{offset + length - 1}", on_body=lambda chunk, **_: pieces.append(bytes(chunk)))
    return b"".join(pieces)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One side's read of the object; clients are made before the clock starts."""
    side, size, params = spec["side"], spec["size"], spec["params"]
    moved = 0
    lock = threading.Lock()
    if side == "boto3":
        from bench.bench_driver import boto3_client
        from boto3.s3.transfer import TransferConfig

        client = boto3_client(params)
        config = TransferConfig(multipart_chunksize=32 * MiB, max_concurrency=8)
        start, cpu = time.perf_counter(), cpu_seconds()
        client.download_fileobj(params["bucket"], KEY, _Sink(), Config=config)
        moved = size
    elif side in ("driver", "crt-ranges"):
        if side == "driver":
            from s3regfs.driver import factory

            driver = factory.create("s3", params)
            fetch = lambda offset: driver.read_range("/" + KEY, offset, min(PART, size - offset))  # noqa: E731
        else:
            crt = _crt_client(params)
            fetch = lambda offset: _crt_range(crt, params, offset, min(PART, size - offset))  # noqa: E731
        start, cpu = time.perf_counter(), cpu_seconds()
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            moved = sum(len(part) for part in pool.map(fetch, range(0, size, PART)))
    else:
        crt = _crt_client(params)
        start, cpu = time.perf_counter(), cpu_seconds()
        if side == "crt-sink":
            def count(chunk: Any, **_: Any) -> None:
                nonlocal moved
                with lock:
                    moved += len(chunk)

            _crt_get(crt, params, None, on_body=count)
        else:
            with tempfile.TemporaryDirectory(dir="/dev/shm") as scratch:
                target = os.path.join(scratch, "body")
                _crt_get(crt, params, None, recv_filepath=target)
                moved = os.path.getsize(target)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    if moved != size:
        raise SystemExit(f"{side}: read {moved} bytes, expected {size}")
    return {"mbps": size / seconds / 1e6, "cpu_per_gib": cpu / (size / GiB)}


def run(args: argparse.Namespace, params: dict[str, Any]) -> dict[str, dict[str, float]]:
    results: dict[str, list[dict[str, float]]] = {}
    for round_no in range(args.rounds):
        order = SIDES[round_no % len(SIDES):] + SIDES[: round_no % len(SIDES)]
        for side in order:
            spec = json.dumps({"side": side, "size": args.size_mib * MiB, "params": params})
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", spec],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{side} failed:\n{proc.stderr.strip()}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            results.setdefault(side, []).append(result)
            print(f"round {round_no + 1} {side:10} {result['mbps']:7.0f} MB/s  {result['cpu_per_gib']:.2f} CPU-s/GiB",
                  flush=True)
    summary = {side: {key: statistics.median(r[key] for r in rows) for key in ("mbps", "cpu_per_gib")}
               for side, rows in results.items()}
    base = summary["boto3"]["cpu_per_gib"]
    print(f"\n{args.size_mib} MiB, median of {args.rounds} round(s); client CPU only (the server's is not counted)")
    print("| side | MB/s | CPU-s per GiB | ÷ boto3 |\n|---|---|---|---|")
    for side in SIDES:
        row = summary[side]
        print(f"| {side} | {row['mbps']:.0f} | {row['cpu_per_gib']:.2f} | {row['cpu_per_gib'] / base:.2f}× |")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    from bench.bench_driver import PatternStream, boto3_client
    from s3regfs.demo.localserver import LocalS3Server

    with LocalS3Server() as server:
        server.create_bucket("bench-crt")
        params = server.driver_parameters("bench-crt")
        boto3_client(params).upload_fileobj(PatternStream(args.size_mib * MiB), "bench-crt", KEY)
        run(args, params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
