#!/usr/bin/env python3
"""Streams a file through the s3 driver and through boto3 on the same local server, side by side.

``python bench/bench_driver.py [--size-mib 1024] [--rounds 3] [--endpoint URL --bucket B ...]``

Each round, in a fresh subprocess per measurement (so that each side's peak
RSS is its own):

* write: the driver's ``FileWriter`` (``write`` in 1 MiB pieces, ``commit``,
  ``close``) versus boto3 ``upload_fileobj``, both fed by the same random
  pieces prepared in memory before the clock starts (no disk in the way);
* read: the driver's ``reader`` (``read`` in 1 MiB pieces) versus boto3
  ``download_fileobj`` into ``/dev/null``.

Both sides use one SeaweedFS (started here unless ``--endpoint`` is given),
the same credentials and the same client settings (checksums only when
required); the driver runs at its defaults (``chunksize`` 10 MiB,
``partsinflight`` 4), boto3 at its ``TransferConfig`` defaults (8 MiB parts,
10 threads).  It prints MB/s, the driver/boto3 ratios (median of the rounds)
and the peak RSS of each side.  Targets: ratio ≥ 0.9 both ways, driver peak
RSS < 200 MiB.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MiB = 1024 * 1024
PIECE = MiB


class PatternStream(io.RawIOBase):
    """``size`` bytes cycling through 16 random MiB pieces, made once (no generation cost while timed)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pos = 0
        self._pieces = [os.urandom(MiB) for _ in range(16)]

    def readable(self) -> bool:
        return True

    def piece(self, index: int) -> bytes:
        return self._pieces[index % 16]

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index, offset = divmod(self._pos, MiB)
            count = min(len(view) - done, self._size - self._pos, MiB - offset)
            view[done : done + count] = memoryview(self.piece(index))[offset : offset + count]
            done += count
            self._pos += count
        return done


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the child side: one measurement --------------------------------------------------------


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement; clients are made before the clock starts, so only the streaming is timed."""
    spec = json.loads(args.child)
    size = spec["size"]
    params = spec["params"]
    source = PatternStream(size)
    if spec["side"] == "driver":
        from s3regfs import malloctune
        from s3regfs.driver import factory

        malloctune.bound_malloc_retention()  # as a mount does at start-up
        driver = factory.create("s3", params)
        start = time.perf_counter()
        if spec["op"] == "write":
            writer = driver.writer("/bench/driver")
            for index in range(-(-size // PIECE)):
                piece = source.piece(index)
                writer.write(piece if size - index * PIECE >= PIECE else piece[: size - index * PIECE])
            writer.commit()
            writer.close()
            moved = writer.size()
        else:
            stream = driver.reader("/bench/driver")
            moved = 0
            while chunk := stream.read(PIECE):
                moved += len(chunk)
            stream.close()
        seconds = time.perf_counter() - start
        driver.close()
    else:
        client = boto3_client(params)
        start = time.perf_counter()
        if spec["op"] == "write":
            client.upload_fileobj(source, params["bucket"], "bench/boto3")
        else:
            with open(os.devnull, "wb") as sink:
                client.download_fileobj(params["bucket"], "bench/boto3", sink)
        seconds = time.perf_counter() - start
        moved = int(client.head_object(Bucket=params["bucket"], Key="bench/boto3")["ContentLength"])
    if moved != size:
        raise SystemExit(f"{spec['side']} {spec['op']}: moved {moved} bytes, expected {size}")
    return {"seconds": seconds, "mbps": size / seconds / 1e6, "peak_rss_mib": peak_rss_mib()}


def boto3_client(params: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=params["region"],
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=64,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=params["regionendpoint"],
        aws_access_key_id=params["accesskey"],
        aws_secret_access_key=params["secretkey"],
        config=config,
    )


# -- the parent: the run ---------------------------------------------------------------------


def measure(side: str, op: str, size: int, params: dict[str, Any]) -> dict[str, Any]:
    spec = json.dumps({"side": side, "op": op, "size": size, "params": params})
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", spec],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{side} {op} failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace, params: dict[str, Any]) -> int:
    size = args.size_mib * MiB
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_no in range(1, args.rounds + 1):
        for op in ("write", "read"):
            order = ("driver", "boto3") if round_no % 2 else ("boto3", "driver")
            for side in order:
                result = measure(side, op, size, params)
                results.setdefault((side, op), []).append(result)
                print(f"round {round_no} {op:5} {side:6} {result['mbps']:7.1f} MB/s "
                      f"({result['seconds']:.1f}s, peak RSS {result['peak_rss_mib']:.0f} MiB)", flush=True)
    summary = {}
    print(f"\n{args.size_mib} MiB, median of {args.rounds} round(s):")
    for op in ("write", "read"):
        drv = statistics.median(r["mbps"] for r in results[("driver", op)])
        b3 = statistics.median(r["mbps"] for r in results[("boto3", op)])
        drv_rss = max(r["peak_rss_mib"] for r in results[("driver", op)])
        b3_rss = max(r["peak_rss_mib"] for r in results[("boto3", op)])
        ratio = drv / b3
        summary[op] = {"driver_mbps": drv, "boto3_mbps": b3, "ratio": ratio,
                       "driver_peak_rss_mib": drv_rss, "boto3_peak_rss_mib": b3_rss}
        verdict = "ok" if ratio >= 0.9 and drv_rss < 200 else "BELOW TARGET"
        print(f"  {op:5}: driver {drv:7.1f} MB/s, boto3 {b3:7.1f} MB/s, ratio {ratio:.2f}; "
              f"peak RSS driver {drv_rss:.0f} MiB, boto3 {b3_rss:.0f} MiB  [{verdict}]")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if all(s["ratio"] >= 0.9 and s["driver_peak_rss_mib"] < 200 for s in summary.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--endpoint", help="an existing S3 endpoint (default: start a local SeaweedFS)")
    parser.add_argument("--bucket", default="bench-driver")
    parser.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID", ""))
    parser.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--json", help="also write the summary to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    if args.endpoint:
        params = {"accesskey": args.access_key, "secretkey": args.secret_key, "region": args.region,
                  "regionendpoint": args.endpoint, "forcepathstyle": True, "bucket": args.bucket}
        return run(args, params)
    from s3regfs.demo.localserver import LocalS3Server

    with LocalS3Server() as server:
        server.create_bucket(args.bucket)
        return run(args, server.driver_parameters(args.bucket))


if __name__ == "__main__":
    sys.exit(main())
