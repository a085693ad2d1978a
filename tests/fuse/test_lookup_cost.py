"""Cold lookups by path through a real mount on SeaweedFS, requests counted by a proxy.

A tool that checks given digests ``stat``s blob paths on a fresh mount, with no listing first:
each new directory costs one LIST (``stat_tree``), which also brings a blob directory's ``data``
along; no HEAD at all (docs/SEMANTICS.md, "Metadata cache").
"""

from __future__ import annotations

import hashlib
import os

from s3regfs.demo.localserver import LocalS3Server
from tests.fuse.conftest import MountFactory
from tests.support.mounts import proxied_s3_mount

V2 = "docker/registry/v2"


def test_stat_of_blobs_by_path_costs_one_list_per_new_directory_and_no_head(
    mount_factory: MountFactory, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    blobs = []
    for i in range(40):  # more files than one lookup brings along, all in one fan-out directory
        hexdigest = "ab" + hashlib.sha256(str(i).encode()).hexdigest()[2:]
        key = f"{V2}/blobs/sha256/ab/{hexdigest}/data"
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"x" * (i + 1))
        blobs.append(key)
    with proxied_s3_mount(mount_factory, s3_server, s3_bucket, verifyprefixes="false") as (mount, proxy):
        proxy.reset()
        sizes = [os.stat(mount.path / key).st_size for key in blobs]
        counts = proxy.counts()
        assert mount.unmount() == 0
    assert sizes == [i + 1 for i in range(40)]
    # docker, registry, v2, blobs, sha256, ab: once each; every <hex>: once, bringing data along
    assert counts == {"ListObjectsV2": 6 + 40}, counts
