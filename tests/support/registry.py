"""The real registry for end-to-end tests: Debian's ``docker-registry`` (2.8) and ``skopeo``.

Owns:

* :func:`build_oci_image`: a tiny OCI image layout written by Python (random
  gzip'd tar layers, a config and a manifest, sha256 digests), so no network
  is needed;
* :class:`RegistryServer`: one ``docker-registry serve`` process on a free
  loopback port with a config written from a storage section
  (:func:`filesystem_storage`, :func:`s3_storage`), readiness polled on
  ``/v2/`` with a deadline, stopped with SIGTERM then SIGKILL;
* :func:`skopeo_copy` and :func:`read_oci_layout`: push, pull and inspect;
* :func:`blob_files` / :func:`sha256_file`: check a registry tree on disk.

Failures raise :class:`RegistryToolError` with the command's output tail.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from s3regfs.demo.localserver import free_ports
from s3regfs.demo.registry import s3_storage  # noqa: F401 - re-exported for the tests
from tests.support import mounts

log = logging.getLogger(__name__)

REGISTRY_BIN = "docker-registry"
SKOPEO_BIN = "skopeo"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
V2_ROOT = "docker/registry/v2"


class RegistryToolError(RuntimeError):
    """docker-registry or skopeo failed; the message holds the output tail."""


def tools_missing(*extra: str) -> list[str]:
    """The registry tools (and ``extra`` ones) that are not on PATH."""
    return [name for name in (REGISTRY_BIN, SKOPEO_BIN, *extra) if shutil.which(name) is None]


def module_marks(*extra_tools: str) -> list[pytest.MarkDecorator]:
    """The ``pytestmark`` of a module that runs the registry on real mounts (and ``extra_tools``)."""
    missing = tools_missing(*extra_tools)
    unusable = mounts.fuse_unusable_reason()
    return [
        pytest.mark.registry,
        pytest.mark.fuse,
        pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}"),
        pytest.mark.skipif(unusable is not None, reason=f"real mounts unavailable: {unusable}"),
    ]


# -- OCI image -----------------------------------------------------------------------


@dataclass(frozen=True)
class OciImage:
    """What was written into an OCI layout directory."""

    layout: Path
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]

    @property
    def blob_digests(self) -> tuple[str, ...]:
        """Every blob the registry must store: layers, config and the manifest itself."""
        return (*self.layer_digests, self.config_digest, self.manifest_digest)

    @property
    def reference(self) -> str:
        return f"oci:{self.layout}:{self.tag}"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(layout: Path, data: bytes) -> str:
    digest = _digest(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.write_bytes(data)
    return digest


def _random_layer(rng: random.Random, files: int, file_size: int) -> tuple[bytes, bytes]:
    """(gzip'd tar, uncompressed tar) with ``files`` random files of ``file_size`` bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for index in range(files):
            payload = rng.randbytes(file_size)
            info = tarfile.TarInfo(f"data/file-{index:03d}.bin")
            info.size = len(payload)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(payload))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), uncompressed


def build_oci_image(
    layout: Path, tag: str = "v1", *, layers: int = 2, files_per_layer: int = 3, file_size: int = 64 * 1024,
    seed: int | None = None,
) -> OciImage:
    """Write an OCI image layout with ``layers`` random layers into ``layout`` (created)."""
    rng = random.Random(seed)
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    layer_descs, diff_ids = [], []
    for _ in range(layers):
        compressed, uncompressed = _random_layer(rng, files_per_layer, file_size)
        layer_descs.append({"mediaType": OCI_LAYER, "digest": _write_blob(layout, compressed),
                            "size": len(compressed)})
        diff_ids.append(_digest(uncompressed))
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "s3regfs test"}] * layers,
    }, sort_keys=True).encode()
    config_desc = {"mediaType": OCI_CONFIG, "digest": _write_blob(layout, config), "size": len(config)}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                           "layers": layer_descs}, sort_keys=True).encode()
    manifest_digest = _write_blob(layout, manifest)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest),
        "annotations": {REF_ANNOTATION: tag},
    }]}
    (layout / "index.json").write_text(json.dumps(index))
    return OciImage(layout, tag, manifest_digest, config_desc["digest"],
                    tuple(desc["digest"] for desc in layer_descs))


def build_oci_index(layout: Path, tag: str, architectures: tuple[str, ...] = ("amd64", "arm64"), *,
                    seed: int = 0) -> tuple[str, tuple[OciImage, ...]]:
    """A multi-architecture image in ``layout``: one image per architecture and an OCI index of them.

    Returns (the index's digest, the images); ``index.json`` names the index as ``tag``.
    """
    images = tuple(build_oci_image(layout, f"{tag}-{arch}", layers=1, files_per_layer=2, file_size=16 * 1024,
                                   seed=seed + n) for n, arch in enumerate(architectures))
    manifests = []
    for arch, image in zip(architectures, images):
        size = (layout / "blobs" / "sha256" / image.manifest_digest.split(":", 1)[1]).stat().st_size
        manifests.append({"mediaType": OCI_MANIFEST, "digest": image.manifest_digest, "size": size,
                          "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, sort_keys=True).encode()
    digest = _write_blob(layout, index)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_INDEX, "digest": digest, "size": len(index), "annotations": {REF_ANNOTATION: tag},
    }]}))
    return digest, images


def read_oci_layout(layout: Path, tag: str) -> tuple[str, dict[str, Any]]:
    """(manifest digest, manifest) of ``tag`` in an OCI layout; checks every blob's sha256."""
    index = json.loads((layout / "index.json").read_text())
    entries = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_ANNOTATION) == tag]
    if len(entries) != 1:
        raise RegistryToolError(f"{layout}: expected one manifest tagged {tag!r}, found {len(entries)}")
    digest = entries[0]["digest"]
    for blob in (layout / "blobs" / "sha256").iterdir():
        if hashlib.sha256(blob.read_bytes()).hexdigest() != blob.name:
            raise RegistryToolError(f"{blob}: content does not match its digest")
    manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes())
    return digest, manifest


# -- skopeo --------------------------------------------------------------------------


def registry_env() -> dict[str, str]:
    """The environment without ``AWS_*`` and ``REGISTRY_*``.

    The Go AWS SDK in 2.8 panics on ``AWS_CA_BUNDLE`` with its custom transport,
    and ``REGISTRY_*`` would override the config file.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REGISTRY_"))}


def _run(args: list[str], timeout: float, what: str, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise RegistryToolError(f"{what} timed out after {timeout:.0f}s: {' '.join(args)}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise RegistryToolError(f"{what} failed (exit {proc.returncode}): {' '.join(args)}\n{tail}")
    return proc


def skopeo_copy(src: str, dst: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``skopeo copy`` between ``oci:`` and plain-HTTP ``docker://`` references, digests preserved."""
    return _run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", "--preserve-digests",
                 "--src-tls-verify=false", "--dest-tls-verify=false", src, dst], timeout, "skopeo copy")


# -- the registry --------------------------------------------------------------------


def filesystem_storage(root: Path) -> dict[str, Any]:
    """A ``storage`` section for the registry's filesystem driver rooted at ``root``."""
    return {"filesystem": {"rootdirectory": str(root)}}


class RegistryServer:
    """``docker-registry serve`` on a free loopback port; a context manager."""

    def __init__(self, storage: dict[str, Any], workdir: Path, *, startup_timeout: float = 30.0) -> None:
        self.storage = dict(storage)
        self.workdir = workdir
        self.startup_timeout = startup_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` (what skopeo's ``docker://`` references use)."""
        return f"127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "registry-config.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def ref(self, repo: str, tag: str) -> str:
        return f"docker://{self.address}/{repo}:{tag}"

    def __enter__(self) -> "RegistryServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_config(self) -> Path:
        storage = dict(self.storage)
        storage.update({"delete": {"enabled": True}, "redirect": {"disable": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}})
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": storage,
            "http": {"addr": self.address},
            "health": {"storagedriver": {"enabled": False}},
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return self.config_path

    def start(self) -> "RegistryServer":
        self.port = free_ports(1)[0]
        self.write_config()
        self._log = open(self.log_path, "ab")
        self._proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.config_path)], stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                      env=registry_env())
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://{self.address}/v2/"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise RegistryToolError(f"docker-registry exited during startup:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RegistryToolError(f"docker-registry not ready at {url} after {self.startup_timeout:.0f}s:\n"
                                f"{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def garbage_collect(self, *, dry_run: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``docker-registry garbage-collect [--dry-run]`` on this registry's config."""
        if not self.config_path.exists():
            self.write_config()
        args = [REGISTRY_BIN, "garbage-collect"] + (["--dry-run"] if dry_run else []) + [str(self.config_path)]
        return _run(args, timeout, "docker-registry garbage-collect", env=registry_env())


# -- checking a registry tree ---------------------------------------------------------


def sha256_file(path: Path, chunk: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def blob_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(hex, path) of every ``blobs/sha256/xx/<hex>/data`` under a registry root."""
    base = root / V2_ROOT / "blobs" / "sha256"
    for fan in sorted(base.iterdir()):
        for blob_dir in sorted(fan.iterdir()):
            yield blob_dir.name, blob_dir / "data"


def tag_link(root: Path, repo: str, tag: str) -> Path:
    return root / V2_ROOT / "repositories" / repo / "_manifests" / "tags" / tag / "current" / "link"
