"""KernelEntries (s3regfs/kernelentries.py, beside the core it serves): which directories are dropped from the kernel's cache, and when.

The effect on a real mount (the kernel forgets, libfuse frees its nodes) is
tests/fuse/test_memory_bound.py::test_a_find_over_a_large_tree_leaves_at_most_kernel_entries_names_in_the_kernel.
"""

from __future__ import annotations

import os

from s3regfs.kernelentries import ROOT_ID, KernelEntries


class FakeMount:
    """lstat gives each directory a node id; invalidate records (parent id, name)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.dropped: list[tuple[int, str]] = []

    def lstat(self, path: str) -> os.stat_result:
        node = self.ids.setdefault(path, len(self.ids) + 2)
        return os.stat_result((0o40755, node, 0, 2, 0, 0, 0, 0, 0, 0))

    def invalidate(self, parent: int, name: str) -> int:
        self.dropped.append((parent, name))
        return 0


def _entries(limit: int) -> tuple[KernelEntries, FakeMount]:
    fake = FakeMount()
    entries = KernelEntries(limit, "/mnt", lstat=fake.lstat, working_directories=list)
    entries._invalidate = fake.invalidate  # as start() sets it, without the thread
    return entries, fake


def test_nothing_is_dropped_under_the_bound() -> None:
    entries, fake = _entries(100)
    entries.listed("/a", 60)
    entries.listed("/b", 40)
    assert entries.prune() == 0 and fake.dropped == []


def test_the_least_recently_listed_directories_go_first_until_under_half_the_bound() -> None:
    entries, fake = _entries(100)
    for name in ("old", "mid", "new"):
        entries.listed(f"/r/{name}", 40)
    entries.listed("/r/old", 40)  # listed again: now the newest
    assert entries.prune() == 2
    assert fake.dropped == [(fake.ids["/mnt/r"], "mid"), (fake.ids["/mnt/r"], "new")]
    assert entries.handed() == 40


def test_a_directory_in_the_root_is_dropped_in_the_root_node_and_the_root_never() -> None:
    entries, fake = _entries(10)
    entries.listed("/", 5)
    entries.listed("/docker", 20)
    entries.prune()
    assert fake.dropped == [(ROOT_ID, "docker")]
    assert "/mnt" not in fake.ids, "the root's node id is known: no lstat"


def test_directories_listed_before_an_ancestor_was_dropped_went_with_it() -> None:
    entries, fake = _entries(10)
    entries.listed("/t", 3)
    entries.listed("/t/a", 4)
    entries.listed("/t/a/b", 4)
    entries.prune()  # drops /t (oldest): /t/a and /t/b went with it
    entries.listed("/u", 20)
    entries.prune()
    assert [name for _, name in fake.dropped] == ["t", "u"]


def test_lookups_count_for_their_directory() -> None:
    entries, fake = _entries(3)
    for name in ("x", "y", "z", "w"):
        entries.looked_up(f"/d/{name}")
    assert entries.handed() == 4
    entries.prune()
    assert fake.dropped == [(ROOT_ID, "d")]


def test_after_stop_libfuse_is_never_called() -> None:
    entries, fake = _entries(1)
    entries.listed("/a", 5)
    entries.stop()
    assert entries.prune() == 0 and fake.dropped == []


def test_zero_turns_it_off() -> None:
    entries, fake = _entries(0)
    entries.listed("/a", 10**6)
    entries.looked_up("/a/b")
    assert not entries.enabled and entries.handed() == 0


def test_a_working_directory_is_never_dropped_but_its_ancestors_may_be() -> None:
    fake = FakeMount()
    entries = KernelEntries(10, "/mnt", lstat=fake.lstat, working_directories=lambda: ["/mnt/r/here", "/elsewhere"])
    entries._invalidate = fake.invalidate
    entries.listed("/r/here", 20)
    entries.listed("/r/there", 20)
    entries.prune()
    assert [name for _, name in fake.dropped] == ["there"]
    assert entries.handed() == 20, "the working directory stays counted (and is asked again later)"
