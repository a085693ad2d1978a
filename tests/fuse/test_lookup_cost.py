"""Cold lookups by path through a real mount on SeaweedFS, requests counted by a proxy.

A tool that checks given digests ``stat``s blob paths on a fresh mount, with no listing first:
each new directory costs one LIST (``stat_tree``), which also brings a blob directory's ``data``
along; no HEAD at all (docs/SEMANTICS.md, "Metadata cache").  And the lookups before bulk creates: about
two LISTs per ``metadata_ttl``, not one per new name (docs/SEMANTICS.md, "Caching and consistency").
"""

from __future__ import annotations

import hashlib
import os
import time

from s3regfs.demo.localserver import LocalS3Server
from tests.fuse.conftest import MountFactory
from tests.support.mounts import proxied_s3_mount

V2 = "docker/registry/v2"


def _blobs(s3_server: LocalS3Server, bucket: str) -> list[str]:
    client = s3_server.client()
    blobs = []
    for i in range(40):  # all in one fan-out directory
        hexdigest = "ab" + hashlib.sha256(str(i).encode()).hexdigest()[2:]
        key = f"{V2}/blobs/sha256/ab/{hexdigest}/data"
        client.put_object(Bucket=bucket, Key=key, Body=b"x" * (i + 1))
        blobs.append(key)
    return blobs


def _stat_all(mount_factory: MountFactory, s3_server: LocalS3Server, bucket: str, blobs: list[str],
              **options: str) -> dict[str, int]:
    with proxied_s3_mount(mount_factory, s3_server, bucket, verifyprefixes="false", **options) as (mount, proxy):
        proxy.reset()
        sizes = [os.stat(mount.path / key).st_size for key in blobs]
        counts = proxy.counts()
        assert mount.unmount() == 0
    assert sizes == [i + 1 for i in range(len(blobs))]
    return counts


def test_stat_of_blobs_by_path_costs_one_list_per_new_directory_and_no_head(
    mount_factory: MountFactory, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    blobs = _blobs(s3_server, s3_bucket)
    counts = _stat_all(mount_factory, s3_server, s3_bucket, blobs, lookup_subtree="32")
    # 40 files are more than a lookup brings along here, but the answer for docker (its first 33 files)
    # shows registry, v2, blobs, sha256, ab, and the first 32 <hex> whole; the 33rd <hex> holds the last
    # file shown (its data asked once); each later <hex> once, bringing its data along (46 LISTs before)
    assert counts == {"ListObjectsV2": 1 + 1 + (40 - 33)}, counts


def test_a_directory_within_lookup_subtree_is_learned_whole_by_its_first_lookup(
    mount_factory: MountFactory, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    blobs = _blobs(s3_server, s3_bucket)
    counts = _stat_all(mount_factory, s3_server, s3_bucket, blobs)  # lookup_subtree 256 (the default)
    assert counts == {"ListObjectsV2": 1}, counts  # the lookup of /docker brought all 40 blobs along


def test_bulk_creates_that_outlast_metadata_ttl_ask_for_the_listing_not_for_each_new_name(
    mount_factory: MountFactory, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    """Files created one after another for several ``metadata_ttl`` (a ``cp -r`` or ``rsync`` of many small
    files): the kernel looks up each new name first.  Per ``metadata_ttl`` that costs about two LISTs (one
    name asked, then the directory's listing), not one LIST per file; each file is one PutObject."""
    ttl = 0.5
    with proxied_s3_mount(mount_factory, s3_server, s3_bucket, metadata_ttl=f"{ttl}s") as (mount, proxy):
        target = mount.path / "bulk"
        target.mkdir()
        proxy.reset()
        data = os.urandom(4096)
        start, files = time.monotonic(), 0
        while time.monotonic() - start < 4 * ttl or files < 40:  # a deadline for the loop, not a wait
            fd = os.open(target / f"f{files:05}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
            os.close(fd)
            files += 1
        elapsed = time.monotonic() - start
        counts = proxy.counts()
        listed = sorted(os.listdir(target))
        assert mount.unmount() == 0
    assert listed == [f"f{i:05}" for i in range(files)]
    assert counts.get("PutObject") == files
    assert counts.get("HeadObject", 0) == 0
    assert counts.get("ListObjectsV2", 0) <= 2 * (elapsed / ttl + 2), (files, elapsed, counts)
