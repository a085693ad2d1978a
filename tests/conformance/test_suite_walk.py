"""Conformance: Walk (docs/DRIVERS.md §C4, §S7; the v3 s3 TestWalk and TestWalkFallback cases; §T2 ordering).

Every driver must visit the same set; the order is exact per driver family:

* ``fallback`` (walk_fallback): children sorted as whole paths, so
  ``/folder1`` and its contents come before ``/folder1-suffix``;
* ``s3``: one flat listing in the server's key order. On S3 that is byte
  order, where ``-`` and ``.`` sort before ``/``: ``/folder1-suffix`` first.
* ``s3-tree``: the same driver on a server that lists keys in directory-tree
  order (SeaweedFS): the fallback order, except where a start-after hint makes
  the flat walk re-emit the hint's ancestors, and a directory given as
  ``StartAfter`` skips that directory's contents (SeaweedFS semantics).

The conftest probes which of ``s3``/``s3-tree`` the server is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import pytest

from s3regfs.driver import DriverError, FileInfo, FilledBuffer, PathNotFoundError, SkipDir, StorageDriver
from tests.conformance.suitelib import DriverCase, assert_driver_error, delete_path, first_part, put_all

FILES = [
    "/file1",
    "/folder1-suffix/file1",
    "/folder1/file1",
    "/folder2/file1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2/subfolder1/file1",
    "/folder4/file1",
]

FOLDER3 = [
    "/folder3/subfolder1",
    "/folder3/subfolder1/subfolder1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2",
    "/folder3/subfolder2/subfolder1",
    "/folder3/subfolder2/subfolder1/file1",
]
SUB2 = FOLDER3[3:]
AFTER_FOLDER2 = ["/folder3", *FOLDER3, "/folder4", "/folder4/file1"]
FOLDER1 = ["/folder1", "/folder1/file1"]
SUFFIX = ["/folder1-suffix", "/folder1-suffix/file1"]
ALL = {
    "fallback": ["/file1", *FOLDER1, *SUFFIX, "/folder2", "/folder2/file1", *AFTER_FOLDER2],
    "s3": ["/file1", *SUFFIX, *FOLDER1, "/folder2", "/folder2/file1", *AFTER_FOLDER2],
}


@dataclass
class WalkCase:
    root: str = "/"
    hint: str = ""
    skip_at: str = ""  # raise SkipDir when visiting this path
    stop_at: str = ""  # raise FilledBuffer when visiting this path
    expected: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "both" in self.expected:
            both = self.expected.pop("both")
            self.expected = {"fallback": both, "s3": both}
        self.expected.setdefault("s3-tree", self.expected["fallback"])


def _without(paths: list[str], *removed: str) -> list[str]:
    return [p for p in paths if p not in removed]


CASES = {
    "walk all": WalkCase(expected=ALL),
    "skip directory": WalkCase(
        skip_at="/folder3", expected={fam: _without(seq, *FOLDER3) for fam, seq in ALL.items()}
    ),
    "skip directory that prefixes a sibling": WalkCase(
        skip_at="/folder1", expected={fam: _without(seq, "/folder1/file1") for fam, seq in ALL.items()}
    ),
    "skip on a file is a no-op": WalkCase(skip_at="/file1", expected=ALL),
    "start late without from": WalkCase(
        hint="/folder3/subfolder1/subfolder1/file1",
        expected={
            "fallback": [*SUB2, "/folder4", "/folder4/file1"],
            "s3": ["/folder3", *SUB2, "/folder4", "/folder4/file1"],
            "s3-tree": ["/folder3", *SUB2, "/folder4", "/folder4/file1"],
        },
    ),
    "start late expecting -suffix": WalkCase(
        hint="/folder1/file1",
        expected={
            "fallback": [*SUFFIX, "/folder2", "/folder2/file1", *AFTER_FOLDER2],
            "s3": ["/folder2", "/folder2/file1", *AFTER_FOLDER2],
        },
    ),
    "start late with from": WalkCase(
        root="/folder3", hint="/folder3/subfolder1/subfolder1/file1", expected={"both": SUB2}
    ),
    "start after from": WalkCase(root="/folder1", hint="/folder2", expected={"both": []}),
    "start before from": WalkCase(
        root="/folder2", hint="/folder1/file1", expected={"both": ["/folder2/file1"]}
    ),
    "start matches from": WalkCase(root="/folder3", hint="/folder3", expected={"both": FOLDER3}),
    "start doesn't exist": WalkCase(
        root="/folder3", hint="/folder3/notafolder/notafile", expected={"both": FOLDER3}
    ),
    "start at a file": WalkCase(
        hint="/file1", expected={fam: _without(seq, "/file1") for fam, seq in ALL.items()}
    ),
    "start at a directory": WalkCase(
        hint="/folder2",
        expected={
            "fallback": ["/folder2/file1", *AFTER_FOLDER2],
            "s3": ["/folder2", "/folder2/file1", *AFTER_FOLDER2],
            "s3-tree": AFTER_FOLDER2,
        },
    ),
    "stop early": WalkCase(
        stop_at="/folder1/file1",
        expected={"fallback": ["/file1", *FOLDER1], "s3": ["/file1", *SUFFIX, *FOLDER1]},
    ),
    "stop early after a hint": WalkCase(
        hint="/folder3/subfolder1/subfolder1/file1",
        stop_at="/folder3/subfolder2",
        expected={
            "fallback": ["/folder3/subfolder2"],
            "s3": ["/folder3", "/folder3/subfolder2"],
            "s3-tree": ["/folder3", "/folder3/subfolder2"],
        },
    ),
    "from folder": WalkCase(root="/folder1", expected={"both": ["/folder1/file1"]}),
    "from folder with a prefix sibling": WalkCase(
        root="/folder1-suffix", expected={"both": ["/folder1-suffix/file1"]}
    ),
    "from nested folder": WalkCase(root="/folder3/subfolder2", expected={"both": SUB2[1:]}),
}

DIRS = {"/folder1", "/folder1-suffix", "/folder2", "/folder3", "/folder4"} | {
    p for p in FOLDER3 if not p.endswith("file1")
}


@pytest.fixture
def tree(driver: StorageDriver) -> Iterator[list[str]]:
    put_all(driver, FILES)
    yield FILES
    for top in sorted({first_part(p) for p in FILES}):
        delete_path(driver, top)


def _run(driver: StorageDriver, case: WalkCase) -> list[FileInfo]:
    visited: list[FileInfo] = []

    def fn(info: FileInfo) -> None:
        visited.append(info)
        if info.path == case.skip_at:
            raise SkipDir()
        if info.path == case.stop_at:
            raise FilledBuffer()

    driver.walk(case.root, fn, start_after_hint=case.hint)
    return visited


@pytest.mark.usefixtures("tree")
def test_walk(driver_case: DriverCase) -> None:
    """Every case of the table on one tree; all mismatches are reported together."""
    wrong = {}
    for name, case in CASES.items():
        visited = _run(driver_case.driver, case)
        paths = [i.path for i in visited]
        if paths != case.expected[driver_case.family]:
            wrong[name] = {"got": paths, "expected": case.expected[driver_case.family]}
        for info in visited:
            assert info.is_dir == (info.path in DIRS), (name, info)
            if not info.is_dir:
                assert info.size == len(info.path), (name, info)
    assert wrong == {}, f"walk order family {driver_case.family!r}"


class _WalkStop(Exception):
    pass


@pytest.mark.usefixtures("tree")
def test_walk_error(driver: StorageDriver) -> None:
    """An error from the walk function stops the walk and reaches the caller, naming the driver."""
    visited: list[str] = []

    def fn(info: FileInfo) -> None:
        visited.append(info.path)
        raise _WalkStop("boom")

    with pytest.raises(DriverError) as exc:
        driver.walk("/", fn)
    assert_driver_error(exc.value, DriverError, driver)
    assert isinstance(exc.value.detail, _WalkStop)
    assert visited == ["/file1"]


def test_walk_missing_root(driver_case: DriverCase) -> None:
    """fallback: List's PathNotFoundError; s3 (flat listing): nothing visited, no error."""
    driver = driver_case.driver
    visited: list[str] = []
    if driver_case.family == "fallback":
        with pytest.raises(PathNotFoundError) as exc:
            driver.walk("/missing/dir", lambda info: visited.append(info.path))
        assert_driver_error(exc.value, PathNotFoundError, driver)
    else:
        driver.walk("/missing/dir", lambda info: visited.append(info.path))
    assert visited == []


TAGS = ["/tags/1.2/current/link", "/tags/1.2-rc/link", "/tags/1.2.1/link", "/tags/1.20/current/link"]
TAGS_SKIPPED = {
    "fallback": [
        "/tags/1.2",
        "/tags/1.2-rc",
        "/tags/1.2-rc/link",
        "/tags/1.2.1",
        "/tags/1.2.1/link",
        "/tags/1.20",
        "/tags/1.20/current",
        "/tags/1.20/current/link",
    ],
    "s3": [
        "/tags/1.2-rc",
        "/tags/1.2-rc/link",
        "/tags/1.2.1",
        "/tags/1.2.1/link",
        "/tags/1.2",
        "/tags/1.20",
        "/tags/1.20/current",
        "/tags/1.20/current/link",
    ],
}
TAGS_SKIPPED["s3-tree"] = TAGS_SKIPPED["fallback"]


def test_walk_skip_dir_is_not_a_string_prefix(driver_case: DriverCase) -> None:
    """§T2 / distribution #4891: skipping ``/tags/1.2`` must not hide ``/tags/1.20``."""
    driver = driver_case.driver
    put_all(driver, TAGS)
    try:
        visited: list[str] = []

        def fn(info: FileInfo) -> None:
            visited.append(info.path)
            if info.path == "/tags/1.2":
                raise SkipDir()

        driver.walk("/tags", fn)
        assert visited == TAGS_SKIPPED[driver_case.family]
    finally:
        delete_path(driver, "/tags")


def test_walk_does_not_see_uncommitted_writes(driver: StorageDriver) -> None:
    put_all(driver, ["/u/done"])
    writer = driver.writer("/u/pending", False)
    writer.write(b"x" * 10)
    writer.close()
    try:
        visited: list[str] = []
        driver.walk("/", lambda info: visited.append(info.path))
        assert visited == ["/u", "/u/done"]
    finally:
        driver.writer("/u/pending", True).cancel()
        delete_path(driver, "/u")
