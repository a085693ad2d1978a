"""Metadata caching: request counts of listings and lookups, TTLs, and invalidation by own changes."""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import time
from types import SimpleNamespace

import pytest

from s3regfs.driver.base import ZERO_TIME, FileInfo
from s3regfs.driver.errors import FilledBuffer
from s3regfs.driver.inmemory import InMemoryDriver
from s3regfs.fs.errors import FsError
from s3regfs.fs.listing import MAX_AHEAD
from s3regfs.fs.metacache import ABSENT, Meta, MetaCache
from s3regfs.fs.metaindex import MetaIndex
from tests.fs.conftest import Clock, Mount


def _fill(m: Mount, n: int, directory: str = "/d") -> None:
    for i in range(n):
        m.put(f"{directory}/f{i:04d}", b"x" * i)


def test_readdir_then_getattr_of_every_entry_costs_one_listing_and_no_stat(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(listing_walk_ahead=0)
    _fill(m, 300)
    m.driver.reset()
    entries = m.fs.readdir("/d")
    for name, attr in entries:
        assert m.fs.getattr(f"/d/{name}") == attr
    assert m.driver.snapshot() == {"list_info": 1}


def test_readdir_fills_attributes_from_the_listing(m: Mount) -> None:
    _fill(m, 50)
    sizes = {name: attr.size for name, attr in m.fs.readdir("/d")}
    assert sizes == {f"f{i:04d}": i for i in range(50)}
    assert m.driver.count("stat") == 0


def test_getattr_of_a_child_of_a_listed_directory_needs_no_request(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(listing_walk_ahead=0)
    _fill(m, 10)
    m.fs.readdir("/d")
    m.driver.reset()
    assert m.fs.getattr("/d/f0003").size == 3
    with pytest.raises(FsError) as info:  # a name the listing lacks is absent: no request either
        m.fs.getattr("/d/missing")
    assert info.value.errno == errno.ENOENT
    assert m.driver.count() == 0


def test_find_over_a_tree_costs_about_one_walk_per_1000_keys_and_no_stat(m: Mount) -> None:
    """walk-ahead: a traversal of a registry-shaped tree needs no per-directory listing."""
    for i in range(300):
        digest = f"{i:04x}" * 16
        m.put(f"/docker/registry/v2/blobs/sha256/{digest[:2]}/{digest}/data", b"b")
        m.put(f"/docker/registry/v2/repositories/r{i % 7}/_layers/sha256/{digest}/link", b"l")
    m.driver.reset()
    seen = []

    def find(path: str) -> None:
        for name, attr in m.fs.readdir(path):
            child = ("" if path == "/" else path) + "/" + name
            seen.append(child)
            m.fs.getattr(child)
            if attr.mode & 0o040000:
                find(child)

    find("/")
    assert sum(1 for p in seen if p.endswith(("/data", "/link"))) == 600
    assert m.driver.count("stat") == 0
    assert m.driver.count("walk") == 1  # 600 keys < 1000: one walk of the whole tree
    assert m.driver.count("list_info", "list") == 0


def test_walk_ahead_resumes_instead_of_listing_every_directory(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(listing_walk_ahead=50)
    for i in range(400):
        m.put(f"/t/d{i // 4:03d}/f{i % 4}", b"x")
    m.driver.reset()
    dirs = [name for name, _ in m.fs.readdir("/t")]
    for name in dirs:
        assert len(m.fs.readdir(f"/t/{name}")) == 4
    # 100 directories read, but far fewer than 100 driver listings/walks
    assert m.driver.count("walk") + m.driver.count("list_info") < 30


def _idle(m: Mount) -> None:
    """Wait until no background listing runs (polls the lister's own flag, with a deadline)."""
    deadline = time.monotonic() + 10
    while any(s.fetching for s in list(m.fs._lister._sessions.values())):
        assert time.monotonic() < deadline, "a background listing never finished"
        time.sleep(0.001)


def test_walk_ahead_fetches_the_next_batch_in_the_background_one_ahead(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(listing_walk_ahead=50)
    for i in range(400):
        m.put(f"/t/d{i // 4:03d}/f{i % 4}", b"x")
    m.driver.reset()
    m.fs.readdir("/t")
    _idle(m)
    assert m.driver.count("walk") == 2, "the batch the reader waited for, and one more ahead of it"
    seen = 0
    for name, _ in m.fs.readdir("/t"):
        entries = m.fs.readdir(f"/t/{name}")
        assert [n for n, _ in entries] == ["f0", "f1", "f2", "f3"]
        seen += len(entries)
    _idle(m)
    assert seen == 400
    walks = m.driver.count("walk")
    assert 400 // 50 <= walks <= 400 // 50 + 3, "about one batch per 50 keys: no batch fetched twice"


def _hold_walks_after(m: Mount, free: int) -> tuple[threading.Event, list[str]]:
    """The lister's walks after the first ``free`` wait until the returned event is set (fault injection)."""
    lister = m.fs._lister
    inner_walk = lister.driver.walk
    release = threading.Event()
    walks: list[str] = []

    def held(path, fn, start_after_hint=""):  # type: ignore[no-untyped-def]
        walks.append(path)
        if len(walks) > free:
            assert release.wait(10), "the test never released the walk"
        return inner_walk(path, fn, start_after_hint)

    lister.driver = SimpleNamespace(walk=held, list_info=lister.driver.list_info)
    return release, walks


def _names_while_the_walk_is_held(m: Mount, release: threading.Event, path: str) -> list[str]:
    """``names(path)`` on another thread, which must finish while the walk is held; then the walk goes on."""
    done = threading.Event()
    found: list[list[str]] = []
    reader = threading.Thread(target=lambda: (found.append(m.names(path)), done.set()))
    reader.start()
    try:
        finished = done.wait(5)
    finally:
        release.set()
        reader.join(10)
    assert finished, f"the listing of {path} waited for the walk"
    return found[0]


def test_a_directory_larger_than_a_batch_is_listed_at_once_while_the_next_batch_is_slow(make_fs) -> None:  # type: ignore[no-untyped-def]
    """``find`` reads a directory before the walk has left it.  One the walk has been inside for a whole
    batch (above a subtree larger than a batch) cannot come from the next batch either: it is listed on
    its own at once, and the reader does not wait for that batch (it waited for one batch per such
    directory before).  One the last batch entered (a repository the batch ended in) comes from the
    next batch, without a listing of its own."""
    m = make_fs(listing_walk_ahead=50)
    for i in range(400):
        m.put(f"/t/a/d{i // 4:03d}/f{i % 4}", b"x")
    lister = m.fs._lister
    release, walks = _hold_walks_after(m, 2)
    try:
        assert m.names("/t") == ["a"]  # the reader's own first batch, then one in the background
        _idle(m)
        session = lister._sessions["/t"]
        boundary = session.chain[-1]  # entered by the second batch, and still open
        assert boundary.startswith("/t/a/d") and "/t/a" in session.chain
        m.driver.reset()
    except BaseException:
        release.set()
        raise
    assert _names_while_the_walk_is_held(m, release, "/t/a") == [f"d{i:03d}" for i in range(100)]
    assert m.driver.count("list_info") == 1
    assert m.names(boundary) == ["f0", "f1", "f2", "f3"]
    _idle(m)
    assert m.driver.count("list_info") == 1, "the directory the last batch ended in came from the next one"
    assert len(walks) >= 3


def test_a_directory_that_held_the_whole_first_batch_is_listed_at_once_while_the_second_is_slow(make_fs) -> None:  # type: ignore[no-untyped-def]
    """``find`` reads the top of a tree (``docker``, ``registry``, ``v2``, ``blobs``...) right after
    the walk's first batch, while the second is in flight.  A directory that holds every file of a
    finished batch is larger than a batch: it is listed on its own at once instead of waiting for the
    batch in flight (each of them waited for one, about a second at the start of a cold ``find`` of
    the 10,000-object tree: docs/PERFORMANCE.md "The walk and its reader")."""
    m = make_fs(listing_walk_ahead=50)
    for i in range(400):
        m.put(f"/t/a/d{i // 4:03d}/f{i % 4}", b"x")
    release, _ = _hold_walks_after(m, 1)
    top = m.names("/t")  # the reader's own first batch (never held); the second is held in the walk
    m.driver.reset()
    below = _names_while_the_walk_is_held(m, release, "/t/a")
    assert (top, below) == (["a"], [f"d{i:03d}" for i in range(100)])
    assert m.driver.count("list_info") == 1, "listed on its own, once"
    _idle(m)
    for i in range(100):  # the walk goes on: every directory below is complete
        assert m.names(f"/t/a/d{i:03d}") == ["f0", "f1", "f2", "f3"]


def test_a_walk_runs_at_most_max_ahead_batches_ahead_of_its_reader(make_fs) -> None:  # type: ignore[no-untyped-def]
    """Listings a walk fetches too far ahead are old when read (a repository's expire after
    metadata_ttl, and then each costs a LIST again): however often the reader lists directories the
    walk is inside, the walk goes no further than MAX_AHEAD batches until the reader reaches them."""
    m = make_fs(listing_walk_ahead=50)
    for i in range(2000):
        m.put(f"/t/a/d{i // 4:03d}/f{i % 4}", b"x")
    m.driver.reset()
    assert m.names("/t") == ["a"]
    for _ in range(6):
        assert len(m.names("/t/a")) == 500  # the walk is inside /t/a: listed on its own each time
        _idle(m)
        m.clock.advance(m.fs.options.metadata_ttl + 0.1)  # (so the next time asks again)
    assert m.driver.count("walk") <= 1 + MAX_AHEAD, "the reader's own batch and at most MAX_AHEAD more"
    for i in range(500):  # reading on, every directory is complete
        assert [n for n, _ in m.fs.readdir(f"/t/a/d{i:03d}")] == ["f0", "f1", "f2", "f3"]


def test_own_changes_invalidate_at_once(m: Mount) -> None:
    _fill(m, 3)
    assert len(m.fs.readdir("/d")) == 3
    m.write_file("/d/new", b"12345")
    assert m.fs.getattr("/d/new").size == 5
    assert "new" in m.names("/d")
    m.write_file("/d/new", b"1")
    assert dict(m.fs.readdir("/d"))["new"].size == 1
    m.fs.unlink("/d/f0001")
    assert "f0001" not in m.names("/d")
    m.fs.rename("/d/f0002", "/d/g")
    assert m.names("/d") == ["f0000", "g", "new"]
    m.fs.mkdir("/d/sub", 0o755)
    assert "sub" in m.names("/d")
    m.fs.rmdir("/d/sub")
    assert "sub" not in m.names("/d")
    fh = m.fs.open("/d/g", os.O_WRONLY)
    m.fs.truncate("/d/g", 0, fh)
    m.fs.release(fh)
    assert m.fs.getattr("/d/g").size == 0


def test_other_writers_changes_show_within_the_ttl(m: Mount) -> None:
    _fill(m, 2)
    assert m.names("/d") == ["f0000", "f0001"]
    m.put("/d/late", b"from another mount")
    m.store.delete("/d/f0000")
    assert m.names("/d") == ["f0000", "f0001"]  # still cached
    m.clock.advance(m.fs.options.metadata_ttl + 0.1)
    assert m.names("/d") == ["f0001", "late"]
    assert m.fs.getattr("/d/late").size == 18


DIGEST = "ab" * 32
BLOB = f"/docker/registry/v2/blobs/sha256/ab/{DIGEST}/data"
TAG = "/docker/registry/v2/repositories/r/_manifests/tags/latest/current/link"


def test_digest_paths_are_cached_for_the_digest_ttl(make_fs) -> None:  # type: ignore[no-untyped-def]
    """Content-addressed paths (…/sha256/<hex> and below) outlive metadata_ttl; a tag link does not."""
    m = make_fs(metadata_ttl=30.0, digest_ttl=600.0, listing_walk_ahead=0)
    m.put(BLOB, b"blob")
    m.put(TAG, b"sha256:" + DIGEST.encode())
    assert m.fs.getattr(f"/docker/registry/v2/blobs/sha256/ab/{DIGEST}").mode & 0o040000
    assert m.fs.getattr(BLOB).size == 4 and m.fs.getattr(TAG).size == 71
    m.driver.reset()
    m.clock.advance(300)
    assert m.fs.getattr(BLOB).size == 4
    assert m.fs.getattr(f"/docker/registry/v2/blobs/sha256/ab/{DIGEST}").mode & 0o040000
    assert m.driver.count() == 0, "the blob and its digest directory come from the cache"
    assert m.fs.getattr(TAG).size == 71
    assert m.driver.count("stat") == 1, "the tag link was asked again after metadata_ttl"
    m.store.delete(BLOB)
    m.clock.advance(300.1)
    with pytest.raises(FsError) as info:
        m.fs.getattr(BLOB)
    assert info.value.errno == errno.ENOENT, "a deleted blob disappears after digest_ttl"


def _registry_tree(m: Mount, repos: int = 3) -> list[str]:
    """Blobs, layer links and tags of ``repos`` repositories; returns every key."""
    keys = []
    for r in range(repos):
        for i in range(4):
            digest = f"{r:02x}{i:02x}" * 16
            keys += [f"/docker/registry/v2/blobs/sha256/{digest[:2]}/{digest}/data",
                     f"/docker/registry/v2/repositories/team/app{r}/_layers/sha256/{digest}/link",
                     f"/docker/registry/v2/repositories/team/app{r}/_manifests/tags/v{i}/index/sha256/{digest}/link",
                     f"/docker/registry/v2/repositories/team/app{r}/_manifests/tags/v{i}/current/link"]
    for key in keys:
        m.put(key, b"sha256:" + key.encode()[-64:])
    return keys


def _walk(m: Mount, path: str = "/") -> None:
    for name, attr in m.fs.readdir(path):
        if attr.mode & 0o040000:
            _walk(m, ("" if path == "/" else path) + "/" + name)


def test_after_a_walk_longer_than_the_ttl_the_digest_paths_and_their_directories_need_no_request(make_fs) -> None:  # type: ignore[no-untyped-def]
    """A walk outlasting metadata_ttl: what it learnt of digest paths, and so of every directory above
    one, answers later lookups without a request; only names with no digest path below them
    (a tag's ``current/link``) are asked again."""
    m = make_fs(metadata_ttl=4.0, digest_ttl=600.0, lookup_subtree=0)
    keys = _registry_tree(m)
    _walk(m)
    m.driver.reset()
    m.clock.advance(60)
    digest_keys = [k for k in keys if not k.endswith("/current/link")]
    for key in digest_keys:
        parts = key.split("/")
        for depth in range(2, len(parts) + 1):
            m.fs.getattr("/".join(parts[:depth]))
    assert m.driver.count() == 0, "every digest path and every directory above one comes from the cache"
    tag = next(k for k in keys if k.endswith("/current/link"))
    assert m.fs.getattr(tag).size == 71
    assert m.driver.count() == 1, "a tag's current link is asked again after metadata_ttl"


def test_directories_above_digest_paths_evicted_from_memory_are_known_from_the_index(make_fs) -> None:  # type: ignore[no-untyped-def]
    """A walk larger than memory and longer than metadata_ttl (a million objects): the directories above
    digest paths outnumber what memory keeps of them, and the digest listings on disk still vouch for
    them, so a later lookup by path needs no request; a tag's current link is still asked again."""
    m = make_fs(metadata_ttl=4.0, digest_ttl=600.0, lookup_subtree=0, metadata_cache_entries=40)
    keys = _registry_tree(m, repos=8)
    _walk(m)
    assert m.fs._cache.index_names() > 0, "listings were evicted to the index"
    m.driver.reset()
    m.clock.advance(60)
    for key in [k for k in keys if not k.endswith("/current/link")]:
        parts = key.split("/")
        for depth in range(2, len(parts)):  # as the kernel looks a path up: each directory on the way
            assert m.fs.getattr("/".join(parts[:depth])).mode & 0o040000
        assert m.fs.getattr(key).size == 71
    assert m.driver.count() == 0, "every directory above a digest path came from memory or the index"
    m.clock.advance(600)
    assert m.fs.getattr(keys[1]).size == 71
    assert m.driver.count() > 0, "past digest_ttl the index vouches for nothing"


def test_a_directory_above_a_cached_digest_path_goes_when_a_newer_listing_lacks_it(make_fs) -> None:  # type: ignore[no-untyped-def]
    """The rule never outranks newer knowledge: a repository deleted by another writer is gone once its
    parent is listed again."""
    m = make_fs(metadata_ttl=4.0, digest_ttl=600.0, lookup_subtree=0)
    keys = _registry_tree(m, repos=2)
    _walk(m)
    m.clock.advance(60)
    for key in [k for k in keys if "/app1/" in k]:
        m.store.delete(key)
    names = {name for name, _ in m.fs.readdir("/docker/registry/v2/repositories/team")}
    assert names == {"app0"}
    with pytest.raises(FsError) as info:  # the kernel resolves a path component by component: this first
        m.fs.getattr("/docker/registry/v2/repositories/team/app1")
    assert info.value.errno == errno.ENOENT


def test_a_removal_below_a_directory_drops_what_its_digest_paths_told_of_it() -> None:
    clock = Clock()
    cache = MetaCache(4.0, 1.0, 1000, clock=clock, digest_ttl=600.0)
    blob_dir = f"/v2/blobs/sha256/ab/{DIGEST}"
    cache.put_listing(blob_dir, {"data": Meta(False, 4, 1.0)})
    clock.advance(60)
    assert cache.lookup("/v2/blobs/sha256/ab") == Meta(True, 0, 0.0)
    assert cache.lookup(blob_dir) == Meta(True, 0, 0.0)
    cache.removed(blob_dir + "/data")
    assert cache.lookup("/v2/blobs/sha256/ab") is None, "asked again: the removed file may have been the last"
    assert cache.lookup("/v2/blobs") is None


def test_digest_ttl_never_outlives_a_disabled_cache(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(metadata_ttl=0.0, negative_ttl=0.0, digest_ttl=600.0)
    m.put(BLOB, b"blob")
    assert m.fs.getattr(BLOB).size == 4
    m.store.delete(BLOB)
    with pytest.raises(FsError):
        m.fs.getattr(BLOB)


def test_negative_entries_are_cached_briefly(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(negative_ttl=1.0, metadata_ttl=5.0)
    for _ in range(2):
        with pytest.raises(FsError):
            m.fs.getattr("/ghost")
    assert m.driver.count("stat") == 1
    m.put("/ghost", b"boo")
    with pytest.raises(FsError):
        m.fs.getattr("/ghost")
    m.clock.advance(1.1)
    assert m.fs.getattr("/ghost").size == 3


def test_negative_entries_are_invalidated_by_own_creates(m: Mount) -> None:
    with pytest.raises(FsError):
        m.fs.getattr("/soon")
    m.write_file("/soon", b"here")
    assert m.fs.getattr("/soon").size == 4
    m.fs.mkdir("/dir-soon", 0o755) if False else None
    with pytest.raises(FsError):
        m.fs.getattr("/dsoon")
    m.fs.mkdir("/dsoon", 0o755)
    assert m.fs.getattr("/dsoon").nlink == 2


def test_creating_files_in_a_new_directory_needs_no_lookups(m: Mount) -> None:
    m.fs.mkdir("/fresh", 0o755)
    m.driver.reset()
    for i in range(20):
        with pytest.raises(FsError):
            m.fs.getattr(f"/fresh/f{i}")  # the kernel's lookup before create
        m.write_file(f"/fresh/f{i}", b"x")
    assert m.driver.count("stat", "list_info", "list", "walk") == 0
    assert m.driver.count("put_content") == 20


def test_creating_many_files_after_a_directory_listing_expired_asks_for_the_listing_not_for_each_name(
    make_fs,  # type: ignore[no-untyped-def]
) -> None:
    """Bulk creates (``cp -r``, ``rsync``, a registry's uploads) outlast ``metadata_ttl``: the kernel's lookup of
    each new name then needs the bucket.  Once a second name is missing from the same directory, one listing of
    it answers the next names for ``metadata_ttl`` (a name a cached listing lacks is absent), instead of a
    request before every create.  What another writer adds still shows once that listing expires."""
    m = make_fs(metadata_ttl=4.0, negative_ttl=1.0)
    m.fs.mkdir("/bulk", 0o755)
    m.clock.advance(4.5)  # the empty listing this mount made for its new directory has expired
    m.driver.reset()
    for i in range(40):
        with pytest.raises(FsError):
            m.fs.getattr(f"/bulk/f{i:02}")  # the kernel's lookup before create
        m.write_file(f"/bulk/f{i:02}", b"x")
        m.clock.advance(0.2)  # 8 s in all: the listing expires once on the way
    lookups = m.driver.count("stat", "list_info", "list", "walk")
    assert m.driver.count("put_content") == 40
    assert lookups <= 4, m.driver.snapshot()  # per metadata_ttl: one name asked, then one listing
    assert sorted(m.names("/bulk")) == [f"f{i:02}" for i in range(40)]
    m.put("/bulk/from-another-writer", b"y")
    m.clock.advance(4.1)
    assert m.fs.getattr("/bulk/from-another-writer").size == 1
    with pytest.raises(FsError):
        m.fs.getattr("/bulk/still-missing")


def test_metadata_ttl_zero_disables_the_cache(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(metadata_ttl=0.0, negative_ttl=0.0)
    m.put("/f", b"x")
    m.fs.getattr("/f")
    m.fs.getattr("/f")
    assert m.driver.count("stat") == 2


# -- the cache itself ------------------------------------------------------------------------------------


def test_newest_knowledge_wins() -> None:
    clock = Clock()
    cache = MetaCache(5.0, 1.0, 1000, clock)
    cache.put("/d/a", Meta(False, 1, 1.0))
    clock.advance(0.1)
    cache.put_listing("/d", {"a": Meta(False, 2, 2.0)})
    assert cache.lookup("/d/a") == Meta(False, 2, 2.0)
    clock.advance(0.1)
    cache.removed("/d/a")
    assert cache.lookup("/d/a") is ABSENT
    assert cache.listing("/d") == {}
    clock.advance(0.1)
    cache.added("/d/b", Meta(False, 3, 3.0))
    assert cache.listing("/d") == {"b": Meta(False, 3, 3.0)}


def test_a_listing_fetched_before_an_own_change_does_not_undo_it() -> None:
    clock = Clock()
    cache = MetaCache(5.0, 1.0, 1000, clock)
    fetched_at = clock()
    clock.advance(0.1)
    cache.added("/d/new", Meta(False, 1, 1.0))  # committed while the LIST was in flight
    cache.removed("/d/old")
    clock.advance(0.1)
    cache.put_listing("/d", {"old": Meta(False, 1, 1.0)}, fetched_at)
    assert cache.listing("/d") == {"new": Meta(False, 1, 1.0)}


def test_clear_forgets_everything_and_refuses_what_was_fetched_before_it() -> None:
    clock = Clock()
    cache = MetaCache(60.0, 60.0, 1000, clock)
    cache.put_listing("/d", {"a": Meta(False, 1, 1.0), "sub": Meta(True, 0, 0.0)})
    cache.put("/e/f", Meta(False, 2, 2.0))
    cache.put_absent("/e/gone")
    asked = clock()  # a LIST and a stat in flight when the reload comes
    clock.advance(0.1)
    assert cache.clear() == ["/d", "/d/a", "/d/sub", "/e/f"]  # the existing names it knew
    assert [cache.lookup(p) for p in ("/d/a", "/e/f", "/e/gone")] == [None, None, None]
    cache.put_listing("/d", {"a": Meta(False, 1, 1.0)}, asked)
    cache.put("/e/f", Meta(False, 2, 2.0), asked)
    cache.put_absent("/e/gone", asked)
    assert cache.listing("/d") is None and cache.lookup("/e/f") is None and cache.lookup("/e/gone") is None
    cache.put("/e/f", Meta(False, 3, 3.0), clock())  # asked after the clear: kept
    assert cache.lookup("/e/f") == Meta(False, 3, 3.0)


def test_drop_caches_makes_another_writers_change_visible_at_once(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(metadata_ttl=60.0, negative_ttl=60.0)
    m.put("/d/a", b"1")
    assert m.names("/d") == ["a"]
    m.put("/d/b", b"22")
    m.put("/d/a", b"333")
    assert m.names("/d") == ["a"] and m.fs.getattr("/d/a").size == 1  # within the TTL: not yet
    assert "/d/a" in m.fs.drop_caches()
    assert m.names("/d") == ["a", "b"] and m.fs.getattr("/d/a").size == 3


def test_directories_above_digest_paths_are_bounded_and_live_digest_ttl_from_their_fact() -> None:
    clock = Clock()
    cache = MetaCache(4.0, 1.0, 4, clock=clock, digest_ttl=600.0)  # four anchors at most
    for i in range(5):  # each digest directory anchors /x{i}/sha256 and /x{i}, learned at clock i
        cache.put_listing(f"/x{i}/sha256/{DIGEST}", {"data": Meta(False, 71, 1.0)}, stamp=clock())
        clock.advance(1)
    clock.advance(10)  # past metadata_ttl: only the anchors answer for the directories above
    directory = Meta(True, 0, 0.0)
    assert [cache.lookup(f"/x{i}") for i in range(5)] == [None, None, None, directory, directory], (
        "the least recently anchored went first"
    )
    clock.now = 1000.0 + 603.5  # /x3 was learned at 1003, /x4 at 1004: digest_ttl runs from the fact
    assert cache.lookup("/x3") is None and cache.lookup("/x4") == directory
    clock.advance(1)
    assert cache.lookup("/x4") is None


def test_cache_entries_are_bounded() -> None:
    cache = MetaCache(5.0, 1.0, 100, Clock())
    for i in range(1000):
        cache.put(f"/f{i}", Meta(False, i, 0.0))
    cache.put_listing("/big", {f"n{i}": Meta(False, 0, 0.0) for i in range(500)})  # larger than the cache
    assert cache.listing("/big") is None
    known = sum(1 for i in range(1000) if cache.lookup(f"/f{i}") is not None)
    assert known <= 100


class FlatWalk(InMemoryDriver):
    """An in-memory store whose walk behaves like the s3 driver's: one flat listing in raw key
    order, directories inferred, resumed with StartAfter (re-reporting the directories it re-enters)."""

    def walk(self, path: str, fn, start_after_hint: str = "") -> None:  # type: ignore[no-untyped-def]
        self.walks = getattr(self, "walks", 0) + 1
        prefix = "/" if path == "/" else path + "/"
        with self._lock:
            keys = sorted(k for k in self._files if k.startswith(prefix) and k > start_after_hint)
        prev = path
        for key in keys:
            parents = []
            parent = key.rsplit("/", 1)[0]
            while (
                parent not in ("", "/")
                and not (prev == parent or prev.startswith(parent + "/"))
                and parent != path
            ):
                parents.append(parent)
                parent = parent.rsplit("/", 1)[0]
            infos = [FileInfo(d, 0, ZERO_TIME, True) for d in reversed(parents)]
            infos.append(self.stat(key))
            for info in infos:
                if info.is_dir:
                    prev = info.path
                try:
                    fn(info)
                except FilledBuffer:
                    return


def test_walk_ahead_on_a_flat_key_order_walk(make_fs) -> None:  # type: ignore[no-untyped-def]
    store = FlatWalk()
    m = make_fs(store=store, listing_walk_ahead=7)
    expected = {}
    for i in range(60):
        key = f"/r/{'ab'[i % 2]}{'-x' if i % 5 == 0 else ''}/d{i % 9}/f{i}"
        store.put_content(key, b"k" * i)
        expected[key] = i
    m.driver.reset()
    seen = {}

    def find(path: str) -> None:
        for name, attr in m.fs.readdir(path):
            child = path + "/" + name
            if attr.mode & 0o040000:
                find(child)
            else:
                seen[child] = attr.size

    find("/r")
    assert seen == expected
    assert m.driver.count("stat") == 0
    assert store.walks <= 60 // 7 + 3


def test_a_cold_lookup_by_path_learns_a_small_directory_in_the_same_request(make_fs) -> None:  # type: ignore[no-untyped-def]
    """``stat`` of blobs by their paths (no listing first): one lookup per new directory, none for ``data``.

    The lookup of ``<hex>`` (a directory of one file) brings its listing along (``stat_tree``), so the
    lookup of ``<hex>/data`` and a readdir of ``<hex>`` need no request; a larger directory does not,
    but its answer (the first ``lookup_subtree`` + 1 files, ``FirstFiles``) shows the directories
    between it and those files, whole where they end before the last of them.
    """
    m = make_fs(listing_walk_ahead=0, lookup_subtree=32)
    blobs = [f"/v2/blobs/ab/{i:064x}/data" for i in range(40)]  # more files than a lookup brings along
    for i, blob in enumerate(blobs):
        m.put(blob, b"x" * (i + 1))
    m.driver.reset()
    for i, blob in enumerate(blobs):
        parts = blob.strip("/").split("/")
        for depth in range(1, len(parts) + 1):  # the kernel looks up every component
            attr = m.fs.getattr("/" + "/".join(parts[:depth]))
        assert attr.size == i + 1
    # v2 once: its answer (33 files) shows blobs, ab and the first 32 <hex> whole; the 33rd <hex> holds
    # the last file shown (its data asked once); each later <hex> once
    assert m.driver.count("stat") == 1 + 1 + (len(blobs) - 33)
    assert m.driver.count() == m.driver.count("stat")
    assert m.fs.readdir(blobs[0].rsplit("/", 1)[0]) and m.driver.count("list_info") == 0
    m.fs.readdir("/v2/blobs/ab")  # 40 files below: it was not brought along
    assert m.driver.count("list_info") == 1


def test_a_lookup_brings_along_the_whole_subtree_of_a_small_directory(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(listing_walk_ahead=0)
    files = ["/repo/_manifests/tags/v1/current/link", "/repo/_manifests/tags/v1/index/sha256/ab/link",
             "/repo/_layers/sha256/cd/link"]
    for path in files:
        m.put(path, b"sha256:x")
    m.driver.reset()
    assert m.fs.getattr("/repo").mode & 0o040000
    for path in files:
        assert m.fs.getattr(path).size == 8
    assert sorted(name for name, _ in m.fs.readdir("/repo/_manifests/tags/v1")) == ["current", "index"]
    assert m.driver.count() == 1  # the lookup of /repo, one request, answered everything below it


# -- the on-disk index: listings evicted from memory (s3regfs/fs/metaindex.py) --------------------


def _tree(m: Mount, dirs: int = 30, files: int = 10) -> list[str]:
    keys = [f"/t/d{d:03d}/f{f}" for d in range(dirs) for f in range(files)]
    for key in keys:
        m.put(key, key.encode())
    return keys


def test_a_walk_larger_than_memory_is_still_known_from_the_index(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(metadata_cache_entries=40, listing_walk_ahead=0, lookup_subtree=0)
    keys = _tree(m)
    _walk(m)
    assert m.fs._cache.index_names() > 0, "listings were evicted to the index"
    m.driver.reset()
    for key in keys:
        assert m.fs.getattr(key).size == len(key)
    assert sorted(name for name, _ in m.fs.readdir("/t/d000")) == [f"f{f}" for f in range(10)]
    assert m.driver.count() == 0, "every lookup and listing came from memory or the index"


def test_without_the_index_a_walk_larger_than_memory_is_asked_again(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(metadata_cache_entries=40, metadata_index_entries=0, listing_walk_ahead=0, lookup_subtree=0)
    keys = _tree(m)
    _walk(m)
    m.driver.reset()
    for key in keys:
        m.fs.getattr(key)
    assert m.driver.count() > 0


def test_the_index_answers_only_until_expiry_and_never_past_an_own_change(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(metadata_cache_entries=40, listing_walk_ahead=0, lookup_subtree=0, metadata_ttl=5.0)
    keys = _tree(m)
    _walk(m)
    m.fs.unlink(keys[0])
    with pytest.raises(FsError) as info:
        m.fs.getattr(keys[0])
    assert info.value.errno == errno.ENOENT
    assert "f0" not in {name for name, _ in m.fs.readdir("/t/d000")}
    m.store.delete(keys[15])  # another writer: seen once the listing expires
    assert m.fs.getattr(keys[15]).size == len(keys[15])
    m.clock.advance(5.1)
    m.driver.reset()
    with pytest.raises(FsError):
        m.fs.getattr(keys[15])
    assert m.driver.count() > 0, "an expired listing in the index is not an answer"


def test_clearing_the_cache_empties_the_index(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(metadata_cache_entries=40, listing_walk_ahead=0, lookup_subtree=0)
    _tree(m)
    _walk(m)
    assert m.fs._cache.index_names() > 0
    m.fs.drop_caches()
    assert m.fs._cache.index_names() == 0


def test_a_spill_overtaken_by_an_own_change_is_undone() -> None:
    """A listing evicted from memory reaches the index outside the lock: a change made meanwhile wins."""
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        index = MetaIndex(os.path.join(tmp, "m.sqlite"), 1000)
        cache = MetaCache(60.0, 1.0, 3, clock=clock, index=index)
        cache.put_listing("/a", {"x": Meta(False, 1, 1.0), "y": Meta(False, 1, 1.0)})
        real_put = index.put

        def put_then_change(listings):  # type: ignore[no-untyped-def]
            real_put(list(listings))
            cache.removed("/a/x")  # lands between the spill and its check

        index.put = put_then_change  # type: ignore[method-assign]
        cache.put_listing("/b", {"z": Meta(False, 1, 1.0), "w": Meta(False, 1, 1.0)})  # evicts /a
        index.put = real_put  # type: ignore[method-assign]
        assert cache.lookup("/a/x") is ABSENT
        assert index.listing("/a", clock()) is None, "the overtaken listing was dropped from the index"
        index.close()
