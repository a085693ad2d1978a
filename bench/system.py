"""What the benchmark needs from the machine.

Owns: the machine description (CPU, RAM, kernel), tool versions, dropping the
kernel's page/dentry/inode caches, reading a daemon's peak RSS (``VmHWM``),
waiting for a condition with a deadline, and running a command with its wall
time measured.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

log = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB
T = TypeVar("T")


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and why."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise BenchError("the benchmark must run as root (it drops the page cache and mounts FUSE filesystems)")


def drop_caches() -> None:
    """Write back dirty pages, then drop the page cache, dentries and inodes."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def peak_rss_mib(pid: int) -> float:
    """``VmHWM`` of ``pid`` (peak resident set since the process started), in MiB."""
    return status_mib(pid, "VmHWM")


def cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU seconds of ``pid`` (all its threads), or of this process when None."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_mib(pid: int, field: str) -> float:
    """A kB field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise BenchError(f"no {field} in /proc/{pid}/status")
    return int(match.group(1)) / 1024


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something other than None/False; BenchError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = check()
            if value is not None and value is not False:
                return value
        except Exception as exc:  # noqa: BLE001 - "not yet"
            last_exc = exc
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}" +
                             (f" (last error: {last_exc})" if last_exc else ""))
        time.sleep(interval)


def run_timed(args: list[str], *, timeout: float = 1800, what: str | None = None) -> tuple[float, str]:
    """Run ``args``; return (wall seconds, stdout). BenchError with stderr on failure."""
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"{what or args[0]} failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return elapsed, proc.stdout


def _first_line(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


@dataclass(frozen=True)
class Machine:
    cpu: str
    nproc: int
    ram_gib: float
    kernel: str
    os_name: str
    python: str
    fuse_max_pages_limit: str

    def describe(self) -> str:
        return (f"{self.nproc} CPUs ({self.cpu}), {self.ram_gib:.1f} GiB RAM, Linux {self.kernel} ({self.os_name}), "
                f"Python {self.python}; kernel FUSE max_pages_limit {self.fuse_max_pages_limit}")


def machine() -> Machine:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    os_name = "unknown"
    if Path("/etc/os-release").exists():
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)', Path("/etc/os-release").read_text(), re.MULTILINE)
        os_name = match.group(1) if match else os_name
    limit_path = Path("/proc/sys/fs/fuse/max_pages_limit")
    limit = limit_path.read_text().strip() if limit_path.exists() else "n/a (fixed 256)"
    return Machine(cpu, os.cpu_count() or 1, mem_kib / 1024 / 1024, platform.release(), os_name,
                   platform.python_version(), limit)


def versions(weed: str) -> dict[str, str]:
    """Versions of everything measured."""
    import boto3
    import botocore

    import s3regfs

    found = {
        "s3regfs": s3regfs.__version__,
        "boto3": f"{boto3.__version__} (botocore {botocore.__version__})",
        "s3fs-fuse": _first_line(["s3fs", "--version"]),
        "rclone": _first_line(["rclone", "version"]),
        "SeaweedFS": _first_line([weed, "version"]),
        "fio": _first_line(["fio", "--version"]),
        "libfuse (fusermount3)": _first_line(["fusermount3", "--version"]),
    }
    try:
        from importlib.metadata import version

        found["mfusepy"] = version("mfusepy")
    except Exception:  # noqa: BLE001 - informational only
        found["mfusepy"] = "unknown"
    return found


def missing_programs(names: list[str]) -> list[str]:
    return [name for name in names if shutil.which(name) is None]


def make_random_file(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes (reused when it already has that size)."""
    if path.exists() and path.stat().st_size == size:
        return path
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            chunk = os.urandom(min(4 * MiB, size - written))
            handle.write(chunk)
            written += len(chunk)
    return path


def preload(path: Path) -> None:
    """Read ``path`` once so that it is in the page cache (the source of timed writes)."""
    with open(path, "rb") as handle:
        while handle.read(8 * MiB):
            pass
