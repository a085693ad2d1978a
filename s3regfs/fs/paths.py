"""FUSE path ↔ driver path, and which names the storage driver contract can represent.

Owns the name rule of docs/SEMANTICS.md ("Path mapping"): the mount root is
the driver's ``/``; every other FUSE path maps to the identical driver path,
provided each component matches the driver's path rule
(``[A-Za-z0-9._-]+``, not ``.`` or ``..``).  A component over 255 bytes is
``ENAMETOOLONG``, and so is a whole path over 1024 bytes (S3's key limit).

Two entry points, because the right errno depends on the question asked:

* :func:`for_create` (mkdir, create, rename target, …): an unrepresentable
  name is ``EINVAL``, with one log line naming the rule;
* :func:`for_lookup` (getattr, open, readdir, …): such a name cannot exist in
  the bucket, so it is ``ENOENT`` (quietly: shells and tools probe names).
"""

from __future__ import annotations

import errno
import logging
import re

from s3regfs.fs.errors import FsError

log = logging.getLogger(__name__)

NAME_MAX = 255
KEY_MAX = 1024
_CHARS = "[A-Za-z0-9._-]"
_NAME_RE = re.compile(_CHARS + "+")
RULE = "names may use only the letters A-Z a-z, digits, '.', '_' and '-', and may not be '.' or '..'"


_PATH_RE = re.compile(f"(?:/{_CHARS}{{1,{NAME_MAX}}})+")
"""A whole path of representable names of at most NAME_MAX bytes each (ASCII: a character is a byte)."""
_REL_RE = re.compile(f"{_CHARS}+(?:/{_CHARS}+)*")


def name_ok(name: str) -> bool:
    """True when ``name`` is one representable path component."""
    return _NAME_RE.fullmatch(name) is not None and name not in (".", "..")


def relative_ok(rel: str) -> bool:
    """True when every component of the relative path ``rel`` is representable (one regex match)."""
    return _REL_RE.fullmatch(rel) is not None and not _has_dot_name("/" + rel)


def _has_dot_name(path: str) -> bool:
    return "/." in path and any(name in (".", "..") for name in path.split("/"))


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def problem(path: str) -> tuple[int, str] | None:
    """``None`` when ``path`` maps to a driver path, else ``(errno, reason)``."""
    if path == "/":
        return None
    if len(path) <= KEY_MAX and _PATH_RE.fullmatch(path) is not None and not _has_dot_name(path):
        return None  # the common case in one match; the loop below names what is wrong
    if not path.startswith("/"):
        return errno.EINVAL, "not an absolute path"
    if _byte_len(path) > KEY_MAX:
        return errno.ENAMETOOLONG, f"path longer than {KEY_MAX} bytes (the S3 key limit)"
    for name in path[1:].split("/"):
        if _byte_len(name) > NAME_MAX:
            return errno.ENAMETOOLONG, f"name longer than {NAME_MAX} bytes"
        if not name_ok(name):
            return errno.EINVAL, f"{name!r} cannot be stored: {RULE} (storage driver path rule)"
    return None


def for_lookup(path: str) -> str:
    """The driver path of an existing name; ENOENT for names that cannot exist."""
    found = problem(path)
    if found is None:
        return path
    err, reason = found
    if err == errno.EINVAL:
        raise FsError(errno.ENOENT, f"{path}: {reason}")
    raise FsError(err, f"{path}: {reason}")


def for_create(path: str) -> str:
    """The driver path for a new name; EINVAL/ENAMETOOLONG (logged once here) when it cannot be stored."""
    found = problem(path)
    if found is None:
        return path
    err, reason = found
    log.warning("refusing to create %r: %s", path, reason)
    raise FsError(err, f"{path}: {reason}", logging.INFO)


_DIGEST_DIR = re.compile(
    r"/(?:sha256/(?:[0-9a-f]{2}/)?[0-9a-f]{64}|sha384/(?:[0-9a-f]{2}/)?[0-9a-f]{96}"
    r"|sha512/(?:[0-9a-f]{2}/)?[0-9a-f]{128})(?:/|$)"
)


def digest_path(path: str) -> bool:
    """True for a digest directory of the registry layout and everything below it.

    Digest directories: ``blobs/sha256/<2 hex>/<hex>`` and, in repositories, ``…/sha256/<hex>``.

    What lies there is content-addressed: a blob's ``data``, or a ``link`` holding the digest its
    path names; it never changes while it exists (it may be deleted).
    """
    return _DIGEST_DIR.search(path) is not None


def parent(path: str) -> str:
    """``/a/b`` → ``/a``; ``/a`` → ``/``."""
    return path.rsplit("/", 1)[0] or "/"


def basename(path: str) -> str:
    return path.rsplit("/", 1)[1]


def join(directory: str, name: str) -> str:
    return "/" + name if directory == "/" else f"{directory}/{name}"


def is_under(path: str, directory: str) -> bool:
    """True when ``path`` lies strictly below ``directory``."""
    if directory == "/":
        return path != "/"
    return path.startswith(directory + "/")


def rebase(path: str, old: str, new: str) -> str:
    """``path`` (``old`` or below it) moved to ``new``."""
    return new + path[len(old) :]
