"""Real FUSE mounts for tests: ``s3regfs mount -f`` in a subprocess, waited for, torn down.

Owns :class:`Mount` (the daemon process, its mount point and its log) and
:func:`mounted`, a context manager that starts ``python -m s3regfs mount -f
--driver D -o k=v,... MOUNTPOINT``, waits with a deadline until the mount
point shows in ``/proc/self/mountinfo`` as ``fuse.s3regfs`` and answers a
stat, yields the :class:`Mount`, and on exit unmounts with ``fusermount3 -u``
(retried while busy), waits for the daemon to exit (SIGTERM, then SIGKILL as
the last resort) and detaches whatever is left, so no test leaves a mount
behind.  The daemon's stdout and stderr go to a log file that tests read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from s3regfs import mountpoint as mountpoints
from s3regfs.demo.localserver import LocalS3Server
from tests.support.s3proxy import ErrorReply, S3Proxy

REPO = Path(__file__).resolve().parent.parent.parent
OptionValue = str | int | bool | None


def fuse_unusable_reason() -> str | None:
    """Why real mounts cannot run here (None when they can)."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed"
    if os.geteuid() != 0 and not os.access("/dev/fuse", os.R_OK | os.W_OK) and not _setuid("fusermount3"):
        return "fusermount3 is not setuid and /dev/fuse is not accessible"
    return None


def _setuid(program: str) -> bool:
    path = shutil.which(program)
    return bool(path and os.stat(path).st_mode & 0o4000)


def format_options(options: Mapping[str, OptionValue]) -> str:
    """``{"ro": True, "uid": 0}`` → ``"ro,uid=0"`` (False/None entries are left out)."""
    parts = []
    for key, value in options.items():
        if value is True:
            parts.append(key)
        elif value is not False and value is not None:
            parts.append(f"{key}={value}")
    return ",".join(parts)


def mount_command(path: Path, driver: str, options: Mapping[str, OptionValue], args: Sequence[str] = ()) -> list[str]:
    """The daemon's command line."""
    cmd = [sys.executable, "-m", "s3regfs", "mount", "-f", "--driver", driver]
    text = format_options(options)
    if text:
        cmd += ["-o", text]
    return [*cmd, *args, str(path)]


@dataclass
class Mount:
    """A running (or finished) ``s3regfs mount -f`` daemon."""

    path: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    returncode: int | None = None
    expect_clean: bool = True
    events: list[str] = field(default_factory=list)

    def log(self) -> str:
        """Everything the daemon wrote so far."""
        return self.log_path.read_text(errors="replace")

    def is_mounted(self) -> bool:
        entry = mountpoints.mounted_at(str(self.path))
        return entry is not None and entry.fstype == mountpoints.FSTYPE

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 60.0) -> int:
        """The daemon's exit status (raises ``subprocess.TimeoutExpired`` past ``timeout``)."""
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def unmount(self, timeout: float = 60.0) -> int:
        """``fusermount3 -u`` (retried while busy), then the daemon's exit status."""
        deadline = time.monotonic() + timeout
        while self.is_mounted() and self.proc.poll() is None:
            done = subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True, text=True, check=False)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # busy: a process of the test still has a file open; poll again
        return self.wait_exit(max(1.0, deadline - time.monotonic()))

    def stop(self) -> int:
        """Teardown: unmount, or failing that SIGTERM/SIGKILL; never leaves a mount behind."""
        try:
            return self.unmount(timeout=60)
        except subprocess.TimeoutExpired:
            self.events.append("daemon did not exit after unmount: SIGTERM")
            return self._kill()
        finally:
            if self.is_mounted():
                self.events.append("mount left behind: detached lazily")
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], capture_output=True, check=False)

    def _kill(self) -> int:
        self.proc.terminate()
        try:
            return self.wait_exit(20)
        except subprocess.TimeoutExpired:
            self.events.append("daemon ignored SIGTERM: SIGKILL")
            self.proc.kill()
            return self.wait_exit(20)


class MountFailed(AssertionError):
    """The daemon exited or did not answer in time; the message carries its log."""


def start(
    path: Path,
    *,
    driver: str = "inmemory",
    options: Mapping[str, OptionValue] | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    ready_timeout: float = 60.0,
) -> Mount:
    """Start the daemon and wait until the mount answers; :class:`MountFailed` otherwise."""
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        pass  # an existing (maybe stale) mount point: the daemon's own checks decide
    log_path = log_path or path.parent / f"{path.name}.log"
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            mount_command(path, driver, options or {}, args), stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT, env=full_env, cwd=REPO, start_new_session=True,
        )
    mount = Mount(path, proc, log_path)
    try:
        wait_answering(mount, ready_timeout)
    except BaseException:
        mount.stop()
        raise
    return mount


def wait_answering(mount: Mount, timeout: float) -> None:
    """Poll (with a deadline) until the mount is listed and answers a stat."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if mount.proc.poll() is not None:
            raise MountFailed(f"s3regfs mount exited with {mount.proc.returncode}:\n{mount.log()}")
        if mount.is_mounted() and _answers(mount.path):
            return
        time.sleep(0.02)
    raise MountFailed(f"{mount.path} did not answer within {timeout:g}s:\n{mount.log()}")


def _answers(path: Path) -> bool:
    """The daemon answers a statfs (never served from the kernel's cache, unlike stat)."""
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno not in (errno.ENOTCONN, errno.ECONNABORTED)
    return True


@contextlib.contextmanager
def mounted(path: Path, **kwargs: object) -> Iterator[Mount]:
    """:func:`start` a mount, yield it, and always tear it down."""
    mount = start(path, **kwargs)  # type: ignore[arg-type]
    try:
        yield mount
    finally:
        if mount.returncode is None and mount.proc.poll() is None:
            mount.stop()
        elif mount.returncode is None:
            mount.returncode = mount.proc.returncode


def s3_options(params: Mapping[str, object]) -> tuple[dict[str, OptionValue], dict[str, str]]:
    """Driver parameters → (``-o`` options, environment): credentials go by environment, not ``-o``."""
    options: dict[str, OptionValue] = {}
    env: dict[str, str] = {}
    for key, value in params.items():
        if key == "accesskey":
            env["REGISTRY_STORAGE_S3_ACCESSKEY"] = str(value)
        elif key == "secretkey":
            env["REGISTRY_STORAGE_S3_SECRETKEY"] = str(value)
        elif isinstance(value, bool):
            options[key] = str(value).lower()
        else:
            options[key] = str(value)
    return options, env


DENIED = ErrorReply(403, "AccessDenied", "Access Denied")
"""The answer of a storage that refuses a request (not retried by the driver)."""


@contextlib.contextmanager
def proxied_s3_mount(
    start_mount: Callable[..., Mount], server: LocalS3Server, bucket: str, **options: OptionValue
) -> Iterator[tuple[Mount, S3Proxy]]:
    """An ``s3`` mount whose requests pass through an :class:`S3Proxy` (to count them or inject faults).

    The mount is stopped before the proxy, and its exit status is left for the test to check.
    """
    with S3Proxy(server.endpoint) as proxy:
        params, env = s3_options(server.driver_parameters(bucket, regionendpoint=proxy.endpoint))
        mount = start_mount("s3", options={**params, **options}, env=env, expect_clean=False)
        try:
            yield mount, proxy
        finally:
            if mount.proc.poll() is None:
                mount.stop()


# -- helpers for what a user does on a mount -------------------------------------------------


def run_tool(cmd: Sequence[str], *, timeout: float = 120.0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command-line tool; it must succeed without writing to stderr."""
    done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    assert done.returncode == 0 and not done.stderr, f"{cmd} -> {done.returncode}\n{done.stderr}"
    return done


def tree_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256 or "dir"}`` for everything under ``root``."""
    import hashlib

    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            found[str((base / name).relative_to(root))] = "dir"
        for name in filenames:
            found[str((base / name).relative_to(root))] = hashlib.sha256((base / name).read_bytes()).hexdigest()
    return found
