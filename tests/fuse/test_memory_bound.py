"""Bounded memory for any number of writers: the daemon's peak RSS with 1, 16 and 64 concurrent ``dd``s.

docs/SEMANTICS.md ("Memory") states the bound; this checks it through a real mount of a SeaweedFS
bucket at the default options, reading the daemon's ``VmHWM`` (peak resident set) from ``/proc``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount

MiB = 1024 * 1024
RSS_TARGET = 256 * MiB


def vm_hwm(pid: int) -> int:
    """Peak resident set size of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _dd(source: str, target: str) -> None:
    done = subprocess.run(["dd", f"if={source}", f"of={target}", "bs=1M", "status=none"],
                          capture_output=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("writers", "size_mib"), [(1, 48), (4, 32), (16, 24), (64, 16)])
def test_peak_rss_stays_under_the_bound_for_any_number_of_writers(
    mount_factory: Callable[..., Mount], s3_server: LocalS3Server, s3_bucket: str, tmp_path: os.PathLike[str],
    writers: int, size_mib: int,
) -> None:
    options, env = mounts.s3_options(s3_server.driver_parameters(s3_bucket))
    mount = mount_factory("s3", options=options, env=env)
    source = os.path.join(tmp_path, "source")
    data = os.urandom(size_mib * MiB)
    with open(source, "wb") as f:
        f.write(data)
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(lambda i: _dd(source, str(mount.path / f"w{i}")), range(writers)))
    peak = vm_hwm(mount.proc.pid)
    client = s3_server.client()
    digest = hashlib.sha256(data).hexdigest()
    for i in range(writers):
        body = client.get_object(Bucket=s3_bucket, Key=f"w{i}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest
    print(f"{writers} writers of {size_mib} MiB: VmHWM {peak / MiB:.0f} MiB")
    assert peak < RSS_TARGET, f"peak RSS {peak / MiB:.0f} MiB with {writers} writers"
