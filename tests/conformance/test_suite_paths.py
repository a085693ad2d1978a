"""Conformance: the path rules every chain enforces (docs/DRIVERS.md §C1).

Full-match regex (``"/a\\n"`` rejected), ``.``/``..`` components rejected,
``/`` allowed only for stat/list/list_info/walk (and bucket_key), offsets
checked before paths, the move source before the destination.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from s3regfs.driver import InvalidOffsetError, InvalidPathError, PathNotFoundError, StorageDriver
from tests.conformance.suitelib import assert_driver_error, delete_path, random_contents

BAD_PATHS = [
    "",
    "abc",
    "123.abc",
    "//bcd",
    "/abc_123/",
    "/a//b",
    "/a\n",
    "/a\nb",
    "\n/a",
    "/a b",
    "/a*",
    "/a:b",
    "/a+b",
    "/a@b",
    "/a~b",
    "/\u00fc",
    "/a\x00",
    "/.",
    "/..",
    "/a/.",
    "/a/..",
    "/a/../b",
    "/a/./b",
    "/../a",
]

CALLS: dict[str, Callable[[StorageDriver, str], Any]] = {
    "get_content": lambda d, p: d.get_content(p),
    "put_content": lambda d, p: d.put_content(p, b"x"),
    "reader": lambda d, p: d.reader(p, 0),
    "read_range": lambda d, p: d.read_range(p, 0, 1),
    "writer": lambda d, p: d.writer(p, False),
    "writer_append": lambda d, p: d.writer(p, True),
    "stat": lambda d, p: d.stat(p),
    "list": lambda d, p: d.list(p),
    "list_info": lambda d, p: d.list_info(p),
    "walk": lambda d, p: d.walk(p, lambda info: None),
    "move_source": lambda d, p: d.move(p, "/valid/destination"),
    "move_dest": lambda d, p: d.move("/valid/source", p),
    "delete": lambda d, p: d.delete(p),
    "redirect_url": lambda d, p: d.redirect_url("GET", p),
    "bucket_key": lambda d, p: d.bucket_key(p),
}
ROOT_ALLOWED = {"stat", "list", "list_info", "walk", "bucket_key"}


def test_invalid_paths_rejected(driver: StorageDriver) -> None:
    for call, invoke in CALLS.items():
        for path in BAD_PATHS + ([] if call in ROOT_ALLOWED else ["/"]):
            with pytest.raises(InvalidPathError) as exc:
                invoke(driver, path)
            assert_driver_error(exc.value, InvalidPathError, driver)
            assert exc.value.path == path, call
    assert driver.list("/") == []


def test_root_allowed_for_stat_list_walk(driver: StorageDriver) -> None:
    assert driver.list("/") == []
    assert driver.list_info("/") == []
    visited: list[str] = []
    driver.walk("/", lambda info: visited.append(info.path))
    assert visited == []
    try:
        assert driver.stat("/").is_dir
    except PathNotFoundError as exc:
        assert_driver_error(exc, PathNotFoundError, driver)


def test_dot_names_that_are_not_dot_components(driver: StorageDriver) -> None:
    """``...``, ``.a`` and ``a.`` are ordinary names; only ``.`` and ``..`` components are refused."""
    paths = ["/...", "/.a/..b", "/a./b..", "/x/.../y"]
    contents = {p: random_contents(16) for p in paths}
    try:
        for path, data in contents.items():
            driver.put_content(path, data)
        for path, data in contents.items():
            assert driver.get_content(path) == data
    finally:
        for top in ["/...", "/.a", "/a.", "/x"]:
            delete_path(driver, top)


def test_invalid_offset_checked_before_path(driver: StorageDriver) -> None:
    for path in ["", "/", "/a\n", "/..", "/valid"]:
        for call in (lambda p=path: driver.reader(p, -1), lambda p=path: driver.read_range(p, -1, 10)):
            with pytest.raises(InvalidOffsetError) as exc:
                call()
            assert_driver_error(exc.value, InvalidOffsetError, driver)
            assert (exc.value.path, exc.value.offset) == (path, -1)


def test_move_checks_source_before_destination(driver: StorageDriver) -> None:
    with pytest.raises(InvalidPathError) as exc:
        driver.move("/a\n", "/b/../c")
    assert exc.value == InvalidPathError("/a\n", driver.name)
    with pytest.raises(InvalidPathError) as exc:
        driver.move("/missing", "/b/../c")
    assert exc.value == InvalidPathError("/b/../c", driver.name)


def test_paths_are_case_sensitive(driver: StorageDriver) -> None:
    driver.put_content("/Case/file", b"upper")
    driver.put_content("/case/file", b"lower")
    try:
        assert driver.get_content("/Case/file") == b"upper"
        assert driver.get_content("/case/file") == b"lower"
        assert sorted(driver.list("/")) == ["/Case", "/case"]
    finally:
        delete_path(driver, "/Case")
        delete_path(driver, "/case")
