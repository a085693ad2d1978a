"""Bounded memory for any number of writers: the daemon's peak RSS with 1, 16 and 64 concurrent ``dd``s.

docs/SEMANTICS.md ("Memory") states the bound; this checks it through a real mount of a SeaweedFS
bucket at the default options, reading the daemon's ``VmHWM`` (peak resident set) from ``/proc``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount
from tests.support.procfs import cpu_seconds, status_bytes
from tests.support.waiting import wait_for

MiB = 1024 * 1024
RSS_TARGET = 256 * MiB


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
    peak = status_bytes(mount.proc.pid, "VmHWM")
    client = s3_server.client()
    digest = hashlib.sha256(data).hexdigest()
    for i in range(writers):
        body = client.get_object(Bucket=s3_bucket, Key=f"w{i}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest
    print(f"{writers} writers of {size_mib} MiB: VmHWM {peak / MiB:.0f} MiB, daemon CPU {cpu_seconds(mount.proc.pid):.2f} s")
    assert peak < RSS_TARGET, f"peak RSS {peak / MiB:.0f} MiB with {writers} writers"


# -- the kernel's names: libfuse keeps a node for each (docs/SEMANTICS.md "Memory") ------------------


def _fuse_inodes() -> int:
    """The kernel's FUSE inodes (every FUSE mount's: the tests run one at a time)."""
    for line in open("/proc/slabinfo").read().splitlines():  # noqa: SIM115 - read at once
        if line.startswith("fuse_inode "):
            return int(line.split()[1])
    raise AssertionError("no fuse_inode line in /proc/slabinfo")


def _slab_slack() -> int:
    """Freed FUSE inodes that ``/proc/slabinfo`` may still count as in use.

    SLUB counts as active every object on a CPU's own slab and on its per-CPU partial slabs
    (``cpu_partial`` objects, at most): up to ``cpus × (cpu_partial + objs_per_slab)`` freed
    inodes (140 on a 2-CPU machine) may stay counted however long one waits; 100 more for
    the rest of the system.
    """
    slab = Path("/sys/kernel/slab/fuse_inode")
    try:
        per_cpu = int((slab / "cpu_partial").read_text()) + int((slab / "objs_per_slab").read_text())
    except (OSError, ValueError):
        per_cpu = 64
    return 100 + (os.cpu_count() or 1) * per_cpu


def _status(mount: Mount) -> dict[str, object]:
    return json.loads(os.getxattr(mount.path, "user.s3regfs.status"))


def _find_files(root: Path) -> list[str]:
    done = subprocess.run(["find", str(root), "-type", "f"], capture_output=True, text=True, timeout=300, check=True)
    return sorted(done.stdout.split())


@pytest.mark.parametrize("bound", [0, 200], ids=["unbounded", "kernel_entries=200"])
def test_a_find_over_a_large_tree_leaves_at_most_kernel_entries_names_in_the_kernel(
    mount_factory: Callable[..., Mount], bound: int
) -> None:
    """With the bound, the kernel forgets the least recently listed directories (and libfuse frees their
    nodes) once more names than the bound were handed out; without it, it keeps every one."""
    mount = mount_factory("inmemory", options={"kernel_entries": bound, "metadata_ttl": 60})
    before = _fuse_inodes()
    for d in range(100):
        directory = mount.path / f"d{d:03d}"
        directory.mkdir()
        for f in range(10):
            (directory / f"f{f}").write_bytes(b"%d" % (d * 10 + f))
    held = open(mount.path / "d000" / "f3", "rb")  # noqa: SIM115 - held across the drops
    inside = subprocess.Popen([sys.executable, "-c", "import os, sys; sys.stdin.readline(); print(os.getcwd())"],
                              cwd=mount.path / "d001", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        files = _find_files(mount.path)
        assert len(files) == 1000
        if bound == 0:
            assert _fuse_inodes() >= before + 800, "unbounded: the kernel keeps (nearly) every name it was given"
            assert _status(mount)["kernel_entries"]["dropped_directories"] == 0  # type: ignore[index]
            return
        wait_for(lambda: _status(mount)["kernel_entries"]["handed"] <= bound,  # type: ignore[index]
                 30, "the names handed out to fall under the bound")
        slack = _slab_slack()
        assert bound + slack < 800, "the slab's slack leaves the check meaningful"
        wait_for(lambda: _fuse_inodes() <= before + bound + slack, 30,
                 f"the kernel to forget all but about {bound} of the mount's 1,100 names (slack {slack})")
        assert _status(mount)["kernel_entries"]["dropped_directories"] > 0  # type: ignore[index]
        assert held.read() == b"3", "a file open in a dropped directory reads on"
        cwd, _ = inside.communicate("go\n", timeout=30)
        assert cwd.strip() == str(mount.path / "d001"), "a process's working directory is never dropped"
        assert _find_files(mount.path) == files, "dropped names are looked up again: nothing is missing"
        assert (mount.path / "d000" / "f7").read_bytes() == b"7"
    finally:
        held.close()
        if inside.poll() is None:
            inside.kill()
            inside.wait()
