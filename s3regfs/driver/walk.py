"""The walk function type :data:`WalkFn`, and ``walk_fallback``: Walk on list_info (port of v3 ``WalkFallback``).

Depth-first, children in byte order, vanished children skipped.  ``SkipDir``
from the walk function skips a directory's contents (and is a no-op on a
file); ``FilledBuffer`` stops the whole walk without error.

The start-after hint resumes the walk just after the hint and climbs back to
the walk root, as upstream.  Two deliberate differences, both documented in
docs/SEMANTICS.md: ``FilledBuffer`` inside a hinted walk stops everything
(upstream only stops the current level), and a hint naming a file is not an
error (upstream propagates the file's "not a directory").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from s3regfs.driver.errors import DriverError, FilledBuffer, PathNotFoundError, SkipDir

if TYPE_CHECKING:  # base imports this module: the types only, no import cycle at run time
    from s3regfs.driver.base import FileInfo, StorageDriver

log = logging.getLogger(__name__)

WalkFn = Callable[["FileInfo"], None]
"""Called once per file and directory under the walk root; may raise SkipDir/FilledBuffer."""


def is_subpath(path: str, parent: str) -> bool:
    """True when ``path`` equals ``parent`` or lies below it (``/``-boundary test)."""
    if not parent:
        return False
    if parent == "/" or path == parent:
        return True
    return path.startswith(parent + "/")


def _parent(path: str) -> str:
    """The parent of ``path`` (``/a/b`` → ``/a``, ``/a`` → ``/``), always strictly shorter.

    Not ``posixpath.dirname``: it keeps a leading ``//``, so climbing from a
    hint such as ``//x`` would never reach the walk root.
    """
    return path.rsplit("/", 1)[0] or "/"


def _walk_dir(driver: StorageDriver, path: str, fn: WalkFn, after: str | None) -> bool:
    """Walk the children of ``path`` (those > ``after`` if given); True means stop."""
    children = sorted(driver.list_info(path), key=lambda info: info.path)
    for info in children:
        if after is not None and not info.path > after:
            continue
        try:
            fn(info)
        except SkipDir:
            continue
        except FilledBuffer:
            return True
        if info.is_dir and _walk_dir(driver, info.path, fn, None):
            return True
    return False


def walk_fallback(driver: StorageDriver, root: str, fn: WalkFn, start_after_hint: str = "") -> None:
    """Visit every file and directory under ``root`` via ``driver.list_info``."""
    hint = start_after_hint
    if not hint or not is_subpath(hint, root):
        if hint and hint.replace("/", "\x00") >= root.replace("/", "\x00"):
            return
        _walk_dir(driver, root, fn, None)
        return
    base = hint
    first = True
    while True:
        try:
            if _walk_dir(driver, base, fn, hint):
                return
        except PathNotFoundError:
            pass
        except DriverError:
            if not first:
                raise
            log.debug("walk hint %s is not a directory", base)
        if base == root:
            return
        first = False
        hint = base
        parent = _parent(base)
        if parent == base:  # only reachable if root was not an ancestor of the hint
            return
        base = parent
