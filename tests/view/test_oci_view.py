"""OciView on the inmemory driver holding a registry layout written as the registry writes it.

The namespace (docs/VIEWS.md): repositories as layouts, nested names, the ``_`` naming rule,
index.json's descriptors and media types, dangling tags, the blobs a repository links, the
cost of a listing, freshness, version pins of index.json, and that every change is refused.
The real registry, skopeo, umoci and oci-image-tool on a real mount: tests/fuse/test_oci_view.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from typing import Any

import pytest

from s3regfs.driver import CheckedDriver, StorageDriver
from s3regfs.driver.errors import ObjectChangedError, PathNotFoundError, UnsupportedMethodError
from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.driver.wrapper import DriverWrapper
from s3regfs.view.oci import OciView

V2 = "/docker/registry/v2"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class Counting(DriverWrapper):
    """Counts the calls that reach the store."""

    def __init__(self, inner: StorageDriver) -> None:
        super().__init__(inner)
        self.calls: Counter[str] = Counter()

    def stat(self, path: str) -> Any:
        self.calls["stat"] += 1
        return super().stat(path)

    def list_info(self, path: str) -> Any:
        self.calls["list"] += 1
        return super().list_info(path)

    def get_content(self, path: str) -> bytes:
        self.calls["get"] += 1
        return super().get_content(path)

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes:
        self.calls["get"] += 1
        return super().read_range(path, offset, length, etag)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Registry:
    """Writes blobs and links where distribution's registry puts them."""

    def __init__(self, store: StorageDriver) -> None:
        self.store = store

    def blob(self, data: bytes) -> str:
        hexdigest = hashlib.sha256(data).hexdigest()
        self.store.put_content(f"{V2}/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data", data)
        return "sha256:" + hexdigest

    def link(self, path: str, digest: str) -> None:
        self.store.put_content(path, digest.encode())

    def layer(self, repo: str, data: bytes) -> dict[str, Any]:
        digest = self.blob(data)
        self.link(f"{V2}/repositories/{repo}/_layers/sha256/{digest[7:]}/link", digest)
        return {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}

    def manifest(self, repo: str, doc: dict[str, Any], tag: str | None = None) -> tuple[str, int]:
        data = json.dumps(doc).encode()
        digest = self.blob(data)
        self.link(f"{V2}/repositories/{repo}/_manifests/revisions/sha256/{digest[7:]}/link", digest)
        if tag:
            self.tag(repo, tag, digest)
        return digest, len(data)

    def tag(self, repo: str, tag: str, digest: str) -> None:
        self.link(f"{V2}/repositories/{repo}/_manifests/tags/{tag}/current/link", digest)
        self.link(f"{V2}/repositories/{repo}/_manifests/tags/{tag}/index/sha256/{digest[7:]}/link", digest)

    def image(self, repo: str, tag: str | None, seed: str, media_type: str | None = DOCKER_MANIFEST) -> tuple[str, int]:
        config = self.layer(repo, f"config {seed}".encode())
        layer = self.layer(repo, f"layer {seed}".encode() * 100)
        doc: dict[str, Any] = {"schemaVersion": 2, "config": config, "layers": [layer]}
        if media_type:
            doc["mediaType"] = media_type
        return self.manifest(repo, doc, tag)


@pytest.fixture
def store() -> CheckedDriver:
    return CheckedDriver(InMemoryDriver())


@pytest.fixture
def registry(store: CheckedDriver) -> Registry:
    return Registry(store)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def counting(store: CheckedDriver) -> Counting:
    return Counting(store)


@pytest.fixture
def view(counting: Counting, clock: Clock) -> OciView:
    oci = OciView(counting, ttl=4.0, blob_ttl=600.0, clock=clock)
    yield oci
    oci.close()


def names(view: OciView, path: str) -> list[str]:
    return [p.rsplit("/", 1)[-1] for p in view.list(path)]


def index(view: OciView, repo: str) -> dict[str, Any]:
    return json.loads(view.get_content(f"/{repo}/index.json"))


def test_repositories_are_layouts_and_nested_names_are_directories(view: OciView, registry: Registry) -> None:
    registry.image("alpine", "3", "a")
    registry.image("library/nginx", "1", "n")
    registry.image("library", "base", "l")  # a repository that is also a namespace
    assert names(view, "/") == ["alpine", "library"]
    assert names(view, "/alpine") == ["blobs", "index.json", "oci-layout"]
    assert names(view, "/library") == ["blobs", "index.json", "nginx", "oci-layout"]
    assert json.loads(view.get_content("/library/nginx/oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    assert view.stat("/library").is_dir and view.stat("/library/nginx/blobs/sha256").is_dir
    info = view.stat("/alpine/index.json")
    assert not info.is_dir and info.size == len(view.get_content("/alpine/index.json"))


def test_a_namespace_that_is_no_repository_has_no_layout_files(view: OciView, registry: Registry) -> None:
    registry.image("team/app", "1", "x")
    assert names(view, "/team") == ["app"]
    for entry in ("index.json", "oci-layout", "blobs"):
        with pytest.raises(PathNotFoundError):
            view.stat(f"/team/{entry}")


def test_a_repository_named_like_a_layout_entry_is_shown_with_an_underscore(view: OciView, registry: Registry) -> None:
    registry.image("proj", "1", "p")
    registry.image("proj/blobs", "2", "b")
    registry.image("proj/index.json", "3", "i")
    registry.image("blobs", "4", "top")
    assert names(view, "/") == ["_blobs", "proj"]
    assert names(view, "/proj") == ["_blobs", "_index.json", "blobs", "index.json", "oci-layout"]
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index(view, "proj/_blobs")["manifests"]] == ["2"]
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index(view, "_blobs")["manifests"]] == ["4"]
    assert index(view, "proj/_index.json")["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "3"
    for missing in ("/blobs", "/proj/_manifests", "/proj/_layers", "/proj/_other", "/index.json"):
        with pytest.raises(PathNotFoundError):
            view.stat(missing)


def test_index_json_has_one_descriptor_per_tag_with_its_media_type(view: OciView, registry: Registry) -> None:
    docker, docker_size = registry.image("app", "a-docker", "d")
    oci, oci_size = registry.image("app", "b-oci", "o", OCI_MANIFEST)
    bare, bare_size = registry.image("app", "c-bare-oci", "bare", None)  # OCI manifest without mediaType
    amd, _ = registry.image("app", None, "amd64")
    arm, _ = registry.image("app", None, "arm64")
    children = [{"mediaType": DOCKER_MANIFEST, "digest": d, "size": 1} for d in (amd, arm)]
    oci_index, oci_index_size = registry.manifest("app", {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                          "manifests": children}, "d-index")
    docker_list, docker_list_size = registry.manifest("app", {"schemaVersion": 2, "mediaType": DOCKER_LIST,
                                                              "manifests": children}, "e-list")
    registry.tag("app", "f-same", docker)
    doc = index(view, "app")
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == OCI_INDEX
    assert doc["manifests"] == [
        {"mediaType": mt, "digest": digest, "size": size, "annotations": {"org.opencontainers.image.ref.name": tag}}
        for tag, mt, digest, size in [
            ("a-docker", DOCKER_MANIFEST, docker, docker_size),
            ("b-oci", OCI_MANIFEST, oci, oci_size),
            ("c-bare-oci", OCI_MANIFEST, bare, bare_size),
            ("d-index", OCI_INDEX, oci_index, oci_index_size),
            ("e-list", DOCKER_LIST, docker_list, docker_list_size),
            ("f-same", DOCKER_MANIFEST, docker, docker_size),
        ]
    ]
    for entry in doc["manifests"]:  # every descriptor resolves to a blob of its size and digest
        data = view.get_content(f"/app/blobs/sha256/{entry['digest'][7:]}")
        assert len(data) == entry["size"] and "sha256:" + hashlib.sha256(data).hexdigest() == entry["digest"]


def test_a_dangling_tag_is_left_out_and_logged_once(view: OciView, registry: Registry, store: StorageDriver,
                                                  clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    good, _ = registry.image("app", "good", "g")
    gone, _ = registry.image("app", "gone", "x")
    store.delete(f"{V2}/blobs/sha256/{gone[7:9]}/{gone[7:]}")
    registry.link(f"{V2}/repositories/app/_manifests/tags/junk/current/link", "not a digest")
    with caplog.at_level(logging.WARNING, logger="s3regfs.view.oci"):
        for _ in range(3):
            assert [m["digest"] for m in index(view, "app")["manifests"]] == [good]
            clock.now += 5  # past the TTL: index.json is built again
    lines = [r.getMessage() for r in caplog.records]
    assert sum("app:gone: the tag's manifest" in line and "dangling" in line for line in lines) == 1
    assert sum("app:junk" in line for line in lines) == 1
    assert gone[7:] not in names(view, "/app/blobs/sha256")  # linked, but its bytes are gone


def test_blobs_are_what_the_repository_links_with_the_registry_bytes(view: OciView, registry: Registry) -> None:
    digest, _ = registry.image("app", "1", "a")
    other, _ = registry.image("other", "1", "o")
    manifest = json.loads(view.get_content(f"/app/blobs/sha256/{digest[7:]}"))
    expected = {digest, manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}
    assert set(names(view, "/app/blobs/sha256")) == {d[7:] for d in expected}
    assert names(view, "/app/blobs") == ["sha256"]
    for info in view.list_info("/app/blobs/sha256"):
        data = view.get_content(info.path)
        assert info.size == len(data) and hashlib.sha256(data).hexdigest() == info.path.rsplit("/", 1)[1]
        assert view.read_range(info.path, 1, 5, info.etag) == data[1:6]
    with pytest.raises(PathNotFoundError):  # in the bucket, but not linked by this repository
        view.stat(f"/app/blobs/sha256/{other[7:]}")
    with pytest.raises(PathNotFoundError):
        view.stat("/app/blobs/sha256/" + "0" * 64)


def test_listing_the_root_reads_no_repository(view: OciView, registry: Registry, counting: Counting) -> None:
    for i in range(40):
        registry.image(f"repo{i:02d}", "1", str(i))
    counting.calls.clear()
    assert len(view.list_info("/")) == 40
    assert counting.calls == Counter({"list": 1})


def test_index_json_costs_one_tag_listing_one_read_per_link_and_one_per_manifest(
    view: OciView, registry: Registry, counting: Counting, clock: Clock
) -> None:
    digest, _ = registry.image("app", "t0", "a")
    for i in range(1, 6):
        registry.tag("app", f"t{i}", digest)
    registry.image("app", "u", "b")
    counting.calls.clear()
    index(view, "app")
    # one stat (is it a repository), one tag listing, 7 links, one read of each of the 2 manifests
    assert counting.calls == Counter({"stat": 1, "list": 1, "get": 7 + 2})
    counting.calls.clear()
    index(view, "app")
    assert counting.calls == Counter()  # within the TTL: nothing read
    clock.now += 5
    index(view, "app")
    assert counting.calls == Counter({"stat": 1, "list": 1, "get": 7 + 2})


def test_a_new_tag_shows_after_the_ttl_and_a_pinned_handle_keeps_its_version(
    view: OciView, registry: Registry, clock: Clock
) -> None:
    registry.image("app", "1", "a")
    before = view.stat("/app/index.json")
    old = view.get_content("/app/index.json")
    registry.image("app", "2", "b")
    assert view.get_content("/app/index.json") == old  # cached for the TTL
    clock.now += 5
    after = view.stat("/app/index.json")
    assert after.etag != before.etag and len(index(view, "app")["manifests"]) == 2
    assert view.read_range("/app/index.json", 0, 10**6, before.etag) == old  # a pinned handle reads its version
    with pytest.raises(ObjectChangedError):
        view.read_range("/app/index.json", 0, 10, '"not-a-version"')


def test_every_change_is_refused(view: OciView, registry: Registry) -> None:
    registry.image("app", "1", "a")
    for call in (lambda: view.put_content("/app/x", b""), lambda: view.writer("/app/x"),
                 lambda: view.move("/app/index.json", "/app/y"), lambda: view.delete("/app")):
        with pytest.raises(UnsupportedMethodError):
            call()
    assert view.multipart_uploads() is None


def test_blob_keys_and_urls_are_the_registry_blobs(registry: Registry, store: StorageDriver, clock: Clock) -> None:
    seen: list[str] = []

    class Keys(DriverWrapper):
        def bucket_key(self, path: str) -> str | None:
            return "bucket" + path

        def redirect_url(self, method: str, path: str, **kwargs: Any) -> str | None:
            seen.append(path)
            return "https://cdn.example/" + path

    view = OciView(Keys(store), ttl=4.0, blob_ttl=600.0, clock=clock)
    digest, _ = registry.image("app", "1", "a")
    blob = f"{V2}/blobs/sha256/{digest[7:9]}/{digest[7:]}/data"
    assert view.bucket_key(f"/app/blobs/sha256/{digest[7:]}") == "bucket" + blob
    assert view.redirect_url("GET", f"/app/blobs/sha256/{digest[7:]}") == "https://cdn.example/" + blob
    assert view.redirect_url("GET", "/app/index.json") is None and view.bucket_key("/app/index.json") is None
    assert seen == [blob]
    view.close()


def test_walk_visits_the_view(view: OciView, registry: Registry) -> None:
    registry.image("a/b", "1", "x")
    seen: list[str] = []
    view.walk("/", lambda info: seen.append(info.path))
    assert seen[:4] == ["/a", "/a/b", "/a/b/blobs", "/a/b/blobs/sha256"]
    assert "/a/b/index.json" in seen and "/a/b/oci-layout" in seen and len(seen) == 4 + 3 + 2


def test_the_caches_are_bounded_however_many_repositories_and_blobs(registry: Registry, store: StorageDriver,
                                                                    clock: Clock) -> None:
    view = OciView(store, ttl=4.0, blob_ttl=600.0, clock=clock, limits=(3, 10))
    for i in range(12):
        registry.image(f"repo{i:02d}", "1", str(i))
    for i in range(12):
        assert len(index(view, f"repo{i:02d}")["manifests"]) == 1
        names(view, f"/repo{i:02d}/blobs/sha256")
        repositories, blobs = view.cached()
        assert repositories <= 3 and blobs <= 10
    assert view.cached() == (3, 10)
    view.close()


def test_drop_caches_shows_a_new_tag_at_once_and_keeps_the_pinned_version(
    view: OciView, registry: Registry
) -> None:
    registry.image("app", "1", "a")
    before = view.stat("/app/index.json")
    old = view.get_content("/app/index.json")
    registry.image("app", "2", "b")
    assert view.get_content("/app/index.json") == old  # within the TTL
    view.drop_caches()  # what SIGHUP does
    assert len(index(view, "app")["manifests"]) == 2
    assert view.read_range("/app/index.json", 0, 10**6, before.etag) == old
