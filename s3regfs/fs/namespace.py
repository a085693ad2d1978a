"""Namespace: what this mount knows about names beyond the bucket, under one lock.

Owns the lock and the tables of the mount's namespace state:

* **nodes**: path → the :class:`~s3regfs.fs.writeback.Node` of an open file (attached while it
  has handles; its name wins over the bucket and the metadata cache);
* **local dirs**: directories made by ``mkdir`` or kept after their last entry went (S3 would
  drop them), with their mtime, and an index parent → names for listings;
* **hidden**: keys of files unlinked while open whose delete waits for their last close (the
  name is gone for this mount, the key is still in the bucket);
* **orphans**: libfuse's ``.fuse_hidden*`` stand-in names → open unlinked files (never keys);
* **displaced**: open files whose version another writer replaced, once a new open of their name
  got the current one (their handles read on at the old version);
* **lost**: the paths closed with data that could not be saved.

and the moves that change a table and a node's name together (:meth:`Namespace.move_node`,
:meth:`Namespace.move_tree`, :meth:`Namespace.move_hidden`; the node side is
:meth:`Node.move_to <s3regfs.fs.writeback.Node.move_to>`).  Nothing here makes a request.

Lock order: path locks (:class:`~s3regfs.fs.handles.PathLocks`) → node lock → namespace lock.
The namespace lock is held only while a table changes: never across a driver call and never
while waiting for a node's lock (a method that needs both takes the node's lock first), so a
lookup answered from the tables never waits for S3.
"""

from __future__ import annotations

import errno
import re
import threading

from s3regfs.fs import paths
from s3regfs.fs.errors import FsError
from s3regfs.fs.metacache import ABSENT, DIR, Meta
from s3regfs.fs.writeback import Node

__all__ = ["DIR", "Namespace", "is_stand_in"]  # DIR: every directory's Meta (its mtime: Namespace.dir_mtime)

_STAND_IN = re.compile(r"\.fuse_hidden[0-9a-f]{16}")
"""libfuse's stand-in for an unlinked open file (``hidden_name()``: ``.fuse_hidden%08x%08x``)."""


def is_stand_in(path: str) -> bool:
    """True for libfuse's stand-in name of an unlinked open file (never a key, never listed)."""
    return _STAND_IN.fullmatch(paths.basename(path)) is not None


class Namespace:
    """The namespace tables of one mount; thread-safe."""

    def __init__(self, mount_time: float) -> None:
        self.mount_time = mount_time
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._local_dirs: dict[str, float] = {}
        self._local_kids: dict[str, set[str]] = {}  # parent -> names of its local dirs
        self._hidden: dict[str, Node] = {}
        self._orphans: dict[str, Node] = {}  # libfuse's .fuse_hidden* stand-in names → open unlinked files
        self._displaced: dict[Node, str] = {}  # open files of a version replaced in the bucket → their old name
        self._lost: list[str] = []

    # == questions ===================================================================================

    def known(self, path: str) -> tuple[Meta, bool] | None:
        """What the tables say about ``path`` (not ``/``), or None when only the bucket knows.

        ``(Meta, True)`` for an open file (a stand-in name's file included), ``(DIR, False)``
        for a local directory, ``(ABSENT, False)`` for a hidden name or an unknown stand-in name.
        """
        if is_stand_in(path):
            with self._lock:
                orphan = self._orphans.get(path)
            return (orphan.meta(), True) if orphan is not None else (ABSENT, False)
        with self._lock:
            node = self._nodes.get(path)
            if node is not None:
                return node.meta(), True
            if path in self._local_dirs:
                return DIR, False
            if path in self._hidden:
                return ABSENT, False
        return None

    def node(self, path: str) -> Node | None:
        """The open file named ``path``."""
        with self._lock:
            return self._nodes.get(path)

    def orphan(self, name: str) -> Node:
        """The open unlinked file behind libfuse's stand-in ``name``; ENOENT when there is none."""
        with self._lock:
            node = self._orphans.get(name)
        if node is None:
            raise FsError(errno.ENOENT, f"{name}: no such file")
        return node

    def in_use(self, path: str) -> bool:
        """``path`` names an open file, or a key whose delete waits for a last close."""
        with self._lock:
            return path in self._nodes or path in self._hidden

    def dir_mtime(self, path: str) -> float:
        """The mtime of a directory: when this mount made it, else the mount time."""
        return self._local_dirs.get(path, self.mount_time)  # one dict read: no lock needed

    def overlay(self, dpath: str, entries: dict[str, Meta]) -> set[str]:
        """Lay this mount's names over a listing of ``dpath``; the names that are open files.

        Local directories and open files are added, hidden names (not reopened) removed.
        """
        with self._lock:
            kids = list(self._local_kids.get(dpath, ()))
            nodes = [(paths.basename(p), n) for p, n in self._nodes.items() if p != "/" and paths.parent(p) == dpath]
            hidden = [paths.basename(h) for h in self._hidden if paths.parent(h) == dpath]
        live: set[str] = set()
        for name in kids:
            entries[name] = DIR
        for name, node in nodes:  # the node locks outside the namespace lock (the lock order)
            listed = entries.get(name)
            if listed is not None and listed.etag is not None and node.served_version() not in (None, listed.etag):
                continue  # another writer replaced the file: the bucket's attributes, as stat shows them
            entries[name] = node.meta()
            live.add(name)
        for name in hidden:
            if name not in live:
                entries.pop(name, None)
        return live

    def occupancy(self, dpath: str) -> tuple[bool, set[str]]:
        """(True when an open file or local directory is below ``dpath``; the hidden keys below it)."""
        with self._lock:
            busy = any(paths.is_under(p, dpath) for p in self._nodes) or bool(self._local_kids.get(dpath))
            hidden = {p for p in self._hidden if paths.is_under(p, dpath)}
        return busy, hidden

    def hidden_under(self, dpath: str) -> dict[str, Node]:
        """The hidden keys below ``dpath`` and their open files."""
        with self._lock:
            return {p: n for p, n in self._hidden.items() if paths.is_under(p, dpath)}

    def nodes_under(self, dpath: str) -> list[Node]:
        """The open files below ``dpath``."""
        with self._lock:
            return [n for p, n in self._nodes.items() if paths.is_under(p, dpath)]

    # == directories =================================================================================

    def add_dir(self, path: str, when: float) -> None:
        """Record a directory of this mount (made at ``when``)."""
        with self._lock:
            self._add_dir(path, when)

    def drop_dir(self, path: str) -> None:
        """Forget a directory of this mount."""
        with self._lock:
            self._drop_dir(path)

    def keep_parent(self, path: str) -> None:
        """The parent of a removed entry stays a directory in this mount (S3 would drop it)."""
        parent = paths.parent(path)
        if parent == "/":
            return
        self.add_dir(parent, self.mount_time)

    def _add_dir(self, path: str, when: float) -> None:
        if path != "/" and path not in self._local_dirs:
            self._local_dirs[path] = when
            self._local_kids.setdefault(paths.parent(path), set()).add(paths.basename(path))

    def _drop_dir(self, path: str) -> float | None:
        when = self._local_dirs.pop(path, None)
        if when is not None:
            kids = self._local_kids.get(paths.parent(path))
            if kids is not None:
                kids.discard(paths.basename(path))
                if not kids:
                    del self._local_kids[paths.parent(path)]
        return when

    # == open files ==================================================================================

    def attach(self, node: Node) -> Node:
        """``node`` is the open file at its path."""
        assert node.path is not None
        with self._lock:
            self._nodes[node.path] = node
        return node

    def forget(self, path: str | None, node: Node) -> None:
        """``node`` no longer answers for ``path`` (closed, unlinked or displaced)."""
        if path is None:
            return
        with self._lock:
            if self._nodes.get(path) is node:
                del self._nodes[path]

    def displace(self, path: str, node: Node) -> None:
        """``node`` reads a version the bucket replaced at ``path``: a new open there gets a node of its own."""
        with self._lock:
            if self._nodes.get(path) is node:
                del self._nodes[path]
            self._displaced[node] = path

    def displaced_at(self, path: str) -> bool:
        """Handles of a replaced version of ``path`` are open (the kernel's one inode holds two versions)."""
        with self._lock:
            return path in self._displaced.values()

    def displaced_from(self, node: Node) -> str | None:
        """The name whose replaced version ``node`` reads, or None."""
        with self._lock:
            return self._displaced.get(node)

    def drop_displaced(self, node: Node) -> None:
        """The last handle of ``node`` is closed."""
        with self._lock:
            self._displaced.pop(node, None)

    def move_node(self, node: Node, src: str, dst: str) -> None:
        """A renamed open file: the table and the node's name change together."""
        with node.lock, self._lock:
            if self._nodes.get(src) is node:
                del self._nodes[src]
            self._nodes[dst] = node
            node.move_to(dst)

    def move_tree(self, src: str, dst: str, when: float) -> None:
        """Local directories, stand-in names and open files below ``src`` move to ``dst``.

        Node names are assigned without the node locks (the lock order is node → namespace);
        the caller holds the path locks of both trees' roots and committed the nodes first.
        """
        with self._lock:
            for path in sorted(p for p in self._local_dirs if p == src or paths.is_under(p, src)):
                moved = self._drop_dir(path)
                self._add_dir(paths.rebase(path, src, dst), moved or self.mount_time)
            for path in [p for p in self._orphans if paths.is_under(p, src)]:
                self._orphans[paths.rebase(path, src, dst)] = self._orphans.pop(path)
            for path in [p for p in self._nodes if paths.is_under(p, src)]:
                node = self._nodes.pop(path)
                new_path = paths.rebase(path, src, dst)
                self._nodes[new_path] = node
                node.move_to(new_path)
            self._add_dir(dst, when)

    # == unlinked open files =========================================================================

    def hide(self, key: str, node: Node) -> None:
        """``node`` was unlinked while open; its key is deleted at its last close."""
        node.defer_delete()
        with self._lock:
            self._hidden[key] = node

    def unhide(self, key: str) -> Node | None:
        """The hidden key is reused (or deleted now): its open file, no longer waiting for it."""
        with self._lock:
            return self._hidden.pop(key, None)

    def drop_hidden(self, key: str, node: Node) -> None:
        """The deferred delete of ``key`` ran (only now: an rmdir of its directory waits for it)."""
        with self._lock:
            if self._hidden.get(key) is node:
                del self._hidden[key]

    def move_hidden(self, src: str, dst: str, hidden: dict[str, Node]) -> None:
        """The hidden keys ``hidden`` (below ``src``) were moved to ``dst`` with their directory."""
        with self._lock:
            for old_key, node in hidden.items():
                new_key = paths.rebase(old_key, src, dst)
                del self._hidden[old_key]
                self._hidden[new_key] = node
                node.move_key(new_key)

    def take_hidden(self) -> list[tuple[str, Node]]:
        """Every hidden key (at shutdown: their deletes run now)."""
        with self._lock:
            hidden = list(self._hidden.items())
            self._hidden.clear()
        return hidden

    def add_orphan(self, name: str, node: Node) -> None:
        with self._lock:
            self._orphans[name] = node

    def drop_orphan(self, name: str) -> Node | None:
        with self._lock:
            return self._orphans.pop(name, None)

    # == data that could not be saved ================================================================

    def record_lost(self, label: str) -> None:
        with self._lock:
            self._lost.append(label)

    def lost(self) -> list[str]:
        with self._lock:
            return list(self._lost)
