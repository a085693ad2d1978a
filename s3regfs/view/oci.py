"""``OciView``: every repository of the registry as an OCI image layout (``-o view=oci``).

Owns the view's namespace (docs/VIEWS.md): ``/R`` is repository ``R`` (nested names are nested
directories) with ``oci-layout``, ``index.json`` (one descriptor per tag) and
``blobs/<alg>/<hex>`` (every blob ``R`` links), the naming rule for repository names that
collide with those entries (shown with a leading ``_``), and the view's own caches:

* per repository (``ttl``, the metadata TTL): the built ``index.json`` and the set of linked
  digests; at most :data:`MAX_REPOSITORIES` repositories;
* per blob (``blob_ttl``, the digest TTL: blobs are content-addressed): size, time, ETag; at
  most :data:`MAX_BLOBS`.

``index.json`` is built anew after ``ttl``: a listing of the tags, a read of each tag link and of
each distinct manifest (its size and media type come from its bytes), so a moved tag or a
deleted manifest shows within the metadata TTL.

A wrapper, not a flag: below it the whole chain (CloudFront signing, retries) is unchanged,
and a blob's bytes, size, version pin and signed URL are those of the blob's real key.  Every
change is refused (:class:`UnsupportedMethodError`; the filesystem is mounted read-only, so
the user sees ``EROFS`` before a call gets here).  No lock is held across a driver call.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO, NoReturn

from cachetools import LRUCache, TTLCache

from s3regfs.driver.base import ZERO_TIME, FileInfo, FileWriter, MultipartUploads, Readable, StorageDriver
from s3regfs.driver.errors import ObjectChangedError, PathNotFoundError, UnsupportedMethodError
from s3regfs.driver.walk import WalkFn, walk_fallback
from s3regfs.driver.wrapper import DriverWrapper
from s3regfs.view import layout
from s3regfs.view.layout import Digest

log = logging.getLogger(__name__)

OCI_LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
BLOBS_DIR = "blobs"
LAYOUT_ENTRIES = (OCI_LAYOUT_FILE, INDEX_FILE, BLOBS_DIR)
"""The names of a layout; a repository name component equal to one is shown as ``_<name>``."""

OCI_LAYOUT_CONTENT = b'{"imageLayoutVersion": "1.0.0"}\n'
REF_NAME = "org.opencontainers.image.ref.name"

MAX_REPOSITORIES = 256
MAX_BLOBS = 100_000
KEPT_VERSIONS = 4
"""Versions of a repository's index.json kept for the handles that read them."""
MAX_LOGGED = 10_000
WORKERS = 8
"""Parallel reads when one call needs many (the tags of an index, the sizes of a blob listing)."""


def escape(component: str) -> str:
    """A repository name component as the view shows it."""
    return "_" + component if component in LAYOUT_ENTRIES else component


@dataclass(frozen=True)
class Target:
    """What a view path names."""

    kind: str  # "dir" (a repository or a namespace), "file" (oci-layout, index.json), "blobs", "alg", "blob"
    repo: str  # the repository name ("" for the root)
    entry: str = ""  # the file name, or the digest algorithm
    digest: Digest | None = None


def parse(path: str) -> Target:
    """The :class:`Target` of a view path; PathNotFoundError when the view has no such name."""
    parts = [] if path == "/" else path.strip("/").split("/")
    repo: list[str] = []
    for i, part in enumerate(parts):
        rest = parts[i + 1:]
        name = "/".join(repo)
        if part in LAYOUT_ENTRIES and repo:
            if part != BLOBS_DIR:
                if rest:
                    break
                return Target("file", name, part)
            if not rest:
                return Target("blobs", name)
            if rest[0] not in layout.ALGORITHMS or len(rest) > 2:
                break
            if len(rest) == 1:
                return Target("alg", name, rest[0])
            if not layout.valid_hex(rest[0], rest[1]):
                break
            return Target("blob", name, rest[0], Digest(rest[0], rest[1]))
        if part.startswith("_"):
            if part[1:] not in LAYOUT_ENTRIES:
                break
            part = part[1:]
        elif part in LAYOUT_ENTRIES:
            break
        repo.append(part)
    else:
        return Target("dir", "/".join(repo))
    raise PathNotFoundError(path)


@dataclass
class _Built:
    """One version of a repository's ``index.json``."""

    content: bytes
    etag: str
    mod_time: datetime


@dataclass
class _Repo:
    """What the view knows of one repository, for ``ttl`` seconds."""

    learned: float
    is_repository: bool
    index: _Built | None = None
    digests: frozenset[Digest] | None = None
    versions: dict[str, _Built] = field(default_factory=dict)  # etag -> the last few index.json versions


def _etag(content: bytes) -> str:
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


class OciView(DriverWrapper):
    """The read-only OCI image-layout view of the registry layout in ``inner``."""

    def __init__(
        self,
        inner: StorageDriver,
        *,
        ttl: float,
        blob_ttl: float,
        clock: Callable[[], float] = time.monotonic,
        limits: tuple[int, int] = (MAX_REPOSITORIES, MAX_BLOBS),
    ) -> None:
        super().__init__(inner)
        max_repositories, max_blobs = limits
        self.ttl = max(ttl, 0.0)
        self._clock = clock
        self._lock = threading.Lock()
        self._repos: LRUCache[str, _Repo] = LRUCache(max_repositories)
        self._blobs: TTLCache[Digest, FileInfo] = TTLCache(max_blobs, max(blob_ttl, self.ttl, 1e-9), timer=clock)
        self._logged: LRUCache[tuple[str, ...], bool] = LRUCache(MAX_LOGGED)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="s3regfs-view")
        self._started = datetime.now(UTC)

    # -- the contract: reads ------------------------------------------------------------------

    def stat(self, path: str) -> FileInfo:
        target = parse(path)
        if target.kind == "dir":
            if target.repo:
                info = self.inner.stat(layout.repository(target.repo))
                if not info.is_dir:
                    raise PathNotFoundError(path)
            return FileInfo(path, 0, ZERO_TIME, True)
        repo = self._repo(target.repo, path)
        if target.kind == "blobs":
            return FileInfo(path, 0, ZERO_TIME, True)
        if target.kind == "alg":
            if not any(d.algorithm == target.entry for d in self._digests(target.repo, repo)):
                raise PathNotFoundError(path)
            return FileInfo(path, 0, ZERO_TIME, True)
        if target.kind == "blob":
            assert target.digest is not None
            if target.digest not in self._digests(target.repo, repo):
                raise PathNotFoundError(path)
            return self._view_info(path, self._blob(target.digest))
        content, built = self._file(target, repo)
        return FileInfo(path, len(content), built.mod_time, False, built.etag)

    def list(self, path: str) -> list[str]:
        return [info.path for info in self.list_info(path)]

    def list_info(self, path: str) -> list[FileInfo]:
        target = parse(path)
        prefix = "" if path == "/" else path
        if target.kind == "dir":
            return self._list_dir(path, prefix, target.repo)
        repo = self._repo(target.repo, path)
        digests = self._digests(target.repo, repo)
        if target.kind == "blobs":
            algorithms = sorted({d.algorithm for d in digests})
            return [FileInfo(f"{prefix}/{a}", 0, ZERO_TIME, True) for a in algorithms]
        if target.kind == "alg":
            wanted = sorted(d for d in digests if d.algorithm == target.entry)
            if not wanted:
                raise PathNotFoundError(path)
            infos = self._pool.map(lambda d: self._blob_or_none(d, target.repo), wanted)
            return [self._view_info(f"{prefix}/{d.hex}", info) for d, info in zip(wanted, infos) if info is not None]
        raise PathNotFoundError(path)  # a file: upstream's List of a file is "not found"

    def get_content(self, path: str) -> bytes:
        target = parse(path)
        if target.kind == "blob":
            self.stat(path)
            assert target.digest is not None
            return self.inner.get_content(layout.blob_data(target.digest))
        if target.kind != "file":
            raise PathNotFoundError(path)
        return self._file(target, self._repo(target.repo, path))[0]

    def reader(self, path: str, offset: int = 0) -> BinaryIO | Readable:
        target = parse(path)
        if target.kind == "blob":
            self.stat(path)
            assert target.digest is not None
            return self.inner.reader(layout.blob_data(target.digest), offset)
        return io.BytesIO(self.get_content(path)[offset:])

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes | memoryview:
        target = parse(path)
        if target.kind == "blob":
            assert target.digest is not None
            return self.inner.read_range(layout.blob_data(target.digest), offset, length, etag)
        if target.kind != "file":
            raise PathNotFoundError(path)
        repo = self._repo(target.repo, path)
        content, built = self._file(target, repo)
        if etag is not None and built.etag != etag:
            with self._lock:
                kept = repo.versions.get(etag)
            if kept is None:
                raise ObjectChangedError(path, etag)
            content = kept.content
        return content[offset:offset + length]

    def walk(self, path: str, fn: WalkFn, start_after_hint: str = "") -> None:
        walk_fallback(self, path, fn, start_after_hint)

    def stat_tree(self, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
        return self.stat(path), None  # the view's own stat: never the inner driver's paths

    def redirect_url(
        self, method: str, path: str, *, client_ip: str | None = None, expires_in: float | None = None
    ) -> str | None:
        target = parse(path)
        if target.kind != "blob":
            return None
        self.stat(path)
        assert target.digest is not None
        return self.inner.redirect_url(
            method, layout.blob_data(target.digest), client_ip=client_ip, expires_in=expires_in
        )

    def bucket_key(self, path: str) -> str | None:
        target = parse(path)
        if target.kind != "blob":
            return None
        assert target.digest is not None
        return self.inner.bucket_key(layout.blob_data(target.digest))

    def multipart_uploads(self) -> MultipartUploads | None:
        return None

    def drop_caches(self) -> None:
        """Forget repositories and blob attributes (SIGHUP); the index.json versions open handles read stay."""
        with self._lock:
            for repo in self._repos.values():
                repo.learned = float("-inf")
            self._blobs.clear()
        self.inner.drop_caches()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.inner.close()

    # -- the contract: every change is refused ------------------------------------------------------

    def cached(self) -> tuple[int, int]:
        """How many repositories and blob attributes the view keeps now."""
        with self._lock:
            return len(self._repos), len(self._blobs)

    def _refuse(self) -> NoReturn:
        raise UnsupportedMethodError(self.name)

    def put_content(self, path: str, content: bytes) -> str | None:
        self._refuse()

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._refuse()

    def move(self, source: str, dest: str) -> None:
        self._refuse()

    def delete(self, path: str) -> None:
        self._refuse()

    # -- directories ---------------------------------------------------------------------------------

    def _list_dir(self, path: str, prefix: str, name: str) -> list[FileInfo]:
        """Nested repositories (escaped names) and, for a repository, the layout's three entries.

        One listing of the repository's directory; the root reads no repository.
        """
        try:
            children = self.inner.list_info(layout.repository(name))
        except PathNotFoundError:
            if name:
                raise PathNotFoundError(path) from None
            return []
        infos: list[FileInfo] = []
        is_repository = False
        for child in children:
            base = layout.basename(child.path)
            if not child.is_dir:
                continue
            if base == "_manifests":
                is_repository = True
            if base.startswith("_"):
                continue  # _manifests, _layers, _uploads: the registry's own; no name component starts with "_"
            infos.append(FileInfo(f"{prefix}/{escape(base)}", 0, ZERO_TIME, True))
        if is_repository:
            repo = self._repo(name, path, known=True)
            infos.append(FileInfo(f"{prefix}/{BLOBS_DIR}", 0, ZERO_TIME, True))
            for entry in (OCI_LAYOUT_FILE, INDEX_FILE):
                content, built = self._file(Target("file", name, entry), repo)
                infos.append(FileInfo(f"{prefix}/{entry}", len(content), built.mod_time, False, built.etag))
        return sorted(infos, key=lambda info: info.path)

    # -- per-repository state ----------------------------------------------------------------------

    def _repo(self, name: str, path: str, known: bool = False) -> _Repo:
        """The fresh state of repository ``name``; PathNotFoundError (for ``path``) when it is none."""
        now = self._clock()
        with self._lock:
            repo = self._repos.get(name)
            if repo is not None and now - repo.learned < self.ttl and (repo.is_repository or not known):
                if not repo.is_repository:
                    raise PathNotFoundError(path)
                return repo
        if not name:
            raise PathNotFoundError(path)
        is_repository = known or self._has_manifests(name)
        fresh = _Repo(now, is_repository)
        if repo is not None:
            fresh.versions = repo.versions
        with self._lock:
            self._repos[name] = fresh
        if not is_repository:
            raise PathNotFoundError(path)
        return fresh

    def _has_manifests(self, name: str) -> bool:
        try:
            return self.inner.stat(layout.repository(name) + "/_manifests").is_dir
        except PathNotFoundError:
            return False

    def _digests(self, name: str, repo: _Repo) -> frozenset[Digest]:
        with self._lock:
            if repo.digests is not None:
                return repo.digests
        digests = frozenset(layout.referenced(self.inner, name))
        with self._lock:
            repo.digests = digests
        return digests

    def _file(self, target: Target, repo: _Repo) -> tuple[bytes, _Built]:
        if target.entry == OCI_LAYOUT_FILE:
            return OCI_LAYOUT_CONTENT, _Built(OCI_LAYOUT_CONTENT, _etag(OCI_LAYOUT_CONTENT), self._started)
        with self._lock:
            built = repo.index
        if built is None:
            built = self._build_index(target.repo, repo)
        return built.content, built

    # -- index.json ----------------------------------------------------------------------------------

    def _build_index(self, name: str, repo: _Repo) -> _Built:
        """One listing of the tags, one read per tag link, one small read per distinct manifest."""
        tags = layout.list_dirs(self.inner, layout.tags_dir(name))
        links = list(self._pool.map(lambda tag: self._tag_digest(name, tag), tags))
        distinct = sorted({d for d in links if d is not None})
        manifests = dict(zip(distinct, self._pool.map(self._manifest, distinct)))
        descriptors = []
        for tag, digest in zip(tags, links):
            if digest is None:
                continue
            found = manifests[digest]
            if found is None:
                self._log_once(("dangling", name, tag), "%s:%s: the tag's manifest %s is gone (dangling link); "
                               "tag left out of index.json", name, tag, digest)
                continue
            size, media_type = found
            if media_type is None:
                self._log_once(("manifest", name, tag), "%s:%s: %s is not a manifest; tag left out", name, tag, digest)
                continue
            descriptors.append({"mediaType": media_type, "digest": str(digest), "size": size,
                                "annotations": {REF_NAME: tag}})
        content = (json.dumps({"schemaVersion": 2, "mediaType": layout.OCI_INDEX, "manifests": descriptors},
                              indent=2) + "\n").encode()
        etag = _etag(content)
        with self._lock:
            built = repo.versions.get(etag) or _Built(content, etag, datetime.now(UTC))
            if repo.index is None:
                repo.index = built
            built = repo.index
            repo.versions[built.etag] = built
            while len(repo.versions) > KEPT_VERSIONS:
                repo.versions.pop(next(iter(repo.versions)))
        return built

    def _tag_digest(self, name: str, tag: str) -> Digest | None:
        """The digest tag ``tag`` points to; None (logged once) when its link is gone or holds none."""
        link = layout.tag_link(name, tag)
        try:
            digest = layout.read_link(self.inner, link)
        except PathNotFoundError:
            return None  # untagged since the listing
        if digest is None:
            self._log_once(("link", name, tag), "%s:%s: the tag link %s holds no digest; tag left out", name, tag, link)
        return digest

    def _manifest(self, digest: Digest) -> tuple[int, str | None] | None:
        """(size, what the manifest says) of ``digest``, read anew; None when its bytes are gone.

        Read on every build, so that a deleted manifest leaves index.json within the metadata TTL.
        """
        try:
            content = self.inner.read_range(layout.blob_data(digest), 0, layout.MAX_MANIFEST_BYTES + 1)
        except PathNotFoundError:
            return None
        if len(content) > layout.MAX_MANIFEST_BYTES:
            return len(content), None
        return len(content), layout.manifest_media_type(bytes(content))

    # -- blobs ---------------------------------------------------------------------------------------

    def _blob(self, digest: Digest) -> FileInfo:
        with self._lock:
            known = self._blobs.get(digest)
        if known is not None:
            return known
        info = self.inner.stat(layout.blob_data(digest))
        if info.is_dir:
            raise PathNotFoundError(layout.blob_data(digest))
        with self._lock:
            self._blobs[digest] = info
        return info

    def _blob_or_none(self, digest: Digest, name: str) -> FileInfo | None:
        try:
            return self._blob(digest)
        except PathNotFoundError:
            self._log_once(("blob", str(digest)), "%s: blob %s is linked but gone; left out of the listing",
                           name, digest)
            return None

    @staticmethod
    def _view_info(path: str, info: FileInfo) -> FileInfo:
        return FileInfo(path, info.size, info.mod_time, False, info.etag)

    def _log_once(self, key: tuple[str, ...], message: str, *args: object) -> None:
        with self._lock:
            if key in self._logged:
                return
            self._logged[key] = True
        log.warning(message, *args)
