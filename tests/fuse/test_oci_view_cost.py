"""``-o view=oci`` through a real mount, requests counted by a proxy: what ``ls`` of the view costs.

The bucket holds a registry layout written with boto3 (blobs and links where the registry puts
them); docs/VIEWS.md "Freshness and cost".
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from s3regfs.demo.localserver import LocalS3Server
from tests.fuse.conftest import MountFactory
from tests.support.mounts import proxied_s3_mount, run_tool

V2 = "docker/registry/v2"


def _put_image(client: Any, bucket: str, repo: str, tags: list[str]) -> None:
    config = json.dumps({"repo": repo}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                                      "size": len(config)}, "layers": []}).encode()
    for data, kind in ((config, "_layers"), (manifest, "_manifests/revisions")):
        hexdigest = hashlib.sha256(data).hexdigest()
        client.put_object(Bucket=bucket, Key=f"{V2}/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data", Body=data)
        client.put_object(Bucket=bucket, Key=f"{V2}/repositories/{repo}/{kind}/sha256/{hexdigest}/link",
                          Body=f"sha256:{hexdigest}".encode())
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    for tag in tags:
        client.put_object(Bucket=bucket, Key=f"{V2}/repositories/{repo}/_manifests/tags/{tag}/current/link",
                          Body=digest.encode())


def test_ls_of_the_view_root_lists_and_reads_no_repository(
    mount_factory: MountFactory, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    repos = [f"team/app{i:02d}" for i in range(20)] + [f"solo{i:02d}" for i in range(10)]
    for repo in repos:
        _put_image(client, s3_bucket, repo, ["v1", "v2"])
    # verifyprefixes off: on SeaweedFS it costs one more small LIST per directory listed (docs/DRIVERS.md)
    with proxied_s3_mount(mount_factory, s3_server, s3_bucket, view="oci", verifyprefixes="false") as (mount, proxy):
        proxy.reset()
        listing = run_tool(["ls", "-l", str(mount.path)]).stdout
        listing += run_tool(["ls", "-l", str(mount.path / "team")]).stdout
        root_counts = proxy.counts()
        proxy.reset()
        entries = sorted(os.listdir(mount.path / "solo03"))
        index = json.loads((mount.path / "solo03" / "index.json").read_bytes())
        repo_counts = proxy.counts()
        assert mount.unmount() == 0
    assert listing.count("app") == 20 and listing.count("solo") == 10
    # ls -l of the root and of a namespace: one listing each, no read of any repository
    assert root_counts == {"ListObjectsV2": 2}, root_counts
    assert entries == ["blobs", "index.json", "oci-layout"]
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["v1", "v2"]
    # one repository: its listing, the tag listing, two tag links, one manifest read
    reads = repo_counts.get("GetObject", 0) + repo_counts.get("GetObjectRange", 0)
    assert reads == 3 and repo_counts.get("HeadObject", 0) == 0, repo_counts
    assert repo_counts.get("ListObjectsV2", 0) <= 3, repo_counts
