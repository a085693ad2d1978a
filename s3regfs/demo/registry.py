"""A small real registry for ``s3regfs demo``: one OCI image in an S3 bucket.

Owns writing that registry without any network beyond loopback:

* :func:`build_image` writes a tiny OCI image layout (two gzip'd tar layers,
  a config, a manifest; sha256 digests) in a local directory;
* :func:`serve` runs Debian's ``docker-registry`` on a storage section, :func:`skopeo_push` pushes
  an OCI layout into it (also used by ``bench/oci_view.py``);
* :func:`push_with_registry` serves Debian's ``docker-registry`` with its own
  s3 driver on the bucket and pushes the image with ``skopeo copy`` — the
  layout is then exactly what a production registry writes;
* :func:`write_layout` is the fallback when those tools are missing: the same
  blobs and link files (``docker/registry/v2/...``) written through the s3
  driver.

Both return a :class:`DemoImage` saying what the bucket now holds.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import yaml

from s3regfs.view import layout

log = logging.getLogger(__name__)

REPOSITORY = "demo/hello"
TAG = "latest"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class DemoRegistryError(RuntimeError):
    """The registry could not be written; the message says which step failed."""


@dataclass(frozen=True)
class DemoImage:
    """What the bucket holds after the push."""

    repository: str
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    pushed_by: str  # "docker-registry + skopeo" or "the s3 driver"

    @property
    def blobs(self) -> tuple[str, ...]:
        return (*self.layer_digests, self.config_digest, self.manifest_digest)


def blob_path(digest: str) -> str:
    """The driver path of a blob's data (``/docker/registry/v2/blobs/sha256/ab/<hex>/data``)."""
    return layout.blob_data(layout.Digest(*digest.split(":", 1)))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(payload), 1_700_000_000
            tar.addfile(info, io.BytesIO(payload))
    return gzip.compress(raw.getvalue(), mtime=0), raw.getvalue()


def build_image(layout: Path) -> tuple[dict[str, bytes], DemoImage]:
    """Write the OCI layout in ``layout``; return ``({digest: bytes}, image)``."""
    layers = [
        _layer({"hello.txt": b"Hello from s3regfs: this file is a layer blob in an S3 bucket.\n"}),
        _layer(
            {
                "etc/motd": b"served by the registry, mounted by s3regfs\n",
                "data/random.bin": os.urandom(64 << 10),
            }
        ),
    ]
    blobs: dict[str, bytes] = {}
    descs = []
    for compressed, _ in layers:
        digest = _digest(compressed)
        blobs[digest] = compressed
        descs.append({"mediaType": OCI_LAYER, "digest": digest, "size": len(compressed)})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/cat", "/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(raw) for _, raw in layers]},
        },
        sort_keys=True,
    ).encode()
    config_digest = _digest(config)
    blobs[config_digest] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": descs,
        },
        sort_keys=True,
    ).encode()
    manifest_digest = _digest(manifest)
    blobs[manifest_digest] = manifest
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.items():
        (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": TAG},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    layer_digests = tuple(str(d["digest"]) for d in descs)
    image = DemoImage(REPOSITORY, TAG, manifest_digest, config_digest, layer_digests, "")
    return blobs, image


# -- with the real registry ------------------------------------------------------------


def tools_available() -> bool:
    return shutil.which("docker-registry") is not None and shutil.which("skopeo") is not None


def _registry_config(path: Path, storage: dict[str, Any], port: int) -> None:
    storage = dict(
        storage,
        delete={"enabled": True},
        redirect={"disable": True},
        maintenance={"uploadpurging": {"enabled": False}},
    )
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": storage,
        "http": {"addr": f"127.0.0.1:{port}"},
        "health": {"storagedriver": {"enabled": False}},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)


def _wait_registry(proc: subprocess.Popen[bytes], port: int, logfile: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoRegistryError(f"docker-registry exited at startup; see {logfile}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise DemoRegistryError(f"docker-registry did not answer within {timeout:.0f}s; see {logfile}")


def s3_storage(server: Any, bucket: str) -> dict[str, Any]:
    """The registry's ``storage`` section for its own s3 driver on ``bucket`` of a local S3 server.

    2.8 forces path-style addressing whenever ``regionendpoint`` is set.
    """
    return {"s3": {
        "accesskey": server.access_key,
        "secretkey": server.secret_key,
        "region": server.region,
        "regionendpoint": server.endpoint,
        "bucket": bucket,
        "secure": False,
        "v4auth": True,
        "chunksize": 5 * 1024 * 1024,
    }}


@contextlib.contextmanager
def serve(workdir: Path, registry_storage: dict[str, Any], port: int) -> Iterator[str]:
    """Serve ``docker-registry`` on ``registry_storage`` at ``127.0.0.1:port`` (yielded) until the block ends."""
    config_path, logfile = workdir / "registry.yml", workdir / "registry.log"
    workdir.mkdir(parents=True, exist_ok=True)
    _registry_config(config_path, registry_storage, port)
    from s3regfs.config import environ_without

    env = environ_without("AWS_", "REGISTRY_")  # REGISTRY_* would override the registry's config file
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_registry(proc, port, logfile)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


def skopeo_push(layout: Path, tag: str, destination: str, timeout: float = 600.0) -> None:
    """``skopeo copy oci:layout:tag docker://destination`` (plain HTTP, digests preserved)."""
    result = subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            f"docker://{destination}",
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        tail = " ".join((result.stdout + result.stderr).split())[-300:]
        raise DemoRegistryError(f"skopeo copy failed: {tail}")


def push_with_registry(workdir: Path, registry_storage: dict[str, Any], port: int) -> DemoImage:
    """Serve docker-registry on ``registry_storage`` and push the demo image with skopeo."""
    layout = workdir / "oci-image"
    _, image = build_image(layout)
    with serve(workdir, registry_storage, port) as address:
        skopeo_push(layout, TAG, f"{address}/{REPOSITORY}:{TAG}")
    return replace(image, pushed_by="docker-registry + skopeo")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- without it: the same layout through the driver -----------------------------------


def _link(digest: str) -> bytes:
    return digest.encode()


def write_layout(driver: Any, workdir: Path) -> DemoImage:
    """Write the blobs and link files a registry push would write, through ``driver``."""
    blobs, image = build_image(workdir / "oci-image")
    repo = layout.repository(image.repository)
    for digest, data in blobs.items():
        driver.put_content(blob_path(digest), data)
    for digest in (*image.layer_digests, image.config_digest):
        driver.put_content(f"{repo}/_layers/sha256/{digest.split(':', 1)[1]}/link", _link(digest))
    manifest_hex = image.manifest_digest.split(":", 1)[1]
    driver.put_content(
        f"{repo}/_manifests/revisions/sha256/{manifest_hex}/link", _link(image.manifest_digest)
    )
    driver.put_content(f"{repo}/_manifests/tags/{image.tag}/current/link", _link(image.manifest_digest))
    driver.put_content(
        f"{repo}/_manifests/tags/{image.tag}/index/sha256/{manifest_hex}/link", _link(image.manifest_digest)
    )
    return replace(image, pushed_by="the s3 driver")
