"""walk_fallback on a fake driver tree (ports of v3 walk_test.go: TestWalkFallback, TestWalkFileRemoved)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from s3regfs.driver import FileInfo, FilledBuffer, PathNotFoundError, SkipDir, StorageDriver
from s3regfs.driver.walk import is_subpath, walk_fallback

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

TREE = {
    "/": ["/file1", "/folder1", "/folder1-suffix", "/folder2", "/folder3", "/folder4"],
    "/folder1": ["/folder1/file1"],
    "/folder1-suffix": ["/folder1-suffix/file1"],
    "/folder2": ["/folder2/file1"],
    "/folder3": ["/folder3/subfolder1", "/folder3/subfolder2"],
    "/folder3/subfolder1": ["/folder3/subfolder1/subfolder1"],
    "/folder3/subfolder1/subfolder1": ["/folder3/subfolder1/subfolder1/file1"],
    "/folder3/subfolder2": ["/folder3/subfolder2/subfolder1"],
    "/folder3/subfolder2/subfolder1": ["/folder3/subfolder2/subfolder1/file1"],
    "/folder4": ["/folder4/file1"],
}


class FakeTree(StorageDriver):
    """Only list and stat, from a dict of directory → children; List of a non-directory is PathNotFound."""

    def __init__(self, tree: dict[str, list[str]], vanished: frozenset[str] = frozenset()) -> None:
        self.tree = tree
        self.vanished = vanished
        self.listed: list[str] = []

    @property
    def name(self) -> str:
        return "fake"

    def list(self, path: str) -> list[str]:
        self.listed.append(path)
        if path not in self.tree:
            raise PathNotFoundError(path)
        return list(self.tree[path])

    def stat(self, path: str) -> FileInfo:
        if path in self.vanished:
            raise PathNotFoundError(path)
        return FileInfo(path, 0 if path in self.tree else len(path), T0, path in self.tree)

    def _unused(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("walk must use only list and stat")

    get_content = put_content = reader = writer = move = delete = redirect_url = _unused  # type: ignore


ALL = [
    "/file1",
    "/folder1",
    "/folder1/file1",
    "/folder1-suffix",
    "/folder1-suffix/file1",
    "/folder2",
    "/folder2/file1",
    "/folder3",
    "/folder3/subfolder1",
    "/folder3/subfolder1/subfolder1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2",
    "/folder3/subfolder2/subfolder1",
    "/folder3/subfolder2/subfolder1/file1",
    "/folder4",
    "/folder4/file1",
]
FOLDER3 = [p for p in ALL if p.startswith("/folder3/")]
SUB2 = [p for p in FOLDER3 if p.startswith("/folder3/subfolder2")]

# name: (from, hint, skip_at, stop_at, expected)
CASES = {
    "walk all": ("/", "", "", "", ALL),
    "skip directory": ("/", "", "/folder1", "", [p for p in ALL if p != "/folder1/file1"]),
    "skip file is a no-op": ("/", "", "/folder1/file1", "", ALL),
    "start late expecting -suffix": ("/", "/folder1/file1", "", "", ALL[3:]),
    "start late without from": ("/", "/folder3/subfolder1/subfolder1/file1", "", "", SUB2 + ALL[-2:]),
    "start late with from": ("/folder3", "/folder3/subfolder1/subfolder1/file1", "", "", SUB2),
    "start after from": ("/folder1", "/folder1-suffix", "", "", []),
    "start before from": ("/folder2", "/folder1/file1", "", "", ["/folder2/file1"]),
    "start matches from": ("/folder3", "/folder3", "", "", FOLDER3),
    "start doesn't exist": ("/folder3", "/folder3/notafolder/notafile", "", "", FOLDER3),
    "start at root": ("/", "/", "", "", ALL),
    "start at a file": ("/", "/file1", "", "", ALL[1:]),
    "start at a directory": ("/", "/folder2", "", "", ALL[6:]),
    "stop early": ("/", "", "", "/folder1/file1", ["/file1", "/folder1", "/folder1/file1"]),
    # documented difference from upstream: FilledBuffer in a hinted walk stops everything
    "stop early with a hint": (
        "/",
        "/folder1/file1",
        "",
        "/folder2",
        ["/folder1-suffix", "/folder1-suffix/file1", "/folder2"],
    ),
    "stop at top level": ("/", "", "", "/folder2", ALL[:6]),
    "from folder": ("/folder1", "", "", "", ["/folder1/file1"]),
    "from nested folder": ("/folder3/subfolder1", "", "", "", FOLDER3[:3][1:]),
}


def _walk(
    driver: StorageDriver, root: str, hint: str, skip_at: str = "", stop_at: str = ""
) -> list[FileInfo]:
    seen: list[FileInfo] = []

    def fn(info: FileInfo) -> None:
        seen.append(info)
        if info.path == skip_at:
            raise SkipDir()
        if info.path == stop_at:
            raise FilledBuffer()

    walk_fallback(driver, root, fn, hint)
    return seen


@pytest.mark.parametrize("name", list(CASES))
def test_walk_fallback(name: str) -> None:
    root, hint, skip_at, stop_at, expected = CASES[name]
    seen = _walk(FakeTree(TREE), root, hint, skip_at, stop_at)
    assert [i.path for i in seen] == expected
    for info in seen:
        assert info.is_dir == (info.path in TREE), info


def test_walk_error_aborts() -> None:
    seen: list[str] = []

    def fn(info: FileInfo) -> None:
        seen.append(info.path)
        raise RuntimeError("walk function failed")

    with pytest.raises(RuntimeError, match="walk function failed"):
        walk_fallback(FakeTree(TREE), "/", fn)
    assert seen == ["/file1"]


def test_walk_error_in_subdirectory_aborts() -> None:
    seen: list[str] = []

    def fn(info: FileInfo) -> None:
        seen.append(info.path)
        if info.path == "/folder1/file1":
            raise ValueError("deep")

    with pytest.raises(ValueError, match="deep"):
        walk_fallback(FakeTree(TREE), "/", fn)
    assert seen == ["/file1", "/folder1", "/folder1/file1"]


def test_walk_missing_root_is_path_not_found() -> None:
    with pytest.raises(PathNotFoundError) as exc:
        walk_fallback(FakeTree(TREE), "/nope", lambda info: None)
    assert exc.value.path == "/nope"


def test_walk_file_removed() -> None:
    """List names a child that has vanished by the time it is stat'ed: it is skipped, no error."""
    tree = {"/": ["/zoidberg", "/bender"]}
    seen = _walk(FakeTree(tree, vanished=frozenset({"/bender"})), "/", "")
    assert [i.path for i in seen] == ["/zoidberg"]


def test_walk_directory_removed_during_walk() -> None:
    """A directory listed by its parent but gone when descended into: its List error propagates."""
    tree = {"/": ["/a", "/b"], "/b": ["/b/x"]}
    driver = FakeTree(tree)

    def fn(info: FileInfo) -> None:
        if info.path == "/b":
            del driver.tree["/b"]

    with pytest.raises(PathNotFoundError):
        walk_fallback(driver, "/", fn)


def test_children_sorted_bytewise() -> None:
    """Children are visited in byte order of the whole path, whatever order List returns."""
    tree = {"/": ["/b", "/a.b", "/a-b", "/a", "/B"]}
    seen = _walk(FakeTree(tree), "/", "")
    assert [i.path for i in seen] == ["/B", "/a", "/a-b", "/a.b", "/b"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("hint", ["//", "//x", "/folder3//", "/folder3//x/y", "/folder3/"])
def test_odd_hints_terminate(hint: str) -> None:
    """A hint with empty components must not loop (Python's dirname keeps ``//``, Go's Dir does not)."""
    seen = _walk(FakeTree(TREE), "/", hint)
    assert seen == [] or all(i.path > "/" for i in seen)
    assert [i.path for i in seen] == sorted({i.path for i in seen}, key=ALL.index)


@pytest.mark.parametrize(
    "path,parent,expected",
    [
        ("/a", "", False),
        ("/a", "/a", True),
        ("/a/b/c", "/a", True),
        ("/tags/1.20/current/link", "/tags/1.2", False),
        ("/ab", "/a", False),
        ("/anything", "/", True),
        ("/", "/", True),
    ],
)
def test_is_subpath(path: str, parent: str, expected: bool) -> None:
    assert is_subpath(path, parent) is expected
