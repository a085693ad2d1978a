"""The mount point: can we mount there, is something mounted there, and unmounting it.

Owns the checks :func:`s3regfs.mount.run_mount` makes before it mounts (each
failure is a :class:`~s3regfs.errors.UserError` that names the cause and the
fix), the parsing of ``/proc/self/mountinfo``, and the one way we unmount
(``fusermount3 -u [-z]``, ``umount [-l]`` as root when fusermount3 is missing).

An *automount point* (an ``autofs`` mount, as ``x-systemd.automount`` makes)
is mounted on, not refused: systemd's automount expects the mount on top of it.
A *stale* mount point ("Transport endpoint is not connected": the FUSE daemon
died without unmounting) of type ``fuse.s3regfs`` is detached lazily and
reused: nothing is served there any more, so nothing can be lost.  A stale
mount of another filesystem, or any live mount, is left alone with a message
saying how to unmount it.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass

from s3regfs import exitcodes
from s3regfs.errors import UserError

log = logging.getLogger(__name__)

FSTYPE = "fuse.s3regfs"
AUTOFS = "autofs"
MOUNTINFO = "/proc/self/mountinfo"
_STALE = (errno.ENOTCONN, errno.ECONNABORTED)
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    """One line of ``/proc/self/mountinfo``."""

    mount_point: str
    fstype: str
    source: str
    device: str  # "major:minor"


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """The entries of a mountinfo text, in mount order (later entries are on top)."""
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        entries.append(MountEntry(_unescape(fields[4]), tail[0], _unescape(tail[1]), fields[2]))
    return entries


def mounted_at(path: str) -> MountEntry | None:
    """The topmost mount whose mount point is ``path`` (a canonical absolute path), if any."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError:
        return None
    found = None
    for entry in parse_mountinfo(text):
        if entry.mount_point == path:
            found = entry
    return found


def answers(path: str, timeout: float = 10.0) -> bool:
    """The mount at ``path`` answers a statfs, asked by a child process.

    Never ask from the daemon's own process: a daemon thread blocked in a
    request to its own mount when the daemon is killed cannot be interrupted,
    and the process could never exit.
    """
    cmd = ["stat", "--file-system", "--format=%t", "--", path] if shutil.which("stat") else [
        sys.executable, "-c", "import os, sys; os.statvfs(sys.argv[1])", path]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unmount(path: str, *, lazy: bool = False, timeout: float = 60.0) -> tuple[bool, str]:
    """Unmount ``path``; ``(True, "")`` or ``(False, why)``.  ``lazy`` detaches a busy mount."""
    if shutil.which("fusermount3"):
        cmd = ["fusermount3", "-u", *(["-z"] if lazy else []), "--", path]
    else:
        cmd = ["umount", *(["-l"] if lazy else []), "--", path]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, done.stderr.strip()


def prepare(requested: str) -> str:
    """Check that ``requested`` can be mounted on; return its canonical absolute path.

    Raises :class:`UserError` (exit code ``MOUNT``) with what to do otherwise.
    """
    check_fuse_available()
    path = os.path.realpath(os.path.abspath(requested))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _error(f"mount point {path} does not exist; create it first: mkdir -p {path}") from None
    except OSError as exc:
        if exc.errno in _STALE:
            return _clear_stale(path)
        raise _error(f"mount point {path}: {exc.strerror}; choose a directory you can access") from None
    if not stat.S_ISDIR(st.st_mode):
        raise _error(f"mount point {path} is not a directory; mount on an empty directory")
    entry = mounted_at(path)
    if entry is not None and entry.fstype == AUTOFS:
        # An automount point (x-systemd.automount): the automount unit triggered the mount unit that runs us, and
        # expects the mount on top of its autofs mount. Never list it: that would wait for this very mount.
        log.debug("%s is an automount point (autofs from %s); mounting on top of it", path, entry.source)
        return path
    if entry is not None and _is_stale(path, entry):
        return _clear_stale(path)
    if entry is not None:
        raise _error(
            f"{path} is already a mount point ({entry.fstype} from {entry.source}); "
            f"unmount it first (fusermount3 -u {path}) or choose another directory"
        )
    _warn_if_not_empty(path)
    return path


def _is_stale(path: str, entry: MountEntry) -> bool:
    """A FUSE mount whose daemon is gone (its root's attributes may still be cached: ask statfs)."""
    if not entry.fstype.startswith("fuse"):
        return False
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno in _STALE
    return False


def check_fuse_available() -> None:
    """FUSE is usable: ``/dev/fuse`` exists, and an unprivileged user has ``fusermount3``."""
    if not os.path.exists("/dev/fuse"):
        raise _error(
            "FUSE is not available: /dev/fuse is missing; load the kernel module (modprobe fuse) or, in a "
            "container, pass the device (--device /dev/fuse --cap-add SYS_ADMIN)"
        )
    if os.geteuid() != 0 and not shutil.which("fusermount3"):
        raise _error("fusermount3 is not installed; install the fuse3 package")


def _clear_stale(path: str) -> str:
    entry = mounted_at(path)
    fstype = entry.fstype if entry else "unknown type"
    if fstype != FSTYPE:
        raise _error(
            f"mount point {path} is a stale mount ({fstype}: Transport endpoint is not connected, its daemon "
            f"is gone); detach it with: fusermount3 -u -z {path} (or umount -l {path}), then mount again"
        )
    log.warning("%s is a stale s3regfs mount whose daemon is gone (Transport endpoint is not connected); "
                "detaching it", path)
    ok, why = unmount(path, lazy=True)
    if not ok:
        raise _error(
            f"mount point {path} is a stale s3regfs mount and could not be detached ({why}); run: "
            f"fusermount3 -u -z {path} (as the user who mounted it, or root), then mount again"
        )
    return prepare(path)


def _warn_if_not_empty(path: str) -> None:
    try:
        with os.scandir(path) as it:
            count = sum(1 for _ in it)
    except OSError:
        return
    if count:
        log.warning("mount point %s is not empty: its %d entries are hidden while s3regfs is mounted", path, count)


def _error(message: str) -> UserError:
    return UserError(message, exitcodes.MOUNT)
