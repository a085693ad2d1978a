"""The real registry end to end: Debian's docker-registry 2.8 and skopeo against s3regfs mounts.

(a) The registry's filesystem driver rooted on an s3regfs mount of a bucket:
    push an image, pull it back (digests match), ``garbage-collect --dry-run``
    works on it, and the bucket holds the registry layout a registry using the
    s3 driver would read.
(b) The registry's own s3 driver writes the bucket while s3regfs mounts it:
    the mount shows every blob (content hashes to its path) and the links.

The image is built locally (no network): a tiny OCI layout with random layers.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount
from tests.support.registry import (
    V2_ROOT,
    OciImage,
    RegistryServer,
    blob_files,
    build_oci_image,
    filesystem_storage,
    read_oci_layout,
    s3_storage,
    sha256_file,
    skopeo_copy,
    tag_link,
    module_marks,
)

pytestmark = module_marks()

REPO, TAG = "demo/app", "v1"
METADATA_TTL = 2.0


@pytest.fixture
def image(tmp_path: Path) -> OciImage:
    return build_oci_image(tmp_path / "image", TAG, layers=2, files_per_layer=3, file_size=64 * 1024)


@pytest.fixture
def bucket_mount(tmp_path: Path, s3_server: LocalS3Server, s3_bucket: str) -> Iterator[Mount]:
    """An s3regfs mount of the test's bucket (s3 driver, short metadata TTL); must stop cleanly."""
    options, env = mounts.s3_options(s3_server.driver_parameters(s3_bucket))
    options.update({"cache_dir": str(tmp_path / "cache"), "metadata_ttl": str(METADATA_TTL)})
    with mounts.mounted(tmp_path / "mnt", driver="s3", options=options, env=env) as mount:
        yield mount
    assert mount.returncode == 0, mount.log()
    assert "Traceback" not in mount.log(), mount.log()


def _blob_key(digest: str) -> str:
    hexdigest = digest.split(":", 1)[1]
    return f"{V2_ROOT}/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"


def _bucket_objects(server: LocalS3Server, bucket: str) -> dict[str, Any]:
    client = server.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj
    return found


def test_filesystem_driver_rooted_on_the_mount(
    tmp_path: Path, image: OciImage, bucket_mount: Mount, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    with RegistryServer(filesystem_storage(bucket_mount.path), tmp_path / "registry") as registry:
        skopeo_copy(image.reference, registry.ref(REPO, TAG))
        skopeo_copy(registry.ref(REPO, TAG), f"oci:{tmp_path / 'pulled'}:{TAG}")
        gc = registry.garbage_collect(dry_run=True)

    digest, manifest = read_oci_layout(tmp_path / "pulled", TAG)  # also checks every pulled blob's sha256
    assert digest == image.manifest_digest
    assert manifest["config"]["digest"] == image.config_digest
    assert tuple(layer["digest"] for layer in manifest["layers"]) == image.layer_digests
    blobs = len(image.blob_digests)
    assert f"{blobs} blobs marked, 0 blobs and 0 manifests eligible for deletion" in gc.stdout, gc.stdout
    assert f"marking manifest {image.manifest_digest}" in gc.stdout

    # What the registry wrote through the mount is in the bucket in the registry's own layout,
    # complete and without leftovers of the uploads.
    objects = _bucket_objects(s3_server, s3_bucket)
    client = s3_server.client()
    for blob in image.blob_digests:
        body = client.get_object(Bucket=s3_bucket, Key=_blob_key(blob))["Body"].read()
        assert "sha256:" + hashlib.sha256(body).hexdigest() == blob
    current = f"{V2_ROOT}/repositories/{REPO}/_manifests/tags/{TAG}/current/link"
    assert client.get_object(Bucket=s3_bucket, Key=current)["Body"].read().decode() == image.manifest_digest
    assert not [key for key in objects if "/_uploads/" in key]


def test_registry_s3_driver_seen_through_the_mount(
    tmp_path: Path, image: OciImage, bucket_mount: Mount, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    with RegistryServer(s3_storage(s3_server, s3_bucket), tmp_path / "registry") as registry:
        skopeo_copy(image.reference, registry.ref(REPO, TAG))

    # Another writer's objects show within the metadata TTL: poll with a deadline.
    expected = {digest.split(":", 1)[1] for digest in image.blob_digests}
    deadline = time.monotonic() + METADATA_TTL + 10
    while True:
        try:
            shown = dict(blob_files(bucket_mount.path))
        except FileNotFoundError:
            shown = {}
        if set(shown) == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert set(shown) == expected
    for hexdigest, path in shown.items():
        assert sha256_file(path) == hexdigest
        assert path.stat().st_size == len(path.read_bytes())

    assert tag_link(bucket_mount.path, REPO, TAG).read_text() == image.manifest_digest
    repo_dir = bucket_mount.path / V2_ROOT / "repositories" / REPO
    for digest in (*image.layer_digests, image.config_digest):
        link = repo_dir / "_layers" / "sha256" / digest.split(":", 1)[1] / "link"
        assert link.read_text() == digest
    revision = repo_dir / "_manifests" / "revisions" / "sha256" / image.manifest_digest.split(":", 1)[1] / "link"
    assert revision.read_text() == image.manifest_digest


def test_a_push_by_the_registry_shows_on_the_mount_within_five_seconds(
    tmp_path: Path, image: OciImage, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    """Operators push, then look: at the default options the new tag and blob directories show within 5 s."""
    options, env = mounts.s3_options(s3_server.driver_parameters(s3_bucket))
    options["cache_dir"] = str(tmp_path / "cache")
    with mounts.mounted(tmp_path / "mnt", driver="s3", options=options, env=env) as mount:
        assert os.listdir(mount.path) == []  # the operator looked before the push
        with RegistryServer(s3_storage(s3_server, s3_bucket), tmp_path / "registry") as registry:
            skopeo_copy(image.reference, registry.ref(REPO, TAG))
        pushed = time.monotonic()
        expected = {digest.split(":", 1)[1] for digest in image.blob_digests}

        def shown() -> bool:
            try:
                return set(dict(blob_files(mount.path))) == expected and tag_link(mount.path, REPO, TAG).exists()
            except FileNotFoundError:
                return False

        while not shown():
            assert time.monotonic() - pushed < 5.5, "the push is not visible within 5 s"
            time.sleep(0.05)
        delay = time.monotonic() - pushed
        print(f"registry push visible after {delay:.2f} s")
        assert delay <= 5.05
        assert tag_link(mount.path, REPO, TAG).read_text() == image.manifest_digest
    assert mount.returncode == 0, mount.log()
