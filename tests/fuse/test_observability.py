"""Metrics (``-o metrics=HOST:PORT``) and ``s3regfs status`` on real mounts (docs/OPERATIONS.md "Metrics", "Status").

The counters are read as a Prometheus server reads them (``GET /metrics``, parsed by prometheus_client's
own parser) and must move with what the test does on the mount; the status is read with the command an
operator runs, while an upload is held in flight by the test's S3 proxy.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from s3regfs import exitcodes
from s3regfs import mountpoint as mountpoints
from s3regfs.demo.localserver import LocalS3Server, free_ports
from tests.support import mounts
from tests.support.mounts import Mount
from tests.support.s3proxy import WRITE_OPS, Hold, Rule
from tests.support.waiting import wait_for

MiB = 1 << 20
BLOB = "docker/registry/v2/blobs/sha256/ab/ab" + "0" * 62 + "/data"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``: (name, sorted labels) → value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels`` (0 when there is none)."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def _metrics_mount(mount_factory: Callable[..., Mount], server: LocalS3Server, bucket: str) -> tuple[Mount, int]:
    port = free_ports(1)[0]
    options, env = mounts.s3_options(server.driver_parameters(bucket))
    return mount_factory("s3", options={**options, "metrics": f"127.0.0.1:{port}"}, env=env), port


def test_metrics_move_with_writes_reads_and_data_cache_hits(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    mount, port = _metrics_mount(mount_factory, s3_server, s3_bucket)
    data = os.urandom(3 * MiB)
    blob = mount.path / BLOB
    start = scrape(port)
    assert value(start, "s3regfs_start_time_seconds") > 0

    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)  # below stream_threshold: one PutObject at close
    written = scrape(port)
    assert value(written, "s3regfs_s3_requests_total", operation="PutObject", outcome="ok") >= 1
    assert value(written, "s3regfs_s3_bytes_written_total") - value(start, "s3regfs_s3_bytes_written_total") >= len(data)
    assert value(written, "s3regfs_s3_request_duration_seconds_count", operation="PutObject") >= 1
    assert value(written, "s3regfs_uploads_committed_total") >= 1
    assert value(written, "s3regfs_uploads_pending") == 0 and value(written, "s3regfs_uploads_in_flight") == 0
    assert value(written, "s3regfs_fuse_operations_total", operation="write", errno="OK") >= 1
    assert value(written, "s3regfs_fuse_operations_total", operation="flush", errno="OK") >= 1

    assert blob.read_bytes() == data  # from S3, stored in the data cache on the way
    read = scrape(port)
    assert value(read, "s3regfs_s3_bytes_read_total") - value(written, "s3regfs_s3_bytes_read_total") >= len(data)
    gets = value(read, "s3regfs_s3_requests_total", operation="GetObject", outcome="ok")
    assert gets > value(written, "s3regfs_s3_requests_total", operation="GetObject", outcome="ok")
    assert value(read, "s3regfs_data_cache_misses_total") > value(written, "s3regfs_data_cache_misses_total")
    assert value(read, "s3regfs_fuse_operations_total", operation="read", errno="OK") >= 1

    assert blob.read_bytes() == data  # a second read of a blob path: from the data cache
    again = scrape(port)
    assert value(again, "s3regfs_data_cache_hits_total") > value(read, "s3regfs_data_cache_hits_total")
    assert value(again, "s3regfs_s3_requests_total", operation="GetObject") == value(
        read, "s3regfs_s3_requests_total", operation="GetObject"
    )  # no GET the second time
    assert value(again, "s3regfs_data_cache_bytes") >= len(data)
    assert value(again, "s3regfs_metadata_cache_hits_total") + value(again, "s3regfs_metadata_cache_misses_total") > 0
    for name in ("s3regfs_readahead_bytes", "s3regfs_write_buffer_bytes", "s3regfs_data_lost_files_total",
                 "s3regfs_uploads_failed_total"):
        assert (name, ()) in again, name


def test_metrics_show_a_failed_upload_and_the_errno_of_its_close(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    port = free_ports(1)[0]
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket, metrics=f"127.0.0.1:{port}") as (mount, proxy):
        before = scrape(port)
        fd = os.open(mount.path / "doomed", os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, os.urandom(MiB))
        proxy.add_rule(Rule(mounts.DENIED, op=WRITE_OPS))  # the storage refuses every write from now on
        with pytest.raises(OSError) as exc:
            os.close(fd)
        closed_with = errno.errorcode[exc.value.errno]
        after = scrape(port)
        assert value(after, "s3regfs_s3_requests_total", operation="PutObject", outcome="denied") >= 1
        assert value(after, "s3regfs_uploads_failed_total") > value(before, "s3regfs_uploads_failed_total")
        assert value(after, "s3regfs_fuse_operations_total", operation="flush", errno=closed_with) >= 1
        # the kernel's RELEASE follows the close: its last try fails too, and the data is counted lost
        wait_for(lambda: value(scrape(port), "s3regfs_data_lost_files_total") == 1, 60, "the lost file in /metrics")
        assert value(scrape(port), "s3regfs_uploads_pending") == 0  # released: nothing is waiting any more
        assert mount.unmount() == exitcodes.DATA_LOSS


def test_a_taken_metrics_address_is_one_line_before_mounting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        (tmp_path / "mnt").mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "s3regfs", "mount", "-f", "--driver", "inmemory",
             "-o", f"metrics=127.0.0.1:{port},cache_dir={tmp_path / 'cache'}", str(tmp_path / "mnt")],
            capture_output=True, text=True, timeout=60, check=False, cwd=mounts.REPO,
        )
    assert done.returncode == exitcodes.CONFIG, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and f"metrics=127.0.0.1:{port}" in errors[0] and "Traceback" not in done.stderr
    assert mountpoints.mounted_at(str(tmp_path / "mnt")) is None


def _status(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "s3regfs", "status", *args, str(path)], capture_output=True,
                          text=True, timeout=60, check=False, cwd=mounts.REPO, env={"PATH": os.environ["PATH"]})


def test_status_shows_an_upload_in_flight_and_no_secret(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    secret = s3_server.driver_parameters(s3_bucket)["secretkey"]
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket) as (mount, proxy):
        hold = Hold(seconds=120)
        rule = proxy.add_rule(Rule(hold, op="PutObject", times=1))
        (mount.path / "dir").mkdir()
        errors: list[BaseException] = []

        def write() -> None:
            try:
                (mount.path / "dir" / "held").write_bytes(b"x" * 100_000)  # the close waits for the PutObject
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            wait_for(hold.arrived.is_set, 60, "the PutObject to reach the proxy")
            shown = _status(mount.path)  # no credentials, no configuration: only the mount point
            assert shown.returncode == 0, shown.stderr
            assert "1 pending, 1 in flight, 0 committed, 0 failed" in shown.stdout, shown.stdout
            assert "in flight  /dir/held" in shown.stdout and "pending    /dir/held" in shown.stdout
            doc = json.loads(_status(mount.path, "--json").stdout)
            assert [u["path"] for u in doc["uploads"]["in_flight"]] == ["/dir/held"]
            assert doc["config"]["driver"]["parameters"]["secretkey"] == "***"
            assert doc["config"]["driver"]["parameters"]["bucket"] == s3_bucket
            assert doc["uptime_seconds"] >= 0 and doc["mountpoint"] == str(mount.path)
            assert secret not in shown.stdout and secret not in json.dumps(doc)
            assert secret not in os.getxattr(mount.path, "user.s3regfs.status").decode()
        finally:
            hold.release()
            writer.join(60)
        assert not errors and rule.fired == 1
        # the status is rendered at most every half second (one getfattr's size query and read agree)
        wait_for(lambda: json.loads(_status(mount.path, "--json").stdout)["uploads"]["pending"] == [], 30,
                 "the saved file to leave the pending uploads")
        after = json.loads(_status(mount.path, "--json").stdout)
        assert after["uploads"]["in_flight"] == []
        assert after["uploads"]["committed"] == 1
        assert after["requests"]["by_operation"]["PutObject"]["ok"] == 1
        assert os.listxattr(mount.path) == []  # read by name only: cp -a and rsync -X of the root skip it
        assert mount.unmount() == exitcodes.OK


def test_status_of_a_directory_inside_a_mount_or_outside_is_one_line(
    mount_factory: Callable[..., Mount], tmp_path: Path
) -> None:
    mount = mount_factory("inmemory")
    (mount.path / "sub").mkdir()
    for path in (mount.path / "sub", tmp_path):
        done = _status(path)
        assert done.returncode == exitcodes.USAGE and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "not the root of an s3regfs mount" in done.stderr
    shown = _status(mount.path)
    assert shown.returncode == 0 and "data cache" in shown.stdout and "S3 requests" not in shown.stdout
