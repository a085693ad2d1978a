"""The measured tools: boto3 directly (the ceiling) and three FUSE mounts of the same bucket.

Owns: how each tool is configured and started (:class:`S3regfsMount`,
:class:`S3fsMount`, :class:`RcloneMount`), waiting until a mount is live,
unmounting (``fusermount3 -u``, then waiting for the daemon to exit), emptying
a tool's cache directory for cold phases, and :class:`Boto3Ceiling`.

Every daemon runs in the foreground as our child, so its pid is the one whose
peak RSS is read. Child processes get the environment without ``AWS_*``: the
Go AWS SDK in rclone refuses ``AWS_CA_BUNDLE`` with its own HTTP transport.
"""

from __future__ import annotations

import abc
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.system import MiB, BenchError, wait_for

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    region: str


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


class Mount(abc.ABC):
    """One FUSE tool: mount a bucket at ``workdir/mnt``, stop it, clear its cache."""

    name = "mount"

    def __init__(self, workdir: Path, creds: Credentials, extra: list[str] | None = None) -> None:
        self.workdir = workdir
        self.creds = creds
        self.extra = list(extra or [])
        self.mountpoint = workdir / "mnt"
        self.cache_dir = workdir / "cache"
        self.log_path = workdir / "daemon.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        for path in (self.mountpoint, self.cache_dir):
            path.mkdir(parents=True, exist_ok=True)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise BenchError(f"{self.name} is not mounted")
        return self._proc.pid

    @abc.abstractmethod
    def command(self, bucket: str, endpoint: str) -> list[str]:
        """The foreground command that mounts ``bucket`` of ``endpoint`` at the mount point."""

    @abc.abstractmethod
    def options_text(self) -> str:
        """The options, as documented in the report (secrets left out)."""

    def environment(self) -> dict[str, str]:
        """The daemon's environment."""
        return child_env()

    def mount(self, bucket: str, endpoint: str, timeout: float = 60.0) -> None:
        if self._proc is not None:
            raise BenchError(f"{self.name} is already mounted")
        self._log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(self.command(bucket, endpoint), stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, env=self.environment(), cwd=self.workdir,
                                      start_new_session=True)

        def live() -> bool:
            if self._proc is None or self._proc.poll() is not None:
                raise BenchError(f"{self.name} exited while mounting; log:\n{self.log_tail()}")
            return os.path.ismount(self.mountpoint) and os.stat(self.mountpoint) is not None

        try:
            wait_for(f"{self.name} to mount", live, timeout)
        except BaseException:
            self.unmount()
            raise

    def unmount(self, timeout: float = 300.0) -> None:
        """Unmount and wait for the daemon (it may be finishing uploads); kill it only after ``timeout``."""
        proc, self._proc = self._proc, None
        deadline = time.monotonic() + timeout
        while os.path.ismount(self.mountpoint):
            done = subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True, text=True)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if proc is not None:
            try:
                proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not exit after unmount; killing it", self.name)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if os.path.ismount(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def clear_cache(self) -> None:
        """Empty the tool's cache directory (only while unmounted)."""
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        self.cache_dir.mkdir(parents=True)

    def remount(self, bucket: str, endpoint: str) -> None:
        """A cold start: unmount, empty the cache directory, mount again."""
        self.unmount()
        self.clear_cache()
        self.mount(bucket, endpoint)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def path(self, key: str) -> Path:
        return self.mountpoint / key


class S3regfsMount(Mount):
    """``s3regfs mount -f --driver s3`` with its defaults plus the cache directory."""

    name = "s3regfs"

    def _options(self, bucket: str, endpoint: str) -> list[str]:
        return [f"bucket={bucket}", f"regionendpoint={endpoint}", "forcepathstyle=true",
                f"region={self.creds.region}", f"cache_dir={self.cache_dir}", "log_level=warning", *self.extra]

    def environment(self) -> dict[str, str]:
        return {**child_env(), "REGISTRY_STORAGE_S3_ACCESSKEY": self.creds.access_key,
                "REGISTRY_STORAGE_S3_SECRETKEY": self.creds.secret_key}

    def command(self, bucket: str, endpoint: str) -> list[str]:
        return [sys.executable, "-m", "s3regfs", "mount", "-f", "--driver", "s3", "-o",
                ",".join(self._options(bucket, endpoint)), str(self.mountpoint)]

    def options_text(self) -> str:
        opts = ",".join(self._options("BUCKET", "http://127.0.0.1:PORT"))
        return (f"`s3regfs mount -f --driver s3 -o {opts} MNT`, credentials in REGISTRY_STORAGE_S3_ACCESSKEY/"
                "SECRETKEY (all other options default)")


class S3fsMount(Mount):
    """s3fs-fuse with a passwd file, path-style requests and its disk cache (``use_cache``)."""

    name = "s3fs"

    def _options(self, endpoint: str) -> list[str]:
        return [f"passwd_file={self.workdir / 'passwd-s3fs'}", f"url={endpoint}", "use_path_request_style",
                f"use_cache={self.cache_dir}", *self.extra]

    def command(self, bucket: str, endpoint: str) -> list[str]:
        passwd = self.workdir / "passwd-s3fs"
        passwd.write_text(f"{bucket}:{self.creds.access_key}:{self.creds.secret_key}\n")
        passwd.chmod(0o600)
        return ["s3fs", bucket, str(self.mountpoint), "-f", "-o", ",".join(self._options(endpoint))]

    def options_text(self) -> str:
        opts = ",".join(self._options("http://127.0.0.1:PORT"))
        return f"`s3fs BUCKET MNT -f -o {opts}` (all other options default: 10 MB parts, 5 parallel)"


class RcloneMount(Mount):
    """``rclone mount`` of an s3 remote (provider SeaweedFS) with ``--vfs-cache-mode off``."""

    name = "rclone"

    def command(self, bucket: str, endpoint: str) -> list[str]:
        config = self.workdir / "rclone.conf"
        config.write_text("[bench]\ntype = s3\nprovider = SeaweedFS\n"
                          f"access_key_id = {self.creds.access_key}\nsecret_access_key = {self.creds.secret_key}\n"
                          f"region = {self.creds.region}\nendpoint = {endpoint}\n")
        config.chmod(0o600)
        return ["rclone", "--config", str(config), "mount", f"bench:{bucket}", str(self.mountpoint),
                "--vfs-cache-mode", "off", "--cache-dir", str(self.cache_dir), *self.extra]

    def options_text(self) -> str:
        extra = " ".join(self.extra)
        return (f"`rclone mount bench:BUCKET MNT --vfs-cache-mode off {extra}` with an s3 remote "
                "(provider SeaweedFS, endpoint http://127.0.0.1:PORT); all other options default")


class FloorMount(Mount):
    """bench/floorfs.py: the same tree from a dict through mfusepy, no S3 (the Python FUSE floor)."""

    name = "floor"
    objects = 10_000

    def command(self, bucket: str, endpoint: str) -> list[str]:
        return [sys.executable, str(REPO / "bench" / "floorfs.py"), str(self.mountpoint), str(self.objects)]

    def options_text(self) -> str:
        return ("`python bench/floorfs.py MNT N`: the tree workload's keys served from a Python dict through "
                "mfusepy/libfuse 3 with s3regfs's readdirplus adapter (entry/attr timeout 1 s), no S3")


MOUNTS: dict[str, type[Mount]] = {"s3regfs": S3regfsMount, "s3fs": S3fsMount, "rclone": RcloneMount,
                                  "floor": FloorMount}


class Boto3Ceiling:
    """boto3 directly: the figure every mount is compared with."""

    name = "boto3"

    def __init__(self, endpoint: str, creds: Credentials, part_size: int, concurrency: int) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.part_size = part_size
        self.concurrency = concurrency
        self.transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                       max_concurrency=concurrency, use_threads=True)
        config = Config(region_name=creds.region, signature_version="s3v4", s3={"addressing_style": "path"},
                        retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=64,
                        request_checksum_calculation="when_required", response_checksum_validation="when_required")
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint,
                                                     aws_access_key_id=creds.access_key,
                                                     aws_secret_access_key=creds.secret_key, config=config)

    def options_text(self) -> str:
        return (f"boto3 `upload_file`/`download_fileobj` with `TransferConfig(multipart_chunksize="
                f"{self.part_size // MiB} MiB, max_concurrency={self.concurrency})`; `get_object` with `Range` "
                "for random reads; `put_object` in a loop; `list_objects_v2` without delimiter for the flat listing")
