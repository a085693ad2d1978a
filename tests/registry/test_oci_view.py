"""``-o view=oci`` end to end: images pushed by the real registry, read by skopeo, umoci, oci-image-tool.

Debian's ``docker-registry`` with its own s3 driver writes a SeaweedFS bucket (skopeo pushes a
single-architecture image under two tags, a multi-architecture index with ``--all``, and a
repository named ``proj/blobs``); then the bucket is mounted with ``-o view=oci`` and every
repository directory must be an OCI image layout the tools of the trade accept (docs/VIEWS.md).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount
from tests.support.registry import (
    SKOPEO_BIN,
    V2_ROOT,
    OciImage,
    RegistryServer,
    build_oci_image,
    build_oci_index,
    s3_storage,
    sha256_file,
    skopeo_copy,
    module_marks,
)
from tests.support.s3server import BucketPool

pytestmark = module_marks("umoci", "oci-image-tool")

APP, MULTI, NESTED, DOCKER = "team/app", "team/multi", "proj/blobs", "team/docker"
REF = "org.opencontainers.image.ref.name"


@dataclass
class Pushed:
    """What the registry holds, and the mount of its bucket with ``-o view=oci``."""

    server: LocalS3Server
    bucket: str
    registry: RegistryServer
    image: OciImage
    second: OciImage
    index_digest: str
    arch_images: tuple[OciImage, ...]
    mount: Mount

    def layout(self, repo: str) -> Path:
        return self.mount.path / repo

    def served_digest(self, repo: str, tag: str) -> str:
        """The digest the registry serves for ``repo:tag`` (sha256 of its raw manifest)."""
        raw = subprocess.run([SKOPEO_BIN, "inspect", "--raw", "--tls-verify=false",
                              self.registry.ref(repo, tag)], capture_output=True, check=True, timeout=60).stdout
        return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory, s3_server: LocalS3Server,
           _s3_bucket_pool: BucketPool) -> Iterator[Pushed]:
    tmp = tmp_path_factory.mktemp("ociview")
    bucket = _s3_bucket_pool.take()
    image = build_oci_image(tmp / "image", "v1", layers=2, files_per_layer=3, file_size=64 * 1024, seed=1)
    second = build_oci_image(tmp / "image2", "v2", layers=1, files_per_layer=2, file_size=32 * 1024, seed=2)
    index_digest, arch_images = build_oci_index(tmp / "multi", "latest", seed=10)
    nested = build_oci_image(tmp / "nested", "n1", layers=1, files_per_layer=1, file_size=1024, seed=3)
    with RegistryServer(s3_storage(s3_server, bucket), tmp / "registry") as registry:
        skopeo_copy(image.reference, registry.ref(APP, "v1"))
        skopeo_copy(second.reference, registry.ref(APP, "v2"))
        subprocess.run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", "--all", "--preserve-digests",
                        "--dest-tls-verify=false", f"oci:{tmp / 'multi'}:latest", registry.ref(MULTI, "latest")],
                       check=True, capture_output=True, timeout=120)
        for repo, source in ((DOCKER, f"oci:{tmp / 'multi'}:latest"), (DOCKER, second.reference)):
            tag = "list" if "multi" in source else "v2s2"
            subprocess.run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", "--all", "--format", "v2s2",
                            "--dest-tls-verify=false", source, registry.ref(repo, tag)],
                           check=True, capture_output=True, timeout=120)
        skopeo_copy(nested.reference, registry.ref(NESTED, "n1"))
        skopeo_copy(image.reference, registry.ref("proj", "p1"))
        options, env = mounts.s3_options(s3_server.driver_parameters(bucket))
        options.update({"cache_dir": str(tmp / "cache"), "view": "oci"})
        with mounts.mounted(tmp / "mnt", driver="s3", options=options, env=env) as mount:
            yield Pushed(s3_server, bucket, registry, image, second, index_digest, arch_images, mount)
    assert mount.returncode == 0, mount.log()
    assert "Traceback" not in mount.log(), mount.log()
    _s3_bucket_pool.give_back(bucket)


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _index(layout: Path) -> dict[str, Any]:
    return json.loads((layout / "index.json").read_text())


def test_every_repository_is_a_layout_with_one_descriptor_per_tag(pushed: Pushed) -> None:
    root = pushed.mount.path
    assert sorted(os.listdir(root)) == ["proj", "team"]
    assert sorted(os.listdir(root / "team")) == ["app", "docker", "multi"]
    assert sorted(os.listdir(root / "proj")) == ["_blobs", "blobs", "index.json", "oci-layout"]
    assert json.loads((root / APP / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    app = _index(root / APP)
    assert [(m["annotations"][REF], m["digest"]) for m in app["manifests"]] == [
        ("v1", pushed.served_digest(APP, "v1")), ("v2", pushed.served_digest(APP, "v2"))]
    multi = _index(root / MULTI)["manifests"]
    assert multi == [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": pushed.index_digest,
                      "size": multi[0]["size"], "annotations": {REF: "latest"}}]
    assert pushed.served_digest(MULTI, "latest") == pushed.index_digest
    docker = {m["annotations"][REF]: m for m in _index(root / DOCKER)["manifests"]}
    assert docker["list"]["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert docker["v2s2"]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    for tag, entry in docker.items():
        assert entry["digest"] == pushed.served_digest(DOCKER, tag)


def test_every_descriptor_resolves_and_every_blob_hashes_to_its_name(pushed: Pushed) -> None:
    for repo in (APP, MULTI, DOCKER, "proj/_blobs", "proj"):
        layout = pushed.layout(repo)
        blobs = layout / "blobs" / "sha256"
        for entry in _index(layout)["manifests"]:
            blob = blobs / entry["digest"].split(":", 1)[1]
            assert blob.stat().st_size == entry["size"]
        names = os.listdir(blobs)
        assert names
        for name in names:
            assert sha256_file(blobs / name) == name
    expected = {d.split(":", 1)[1] for d in (pushed.index_digest, *(
        digest for image in pushed.arch_images for digest in image.blob_digests))}
    assert set(os.listdir(pushed.layout(MULTI) / "blobs" / "sha256")) == expected  # the index's children too


def test_skopeo_inspects_and_copies_out_with_the_registry_digests(pushed: Pushed, tmp_path: Path) -> None:
    layout = pushed.layout(APP)
    for tag, image in (("v1", pushed.image), ("v2", pushed.second)):
        inspected = json.loads(_run([SKOPEO_BIN, "inspect", f"oci:{layout}:{tag}"]).stdout)
        assert inspected["Digest"] == pushed.served_digest(APP, tag) == image.manifest_digest
        out = tmp_path / tag
        _run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", f"oci:{layout}:{tag}", f"dir:{out}"])
        manifest = json.loads((out / "manifest.json").read_bytes())
        copied = {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}
        assert copied == {image.config_digest, *image.layer_digests}
        assert "sha256:" + sha256_file(out / "manifest.json") == image.manifest_digest
        for digest in copied:
            assert "sha256:" + sha256_file(out / digest.split(":", 1)[1]) == digest
    # Docker-typed tags are in index.json with their own media types; skopeo 1.9's oci: transport skips them.
    refused = subprocess.run([SKOPEO_BIN, "inspect", "--raw", f"oci:{pushed.layout(DOCKER)}:v2s2"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "no descriptor found for reference" in refused.stderr, refused.stderr
    out = tmp_path / "multi"
    _run([SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", "--all",
          f"oci:{pushed.layout(MULTI)}:latest", f"oci:{out}:latest"])
    assert _index(out)["manifests"][0]["digest"] == pushed.index_digest


def test_umoci_lists_and_unpacks_and_oci_image_tool_validates(pushed: Pushed, tmp_path: Path) -> None:
    tags = _run(["umoci", "ls", "--layout", str(pushed.layout(APP))]).stdout.split()
    assert sorted(tags) == ["v1", "v2"]
    bundle = tmp_path / "bundle"
    _run(["umoci", "unpack", "--image", f"{pushed.layout(APP)}:v1", str(bundle)])
    assert len(list((bundle / "rootfs" / "data").iterdir())) == 3  # the image's files (one layer's names)
    # Debian's oci-image-tool (1.0.0-rc1) names the layout check "image": the layout directory, its
    # index.json and, for every ref, the manifest, config and layers with their digests and sizes.
    # (team/docker is left out: it holds Docker media types, which this strict OCI validator refuses by design)
    for repo in (APP, MULTI, "proj", "proj/_blobs"):
        layout = pushed.layout(repo)
        out = _run(["oci-image-tool", "validate", "--type", "image", str(layout)]).stdout
        assert "image file type is: imageLayout" in out and f"{layout}: OK" in out, out
        out = _run(["oci-image-tool", "validate", "--type", "imageIndex", str(layout / "index.json")]).stdout
        assert "Validation succeeded" in out, out


def test_the_url_xattr_signs_the_registry_blob_key(pushed: Pushed) -> None:
    digest = pushed.image.layer_digests[0]
    hexdigest = digest.split(":", 1)[1]
    blob = pushed.layout(APP) / "blobs" / "sha256" / hexdigest
    url = os.getxattr(blob, "user.s3regfs.url").decode()
    assert f"/{V2_ROOT}/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data" in url
    with urllib.request.urlopen(url, timeout=30) as response:
        assert hashlib.sha256(response.read()).hexdigest() == hexdigest
    with pytest.raises(OSError) as no_url:
        os.getxattr(pushed.layout(APP) / "index.json", "user.s3regfs.url")
    assert no_url.value.errno == errno.ENODATA


def test_every_change_is_erofs(pushed: Pushed) -> None:
    layout = pushed.layout(APP)
    attempts = [
        lambda: open(layout / "new", "wb"),
        lambda: open(layout / "index.json", "r+b"),
        lambda: os.unlink(layout / "oci-layout"),
        lambda: os.mkdir(layout / "d"),
        lambda: os.rename(layout / "index.json", layout / "x.json"),
    ]
    for attempt in attempts:
        with pytest.raises(OSError) as refused:
            attempt()
        assert refused.value.errno == errno.EROFS


def test_a_tag_whose_manifest_is_gone_is_left_out_and_logged_once(pushed: Pushed) -> None:
    """Last in the module: it deletes a blob from the bucket (as a careless GC would)."""
    client = pushed.server.client()
    gone = pushed.second.manifest_digest.split(":", 1)[1]
    client.delete_object(Bucket=pushed.bucket, Key=f"{V2_ROOT}/blobs/sha256/{gone[:2]}/{gone}/data")
    deadline = time.monotonic() + 15  # index.json is rebuilt after the metadata TTL (4 s)
    while [m["annotations"][REF] for m in _index(pushed.layout(APP))["manifests"]] != ["v1"]:
        assert time.monotonic() < deadline, "the dangling tag v2 is still listed"
        time.sleep(0.2)
    for _ in range(3):
        assert [m["annotations"][REF] for m in _index(pushed.layout(APP))["manifests"]] == ["v1"]
    assert len(re.findall(r"team/app:v2: the tag's manifest sha256:[0-9a-f]{64} is gone", pushed.mount.log())) == 1
