"""The registry's storage layout, read through a driver: repositories, tags, links, manifests.

Owns the paths of distribution's layout (``/docker/registry/v2/...``, docs/VIEWS.md "Where the
view reads"), the link format (``sha256:<hex>``), and what a manifest's bytes say about itself
(its media type).  Nothing here caches or writes: the caller
(:mod:`s3regfs.view.oci`) decides what to keep and for how long.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from s3regfs.driver.base import StorageDriver
from s3regfs.driver.errors import PathNotFoundError

V2 = "/docker/registry/v2"
REPOSITORIES = V2 + "/repositories"

ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
"""Digest algorithms and the length of their hex part."""

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""The registry refuses manifests larger than this; a larger "manifest" is not read."""

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest: ``sha256:<hex>``."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> Digest | None:
        """The digest ``text`` names, or None when it is not one."""
        algorithm, sep, hexpart = text.strip().partition(":")
        if not sep or not valid_hex(algorithm, hexpart):
            return None
        return cls(algorithm, hexpart)


def valid_hex(algorithm: str, hexpart: str) -> bool:
    """True when ``hexpart`` is a whole hex digest of ``algorithm``."""
    length = ALGORITHMS.get(algorithm)
    return length is not None and len(hexpart) == length and _HEX.fullmatch(hexpart) is not None


def repository(name: str) -> str:
    """The layout directory of repository ``name`` (``library/nginx``)."""
    return f"{REPOSITORIES}/{name}" if name else REPOSITORIES


def blob_data(digest: Digest) -> str:
    """The path of a blob's bytes: ``blobs/<alg>/<2 hex>/<hex>/data``."""
    return f"{V2}/blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data"


def tags_dir(name: str) -> str:
    return f"{repository(name)}/_manifests/tags"


def tag_link(name: str, tag: str) -> str:
    return f"{tags_dir(name)}/{tag}/current/link"


def reference_dirs(name: str) -> tuple[str, str]:
    """The two directories whose ``<alg>/<hex>/link`` entries name the blobs a repository holds."""
    return f"{repository(name)}/_manifests/revisions", f"{repository(name)}/_layers"


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def list_dirs(driver: StorageDriver, path: str) -> list[str]:
    """The names of the subdirectories of ``path`` (none when it does not exist)."""
    try:
        infos = driver.list_info(path)
    except PathNotFoundError:
        return []
    return sorted(basename(info.path) for info in infos if info.is_dir)


def referenced(driver: StorageDriver, name: str) -> set[Digest]:
    """Every digest repository ``name`` links: its manifests (revisions) and its layers and configs."""
    found: set[Digest] = set()
    for top in reference_dirs(name):
        for algorithm in list_dirs(driver, top):
            if algorithm not in ALGORITHMS:
                continue
            for hexpart in list_dirs(driver, f"{top}/{algorithm}"):
                if valid_hex(algorithm, hexpart):
                    found.add(Digest(algorithm, hexpart))
    return found


def read_link(driver: StorageDriver, path: str) -> Digest | None:
    """The digest a link file holds; None when its content is not a digest (PathNotFoundError passes)."""
    return Digest.parse(driver.get_content(path).decode("ascii", "replace"))


def manifest_media_type(content: bytes) -> str | None:
    """The media type of a manifest or index; None when the bytes are no manifest.

    The ``mediaType`` field when present; else an OCI index (``manifests``), an OCI manifest
    (``config``), or Docker schema 1 (``schemaVersion`` 1, signed when it has ``signatures``).
    """
    try:
        doc = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    media_type = doc.get("mediaType")
    if isinstance(media_type, str) and media_type:
        return media_type
    if doc.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED if "signatures" in doc else DOCKER_SCHEMA1
    if isinstance(doc.get("manifests"), list):
        return OCI_INDEX
    if isinstance(doc.get("config"), dict):
        return OCI_MANIFEST
    return None
