"""What ``/proc`` says of a process the tests started: memory fields and CPU time.

Owns the one reader of ``/proc/PID/status`` and ``/proc/PID/stat`` in the tests (the memory
bound, the soak); the benchmark has its own in bench/system.py, since it does not import the tests.
"""

from __future__ import annotations

import os
from pathlib import Path


def status_bytes(pid: int, field: str, default: int | None = None) -> int:
    """A kB field of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``) in bytes; ``default`` when absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    if default is None:
        raise AssertionError(f"no {field} in /proc/{pid}/status")
    return default


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
